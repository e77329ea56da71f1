//! The CSV of Twitter's public cache traces (github.com/twitter/cache-trace):
//! `timestamp,anonymized key,key size,value size,client id,operation,TTL`,
//! read line by line (traces are many GB) into one reused [`Record`], and
//! written back by [`write_record`] (`--write-trace`).
//!
//! The key is whatever lies between the first comma and the last five, so
//! a key holding a comma still parses. A key memcached would refuse (over
//! 250 bytes, or with a space or control byte) is replaced by `#` and 32
//! hex digits of a 128-bit hash of it: traces are replayed whole rather
//! than refused for one odd key, and equal keys still map to equal keys.

use super::record::{Record, Source, TraceError, TraceOp};
use std::io::{self, BufRead, Write};

/// memcached's KEY_MAX_LENGTH.
const KEY_MAX: usize = 250;

/// Reads a Twitter-format CSV trace.
pub struct CsvReader<R> {
    input: R,
    line: Vec<u8>,
    line_no: u64,
    /// Byte offset of the line last returned, and of the next one.
    at: u64,
    next_at: u64,
    total: u64,
}

impl<R: BufRead> CsvReader<R> {
    /// `total`: the input's size in bytes (0 when unknown), which sizes
    /// the warm-up.
    pub fn new(input: R, total: u64) -> Self {
        CsvReader {
            input,
            line: Vec::with_capacity(256),
            line_no: 0,
            at: 0,
            next_at: 0,
            total,
        }
    }
}

impl<R: BufRead> Source for CsvReader<R> {
    fn next_into(&mut self, rec: &mut Record) -> Result<bool, TraceError> {
        loop {
            self.line.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.line)
                .map_err(|e| TraceError {
                    line: self.line_no + 1,
                    msg: format!("cannot read the trace: {e}"),
                })?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            self.at = self.next_at;
            self.next_at += n as u64;
            match parse_line(&self.line, self.line_no == 1, rec) {
                Ok(true) => return Ok(true),
                Ok(false) => continue,
                Err(msg) => {
                    return Err(TraceError {
                        line: self.line_no,
                        msg,
                    })
                }
            }
        }
    }

    fn position(&self) -> u64 {
        self.at
    }

    fn total(&self) -> u64 {
        self.total
    }
}

/// Parses one line into `rec`. `Ok(false)`: nothing to replay (an empty
/// line, a `#` comment, or a header on the first line).
pub fn parse_line(line: &[u8], first: bool, rec: &mut Record) -> Result<bool, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) || line.starts_with(b"#") {
        return Ok(false);
    }
    if first && line.starts_with(b"timestamp") {
        return Ok(false);
    }
    let Some(comma) = line.iter().position(|&b| b == b',') else {
        return Err(fields_error(1));
    };
    let (ts, rest) = (&line[..comma], &line[comma + 1..]);
    // The last five fields, right to left; the key is what is left.
    let mut tail: [&[u8]; 5] = [&[]; 5];
    let mut rest = rest;
    for (i, slot) in tail.iter_mut().enumerate() {
        let Some(c) = rest.iter().rposition(|&b| b == b',') else {
            return Err(fields_error(i + 2));
        };
        *slot = &rest[c + 1..];
        rest = &rest[..c];
    }
    let [ttl, op, _client, value_size, key_size] = tail;
    let key = rest;
    rec.time = timestamp(ts)?;
    number(key_size, "key size")?;
    rec.value_size = number(value_size, "value size")?;
    rec.op = TraceOp::from_name(op.trim_ascii()).ok_or_else(|| {
        let names: Vec<&str> = TraceOp::ALL.iter().map(|o| o.name()).collect();
        format!(
            "unknown operation {} (expected one of {})",
            show(op),
            names.join(", ")
        )
    })?;
    rec.ttl = number(ttl, "TTL")?;
    if key.is_empty() {
        return Err("empty key".into());
    }
    set_key(&mut rec.key, key);
    Ok(true)
}

fn fields_error(got: usize) -> String {
    format!(
        "expected 7 comma-separated fields \
         (timestamp,key,key size,value size,client id,operation,TTL), got {got}"
    )
}

/// A field as the error message shows it: quoted, at most 40 characters.
fn show(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// Whole seconds; a fraction (`1.25`) is cut off.
fn timestamp(field: &[u8]) -> Result<u64, String> {
    let field = field.trim_ascii();
    let whole = match field.iter().position(|&b| b == b'.') {
        Some(dot) if field[dot + 1..].iter().all(u8::is_ascii_digit) => &field[..dot],
        _ => field,
    };
    digits(whole).ok_or_else(|| format!("bad timestamp {} (expected seconds)", show(field)))
}

fn number(field: &[u8], what: &str) -> Result<u32, String> {
    digits(field.trim_ascii())
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("bad {what} {} (expected 0 to 4294967295)", show(field)))
}

/// An unsigned decimal number, without sign or spaces.
fn digits(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 20 {
        return None;
    }
    field.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add((b - b'0') as u64))
            .flatten()
    })
}

/// Copies `key` into `out`, or the stand-in of a key memcached would refuse.
fn set_key(out: &mut Vec<u8>, key: &[u8]) {
    out.clear();
    if key.len() <= KEY_MAX && key.iter().all(|&b| b > b' ' && b != 0x7f) {
        out.extend_from_slice(key);
        return;
    }
    out.push(b'#');
    for h in [crate::router::hash(key), fnv1a(key)] {
        push_hex(out, h);
    }
}

/// A second 64-bit hash, independent of the router's, for the key stand-in.
fn fnv1a(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Appends `v` as 16 lower-case hex digits.
#[inline]
pub fn push_hex(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&hex16(v));
}

/// `v` as 16 lower-case hex digits, built in registers rather than pushed
/// byte by byte: the synthetic traces make one per request.
#[inline]
pub fn hex16(v: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[(v >> ((15 - i) * 4)) as usize & 15];
    }
    out
}

/// Writes `rec` as one line of the CSV (client id 1).
pub fn write_record(out: &mut impl Write, rec: &Record) -> io::Result<()> {
    write!(out, "{},", rec.time)?;
    out.write_all(&rec.key)?;
    writeln!(
        out,
        ",{},{},1,{},{}",
        rec.key.len(),
        rec.value_size,
        rec.op.name(),
        rec.ttl
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(text: &str) -> Result<Vec<Record>, TraceError> {
        let mut r = CsvReader::new(text.as_bytes(), text.len() as u64);
        let mut out = Vec::new();
        let mut rec = Record::default();
        while r.next_into(&mut rec)? {
            out.push(rec.clone());
        }
        Ok(out)
    }

    #[test]
    fn reads_twitter_lines() {
        let recs = read_all(
            "0,q:abc,5,100,7,get,0\n\
             1,q:abc,5,100,7,set,3600\r\n\
             \n\
             # a comment\n\
             2,k,1,0,7,DELETE,0",
        )
        .unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[1],
            Record {
                time: 1,
                key: b"q:abc".to_vec(),
                value_size: 100,
                op: TraceOp::Set,
                ttl: 3600,
            }
        );
        assert_eq!(recs[2].op, TraceOp::Delete);
    }

    #[test]
    fn keys_may_hold_commas_and_a_header_is_skipped() {
        let recs =
            read_all("timestamp,key,key_size,value_size,client_id,op,ttl\n5,a,b,3,10,1,gets,0\n")
                .unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].key, b"a,b");
        assert_eq!(recs[0].op, TraceOp::Gets);
    }

    #[test]
    fn refused_keys_become_a_stable_hash() {
        let long = "x".repeat(300);
        let text = format!("0,{long},300,1,1,get,0\n0,a b,3,1,1,get,0\n0,{long},300,1,1,set,0\n");
        let recs = read_all(&text).unwrap();
        assert_eq!(recs[0].key.len(), 33);
        assert!(recs[0].key.starts_with(b"#"));
        assert_eq!(recs[0].key, recs[2].key);
        assert_ne!(recs[0].key, recs[1].key);
    }

    #[test]
    fn malformed_lines_say_which_and_why() {
        let cases = [
            (
                "0,k,1,1,1,get,0\n0,k,1,1,get,0\n",
                2,
                "expected 7 comma-separated fields",
            ),
            ("x,k,1,1,1,get,0\n", 1, "bad timestamp \"x\""),
            ("0,k,1,-4,1,get,0\n", 1, "bad value size \"-4\""),
            ("0,k,1,1,1,fetch,0\n", 1, "unknown operation \"fetch\""),
            ("0,k,1,1,1,get,99999999999\n", 1, "bad TTL"),
            ("0,,1,1,1,get,0\n", 1, "empty key"),
            ("nocomma\n", 1, "got 1"),
        ];
        for (text, line, want) in cases {
            let e = read_all(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            assert!(e.msg.contains(want), "{text:?}: {}", e.msg);
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn position_is_where_the_returned_line_starts() {
        let text = "0,a,1,1,1,get,0\n1,b,1,1,1,get,0\n";
        let mut r = CsvReader::new(text.as_bytes(), text.len() as u64);
        let mut rec = Record::default();
        assert!(r.next_into(&mut rec).unwrap());
        assert_eq!(r.position(), 0);
        assert!(r.next_into(&mut rec).unwrap());
        assert_eq!(r.position(), 16);
        assert!(!r.next_into(&mut rec).unwrap());
    }

    #[test]
    fn written_records_read_back() {
        let rec = Record {
            time: 42,
            key: b"key:1".to_vec(),
            value_size: 77,
            op: TraceOp::Append,
            ttl: 9,
        };
        let mut out = Vec::new();
        write_record(&mut out, &rec).unwrap();
        assert_eq!(out, b"42,key:1,5,77,1,append,9\n");
        assert_eq!(
            read_all(std::str::from_utf8(&out).unwrap()).unwrap(),
            vec![rec]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_lines_never_panic(lines in prop::collection::vec(
            prop_oneof![
                any::<Vec<u8>>(),
                "[0-9a-z,. #-]{0,40}".prop_map(String::into_bytes),
                (any::<u64>(), "[ -~]{0,300}", any::<u32>(), "[a-z]{0,8}", any::<i64>())
                    .prop_map(|(t, k, v, op, ttl)| format!("{t},{k},1,{v},1,{op},{ttl}").into_bytes()),
            ],
            0..8,
        )) {
            let mut text = Vec::new();
            for l in &lines {
                text.extend_from_slice(l);
                text.push(b'\n');
            }
            let physical = text.iter().filter(|&&b| b == b'\n').count() as u64;
            let mut r = CsvReader::new(text.as_slice(), text.len() as u64);
            let mut rec = Record::default();
            let mut n = 0u64;
            loop {
                match r.next_into(&mut rec) {
                    Ok(true) => {
                        prop_assert!(!rec.key.is_empty() && rec.key.len() <= KEY_MAX);
                        n += 1;
                    }
                    Ok(false) => break,
                    Err(e) => {
                        prop_assert!(e.line >= 1 && e.line <= physical);
                        break;
                    }
                }
            }
            prop_assert!(n <= physical);
        }
    }
}
