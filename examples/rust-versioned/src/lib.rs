//! rust-versioned: a wasmcached storage plugin that keeps the previous
//! versions of every value.
//!
//! Whenever a live item's value is replaced (set, replace, cas, append,
//! prepend, incr, decr) or deleted, the old value is pushed onto the key's
//! history, newest first, up to `keep` versions (default 3). A client reads
//! them as ordinary keys with a version suffix: `get foo~1` is the value
//! `foo` had before its latest change, `foo~2` the one before that. A
//! version keeps the flags and CAS it had; its exptime is the item's.
//! History survives a delete (an "undo" source) but not expiry of the key
//! or `flush_all`. A key that itself exists as an item always wins over
//! the version reading of it.
//!
//! Because the host routes a key to a shard by hashing the whole key, `foo`
//! and `foo~1` land on different shards unless there is one: the plugin
//! refuses to start with more than one shard (run `-t 1` or `-o shards=1`).
//!
//! `--plugin-config keep=N,sep=C`: N versions per key (1..=64), C the
//! one-character version separator (default `~`).
//!
//! Memory: every key costs its key, current value and kept versions plus
//! ~96 bytes; over the shard's budget the least recently used keys go with
//! all their history (or OutOfMemory with `-M`).
//!
//! ABI: the Rust SDK's (v2 or later): the meta-protocol flags it does not implement
//! (vivify, invalidate/stale items, recache) are answered with Error, which
//! clients see as `SERVER_ERROR`; binary keys, `ma T` and `md C0` work.

use std::collections::{BTreeMap, HashMap, VecDeque};
use wasmcached_sdk::abi::{iflag, mflag, Op, Request, Response, Status};
use wasmcached_sdk::guest::{self, fmt_u64, Config, Plugin, Responder, StatsWriter};

/// memcached's item header (48) + CAS (8) + "\r\n" + NUL, for `-I` checks.
const MC_OVERHEAD: u64 = 59;
/// Bookkeeping per key and per version (map entry, vectors, LRU entry).
const KEY_OVERHEAD: u64 = 96;
const VERSION_OVERHEAD: u64 = 40;
const UNSUPPORTED: u32 = mflag::VIVIFY | mflag::INVALIDATE | mflag::RECACHE;

/// A value the key had before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub value: Vec<u8>,
    pub client_flags: u32,
    pub cas: u64,
    /// Server time the value was replaced or deleted.
    pub replaced_at: u32,
}

#[derive(Clone, Debug)]
struct Item {
    value: Vec<u8>,
    client_flags: u32,
    exptime: u32,
    cas: u64,
    /// Last access (memcached's `it->time`).
    time: u32,
    fetched: bool,
    binary_key: bool,
}

#[derive(Debug, Default)]
struct Entry {
    item: Option<Item>,
    /// Newest first.
    history: VecDeque<Version>,
    /// Position in the LRU (`Store::lru`).
    lru: u64,
    /// Expiry of the history once the item is gone (its last exptime).
    exptime: u32,
}

#[derive(Debug, Default)]
struct Counters {
    total_items: u64,
    evictions: u64,
    reclaimed: u64,
    get_expired: u64,
    get_flushed: u64,
    versions_saved: u64,
    versions_dropped: u64,
    version_reads: u64,
    version_misses: u64,
}

pub struct Store {
    map: HashMap<Vec<u8>, Entry>,
    /// LRU order: tick → key.
    lru: BTreeMap<u64, Vec<u8>>,
    lru_tick: u64,
    keep: usize,
    sep: u8,
    budget: u64,
    used: u64,
    max_item_size: u64,
    cas_enabled: bool,
    no_evict: bool,
    cas_seq: u64,
    oldest_live: u32,
    oldest_cas: u64,
    stats: Counters,
}

fn entry_cost(key_len: usize) -> u64 {
    key_len as u64 + KEY_OVERHEAD
}

fn item_cost(it: &Item) -> u64 {
    it.value.len() as u64
}

fn version_cost(v: &Version) -> u64 {
    v.value.len() as u64 + VERSION_OVERHEAD
}

impl Store {
    pub fn new(config: &Config) -> Result<Store, String> {
        if config.shard_count != 1 {
            return Err(format!(
                "rust-versioned needs exactly one shard (got {}): versions are read as \
                 `key~N`, which the host routes by the whole key; run with -t 1 or -o shards=1",
                config.shard_count
            ));
        }
        let mut keep = 3;
        let mut sep = b'~';
        for item in config.config.split([',', ' ']).filter(|s| !s.is_empty()) {
            match item.split_once('=') {
                Some(("keep", n)) => match n.parse::<usize>() {
                    Ok(n) if (1..=64).contains(&n) => keep = n,
                    _ => return Err(format!("rust-versioned: keep wants 1..=64, got {n:?}")),
                },
                Some(("sep", s)) if s.len() == 1 => sep = s.as_bytes()[0],
                _ => {
                    return Err(format!(
                        "rust-versioned: unknown setting {item:?} (known: keep=N, sep=C)"
                    ))
                }
            }
        }
        Ok(Store {
            map: HashMap::new(),
            lru: BTreeMap::new(),
            lru_tick: 0,
            keep,
            sep,
            budget: config.memory_budget,
            used: 0,
            max_item_size: config.max_item_size.into(),
            cas_enabled: config.cas_enabled,
            no_evict: config.no_evict,
            // a restarted shard must not reuse CAS values its predecessor gave out
            cas_seq: u64::from(config.now) << 20,
            oldest_live: 0,
            oldest_cas: 0,
            stats: Counters::default(),
        })
    }

    fn next_cas(&mut self) -> u64 {
        if !self.cas_enabled {
            return 0;
        }
        self.cas_seq += 1;
        self.cas_seq
    }

    /// memcached's `item_is_flushed`, for an item or a version.
    fn is_flushed(&self, time: u32, cas: u64, now: u32) -> bool {
        if self.oldest_live == 0 || self.oldest_live > now {
            return false;
        }
        time <= self.oldest_live || (self.oldest_cas != 0 && cas != 0 && cas < self.oldest_cas)
    }

    fn touch_lru(&mut self, key: &[u8]) {
        self.lru_tick += 1;
        let tick = self.lru_tick;
        if let Some(e) = self.map.get_mut(key) {
            self.lru.remove(&e.lru);
            e.lru = tick;
            self.lru.insert(tick, key.to_vec());
        }
    }

    fn remove_entry(&mut self, key: &[u8]) {
        if let Some(e) = self.map.remove(key) {
            self.lru.remove(&e.lru);
            self.used -= entry_cost(key.len());
            self.used -= e.item.as_ref().map_or(0, item_cost);
            self.used -= e.history.iter().map(version_cost).sum::<u64>();
        }
    }

    /// Drops what is dead under `key`: an expired or flushed item, flushed
    /// versions, and the whole entry when nothing is left. Counts item
    /// deaths as memcached's lookup does when `count` is set.
    fn clean(&mut self, key: &[u8], now: u32, count: bool) {
        let Some(e) = self.map.get(key) else { return };
        let mut drop_item = false;
        if let Some(it) = &e.item {
            if self.is_flushed(it.time, it.cas, now) {
                drop_item = true;
                if count {
                    self.stats.get_flushed += 1;
                }
            } else if it.exptime != 0 && it.exptime <= now {
                drop_item = true;
                if count {
                    self.stats.get_expired += 1;
                }
            }
        }
        let history_expired = e.item.is_none() && e.exptime != 0 && e.exptime <= now;
        let flushed_versions: Vec<usize> = e
            .history
            .iter()
            .enumerate()
            .filter(|(_, v)| self.is_flushed(v.replaced_at, v.cas, now))
            .map(|(i, _)| i)
            .collect();
        let e = self.map.get_mut(key).expect("entry checked above");
        let mut freed = 0;
        if drop_item {
            // An expired item takes its history with it.
            if let Some(it) = e.item.take() {
                freed += item_cost(&it);
            }
            freed += e.history.drain(..).map(|v| version_cost(&v)).sum::<u64>();
        } else if history_expired {
            freed += e.history.drain(..).map(|v| version_cost(&v)).sum::<u64>();
        } else {
            for i in flushed_versions.into_iter().rev() {
                if let Some(v) = e.history.remove(i) {
                    freed += version_cost(&v);
                }
            }
        }
        let empty = e.item.is_none() && e.history.is_empty();
        self.used -= freed;
        if empty {
            self.remove_entry(key);
        }
    }

    /// The live item under `key`, after dropping dead state.
    fn live(&mut self, key: &[u8], now: u32) -> Option<&mut Item> {
        self.clean(key, now, true);
        self.map.get_mut(key).and_then(|e| e.item.as_mut())
    }

    /// Frees least recently used keys (never `pin`) until `need` more
    /// bytes fit.
    fn make_room(&mut self, need: u64, pin: &[u8], now: u32) -> bool {
        while self.used + need > self.budget {
            let victim = self.lru.values().find(|k| k.as_slice() != pin).cloned();
            let Some(victim) = victim else { return false };
            let e = &self.map[&victim];
            let dead = e.item.as_ref().is_none_or(|it| {
                (it.exptime != 0 && it.exptime <= now) || self.is_flushed(it.time, it.cas, now)
            });
            if dead {
                self.stats.reclaimed += 1;
            } else {
                if self.no_evict {
                    return false;
                }
                self.stats.evictions += 1;
            }
            self.remove_entry(&victim);
        }
        true
    }

    /// Moves the current value of `key` into its history.
    fn save_version(&mut self, key: &[u8], now: u32) {
        let keep = self.keep;
        let Some(e) = self.map.get_mut(key) else {
            return;
        };
        let Some(it) = &e.item else { return };
        let v = Version {
            value: it.value.clone(),
            client_flags: it.client_flags,
            cas: it.cas,
            replaced_at: now,
        };
        let mut delta = version_cost(&v) as i64;
        e.history.push_front(v);
        while e.history.len() > keep {
            if let Some(old) = e.history.pop_back() {
                delta -= version_cost(&old) as i64;
                self.stats.versions_dropped += 1;
            }
        }
        self.used = (self.used as i64 + delta) as u64;
        self.stats.versions_saved += 1;
    }

    /// Writes a new current value for `key`, saving the old one.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        client_flags: u32,
        exptime: u32,
        binary_key: bool,
        now: u32,
    ) -> Result<u64, ()> {
        let (old_value, has_entry, has_item) = match self.map.get(key) {
            Some(e) => (e.item.as_ref().map_or(0, item_cost), true, e.item.is_some()),
            None => (0, false, false),
        };
        // The old value moves into the history.
        let version = if has_item {
            old_value + VERSION_OVERHEAD
        } else {
            0
        };
        let need = value.len() as u64 + version + if has_entry { 0 } else { entry_cost(key.len()) };
        if !self.make_room(need.saturating_sub(old_value), key, now) {
            return Err(());
        }
        self.save_version(key, now);
        if !self.map.contains_key(key) {
            self.map.insert(key.to_vec(), Entry::default());
            self.used += entry_cost(key.len());
        }
        let cas = self.next_cas();
        let e = self.map.get_mut(key).expect("entry inserted above");
        if let Some(old) = e.item.take() {
            self.used -= item_cost(&old);
        }
        let it = Item {
            value,
            client_flags,
            exptime,
            cas,
            time: now,
            fetched: false,
            binary_key,
        };
        self.used += item_cost(&it);
        e.item = Some(it);
        e.exptime = exptime;
        self.stats.total_items += 1;
        self.touch_lru(key);
        Ok(cas)
    }

    fn too_large(&self, key_len: usize, value_len: usize) -> bool {
        let total = (key_len + value_len) as u64;
        MC_OVERHEAD + total > self.max_item_size
            || total + KEY_OVERHEAD + VERSION_OVERHEAD > self.budget
    }

    /// `key~N`: the base key and N, when `key` has that form.
    fn version_ref<'k>(&self, key: &'k [u8]) -> Option<(&'k [u8], usize)> {
        let at = key.iter().rposition(|&b| b == self.sep)?;
        let digits = &key[at + 1..];
        if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        (n >= 1).then_some((&key[..at], n))
    }

    pub fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        let Some(op) = req.op() else {
            return out.error("unknown operation");
        };
        if req.mflags & UNSUPPORTED != 0 {
            return out.error("meta flag not supported by rust-versioned");
        }
        let now = guest::now();
        match op {
            Op::Get | Op::Gat => self.get(op, req, now, out),
            Op::Touch => self.touch(req, now, out),
            Op::Set | Op::Add | Op::Replace | Op::Append | Op::Prepend | Op::Cas => {
                self.store(op, req, now, out)
            }
            Op::Delete => self.delete(req, now, out),
            Op::Incr | Op::Decr => self.arith(op == Op::Incr, req, now, out),
            Op::FlushAll => {
                let when = if req.exptime > 0 { req.exptime } else { now };
                if self.cas_enabled {
                    self.oldest_live = when.wrapping_sub(1);
                    if self.oldest_live <= now {
                        self.oldest_cas = self.next_cas();
                    }
                } else {
                    self.oldest_live = when;
                }
                out.status(Status::Ok)
            }
            Op::MemLimit => {
                self.budget = req.delta;
                if !self.no_evict {
                    self.make_room(0, &[], now);
                }
                out.status(Status::Ok)
            }
        }
    }

    fn get(&mut self, op: Op, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let no_value = req.mflags & mflag::NO_VALUE != 0;
        if self.live(req.key, now).is_none() {
            if let Some((base, n)) = self.version_ref(req.key) {
                return self.get_version(req.key, base, n, no_value, now, out);
            }
        }
        let key = req.key;
        let Some(it) = self.live(key, now) else {
            return out.status(Status::Miss);
        };
        let last_access = it.time;
        let prev_exptime = it.exptime;
        let mut iflags = if it.fetched { iflag::FETCHED } else { 0 };
        if it.binary_key {
            iflags |= iflag::KEY_BINARY;
        }
        if op == Op::Gat {
            it.exptime = req.exptime;
        }
        let bump = req.mflags & mflag::NO_BUMP == 0;
        if bump {
            it.fetched = true;
            it.time = now;
        }
        let exptime = it.exptime;
        out.respond(&Response {
            status: Status::Hit as u8,
            iflags,
            key,
            value: if no_value { &[] } else { &it.value },
            client_flags: it.client_flags,
            exptime,
            cas: it.cas,
            last_access,
            prev_exptime,
        });
        if let Some(e) = self.map.get_mut(key) {
            e.exptime = exptime;
        }
        if bump {
            self.touch_lru(key);
        }
    }

    fn get_version(
        &mut self,
        key: &[u8],
        base: &[u8],
        n: usize,
        no_value: bool,
        now: u32,
        out: &mut Responder<'_>,
    ) {
        self.clean(base, now, false);
        let Some(v) = self.map.get(base).and_then(|e| e.history.get(n - 1)) else {
            self.stats.version_misses += 1;
            return out.status(Status::Miss);
        };
        self.stats.version_reads += 1;
        out.respond(&Response {
            status: Status::Hit as u8,
            iflags: iflag::FETCHED,
            key,
            value: if no_value { &[] } else { &v.value },
            client_flags: v.client_flags,
            cas: v.cas,
            last_access: v.replaced_at,
            ..Default::default()
        });
    }

    fn touch(&mut self, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let Some(it) = self.live(req.key, now) else {
            return out.status(Status::NotFound);
        };
        it.exptime = req.exptime;
        let bump = req.mflags & mflag::NO_BUMP == 0;
        if bump {
            it.fetched = true;
            it.time = now;
        }
        let (cas, exptime) = (it.cas, it.exptime);
        if let Some(e) = self.map.get_mut(req.key) {
            e.exptime = exptime;
        }
        if bump {
            self.touch_lru(req.key);
        }
        out.respond(&Response {
            status: Status::Touched as u8,
            exptime,
            cas,
            ..Default::default()
        });
    }

    fn store(&mut self, op: Op, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let key = req.key;
        let mode = match op {
            Op::Set | Op::Replace if req.cas != 0 => Op::Cas,
            op => op,
        };
        let binary = req.mflags & mflag::KEY_BINARY != 0;
        if self.too_large(key.len(), req.value.len()) {
            // memcached drops the old item when a set fails
            if op == Op::Set && self.live(key, now).is_some() {
                self.save_version(key, now);
                self.drop_item(key);
            }
            return out.status(Status::TooLarge);
        }
        let old = self.live(key, now).map(|it| {
            (
                it.cas,
                it.client_flags,
                it.exptime,
                it.value.clone(),
                it.binary_key,
            )
        });
        let (value, flags, exptime, binary) = match (mode, old) {
            (Op::Add, Some(_)) => {
                if let Some(it) = self.live(key, now) {
                    it.time = now; // memcached promotes the existing item
                }
                return out.status(Status::NotStored);
            }
            (Op::Replace | Op::Append | Op::Prepend, None) => return out.status(Status::NotStored),
            (Op::Cas, None) => return out.status(Status::NotFound),
            (Op::Cas, Some((cas, ..))) if req.cas == 0 || req.cas != cas => {
                return out.status(Status::Exists)
            }
            (Op::Append | Op::Prepend, Some((cas, flags, exptime, old_value, _))) => {
                if req.cas != 0 && req.cas != cas {
                    return out.status(Status::Exists);
                }
                if self.too_large(key.len(), old_value.len() + req.value.len()) {
                    return out.status(Status::NotStored);
                }
                let mut v = Vec::with_capacity(old_value.len() + req.value.len());
                if mode == Op::Append {
                    v.extend_from_slice(&old_value);
                    v.extend_from_slice(req.value);
                } else {
                    v.extend_from_slice(req.value);
                    v.extend_from_slice(&old_value);
                }
                // memcached builds the combined item without the binary mark
                (v, flags, exptime, false)
            }
            _ => (req.value.to_vec(), req.client_flags, req.exptime, binary),
        };
        match self.put(key, value, flags, exptime, binary, now) {
            Ok(cas) => out.stored(cas, exptime),
            Err(()) => {
                if op == Op::Set && self.live(key, now).is_some() {
                    self.save_version(key, now);
                    self.drop_item(key);
                }
                out.status(Status::OutOfMemory)
            }
        }
    }

    /// Removes the current item of `key`, keeping its history.
    fn drop_item(&mut self, key: &[u8]) {
        let Some(e) = self.map.get_mut(key) else {
            return;
        };
        let freed = e.item.take().map_or(0, |it| item_cost(&it));
        let empty = e.history.is_empty();
        self.used -= freed;
        if empty {
            self.remove_entry(key);
        }
    }

    fn delete(&mut self, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let Some(it) = self.live(req.key, now) else {
            return out.status(Status::NotFound);
        };
        let compare = req.cas != 0 || req.mflags & mflag::HAS_CAS != 0;
        if compare && req.cas != it.cas {
            return out.status(Status::Exists);
        }
        let prev_exptime = it.exptime;
        self.save_version(req.key, now);
        self.drop_item(req.key);
        out.respond(&Response {
            status: Status::Deleted as u8,
            prev_exptime,
            ..Default::default()
        });
    }

    fn arith(&mut self, incr: bool, req: &Request<'_>, now: u32, out: &mut Responder<'_>) {
        let Some(it) = self.live(req.key, now) else {
            return out.status(Status::NotFound);
        };
        if it.value.is_empty() {
            return out.status(Status::NonNumeric);
        }
        if req.cas != 0 && req.cas != it.cas {
            return out.status(Status::Exists);
        }
        let Some(n) = parse_u64(&it.value) else {
            return out.status(Status::NonNumeric);
        };
        let n = if incr {
            n.wrapping_add(req.delta)
        } else {
            n.saturating_sub(req.delta)
        };
        let prev_exptime = it.exptime;
        let exptime = if req.mflags & mflag::SET_TTL != 0 {
            req.exptime
        } else {
            prev_exptime
        };
        let flags = it.client_flags;
        let len = it.value.len();
        let mut buf = [0u8; 20];
        let digits = fmt_u64(n, &mut buf);
        // Same length as memcached's in-place update: padded with spaces.
        let mut value = digits.to_vec();
        if value.len() < len {
            value.resize(len, b' ');
        }
        match self.put(req.key, value, flags, exptime, false, now) {
            Ok(cas) => out.respond(&Response {
                status: Status::Number as u8,
                value: digits,
                cas,
                exptime,
                prev_exptime,
                ..Default::default()
            }),
            Err(()) => out.status(Status::OutOfMemory),
        }
    }

    /// Reclaims dead keys from the cold end of the LRU, a bounded slice a
    /// second.
    pub fn tick(&mut self, now: u32) {
        let keys: Vec<Vec<u8>> = self.lru.values().take(256).cloned().collect();
        for k in keys {
            let before = self.map.contains_key(&k);
            self.clean(&k, now, false);
            if before && !self.map.contains_key(&k) {
                self.stats.reclaimed += 1;
            }
        }
    }

    pub fn write_stats(&mut self, group: i32, out: &mut StatsWriter<'_>) {
        if group != wasmcached_sdk::abi::stats_group::GENERAL {
            return;
        }
        let items = self.map.values().filter(|e| e.item.is_some()).count();
        let versions: usize = self.map.values().map(|e| e.history.len()).sum();
        let bytes: usize = self
            .map
            .iter()
            .filter_map(|(k, e)| e.item.as_ref().map(|it| k.len() + it.value.len()))
            .sum();
        out.stat("curr_items", items);
        out.stat("total_items", self.stats.total_items);
        out.stat("bytes", bytes);
        out.stat("evictions", self.stats.evictions);
        out.stat("reclaimed", self.stats.reclaimed);
        out.stat("get_expired", self.stats.get_expired);
        out.stat("get_flushed", self.stats.get_flushed);
        out.stat("versions_kept", versions);
        out.stat("versions_saved", self.stats.versions_saved);
        out.stat("versions_dropped", self.stats.versions_dropped);
        out.stat("version_reads", self.stats.version_reads);
        out.stat("version_misses", self.stats.version_misses);
        out.stat("versioned_bytes_used", self.used);
    }
}

/// memcached's `safe_strtoull` on an item value.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    if v.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < v.len() && is_space(v[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < v.len() && (v[i] == b'+' || v[i] == b'-') {
        neg = v[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut value: u64 = 0;
    while i < v.len() && v[i].is_ascii_digit() {
        value = value.checked_mul(10)?.checked_add(u64::from(v[i] - b'0'))?;
        i += 1;
    }
    if i == start || (i < v.len() && !is_space(v[i]) && v[i] != 0) {
        return None;
    }
    let result = if neg { value.wrapping_neg() } else { value };
    if (result as i64) < 0 && v.iter().take_while(|&&c| c != 0).any(|&c| c == b'-') {
        return None;
    }
    Some(result)
}

impl Plugin for Store {
    fn init(config: &Config) -> Result<Self, String> {
        Store::new(config)
    }

    fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        Store::handle(self, req, out)
    }

    fn tick(&mut self, now: u32) {
        Store::tick(self, now)
    }

    fn stats(&mut self, group: i32, out: &mut StatsWriter<'_>) {
        self.write_stats(group, out)
    }
}

wasmcached_sdk::export_plugin!(Store);

#[cfg(test)]
mod tests {
    //! Native tests through the SDK glue the host uses: requests encoded
    //! with `abi::Request::encode`, run by `guest::Runtime::batch`.
    use super::Store;
    use wasmcached_sdk::abi::{self, init_flag, Init, Op, Request, Status};
    use wasmcached_sdk::guest::{test_clock, Runtime};

    struct Shard(Runtime<Store>);

    fn write_input(rt: &mut Runtime<Store>, bytes: &[u8]) {
        let p = rt.input(bytes.len());
        // SAFETY: `input` returned a buffer of at least `bytes.len()` bytes
        // that stays put until the next call on `rt` (the host's side).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) }
    }

    impl Shard {
        fn new(budget: u64, shard_count: u32, config: &str) -> Result<Shard, i32> {
            test_clock::set(100);
            let mut rt = Runtime::default();
            let mut buf = Vec::new();
            Init {
                abi_version: abi::ABI_VERSION,
                shard_id: 0,
                shard_count,
                flags: init_flag::CAS,
                memory_budget: budget,
                max_item_size: 1 << 20,
                now: 100,
                config: config.as_bytes(),
                hints: &[],
            }
            .encode(&mut buf);
            write_input(&mut rt, &buf);
            match rt.init(buf.len()) {
                0 => Ok(Shard(rt)),
                code => Err(code),
            }
        }

        fn run(&mut self, req: Request<'_>) -> (Status, Vec<u8>) {
            let mut buf = Vec::new();
            abi::begin_batch(&mut buf);
            req.encode(&mut buf);
            abi::set_batch_count(&mut buf, 1);
            write_input(&mut self.0, &buf);
            let out = self.0.batch(buf.len());
            let r = abi::responses(out).unwrap().next().unwrap().unwrap();
            (r.status().unwrap(), r.value.to_vec())
        }

        fn set(&mut self, key: &str, value: &str) -> Status {
            self.run(Request {
                op: Op::Set as u8,
                key: key.as_bytes(),
                value: value.as_bytes(),
                ..Default::default()
            })
            .0
        }

        fn get(&mut self, key: &str) -> Option<String> {
            match self.run(Request {
                op: Op::Get as u8,
                key: key.as_bytes(),
                ..Default::default()
            }) {
                (Status::Hit, v) => Some(String::from_utf8(v).unwrap()),
                (Status::Miss, _) => None,
                other => panic!("get {key}: {other:?}"),
            }
        }
    }

    #[test]
    fn versions_are_kept_newest_first_up_to_keep() {
        let mut s = Shard::new(1 << 20, 1, "keep=2,sep=@").unwrap();
        for v in ["a", "b", "c"] {
            assert_eq!(s.set("k", v), Status::Stored);
        }
        assert_eq!(s.get("k").as_deref(), Some("c"));
        assert_eq!(s.get("k@1").as_deref(), Some("b"));
        assert_eq!(s.get("k@2").as_deref(), Some("a"));
        assert_eq!(s.get("k@3"), None);
        assert_eq!(s.get("k@0"), None, "version numbers start at 1");
    }

    #[test]
    fn expiry_takes_the_history_along() {
        let mut s = Shard::new(1 << 20, 1, "").unwrap();
        assert_eq!(s.set("k", "a"), Status::Stored);
        let r = s.run(Request {
            op: Op::Set as u8,
            key: b"k",
            value: b"b",
            exptime: 105,
            ..Default::default()
        });
        assert_eq!(r.0, Status::Stored);
        assert_eq!(s.get("k~1").as_deref(), Some("a"));
        test_clock::set(105);
        assert_eq!(s.get("k"), None);
        assert_eq!(s.get("k~1"), None);
    }

    #[test]
    fn the_budget_evicts_least_recently_used_keys() {
        let mut s = Shard::new(8 * 1024, 1, "").unwrap();
        let v = "x".repeat(1000);
        for i in 0..20 {
            assert_eq!(s.set(&format!("k{i}"), &v), Status::Stored);
            // keep k0 recently used
            assert!(s.get("k0").is_some(), "k0 evicted at {i}");
        }
        assert_eq!(s.get("k1"), None, "the oldest unused key goes first");
        assert!(s.get("k19").is_some());
    }

    #[test]
    fn config_and_shards_are_checked() {
        assert_eq!(Shard::new(1 << 20, 2, "").err(), Some(3));
        assert_eq!(Shard::new(1 << 20, 1, "keep=0").err(), Some(3));
        assert_eq!(Shard::new(1 << 20, 1, "bogus=1").err(), Some(3));
        assert!(Shard::new(1 << 20, 1, "keep=64, sep=#").is_ok());
    }
}
