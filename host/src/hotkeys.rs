//! Hot keys: which keys and key prefixes take the most reads, writes and
//! bytes (`stats hotkeys`, `-o hotkeys_sample=N`, `-o hotkeys_window=S`).
//!
//! memcached users' most asked question, answered at a price every request
//! can pay: each worker counts one request in N (`hotkeys_sample`, default
//! [`crate::settings::HOTKEYS_SAMPLE`]; 0 turns it off) into fixed-size
//! top-K tables kept with the Space-Saving algorithm (Metwally, Agrawal, El
//! Abbadi, "Efficient computation of frequent and top-k elements in data
//! streams", 2005): K counters; a key not in a full table takes the place
//! of the one with the lowest count and inherits that count as its possible
//! error. So memory stays fixed whatever the key space, a key that made
//! more than 1/K of a table's total is always in it, and a count overstates
//! by at most its error. A report merges the workers' tables ([`merge`]).
//!
//! What counts, whatever protocol sent it (the ABI op decides):
//! - reads: get, gets, gat, gats, mg, me and the binary gets and gats;
//! - writes: set, add, replace, append, prepend, cas, incr, decr, touch,
//!   delete, ms, md, ma and their binary forms;
//! - bytes: the value bytes a write carries plus the value bytes a hit
//!   returns. Returned bytes are sampled on their own, one answer in N
//!   where the worker delivers its answers, so that a sampled read need not
//!   be followed to its answer.
//!
//! Prefixes are cut as `stats detail` cuts them (crate::detail): what comes
//! before the first `-D` delimiter (default `:`). Keys without the delimiter,
//! or that start with it, count in the key tables only.
//!
//! The window slides by halves: each worker keeps the tables of the current
//! period (half the window) and of the one before; when the server clock
//! enters a new period the current tables become the previous ones. A report
//! sums both, so it covers the last window/2 to window seconds.
//!
//! Nothing is shared on the request path: a worker's tables sit behind a
//! mutex that only that worker locks to count a sample (uncontended) and a
//! reader locks to copy them; between samples a request pays one decrement
//! and one branch ([`Sampler::tick`]). A sample costs a lock, a hash of the
//! key and a scan of 2 x K counters.

use crate::clock;
use crate::router::hash;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use wasmcached_abi::{Op, Request, Response, Status};

/// Counters per table.
pub const K: usize = 32;

/// What a table counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Reads = 0,
    Writes = 1,
    Bytes = 2,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Reads => "reads",
            Measure::Writes => "writes",
            Measure::Bytes => "bytes",
        }
    }
}

/// What a table's entries are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Key = 0,
    Prefix = 1,
}

impl By {
    pub fn name(self) -> &'static str {
        match self {
            By::Key => "key",
            By::Prefix => "prefix",
        }
    }
}

/// The tables, in the order `stats hotkeys` shows them; a table's index here
/// is its place in a period.
pub const TABLES: [(Measure, By); 6] = [
    (Measure::Reads, By::Key),
    (Measure::Writes, By::Key),
    (Measure::Bytes, By::Key),
    (Measure::Reads, By::Prefix),
    (Measure::Writes, By::Prefix),
    (Measure::Bytes, By::Prefix),
];

fn table_index(m: Measure, by: By) -> usize {
    by as usize * 3 + m as usize
}

/// The prefix of `key` by `stats detail`'s rule (crate::detail::record):
/// up to the first byte equal to the delimiter. An empty prefix would make
/// an empty `STAT` value, so it is left out.
pub fn prefix_of(key: &[u8], delimiter: u32) -> Option<&[u8]> {
    let len = key.iter().position(|&b| b as u32 == delimiter)?;
    (len > 0).then(|| &key[..len])
}

#[derive(Clone, Debug)]
struct Counter {
    key: Vec<u8>,
    hash: u64,
    count: u64,
    error: u64,
}

/// One Space-Saving summary: at most `capacity` counters.
#[derive(Clone, Debug)]
pub struct SpaceSaving {
    capacity: usize,
    /// Counters past `len` are cleared ones that keep their key buffers, so
    /// that a table that has held keys this long allocates no more.
    counters: Vec<Counter>,
    len: usize,
    total: u64,
}

impl SpaceSaving {
    pub fn new(capacity: usize) -> SpaceSaving {
        assert!(capacity > 0, "a Space-Saving table needs a counter");
        SpaceSaving {
            capacity,
            counters: Vec::new(),
            len: 0,
            total: 0,
        }
    }

    /// Counts `weight` more for `key`.
    pub fn offer(&mut self, key: &[u8], weight: u64) {
        self.offer_hashed(key, hash(key), weight)
    }

    /// [`SpaceSaving::offer`] with `h = hash(key)` known.
    fn offer_hashed(&mut self, key: &[u8], h: u64, weight: u64) {
        self.total += weight;
        let live = &mut self.counters[..self.len];
        if let Some(c) = live.iter_mut().find(|c| c.hash == h && c.key == key) {
            c.count += weight;
            return;
        }
        let (i, floor) = if self.len < self.capacity {
            if self.len == self.counters.len() {
                self.counters.push(Counter {
                    key: Vec::new(),
                    hash: 0,
                    count: 0,
                    error: 0,
                });
            }
            self.len += 1;
            (self.len - 1, 0)
        } else {
            // The first of the lowest: any would do for the guarantees.
            let (i, c) = live
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.count)
                .expect("capacity > 0");
            (i, c.count)
        };
        let c = &mut self.counters[i];
        c.key.clear();
        c.key.extend_from_slice(key);
        c.hash = h;
        c.count = floor + weight;
        c.error = floor;
    }

    /// Forgets every key, keeping the buffers.
    pub fn clear(&mut self) {
        self.len = 0;
        self.total = 0;
    }

    /// The weight offered since the last clear.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// `(key, count, error)` of every key held, in no order. The key's true
    /// weight lies in `count - error ..= count`.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], u64, u64)> {
        self.counters[..self.len]
            .iter()
            .map(|c| (&c.key[..], c.count, c.error))
    }

    /// The most a key not held may have had: the lowest count once full,
    /// else 0 (every key offered is held).
    pub fn floor(&self) -> u64 {
        if self.len < self.capacity {
            return 0;
        }
        self.counters[..self.len]
            .iter()
            .map(|c| c.count)
            .min()
            .unwrap_or(0)
    }
}

/// One period's tables, indexed as [`TABLES`].
#[derive(Clone, Debug)]
struct Period {
    tables: [SpaceSaving; 6],
}

impl Period {
    fn new(k: usize) -> Period {
        Period {
            tables: std::array::from_fn(|_| SpaceSaving::new(k)),
        }
    }

    fn clear(&mut self) {
        self.tables.iter_mut().for_each(SpaceSaving::clear);
    }
}

/// A worker's tables: the current period and the one before.
#[derive(Debug)]
pub struct Tables {
    /// The period `current` counts: server time / period length.
    epoch: u64,
    current: Period,
    previous: Period,
}

impl Tables {
    fn new(k: usize) -> Tables {
        Tables {
            epoch: 0,
            current: Period::new(k),
            previous: Period::new(k),
        }
    }

    /// Moves on to period `epoch`: one step makes the current tables the
    /// previous ones; a longer silence leaves nothing inside the window.
    fn rotate(&mut self, epoch: u64) {
        if epoch <= self.epoch {
            return;
        }
        if epoch == self.epoch + 1 {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        } else {
            self.current.clear();
            self.previous.clear();
        }
        self.epoch = epoch;
    }

    /// Counts `weight` of measure `m` for the key and its prefix;
    /// `h = hash(key)`, computed once for every table a request goes to.
    fn offer(&mut self, m: Measure, key: &[u8], h: u64, weight: u64, delimiter: u32) {
        let p = &mut self.current;
        p.tables[table_index(m, By::Key)].offer_hashed(key, h, weight);
        if let Some(prefix) = prefix_of(key, delimiter) {
            p.tables[table_index(m, By::Prefix)].offer(prefix, weight);
        }
    }
}

/// A worker's countdown to its next sample; a plain field of the worker.
/// The gap between samples is drawn at random around N (1 ..= 2N-1, so one
/// in N on average), because a fixed stride would alias with clients that
/// cycle through N keys (or a divisor of N) and always land on the same
/// key. The draw happens once per sample, never on the fast path.
#[derive(Clone, Debug)]
pub struct Sampler {
    left: u32,
    every: u32,
    rng: u64,
}

impl Sampler {
    /// Samples one in `every` (0: never), seeded by `seed`.
    pub fn new(every: u32, seed: u64) -> Sampler {
        let mut s = Sampler {
            left: 1,
            every,
            // xorshift must not start at 0.
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        };
        s.left = s.gap();
        s
    }

    /// Counts one event; true when it is to be sampled.
    #[inline(always)]
    pub fn tick(&mut self) -> bool {
        self.left -= 1;
        if self.left == 0 {
            return self.reload();
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn reload(&mut self) -> bool {
        self.left = self.gap();
        self.every != 0
    }

    fn gap(&mut self) -> u32 {
        if self.every == 0 {
            return u32::MAX;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        1 + (self.rng % (2 * self.every as u64 - 1)) as u32
    }
}

/// Every worker's tables and the options; held by `Shared`.
pub struct HotKeys {
    sample: u32,
    window: u32,
    /// Half the window, at least a second.
    period: u32,
    delimiter: u32,
    k: usize,
    workers: Box<[Mutex<Tables>]>,
}

/// One key or prefix of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotKey {
    /// The key (or prefix) as the client sent it; [`escape`] makes it a
    /// `STAT` value.
    pub name: Vec<u8>,
    /// Estimated count (bytes for a bytes table), scaled by the sample rate.
    pub count: u64,
    /// The estimate is within this of the sampled truth, either way (0:
    /// exact, up to sampling).
    pub error: u64,
}

/// One ranked table of a report.
#[derive(Clone, Debug)]
pub struct HotTable {
    pub measure: Measure,
    pub by: By,
    /// Everything this measure counted in the window (the key table's
    /// total also for a prefix table, so shares compare), scaled.
    pub total: u64,
    /// Highest count first, at most K.
    pub entries: Vec<HotKey>,
}

impl HotTable {
    /// `reads:key`, `bytes:prefix`, …: the `STAT` name's start.
    pub fn name(&self) -> String {
        format!("{}:{}", self.measure.name(), self.by.name())
    }
}

/// What [`HotKeys::report`] returns: the six tables of [`TABLES`], merged
/// over the workers and the two periods of the window (empty when off).
#[derive(Clone, Debug)]
pub struct HotKeysReport {
    pub sample: u32,
    pub window: u32,
    pub tables: Vec<HotTable>,
}

/// One summary's part in a merge.
struct Snapshot {
    entries: Vec<(Vec<u8>, u64, u64)>,
    floor: u64,
    total: u64,
}

impl HotKeys {
    /// `sample`: one request in `sample` is counted (0: off); `window` in
    /// seconds; `delimiter`: `-D`; one set of tables per worker.
    pub fn new(sample: u32, window: u32, delimiter: char, workers: usize) -> HotKeys {
        HotKeys::with_k(sample, window, delimiter, workers, K)
    }

    fn with_k(sample: u32, window: u32, delimiter: char, workers: usize, k: usize) -> HotKeys {
        HotKeys {
            sample,
            window,
            period: (window / 2).max(1),
            delimiter: delimiter as u32,
            k,
            workers: (0..workers).map(|_| Mutex::new(Tables::new(k))).collect(),
        }
    }

    /// `-o hotkeys_sample` (0: off).
    pub fn sample(&self) -> u32 {
        self.sample
    }

    /// `-o hotkeys_window`, in seconds.
    pub fn window(&self) -> u32 {
        self.window
    }

    pub fn enabled(&self) -> bool {
        self.sample != 0
    }

    /// The countdown worker `worker` keeps.
    pub fn sampler(&self, worker: usize) -> Sampler {
        Sampler::new(self.sample, worker as u64 + 1)
    }

    fn lock(&self, worker: usize, now: u32) -> MutexGuard<'_, Tables> {
        // A panic while counting leaves tables that are still tables.
        let mut t = self.workers[worker]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        t.rotate((now / self.period) as u64);
        t
    }

    /// A sampled request of worker `worker`.
    #[cold]
    #[inline(never)]
    pub fn request(&self, worker: usize, req: &Request<'_>) {
        self.request_at(worker, clock::now(), req)
    }

    fn request_at(&self, worker: usize, now: u32, req: &Request<'_>) {
        let m = match Op::from_u8(req.op) {
            Some(Op::Get | Op::Gat) => Measure::Reads,
            // Whole-cache operations have no key.
            Some(Op::FlushAll | Op::MemLimit) | None => return,
            Some(_) => Measure::Writes,
        };
        if req.key.is_empty() {
            return;
        }
        let h = hash(req.key);
        let mut t = self.lock(worker, now);
        t.offer(m, req.key, h, 1, self.delimiter);
        if m == Measure::Writes && !req.value.is_empty() {
            let bytes = req.value.len() as u64;
            t.offer(Measure::Bytes, req.key, h, bytes, self.delimiter);
        }
    }

    /// A sampled answer delivered by worker `worker`: a hit's value bytes.
    #[cold]
    #[inline(never)]
    pub fn answer(&self, worker: usize, r: &Response<'_>) {
        self.answer_at(worker, clock::now(), r)
    }

    fn answer_at(&self, worker: usize, now: u32, r: &Response<'_>) {
        if r.status != Status::Hit as u8 || r.value.is_empty() || r.key.is_empty() {
            return;
        }
        let h = hash(r.key);
        let mut t = self.lock(worker, now);
        t.offer(
            Measure::Bytes,
            r.key,
            h,
            r.value.len() as u64,
            self.delimiter,
        );
    }

    /// `stats reset`: start counting afresh.
    pub fn clear(&self) {
        for w in self.workers.iter() {
            let mut t = w.lock().unwrap_or_else(|e| e.into_inner());
            t.current.clear();
            t.previous.clear();
        }
    }

    /// The ranked tables over the window, for `stats hotkeys` and
    /// `/metrics`; callable from any thread (each worker's tables are
    /// locked in turn, for the time of a copy).
    pub fn report(&self) -> HotKeysReport {
        self.report_at(clock::now())
    }

    fn report_at(&self, now: u32) -> HotKeysReport {
        let mut tables = Vec::new();
        if !self.enabled() {
            return HotKeysReport {
                sample: self.sample,
                window: self.window,
                tables,
            };
        }
        let mut parts: Vec<Vec<Snapshot>> = TABLES.iter().map(|_| Vec::new()).collect();
        for w in 0..self.workers.len() {
            let t = self.lock(w, now);
            for p in [&t.current, &t.previous] {
                for (i, s) in p.tables.iter().enumerate() {
                    if s.total() == 0 {
                        continue;
                    }
                    parts[i].push(Snapshot {
                        entries: s.entries().map(|(k, c, e)| (k.to_vec(), c, e)).collect(),
                        floor: s.floor(),
                        total: s.total(),
                    });
                }
            }
        }
        let scale = self.sample as u64;
        for (i, &(measure, by)) in TABLES.iter().enumerate() {
            let total: u64 = parts[table_index(measure, By::Key)]
                .iter()
                .map(|s| s.total)
                .sum();
            let mut entries = merge(&parts[i], self.k);
            for e in &mut entries {
                e.count = e.count.saturating_mul(scale);
                e.error = e.error.saturating_mul(scale);
            }
            tables.push(HotTable {
                measure,
                by,
                total: total.saturating_mul(scale),
                entries,
            });
        }
        HotKeysReport {
            sample: self.sample,
            window: self.window,
            tables,
        }
    }

    /// `stats hotkeys` (text protocol; the binary protocol's stats key
    /// `hotkeys` sends the same pairs):
    ///
    /// ```text
    /// STAT hotkeys_enabled yes            (no: -o hotkeys_sample=0, and nothing follows)
    /// STAT hotkeys_sample 100             one request in 100 is counted
    /// STAT hotkeys_window 60              seconds; the figures cover the last 30 to 60
    /// STAT hotkeys_top 32                 ranks shown at most per table
    /// STAT reads:total 512300             every read counted, scaled
    /// STAT writes:total 48100
    /// STAT bytes:total 9120000
    /// STAT reads:key:1 user:42            rank 1 of the reads-by-key table
    /// STAT reads:key:1:count 120000       estimated reads, scaled by the sample rate
    /// STAT reads:key:1:error 0            the estimate is within this either way
    /// STAT reads:key:2 …
    /// …                                    then writes:key, bytes:key,
    ///                                      reads:prefix, writes:prefix, bytes:prefix
    /// END
    /// ```
    ///
    /// Counts of `bytes:` tables are bytes. A key is written as sent,
    /// except that spaces, control characters, bytes that are not UTF-8
    /// and `\` become `\xHH`, so that every line stays `STAT name value`.
    pub fn stats(&self) -> Vec<(String, String)> {
        let r = self.report();
        let mut out = vec![(
            "hotkeys_enabled".to_string(),
            if self.enabled() { "yes" } else { "no" }.to_string(),
        )];
        out.push(("hotkeys_sample".into(), r.sample.to_string()));
        out.push(("hotkeys_window".into(), r.window.to_string()));
        if !self.enabled() {
            return out;
        }
        out.push(("hotkeys_top".into(), self.k.to_string()));
        for t in r.tables.iter().filter(|t| t.by == By::Key) {
            out.push((format!("{}:total", t.measure.name()), t.total.to_string()));
        }
        for t in &r.tables {
            let name = t.name();
            for (rank, e) in t.entries.iter().enumerate() {
                let rank = rank + 1;
                out.push((format!("{name}:{rank}"), escape(&e.name)));
                out.push((format!("{name}:{rank}:count"), e.count.to_string()));
                out.push((format!("{name}:{rank}:error"), e.error.to_string()));
            }
        }
        out
    }
}

/// Merges Space-Saving summaries of one table: a key's estimate is the sum
/// of its counts where held; its error adds the errors where held and the
/// floor of every full summary that does not hold it (it may have had up to
/// that much there). So each key's truth stays within `count ± error`, and a
/// key with more than 1/K + 1/(K+1) of the merged total is always ranked:
/// it lost at most total/K to the floors, and K keys above it would need
/// more than the total. Highest count first (then by name), at most `k`.
fn merge(parts: &[Snapshot], k: usize) -> Vec<HotKey> {
    let floors: u64 = parts.iter().map(|s| s.floor).sum();
    // key -> (count, error where held, floors of the summaries holding it)
    let mut keys: HashMap<&[u8], (u64, u64, u64)> = HashMap::new();
    for s in parts {
        for (key, count, error) in &s.entries {
            let e = keys.entry(&key[..]).or_default();
            e.0 += count;
            e.1 += error;
            e.2 += s.floor;
        }
    }
    let mut out: Vec<HotKey> = keys
        .into_iter()
        .map(|(name, (count, error, held_floors))| HotKey {
            name: name.to_vec(),
            count,
            error: error + (floors - held_floors),
        })
        .collect();
    out.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    out.truncate(k);
    out
}

/// A key as one `STAT` value: printable UTF-8 as it is; spaces, control
/// characters, invalid UTF-8 and `\` (so that the escape reads back
/// unambiguously) as `\xHH`.
pub fn escape(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    let hex = |s: &mut String, b: u8| s.push_str(&format!("\\x{b:02x}"));
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_whitespace() || c.is_control() || c == '\\' {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    hex(&mut s, b);
                }
            } else {
                s.push(c);
            }
        }
        for &b in chunk.invalid() {
            hex(&mut s, b);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wasmcached_abi::Op;

    /// xorshift64*, so that the randomized tests repeat.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn truth(stream: &[(Vec<u8>, u64)]) -> HashMap<Vec<u8>, u64> {
        let mut t = HashMap::new();
        for (k, w) in stream {
            *t.entry(k.clone()).or_insert(0) += w;
        }
        t
    }

    /// A stream over `keys` keys of Zipf-ish or uniform popularity, with
    /// weights of 1 or (bytes) up to 500.
    fn stream(rng: &mut Rng, len: usize, keys: u64, weighted: bool) -> Vec<(Vec<u8>, u64)> {
        let skewed = rng.below(2) == 0;
        (0..len)
            .map(|_| {
                let k = if skewed {
                    // Square of a uniform: small ids far more often.
                    let u = rng.below(1000);
                    u * u * keys / 1_000_000
                } else {
                    rng.below(keys)
                };
                let w = if weighted { 1 + rng.below(500) } else { 1 };
                (format!("key:{k}").into_bytes(), w)
            })
            .collect()
    }

    fn get(key: &[u8]) -> Request<'_> {
        Request {
            op: Op::Get as u8,
            key,
            ..Default::default()
        }
    }

    fn set<'a>(key: &'a [u8], value: &'a [u8]) -> Request<'a> {
        Request {
            op: Op::Set as u8,
            key,
            value,
            ..Default::default()
        }
    }

    fn table(r: &HotKeysReport, m: Measure, by: By) -> &HotTable {
        r.tables
            .iter()
            .find(|t| t.measure == m && t.by == by)
            .expect("every table is reported")
    }

    #[test]
    fn below_capacity_counts_are_exact() {
        let mut s = SpaceSaving::new(4);
        for k in [&b"a"[..], b"b", b"a", b"c", b"a", b"b"] {
            s.offer(k, 1);
        }
        let mut e: Vec<_> = s.entries().map(|(k, c, e)| (k.to_vec(), c, e)).collect();
        e.sort();
        assert_eq!(
            e,
            vec![
                (b"a".to_vec(), 3, 0),
                (b"b".to_vec(), 2, 0),
                (b"c".to_vec(), 1, 0)
            ]
        );
        assert_eq!((s.total(), s.floor()), (6, 0));
    }

    #[test]
    fn a_new_key_takes_the_lowest_counter_and_its_count_as_error() {
        let mut s = SpaceSaving::new(2);
        s.offer(b"a", 5);
        s.offer(b"b", 2);
        s.offer(b"c", 1);
        let mut e: Vec<_> = s.entries().map(|(k, c, e)| (k.to_vec(), c, e)).collect();
        e.sort();
        assert_eq!(e, vec![(b"a".to_vec(), 5, 0), (b"c".to_vec(), 3, 2)]);
        assert_eq!(s.floor(), 3);
    }

    #[test]
    fn a_heavy_hitter_is_always_found() {
        let mut rng = Rng(7);
        let mut s = SpaceSaving::new(8);
        let mut hot = 0;
        // One key in five is "hot"; the rest are all different.
        for i in 0..10_000u64 {
            if rng.below(5) == 0 {
                s.offer(b"hot", 1);
                hot += 1;
            } else {
                s.offer(format!("cold:{i}").as_bytes(), 1);
            }
        }
        let (_, count, error) = s
            .entries()
            .find(|(k, _, _)| *k == b"hot")
            .expect("the heavy hitter is held");
        assert!(
            count >= hot && count - error <= hot,
            "{count} {error} {hot}"
        );
        let top = s.entries().max_by_key(|e| e.1).unwrap();
        assert_eq!(top.0, b"hot");
    }

    #[test]
    fn counts_are_upper_bounds_within_their_error() {
        let mut rng = Rng(11);
        for case in 0..200 {
            let weighted = case % 2 == 1;
            let (len, keys) = (2000, 1 + rng.below(300));
            let st = stream(&mut rng, len, keys, weighted);
            let mut s = SpaceSaving::new(16);
            for (k, w) in &st {
                s.offer(k, *w);
            }
            let t = truth(&st);
            let mut sum = 0;
            for (k, c, e) in s.entries() {
                let real = t[k];
                assert!(real <= c && c - e <= real, "case {case}: {c} {e} {real}");
                assert!(e <= s.floor(), "case {case}: an error above the floor");
                sum += c;
            }
            assert_eq!(sum, s.total(), "Space-Saving's counts add up to the total");
            for (k, real) in &t {
                if s.entries().all(|e| e.0 != &k[..]) {
                    assert!(
                        *real <= s.floor(),
                        "case {case}: a key lost above the floor"
                    );
                }
            }
        }
    }

    /// Streams where a few keys are frequent: without them no key would be
    /// above total/K and the properties below would hold vacuously.
    fn skewed_stream() -> impl Strategy<Value = Vec<(u16, u64)>> {
        let key = prop_oneof![3 => 0u16..4, 1 => 0u16..1000];
        prop::collection::vec((key, 1u64..500), 1..2000)
    }

    fn keyed(stream: &[(u16, u64)], weighted: bool) -> Vec<(Vec<u8>, u64)> {
        stream
            .iter()
            .map(|&(k, w)| {
                (
                    format!("key:{k}").into_bytes(),
                    if weighted { w } else { 1 },
                )
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// What makes a top-K table worth showing: every key with more
        /// than total/K is held, its count an upper bound within its error.
        #[test]
        fn guaranteed_heavy_hitters_are_held(
            k in 1usize..=32,
            stream in skewed_stream(),
            weighted in any::<bool>(),
        ) {
            let st = keyed(&stream, weighted);
            let mut s = SpaceSaving::new(k);
            for (key, w) in &st {
                s.offer(key, *w);
            }
            let total = s.total();
            let t = truth(&st);
            for (key, real) in &t {
                let held = s.entries().find(|e| e.0 == &key[..]);
                if *real > total / k as u64 {
                    prop_assert!(held.is_some(), "k={} total={}: {:?} with {} missing",
                        k, total, String::from_utf8_lossy(key), real);
                }
                if let Some((_, count, error)) = held {
                    prop_assert!(*real <= count && count - error <= *real);
                }
            }
        }

        /// The same over a report that merges workers and both periods:
        /// every key with more than total/K + total/(K+1) is ranked, and
        /// every ranked key's truth is within its count ± error.
        #[test]
        fn merged_reports_keep_the_guarantees(
            k in 2usize..=32,
            stream in skewed_stream(),
            workers in prop::collection::vec(0usize..4, 1..2000),
            split in 0usize..2000,
        ) {
            let st = keyed(&stream, false);
            let hk = HotKeys::with_k(1, 20, ':', 4, k);
            // Spread over the workers, some in the period before.
            for (i, (key, _)) in st.iter().enumerate() {
                let now = if i < split { 100 } else { 110 };
                hk.request_at(workers[i % workers.len()], now, &get(key));
            }
            let r = hk.report_at(110);
            let reads = table(&r, Measure::Reads, By::Key);
            let total = reads.total;
            prop_assert_eq!(total, st.len() as u64);
            let t = truth(&st);
            for e in &reads.entries {
                let real = t[&e.name];
                prop_assert!(
                    e.count.saturating_sub(e.error) <= real && real <= e.count + e.error,
                    "{:?} has {}", e, real
                );
            }
            let bound = total / k as u64 + total / (k as u64 + 1);
            for (key, real) in t {
                if real > bound {
                    prop_assert!(
                        reads.entries.iter().any(|e| e.name == key),
                        "k={}: {:?} with {} of {} not ranked",
                        k, String::from_utf8_lossy(&key), real, total
                    );
                }
            }
        }
    }

    #[test]
    fn the_window_slides_by_halves() {
        // Window 10 s: periods of 5 s.
        let hk = HotKeys::with_k(1, 10, ':', 1, K);
        let reads = |now| {
            let r = hk.report_at(now);
            table(&r, Measure::Reads, By::Key)
                .entries
                .iter()
                .map(|e| (String::from_utf8(e.name.clone()).unwrap(), e.count))
                .collect::<Vec<_>>()
        };
        hk.request_at(0, 100, &get(b"a"));
        hk.request_at(0, 104, &get(b"a"));
        assert_eq!(reads(104), vec![("a".into(), 2)]);
        // The next period: "a" is in the previous one, still shown.
        hk.request_at(0, 105, &get(b"b"));
        assert_eq!(reads(109), vec![("a".into(), 2), ("b".into(), 1)]);
        // One more: "a" has left the window, "b" has not.
        assert_eq!(reads(110), vec![("b".into(), 1)]);
        // A silence longer than the window leaves nothing.
        hk.request_at(0, 111, &get(b"c"));
        assert_eq!(reads(125), vec![]);
        // Counting after the silence starts afresh.
        hk.request_at(0, 126, &get(b"d"));
        assert_eq!(reads(126), vec![("d".into(), 1)]);
    }

    #[test]
    fn reads_writes_bytes_and_prefixes() {
        let hk = HotKeys::with_k(10, 60, ':', 2, K);
        hk.request_at(0, 100, &get(b"user:1"));
        hk.request_at(1, 100, &get(b"user:1"));
        hk.request_at(1, 100, &get(b"plain"));
        hk.request_at(0, 100, &set(b"user:2", b"12345"));
        hk.request_at(0, 100, &key_only(Op::Delete, b"sess:9"));
        hk.request_at(0, 100, &key_only(Op::Touch, b"sess:9"));
        hk.request_at(0, 100, &key_only(Op::FlushAll, b""));
        hk.answer_at(
            1,
            100,
            &Response {
                status: Status::Hit as u8,
                key: b"user:1",
                value: b"abc",
                ..Default::default()
            },
        );
        // A miss returns no value; an error's message is not a value.
        hk.answer_at(
            1,
            100,
            &Response {
                status: Status::Error as u8,
                key: b"user:1",
                value: b"oops",
                ..Default::default()
            },
        );
        let r = hk.report_at(100);
        let ranked = |m, by| -> Vec<(Vec<u8>, u64)> {
            table(&r, m, by)
                .entries
                .iter()
                .map(|e| (e.name.clone(), e.count))
                .collect()
        };
        // Scaled by the sample rate (10).
        assert_eq!(
            ranked(Measure::Reads, By::Key),
            vec![(b"user:1".to_vec(), 20), (b"plain".to_vec(), 10)]
        );
        assert_eq!(
            ranked(Measure::Writes, By::Key),
            vec![(b"sess:9".to_vec(), 20), (b"user:2".to_vec(), 10)]
        );
        assert_eq!(
            ranked(Measure::Bytes, By::Key),
            vec![(b"user:2".to_vec(), 50), (b"user:1".to_vec(), 30)]
        );
        assert_eq!(
            ranked(Measure::Reads, By::Prefix),
            vec![(b"user".to_vec(), 20)]
        );
        assert_eq!(
            ranked(Measure::Writes, By::Prefix),
            vec![(b"sess".to_vec(), 20), (b"user".to_vec(), 10)]
        );
        assert_eq!(
            ranked(Measure::Bytes, By::Prefix),
            vec![(b"user".to_vec(), 80)]
        );
        assert_eq!(table(&r, Measure::Reads, By::Prefix).total, 30);
        assert_eq!(table(&r, Measure::Bytes, By::Key).total, 80);
        hk.clear();
        let r = hk.report_at(100);
        assert!(r
            .tables
            .iter()
            .all(|t| t.entries.is_empty() && t.total == 0));
    }

    fn key_only(op: Op, key: &[u8]) -> Request<'_> {
        Request {
            op: op as u8,
            key,
            ..Default::default()
        }
    }

    #[test]
    fn prefixes_are_cut_as_stats_detail_cuts_them() {
        let colon = ':' as u32;
        assert_eq!(prefix_of(b"a:b:c", colon), Some(&b"a"[..]));
        assert_eq!(prefix_of(b"abc", colon), None);
        assert_eq!(prefix_of(b":abc", colon), None);
        assert_eq!(prefix_of(b"x#y", '#' as u32), Some(&b"x"[..]));
    }

    #[test]
    fn samplers_take_one_in_n_without_a_stride() {
        let mut off = Sampler::new(0, 1);
        assert!((0..1_000_000).all(|_| !off.tick()));
        let mut all = Sampler::new(1, 1);
        assert!((0..1000).all(|_| all.tick()));
        let mut s = Sampler::new(100, 3);
        let n = 1_000_000;
        let taken = (0..n).filter(|_| s.tick()).count();
        assert!((9_500..=10_500).contains(&taken), "{taken}");
        // A client cycling through 100 keys: every position gets sampled.
        let mut s = Sampler::new(100, 4);
        let mut hit = [0u32; 100];
        for i in 0..1_000_000 {
            if s.tick() {
                hit[i % 100] += 1;
            }
        }
        assert!(hit.iter().all(|&h| h > 50), "{hit:?}");
    }

    #[test]
    fn stats_lines_are_name_value_pairs() {
        let hk = HotKeys::with_k(1, 60, ':', 1, K);
        hk.request_at(0, clock::now(), &get(b"a:b"));
        hk.request_at(0, clock::now(), &get(b"a:b"));
        hk.request_at(0, clock::now(), &get(b"bin\x00 \xff"));
        let lines = hk.stats();
        for (k, v) in &lines {
            assert!(!k.contains(char::is_whitespace) && !k.is_empty(), "{k:?}");
            assert!(!v.contains(char::is_whitespace) && !v.is_empty(), "{v:?}");
        }
        let stat = |name: &str| {
            lines
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(stat("hotkeys_enabled"), Some("yes"));
        assert_eq!(stat("hotkeys_sample"), Some("1"));
        assert_eq!(stat("hotkeys_window"), Some("60"));
        assert_eq!(stat("reads:total"), Some("3"));
        assert_eq!(stat("reads:key:1"), Some("a:b"));
        assert_eq!(stat("reads:key:1:count"), Some("2"));
        assert_eq!(stat("reads:key:1:error"), Some("0"));
        assert_eq!(stat("reads:key:2"), Some("bin\\x00\\x20\\xff"));
        assert_eq!(stat("reads:prefix:1"), Some("a"));
        assert_eq!(stat("writes:key:1"), None);
        let off = HotKeys::new(0, 60, ':', 1);
        off.request_at(0, 100, &get(b"a"));
        assert_eq!(
            off.stats(),
            vec![
                ("hotkeys_enabled".to_string(), "no".to_string()),
                ("hotkeys_sample".to_string(), "0".to_string()),
                ("hotkeys_window".to_string(), "60".to_string()),
            ]
        );
    }

    #[test]
    fn escaped_keys_read_back() {
        assert_eq!(escape(b"user:42"), "user:42");
        assert_eq!(escape("clé".as_bytes()), "clé");
        assert_eq!(escape(b"a b\\c\r\n"), "a\\x20b\\x5cc\\x0d\\x0a");
        assert_eq!(escape(b"\xc3"), "\\xc3");
    }
}
