//! What every protocol session shares: the connection type they answer on,
//! the requests that name only a key, the unlink after a refused store, and
//! the `watch` notes that let a store or a fetch be logged with its answer.

use crate::conn::Conn;
use crate::conn::Ticket;
use crate::core::Core;
use crate::counters::{bump, ThreadStats};
use crate::reply::Reply;
use wasmcached_abi::{Op, Request, Status};

/// A client connection, whatever protocol it speaks.
pub type TextConn = Conn<Reply>;

/// A request that names only a key (get, delete, touch, …).
pub fn key_request(op: Op, key: &[u8]) -> Request<'_> {
    Request {
        op: op as u8,
        key,
        ..Default::default()
    }
}

/// Removes `key` without answering: a refused `set` must not leave the old
/// value behind (memcached unlinks it). While someone watches, logs the
/// refusal as memcached does and has the unlink's lookup logged for
/// connection `idx` in its place in the reply order.
pub fn unlink(core: &mut Core, conn: &mut TextConn, idx: u32, key: &[u8], cmd: &str) {
    bump(&core.stats().store_too_large, 1);
    let mut t = Ticket::DISCARD;
    if crate::watch::mask() & (crate::watch::MUTATIONS | crate::watch::FETCHERS) != 0 {
        let seq = conn.next_seq();
        // memcached 1.6.18 passes this line too few arguments: the slab
        // class shows the connection's fd and the fd 0 (text) or whatever
        // the stack holds (meta; 0 here).
        let mut line = b"type=item_store key=".to_vec();
        line.extend_from_slice(key);
        line.extend_from_slice(
            format!(
                " status=too_large cmd={cmd} ttl=0 clsid={} cfd=0 size=0",
                conn.id
            )
            .as_bytes(),
        );
        conn.watch_emit(seq, crate::watch::MUTATIONS, line);
        t = ticket(conn, idx, seq | Ticket::LOG_ONLY);
    }
    core.push(&key_request(Op::Delete, key), t);
}

/// `watch mutations`: remembers a store of `op` (text, meta or binary) so
/// that its `item_store` line is logged with the plugin's answer. `ttl` is
/// the exptime as the client sent it, as memcached logs it.
#[allow(clippy::too_many_arguments)]
#[cold]
pub(crate) fn store_note(
    core: &Core,
    conn: &mut TextConn,
    seq: u64,
    key: &[u8],
    op: Op,
    ttl: i64,
    flags: u32,
    value_len: usize,
) {
    let limits = wasmcached_protocol::text::Limits {
        item_size_max: core.shared.settings.item_size_max,
        cas_enabled: core.shared.settings.use_cas,
    };
    let ntotal = limits.item_size(key.len(), flags, value_len + 2);
    conn.watch_notes.push(crate::watch::Note {
        seq,
        key: key.into(),
        cmd: Some(match op {
            Op::Add => "add",
            Op::Replace => "replace",
            Op::Append => "append",
            Op::Prepend => "prepend",
            Op::Cas => "cas",
            _ => "set",
        }),
        ttl,
        clsid: wasmcached_protocol::limits::slab_class(ntotal),
        size: value_len,
        detail: false,
    });
}

/// `watch fetchers` (for a plugin that cannot report its lookups, ABI
/// v1–v5) or `stats detail` (`detail`: a hit counts): remembers a fetch so
/// that the plugin's answer is logged or counted.
#[cold]
pub(crate) fn get_note(conn: &mut TextConn, seq: u64, key: &[u8], detail: bool) {
    conn.watch_notes.push(crate::watch::Note {
        seq,
        key: key.into(),
        cmd: None,
        ttl: 0,
        clsid: 0,
        size: 0,
        detail,
    });
}

/// Counts a CAS store's outcome as memcached does (`cas_hits`,
/// `cas_badval`, `cas_misses`), whatever protocol sent it.
pub fn count_cas(st: &ThreadStats, s: Status) {
    match s {
        Status::Stored => bump(&st.cas_hits, 1),
        Status::Exists => bump(&st.cas_badval, 1),
        Status::NotFound => bump(&st.cas_misses, 1),
        _ => {}
    }
}

/// Where the answer to slot `seq` of connection `idx` goes.
pub fn ticket(conn: &TextConn, idx: u32, seq: u64) -> Ticket {
    Ticket {
        conn: idx,
        gen: conn.gen,
        seq,
    }
}

/// Writes `s` as one reply line.
pub fn line(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// `SERVER_ERROR <the plugin's message>`, on one line whatever the plugin
/// wrote.
pub fn server_error(out: &mut Vec<u8>, r: &wasmcached_abi::Response<'_>) {
    out.extend_from_slice(b"SERVER_ERROR ");
    if r.value.is_empty() {
        line(out, b"storage plugin error");
    } else {
        let msg: Vec<u8> = r
            .value
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        line(out, &msg);
    }
}

/// Sends `req` to every shard, for one slot of connection `idx` that
/// completes when all have answered (flush_all, cache_memlimit).
pub fn fan_out(core: &mut Core, conn: &mut TextConn, idx: u32, reply: Reply, req: &Request<'_>) {
    let shards = core.shared.router.shards();
    let seq = conn.reserve(reply, shards);
    let t = ticket(conn, idx, seq);
    for shard in 0..shards {
        core.push_to(shard, req, t);
    }
}

/// Asks every shard for its stats group `ask`, for one slot of connection
/// `idx` whose `reply` sums them.
pub fn fan_out_stats(core: &mut Core, conn: &mut TextConn, idx: u32, reply: Reply, ask: i32) {
    let shards = core.shared.router.shards();
    let seq = conn.reserve(reply, shards);
    let t = ticket(conn, idx, seq);
    for shard in 0..shards {
        core.stats_to(shard, ask, t);
    }
}
