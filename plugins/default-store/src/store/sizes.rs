//! memcached's `stats sizes` histogram (`-o track_sizes`, `stats
//! sizes_enable`): live items by their memcached size rounded up to 32
//! bytes, as items.c's `item_stats_sizes_add` counts them. Kept up to date
//! as items come and go (two array updates a store), so a report never
//! walks the items; the host shows it only while sizes are tracked.

use std::collections::BTreeMap;

/// Sizes are counted in buckets of this many bytes.
const BUCKET: u64 = 32;
/// Items up to this size count in the array; larger ones (`-I` above
/// 1 MiB) in a map, so that the array stays at most 128 KiB.
const ARRAY_MAX: u64 = 1 << 20;

#[derive(Default)]
pub struct Sizes {
    /// Items by bucket (`ceil(ntotal / 32)`), grown to the largest seen.
    small: Vec<u32>,
    large: BTreeMap<u64, u64>,
}

impl Sizes {
    fn bucket(ntotal: u64) -> u64 {
        ntotal.div_ceil(BUCKET)
    }

    /// Counts an item of memcached size `ntotal`.
    pub fn add(&mut self, ntotal: u64) {
        let b = Self::bucket(ntotal);
        if ntotal > ARRAY_MAX {
            *self.large.entry(b).or_default() += 1;
            return;
        }
        let b = b as usize;
        if b >= self.small.len() {
            self.small.resize(b + 1, 0);
        }
        self.small[b] += 1;
    }

    /// Uncounts an item [`Sizes::add`] counted.
    pub fn remove(&mut self, ntotal: u64) {
        let b = Self::bucket(ntotal);
        if ntotal > ARRAY_MAX {
            if let Some(n) = self.large.get_mut(&b) {
                *n -= 1;
                if *n == 0 {
                    self.large.remove(&b);
                }
            }
            return;
        }
        if let Some(n) = self.small.get_mut(b as usize) {
            *n = n.saturating_sub(1);
        }
    }

    /// `(size, items)` for every non-empty bucket, smallest first, as
    /// memcached prints them (`STAT <size> <items>`).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let small = self
            .small
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(b, &n)| (b as u64 * BUCKET, u64::from(n)));
        small.chain(self.large.iter().map(|(&b, &n)| (b * BUCKET, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_32_byte_bucket_rounded_up() {
        let mut s = Sizes::default();
        for n in [129, 160, 160, 33, 2 << 20, 2 << 20] {
            s.add(n);
        }
        s.remove(160);
        let got: Vec<_> = s.buckets().collect();
        assert_eq!(got, vec![(64, 1), (160, 2), (2 << 20, 2)]);
        s.remove(2 << 20);
        s.remove(2 << 20);
        s.remove(33);
        s.remove(129);
        s.remove(160);
        assert_eq!(s.buckets().count(), 0);
    }
}
