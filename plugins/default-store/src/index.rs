//! The hash index: open addressing over 4-byte item handles, with a byte
//! of hash per slot (SwissTable's control bytes) so that a probe compares
//! keys only for slots whose 7 tag bits match.
//!
//! 5 bytes a slot, filled up to 7/8: 5.7–7.1 bytes an item as the table
//! grows by 1.25 (memcached: an 8-byte bucket per 0.75–1.5 items plus an
//! 8-byte chain link in every item). Growing by 1.25 rather than 2 costs
//! more rehashing while a cache fills (each item's key is read again about
//! four times per doubling) and saves a byte or two per item for good. The table is a number of 16-slot
//! groups that need not be a power of two; a key's home group is
//! `(hash32 * groups) >> 32`, and a probe walks groups from there until one
//! has an empty slot.
//!
//! Resizing is incremental (memcached's assoc.c and Redis do the same):
//! the old table stays while a few groups at a time move to the new one,
//! so no call pays for millions of items. While it moves, lookups try the
//! new table, then the old. A removed key leaves a tombstone; when
//! tombstones fill the table, it is rebuilt at its size, the same way.

use std::collections::TryReserveError;

/// Slots per group.
pub const GROUP: usize = 16;
const EMPTY: u8 = 0x80;
const DELETED: u8 = 0xFE;
/// The fewest groups, also what an empty store costs (4 KiB + 1 KiB).
pub const MIN_GROUPS: usize = 64;

#[inline]
fn tag(h: u64) -> u8 {
    (h >> 57) as u8
}

#[inline]
fn home(h: u64, groups: usize) -> usize {
    (((h as u32) as u64 * groups as u64) >> 32) as usize
}

/// Bitmask of the bytes of `word` equal to `b` (bit 7 of each such byte);
/// may report a false match next to a true one, which the caller's key
/// comparison rejects (the classic SWAR zero-byte test).
#[inline]
fn matches(word: u64, b: u8) -> u64 {
    let x = word ^ (0x0101_0101_0101_0101u64.wrapping_mul(u64::from(b)));
    x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080
}

/// A group's control bytes as two little-endian words.
#[inline]
fn words(ctrl: &[u8; GROUP]) -> [u64; 2] {
    let (lo, hi) = ctrl.split_at(8);
    [
        u64::from_le_bytes(lo.try_into().expect("8")),
        u64::from_le_bytes(hi.try_into().expect("8")),
    ]
}

/// Handle `j` of a group's handles.
#[inline]
fn handle_at(slots: &[u8; GROUP * 4], j: usize) -> u32 {
    let b = &slots[j * 4..j * 4 + 4];
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

/// Where a table's memory comes from and goes back to: pages of one size
/// (the log's segment size), so that a table freed after a resize becomes
/// segments for items. A table in blocks of its own size left holes behind
/// every resize that no segment fit in: about 8 bytes per item at a
/// million items, as much as the table itself.
pub trait Pages {
    /// log2 of the page size.
    fn page_shift(&self) -> u32;
    /// An empty buffer with room for a page.
    fn lend(&mut self) -> Result<Vec<u8>, TryReserveError>;
    /// A page no longer used.
    fn give_back(&mut self, page: Vec<u8>);
}

/// A table: control bytes and 4-byte handles, each in pages.
struct Table {
    ctrl: Vec<Vec<u8>>,
    slots: Vec<Vec<u8>>,
    /// log2 of the page size.
    shift: u32,
    groups: usize,
    /// Full slots, and tombstones.
    len: usize,
    dead: usize,
}

impl Table {
    fn new(groups: usize, pages: &mut dyn Pages) -> Result<Table, TryReserveError> {
        let groups = groups.max(1);
        let n = groups * GROUP;
        let shift = pages.page_shift();
        let size = 1usize << shift;
        let mut t = Table {
            ctrl: Vec::new(),
            slots: Vec::new(),
            shift,
            groups,
            len: 0,
            dead: 0,
        };
        let fill = |pages: &mut dyn Pages, v: &mut Vec<Vec<u8>>, bytes: usize, byte: u8| {
            let mut left = bytes;
            while left > 0 {
                let mut page = pages.lend()?;
                page.clear();
                page.resize(left.min(size), byte);
                left -= page.len();
                v.push(page);
            }
            Ok(())
        };
        let built =
            fill(pages, &mut t.ctrl, n, EMPTY).and_then(|()| fill(pages, &mut t.slots, n * 4, 0));
        if let Err(e) = built {
            t.give_back(pages);
            return Err(e);
        }
        Ok(t)
    }

    fn give_back(self, pages: &mut dyn Pages) {
        for p in self.ctrl.into_iter().chain(self.slots) {
            pages.give_back(p);
        }
    }

    fn capacity(&self) -> usize {
        self.groups * GROUP
    }

    #[inline]
    fn mask(&self) -> usize {
        (1 << self.shift) - 1
    }

    #[inline]
    fn ctrl(&self, i: usize) -> u8 {
        self.ctrl[i >> self.shift][i & self.mask()]
    }

    #[inline]
    fn set_ctrl(&mut self, i: usize, c: u8) {
        let m = self.mask();
        self.ctrl[i >> self.shift][i & m] = c;
    }

    #[inline]
    fn slot(&self, i: usize) -> u32 {
        let at = i * 4;
        let p = &self.slots[at >> self.shift];
        let o = at & self.mask();
        u32::from_le_bytes(p[o..o + 4].try_into().expect("4 bytes"))
    }

    #[inline]
    fn set(&mut self, i: usize, ctrl: u8, handle: u32) {
        self.set_ctrl(i, ctrl);
        self.set_slot(i, handle);
    }

    #[inline]
    fn set_slot(&mut self, i: usize, handle: u32) {
        let at = i * 4;
        let m = self.mask();
        let p = &mut self.slots[at >> self.shift];
        let o = at & m;
        p[o..o + 4].copy_from_slice(&handle.to_le_bytes());
    }

    fn bytes(&self) -> u64 {
        (self.capacity() * 5) as u64
    }

    #[inline]
    fn words(&self, g: usize) -> [u64; 2] {
        words(self.group(g).0)
    }

    /// Group `g`'s control bytes and handles. A page holds whole groups
    /// (pages are powers of two of at least 4 KiB), so a probe finds both
    /// arrays once and then indexes them with no more page arithmetic.
    #[inline]
    fn group(&self, g: usize) -> (&[u8; GROUP], &[u8; GROUP * 4]) {
        let i = g * GROUP;
        let m = self.mask();
        let (c, s) = (i & m, (i * 4) & m);
        let ctrl = &self.ctrl[i >> self.shift][c..c + GROUP];
        let slots = &self.slots[(i * 4) >> self.shift][s..s + GROUP * 4];
        (
            ctrl.try_into().expect("a whole group"),
            slots.try_into().expect("a whole group"),
        )
    }

    /// The slot holding a handle for which `eq` says yes, and the handle.
    #[inline]
    fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, u32)> {
        let t = tag(h);
        let mut g = home(h, self.groups);
        for _ in 0..self.groups {
            let (ctrl, slots) = self.group(g);
            let words = words(ctrl);
            for (half, w) in words.iter().enumerate() {
                let mut m = matches(*w, t);
                while m != 0 {
                    let j = half * 8 + (m.trailing_zeros() / 8) as usize;
                    if ctrl[j] == t {
                        let x = handle_at(slots, j);
                        if eq(x) {
                            return Some((g * GROUP + j, x));
                        }
                    }
                    m &= m - 1;
                }
            }
            if matches(words[0], EMPTY) | matches(words[1], EMPTY) != 0 {
                return None;
            }
            g += 1;
            if g == self.groups {
                g = 0;
            }
        }
        None
    }

    /// Puts `handle` in the first free slot of its probe (the caller knows
    /// the key is not in the table). The table always has a free slot: it
    /// grows before it is 7/8 full.
    fn insert(&mut self, h: u64, handle: u32) {
        let mut g = home(h, self.groups);
        loop {
            // EMPTY and DELETED are the control bytes with the top bit set
            // (a tag has 7 bits).
            for (half, w) in self.words(g).into_iter().enumerate() {
                let free = w & 0x8080_8080_8080_8080;
                if free != 0 {
                    let i = g * GROUP + half * 8 + (free.trailing_zeros() / 8) as usize;
                    if self.ctrl(i) == DELETED {
                        self.dead -= 1;
                    }
                    self.set(i, tag(h), handle);
                    self.len += 1;
                    return;
                }
            }
            g += 1;
            if g == self.groups {
                g = 0;
            }
        }
    }

    /// Empties slot `i`. Probes start at a group's first slot and stop at
    /// the first group with an EMPTY slot, and only a rebuild makes slots
    /// EMPTY: so a group that still has one was never full, no probe ever
    /// went past it, and a slot in it can become EMPTY again. Only in a
    /// group that filled up does a removal leave a tombstone.
    fn remove_at(&mut self, i: usize) {
        let g = i / GROUP;
        let words = self.words(g);
        self.len -= 1;
        if matches(words[0], EMPTY) | matches(words[1], EMPTY) != 0 {
            self.set_ctrl(i, EMPTY);
        } else {
            self.set_ctrl(i, DELETED);
            self.dead += 1;
        }
    }
}

/// A table the index no longer uses; [`Retired::give_back`] returns its
/// pages.
pub struct Retired(Table);

impl Retired {
    pub fn give_back(self, pages: &mut dyn Pages) {
        self.0.give_back(pages)
    }
}

pub struct Index {
    cur: Table,
    /// The table being emptied into `cur`, and the next group to move.
    old: Option<(Table, usize)>,
}

impl Index {
    pub fn with_slots(slots: usize, pages: &mut dyn Pages) -> Result<Index, TryReserveError> {
        Ok(Index {
            cur: Table::new(slots.div_ceil(GROUP).max(MIN_GROUPS), pages)?,
            old: None,
        })
    }

    /// Items indexed.
    pub fn len(&self) -> usize {
        self.cur.len + self.old.as_ref().map_or(0, |(t, _)| t.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots of the current table.
    pub fn slots(&self) -> usize {
        self.cur.capacity()
    }

    pub fn bytes(&self) -> u64 {
        self.cur.bytes() + self.old.as_ref().map_or(0, |(t, _)| t.bytes())
    }

    pub fn resizing(&self) -> bool {
        self.old.is_some()
    }

    /// Whether the new table filled up before the old one was emptied (a
    /// shrink followed by many inserts): the rest must move now.
    pub fn must_finish(&self) -> bool {
        self.resizing() && (self.cur.len + self.cur.dead + 1) * 8 >= self.cur.capacity() * 7
    }

    /// The handle `eq` accepts among those whose hash is `h`.
    #[inline]
    pub fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if let Some((_, x)) = self.cur.find(h, &mut eq) {
            return Some(x);
        }
        let (old, _) = self.old.as_ref()?;
        old.find(h, eq).map(|(_, x)| x)
    }

    /// The first handle in `h`'s home group whose tag matches (for reading
    /// ahead: where a lookup will most likely end).
    #[inline]
    pub fn first_candidate(&self, h: u64) -> Option<u32> {
        let t = tag(h);
        let (ctrl, slots) = self.cur.group(home(h, self.cur.groups));
        for (half, w) in words(ctrl).iter().enumerate() {
            let mut m = matches(*w, t);
            while m != 0 {
                let j = half * 8 + (m.trailing_zeros() / 8) as usize;
                if ctrl[j] == t {
                    return Some(handle_at(slots, j));
                }
                m &= m - 1;
            }
        }
        None
    }

    /// Adds a handle whose key is not indexed yet.
    pub fn insert(&mut self, h: u64, handle: u32) {
        self.cur.insert(h, handle);
    }

    /// The item `from` moved to `to`.
    pub fn replace(&mut self, h: u64, from: u32, to: u32) {
        if let Some((i, _)) = self.cur.find(h, |x| x == from) {
            self.cur.set_slot(i, to);
        } else if let Some((old, _)) = self.old.as_mut() {
            let (i, _) = old.find(h, |x| x == from).expect("indexed handle");
            old.set_slot(i, to);
        } else {
            panic!("handle {from:#x} not indexed");
        }
    }

    pub fn remove(&mut self, h: u64, handle: u32) {
        if let Some((i, _)) = self.cur.find(h, |x| x == handle) {
            self.cur.remove_at(i);
        } else if let Some((old, _)) = self.old.as_mut() {
            let (i, _) = old.find(h, |x| x == handle).expect("indexed handle");
            old.remove_at(i);
        } else {
            panic!("handle {handle:#x} not indexed");
        }
    }

    /// The slots the table should have, if it needs a new one: shrunk
    /// below 1/8 full (not under `min`), rebuilt at its size when
    /// tombstones fill it, else grown by 1.25 past 7/8 full.
    pub fn wanted(&self, min: usize) -> Option<usize> {
        if self.resizing() {
            return None;
        }
        let (cap, len, dead) = (self.cur.capacity(), self.cur.len, self.cur.dead);
        if cap > min && len * 8 < cap {
            return Some((len * 3).max(min));
        }
        if (len + dead) * 8 >= cap * 7 {
            if len * 8 < cap * 5 {
                return Some(cap);
            }
            return Some(cap + cap / 4);
        }
        None
    }

    /// Whether the table is so full that it must grow even where growth
    /// was declined (`-o no_hashexpand`): open addressing cannot hold more
    /// items than slots.
    pub fn must_grow(&self) -> bool {
        (self.cur.len + self.cur.dead) * 16 >= self.cur.capacity() * 15
    }

    pub fn start_resize(
        &mut self,
        slots: usize,
        pages: &mut dyn Pages,
    ) -> Result<(), TryReserveError> {
        assert!(!self.resizing());
        let new = Table::new(slots.div_ceil(GROUP).max(MIN_GROUPS), pages)?;
        let old = std::mem::replace(&mut self.cur, new);
        self.old = Some((old, 0));
        Ok(())
    }

    /// Moves up to `groups` groups of the old table into the new one;
    /// `hash_of` gives an indexed handle's key hash. Returns the old table's
    /// pages when it is done with them.
    pub fn migrate(
        &mut self,
        groups: usize,
        mut hash_of: impl FnMut(u32) -> u64,
    ) -> Option<Retired> {
        let (old, next) = self.old.as_mut()?;
        let end = (*next + groups).min(old.groups);
        for i in *next * GROUP..end * GROUP {
            let c = old.ctrl(i);
            if c != EMPTY && c != DELETED {
                let handle = old.slot(i);
                self.cur.insert(hash_of(handle), handle);
                // A tombstone, not EMPTY: probes for keys not moved yet
                // may pass through this group.
                old.remove_at(i);
            }
        }
        *next = end;
        if end == old.groups {
            return self.old.take().map(|(t, _)| Retired(t));
        }
        None
    }

    /// Every indexed handle (tests).
    #[cfg(test)]
    pub fn handles(&self) -> Vec<u32> {
        let mut v = Vec::new();
        for t in std::iter::once(&self.cur).chain(self.old.as_ref().map(|(t, _)| t)) {
            for i in 0..t.capacity() {
                if t.ctrl(i) != EMPTY && t.ctrl(i) != DELETED {
                    v.push(t.slot(i));
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Pages of 4 KiB from the heap, counted.
    #[derive(Default)]
    struct Heap {
        out: usize,
    }

    impl Pages for Heap {
        fn page_shift(&self) -> u32 {
            12
        }
        fn lend(&mut self) -> Result<Vec<u8>, TryReserveError> {
            self.out += 1;
            Ok(Vec::with_capacity(4096))
        }
        fn give_back(&mut self, page: Vec<u8>) {
            assert_eq!(page.capacity(), 4096);
            self.out -= 1;
        }
    }

    fn h(k: u32) -> u64 {
        crate::hash::hash(&k.to_le_bytes())
    }

    #[test]
    fn swar_match_finds_every_equal_byte() {
        let w = u64::from_le_bytes([1, 0x80, 7, 0x80, 0, 0x7f, 0x80, 9]);
        let m = matches(w, 0x80);
        for (i, b) in w.to_le_bytes().iter().enumerate() {
            let hit = m & (0x80 << (i * 8)) != 0;
            assert_eq!(hit, *b == 0x80, "byte {i}");
        }
    }

    /// Random inserts, removals and moves against a HashMap, through growth,
    /// shrinking, tombstone rebuilds and half-done migrations.
    #[test]
    fn matches_a_model_through_resizes() {
        let mut pool = Heap::default();
        let mut idx = Index::with_slots(0, &mut pool).unwrap();
        let mut model: HashMap<u32, u32> = HashMap::new(); // key -> handle
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next_handle = 1u32;
        let mut handle_key: HashMap<u32, u32> = HashMap::new();
        for step in 0..200_000u32 {
            if step == 100_000 {
                // The key space narrows: the keys outside it go.
                let gone: Vec<u32> = model.keys().copied().filter(|&k| k >= 2_000).collect();
                for k in gone {
                    idx.remove(h(k), model.remove(&k).unwrap());
                    let hk = &handle_key;
                    if let Some(r) = idx.migrate(2, |x| h(hk[&x])) {
                        r.give_back(&mut pool);
                    }
                    if let Some(n) = idx.wanted(MIN_GROUPS * GROUP) {
                        idx.start_resize(n, &mut pool).unwrap();
                    }
                }
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = (rng % if step < 100_000 { 50_000 } else { 2_000 }) as u32;
            let found = idx.find(h(key), |x| handle_key[&x] == key);
            assert_eq!(found, model.get(&key).copied(), "step {step} key {key}");
            match (rng >> 40) % 4 {
                0 | 1 if found.is_none() => {
                    idx.insert(h(key), next_handle);
                    model.insert(key, next_handle);
                    handle_key.insert(next_handle, key);
                    next_handle += 1;
                }
                2 if found.is_some() => {
                    idx.replace(h(key), found.unwrap(), next_handle);
                    model.insert(key, next_handle);
                    handle_key.insert(next_handle, key);
                    next_handle += 1;
                }
                3 if found.is_some() => {
                    idx.remove(h(key), found.unwrap());
                    model.remove(&key);
                }
                _ => {}
            }
            if let Some(n) = idx.wanted(MIN_GROUPS * GROUP) {
                idx.start_resize(n, &mut pool).unwrap();
            }
            let hk = &handle_key;
            if let Some(r) = idx.migrate(2, |x| h(hk[&x])) {
                r.give_back(&mut pool);
            }
            assert_eq!(idx.len(), model.len());
        }
        let mut a = idx.handles();
        let mut b: Vec<u32> = model.values().copied().collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        // It shrank back after the key space narrowed.
        assert!(idx.slots() < 20_000, "{} slots", idx.slots());
        // Every page of a retired table went back.
        let slots = idx.slots() + idx.old.as_ref().map_or(0, |(t, _)| t.capacity());
        assert!(
            pool.out <= 2 * (slots * 5).div_ceil(4096) + 4,
            "{} pages out",
            pool.out
        );
    }

    #[test]
    fn a_full_table_stays_under_seven_eighths() {
        let mut pool = Heap::default();
        let mut idx = Index::with_slots(0, &mut pool).unwrap();
        for k in 0..100_000u32 {
            idx.insert(h(k), k);
            if let Some(n) = idx.wanted(0) {
                idx.start_resize(n, &mut pool).unwrap();
            }
            if let Some(r) = idx.migrate(4, h) {
                r.give_back(&mut pool);
            }
        }
        while idx.resizing() {
            if let Some(r) = idx.migrate(1024, h) {
                r.give_back(&mut pool);
            }
        }
        let load = idx.len() as f64 / idx.slots() as f64;
        assert!((0.55..=0.875).contains(&load), "load {load}");
        for k in 0..100_000u32 {
            assert_eq!(idx.find(h(k), |x| x == k), Some(k));
        }
        assert_eq!(idx.find(h(100_001), |x| x == 100_001), None);
    }
}
