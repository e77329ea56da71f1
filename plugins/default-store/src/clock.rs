//! CLOCK eviction: a hand sweeping the slots, and per-item reference counters.
//!
//! Every live item carries a small saturating counter in its `bits`
//! ([`bit::REF`]): a hit raises it (up to `clock_max`, see `Tuning`), and the
//! hand lowers it as it passes; the hand evicts the first item it finds at 0.
//! An item therefore survives as many revolutions of the hand without a hit
//! as its counter says, which keeps frequently read items over ones read
//! once or twice. A hit only touches the item's own slot, as the segmented
//! LRU's bit-setting hits did, and no item pays for list links any more.
//!
//! The hand walks slot order. New items mostly land in the slots the hand
//! has just emptied (the free list hands out the most recently freed slot
//! first), i.e. right behind it, so a new item gets a full revolution before
//! it is looked at: the CLOCK equivalent of entering at the LRU head.
//! The search itself lives in `Store::victim`, which bounds it.
//!
//! The first hit on an item still close behind the hand does not raise its
//! counter (it only marks the item FETCHED): a read right after the write,
//! such as a session or token read once, is a correlated reference in
//! LRU-K's terms and says nothing about reuse. Counting it let such items
//! outstay hot ones by a revolution and fell below plain LRU once they were
//! common (tests::hit_ratio_is_at_least_lru), while ignoring every first hit
//! (memcached's two-fetch rule) cost hit ratio on pure Zipf, where an item
//! of middling popularity is hit about once per revolution.

use crate::slab::{bit, Entry, Slab};

/// Items one victim search may pass before it settles for the least
/// referenced one it saw (memcached bounds its tail search the same way), so
/// that one store never sweeps a store full of hot items.
pub const MAX_SWEEP: u32 = 256;

/// The share of the items behind the hand (1/YOUNG_DIV of them) within which
/// a first hit does not count. Measured on tests::hit_ratio_is_at_least_lru's
/// traces with clock_max=3: 1/16 costs pure Zipf 0.0005 against counting
/// every first hit (1/2 costs 0.004) and gains 0.015 with 30 % read-once
/// items, the most of 1/16, 1/8, 1/4 and 1/2.
pub const YOUNG_DIV: usize = 16;

/// The largest counter the two bits hold.
pub const MAX_REFS: u8 = bit::REF >> bit::REF_SHIFT;

/// An item's reference counter.
#[inline]
pub fn refs(e: &Entry) -> u8 {
    (e.bits & bit::REF) >> bit::REF_SHIFT
}

pub struct Clock {
    /// The next slot the hand looks at (may be past the last slot; it then
    /// starts over at 0).
    pub hand: u32,
    /// What a hit may raise a counter to (1 = plain second chance).
    max: u8,
}

impl Clock {
    pub fn new(max: u8) -> Clock {
        debug_assert!((1..=MAX_REFS).contains(&max));
        Clock { hand: 0, max }
    }

    /// What a hit may raise a counter to.
    pub fn max(&self) -> u8 {
        self.max
    }

    /// Whether slot `i` is among the last 1/[`YOUNG_DIV`] of the items behind
    /// the hand: an item stored into a slot the hand just emptied stays
    /// there for the next live/16 evictions. (An item stored into a slot a
    /// delete freed elsewhere may look older than it is; it then gets plain
    /// CLOCK's treatment.)
    pub fn is_young(&self, i: u32, slab: &Slab) -> bool {
        let cap = slab.capacity() as u32;
        let hand = self.hand.min(cap);
        let behind = (hand + cap - i - 1) % cap;
        (behind as usize) < slab.live() / YOUNG_DIV
    }

    /// A hit on `e`. Returns whether the item already had a chance to
    /// spare (a hit "to warm" in memcached's terms).
    #[inline]
    pub fn hit(&mut self, e: &mut Entry) -> bool {
        let r = refs(e);
        if r < self.max {
            e.bits += bit::REF_ONE;
        }
        r > 0
    }

    /// The hand passes `e`, which has a non-zero counter: one chance used.
    /// Returns the counter left.
    #[inline]
    pub fn pass(&mut self, e: &mut Entry) -> u8 {
        let r = refs(e);
        debug_assert!(r > 0);
        e.bits -= bit::REF_ONE;
        r - 1
    }

    /// `e` is freed or rewritten as a new item: its counter goes.
    #[inline]
    pub fn forget(&mut self, e: &mut Entry) {
        e.bits &= !bit::REF;
    }
}
