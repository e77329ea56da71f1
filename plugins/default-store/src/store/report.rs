//! What the store reports: memcached's `stats`, `stats items` and
//! `stats slabs` lines for the host to sum over shards, and (for tests) a
//! cross-check of every internal structure.
//!
//! memcached's names are kept, with the segmented LRU's terms read in CLOCK
//! terms so that the numbers stay meaningful: "warm" is an item with a
//! non-zero counter (the hand would spare it), "cold" one at 0 (the hand
//! takes it); `moves_to_warm` counts counters raised from 0 by a hit,
//! `moves_to_cold` counters the hand lowered to 0, `moves_within_lru` those
//! it lowered and left non-zero; `age` is that of the next item the hand
//! would take. There is no HOT or TEMP segment: those stay 0.

use super::Store;
use crate::clock::refs;
#[cfg(test)]
use crate::{hash::hash, mem::alloc_size};
use wasmcached_sdk::abi::stats_group;
use wasmcached_sdk::guest::{self, StatsWriter};

/// Slots a `stats items` looks at for the classes' ages: a fraction of a
/// millisecond.
const AGE_LOOKAHEAD: u32 = 64 * 1024;

impl Store {
    /// Sets the ABI v8 gauges (crate::metrics), right before the host
    /// reads them: cheaper when asked than on every request.
    pub fn update_metrics(&self) {
        use crate::metrics::{BUDGET_BYTES, INDEX_BUCKETS, SLOT_CHUNKS, USED_BYTES};
        SLOT_CHUNKS.set(self.slab.chunks() as i64);
        USED_BYTES.set(self.used() as i64);
        BUDGET_BYTES.set(self.budget as i64);
        INDEX_BUCKETS.set(self.index.buckets() as i64);
    }

    pub fn write_stats(&self, group: i32, out: &mut StatsWriter<'_>) {
        let s = &self.stats;
        let c = &self.classes;
        match group {
            stats_group::GENERAL => {
                out.stat("curr_items", self.curr_items());
                out.stat("total_items", s.total_items);
                out.stat("bytes", self.item_bytes());
                out.stat("limit_maxbytes", self.budget);
                out.stat("expired_unfetched", c.total(|k| k.expired_unfetched));
                out.stat("evicted_unfetched", c.total(|k| k.evicted_unfetched));
                out.stat("evicted_active", c.total(|k| k.evicted_active));
                out.stat("evictions", c.total(|k| k.evicted));
                out.stat("reclaimed", c.total(|k| k.reclaimed));
                out.stat("crawler_reclaimed", c.total(|k| k.crawler_reclaimed));
                out.stat(
                    "crawler_items_checked",
                    c.total(|k| k.crawler_items_checked),
                );
                out.stat("lrutail_reflocked", 0);
                out.stat("moves_to_cold", c.total(|k| k.moves_to_cold));
                out.stat("moves_to_warm", c.total(|k| k.moves_to_warm));
                out.stat("moves_within_lru", c.total(|k| k.moves_within_lru));
                out.stat("direct_reclaims", 0);
                out.stat("lru_bumps_dropped", 0);
                out.stat("get_expired", s.get_expired);
                out.stat("get_flushed", s.get_flushed);
                out.stat("hash_power_level", self.index.power());
                out.stat("hash_bytes", self.index.bytes());
                out.stat("hash_is_expanding", u8::from(self.index.resizing()));
                out.stat("lru_crawler_starts", s.crawler_starts);
                out.stat("lru_maintainer_juggles", s.maintainer_juggles);
                out.stat("malloc_fails", s.malloc_fails);
                // Not memcached's: the host shows it under `stats plugin`.
                out.stat("slot_chunks", self.slab.chunks());
            }
            stats_group::ITEMS => self.write_items(out),
            stats_group::SLABS => {
                let mut active = 0;
                for id in c.ids() {
                    let k = &c.class[id];
                    if k.chunks_high == 0 {
                        continue;
                    }
                    active += 1;
                    let per = u64::from(c.per_page(id));
                    let mut class = |name: &str, v: u64| out.stat(&format!("{id}:{name}"), v);
                    class("chunk_size", c.chunk_size(id).into());
                    class("chunks_per_page", per);
                    class("total_pages", k.chunks_high.div_ceil(per));
                    // Not rounded to whole pages: the host adds the shards'
                    // chunks up first, then rounds (one memcached's pages).
                    class("total_chunks", k.chunks_high);
                    class("used_chunks", k.used_chunks);
                    class("free_chunks", k.chunks_high - k.used_chunks);
                    class("free_chunks_end", 0);
                    class("get_hits", k.get_hits);
                    class("cmd_set", k.cmd_set);
                    class("delete_hits", k.delete_hits);
                    class("incr_hits", k.incr_hits);
                    class("decr_hits", k.decr_hits);
                    class("cas_hits", k.cas_hits);
                    class("cas_badval", k.cas_badval);
                    class("touch_hits", k.touch_hits);
                }
                out.stat("active_slabs", active);
                out.stat("total_malloced", self.used());
            }
            _ => {}
        }
    }

    /// `stats items`: the classes that hold items, as memcached lists them.
    fn write_items(&self, out: &mut StatsWriter<'_>) {
        let now = guest::now();
        let c = &self.classes;
        let ages = self.ages_ahead_of_hand(now);
        for id in c.ids() {
            let k = &c.class[id];
            if k.number == 0 {
                continue;
            }
            let mut item = |name: &str, v: u64| out.stat(&format!("items:{id}:{name}"), v);
            item("number", k.number);
            item("number_hot", 0);
            item("number_warm", k.warm);
            item("number_cold", k.number - k.warm);
            item("age_hot", 0);
            let (age_warm, age_cold) = ages[id];
            item("age_warm", age_warm.unwrap_or(0).into());
            // memcached's age is the COLD tail's: the next item of the class
            // to go, or failing one in sight, the next the hand will reach.
            item("age", age_cold.or(age_warm).unwrap_or(0).into());
            item("mem_requested", k.requested);
            item("evicted", k.evicted);
            item("evicted_nonzero", k.evicted_nonzero);
            item("evicted_time", k.evicted_time.into());
            item("outofmemory", k.outofmemory);
            item("tailrepairs", 0);
            item("reclaimed", k.reclaimed);
            item("expired_unfetched", k.expired_unfetched);
            item("evicted_unfetched", k.evicted_unfetched);
            item("evicted_active", k.evicted_active);
            item("crawler_reclaimed", k.crawler_reclaimed);
            item("crawler_items_checked", k.crawler_items_checked);
            item("lrutail_reflocked", 0);
            item("moves_to_cold", k.moves_to_cold);
            item("moves_to_warm", k.moves_to_warm);
            item("moves_within_lru", k.moves_within_lru);
            item("direct_reclaims", 0);
            item("hits_to_hot", 0);
            item("hits_to_warm", k.hits_to_warm);
            item("hits_to_cold", k.hits_to_cold);
            item("hits_to_temp", 0);
        }
    }

    /// For each class, the age of the first referenced and of the first
    /// unreferenced live item at or after the hand, within a bounded
    /// look-ahead ([`AGE_LOOKAHEAD`] slots: a report never walks a big
    /// store). A class with no item in sight shows age 0.
    fn ages_ahead_of_hand(&self, now: u32) -> Vec<(Option<u32>, Option<u32>)> {
        let mut ages = vec![(None, None); self.classes.class.len()];
        let cap = self.slab.capacity() as u32;
        let mut i = self.clock.hand;
        for _ in 0..cap.min(AGE_LOOKAHEAD) {
            if i >= cap {
                i = 0;
            }
            let e = self.slab.get(i);
            if e.is_live() {
                let (warm, cold) = &mut ages[self.classes.of_entry(e)];
                let slot = if refs(e) > 0 { warm } else { cold };
                slot.get_or_insert(now.saturating_sub(e.time));
            }
            i += 1;
        }
        ages
    }

    /// Walks every structure and checks that they agree. For tests.
    #[cfg(test)]
    pub fn check_invariants(&self) {
        let mut live = 0;
        for i in 0..self.slab.capacity() as u32 {
            let e = self.slab.get(i);
            if e.is_live() {
                live += 1;
                let h = hash(e.key());
                assert_eq!(self.index.find(&self.slab, h, e.key()), Some(i));
                assert_eq!(e.tag, crate::hash::tag(h));
            }
        }
        assert_eq!(live, self.slab.live());
        let mut data = 0;
        let mut referenced = 0;
        for i in 0..self.slab.capacity() as u32 {
            let e = self.slab.get(i);
            if e.is_live() {
                data += alloc_size(e.data.len());
                assert!(
                    refs(e) <= self.tuning.clock_max,
                    "slot {i} over the counter cap"
                );
                referenced += u64::from(refs(e) > 0);
            } else {
                assert_eq!(refs(e), 0, "free slot {i} with a counter");
            }
        }
        assert_eq!(referenced, self.classes.total(|k| k.warm));
        // The per-class counts are those of the live items, recounted.
        let mut recount = super::classes::Classes::new(&Default::default(), self.cas_enabled);
        recount.copy_table(&self.classes);
        for i in 0..self.slab.capacity() as u32 {
            let e = self.slab.get(i);
            if e.is_live() {
                recount.link(e);
            }
        }
        for id in self.classes.ids() {
            let (a, b) = (&recount.class[id], &self.classes.class[id]);
            assert_eq!(
                (a.number, a.requested, a.warm, a.used_chunks),
                (b.number, b.requested, b.warm, b.used_chunks),
                "class {id}"
            );
        }
        self.slab.check_free_list();
        assert_eq!(data, self.data_bytes);
        assert_eq!(self.slab.capacity(), live + self.slab.free());
    }
}
