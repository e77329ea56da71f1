//! The SDK's starter store (guest-sdk/examples/starter/src/lib.rs) as a
//! component of the `wasmcached:store` WIT world (wit/store.wit), with
//! wit-bindgen instead of the core byte ABI: Get, Set, Delete and an
//! immediate FlushAll, with client flags, expiry, CAS values and a memory
//! budget. It never evicts: a full store answers out of memory. Everything
//! else is answered Error. The store's logic, statuses and errors are the
//! starter's, line for line; only the way requests come in and answers go
//! out differs: records whose keys and values are spans of one byte list a
//! batch (world version 2), read and written through [`Req`] and [`Out`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use wasmcached_abi::{iflag, mflag, stats_group, Op, Status};

/// The world's types and exports, generated from wit/store.wit.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/store.wit",
        world: "store",
    });
}

use bindings::wasmcached::store::types::{self, Answers, Config, Request, Response, Span};
use bindings::Guest;

/// The world version this plugin was written for.
const WIT_VERSION: u32 = 2;

/// Request flags this store may ignore: it has no stale items and hands out
/// no recache tokens (META_GET, NO_TOKEN), and makes no `watch` reports
/// (LOG_LOOKUP, LOG_EVICTIONS). NO_VALUE and NO_BUMP it honours; any other
/// bit asks for something it does not do.
const IGNORED: u32 = mflag::META_GET | mflag::NO_TOKEN | mflag::LOG_LOOKUP | mflag::LOG_EVICTIONS;
const HONOURED: u32 = mflag::NO_VALUE | mflag::NO_BUMP;

/// One stored value and what memcached keeps with it.
struct Item {
    value: Vec<u8>,
    flags: u32,
    /// Server time it expires at; 0 = never.
    exptime: u32,
    cas: u64,
    last_access: u32,
    fetched: bool,
}

impl Item {
    fn live(&self, now: u32) -> bool {
        self.exptime == 0 || self.exptime > now
    }
}

/// What an item costs against the budget: its bytes and a rough overhead.
fn cost(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len() + 64) as u64
}

/// A request with its key and value as the bytes its spans point at in
/// the batch's data.
struct Req<'a> {
    key: &'a [u8],
    value: &'a [u8],
    r: &'a Request,
}

impl<'a> Req<'a> {
    /// A span outside `data` (the host never sends one) traps.
    fn new(data: &'a [u8], r: &'a Request) -> Self {
        let bytes = |s: Span| &data[s.offset as usize..][..s.len as usize];
        Req {
            key: bytes(r.key),
            value: bytes(r.value),
            r,
        }
    }
}

impl std::ops::Deref for Req<'_> {
    type Target = Request;
    fn deref(&self) -> &Request {
        self.r
    }
}

/// The bytes the batch's answers point into.
struct Out {
    data: Vec<u8>,
}

impl Out {
    /// Sized as the last batch's answers were: the host takes the bytes
    /// away after every batch, and growing them a hit at a time cost a
    /// tenth of a 16-get batch's time.
    fn new() -> Self {
        Out {
            data: Vec::with_capacity(OUT_HINT.get()),
        }
    }

    /// Appends `bytes`; their span, for a response's `value`.
    fn push(&mut self, bytes: &[u8]) -> Span {
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        Span {
            offset,
            len: bytes.len() as u32,
        }
    }
}

const NO_BYTES: Span = Span { offset: 0, len: 0 };

/// A bare status: only `status` set, as the SDK's `Responder::status`.
fn status(status: Status) -> Response {
    Response {
        status: status as u8,
        iflags: 0,
        value: NO_BYTES,
        client_flags: 0,
        exptime: 0,
        cas: 0,
        last_access: 0,
        prev_exptime: 0,
    }
}

/// Status Error with `msg` as the value, as the SDK's `Responder::error`.
fn error(out: &mut Out, msg: &str) -> Response {
    Response {
        value: out.push(msg.as_bytes()),
        ..status(Status::Error)
    }
}

/// Status Stored with the new CAS and exptime, as the SDK's
/// `Responder::stored`.
fn stored(cas: u64, exptime: u32) -> Response {
    Response {
        cas,
        exptime,
        ..status(Status::Stored)
    }
}

/// The store of one shard (the server runs one instance per shard).
pub struct KvStore {
    items: HashMap<Vec<u8>, Item>,
    next_cas: u64,
    used: u64,
    budget: u64,
    max_item_size: usize,
}

impl KvStore {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(KvStore {
            items: HashMap::new(),
            next_cas: 0,
            used: 0,
            budget: config.memory_budget,
            max_item_size: config.max_item_size as usize,
        })
    }

    fn handle(&mut self, req: &Req<'_>, out: &mut Out) -> Response {
        if req.mflags & !(IGNORED | HONOURED) != 0 {
            return error(out, "meta flag not supported by this store");
        }
        match Op::from_u8(req.op) {
            Some(Op::Get) => self.get(req, out),
            // A Set with a CAS value is a compare-and-swap, which this store
            // does not do.
            Some(Op::Set) if req.cas == 0 => self.set(req),
            Some(Op::Delete) if req.cas == 0 && req.mflags & mflag::HAS_CAS == 0 => {
                match self.remove(req.key) {
                    Some(item) if item.live(now()) => status(Status::Deleted),
                    _ => status(Status::NotFound),
                }
            }
            // Only `flush_all` without a delay (exptime 0 = now).
            Some(Op::FlushAll) if req.exptime == 0 => {
                self.items.clear();
                self.used = 0;
                status(Status::Ok)
            }
            Some(Op::MemLimit) => {
                self.budget = req.delta;
                status(Status::Ok)
            }
            _ => error(out, "not supported by this store"),
        }
    }

    fn stats(&mut self, group: i32) -> Vec<(String, String)> {
        // memcached's names: `stats` shows them in their usual places.
        let mut out = Vec::new();
        if group == stats_group::GENERAL {
            out.push(("curr_items".into(), self.items.len().to_string()));
            out.push(("bytes".into(), self.used.to_string()));
        }
        out
    }

    fn get(&mut self, req: &Req<'_>, out: &mut Out) -> Response {
        let now = now();
        let Some(item) = self.items.get_mut(req.key).filter(|i| i.live(now)) else {
            return status(Status::Miss);
        };
        let no_value = req.mflags & mflag::NO_VALUE != 0;
        // The host echoes the request's key: a response has no key of its own.
        let answer = Response {
            status: Status::Hit as u8,
            iflags: if item.fetched { iflag::FETCHED } else { 0 },
            value: if no_value {
                NO_BYTES
            } else {
                out.push(&item.value)
            },
            client_flags: item.flags,
            exptime: item.exptime,
            cas: item.cas,
            last_access: item.last_access,
            prev_exptime: item.exptime,
        };
        if req.mflags & mflag::NO_BUMP == 0 {
            item.fetched = true;
            item.last_access = now;
        }
        answer
    }

    fn set(&mut self, req: &Req<'_>) -> Response {
        // A set that fails still removes the old value, as in memcached.
        self.remove(req.key);
        if req.key.len() + req.value.len() > self.max_item_size {
            return status(Status::TooLarge);
        }
        let cost = cost(req.key, req.value);
        if self.used + cost > self.budget {
            self.drop_expired();
        }
        if self.used + cost > self.budget {
            return status(Status::OutOfMemory);
        }
        self.next_cas += 1;
        let item = Item {
            value: req.value.to_vec(),
            flags: req.client_flags,
            exptime: req.exptime,
            cas: self.next_cas,
            last_access: now(),
            fetched: false,
        };
        self.items.insert(req.key.to_vec(), item);
        self.used += cost;
        stored(self.next_cas, req.exptime)
    }

    fn remove(&mut self, key: &[u8]) -> Option<Item> {
        let item = self.items.remove(key)?;
        self.used -= cost(key, &item.value);
        Some(item)
    }

    fn drop_expired(&mut self) {
        let now = now();
        let used = &mut self.used;
        self.items.retain(|key, item| {
            if !item.live(now) {
                *used -= cost(key, &item.value);
            }
            item.live(now)
        });
    }
}

thread_local! {
    /// The shard's store, once `init` has built it.
    static STORE: RefCell<Option<KvStore>> = const { RefCell::new(None) };
    /// How many bytes the last batch's answers held.
    static OUT_HINT: Cell<usize> = const { Cell::new(0) };
    /// The server clock, as `init` and then every `tick` gave it ([`now`]).
    static NOW: Cell<u32> = const { Cell::new(0) };
}

/// The server clock. The host ticks the plugin before any call once the
/// clock has moved (docs/wit-world.md), so the last tick's `now` is the
/// clock: no call into the host, which costs a component far more than a
/// core module (wasmtime checks the call's borrow scopes on every host
/// call; asked once a get, 16 % of a 16-get batch's time).
fn now() -> u32 {
    NOW.get()
}

/// Runs `f` on the store; a call before `init` traps (the host never makes
/// one), as a panic does in the SDK.
fn with_store<T>(f: impl FnOnce(&mut KvStore) -> T) -> T {
    STORE.with(|s| f(s.borrow_mut().as_mut().expect("init was not called")))
}

struct Component;

impl Guest for Component {
    fn wit_version() -> u32 {
        WIT_VERSION
    }

    fn init(config: Config) -> Result<(), String> {
        NOW.set(config.now);
        let store = KvStore::init(&config)?;
        STORE.with(|s| *s.borrow_mut() = Some(store));
        Ok(())
    }

    fn handle(data: Vec<u8>, requests: Vec<Request>) -> Answers {
        with_store(|store| {
            let mut out = Out::new();
            let responses = requests
                .iter()
                .map(|r| store.handle(&Req::new(&data, r), &mut out))
                .collect();
            OUT_HINT.set(out.data.len());
            Answers {
                data: out.data,
                responses,
            }
        })
    }

    fn tick(now: u32) {
        NOW.set(now);
    }

    fn timer(_token: u64) {}

    fn stats(group: i32) -> Vec<(String, String)> {
        with_store(|store| store.stats(group))
    }

    /// This store cannot dump (the SDK's default): a reload starts empty.
    fn dump(_cursor: u64, _max: u32) -> Option<(u64, Vec<types::Item>)> {
        None
    }

    /// Nor load.
    fn load(_items: Vec<types::Item>) -> bool {
        false
    }
}

bindings::export!(Component with_types_in bindings);
