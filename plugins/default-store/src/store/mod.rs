//! memcached 1.6's item store semantics on top of the slab, index and CLOCK.
//!
//! Each operation mirrors the memcached function named in its doc comment;
//! where this store deliberately differs, the comment says so and why.

mod classes;
mod dump;
mod list;
mod prefetch;
mod report;
mod space;

pub use list::{LISTING_QUIET_SECS, LIST_SLOTS_PER_CALL};

use crate::clock::{refs, Clock, MAX_REFS};
use crate::hash::hash;
use crate::index::{Index, MIN_BUCKETS};
use crate::mem::{alloc_size, memcached_ntotal, MEMCACHED_CHUNK_MAX};
use crate::num::parse_u64;
use crate::slab::{bit, flags_len, Entry, Slab, CHUNK, ENTRY_SIZE, NIL};
use crate::stats::Counters;
use classes::Classes;
use std::collections::HashSet;
use wasmcached_sdk::abi::{iflag, mflag, Op, Request, Response, Status};
use wasmcached_sdk::guest::{self, fmt_u64, Config, Responder};

/// Keys are stored with a one-byte length; the host enforces memcached's 250.
const MAX_KEY: usize = 255;

/// Settings from `--plugin-config`, e.g. `clock_max=3,crawl_per_tick=8192`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// The highest CLOCK counter a hit can raise (1..=3): how many
    /// revolutions of the hand without a hit an item survives.
    pub clock_max: u8,
    /// The segmented LRU's protected share. CLOCK has no protected list; the
    /// setting is still accepted (and range checked) so that configurations
    /// written for the earlier store keep starting.
    pub warm_pct: u64,
    /// Slots the expiry scan visits per background slice (once a second,
    /// more often while it keeps finding mostly dead items).
    pub crawl_per_tick: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        // clock_max: on the zipf benchmarks (tests::clock_max_sweep and
        // scripts/hit-ratio.py) each counter step gains hit ratio, 3 most.
        Tuning {
            clock_max: MAX_REFS,
            warm_pct: 40,
            crawl_per_tick: 4096,
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
                "clock_max" if (1..=u64::from(MAX_REFS)).contains(&n) => t.clock_max = n as u8,
                "warm_pct" if n <= 95 => t.warm_pct = n,
                "crawl_per_tick" if n > 0 => t.crawl_per_tick = n as usize,
                "clock_max" | "warm_pct" | "crawl_per_tick" => {
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
enum Value<'a> {
    Plain(&'a [u8]),
    /// The old item's value followed by this.
    Append(&'a [u8]),
    /// This followed by the old item's value.
    Prepend(&'a [u8]),
}

pub struct Store {
    slab: Slab,
    index: Index,
    clock: Clock,
    /// Bytes all items, tables and slots may take (`-m` / shards).
    budget: u64,
    /// Allocator bytes of all keys and values.
    data_bytes: u64,
    no_evict: bool,
    cas_enabled: bool,
    shard_id: u64,
    shard_count: u64,
    cas_seq: u64,
    max_item_size: u64,
    /// memcached's `settings.oldest_live` / `settings.oldest_cas`.
    oldest_live: u32,
    oldest_cas: u64,
    crawl_pos: u32,
    /// When the background continuation timer was last asked for.
    slice_timer_armed: Option<u32>,
    tuning: Tuning,
    pub stats: Counters,
    /// Per-class figures, in memcached's slab classes.
    pub classes: Classes,
    /// `prefetch`'s per-key state, kept to reuse its allocation.
    ahead: Vec<prefetch::Ahead>,
    /// Where `prefetch` leaves what it read, so the reads are not optimised away.
    prefetch_sink: u32,
    /// Items (by the address of their data) whose value went to the host by
    /// reference in this batch (`Responder::respond_held`): until
    /// `release_held` their bytes must not be freed or written.
    held: HashSet<usize>,
    /// Data of held items that were replaced or removed, freed by
    /// `release_held`. The budget no longer counts it, so a batch that reads
    /// big items and then replaces or deletes them holds both until it ends:
    /// at most the bytes that batch read, within the instance's memory cap.
    retired: Vec<Box<[u8]>>,
    /// Server time until which a listing (`wmc_iter`) counts as under way:
    /// the background slice does not move items meanwhile (`store::list`).
    listing_until: u32,
    /// The index's initial buckets (`-o hashpower`, else [`MIN_BUCKETS`]):
    /// it never shrinks below them.
    min_buckets: usize,
    /// `-o no_hashexpand` clears it: the index keeps its initial size.
    hash_expand: bool,
}

/// The index's initial buckets for `-o hashpower` (0: not given): 2^power,
/// but at most what a quarter of the shard's budget holds (4 bytes a
/// bucket) and at least [`MIN_BUCKETS`].
pub fn initial_buckets(hashpower: u32, budget: u64) -> usize {
    if hashpower == 0 {
        return MIN_BUCKETS;
    }
    let mut power = hashpower.min(30);
    while power > MIN_BUCKETS.trailing_zeros() && (4u64 << power) > budget / 4 {
        power -= 1;
    }
    (1usize << power).max(MIN_BUCKETS)
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
        let min_buckets = initial_buckets(config.hints.hashpower, config.memory_budget);
        let index = Index::with_buckets(min_buckets)
            .map_err(|_| format!("no memory for a hash index of {min_buckets} buckets"))?;
        Ok(Store {
            slab: Slab::default(),
            index,
            clock: Clock::new(tuning.clock_max),
            budget: config.memory_budget,
            data_bytes: 0,
            no_evict: config.no_evict,
            cas_enabled: config.cas_enabled,
            shard_id: config.shard_id.into(),
            shard_count: config.shard_count.into(),
            // A shard that trapped comes back empty but must not hand out
            // CAS values its predecessor already gave to clients: start past
            // them, assuming fewer than 2^20 stores per second of uptime.
            cas_seq: u64::from(config.now) << 20,
            max_item_size: config.max_item_size.into(),
            oldest_live: 0,
            oldest_cas: 0,
            crawl_pos: 0,
            slice_timer_armed: None,
            tuning,
            stats: Counters::default(),
            classes: Classes::new(&config.hints, config.cas_enabled),
            ahead: Vec::new(),
            prefetch_sink: 0,
            held: HashSet::new(),
            retired: Vec::new(),
            listing_until: 0,
            min_buckets,
            hash_expand: config.hints.hash_expand,
        })
    }

    /// The host has read the values answered by reference: their items may
    /// change again and the data they left behind can go.
    pub fn release_held(&mut self) {
        self.held.clear();
        self.retired.clear();
    }

    /// Before item `i`'s bytes are written in place: if the host has yet to
    /// read them, the item moves to a copy and the original is retired.
    /// `false` if there is no memory for the copy.
    fn unhold(&mut self, i: u32) -> bool {
        if !self.is_held(&self.slab.get(i).data) {
            return true;
        }
        let e = self.slab.get_mut(i);
        let mut copy = Vec::new();
        if copy.try_reserve_exact(e.data.len()).is_err() {
            return false;
        }
        copy.extend_from_slice(&e.data);
        let old = std::mem::replace(&mut e.data, copy.into_boxed_slice());
        self.retired.push(old);
        true
    }

    /// Whether the host has yet to read this item data (an empty set costs
    /// no hashing: the common case, no large value answered in the batch).
    fn is_held(&self, data: &[u8]) -> bool {
        !self.held.is_empty() && self.held.contains(&(data.as_ptr() as usize))
    }

    /// Lets go of an item's data: now, unless the host has yet to read it.
    fn retire(&mut self, data: Box<[u8]>) {
        if self.is_held(&data) {
            self.retired.push(data);
        }
    }

    /// Bytes in use as the budget counts them.
    pub fn used(&self) -> u64 {
        self.data_bytes + self.slab.bytes() + self.index.bytes()
    }

    /// memcached's `bytes`: the sum of the item sizes (here: allocation plus slot).
    pub fn item_bytes(&self) -> u64 {
        self.data_bytes + (self.slab.live() * ENTRY_SIZE) as u64
    }

    pub fn curr_items(&self) -> usize {
        self.slab.live()
    }

    /// memcached's `get_cas_id`. Shards interleave their sequences so that a
    /// CAS value is unique across the whole server, not just per shard.
    fn next_cas(&mut self) -> u64 {
        if !self.cas_enabled {
            return 0;
        }
        let cas = self.cas_seq * self.shard_count + self.shard_id + 1;
        self.cas_seq += 1;
        cas
    }

    /// memcached's `item_is_flushed`.
    fn is_flushed(&self, e: &Entry, now: u32) -> bool {
        let oldest_live = self.oldest_live;
        if oldest_live == 0 || oldest_live > now {
            return false;
        }
        let cas = e.cas();
        e.time <= oldest_live || (self.oldest_cas != 0 && cas != 0 && cas < self.oldest_cas)
    }

    /// What the CLOCK hand and the crawler reclaim: memcached compares with `<`
    /// there (and `<=` in lookups); kept so the counters split the same way.
    fn is_reclaimable(&self, e: &Entry, now: u32) -> bool {
        (e.exptime != 0 && e.exptime < now) || self.is_flushed(e, now)
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
        if req.key.len() > MAX_KEY {
            out.error("key too long");
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

    /// memcached's `do_item_get` without the bump: finds a live item, and
    /// drops an expired or flushed one on the way (counting it).
    fn lookup(&mut self, key: &[u8], h: u64, now: u32) -> Option<u32> {
        let found = self.find_live(key, h, now);
        // `watch fetchers`: memcached logs every do_item_get (ABI v6).
        if guest::logging(mflag::LOG_LOOKUP) {
            let item = found.map(|i| {
                let e = self.slab.get(i);
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
        let i = self.index.find(&self.slab, h, key)?;
        let e = self.slab.get(i);
        if self.is_flushed(e, now) {
            self.unlink_hashed(i, h);
            self.stats.get_flushed += 1;
            return None;
        }
        if e.exptime != 0 && e.exptime <= now {
            self.unlink_hashed(i, h);
            self.stats.get_expired += 1;
            return None;
        }
        Some(i)
    }

    /// memcached's `do_item_bump`: marks the item FETCHED and raises its
    /// CLOCK counter, which is what spares it when the hand comes by, except
    /// for a first hit right after the store (see [`Clock::is_young`]). The
    /// access time is updated on every bump so `last_access` means what the
    /// ABI says.
    fn bump(&mut self, i: u32, now: u32) {
        let first = !self.slab.get(i).has(bit::FETCHED);
        // Only a first hit asks where the item is (a division: most hits
        // are repeats and skip it).
        let young = first && self.clock.is_young(i, &self.slab);
        let e = self.slab.get_mut(i);
        e.bits |= bit::FETCHED;
        e.time = now;
        if young {
            return;
        }
        if !self.clock.hit(e) {
            self.classes.warmed(e);
        }
    }

    fn unlink_hashed(&mut self, i: u32, h: u64) {
        self.index.remove(&mut self.slab, i, h);
        self.classes.unlink(self.slab.get(i));
        self.clock.forget(self.slab.get_mut(i));
        let data = self.slab.release(i);
        self.data_bytes -= alloc_size(data.len());
        self.retire(data);
    }

    fn unlink(&mut self, i: u32) {
        let h = hash(self.slab.get(i).key());
        self.unlink_hashed(i, h);
    }

    /// get / gets / gat / gats / mg. `touch` is the new exptime for gat.
    /// mg's vivify-on-miss (N), recache (R) and stale/win/token bits (ABI v2)
    /// follow memcached's `process_mget_command`.
    fn get(&mut self, req: &Request<'_>, now: u32, touch: Option<u32>, out: &mut Responder<'_>) {
        let h = hash(req.key);
        let (i, created) = match self.lookup(req.key, h, now) {
            Some(i) => (i, false),
            None if req.mflags & mflag::VIVIFY != 0 => {
                // An empty stub item (flags 0) the winning client fills in.
                match self.put(req.key, h, None, Value::Plain(&[]), 0, req.aux, now, 0) {
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
        let e = self.slab.get_mut(i);
        let last_access = e.time;
        let fetched = e.has(bit::FETCHED);
        let prev_exptime = e.exptime;
        let token_sent = e.has(bit::TOKEN_SENT);
        let stale = e.has(bit::STALE);
        if let (Some(exptime), false) = (touch, created) {
            e.exptime = exptime;
        }
        let mut won = created;
        if req.mflags & mflag::RECACHE != 0 && !token_sent && !created {
            let exp = if req.mflags & mflag::RECACHE_NEW_TTL != 0 {
                e.exptime
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
        if won {
            e.bits |= bit::TOKEN_SENT;
        }
        // Warm: the hand would spare it now (memcached: on the WARM list).
        let warm = refs(e) > 0;
        if req.mflags & mflag::NO_BUMP == 0 {
            self.bump(i, now);
        }
        let e = self.slab.get(i);
        let class = self.classes.of_item(e);
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
            (e.has(bit::KEY_BINARY), iflag::KEY_BINARY),
        ] {
            if on {
                iflags |= f;
            }
        }
        let held = out.respond_held(&Response {
            status: Status::Hit as u8,
            iflags,
            key: e.key(),
            value: if req.mflags & mflag::NO_VALUE != 0 {
                &[]
            } else {
                e.value()
            },
            client_flags: e.client_flags(),
            exptime: e.exptime,
            cas: e.cas(),
            last_access,
            prev_exptime,
        });
        if held {
            self.held.insert(e.data.as_ptr() as usize);
        }
    }

    /// memcached's `item_touch`: a bumping lookup that sets a new exptime.
    fn touch(&mut self, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let h = hash(req.key);
        let Some(i) = self.lookup(req.key, h, now) else {
            out.status(Status::NotFound);
            return;
        };
        self.slab.get_mut(i).exptime = req.exptime;
        if req.mflags & mflag::NO_BUMP == 0 {
            self.bump(i, now);
        }
        let e = self.slab.get(i);
        let (cas, exptime) = (e.cas(), e.exptime);
        self.classes.of_item(e).touch_hits += 1;
        out.respond(&Response {
            status: Status::Touched as u8,
            exptime,
            cas,
            ..Default::default()
        });
    }

    /// delete / md / binary delete; a non-zero `cas` must match (md C, binary).
    fn delete(&mut self, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let h = hash(req.key);
        let Some(i) = self.lookup(req.key, h, now) else {
            out.status(Status::NotFound);
            return;
        };
        let compare = req.cas != 0 || req.mflags & mflag::HAS_CAS != 0;
        if compare && req.cas != self.slab.get(i).cas() {
            out.status(Status::Exists);
            return;
        }
        if req.mflags & mflag::INVALIDATE != 0 {
            // md with I: keep the item, mark it stale with a new CAS, and
            // let the next client win the recache (memcached's mdelete).
            let cas = self.next_cas();
            let e = self.slab.get_mut(i);
            let prev_exptime = e.exptime;
            if req.mflags & mflag::SET_TTL != 0 {
                e.exptime = req.exptime;
            }
            e.bits = (e.bits | bit::STALE) & !bit::TOKEN_SENT;
            e.set_cas(cas);
            let exptime = e.exptime;
            out.respond(&Response {
                status: Status::Deleted as u8,
                cas,
                exptime,
                prev_exptime,
                ..Default::default()
            });
            return;
        }
        self.classes.of_item(self.slab.get(i)).delete_hits += 1;
        self.unlink_hashed(i, h);
        out.status(Status::Deleted);
    }

    /// memcached's `item_size_ok`, plus what this shard can hold at all.
    fn fits(&self, key_len: usize, value_len: usize, client_flags: u32) -> bool {
        let ntotal = memcached_ntotal(key_len, value_len, client_flags, self.cas_enabled);
        let limit_ok = self.max_item_size == 0 || ntotal <= self.max_item_size;
        limit_ok && self.fits_budget(key_len + value_len)
    }

    /// Whether an item of `data_len` bytes fits an otherwise empty shard.
    fn fits_budget(&self, data_len: usize) -> bool {
        let fixed = (self.min_buckets * 4 + CHUNK * ENTRY_SIZE) as u64 + 64;
        crate::mem::footprint(data_len) + fixed <= self.budget
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
        let h = hash(key);
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
        let mut bits = if binary && !matches!(mode, Op::Append | Op::Prepend) {
            bit::KEY_BINARY
        } else {
            0
        };
        // `watch`: the size an append leaves (memcached logs that one).
        let mut grown_to = None;
        let (value, client_flags, exptime) = match (mode, old) {
            (Op::Add, Some(i)) => {
                // "add only adds a nonexistent item, but promote to head of LRU"
                self.slab.get_mut(i).time = now;
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
                let e = self.slab.get(i);
                if req.cas == 0 || req.cas != e.cas() {
                    // ms with C and I: an older CAS still stores, as a stale
                    // item keeping the old TTL and win-token mark.
                    // (A zero CAS is "none" in memcached's up-front CAS test.)
                    if req.mflags & mflag::INVALIDATE != 0 && req.cas != 0 && req.cas < e.cas() {
                        bits |= bit::STALE | (e.bits & bit::TOKEN_SENT);
                        self.classes.of_item(e).cas_hits += 1;
                        (Value::Plain(req.value), req.client_flags, e.exptime)
                    } else {
                        self.classes.of_item(e).cas_badval += 1;
                        out.status(Status::Exists);
                        return;
                    }
                } else {
                    self.classes.of_item(e).cas_hits += 1;
                    (Value::Plain(req.value), req.client_flags, req.exptime)
                }
            }
            (Op::Append | Op::Prepend, Some(i)) => {
                let e = self.slab.get(i);
                if req.cas != 0 && req.cas != e.cas() {
                    out.status(Status::Exists);
                    return;
                }
                // The combined item is allocated like any other, and
                // memcached answers NOT_STORED when that fails.
                if !self.fits(
                    key.len(),
                    e.value().len() + req.value.len(),
                    e.client_flags(),
                ) {
                    out.status(Status::NotStored);
                    return;
                }
                grown_to = Some(e.value().len() + req.value.len());
                let v = if mode == Op::Append {
                    Value::Append(req.value)
                } else {
                    Value::Prepend(req.value)
                };
                (v, e.client_flags(), e.exptime)
            }
            _ => (Value::Plain(req.value), req.client_flags, req.exptime),
        };
        match self.put(key, h, old, value, client_flags, exptime, now, bits) {
            Ok((_, cas)) => {
                if let Some(len) = grown_to {
                    guest::log_stored(key, len as u32, client_flags, exptime);
                }
                out.stored(cas, exptime)
            }
            Err(NoMemory) => {
                if op == Op::Set {
                    if let Some(i) = old {
                        self.unlink_hashed(i, h);
                    }
                }
                self.classes.class[received].outofmemory += 1;
                out.status(Status::OutOfMemory);
            }
        }
    }

    /// Writes a new item, into `old`'s slot when it replaces one (memcached's
    /// `item_replace`: the new item starts unfetched, here with a zero CLOCK
    /// counter, as a new item). Returns its slot and new CAS.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        key: &[u8],
        h: u64,
        old: Option<u32>,
        value: Value<'_>,
        client_flags: u32,
        exptime: u32,
        now: u32,
        bits: u8,
    ) -> Result<(u32, u64), NoMemory> {
        let pin = old.unwrap_or(NIL);
        let old_len = old.map_or(0, |i| self.slab.get(i).value().len());
        let old_alloc = old.map_or(0, |i| alloc_size(self.slab.get(i).data.len()));
        let len = flags_len(client_flags)
            + key.len()
            + match value {
                Value::Plain(v) => v.len(),
                Value::Append(v) | Value::Prepend(v) => old_len + v.len(),
            };
        if !self.no_evict && self.index_growth_blocked() {
            // The table is due to grow but the budget has no room for it:
            // free a little more than this item needs, a few items per store.
            for _ in 0..4 {
                if self.free_one(pin).is_none() {
                    break;
                }
            }
        }
        let new_alloc = alloc_size(len);
        if !self.make_room(new_alloc.saturating_sub(old_alloc), old.is_none(), pin) {
            return Err(NoMemory);
        }
        let mut data = self.alloc_data(len, pin)?;
        if client_flags != 0 {
            data.extend_from_slice(&client_flags.to_le_bytes());
        }
        data.extend_from_slice(key);
        match value {
            Value::Plain(v) => data.extend_from_slice(v),
            Value::Append(v) => {
                data.extend_from_slice(self.slab.get(pin).value());
                data.extend_from_slice(v);
            }
            Value::Prepend(v) => {
                data.extend_from_slice(v);
                data.extend_from_slice(self.slab.get(pin).value());
            }
        }
        let data = data.into_boxed_slice();
        let i = match old {
            Some(i) => {
                let e = self.slab.get_mut(i);
                self.classes.unlink(e);
                self.clock.forget(e);
                let old_data = std::mem::replace(&mut e.data, data);
                self.data_bytes -= alloc_size(old_data.len());
                self.retire(old_data);
                i
            }
            None => {
                let Ok(i) = self.slab.alloc() else {
                    self.stats.malloc_fails += 1;
                    return Err(NoMemory);
                };
                let e = self.slab.get_mut(i);
                e.data = data;
                e.key_len = key.len() as u8;
                self.index.insert(&mut self.slab, i, h);
                i
            }
        };
        let cas = self.next_cas();
        let e = self.slab.get_mut(i);
        e.bits = bit::LIVE | bits | if client_flags != 0 { bit::FLAGS } else { 0 };
        e.set_cas(cas);
        e.exptime = exptime;
        e.time = now;
        self.classes.link(e);
        self.data_bytes += new_alloc;
        self.stats.total_items += 1;
        crate::metrics::VALUE_BYTES.observe((len - flags_len(client_flags) - key.len()) as u64);
        if old.is_none() {
            self.maintain_index(space::INSERT_MIGRATE);
        }
        Ok((i, cas))
    }

    /// incr / decr / ma, memcached's `do_add_delta`; ma's vivify (N with the
    /// initial value J as the value bytes) and TTL update (T) per ABI v2.
    fn arith(&mut self, incr: bool, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let h = hash(req.key);
        let Some(i) = self.lookup(req.key, h, now) else {
            if req.mflags & mflag::VIVIFY != 0 {
                return self.arith_vivify(req, h, now, out);
            }
            out.status(Status::NotFound);
            return;
        };
        let e = self.slab.get(i);
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
        if req.cas != 0 && req.cas != e.cas() {
            out.status(Status::Exists);
            return;
        }
        let Some(value) = parse_u64(e.value()) else {
            out.status(Status::NonNumeric);
            return;
        };
        let class = self.classes.of_item(e);
        let value = if incr {
            class.incr_hits += 1;
            value.wrapping_add(req.delta)
        } else {
            class.decr_hits += 1;
            value.saturating_sub(req.delta)
        };
        let prev_exptime = e.exptime;
        let new_exptime = if req.mflags & mflag::SET_TTL != 0 {
            req.exptime
        } else {
            prev_exptime
        };
        let mut buf = [0u8; 20];
        let digits = fmt_u64(value, &mut buf);
        let answer = |out: &mut Responder<'_>, cas: u64| {
            out.respond(&Response {
                status: Status::Number as u8,
                value: digits,
                cas,
                exptime: new_exptime,
                prev_exptime,
                ..Default::default()
            })
        };
        if digits.len() <= e.value().len() {
            // In place, padded with spaces: a later get sees "9 " after
            // decr of "10", exactly as from memcached.
            if !self.unhold(i) {
                out.error("out of memory");
                return;
            }
            let cas = self.next_cas();
            let e = self.slab.get_mut(i);
            let v = e.value_mut();
            v[..digits.len()].copy_from_slice(digits);
            v[digits.len()..].fill(b' ');
            e.set_cas(cas);
            e.time = now;
            e.exptime = new_exptime;
            answer(out, cas);
            return;
        }
        let client_flags = e.client_flags();
        // memcached 1.6.18 quirk: when the number no longer fits, the new
        // item keeps the old TTL (ma's T lands on the replaced item).
        match self.put(
            req.key,
            h,
            Some(i),
            Value::Plain(digits),
            client_flags,
            prev_exptime,
            now,
            0,
        ) {
            Ok((_, cas)) => answer(out, cas),
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
            0,
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
    /// die lazily on access, under the CLOCK hand, or in the background scan.
    fn flush_all(&mut self, exptime: u32, now: u32) {
        let new_oldest = if exptime > 0 { exptime } else { now };
        if self.cas_enabled {
            // One second back plus the CAS cut-off: items stored in the
            // flush's own second after the flush survive.
            self.oldest_live = new_oldest.wrapping_sub(1);
            if self.oldest_live <= now {
                self.oldest_cas = self.next_cas();
            }
        } else {
            self.oldest_live = new_oldest;
        }
    }
}
