//! `wasmcached plugin check FILE [--contract full|basic]`: a conformance kit
//! for storage plugins.
//!
//! It loads the plugin (`.wasm` or `.wat`; `default` for the embedded default
//! store), checks its exports and ABI version, then runs memcached's storage
//! semantics directly against [`Shard`]s: no sockets, no protocol parsing,
//! the same request records the workers send. The server clock is set by the
//! kit ([`clock::set_now_for_check`]) so expiry is tested without waiting.
//! Then [`wire`] runs the plugin behind a real server and checks what
//! clients of the text, meta and binary protocols see (`wire_*` checks).
//!
//! Every check prints `PASS name`, `FAIL name: expected X, got Y` or
//! `SKIP name (why)`, then a summary. The exit code is 0 only when every
//! check of the chosen contract passed. `--contract basic` asks only for
//! get/set/delete/flush_all, for minimal plugins.

mod report;
mod wire;

pub use report::{Contract, Report};
use report::{Outcome, Verdict};

use crate::clock;
use crate::plugin::{FaultStats, MetricValue, Plugin, Shard, ShardConfig, DEFAULT_PLUGIN};
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use wasmcached_abi::{self as abi, Op, Request, Status};

/// The server time every check starts at.
const T0: u32 = 1000;
/// The item size limit the kit configures (`-I`, memcached's default).
const ITEM_MAX: usize = 1 << 20;
/// The budget of the ordinary shards (`-m 64`).
const BUDGET: u64 = 64 << 20;

const USAGE: &str =
    "usage: wasmcached plugin check FILE.wasm|FILE.wat|default [--contract full|basic]";

/// The arguments after `wasmcached plugin`; returns the process exit code.
pub fn main(args: &[OsString]) -> ExitCode {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut file = None;
    let mut contract = Contract::Full;
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("check") => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    }
    while let Some(a) = it.next() {
        let value = match a.as_str() {
            "--contract" => it.next().map(String::as_str),
            s if s.starts_with("--contract=") => Some(&s["--contract=".len()..]),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            s if file.is_none() && (!s.starts_with('-') || s == "--default") => {
                file = Some(s.trim_start_matches("--").to_string());
                continue;
            }
            s => {
                eprintln!("wasmcached plugin check: unexpected argument {s:?}\n{USAGE}");
                return ExitCode::from(64);
            }
        };
        contract = match value {
            Some("full") => Contract::Full,
            Some("basic") => Contract::Basic,
            v => {
                eprintln!("wasmcached plugin check: --contract wants full or basic, got {v:?}");
                return ExitCode::from(64);
            }
        };
    }
    let Some(file) = file else {
        eprintln!("{USAGE}");
        return ExitCode::from(64);
    };
    let path = (file != "default").then(|| Path::new(&file));
    let loaded = match path {
        None => Plugin::new(DEFAULT_PLUGIN, "default-store"),
        Some(p) => Plugin::load(Some(p)),
    };
    let plugin = match loaded {
        Ok(p) => Arc::new(p),
        Err(e) => {
            println!("FAIL load: expected a wasmcached plugin, got: {e:#}");
            println!("0 passed, 1 failed, 0 skipped");
            return ExitCode::FAILURE;
        }
    };
    let report = run(&plugin, path, contract);
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

type CheckFn = fn(&mut Kit) -> Outcome;

/// The checks, in order, and whether the basic contract includes them.
const CHECKS: &[(&str, bool, CheckFn)] = &[
    ("get_miss", true, get_miss),
    ("set_get_hit", true, set_get_hit),
    ("set_overwrite", true, set_overwrite),
    ("delete", true, delete),
    ("flush_all_immediate", true, flush_all_immediate),
    ("gets_cas", false, gets_cas),
    ("add", false, add),
    ("replace", false, replace),
    ("append_prepend", false, append_prepend),
    ("cas_match", false, cas_match),
    ("cas_mismatch_exists", false, cas_mismatch),
    ("cas_missing_not_found", false, cas_missing),
    ("incr_decr", false, incr_decr),
    ("incr_wraps_at_2_64", false, incr_wrap),
    ("decr_floors_at_0", false, decr_floor),
    ("incr_decr_non_numeric", false, incr_non_numeric),
    ("incr_decr_missing", false, incr_missing),
    ("touch", false, touch),
    ("flags_roundtrip", false, flags_roundtrip),
    ("zero_length_value", false, zero_length_value),
    ("max_size_value", false, max_size_value),
    ("binary_safe_value", false, binary_safe_value),
    ("expiry_relative", false, expiry_relative),
    ("negative_exptime_expired", false, negative_exptime),
    ("flush_all_delayed", false, flush_all_delayed),
    ("memory_budget_evict", false, memory_budget_evict),
    ("memory_budget_no_evict", false, memory_budget_no_evict),
    ("many_keys_in_one_batch", false, many_keys_batch),
    ("dump_load_roundtrip", false, dump_load_roundtrip),
    ("memory_image_roundtrip", false, memory_image_roundtrip),
    ("item_listing", false, item_listing),
    ("plugin_metrics", true, plugin_metrics),
];

/// Runs the kit against `plugin` (loaded from `path`; `None`: the embedded
/// default store), printing one line per check and a summary.
pub fn run(plugin: &Arc<Plugin>, path: Option<&Path>, contract: Contract) -> Report {
    let mut report = Report::default();
    // The exports were checked when the module was compiled; the version
    // when it is instantiated.
    clock::set_now_for_check(T0);
    match Shard::new(plugin.clone(), config(BUDGET, true), Arc::default()) {
        Ok(s) => {
            println!(
                "PASS exports_and_abi_version (ABI v{}{}{})",
                s.abi_version().unwrap_or(0),
                if s.exports_dump_load() {
                    ", exports wmc_dump and wmc_load"
                } else {
                    ""
                },
                if s.lists() { ", lists its items" } else { "" }
            );
            report.passed += 1;
        }
        Err(e) => {
            println!(
                "FAIL exports_and_abi_version: expected an instance that accepts wmc_init, got: {e:#}"
            );
            report.failed += 1;
            summary(&report);
            return report;
        }
    }
    for &(name, basic, check) in CHECKS {
        if contract == Contract::Basic && !basic {
            println!("SKIP {name} (not in the basic contract)");
            report.skipped += 1;
            continue;
        }
        clock::set_now_for_check(T0);
        let outcome = Kit::new(plugin, BUDGET, true).and_then(|mut kit| check(&mut kit));
        report.record(name, outcome);
    }
    wire::run(path, contract, &mut report);
    summary(&report);
    report
}

fn summary(r: &Report) {
    println!(
        "{} passed, {} failed, {} skipped",
        r.passed, r.failed, r.skipped
    );
}

fn config(budget: u64, evict: bool) -> ShardConfig {
    ShardConfig {
        shard_id: 0,
        shard_count: 1,
        memory_budget: budget,
        item_size_max: ITEM_MAX,
        use_cas: true,
        evict_to_free: evict,
        plugin_config: String::new(),
        hints: Default::default(),
        deadline: Duration::from_secs(2),
    }
}

/// One answer, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Resp {
    status: Status,
    key: Vec<u8>,
    value: Vec<u8>,
    flags: u32,
    exptime: u32,
    cas: u64,
}

/// A request as the kit writes it.
#[derive(Clone, Default)]
struct Req<'a> {
    op: Option<Op>,
    key: &'a str,
    value: &'a [u8],
    flags: u32,
    exptime: u32,
    cas: u64,
    delta: u64,
}

/// A shard of the plugin under test, with request helpers.
struct Kit {
    plugin: Arc<Plugin>,
    shard: Shard,
}

fn expected<T: std::fmt::Debug, U: std::fmt::Debug>(what: &str, want: T, got: U) -> String {
    format!("{what}: expected {want:?}, got {got:?}")
}

/// Shows a value readably: text as a string, long values by length.
fn show(v: &[u8]) -> String {
    if v.len() > 64 {
        format!("{} bytes", v.len())
    } else {
        format!("{:?}", String::from_utf8_lossy(v))
    }
}

impl Kit {
    fn new(plugin: &Arc<Plugin>, budget: u64, evict: bool) -> Result<Kit, String> {
        let shard = Shard::new(
            plugin.clone(),
            config(budget, evict),
            Arc::new(FaultStats::default()),
        )
        .map_err(|e| format!("expected a shard instance, got: {e:#}"))?;
        Ok(Kit {
            plugin: plugin.clone(),
            shard,
        })
    }

    fn batch(&mut self, reqs: &[Req<'_>]) -> Result<Vec<Resp>, String> {
        let mut buf = Vec::new();
        abi::begin_batch(&mut buf);
        for r in reqs {
            Request {
                op: r.op.map_or(0, |o| o as u8),
                key: r.key.as_bytes(),
                value: r.value,
                client_flags: r.flags,
                exptime: r.exptime,
                cas: r.cas,
                delta: r.delta,
                ..Default::default()
            }
            .encode(&mut buf);
        }
        abi::set_batch_count(&mut buf, reqs.len() as u32);
        let out = self.shard.batch(&buf, reqs.len() as u32).map_err(|f| {
            format!(
                "expected {} answers, got a plugin fault ({})",
                reqs.len(),
                f.0
            )
        })?;
        Ok(out
            .records()
            .map(|r| Resp {
                status: r.status().expect("checked by the shard"),
                key: r.key.to_vec(),
                value: r.value.to_vec(),
                flags: r.client_flags,
                exptime: r.exptime,
                cas: r.cas,
            })
            .collect())
    }

    fn one(&mut self, req: Req<'_>) -> Result<Resp, String> {
        Ok(self.batch(&[req])?.pop().expect("one answer"))
    }

    fn store(
        &mut self,
        op: Op,
        key: &str,
        value: &[u8],
        flags: u32,
        exptime: u32,
    ) -> Result<Resp, String> {
        self.one(Req {
            op: Some(op),
            key,
            value,
            flags,
            exptime,
            ..Default::default()
        })
    }

    /// A store that must answer Stored.
    fn set(&mut self, key: &str, value: &[u8]) -> Result<Resp, String> {
        self.set_with(key, value, 0, 0)
    }

    fn set_with(
        &mut self,
        key: &str,
        value: &[u8],
        flags: u32,
        exptime: u32,
    ) -> Result<Resp, String> {
        let r = self.store(Op::Set, key, value, flags, exptime)?;
        status(&format!("set {key}"), Status::Stored, &r)?;
        Ok(r)
    }

    fn keyed(&mut self, op: Op, key: &str) -> Result<Resp, String> {
        self.one(Req {
            op: Some(op),
            key,
            ..Default::default()
        })
    }

    fn get(&mut self, key: &str) -> Result<Resp, String> {
        self.keyed(Op::Get, key)
    }

    /// A get that must hit with `value`; returns the answer.
    fn hit(&mut self, key: &str, value: &[u8]) -> Result<Resp, String> {
        let r = self.get(key)?;
        status(&format!("get {key}"), Status::Hit, &r)?;
        if r.value != value {
            return Err(format!(
                "get {key}: expected value {}, got {}",
                show(value),
                show(&r.value)
            ));
        }
        if r.key != key.as_bytes() {
            return Err(expected(
                &format!("get {key}: echoed key"),
                key,
                show(&r.key),
            ));
        }
        Ok(r)
    }

    fn miss(&mut self, key: &str) -> Result<(), String> {
        let r = self.get(key)?;
        status(&format!("get {key}"), Status::Miss, &r)
    }

    fn delta(&mut self, op: Op, key: &str, delta: u64) -> Result<Resp, String> {
        self.one(Req {
            op: Some(op),
            key,
            delta,
            ..Default::default()
        })
    }

    fn number(&mut self, op: Op, key: &str, delta: u64, want: &str) -> Result<(), String> {
        let r = self.delta(op, key, delta)?;
        let what = format!("{op:?} {key} by {delta}");
        status(&what, Status::Number, &r)?;
        if r.value != want.as_bytes() {
            return Err(expected(&what, want, show(&r.value)));
        }
        Ok(())
    }

    fn flush_all(&mut self, exptime: u32) -> Result<(), String> {
        let r = self.one(Req {
            op: Some(Op::FlushAll),
            exptime,
            ..Default::default()
        })?;
        status("flush_all", Status::Ok, &r)
    }
}

fn status(what: &str, want: Status, got: &Resp) -> Result<(), String> {
    if got.status == want {
        Ok(())
    } else if got.status == Status::Error {
        Err(format!(
            "{what}: expected {want:?}, got Error ({})",
            show(&got.value)
        ))
    } else {
        Err(expected(what, want, got.status))
    }
}

fn ensure(
    cond: bool,
    what: &str,
    want: impl std::fmt::Debug,
    got: impl std::fmt::Debug,
) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(expected(what, want, got))
    }
}

fn get_miss(k: &mut Kit) -> Outcome {
    k.miss("never-set")?;
    let r = k.keyed(Op::Get, "never-set")?;
    ensure(
        r.value.is_empty(),
        "a miss carries no value",
        "",
        show(&r.value),
    )?;
    Ok(Verdict::Pass)
}

fn set_get_hit(k: &mut Kit) -> Outcome {
    k.set("foo", b"bar")?;
    k.hit("foo", b"bar")?;
    Ok(Verdict::Pass)
}

fn set_overwrite(k: &mut Kit) -> Outcome {
    k.set("foo", b"one")?;
    k.set("foo", b"two, longer")?;
    k.hit("foo", b"two, longer")?;
    k.set("foo", b"3")?;
    k.hit("foo", b"3")?;
    Ok(Verdict::Pass)
}

fn delete(k: &mut Kit) -> Outcome {
    k.set("gone", b"v")?;
    k.set("stays", b"w")?;
    let r = k.keyed(Op::Delete, "gone")?;
    status("delete gone", Status::Deleted, &r)?;
    k.miss("gone")?;
    let r = k.keyed(Op::Delete, "gone")?;
    status("delete gone again", Status::NotFound, &r)?;
    k.hit("stays", b"w")?;
    Ok(Verdict::Pass)
}

fn flush_all_immediate(k: &mut Kit) -> Outcome {
    k.set("a", b"1")?;
    k.set("b", b"2")?;
    k.flush_all(0)?;
    k.miss("a")?;
    k.miss("b")?;
    // Items stored after the flush are kept, even within the same second.
    k.set("c", b"3")?;
    k.hit("c", b"3")?;
    clock::set_now_for_check(T0 + 1);
    k.hit("c", b"3")?;
    Ok(Verdict::Pass)
}

fn gets_cas(k: &mut Kit) -> Outcome {
    let stored = k.set("c", b"v")?;
    let r = k.hit("c", b"v")?;
    ensure(
        r.cas != 0,
        "gets of a stored item: a CAS",
        "non-zero",
        r.cas,
    )?;
    ensure(
        stored.cas == 0 || stored.cas == r.cas,
        "the CAS a store answers is the item's",
        stored.cas,
        r.cas,
    )?;
    k.set("c", b"w")?;
    let r2 = k.hit("c", b"w")?;
    ensure(
        r2.cas != r.cas,
        "a new CAS after an overwrite",
        format!("!= {}", r.cas),
        r2.cas,
    )?;
    Ok(Verdict::Pass)
}

fn add(k: &mut Kit) -> Outcome {
    let r = k.store(Op::Add, "new", b"1", 0, 0)?;
    status("add of a new key", Status::Stored, &r)?;
    k.hit("new", b"1")?;
    let r = k.store(Op::Add, "new", b"2", 0, 0)?;
    status("add of an existing key", Status::NotStored, &r)?;
    k.hit("new", b"1")?;
    Ok(Verdict::Pass)
}

fn replace(k: &mut Kit) -> Outcome {
    let r = k.store(Op::Replace, "r", b"1", 0, 0)?;
    status("replace of a missing key", Status::NotStored, &r)?;
    k.miss("r")?;
    k.set("r", b"1")?;
    let r = k.store(Op::Replace, "r", b"2", 0, 0)?;
    status("replace of an existing key", Status::Stored, &r)?;
    k.hit("r", b"2")?;
    Ok(Verdict::Pass)
}

fn append_prepend(k: &mut Kit) -> Outcome {
    let r = k.store(Op::Append, "ap", b"x", 0, 0)?;
    status("append to a missing key", Status::NotStored, &r)?;
    let r = k.store(Op::Prepend, "ap", b"x", 0, 0)?;
    status("prepend to a missing key", Status::NotStored, &r)?;
    k.miss("ap")?;
    k.set_with("ap", b"mid", 42, T0 + 500)?;
    let r = k.store(Op::Append, "ap", b"-end", 7, 0)?;
    status("append", Status::Stored, &r)?;
    let r = k.store(Op::Prepend, "ap", b"start-", 7, 0)?;
    status("prepend", Status::Stored, &r)?;
    let r = k.hit("ap", b"start-mid-end")?;
    ensure(r.flags == 42, "append/prepend keep the flags", 42, r.flags)?;
    ensure(
        r.exptime == T0 + 500,
        "append/prepend keep the exptime",
        T0 + 500,
        r.exptime,
    )?;
    Ok(Verdict::Pass)
}

fn cas_of(k: &mut Kit, key: &str) -> Result<u64, String> {
    let r = k.get(key)?;
    status(&format!("gets {key}"), Status::Hit, &r)?;
    Ok(r.cas)
}

fn cas_store(k: &mut Kit, key: &str, value: &[u8], cas: u64) -> Result<Resp, String> {
    k.one(Req {
        op: Some(Op::Cas),
        key,
        value,
        cas,
        ..Default::default()
    })
}

fn cas_match(k: &mut Kit) -> Outcome {
    k.set("c", b"1")?;
    let cas = cas_of(k, "c")?;
    let r = cas_store(k, "c", b"2", cas)?;
    status("cas with the item's CAS", Status::Stored, &r)?;
    k.hit("c", b"2")?;
    Ok(Verdict::Pass)
}

fn cas_mismatch(k: &mut Kit) -> Outcome {
    k.set("c", b"1")?;
    let cas = cas_of(k, "c")?;
    k.set("c", b"2")?;
    let r = cas_store(k, "c", b"3", cas)?;
    status("cas with a stale CAS", Status::Exists, &r)?;
    k.hit("c", b"2")?;
    Ok(Verdict::Pass)
}

fn cas_missing(k: &mut Kit) -> Outcome {
    let r = cas_store(k, "nothing", b"1", 12345)?;
    status("cas of a missing key", Status::NotFound, &r)?;
    k.miss("nothing")?;
    Ok(Verdict::Pass)
}

/// The number in an incr'd/decr'd value (memcached may pad it with spaces).
fn trimmed(v: &[u8]) -> &[u8] {
    let end = v.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &v[..end]
}

fn incr_decr(k: &mut Kit) -> Outcome {
    k.set_with("n", b"10", 5, 0)?;
    k.number(Op::Incr, "n", 5, "15")?;
    k.number(Op::Decr, "n", 6, "9")?;
    k.number(Op::Incr, "n", 0, "9")?;
    let r = k.get("n")?;
    status("get n", Status::Hit, &r)?;
    ensure(
        trimmed(&r.value) == b"9",
        "get after incr/decr",
        "9",
        show(&r.value),
    )?;
    ensure(r.flags == 5, "incr/decr keep the flags", 5, r.flags)?;
    k.number(Op::Incr, "n", 1000, "1009")?;
    let r = k.get("n")?;
    ensure(
        trimmed(&r.value) == b"1009",
        "get after growing",
        "1009",
        show(&r.value),
    )?;
    Ok(Verdict::Pass)
}

fn incr_wrap(k: &mut Kit) -> Outcome {
    k.set("w", u64::MAX.to_string().as_bytes())?;
    k.number(Op::Incr, "w", 2, "1")?;
    Ok(Verdict::Pass)
}

fn decr_floor(k: &mut Kit) -> Outcome {
    k.set("d", b"5")?;
    k.number(Op::Decr, "d", 10, "0")?;
    k.number(Op::Decr, "d", 1, "0")?;
    Ok(Verdict::Pass)
}

fn incr_non_numeric(k: &mut Kit) -> Outcome {
    k.set("t", b"abc")?;
    for op in [Op::Incr, Op::Decr] {
        let r = k.delta(op, "t", 1)?;
        status(&format!("{op:?} of \"abc\""), Status::NonNumeric, &r)?;
    }
    k.hit("t", b"abc")?;
    Ok(Verdict::Pass)
}

fn incr_missing(k: &mut Kit) -> Outcome {
    for op in [Op::Incr, Op::Decr] {
        let r = k.delta(op, "none", 1)?;
        status(&format!("{op:?} of a missing key"), Status::NotFound, &r)?;
    }
    k.miss("none")?;
    Ok(Verdict::Pass)
}

fn touch(k: &mut Kit) -> Outcome {
    k.set_with("t", b"v", 0, T0 + 10)?;
    let r = k.one(Req {
        op: Some(Op::Touch),
        key: "t",
        exptime: T0 + 100,
        ..Default::default()
    })?;
    status("touch", Status::Touched, &r)?;
    clock::set_now_for_check(T0 + 50);
    let r = k.hit("t", b"v")?;
    ensure(
        r.exptime == T0 + 100,
        "exptime after touch",
        T0 + 100,
        r.exptime,
    )?;
    clock::set_now_for_check(T0 + 100);
    k.miss("t")?;
    let r = k.one(Req {
        op: Some(Op::Touch),
        key: "missing",
        exptime: T0 + 200,
        ..Default::default()
    })?;
    status("touch of a missing key", Status::NotFound, &r)?;
    Ok(Verdict::Pass)
}

fn flags_roundtrip(k: &mut Kit) -> Outcome {
    for (i, flags) in [0u32, 1, 0xdead_beef, u32::MAX].into_iter().enumerate() {
        let key = format!("f{i}");
        k.set_with(&key, b"v", flags, 0)?;
        let r = k.hit(&key, b"v")?;
        ensure(r.flags == flags, "flags", flags, r.flags)?;
    }
    Ok(Verdict::Pass)
}

fn zero_length_value(k: &mut Kit) -> Outcome {
    k.set("empty", b"")?;
    k.hit("empty", b"")?;
    Ok(Verdict::Pass)
}

fn max_size_value(k: &mut Kit) -> Outcome {
    // memcached counts ~50 bytes of item header against -I: leave room.
    let big: Vec<u8> = (0..ITEM_MAX - 1024).map(|i| (i % 251) as u8).collect();
    k.set("big", &big)?;
    k.hit("big", &big)?;
    let too_big = vec![b'x'; ITEM_MAX + 1];
    let r = k.store(Op::Set, "huge", &too_big, 0, 0)?;
    status(
        "set of a value over the item size limit",
        Status::TooLarge,
        &r,
    )?;
    k.miss("huge")?;
    k.hit("big", &big)?;
    Ok(Verdict::Pass)
}

fn binary_safe_value(k: &mut Kit) -> Outcome {
    let v: Vec<u8> = b"\0\r\nEND\r\nVALUE x 0 1\r\n"
        .iter()
        .copied()
        .chain(0..=255u8)
        .collect();
    k.set("bin", &v)?;
    k.hit("bin", &v)?;
    Ok(Verdict::Pass)
}

fn expiry_relative(k: &mut Kit) -> Outcome {
    // The host resolves "expire in 10 s" to server time now + 10.
    k.set_with("e", b"v", 0, T0 + 10)?;
    k.set_with("never", b"v", 0, 0)?;
    let r = k.hit("e", b"v")?;
    ensure(
        r.exptime == T0 + 10,
        "the item's exptime",
        T0 + 10,
        r.exptime,
    )?;
    clock::set_now_for_check(T0 + 9);
    k.hit("e", b"v")?;
    clock::set_now_for_check(T0 + 10);
    k.miss("e")?;
    clock::set_now_for_check(T0 + 1_000_000);
    k.hit("never", b"v")?;
    Ok(Verdict::Pass)
}

fn negative_exptime(k: &mut Kit) -> Outcome {
    k.set("k", b"old")?;
    // A negative exptime reaches the plugin as server time 1: in the past.
    let r = k.store(Op::Set, "k", b"new", 0, 1)?;
    status("set with a negative exptime", Status::Stored, &r)?;
    k.miss("k")?;
    Ok(Verdict::Pass)
}

fn flush_all_delayed(k: &mut Kit) -> Outcome {
    k.set("a", b"1")?;
    k.flush_all(T0 + 10)?;
    k.hit("a", b"1")?;
    clock::set_now_for_check(T0 + 5);
    k.hit("a", b"1")?;
    clock::set_now_for_check(T0 + 10);
    k.miss("a")?;
    clock::set_now_for_check(T0 + 11);
    k.set("b", b"2")?;
    k.hit("b", b"2")?;
    Ok(Verdict::Pass)
}

/// Stores 40 MB into a 4 MB shard; every answer must be Stored or
/// OutOfMemory and the plugin must never fault. Returns (stored, oom).
fn fill(k: &mut Kit) -> Result<(usize, usize), String> {
    let value = vec![b'm'; 10_000];
    let keys: Vec<String> = (0..4000).map(|i| format!("fill:{i}")).collect();
    let (mut stored, mut oom) = (0, 0);
    for group in keys.chunks(40) {
        let reqs: Vec<Req<'_>> = group
            .iter()
            .map(|key| Req {
                op: Some(Op::Set),
                key,
                value: &value,
                ..Default::default()
            })
            .collect();
        for r in k.batch(&reqs)? {
            match r.status {
                Status::Stored => stored += 1,
                Status::OutOfMemory => oom += 1,
                s => {
                    return Err(expected(
                        "a set into a full shard",
                        "Stored or OutOfMemory",
                        s,
                    ))
                }
            }
        }
    }
    Ok((stored, oom))
}

fn memory_budget_evict(k: &mut Kit) -> Outcome {
    let mut k = Kit::new(&k.plugin, 4 << 20, true)?;
    let (stored, _) = fill(&mut k)?;
    ensure(stored > 0, "sets into a 4 MB shard", "some Stored", stored)?;
    // The newest item is there (memcached evicts the least recently used).
    k.hit("fill:3999", &[b'm'; 10_000])?;
    let mut hits = 0;
    for i in 0..4000 {
        if k.get(&format!("fill:{i}"))?.status == Status::Hit {
            hits += 1;
        }
    }
    ensure(
        hits <= 600,
        "items kept in a 4 MB budget (10 kB each)",
        "at most 600",
        hits,
    )?;
    k.set("after", b"still works")?;
    k.hit("after", b"still works")?;
    Ok(Verdict::Pass)
}

fn memory_budget_no_evict(k: &mut Kit) -> Outcome {
    let mut k = Kit::new(&k.plugin, 4 << 20, false)?;
    let (stored, oom) = fill(&mut k)?;
    ensure(
        stored > 0,
        "sets into a 4 MB shard (-M)",
        "some Stored",
        stored,
    )?;
    ensure(
        oom > 0 && stored <= 600,
        "40 MB into a 4 MB shard without eviction (-M)",
        "OutOfMemory after at most 600 items",
        format!("{stored} stored, {oom} out of memory"),
    )?;
    // Nothing was evicted: the first item is still there.
    k.hit("fill:0", &[b'm'; 10_000])?;
    Ok(Verdict::Pass)
}

fn many_keys_batch(k: &mut Kit) -> Outcome {
    let keys: Vec<String> = (0..500).map(|i| format!("many:{i}")).collect();
    let values: Vec<String> = (0..500).map(|i| format!("value number {i}")).collect();
    let sets: Vec<Req<'_>> = keys
        .iter()
        .zip(&values)
        .map(|(key, v)| Req {
            op: Some(Op::Set),
            key,
            value: v.as_bytes(),
            flags: key.len() as u32,
            ..Default::default()
        })
        .collect();
    for (i, r) in k.batch(&sets)?.iter().enumerate() {
        status(&format!("set {}", keys[i]), Status::Stored, r)?;
    }
    // Gets of every key, interleaved with misses, in one batch: the answers
    // come back one per request, in order.
    let missing: Vec<String> = (0..500).map(|i| format!("absent:{i}")).collect();
    let mut gets = Vec::new();
    for (key, miss) in keys.iter().zip(&missing).rev() {
        gets.push(Req {
            op: Some(Op::Get),
            key,
            ..Default::default()
        });
        gets.push(Req {
            op: Some(Op::Get),
            key: miss,
            ..Default::default()
        });
    }
    let answers = k.batch(&gets)?;
    ensure(
        answers.len() == gets.len(),
        "answers",
        gets.len(),
        answers.len(),
    )?;
    for (req, r) in gets.iter().zip(&answers) {
        if let Some(i) = keys.iter().position(|k| k == req.key) {
            status(&format!("get {}", req.key), Status::Hit, r)?;
            ensure(
                r.value == values[i].as_bytes() && r.key == req.key.as_bytes(),
                &format!("get {} in a batch", req.key),
                &values[i],
                show(&r.value),
            )?;
        } else {
            status(&format!("get {}", req.key), Status::Miss, r)?;
        }
    }
    Ok(Verdict::Pass)
}

/// One listed item: key, exptime, CAS, flags, value length, FETCHED.
type Listed = (String, u32, u64, u32, u32, bool);

/// A whole ABI v5 listing of the kit's shard, in chunks of about
/// `max_bytes`, as the server walks it.
fn list_all(k: &mut Kit, max_bytes: usize) -> Result<Vec<Listed>, String> {
    use crate::plugin::ListStep;
    let (mut out, mut cursor) = (Vec::new(), 0);
    for _ in 0..1_000_000 {
        let next = match k.shard.list(cursor, max_bytes) {
            Ok(ListStep::Chunk { cursor, chunk }) => {
                if let Some((_, recs)) = abi::iter_chunk(chunk) {
                    for r in recs.flatten() {
                        out.push((
                            String::from_utf8_lossy(r.key).into_owned(),
                            r.exptime,
                            r.cas,
                            r.client_flags,
                            r.value_len,
                            r.iflags & abi::iflag::FETCHED != 0,
                        ));
                    }
                }
                cursor
            }
            Ok(ListStep::Unsupported) => {
                return Err("expected a listing chunk, got \"unsupported\"".into())
            }
            Err(f) => return Err(format!("expected a listing chunk, got: {}", f.0)),
        };
        if next == 0 {
            out.sort();
            return Ok(out);
        }
        cursor = next;
    }
    Err("expected the listing to end, got a million chunks".into())
}

/// ABI v5 `wmc_iter`: a listing in small chunks shows every live item once
/// with its fields, expired ones not, and changes nothing.
fn item_listing(k: &mut Kit) -> Outcome {
    if !k.shard.lists() {
        return Ok(Verdict::Skip(
            "the plugin does not list its items (ABI v5 wmc_iter)".into(),
        ));
    }
    let a = k.set_with("flagged", b"abc", 0xdead_beef, T0 + 500)?;
    k.set_with("dies", b"x", 0, T0 + 5)?;
    for i in 0..3000 {
        k.set(&format!("many:{i}"), b"v")?;
    }
    k.hit("many:7", b"v")?;
    clock::set_now_for_check(T0 + 5);
    let all = list_all(k, 4096)?;
    let mut keys: Vec<&str> = all.iter().map(|i| i.0.as_str()).collect();
    keys.dedup();
    ensure(
        all.len() == 3001 && keys.len() == 3001,
        "items listed once each (the expired one left out)",
        3001,
        (all.len(), keys.len()),
    )?;
    let find = |key: &str| all.iter().find(|i| i.0 == key);
    ensure(
        find("flagged") == Some(&("flagged".into(), T0 + 500, a.cas, 0xdead_beef, 3, false)),
        "the listed exptime, CAS, flags and value length",
        (T0 + 500, a.cas, 0xdead_beef_u32, 3),
        find("flagged"),
    )?;
    ensure(
        find("dies").is_none(),
        "an expired item",
        "not listed",
        "listed",
    )?;
    let fetched = |key: &str| find(key).is_some_and(|i| i.5);
    ensure(
        fetched("many:7") && !fetched("many:8"),
        "FETCHED after a get only",
        (true, false),
        (fetched("many:7"), fetched("many:8")),
    )?;
    // The listing only read: a second one sees exactly the same.
    let again = list_all(k, 1 << 20)?;
    ensure(
        again == all,
        "a second listing",
        "the same items and fields",
        "something changed",
    )?;
    Ok(Verdict::Pass)
}

/// The warm restart's fast path: the instance's memory saved and read
/// back into a fresh instance is the same store, and it goes on storing.
fn memory_image_roundtrip(k: &mut Kit) -> Outcome {
    if let Err(why) = &k.plugin.image_safe {
        return Ok(Verdict::Skip(format!(
            "the plugin keeps state outside its memory ({why}): a warm restart loads its \
             item records"
        )));
    }
    let a = k.set_with("flagged", b"v1", 0xdead_beef, T0 + 500)?;
    for i in 0..1000 {
        k.set(&format!("many:{i}"), format!("value {i}").as_bytes())?;
    }
    let mut image = Vec::new();
    let saved = k
        .shard
        .save_image(&mut image)
        .map_err(|e| format!("expected a memory image, got: {e:#}"))?
        .ok_or("expected a memory image, got none")?;
    let mut dst = Kit::new(&k.plugin, BUDGET, true)?;
    dst.shard
        .load_image(&mut &image[..], saved)
        .map_err(|e| format!("expected the image to load, got: {e:#}"))?;
    let r = dst.hit("flagged", b"v1")?;
    ensure(
        (r.flags, r.exptime, r.cas) == (0xdead_beef, T0 + 500, a.cas),
        "flags, exptime, CAS after an image",
        (0xdead_beef_u32, T0 + 500, a.cas),
        (r.flags, r.exptime, r.cas),
    )?;
    for i in (0..1000).step_by(37) {
        dst.hit(&format!("many:{i}"), format!("value {i}").as_bytes())?;
    }
    dst.set("after", b"new")?;
    dst.hit("after", b"new")?;
    dst.hit("many:999", b"value 999")?;
    Ok(Verdict::Pass)
}

fn dump_load_roundtrip(k: &mut Kit) -> Outcome {
    if !k.shard.exports_dump_load() {
        return Ok(Verdict::Skip(
            "the plugin does not export wmc_dump and wmc_load (ABI v3)".into(),
        ));
    }
    let a = k.set_with("flagged", b"v1", 0xdead_beef, T0 + 500)?;
    k.set_with("never", b"", 3, 0)?;
    k.set_with("dies", b"x", 0, T0 + 5)?;
    let big = vec![b'B'; 700_000];
    k.set("big", &big)?;
    for i in 0..3000 {
        k.set(&format!("many:{i}"), format!("value {i}").as_bytes())?;
    }
    clock::set_now_for_check(T0 + 5);
    let mut dst = Kit::new(&k.plugin, BUDGET, true)?;
    let t = k
        .shard
        .transfer_to(&mut dst.shard)
        .map_err(|e| format!("expected a dump and load, got: {e:#}"))?;
    if !t.supported {
        return Ok(Verdict::Skip(
            "wmc_dump or wmc_load answers \"unsupported\"".into(),
        ));
    }
    ensure(
        t.complete && t.moved == 3003 && t.dumped == 3003,
        "items moved (expired ones skipped)",
        3003,
        t,
    )?;
    let r = dst.hit("flagged", b"v1")?;
    ensure(
        (r.flags, r.exptime, r.cas) == (0xdead_beef, T0 + 500, a.cas),
        "flags, exptime, CAS after a load",
        (0xdead_beef_u32, T0 + 500, a.cas),
        (r.flags, r.exptime, r.cas),
    )?;
    let r = dst.hit("never", b"")?;
    ensure(
        r.flags == 3 && r.exptime == 0,
        "flags, exptime",
        (3, 0),
        (r.flags, r.exptime),
    )?;
    dst.miss("dies")?;
    dst.hit("big", &big)?;
    for i in (0..3000).step_by(101) {
        dst.hit(&format!("many:{i}"), format!("value {i}").as_bytes())?;
    }
    // The loaded CAS still works; new CAS values differ from loaded ones.
    let r = cas_store(&mut dst, "flagged", b"v2", a.cas)?;
    status("cas with a CAS from before the load", Status::Stored, &r)?;
    Ok(Verdict::Pass)
}

/// ABI v8 metrics: the descriptor block is valid and the values readable
/// (checked as the server checks them before every read), every metric
/// comes back after some work unchanged but for its value, and counters
/// and histogram counts never go down.
fn plugin_metrics(k: &mut Kit) -> Outcome {
    if !k.shard.exports_metrics() {
        return Ok(Verdict::Skip(
            "the plugin does not export wmc_metrics (ABI v8)".into(),
        ));
    }
    let read = |k: &mut Kit| {
        k.shard
            .try_plugin_metrics()
            .map_err(|e| format!("expected a valid metrics block, got: {e}"))
    };
    let before = read(k)?;
    if before.is_empty() {
        return Ok(Verdict::Skip("the plugin declares no metrics".into()));
    }
    for i in 0..200 {
        k.set(&format!("metrics:{i}"), &vec![b'm'; i * 10])?;
        k.get(&format!("metrics:{i}"))?;
    }
    let after = read(k)?;
    // Metrics may be added (a plugin may register one for a key prefix
    // it meets), never dropped or changed.
    for b in &before {
        let Some(a) = after.iter().find(|a| a.name == b.name) else {
            return Err(format!(
                "expected {} on every read, got it missing after 200 sets",
                b.name
            ));
        };
        let bounds = |v: &MetricValue| match v {
            MetricValue::Histogram { bounds, .. } => Some(bounds.clone()),
            _ => None,
        };
        let went_down = match (&b.value, &a.value) {
            (MetricValue::Counter(x), MetricValue::Counter(y)) => y < x,
            (
                MetricValue::Histogram {
                    counts: x, sum: s, ..
                },
                MetricValue::Histogram {
                    counts: y, sum: t, ..
                },
            ) => t < s || x.iter().zip(y).any(|(x, y)| y < x),
            (MetricValue::Gauge(_), MetricValue::Gauge(_)) => false,
            _ => true,
        };
        ensure(
            !went_down && a.help == b.help && bounds(&a.value) == bounds(&b.value),
            &format!(
                "{}: the same kind, help and bounds on every read, counts never going down",
                b.name
            ),
            b,
            a,
        )?;
    }
    Ok(Verdict::Pass)
}
