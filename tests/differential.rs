//! Differential test: the same seeded random stream of text-protocol commands
//! goes to Debian's memcached (the reference) and to the server under test,
//! started with the same flags; their answers must be identical, line by
//! line and byte by byte, except for CAS unique values, which are mapped:
//! the first time a reference cas value and a target cas value appear at the
//! same place they become a pair, and every later appearance of either must
//! keep the pairing (a bijection). `stats` and `version` are not compared.
//!
//! The stream mixes every storage/retrieval/arithmetic/touch/delete command,
//! noreply, pipelined batches (several commands in one write) and malformed
//! input (bad numbers, too-long keys, unknown commands, wrong token counts,
//! bad data chunks), on a small key space so that hits, EXISTS and friends
//! happen a lot. Answers are delimited by `version` sentinels: either after
//! every command (precise attribution) or only at the end of a batch (pure
//! pipelining).
//!
//! Determinism: no exptime in the stream can expire during the run (only
//! 0, far future, negative or past); no delayed flush_all; long-key
//! retrievals only open a batch (memcached 1.6 drops a connection's unsent
//! answers when one fails); an incr/decr never follows a retrieval of the
//! same key within two batches (memcached rewrites a number in place, with
//! blank padding, only when nobody else holds the item); the reference runs
//! without its LRU crawler/maintainer threads (`-o no_lru_crawler,
//! no_lru_maintainer`, which change no answer) so that no background thread
//! holds items either.
//!
//! STALE MINUS: memcached 1.6.18's incr/decr of a stored number >= 2^63
//! answers "CLIENT_ERROR cannot increment or decrement non-numeric value"
//! when the bytes left after the value in its (reused) slab chunk contain a
//! '-' before a NUL (its negative-sign check scans past the value; repro:
//! `set a 0 -1 28` + `CPYQ ML+8 60KDGINSES:Q-KPOPO`, `get a`,
//! `set b 0 0 20` + `18446744073709551615`, `decr b 61` -> non-numeric on
//! `-t 1`). Nothing the stream stores contains a '-' byte (values, keys,
//! flags), so the reference cannot hit it.
//!
//! BIG NUMBERS: because of that bug, no number the stream stores or computes
//! reaches 2^63 (numeric values < 2^62, incr deltas < 2^40, append/prepend
//! data never all digits); arithmetic near 2^64 is covered by
//! text_protocol.rs instead.
//!
//! Known memcached 1.6.18 quirks that are NOT in the default stream (turn
//! them on with DIFF_QUIRKS=1): 32-bit truncation of flags/exptime/length
//! numbers between 2^31 (or 2^32) and 2^64 (`set k 4294967296 0 1` stores
//! flags 0, `set k 0 0 4294967296` reads a 0-byte value), and NUL bytes in
//! command lines (C strings: `get a\0b` is `get a`).
//!
//! Environment: DIFF_SEED (default fixed), DIFF_COMMANDS (default 40000),
//! DIFF_QUIRKS=1, DIFF_MALFORMED_PCT (share of malformed commands, default
//! 12), DIFF_KEEP_GOING=N (report up to N mismatches instead of stopping at
//! the first), DIFF_CHECK_STATE=1 (compare every key after every batch, not
//! every 50), DIFF_TRACE=FILE (log every command and answer), plus the
//! harness's WASMCACHED_TEST_BIN / MEMCACHED_BIN.
// The reference comparisons run where Debian's memcached and its tools do:
// Linux. Under Wine or on macOS/Windows this module is empty (see the
// README, "Platforms").
#![cfg(target_os = "linux")]

use crate::common;

use common::diff::{start_pair, CasBijection, REF_ONLY_FLAGS};
use common::{Client, Rng, Server};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNS_PER_SIDE: usize = 3;

// ------------------------------------------------------------ commands

#[derive(Clone, Debug)]
enum CasRef {
    /// The cas this side saw last for the key (from gets/gats).
    Last(String),
    /// The first cas this side ever saw for the key (usually stale).
    First(String),
    Literal(u64),
}

#[derive(Clone, Debug)]
enum Piece {
    Bytes(Vec<u8>),
    Cas(CasRef),
}

#[derive(Clone, Debug)]
struct Cmd {
    pieces: Vec<Piece>,
    /// `quit`: the connection closes instead of answering.
    quit: bool,
    /// A retrieval with a too-long key: must open its batch.
    opens_batch: bool,
    /// Keys this command reads (get/gets/gat/gats) ...
    reads: Vec<String>,
    /// ... or changes with incr/decr.
    arith: Option<String>,
}

impl Cmd {
    fn new(b: Vec<u8>) -> Cmd {
        Cmd {
            pieces: vec![Piece::Bytes(b)],
            quit: false,
            opens_batch: false,
            reads: vec![],
            arith: None,
        }
    }
    fn text(s: &str) -> Cmd {
        Cmd::new(s.as_bytes().to_vec())
    }
    fn display(&self) -> String {
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Bytes(b) => s.push_str(&esc(b, 120)),
                Piece::Cas(c) => {
                    let _ = write!(s, "<cas {:?}>", c);
                }
            }
        }
        s
    }
}

/// Escapes bytes for messages; long runs are shortened.
fn esc(b: &[u8], max: usize) -> String {
    let mut s = String::new();
    let shown = if b.len() > max { &b[..max] } else { b };
    for &c in shown {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    if b.len() > max {
        let _ = write!(s, "...({} bytes)", b.len());
    }
    s
}

struct Gen {
    rng: Rng,
    keys: Vec<String>,
    now: i64,
    quirks: bool,
    allow_flush: bool,
    /// Share of malformed commands, percent (DIFF_MALFORMED_PCT, default 12).
    malformed_pct: u64,
}

impl Gen {
    fn new(seed: u64, quirks: bool, allow_flush: bool) -> Gen {
        let mut keys: Vec<String> = (0..44).map(|i| format!("k{i}")).collect();
        keys.push("a".into());
        keys.push("key:with:colons/and|pipes".into());
        keys.push("UPPER_lower.1.2".into());
        keys.push("\u{e9}t\u{e9}\u{2603}".into());
        keys.push("x".repeat(250)); // the longest legal key
        keys.push("k7_".into());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let malformed_pct = common::seed_from_env("DIFF_MALFORMED_PCT", 12).min(100);
        Gen {
            rng: Rng::new(seed),
            keys,
            now,
            quirks,
            allow_flush,
            malformed_pct,
        }
    }

    fn key(&mut self) -> String {
        // a few keys are hot
        if self.rng.chance(30) {
            return self.keys[self.rng.below(5) as usize].clone();
        }
        self.rng.pick(&self.keys).clone()
    }

    fn long_key(&mut self) -> String {
        let n = self.rng.range(251, 400) as usize;
        (0..n)
            .map(|i| (b'a' + ((i * 7) % 26) as u8) as char)
            .collect()
    }

    fn noreply(&mut self) -> &'static str {
        if self.rng.chance(15) {
            " noreply"
        } else {
            ""
        }
    }

    fn flags(&mut self) -> String {
        match self.rng.below(10) {
            0..=5 => "0".into(),
            6 => "4294967295".into(),
            7 => "007".into(),
            _ => {
                // no 0x2d ('-') byte: see STALE MINUS in the module doc
                let mut f = self.rng.below(1 << 32) as u32;
                while f.to_le_bytes().contains(&b'-') {
                    f = f.wrapping_add(1);
                }
                f.to_string()
            }
        }
    }

    /// Exptimes that cannot expire during a run: 0, far future (relative
    /// or absolute), or already expired (negative, absolute past).
    fn exptime(&mut self) -> String {
        match self.rng.below(20) {
            0..=11 => "0".into(),
            12 | 13 => self.rng.range(3600, 2_592_000).to_string(),
            14 => (self.now + self.rng.range(3600, 1_000_000) as i64).to_string(),
            15 | 16 => format!("-{}", self.rng.range(1, 100_000)),
            17 => (self.now - self.rng.range(10, 1_000_000) as i64).to_string(),
            18 => "2592001".into(), // 30 days + 1 s: a unix time in 1970
            _ => "-1".into(),
        }
    }

    /// Value bytes: nothing in them can read as a command if a server ends
    /// up parsing them as a command line (no lowercase letters at the start).
    fn value(&mut self) -> Vec<u8> {
        let len = match self.rng.below(100) {
            0..=9 => 0,
            10..=69 => self.rng.range(1, 16),
            70..=94 => self.rng.range(16, 300),
            95..=98 => self.rng.range(300, 20_000),
            _ => self.rng.range(20_000, 200_000),
        } as usize;
        self.value_of_len(len)
    }

    /// For append/prepend: never all digits, so that concatenation cannot
    /// build a number of 2^63 or more (BIG NUMBERS in the module doc).
    fn small_value(&mut self) -> Vec<u8> {
        let len = self.rng.range(0, 40) as usize;
        let mut v = self.value_of_len(len);
        if !v.is_empty() && v.iter().all(|c| c.is_ascii_digit() || *c == b' ') {
            v.push(b'X');
        }
        v
    }

    fn value_of_len(&mut self, len: usize) -> Vec<u8> {
        match self.rng.below(10) {
            0 => {
                // binary, including CR LF and NUL; never starts with a letter
                let mut v: Vec<u8> = (0..len)
                    .map(|_| self.rng.below(256) as u8)
                    .map(|b| if b == b'-' { b'=' } else { b })
                    .collect();
                if let Some(f) = v.first_mut() {
                    *f = 0x80 | (*f & 0x7f);
                }
                v
            }
            1..=3 => self.number(len),
            _ => {
                const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:+/ ";
                let mut v: Vec<u8> = (0..len).map(|_| *self.rng.pick(A)).collect();
                if let Some(f) = v.first_mut() {
                    if *f == b' ' {
                        *f = b'Z';
                    }
                }
                v
            }
        }
    }

    /// Something incr/decr may or may not accept, about `len` bytes long.
    fn number(&mut self, len: usize) -> Vec<u8> {
        let s = match self.rng.below(12) {
            0 => "0".to_string(),
            1 => "4611686018427387903".into(),  // 2^62 - 1
            2 => "18446744073709551616".into(), // too big: non-numeric
            3 => format!("00{}", self.rng.below(100)),
            4 => format!("{} ", self.rng.below(1000)),
            5 => format!("{}X", self.rng.below(1000)), // non-numeric
            6 => (self.rng.next_u64() >> 2).to_string(),
            7 => "1".into(),
            _ => self.rng.below(1_000_000).to_string(),
        };
        if len == 0 && self.rng.chance(50) {
            return vec![];
        }
        s.into_bytes()
    }

    /// incr deltas stay below 2^40 so that sums stay below 2^63 (BIG
    /// NUMBERS in the module doc); decr deltas may be anything.
    fn delta(&mut self, incr: bool) -> String {
        match self.rng.below(10) {
            0..=5 => self.rng.range(0, 100).to_string(),
            6 if incr => self.rng.range(1 << 30, 1 << 40).to_string(),
            6 => "18446744073709551615".into(),
            7 if incr => self.rng.range(1_000_000, 1 << 40).to_string(),
            7 => self.rng.next_u64().to_string(),
            _ => self.rng.range(100, 1_000_000).to_string(),
        }
    }

    fn cas_ref(&mut self, key: &str) -> CasRef {
        match self.rng.below(10) {
            0..=5 => CasRef::Last(key.to_string()),
            6 | 7 => CasRef::First(key.to_string()),
            8 => CasRef::Literal(0),
            _ => CasRef::Literal(self.rng.range(1 << 40, 1 << 62)),
        }
    }

    /// Whitespace variations memcached accepts on a command line.
    fn sep(&mut self) -> &'static str {
        if self.rng.chance(3) {
            "  "
        } else {
            " "
        }
    }

    fn eol(&mut self) -> &'static str {
        match self.rng.below(40) {
            0 => "\n",
            1 => " \r\n",
            _ => "\r\n",
        }
    }

    fn storage(&mut self, verb: &str, key: String, data: Vec<u8>) -> Cmd {
        let s = self.sep();
        let mut line = format!(
            "{verb}{s}{key} {} {} {}",
            self.flags(),
            self.exptime(),
            data.len()
        );
        let mut pieces = vec![];
        let nr = self.noreply();
        let eol = self.eol();
        if verb == "cas" {
            line.push(' ');
            pieces.push(Piece::Bytes(line.into_bytes()));
            pieces.push(Piece::Cas(self.cas_ref(&key)));
            line = String::new();
        }
        line.push_str(nr);
        line.push_str(eol);
        let mut b = line.into_bytes();
        b.extend_from_slice(&data);
        b.extend_from_slice(b"\r\n");
        pieces.push(Piece::Bytes(b));
        Cmd {
            pieces,
            quit: false,
            opens_batch: false,
            reads: vec![],
            arith: None,
        }
    }

    fn valid(&mut self) -> Cmd {
        let key = self.key();
        match self.rng.below(100) {
            0..=17 => {
                let v = self.value();
                self.storage("set", key, v)
            }
            18..=22 => {
                let v = self.value();
                self.storage("add", key, v)
            }
            23..=26 => {
                let v = self.value();
                self.storage("replace", key, v)
            }
            27..=30 => {
                let v = self.small_value();
                self.storage("append", key, v)
            }
            31..=33 => {
                let v = self.small_value();
                self.storage("prepend", key, v)
            }
            34..=40 => {
                let v = self.value();
                self.storage("cas", key, v)
            }
            41..=60 => {
                let verb = if self.rng.chance(50) { "get" } else { "gets" };
                self.retrieval(verb, None)
            }
            61..=65 => {
                let verb = if self.rng.chance(50) { "gat" } else { "gats" };
                let e = self.exptime();
                self.retrieval(verb, Some(e))
            }
            66..=71 => {
                let e = self.exptime();
                let nr = self.noreply();
                let eol = self.eol();
                Cmd::text(&format!("touch {key} {e}{nr}{eol}"))
            }
            72..=78 => {
                let nr = self.noreply();
                let zero = if self.rng.chance(10) { " 0" } else { "" };
                let eol = self.eol();
                Cmd::text(&format!("delete {key}{zero}{nr}{eol}"))
            }
            79..=90 => {
                let verb = if self.rng.chance(60) { "incr" } else { "decr" };
                let d = self.delta(verb == "incr");
                let nr = self.noreply();
                let eol = self.eol();
                let mut c = Cmd::text(&format!("{verb} {key} {d}{nr}{eol}"));
                c.arith = Some(key);
                c
            }
            91..=95 => {
                // a numeric value to work on
                let n = self.number(1);
                self.storage("set", key, n)
            }
            96 => {
                if self.allow_flush && self.rng.chance(30) {
                    let arg = *self.rng.pick(&["", " 0", " -1"]);
                    let nr = self.noreply();
                    Cmd::text(&format!("flush_all{arg}{nr}\r\n"))
                } else {
                    let nr = self.noreply();
                    Cmd::text(&format!("verbosity 0{nr}\r\n"))
                }
            }
            97 => {
                let nr = self.noreply();
                let mb = self.rng.range(64, 2048);
                Cmd::text(&format!("cache_memlimit {mb}{nr}\r\n"))
            }
            98 => {
                // too large for -I 1m: refused, data swallowed, old value gone
                let n = self.rng.range(1_100_000, 2_100_000) as usize;
                let nr = self.noreply();
                let mut b = format!("set {key} 0 0 {n}{nr}\r\n").into_bytes();
                b.extend(std::iter::repeat_n(b'L', n));
                b.extend_from_slice(b"\r\n");
                Cmd::new(b)
            }
            _ => Cmd::text(
                self.rng
                    .pick::<&str>(&["shutdown\r\n", "shutdown graceful\r\n"]),
            ),
        }
    }

    fn retrieval(&mut self, verb: &str, exptime: Option<String>) -> Cmd {
        let n = match self.rng.below(10) {
            0..=5 => 1,
            6..=8 => self.rng.range(2, 8),
            _ => self.rng.range(8, 40), // past memcached's 24-token chunks
        };
        let keys: Vec<String> = (0..n).map(|_| self.key()).collect();
        let s = self.sep();
        let mut line = verb.to_string();
        if let Some(e) = exptime {
            line.push(' ');
            line.push_str(&e);
        }
        for k in &keys {
            line.push_str(s);
            line.push_str(k);
        }
        line.push_str(self.eol());
        let mut c = Cmd::text(&line);
        c.reads = keys;
        c
    }

    fn malformed(&mut self) -> Cmd {
        let key = self.key();
        match self.rng.below(15) {
            0 => {
                // a bad number in a storage command; its data line follows and
                // is read as a command
                let verb = *self
                    .rng
                    .pick(&["set", "add", "replace", "append", "prepend", "cas"]);
                let bad = self.bad_number();
                let pos = self.rng.below(if verb == "cas" { 4 } else { 3 });
                let mut toks = vec!["0".to_string(), "0".to_string(), "3".to_string()];
                if verb == "cas" {
                    toks.push("1".into());
                }
                toks[pos as usize] = bad;
                let nr = self.noreply();
                Cmd::text(&format!("{verb} {key} {}{nr}\r\nABC\r\n", toks.join(" ")))
            }
            1 => {
                // negative length
                let n = self.rng.range(1, 100);
                Cmd::text(&format!("set {key} 0 0 -{n}\r\nABC\r\n"))
            }
            2 => {
                // too-long key in a storage or other non-retrieval command
                let k = self.long_key();
                let c = match self.rng.below(6) {
                    0 => format!("set {k} 0 0 3\r\nABC\r\n"),
                    1 => format!("cas {k} 0 0 3 1\r\nABC\r\n"),
                    2 => format!("delete {k}\r\n"),
                    3 => format!("incr {k} 1\r\n"),
                    4 => format!("touch {k} 0\r\n"),
                    _ => format!("append {k} 0 0 1 noreply\r\nA\r\n"),
                };
                Cmd::text(&c)
            }
            3 => {
                // too-long key in a retrieval: must open its batch
                let k = self.long_key();
                let k2 = self.key();
                let verb = *self.rng.pick(&["get", "gets", "gat 0", "gats 100"]);
                let line = if self.rng.chance(50) {
                    format!("{verb} {k2} {k}\r\n")
                } else {
                    format!("{verb} {k}\r\n")
                };
                let mut c = Cmd::text(&line);
                c.opens_batch = true;
                c.reads = vec![k2];
                c
            }
            4 => {
                let u = *self.rng.pick(&[
                    "foo",
                    "GET k1",
                    "Set k1 0 0 1",
                    "sett k1",
                    "gett k1",
                    "delet k1",
                    "incrr k1 1",
                    "x",
                    "ZZZ",
                    "",
                    "   ",
                    "quit_not",
                    "version2",
                    "stat",
                    "flush",
                    "VERSION",
                    "12345",
                ]);
                Cmd::text(&format!("{u}\r\n"))
            }
            5 => {
                // wrong token counts
                let c = *self.rng.pick(&[
                    "set k1 0 0",
                    "set k1 0 0 1 noreply extra",
                    "set k1 0 0 1 2 3",
                    "add k1",
                    "cas k1 0 0 1",
                    "cas k1 0 0 1 1 noreply extra",
                    "get",
                    "gets",
                    "gat",
                    "gats",
                    "gat 0",
                    "incr k1",
                    "incr k1 1 noreply extra",
                    "decr",
                    "touch k1",
                    "touch k1 1 noreply extra",
                    "delete",
                    "delete k1 0 noreply extra",
                    "verbosity",
                    "verbosity 1 2 3",
                    "cache_memlimit",
                    "cache_memlimit 64 noreply extra",
                    "flush_all 0 noreply extra",
                    "append k1 0 0",
                ]);
                let mut cmd = Cmd::text(&format!("{c}\r\n"));
                if c.starts_with("incr") || c.starts_with("decr") {
                    cmd.arith = Some("k1".into());
                }
                cmd
            }
            6 | 7 => {
                // bad data chunk: exactly len+2 bytes not ending in CRLF,
                // then a tail that completes a line
                let verb = *self
                    .rng
                    .pick(&["set", "add", "replace", "append", "prepend", "set"]);
                let len = self.rng.range(1, 20) as usize;
                let mut block: Vec<u8> = self.value_of_len(len + 2);
                block.truncate(len + 2);
                while block.len() < len + 2 {
                    block.push(b'Q');
                }
                if block.ends_with(b"\r\n") {
                    let n = block.len();
                    block[n - 1] = b'Q';
                }
                if self.rng.chance(30) && len >= 2 {
                    // CRLF too early: "ab\r\nQQ"
                    block[len - 2] = b'\r';
                    block[len - 1] = b'\n';
                    block[len] = b'Q';
                    block[len + 1] = b'Q';
                }
                let tails: [&[u8]; 4] = [b"\n", b"\r\n", b"ZZ\r\n", b"99\r\n"];
                let tail: &[u8] = self.rng.pick::<&[u8]>(&tails);
                let nr = self.noreply();
                let mut b = format!("{verb} {key} 0 0 {len}{nr}\r\n").into_bytes();
                b.extend_from_slice(&block);
                b.extend_from_slice(tail);
                Cmd::new(b)
            }
            8 => {
                // bad deltas and exptimes
                let bad = self.bad_number();
                let c = match self.rng.below(5) {
                    0 => format!("incr {key} {bad}\r\n"),
                    1 => format!("decr {key} {bad}\r\n"),
                    2 => format!("touch {key} {bad}\r\n"),
                    3 => format!("gat {bad} {key}\r\n"),
                    _ => format!("flush_all {bad}\r\n"),
                };
                let mut cmd = Cmd::text(&c);
                if c.starts_with("incr") || c.starts_with("decr") {
                    cmd.arith = Some(key.clone());
                }
                if c.starts_with("gat") {
                    cmd.reads = vec![key];
                }
                cmd
            }
            9 => {
                // delete with a time argument
                let t = *self.rng.pick(&["1", "x", "0 1", "-1", "noreply 0"]);
                Cmd::text(&format!("delete {key} {t}\r\n"))
            }
            10 => {
                let c = *self.rng.pick(&[
                    "cache_memlimit 0",
                    "cache_memlimit 7",
                    "cache_memlimit x",
                    "cache_memlimit -1",
                    "verbosity x",
                    "verbosity 1 noreply extra",
                ]);
                Cmd::text(&format!("{c}\r\n"))
            }
            11 => {
                // a long garbage line (below 2 KiB, so it arrives whole)
                let n = self.rng.range(300, 1800) as usize;
                let mut b: Vec<u8> = (0..n).map(|i| b"QWERTY0123 "[i % 11]).collect();
                b.extend_from_slice(b"\r\n");
                Cmd::new(b)
            }
            12 => {
                // binary junk that is not a command
                let n = self.rng.range(1, 40) as usize;
                let mut b: Vec<u8> = (0..n)
                    .map(|_| {
                        let c = self.rng.below(256) as u8;
                        if c == b'\n' || c == 0 {
                            b'#'
                        } else {
                            c
                        }
                    })
                    .collect();
                b[0] |= 0x80;
                b.extend_from_slice(b"\r\n");
                Cmd::new(b)
            }
            13 if self.quirks => {
                // memcached's 32-bit truncations and C-string command lines
                let c = *self.rng.pick(&[
                    "set q 4294967296 0 1\r\nA\r\n",
                    "set q 0 4294967296 1\r\nA\r\n",
                    "set q 0 0 4294967296\r\n\r\n",
                    "set q 0 3000000000 1\r\nA\r\n",
                    "touch q 4294967297\r\n",
                    "get q\0junk\r\n",
                ]);
                Cmd::text(c)
            }
            _ => {
                // an empty key position / blank-only variants
                let c = *self
                    .rng
                    .pick(&["get  \r\n", "delete  \r\n", "incr  1\r\n", " \r\n"]);
                Cmd::text(c)
            }
        }
    }

    fn bad_number(&mut self) -> String {
        let mut opts = vec![
            "x",
            "-",
            "1x",
            "1.5",
            "",
            "99999999999999999999",
            "0x10",
            "--1",
            "1e3",
        ];
        if self.quirks {
            opts.extend(["4294967296", "18446744073709551615", "2147483648"]);
        }
        let s = *self.rng.pick(&opts);
        if s.is_empty() {
            "abc".to_string()
        } else {
            s.to_string()
        }
    }

    fn command(&mut self) -> Cmd {
        if self.rng.chance(self.malformed_pct) {
            self.malformed()
        } else {
            self.valid()
        }
    }
}

// ------------------------------------------------------------ one side

struct Side {
    name: &'static str,
    server: Server,
    conns: Vec<Option<Client>>,
    last_cas: HashMap<String, u64>,
    first_cas: HashMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Line(Vec<u8>),
    /// A VALUE header: the key, flags and length tokens, and the cas.
    Value {
        head: Vec<u8>,
        key: Vec<u8>,
        cas: Option<u64>,
    },
    Data(Vec<u8>),
    Closed,
}

impl Item {
    fn show(&self) -> String {
        match self {
            Item::Line(l) => esc(l, 200),
            Item::Value { head, cas, .. } => match cas {
                Some(c) => format!("{} <cas {c}>", esc(head, 200)),
                None => esc(head, 200),
            },
            Item::Data(d) => format!("  data: {}", esc(d, 100)),
            Item::Closed => "<connection closed>".into(),
        }
    }
}

impl Side {
    fn new(name: &'static str, server: Server) -> Side {
        let conns = (0..CONNS_PER_SIDE).map(|_| None).collect();
        Side {
            name,
            server,
            conns,
            last_cas: HashMap::new(),
            first_cas: HashMap::new(),
        }
    }

    fn conn(&mut self, i: usize) -> &mut Client {
        if self.conns[i].is_none() {
            let mut c = self.server.client();
            c.set_read_timeout(READ_TIMEOUT);
            self.conns[i] = Some(c);
        }
        self.conns[i].as_mut().unwrap()
    }

    fn render(&self, cmd: &Cmd) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &cmd.pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::Cas(r) => {
                    let v = match r {
                        CasRef::Last(k) => self.last_cas.get(k).copied().unwrap_or(1 << 61),
                        CasRef::First(k) => self.first_cas.get(k).copied().unwrap_or(1 << 61),
                        CasRef::Literal(v) => *v,
                    };
                    out.extend_from_slice(v.to_string().as_bytes());
                }
            }
        }
        out
    }

    fn read_segment(&mut self, conn: usize, until_close: bool) -> Result<Vec<Item>, String> {
        read_segment(self.conn(conn), until_close)
    }

    fn note_cas(&mut self, items: &[Item]) {
        for it in items {
            if let Item::Value {
                key, cas: Some(c), ..
            } = it
            {
                let k = String::from_utf8_lossy(key).into_owned();
                self.first_cas.entry(k.clone()).or_insert(*c);
                self.last_cas.insert(k, *c);
            }
        }
    }
}

/// Reads one answer segment: items up to a `VERSION` sentinel line (not
/// included), or up to EOF when `until_close`.
fn read_segment(c: &mut Client, until_close: bool) -> Result<Vec<Item>, String> {
    {
        let mut items = Vec::new();
        loop {
            let raw = match c.try_line_raw() {
                Ok(r) => r,
                Err(e) if until_close && e.kind() == std::io::ErrorKind::ConnectionReset => {
                    items.push(Item::Closed);
                    return Ok(items);
                }
                Err(e) => return Err(format!("read error: {e} after {items:?}")),
            };
            if raw.is_empty() {
                if until_close {
                    items.push(Item::Closed);
                    return Ok(items);
                }
                return Err(format!("connection closed unexpectedly after {:?}", items));
            }
            if !raw.ends_with(b"\r\n") {
                return Err(format!(
                    "line without CRLF: {:?} after {items:?}",
                    esc(&raw, 200)
                ));
            }
            let line = raw[..raw.len() - 2].to_vec();
            if line.starts_with(b"VERSION ") && !until_close {
                return Ok(items);
            }
            if line.starts_with(b"VALUE ") {
                let toks: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
                let len: Option<usize> = toks
                    .get(3)
                    .and_then(|t| std::str::from_utf8(t).ok()?.parse().ok());
                if let (4 | 5, Some(len)) = (toks.len(), len) {
                    let cas = if toks.len() == 5 {
                        match std::str::from_utf8(toks[4])
                            .ok()
                            .and_then(|t| t.parse::<u64>().ok())
                        {
                            Some(v) => Some(v),
                            None => return Err(format!("bad cas in {:?}", esc(&line, 300))),
                        }
                    } else {
                        None
                    };
                    let head = toks[..4].join(&b' ');
                    let key = toks[1].to_vec();
                    let data = c
                        .try_exact(len + 2)
                        .map_err(|e| format!("reading {len}+2 data bytes: {e}"))?;
                    if &data[len..] != b"\r\n" {
                        return Err(format!(
                            "data block of {:?} not followed by CRLF",
                            esc(&line, 300)
                        ));
                    }
                    items.push(Item::Value { head, key, cas });
                    items.push(Item::Data(data[..len].to_vec()));
                    continue;
                }
            }
            items.push(Item::Line(line));
        }
    }
}

// ------------------------------------------------------------ comparison

fn compare(a: &[Item], b: &[Item], cas: &mut CasBijection<u64>) -> Result<(), String> {
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (
                Some(Item::Value {
                    head: h1, cas: c1, ..
                }),
                Some(Item::Value {
                    head: h2, cas: c2, ..
                }),
            ) => {
                if h1 != h2 {
                    return Err(format!("item {i} differs"));
                }
                match (c1, c2) {
                    (Some(x), Some(y)) => {
                        cas.check(x, y).map_err(|e| format!("item {i}: {e}"))?;
                    }
                    (None, None) => {}
                    _ => return Err(format!("item {i}: cas present on one side only")),
                }
            }
            (Some(x), Some(y)) if x == y => {}
            (Some(_), Some(_)) => return Err(format!("item {i} differs")),
            _ => {
                return Err(format!(
                    "answer lengths differ ({} vs {} items)",
                    a.len(),
                    b.len()
                ))
            }
        }
    }
    Ok(())
}

fn show_items(items: &[Item]) -> String {
    if items.is_empty() {
        return "    (nothing)\n".into();
    }
    let mut s = String::new();
    for it in items.iter().take(40) {
        let _ = writeln!(s, "    {}", it.show());
    }
    if items.len() > 40 {
        let _ = writeln!(s, "    ... {} more items", items.len() - 40);
    }
    s
}

// ------------------------------------------------------------ the run

struct Config {
    name: &'static str,
    flags: &'static [&'static str],
    seed: u64,
    commands: usize,
    allow_flush: bool,
}

struct Outcome {
    commands: usize,
    batches: usize,
    answers: HashMap<String, usize>,
}

/// Classifies answer lines for the coverage check.
fn classify(items: &[Item], counts: &mut HashMap<String, usize>) {
    for it in items {
        let k = match it {
            Item::Value { cas: Some(_), .. } => "VALUE+cas".to_string(),
            Item::Value { .. } => "VALUE".to_string(),
            Item::Line(l) => {
                let s = String::from_utf8_lossy(l);
                if s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty() {
                    "<number>".to_string()
                } else if s.starts_with("CLIENT_ERROR")
                    || s.starts_with("SERVER_ERROR")
                    || s.starts_with("ERROR")
                {
                    s.into_owned()
                } else {
                    s.split(' ').next().unwrap_or("").to_string()
                }
            }
            Item::Data(_) => continue,
            Item::Closed => "<closed>".to_string(),
        };
        *counts.entry(k).or_default() += 1;
    }
}

fn run(cfg: &Config) -> Outcome {
    let quirks = std::env::var("DIFF_QUIRKS")
        .map(|v| v == "1")
        .unwrap_or(false);
    // When the tests are validated memcached-against-memcached, the target
    // gets the same determinism flags as the reference.
    let (reference, target) = start_pair(cfg.flags, REF_ONLY_FLAGS, &[]);
    eprintln!(
        "[differential {}] seed {} ({:#x}), {} commands; reference {} {:?}; target {} {:?}",
        cfg.name,
        cfg.seed,
        cfg.seed,
        cfg.commands,
        reference.name(),
        reference.args(),
        target.name(),
        target.args()
    );
    let mut sides = [
        Side::new("reference", reference),
        Side::new("target", target),
    ];
    let mut gen = Gen::new(cfg.seed, quirks, cfg.allow_flush);
    let mut cas = CasBijection::default();
    let mut history: VecDeque<(usize, String, String)> = VecDeque::new(); // (index, command, answer)
    let mut recent_reads: [HashSet<String>; 2] = [HashSet::new(), HashSet::new()];
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut done = 0usize;
    let mut batches = 0usize;
    let started = Instant::now();
    let mut raw_trace = std::env::var_os("DIFF_TRACE").map(|p| {
        let mut p = std::path::PathBuf::from(p);
        p.set_extension(format!("{}.raw", cfg.name));
        std::fs::File::create(&p).expect("DIFF_TRACE raw file")
    });
    // DIFF_KEEP_GOING=N: collect up to N mismatches instead of stopping at
    // the first (later ones may be consequences of earlier ones)
    let keep_going = common::seed_from_env("DIFF_KEEP_GOING", 0) as usize;
    let mut mismatches: Vec<String> = Vec::new();
    let check_every = if std::env::var("DIFF_CHECK_STATE")
        .map(|v| v == "1")
        .unwrap_or(false)
    {
        1
    } else {
        50
    };
    // DIFF_TRACE=FILE: every command and the reference's answers, for digging
    let mut trace = std::env::var_os("DIFF_TRACE").map(|p| {
        use std::io::Write as _;
        struct W(std::fs::File);
        impl std::fmt::Write for W {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                self.0.write_all(s.as_bytes()).map_err(|_| std::fmt::Error)
            }
        }
        let mut p = std::path::PathBuf::from(p);
        p.set_extension(format!("{}.txt", cfg.name));
        W(std::fs::File::create(&p).expect("DIFF_TRACE file"))
    });

    while done < cfg.commands {
        // ---- build a batch that respects the determinism rules
        let size = match gen.rng.below(10) {
            0..=2 => 1,
            3..=7 => gen.rng.range(2, 8),
            _ => gen.rng.range(8, 24),
        } as usize;
        recent_reads.rotate_left(1);
        recent_reads[1].clear();
        let mut batch: Vec<Cmd> = Vec::new();
        let mut tries = 0;
        while batch.len() < size && tries < size * 10 {
            tries += 1;
            let cmd = gen.command();
            if cmd.opens_batch && !batch.is_empty() {
                continue;
            }
            if let Some(k) = &cmd.arith {
                if recent_reads[0].contains(k) || recent_reads[1].contains(k) {
                    continue;
                }
            }
            recent_reads[1].extend(cmd.reads.iter().cloned());
            batch.push(cmd);
        }
        // now and then, end a batch with quit
        let quit = gen.rng.chance(1);
        if quit {
            let mut q = Cmd::text("quit\r\n");
            q.quit = true;
            batch.push(q);
        }
        let per_command = gen.rng.chance(50);
        let conn = gen.rng.below(CONNS_PER_SIDE as u64) as usize;
        batches += 1;

        // ---- send to both, read both
        let mut answers: [Vec<Vec<Item>>; 2] = [vec![], vec![]];
        let mut raw_sent: Vec<u8> = Vec::new();
        for (si, side) in sides.iter_mut().enumerate() {
            let mut bytes = Vec::new();
            for (i, cmd) in batch.iter().enumerate() {
                bytes.extend_from_slice(&side.render(cmd));
                let last = i + 1 == batch.len();
                if !cmd.quit && (per_command || last) {
                    bytes.extend_from_slice(b"version\r\n");
                }
            }
            if si == 0 {
                raw_sent = bytes.clone();
                if let Some(t) = raw_trace.as_mut() {
                    use std::io::Write as _;
                    let _ = writeln!(
                        t,
                        "BATCH {conn} {} {} {}",
                        per_command as u8,
                        quit as u8,
                        bytes.len()
                    );
                    let _ = t.write_all(&bytes);
                    let _ = t.write_all(b"\n");
                }
            }
            if let Err(e) = side.conn(conn).try_send(&bytes) {
                let at = At {
                    batch_start: done,
                    in_batch: None,
                    batch: &batch,
                    per_command,
                    raw: &raw_sent,
                };
                fail(
                    cfg,
                    at,
                    &history,
                    &format!("{}: write failed: {e}", side.name),
                    &[],
                    &[],
                );
            }
            let segments = if per_command { batch.len() } else { 1 };
            for s in 0..segments {
                let until_close = if per_command { batch[s].quit } else { quit };
                match side.read_segment(conn, until_close) {
                    Ok(items) => answers[si].push(items),
                    Err(e) => {
                        let msg = format!(
                            "{} ({}) failed to answer: {e}\n    server log tail:\n{}",
                            side.name,
                            side.server.name(),
                            side.server.log_tail(20)
                        );
                        let (a, b) = if si == 0 {
                            (answers[0].concat(), vec![])
                        } else {
                            (
                                answers[0][..answers[0].len().min(s + 1)].concat(),
                                answers[1].concat(),
                            )
                        };
                        let in_batch = if per_command { Some(s) } else { None };
                        let at = At {
                            batch_start: done,
                            in_batch,
                            batch: &batch,
                            per_command,
                            raw: &raw_sent,
                        };
                        fail(cfg, at, &history, &msg, &a, &b);
                    }
                }
            }
            if quit {
                side.conns[conn] = None;
            }
        }

        // ---- compare
        for (s, (a, b)) in answers[0].iter().zip(answers[1].iter()).enumerate() {
            if let Err(why) = compare(a, b, &mut cas) {
                let in_batch = if per_command { Some(s) } else { None };
                let at = At {
                    batch_start: done,
                    in_batch,
                    batch: &batch,
                    per_command,
                    raw: &raw_sent,
                };
                if keep_going == 0 {
                    fail(cfg, at, &history, &why, a, b);
                }
                mismatches.push(describe(cfg, at, None, &why, a, b));
            }
            classify(a, &mut counts);
        }
        for (si, side) in sides.iter_mut().enumerate() {
            for seg in &answers[si] {
                side.note_cas(seg);
            }
        }
        for (i, cmd) in batch.iter().enumerate() {
            let ans = if per_command {
                answers[0][i]
                    .iter()
                    .map(|x| x.show())
                    .collect::<Vec<_>>()
                    .join(" | ")
            } else if i + 1 == batch.len() {
                format!(
                    "(batch) {}",
                    answers[0][0]
                        .iter()
                        .map(|x| x.show())
                        .collect::<Vec<_>>()
                        .join(" | ")
                )
            } else {
                "(see end of batch)".into()
            };
            if let Some(t) = trace.as_mut() {
                let _ = writeln!(
                    t,
                    "#{} [conn {conn}] {}\n    -> {}",
                    done + i,
                    cmd.display(),
                    ans
                );
            }
            history.push_back((done + i, cmd.display(), ans));
            if history.len() > 12 {
                history.pop_front();
            }
        }
        done += batch.len();
        if keep_going > 0 && mismatches.len() >= keep_going {
            break;
        }

        // ---- every so often (every batch with DIFF_CHECK_STATE=1), compare
        // the whole key space, to catch silent divergence (noreply) early
        if batches.is_multiple_of(check_every) {
            let line = format!("get {}\r\nversion\r\n", gen.keys.join(" "));
            if let Some(t) = raw_trace.as_mut() {
                use std::io::Write as _;
                let _ = write!(t, "BATCH 0 0 0 {}\n{line}\n", line.len());
            }
            let mut got = vec![];
            for side in sides.iter_mut() {
                side.conn(0).send(line.as_bytes());
                match side.read_segment(0, false) {
                    Ok(items) => got.push(items),
                    Err(e) => panic!(
                        "{}: state check after command #{}: {e}",
                        side.name,
                        done - 1
                    ),
                }
            }
            if let Err(why) = compare(&got[0], &got[1], &mut cas) {
                let at = At {
                    batch_start: done - batch.len(),
                    in_batch: None,
                    batch: &batch,
                    per_command,
                    raw: &raw_sent,
                };
                let why = format!("state check (get of every key) after this batch: {why}");
                if keep_going == 0 {
                    fail(cfg, at, &history, &why, &got[0], &got[1]);
                }
                mismatches.push(describe(cfg, at, None, &why, &got[0], &got[1]));
            }
            recent_reads[1].extend(gen.keys.iter().cloned());
        }
    }

    if !mismatches.is_empty() {
        panic!(
            "[differential {}] {} mismatch(es) in {} commands (DIFF_KEEP_GOING; later ones may follow from earlier ones):\n{}",
            cfg.name,
            mismatches.len(),
            done,
            mismatches.join("\n")
        );
    }

    // ---- final state: every key, both ways
    let mut all_keys = gen.keys.clone();
    all_keys.sort();
    for verb in ["get", "gets"] {
        let line = format!("{verb} {}\r\nversion\r\n", all_keys.join(" "));
        let mut got = vec![];
        for side in sides.iter_mut() {
            side.conn(0).send(line.as_bytes());
            got.push(
                side.read_segment(0, false)
                    .unwrap_or_else(|e| panic!("{}: final {verb}: {e}", side.name)),
            );
        }
        if let Err(why) = compare(&got[0], &got[1], &mut cas) {
            panic!(
                "[differential {}] seed {}: final {verb} of all keys differs: {why}\n  reference:\n{}  target:\n{}",
                cfg.name,
                cfg.seed,
                show_items(&got[0]),
                show_items(&got[1])
            );
        }
        classify(&got[0], &mut counts);
    }
    // the reference must not have evicted anything (else the run proves little)
    let st = sides[0].server.stats("");
    assert_eq!(
        st.get("evictions").map(String::as_str),
        Some("0"),
        "the reference memcached evicted items: the differential run is not deterministic; raise -m"
    );
    for side in sides.iter_mut() {
        side.server.assert_running();
    }
    eprintln!(
        "[differential {}] {} commands in {} batches, {:.1} s, {} cas pairs; answers: {:?}",
        cfg.name,
        done,
        batches,
        started.elapsed().as_secs_f64(),
        cas.len(),
        {
            let mut v: Vec<_> = counts.iter().collect();
            v.sort();
            v
        }
    );
    Outcome {
        commands: done,
        batches,
        answers: counts,
    }
}

/// Where a failure happened: the batch (its first command's global index)
/// and, when known, the command inside it.
#[derive(Clone, Copy)]
struct At<'a> {
    batch_start: usize,
    in_batch: Option<usize>,
    batch: &'a [Cmd],
    per_command: bool,
    raw: &'a [u8],
}

fn fail(
    cfg: &Config,
    at: At,
    history: &VecDeque<(usize, String, String)>,
    why: &str,
    reference: &[Item],
    target: &[Item],
) -> ! {
    panic!(
        "{}",
        describe(cfg, at, Some(history), why, reference, target)
    );
}

/// A mismatch report; without `history`, the short form (keep-going mode).
fn describe(
    cfg: &Config,
    at: At,
    history: Option<&VecDeque<(usize, String, String)>>,
    why: &str,
    reference: &[Item],
    target: &[Item],
) -> String {
    let mut s = String::new();
    let idx = at.batch_start + at.in_batch.unwrap_or(0);
    let _ = writeln!(
        s,
        "\n[differential {}] MISMATCH  seed={} (DIFF_SEED={} reproduces this run), flags {:?}",
        cfg.name, cfg.seed, cfg.seed, cfg.flags
    );
    match at.in_batch {
        Some(i) => {
            let _ = writeln!(
                s,
                "  at command #{idx}: {}\n  problem: {why}",
                at.batch[i].display()
            );
        }
        None => {
            let _ = writeln!(
                s,
                "  in the batch starting at command #{idx}\n  problem: {why}"
            );
        }
    }
    let _ = writeln!(
        s,
        "  the batch ({} command(s) in one write, {}):",
        at.batch.len(),
        if at.per_command {
            "a version sentinel after each"
        } else {
            "one version sentinel at the end"
        }
    );
    for (i, c) in at.batch.iter().enumerate() {
        let mark = if at.in_batch == Some(i) { ">>" } else { "  " };
        let _ = writeln!(s, "  {mark} #{}: {}", at.batch_start + i, c.display());
    }
    let scope = if at.in_batch.is_some() && at.per_command {
        "this command"
    } else {
        "this batch"
    };
    let _ = writeln!(
        s,
        "  reference (memcached) answered to {scope}:\n{}",
        show_items(reference)
    );
    let _ = writeln!(s, "  target answered to {scope}:\n{}", show_items(target));
    if let Some(history) = history {
        let _ = writeln!(s, "  preceding commands, with the reference's answers:");
        for (i, c, a) in history.iter() {
            let _ = writeln!(s, "     #{i}: {c}\n           -> {a}");
        }
        let _ = writeln!(
            s,
            "  raw bytes of the batch as sent to the reference: \"{}\"",
            esc(at.raw, 3000)
        );
    }
    s
}

fn check_coverage(name: &str, out: &Outcome, min_commands: usize, required: &[&str]) {
    assert!(
        out.commands >= min_commands,
        "{name}: only {} commands compared",
        out.commands
    );
    assert!(
        out.batches >= min_commands / 20,
        "{name}: only {} batches",
        out.batches
    );
    let missing: Vec<&&str> = required
        .iter()
        .filter(|k| out.answers.get(**k).copied().unwrap_or(0) == 0)
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: the stream never produced {missing:?}; answers seen: {:?}",
        out.answers
    );
}

// ------------------------------------------------------------ tests

#[test]
fn differential_random_stream() {
    let cfg = Config {
        name: "t4-m64",
        flags: &["-t", "4", "-m", "64"],
        seed: common::seed_from_env("DIFF_SEED", 20_240_601),
        commands: common::seed_from_env("DIFF_COMMANDS", 40_000) as usize,
        allow_flush: true,
    };
    let out = run(&cfg);
    check_coverage(
        cfg.name,
        &out,
        20_000.min(cfg.commands),
        &[
            "STORED",
            "NOT_STORED",
            "EXISTS",
            "NOT_FOUND",
            "DELETED",
            "TOUCHED",
            "OK",
            "END",
            "ERROR",
            "VALUE",
            "VALUE+cas",
            "<number>",
            "<closed>",
            "CLIENT_ERROR bad data chunk",
            "CLIENT_ERROR bad command line format",
            "CLIENT_ERROR invalid numeric delta argument",
            "CLIENT_ERROR cannot increment or decrement non-numeric value",
            "CLIENT_ERROR invalid exptime argument",
            "SERVER_ERROR object too large for cache",
            "ERROR: shutdown not enabled",
        ],
    );
}

#[test]
fn differential_random_stream_single_thread_no_cas() {
    // -C: gets shows cas 0 and cas commands behave differently; no flush_all
    // here (with -C, memcached's flush_all has 1-second granularity, so a
    // store right after it may or may not survive)
    let cfg = Config {
        name: "t1-C",
        flags: &["-t", "1", "-m", "64", "-C"],
        seed: common::seed_from_env("DIFF_SEED", 7_777) ^ 0x55,
        commands: (common::seed_from_env("DIFF_COMMANDS", 40_000) as usize / 4).max(1),
        allow_flush: false,
    };
    let out = run(&cfg);
    check_coverage(
        cfg.name,
        &out,
        5_000.min(cfg.commands),
        &["STORED", "VALUE+cas", "EXISTS", "ERROR"],
    );
}

/// Fixed malformed sequences, each followed by valid commands on the same
/// connection: both servers must answer the same, and the valid commands
/// must work.
#[test]
fn malformed_sequences_leave_the_connection_usable() {
    let reference = Server::start_memcached(&["-t", "2"]);
    let target = Server::start(&["-t", "2"]);
    let k300 = "q".repeat(300);
    let big = "B".repeat(2_000_000);
    let seqs: Vec<Vec<u8>> = vec![
        b"set k 0 0 5\r\nhelloo\r\n".to_vec(),
        b"set k 0 0 5\r\nhel\r\nXY\r\n".to_vec(),
        b"set k 0 0 5 noreply\r\nhelloooo\r\n".to_vec(),
        b"set k 0 0 -1\r\nABC\r\n".to_vec(),
        b"set k abc 0 1\r\nA\r\n".to_vec(),
        b"cas k 0 0 1 abc\r\nA\r\n".to_vec(),
        format!("set {k300} 0 0 1\r\nA\r\n").into_bytes(),
        format!("get {k300}\r\n").into_bytes(),
        format!("get a {k300} b\r\n").into_bytes(),
        b"incr k abc\r\ndecr k -1\r\n".to_vec(),
        b"\r\n\r\n\n   \r\n".to_vec(),
        b"GARBAGE\x01\x02\x7f\xff\r\n".to_vec(),
        [b"Z".repeat(1900), b"\r\n".to_vec()].concat(),
        format!("set k 0 0 2000000\r\n{big}\r\n").into_bytes(),
        format!("set k 0 0 2000000 noreply\r\n{big}\r\n").into_bytes(),
        b"set k 0 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26\r\nA\r\n"
            .to_vec(),
        b"delete k 0 0 0\r\ntouch k x\r\ngat x k\r\nflush_all x\r\n".to_vec(),
        b"verbosity\r\ncache_memlimit\r\nshutdown\r\n".to_vec(),
        b"get\r\ngets\r\ngat\r\ngats 0\r\n".to_vec(),
    ];
    let valid = b"set ok 0 0 2\r\nok\r\nget ok\r\nversion\r\n";
    let mut compared = 0;
    let mut failures: Vec<String> = Vec::new();
    for (i, seq) in seqs.iter().enumerate() {
        let mut got = vec![];
        for server in [&reference, &target] {
            let mut c = server.client();
            c.set_read_timeout(READ_TIMEOUT);
            let mut bytes = seq.clone();
            bytes.extend_from_slice(b"version\r\n");
            bytes.extend_from_slice(valid);
            c.send(&bytes);
            let a = read_segment(&mut c, false);
            let b = read_segment(&mut c, false);
            got.push((a, b, server.name().to_string()));
        }
        let (ra, rb, _) = &got[0];
        let (ta, tb, tname) = &got[1];
        let ra = ra
            .as_ref()
            .unwrap_or_else(|e| panic!("reference on sequence {i}: {e}"));
        let rb = rb
            .as_ref()
            .unwrap_or_else(|e| panic!("reference on sequence {i}: {e}"));
        let ta = ta
            .as_ref()
            .unwrap_or_else(|e| panic!("{tname} on sequence {i} {:?}: {e}", esc(seq, 200)));
        let tb = tb
            .as_ref()
            .unwrap_or_else(|e| panic!("{tname} on sequence {i} {:?}: {e}", esc(seq, 200)));
        let mut cas = CasBijection::default();
        if let Err(why) = compare(ra, ta, &mut cas) {
            failures.push(format!(
                "sequence {i} \"{}\": {why}\n  reference:\n{}  target:\n{}",
                esc(seq, 300),
                show_items(ra),
                show_items(ta)
            ));
        }
        let want = vec![
            Item::Line(b"STORED".to_vec()),
            Item::Value {
                head: b"VALUE ok 0 2".to_vec(),
                key: b"ok".to_vec(),
                cas: None,
            },
            Item::Data(b"ok".to_vec()),
            Item::Line(b"END".to_vec()),
        ];
        assert_eq!(rb, &want, "reference: valid commands after sequence {i}");
        if tb != &want {
            failures.push(format!(
                "sequence {i} \"{}\": the valid commands after it failed on {tname}:\n{}",
                esc(seq, 300),
                show_items(tb)
            ));
        }
        compared += 1;
    }
    assert_eq!(compared, seqs.len());
    assert!(
        failures.is_empty(),
        "{} of {} sequences differ:\n{}",
        failures.len(),
        seqs.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------ -vv log

/// A binary request: header (opaque 0, CAS 0), extras, key, value.
fn bin_request(op: u8, key: &[u8], extras: &[u8], value: &[u8]) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut p = vec![0x80, op];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    p.extend_from_slice(&(body as u32).to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

/// The `-vv` lines from the one that logs `marker` on, comparable across
/// servers: connection numbers (memcached's fd, wasmcached's `stats conns`
/// id) become `N`, the CAS rows of binary response dumps `CAS`, the version
/// string goes; `connection closed.` lines are left out (the harness's own
/// start-up connection may close at any time).
fn vv_lines(log: &str, marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut started = false;
    // Rows of a response header dump still to come.
    let mut dump_rows = 0;
    for line in log.lines() {
        let digits = |s: &str| s.chars().take_while(|c| c.is_ascii_digit()).count();
        let norm = match line.chars().next() {
            Some(d @ ('<' | '>')) if digits(&line[1..]) > 0 => {
                format!("{d}N{}", &line[1 + digits(&line[1..])..])
            }
            Some(c) if c.is_ascii_digit() && line[digits(line)..].starts_with(':') => {
                format!("N{}", &line[digits(line)..])
            }
            _ => line.to_string(),
        };
        if !started {
            started = norm == format!("<N {marker}");
            if !started {
                continue;
            }
        }
        if norm.ends_with(" connection closed.") {
            continue;
        }
        let norm = if dump_rows > 0 {
            dump_rows -= 1;
            if dump_rows < 2 {
                ">N   CAS".to_string()
            } else {
                norm
            }
        } else if norm.starts_with(">N VERSION ") {
            ">N VERSION".to_string()
        } else {
            norm
        };
        if norm == ">N Writing bin response:" {
            dump_rows = 6;
        }
        out.push(norm);
    }
    out
}

/// `-vv` logs what memcached 1.6.18 logs (issue 16): the same text, meta and
/// binary commands, one at a time and pipelined, go to Debian's memcached
/// and to wasmcached, both started with `-vv`, and the two logs must have
/// the same lines (see [`vv_lines`] for what is normalised). Not sent: a
/// `cas` with a wrong CAS, for which memcached's item store logs `CAS:
/// failure: expected …` (here the store is the plugin, which logs nothing
/// of the kind), and a binary `version` (its answer's length differs).
#[test]
fn vv_log_matches_memcached() {
    let reference = Server::start_memcached(&["-vv", "-t", "2"]);
    let target = Server::start(&["-vv", "-t", "2"]);
    let long_get = format!("get {}\r\n", "k".repeat(251));
    let big_set = format!("set big 0 0 2000000\r\n{}\r\n", "B".repeat(2_000_000));
    let text: Vec<Vec<u8>> = [
        "get vv:start\r\n",
        "set a 0 0 3\r\nabc\r\n",
        "get a\r\n",
        "get a nokey a\r\n",
        "gets a\r\n",
        "add a 0 0 1\r\nx\r\n",
        "replace nokey 0 0 1\r\nx\r\n",
        "append a 0 0 1\r\nx\r\n",
        "prepend a 0 0 1\r\nx\r\n",
        "cas nokey 0 0 1 1\r\nx\r\n",
        "set n 0 0 1\r\n5\r\n",
        "incr n 3\r\n",
        "decr n 100\r\n",
        "incr nokey 1\r\n",
        "incr a 1\r\n",
        "touch a 100\r\n",
        "touch nokey 100\r\n",
        "gat 100 a nokey\r\n",
        "gats 100 a\r\n",
        "delete a\r\n",
        "delete a\r\n",
        "set q 0 0 1 noreply\r\nx\r\n",
        "touch q 100 noreply\r\n",
        "incr n 1 noreply\r\n",
        "delete q noreply\r\n",
        "flush_all\r\n",
        "flush_all noreply\r\n",
        "flush_all bad noreply\r\n",
        "version\r\n",
        "verbosity 2\r\n",
        "verbosity 5 noreply\r\n",
        "stats\r\n",
        "stats settings\r\n",
        "stats items\r\n",
        "stats slabs\r\n",
        "stats reset\r\n",
        "stats bogus\r\n",
        "bogus\r\n",
        "get\r\n",
        "\r\n",
        "set a 0 0 bad\r\n",
        "set a 0 0 bad noreply\r\n",
        "set a 0 0 3\r\nabcd\r\n",
        "incr n abc\r\n",
        long_get.as_str(),
        big_set.as_str(),
        "ms m 3\r\nabc\r\n",
        "ms m 3 T0 F5 c\r\nabc\r\n",
        "mg m v\r\n",
        "mg m v k f t s\r\n",
        "mg nokey v\r\n",
        "mg nokey v q\r\n",
        "me m\r\n",
        "ma n\r\n",
        "ma n MD D2 v\r\n",
        "ma nokey\r\n",
        "md m\r\n",
        "md m q\r\n",
        "me m\r\n",
        "mg m badflag!\r\n",
        "ms m bad\r\n",
        "mg\r\n",
        // Pipelined: one write, answers from several shards and workers.
        "set p1 0 0 1\r\n1\r\nset p2 0 0 1 noreply\r\n2\r\nget p1 p2 p3\r\n\
         incr p1 5\r\ndelete p2 noreply\r\nmg p1 v\r\nget p2\r\nflush_all noreply\r\n\
         get p1\r\nverbosity 2 noreply\r\nset p3 0 0 1\r\n3\r\ngets p3 p1 p3\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let set_extras = [0, 0, 0, 5, 0, 0, 0, 0];
    let incr = |delta: u8, initial: u8| {
        let mut e = [0u8; 20];
        e[7] = delta;
        e[15] = initial;
        e
    };
    let touch = [0, 0, 0, 100];
    let binary: Vec<Vec<u8>> = vec![
        bin_request(0x00, b"nokey", &[], &[]),
        bin_request(0x01, b"foo", &set_extras, b"bar"),
        bin_request(0x00, b"foo", &[], &[]),
        bin_request(0x0c, b"foo", &[], &[]),
        [
            bin_request(0x09, b"nokey", &[], &[]),
            bin_request(0x0d, b"foo", &[], &[]),
        ]
        .concat(),
        bin_request(0x02, b"foo", &set_extras, b"x"),
        bin_request(0x03, b"foo", &set_extras, b"xy"),
        bin_request(0x0e, b"foo", &[], b"z"),
        bin_request(0x0f, b"foo", &[], b"a"),
        bin_request(0x05, b"n", &incr(2, 10), &[]),
        bin_request(0x05, b"n", &incr(2, 10), &[]),
        bin_request(0x06, b"n", &incr(1, 10), &[]),
        bin_request(0x05, b"foo", &incr(1, 0), &[]),
        bin_request(0x1c, b"foo", &touch, &[]),
        bin_request(0x1d, b"foo", &touch, &[]),
        bin_request(0x04, b"foo", &[], &[]),
        bin_request(0x04, b"foo", &[], &[]),
        bin_request(0x11, b"q", &set_extras, b"v"),
        bin_request(0x12, b"q", &set_extras, b"v"),
        bin_request(0x10, b"", &[], &[]),
        bin_request(0x10, b"bogus", &[], &[]),
        bin_request(0x55, b"", &[], &[]),
        bin_request(0x08, b"", &[], &[]),
        bin_request(0x18, b"", &[], &[]),
    ];
    let noop = bin_request(0x0a, b"", &[], &[]);
    let mut logs = Vec::new();
    for server in [&reference, &target] {
        let mut c = server.client();
        c.set_read_timeout(READ_TIMEOUT);
        for step in &text {
            // Each step ends with `mn`, whose MN says it was all answered.
            c.send(step);
            c.send(b"mn\r\n");
            while c.line() != "MN" {}
        }
        let mut b = server.client();
        b.set_read_timeout(READ_TIMEOUT);
        for step in &binary {
            b.send(step);
            b.send(&noop);
            loop {
                let h = b.exact(24);
                let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
                b.exact(body);
                if h[1] == 0x0a {
                    break;
                }
            }
        }
        // Every line was written before the answer that follows it.
        logs.push(vv_lines(&server.log(), "get vv:start"));
    }
    let (want, got) = (&logs[0], &logs[1]);
    assert!(
        want.len() > 400,
        "the reference logged too little:\n{}",
        want.join("\n")
    );
    if want != got {
        let at = want
            .iter()
            .zip(got.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(got.len()));
        let show = |v: &[String]| v[at.saturating_sub(8)..(at + 8).min(v.len())].join("\n");
        panic!(
            "-vv logs differ at line {at} (memcached {} lines, wasmcached {}):\n\
             --- memcached ---\n{}\n--- wasmcached ---\n{}",
            want.len(),
            got.len(),
            show(want),
            show(got)
        );
    }
}

// ------------------------------------------------------------ item listings
//
// `lru_crawler metadump` and `stats cachedump` (ABI v5 item iteration), and
// Debian's memcached-tool `keys` and `dump` on top of them, side by side
// with memcached holding the same items. The reference runs without its LRU
// maintainer: with it, items move between its HOT/WARM/COLD lists while the
// crawler walks them (it then misses some), and `stats cachedump` shows only
// the COLD list, which new items reach a few seconds later. Without it every
// item sits in one list, which is what this store's listing shows.

/// Debian's memcached-tool (package `memcached`).
const MEMCACHED_TOOL: &str = "/usr/share/memcached/scripts/memcached-tool";
const LISTING_REF_FLAGS: &[&str] = &["-o", "no_lru_maintainer"];

/// The raw lines of a listing, terminators included, up to and including
/// `END\r\n`, or the one line of an error answer.
fn listing(c: &mut Client, cmd: &str) -> Vec<Vec<u8>> {
    c.send(format!("{cmd}\r\n"));
    let mut lines = Vec::new();
    loop {
        let l = c
            .try_line_raw()
            .unwrap_or_else(|e| panic!("{cmd}: read failed ({e}) after {} lines", lines.len()));
        assert!(!l.is_empty(), "{cmd}: connection closed");
        let last = l == b"END\r\n"
            || !(l.starts_with(b"key=")
                || l.starts_with(b"ITEM ")
                || l.starts_with(b"SERVER_ERROR"))
            || (lines.is_empty() && l.starts_with(b"SERVER_ERROR"));
        lines.push(l);
        if last {
            return lines;
        }
    }
}

/// One `lru_crawler metadump` line, field by field.
#[derive(Clone, Debug)]
struct MetaLine {
    exp: i64,
    la: i64,
    cas: u64,
    fetch: String,
    cls: u32,
    size: u64,
}

/// Parses `key=K exp=E la=L cas=C fetch=F cls=N size=S\n` (exactly these
/// fields, in this order, a bare `\n` at the end as memcached writes it).
fn parse_meta(raw: &[u8]) -> (String, MetaLine) {
    let text = String::from_utf8_lossy(raw);
    assert!(
        raw.ends_with(b"\n") && !raw.ends_with(b"\r\n"),
        "metadump line not ended by a bare \\n: {text:?}"
    );
    let fields: Vec<(&str, &str)> = text
        .trim_end_matches('\n')
        .split(' ')
        .map(|f| {
            f.split_once('=')
                .unwrap_or_else(|| panic!("bad field in {text:?}"))
        })
        .collect();
    let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
    assert_eq!(
        names,
        ["key", "exp", "la", "cas", "fetch", "cls", "size"],
        "{text:?}"
    );
    let n = |i: usize| -> i64 {
        fields[i]
            .1
            .parse()
            .unwrap_or_else(|_| panic!("{}: not a number in {text:?}", fields[i].0))
    };
    (
        fields[0].1.to_string(),
        MetaLine {
            exp: n(1),
            la: n(2),
            cas: n(3) as u64,
            fetch: fields[4].1.to_string(),
            cls: n(5) as u32,
            size: n(6) as u64,
        },
    )
}

fn meta_map(lines: &[Vec<u8>], who: &str) -> HashMap<String, MetaLine> {
    let mut map = HashMap::new();
    let (end, items) = lines.split_last().expect("an answer");
    assert_eq!(end, b"END\r\n", "{who}: the listing ends with END");
    for l in items {
        let (k, m) = parse_meta(l);
        assert!(
            map.insert(k.clone(), m).is_none(),
            "{who}: {k} listed twice"
        );
    }
    map
}

/// Times in seconds may differ by this much between the two servers.
const SLACK: i64 = 2;

/// Compares two metadump answers field by field: the same keys, each with
/// the same fetch, cls and size; times within [`SLACK`] (`-1` exactly); CAS
/// values normalised (non-zero and unique on both sides, or 0 on both).
fn compare_metadump(reference: &[Vec<u8>], target: &[Vec<u8>], what: &str) -> usize {
    compare_metadump_la(reference, target, what, SLACK)
}

/// [`compare_metadump`] with last-access times allowed to differ by
/// `la_slack` seconds (after reads that move them on one server only).
fn compare_metadump_la(
    reference: &[Vec<u8>],
    target: &[Vec<u8>],
    what: &str,
    la_slack: i64,
) -> usize {
    let r = meta_map(reference, "memcached");
    let t = meta_map(target, "wasmcached");
    let mut rk: Vec<&String> = r.keys().collect();
    let mut tk: Vec<&String> = t.keys().collect();
    rk.sort();
    tk.sort();
    assert_eq!(tk, rk, "{what}: the keys listed");
    let close = |a: i64, b: i64| (a == -1) == (b == -1) && (a - b).abs() <= SLACK;
    for (k, rm) in &r {
        let tm = &t[k];
        assert!(close(rm.exp, tm.exp), "{what}: {k} exp {rm:?} vs {tm:?}");
        assert!(
            (rm.la == -1) == (tm.la == -1) && (rm.la - tm.la).abs() <= la_slack,
            "{what}: {k} la {rm:?} vs {tm:?}"
        );
        assert_eq!(
            (rm.cas == 0),
            (tm.cas == 0),
            "{what}: {k} cas {rm:?} vs {tm:?}"
        );
        assert_eq!(
            (&rm.fetch, rm.cls, rm.size),
            (&tm.fetch, tm.cls, tm.size),
            "{what}: {k}"
        );
    }
    for m in [&r, &t] {
        let mut cas: Vec<u64> = m.values().map(|v| v.cas).filter(|&c| c != 0).collect();
        let n = cas.len();
        cas.sort_unstable();
        cas.dedup();
        assert_eq!(cas.len(), n, "{what}: CAS values are unique");
    }
    r.len()
}

/// One `stats cachedump` line: (key, value bytes, exptime).
fn parse_cachedump(lines: &[Vec<u8>], who: &str) -> Vec<(String, u64, i64)> {
    let (end, items) = lines.split_last().expect("an answer");
    assert_eq!(end, b"END\r\n", "{who}: the dump ends with END");
    let mut out: Vec<(String, u64, i64)> = items
        .iter()
        .map(|l| {
            let text = String::from_utf8_lossy(l);
            let body = text
                .strip_prefix("ITEM ")
                .and_then(|t| t.strip_suffix(" s]\r\n"))
                .unwrap_or_else(|| panic!("{who}: bad cachedump line {text:?}"));
            let (key, rest) = body.split_once(" [").expect("ITEM key [");
            let (bytes, exp) = rest.split_once(" b; ").expect("N b; T s");
            (
                key.to_string(),
                bytes.parse().unwrap(),
                exp.parse().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn compare_cachedump(reference: &[Vec<u8>], target: &[Vec<u8>], what: &str) -> usize {
    let r = parse_cachedump(reference, "memcached");
    let t = parse_cachedump(target, "wasmcached");
    assert_eq!(
        t.iter().map(|i| (&i.0, i.1)).collect::<Vec<_>>(),
        r.iter().map(|i| (&i.0, i.1)).collect::<Vec<_>>(),
        "{what}"
    );
    for (ri, ti) in r.iter().zip(&t) {
        let ok = (ri.2 == 0) == (ti.2 == 0) && (ri.2 - ti.2).abs() <= SLACK;
        assert!(ok, "{what}: {} exptime {} vs {}", ri.0, ri.2, ti.2);
    }
    r.len()
}

/// Stores the same items on a server: every size class from 1 to 39 of
/// memcached's default classes (up to chunked items), flags, relative and
/// absolute exptimes, keys that need URL encoding, a binary key (meta `b`),
/// fetched and unfetched items. Returns the keys of the text protocol.
fn store_listing_items(c: &mut Client, far: i64) -> Vec<String> {
    let mut keys = Vec::new();
    let mut put = |c: &mut Client, key: &str, flags: u32, exp: i64, len: usize| {
        let v = vec![b'v'; len];
        assert_eq!(c.set(key, flags, exp, &v), "STORED", "{key}");
        keys.push(key.to_string());
    };
    put(c, "plain", 0, 0, 1);
    put(c, "flags", 0xdead_beef, 0, 3);
    put(c, "a%20b", 0, 1000, 5);
    put(c, "k/\u{fc}:~._-", 7, far, 1);
    put(c, "fetched", 0, 0, 2);
    let mut len = 10;
    let mut i = 0;
    while len < 700_000 {
        put(c, &format!("size{i}"), i, 0, len);
        len = len * 5 / 4 + 7;
        i += 1;
    }
    for i in 0..300u32 {
        put(
            c,
            &format!("key:{i}"),
            i % 3,
            if i % 2 == 0 { 0 } else { 3600 },
            (i as usize * 13) % 900,
        );
    }
    c.send(b"ms YmluAXg= 2 b\r\nhi\r\n");
    assert_eq!(c.line(), "HD");
    c.send(b"get fetched\r\n");
    assert_eq!(c.line(), "VALUE fetched 0 2");
    assert_eq!(c.line(), "vv");
    assert_eq!(c.line(), "END");
    keys
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// memcached-tool's output for `mode`, and what it said on stderr.
fn memcached_tool(server: &Server, mode: &str) -> Vec<u8> {
    assert!(
        std::path::Path::new(MEMCACHED_TOOL).is_file(),
        "{MEMCACHED_TOOL} not found: apt-get install -y memcached (or run ./scripts/test.sh)"
    );
    let out = std::process::Command::new("perl")
        .arg(MEMCACHED_TOOL)
        .arg(format!("127.0.0.1:{}", server.port()))
        .arg(mode)
        .output()
        .expect("running memcached-tool");
    assert!(
        out.status.success(),
        "memcached-tool {mode} on {}: {:?}\n{}",
        server.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `memcached-tool dump`'s `add KEY FLAGS EXPTIME LEN\r\nVALUE\r\n` records.
fn parse_tool_dump(mut out: &[u8]) -> Vec<(String, u32, i64, Vec<u8>)> {
    let mut recs = Vec::new();
    while !out.is_empty() {
        let nl = out.iter().position(|&b| b == b'\n').expect("a header line");
        let head = String::from_utf8_lossy(&out[..nl])
            .trim_end_matches('\r')
            .to_string();
        let f: Vec<&str> = head.split(' ').collect();
        assert_eq!((f.len(), f[0]), (5, "add"), "bad record header {head:?}");
        let len: usize = f[4].parse().unwrap();
        let value = out[nl + 1..nl + 1 + len].to_vec();
        assert_eq!(&out[nl + 1 + len..nl + 3 + len], b"\r\n", "{head}");
        recs.push((
            f[1].to_string(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            value,
        ));
        out = &out[nl + 3 + len..];
    }
    recs.sort();
    recs
}

fn listings_match_memcached(flags: &[&str]) {
    listings_match_memcached_with(flags, &[]);
}

/// [`listings_match_memcached`], wasmcached with `target_flags` too.
fn listings_match_memcached_with(flags: &[&str], target_flags: &[&str]) {
    let mut ref_flags = flags.to_vec();
    ref_flags.extend_from_slice(LISTING_REF_FLAGS);
    let reference = Server::start_memcached(&ref_flags);
    let target = Server::start(&[flags, target_flags].concat());
    let far = unix_now() + 100_000;
    let mut rc = reference.client();
    let mut tc = target.client();
    let keys = store_listing_items(&mut rc, far);
    assert_eq!(store_listing_items(&mut tc, far), keys);
    let stored = std::time::Instant::now();

    // metadump: all, hash, class lists; every item on both, field by field.
    let all = listing(&mut rc, "lru_crawler metadump all");
    let n = compare_metadump(&all, &listing(&mut tc, "lru_crawler metadump all"), "all");
    assert_eq!(n, keys.len() + 1, "every item, the binary key too");
    let classes: std::collections::BTreeSet<u32> = meta_map(&all, "memcached")
        .values()
        .map(|m| m.cls)
        .collect();
    assert!(classes.len() >= 30, "items in {} classes", classes.len());
    let h = listing(&mut tc, "lru_crawler metadump hash");
    compare_metadump(&listing(&mut rc, "lru_crawler metadump hash"), &h, "hash");
    for list in ["1", "15,39", "2,,3,", "5,63", "+1,012"] {
        let cmd = format!("lru_crawler metadump {list}");
        compare_metadump(&listing(&mut rc, &cmd), &listing(&mut tc, &cmd), &cmd);
    }

    // cachedump: every class, one line per item (binary keys left out), a
    // limit, empty classes.
    for cls in classes.iter().copied().chain([0, 2, 63]) {
        let cmd = format!("stats cachedump {cls} 0");
        compare_cachedump(&listing(&mut rc, &cmd), &listing(&mut tc, &cmd), &cmd);
    }
    let r = parse_cachedump(&listing(&mut rc, "stats cachedump 1 3"), "memcached");
    let t = parse_cachedump(&listing(&mut tc, "stats cachedump 1 3"), "wasmcached");
    assert_eq!((r.len(), t.len()), (3, 3));

    // Refusals and argument errors: memcached's words.
    for cmd in [
        "lru_crawler metadump 0",
        "lru_crawler metadump 64",
        "lru_crawler metadump x",
        "lru_crawler metadump 1,x",
        "lru_crawler metadump all,1",
        "lru_crawler metadump",
        "stats cachedump 1",
        "stats cachedump x 1",
        "stats cachedump 1 x",
        "stats cachedump 64 1",
    ] {
        assert_eq!(tc.cmd(cmd), rc.cmd(cmd), "{cmd}");
    }
    for c in [&mut rc, &mut tc] {
        c.send(b"set p 0 0 1\r\np\r\nlru_crawler metadump all\r\n");
    }
    for c in [&mut rc, &mut tc] {
        assert_eq!(c.line(), "STORED");
        assert_eq!(
            c.line(),
            "ERROR cannot pipeline other commands before metadump"
        );
        assert_eq!(c.cmd("delete p"), "DELETED");
    }

    // memcached-tool keys (the metadump lines as they are), then dump (a
    // `get` of every key; the records to re-add them, item order aside).
    let tk = memcached_tool(&target, "keys");
    let rk = memcached_tool(&reference, "keys");
    let lines = |b: &[u8]| -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = b
            .split_inclusive(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        v.push(b"END\r\n".to_vec());
        v
    };
    let n = compare_metadump(&lines(&rk), &lines(&tk), "memcached-tool keys");
    assert_eq!(n, keys.len() + 1);
    let td = parse_tool_dump(&memcached_tool(&target, "dump"));
    let rd = parse_tool_dump(&memcached_tool(&reference, "dump"));
    // The dump's gets leave an item's last access where it was on
    // memcached (a fetch moves it only after ITEM_UPDATE_INTERVAL, 60 s,
    // here; with the LRU maintainer, from the second fetch on) and at the
    // dump on wasmcached's stores: anywhere from the stores to now.
    let since_stored = stored.elapsed().as_secs() as i64 + 1;
    assert_eq!(td.len(), rd.len(), "memcached-tool dump: records");
    assert_eq!(td.len(), keys.len() + 1);
    for (r, t) in rd.iter().zip(&td) {
        assert_eq!(
            (&t.0, t.1, &t.3),
            (&r.0, r.1, &r.3),
            "memcached-tool dump: {}",
            r.0
        );
        let ok = (r.2 == 0) == (t.2 == 0) && (r.2 - t.2).abs() <= SLACK;
        assert!(
            ok,
            "memcached-tool dump: {} exptime {} vs {}",
            r.0, r.2, t.2
        );
    }
    // After the dump's gets every item was fetched.
    let n = compare_metadump_la(
        &listing(&mut rc, "lru_crawler metadump all"),
        &listing(&mut tc, "lru_crawler metadump all"),
        "after memcached-tool dump",
        SLACK + since_stored,
    );
    assert_eq!(n, keys.len() + 1);

    // Last: a list without a single class. (memcached 1.6.18's crawler
    // stays stuck after it: nothing may follow on the reference.)
    let cmd = "lru_crawler metadump ,";
    assert_eq!(tc.cmd(cmd), rc.cmd(cmd), "{cmd}");
    assert_eq!(tc.cmd(cmd), "NOTSTARTED no items to crawl");
    assert_eq!(tc.cmd("get plain"), "VALUE plain 0 1");
}

#[test]
fn metadump_cachedump_and_memcached_tool_match_memcached() {
    listings_match_memcached(&["-t", "4"]);
}

#[test]
fn metadump_cachedump_and_memcached_tool_match_memcached_without_cas() {
    listings_match_memcached(&["-t", "2", "-C"]);
}

/// An item's last access as metadump shows it (`la=`, unix time), and
/// whether it was fetched. memcached's crawler can miss an item its LRU
/// maintainer is moving: asked again until it lists it.
fn listed_la(c: &mut Client, key: &str, who: &str) -> (i64, String) {
    for _ in 0..50 {
        let lines = listing(c, "lru_crawler metadump all");
        if let Some(m) = meta_map(&lines, who).get(key) {
            return (m.la, m.fetch.clone());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{who}: metadump never listed {key}");
}

/// memcached (its LRU maintainer on, as by default) leaves an item's last
/// access alone at its first fetch, which only marks it fetched, and moves
/// it at every later one (at once, or through the maintainer soon after):
/// metadump's `la=` and meta `l` show it. The same steps on both servers,
/// each checked against its own clock.
#[test]
fn last_access_moves_from_the_second_fetch_as_memcached() {
    let reference = Server::start_memcached(&[]);
    let target = Server::start(&[]);
    let mut servers = [
        ("memcached", reference.client()),
        ("wasmcached", target.client()),
    ];
    let time = |c: &mut Client| -> i64 { c.stats("")["time"].parse().unwrap() };
    let mut stored = Vec::new();
    for (who, c) in servers.iter_mut() {
        assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
        let (la, fetch) = listed_la(c, "k", who);
        assert_eq!(fetch, "no", "{who}");
        stored.push(la);
    }
    std::thread::sleep(Duration::from_millis(2100));
    for ((who, c), &stored) in servers.iter_mut().zip(&stored) {
        assert_eq!(c.get("k").as_deref(), Some(&b"v"[..]), "{who}");
        let (la, fetch) = listed_la(c, "k", who);
        assert_eq!(
            (la, &fetch[..]),
            (stored, "yes"),
            "{who}: after the first get"
        );
    }
    std::thread::sleep(Duration::from_millis(1100));
    for ((who, c), &stored) in servers.iter_mut().zip(&stored) {
        let before = time(c);
        assert!(before > stored, "{who}: clock {before}, stored at {stored}");
        assert_eq!(c.get("k").as_deref(), Some(&b"v"[..]), "{who}");
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let (la, _) = listed_la(c, "k", who);
            if la >= before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{who}: la {la} 2 s after the second get at {before}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The same listings from components (examples/python-lru, js-lru and
/// go-lru, the world's `iter`): the host fills in memcached's size and
/// class for an item whose plugin gives neither, so they match memcached's
/// too.
#[test]
fn metadump_cachedump_and_memcached_tool_match_memcached_on_components() {
    for name in ["python-lru", "js-lru", "go-lru"] {
        let wasm = common::example_build::example(name);
        listings_match_memcached_with(&["-t", "2"], &["--plugin", &wasm]);
    }
}

/// The same commands on both servers: items of every default class and of
/// memcached's chunked sizes, hits, deletes, arithmetic, CAS, touches.
fn class_session(c: &mut Client) {
    let mut len = 1;
    let mut i = 0;
    while len < 900_000 {
        for j in 0..(1 + i % 3) {
            let key = format!("sz{i}:{j}");
            assert_eq!(c.set(&key, i % 2, 0, &vec![b'v'; len]), "STORED", "{key}");
        }
        len = len * 4 / 3 + 11;
        i += 1;
    }
    for i in 0..40 {
        c.set(&format!("n{i}"), 0, 0, b"10");
    }
    c.set("flagged", 0xfeed, 0, b"x");
    assert!(c.get("sz3:0").is_some());
    assert!(c.get("sz20:0").is_some());
    assert!(c.get("nope").is_none());
    assert_eq!(c.cmd("delete sz5:0"), "DELETED");
    assert_eq!(c.cmd("delete n39"), "DELETED");
    assert_eq!(c.cmd("incr n1 5"), "15");
    assert_eq!(c.cmd("decr n2 3"), "7");
    assert_eq!(c.cmd("touch n3 1000"), "TOUCHED");
    let (_, cas) = c.gets("n4").expect("n4");
    // With -C every CAS is 0 and a cas never stores.
    let stored = if cas == 0 { "EXISTS" } else { "STORED" };
    assert_eq!(c.cmd(&format!("cas n4 0 0 1 {cas}\r\nx")), stored);
    assert_eq!(c.cmd(&format!("cas n5 0 0 1 {cas}\r\nx")), "EXISTS");
    assert_eq!(c.cmd("append n6 0 0 3\r\nabc"), "STORED");
}

/// One `stats` group as `(class, field) -> value` for the per-class lines.
fn per_class(c: &mut Client, group: &str) -> BTreeMap<(u32, String), String> {
    c.stats(group)
        .into_iter()
        .filter_map(|(name, v)| {
            let name = name.strip_prefix("items:").unwrap_or(&name).to_string();
            let (class, field) = name.split_once(':')?;
            Some(((class.parse().ok()?, field.to_string()), v))
        })
        .collect()
}

/// `memcached-tool display`, `stats items` and `stats slabs` per class:
/// the default store counts each item in the class memcached gives it (the
/// same class table from the same -n / -f / slab settings), so the same
/// items show the same rows. Ages come from different eviction orders
/// (memcached's COLD tail, the CLOCK hand here): within [`SLACK`].
#[test]
fn memcached_tool_display_and_per_class_stats_match_memcached() {
    for flags in [
        &["-t", "4"][..],
        &["-t", "1", "-C"],
        &["-t", "2", "-f", "2", "-n", "100"],
        &["-t", "2", "-o", "slab_sizes=100-1000-5000-20000-200000"],
        &["-t", "2", "-o", "slab_chunk_max=262144"],
    ] {
        let reference = Server::start_memcached(flags);
        let target = Server::start(flags);
        class_session(&mut reference.client());
        class_session(&mut target.client());

        let rows = |out: Vec<u8>| -> Vec<Vec<String>> {
            let text = String::from_utf8(out).expect("utf-8");
            let mut lines = text.lines();
            assert!(lines.next().unwrap().contains("Item_Size  Max_age"));
            lines
                .map(|l| l.split_whitespace().map(str::to_string).collect())
                .collect()
        };
        let want = rows(memcached_tool(&reference, "display"));
        let got = rows(memcached_tool(&target, "display"));
        assert!(want.len() >= 4, "{flags:?}: {want:?}");
        assert_eq!(got.len(), want.len(), "{flags:?}:\n{want:?}\n{got:?}");
        for (w, g) in want.iter().zip(&got) {
            // #, Item_Size, Max_age ("Ns"), Pages, Count, Full?, Evicted,
            // Evict_Time, OOM.
            let age = |r: &[String]| r[2].trim_end_matches('s').parse::<i64>().unwrap();
            assert!(
                (age(w) - age(g)).abs() <= SLACK,
                "{flags:?}: {w:?} vs {g:?}"
            );
            let (mut w, mut g) = (w.clone(), g.clone());
            w.remove(2);
            g.remove(2);
            assert_eq!(g, w, "{flags:?}: display row (age aside)");
        }

        let (mut rc, mut tc) = (reference.client(), target.client());
        let (want, got) = (per_class(&mut rc, "slabs"), per_class(&mut tc, "slabs"));
        let names = |m: &BTreeMap<(u32, String), String>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "{flags:?}: stats slabs names");
        for (k, w) in &want {
            assert_eq!(&got[k], w, "{flags:?}: stats slabs {}:{}", k.0, k.1);
        }
        let (want, got) = (per_class(&mut rc, "items"), per_class(&mut tc, "items"));
        assert_eq!(names(&got), names(&want), "{flags:?}: stats items names");
        for field in [
            "number",
            "mem_requested",
            "evicted",
            "evicted_nonzero",
            "outofmemory",
            "reclaimed",
            "expired_unfetched",
            "evicted_unfetched",
        ] {
            for ((class, f), w) in &want {
                if f == field {
                    let g = &got[&(*class, f.clone())];
                    assert_eq!(g, w, "{flags:?}: stats items {class}:{field}");
                }
            }
        }
        // Each item's class in metadump is the one counted.
        let mut counted: BTreeMap<u32, u64> = BTreeMap::new();
        for m in meta_map(&listing(&mut tc, "lru_crawler metadump all"), "wasmcached").values() {
            *counted.entry(m.cls).or_default() += 1;
        }
        for (class, n) in counted {
            assert_eq!(
                want[&(class, "number".into())],
                n.to_string(),
                "{flags:?}: class {class}"
            );
        }
    }
}

/// A session that moves every counter `stats reset` concerns: stores past
/// `-m 2` (evictions), expiries, hits, misses, deletes, arithmetic.
fn reset_session(c: &mut Client) {
    let value = vec![b'x'; 1000];
    for i in 0..6000 {
        let exptime = if i % 10 == 0 { 1 } else { 0 };
        assert_eq!(c.set(&format!("k{i}"), 0, exptime, &value), "STORED");
    }
    for i in 5500..6000 {
        c.get(&format!("k{i}"));
    }
    assert!(c.get("nope").is_none());
    assert_eq!(c.cmd("delete k5999"), "DELETED");
    assert_eq!(c.cmd("incr nope 1"), "NOT_FOUND");
    assert_eq!(c.cmd("touch k5998 0"), "TOUCHED");
    std::thread::sleep(Duration::from_millis(2100));
    for i in (5000..6000).step_by(10) {
        assert!(c.get(&format!("k{i}")).is_none(), "k{i} expired");
    }
}

/// `stats reset` zeroes the same figures in `stats`, `stats items` and
/// `stats slabs` as memcached's: the counters (the plugin's as well as the
/// host's), not the levels; and they count from zero after it.
#[test]
fn stats_reset_zeroes_what_memcached_zeroes() {
    // Figures that change on their own or differ by design.
    let volatile = |name: &str| {
        name.ends_with("time")
            || name.ends_with("age")
            || name.starts_with("rusage")
            || name.starts_with("bytes_")
            || name.starts_with("read_buf")
            || name.starts_with("response_obj")
            || [
                "uptime",
                "total_connections",
                "curr_connections",
                "lru_maintainer_juggles",
            ]
            .contains(&name)
    };
    let flags = ["-t", "2", "-m", "2", "-I", "512k"];
    let reference = Server::start_memcached(&flags);
    let target = Server::start(&flags);
    let (mut rc, mut tc) = (reference.client(), target.client());
    reset_session(&mut rc);
    reset_session(&mut tc);
    let groups = ["", "items", "slabs"];
    let snapshot = |c: &mut Client| -> Vec<HashMap<String, String>> {
        groups.iter().map(|g| c.stats(g)).collect()
    };
    let (ref_before, tgt_before) = (snapshot(&mut rc), snapshot(&mut tc));
    assert_eq!(rc.cmd("stats reset"), "RESET");
    assert_eq!(tc.cmd("stats reset"), "RESET");
    let (ref_after, tgt_after) = (snapshot(&mut rc), snapshot(&mut tc));
    let mut compared = Vec::new();
    let mut wrong = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        for (name, rb) in &ref_before[i] {
            let Some(tb) = tgt_before[i].get(name) else {
                continue;
            };
            if volatile(name) || rb == "0" || tb == "0" {
                continue;
            }
            let zeroed =
                |after: &HashMap<String, String>| after.get(name).map(String::as_str) == Some("0");
            let (want, got) = (zeroed(&ref_after[i]), zeroed(&tgt_after[i]));
            compared.push(format!("{group}:{name}"));
            if want != got {
                wrong.push(format!(
                    "stats {group} {name}: memcached {rb} -> {:?}, wasmcached {tb} -> {:?}",
                    ref_after[i].get(name),
                    tgt_after[i].get(name)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The comparison saw the plugin's counters and levels, in every group.
    for name in [
        ":total_items",
        ":evictions",
        ":expired_unfetched",
        ":curr_items",
        "items:items:12:evicted",
        "items:items:12:number",
        "slabs:12:get_hits",
        "slabs:12:used_chunks",
    ] {
        assert!(
            compared.iter().any(|c| c == name),
            "{name} not compared: {compared:?}"
        );
    }
    // Counted from zero since.
    for c in [&mut rc, &mut tc] {
        for i in 0..10 {
            assert_eq!(c.set(&format!("again{i}"), 0, 0, b"v"), "STORED");
        }
        assert_eq!(c.stat("total_items"), 10);
        assert_eq!(c.stat("cmd_set"), 10);
    }
}

/// `stats sizes` under `-o track_sizes`: the same histogram of the same
/// items as memcached's (sizes, flags, CAS on and off, deletes, appends,
/// arithmetic).
#[test]
fn stats_sizes_match_memcached() {
    for flags in [
        &["-o", "track_sizes"][..],
        &["-o", "track_sizes", "-t", "2", "-I", "2m"],
    ] {
        let reference = Server::start_memcached(flags);
        let target = Server::start(flags);
        class_session(&mut reference.client());
        class_session(&mut target.client());
        let sizes = |s: &Server| {
            let mut c = s.client();
            c.send("stats sizes\r\n");
            c.until_end()
        };
        let want = sizes(&reference);
        assert!(want.len() > 10, "{want:?}");
        assert_eq!(sizes(&target), want, "{flags:?}");
    }
}

/// A listing larger than what the server buffers for a client streams in
/// chunks while other clients are served, and lists every item once.
#[test]
fn a_large_metadump_streams_while_the_server_keeps_serving() {
    let target = Server::start(&["-t", "2", "-m", "256"]);
    let reference = Server::start_memcached(&["-t", "2", "-m", "256", "-o", "no_lru_maintainer"]);
    let n = 60_000;
    for s in [&target, &reference] {
        let mut c = s.client();
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend_from_slice(
                format!(
                    "set item:{i:06} {i} 0 8 noreply\r\nvalue{:03}\r\n",
                    i % 1000
                )
                .as_bytes(),
            );
            if batch.len() > 64 << 10 {
                c.send(&batch);
                batch.clear();
            }
        }
        c.send(&batch);
        assert_eq!(c.cmd("mn"), "MN");
    }
    // Over 4 MB of lines: the client reads nothing for a while.
    let mut slow = target.client();
    slow.send(b"lru_crawler metadump all\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let mut other = target.client();
    for i in 0..50 {
        let t0 = Instant::now();
        assert_eq!(other.set(&format!("during{i}"), 0, 0, b"x"), "STORED");
        assert!(other.get("item:000007").is_some());
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "a command waited for the listing"
        );
    }
    let mut t_lines = Vec::new();
    loop {
        let l = slow.try_line_raw().expect("reading the listing");
        assert!(!l.is_empty(), "connection closed");
        let end = l == b"END\r\n";
        if !l.starts_with(b"key=during") {
            t_lines.push(l);
        }
        if end {
            break;
        }
    }
    let mut rc = reference.client();
    let r_lines = listing(&mut rc, "lru_crawler metadump all");
    assert_eq!(compare_metadump(&r_lines, &t_lines, "60000 items"), n);
    // The connection goes on serving afterwards.
    assert_eq!(slow.get("item:000042").as_deref(), Some(&b"value042"[..]));
}

/// memcached's refusal where there is nothing to list: a plugin without
/// the ABI v5 iteration answers as memcached does with dumping disabled
/// (`-X`), whether it lacks the export or answers that it cannot list.
#[test]
fn a_plugin_that_cannot_list_gets_memcached_s_refusal() {
    let reference = Server::start_memcached(&["-X"]);
    let wat = common::workspace_root().join("examples/wat-minimal/wat_minimal.wat");
    let minimal = Server::start(&["--plugin", wat.to_str().unwrap()]);
    // ABI v5 with a `wmc_iter` that answers "unsupported".
    let dir = std::path::PathBuf::from(
        option_env!("CARGO_TARGET_TMPDIR").unwrap_or(env!("CARGO_MANIFEST_DIR")),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("no-listing-{}.wat", std::process::id()));
    std::fs::write(
        &path,
        r#"(module
            (memory (export "memory") 1)
            (func (export "wmc_abi_version") (result i32) (i32.const 5))
            (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
            (func (export "wmc_init") (param i32) (result i32) (i32.const 0))
            (func (export "wmc_batch") (param i32) (result i64) (i64.const 0))
            (func (export "wmc_iter") (param i64 i32) (result i64) (i64.const -1)))"#,
    )
    .unwrap();
    let unsupported = Server::start(&["--plugin", path.to_str().unwrap()]);
    let mut rc = reference.client();
    for target in [&minimal, &unsupported] {
        let mut tc = target.client();
        for cmd in [
            "lru_crawler metadump all",
            "lru_crawler metadump hash",
            "lru_crawler metadump 1,2",
            "stats cachedump 1 1",
            "stats cachedump 1",
            "stats cachedump 1 0",
        ] {
            assert_eq!(tc.cmd(cmd), rc.cmd(cmd), "{cmd}");
        }
        assert_eq!(
            tc.cmd("lru_crawler metadump all"),
            "ERROR metadump not allowed"
        );
        assert_eq!(
            tc.cmd("stats cachedump 1 1"),
            "CLIENT_ERROR stats cachedump not allowed"
        );
    }
    let _ = std::fs::remove_file(&path);
}

/// `-X` refuses both listings, `-o no_lru_crawler` the metadump, with
/// memcached's words and in memcached's order of checks.
#[test]
fn dumping_disabled_and_crawler_disabled_answer_as_memcached() {
    for flags in [
        &["-X"][..],
        &["-o", "no_lru_crawler"],
        &["-X", "-o", "no_lru_crawler"],
    ] {
        let reference = Server::start_memcached(&[flags, LISTING_REF_FLAGS].concat());
        let target = Server::start(flags);
        let (mut rc, mut tc) = (reference.client(), target.client());
        for c in [&mut rc, &mut tc] {
            assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
        }
        for cmd in [
            "lru_crawler metadump all",
            "lru_crawler metadump 0",
            "stats cachedump 1 0",
            "stats cachedump 1",
            "stats cachedump 64 0",
        ] {
            let want = rc.cmd(cmd);
            assert_eq!(tc.cmd(cmd), want, "{flags:?}: {cmd}");
            if want.starts_with("ITEM ") {
                // Without -X, cachedump lists the one item, then ends.
                assert_eq!((tc.line(), rc.line()), ("END".into(), "END".into()));
            }
        }
    }
}

/// Waits (at most 10 s) until memcached's crawler thread has finished its
/// crawl: a crawl asked before then is `BUSY`. wasmcached's is always
/// idle.
fn crawler_settled(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let general = c.stats("");
        let settings = c.stats("settings");
        let running = general.get("lru_crawler_running").is_some_and(|v| v != "0");
        // Disabled, but the thread not yet gone: `stats` still shows it.
        let stopping =
            settings["lru_crawler"] == "no" && general.contains_key("lru_crawler_running");
        if !running && !stopping {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("memcached's crawler did not settle");
}

/// The crawler's and the size histogram's admin commands change what the
/// server shows as memcached's do: `lru_crawler enable|disable|sleep|
/// tocrawl|crawl` (a second enable refused, a crawl checked and refused
/// while disabled), `stats sizes_enable|sizes_disable` (the status lines
/// without END; refused without CAS), and `stats settings`, `stats` and
/// `stats sizes` after each. Both run without the LRU maintainer, whose
/// thread starts crawls of its own in memcached.
#[test]
fn crawler_and_sizes_admin_commands_answer_as_memcached() {
    for flags in [
        &["-o", "no_lru_maintainer"][..],
        &["-C", "-o", "no_lru_maintainer"],
        &["-o", "no_lru_crawler,no_lru_maintainer"],
    ] {
        let reference = Server::start_memcached(flags);
        let target = Server::start(flags);
        let (mut rc, mut tc) = (reference.client(), target.client());
        // Everything the two answer, with `stats` and `stats settings` cut
        // to the lines these commands change.
        let session = |c: &mut Client| -> Vec<String> {
            let mut out = Vec::new();
            let shown = |l: &str| ["lru_crawler", "track_sizes"].iter().any(|n| l.contains(n));
            for cmd in [
                "lru_crawler enable",
                "lru_crawler crawl 0",
                "lru_crawler crawl 64",
                "lru_crawler crawl 1,2,x",
                "lru_crawler crawl 63",
                "lru_crawler crawl all",
                "lru_crawler sleep 5",
                "lru_crawler tocrawl 7",
                "stats settings",
                "stats",
                "lru_crawler disable",
                "lru_crawler disable",
                "lru_crawler crawl all",
                "lru_crawler metadump all",
                "stats settings",
                "stats",
                "lru_crawler enable",
                "lru_crawler crawl 1",
                "stats sizes",
                "stats sizes_enable",
                "stats sizes_enable x",
                "set b 0 0 100",
                "stats sizes",
                "stats settings",
                "stats sizes_disable",
                "stats sizes_disable",
                "stats sizes",
            ] {
                if cmd.starts_with("lru_crawler") {
                    crawler_settled(c);
                }
                if cmd.starts_with("set ") {
                    out.push(c.cmd(&format!("{cmd}\r\n{}", "y".repeat(100))));
                } else if cmd.starts_with("stats sizes_") {
                    // No END: one line, or two (an error and its reason).
                    c.send(format!("{cmd}\r\n"));
                    let first = c.line();
                    out.push(first.clone());
                    if first.ends_with(" error") {
                        out.push(c.line());
                    }
                } else if cmd.starts_with("stats") {
                    c.send(format!("{cmd}\r\n"));
                    let lines = c.until_end();
                    let lines = lines
                        .into_iter()
                        .filter(|l| cmd == "stats sizes" || shown(l));
                    if cmd == "stats" {
                        // Which lines show; the crawler's counts differ.
                        out.extend(lines.map(|l| l.rsplit_once(' ').unwrap().0.to_string()));
                    } else {
                        out.extend(lines);
                    }
                } else {
                    out.push(c.cmd(cmd));
                }
                if cmd == "lru_crawler disable" {
                    // memcached's thread stops on its own time, and nothing
                    // shows when it has: a crawl asked before then is an
                    // unknown error.
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            out
        };
        let want = session(&mut rc);
        assert_eq!(session(&mut tc), want, "{flags:?}");
        assert!(
            want.contains(&"STAT lru_crawler_sleep 5".to_string()),
            "{want:?}"
        );
    }
}

/// `slabs reassign` answers as memcached's on a server with no class two
/// pages deep: `SAME`, `BADCLASS` beyond the class table the flags build,
/// `NOSPARE` within it, memcached's refusal under `-o no_slab_reassign`
/// (before a malformed number).
#[test]
fn slabs_reassign_answers_as_memcached() {
    let ids = [-2, -1, 0, 1, 2, 12, 13, 14, 38, 39, 40, 41, 62, 63, 64];
    for flags in [
        &[][..],
        &["-f", "2", "-n", "100"],
        &["-o", "slab_sizes=100-1000-5000-20000-200000"],
        &["-o", "slab_chunk_max=262144"],
        &["-o", "no_slab_reassign"],
    ] {
        let reference = Server::start_memcached(flags);
        let target = Server::start(flags);
        let answers = |s: &Server| {
            let mut c = s.client();
            assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
            let mut out = vec![c.cmd("slabs reassign x 1")];
            for src in ids {
                for dst in ids {
                    out.push(c.cmd(&format!("slabs reassign {src} {dst}")));
                }
            }
            out
        };
        let want = answers(&reference);
        assert_eq!(answers(&target), want, "{flags:?}");
    }
}

/// `watch`'s lines of the client on port `rport`, normalised for
/// comparison: `ts` and `gid` dropped, the client's `cfd` and `rport`
/// replaced by placeholders. The client is known by its `conn_new` line;
/// other connections' events are skipped (a readiness probe's close can
/// reach the server after the watcher is in place on a loaded machine).
fn watch_lines(w: &mut Client, rport: u16, client_lines: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cfd = None;
    while out.len() < client_lines {
        let raw = w.try_line_raw().expect("watch line");
        let l = String::from_utf8_lossy(&raw).trim_end().to_string();
        let field = |k: &str| {
            l.split(' ')
                .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        if cfd.is_none() && field("rport") == Some(rport.to_string()) {
            cfd = field("cfd");
        }
        if cfd.is_none() || field("cfd") != cfd {
            let kind = field("type");
            assert!(
                matches!(kind.as_deref(), Some("conn_new" | "conn_close")),
                "another connection's line that is no connection event: {l}"
            );
            continue;
        }
        let mut fields: Vec<String> = Vec::new();
        for f in l.split(' ') {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            match k {
                "ts" | "gid" => assert!(v.parse::<f64>().is_ok(), "{l}"),
                "cfd" => fields.push("cfd=C".into()),
                "rport" => fields.push("rport=P".into()),
                _ => fields.push(f.to_string()),
            }
        }
        out.push(fields.join(" "));
    }
    out
}

/// watch fetchers/mutations/connevents: the same client session on both
/// servers logs the same lines, field by field (ts, gid, the client's fd
/// and port aside), the lookup each store makes before it stores (an
/// `item_get` right before the `item_store`, reported by the plugin)
/// included.
#[test]
fn watch_logs_as_memcached() {
    let reference = Server::start_memcached(&[]);
    let target = Server::start(&[]);
    let mut logs = Vec::new();
    for server in [&reference, &target] {
        let mut w = server.client();
        w.set_read_timeout(Duration::from_secs(5));
        // A bad stream name, then the watcher proper.
        assert_eq!(w.cmd("watch bogus"), "ERROR", "{}", server.name());
        assert_eq!(
            w.cmd("watch fetchers mutations evictions connevents"),
            "OK",
            "{}",
            server.name()
        );
        let mut c = server.client();
        let rport = c.local_port();
        assert_eq!(watchers_soon(&mut c), 1, "{}", server.name());
        assert_eq!(c.set("foo", 0, 0, b"bar"), "STORED");
        assert_eq!(c.get("foo").as_deref(), Some(&b"bar"[..]));
        assert_eq!(c.get("nope"), None);
        assert_eq!(c.set("foo", 5, 100, b"barr"), "STORED");
        assert_eq!(c.store("add", "foo", 0, 0, b"x"), "NOT_STORED");
        assert_eq!(c.store("replace", "zz", 0, 0, b"x"), "NOT_STORED");
        assert_eq!(c.cmd("cas foo 0 0 1 999\r\nx"), "EXISTS");
        assert_eq!(c.set("big", 0, 0, &[b'x'; 2000]), "STORED");
        assert!(c.gets("big").is_some());
        c.send("gat 10 nope\r\n");
        assert_eq!(c.line(), "END");
        drop(c);
        // conn_new, 10 commands and the 6 lookups of the stores, conn_close.
        logs.push(watch_lines(&mut w, rport, 18));
    }
    let (want, got) = (&logs[0], &logs[1]);
    assert_eq!(got.len(), want.len(), "want {want:#?}\ngot {got:#?}");
    for (w, g) in want.iter().zip(got) {
        assert_eq!(g, w, "want {want:#?}\ngot {got:#?}");
    }
}

/// Watch lines up to those that mention each of `ends` as a key
/// (included), each field compared as [`watch_lines`] does, grouped by
/// connection in the order each first appears (memcached's logger thread
/// reads each worker thread's lines in turn, so lines of connections on
/// different threads interleave at random). memcached 1.6.18 prints a
/// refused store's line with too few arguments: the fd lands in `clsid`.
fn watch_lines_until(w: &mut Client, ends: &[&str]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut fds: Vec<String> = Vec::new();
    let mut left: Vec<String> = ends.iter().map(|e| format!(" key={e} ")).collect();
    while !left.is_empty() {
        let raw = w.try_line_raw().expect("watch line");
        let l = String::from_utf8_lossy(&raw).trim_end().to_string();
        let too_large = l.contains(" status=too_large ");
        let mut fields: Vec<String> = Vec::new();
        let mut conn = None;
        for f in l.split(' ') {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            match k {
                "ts" | "gid" => assert!(v.parse::<f64>().is_ok(), "{l}"),
                "cfd" if !too_large => conn = Some(v.to_string()),
                "clsid" if too_large => conn = Some(v.to_string()),
                _ => fields.push(f.to_string()),
            }
        }
        let fd = conn.expect("a line of a connection");
        let i = fds.iter().position(|f| *f == fd).unwrap_or_else(|| {
            fds.push(fd);
            out.push(Vec::new());
            fds.len() - 1
        });
        out[i].push(fields.join(" "));
        left.retain(|e| !l.contains(e.as_str()));
    }
    out
}

/// `log_watchers` once the watcher that just got its `OK` is counted:
/// memcached's logger thread adds it a moment after the `OK` (seen once
/// as 0 on a loaded machine), wasmcached at once.
fn watchers_soon(c: &mut Client) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let n = c.stat("log_watchers");
        if n > 0 || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `cmd` and a meta no-op and reads every line up to the `MN`: the
/// same on any server whatever `cmd` answers (or leaves unanswered).
fn upto_mn(c: &mut Client, cmd: &[u8]) -> Vec<String> {
    c.send([cmd, b"\r\nmn\r\n"].concat());
    c.until_line("MN")
}

/// Sends binary requests ending in a no-op (quiet ones answer nothing on
/// a miss) and reads the answers up to the no-op's.
fn bin_upto_noop(c: &mut Client, reqs: &[Vec<u8>]) {
    let mut all: Vec<u8> = reqs.concat();
    all.extend(bin_request(0x0a, b"", b"", b""));
    c.send(&all);
    loop {
        let head = c.exact(24);
        let body = u32::from_be_bytes(head[8..12].try_into().unwrap()) as usize;
        c.exact(body);
        if head[1] == 0x0a {
            return;
        }
    }
}

/// watch fetchers/mutations: every lookup memcached makes (the one each
/// store, delete, touch, incr/decr, gat, meta and binary command makes),
/// every store line (append with the size after it, meta modes, binary
/// cas), noreply and quiet variants, failed commands, refused too-large
/// sets and multi-key gets over several shards (in request order): the
/// same lines, one for one.
#[test]
fn watch_logs_every_lookup_in_every_protocol_as_memcached() {
    every_lookup_logged_as_memcached(&[], true);
}

/// The same with python-lru, a component that reports its own lookups,
/// stores and evictions (the world's `events` import). Without `mg N`: the
/// example does not create items on a get miss (memcached's win and
/// recache tokens are beyond it).
#[test]
fn watch_logs_every_lookup_of_a_component_as_memcached() {
    let wasm = common::example_build::example("python-lru");
    every_lookup_logged_as_memcached(&["--plugin", &wasm], false);
}

fn every_lookup_logged_as_memcached(target_flags: &[&str], vivify_get: bool) {
    let reference = Server::start_memcached(&[]);
    let target = Server::start(target_flags);
    let mut logs = Vec::new();
    for server in [&reference, &target] {
        let mut w = server.client();
        w.set_read_timeout(Duration::from_secs(5));
        assert_eq!(w.cmd("watch fetchers mutations"), "OK");
        let mut c = server.client();
        assert_eq!(watchers_soon(&mut c), 1, "{}", server.name());
        let mut session: Vec<Vec<String>> = Vec::new();
        for cmd in [
            &b"set a 0 0 1\r\nx"[..],
            b"get a b c d a",
            b"gets a",
            b"delete a",
            b"delete a",
            b"incr a 1",
            b"touch a 1",
            b"set n 0 0 1\r\n5",
            b"incr n 1",
            b"decr n 10",
            b"touch n 100",
            b"gat 0 n a c",
            b"gats 0 c n",
            b"add a 0 0 1\r\nx",
            b"add a 0 0 1\r\nx",
            b"replace b 0 0 1\r\nx",
            b"replace a 5 0 2\r\nyy",
            b"cas a 0 0 1 1\r\nz",
            b"cas zz 0 0 1 1\r\nz",
            b"append a 0 0 3\r\nabc",
            b"prepend a 0 0 3\r\nabc",
            b"append nx 0 0 3\r\nabc",
            b"set q 0 0 1 noreply\r\nq",
            b"delete q noreply",
            b"incr q 1 noreply",
            b"set s 0 0 1\r\nx",
            b"incr s 1",
            b"set t 3 100 1\r\nx",
            // meta
            b"mg a v",
            b"mg zz v",
            b"mg a s v t f",
            b"ms a 2\r\nxx",
            b"ms a 2 MA\r\nyy",
            b"ms a 2 MP T50\r\nzz",
            b"ms b 2 MR\r\nyy",
            b"ms b 2 ME\r\nyy",
            b"ms b 2 ME\r\nyy",
            b"ms b 2 MZ\r\nyy",
            b"ms a 2 I\r\nzz",
            b"ms a 2 C1\r\nzz",
            b"md a",
            b"md a q",
            b"mg a q v",
            b"mg a k v",
            b"ma a",
            b"ma a N0 J5",
            b"ma a MD",
            b"ma a q",
            b"me a",
            b"mg v N30 s",
            b"mg v N30 s",
            b"md zz q",
        ] {
            if !vivify_get && cmd.starts_with(b"mg v N") {
                continue;
            }
            session.push(upto_mn(&mut c, cmd));
        }
        // A refused set: memcached logs it and the unlink's lookup.
        let big = [
            &b"set a 0 0 2000000\r\n"[..],
            &vec![b'x'; 2_000_000],
            b"\r\n",
        ]
        .concat();
        c.send(&big);
        assert_eq!(c.line(), "SERVER_ERROR object too large for cache");
        let mut b = server.client();
        b.set_read_timeout(Duration::from_secs(5));
        let fl = |flags: u32, exp: u32| [flags.to_be_bytes(), exp.to_be_bytes()].concat();
        let arith = |delta: u64, initial: u64, exp: u32| {
            [
                &delta.to_be_bytes()[..],
                &initial.to_be_bytes(),
                &exp.to_be_bytes(),
            ]
            .concat()
        };
        let exp = |e: u32| e.to_be_bytes().to_vec();
        for reqs in [
            vec![bin_request(0x01, b"ba", &fl(0, 0), b"x")],
            vec![bin_request(0x00, b"ba", b"", b"")],
            vec![bin_request(0x00, b"bzz", b"", b"")],
            vec![bin_request(0x0c, b"ba", b"", b"")],
            vec![bin_request(0x09, b"bzz", b"", b"")],
            vec![bin_request(0x09, b"ba", b"", b"")],
            vec![
                bin_request(0x0d, b"ba", b"", b""),
                bin_request(0x0d, b"bzz", b"", b""),
                bin_request(0x0d, b"bc", b"", b""),
                bin_request(0x0d, b"ba", b"", b""),
            ],
            vec![bin_request(0x02, b"ba", &fl(0, 0), b"y")],
            vec![bin_request(0x02, b"bb", &fl(0, 0), b"y")],
            vec![bin_request(0x03, b"bc", &fl(0, 0), b"y")],
            vec![bin_request(0x03, b"bb", &fl(5, 0), b"yy")],
            vec![bin_request(0x0e, b"bb", b"", b"zzz")],
            vec![bin_request(0x0f, b"bb", b"", b"zzz")],
            vec![bin_request(0x0e, b"bnx", b"", b"zzz")],
            vec![bin_request(0x11, b"bq", &fl(0, 0), b"v")],
            vec![bin_request(0x04, b"bq", b"", b"")],
            vec![bin_request(0x04, b"bq", b"", b"")],
            vec![bin_request(0x14, b"bb", b"", b"")],
            vec![bin_request(0x05, b"bn", &arith(1, 10, 0), b"")],
            vec![bin_request(0x05, b"bn", &arith(1, 10, 0), b"")],
            vec![bin_request(0x06, b"bn", &arith(1, 10, u32::MAX), b"")],
            vec![bin_request(0x06, b"bm", &arith(1, 10, u32::MAX), b"")],
            vec![bin_request(0x1c, b"bn", &exp(100), b"")],
            vec![bin_request(0x1c, b"bzz", &exp(100), b"")],
            vec![bin_request(0x1d, b"bn", &exp(100), b"")],
            vec![bin_request(0x1d, b"bzz", &exp(100), b"")],
            vec![bin_request(0x23, b"bn", &exp(100), b"")],
            vec![bin_request(0x1e, b"bzz", &exp(100), b"")],
        ] {
            bin_upto_noop(&mut b, &reqs);
        }
        // A binary set with a wrong CAS is logged as a cas.
        let mut cas = bin_request(0x01, b"ba", &fl(0, 0), b"q");
        cas[16..24].copy_from_slice(&12345u64.to_be_bytes());
        bin_upto_noop(&mut b, &[cas]);
        c.send("get watch-end\r\n");
        assert_eq!(c.line(), "END");
        bin_upto_noop(&mut b, &[bin_request(0x09, b"watch-end-b", b"", b"")]);
        logs.push((
            watch_lines_until(&mut w, &["watch-end", "watch-end-b"]),
            session,
        ));
    }
    let ((want, want_replies), (got, got_replies)) = (&logs[0], &logs[1]);
    // The answers themselves (CAS values aside) are other tests' business.
    assert_eq!(got_replies.len(), want_replies.len());
    assert_eq!(got.len(), want.len(), "want {want:#?}\ngot {got:#?}");
    for (want, got) in want.iter().zip(got) {
        for (w, g) in want.iter().zip(got) {
            assert_eq!(g, w, "want {want:#?}\ngot {got:#?}");
        }
        assert_eq!(got.len(), want.len(), "want {want:#?}\ngot {got:#?}");
    }
}

/// watch evictions: memcached's line for every item evicted, field by
/// field. Which items go differs (memcached's segmented LRU, the default
/// store's CLOCK), so each server is checked on its own: the keys logged
/// are exactly those that are gone and as many as `evictions` counts, and
/// each line has memcached's fields, with the slab class, size, ttl and
/// fetch mark of the item.
#[test]
fn watch_logs_evictions_as_memcached() {
    evictions_logged_as_memcached(&[]);
}

/// The same with python-lru, which reports its evictions through the
/// world's `events` import.
#[test]
fn watch_logs_evictions_of_a_component_as_memcached() {
    let wasm = common::example_build::example("python-lru");
    evictions_logged_as_memcached(&["--plugin", &wasm]);
}

fn evictions_logged_as_memcached(target_flags: &[&str]) {
    let mut shapes = Vec::new();
    for server in [
        Server::start_memcached(&["-m", "2"]),
        Server::start(&[&["-m", "2"], target_flags].concat()),
    ] {
        let name = server.name().to_string();
        let mut w = server.client();
        w.set_read_timeout(Duration::from_secs(5));
        assert_eq!(w.cmd("watch evictions"), "OK");
        let mut c = server.client();
        assert_eq!(watchers_soon(&mut c), 1, "{name}");
        let before = c.stat("evictions");
        let value = vec![b'v'; 10_000];
        let n = 400;
        for i in 0..n {
            // Half never expire, half in 1000 s.
            let ttl = if i % 2 == 0 { 0 } else { 1000 };
            assert_eq!(c.set(&format!("k{i}"), 7, ttl, &value), "STORED");
            if i == 3 {
                assert!(c.get("k1").is_some());
            }
        }
        let evicted = c.stat("evictions") - before;
        assert!(evicted > 0, "{name}: nothing evicted");
        let mut logged = HashSet::new();
        let mut shape = None;
        for _ in 0..evicted {
            let raw = w.try_line_raw().expect("eviction line");
            let l = String::from_utf8_lossy(&raw).trim_end().to_string();
            let f: Vec<(&str, &str)> = l
                .split(' ')
                .map(|f| f.split_once('=').unwrap_or((f, "")))
                .collect();
            let names: Vec<&str> = f.iter().map(|(k, _)| *k).collect();
            let v = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| *v).unwrap();
            let key = v("key");
            let i: usize = key[1..].parse().unwrap();
            assert_eq!(v("type"), "eviction", "{name}: {l}");
            let ttl: i64 = v("ttl").parse().unwrap();
            if i.is_multiple_of(2) {
                assert_eq!(ttl, -1, "{name}: {l}");
            } else {
                assert!((990..=1000).contains(&ttl), "{name}: {l}");
            }
            let la: i64 = v("la").parse().unwrap();
            assert!((0..10).contains(&la), "{name}: {l}");
            let fetched = if i == 1 { "yes" } else { "no" };
            assert_eq!(v("fetch"), fetched, "{name}: {l}");
            assert!(logged.insert(key.to_string()), "{name}: twice: {l}");
            let s = (
                names.join(" "),
                v("clsid").to_string(),
                v("size").to_string(),
            );
            assert_eq!(shape.get_or_insert(s.clone()), &s, "{name}: {l}");
        }
        for i in 0..n {
            let key = format!("k{i}");
            assert_eq!(
                c.get(&key).is_none(),
                logged.contains(&key),
                "{name}: {key} gone but not logged, or logged but there"
            );
        }
        shapes.push(shape.expect("a line"));
    }
    assert_eq!(shapes[1], shapes[0]);
}

/// `stats detail`: memcached 1.6.18 counts binary gets, gats and touches
/// (with their hits), stores and deletes per prefix, and no meta command.
#[test]
fn stats_detail_counts_binary_not_meta_as_memcached() {
    let mut dumps = Vec::new();
    for server in [Server::start_memcached(&[]), Server::start(&[])] {
        let mut c = server.client();
        assert_eq!(c.cmd("stats detail on"), "OK");
        for cmd in [
            &b"mg a:1 v"[..],
            b"ms a:2 1\r\nx",
            b"mg a:2 v",
            b"md a:2",
            b"ma a:4",
            b"ms a:5 1 MA\r\nx",
            b"me a:2",
            b"mg a:6 v N0",
            b"touch t:1 0",
            b"incr t:2 1",
            b"gat 0 t:3",
            b"append t:4 0 0 1\r\nx",
        ] {
            upto_mn(&mut c, cmd);
        }
        let mut b = server.client();
        let fl = [0u8; 8];
        let arith = [[0, 0, 0, 0, 0, 0, 0, 1], [0; 8]].concat();
        let arith = [&arith[..], &[0, 0, 0, 0]].concat();
        for req in [
            bin_request(0x01, b"b:1", &fl, b"x"),
            bin_request(0x00, b"b:1", b"", b""),
            bin_request(0x00, b"b:2", b"", b""),
            bin_request(0x1d, b"b:1", &[0; 4], b""),
            bin_request(0x1c, b"b:1", &[0; 4], b""),
            bin_request(0x1d, b"b:3", &[0; 4], b""),
            bin_request(0x05, b"b:4", &arith, b""),
            bin_request(0x0e, b"b:4", b"", b"x"),
            bin_request(0x02, b"b:5", &fl, b"x"),
            bin_request(0x04, b"b:1", b"", b""),
            bin_request(0x04, b"b:9", b"", b""),
        ] {
            bin_upto_noop(&mut b, &[req]);
        }
        c.send("stats detail dump\r\n");
        let mut lines = c.until_end();
        lines.sort();
        dumps.push(lines);
    }
    assert!(!dumps[0].is_empty());
    assert_eq!(dumps[1], dumps[0]);
}

/// -W: `watch` refused with memcached's words; nothing is counted.
#[test]
fn watch_disabled_answers_as_memcached() {
    let reference = Server::start_memcached(&["-W"]);
    let target = Server::start(&["-W"]);
    for cmd in ["watch", "watch fetchers", "watch bogus"] {
        let want = reference.client().cmd(cmd);
        assert_eq!(target.client().cmd(cmd), want, "{cmd}");
    }
    // Something queued before `watch` on the same connection.
    let reference = Server::start_memcached(&[]);
    let target = Server::start(&[]);
    let mut answers = Vec::new();
    for server in [&reference, &target] {
        let mut c = server.client();
        c.send("get a\r\nwatch\r\n");
        answers.push((c.line(), c.line()));
    }
    assert_eq!(answers[1], answers[0]);
}

/// `stats detail on|off|dump` and `-D`: the same commands count the same
/// per-prefix figures on both servers. memcached prints its prefixes in the
/// order of a hash table walk, which is not reproduced: the lines are
/// compared as a set.
#[test]
fn stats_detail_counts_prefixes_as_memcached() {
    fn session(c: &mut Client) -> Vec<Vec<String>> {
        let mut dumps = Vec::new();
        let dump = |c: &mut Client| {
            c.send("stats detail dump\r\n");
            let mut lines = c.until_end();
            lines.sort();
            lines
        };
        assert_eq!(c.set("a:1", 0, 0, b"x"), "STORED");
        assert_eq!(c.store("add", "a:1", 0, 0, b"x"), "NOT_STORED");
        assert!(c.get("a:1").is_some());
        assert!(c.get("b:2").is_none());
        c.send("gets a:1 b:2 nodelim c:\r\n");
        while c.line() != "END" {}
        assert_eq!(c.cmd("delete a:1"), "DELETED");
        assert_eq!(c.cmd("delete a:9"), "NOT_FOUND");
        assert_eq!(c.set("nodelim", 0, 0, b"x"), "STORED");
        assert_eq!(c.set("x#y", 0, 0, b"x"), "STORED");
        assert!(c.get("x#y").is_some());
        dumps.push(dump(c));
        assert_eq!(c.cmd("stats detail off"), "OK");
        assert!(c.get("x#y").is_some());
        assert_eq!(c.set("a:2", 0, 0, b"x"), "STORED");
        dumps.push(dump(c));
        assert_eq!(c.cmd("stats detail on"), "OK");
        assert!(c.get("a:2").is_some());
        dumps.push(dump(c));
        assert_eq!(c.cmd("stats reset"), "RESET");
        dumps.push(dump(c));
        dumps
    }
    for flags in [&[][..], &["-D", "#"]] {
        let reference = Server::start_memcached(flags);
        let target = Server::start(flags);
        let (mut rc, mut tc) = (reference.client(), target.client());
        if flags.is_empty() {
            for c in [&mut rc, &mut tc] {
                // Off until asked for.
                assert_eq!(c.stats("settings")["detail_enabled"], "no");
                assert_eq!(c.cmd("stats detail on"), "OK");
            }
        }
        for c in [&mut rc, &mut tc] {
            assert_eq!(c.stats("settings")["detail_enabled"], "yes");
        }
        let want = session(&mut rc);
        assert!(!want[0].is_empty(), "{want:?}");
        assert_eq!(session(&mut tc), want, "{flags:?}");
        for bad in ["stats detail", "stats detail x"] {
            assert_eq!(tc.cmd(bad), rc.cmd(bad), "{bad}");
        }
    }
}

/// Debian's `memcached-tool HOST stats|settings|sizes` print the same
/// fields for wasmcached as for memcached started with the same flags, and
/// the same `settings` values (but for the ports); `stats plugin` holds
/// wasmcached's own settings instead.
#[test]
fn memcached_tool_stats_and_settings_print_memcached_fields() {
    let flags = ["-t", "2", "-m", "64", "-c", "500"];
    let reference = Server::start_memcached(&flags);
    let target = Server::start(&flags);
    for s in [&reference, &target] {
        let mut c = s.client();
        for i in 0..20 {
            assert_eq!(c.set(&format!("tool:{i}"), 0, 0, b"v"), "STORED");
        }
        assert!(c.get("tool:3").is_some());
    }
    // Rows after the header line: (field, value).
    let rows = |out: Vec<u8>| -> Vec<(String, String)> {
        String::from_utf8_lossy(&out)
            .lines()
            .skip(1)
            .map(|l| {
                let mut it = l.split_whitespace();
                let k = it.next().unwrap_or_default().to_string();
                (k, it.collect::<Vec<_>>().join(" "))
            })
            .collect()
    };
    for mode in ["stats", "settings", "sizes"] {
        let r = rows(memcached_tool(&reference, mode));
        let t = rows(memcached_tool(&target, mode));
        let names = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(&t), names(&r), "memcached-tool {mode}: fields");
        assert!(
            r.len() > if mode == "sizes" { 0 } else { 40 },
            "{mode}: {r:?}"
        );
        if mode != "stats" {
            for ((k, rv), (_, tv)) in r.iter().zip(&t) {
                if !["tcpport", "udpport"].contains(&k.as_str()) {
                    assert_eq!(tv, rv, "memcached-tool {mode}: {k}");
                }
            }
        }
    }
    let own = target.stats("plugin");
    assert_eq!(own["plugin"], "default-store");
    assert_eq!(own["shards"], "2");
    assert!(own.contains_key("plugin_deadline_ms") && own.contains_key("plugin_cache"));
}
