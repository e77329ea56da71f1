//! memcached's own size rule for items.

/// `sizeof(item)` in a 64-bit memcached 1.6.
const MEMCACHED_ITEM_HEADER: u64 = 48;

/// memcached's `ITEM_ntotal` for an item it would allocate: header, key + NUL,
/// the flags suffix when flags are non-zero, value + "\r\n", and the CAS. An
/// item above `-I` by this measure is refused (`item_size_ok`), which is why
/// memcached's largest value is a little under `-I`.
pub fn memcached_ntotal(key_len: usize, value_len: usize, client_flags: u32, cas: bool) -> u64 {
    MEMCACHED_ITEM_HEADER
        + key_len as u64
        + 1
        + if client_flags != 0 { 4 } else { 0 }
        + value_len as u64
        + 2
        + if cas { 8 } else { 0 }
}

/// memcached stores items above `slab_chunk_max` (512 KiB by default) in
/// chunks, and incr/decr refuses chunked items as non-numeric.
pub const MEMCACHED_CHUNK_MAX: u64 = 512 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcached_item_size() {
        // The largest value `set` accepts at -I 1m with key "k" and flags 0.
        let max = 1024 * 1024;
        let v = max - 48 - 2 - 2 - 8;
        assert_eq!(memcached_ntotal(1, v as usize, 0, true), max);
        assert_eq!(memcached_ntotal(1, v as usize, 1, true), max + 4);
        assert_eq!(memcached_ntotal(1, v as usize, 0, false), max - 8);
    }
}
