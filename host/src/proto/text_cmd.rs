//! Runs parsed text-protocol commands and renders shard answers as text.
//!
//! A storage command becomes one ABI request per key, queued on the batch of
//! the shard that owns the key, with a reply slot on the connection; commands
//! the host answers itself (version, verbosity, errors, stats settings) reply
//! at once, in order behind the slots before them.

use crate::batch::Msg;
use crate::clock;
use crate::conn::{ConnState, DIRECT_MIN};
use crate::core::Core;
use crate::counters::{bump, ThreadStats};
use crate::listing;
use crate::reply::Aggregate;
use crate::reply::{Delivery, Reply, StatsReply};
use crate::shared::Shared;
use crate::stats;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use wasmcached_abi::fmt_u64;
use wasmcached_abi::{stats_group, Op, Request, Response, Status};
use wasmcached_protocol::text::{
    reply, Command, DetailOp, GetEnd, LruCmd, LruCrawlerCmd, SlabsCmd, StatsCmd, StoreOp,
};

pub use super::common::TextConn;
use super::common::{fan_out, fan_out_stats, get_note, key_request, line, store_note, ticket};

/// Executes one command from connection `idx`.
pub fn execute(core: &mut Core, conn: &mut TextConn, idx: u32, cmd: Command<'_>) {
    let ticket = |conn: &TextConn, seq: u64| ticket(conn, idx, seq);
    match cmd {
        Command::Get {
            keys,
            with_cas,
            end,
        } => get(core, conn, idx, keys, with_cas, None, end),
        Command::Gat {
            exptime,
            keys,
            with_cas,
            end,
        } => {
            let exptime = clock::realtime(exptime as i64);
            get(core, conn, idx, keys, with_cas, Some(exptime), end)
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
            bump(&core.stats().cmd_set, 1);
            let op = match op {
                StoreOp::Set => Op::Set,
                StoreOp::Add => Op::Add,
                StoreOp::Replace => Op::Replace,
                StoreOp::Append => Op::Append,
                StoreOp::Prepend => Op::Prepend,
                StoreOp::Cas => Op::Cas,
            };
            let seq = conn.reserve(
                Reply::Store {
                    noreply,
                    cas: op == Op::Cas,
                },
                1,
            );
            if crate::detail::on() {
                crate::detail::store(key);
            }
            if crate::watch::mask() & crate::watch::MUTATIONS != 0 {
                store_note(core, conn, seq, key, op, exptime as i64, flags, value.len());
            }
            let t = ticket(conn, seq);
            core.push(
                &Request {
                    op: op as u8,
                    key,
                    value,
                    client_flags: flags,
                    exptime: clock::realtime(exptime as i64),
                    cas,
                    ..Default::default()
                },
                t,
            );
        }
        Command::Delete { key, noreply } => {
            if crate::detail::on() {
                crate::detail::delete(key);
            }
            let seq = conn.reserve(Reply::Delete { noreply }, 1);
            let t = ticket(conn, seq);
            core.push(&key_request(Op::Delete, key), t);
        }
        Command::Arith {
            key,
            delta,
            incr,
            noreply,
        } => {
            let seq = conn.reserve(Reply::Arith { noreply, incr }, 1);
            let t = ticket(conn, seq);
            let op = if incr { Op::Incr } else { Op::Decr };
            core.push(
                &Request {
                    delta,
                    ..key_request(op, key)
                },
                t,
            );
        }
        Command::Touch {
            key,
            exptime,
            noreply,
        } => {
            bump(&core.stats().cmd_touch, 1);
            let seq = conn.reserve(Reply::Touch { noreply }, 1);
            let t = ticket(conn, seq);
            core.push(
                &Request {
                    exptime: clock::realtime(exptime as i64),
                    ..key_request(Op::Touch, key)
                },
                t,
            );
        }
        Command::FlushAll { delay, noreply } => {
            // memcached counts the command before it checks -F and the delay.
            bump(&core.stats().cmd_flush, 1);
            if !core.shared.settings.flush_enabled {
                return error(conn, reply::FLUSH_NOT_ALLOWED, noreply);
            }
            let delay = match delay {
                Ok(d) => d,
                Err(e) => return error(conn, e, noreply),
            };
            // A positive delay is an exptime; anything else means now.
            let exptime = if delay > 0 {
                clock::realtime(delay as i64)
            } else {
                0
            };
            let req = Request {
                exptime,
                ..key_request(Op::FlushAll, b"")
            };
            fan_out(core, conn, idx, Reply::ok(noreply), &req);
        }
        Command::CacheMemlimit { megabytes, noreply } => {
            let bytes = megabytes as u64 * 1024 * 1024;
            core.shared.maxbytes.store(bytes, Ordering::Relaxed);
            let req = Request {
                delta: bytes / core.shared.router.shards() as u64,
                ..key_request(Op::MemLimit, b"")
            };
            fan_out(core, conn, idx, Reply::ok(noreply), &req);
        }
        Command::Stats(sub) => stats_command(core, conn, idx, sub),
        Command::Version => conn.reply_with(Reply::Ready, |out| {
            out.extend_from_slice(b"VERSION ");
            line(out, crate::settings::VERSION.as_bytes());
        }),
        Command::Verbosity { level, noreply } => {
            // memcached clamps the level to 2 (-vv).
            crate::verbose::set(level.min(crate::verbose::MAX_SETTABLE as u32) as u8);
            ok(conn, noreply);
        }
        Command::Quit => conn.set_state(ConnState::Closing),
        Command::Shutdown { graceful } => {
            if !core.shared.settings.shutdown_command {
                return error(conn, reply::SHUTDOWN_NOT_ENABLED, false);
            }
            match graceful {
                Ok(graceful) => {
                    core.shared.request_shutdown(graceful);
                    conn.set_state(ConnState::Closed);
                }
                Err(e) => error(conn, e, false),
            }
        }
        // The item store has no slab classes to move, no crawler to steer
        // and no LRU maintainer to tune: it reclaims expired items on its
        // own tick. These admin commands are accepted as memcached accepts
        // them, so scripts that send them keep working.
        Command::Slabs(cmd) => match cmd {
            SlabsCmd::Reassign(_) if !core.shared.settings.knobs.slab_reassign => {
                error(conn, reply::SLAB_REASSIGN_DISABLED, false)
            }
            SlabsCmd::Reassign(Err(e)) => error(conn, e, false),
            SlabsCmd::Reassign(Ok((src, dst))) => {
                let classes = core.shared.settings.plugin_hints().memcached_class_sizes();
                error(conn, slabs_reassign(src, dst, classes.len() - 1), false)
            }
            SlabsCmd::Automove { noreply, .. } | SlabsCmd::AutomoveRatio { noreply, .. } => {
                ok(conn, noreply)
            }
        },
        // The store reclaims expired items on its own tick; the crawler's
        // settings are kept and shown as memcached keeps them, and a crawl
        // is checked as memcached checks it.
        Command::LruCrawler(cmd) => {
            let shared = core.shared.clone();
            let live = &shared.live;
            match cmd {
                LruCrawlerCmd::Metadump { classes } => metadump(core, conn, idx, classes),
                LruCrawlerCmd::Crawl { .. } if !live.lru_crawler() => {
                    error(conn, reply::CRAWLER_DISABLED, false)
                }
                LruCrawlerCmd::Crawl { classes } => match listing::parse_classes(classes) {
                    Ok(_) => ok(conn, false),
                    Err(e) => error(conn, e, false),
                },
                LruCrawlerCmd::Enable => match live.enable_lru_crawler() {
                    Ok(()) => ok(conn, false),
                    Err(e) => error(conn, e, false),
                },
                LruCrawlerCmd::Disable => {
                    live.disable_lru_crawler();
                    ok(conn, false)
                }
                LruCrawlerCmd::Sleep(us) => {
                    live.set_lru_crawler_sleep(us);
                    ok(conn, false)
                }
                LruCrawlerCmd::Tocrawl(n) => {
                    live.set_lru_crawler_tocrawl(n);
                    ok(conn, false)
                }
            }
        }
        Command::Lru(cmd) => match cmd {
            LruCmd::Tune { noreply, .. }
            | LruCmd::Mode { noreply, .. }
            | LruCmd::TempTtl { noreply, .. } => ok(conn, noreply),
        },
        Command::Watch { streams, noreply } => watch(core, conn, streams, noreply),
        Command::Extstore { noreply } => ok(conn, noreply),
        Command::RefreshCerts { noreply } => match &core.shared.tls {
            None => error(conn, reply::TLS_NOT_ENABLED, false),
            Some(tls) => match tls.refresh() {
                Ok(()) => {
                    crate::counters::certs_refreshed();
                    ok(conn, noreply)
                }
                Err(e) => {
                    eprintln!("refresh_certs: {e:#}");
                    error(conn, "ERROR failed to refresh certs", noreply)
                }
            },
        },
        Command::PluginReload => {
            // Compiling and moving items takes a while and waits on every
            // worker, this one included: a helper thread does it and sends
            // the answer back to this connection's slot.
            let seq = conn.reserve(Reply::Admin, 1);
            let t = ticket(conn, seq);
            let shared = core.shared.clone();
            let origin = core.id;
            let spawned = std::thread::Builder::new()
                .name("plugin-reload".into())
                .spawn(move || {
                    let text = match crate::reload::reload_all(&shared) {
                        Ok(_) => b"OK\r\n".to_vec(),
                        // One line: compiler errors span several (the log has them all).
                        Err(e) => format!(
                            "SERVER_ERROR plugin reload failed: {}\r\n",
                            e.lines().next().unwrap_or("").trim_end()
                        )
                        .into_bytes(),
                    };
                    if let Some(w) = shared.workers.get() {
                        w[origin].send(Msg::Reply(t, text));
                    }
                });
            if spawned.is_err() {
                let st = &core.shared.threads[core.id];
                let msg = b"SERVER_ERROR out of threads\r\n";
                conn.complete(seq, |reply, last, out| {
                    render(reply, Delivery::Line(msg), last, out, &core.shared, st)
                });
            }
        }
        Command::Meta { .. } => {
            // The worker hands meta lines to `meta_cmd::step`, which also
            // reads an `ms` data block from the buffer; none arrive here.
            error(conn, reply::ERROR, false)
        }
    }
}

/// `watch`: memcached refuses it under `-W`; otherwise the connection
/// answers `OK` and becomes a watcher (see [`crate::watch`]).
fn watch(
    core: &mut Core,
    conn: &mut TextConn,
    streams: Result<wasmcached_protocol::text::WatchFlags, &'static str>,
    noreply: bool,
) {
    if !core.shared.settings.watch_enabled {
        return error(conn, reply::WATCH_NOT_ALLOWED, noreply);
    }
    let streams = match streams {
        Ok(s) => s,
        Err(e) => return error(conn, e, noreply),
    };
    if noreply {
        return;
    }
    let sock: std::io::Result<Box<dyn std::io::Write + Send>> = match &conn.stream {
        crate::conn::Stream::Tcp(s) => s.try_clone().map(|s| Box::new(s) as _),
        #[cfg(unix)]
        crate::conn::Stream::Unix(s) => s.try_clone().map(|s| Box::new(s) as _),
        _ => Err(std::io::ErrorKind::Unsupported.into()),
    };
    let cap = core.shared.settings.knobs.watcher_logbuf_size as usize;
    match sock.and_then(|s| crate::watch::start(s, crate::watch::from_flags(streams), cap)) {
        Ok(h) => {
            conn.watcher = Some(h);
            conn.reply_now(b"OK\r\n", Reply::Ready);
        }
        Err(_) => error(
            conn,
            "SERVER_ERROR watch not available on this connection",
            false,
        ),
    }
}

fn ok(conn: &mut TextConn, noreply: bool) {
    if noreply {
        conn.log_noreply(b"OK");
    } else {
        conn.reply_now(b"OK\r\n", Reply::Ready);
    }
}

fn error(conn: &mut TextConn, msg: &str, noreply: bool) {
    if noreply {
        conn.log_noreply(msg.as_bytes());
    } else {
        conn.reply_with(Reply::Ready, |out| line(out, msg.as_bytes()));
    }
}

#[allow(clippy::too_many_arguments)]
fn get<'a>(
    core: &mut Core,
    conn: &mut TextConn,
    idx: u32,
    keys: impl Iterator<Item = &'a [u8]>,
    with_cas: bool,
    touch: Option<u32>,
    end: GetEnd,
) {
    let mut n = 0;
    let watched = crate::watch::mask() & crate::watch::FETCHERS != 0;
    let detail = crate::detail::on();
    for key in keys {
        n += 1;
        let seq = conn.reserve(
            Reply::Get {
                with_cas,
                touch: touch.is_some(),
            },
            1,
        );
        if detail {
            crate::detail::get(key);
        }
        if watched || detail {
            get_note(conn, seq, key, detail);
        }
        let t = ticket(conn, idx, seq);
        let req = match touch {
            Some(exptime) => Request {
                exptime,
                ..key_request(Op::Gat, key)
            },
            None => key_request(Op::Get, key),
        };
        core.push(&req, t);
    }
    // memcached counts gat/gats as touches only.
    if touch.is_some() {
        bump(&core.stats().cmd_touch, n);
    } else {
        bump(&core.stats().cmd_get, n);
    }
    match end {
        GetEnd::End => conn.reply_now(b"END\r\n", Reply::Ready),
        GetEnd::KeyTooLong => {
            // memcached looked up the keys before the bad one, then drops
            // every reply still queued on the connection and answers only this.
            conn.discard_unwritten(|| Reply::Discarded);
            error(conn, reply::BAD_FORMAT, false);
        }
    }
}

fn stats_command(core: &mut Core, conn: &mut TextConn, idx: u32, sub: StatsCmd<'_>) {
    // `group` is what the reply shows, `ask` what the shards are asked.
    let (group, ask) = match sub {
        StatsCmd::General => (stats_group::GENERAL, stats_group::GENERAL),
        StatsCmd::Other(b"items") => (stats_group::ITEMS, stats_group::ITEMS),
        StatsCmd::Other(b"slabs") => (stats_group::SLABS, stats_group::SLABS),
        StatsCmd::Other(b"sizes") => (stats_group::SIZES, stats_group::SIZES),
        // wasmcached's own group: its figures and the plugin's own stats.
        StatsCmd::Other(b"plugin") => (stats::PLUGIN_GROUP, stats_group::GENERAL),
        // Each shard's own figures, uncombined.
        StatsCmd::Other(b"shards") => (stats::SHARDS_GROUP, stats::SHARDS_GROUP),
        StatsCmd::Settings => {
            let lines = stats::settings(&core.shared);
            conn.reply_with(Reply::Ready, |out| write_stats(out, lines));
            return;
        }
        StatsCmd::Conns => {
            let lines = stats::conns(&core.shared, conn.id);
            conn.reply_with(Reply::Ready, |out| write_stats(out, lines));
            return;
        }
        // The host's counters at once; the plugin's as each shard gets to
        // it, after the requests before this one. RESET when all have.
        StatsCmd::Reset => {
            core.shared.reset_stats();
            (stats::RESET_GROUP, stats::RESET_GROUP)
        }
        // Per-prefix stats (`-D`, see crate::detail).
        StatsCmd::Detail(op @ (DetailOp::On | DetailOp::Off)) => {
            crate::detail::set(op == DetailOp::On);
            return ok(conn, false);
        }
        StatsCmd::Detail(DetailOp::Dump) => {
            conn.reply_with(Reply::Ready, crate::detail::dump);
            return;
        }
        // wasmcached's own: the hottest keys and prefixes (crate::hotkeys).
        StatsCmd::Other(b"hotkeys") => {
            let lines = core.shared.hotkeys.stats();
            conn.reply_with(Reply::Ready, |out| write_stats(out, lines));
            return;
        }
        // memcached 1.6.18 answers these with the status lines alone, no END.
        StatsCmd::Other(sub @ (b"sizes_enable" | b"sizes_disable")) => {
            let use_cas = core.shared.settings.use_cas;
            let text = core
                .shared
                .live
                .set_track_sizes(sub == b"sizes_enable", use_cas);
            conn.reply_now(text.as_bytes(), Reply::Ready);
            return;
        }
        StatsCmd::Other(b"extstore") => {
            conn.reply_now(b"END\r\n", Reply::Ready);
            return;
        }
        // Listed through the plugin's item iteration (ABI v5).
        StatsCmd::Cachedump(args) => return cachedump(core, conn, idx, args),
        StatsCmd::Other(_) => return error(conn, reply::ERROR, false),
    };
    let reply = Reply::Stats(Box::new(StatsReply {
        group,
        agg: Aggregate::default(),
    }));
    fan_out_stats(core, conn, idx, reply, ask);
}

/// memcached's answer to `slabs reassign <src> <dst>` with `largest`
/// classes (`do_slabs_reassign`): there are no pages to move, so a valid
/// pair of classes has no spare pages (0 is memcached's page pool; -1,
/// "any class with spare pages", finds none).
fn slabs_reassign(src: i32, dst: i32, largest: usize) -> &'static str {
    let class = |id: i32| usize::try_from(id).is_ok_and(|id| id <= largest);
    if src == dst {
        reply::REASSIGN_SAME
    } else if !class(src) || !class(dst) {
        reply::REASSIGN_BADCLASS
    } else {
        reply::REASSIGN_NOSPARE
    }
}

fn write_stats(out: &mut Vec<u8>, lines: Vec<(String, String)>) {
    for (k, v) in lines {
        out.extend_from_slice(b"STAT ");
        out.extend_from_slice(k.as_bytes());
        out.push(b' ');
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"END\r\n");
}

/// A get/gat hit: counts it and writes
/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n`, the line before the value.
fn get_hit(out: &mut Vec<u8>, resp: &Response<'_>, with_cas: bool, touch: bool, st: &ThreadStats) {
    bump(if touch { &st.touch_hits } else { &st.get_hits }, 1);
    let mut num = [0u8; 20];
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(resp.key);
    out.push(b' ');
    out.extend_from_slice(fmt_u64(resp.client_flags as u64, &mut num));
    out.push(b' ');
    out.extend_from_slice(fmt_u64(resp.value.len() as u64, &mut num));
    if with_cas {
        out.push(b' ');
        out.extend_from_slice(fmt_u64(resp.cas, &mut num));
    }
    out.extend_from_slice(b"\r\n");
}

/// A large `get` hit renders its header into `out` and leaves the value
/// out, returning it: the connection writes it to the socket straight from
/// the shard's memory when it can (see `Conn::complete_direct`), which saves
/// copying every large value once more on its way out. Anything else: None.
pub fn render_large_hit<'d>(
    reply: &Reply,
    d: &Delivery<'d>,
    out: &mut Vec<u8>,
    st: &ThreadStats,
) -> Option<&'d [u8]> {
    if let (Reply::Get { with_cas, touch }, Delivery::Resp(resp)) = (reply, d) {
        if resp.value.len() >= DIRECT_MIN && resp.status() == Some(Status::Hit) {
            get_hit(out, resp, *with_cas, *touch, st);
            return Some(resp.value);
        }
    }
    None
}

/// Renders one shard answer for a text command into `out` (the slot's
/// place in the reply stream).
pub fn render(
    reply: &mut Reply,
    d: Delivery<'_>,
    last: bool,
    out: &mut Vec<u8>,
    shared: &Shared,
    st: &ThreadStats,
) {
    if matches!(reply, Reply::Discarded) {
        return;
    }
    let resp = match d {
        Delivery::Resp(r) => r,
        Delivery::Stats(text) => {
            if let Reply::Stats(s) = reply {
                s.agg.add_lines(text);
                if last && s.group == stats::RESET_GROUP {
                    out.extend_from_slice(b"RESET\r\n");
                } else if last {
                    write_stats(out, stats::finish(shared, s.group, &mut s.agg));
                }
            }
            return;
        }
        Delivery::Line(text) => {
            out.extend_from_slice(text);
            return;
        }
        Delivery::Fault(msg) => {
            // A fan-out reports the fault once, when its last shard answers.
            if last || !matches!(reply, Reply::Ok { .. } | Reply::Stats(_)) {
                out.extend_from_slice(b"SERVER_ERROR ");
                line(out, msg.as_bytes());
            }
            return;
        }
    };
    let status = resp.status().unwrap_or(Status::Error);
    let noreply = match reply {
        Reply::Store { noreply, .. }
        | Reply::Delete { noreply }
        | Reply::Arith { noreply, .. }
        | Reply::Touch { noreply }
        | Reply::Ok { noreply, .. } => *noreply,
        _ => false,
    };
    // A fan-out's answer: OK once every shard has answered, unless one
    // refused.
    if let Reply::Ok { failed, .. } = reply {
        if status == Status::Error && failed.is_none() {
            *failed = Some(resp.value.into());
        }
        if last && !noreply {
            match failed {
                Some(msg) => {
                    let mut r = resp.clone();
                    r.value = msg;
                    server_error(out, &r, false);
                }
                None => line(out, b"OK"),
            }
        }
        return;
    }
    let text: &[u8] = match (&*reply, status) {
        (Reply::Get { with_cas, touch }, Status::Hit) => {
            get_hit(out, &resp, *with_cas, *touch, st);
            out.extend_from_slice(resp.value);
            out.extend_from_slice(b"\r\n");
            return;
        }
        (Reply::Get { touch, .. }, Status::Miss) => {
            bump(
                if *touch {
                    &st.touch_misses
                } else {
                    &st.get_misses
                },
                1,
            );
            return;
        }
        (Reply::Store { cas, .. }, s) => {
            if *cas {
                super::common::count_cas(st, s);
            }
            match s {
                Status::Stored => b"STORED",
                Status::NotStored => b"NOT_STORED",
                Status::Exists => b"EXISTS",
                Status::NotFound => b"NOT_FOUND",
                Status::TooLarge => {
                    bump(&st.store_too_large, 1);
                    b"SERVER_ERROR object too large for cache"
                }
                Status::OutOfMemory => {
                    bump(&st.store_no_memory, 1);
                    b"SERVER_ERROR out of memory storing object"
                }
                _ => return server_error(out, &resp, noreply),
            }
        }
        (Reply::Delete { .. }, Status::Deleted) => {
            bump(&st.delete_hits, 1);
            b"DELETED"
        }
        (Reply::Delete { .. }, Status::NotFound) => {
            bump(&st.delete_misses, 1);
            b"NOT_FOUND"
        }
        (Reply::Arith { incr, .. }, Status::Number) => {
            bump(if *incr { &st.incr_hits } else { &st.decr_hits }, 1);
            if !noreply {
                line(out, resp.value);
            }
            return;
        }
        (Reply::Arith { incr, .. }, Status::NotFound) => {
            bump(
                if *incr {
                    &st.incr_misses
                } else {
                    &st.decr_misses
                },
                1,
            );
            b"NOT_FOUND"
        }
        (Reply::Arith { .. }, Status::NonNumeric) => {
            b"CLIENT_ERROR cannot increment or decrement non-numeric value"
        }
        (Reply::Arith { .. }, Status::OutOfMemory) => b"SERVER_ERROR out of memory",
        (Reply::Touch { .. }, Status::Touched) => {
            bump(&st.touch_hits, 1);
            b"TOUCHED"
        }
        (Reply::Touch { .. }, Status::NotFound) => {
            bump(&st.touch_misses, 1);
            b"NOT_FOUND"
        }
        _ => return server_error(out, &resp, noreply),
    };
    if !noreply {
        line(out, text);
    }
}

fn server_error(out: &mut Vec<u8>, resp: &wasmcached_abi::Response<'_>, noreply: bool) {
    if !noreply {
        super::common::server_error(out, resp);
    }
}

/// A text command sent with `noreply` gets no answer, but memcached logs the
/// one it would have sent (`>N NOREPLY STORED`). When shard answer `d` is
/// for such a command's slot `seq`, this renders that answer as if the
/// client wanted it and logs it where the slot stands in the reply order.
pub fn log_noreply(conn: &mut TextConn, seq: u64, d: &Delivery<'_>, shared: &Shared) {
    let Some(slot) = conn.slot(seq) else {
        return;
    };
    if slot.log == crate::verbose::Log::Off || slot.waiting == 0 {
        return;
    }
    let mut twin = match &slot.reply {
        Reply::Store { noreply: true, cas } => Reply::Store {
            noreply: false,
            cas: *cas,
        },
        Reply::Delete { noreply: true } => Reply::Delete { noreply: false },
        Reply::Arith {
            noreply: true,
            incr,
        } => Reply::Arith {
            noreply: false,
            incr: *incr,
        },
        Reply::Touch { noreply: true } => Reply::Touch { noreply: false },
        Reply::Ok {
            noreply: true,
            failed,
        } => Reply::Ok {
            noreply: false,
            failed: failed.clone(),
        },
        _ => return,
    };
    let last = slot.waiting == 1;
    let mut rendered = Vec::new();
    // The real render counts this answer; this one counts into a throwaway.
    let scratch = ThreadStats::default();
    render(&mut twin, d.clone(), last, &mut rendered, shared, &scratch);
    let mut text = Vec::new();
    let mut rest = &rendered[..];
    while !rest.is_empty() {
        let (line, after) = crate::verbose::split_line(rest);
        rest = after;
        let _ = write!(text, ">{} NOREPLY ", conn.id);
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    if !text.is_empty() {
        conn.log_after(seq, text);
    }
}

// ------------------------------------------------------------ item listings

/// `lru_crawler metadump <classes>`, after memcached's checks in its order
/// (crawler enabled, dumping allowed, nothing pipelined before it, a valid
/// class list).
pub fn metadump(core: &mut Core, conn: &mut TextConn, idx: u32, classes: &[u8]) {
    if !core.shared.live.lru_crawler() {
        return list_refuse(conn, reply::CRAWLER_DISABLED);
    }
    if !listing::dump_allowed(&core.shared.settings) || !crate::plugin::plugin_lists() {
        return list_refuse(conn, reply::METADUMP_NOT_ALLOWED);
    }
    if conn.slots_waiting() || conn.has_unwritten() {
        return list_refuse(conn, reply::METADUMP_PIPELINE);
    }
    match listing::parse_classes(classes) {
        Ok(classes) => list_start(core, conn, idx, listing::Kind::Metadump { classes }),
        Err(e) => list_refuse(conn, e),
    }
}

/// `stats cachedump <class> <limit>`: memcached checks that dumping is
/// allowed before it looks at the arguments.
pub fn cachedump(
    core: &mut Core,
    conn: &mut TextConn,
    idx: u32,
    args: Result<(u32, u32), &'static str>,
) {
    if !listing::dump_allowed(&core.shared.settings) || !crate::plugin::plugin_lists() {
        return list_refuse(conn, reply::CACHEDUMP_NOT_ALLOWED);
    }
    match args {
        Ok((class, limit)) => {
            list_start(core, conn, idx, listing::Kind::Cachedump { class, limit })
        }
        Err(e) => list_refuse(conn, e),
    }
}

fn list_refuse(conn: &mut TextConn, msg: &str) {
    conn.reply_with(Reply::Ready, |out| {
        out.extend_from_slice(msg.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Reserves the reply slot and sends the job for the first chunk.
fn list_start(core: &mut Core, conn: &mut TextConn, idx: u32, kind: listing::Kind) {
    // memcached's crawler writes to the socket itself: nothing of a
    // listing shows in the -vv log but its request line.
    conn.log = crate::verbose::Log::Off;
    let seq = conn.reserve(Reply::Admin, 1);
    let ticket = ticket(conn, idx, seq);
    let job = Box::new(listing::Listing::new(kind, core.id, ticket));
    core.send_list_step(job);
}
