//! The two LRU lists of memcached's segmented LRU, kept in slot links.
//!
//! New items enter the head of the probation list (memcached's HOT + COLD).
//! A hit only sets bits in the entry (FETCHED on the first fetch, ACTIVE on
//! later ones) and never relinks, so reads stay cheap; the store acts on the
//! bits when an item reaches a tail: an ACTIVE probation item moves to the
//! protected list (memcached's WARM) instead of being evicted, and the
//! protected list, capped at a share of the item bytes, rotates its ACTIVE
//! tail items and demotes the others back to probation. See `Store::victim`.

use crate::mem::footprint;
use crate::slab::{bit, Slab, NIL};

pub const COLD: usize = 0;
pub const WARM: usize = 1;

#[derive(Clone, Copy)]
pub struct Lru {
    head: [u32; 2],
    tail: [u32; 2],
    count: [u64; 2],
    bytes: [u64; 2],
}

impl Default for Lru {
    fn default() -> Self {
        Lru {
            head: [NIL; 2],
            tail: [NIL; 2],
            count: [0; 2],
            bytes: [0; 2],
        }
    }
}

fn list_of(slab: &Slab, i: u32) -> usize {
    if slab.get(i).has(bit::WARM) {
        WARM
    } else {
        COLD
    }
}

impl Lru {
    pub fn count(&self, list: usize) -> u64 {
        self.count[list]
    }

    /// Item footprints on `list`.
    pub fn bytes(&self, list: usize) -> u64 {
        self.bytes[list]
    }

    pub fn tail(&self, list: usize) -> u32 {
        self.tail[list]
    }

    /// Links slot `i` at the head of `list`.
    pub fn push_head(&mut self, slab: &mut Slab, i: u32, list: usize) {
        let head = self.head[list];
        let size = footprint(slab.get(i).data.len());
        {
            let e = slab.get_mut(i);
            e.prev = NIL;
            e.next = head;
            if list == WARM {
                e.bits |= bit::WARM;
            } else {
                e.bits &= !bit::WARM;
            }
        }
        if head == NIL {
            self.tail[list] = i;
        } else {
            slab.get_mut(head).prev = i;
        }
        self.head[list] = i;
        self.count[list] += 1;
        self.bytes[list] += size;
    }

    /// Unlinks slot `i` from whichever list holds it.
    pub fn unlink(&mut self, slab: &mut Slab, i: u32) {
        let list = list_of(slab, i);
        let (prev, next, size) = {
            let e = slab.get(i);
            (e.prev, e.next, footprint(e.data.len()))
        };
        if prev == NIL {
            self.head[list] = next;
        } else {
            slab.get_mut(prev).next = next;
        }
        if next == NIL {
            self.tail[list] = prev;
        } else {
            slab.get_mut(next).prev = prev;
        }
        self.count[list] -= 1;
        self.bytes[list] -= size;
    }

    /// Moves slot `i` to the head of `list`.
    pub fn move_to_head(&mut self, slab: &mut Slab, i: u32, list: usize) {
        self.unlink(slab, i);
        self.push_head(slab, i, list);
    }

    /// Points the neighbours of the item in slot `from` at slot `to`, which it
    /// is about to move into.
    pub fn relocate(&mut self, slab: &mut Slab, from: u32, to: u32) {
        let list = list_of(slab, from);
        let (prev, next) = {
            let e = slab.get(from);
            (e.prev, e.next)
        };
        if prev == NIL {
            self.head[list] = to;
        } else {
            slab.get_mut(prev).next = to;
        }
        if next == NIL {
            self.tail[list] = to;
        } else {
            slab.get_mut(next).prev = to;
        }
    }
}
