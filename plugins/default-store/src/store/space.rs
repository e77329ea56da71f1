//! Keeping the shard within its memory budget: making room for new items
//! (reclaiming dead ones, evicting with the CLOCK hand, or refusing with
//! -M), releasing emptied slot chunks, resizing the index, and the bounded
//! once-a-second background work.

use super::{NoMemory, Store};
use crate::clock::{refs, MAX_SWEEP};
use crate::hash::hash;
use crate::mem::alloc_size;
use crate::slab::{bit, CHUNK, NIL};
use wasmcached_sdk::guest;

/// Evictions one request may do beyond its own needs while the store is over
/// its budget (after `MemLimit` lowered it); background slices shed the rest.
const EVICT_BURST: u32 = 64;
/// Slots at the hand a `-M` store inspects for an expired item before giving
/// up.
const NO_EVICT_SCAN: u32 = 32;
/// Index buckets moved per insert while the table resizes.
pub(super) const INSERT_MIGRATE: usize = 4;
/// One slice of background work (a tick, or a timer while work remains):
/// each part is bounded so that a slice costs a few milliseconds of the
/// worker thread even with millions of items, far below the call deadline.
const SLICE_SHED: usize = 1024;
const SLICE_COMPACT: usize = 4;
const SLICE_MIGRATE: usize = 4096;
/// The timer that continues background work between ticks, and its delay.
pub(super) const SLICE_TIMER: u64 = 1;
const SLICE_DELAY_MS: u32 = 5;
/// A continuation timer that has not fired after this long is taken as lost.
const TIMER_LOST_SECS: u32 = 2;

impl Store {
    /// An empty buffer with room for `len` bytes. The accounting only
    /// estimates the heap; if the heap (capped by the host) still says no,
    /// free more items and retry rather than trap.
    pub(super) fn alloc_data(&mut self, len: usize, pin: u32) -> Result<Vec<u8>, NoMemory> {
        for round in 0..8 {
            let mut v = Vec::new();
            if v.try_reserve_exact(len).is_ok() {
                return Ok(v);
            }
            self.stats.malloc_fails += 1;
            if self.no_evict {
                break;
            }
            for _ in 0..(16 << round) {
                if self.free_one(pin).is_none() {
                    break;
                }
            }
        }
        Err(NoMemory)
    }

    /// Frees items until `extra` more bytes (plus a slot, if `new_slot`) fit
    /// the budget. memcached's `do_item_alloc_pull`.
    pub(super) fn make_room(&mut self, extra: u64, new_slot: bool, pin: u32) -> bool {
        let mut evicted = 0;
        let mut freed = 0;
        loop {
            let need = extra
                + if new_slot && self.slab.free() == 0 {
                    self.slab.chunk_cost()
                } else {
                    0
                };
            if self.used() + need <= self.budget {
                return true;
            }
            // Over budget by more than this item (a lowered MemLimit): a
            // store pays for itself plus a bounded extra; `slice` does the rest.
            if evicted >= EVICT_BURST && freed >= need {
                return true;
            }
            // Emptying a chunk of free slots costs no items.
            if self.compact_step(pin) {
                continue;
            }
            match self.free_one(pin) {
                Some(bytes) => {
                    evicted += 1;
                    freed += bytes;
                }
                None => return false,
            }
        }
    }

    /// Frees one item: the CLOCK victim (the first dead or unreferenced item
    /// the hand reaches), or with -M a dead item at the hand. Returns the
    /// heap bytes freed (its slot stays allocated for the next item).
    pub(super) fn free_one(&mut self, pin: u32) -> Option<u64> {
        let now = guest::now();
        let i = if self.no_evict {
            self.reclaimable_near_hand(pin, now)?
        } else {
            self.victim(pin, now)?
        };
        let e = self.slab.get(i);
        let bytes = alloc_size(e.data.len());
        let reclaimable = self.is_reclaimable(e, now);
        let s = self.classes.of_item(e);
        if reclaimable {
            s.reclaimed += 1;
            if !e.has(bit::FETCHED) {
                s.expired_unfetched += 1;
            }
        } else {
            s.evicted += 1;
            s.evicted_time = now.saturating_sub(e.time);
            if e.exptime != 0 {
                s.evicted_nonzero += 1;
            }
            if !e.has(bit::FETCHED) {
                s.evicted_unfetched += 1;
            }
            if refs(e) > 0 {
                s.evicted_active += 1;
            }
            // `watch evictions` (ABI v6), as memcached's lru_pull_tail logs.
            guest::log_eviction(&guest::Evicted {
                key: e.key(),
                fetched: e.has(bit::FETCHED),
                exptime: e.exptime,
                last_access: e.time,
                client_flags: e.client_flags(),
                value_len: e.value().len() as u32,
            });
        }
        self.unlink(i);
        Some(bytes)
    }

    /// The item to free next: the first item the hand finds that is dead
    /// (expired, flushed) or has no chance left, lowering the counters of the
    /// ones it passes; never `pin`, the item being rewritten. After passing
    /// [`MAX_SWEEP`] items it settles for the least referenced one it saw
    /// (the earliest of equals). A free slot costs 1/16 of an item against
    /// that bound: the last chunk's unused tail is skipped on every round
    /// and must not cut the search short, but a long run of free slots still
    /// ends it. Only when no candidate was seen at all does the hand go on,
    /// to the first live item: that guarantees a victim while any item but
    /// `pin` is live (and compaction keeps free slots few).
    fn victim(&mut self, pin: u32, now: u32) -> Option<u32> {
        let pinned = pin != NIL && self.slab.get(pin).is_live();
        if self.slab.live() <= usize::from(pinned) {
            return None;
        }
        let cap = self.slab.capacity() as u32;
        let (mut best, mut best_refs) = (NIL, u8::MAX);
        let mut work = 0;
        loop {
            if self.clock.hand >= cap {
                self.clock.hand = 0;
            }
            let i = self.clock.hand;
            self.clock.hand += 1;
            let e = self.slab.get(i);
            work += if e.is_live() { 16 } else { 1 };
            if e.is_live() && i != pin {
                if refs(e) == 0 || self.is_reclaimable(e, now) {
                    return Some(i);
                }
                let left = self.clock.pass(self.slab.get_mut(i));
                self.classes.passed(self.slab.get(i), left);
                if left < best_refs {
                    (best, best_refs) = (i, left);
                }
            }
            if work >= MAX_SWEEP * 16 && best != NIL {
                return Some(best);
            }
        }
    }

    /// With -M nothing is evicted, but dead items at the hand still make
    /// room (memcached's tail search reclaims them before giving up). The
    /// hand does not move: without evictions it stays where the oldest
    /// items are, which is where items die first; the background crawl
    /// finds the others.
    fn reclaimable_near_hand(&self, pin: u32, now: u32) -> Option<u32> {
        let cap = self.slab.capacity() as u32;
        let mut i = self.clock.hand;
        let mut seen = 0;
        for _ in 0..cap.min(MAX_SWEEP) {
            if seen == NO_EVICT_SCAN {
                break;
            }
            if i >= cap {
                i = 0;
            }
            let e = self.slab.get(i);
            if e.is_live() && i != pin {
                if self.is_reclaimable(e, now) {
                    return Some(i);
                }
                seen += 1;
            }
            i += 1;
        }
        None
    }

    /// Empties the last slot chunk by moving its items into free slots below
    /// it, when at least two chunks' worth of slots are free. Returns whether
    /// a chunk was released.
    fn compact_step(&mut self, pin: u32) -> bool {
        if self.slab.free() < 2 * CHUNK {
            return false;
        }
        let Some(range) = self.slab.last_chunk() else {
            return false;
        };
        if range.contains(&pin) {
            return false;
        }
        let live = range
            .clone()
            .filter(|&i| self.slab.get(i).is_live())
            .count();
        if self.slab.free() - (CHUNK - live) < live {
            return false;
        }
        for i in range.clone() {
            if !self.slab.get(i).is_live() {
                self.slab.unlink_free(i);
            }
        }
        for src in range {
            if self.slab.get(src).is_live() {
                let dst = self
                    .slab
                    .pop_free()
                    .expect("free slots below the last chunk");
                let h = hash(self.slab.get(src).key());
                self.index.relink(&mut self.slab, h, src, dst);
                // The item keeps its counter; it only changes its place
                // in the hand's round.
                self.slab.move_entry(src, dst);
            }
        }
        self.slab.pop_chunk();
        if self.crawl_pos as usize >= self.slab.capacity() {
            self.crawl_pos = 0;
        }
        if self.clock.hand as usize >= self.slab.capacity() {
            self.clock.hand = 0;
        }
        true
    }

    pub(super) fn index_growth_blocked(&self) -> bool {
        let len = self.index.buckets();
        self.hash_expand
            && !self.index.resizing()
            && self.slab.live() > len + len / 2
            && self.used() + (2 * len * 4) as u64 > self.budget
    }

    /// Grows the index at 1.5 items per bucket (memcached's assoc.c) when the
    /// budget has room and `-o no_hashexpand` was not given, shrinks it
    /// below 1/8 (never under its initial size), and moves `migrate` buckets of
    /// a resize in progress.
    pub(super) fn maintain_index(&mut self, migrate: usize) {
        if !self.index.resizing() {
            let n = self.slab.live();
            let len = self.index.buckets();
            let want = if n > len + len / 2 && self.hash_expand {
                len * 2
            } else if len > self.min_buckets && n < len / 8 {
                (n + n / 3 + 1).next_power_of_two().max(self.min_buckets)
            } else {
                len
            };
            let fits = want < len || self.used() + (want * 4) as u64 <= self.budget;
            if want != len && fits {
                match self.index.start_resize(want) {
                    Ok(()) => crate::metrics::INDEX_RESIZES.inc(),
                    Err(_) => self.stats.malloc_fails += 1,
                }
            }
        }
        self.index.migrate(&mut self.slab, migrate);
    }

    /// A new budget: shed some now, the rest in background slices (and
    /// stores pay their own way meanwhile, see `make_room`).
    pub(super) fn set_budget(&mut self, budget: u64) {
        self.budget = budget;
        self.shed(SLICE_SHED);
    }

    /// Frees up to `max` items (fewer if compaction suffices) while over
    /// budget. Returns whether it freed anything.
    fn shed(&mut self, max: usize) -> bool {
        let mut n = 0;
        let mut progress = false;
        while self.used() > self.budget && n < max {
            if self.compact_step(NIL) {
                progress = true;
                continue;
            }
            if self.free_one(NIL).is_none() {
                break;
            }
            progress = true;
            n += 1;
        }
        progress
    }

    /// The once-a-second work.
    pub fn tick(&mut self, now: u32) {
        self.slice(now);
    }

    /// A timer this store asked for fired.
    pub fn timer(&mut self, token: u64) {
        if token == SLICE_TIMER {
            self.slice_timer_armed = None;
            self.slice(guest::now());
        }
    }

    /// One bounded slice of background work: the expiry scan (memcached's
    /// LRU crawler), shedding down to a lowered budget, releasing emptied
    /// slot chunks and resizing the index. While any of it has work left, a
    /// short timer brings the next slice instead of waiting for the next tick.
    fn slice(&mut self, now: u32) {
        self.stats.maintainer_juggles += 1;
        let (checked, dead) = self.crawl(now, self.tuning.crawl_per_tick);
        // Mostly dead items (a flush_all, a wave of expiries): sweep faster.
        let mut more = checked > 0 && dead * 8 >= checked;
        // Only while shedding gets somewhere: a -M store has nothing to
        // evict, and a budget below the empty tables cannot be met at all.
        more |= self.shed(SLICE_SHED) && self.used() > self.budget;
        // Below an eighth of free slots the next stores reuse them anyway.
        let floor = (2 * CHUNK).max(self.slab.capacity() / 8);
        // Not while a listing walks the slots: it would miss moved items.
        let compact = !self.listing(now);
        for _ in 0..SLICE_COMPACT {
            if !compact || self.slab.free() < floor || !self.compact_step(NIL) {
                break;
            }
        }
        more |= compact && self.slab.free() >= floor;
        self.maintain_index(SLICE_MIGRATE);
        more |= self.index.resizing();
        let armed = self
            .slice_timer_armed
            .is_some_and(|at| now.saturating_sub(at) < TIMER_LOST_SECS);
        if more && !armed {
            guest::timer_set(SLICE_TIMER, SLICE_DELAY_MS);
            self.slice_timer_armed = Some(now);
        }
    }

    /// Visits up to `slots` slots round-robin and frees dead items. Returns
    /// the items checked and freed.
    fn crawl(&mut self, now: u32, slots: usize) -> (usize, usize) {
        let (mut checked, mut dead) = (0, 0);
        let cap = self.slab.capacity();
        for _ in 0..slots.min(cap) {
            if self.crawl_pos as usize >= self.slab.capacity() {
                self.crawl_pos = 0;
            }
            if self.crawl_pos == 0 {
                self.stats.crawler_starts += 1;
            }
            let i = self.crawl_pos;
            self.crawl_pos += 1;
            let e = self.slab.get(i);
            if !e.is_live() {
                continue;
            }
            checked += 1;
            let flushed = self.is_flushed(e, now);
            let class = self.classes.of_item(e);
            class.crawler_items_checked += 1;
            if flushed || (e.exptime != 0 && e.exptime < now) {
                dead += 1;
                class.crawler_reclaimed += 1;
                if !flushed && !e.has(bit::FETCHED) {
                    class.expired_unfetched += 1;
                }
                self.unlink(i);
            }
        }
        crate::metrics::CRAWLER_CHECKED.add(checked as u64);
        crate::metrics::CRAWLER_RECLAIMED.add(dead as u64);
        (checked, dead)
    }
}
