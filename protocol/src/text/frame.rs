//! Finding the command line in a connection's buffer (`try_read_command_ascii`)
//! and dispatching it on its first token (`process_command_ascii`) to the
//! parsers in [`storage`](super::storage) and [`admin`](super::admin). The
//! simplest commands (`version`, `quit`, `verbosity`, `shutdown`, ...) are
//! answered in the dispatch itself.

use super::admin::*;
use super::command::{line_err, Command, MetaOp, Parsed, StoreOp};
use super::reply::*;
use super::storage::*;
use super::tokens::{find_byte, next_token, tokenize};
use crate::limits::Limits;
use crate::num::safe_strtoul;

/// `try_read_command_ascii`: when more than this many bytes are buffered without a `\n`,
/// memcached closes the connection unless the line is a large `get`/`gets`.
pub const LINE_PEEK_LIMIT: usize = 2048;

/// memcached's fixed read buffer (`READ_BUFFER_SIZE`). A command line longer than this can
/// never be seen whole (only `get`/`gets` switch to a growable buffer), so memcached always
/// closes on it; we reproduce that deterministically.
pub const READ_BUFFER_SIZE: usize = 16384;

/// `try_read_command_ascii`'s exemption for long lines: at most 100 leading spaces, then
/// `get ` or `gets ` (so `gat`, `bget` and `get\t` are not exempt).
fn is_large_multiget(buf: &[u8]) -> bool {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    if spaces > 100 {
        return false;
    }
    let p = &buf[spaces..];
    p.starts_with(b"get ") || p.starts_with(b"gets ")
}

/// Close without a word (memcached's `conn_closing`).
fn close_now(consumed: usize) -> Parsed<'static> {
    Parsed::Error {
        reply: "",
        noreply: false,
        consumed,
        swallow: 0,
        close: true,
        unlink: None,
    }
}

/// Parse the first command in `buf` (the unconsumed bytes of a connection).
///
/// Line rules (`try_read_command_ascii`):
/// * A command ends at the first `\n`; one `\r` right before it is dropped (except when
///   the line is exactly `\r\n`: memcached's `el - rcurr > 1` test keeps that `\r`, which
///   makes no difference since either way the answer is `ERROR`). A bare `\n` ending is
///   fine. Further `\r`s stay in the last token (`get a\r\r\n` looks up the key `a\r`).
/// * The line is cut at its first NUL byte (memcached tokenizes a C string):
///   `version\0junk` is `version`.
/// * No `\n` yet and more than [`LINE_PEEK_LIMIT`] (2048) bytes buffered: memcached closes
///   the connection silently unless the buffer starts with `get `/`gets ` after at most 100
///   spaces (large multigets may be arbitrarily long). Likewise a non-get line longer than
///   [`READ_BUFFER_SIZE`] (16384 bytes with its `\n`) can never fit memcached's read buffer
///   and closes. In between (2049..=16384 bytes) memcached's outcome depends on how the line
///   was segmented; this parser decides on what `buf` holds, as memcached does on what its
///   read buffer holds, so a connection that reads like memcached (up to 16 KiB per read)
///   behaves the same.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let nl = match find_byte(b'\n', buf) {
        Some(nl) => nl,
        None => {
            if buf.len() > LINE_PEEK_LIMIT && !is_large_multiget(buf) {
                return close_now(buf.len());
            }
            return Parsed::Incomplete { need: None };
        }
    };
    let line_len = nl + 1;
    if line_len > READ_BUFFER_SIZE && !is_large_multiget(buf) {
        return close_now(buf.len());
    }
    let mut end = nl;
    if nl > 1 && buf[nl - 1] == b'\r' {
        end -= 1;
    }
    let mut line = &buf[..end];
    if let Some(z) = find_byte(0, line) {
        line = &line[..z];
    }
    parse_line(line, buf, line_len, limits)
}

/// `process_command_ascii`: dispatch on the first token, in memcached's order.
fn parse_line<'a>(line: &'a [u8], buf: &'a [u8], line_len: usize, limits: &Limits) -> Parsed<'a> {
    let (cmd, after) = match next_token(line) {
        Some(t) => t,
        // "All commands need a minimum of two tokens": an empty or all-space line.
        None => return line_err(ERROR, false, line_len),
    };
    if cmd.len() < 2 {
        return line_err(ERROR, false, line_len);
    }
    let ok = |cmd: Command<'a>| Parsed::Cmd {
        cmd,
        consumed: line_len,
    };

    // Retrievals first and without the general tokenizer: they are the hottest commands
    // and their keys are not limited to 23 tokens anyway (memcached re-tokenizes).
    match cmd {
        b"get" => return parse_get(after, false, line_len),
        b"gets" => return parse_get(after, true, line_len),
        b"gat" => return parse_gat(after, false, line_len),
        b"gats" => return parse_gat(after, true, line_len),
        b"bget" => return parse_get(after, false, line_len),
        _ => {}
    }

    let t = tokenize(line);
    let nt = t.ntokens();
    let first = cmd[0];

    if first == b'm' && cmd.len() == 2 {
        let op = match cmd[1] {
            b'g' => MetaOp::Get,
            b's' => MetaOp::Set,
            b'd' => MetaOp::Delete,
            b'n' => MetaOp::Noop,
            b'a' => MetaOp::Arithmetic,
            b'e' => MetaOp::Debug,
            _ => return line_err(ERROR, false, line_len),
        };
        return ok(Command::Meta { op, line });
    }
    // memcached answers plain ERROR (never the HTTP close) for unknown commands starting
    // with these letters, because it branches on the first byte before comparing names.
    let want = |lo: usize, hi: usize| nt >= lo && nt <= hi;
    match first {
        b'g' => return line_err(ERROR, false, line_len),
        b's' => {
            return match cmd {
                b"set" if want(6, 7) => parse_store(&t, StoreOp::Set, buf, line_len, limits),
                b"stats" => parse_stats(&t, line_len),
                b"shutdown" => ok(Command::Shutdown {
                    graceful: if nt == 2 {
                        Ok(false)
                    } else if nt == 3 && t.tok(1) == b"graceful" {
                        Ok(true)
                    } else {
                        Err(INVALID_SHUTDOWN_MODE)
                    },
                }),
                b"slabs" => parse_slabs(&t, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'a' => {
            return match cmd {
                b"add" if want(6, 7) => parse_store(&t, StoreOp::Add, buf, line_len, limits),
                b"append" if want(6, 7) => parse_store(&t, StoreOp::Append, buf, line_len, limits),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'c' => {
            return match cmd {
                b"cas" if want(7, 8) => parse_store(&t, StoreOp::Cas, buf, line_len, limits),
                b"cache_memlimit" if want(3, 4) => parse_memlimit(&t, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'i' => {
            return match cmd {
                b"incr" if want(4, 5) => parse_arith(&t, true, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b'd' => {
            return match cmd {
                b"delete" if want(3, 5) => parse_delete(&t, line_len),
                b"decr" if want(4, 5) => parse_arith(&t, false, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        b't' => {
            return match cmd {
                b"touch" if want(4, 5) => parse_touch(&t, line_len),
                _ => line_err(ERROR, false, line_len),
            }
        }
        _ => {}
    }
    match cmd {
        b"replace" if want(6, 7) => parse_store(&t, StoreOp::Replace, buf, line_len, limits),
        b"prepend" if want(6, 7) => parse_store(&t, StoreOp::Prepend, buf, line_len, limits),
        b"flush_all" if want(2, 4) => parse_flush_all(&t, line_len),
        b"version" => ok(Command::Version),
        b"quit" => ok(Command::Quit),
        b"lru_crawler" => parse_lru_crawler(&t, line_len),
        b"watch" => parse_watch(&t, line_len),
        b"verbosity" if want(3, 4) => {
            let noreply = t.noreply();
            match safe_strtoul(t.tok(1)) {
                Some(level) => ok(Command::Verbosity { level, noreply }),
                None => line_err(BAD_FORMAT, noreply, line_len),
            }
        }
        b"lru" if nt >= 3 => parse_lru(&t, line_len),
        b"extstore" if nt >= 3 => parse_extstore(&t, line_len),
        b"plugin" if nt == 3 && t.tok(1) == b"reload" => ok(Command::PluginReload),
        b"refresh_certs" => ok(Command::RefreshCerts {
            noreply: t.noreply(),
        }),
        // Wrong token counts for known commands are plain ERROR.
        b"replace" | b"prepend" | b"flush_all" | b"verbosity" | b"lru" | b"extstore" => {
            line_err(ERROR, false, line_len)
        }
        // Unknown command. memcached drops the connection when the last token it looked at
        // starts with "HTTP/" (someone speaking HTTP to the cache), otherwise ERROR.
        // `misbehave` and `debugtime` exist only in debug builds and land here too.
        _ => {
            if t.tok(t.len() - 1).starts_with(b"HTTP/") {
                close_now(line_len)
            } else {
                line_err(ERROR, false, line_len)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::test_util::*;
    use crate::text::{GetEnd, Keys, StatsCmd};

    // ---- line handling -------------------------------------------------------------

    #[test]
    fn empty_and_short_lines_are_error() {
        // memcached: "\r\n", "\n", " \r\n", "x\r\n", "xx\r\n" all answer ERROR.
        for l in [
            &b"\r\n"[..],
            b"\n",
            b" \r\n",
            b"x\r\n",
            b"xx\r\n",
            b"\r\r\n",
            b"   \n",
        ] {
            assert_eq!(run(l), vec!["ERROR"], "{:?}", s(l));
        }
    }

    #[test]
    fn incomplete_until_newline() {
        assert_eq!(p(b""), Parsed::Incomplete { need: None });
        assert_eq!(p(b"get a"), Parsed::Incomplete { need: None });
        assert_eq!(p(b"get a\r"), Parsed::Incomplete { need: None });
        assert_eq!(run(b"get a\n"), vec!["GET [\"a\"]"]);
        assert_eq!(run(b"get a\r\n"), vec!["GET [\"a\"]"]);
    }

    #[test]
    fn only_one_cr_is_stripped() {
        // memcached: `get a\r\r\n` looks up "a\r" (END for a miss).
        assert_eq!(run(b"get a\r\r\n"), vec!["GET [\"a\\r\"]"]);
    }

    #[test]
    fn commands_are_case_sensitive_and_split_on_spaces_only() {
        assert_eq!(run(b"VERSION\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"Get a\r\n"), vec!["ERROR"]);
        // tabs are token bytes: `get\ta` is an unknown 'g' command.
        assert_eq!(run(b"get\ta\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"gets\ta b\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"version\t\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"quit\t\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"mn\t\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"verbosity\t1\r\n"), vec!["ERROR"]);
        // ... and spaces are collapsed; leading spaces are fine.
        assert_eq!(run(b"  get   a   b  \r\n"), vec!["GET [\"a\", \"b\"]"]);
    }

    #[test]
    fn control_bytes_are_key_bytes() {
        // memcached: `set a\x01\t\r 0 0 1` then `get a\x01\t\r` finds the item.
        assert_eq!(
            run(b"set a\x01\t\r 0 0 1\r\nx\r\nget a\x01\t\r\r\n"),
            vec!["Set a\x01\t\r 0 0 0 \"x\"", "GET [\"a\\u{1}\\t\\r\"]"]
        );
    }

    #[test]
    fn nul_truncates_the_line() {
        // memcached tokenizes a C string: `version\0junk` is `version`, `get a\0b` is `get a`.
        assert_eq!(run(b"version\x00junk\r\n"), vec!["Version"]);
        assert_eq!(run(b"get a b\x00 c\r\n"), vec!["GET [\"a\", \"b\"]"]);
        assert_eq!(run(b"\x00get a\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"get a\r\n\x00\r\nversion\r\n"),
            vec!["GET [\"a\"]", "ERROR", "Version"]
        );
    }

    #[test]
    fn long_lines_close_unless_large_multiget() {
        // memcached: 2049 bytes without newline closes; 2048 waits.
        assert_eq!(p(&[b'x'; 2048]), Parsed::Incomplete { need: None });
        assert_eq!(run(&[b'x'; 2049]), vec!["<close>"]);
        let mut set = b"set ".to_vec();
        set.extend(k(3000));
        assert_eq!(run(&set), vec!["<close>"]);
        // `get `/`gets ` lines may be arbitrarily long, with up to 100 leading spaces.
        let mut get = b"get ".to_vec();
        for i in 0..400 {
            get.extend(format!("key{:04} ", i).as_bytes());
        }
        assert_eq!(p(&get), Parsed::Incomplete { need: None });
        let mut gets = b"gets ".to_vec();
        gets.extend(&get[4..]);
        assert_eq!(p(&gets), Parsed::Incomplete { need: None });
        let mut sp = vec![b' '; 100];
        sp.extend(&get);
        assert_eq!(p(&sp), Parsed::Incomplete { need: None });
        let mut sp = vec![b' '; 101];
        sp.extend(&get);
        assert_eq!(run(&sp), vec!["<close>"]);
        // `gat` is not exempt (memcached closed the connection).
        let mut gat = b"gat 0 ".to_vec();
        gat.extend(&get[4..]);
        assert_eq!(run(&gat), vec!["<close>"]);
        // "get" + 3000 spaces keeps reading, then the line is `get` alone: ERROR.
        let mut g = b"get".to_vec();
        g.extend(vec![b' '; 3000]);
        assert_eq!(p(&g), Parsed::Incomplete { need: None });
        g.extend(b"\r\n");
        assert_eq!(run(&g), vec!["ERROR"]);
        // A long get line with its newline is parsed.
        get.extend(b"\r\n");
        match p(&get) {
            Parsed::Cmd {
                cmd: Command::Get { keys, .. },
                consumed,
            } => {
                assert_eq!(keys.count(), 400);
                assert_eq!(consumed, get.len());
            }
            other => panic!("{:?}", other),
        }
    }

    #[test]
    fn whole_lines_up_to_read_buffer_size() {
        // memcached processes a non-get line of up to 16384 bytes (with `\n`) that arrives
        // at once, and closes on 16385 (both with `\r\n` and bare `\n` endings).
        for (total, lf_only) in [(16384, false), (16384, true), (16385, false), (16385, true)] {
            let ending: &[u8] = if lf_only { b"\n" } else { b"\r\n" };
            let mut l = b"set ".to_vec();
            l.extend(vec![b'x'; total - 4 - 6 - ending.len()]);
            l.extend(b" 0 0 1");
            l.extend(ending);
            assert_eq!(l.len(), total);
            let want = if total <= 16384 {
                "CLIENT_ERROR bad command line format"
            } else {
                "<close>"
            };
            assert_eq!(run(&l)[0], want, "{} {}", total, lf_only);
        }
        let mut l = b"set ".to_vec();
        l.extend(k(3000));
        l.extend(b" 0 0 1\r\nx\r\n");
        assert_eq!(
            run(&l),
            vec!["CLIENT_ERROR bad command line format", "ERROR"]
        );
    }

    #[test]
    fn http_closes() {
        assert_eq!(run(b"GET / HTTP/1.1\r\nHost: x\r\n"), vec!["<close>"]);
        assert_eq!(run(b"POST /x HTTP/1.0\r\n"), vec!["<close>"]);
        // only the last token counts
        assert_eq!(run(b"foo HTTP/1.1 x\r\n"), vec!["ERROR"]);
        // a known 'g' command: keys "HTTP/1.1"
        assert_eq!(run(b"get HTTP/1.1\r\n"), vec!["GET [\"HTTP/1.1\"]"]);
        // 'm'/'s'/... branch: plain ERROR
        assert_eq!(run(b"mx HTTP/1.1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"sx HTTP/1.1\r\n"), vec!["ERROR"]);
        // with more than 23 tokens "last" is the 23rd token (memcached closed on the first,
        // answered ERROR on the second).
        let mut a = b"foo".to_vec();
        for _ in 0..21 {
            a.extend(b" a");
        }
        let mut b = a.clone();
        a.extend(b" HTTP/1.1 b\r\n");
        b.extend(b" a HTTP/1.1 b\r\n");
        assert_eq!(run(&a), vec!["<close>"]);
        assert_eq!(run(&b), vec!["ERROR"]);
    }

    #[test]
    fn debug_only_commands_are_unknown() {
        assert_eq!(run(b"misbehave\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"debugtime 1\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"lru_crawler mgdump 1\r\n"), vec!["ERROR"]);
    }

    #[test]
    fn verbosity_version_quit() {
        assert_eq!(run(b"verbosity\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"verbosity 1 2 3\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"verbosity 1\r\n"),
            vec!["Verbosity { level: 1, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity 1 2\r\n"),
            vec!["Verbosity { level: 1, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity 1 noreply\r\n"),
            vec!["Verbosity { level: 1, noreply: true }"]
        );
        assert_eq!(
            run(b"verbosity 4294967296\r\n"),
            vec!["Verbosity { level: 0, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity 18446744073709551615\r\n"),
            vec!["Verbosity { level: 4294967295, noreply: false }"]
        );
        assert_eq!(
            run(b"verbosity abc\r\n"),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(b"verbosity -1\r\n"),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(b"verbosity noreply\r\n"),
            vec!["!CLIENT_ERROR bad command line format"]
        );
        assert_eq!(run(b"version\r\n"), vec!["Version"]);
        assert_eq!(run(b"version foo bar\r\n"), vec!["Version"]);
        assert_eq!(run(b"quit\r\nversion\r\n"), vec!["Quit", "Version"]);
        assert_eq!(run(b"quit x\r\n"), vec!["Quit"]);
    }

    #[test]
    fn shutdown() {
        let sh = |g: Result<bool, &'static str>| format!("{:?}", Command::Shutdown { graceful: g });
        assert_eq!(run(b"shutdown\r\n"), vec![sh(Ok(false))]);
        assert_eq!(run(b"shutdown graceful\r\n"), vec![sh(Ok(true))]);
        assert_eq!(run(b"shutdown x\r\n"), vec![sh(Err(INVALID_SHUTDOWN_MODE))]);
        assert_eq!(
            run(b"shutdown graceful x\r\n"),
            vec![sh(Err(INVALID_SHUTDOWN_MODE))]
        );
    }

    #[test]
    fn meta_passthrough() {
        assert_eq!(run(b"mn\r\n"), vec!["META Noop mn"]);
        assert_eq!(run(b"mg a v\r\n"), vec!["META Get mg a v"]);
        assert_eq!(run(b" me a\r\n"), vec!["META Debug  me a"]);
        assert_eq!(run(b"ma a\r\n"), vec!["META Arithmetic ma a"]);
        assert_eq!(run(b"md a q\r\n"), vec!["META Delete md a q"]);
        assert_eq!(run(b"mx\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"mgx\r\n"), vec!["ERROR"]);
        // ms: only the line is consumed; the data block is the meta parser's.
        match p(b"ms a 1\r\nx\r\n") {
            Parsed::Cmd {
                cmd:
                    Command::Meta {
                        op: MetaOp::Set,
                        line,
                    },
                consumed,
            } => {
                assert_eq!(line, b"ms a 1");
                assert_eq!(consumed, 8);
            }
            o => panic!("{:?}", o),
        }
    }

    #[test]
    fn pipelines_split_anywhere_give_the_same_results() {
        let input: &[u8] = b"set a 0 0 5\r\nhello\r\nget a b\r\ngat 1 a\r\nincr n 1 noreply\r\n\
            delete a 0\r\nset x 1 2 3\r\nabcd\r\nbogus\r\ntouch a 1\r\nmn\r\nversion\r\n";
        let whole = run(input);
        assert_eq!(whole.len(), 11, "{:?}", whole);
        for cut in 0..=input.len() {
            let mut pos = 0;
            let mut out = Vec::new();
            let mut have = cut;
            loop {
                match parse(&input[pos..have], &L) {
                    Parsed::Incomplete { need } => {
                        if let Some(n) = need {
                            assert!(n > have - pos);
                        }
                        if have == input.len() {
                            break;
                        }
                        have = input.len();
                    }
                    Parsed::Cmd { cmd, consumed } => {
                        out.push(describe(&cmd));
                        pos += consumed;
                    }
                    Parsed::Error {
                        reply, consumed, ..
                    } => {
                        out.push(reply.to_string());
                        pos += consumed;
                    }
                }
            }
            assert_eq!(out, whole, "cut at {}", cut);
        }
    }

    #[test]
    fn round_trip_examples() {
        let value = b"v\r\nal\x00ue";
        let cmds = [
            Command::Store {
                op: StoreOp::Cas,
                key: b"k",
                flags: 7,
                exptime: -3,
                cas: 99,
                value,
                noreply: true,
            },
            Command::Store {
                op: StoreOp::Set,
                key: b"k\t",
                flags: 0,
                exptime: 0,
                cas: 0,
                value: b"",
                noreply: false,
            },
            Command::Get {
                keys: Keys { rest: b"a b c" },
                with_cas: true,
                end: GetEnd::End,
            },
            Command::Gat {
                exptime: 5,
                keys: Keys { rest: b"" },
                with_cas: false,
                end: GetEnd::End,
            },
            Command::Delete {
                key: b"noreply",
                noreply: false,
            },
            Command::Delete {
                key: b"d",
                noreply: true,
            },
            Command::Arith {
                key: b"n",
                delta: u64::MAX,
                incr: false,
                noreply: false,
            },
            Command::Touch {
                key: b"t",
                exptime: i32::MIN,
                noreply: true,
            },
            Command::FlushAll {
                delay: Ok(10),
                noreply: true,
            },
            Command::Verbosity {
                level: 2,
                noreply: false,
            },
            Command::CacheMemlimit {
                megabytes: 100,
                noreply: true,
            },
            Command::Version,
            Command::Quit,
            Command::Stats(StatsCmd::Cachedump(Ok((3, 4)))),
        ];
        for c in cmds {
            let mut buf = Vec::new();
            c.encode(&mut buf);
            match parse(&buf, &L) {
                Parsed::Cmd { cmd, consumed } => {
                    assert_eq!(cmd, c);
                    assert_eq!(consumed, buf.len());
                }
                o => panic!("{:?} -> {:?}", c, o),
            }
        }
    }
}
