//! End-to-end tests of the example plugins in `examples/`: each is built
//! (with `scripts/build-examples.sh`, when its .wasm is missing or older than
//! its sources), loaded with `--plugin`, and driven over the text protocol:
//! the memcached semantics every full store owes, then what the example is
//! about (quotas, LFU, versions, the minimal store's refusals).
//!
//! A build that fails fails the test with the build's output; nothing is
//! skipped.

use crate::common;
use crate::common::example_build;

use common::workspace_root as root;
use common::{free_port, server_bin, Client, Server};
use example_build::example;
use std::process::{Command, Stdio};

/// The memcached semantics a full store owes, on keys starting with `p`.
fn memcached_semantics(c: &mut Client, p: &str) {
    let k = |s: &str| format!("{p}{s}");
    // set / get / flags / overwrite
    assert_eq!(c.set(&k("a"), 42, 0, b"hello"), "STORED");
    c.send(format!("get {}\r\n", k("a")));
    let v = c.values();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].flags, v[0].data.as_slice()), (42, &b"hello"[..]));
    assert_eq!(c.set(&k("a"), 1, 0, b"world"), "STORED");
    assert_eq!(c.get(&k("a")).as_deref(), Some(&b"world"[..]));
    // multi-get with a miss in the middle, in order
    assert_eq!(c.set(&k("b"), 0, 0, b"B"), "STORED");
    c.send(format!("get {} {} {}\r\n", k("a"), k("nope"), k("b")));
    let keys: Vec<String> = c.values().into_iter().map(|v| v.key).collect();
    assert_eq!(keys, vec![k("a"), k("b")]);
    // add / replace
    assert_eq!(c.store("add", &k("a"), 0, 0, b"x"), "NOT_STORED");
    assert_eq!(c.store("add", &k("new"), 0, 0, b"n"), "STORED");
    assert_eq!(c.store("replace", &k("missing"), 0, 0, b"x"), "NOT_STORED");
    assert_eq!(c.store("replace", &k("new"), 0, 0, b"N"), "STORED");
    assert_eq!(c.get(&k("new")).as_deref(), Some(&b"N"[..]));
    // append / prepend keep the flags
    assert_eq!(c.store("append", &k("a"), 9, 0, b"!"), "STORED");
    assert_eq!(c.store("prepend", &k("a"), 9, 0, b"<"), "STORED");
    c.send(format!("get {}\r\n", k("a")));
    let v = c.values();
    assert_eq!((v[0].flags, v[0].data.as_slice()), (1, &b"<world!"[..]));
    assert_eq!(c.store("append", &k("missing"), 0, 0, b"x"), "NOT_STORED");
    // cas
    let (_, cas) = c.gets(&k("a")).expect("gets a");
    let bad = cas + 1000;
    c.send(format!("cas {} 0 0 1 {bad}\r\nx\r\n", k("a")));
    assert_eq!(c.line(), "EXISTS");
    c.send(format!("cas {} 0 0 1 {cas}\r\ny\r\n", k("a")));
    assert_eq!(c.line(), "STORED");
    assert_eq!(c.get(&k("a")).as_deref(), Some(&b"y"[..]));
    c.send(format!("cas {} 0 0 1 {cas}\r\nz\r\n", k("a")));
    assert_eq!(c.line(), "EXISTS", "a used CAS value must not match again");
    c.send(format!("cas {} 0 0 1 1\r\nz\r\n", k("missing")));
    assert_eq!(c.line(), "NOT_FOUND");
    // incr / decr
    assert_eq!(c.set(&k("n"), 0, 0, b"10"), "STORED");
    assert_eq!(c.cmd(&format!("incr {} 5", k("n"))), "15");
    assert_eq!(c.cmd(&format!("decr {} 100", k("n"))), "0");
    assert_eq!(c.get(&k("n")).as_deref(), Some(&b"0 "[..]));
    assert_eq!(
        c.cmd(&format!("incr {} 18446744073709551615", k("n"))),
        "18446744073709551615"
    );
    assert_eq!(c.cmd(&format!("incr {} 2", k("n"))), "1", "incr wraps");
    assert_eq!(c.cmd(&format!("incr {} 1", k("missing"))), "NOT_FOUND");
    assert_eq!(
        c.cmd(&format!("incr {} 1", k("b"))),
        "CLIENT_ERROR cannot increment or decrement non-numeric value"
    );
    // touch / gat
    assert_eq!(c.cmd(&format!("touch {} 1000", k("b"))), "TOUCHED");
    assert_eq!(c.cmd(&format!("touch {} 1000", k("missing"))), "NOT_FOUND");
    c.send(format!("gat 0 {}\r\n", k("b")));
    assert_eq!(c.values().len(), 1);
    // delete
    assert_eq!(c.cmd(&format!("delete {}", k("b"))), "DELETED");
    assert_eq!(c.cmd(&format!("delete {}", k("b"))), "NOT_FOUND");
    assert_eq!(c.get(&k("b")), None);
    // expiry: a negative exptime is already expired; touch can expire too
    assert_eq!(c.set(&k("gone"), 0, -1, b"x"), "STORED");
    assert_eq!(c.get(&k("gone")), None);
    assert_eq!(c.cmd(&format!("touch {} -1", k("new"))), "TOUCHED");
    assert_eq!(c.get(&k("new")), None);
    // too large for -I
    let big = vec![b'x'; 2 << 20];
    assert_eq!(
        c.set(&k("big"), 0, 0, &big),
        "SERVER_ERROR object too large for cache"
    );
    // flush_all
    assert_eq!(c.set(&k("f"), 0, 0, b"f"), "STORED");
    assert_eq!(c.cmd("flush_all"), "OK");
    assert_eq!(c.get(&k("f")), None);
    assert_eq!(c.get(&k("a")), None);
    assert_eq!(c.set(&k("after"), 0, 0, b"ok"), "STORED");
    assert_eq!(c.get(&k("after")).as_deref(), Some(&b"ok"[..]));
}

/// `mg KEY t s` and `me KEY` show the remaining TTL of `key`, stored with
/// a relative exptime of `ttl` seconds (a tick may have passed since), and
/// `t-1` / `exp=-1` for an item that never expires.
fn assert_meta_ttls(c: &mut Client, key: &str, ttl: u32) {
    let ttl_of = |line: &str, flag: &str| -> Option<u32> {
        line.split(' ')
            .find_map(|t| t.strip_prefix(flag))
            .and_then(|t| t.parse().ok())
    };
    let line = c.cmd(&format!("mg {key} t s"));
    let t = ttl_of(&line, "t").unwrap_or_else(|| panic!("mg {key} t s answered {line:?}"));
    assert!(
        (ttl - 2..=ttl).contains(&t),
        "mg {key} t: {line:?}, want t{ttl}"
    );
    // memcached 1.6.18's `me` prints now - exptime: negative for a live item.
    let line = c.cmd(&format!("me {key}"));
    let exp = line
        .split(' ')
        .find_map(|t| t.strip_prefix("exp=-"))
        .and_then(|t| t.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("me {key} answered {line:?}"));
    assert!((ttl - 2..=ttl).contains(&exp), "me {key}: {line:?}");
    assert_eq!(c.set("never-expires", 0, 0, b"1"), "STORED");
    let line = c.cmd("mg never-expires t");
    assert_eq!(line, "HD t-1");
    assert_eq!(c.cmd("delete never-expires"), "DELETED");
}

fn assert_no_traps(c: &mut Client) {
    assert_eq!(c.plugin_stat("plugin_traps"), 0, "the plugin trapped");
}

// ------------------------------------------------------------ wat-minimal

#[test]
fn wat_minimal_stores_and_refuses_what_it_does_not_support() {
    let wasm = example("wat-minimal");
    let wat = root().join("examples/wat-minimal/wat_minimal.wat");
    // The compiled module, and the text module loaded directly.
    for plugin in [wasm, wat.to_string_lossy().into_owned()] {
        let server = Server::start(&["-t", "2", "--plugin", &plugin]);
        let mut c = server.client();
        assert_eq!(c.set("a", 5, 0, b"abc"), "STORED");
        assert_eq!(c.set("b", 0, 1000, b"xy"), "STORED");
        c.send("get a b c\r\n");
        let v = c.values();
        assert_eq!(v.len(), 2, "{plugin}");
        assert_eq!(
            (v[0].key.as_str(), v[0].flags, &v[0].data[..]),
            ("a", 5, &b"abc"[..])
        );
        assert_eq!((v[1].key.as_str(), &v[1].data[..]), ("b", &b"xy"[..]));
        // meta TTLs come from an ABI v1 answer's exptime (issue 16: it
        // answered t-1, "never expires", for every item)
        assert_meta_ttls(&mut c, "b", 1000);
        let (_, cas1) = c.gets("a").expect("gets a");
        assert_eq!(c.set("a", 5, 0, b"abcd"), "STORED");
        let (data, cas2) = c.gets("a").expect("gets a");
        assert_eq!(data, b"abcd");
        assert_ne!(cas1, cas2, "a store gives a new CAS");
        assert_eq!(c.cmd("delete a"), "DELETED");
        assert_eq!(c.cmd("delete a"), "NOT_FOUND");
        assert_eq!(c.get("a"), None);
        // expiry
        assert_eq!(c.set("e", 0, -1, b"x"), "STORED");
        assert_eq!(c.get("e"), None);
        // values up to 1024 bytes; bigger is too large
        assert_eq!(c.set("k1024", 0, 0, &[b'v'; 1024]), "STORED");
        assert_eq!(c.get("k1024").map(|v| v.len()), Some(1024));
        assert_eq!(
            c.set("k1025", 0, 0, &[b'v'; 1025]),
            "SERVER_ERROR object too large for cache"
        );
        // a batch bigger than the initial input buffer: memory grows
        assert_eq!(
            c.set("k100k", 0, 0, &[b'v'; 100_000]),
            "SERVER_ERROR object too large for cache"
        );
        // everything else: SERVER_ERROR, and the store keeps working
        let unsupported = "SERVER_ERROR not supported by wat-minimal";
        assert_eq!(c.store("add", "x", 0, 0, b"1"), unsupported);
        assert_eq!(c.store("append", "b", 0, 0, b"1"), unsupported);
        assert_eq!(c.cmd("incr b 1"), unsupported);
        assert_eq!(c.cmd("touch b 10"), unsupported);
        c.send("cas b 0 0 1 5\r\nz\r\n");
        assert_eq!(c.line(), unsupported);
        assert_eq!(c.get("b").as_deref(), Some(&b"xy"[..]));
        // a delayed flush_all is refused by every shard: no OK, nothing flushed
        assert_eq!(c.cmd("flush_all 10"), unsupported);
        assert_eq!(c.get("b").as_deref(), Some(&b"xy"[..]));
        // a direct-mapped table: many keys, each one readable right after
        // its store, and most of them still there afterwards
        for i in 0..300 {
            let key = format!("key:{i}");
            assert_eq!(c.set(&key, 0, 0, key.as_bytes()), "STORED");
            assert_eq!(c.get(&key), Some(key.clone().into_bytes()));
        }
        let kept = (0..300)
            .filter(|i| c.get(&format!("key:{i}")).is_some())
            .count();
        assert!(kept > 150, "only {kept} of 300 keys kept in 2 x 1024 slots");
        assert_eq!(c.cmd("flush_all"), "OK");
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("key:1"), None);
        assert_no_traps(&mut c);
    }
}

// ------------------------------------------------------------ c-quota

#[test]
fn c_quota_follows_memcached() {
    let wasm = example("c-quota");
    let server = Server::start(&["-t", "2", "--plugin", &wasm]);
    let mut c = server.client();
    memcached_semantics(&mut c, "");
    assert_eq!(c.set("ttl", 0, 500, b"1"), "STORED");
    assert_meta_ttls(&mut c, "ttl", 500);
    assert_no_traps(&mut c);
}

#[test]
fn c_quota_rejects_stores_over_a_prefix_quota() {
    let wasm = example("c-quota");
    let server = Server::start(&[
        "-t",
        "1",
        "--plugin",
        &wasm,
        "--plugin-config",
        "user=1000,*=3000",
    ]);
    let mut c = server.client();
    let quota_err = "SERVER_ERROR prefix quota exceeded";
    let v600 = vec![b'u'; 600];
    // key + value bytes count: 6 + 600
    assert_eq!(c.set("user:1", 0, 0, &v600), "STORED");
    assert_eq!(c.set("user:2", 0, 0, &v600), quota_err);
    assert_eq!(c.get("user:2"), None);
    // other prefixes are not affected
    assert_eq!(c.set("sess:1", 0, 0, &v600), "STORED");
    assert_eq!(c.set("sess:2", 0, 0, &v600), "STORED");
    assert_eq!(c.set("other:1", 0, 0, &v600), "STORED");
    assert_eq!(c.get("user:1"), Some(v600.clone()));
    // an overwrite only counts the difference
    assert_eq!(c.set("user:1", 0, 0, &[b'w'; 900]), "STORED");
    // append over the quota is refused; the item stays as it was
    assert_eq!(c.store("append", "user:1", 0, 0, &[b'a'; 200]), quota_err);
    assert_eq!(c.get("user:1").map(|v| v.len()), Some(900));
    // the `*` quota applies to each unlisted prefix: sess has 3000
    assert_eq!(c.set("sess:3", 0, 0, &v600), "STORED");
    assert_eq!(c.set("sess:4", 0, 0, &v600), "STORED");
    assert_eq!(c.set("sess:5", 0, 0, &v600), quota_err);
    // a failed set does not leave the old value readable (memcached's rule)
    assert_eq!(c.set("sess:1", 0, 0, &[b's'; 2000]), quota_err);
    assert_eq!(c.get("sess:1"), None);
    // deleting makes room
    assert_eq!(c.cmd("delete user:1"), "DELETED");
    assert_eq!(c.set("user:2", 0, 0, &v600), "STORED");
    // expired items do not count against the quota
    assert_eq!(c.cmd("touch user:2 -1"), "TOUCHED");
    assert_eq!(c.set("user:3", 0, 0, &[b'x'; 980]), "STORED");
    let s = c.stats("plugin");
    assert_eq!(s["quota:user:limit"], "1000");
    assert_eq!(s["quota:user:items"], "1");
    assert_eq!(s["quota:user:bytes"], "986");
    assert_eq!(s["quota:user:rejected"], "2");
    assert_eq!(s["quota:sess:rejected"], "2");
    assert_eq!(s["quota_rejections"], "4");
    // a number that grows past the quota is refused too: 986 + 7 bytes,
    // then 20 digits instead of 1
    assert_eq!(c.set("user:n", 0, 0, b"9"), "STORED");
    let before = c.get("user:n");
    assert_eq!(c.cmd("incr user:n 18446744073709551606"), quota_err);
    assert_eq!(c.get("user:n"), before);
    // flush_all empties every prefix
    assert_eq!(c.cmd("flush_all"), "OK");
    assert_eq!(c.set("user:4", 0, 0, &[b'x'; 990]), "STORED");
    assert_no_traps(&mut c);
}

#[test]
fn c_quota_refuses_a_bad_config() {
    let wasm = example("c-quota");
    // With -v the plugin's own log line says why; without it, the refusal
    // still carries the plugin's reason (issue 16).
    for verbose in [true, false] {
        let out = Command::new(server_bin())
            .args(verbose.then_some("-v"))
            .args(["-l", "127.0.0.1", "-p", &free_port().to_string()])
            .args(["-t", "1", "--plugin", &wasm, "--plugin-config", "user=lots"])
            .stdin(Stdio::null())
            .output()
            .expect("run server");
        assert!(!out.status.success(), "a bad quota must stop the server");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refused to initialise shard 0 (code 3): ")
                && err.contains("quota wants a number of bytes"),
            "stderr (verbose: {verbose}): {err}"
        );
    }
}

// ------------------------------------------------------------ as-lfu

#[test]
fn as_lfu_follows_memcached() {
    let wasm = example("as-lfu");
    let server = Server::start(&["-t", "2", "--plugin", &wasm]);
    let mut c = server.client();
    memcached_semantics(&mut c, "");
    assert_eq!(c.set("ttl", 0, 500, b"1"), "STORED");
    assert_meta_ttls(&mut c, "ttl", 500);
    assert_no_traps(&mut c);
}

#[test]
fn as_lfu_keeps_hot_keys_and_evicts_cold_ones() {
    let wasm = example("as-lfu");
    // One shard with a 2 MB budget; 3000 x 1 KB cold items overflow it.
    let server = Server::start(&["-t", "1", "-m", "2", "-I", "512k", "--plugin", &wasm]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    for i in 0..10 {
        assert_eq!(c.set(&format!("hot{i}"), 0, 0, &value), "STORED");
    }
    for _ in 0..20 {
        for i in 0..10 {
            assert!(c.get(&format!("hot{i}")).is_some());
        }
    }
    for i in 0..3000 {
        assert_eq!(c.set(&format!("cold{i}"), 0, 0, &value), "STORED");
    }
    for i in 0..10 {
        assert!(
            c.get(&format!("hot{i}")).is_some(),
            "hot{i} (used 21 times) was evicted"
        );
    }
    // Cold items all have the same count, so the oldest went first.
    let cold: Vec<bool> = (0..3000)
        .map(|i| c.get(&format!("cold{i}")).is_some())
        .collect();
    let kept = cold.iter().filter(|k| **k).count();
    assert!(
        (1000..3000).contains(&kept),
        "{kept} of 3000 cold keys kept"
    );
    assert!(!cold[0] && !cold[100], "the first cold keys should be gone");
    assert!(
        cold[2999] && cold[2900],
        "the latest cold keys should be kept"
    );
    let evictions = c.stat("evictions");
    assert!(evictions >= 1000, "evictions {evictions}");
    assert!(c.plugin_stat("lfu_age") >= 1, "dynamic aging never moved");
    assert_no_traps(&mut c);
}

// ------------------------------------------------------------ rust-versioned

#[test]
fn rust_versioned_follows_memcached() {
    let wasm = example("rust-versioned");
    let server = Server::start(&["-t", "1", "--plugin", &wasm]);
    let mut c = server.client();
    memcached_semantics(&mut c, "");
    assert_eq!(c.set("ttl", 0, 500, b"1"), "STORED");
    assert_meta_ttls(&mut c, "ttl", 500);
    assert_no_traps(&mut c);
}

#[test]
fn rust_versioned_keeps_previous_versions() {
    let wasm = example("rust-versioned");
    let server = Server::start(&["-t", "1", "--plugin", &wasm, "--plugin-config", "keep=2"]);
    let mut c = server.client();
    assert_eq!(c.set("doc", 1, 0, b"v1"), "STORED");
    assert_eq!(c.get("doc~1"), None, "no history yet");
    assert_eq!(c.set("doc", 2, 0, b"v2"), "STORED");
    assert_eq!(c.store("append", "doc", 0, 0, b"+"), "STORED");
    c.send("get doc doc~1 doc~2 doc~3\r\n");
    let v = c.values();
    let got: Vec<(&str, u32, &[u8])> = v
        .iter()
        .map(|v| (v.key.as_str(), v.flags, v.data.as_slice()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("doc", 2, &b"v2+"[..]),
            ("doc~1", 2, &b"v2"[..]),
            ("doc~2", 1, &b"v1"[..]),
        ],
        "keep=2: the third version is dropped"
    );
    // a delete keeps the history: the deleted value is version 1
    assert_eq!(c.cmd("delete doc"), "DELETED");
    assert_eq!(c.get("doc"), None);
    assert_eq!(c.get("doc~1").as_deref(), Some(&b"v2+"[..]));
    // incr/decr are changes too
    assert_eq!(c.set("n", 0, 0, b"10"), "STORED");
    assert_eq!(c.cmd("incr n 5"), "15");
    assert_eq!(c.get("n~1").as_deref(), Some(&b"10"[..]));
    // a real key of that form wins over the version reading
    assert_eq!(c.set("n~1", 0, 0, b"mine"), "STORED");
    assert_eq!(c.get("n~1").as_deref(), Some(&b"mine"[..]));
    let s = c.stats("plugin");
    assert!(s["versions_saved"].parse::<u64>().unwrap() >= 4, "{s:?}");
    assert!(s["version_reads"].parse::<u64>().unwrap() >= 4, "{s:?}");
    // flush_all takes the history too
    assert_eq!(c.cmd("flush_all"), "OK");
    assert_eq!(c.get("doc~1"), None);
    assert_eq!(c.get("n~1"), None);
    // meta flags it does not implement are refused, not ignored
    assert!(c.cmd("mg nokey v N30").starts_with("SERVER_ERROR"));
    assert_no_traps(&mut c);
}

#[test]
fn rust_versioned_refuses_more_than_one_shard() {
    let wasm = example("rust-versioned");
    let out = Command::new(server_bin())
        .args(["-v", "-l", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-t", "2", "--plugin", &wasm])
        .stdin(Stdio::null())
        .output()
        .expect("run server");
    assert!(!out.status.success(), "two shards must stop the server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs exactly one shard"), "stderr: {err}");
}

// ------------------------------------------------------------ plugin check

/// Every example passes `wasmcached plugin check` for the contract it
/// claims: the full memcached contract, or the basic one for wat-minimal.
#[test]
fn every_example_passes_plugin_check() {
    for (name, contract) in [
        ("c-quota", "full"),
        ("as-lfu", "full"),
        ("rust-versioned", "full"),
        ("wat-minimal", "basic"),
    ] {
        let wasm = example(name);
        let out = Command::new(server_bin())
            .args(["plugin", "check", &wasm, "--contract", contract])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "plugin check {name} --contract {contract} failed ({}):\n{report}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains("PASS "), "{name}: no PASS lines:\n{report}");
        assert!(!report.contains("FAIL "), "{name}:\n{report}");
    }
}
