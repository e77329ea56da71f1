//! The item log: fixed-size segments that items are appended to, kept in
//! two FIFO queues, and recycled a whole segment at a time.
//!
//! An item is written once, at the head segment of a queue, and never
//! moves while it lives except when eviction copies it forward; replacing,
//! deleting or expiring it turns its bytes into a hole (see `crate::item`)
//! that the segment's recycling reclaims. So there is no allocator header
//! per item, no free list and no fragmentation to manage: a segment's
//! memory comes back when its turn in the FIFO comes, and eviction decides
//! item by item what to copy forward first (`store::evict`).
//!
//! A handle is `segment << shift | offset`: 4 bytes, what the index keeps.
//!
//! Values too long for a segment (above a quarter of it, or
//! [`crate::item::LARGE_VALUE`]) live in their own heap block, numbered;
//! the item in the segment holds the number.

use crate::item::{self, bit, View, LARGE_VALUE};
use std::collections::{TryReserveError, VecDeque};

/// Which FIFO a segment is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Free,
    /// New items (S3-FIFO's small queue).
    Small,
    /// Items that were read while in the small queue, and survivors of
    /// earlier rounds (S3-FIFO's main queue).
    Main,
}

pub struct Segment {
    /// The bytes appended so far; `capacity() == seg_size`.
    pub buf: Vec<u8>,
    /// Log position of `buf[0]`: positions only grow, so `(base + offset)
    /// / 8` is a unique, increasing number for every item ever written.
    pub base: u64,
    /// Server time the segment was opened (items' `atime` counts from it).
    pub created: u32,
    pub queue: Queue,
    /// Live items and their bytes (holes excluded).
    pub live: u32,
    pub live_bytes: u32,
    /// A value in it went to the host by reference in this batch: it may
    /// not be written again until the host has read it.
    pub held: bool,
    /// On the log's sparse list.
    pub sparse: bool,
}

/// How an item's log position becomes its CAS value: shards interleave so
/// that a value is unique across the whole server.
#[derive(Clone, Copy, Debug)]
pub struct CasMap {
    pub enabled: bool,
    pub shards: u64,
    pub shard: u64,
}

impl CasMap {
    #[inline]
    pub fn at(&self, pos: u64) -> u64 {
        if !self.enabled {
            return 0;
        }
        (pos / 8) * self.shards + self.shard + 1
    }
}

pub struct Log {
    pub segs: Vec<Segment>,
    shift: u32,
    small: VecDeque<u32>,
    main: VecDeque<u32>,
    free: Vec<u32>,
    /// Recycled while held: free after `release_held`.
    retired: Vec<u32>,
    /// Segments with a held value.
    held: Vec<u32>,
    /// Segments whose live bytes fell to `sparse_limit` since they were
    /// last looked at (candidates for compaction).
    sparse: Vec<u32>,
    /// Log position the next opened segment starts at.
    pub pos: u64,
    /// Segment-sized buffers no segment holds: the index's pages come from
    /// here and go back here, and new segments take them first.
    spare: Vec<Vec<u8>>,
    large: Vec<Option<Box<[u8]>>>,
    large_free: Vec<u32>,
    large_retired: Vec<Box<[u8]>>,
    pub large_bytes: u64,
}

impl crate::index::Pages for Log {
    fn page_shift(&self) -> u32 {
        self.shift
    }

    /// A spare buffer, else a free segment's, else a new one.
    fn lend(&mut self) -> Result<Vec<u8>, TryReserveError> {
        if let Some(b) = self.spare.pop() {
            return Ok(b);
        }
        let size = self.seg_size();
        if let Some(&s) = self
            .free
            .iter()
            .find(|&&s| self.segs[s as usize].buf.capacity() >= size)
        {
            return Ok(std::mem::take(&mut self.segs[s as usize].buf));
        }
        self.buffer()
    }

    fn give_back(&mut self, mut page: Vec<u8>) {
        page.clear();
        self.spare.push(page);
    }
}

impl Log {
    /// `seg_size` is a power of two.
    pub fn new(seg_size: usize, pos: u64) -> Log {
        assert!(seg_size.is_power_of_two() && seg_size >= 1024);
        Log {
            segs: Vec::new(),
            shift: seg_size.trailing_zeros(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            free: Vec::new(),
            retired: Vec::new(),
            held: Vec::new(),
            sparse: Vec::new(),
            spare: Vec::new(),
            pos,
            large: Vec::new(),
            large_free: Vec::new(),
            large_retired: Vec::new(),
            large_bytes: 0,
        }
    }

    pub fn seg_size(&self) -> usize {
        1 << self.shift
    }

    /// The longest value kept inline.
    pub fn inline_max(&self) -> usize {
        (self.seg_size() / 4).min(LARGE_VALUE)
    }

    /// Segments in a queue (not free, not waiting for the host).
    pub fn in_use(&self) -> usize {
        self.small.len() + self.main.len()
    }

    pub fn queue_len(&self, q: Queue) -> usize {
        match q {
            Queue::Small => self.small.len(),
            Queue::Main => self.main.len(),
            Queue::Free => self.free.len(),
        }
    }

    /// Segments whose memory the shard holds, in use or not.
    pub fn allocated(&self) -> usize {
        self.segs.len()
    }

    #[inline]
    pub fn handle(&self, seg: u32, off: usize) -> u32 {
        (seg << self.shift) | off as u32
    }

    #[inline]
    pub fn split(&self, h: u32) -> (u32, usize) {
        (h >> self.shift, (h & ((1 << self.shift) - 1)) as usize)
    }

    /// The item at handle `h`.
    #[inline]
    pub fn view(&self, h: u32, casm: CasMap) -> View<'_> {
        let hdr = item::header(self.at(h));
        let (key, value) = self.body(h, &hdr);
        let seg = self.seg_of(h);
        let cas = if hdr.has(bit::HAS_CAS) {
            hdr.cas
        } else {
            casm.at(self.position(h))
        };
        View {
            hdr,
            key,
            value,
            cas,
            time: seg.created.wrapping_add(hdr.atime.into()),
        }
    }

    /// The next live item of segment `s` at or after offset `off`, which
    /// moves past it (holes are skipped).
    #[inline]
    pub fn next_item(&self, s: u32, off: &mut usize) -> Option<u32> {
        let buf = &self.segs[s as usize].buf;
        while *off < buf.len() {
            let b = &buf[*off..];
            match item::hole_len(b) {
                Some(n) => *off += n,
                None => {
                    let h = self.handle(s, *off);
                    *off += item::header(b).total();
                    return Some(h);
                }
            }
        }
        None
    }

    /// The number of item `h`'s out-of-line value block, if it has one.
    #[inline]
    pub fn large_block(&self, h: u32, hdr: &item::Header) -> Option<u32> {
        hdr.has(bit::LARGE).then(|| {
            let at = hdr.key_at as usize + hdr.klen as usize;
            u32::from_le_bytes(self.at(h)[at..at + 4].try_into().expect("4 bytes"))
        })
    }

    /// Item `h`'s key and value, located by its decoded header.
    #[inline]
    pub fn body(&self, h: u32, hdr: &item::Header) -> (&[u8], &[u8]) {
        let b = self.at(h);
        let k = hdr.key_at as usize;
        let v = k + hdr.klen as usize;
        let value = match self.large_block(h, hdr) {
            Some(n) => self.large(n),
            None => &b[v..v + hdr.vlen as usize],
        };
        (&b[k..v], value)
    }

    /// The bytes from item `h` to the end of its segment.
    #[inline]
    pub fn at(&self, h: u32) -> &[u8] {
        let (s, off) = self.split(h);
        &self.segs[s as usize].buf[off..]
    }

    #[inline]
    pub fn at_mut(&mut self, h: u32) -> &mut [u8] {
        let (s, off) = self.split(h);
        &mut self.segs[s as usize].buf[off..]
    }

    #[inline]
    pub fn seg_of(&self, h: u32) -> &Segment {
        &self.segs[(h >> self.shift) as usize]
    }

    /// The segment `q` appends to (it must have one).
    #[inline]
    pub fn seg_of_head(&self, q: Queue) -> &Segment {
        &self.segs[self.head(q).expect("an open head") as usize]
    }

    #[inline]
    pub fn seg_of_mut(&mut self, h: u32) -> &mut Segment {
        &mut self.segs[(h >> self.shift) as usize]
    }

    /// The log position of item `h`.
    #[inline]
    pub fn position(&self, h: u32) -> u64 {
        let (s, off) = self.split(h);
        self.segs[s as usize].base + off as u64
    }

    /// The oldest segment of a queue.
    pub fn tail(&self, q: Queue) -> Option<u32> {
        match q {
            Queue::Small => self.small.front().copied(),
            Queue::Main => self.main.front().copied(),
            Queue::Free => None,
        }
    }

    /// The segment a queue appends to.
    pub fn head(&self, q: Queue) -> Option<u32> {
        match q {
            Queue::Small => self.small.back().copied(),
            Queue::Main => self.main.back().copied(),
            Queue::Free => None,
        }
    }

    /// The segments of a queue, oldest first.
    pub fn queue(&self, q: Queue) -> impl Iterator<Item = u32> + '_ {
        let d = match q {
            Queue::Small => &self.small,
            _ => &self.main,
        };
        d.iter().copied()
    }

    /// Whether `len` more bytes fit the head of `q` without a new segment.
    pub fn fits_head(&self, q: Queue, len: usize) -> bool {
        self.head(q).is_some_and(|s| {
            let b = &self.segs[s as usize].buf;
            b.len() + len <= b.capacity()
        })
    }

    /// A segment-sized buffer: a spare one, or a new allocation.
    fn buffer(&mut self) -> Result<Vec<u8>, TryReserveError> {
        if let Some(b) = self.spare.pop() {
            return Ok(b);
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(self.seg_size())?;
        Ok(buf)
    }

    /// Opens a new head segment for `q`: a free one, or a new allocation.
    pub fn open(&mut self, q: Queue, now: u32) -> Result<u32, TryReserveError> {
        if let Some(&s) = self.free.last() {
            if self.segs[s as usize].buf.capacity() < self.seg_size() {
                self.segs[s as usize].buf = self.buffer()?;
            }
        }
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                if self.segs.len() >= 1 << (32 - self.shift) {
                    // Every handle is taken: fail like an allocation.
                    return Err(Vec::<u8>::new().try_reserve(usize::MAX).unwrap_err());
                }
                let buf = self.buffer()?;
                self.segs.push(Segment {
                    buf,
                    base: 0,
                    created: 0,
                    queue: Queue::Free,
                    live: 0,
                    live_bytes: 0,
                    held: false,
                    sparse: false,
                });
                (self.segs.len() - 1) as u32
            }
        };
        let size = self.seg_size() as u64;
        let seg = &mut self.segs[s as usize];
        seg.buf.clear();
        seg.base = self.pos;
        seg.created = now;
        seg.queue = q;
        seg.live = 0;
        seg.live_bytes = 0;
        seg.held = false;
        self.pos += size;
        match q {
            Queue::Small => self.small.push_back(s),
            Queue::Main => self.main.push_back(s),
            Queue::Free => unreachable!("open into a queue"),
        }
        Ok(s)
    }

    /// Appends an item of `total` bytes made of `parts` (zero padded to
    /// `total`) at the head of `q`, which must have room (see
    /// [`Log::fits_head`]), and returns its handle. Written in place: a
    /// long value is copied once, not zeroed first.
    pub fn append(&mut self, q: Queue, total: usize, parts: &[&[u8]]) -> u32 {
        let s = self.head(q).expect("an open head");
        let seg = &mut self.segs[s as usize];
        let off = seg.buf.len();
        debug_assert!(off + total <= seg.buf.capacity());
        for p in parts {
            seg.buf.extend_from_slice(p);
        }
        debug_assert!(seg.buf.len() <= off + total);
        seg.buf.resize(off + total, 0);
        seg.live += 1;
        seg.live_bytes += total as u32;
        self.handle(s, off)
    }

    /// Takes the tail segment of `q` out of its queue (its items must have
    /// been dealt with): free again, or retired while the host holds a value
    /// in it.
    pub fn recycle_tail(&mut self, q: Queue) -> u32 {
        let s = self.tail(q).expect("a tail segment");
        self.recycle(q, s);
        s
    }

    /// Takes segment `s` out of queue `q` (see [`Log::recycle_tail`]).
    pub fn recycle(&mut self, q: Queue, s: u32) {
        let d = match q {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
            Queue::Free => unreachable!("recycle from a queue"),
        };
        let at = d
            .iter()
            .position(|&x| x == s)
            .expect("segment in its queue");
        d.remove(at);
        let seg = &mut self.segs[s as usize];
        seg.queue = Queue::Free;
        if seg.held {
            self.retired.push(s);
        } else {
            seg.buf.clear();
            self.free.push(s);
        }
    }

    /// Live bytes at or below which a segment is worth compacting: a
    /// quarter dead. Copying its live items costs up to three bytes per
    /// byte gained, but where items expire (a TTL-heavy trace) the dead
    /// bytes otherwise wait for the segment's turn in the FIFO: at half
    /// (one byte per byte) the TTL-heavy trace at 1 % of the working set
    /// missed 0.4 % more (`wasmcached replay`, 4M keys, 90 % of them with a
    /// 5 s TTL, `-m 5`: 0.3746 against 0.3732). Segments where nothing dies
    /// (no TTLs, few overwrites) are not compacted either way.
    pub fn sparse_limit(&self) -> u32 {
        (self.seg_size() / 4 * 3) as u32
    }

    /// Item bytes at handle `h` (`total` of them) died.
    pub fn vacate(&mut self, h: u32, total: usize) {
        let s = h >> self.shift;
        let limit = self.sparse_limit();
        let seg = &mut self.segs[s as usize];
        seg.live -= 1;
        seg.live_bytes -= total as u32;
        if seg.live_bytes <= limit && !seg.sparse {
            seg.sparse = true;
            self.sparse.push(s);
        }
        item::make_hole(self.at_mut(h), total);
    }

    /// A segment that may have become sparse, if any.
    pub fn take_sparse(&mut self) -> Option<u32> {
        let s = self.sparse.pop()?;
        self.segs[s as usize].sparse = false;
        Some(s)
    }

    /// A value in segment `s` went to the host by reference.
    pub fn hold(&mut self, s: u32) {
        let seg = &mut self.segs[s as usize];
        if !seg.held {
            seg.held = true;
            self.held.push(s);
        }
    }

    /// The host has read the held values: retired memory is free.
    pub fn release_held(&mut self) {
        for s in self.retired.drain(..) {
            self.segs[s as usize].buf.clear();
            self.free.push(s);
        }
        for s in self.held.drain(..) {
            self.segs[s as usize].held = false;
        }
        self.large_retired.clear();
    }

    /// Gives the memory of free segments back to the heap (a lowered budget).
    pub fn trim_free(&mut self) {
        for &s in &self.free {
            self.segs[s as usize].buf = Vec::new();
        }
        self.spare = Vec::new();
    }

    /// Stores a long value out of line; returns its block number.
    pub fn put_large(&mut self, value: Vec<u8>) -> u32 {
        self.large_bytes += value.len() as u64;
        let block = value.into_boxed_slice();
        match self.large_free.pop() {
            Some(n) => {
                self.large[n as usize] = Some(block);
                n
            }
            None => {
                self.large.push(Some(block));
                (self.large.len() - 1) as u32
            }
        }
    }

    pub fn large(&self, n: u32) -> &[u8] {
        self.large[n as usize].as_deref().expect("a live block")
    }

    pub fn large_mut(&mut self, n: u32) -> &mut [u8] {
        self.large[n as usize].as_deref_mut().expect("a live block")
    }

    /// Frees block `n`, keeping its bytes until `release_held` when `held`.
    pub fn drop_large(&mut self, n: u32, held: bool) {
        let block = self.large[n as usize].take().expect("a live block");
        self.large_bytes -= block.len() as u64;
        self.large_free.push(n);
        if held {
            self.large_retired.push(block);
        }
    }
}
