//! memcached's slab classes as a yardstick for the per-class stats.
//!
//! This store has no slab classes: every item is one exact-size allocation.
//! But operators read memcached's per-class figures (`stats items`,
//! `stats slabs`, `memcached-tool display`, dashboards that graph
//! `items:N:evicted`), so each item is counted in the class memcached would
//! have put it in, with the class table memcached builds from the same
//! settings (`-n`, `-f`, `-o slab_chunk_max`, `-o slab_sizes`, handed over
//! as init hints). Counts are kept as items come and go, so a report costs
//! a walk over the ≤ 63 classes, never over the items.
//!
//! Items larger than `slab_chunk_max` are chunked as memcached chunks them:
//! the item counts in the largest class, a header takes a chunk of the
//! class that fits it, and the value fills chunks of the largest class plus
//! one of the class that fits what is left. Chunks only feed the modelled
//! `used_chunks` / `total_chunks`: "pages" are the high-water mark of the
//! chunks a class has needed, in memcached's 1 MB pages, which is what
//! memcached allocates to a class that never gives pages back.

use super::sizes::Sizes;
use crate::item::View as Entry;
use crate::mem::memcached_ntotal;
use wasmcached_sdk::abi::Hints;

/// memcached's `settings.slab_page_size`: 1 MB whatever `-I` says.
pub const PAGE_SIZE: u32 = 1024 * 1024;
/// `sizeof(item)` and `sizeof(item_chunk)` on 64-bit memcached.
const ITEM_HEADER: u64 = 48;
const CHUNK_HEADER: u64 = 48;
const ALIGN: u32 = 8;
/// Items up to this size find their class in [`Classes::small`] (most
/// items are small, and every hit asks for its item's class).
const SMALL_MAX: u64 = 2048;

/// One class's figures, named after memcached's `itemstats_t` and
/// `slab_stats`.
#[derive(Default, Clone, Debug)]
pub struct Class {
    /// Live items whose size falls in this class.
    pub number: u64,
    /// Sum of their memcached sizes (`mem_requested`).
    pub requested: u64,
    /// Of them, those with a non-zero CLOCK counter (`number_warm`).
    pub warm: u64,
    /// Chunks memcached would use for the live items, and the most it ever
    /// used (the pages it would hold).
    pub used_chunks: u64,
    pub chunks_high: u64,
    pub evicted: u64,
    pub evicted_nonzero: u64,
    /// Seconds since the last access of the class's last evicted item.
    pub evicted_time: u32,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub outofmemory: u64,
    /// Expired or flushed items freed to make room.
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    /// Expired or flushed items freed by the background scan.
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    pub moves_to_cold: u64,
    pub moves_to_warm: u64,
    pub moves_within_lru: u64,
    pub hits_to_warm: u64,
    pub hits_to_cold: u64,
    pub get_hits: u64,
    pub cmd_set: u64,
    pub delete_hits: u64,
    pub incr_hits: u64,
    pub decr_hits: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
}

pub struct Classes {
    /// Chunk size per class id; `size[0]` is unused (ids start at 1).
    size: Vec<u32>,
    largest: usize,
    chunk_max: u64,
    cas: bool,
    /// The class of sizes up to [`SMALL_MAX`], by size / 8 rounded up: the
    /// sizes are multiples of 8, so that is exact.
    small: Vec<u8>,
    /// Indexed by class id, like `size`.
    pub class: Vec<Class>,
    /// `stats sizes`.
    pub sizes: Sizes,
}

impl Classes {
    /// memcached's `slabs_init` with the settings in `hints`.
    pub fn new(hints: &Hints, cas: bool) -> Classes {
        let chunk_max = hints.slab_chunk_max.clamp(ALIGN, PAGE_SIZE);
        let size_of = hints.memcached_class_sizes();
        let largest = size_of.len() - 1;
        let mut classes = Classes {
            size: size_of,
            largest,
            chunk_max: chunk_max.into(),
            cas,
            small: Vec::new(),
            class: vec![Class::default(); largest + 1],
            sizes: Sizes::default(),
        };
        classes.small = (0..=SMALL_MAX / 8)
            .map(|i| classes.search(i * 8) as u8)
            .collect();
        classes
    }

    /// Takes `other`'s class table (for a recount in tests).
    #[cfg(test)]
    pub fn copy_table(&mut self, other: &Classes) {
        self.size.clone_from(&other.size);
        self.small.clone_from(&other.small);
        self.largest = other.largest;
        self.chunk_max = other.chunk_max;
        self.class = vec![Class::default(); other.class.len()];
    }

    /// The ids of the classes, 1 to the largest.
    pub fn ids(&self) -> std::ops::RangeInclusive<usize> {
        1..=self.largest
    }

    pub fn chunk_size(&self, id: usize) -> u32 {
        self.size[id]
    }

    pub fn per_page(&self, id: usize) -> u32 {
        PAGE_SIZE / self.size[id]
    }

    /// memcached's `slabs_clsid`: the first class whose chunks hold
    /// `ntotal` bytes, or the largest.
    #[inline]
    pub fn id(&self, ntotal: u64) -> usize {
        match self.small.get(ntotal.div_ceil(8) as usize) {
            Some(&id) => id.into(),
            None => self.search(ntotal),
        }
    }

    /// [`Classes::id`] the long way: the sizes grow, so a binary search
    /// over at most 63 of them.
    fn search(&self, ntotal: u64) -> usize {
        let i = self.size[1..].partition_point(|&s| u64::from(s) < ntotal) + 1;
        i.min(self.largest)
    }

    /// The class of an item of this key, value and flags.
    pub fn of(&self, key_len: usize, value_len: usize, client_flags: u32) -> usize {
        self.id(memcached_ntotal(key_len, value_len, client_flags, self.cas))
    }

    pub fn of_entry(&self, e: &Entry<'_>) -> usize {
        self.of(e.key().len(), e.value().len(), e.client_flags())
    }

    /// Counts a new live item.
    pub fn link(&mut self, e: &Entry<'_>) {
        let (key, value, flags) = (e.key().len(), e.value().len(), e.client_flags());
        let ntotal = memcached_ntotal(key, value, flags, self.cas);
        let id = self.id(ntotal);
        self.sizes.add(ntotal);
        let c = &mut self.class[id];
        c.number += 1;
        c.requested += ntotal;
        // Only a loaded item arrives with a counter (ABI v7 `refs`).
        if e.refs() > 0 {
            c.warm += 1;
        }
        self.chunks(key, value, flags, ntotal, |class| {
            class.used_chunks += 1;
            class.chunks_high = class.chunks_high.max(class.used_chunks);
        });
    }

    /// Uncounts a live item about to be freed or rewritten (before its CLOCK
    /// counter is cleared).
    pub fn unlink(&mut self, e: &Entry<'_>) {
        let (key, value, flags) = (e.key().len(), e.value().len(), e.client_flags());
        let ntotal = memcached_ntotal(key, value, flags, self.cas);
        let id = self.id(ntotal);
        self.sizes.remove(ntotal);
        let c = &mut self.class[id];
        c.number -= 1;
        c.requested -= ntotal;
        if e.refs() > 0 {
            c.warm -= 1;
        }
        self.chunks(key, value, flags, ntotal, |class| class.used_chunks -= 1);
    }

    /// Calls `f` for every chunk memcached would take for the item (see the
    /// module doc).
    fn chunks(
        &mut self,
        key_len: usize,
        value_len: usize,
        client_flags: u32,
        ntotal: u64,
        mut f: impl FnMut(&mut Class),
    ) {
        if ntotal <= self.chunk_max {
            let id = self.id(ntotal);
            return f(&mut self.class[id]);
        }
        let suffix = if client_flags != 0 { 4 } else { 0 };
        let cas = if self.cas { 8 } else { 0 };
        let header = key_len as u64 + 1 + suffix + ITEM_HEADER + CHUNK_HEADER + cas;
        let id = self.id(header);
        f(&mut self.class[id]);
        // The value and its "\r\n", in chunks that each lose a chunk header.
        let mut remain = value_len as u64 + 2;
        while remain > 0 {
            let size = (remain + CHUNK_HEADER).min(self.chunk_max);
            let id = self.id(size);
            f(&mut self.class[id]);
            remain -= size - CHUNK_HEADER;
        }
    }

    /// An item got a chance to spare from a hit (its frequency rose from
    /// 0); its key and value lengths and flags.
    pub fn warmed(&mut self, key_len: usize, value_len: usize, client_flags: u32) {
        let id = self.of(key_len, value_len, client_flags);
        let c = &mut self.class[id];
        c.warm += 1;
        c.moves_to_warm += 1;
    }

    /// Eviction gave `e` another round with its frequency lowered to
    /// `left` (the copy's unlink and link move the warm count).
    pub fn passed(&mut self, e: &Entry<'_>, left: u8) {
        let id = self.of_entry(e);
        let c = &mut self.class[id];
        if left == 0 {
            c.moves_to_cold += 1;
        } else {
            c.moves_within_lru += 1;
        }
    }

    /// The figures of the class of an item of this key, value and flags.
    pub fn of_new(&mut self, key_len: usize, value_len: usize, client_flags: u32) -> &mut Class {
        let id = self.of(key_len, value_len, client_flags);
        &mut self.class[id]
    }

    /// The figures of `e`'s class.
    pub fn of_item(&mut self, e: &Entry<'_>) -> &mut Class {
        let id = self.of_entry(e);
        &mut self.class[id]
    }

    /// Sums a figure over the classes (memcached's global item stats are
    /// such sums).
    pub fn total(&self, f: impl Fn(&Class) -> u64) -> u64 {
        self.class.iter().map(f).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classes_are_memcacheds() {
        let c = Classes::new(&Hints::default(), true);
        // memcached -vv: class 1 96, 2 120, 3 152, …, 39 524288.
        assert_eq!(c.ids(), 1..=39);
        assert_eq!(
            (c.chunk_size(1), c.chunk_size(2), c.chunk_size(3)),
            (96, 120, 152)
        );
        assert_eq!(c.chunk_size(12), 1184);
        assert_eq!((c.chunk_size(35), c.chunk_size(38)), (202_152, 394_840));
        assert_eq!(c.chunk_size(39), 524_288);
        assert_eq!(c.per_page(1), 10_922);
        assert_eq!((c.id(1), c.id(96), c.id(97), c.id(1184)), (1, 1, 2, 12));
        assert_eq!(c.id(10_000_000), 39);
        // The table of small sizes agrees with the search.
        for n in 0..3000 {
            assert_eq!(c.id(n), c.search(n), "{n}");
        }
    }

    #[test]
    fn factor_chunk_size_and_explicit_sizes() {
        let c = Classes::new(
            &Hints {
                growth_factor: 2.0,
                chunk_size: 100,
                ..Hints::default()
            },
            true,
        );
        // 148 → 152 (aligned), 304, 608, … below 512 KiB / 2, then 512 KiB.
        assert_eq!((c.chunk_size(1), c.chunk_size(2)), (152, 304));
        assert_eq!(c.chunk_size(*c.ids().end()), 524_288);
        assert!((0..3000).all(|n| c.id(n) == c.search(n)));
        let c = Classes::new(
            &Hints {
                slab_sizes: vec![100, 1000, 5000],
                ..Hints::default()
            },
            true,
        );
        assert_eq!(c.ids(), 1..=4);
        assert_eq!(
            (1..=4).map(|i| c.chunk_size(i)).collect::<Vec<_>>(),
            [104, 1000, 5000, 524_288]
        );
        assert!((0..3000).all(|n| c.id(n) == c.search(n)));
    }

    #[test]
    fn chunked_items_take_memcacheds_chunks() {
        let mut c = Classes::new(&Hints::default(), true);
        // Key "a", 700000 value bytes: memcached shows the item in class 39,
        // its header in class 2, a full chunk in 39 and the rest in 35.
        let value = vec![b'x'; 700_000];
        let e = Entry {
            hdr: Default::default(),
            key: b"a",
            value: &value,
            cas: 0,
            time: 0,
        };
        c.link(&e);
        let used: Vec<(usize, u64)> = c
            .ids()
            .filter(|&i| c.class[i].used_chunks > 0)
            .map(|i| (i, c.class[i].used_chunks))
            .collect();
        assert_eq!(used, [(2, 1), (35, 1), (39, 1)]);
        assert_eq!(c.class[39].number, 1);
        assert_eq!(c.class[39].requested, 700_060);
        c.unlink(&e);
        assert_eq!(c.total(|k| k.used_chunks + k.number + k.requested), 0);
        assert_eq!(c.class[35].chunks_high, 1);
    }
}
