//! Property tests for the text protocol parser.
//!
//! The unit tests beside each parser in `text/` pin memcached's exact answers; these check
//! the invariants the connection layer relies on, over inputs nobody thought of:
//! * `parse` never panics, and `consumed` is in `1..=buf.len()` for every decided result;
//!   `need`, when given, is more than what is buffered;
//! * a decided result does not change when more bytes arrive after it (the connection may
//!   act on it at once), except a close, after which nothing more is read;
//! * every command a client can send, serialized, parses back to itself, alone and in a
//!   pipeline;
//! * splitting the byte stream anywhere yields the same results once everything has arrived
//!   (for streams whose unterminated lines stay within memcached's 2048-byte peek limit —
//!   beyond it memcached itself answers differently depending on segmentation);
//! * every key handed out is 1..=250 bytes without spaces.

use super::*;
use proptest::prelude::*;

/// What a connection does with one result, as a comparable string.
fn outcome(p: &Parsed<'_>) -> String {
    match p {
        Parsed::Incomplete { need } => format!("incomplete {:?}", need),
        Parsed::Cmd { cmd, consumed } => format!("{:?} @{}", cmd, consumed),
        Parsed::Error {
            reply,
            noreply,
            consumed,
            swallow,
            close,
            unlink,
        } => format!(
            "error {:?} noreply={} @{} swallow={} close={} unlink={:?}",
            reply, noreply, consumed, swallow, close, unlink
        ),
    }
}

/// Check the per-call invariants of one `parse` result on `buf`.
fn check_result(buf: &[u8], p: &Parsed<'_>) -> Result<(), TestCaseError> {
    match p {
        Parsed::Incomplete { need } => {
            if let Some(n) = need {
                prop_assert!(*n > buf.len(), "need {} <= buffered {}", n, buf.len());
            }
        }
        Parsed::Cmd { cmd, consumed } => {
            prop_assert!(*consumed > 0 && *consumed <= buf.len());
            check_keys(cmd)?;
        }
        Parsed::Error {
            reply,
            consumed,
            close,
            ..
        } => {
            prop_assert!(*consumed > 0 && *consumed <= buf.len());
            prop_assert!(!reply.is_empty() || *close, "silent error without close");
            prop_assert!(!reply.ends_with('\n'));
        }
    }
    Ok(())
}

fn check_keys(cmd: &Command<'_>) -> Result<(), TestCaseError> {
    let keys = match cmd {
        Command::Get { keys, .. } | Command::Gat { keys, .. } => keys.clone(),
        Command::Store { key, .. }
        | Command::Delete { key, .. }
        | Command::Arith { key, .. }
        | Command::Touch { key, .. } => {
            prop_assert!(!key.is_empty() && key.len() <= KEY_MAX_LENGTH);
            prop_assert!(!key.contains(&b' ') && !key.contains(&b'\n') && !key.contains(&0));
            return Ok(());
        }
        _ => return Ok(()),
    };
    for k in keys {
        prop_assert!(!k.is_empty() && k.len() <= KEY_MAX_LENGTH);
        prop_assert!(!k.contains(&b' ') && !k.contains(&b'\n') && !k.contains(&0));
    }
    Ok(())
}

/// Feed `input` to the parser like a connection: the bytes become available at the given
/// cut points (sorted), everything at the end. Returns the outcomes in order, including a
/// final incomplete/swallow state.
fn drive(input: &[u8], cuts: &[usize], limits: &Limits) -> Result<Vec<String>, TestCaseError> {
    let mut points: Vec<usize> = cuts.iter().copied().filter(|&c| c <= input.len()).collect();
    points.sort_unstable();
    points.push(input.len());
    let mut next = 0;
    let mut avail = points[0];
    let mut pos = 0;
    let mut swallow = 0usize;
    let mut out = Vec::new();
    loop {
        let skip = swallow.min(avail - pos);
        pos += skip;
        swallow -= skip;
        let buf = &input[pos..avail];
        let p = if swallow > 0 {
            None
        } else {
            Some(parse(buf, limits))
        };
        if let Some(p) = &p {
            check_result(buf, p)?;
            // `need` is exact: with that many bytes the command is decided.
            if let Parsed::Incomplete { need: Some(n) } = p {
                if pos + n <= input.len() {
                    let q = parse(&input[pos..pos + n], limits);
                    prop_assert!(
                        !matches!(q, Parsed::Incomplete { .. }),
                        "need {} not enough",
                        n
                    );
                }
            }
        }
        match p {
            Some(Parsed::Cmd { consumed, .. }) => {
                out.push(outcome(p.as_ref().unwrap()));
                pos += consumed;
            }
            Some(Parsed::Error {
                consumed,
                swallow: s,
                close,
                ..
            }) => {
                out.push(outcome(p.as_ref().unwrap()));
                if close {
                    return Ok(out);
                }
                pos += consumed;
                swallow = s;
            }
            Some(Parsed::Incomplete { .. }) | None => {
                if avail == input.len() {
                    if swallow > 0 {
                        out.push(format!("swallowing {}", swallow));
                    } else if pos < input.len() {
                        out.push(outcome(p.as_ref().unwrap()));
                    }
                    return Ok(out);
                }
                next += 1;
                avail = points[next];
            }
        }
    }
}

// ---- generators ---------------------------------------------------------------------------

/// A key as clients may send it: any bytes but space, `\n` and NUL (which end a token, a
/// line and the C string memcached tokenizes), 1..=250 bytes; mostly short and printable.
fn key() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => prop::num::u8::ANY.prop_map(|b| b'a' + b % 26),
        1 => prop::num::u8::ANY.prop_filter("key byte", |b| !matches!(*b, b' ' | b'\n' | 0)),
    ];
    prop_oneof![
        6 => prop::collection::vec(byte.clone(), 1..=12),
        1 => prop::collection::vec(byte, 240..=250),
    ]
}

/// A command a client can send, owning its bytes.
#[derive(Clone, Debug)]
enum Spec {
    Get {
        keys: Vec<Vec<u8>>,
        with_cas: bool,
    },
    Gat {
        exptime: i32,
        keys: Vec<Vec<u8>>,
        with_cas: bool,
    },
    Store {
        op: StoreOp,
        key: Vec<u8>,
        flags: u32,
        exptime: i32,
        cas: u64,
        value: Vec<u8>,
        noreply: bool,
    },
    Delete {
        key: Vec<u8>,
        zero: bool,
        noreply: bool,
    },
    Arith {
        key: Vec<u8>,
        delta: u64,
        incr: bool,
        noreply: bool,
    },
    Touch {
        key: Vec<u8>,
        exptime: i32,
        noreply: bool,
    },
    FlushAll {
        delay: Option<i32>,
        noreply: bool,
    },
    Verbosity {
        level: u32,
        noreply: bool,
    },
    CacheMemlimit {
        megabytes: u32,
        noreply: bool,
    },
    Version,
    Quit,
    Stats(u8),
    Meta(Vec<u8>),
}

fn spec() -> impl Strategy<Value = Spec> {
    let store_op = prop_oneof![
        Just(StoreOp::Set),
        Just(StoreOp::Add),
        Just(StoreOp::Replace),
        Just(StoreOp::Append),
        Just(StoreOp::Prepend),
        Just(StoreOp::Cas),
    ];
    prop_oneof![
        (prop::collection::vec(key(), 1..6), any::<bool>())
            .prop_map(|(keys, with_cas)| Spec::Get { keys, with_cas }),
        (
            any::<i32>(),
            prop::collection::vec(key(), 0..6),
            any::<bool>()
        )
            .prop_map(|(exptime, keys, with_cas)| Spec::Gat {
                exptime,
                keys,
                with_cas
            }),
        (
            store_op,
            key(),
            any::<u32>(),
            any::<i32>(),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..300),
            any::<bool>()
        )
            .prop_map(
                |(op, key, flags, exptime, cas, value, noreply)| Spec::Store {
                    op,
                    key,
                    flags,
                    exptime,
                    cas: if op == StoreOp::Cas { cas } else { 0 },
                    value,
                    noreply
                }
            ),
        (key(), any::<bool>(), any::<bool>()).prop_map(|(key, zero, noreply)| Spec::Delete {
            key,
            zero,
            noreply
        }),
        (key(), any::<u64>(), any::<bool>(), any::<bool>()).prop_map(
            |(key, delta, incr, noreply)| Spec::Arith {
                key,
                delta,
                incr,
                noreply
            }
        ),
        (key(), any::<i32>(), any::<bool>()).prop_map(|(key, exptime, noreply)| Spec::Touch {
            key,
            exptime,
            noreply
        }),
        (prop::option::of(any::<i32>()), any::<bool>())
            .prop_map(|(delay, noreply)| Spec::FlushAll { delay, noreply }),
        (any::<u32>(), any::<bool>())
            .prop_map(|(level, noreply)| Spec::Verbosity { level, noreply }),
        (8u32..=1_000_000_000, any::<bool>())
            .prop_map(|(megabytes, noreply)| Spec::CacheMemlimit { megabytes, noreply }),
        Just(Spec::Version),
        Just(Spec::Quit),
        (0u8..4).prop_map(Spec::Stats),
        key().prop_map(|k| {
            let mut l = b"mg ".to_vec();
            l.extend(k);
            l.extend(b" v f t");
            Spec::Meta(l)
        }),
    ]
}

impl Spec {
    /// The bytes a client sends.
    fn encode(&self, out: &mut Vec<u8>) {
        let nr = |out: &mut Vec<u8>, n: bool| {
            if n {
                out.extend_from_slice(b" noreply")
            }
        };
        match self {
            Spec::Get { keys, with_cas } => {
                out.extend_from_slice(if *with_cas { b"gets" } else { b"get" });
                for k in keys {
                    out.push(b' ');
                    out.extend_from_slice(k);
                }
            }
            Spec::Gat {
                exptime,
                keys,
                with_cas,
            } => {
                out.extend_from_slice(if *with_cas { b"gats " } else { b"gat " });
                out.extend_from_slice(exptime.to_string().as_bytes());
                for k in keys {
                    out.push(b' ');
                    out.extend_from_slice(k);
                }
            }
            Spec::Store {
                op,
                key,
                flags,
                exptime,
                cas,
                value,
                noreply,
            } => {
                let name = match op {
                    StoreOp::Set => "set",
                    StoreOp::Add => "add",
                    StoreOp::Replace => "replace",
                    StoreOp::Append => "append",
                    StoreOp::Prepend => "prepend",
                    StoreOp::Cas => "cas",
                };
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {} {} {}", flags, exptime, value.len()).as_bytes());
                if *op == StoreOp::Cas {
                    out.extend_from_slice(format!(" {}", cas).as_bytes());
                }
                nr(out, *noreply);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(value);
            }
            Spec::Delete { key, zero, noreply } => {
                out.extend_from_slice(b"delete ");
                out.extend_from_slice(key);
                if *zero {
                    out.extend_from_slice(b" 0");
                }
                nr(out, *noreply);
            }
            Spec::Arith {
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
            Spec::Touch {
                key,
                exptime,
                noreply,
            } => {
                out.extend_from_slice(b"touch ");
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {}", exptime).as_bytes());
                nr(out, *noreply);
            }
            Spec::FlushAll { delay, noreply } => {
                out.extend_from_slice(b"flush_all");
                if let Some(d) = delay {
                    out.extend_from_slice(format!(" {}", d).as_bytes());
                }
                nr(out, *noreply);
            }
            Spec::Verbosity { level, noreply } => {
                out.extend_from_slice(format!("verbosity {}", level).as_bytes());
                nr(out, *noreply);
            }
            Spec::CacheMemlimit { megabytes, noreply } => {
                out.extend_from_slice(format!("cache_memlimit {}", megabytes).as_bytes());
                nr(out, *noreply);
            }
            Spec::Version => out.extend_from_slice(b"version"),
            Spec::Quit => out.extend_from_slice(b"quit"),
            Spec::Stats(n) => out.extend_from_slice(
                [
                    &b"stats"[..],
                    b"stats reset",
                    b"stats settings",
                    b"stats slabs",
                ][*n as usize],
            ),
            Spec::Meta(l) => out.extend_from_slice(l),
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Does `cmd` say exactly what this spec sent?
    fn matches(&self, cmd: &Command<'_>) -> Result<(), TestCaseError> {
        let same_keys = |keys: &Keys<'_>, want: &Vec<Vec<u8>>| {
            keys.clone().map(|k| k.to_vec()).collect::<Vec<_>>() == *want
        };
        let ok = match (self, cmd) {
            (
                Spec::Get {
                    keys: w,
                    with_cas: wc,
                },
                Command::Get {
                    keys,
                    with_cas,
                    end,
                },
            ) => same_keys(keys, w) && wc == with_cas && *end == GetEnd::End,
            (
                Spec::Gat {
                    exptime: we,
                    keys: w,
                    with_cas: wc,
                },
                Command::Gat {
                    exptime,
                    keys,
                    with_cas,
                    end,
                },
            ) => same_keys(keys, w) && wc == with_cas && we == exptime && *end == GetEnd::End,
            (
                Spec::Store {
                    op,
                    key,
                    flags,
                    exptime,
                    cas,
                    value,
                    noreply,
                },
                Command::Store {
                    op: o,
                    key: k,
                    flags: f,
                    exptime: e,
                    cas: c,
                    value: v,
                    noreply: n,
                },
            ) => {
                op == o
                    && key == k
                    && flags == f
                    && exptime == e
                    && cas == c
                    && value == v
                    && noreply == n
            }
            (Spec::Delete { key, noreply, .. }, Command::Delete { key: k, noreply: n }) => {
                key == k && noreply == n
            }
            (
                Spec::Arith {
                    key,
                    delta,
                    incr,
                    noreply,
                },
                Command::Arith {
                    key: k,
                    delta: d,
                    incr: i,
                    noreply: n,
                },
            ) => key == k && delta == d && incr == i && noreply == n,
            (
                Spec::Touch {
                    key,
                    exptime,
                    noreply,
                },
                Command::Touch {
                    key: k,
                    exptime: e,
                    noreply: n,
                },
            ) => key == k && exptime == e && noreply == n,
            (
                Spec::FlushAll { delay, noreply },
                Command::FlushAll {
                    delay: d,
                    noreply: n,
                },
            ) => *d == Ok(delay.unwrap_or(0)) && noreply == n,
            (
                Spec::Verbosity { level, noreply },
                Command::Verbosity {
                    level: l,
                    noreply: n,
                },
            ) => level == l && noreply == n,
            (
                Spec::CacheMemlimit { megabytes, noreply },
                Command::CacheMemlimit {
                    megabytes: m,
                    noreply: n,
                },
            ) => megabytes == m && noreply == n,
            (Spec::Version, Command::Version) | (Spec::Quit, Command::Quit) => true,
            (Spec::Stats(n), Command::Stats(s)) => matches!(
                (n, s),
                (0, StatsCmd::General)
                    | (1, StatsCmd::Reset)
                    | (2, StatsCmd::Settings)
                    | (3, StatsCmd::Other(b"slabs"))
            ),
            (
                Spec::Meta(l),
                Command::Meta {
                    op: MetaOp::Get,
                    line,
                },
            ) => l == line,
            _ => false,
        };
        prop_assert!(ok, "{:?} parsed as {:?}", self, cmd);
        Ok(())
    }
}

/// Bytes that look like protocol: command names, numbers, `noreply`, separators and line
/// endings, mixed with arbitrary bytes. Reaches far more branches than uniform noise.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        prop::sample::select(vec![
            &b"get"[..],
            b"gets",
            b"gat",
            b"gats",
            b"bget",
            b"set",
            b"add",
            b"replace",
            b"append",
            b"prepend",
            b"cas",
            b"delete",
            b"incr",
            b"decr",
            b"touch",
            b"flush_all",
            b"version",
            b"verbosity",
            b"quit",
            b"shutdown",
            b"graceful",
            b"cache_memlimit",
            b"stats",
            b"reset",
            b"detail",
            b"on",
            b"cachedump",
            b"slabs",
            b"reassign",
            b"automove",
            b"ratio",
            b"lru",
            b"tune",
            b"mode",
            b"flat",
            b"temp_ttl",
            b"lru_crawler",
            b"crawl",
            b"metadump",
            b"sleep",
            b"tocrawl",
            b"enable",
            b"watch",
            b"fetchers",
            b"extstore",
            b"item_size",
            b"max_frag",
            b"refresh_certs",
            b"mg",
            b"ms",
            b"mn",
            b"noreply",
            b"0",
            b"1",
            b"-1",
            b"5",
            b"10",
            b"-0",
            b"+3",
            b"4294967296",
            b"18446744073709551615",
            b"2147483645",
            b"1e999",
            b"nan",
            b"0x1p3",
            b"HTTP/1.1",
            b"k",
            b"key",
        ])
        .prop_map(|w| w.to_vec()),
        prop::collection::vec(any::<u8>(), 0..4),
        Just(vec![b'k'; 251]),
    ];
    let sep = prop::sample::select(vec![
        &b" "[..],
        b" ",
        b" ",
        b"  ",
        b"\t",
        b"\r\n",
        b"\n",
        b"\r",
        b"\0",
    ])
    .prop_map(|s| s.to_vec());
    prop::collection::vec((word, sep), 0..40).prop_map(|parts| {
        let mut v = Vec::new();
        for (w, s) in parts {
            v.extend(w);
            v.extend(s);
        }
        v
    })
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        prop_oneof![Just(1024usize), Just(1 << 20), 1024usize..(4 << 20)],
        any::<bool>(),
    )
        .prop_map(|(item_size_max, cas_enabled)| Limits {
            item_size_max,
            cas_enabled,
        })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        token_soup(),
        (prop::collection::vec(spec(), 0..6), token_soup()).prop_map(|(specs, soup)| {
            let mut v = Vec::new();
            for s in specs {
                s.encode(&mut v);
            }
            v.extend(soup);
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Never panics; every decided result accounts for 1..=len bytes; `need` > len.
    #[test]
    fn never_panics_and_consumes_sanely(buf in input(), lim in limits()) {
        let p = parse(&buf, &lim);
        check_result(&buf, &p)?;
        // A whole stream, too (consumed keeps moving forward).
        drive(&buf, &[], &lim)?;
    }

    /// Once decided (and not a close), the result does not depend on what arrives later.
    #[test]
    fn decided_results_are_stable_under_appending(
        buf in input(), extra in prop::collection::vec(any::<u8>(), 1..64), lim in limits()
    ) {
        let p = parse(&buf, &lim);
        let closes = matches!(p, Parsed::Error { close: true, .. });
        if !matches!(p, Parsed::Incomplete { .. }) && !closes {
            let mut longer = buf.clone();
            longer.extend(&extra);
            prop_assert_eq!(outcome(&parse(&longer, &lim)), outcome(&p));
        }
    }

    /// A serialized command parses back to itself and consumes exactly its bytes.
    #[test]
    fn round_trip(s in spec()) {
        let mut buf = Vec::new();
        s.encode(&mut buf);
        match parse(&buf, &Limits::default()) {
            Parsed::Cmd { cmd, consumed } => {
                prop_assert_eq!(consumed, buf.len());
                s.matches(&cmd)?;
            }
            other => prop_assert!(false, "{:?} -> {:?}", s, other),
        }
    }

    /// A pipeline of commands parses back command by command.
    #[test]
    fn pipeline_round_trip(specs in prop::collection::vec(spec(), 1..10)) {
        let mut buf = Vec::new();
        for s in &specs {
            s.encode(&mut buf);
        }
        let mut pos = 0;
        for s in &specs {
            match parse(&buf[pos..], &Limits::default()) {
                Parsed::Cmd { cmd, consumed } => {
                    s.matches(&cmd)?;
                    pos += consumed;
                }
                other => prop_assert!(false, "{:?} -> {:?}", s, other),
            }
        }
        prop_assert_eq!(pos, buf.len());
    }

    /// Feeding a stream in pieces gives the same results as feeding it whole. Arbitrary
    /// input is cut to 2048 bytes so no unterminated line exceeds memcached's peek limit.
    #[test]
    fn incremental_feeding(
        buf in input(), cuts in prop::collection::vec(0usize..2049, 0..8), lim in limits()
    ) {
        let buf = &buf[..buf.len().min(LINE_PEEK_LIMIT)];
        let whole = drive(buf, &[], &lim)?;
        let pieces = drive(buf, &cuts, &lim)?;
        prop_assert_eq!(pieces, whole);
    }

    /// The same for long pipelines of valid commands (lines are short, data blocks long).
    #[test]
    fn incremental_feeding_pipelines(
        specs in prop::collection::vec(spec(), 1..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut buf = Vec::new();
        for s in &specs {
            s.encode(&mut buf);
        }
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(buf.len() + 1)).collect();
        let lim = Limits::default();
        let whole = drive(&buf, &[], &lim)?;
        prop_assert_eq!(whole.len(), specs.len());
        prop_assert_eq!(drive(&buf, &cuts, &lim)?, whole);
    }
}
