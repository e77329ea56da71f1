//! Making room: S3-FIFO over the log's segments.
//!
//! New items enter the small queue (about a tenth of the segments). When
//! the shard needs a segment and has none to spare, the oldest segment of
//! the small queue (while that queue is over its share) or else of the main
//! queue is recycled, after each of its live items is dealt with:
//!
//! - dead (expired, flushed): dropped, as memcached reclaims them first;
//! - in the small queue, read at least `promote` times: copied to the main
//!   queue's head (frequency back to 0); else evicted, and its key's hash
//!   remembered by the ghost (`crate::ghost`), so that a quick return is
//!   promoted next time (a key read after it expired is remembered too:
//!   it is in use);
//! - in the main queue, frequency above 0: copied to the main queue's head
//!   with one less (a second chance, as CLOCK's hand gives); else evicted.
//!
//! Most one-hit wonders thus leave after a small queue's worth of new
//! items, without pushing out the main queue's items (Yang et al., "FIFO
//! queues are all you need for cache eviction", SOSP 2023), and no hit
//! moves anything: a hit only raises two bits in the item's header.
//!
//! An item of the main queue that expired before anyone read it again
//! (found dead here or by the crawler) is remembered by the ghost as well,
//! in a table of its own: it had earned its place, and without that its
//! next set would have to earn it again in the small queue (a miss more
//! for every key read less often than its TTL).
//!
//! Before any of that, a segment that dead items (replaced, deleted,
//! expired) have left at least a quarter empty is compacted: its live
//! items are copied to its queue's head and the segment is free.
//!
//! With `-M` nothing live is evicted: dead items and holes are reclaimed by
//! compacting the emptiest segment instead (when that gains at least a
//! quarter of a segment), and a store that finds no room that way answers
//! out of memory.

use super::access::Fields;
use super::Store;
use crate::hash::hash;
use crate::item::bit;
use crate::log::Queue;
use wasmcached_sdk::guest;

/// Bytes one request may copy forward (promotions, second chances) while it
/// makes room, in segments: past this it evicts from the main queue's tail
/// without second chances, so that a store full of hot items never makes
/// one request copy the whole cache.
const MAX_MOVED_SEGMENTS: usize = 8;

impl Store {
    /// Whether the head of `q` can take an item written at `now`: its
    /// items' access times count from its opening in 16 bits, and new items
    /// must not get positions below the CAS floor.
    fn head_takes(&self, q: Queue, total: usize, now: u32) -> bool {
        if !self.log.fits_head(q, total) {
            return false;
        }
        let seg = &self.log.segs[self.log.head(q).expect("head") as usize];
        now.saturating_sub(seg.created) < u32::from(u16::MAX)
            && (q != Queue::Small || seg.base + seg.buf.len() as u64 >= self.pos_floor)
    }

    /// Makes sure `total` bytes can be appended at the head of `q` and a
    /// long value of `large` bytes fits the budget, evicting (or with -M
    /// compacting) as needed. `false`: no room can be made.
    pub(super) fn make_room(&mut self, q: Queue, total: usize, large: usize) -> bool {
        let now = guest::now();
        let seg = self.log.seg_size() as u64;
        // The two queue heads are always allowed, whatever the budget.
        let allowed = self.budget.max(2 * seg);
        let mut moved = 0;
        let mut rounds = self.log.in_use() + 4;
        loop {
            let head_ok = self.head_takes(q, total, now);
            let need = large as u64 + if head_ok { 0 } else { seg };
            if self.used() + need <= allowed {
                if !head_ok {
                    self.log.pos = self.log.pos.max(self.pos_floor);
                    if self.log.open(q, now).is_err() {
                        self.stats.malloc_fails += 1;
                        return false;
                    }
                }
                return true;
            }
            if rounds == 0 {
                return false;
            }
            rounds -= 1;
            let freed = if self.no_evict {
                self.compact_one(now)
            } else {
                self.compact_sparse() || self.evict_one(now, &mut moved)
            };
            if !freed {
                return false;
            }
        }
    }

    /// The queue to take a segment from: S3-FIFO's choice, small while it
    /// is over its share, then a queue's only segment as a last resort.
    fn victim_queue(&self, hurried: bool) -> Option<Queue> {
        let small = self.log.queue_len(Queue::Small);
        let main = self.log.queue_len(Queue::Main);
        if hurried && main >= 2 {
            return Some(Queue::Main);
        }
        let cap = (self.budget / self.log.seg_size() as u64).max(2) as usize;
        let share = (cap * self.tuning.small_pct as usize / 100).max(1);
        if small > share || (small >= 2 && main < 2) {
            Some(Queue::Small)
        } else if main >= 1 {
            Some(Queue::Main)
        } else if small >= 1 {
            Some(Queue::Small)
        } else {
            None
        }
    }

    /// Recycles one segment (see the module doc). `moved`: bytes copied
    /// forward so far by this request.
    pub(super) fn evict_one(&mut self, now: u32, moved: &mut usize) -> bool {
        let hurried = *moved >= MAX_MOVED_SEGMENTS * self.log.seg_size();
        let Some(q) = self.victim_queue(hurried) else {
            return false;
        };
        if self.ghost.is_empty() && self.tuning.ghost {
            // Sized once the shard is full: as many entries as items.
            self.ghost.resize(self.live.max(64));
        }
        let s = self.log.tail(q).expect("a tail");
        let is_head = |st: &Store, qq: Queue| st.log.head(qq) == Some(s);
        // Second chances go to the main queue's head, unless that is the
        // segment being recycled: then only the pinned item is kept, in
        // the small queue.
        let dest = if is_head(self, Queue::Main) {
            Queue::Small
        } else {
            Queue::Main
        };
        let chances = !is_head(self, Queue::Main) && !hurried;
        let mut off = 0;
        while let Some(i) = self.log.next_item(s, &mut off) {
            let e = self.log.view(i, self.casm);
            let total = e.hdr.total();
            let refs = e.refs();
            let mut f = Fields::of(&e);
            if i == self.pinned {
                self.pinned = self.copy_to(i, dest, f);
                continue;
            }
            if self.is_reclaimable(&e, now) {
                let flushed = self.is_flushed(&e, now);
                let s = self.classes.of_item(&e);
                s.reclaimed += 1;
                if !e.has(bit::FETCHED) {
                    s.expired_unfetched += 1;
                }
                if flushed {
                    self.unlink(i);
                } else {
                    self.unlink_expired(i, q);
                }
                continue;
            }
            let keep = chances
                && match q {
                    Queue::Small => refs >= self.tuning.promote,
                    _ => refs > 0,
                };
            if keep {
                // Promoted with the count back to 0 (keeping it, as
                // S3-FIFO's pseudo-code does, missed more on every trace of
                // docs/performance.md), or another round with one less.
                let left = if q == Queue::Small { 0 } else { refs - 1 };
                self.classes.passed(&e, left);
                f.state = (f.state & !bit::REF) | (left << bit::REF_SHIFT);
                *moved += total;
                self.copy_to(i, Queue::Main, f);
                if q == Queue::Small {
                    crate::metrics::PROMOTED.inc();
                }
                continue;
            }
            let s = self.classes.of_item(&e);
            s.evicted += 1;
            s.evicted_time = now.saturating_sub(e.time);
            if e.exptime() != 0 {
                s.evicted_nonzero += 1;
            }
            if !e.has(bit::FETCHED) {
                s.evicted_unfetched += 1;
            }
            if refs > 0 {
                s.evicted_active += 1;
            }
            // `watch evictions` (ABI v6), as memcached's lru_pull_tail logs.
            guest::log_eviction(&guest::Evicted {
                key: e.key(),
                fetched: e.has(bit::FETCHED),
                exptime: e.exptime(),
                last_access: e.time,
                client_flags: e.client_flags(),
                value_len: e.value().len() as u32,
            });
            let h = hash(e.key());
            if q == Queue::Small && self.tuning.ghost {
                self.ghost.remember(h);
            }
            self.index.remove(h, i);
            self.kill(i);
        }
        self.log.recycle_tail(q);
        true
    }

    /// With -M: reclaims the dead items and holes of the emptiest segment
    /// that is not a queue head, by copying its live items to the main
    /// queue's head. `false` when that would free nothing.
    fn compact_one(&mut self, now: u32) -> bool {
        let heads = [self.log.head(Queue::Small), self.log.head(Queue::Main)];
        let best = [Queue::Small, Queue::Main]
            .into_iter()
            .flat_map(|q| self.log.queue(q).map(move |s| (q, s)))
            .filter(|(_, s)| !heads.contains(&Some(*s)))
            .min_by_key(|(_, s)| self.log.segs[*s as usize].live_bytes);
        let Some((q, s)) = best else {
            return false;
        };
        // Dead items go first; unless what stays leaves a quarter of the
        // segment, copying it would gain too little to be worth it.
        self.reclaim_dead(s, now);
        let seg = self.log.seg_size() as u32;
        if self.log.segs[s as usize].live_bytes * 4 > seg * 3 {
            return false;
        }
        // Into the small queue's head, where this store's next item goes:
        // without eviction the queues' order does not matter.
        self.compact(q, s, Queue::Small);
        true
    }

    /// Frees the dead items of segment `s` (the crawler's work, for one
    /// segment). Returns how many.
    pub(super) fn reclaim_dead(&mut self, s: u32, now: u32) -> usize {
        let mut dead = 0;
        let mut off = 0;
        while let Some(i) = self.log.next_item(s, &mut off) {
            dead += usize::from(self.reap(i, now, false));
        }
        dead
    }

    /// The crawler's look at item `i`: frees it when it expired or was
    /// flushed, counted as memcached's LRU crawler counts (and, if
    /// `checked`, counts the look). Returns whether it was dead.
    ///
    /// Expired means as a lookup sees it (`exptime <= now`), not the `<`
    /// memcached's crawler uses: no get can return the item any more, and
    /// taking it in its last second frees its room a second earlier (with
    /// 5-second TTLs a fifth of every item's life; the TTL-heavy replay at
    /// 1 % of the working set missed 0.4 % less: 0.3732 against 0.3747).
    pub(super) fn reap(&mut self, i: u32, now: u32, checked: bool) -> bool {
        let e = self.log.view(i, self.casm);
        let flushed = self.is_flushed(&e, now);
        let dead = flushed || (e.exptime() != 0 && e.exptime() <= now);
        let unfetched = !e.has(bit::FETCHED);
        let class = self.classes.of_item(&e);
        if checked {
            class.crawler_items_checked += 1;
        }
        if dead {
            class.crawler_reclaimed += 1;
            if !flushed && unfetched {
                class.expired_unfetched += 1;
            }
            if flushed {
                self.unlink(i);
            } else {
                let q = self.log.seg_of(i).queue;
                self.unlink_expired(i, q);
            }
        }
        dead
    }

    /// Unlinks item `i` of queue `q`, which expired: one of the main queue
    /// is remembered by the ghost (see the module doc), so that its next
    /// set is promoted as a key evicted too early is. The TTL-heavy replay
    /// at 1 % of the working set missed 1.8 % less: 0.3732 against 0.3799
    /// (and 0.3685 since these keys have a table of their own).
    fn unlink_expired(&mut self, i: u32, q: Queue) {
        let h = hash(self.log.view(i, self.casm).key());
        if q == Queue::Main && self.tuning.ghost && !self.ghost.is_empty() {
            self.ghost.remember_expired(h);
        }
        self.unlink_hashed(i, h);
    }

    /// Copies the live items of segment `s` (in queue `q`) to the head of
    /// `dest` and frees it. The items keep their CAS, frequency and times.
    pub(super) fn compact(&mut self, q: Queue, s: u32, dest: Queue) {
        if self.log.head(dest) == Some(s) {
            // Not into itself: a new head, at most one segment over budget
            // until `s` is free.
            if self.log.open(dest, guest::now()).is_err() {
                self.stats.malloc_fails += 1;
                return;
            }
        }
        let mut off = 0;
        while let Some(i) = self.log.next_item(s, &mut off) {
            let f = self.fields(i);
            let j = self.copy_to(i, dest, f);
            if self.pinned == i {
                self.pinned = j;
            }
        }
        crate::metrics::COMPACTIONS.inc();
        self.log.recycle(q, s);
    }

    /// Compacts a segment that holes have made at least a quarter empty
    /// (`Log::sparse_limit`), if there is one: dead items make room before
    /// live ones are evicted (memcached reclaims expired items at the LRU
    /// tail first), at no more than three bytes copied per byte gained.
    pub(super) fn compact_sparse(&mut self) -> bool {
        while let Some(s) = self.log.take_sparse() {
            let seg = &self.log.segs[s as usize];
            let q = seg.queue;
            let sparse = seg.live_bytes <= self.log.sparse_limit();
            if q == Queue::Free || seg.held || !sparse || self.log.head(q) == Some(s) {
                continue;
            }
            self.compact(q, s, q);
            return true;
        }
        false
    }
}
