//! zig-s3fifo: a wasmcached storage plugin in Zig whose eviction is
//! S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction",
//! SOSP '23).
//!
//! Three FIFO queues:
//!  - small (S), about 10 % of the memory budget: every new key starts here;
//!  - main (M), the rest: items that were hit while in S, and keys the ghost
//!    remembers;
//!  - ghost (G): hashes of keys recently evicted from S (no values), as many
//!    as M holds items.
//! Each item has a 2-bit frequency counter (0..3): a hit adds one, nothing
//! moves. To make room: when S is over its share (or M is empty), its
//! oldest item goes to M's head if it was hit (freq > 0, the count goes
//! along), else it is evicted and its hash goes to G; otherwise M's oldest
//! item goes back to M's head with freq - 1 if its count is not 0, else it
//! is evicted. A new key whose hash is in G goes straight to M. A scan of
//! keys requested once passes through S and never reaches M, where the
//! keys that were read again are.
//!
//! The rest is c-sieve's store (examples/c-sieve/c_sieve.c) in Zig, on the
//! C SDK (guest-sdk/c): a chained hash table, expiry, CAS, flush_all with
//! memcached's oldest_live rule, the shard's memory budget (evict before
//! storing; -M answers OutOfMemory), dump/load for reloads and warm
//! restarts, and a listing for `lru_crawler metadump`.
//!
//! All state is in linear memory (Zig globals are data, not wasm globals),
//! so a memory image restores it.
const std = @import("std");
const c = @cImport(@cInclude("wasmcached.h"));

/// memcached's item header (48) + CAS (8) + "\r\n" + NUL, for too_large.
const MC_OVERHEAD: u64 = 59;
/// The largest value of the 2-bit frequency counter.
const FREQ_MAX: u8 = 3;
/// S's share of the memory budget, in tenths.
const SMALL_TENTHS: u64 = 1;
/// In an item record's `refs`: set for an item of M (freq in the low bits).
const REFS_MAIN: u8 = 4;

const Item = extern struct {
    cas: u64,
    hnext: ?*Item, // hash chain
    prev: ?*Item, // toward the head of its queue (newer)
    next: ?*Item, // toward the tail (older)
    exptime: u32,
    atime: u32,
    flags: u32,
    vlen: u32,
    klen: u8,
    fetched: u8,
    binary: u8, // v2 KEY_BINARY: the key came base64-encoded
    freq: u8, // S3-FIFO's counter, 0..FREQ_MAX
    in_main: u8, // 1: in M, 0: in S
    // key, then value, follow

    fn data(it: *Item) [*]u8 {
        return @as([*]u8, @ptrCast(it)) + @sizeOf(Item);
    }
    fn key(it: *Item) []u8 {
        return it.data()[0..it.klen];
    }
    fn val(it: *Item) []u8 {
        return it.data()[it.klen..][0..it.vlen];
    }
    fn hash(it: *Item) u64 {
        return c.wmc_hash(it.data(), it.klen);
    }
    fn iflags(it: *Item) u8 {
        return (if (it.fetched != 0) @as(u8, c.WMC_IFLAG_FETCHED) else 0) |
            (if (it.binary != 0) @as(u8, c.WMC_IFLAG_KEY_BINARY) else 0);
    }
};

/// One FIFO queue, newest at the head, with what it holds.
const Fifo = struct {
    head: ?*Item = null,
    tail: ?*Item = null,
    items: u64 = 0,
    bytes: u64 = 0, // what its items are charged (cost)
    gauge: *c.wmc_gauge,
};

/// One ghost slot: a 32-bit tag of a key's hash (its low bits pick the
/// home slot) and the ghost's insertion count when it was remembered (0:
/// empty). 8 bytes a key: the ghost's table is charged to the budget like
/// the items, so every byte here is a byte less for values. Two keys with
/// the same tag are one to the ghost (about one lookup in 500 million
/// finds a wrong key's tag; that key then goes to M, which is harmless).
const Ghost = extern struct { tag: u32, seq: u32 };
/// Slots a ghost lookup or insert probes from the key's home slot.
const GHOST_PROBE: u32 = 8;

var table: [*]?*Item = undefined;
var nbuckets: u32 = 0; // power of two
var m_small_items: c.wmc_gauge = .{ .value = 0 };
var m_main_items: c.wmc_gauge = .{ .value = 0 };
var small: Fifo = .{ .gauge = &m_small_items };
var main: Fifo = .{ .gauge = &m_main_items };

/// The ghost: an open-addressed table of hashes, each stamped with the
/// ghost's insertion count. An entry is in the ghost while at most
/// ghostCap() insertions came after it: a FIFO without a queue to keep.
/// A full probe window forgets its oldest entry early, the one a FIFO would
/// forget next anyway.
var ghost: [*]Ghost = undefined;
var ghost_slots: u32 = 0; // power of two, or 0 before the first eviction
var ghost_seq: u32 = 1; // the stamp of the next insertion (never 0)

var used: u64 = 0;
var budget: u64 = 0;
var cas_seq: u64 = 0;
var shard_id: u32 = 0;
var shard_count: u32 = 1;
var max_item_size: u32 = 0;
var cas_enabled = false;
var no_evict = false;
var oldest_live: u32 = 0;
var oldest_cas: u64 = 0;
var crawl_pos: u32 = 0;

var st: struct {
    curr_items: u64 = 0,
    total_items: u64 = 0,
    bytes: u64 = 0,
    reclaimed: u64 = 0,
    get_expired: u64 = 0,
    get_flushed: u64 = 0,
    outofmemory: u64 = 0,
} = .{};

// ------------------------------------------------------------ metrics (ABI v8)

// The stats read these too, so each figure has one home.
var m_evictions: c.wmc_counter = .{ .value = 0 };
var m_promotions: c.wmc_counter = .{ .value = 0 };
var m_reinserts: c.wmc_counter = .{ .value = 0 };
var m_ghost_hits: c.wmc_counter = .{ .value = 0 };

// ------------------------------------------------------------ the queues

fn cost(klen: u64, vlen: u64) u64 {
    return c.wmc_alloc_size(@intCast(@sizeOf(Item) + klen + vlen));
}

fn itemCost(it: *Item) u64 {
    return cost(it.klen, it.vlen);
}

fn queueOf(it: *Item) *Fifo {
    return if (it.in_main != 0) &main else &small;
}

fn counted(q: *Fifo, it: *Item, add: bool) void {
    if (add) {
        q.items += 1;
        q.bytes += itemCost(it);
    } else {
        q.items -= 1;
        q.bytes -= itemCost(it);
    }
    q.gauge.value = @intCast(q.items);
}

fn qUnlink(it: *Item) void {
    const q = queueOf(it);
    if (it.prev) |p| p.next = it.next else q.head = it.next;
    if (it.next) |n| n.prev = it.prev else q.tail = it.prev;
    it.prev = null;
    it.next = null;
    counted(q, it, false);
}

/// Puts `it` at the head of S or M (it.in_main says which).
fn qPush(it: *Item) void {
    const q = queueOf(it);
    it.prev = null;
    it.next = q.head;
    if (q.head) |h| h.prev = it;
    q.head = it;
    if (q.tail == null) q.tail = it;
    counted(q, it, true);
}

/// Puts `it` right on the head side of `old`, which is about to go: an
/// overwrite keeps the item's queue and place.
fn qInsertBefore(old: *Item, it: *Item) void {
    it.in_main = old.in_main;
    const q = queueOf(old);
    it.next = old;
    it.prev = old.prev;
    if (old.prev) |p| p.next = it else q.head = it;
    old.prev = it;
    counted(q, it, true);
}

// ------------------------------------------------------------ the ghost

/// How many evicted keys the ghost remembers: as many as M holds items,
/// counted as 90 % of the items when M is not full yet (what M holds at its
/// share), so that the first evictions are remembered too.
fn ghostCap() u64 {
    const share = (small.items + main.items) * (10 - SMALL_TENTHS) / 10;
    return @max(main.items, share);
}

fn ghostLive(e: *const Ghost, cap: u64) bool {
    return e.seq != 0 and ghost_seq -% e.seq <= cap;
}

fn ghostBytes(slots: u32) u64 {
    return if (slots == 0) 0 else c.wmc_alloc_size(@as(usize, slots) * @sizeOf(Ghost));
}

fn ghostTag(h: u64) u32 {
    return @truncate(h >> 32);
}

/// Puts (tag, seq) into the `slots` slots at `g`, from the tag's home slot
/// on: in the slot of the same tag, else a free or forgotten one, else the
/// oldest of the probe window.
fn ghostPut(g: [*]Ghost, slots: u32, tag: u32, seq: u32, cap: u64) void {
    var pick: *Ghost = &g[tag & (slots - 1)];
    var i: u32 = 0;
    while (i < GHOST_PROBE) : (i += 1) {
        const e = &g[(tag +% i) & (slots - 1)];
        if (e.tag == tag and e.seq != 0) {
            e.seq = seq;
            return;
        }
        const older = ghost_seq -% e.seq > ghost_seq -% pick.seq;
        if (ghostLive(pick, cap) and (!ghostLive(e, cap) or older)) pick = e;
    }
    pick.* = .{ .tag = tag, .seq = seq };
}

/// Grows the ghost's table to at least its capacity (never shrinks it). A
/// failed allocation keeps the smaller table: the ghost then forgets sooner.
fn ghostReserve() void {
    const cap = ghostCap();
    if (@as(u64, ghost_slots) >= cap) return;
    var n: u32 = if (ghost_slots == 0) 1024 else ghost_slots;
    while (@as(u64, n) < cap and n < (1 << 26)) n *= 2;
    if (n == ghost_slots) return;
    const p = c.wmc_calloc(@as(usize, n) * @sizeOf(Ghost)) orelse return;
    const g: [*]Ghost = @ptrCast(@alignCast(p));
    var i: u32 = 0;
    while (i < ghost_slots) : (i += 1) {
        const e = &ghost[i];
        if (ghostLive(e, cap)) ghostPut(g, n, e.tag, e.seq, cap);
    }
    if (ghost_slots != 0) c.wmc_free(ghost);
    used = used - ghostBytes(ghost_slots) + ghostBytes(n);
    ghost = g;
    ghost_slots = n;
}

/// Remembers a key evicted from S.
fn ghostRemember(h: u64) void {
    ghostReserve();
    if (ghost_slots == 0) return;
    ghostPut(ghost, ghost_slots, ghostTag(h), ghost_seq, ghostCap());
    ghost_seq +%= 1;
    if (ghost_seq == 0) ghost_seq = 1;
}

/// Whether the ghost remembers `h`; forgets it if so.
fn ghostTake(h: u64) bool {
    if (ghost_slots == 0) return false;
    const cap = ghostCap();
    const tag = ghostTag(h);
    var i: u32 = 0;
    while (i < GHOST_PROBE) : (i += 1) {
        const e = &ghost[(tag +% i) & (ghost_slots - 1)];
        if (e.tag == tag and ghostLive(e, cap)) {
            e.seq = 0;
            return true;
        }
    }
    return false;
}

// ------------------------------------------------------------ items

fn nextCas() u64 {
    if (!cas_enabled) return 0;
    const v = cas_seq *% shard_count +% shard_id +% 1;
    cas_seq +%= 1;
    return v;
}

fn slotOf(key: [*]const u8, klen: u32) *?*Item {
    return &table[@as(u32, @truncate(c.wmc_hash(key, klen))) & (nbuckets - 1)];
}

fn unlinkItem(it: *Item) void {
    var pp = slotOf(it.data(), it.klen);
    while (pp.* != it) pp = &pp.*.?.hnext;
    pp.* = it.hnext;
    qUnlink(it);
    used -= itemCost(it);
    st.bytes -= @as(u64, it.klen) + it.vlen;
    st.curr_items -= 1;
    c.wmc_free(it);
}

fn growTable() void {
    const n = nbuckets * 2;
    const p = c.wmc_calloc(@as(usize, n) * @sizeOf(?*Item)) orelse return; // keep the longer chains
    const t: [*]?*Item = @ptrCast(@alignCast(p));
    var b: u32 = 0;
    while (b < nbuckets) : (b += 1) {
        var cur = table[b];
        while (cur) |it| {
            cur = it.hnext;
            const s = &t[@as(u32, @truncate(it.hash())) & (n - 1)];
            it.hnext = s.*;
            s.* = it;
        }
    }
    c.wmc_free(@ptrCast(table));
    used -= c.wmc_alloc_size(@as(usize, nbuckets) * @sizeOf(?*Item));
    used += c.wmc_alloc_size(@as(usize, n) * @sizeOf(?*Item));
    table = t;
    nbuckets = n;
}

/// Links `it` into the table and its queue: in the place of `old` when it
/// replaces one (then unlinks `old`), else at the head of S or M.
fn linkItem(it: *Item, old: ?*Item) void {
    const s = slotOf(it.data(), it.klen);
    it.hnext = s.*;
    s.* = it;
    used += itemCost(it);
    st.bytes += @as(u64, it.klen) + it.vlen;
    st.curr_items += 1;
    st.total_items += 1;
    if (old) |o| {
        qInsertBefore(o, it);
        unlinkItem(o);
    } else {
        qPush(it);
    }
    if (st.curr_items > @as(u64, nbuckets) * 3 / 2) growTable();
}

/// memcached's item_is_flushed
fn isFlushed(it: *const Item, now: u32) bool {
    if (oldest_live == 0 or oldest_live > now) return false;
    return it.atime <= oldest_live or (oldest_cas != 0 and it.cas != 0 and it.cas < oldest_cas);
}

fn isDead(it: *const Item, now: u32) bool {
    return (it.exptime != 0 and it.exptime <= now) or isFlushed(it, now);
}

/// A live item, dropping an expired or flushed one on the way.
fn lookup(key: [*]const u8, klen: u32, now: u32) ?*Item {
    var cur = slotOf(key, klen).*;
    while (cur) |it| : (cur = it.hnext) {
        if (it.klen == klen and std.mem.eql(u8, it.key(), key[0..klen])) break;
    }
    const it = cur orelse return null;
    if (isFlushed(it, now)) {
        st.get_flushed += 1;
        unlinkItem(it);
        return null;
    }
    if (it.exptime != 0 and it.exptime <= now) {
        st.get_expired += 1;
        unlinkItem(it);
        return null;
    }
    return it;
}

fn bump(it: *Item) void {
    if (it.freq < FREQ_MAX) it.freq += 1;
}

/// An access the policy sees (a hit, touch, an add that found the item):
/// memcached bumps the item; S3-FIFO only counts it (nothing moves).
fn accessed(it: *Item, now: u32) void {
    it.fetched = 1;
    it.atime = now;
    bump(it);
}

/// v6: reports the lookup of a request (only while a watcher asks).
fn reportLookup(key: [*]const u8, klen: u32, found: ?*Item) void {
    if (found) |it| {
        c.wmc_log_lookup(key, klen, 1, it.vlen, it.flags);
    } else {
        c.wmc_log_lookup(key, klen, 0, 0, 0);
    }
}

/// Evicts a live item (reported to `watch evictions`).
fn evict(victim: *Item) void {
    c.wmc_counter_inc(&m_evictions);
    c.wmc_log_eviction(
        victim.data(),
        victim.klen,
        victim.fetched,
        victim.exptime,
        victim.atime,
        victim.flags,
        victim.vlen,
    );
    unlinkItem(victim);
}

/// The oldest item of `q` other than `pin`.
fn oldest(q: *Fifo, pin: ?*Item) ?*Item {
    const t = q.tail orelse return null;
    return if (t == pin) t.prev else t;
}

/// S's share of the budget, in bytes of item cost.
fn smallTarget() u64 {
    return budget * SMALL_TENTHS / 10;
}

/// S3-FIFO's victim: moves items from S to M and around M until an item
/// of S that was not hit, an item of M whose counter ran down, or a dead
/// item is at a tail (never `pin`, the item a store is replacing). NULL
/// when there is nothing but `pin`.
///
/// Bounded: an item moves from S to M at most once and goes round M at
/// most FREQ_MAX times before its counter is 0 (nothing hits it during the
/// walk); the bound also ends the walk when `pin` is all there is.
fn s3fifoVictim(pin: ?*Item, now: u32) ?*Item {
    var left: u64 = (FREQ_MAX + 2) * (small.items + main.items) + 2;
    while (left > 0) : (left -= 1) {
        const s = oldest(&small, pin);
        const m = oldest(&main, pin);
        if (s) |it| {
            if (small.bytes > smallTarget() or m == null) {
                if (isDead(it, now)) return it;
                if (it.freq > 0) {
                    // hit while in S: to M's head, with its count
                    qUnlink(it);
                    it.in_main = 1;
                    qPush(it);
                    c.wmc_counter_inc(&m_promotions);
                    continue;
                }
                ghostRemember(it.hash());
                return it;
            }
        }
        const it = m orelse return null;
        if (isDead(it, now)) return it;
        if (it.freq > 0) {
            // hit since it last came round: once more, one count less
            qUnlink(it);
            it.freq -= 1;
            qPush(it);
            c.wmc_counter_inc(&m_reinserts);
            continue;
        }
        return it;
    }
    return null;
}

/// A dead item at the tail of S or M (never `pin`), for -M.
fn deadTail(pin: ?*Item, now: u32) ?*Item {
    if (oldest(&small, pin)) |it| if (isDead(it, now)) return it;
    if (oldest(&main, pin)) |it| if (isDead(it, now)) return it;
    return null;
}

/// Removes one item to make room: S3-FIFO's victim, or with -M only a dead
/// item at a tail (-M never evicts, so nothing moves either). Returns
/// whether one went.
fn freeOne(pin: ?*Item, now: u32) bool {
    const victim = (if (no_evict) deadTail(pin, now) else s3fifoVictim(pin, now)) orelse return false;
    if (isDead(victim, now)) {
        st.reclaimed += 1;
        unlinkItem(victim);
    } else {
        evict(victim);
    }
    return true;
}

/// Frees items (never `pin`) until `need` more bytes fit the budget.
fn makeRoom(need: u64, pin: ?*Item, now: u32) bool {
    while (used + need > budget) {
        if (!freeOne(pin, now)) return false;
    }
    return true;
}

/// Memory for an item of `size` bytes, freeing items (never `pin`) while
/// the heap (capped by the host) is full.
fn allocItem(size: u64, pin: ?*Item, now: u32) ?*Item {
    while (true) {
        if (c.wmc_malloc(@intCast(size))) |p| return @ptrCast(@alignCast(p));
        if (!freeOne(pin, now)) return null;
    }
}

/// Builds and links a new item replacing `old` (may be NULL). Value is
/// a then b (for append/prepend). NULL when memory ran out.
fn put(
    key: [*]const u8,
    klen: u32,
    old: ?*Item,
    a: []const u8,
    b: []const u8,
    flags: u32,
    exptime: u32,
    now: u32,
) ?*Item {
    const vlen: u64 = a.len + b.len;
    const need = cost(klen, vlen);
    const freed = if (old) |o| itemCost(o) else 0;
    if (need > freed and !makeRoom(need - freed, old, now)) return null;
    const it = allocItem(@sizeOf(Item) + klen + vlen, old, now) orelse return null;
    it.klen = @intCast(klen);
    it.vlen = @intCast(vlen);
    @memcpy(it.data()[0..klen], key[0..klen]);
    @memcpy(it.val()[0..a.len], a);
    @memcpy(it.val()[a.len..], b);
    it.flags = flags;
    it.exptime = exptime;
    it.atime = now;
    it.fetched = 0;
    it.binary = 0;
    it.cas = nextCas();
    if (old) |o| {
        // A store to a present key is a request for it: the new value
        // keeps the old one's queue and place, with one more count.
        it.freq = o.freq;
        bump(it);
        it.in_main = o.in_main;
    } else if (ghostTake(c.wmc_hash(key, klen))) {
        // evicted from S not long ago and back already: straight to M
        c.wmc_counter_inc(&m_ghost_hits);
        it.freq = 0;
        it.in_main = 1;
    } else {
        it.freq = 0;
        it.in_main = 0;
    }
    linkItem(it, old);
    return it;
}

fn tooLarge(klen: u32, vlen: u64) bool {
    if (MC_OVERHEAD + klen + vlen > max_item_size) return true;
    return cost(klen, vlen) > budget;
}

/// A request's key (1..250 bytes for the requests that have one).
fn keyOf(r: *const c.wmc_request) [*]const u8 {
    return r.key;
}

fn bytes(p: [*c]const u8, n: u32) []const u8 {
    if (n == 0) return &[_]u8{};
    return p[0..n];
}

// ------------------------------------------------------------ callbacks

fn s_init(cfg_: [*c]const c.wmc_config) callconv(.c) c_int {
    const cfg: *const c.wmc_config = cfg_;
    if (cfg.config_len != 0) {
        // a typo'd setting must not pass silently
        c.wmc_logs(c.WMC_LOG_ERROR, "zig-s3fifo: takes no --plugin-config");
        return -1;
    }
    shard_id = cfg.shard_id;
    shard_count = if (cfg.shard_count != 0) cfg.shard_count else 1;
    budget = cfg.memory_budget;
    max_item_size = cfg.max_item_size;
    cas_enabled = cfg.cas_enabled != 0;
    no_evict = cfg.no_evict != 0;
    // a restarted shard must not reuse CAS values its predecessor gave out
    cas_seq = @as(u64, cfg.now) << 20;
    _ = c.wmc_register_counter(
        &m_evictions,
        "s3fifo_evictions_total",
        "Live items evicted to make room (from the small or the main queue)",
    );
    _ = c.wmc_register_counter(
        &m_promotions,
        "s3fifo_small_to_main_total",
        "Items hit while in the small queue, moved to the main queue when they reached its tail",
    );
    _ = c.wmc_register_counter(
        &m_reinserts,
        "s3fifo_main_reinsertions_total",
        "Items of the main queue put back at its head, one count less, when they reached its tail",
    );
    _ = c.wmc_register_counter(
        &m_ghost_hits,
        "s3fifo_ghost_hits_total",
        "New keys the ghost remembered (evicted from the small queue not long ago), " ++
            "stored straight into the main queue",
    );
    _ = c.wmc_register_gauge(&m_small_items, "s3fifo_small_items", "Items in the small queue");
    _ = c.wmc_register_gauge(&m_main_items, "s3fifo_main_items", "Items in the main queue");
    nbuckets = 1024;
    // v5 hint: memcached's -o hashpower, the table's initial size
    if (cfg.hints.hashpower >= 10 and cfg.hints.hashpower <= 24)
        nbuckets = @as(u32, 1) << @intCast(cfg.hints.hashpower);
    const p = c.wmc_calloc(@as(usize, nbuckets) * @sizeOf(?*Item)) orelse return -1;
    table = @ptrCast(@alignCast(p));
    used = c.wmc_alloc_size(@as(usize, nbuckets) * @sizeOf(?*Item));
    return 0;
}

fn s_get(req: [*c]const c.wmc_request, out: ?*c.wmc_out) callconv(.c) void {
    const r: *const c.wmc_request = req;
    const now = c.wmc_now();
    const key = keyOf(r);
    const found = lookup(key, r.key_len, now);
    reportLookup(key, r.key_len, found);
    const it = found orelse return c.wmc_respond_status(out, c.WMC_MISS);
    const last = it.atime;
    const prev_exptime = it.exptime;
    const iflags = it.iflags();
    if (r.op == c.WMC_OP_GAT) it.exptime = r.exptime;
    if (r.mflags & c.WMC_MFLAG_NO_BUMP == 0) accessed(it, now);
    const no_value = r.mflags & c.WMC_MFLAG_NO_VALUE != 0;
    var hit = std.mem.zeroes(c.wmc_response);
    hit.status = c.WMC_HIT;
    hit.iflags = iflags;
    hit.key = it.data();
    hit.key_len = it.klen;
    hit.value = it.data() + it.klen;
    hit.value_len = if (no_value) 0 else it.vlen;
    hit.client_flags = it.flags;
    hit.exptime = it.exptime;
    hit.cas = it.cas;
    hit.last_access = last;
    hit.prev_exptime = prev_exptime; // v2: what `mg t` shows for a gat
    c.wmc_respond(out, &hit);
}

fn s_touch(req: [*c]const c.wmc_request, out: ?*c.wmc_out) callconv(.c) void {
    const r: *const c.wmc_request = req;
    const now = c.wmc_now();
    const key = keyOf(r);
    const found = lookup(key, r.key_len, now);
    reportLookup(key, r.key_len, found);
    const it = found orelse return c.wmc_respond_status(out, c.WMC_NOT_FOUND);
    it.exptime = r.exptime;
    if (r.mflags & c.WMC_MFLAG_NO_BUMP == 0) accessed(it, now);
    c.wmc_respond_touched(out, it.cas, it.exptime);
}

fn s_store(req: [*c]const c.wmc_request, out: ?*c.wmc_out) callconv(.c) void {
    const r: *const c.wmc_request = req;
    const now = c.wmc_now();
    const key = keyOf(r);
    var mode: c_int = r.op;
    if ((mode == c.WMC_OP_SET or mode == c.WMC_OP_REPLACE) and r.cas != 0) mode = c.WMC_OP_CAS;
    const old = lookup(key, r.key_len, now);
    if (tooLarge(r.key_len, r.value_len)) {
        // memcached drops the old item when a set fails
        if (r.op == c.WMC_OP_SET) if (old) |o| unlinkItem(o);
        return c.wmc_respond_status(out, c.WMC_TOO_LARGE);
    }
    reportLookup(key, r.key_len, old);
    var a = bytes(r.value, r.value_len);
    var b: []const u8 = &[_]u8{};
    var flags = r.client_flags;
    var exptime = r.exptime;
    switch (mode) {
        c.WMC_OP_ADD => if (old) |o| {
            // memcached promotes the existing item; S3-FIFO counts it
            o.atime = now;
            bump(o);
            return c.wmc_respond_status(out, c.WMC_NOT_STORED);
        },
        c.WMC_OP_REPLACE => if (old == null) return c.wmc_respond_status(out, c.WMC_NOT_STORED),
        c.WMC_OP_CAS => {
            const o = old orelse return c.wmc_respond_status(out, c.WMC_NOT_FOUND);
            if (r.cas == 0 or r.cas != o.cas) return c.wmc_respond_status(out, c.WMC_EXISTS);
        },
        c.WMC_OP_APPEND, c.WMC_OP_PREPEND => {
            const o = old orelse return c.wmc_respond_status(out, c.WMC_NOT_STORED);
            if (r.cas != 0 and r.cas != o.cas) return c.wmc_respond_status(out, c.WMC_EXISTS);
            if (tooLarge(r.key_len, @as(u64, o.vlen) + r.value_len))
                return c.wmc_respond_status(out, c.WMC_NOT_STORED);
            flags = o.flags;
            exptime = o.exptime;
            if (mode == c.WMC_OP_APPEND) {
                b = a;
                a = o.val();
            } else {
                b = o.val();
            }
        },
        else => {},
    }
    const it = put(key, r.key_len, old, a, b, flags, exptime, now) orelse {
        st.outofmemory += 1;
        if (r.op == c.WMC_OP_SET) if (lookup(key, r.key_len, now)) |o| unlinkItem(o);
        return c.wmc_respond_status(out, c.WMC_OUT_OF_MEMORY);
    };
    if (mode == c.WMC_OP_APPEND or mode == c.WMC_OP_PREPEND) {
        // the new size, for `watch mutations` (memcached logs the result)
        c.wmc_log_stored(it.data(), it.klen, it.vlen, it.flags, it.exptime);
    } else {
        // v2: a key the client sent base64-encoded (meta `b`)
        it.binary = @intFromBool(r.mflags & c.WMC_MFLAG_KEY_BINARY != 0);
    }
    c.wmc_respond_stored(out, it.cas, it.exptime);
}

fn s_delete(req: [*c]const c.wmc_request, out: ?*c.wmc_out) callconv(.c) void {
    const r: *const c.wmc_request = req;
    const key = keyOf(r);
    const found = lookup(key, r.key_len, c.wmc_now());
    reportLookup(key, r.key_len, found);
    const it = found orelse return c.wmc_respond_status(out, c.WMC_NOT_FOUND);
    // v2 HAS_CAS (meta `md C0`): compare even a CAS of 0
    if ((r.cas != 0 or r.mflags & c.WMC_MFLAG_HAS_CAS != 0) and r.cas != it.cas)
        return c.wmc_respond_status(out, c.WMC_EXISTS);
    var d = std.mem.zeroes(c.wmc_response);
    d.status = c.WMC_DELETED;
    d.prev_exptime = it.exptime;
    unlinkItem(it);
    c.wmc_respond(out, &d);
}

/// Number, with the item's exptime before the request (v2 prev_exptime).
fn respondNumber(out: ?*c.wmc_out, v: u64, it: *Item, prev_exptime: u32) void {
    var digits: [20]u8 = undefined;
    var n = std.mem.zeroes(c.wmc_response);
    n.status = c.WMC_NUMBER;
    n.value = &digits;
    n.value_len = c.wmc_fmt_u64(v, &digits);
    n.cas = it.cas;
    n.exptime = it.exptime;
    n.prev_exptime = prev_exptime;
    c.wmc_respond(out, &n);
}

fn s_arith(req: [*c]const c.wmc_request, out: ?*c.wmc_out) callconv(.c) void {
    const r: *const c.wmc_request = req;
    const now = c.wmc_now();
    const key = keyOf(r);
    const found = lookup(key, r.key_len, now);
    reportLookup(key, r.key_len, found);
    const it = found orelse return c.wmc_respond_status(out, c.WMC_NOT_FOUND);
    // memcached compares the CAS before it looks at the number
    if (r.cas != 0 and r.cas != it.cas) return c.wmc_respond_status(out, c.WMC_EXISTS);
    var v: u64 = 0;
    if (it.vlen == 0 or c.wmc_parse_u64(it.val().ptr, it.vlen, &v) == 0)
        return c.wmc_respond_status(out, c.WMC_NON_NUMERIC);
    v = if (r.op == c.WMC_OP_INCR) v +% r.delta else if (v < r.delta) 0 else v - r.delta;
    var digits: [20]u8 = undefined;
    const n = c.wmc_fmt_u64(v, &digits);
    const prev_exptime = it.exptime;
    if (n <= it.vlen) {
        // in place, padded with spaces, as memcached does
        const value = it.val();
        @memcpy(value[0..n], digits[0..n]);
        @memset(value[n..], ' ');
        it.cas = nextCas();
        // memcached's do_item_update: an access, so S3-FIFO counts it too
        it.atime = now;
        bump(it);
        // v2 SET_TTL (meta `ma T`)
        if (r.mflags & c.WMC_MFLAG_SET_TTL != 0) it.exptime = r.exptime;
        return respondNumber(out, v, it, prev_exptime);
    }
    const nit = put(it.data(), it.klen, it, digits[0..n], &[_]u8{}, it.flags, it.exptime, now) orelse {
        st.outofmemory += 1;
        return c.wmc_respond_status(out, c.WMC_OUT_OF_MEMORY);
    };
    // memcached 1.6.18: the new, longer item keeps the old exptime even
    // with SET_TTL, and its key is no longer marked binary
    respondNumber(out, v, nit, prev_exptime);
}

fn s_flush_all(req: [*c]const c.wmc_request, out: ?*c.wmc_out) callconv(.c) void {
    const r: *const c.wmc_request = req;
    const now = c.wmc_now();
    const when = if (r.exptime != 0) r.exptime else now;
    if (cas_enabled) {
        oldest_live = when -% 1;
        if (oldest_live <= now) oldest_cas = nextCas();
    } else {
        oldest_live = when;
    }
    c.wmc_respond_status(out, c.WMC_OK);
}

fn s_mem_limit(req: [*c]const c.wmc_request, out: ?*c.wmc_out) callconv(.c) void {
    const r: *const c.wmc_request = req;
    budget = r.delta;
    if (!no_evict) _ = makeRoom(0, null, c.wmc_now());
    c.wmc_respond_status(out, c.WMC_OK);
}

/// Once a second: reclaim dead items in a slice of the table.
fn s_tick(now: u32) callconv(.c) void {
    var n: u32 = 0;
    while (n < 256 and n < nbuckets) : (n += 1) {
        crawl_pos = (crawl_pos + 1) & (nbuckets - 1);
        var cur = table[crawl_pos];
        while (cur) |it| {
            cur = it.hnext;
            if (isDead(it, now)) {
                st.reclaimed += 1;
                unlinkItem(it);
            }
        }
    }
}

fn s_stats(group: c_int, s: ?*c.wmc_stats_out) callconv(.c) void {
    if (group != c.WMC_STATS_GENERAL) return;
    c.wmc_stat_u64(s, "curr_items", st.curr_items);
    c.wmc_stat_u64(s, "total_items", st.total_items);
    c.wmc_stat_u64(s, "bytes", st.bytes);
    c.wmc_stat_u64(s, "evictions", m_evictions.value);
    c.wmc_stat_u64(s, "reclaimed", st.reclaimed);
    c.wmc_stat_u64(s, "get_expired", st.get_expired);
    c.wmc_stat_u64(s, "get_flushed", st.get_flushed);
    c.wmc_stat_u64(s, "s3fifo_small_items", small.items);
    c.wmc_stat_u64(s, "s3fifo_main_items", main.items);
    c.wmc_stat_u64(s, "s3fifo_small_bytes", small.bytes);
    c.wmc_stat_u64(s, "s3fifo_small_target", smallTarget());
    c.wmc_stat_u64(s, "s3fifo_ghost_capacity", ghostCap());
    c.wmc_stat_u64(s, "s3fifo_small_to_main", m_promotions.value);
    c.wmc_stat_u64(s, "s3fifo_main_reinsertions", m_reinserts.value);
    c.wmc_stat_u64(s, "s3fifo_ghost_hits", m_ghost_hits.value);
    c.wmc_stat_u64(s, "s3fifo_outofmemory", st.outofmemory);
    c.wmc_stat_u64(s, "s3fifo_heap_bytes", c.wmc_heap_bytes());
}

// ------------------------------------------------------------ dump, load, listing

fn describe(it: *Item, out: *c.wmc_item) void {
    out.key = it.data();
    out.key_len = it.klen;
    out.value = it.data() + it.klen;
    out.value_len = it.vlen;
    out.client_flags = it.flags;
    out.exptime = it.exptime;
    out.cas = it.cas;
    out.last_access = it.atime;
    out.iflags = it.iflags();
    // v7: the counter, plus REFS_MAIN for an item of M
    out.refs = it.freq + (if (it.in_main != 0) REFS_MAIN else 0);
}

/// Where a dump starts: the oldest item of S, else of M.
fn dumpStart() ?*Item {
    return small.tail orelse main.tail;
}

/// The item after `it` in dump order: S from its tail to its head, then M
/// from its tail to its head.
fn dumpAfter(it: *Item) ?*Item {
    if (it.prev) |p| return p;
    return if (it.in_main == 0) main.tail else null;
}

/// Buckets one listing call looks at before it answers WMC_WALK_MORE.
const LIST_SCAN: u32 = 4096;

/// A dump walks each queue from its tail to its head, S first: the loader
/// pushes each item at the head of the queue its `refs` names, which
/// rebuilds both queues in order. The cursor is the address of the next
/// item, which is safe because nothing runs between the calls of a dump
/// (and the SDK restarts it after any other call).
///
/// A listing must survive stores, deletes and table growth between calls:
/// it visits items in ascending order of r = bitReverse(hash), as c-sieve
/// does (the items of one bucket are a contiguous range of r whatever the
/// table size, Redis's SCAN order). The cursor is the smallest r not yet
/// listed.
fn s_walk(purpose: c_int, cursor: u64, out_: [*c]c.wmc_item, next_: [*c]u64) callconv(.c) c_int {
    const out: *c.wmc_item = out_;
    const next: *u64 = next_;
    const now = c.wmc_now();
    if (purpose == c.WMC_WALK_DUMP) {
        var cur: ?*Item = if (cursor != 0) @ptrFromInt(@as(usize, @intCast(cursor))) else dumpStart();
        while (cur) |it| {
            if (!isDead(it, now)) break;
            cur = dumpAfter(it);
        }
        const it = cur orelse return c.WMC_WALK_END;
        describe(it, out);
        next.* = if (dumpAfter(it)) |n| @intFromPtr(n) else 0;
        return c.WMC_WALK_ITEM;
    }
    if (purpose != c.WMC_WALK_LIST) return c.WMC_WALK_UNSUPPORTED;
    const bits: u6 = @intCast(std.math.log2_int(u32, nbuckets));
    var cur = cursor;
    var scanned: u32 = 0;
    while (scanned < LIST_SCAN) : (scanned += 1) {
        var best: ?*Item = null;
        var best_r: u64 = 0;
        var chain = table[@as(u32, @truncate(@bitReverse(cur))) & (nbuckets - 1)];
        while (chain) |it| : (chain = it.hnext) {
            const r = @bitReverse(it.hash());
            if (r >= cur and (best == null or r < best_r) and !isDead(it, now)) {
                best = it;
                best_r = r;
            }
        }
        if (best) |it| {
            describe(it, out);
            next.* = best_r +% 1; // 0 (the end) after r = 2^64 - 1
            return c.WMC_WALK_ITEM;
        }
        // the start of the next bucket's range
        const prefix = (cur >> @intCast(64 - @as(u7, bits))) + 1;
        if (prefix >= nbuckets) return c.WMC_WALK_END;
        cur = prefix << @intCast(64 - @as(u7, bits));
    }
    next.* = cur;
    return c.WMC_WALK_MORE;
}

/// Stores one item of a dump: its value, flags, exptime, CAS, last access,
/// FETCHED / KEY_BINARY bits, queue and counter (`refs`: 4 + freq for M,
/// freq for S; another plugin's 0..3 puts the item in S with that count),
/// at the head of its queue (dumps come oldest first). Expired items and
/// items too large for -I or the budget are dropped, as a set would drop
/// them.
fn s_load(in_: [*c]const c.wmc_item) callconv(.c) c_int {
    const in: *const c.wmc_item = in_;
    const now = c.wmc_now();
    if (in.exptime != 0 and in.exptime <= now) return c.WMC_LOAD_OK;
    if (in.key_len < 1 or in.key_len > 250 or tooLarge(in.key_len, in.value_len))
        return c.WMC_LOAD_OK;
    const key: [*]const u8 = in.key;
    const old = lookup(key, in.key_len, now);
    const need = cost(in.key_len, in.value_len);
    const had = if (old) |o| itemCost(o) else 0;
    if (need > had and !makeRoom(need - had, old, now)) return c.WMC_LOAD_FULL;
    const size = @sizeOf(Item) + @as(u64, in.key_len) + in.value_len;
    const it = allocItem(size, old, now) orelse return c.WMC_LOAD_FULL;
    // a key that comes twice keeps its last copy, at the head
    if (old) |o| unlinkItem(o);
    it.klen = @intCast(in.key_len);
    it.vlen = in.value_len;
    @memcpy(it.key(), key[0..in.key_len]);
    @memcpy(it.val(), bytes(in.value, in.value_len));
    it.flags = in.client_flags;
    it.exptime = in.exptime;
    it.atime = in.last_access;
    it.fetched = @intFromBool(in.iflags & c.WMC_IFLAG_FETCHED != 0);
    it.binary = @intFromBool(in.iflags & c.WMC_IFLAG_KEY_BINARY != 0);
    it.in_main = @intFromBool(in.refs >= REFS_MAIN);
    it.freq = @min(if (in.refs >= REFS_MAIN) in.refs - REFS_MAIN else in.refs, FREQ_MAX);
    it.cas = if (cas_enabled) in.cas else 0;
    // CAS values handed out from now on stay above every loaded one
    if (it.cas != 0 and it.cas / shard_count + 1 > cas_seq) cas_seq = it.cas / shard_count + 1;
    linkItem(it, null);
    return c.WMC_LOAD_OK;
}

const plugin = c.wmc_plugin{
    .init = s_init,
    .get = s_get,
    .store = s_store,
    .del = s_delete,
    .arith = s_arith,
    .touch = s_touch,
    .flush_all = s_flush_all,
    .mem_limit = s_mem_limit,
    .tick = s_tick,
    .stats = s_stats,
    .meta_flags = c.WMC_MFLAG_KEY_BINARY | c.WMC_MFLAG_HAS_CAS | c.WMC_MFLAG_SET_TTL,
    .walk = s_walk,
    .load = s_load,
};

/// What WMC_PLUGIN(table) defines in C: the SDK asks for the table here.
export fn wmc_sdk_plugin() [*c]const c.wmc_plugin {
    return &plugin;
}
