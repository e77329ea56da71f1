//! End-to-end tests of the example plugins in `examples/`: each is built
//! (with `scripts/build-examples.sh`, when its .wasm is missing or older than
//! its sources), loaded with `--plugin`, and driven over the text protocol:
//! the memcached semantics every full store owes, then what the example is
//! about (quotas, SIEVE, S3-FIFO, LFU, versions, the minimal store's
//! refusals).
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

/// `wasmcached plugin check` on `wasm` passes, with the ABI v8 exports line,
/// and runs the dump/load round trip and the listing check (not skipped).
fn assert_checks_dump_load_and_listing(wasm: &str, memory_image: &str) {
    let out = Command::new(server_bin())
        .args(["plugin", "check", wasm])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains(
            "PASS exports_and_abi_version (ABI v8, exports wmc_dump and wmc_load, lists its items)"
        ),
        "{report}"
    );
    for check in ["dump_load_roundtrip", "item_listing"] {
        assert!(
            report.lines().any(|l| l == format!("PASS {check}")),
            "{check} must pass, not be skipped:\n{report}"
        );
    }
    assert!(
        report
            .lines()
            .any(|l| l.starts_with(&format!("{memory_image} memory_image_roundtrip"))),
        "memory_image_roundtrip must {memory_image}:\n{report}"
    );
}

/// One item the reload tests store: key, value, flags, relative TTL (0:
/// never expires), the CAS `gets` answered and when it was stored.
struct Kept {
    key: String,
    value: Vec<u8>,
    flags: u32,
    ttl: u32,
    cas: u64,
    stored: std::time::Instant,
}

/// Stores the `n` items `item(i)` gives (key, value, flags, TTL), reading
/// each one's CAS back.
fn store_kept(
    c: &mut Client,
    n: usize,
    item: impl Fn(usize) -> (String, Vec<u8>, u32, u32),
) -> Vec<Kept> {
    (0..n)
        .map(|i| {
            let (key, value, flags, ttl) = item(i);
            assert_eq!(c.set(&key, flags, ttl as i64, &value), "STORED");
            let stored = std::time::Instant::now();
            let (_, cas) = c.gets(&key).expect("gets right after set");
            Kept {
                key,
                value,
                flags,
                ttl,
                cas,
                stored,
            }
        })
        .collect()
}

/// Every item is there with its value, flags and CAS, and (on every
/// `ttl_step`-th) the TTL it had left.
fn assert_kept(c: &mut Client, items: &[Kept], ttl_step: usize, what: &str) {
    for it in items {
        c.send(format!("gets {}\r\n", it.key));
        let v = c.values();
        assert_eq!(v.len(), 1, "{what}: {} lost", it.key);
        assert_eq!(
            (v[0].flags, &v[0].data, v[0].cas),
            (it.flags, &it.value, Some(it.cas)),
            "{what}: {}",
            it.key
        );
    }
    for it in items.iter().step_by(ttl_step) {
        let line = c.cmd(&format!("mg {} t", it.key));
        if it.ttl == 0 {
            assert_eq!(line, "HD t-1", "{what}: {}", it.key);
        } else {
            let t: u32 = line
                .strip_prefix("HD t")
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{what}: mg {} t answered {line:?}", it.key));
            // What ran of it since it was stored, and the clock's second
            // either side (a loaded machine, Wine, can take long).
            let ran = it.stored.elapsed().as_secs() as u32 + 2;
            assert!(
                (it.ttl.saturating_sub(ran)..=it.ttl).contains(&t),
                "{what}: {} has t{t}, stored with {} {ran} s ago",
                it.key,
                it.ttl
            );
        }
    }
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
    assert_follows_memcached("c-quota", "2");
}

/// Example `name` on a server of `threads` workers keeps the memcached
/// semantics every full store owes, TTLs included, without a trap.
fn assert_follows_memcached(name: &str, threads: &str) {
    let wasm = example(name);
    let server = Server::start(&["-t", threads, "--plugin", &wasm]);
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

/// Stores `n` items over three prefixes, with varied flags, values and
/// TTLs (a third never expire), reading each one's CAS back.
fn c_quota_fill(c: &mut Client, n: usize) -> Vec<Kept> {
    store_kept(c, n, |i| {
        let ttl = if i % 3 == 0 {
            0
        } else {
            1000 + (i % 500) as u32
        };
        (
            format!("{}:{i}", ["user", "img", "sess"][i % 3]),
            format!("value {i} ").repeat(1 + i % 40).into_bytes(),
            (i as u32).wrapping_mul(2_654_435_761),
            ttl,
        )
    })
}

/// The default store's module, as host/build.rs built it for embedding.
fn default_store_wasm() -> std::path::PathBuf {
    let p = option_env!("WASMCACHED_DEFAULT_PLUGIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            root().join("target/wasm-plugins/wasm32-unknown-unknown/plugin/default_store.wasm")
        });
    assert!(
        p.is_file(),
        "the default store's wasm {} is missing",
        p.display()
    );
    p
}

/// ABI v3 dump/load in the C SDK: a `plugin reload` into a new c-quota
/// keeps every item with its value, flags, TTL and CAS (a `cas` with the
/// old value still works), and new CAS values are above the loaded ones
/// (each shard counts on from the highest it loaded: see the one-shard
/// test below for "above every one").
#[test]
fn c_quota_keeps_its_items_across_plugin_reload() {
    assert_keeps_its_items_across_plugin_reload("c-quota");
}

/// The reload round trip of example `name`: see
/// `c_quota_keeps_its_items_across_plugin_reload`.
fn assert_keeps_its_items_across_plugin_reload(name: &str) {
    let wasm = example(name);
    let server = Server::start(&["-t", "2", "--plugin", &wasm]);
    let mut c = server.client();
    let items = c_quota_fill(&mut c, 2000);
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert!(
        server.log().contains("on 2 shards, 2000 items moved"),
        "{}",
        server.log()
    );
    assert_kept(&mut c, &items, 37, "after a reload");
    assert_eq!(c.stat("curr_items"), 2000);
    let loaded: std::collections::HashSet<u64> = items.iter().map(|i| i.cas).collect();
    assert_eq!(loaded.len(), items.len(), "CAS values are unique");
    for it in items.iter().step_by(7) {
        c.send(format!(
            "cas {} {} 0 3 {}\r\nnew\r\n",
            it.key, it.flags, it.cas
        ));
        assert_eq!(
            c.line(),
            "STORED",
            "cas {} with its CAS from before",
            it.key
        );
        let (data, cas) = c.gets(&it.key).expect("gets after cas");
        assert_eq!(data, b"new");
        assert!(
            cas > it.cas,
            "{}: new CAS {cas} <= loaded {}",
            it.key,
            it.cas
        );
        assert!(!loaded.contains(&cas), "{}: new CAS {cas} reused", it.key);
    }
    for i in 0..50 {
        let key = format!("fresh:{i}");
        assert_eq!(c.set(&key, 0, 0, b"f"), "STORED");
        let (_, cas) = c.gets(&key).unwrap();
        assert!(!loaded.contains(&cas), "{key}: new CAS {cas} reused");
    }
    // A second reload moves the changed items too.
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert_eq!(c.stat("curr_items"), 2050);
    assert_eq!(c.get("fresh:7").as_deref(), Some(&b"f"[..]));
    assert_eq!(c.get(&items[7].key).as_deref(), Some(&b"new"[..]));
    assert_no_traps(&mut c);
}

/// The LRU order travels: the items read just before a reload are the last
/// ones a full c-quota evicts after it.
#[test]
fn c_quota_reload_keeps_the_lru_order() {
    let wasm = example("c-quota");
    let server = Server::start(&["-t", "1", "-m", "1", "-I", "256k", "--plugin", &wasm]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    for i in 0..700 {
        assert_eq!(c.set(&format!("old:{i}"), 0, 0, &value), "STORED");
    }
    assert_eq!(c.stat("evictions"), 0, "the first 700 items fit");
    for i in 0..100 {
        assert!(c.get(&format!("old:{i}")).is_some());
    }
    // One shard: the last CAS it gave is the highest.
    let (_, max) = c.gets("old:699").unwrap();
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert_eq!(c.stat("curr_items"), 700);
    assert_eq!(c.gets("old:699").unwrap().1, max);
    assert_eq!(c.set("new:0", 0, 0, &value), "STORED");
    let (_, cas) = c.gets("new:0").unwrap();
    assert!(cas > max, "new CAS {cas} <= loaded {max}");
    for i in 0..400 {
        assert_eq!(c.set(&format!("new:{i}"), 0, 0, &value), "STORED");
    }
    assert!(c.stat("evictions") >= 100, "{}", c.stat("evictions"));
    for i in 0..100 {
        assert!(
            c.get(&format!("old:{i}")).is_some(),
            "old:{i}, read before the reload, was evicted before unread items"
        );
    }
    assert_eq!(c.get("old:100"), None, "the least recently used item stays");
    assert_no_traps(&mut c);
}

/// Items move from c-quota to the default store and back (both ABI v8 with
/// dump/load): the reload re-reads the --plugin file, overwritten in between.
#[test]
fn c_quota_items_move_to_the_default_store_and_back() {
    assert_items_move_to_the_default_store_and_back("c-quota", "quota_rejections");
}

/// Runs example `name` (whose `stats plugin` shows `marker`) from a file
/// that is overwritten with the default store, reloaded, then overwritten
/// with `name` again and reloaded: all 600 items, their flags, TTLs and CAS
/// values come through both moves.
fn assert_items_move_to_the_default_store_and_back(name: &str, marker: &str) {
    let wasm = example(name);
    let dir = std::env::temp_dir().join(format!("wasmcached-{name}-swap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("store.wasm");
    std::fs::copy(&wasm, &plugin).unwrap();
    let server = Server::start(&["-t", "2", "--plugin", plugin.to_str().unwrap()]);
    let mut c = server.client();
    let items = c_quota_fill(&mut c, 600);
    assert!(c.stats("plugin").contains_key(marker));
    std::fs::copy(default_store_wasm(), &plugin).unwrap();
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert!(
        !c.stats("plugin").contains_key(marker),
        "the default store runs now"
    );
    assert_kept(&mut c, &items, 37, "in the default store");
    std::fs::copy(&wasm, &plugin).unwrap();
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert!(c.stats("plugin").contains_key(marker));
    assert_kept(&mut c, &items, 37, &format!("back in {name}"));
    assert_eq!(c.stat("curr_items"), 600);
    assert_eq!(
        server.log().matches("on 2 shards, 600 items moved").count(),
        2,
        "{}",
        server.log()
    );
    c.send(format!(
        "cas {} 0 0 1 {}\r\nx\r\n",
        items[3].key, items[3].cas
    ));
    assert_eq!(c.line(), "STORED", "the CAS from before both reloads");
    assert!(c.gets(&items[3].key).unwrap().1 > items[3].cas);
    assert_no_traps(&mut c);
    let _ = std::fs::remove_dir_all(&dir);
}

/// memcached's `uridecode` of a metadump key.
fn uri_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex after %"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// ABI v5 listing in the C SDK: `lru_crawler metadump all` shows every
/// c-quota item once, with its CAS, expiry and fetched mark.
#[test]
fn c_quota_lists_its_items_for_metadump() {
    assert_lists_its_items_for_metadump("c-quota");
}

/// `lru_crawler metadump all` on example `name` shows every live item
/// once, with its CAS, expiry and fetched mark.
fn assert_lists_its_items_for_metadump(name: &str) {
    let wasm = example(name);
    let server = Server::start(&["-t", "2", "--plugin", &wasm]);
    let mut c = server.client();
    // c_quota_fill reads every item back (fetch=yes); "unread" is not.
    let items = c_quota_fill(&mut c, 1500);
    assert_eq!(c.set("dead", 0, -1, b"x"), "STORED");
    assert_eq!(c.set("unread", 0, 0, b"u"), "STORED");
    c.send("lru_crawler metadump all\r\n");
    let mut listed = std::collections::HashMap::new();
    loop {
        let raw = c.try_line_raw().expect("metadump line");
        assert!(!raw.is_empty(), "connection closed during metadump");
        if raw == b"END\r\n" {
            break;
        }
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        let field = |name: &str| {
            line.split(' ')
                .find_map(|t| t.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .to_string()
        };
        let key = uri_decode(&field("key="));
        let fields = (field("exp="), field("cas="), field("fetch="));
        assert!(listed.insert(key, fields).is_none(), "listed twice: {line}");
    }
    assert_eq!(listed.len(), items.len() + 1, "every live item, once");
    for it in &items {
        let (exp, cas, fetch) = &listed[&it.key];
        assert_eq!(cas, &it.cas.to_string(), "{}", it.key);
        assert_eq!(exp == "-1", it.ttl == 0, "{}: exp={exp}", it.key);
        assert_eq!(fetch, "yes", "{}", it.key);
    }
    assert_eq!(listed["unread"].2, "no");
    assert_no_traps(&mut c);
}

/// `wasmcached plugin check` runs c-quota's dump/load round trip and its
/// listing: both pass, neither is skipped. Its state is all in its memory,
/// so a memory image restores it too.
#[test]
fn c_quota_passes_the_dump_load_and_listing_checks() {
    assert_checks_dump_load_and_listing(&example("c-quota"), "PASS");
}

// ------------------------------------------------------------ as-lfu

#[test]
fn as_lfu_follows_memcached() {
    assert_follows_memcached("as-lfu", "2");
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

/// Stores `n` items `{prefix}{i}` with varied values, flags and TTLs (a
/// third never expire) and reads each one's CAS back.
fn as_lfu_fill(c: &mut Client, prefix: &str, n: usize) -> Vec<Kept> {
    store_kept(c, n, |i| {
        let ttl = if i % 3 == 0 {
            0
        } else {
            2000 + (i % 700) as u32
        };
        (
            format!("{prefix}{i}"),
            format!("lfu value {i};").repeat(1 + i % 30).into_bytes(),
            (i as u32).wrapping_mul(0x9e37_79b9),
            ttl,
        )
    })
}

/// `cas` with the CAS from before the reloads works on every 50th item
/// (which then has the new value); returns the highest CAS of `items`.
fn as_lfu_old_cas_works(c: &mut Client, items: &mut [Kept], what: &str) -> u64 {
    let highest = items.iter().map(|i| i.cas).max().unwrap();
    for it in items.iter_mut().step_by(50) {
        c.send(format!(
            "cas {} {} 0 3 {}\r\nnew\r\n",
            it.key, it.flags, it.cas
        ));
        assert_eq!(
            c.line(),
            "STORED",
            "{what}: cas {} with its old CAS",
            it.key
        );
        let (data, cas) = c.gets(&it.key).unwrap();
        assert_eq!(data, b"new");
        assert!(
            cas > it.cas,
            "{what}: {} got CAS {cas} after {}",
            it.key,
            it.cas
        );
        it.value = b"new".to_vec();
        it.ttl = 0;
        it.cas = cas;
    }
    highest
}

/// ABI v3 dump/load and the v7 `refs` byte in the AssemblyScript SDK: a
/// `plugin reload` into a new as-lfu keeps every item with its value,
/// flags, CAS and remaining TTL, a `cas` with the old value works, new CAS
/// values are above the loaded ones, and the LFU counts travel.
#[test]
fn as_lfu_keeps_its_items_across_plugin_reload() {
    let wasm = example("as-lfu");
    let server = Server::start(&["-t", "2", "--plugin", &wasm]);
    let mut c = server.client();
    let start = c.stat("time");
    let mut items = as_lfu_fill(&mut c, "lfu:", 2000);
    // Ten hot keys: 1 store + 40 gets each.
    for round in 0..40 {
        for h in 0..10 {
            if round == 0 {
                assert_eq!(c.set(&format!("hot:{h}"), h, 0, b"hot"), "STORED");
            }
            assert!(c.get(&format!("hot:{h}")).is_some());
        }
    }
    let hottest = c.plugin_stat("lfu_max_count");
    assert!(hottest >= 41, "lfu_max_count {hottest} before the reload");
    // as-lfu starts an instance's CAS counter at server time << 20: once the
    // clock moved on, the new instance's CAS values are above every one the
    // old instance gave out, on every shard (the one-shard test below
    // checks that a load alone lifts the counter).
    while c.stat("time") == start {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(c.cmd("plugin reload"), "OK");
    let st = c.stats("plugin");
    assert_eq!(st["plugin_reloads"], "1");
    assert_eq!(st["plugin_reload_failures"], "0");
    assert_eq!(st["lfu_loaded_items"], "2010", "{st:?}");
    assert_eq!(
        c.plugin_stat("lfu_max_count"),
        hottest,
        "the hot keys' use counts travel in the refs byte"
    );
    assert_kept(&mut c, &items, 29, "after the reload");
    let highest = as_lfu_old_cas_works(&mut c, &mut items, "after the reload");
    for i in 0..40 {
        let key = format!("fresh:{i}");
        assert_eq!(c.set(&key, 0, 0, b"f"), "STORED");
        let (_, cas) = c.gets(&key).unwrap();
        assert!(
            cas > highest,
            "new CAS {cas} not above the loaded {highest}"
        );
    }
    assert!(server.log().contains("plugin reload"), "{}", server.log());
    assert_no_traps(&mut c);
}

/// The refs byte in action: hot keys (41 uses) loaded back stay ahead of
/// 3000 cold keys stored after the reload, which overflow the shard's
/// budget; without their counts they would be the first to go (loaded
/// items are older than the new ones).
#[test]
fn as_lfu_hot_keys_stay_hot_after_a_reload() {
    let wasm = example("as-lfu");
    let server = Server::start(&["-t", "1", "-m", "2", "-I", "512k", "--plugin", &wasm]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    for i in 0..10 {
        assert_eq!(c.set(&format!("hot{i}"), 0, 0, &value), "STORED");
    }
    for _ in 0..40 {
        for i in 0..10 {
            assert!(c.get(&format!("hot{i}")).is_some());
        }
    }
    for i in 0..500 {
        assert_eq!(c.set(&format!("warm{i}"), 0, 0, &value), "STORED");
    }
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert_eq!(c.plugin_stat("lfu_loaded_items"), 510);
    for i in 0..3000 {
        assert_eq!(c.set(&format!("cold{i}"), 0, 0, &value), "STORED");
    }
    assert!(
        c.stat("evictions") >= 1000,
        "the cold keys overflow the budget"
    );
    for i in 0..10 {
        assert!(
            c.get(&format!("hot{i}")).is_some(),
            "hot{i} (used 41 times before the reload) was evicted"
        );
    }
    assert_no_traps(&mut c);
}

/// A reload from as-lfu to the default store (the --plugin file is
/// overwritten) and back keeps every item with its value, flags, CAS and
/// TTL; one shard, so new CAS values must be above every loaded one.
#[test]
fn as_lfu_items_move_to_the_default_store_and_back() {
    let dir = std::env::temp_dir().join(format!("wasmcached-as-lfu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("store.wasm");
    let lfu = example("as-lfu");
    std::fs::copy(&lfu, &plugin).unwrap();
    let server = Server::start(&["-t", "1", "--plugin", plugin.to_str().unwrap()]);
    let mut c = server.client();
    let mut items = as_lfu_fill(&mut c, "mv:", 1200);
    assert!(c.stats("plugin").contains_key("lfu_age"), "as-lfu runs");

    std::fs::copy(default_store_wasm(), &plugin).unwrap();
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert!(
        !c.stats("plugin").contains_key("lfu_age"),
        "the default store runs now"
    );
    assert_kept(&mut c, &items, 29, "in the default store");
    let highest = as_lfu_old_cas_works(&mut c, &mut items, "in the default store");
    assert_eq!(c.set("mv:d", 7, 0, b"from the default store"), "STORED");
    let (_, cas) = c.gets("mv:d").unwrap();
    assert!(
        cas > highest,
        "default store: CAS {cas} after loading {highest}"
    );

    std::fs::copy(&lfu, &plugin).unwrap();
    assert_eq!(c.cmd("plugin reload"), "OK");
    let st = c.stats("plugin");
    assert_eq!(st["lfu_loaded_items"], "1201", "{st:?}");
    assert_eq!(st["plugin_reload_failures"], "0");
    assert_kept(&mut c, &items, 29, "back in as-lfu");
    c.send("gets mv:d\r\n");
    let v = c.values();
    assert_eq!(
        (v[0].flags, &v[0].data[..]),
        (7, &b"from the default store"[..])
    );
    assert_eq!(v[0].cas, Some(cas));
    let highest = as_lfu_old_cas_works(&mut c, &mut items, "back in as-lfu").max(cas);
    for i in 0..20 {
        let key = format!("mv:new{i}");
        assert_eq!(c.set(&key, 0, 0, b"n"), "STORED");
        let (_, cas) = c.gets(&key).unwrap();
        assert!(cas > highest, "as-lfu: CAS {cas} after loading {highest}");
    }
    assert_no_traps(&mut c);
    let _ = std::fs::remove_dir_all(&dir);
}

/// ABI v5 listing in the AssemblyScript SDK: `lru_crawler metadump all`
/// shows every live as-lfu item once, with its CAS, expiry and fetched
/// mark, keys URL-encoded.
#[test]
fn as_lfu_lists_its_items_for_metadump() {
    let wasm = example("as-lfu");
    let server = Server::start(&["-t", "2", "--plugin", &wasm]);
    let mut c = server.client();
    let items = as_lfu_fill(&mut c, "lst-", 1500);
    assert_eq!(c.set("dead", 0, -1, b"x"), "STORED");
    assert_eq!(c.set("odd/key", 0, 0, b"u"), "STORED");
    c.send("lru_crawler metadump all\r\n");
    let mut listed = std::collections::HashMap::new();
    loop {
        let raw = c.try_line_raw().expect("metadump line");
        assert!(!raw.is_empty(), "connection closed during metadump");
        if raw == b"END\r\n" {
            break;
        }
        assert!(!raw.ends_with(b"\r\n"), "a bare \\n ends a metadump line");
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        let field = |name: &str| {
            line.split(' ')
                .find_map(|t| t.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .to_string()
        };
        let fields = (field("exp="), field("cas="), field("fetch="));
        assert!(
            listed.insert(field("key="), fields).is_none(),
            "listed twice: {line}"
        );
    }
    assert_eq!(listed.len(), items.len() + 1, "every live item, once");
    for it in &items {
        let (exp, cas, fetch) = &listed[&it.key];
        assert_eq!(cas, &it.cas.to_string(), "{}", it.key);
        assert_eq!(exp == "-1", it.ttl == 0, "{}: exp={exp}", it.key);
        assert_eq!(fetch, "yes", "{} was read by gets", it.key);
    }
    assert_eq!(listed["odd%2Fkey"].2, "no", "never read");
    assert_no_traps(&mut c);
}

/// ABI v6 in the AssemblyScript SDK: as-lfu reports its lookups (with the
/// found item's size) and its evictions through `log_event`, which `watch
/// fetchers evictions` shows.
#[test]
fn as_lfu_reports_lookups_and_evictions_to_watch() {
    let wasm = example("as-lfu");
    let server = Server::start(&["-t", "1", "-m", "2", "-I", "512k", "--plugin", &wasm]);
    let mut w = server.client();
    w.set_read_timeout(std::time::Duration::from_secs(5));
    assert_eq!(w.cmd("watch fetchers evictions"), "OK");
    let mut c = server.client();
    assert_eq!(c.stat("log_watchers"), 1);
    let mut next = || {
        let raw = w.try_line_raw().expect("a watch line");
        String::from_utf8_lossy(&raw).trim_end().to_string()
    };
    assert_eq!(c.set("wa", 3, 0, b"xyz"), "STORED");
    let l = next();
    assert!(
        l.contains("type=item_get key=wa status=not_found"),
        "the set's lookup: {l}"
    );
    assert!(c.get("wa").is_some());
    let l = next();
    assert!(
        l.contains("type=item_get key=wa status=found") && l.contains("size=3"),
        "the get's lookup: {l}"
    );
    assert_eq!(c.get("wb"), None);
    let l = next();
    assert!(l.contains("type=item_get key=wb status=not_found"), "{l}");
    // Overflow the 2 MB budget: the least used items go, each logged.
    let value = vec![b'v'; 10_000];
    for i in 0..300 {
        assert_eq!(c.set(&format!("ev{i}"), 0, 0, &value), "STORED");
    }
    let evicted = c.stat("evictions");
    assert!(evicted >= 50, "evictions {evicted}");
    let mut logged = 0;
    for _ in 0..300 + evicted {
        let l = next();
        if l.contains("type=eviction") {
            assert!(l.contains("fetch=") && l.contains("size="), "{l}");
            logged += 1;
            if logged == evicted {
                break;
            }
        } else {
            assert!(l.contains("type=item_get key=ev"), "{l}");
        }
    }
    assert_eq!(logged, evicted, "one eviction line per eviction");
    assert_no_traps(&mut c);
}

/// `wasmcached plugin check` runs as-lfu's dump/load round trip and its
/// listing: both pass, neither is skipped. AssemblyScript's runtime keeps
/// its heap in globals: no memory image can restore it, and the check
/// says so.
#[test]
fn as_lfu_passes_the_dump_load_and_listing_checks() {
    assert_checks_dump_load_and_listing(&example("as-lfu"), "SKIP");
}

// ------------------------------------------------------------ rust-versioned

#[test]
fn rust_versioned_follows_memcached() {
    assert_follows_memcached("rust-versioned", "1");
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

// ---- rust-wit

/// rust-wit never asks the host for the clock: it keeps the `now` of its
/// last `tick`. Its items are still gone at the first request after the
/// server clock reaches their exptime, because the host ticks a component
/// before any call once the clock has moved, not only on its worker's
/// once-a-second timer (up to a second later).
#[test]
fn rust_wit_expires_items_on_the_clock_its_ticks_give_it() {
    use std::time::{Duration, Instant};
    let s = Server::start(&["--plugin", &example("rust-wit")]);
    let mut c = s.client();
    let time = |c: &mut Client| -> u64 { c.stats("")["time"].parse().unwrap() };
    // The clock the set saw: `stats time` the same before and after it.
    let set_at = loop {
        let before = time(&mut c);
        assert_eq!(c.set("e", 0, 2, b"v"), "STORED");
        if time(&mut c) == before {
            break before;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut hits = 0;
    loop {
        let now = time(&mut c);
        let got = c.get("e");
        if now >= set_at + 2 {
            // Asked within 20 ms of the clock reaching the exptime.
            assert_eq!(
                got, None,
                "a get at clock {now}, set at {set_at} to live 2 s"
            );
            break;
        }
        hits += got.is_some() as u32;
        assert!(Instant::now() < deadline, "the clock did not move in 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(hits > 0, "the item was never there before its exptime");
    assert_eq!(c.get("e"), None);
}

// ------------------------------------------------------------ plugin check

/// Every example passes `wasmcached plugin check` for the contract it
/// claims: the full memcached contract, or the basic one for wat-minimal.
/// The first line names what the plugin was written against: a core
/// module's ABI version, a component's world.
#[test]
fn every_example_passes_plugin_check() {
    let world = "(the wasmcached:store world v2: store, exports dump and load)";
    let full = "(the wasmcached:store world v2: store-full, exports dump and load)";
    let listing = "(the wasmcached:store world v2: store-with-listing, exports dump and load)";
    for (name, contract, first) in [
        (
            "c-quota",
            "full",
            "(ABI v8, exports wmc_dump and wmc_load, lists its items)",
        ),
        (
            "c-sieve",
            "full",
            "(ABI v8, exports wmc_dump and wmc_load, lists its items)",
        ),
        (
            "zig-s3fifo",
            "full",
            "(ABI v8, exports wmc_dump and wmc_load, lists its items)",
        ),
        ("as-lfu", "full", "(ABI v"),
        ("rust-versioned", "full", "(ABI v"),
        ("wat-minimal", "basic", "(ABI v1)"),
        ("python-lru", "full", full),
        ("rust-wit", "basic", world),
        ("go-lru", "full", listing),
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
        let want = format!("PASS exports_and_abi_version {first}");
        assert!(
            report.starts_with(&want),
            "{name}: want {want:?}:\n{report}"
        );
    }
}

// ---- c-sieve

#[test]
fn c_sieve_follows_memcached() {
    assert_follows_memcached("c-sieve", "2");
}

/// Whether `key` is there, asked without an access (`mg KEY u` does not
/// bump): reading it with `get` would set its visited bit.
fn c_sieve_present(c: &mut Client, key: &str) -> bool {
    match c.cmd(&format!("mg {key} u")).as_str() {
        "HD" => true,
        "EN" => false,
        other => panic!("mg {key} u answered {other:?}"),
    }
}

/// The keys of `keys` that are there (asked without an access).
fn c_sieve_kept(c: &mut Client, keys: impl IntoIterator<Item = String>) -> Vec<String> {
    keys.into_iter().filter(|k| c_sieve_present(c, k)).collect()
}

/// One shard with a 2 MB budget (about 1600 items of 1000 bytes, all in
/// one allocator class): 50 hot keys stored and read twice, then 200 warm
/// keys stored and never read, then a scan of 3000 cold keys, never read,
/// that overflows the shard. The hot keys are the oldest items and, once
/// the scan passes the budget, the least recently used ones.
fn c_sieve_scan_workload(c: &mut Client) {
    let value = vec![b'v'; 1000];
    for i in 0..50 {
        assert_eq!(c.set(&format!("hot{i}"), 0, 0, &value), "STORED");
    }
    for _ in 0..2 {
        for i in 0..50 {
            assert!(c.get(&format!("hot{i}")).is_some(), "hot{i}");
        }
    }
    for i in 0..200 {
        assert_eq!(c.set(&format!("warm{i}"), 0, 0, &value), "STORED");
    }
    assert_eq!(c.stat("evictions"), 0, "the hot and warm keys fit");
    for i in 0..3000 {
        assert_eq!(c.set(&format!("cold{i}"), 0, 0, &value), "STORED");
    }
    assert!(
        c.stat("evictions") >= 1000,
        "the scan overflows the budget: {} evictions",
        c.stat("evictions")
    );
}

fn c_sieve_server(wasm: &str) -> Server {
    Server::start(&["-t", "1", "-m", "2", "-I", "512k", "--plugin", wasm])
}

fn c_sieve_hot_keys() -> impl Iterator<Item = String> {
    (0..50).map(|i| format!("hot{i}"))
}

/// SIEVE's point: a hit sets the visited bit, and the hand spares an item
/// whose bit is set (clearing it) while the one-hit keys behind the scan
/// go in FIFO order. After a scan bigger than the cache the hot keys are
/// all there; an LRU (c-quota, same workload) has lost every one of them,
/// and a FIFO would too (they are the oldest items). The warm keys, stored
/// after the hot ones but never read, are evicted: it is the bit, not the
/// age, that keeps the hot keys.
#[test]
fn c_sieve_keeps_a_hot_set_through_a_scan_that_an_lru_loses() {
    let lru = c_sieve_server(&example("c-quota"));
    let mut c = lru.client();
    c_sieve_scan_workload(&mut c);
    let kept = c_sieve_kept(&mut c, c_sieve_hot_keys());
    assert!(kept.is_empty(), "the LRU kept {kept:?}");

    let sieve = c_sieve_server(&example("c-sieve"));
    let mut c = sieve.client();
    c_sieve_scan_workload(&mut c);
    let kept = c_sieve_kept(&mut c, c_sieve_hot_keys());
    assert_eq!(kept.len(), 50, "SIEVE kept only {kept:?} of the hot keys");
    let warm = c_sieve_kept(&mut c, (0..200).map(|i| format!("warm{i}")));
    assert!(warm.is_empty(), "never-read warm keys kept: {warm:?}");
    assert!(
        !c_sieve_present(&mut c, "cold0"),
        "the oldest cold key goes"
    );
    assert!(
        c_sieve_present(&mut c, "cold2999"),
        "the newest cold key stays"
    );
    // The first eviction walked the hand over the 50 hot keys (clearing
    // their bits); every later one found an unvisited key right at it.
    let s = c.stats("plugin");
    assert_eq!(s["sieve_hand_steps"], "50", "{s:?}");
    assert_eq!(s["sieve_visited"], "0", "{s:?}");
    assert_eq!(s["metric:sieve_hand_steps_total"], "50", "{s:?}");
    assert_eq!(s["metric:sieve_visited_items"], "0", "{s:?}");
    assert_eq!(
        s["metric:sieve_evictions_total"],
        c.stat("evictions").to_string(),
        "{s:?}"
    );

    // The other half: the hot keys' bits are clear now. Read every cold key
    // still there, so that the hand, when it next has to evict, walks over
    // all of them (clearing their bits) to the head, starts over at the
    // tail and evicts the hot keys first: exactly one per new key.
    let survivors = c_sieve_kept(&mut c, (0..3000).map(|i| format!("cold{i}")));
    assert!(survivors.len() >= 1000, "{} cold keys", survivors.len());
    for k in &survivors {
        assert!(c.get(k).is_some(), "{k}");
    }
    assert_eq!(
        c.plugin_stat("sieve_visited"),
        survivors.len() as u64,
        "one visited bit per cold key read"
    );
    let evictions = c.stat("evictions");
    let value = vec![b'v'; 1000];
    for i in 0..50 {
        assert_eq!(c.set(&format!("new{i}"), 0, 0, &value), "STORED");
    }
    assert_eq!(c.stat("evictions"), evictions + 50);
    assert_eq!(
        c.plugin_stat("sieve_hand_steps"),
        50 + survivors.len() as u64,
        "the hand passed every cold key once"
    );
    assert_eq!(c.plugin_stat("sieve_visited"), 0);
    let kept = c_sieve_kept(&mut c, c_sieve_hot_keys());
    assert!(kept.is_empty(), "not hit since the hand passed: {kept:?}");
    assert_eq!(
        c_sieve_kept(&mut c, survivors.iter().cloned()),
        survivors,
        "the cold keys read since the hand passed all stay"
    );
    // With the hot keys gone, the oldest cold key (its bit cleared) is next.
    assert_eq!(c.set("new50", 0, 0, &value), "STORED");
    assert!(!c_sieve_present(&mut c, &survivors[0]), "{}", survivors[0]);
    assert!(c_sieve_present(&mut c, &survivors[1]), "{}", survivors[1]);
    assert_no_traps(&mut c);
}

/// ABI v3 dump/load: a `plugin reload` into a new c-sieve keeps every item
/// with its value, flags, TTL and CAS, and new CAS values are above the
/// loaded ones.
#[test]
fn c_sieve_keeps_its_items_across_plugin_reload() {
    assert_keeps_its_items_across_plugin_reload("c-sieve");
}

/// The visited bits (in the item record's `refs`) and the hand's place
/// travel: after a reload the hand goes on where it stopped. The scan left
/// the hand on the oldest cold key with the hot keys (bits cleared) behind
/// it; the next evictions take cold keys, not the hot keys, and the hot
/// keys read just before the reload are still marked.
#[test]
fn c_sieve_reload_keeps_the_visited_bits_and_the_hand() {
    let server = c_sieve_server(&example("c-sieve"));
    let mut c = server.client();
    c_sieve_scan_workload(&mut c);
    for i in 10..20 {
        assert!(c.get(&format!("hot{i}")).is_some());
    }
    assert_eq!(c.plugin_stat("sieve_visited"), 10);
    let survivors = c_sieve_kept(&mut c, (0..3000).map(|i| format!("cold{i}")));
    let items = c.stat("curr_items");
    assert_eq!(items, 50 + survivors.len() as u64);
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert_eq!(c.stat("curr_items"), items, "every item moved");
    assert_eq!(c.plugin_stat("sieve_visited"), 10, "the bits travel");
    let (evictions, steps) = (c.stat("evictions"), c.plugin_stat("sieve_hand_steps"));
    let value = vec![b'v'; 1000];
    for i in 0..100 {
        assert_eq!(c.set(&format!("new{i}"), 0, 0, &value), "STORED");
    }
    assert_eq!(c.stat("evictions"), evictions + 100);
    assert_eq!(
        c.plugin_stat("sieve_hand_steps"),
        steps,
        "the hand starts on an unvisited cold key, as before the reload"
    );
    let kept = c_sieve_kept(&mut c, c_sieve_hot_keys());
    assert_eq!(kept.len(), 50, "hot keys evicted after the reload");
    assert_eq!(
        c_sieve_kept(&mut c, survivors.iter().cloned()),
        survivors[100..],
        "the 100 oldest cold keys went, in order"
    );
    assert_no_traps(&mut c);
}

/// Items move from c-sieve to the default store and back (both ABI v8 with
/// dump/load): the reload re-reads the --plugin file, overwritten in between.
#[test]
fn c_sieve_items_move_to_the_default_store_and_back() {
    assert_items_move_to_the_default_store_and_back("c-sieve", "sieve_hand_steps");
}

/// `lru_crawler metadump all` shows every live c-sieve item once, with its
/// CAS, expiry and fetched mark.
#[test]
fn c_sieve_lists_its_items_for_metadump() {
    assert_lists_its_items_for_metadump("c-sieve");
}

/// c-sieve takes no --plugin-config: a setting is refused, not ignored.
#[test]
fn c_sieve_refuses_a_plugin_config() {
    assert_refuses_a_plugin_config("c-sieve");
}

/// Starting example `name` with a `--plugin-config` fails, saying why.
fn assert_refuses_a_plugin_config(name: &str) {
    let wasm = example(name);
    let out = Command::new(server_bin())
        .args(["-l", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-t", "1", "--plugin", &wasm, "--plugin-config", "size=1"])
        .stdin(Stdio::null())
        .output()
        .expect("run server");
    assert!(!out.status.success(), "a config must stop the server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("takes no --plugin-config"), "stderr: {err}");
}

/// `wasmcached plugin check` passes the full contract, with the dump/load
/// round trip and the listing run (not skipped); all state is in linear
/// memory, so a memory image restores it too.
#[test]
fn c_sieve_passes_plugin_check() {
    assert_passes_the_full_contract("c-sieve");
}

/// Example `name` passes `plugin check --contract full` with nothing
/// failed or skipped: dump/load, the listing and the metrics included.
fn assert_passes_the_full_contract(name: &str) {
    let wasm = example(name);
    assert_checks_dump_load_and_listing(&wasm, "PASS");
    let out = Command::new(server_bin())
        .args(["plugin", "check", &wasm, "--contract", "full"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("PASS plugin_metrics"), "{report}");
    assert!(
        !report.contains("FAIL ") && !report.contains("SKIP "),
        "{report}"
    );
}

// ---- zig-s3fifo

#[test]
fn zig_s3fifo_follows_memcached() {
    assert_follows_memcached("zig-s3fifo", "2");
}

/// One shard with a 2 MB budget, as c-sieve's scan test: about 1620 items
/// of 1000 bytes (one allocator class), the small queue's tenth about 160.
fn s3fifo_server(wasm: &str, extra: &[&str]) -> Server {
    let mut args = vec!["-t", "1", "-m", "2", "-I", "512k", "--plugin", wasm];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Asks for each key of `keys` once, as a look-aside client does: a `get`
/// that misses, then a `set` of the value. Each key is requested once.
fn s3fifo_request_once(c: &mut Client, keys: impl IntoIterator<Item = String>) {
    let value = vec![b'v'; 1000];
    for k in keys {
        assert_eq!(c.get(&k), None, "{k} was never stored");
        assert_eq!(c.set(&k, 0, 0, &value), "STORED", "{k}");
    }
}

fn s3fifo_keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// S3-FIFO's point: a new key goes to the small queue; when that queue is
/// over its tenth, its oldest item moves to the main queue if it was hit,
/// else it is evicted. 50 hot keys read twice, then 200 warm keys and a
/// scan of 3000 cold keys, each requested once (a miss and its fill),
/// through a cache of about 1600 items: the hot keys, the oldest items
/// (which a FIFO or an LRU loses first), move to the main queue and all
/// stay; the requested-once keys go through the small queue in FIFO order
/// and never reach the main queue.
#[test]
fn zig_s3fifo_keeps_keys_read_twice_through_a_scan_of_keys_read_once() {
    let server = s3fifo_server(&example("zig-s3fifo"), &[]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    for k in s3fifo_keys("hot", 50) {
        assert_eq!(c.set(&k, 0, 0, &value), "STORED");
    }
    for _ in 0..2 {
        for k in s3fifo_keys("hot", 50) {
            assert!(c.get(&k).is_some(), "{k}");
        }
    }
    s3fifo_request_once(&mut c, s3fifo_keys("warm", 200));
    assert_eq!(c.stat("evictions"), 0, "the hot and warm keys fit");
    assert_eq!(c.plugin_stat("s3fifo_main_items"), 0, "nothing moved yet");
    s3fifo_request_once(&mut c, s3fifo_keys("cold", 3000));
    assert!(
        c.stat("evictions") >= 1000,
        "the scan overflows the budget: {} evictions",
        c.stat("evictions")
    );
    let kept = c_sieve_kept(&mut c, s3fifo_keys("hot", 50));
    assert_eq!(kept.len(), 50, "S3-FIFO kept only {kept:?} of the hot keys");
    let warm = c_sieve_kept(&mut c, s3fifo_keys("warm", 200));
    assert!(warm.is_empty(), "requested-once warm keys kept: {warm:?}");
    assert!(
        !c_sieve_present(&mut c, "cold0"),
        "the oldest cold key goes"
    );
    assert!(c_sieve_present(&mut c, "cold2999"), "the newest stays");
    let s = c.stats("plugin");
    assert_eq!(s["s3fifo_small_to_main"], "50", "{s:?}");
    assert_eq!(s["s3fifo_main_items"], "50", "{s:?}");
    assert_eq!(s["s3fifo_main_reinsertions"], "0", "{s:?}");
    assert_eq!(s["metric:s3fifo_small_to_main_total"], "50", "{s:?}");
    assert_eq!(s["metric:s3fifo_main_items"], "50", "{s:?}");
    assert_eq!(
        s["metric:s3fifo_small_items"],
        (c.stat("curr_items") - 50).to_string(),
        "{s:?}"
    );
    assert_eq!(
        s["metric:s3fifo_evictions_total"],
        c.stat("evictions").to_string(),
        "{s:?}"
    );
    assert_eq!(s["s3fifo_ghost_hits"], "0", "no key came back: {s:?}");
    assert_no_traps(&mut c);
}

/// The ghost: a key evicted from the small queue and requested again soon
/// after goes straight to the main queue, where the next scan does not
/// reach it; a key the ghost does not remember (new, or evicted too long
/// ago: the ghost remembers about as many keys as the main queue holds
/// items) starts in the small queue again and goes with the scan.
#[test]
fn zig_s3fifo_brings_a_key_back_from_the_ghost_to_the_main_queue() {
    let server = s3fifo_server(&example("zig-s3fifo"), &[]);
    let mut c = server.client();
    s3fifo_request_once(&mut c, s3fifo_keys("k", 2000));
    let evicted = c.stat("evictions");
    assert!((300..500).contains(&evicted), "{evicted} evictions");
    assert!(!c_sieve_present(&mut c, "k0"));
    assert_eq!(c.plugin_stat("s3fifo_main_items"), 0);
    // k0 again, soon: the ghost has it
    s3fifo_request_once(&mut c, ["k0".to_string(), "fresh".to_string()]);
    assert_eq!(c.plugin_stat("s3fifo_ghost_hits"), 1);
    assert_eq!(c.plugin_stat("s3fifo_main_items"), 1);
    // a scan of 3500 more keys: k0 (main queue) stays, `fresh` (small) goes
    let s = s3fifo_keys("s", 3500);
    s3fifo_request_once(&mut c, s.iter().cloned());
    assert!(c_sieve_present(&mut c, "k0"), "the ghost's key was evicted");
    assert!(
        !c_sieve_present(&mut c, "fresh"),
        "a new key outlived the scan"
    );
    assert_eq!(c.plugin_stat("s3fifo_main_items"), 1);
    // The ghost remembers about as many keys as the cache holds items: k1
    // went more than 3000 evictions ago, the newest evicted scan key just now.
    let cap = c.plugin_stat("s3fifo_ghost_capacity");
    assert!((1000..2000).contains(&cap), "ghost capacity {cap}");
    let first = s.iter().position(|k| c_sieve_present(&mut c, k)).unwrap();
    assert!(first > 1000, "{first}");
    let last_evicted = s[first - 1].clone();
    assert!(!c_sieve_present(&mut c, "k1"));
    s3fifo_request_once(&mut c, ["k1".to_string()]);
    assert_eq!(c.plugin_stat("s3fifo_ghost_hits"), 1, "k1 was forgotten");
    s3fifo_request_once(&mut c, [last_evicted.clone()]);
    assert_eq!(
        c.plugin_stat("s3fifo_ghost_hits"),
        2,
        "{last_evicted} was remembered"
    );
    assert_eq!(c.plugin_stat("s3fifo_main_items"), 2);
    assert_eq!(
        c.stats("plugin")["metric:s3fifo_ghost_hits_total"],
        "2",
        "the metric counts them too"
    );
    assert_no_traps(&mut c);
}

/// The main queue: when it is over its nine tenths, its oldest item goes
/// back to its head with one count less if it was hit, else it is evicted.
/// 1500 keys read once and the first 100 of them read twice all move to
/// the main queue (more than it holds) during a scan; the main queue then
/// evicts keys read once, the keys read twice go round and stay.
#[test]
fn zig_s3fifo_main_queue_keeps_the_keys_hit_most() {
    let server = s3fifo_server(&example("zig-s3fifo"), &[]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    let m = s3fifo_keys("m", 1500);
    for k in &m {
        assert_eq!(c.set(k, 0, 0, &value), "STORED");
    }
    for k in m.iter().chain(&m[..100]) {
        assert!(c.get(k).is_some(), "{k}");
    }
    assert_eq!(c.stat("evictions"), 0, "the 1500 keys fit");
    s3fifo_request_once(&mut c, s3fifo_keys("cold", 3000));
    assert_eq!(c.plugin_stat("s3fifo_small_to_main"), 1500);
    let reinserted = c.plugin_stat("s3fifo_main_reinsertions");
    // Each key read once went round once (its count 1 -> 0), each key read
    // twice twice, before the main queue evicted one.
    assert!(reinserted >= 1500, "{reinserted} reinsertions");
    let kept = c_sieve_kept(&mut c, m.iter().cloned());
    assert!(
        kept.len() < 1500 && kept.len() > 1300,
        "{} of the keys read once or twice kept",
        kept.len()
    );
    assert_eq!(kept[..100], m[..100], "a key read twice was evicted");
    assert!(
        !c_sieve_present(&mut c, "m100"),
        "the oldest key read once goes"
    );
    assert!(c_sieve_present(&mut c, "m1499"), "the newest stays");
    assert_eq!(
        c.plugin_stat("s3fifo_main_items"),
        kept.len() as u64,
        "only they reached the main queue"
    );
    assert_no_traps(&mut c);
}

/// With -M nothing is evicted: a full store answers out of memory and
/// keeps what it has; a delete makes room again.
#[test]
fn zig_s3fifo_answers_out_of_memory_with_no_evictions() {
    let wasm = example("zig-s3fifo");
    let server = Server::start(&["-t", "1", "-m", "1", "-I", "256k", "-M", "--plugin", &wasm]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    let mut stored = 0;
    loop {
        let r = c.set(&format!("k{stored}"), 0, 0, &value);
        if r != "STORED" {
            assert_eq!(r, "SERVER_ERROR out of memory storing object");
            break;
        }
        stored += 1;
        assert!(stored < 2000, "1 MB never filled up");
    }
    assert!(stored > 500, "only {stored} items of 1000 bytes in 1 MB");
    assert_eq!(c.stat("evictions"), 0);
    assert_eq!(c.stat("curr_items"), stored);
    assert!(c.plugin_stat("s3fifo_outofmemory") >= 1);
    assert!(c_sieve_present(&mut c, "k0"), "the oldest item stays");
    assert_eq!(c.cmd("delete k0"), "DELETED");
    assert_eq!(c.set("again", 0, 0, &value), "STORED");
    assert_no_traps(&mut c);
}

/// ABI v3 dump/load: a `plugin reload` into a new zig-s3fifo keeps every
/// item with its value, flags, TTL and CAS, and new CAS values are above
/// the loaded ones.
#[test]
fn zig_s3fifo_keeps_its_items_across_plugin_reload() {
    assert_keeps_its_items_across_plugin_reload("zig-s3fifo");
}

/// The queues and counts travel (the item record's `refs`: the count, plus
/// 4 in the main queue): after a reload the hot keys are still in the main
/// queue, and the next evictions take the oldest keys of the small queue,
/// in the order they had.
#[test]
fn zig_s3fifo_reload_keeps_the_queues_and_their_order() {
    let server = s3fifo_server(&example("zig-s3fifo"), &[]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    for k in s3fifo_keys("hot", 50) {
        assert_eq!(c.set(&k, 0, 0, &value), "STORED");
        assert!(c.get(&k).is_some());
    }
    s3fifo_request_once(&mut c, s3fifo_keys("cold", 3000));
    // two cold keys hit while in the small queue
    let survivors = c_sieve_kept(&mut c, s3fifo_keys("cold", 3000));
    for k in &survivors[10..12] {
        assert!(c.get(k).is_some(), "{k}");
    }
    let before = c.stats("plugin");
    let items = c.stat("curr_items");
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert_eq!(c.stat("curr_items"), items, "every item moved");
    let after = c.stats("plugin");
    for stat in [
        "s3fifo_small_items",
        "s3fifo_main_items",
        "s3fifo_small_bytes",
    ] {
        assert_eq!(before[stat], after[stat], "{stat}");
    }
    assert_eq!(after["s3fifo_main_items"], "50");
    let evictions = c.stat("evictions");
    s3fifo_request_once(&mut c, s3fifo_keys("new", 100));
    assert_eq!(c.stat("evictions"), evictions + 100);
    assert_eq!(
        c_sieve_kept(&mut c, s3fifo_keys("hot", 50)).len(),
        50,
        "hot keys evicted after the reload"
    );
    let mut want: Vec<String> = survivors[102..].to_vec();
    want.extend_from_slice(&survivors[10..12]);
    want.sort();
    let mut kept = c_sieve_kept(&mut c, survivors.iter().cloned());
    kept.sort();
    assert_eq!(
        kept, want,
        "the 102 oldest cold keys went, in order, except the two hit ones"
    );
    assert_eq!(
        c.plugin_stat("s3fifo_small_to_main"),
        2,
        "{:?}",
        c.stats("plugin")
    );
    assert_no_traps(&mut c);
}

/// Items move from zig-s3fifo to the default store and back (both ABI v8
/// with dump/load): the reload re-reads the --plugin file, overwritten in
/// between.
#[test]
fn zig_s3fifo_items_move_to_the_default_store_and_back() {
    assert_items_move_to_the_default_store_and_back("zig-s3fifo", "s3fifo_ghost_hits");
}

/// `lru_crawler metadump all` shows every live zig-s3fifo item once, with
/// its CAS, expiry and fetched mark.
#[test]
fn zig_s3fifo_lists_its_items_for_metadump() {
    assert_lists_its_items_for_metadump("zig-s3fifo");
}

/// zig-s3fifo takes no --plugin-config: a setting is refused, not ignored.
#[test]
fn zig_s3fifo_refuses_a_plugin_config() {
    assert_refuses_a_plugin_config("zig-s3fifo");
}

/// `wasmcached plugin check` passes the full contract, with the dump/load
/// round trip, the listing and the metrics run (not skipped). All state is
/// in linear memory (Zig globals are data, and the build keeps the name
/// section that tells the stack pointer), so a memory image restores it.
#[test]
fn zig_s3fifo_passes_plugin_check() {
    assert_passes_the_full_contract("zig-s3fifo");
}

// ---- python-lru (a component of the WIT world, built with componentize-py)

#[test]
fn python_lru_follows_memcached() {
    assert_follows_memcached("python-lru", "2");
}

/// pymemcache, unchanged, against the Python plugin: a real client library
/// through the WIT world. Linux only, as tests/clients.rs: the client runs
/// in the Python that ./scripts/test.sh installs for the host.
#[cfg(target_os = "linux")]
#[test]
fn python_lru_serves_pymemcache() {
    assert_serves_pymemcache("python-lru");
}

/// The least recently used item goes first when the budget is full.
#[test]
fn python_lru_evicts_the_least_recently_used() {
    assert_evicts_the_least_recently_used("python-lru");
}

/// One shard of 2 MB: 3000 sets of 1000 bytes evict, and the key read
/// after every set is never the one to go.
fn assert_evicts_the_least_recently_used(name: &str) {
    let wasm = example(name);
    let server = Server::start(&["-m", "2", "--plugin", &wasm]);
    let mut c = server.client();
    let value = vec![b'v'; 1000];
    for i in 0..3000 {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, &value), "STORED");
        // k0 is read all along: never the least recently used.
        assert!(c.get("k0").is_some(), "k0 gone after {i} sets");
    }
    assert!(c.get("k1").is_none(), "the oldest unread key stayed");
    assert!(c.get("k2999").is_some());
    assert!(c.stat("evictions") > 0);
    assert_no_traps(&mut c);
}

/// pymemcache's script (tests/clients/pymemcache_text.py) against a server
/// running example `name`.
#[cfg(target_os = "linux")]
fn assert_serves_pymemcache(name: &str) {
    let wasm = example(name);
    let server = Server::start(&["--plugin", &wasm]);
    let python = common::workspace_root().join("target/clients-venv/bin/python3");
    let script = common::workspace_root().join("tests/clients/pymemcache_text.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(server.port().to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (./scripts/test.sh makes it): {e}",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "pymemcache against {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The world's `dump` and `load`: a `plugin reload` into a new python-lru
/// keeps every item with its value, flags, TTL and CAS, a `cas` with the
/// old CAS works, and new CAS values are above the loaded ones.
#[test]
fn python_lru_keeps_its_items_across_plugin_reload() {
    assert_keeps_its_items_across_plugin_reload("python-lru");
}

/// Items move from a component (python-lru) to a core module (the default
/// store) and back.
#[test]
fn python_lru_items_move_to_the_default_store_and_back() {
    assert_items_move_to_the_default_store_and_back("python-lru", "python_lru_expired");
}

/// The world's `iter` (world `store-full`): `lru_crawler metadump all`
/// shows every python-lru item once, with its CAS, expiry and fetched mark.
#[test]
fn python_lru_lists_its_items_for_metadump() {
    assert_lists_its_items_for_metadump("python-lru");
}

// ---- js-lru (a component of the WIT world, built with componentize-js)

/// As `python_lru_lists_its_items_for_metadump`, in JavaScript (world
/// `store-with-listing`).
#[test]
fn js_lru_lists_its_items_for_metadump() {
    assert_lists_its_items_for_metadump("js-lru");
}

#[test]
fn js_lru_follows_memcached() {
    assert_follows_memcached("js-lru", "2");
}

/// As `python_lru_keeps_its_items_across_plugin_reload`, in JavaScript.
#[test]
fn js_lru_keeps_its_items_across_plugin_reload() {
    assert_keeps_its_items_across_plugin_reload("js-lru");
}

#[cfg(target_os = "linux")]
#[test]
fn js_lru_serves_pymemcache() {
    assert_serves_pymemcache("js-lru");
}

/// The whole kit passes, the two memory-budget checks included: 40 MB of
/// sets into a 4 MB shard. SpiderMonkey's collector does not run inside a
/// componentize-js component, so its memory grows with every call; the
/// shard renews the instance (a fresh one takes the items) before the
/// memory cap instead of faulting and restarting empty
/// (`Shard::renew_if_bloated`).
#[test]
fn js_lru_passes_plugin_check() {
    let wasm = example("js-lru");
    let out = Command::new(server_bin())
        .args(["plugin", "check", &wasm, "--contract", "full"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{report}\n{log}");
    assert!(!report.contains("FAIL "), "{report}");
    assert!(report.contains("PASS memory_budget_evict"), "{report}");
    assert!(report.contains("PASS memory_budget_no_evict"), "{report}");
    assert!(log.contains("renewed the instance with its"), "{log}");
    assert!(report.contains("PASS item_listing"), "{report}");
}

/// Over a real socket: about 60 MB of 10 kB sets through one 4 MB shard,
/// which would fill the instance's memory cap about twice over. Every set
/// is stored, nothing faults, the newest items are there, and `stats
/// plugin` counts the renewals that made room.
#[test]
fn js_lru_renews_its_instance_instead_of_faulting() {
    let wasm = example("js-lru");
    let server = Server::start(&["--plugin", &wasm, "-t", "1", "-o", "shards=1", "-m", "4"]);
    let mut c = server.client();
    let value = vec![b'j'; 10_000];
    for i in 0..6000 {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, &value), "STORED", "k{i}");
    }
    for i in 5900..6000 {
        assert_eq!(c.get(&format!("k{i}")), Some(value.clone()), "k{i}");
    }
    let plugin = c.stats("plugin");
    assert_eq!(plugin["plugin_traps"], "0", "{}", server.log_tail(20));
    let renewals: u64 = plugin["plugin_renewals"].parse().unwrap();
    assert!(renewals >= 2, "{renewals} renewals");
    // About as many items as 4 MB of 10 kB values, not more.
    let items: u64 = c.stats("")["curr_items"].parse().unwrap();
    assert!((100..=420).contains(&items), "{items} items");
}

// ---- go-lru (a component of the WIT world, built with mainline Go and
// wit-bindgen-go)

/// As `python_lru_lists_its_items_for_metadump`, in Go (world
/// `store-with-listing`).
#[test]
fn go_lru_lists_its_items_for_metadump() {
    assert_lists_its_items_for_metadump("go-lru");
}

#[test]
fn go_lru_follows_memcached() {
    assert_follows_memcached("go-lru", "2");
}

#[cfg(target_os = "linux")]
#[test]
fn go_lru_serves_pymemcache() {
    assert_serves_pymemcache("go-lru");
}

#[test]
fn go_lru_evicts_the_least_recently_used() {
    assert_evicts_the_least_recently_used("go-lru");
}

/// As `python_lru_keeps_its_items_across_plugin_reload`, in Go.
#[test]
fn go_lru_keeps_its_items_across_plugin_reload() {
    assert_keeps_its_items_across_plugin_reload("go-lru");
}

#[test]
fn go_lru_items_move_to_the_default_store_and_back() {
    assert_items_move_to_the_default_store_and_back("go-lru", "go_lru_expired");
}

/// About 60 MB of sets of 1 to 24 KB through two 2 MB shards: the Go heap
/// is collected many times over, never inside `cabi_realloc` (where reading
/// the clock traps: examples/go-lru/gc.go), so no shard faults, and every
/// value read back is the one last stored.
#[test]
fn go_lru_collects_its_garbage_without_a_fault() {
    let wasm = example("go-lru");
    let server = Server::start(&["-m", "4", "-t", "2", "-I", "64k", "--plugin", &wasm]);
    let mut c = server.client();
    for i in 0..5000usize {
        let len = 1024 + (i * 7919) % (23 * 1024);
        let value = vec![b'a' + (i % 26) as u8; len];
        let key = format!("gc:{}", i % 700);
        assert_eq!(c.set(&key, i as u32, 0, &value), "STORED", "set {i}");
        if i % 97 == 0 {
            assert_eq!(c.get(&key).as_deref(), Some(&value[..]), "get {i}");
        }
    }
    assert_no_traps(&mut c);
}
