//! Typed plugin stats and the per-shard view, over a real socket:
//! tests/plugins/typed_stats.wat reports different figures from each of
//! four shards, typed (`#counter`, `#gauge`, `#max`, `#text`) and untyped;
//! `stats` and `stats plugin` combine them by type (untyped ones by the
//! old name rule), `stats shards` shows each shard's own. The default
//! store's figures per shard add up to its combined ones.

use crate::common;
use common::binary::{op, packet, read_resp, status};
use common::{Client, Server};
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// `stats <sub>`'s lines in order, as (name, value).
fn stat_lines(c: &mut Client, sub: &str) -> Vec<(String, String)> {
    c.send(format!("stats {sub}\r\n"));
    c.until_end()
        .iter()
        .map(|l| {
            let rest = l
                .strip_prefix("STAT ")
                .unwrap_or_else(|| panic!("stats {sub}: not a STAT line: {l:?}"));
            let (n, v) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("stats {sub}: no value in {l:?}"));
            (n.to_string(), v.to_string())
        })
        .collect()
}

fn typed_server() -> Server {
    let plugin = common::test_plugin("typed_stats.wat");
    Server::start(&["--plugin", &plugin, "-t", "2", "-o", "shards=4"])
}

#[test]
fn typed_stats_combine_by_type() {
    let server = typed_server();
    let mut c = server.client();
    let plugin = c.stats("plugin");
    assert_eq!(plugin["shards"], "4");
    // Shard k reports v = k + 1 (see the plugin): 1 + 2 + 3 + 4 = 10.
    let want = [
        // A counter and a gauge are summed whatever their names say.
        ("work_time", "10"),
        ("queue_age", "10"),
        // A maximum is the largest shard's, not the sum (100).
        ("peak_items", "40"),
        // Untyped lines keep the old rule: `_time` the maximum, others summed.
        ("legacy_time", "8"),
        ("legacy_count", "10"),
        // `#bogus` declares nothing: the next line is untyped.
        ("spoof_time", "4"),
    ];
    for (name, value) in want {
        assert_eq!(
            plugin.get(name).map(String::as_str),
            Some(value),
            "{name}: {plugin:?}"
        );
    }
    // Text is per shard only; declarations never show as stats; memcached's
    // names are `stats`'s.
    for name in ["role", "#counter", "#text", "#bogus", "bytes", "curr_items"] {
        assert!(
            !plugin.contains_key(name),
            "stats plugin shows {name}: {plugin:?}"
        );
    }

    let general = c.stats("");
    // A typed gauge and an untyped count land in memcached's places, summed;
    // a typed maximum takes the largest shard's.
    assert_eq!(general["bytes"], "1000");
    assert_eq!(general["curr_items"], "10");
    assert_eq!(general["hash_power_level"], "13");
    // memcached names the plugin does not report show 0.
    assert_eq!(general["evictions"], "0");
    assert_eq!(general["total_items"], "0");
    for name in ["work_time", "role", "legacy_time"] {
        assert!(!general.contains_key(name), "stats shows {name}");
    }
}

#[test]
fn stats_shards_lists_each_shard_uncombined_in_shard_order() {
    let server = typed_server();
    let mut c = server.client();
    let mut want = Vec::new();
    for k in 0..4u64 {
        let v = k + 1;
        let role = if k == 0 { "primary" } else { "replica" };
        for (name, value) in [
            ("work_time", v.to_string()),
            ("bytes", (100 * v).to_string()),
            ("queue_age", v.to_string()),
            ("peak_items", (10 * v).to_string()),
            ("role", role.to_string()),
            ("hash_power_level", (k + 10).to_string()),
            ("legacy_time", (k + 5).to_string()),
            ("legacy_count", v.to_string()),
            ("curr_items", v.to_string()),
            ("spoof_time", v.to_string()),
        ] {
            want.push((format!("shard:{k}:{name}"), value));
        }
    }
    // The host adds its measure of each shard's guest time (which moves
    // between two asks) after the plugin's lines.
    let plugins_own = |lines: Vec<(String, String)>| -> Vec<(String, String)> {
        let host = lines
            .iter()
            .filter(|(n, _)| n.ends_with(":plugin_guest_time_us"))
            .count();
        assert_eq!(host, 4, "{lines:?}");
        lines
            .into_iter()
            .filter(|(n, _)| !n.ends_with(":plugin_guest_time_us"))
            .collect()
    };
    assert_eq!(plugins_own(stat_lines(&mut c, "shards")), want);
    // Asked again (the shards answer in whatever order their workers
    // run): the same lines, in the same order.
    assert_eq!(plugins_own(stat_lines(&mut c, "shards")), want);
    // Sub-commands that only look alike stay memcached's unknown ones.
    for sub in ["shard", "shards_", "plugins"] {
        assert_eq!(c.cmd(&format!("stats {sub}")), "ERROR", "stats {sub}");
    }
    // The binary protocol's stat key `shards`: the same lines.
    assert_eq!(binary_stats(&server, b"shards").map(plugins_own), Ok(want));
    assert_eq!(binary_stats(&server, b"shard"), Err(status::ENOENT));
}

/// `stats reset` zeroes what a plugin types `#counter` (as memcached's
/// counters), in `stats plugin` and `stats shards` alike, and leaves its
/// gauges, maxima and untyped figures whole; the binary protocol's
/// `stat reset` does the same.
#[test]
fn stats_reset_zeroes_typed_counters_only() {
    for binary in [false, true] {
        let server = typed_server();
        let mut c = server.client();
        assert_eq!(c.stats("plugin")["work_time"], "10");
        if binary {
            assert_eq!(binary_stats(&server, b"reset"), Ok(Vec::new()));
        } else {
            assert_eq!(c.cmd("stats reset"), "RESET");
        }
        let plugin = c.stats("plugin");
        for (name, value) in [
            ("work_time", "0"),
            ("queue_age", "10"),
            ("peak_items", "40"),
            ("legacy_count", "10"),
        ] {
            assert_eq!(plugin[name], value, "{name} after reset (binary {binary})");
        }
        assert_eq!(c.stats("")["curr_items"], "10");
        let shards = c.stats("shards");
        for k in 0..4 {
            assert_eq!(shards[&format!("shard:{k}:work_time")], "0");
            assert_eq!(
                shards[&format!("shard:{k}:bytes")],
                (100 * (k + 1)).to_string()
            );
        }
    }
}

/// The binary protocol's `stat <key>` answer: one packet per line, then an
/// empty one; or the error status.
fn binary_stats(server: &Server, key: &[u8]) -> Result<Vec<(String, String)>, u16> {
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&packet(op::STAT, &[], key, &[], 0, 7)).unwrap();
    let mut out = Vec::new();
    loop {
        let r = read_resp(&mut s).unwrap();
        assert_eq!((r.op, r.opaque), (op::STAT, 7));
        if r.status != 0 {
            return Err(r.status);
        }
        if r.key.is_empty() {
            return Ok(out);
        }
        out.push((
            String::from_utf8(r.key).unwrap(),
            String::from_utf8(r.value).unwrap(),
        ));
    }
}

#[test]
fn default_store_figures_per_shard_add_up() {
    let server = Server::start(&["-t", "2", "-o", "shards=4", "-m", "64"]);
    let mut c = server.client();
    for i in 0..40 {
        assert_eq!(c.set(&format!("key:{i}"), 0, 0, b"value"), "STORED");
    }
    let lines = stat_lines(&mut c, "shards");
    let per: HashMap<&str, &str> = lines
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let num = |name: &str| -> u64 {
        per.get(name)
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
            .parse()
            .unwrap()
    };
    let shards: Vec<u64> = (0..4)
        .map(|k| num(&format!("shard:{k}:curr_items")))
        .collect();
    assert_eq!(shards.iter().sum::<u64>(), 40, "{shards:?}");
    assert!(
        shards.iter().all(|&n| n > 0),
        "every shard holds some: {shards:?}"
    );
    assert_eq!(c.stat("curr_items"), 40);
    // The metrics per shard: each shard's part of -m, summed in `stats plugin`.
    for k in 0..4 {
        assert_eq!(num(&format!("shard:{k}:metric:budget_bytes")), 16 << 20);
    }
    let plugin = c.stats("plugin");
    assert_eq!(plugin["metric:budget_bytes"], (64u64 << 20).to_string());
    // The store's segment size is a size: the largest shard's, not four of them.
    let seg = num("shard:0:segment_size");
    assert!(seg > 0);
    assert_eq!(plugin["segment_size"], seg.to_string());
    // Only each shard's figures: nothing of the host's, nothing combined.
    assert!(
        lines.iter().all(|(n, _)| n.starts_with("shard:")),
        "{lines:?}"
    );
}

/// `plugin_guest_time_us`: what the host measures of the plugin's calls,
/// per shard in `stats shards` and summed in `stats plugin`; it grows with
/// the traffic the plugin serves.
#[test]
fn guest_time_is_measured_per_shard_and_summed() {
    let server = Server::start(&["-t", "2", "-o", "shards=4"]);
    let mut c = server.client();
    let time = |c: &mut Client| -> (u64, u64) {
        let plugin = stat_lines(c, "plugin");
        let total: u64 = plugin
            .iter()
            .find(|(n, _)| n == "plugin_guest_time_us")
            .map(|(_, v)| v.parse().unwrap())
            .expect("plugin_guest_time_us in stats plugin");
        let shards = stat_lines(c, "shards");
        let per: Vec<u64> = (0..4)
            .map(|i| {
                let name = format!("shard:{i}:plugin_guest_time_us");
                shards
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or_else(|| panic!("{name} in stats shards"))
            })
            .collect();
        (total, per.iter().sum())
    };
    let (before, _) = time(&mut c);
    let value = vec![b'v'; 1000];
    for i in 0..2000 {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, &value), "STORED");
        assert!(c.get(&format!("k{i}")).is_some());
    }
    let (after, per_shard) = time(&mut c);
    assert!(after > before, "{before} -> {after}");
    // The shards' own figures, read a moment later, are at least the sum.
    assert!(per_shard >= after, "shards {per_shard} < total {after}");
}
