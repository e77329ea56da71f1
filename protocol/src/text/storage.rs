//! The per-key commands: retrievals (`get gets bget gat gats`), storage
//! (`set add replace append prepend cas`, data block included), `delete`,
//! `incr`/`decr` and `touch` (`process_get_command`, `process_update_command`
//! and friends in memcached's `proto_text.c`).

use super::command::line_err;
use super::command::{Command, GetEnd, Keys, Parsed, StoreOp};
use super::reply::*;
use super::tokens::{find_byte, next_token, Tokens};
use crate::limits::{Limits, KEY_MAX_LENGTH};
use crate::num::{safe_strtol, safe_strtoul, safe_strtoull};

/// Validate the keys of a retrieval: the region up to the first key longer than 250 bytes,
/// and whether there was one.
fn scan_keys(region: &[u8]) -> (Keys<'_>, GetEnd) {
    // The common case costs nothing: no token can be too long in a short region.
    if region.len() <= KEY_MAX_LENGTH {
        return (Keys { rest: region }, GetEnd::End);
    }
    let mut i = 0;
    let len = region.len();
    while i < len {
        if region[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        i = find_byte(b' ', &region[start..]).map_or(len, |p| start + p);
        if i - start > KEY_MAX_LENGTH {
            return (
                Keys {
                    rest: &region[..start],
                },
                GetEnd::KeyTooLong,
            );
        }
    }
    (Keys { rest: region }, GetEnd::End)
}

/// `get`/`gets`/`bget`: at least one key (`get` alone or `get   ` is `ERROR`).
pub(super) fn parse_get(after: &[u8], with_cas: bool, line_len: usize) -> Parsed<'_> {
    if !after.iter().any(|&b| b != b' ') {
        return line_err(ERROR, false, line_len);
    }
    let (keys, end) = scan_keys(after);
    Parsed::Cmd {
        cmd: Command::Get {
            keys,
            with_cas,
            end,
        },
        consumed: line_len,
    }
}

/// `gat`/`gats <exptime> <key>*`: the exptime is required, keys are not.
pub(super) fn parse_gat(after: &[u8], with_cas: bool, line_len: usize) -> Parsed<'_> {
    let (exp, rest) = match next_token(after) {
        Some(t) => t,
        None => return line_err(ERROR, false, line_len),
    };
    let exptime = match safe_strtol(exp) {
        Some(e) => e,
        None => return line_err(INVALID_EXPTIME, false, line_len),
    };
    let (keys, end) = scan_keys(rest);
    Parsed::Cmd {
        cmd: Command::Gat {
            exptime,
            keys,
            with_cas,
            end,
        },
        consumed: line_len,
    }
}

/// `process_update_command`. Order of checks (each verified against memcached):
/// token count (`ERROR`) → `noreply` → key length → flags/exptime/length numbers → cas
/// number → length range (`< 0` or `> INT_MAX - 2`) → item size (`SERVER_ERROR object too
/// large for cache`, swallowing length+2 bytes) → data block ends in `\r\n`
/// (`CLIENT_ERROR bad data chunk`, after consuming exactly length+2 bytes).
///
/// All the `CLIENT_ERROR bad command line format` cases swallow nothing: memcached then
/// reads the client's data block as a command line (usually answering `ERROR` for it).
/// Every error is silent under `noreply`.
pub(super) fn parse_store<'a>(
    t: &Tokens<'a>,
    op: StoreOp,
    buf: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Parsed<'a> {
    let noreply = t.noreply();
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    let (flags, exptime, vlen) = match (
        safe_strtoul(t.tok(2)),
        safe_strtol(t.tok(3)),
        safe_strtol(t.tok(4)),
    ) {
        (Some(f), Some(e), Some(v)) => (f, e, v),
        _ => return line_err(BAD_FORMAT, noreply, line_len),
    };
    let cas = if op == StoreOp::Cas {
        match safe_strtoull(t.tok(5)) {
            Some(c) => c,
            None => return line_err(BAD_FORMAT, noreply, line_len),
        }
    } else {
        0
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    let nbytes = vlen as usize + 2;
    if limits.item_too_large(key.len(), flags, nbytes) {
        return Parsed::Error {
            reply: TOO_LARGE,
            noreply,
            consumed: line_len,
            swallow: nbytes,
            close: false,
            unlink: if op == StoreOp::Set { Some(key) } else { None },
        };
    }
    let total = line_len + nbytes;
    if buf.len() < total {
        return Parsed::Incomplete { need: Some(total) };
    }
    if &buf[total - 2..total] != b"\r\n" {
        // memcached read exactly length+2 bytes into the item; whatever follows them is
        // the next command (`set a 0 0 1\r\nxyz\r\n` answers bad data chunk, then ERROR for
        // the empty line). The old value is kept.
        return line_err(BAD_DATA_CHUNK, noreply, total);
    }
    Parsed::Cmd {
        cmd: Command::Store {
            op,
            key,
            flags,
            exptime,
            cas,
            value: &buf[line_len..total - 2],
            noreply,
        },
        consumed: total,
    }
}

/// `process_delete_command`: with 3 or 4 tokens the extra ones must be `0` (the old hold time)
/// and/or `noreply`: `delete k 0`, `delete k noreply`, `delete k 0 noreply`. Anything else is
/// [`reply::DELETE_USAGE`](super::reply::DELETE_USAGE) — checked before the key length, and silent
/// when the last token is `noreply` (`delete k 1 noreply` says nothing).
pub(super) fn parse_delete<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let mut noreply = false;
    if nt > 3 {
        let hold_is_zero = t.tok(2) == b"0";
        noreply = t.noreply();
        let valid = (nt == 4 && (hold_is_zero || noreply)) || (nt == 5 && hold_is_zero && noreply);
        if !valid {
            return line_err(DELETE_USAGE, noreply, line_len);
        }
    }
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    Parsed::Cmd {
        cmd: Command::Delete { key, noreply },
        consumed: line_len,
    }
}

/// `process_arithmetic_command`: key length, then the delta (`safe_strtoull`: `-1` is an
/// error, `+5` and `18446744073709551615` are fine). A 5th token other than `noreply` is
/// ignored.
pub(super) fn parse_arith<'a>(t: &Tokens<'a>, incr: bool, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    match safe_strtoull(t.tok(2)) {
        Some(delta) => Parsed::Cmd {
            cmd: Command::Arith {
                key,
                delta,
                incr,
                noreply,
            },
            consumed: line_len,
        },
        None => line_err(INVALID_DELTA, noreply, line_len),
    }
}

/// `process_touch_command`: key length, then the exptime.
pub(super) fn parse_touch<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let noreply = t.noreply();
    let key = t.tok(1);
    if key.len() > KEY_MAX_LENGTH {
        return line_err(BAD_FORMAT, noreply, line_len);
    }
    match safe_strtol(t.tok(2)) {
        Some(exptime) => Parsed::Cmd {
            cmd: Command::Touch {
                key,
                exptime,
                noreply,
            },
            consumed: line_len,
        },
        None => line_err(INVALID_EXPTIME, noreply, line_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse;
    use crate::text::test_util::*;

    // ---- retrieval -------------------------------------------------------------------

    #[test]
    fn get_family() {
        assert_eq!(run(b"get\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"get \r\n"), vec!["ERROR"]);
        assert_eq!(run(b"gets\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"getx a\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"g\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"gets a b\r\n"), vec!["GETS [\"a\", \"b\"]"]);
        assert_eq!(run(b"bget a\r\n"), vec!["GET [\"a\"]"]);
        assert_eq!(run(b"get a noreply\r\n"), vec!["GET [\"a\", \"noreply\"]"]);
        let k250 = k(250);
        let line = cat(&[b"get ", &k250, b"\r\n"]);
        assert_eq!(run(&line).len(), 1);
        assert!(!run(&line)[0].contains("KEY_TOO_LONG"));
    }

    #[test]
    fn get_with_too_long_key() {
        // memcached answers only CLIENT_ERROR bad command line format; keys before the bad
        // one are looked up, keys after it are not.
        let k251 = k(251);
        assert_eq!(
            run(&cat(&[b"get ga gb ", &k251, b" ga\r\n"])),
            vec!["GET [\"ga\", \"gb\"] +KEY_TOO_LONG"]
        );
        assert_eq!(
            run(&cat(&[b"get ", &k251, b"\r\n"])),
            vec!["GET [] +KEY_TOO_LONG"]
        );
        assert_eq!(
            run(&cat(&[b"gat 10 ", &k251, b"\r\n"])),
            vec!["GAT 10 [] +KEY_TOO_LONG"]
        );
        // beyond the 23-token tokenizer window too
        let mut l = b"get".to_vec();
        for i in 0..30 {
            l.extend(format!(" k{}", i).as_bytes());
        }
        l.push(b' ');
        l.extend(&k251);
        l.extend(b" k3\r\n");
        match p(&l) {
            Parsed::Cmd {
                cmd: Command::Get { keys, end, .. },
                ..
            } => {
                assert_eq!(keys.count(), 30);
                assert_eq!(end, GetEnd::KeyTooLong);
            }
            o => panic!("{:?}", o),
        }
    }

    #[test]
    fn get_keys_beyond_max_tokens() {
        // memcached re-tokenizes the rest of a get line: all keys are seen, including when
        // the 23rd token is followed only by spaces.
        let mut l = b"get".to_vec();
        for _ in 0..22 {
            l.extend(b" k3");
        }
        l.extend(b"    \r\n");
        match p(&l) {
            Parsed::Cmd {
                cmd: Command::Get { keys, .. },
                ..
            } => assert_eq!(keys.count(), 22),
            o => panic!("{:?}", o),
        }
    }

    #[test]
    fn gat_family() {
        assert_eq!(run(b"gat\r\n"), vec!["ERROR"]);
        // memcached answers END: an exptime and no keys is fine.
        assert_eq!(run(b"gat 10\r\n"), vec!["GAT 10 []"]);
        assert_eq!(run(b"gat 10 noreply\r\n"), vec!["GAT 10 [\"noreply\"]"]);
        assert_eq!(
            run(b"gat abc ga\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(run(b"gats 10 ga gb\r\n"), vec!["GATS 10 [\"ga\", \"gb\"]"]);
        assert_eq!(run(b"gat -1 ga\r\n"), vec!["GAT -1 [\"ga\"]"]);
        assert_eq!(run(b"gat 4294967297 a\r\n"), vec!["GAT 1 [\"a\"]"]);
    }

    // ---- storage ---------------------------------------------------------------------

    #[test]
    fn set_basic_and_incremental() {
        assert_eq!(
            run(b"set a 0 0 1\r\nx\r\nget a\r\n"),
            vec!["Set a 0 0 0 \"x\"", "GET [\"a\"]"]
        );
        // bare \n ending of the command line is fine
        assert_eq!(run(b"set a 0 0 1\nx\r\n"), vec!["Set a 0 0 0 \"x\""]);
        assert_eq!(
            p(b"set a 0 0 5\r\n"),
            Parsed::Incomplete { need: Some(13 + 7) }
        );
        assert_eq!(
            p(b"set a 0 0 5\r\nhel"),
            Parsed::Incomplete { need: Some(20) }
        );
        assert_eq!(
            p(b"set a 0 0 5\r\nhello\r"),
            Parsed::Incomplete { need: Some(20) }
        );
        // the data block is binary and may contain \r\n
        assert_eq!(
            run(b"set a 0 0 3\r\nx\r\n\r\n"),
            vec!["Set a 0 0 0 \"x\\r\\n\""]
        );
        assert_eq!(run(b"set a 0 0 0\r\n\r\n"), vec!["Set a 0 0 0 \"\""]);
        assert_eq!(run(b"set a 0 0 -0\r\n\r\n"), vec!["Set a 0 0 0 \"\""]);
        assert_eq!(run(b"set a 0 0 01\r\nx\r\n"), vec!["Set a 0 0 0 \"x\""]);
    }

    #[test]
    fn bad_data_chunk_consumes_exactly_length_plus_2() {
        // memcached: bad data chunk, then the rest is parsed as commands.
        assert_eq!(
            run(b"set a 0 0 1\r\nxyz\r\nget a\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "ERROR", "GET [\"a\"]"]
        );
        assert_eq!(
            run(b"set a 0 0 1\r\nx\nget a\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "ERROR"]
        );
        assert_eq!(
            run(b"set a 0 0 0\r\nget a\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "ERROR"]
        );
        assert_eq!(
            run(b"set a 0 0 3\r\nabc\rxversion\r\n"),
            vec!["CLIENT_ERROR bad data chunk", "Version"]
        );
        // silent under noreply
        assert_eq!(
            run(b"set b 0 0 1 noreply\r\nxyz\r\nget b\r\n"),
            vec!["!CLIENT_ERROR bad data chunk", "ERROR", "GET [\"b\"]"]
        );
    }

    #[test]
    fn store_token_counts() {
        assert_eq!(run(b"set e 0 0\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"set e 0 0 1 noreply extra\r\nx\r\n"),
            vec!["ERROR", "ERROR"]
        );
        // a 6th token that is not noreply is ignored
        assert_eq!(run(b"set d 0 0 1 2\r\nx\r\n"), vec!["Set d 0 0 0 \"x\""]);
        assert_eq!(
            run(b"set a 0 0 1 noreplyx\r\nx\r\n"),
            vec!["Set a 0 0 0 \"x\""]
        );
        // with noreply
        assert_eq!(
            run(b"set a 0 0 1 noreply\r\nx\r\n"),
            vec!["Set a 0 0 0 \"x\" noreply"]
        );
        // 30 tokens: ERROR (the tokenizer stops at 23)
        let mut l = b"set".to_vec();
        for _ in 0..30 {
            l.extend(b" a");
        }
        l.extend(b"\r\n");
        assert_eq!(run(&l), vec!["ERROR"]);
        // cas needs its unique
        assert_eq!(run(b"cas a 0 0 1\r\nx\r\n"), vec!["ERROR", "ERROR"]);
        assert_eq!(run(b"cas a 0 0 1 5\r\nx\r\n"), vec!["Cas a 0 0 5 \"x\""]);
        assert_eq!(
            run(b"cas a 0 0 1 5 noreply\r\nx\r\n"),
            vec!["Cas a 0 0 5 \"x\" noreply"]
        );
        // `cas k 0 0 1 noreply`: the unique is "noreply" -> silent format error, then the
        // data line is a command (memcached answered just ERROR).
        assert_eq!(
            run(b"cas a 0 0 1 noreply\r\nx\r\nversion\r\n"),
            vec!["!CLIENT_ERROR bad command line format", "ERROR", "Version"]
        );
        for (cmd, op) in [
            ("add", "Add"),
            ("replace", "Replace"),
            ("append", "Append"),
            ("prepend", "Prepend"),
        ] {
            assert_eq!(
                run(format!("{} a 1 2 1\r\nx\r\n", cmd).as_bytes()),
                vec![format!("{} a 1 2 0 \"x\"", op)]
            );
            assert_eq!(run(format!("{} a 1 2\r\n", cmd).as_bytes()), vec!["ERROR"]);
        }
    }

    #[test]
    fn store_bad_numbers() {
        let bad = "CLIENT_ERROR bad command line format";
        // each followed by the data line parsed as a command: ERROR
        for l in [
            &b"set c abc 0 1\r\nx\r\n"[..],
            b"set c 0 0 -1\r\nx\r\n",
            b"set c -1 0 1\r\nx\r\n",
            b"set c -5 0 1\r\nx\r\n",
            b"set c 18446744073709551616 0 1\r\nx\r\n",
            b"set c -9223372036854775808 0 1\r\nx\r\n",
            b"set c 1x 0 1\r\nx\r\n",
            b"set c 0x5 0 1\r\nx\r\n",
            b"set c 1.5 0 1\r\nx\r\n",
            b"set d 0 abc 1\r\nx\r\n",
            b"set d 0 9223372036854775808 1\r\nx\r\n",
            b"cas a 0 0 1 abc\r\nx\r\n",
            b"cas a 0 0 1 -1\r\nx\r\n",
            b"cas a 0 0 1 18446744073709551616\r\nx\r\n",
        ] {
            assert_eq!(run(l), vec![bad, "ERROR"], "{}", s(l));
        }
        assert_eq!(
            run(b"set c abc 0 1 noreply\r\nx\r\nversion\r\n"),
            vec![format!("!{}", bad).as_str(), "ERROR", "Version"]
        );
        // vlen < 0 or > INT_MAX - 2 (after int32 truncation)
        for v in ["-1", "2147483646", "2147483647", "4294967295", "2147483648"] {
            assert_eq!(
                run(format!("set a 0 0 {}\r\nversion\r\n", v).as_bytes()),
                vec![bad, "Version"],
                "{}",
                v
            );
        }
        let k251 = k(251);
        assert_eq!(
            run(&cat(&[b"set ", &k251, b" 0 0 1\r\nx\r\n"])),
            vec![bad, "ERROR"]
        );
        assert_eq!(run(&cat(&[b"set ", &k(250), b" 0 0 1\r\nx\r\n"])).len(), 1);
    }

    #[test]
    fn store_number_quirks() {
        // flags: strtoul then uint32 truncation; '+' and "-0" fine; isspace after digits ok
        assert_eq!(
            run(b"set c 4294967296 0 1\r\nx\r\n"),
            vec!["Set c 0 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c 4294967295 0 1\r\nx\r\n"),
            vec!["Set c 4294967295 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c 18446744073709551615 0 1\r\nx\r\n"),
            vec!["Set c 4294967295 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c -18446744073709551615 0 1\r\nx\r\n"),
            vec!["Set c 1 0 0 \"x\""]
        );
        assert_eq!(
            run(b"set c -9223372036854775809 0 1\r\nx\r\n"),
            vec!["Set c 4294967295 0 0 \"x\""]
        );
        assert_eq!(run(b"set c +5 0 1\r\nx\r\n"), vec!["Set c 5 0 0 \"x\""]);
        assert_eq!(run(b"set c -0 0 1\r\nx\r\n"), vec!["Set c 0 0 0 \"x\""]);
        assert_eq!(run(b"set c 1\t 0 1\r\nx\r\n"), vec!["Set c 1 0 0 \"x\""]);
        assert_eq!(run(b"set c 1\tx 0 1\r\nx\r\n"), vec!["Set c 1 0 0 \"x\""]);
        assert_eq!(run(b"set c \t1 0 1\r\nx\r\n"), vec!["Set c 1 0 0 \"x\""]);
        assert_eq!(run(b"set x 0 0 1\x0c\r\nz\r\n"), vec!["Set x 0 0 0 \"z\""]);
        assert_eq!(run(b"set x 0 0 \r1\r\nz\r\n"), vec!["Set x 0 0 0 \"z\""]);
        // exptime: strtol then int32 truncation
        assert_eq!(
            run(b"set d 0 4294967296 1\r\nx\r\n"),
            vec!["Set d 0 0 0 \"x\""]
        );
        assert_eq!(run(b"set d 0 -1 1\r\nx\r\n"), vec!["Set d 0 -1 0 \"x\""]);
        // length: int32 truncation, so this stores one byte
        assert_eq!(
            run(b"set c 0 0 4294967297\r\nx\r\n"),
            vec!["Set c 0 0 0 \"x\""]
        );
        // cas unique: full u64
        assert_eq!(
            run(b"cas a 0 0 1 18446744073709551615\r\nx\r\n"),
            vec!["Cas a 0 0 18446744073709551615 \"x\""]
        );
        assert_eq!(
            run(b"cas a 0 0 1 -18446744073709551615\r\nx\r\n"),
            vec!["Cas a 0 0 1 \"x\""]
        );
        assert_eq!(run(b"cas a 0 0 1 +5\r\nx\r\n"), vec!["Cas a 0 0 5 \"x\""]);
        assert_eq!(run(b"cas a 0 0 1 -0\r\nx\r\n"), vec!["Cas a 0 0 0 \"x\""]);
    }

    #[test]
    fn item_size_limit_matches_memcached() {
        // Largest accepted value lengths measured on memcached 1.6.18, per
        // (item_size_max, cas, key length, flags).
        let cases = [
            (1024, true, 1, 0, 964),
            (1024, true, 1, 1, 960),
            (1024, true, 250, 0, 715),
            (1024, true, 250, 1, 711),
            (1024, false, 1, 0, 972),
            (1024, false, 1, 1, 968),
            (1024, false, 250, 0, 723),
            (1024, false, 250, 1, 719),
            (1 << 20, true, 1, 0, 1048516),
            (1 << 20, true, 250, 1, 1048263),
            (1 << 20, false, 1, 0, 1048524),
            (1 << 20, false, 250, 1, 1048271),
            (2 << 20, true, 1, 0, 2097092),
            (2 << 20, true, 250, 1, 2096839),
        ];
        for (max, cas, nkey, flags, vmax) in cases {
            let lim = Limits {
                item_size_max: max,
                cas_enabled: cas,
            };
            assert!(!lim.item_too_large(nkey, flags, vmax + 2));
            assert!(lim.item_too_large(nkey, flags, vmax + 3));
            let line = format!("set {} {} 0 {}\r\n", "k".repeat(nkey), flags, vmax + 1);
            match parse(line.as_bytes(), &lim) {
                Parsed::Error {
                    reply,
                    consumed,
                    swallow,
                    unlink,
                    ..
                } => {
                    assert_eq!(reply, TOO_LARGE);
                    assert_eq!(consumed, line.len());
                    assert_eq!(swallow, vmax + 3);
                    assert_eq!(unlink, Some(&line.as_bytes()[4..4 + nkey]));
                }
                o => panic!("{:?}", o),
            }
            let line = format!("set {} {} 0 {}\r\n", "k".repeat(nkey), flags, vmax);
            assert_eq!(
                parse(line.as_bytes(), &lim),
                Parsed::Incomplete {
                    need: Some(line.len() + vmax + 2)
                }
            );
        }
    }

    #[test]
    fn too_large_swallows_and_only_set_unlinks() {
        let lim = Limits {
            item_size_max: 1024,
            cas_enabled: true,
        };
        let data = vec![b'y'; 2000];
        for (cmd, unlink) in [
            ("set", true),
            ("add", false),
            ("replace", false),
            ("append", false),
            ("prepend", false),
        ] {
            let input = cat(&[
                format!("{} a 0 0 2000\r\n", cmd).as_bytes(),
                &data,
                b"\r\nget a\r\n",
            ]);
            let want = if unlink {
                "SERVER_ERROR object too large for cache <unlink a>"
            } else {
                "SERVER_ERROR object too large for cache"
            };
            assert_eq!(run_with(&input, &lim), vec![want, "GET [\"a\"]"]);
        }
        let input = cat(&[b"cas a 0 0 2000 1\r\n", &data, b"\r\nget a\r\n"]);
        assert_eq!(
            run_with(&input, &lim),
            vec!["SERVER_ERROR object too large for cache", "GET [\"a\"]"]
        );
        // noreply: silent, still swallowed (memcached answered only VERSION)
        let input = cat(&[b"set a 0 0 2000 noreply\r\n", &data, b"\r\nversion\r\n"]);
        assert_eq!(
            run_with(&input, &lim),
            vec![
                "!SERVER_ERROR object too large for cache <unlink a>",
                "Version"
            ]
        );
        // the swallow is blind: it eats the 1998 bytes, the \r\n and "ve"; memcached then
        // answered ERROR for "rsion" and VERSION for the second line.
        let input = cat(&[
            b"set a 0 0 2000\r\n",
            &vec![b'y'; 1998],
            b"\r\nversion\r\nversion\r\n",
        ]);
        let r = run_with(&input, &lim);
        assert_eq!(r[1..], ["ERROR", "Version"]);
        // the swallow may exceed what has arrived
        assert_eq!(
            run_with(b"set a 0 0 2147483645\r\nversion\r\n", &lim),
            vec![
                "SERVER_ERROR object too large for cache <unlink a>",
                "<swallowing 2147483638>"
            ]
        );
    }

    #[test]
    fn touch() {
        assert_eq!(run(b"touch gb 10\r\n"), vec!["TOUCH gb 10"]);
        assert_eq!(run(b"touch gb\r\n"), vec!["ERROR"]);
        assert_eq!(
            run(b"touch gb abc\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(
            run(b"touch gb abc noreply\r\n"),
            vec!["!CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(run(b"touch gb 10 noreply\r\n"), vec!["TOUCH gb 10 noreply"]);
        assert_eq!(run(b"touch gb 10 x\r\n"), vec!["TOUCH gb 10"]);
        assert_eq!(run(b"touch a 1\tx\r\n"), vec!["TOUCH a 1"]);
        assert_eq!(
            run(&cat(&[b"touch ", &k(251), b" 10\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(b"touch zz -18446744073709551615\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(
            run(b"touch zz 9223372036854775808\r\n"),
            vec!["CLIENT_ERROR invalid exptime argument"]
        );
        assert_eq!(
            run(b"touch zz -9223372036854775808\r\n"),
            vec!["TOUCH zz 0"]
        );
    }

    #[test]
    fn arith() {
        assert_eq!(run(b"incr n 5\r\n"), vec!["INCR n 5"]);
        assert_eq!(run(b"decr n 1000\r\n"), vec!["DECR n 1000"]);
        for d in [
            "-1",
            "abc",
            "18446744073709551616",
            "-5",
            "5x",
            "0x5",
            "1.5",
            "-9223372036854775808",
        ] {
            assert_eq!(
                run(format!("incr n {}\r\n", d).as_bytes()),
                vec!["CLIENT_ERROR invalid numeric delta argument"],
                "{}",
                d
            );
        }
        assert_eq!(run(b"incr n\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"incr n 1 2\r\n"), vec!["INCR n 1"]);
        assert_eq!(
            run(b"incr n 18446744073709551615\r\n"),
            vec!["INCR n 18446744073709551615"]
        );
        assert_eq!(run(b"incr n +1\r\n"), vec!["INCR n 1"]);
        assert_eq!(run(b"incr n -0\r\n"), vec!["INCR n 0"]);
        assert_eq!(run(b"incr n -18446744073709551615\r\n"), vec!["INCR n 1"]);
        assert_eq!(run(b"incr a 1\x0b\r\n"), vec!["INCR a 1"]);
        assert_eq!(run(b"incr n 1 noreply\r\n"), vec!["INCR n 1 noreply"]);
        assert_eq!(
            run(b"incr n x noreply\r\n"),
            vec!["!CLIENT_ERROR invalid numeric delta argument"]
        );
        // `incr a noreply`: the delta is "noreply" and the error is silent
        assert_eq!(
            run(b"incr a noreply\r\n"),
            vec!["!CLIENT_ERROR invalid numeric delta argument"]
        );
        assert_eq!(
            run(&cat(&[b"incr ", &k(251), b" 1\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(&cat(&[b"decr ", &k(251), b" 1 noreply\r\n"])),
            vec!["!CLIENT_ERROR bad command line format"]
        );
    }

    #[test]
    fn delete() {
        let usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
        assert_eq!(run(b"delete a\r\n"), vec!["DELETE a"]);
        assert_eq!(run(b"delete a 0\r\n"), vec!["DELETE a"]);
        assert_eq!(run(b"delete a noreply\r\n"), vec!["DELETE a noreply"]);
        assert_eq!(run(b"delete a 0 noreply\r\n"), vec!["DELETE a noreply"]);
        assert_eq!(run(b"delete noreply\r\n"), vec!["DELETE noreply"]);
        assert_eq!(run(b"delete gb 1\r\n"), vec![usage]);
        assert_eq!(run(b"delete zz noreply 0\r\n"), vec![usage]);
        assert_eq!(run(b"delete zz 0 0\r\n"), vec![usage]);
        assert_eq!(run(b"delete a 0\t\r\n"), vec![usage]);
        assert_eq!(run(b"delete a \t0\r\n"), vec![usage]);
        assert_eq!(run(b"delete zz 1 noreply\r\n"), vec![format!("!{}", usage)]);
        assert_eq!(run(b"delete\r\n"), vec!["ERROR"]);
        assert_eq!(run(b"delete a b c d\r\n"), vec!["ERROR"]);
        let k251 = k(251);
        assert_eq!(
            run(&cat(&[b"delete ", &k251, b"\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        assert_eq!(
            run(&cat(&[b"delete ", &k251, b" 0\r\n"])),
            vec!["CLIENT_ERROR bad command line format"]
        );
        // the usage check comes before the key length check
        assert_eq!(run(&cat(&[b"delete ", &k251, b" 1\r\n"])), vec![usage]);
        assert_eq!(
            run(&cat(&[b"delete ", &k251, b" noreply\r\n"])),
            vec!["!CLIENT_ERROR bad command line format"]
        );
    }
}
