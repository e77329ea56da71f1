//! Runs binary-protocol requests and renders shard answers as binary
//! responses, as memcached 1.6.18's `proto_bin.c` does.
//!
//! A storage request becomes one ABI request with a reply slot, exactly like
//! the text protocol's; requests the host answers itself (noop, version,
//! errors, most stats groups) reply at once, in order behind earlier slots.
//!
//! Quiet requests (`…Q`) answer nothing on success; a quiet get answers only
//! on a hit. Errors are always answered. A response echoes the request's
//! opcode (the quiet one for quiet requests) and opaque, and carries the
//! item's CAS where memcached sends one (hits, stores, incr/decr).

use super::common::key_request;
use crate::clock;
use crate::conn::Ticket;
use crate::conn::{Conn, ConnState};
use crate::core::Core;
use crate::counters::{bump, ThreadStats};
use crate::plugin::plugin_abi;
use crate::reply::Aggregate;
use crate::reply::{BinExtra as Extra, BinKind as Kind, BinReply, Delivery, Reply, StatsReply};
use crate::shared::Shared;
use crate::stats;
use wasmcached_abi::fmt_u64;
use wasmcached_abi::{iflag, mflag, stats_group, Op, Request, Status};
use wasmcached_protocol::binary::{self, status, Command, Parsed, StoreKind};
use wasmcached_protocol::text::Limits;

/// The answer to an incr/decr with an initial value when the plugin speaks ABI v1.
const NEEDS_V2: &str =
    "SERVER_ERROR storage plugin speaks ABI version 1 and cannot create an item on incr/decr";

/// Outcome of [`step`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A request was handled; it occupied this many bytes.
    Done(usize),
    /// Not enough input: this many bytes from the start are needed.
    Incomplete(usize),
}

type BinConn = Conn<Reply>;

fn respond_now(conn: &mut BinConn, f: impl FnOnce(&mut Vec<u8>)) {
    conn.reply_with(Reply::Ready, f);
}

fn error_now(conn: &mut BinConn, op: u8, st: u16, opaque: u32) {
    respond_now(conn, |out| binary::write_error(out, op, st, opaque));
}

/// Handles the request at the start of `buf` (a binary connection's unparsed input).
pub fn step(core: &mut Core, conn: &mut BinConn, idx: u32, buf: &[u8], limits: &Limits) -> Step {
    let (header, extras, key, consumed) = match binary::parse(buf) {
        Parsed::Incomplete { need } => return Step::Incomplete(need),
        Parsed::BadMagic => {
            // memcached goes to conn_closing: nothing more is written.
            conn.discard_unwritten(|| Reply::Discarded);
            conn.set_state(ConnState::Closed);
            return Step::Done(buf.len());
        }
        Parsed::Packet {
            header,
            extras,
            key,
            consumed,
        } => (header, extras, key, consumed),
    };
    if core.shared.settings.sasl {
        let pwdb = core.shared.settings.sasl_pwdb.as_ref();
        let st = core.stats();
        match crate::auth::bin_step(pwdb, st, conn, &header, key, buf, consumed, limits) {
            crate::auth::BinStep::Pass => {}
            crate::auth::BinStep::Done(n) => return Step::Done(n),
            crate::auth::BinStep::Incomplete(n) => return Step::Incomplete(n),
        }
    }
    let op = header.opcode;
    let opaque = header.opaque;
    let reply = |kind: Kind, quiet: bool, extra: Extra| {
        Reply::Binary(BinReply {
            kind,
            opcode: op,
            opaque,
            quiet,
            extra,
        })
    };
    let ticket = |conn: &BinConn, seq: u64| super::common::ticket(conn, idx, seq);
    match binary::decode(&header, extras, key) {
        Command::Error {
            status,
            swallow,
            close,
        } => {
            error_now(conn, op, status, opaque);
            conn.set_state(ConnState::Swallow(swallow));
            if close {
                conn.set_state(ConnState::Closing);
            }
        }
        Command::Get {
            key,
            quiet,
            with_key,
            exptime,
            with_value,
        } => {
            let touch = exptime.is_some();
            let extra = if with_key && !quiet {
                Extra::Key(key.into())
            } else {
                Extra::None
            };
            let kind = Kind::Get {
                with_key,
                with_value,
                touch,
            };
            let seq = conn.reserve(reply(kind, quiet, extra), 1);
            // memcached counts binary gets, gats and touches per prefix.
            let detail = crate::detail::on();
            if detail {
                crate::detail::get(key);
            }
            if detail || crate::watch::mask() & crate::watch::FETCHERS != 0 {
                super::common::get_note(conn, seq, key, detail);
            }
            let req = match exptime {
                Some(e) => Request {
                    exptime: clock::realtime(e as i64),
                    mflags: if with_value { 0 } else { mflag::NO_VALUE },
                    ..key_request(Op::Gat, key)
                },
                None => key_request(Op::Get, key),
            };
            bump(
                if touch {
                    &core.stats().cmd_touch
                } else {
                    &core.stats().cmd_get
                },
                1,
            );
            core.push(&req, ticket(conn, seq));
        }
        Command::Store {
            kind,
            key,
            flags,
            exptime,
            cas,
            vlen,
            quiet,
        } => {
            if limits.item_too_large(key.len(), flags, vlen + 2) {
                error_now(conn, op, status::E2BIG, opaque);
                conn.set_state(ConnState::Swallow(vlen));
                // A refused set must not leave the old value behind.
                if kind == StoreKind::Set {
                    core.push(&key_request(Op::Delete, key), Ticket::DISCARD);
                }
                return Step::Done(consumed);
            }
            let Some(value) = buf.get(consumed..consumed + vlen) else {
                return Step::Incomplete(consumed + vlen);
            };
            let sop = match (kind, cas) {
                (_, c) if c != 0 => Op::Cas,
                (StoreKind::Set, _) => Op::Set,
                (StoreKind::Add, _) => Op::Add,
                (StoreKind::Replace, _) => Op::Replace,
            };
            bump(&core.stats().cmd_set, 1);
            let seq = conn.reserve(reply(Kind::Store(sop), quiet, Extra::None), 1);
            if crate::detail::on() {
                crate::detail::store(key);
            }
            if crate::watch::mask() & crate::watch::MUTATIONS != 0 {
                super::common::store_note(
                    core,
                    conn,
                    seq,
                    key,
                    sop,
                    exptime as i64,
                    flags,
                    value.len(),
                );
            }
            core.push(
                &Request {
                    op: sop as u8,
                    key,
                    value,
                    client_flags: flags,
                    exptime: clock::realtime(exptime as i64),
                    cas,
                    ..Default::default()
                },
                ticket(conn, seq),
            );
            return Step::Done(consumed + vlen);
        }
        Command::Concat {
            append,
            key,
            cas,
            vlen,
            quiet,
        } => {
            if limits.item_too_large(key.len(), 0, vlen + 2) {
                error_now(conn, op, status::E2BIG, opaque);
                conn.set_state(ConnState::Swallow(vlen));
                return Step::Done(consumed);
            }
            let Some(value) = buf.get(consumed..consumed + vlen) else {
                return Step::Incomplete(consumed + vlen);
            };
            let sop = if append { Op::Append } else { Op::Prepend };
            bump(&core.stats().cmd_set, 1);
            let seq = conn.reserve(reply(Kind::Store(sop), quiet, Extra::None), 1);
            if crate::detail::on() {
                crate::detail::store(key);
            }
            if crate::watch::mask() & crate::watch::MUTATIONS != 0 {
                super::common::store_note(core, conn, seq, key, sop, 0, 0, value.len());
            }
            core.push(
                &Request {
                    value,
                    cas,
                    ..key_request(sop, key)
                },
                ticket(conn, seq),
            );
            return Step::Done(consumed + vlen);
        }
        Command::Delete { key, cas, quiet } => {
            if crate::detail::on() {
                crate::detail::delete(key);
            }
            let seq = conn.reserve(reply(Kind::Delete, quiet, Extra::None), 1);
            core.push(
                &Request {
                    cas,
                    ..key_request(Op::Delete, key)
                },
                ticket(conn, seq),
            );
        }
        Command::Arith {
            incr,
            key,
            delta,
            initial,
            exptime,
            cas,
            quiet,
        } => {
            // Unless the expiration is all ones, a miss creates the item
            // holding the initial value (memcached's complete_incr_bin),
            // which needs ABI v2's VIVIFY: a v1 plugin gets a clear error
            // rather than a miss memcached would not answer.
            let vivify = exptime != u32::MAX;
            if vivify && plugin_abi() < 2 {
                respond_now(conn, |out| {
                    write_internal(out, op, opaque, NEEDS_V2.as_bytes())
                });
                return Step::Done(consumed);
            }
            let seq = conn.reserve(reply(Kind::Arith { incr }, quiet, Extra::None), 1);
            let mut num = [0u8; 20];
            let mut req = Request {
                delta,
                cas,
                ..key_request(if incr { Op::Incr } else { Op::Decr }, key)
            };
            if vivify {
                req.mflags |= mflag::VIVIFY;
                req.value = fmt_u64(initial, &mut num);
                req.aux = clock::realtime(exptime as i64);
            }
            core.push(&req, ticket(conn, seq));
        }
        Command::Flush { exptime, quiet } => {
            if !core.shared.settings.flush_enabled {
                error_now(conn, op, status::AUTH_ERROR, opaque);
                return Step::Done(consumed);
            }
            bump(&core.stats().cmd_flush, 1);
            let exptime = if exptime > 0 {
                clock::realtime(exptime as i64)
            } else {
                0
            };
            let req = Request {
                exptime,
                ..key_request(Op::FlushAll, b"")
            };
            let reply = reply(Kind::Flush, quiet, Extra::None);
            super::common::fan_out(core, conn, idx, reply, &req);
        }
        Command::Noop => respond_now(conn, |out| {
            binary::write_response(out, op, status::SUCCESS, opaque, 0, &[], &[], &[])
        }),
        Command::Version => respond_now(conn, |out| {
            binary::write_response(
                out,
                op,
                status::SUCCESS,
                opaque,
                0,
                &[],
                &[],
                crate::settings::VERSION.as_bytes(),
            )
        }),
        Command::Quit { quiet } => {
            if !quiet {
                respond_now(conn, |out| {
                    binary::write_response(out, op, status::SUCCESS, opaque, 0, &[], &[], &[])
                });
            }
            conn.set_state(ConnState::Closing);
        }
        Command::Stat { key } => {
            // (what the reply shows, what the shards are asked)
            let group = match key {
                b"" => Some((stats_group::GENERAL, stats_group::GENERAL)),
                b"items" => Some((stats_group::ITEMS, stats_group::ITEMS)),
                b"slabs" => Some((stats_group::SLABS, stats_group::SLABS)),
                b"sizes" => Some((stats_group::SIZES, stats_group::SIZES)),
                // wasmcached's own group, as in the text protocol.
                b"plugin" => Some((stats::PLUGIN_GROUP, stats_group::GENERAL)),
                b"shards" => Some((stats::SHARDS_GROUP, stats::SHARDS_GROUP)),
                // memcached compares this group by prefix only. The host's
                // counters at once, the plugin's as each shard gets to it;
                // the answer (one empty packet) when all have.
                k if k.starts_with(b"reset") => {
                    core.shared.reset_stats();
                    Some((stats::RESET_GROUP, stats::RESET_GROUP))
                }
                _ => None,
            };
            if let Some((group, ask)) = group {
                let extra = Extra::Stats(Box::new(StatsReply {
                    group,
                    agg: Aggregate::default(),
                }));
                let reply = reply(Kind::Stats, false, extra);
                super::common::fan_out_stats(core, conn, idx, reply, ask);
                return Step::Done(consumed);
            }
            // memcached compares these groups by prefix only.
            let lines: Vec<(String, String)> = if key.starts_with(b"settings") {
                stats::settings(&core.shared)
            } else if key == b"hotkeys" {
                // wasmcached's own group, as in the text protocol.
                core.shared.hotkeys.stats()
            } else if key.starts_with(b"detail") {
                // Per-prefix stats are not recorded: a dump is empty.
                let sub = &key[6..];
                if sub.starts_with(b" dump") {
                    vec![("detailed".into(), "END\r\n".into())]
                } else if sub.starts_with(b" on") || sub.starts_with(b" off") {
                    Vec::new()
                } else {
                    error_now(conn, op, status::KEY_ENOENT, opaque);
                    return Step::Done(consumed);
                }
            } else {
                error_now(conn, op, status::KEY_ENOENT, opaque);
                return Step::Done(consumed);
            };
            respond_now(conn, |out| write_stats(out, op, opaque, &lines));
        }
    }
    Step::Done(consumed)
}

/// One packet per stat, then the empty terminator packet.
fn write_stats(out: &mut Vec<u8>, op: u8, opaque: u32, lines: &[(String, String)]) {
    for (k, v) in lines {
        binary::write_response(
            out,
            op,
            status::SUCCESS,
            opaque,
            0,
            &[],
            k.as_bytes(),
            v.as_bytes(),
        );
    }
    binary::write_response(out, op, status::SUCCESS, opaque, 0, &[], &[], &[]);
}

/// Renders one shard answer for a binary reply slot.
pub fn render(
    r: &mut BinReply,
    d: Delivery<'_>,
    last: bool,
    out: &mut Vec<u8>,
    shared: &Shared,
    st: &ThreadStats,
) {
    let (op, opaque) = (r.opcode, r.opaque);
    let resp = match d {
        Delivery::Resp(resp) => resp,
        // Admin answers are text-protocol only.
        Delivery::Line(_) => return,
        Delivery::Stats(text) => {
            if let Extra::Stats(s) = &mut r.extra {
                s.agg.add_lines(text);
                if last {
                    let lines = stats::finish(shared, s.group, &mut s.agg);
                    write_stats(out, op, opaque, &lines);
                }
            }
            return;
        }
        Delivery::Fault(msg) => {
            // A fan-out reports the fault once, when its last shard answers.
            if last || !matches!(r.kind, Kind::Flush | Kind::Stats) {
                let body = format!("SERVER_ERROR {msg}");
                write_internal(out, op, opaque, body.as_bytes());
            }
            return;
        }
    };
    let s = resp.status().unwrap_or(Status::Error);
    let ok = |out: &mut Vec<u8>, cas: u64| {
        if !r.quiet {
            binary::write_response(out, op, status::SUCCESS, opaque, cas, &[], &[], &[]);
        }
    };
    let err = |out: &mut Vec<u8>, code: u16| binary::write_error(out, op, code, opaque);
    match (r.kind, s) {
        (
            Kind::Get {
                with_key,
                with_value,
                touch,
            },
            Status::Hit,
        ) => {
            bump(if touch { &st.touch_hits } else { &st.get_hits }, 1);
            let flags = resp.client_flags.to_be_bytes();
            let key: &[u8] = if with_key { resp.key } else { &[] };
            let value: &[u8] = if with_value { resp.value } else { &[] };
            binary::write_response(
                out,
                op,
                status::SUCCESS,
                opaque,
                resp.cas,
                &flags,
                key,
                value,
            );
        }
        (
            Kind::Get {
                with_key, touch, ..
            },
            Status::Miss | Status::NotFound,
        ) => {
            bump(
                if touch {
                    &st.touch_misses
                } else {
                    &st.get_misses
                },
                1,
            );
            if r.quiet {
                return;
            }
            match (&r.extra, with_key) {
                // memcached's write_bin_miss_response: the key, once, as the key.
                (Extra::Key(k), true) => {
                    binary::write_response(out, op, status::KEY_ENOENT, opaque, 0, &[], k, &[])
                }
                _ => err(out, status::KEY_ENOENT),
            }
        }
        (Kind::Store(sop), s) => {
            if sop == Op::Cas {
                super::common::count_cas(st, s);
            }
            match s {
                Status::Stored => ok(out, resp.cas),
                Status::Exists => err(out, status::KEY_EEXISTS),
                Status::NotFound => err(out, status::KEY_ENOENT),
                Status::NotStored => err(
                    out,
                    match sop {
                        Op::Add => status::KEY_EEXISTS,
                        Op::Replace => status::KEY_ENOENT,
                        _ => status::NOT_STORED,
                    },
                ),
                Status::TooLarge => err(out, status::E2BIG),
                Status::OutOfMemory => {
                    bump(&st.store_no_memory, 1);
                    err(out, status::ENOMEM)
                }
                _ => internal(out, op, opaque, &resp),
            }
        }
        (Kind::Delete, Status::Deleted) => {
            bump(&st.delete_hits, 1);
            ok(out, 0)
        }
        (Kind::Delete, Status::NotFound) => {
            bump(&st.delete_misses, 1);
            err(out, status::KEY_ENOENT)
        }
        (Kind::Delete, Status::Exists) => err(out, status::KEY_EEXISTS),
        (Kind::Arith { incr }, Status::Number) => {
            if resp.iflags & iflag::CREATED == 0 {
                bump(if incr { &st.incr_hits } else { &st.decr_hits }, 1);
            }
            if !r.quiet {
                let n = std::str::from_utf8(resp.value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                binary::write_response(
                    out,
                    op,
                    status::SUCCESS,
                    opaque,
                    resp.cas,
                    &[],
                    &[],
                    &n.to_be_bytes(),
                );
            }
        }
        (Kind::Arith { incr }, Status::NotFound) => {
            bump(
                if incr {
                    &st.incr_misses
                } else {
                    &st.decr_misses
                },
                1,
            );
            err(out, status::KEY_ENOENT)
        }
        (Kind::Arith { .. }, Status::NonNumeric) => err(out, status::DELTA_BADVAL),
        (Kind::Arith { .. }, Status::Exists) => err(out, status::KEY_EEXISTS),
        (Kind::Arith { .. }, Status::NotStored) => err(out, status::NOT_STORED),
        (Kind::Arith { .. }, Status::OutOfMemory) => err(out, status::ENOMEM),
        (Kind::Flush, _) => {
            if last {
                ok(out, 0)
            }
        }
        _ => internal(out, op, opaque, &resp),
    }
}

/// An EINTERNAL response carrying `body` (memcached's text of the error).
fn write_internal(out: &mut Vec<u8>, op: u8, opaque: u32, body: &[u8]) {
    binary::write_response(out, op, status::EINTERNAL, opaque, 0, &[], &[], body);
}

/// A plugin error (or an answer that makes no sense for the request).
fn internal(out: &mut Vec<u8>, op: u8, opaque: u32, resp: &wasmcached_abi::Response<'_>) {
    let msg: &[u8] = if resp.value.is_empty() {
        b"storage plugin error"
    } else {
        resp.value
    };
    write_internal(out, op, opaque, msg);
}
