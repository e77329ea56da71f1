//! Fault counting (the counters `stats` shows) and the crash-loop back-off
//! policy: when a shard that keeps faulting stops being re-instantiated,
//! and for how long. `Shard` applies it.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Process-wide fault counters, shown in `stats`.
#[derive(Default)]
pub struct FaultStats {
    pub plugin_traps: AtomicU64,
    pub plugin_restarts: AtomicU64,
    /// Instances replaced by a fresh one holding their items because their
    /// memory neared its cap (`Shard::renew_if_bloated`).
    pub plugin_renewals: AtomicU64,
    /// Hot reloads done / refused (host/src/reload.rs).
    pub plugin_reloads: AtomicU64,
    pub plugin_reload_failures: AtomicU64,
    /// Re-instantiations after a fault that failed themselves (the fresh
    /// instance trapped or refused in `wmc_init`); each counts as a fault
    /// towards the crash-loop back-off.
    pub plugin_restart_failures: AtomicU64,
    /// Times a shard entered crash-loop back-off (see [`CrashLoop`]).
    pub plugin_backoffs: AtomicU64,
    /// Shards backing off right now (a gauge).
    pub plugin_shards_backing_off: AtomicU64,
}

/// Crash-loop back-off: a shard with [`CRASH_LOOP_FAULTS`] faults within
/// [`CRASH_LOOP_WINDOW`] stops being re-instantiated for a while; meanwhile
/// its commands are answered `SERVER_ERROR plugin shard N is backing off
/// after repeated faults` without calling the guest. The first back-off lasts
/// [`BACKOFF_FIRST`], each one that follows within [`BACKOFF_MAX`] of the
/// previous one's end lasts twice as long, up to [`BACKOFF_MAX`].
pub const CRASH_LOOP_FAULTS: usize = 5;
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(10);
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One shard's fault history, for the crash-loop back-off.
///
/// After a back-off ends the shard gets one fresh instance and is on
/// probation for [`CRASH_LOOP_WINDOW`]: a fault then (including a failed
/// re-instantiation) backs off again at once, for twice as long. A shard
/// that has not backed off for [`BACKOFF_MAX`] starts over at
/// [`BACKOFF_FIRST`].
#[derive(Debug, Default)]
pub(super) struct CrashLoop {
    /// Faults within the last [`CRASH_LOOP_WINDOW`] (at most
    /// [`CRASH_LOOP_FAULTS`]: cleared when a back-off starts).
    pub(super) recent: std::collections::VecDeque<std::time::Instant>,
    /// While backing off: when the shard may be re-instantiated.
    pub(super) until: Option<std::time::Instant>,
    /// A fault before this instant backs off again at once.
    pub(super) probation_until: Option<std::time::Instant>,
    /// When the last back-off ended.
    pub(super) last_ended: Option<std::time::Instant>,
    /// Back-offs in a row (the next lasts `BACKOFF_FIRST * 2^streak`).
    pub(super) streak: u32,
}

/// Why and for how long a shard backs off.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BackOff {
    /// Faults counted (within `span`); 0 for a fault on probation.
    pub(super) faults: usize,
    pub(super) span: Duration,
    pub(super) length: Duration,
}

impl CrashLoop {
    /// Records a fault at `now`; returns the back-off it starts, if any.
    pub(super) fn record(&mut self, now: std::time::Instant) -> Option<BackOff> {
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > CRASH_LOOP_WINDOW)
        {
            self.recent.pop_front();
        }
        let on_probation = self.probation_until.is_some_and(|t| now < t);
        if self.recent.len() < CRASH_LOOP_FAULTS && !on_probation {
            return None;
        }
        if self
            .last_ended
            .is_some_and(|t| now.saturating_duration_since(t) > BACKOFF_MAX)
        {
            self.streak = 0;
        }
        let length = BACKOFF_FIRST
            .saturating_mul(1u32 << self.streak.min(16))
            .min(BACKOFF_MAX);
        self.streak = self.streak.saturating_add(1);
        let first = self.recent.front().copied().unwrap_or(now);
        let b = BackOff {
            faults: if self.recent.len() >= CRASH_LOOP_FAULTS {
                self.recent.len()
            } else {
                0
            },
            span: now.saturating_duration_since(first),
            length,
        };
        self.recent.clear();
        self.probation_until = None;
        self.until = Some(now + length);
        Some(b)
    }

    /// Ends a back-off at `now`: the shard may be re-instantiated, on probation.
    pub(super) fn end(&mut self, now: std::time::Instant) {
        self.until = None;
        self.last_ended = Some(now);
        self.probation_until = Some(now + CRASH_LOOP_WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn five_faults_in_the_window_back_off_and_the_back_off_doubles() {
        let t0 = Instant::now();
        let mut c = CrashLoop::default();
        for i in 0..4 {
            assert_eq!(c.record(t0 + 100 * i * MS), None, "fault {i}");
        }
        let b = c.record(t0 + 400 * MS).expect("fifth fault backs off");
        assert_eq!(
            b,
            BackOff {
                faults: 5,
                span: 400 * MS,
                length: BACKOFF_FIRST
            }
        );
        assert_eq!(c.until, Some(t0 + 400 * MS + BACKOFF_FIRST));
        // The back-off ends; one fault on probation backs off again, twice
        // as long, and so on up to the cap.
        let mut now = t0 + 1400 * MS;
        let mut expect = BACKOFF_FIRST;
        for _ in 0..10 {
            c.end(now);
            now += 10 * MS;
            expect = (expect * 2).min(BACKOFF_MAX);
            let b = c.record(now).expect("a fault on probation backs off");
            assert_eq!((b.faults, b.length), (0, expect));
            now += b.length;
        }
        assert_eq!(expect, BACKOFF_MAX);
    }

    #[test]
    fn spread_out_faults_never_back_off_and_a_quiet_shard_starts_over() {
        let t0 = Instant::now();
        let mut c = CrashLoop::default();
        // One fault every 3 s: never 5 within 10 s.
        for i in 0..100u32 {
            assert_eq!(c.record(t0 + 3000 * i * MS), None, "fault {i}");
        }
        assert!(c.recent.len() < CRASH_LOOP_FAULTS);
        // A crash loop, two back-offs...
        let mut now = t0 + Duration::from_secs(1000);
        for _ in 0..4 {
            assert_eq!(c.record(now), None);
        }
        assert_eq!(c.record(now).unwrap().length, BACKOFF_FIRST);
        now += BACKOFF_FIRST;
        c.end(now);
        assert_eq!(c.record(now).unwrap().length, 2 * BACKOFF_FIRST);
        now += 2 * BACKOFF_FIRST;
        c.end(now);
        // ...then the shard serves past its probation and past BACKOFF_MAX:
        // the next crash loop starts over at the first back-off length.
        now += CRASH_LOOP_WINDOW + BACKOFF_MAX + MS;
        for _ in 0..4 {
            assert_eq!(c.record(now), None);
        }
        assert_eq!(c.record(now).unwrap().length, BACKOFF_FIRST);
    }
}
