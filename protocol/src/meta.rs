//! The memcached meta protocol parser: `mg ms md ma mn me` with memcached
//! 1.6.18's flag grammar, limits and error strings (`proto_text.c`:
//! `_meta_flag_preparse`, `process_mget_command`, `process_mset_command`,
//! `process_mdelete_command`, `process_marithmetic_command`,
//! `process_meta_command`).
//!
//! Pure: no I/O, no clock. The text parser recognises a meta line and hands
//! it over as [`Command::Meta`](super::text::Command::Meta); [`parse`] reads
//! the flags and, for `ms`, the data block that follows the line. Numbers
//! stay in their protocol form (TTLs are raw seconds); the executor
//! (`meta_cmd`) resolves them against the server clock.
//!
//! Why a separate grammar: meta flags are single characters with an optional
//! token glued on (`T30`, `Oopaque`), each may appear once, and the response
//! echoes the requested flags in request order, so the parsed command keeps
//! the flag tokens in order next to the decoded options.

use crate::limits::{Limits, KEY_MAX_LENGTH};
use crate::num::{safe_strtol, safe_strtoul, safe_strtoull};
use crate::text::{reply, tokenize, MetaOp};
use std::borrow::Cow;

/// memcached's `MFLAG_MAX_OPT_LENGTH`: more tokens than this (counting the
/// command, the key and the terminal token) is an error.
pub const MFLAG_MAX_OPT_LENGTH: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`: an `O` token (with its `O`) may be this long.
pub const MFLAG_MAX_OPAQUE_LENGTH: usize = 32;

/// memcached's meta error lines (without `\r\n`).
pub mod err {
    /// `mg` with too many tokens (note: "are", unlike the others).
    pub const MG_FLAGS_TOO_LONG: &str = "CLIENT_ERROR options flags are too long";
    /// `ms`, `md`, `ma` with too many tokens.
    pub const FLAGS_TOO_LONG: &str = "CLIENT_ERROR options flags too long";
    /// A flag character seen twice, or a byte >= 127 as a flag.
    pub const DUPLICATE_FLAG: &str = "CLIENT_ERROR duplicate flag";
    /// A flag character no meta command knows.
    pub const INVALID_FLAG: &str = "CLIENT_ERROR invalid flag";
    /// `N`, `T`, `R`, `C` with a token that is not a number.
    pub const BAD_TOKEN: &str = "CLIENT_ERROR bad token in command line format";
    /// `b` with a key that is not base64.
    pub const DECODING_KEY: &str = "CLIENT_ERROR error decoding key";
    /// `M` with no or more than one mode character.
    pub const M_LENGTH: &str = "CLIENT_ERROR incorrect length for M token";
    /// `J` not a number.
    pub const INITIAL: &str = "CLIENT_ERROR invalid numeric initial value";
    /// `D` not a number.
    pub const DELTA: &str = "CLIENT_ERROR invalid numeric delta value";
    /// `O` longer than [`MFLAG_MAX_OPAQUE_LENGTH`](super::MFLAG_MAX_OPAQUE_LENGTH).
    pub const OPAQUE_TOO_LONG: &str = "CLIENT_ERROR opaque token too long";
    /// Any flag error of `md` and `ma` (they do not pass the detail on).
    pub const INVALID_OR_DUPLICATE: &str = "CLIENT_ERROR invalid or duplicate flag";
    /// `ms` with an unknown `M` mode.
    pub const MS_MODE: &str = "CLIENT_ERROR invalid mode for ms M token";
    /// `ma` with an unknown `M` mode.
    pub const MA_MODE: &str = "CLIENT_ERROR invalid mode for ma M token";
}

/// memcached's `struct _meta_flags`: what the flags ask for. TTL-like values
/// are the raw protocol numbers (`realtime()` is the executor's job).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// `u`
    pub no_update: bool,
    /// `N`, `T`, `R`, `l`, `h`: memcached takes the item lock and bumps the
    /// LRU only after answering (so `h`/`l` report the state before).
    pub locked: bool,
    /// `N`
    pub vivify: bool,
    /// `v`
    pub value: bool,
    /// `I`
    pub set_stale: bool,
    /// `q`
    pub no_reply: bool,
    /// `C` present (even `C0`)
    pub has_cas: bool,
    /// `T` present
    pub new_ttl: bool,
    /// `b`: the key was base64 and is decoded in [`MetaCmd::key`]
    pub key_binary: bool,
    /// `M` mode character (0 if none)
    pub mode: u8,
    /// `T` seconds
    pub exptime: i32,
    /// `N` seconds
    pub autoviv: i32,
    /// `R` seconds
    pub recache: i32,
    /// `F`
    pub client_flags: u32,
    /// `C`
    pub cas: u64,
    /// `D` (default 1 for `ma`)
    pub delta: u64,
    /// `J`
    pub initial: u64,
}

/// A meta command ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaCmd<'a> {
    pub op: MetaOp,
    /// The key, base64-decoded when `b` was given. Empty for `mn`.
    pub key: Cow<'a, [u8]>,
    pub opts: Opts,
    /// The flag tokens in request order (after the key, and after the data
    /// length for `ms`): responses echo them in this order.
    pub flags: Vec<&'a [u8]>,
    /// `ms`: the data block without its `\r\n`.
    pub value: &'a [u8],
    /// `mg`/`ma`: an `O` token is too long. memcached notices while writing
    /// the answer, i.e. after the operation ran: the executor runs it and
    /// answers [`err::OPAQUE_TOO_LONG`].
    pub opaque_too_long: bool,
}

impl MetaCmd<'_> {
    /// Index in [`MetaCmd::flags`] of the first token starting with `c`.
    pub fn position(&self, c: u8) -> Option<usize> {
        self.flags.iter().position(|t| t.first() == Some(&c))
    }
}

/// What [`parse`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaParsed<'a> {
    /// `ms` whose data block has not fully arrived: `need` bytes from the
    /// start of the command are needed.
    Incomplete { need: usize },
    /// A command to run; `consumed` covers the line and any data block.
    Cmd { cmd: MetaCmd<'a>, consumed: usize },
    /// memcached answers `reply` (errors are sent even with `q`), drops
    /// `consumed` bytes and then swallows `swallow` more (an `ms` data block
    /// after a flag error). `unlink`: a too-large `ms` removes the old item.
    Error {
        reply: &'static str,
        consumed: usize,
        swallow: usize,
        unlink: Option<Vec<u8>>,
    },
}

fn error(reply: &'static str, consumed: usize) -> MetaParsed<'static> {
    MetaParsed::Error {
        reply,
        consumed,
        swallow: 0,
        unlink: None,
    }
}

/// Parses the meta command `op` whose line (without line ending, cut at NUL)
/// is `line`. `buf` starts at the command and holds at least `line_len`
/// bytes (the line with its ending); for `ms` the data block follows.
pub fn parse<'a>(
    op: MetaOp,
    line: &'a [u8],
    buf: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> MetaParsed<'a> {
    let t = tokenize(line);
    let toks = t.as_slice();
    // memcached's ntokens counts the terminal token.
    let ntokens = toks.len() + 1;
    let key_tok: &'a [u8] = toks.get(1).copied().unwrap_or(&[]);
    let mut cmd = MetaCmd {
        op,
        key: Cow::Borrowed(key_tok),
        opts: Opts::default(),
        flags: Vec::new(),
        value: &[],
        opaque_too_long: false,
    };
    match op {
        MetaOp::Noop => MetaParsed::Cmd {
            cmd: MetaCmd {
                key: Cow::Borrowed(&[]),
                ..cmd
            },
            consumed: line_len,
        },
        MetaOp::Debug => {
            if ntokens < 3 || key_tok.len() > KEY_MAX_LENGTH {
                return error(reply::BAD_FORMAT, line_len);
            }
            if ntokens >= 4 && toks[2] == b"b" {
                match base64_decode(key_tok) {
                    Some(k) => {
                        cmd.key = Cow::Owned(k);
                        cmd.opts.key_binary = true;
                    }
                    None => return error(reply::BAD_FORMAT, line_len),
                }
            }
            MetaParsed::Cmd {
                cmd,
                consumed: line_len,
            }
        }
        MetaOp::Get | MetaOp::Delete | MetaOp::Arithmetic => {
            if ntokens < 3 {
                return error(reply::ERROR, line_len);
            }
            if key_tok.len() > KEY_MAX_LENGTH {
                return error(reply::BAD_FORMAT, line_len);
            }
            if ntokens > MFLAG_MAX_OPT_LENGTH {
                let e = if op == MetaOp::Get {
                    err::MG_FLAGS_TOO_LONG
                } else {
                    err::FLAGS_TOO_LONG
                };
                return error(e, line_len);
            }
            if op == MetaOp::Arithmetic {
                cmd.opts.delta = 1;
            }
            cmd.flags = toks[2..].to_vec();
            let mut errstr = reply::BAD_FORMAT;
            if !preparse(&mut cmd, &mut errstr) {
                let e = if op == MetaOp::Get {
                    errstr
                } else {
                    err::INVALID_OR_DUPLICATE
                };
                return error(e, line_len);
            }
            let long_opaque = cmd
                .flags
                .iter()
                .any(|f| f[0] == b'O' && f.len() > MFLAG_MAX_OPAQUE_LENGTH);
            match op {
                // md checks the opaque before it looks the key up.
                MetaOp::Delete if long_opaque => return error(err::OPAQUE_TOO_LONG, line_len),
                MetaOp::Arithmetic if !matches!(cmd.opts.mode, 0 | b'I' | b'+' | b'D' | b'-') => {
                    return error(err::MA_MODE, line_len)
                }
                _ => {}
            }
            cmd.opaque_too_long = long_opaque;
            MetaParsed::Cmd {
                cmd,
                consumed: line_len,
            }
        }
        MetaOp::Set => parse_ms(cmd, toks, buf, line_len, limits),
    }
}

/// `process_mset_command` and the data block (`complete_nread_ascii`).
fn parse_ms<'a>(
    mut cmd: MetaCmd<'a>,
    toks: &[&'a [u8]],
    buf: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> MetaParsed<'a> {
    let ntokens = toks.len() + 1;
    if ntokens < 3 {
        return error(reply::ERROR, line_len);
    }
    if cmd.key.len() > KEY_MAX_LENGTH || ntokens == 3 {
        return error(reply::BAD_FORMAT, line_len);
    }
    if ntokens > MFLAG_MAX_OPT_LENGTH {
        return error(err::FLAGS_TOO_LONG, line_len);
    }
    let vlen = match safe_strtol(toks[2]) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return error(reply::BAD_FORMAT, line_len),
    };
    let nbytes = vlen + 2;
    let swallowed = |reply: &'static str, unlink: Option<Vec<u8>>| MetaParsed::Error {
        reply,
        consumed: line_len,
        swallow: nbytes,
        unlink,
    };
    cmd.flags = toks[3..].to_vec();
    let mut errstr = reply::BAD_FORMAT;
    if !preparse(&mut cmd, &mut errstr) {
        return swallowed(errstr, None);
    }
    let long_opaque = cmd
        .flags
        .iter()
        .any(|f| f[0] == b'O' && f.len() > MFLAG_MAX_OPAQUE_LENGTH);
    if !matches!(cmd.opts.mode, 0 | b'E' | b'A' | b'P' | b'R' | b'S') {
        return swallowed(err::MS_MODE, None);
    }
    if long_opaque {
        return swallowed(err::OPAQUE_TOO_LONG, None);
    }
    if limits.item_too_large(cmd.key.len(), cmd.opts.client_flags, nbytes) {
        // memcached unlinks the old item so no stale value survives, in any mode.
        return swallowed(reply::TOO_LARGE, Some(cmd.key.to_vec()));
    }
    let total = line_len + nbytes;
    if buf.len() < total {
        return MetaParsed::Incomplete { need: total };
    }
    if &buf[total - 2..total] != b"\r\n" {
        // Exactly length+2 bytes were read; what follows is the next command.
        return error(reply::BAD_DATA_CHUNK, total);
    }
    cmd.value = &buf[line_len..total - 2];
    MetaParsed::Cmd {
        cmd,
        consumed: total,
    }
}

/// `_meta_flag_preparse`: fills `cmd.opts` from `cmd.flags`, decodes a `b`
/// key. On failure returns false with `errstr` set as memcached leaves it
/// (the last error seen; a duplicate or unknown flag stops at once).
fn preparse(cmd: &mut MetaCmd<'_>, errstr: &mut &'static str) -> bool {
    let mut seen = [false; 127];
    let mut has_error = false;
    let of = &mut cmd.opts;
    for tok in &cmd.flags {
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            *errstr = err::DUPLICATE_FLAG;
            return false;
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        // N, T, R: a signed 32-bit number of seconds.
        let int_arg = safe_strtol(arg);
        if matches!(o, b'N' | b'T' | b'R') && int_arg.is_none() {
            *errstr = err::BAD_TOKEN;
            has_error = true;
        }
        match o {
            b'b' => {
                match base64_decode(&cmd.key) {
                    Some(k) => cmd.key = Cow::Owned(k),
                    None => {
                        *errstr = err::DECODING_KEY;
                        has_error = true;
                        cmd.key = Cow::Owned(Vec::new());
                    }
                }
                of.key_binary = true;
            }
            b'N' => {
                of.locked = true;
                of.vivify = true;
                of.autoviv = int_arg.unwrap_or(0);
            }
            b'T' => {
                of.locked = true;
                if let Some(v) = int_arg {
                    of.exptime = v;
                    of.new_ttl = true;
                }
            }
            b'R' => {
                of.locked = true;
                of.recache = int_arg.unwrap_or(0);
            }
            b'l' | b'h' => of.locked = true,
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => of.value = true,
            b'u' => of.no_update = true,
            b'q' => of.no_reply = true,
            b'F' => match safe_strtoul(arg) {
                Some(v) => of.client_flags = v,
                // memcached keeps the previous error string here.
                None => has_error = true,
            },
            b'C' => match safe_strtoull(arg) {
                Some(v) => {
                    of.cas = v;
                    of.has_cas = true;
                }
                None => {
                    *errstr = err::BAD_TOKEN;
                    has_error = true;
                }
            },
            b'M' => {
                if tok.len() != 2 {
                    *errstr = err::M_LENGTH;
                    has_error = true;
                } else {
                    of.mode = tok[1];
                }
            }
            b'J' => match safe_strtoull(arg) {
                Some(v) => of.initial = v,
                None => {
                    *errstr = err::INITIAL;
                    has_error = true;
                }
            },
            b'D' => match safe_strtoull(arg) {
                Some(v) => of.delta = v,
                None => {
                    *errstr = err::DELTA;
                    has_error = true;
                }
            },
            b'I' => of.set_stale = true,
            _ => {
                *errstr = err::INVALID_FLAG;
                return false;
            }
        }
    }
    !has_error
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// memcached's decode table: the alphabet and `=` (as 0) are valid; every
/// other byte is skipped.
fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// memcached's `base64_decode` (Jouni Malinen's, as modified there): invalid
/// bytes are skipped, the valid ones must come in whole quads, and decoding
/// stops after the first quad with padding. `None` where it returns 0
/// (which also makes an empty result an error).
pub fn base64_decode(src: &[u8]) -> Option<Vec<u8>> {
    let count = src.iter().filter(|&&c| b64_value(c).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for &c in src {
        let Some(v) = b64_value(c) else { continue };
        if c == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            out.push((block[0] << 2) | (block[1] >> 4));
            out.push((block[1] << 4) | (block[2] >> 2));
            out.push((block[2] << 6) | block[3]);
            n = 0;
            if pad > 0 {
                match pad {
                    1 => {
                        out.pop();
                    }
                    2 => {
                        out.pop();
                        out.pop();
                    }
                    _ => return None,
                }
                break;
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// memcached's `base64_encode` (no line breaks), appended to `out`.
pub fn base64_encode(src: &[u8], out: &mut Vec<u8>) {
    let mut chunks = src.chunks_exact(3);
    for c in &mut chunks {
        out.push(B64[(c[0] >> 2) as usize]);
        out.push(B64[(((c[0] & 0x03) << 4) | (c[1] >> 4)) as usize]);
        out.push(B64[(((c[1] & 0x0f) << 2) | (c[2] >> 6)) as usize]);
        out.push(B64[(c[2] & 0x3f) as usize]);
    }
    match *chunks.remainder() {
        [a] => {
            out.push(B64[(a >> 2) as usize]);
            out.push(B64[((a & 0x03) << 4) as usize]);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            out.push(B64[(a >> 2) as usize]);
            out.push(B64[(((a & 0x03) << 4) | (b >> 4)) as usize]);
            out.push(B64[((b & 0x0f) << 2) as usize]);
            out.push(b'=');
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{self, Command, Parsed};

    /// Runs the text parser, then the meta parser on the meta line it found.
    fn run(input: &[u8]) -> MetaParsed<'_> {
        run_limits(input, &Limits::default())
    }

    fn run_limits<'a>(input: &'a [u8], limits: &Limits) -> MetaParsed<'a> {
        match text::parse(input, limits) {
            Parsed::Cmd {
                cmd: Command::Meta { op, line },
                consumed,
            } => parse(op, line, input, consumed, limits),
            other => panic!("not a meta line: {other:?}"),
        }
    }

    fn cmd(input: &[u8]) -> MetaCmd<'_> {
        match run(input) {
            MetaParsed::Cmd { cmd, consumed } => {
                assert_eq!(consumed, input.len(), "consumed all of {input:?}");
                cmd
            }
            other => panic!("{other:?}"),
        }
    }

    fn err_of(input: &[u8]) -> (&'static str, usize) {
        match run(input) {
            MetaParsed::Error { reply, swallow, .. } => (reply, swallow),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mg_flags_in_order() {
        let c = cmd(b"mg foo v c f h l t s k Oab q u\r\n");
        assert_eq!(c.op, MetaOp::Get);
        assert_eq!(&c.key[..], b"foo");
        assert!(c.opts.value && c.opts.no_reply && c.opts.no_update && c.opts.locked);
        let f: Vec<&[u8]> = c.flags.clone();
        assert_eq!(f[6], b"s");
        assert_eq!(f[8], b"Oab");
        assert_eq!(c.position(b'O'), Some(8));
        assert!(!c.opaque_too_long);
        let c = cmd(b"mg foo N30 R-5 T0\r\n");
        assert!(c.opts.vivify && c.opts.new_ttl);
        assert_eq!(
            (c.opts.autoviv, c.opts.recache, c.opts.exptime),
            (30, -5, 0)
        );
        // P and L are accepted and ignored; a bare key is fine.
        cmd(b"mg foo Pxyz L/path\r\n");
        cmd(b"mg foo\r\n");
    }

    #[test]
    fn mg_errors() {
        assert_eq!(err_of(b"mg\r\n").0, "ERROR");
        let long = format!("mg {} v\r\n", "k".repeat(251));
        assert_eq!(err_of(long.as_bytes()).0, reply::BAD_FORMAT);
        let ok = format!("mg {} v\r\n", "k".repeat(250));
        cmd(ok.as_bytes());
        assert_eq!(err_of(b"mg a v v\r\n").0, err::DUPLICATE_FLAG);
        assert_eq!(err_of(b"mg a x\r\n").0, err::INVALID_FLAG);
        assert_eq!(err_of(b"mg a \xffx\r\n").0, err::DUPLICATE_FLAG);
        assert_eq!(err_of(b"mg a Tx\r\n").0, err::BAD_TOKEN);
        assert_eq!(err_of(b"mg a N\r\n").0, err::BAD_TOKEN);
        assert_eq!(err_of(b"mg a Fx\r\n").0, reply::BAD_FORMAT);
        assert_eq!(
            err_of(b"mg a Tx Fx\r\n").0,
            err::BAD_TOKEN,
            "the last error set wins"
        );
        assert_eq!(err_of(b"mg a Tx z\r\n").0, err::INVALID_FLAG);
        assert_eq!(err_of(b"mg a MEE\r\n").0, err::M_LENGTH);
        assert_eq!(err_of(b"mg a b\r\n").0, err::DECODING_KEY);
        // 17 flags fit (20 tokens with command, key and the terminal one), 18 do not.
        let flags17 = "mg a v c f h l t s k q u Oa Pb Lc T1 N1 R1 I\r\n";
        cmd(flags17.as_bytes());
        let flags18 = "mg a v c f h l t s k q u Oa Pb Lc T1 N1 R1 I E\r\n";
        assert_eq!(err_of(flags18.as_bytes()).0, err::MG_FLAGS_TOO_LONG);
        // An overlong opaque is reported after the fetch.
        let o = format!("mg a O{}\r\n", "x".repeat(32));
        assert!(cmd(o.as_bytes()).opaque_too_long);
        let o = format!("mg a O{}\r\n", "x".repeat(31));
        assert!(!cmd(o.as_bytes()).opaque_too_long);
    }

    #[test]
    fn base64_keys() {
        let c = cmd(b"mg Zm9v b k\r\n");
        assert_eq!(&c.key[..], b"foo");
        assert!(c.opts.key_binary);
        assert_eq!(base64_decode(b"Zm8="), Some(b"fo".to_vec()));
        assert_eq!(base64_decode(b"Zg=="), Some(b"f".to_vec()));
        assert_eq!(
            base64_decode(b"Zg==Zm9v"),
            Some(b"f".to_vec()),
            "stops after padding"
        );
        assert_eq!(
            base64_decode(b"Z!m9v"),
            Some(b"foo".to_vec()),
            "skips invalid bytes"
        );
        assert_eq!(base64_decode(b"Zm9"), None);
        assert_eq!(base64_decode(b"===="), None);
        assert_eq!(base64_decode(b"!!"), None);
        for v in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff\x10\x80"] {
            let mut e = Vec::new();
            base64_encode(v, &mut e);
            if !v.is_empty() {
                assert_eq!(base64_decode(&e).as_deref(), Some(v));
            }
        }
        let mut e = Vec::new();
        base64_encode(b"foo", &mut e);
        assert_eq!(e, b"Zm9v");
    }

    #[test]
    fn ms_reads_its_data_block() {
        let c = cmd(b"ms foo 3 T30 F5 c k MR C9 I\r\nbar\r\n");
        assert_eq!(c.value, b"bar");
        assert_eq!(c.opts.exptime, 30);
        assert_eq!(c.opts.client_flags, 5);
        assert_eq!(
            (c.opts.mode, c.opts.cas, c.opts.has_cas, c.opts.set_stale),
            (b'R', 9, true, true)
        );
        assert_eq!(c.flags.len(), 7);
        assert_eq!(run(b"ms foo 3\r\nba"), MetaParsed::Incomplete { need: 15 });
        match run(b"ms foo 3\r\nbarxy") {
            MetaParsed::Error {
                reply,
                consumed,
                swallow,
                ..
            } => assert_eq!((reply, consumed, swallow), (reply::BAD_DATA_CHUNK, 15, 0)),
            o => panic!("{o:?}"),
        }
        let c = cmd(b"ms foo 0\r\n\r\n");
        assert_eq!(c.value, b"");
    }

    #[test]
    fn ms_errors() {
        assert_eq!(err_of(b"ms\r\n").0, "ERROR");
        assert_eq!(err_of(b"ms foo\r\n"), (reply::BAD_FORMAT, 0));
        assert_eq!(err_of(b"ms foo S2\r\n"), (reply::BAD_FORMAT, 0));
        assert_eq!(err_of(b"ms foo -1\r\n"), (reply::BAD_FORMAT, 0));
        assert_eq!(err_of(b"ms foo 2 x\r\n"), (err::INVALID_FLAG, 4));
        assert_eq!(err_of(b"ms foo 2 MX\r\n"), (err::MS_MODE, 4));
        let o = format!("ms foo 2 O{}\r\n", "x".repeat(40));
        assert_eq!(err_of(o.as_bytes()), (err::OPAQUE_TOO_LONG, 4));
        let o = format!("ms foo 2 MX O{}\r\n", "x".repeat(40));
        assert_eq!(
            err_of(o.as_bytes()),
            (err::MS_MODE, 4),
            "the mode error wins"
        );
        let many = "ms a 1 c f h l t s k q u Oa Pb Lc T1 N1 R1 I v\r\n";
        assert_eq!(err_of(many.as_bytes()), (err::FLAGS_TOO_LONG, 0));
        // Too large: swallowed, and the old item is unlinked.
        let limits = Limits {
            item_size_max: 1024,
            cas_enabled: true,
        };
        match run_limits(b"ms Zm9v 2000 b\r\n", &limits) {
            MetaParsed::Error {
                reply,
                swallow,
                unlink,
                ..
            } => {
                assert_eq!((reply, swallow), (reply::TOO_LARGE, 2002));
                assert_eq!(unlink.as_deref(), Some(&b"foo"[..]));
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn md_ma_me_mn() {
        let c = cmd(b"md foo q I T30 C5 k Oo\r\n");
        assert!(c.opts.set_stale && c.opts.new_ttl && c.opts.has_cas && c.opts.no_reply);
        assert_eq!(err_of(b"md foo x\r\n").0, err::INVALID_OR_DUPLICATE);
        assert_eq!(err_of(b"md foo q q\r\n").0, err::INVALID_OR_DUPLICATE);
        assert_eq!(err_of(b"md\r\n").0, "ERROR");
        let o = format!("md a O{}\r\n", "x".repeat(40));
        assert_eq!(err_of(o.as_bytes()).0, err::OPAQUE_TOO_LONG);
        let c = cmd(b"ma n\r\n");
        assert_eq!((c.opts.delta, c.opts.initial), (1, 0));
        let c = cmd(b"ma n MD D5 J7 N0 v t c\r\n");
        assert_eq!((c.opts.mode, c.opts.delta, c.opts.initial), (b'D', 5, 7));
        assert_eq!(err_of(b"ma n Mx\r\n").0, err::MA_MODE);
        assert_eq!(err_of(b"ma n Dx\r\n").0, err::INVALID_OR_DUPLICATE);
        assert_eq!(err_of(b"ma\r\n").0, "ERROR");
        let c = cmd(b"me foo\r\n");
        assert_eq!(&c.key[..], b"foo");
        let c = cmd(b"me Zm9v b\r\n");
        assert_eq!(&c.key[..], b"foo");
        assert_eq!(err_of(b"me\r\n").0, reply::BAD_FORMAT);
        assert_eq!(err_of(b"me !! b\r\n").0, reply::BAD_FORMAT);
        // me ignores anything else after the key.
        assert_eq!(&cmd(b"me foo x y\r\n").key[..], b"foo");
        assert_eq!(cmd(b"mn\r\n").op, MetaOp::Noop);
        assert_eq!(cmd(b"mn foo bar\r\n").op, MetaOp::Noop);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn meta_line() -> impl Strategy<Value = Vec<u8>> {
            let cmd = prop::sample::select(vec!["mg", "ms", "md", "ma", "me", "mn"]);
            let key = prop::sample::select(vec!["a", "Zm9v", "!!", "k k", ""]);
            let flag = prop::sample::select(vec![
                "v", "q", "k", "c", "f", "h", "l", "t", "s", "u", "b", "I", "T10", "Tx", "N5",
                "R3", "F7", "Fz", "C1", "C", "MS", "ME", "MD", "MXX", "D2", "J9", "Dz", "Oab", "x",
                "\u{7f}", "2", "0", "-1",
            ]);
            (
                cmd,
                key,
                prop::collection::vec(flag, 0..24),
                any::<Vec<u8>>(),
            )
                .prop_map(|(c, k, f, tail)| {
                    let mut s = format!("{c} {k} {}\r\n", f.join(" ")).into_bytes();
                    s.extend_from_slice(&tail);
                    s
                })
        }

        fn outcome(buf: &[u8]) -> Option<String> {
            let limits = Limits::default();
            match text::parse(buf, &limits) {
                Parsed::Cmd {
                    cmd: Command::Meta { op, line },
                    consumed,
                } => Some(format!("{:?}", parse(op, line, buf, consumed, &limits))),
                _ => None,
            }
        }

        proptest! {
            #[test]
            fn never_panics(line in meta_line()) {
                let _ = outcome(&line);
            }

            #[test]
            fn never_panics_on_bytes(mut b in any::<Vec<u8>>()) {
                b.splice(0..0, b"ms ".iter().copied());
                let _ = outcome(&b);
                b[1] = b'g';
                let _ = outcome(&b);
            }

            /// Feeding a command byte by byte ends in the same outcome as
            /// feeding it whole; before that the meta parser only ever says
            /// it needs more (or the text parser has no line yet).
            #[test]
            fn incremental_feeding(line in meta_line()) {
                let whole = outcome(&line);
                let mut last = None;
                for end in 1..=line.len() {
                    let part = &line[..end];
                    let limits = Limits::default();
                    let parsed = text::parse(part, &limits);
                    if let Parsed::Cmd { cmd: Command::Meta { op, line: l }, consumed } = parsed {
                        let r = parse(op, l, part, consumed, &limits);
                        if !matches!(r, MetaParsed::Incomplete { .. }) {
                            last = Some(format!("{r:?}"));
                            break;
                        }
                    }
                }
                if let Some(whole) = whole {
                    if !whole.starts_with("Incomplete") {
                        prop_assert_eq!(last, Some(whole));
                    }
                }
            }
        }
    }
}
