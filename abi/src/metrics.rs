//! ABI v8 plugin metrics: the descriptor block the optional `wmc_metrics`
//! export returns, and the checks a host makes before it reads a value.
//!
//! A plugin keeps each metric's value at a fixed, 8-aligned place in its
//! linear memory and updates it with plain stores; the block only says
//! where each value lives and what it is. The host asks for the block when
//! it wants the figures (a scrape, `stats plugin`) and then reads the
//! values straight from memory, so an update never costs a host call.
//!
//! Block: `u32 count`, then `count` descriptors back to back. Descriptor:
//!
//! ```text
//! off len field
//!  0   1  kind        1 counter (u64), 2 gauge (i64), 3 histogram
//!  1   1  name_len    1..=64
//!  2   2  help_len    0..=256
//!  4   4  offset      where the value lives in linear memory; a non-zero
//!                     multiple of 8
//!  8   4  bounds      histogram: finite upper bounds that follow (0..=64);
//!                     0 for a counter or a gauge
//! 12   …  name, help, then `bounds` f64 (8 bytes each, little-endian bits)
//! ```
//!
//! Values at `offset`: a counter's u64, a gauge's i64, a histogram's
//! `bounds + 1` u64 bucket counts (not cumulative, the last is +Inf) and
//! then a u64 sum.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The first ABI version with `wmc_metrics`.
pub const METRICS_VERSION: u32 = 8;

/// Bytes before the first descriptor (the count).
pub const METRICS_HEADER: usize = 4;
/// Bytes of a descriptor before its name.
pub const DESCRIPTOR_HEADER: usize = 12;
/// The most metrics one block may declare.
pub const MAX_METRICS: usize = 256;
/// The longest metric name, in bytes.
pub const MAX_NAME: usize = 64;
/// The longest help text, in bytes.
pub const MAX_HELP: usize = 256;
/// The most finite bounds a histogram may have.
pub const MAX_BOUNDS: usize = 64;
/// The largest block a host reads: every descriptor at its limits fits.
pub const MAX_BLOCK: usize = 256 << 10;

/// What a metric's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MetricKind {
    /// A u64 that only goes up.
    Counter = 1,
    /// An i64 that goes up and down.
    Gauge = 2,
    /// Bucket counts (one per bound, then +Inf) and a u64 sum.
    Histogram = 3,
}

impl MetricKind {
    /// The kind of a descriptor's `kind` byte; `None` for an unknown one.
    pub fn from_u8(b: u8) -> Option<MetricKind> {
        match b {
            1 => Some(MetricKind::Counter),
            2 => Some(MetricKind::Gauge),
            3 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

/// Whether `name` follows Prometheus' rule `[a-zA-Z_][a-zA-Z0-9_]*` and
/// the length limit. `const`, so that an SDK can refuse a bad name when it
/// compiles.
pub const fn valid_metric_name(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > MAX_NAME {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        let ok = c == b'_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `help` is acceptable help text: within the limit and free of
/// control characters (it is printed on one line).
pub const fn valid_metric_help(help: &[u8]) -> bool {
    if help.len() > MAX_HELP {
        return false;
    }
    let mut i = 0;
    while i < help.len() {
        if help[i] < 0x20 || help[i] == 0x7f {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `bounds` may be a histogram's: at most [`MAX_BOUNDS`], finite,
/// strictly increasing.
pub fn valid_bounds(bounds: impl IntoIterator<Item = f64>) -> bool {
    let mut prev = f64::NEG_INFINITY;
    for (i, b) in bounds.into_iter().enumerate() {
        if i >= MAX_BOUNDS || !b.is_finite() || b <= prev {
            return false;
        }
        prev = b;
    }
    true
}

/// A metric as a plugin declares it (what an SDK encodes).
#[derive(Clone, Copy, Debug)]
pub struct MetricSpec<'a> {
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, at most [`MAX_NAME`] bytes.
    pub name: &'a str,
    /// One line of help, at most [`MAX_HELP`] bytes, no control characters.
    pub help: &'a str,
    /// Where the value lives in linear memory: a non-zero multiple of 8.
    pub offset: u32,
    /// Histograms only; empty otherwise.
    pub bounds: &'a [f64],
}

impl MetricSpec<'_> {
    /// The length of the descriptor [`MetricSpec::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        DESCRIPTOR_HEADER + self.name.len() + self.help.len() + 8 * self.bounds.len()
    }

    /// Appends the descriptor. Fields beyond their limits are written as
    /// they are: the host refuses the block.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        out.push(self.name.len() as u8);
        out.extend_from_slice(&(self.help.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&(self.bounds.len() as u32).to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(self.help.as_bytes());
        for b in self.bounds {
            out.extend_from_slice(&b.to_bits().to_le_bytes());
        }
    }
}

/// Starts a block: the count, to be set by [`set_metrics_count`].
pub fn begin_metrics(out: &mut Vec<u8>) {
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Writes the descriptor count into a block [`begin_metrics`] started.
pub fn set_metrics_count(block: &mut [u8], count: u32) {
    block[..4].copy_from_slice(&count.to_le_bytes());
}

/// Appends a whole block describing `specs` to `out`.
pub fn encode_metrics<'a>(out: &mut Vec<u8>, specs: impl IntoIterator<Item = MetricSpec<'a>>) {
    let start = out.len();
    begin_metrics(out);
    let mut count = 0u32;
    for s in specs {
        s.encode(out);
        count += 1;
    }
    set_metrics_count(&mut out[start..], count);
}

/// A descriptor read from a block that [`metric_descriptors`] checked.
#[derive(Clone, Copy, Debug)]
pub struct MetricDesc<'a> {
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The metric's name.
    pub name: &'a str,
    /// The metric's help text (may be empty).
    pub help: &'a str,
    /// Where the value lives in the plugin's linear memory.
    pub offset: u32,
    /// The finite bounds' bytes, 8 per bound (see [`MetricDesc::bounds`]).
    bounds: &'a [u8],
}

impl<'a> MetricDesc<'a> {
    /// A histogram's finite upper bounds, ascending.
    pub fn bounds(&self) -> impl Iterator<Item = f64> + 'a {
        self.bounds
            .chunks_exact(8)
            .map(|b| f64::from_bits(u64::from_le_bytes(b.try_into().unwrap())))
    }

    /// How many finite bounds a histogram has (0 for a counter or a gauge).
    pub fn bound_count(&self) -> usize {
        self.bounds.len() / 8
    }

    /// The bytes of the value at `offset`.
    pub fn value_len(&self) -> usize {
        match self.kind {
            MetricKind::Counter | MetricKind::Gauge => 8,
            MetricKind::Histogram => 8 * (self.bound_count() + 2),
        }
    }
}

/// Every descriptor of `block`, checked: the count, each descriptor's
/// length and limits, names (Prometheus' rule, unique), help text, kinds,
/// alignment, histogram bounds, and nothing after the last descriptor.
/// Where the values lie is checked against a memory by [`check_regions`].
pub fn metric_descriptors(block: &[u8]) -> Result<Vec<MetricDesc<'_>>, String> {
    if block.len() > MAX_BLOCK {
        return Err(format!(
            "metrics block of {} bytes (at most {MAX_BLOCK})",
            block.len()
        ));
    }
    let head = block
        .get(..METRICS_HEADER)
        .ok_or("metrics block shorter than its count")?;
    let count = u32::from_le_bytes(head.try_into().unwrap()) as usize;
    if count > MAX_METRICS {
        return Err(format!("{count} metrics (at most {MAX_METRICS})"));
    }
    let mut out: Vec<MetricDesc<'_>> = Vec::with_capacity(count);
    let mut rest = &block[METRICS_HEADER..];
    for i in 0..count {
        let (d, n) = descriptor(rest).map_err(|e| format!("metric {i}: {e}"))?;
        if out.iter().any(|o| o.name == d.name) {
            return Err(format!("metric {i}: the name {} is declared twice", d.name));
        }
        out.push(d);
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes after the last of {count} metrics",
            rest.len()
        ));
    }
    Ok(out)
}

/// One descriptor at the start of `b` and its length.
fn descriptor(b: &[u8]) -> Result<(MetricDesc<'_>, usize), String> {
    let h = b.get(..DESCRIPTOR_HEADER).ok_or("truncated descriptor")?;
    let kind = MetricKind::from_u8(h[0]).ok_or_else(|| format!("unknown kind {}", h[0]))?;
    let name_len = h[1] as usize;
    let help_len = u16::from_le_bytes([h[2], h[3]]) as usize;
    let offset = u32::from_le_bytes(h[4..8].try_into().unwrap());
    let bounds = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
    if help_len > MAX_HELP {
        return Err(format!(
            "help text of {help_len} bytes (at most {MAX_HELP})"
        ));
    }
    match kind {
        MetricKind::Histogram if bounds > MAX_BOUNDS => {
            return Err(format!("{bounds} bounds (at most {MAX_BOUNDS})"))
        }
        MetricKind::Counter | MetricKind::Gauge if bounds != 0 => {
            return Err(format!("a {kind:?} with {bounds} bounds"))
        }
        _ => {}
    }
    let len = DESCRIPTOR_HEADER + name_len + help_len + 8 * bounds;
    let body = b
        .get(DESCRIPTOR_HEADER..len)
        .ok_or("truncated descriptor")?;
    let (name, body) = body.split_at(name_len);
    let (help, bounds) = body.split_at(help_len);
    if !valid_metric_name(name) {
        return Err(format!(
            "bad name {:?} (wanted [a-zA-Z_][a-zA-Z0-9_]*, at most {MAX_NAME} bytes)",
            String::from_utf8_lossy(name)
        ));
    }
    let name = core::str::from_utf8(name).expect("checked ASCII");
    let help = core::str::from_utf8(help)
        .ok()
        .filter(|h| valid_metric_help(h.as_bytes()))
        .ok_or_else(|| format!("{name}: help text is not UTF-8 without control characters"))?;
    if offset == 0 || offset % 8 != 0 {
        return Err(format!(
            "{name}: value offset {offset} is not a non-zero multiple of 8"
        ));
    }
    let d = MetricDesc {
        kind,
        name,
        help,
        offset,
        bounds,
    };
    if !valid_bounds(d.bounds()) {
        return Err(format!(
            "{name}: histogram bounds are not finite and strictly increasing"
        ));
    }
    Ok((d, len))
}

/// Checks that every value lies inside a memory of `memory_len` bytes and
/// that no two values share a byte (a plugin that declares the same place
/// twice has a bug, and its figures would be wrong).
pub fn check_regions(descs: &[MetricDesc<'_>], memory_len: usize) -> Result<(), String> {
    let mut spans: Vec<(usize, usize, &str)> = Vec::with_capacity(descs.len());
    for d in descs {
        let start = d.offset as usize;
        let end = start
            .checked_add(d.value_len())
            .filter(|&e| e <= memory_len)
            .ok_or_else(|| {
                format!(
                    "{}: value at {start}..{} is outside the plugin's memory ({memory_len} bytes)",
                    d.name,
                    start as u64 + d.value_len() as u64
                )
            })?;
        spans.push((start, end, d.name));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!(
                "{} and {} share memory at {}",
                w[0].2, w[1].2, w[1].0
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn block(specs: &[MetricSpec<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_metrics(&mut out, specs.iter().copied());
        out
    }

    fn counter(name: &str, offset: u32) -> MetricSpec<'_> {
        MetricSpec {
            kind: MetricKind::Counter,
            name,
            help: "things done",
            offset,
            bounds: &[],
        }
    }

    const BOUNDS: [f64; 3] = [1.0, 10.0, 100.5];

    fn histogram(offset: u32) -> MetricSpec<'static> {
        MetricSpec {
            kind: MetricKind::Histogram,
            name: "value_bytes",
            help: "sizes",
            offset,
            bounds: &BOUNDS,
        }
    }

    #[test]
    fn a_block_round_trips_byte_for_byte() {
        let gauge = MetricSpec {
            kind: MetricKind::Gauge,
            name: "used",
            help: "",
            offset: 16,
            bounds: &[],
        };
        let b = block(&[counter("done_total", 8), gauge, histogram(24)]);
        assert_eq!(&b[..4], &3u32.to_le_bytes());
        // The first descriptor: kind, name_len, help_len, offset, bounds.
        assert_eq!(&b[4..16], &[1, 10, 11, 0, 8, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..26], b"done_total");
        let d = metric_descriptors(&b).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(
            (d[0].kind, d[0].name, d[0].help),
            (MetricKind::Counter, "done_total", "things done")
        );
        assert_eq!(
            (d[1].kind, d[1].offset, d[1].value_len()),
            (MetricKind::Gauge, 16, 8)
        );
        assert_eq!(d[2].bounds().collect::<Vec<_>>(), BOUNDS);
        assert_eq!(d[2].value_len(), 8 * 5);
        assert_eq!(check_regions(&d, 64), Ok(()));
        assert!(metric_descriptors(&block(&[])).unwrap().is_empty());
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "9lives", "has space", "dash-ed", "colon:ed", "é"] {
            let e = metric_descriptors(&block(&[counter(name, 8)])).unwrap_err();
            assert!(e.contains("bad name"), "{name}: {e}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        assert!(metric_descriptors(&block(&[counter(&long, 8)])).is_err());
        assert!(metric_descriptors(&block(&[counter(&long[..MAX_NAME], 8)])).is_ok());
        for name in ["_", "a9", "Z_z"] {
            assert!(valid_metric_name(name.as_bytes()), "{name}");
        }
        let twice = block(&[counter("x", 8), counter("x", 16)]);
        assert!(metric_descriptors(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn bad_fields_are_refused() {
        let mut b = block(&[counter("x", 8)]);
        b[4] = 9;
        assert!(metric_descriptors(&b).unwrap_err().contains("unknown kind"));
        for offset in [0, 12] {
            let e = metric_descriptors(&block(&[counter("x", offset)])).unwrap_err();
            assert!(e.contains("multiple of 8"), "{e}");
        }
        let mut c = counter("x", 8);
        c.help = "two\nlines";
        assert!(metric_descriptors(&block(&[c])).is_err());
        c.bounds = &[1.0];
        c.help = "";
        assert!(metric_descriptors(&block(&[c]))
            .unwrap_err()
            .contains("bounds"));
        for bad in [&[2.0, 1.0][..], &[1.0, 1.0], &[f64::NAN], &[f64::INFINITY]] {
            let mut h = histogram(8);
            h.bounds = bad;
            assert!(metric_descriptors(&block(&[h])).is_err(), "{bad:?}");
        }
        let many = vec![1.0; MAX_BOUNDS + 1];
        let mut h = histogram(8);
        h.bounds = &many;
        assert!(metric_descriptors(&block(&[h])).is_err());
        let mut b = block(&[counter("x", 8)]);
        set_metrics_count(&mut b, MAX_METRICS as u32 + 1);
        assert!(metric_descriptors(&b).is_err());
        assert!(metric_descriptors(&vec![0; MAX_BLOCK + 1]).is_err());
    }

    #[test]
    fn truncated_and_trailing_blocks_are_refused() {
        let b = block(&[counter("x", 8), histogram(16)]);
        for cut in 0..b.len() {
            assert!(metric_descriptors(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut more = b.clone();
        more.push(0);
        assert!(metric_descriptors(&more)
            .unwrap_err()
            .contains("after the last"));
        let mut fewer = b;
        set_metrics_count(&mut fewer, 1);
        assert!(metric_descriptors(&fewer).is_err());
    }

    #[test]
    fn values_outside_memory_or_overlapping_are_refused() {
        let b = block(&[counter("x", 8), histogram(16)]);
        let d = metric_descriptors(&b).unwrap();
        // The histogram needs 16..56.
        assert_eq!(check_regions(&d, 56), Ok(()));
        assert!(check_regions(&d, 55).unwrap_err().contains("outside"));
        let far = block(&[counter("x", u32::MAX - 7)]);
        let d = metric_descriptors(&far).unwrap();
        assert!(check_regions(&d, 1 << 20).is_err());
        let overlap = block(&[histogram(8), counter("x", 40)]);
        let d = metric_descriptors(&overlap).unwrap();
        assert!(check_regions(&d, 1024)
            .unwrap_err()
            .contains("share memory"));
    }
}
