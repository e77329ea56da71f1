//! Plugin metrics (ABI v8 `wmc_metrics`, and a component's `metrics`
//! export) and plugin log lines, over a real socket: the default store's,
//! c-quota's and python-lru's metrics move in `stats
//! plugin` as clients work, summed over shards, while `stats` keeps
//! memcached's names only; `wasmcached plugin check` finds their
//! descriptors valid; a plugin's log line names the plugin and its shard;
//! the default store's expiry scan keeps up with items expiring every
//! second.

use crate::common;
use crate::common::example_build::example;
use common::{server_bin, Client, Server};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `stats plugin`'s metric lines, by their names without `metric:`.
fn metrics(c: &mut Client) -> HashMap<String, i128> {
    c.stats("plugin")
        .into_iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("metric:")?.to_string(), v.parse().ok()?)))
        .collect()
}

fn eventually(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn default_store_metrics_move_in_stats_plugin() {
    let server = Server::start(&["-t", "2", "-m", "64"]);
    let mut c = server.client();
    let before = metrics(&mut c);
    for name in [
        "index_resizes_total",
        "crawler_items_checked_total",
        "crawler_reclaimed_total",
        "stored_value_bytes:count",
        "stored_value_bytes:sum",
        "segments",
        "promoted_total",
        "ghost_hits_total",
        "compactions_total",
        "used_bytes",
        "budget_bytes",
        "index_slots",
    ] {
        assert!(before.contains_key(name), "no metric:{name} in {before:?}");
    }
    // Summed over the two shards: the whole -m.
    assert_eq!(before["budget_bytes"], 64 << 20);
    assert_eq!(before["stored_value_bytes:count"], 0);

    let sizes = [0usize, 10, 100, 1000, 5000, 70_000];
    for (i, n) in sizes.iter().enumerate() {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, &vec![b'v'; *n]), "STORED");
    }
    assert_eq!(c.set("short-lived", 0, 1, b"x"), "STORED");
    let after = metrics(&mut c);
    assert_eq!(
        after["stored_value_bytes:count"],
        sizes.len() as i128 + 1,
        "{after:?}"
    );
    assert_eq!(
        after["stored_value_bytes:sum"],
        sizes.iter().sum::<usize>() as i128 + 1
    );
    assert!(after["used_bytes"] > before["used_bytes"], "{after:?}");
    // The background scan (a slice a second) looks at the items and frees
    // the one that expired.
    eventually(Duration::from_secs(10), "the crawler reclaims", || {
        let m = metrics(&mut c);
        m["crawler_items_checked_total"] > 0 && m["crawler_reclaimed_total"] >= 1
    });

    // `stats` is memcached's group: no plugin metric shows there.
    let general = c.stats("");
    assert!(
        general.keys().all(|k| !k.starts_with("metric:")),
        "{general:?}"
    );
    assert_eq!(c.plugin_stat("plugin_traps"), 0);
}

/// The default store's expiry scan goes `crawl_per_tick` items a second,
/// faster only through stretches of mostly dead items; after a pass that
/// freed items, the next runs to its end within its second. Here a dense
/// first wave of expiries makes the first pass quick, then a thin wave
/// expires every second (3 % of the items, too few for the old pace to
/// hurry): all of them are gone within a second or two of their expiry,
/// where 100 items a second would take over half a minute a pass.
#[test]
fn the_expiry_scan_keeps_up_with_thin_waves_of_expiries() {
    let server = Server::start(&[
        "-t",
        "1",
        "-m",
        "64",
        "--plugin-config",
        "crawl_per_tick=100",
    ]);
    let mut c = server.client();
    let mut batch = Vec::new();
    for i in 0..3200 {
        batch.extend(format!("set keep:{i} 0 0 1 noreply\r\nv\r\n").bytes());
        if i % 4 == 0 {
            batch.extend(format!("set dense:{i} 0 1 1 noreply\r\nv\r\n").bytes());
        }
        if i % 32 == 0 {
            for ttl in 2..=6 {
                batch.extend(format!("set thin{ttl}:{i} 0 {ttl} 1 noreply\r\nv\r\n").bytes());
            }
        }
    }
    c.send(&batch);
    assert_eq!(c.stat("curr_items"), 3200 + 800 + 5 * 100);
    eventually(Duration::from_secs(20), "every wave reclaimed", || {
        c.stat("curr_items") == 3200
    });
    assert_eq!(metrics(&mut c)["crawler_reclaimed_total"], 800 + 5 * 100);
}

/// The AssemblyScript SDK's metrics: as-lfu counts what its policy
/// evicts, and a histogram of how often each evicted item had been used.
#[test]
fn as_lfu_metrics_count_its_evictions() {
    let wasm = example("as-lfu");
    // One shard with a 2 MB budget; 3000 x 1 KB items overflow it.
    let server = Server::start(&["-t", "1", "-m", "2", "-I", "512k", "--plugin", &wasm]);
    let mut c = server.client();
    let before = metrics(&mut c);
    assert_eq!(before["lfu_evictions_total"], 0, "{before:?}");
    assert_eq!(before["lfu_evicted_uses:count"], 0);
    let value = vec![b'v'; 1000];
    for i in 0..3000 {
        assert_eq!(c.set(&format!("cold{i}"), 0, 0, &value), "STORED");
    }
    let evictions = c.stat("evictions");
    assert!(evictions > 0, "nothing evicted");
    let after = metrics(&mut c);
    assert_eq!(
        after["lfu_evictions_total"],
        i128::from(evictions),
        "{after:?}"
    );
    assert_eq!(after["lfu_evicted_uses:count"], i128::from(evictions));
    assert_eq!(c.plugin_stat("plugin_traps"), 0);
}

/// A component's metrics (the world `store-with-metrics`'s `metrics`
/// export): python-lru's counter, gauge and histogram move in `stats
/// plugin`, summed over its two shards, and show per shard in `stats
/// shards`.
#[test]
fn python_lru_metrics_come_through_the_wit_world() {
    let wasm = example("python-lru");
    let server = Server::start(&["-t", "2", "-m", "2", "--plugin", &wasm]);
    let mut c = server.client();
    let before = metrics(&mut c);
    assert_eq!(before["python_lru_evictions"], 0, "{before:?}");
    assert_eq!(before["python_lru_value_bytes:count"], 0, "{before:?}");
    let value = vec![b'v'; 1000];
    for i in 0..3000 {
        assert_eq!(c.set(&format!("big{i}"), 0, 0, &value), "STORED");
    }
    for i in 0..10 {
        assert_eq!(c.set(&format!("small{i}"), 0, 0, b"tiny"), "STORED");
    }
    let evictions = c.stat("evictions");
    assert!(evictions > 0, "nothing evicted");
    let after = metrics(&mut c);
    assert_eq!(after["python_lru_evictions"], i128::from(evictions));
    assert_eq!(
        after["python_lru_items"],
        i128::from(c.stat("curr_items")),
        "{after:?}"
    );
    assert_eq!(after["python_lru_value_bytes:count"], 3010, "{after:?}");
    assert_eq!(after["python_lru_value_bytes:sum"], 3000 * 1000 + 10 * 4);
    let shards = c.stats("shards");
    for shard in 0..2 {
        assert!(
            shards.keys().any(
                |k| k.starts_with(&format!("shard:{shard}:")) && k.contains("python_lru_items")
            ),
            "{shards:?}"
        );
    }
    assert_eq!(c.plugin_stat("plugin_traps"), 0);
}

#[test]
fn c_quota_metrics_count_refusals_and_bytes_per_prefix() {
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
    let m = metrics(&mut c);
    assert_eq!(m["quota_rejections_total"], 0, "{m:?}");
    assert_eq!(m["quota_used_bytes_user"], 0);

    let v600 = vec![b'u'; 600];
    assert_eq!(c.set("user:a", 0, 0, &v600), "STORED");
    assert_eq!(
        c.set("user:b", 0, 0, &v600),
        "SERVER_ERROR prefix quota exceeded"
    );
    // A prefix under `*` gets its gauge when it is first used.
    assert_eq!(c.set("img:1", 0, 0, b"png"), "STORED");
    let m = metrics(&mut c);
    assert_eq!(m["quota_rejections_total"], 1, "{m:?}");
    assert_eq!(m["quota_used_bytes_user"], 6 + 600);
    assert_eq!(m["quota_used_bytes_img"], 5 + 3);
    assert_eq!(c.cmd("delete user:a"), "DELETED");
    assert_eq!(metrics(&mut c)["quota_used_bytes_user"], 0);
    assert_eq!(c.plugin_stat("plugin_traps"), 0);
}

#[test]
fn plugin_check_reads_the_metrics_of_the_default_store_and_c_quota() {
    for plugin in ["default".to_string(), example("c-quota")] {
        let out = Command::new(server_bin())
            .args(["plugin", "check", &plugin])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{plugin}:\n{report}");
        assert!(
            report.lines().any(|l| l == "PASS plugin_metrics"),
            "{plugin}: plugin_metrics must pass, not be skipped:\n{report}"
        );
    }
}

/// tests/plugins/chatty.wat logs an info line (shown from -vv on) for
/// every batch: the server prefixes it with the plugin and the shard.
#[test]
fn a_plugin_log_line_names_the_plugin_and_the_shard() {
    let chatty = common::test_plugin("chatty.wat");
    let server = Server::start(&["-t", "1", "-vv", "--plugin", &chatty]);
    let mut c = server.client();
    assert_eq!(c.cmd("get a"), "END");
    eventually(Duration::from_secs(5), "a tagged log line", || {
        server
            .log()
            .lines()
            .any(|l| l == "chatty shard 0: chatty: batch")
    });
}
