//! What a replay found, as `name value` lines or one JSON object; the
//! fields are documented in docs/replay.md.

use std::fmt::Write;

/// The counts of one replay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub plugin: String,
    pub shards: u32,
    pub memory_limit_bytes: u64,
    /// Every request replayed, warm-up included.
    pub requests: u64,
    pub warmup_requests: u64,
    /// After the warm-up: reads, and how they were answered.
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
    /// Stores the trace asked for, and the sets that filled a missed get.
    pub sets: u64,
    pub fills: u64,
    /// Requests the plugin answered with an error, or that a fault lost.
    pub errors: u64,
    pub plugin_faults: u64,
    /// From the plugin's `stats`, summed over shards.
    pub evictions: u64,
    pub expirations: u64,
    pub curr_items: u64,
    pub memory_bytes: u64,
    pub trace_seconds: u64,
    pub elapsed_seconds: f64,
}

impl Report {
    pub fn miss_ratio(&self) -> f64 {
        ratio(self.misses, self.gets)
    }

    pub fn hit_ratio(&self) -> f64 {
        ratio(self.hits, self.gets)
    }

    pub fn bytes_per_item(&self) -> f64 {
        ratio(self.memory_bytes, self.curr_items)
    }

    pub fn requests_per_second(&self) -> f64 {
        if self.elapsed_seconds > 0.0 {
            self.requests as f64 / self.elapsed_seconds
        } else {
            0.0
        }
    }

    /// The fields in order; numbers as they are printed.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let n = |v: u64| v.to_string();
        vec![
            ("shards", n(self.shards as u64)),
            ("memory_limit_bytes", n(self.memory_limit_bytes)),
            ("requests", n(self.requests)),
            ("warmup_requests", n(self.warmup_requests)),
            ("gets", n(self.gets)),
            ("hits", n(self.hits)),
            ("misses", n(self.misses)),
            ("hit_ratio", format!("{:.6}", self.hit_ratio())),
            ("miss_ratio", format!("{:.6}", self.miss_ratio())),
            ("sets", n(self.sets)),
            ("fills", n(self.fills)),
            ("errors", n(self.errors)),
            ("plugin_faults", n(self.plugin_faults)),
            ("evictions", n(self.evictions)),
            ("expirations", n(self.expirations)),
            ("curr_items", n(self.curr_items)),
            ("memory_bytes", n(self.memory_bytes)),
            ("bytes_per_item", format!("{:.1}", self.bytes_per_item())),
            ("trace_seconds", n(self.trace_seconds)),
            ("elapsed_seconds", format!("{:.3}", self.elapsed_seconds)),
            (
                "requests_per_second",
                format!("{:.0}", self.requests_per_second()),
            ),
        ]
    }

    /// One `name value` line per field, the plugin's name first.
    pub fn text(&self) -> String {
        let mut out = format!("plugin {}\n", self.plugin);
        for (name, value) in self.fields() {
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        let mut out = format!("{{\"plugin\":{}", json_string(&self.plugin));
        for (name, value) in self.fields() {
            let _ = write!(out, ",\"{name}\":{value}");
        }
        out.push_str("}\n");
        out
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            plugin: "a \"b\"".into(),
            shards: 2,
            requests: 10,
            gets: 8,
            hits: 6,
            misses: 2,
            memory_bytes: 1000,
            curr_items: 4,
            elapsed_seconds: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn text_has_one_name_value_line_per_field() {
        let text = sample().text();
        assert!(text.starts_with("plugin a \"b\"\n"));
        for line in [
            "hits 6",
            "miss_ratio 0.250000",
            "bytes_per_item 250.0",
            "requests_per_second 20",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(text.lines().all(|l| l.split_once(' ').is_some()));
    }

    #[test]
    fn json_is_one_object() {
        let json = sample().json();
        assert!(json.starts_with("{\"plugin\":\"a \\\"b\\\"\",\"shards\":2,"));
        assert!(json.contains("\"hit_ratio\":0.750000"));
        assert!(json.ends_with("}\n"));
    }

    #[test]
    fn empty_runs_divide_by_nothing() {
        let r = Report::default();
        assert_eq!(
            (r.miss_ratio(), r.bytes_per_item(), r.requests_per_second()),
            (0.0, 0.0, 0.0)
        );
    }
}
