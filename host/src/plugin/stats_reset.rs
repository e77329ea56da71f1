//! `stats reset` for the plugin's figures. memcached zeroes its counters
//! (`total_items`, `evictions`, the per-class item and slab counters, …)
//! and leaves its levels (`curr_items`, `bytes`, …) alone. Here those
//! counters are the plugin's, in its memory, and the ABI has no call that
//! would zero them; so each shard remembers its counters' values at the
//! reset, and every `stats` read after it shows the difference.
//!
//! That works with every plugin, of any ABI version or a component, and
//! keeps the plugin's own figures whole where they must only grow: a
//! Prometheus scrape (`/metrics`) reads them as they are, as a counter
//! there must never go down.
//!
//! Which lines are counters: those the plugin types `#counter`, and
//! untyped lines under memcached's names for what its `stats reset`
//! zeroes (measured against memcached 1.6.18: tests/stats_reset.rs). The
//! ABI v8 metrics (`metric:` lines) are Prometheus figures and stay whole.
//! A restarted or reloaded instance counts from zero again, so the
//! remembered values belong to one instance (the shard's generation).

use std::collections::HashMap;
use wasmcached_abi::{stats_group, StatType};

/// memcached's per-class item counters (`items:<class>:<name>`), which
/// `stats reset` zeroes; `stats` shows their sums under the same names
/// (`evicted` as `evictions`).
const ITEM_COUNTERS: &[&str] = &[
    "evicted",
    "evicted_nonzero",
    "outofmemory",
    "tailrepairs",
    "reclaimed",
    "expired_unfetched",
    "evicted_unfetched",
    "evicted_active",
    "crawler_reclaimed",
    "crawler_items_checked",
    "lrutail_reflocked",
    "moves_to_cold",
    "moves_to_warm",
    "moves_within_lru",
    "direct_reclaims",
    "hits_to_hot",
    "hits_to_warm",
    "hits_to_cold",
    "hits_to_temp",
];

/// The other general stats a store reports that `stats reset` zeroes (the
/// host's own counters reset themselves).
const GENERAL_COUNTERS: &[&str] = &[
    "evictions",
    "total_items",
    "get_expired",
    "get_flushed",
    "lru_crawler_starts",
    "lru_maintainer_juggles",
    "malloc_fails",
    "slabs_moved",
    "slab_reassign_rescues",
    "slab_reassign_chunk_rescues",
    "slab_reassign_evictions_nomem",
    "slab_reassign_inline_reclaim",
    "slab_reassign_busy_items",
    "slab_reassign_busy_deletes",
];

/// The same for a class's `stats slabs` lines (`<class>:<name>`).
const SLAB_COUNTERS: &[&str] = &[
    "get_hits",
    "cmd_set",
    "delete_hits",
    "incr_hits",
    "decr_hits",
    "cas_hits",
    "cas_badval",
    "touch_hits",
];

/// The groups whose counters a reset remembers.
const GROUPS: [i32; 3] = [stats_group::GENERAL, stats_group::ITEMS, stats_group::SLABS];

/// A shard's counters as they were at the last `stats reset`.
#[derive(Default)]
pub(super) struct Baseline {
    /// The instance they were read from (`Shard::generation`).
    pub(super) generation: u64,
    at_reset: HashMap<(i32, String), u64>,
}

impl Baseline {
    /// The groups whose counters a reset remembers.
    pub(super) const GROUPS: [i32; 3] = GROUPS;

    /// An empty baseline for the instance of `generation`.
    pub(super) fn new(generation: u64) -> Baseline {
        Baseline {
            generation,
            at_reset: HashMap::new(),
        }
    }

    /// Keeps the counters among `group`'s `lines` as they are.
    pub(super) fn remember(&mut self, group: i32, lines: &[u8]) {
        for (name, value) in counters(group, lines) {
            self.at_reset.insert((group, name.to_string()), value);
        }
    }

    /// `lines` with each remembered counter less its remembered value.
    pub(super) fn apply(&self, group: i32, lines: Vec<u8>) -> Vec<u8> {
        if self.at_reset.is_empty() || !GROUPS.contains(&group) {
            return lines;
        }
        let text = String::from_utf8_lossy(&lines);
        let mut out = Vec::with_capacity(lines.len());
        // memcached zeroes a class's `evicted_time` too: it shows 0 until
        // the class evicts again.
        let mut evicted_since = HashMap::new();
        for (line, counter) in each_line(group, &text) {
            let shown = match counter {
                Some((name, value)) => self.at_reset.get(&(group, name.to_string())).map(|&base| {
                    // A counter below its remembered value started over.
                    let now = value.checked_sub(base).unwrap_or(value);
                    if let Some(class) = name.strip_suffix(":evicted") {
                        evicted_since.insert(class.to_string(), now);
                    }
                    (name, now)
                }),
                None => line.trim().split_once(' ').and_then(|(name, value)| {
                    value.trim().parse::<u64>().ok()?;
                    let class = name.strip_suffix(":evicted_time")?;
                    (group == stats_group::ITEMS && evicted_since.get(class) == Some(&0))
                        .then_some((name, 0))
                }),
            };
            match shown {
                Some((name, value)) => out.extend_from_slice(format!("{name} {value}").as_bytes()),
                None => out.extend_from_slice(line.as_bytes()),
            }
            out.push(b'\n');
        }
        out
    }
}

/// Each line of `text` (stat lines of `group`), with its name and value
/// when it is a counter with a number; declarations type the line after
/// them, as the host's combining of shards reads them.
fn each_line(group: i32, text: &str) -> impl Iterator<Item = (&str, Option<(&str, u64)>)> {
    let mut declared = None;
    text.lines().map(move |line| {
        let trimmed = line.trim();
        if let Some(t) = StatType::declared_by(trimmed) {
            declared = Some(t);
            return (line, None);
        }
        let typed = declared.take();
        let counter = trimmed.split_once(' ').and_then(|(name, value)| {
            let value = value.trim().parse::<u64>().ok()?;
            is_counter(group, name, typed).then_some((name, value))
        });
        (line, counter)
    })
}

/// The counters among `group`'s stat lines, with their values.
fn counters(group: i32, lines: &[u8]) -> Vec<(&str, u64)> {
    let text = std::str::from_utf8(lines).unwrap_or("");
    each_line(group, text).filter_map(|(_, c)| c).collect()
}

/// Whether `stats reset` zeroes the line `name` of `group`, typed `typed`.
fn is_counter(group: i32, name: &str, typed: Option<StatType>) -> bool {
    if name.starts_with("metric:") {
        return false;
    }
    match typed {
        Some(t) => t == StatType::Counter,
        None => match group {
            stats_group::GENERAL => {
                GENERAL_COUNTERS.contains(&name)
                    || (name != "evicted" && ITEM_COUNTERS.contains(&name))
            }
            stats_group::ITEMS => name
                .strip_prefix("items:")
                .and_then(|n| n.split_once(':'))
                .is_some_and(|(_, n)| ITEM_COUNTERS.contains(&n)),
            stats_group::SLABS => name
                .split_once(':')
                .is_some_and(|(_, n)| SLAB_COUNTERS.contains(&n)),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_typed_or_memcached_names() {
        let general =
            b"curr_items 5\ntotal_items 9\n#counter\nhits 3\n#gauge\nevictions 2\nquota 4\n";
        assert_eq!(
            counters(stats_group::GENERAL, general),
            vec![("total_items", 9), ("hits", 3)]
        );
        let items = b"items:1:number 4\nitems:1:evicted 7\nitems:12:hits_to_cold 2\n";
        assert_eq!(
            counters(stats_group::ITEMS, items),
            vec![("items:1:evicted", 7), ("items:12:hits_to_cold", 2)]
        );
        let slabs = b"1:chunk_size 96\n1:get_hits 8\nactive_slabs 1\ntotal_malloced 10\n";
        assert_eq!(counters(stats_group::SLABS, slabs), vec![("1:get_hits", 8)]);
        let metrics = b"#counter\nmetric:reqs:+ 5\n";
        assert!(counters(stats_group::GENERAL, metrics).is_empty());
    }

    fn shown(b: &Baseline, group: i32, lines: &str) -> String {
        String::from_utf8(b.apply(group, lines.as_bytes().to_vec())).unwrap()
    }

    #[test]
    fn counters_show_what_came_after_the_reset() {
        let mut b = Baseline::default();
        let general = "curr_items 5\ntotal_items 9\n#counter\nhits 3\n";
        assert_eq!(shown(&b, stats_group::GENERAL, general), general);
        b.remember(stats_group::GENERAL, general.as_bytes());
        assert_eq!(
            shown(
                &b,
                stats_group::GENERAL,
                "curr_items 6\ntotal_items 10\n#counter\nhits 3\n"
            ),
            "curr_items 6\ntotal_items 1\n#counter\nhits 0\n"
        );
        // Started over (the plugin zeroed it itself): shown as it is.
        assert_eq!(
            shown(&b, stats_group::GENERAL, "total_items 2\n"),
            "total_items 2\n"
        );
        // A counter that appeared after the reset counts from zero anyway.
        assert_eq!(
            shown(&b, stats_group::GENERAL, "evictions 4\n"),
            "evictions 4\n"
        );
        // Other groups are not touched.
        assert_eq!(shown(&b, stats_group::SIZES, "96 3\n"), "96 3\n");
    }

    #[test]
    fn evicted_time_is_zero_until_the_class_evicts_again() {
        let mut b = Baseline::default();
        let items = "items:1:evicted 7\nitems:1:evicted_time 30\nitems:2:evicted 1\nitems:2:evicted_time 5\n";
        b.remember(stats_group::ITEMS, items.as_bytes());
        assert_eq!(
            shown(&b, stats_group::ITEMS, "items:1:evicted 7\nitems:1:evicted_time 31\nitems:2:evicted 2\nitems:2:evicted_time 0\n"),
            "items:1:evicted 0\nitems:1:evicted_time 0\nitems:2:evicted 1\nitems:2:evicted_time 0\n"
        );
    }
}
