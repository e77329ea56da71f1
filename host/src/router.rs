//! The shard router: which shard owns a key, and which worker owns a shard.
//!
//! `shard = hash(key) % shards`, `owner = shard % workers`. The hash must mix
//! well: memcached-style keys (`prefix:000123`) differ only in a few trailing
//! bytes, and a weak hash would pile them onto one shard.

/// Maps keys to shards and shards to workers.
#[derive(Clone, Copy, Debug)]
pub struct Router {
    shards: u32,
    workers: u32,
}

impl Router {
    pub fn new(shards: usize, workers: usize) -> Router {
        assert!(shards > 0 && workers > 0);
        Router {
            shards: shards as u32,
            workers: workers as u32,
        }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> u32 {
        if self.shards == 1 {
            return 0;
        }
        // The high bits are the best mixed; reduce with a multiply instead of `%`.
        (((hash(key) >> 32) * self.shards as u64) >> 32) as u32
    }

    #[inline]
    pub fn owner(&self, shard: u32) -> usize {
        (shard % self.workers) as usize
    }

    /// Shards owned by `worker`, ascending.
    pub fn shards_of(&self, worker: usize) -> impl Iterator<Item = u32> + '_ {
        (0..self.shards).filter(move |s| self.owner(*s) == worker)
    }
}

/// A fast 64-bit hash with a full avalanche finaliser (murmur3's fmix64 over
/// 8-byte words folded with a multiply-rotate step).
#[inline]
pub fn hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w.wrapping_mul(K))
            .rotate_left(29)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        let w = u64::from_le_bytes(buf);
        h = (h ^ w.wrapping_mul(K))
            .rotate_left(29)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    fmix64(h)
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keys_spread_evenly() {
        let r = Router::new(8, 4);
        let mut counts = [0u32; 8];
        for i in 0..80_000 {
            counts[r.shard_of(format!("key:{i:06}").as_bytes()) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn owners_cover_all_shards_once() {
        let r = Router::new(6, 4);
        let mut all: Vec<u32> = (0..4)
            .flat_map(|w| r.shards_of(w).collect::<Vec<_>>())
            .collect();
        all.sort();
        assert_eq!(all, (0..6).collect::<Vec<_>>());
        assert_eq!(Router::new(1, 4).shard_of(b"anything"), 0);
    }
}
