//! What the store reports: memcached's `stats`, `stats items` and
//! `stats slabs` lines for the host to sum over shards, and (for tests) a
//! cross-check of every internal structure.

use super::Store;
use crate::lru::{COLD, WARM};
use crate::slab::{CHUNK, ENTRY_SIZE, NIL};
#[cfg(test)]
use crate::{hash::hash, mem::alloc_size, slab::bit};
use wasmcached_sdk::abi::stats_group;
use wasmcached_sdk::guest::{self, StatsWriter};

impl Store {
    pub fn write_stats(&self, group: i32, out: &mut StatsWriter<'_>) {
        let now = guest::now();
        let s = &self.stats;
        let age = |list: usize| {
            let t = self.lru.tail(list);
            if t == NIL {
                0
            } else {
                now.saturating_sub(self.slab.get(t).time)
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
                out.stat("hash_bytes", self.index.bytes());
                out.stat("hash_is_expanding", u8::from(self.index.resizing()));
                out.stat("malloc_fails", s.malloc_fails);
            }
            stats_group::ITEMS => {
                // memcached lists only classes that hold items.
                if self.curr_items() == 0 {
                    return;
                }
                let mut item = |name: &str, v: u64| out.stat(&format!("items:1:{name}"), v);
                item("number", self.curr_items() as u64);
                item("number_hot", 0);
                item("number_warm", self.lru.count(WARM));
                item("number_cold", self.lru.count(COLD));
                item("age_hot", 0);
                item("age_warm", age(WARM).into());
                // memcached's age is the COLD tail's: the next item to go.
                let next_out = if self.lru.count(COLD) > 0 { COLD } else { WARM };
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
        let mut seen = 0;
        for list in [COLD, WARM] {
            let mut n = 0;
            let mut bytes = 0;
            let mut prev = NIL;
            let mut t = self.lru.tail(list);
            while t != NIL {
                let e = self.slab.get(t);
                assert!(e.is_live());
                assert_eq!(e.has(bit::WARM), list == WARM);
                assert_eq!(e.next, prev);
                n += 1;
                bytes += crate::mem::footprint(e.data.len());
                data += alloc_size(e.data.len());
                prev = t;
                t = e.prev;
            }
            assert_eq!(n, self.lru.count(list));
            assert_eq!(bytes, self.lru.bytes(list));
            seen += n;
        }
        assert_eq!(seen as usize, live);
        assert_eq!(data, self.data_bytes);
        assert_eq!(self.slab.capacity(), live + self.slab.free());
    }
}
