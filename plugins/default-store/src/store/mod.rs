//! memcached 1.6's item store semantics on top of the log, the index and
//! S3-FIFO eviction.
//!
//! Each operation mirrors the memcached function named in its doc comment;
//! where this store deliberately differs, the comment says so and why.

mod access;
mod classes;
mod dump;
mod evict;
mod list;
mod prefetch;
mod report;
mod sizes;
mod space;

pub use list::{LISTING_QUIET_SECS, LIST_ITEMS_PER_CALL};

use crate::ghost::Ghost;
use crate::hash::hash;
use crate::index::{Index, GROUP, MIN_GROUPS};
use crate::item::{bit, ext, header, Header, View};
use crate::log::{CasMap, Log};
use crate::mem::{memcached_ntotal, MEMCACHED_CHUNK_MAX};
use crate::num::parse_u64;
use crate::stats::Counters;
use access::Extra;
use classes::Classes;
use space::Crawler;
use wasmcached_sdk::abi::{iflag, mflag, Op, Request, Response, Status};
use wasmcached_sdk::guest::{self, fmt_u64, Config, Responder};

/// Keys are stored with a one-byte length; the host enforces memcached's 250.
const MAX_KEY: usize = 250;
/// "No item".
pub const NIL: u32 = u32::MAX;

/// Settings from `--plugin-config`, e.g. `small_pct=10,promote=1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// The small queue's share of the segments, in percent (S3-FIFO: 10).
    /// 0 makes every new item enter the main queue's FIFO-reinsertion
    /// (CLOCK) directly.
    pub small_pct: u64,
    /// Hits an item needs in the small queue to be promoted to the main
    /// queue instead of evicted (1..=3).
    pub promote: u8,
    /// The highest frequency a hit can raise (1..=3): how many rounds of
    /// the main queue without a hit an item survives.
    pub freq_max: u8,
    /// Whether keys evicted from the small queue are remembered (ghost).
    pub ghost: bool,
    /// Items the expiry scan visits per background slice.
    pub crawl_per_tick: usize,
    /// Batches are read ahead (`prefetch`) once the store's log and index
    /// hold this many MiB. A smaller store stays in the CPU's caches, where
    /// reading ahead is only extra work: a fifth of a cached hit's time.
    pub readahead_mb: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        // Chosen on `wasmcached replay` runs (docs/performance.md).
        Tuning {
            small_pct: 10,
            promote: 1,
            freq_max: 3,
            ghost: true,
            crawl_per_tick: 4096,
            readahead_mb: 32,
        }
    }
}

impl Tuning {
    pub fn parse(s: &str) -> Result<Tuning, String> {
        let mut t = Tuning::default();
        for item in s.split([',', ' ']).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("plugin config: expected key=value, got {item:?}"))?;
            let n: u64 = v
                .parse()
                .map_err(|_| format!("plugin config: {k} wants a number, got {v:?}"))?;
            match k {
                "small_pct" if n <= 90 => t.small_pct = n,
                "promote" if (1..=3).contains(&n) => t.promote = n as u8,
                "freq_max" | "clock_max" if (1..=3).contains(&n) => t.freq_max = n as u8,
                "ghost" if n <= 1 => t.ghost = n == 1,
                // The segmented LRU's protected share: accepted (and range
                // checked) so that configurations written for the first
                // store keep starting.
                "warm_pct" if n <= 95 => {}
                "crawl_per_tick" if n > 0 => t.crawl_per_tick = n as usize,
                "readahead_mb" if n <= 1 << 20 => t.readahead_mb = n,
                "small_pct" | "promote" | "freq_max" | "clock_max" | "ghost" | "warm_pct"
                | "crawl_per_tick" | "readahead_mb" => {
                    return Err(format!("plugin config: {k}={n} is out of range"))
                }
                _ => return Err(format!("plugin config: unknown setting {k:?}")),
            }
        }
        Ok(t)
    }
}

/// Why a store could not take an item.
#[derive(Debug)]
struct NoMemory;

/// The value of an item being written.
#[derive(Clone, Copy)]
enum Value<'a> {
    Plain(&'a [u8]),
    /// The old item's value followed by this.
    Append(&'a [u8]),
    /// This followed by the old item's value.
    Prepend(&'a [u8]),
}

pub struct Store {
    log: Log,
    /// How log positions become CAS values.
    casm: CasMap,
    index: Index,
    ghost: Ghost,
    /// Bytes the segments and long values may take (`-m` / shards).
    budget: u64,
    no_evict: bool,
    cas_enabled: bool,
    shard_count: u64,
    max_item_size: u64,
    /// memcached's `settings.oldest_live` / `settings.oldest_cas`.
    oldest_live: u32,
    oldest_cas: u64,
    /// New items are written at log positions from here on (after a load of
    /// items with CAS values this shard must not hand out again).
    pos_floor: u64,
    /// The expiry scan (memcached's LRU crawler).
    crawler: Crawler,
    /// When the background continuation timer was last asked for.
    slice_timer_armed: Option<u32>,
    tuning: Tuning,
    pub stats: Counters,
    /// Per-class figures, in memcached's slab classes.
    pub classes: Classes,
    /// Live items, and memcached's `bytes` of them.
    live: usize,
    live_bytes: u64,
    /// The item an operation is rewriting: eviction keeps it (moving it if
    /// it must) and updates this to where it went.
    pinned: u32,
    /// Out-of-line values answered by reference in this batch.
    held_large: Vec<u32>,
    /// Bytes copied through while moving an item within the log.
    scratch: Vec<u8>,
    /// `prefetch`'s per-key state, kept to reuse its allocation.
    ahead: Vec<prefetch::Ahead>,
    /// The first entry of `ahead` no request has used yet.
    ahead_next: usize,
    prefetch_sink: u32,
    /// Server time until which a listing (`wmc_iter`) counts as under way.
    listing_until: u32,
    /// The index's initial slots (`-o hashpower`): it never shrinks below.
    min_slots: usize,
    /// `-o no_hashexpand` clears it: the index keeps its initial size.
    hash_expand: bool,
}

/// The index's initial slots for `-o hashpower` (0: not given): 2^power,
/// but at most what half the shard's budget holds (5 bytes a slot; like
/// memcached's table it is not counted against `-m`, but a hint must not
/// make a small shard's index dwarf its items) and at least the smallest
/// table.
pub fn initial_slots(hashpower: u32, budget: u64) -> usize {
    let min = MIN_GROUPS * GROUP;
    if hashpower == 0 {
        return min;
    }
    let mut power = hashpower.min(30);
    while power > min.trailing_zeros() && (5u64 << power) > budget / 2 {
        power -= 1;
    }
    (1usize << power).max(min)
}

/// The segment size for a shard's budget: about a 32nd of it, a power of
/// two from 4 KiB to 1 MiB (memcached's slab page). Eviction works a
/// segment at a time, so a smaller budget gets smaller segments.
pub fn segment_size(budget: u64) -> usize {
    let target = (budget / 32).clamp(4096, 1 << 20);
    1 << (63 - target.leading_zeros())
}

impl Store {
    pub fn new(config: &Config) -> Result<Store, String> {
        if config.shard_count == 0 || config.shard_id >= config.shard_count {
            return Err(format!(
                "bad shard {} of {}",
                config.shard_id, config.shard_count
            ));
        }
        let tuning = Tuning::parse(&config.config)?;
        let min_slots = initial_slots(config.hints.hashpower, config.memory_budget);
        // A shard that trapped comes back empty but must not hand out CAS
        // values its predecessor already gave to clients: its log starts
        // past them, assuming fewer than 2^30 bytes written per second.
        let pos = u64::from(config.now) << 30;
        let mut log = Log::new(segment_size(config.memory_budget), pos);
        let index = Index::with_slots(min_slots, &mut log)
            .map_err(|_| format!("no memory for a hash index of {min_slots} slots"))?;
        Ok(Store {
            log,
            casm: CasMap {
                enabled: config.cas_enabled,
                shards: config.shard_count.into(),
                shard: config.shard_id.into(),
            },
            index,
            ghost: Ghost::new(),
            budget: config.memory_budget,
            no_evict: config.no_evict,
            cas_enabled: config.cas_enabled,
            shard_count: config.shard_count.into(),
            max_item_size: config.max_item_size.into(),
            oldest_live: 0,
            oldest_cas: 0,
            pos_floor: pos,
            crawler: Crawler::default(),
            slice_timer_armed: None,
            tuning,
            stats: Counters::default(),
            classes: Classes::new(&config.hints, config.cas_enabled),
            live: 0,
            live_bytes: 0,
            pinned: NIL,
            held_large: Vec::new(),
            scratch: Vec::new(),
            ahead: Vec::new(),
            ahead_next: 0,
            prefetch_sink: 0,
            listing_until: 0,
            min_slots,
            hash_expand: config.hints.hash_expand,
        })
    }

    /// The host has read the values answered by reference.
    pub fn release_held(&mut self) {
        self.forget_ahead();
        self.log.release_held();
        self.held_large.clear();
    }

    /// Bytes in use as the budget counts them: segments in a queue, long
    /// values and the ghost. The index is not counted, as memcached does
    /// not count its hash table against `-m`.
    pub fn used(&self) -> u64 {
        (self.log.in_use() * self.log.seg_size()) as u64 + self.log.large_bytes + self.ghost.bytes()
    }

    /// memcached's `bytes`: the sum of the item sizes (here: what each takes
    /// in the log, plus its long value).
    pub fn item_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub fn curr_items(&self) -> usize {
        self.live
    }

    /// The CAS value of the item at log position `pos`.
    fn cas_at(&self, pos: u64) -> u64 {
        self.casm.at(pos)
    }

    /// memcached's `item_is_flushed`.
    fn is_flushed(&self, e: &View<'_>, now: u32) -> bool {
        let oldest_live = self.oldest_live;
        if oldest_live == 0 || oldest_live > now {
            return false;
        }
        e.time <= oldest_live || (self.oldest_cas != 0 && e.cas != 0 && e.cas < self.oldest_cas)
    }

    /// What eviction and the crawler reclaim: memcached compares with `<`
    /// there (and `<=` in lookups); kept so the counters split the same way.
    fn is_reclaimable(&self, e: &View<'_>, now: u32) -> bool {
        (e.exptime() != 0 && e.exptime() < now) || self.is_flushed(e, now)
    }

    /// Whether an item is dead for a dump or a listing: expired or flushed
    /// (the same tests as a lookup).
    pub(super) fn is_dead(&self, e: &View<'_>, now: u32) -> bool {
        (e.exptime() != 0 && e.exptime() <= now) || self.is_flushed(e, now)
    }

    pub fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        let Some(op) = req.op() else {
            out.error("unknown operation");
            return;
        };
        let now = guest::now();
        match op {
            Op::FlushAll => {
                self.flush_all(req.exptime, now);
                out.status(Status::Ok);
                return;
            }
            Op::MemLimit => {
                self.set_budget(req.delta);
                out.status(Status::Ok);
                return;
            }
            _ => {}
        }
        if req.key.len() > MAX_KEY || req.key.is_empty() {
            out.error("bad key length");
            return;
        }
        match op {
            Op::Get => self.get(req, now, None, out),
            Op::Gat => self.get(req, now, Some(req.exptime), out),
            Op::Touch => self.touch(req, now, out),
            Op::Set | Op::Add | Op::Replace | Op::Append | Op::Prepend | Op::Cas => {
                self.store(op, req, now, out)
            }
            Op::Delete => self.delete(req, now, out),
            Op::Incr | Op::Decr => self.arith(op == Op::Incr, req, now, out),
            Op::FlushAll | Op::MemLimit => unreachable!("handled above"),
        }
    }

    /// The live item stored under `key`, if any (expired and flushed ones
    /// included).
    #[inline]
    fn find(&self, key: &[u8], h: u64) -> Option<u32> {
        let log = &self.log;
        self.index.find(h, |x| {
            crate::item::key_eq(crate::item::key_of(log.at(x)), key)
        })
    }

    /// memcached's `do_item_get` without the bump: finds a live item, and
    /// drops an expired or flushed one on the way (counting it).
    fn lookup(&mut self, key: &[u8], h: u64, now: u32) -> Option<u32> {
        let found = self.find_live(key, h, now);
        // `watch fetchers`: memcached logs every do_item_get (ABI v6).
        if guest::logging(mflag::LOG_LOOKUP) {
            let item = found.map(|i| {
                let e = self.log.view(i, self.casm);
                guest::Found {
                    value_len: e.value().len() as u32,
                    client_flags: e.client_flags(),
                }
            });
            guest::log_lookup(key, item);
        }
        found
    }

    fn find_live(&mut self, key: &[u8], h: u64, now: u32) -> Option<u32> {
        let i = self.find(key, h)?;
        // Only a flush_all makes the full view (time, CAS) worth reading.
        if self.oldest_live != 0 && self.is_flushed(&self.log.view(i, self.casm), now) {
            self.unlink_hashed(i, h);
            self.stats.get_flushed += 1;
            return None;
        }
        let exptime = header(self.log.at(i)).exptime;
        if exptime != 0 && exptime <= now {
            // Read again after it expired: a key in use, whose next set
            // should go to the main queue as a key evicted too early does.
            // On a TTL-heavy trace at 1 % this misses 2 % less.
            if self.tuning.ghost && !self.ghost.is_empty() {
                self.ghost.remember(h);
            }
            self.unlink_hashed(i, h);
            self.stats.get_expired += 1;
            return None;
        }
        Some(i)
    }

    /// memcached's `do_item_bump`: marks the item FETCHED and raises its
    /// frequency (a hit), and records the access time from the second
    /// fetch on. memcached's segmented LRU leaves the time of an item's
    /// first fetch alone (it only sets FETCHED); every later fetch moves it
    /// (at once, or through the LRU maintainer within the second), so meta
    /// `l` and metadump's `la=` show the time since the store after one
    /// read. `hdr` is its decoded header. Returns where the item is now (a
    /// rare move: see `access::set_time`).
    fn bump(&mut self, i: u32, hdr: &Header, now: u32) -> u32 {
        let refs = hdr.refs();
        let first = !hdr.has(bit::FETCHED);
        let mut bits = hdr.bits | bit::FETCHED;
        if refs < self.tuning.freq_max {
            bits += bit::REF_ONE;
            if refs == 0 {
                self.classes
                    .warmed(hdr.klen.into(), hdr.vlen as usize, hdr.flags);
            }
        }
        self.set_bits(i, bits);
        if first {
            return i;
        }
        self.set_time_at(i, hdr.atime_at.into(), now)
    }

    fn unlink_hashed(&mut self, i: u32, h: u64) {
        self.index.remove(h, i);
        self.kill(i);
    }

    fn unlink(&mut self, i: u32) {
        let h = hash(self.log.view(i, self.casm).key());
        self.unlink_hashed(i, h);
    }

    /// get / gets / gat / gats / mg. `touch` is the new exptime for gat.
    /// mg's vivify-on-miss (N), recache (R) and stale/win/token bits (ABI v2)
    /// follow memcached's `process_mget_command`.
    fn get(&mut self, req: &Request<'_>, now: u32, touch: Option<u32>, out: &mut Responder<'_>) {
        let h = self.key_hash(req.key);
        let (mut i, created) = match self.lookup(req.key, h, now) {
            Some(i) => (i, false),
            None if req.mflags & mflag::VIVIFY != 0 => {
                // An empty stub item (flags 0) the winning client fills in.
                match self.put(
                    req.key,
                    h,
                    None,
                    Value::Plain(&[]),
                    0,
                    req.aux,
                    now,
                    Extra::default(),
                ) {
                    Ok((i, _)) => (i, true),
                    Err(NoMemory) => {
                        self.classes.of_new(req.key.len(), 0, 0).outofmemory += 1;
                        return out.status(Status::Miss);
                    }
                }
            }
            None => {
                out.status(Status::Miss);
                return;
            }
        };
        let e = self.log.view(i, self.casm);
        let hdr = e.hdr;
        let (cas, last_access) = (e.cas, e.time);
        let fetched = e.has(bit::FETCHED);
        let prev_exptime = e.exptime();
        let token_sent = e.has_ext(ext::TOKEN_SENT);
        let stale = e.has_ext(ext::STALE);
        let mut exptime = prev_exptime;
        if let (Some(t), false) = (touch, created) {
            exptime = t;
        }
        let mut won = created;
        if req.mflags & mflag::RECACHE != 0 && !token_sent && !created {
            let exp = if req.mflags & mflag::RECACHE_NEW_TTL != 0 {
                exptime
            } else {
                prev_exptime
            };
            if exp != 0 && u64::from(exp) < req.delta {
                won = true;
            }
        }
        if stale && !token_sent && req.mflags & mflag::META_GET != 0 {
            won = true;
        }
        if req.mflags & mflag::NO_TOKEN != 0 {
            won = false;
        }
        // Warm: eviction would spare it now (memcached: on the WARM list).
        let warm = hdr.refs() > 0;
        let mut marks = hdr.ext;
        if won {
            marks |= ext::TOKEN_SENT;
        }
        // The one header decoded for a plain hit; a rewrite or a move (both
        // rare) reads it again.
        let mut hdr = hdr;
        if exptime != prev_exptime || marks != hdr.ext {
            match self.rewrite_fields(i, exptime, marks) {
                Some(j) => i = j,
                None => {
                    out.error("out of memory");
                    return;
                }
            }
            hdr = header(self.log.at(i));
        }
        if req.mflags & mflag::NO_BUMP == 0 {
            let j = self.bump(i, &hdr, now);
            if j != i {
                i = j;
                hdr = header(self.log.at(i));
            }
        }
        let class = self
            .classes
            .of_new(hdr.klen.into(), hdr.vlen as usize, hdr.flags);
        match touch {
            Some(_) => class.touch_hits += 1,
            None => class.get_hits += 1,
        }
        if warm {
            class.hits_to_warm += 1;
        } else {
            class.hits_to_cold += 1;
        }
        let mut iflags = 0;
        for (on, f) in [
            (fetched, iflag::FETCHED),
            (stale, iflag::STALE),
            (token_sent, iflag::TOKEN_SENT),
            (won, iflag::WON),
            (created, iflag::CREATED),
            (hdr.has_ext(ext::KEY_BINARY), iflag::KEY_BINARY),
        ] {
            if on {
                iflags |= f;
            }
        }
        let large = hdr.has(bit::LARGE);
        let (key, value) = self.log.body(i, &hdr);
        let held = out.respond_held(&Response {
            status: Status::Hit as u8,
            iflags,
            key,
            value: if req.mflags & mflag::NO_VALUE != 0 {
                &[]
            } else {
                value
            },
            client_flags: hdr.flags,
            exptime: hdr.exptime,
            cas,
            last_access,
            prev_exptime,
        });
        if held {
            self.hold(i, large);
        }
    }

    /// memcached's `item_touch`: a bumping lookup that sets a new exptime.
    fn touch(&mut self, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let h = self.key_hash(req.key);
        let Some(mut i) = self.lookup(req.key, h, now) else {
            out.status(Status::NotFound);
            return;
        };
        let marks = self.log.view(i, self.casm).hdr.ext;
        match self.rewrite_fields(i, req.exptime, marks) {
            Some(j) => i = j,
            None => {
                out.error("out of memory");
                return;
            }
        }
        if req.mflags & mflag::NO_BUMP == 0 {
            let hdr = header(self.log.at(i));
            i = self.bump(i, &hdr, now);
        }
        let e = self.log.view(i, self.casm);
        let (cas, exptime) = (e.cas, e.exptime());
        self.classes.of_item(&e).touch_hits += 1;
        out.respond(&Response {
            status: Status::Touched as u8,
            exptime,
            cas,
            ..Default::default()
        });
    }

    /// delete / md / binary delete; a non-zero `cas` must match (md C, binary).
    fn delete(&mut self, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let h = self.key_hash(req.key);
        let Some(i) = self.lookup(req.key, h, now) else {
            out.status(Status::NotFound);
            return;
        };
        let compare = req.cas != 0 || req.mflags & mflag::HAS_CAS != 0;
        if compare && req.cas != self.log.view(i, self.casm).cas {
            out.status(Status::Exists);
            return;
        }
        if req.mflags & mflag::INVALIDATE != 0 {
            // md with I: keep the item, mark it stale with a new CAS, and
            // let the next client win the recache (memcached's mdelete).
            let e = self.log.view(i, self.casm);
            let prev_exptime = e.exptime();
            let exptime = if req.mflags & mflag::SET_TTL != 0 {
                req.exptime
            } else {
                prev_exptime
            };
            let marks = (e.hdr.ext | ext::STALE) & !ext::TOKEN_SENT;
            let state = e.hdr.bits & bit::STATE;
            match self.renew(i, h, exptime, marks, state, now) {
                Ok(j) => {
                    let cas = self.log.view(j, self.casm).cas;
                    out.respond(&Response {
                        status: Status::Deleted as u8,
                        cas,
                        exptime,
                        prev_exptime,
                        ..Default::default()
                    });
                }
                Err(NoMemory) => out.error("out of memory"),
            }
            return;
        }
        self.classes
            .of_item(&self.log.view(i, self.casm))
            .delete_hits += 1;
        self.unlink_hashed(i, h);
        out.status(Status::Deleted);
    }

    /// memcached's `item_size_ok`, plus what this shard can hold at all.
    fn fits(&self, key_len: usize, value_len: usize, client_flags: u32) -> bool {
        let ntotal = memcached_ntotal(key_len, value_len, client_flags, self.cas_enabled);
        let limit_ok = self.max_item_size == 0 || ntotal <= self.max_item_size;
        limit_ok && self.fits_budget(key_len, value_len)
    }

    /// Whether an item fits an otherwise empty shard: two segments (the
    /// queues' heads) plus a long value's block.
    fn fits_budget(&self, key_len: usize, value_len: usize) -> bool {
        let seg = self.log.seg_size() as u64;
        let large = if value_len > self.log.inline_max() {
            value_len as u64
        } else {
            0
        };
        key_len + value_len.min(self.log.inline_max()) + 64 <= self.log.seg_size()
            && 2 * seg + large <= self.budget.max(2 * seg)
    }

    /// memcached's `process_update_command` + `do_store_item`.
    fn store(&mut self, op: Op, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let key = req.key;
        // The meta and binary protocols turn set/replace with a CAS into a
        // CAS store; doing it here too keeps any host mapping correct.
        let mode = match op {
            Op::Set | Op::Replace if req.cas != 0 => Op::Cas,
            op => op,
        };
        let h = self.key_hash(key);
        if !self.fits(key.len(), req.value.len(), req.client_flags) {
            // memcached unlinks the old item when a `set` fails, so that a
            // client never reads stale data after a failed update.
            if op == Op::Set {
                if let Some(i) = self.lookup(key, h, now) {
                    self.unlink_hashed(i, h);
                }
            }
            out.status(Status::TooLarge);
            return;
        }
        // memcached counts a store in the class of the item it received
        // (for append, of the appended bytes).
        let received = self
            .classes
            .of(key.len(), req.value.len(), req.client_flags);
        self.classes.class[received].cmd_set += 1;
        let old = self.lookup(key, h, now);
        // memcached builds appended/prepended items afresh, without the
        // binary-key mark of either part.
        let binary = req.mflags & mflag::KEY_BINARY != 0;
        let mut marks = if binary && !matches!(mode, Op::Append | Op::Prepend) {
            ext::KEY_BINARY
        } else {
            0
        };
        // `watch`: the size an append leaves (memcached logs that one).
        let mut grown_to = None;
        let (value, client_flags, exptime) = match (mode, old) {
            (Op::Add, Some(i)) => {
                // "add only adds a nonexistent item, but promote to head of LRU"
                self.set_time(i, now);
                out.status(Status::NotStored);
                return;
            }
            (Op::Replace | Op::Append | Op::Prepend, None) => {
                out.status(Status::NotStored);
                return;
            }
            (Op::Cas, None) => {
                out.status(Status::NotFound);
                return;
            }
            (Op::Cas, Some(i)) => {
                // A zero compare value never matches (memcached's CAS_NONE),
                // and with -C every item's CAS is 0, so a cas always fails.
                let e = self.log.view(i, self.casm);
                if req.cas == 0 || req.cas != e.cas {
                    // ms with C and I: an older CAS still stores, as a stale
                    // item keeping the old TTL and win-token mark.
                    if req.mflags & mflag::INVALIDATE != 0 && req.cas != 0 && req.cas < e.cas {
                        marks |= ext::STALE | (e.hdr.ext & ext::TOKEN_SENT);
                        let exptime = e.exptime();
                        self.classes.of_item(&e).cas_hits += 1;
                        (Value::Plain(req.value), req.client_flags, exptime)
                    } else {
                        self.classes.of_item(&e).cas_badval += 1;
                        out.status(Status::Exists);
                        return;
                    }
                } else {
                    self.classes.of_item(&e).cas_hits += 1;
                    (Value::Plain(req.value), req.client_flags, req.exptime)
                }
            }
            (Op::Append | Op::Prepend, Some(i)) => {
                let e = self.log.view(i, self.casm);
                if req.cas != 0 && req.cas != e.cas {
                    out.status(Status::Exists);
                    return;
                }
                // The combined item is allocated like any other, and
                // memcached answers NOT_STORED when that fails.
                let (old_len, flags, exptime) = (e.value().len(), e.client_flags(), e.exptime());
                if !self.fits(key.len(), old_len + req.value.len(), flags) {
                    out.status(Status::NotStored);
                    return;
                }
                grown_to = Some(old_len + req.value.len());
                let v = if mode == Op::Append {
                    Value::Append(req.value)
                } else {
                    Value::Prepend(req.value)
                };
                (v, flags, exptime)
            }
            _ => (Value::Plain(req.value), req.client_flags, req.exptime),
        };
        let x = Extra {
            marks,
            ..Extra::default()
        };
        match self.put(key, h, old, value, client_flags, exptime, now, x) {
            Ok((_, cas)) => {
                if let Some(len) = grown_to {
                    guest::log_stored(key, len as u32, client_flags, exptime);
                }
                out.stored(cas, exptime)
            }
            Err(NoMemory) => {
                if op == Op::Set {
                    if let Some(i) = self.find(key, h) {
                        self.unlink_hashed(i, h);
                    }
                }
                self.classes.class[received].outofmemory += 1;
                out.status(Status::OutOfMemory);
            }
        }
    }

    /// incr / decr / ma, memcached's `do_add_delta`; ma's vivify (N with the
    /// initial value J as the value bytes) and TTL update (T) per ABI v2.
    fn arith(&mut self, incr: bool, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let h = self.key_hash(req.key);
        let Some(i) = self.lookup(req.key, h, now) else {
            if req.mflags & mflag::VIVIFY != 0 {
                return self.arith_vivify(req, h, now, out);
            }
            out.status(Status::NotFound);
            return;
        };
        let e = self.log.view(i, self.casm);
        let ntotal = memcached_ntotal(
            req.key.len(),
            e.value().len(),
            e.client_flags(),
            self.cas_enabled,
        );
        // Empty values and values memcached would keep chunked are refused
        // before parsing.
        if e.value().is_empty() || ntotal > MEMCACHED_CHUNK_MAX {
            out.status(Status::NonNumeric);
            return;
        }
        if req.cas != 0 && req.cas != e.cas {
            out.status(Status::Exists);
            return;
        }
        let Some(value) = parse_u64(e.value()) else {
            out.status(Status::NonNumeric);
            return;
        };
        let class = self.classes.of_item(&e);
        let value = if incr {
            class.incr_hits += 1;
            value.wrapping_add(req.delta)
        } else {
            class.decr_hits += 1;
            value.saturating_sub(req.delta)
        };
        let prev_exptime = e.exptime();
        let new_exptime = if req.mflags & mflag::SET_TTL != 0 {
            req.exptime
        } else {
            prev_exptime
        };
        let mut buf = [0u8; 20];
        let digits = fmt_u64(value, &mut buf);
        let old_len = e.value().len();
        let client_flags = e.client_flags();
        let answer = |out: &mut Responder<'_>, cas: u64, exptime: u32| {
            out.respond(&Response {
                status: Status::Number as u8,
                value: digits,
                cas,
                exptime,
                prev_exptime,
                ..Default::default()
            })
        };
        // memcached rewrites a number that still fits in place, padded with
        // spaces (a later get sees "9 " after decr of "10"); a new CAS means
        // a new place in the log here, with the same padded bytes. When the
        // number no longer fits, memcached 1.6.18 makes a new item that keeps
        // the old TTL (ma's T lands on the replaced item).
        let in_place = digits.len() <= old_len;
        let mut bytes = digits.to_vec();
        let (exptime, bits, marks) = if in_place {
            bytes.resize(old_len, b' ');
            let e = self.log.view(i, self.casm);
            (new_exptime, e.hdr.bits & bit::STATE, e.hdr.ext)
        } else {
            (prev_exptime, 0, 0)
        };
        match self.put(
            req.key,
            h,
            Some(i),
            Value::Plain(&bytes),
            client_flags,
            exptime,
            now,
            Extra {
                bits,
                marks,
                cas: None,
                same: in_place,
            },
        ) {
            Ok((_, cas)) => answer(out, cas, new_exptime),
            Err(NoMemory) => {
                let class = self
                    .classes
                    .of_new(req.key.len(), digits.len(), client_flags);
                class.outofmemory += 1;
                out.status(Status::OutOfMemory);
            }
        }
    }

    /// ma with N on a miss: store the initial value (memcached stores it
    /// with an `add`, then sets the vivify TTL).
    fn arith_vivify(&mut self, req: &Request<'_>, h: u64, now: u32, out: &mut Responder<'_>) {
        if !self.fits(req.key.len(), req.value.len(), 0) {
            out.status(Status::OutOfMemory);
            return;
        }
        let class = self.classes.of(req.key.len(), req.value.len(), 0);
        self.classes.class[class].cmd_set += 1;
        match self.put(
            req.key,
            h,
            None,
            Value::Plain(req.value),
            0,
            req.aux,
            now,
            Extra::default(),
        ) {
            Ok((_, cas)) => {
                // memcached's `add` of the initial value looks up again.
                guest::log_lookup(req.key, None);
                guest::log_stored(req.key, req.value.len() as u32, 0, req.aux);
                out.respond(&Response {
                    status: Status::Number as u8,
                    iflags: iflag::CREATED,
                    value: req.value,
                    cas,
                    exptime: req.aux,
                    ..Default::default()
                })
            }
            Err(NoMemory) => {
                self.classes.class[class].outofmemory += 1;
                out.status(Status::OutOfMemory);
            }
        }
    }

    /// memcached's `process_flush_all_command`. `exptime` is the resolved
    /// server time of the flush, 0 for now. Items are not touched here: they
    /// die lazily on access, under eviction, or in the background scan.
    fn flush_all(&mut self, exptime: u32, now: u32) {
        let new_oldest = if exptime > 0 { exptime } else { now };
        if self.cas_enabled {
            // One second back plus the CAS cut-off: items stored in the
            // flush's own second after the flush survive.
            self.oldest_live = new_oldest.wrapping_sub(1);
            if self.oldest_live <= now {
                self.oldest_cas = self.cas_at(self.next_position());
            }
        } else {
            self.oldest_live = new_oldest;
        }
    }
}
