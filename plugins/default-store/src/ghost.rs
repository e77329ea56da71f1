//! S3-FIFO's ghost queue: the keys recently evicted from the small queue
//! without a hit, remembered by a 16-bit fingerprint of their hash only.
//!
//! A key that comes back while remembered was evicted too early: it enters
//! with its frequency at 1, so the small queue's eviction promotes it to the
//! main queue instead of dropping it again (S3-FIFO inserts it into main
//! directly; here every new item enters the small queue's head, which keeps
//! the CAS values of new items in log order, see `crate::item`).
//!
//! A table of 4-entry buckets with about as many entries as the shard
//! holds items; each bucket is a little FIFO (a new fingerprint pushes out
//! the bucket's oldest), so an entry survives about as many evictions as a
//! FIFO of that length would keep it, without the pointers a real queue
//! would cost. 2 bytes per entry, counted against the shard's budget: a
//! key that was never remembered matches one of its bucket's 4 entries
//! with odds of about 1 in 8,000 (15 bits; it then enters the main queue a
//! round early, nothing worse), and the 2 bytes a 32-bit fingerprint would
//! add hold items instead (1 to 3 % of the budget). With 32-bit
//! fingerprints every `wasmcached replay` trace of docs/performance.md
//! missed more: zipf 0.8 at 10 % 0.4271 against 0.4237, zipf 1.0 at 10 %
//! 0.1944 against 0.1927, the TTL-heavy trace at 1 % 0.3742 against 0.3732.
//!
//! Keys of main-queue items that expired before anyone read them again go
//! to a second table of the same size, made when the first such item dies
//! (`remember_expired`): where most items carry a short TTL, they would
//! otherwise push the keys evicted too early out of the first table as
//! fast as evictions put them in. A store whose items do not expire never
//! makes it. On the TTL-heavy replay at 1 % of the working set (4M keys,
//! 90 % with a 5 s TTL) this missed 1.2 % less: 0.3685 against 0.3732,
//! and nothing changed on the zipf and scan traces. Sending the keys read
//! after they expired to the second table too missed 0.3690; with that, a
//! second table half as large missed 0.3702 and one twice as large 0.3698
//! (each entry is budget taken from items).

/// Entries per bucket.
const WAYS: usize = 4;

#[derive(Default)]
pub struct Ghost {
    /// Keys evicted too early (and read after they expired).
    evicted: Table,
    /// Keys of main-queue items that expired unread; empty until one does.
    expired: Table,
}

/// One table of 4-entry buckets.
#[derive(Default)]
struct Table {
    slots: Vec<u16>,
}

/// The top 16 bits of the hash (the bucket comes from bits 7 up; the
/// index's home group and tag from the low 32), never 0, which marks an
/// empty slot.
#[inline]
fn fingerprint(h: u64) -> u16 {
    (h >> 48) as u16 | 1
}

impl Table {
    /// Resizes to about `entries` (a power of two), forgetting everything.
    fn resize(&mut self, entries: usize) {
        let n = entries.next_power_of_two().max(WAYS);
        if n != self.slots.len() {
            self.slots = Vec::new();
            if self.slots.try_reserve_exact(n).is_ok() {
                self.slots.resize(n, 0);
            }
        }
    }

    /// The first slot of `h`'s bucket.
    #[inline]
    fn bucket(&self, h: u64) -> usize {
        // Bits the index's home group and tag do not use.
        ((h >> 7) as usize & (self.slots.len() - 1)) & !(WAYS - 1)
    }

    fn remember(&mut self, h: u64) {
        if self.slots.len() >= WAYS {
            let b = self.bucket(h);
            self.slots.copy_within(b..b + WAYS - 1, b + 1);
            self.slots[b] = fingerprint(h);
        }
    }

    fn take(&mut self, h: u64) -> bool {
        if self.slots.len() < WAYS {
            return false;
        }
        let b = self.bucket(h);
        let f = fingerprint(h);
        match self.slots[b..b + WAYS].iter().position(|&x| x == f) {
            Some(i) => {
                self.slots[b + i] = 0;
                true
            }
            None => false,
        }
    }
}

impl Ghost {
    pub fn new() -> Ghost {
        Ghost::default()
    }

    pub fn bytes(&self) -> u64 {
        ((self.evicted.slots.len() + self.expired.slots.len()) * std::mem::size_of::<u16>()) as u64
    }

    /// Resizes to about `entries` (a power of two), forgetting everything.
    pub fn resize(&mut self, entries: usize) {
        self.evicted.resize(entries);
        self.expired.slots = Vec::new();
    }

    /// Entries of the table of evicted keys.
    pub fn len(&self) -> usize {
        self.evicted.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.evicted.slots.is_empty()
    }

    /// Remembers a key evicted too early (or read after it expired).
    pub fn remember(&mut self, h: u64) {
        self.evicted.remember(h);
    }

    /// Remembers the key of a main-queue item that expired unread, in the
    /// second table, made now if it is not there yet.
    pub fn remember_expired(&mut self, h: u64) {
        if self.expired.slots.is_empty() {
            if self.evicted.slots.is_empty() {
                return;
            }
            self.expired.resize(self.evicted.slots.len());
        }
        self.expired.remember(h);
    }

    /// Whether `h` was remembered by either table; forgets it.
    pub fn take(&mut self, h: u64) -> bool {
        self.evicted.take(h) || self.expired.take(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash;

    #[test]
    fn remembers_recent_keys_once() {
        let mut g = Ghost::new();
        assert!(!g.take(hash(b"a")));
        g.resize(1000);
        assert_eq!(g.len(), 1024);
        // 16-bit fingerprints: 2 bytes an entry against the budget.
        assert_eq!(g.bytes(), 2048);
        g.remember(hash(b"a"));
        assert!(g.take(hash(b"a")));
        assert!(!g.take(hash(b"a")));
        // A table this size keeps nearly all of the last 500 keys.
        for i in 0..500 {
            g.remember(hash(format!("k{i}").as_bytes()));
        }
        let kept = (0..500)
            .filter(|i| g.take(hash(format!("k{i}").as_bytes())))
            .count();
        assert!(kept > 470, "{kept}");
    }

    #[test]
    fn expired_keys_have_a_table_of_their_own() {
        let mut g = Ghost::new();
        // Before the store fills up there is no ghost: nothing is kept.
        g.remember_expired(hash(b"x"));
        assert!(!g.take(hash(b"x")));
        g.resize(1000);
        assert_eq!(g.bytes(), 2048, "the second table waits for an expiry");
        g.remember_expired(hash(b"x"));
        assert_eq!(g.bytes(), 4096);
        // Evictions, however many, do not push an expired key out.
        for i in 0..5000 {
            g.remember(hash(format!("k{i}").as_bytes()));
        }
        assert!(g.take(hash(b"x")));
        assert!(!g.take(hash(b"x")));
        // Nor do expiries push out evicted keys.
        g.remember(hash(b"y"));
        for i in 0..5000 {
            g.remember_expired(hash(format!("e{i}").as_bytes()));
        }
        assert!(g.take(hash(b"y")));
        g.resize(0);
        assert_eq!(g.bytes(), 8, "one bucket, and no second table");
    }
}
