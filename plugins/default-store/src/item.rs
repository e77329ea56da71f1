//! An item's bytes in the log: a variable-length header, the key and the
//! value, back to back, with no allocator header, no padding and no field
//! an item does not use.
//!
//! ```text
//! 0     bits   u8   FETCHED | REF (2 bits) | HAS_FLAGS | HAS_EXP | HAS_CAS | LARGE | EXT
//! 1     klen   u8   1..=250; 0 marks a hole (a dead item), see below
//! 2     vlen   LEB128, 1..=5 bytes
//! ..    atime  u16  seconds since the segment was opened (saturating)
//! [ext   u8   STALE | TOKEN_SENT | KEY_BINARY]   when EXT
//! [cas   u64]                                    when HAS_CAS
//! [flags u32]                                    when HAS_FLAGS (non-zero)
//! [exp   u32]                                    when HAS_EXP (non-zero)
//! key
//! value, or when LARGE the u32 number of its out-of-line block
//! ```
//!
//! All little endian, unaligned. An item of 32-byte key and 100-byte value
//! with no flags and no TTL costs 5 bytes of header: 137 in all (memcached:
//! a 192-byte chunk).
//!
//! **CAS without bytes.** A new item's CAS is implied by where it was
//! written: every append takes fresh bytes of the shard's log, whose
//! position only grows, so `position / 8` is unique and increasing (items
//! take at least [`MIN_ITEM`] bytes). Only an item that keeps its CAS while
//! it moves (a touch that adds a TTL, a copy forward by eviction) stores
//! it.
//!
//! **Holes.** An item that dies (replaced, deleted, expired) stays where it
//! is until its segment is recycled; its `klen` byte becomes 0 and its
//! total length is written as LEB128 from byte 2, so a walk can skip it.
//! Only the header changes: a value the host has yet to copy (a held
//! value, ABI v4) stays intact.

/// `bits`.
pub mod bit {
    /// Fetched at least once since stored (memcached ITEM_FETCHED).
    pub const FETCHED: u8 = 1 << 0;
    /// Two bits: the eviction frequency counter (see `crate::log`).
    pub const REF: u8 = 0b11 << REF_SHIFT;
    pub const REF_ONE: u8 = 1 << REF_SHIFT;
    pub const REF_SHIFT: u32 = 1;
    pub const HAS_FLAGS: u8 = 1 << 3;
    pub const HAS_EXP: u8 = 1 << 4;
    pub const HAS_CAS: u8 = 1 << 5;
    /// The value lives in an out-of-line block (`crate::log::Large`).
    pub const LARGE: u8 = 1 << 6;
    pub const EXT: u8 = 1 << 7;
    /// The bits a write chooses (the rest describe the layout).
    pub const STATE: u8 = FETCHED | REF;
}

/// The `ext` byte: marks that few items ever carry.
pub mod ext {
    /// Marked stale by a meta delete with `I` (memcached ITEM_STALE).
    pub const STALE: u8 = 1 << 0;
    /// A client was told it won the right to recache (ITEM_TOKEN_SENT).
    pub const TOKEN_SENT: u8 = 1 << 1;
    /// The key arrived base64 encoded (memcached ITEM_KEY_BINARY).
    pub const KEY_BINARY: u8 = 1 << 2;
}

/// The longest header: bits, key length, a 5-byte value length, access
/// time, ext, CAS, flags, exptime.
pub const MAX_HEADER: usize = 2 + 5 + 2 + 1 + 8 + 4 + 4;

/// The smallest item, so that `position / 8` is unique per item.
pub const MIN_ITEM: usize = 8;
/// A value longer than this goes out of line whatever the segment size.
pub const LARGE_VALUE: usize = 64 * 1024;

/// Everything an item's header says, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub bits: u8,
    pub ext: u8,
    pub klen: u8,
    pub vlen: u32,
    pub atime: u16,
    pub cas: u64,
    pub flags: u32,
    pub exptime: u32,
    /// Offsets within the item.
    pub atime_at: u8,
    pub ext_at: u8,
    pub exp_at: u8,
    pub key_at: u8,
}

impl Header {
    pub fn has(&self, b: u8) -> bool {
        self.bits & b != 0
    }
    pub fn has_ext(&self, e: u8) -> bool {
        self.ext & e != 0
    }
    pub fn refs(&self) -> u8 {
        (self.bits & bit::REF) >> bit::REF_SHIFT
    }
    /// Bytes of the value stored inline: the value, or a block number.
    pub fn inline_vlen(&self) -> usize {
        if self.has(bit::LARGE) {
            4
        } else {
            self.vlen as usize
        }
    }
    /// Bytes the item takes in its segment.
    pub fn total(&self) -> usize {
        (self.key_at as usize + self.klen as usize + self.inline_vlen()).max(MIN_ITEM)
    }
}

/// What a new item is made of (the key and value are copied separately).
#[derive(Clone, Copy, Debug, Default)]
pub struct New {
    pub bits: u8,
    pub ext: u8,
    pub klen: u8,
    pub vlen: u32,
    pub large: bool,
    pub atime: u16,
    pub cas: Option<u64>,
    pub flags: u32,
    pub exptime: u32,
}

fn leb_len(mut v: u32) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_leb(out: &mut [u8], mut v: u32) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

fn get_leb(b: &[u8]) -> (u32, usize) {
    let mut v = 0u32;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let byte = b[i];
        v |= u32::from(byte & 0x7f) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            return (v, i);
        }
        shift += 7;
    }
}

impl New {
    fn bits(&self) -> u8 {
        let mut b = self.bits & bit::STATE;
        for (on, f) in [
            (self.flags != 0, bit::HAS_FLAGS),
            (self.exptime != 0, bit::HAS_EXP),
            (self.cas.is_some(), bit::HAS_CAS),
            (self.large, bit::LARGE),
            (self.ext != 0, bit::EXT),
        ] {
            if on {
                b |= f;
            }
        }
        b
    }

    /// Bytes of the header.
    pub fn header_len(&self) -> usize {
        2 + leb_len(self.vlen)
            + 2
            + usize::from(self.ext != 0)
            + if self.cas.is_some() { 8 } else { 0 }
            + if self.flags != 0 { 4 } else { 0 }
            + if self.exptime != 0 { 4 } else { 0 }
    }

    /// Bytes the item takes in its segment.
    pub fn total(&self) -> usize {
        let inline = if self.large { 4 } else { self.vlen as usize };
        (self.header_len() + self.klen as usize + inline).max(MIN_ITEM)
    }

    /// Writes the header into `out` (at least [`New::total`] bytes) and
    /// returns where the key goes.
    pub fn write(&self, out: &mut [u8]) -> usize {
        out[0] = self.bits();
        out[1] = self.klen;
        let mut at = 2 + put_leb(&mut out[2..], self.vlen);
        out[at..at + 2].copy_from_slice(&self.atime.to_le_bytes());
        at += 2;
        if self.ext != 0 {
            out[at] = self.ext;
            at += 1;
        }
        if let Some(cas) = self.cas {
            out[at..at + 8].copy_from_slice(&cas.to_le_bytes());
            at += 8;
        }
        if self.flags != 0 {
            out[at..at + 4].copy_from_slice(&self.flags.to_le_bytes());
            at += 4;
        }
        if self.exptime != 0 {
            out[at..at + 4].copy_from_slice(&self.exptime.to_le_bytes());
            at += 4;
        }
        at
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Whether the bytes at the start of `b` are a hole, and if so its length.
#[inline]
pub fn hole_len(b: &[u8]) -> Option<usize> {
    (b[1] == 0).then(|| get_leb(&b[2..]).0 as usize)
}

/// Turns the item at the start of `b` (of `total` bytes) into a hole.
pub fn make_hole(b: &mut [u8], total: usize) {
    b[1] = 0;
    put_leb(&mut b[2..], total as u32);
}

/// Decodes the header of the (live) item at the start of `b`.
#[inline(always)]
pub fn header(b: &[u8]) -> Header {
    let bits = b[0];
    let klen = b[1];
    let (vlen, n) = get_leb(&b[2..]);
    let atime_at = 2 + n;
    let atime = u16_at(b, atime_at);
    let mut at = atime_at + 2;
    let mut h = Header {
        bits,
        klen,
        vlen,
        atime,
        atime_at: atime_at as u8,
        ..Header::default()
    };
    if bits & bit::EXT != 0 {
        h.ext_at = at as u8;
        h.ext = b[at];
        at += 1;
    }
    if bits & bit::HAS_CAS != 0 {
        h.cas = u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        at += 8;
    }
    if bits & bit::HAS_FLAGS != 0 {
        h.flags = u32_at(b, at);
        at += 4;
    }
    if bits & bit::HAS_EXP != 0 {
        h.exp_at = at as u8;
        h.exptime = u32_at(b, at);
        at += 4;
    }
    h.key_at = at as u8;
    h
}

/// The key of the (live) item at the start of `b`, without decoding the rest
/// of the header beyond what locates it (every index probe that matches a
/// tag reads it).
#[inline(always)]
pub fn key_of(b: &[u8]) -> &[u8] {
    let bits = b[0];
    let mut at = 2;
    while b[at] & 0x80 != 0 {
        at += 1;
    }
    at += 3;
    at += usize::from(bits & bit::EXT != 0)
        + if bits & bit::HAS_CAS != 0 { 8 } else { 0 }
        + if bits & bit::HAS_FLAGS != 0 { 4 } else { 0 }
        + if bits & bit::HAS_EXP != 0 { 4 } else { 0 };
    &b[at..at + usize::from(b[1])]
}

/// Key equality, 8 bytes at a time. `==` on slices becomes a call to
/// `memcmp`, which on wasm32 is compiler-builtins' byte-by-byte loop (it
/// was the most expensive function of a `get`; docs/performance.md).
#[inline]
pub fn key_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut x = a.chunks_exact(8);
    let mut y = b.chunks_exact(8);
    for (p, q) in (&mut x).zip(&mut y) {
        if u64::from_le_bytes(p.try_into().expect("8"))
            != u64::from_le_bytes(q.try_into().expect("8"))
        {
            return false;
        }
    }
    x.remainder() == y.remainder()
}

/// A live item as the store reads it: its decoded header, where its key and
/// value are, and the two fields the header keeps relative or implied (its
/// CAS and last access time, made absolute by the log).
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub hdr: Header,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub cas: u64,
    /// Server time of the last store or access (memcached `it->time`).
    pub time: u32,
}

impl View<'_> {
    #[inline]
    pub fn key(&self) -> &[u8] {
        self.key
    }
    #[inline]
    pub fn value(&self) -> &[u8] {
        self.value
    }
    #[inline]
    pub fn client_flags(&self) -> u32 {
        self.hdr.flags
    }
    #[inline]
    pub fn exptime(&self) -> u32 {
        self.hdr.exptime
    }
    #[inline]
    pub fn refs(&self) -> u8 {
        self.hdr.refs()
    }
    #[inline]
    pub fn has(&self, b: u8) -> bool {
        self.hdr.has(b)
    }
    #[inline]
    pub fn has_ext(&self, e: u8) -> bool {
        self.hdr.has_ext(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(n: New) {
        let mut buf = vec![0xAAu8; n.total() + 3];
        let at = n.write(&mut buf);
        assert_eq!(at, n.header_len());
        let h = header(&buf);
        assert_eq!(h.klen, n.klen);
        assert_eq!(h.vlen, n.vlen);
        assert_eq!(h.atime, n.atime);
        assert_eq!(h.cas, n.cas.unwrap_or(0));
        assert_eq!(h.flags, n.flags);
        assert_eq!(h.exptime, n.exptime);
        assert_eq!(h.ext, n.ext);
        assert_eq!(h.bits & bit::STATE, n.bits & bit::STATE);
        assert_eq!(h.key_at as usize, at);
        assert_eq!(h.total(), n.total());
        assert_eq!(hole_len(&buf), None);
        make_hole(&mut buf, n.total());
        assert_eq!(hole_len(&buf), Some(n.total()));
    }

    #[test]
    fn headers_round_trip_with_only_the_fields_they_use() {
        let plain = New {
            klen: 32,
            vlen: 100,
            ..New::default()
        };
        assert_eq!(plain.header_len(), 5);
        assert_eq!(plain.total(), 137);
        roundtrip(plain);
        roundtrip(New {
            bits: bit::FETCHED | bit::REF,
            ext: ext::STALE | ext::KEY_BINARY,
            klen: 250,
            vlen: 1 << 30,
            large: true,
            atime: 65535,
            cas: Some(u64::MAX - 3),
            flags: 0xdead_beef,
            exptime: 12345,
        });
        for vlen in [0, 127, 128, 16383, 16384, u32::MAX] {
            roundtrip(New {
                klen: 1,
                vlen,
                large: vlen > 1000,
                ..New::default()
            });
        }
    }

    #[test]
    fn tiny_items_take_the_minimum() {
        let n = New {
            klen: 1,
            vlen: 0,
            ..New::default()
        };
        assert_eq!(n.total(), MIN_ITEM);
        roundtrip(n);
    }
}
