//! The key hash of the item table.
//!
//! memcached-style keys ("user:000123", "key:1", …) differ only in a few
//! trailing bytes, so every input bit must reach every output bit: 8-byte
//! lanes go through an xxHash64 round and the result through murmur3's
//! `fmix64` finalizer. The low bits pick the bucket, the top 16 bits are the
//! tag kept in each entry, so the two are independent.
//!
//! The seed only needs to differ from the host's shard hash: within one shard
//! every key has the same `host_hash % shards`, and a bucket index correlated
//! with that would leave most buckets empty.

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const P3: u64 = 0x1656_67b1_9e37_79f9;

#[inline]
fn round(acc: u64, lane: u64) -> u64 {
    (acc ^ lane.wrapping_mul(P2).rotate_left(31).wrapping_mul(P1))
        .rotate_left(27)
        .wrapping_mul(P1)
        .wrapping_add(P3)
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// 64-bit hash of `key`.
pub fn hash(key: &[u8]) -> u64 {
    // Mixing the length in first keeps "a" and "a\0" apart after zero padding.
    let mut h = SEED ^ (key.len() as u64).wrapping_mul(P1);
    let mut lanes = key.chunks_exact(8);
    for lane in &mut lanes {
        h = round(h, u64::from_le_bytes(lane.try_into().unwrap()));
    }
    let rest = lanes.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = round(h, u64::from_le_bytes(b));
    }
    fmix64(h)
}

/// The part of the hash kept in an entry to skip most key comparisons.
#[inline]
pub fn tag(h: u64) -> u16 {
    (h >> 48) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sequential memcached-style keys must spread evenly over the buckets
    /// (the failure mode of an unfinalized multiplicative hash).
    #[test]
    fn sequential_keys_spread_evenly() {
        const BUCKETS: usize = 1 << 16;
        let mut load = vec![0u32; BUCKETS];
        let n = 3 * BUCKETS / 2;
        for i in 0..n {
            let key = format!("key:{i:06}");
            load[hash(key.as_bytes()) as usize & (BUCKETS - 1)] += 1;
        }
        let max = *load.iter().max().unwrap();
        let empty = load.iter().filter(|&&c| c == 0).count() as f64 / BUCKETS as f64;
        // Poisson(1.5): P(0) = 0.223, and the longest of 65536 chains is ~9.
        assert!(max <= 12, "longest chain {max}");
        assert!((0.20..0.25).contains(&empty), "empty buckets {empty}");
        // The tag bits must vary independently of the bucket bits.
        let tags: std::collections::HashSet<u16> = (0..4096)
            .map(|i| tag(hash(format!("key:{i:06}").as_bytes())))
            .collect();
        assert!(tags.len() > 3900, "{} distinct tags", tags.len());
    }

    #[test]
    fn length_and_every_byte_matter() {
        assert_ne!(hash(b""), hash(b"\0"));
        assert_ne!(hash(b"a"), hash(b"a\0"));
        let base = hash(b"0123456789abcdef-tail");
        for i in 0..21 {
            let mut k = *b"0123456789abcdef-tail";
            k[i] ^= 1;
            assert_ne!(hash(&k), base, "byte {i}");
        }
    }
}
