//! The random numbers of the synthetic traces: a small seeded PRNG
//! (xoshiro256**, seeded through splitmix64), so a seed gives the same
//! trace on every machine and release, and a zipf sampler that costs O(1)
//! per draw whatever the key count. Up to [`TABLE_MAX`] keys it is an alias
//! table (Walker, Vose), which fits in the CPU cache and costs one random
//! number and one lookup; above, where a table would miss the cache on
//! every draw, rejection-inversion (Hörmann and Derflinger 1996, as Apache
//! Commons RNG implements it), which needs no table but an `exp` and a
//! `ln` per draw.

/// xoshiro256**.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(x)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// splitmix64's finaliser: a bijection on u64, which turns a key's rank
/// into a key that tells nothing about its popularity.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Key counts up to which [`Zipf`] draws from an alias table (512 KiB).
pub const TABLE_MAX: u64 = 1 << 16;

/// Zipf over ranks 1..=n: P(k) ∝ k^-alpha.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    alpha: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
    /// Per rank - 1: the threshold (of 2^32) below which the draw keeps
    /// it, and the rank - 1 it gives otherwise.
    table: Vec<(u32, u32)>,
}

impl Zipf {
    /// `n` ≥ 1, `alpha` ≥ 0 (0: uniform).
    pub fn new(n: u64, alpha: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            alpha,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
            table: Vec::new(),
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        if n <= TABLE_MAX {
            z.table = alias_table(n as usize, alpha);
        }
        z
    }

    /// A rank in 1..=n.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        if !self.table.is_empty() {
            let r = rng.next_u64();
            let i = ((r & 0xffff_ffff) * self.table.len() as u64) >> 32;
            let (keep, alias) = self.table[i as usize];
            let rank = if ((r >> 32) as u32) < keep {
                i
            } else {
                alias as u64
            };
            return rank + 1;
        }
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            // x ≥ 1/2, so truncating rounds it; cheaper than floor().
            let k = ((x + 0.5) as u64 as f64).clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.alpha * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.alpha) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.alpha)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// Vose's alias table for P(rank k) ∝ k^-alpha, k in 1..=n.
fn alias_table(n: usize, alpha: f64) -> Vec<(u32, u32)> {
    let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-alpha)).collect();
    let sum: f64 = weights.iter().sum();
    let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
    let mut table = vec![(u32::MAX, 0u32); n];
    for (i, t) in table.iter_mut().enumerate() {
        t.1 = i as u32;
    }
    let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
    while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
        table[s] = ((scaled[s] * 4_294_967_296.0) as u32, l as u32);
        scaled[l] -= 1.0 - scaled[s];
        if scaled[l] < 1.0 {
            large.pop();
            small.push(l);
        }
    }
    // What is left keeps itself: its share is 1 up to rounding.
    table
}

/// ln(1 + x) / x, exact near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1) / x, exact near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_numbers() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..5)
            .scan(Rng::new(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// Least-squares slope of log(frequency) over log(rank), ranks 1..=100.
    fn slope(n: u64, alpha: f64) -> f64 {
        let z = Zipf::new(n, alpha);
        let mut rng = Rng::new(1);
        let mut counts = vec![0u64; n as usize + 1];
        for _ in 0..2_000_000 {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k));
            counts[k as usize] += 1;
        }
        let pts: Vec<(f64, f64)> = (1..=100)
            .map(|k| ((k as f64).ln(), (counts[k] as f64).ln()))
            .collect();
        let n = pts.len() as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
        let (mx, my) = (sx / n, sy / n);
        let cov: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let var: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        cov / var
    }

    #[test]
    fn rank_frequency_slope_is_minus_alpha() {
        // The alias table, and rejection-inversion above TABLE_MAX keys.
        for n in [10_000, TABLE_MAX + 1] {
            for alpha in [0.6, 1.0, 1.3] {
                let s = slope(n, alpha);
                assert!(
                    (s + alpha).abs() < 0.08,
                    "{n} keys, alpha {alpha}: slope {s}"
                );
            }
        }
    }

    #[test]
    fn alpha_zero_is_uniform() {
        for n in [10, TABLE_MAX + 10] {
            let z = Zipf::new(n, 0.0);
            let mut rng = Rng::new(3);
            let mut counts = [0u32; 10];
            for _ in 0..100_000 {
                counts[(z.sample(&mut rng) * 10 / (n + 1)) as usize] += 1;
            }
            for c in &counts {
                assert!((9_000..11_000).contains(c), "{n}: {counts:?}");
            }
        }
    }

    #[test]
    fn the_alias_table_keeps_the_exact_probabilities() {
        // P(1) = 1 / (1 + 1/2 + 1/3 + 1/4) = 12/25 for 4 keys, alpha 1.
        let z = Zipf::new(4, 1.0);
        let mut rng = Rng::new(5);
        let ones = (0..200_000).filter(|_| z.sample(&mut rng) == 1).count();
        let share = ones as f64 / 200_000.0;
        assert!((share - 0.48).abs() < 0.005, "{share}");
    }

    #[test]
    fn one_key_is_always_rank_one() {
        let z = Zipf::new(1, 1.0);
        let mut rng = Rng::new(3);
        assert!((0..1000).all(|_| z.sample(&mut rng) == 1));
    }
}
