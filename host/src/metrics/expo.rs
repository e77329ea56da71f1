//! The exposition formats: Prometheus' text format 0.0.4 and OpenMetrics
//! 1.0.0, written the way client_golang's `expfmt` writes them, so that a
//! scrape of wasmcached reads like a scrape of memcached_exporter.

use std::fmt::Write;

/// What a scrape is answered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the scrape's Accept header names
    /// `application/openmetrics-text` (with a q-value above 0), else Text.
    /// Prometheus lists every format it parses, with its preference as
    /// q-values, so naming OpenMetrics at all means it reads it.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let names_openmetrics = accept.is_some_and(|header| {
            header
                .split(',')
                .any(|range| accepts(range, "application/openmetrics-text"))
        });
        if names_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The Content-Type of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Whether one media range of an Accept header (`type/sub;param=…;q=…`)
/// takes `media_type`; `q=0` means "not acceptable" (RFC 9110).
fn accepts(range: &str, media_type: &str) -> bool {
    let mut parts = range.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case(media_type))
    {
        return false;
    }
    let q = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
        .and_then(|(_, v)| v.trim().parse::<f64>().ok());
    q.is_none_or(|q| q > 0.0)
}

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family: its name as Prometheus stores it (a counter's with
/// its `_total`), its help text, its type and its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// One sample: `suffix` is "" except for a histogram's `_bucket`, `_sum`
/// and `_count` (see [`histogram`]); `labels` in the order they are written.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub suffix: &'static str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// One histogram's samples: cumulative `_bucket`s, one per bound plus
/// `le="+Inf"`, then `_sum` and `_count`. `bounds` are the buckets' upper
/// bounds, ascending and finite; `counts` are the observations that fell in
/// each bucket (not cumulative), with one more count than bounds for those
/// above the last bound.
pub fn histogram(
    labels: &[(String, String)],
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
) -> Vec<Sample> {
    assert_eq!(
        counts.len(),
        bounds.len() + 1,
        "one count per bucket and +Inf"
    );
    let with = |extra: Option<String>| {
        let mut l = labels.to_vec();
        l.extend(extra.map(|le| ("le".to_string(), le)));
        l
    };
    let mut samples = Vec::with_capacity(bounds.len() + 3);
    let mut total = 0u64;
    let les = bounds.iter().map(|&b| number(b)).chain(["+Inf".into()]);
    for (le, &n) in les.zip(counts) {
        total += n;
        samples.push(Sample {
            suffix: "_bucket",
            labels: with(Some(le)),
            value: total as f64,
        });
    }
    for (suffix, value) in [("_sum", sum), ("_count", total as f64)] {
        samples.push(Sample {
            suffix,
            labels: with(None),
            value,
        });
    }
    samples
}

/// The exposition of `families` in `format`. Families without samples are
/// left out, as client_golang leaves them out.
pub fn render(families: &[Family], format: Format) -> String {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        write_family(&mut out, family, format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_family(out: &mut String, family: &Family, format: Format) {
    debug_assert!(valid_name(&family.name, true), "{}", family.name);
    // OpenMetrics names a counter family without `_total` and gives every
    // one of its samples that suffix. A counter whose name lacks it (six of
    // memcached_exporter's, `memcached_uptime_seconds` among them) would
    // then be stored under another name than the dashboards query: it is
    // written as `unknown` instead, which keeps its samples' names.
    let openmetrics = format == Format::OpenMetrics;
    let openmetrics_counter =
        openmetrics && family.kind == Kind::Counter && family.name.ends_with("_total");
    let name = if openmetrics_counter {
        family.name.strip_suffix("_total").unwrap_or(&family.name)
    } else {
        &family.name
    };
    let kind = match family.kind {
        Kind::Counter if openmetrics && !openmetrics_counter => "unknown",
        k => k.name(),
    };
    if !family.help.is_empty() {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help, format));
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for sample in &family.samples {
        let suffix = if openmetrics_counter {
            "_total"
        } else {
            sample.suffix
        };
        out.push_str(name);
        out.push_str(suffix);
        write_labels(out, &sample.labels, sample.suffix == "_bucket", format);
        out.push(' ');
        out.push_str(&number(sample.value));
        out.push('\n');
    }
}

fn write_labels(out: &mut String, labels: &[(String, String)], bucket: bool, format: Format) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        debug_assert!(valid_name(name, false), "label {name}");
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        match bucket_bound(bucket, name, value) {
            Some(le) => out.push_str(&spell_bound(le, format)),
            None => escape_into(out, value, true),
        }
        out.push('"');
    }
    out.push('}');
}

fn bucket_bound(bucket: bool, name: &str, value: &str) -> Option<f64> {
    match (bucket, name) {
        (true, "le") => parse_number(value),
        _ => None,
    }
}

/// A bucket bound as each format's writer spells it: OpenMetrics wants its
/// canonical number, with `.0` on an integer (`le="1.0"`).
fn spell_bound(le: f64, format: Format) -> String {
    let text = number(le);
    let integral = !text.contains(['.', 'e', 'I', 'N']);
    match format {
        Format::OpenMetrics if integral => text + ".0",
        _ => text,
    }
}

/// A sample value: integers without a fraction, others in Rust's shortest
/// round-trip spelling (an exponent at the extremes), which both formats'
/// parsers read back to the same f64.
fn number(v: f64) -> String {
    // 2^53: beyond it an f64 integer no longer prints as its exact i64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        String::from(if v > 0.0 { "+Inf" } else { "-Inf" })
    } else if v.fract() == 0.0 && v.abs() < EXACT {
        (v as i64).to_string()
    } else if (1e-4..1e15).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

fn parse_number(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// The text format escapes only backslash and newline in HELP; OpenMetrics
/// escapes HELP like a label value.
fn escape_help(help: &str, format: Format) -> String {
    let mut out = String::with_capacity(help.len());
    escape_into(&mut out, help, format == Format::OpenMetrics);
    out
}

fn escape_into(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names, without `:` for labels.
fn valid_name(name: &str, metric: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (metric && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

/// A strict reader of both formats, for tests: it checks every line against
/// the formats' grammar and the families' structure, and gives back what
/// was written.
#[cfg(test)]
pub(crate) mod grammar {
    use crate::metrics::expo::{parse_number, valid_name, Format};
    use std::collections::HashSet;

    #[derive(Clone, Debug, PartialEq)]
    pub(crate) struct ParsedFamily {
        pub name: String,
        pub help: Option<String>,
        pub kind: String,
        pub samples: Vec<ParsedSample>,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub(crate) struct ParsedSample {
        pub name: String,
        pub labels: Vec<(String, String)>,
        pub value: f64,
    }

    /// The families of an exposition, or what is wrong with it.
    pub(crate) fn parse(text: &str, format: Format) -> Result<Vec<ParsedFamily>, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the exposition does not end in a newline".into());
        }
        // Not `lines()`: it would also take a `\r` that belongs to a value.
        let mut lines: Vec<&str> = text.split_terminator('\n').collect();
        if format == Format::OpenMetrics && lines.pop() != Some("# EOF") {
            return Err("OpenMetrics without a final # EOF".into());
        }
        let mut families: Vec<ParsedFamily> = Vec::new();
        let mut seen = HashSet::new();
        for (n, line) in lines.into_iter().enumerate() {
            let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
            if let Some(rest) = line.strip_prefix("# ") {
                let (keyword, rest) = rest.split_once(' ').ok_or_else(|| at("comment".into()))?;
                let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                if !valid_name(name, true) {
                    return Err(at(format!("bad metric name {name:?}")));
                }
                let family = metadata_family(&mut families, &mut seen, name).map_err(at)?;
                match keyword {
                    "HELP" if family.help.is_none() => {
                        family.help =
                            Some(unescape(rest, format == Format::OpenMetrics).map_err(at)?)
                    }
                    "TYPE" if family.kind.is_empty() => {
                        let types: &[&str] = match format {
                            Format::Text => &["counter", "gauge", "histogram"],
                            Format::OpenMetrics => &["counter", "gauge", "histogram", "unknown"],
                        };
                        if !types.contains(&rest) {
                            return Err(at(format!("unknown type {rest:?}")));
                        }
                        family.kind = rest.to_string();
                    }
                    _ => return Err(at("unexpected or repeated metadata".into())),
                }
            } else {
                let sample = parse_sample(line).map_err(at)?;
                let family = families
                    .last_mut()
                    .ok_or_else(|| at("sample before TYPE".into()))?;
                let allowed = suffixes(&family.kind, format);
                if !allowed
                    .iter()
                    .any(|s| sample.name == format!("{}{s}", family.name))
                {
                    return Err(at(format!("sample outside family {}", family.name)));
                }
                family.samples.push(sample);
            }
        }
        for family in &families {
            check_family(family)?;
        }
        Ok(families)
    }

    /// The family a metadata line belongs to: the current one, or a new one
    /// when the name changes (a name may not come back).
    fn metadata_family<'a>(
        families: &'a mut Vec<ParsedFamily>,
        seen: &mut HashSet<String>,
        name: &str,
    ) -> Result<&'a mut ParsedFamily, String> {
        let current = families
            .last()
            .is_some_and(|f| f.name == name && f.samples.is_empty());
        if !current {
            if !seen.insert(name.to_string()) {
                return Err(format!("family {name} appears twice"));
            }
            families.push(ParsedFamily {
                name: name.to_string(),
                help: None,
                kind: String::new(),
                samples: Vec::new(),
            });
        }
        Ok(families.last_mut().unwrap())
    }

    fn suffixes(kind: &str, format: Format) -> &'static [&'static str] {
        match (kind, format) {
            ("counter", Format::OpenMetrics) => &["_total"],
            ("histogram", _) => &["_bucket", "_sum", "_count"],
            ("", _) => &[],
            _ => &[""],
        }
    }

    fn check_family(family: &ParsedFamily) -> Result<(), String> {
        if family.kind.is_empty() {
            return Err(format!("family {} has no TYPE", family.name));
        }
        if family.samples.is_empty() {
            return Err(format!("family {} has no samples", family.name));
        }
        if family.kind == "histogram" {
            check_buckets(family)?;
        }
        Ok(())
    }

    /// Buckets ascend in `le` and in count, end at `+Inf`, and `+Inf`
    /// equals `_count`.
    fn check_buckets(family: &ParsedFamily) -> Result<(), String> {
        let mut last: Option<(f64, f64)> = None;
        for s in &family.samples {
            let le = s.labels.iter().find(|(k, _)| k == "le");
            if s.name.ends_with("_bucket") {
                let le = parse_number(&le.ok_or("bucket without le")?.1).ok_or("bad le")?;
                if last.is_some_and(|(l, v)| le <= l || s.value < v) {
                    return Err(format!("{}: buckets not cumulative", family.name));
                }
                last = Some((le, s.value));
            } else if le.is_some() {
                return Err(format!("{}: le outside a bucket", family.name));
            } else if s.name.ends_with("_count") {
                if last != Some((f64::INFINITY, s.value)) {
                    return Err(format!("{}: +Inf bucket is not _count", family.name));
                }
                last = None;
            }
        }
        Ok(())
    }

    fn parse_sample(line: &str) -> Result<ParsedSample, String> {
        let name_end = line.find(['{', ' ']).ok_or("no value")?;
        let name = &line[..name_end];
        if !valid_name(name, true) {
            return Err(format!("bad metric name {name:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = parse_labels(r, &mut labels)?;
        }
        let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
        let value = parse_number(value).ok_or(format!("bad value {value:?}"))?;
        Ok(ParsedSample {
            name: name.to_string(),
            labels,
            value,
        })
    }

    /// `name="value",…}`; the rest of the line after the `}`.
    fn parse_labels<'a>(
        mut rest: &'a str,
        labels: &mut Vec<(String, String)>,
    ) -> Result<&'a str, String> {
        loop {
            let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
            if !valid_name(name, false) || labels.iter().any(|(n, _)| n == name) {
                return Err(format!("bad or repeated label name {name:?}"));
            }
            let end = closing_quote(after).ok_or("unterminated label value")?;
            labels.push((name.to_string(), unescape(&after[..end], true)?));
            rest = &after[end + 1..];
            match rest.as_bytes().first() {
                Some(b',') => rest = &rest[1..],
                Some(b'}') => return Ok(&rest[1..]),
                _ => return Err("label not followed by , or }".into()),
            }
        }
    }

    fn closing_quote(s: &str) -> Option<usize> {
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            match (escaped, c) {
                (false, '"') => return Some(i),
                (false, '\\') => escaped = true,
                _ => escaped = false,
            }
        }
        None
    }

    /// Undoes the escaping; `quote`: `\"` is an escape (label values, and
    /// OpenMetrics' HELP), else a backslash and a quote.
    pub(crate) fn unescape(s: &str, quote: bool) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\n' || (quote && c == '"') {
                return Err(format!("unescaped {c:?}"));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if quote => out.push('"'),
                other => return Err(format!("bad escape \\{other:?}")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::grammar::parse;
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn family(name: &str, kind: Kind, samples: Vec<Sample>) -> Family {
        Family {
            name: name.into(),
            help: format!("Help for {name}."),
            kind,
            samples,
        }
    }

    fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            suffix: "",
            labels: labels(pairs),
            value,
        }
    }

    fn example() -> Vec<Family> {
        vec![
            family(
                "memcached_commands_total",
                Kind::Counter,
                vec![
                    sample(&[("command", "get"), ("status", "hit")], 11.0),
                    sample(&[("command", "get"), ("status", "miss")], 5.0),
                ],
            ),
            family(
                "memcached_uptime_seconds",
                Kind::Counter,
                vec![sample(&[], 20.0)],
            ),
            family(
                "memcached_limit_bytes",
                Kind::Gauge,
                vec![sample(&[], 67108864.0)],
            ),
            family("memcached_empty", Kind::Gauge, vec![]),
            family(
                "wasmcached_latency_seconds",
                Kind::Histogram,
                histogram(
                    &labels(&[("op", "get")]),
                    &[0.001, 0.01, 1.0],
                    &[3, 2, 0, 1],
                    1.5,
                ),
            ),
        ]
    }

    #[test]
    fn text_format_reads_like_client_golang() {
        let expected = r#"# HELP memcached_commands_total Help for memcached_commands_total.
# TYPE memcached_commands_total counter
memcached_commands_total{command="get",status="hit"} 11
memcached_commands_total{command="get",status="miss"} 5
# HELP memcached_uptime_seconds Help for memcached_uptime_seconds.
# TYPE memcached_uptime_seconds counter
memcached_uptime_seconds 20
# HELP memcached_limit_bytes Help for memcached_limit_bytes.
# TYPE memcached_limit_bytes gauge
memcached_limit_bytes 67108864
# HELP wasmcached_latency_seconds Help for wasmcached_latency_seconds.
# TYPE wasmcached_latency_seconds histogram
wasmcached_latency_seconds_bucket{op="get",le="0.001"} 3
wasmcached_latency_seconds_bucket{op="get",le="0.01"} 5
wasmcached_latency_seconds_bucket{op="get",le="1"} 5
wasmcached_latency_seconds_bucket{op="get",le="+Inf"} 6
wasmcached_latency_seconds_sum{op="get"} 1.5
wasmcached_latency_seconds_count{op="get"} 6
"#;
        let text = render(&example(), Format::Text);
        assert_eq!(text, expected);
        parse(&text, Format::Text).unwrap();
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_in_eof() {
        // memcached_uptime_seconds is a counter without `_total`: written
        // as `unknown`, its samples keep the name dashboards query.
        let expected = r#"# HELP memcached_commands Help for memcached_commands_total.
# TYPE memcached_commands counter
memcached_commands_total{command="get",status="hit"} 11
memcached_commands_total{command="get",status="miss"} 5
# HELP memcached_uptime_seconds Help for memcached_uptime_seconds.
# TYPE memcached_uptime_seconds unknown
memcached_uptime_seconds 20
# HELP memcached_limit_bytes Help for memcached_limit_bytes.
# TYPE memcached_limit_bytes gauge
memcached_limit_bytes 67108864
# HELP wasmcached_latency_seconds Help for wasmcached_latency_seconds.
# TYPE wasmcached_latency_seconds histogram
wasmcached_latency_seconds_bucket{op="get",le="0.001"} 3
wasmcached_latency_seconds_bucket{op="get",le="0.01"} 5
wasmcached_latency_seconds_bucket{op="get",le="1.0"} 5
wasmcached_latency_seconds_bucket{op="get",le="+Inf"} 6
wasmcached_latency_seconds_sum{op="get"} 1.5
wasmcached_latency_seconds_count{op="get"} 6
# EOF
"#;
        let text = render(&example(), Format::OpenMetrics);
        assert_eq!(text, expected);
        parse(&text, Format::OpenMetrics).unwrap();
    }

    #[test]
    fn nothing_to_render_is_still_a_valid_exposition() {
        assert_eq!(render(&[], Format::Text), "");
        assert_eq!(render(&[], Format::OpenMetrics), "# EOF\n");
        parse("# EOF\n", Format::OpenMetrics).unwrap();
    }

    #[test]
    fn special_values_are_spelled_as_the_formats_require() {
        let values = [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -0.0,
            0.25,
            1e300,
            3e-9,
        ];
        let samples = values.iter().map(|&v| sample(&[], v)).collect();
        let text = render(&[family("x", Kind::Gauge, samples)], Format::Text);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            ["x +Inf", "x -Inf", "x NaN", "x 0", "x 0.25", "x 1e300", "x 3e-9"]
        );
    }

    #[test]
    fn help_escaping_differs_between_the_formats() {
        let mut f = family("x", Kind::Gauge, vec![sample(&[], 1.0)]);
        f.help = "a \"b\" \\ c\nd".into();
        let text = render(std::slice::from_ref(&f), Format::Text);
        assert!(text.starts_with("# HELP x a \"b\" \\\\ c\\nd\n"), "{text}");
        let om = render(&[f], Format::OpenMetrics);
        assert!(om.starts_with("# HELP x a \\\"b\\\" \\\\ c\\nd\n"), "{om}");
    }

    #[test]
    fn the_reader_rejects_what_the_formats_forbid() {
        let bad = [
            "x 1",                                        // no newline
            "# TYPE x gauge\nx{a=\"\n\"} 1\n",            // raw newline
            "# TYPE x gauge\nx{a=\"\\q\"} 1\n",           // unknown escape
            "# TYPE x gauge\nx{a=\"b\"\"} 1\n",           // stray quote
            "# TYPE x gauge\ny 1\n",                      // sample outside its family
            "# TYPE x gauge\nx one\n",                    // value
            "x 1\n",                                      // no TYPE
            "# TYPE x gauge\nx 1\n# TYPE x gauge\nx 2\n", // family twice
        ];
        for text in bad {
            assert!(parse(text, Format::Text).is_err(), "{text:?}");
        }
        assert!(parse("# TYPE x counter\nx 1\n# EOF\n", Format::OpenMetrics).is_err());
        assert!(parse("# TYPE x counter\nx_total 1\n", Format::OpenMetrics).is_err());
    }

    #[test]
    fn accept_header_picks_openmetrics_only_when_named() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::from_accept(Some("Application/OpenMetrics-Text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4;q=1,*/*;q=0.1")),
            Format::Text
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(
            Format::Text.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(
            Format::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
    }

    /// Strings heavy in the characters the formats escape.
    fn awkward() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            Just('\\'),
            Just('"'),
            Just('\n'),
            Just('n'),
            Just('{'),
            Just('}'),
            Just(','),
            Just('='),
            Just(' '),
            any::<char>()
        ];
        proptest::collection::vec(c, 0..24).prop_map(|v| v.into_iter().collect())
    }

    fn one_format() -> impl Strategy<Value = Format> {
        prop_oneof![Just(Format::Text), Just(Format::OpenMetrics)]
    }

    proptest! {
        #[test]
        fn label_values_and_help_round_trip(a in awkward(), b in awkward(), format in one_format()) {
            let f = Family {
                name: "x_total".into(),
                help: b.clone(),
                kind: Kind::Counter,
                samples: vec![sample(&[("a", &a), ("b", &b)], 1.0)],
            };
            let families = parse(&render(&[f], format), format).unwrap();
            let s = &families[0].samples[0];
            prop_assert_eq!(&s.labels, &labels(&[("a", &a), ("b", &b)]));
            let help = if b.is_empty() { None } else { Some(b) };
            prop_assert_eq!(&families[0].help, &help);
        }

        #[test]
        fn values_round_trip(v in any::<f64>(), format in one_format()) {
            let f = family("x", Kind::Gauge, vec![sample(&[], v)]);
            let families = parse(&render(&[f], format), format).unwrap();
            let back = families[0].samples[0].value;
            prop_assert!(back == v || (back.is_nan() && v.is_nan()), "{} -> {}", v, back);
        }

        #[test]
        fn histograms_are_cumulative(
            mut bounds in proptest::collection::vec(-1e6f64..1e6, 0..8),
            counts in proptest::collection::vec(0u64..1000, 9),
            format in one_format(),
        ) {
            bounds.sort_by(f64::total_cmp);
            bounds.dedup();
            let counts = &counts[..bounds.len() + 1];
            let samples = histogram(&[], &bounds, counts, 1.0);
            let f = family("h", Kind::Histogram, samples);
            let families = parse(&render(&[f], format), format).unwrap();
            let total: u64 = counts.iter().sum();
            let last = families[0].samples.last().unwrap();
            prop_assert_eq!(last.value, total as f64);
        }
    }
}
