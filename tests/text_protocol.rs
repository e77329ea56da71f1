//! End-to-end tests of memcached's text protocol over real loopback sockets.
//!
//! The expected answers are memcached 1.6's, byte for byte (the Debian
//! `memcached` package is the reference): run this module against it with
//! `WASMCACHED_TEST_BIN=/usr/bin/memcached cargo test --release -p wasmcached
//! --test e2e -- text_protocol::` to check the expectations themselves.

use crate::common;

use common::{Client, Rng, Server, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ------------------------------------------------------------ helpers

fn server() -> Server {
    Server::start(&[])
}

/// Reads exactly as many bytes as `expected` has and compares; fails early
/// (without waiting for a timeout) as soon as what arrived diverges.
fn expect_bytes(c: &mut Client, what: &str, expected: &[u8]) {
    let mut acc: Vec<u8> = Vec::new();
    while acc.len() < expected.len() {
        let line = match c.try_line_raw() {
            Ok(l) => l,
            Err(e) => panic!(
                "{what}: read failed ({e}) after {:?}\n expected {:?}",
                String::from_utf8_lossy(&acc),
                String::from_utf8_lossy(expected)
            ),
        };
        if line.is_empty() {
            panic!(
                "{what}: connection closed after {:?}\n expected {:?}",
                String::from_utf8_lossy(&acc),
                String::from_utf8_lossy(expected)
            );
        }
        acc.extend_from_slice(&line);
        let n = acc.len().min(expected.len());
        if acc[..n] != expected[..n] || acc.len() > expected.len() {
            panic!(
                "{what}: answer differs\n got      {:?}\n expected {:?}",
                String::from_utf8_lossy(&acc),
                String::from_utf8_lossy(expected)
            );
        }
    }
}

/// Sends `req` and expects exactly `expected` back, then checks that the
/// connection is still in sync (a `version` round trip).
fn rt(c: &mut Client, req: &str, expected: &str) {
    c.send(req.as_bytes());
    expect_bytes(c, &format!("request {req:?}"), expected.as_bytes());
    c.send(b"version\r\n");
    let l = c.line();
    assert!(
        l.starts_with("VERSION "),
        "request {req:?}: after the expected answer {expected:?} came the extra line {l:?}"
    );
}

/// The connection is usable and nothing unexpected is pending.
fn sync(c: &mut Client) {
    c.send(b"version\r\n");
    let l = c.line();
    assert!(
        l.starts_with("VERSION "),
        "expected VERSION after the previous exchange, got {l:?}"
    );
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn stat_u64(m: &HashMap<String, String>, k: &str) -> u64 {
    m.get(k)
        .unwrap_or_else(|| panic!("stat {k} missing (have {} stats)", m.len()))
        .parse()
        .unwrap_or_else(|_| panic!("stat {k} = {:?} is not a number", m[k]))
}

fn long_key(n: usize) -> String {
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

// ------------------------------------------------------------ basics

#[test]
fn version_verbosity_and_unknown_commands() {
    let s = server();
    let mut c = s.client();
    let v = c.cmd("version");
    assert!(
        v.starts_with("VERSION ") && v.len() > 8,
        "version answered {v:?}"
    );
    rt(&mut c, "verbosity 1\r\n", "OK\r\n");
    rt(&mut c, "verbosity 0\r\n", "OK\r\n");
    rt(&mut c, "verbosity 1 noreply\r\n", "");
    rt(&mut c, "verbosity 0 noreply\r\n", "");
    rt(&mut c, "verbosity\r\n", "ERROR\r\n");
    rt(&mut c, "verbosity 1 2 3\r\n", "ERROR\r\n");
    rt(&mut c, "verbosity foo bar my\r\n", "ERROR\r\n"); // memccapable's check
    rt(&mut c, "verbosity noreply\r\n", "");
    // version ignores extra tokens
    let v2 = c.cmd("version foo bar");
    assert_eq!(v2, v, "version with extra tokens");
    // unknown commands, case sensitivity, empty lines
    rt(&mut c, "foo\r\n", "ERROR\r\n");
    rt(&mut c, "foo bar baz\r\n", "ERROR\r\n");
    rt(&mut c, "GET k\r\n", "ERROR\r\n");
    rt(&mut c, "Set k 0 0 1\r\n", "ERROR\r\n");
    rt(&mut c, "\r\n", "ERROR\r\n");
    rt(&mut c, "getx k\r\n", "ERROR\r\n");
    rt(&mut c, "get\r\n", "ERROR\r\n");
    rt(&mut c, "set k 0 0\r\n", "ERROR\r\n");
    rt(&mut c, "incr k\r\n", "ERROR\r\n");
    rt(&mut c, "touch k\r\n", "ERROR\r\n");
    rt(&mut c, "delete\r\n", "ERROR\r\n");
    // bare "\n" line endings are accepted on command lines
    rt(
        &mut c,
        "set nl 0 0 1\nx\r\nget nl\n",
        "STORED\r\nVALUE nl 0 1\r\nx\r\nEND\r\n",
    );
    // extra blanks between tokens are ignored
    rt(&mut c, "get   nl    \r\n", "VALUE nl 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn set_get_and_multi_get() {
    let s = server();
    let mut c = s.client();
    rt(&mut c, "set a 0 0 5\r\nhello\r\n", "STORED\r\n");
    rt(&mut c, "get a\r\n", "VALUE a 0 5\r\nhello\r\nEND\r\n");
    rt(&mut c, "get missing\r\n", "END\r\n");
    // flags are opaque 32-bit values
    rt(&mut c, "set b 4294967295 0 3\r\nxyz\r\n", "STORED\r\n");
    rt(&mut c, "set e 123 0 0\r\n\r\n", "STORED\r\n");
    rt(
        &mut c,
        "get a missing b e a\r\n",
        "VALUE a 0 5\r\nhello\r\nVALUE b 4294967295 3\r\nxyz\r\nVALUE e 123 0\r\n\r\n\
         VALUE a 0 5\r\nhello\r\nEND\r\n",
    );
    // binary-safe data: CR, LF, NUL and high bytes inside the value
    let data: Vec<u8> = (0u8..=255)
        .chain(b"\r\n\r\nEND\r\n".iter().copied())
        .collect();
    assert_eq!(c.set("bin", 7, 0, &data), "STORED");
    let v = {
        c.send(b"get bin\r\n");
        c.values()
    };
    assert_eq!(
        v,
        vec![Value {
            key: "bin".into(),
            flags: 7,
            data: data.clone(),
            cas: None
        }]
    );
    // overwrite
    rt(&mut c, "set a 1 0 2\r\nhi\r\n", "STORED\r\n");
    rt(&mut c, "get a\r\n", "VALUE a 1 2\r\nhi\r\nEND\r\n");
    // the longest legal key
    let k250 = long_key(250);
    rt(&mut c, &format!("set {k250} 0 0 1\r\nz\r\n"), "STORED\r\n");
    rt(
        &mut c,
        &format!("get {k250}\r\n"),
        &format!("VALUE {k250} 0 1\r\nz\r\nEND\r\n"),
    );
    // keys may hold any non-blank bytes
    rt(
        &mut c,
        "set k:\u{e9}/\u{2603}|#% 0 0 1\r\nq\r\n",
        "STORED\r\n",
    );
    rt(
        &mut c,
        "get k:\u{e9}/\u{2603}|#%\r\n",
        "VALUE k:\u{e9}/\u{2603}|#% 0 1\r\nq\r\nEND\r\n",
    );
    // a multi-get with more keys than memcached tokenizes at once (24)
    let mut req = String::from("get");
    let mut exp = String::new();
    for i in 0..60 {
        if i % 3 == 0 {
            assert_eq!(
                c.set(&format!("m{i}"), i, 0, format!("v{i}").as_bytes()),
                "STORED"
            );
        }
    }
    for i in 0..60 {
        req.push_str(&format!(" m{i}"));
        if i % 3 == 0 {
            exp.push_str(&format!(
                "VALUE m{i} {i} {}\r\nv{i}\r\n",
                format!("v{i}").len()
            ));
        }
    }
    req.push_str("\r\n");
    exp.push_str("END\r\n");
    rt(&mut c, &req, &exp);
}

#[test]
fn add_replace_append_prepend() {
    let s = server();
    let mut c = s.client();
    rt(&mut c, "add k 5 0 1\r\na\r\n", "STORED\r\n");
    rt(&mut c, "add k 6 0 1\r\nb\r\n", "NOT_STORED\r\n");
    rt(&mut c, "get k\r\n", "VALUE k 5 1\r\na\r\nEND\r\n");
    rt(&mut c, "replace k 7 0 2\r\ncc\r\n", "STORED\r\n");
    rt(&mut c, "replace nokey 7 0 2\r\ncc\r\n", "NOT_STORED\r\n");
    rt(&mut c, "get k nokey\r\n", "VALUE k 7 2\r\ncc\r\nEND\r\n");
    // append/prepend ignore the flags and exptime they are given
    rt(&mut c, "append k 99 0 3\r\n>>>\r\n", "STORED\r\n");
    rt(&mut c, "prepend k 98 0 3\r\n<<<\r\n", "STORED\r\n");
    rt(&mut c, "get k\r\n", "VALUE k 7 8\r\n<<<cc>>>\r\nEND\r\n");
    rt(&mut c, "append nokey 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    rt(&mut c, "prepend nokey 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
    rt(&mut c, "get nokey\r\n", "END\r\n");
    // append of an empty value, append to an empty value
    rt(&mut c, "append k 0 0 0\r\n\r\n", "STORED\r\n");
    rt(&mut c, "set e 0 0 0\r\n\r\n", "STORED\r\n");
    rt(&mut c, "append e 0 0 2\r\nab\r\n", "STORED\r\n");
    rt(
        &mut c,
        "get k e\r\n",
        "VALUE k 7 8\r\n<<<cc>>>\r\nVALUE e 0 2\r\nab\r\nEND\r\n",
    );
    // add on an expired item succeeds
    rt(&mut c, "set x 0 -1 1\r\na\r\n", "STORED\r\n");
    rt(&mut c, "add x 0 0 1\r\nb\r\n", "STORED\r\n");
    rt(&mut c, "get x\r\n", "VALUE x 0 1\r\nb\r\nEND\r\n");
    // append changes the cas unique
    let (_, c1) = c.gets("k").unwrap();
    rt(&mut c, "append k 0 0 1\r\n!\r\n", "STORED\r\n");
    let (d, c2) = c.gets("k").unwrap();
    assert_eq!(d, b"<<<cc>>>!");
    assert_ne!(c1, c2, "append must change the cas unique");
}

#[test]
fn cas_and_gets() {
    let s = server();
    let mut c = s.client();
    rt(&mut c, "cas k 0 0 1 1\r\na\r\n", "NOT_FOUND\r\n");
    rt(&mut c, "set k 3 0 2\r\nv1\r\n", "STORED\r\n");
    let (d, cas1) = c.gets("k").unwrap();
    assert_eq!(d, b"v1");
    assert_ne!(cas1, 0);
    rt(
        &mut c,
        &format!("cas k 4 0 2 {}\r\nv2\r\n", cas1 + 1000),
        "EXISTS\r\n",
    );
    rt(
        &mut c,
        &format!("cas k 4 0 2 {cas1}\r\nv2\r\n"),
        "STORED\r\n",
    );
    rt(
        &mut c,
        &format!("cas k 4 0 2 {cas1}\r\nv3\r\n"),
        "EXISTS\r\n",
    );
    let (d, cas2) = c.gets("k").unwrap();
    assert_eq!(d, b"v2");
    assert_ne!(cas1, cas2);
    rt(&mut c, "get k\r\n", "VALUE k 4 2\r\nv2\r\nEND\r\n");
    // cas 0 never matches an existing item
    rt(&mut c, "cas k 0 0 1 0\r\nz\r\n", "EXISTS\r\n");
    // noreply variants
    rt(&mut c, &format!("cas k 5 0 2 {cas2} noreply\r\nv4\r\n"), "");
    rt(&mut c, "cas k 5 0 2 1 noreply\r\nv5\r\n", "");
    rt(&mut c, "cas nokey 5 0 2 1 noreply\r\nv5\r\n", "");
    rt(&mut c, "get k nokey\r\n", "VALUE k 5 2\r\nv4\r\nEND\r\n");
    // bad cas values
    rt(
        &mut c,
        "cas k 0 0 1 x\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    rt(
        &mut c,
        "cas k 0 0 1 -1\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    rt(&mut c, "cas k 0 0 1\r\n", "ERROR\r\n");
    // gets on several keys: each value carries its own, distinct cas; set
    // bumps them, get does not
    for i in 0..10 {
        assert_eq!(c.set(&format!("g{i}"), i, 0, b"x"), "STORED");
    }
    c.send(b"gets g0 g1 g2 g3 nothere g4 g5 g6 g7 g8 g9\r\n");
    let vals = c.values();
    assert_eq!(vals.len(), 10);
    let mut seen = std::collections::HashSet::new();
    for (i, v) in vals.iter().enumerate() {
        assert_eq!(v.key, format!("g{i}"));
        assert_eq!(v.flags, i as u32);
        assert!(seen.insert(v.cas.unwrap()), "duplicate cas {:?}", v.cas);
    }
    c.send(b"gets g3\r\n");
    assert_eq!(
        c.values()[0].cas,
        vals[3].cas,
        "gets must not change the cas"
    );
    assert_eq!(c.cmd("touch g3 0"), "TOUCHED");
    c.send(b"gets g3\r\n");
    assert_eq!(
        c.values()[0].cas,
        vals[3].cas,
        "touch must not change the cas"
    );
}

#[test]
fn delete() {
    let s = server();
    let mut c = s.client();
    rt(&mut c, "set k 0 0 1\r\na\r\n", "STORED\r\n");
    rt(&mut c, "delete k\r\n", "DELETED\r\n");
    rt(&mut c, "delete k\r\n", "NOT_FOUND\r\n");
    rt(&mut c, "get k\r\n", "END\r\n");
    rt(&mut c, "set k 0 0 1\r\na\r\n", "STORED\r\n");
    rt(&mut c, "delete k noreply\r\n", "");
    rt(&mut c, "delete k noreply\r\n", "");
    rt(&mut c, "get k\r\n", "END\r\n");
    // the legacy "delete <key> 0" is accepted; any other time is not
    rt(&mut c, "set k 0 0 1\r\na\r\n", "STORED\r\n");
    rt(&mut c, "delete k 0\r\n", "DELETED\r\n");
    rt(&mut c, "delete k 0 noreply\r\n", "");
    let usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    rt(&mut c, "delete k 1\r\n", usage);
    rt(&mut c, "delete k x\r\n", usage);
    rt(&mut c, "delete k 0 1\r\n", usage);
    rt(&mut c, "delete k noreply 0\r\n", usage);
    rt(&mut c, "delete a b\r\n", usage);
    rt(&mut c, "delete a b c d e\r\n", "ERROR\r\n"); // memccapable's check
    rt(&mut c, "delete\r\n", "ERROR\r\n");
}

/// Values of a kilobyte and more go from the store to the socket without a
/// copy (ABI v4 held values): a get answered that way must still show the
/// value it found when later commands of the same pipeline replace, append
/// to, increment in place or delete the item before the answer is written.
/// All of it is sent in one write so that it lands in one batch per shard;
/// the keys spread over the shards of other workers too.
#[test]
fn values_read_then_changed_in_the_same_pipeline() {
    let srv = server();
    let mut c = srv.client();
    let mut p = Pipeline::default();
    let value = |key: &str, v: &[u8]| {
        let mut e = format!("VALUE {key} 0 {}\r\n", v.len()).into_bytes();
        e.extend_from_slice(v);
        e.extend_from_slice(b"\r\nEND\r\n");
        e
    };
    for (i, len) in [1500usize, 9000, 1024, 30_000, 100, 4096, 20_000, 1023]
        .into_iter()
        .enumerate()
    {
        let key = format!("held:{i}");
        let old: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        let new: Vec<u8> = (0..len + 7)
            .map(|j| b'A' + ((i * 3 + j) % 26) as u8)
            .collect();
        let appended = [new.as_slice(), b"xyz"].concat();
        let mut num = vec![b'0'; len];
        num[len - 2..].copy_from_slice(b"41");
        let mut bumped = b"42".to_vec();
        bumped.resize(len, b' ');
        let prepended = [b"9".as_slice(), &bumped].concat();
        let get = format!("get {key}");
        p.step(&format!("set {key} 0 0 {len}"), Some(&old), b"STORED\r\n");
        p.step(&get, None, &value(&key, &old));
        p.step(
            &format!("set {key} 0 0 {}", new.len()),
            Some(&new),
            b"STORED\r\n",
        );
        p.step(&get, None, &value(&key, &new));
        p.step(&format!("append {key} 0 0 3"), Some(b"xyz"), b"STORED\r\n");
        p.step(&get, None, &value(&key, &appended));
        p.step(&format!("delete {key}"), None, b"DELETED\r\n");
        p.step(&get, None, b"END\r\n");
        p.step(&format!("set {key} 0 0 {len}"), Some(&num), b"STORED\r\n");
        p.step(&get, None, &value(&key, &num));
        p.step(&format!("incr {key} 1"), None, b"42\r\n");
        p.step(&get, None, &value(&key, &bumped));
        p.step(&format!("prepend {key} 0 0 1"), Some(b"9"), b"STORED\r\n");
        p.step(&get, None, &value(&key, &prepended));
    }
    c.send(&p.req);
    let got = c.exact(p.expected.len());
    if got != p.expected {
        let at = got
            .iter()
            .zip(&p.expected)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let from = at.saturating_sub(60);
        panic!(
            "answers differ at byte {at}:\n got      {:?}\n expected {:?}",
            String::from_utf8_lossy(&got[from..(at + 60).min(got.len())]),
            String::from_utf8_lossy(&p.expected[from..(at + 60).min(p.expected.len())])
        );
    }
    sync(&mut c);
}

/// Commands sent in one write, and the answers they must get.
#[derive(Default)]
struct Pipeline {
    req: Vec<u8>,
    expected: Vec<u8>,
}

impl Pipeline {
    fn step(&mut self, line: &str, data: Option<&[u8]>, answer: &[u8]) {
        self.req.extend_from_slice(line.as_bytes());
        self.req.extend_from_slice(b"\r\n");
        if let Some(d) = data {
            self.req.extend_from_slice(d);
            self.req.extend_from_slice(b"\r\n");
        }
        self.expected.extend_from_slice(answer);
    }
}

#[test]
fn incr_decr() {
    let s = server();
    let mut c = s.client();
    rt(&mut c, "incr n 1\r\n", "NOT_FOUND\r\n");
    rt(&mut c, "decr n 1\r\n", "NOT_FOUND\r\n");
    rt(&mut c, "set n 5 0 2\r\n10\r\n", "STORED\r\n");
    rt(&mut c, "incr n 5\r\n", "15\r\n");
    rt(&mut c, "incr n 0\r\n", "15\r\n");
    rt(&mut c, "decr n 3\r\n", "12\r\n");
    rt(&mut c, "decr n 100\r\n", "0\r\n"); // decr saturates at 0
    rt(
        &mut c,
        "incr n 18446744073709551615\r\n",
        "18446744073709551615\r\n",
    );
    rt(&mut c, "incr n 2\r\n", "1\r\n"); // incr wraps at 2^64
                                         // growing past the stored length
    rt(&mut c, "set g 0 0 2\r\n99\r\n", "STORED\r\n");
    rt(&mut c, "incr g 1\r\n", "100\r\n");
    rt(&mut c, "get g\r\n", "VALUE g 0 3\r\n100\r\nEND\r\n");
    // flags survive; a shrinking decr keeps the number readable
    rt(&mut c, "set d 42 0 3\r\n100\r\n", "STORED\r\n");
    rt(&mut c, "decr d 91\r\n", "9\r\n");
    c.send(b"get d\r\n");
    let v = c.values();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].flags, 42);
    assert_eq!(
        String::from_utf8_lossy(&v[0].data).trim_end(),
        "9",
        "value after decr: {:?}",
        v[0]
    );
    // leading zeros, the biggest value, non-numeric values
    rt(&mut c, "set z 0 0 3\r\n007\r\n", "STORED\r\n");
    rt(&mut c, "incr z 1\r\n", "8\r\n");
    rt(
        &mut c,
        "set big 0 0 20\r\n18446744073709551615\r\n",
        "STORED\r\n",
    );
    rt(&mut c, "incr big 1\r\n", "0\r\n");
    let nonnum = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    rt(&mut c, "set s 0 0 2\r\nab\r\n", "STORED\r\n");
    rt(&mut c, "incr s 1\r\n", nonnum);
    rt(&mut c, "decr s 1\r\n", nonnum);
    rt(&mut c, "set s 0 0 3\r\n12a\r\n", "STORED\r\n");
    rt(&mut c, "incr s 1\r\n", nonnum);
    rt(&mut c, "set s 0 0 0\r\n\r\n", "STORED\r\n");
    rt(&mut c, "incr s 1\r\n", nonnum);
    rt(&mut c, "set s 0 0 2\r\n-1\r\n", "STORED\r\n");
    rt(&mut c, "incr s 1\r\n", nonnum);
    rt(
        &mut c,
        "set s 0 0 21\r\n184467440737095516160\r\n",
        "STORED\r\n",
    );
    rt(&mut c, "incr s 1\r\n", nonnum);
    // bad deltas
    let bad = "CLIENT_ERROR invalid numeric delta argument\r\n";
    rt(&mut c, "incr n x\r\n", bad);
    rt(&mut c, "incr n -1\r\n", bad);
    rt(&mut c, "decr n 18446744073709551616\r\n", bad);
    rt(&mut c, "incr n 1x\r\n", bad);
    // noreply
    rt(&mut c, "set n 0 0 1\r\n5\r\n", "STORED\r\n");
    rt(&mut c, "incr n 10 noreply\r\n", "");
    rt(&mut c, "decr n 3 noreply\r\n", "");
    rt(&mut c, "incr nokey 1 noreply\r\n", "");
    rt(&mut c, "incr n x noreply\r\n", "");
    rt(&mut c, "incr n 0\r\n", "12\r\n");
    // incr changes the cas unique
    let (_, c1) = c.gets("n").unwrap();
    rt(&mut c, "incr n 1\r\n", "13\r\n");
    let (_, c2) = c.gets("n").unwrap();
    assert_ne!(c1, c2, "incr must change the cas unique");
}

#[test]
fn touch_gat_gats() {
    let s = server();
    let mut c = s.client();
    rt(&mut c, "touch k 10\r\n", "NOT_FOUND\r\n");
    rt(&mut c, "set k 9 0 1\r\na\r\n", "STORED\r\n");
    rt(&mut c, "touch k 100\r\n", "TOUCHED\r\n");
    rt(&mut c, "touch k 100 noreply\r\n", "");
    rt(&mut c, "touch nokey 100 noreply\r\n", "");
    rt(
        &mut c,
        "touch k x\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    rt(&mut c, "touch k x noreply\r\n", "");
    rt(&mut c, "gat 100 k\r\n", "VALUE k 9 1\r\na\r\nEND\r\n");
    rt(&mut c, "gat 100 nokey\r\n", "END\r\n");
    rt(
        &mut c,
        "gat x k\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    rt(&mut c, "gat 100\r\n", "END\r\n"); // no keys: an empty answer
    rt(&mut c, "set j 1 0 1\r\nb\r\n", "STORED\r\n");
    rt(
        &mut c,
        "gat 0 k nokey j\r\n",
        "VALUE k 9 1\r\na\r\nVALUE j 1 1\r\nb\r\nEND\r\n",
    );
    let (_, cas_k) = c.gets("k").unwrap();
    let (_, cas_j) = c.gets("j").unwrap();
    rt(
        &mut c,
        "gats 0 j k\r\n",
        &format!("VALUE j 1 1 {cas_j}\r\nb\r\nVALUE k 9 1 {cas_k}\r\na\r\nEND\r\n"),
    );
    // touching with a negative time expires the item: gat still returns it
    // this once
    rt(&mut c, "gat -1 k\r\n", "VALUE k 9 1\r\na\r\nEND\r\n");
    rt(&mut c, "get k\r\n", "END\r\n");
    rt(&mut c, "touch j -1\r\n", "TOUCHED\r\n");
    rt(&mut c, "get j\r\n", "END\r\n");
    rt(&mut c, "touch j 0\r\n", "NOT_FOUND\r\n");
}

#[test]
fn flush_all() {
    let s = server();
    let mut c = s.client();
    for i in 0..20 {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, b"v"), "STORED");
    }
    rt(&mut c, "flush_all\r\n", "OK\r\n");
    for i in 0..20 {
        assert_eq!(c.get(&format!("k{i}")), None, "k{i} survived flush_all");
    }
    // stores right after a flush are kept
    rt(&mut c, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
    rt(&mut c, "get a\r\n", "VALUE a 0 1\r\n1\r\nEND\r\n");
    rt(&mut c, "flush_all 0\r\n", "OK\r\n");
    rt(&mut c, "get a\r\n", "END\r\n");
    rt(&mut c, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
    rt(&mut c, "flush_all noreply\r\n", "");
    rt(&mut c, "get a\r\n", "END\r\n");
    rt(&mut c, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
    rt(&mut c, "flush_all 0 noreply\r\n", "");
    rt(&mut c, "get a\r\n", "END\r\n");
    rt(&mut c, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
    rt(&mut c, "flush_all -1\r\n", "OK\r\n");
    rt(&mut c, "get a\r\n", "END\r\n");
    rt(
        &mut c,
        "flush_all x\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    rt(
        &mut c,
        "flush_all 99999999999999999999\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    rt(
        &mut c,
        "flush_all noreply x\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    // a delayed flush: items are still there at first, gone after the delay
    rt(&mut c, "set d 0 0 1\r\n1\r\n", "STORED\r\n");
    let t0 = Instant::now();
    rt(&mut c, "flush_all 3\r\n", "OK\r\n");
    rt(&mut c, "get d\r\n", "VALUE d 0 1\r\n1\r\nEND\r\n");
    loop {
        if c.get("d").is_none() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "flush_all 3 did not take effect within 6 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "flush_all 3 took effect after only {:?}",
        t0.elapsed()
    );
}

#[test]
fn flush_all_spans_all_shards() {
    let s = Server::start(&["-t", "4"]);
    let mut c = s.client();
    let mut req = Vec::new();
    for i in 0..400 {
        req.extend_from_slice(format!("set key{i} 0 0 1 noreply\r\nx\r\n").as_bytes());
    }
    c.send(&req);
    sync(&mut c);
    assert_eq!(stat_u64(&s.stats(""), "curr_items"), 400);
    rt(&mut c, "flush_all\r\n", "OK\r\n");
    let keys: Vec<String> = (0..400).map(|i| format!("key{i}")).collect();
    c.send(format!("get {}\r\n", keys.join(" ")));
    assert_eq!(c.values(), vec![], "items survived flush_all");
}

#[test]
fn quit_closes_the_connection() {
    let s = server();
    let mut c = s.client();
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    c.send(b"quit\r\n");
    c.expect_closed(Duration::from_secs(5));
    // commands pipelined after quit are not executed
    let mut c = s.client();
    c.send(b"quit\r\nset k 0 0 1\r\nX\r\n");
    c.expect_closed(Duration::from_secs(5));
    let mut c = s.client();
    assert_eq!(c.get("k"), Some(b"v".to_vec()));
    // the server keeps serving
    assert_eq!(s.stats("").get("curr_items").map(String::as_str), Some("1"));
}

#[test]
fn shutdown_needs_dash_a() {
    let mut s = server();
    let mut c = s.client();
    rt(&mut c, "shutdown\r\n", "ERROR: shutdown not enabled\r\n");
    rt(
        &mut c,
        "shutdown graceful\r\n",
        "ERROR: shutdown not enabled\r\n",
    );
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    s.assert_running();
}

#[test]
fn shutdown_with_dash_a_stops_the_server() {
    let mut s = Server::start(&["-A"]);
    let mut c = s.client();
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    c.send(b"shutdown\r\n");
    c.read_until_closed(Duration::from_secs(10));
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server still running 10 s after shutdown");
    assert!(st.success(), "exit status after shutdown: {st}");
    assert!(
        common::Client::try_connect(s.port()).is_err(),
        "port still accepting after shutdown"
    );
}

#[test]
fn cache_memlimit() {
    let s = Server::start(&["-m", "64"]);
    let mut c = s.client();
    rt(&mut c, "cache_memlimit 100\r\n", "OK\r\n");
    assert_eq!(
        stat_u64(&c.stats("settings"), "maxbytes"),
        100 * 1024 * 1024
    );
    assert_eq!(stat_u64(&c.stats(""), "limit_maxbytes"), 100 * 1024 * 1024);
    rt(&mut c, "cache_memlimit 128 noreply\r\n", "");
    assert_eq!(
        stat_u64(&c.stats("settings"), "maxbytes"),
        128 * 1024 * 1024
    );
    let small = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n";
    rt(&mut c, "cache_memlimit 0\r\n", small);
    rt(&mut c, "cache_memlimit 7\r\n", small);
    rt(&mut c, "cache_memlimit\r\n", "ERROR\r\n");
    rt(&mut c, "cache_memlimit x\r\n", "ERROR\r\n");
    rt(&mut c, "cache_memlimit -5\r\n", "ERROR\r\n");
    rt(&mut c, "cache_memlimit 1 2 3\r\n", "ERROR\r\n");
    assert_eq!(
        stat_u64(&c.stats("settings"), "maxbytes"),
        128 * 1024 * 1024
    );
}

/// `verbosity N` sets the level at run time (issue 16): the `-vv` command
/// log starts and stops with it, on connections already open, and `stats
/// settings` shows it. As in memcached, a command is logged at the level it
/// was read with, and `verbosity`'s own answer at the level it sets.
#[test]
fn verbosity_switches_the_command_log_at_run_time() {
    let s = server();
    let mut c = s.client();
    let level = |c: &mut Client| c.stats("settings")["verbosity"].clone();
    assert_eq!(level(&mut c), "0");
    assert_eq!(c.cmd("get vv:before"), "END");
    assert_eq!(c.cmd("verbosity 2"), "OK");
    assert_eq!(level(&mut c), "2");
    assert_eq!(c.cmd("get vv:during"), "END");
    assert_eq!(c.cmd("verbosity 5"), "OK");
    assert_eq!(level(&mut c), "2", "memcached clamps the level to 2");
    assert_eq!(c.cmd("verbosity 0"), "OK");
    assert_eq!(c.cmd("get vv:after"), "END");
    assert_eq!(level(&mut c), "0");
    // This connection's lines (memcached numbers it by its fd).
    let log = s.log();
    let id = log
        .lines()
        .find_map(|l| l.strip_suffix(" get vv:during")?.strip_prefix('<'))
        .unwrap_or_else(|| panic!("no command line logged after `verbosity 2`:\n{log}"))
        .to_string();
    let mine: Vec<&str> = log
        .lines()
        .filter(|l| {
            (l.starts_with('<') || l.starts_with('>'))
                && l[1..].split(' ').next() == Some(id.as_str())
        })
        .collect();
    let want: Vec<String> = [
        ">N OK",
        "<N stats settings",
        "<N get vv:during",
        ">N END",
        "<N verbosity 5",
        ">N OK",
        "<N stats settings",
        "<N verbosity 0",
    ]
    .iter()
    .map(|l| l.replacen('N', &id, 1))
    .collect();
    assert_eq!(mine, want, "log:\n{log}");
}

// ------------------------------------------------------------ stats

#[test]
fn stats_general_counts_exactly() {
    let mut s = Server::start(&["-t", "2", "-m", "32", "-c", "500"]);
    let pid = s.stats("")["pid"].clone();
    let mut c = s.client();
    let before = c.stats("");
    for k in [
        "pid",
        "uptime",
        "time",
        "version",
        "pointer_size",
        "rusage_user",
        "rusage_system",
        "max_connections",
        "curr_connections",
        "total_connections",
        "rejected_connections",
        "cmd_get",
        "cmd_set",
        "cmd_flush",
        "cmd_touch",
        "get_hits",
        "get_misses",
        "get_expired",
        "get_flushed",
        "delete_misses",
        "delete_hits",
        "incr_misses",
        "incr_hits",
        "decr_misses",
        "decr_hits",
        "cas_misses",
        "cas_hits",
        "cas_badval",
        "touch_hits",
        "touch_misses",
        "bytes_read",
        "bytes_written",
        "limit_maxbytes",
        "accepting_conns",
        "threads",
        "bytes",
        "curr_items",
        "total_items",
        "evictions",
        "reclaimed",
    ] {
        assert!(before.contains_key(k), "stats lacks {k}: {before:?}");
    }
    assert!(s.is_running());
    assert_eq!(pid, before["pid"]);
    let t = stat_u64(&before, "time") as i64;
    assert!(
        (t - now_unix()).abs() <= 2,
        "stats time {t} vs now {}",
        now_unix()
    );
    assert_eq!(stat_u64(&before, "threads"), 2);
    assert_eq!(stat_u64(&before, "limit_maxbytes"), 32 * 1024 * 1024);
    assert_eq!(stat_u64(&before, "max_connections"), 500);
    assert_eq!(stat_u64(&before, "curr_items"), 0);
    assert_eq!(
        before["version"],
        c.cmd("version").trim_start_matches("VERSION ")
    );

    // a known sequence of commands, then exact counter deltas
    for k in ["a", "b", "c"] {
        assert_eq!(c.set(k, 0, 0, b"12"), "STORED");
    }
    assert_eq!(c.store("add", "a", 0, 0, b"x"), "NOT_STORED"); // cmd_set +1
    c.send(b"get a b nokey\r\n"); // cmd_get +3, hits 2, misses 1
    assert_eq!(c.values().len(), 2);
    assert_eq!(c.get("nokey2"), None); // cmd_get +1, misses +1
    assert_eq!(c.cmd("delete a"), "DELETED");
    assert_eq!(c.cmd("delete a"), "NOT_FOUND");
    assert_eq!(c.cmd("incr b 1"), "13");
    assert_eq!(c.cmd("incr nokey 1"), "NOT_FOUND");
    assert_eq!(c.cmd("decr b 1"), "12");
    assert_eq!(c.cmd("decr nokey 1"), "NOT_FOUND");
    assert_eq!(c.cmd("touch b 0"), "TOUCHED");
    assert_eq!(c.cmd("touch nokey 0"), "NOT_FOUND");
    let (_, cas) = c.gets("c").unwrap(); // cmd_get +1, hit
    c.send(format!("cas c 0 0 1 {}\r\nz\r\n", cas + 1)); // badval, cmd_set +1
    assert_eq!(c.line(), "EXISTS");
    c.send(format!("cas c 0 0 1 {cas}\r\nz\r\n")); // hit, cmd_set +1
    assert_eq!(c.line(), "STORED");
    c.send(b"cas nokey 0 0 1 1\r\nz\r\n"); // miss, cmd_set +1
    assert_eq!(c.line(), "NOT_FOUND");
    c.send(b"gat 0 b nokey\r\n"); // cmd_touch +2, touch hit 1 miss 1, not get_hits/misses
    assert_eq!(c.values().len(), 1);
    assert_eq!(c.cmd("flush_all"), "OK");
    let after = c.stats("");
    let d = |k: &str| stat_u64(&after, k) as i64 - stat_u64(&before, k) as i64;
    let expect: &[(&str, i64)] = &[
        ("cmd_set", 7),
        ("cmd_get", 5),
        ("get_hits", 3),
        ("get_misses", 2),
        ("delete_hits", 1),
        ("delete_misses", 1),
        ("incr_hits", 1),
        ("incr_misses", 1),
        ("decr_hits", 1),
        ("decr_misses", 1),
        ("touch_hits", 2),
        ("touch_misses", 2),
        ("cmd_touch", 4),
        ("cas_hits", 1),
        ("cas_misses", 1),
        ("cas_badval", 1),
        ("cmd_flush", 1),
        ("total_items", 4), // 3 sets + 1 cas; incr/decr in place do not count
    ];
    let mut wrong = Vec::new();
    for (k, want) in expect {
        if d(k) != *want {
            wrong.push(format!("{k}: +{} (expected +{want})", d(k)));
        }
    }
    assert!(wrong.is_empty(), "stat deltas wrong: {wrong:?}");
    assert_eq!(
        stat_u64(&after, "curr_items"),
        2,
        "curr_items counts flushed items until they are reclaimed"
    );
    assert!(d("bytes_read") > 200, "bytes_read +{}", d("bytes_read"));
    assert!(
        d("bytes_written") > 100,
        "bytes_written +{}",
        d("bytes_written")
    );
    assert!(stat_u64(&after, "curr_connections") >= 1);
    // stats reset zeroes the counters
    assert_eq!(c.cmd("stats reset"), "RESET");
    let r = c.stats("");
    for k in [
        "cmd_get",
        "cmd_set",
        "get_hits",
        "get_misses",
        "delete_hits",
        "incr_hits",
        "cas_hits",
        "touch_hits",
    ] {
        assert_eq!(stat_u64(&r, k), 0, "{k} after stats reset");
    }
    // the unknown and malformed forms
    rt(&mut c, "stats nosuchthing\r\n", "ERROR\r\n");
    rt(
        &mut c,
        "stats detail\r\n",
        "CLIENT_ERROR usage: stats detail on|off|dump\r\n",
    );
    s.assert_running();
}

#[test]
fn stats_curr_items_and_bytes() {
    let s = server();
    let mut c = s.client();
    for i in 0..50 {
        assert_eq!(c.set(&format!("key{i}"), 0, 0, &[b'v'; 100]), "STORED");
    }
    let st = c.stats("");
    assert_eq!(stat_u64(&st, "curr_items"), 50);
    assert_eq!(stat_u64(&st, "total_items"), 50);
    let bytes = stat_u64(&st, "bytes");
    assert!(
        (50 * 100..=50 * 400).contains(&bytes),
        "bytes = {bytes} for 50 items of 100 B"
    );
    for i in 0..10 {
        assert_eq!(c.cmd(&format!("delete key{i}")), "DELETED");
    }
    let st2 = c.stats("");
    assert_eq!(stat_u64(&st2, "curr_items"), 40);
    assert!(stat_u64(&st2, "bytes") < bytes);
}

#[test]
fn stats_settings() {
    let s = Server::start(&[
        "-m",
        "48",
        "-c",
        "321",
        "-t",
        "3",
        "-I",
        "2m",
        "-o",
        "idle_timeout=77",
    ]);
    let st = s.stats("settings");
    let want: &[(&str, &str)] = &[
        ("maxbytes", "50331648"),
        ("maxconns", "321"),
        ("tcpport", &s.port().to_string()),
        ("num_threads", "3"),
        ("item_size_max", "2097152"),
        ("cas_enabled", "yes"),
        ("evictions", "on"),
        ("idle_timeout", "77"),
        ("flush_enabled", "yes"),
        ("shutdown_command", "no"),
        ("reqs_per_event", "20"),
    ];
    let mut wrong = Vec::new();
    for (k, v) in want {
        if st.get(*k).map(String::as_str) != Some(*v) {
            wrong.push(format!("{k}={:?} (expected {v})", st.get(*k)));
        }
    }
    assert!(wrong.is_empty(), "stats settings: {wrong:?}");
    let st = Server::start(&["-C", "-M", "-A"]).stats("settings");
    assert_eq!(st.get("cas_enabled").map(String::as_str), Some("no"));
    assert_eq!(st.get("evictions").map(String::as_str), Some("off"));
    assert_eq!(st.get("shutdown_command").map(String::as_str), Some("yes"));
}

#[test]
fn stats_items_and_slabs() {
    let s = server();
    let mut c = s.client();
    for i in 0..30 {
        let size = if i % 2 == 0 { 10 } else { 2000 };
        assert_eq!(c.set(&format!("key{i}"), 0, 0, &vec![b'x'; size]), "STORED");
    }
    let items = c.stats("items");
    let mut total = 0;
    let mut classes = 0;
    for (k, v) in &items {
        let parts: Vec<&str> = k.split(':').collect();
        assert!(
            parts.len() == 3 && parts[0] == "items",
            "odd stats items line {k} {v}"
        );
        parts[1]
            .parse::<u32>()
            .unwrap_or_else(|_| panic!("bad class id in {k}"));
        if parts[2] == "number" {
            total += v.parse::<u64>().unwrap();
            classes += 1;
        }
    }
    assert_eq!(total, 30, "sum of items:N:number: {items:?}");
    // How items are grouped into classes is the storage plugin's choice
    // (memcached's slab allocator uses one class per size band; the default
    // store keeps one arena), so only the totals are compared.
    assert!(classes >= 1, "no class reported: {items:?}");
    let slabs = c.stats("slabs");
    assert!(stat_u64(&slabs, "active_slabs") >= 1, "{slabs:?}");
    assert!(stat_u64(&slabs, "total_malloced") > 0, "{slabs:?}");
    let used: u64 = slabs
        .iter()
        .filter(|(k, _)| k.ends_with(":used_chunks"))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(used, 30, "sum of N:used_chunks: {slabs:?}");
    assert!(
        slabs.keys().any(|k| k.ends_with(":chunk_size")),
        "{slabs:?}"
    );
}

#[test]
fn stats_conns_lists_this_connection() {
    let s = server();
    let mut c = s.client();
    let mut other = s.client();
    sync(&mut other);
    let conns = c.stats("conns");
    let addrs: Vec<&String> = conns
        .iter()
        .filter(|(k, _)| k.ends_with(":addr"))
        .map(|(_, v)| v)
        .collect();
    let listen = format!("tcp:127.0.0.1:{}", s.port());
    let clients = conns
        .iter()
        .filter(|(k, v)| k.ends_with(":listen_addr") && **v == listen)
        .count();
    assert!(
        clients >= 2,
        "stats conns shows {clients} client connections on {listen}: {conns:?}"
    );
    assert!(
        addrs.len() >= 3,
        "expected the listener and 2 clients: {conns:?}"
    );
    assert!(conns.keys().any(|k| k.ends_with(":state")), "{conns:?}");
    assert!(
        conns.keys().any(|k| k.ends_with(":secs_since_last_cmd")),
        "{conns:?}"
    );
}

/// `stats [SUB]`'s names, in the order the server prints them.
fn stat_names(c: &mut Client, sub: &str) -> Vec<String> {
    if sub.is_empty() {
        c.send("stats\r\n");
    } else {
        c.send(format!("stats {sub}\r\n"));
    }
    c.until_end()
        .iter()
        .map(|l| {
            let rest = l
                .strip_prefix("STAT ")
                .unwrap_or_else(|| panic!("stats {sub}: not a `STAT name value` line: {l:?}"));
            let (name, _value) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("stats {sub}: no value in {l:?}"));
            assert!(!name.is_empty(), "stats {sub}: odd line {l:?}");
            name.to_string()
        })
        .collect()
}

/// Issue 17: `stats`, `stats items`, `stats slabs` and `stats sizes` print
/// exactly memcached 1.6.18's names in memcached's order, for the same
/// flags and the same items (small ones, which memcached keeps in its first
/// slab class: the default store reports its items as one class).
#[cfg(target_os = "linux")]
#[test]
fn stats_names_match_memcached_group_by_group() {
    // memcached prints some names only under a setting: each set turns
    // some of them on or off.
    let flag_sets: [&[&str]; 6] = [
        &[],
        &["-t", "2", "-o", "idle_timeout=30"],
        &["-c", "64", "-m", "16", "-U", "0", "-R", "5"],
        &["-o", "no_lru_maintainer,no_lru_crawler"],
        &["-o", "no_maxconns_fast,no_slab_reassign,temporary_ttl=60"],
        &["-o", "no_modern"],
    ];
    for flags in flag_sets {
        let ours = Server::start(flags);
        let theirs = Server::start_memcached(flags);
        let mut names: Vec<HashMap<&str, Vec<String>>> = Vec::new();
        for s in [&ours, &theirs] {
            let mut c = s.client();
            let mut by_group = HashMap::new();
            // Before any item: memcached lists no class at all.
            by_group.insert("items (empty)", stat_names(&mut c, "items"));
            by_group.insert("slabs (empty)", stat_names(&mut c, "slabs"));
            for i in 0..5 {
                assert_eq!(c.set(&format!("k{i}"), 0, 0, b"small"), "STORED");
            }
            assert_eq!(c.get("k1").as_deref(), Some(&b"small"[..]));
            assert_eq!(c.cmd("delete k2"), "DELETED");
            for g in ["", "items", "slabs", "sizes"] {
                by_group.insert(g, stat_names(&mut c, g));
            }
            names.push(by_group);
        }
        for (g, want) in &names[1] {
            let got = &names[0][g];
            let missing: Vec<&String> = want.iter().filter(|n| !got.contains(n)).collect();
            let extra: Vec<&String> = got.iter().filter(|n| !want.contains(n)).collect();
            assert!(
                got == want,
                "flags {flags:?}, stats {g}: names differ from memcached's\n missing {missing:?}\n \
                 extra {extra:?}\n got  {got:?}\n want {want:?}"
            );
        }
    }
}

/// `stats conns` as memcached prints it: listening and UDP sockets, then
/// the clients, each by its file descriptor (checked against /proc), with
/// memcached's fields and states: a client that has sent nothing is in
/// conn_new_cmd, one reading a value conn_nread, one idle after a command
/// conn_read, the one asking conn_parse_cmd.
#[cfg(target_os = "linux")]
#[test]
fn stats_conns_match_memcached() {
    fn shape(s: &Server, udp: u16) -> Vec<String> {
        let _fresh = std::net::TcpStream::connect(("127.0.0.1", s.port())).unwrap();
        let mut nread = s.client();
        nread.send("set k 0 0 10\r\nabc");
        let mut idle = s.client();
        assert_eq!(idle.get("k"), None);
        std::thread::sleep(Duration::from_millis(300));
        let mut c = s.client();
        c.send("stats conns\r\n");
        let lines = c.until_end();
        let mut ids: Vec<u64> = Vec::new();
        let mut out = Vec::new();
        for l in &lines {
            let rest = l.strip_prefix("STAT ").expect("STAT line");
            let (name, value) = rest.split_once(' ').expect("name value");
            let (id, field) = name.split_once(':').expect("id:field");
            let id: u64 = id.parse().unwrap_or_else(|_| panic!("id in {l:?}"));
            if ids.last() != Some(&id) {
                assert!(
                    ids.last().is_none_or(|&last| last < id),
                    "not in descriptor order: {lines:?}"
                );
                // The id is the socket's file descriptor.
                let target = std::fs::read_link(format!("/proc/{}/fd/{id}", s.pid()))
                    .unwrap_or_else(|e| panic!("{}: no descriptor {id}: {e}", s.name()));
                assert!(
                    target.to_string_lossy().starts_with("socket:"),
                    "{}: descriptor {id} is {target:?}",
                    s.name()
                );
                ids.push(id);
            }
            let value = match field {
                "secs_since_last_cmd" => {
                    let secs: u64 = value.parse().expect("seconds");
                    assert!(secs < 60, "{l}");
                    "N".to_string()
                }
                "addr" | "listen_addr" => {
                    let v = value
                        .replace(&format!("tcp:127.0.0.1:{}", s.port()), "tcp:PORT")
                        .replace(&format!("udp:127.0.0.1:{udp}"), "udp:PORT");
                    if v.starts_with("tcp:127.0.0.1:") {
                        "tcp:CLIENT".into()
                    } else {
                        v
                    }
                }
                _ => value.to_string(),
            };
            out.push(format!("#{}:{field} {value}", ids.len()));
        }
        out
    }
    let (udp_ours, udp_theirs) = (common::free_port(), common::free_port());
    let ours = Server::start(&["-t", "2", "-U", &udp_ours.to_string()]);
    let theirs = Server::start_memcached(&["-t", "2", "-U", &udp_theirs.to_string()]);
    let got = shape(&ours, udp_ours);
    let want = shape(&theirs, udp_theirs);
    assert_eq!(got, want, "stats conns differs from memcached's");
    assert!(
        want.iter().any(|l| l.ends_with(":state conn_nread"))
            && want.iter().any(|l| l.ends_with(":state conn_new_cmd"))
            && want.iter().any(|l| l.ends_with(":state conn_read"))
            && want.iter().any(|l| l.ends_with(":UDP UDP")),
        "{want:?}"
    );
}

/// `stats plugin`: wasmcached's own figures, which `stats` (memcached's
/// group) no longer shows; and the default store's memcached figures in
/// `stats` are its real ones.
#[test]
fn stats_plugin_has_wasmcached_figures() {
    if common::testing_memcached() {
        return; // memcached has no such group (it answers ERROR)
    }
    let s = Server::start(&["-t", "2"]);
    let mut c = s.client();
    let mine = [
        "plugin",
        "plugin_deadline_ms",
        "plugin_cache",
        "io",
        "metrics_listen",
        "hotkeys_sample",
        "hotkeys_window",
        "shards",
        "plugin_traps",
        "plugin_restarts",
        "plugin_renewals",
        "plugin_reloads",
        "plugin_reload_failures",
        "plugin_restart_failures",
        "plugin_backoffs",
        "plugin_shards_backing_off",
    ];
    // The default store's stats are memcached's but for two of its own,
    // then its metrics (ABI v8), then the time spent in it, summed over
    // the shards.
    let mut want = mine.to_vec();
    want.extend([
        "segments",
        "segment_size",
        "metric:index_resizes_total",
        "metric:crawler_items_checked_total",
        "metric:crawler_reclaimed_total",
        "metric:stored_value_bytes:count",
        "metric:stored_value_bytes:sum",
        "metric:segments",
        "metric:promoted_total",
        "metric:ghost_hits_total",
        "metric:compactions_total",
        "metric:used_bytes",
        "metric:budget_bytes",
        "metric:index_slots",
        // The host's measure of the plugin, summed like its own figures.
        "plugin_guest_time_us",
    ]);
    assert_eq!(stat_names(&mut c, "plugin"), want);
    let p = c.stats("plugin");
    assert_eq!(p["plugin"], "default-store");
    assert_eq!(p["plugin_deadline_ms"], "1000");
    assert_eq!(p["metrics_listen"], "off");
    assert_eq!(p["hotkeys_sample"], "100");
    assert_eq!(p["metric:budget_bytes"], (64u64 << 20).to_string());
    assert_eq!(p["shards"], "2");
    assert_eq!(p["plugin_traps"], "0");
    let general = stat_names(&mut c, "");
    for n in mine {
        assert!(!general.contains(&n.to_string()), "stats shows {n}");
    }
    for i in 0..20 {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, b"v"), "STORED");
    }
    // Real figures: the store's index size, its background scan passes and
    // slices (one a second per shard), the connections' buffers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = c.stats("");
        if stat_u64(&st, "lru_crawler_starts") >= 1 || Instant::now() > deadline {
            break st;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(stat_u64(&st, "hash_power_level") >= 1, "{st:?}");
    assert!(stat_u64(&st, "hash_bytes") >= 1 << stat_u64(&st, "hash_power_level"));
    assert!(stat_u64(&st, "lru_crawler_starts") >= 1, "{st:?}");
    assert!(stat_u64(&st, "lru_maintainer_juggles") >= 1, "{st:?}");
    assert!(stat_u64(&st, "connection_structures") >= 2, "{st:?}");
    assert!(stat_u64(&st, "read_buf_count") >= 1, "{st:?}");
    assert!(stat_u64(&st, "read_buf_bytes") >= 16384, "{st:?}");
    assert!(stat_u64(&st, "response_obj_count") >= 1, "{st:?}");
    assert_eq!(st["accepting_conns"], "1");
    assert_eq!(st["listen_disabled_num"], "0");
    if cfg!(target_os = "linux") {
        // epoll, eventfd and timerfd descriptors of the reactors, at least
        assert!(stat_u64(&st, "reserved_fds") >= 3, "{st:?}");
    }
}

/// Out of file descriptors, the server stops accepting for a while instead
/// of spinning on the listener (memcached's `listen_disabled_num`,
/// `time_in_listen_disabled_us`), and accepts the waiting clients once
/// descriptors are free again.
#[cfg(target_os = "linux")]
#[test]
fn listening_pauses_when_out_of_descriptors() {
    let s = Server::start(&["-t", "1", "-c", "1000"]);
    let mut c = s.client();
    sync(&mut c);
    let pid = s.pid() as libc::pid_t;
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    // The server's descriptor limit: read it, or set it and return the old one.
    let prlimit = |new: Option<libc::rlimit>| -> libc::rlimit {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let newp = new
            .as_ref()
            .map_or(std::ptr::null(), |n| n as *const libc::rlimit);
        // SAFETY: `newp` is null or points to a valid rlimit, `old` is writable.
        let r = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, newp, &mut old) };
        assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
        old
    };
    let orig = prlimit(None);
    let before = c.stats("");
    // Room for a couple of new descriptors at most.
    prlimit(Some(libc::rlimit {
        rlim_cur: open + 2,
        rlim_max: orig.rlim_max,
    }));
    let t0 = Instant::now();
    // (memcached shrinks its backlog to 0 while it does not accept: later
    // connects may time out there)
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.port()));
    let clients: Vec<std::net::TcpStream> = (0..8)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let during = c.stats("");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = |st: &HashMap<String, String>| -> f64 {
        st["rusage_user"].parse::<f64>().unwrap() + st["rusage_system"].parse::<f64>().unwrap()
    };
    prlimit(Some(orig));
    assert!(
        stat_u64(&during, "listen_disabled_num") >= 1,
        "{during:?}\n{}",
        s.log_tail(20)
    );
    assert!(
        cpu(&during) - cpu(&before) < wall / 2.0,
        "the server spun: {:.2} s of CPU in {wall:.2} s",
        cpu(&during) - cpu(&before)
    );
    drop(clients);
    // Descriptors are back: accepting resumes, the pause was timed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = c.stats("");
        if st["accepting_conns"] == "1" && stat_u64(&st, "time_in_listen_disabled_us") > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "accepting did not resume: {st:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut again = s.client();
    sync(&mut again);
}

// ------------------------------------------------------------ noreply

#[test]
fn noreply_on_every_command_that_takes_it() {
    let s = server();
    let mut c = s.client();
    // everything in one write: no answer at all may come back
    let mut req = Vec::new();
    req.extend_from_slice(b"set a 1 0 1 noreply\r\na\r\n");
    req.extend_from_slice(b"set a 1 0 1 noreply\r\nA\r\n");
    req.extend_from_slice(b"add a 0 0 1 noreply\r\nb\r\n"); // NOT_STORED, silent
    req.extend_from_slice(b"add b 2 0 1 noreply\r\nb\r\n");
    req.extend_from_slice(b"replace b 3 0 1 noreply\r\nB\r\n");
    req.extend_from_slice(b"replace nokey 3 0 1 noreply\r\nB\r\n");
    req.extend_from_slice(b"append a 0 0 1 noreply\r\n>\r\n");
    req.extend_from_slice(b"prepend a 0 0 1 noreply\r\n<\r\n");
    req.extend_from_slice(b"append nokey 0 0 1 noreply\r\n>\r\n");
    req.extend_from_slice(b"set n 0 0 2 noreply\r\n10\r\n");
    req.extend_from_slice(b"incr n 5 noreply\r\n");
    req.extend_from_slice(b"decr n 2 noreply\r\n");
    req.extend_from_slice(b"incr nokey 1 noreply\r\n");
    req.extend_from_slice(b"set d 0 0 1 noreply\r\nd\r\n");
    req.extend_from_slice(b"delete d noreply\r\n");
    req.extend_from_slice(b"delete d noreply\r\n");
    req.extend_from_slice(b"touch b 1000 noreply\r\n");
    req.extend_from_slice(b"touch nokey 1000 noreply\r\n");
    req.extend_from_slice(b"cas b 0 0 1 1 noreply\r\nX\r\n"); // EXISTS, silent
    req.extend_from_slice(b"verbosity 0 noreply\r\n");
    req.extend_from_slice(b"cache_memlimit 100 noreply\r\n");
    c.send(&req);
    let (got, closed) = c.drain(Duration::from_millis(500));
    assert!(
        !closed && got.is_empty(),
        "noreply commands answered {:?}",
        String::from_utf8_lossy(&got)
    );
    rt(
        &mut c,
        "get a b n d nokey\r\n",
        "VALUE a 1 3\r\n<A>\r\nVALUE b 3 1\r\nB\r\nVALUE n 0 2\r\n13\r\nEND\r\n",
    );
    let (_, cas) = c.gets("b").unwrap();
    rt(&mut c, &format!("cas b 5 0 1 {cas} noreply\r\nY\r\n"), "");
    rt(&mut c, "get b\r\n", "VALUE b 5 1\r\nY\r\nEND\r\n");
    rt(&mut c, "flush_all noreply\r\n", "");
    rt(&mut c, "get a b n\r\n", "END\r\n");
}

// ------------------------------------------------------------ malformed input

#[test]
fn keys_longer_than_250_bytes() {
    let s = server();
    let k = long_key(251);
    let bad = "CLIENT_ERROR bad command line format\r\n";
    // one fresh connection per case: memcached 1.6 drops earlier unsent
    // answers on a connection when a get fails on a long key
    let cases: Vec<(String, String)> = vec![
        (format!("get {k}\r\n"), bad.to_string()),
        (format!("get a {k}\r\n"), bad.to_string()),
        (format!("gets {k}\r\n"), bad.to_string()),
        (format!("gat 0 {k}\r\n"), bad.to_string()),
        (format!("gats 0 {k}\r\n"), bad.to_string()),
        (format!("delete {k}\r\n"), bad.to_string()),
        (format!("incr {k} 1\r\n"), bad.to_string()),
        (format!("decr {k} 1\r\n"), bad.to_string()),
        (format!("touch {k} 1\r\n"), bad.to_string()),
        // the data line is not swallowed: it is read as a command
        (format!("set {k} 0 0 1\r\nx\r\n"), format!("{bad}ERROR\r\n")),
        (format!("add {k} 0 0 1\r\nx\r\n"), format!("{bad}ERROR\r\n")),
        (
            format!("replace {k} 0 0 1\r\nx\r\n"),
            format!("{bad}ERROR\r\n"),
        ),
        (
            format!("append {k} 0 0 1\r\nx\r\n"),
            format!("{bad}ERROR\r\n"),
        ),
        (
            format!("prepend {k} 0 0 1\r\nx\r\n"),
            format!("{bad}ERROR\r\n"),
        ),
        (
            format!("cas {k} 0 0 1 1\r\nx\r\n"),
            format!("{bad}ERROR\r\n"),
        ),
    ];
    for (req, want) in &cases {
        let mut c = s.client();
        rt(&mut c, req, want);
        assert_eq!(c.set("after", 0, 0, b"ok"), "STORED", "after {req:?}");
    }
    let mut c = s.client();
    let k1000 = long_key(1000);
    rt(&mut c, &format!("get {k1000}\r\n"), bad);
    assert_eq!(s.stats("")["curr_items"], "1");
}

#[test]
fn bad_numbers_and_token_counts() {
    let s = server();
    let mut c = s.client();
    let fmt = "CLIENT_ERROR bad command line format\r\n";
    rt(&mut c, "set k 0 0 1\r\nv\r\n", "STORED\r\n");
    // rejected command lines: the data line that follows is read as a command
    for line in [
        "set k x 0 1",
        "set k 0 x 1",
        "set k 0 0 x",
        "set k -1 0 1",
        "set k 0 0 1a",
        "set k 1.5 0 1",
        "set k 0 0 -1",
        "set k 0 0 99999999999999999999",
        "set k 99999999999999999999 0 1",
        "set k 0 99999999999999999999 1",
        "add k 0 0 z",
        "replace k z 0 1",
        "append k 0 z 1",
        "prepend k 0 0 -5",
        "cas k 0 0 1 z",
        "cas k 0 0 z 1",
    ] {
        rt(
            &mut c,
            &format!("{line}\r\nv\r\n"),
            &format!("{fmt}ERROR\r\n"),
        );
    }
    // wrong token counts
    for line in [
        "set k 0 0",
        "set k 0 0 1 noreply extra",
        "set k 0 0 1 2 3",
        "cas k 0 0 1",
        "add k",
        "set",
    ] {
        rt(&mut c, &format!("{line}\r\n"), "ERROR\r\n");
    }
    rt(&mut c, "incr k\r\n", "ERROR\r\n");
    rt(&mut c, "incr k 1 2 3\r\n", "ERROR\r\n");
    rt(&mut c, "touch k 1 2 3\r\n", "ERROR\r\n");
    // the value is untouched
    rt(&mut c, "get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n");
    // numbers with leading zeros or a plus sign are numbers
    rt(&mut c, "set k 007 0 01\r\nw\r\n", "STORED\r\n");
    rt(&mut c, "get k\r\n", "VALUE k 7 1\r\nw\r\nEND\r\n");
    rt(&mut c, "set k 0 0 +1\r\nu\r\n", "STORED\r\n");
    rt(&mut c, "get k\r\n", "VALUE k 0 1\r\nu\r\nEND\r\n");
}

#[test]
fn bad_data_chunks() {
    let s = server();
    let mut c = s.client();
    rt(&mut c, "set k 0 0 1\r\nv\r\n", "STORED\r\n");
    // one byte too many: the declared length + 2 bytes are consumed, the
    // rest ("\n") is an empty command line
    rt(
        &mut c,
        "set k 0 0 5\r\nhelloo\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    // too short: the next bytes are taken as data
    rt(
        &mut c,
        "set k 0 0 5\r\nhel\r\nXY\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    // data terminated by a bare \n
    rt(
        &mut c,
        "set k 0 0 1\r\nb\nget k\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    // a failed set leaves the old value in place
    rt(&mut c, "get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n");
    // noreply hides the bad data chunk error, not the leftovers
    rt(&mut c, "set k 0 0 1 noreply\r\nab\r\n", "ERROR\r\n");
    for verb in ["add x", "replace k", "append k", "prepend k", "cas k"] {
        let extra = if verb.starts_with("cas") { " 1" } else { "" };
        rt(
            &mut c,
            &format!("{verb} 0 0 2{extra}\r\nabc\r\n"),
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        );
    }
    rt(&mut c, "get k x\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn overlong_lines() {
    let s = server();
    // more than 2 KiB without a newline that is not a get: the server drops
    // the connection
    let mut c = s.client();
    c.send(vec![b'a'; 4096]);
    c.expect_closed(Duration::from_secs(5));
    let mut c = s.client();
    c.send(format!("set k 0 0 1{}", " ".repeat(4096)));
    c.expect_closed(Duration::from_secs(5));
    // long lines that do end in a newline are just bad commands
    let mut c = s.client();
    rt(&mut c, &format!("{}\r\n", "b".repeat(1500)), "ERROR\r\n");
    // a multi-get line may be far longer than that (100 KiB+)
    let mut c = s.client();
    for i in 0..10 {
        assert_eq!(
            c.set(&format!("key{i}"), i, 0, format!("{i}").as_bytes()),
            "STORED"
        );
    }
    let mut req = String::from("get");
    let mut want = String::new();
    for j in 0..10000 {
        let i = j % 13;
        req.push_str(&format!(" key{i}"));
        if i < 10 {
            want.push_str(&format!("VALUE key{i} {i} 1\r\n{i}\r\n"));
        }
    }
    req.push_str("\r\n");
    want.push_str("END\r\n");
    assert!(req.len() > 50_000);
    rt(&mut c, &req, &want);
    // ... also when it arrives in pieces
    let mut c = s.client();
    let bytes = req.as_bytes();
    for chunk in bytes.chunks(7000) {
        c.send(chunk);
        std::thread::sleep(Duration::from_millis(5));
    }
    expect_bytes(&mut c, "multi-get in pieces", want.as_bytes());
    sync(&mut c);
}

#[test]
fn malformed_input_leaves_the_connection_usable() {
    let s = server();
    let mut c = s.client();
    let garbage: &[&[u8]] = &[
        b"\x00\x01\x02\r\n",
        b"\xff\xfe\xfd\r\n",
        b"   \r\n",
        b"\r\n",
        b"\n",
        b"get\r\n",
        b"set k\r\n",
        b"incr\r\n",
        b"cas\r\n",
        b"gat\r\n",
        b"flush_all a b c\r\n",
    ];
    for g in garbage {
        c.send(g);
        let l = c.line();
        assert!(
            l.starts_with("ERROR") || l.starts_with("CLIENT_ERROR"),
            "{:?} answered {l:?}",
            g
        );
        assert_eq!(c.set("ok", 0, 0, b"1"), "STORED", "after {g:?}");
    }
}

// ------------------------------------------------------------ pipelining, sharding, size

#[test]
fn a_thousand_pipelined_commands_answer_in_order() {
    let s = Server::start(&["-t", "4"]);
    let mut c = s.client();
    let mut req = Vec::new();
    let mut want = Vec::new();
    let mut rng = Rng::new(7);
    let mut model: HashMap<String, Vec<u8>> = HashMap::new();
    for i in 0..1000 {
        let key = format!("key{}", rng.below(64));
        match rng.below(5) {
            0 | 1 => {
                let val = format!("v{i}");
                req.extend_from_slice(
                    format!("set {key} 0 0 {}\r\n{val}\r\n", val.len()).as_bytes(),
                );
                want.extend_from_slice(b"STORED\r\n");
                model.insert(key, val.into_bytes());
            }
            2 | 3 => {
                req.extend_from_slice(format!("get {key}\r\n").as_bytes());
                if let Some(v) = model.get(&key) {
                    want.extend_from_slice(format!("VALUE {key} 0 {}\r\n", v.len()).as_bytes());
                    want.extend_from_slice(v);
                    want.extend_from_slice(b"\r\n");
                }
                want.extend_from_slice(b"END\r\n");
            }
            _ => {
                req.extend_from_slice(format!("delete {key}\r\n").as_bytes());
                if model.remove(&key).is_some() {
                    want.extend_from_slice(b"DELETED\r\n");
                } else {
                    want.extend_from_slice(b"NOT_FOUND\r\n");
                }
            }
        }
    }
    c.send(&req); // one write
    expect_bytes(&mut c, "1000 pipelined commands", &want);
    sync(&mut c);
}

/// Large values leave the server straight from the shard's memory (no copy
/// into the write buffer) when their reply is first in line, and are buffered
/// otherwise. Mixed with small values, pipelined, over several shards and
/// with a client that stops reading for a while (so the socket takes only
/// part of a value), every byte must still arrive in request order.
#[test]
fn large_values_pipelined_with_small_ones_arrive_intact() {
    let s = Server::start(&["-t", "4", "-m", "256"]);
    let mut c = s.client();
    let sizes = [10usize, 8191, 8192, 8193, 100_000, 1_000_000, 3];
    let mut values = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let v: Vec<u8> = (0..*n).map(|j| b'a' + ((i * 7 + j) % 26) as u8).collect();
        assert_eq!(c.set(&format!("lv{i}"), i as u32, 0, &v), "STORED");
        values.push(v);
    }
    let mut req = Vec::new();
    let mut want = Vec::new();
    let mut rng = Rng::new(11);
    for round in 0..40 {
        let picks: Vec<usize> = (0..1 + rng.below(4))
            .map(|_| rng.below(8) as usize)
            .collect();
        let gets = round % 3 == 0;
        req.extend_from_slice(if gets { b"gets" } else { b"get " });
        for &i in &picks {
            req.extend_from_slice(format!(" lv{i}").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        for &i in &picks {
            let Some(v) = values.get(i) else { continue }; // lv7: a miss
            if gets {
                // The CAS is not known here; compare up to it below.
                want.extend_from_slice(format!("VALUE lv{i} {i} {} ", v.len()).as_bytes());
                want.push(b'#');
            } else {
                want.extend_from_slice(format!("VALUE lv{i} {i} {}", v.len()).as_bytes());
            }
            want.extend_from_slice(b"\r\n");
            want.extend_from_slice(v);
            want.extend_from_slice(b"\r\n");
        }
        want.extend_from_slice(b"END\r\n");
    }
    c.send(&req);
    // Let the server fill the socket and buffer the rest before reading.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    let mut w = 0;
    while w < want.len() {
        if want[w] == b'#' {
            // A CAS: digits up to the end of the line.
            let line = c.line();
            assert!(line.chars().all(|ch| ch.is_ascii_digit()), "cas {line:?}");
            w += 3; // '#' and the "\r\n" that `line` consumed
            got.clear();
            continue;
        }
        let next = want[w..]
            .iter()
            .position(|&b| b == b'#')
            .map_or(want.len(), |p| w + p);
        got = c.exact(next - w);
        assert!(
            got == want[w..next],
            "answer differs at byte {w} of {}",
            want.len()
        );
        w = next;
    }
    sync(&mut c);
    assert!(got.ends_with(b"END\r\n"));
}

#[test]
fn multi_get_across_shards_keeps_request_order() {
    let s = Server::start(&["-t", "4"]);
    let mut c = s.client();
    let mut req = Vec::new();
    for i in 0..2000 {
        req.extend_from_slice(
            format!(
                "set key:{i} {i} 0 {}\r\nvalue-{i}\r\n",
                format!("value-{i}").len()
            )
            .as_bytes(),
        );
    }
    c.send(&req);
    for i in 0..2000 {
        assert_eq!(c.line(), "STORED", "set key:{i}");
    }
    let mut rng = Rng::new(99);
    for round in 0..5 {
        let mut keys = Vec::new();
        for _ in 0..700 {
            let i = rng.below(2600); // some misses
            keys.push(i);
        }
        keys.push(keys[0]); // a duplicate
        let line = format!(
            "{} {}\r\n",
            if round % 2 == 0 { "get" } else { "gets" },
            keys.iter()
                .map(|i| format!("key:{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        c.send(line);
        let got = c.values();
        let want: Vec<u64> = keys.iter().copied().filter(|i| *i < 2000).collect();
        assert_eq!(
            got.len(),
            want.len(),
            "round {round}: {} values for {} hits",
            got.len(),
            want.len()
        );
        for (v, i) in got.iter().zip(&want) {
            assert_eq!(v.key, format!("key:{i}"), "round {round}: out of order");
            assert_eq!(v.flags as u64, *i);
            assert_eq!(v.data, format!("value-{i}").into_bytes());
            assert_eq!(v.cas.is_some(), round % 2 == 1);
        }
    }
    // many multi-gets pipelined in one write
    let mut req = Vec::new();
    let mut want = Vec::new();
    for j in 0..200u64 {
        let ks: Vec<u64> = (0..10).map(|x| (j * 37 + x * 101) % 2100).collect();
        req.extend_from_slice(
            format!(
                "get {}\r\n",
                ks.iter()
                    .map(|i| format!("key:{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
            .as_bytes(),
        );
        for i in ks {
            if i < 2000 {
                let v = format!("value-{i}");
                want.extend_from_slice(
                    format!("VALUE key:{i} {i} {}\r\n{v}\r\n", v.len()).as_bytes(),
                );
            }
        }
        want.extend_from_slice(b"END\r\n");
    }
    c.send(&req);
    expect_bytes(&mut c, "200 pipelined multi-gets", &want);
}

#[test]
fn one_megabyte_values_and_too_large_items() {
    let s = server(); // default -I 1m
    let mut c = s.client();
    let mut rng = Rng::new(5);
    let big: Vec<u8> = (0..1_000_000).map(|_| rng.below(256) as u8).collect();
    assert_eq!(c.set("big", 3, 0, &big), "STORED");
    assert!(
        c.get("big").as_deref() == Some(&big[..]),
        "1 MB value read back differently"
    );
    // over -I: refused, the data is swallowed, the old value is gone
    assert_eq!(
        c.set("big", 0, 0, &vec![b'x'; 1_048_577]),
        "SERVER_ERROR object too large for cache"
    );
    let got = c.get("big");
    assert!(
        got.is_none(),
        "a failed oversized set must remove the old value (still {} bytes)",
        got.map_or(0, |v| v.len())
    );
    assert_eq!(
        c.set("big", 0, 0, &vec![b'y'; 3 * 1024 * 1024]),
        "SERVER_ERROR object too large for cache"
    );
    sync(&mut c);
    assert_eq!(c.set("small", 0, 0, b"ok"), "STORED");
    assert_eq!(c.get("small"), Some(b"ok".to_vec()));
    // over -I with noreply: no answer at all, the connection keeps working
    let mut req = b"set big 0 0 2000000 noreply\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'z', 2_000_000));
    req.extend_from_slice(b"\r\nget small\r\n");
    c.send(&req);
    expect_bytes(
        &mut c,
        "after an oversized noreply set",
        b"VALUE small 0 2\r\nok\r\nEND\r\n",
    );
    // append beyond the limit
    assert_eq!(c.set("ap", 0, 0, &vec![b'a'; 700_000]), "STORED");
    let r = c.store("append", "ap", 0, 0, &vec![b'b'; 700_000]);
    assert!(
        r == "SERVER_ERROR out of memory storing object"
            || r == "NOT_STORED"
            || r.starts_with("SERVER_ERROR"),
        "append past -I: {r}"
    );
    assert_eq!(c.get("ap").map(|v| v.len()), Some(700_000));
    // -I 2m: exactly 1 MiB values work
    let s2 = Server::start(&["-I", "2m", "-m", "64"]);
    let mut c2 = s2.client();
    let mib: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    for i in 0..5 {
        assert_eq!(c2.set(&format!("mib{i}"), i, 0, &mib), "STORED");
    }
    for i in 0..5 {
        assert!(
            c2.get(&format!("mib{i}")).as_deref() == Some(&mib[..]),
            "mib{i} read back differently"
        );
    }
    assert_eq!(
        c2.set("huge", 0, 0, &vec![b'h'; 2 * 1024 * 1024 + 1]),
        "SERVER_ERROR object too large for cache"
    );
    sync(&mut c2);
}

#[test]
fn two_hundred_concurrent_connections() {
    let s = Server::start(&["-t", "4", "-c", "1024"]);
    let port = s.port();
    let handles: Vec<_> = (0..200)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                let mut rng = Rng::new(t as u64 + 1);
                for i in 0..50 {
                    let key = format!("t{t}:k{}", rng.below(10));
                    let val = format!("t{t}-{i}-{}", "x".repeat(rng.below(200) as usize));
                    assert_eq!(c.set(&key, t, 0, val.as_bytes()), "STORED");
                    assert_eq!(c.get(&key), Some(val.into_bytes()), "conn {t} op {i}");
                    // a shared key that everyone writes
                    if i % 10 == 0 {
                        assert_eq!(c.set("shared", 0, 0, b"s"), "STORED");
                        assert_eq!(c.get("shared"), Some(b"s".to_vec()));
                    }
                }
                c
            })
        })
        .collect();
    let conns: Vec<Client> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    let st = s.stats("");
    assert!(
        stat_u64(&st, "curr_connections") >= 200,
        "curr_connections {}",
        st["curr_connections"]
    );
    assert!(stat_u64(&st, "total_connections") >= 200);
    assert_eq!(stat_u64(&st, "cmd_set"), 200 * 55);
    assert_eq!(stat_u64(&st, "get_hits"), 200 * 55);
    drop(conns);
}

#[test]
fn eviction_under_a_small_memory_limit() {
    let s = Server::start(&["-m", "2", "-t", "1"]);
    let mut c = s.client();
    let value = vec![b'e'; 1000];
    let total = 20_000; // 20 MB through a 2 MB cache
    let mut stored = 0;
    for batch in 0..(total / 500) {
        let mut req = Vec::new();
        for i in batch * 500..(batch + 1) * 500 {
            req.extend_from_slice(format!("set key{i} 0 0 1000\r\n").as_bytes());
            req.extend_from_slice(&value);
            req.extend_from_slice(b"\r\n");
        }
        c.send(&req);
        for i in batch * 500..(batch + 1) * 500 {
            let l = c.line();
            assert_eq!(l, "STORED", "set key{i} under memory pressure");
            stored += 1;
        }
    }
    assert_eq!(stored, total);
    let old: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
    c.send(format!("get {}\r\n", old.join(" ")));
    let hits = c.values();
    assert!(
        hits.is_empty(),
        "{} of the 100 oldest keys survived: {:?}",
        hits.len(),
        hits.iter().map(|v| &v.key).collect::<Vec<_>>()
    );
    let new: Vec<String> = (total - 100..total).map(|i| format!("key{i}")).collect();
    c.send(format!("get {}\r\n", new.join(" ")));
    let hits = c.values();
    assert_eq!(hits.len(), 100, "newest keys missing");
    assert!(hits.iter().all(|v| v.data == value));
    let st = c.stats("");
    let ev = stat_u64(&st, "evictions");
    let items = stat_u64(&st, "curr_items");
    assert!(ev > 0, "evictions = 0 after writing 10x -m");
    assert_eq!(stat_u64(&st, "total_items"), total as u64);
    assert!(
        items < 3000 && items > 500,
        "curr_items {items} for a 2 MB cache of 1 KB items"
    );
    assert!(
        stat_u64(&st, "bytes") <= 2 * 1024 * 1024,
        "bytes {} above -m 2",
        st["bytes"]
    );
}

#[test]
fn no_evictions_with_dash_m_capital() {
    let s = Server::start(&["-m", "2", "-t", "1", "-M"]);
    let mut c = s.client();
    let value = vec![b'e'; 1000];
    let mut oom = 0;
    for i in 0..6000 {
        let r = c.set(&format!("key{i}"), 0, 0, &value);
        if r == "SERVER_ERROR out of memory storing object" {
            oom += 1;
        } else {
            assert_eq!(r, "STORED", "set key{i} with -M");
        }
    }
    assert!(oom > 0, "6 MB into a 2 MB -M cache never ran out of memory");
    assert!(
        c.get("key0") == Some(value),
        "with -M the oldest items must stay"
    );
    assert_eq!(stat_u64(&c.stats(""), "evictions"), 0);
}

// ------------------------------------------------------------ connections

#[test]
fn connection_limit() {
    let limit = 32;
    let s = Server::start(&["-c", &limit.to_string(), "-t", "4"]);
    let total = limit + 8;
    let mut accepted = Vec::new();
    let mut rejected = 0;
    for i in 0..total {
        let mut c = s.client();
        c.send(b"version\r\n");
        let raw = c
            .try_line_raw()
            .unwrap_or_else(|e| panic!("connection {i}: no answer: {e}"));
        let l = String::from_utf8_lossy(&raw).into_owned();
        if l.starts_with("VERSION ") {
            accepted.push(c);
        } else {
            assert_eq!(l, "ERROR Too many open connections\r\n", "connection {i}");
            c.expect_closed(Duration::from_secs(5));
            rejected += 1;
        }
    }
    assert!(
        rejected >= 8,
        "only {rejected} of {total} connections rejected with -c {limit}"
    );
    assert!(
        !accepted.is_empty() && accepted.len() <= limit,
        "{} accepted with -c {limit}",
        accepted.len()
    );
    // the accepted ones still work
    for c in accepted.iter_mut() {
        sync(c);
    }
    let rc = stat_u64(&accepted[0].stats(""), "rejected_connections");
    assert_eq!(rc, rejected as u64, "rejected_connections");
    // closing one frees a slot
    accepted.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = s.client();
        c.send(b"version\r\n");
        let l = c.line();
        if l.starts_with("VERSION ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no slot freed 5 s after closing a connection: {l}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idle_timeout_closes_idle_connections() {
    // 2 s, not 1: the busy client below must never look idle, even when a
    // loaded machine stalls its thread for a second.
    let s = Server::start(&["-o", "idle_timeout=2"]);
    let mut idle = s.client();
    sync(&mut idle);
    let mut busy = s.client();
    let t0 = Instant::now();
    // keep one connection busy for 5 s while the other idles
    let busy_thread = std::thread::spawn(move || {
        while t0.elapsed() < Duration::from_millis(5000) {
            sync(&mut busy);
            std::thread::sleep(Duration::from_millis(100));
        }
        busy
    });
    idle.read_until_closed(Duration::from_secs(10));
    let t = t0.elapsed();
    assert!(
        t >= Duration::from_millis(1900),
        "idle connection closed after only {t:?}"
    );
    let mut busy = busy_thread.join().expect("the busy connection was closed");
    sync(&mut busy);
    let st = s.stats("");
    assert!(
        stat_u64(&st, "idle_kicks") >= 1,
        "idle_kicks: {:?}",
        st.get("idle_kicks")
    );
}

#[test]
fn idle_timeout_off_by_default() {
    let s = server();
    let mut c = s.client();
    sync(&mut c);
    std::thread::sleep(Duration::from_millis(2500));
    sync(&mut c);
}

// ------------------------------------------------------------ expiry

#[test]
fn exptime_relative_negative_and_absolute() {
    let s = server();
    let mut c = s.client();
    let now = now_unix();
    rt(&mut c, "set rel1 0 1 1\r\na\r\n", "STORED\r\n");
    rt(&mut c, "set rel100 0 100 1\r\nb\r\n", "STORED\r\n");
    rt(&mut c, "set neg 0 -1 1\r\nc\r\n", "STORED\r\n");
    rt(&mut c, "set negbig 0 -1000000 1\r\nc\r\n", "STORED\r\n");
    rt(
        &mut c,
        &format!("set abspast 0 {} 1\r\nd\r\n", now - 10),
        "STORED\r\n",
    );
    rt(
        &mut c,
        &format!("set absfuture 0 {} 1\r\ne\r\n", now + 100),
        "STORED\r\n",
    );
    // more than 30 days is a unix time: 30 days + 1 s is in 1970
    rt(&mut c, "set days30 0 2592000 1\r\nf\r\n", "STORED\r\n");
    rt(&mut c, "set days30p1 0 2592001 1\r\ng\r\n", "STORED\r\n");
    // expired items are gone at once
    rt(&mut c, "get neg negbig abspast days30p1\r\n", "END\r\n");
    rt(
        &mut c,
        "get rel100 absfuture days30\r\n",
        "VALUE rel100 0 1\r\nb\r\nVALUE absfuture 0 1\r\ne\r\nVALUE days30 0 1\r\nf\r\nEND\r\n",
    );
    rt(&mut c, "add neg 0 0 1\r\nz\r\n", "STORED\r\n");
    rt(&mut c, "replace abspast 0 0 1\r\nz\r\n", "NOT_STORED\r\n");
    rt(&mut c, "incr negbig 1\r\n", "NOT_FOUND\r\n");
    rt(&mut c, "touch abspast 0\r\n", "NOT_FOUND\r\n");
    rt(&mut c, "delete days30p1\r\n", "NOT_FOUND\r\n");
    // 1 s relative: gone within ~2 s
    let t0 = Instant::now();
    while c.get("rel1").is_some() {
        assert!(
            t0.elapsed() < Duration::from_millis(2600),
            "exptime 1 still alive after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rt(
        &mut c,
        "get rel100 absfuture\r\n",
        "VALUE rel100 0 1\r\nb\r\nVALUE absfuture 0 1\r\ne\r\nEND\r\n",
    );
    // touch/gat give a new life, 0 = forever
    rt(&mut c, "set t 0 1 1\r\nh\r\n", "STORED\r\n");
    rt(&mut c, "touch t 0\r\n", "TOUCHED\r\n");
    rt(&mut c, "set u 0 1 1\r\ni\r\n", "STORED\r\n");
    rt(&mut c, "gat 100 u\r\n", "VALUE u 0 1\r\ni\r\nEND\r\n");
    std::thread::sleep(Duration::from_millis(2100));
    rt(
        &mut c,
        "get t u\r\n",
        "VALUE t 0 1\r\nh\r\nVALUE u 0 1\r\ni\r\nEND\r\n",
    );
    let st = c.stats("");
    assert!(
        stat_u64(&st, "get_expired") >= 1,
        "get_expired {:?}",
        st.get("get_expired")
    );
}

/// A command line that has not fully arrived waits for the socket: the
/// worker must not spin on it (a busy loop once burned a whole core here).
#[cfg(target_os = "linux")]
#[test]
fn incomplete_command_line_does_not_spin() {
    let s = Server::start(&["-t", "1"]);
    let pid = s.stats("")["pid"].clone();
    let cpu_ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let mut c = s.client();
    c.send(b"get fo");
    std::thread::sleep(Duration::from_millis(200));
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks() - before;
    // A spinning worker uses ~200 ticks (2 s of a core); idle is ~0.
    assert!(
        used < 60,
        "server used {used} CPU ticks in 2 s while waiting for a line"
    );
    c.send(b"o\r\n");
    assert_eq!(c.line(), "END");
}
