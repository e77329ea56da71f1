//! `wasmcached plugin check FILE [--contract full|basic] [--skip NAME]`: a
//! conformance kit for storage plugins.
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
//! `SKIP name (why)`, then a summary. Under a FAIL line come the lines the
//! plugin logged while that check ran (under every line with `-v`).
//! `--contract basic` asks only for get/set/delete/flush_all, for minimal
//! plugins; `--skip` leaves checks out; `--list` names the checks. The exit
//! status is in [`HELP`].

mod report;
mod wire;

pub use report::Options;
use report::{Check, Outcome, Selected, Verdict, EXIT_USAGE};
pub use report::{Contract, Report};

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

const USAGE: &str = "usage: wasmcached plugin check FILE.wasm|FILE.wat|default [--contract full|basic] [--skip NAME[,NAME...]]... [-v]
       wasmcached plugin check --list [FILE] [--contract full|basic] [--skip NAME[,NAME...]]...";

const HELP: &str = "
Checks a storage plugin against the memcached behaviour its contract asks
for: one line per check, PASS, FAIL (with what was expected and what came)
or SKIP (with why), then a summary.

  FILE                   a plugin (.wasm or .wat), or `default` for the
                         embedded default store
  --contract full|basic  full (the default): everything memcached's storage
                         commands need; basic: get/set/delete/flush_all only
  --skip NAME[,NAME...]  do not run these checks (repeatable); they show as
                         SKIP and the exit status is 3 instead of 0
  --list                 print the checks that would run, one a line: name,
                         the contract that asks for it, what it checks; with
                         FILE, only those that apply to that plugin
  -v, --verbose          print what the plugin logs under every check, not
                         only under a failed one (the last 50 lines each)
  -h, --help             this text

exit status:
  0  every check that ran passed, and none was left out with --skip
  1  at least one check failed
  2  a usage error, or the plugin could not be loaded or instantiated
  3  every check that ran passed, but some were left out with --skip
Checks outside the chosen contract, or testing an optional export the plugin
does not have, show as SKIP too but do not change the exit status.

wasmcached plugin new LANGUAGE NAME starts a plugin project
(wasmcached plugin new --help).";

/// `wasmcached plugin --help`: the author's tools, one a line.
const TOOLS: &str = "usage: wasmcached plugin check|new ...

A storage plugin author's tools:

  wasmcached plugin new rust|c|assemblyscript|python|javascript NAME
      starts a plugin project that builds on its own
      (wasmcached plugin new --help)
  wasmcached plugin check FILE.wasm|FILE.wat|default
      runs the conformance kit against a plugin
      (wasmcached plugin check --help)

`wasmcached replay --help` drives a plugin through a request trace.";

/// A check of the ABI layer, run on a fresh shard of its own.
type CheckFn = fn(&mut Kit) -> Outcome;

/// The check every other check needs: it cannot be skipped.
const REQUIRED: &str = "exports_and_abi_version";

/// The arguments after `wasmcached plugin`; returns the process exit code.
pub fn main(args: &[OsString]) -> ExitCode {
    if args.first().is_some_and(|a| a == "new") {
        return crate::plugin_new::main(&args[1..]);
    }
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wasmcached plugin check: {e}\n{USAGE}\n(--help explains)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    crate::plugin::tap_log(report::log_tap);
    match command {
        Command::Tools => {
            println!("{TOOLS}");
            ExitCode::SUCCESS
        }
        Command::Help => {
            println!("{USAGE}\n{HELP}");
            ExitCode::SUCCESS
        }
        Command::List { file, opts } => list(file.as_deref(), &opts),
        Command::Check { file, opts } => {
            let path = (file != "default").then(|| Path::new(&file));
            match load(path) {
                Ok(plugin) => run(&plugin, path, &opts).exit_code(),
                Err(e) => {
                    println!("FAIL load: expected a wasmcached plugin, got: {e}");
                    println!("0 passed, 1 failed, 0 skipped");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// `plugin --help`: the tools.
    Tools,
    /// `plugin check --help`.
    Help,
    Check {
        file: String,
        opts: Options,
    },
    List {
        file: Option<String>,
        opts: Options,
    },
}

fn parse(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("check") => {}
        Some("-h" | "--help") => return Ok(Command::Tools),
        Some(other) => return Err(format!("unknown command {other:?}: check or new")),
        None => return Err("which command? check or new".into()),
    }
    let (mut file, mut list, mut opts) = (None, false, Options::default());
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (a.as_str(), None),
        };
        match flag {
            "--contract" | "--skip" => {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| format!("{flag} wants a value"))?
                        .as_str(),
                };
                if flag == "--skip" {
                    add_skips(value, &mut opts.skip)?;
                } else {
                    opts.contract = match value {
                        "full" => Contract::Full,
                        "basic" => Contract::Basic,
                        v => return Err(format!("--contract wants full or basic, got {v:?}")),
                    };
                }
            }
            _ if inline.is_some() => return Err(format!("{flag} takes no value")),
            "-h" | "--help" => return Ok(Command::Help),
            "--list" => list = true,
            "-v" | "--verbose" => opts.verbose = true,
            s if !s.starts_with('-') || s == "--default" => {
                if let Some(first) = &file {
                    return Err(format!("one plugin at a time: {first:?}, then {s:?}"));
                }
                file = Some(s.trim_start_matches("--").to_string());
            }
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    match (list, file) {
        (true, file) => Ok(Command::List { file, opts }),
        (false, Some(file)) => Ok(Command::Check { file, opts }),
        (false, None) => Err("which plugin? FILE.wasm, FILE.wat or default".into()),
    }
}

/// Adds the check names of one `--skip` value (a comma-separated list).
fn add_skips(value: &str, skip: &mut Vec<&'static str>) -> Result<(), String> {
    let names: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err("--skip wants a check name (--list names them)".into());
    }
    for name in names {
        if name == REQUIRED {
            return Err(format!(
                "{REQUIRED} cannot be skipped: every other check needs the instance it makes"
            ));
        }
        let Some(known) = catalogue().map(|c| c.name).find(|&n| n == name) else {
            return Err(format!(
                "no check is named {name:?}; the nearest: {} (--list names them all)",
                nearest(name).join(", ")
            ));
        };
        if !skip.contains(&known) {
            skip.push(known);
        }
    }
    Ok(())
}

/// Up to three check names near `name`: those containing it first, then
/// by edit distance; names more than a third of its letters away only when
/// nothing is nearer, so a typo gets its one suggestion.
fn nearest(name: &str) -> Vec<&'static str> {
    let name = name.to_ascii_lowercase();
    let mut names: Vec<(bool, usize, &'static str)> = catalogue()
        .map(|c| {
            (
                !c.name.contains(&name),
                edit_distance(&name, c.name),
                c.name,
            )
        })
        .collect();
    names.sort();
    let close = |&&(far, d, _): &&(bool, usize, &str)| !far || d <= (name.len() / 3).max(1);
    let near = match names.iter().filter(close).count() {
        0 => 3,
        n => n.min(3),
    };
    names.into_iter().take(near).map(|(_, _, n)| n).collect()
}

/// Levenshtein distance, by bytes (check names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let here = (diagonal + usize::from(x != y))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = here;
        }
    }
    row[b.len()]
}

/// One check as `--list` shows it.
struct Entry {
    name: &'static str,
    /// The smallest contract that asks for it (`required`: every run).
    group: &'static str,
    about: &'static str,
}

/// Every check, in the order they run.
fn catalogue() -> impl Iterator<Item = Entry> {
    fn listed<F>(c: &Check<F>) -> Entry {
        Entry {
            name: c.name,
            group: if c.basic { "basic" } else { "full" },
            about: c.about,
        }
    }
    let required = Entry {
        name: REQUIRED,
        group: "required",
        about: "the module has the ABI's exports and an instance accepts wmc_init",
    };
    std::iter::once(required)
        .chain(CHECKS.iter().map(listed))
        .chain(wire::WIRE_CHECKS.iter().map(listed))
}

fn load(path: Option<&Path>) -> Result<Arc<Plugin>, String> {
    match path {
        None => Plugin::new(DEFAULT_PLUGIN, "default-store"),
        Some(p) => Plugin::load(Some(p)),
    }
    .map(Arc::new)
    .map_err(|e| format!("{e:#}"))
}

/// `--list`: the checks that would run, one a line.
fn list(file: Option<&str>, opts: &Options) -> ExitCode {
    // With a plugin, the checks of optional exports it lacks would not run.
    let kit = match file {
        None => None,
        Some(file) => {
            let path = (file != "default").then(|| Path::new(file));
            clock::set_now_for_check(T0);
            match load(path).and_then(|p| Kit::new(&p, BUDGET, true)) {
                Ok(kit) => Some(kit),
                Err(e) => {
                    eprintln!("wasmcached plugin check: cannot instantiate {file}: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
    };
    let runs = |c: &Entry| {
        let applies = || match &kit {
            Some(kit) => not_applicable(c.name, kit).is_none(),
            None => true,
        };
        (c.name == REQUIRED || opts.select(c.name, c.group != "full") == Selected::Run) && applies()
    };
    let checks: Vec<Entry> = catalogue().filter(runs).collect();
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        println!("{:width$}  {:8}  {}", c.name, c.group, c.about);
    }
    ExitCode::SUCCESS
}

/// The ABI checks, in order.
const CHECKS: &[Check<CheckFn>] = &[
    Check {
        name: "get_miss",
        basic: true,
        about: "a get of a key never set misses, with no value",
        run: get_miss,
    },
    Check {
        name: "set_get_hit",
        basic: true,
        about: "a get finds what a set stored, and echoes the key",
        run: set_get_hit,
    },
    Check {
        name: "set_overwrite",
        basic: true,
        about: "a set replaces a value with a longer or a shorter one",
        run: set_overwrite,
    },
    Check {
        name: "delete",
        basic: true,
        about: "delete answers Deleted, then NotFound, and leaves other keys",
        run: delete,
    },
    Check {
        name: "flush_all_immediate",
        basic: true,
        about: "flush_all empties the store; items stored after it stay",
        run: flush_all_immediate,
    },
    Check {
        name: "gets_cas",
        basic: false,
        about: "an item has a non-zero CAS, a new one after every overwrite",
        run: gets_cas,
    },
    Check {
        name: "add",
        basic: false,
        about: "add stores a new key only",
        run: add,
    },
    Check {
        name: "replace",
        basic: false,
        about: "replace stores an existing key only",
        run: replace,
    },
    Check {
        name: "append_prepend",
        basic: false,
        about: "append and prepend need the key and keep its flags and exptime",
        run: append_prepend,
    },
    Check {
        name: "cas_match",
        basic: false,
        about: "cas with the item's CAS stores",
        run: cas_match,
    },
    Check {
        name: "cas_mismatch_exists",
        basic: false,
        about: "cas with a stale CAS answers Exists and stores nothing",
        run: cas_mismatch,
    },
    Check {
        name: "cas_missing_not_found",
        basic: false,
        about: "cas of a missing key answers NotFound",
        run: cas_missing,
    },
    Check {
        name: "incr_decr",
        basic: false,
        about: "incr and decr count, keep the flags, and grow the value",
        run: incr_decr,
    },
    Check {
        name: "incr_wraps_at_2_64",
        basic: false,
        about: "incr wraps around at 2^64",
        run: incr_wrap,
    },
    Check {
        name: "decr_floors_at_0",
        basic: false,
        about: "decr stops at 0",
        run: decr_floor,
    },
    Check {
        name: "incr_decr_non_numeric",
        basic: false,
        about: "incr and decr of a non-number answer NonNumeric and change nothing",
        run: incr_non_numeric,
    },
    Check {
        name: "incr_decr_missing",
        basic: false,
        about: "incr and decr of a missing key answer NotFound",
        run: incr_missing,
    },
    Check {
        name: "touch",
        basic: false,
        about: "touch sets a new exptime; of a missing key, NotFound",
        run: touch,
    },
    Check {
        name: "flags_roundtrip",
        basic: false,
        about: "client flags come back unchanged, all 32 bits",
        run: flags_roundtrip,
    },
    Check {
        name: "zero_length_value",
        basic: false,
        about: "an empty value is stored and found",
        run: zero_length_value,
    },
    Check {
        name: "max_size_value",
        basic: false,
        about: "a value near the item size limit is stored, one over it is TooLarge",
        run: max_size_value,
    },
    Check {
        name: "binary_safe_value",
        basic: false,
        about: "values with NUL, CR LF and every byte come back unchanged",
        run: binary_safe_value,
    },
    Check {
        name: "expiry_relative",
        basic: false,
        about: "an item expires at its exptime, not before; exptime 0 never",
        run: expiry_relative,
    },
    Check {
        name: "negative_exptime_expired",
        basic: false,
        about: "a set with an exptime in the past leaves no item",
        run: negative_exptime,
    },
    Check {
        name: "flush_all_delayed",
        basic: false,
        about: "flush_all with a delay empties the store at that time",
        run: flush_all_delayed,
    },
    Check {
        name: "memory_budget_evict",
        basic: false,
        about: "40 MB into a 4 MB shard evicts old items and keeps the newest",
        run: memory_budget_evict,
    },
    Check {
        name: "memory_budget_no_evict",
        basic: false,
        about: "without eviction (-M) a full shard answers OutOfMemory, keeps its items",
        run: memory_budget_no_evict,
    },
    Check {
        name: "many_keys_in_one_batch",
        basic: false,
        about: "500 sets, then 1000 gets, each in one batch, get one answer each, in order",
        run: many_keys_batch,
    },
    Check {
        name: "dump_load_roundtrip",
        basic: false,
        about: "ABI v3 wmc_dump/wmc_load move the items with flags, exptime and CAS",
        run: dump_load_roundtrip,
    },
    Check {
        name: "memory_image_roundtrip",
        basic: false,
        about: "a saved memory image is the same store in a fresh instance",
        run: memory_image_roundtrip,
    },
    Check {
        name: "item_listing",
        basic: false,
        about: "ABI v5 wmc_iter (the world's iter) lists every live item once, with its fields",
        run: item_listing,
    },
    Check {
        name: "plugin_metrics",
        basic: true,
        about: "ABI v8 wmc_metrics: a valid block, counts never going down",
        run: plugin_metrics,
    },
];

/// Why a check does not apply to the plugin behind a kit, if it does not.
type NeedFn = fn(&Kit) -> Option<String>;

/// Checks of optional exports, and why each does not apply to a plugin
/// without its export: shown as SKIP, left out of `--list FILE`.
const NEEDS: &[(&str, NeedFn)] = &[
    ("dump_load_roundtrip", |k| {
        (!k.shard.exports_dump_load())
            .then(|| "the plugin does not export wmc_dump and wmc_load (ABI v3)".into())
    }),
    ("memory_image_roundtrip", |k| {
        k.plugin.image_safe.as_ref().err().map(|why| {
            format!(
                "the plugin keeps state outside its memory ({why}): a warm restart loads its \
                 item records"
            )
        })
    }),
    ("item_listing", |k| {
        (!k.shard.lists()).then(|| {
            "the plugin does not list its items (ABI v5 wmc_iter, or the world's iter)".into()
        })
    }),
    ("plugin_metrics", |k| {
        (!k.shard.exports_metrics()).then(|| {
            "the plugin exports no metrics (ABI v8 wmc_metrics, or the world's metrics)".into()
        })
    }),
];

/// Why check `name` does not apply to the plugin behind `k`, if it does not.
fn not_applicable(name: &str, k: &Kit) -> Option<String> {
    NEEDS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, why)| why(k))
}

/// Runs the kit against `plugin` (loaded from `path`; `None`: the embedded
/// default store), printing one line per check and a summary.
pub fn run(plugin: &Arc<Plugin>, path: Option<&Path>, opts: &Options) -> Report {
    let mut report = Report {
        verbose: opts.verbose,
        ..Report::default()
    };
    // The exports were checked when the module was compiled; the version
    // when it is instantiated.
    clock::set_now_for_check(T0);
    report::log_start();
    match Shard::new(plugin.clone(), config(BUDGET, true), Arc::default()) {
        Ok(s) => {
            let found = match s.wit_version() {
                // A component's batches travel as the core ABI's v3 ones,
                // but what its author wrote against is the world.
                Some(v) => format!(
                    "{REQUIRED} (the wasmcached:store world v{v}: {}, exports dump and load)",
                    world_name(s.exports_metrics(), s.lists(), s.reports_events())
                ),
                None => format!(
                    "{REQUIRED} (ABI v{}{}{})",
                    s.abi_version().unwrap_or(0),
                    if s.exports_dump_load() {
                        ", exports wmc_dump and wmc_load"
                    } else {
                        ""
                    },
                    if s.lists() { ", lists its items" } else { "" }
                ),
            };
            report.record(&found, Ok(Verdict::Pass));
        }
        Err(e) => {
            report.record(
                REQUIRED,
                Err(format!(
                    "expected an instance that accepts wmc_init, got: {e:#}"
                )),
            );
            report.unusable = true;
            report.summary();
            return report;
        }
    }
    for c in CHECKS {
        let selected = opts.select(c.name, c.basic);
        if selected != Selected::Run {
            selected.report_skip(c.name, &mut report);
            continue;
        }
        clock::set_now_for_check(T0);
        report::log_start();
        let outcome =
            Kit::new(plugin, BUDGET, true).and_then(|mut kit| match not_applicable(c.name, &kit) {
                Some(why) => Ok(Verdict::Skip(why)),
                None => (c.run)(&mut kit),
            });
        report.record(c.name, outcome);
    }
    wire::run(path, opts, &mut report);
    report.summary();
    report
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

/// The world of wit/store.wit a component's optional exports and imports
/// match: `store-full` has all three, each `store-with-…` one; another mix
/// is named by what it adds to `store`.
fn world_name(metrics: bool, listing: bool, events: bool) -> String {
    match (metrics, listing, events) {
        (true, true, true) => "store-full".into(),
        (false, false, false) => "store".into(),
        (true, false, false) => "store-with-metrics".into(),
        (false, true, false) => "store-with-listing".into(),
        (false, false, true) => "store-with-events".into(),
        _ => {
            let parts = [(metrics, "metrics"), (listing, "iter"), (events, "events")];
            let with: Vec<&str> = parts.iter().filter(|p| p.0).map(|p| p.1).collect();
            format!("store with {}", with.join(" and "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_components_world_is_named_by_its_optional_exports_and_imports() {
        assert_eq!(world_name(false, false, false), "store");
        assert_eq!(world_name(true, true, true), "store-full");
        assert_eq!(world_name(true, false, false), "store-with-metrics");
        assert_eq!(world_name(false, true, false), "store-with-listing");
        assert_eq!(world_name(false, false, true), "store-with-events");
        assert_eq!(world_name(true, true, false), "store with metrics and iter");
        assert_eq!(world_name(false, true, true), "store with iter and events");
    }

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn parsed(line: &str) -> Command {
        parse(&args(line)).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn refused(line: &str) -> String {
        match parse(&args(line)) {
            Err(e) => e,
            Ok(c) => panic!("{line}: accepted as {c:?}"),
        }
    }

    fn check(file: &str, opts: Options) -> Command {
        Command::Check {
            file: file.into(),
            opts,
        }
    }

    fn opts_of(line: &str) -> Options {
        match parsed(line) {
            Command::Check { opts, .. } | Command::List { opts, .. } => opts,
            Command::Help | Command::Tools => panic!("{line}: help"),
        }
    }

    #[test]
    fn the_options_of_before_still_parse() {
        assert_eq!(
            parsed("check default"),
            check("default", Options::default())
        );
        let basic = Options {
            contract: Contract::Basic,
            ..Options::default()
        };
        assert_eq!(
            parsed("check --default --contract basic"),
            check("default", basic)
        );
        assert_eq!(
            parsed("check --contract=full x.wasm"),
            check("x.wasm", Options::default())
        );
        assert_eq!(parsed("--help"), Command::Tools);
        assert_eq!(parsed("check --help"), Command::Help);
        assert_eq!(parsed("check x.wat -h"), Command::Help);
    }

    #[test]
    fn skips_repeat_split_on_commas_and_count_once() {
        let opts = opts_of("check x.wat --skip touch --skip=add,,replace, --skip touch -v");
        assert_eq!(opts.skip, ["touch", "add", "replace"]);
        assert!(opts.verbose);
        let opts = opts_of("check x.wat --skip wire_text_gat --verbose");
        assert_eq!(opts.skip, ["wire_text_gat"]);
        assert!(opts.verbose);
        assert!(!opts_of("check x.wat").verbose);
    }

    #[test]
    fn list_needs_no_plugin_but_takes_one() {
        assert_eq!(
            parsed("check --list"),
            Command::List {
                file: None,
                opts: Options::default()
            }
        );
        assert_eq!(
            parsed("check --list --contract basic default --skip delete"),
            Command::List {
                file: Some("default".into()),
                opts: Options {
                    contract: Contract::Basic,
                    skip: vec!["delete"],
                    verbose: false
                }
            }
        );
    }

    #[test]
    fn an_unknown_skip_names_the_nearest_checks() {
        let e = refused("check x.wat --skip tuch");
        assert!(
            e.contains("\"tuch\"") && e.ends_with("the nearest: touch (--list names them all)"),
            "{e}"
        );
        // A known name before it does not make the unknown one pass.
        let e = refused("check x.wat --skip add,cas");
        assert!(
            e.contains("the nearest: gets_cas, cas_match, wire_text_gets_cas"),
            "{e}"
        );
        assert_eq!(nearest("wire_txt_gat"), ["wire_text_gat"]);
        // Far from everything: still three names to go on.
        assert_eq!(nearest("qqqqqqqqqqqqqqqqqqqq").len(), 3);
        assert!(refused("check x.wat --skip").contains("--skip wants a value"));
        assert!(refused("check x.wat --skip ,").contains("--skip wants a check name"));
        assert!(refused("check x.wat --skip exports_and_abi_version").contains("cannot be skipped"));
    }

    #[test]
    fn usage_errors() {
        for line in [
            "",
            "frobnicate",
            "check",
            "check --contract basic",
            "check a.wasm b.wasm",
            "check x.wat --contract some",
            "check x.wat --contract",
            "check x.wat --list=yes",
            "check x.wat --frobnicate",
            "check x.wat -",
        ] {
            refused(line);
        }
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", "add"), 3);
        assert_eq!(edit_distance("touch", "touch"), 0);
        assert_eq!(edit_distance("tuch", "touch"), 1);
        assert_eq!(edit_distance("toush", "touch"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_contract_decides_before_skip() {
        let opts = Options {
            contract: Contract::Basic,
            skip: vec!["touch", "delete"],
            verbose: false,
        };
        assert_eq!(opts.select("touch", false), Selected::NotInContract);
        assert_eq!(opts.select("delete", true), Selected::OnRequest);
        assert_eq!(opts.select("get_miss", true), Selected::Run);
    }

    #[test]
    fn every_check_has_one_name_and_a_description() {
        let all: Vec<Entry> = catalogue().collect();
        assert_eq!(all.len(), 1 + CHECKS.len() + wire::WIRE_CHECKS.len());
        let mut names: Vec<&str> = all.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for c in &all {
            assert!(!c.about.is_empty() && !c.about.contains('\n'), "{}", c.name);
        }
        // A check of an optional export is named as in the table.
        for (name, _) in NEEDS {
            assert!(CHECKS.iter().any(|c| c.name == *name), "{name}");
        }
    }
}
