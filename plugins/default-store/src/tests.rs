//! End-to-end tests of the store through the SDK glue the host uses: requests
//! are encoded with `abi::Request::encode`, run by `guest::Runtime::batch`,
//! and the response records decoded again. After every batch the harness asks
//! the store (through a test-only op) to cross-check its internal structures.

use crate::Store;
use wasmcached_sdk::abi::{self, init_flag, mflag, stats_group, Init, Op, Request, Status};
use wasmcached_sdk::guest::{test_clock, Runtime};
use wasmcached_sdk::{
    Config, DumpWriter, Item, IterWriter, LoadError, Plugin, Responder, StatsWriter,
};

thread_local! {
    /// What `Checked::prepare` saw: (slot read ahead, slot of the item).
    static PREFETCHED: std::cell::RefCell<Vec<(u32, Option<u32>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A raw op code no ABI op uses: "check your invariants".
const CHECK: u8 = 200;

/// The store plus an invariant check reachable through the batch path.
struct Checked(Store);

impl Plugin for Checked {
    fn init(config: &Config) -> Result<Self, String> {
        Store::new(config).map(Checked)
    }
    fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
        if req.op == CHECK {
            self.0.check_invariants();
            out.status(Status::Ok);
        } else {
            self.0.handle(req, out)
        }
    }
    fn prepare(&mut self, batch: abi::Requests<'_>) {
        self.0.prefetch(batch.clone());
        let keys = batch
            .clone()
            .flatten()
            .filter(|r| !r.key.is_empty())
            .count();
        let targets = self.0.prefetch_targets(batch);
        assert_eq!(targets.len(), keys, "one read-ahead per key");
        assert!(keys <= wasmcached_sdk::guest::PREPARE_WINDOW);
        PREFETCHED.with(|p| p.borrow_mut().extend(targets));
    }
    fn tick(&mut self, now: u32) {
        self.0.tick(now)
    }
    fn timer(&mut self, token: u64) {
        self.0.timer(token)
    }
    fn stats(&mut self, group: i32, out: &mut StatsWriter<'_>) {
        self.0.write_stats(group, out)
    }
    fn dump(&mut self, out: &mut DumpWriter<'_>) -> bool {
        self.0.dump(out)
    }
    fn load(&mut self, item: &Item<'_>) -> Result<(), LoadError> {
        self.0.load(item)
    }
    fn iter(&mut self, out: &mut IterWriter<'_>) -> bool {
        self.0.list(out)
    }
    fn release_held(&mut self) {
        self.0.release_held()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Resp {
    status: Status,
    iflags: u8,
    key: Vec<u8>,
    value: Vec<u8>,
    flags: u32,
    exptime: u32,
    cas: u64,
    last_access: u32,
    prev_exptime: u32,
}

struct Shard {
    rt: Runtime<Checked>,
    /// Cross-check the store after every batch (O(items), so big tests
    /// turn it off and call `verify`).
    check: bool,
    /// Timers (test_clock::timers) already run.
    timers_seen: usize,
}

const MB: u64 = 1 << 20;

/// What an item of this key and value costs in the log (no flags, no TTL).
fn footprint(key_value_len: usize) -> u64 {
    // One key byte: key_value_len - 1 value bytes.
    crate::item::New {
        klen: 1,
        vlen: key_value_len as u32 - 1,
        ..Default::default()
    }
    .total() as u64
}

fn init(budget: u64, flags: u32) -> Init<'static> {
    Init {
        abi_version: abi::ABI_VERSION,
        shard_id: 0,
        shard_count: 1,
        flags,
        memory_budget: budget,
        max_item_size: 1 << 20,
        now: 100,
        config: b"",
        hints: &[],
    }
}

impl Shard {
    fn new(budget: u64) -> Shard {
        Shard::with(init(budget, init_flag::CAS))
    }

    fn with(init: Init<'_>) -> Shard {
        test_clock::set(init.now);
        let mut rt = Runtime::default();
        let mut buf = Vec::new();
        init.encode(&mut buf);
        write_input(&mut rt, &buf);
        assert_eq!(rt.init(buf.len()), 0, "init refused");
        Shard {
            rt,
            check: true,
            timers_seen: test_clock::timers().len(),
        }
    }

    fn batch(&mut self, reqs: &[Request<'_>]) -> Vec<Resp> {
        let mut buf = Vec::new();
        abi::begin_batch(&mut buf);
        for r in reqs {
            r.encode(&mut buf);
        }
        let checks = usize::from(self.check);
        if self.check {
            Request {
                op: CHECK,
                ..Default::default()
            }
            .encode(&mut buf);
        }
        abi::set_batch_count(&mut buf, (reqs.len() + checks) as u32);
        write_input(&mut self.rt, &buf);
        let out = self.rt.batch(buf.len());
        assert_eq!(abi::batch_count(out) as usize, reqs.len() + checks);
        let mut resps: Vec<Resp> = abi::responses(out)
            .unwrap()
            .map(|r| {
                let r = r.expect("well-formed response");
                Resp {
                    status: r.status().expect("known status"),
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
            .collect();
        if self.check {
            let check = resps.pop().unwrap();
            assert_eq!(
                check.status,
                Status::Ok,
                "invariant check answered {check:?}"
            );
        }
        resps
    }

    fn verify(&mut self) {
        let check = self.check;
        self.check = true;
        self.batch(&[]);
        self.check = check;
    }

    fn one(&mut self, req: Request<'_>) -> Resp {
        self.batch(&[req]).pop().unwrap()
    }

    fn set(&mut self, key: &str, value: &str) -> Resp {
        self.store(Op::Set, key, value, 0, 0)
    }

    fn store(&mut self, op: Op, key: &str, value: &str, flags: u32, exptime: u32) -> Resp {
        self.one(Request {
            op: op as u8,
            key: key.as_bytes(),
            value: value.as_bytes(),
            client_flags: flags,
            exptime,
            ..Default::default()
        })
    }

    fn cas(&mut self, key: &str, value: &str, cas: u64) -> Resp {
        self.one(Request {
            op: Op::Cas as u8,
            key: key.as_bytes(),
            value: value.as_bytes(),
            cas,
            ..Default::default()
        })
    }

    fn get(&mut self, key: &str) -> Resp {
        self.keyed(Op::Get, key)
    }

    fn keyed(&mut self, op: Op, key: &str) -> Resp {
        self.one(Request {
            op: op as u8,
            key: key.as_bytes(),
            ..Default::default()
        })
    }

    fn value(&mut self, key: &str) -> Option<String> {
        let r = self.get(key);
        match r.status {
            Status::Hit => Some(String::from_utf8(r.value).unwrap()),
            Status::Miss => None,
            s => panic!("get answered {s:?}"),
        }
    }

    fn delta(&mut self, op: Op, key: &str, delta: u64) -> Resp {
        self.one(Request {
            op: op as u8,
            key: key.as_bytes(),
            delta,
            ..Default::default()
        })
    }

    fn touch(&mut self, op: Op, key: &str, exptime: u32) -> Resp {
        self.one(Request {
            op: op as u8,
            key: key.as_bytes(),
            exptime,
            ..Default::default()
        })
    }

    fn flush_all(&mut self, exptime: u32) {
        let r = self.one(Request {
            op: Op::FlushAll as u8,
            exptime,
            ..Default::default()
        });
        assert_eq!(r.status, Status::Ok);
    }

    fn mem_limit(&mut self, bytes: u64) {
        let r = self.one(Request {
            op: Op::MemLimit as u8,
            delta: bytes,
            ..Default::default()
        });
        assert_eq!(r.status, Status::Ok);
    }

    /// A clock tick, then every timer it leads to, as the host runs them.
    /// Returns how many timers fired.
    fn tick(&mut self, now: u32) -> usize {
        test_clock::set(now);
        self.rt.tick(now);
        let mut fired = 0;
        loop {
            let timers = test_clock::timers();
            if timers.len() == self.timers_seen {
                break;
            }
            let new: Vec<u64> = timers[self.timers_seen..].iter().map(|t| t.0).collect();
            self.timers_seen = timers.len();
            for token in new {
                self.rt.timer(token);
                fired += 1;
            }
            assert!(fired < 100_000, "timers never stop");
        }
        self.verify();
        fired
    }

    fn stats(&mut self, group: i32) -> Vec<(String, String)> {
        String::from_utf8(self.rt.stats(group).to_vec())
            .unwrap()
            .lines()
            // A typed stat's declaration line (`#max`) types the next line.
            .filter(|l| wasmcached_sdk::abi::StatType::declared_by(l).is_none())
            .map(|l| {
                let (k, v) = l.split_once(' ').expect("name value");
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn stat(&mut self, group: i32, name: &str) -> u64 {
        let all = self.stats(group);
        let v = all
            .iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no stat {name} in {all:?}"));
        v.1.parse().unwrap()
    }

    fn general(&mut self, name: &str) -> u64 {
        self.stat(stats_group::GENERAL, name)
    }
}

impl Shard {
    /// A whole dump, chunk by chunk, as the host runs it.
    fn dump_chunks(&mut self, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        loop {
            let chunk = self.rt.dump(max_bytes).expect("dump supported").to_vec();
            if chunk.is_empty() {
                break;
            }
            assert!(abi::check_items(&chunk).is_some(), "malformed chunk");
            chunks.push(chunk);
            assert!(chunks.len() < 1_000_000, "dump never ends");
        }
        // Once over, it stays over.
        assert!(self.rt.dump(max_bytes).unwrap().is_empty());
        chunks
    }

    fn load(&mut self, chunk: &[u8]) -> i32 {
        write_input(&mut self.rt, chunk);
        let rc = self.rt.load(chunk.len());
        self.verify();
        rc
    }
}

fn dumped_keys(chunks: &[Vec<u8>]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| abi::items(c).unwrap())
        .map(|i| String::from_utf8(i.unwrap().key.to_vec()).unwrap())
        .collect()
}

#[test]
fn dump_and_load_move_every_live_item_with_its_fields() {
    let mut a = Shard::new(64 * MB);
    let stored = a.store(Op::Set, "flags", "v1", 0xdead_beef, 500);
    a.store(Op::Set, "never", "", 7, 0);
    a.store(Op::Set, "dies", "x", 0, 103);
    a.store(Op::Set, "past", "x", 0, 1);
    let bin = a.one(Request {
        op: Op::Set as u8,
        key: b"bin\x01",
        value: b"\0\r\nEND\r\n\xff",
        mflags: mflag::KEY_BINARY,
        ..Default::default()
    });
    assert_eq!(bin.status, Status::Stored);
    let big = "b".repeat(300_000);
    a.store(Op::Set, "big", &big, 0, 0);
    for i in 0..2000 {
        a.set(&format!("k{i}"), &format!("value {i}"));
    }
    // Fetched: marked FETCHED, which travels with the item.
    assert_eq!(a.get("k0").status, Status::Hit);
    test_clock::set(103);

    // Small chunks: many of them, each within the limit unless it holds one
    // item only (the 300 kB value still travels whole).
    let chunks = a.dump_chunks(4096);
    assert!(chunks.len() > 10, "{} chunks", chunks.len());
    for c in &chunks {
        assert!(
            c.len() <= 4096 || abi::batch_count(c) == 1,
            "{} bytes",
            c.len()
        );
    }
    let keys = dumped_keys(&chunks);
    assert_eq!(keys.len(), 2000 + 4, "expired items are skipped");
    assert!(!keys.iter().any(|k| k == "dies" || k == "past"));
    // From the hand, in slot order: k1999 was stored last.
    assert_eq!(keys.last().map(String::as_str), Some("k1999"));
    // The dump only read: the source is unchanged and can dump again.
    assert_eq!(a.value("k5").as_deref(), Some("value 5"));
    assert_eq!(dumped_keys(&a.dump_chunks(1 << 20)).len(), keys.len());

    let mut b = Shard::new(64 * MB);
    for c in &chunks {
        assert_eq!(b.load(c), abi::load_status::OK);
    }
    assert_eq!(b.general("curr_items"), keys.len() as u64);
    let got = b.get("flags");
    assert_eq!(
        (
            got.status,
            got.value.as_slice(),
            got.flags,
            got.exptime,
            got.cas
        ),
        (Status::Hit, &b"v1"[..], 0xdead_beef, 500, stored.cas)
    );
    let got = b.get("never");
    assert_eq!((got.value.len(), got.flags, got.exptime), (0, 7, 0));
    let got = b.one(Request {
        op: Op::Get as u8,
        key: b"bin\x01",
        ..Default::default()
    });
    assert_eq!(got.value, b"\0\r\nEND\r\n\xff");
    assert_eq!(got.cas, bin.cas);
    assert_ne!(got.iflags & abi::iflag::KEY_BINARY, 0);
    assert_eq!(b.value("big").as_deref(), Some(big.as_str()));
    assert_eq!(b.get("dies").status, Status::Miss);
    assert_ne!(b.get("k0").iflags & abi::iflag::FETCHED, 0);
    assert_eq!(b.get("k1").iflags & abi::iflag::FETCHED, 0);
    for i in (0..2000).step_by(97) {
        assert_eq!(b.value(&format!("k{i}")), Some(format!("value {i}")));
    }
    // The loaded CAS values are live: a cas with the old value stores, and
    // new stores never reuse one of them.
    assert_eq!(b.cas("flags", "v2", stored.cas).status, Status::Stored);
    let fresh = b.set("fresh", "x");
    assert!(fresh.cas > bin.cas && fresh.cas > stored.cas);
}

#[test]
fn load_into_a_full_store_reports_it() {
    let mut a = Shard::new(64 * MB);
    a.check = false;
    let v = "v".repeat(1000);
    for i in 0..3000 {
        a.set(&format!("k{i}"), &v);
    }
    let chunks = a.dump_chunks(64 << 10);
    // -M with a 1 MB budget: the 3 MB of items cannot all be taken.
    let mut b = Shard::with(init(MB, init_flag::CAS | init_flag::NO_EVICT));
    let rcs: Vec<i32> = chunks.iter().map(|c| b.load(c)).collect();
    assert!(rcs.contains(&abi::load_status::FULL), "{rcs:?}");
    assert!(b.general("curr_items") > 0);
    // With eviction the newest items win: the last one loaded is there.
    let mut c = Shard::new(MB);
    for ch in &chunks {
        assert_eq!(c.load(ch), abi::load_status::OK);
    }
    assert_eq!(c.value("k2999").as_deref(), Some(v.as_str()));
    assert_eq!(c.value("k0"), None);
    // A malformed chunk is refused.
    let mut bad = chunks[0].clone();
    bad.truncate(bad.len() - 1);
    assert_eq!(c.load(&bad), abi::load_status::MALFORMED);
}

fn write_input(rt: &mut Runtime<Checked>, bytes: &[u8]) {
    let p = rt.input(bytes.len());
    // SAFETY: `input` returned a buffer of at least `bytes.len()` bytes that
    // stays put until the next call on `rt`; this is the host's side of the ABI.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) }
}

#[test]
fn set_get_and_the_hit_fields() {
    let mut s = Shard::new(64 * MB);
    assert_eq!(s.get("foo").status, Status::Miss);
    let stored = s.store(Op::Set, "foo", "bar", 0xdead_beef, 500);
    assert_eq!(stored.status, Status::Stored);
    assert_eq!(stored.exptime, 500);
    assert_ne!(stored.cas, 0);

    test_clock::set(105);
    let hit = s.get("foo");
    assert_eq!(hit.status, Status::Hit);
    assert_eq!(hit.key, b"foo");
    assert_eq!(hit.value, b"bar");
    assert_eq!(hit.flags, 0xdead_beef);
    assert_eq!(hit.exptime, 500);
    assert_eq!(hit.cas, stored.cas);
    assert_eq!(hit.last_access, 100, "stored at 100");
    assert_eq!(hit.iflags, 0, "never fetched before");

    // As in memcached, the first fetch leaves the access time alone and
    // only marks the item fetched; the second and later ones move it.
    test_clock::set(107);
    let again = s.get("foo");
    assert_eq!(again.iflags, abi::iflag::FETCHED);
    assert_eq!(again.last_access, 100, "the first fetch did not move it");
    test_clock::set(108);
    assert_eq!(s.get("foo").last_access, 107, "the second fetch did");

    // NO_VALUE leaves the value out; NO_BUMP leaves the access time alone.
    test_clock::set(109);
    let r = s.one(Request {
        op: Op::Get as u8,
        key: b"foo",
        mflags: mflag::NO_VALUE | mflag::NO_BUMP,
        ..Default::default()
    });
    assert_eq!(
        (r.status, r.value.len(), r.last_access),
        (Status::Hit, 0, 108)
    );
    assert_eq!(s.get("foo").last_access, 108);

    // Binary-safe keys and values, empty values.
    let key = "k\u{1}\u{ff}";
    assert_eq!(s.set(key, "").status, Status::Stored);
    assert_eq!(s.value(key).as_deref(), Some(""));
}

#[test]
fn store_modes_follow_memcached() {
    let mut s = Shard::new(64 * MB);
    // add
    assert_eq!(s.store(Op::Add, "a", "1", 0, 0).status, Status::Stored);
    test_clock::set(130);
    assert_eq!(s.store(Op::Add, "a", "2", 0, 0).status, Status::NotStored);
    assert_eq!(s.value("a").as_deref(), Some("1"));
    // ...and the failed add bumped the item's time, as memcached's do_item_update.
    assert_eq!(s.get("a").last_access, 130);
    // replace
    assert_eq!(
        s.store(Op::Replace, "b", "1", 0, 0).status,
        Status::NotStored
    );
    assert_eq!(s.value("b"), None);
    assert_eq!(s.store(Op::Replace, "a", "3", 7, 0).status, Status::Stored);
    let r = s.get("a");
    assert_eq!((r.value.as_slice(), r.flags), (&b"3"[..], 7));
    // append / prepend on a missing key
    assert_eq!(
        s.store(Op::Append, "b", "x", 0, 0).status,
        Status::NotStored
    );
    assert_eq!(
        s.store(Op::Prepend, "b", "x", 0, 0).status,
        Status::NotStored
    );
    assert_eq!(s.value("b"), None);
}

#[test]
fn append_and_prepend_keep_flags_and_exptime_with_a_new_cas() {
    let mut s = Shard::new(64 * MB);
    let first = s.store(Op::Set, "k", "mid", 42, 1000);
    let app = s.store(Op::Append, "k", "-end", 1, 5);
    assert_eq!(app.status, Status::Stored);
    assert_eq!(app.exptime, 1000, "response carries the kept exptime");
    assert!(app.cas > first.cas);
    let pre = s.store(Op::Prepend, "k", "start-", 2, 6);
    assert!(pre.cas > app.cas);
    let r = s.get("k");
    assert_eq!(r.value, b"start-mid-end");
    assert_eq!((r.flags, r.exptime, r.cas), (42, 1000, pre.cas));
    // The result is a new, unfetched item (memcached links a new item).
    assert_eq!(r.iflags, 0);
    // A CAS on append must match (meta ms MA with C).
    let bad = s.one(Request {
        op: Op::Append as u8,
        key: b"k",
        value: b"!",
        cas: pre.cas + 1000,
        ..Default::default()
    });
    assert_eq!(bad.status, Status::Exists);
    let good = s.one(Request {
        op: Op::Append as u8,
        key: b"k",
        value: b"!",
        cas: pre.cas,
        ..Default::default()
    });
    assert_eq!(good.status, Status::Stored);
    assert_eq!(s.value("k").as_deref(), Some("start-mid-end!"));
}

/// Flags live in front of the key only when non-zero (memcached's
/// ITEM_CFLAGS): switching between zero and non-zero flags on replace,
/// append, incr and touch keeps key, value and flags straight, and the index
/// still finds every item.
#[test]
fn zero_and_non_zero_flags_share_one_layout_rule() {
    let mut s = Shard::new(64 * MB);
    for i in 0..200u32 {
        let flags = if i % 3 == 0 {
            0
        } else {
            i.wrapping_mul(0x9e37_79b9)
        };
        s.store(Op::Set, &format!("f{i}"), &format!("{i}"), flags, 0);
    }
    s.store(Op::Set, "f1", "10", 0, 0);
    s.store(Op::Set, "f3", "30", 0xffff_ffff, 0);
    s.store(Op::Append, "f3", "0", 5, 0);
    s.delta(Op::Incr, "f1", 5);
    s.delta(Op::Incr, "f3", 1);
    s.touch(Op::Touch, "f4", 1_000_000);
    s.verify();
    for i in 0..200u32 {
        let r = s.get(&format!("f{i}"));
        let (value, flags) = match i {
            1 => ("15".to_string(), 0),
            3 => ("301".to_string(), 0xffff_ffff),
            _ => (
                format!("{i}"),
                if i % 3 == 0 {
                    0
                } else {
                    i.wrapping_mul(0x9e37_79b9)
                },
            ),
        };
        assert_eq!(
            (r.status, r.value, r.flags),
            (Status::Hit, value.into_bytes(), flags),
            "f{i}"
        );
    }
}

#[test]
fn cas_store() {
    let mut s = Shard::new(64 * MB);
    assert_eq!(s.cas("k", "v", 1).status, Status::NotFound);
    let c1 = s.set("k", "v1").cas;
    assert_eq!(s.cas("k", "v2", c1 + 1).status, Status::Exists);
    // A zero compare value never matches (memcached's CAS_NONE on a cas command).
    assert_eq!(s.cas("k", "v2", 0).status, Status::Exists);
    let c2 = s.cas("k", "v2", c1);
    assert_eq!(c2.status, Status::Stored);
    assert!(c2.cas > c1);
    assert_eq!(s.value("k").as_deref(), Some("v2"));
    // The old CAS is spent.
    assert_eq!(s.cas("k", "v3", c1).status, Status::Exists);
    // Set or replace with a CAS behave as cas (meta ms C, binary set with CAS).
    let r = s.one(Request {
        op: Op::Set as u8,
        key: b"k",
        value: b"v4",
        cas: c1,
        ..Default::default()
    });
    assert_eq!(r.status, Status::Exists);
    let r = s.one(Request {
        op: Op::Replace as u8,
        key: b"nokey",
        value: b"v4",
        cas: c1,
        ..Default::default()
    });
    assert_eq!(r.status, Status::NotFound);
    assert_eq!(s.general("curr_items"), 1);
    let slabs = s.stats(stats_group::SLABS);
    let get = |n: &str| slabs.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("1:cas_hits"), "1");
    assert_eq!(get("1:cas_badval"), "4");
}

#[test]
fn cas_values_are_unique_across_shards_and_never_reused() {
    let mut shards: Vec<Shard> = (0..3)
        .map(|id| {
            Shard::with(Init {
                shard_id: id,
                shard_count: 3,
                ..init(64 * MB, init_flag::CAS)
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut last = [0u64; 3];
    for round in 0..200 {
        for (id, s) in shards.iter_mut().enumerate() {
            let key = format!("k{}", round % 7);
            let r = match round % 4 {
                0 => s.set(&key, "1"),
                1 => s.store(Op::Append, &key, "0", 0, 0),
                2 => s.delta(Op::Incr, &key, 1),
                _ => s.set(&key, "12345"),
            };
            if r.status == Status::NotStored || r.status == Status::NotFound {
                continue;
            }
            assert!(r.cas > last[id], "per-shard CAS must only grow");
            last[id] = r.cas;
            assert_eq!(r.cas % 3, (id as u64 + 1) % 3);
            assert!(seen.insert(r.cas), "CAS {} handed out twice", r.cas);
        }
    }
}

#[test]
fn a_restarted_shard_does_not_reissue_cas_values() {
    let mut first = Shard::new(64 * MB);
    let mut last = 0;
    for i in 0..1000 {
        last = first.set(&format!("k{i}"), "v").cas;
    }
    // The host re-instantiates a faulted shard a second (or more) later.
    let mut second = Shard::with(Init {
        now: 101,
        ..init(64 * MB, init_flag::CAS)
    });
    assert!(second.set("k0", "v").cas > last);
}

#[test]
fn without_cas_support_everything_has_cas_0_and_cas_fails() {
    let mut s = Shard::with(init(64 * MB, 0));
    let r = s.set("k", "v");
    assert_eq!((r.status, r.cas), (Status::Stored, 0));
    assert_eq!(s.get("k").cas, 0);
    assert_eq!(s.cas("k", "w", 0).status, Status::Exists);
    assert_eq!(s.cas("k", "w", 5).status, Status::Exists);
    assert_eq!(s.cas("missing", "w", 5).status, Status::NotFound);
    assert_eq!(s.delta(Op::Incr, "n", 1).status, Status::NotFound);
    s.set("n", "5");
    let r = s.delta(Op::Incr, "n", 1);
    assert_eq!(
        (r.status, r.value.as_slice(), r.cas),
        (Status::Number, &b"6"[..], 0)
    );
}

#[test]
fn expiry_boundaries() {
    let mut s = Shard::new(64 * MB);
    s.store(Op::Set, "k", "v", 0, 103);
    s.store(Op::Set, "never", "v", 0, 0);
    test_clock::set(102);
    assert_eq!(s.value("k").as_deref(), Some("v"));
    // Expired once exptime <= now.
    test_clock::set(103);
    assert_eq!(s.value("k"), None);
    assert_eq!(s.general("get_expired"), 1);
    assert_eq!(s.general("curr_items"), 1, "dropped on access");
    // A past exptime (the host sends 1 for negative ones) is stored but dead.
    assert_eq!(s.store(Op::Set, "past", "v", 0, 1).status, Status::Stored);
    assert_eq!(s.value("past"), None);
    // Expired items are gone for every op, not only get.
    for k in ["e1", "e2", "e3", "e4", "e5"] {
        s.store(Op::Set, k, "1", 0, 104);
    }
    test_clock::set(104);
    assert_eq!(s.store(Op::Add, "e1", "2", 0, 0).status, Status::Stored);
    assert_eq!(
        s.store(Op::Replace, "e2", "2", 0, 0).status,
        Status::NotStored
    );
    assert_eq!(
        s.store(Op::Append, "e3", "2", 0, 0).status,
        Status::NotStored
    );
    assert_eq!(s.delta(Op::Incr, "e4", 1).status, Status::NotFound);
    assert_eq!(s.touch(Op::Touch, "e5", 0).status, Status::NotFound);
    assert_eq!(s.general("get_expired"), 2 + 5);
    test_clock::set(1_000_000);
    assert_eq!(s.value("never").as_deref(), Some("v"));
    assert_eq!(s.value("e1").as_deref(), Some("2"));
}

#[test]
fn touch_and_gat() {
    let mut s = Shard::new(64 * MB);
    assert_eq!(s.touch(Op::Touch, "k", 200).status, Status::NotFound);
    assert_eq!(s.touch(Op::Gat, "k", 200).status, Status::Miss);
    s.store(Op::Set, "k", "v", 3, 105);
    let t = s.touch(Op::Touch, "k", 110);
    assert_eq!((t.status, t.exptime), (Status::Touched, 110));
    test_clock::set(106);
    assert_eq!(s.value("k").as_deref(), Some("v"));
    let g = s.touch(Op::Gat, "k", 0);
    assert_eq!(g.status, Status::Hit);
    assert_eq!((g.value.as_slice(), g.flags, g.exptime), (&b"v"[..], 3, 0));
    test_clock::set(10_000);
    assert_eq!(
        s.value("k").as_deref(),
        Some("v"),
        "gat 0 made it permanent"
    );
    // Touching with a past time expires it.
    s.touch(Op::Touch, "k", 1);
    assert_eq!(s.value("k"), None);
}

#[test]
fn delete() {
    let mut s = Shard::new(64 * MB);
    assert_eq!(s.keyed(Op::Delete, "k").status, Status::NotFound);
    let c = s.set("k", "v").cas;
    let bad = s.one(Request {
        op: Op::Delete as u8,
        key: b"k",
        cas: c + 1,
        ..Default::default()
    });
    assert_eq!(bad.status, Status::Exists);
    assert_eq!(s.keyed(Op::Delete, "k").status, Status::Deleted);
    assert_eq!(s.value("k"), None);
    assert_eq!(s.keyed(Op::Delete, "k").status, Status::NotFound);
    assert_eq!(s.general("curr_items"), 0);
    assert_eq!(s.general("bytes"), 0);
}

#[test]
fn incr_and_decr() {
    let mut s = Shard::new(64 * MB);
    assert_eq!(s.delta(Op::Incr, "n", 1).status, Status::NotFound);
    assert_eq!(s.delta(Op::Decr, "n", 1).status, Status::NotFound);

    let c0 = s.store(Op::Set, "n", "99", 77, 5000).cas;
    let r = s.delta(Op::Incr, "n", 1);
    assert_eq!(
        (r.status, r.value.as_slice()),
        (Status::Number, &b"100"[..])
    );
    assert!(r.cas > c0);
    let g = s.get("n");
    assert_eq!(
        (g.value.as_slice(), g.flags, g.exptime, g.cas),
        (&b"100"[..], 77, 5000, r.cas)
    );

    // Shorter results overwrite in place, padded with spaces.
    let r = s.delta(Op::Decr, "n", 1);
    assert_eq!(r.value, b"99");
    assert_eq!(s.value("n").as_deref(), Some("99 "));
    assert_eq!(s.delta(Op::Decr, "n", 1000).value, b"0", "decr floors at 0");
    assert_eq!(s.value("n").as_deref(), Some("0  "));
    assert_eq!(s.delta(Op::Incr, "n", 5).value, b"5");
    assert_eq!(s.value("n").as_deref(), Some("5  "));
    // Only a longer result needs a new item.
    let total = s.general("total_items");
    s.delta(Op::Incr, "n", 995);
    assert_eq!(s.value("n").as_deref(), Some("1000"));
    assert_eq!(s.general("total_items"), total + 1);

    // Wrap at 2^64.
    s.set("w", "18446744073709551615");
    assert_eq!(s.delta(Op::Incr, "w", 2).value, b"1");
    assert_eq!(s.value("w"), Some(format!("1{}", " ".repeat(19))));
    s.set("w", "18446744073709551610");
    assert_eq!(
        s.delta(Op::Incr, "w", u64::MAX).value,
        b"18446744073709551609"
    );

    // What strtoull tolerates.
    s.set("sp", "  12");
    assert_eq!(s.delta(Op::Incr, "sp", 1).value, b"13");
    assert_eq!(s.value("sp").as_deref(), Some("13  "));

    // Non-numeric values, including empty and too-long ones.
    for v in ["", "abc", "12abc", "-1", "18446744073709551616", " "] {
        s.set("x", v);
        assert_eq!(
            s.delta(Op::Incr, "x", 1).status,
            Status::NonNumeric,
            "{v:?}"
        );
        assert_eq!(
            s.delta(Op::Decr, "x", 1).status,
            Status::NonNumeric,
            "{v:?}"
        );
        assert_eq!(s.value("x").as_deref(), Some(v), "left alone");
    }

    // incr with a CAS (binary protocol, meta ma C).
    let c = s.set("c", "1").cas;
    let bad = s.one(Request {
        op: Op::Incr as u8,
        key: b"c",
        delta: 1,
        cas: c + 1,
        ..Default::default()
    });
    assert_eq!(bad.status, Status::Exists);
    let good = s.one(Request {
        op: Op::Incr as u8,
        key: b"c",
        delta: 1,
        cas: c,
        ..Default::default()
    });
    assert_eq!(
        (good.status, good.value.as_slice()),
        (Status::Number, &b"2"[..])
    );
}

#[test]
fn flush_all_now_keeps_what_is_stored_after_it() {
    let mut s = Shard::new(64 * MB);
    s.set("old1", "v");
    s.set("old2", "v");
    test_clock::set(150);
    s.set("same_second_before", "v");
    s.flush_all(0);
    s.set("same_second_after", "v");
    assert_eq!(s.value("old1"), None);
    assert_eq!(s.value("same_second_before"), None);
    assert_eq!(s.value("same_second_after").as_deref(), Some("v"));
    assert_eq!(s.general("get_flushed"), 2);
    // The rest goes in the background scan.
    s.tick(151);
    assert_eq!(s.general("curr_items"), 1);
    assert_eq!(s.general("crawler_reclaimed"), 1);
    test_clock::set(200);
    assert_eq!(s.value("same_second_after").as_deref(), Some("v"));
    assert_eq!(s.value("old2"), None);
}

#[test]
fn flushed_items_are_swept_in_the_background() {
    let mut s = Shard::new(64 * MB);
    s.check = false;
    for i in 0..500_000 {
        s.set(&format!("key:{i}"), "value");
    }
    s.tick(100); // finishes the index resize the inserts started
    assert_eq!(s.tick(101), 0, "nothing left to do, no timers");
    let malloced = s.stat(stats_group::SLABS, "total_malloced");
    assert!(malloced >= 8 * MB, "{malloced}");
    test_clock::set(120);
    s.flush_all(0);
    s.set("survivor", "v");
    // The crawler finds only dead items and keeps going on short timers.
    assert!(s.tick(121) > 0);
    assert_eq!(s.general("curr_items"), 1);
    assert_eq!(s.general("crawler_reclaimed"), 500_000);
    assert_eq!(s.value("survivor").as_deref(), Some("v"));
    // The emptied segments were recycled: what is left is the one the
    // survivor was written to.
    assert!(s.stat(stats_group::SLABS, "total_malloced") <= 2 * MB);
    // A pass that freed so much is followed by one more to its end; that
    // one finds nothing, and the scan goes back to its slow pace.
    s.tick(122);
    assert_eq!(s.tick(123), 0);
}

#[test]
fn delayed_flush_all() {
    let mut s = Shard::new(64 * MB);
    s.set("a", "v");
    // flush_all 10 at server time 100: memcached sets oldest_live to 109, so
    // items die at 109, including those stored during second 109.
    s.flush_all(110);
    test_clock::set(108);
    assert_eq!(s.value("a").as_deref(), Some("v"));
    s.set("b", "v");
    test_clock::set(109);
    s.set("c", "v");
    assert_eq!(s.value("a"), None);
    assert_eq!(s.value("b"), None);
    assert_eq!(s.value("c"), None);
    test_clock::set(110);
    s.set("d", "v");
    assert_eq!(s.value("d").as_deref(), Some("v"));
    test_clock::set(500);
    assert_eq!(s.value("d").as_deref(), Some("v"));
}

#[test]
fn flush_all_without_cas() {
    // memcached -C: oldest_live is the flush time itself, so even items
    // stored in the flush's second are gone; the next second is safe.
    let mut s = Shard::with(init(64 * MB, 0));
    s.set("a", "v");
    s.flush_all(0);
    s.set("b", "v");
    assert_eq!(s.value("a"), None);
    assert_eq!(s.value("b"), None);
    test_clock::set(101);
    s.set("c", "v");
    assert_eq!(s.value("c").as_deref(), Some("v"));
    // Delayed: items die at the flush time exactly.
    s.flush_all(105);
    test_clock::set(104);
    assert_eq!(s.value("c").as_deref(), Some("v"));
    test_clock::set(105);
    assert_eq!(s.value("c"), None);
}

/// How many items with `key_len`-byte keys and `value_len`-byte values a
/// shard with `budget` holds before it evicts.
fn capacity_of(budget: u64, key_len: usize, value_len: usize) -> usize {
    let mut s = Shard::new(budget);
    let value = "x".repeat(value_len);
    for i in 0.. {
        s.set(&format!("{i:0width$}", width = key_len), &value);
        if s.general("evictions") > 0 {
            return i;
        }
    }
    unreachable!()
}

fn with_config(budget: u64, config: &str) -> Shard {
    Shard::with(Init {
        config: config.as_bytes(),
        ..init(budget, init_flag::CAS)
    })
}

/// Whether `key` is stored, without the hit raising its frequency.
fn present(s: &mut Shard, key: &str) -> bool {
    meta_get(s, key, mflag::NO_BUMP, 0, 0).status == Status::Hit
}

/// The eviction tests' key: 8 digits.
fn key8(i: usize) -> String {
    format!("{i:08}")
}

/// A 256 KiB store of 8-byte keys and 100-byte values holding `n` items,
/// where `n` is what it holds before it evicts. Returns it, `n` and the
/// value.
fn full_store(config: &str) -> (Shard, usize, String) {
    let budget = 256 * 1024;
    let n = capacity_of(budget, 8, 100);
    let value = "x".repeat(100);
    let mut s = with_config(budget, config);
    for i in 0..n {
        s.set(&key8(i), &value);
    }
    assert_eq!(s.general("evictions"), 0);
    (s, n, value)
}

/// S3-FIFO's point: items read while in the small queue move to the main
/// queue when their segment is recycled, so a scan of keys read once (the
/// one-hit wonders) passes through the small queue without pushing them out.
#[test]
fn items_read_while_new_outlive_a_scan_of_keys_read_once() {
    let (mut s, n, value) = full_store("");
    let hot: Vec<String> = (0..n / 4).map(key8).collect();
    for k in &hot {
        assert_eq!(s.get(k).status, Status::Hit);
    }
    for i in 0..3 * n {
        s.set(&format!("scan{i:04}"), &value);
    }
    assert!(s.general("evictions") as usize >= 2 * n);
    let kept = hot.iter().filter(|k| present(&mut s, k)).count();
    assert!(
        kept * 10 >= hot.len() * 9,
        "{kept} of {} hot keys kept",
        hot.len()
    );
    // The keys never read went first.
    let cold = (n / 4..n).filter(|&i| present(&mut s, &key8(i))).count();
    assert_eq!(cold, 0, "unread keys outlived the scan");
    // Promoted with the frequency back to 0: memcached's "moved to cold".
    assert!(s.general("moves_to_cold") as usize >= hot.len() * 9 / 10);
    // In memcached's terms those evicted were never fetched.
    assert!(s.general("evicted_unfetched") as usize >= 2 * n);
}

/// The main queue gives an item with a frequency another round (with one
/// less), and evicts an item whose frequency ran out.
#[test]
fn the_main_queue_gives_read_items_another_round() {
    let (mut s, n, value) = full_store("");
    let hot: Vec<String> = (0..n / 8).map(key8).collect();
    // Read twice: promoted, then still one hit left for the main queue.
    for _ in 0..3 {
        for k in &hot {
            s.get(k);
        }
    }
    // Enough new items to cycle the main queue more than once.
    for i in 0..4 * n {
        s.set(&format!("new{i:05}"), &value);
        // The hot keys stay hot.
        if i % (n / 2) == 0 {
            for k in &hot {
                s.get(k);
            }
        }
    }
    let kept = hot.iter().filter(|k| present(&mut s, k)).count();
    assert!(kept * 10 >= hot.len() * 9, "{kept} of {} kept", hot.len());
    assert!(s.general("moves_within_lru") + s.general("moves_to_cold") > 0);
}

/// The ghost: a key evicted from the small queue without a hit and stored
/// again soon starts with a hit, so the next recycling promotes it.
#[test]
fn a_key_back_soon_after_its_eviction_is_promoted() {
    let (mut s, n, value) = full_store("");
    for i in n..n + n / 2 {
        s.set(&key8(i), &value);
    }
    assert!(!present(&mut s, &key8(0)));
    // Key 0 comes back: the ghost remembers it.
    s.set(&key8(0), &value);
    for i in 2 * n..3 * n {
        s.set(&key8(i), &value);
    }
    assert!(present(&mut s, &key8(0)), "the ghost's key was promoted");
    assert!(!present(&mut s, &key8(2 * n)), "a new key is not");
    // Without the ghost it goes like any new key.
    let (mut s, n, value) = full_store("ghost=0");
    for i in n..n + n / 2 {
        s.set(&key8(i), &value);
    }
    s.set(&key8(0), &value);
    for i in 2 * n..3 * n {
        s.set(&key8(i), &value);
    }
    assert!(!present(&mut s, &key8(0)));
}

/// A key read again after it expired is in use: the ghost remembers it as
/// it remembers a key evicted too early, so that its next set is promoted
/// when the small queue recycles it, ahead of keys never asked for again.
#[test]
fn a_key_read_after_it_expired_is_promoted_when_set_again() {
    for (config, kept) in [("", true), ("ghost=0", false)] {
        let (mut s, n, value) = full_store(config);
        // Evict once, so that the ghost is sized.
        for i in n..n + n / 2 {
            s.set(&key8(i), &value);
        }
        s.store(Op::Set, "expiring", &value, 0, 102);
        test_clock::set(103);
        assert_eq!(s.get("expiring").status, Status::Miss, "{config}");
        s.set("expiring", &value);
        for i in 2 * n..3 * n {
            s.set(&key8(i), &value);
        }
        assert_eq!(present(&mut s, "expiring"), kept, "{config}");
        assert!(!present(&mut s, &key8(2 * n)), "{config}: a new key is not");
    }
}

/// A main-queue item that expired before anyone read it again had earned
/// its place: the ghost remembers it when the crawler (or eviction) takes
/// it, so that its next set is promoted as well. One that expired while new
/// and unread in the small queue has not, and starts over like any new key.
#[test]
fn a_main_queue_key_that_expired_unread_is_promoted_when_set_again() {
    for (read, kept) in [(true, true), (false, false)] {
        let (mut s, n, value) = full_store("");
        // Evict once, so that the ghost is sized.
        for i in n..n + n / 2 {
            s.set(&key8(i), &value);
        }
        s.store(Op::Set, "expiring", &value, 0, 102);
        if read {
            // Read while new: the small queue's recycling promotes it.
            assert_eq!(s.get("expiring").status, Status::Hit);
            for i in 2 * n..3 * n {
                s.set(&key8(i), &value);
            }
            assert!(present(&mut s, "expiring"), "promoted, still live");
        }
        // It expires, and the crawler takes it before anyone asks.
        let reclaimed = s.general("crawler_reclaimed");
        s.tick(103);
        assert_eq!(s.general("crawler_reclaimed"), reclaimed + 1, "{read}");
        s.set("expiring", &value);
        for i in 4 * n..5 * n {
            s.set(&key8(i), &value);
        }
        assert_eq!(present(&mut s, "expiring"), kept, "read while new: {read}");
        assert!(!present(&mut s, &key8(4 * n)), "{read}: a new key is not");
    }
}

/// The keys of main-queue items that expired unread have a ghost table of
/// their own: the keys evicted from the small queue meanwhile, however
/// many, do not push them out before their next set.
#[test]
fn an_expired_main_queue_key_outlasts_many_evictions_in_the_ghost() {
    let (mut s, n, value) = full_store("");
    // Evict once, so that the ghost is sized.
    for i in n..n + n / 2 {
        s.set(&key8(i), &value);
    }
    s.store(Op::Set, "expiring", &value, 0, 102);
    assert_eq!(s.get("expiring").status, Status::Hit);
    for i in 2 * n..3 * n {
        s.set(&key8(i), &value);
    }
    assert!(present(&mut s, "expiring"), "promoted, still live");
    s.tick(103);
    // Three times the ghost's size of keys evicted unread.
    let evicted = s.general("evictions");
    for i in 4 * n..7 * n {
        s.set(&key8(i), &value);
    }
    assert!(s.general("evictions") - evicted > 2 * n as u64);
    s.set("expiring", &value);
    for i in 8 * n..9 * n {
        s.set(&key8(i), &value);
    }
    assert!(present(&mut s, "expiring"), "its next set was promoted");
    assert!(!present(&mut s, &key8(8 * n)), "a new key is not");
}

/// The crawler takes an item in the second it expires (when a lookup no
/// longer returns it), not a second later as memcached's crawler does.
#[test]
fn the_crawler_reclaims_items_in_their_expiry_second() {
    let mut s = Shard::new(MB);
    s.store(Op::Set, "a", "1", 0, 102);
    s.store(Op::Set, "b", "2", 0, 103);
    s.tick(101);
    assert_eq!(s.general("crawler_reclaimed"), 0);
    s.tick(102);
    assert_eq!(s.general("crawler_reclaimed"), 1);
    assert_eq!(s.general("curr_items"), 1);
    assert_eq!(s.get("a").status, Status::Miss);
    assert_eq!(s.general("get_expired"), 0, "already gone");
    assert_eq!(s.value("b").as_deref(), Some("2"));
}

/// A pass of the crawler that freed enough (here 1 item in 16) makes the
/// next one run to its end within its second, on short timers, instead of
/// `crawl_per_tick` items a second: where items expire by the thousand,
/// their room comes back within a second.
#[test]
fn after_a_pass_that_freed_items_the_next_runs_to_its_end() {
    let mut s = with_config(64 * MB, "crawl_per_tick=100");
    for i in 0..1000 {
        s.set(&format!("keep:{i}"), "v");
    }
    for i in 0..100 {
        s.store(Op::Set, &format!("a:{i}"), "v", 0, 101);
    }
    for i in 0..500 {
        s.store(Op::Set, &format!("b:{i}"), "v", 0, 200);
    }
    // The first pass goes 100 items a second through the live items.
    let starts = s.general("lru_crawler_starts");
    assert_eq!(s.tick(102), 0, "no timers while nothing dies");
    let mut now = 102;
    while s.general("lru_crawler_starts") == starts {
        now += 1;
        s.tick(now);
        assert!(now < 150, "the pass never ends");
    }
    assert_eq!(s.general("crawler_reclaimed"), 100);
    // The b's expire: one tick's pass takes every one of them.
    assert!(s.tick(200) > 0, "the pass went on on timers");
    assert_eq!(s.general("crawler_reclaimed"), 600);
    assert_eq!(s.general("curr_items"), 1000);
    // That pass freed 500 in 1600: the next runs to its end too, finds
    // nothing, and the one after it goes at the slow pace again.
    assert!(s.tick(201) > 0);
    assert_eq!(s.tick(202), 0);
    assert_eq!(s.general("crawler_reclaimed"), 600);
}

/// A segment a quarter of whose bytes died is compacted in the background
/// (its live items copied to its queue's head), so that dead items of a
/// TTL-heavy load do not wait for the segment's turn in the FIFO; one with
/// less dead is left alone.
#[test]
fn segments_a_quarter_dead_are_compacted() {
    for (every, compacted) in [(3, true), (6, false)] {
        let budget = 256 * 1024;
        let n = capacity_of(budget, 8, 100) / 2;
        let mut s = Shard::new(budget);
        let value = "x".repeat(100);
        for i in 0..n {
            s.set(&key8(i), &value);
        }
        let before = s.segments();
        // A third (a sixth) of every segment's items die.
        for i in (0..n).step_by(every) {
            assert_eq!(s.keyed(Op::Delete, &key8(i)).status, Status::Deleted);
        }
        s.tick(101);
        let after = s.segments();
        assert_eq!(
            after < before,
            compacted,
            "1 in {every}: {before} -> {after}"
        );
        for i in 0..n {
            assert_eq!(present(&mut s, &key8(i)), i % every != 0, "{i}");
        }
        assert_eq!(s.general("evictions"), 0);
    }
}

#[test]
fn the_item_being_rewritten_is_never_the_victim() {
    let budget = 256 * 1024;
    let n = capacity_of(budget, 8, 100);
    let value = "x".repeat(100);
    let key = |i: usize| format!("{i:08}");
    for op in [Op::Append, Op::Set] {
        let mut s = Shard::new(budget);
        for i in 0..n {
            s.set(&key(i), &value);
        }
        // Item 0 is unread and right at the hand: the next victim, were it
        // not the one being grown.
        let grown = "y".repeat(2000);
        let r = s.store(op, &key(0), &grown, 0, 0);
        assert_eq!(r.status, Status::Stored, "{op:?}");
        assert!(s.general("evictions") >= 10, "{op:?}");
        let want = if op == Op::Append { 2100 } else { 2000 };
        assert_eq!(s.value(&key(0)).map(|v| v.len()), Some(want), "{op:?}");
        assert!(!present(&mut s, &key(1)), "{op:?}");
    }
}

#[test]
fn expired_items_are_reclaimed_before_anything_is_evicted() {
    let budget = 256 * 1024;
    let n = capacity_of(budget, 8, 100);
    let mut s = Shard::new(budget);
    let value = "x".repeat(100);
    // The most recent quarter of the items expire soon; the FIFOs' tails
    // hold live ones.
    let dying = n / 4;
    // A little below capacity: the items with a TTL take 4 more bytes.
    let n = n - n / 20;
    for i in 0..n {
        let exptime = if i >= n - dying { 101 } else { 0 };
        s.store(Op::Set, &format!("{i:08}"), &value, 0, exptime);
    }
    assert_eq!(s.general("evictions"), 0);
    test_clock::set(102);
    s.tick(102);
    assert_eq!(s.general("crawler_reclaimed") as usize, dying);
    assert_eq!(s.general("expired_unfetched") as usize, dying);
    for i in 0..dying / 2 {
        s.set(&format!("new{i:05}"), &value);
    }
    assert_eq!(s.general("evictions"), 0, "the freed room was used");
}

#[test]
fn no_evict_answers_out_of_memory() {
    let budget = 256 * 1024;
    let mut s = Shard::with(init(budget, init_flag::CAS | init_flag::NO_EVICT));
    let value = "x".repeat(100);
    let mut stored = 0;
    loop {
        // The oldest items expire at 150.
        let exptime = if stored < 60 { 150 } else { 0 };
        let r = s.store(Op::Set, &format!("{stored:08}"), &value, 0, exptime);
        if r.status == Status::OutOfMemory {
            break;
        }
        assert_eq!(r.status, Status::Stored);
        stored += 1;
    }
    assert!(stored > 500);
    assert_eq!(s.general("evictions"), 0);
    assert_eq!(s.item_sum("outofmemory"), 1);
    for i in 0..stored {
        assert_eq!(s.get(&format!("{i:08}")).status, Status::Hit);
    }
    // Growing an item fails too, and a failed set drops the old value.
    assert_eq!(
        s.store(Op::Append, "00000010", &"y".repeat(4000), 0, 0)
            .status,
        Status::OutOfMemory
    );
    assert_eq!(s.value("00000010").map(|v| v.len()), Some(100));
    assert_eq!(
        s.set("00000011", &"y".repeat(4000)).status,
        Status::OutOfMemory
    );
    assert_eq!(s.value("00000011"), None);
    // Dead items make room again once they are a quarter of a segment
    // (compacting it gains that much); nothing live is evicted.
    for i in 100..140 {
        assert_eq!(
            s.keyed(Op::Delete, &format!("{i:08}")).status,
            Status::Deleted
        );
    }
    for i in 0..20 {
        assert_eq!(s.set(&format!("extra{i}"), &value).status, Status::Stored);
    }
    // Expired items make room the same way, without any eviction.
    test_clock::set(151);
    let mut fresh = 0;
    while s.set(&format!("fresh{fresh}"), &value).status == Status::Stored {
        fresh += 1;
    }
    assert!(fresh >= 20, "{fresh} stored over expired items");
    assert_eq!(s.general("evictions"), 0);
    assert!(s.stat(stats_group::SLABS, "total_malloced") <= budget);
    // Over a lowered budget with nothing it may evict, the store refuses
    // stores but does not spin on background timers.
    s.mem_limit(budget / 2);
    assert_eq!(s.tick(152), 0);
    assert_eq!(s.set("more", &value).status, Status::OutOfMemory);
    assert_eq!(s.general("evictions"), 0);
}

#[test]
fn too_large_items() {
    let mut s = Shard::new(64 * MB);
    // -I 1m: memcached's item header counts against the limit.
    let max_value = (1 << 20) - 48 - 2 - 2 - 8;
    assert_eq!(s.set("k", &"v".repeat(max_value)).status, Status::Stored);
    assert_eq!(
        s.set("k", &"v".repeat(max_value + 1)).status,
        Status::TooLarge
    );
    assert_eq!(s.value("k"), None, "a failed set drops the old value");
    // Other modes keep it.
    s.set("k", "small");
    assert_eq!(
        s.store(Op::Replace, "k", &"v".repeat(max_value + 1), 0, 0)
            .status,
        Status::TooLarge
    );
    assert_eq!(s.value("k").as_deref(), Some("small"));
    // An append that makes the item too large is NOT_STORED.
    s.set("a", &"v".repeat(max_value - 10));
    assert_eq!(
        s.store(Op::Append, "a", &"v".repeat(20), 0, 0).status,
        Status::NotStored
    );
    assert_eq!(s.value("a").map(|v| v.len()), Some(max_value - 10));
    // Larger than the whole shard.
    let mut small = Shard::new(64 * 1024);
    assert_eq!(small.set("k", &"v".repeat(60_000)).status, Status::TooLarge);
    assert_eq!(small.set("k", &"v".repeat(20_000)).status, Status::Stored);
}

#[test]
fn mem_limit_sheds_down_to_the_new_budget() {
    let mut s = Shard::new(16 * MB);
    s.check = false;
    let value = "x".repeat(200);
    for i in 0..50_000 {
        s.set(&format!("key:{i:06}"), &value);
    }
    assert_eq!(s.general("evictions"), 0);
    let before = s.stat(stats_group::SLABS, "total_malloced");
    assert!(before > 10 * MB, "{before}");
    s.mem_limit(2 * MB);
    assert_eq!(s.general("limit_maxbytes"), 2 * MB);
    // One tick starts the shedding; short timers finish it.
    assert!(s.tick(101) > 5);
    assert_eq!(s.tick(102), 0, "nothing left to do, no timers");
    let after = s.stat(stats_group::SLABS, "total_malloced");
    assert!(after <= 2 * MB, "{after} bytes after shrinking");
    let items = s.general("curr_items");
    assert!(items > 2 * MB / footprint(210) / 2, "{items} items left");
    // Stores keep working within the new budget.
    for i in 0..1000 {
        assert_eq!(s.set(&format!("new:{i}"), &value).status, Status::Stored);
    }
    assert!(s.stat(stats_group::SLABS, "total_malloced") <= 2 * MB);
    // And the budget can grow again.
    s.mem_limit(16 * MB);
    let evictions = s.general("evictions");
    for i in 0..10_000 {
        s.set(&format!("more:{i}"), &value);
    }
    assert_eq!(s.general("evictions"), evictions);
}

/// A shard started with these hints (ABI v5).
fn with_hints(budget: u64, hints: abi::Hints) -> Shard {
    let mut block = Vec::new();
    hints.encode(&mut block);
    Shard::with(Init {
        hints: &block,
        ..init(budget, init_flag::CAS)
    })
}

#[test]
fn hashpower_hint_sizes_the_index() {
    let mut s = Shard::new(64 * MB);
    assert_eq!(
        s.general("hash_power_level"),
        10,
        "no hint: the store's own start"
    );
    let hints = |hashpower, hash_expand| abi::Hints {
        hashpower,
        hash_expand,
        ..abi::Hints::default()
    };
    let mut s = with_hints(64 * MB, hints(16, true));
    assert_eq!(s.general("hash_power_level"), 16);
    assert_eq!(s.index_buckets(), 1 << 16);
    // Capped at half the budget, never under the store's minimum.
    let mut s = with_hints(MB, hints(20, true));
    assert_eq!(s.general("hash_power_level"), 16);
    let mut s = with_hints(4096, hints(20, true));
    assert_eq!(s.general("hash_power_level"), 10);
    // The index never shrinks below its initial size, and grows past it...
    let mut s = with_hints(64 * MB, hints(12, true));
    s.check = false;
    let keys: Vec<String> = (0..10_000).map(|i| format!("key:{i:07}")).collect();
    for k in &keys {
        s.set(k, "v");
    }
    for t in 101..200 {
        if s.tick(t) == 0 {
            break;
        }
    }
    assert!(s.general("hash_power_level") > 12);
    for k in &keys {
        s.keyed(Op::Delete, k);
    }
    for t in 102..200 {
        if s.tick(t) == 0 {
            break;
        }
    }
    assert_eq!(s.general("hash_power_level"), 12);
    // ... unless `-o no_hashexpand`, which keeps it until it is nearly
    // full (open addressing holds no more items than slots).
    let few = &keys[..3800];
    for expand in [true, false] {
        let mut s = with_hints(64 * MB, hints(12, expand));
        s.check = false;
        for k in few {
            s.set(k, "v");
        }
        s.tick(101);
        let slots = s.index_buckets();
        assert_eq!(slots > 4096, expand, "{expand}: {slots} slots");
        assert_eq!(s.value(&keys[0]).as_deref(), Some("v"));
    }
    let mut s = with_hints(64 * MB, hints(12, false));
    s.check = false;
    for k in &keys {
        s.set(k, "v");
    }
    assert!(keys.iter().all(|k| s.value(k).as_deref() == Some("v")));
}

#[test]
fn many_items_resize_the_index_and_compact_after_deletes() {
    let mut s = Shard::new(256 * MB);
    s.check = false;
    let n = 100_000;
    let keys: Vec<String> = (0..n).map(|i| format!("key:{i:07}")).collect();
    for chunk in keys.chunks(1000) {
        let reqs: Vec<Request> = chunk
            .iter()
            .map(|k| Request {
                op: Op::Set as u8,
                key: k.as_bytes(),
                value: k.as_bytes(),
                ..Default::default()
            })
            .collect();
        assert!(s.batch(&reqs).iter().all(|r| r.status == Status::Stored));
    }
    s.verify();
    assert!(s.index_buckets() >= n * 2 / 3);
    for k in keys.iter().step_by(997) {
        assert_eq!(s.value(k).as_deref(), Some(k.as_str()));
    }
    // Delete 95%: the segments empty out and the index shrinks.
    let chunks_before = s.segments();
    for chunk in keys.chunks(1000) {
        let reqs: Vec<Request> = chunk
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 20 != 0)
            .map(|(_, k)| Request {
                op: Op::Delete as u8,
                key: k.as_bytes(),
                ..Default::default()
            })
            .collect();
        assert!(s.batch(&reqs).iter().all(|r| r.status == Status::Deleted));
    }
    s.verify();
    assert!(s.tick(101) > 0);
    assert_eq!(s.tick(102), 0);
    assert_eq!(s.general("curr_items"), n as u64 / 20);
    assert!(s.segments() <= chunks_before / 2, "{}", s.segments());
    assert!(s.index_buckets() <= n / 5, "{}", s.index_buckets());
    for (i, k) in keys.iter().enumerate() {
        let expect = (i % 1000 % 20 == 0).then_some(k.as_str());
        assert_eq!(s.value(k).as_deref(), expect);
    }
}

impl Shard {
    /// Index slots (both tables while a resize runs), from `hash_bytes`.
    fn index_buckets(&mut self) -> usize {
        self.stat(stats_group::GENERAL, "hash_bytes") as usize / 5
    }

    fn segments(&mut self) -> usize {
        self.general("segments") as usize
    }

    /// A `stats items` figure summed over the classes.
    fn item_sum(&mut self, field: &str) -> u64 {
        let suffix = format!(":{field}");
        self.stats(stats_group::ITEMS)
            .iter()
            .filter(|(k, _)| k.ends_with(&suffix))
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .sum()
    }
}

#[test]
fn stats_groups() {
    let mut s = Shard::new(64 * MB);
    assert!(
        s.stats(stats_group::ITEMS).is_empty(),
        "no items, no classes"
    );
    assert!(s.stats(stats_group::SIZES).is_empty());
    s.set("a", "12345");
    s.set("b", "x");
    s.get("a");
    s.get("a");
    s.keyed(Op::Delete, "b");
    test_clock::set(103);
    let general = s.stats(stats_group::GENERAL);
    let names: Vec<&str> = general.iter().map(|(k, _)| k.as_str()).collect();
    for n in [
        "curr_items",
        "total_items",
        "bytes",
        "evictions",
        "expired_unfetched",
        "evicted_unfetched",
        "evicted_active",
        "reclaimed",
        "get_expired",
        "get_flushed",
        "limit_maxbytes",
    ] {
        assert!(names.contains(&n), "missing {n}");
    }
    assert!(general.iter().all(|(_, v)| v.parse::<u64>().is_ok()));
    assert_eq!(s.general("curr_items"), 1);
    assert_eq!(s.general("total_items"), 2);
    assert_eq!(s.general("bytes"), footprint(6));
    assert_eq!(s.general("limit_maxbytes"), 64 * MB);

    let items = s.stats(stats_group::ITEMS);
    assert!(items.iter().all(|(k, _)| k.starts_with("items:1:")));
    assert_eq!(s.stat(stats_group::ITEMS, "items:1:number"), 1);
    assert_eq!(s.stat(stats_group::ITEMS, "items:1:age"), 3);
    assert_eq!(s.stat(stats_group::ITEMS, "items:1:evicted"), 0);
    // The first hit found "a" unreferenced, the second referenced.
    assert_eq!(s.stat(stats_group::ITEMS, "items:1:hits_to_cold"), 1);
    assert_eq!(s.stat(stats_group::ITEMS, "items:1:hits_to_warm"), 1);
    assert_eq!(s.item_sum("number_warm"), 1);
    assert_eq!(s.stat(stats_group::ITEMS, "items:1:number_cold"), 0);

    assert_eq!(s.stat(stats_group::SLABS, "1:used_chunks"), 1);
    assert_eq!(s.stat(stats_group::SLABS, "1:get_hits"), 2);
    assert_eq!(s.stat(stats_group::SLABS, "1:delete_hits"), 1);
    assert_eq!(s.stat(stats_group::SLABS, "1:cmd_set"), 2);
    assert_eq!(s.stat(stats_group::SLABS, "active_slabs"), 1);
    assert!(s.stat(stats_group::SLABS, "total_malloced") > 0);
}

#[test]
fn plugin_config_and_init_checks() {
    use crate::store::Tuning;
    assert_eq!(Tuning::parse("").unwrap(), Tuning::default());
    let t = Tuning::parse("small_pct=30, crawl_per_tick=100, warm_pct=40").unwrap();
    assert_eq!((t.small_pct, t.crawl_per_tick), (30, 100));
    assert!(Tuning::parse("warm_pct=200").is_err());
    assert!(Tuning::parse("promote=0").is_err());
    assert!(Tuning::parse("bogus=1").is_err());
    assert!(Tuning::parse("warm_pct").is_err());

    let mut rt: Runtime<Checked> = Runtime::default();
    let mut buf = Vec::new();
    Init {
        config: b"nope=1",
        ..init(MB, 0)
    }
    .encode(&mut buf);
    write_input(&mut rt, &buf);
    assert_eq!(rt.init(buf.len()), 3, "bad plugin config refuses to start");
    buf.clear();
    Init {
        shard_id: 4,
        shard_count: 4,
        ..init(MB, 0)
    }
    .encode(&mut buf);
    write_input(&mut rt, &buf);
    assert_eq!(rt.init(buf.len()), 3);
}

#[test]
fn unknown_ops_and_long_keys_are_errors_not_traps() {
    let mut s = Shard::new(MB);
    let r = s.one(Request {
        op: 99,
        ..Default::default()
    });
    assert_eq!(r.status, Status::Error);
    let long = "k".repeat(300);
    assert_eq!(s.get(&long).status, Status::Error);
    assert_eq!(s.set(&"k".repeat(250), "v").status, Status::Stored);
}

/// Random operations against a model; the store's structures are
/// cross-checked after every batch.
#[test]
fn random_ops_match_a_model() {
    use std::collections::HashMap;
    let mut s = Shard::new(64 * MB);
    let mut model: HashMap<String, (Vec<u8>, u32)> = HashMap::new();
    let mut rng = Rng(0x1234_5678);
    let mut now = 100;
    for round in 0..20_000 {
        if round % 500 == 0 {
            now += 1;
            s.tick(now);
        }
        let key = format!("k{}", rng.below(300));
        let val = format!("{}", rng.below(1000));
        let alive = |m: &HashMap<String, (Vec<u8>, u32)>, k: &str| {
            m.get(k).filter(|(_, e)| *e == 0 || *e > now).cloned()
        };
        match rng.below(8) {
            0 | 1 => {
                let exptime = if rng.below(4) == 0 {
                    now + 1 + rng.below(3) as u32
                } else {
                    0
                };
                assert_eq!(
                    s.store(Op::Set, &key, &val, 0, exptime).status,
                    Status::Stored
                );
                model.insert(key, (val.into_bytes(), exptime));
            }
            2 => {
                let r = s.store(Op::Append, &key, &val, 0, 0);
                match alive(&model, &key) {
                    Some((mut v, e)) => {
                        assert_eq!(r.status, Status::Stored);
                        v.extend_from_slice(val.as_bytes());
                        model.insert(key, (v, e));
                    }
                    None => assert_eq!(r.status, Status::NotStored),
                }
            }
            3 => {
                let r = s.keyed(Op::Delete, &key);
                let expect = if alive(&model, &key).is_some() {
                    Status::Deleted
                } else {
                    Status::NotFound
                };
                assert_eq!(r.status, expect);
                model.remove(&key);
            }
            4 => {
                let r = s.delta(Op::Incr, &key, 7);
                match alive(&model, &key) {
                    None => assert_eq!(r.status, Status::NotFound),
                    Some((v, e)) => match crate::num::parse_u64(&v) {
                        None => assert_eq!(r.status, Status::NonNumeric),
                        Some(n) => {
                            let digits = (n + 7).to_string();
                            assert_eq!(r.value, digits.as_bytes());
                            let mut nv = digits.into_bytes();
                            if nv.len() < v.len() {
                                nv.resize(v.len(), b' ');
                            }
                            model.insert(key, (nv, e));
                        }
                    },
                }
            }
            _ => {
                let r = s.get(&key);
                match alive(&model, &key) {
                    Some((v, _)) => assert_eq!((r.status, r.value), (Status::Hit, v)),
                    None => assert_eq!(r.status, Status::Miss),
                }
            }
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A Zipf(0.99) read trace over 100k keys with bursts of one-off keys (as a
/// batch job would cause). `read_once_pct`: share of steps that store a fresh key and read it back
/// exactly once (sessions, one-shot tokens), which must not push out the hot set.
fn zipf_trace_with(read_once_pct: u64) -> Vec<u64> {
    let keys = 100_000u64;
    let weights: Vec<f64> = (1..=keys).map(|r| 1.0 / (r as f64).powf(0.99)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(keys as usize);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut rng = Rng(42);
    let mut trace: Vec<u64> = Vec::new();
    for i in 0..400_000u64 {
        if i % 50_000 == 25_000 {
            trace.extend((0..3000).map(|j| keys + i + j));
        }
        if rng.below(100) < read_once_pct {
            let fresh = 1 << 40 | i;
            trace.extend([fresh, fresh]);
            continue;
        }
        let u = rng.unit();
        trace.push(cdf.partition_point(|&c| c < u) as u64);
    }
    trace
}

fn lru_hit_ratio(trace: &[u64], capacity: usize) -> f64 {
    let mut lru = std::collections::HashMap::<u64, u64>::new();
    let mut order = std::collections::BTreeMap::<u64, u64>::new();
    let mut hits = 0u64;
    for (t, &k) in trace.iter().enumerate() {
        let t = t as u64;
        if let Some(old) = lru.insert(k, t) {
            order.remove(&old);
            hits += 1;
        } else if lru.len() > capacity {
            let (&oldest_t, &oldest_k) = order.iter().next().unwrap();
            order.remove(&oldest_t);
            lru.remove(&oldest_k);
        }
        order.insert(t, k);
    }
    hits as f64 / trace.len() as f64
}

/// Runs `trace` as get, and set on a miss; returns the hit ratio and the
/// number of items the store held at the end.
fn store_hit_ratio(trace: &[u64], budget: u64, config: &[u8]) -> (f64, usize) {
    let mut s = Shard::with(Init {
        config,
        ..init(budget, init_flag::CAS)
    });
    s.check = false;
    let value = "v".repeat(100);
    let mut hits = 0u64;
    for k in trace {
        let name = format!("key:{k:08}");
        if s.get(&name).status == Status::Hit {
            hits += 1;
        } else {
            s.set(&name, &value);
        }
    }
    s.verify();
    let items = s.general("curr_items") as usize;
    (hits as f64 / trace.len() as f64, items)
}

/// The hit ratio on a skewed read-mostly workload must be at least that of an
/// exact LRU holding as many items, i.e. of memcached's classic LRU; one-off
/// scans must not flush the hot set.
#[test]
fn hit_ratio_is_at_least_lru() {
    for read_once in [0, 30] {
        let trace = zipf_trace_with(read_once);
        let (ours, items) = store_hit_ratio(&trace, 2 * MB, b"");
        let lru = lru_hit_ratio(&trace, items);
        eprintln!("read-once {read_once}%: store {ours:.4}, LRU {lru:.4}, {items} items");
        assert!(
            ours >= lru,
            "read-once {read_once}%: store {ours:.4} < LRU {lru:.4}"
        );
    }
}

// ---- ABI v2: the meta protocol's item states ------------------------------

use abi::iflag;

fn meta_get(s: &mut Shard, key: &str, mflags: u32, aux: u32, delta: u64) -> Resp {
    s.one(Request {
        op: Op::Get as u8,
        key: key.as_bytes(),
        mflags,
        aux,
        delta,
        ..Default::default()
    })
}

#[test]
fn vivify_on_miss_wins_once_then_others_see_the_token() {
    let mut s = Shard::new(64 * MB);
    let r = meta_get(&mut s, "v", mflag::VIVIFY, 130, 0);
    assert_eq!(r.status, Status::Hit);
    assert_eq!(r.iflags, iflag::CREATED | iflag::WON);
    assert_eq!((r.value.len(), r.flags, r.exptime), (0, 0, 130));
    assert_ne!(r.cas, 0);
    let again = meta_get(&mut s, "v", mflag::VIVIFY, 130, 0);
    assert_eq!(again.iflags, iflag::TOKEN_SENT | iflag::FETCHED);
    assert_eq!(again.cas, r.cas, "no second item");
    // A real store replaces the stub and clears the token.
    assert_eq!(s.set("v", "x").status, Status::Stored);
    assert_eq!(meta_get(&mut s, "v", 0, 0, 0).iflags, 0);
    // NO_TOKEN (the client gets an error): created, but nobody won.
    let r = meta_get(&mut s, "nt", mflag::VIVIFY | mflag::NO_TOKEN, 0, 0);
    assert_eq!(r.iflags, iflag::CREATED);
    assert_eq!(
        meta_get(&mut s, "nt", 0, 0, 0).iflags & iflag::TOKEN_SENT,
        0
    );
    // Without VIVIFY a miss stays a miss.
    assert_eq!(meta_get(&mut s, "w", 0, 0, 0).status, Status::Miss);
}

#[test]
fn recache_wins_when_the_ttl_is_below_the_threshold() {
    let mut s = Shard::new(64 * MB);
    s.store(Op::Set, "r", "v", 0, 110);
    // TTL (110) not below 105: no win.
    assert_eq!(
        meta_get(&mut s, "r", mflag::RECACHE, 0, 105).iflags & iflag::WON,
        0
    );
    let won = meta_get(&mut s, "r", mflag::RECACHE, 0, 120);
    assert_eq!(won.iflags & (iflag::WON | iflag::TOKEN_SENT), iflag::WON);
    let lost = meta_get(&mut s, "r", mflag::RECACHE, 0, 120);
    assert_eq!(
        lost.iflags & (iflag::WON | iflag::TOKEN_SENT),
        iflag::TOKEN_SENT
    );
    // Items that never expire never win a recache.
    s.store(Op::Set, "p", "v", 0, 0);
    assert_eq!(
        meta_get(&mut s, "p", mflag::RECACHE, 0, 500).iflags & iflag::WON,
        0
    );
    // Gat: the old TTL is compared unless RECACHE_NEW_TTL.
    s.store(Op::Set, "g", "v", 0, 500);
    let r = s.one(Request {
        op: Op::Gat as u8,
        key: b"g",
        exptime: 110,
        mflags: mflag::RECACHE,
        delta: 120,
        ..Default::default()
    });
    assert_eq!(
        (r.iflags & iflag::WON, r.exptime, r.prev_exptime),
        (0, 110, 500)
    );
    let r = s.one(Request {
        op: Op::Gat as u8,
        key: b"g",
        exptime: 110,
        mflags: mflag::RECACHE | mflag::RECACHE_NEW_TTL,
        delta: 120,
        ..Default::default()
    });
    assert_eq!(r.iflags & iflag::WON, iflag::WON);
}

#[test]
fn invalidate_marks_stale_and_the_first_reader_wins() {
    let mut s = Shard::new(64 * MB);
    let st = s.set("i", "old");
    let r = s.one(Request {
        op: Op::Delete as u8,
        key: b"i",
        exptime: 200,
        mflags: mflag::INVALIDATE | mflag::SET_TTL,
        ..Default::default()
    });
    assert_eq!(r.status, Status::Deleted);
    assert!(r.cas > st.cas, "a new CAS");
    // A plain get (text get, me) never takes the token.
    let peek = meta_get(&mut s, "i", mflag::NO_BUMP, 0, 0);
    assert_eq!(peek.iflags, iflag::STALE);
    let first = meta_get(&mut s, "i", mflag::META_GET, 0, 0);
    assert_eq!(first.value, b"old");
    assert_eq!(first.exptime, 200);
    assert_eq!(first.iflags & !iflag::FETCHED, iflag::STALE | iflag::WON);
    let second = meta_get(&mut s, "i", mflag::META_GET, 0, 0);
    assert_eq!(
        second.iflags & !iflag::FETCHED,
        iflag::STALE | iflag::TOKEN_SENT
    );
    // A CAS store with an older CAS and INVALIDATE stores, still stale,
    // keeping the TTL and the token mark.
    let r = s.one(Request {
        op: Op::Cas as u8,
        key: b"i",
        value: b"new",
        cas: 1,
        exptime: 999,
        mflags: mflag::INVALIDATE,
        ..Default::default()
    });
    assert_eq!((r.status, r.exptime), (Status::Stored, 200));
    let g = meta_get(&mut s, "i", mflag::META_GET, 0, 0);
    assert_eq!(g.value, b"new");
    assert_eq!(g.iflags, iflag::STALE | iflag::TOKEN_SENT);
    // Without INVALIDATE the same CAS fails.
    assert_eq!(s.cas("i", "x", 1).status, Status::Exists);
    // HAS_CAS: C0 compares.
    let r = s.one(Request {
        op: Op::Delete as u8,
        key: b"i",
        mflags: mflag::HAS_CAS,
        ..Default::default()
    });
    assert_eq!(r.status, Status::Exists);
}

#[test]
fn binary_keys_are_remembered_and_arith_vivifies() {
    let mut s = Shard::new(64 * MB);
    s.one(Request {
        op: Op::Set as u8,
        key: b"\x00\x01",
        value: b"v",
        mflags: mflag::KEY_BINARY,
        ..Default::default()
    });
    let r = s.one(Request {
        op: Op::Get as u8,
        key: b"\x00\x01",
        ..Default::default()
    });
    assert_eq!(r.iflags & iflag::KEY_BINARY, iflag::KEY_BINARY);
    let r = s.one(Request {
        op: Op::Incr as u8,
        key: b"n",
        value: b"41",
        delta: 1,
        aux: 300,
        mflags: mflag::VIVIFY,
        ..Default::default()
    });
    assert_eq!(
        (r.status, r.iflags, &r.value[..], r.exptime),
        (Status::Number, iflag::CREATED, &b"41"[..], 300)
    );
    let r = s.one(Request {
        op: Op::Incr as u8,
        key: b"n",
        delta: 1,
        exptime: 400,
        mflags: mflag::VIVIFY | mflag::SET_TTL,
        ..Default::default()
    });
    assert_eq!(
        (r.status, r.iflags, &r.value[..], r.exptime, r.prev_exptime),
        (Status::Number, 0, &b"42"[..], 400, 300)
    );
    assert_eq!(s.delta(Op::Decr, "n", 50).value, b"0");
    // A number that outgrows its item moves to a new item that keeps the
    // old TTL (memcached applies ma's T to the replaced item).
    let r = s.one(Request {
        op: Op::Incr as u8,
        key: b"n",
        delta: 1000,
        exptime: 500,
        mflags: mflag::SET_TTL,
        ..Default::default()
    });
    assert_eq!(&r.value[..], b"1000");
    assert_eq!(s.get("n").exptime, 400);
}

/// A multi-key batch reads ahead exactly the slots its lookups then use:
/// every stored key's own slot (chains are short and tags rarely collide),
/// and for a missing key nothing, or a slot whose tag happens to match.
#[test]
fn prefetch_reads_ahead_the_slots_lookups_use() {
    let mut s = Shard::new(64 * MB);
    s.check = false;
    for i in 0..5000 {
        s.set(&format!("key:{i:06}"), "v");
    }
    // Let the tick finish any index resize the sets started.
    for t in 0..200 {
        s.tick(101 + t);
    }
    let keys: Vec<String> = (0..200).map(|i| format!("key:{:06}", i * 37)).collect();
    let reqs: Vec<Request<'_>> = keys
        .iter()
        .map(|k| Request {
            op: Op::Get as u8,
            key: k.as_bytes(),
            ..Default::default()
        })
        .collect();
    PREFETCHED.with(|p| p.borrow_mut().clear());
    let resps = s.batch(&reqs);
    let seen = PREFETCHED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    assert_eq!(seen.len(), reqs.len());
    let mut present = 0;
    let mut exact = 0;
    for ((ahead, slot), (key, r)) in seen.iter().zip(keys.iter().zip(&resps)) {
        match slot {
            Some(slot) => {
                assert_eq!(r.status, Status::Hit, "{key}");
                // The first tag match of the home group: a 7-bit tag
                // matches another key's now and then.
                exact += usize::from(ahead == slot);
                present += 1;
            }
            None => assert_eq!(r.status, Status::Miss, "{key}"),
        }
    }
    // 200 keys, i * 37 < 5000 for i < 136.
    assert_eq!(present, 136);
    assert!(exact * 10 >= present * 9, "{exact} of {present} read ahead");
}

/// A request reuses the hash its window's read-ahead computed, found by
/// where its key lies in the input buffer. The next batch's keys lie in the
/// same buffer: a lone request (no read-ahead) whose key sits where an
/// unused key of the last window sat must still hash its own key, or a set
/// would file the item under another key's hash and later gets miss it.
#[test]
fn a_lone_request_never_takes_the_last_windows_hash() {
    let mut s = Shard::new(64 * MB);
    s.check = false;
    for round in 0..50 {
        let a = format!("aaaa:{round:03}");
        let b = format!("bbbb:{round:03}");
        // A window whose first key is read ahead but never looked up: an
        // unknown operation is refused before any hashing.
        let unknown = Request {
            op: 200,
            key: a.as_bytes(),
            ..Default::default()
        };
        let keyless = Request {
            op: Op::MemLimit as u8,
            delta: 64 * MB,
            ..Default::default()
        };
        s.batch(&[unknown, keyless]);
        // Alone, its key where `a`'s was, of the same length.
        assert_eq!(s.set(&b, "v").status, Status::Stored);
        assert_eq!(s.value(&b).as_deref(), Some("v"), "round {round}");
    }
}

/// One listed item, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Listed {
    key: String,
    exptime: u32,
    last_access: u32,
    cas: u64,
    flags: u32,
    value_len: u32,
    size: u32,
    iflags: u8,
    class: u8,
}

impl Shard {
    /// One `wmc_iter` call: the records and the next cursor.
    fn list_once(&mut self, cursor: u64, max_bytes: usize) -> (Vec<Listed>, u64) {
        let chunk = self.rt.iter(cursor, max_bytes).expect("listing supported");
        let (next, n) = abi::check_iter_chunk(chunk).expect("well-formed chunk");
        let (_, recs) = abi::iter_chunk(chunk).unwrap();
        let got: Vec<Listed> = recs
            .map(|r| {
                let r = r.unwrap();
                Listed {
                    key: String::from_utf8_lossy(r.key).into_owned(),
                    exptime: r.exptime,
                    last_access: r.last_access,
                    cas: r.cas,
                    flags: r.client_flags,
                    value_len: r.value_len,
                    size: r.size,
                    iflags: r.iflags,
                    class: r.class,
                }
            })
            .collect();
        assert_eq!(got.len(), n as usize);
        (got, next)
    }

    /// A whole listing, as the host walks it; returns it and the calls made.
    fn list_all(&mut self, max_bytes: usize) -> (Vec<Listed>, usize) {
        let (mut all, mut cursor, mut calls) = (Vec::new(), 0, 0);
        loop {
            let (got, next) = self.list_once(cursor, max_bytes);
            all.extend(got);
            calls += 1;
            assert!(calls < 1_000_000, "listing never ends");
            if next == 0 {
                return (all, calls);
            }
            cursor = next;
        }
    }
}

#[test]
fn listing_shows_every_live_item_and_changes_nothing() {
    let mut a = Shard::new(64 * MB);
    let flagged = a.store(Op::Set, "flagged", "abc", 0xdead_beef, 500);
    a.store(Op::Set, "dies", "x", 0, 103);
    a.store(Op::Set, "past", "x", 0, 1);
    let bin = a.one(Request {
        op: Op::Set as u8,
        key: b"bin\x01",
        value: b"\0\r\n",
        mflags: mflag::KEY_BINARY,
        ..Default::default()
    });
    for i in 0..3000 {
        a.set(&format!("k{i}"), &format!("value {i}"));
    }
    assert_eq!(a.get("k7").status, Status::Hit);
    test_clock::set(103);
    let before = a.stats(stats_group::GENERAL);

    // Small chunks: many calls, each within the limit.
    let (items, calls) = a.list_all(1024);
    assert!(calls > 50, "{calls} calls");
    let mut keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "every item once");
    assert_eq!(n, 3000 + 2, "expired items are left out");
    assert!(!keys.contains(&"dies") && !keys.contains(&"past"));
    let f = items.iter().find(|i| i.key == "flagged").unwrap();
    assert_eq!(
        f,
        &Listed {
            key: "flagged".into(),
            exptime: 500,
            last_access: 100,
            cas: flagged.cas,
            flags: 0xdead_beef,
            value_len: 3,
            // memcached's ITEM_ntotal: 48 + key + 1 + flags 4 + value + 2 + cas 8.
            size: 48 + 7 + 1 + 4 + 3 + 2 + 8,
            iflags: 0,
            // memcached's class 1 holds up to 96 bytes.
            class: 1,
        }
    );
    let b = items.iter().find(|i| i.key == "bin\x01").unwrap();
    assert_eq!((b.iflags, b.cas), (abi::iflag::KEY_BINARY, bin.cas));
    let fetched = |k: &str| items.iter().find(|i| i.key == k).unwrap().iflags;
    assert_eq!(fetched("k7"), abi::iflag::FETCHED);
    assert_eq!(fetched("k8"), 0);

    // Nothing changed: the stats, the FETCHED marks, the access times.
    assert_eq!(a.stats(stats_group::GENERAL), before);
    assert_eq!(
        a.list_all(1 << 20).0,
        items,
        "a second listing sees the same"
    );
    let k8 = a.get("k8");
    assert_eq!((k8.iflags & abi::iflag::FETCHED, k8.last_access), (0, 100));
    // A flushed store lists nothing.
    a.flush_all(0);
    assert_eq!(a.list_all(1 << 20).0, vec![]);
}

#[test]
fn listing_is_bounded_per_call_and_resumes_between_batches() {
    let mut a = Shard::new(64 * MB);
    a.check = false;
    let n = 3 * crate::store::LIST_ITEMS_PER_CALL as usize;
    for i in 0..n {
        a.set(&format!("k{i}"), "v");
    }
    // Free every slot but the last few: one call looks at a bounded number
    // of slots, and says where to go on even when it found nothing.
    for i in 0..n - 10 {
        assert_eq!(
            a.keyed(Op::Delete, &format!("k{i}")).status,
            Status::Deleted
        );
    }
    let (got, next) = a.list_once(0, 1 << 20);
    assert_eq!(got.len(), 0);
    assert_ne!(next, 0, "the walk goes on");
    let (items, calls) = a.list_all(1 << 20);
    assert_eq!((items.len(), calls), (10, 3));

    // Batches run between the calls; items stored throughout are listed
    // once, whatever was added and removed meanwhile.
    let mut b = Shard::new(64 * MB);
    b.check = false;
    for i in 0..2000 {
        b.set(&format!("s{i}"), "stays");
        b.set(&format!("g{i}"), "goes");
    }
    let (mut seen, mut cursor, mut round) = (Vec::new(), 0, 0);
    loop {
        let (got, next) = b.list_once(cursor, 2048);
        seen.extend(got.into_iter().map(|i| i.key));
        for _ in 0..5 {
            b.keyed(Op::Delete, &format!("g{round}"));
            b.set(&format!("new{round}"), "x");
            round += 1;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut stays: Vec<_> = seen.iter().filter(|k| k.starts_with('s')).collect();
    stays.sort_unstable();
    let all = stays.len();
    stays.dedup();
    assert_eq!((stays.len(), all), (2000, 2000));
}

#[test]
fn a_listing_under_way_keeps_items_in_their_slots() {
    // Items in the last slot chunk, free slots below: the background slice
    // would move those items down behind the listing's cursor.
    let mut a = Shard::new(MB);
    a.check = false;
    let value = "v".repeat(20);
    for i in 0..4000 {
        a.set(&format!("k{i}"), &value);
    }
    for i in 0..3900 {
        a.keyed(Op::Delete, &format!("k{i}"));
    }
    let pages = a.segments();
    assert!(pages > 2, "{pages} segments");
    let (first, cursor) = a.list_once(0, 1024);
    assert!(!first.is_empty() && cursor != 0);
    a.tick(101);
    assert_eq!(a.segments(), pages);
    let mut keys: Vec<String> = first.into_iter().map(|i| i.key).collect();
    let mut cursor = cursor;
    while cursor != 0 {
        let (got, next) = a.list_once(cursor, 1024);
        keys.extend(got.into_iter().map(|i| i.key));
        cursor = next;
    }
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 100, "every item listed once");
    // Once no listing has called for a while, the slice compacts again.
    a.tick(101 + crate::store::LISTING_QUIET_SECS + 1);
    assert!(a.segments() < pages);
}

/// ABI v6: with LOG_LOOKUP a request reports the lookup memcached's
/// `do_item_get` makes (found or not, with the item's size and flags), an
/// append the size it left and `ma N` the add it makes; with
/// LOG_EVICTIONS each eviction; without the bits nothing.
#[test]
fn watched_requests_report_lookups_appends_and_evictions() {
    use abi::{event_flag, event_kind, Event};
    let mut a = Shard::new(64 * MB);
    test_clock::take_events();
    let watched = |op: Op, key: &'static str, value: &'static str| Request {
        op: op as u8,
        key: key.as_bytes(),
        value: value.as_bytes(),
        client_flags: 3,
        mflags: mflag::LOG_LOOKUP,
        ..Default::default()
    };
    a.batch(&[
        watched(Op::Set, "a", "xy"),
        watched(Op::Get, "a", ""),
        watched(Op::Append, "a", "zzz"),
        watched(Op::Delete, "nope", ""),
        Request {
            mflags: mflag::LOG_LOOKUP | mflag::VIVIFY,
            aux: 500,
            ..watched(Op::Incr, "n", "7")
        },
    ]);
    a.set("quiet", "x");
    let buf = test_clock::take_events();
    // (request, kind, flags, key, value_len, client_flags)
    type Seen<'a> = (u32, u8, u8, &'a [u8], u32, u32);
    let got: Vec<Seen<'_>> = Event::all(&buf)
        .map(|e| {
            (
                e.request,
                e.kind,
                e.flags,
                e.key,
                e.value_len,
                e.client_flags,
            )
        })
        .collect();
    let (l, s, f) = (event_kind::LOOKUP, event_kind::STORED, event_flag::FOUND);
    assert_eq!(
        got,
        vec![
            (0, l, 0, &b"a"[..], 0, 0),
            (1, l, f, b"a", 2, 3),
            (2, l, f, b"a", 2, 3),
            (2, s, 0, b"a", 5, 3),
            (3, l, 0, b"nope", 0, 0),
            (4, l, 0, b"n", 0, 0),
            (4, l, 0, b"n", 0, 0),
            (4, s, 0, b"n", 1, 0),
        ]
    );
    // Evictions: every one reported, with the evicted item's fields.
    let mut b = Shard::new(MB);
    b.check = false;
    let before = b.general("evictions");
    let value = "v".repeat(10_000);
    for i in 0..300 {
        b.one(Request {
            op: Op::Set as u8,
            key: format!("k{i}").as_bytes(),
            value: value.as_bytes(),
            client_flags: 9,
            mflags: mflag::LOG_EVICTIONS,
            ..Default::default()
        });
    }
    let evicted = b.general("evictions") - before;
    assert!(evicted > 0);
    let buf = test_clock::take_events();
    let events: Vec<Event<'_>> = Event::all(&buf).collect();
    assert_eq!(events.len() as u64, evicted);
    for e in &events {
        assert_eq!(e.kind, event_kind::EVICTION);
        assert_eq!((e.value_len, e.client_flags, e.flags), (10_000, 9, 0));
        assert!(e.key.starts_with(b"k"));
        assert!(b.get(std::str::from_utf8(e.key).unwrap()).status == Status::Miss);
    }
}
