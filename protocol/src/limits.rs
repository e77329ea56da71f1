//! memcached's size limits and the server settings a parser must know
//! ([`Limits`]), shared by the text, meta and binary parsers so that a key or
//! item that is too long is judged by one rule whatever the protocol.

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// `sizeof(item)` of a 64-bit memcached 1.6.18: the fixed item header that counts against
/// `-I` (`item_size_max`). Verified with `-I 1k`/`1m`/`2m`, with and without `-C`.
pub const ITEM_HEADER_SIZE: usize = 48;

/// Slab class ids are below this (`MAX_NUMBER_OF_SLAB_CLASSES`); `stats cachedump` checks it.
pub const MAX_NUMBER_OF_SLAB_CLASSES: u32 = 64;

/// What the parser must know about the server's configuration.
///
/// Only the two settings that decide how many bytes belong to a storage command are here:
/// memcached rejects a too-large item *before* reading its data block and then swallows it,
/// so the parser must know the limit to know where the next command starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `-I`: the largest item, header and key included (memcached default 1 MiB).
    pub item_size_max: usize,
    /// Not `-C`: when CAS is on every item carries an 8-byte CAS value that counts against
    /// `item_size_max`.
    pub cas_enabled: bool,
}

impl Default for Limits {
    /// memcached's defaults: `-I 1m`, CAS on.
    fn default() -> Self {
        Limits {
            item_size_max: 1024 * 1024,
            cas_enabled: true,
        }
    }
}

impl Limits {
    /// memcached's `item_make_header` + `item_alloc` size: `sizeof(item)` (48) + key + its
    /// NUL + 4 bytes of client flags *only if the flags are non-zero* + the value with its
    /// `\r\n` + 8 bytes of CAS when CAS is on. Public so the meta and binary parsers use the
    /// same rule.
    pub fn item_size(&self, nkey: usize, flags: u32, nbytes_with_crlf: usize) -> usize {
        ITEM_HEADER_SIZE
            + nkey
            + 1
            + if flags != 0 { 4 } else { 0 }
            + nbytes_with_crlf
            + if self.cas_enabled { 8 } else { 0 }
    }

    /// `!item_size_ok(...)`: memcached answers
    /// [`reply::TOO_LARGE`](crate::text::reply::TOO_LARGE).
    pub fn item_too_large(&self, nkey: usize, flags: u32, nbytes_with_crlf: usize) -> bool {
        self.item_size(nkey, flags, nbytes_with_crlf) > self.item_size_max
    }
}

/// memcached's default slab classes (`-n 48 -f 1.25`, 512 KiB chunk max):
/// the class an item of `ntotal` bytes lands in.
pub fn slab_class(ntotal: usize) -> u32 {
    const CHUNK_MAX: u32 = 512 * 1024;
    let mut size: u32 = 96;
    let mut i = 1;
    while i < 63 {
        if size as f64 >= CHUNK_MAX as f64 / 1.25 {
            break;
        }
        if !size.is_multiple_of(8) {
            size += 8 - size % 8;
        }
        if ntotal <= size as usize {
            return i;
        }
        size = (size as f64 * 1.25) as u32;
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_classes_match_memcached_defaults() {
        assert_eq!(slab_class(64), 1);
        assert_eq!(slab_class(96), 1);
        assert_eq!(slab_class(97), 2);
        assert_eq!(slab_class(120), 2);
        assert_eq!(slab_class(121), 3);
        assert_eq!(slab_class(152), 3);
        assert_eq!(slab_class(1184), 12);
    }
}
