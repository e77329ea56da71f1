//! memcached's verbosity and its `-vv` command log.
//!
//! One process-wide level, memcached's `settings.verbose`: `-v`, `-vv`,
//! `-vvv` set it at start, `verbosity N` at run time (clamped to 2, as
//! memcached does), and everything that logs reads it: connection lines,
//! the command log, plugin `log` calls, the plugin code cache, and the
//! `verbosity` line of `stats settings`.
//!
//! At 2 (`-vv`) every client command and its replies are logged in
//! memcached 1.6.18's words, one connection's lines in its command order:
//!
//! ```text
//! <7 new auto-negotiating client connection
//! 7: Client using the ascii protocol
//! <7 get foo bar
//! >7 sending key foo
//! >7 END
//! <7 set q 0 0 1 noreply
//! >7 NOREPLY STORED
//! ```
//!
//! `7` is the connection's id, the one `stats conns` shows (memcached shows
//! its file descriptor in both places). Text and meta commands log their
//! command line; replies log as memcached's `out_string` logs them (a `get`
//! logs `sending key` per hit and `END`; `stats` and meta answers other than
//! `MN`, `me`'s `EN` and errors log nothing, as in memcached). Binary
//! requests log their header in hex, then a line for the command; binary
//! responses their header in hex, after `Writing an error:` for errors.
//!
//! Cost: the worker reads the level once per command (one relaxed load).
//! Below 2 the rest is a few branches on a byte the connection and its reply
//! slots hold: nothing is formatted or allocated. At 2 the command's request
//! lines are handed
//! to its connection ([`Conn::log_begin`]), which logs each reply as it
//! takes its place in the reply stream, so lines come out in memcached's
//! order also for pipelined commands whose answers arrive from several
//! shards.
//!
//! [`Conn::log_begin`]: crate::conn::Conn::log_begin

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use wasmcached_protocol::binary::{self, opcode, status, Command};

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The highest level `verbosity N` sets (memcached's MAX_VERBOSITY_LEVEL).
pub const MAX_SETTABLE: u8 = 2;

/// The current level.
#[inline]
pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Sets the level (`-v` at start, `verbosity N`).
pub fn set(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// `-vv`: are client commands and replies logged?
#[inline]
pub fn commands() -> bool {
    level() >= 2
}

/// How a command's replies are logged (kept per reply slot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Log {
    /// Not logged.
    #[default]
    Off,
    /// Every reply line, as memcached's `out_string` logs it.
    Text,
    /// get/gets/gat/gats: `sending key` per hit, then `END`.
    Get,
    /// stats: only lines other than `STAT …` and `END` (`RESET`, errors).
    Stats,
    /// A meta command: only `MN` and errors.
    Meta,
    /// `me`: as [`Log::Meta`], and its `EN`.
    MetaDebug,
    /// Binary responses: header dumps (stats packets excepted).
    Binary,
}

/// Writes finished log lines to stderr in one piece.
pub fn write(text: &[u8]) {
    let _ = std::io::stderr().lock().write_all(text);
}

/// `<N line`: the command line at the start of `buf`, as memcached's
/// `process_command_ascii` logs it (without `\r\n`, cut at a NUL byte).
pub fn text_request(out: &mut Vec<u8>, id: u64, buf: &[u8]) {
    let nl = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let mut end = nl;
    if nl > 1 && buf[nl - 1] == b'\r' {
        end -= 1;
    }
    let mut line = &buf[..end];
    if let Some(z) = line.iter().position(|&b| b == 0) {
        line = &line[..z];
    }
    let _ = write!(out, "<{id} ");
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// What memcached logs when it reads the binary request at the start of
/// `buf`: the header in hex, then (`try_read_command_binary`,
/// `dispatch_bin_command`, `process_bin_*`) a line for the command.
/// `sasl`: with `-S`, whether the connection has authenticated.
pub fn binary_request(out: &mut Vec<u8>, id: u64, buf: &[u8], sasl: Option<bool>) {
    if buf.len() < binary::HEADER_LEN {
        return;
    }
    dump(
        out,
        '<',
        id,
        "Read binary protocol data:",
        "   ",
        &buf[..binary::HEADER_LEN],
    );
    let (h, extras, key) = match binary::parse(buf) {
        binary::Parsed::Packet {
            header,
            extras,
            key,
            ..
        } => (header, extras, key),
        binary::Parsed::BadMagic => {
            // memcached says so from -v on; -v alone does not log it here.
            let _ = writeln!(out, "Invalid magic:  {:x}", buf[0]);
            return;
        }
        binary::Parsed::Incomplete { .. } => return,
    };
    let (extlen, keylen, bodylen) = (h.extlen as usize, h.keylen as usize, h.bodylen as usize);
    if keylen > bodylen || keylen + extlen > bodylen {
        return;
    }
    if let Some(authenticated) = sasl {
        let allowed = authenticated
            || matches!(
                h.opcode,
                opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP | opcode::VERSION
            );
        let _ = writeln!(
            out,
            "authenticated() in cmd 0x{:02x} is {allowed}",
            h.opcode
        );
        if !allowed {
            return;
        }
    }
    let keyed = |out: &mut Vec<u8>, before: &str, key: &[u8], after: &str| {
        out.extend_from_slice(before.as_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(after.as_bytes());
        out.push(b'\n');
    };
    match binary::decode(&h, extras, key) {
        Command::Get { key, exptime, .. } => {
            let what = if exptime.is_some() { "TOUCH" } else { "GET" };
            keyed(out, &format!("<{id} {what} "), key, "");
        }
        Command::Store {
            kind, key, vlen, ..
        } => {
            let what = match kind {
                binary::StoreKind::Set => "SET",
                binary::StoreKind::Add => "ADD",
                binary::StoreKind::Replace => "REPLACE",
            };
            let after = format!(" Value len is {}", vlen as i32);
            keyed(out, &format!("<{id} {what} "), key, &after);
        }
        Command::Concat { vlen, .. } => {
            let _ = writeln!(out, "Value len is {}", vlen as i32);
        }
        Command::Delete { key, .. } => keyed(out, "Deleting ", key, ""),
        Command::Arith {
            key,
            delta,
            initial,
            exptime,
            ..
        } => {
            // memcached prints the delta signed and the expiration as an int.
            let after = format!(" {}, {initial}, {}", delta as i64, exptime as i32);
            keyed(out, "incr ", key, &after);
        }
        Command::Stat { key } => keyed(out, &format!("<{id} STATS "), key, ""),
        _ => {}
    }
}

/// memcached's header dump: a title, then four bytes a line.
fn dump(out: &mut Vec<u8>, dir: char, id: u64, title: &str, indent: &str, bytes: &[u8]) {
    let _ = write!(out, "{dir}{id} {title}");
    for (i, b) in bytes.iter().enumerate() {
        if i % 4 == 0 {
            let _ = write!(out, "\n{dir}{id}{indent}");
        }
        let _ = write!(out, " 0x{b:02x}");
    }
    out.push(b'\n');
}

/// Lines of rendered text replies, without their `\r\n`.
pub fn split_line(rest: &[u8]) -> (&[u8], &[u8]) {
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[]),
    }
}

/// Logs `bytes`, one command's reply (or part of one) as it enters the
/// reply stream of connection `id`.
pub fn reply(id: u64, kind: Log, bytes: &[u8]) {
    let mut out = Vec::new();
    match kind {
        Log::Off => return,
        Log::Text | Log::Get | Log::Stats => text_reply(&mut out, id, kind, bytes),
        Log::Meta | Log::MetaDebug => {
            // One meta answer is one line (and maybe a value).
            let (line, _) = split_line(bytes);
            let logged = line == b"MN"
                || line == b"ERROR"
                || line.starts_with(b"ERROR ")
                || line.starts_with(b"CLIENT_ERROR")
                || line.starts_with(b"SERVER_ERROR")
                || (kind == Log::MetaDebug && line == b"EN");
            if logged && !bytes.is_empty() {
                let _ = write!(out, ">{id} ");
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
        Log::Binary => binary_reply(&mut out, id, bytes),
    }
    if !out.is_empty() {
        write(&out);
    }
}

fn text_reply(out: &mut Vec<u8>, id: u64, kind: Log, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, after) = split_line(rest);
        rest = after;
        if kind == Log::Get {
            if let Some(v) = line.strip_prefix(b"VALUE ") {
                // VALUE <key> <flags> <bytes>[ <cas>], then the data block
                // (absent when the value goes out straight from the shard).
                let mut t = v.split(|&b| b == b' ');
                let key = t.next().unwrap_or_default();
                let len = t
                    .nth(1)
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
                    .unwrap_or(0);
                let _ = write!(out, ">{id} sending key ");
                out.extend_from_slice(key);
                out.push(b'\n');
                rest = rest.get(len + 2..).unwrap_or_default();
                continue;
            }
        }
        if kind == Log::Stats && (line.starts_with(b"STAT ") || line == b"END") {
            continue;
        }
        let _ = write!(out, ">{id} ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
}

/// Binary responses: `Writing an error:` for an error without a key (what
/// memcached's `write_bin_error` sends), then the header as memcached's
/// `add_bin_header` logs it: before the CAS of a get or touch hit is filled
/// in. Stats packets are not logged.
fn binary_reply(out: &mut Vec<u8>, id: u64, bytes: &[u8]) {
    use opcode::*;
    let mut rest = bytes;
    while rest.len() >= binary::HEADER_LEN {
        let mut h = [0u8; binary::HEADER_LEN];
        h.copy_from_slice(&rest[..binary::HEADER_LEN]);
        let op = h[1];
        let keylen = u16::from_be_bytes([h[2], h[3]]);
        let extlen = h[4] as usize;
        let st = u16::from_be_bytes([h[6], h[7]]);
        let bodylen = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let end = (binary::HEADER_LEN + bodylen).min(rest.len());
        let body = &rest[binary::HEADER_LEN..end];
        rest = &rest[end..];
        if op == STAT && st == status::SUCCESS {
            continue;
        }
        if st != status::SUCCESS && st != status::AUTH_CONTINUE && keylen == 0 {
            let _ = write!(out, ">{id} Writing an error: ");
            out.extend_from_slice(body.get(extlen..).unwrap_or_default());
            out.push(b'\n');
        }
        let get = matches!(
            op,
            GET | GETQ | GETK | GETKQ | TOUCH | GAT | GATQ | GATK | GATKQ
        );
        if get && st == status::SUCCESS {
            h[16..].fill(0);
        }
        dump(out, '>', id, "Writing bin response:", "  ", &h);
    }
}

/// The `NOREPLY` line of an answer the host gives itself.
pub fn noreply_line(id: u64, line: &[u8]) -> Vec<u8> {
    let mut text = format!(">{id} NOREPLY ").into_bytes();
    text.extend_from_slice(line);
    text.push(b'\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(kind: Log, bytes: &[u8]) -> String {
        let mut out = Vec::new();
        text_reply(&mut out, 5, kind, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_replies_log_as_memcached_does() {
        assert_eq!(text(Log::Text, b"STORED\r\n"), ">5 STORED\n");
        assert_eq!(
            text(
                Log::Get,
                b"VALUE a 0 4 9\r\nE\r\nD\r\nVALUE b 1 0\r\n\r\nEND\r\n"
            ),
            ">5 sending key a\n>5 sending key b\n>5 END\n"
        );
        // A value written straight from the shard is not in the buffer.
        assert_eq!(
            text(Log::Get, b"VALUE big 0 100000\r\n"),
            ">5 sending key big\n"
        );
        assert_eq!(text(Log::Stats, b"STAT pid 1\r\nSTAT x y\r\nEND\r\n"), "");
        assert_eq!(text(Log::Stats, b"RESET\r\n"), ">5 RESET\n");
    }

    #[test]
    fn request_lines() {
        let mut out = Vec::new();
        text_request(&mut out, 3, b"get a\r\nget b\r\n");
        text_request(&mut out, 3, b"\r\n");
        text_request(&mut out, 3, b"x\0y\n");
        assert_eq!(out, b"<3 get a\n<3 \r\n<3 x\n");
    }

    #[test]
    fn binary_lines() {
        // set "k" = "vv", flags 0, exptime 0
        let mut req = Vec::new();
        binary::Header {
            magic: binary::REQ_MAGIC,
            opcode: opcode::SET,
            keylen: 1,
            extlen: 8,
            bodylen: 11,
            ..Default::default()
        }
        .write(&mut req);
        req.extend_from_slice(&[0; 8]);
        req.extend_from_slice(b"kvv");
        let mut out = Vec::new();
        binary_request(&mut out, 9, &req, None);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("<9 Read binary protocol data:\n<9    0x80 0x01 0x00 0x01\n"));
        assert!(s.ends_with("<9 SET k Value len is 2\n"), "{s}");

        let mut resp = Vec::new();
        binary::write_error(&mut resp, opcode::GET, status::KEY_ENOENT, 7);
        binary::write_response(&mut resp, opcode::GET, 0, 7, 42, &[0; 4], &[], b"v");
        let mut out = Vec::new();
        binary_reply(&mut out, 9, &resp);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with(">9 Writing an error: Not found\n>9 Writing bin response:\n>9   0x81 0x00 0x00 0x00\n"), "{s}");
        // The hit's CAS (42) is logged as 0, as memcached logs it.
        assert!(!s.contains("0x2a"), "{s}");
        assert_eq!(s.matches("Writing bin response").count(), 2);
    }
}
