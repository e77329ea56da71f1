//! A tiny key-value store for wasmcached: Get, Set, Delete and an immediate
//! FlushAll, with client flags, expiry, CAS values and a memory budget. It
//! never evicts: a full store answers out of memory. Everything else is
//! answered Error, as the ABI asks of what a plugin does not implement.

use std::collections::HashMap;
use wasmcached_sdk::abi::{iflag, mflag};
use wasmcached_sdk::guest::now;
use wasmcached_sdk::{Config, Op, Plugin, Request, Responder, Response, Status};

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

/// The store of one shard (the server runs one instance per shard).
pub struct KvStore {
    items: HashMap<Vec<u8>, Item>,
    next_cas: u64,
    used: u64,
    budget: u64,
    max_item_size: usize,
}

impl Plugin for KvStore {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(KvStore {
            items: HashMap::new(),
            next_cas: 0,
            used: 0,
            budget: config.memory_budget,
            max_item_size: config.max_item_size as usize,
        })
    }

    fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        if req.mflags & !(IGNORED | HONOURED) != 0 {
            return out.error("meta flag not supported by this store");
        }
        match req.op() {
            Some(Op::Get) => self.get(req, out),
            // A Set with a CAS value is a compare-and-swap, which this store
            // does not do.
            Some(Op::Set) if req.cas == 0 => self.set(req, out),
            Some(Op::Delete) if req.cas == 0 && req.mflags & mflag::HAS_CAS == 0 => {
                match self.remove(req.key) {
                    Some(item) if item.live(now()) => out.status(Status::Deleted),
                    _ => out.status(Status::NotFound),
                }
            }
            // Only `flush_all` without a delay (exptime 0 = now).
            Some(Op::FlushAll) if req.exptime == 0 => {
                self.items.clear();
                self.used = 0;
                out.status(Status::Ok)
            }
            Some(Op::MemLimit) => {
                self.budget = req.delta;
                out.status(Status::Ok)
            }
            _ => out.error("not supported by this store"),
        }
    }

    fn stats(&mut self, group: i32, out: &mut wasmcached_sdk::StatsWriter<'_>) {
        // memcached's names: `stats` shows them in their usual places.
        if group == wasmcached_sdk::abi::stats_group::GENERAL {
            out.stat("curr_items", self.items.len());
            out.stat("bytes", self.used);
        }
    }
}

impl KvStore {
    fn get(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        let now = now();
        let Some(item) = self.items.get_mut(req.key).filter(|i| i.live(now)) else {
            return out.status(Status::Miss);
        };
        let no_value = req.mflags & mflag::NO_VALUE != 0;
        out.respond(&Response {
            status: Status::Hit as u8,
            iflags: if item.fetched { iflag::FETCHED } else { 0 },
            key: req.key,
            value: if no_value { &[] } else { &item.value },
            client_flags: item.flags,
            exptime: item.exptime,
            cas: item.cas,
            last_access: item.last_access,
            prev_exptime: item.exptime,
        });
        if req.mflags & mflag::NO_BUMP == 0 {
            item.fetched = true;
            item.last_access = now;
        }
    }

    fn set(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        // A set that fails still removes the old value, as in memcached.
        self.remove(req.key);
        if req.key.len() + req.value.len() > self.max_item_size {
            return out.status(Status::TooLarge);
        }
        let cost = cost(req.key, req.value);
        if self.used + cost > self.budget {
            self.drop_expired();
        }
        if self.used + cost > self.budget {
            return out.status(Status::OutOfMemory);
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
        out.stored(self.next_cas, req.exptime)
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

wasmcached_sdk::export_plugin!(KvStore);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmcached_sdk::testing::{config, Harness, Req, START};

    #[test]
    fn set_get_delete() {
        let mut h = Harness::<KvStore>::new();
        let stored = h.set(b"k", b"hello", 42, 0);
        assert_eq!(stored.status, Status::Stored);
        let hit = h.get(b"k");
        assert_eq!(
            (hit.status, hit.value.as_slice()),
            (Status::Hit, &b"hello"[..])
        );
        assert_eq!(
            (hit.key.as_slice(), hit.flags, hit.cas),
            (&b"k"[..], 42, stored.cas)
        );
        assert_eq!(h.set(b"k", b"again", 0, 0).status, Status::Stored);
        assert_ne!(h.get(b"k").cas, stored.cas, "every store gets a new CAS");
        assert_eq!(h.delete(b"k").status, Status::Deleted);
        assert_eq!(h.get(b"k").status, Status::Miss);
        assert_eq!(h.delete(b"k").status, Status::NotFound);
    }

    #[test]
    fn items_expire_on_the_server_clock() {
        let mut h = Harness::<KvStore>::new();
        h.set(b"k", b"v", 0, START + 10);
        h.advance(9);
        assert!(h.get(b"k").is_hit());
        h.advance(1);
        assert_eq!(h.get(b"k").status, Status::Miss);
        assert_eq!(h.delete(b"k").status, Status::NotFound);
    }

    #[test]
    fn hits_report_fetched_and_last_access_unless_no_bump() {
        let mut h = Harness::<KvStore>::new();
        h.set(b"k", b"v", 0, 0);
        h.advance(5);
        let peek = h.send(
            Req::new(Op::Get)
                .key(b"k")
                .mflags(mflag::NO_BUMP | mflag::NO_VALUE),
        );
        assert_eq!(
            (peek.iflags, peek.last_access, peek.value.len()),
            (0, START, 0)
        );
        let first = h.get(b"k");
        assert_eq!((first.iflags, first.last_access), (0, START));
        let second = h.get(b"k");
        assert_eq!(
            (second.iflags, second.last_access),
            (iflag::FETCHED, START + 5)
        );
    }

    #[test]
    fn flush_all_empties_the_store() {
        let mut h = Harness::<KvStore>::new();
        h.set(b"a", b"1", 0, 0);
        assert_eq!(h.flush_all(0).status, Status::Ok);
        assert_eq!(h.get(b"a").status, Status::Miss);
        h.set(b"b", b"2", 0, 0);
        assert!(h.get(b"b").is_hit(), "items stored after the flush stay");
        assert_eq!(
            h.flush_all(START + 60).status,
            Status::Error,
            "no delayed flush"
        );
    }

    #[test]
    fn a_full_store_answers_out_of_memory_and_too_large() {
        let mut h = Harness::<KvStore>::start(&wasmcached_sdk::Config {
            memory_budget: 1000,
            max_item_size: 600,
            ..config()
        })
        .unwrap();
        assert_eq!(h.set(b"big", &[0; 600], 0, 0).status, Status::TooLarge);
        assert_eq!(h.set(b"a", &[0; 500], 0, START + 1).status, Status::Stored);
        assert_eq!(h.set(b"b", &[0; 500], 0, 0).status, Status::OutOfMemory);
        // Once `a` has expired its room is taken back.
        h.advance(1);
        assert_eq!(h.set(b"b", &[0; 500], 0, 0).status, Status::Stored);
        assert_eq!(h.mem_limit(100).status, Status::Ok);
        assert_eq!(h.set(b"c", b"", 0, 0).status, Status::OutOfMemory);
        let stats = h.stats(wasmcached_sdk::abi::stats_group::GENERAL);
        assert!(
            stats.contains(&("curr_items".into(), "1".into())),
            "{stats:?}"
        );
    }

    #[test]
    fn everything_else_is_an_error() {
        let mut h = Harness::<KvStore>::new();
        h.set(b"n", b"1", 0, 0);
        for r in [
            h.incr(b"n", 1),
            h.store(Op::Add, b"x", b"v", 0, 0),
            h.cas(b"n", b"2", 0, 0, 1),
            h.send(Req::new(Op::Set).key(b"n").value(b"2").cas(1)),
            h.send(Req::new(Op::Delete).key(b"n").mflags(mflag::HAS_CAS)),
            h.send(
                Req::new(Op::Get)
                    .key(b"n")
                    .mflags(mflag::VIVIFY)
                    .aux(START + 5),
            ),
            h.send(Req::raw_op(99).key(b"n")),
        ] {
            assert_eq!(r.status, Status::Error, "{r:?}");
        }
        assert_eq!(h.get(b"n").value, b"1", "nothing above changed the item");
    }
}
