//! Latency histogram in nanoseconds: log2 buckets, each cut into 8, so any
//! value is known to within 1/8 (12.5 %) of itself, in a fixed 4 KiB
//! whatever the number of samples (a Vec of every sample would grow by
//! hundreds of MB in a run at a million requests per second).

const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

pub struct Hist {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (e - SUB_BITS)) as usize - SUB;
    SUB + (e - SUB_BITS) as usize * SUB + sub
}

/// The lowest value and width of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let shift = ((i - SUB) / SUB) as u32;
    let sub = ((i - SUB) % SUB + SUB) as u64;
    (sub << shift, 1 << shift)
}

impl Hist {
    pub fn new() -> Hist {
        Hist {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The value below which a share `q` of the samples lies: the middle
    /// of the bucket where that sample falls (0 without samples).
    pub fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if c > 0 && seen >= rank {
                let (low, width) = bounds(i);
                return low + width / 2;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value() {
        for v in (0..5000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let (low, width) = bounds(index(v));
            assert!(low <= v && v - low < width, "{v} in bucket {low}+{width}");
            assert!(width == 1 || width <= low / 8 + 1, "{v}: bucket too wide");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.07, "{p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.07, "{p99}");
        let mut g = Hist::new();
        g.merge(&h);
        assert_eq!(g.quantile(0.99), h.quantile(0.99));
    }
}
