//! A native test harness for plugins: drive a [`Plugin`] with requests
//! made by simple calls and look at the answers decoded, under `cargo
//! test` on the host, with no Wasm runtime and no `unsafe`.
//!
//! [`Harness`] goes through the same SDK code as the exports
//! [`export_plugin!`](crate::export_plugin) generates: the init record is
//! encoded and decoded, every request is encoded into a batch (so
//! [`Plugin::prepare`] sees the windows of a multi-request batch), and the
//! response batch is checked as the host checks it before it is decoded
//! into [`Reply`] values. What it does not reproduce is the host: expiry,
//! key lengths and item sizes are whatever the plugin makes of them, and
//! held values ([`Responder::respond_held`](crate::Responder::respond_held))
//! are always copied natively.
//!
//! ```
//! use std::collections::HashMap;
//! use wasmcached_sdk::testing::{Harness, Req};
//! use wasmcached_sdk::{Config, Op, Plugin, Request, Responder, Response, Status};
//!
//! /// Remembers one value per key; answers Error for everything but Get and Set.
//! #[derive(Default)]
//! struct Tiny(HashMap<Vec<u8>, Vec<u8>>);
//!
//! impl Plugin for Tiny {
//!     fn init(_: &Config) -> Result<Self, String> {
//!         Ok(Tiny::default())
//!     }
//!     fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
//!         match req.op() {
//!             Some(Op::Get) => match self.0.get(req.key) {
//!                 Some(v) => out.respond(&Response {
//!                     status: Status::Hit as u8,
//!                     key: req.key,
//!                     value: v,
//!                     ..Default::default()
//!                 }),
//!                 None => out.status(Status::Miss),
//!             },
//!             Some(Op::Set) => {
//!                 self.0.insert(req.key.to_vec(), req.value.to_vec());
//!                 out.stored(0, 0)
//!             }
//!             _ => out.error("not supported"),
//!         }
//!     }
//! }
//!
//! let mut h = Harness::<Tiny>::new();
//! assert_eq!(h.set(b"k", b"v", 0, 0).status, Status::Stored);
//! assert_eq!(h.get(b"k").value, b"v");
//! assert_eq!(h.get(b"other").status, Status::Miss);
//! let r = h.delete(b"k");
//! assert_eq!((r.status, r.message()), (Status::Error, "not supported".into()));
//! // Anything a request record can say, built field by field:
//! let r = h.send(Req::new(Op::Get).key(b"k").mflags(wasmcached_sdk::abi::mflag::NO_BUMP));
//! assert!(r.is_hit());
//! ```

use crate::abi::{self, Init, Item, ItemMeta, Op, Request, Status};
use crate::guest::{test_clock, Config, Plugin, Runtime};

/// The clock a [`Harness`] starts at unless its [`Config`] says otherwise:
/// far enough from 0 that an exptime in the past is easy to write.
pub const START: u32 = 1000;

/// A configuration like a server's with default options and one shard:
/// shard 0 of 1, a 64 MiB budget (`-m 64`), 1 MiB items (`-I 1m`), CAS on,
/// eviction allowed, the clock at [`START`], no `--plugin-config`,
/// memcached's default hints. Change fields with struct update syntax.
pub fn config() -> Config {
    Config {
        shard_id: 0,
        shard_count: 1,
        memory_budget: 64 << 20,
        max_item_size: 1 << 20,
        cas_enabled: true,
        no_evict: false,
        now: START,
        config: String::new(),
        hints: abi::Hints::default(),
    }
}

/// One decoded answer, owned. Fields a status does not use are 0 or empty
/// (see [`Response`](crate::Response) for which status sets which).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status the plugin answered.
    pub status: Status,
    /// [`abi::iflag`] bits.
    pub iflags: u8,
    /// Hit: the key the plugin echoed.
    pub key: Vec<u8>,
    /// Hit: the value; Number: the decimal digits; Error: the message.
    pub value: Vec<u8>,
    /// Hit: the item's client flags.
    pub flags: u32,
    /// Hit, Stored, Touched: the item's exptime (server time, 0 = never).
    pub exptime: u32,
    /// The item's CAS after the request (0 if none).
    pub cas: u64,
    /// Hit: server time of the item's previous access.
    pub last_access: u32,
    /// v2, Hit/Number/Deleted: the item's exptime before the request.
    pub prev_exptime: u32,
}

impl Reply {
    /// Whether the status is Hit.
    pub fn is_hit(&self) -> bool {
        self.status == Status::Hit
    }

    /// A Number answer's value; `None` for another status or digits that
    /// are not a u64 (the host would pass them on as they are).
    pub fn number(&self) -> Option<u64> {
        if self.status != Status::Number {
            return None;
        }
        std::str::from_utf8(&self.value).ok()?.parse().ok()
    }

    /// The value as text (lossy): an Error's message, a Number's digits.
    pub fn message(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// A request record built field by field, for [`Harness::send`] and
/// [`Harness::batch`]: `Req::new(Op::Cas).key(b"k").value(b"v").cas(7)`.
/// Fields not set are 0 or empty, as the host sends them.
#[derive(Clone, Debug, Default)]
pub struct Req<'a>(Request<'a>);

impl<'a> Req<'a> {
    /// A request for `op`.
    pub fn new(op: Op) -> Req<'a> {
        Req::raw_op(op as u8)
    }

    /// A request with any op byte, to see how the plugin answers an op it
    /// does not know (it should answer Error).
    pub fn raw_op(op: u8) -> Req<'a> {
        Req(Request {
            op,
            ..Default::default()
        })
    }

    /// Sets the key.
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.0.key = key;
        self
    }

    /// Sets the value bytes.
    pub fn value(mut self, value: &'a [u8]) -> Self {
        self.0.value = value;
        self
    }

    /// Sets the client flags.
    pub fn flags(mut self, flags: u32) -> Self {
        self.0.client_flags = flags;
        self
    }

    /// Sets the exptime, in server time (0 = never), as the host resolves it.
    pub fn exptime(mut self, exptime: u32) -> Self {
        self.0.exptime = exptime;
        self
    }

    /// Sets the CAS compare value.
    pub fn cas(mut self, cas: u64) -> Self {
        self.0.cas = cas;
        self
    }

    /// Sets `delta` (Incr/Decr amount, MemLimit bytes, recache time).
    pub fn delta(mut self, delta: u64) -> Self {
        self.0.delta = delta;
        self
    }

    /// Sets the [`abi::mflag`] bits.
    pub fn mflags(mut self, mflags: u32) -> Self {
        self.0.mflags = mflags;
        self
    }

    /// Sets `aux` (the exptime of an item VIVIFY creates).
    pub fn aux(mut self, aux: u32) -> Self {
        self.0.aux = aux;
        self
    }

    /// The request record.
    pub fn build(self) -> Request<'a> {
        self.0
    }
}

impl<'a> From<Req<'a>> for Request<'a> {
    fn from(r: Req<'a>) -> Request<'a> {
        r.0
    }
}

/// An item of a dump, owned (see [`Item`] for the fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpedItem {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Client flags.
    pub client_flags: u32,
    /// Server time it expires at; 0 = never.
    pub exptime: u32,
    /// Its CAS value.
    pub cas: u64,
    /// Server time of its last store or access.
    pub last_access: u32,
    /// [`Item::IFLAGS`] bits.
    pub iflags: u8,
    /// v7: its recency in the plugin's eviction policy.
    pub refs: u8,
}

impl DumpedItem {
    /// The item as a record, borrowing from `self`.
    pub fn as_item(&self) -> Item<'_> {
        Item {
            key: &self.key,
            value: &self.value,
            client_flags: self.client_flags,
            exptime: self.exptime,
            cas: self.cas,
            last_access: self.last_access,
            iflags: self.iflags,
            refs: self.refs,
        }
    }
}

/// An item of a listing ([`Plugin::iter`]), owned (see [`ItemMeta`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListedItem {
    /// The key.
    pub key: Vec<u8>,
    /// Server time it expires at; 0 = never.
    pub exptime: u32,
    /// Server time of its last store or access.
    pub last_access: u32,
    /// Its CAS value.
    pub cas: u64,
    /// Client flags.
    pub client_flags: u32,
    /// The value's length.
    pub value_len: u32,
    /// Its size as the plugin counts it; 0 = unknown.
    pub size: u32,
    /// [`ItemMeta::IFLAGS`] bits.
    pub iflags: u8,
    /// Its slab class; 0 = none.
    pub class: u8,
}

/// How a [`Harness::load`] ended, as `wmc_load` tells the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Every item was taken (stored, or dropped as expired or too large).
    Ok,
    /// [`LoadError::Full`](crate::LoadError::Full): the host stops loading.
    Full,
    /// The plugin does not load items.
    Unsupported,
}

/// One shard's instance of plugin `P`, driven natively. See the [module
/// docs](self).
///
/// The clock ([`crate::guest::now`]) is per thread: a harness sets it when
/// it starts and when told to ([`Harness::set_now`], [`Harness::advance`]).
/// Two harnesses on one thread share it.
pub struct Harness<P: Plugin> {
    rt: Runtime<P>,
    buf: Vec<u8>,
}

impl<P: Plugin> Harness<P> {
    /// Starts the plugin with [`config()`]; panics if its `init` refuses.
    pub fn new() -> Harness<P> {
        Harness::start(&config()).unwrap_or_else(|e| panic!("Plugin::init refused: {e}"))
    }

    /// Starts the plugin with `config`, through the init record the host
    /// would write (so the config string and hints take the trip the real
    /// ones take), after setting the clock to `config.now`. An `Err` holds
    /// what `init` returned (which the SDK logs).
    pub fn start(config: &Config) -> Result<Harness<P>, String> {
        test_clock::set(config.now);
        let mut hints = Vec::new();
        config.hints.encode(&mut hints);
        let flags = if config.cas_enabled {
            abi::init_flag::CAS
        } else {
            0
        } | if config.no_evict {
            abi::init_flag::NO_EVICT
        } else {
            0
        };
        let mut init = Vec::new();
        Init {
            abi_version: abi::ABI_VERSION,
            shard_id: config.shard_id,
            shard_count: config.shard_count,
            flags,
            memory_budget: config.memory_budget,
            max_item_size: config.max_item_size,
            now: config.now,
            config: config.config.as_bytes(),
            hints: &hints,
        }
        .encode(&mut init);
        let mut rt = Runtime::<P>::default();
        rt.set_input(&init);
        // Only the refusal's own line, not what the plugin logged earlier.
        drop(test_clock::take_logs());
        match rt.init(init.len()) {
            0 => Ok(Harness {
                rt,
                buf: Vec::new(),
            }),
            3 => Err(test_clock::take_logs()
                .into_iter()
                .rev()
                .find(|(level, _)| *level == abi::log_level::ERROR)
                .map_or_else(String::new, |(_, msg)| msg)),
            code => unreachable!("wmc_init refused a well-formed record ({code})"),
        }
    }

    /// The plugin itself, to look at its state.
    pub fn plugin(&mut self) -> &mut P {
        self.rt.plugin_mut().expect("init accepted")
    }

    /// Sends one request in a batch of its own; its answer.
    pub fn send<'a>(&mut self, req: impl Into<Request<'a>>) -> Reply {
        let mut r = self.batch([req.into()]);
        r.pop().expect("one answer per request")
    }

    /// Sends `reqs` as one batch (what a multiget or a pipeline makes):
    /// the answers, in order. Panics if the response batch is one the host
    /// would refuse.
    pub fn batch<'a>(&mut self, reqs: impl IntoIterator<Item = Request<'a>>) -> Vec<Reply> {
        abi::begin_batch(&mut self.buf);
        let mut count = 0;
        for r in reqs {
            r.encode(&mut self.buf);
            count += 1;
        }
        abi::set_batch_count(&mut self.buf, count);
        self.rt.set_input(&self.buf);
        let out = self.rt.batch(self.buf.len());
        if let Err(e) = abi::check_responses(out, None, count) {
            panic!("the host would refuse this response batch: {e}");
        }
        abi::responses(out)
            .expect("checked")
            .map(|r| {
                let r = r.expect("checked");
                Reply {
                    status: r.status().expect("checked"),
                    iflags: r.iflags,
                    key: r.key.to_vec(),
                    value: r.value.to_vec(),
                    flags: r.client_flags,
                    exptime: r.exptime,
                    cas: r.cas,
                    last_access: r.last_access,
                    prev_exptime: r.prev_exptime,
                }
            })
            .collect()
    }

    /// `get key` (Op::Get): Hit or Miss.
    pub fn get(&mut self, key: &[u8]) -> Reply {
        self.send(Req::new(Op::Get).key(key))
    }

    /// Gets several keys in one batch, as a multiget does.
    pub fn get_many(&mut self, keys: &[&[u8]]) -> Vec<Reply> {
        self.batch(keys.iter().map(|k| Req::new(Op::Get).key(k).build()))
    }

    /// `set key flags exptime` with `value`; `exptime` in server time
    /// (0 = never; see [`Harness::now`]).
    pub fn set(&mut self, key: &[u8], value: &[u8], flags: u32, exptime: u32) -> Reply {
        self.store(Op::Set, key, value, flags, exptime)
    }

    /// A store op (Set, Add, Replace, Append, Prepend) without a CAS.
    pub fn store(&mut self, op: Op, key: &[u8], value: &[u8], flags: u32, exptime: u32) -> Reply {
        self.send(
            Req::new(op)
                .key(key)
                .value(value)
                .flags(flags)
                .exptime(exptime),
        )
    }

    /// `cas key flags exptime cas` with `value`.
    pub fn cas(&mut self, key: &[u8], value: &[u8], flags: u32, exptime: u32, cas: u64) -> Reply {
        self.send(
            Req::new(Op::Cas)
                .key(key)
                .value(value)
                .flags(flags)
                .exptime(exptime)
                .cas(cas),
        )
    }

    /// `delete key`: Deleted or NotFound.
    pub fn delete(&mut self, key: &[u8]) -> Reply {
        self.send(Req::new(Op::Delete).key(key))
    }

    /// `incr key delta`: Number, NotFound or NonNumeric.
    pub fn incr(&mut self, key: &[u8], delta: u64) -> Reply {
        self.send(Req::new(Op::Incr).key(key).delta(delta))
    }

    /// `decr key delta`.
    pub fn decr(&mut self, key: &[u8], delta: u64) -> Reply {
        self.send(Req::new(Op::Decr).key(key).delta(delta))
    }

    /// `touch key exptime`: Touched or NotFound.
    pub fn touch(&mut self, key: &[u8], exptime: u32) -> Reply {
        self.send(Req::new(Op::Touch).key(key).exptime(exptime))
    }

    /// `gat exptime key`: Hit (with the new exptime) or Miss.
    pub fn gat(&mut self, key: &[u8], exptime: u32) -> Reply {
        self.send(Req::new(Op::Gat).key(key).exptime(exptime))
    }

    /// `flush_all` at server time `when` (0 = now): Ok.
    pub fn flush_all(&mut self, when: u32) -> Reply {
        self.send(Req::new(Op::FlushAll).exptime(when))
    }

    /// `cache_memlimit`: the shard's new budget in bytes; Ok.
    pub fn mem_limit(&mut self, bytes: u64) -> Reply {
        self.send(Req::new(Op::MemLimit).delta(bytes))
    }

    /// The server clock as the plugin sees it.
    pub fn now(&self) -> u32 {
        crate::guest::now()
    }

    /// Sets the clock, calling nothing on the plugin.
    pub fn set_now(&mut self, now: u32) {
        test_clock::set(now);
    }

    /// Moves the clock `secs` seconds on, then calls [`Plugin::tick`] once
    /// with the new time (the host ticks once a second; one tick is what a
    /// store's housekeeping needs to see the jump). Returns the new time.
    pub fn advance(&mut self, secs: u32) -> u32 {
        let now = self.now() + secs;
        test_clock::set(now);
        self.rt.tick(now);
        now
    }

    /// Calls [`Plugin::timer`] with `token`, as the host does when a timer
    /// fires (whether or not one was set: see [`test_clock::timers`]).
    pub fn fire_timer(&mut self, token: u64) {
        self.rt.timer(token);
    }

    /// The `name value` lines [`Plugin::stats`] writes for `group`
    /// ([`abi::stats_group`]), split at the first space.
    pub fn stats(&mut self, group: i32) -> Vec<(String, String)> {
        let text = String::from_utf8_lossy(self.rt.stats(group)).into_owned();
        // A line without a space (a type declaration such as `#max`) is
        // not a stat: the host skips it too.
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Every item, through the dump ([`Plugin::dump`]) in chunks of at
    /// most `chunk_bytes` (the first item of a chunk always fits);
    /// `None` if the plugin does not dump. Panics if a chunk is malformed,
    /// the dump fails, or it runs past a million chunks.
    pub fn dump(&mut self, chunk_bytes: usize) -> Option<Vec<DumpedItem>> {
        let mut all = Vec::new();
        for _ in 0..1_000_000 {
            let chunk = match self.rt.dump(chunk_bytes) {
                Ok(chunk) => chunk,
                Err(abi::dump_status::UNSUPPORTED) => return None,
                Err(code) => panic!("the dump failed ({code})"),
            };
            if chunk.is_empty() {
                return Some(all);
            }
            assert!(
                abi::check_items(chunk).is_some(),
                "malformed dump chunk ({} bytes)",
                chunk.len()
            );
            for item in abi::items(chunk).expect("checked") {
                let i = item.expect("checked");
                all.push(DumpedItem {
                    key: i.key.to_vec(),
                    value: i.value.to_vec(),
                    client_flags: i.client_flags,
                    exptime: i.exptime,
                    cas: i.cas,
                    last_access: i.last_access,
                    iflags: i.iflags,
                    refs: i.refs,
                });
            }
        }
        panic!("the dump did not end after a million chunks");
    }

    /// Loads `items` in one chunk, as `wmc_load` does ([`Plugin::load`]).
    pub fn load(&mut self, items: &[DumpedItem]) -> LoadOutcome {
        abi::begin_batch(&mut self.buf);
        for i in items {
            i.as_item().encode(&mut self.buf);
        }
        abi::set_batch_count(&mut self.buf, items.len() as u32);
        self.rt.set_input(&self.buf);
        match self.rt.load(self.buf.len()) {
            abi::load_status::OK => LoadOutcome::Ok,
            abi::load_status::FULL => LoadOutcome::Full,
            abi::load_status::UNSUPPORTED => LoadOutcome::Unsupported,
            code => unreachable!("a well-formed chunk was answered {code}"),
        }
    }

    /// Every item, through the listing ([`Plugin::iter`]) in chunks of at
    /// most `chunk_bytes`, following the cursor as the host does; `None`
    /// if the plugin does not list. Panics if a chunk is malformed or
    /// fails, or the listing runs past a million chunks.
    pub fn list(&mut self, chunk_bytes: usize) -> Option<Vec<ListedItem>> {
        let mut all = Vec::new();
        let mut cursor = 0;
        for _ in 0..1_000_000 {
            let chunk = match self.rt.iter(cursor, chunk_bytes) {
                Ok(chunk) => chunk,
                Err(abi::iter_status::UNSUPPORTED) => return None,
                Err(code) => panic!("the listing failed ({code})"),
            };
            assert!(
                abi::check_iter_chunk(chunk).is_some(),
                "malformed listing chunk ({} bytes)",
                chunk.len()
            );
            let (next, records) = abi::iter_chunk(chunk).expect("checked");
            all.extend(records.map(|r| {
                let m: ItemMeta<'_> = r.expect("checked");
                ListedItem {
                    key: m.key.to_vec(),
                    exptime: m.exptime,
                    last_access: m.last_access,
                    cas: m.cas,
                    client_flags: m.client_flags,
                    value_len: m.value_len,
                    size: m.size,
                    iflags: m.iflags,
                    class: m.class,
                }
            }));
            if next == 0 {
                return Some(all);
            }
            cursor = next;
        }
        panic!("the listing did not end after a million chunks");
    }

    /// The names of the metrics the plugin registered, as the host reads
    /// them after [`Plugin::update_metrics`]; panics if the block is one the
    /// host would refuse. Values: read the metric statics themselves.
    pub fn metric_names(&mut self) -> Vec<String> {
        let block = self.rt.metrics();
        if block.is_empty() {
            return Vec::new();
        }
        match abi::metrics::metric_descriptors(block) {
            Ok(d) => d.iter().map(|d| d.name.to_string()).collect(),
            Err(e) => panic!("the host would refuse the metrics block: {e}"),
        }
    }
}

impl<P: Plugin> Default for Harness<P> {
    fn default() -> Self {
        Harness::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{DumpWriter, IterWriter, LoadError, StatsWriter};
    use crate::{Responder, Response};
    use std::collections::BTreeMap;

    /// A small, complete-enough store to drive every harness call: items
    /// with flags, exptime and CAS; Get/Set/Add/Delete/Incr/Touch/FlushAll;
    /// dump, load, listing and stats; and what it saw, to look at.
    #[derive(Default)]
    struct Probe {
        items: BTreeMap<Vec<u8>, (Vec<u8>, u32, u32, u64)>,
        next_cas: u64,
        config: String,
        budget: u64,
        prepared: Vec<usize>,
        ticks: Vec<u32>,
        timers: Vec<u64>,
    }

    impl Probe {
        fn live(&self, key: &[u8]) -> Option<&(Vec<u8>, u32, u32, u64)> {
            let now = crate::guest::now();
            self.items
                .get(key)
                .filter(|(_, _, exp, _)| *exp == 0 || *exp > now)
        }
    }

    impl Plugin for Probe {
        fn init(c: &Config) -> Result<Self, String> {
            if c.config == "refuse" {
                return Err("told to refuse".into());
            }
            Ok(Probe {
                config: format!("{} {}", c.config, c.hints.chunk_size),
                budget: c.memory_budget,
                ..Default::default()
            })
        }

        fn prepare(&mut self, batch: abi::Requests<'_>) {
            self.prepared.push(batch.left() as usize);
        }

        fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
            let Some(op) = req.op() else {
                return out.error("unknown op");
            };
            match op {
                Op::Get => match self.live(req.key) {
                    Some((v, f, e, c)) => out.respond(&Response {
                        status: Status::Hit as u8,
                        key: req.key,
                        value: v,
                        client_flags: *f,
                        exptime: *e,
                        cas: *c,
                        ..Default::default()
                    }),
                    None => out.status(Status::Miss),
                },
                Op::Set | Op::Add => {
                    if op == Op::Add && self.live(req.key).is_some() {
                        return out.status(Status::NotStored);
                    }
                    self.next_cas += 1;
                    let item = (
                        req.value.to_vec(),
                        req.client_flags,
                        req.exptime,
                        self.next_cas,
                    );
                    self.items.insert(req.key.to_vec(), item);
                    out.stored(self.next_cas, req.exptime)
                }
                Op::Delete => match self.items.remove(req.key) {
                    Some(_) => out.status(Status::Deleted),
                    None => out.status(Status::NotFound),
                },
                Op::Incr => match self.items.get_mut(req.key) {
                    Some((v, ..)) => match std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        Some(n) => {
                            let n = n.wrapping_add(req.delta);
                            *v = n.to_string().into_bytes();
                            out.number(n, 0)
                        }
                        None => out.status(Status::NonNumeric),
                    },
                    None => out.status(Status::NotFound),
                },
                Op::Touch => match self.items.get_mut(req.key) {
                    Some(item) => {
                        item.2 = req.exptime;
                        out.respond(&Response {
                            status: Status::Touched as u8,
                            exptime: req.exptime,
                            ..Default::default()
                        })
                    }
                    None => out.status(Status::NotFound),
                },
                Op::FlushAll => {
                    self.items.clear();
                    out.status(Status::Ok)
                }
                Op::MemLimit => {
                    self.budget = req.delta;
                    out.status(Status::Ok)
                }
                _ => out.error("not supported"),
            }
        }

        fn tick(&mut self, now: u32) {
            self.ticks.push(now);
        }

        fn timer(&mut self, token: u64) {
            self.timers.push(token);
        }

        fn stats(&mut self, group: i32, out: &mut StatsWriter<'_>) {
            if group == abi::stats_group::GENERAL {
                out.max("items", self.items.len() as u64);
                out.stat("config", &self.config);
            }
        }

        fn dump(&mut self, out: &mut DumpWriter<'_>) -> bool {
            let from = out.cursor() as usize;
            let mut at = from;
            for (k, (v, f, e, c)) in self.items.iter().skip(from) {
                let item = Item {
                    key: k,
                    value: v,
                    client_flags: *f,
                    exptime: *e,
                    cas: *c,
                    ..Default::default()
                };
                if !out.item(&item) {
                    break;
                }
                at += 1;
            }
            out.set_cursor(at as u64);
            true
        }

        fn load(&mut self, item: &Item<'_>) -> Result<(), LoadError> {
            if item.key == b"full" {
                return Err(LoadError::Full);
            }
            let v = (
                item.value.to_vec(),
                item.client_flags,
                item.exptime,
                item.cas,
            );
            self.items.insert(item.key.to_vec(), v);
            Ok(())
        }

        fn iter(&mut self, out: &mut IterWriter<'_>) -> bool {
            let from = out.cursor() as usize;
            let mut at = from;
            for (k, (v, ..)) in self.items.iter().skip(from) {
                let meta = ItemMeta {
                    key: k,
                    value_len: v.len() as u32,
                    ..Default::default()
                };
                if !out.item(&meta) {
                    break;
                }
                at += 1;
            }
            out.set_cursor(if at == self.items.len() { 0 } else { at as u64 });
            true
        }
    }

    /// Answers nothing, or twice, or a status the ABI does not define.
    struct Rude;

    impl Plugin for Rude {
        fn init(_: &Config) -> Result<Self, String> {
            Ok(Rude)
        }
        fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
            match req.key {
                b"silent" => {}
                b"twice" => {
                    out.status(Status::Miss);
                    out.error("second answer");
                }
                _ => out.respond(&Response {
                    status: 200,
                    ..Default::default()
                }),
            }
        }
    }

    #[test]
    fn stores_and_reads_back_with_flags_exptime_and_cas() {
        let mut h = Harness::<Probe>::new();
        assert_eq!(h.now(), START);
        let s = h.set(b"k", b"v", 42, START + 10);
        assert_eq!(
            (s.status, s.cas, s.exptime),
            (Status::Stored, 1, START + 10)
        );
        let r = h.get(b"k");
        assert!(r.is_hit());
        assert_eq!(
            (
                r.key.as_slice(),
                r.value.as_slice(),
                r.flags,
                r.exptime,
                r.cas
            ),
            (&b"k"[..], &b"v"[..], 42, START + 10, 1)
        );
        assert_eq!(h.store(Op::Add, b"k", b"x", 0, 0).status, Status::NotStored);
        assert_eq!(h.get(b"missing").status, Status::Miss);
        assert_eq!(h.delete(b"k").status, Status::Deleted);
        assert_eq!(h.delete(b"k").status, Status::NotFound);
        let t = h.touch(b"k", 5);
        assert_eq!(t.status, Status::NotFound);
    }

    #[test]
    fn the_clock_moves_and_ticks() {
        let mut h = Harness::<Probe>::new();
        h.set(b"k", b"v", 0, START + 10);
        assert_eq!(h.advance(9), START + 9);
        assert!(h.get(b"k").is_hit());
        h.advance(1);
        assert_eq!(h.get(b"k").status, Status::Miss);
        assert_eq!(h.plugin().ticks, [START + 9, START + 10]);
        h.set_now(5);
        assert_eq!((h.now(), crate::guest::now()), (5, 5));
        assert_eq!(h.plugin().ticks.len(), 2, "set_now does not tick");
        h.fire_timer(77);
        assert_eq!(h.plugin().timers, [77]);
    }

    #[test]
    fn numbers_errors_and_unknown_ops_decode() {
        let mut h = Harness::<Probe>::new();
        h.set(b"n", b"18446744073709551615", 0, 0);
        let r = h.incr(b"n", 2);
        assert_eq!(
            (r.status, r.number(), r.message()),
            (Status::Number, Some(1), "1".into())
        );
        h.set(b"t", b"text", 0, 0);
        assert_eq!(h.incr(b"t", 1).status, Status::NonNumeric);
        assert_eq!(h.incr(b"t", 1).number(), None);
        let e = h.decr(b"n", 1);
        assert_eq!(
            (e.status, e.message()),
            (Status::Error, "not supported".into())
        );
        let u = h.send(Req::raw_op(99).key(b"n"));
        assert_eq!(
            (u.status, u.message()),
            (Status::Error, "unknown op".into())
        );
        assert_eq!(h.mem_limit(1 << 20).status, Status::Ok);
        assert_eq!(h.plugin().budget, 1 << 20);
        assert_eq!(h.flush_all(0).status, Status::Ok);
        assert_eq!(h.get(b"n").status, Status::Miss);
    }

    #[test]
    fn a_request_built_field_by_field_arrives_as_built() {
        struct Echo;
        impl Plugin for Echo {
            fn init(_: &Config) -> Result<Self, String> {
                Ok(Echo)
            }
            fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
                let text = format!("{req:?}");
                out.error(&text)
            }
        }
        let mut h = Harness::<Echo>::new();
        let built = Req::new(Op::Gat)
            .key(b"k")
            .value(b"v")
            .flags(1)
            .exptime(2)
            .cas(3)
            .delta(4)
            .mflags(5)
            .aux(6)
            .build();
        let expected = Request {
            op: Op::Gat as u8,
            key: b"k",
            value: b"v",
            client_flags: 1,
            exptime: 2,
            cas: 3,
            delta: 4,
            mflags: 5,
            aux: 6,
        };
        assert_eq!(built, expected);
        assert_eq!(h.send(built).message(), format!("{expected:?}"));
    }

    #[test]
    fn a_batch_answers_in_order_and_is_prepared_in_windows() {
        let mut h = Harness::<Probe>::new();
        for i in 0..40u8 {
            h.set(&[b'k', i], &[i], 0, 0);
        }
        assert!(h.plugin().prepared.is_empty(), "one request: no prepare");
        let keys: Vec<[u8; 2]> = (0..40u8).map(|i| [b'k', i]).collect();
        let mut asked: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        asked.insert(3, b"missing");
        let r = h.get_many(&asked);
        assert_eq!(r.len(), 41);
        assert_eq!(r[3].status, Status::Miss);
        assert_eq!(r[40].value, [39]);
        assert_eq!(r[2].value, [2]);
        assert_eq!(h.plugin().prepared, [32, 9]);
    }

    #[test]
    fn config_and_hints_reach_init_and_a_refusal_is_an_err() {
        let mut c = config();
        c.config = "hello".into();
        c.hints.chunk_size = 96;
        let mut h = Harness::<Probe>::start(&c).unwrap();
        let stats = h.stats(abi::stats_group::GENERAL);
        assert!(
            stats.contains(&("config".into(), "hello 96".into())),
            "{stats:?}"
        );
        // A typed stat's declaration line is not a stat.
        assert_eq!(stats[0], ("items".into(), "0".into()), "{stats:?}");
        assert!(h.stats(abi::stats_group::SLABS).is_empty());
        c.config = "refuse".into();
        assert_eq!(
            Harness::<Probe>::start(&c).err().as_deref(),
            Some("told to refuse")
        );
    }

    #[test]
    fn dump_load_and_listing_walk_every_chunk() {
        let mut h = Harness::<Probe>::new();
        for i in 0..10u8 {
            h.set(&[b'a' + i], &[i; 100], u32::from(i), 0);
        }
        // 150-byte chunks hold one item each: ten chunks, then the end.
        let dumped = h.dump(150).unwrap();
        assert_eq!(dumped.len(), 10);
        assert_eq!(
            (dumped[3].key.as_slice(), dumped[3].client_flags),
            (&b"d"[..], 3)
        );
        let mut other = Harness::<Probe>::new();
        assert_eq!(other.load(&dumped), LoadOutcome::Ok);
        assert_eq!(other.get(b"j").value, [9; 100]);
        let full = DumpedItem {
            key: b"full".to_vec(),
            ..Default::default()
        };
        assert_eq!(other.load(&[full]), LoadOutcome::Full);
        let listed = h
            .list(abi::ITER_HEADER + abi::ITEM_META_HEADER + 1)
            .unwrap();
        let keys: Vec<u8> = listed.iter().map(|l| l.key[0]).collect();
        assert_eq!(keys, b"abcdefghij");
        assert!(listed.iter().all(|l| l.value_len == 100));
        let mut rude = Harness::<Rude>::new();
        assert_eq!(rude.dump(1 << 20), None);
        assert_eq!(rude.list(1 << 20), None);
        let d = DumpedItem::default();
        assert_eq!(rude.load(&[d]), LoadOutcome::Unsupported);
    }

    #[test]
    fn the_sdk_answers_for_a_silent_plugin_and_ignores_a_second_answer() {
        let mut h = Harness::<Rude>::new();
        let r = h.get(b"silent");
        assert_eq!(
            (r.status, r.message()),
            (Status::Error, "plugin gave no answer".into())
        );
        assert_eq!(h.get(b"twice").status, Status::Miss);
    }

    #[test]
    #[should_panic(
        expected = "the host would refuse this response batch: unknown response status 200"
    )]
    fn an_answer_the_host_would_refuse_panics() {
        Harness::<Rude>::new().get(b"k");
    }

    #[test]
    fn metrics_are_listed_after_update_metrics() {
        use crate::metrics::{register, Gauge};
        static SEEN: Gauge = Gauge::new("harness_probe_items", "items the probe holds");
        struct Counted(u32);
        impl Plugin for Counted {
            fn init(_: &Config) -> Result<Self, String> {
                register(&SEEN);
                Ok(Counted(0))
            }
            fn handle(&mut self, _: &Request<'_>, out: &mut Responder<'_>) {
                self.0 += 1;
                out.stored(0, 0)
            }
            fn update_metrics(&mut self) {
                SEEN.set(i64::from(self.0));
            }
        }
        let mut h = Harness::<Counted>::new();
        h.set(b"a", b"1", 0, 0);
        h.set(b"b", b"2", 0, 0);
        assert!(h
            .metric_names()
            .contains(&"harness_probe_items".to_string()));
        assert_eq!(SEEN.get(), 2);
    }
}
