//! The `wasmcached_*` families: what only this server has. Per shard its
//! items, bytes and guest memory; per worker its guest calls (a latency
//! histogram), its batch sizes and the batches it forwards to other
//! workers' shards; the plugin's faults, restarts, back-offs and reloads.

use super::expo::{histogram, Family, Kind, Sample};
use super::scrape::Scraped;
use crate::counters::Histogram;
use crate::hotkeys::{escape, By};
use crate::plugin::MetricValue;
use crate::shared::Shared;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmcached_abi::stats_group;

fn family(name: &str, help: &str, kind: Kind, samples: Vec<Sample>) -> Family {
    Family {
        name: name.to_string(),
        help: help.to_string(),
        kind,
        samples,
    }
}

fn sample(labels: &[(&str, String)], value: f64) -> Sample {
    Sample {
        suffix: "",
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        value,
    }
}

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// A shard's general stat `name`, from the lines it sent.
fn shard_stat(lines: &[(i32, Vec<u8>)], name: &str) -> Option<f64> {
    let (_, text) = lines.iter().find(|(g, _)| *g == stats_group::GENERAL)?;
    String::from_utf8_lossy(text).lines().find_map(|l| {
        let (n, v) = l.trim().split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

/// A histogram's samples, `scale` turning the recorded unit into the
/// family's (nanoseconds into seconds, say).
fn histogram_samples(h: &Histogram, labels: &[(&str, String)], scale: f64) -> Vec<Sample> {
    let (bounds, counts, sum) = h.read();
    let bounds: Vec<f64> = bounds.iter().map(|&b| b as f64 * scale).collect();
    let labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    histogram(&labels, &bounds, &counts, sum as f64 * scale)
}

pub fn families(shared: &Shared, scraped: &Scraped) -> Vec<Family> {
    let mut out = Vec::new();
    let plugin = shared
        .settings
        .plugin
        .as_ref()
        .map_or_else(|| "default-store".into(), |p| p.display().to_string());
    out.push(family(
        "wasmcached_plugin_info",
        "The storage plugin the shards run.",
        Kind::Gauge,
        vec![sample(&[("plugin", plugin)], 1.0)],
    ));
    out.push(family(
        "wasmcached_shards",
        "Storage shards (Wasm instances).",
        Kind::Gauge,
        vec![sample(&[], shared.router.shards() as f64)],
    ));
    out.push(family(
        "wasmcached_scrape_shards_missing",
        "Shards that did not answer this scrape in time (busy in a long guest call).",
        Kind::Gauge,
        vec![sample(&[], scraped.missing as f64)],
    ));
    let per_shard = |stat: &str| -> Vec<Sample> {
        scraped
            .shards
            .iter()
            .filter_map(|s| {
                let v = shard_stat(&s.stats, stat)?;
                Some(sample(&[("shard", s.shard.to_string())], v))
            })
            .collect()
    };
    out.push(family(
        "wasmcached_shard_items",
        "Items stored in each shard.",
        Kind::Gauge,
        per_shard("curr_items"),
    ));
    out.push(family(
        "wasmcached_shard_bytes",
        "Bytes of items stored in each shard.",
        Kind::Gauge,
        per_shard("bytes"),
    ));
    out.push(family(
        "wasmcached_shard_guest_memory_bytes",
        "Size of each shard's Wasm linear memory.",
        Kind::Gauge,
        scraped
            .shards
            .iter()
            .map(|s| sample(&[("shard", s.shard.to_string())], s.memory_bytes as f64))
            .collect(),
    ));
    let mut calls = Vec::new();
    let mut batches = Vec::new();
    let mut forwarded = Vec::new();
    for (i, t) in shared.threads.iter().enumerate() {
        let worker = [("worker", i.to_string())];
        calls.extend(histogram_samples(&t.figures.guest_call_ns, &worker, 1e-9));
        batches.extend(histogram_samples(&t.figures.batch_requests, &worker, 1.0));
        forwarded.push(sample(&worker, load(&t.figures.forwarded_batches)));
    }
    out.push(family(
        "wasmcached_guest_call_duration_seconds",
        "Time each batch call into a shard's plugin took, by the worker that made it.",
        Kind::Histogram,
        calls,
    ));
    out.push(family(
        "wasmcached_batch_requests",
        "Requests carried by each batch call into a shard's plugin.",
        Kind::Histogram,
        batches,
    ));
    out.push(family(
        "wasmcached_forwarded_batches_total",
        "Batches a worker's connections sent to shards that another worker owns.",
        Kind::Counter,
        forwarded,
    ));
    let f = &shared.faults;
    for (name, help, value) in [
        (
            "wasmcached_plugin_traps_total",
            "Guest faults (traps, deadlines, malformed answers).",
            &f.plugin_traps,
        ),
        (
            "wasmcached_plugin_restarts_total",
            "Shards started again, empty, after a fault.",
            &f.plugin_restarts,
        ),
        (
            "wasmcached_plugin_renewals_total",
            "Instances replaced by a fresh one holding their items as their memory neared its cap.",
            &f.plugin_renewals,
        ),
        (
            "wasmcached_plugin_restart_failures_total",
            "Restarts after a fault that failed themselves.",
            &f.plugin_restart_failures,
        ),
        (
            "wasmcached_plugin_backoffs_total",
            "Times a shard entered crash-loop back-off.",
            &f.plugin_backoffs,
        ),
        (
            "wasmcached_plugin_reloads_total",
            "Hot plugin reloads done.",
            &f.plugin_reloads,
        ),
        (
            "wasmcached_plugin_reload_failures_total",
            "Hot plugin reloads refused.",
            &f.plugin_reload_failures,
        ),
    ] {
        out.push(family(
            name,
            help,
            Kind::Counter,
            vec![sample(&[], load(value))],
        ));
    }
    out.extend(plugin_families(scraped));
    out.extend(hot_key_families(shared));
    out.push(family(
        "wasmcached_plugin_shards_backing_off",
        "Shards backing off after repeated faults right now.",
        Kind::Gauge,
        vec![sample(&[], load(&f.plugin_shards_backing_off))],
    ));
    out
}

/// The metrics the plugin declares (ABI v8), one family each as
/// `wasmcached_plugin_<name>` with a `shard` label: every shard runs the
/// same plugin, so a family's shards line up (a shard whose metric has
/// another kind than the first one seen is left out of that family).
fn plugin_families(scraped: &Scraped) -> Vec<Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for s in &scraped.shards {
        let shard = vec![("shard".to_string(), s.shard.to_string())];
        for m in &s.plugin_metrics {
            let (kind, samples) = match &m.value {
                MetricValue::Counter(v) => (Kind::Counter, vec![labelled(&shard, *v as f64)]),
                MetricValue::Gauge(v) => (Kind::Gauge, vec![labelled(&shard, *v as f64)]),
                MetricValue::Histogram {
                    bounds,
                    counts,
                    sum,
                } => (
                    Kind::Histogram,
                    histogram(&shard, bounds, counts, *sum as f64),
                ),
            };
            // Prometheus' convention: a counter's name ends in `_total`.
            let name = match kind {
                Kind::Counter if !m.name.ends_with("_total") => {
                    format!("wasmcached_plugin_{}_total", m.name)
                }
                _ => format!("wasmcached_plugin_{}", m.name),
            };
            let f = families.entry(name.clone()).or_insert_with(|| Family {
                name,
                help: m.help.clone(),
                kind,
                samples: Vec::new(),
            });
            if f.kind == kind {
                f.samples.extend(samples);
            }
        }
    }
    families.into_values().collect()
}

fn labelled(labels: &[(String, String)], value: f64) -> Sample {
    Sample {
        suffix: "",
        labels: labels.to_vec(),
        value,
    }
}

/// The hot keys and prefixes (`stats hotkeys`): per table, the window's
/// total and each ranked name's estimated count. At most 32 names per
/// table, so the label values stay few.
fn hot_key_families(shared: &Shared) -> Vec<Family> {
    let report = shared.hotkeys.report();
    if report.sample == 0 {
        return Vec::new();
    }
    let mut totals = Vec::new();
    let mut counts = Vec::new();
    for t in &report.tables {
        let table = [
            ("measure", t.measure.name().to_string()),
            ("by", t.by.name().to_string()),
        ];
        if t.by == By::Key {
            totals.push(sample(&table[..1], t.total as f64));
        }
        for (rank, e) in t.entries.iter().enumerate() {
            let mut labels = table.to_vec();
            labels.push(("rank", (rank + 1).to_string()));
            labels.push(("name", escape(&e.name)));
            counts.push(sample(&labels, e.count as f64));
        }
    }
    vec![
        family(
            "wasmcached_hot_keys_counted",
            "Everything counted for the hot-key tables in the window (requests, or value bytes), scaled by the sample rate.",
            Kind::Gauge,
            totals,
        ),
        family(
            "wasmcached_hot_key_count",
            "Estimated count in the window of each of the hottest keys and key prefixes (stats hotkeys), scaled by the sample rate.",
            Kind::Gauge,
            counts,
        ),
    ]
}
