//! What the store reports: memcached's `stats`, `stats items` and
//! `stats slabs` lines for the host to sum over shards, and (for tests) a
//! cross-check of every internal structure.
//!
//! memcached's names are kept, with the segmented LRU's terms read in
//! S3-FIFO terms so that the numbers stay meaningful: "warm" is an item
//! with a non-zero frequency (eviction would give it another round),
//! "cold" one at 0; `moves_to_warm` counts frequencies raised from 0 by a
//! hit, `moves_to_cold` items eviction copied forward with a frequency
//! lowered to 0, `moves_within_lru` those left above 0; `age` is that of
//! the oldest item eviction would reach. There is no HOT or TEMP segment:
//! those stay 0.

use super::Store;
use crate::log::Queue;
#[cfg(test)]
use crate::{hash::hash, item};
use wasmcached_sdk::abi::stats_group;
use wasmcached_sdk::guest::{self, StatsWriter};

/// Items a `stats items` looks at for the classes' ages: a fraction of a
/// millisecond.
const AGE_LOOKAHEAD: u32 = 64 * 1024;

impl Store {
    /// Sets the ABI v8 gauges (crate::metrics), right before the host
    /// reads them: cheaper when asked than on every request.
    pub fn update_metrics(&self) {
        use crate::metrics::{BUDGET_BYTES, INDEX_SLOTS, SEGMENTS, USED_BYTES};
        SEGMENTS.set(self.log.in_use() as i64);
        USED_BYTES.set(self.used() as i64);
        BUDGET_BYTES.set(self.budget as i64);
        INDEX_SLOTS.set(self.index.slots() as i64);
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
                out.stat("hash_power_level", self.index.slots().ilog2());
                out.stat("hash_bytes", self.index.bytes());
                out.stat("hash_is_expanding", u8::from(self.index.resizing()));
                out.stat("lru_crawler_starts", s.crawler_starts);
                out.stat("lru_maintainer_juggles", s.maintainer_juggles);
                out.stat("malloc_fails", s.malloc_fails);
                // Not memcached's: the host shows them under `stats plugin`.
                out.stat("segments", self.log.in_use());
                // A size, the same on every shard: four shards' sum would
                // mean nothing.
                out.max("segment_size", self.log.seg_size() as u64);
            }
            stats_group::ITEMS => self.write_items(out),
            stats_group::SIZES => {
                for (size, items) in c.sizes.buckets() {
                    out.stat(&size.to_string(), items);
                }
            }
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

    /// For each class, the age of the first item with and without a
    /// frequency that eviction would reach (the main queue's oldest, then
    /// the small queue's), within a bounded look-ahead ([`AGE_LOOKAHEAD`]
    /// items: a report never walks a big store). A class with no item in
    /// sight shows age 0.
    fn ages_ahead_of_hand(&self, now: u32) -> Vec<(Option<u32>, Option<u32>)> {
        let mut ages = vec![(None, None); self.classes.class.len()];
        let mut looked = 0;
        for s in self
            .log
            .queue(Queue::Main)
            .chain(self.log.queue(Queue::Small))
        {
            let mut off = 0;
            while let Some(i) = self.log.next_item(s, &mut off) {
                if looked == AGE_LOOKAHEAD {
                    return ages;
                }
                looked += 1;
                let e = self.log.view(i, self.casm);
                let (warm, cold) = &mut ages[self.classes.of_entry(&e)];
                let slot = if e.refs() > 0 { warm } else { cold };
                slot.get_or_insert(now.saturating_sub(e.time));
            }
        }
        ages
    }

    /// Walks every structure and checks that they agree. For tests.
    #[cfg(test)]
    pub fn check_invariants(&self) {
        let mut live = 0;
        let mut bytes = 0;
        let mut referenced = 0;
        let mut recount = super::classes::Classes::new(&Default::default(), self.cas_enabled);
        recount.copy_table(&self.classes);
        for q in [Queue::Small, Queue::Main] {
            for s in self.log.queue(q) {
                let seg = &self.log.segs[s as usize];
                assert_eq!(seg.queue, q);
                let (mut seg_live, mut seg_bytes) = (0, 0);
                let mut off = 0;
                while let Some(i) = self.log.next_item(s, &mut off) {
                    let hdr = item::header(self.log.at(i));
                    seg_live += 1;
                    seg_bytes += hdr.total() as u32;
                    let e = self.log.view(i, self.casm);
                    let h = hash(e.key());
                    assert_eq!(self.find(e.key(), h), Some(i), "item {i:#x} indexed");
                    assert!(e.refs() <= self.tuning.freq_max, "{i:#x} over the cap");
                    referenced += u64::from(e.refs() > 0);
                    bytes += hdr.total() as u64
                        + if hdr.has(item::bit::LARGE) {
                            u64::from(hdr.vlen)
                        } else {
                            0
                        };
                    recount.link(&e);
                    live += 1;
                }
                assert_eq!(off, seg.buf.len(), "segment {s} walks to its end");
                assert_eq!(
                    (seg.live, seg.live_bytes),
                    (seg_live, seg_bytes),
                    "segment {s}"
                );
            }
        }
        assert_eq!(live, self.live);
        assert_eq!(live, self.index.len());
        assert_eq!(bytes, self.live_bytes);
        assert_eq!(referenced, self.classes.total(|k| k.warm));
        for id in self.classes.ids() {
            let (a, b) = (&recount.class[id], &self.classes.class[id]);
            assert_eq!(
                (a.number, a.requested, a.warm, a.used_chunks),
                (b.number, b.requested, b.warm, b.used_chunks),
                "class {id}"
            );
        }
    }
}
