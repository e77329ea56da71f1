//! Item records: fixed-size metadata slots in chunks, addressed by `u32`.
//!
//! An item is one [`Entry`] (32 bytes on wasm32) plus one heap allocation
//! holding the client flags (when non-zero), key and value back to back.
//! Links between entries (hash chains, the free list) are slot numbers rather
//! than pointers: half the size on 64-bit hosts and nothing for the borrow
//! checker to object to. Eviction needs no links at all: the CLOCK hand
//! (`crate::clock`) walks the slots in slot order.
//!
//! Slots live in fixed chunks instead of one `Vec` so that growing never
//! copies (or needs twice the memory for) the whole table, which on wasm32
//! would fail long before 4 GiB. Free slots form a doubly linked list so the
//! store can pull particular slots out of it when it empties the last chunk
//! (see `Store::compact_step`). A free slot has no expiry time and no access
//! time, so the list borrows those two fields for its links instead of
//! costing every live item 8 bytes of links it never uses.

use std::collections::TryReserveError;
use std::mem::size_of;
use std::ops::Range;

/// "No slot": the end of a list or chain.
pub const NIL: u32 = u32::MAX;

const CHUNK_SHIFT: u32 = 8;
/// Slots per chunk. Small enough that a tiny budget is not eaten by one chunk.
pub const CHUNK: usize = 1 << CHUNK_SHIFT;

/// `Entry::bits`.
pub mod bit {
    /// The slot holds an item (else it is on the free list).
    pub const LIVE: u8 = 1 << 0;
    /// Fetched at least once since stored (memcached ITEM_FETCHED).
    pub const FETCHED: u8 = 1 << 1;
    /// Two bits: the CLOCK reference counter (see `crate::clock`), raised
    /// by hits and lowered by the passing hand. Non-zero is memcached's
    /// ITEM_ACTIVE as far as the stats are concerned.
    pub const REF: u8 = 0b11 << REF_SHIFT;
    /// One step of [`REF`].
    pub const REF_ONE: u8 = 1 << REF_SHIFT;
    pub const REF_SHIFT: u32 = 2;
    /// Marked stale by a meta delete with `I` (memcached ITEM_STALE).
    pub const STALE: u8 = 1 << 4;
    /// A client was told it won the right to recache (memcached ITEM_TOKEN_SENT).
    pub const TOKEN_SENT: u8 = 1 << 5;
    /// The key arrived base64 encoded (memcached ITEM_KEY_BINARY).
    pub const KEY_BINARY: u8 = 1 << 6;
    /// `data` starts with 4 bytes of non-zero client flags (memcached's
    /// ITEM_CFLAGS: an item with flags 0 does not pay for them).
    pub const FLAGS: u8 = 1 << 7;
}

/// One item's metadata. Nothing is wider than 4 bytes on wasm32 (the CAS is
/// two halves), so it packs into 32 bytes there without padding.
#[derive(Default)]
pub struct Entry {
    /// Client flags (only when [`bit::FLAGS`] is set, little endian), key,
    /// value.
    pub data: Box<[u8]>,
    cas: [u32; 2],
    /// Server time the item expires at; 0 = never. On a free slot: the
    /// previous free slot.
    pub exptime: u32,
    /// Server time of the last store or access (memcached `it->time`). On a
    /// free slot: the next free slot.
    pub time: u32,
    /// Next entry in the same hash bucket.
    pub hnext: u32,
    pub key_len: u8,
    pub bits: u8,
    /// High bits of the key's hash: most chain steps end here without
    /// touching the key bytes.
    pub tag: u16,
}

/// Bytes of one metadata slot.
pub const ENTRY_SIZE: usize = size_of::<Entry>();

#[cfg(target_arch = "wasm32")]
const _: () = assert!(ENTRY_SIZE == 32);

/// Bytes in front of the key in an item's `data` for `client_flags`.
#[inline]
pub fn flags_len(client_flags: u32) -> usize {
    if client_flags != 0 {
        4
    } else {
        0
    }
}

impl Entry {
    /// Where the key starts in `data`.
    #[inline]
    fn key_start(&self) -> usize {
        if self.bits & bit::FLAGS != 0 {
            4
        } else {
            0
        }
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        let start = self.key_start();
        &self.data[start..start + self.key_len as usize]
    }

    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.data[self.key_start() + self.key_len as usize..]
    }

    #[inline]
    pub fn value_mut(&mut self) -> &mut [u8] {
        let start = self.key_start() + self.key_len as usize;
        &mut self.data[start..]
    }

    #[inline]
    pub fn client_flags(&self) -> u32 {
        match self.data.get(..4) {
            Some(f) if self.bits & bit::FLAGS != 0 => {
                u32::from_le_bytes(f.try_into().expect("4 bytes"))
            }
            _ => 0,
        }
    }

    #[inline]
    pub fn cas(&self) -> u64 {
        u64::from(self.cas[0]) | (u64::from(self.cas[1]) << 32)
    }

    #[inline]
    pub fn set_cas(&mut self, cas: u64) {
        self.cas = [cas as u32, (cas >> 32) as u32];
    }

    #[inline]
    pub fn is_live(&self) -> bool {
        self.bits & bit::LIVE != 0
    }

    #[inline]
    pub fn has(&self, b: u8) -> bool {
        self.bits & b != 0
    }
}

pub struct Slab {
    chunks: Vec<Box<[Entry]>>,
    free_head: u32,
    free: usize,
    live: usize,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            free_head: NIL,
            free: 0,
            live: 0,
        }
    }
}

impl Slab {
    #[inline]
    pub fn get(&self, i: u32) -> &Entry {
        &self.chunks[(i >> CHUNK_SHIFT) as usize][i as usize & (CHUNK - 1)]
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> &mut Entry {
        &mut self.chunks[(i >> CHUNK_SHIFT) as usize][i as usize & (CHUNK - 1)]
    }

    /// Slots allocated (live + free).
    pub fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    pub fn live(&self) -> usize {
        self.live
    }

    pub fn free(&self) -> usize {
        self.free
    }

    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Memory held by the slots and the chunk index.
    pub fn bytes(&self) -> u64 {
        (self.chunks.capacity() * size_of::<Box<[Entry]>>() + self.capacity() * ENTRY_SIZE) as u64
    }

    /// What one more chunk costs (slots plus, at worst, a doubled chunk index).
    pub fn chunk_cost(&self) -> u64 {
        let index_growth = if self.chunks.len() == self.chunks.capacity() {
            self.chunks.capacity().max(4) * size_of::<Box<[Entry]>>()
        } else {
            0
        };
        (CHUNK * ENTRY_SIZE + index_growth) as u64
    }

    /// Takes a free slot (adding a chunk if none is left) and marks it live.
    pub fn alloc(&mut self) -> Result<u32, TryReserveError> {
        if self.free_head == NIL {
            self.add_chunk()?;
        }
        let i = self.pop_free().expect("a chunk was just added");
        self.live += 1;
        let e = self.get_mut(i);
        e.bits = bit::LIVE;
        e.exptime = 0;
        e.time = 0;
        e.hnext = NIL;
        Ok(i)
    }

    /// Returns slot `i` to the free list and hands back its data to drop.
    pub fn release(&mut self, i: u32) -> Box<[u8]> {
        let e = std::mem::take(self.get_mut(i));
        self.live -= 1;
        self.push_free(i);
        e.data
    }

    fn add_chunk(&mut self) -> Result<(), TryReserveError> {
        let base = self.capacity();
        assert!(base + CHUNK <= NIL as usize, "slot numbers exhausted");
        self.chunks.try_reserve(1)?;
        let mut slots = Vec::new();
        slots.try_reserve_exact(CHUNK)?;
        slots.resize_with(CHUNK, Entry::default);
        self.chunks.push(slots.into_boxed_slice());
        // Pushed in reverse so that the lowest slot is handed out first,
        // which keeps the last chunk the emptiest one.
        for i in (base..base + CHUNK).rev() {
            self.push_free(i as u32);
        }
        Ok(())
    }

    fn push_free(&mut self, i: u32) {
        let head = self.free_head;
        if head != NIL {
            self.get_mut(head).exptime = i;
        }
        let e = self.get_mut(i);
        e.exptime = NIL;
        e.time = head;
        self.free_head = i;
        self.free += 1;
    }

    /// Takes the first free slot.
    pub fn pop_free(&mut self) -> Option<u32> {
        let i = self.free_head;
        if i == NIL {
            return None;
        }
        self.unlink_free(i);
        Some(i)
    }

    /// Takes free slot `i` out of the free list.
    pub fn unlink_free(&mut self, i: u32) {
        let (prev, next) = {
            let e = self.get(i);
            debug_assert!(!e.is_live());
            (e.exptime, e.time)
        };
        if prev == NIL {
            self.free_head = next;
        } else {
            self.get_mut(prev).time = next;
        }
        if next != NIL {
            self.get_mut(next).exptime = prev;
        }
        self.free -= 1;
    }

    /// Walks the free list and checks its links and count. For tests.
    #[cfg(test)]
    pub fn check_free_list(&self) {
        let (mut n, mut prev, mut i) = (0, NIL, self.free_head);
        while i != NIL {
            let e = self.get(i);
            assert!(
                !e.is_live() && e.data.is_empty(),
                "slot {i} on the free list"
            );
            assert_eq!(e.exptime, prev, "back link of free slot {i}");
            n += 1;
            assert!(n <= self.free, "free list longer than its count");
            prev = i;
            i = e.time;
        }
        assert_eq!(n, self.free);
    }

    /// Slots of the last chunk.
    pub fn last_chunk(&self) -> Option<Range<u32>> {
        let n = self.chunks.len();
        (n > 0).then(|| ((n - 1) * CHUNK) as u32..(n * CHUNK) as u32)
    }

    /// Moves the item in `src` into the detached free slot `dst`. The caller
    /// has already pointed the hash chain at `dst`.
    pub fn move_entry(&mut self, src: u32, dst: u32) {
        let e = std::mem::take(self.get_mut(src));
        *self.get_mut(dst) = e;
    }

    /// Drops the last chunk, whose slots must all be empty and detached.
    pub fn pop_chunk(&mut self) {
        let chunk = self.chunks.pop().expect("a chunk to pop");
        debug_assert!(chunk.iter().all(|e| !e.is_live()));
        if self.chunks.len() * 4 < self.chunks.capacity() {
            self.chunks.shrink_to(self.chunks.len() * 2);
        }
    }
}
