//! The hash index: chained buckets of slot numbers, resized incrementally.
//!
//! Like memcached's assoc.c the table grows when it holds 1.5 items per
//! bucket, and like Redis it moves a few buckets per insert (and more per
//! tick) instead of rehashing millions of items in one call, which would blow
//! the host's per-call deadline. It also shrinks after mass deletions so that
//! a lowered memory limit is not eaten by an oversized table.
//!
//! While resizing, bucket `b` of the old table still holds its items iff
//! `b >= pos`; new items always go into the new table.

use crate::hash::{hash, tag};
use crate::slab::{Slab, NIL};
use std::collections::TryReserveError;
use std::mem::size_of;

/// The smallest table; also what an empty store costs.
pub const MIN_BUCKETS: usize = 256;

pub struct Index {
    cur: Vec<u32>,
    old: Vec<u32>,
    pos: usize,
}

#[inline]
fn bucket(h: u64, len: usize) -> usize {
    h as usize & (len - 1)
}

/// Key equality, 8 bytes at a time. `==` on slices becomes a call to
/// `memcmp`, which on wasm32 is compiler-builtins' byte-by-byte loop: it was
/// the single most expensive function of a `get` (about 700 native
/// instructions for a 32-byte key, 15 % of the server's instructions per
/// request; docs/performance.md).
#[inline]
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    for (p, q) in (&mut x).zip(&mut y) {
        let p = u64::from_ne_bytes(p.try_into().expect("8 bytes"));
        let q = u64::from_ne_bytes(q.try_into().expect("8 bytes"));
        if p != q {
            return false;
        }
    }
    x.remainder().iter().zip(y.remainder()).all(|(p, q)| p == q)
}

fn scan(slab: &Slab, mut i: u32, tag: u16, key: &[u8]) -> Option<u32> {
    while i != NIL {
        let e = slab.get(i);
        if e.tag == tag && same_key(e.key(), key) {
            return Some(i);
        }
        i = e.hnext;
    }
    None
}

/// Points the link to `from` in the chain starting at `head` at `to`.
fn relink_in(head: &mut u32, slab: &mut Slab, from: u32, to: u32) -> bool {
    if *head == from {
        *head = to;
        return true;
    }
    let mut c = *head;
    while c != NIL {
        let n = slab.get(c).hnext;
        if n == from {
            slab.get_mut(c).hnext = to;
            return true;
        }
        c = n;
    }
    false
}

impl Default for Index {
    fn default() -> Self {
        Index {
            cur: vec![NIL; MIN_BUCKETS],
            old: Vec::new(),
            pos: 0,
        }
    }
}

impl Index {
    /// An empty index of `buckets` (a power of two, at least [`MIN_BUCKETS`]).
    pub fn with_buckets(buckets: usize) -> Result<Index, TryReserveError> {
        debug_assert!(buckets.is_power_of_two() && buckets >= MIN_BUCKETS);
        let mut cur = Vec::new();
        cur.try_reserve_exact(buckets)?;
        cur.resize(buckets, NIL);
        Ok(Index {
            cur,
            old: Vec::new(),
            pos: 0,
        })
    }

    /// Buckets of the current table.
    pub fn buckets(&self) -> usize {
        self.cur.len()
    }

    pub fn resizing(&self) -> bool {
        !self.old.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        ((self.cur.capacity() + self.old.capacity()) * size_of::<u32>()) as u64
    }

    /// memcached's `hash_power_level`.
    pub fn power(&self) -> u32 {
        self.cur.len().trailing_zeros()
    }

    pub fn find(&self, slab: &Slab, h: u64, key: &[u8]) -> Option<u32> {
        let t = tag(h);
        if self.resizing() {
            let ob = bucket(h, self.old.len());
            if ob >= self.pos {
                if let Some(i) = scan(slab, self.old[ob], t, key) {
                    return Some(i);
                }
            }
        }
        scan(slab, self.cur[bucket(h, self.cur.len())], t, key)
    }

    /// The first slot of the chain a key hashing to `h` is most likely in
    /// (a hint: while resizing, a new key may be in the other table).
    pub fn head(&self, h: u64) -> u32 {
        if self.resizing() {
            let ob = bucket(h, self.old.len());
            if ob >= self.pos {
                return self.old[ob];
            }
        }
        self.cur[bucket(h, self.cur.len())]
    }

    /// Adds slot `i`, whose key hashes to `h`.
    pub fn insert(&mut self, slab: &mut Slab, i: u32, h: u64) {
        let b = bucket(h, self.cur.len());
        let e = slab.get_mut(i);
        e.tag = tag(h);
        e.hnext = self.cur[b];
        self.cur[b] = i;
    }

    /// Points whatever links to slot `from` (key hash `h`) at `to`: `to` is
    /// `from`'s successor to remove it, or its new slot to move it.
    pub fn relink(&mut self, slab: &mut Slab, h: u64, from: u32, to: u32) {
        if self.resizing() {
            let ob = bucket(h, self.old.len());
            if ob >= self.pos && relink_in(&mut self.old[ob], slab, from, to) {
                return;
            }
        }
        let b = bucket(h, self.cur.len());
        let found = relink_in(&mut self.cur[b], slab, from, to);
        debug_assert!(found, "slot {from} not in its bucket");
    }

    pub fn remove(&mut self, slab: &mut Slab, i: u32, h: u64) {
        let next = slab.get(i).hnext;
        self.relink(slab, h, i, next);
    }

    /// Starts moving to a table of `buckets` (a power of two).
    pub fn start_resize(&mut self, buckets: usize) -> Result<(), TryReserveError> {
        debug_assert!(!self.resizing() && buckets.is_power_of_two());
        let mut table = Vec::new();
        table.try_reserve_exact(buckets)?;
        table.resize(buckets, NIL);
        self.old = std::mem::replace(&mut self.cur, table);
        self.pos = 0;
        Ok(())
    }

    /// Moves up to `budget` buckets (empty ones count 1/16) into the new table.
    pub fn migrate(&mut self, slab: &mut Slab, budget: usize) {
        let mut work = budget * 16;
        while self.resizing() && work > 0 {
            let mut i = std::mem::replace(&mut self.old[self.pos], NIL);
            work = work.saturating_sub(if i == NIL { 1 } else { 16 });
            while i != NIL {
                let next = slab.get(i).hnext;
                // Entries keep only 16 hash bits, so the bucket in the new
                // table comes from the key: a cache miss per moved item, paid
                // once per resize instead of 4 bytes in every entry forever.
                let h = hash(slab.get(i).key());
                let b = bucket(h, self.cur.len());
                slab.get_mut(i).hnext = self.cur[b];
                self.cur[b] = i;
                i = next;
            }
            self.pos += 1;
            if self.pos == self.old.len() {
                self.old = Vec::new();
                self.pos = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn same_key_compares_every_byte_and_the_length() {
        let base: Vec<u8> = (0..40u8).collect();
        for len in 0..=40 {
            let a = &base[..len];
            let copy = a.to_vec();
            assert!(same_key(a, &copy));
            for i in 0..len {
                let mut b = a.to_vec();
                b[i] ^= 0x80;
                assert!(!same_key(a, &b), "len {len} byte {i}");
            }
            if len > 0 {
                assert!(!same_key(a, &base[..len - 1]));
            }
        }
    }
}
