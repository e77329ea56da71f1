//! Plugin metrics (ABI v8 `wmc_metrics`): ask the running instance where
//! its metrics live, check the answer as strictly as a batch's, and read
//! the values straight from its memory. The plugin updates them with plain
//! stores, so nothing here runs on the request path; a scrape or `stats
//! plugin` pays for one call and a walk over at most 256 descriptors.
//!
//! `stats plugin` gets the figures through the general stat lines
//! ([`append_stat_lines`], [`stat_lines_for_display`]), summed over shards;
//! `stats shards` gets each shard's as they are ([`Shard::STATS_BY_SHARD`]).

use super::component;
use super::instance::Guest;
use super::shard::Shard;
use super::stats_reset::Baseline;
use wasmcached_abi::metrics::{self as m, MetricDesc, MetricKind};
use wasmcached_abi::StatType;

/// A metric's value as read from the plugin's memory.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(i64),
    Histogram {
        /// The finite upper bounds, ascending.
        bounds: Vec<f64>,
        /// One count per bucket, +Inf last; not cumulative.
        counts: Vec<u64>,
        sum: u64,
    },
}

/// One metric a plugin declared, with its value now.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginMetric {
    pub name: String,
    pub help: String,
    pub value: MetricValue,
}

impl Shard {
    /// A stats group of the host's own, never passed to the guest: the
    /// general stats and metrics of this one shard, each line named
    /// `shard:<N>:<name>` with its value as the shard has it (typed lines
    /// without their declaration), for `stats shards`.
    pub const STATS_BY_SHARD: i32 = -2;

    /// A stats group of the host's own, never passed to the guest:
    /// `stats reset`, which remembers this shard's counters as they are
    /// now and answers nothing (plugin/stats_reset.rs).
    pub const STATS_RESET: i32 = -3;

    /// The guest's `name value` stat lines for `group`; for the general
    /// group followed by its metrics' lines ([`append_stat_lines`]), so
    /// that `stats plugin` sums them over shards as it sums the plugin's
    /// own figures. For [`Shard::STATS_BY_SHARD`], this shard's lines.
    /// Counters show what they counted since the last `stats reset`
    /// ([`Shard::STATS_RESET`]).
    pub fn stats(&mut self, group: i32) -> Vec<u8> {
        use wasmcached_abi::stats_group::GENERAL;
        match group {
            Self::STATS_RESET => {
                self.remember_counters();
                Vec::new()
            }
            Self::STATS_BY_SHARD => {
                let metrics = self.plugin_metrics();
                let lines = self.raw_stats(GENERAL);
                let lines = self.since_reset(GENERAL, lines);
                shard_lines(self.shard_id(), &lines, &metrics)
            }
            GENERAL => {
                let lines = self.stats_and_metrics(&[group]).0.pop().unwrap_or_default();
                self.since_reset(group, lines)
            }
            _ => {
                let lines = self.guest_stats(group);
                self.since_reset(group, lines)
            }
        }
    }

    /// Reads the counters of every group and keeps them as the new zero.
    fn remember_counters(&mut self) {
        let mut b = Baseline::new(self.generation);
        for group in Baseline::GROUPS {
            let lines = self.raw_stats(group);
            b.remember(group, &lines);
        }
        self.baseline = b;
    }

    /// `lines` of `group` as a client sees them: each counter less its
    /// value at the last reset, if this instance was running then (a
    /// restarted or reloaded one counts from zero again).
    fn since_reset(&self, group: i32, lines: Vec<u8>) -> Vec<u8> {
        if self.baseline.generation != self.generation {
            return lines;
        }
        self.baseline.apply(group, lines)
    }

    /// The stat lines of `group` as the plugin has them, with the host's
    /// own lines about it in the general group; no metrics.
    pub(super) fn raw_stats(&mut self, group: i32) -> Vec<u8> {
        let mut lines = self.guest_stats(group);
        if group == wasmcached_abi::stats_group::GENERAL {
            self.append_host_lines(&mut lines);
        }
        lines
    }

    /// What the host measures of the plugin, as typed stat lines beside
    /// the plugin's own: `plugin_guest_time_us`, the time spent in its
    /// batch, tick and timer calls (summed over shards by `stats plugin`,
    /// per shard in `stats shards`), so an author can see what a plugin
    /// costs under real traffic.
    fn append_host_lines(&self, lines: &mut Vec<u8>) {
        if !lines.is_empty() && !lines.ends_with(b"\n") {
            lines.push(b'\n');
        }
        let us = self.guest_time().as_micros();
        lines.extend_from_slice(format!("#counter\nplugin_guest_time_us {us}\n").as_bytes());
    }

    /// [`Shard::stats`] for each of `groups`, and the metrics as read for
    /// them: one `wmc_metrics` call serves both (a `/metrics` scrape
    /// wants the lines and the values).
    pub fn stats_and_metrics(&mut self, groups: &[i32]) -> (Vec<Vec<u8>>, Vec<PluginMetric>) {
        let metrics = self.plugin_metrics();
        let lines = groups
            .iter()
            .map(|&group| {
                let mut lines = self.guest_stats(group);
                if group == wasmcached_abi::stats_group::GENERAL {
                    append_stat_lines(&mut lines, &metrics);
                    self.append_host_lines(&mut lines);
                }
                lines
            })
            .collect();
        (lines, metrics)
    }

    /// The running instance's metrics (ABI v8 `wmc_metrics`), read now.
    /// Empty for a plugin before v8, one without the export, or a shard
    /// that has no instance (backing off). A trap or a malformed block is
    /// a fault: logged, counted, and the shard restarts empty.
    pub fn plugin_metrics(&mut self) -> Vec<PluginMetric> {
        self.try_plugin_metrics().unwrap_or_default()
    }

    /// [`Shard::plugin_metrics`], saying what was wrong with a block that
    /// faulted (for `wasmcached plugin check`).
    pub fn try_plugin_metrics(&mut self) -> Result<Vec<PluginMetric>, String> {
        let ticks = self.deadline_ticks;
        let Some(inst) = self.inst.as_mut() else {
            return Ok(Vec::new());
        };
        if let Guest::Component(g) = &mut inst.guest {
            inst.store.set_epoch_deadline(ticks);
            let read = match g.metrics(&mut inst.store) {
                Ok(answer) => from_component(answer),
                Err(e) => Err(format!("{e:#}")),
            };
            return read.inspect_err(|e| {
                self.fault("metrics", e);
            });
        }
        let Some((f, memory)) = inst
            .core()
            .and_then(|c| Some((c.metrics.clone()?, c.memory)))
        else {
            return Ok(Vec::new());
        };
        inst.store.set_epoch_deadline(ticks);
        let read = match f.call(&mut inst.store, ()) {
            Ok(packed) => {
                let (ptr, len) = wasmcached_abi::unpack_ptr_len(packed);
                let mem = memory.data(&inst.store);
                match len {
                    0 => Ok(Vec::new()),
                    _ => read_metrics(mem, ptr as usize, len as usize),
                }
            }
            Err(e) => Err(format!("{e:#}")),
        };
        read.inspect_err(|e| {
            self.fault("metrics", e);
        })
    }

    /// Whether the running instance exports `wmc_metrics` (ABI v8); it
    /// may still declare none.
    pub fn exports_metrics(&self) -> bool {
        self.inst.as_ref().is_some_and(|i| match &i.guest {
            Guest::Core(c) => c.metrics.is_some(),
            Guest::Component(g) => g.has_metrics(),
        })
    }
}

/// The metrics whose descriptor block is `mem[ptr..ptr + len]`, every
/// descriptor and every value checked against `mem`.
fn read_metrics(mem: &[u8], ptr: usize, len: usize) -> Result<Vec<PluginMetric>, String> {
    if len > m::MAX_BLOCK {
        return Err(format!(
            "metrics block of {len} bytes (at most {})",
            m::MAX_BLOCK
        ));
    }
    let block = ptr
        .checked_add(len)
        .and_then(|end| mem.get(ptr..end))
        .ok_or("metrics block outside guest memory")?;
    let descs = m::metric_descriptors(block)?;
    m::check_regions(&descs, mem.len())?;
    Ok(descs.iter().map(|d| read_one(d, mem)).collect())
}

/// A component's answer to `metrics`, checked by the rules of the core
/// ABI's block (names, help, bounds, counts, at most 256, no name twice).
fn from_component(answer: Vec<component::metrics::Metric>) -> Result<Vec<PluginMetric>, String> {
    use component::metrics::Value;
    if answer.len() > m::MAX_METRICS {
        return Err(format!(
            "{} metrics (at most {})",
            answer.len(),
            m::MAX_METRICS
        ));
    }
    let mut seen = std::collections::HashSet::new();
    answer
        .into_iter()
        .map(|c| {
            if !m::valid_metric_name(c.name.as_bytes()) {
                return Err(format!("metric name {:?} is not valid", c.name));
            }
            if !m::valid_metric_help(c.help.as_bytes()) {
                return Err(format!("metric {}: its help is not valid", c.name));
            }
            if !seen.insert(c.name.clone()) {
                return Err(format!("metric {} twice", c.name));
            }
            let value = match c.value {
                Value::Counter(v) => MetricValue::Counter(v),
                Value::Gauge(v) => MetricValue::Gauge(v),
                Value::Histogram(h) => {
                    if !m::valid_bounds(h.bounds.iter().copied())
                        || h.counts.len() != h.bounds.len() + 1
                    {
                        return Err(format!(
                            "metric {}: {} bounds and {} counts",
                            c.name,
                            h.bounds.len(),
                            h.counts.len()
                        ));
                    }
                    MetricValue::Histogram {
                        bounds: h.bounds,
                        counts: h.counts,
                        sum: h.sum,
                    }
                }
            };
            Ok(PluginMetric {
                name: c.name,
                help: c.help,
                value,
            })
        })
        .collect()
}

/// `d`'s value; [`m::check_regions`] has checked that it lies in `mem`.
fn read_one(d: &MetricDesc<'_>, mem: &[u8]) -> PluginMetric {
    let at = d.offset as usize;
    let word = |i: usize| {
        let o = at + 8 * i;
        u64::from_le_bytes(mem[o..o + 8].try_into().expect("8 bytes"))
    };
    let value = match d.kind {
        MetricKind::Counter => MetricValue::Counter(word(0)),
        MetricKind::Gauge => MetricValue::Gauge(word(0) as i64),
        MetricKind::Histogram => {
            let buckets = d.bound_count() + 1;
            MetricValue::Histogram {
                bounds: d.bounds().collect(),
                counts: (0..buckets).map(word).collect(),
                sum: word(buckets),
            }
        }
    };
    PluginMetric {
        name: d.name.to_string(),
        help: d.help.to_string(),
        value,
    }
}

/// One shard's general stat `lines` and `metrics` as `stats shards` shows
/// them: every name prefixed with `shard:<shard>:`, values uncombined (a
/// gauge with its sign, text of a `#text` stat too), declarations dropped.
fn shard_lines(shard: u32, lines: &[u8], metrics: &[PluginMetric]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(lines.len() + 64 * metrics.len());
    let mut line = |name: std::fmt::Arguments<'_>, value: &dyn std::fmt::Display| {
        // Writing to a Vec cannot fail.
        let _ = writeln!(out, "shard:{shard}:{name} {value}");
    };
    for l in String::from_utf8_lossy(lines).lines() {
        let l = l.trim();
        if StatType::declared_by(l).is_some() {
            continue;
        }
        if let Some((name, value)) = l.split_once(' ') {
            line(format_args!("{name}"), &value.trim());
        }
    }
    for m in metrics {
        let n = &m.name;
        match &m.value {
            MetricValue::Counter(v) => line(format_args!("{LINE_PREFIX}{n}"), v),
            MetricValue::Gauge(v) => line(format_args!("{LINE_PREFIX}{n}"), v),
            MetricValue::Histogram { counts, sum, .. } => {
                let count = counts.iter().fold(0u64, |a, c| a.wrapping_add(*c));
                line(format_args!("{LINE_PREFIX}{n}:count"), &count);
                line(format_args!("{LINE_PREFIX}{n}:sum"), sum);
            }
        }
    }
    out
}

/// What starts every stat line that carries a metric, before the host
/// renames it for `stats plugin`.
const LINE_PREFIX: &str = "metric:";

/// Appends `metrics` to a shard's general stat lines, so that the
/// figures travel with them and are summed over shards.
///
/// Summing stat lines over shards (host/src/reply.rs) adds only unsigned
/// numbers and takes the maximum of names ending in `age`, `_time`, …; a
/// metric's line name therefore ends in `:+` (and a gauge's negative part
/// goes in a second `:-` line), which [`stat_lines_for_display`] folds
/// back.
pub fn append_stat_lines(out: &mut Vec<u8>, metrics: &[PluginMetric]) {
    use std::io::Write;
    for metric in metrics {
        let n = &metric.name;
        // Writing to a Vec cannot fail.
        let _ = match &metric.value {
            MetricValue::Counter(v) => writeln!(out, "{LINE_PREFIX}{n}:+ {v}"),
            MetricValue::Gauge(v) => writeln!(
                out,
                "{LINE_PREFIX}{n}:+ {}\n{LINE_PREFIX}{n}:- {}",
                v.max(&0),
                v.min(&0).unsigned_abs()
            ),
            MetricValue::Histogram { counts, sum, .. } => {
                let count = counts.iter().fold(0u64, |a, c| a.wrapping_add(*c));
                writeln!(
                    out,
                    "{LINE_PREFIX}{n}:count:+ {count}\n{LINE_PREFIX}{n}:sum:+ {sum}"
                )
            }
        };
    }
}

/// `stats plugin`'s lines after summing: metric lines get their display
/// names (`metric:<name>`, `metric:<name>:count`, `metric:<name>:sum`) and
/// a gauge its signed total; every other line is left as it is.
pub fn stat_lines_for_display(lines: Vec<(String, String)>) -> Vec<(String, String)> {
    let negative: std::collections::HashMap<String, u64> = lines
        .iter()
        .filter(|(n, _)| n.starts_with(LINE_PREFIX))
        .filter_map(|(n, v)| Some((n.strip_suffix(":-")?.to_string(), v.parse().ok()?)))
        .collect();
    lines
        .into_iter()
        .filter_map(|(name, value)| {
            // A plugin's own stat line that merely looks like one of these
            // is shown as it is.
            let Some(base) = name
                .strip_prefix(LINE_PREFIX)
                .and_then(|_| name.strip_suffix(":+"))
            else {
                let folded = name.starts_with(LINE_PREFIX)
                    && negative.contains_key(name.strip_suffix(":-").unwrap_or_default());
                return (!folded).then_some((name, value));
            };
            let value = match (negative.get(base), value.parse::<u64>()) {
                (Some(&neg), Ok(pos)) => (pos as i128 - neg as i128).to_string(),
                _ => value,
            };
            Some((base.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::test_support::*;
    use crate::plugin::{FaultStats, Plugin};
    use crate::reply::Aggregate;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use wasmcached_abi::metrics::{encode_metrics, MetricSpec};

    fn block(specs: &[MetricSpec<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_metrics(&mut out, specs.iter().copied());
        out
    }

    const BOUNDS: [f64; 2] = [10.0, 100.0];

    fn specs() -> [MetricSpec<'static>; 3] {
        [
            MetricSpec {
                kind: MetricKind::Counter,
                name: "done_total",
                help: "things done",
                offset: 1024,
                bounds: &[],
            },
            MetricSpec {
                kind: MetricKind::Gauge,
                name: "level",
                help: "",
                offset: 1032,
                bounds: &[],
            },
            MetricSpec {
                kind: MetricKind::Histogram,
                name: "sizes",
                help: "value sizes",
                offset: 1040,
                bounds: &BOUNDS,
            },
        ]
    }

    /// A memory with the block at 0 and values at 1024.. .
    fn memory(block: &[u8], words: &[u64]) -> Vec<u8> {
        let mut mem = vec![0u8; 2048];
        mem[..block.len()].copy_from_slice(block);
        for (i, w) in words.iter().enumerate() {
            mem[1024 + 8 * i..1032 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        mem
    }

    #[test]
    fn values_are_read_from_memory() {
        let b = block(&specs());
        let mem = memory(&b, &[7, (-3i64) as u64, 1, 2, 3, 250]);
        let got = read_metrics(&mem, 0, b.len()).unwrap();
        assert_eq!(got[0].value, MetricValue::Counter(7));
        assert_eq!(got[0].help, "things done");
        assert_eq!(got[1].value, MetricValue::Gauge(-3));
        assert_eq!(
            got[2].value,
            MetricValue::Histogram {
                bounds: BOUNDS.to_vec(),
                counts: vec![1, 2, 3],
                sum: 250
            }
        );
    }

    #[test]
    fn bad_blocks_are_refused() {
        let b = block(&specs());
        let mem = memory(&b, &[]);
        assert!(read_metrics(&mem, 0, b.len() - 1).is_err(), "truncated");
        assert!(read_metrics(&mem, 2040, b.len()).is_err(), "block outside");
        assert!(read_metrics(&mem, usize::MAX, 2).is_err(), "wraps");
        // The histogram's four words would end past the memory.
        assert!(read_metrics(&mem[..1070], 0, b.len())
            .unwrap_err()
            .contains("outside"));
        let mut bad = specs();
        bad[0].name = "done-total";
        let b = block(&bad);
        assert!(read_metrics(&memory(&b, &[]), 0, b.len()).is_err());
    }

    #[test]
    fn stat_lines_sum_over_shards_and_keep_signs() {
        let shard = |c: u64, g: i64, counts: Vec<u64>| {
            let metrics = [
                PluginMetric {
                    name: "reclaimed_age".into(),
                    help: String::new(),
                    value: MetricValue::Counter(c),
                },
                PluginMetric {
                    name: "level".into(),
                    help: String::new(),
                    value: MetricValue::Gauge(g),
                },
                PluginMetric {
                    name: "sizes".into(),
                    help: String::new(),
                    value: MetricValue::Histogram {
                        bounds: vec![1.0],
                        counts,
                        sum: 40,
                    },
                },
            ];
            let mut out = b"curr_items 3\nmetric:own 1\n".to_vec();
            append_stat_lines(&mut out, &metrics);
            out
        };
        let mut agg = Aggregate::default();
        agg.add_lines(&shard(5, 4, vec![1, 2]));
        agg.add_lines(&shard(6, -10, vec![0, 1]));
        let lines = stat_lines_for_display(agg.drain());
        let want = [
            ("curr_items", "6"),
            ("metric:own", "2"),
            // Summed although the name ends in "age".
            ("metric:reclaimed_age", "11"),
            ("metric:level", "-6"),
            ("metric:sizes:count", "4"),
            ("metric:sizes:sum", "80"),
        ];
        let got: Vec<(&str, &str)> = lines
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn shard_lines_name_every_line_after_its_shard() {
        let metrics = [
            PluginMetric {
                name: "level".into(),
                help: String::new(),
                value: MetricValue::Gauge(-4),
            },
            PluginMetric {
                name: "done_total".into(),
                help: String::new(),
                value: MetricValue::Counter(9),
            },
            PluginMetric {
                name: "sizes".into(),
                help: String::new(),
                value: MetricValue::Histogram {
                    bounds: vec![1.0],
                    counts: vec![2, 3],
                    sum: 40,
                },
            },
        ];
        let lines = b"curr_items 3\n#max\npeak 7\n#text\nrole primary east\nno-space\n";
        let got = String::from_utf8(shard_lines(5, lines, &metrics)).unwrap();
        assert_eq!(
            got,
            "shard:5:curr_items 3\nshard:5:peak 7\nshard:5:role primary east\n\
             shard:5:metric:level -4\nshard:5:metric:done_total 9\n\
             shard:5:metric:sizes:count 5\nshard:5:metric:sizes:sum 40\n"
        );
    }

    /// Asked for the per-shard group, a shard answers with its own lines
    /// (the guest is asked for its general group, never the host's number).
    #[test]
    fn the_default_store_answers_the_per_shard_group() {
        let _serial = serial();
        let mut s = shard(&default_plugin());
        set(&mut s, "k", b"v", 0);
        let text = String::from_utf8(s.stats(Shard::STATS_BY_SHARD)).unwrap();
        let id = s.shard_id();
        assert!(
            text.lines().all(|l| l.starts_with(&format!("shard:{id}:"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("shard:{id}:curr_items 1\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("shard:{id}:segment_size ")),
            "{text}"
        );
        assert!(
            text.contains(&format!("shard:{id}:metric:budget_bytes ")),
            "{text}"
        );
        assert!(!text.contains('#'), "declarations are dropped: {text}");
    }

    #[test]
    fn default_store_declares_metrics_and_older_plugins_have_none() {
        let _serial = serial();
        let mut s = shard(&default_plugin());
        set(&mut s, "k", &[b'v'; 300], 0);
        let metrics = s.plugin_metrics();
        let sizes = metrics
            .iter()
            .find(|m| m.name == "stored_value_bytes")
            .expect("the default store declares stored_value_bytes");
        let MetricValue::Histogram { counts, sum, .. } = &sizes.value else {
            panic!("{sizes:?}")
        };
        assert_eq!(counts.iter().sum::<u64>(), 1);
        assert_eq!(*sum, 300);
        let forgetful = Arc::new(Plugin::new(FORGETFUL.as_bytes(), "forgetful.wat").unwrap());
        assert!(shard(&forgetful).plugin_metrics().is_empty());
    }

    #[test]
    fn a_malformed_block_is_a_fault() {
        let _serial = serial();
        // `wmc_metrics` answers a block whose count promises a descriptor
        // that is not there.
        let wat = r#"(module
            (memory (export "memory") 1)
            (data (i32.const 256) "\01\00\00\00")
            (func (export "wmc_abi_version") (result i32) (i32.const 8))
            (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
            (func (export "wmc_init") (param i32) (result i32) (i32.const 0))
            (func (export "wmc_batch") (param i32) (result i64) (i64.const 0))
            (func (export "wmc_metrics") (result i64) (i64.const 0x10000000004)))"#;
        let p = Arc::new(Plugin::new(wat.as_bytes(), "bad-metrics.wat").unwrap());
        let faults = Arc::new(FaultStats::default());
        let mut s = Shard::new(p, config(), faults.clone()).unwrap();
        assert!(s.plugin_metrics().is_empty());
        assert_eq!(faults.plugin_traps.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_components_metrics_are_checked_as_a_block_is() {
        use component::metrics::{Histogram, Metric, Value};
        let metric = |name: &str, value: Value| Metric {
            name: name.into(),
            help: "help".into(),
            value,
        };
        let histogram = |bounds: Vec<f64>, counts: Vec<u64>| {
            Value::Histogram(Histogram {
                bounds,
                counts,
                sum: 9,
            })
        };
        let good = from_component(vec![
            metric("hits", Value::Counter(3)),
            metric("level", Value::Gauge(-2)),
            metric("sizes", histogram(vec![1.0, 2.0], vec![1, 0, 4])),
        ])
        .unwrap();
        assert_eq!(good[1].value, MetricValue::Gauge(-2));
        assert_eq!(
            good[2].value,
            MetricValue::Histogram {
                bounds: vec![1.0, 2.0],
                counts: vec![1, 0, 4],
                sum: 9
            }
        );
        for (bad, why) in [
            (vec![metric("9hits", Value::Counter(1))], "is not valid"),
            (
                vec![metric("a", Value::Counter(1)), metric("a", Value::Gauge(1))],
                "twice",
            ),
            (
                vec![metric("h", histogram(vec![1.0, 2.0], vec![1, 2]))],
                "2 bounds and 2 counts",
            ),
            (
                vec![metric("h", histogram(vec![2.0, 1.0], vec![1, 2, 3]))],
                "2 bounds and 3 counts",
            ),
        ] {
            let err = from_component(bad).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let many = (0..=m::MAX_METRICS)
            .map(|i| metric(&format!("m{i}"), Value::Counter(0)))
            .collect();
        assert!(from_component(many).unwrap_err().contains("at most 256"));
    }
}
