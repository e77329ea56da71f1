//! `wasmcached replay`, run as the real binary: exact counts on a
//! hand-checked trace (tests/data/replay-small.csv), cache size against
//! hit ratio on a zipf trace, the example plugins, saved synthetic traces,
//! and clear refusals of bad traces and specs.

use crate::common;
use crate::common::example_build::example;

use common::{run_bounded, server_bin, workspace_root, Output};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn replay(args: &[&str]) -> Output {
    run_bounded(
        Command::new(server_bin()).arg("replay").args(args),
        Duration::from_secs(120),
    )
}

/// The report of a run that must succeed, by field name.
fn report(args: &[&str]) -> HashMap<String, String> {
    let out = replay(args);
    assert!(
        out.success,
        "replay {args:?} failed ({:?}): {}",
        out.code, out.stderr
    );
    out.stdout_str()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn num(r: &HashMap<String, String>, name: &str) -> u64 {
    r.get(name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a whole number: {r:?}"))
}

fn fixture() -> String {
    workspace_root()
        .join("tests/data/replay-small.csv")
        .display()
        .to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wmc-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// A refusal: status 64 and one line saying why, and no panic.
fn refused(args: &[&str], want: &str) {
    let out = replay(args);
    assert_eq!(out.code, Some(64), "{args:?}: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
    assert!(lines[0].starts_with("wasmcached replay: "), "{}", lines[0]);
    assert!(lines[0].contains(want), "{args:?}: {}", lines[0]);
    assert!(out.stdout.is_empty(), "{args:?}: no report after a refusal");
}

#[test]
fn replay_the_small_trace_exactly_one_request_at_a_time() {
    let r = report(&["--trace", &fixture(), "--batch", "1", "--warmup", "0"]);
    // Misses: a and e are new (compulsory), b and e expire (TTL 5 and a
    // fill's TTL 2), a is deleted, d was never stored (replace refused).
    for (name, want) in [
        ("requests", 22),
        ("warmup_requests", 0),
        ("gets", 15),
        ("hits", 9),
        ("misses", 6),
        ("sets", 4),
        ("fills", 6),
        ("errors", 0),
        ("evictions", 0),
        ("expirations", 2),
        ("curr_items", 6),
        ("trace_seconds", 15),
        ("shards", 1),
    ] {
        assert_eq!(num(&r, name), want, "{name}: {r:?}");
    }
    assert_eq!(r["miss_ratio"], "0.400000");
    assert!(num(&r, "memory_bytes") > 0);
}

#[test]
fn replay_fills_follow_their_batch() {
    // The two gets of `a` at 100 and at 107 share a batch: both miss.
    let r = report(&["--trace", &fixture(), "--warmup", "0"]);
    assert_eq!((num(&r, "hits"), num(&r, "misses")), (7, 8), "{r:?}");
    // Without fills only stored keys hit: b twice, c, n.
    let r = report(&[
        "--trace",
        &fixture(),
        "--warmup",
        "0",
        "--no-fill",
        "--batch",
        "1",
    ]);
    assert_eq!(
        (num(&r, "hits"), num(&r, "misses"), num(&r, "fills")),
        (4, 11, 0)
    );
}

#[test]
fn replay_reports_json() {
    let out = replay(&[
        "--trace",
        &fixture(),
        "--batch",
        "1",
        "--warmup",
        "0",
        "--format",
        "json",
    ]);
    assert!(out.success, "{}", out.stderr);
    let text = out.stdout_str();
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with("{\"plugin\":\"default\","), "{text}");
    assert!(text.contains("\"hits\":9,\"misses\":6,"), "{text}");
    assert!(text.trim_end().ends_with('}'));
}

#[test]
fn replay_a_small_cache_hits_less_than_a_big_one() {
    let spec = "zipf:alpha=0.9,keys=200000,requests=600000,seed=3";
    let small = report(&["--synthetic", spec, "-m", "4"]);
    let big = report(&["--synthetic", spec, "-m", "128"]);
    assert_eq!(num(&small, "gets"), num(&big, "gets"));
    assert!(num(&small, "evictions") > 0, "{small:?}");
    assert_eq!(num(&big, "evictions"), 0, "{big:?}");
    assert!(
        num(&small, "hits") + num(&small, "gets") / 10 < num(&big, "hits"),
        "small {small:?}\nbig {big:?}"
    );
}

#[test]
fn replay_splits_over_shards_like_a_server() {
    let spec = "zipf:keys=20000,requests=100000";
    let r = report(&["--synthetic", spec, "--shards", "4", "--batch", "1"]);
    assert_eq!(num(&r, "shards"), 4);
    assert_eq!(num(&r, "memory_limit_bytes"), 64 << 20);
    assert!(num(&r, "hits") > 0 && num(&r, "errors") == 0, "{r:?}");
    // The same trace on one shard sees the same compulsory misses.
    let one = report(&["--synthetic", spec, "--batch", "1"]);
    assert_eq!(num(&one, "misses"), num(&r, "misses"));
}

#[test]
fn replay_a_ttl_trace_expires_items() {
    let r = report(&[
        "--synthetic",
        "ttl:keys=5000,requests=200000,rate=2000,ttl=3,short=0.9",
        "--warmup",
        "0",
    ]);
    assert!(num(&r, "expirations") > 1000, "{r:?}");
    assert_eq!(num(&r, "trace_seconds"), 99);
}

/// --plugin-config reaches the plugin's init as the server's does: a
/// policy setting changes what a trace misses, and a setting the plugin
/// refuses stops the replay with the plugin's reason.
#[test]
fn replay_passes_the_plugin_config() {
    // A third of the requests are scans (every 20000, 10000 new keys).
    let spec = "scan:keys=100000,requests=400000,seed=3";
    let s3fifo = report(&["--synthetic", spec, "-m", "4"]);
    let fifo = report(&[
        "--synthetic",
        spec,
        "-m",
        "4",
        "--plugin-config",
        "small_pct=0,ghost=0",
    ]);
    assert_eq!(num(&s3fifo, "gets"), num(&fifo, "gets"));
    assert!(num(&s3fifo, "hits") > 0, "{s3fifo:?}");
    assert_ne!(
        num(&s3fifo, "misses"),
        num(&fifo, "misses"),
        "the setting made no difference"
    );
    let out = replay(&["--synthetic", spec, "--plugin-config", "bogus=1"]);
    assert_eq!(out.code, Some(70), "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown setting \"bogus\""),
        "{}",
        out.stderr
    );
}

#[test]
fn replay_a_saved_synthetic_trace_gives_the_same_counts() {
    let csv = scratch("saved.csv");
    let spec = "scan:keys=5000,requests=50000,seed=7,write=0.05,scan_every=10000,scan_len=2000";
    let csv_s = csv.display().to_string();
    let out = replay(&["--synthetic", spec, "--write-trace", &csv_s]);
    assert!(out.success, "{}", out.stderr);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 50_000);
    let generated = report(&["--synthetic", spec, "--warmup", "0", "-m", "2"]);
    let read = report(&["--trace", &csv_s, "--warmup", "0", "-m", "2"]);
    for name in ["requests", "gets", "hits", "misses", "sets", "evictions"] {
        assert_eq!(num(&generated, name), num(&read, name), "{name}");
    }
    let _ = std::fs::remove_file(&csv);
}

#[test]
fn replay_the_example_plugins() {
    for name in ["c-quota", "as-lfu", "zig-s3fifo"] {
        let wasm = example(name);
        let r = report(&[
            "--plugin",
            &wasm,
            "--synthetic",
            "zipf:keys=50000,requests=200000",
            "-m",
            "4",
        ]);
        assert_eq!(num(&r, "errors"), 0, "{name}: {r:?}");
        assert!(num(&r, "hits") > num(&r, "gets") / 2, "{name}: {r:?}");
        assert!(num(&r, "curr_items") > 0, "{name}: {r:?}");
        let exact = report(&[
            "--plugin",
            &wasm,
            "--trace",
            &fixture(),
            "--batch",
            "1",
            "--warmup",
            "0",
        ]);
        assert_eq!(
            (num(&exact, "hits"), num(&exact, "misses")),
            (9, 6),
            "{name}: {exact:?}"
        );
    }
}

#[test]
fn replay_refuses_bad_traces_and_specs() {
    let bad = scratch("bad.csv");
    std::fs::write(&bad, "0,a,1,1,1,get,0\n1,b,1,1,1,get,0\n2,b,1,x,1,get,0\n").unwrap();
    let bad_s = bad.display().to_string();
    refused(&["--trace", &bad_s], "line 3: bad value size \"x\"");
    std::fs::write(&bad, "0,a,1,1,1,get,0\n1,b,1,1,1,fetch,0\n").unwrap();
    refused(&["--trace", &bad_s], "line 2: unknown operation \"fetch\"");
    std::fs::write(&bad, "0,a,1,1,1,get\n").unwrap();
    refused(
        &["--trace", &bad_s],
        "line 1: expected 7 comma-separated fields",
    );
    refused(&["--synthetic", "zipf:alpha=x"], "alpha wants a number");
    refused(&["--synthetic", "lru"], "unknown synthetic trace \"lru\"");
    refused(
        &["--synthetic", "zipf:bogus=1"],
        "unknown parameter \"bogus\"",
    );
    refused(&["--synthetic", "zipf", "--warmup", "1.5"], "--warmup");
    refused(&[], "required");
    let _ = std::fs::remove_file(&bad);
}
