//! The server clock, as memcached keeps it (`clock_handler`, `realtime`).
//!
//! Item times are "server time": seconds since `process_started`, a u32 that
//! never goes backwards. The main reactor advances it once a second; every
//! thread reads it with one relaxed load. Guests see the same value through the
//! `now` import, so host and store agree on what "expired" means.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// memcached's REALTIME_MAXDELTA: exptimes above 30 days are absolute unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// memcached starts its clock at ITEM_UPDATE_INTERVAL + 2 so that server time
/// 1 ("already expired") is always in the past.
const START_OFFSET: i64 = 60 + 2;

static PROCESS_STARTED: AtomicI64 = AtomicI64::new(0);
static CURRENT_TIME: AtomicU32 = AtomicU32::new(START_OFFSET as u32);

/// The wall clock, in unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Starts the clock; called once at start-up.
pub fn init() {
    PROCESS_STARTED.store(unix_now() - START_OFFSET, Ordering::Relaxed);
    update();
}

/// Starts the clock where a saved server's stopped (the warm restart,
/// host/src/restart/): server time 0 stays the unix time it was, so
/// saved times keep their meaning, and the clock never reads below the
/// saved `current_time`, even if the wall clock went back meanwhile.
pub fn init_restored(process_started: i64, current_time: u32) {
    PROCESS_STARTED.store(process_started, Ordering::Relaxed);
    CURRENT_TIME.store(current_time.max(START_OFFSET as u32), Ordering::Relaxed);
    update();
}

/// Re-reads the wall clock (memcached's clock_handler). Never goes backwards.
pub fn update() {
    let rel = (unix_now() - process_started()).clamp(0, u32::MAX as i64) as u32;
    CURRENT_TIME.fetch_max(rel, Ordering::Relaxed);
}

/// Current server time.
#[inline]
pub fn now() -> u32 {
    CURRENT_TIME.load(Ordering::Relaxed)
}

/// Sets the server time outright, for `wasmcached plugin check` (which runs
/// no reactor and needs a clock it controls to test expiry). May go
/// backwards; a running server never calls it.
pub fn set_now_for_check(now: u32) {
    CURRENT_TIME.store(now, Ordering::Relaxed);
}

/// Unix time at which server time was 0.
pub fn process_started() -> i64 {
    PROCESS_STARTED.load(Ordering::Relaxed)
}

/// Converts a client exptime to server time, exactly as memcached's `realtime()`:
/// 0 = never; negative = already expired (1); up to 30 days = relative;
/// beyond = absolute unix time (already past → 1).
pub fn realtime(exptime: i64) -> u32 {
    realtime_at(exptime, now(), process_started())
}

fn realtime_at(exptime: i64, now: u32, started: i64) -> u32 {
    if exptime == 0 {
        return 0;
    }
    if exptime < 0 {
        return 1;
    }
    if exptime > REALTIME_MAXDELTA {
        if exptime <= started {
            return 1;
        }
        return (exptime - started).min(u32::MAX as i64) as u32;
    }
    (exptime + now as i64).min(u32::MAX as i64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_follows_memcached() {
        let started = 1_700_000_000;
        assert_eq!(realtime_at(0, 100, started), 0);
        assert_eq!(realtime_at(-1, 100, started), 1);
        assert_eq!(realtime_at(10, 100, started), 110);
        assert_eq!(
            realtime_at(REALTIME_MAXDELTA, 100, started),
            100 + REALTIME_MAXDELTA as u32
        );
        // Absolute times: in the past → expired, in the future → relative to start.
        assert_eq!(realtime_at(REALTIME_MAXDELTA + 1, 100, started), 1);
        assert_eq!(realtime_at(started + 500, 100, started), 500);
    }
}
