//! The settings admin commands change while the server runs, as
//! memcached's `settings` fields they stand for: `lru_crawler
//! enable|disable|sleep|tocrawl` and `stats sizes_enable|sizes_disable`.
//! They start as the command line set them; `stats settings`, `stats`,
//! `stats sizes` and the listings read them here, never from
//! [`Settings`], which stays as started.

use crate::settings::Settings;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub struct LiveSettings {
    lru_crawler: AtomicBool,
    lru_crawler_sleep: AtomicU32,
    lru_crawler_tocrawl: AtomicU32,
    track_sizes: AtomicBool,
}

/// `lru_crawler enable` while it runs: memcached's answer.
pub const CRAWLER_RUNNING: &str = "ERROR failed to start lru crawler thread";

impl LiveSettings {
    pub fn new(s: &Settings) -> LiveSettings {
        let k = &s.knobs;
        LiveSettings {
            lru_crawler: AtomicBool::new(k.lru_crawler),
            lru_crawler_sleep: AtomicU32::new(k.lru_crawler_sleep.max(0) as u32),
            lru_crawler_tocrawl: AtomicU32::new(k.lru_crawler_tocrawl),
            track_sizes: AtomicBool::new(k.track_sizes),
        }
    }

    /// Whether the LRU crawler runs (`-o lru_crawler`, on by default).
    pub fn lru_crawler(&self) -> bool {
        self.lru_crawler.load(Ordering::Relaxed)
    }

    /// `lru_crawler enable`: refused, as memcached refuses to start its
    /// crawler thread twice, when it already runs.
    pub fn enable_lru_crawler(&self) -> Result<(), &'static str> {
        match self.lru_crawler.swap(true, Ordering::Relaxed) {
            true => Err(CRAWLER_RUNNING),
            false => Ok(()),
        }
    }

    /// `lru_crawler disable`: accepted whether or not it ran.
    pub fn disable_lru_crawler(&self) {
        self.lru_crawler.store(false, Ordering::Relaxed);
    }

    pub fn lru_crawler_sleep(&self) -> u32 {
        self.lru_crawler_sleep.load(Ordering::Relaxed)
    }

    pub fn set_lru_crawler_sleep(&self, us: u32) {
        self.lru_crawler_sleep.store(us, Ordering::Relaxed);
    }

    pub fn lru_crawler_tocrawl(&self) -> u32 {
        self.lru_crawler_tocrawl.load(Ordering::Relaxed)
    }

    pub fn set_lru_crawler_tocrawl(&self, n: u32) {
        self.lru_crawler_tocrawl.store(n, Ordering::Relaxed);
    }

    /// Whether `stats sizes` shows the plugin's size histogram
    /// (`-o track_sizes`, `stats sizes_enable`).
    pub fn track_sizes(&self) -> bool {
        self.track_sizes.load(Ordering::Relaxed)
    }

    /// `stats sizes_enable` / `sizes_disable`: memcached's answer, the
    /// status lines without an `END` (as memcached 1.6.18 sends them).
    /// Without CAS (`-C`) memcached keeps no histogram and says so.
    pub fn set_track_sizes(&self, on: bool, use_cas: bool) -> &'static str {
        if on && !use_cas {
            return "STAT sizes_status error\r\nSTAT sizes_error cas_support_disabled\r\n";
        }
        self.track_sizes.store(on, Ordering::Relaxed);
        if on {
            "STAT sizes_status enabled\r\n"
        } else {
            "STAT sizes_status disabled\r\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crawler_starts_once_and_stops_any_time() {
        let live = LiveSettings::new(&Settings::default());
        assert!(live.lru_crawler(), "on by default, as memcached 1.6");
        assert_eq!(live.enable_lru_crawler(), Err(CRAWLER_RUNNING));
        live.disable_lru_crawler();
        live.disable_lru_crawler();
        assert!(!live.lru_crawler());
        assert_eq!(live.enable_lru_crawler(), Ok(()));
        assert!(live.lru_crawler());
    }

    #[test]
    fn sizes_need_cas() {
        let live = LiveSettings::new(&Settings::default());
        assert!(!live.track_sizes());
        assert!(live
            .set_track_sizes(true, false)
            .contains("cas_support_disabled"));
        assert!(!live.track_sizes());
        assert_eq!(
            live.set_track_sizes(true, true),
            "STAT sizes_status enabled\r\n"
        );
        assert!(live.track_sizes());
        assert_eq!(
            live.set_track_sizes(false, true),
            "STAT sizes_status disabled\r\n"
        );
        assert!(!live.track_sizes());
    }
}
