//! `stats hotkeys` (host/src/hotkeys.rs) over real sockets: the hottest keys
//! and prefixes by reads, writes and bytes, whatever protocol sent the
//! requests; `-o hotkeys_sample` (0: off) and `-o hotkeys_window`, and
//! their refusals.

use crate::common;

use common::binary::{op, packet, read_resp, store_extras};
use common::{free_port, run_bounded, server_bin, Client, Server};
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn hotkeys(c: &mut Client) -> HashMap<String, String> {
    c.stats("hotkeys")
}

fn num(s: &HashMap<String, String>, name: &str) -> u64 {
    s.get(name)
        .unwrap_or_else(|| panic!("no {name} in {s:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {s:?}"))
}

/// Rank `rank` of table `table` (`reads:key`, …): its name and count.
fn rank(s: &HashMap<String, String>, table: &str, rank: usize) -> Option<(String, u64)> {
    let name = s.get(&format!("{table}:{rank}"))?.clone();
    Some((name, num(s, &format!("{table}:{rank}:count"))))
}

/// Every (name, count) of `table`, by rank.
fn ranked(s: &HashMap<String, String>, table: &str) -> Vec<(String, u64)> {
    (1..).map_while(|r| rank(s, table, r)).collect()
}

/// A binary-protocol connection, for requests and for the `hotkeys` stats
/// key.
struct Bin(TcpStream);

impl Bin {
    fn connect(port: u16) -> Bin {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        Bin(s)
    }

    fn call(
        &mut self,
        opcode: u8,
        extras: &[u8],
        key: &[u8],
        value: &[u8],
    ) -> common::binary::Resp {
        self.0
            .write_all(&packet(opcode, extras, key, value, 0, 7))
            .expect("write");
        read_resp(&mut self.0).expect("a response")
    }

    fn stats(&mut self, group: &[u8]) -> HashMap<String, String> {
        self.0
            .write_all(&packet(op::STAT, &[], group, &[], 0, 9))
            .expect("write");
        let mut out = HashMap::new();
        loop {
            let r = read_resp(&mut self.0).expect("a stats packet");
            assert_eq!(r.status, 0, "{r:?}");
            if r.key.is_empty() {
                return out;
            }
            out.insert(
                String::from_utf8(r.key).unwrap(),
                String::from_utf8(r.value).unwrap(),
            );
        }
    }
}

/// One key read 50 times over text, meta and binary, ten others once:
/// it ranks first with its exact count (every request sampled), in reads
/// and in bytes (what was written plus what the reads returned).
#[test]
fn a_hot_key_ranks_first_with_its_count() {
    let s = Server::start(&["-o", "hotkeys_sample=1"]);
    let mut c = s.client();
    let value = b"0123456789";
    assert_eq!(c.set("hot", 0, 0, value), "STORED");
    for i in 0..10 {
        assert_eq!(c.set(&format!("cold{i}"), 0, 0, b"x"), "STORED");
    }
    for _ in 0..40 {
        assert_eq!(c.get("hot").as_deref(), Some(&value[..]));
    }
    c.send("mg hot v\r\nmg hot v\r\nmg hot v\r\nmg hot v\r\nmg hot v\r\n");
    for _ in 0..5 {
        assert_eq!(c.line(), "VA 10");
        assert_eq!(c.line(), "0123456789");
    }
    // Another connection, maybe another worker: the report merges them.
    let mut b = Bin::connect(s.port());
    for _ in 0..5 {
        let r = b.call(op::GET, &[], b"hot", &[]);
        assert_eq!((r.status, &r.value[..]), (0, &value[..]));
    }
    let keys: Vec<String> = (0..10).map(|i| format!("cold{i}")).collect();
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    c.send(format!("get {}\r\n", names.join(" ")));
    assert_eq!(c.values().len(), 10);

    let h = hotkeys(&mut c);
    assert_eq!(h["hotkeys_enabled"], "yes");
    assert_eq!(num(&h, "hotkeys_sample"), 1);
    assert_eq!(num(&h, "hotkeys_window"), 60);
    assert_eq!(num(&h, "hotkeys_top"), 32);
    assert_eq!(rank(&h, "reads:key", 1), Some(("hot".into(), 50)));
    assert_eq!(num(&h, "reads:key:1:error"), 0);
    let reads = ranked(&h, "reads:key");
    assert_eq!(reads.len(), 11, "{reads:?}");
    assert!(reads[1..]
        .iter()
        .all(|(k, n)| k.starts_with("cold") && *n == 1));
    assert_eq!(num(&h, "reads:total"), 60);
    // Writes: one set each; equal counts rank by name.
    let writes = ranked(&h, "writes:key");
    assert_eq!(writes.len(), 11);
    assert!(writes.iter().all(|(_, n)| *n == 1));
    assert_eq!(writes[0].0, "cold0");
    assert_eq!(num(&h, "writes:total"), 11);
    // Bytes: 10 written + 50 x 10 returned.
    assert_eq!(rank(&h, "bytes:key", 1), Some(("hot".into(), 510)));
    assert_eq!(num(&h, "bytes:total"), 510 + 10 + 10);
    // No key has the delimiter (`:` by default): no prefixes.
    assert_eq!(rank(&h, "reads:prefix", 1), None);

    // The binary protocol's stats key `hotkeys` says the same.
    let bh = b.stats(b"hotkeys");
    assert_eq!(rank(&bh, "reads:key", 1), Some(("hot".into(), 50)));
    assert_eq!(bh["hotkeys_sample"], "1");

    // `stats reset` starts afresh.
    assert_eq!(c.cmd("stats reset"), "RESET");
    let h = hotkeys(&mut c);
    assert_eq!(num(&h, "reads:total"), 0);
    assert_eq!(rank(&h, "reads:key", 1), None);
}

/// Prefixes are cut at the first `-D` delimiter, as `stats detail` cuts
/// them; keys without one count only as keys.
#[test]
fn prefixes_follow_the_delimiter() {
    let s = Server::start(&["-o", "hotkeys_sample=1", "-D", ":"]);
    let mut c = s.client();
    for (key, n) in [("user:1", 3), ("user:2:x", 2), ("sess:1", 1), ("plain", 4)] {
        for _ in 0..n {
            assert_eq!(c.get(key), None);
        }
    }
    assert_eq!(c.cmd("delete sess:1"), "NOT_FOUND");
    assert_eq!(c.cmd("touch sess:2 10"), "NOT_FOUND");
    assert_eq!(c.cmd("incr user:3 1"), "NOT_FOUND");
    let h = hotkeys(&mut c);
    assert_eq!(
        ranked(&h, "reads:prefix"),
        vec![("user".into(), 5), ("sess".into(), 1)]
    );
    assert_eq!(rank(&h, "reads:key", 1), Some(("plain".into(), 4)));
    assert_eq!(
        ranked(&h, "writes:prefix"),
        vec![("sess".into(), 2), ("user".into(), 1)]
    );
    drop(c);
    drop(s);

    let s = Server::start(&["-o", "hotkeys_sample=1", "-D", "#"]);
    let mut c = s.client();
    assert_eq!(c.set("a#1:x", 0, 0, b"abc"), "STORED");
    let h = hotkeys(&mut c);
    assert_eq!(rank(&h, "writes:prefix", 1), Some(("a".into(), 1)));
    assert_eq!(rank(&h, "bytes:prefix", 1), Some(("a".into(), 3)));
}

/// By default one request in 100 is counted and the counts are scaled
/// back: a key read 3000 times shows about 3000, in steps of 100.
#[test]
fn the_default_samples_one_request_in_a_hundred() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let h = hotkeys(&mut c);
    assert_eq!(h["hotkeys_enabled"], "yes");
    assert_eq!(num(&h, "hotkeys_sample"), 100);
    assert_eq!(num(&h, "hotkeys_window"), 60);
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    // Pipelined in batches; one connection, so one worker's countdown.
    for _ in 0..30 {
        c.send("get k\r\n".repeat(100));
        for _ in 0..100 {
            assert_eq!(c.line(), "VALUE k 0 1");
            assert_eq!(c.line(), "v");
            assert_eq!(c.line(), "END");
        }
    }
    let h = hotkeys(&mut c);
    let (key, count) = rank(&h, "reads:key", 1).expect("k is sampled");
    assert_eq!(key, "k");
    assert_eq!(count % 100, 0, "scaled by the sample rate");
    assert!((1500..=4500).contains(&count), "{count}");
}

/// `-o hotkeys_sample=0` turns it off: `stats hotkeys` says so and shows
/// nothing else, whatever the traffic; memcached's answers do not change.
#[test]
fn sample_zero_turns_it_off() {
    let s = Server::start(&["-o", "hotkeys_sample=0,hotkeys_window=10"]);
    let mut c = s.client();
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    assert_eq!(c.get("k").as_deref(), Some(&b"v"[..]));
    let h = hotkeys(&mut c);
    let want: HashMap<String, String> = [
        ("hotkeys_enabled", "no"),
        ("hotkeys_sample", "0"),
        ("hotkeys_window", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(h, want);
    // Still no group memcached lacks in its reply to other names.
    assert_eq!(c.cmd("stats hotkey"), "ERROR");
}

/// The window slides: with `hotkeys_window=2` (periods of a second) a key
/// read once leaves the report within a few seconds.
#[test]
fn keys_leave_with_the_window() {
    let s = Server::start(&["-o", "hotkeys_sample=1,hotkeys_window=2"]);
    let mut c = s.client();
    assert_eq!(c.get("old"), None);
    assert_eq!(
        rank(&hotkeys(&mut c), "reads:key", 1),
        Some(("old".into(), 1))
    );
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if rank(&hotkeys(&mut c), "reads:key", 1).is_none() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "a read stayed in a 2 s window for {:?}",
            t0.elapsed()
        );
    }
    // What comes later is counted again.
    assert_eq!(c.get("new"), None);
    assert_eq!(
        rank(&hotkeys(&mut c), "reads:key", 1),
        Some(("new".into(), 1))
    );
}

/// Bad values are refused at start, as wasmcached's other own `-o`
/// options are: one line on stderr, exit status 64 (EX_USAGE).
#[test]
fn bad_option_values_are_refused() {
    for (opt, line) in [
        (
            "hotkeys_sample=x",
            "Invalid value for suboption hotkeys_sample: \"x\"",
        ),
        (
            "hotkeys_sample=-5",
            "Invalid value for suboption hotkeys_sample: \"-5\"",
        ),
        (
            "hotkeys_sample=2000000",
            "hotkeys_sample must be between 0 (off) and 1000000",
        ),
        (
            "hotkeys_window=1",
            "hotkeys_window must be between 2 and 86400 seconds",
        ),
        (
            "hotkeys_window",
            "Invalid value for suboption hotkeys_window: \"\"",
        ),
    ] {
        let port = free_port().to_string();
        let out = run_bounded(
            Command::new(server_bin()).args(["-p", &port, "-l", "127.0.0.1", "-U", "0", "-o", opt]),
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(64), "{opt}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim_end(),
            format!("wasmcached: {line}"),
            "{opt}"
        );
    }
}

/// Keys are shown as sent, but a binary-protocol key with a space or a
/// byte that is not UTF-8 is escaped, so that every line stays `STAT name
/// value`.
#[test]
fn odd_binary_keys_are_escaped() {
    let s = Server::start(&["-o", "hotkeys_sample=1"]);
    let mut b = Bin::connect(s.port());
    let r = b.call(op::SET, &store_extras(0, 0), b"a b\xff", b"v");
    assert_eq!(r.status, 0, "{r:?}");
    let mut c = s.client();
    let h = hotkeys(&mut c);
    assert_eq!(rank(&h, "writes:key", 1), Some(("a\\x20b\\xff".into(), 1)));
}
