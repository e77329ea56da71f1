//! The shard's budget and its background work: a lowered `MemLimit`, the
//! expiry scan that reclaims dead items before anyone asks for them, the
//! compaction of segments that dead items left a quarter empty (their memory
//! comes back without waiting for their turn in the FIFO), and the index
//! resizing.

use super::Store;
use crate::hash::hash;
use crate::item;
use crate::log::Queue;
use wasmcached_sdk::guest;

/// Index groups moved per insert while the table resizes.
pub(super) const INSERT_MIGRATE: usize = 4;
/// One slice of background work (a tick, or a timer while work remains):
/// each part is bounded so that a slice costs a few milliseconds of the
/// worker thread even with millions of items, far below the call deadline.
const SLICE_SHED: usize = 2;
/// Sparse segments compacted per slice.
const SLICE_COMPACT: usize = 8;
const SLICE_MIGRATE: usize = 4096;
/// The timer that continues background work between ticks, and its delay.
pub(super) const SLICE_TIMER: u64 = 1;
const SLICE_DELAY_MS: u32 = 5;
/// A continuation timer that has not fired after this long is taken as lost.
const TIMER_LOST_SECS: u32 = 2;

/// A pass of the expiry scan that freed at least one item in this many
/// checked makes the next pass run to its end within its second (in
/// slices, `SLICE_DELAY_MS` apart), instead of `crawl_per_tick` items a
/// second. Where items expire by the thousand a second (the TTL-heavy
/// replay at 1 % of the working set: a fifth of the items a second), their
/// room comes back within a second of their expiry rather than up to a
/// pass of several seconds later: that replay missed 0.3669 against
/// 0.3685 (0.3665 with a whole pass at every tick). A store whose items do
/// not expire keeps the slow pace.
const EAGER_PASS_DEAD: usize = 64;

/// The expiry scan: where it is, and what the pass in progress found.
#[derive(Default)]
pub(super) struct Crawler {
    /// A segment, the log position it had when the scan got there, and an
    /// offset in it.
    seg: u32,
    base: u64,
    off: usize,
    /// Items checked and freed since the pass began.
    checked: usize,
    dead: usize,
    /// The pass ended since the last tick.
    ended: bool,
    /// The last whole pass freed enough to run the next to its end.
    eager: bool,
}

impl Store {
    /// Grows the index past 7/8 full (unless `-o no_hashexpand`), rebuilds
    /// it when tombstones fill it, shrinks it below 1/8 (never under its
    /// initial size), and moves `migrate` groups of a resize in progress.
    pub(super) fn maintain_index(&mut self, migrate: usize) {
        if let Some(want) = self.index.wanted(self.min_slots) {
            let grow = want > self.index.slots();
            if !grow || self.hash_expand || self.index.must_grow() {
                match self.index.start_resize(want, &mut self.log) {
                    Ok(()) => crate::metrics::INDEX_RESIZES.inc(),
                    Err(_) => self.stats.malloc_fails += 1,
                }
            }
        }
        let groups = if self.index.must_finish() {
            usize::MAX
        } else {
            migrate
        };
        let log = &self.log;
        let retired = self
            .index
            .migrate(groups, |x| hash(item::key_of(log.at(x))));
        if let Some(r) = retired {
            r.give_back(&mut self.log);
        }
    }

    /// A new budget: shed some now, the rest in background slices.
    pub(super) fn set_budget(&mut self, budget: u64) {
        self.budget = budget;
        if self.ghost.len() as u64 * 4 > budget / 8 {
            self.ghost.resize(0);
        }
        self.shed(SLICE_SHED);
        self.log.trim_free();
    }

    /// Recycles up to `max` segments while over budget. Returns whether it
    /// freed anything.
    fn shed(&mut self, max: usize) -> bool {
        let mut n = 0;
        while self.used() > self.budget.max(2 * self.log.seg_size() as u64) && n < max {
            // Nothing is copied forward while shedding (`moved` is past
            // the bound): every recycled segment frees its room.
            let before = self.log.in_use();
            let mut moved = usize::MAX;
            if self.no_evict || !self.evict_one(guest::now(), &mut moved) {
                break;
            }
            n += usize::from(self.log.in_use() < before);
        }
        n > 0
    }

    /// The once-a-second work.
    pub fn tick(&mut self, now: u32) {
        self.crawler.ended = false;
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
    /// LRU crawler), shedding down to a lowered budget and resizing the
    /// index. While any of it has work left, a short timer brings the next
    /// slice instead of waiting for the next tick.
    fn slice(&mut self, now: u32) {
        self.stats.maintainer_juggles += 1;
        let (checked, dead) = self.crawl(now, self.tuning.crawl_per_tick);
        // Mostly dead items (a flush_all, a wave of expiries): sweep faster;
        // and finish the pass if the last one was worth it.
        let mut more = checked > 0 && dead * 8 >= checked;
        more |= self.crawler.eager && !self.crawler.ended;
        more |= self.shed(SLICE_SHED) && self.used() > self.budget;
        // Not while a listing walks the log: it would miss moved items.
        if !self.listing(now) {
            for _ in 0..SLICE_COMPACT {
                if !self.compact_sparse() {
                    break;
                }
                more = true;
            }
        }
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

    /// Visits up to `items` items (holes and free segments count as steps),
    /// segment by segment in the order the segments were allocated, and
    /// frees dead ones. Returns the items checked and freed.
    fn crawl(&mut self, now: u32, items: usize) -> (usize, usize) {
        let (mut checked, mut dead) = (0, 0);
        let mut steps = 0;
        let nsegs = self.log.allocated() as u32;
        if nsegs == 0 {
            return (0, 0);
        }
        let Crawler {
            seg: mut s,
            mut base,
            mut off,
            ..
        } = self.crawler;
        while steps < items {
            if s >= nsegs {
                s = 0;
                off = 0;
                self.stats.crawler_starts += 1;
                self.crawler.pass_ended();
            }
            let seg = &self.log.segs[s as usize];
            // The segment was recycled since: start it over.
            if seg.base != base {
                base = seg.base;
                off = 0;
            }
            if seg.queue == Queue::Free || off >= seg.buf.len() {
                s += 1;
                off = 0;
                steps += 1;
                continue;
            }
            let b = &seg.buf[off..];
            steps += 1;
            if let Some(n) = item::hole_len(b) {
                off += n;
                continue;
            }
            let i = self.log.handle(s, off);
            off += item::header(b).total();
            let freed = usize::from(self.reap(i, now, true));
            checked += 1;
            dead += freed;
            self.crawler.checked += 1;
            self.crawler.dead += freed;
        }
        (self.crawler.seg, self.crawler.base, self.crawler.off) = (s, base, off);
        crate::metrics::CRAWLER_CHECKED.add(checked as u64);
        crate::metrics::CRAWLER_RECLAIMED.add(dead as u64);
        (checked, dead)
    }
}

impl Crawler {
    /// The pass got to the end of the log.
    fn pass_ended(&mut self) {
        self.eager = self.dead > 0 && self.dead * EAGER_PASS_DEAD >= self.checked;
        self.ended = true;
        (self.checked, self.dead) = (0, 0);
    }
}
