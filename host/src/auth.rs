//! Authentication, as memcached 1.6.18 does it.
//!
//! - ASCII auth (`-Y <authfile>`, memcached's `try_read_command_asciiauth`):
//!   until it authenticates, a text connection may only send
//!   `set <any key> <flags> <exptime> <bytes>` whose data is
//!   `username password`. Success answers `STORED`; a wrong pair answers
//!   `CLIENT_ERROR authentication failure`; anything else answers
//!   `CLIENT_ERROR unauthenticated`.
//! - Binary SASL (`-S`) with the PLAIN mechanism, checked against the
//!   `user:password` file named by `MEMCACHED_SASL_PWDB` (memcached's
//!   `ENABLE_SASL_PWDB` convention; re-read on every attempt, as memcached
//!   does). Before a connection authenticates, only VERSION and the SASL
//!   opcodes are served; anything else answers AUTH_ERROR and closes.
//!
//! Passwords are compared in constant time and never logged.

use crate::authfile::{pwdb_check, Credentials};
use crate::conn::ConnAuth;
use crate::conn::{Conn, ConnState};
use crate::counters::{bump, ThreadStats};
use crate::reply::Reply;
use std::path::PathBuf;
use wasmcached_protocol::binary::{self, opcode, status, Header};
use wasmcached_protocol::text::Limits;

/// memcached's `MAX_SASL_MECH_LEN`.
const MAX_SASL_MECH_LEN: usize = 32;
/// memcached closes an unauthenticated text connection that sends this much without a newline.
const MAX_AUTH_LINE: usize = 2048;

/// The mechanisms `SASL_LIST_MECHS` answers.
pub const MECHS: &str = "PLAIN";

/// A PLAIN message (RFC 4616): `authzid NUL authcid NUL passwd`. As
/// libsasl does without proxy rights, an authzid must be empty or the authcid.
pub fn parse_plain(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = data.splitn(3, |&b| b == 0);
    let authzid = parts.next()?;
    let user = parts.next()?;
    let pass = parts.next()?;
    if user.is_empty() || pass.contains(&0) || !(authzid.is_empty() || authzid == user) {
        return None;
    }
    Some((user, pass))
}

/// What an unauthenticated text connection's input amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum AsciiStep {
    /// `consumed` bytes answered `reply`; `ok` if they authenticated.
    Reply {
        consumed: usize,
        reply: &'static str,
        ok: Option<bool>,
    },
    /// Need this many bytes (0: unknown, more than we have).
    Incomplete(usize),
    /// Junk: close the connection.
    Close,
}

/// memcached's `try_read_command_asciiauth`, on the unparsed input `buf`.
pub fn ascii_parse(creds: &Credentials, buf: &[u8]) -> AsciiStep {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_AUTH_LINE {
            AsciiStep::Close
        } else {
            AsciiStep::Incomplete(0)
        };
    };
    let line = &buf[..nl];
    let toks: Vec<&[u8]> = tokens(line).collect();
    let size = toks
        .get(4)
        .and_then(|t| std::str::from_utf8(t.strip_suffix(b"\r").unwrap_or(t)).ok())
        .and_then(|s| s.parse::<u32>().ok());
    let size = match size {
        Some(s) if toks.len() >= 5 && toks[0] == b"set" => s as usize,
        _ => {
            return AsciiStep::Reply {
                consumed: nl + 1,
                reply: "CLIENT_ERROR unauthenticated",
                ok: None,
            }
        }
    };
    let total = nl + 1 + size + 2;
    if buf.len() < total {
        return AsciiStep::Incomplete(total);
    }
    let data = &buf[nl + 1..total];
    if !data.ends_with(b"\r\n") {
        return AsciiStep::Reply {
            consumed: total,
            reply: "CLIENT_ERROR bad command line termination",
            ok: None,
        };
    }
    let data = &data[..size];
    // memcached tokenizes a C string: a NUL ends it.
    let data = &data[..data.iter().position(|&b| b == 0).unwrap_or(data.len())];
    let mut t = tokens(data);
    let (Some(user), Some(pass)) = (t.next(), t.next()) else {
        return AsciiStep::Reply {
            consumed: total,
            reply: "CLIENT_ERROR bad authentication token format",
            ok: None,
        };
    };
    let ok = creds.check(user, pass);
    AsciiStep::Reply {
        consumed: total,
        reply: if ok {
            "STORED"
        } else {
            "CLIENT_ERROR authentication failure"
        },
        ok: Some(ok),
    }
}

/// Space-separated tokens, as memcached's `tokenize_command` splits.
fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// Runs [`ascii_parse`] for a connection; returns the bytes consumed, or
/// `None` when more input is needed (the state says how much: `ConnState::Nread`).
pub fn ascii_step(
    creds: &Credentials,
    st: &ThreadStats,
    conn: &mut Conn<Reply>,
    buf: &[u8],
    max_rbuf: usize,
) -> Option<usize> {
    match ascii_parse(creds, buf) {
        AsciiStep::Incomplete(need) => {
            if need > max_rbuf {
                conn.discard_unwritten(|| Reply::Discarded);
                conn.set_state(ConnState::Closed);
                return Some(buf.len());
            }
            conn.set_state(ConnState::Nread(need));
            None
        }
        AsciiStep::Close => {
            conn.discard_unwritten(|| Reply::Discarded);
            conn.set_state(ConnState::Closed);
            Some(buf.len())
        }
        AsciiStep::Reply {
            consumed,
            reply,
            ok,
        } => {
            if let Some(ok) = ok {
                bump(&st.auth_cmds, 1);
                if ok {
                    conn.auth.authenticated = true;
                } else {
                    bump(&st.auth_errors, 1);
                }
            }
            conn.reply_with(Reply::Ready, |out| {
                out.extend_from_slice(reply.as_bytes());
                out.extend_from_slice(b"\r\n");
            });
            Some(consumed)
        }
    }
}

/// What the SASL layer makes of a binary request (with `-S` on).
#[derive(Debug, PartialEq, Eq)]
pub enum BinStep {
    /// Not ours: dispatch normally.
    Pass,
    /// Answered; the request occupied this many bytes.
    Done(usize),
    /// Need this many bytes from the request's start.
    Incomplete(usize),
}

/// memcached's `authenticated()` gate and SASL handlers for one request.
/// `consumed` covers header, extras and key; the value follows in `buf`.
#[allow(clippy::too_many_arguments)]
pub fn bin_step(
    pwdb: Option<&PathBuf>,
    st: &ThreadStats,
    conn: &mut Conn<Reply>,
    h: &Header,
    key: &[u8],
    buf: &[u8],
    consumed: usize,
    limits: &Limits,
) -> BinStep {
    let (extlen, keylen, bodylen) = (h.extlen as usize, h.keylen as usize, h.bodylen as usize);
    if keylen > bodylen || keylen + extlen > bodylen {
        return BinStep::Pass;
    }
    let sasl_op = matches!(
        h.opcode,
        opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP
    );
    if !conn.auth.authenticated && !sasl_op && h.opcode != opcode::VERSION {
        conn.reply_with(Reply::Ready, |out| {
            binary::write_error(out, h.opcode, status::AUTH_ERROR, h.opaque)
        });
        conn.set_state(ConnState::Closing);
        return BinStep::Done(consumed);
    }
    if !sasl_op || keylen > binary::KEY_MAX_LENGTH {
        return BinStep::Pass;
    }
    let respond = |conn: &mut Conn<Reply>, st: u16, body: &[u8]| {
        conn.reply_with(Reply::Ready, |out| {
            binary::write_response(out, h.opcode, st, h.opaque, 0, &[], &[], body)
        })
    };
    if h.opcode == opcode::SASL_LIST_MECHS {
        if extlen != 0 || keylen != 0 || bodylen != 0 {
            return BinStep::Pass;
        }
        respond(conn, status::SUCCESS, MECHS.as_bytes());
        return BinStep::Done(consumed);
    }
    if extlen != 0 || keylen == 0 {
        return BinStep::Pass;
    }
    let vlen = bodylen - keylen;
    if keylen > MAX_SASL_MECH_LEN || limits.item_too_large(keylen, 0, vlen + 2) {
        let st = if keylen > MAX_SASL_MECH_LEN {
            status::EINVAL
        } else {
            status::ENOMEM
        };
        conn.reply_with(Reply::Ready, |out| {
            binary::write_error(out, h.opcode, st, h.opaque)
        });
        conn.set_state(ConnState::Swallow(vlen));
        return BinStep::Done(consumed);
    }
    let Some(data) = buf.get(consumed..consumed + vlen) else {
        return BinStep::Incomplete(consumed + vlen);
    };
    let a = &mut conn.auth;
    // None: an error; Some(false): continue; Some(true): authenticated.
    let outcome = if h.opcode == opcode::SASL_AUTH {
        a.authenticated = false;
        a.plain_pending = false;
        let r = if !key.eq_ignore_ascii_case(b"PLAIN") {
            a.sasl_done = false;
            None
        } else if data.is_empty() {
            a.plain_pending = true;
            Some(false)
        } else {
            plain_step(pwdb, a, data)
        };
        a.sasl_started = r.is_some();
        r
    } else if !a.sasl_started {
        None
    } else if a.plain_pending || a.sasl_done {
        let r = plain_step(pwdb, a, data);
        a.plain_pending &= r.is_none();
        r
    } else {
        None
    };
    match outcome {
        Some(true) => {
            conn.auth.authenticated = true;
            bump(&st.auth_cmds, 1);
            respond(conn, status::SUCCESS, b"Authenticated");
        }
        Some(false) => respond(conn, status::AUTH_CONTINUE, &[]),
        None => {
            conn.auth.authenticated = false;
            bump(&st.auth_cmds, 1);
            bump(&st.auth_errors, 1);
            conn.reply_with(Reply::Ready, |out| {
                binary::write_error(out, h.opcode, status::AUTH_ERROR, h.opaque)
            });
        }
    }
    BinStep::Done(consumed + vlen)
}

/// libsasl's server step for PLAIN's response: fails (and resets) after a
/// finished exchange, else checks the credentials.
fn plain_step(pwdb: Option<&PathBuf>, a: &mut ConnAuth, data: &[u8]) -> Option<bool> {
    if std::mem::take(&mut a.sasl_done) {
        return None;
    }
    match parse_plain(data) {
        Some((user, pass)) if pwdb_check(pwdb, user, pass) => {
            a.sasl_done = true;
            Some(true)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::parse(b"alice:secret\r\nbob:pw:with:colons\ncarol:").unwrap()
    }

    #[test]
    fn plain_messages() {
        assert_eq!(
            parse_plain(b"\0alice\0secret"),
            Some((&b"alice"[..], &b"secret"[..]))
        );
        assert_eq!(
            parse_plain(b"alice\0alice\0secret"),
            Some((&b"alice"[..], &b"secret"[..]))
        );
        assert_eq!(parse_plain(b"bob\0alice\0secret"), None);
        assert_eq!(parse_plain(b"\0alice\0secret\0"), None);
        assert_eq!(parse_plain(b"\0\0secret"), None);
        assert_eq!(parse_plain(b"garbage"), None);
        assert_eq!(parse_plain(b""), None);
    }

    #[test]
    fn flags_choose_the_protocol() {
        use crate::settings::{BindProtocol, Settings};
        let parse = |args: &[&str]| {
            Settings::parse_from(std::iter::once("wasmcached").chain(args.iter().copied()))
        };
        let s = parse(&["-S"]).unwrap();
        assert!(s.sasl && s.ascii_auth.is_none());
        assert_eq!(s.protocol, BindProtocol::Binary);
        assert_eq!(
            parse(&["-S", "-B", "binary"]).unwrap().protocol,
            BindProtocol::Binary
        );
        assert!(parse(&["-S", "-B", "ascii"]).is_err());
        assert!(parse(&["-S", "-B", "auto"]).is_err());
        assert!(parse(&["-S", "-U", "11211"]).is_err());
        let dir = std::env::temp_dir().join(format!("wmc-authflags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("authfile");
        std::fs::write(&f, "alice:secret\n").unwrap();
        let af = f.to_str().unwrap();
        let s = parse(&["-Y", af]).unwrap();
        assert!(!s.sasl && s.ascii_auth.as_ref().unwrap().check(b"alice", b"secret"));
        assert_eq!(s.protocol, BindProtocol::Ascii);
        assert!(parse(&["-Y", af, "-B", "binary"]).is_err());
        assert!(parse(&["-Y", af, "-U", "11211"]).is_err());
        assert!(parse(&["-Y", "/nonexistent/authfile"]).is_err());
        let d = parse(&[]).unwrap();
        assert!(!d.sasl && d.ascii_auth.is_none() && d.protocol == BindProtocol::Auto);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn reply(s: &AsciiStep) -> &'static str {
        match s {
            AsciiStep::Reply { reply, .. } => reply,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ascii_auth_exchange() {
        let c = creds();
        let ok = ascii_parse(&c, b"set k 0 0 12\r\nalice secret\r\nget k\r\n");
        assert_eq!(
            ok,
            AsciiStep::Reply {
                consumed: 28,
                reply: "STORED",
                ok: Some(true)
            }
        );
        assert_eq!(
            reply(&ascii_parse(&c, b"set k 0 0 12\r\nalice secreT\r\n")),
            "CLIENT_ERROR authentication failure"
        );
        assert_eq!(
            reply(&ascii_parse(&c, b"set k 0 0 16\r\nalice secret bob\r\n")),
            "STORED"
        );
        assert_eq!(
            reply(&ascii_parse(&c, b"get k\r\n")),
            "CLIENT_ERROR unauthenticated"
        );
        assert_eq!(
            reply(&ascii_parse(&c, b"mg k v\r\n")),
            "CLIENT_ERROR unauthenticated"
        );
        assert_eq!(
            reply(&ascii_parse(&c, b"set k 0 0\r\n")),
            "CLIENT_ERROR unauthenticated"
        );
        assert_eq!(
            reply(&ascii_parse(&c, b"set k 0 0 5\r\nalice\r\n")),
            "CLIENT_ERROR bad authentication token format"
        );
        assert_eq!(
            reply(&ascii_parse(&c, b"set k 0 0 5\r\nalicexx")),
            "CLIENT_ERROR bad command line termination"
        );
        assert_eq!(
            ascii_parse(&c, b"set k 0 0 12\r\nalice"),
            AsciiStep::Incomplete(28)
        );
        assert_eq!(ascii_parse(&c, b"set k 0"), AsciiStep::Incomplete(0));
        assert_eq!(ascii_parse(&c, &[b'x'; 3000]), AsciiStep::Close);
    }
}
