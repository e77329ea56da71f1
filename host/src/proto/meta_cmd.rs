//! Runs parsed meta commands (`mg ms md ma mn me`) and renders the shard
//! answers in memcached 1.6.18's meta syntax.
//!
//! Every meta command is one ABI request (ABI v2 meanings for vivify,
//! invalidate, recache, binary keys; see `docs/plugin-abi.md`). The reply
//! slot keeps what the answer must echo: the flag tokens in request order,
//! the request key, and the TTLs the flags set, because memcached writes a
//! flag's value at the flag's position (`mg k t T30 t` shows the TTL before
//! and after the touch).
//!
//! Statistics follow memcached 1.6.18: `mg` counts as a get (or, with `T`, as
//! a touch), `ms` as a set (and as a cas when it compares), `md` as a delete
//! (marking stale counts nothing), `ma` as incr/decr (vivifying counts
//! nothing), and only `me` counts in `cmd_meta`.

use super::common::{self, line, server_error, TextConn};
use crate::clock;
use crate::conn::ConnState;
use crate::core::Core;
use crate::counters::{bump, ThreadStats};
use crate::plugin::plugin_abi;
use crate::reply::{Delivery, MetaReply, Reply};
use crate::shared::Shared;
use wasmcached_abi::fmt_u64;
use wasmcached_abi::{iflag, mflag, Op, Request, Response, Status};
use wasmcached_protocol::meta::{self, base64_encode, MetaCmd, MetaParsed};
use wasmcached_protocol::text::{Limits, MetaOp};

/// memcached's answer when a v1 plugin is asked for something only ABI v2 can say.
const NEEDS_V2: &str =
    "SERVER_ERROR storage plugin speaks ABI version 1 and cannot do this meta flag";

/// Parses the meta command that the text parser found at the start of `buf`
/// (`line` is its line, `line_len` the line with its ending), reads an `ms`
/// data block, and runs it. Returns the bytes consumed, or `None` when the
/// data block has not fully arrived (the state is then `ConnState::Nread`).
#[allow(clippy::too_many_arguments)]
pub fn step(
    core: &mut Core,
    conn: &mut TextConn,
    idx: u32,
    op: MetaOp,
    line: &[u8],
    buf: &[u8],
    line_len: usize,
    limits: &Limits,
) -> Option<usize> {
    match meta::parse(op, line, buf, line_len, limits) {
        MetaParsed::Incomplete { need } => {
            conn.set_state(ConnState::Nread(need));
            None
        }
        MetaParsed::Cmd { cmd, consumed } => {
            execute(core, conn, idx, cmd);
            Some(consumed)
        }
        MetaParsed::Error {
            reply,
            consumed,
            swallow,
            unlink,
        } => {
            if op == MetaOp::Set && reply == wasmcached_protocol::text::reply::BAD_DATA_CHUNK {
                // memcached counts the set before it checks the data's end.
                bump(&core.stats().cmd_set, 1);
            }
            if let Some(key) = &unlink {
                common::unlink(core, conn, idx, key, "set");
            }
            line_reply(conn, reply);
            conn.set_state(ConnState::Swallow(swallow));
            Some(consumed)
        }
    }
}

fn line_reply(conn: &mut TextConn, s: &str) {
    conn.reply_with(Reply::Ready, |out| {
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

fn realtime(secs: i32) -> u32 {
    clock::realtime(secs as i64)
}

/// Runs one meta command from connection `idx`.
pub fn execute(core: &mut Core, conn: &mut TextConn, idx: u32, cmd: MetaCmd<'_>) {
    let o = &cmd.opts;
    // The flags memcached looks at while answering: all of them, or those
    // before an overlong opaque (it stops there with the error).
    let eff: &[&[u8]] = match cmd
        .flags
        .iter()
        .position(|f| f[0] == b'O' && f.len() > meta::MFLAG_MAX_OPAQUE_LENGTH)
    {
        Some(p) if cmd.opaque_too_long => &cmd.flags[..p],
        _ => &cmd.flags,
    };
    let pos = |c: u8| eff.iter().position(|f| f[0] == c);
    let t_exp = (o.new_ttl && pos(b'T').is_some()).then(|| realtime(o.exptime));
    let n_exp = realtime(o.autoviv);
    // The exptime a created item ends with: 0, then N and T in flag order.
    let created_exp = eff.iter().fold(0, |cur, f| match f[0] {
        b'N' => n_exp,
        b'T' => t_exp.unwrap_or(cur),
        _ => cur,
    });
    let mut reply = MetaReply {
        op: cmd.op,
        flags: cmd.flags.join(&b' '),
        key: cmd.key.to_vec(),
        key_binary: o.key_binary,
        noreply: o.no_reply,
        value: o.value,
        opaque_too_long: cmd.opaque_too_long,
        t_exp,
        n_exp,
        incr: true,
        cas_mode: false,
        vivify: o.vivify,
    };
    let key: &[u8] = &cmd.key;
    let mut req = Request {
        key,
        ..Default::default()
    };
    match cmd.op {
        MetaOp::Noop => return conn.reply_now(b"MN\r\n", Reply::Ready),
        MetaOp::Debug => {
            bump(&core.stats().cmd_meta, 1);
            req.op = Op::Get as u8;
            req.mflags = mflag::NO_BUMP;
        }
        MetaOp::Get => {
            req.op = if t_exp.is_some() { Op::Gat } else { Op::Get } as u8;
            req.mflags |= mflag::META_GET;
            req.exptime = t_exp.unwrap_or(0);
            if !o.value && pos(b's').is_none() {
                req.mflags |= mflag::NO_VALUE;
            }
            // With h, l, N, R or T memcached bumps only after answering, and
            // not at all when the answer fails; a failed answer hands out no
            // win token either.
            if o.no_update || (cmd.opaque_too_long && o.locked) {
                req.mflags |= mflag::NO_BUMP;
            }
            if cmd.opaque_too_long {
                req.mflags |= mflag::NO_TOKEN;
            }
            if o.vivify {
                req.mflags |= mflag::VIVIFY;
                req.aux = created_exp;
            }
            if let Some(r) = pos(b'R') {
                req.mflags |= mflag::RECACHE;
                req.delta = realtime(o.recache) as u64;
                if pos(b'T').is_some_and(|t| t < r) {
                    req.mflags |= mflag::RECACHE_NEW_TTL;
                }
            }
        }
        MetaOp::Set => {
            bump(&core.stats().cmd_set, 1);
            let op = match o.mode {
                b'E' => Op::Add,
                b'A' => Op::Append,
                b'P' => Op::Prepend,
                b'R' => Op::Replace,
                _ => Op::Set,
            };
            // memcached upgrades set and replace with a compare value to cas;
            // add ignores it, append/prepend compare a non-zero one.
            let op = match op {
                Op::Set | Op::Replace if o.has_cas => Op::Cas,
                op => op,
            };
            reply.cas_mode = op == Op::Cas;
            req.op = op as u8;
            req.value = cmd.value;
            req.client_flags = o.client_flags;
            req.exptime = realtime(o.exptime);
            req.cas = if o.has_cas { o.cas } else { 0 };
            // Without CAS support (-C) memcached's new item carries no CAS,
            // so its compare value is "none" and append/prepend ignore C.
            if !core.shared.settings.use_cas && matches!(op, Op::Append | Op::Prepend) {
                req.cas = 0;
            }
            if o.key_binary {
                req.mflags |= mflag::KEY_BINARY;
            }
            if o.set_stale && op == Op::Cas {
                req.mflags |= mflag::INVALIDATE;
            }
        }
        MetaOp::Delete => {
            req.op = Op::Delete as u8;
            if o.has_cas {
                req.cas = o.cas;
                req.mflags |= mflag::HAS_CAS;
            }
            if o.set_stale {
                req.mflags |= mflag::INVALIDATE;
                if o.new_ttl {
                    req.mflags |= mflag::SET_TTL;
                    req.exptime = realtime(o.exptime);
                }
            }
        }
        MetaOp::Arithmetic => {
            reply.incr = !matches!(o.mode, b'D' | b'-');
            req.op = if reply.incr { Op::Incr } else { Op::Decr } as u8;
            req.delta = o.delta;
            req.cas = o.cas;
            if let Some(t) = t_exp {
                req.mflags |= mflag::SET_TTL;
                req.exptime = t;
            }
            if o.vivify {
                req.mflags |= mflag::VIVIFY;
                req.aux = created_exp;
            }
        }
    }
    let mut digits = [0u8; 20];
    if cmd.op == MetaOp::Arithmetic && o.vivify {
        req.value = fmt_u64(o.initial, &mut digits);
    }
    if plugin_abi() < 2 {
        // META_GET and NO_TOKEN are advisory (a v1 store has no stale items
        // or tokens), and v1 compares any non-zero CAS without HAS_CAS;
        // anything else v1 cannot express is refused rather than silently
        // ignored. A v1 answer carries only the exptime after the request,
        // so a `t` that must show the TTL from before a `T` is refused too.
        req.mflags &= !(mflag::META_GET | mflag::NO_TOKEN);
        if req.cas != 0 {
            req.mflags &= !mflag::HAS_CAS;
        }
        let t_before_touch = matches!((pos(b't'), pos(b'T')), (Some(t), Some(touch)) if t < touch);
        if req.mflags & !mflag::V1_MASK != 0 || (t_exp.is_some() && t_before_touch) {
            return line_reply(conn, NEEDS_V2);
        }
    }
    let seq = conn.reserve(Reply::Meta(Box::new(reply)), 1);
    let watching = crate::watch::mask();
    if watching != 0 {
        match cmd.op {
            MetaOp::Set if watching & crate::watch::MUTATIONS != 0 => {
                let op = Op::from_u8(req.op).unwrap_or(Op::Set);
                // memcached logs the T flag's seconds (0 without one).
                let ttl = if pos(b'T').is_some() {
                    o.exptime as i64
                } else {
                    0
                };
                super::common::store_note(
                    core,
                    conn,
                    seq,
                    key,
                    op,
                    ttl,
                    req.client_flags,
                    req.value.len(),
                );
            }
            MetaOp::Get | MetaOp::Debug if watching & crate::watch::FETCHERS != 0 => {
                super::common::get_note(conn, seq, key, false);
            }
            _ => {}
        }
    }
    let t = common::ticket(conn, idx, seq);
    core.push(&req, t);
}

/// The flag tokens of a reply, in request order.
fn tokens(flags: &[u8]) -> impl Iterator<Item = &[u8]> {
    flags.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

fn num(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(fmt_u64(v, &mut buf));
}

/// ` k<key>`, base64 with a trailing ` b` for binary keys (memcached's META_KEY).
fn key_flag(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64_encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// The item's exptime before this request. v2+ plugins report it in
/// `prev_exptime`; a v1 answer carries only the exptime after the request,
/// which is the same one: `execute` never sends a v1 plugin a request that
/// changes the TTL of an item whose earlier TTL is still to be shown.
fn exptime_before(r: &Response<'_>) -> u32 {
    if plugin_abi() >= 2 {
        r.prev_exptime
    } else {
        r.exptime
    }
}

/// ` t<remaining>` or ` t-1` for items that never expire.
fn ttl_flag(out: &mut Vec<u8>, exptime: u32, now: u32) {
    out.extend_from_slice(b" t");
    if exptime == 0 {
        out.extend_from_slice(b"-1");
    } else {
        num(out, exptime.wrapping_sub(now) as u64);
    }
}

/// The `O` and `k` flags every answer without an item echoes.
fn opaque_and_key(out: &mut Vec<u8>, m: &MetaReply) {
    for t in tokens(&m.flags) {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => key_flag(out, &m.key, m.key_binary),
            _ => {}
        }
    }
}

/// Renders one shard answer for a meta reply slot.
pub fn render(
    m: &mut MetaReply,
    d: Delivery<'_>,
    out: &mut Vec<u8>,
    shared: &Shared,
    st: &ThreadStats,
) {
    let r = match d {
        Delivery::Resp(r) => r,
        Delivery::Stats(_) | Delivery::Line(_) => return,
        Delivery::Fault(msg) => {
            out.extend_from_slice(b"SERVER_ERROR ");
            line(out, msg.as_bytes());
            return;
        }
    };
    let status = r.status().unwrap_or(Status::Error);
    let now = clock::now();
    match m.op {
        MetaOp::Get => render_mg(m, &r, status, now, out, st),
        MetaOp::Set => render_ms(m, &r, status, out, st),
        MetaOp::Delete => render_md(m, &r, status, out, st),
        MetaOp::Arithmetic => render_ma(m, &r, status, now, out, st),
        MetaOp::Debug => render_me(&r, status, now, out, shared),
        MetaOp::Noop => {}
    }
}

fn render_mg(
    m: &MetaReply,
    r: &Response<'_>,
    status: Status,
    now: u32,
    out: &mut Vec<u8>,
    st: &ThreadStats,
) {
    let hit = match status {
        Status::Hit => true,
        Status::Miss => false,
        _ => return server_error(out, r),
    };
    if m.opaque_too_long {
        // memcached counts a miss before it writes the answer, a hit after.
        if !hit {
            bump(&st.cmd_get, 1);
            bump(&st.get_misses, 1);
        }
        return line(out, meta::err::OPAQUE_TOO_LONG.as_bytes());
    }
    // memcached 1.6.18 counts a hit with T as a touch, but every miss as a
    // get miss (it only learns of the T while writing a hit).
    if hit && m.t_exp.is_some() {
        bump(&st.cmd_touch, 1);
        bump(&st.touch_hits, 1);
    } else {
        bump(&st.cmd_get, 1);
        bump(if hit { &st.get_hits } else { &st.get_misses }, 1);
    }
    if !hit {
        // Only the miss is quiet in mg.
        if !m.noreply {
            out.extend_from_slice(b"EN");
            opaque_and_key(out, m);
            out.extend_from_slice(b"\r\n");
        }
        return;
    }
    let created = r.iflags & iflag::CREATED != 0;
    if m.value {
        out.extend_from_slice(b"VA ");
        num(out, r.value.len() as u64);
    } else {
        out.extend_from_slice(b"HD");
    }
    let mut exp = if created { 0 } else { exptime_before(r) };
    for t in tokens(&m.flags) {
        match t[0] {
            b'T' => exp = m.t_exp.unwrap_or(exp),
            b'N' if created => exp = m.n_exp,
            b's' => {
                out.extend_from_slice(b" s");
                num(out, r.value.len() as u64);
            }
            b't' => ttl_flag(out, exp, now),
            b'c' => {
                out.extend_from_slice(b" c");
                num(out, r.cas);
            }
            b'f' => {
                out.extend_from_slice(b" f");
                num(out, r.client_flags as u64);
            }
            b'l' => {
                out.extend_from_slice(b" l");
                num(out, now.wrapping_sub(r.last_access) as u64);
            }
            b'h' => out.extend_from_slice(if r.iflags & iflag::FETCHED != 0 {
                b" h1"
            } else {
                b" h0"
            }),
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => key_flag(out, r.key, r.iflags & iflag::KEY_BINARY != 0),
            _ => {}
        }
    }
    if r.iflags & iflag::TOKEN_SENT != 0 {
        out.extend_from_slice(b" Z");
    }
    if r.iflags & iflag::STALE != 0 {
        out.extend_from_slice(b" X");
    }
    if r.iflags & iflag::WON != 0 {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    if m.value {
        out.extend_from_slice(r.value);
        out.extend_from_slice(b"\r\n");
    }
}

fn render_ms(m: &MetaReply, r: &Response<'_>, status: Status, out: &mut Vec<u8>, st: &ThreadStats) {
    if m.cas_mode {
        common::count_cas(st, status);
    }
    let code: &[u8] = match status {
        Status::Stored => {
            if m.noreply {
                return;
            }
            b"HD"
        }
        Status::Exists => b"EX",
        Status::NotFound => b"NF",
        Status::NotStored => b"NS",
        Status::TooLarge => {
            bump(&st.store_too_large, 1);
            return line(out, b"SERVER_ERROR object too large for cache");
        }
        Status::OutOfMemory => {
            bump(&st.store_no_memory, 1);
            return line(out, b"SERVER_ERROR out of memory storing object");
        }
        _ => return server_error(out, r),
    };
    out.extend_from_slice(code);
    for t in tokens(&m.flags) {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => key_flag(out, &m.key, m.key_binary),
            b'c' => {
                // The CAS of the stored item; 0 when nothing was stored.
                out.extend_from_slice(b" c");
                num(out, if status == Status::Stored { r.cas } else { 0 });
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn render_md(m: &MetaReply, r: &Response<'_>, status: Status, out: &mut Vec<u8>, st: &ThreadStats) {
    let code: &[u8] = match status {
        Status::Deleted => {
            // Marking stale (I) is not a delete in the stats.
            if !tokens(&m.flags).any(|t| t[0] == b'I') {
                bump(&st.delete_hits, 1);
            }
            if m.noreply {
                return;
            }
            b"HD"
        }
        Status::NotFound => {
            bump(&st.delete_misses, 1);
            b"NF"
        }
        Status::Exists => {
            bump(&st.delete_misses, 1);
            b"EX"
        }
        _ => return server_error(out, r),
    };
    out.extend_from_slice(code);
    opaque_and_key(out, m);
    out.extend_from_slice(b"\r\n");
}

fn render_ma(
    m: &MetaReply,
    r: &Response<'_>,
    status: Status,
    now: u32,
    out: &mut Vec<u8>,
    st: &ThreadStats,
) {
    let created = r.iflags & iflag::CREATED != 0;
    match status {
        Status::NonNumeric => {
            return line(
                out,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value",
            )
        }
        Status::OutOfMemory if m.vivify => {
            return line(out, b"SERVER_ERROR Out of memory allocating new item")
        }
        Status::OutOfMemory => return line(out, b"SERVER_ERROR out of memory"),
        Status::Number => {
            if !created {
                bump(if m.incr { &st.incr_hits } else { &st.decr_hits }, 1);
            }
        }
        Status::NotFound => {
            if !m.vivify {
                bump(
                    if m.incr {
                        &st.incr_misses
                    } else {
                        &st.decr_misses
                    },
                    1,
                );
            }
        }
        Status::Exists => {}
        _ => return server_error(out, r),
    }
    if m.opaque_too_long {
        return line(out, meta::err::OPAQUE_TOO_LONG.as_bytes());
    }
    match status {
        Status::NotFound => out.extend_from_slice(b"NF"),
        Status::Exists => out.extend_from_slice(b"EX"),
        _ => {
            // Quiet mode hides a successful update, but not a vivified item.
            if m.noreply && !created {
                return;
            }
            if m.value {
                out.extend_from_slice(b"VA ");
                num(out, r.value.len() as u64);
            } else {
                out.extend_from_slice(b"HD");
            }
            let mut exp = if created { 0 } else { exptime_before(r) };
            for t in tokens(&m.flags) {
                match t[0] {
                    b'c' => {
                        out.extend_from_slice(b" c");
                        num(out, r.cas);
                    }
                    b't' => ttl_flag(out, exp, now),
                    b'T' => exp = m.t_exp.unwrap_or(exp),
                    b'N' if created => exp = m.n_exp,
                    b'O' => {
                        out.push(b' ');
                        out.extend_from_slice(t);
                    }
                    b'k' => key_flag(out, &m.key, m.key_binary),
                    _ => {}
                }
            }
            if m.value {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(r.value);
            }
            out.extend_from_slice(b"\r\n");
            return;
        }
    }
    opaque_and_key(out, m);
    out.extend_from_slice(b"\r\n");
}

fn render_me(r: &Response<'_>, status: Status, now: u32, out: &mut Vec<u8>, shared: &Shared) {
    match status {
        Status::Hit => {}
        Status::Miss => return line(out, b"EN"),
        _ => return server_error(out, r),
    }
    out.extend_from_slice(b"ME ");
    if r.iflags & iflag::KEY_BINARY != 0 {
        base64_encode(r.key, out);
    } else {
        out.extend_from_slice(r.key);
    }
    let limits = Limits {
        item_size_max: shared.settings.item_size_max,
        cas_enabled: shared.settings.use_cas,
    };
    let size = limits.item_size(r.key.len(), r.client_flags, r.value.len() + 2);
    // memcached 1.6.18 prints `current_time - exptime` as a signed number.
    let exp = if r.exptime == 0 {
        -1
    } else {
        now.wrapping_sub(r.exptime) as i32 as i64
    };
    let s = format!(
        " exp={exp} la={} cas={} fetch={} cls={} size={size}\r\n",
        now.wrapping_sub(r.last_access),
        r.cas,
        if r.iflags & iflag::FETCHED != 0 {
            "yes"
        } else {
            "no"
        },
        wasmcached_protocol::limits::slab_class(size),
    );
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_ttl_flags() {
        let mut out = Vec::new();
        key_flag(&mut out, b"foo", false);
        key_flag(&mut out, b"foo", true);
        ttl_flag(&mut out, 0, 10);
        ttl_flag(&mut out, 40, 10);
        assert_eq!(out, b" kfoo kZm9v b t-1 t30");
        assert_eq!(
            tokens(b"a  b c").collect::<Vec<_>>(),
            vec![&b"a"[..], b"b", b"c"]
        );
    }
}
