//! Differential test of the meta protocol: the same seeded random stream of
//! meta commands (valid, quiet, base64 keys, opaques, stale/win/vivify flows,
//! malformed lines, some text commands mixed in), pipelined in batches that
//! end with `mn`, goes to Debian's memcached 1.6.18 (the reference) and to
//! wasmcached started with the same flags. Every answer line must be equal,
//! byte for byte, after these normalizations:
//!
//! * CAS values (`c<N>` in meta answers, `cas=<N>` in `me`, the 5th token of
//!   a text `VALUE` line) are mapped through a bijection: the first time a
//!   reference value and a target value appear at the same place they become
//!   a pair; every later appearance of either must keep the pairing. The
//!   stream sends each server its own CAS values (`C` flags translate the
//!   reference's value through the bijection).
//! * Time-derived numbers (`t<N>` remaining TTL, `l<N>` seconds since last
//!   access, `exp=`/`la=` in `me`) may differ by up to CLOCK_SLACK (2)
//!   seconds: the two servers' clocks tick at independent phases
//!   (memcached's clock event vs ours), so a second boundary can fall
//!   between two commands on one side only, and on a loaded machine a late
//!   tick makes a clock jump two seconds at once. The
//!   stream keeps every TTL far from any threshold it is compared with, so
//!   no hit/miss or win decision depends on that phase.
//! * Last access (`l<N>`, `la=`): memcached's item time is not a true
//!   last-access time. Its segmented LRU updates it on the second fetch of
//!   an item in the hot/warm LRU only, through an asynchronous bump (run by
//!   the LRU maintainer thread) in the cold LRU, and through
//!   `do_item_update` (add of an existing key, in-place incr) only when it
//!   is older than 60 s; which of these applies depends on LRU moves made by
//!   background threads. The store records every access. So the stream
//!   requires the store's value to be at most memcached's (+ CLOCK_SLACK):
//!   its last access is never older than memcached's. Over the
//!   default run (about a second) both are 0 everywhere; longer runs
//!   (DIFF_COMMANDS=300000) exercise this rule.
//! * `me`'s `cls=` and `size=` are memcached slab-allocator details: the
//!   store computes the same values for the small items of this stream
//!   (same size formula, default slab classes), so they are compared as is;
//!   they would have to be normalized for chunked (> 512 KiB) items, which
//!   the stream does not `me`.
//!
//! What the stream avoids, and why (memcached behaviours a plugin store
//! does not reproduce, or that make the reference itself nondeterministic):
//! * `ma` on a key retrieved (`mg`, `me`, `get`) in the same or the previous
//!   batch: memcached rewrites a number in place (blank padded) only when no
//!   pending response still references the item, else it makes a new item
//!   of the exact length.
//! * Stored numbers, deltas and initial values stay below 2^40 and no value
//!   contains `-` (memcached 1.6.18's "STALE MINUS" incr bug, see
//!   tests/differential.rs).
//! * `ms` with `C` and `I` compares CAS values by order (an older CAS
//!   stores a stale item). wasmcached's CAS values are unique server-wide
//!   but increase per shard (each shard has its own sequence: there is no
//!   shared counter), so they are ordered like memcached's only among the
//!   values of one key. For `ms … I` the stream takes `C` from the same
//!   key's history (or a literal 0 / huge value), never from another key.
//! * No `flush_all`, no expiry during the run (TTLs are 0, negative, or at
//!   least 1000 s; recache thresholds 0, 100, 10000 or 10^6 s).
//!
//! Also compared at the end: the command counters of `stats` (cmd_get,
//! cmd_set, cmd_touch, cmd_meta, hits and misses of every kind).
//!
//! Environment: DIFF_SEED, DIFF_COMMANDS (default 24000), DIFF_TRACE=FILE.
// The reference comparisons run where Debian's memcached and its tools do:
// Linux. Under Wine or on macOS/Windows this module is empty (see the
// README, "Platforms").
#![cfg(target_os = "linux")]

use crate::common;
use crate::common::example_build;

use common::diff::{start_pair, CasBijection, REF_ONLY_FLAGS};
use common::{Client, Rng, Server};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

/// Seconds two server clocks may disagree by (see the module comment).
const CLOCK_SLACK: i64 = 2;
const FLAGS: &[&str] = &["-t", "4", "-m", "64"];

/// Plain keys; a few more are binary (base64 only).
const KEYS: &[&str] = &["a", "b", "c", "d", "e", "f", "num1", "num2", "k3", "k4"];
const BIN_KEYS: &[&[u8]] = &[b"\x00\x01\x02", b"\xff\xfe", b"sp ace", b"k3"];

fn b64(v: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in v.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A command: its bytes for the reference and for the target (they differ
/// only in CAS values).
struct Cmd {
    r: Vec<u8>,
    t: Vec<u8>,
}

struct Gen {
    rng: Rng,
    /// Reference CAS <-> target CAS.
    cas_map: CasBijection<String>,
    /// Last reference CAS seen per key (by opaque attribution).
    last_cas: HashMap<String, String>,
    /// Batch in which a key was last retrieved.
    retrieved: HashMap<String, usize>,
    batch: usize,
    next_opaque: u64,
    /// Opaque id -> key of the command that carried it.
    opaque_keys: HashMap<String, String>,
    /// The target's plugin speaks ABI v1: only flags v1 can express (see
    /// `V1_REFUSED`).
    v1: bool,
}

impl Gen {
    /// (token sent to the server, key the item is stored under, is binary).
    fn key(&mut self) -> (String, String, bool) {
        if !self.v1 && self.rng.chance(20) {
            let k = *self.rng.pick(BIN_KEYS);
            (b64(k), String::from_utf8_lossy(k).into_owned(), true)
        } else {
            let k = self.rng.pick(KEYS).to_string();
            (k.clone(), k, false)
        }
    }

    fn ttl(&mut self) -> &'static str {
        const TTLS: [&str; 5] = ["0", "0", "1000", "100000", "-1"];
        TTLS[self.rng.below(5) as usize]
    }

    fn value(&mut self, key: &str) -> String {
        if key.starts_with("num") || self.rng.chance(25) {
            return self.rng.range(0, 1 << 40).to_string();
        }
        let n = self.rng.range(0, 12) as usize;
        let mut v = String::from("_");
        for _ in 0..n {
            v.push(*self.rng.pick(&['x', 'y', 'z', '0', '1', ' ', 'Q']));
        }
        v
    }

    /// A CAS token for `C`: the key's last CAS, another one, or one that
    /// never matches. Returns (reference text, target text).
    fn cas(&mut self, key: &str, own_only: bool) -> (String, String) {
        let mut pick = self.rng.below(4);
        if own_only && pick == 2 {
            pick = 0;
        }
        let r = match pick {
            0 | 1 => self.last_cas.get(key).cloned(),
            2 => {
                let all: Vec<&String> = self.last_cas.values().collect();
                if all.is_empty() {
                    None
                } else {
                    Some(all[self.rng.below(all.len() as u64) as usize].clone())
                }
            }
            _ => None,
        };
        match r.and_then(|r| self.cas_map.target_of(&r).map(|t| (r.clone(), t.clone()))) {
            Some(p) => p,
            None => {
                // A v1 plugin cannot compare with a CAS of 0 (`md C0`).
                let lit = if !self.v1 && self.rng.chance(10) {
                    "0".to_string()
                } else {
                    ((1u64 << 50) + self.rng.below(1000)).to_string()
                };
                (lit.clone(), lit)
            }
        }
    }

    fn opaque(&mut self, key: &str) -> String {
        self.next_opaque += 1;
        let o = format!("O{}", self.next_opaque);
        self.opaque_keys.insert(o.clone(), key.to_string());
        o
    }

    /// Builds one command.
    fn command(&mut self) -> Cmd {
        let (ktok, key, bin) = self.key();
        let mut flags: Vec<(String, String)> = Vec::new();
        let mut both = |f: &str| flags.push((f.to_string(), f.to_string()));
        if bin {
            both("b");
        }
        let roll = self.rng.below(100);
        let malformed = self.rng.chance(8);
        let cmd: &str;
        // (announced length, bytes sent)
        let mut data: Option<(usize, String)> = None;
        match roll {
            0..=39 => {
                cmd = "mg";
                self.retrieved.insert(key.clone(), self.batch);
                for f in ["v", "c", "f", "h", "l", "t", "s", "k", "q", "u"] {
                    if self.rng.chance(25) {
                        both(f);
                    }
                }
                if self.rng.chance(15) {
                    let t = format!("T{}", self.ttl());
                    both(&t);
                }
                if !self.v1 && self.rng.chance(15) {
                    let t = format!("N{}", self.rng.pick(&["0", "1000", "100000"]));
                    both(&t);
                }
                if !self.v1 && self.rng.chance(10) {
                    let t = format!("R{}", self.rng.pick(&["0", "100", "10000", "1000000"]));
                    both(&t);
                }
            }
            40..=64 => {
                cmd = "ms";
                let v = self.value(&key);
                for f in ["c", "k", "q", "I"] {
                    if f == "I" && self.v1 {
                        continue;
                    }
                    if self.rng.chance(20) {
                        both(f);
                    }
                }
                if self.rng.chance(40) {
                    let t = format!("T{}", self.ttl());
                    both(&t);
                }
                if self.rng.chance(30) {
                    let t = format!("F{}", self.rng.below(1 << 31));
                    both(&t);
                }
                if self.rng.chance(30) {
                    let t = format!("M{}", self.rng.pick(&["E", "A", "P", "R", "S"]));
                    both(&t);
                }
                if self.rng.chance(25) {
                    // With I the CAS order matters; see the module comment.
                    let own = flags.iter().any(|f| f.0 == "I");
                    let (r, t) = self.cas(&key, own);
                    flags.push((format!("C{r}"), format!("C{t}")));
                }
                data = Some((v.len(), v));
            }
            65..=74 => {
                cmd = "md";
                for f in ["q", "k", "I"] {
                    if f == "I" && self.v1 {
                        continue;
                    }
                    if self.rng.chance(25) {
                        both(f);
                    }
                }
                if self.rng.chance(20) {
                    let t = format!("T{}", self.ttl());
                    both(&t);
                }
                if self.rng.chance(20) {
                    let (r, t) = self.cas(&key, false);
                    flags.push((format!("C{r}"), format!("C{t}")));
                }
            }
            75..=86 => {
                // ma: only on keys nobody holds (see the module comment).
                let recent = self
                    .retrieved
                    .get(&key)
                    .is_some_and(|&b| b + 2 > self.batch);
                if recent {
                    return self.command();
                } else {
                    cmd = "ma";
                    for f in ["q", "k", "v", "t", "c"] {
                        if self.rng.chance(25) {
                            both(f);
                        }
                    }
                    if !self.v1 && self.rng.chance(30) {
                        let t = format!("N{}", self.rng.pick(&["0", "1000"]));
                        both(&t);
                    }
                    if self.rng.chance(20) {
                        let t = format!("J{}", self.rng.below(1 << 40));
                        both(&t);
                    }
                    if self.rng.chance(40) {
                        let t = format!("D{}", self.rng.below(1 << 20));
                        both(&t);
                    }
                    if self.rng.chance(30) {
                        let t = format!("M{}", self.rng.pick(&["I", "+", "D", "-"]));
                        both(&t);
                    }
                    if !self.v1 && self.rng.chance(15) {
                        let t = format!("T{}", self.ttl());
                        both(&t);
                    }
                    if self.rng.chance(10) {
                        let (r, t) = self.cas(&key, false);
                        flags.push((format!("C{r}"), format!("C{t}")));
                    }
                }
            }
            87 => {
                // mn answers MN whatever follows it.
                let junk = if self.rng.chance(50) { " foo bar" } else { "" };
                let s = format!("mn{junk}\r\n");
                return Cmd {
                    r: s.clone().into_bytes(),
                    t: s.into_bytes(),
                };
            }
            88..=90 => {
                cmd = "me";
                self.retrieved.insert(key.clone(), self.batch);
                flags.clear();
                if bin {
                    flags.push(("b".into(), "b".into()));
                }
            }
            _ => {
                // Text commands on the plain keys, mixed in.
                if bin {
                    return self.command();
                }
                self.retrieved.insert(key.clone(), self.batch);
                let s = match self.rng.below(4) {
                    0 => format!("get {key}\r\n"),
                    1 => format!("gets {key}\r\n"),
                    2 => {
                        let v = self.value(&key);
                        format!("set {key} 3 0 {}\r\n{v}\r\n", v.len())
                    }
                    _ => format!("delete {key}\r\n"),
                };
                return Cmd {
                    r: s.clone().into_bytes(),
                    t: s.into_bytes(),
                };
            }
        }
        // Opaques: a short one for attribution, sometimes.
        if cmd != "me" && cmd != "mn" && self.rng.chance(60) {
            let o = self.opaque(&key);
            flags.push((o.clone(), o));
        }
        self.rng_shuffle(&mut flags);
        if self.v1 && cmd == "mg" {
            // A v1 answer has no TTL from before a touch: `t` after `T`.
            let t = flags.iter().position(|f| f.0 == "t");
            let touch = flags.iter().position(|f| f.0.starts_with('T'));
            if let (Some(t), Some(touch)) = (t, touch) {
                if t < touch {
                    flags.swap(t, touch);
                }
            }
        }
        let mut ktok = ktok;
        if malformed {
            self.malform(&mut ktok, &mut flags, &mut data);
        }
        let join = |side: usize| {
            let mut s = format!("{cmd} {ktok}");
            if let Some((n, _)) = &data {
                let _ = write!(s, " {n}");
            }
            for f in &flags {
                s.push(' ');
                s.push_str(if side == 0 { &f.0 } else { &f.1 });
            }
            s.push_str("\r\n");
            if let Some((_, v)) = &data {
                s.push_str(v);
                s.push_str("\r\n");
            }
            s.into_bytes()
        };
        Cmd {
            r: join(0),
            t: join(1),
        }
    }

    fn rng_shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }

    /// Turns a command into one of memcached's malformed cases.
    fn malform(
        &mut self,
        ktok: &mut String,
        flags: &mut Vec<(String, String)>,
        data: &mut Option<(usize, String)>,
    ) {
        let mut add = |f: String| flags.push((f.clone(), f));
        let mut case = self.rng.below(10);
        if self.v1 && (case == 6 || case == 7) {
            // binary keys, or every flag at once (N, R, I among them)
            case = 0;
        }
        match case {
            0 => add("zz".into()), // invalid flag
            1 => {
                // duplicate flag
                add("k".into());
                add("k".into());
            }
            2 => add(format!("T{}", self.rng.pick(&["x", "", "1x"]))),
            3 => add(format!("M{}", self.rng.pick(&["", "XY", "Q"]))),
            4 => add(format!("O{}", "o".repeat(32 + self.rng.below(5) as usize))),
            5 => *ktok = "k".repeat(251),
            6 => {
                flags.push(("b".into(), "b".into()));
                *ktok = "!!!".into();
            }
            7 => {
                for f in [
                    "v", "c", "f", "h", "l", "t", "s", "k", "q", "u", "P", "L", "O1", "N1", "R1",
                    "T1", "I", "E",
                ] {
                    add(f.into());
                }
            }
            8 => add(format!("D{}", self.rng.pick(&["x", "-1"]))),
            _ => {
                if let Some((_, v)) = data {
                    // A data block longer than announced: bad data chunk
                    // (the rest, "TRA", then answers ERROR).
                    v.push_str("EXTRA");
                } else {
                    add("J?".into());
                }
            }
        }
    }
}

/// Reads one batch's answers (everything before the final `MN`; the batch
/// held `inner_mn` other `mn` commands): lines, with VA/VALUE data blocks as
/// their own entries.
fn read_batch(c: &mut Client, inner_mn: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut mns = 0;
    loop {
        let raw = c.try_line_raw().expect("read");
        assert!(!raw.is_empty(), "[{}] connection closed", c.label());
        assert!(
            raw.ends_with(b"\r\n"),
            "[{}] bad line {:?}",
            c.label(),
            String::from_utf8_lossy(&raw)
        );
        let line = raw[..raw.len() - 2].to_vec();
        if line == b"MN" {
            if mns == inner_mn {
                return out;
            }
            mns += 1;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let toks: Vec<&str> = text.split(' ').collect();
        let data_len = match toks[0] {
            "VA" => toks.get(1).and_then(|n| n.parse::<usize>().ok()),
            "VALUE" => toks.get(3).and_then(|n| n.parse::<usize>().ok()),
            _ => None,
        };
        out.push(line);
        if let Some(n) = data_len {
            out.push(c.exact(n + 2));
        }
    }
}

#[derive(Default)]
struct Stats {
    lines: usize,
    cas_pairs: usize,
    time_tolerated: usize,
}

/// Compares one answer line pair; learns CAS pairs and opaque attributions.
fn compare(g: &mut Gen, st: &mut Stats, r: &[u8], t: &[u8]) -> Result<(), String> {
    st.lines += 1;
    if r == t {
        // Still learn CAS values (identical numbers can pair too).
    }
    let rs = String::from_utf8_lossy(r).into_owned();
    let ts = String::from_utf8_lossy(t).into_owned();
    let rt: Vec<&str> = rs.split(' ').collect();
    let tt: Vec<&str> = ts.split(' ').collect();
    let mismatch = || Err(format!("reference: {rs:?}\n   target: {ts:?}"));
    if rt.len() != tt.len() {
        return mismatch();
    }
    let is_meta = matches!(rt[0], "HD" | "VA" | "EN" | "NF" | "NS" | "EX");
    let is_me = rt[0] == "ME";
    let is_value = rt[0] == "VALUE";
    let mut cas_of_line: Option<String> = None;
    let mut opaque: Option<String> = None;
    for (i, (a, b)) in rt.iter().zip(tt.iter()).enumerate() {
        if a == b && !(is_meta && i > 0 && a.starts_with('c')) && !(is_me && a.starts_with("cas="))
        {
            if is_meta && a.starts_with('O') {
                opaque = Some(a.to_string());
            }
            continue;
        }
        let pair = if is_meta && i > 0 && a.starts_with('c') && b.starts_with('c') {
            Some((&a[1..], &b[1..]))
        } else if is_me && a.starts_with("cas=") && b.starts_with("cas=") {
            Some((&a[4..], &b[4..]))
        } else if is_value && i == 4 {
            Some((*a, *b))
        } else {
            None
        };
        if let Some((ra, tb)) = pair {
            if ra.parse::<u64>().is_err() || tb.parse::<u64>().is_err() {
                return mismatch();
            }
            if ra == "0" || tb == "0" {
                if ra != tb {
                    return mismatch();
                }
                continue;
            }
            match g.cas_map.check(&ra.to_string(), &tb.to_string()) {
                Ok(true) => st.cas_pairs += 1,
                Ok(false) => {}
                Err(why) => {
                    return Err(format!(
                        "CAS bijection broken ({why})\nreference: {rs:?}\n   target: {ts:?}"
                    ))
                }
            }
            cas_of_line = Some(ra.to_string());
            continue;
        }
        // Time-derived numbers: one second of clock phase is tolerated.
        let time = |s: &str| -> Option<(String, i64)> {
            for p in ["exp=", "la="] {
                if is_me {
                    if let Some(n) = s.strip_prefix(p) {
                        return n.parse().ok().map(|v| (p.to_string(), v));
                    }
                }
            }
            if is_meta && i > 0 && (s.starts_with('t') || s.starts_with('l')) && s != "t-1" {
                return s[1..].parse().ok().map(|v| (s[..1].to_string(), v));
            }
            None
        };
        match (time(a), time(b)) {
            // Last access: the store's is at least as recent as memcached's.
            (Some((p, x)), Some((q, y)))
                if p == q && (p == "l" || p == "la=") && y <= x + CLOCK_SLACK =>
            {
                st.time_tolerated += 1;
            }
            (Some((p, x)), Some((q, y))) if p == q && (x - y).abs() <= CLOCK_SLACK => {
                st.time_tolerated += 1;
            }
            _ => return mismatch(),
        }
    }
    if is_meta {
        if let (Some(o), Some(c)) = (opaque, cas_of_line) {
            if let Some(k) = g.opaque_keys.get(&o) {
                g.last_cas.insert(k.clone(), c);
            }
        }
    }
    if is_value {
        if let Some(c) = rt.get(4) {
            g.last_cas.insert(rt[1].to_string(), c.to_string());
        }
    }
    Ok(())
}

#[test]
fn differential_meta_random_stream() {
    let seed = common::seed_from_env("DIFF_SEED", 20_261_127);
    let total = common::seed_from_env("DIFF_COMMANDS", 24_000) as usize;
    let sent = run(FLAGS, seed, total, true);
    assert!(sent >= 20_000 || std::env::var_os("DIFF_COMMANDS").is_some());
}

/// One worker thread and no CAS (`-C`): every CAS is 0, `C0` matches in
/// `md` but not in `ms` (memcached's "no CAS" compare value).
#[test]
fn differential_meta_single_thread_no_cas() {
    let seed = common::seed_from_env("DIFF_SEED", 4_242) ^ 0x5a5a;
    let total = (common::seed_from_env("DIFF_COMMANDS", 24_000) as usize / 3).max(1);
    run(&["-t", "1", "-m", "64", "-C"], seed, total, false);
}

/// The C SDK's c-quota built for ABI version 1 (its build script writes it
/// beside the v7 example): a complete memcached store that speaks v1.
fn c_quota_v1() -> String {
    example_build::example("c-quota").replace("c-quota.wasm", "c-quota-v1.wasm")
}

/// The same stream against an ABI v1 plugin (c-quota built for v1): every
/// meta flag v1 can express must answer exactly as memcached does, TTLs
/// (`t`, `exp=`) included.
#[test]
fn differential_meta_abi_v1_plugin() {
    let wasm = c_quota_v1();
    let seed = common::seed_from_env("DIFF_SEED", 1_606) ^ 0x16;
    let total = (common::seed_from_env("DIFF_COMMANDS", 24_000) as usize / 3).max(1);
    run_with(&["-t", "2", "-m", "64"], Some(&wasm), seed, total, true);
}

/// What ABI v1 cannot carry, and the answer a meta command that needs it
/// gets from a v1 plugin (the default store, v7, does them all).
const V1_REFUSED: &[&str] = &[
    "mg k N30",    // vivify on miss
    "mg k R30",    // recache
    "mg k t T30",  // the TTL before a touch
    "md k I",      // invalidate
    "md k I T30",  // invalidate with a new TTL
    "md k C0",     // compare with a CAS of 0
    "ma n N0 J5",  // vivify
    "ma n T30",    // a new TTL from arithmetic
    "ms azE= 1 b", // a binary key
];
const NEEDS_V2: &str =
    "SERVER_ERROR storage plugin speaks ABI version 1 and cannot do this meta flag";

#[test]
fn meta_flags_v1_cannot_express_are_refused() {
    let wasm = c_quota_v1();
    let v1 = Server::start(&["-t", "1", "--plugin", &wasm]);
    let v4 = Server::start(&["-t", "1"]);
    for (server, is_v1) in [(&v1, true), (&v4, false)] {
        let mut c = server.client();
        for cmd in V1_REFUSED {
            assert_eq!(c.set("k", 0, 1000, b"v"), "STORED");
            assert_eq!(c.set("n", 0, 1000, b"1"), "STORED");
            let line = if cmd.starts_with("ms") {
                c.send(format!("{cmd}\r\nx\r\n"));
                c.line()
            } else {
                c.cmd(cmd)
            };
            if is_v1 {
                assert_eq!(line, NEEDS_V2, "{cmd} on a v1 plugin");
                // refused before the plugin saw it: nothing changed
                let ttl = c.cmd("mg k t v");
                assert!(
                    ["VA 1 t1000", "VA 1 t999", "VA 1 t998"].contains(&ttl.as_str()),
                    "after {cmd}: {ttl}"
                );
                assert_eq!(c.line(), "v");
                assert_eq!(c.get("n").as_deref(), Some(&b"1"[..]), "after {cmd}");
            } else {
                assert_ne!(line, NEEDS_V2, "{cmd} on the default store");
                assert!(!line.starts_with("SERVER_ERROR"), "{cmd}: {line}");
            }
            assert_eq!(c.cmd("mn"), "MN");
        }
        // What v1 does express: the TTL after a touch, a CAS compare of a
        // non-zero value.
        assert_eq!(c.set("k", 0, 1000, b"v"), "STORED");
        assert_eq!(c.cmd("mg k T30 t"), "HD t30");
        let cas = c.gets("k").expect("gets k").1;
        assert_eq!(c.cmd(&format!("md k C{}", cas + 1)), "EX");
        assert_eq!(c.cmd(&format!("md k C{cas}")), "HD");
    }
}

/// Runs `total` commands against both servers started with `flags`;
/// returns the number of commands sent.
fn run(flags: &[&str], seed: u64, total: usize, cas_on: bool) -> usize {
    run_with(flags, None, seed, total, cas_on)
}

/// As [`run`], with the target running `plugin` (an ABI v1 plugin: the
/// stream then keeps to what v1 can express).
fn run_with(flags: &[&str], plugin: Option<&str>, seed: u64, total: usize, cas_on: bool) -> usize {
    let plugin_flags = match plugin {
        Some(p) => vec!["--plugin", p],
        None => vec![],
    };
    // Fails (never skips) when memcached is not installed.
    let (reference, target) = start_pair(flags, REF_ONLY_FLAGS, &plugin_flags);
    let mut rc = reference.client().with_label("memcached");
    let mut tc = target.client().with_label("wasmcached");
    let mut trace = std::env::var_os("DIFF_TRACE").map(|p| std::fs::File::create(p).unwrap());
    let mut g = Gen {
        rng: Rng::new(seed),
        cas_map: CasBijection::default(),
        last_cas: HashMap::new(),
        retrieved: HashMap::new(),
        batch: 0,
        next_opaque: 0,
        opaque_keys: HashMap::new(),
        v1: plugin.is_some(),
    };
    let mut st = Stats::default();
    let mut sent = 0;
    let mut kinds: HashMap<String, usize> = HashMap::new();
    while sent < total {
        g.batch += 1;
        let n = g.rng.range(1, 24) as usize;
        let mut rb = Vec::new();
        let mut tb = Vec::new();
        let mut inner_mn = 0;
        for _ in 0..n {
            let c = g.command();
            if c.r.starts_with(b"mn") {
                inner_mn += 1;
            }
            *kinds
                .entry(String::from_utf8_lossy(&c.r[..2]).into_owned())
                .or_default() += 1;
            rb.extend_from_slice(&c.r);
            tb.extend_from_slice(&c.t);
        }
        sent += n;
        rb.extend_from_slice(b"mn\r\n");
        tb.extend_from_slice(b"mn\r\n");
        rc.send(&rb);
        tc.send(&tb);
        let ra = read_batch(&mut rc, inner_mn);
        let ta = read_batch(&mut tc, inner_mn);
        if let Some(f) = trace.as_mut() {
            let _ = writeln!(f, ">>> batch {}\n{}", g.batch, String::from_utf8_lossy(&rb));
            for l in &ra {
                let _ = writeln!(f, "R {}", String::from_utf8_lossy(l));
            }
            for l in &ta {
                let _ = writeln!(f, "T {}", String::from_utf8_lossy(l));
            }
        }
        let batch_no = g.batch;
        let ctx = || {
            format!(
                "batch {} (seed {seed}):\n{}\nreference answers: {:?}\ntarget answers: {:?}",
                batch_no,
                String::from_utf8_lossy(&rb),
                ra.iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>(),
                ta.iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>()
            )
        };
        assert_eq!(ra.len(), ta.len(), "answer count differs in {}", ctx());
        for (r, t) in ra.iter().zip(ta.iter()) {
            if let Err(e) = compare(&mut g, &mut st, r, t) {
                panic!("mismatch: {e}\nin {}", ctx());
            }
        }
    }
    // The command counters must agree too.
    let rs = rc.stats("");
    let ts = tc.stats("");
    for k in [
        "cmd_get",
        "cmd_set",
        "cmd_touch",
        "cmd_meta",
        "get_hits",
        "get_misses",
        "touch_hits",
        "touch_misses",
        "delete_hits",
        "delete_misses",
        "incr_hits",
        "incr_misses",
        "decr_hits",
        "decr_misses",
        "cas_hits",
        "cas_misses",
        "cas_badval",
        "curr_items",
        "total_items",
    ] {
        assert_eq!(rs.get(k), ts.get(k), "stat {k} differs");
    }
    eprintln!(
        "differential_meta: {sent} commands in {} batches, {} answer lines, 0 mismatches, \
         {} CAS pairs, {} time values within the clock slack; commands by kind: {kinds:?}",
        g.batch, st.lines, st.cas_pairs, st.time_tolerated
    );
    if cas_on {
        assert!(st.cas_pairs > 100, "the stream exercised CAS");
    }
    for k in ["mg", "ms", "md", "ma", "me", "mn"] {
        assert!(
            kinds.get(k).copied().unwrap_or(0) > 50,
            "too few {k}: {kinds:?}"
        );
    }
    sent
}
