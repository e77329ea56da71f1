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
use crate::clock::{refs, MAX_SWEEP};
use crate::slab::{CHUNK, ENTRY_SIZE, NIL};
#[cfg(test)]
use crate::{hash::hash, mem::alloc_size};
use wasmcached_sdk::abi::stats_group;
use wasmcached_sdk::guest::{self, StatsWriter};

impl Store {
    pub fn write_stats(&self, group: i32, out: &mut StatsWriter<'_>) {
        let now = guest::now();
        let s = &self.stats;
        let age = |i: u32| {
            if i == NIL {
                0
            } else {
                now.saturating_sub(self.slab.get(i).time)
            }
        };
        match group {
            stats_group::GENERAL => {
                out.stat("curr_items", self.curr_items());
                out.stat("total_items", s.total_items);
                out.stat("bytes", self.item_bytes());
                out.stat("limit_maxbytes", self.budget);
                out.stat("expired_unfetched", s.expired_unfetched);
                out.stat("evicted_unfetched", s.evicted_unfetched);
                out.stat("evicted_active", s.evicted_active);
                out.stat("evictions", s.evictions);
                out.stat("reclaimed", s.reclaimed);
                out.stat("crawler_reclaimed", s.crawler_reclaimed);
                out.stat("crawler_items_checked", s.crawler_items_checked);
                out.stat("lrutail_reflocked", 0);
                out.stat("moves_to_cold", s.moves_to_cold);
                out.stat("moves_to_warm", s.moves_to_warm);
                out.stat("moves_within_lru", s.moves_within_lru);
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
            }
            stats_group::ITEMS => {
                // memcached lists only classes that hold items.
                if self.curr_items() == 0 {
                    return;
                }
                let mut item = |name: &str, v: u64| out.stat(&format!("items:1:{name}"), v);
                item("number", self.curr_items() as u64);
                let warm = self.clock.referenced();
                item("number_hot", 0);
                item("number_warm", warm);
                item("number_cold", self.curr_items() as u64 - warm);
                item("age_hot", 0);
                let (next_warm, next_cold) = self.ahead_of_hand();
                item("age_warm", age(next_warm).into());
                // memcached's age is the COLD tail's: the next item to go,
                // or failing one in sight, the next the hand will reach.
                let next_out = if next_cold != NIL {
                    next_cold
                } else {
                    next_warm
                };
                item("age", age(next_out).into());
                item("mem_requested", self.item_bytes());
                item("evicted", s.evictions);
                item("evicted_nonzero", s.evicted_nonzero);
                item("evicted_time", s.evicted_time.into());
                item("outofmemory", s.outofmemory);
                item("tailrepairs", 0);
                item("reclaimed", s.reclaimed);
                item("expired_unfetched", s.expired_unfetched);
                item("evicted_unfetched", s.evicted_unfetched);
                item("evicted_active", s.evicted_active);
                item("crawler_reclaimed", s.crawler_reclaimed);
                item("crawler_items_checked", s.crawler_items_checked);
                item("lrutail_reflocked", 0);
                item("moves_to_cold", s.moves_to_cold);
                item("moves_to_warm", s.moves_to_warm);
                item("moves_within_lru", s.moves_within_lru);
                item("direct_reclaims", 0);
                item("hits_to_hot", 0);
                item("hits_to_warm", s.hits_to_warm);
                item("hits_to_cold", s.hits_to_cold);
                item("hits_to_temp", 0);
            }
            stats_group::SLABS => {
                // One class whose chunks are the fixed-size metadata slots;
                // keys and values are allocated separately.
                let pages = self.slab.chunks();
                if pages > 0 {
                    let mut class = |name: &str, v: u64| out.stat(&format!("1:{name}"), v);
                    class("chunk_size", ENTRY_SIZE as u64);
                    class("chunks_per_page", CHUNK as u64);
                    class("total_pages", pages as u64);
                    class("total_chunks", self.slab.capacity() as u64);
                    class("used_chunks", self.slab.live() as u64);
                    class("free_chunks", self.slab.free() as u64);
                    class("free_chunks_end", 0);
                    class("get_hits", s.slab_get_hits);
                    class("cmd_set", s.slab_cmd_set);
                    class("delete_hits", s.slab_delete_hits);
                    class("incr_hits", s.slab_incr_hits);
                    class("decr_hits", s.slab_decr_hits);
                    class("cas_hits", s.slab_cas_hits);
                    class("cas_badval", s.slab_cas_badval);
                    class("touch_hits", s.slab_touch_hits);
                }
                out.stat("active_slabs", u8::from(pages > 0));
                out.stat("total_malloced", self.used());
            }
            _ => {}
        }
    }

    /// The first referenced and the first unreferenced live item at or after
    /// the hand, within a bounded look-ahead (NIL where none was seen).
    fn ahead_of_hand(&self) -> (u32, u32) {
        let cap = self.slab.capacity() as u32;
        let (mut warm, mut cold) = (NIL, NIL);
        let mut i = self.clock.hand;
        for _ in 0..cap.min(MAX_SWEEP) {
            if i >= cap {
                i = 0;
            }
            let e = self.slab.get(i);
            if e.is_live() {
                let slot = if refs(e) > 0 { &mut warm } else { &mut cold };
                if *slot == NIL {
                    *slot = i;
                }
                if warm != NIL && cold != NIL {
                    break;
                }
            }
            i += 1;
        }
        (warm, cold)
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
        assert_eq!(referenced, self.clock.referenced());
        self.slab.check_free_list();
        assert_eq!(data, self.data_bytes);
        assert_eq!(self.slab.capacity(), live + self.slab.free());
    }
}
