//! Helpers shared by the text parser's unit tests: a default [`Limits`], a
//! driver that runs the parser over a byte stream like a connection does and
//! describes each result, and [`Command::encode`], the inverse of `parse` for
//! the commands a client sends (also used by the property tests).

use super::*;

pub(super) const L: Limits = Limits {
    item_size_max: 1024 * 1024,
    cas_enabled: true,
};

pub(super) fn p(buf: &[u8]) -> Parsed<'_> {
    parse(buf, &L)
}

/// Run the parser over `input` like a connection would and describe each result:
/// what memcached would write for errors (`!` prefix = silent, `<close>`), or a short
/// description of the command. Ends with `<incomplete ...>` if bytes are left.
pub(super) fn run_with(input: &[u8], limits: &Limits) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut swallow = 0usize;
    loop {
        let skip = swallow.min(input.len() - pos);
        pos += skip;
        swallow -= skip;
        if swallow > 0 {
            out.push(format!("<swallowing {}>", swallow));
            return out;
        }
        if pos == input.len() {
            return out;
        }
        match parse(&input[pos..], limits) {
            Parsed::Incomplete { need } => {
                out.push(format!("<incomplete {:?}>", need));
                return out;
            }
            Parsed::Cmd { cmd, consumed } => {
                assert!(consumed > 0 && consumed <= input.len() - pos);
                out.push(describe(&cmd));
                pos += consumed;
            }
            e @ Parsed::Error { .. } => {
                let Parsed::Error {
                    reply,
                    noreply,
                    consumed,
                    swallow: s,
                    close,
                    unlink,
                } = e
                else {
                    unreachable!()
                };
                assert!(consumed > 0 && consumed <= input.len() - pos);
                let mut d = if close {
                    "<close>".to_string()
                } else if noreply {
                    format!("!{}", reply)
                } else {
                    reply.to_string()
                };
                if let Some(k) = unlink {
                    d.push_str(&format!(" <unlink {}>", String::from_utf8_lossy(k)));
                }
                out.push(d);
                if close {
                    return out;
                }
                pos += consumed;
                swallow = s;
            }
        }
    }
}

pub(super) fn run(input: &[u8]) -> Vec<String> {
    run_with(input, &L)
}

pub(super) fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn describe(c: &Command<'_>) -> String {
    match c {
        Command::Get {
            keys,
            with_cas,
            end,
        } => format!(
            "{} {:?}{}",
            if *with_cas { "GETS" } else { "GET" },
            keys,
            if *end == GetEnd::KeyTooLong {
                " +KEY_TOO_LONG"
            } else {
                ""
            }
        ),
        Command::Gat {
            exptime,
            keys,
            with_cas,
            end,
        } => format!(
            "{} {} {:?}{}",
            if *with_cas { "GATS" } else { "GAT" },
            exptime,
            keys,
            if *end == GetEnd::KeyTooLong {
                " +KEY_TOO_LONG"
            } else {
                ""
            }
        ),
        Command::Store {
            op,
            key,
            flags,
            exptime,
            cas,
            value,
            noreply,
        } => format!(
            "{:?} {} {} {} {} {:?}{}",
            op,
            s(key),
            flags,
            exptime,
            cas,
            s(value),
            if *noreply { " noreply" } else { "" }
        ),
        Command::Delete { key, noreply } => {
            format!(
                "DELETE {}{}",
                s(key),
                if *noreply { " noreply" } else { "" }
            )
        }
        Command::Arith {
            key,
            delta,
            incr,
            noreply,
        } => format!(
            "{} {} {}{}",
            if *incr { "INCR" } else { "DECR" },
            s(key),
            delta,
            if *noreply { " noreply" } else { "" }
        ),
        Command::Touch {
            key,
            exptime,
            noreply,
        } => {
            format!(
                "TOUCH {} {}{}",
                s(key),
                exptime,
                if *noreply { " noreply" } else { "" }
            )
        }
        Command::Meta { op, line } => format!("META {:?} {}", op, s(line)),
        other => format!("{:?}", other),
    }
}

pub(super) fn k(n: usize) -> Vec<u8> {
    vec![b'k'; n]
}

pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

impl<'a> Command<'a> {
    /// Serialize the command as a client would send it (used by the round-trip tests).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        fn nr(out: &mut Vec<u8>, noreply: bool) {
            if noreply {
                out.extend_from_slice(b" noreply");
            }
        }
        fn keys(out: &mut Vec<u8>, keys: &Keys<'_>) {
            for k in keys.clone() {
                out.push(b' ');
                out.extend_from_slice(k);
            }
        }
        match self {
            Command::Get {
                keys: k, with_cas, ..
            } => {
                out.extend_from_slice(if *with_cas { b"gets" } else { b"get" });
                keys(out, k);
            }
            Command::Gat {
                exptime,
                keys: k,
                with_cas,
                ..
            } => {
                out.extend_from_slice(if *with_cas { b"gats " } else { b"gat " });
                out.extend_from_slice(exptime.to_string().as_bytes());
                keys(out, k);
            }
            Command::Store {
                op,
                key,
                flags,
                exptime,
                cas,
                value,
                noreply,
            } => {
                let name: &[u8] = match op {
                    StoreOp::Set => b"set ",
                    StoreOp::Add => b"add ",
                    StoreOp::Replace => b"replace ",
                    StoreOp::Append => b"append ",
                    StoreOp::Prepend => b"prepend ",
                    StoreOp::Cas => b"cas ",
                };
                out.extend_from_slice(name);
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {} {} {}", flags, exptime, value.len()).as_bytes());
                if *op == StoreOp::Cas {
                    out.extend_from_slice(format!(" {}", cas).as_bytes());
                }
                nr(out, *noreply);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(value);
            }
            Command::Delete { key, noreply } => {
                out.extend_from_slice(b"delete ");
                out.extend_from_slice(key);
                nr(out, *noreply);
            }
            Command::Arith {
                key,
                delta,
                incr,
                noreply,
            } => {
                out.extend_from_slice(if *incr { b"incr " } else { b"decr " });
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {}", delta).as_bytes());
                nr(out, *noreply);
            }
            Command::Touch {
                key,
                exptime,
                noreply,
            } => {
                out.extend_from_slice(b"touch ");
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {}", exptime).as_bytes());
                nr(out, *noreply);
            }
            Command::FlushAll { delay, noreply } => {
                out.extend_from_slice(b"flush_all");
                if let Ok(d) = delay {
                    out.extend_from_slice(format!(" {}", d).as_bytes());
                }
                nr(out, *noreply);
            }
            Command::Version => out.extend_from_slice(b"version"),
            Command::Quit => out.extend_from_slice(b"quit"),
            Command::PluginReload => out.extend_from_slice(b"plugin reload"),
            Command::Verbosity { level, noreply } => {
                out.extend_from_slice(format!("verbosity {}", level).as_bytes());
                nr(out, *noreply);
            }
            Command::CacheMemlimit { megabytes, noreply } => {
                out.extend_from_slice(format!("cache_memlimit {}", megabytes).as_bytes());
                nr(out, *noreply);
            }
            Command::Shutdown { graceful } => {
                out.extend_from_slice(if *graceful == Ok(true) {
                    &b"shutdown graceful"[..]
                } else {
                    &b"shutdown"[..]
                });
            }
            Command::Stats(s) => {
                out.extend_from_slice(b"stats");
                match s {
                    StatsCmd::General => {}
                    StatsCmd::Reset => out.extend_from_slice(b" reset"),
                    StatsCmd::Settings => out.extend_from_slice(b" settings"),
                    StatsCmd::Conns => out.extend_from_slice(b" conns"),
                    StatsCmd::Detail(DetailOp::On) => out.extend_from_slice(b" detail on"),
                    StatsCmd::Detail(DetailOp::Off) => out.extend_from_slice(b" detail off"),
                    StatsCmd::Detail(DetailOp::Dump) => out.extend_from_slice(b" detail dump"),
                    StatsCmd::Cachedump(Ok((id, limit))) => {
                        out.extend_from_slice(format!(" cachedump {} {}", id, limit).as_bytes())
                    }
                    StatsCmd::Cachedump(Err(_)) => out.extend_from_slice(b" cachedump"),
                    StatsCmd::Other(o) => {
                        out.push(b' ');
                        out.extend_from_slice(o);
                    }
                }
            }
            Command::Meta { line, .. } => out.extend_from_slice(line),
            // Admin commands are covered by the table tests, not the round trip.
            _ => unimplemented!("encode of {:?}", self),
        }
        out.extend_from_slice(b"\r\n");
    }
}
