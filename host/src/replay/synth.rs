//! Synthetic traces from a seed (`--synthetic KIND:name=value,...`):
//!
//! - `zipf`: gets over `keys` keys, zipf(`alpha`) popularity.
//! - `scan`: zipf, plus every `scan_every` requests a one-pass scan of
//!   `scan_len` keys never seen before (scan pollution).
//! - `ttl`: zipf where a `short` share of the keys is stored with a TTL of
//!   `ttl` seconds and the rest with `long_ttl` (0: none).
//! - `churn`: zipf whose popular keys drift: by the end of the trace the
//!   ranking has moved `drift` × `keys` keys on.
//!
//! All kinds take `keys`, `requests`, `seed`, `value` (bytes), `key`
//! (bytes), `rate` (requests per trace second) and `write` (the share of
//! requests that are sets rather than gets). A rank becomes a key through
//! a bijective mix, so popular keys are not neighbours and different
//! ranks never share a key.

use super::record::{Record, Source, TraceError, TraceOp};
use super::trace::push_hex;
use super::zipf::{mix64, Rng, Zipf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zipf,
    Scan,
    Ttl,
    Churn,
}

/// A parsed `--synthetic` spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub kind: Kind,
    pub keys: u64,
    pub requests: u64,
    pub seed: u64,
    pub value: u32,
    pub key: usize,
    pub rate: u64,
    pub write: f64,
    pub alpha: f64,
    pub scan_every: u64,
    pub scan_len: u64,
    pub ttl: u32,
    pub long_ttl: u32,
    pub short: f64,
    pub drift: f64,
}

const COMMON: &[&str] = &[
    "keys", "requests", "seed", "value", "key", "rate", "write", "alpha",
];

impl Kind {
    fn own_params(self) -> &'static [&'static str] {
        match self {
            Kind::Zipf => &[],
            Kind::Scan => &["scan_every", "scan_len"],
            Kind::Ttl => &["ttl", "long_ttl", "short"],
            Kind::Churn => &["drift"],
        }
    }
}

impl Spec {
    /// Parses `KIND[:name=value,...]`.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let (kind_name, params) = text.split_once(':').unwrap_or((text, ""));
        let kind = match kind_name {
            "zipf" => Kind::Zipf,
            "scan" => Kind::Scan,
            "ttl" => Kind::Ttl,
            "churn" => Kind::Churn,
            k => {
                return Err(format!(
                    "unknown synthetic trace {k:?} (expected zipf, scan, ttl or churn)"
                ))
            }
        };
        let mut s = Spec {
            kind,
            keys: 1_000_000,
            requests: 10_000_000,
            seed: 1,
            value: 100,
            key: 16,
            rate: 100_000,
            write: 0.0,
            alpha: 1.0,
            scan_every: 0,
            scan_len: 0,
            ttl: 10,
            long_ttl: 0,
            short: 0.9,
            drift: 1.0,
        };
        let (mut scan_every, mut scan_len) = (None, None);
        for param in params.split(',').filter(|p| !p.is_empty()) {
            let Some((name, value)) = param.split_once('=') else {
                return Err(format!("{kind_name}: expected name=value, got {param:?}"));
            };
            let known = COMMON.contains(&name) || kind.own_params().contains(&name);
            if !known {
                let all: Vec<&str> = COMMON.iter().chain(kind.own_params()).copied().collect();
                return Err(format!(
                    "{kind_name}: unknown parameter {name:?} (expected {})",
                    all.join(", ")
                ));
            }
            let int = || -> Result<u64, String> {
                value
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| format!("{kind_name}: {name} wants a whole number, got {value:?}"))
            };
            let share = || -> Result<f64, String> {
                match value.parse::<f64>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
                    _ => Err(format!(
                        "{kind_name}: {name} wants a number from 0 to 1, got {value:?}"
                    )),
                }
            };
            let small = |v: u64| -> Result<u32, String> {
                u32::try_from(v).map_err(|_| format!("{kind_name}: {name} is too large: {v}"))
            };
            match name {
                "keys" => s.keys = int()?,
                "requests" => s.requests = int()?,
                "seed" => s.seed = int()?,
                "value" => s.value = small(int()?)?,
                "key" => s.key = int()? as usize,
                "rate" => s.rate = int()?,
                "write" => s.write = share()?,
                "short" => s.short = share()?,
                "alpha" | "drift" => {
                    let v = value
                        .parse::<f64>()
                        .ok()
                        .filter(|v| (0.0..=100.0).contains(v));
                    let v = v.ok_or_else(|| {
                        format!("{kind_name}: {name} wants a number from 0 to 100, got {value:?}")
                    })?;
                    if name == "alpha" {
                        s.alpha = v;
                    } else {
                        s.drift = v;
                    }
                }
                "scan_every" => scan_every = Some(int()?),
                "scan_len" => scan_len = Some(int()?),
                "ttl" => s.ttl = small(int()?)?,
                "long_ttl" => s.long_ttl = small(int()?)?,
                _ => unreachable!("checked against the parameter lists"),
            }
        }
        if s.keys == 0 || s.requests == 0 || s.rate == 0 {
            return Err(format!(
                "{kind_name}: keys, requests and rate must be above 0"
            ));
        }
        if !(8..=250).contains(&s.key) {
            return Err(format!(
                "{kind_name}: key wants 8 to 250 bytes, got {}",
                s.key
            ));
        }
        if kind == Kind::Scan {
            s.scan_every = scan_every.unwrap_or((s.requests / 20).max(1));
            s.scan_len = scan_len.unwrap_or((s.keys / 10).max(1));
            if s.scan_every == 0 {
                return Err(format!("{kind_name}: scan_every must be above 0"));
            }
        }
        Ok(s)
    }
}

/// A synthetic trace, generated as it is read.
pub struct Generator {
    spec: Spec,
    rng: Rng,
    zipf: Zipf,
    /// Requests handed out.
    done: u64,
    /// Scan requests left in the current scan, and the next cold key.
    scan_left: u64,
    scan_next: u64,
    /// Keeps different seeds' keys apart.
    salt: u64,
}

impl Generator {
    pub fn new(spec: Spec) -> Generator {
        Generator {
            rng: Rng::new(spec.seed),
            zipf: Zipf::new(spec.keys, spec.alpha),
            done: 0,
            scan_left: 0,
            scan_next: spec.keys,
            salt: mix64(spec.seed ^ 0x5eed),
            spec,
        }
    }

    /// The key id of request `i`, and whether it belongs to a scan.
    #[inline]
    fn pick(&mut self, i: u64) -> (u64, bool) {
        let s = &self.spec;
        if s.kind == Kind::Scan {
            if i > 0 && i.is_multiple_of(s.scan_every) {
                self.scan_left = s.scan_len;
            }
            if self.scan_left > 0 {
                self.scan_left -= 1;
                self.scan_next += 1;
                return (self.scan_next - 1, true);
            }
        }
        let rank = self.zipf.sample(&mut self.rng) - 1;
        if s.kind == Kind::Churn {
            let shift = (i as f64 * s.drift * s.keys as f64 / s.requests as f64) as u64;
            return (rank + shift, false);
        }
        (rank, false)
    }

    /// The TTL a key is always stored with.
    #[inline]
    fn ttl_of(&self, id: u64) -> u32 {
        if self.spec.kind != Kind::Ttl {
            return 0;
        }
        // The same key always gets the same TTL class.
        let u = (mix64(id ^ self.salt) >> 11) as f64 / (1u64 << 53) as f64;
        if u < self.spec.short {
            self.spec.ttl
        } else {
            self.spec.long_ttl
        }
    }
}

impl Source for Generator {
    fn next_into(&mut self, rec: &mut Record) -> Result<bool, TraceError> {
        let i = self.done;
        if i >= self.spec.requests {
            return Ok(false);
        }
        self.done += 1;
        let (id, scan) = self.pick(i);
        let write = !scan && self.spec.write > 0.0 && self.rng.unit() < self.spec.write;
        rec.time = i / self.spec.rate;
        rec.op = if write { TraceOp::Set } else { TraceOp::Get };
        rec.value_size = self.spec.value;
        rec.ttl = self.ttl_of(id);
        rec.key.clear();
        rec.key.push(b'k');
        // The mixed id's hex digits, cut or zero-padded to the key size.
        let digits = self.spec.key - 1;
        rec.key.resize(1 + digits.saturating_sub(16), b'0');
        let start = rec.key.len();
        push_hex(&mut rec.key, mix64(id ^ self.salt));
        if digits < 16 {
            rec.key.copy_within(start + 16 - digits.., start);
            rec.key.truncate(1 + digits);
        }
        Ok(true)
    }

    fn position(&self) -> u64 {
        self.done.saturating_sub(1)
    }

    fn total(&self) -> u64 {
        self.spec.requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn take(spec: &str, n: usize) -> Vec<Record> {
        let mut g = Generator::new(Spec::parse(spec).unwrap());
        let mut rec = Record::default();
        let mut out = Vec::new();
        while out.len() < n && g.next_into(&mut rec).unwrap() {
            out.push(rec.clone());
        }
        out
    }

    #[test]
    fn a_seed_gives_the_same_trace_and_another_seed_another() {
        let a = take("zipf:keys=1000,requests=5000,seed=4", usize::MAX);
        let b = take("zipf:keys=1000,requests=5000,seed=4", usize::MAX);
        let c = take("zipf:keys=1000,requests=5000,seed=5", usize::MAX);
        assert_eq!(a.len(), 5000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        for kind in ["scan", "ttl", "churn"] {
            let spec = format!("{kind}:keys=1000,requests=3000,seed=9,write=0.1");
            assert_eq!(take(&spec, usize::MAX), take(&spec, usize::MAX), "{kind}");
        }
    }

    #[test]
    fn records_have_the_asked_shape() {
        let recs = take(
            "zipf:keys=100,requests=1000,value=33,key=24,rate=100",
            usize::MAX,
        );
        assert!(recs.iter().all(|r| r.key.len() == 24 && r.value_size == 33));
        assert!(recs.iter().all(|r| r.op == TraceOp::Get && r.ttl == 0));
        assert_eq!((recs[99].time, recs[100].time, recs[999].time), (0, 1, 9));
        let short = take("zipf:keys=100,requests=100,key=8", usize::MAX);
        assert!(short.iter().all(|r| r.key.len() == 8));
        let writes = take("zipf:keys=100,requests=10000,write=0.25", usize::MAX);
        let sets = writes.iter().filter(|r| r.op == TraceOp::Set).count();
        assert!((2_200..2_800).contains(&sets), "{sets}");
    }

    #[test]
    fn zipf_keys_follow_the_rank_frequency_law() {
        let recs = take("zipf:keys=10000,requests=400000,alpha=1.0", usize::MAX);
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for r in &recs {
            *counts.entry(&r.key).or_default() += 1;
        }
        let mut freq: Vec<u64> = counts.into_values().collect();
        freq.sort_unstable_by(|a, b| b.cmp(a));
        // f(1) / f(10) ≈ 10 and f(1) / f(100) ≈ 100 for alpha 1.
        let r10 = freq[0] as f64 / freq[9] as f64;
        let r100 = freq[0] as f64 / freq[99] as f64;
        assert!((7.0..14.0).contains(&r10), "{r10}");
        assert!((70.0..140.0).contains(&r100), "{r100}");
    }

    #[test]
    fn scans_touch_cold_keys_once() {
        let recs = take(
            "scan:keys=1000,requests=20000,scan_every=5000,scan_len=500",
            usize::MAX,
        );
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for r in &recs {
            *counts.entry(&r.key).or_default() += 1;
        }
        // Three scans (at 5000, 10000, 15000) of 500 fresh keys each.
        let scan = &recs[5000..5500];
        assert!(scan.iter().all(|r| counts[r.key.as_slice()] == 1));
        let once = counts.values().filter(|&&c| c == 1).count();
        assert!(once >= 1500, "{once}");
        // Between scans, the hot keys come back.
        assert!(counts.values().any(|&c| c > 100));
    }

    #[test]
    fn ttl_traces_store_most_keys_with_short_ttls() {
        let recs = take(
            "ttl:keys=10000,requests=20000,ttl=5,short=0.9,long_ttl=600",
            usize::MAX,
        );
        let short = recs.iter().filter(|r| r.ttl == 5).count();
        let long = recs.iter().filter(|r| r.ttl == 600).count();
        assert_eq!(short + long, recs.len());
        let share = short as f64 / recs.len() as f64;
        assert!((0.8..0.97).contains(&share), "{share}");
        // A key keeps its TTL.
        let mut ttl_of: HashMap<&[u8], u32> = HashMap::new();
        for r in &recs {
            assert_eq!(*ttl_of.entry(&r.key).or_insert(r.ttl), r.ttl);
        }
    }

    #[test]
    fn churn_moves_the_hot_keys() {
        let recs = take("churn:keys=1000,requests=100000,drift=2", usize::MAX);
        let top = |part: &[Record]| {
            let mut counts: HashMap<&[u8], u64> = HashMap::new();
            for r in part {
                *counts.entry(&r.key).or_default() += 1;
            }
            let mut v: Vec<(&[u8], u64)> = counts.into_iter().collect();
            v.sort_by_key(|p| std::cmp::Reverse(p.1));
            v.iter().take(10).map(|p| p.0.to_vec()).collect::<Vec<_>>()
        };
        let early = top(&recs[..10_000]);
        let late = top(&recs[90_000..]);
        assert!(early.iter().all(|k| !late.contains(k)));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, want) in [
            ("lru:keys=1", "unknown synthetic trace \"lru\""),
            ("zipf:keys=x", "keys wants a whole number"),
            ("zipf:drift=1", "unknown parameter \"drift\""),
            ("zipf:keys", "expected name=value"),
            ("ttl:short=2", "short wants a number from 0 to 1"),
            ("zipf:keys=0", "above 0"),
            ("zipf:key=4", "key wants 8 to 250 bytes"),
            ("scan:scan_every=0", "scan_every must be above 0"),
        ] {
            let e = Spec::parse(spec).unwrap_err();
            assert!(e.contains(want), "{spec}: {e}");
        }
        assert_eq!(Spec::parse("zipf").unwrap().keys, 1_000_000);
    }
}
