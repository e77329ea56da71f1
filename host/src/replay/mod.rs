//! `wasmcached replay`: drives a storage plugin through a request trace in
//! this process (no sockets) and reports its hit and miss ratio, memory
//! per item, evictions, expirations and speed (docs/replay.md).
//!
//! The trace is a Twitter-format CSV ([`trace`]) or generated from a seed
//! ([`synth`]); [`driver`] batches the requests per shard as a server
//! would and keeps the server clock on the trace's time; [`report`]
//! prints what was counted.

mod driver;
mod record;
mod report;
mod synth;
mod trace;
mod zipf;

use crate::plugin::{FaultStats, Plugin, Shard, ShardConfig, DEFAULT_PLUGIN, EPOCH_TICK};
use crate::settings::{Parsed, Settings};
use clap::{Parser, ValueEnum};
use driver::{Driver, Options};
use record::{Record, Source};
use report::Report;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use synth::{Generator, Spec};
use trace::CsvReader;

/// Exit statuses (sysexits.h), as the server's own refusals use them.
const EX_USAGE: u8 = 64;
const EX_NOINPUT: u8 = 66;
const EX_SOFTWARE: u8 = 70;
const EX_CANTCREAT: u8 = 73;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Replays a request trace against a storage plugin, in-process, and
/// reports its hit ratio, memory per item, evictions and speed.
#[derive(Debug, Parser)]
#[command(name = "wasmcached replay", disable_version_flag = true)]
struct Args {
    /// The plugin: a .wasm or .wat file, or `default` for the embedded store.
    #[arg(long, value_name = "FILE|default", default_value = "default")]
    plugin: String,
    /// A trace in the CSV of Twitter's cache traces (docs/replay.md).
    #[arg(
        long,
        value_name = "FILE.csv",
        required_unless_present = "synthetic",
        conflicts_with = "synthetic"
    )]
    trace: Option<PathBuf>,
    /// A generated trace: zipf, scan, ttl or churn, with name=value
    /// parameters (`zipf:alpha=1.0,keys=1000000,requests=10000000,seed=1`).
    #[arg(long, value_name = "SPEC")]
    synthetic: Option<String>,
    /// Save the --synthetic trace as CSV instead of replaying it.
    #[arg(long, value_name = "FILE.csv", requires = "synthetic")]
    write_trace: Option<PathBuf>,
    /// The memory limit in megabytes, as the server's -m.
    #[arg(
        short = 'm',
        long = "memory-limit",
        value_name = "MB",
        default_value_t = 64
    )]
    memory_limit: u64,
    /// Passed to every plugin instance at init, as the server's
    /// --plugin-config (the default store's settings: docs/operators.md).
    #[arg(long, value_name = "STRING", default_value = "")]
    plugin_config: String,
    /// Shards, as the server's -o shards=N.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    shards: u32,
    /// Requests per guest call.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch: u32,
    /// Do not follow a get that missed with a set of its value.
    #[arg(long)]
    no_fill: bool,
    /// The share of the trace that fills the cache and is not counted.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.1)]
    warmup: f64,
    /// How to print the report: `name value` lines, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// A refusal: what to say, and the exit status.
struct Refusal(String, u8);

/// The arguments after `wasmcached replay`; returns the exit status.
pub fn main(args: &[OsString]) -> ExitCode {
    let argv = std::iter::once(OsString::from("wasmcached replay")).chain(args.iter().cloned());
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{}", e.render());
                return ExitCode::SUCCESS;
            }
            // clap's message up to its usage lines, on one line.
            let text = e.render().to_string();
            let said: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            eprintln!(
                "wasmcached replay: {} (see wasmcached replay --help)",
                said.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(EX_USAGE);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Refusal(msg, status)) => {
            eprintln!("wasmcached replay: {msg}");
            ExitCode::from(status)
        }
    }
}

fn run(args: &Args) -> Result<(), Refusal> {
    let usage = |m: String| Refusal(m, EX_USAGE);
    if !(0.0..1.0).contains(&args.warmup) {
        return Err(usage(format!(
            "--warmup wants a fraction from 0 to below 1, got {}",
            args.warmup
        )));
    }
    let mut input = match (&args.trace, &args.synthetic) {
        (Some(path), _) => {
            let file = File::open(path)
                .map_err(|e| Refusal(format!("cannot open {}: {e}", path.display()), EX_NOINPUT))?;
            // A pipe has no size: then nothing is warm-up.
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let reader = BufReader::with_capacity(1 << 20, file);
            Input::Csv(CsvReader::new(reader, size), path.display().to_string())
        }
        (None, Some(spec)) => {
            let spec = Spec::parse(spec).map_err(|e| usage(format!("--synthetic: {e}")))?;
            Input::Synthetic(Generator::new(spec))
        }
        (None, None) => return Err(usage("give --trace FILE.csv or --synthetic SPEC".into())),
    };
    if let Some(out) = &args.write_trace {
        return match &mut input {
            Input::Csv(csv, _) => write_trace(csv, out),
            Input::Synthetic(generator) => write_trace(generator, out),
        };
    }
    let settings = settings(args.memory_limit, args.shards, &args.plugin_config).map_err(usage)?;
    let plugin = load_plugin(&args.plugin)?;
    let faults = Arc::new(FaultStats::default());
    let mut shards = Vec::with_capacity(settings.shards);
    for shard_id in 0..settings.shards as u32 {
        let config = ShardConfig {
            shard_id,
            shard_count: settings.shards as u32,
            memory_budget: settings.shard_budget(),
            item_size_max: settings.item_size_max,
            use_cas: settings.use_cas,
            evict_to_free: settings.evict_to_free,
            plugin_config: settings.plugin_config.clone(),
            hints: settings.plugin_hints(),
            deadline: settings.plugin_deadline,
        };
        let shard = Shard::new(plugin.clone(), config, faults.clone()).map_err(|e| {
            Refusal(
                format!("the plugin would not start shard {shard_id}: {e:#}"),
                EX_SOFTWARE,
            )
        })?;
        shards.push(shard);
    }
    start_epoch(&plugin);

    let mut driver = Driver::new(
        shards,
        settings.item_size_max,
        Options {
            batch: args.batch,
            fill: !args.no_fill,
        },
    );
    let mut report = Report {
        plugin: args.plugin.clone(),
        memory_limit_bytes: settings.maxbytes,
        ..Default::default()
    };
    match &mut input {
        Input::Csv(csv, name) => replay(csv, name, args.warmup, &mut driver, &mut report)?,
        Input::Synthetic(generator) => replay(
            generator,
            "--synthetic",
            args.warmup,
            &mut driver,
            &mut report,
        )?,
    }
    driver.finish(&mut report);
    let out = match args.format {
        Format::Text => report.text(),
        Format::Json => report.json(),
    };
    print!("{out}");
    Ok(())
}

/// Where the requests come from; a concrete type each, so the request
/// loop is compiled for each without a dynamic call per request.
enum Input {
    Csv(CsvReader<BufReader<File>>, String),
    Synthetic(Generator),
}

/// Sends every request of `source` through `driver`; the first
/// `warmup` share of it is not counted.
fn replay<S: Source>(
    source: &mut S,
    name: &str,
    warmup: f64,
    driver: &mut Driver,
    report: &mut Report,
) -> Result<(), Refusal> {
    let warm_until = (source.total() as f64 * warmup) as u64;
    let mut rec = Record::default();
    let started = Instant::now();
    loop {
        match source.next_into(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(Refusal(format!("{name}: {e}"), EX_USAGE)),
        }
        let counted = source.position() >= warm_until;
        report.requests += 1;
        if !counted {
            report.warmup_requests += 1;
        } else if rec.op.stores() {
            report.sets += 1;
        }
        driver.push(&rec, counted);
    }
    driver.flush_all();
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(())
}

/// The settings a server started with `-m MB -o shards=N --plugin-config
/// CONFIG` would have, so the plugin gets the same init config.
fn settings(mb: u64, shards: u32, config: &str) -> Result<Settings, String> {
    let argv = [
        "wasmcached".to_string(),
        "-m".into(),
        mb.to_string(),
        "-o".into(),
        format!("shards={shards}"),
        "--plugin-config".into(),
        config.into(),
    ];
    match Settings::parse_args(argv) {
        Ok(Parsed::Run(s)) => Ok(*s),
        Ok(Parsed::Print(_)) => Err("unexpected settings output".into()),
        Err(e) => Err(format!("-m {mb} --shards {shards}: {e}")),
    }
}

fn load_plugin(name: &str) -> Result<Arc<Plugin>, Refusal> {
    let loaded = match name {
        "default" => Plugin::new(DEFAULT_PLUGIN, "default-store"),
        path => Plugin::load(Some(Path::new(path))),
    };
    loaded
        .map(Arc::new)
        .map_err(|e| Refusal(format!("cannot load plugin {name}: {e:#}"), EX_NOINPUT))
}

/// Advances the engine's epoch as the server's main thread does, so a
/// guest call that runs away hits its deadline instead of hanging the
/// replay. The thread ends with the process.
fn start_epoch(plugin: &Arc<Plugin>) {
    let plugin = plugin.clone();
    let _ = std::thread::Builder::new()
        .name("epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            plugin.tick_epoch();
        });
}

fn write_trace(source: &mut impl Source, path: &Path) -> Result<(), Refusal> {
    let cant = |e: std::io::Error| {
        Refusal(
            format!("cannot write {}: {e}", path.display()),
            EX_CANTCREAT,
        )
    };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(cant)?);
    let mut rec = Record::default();
    let mut n = 0u64;
    while source
        .next_into(&mut rec)
        .map_err(|e| Refusal(e.to_string(), EX_USAGE))?
    {
        trace::write_record(&mut out, &rec).map_err(cant)?;
        n += 1;
    }
    out.flush().map_err(cant)?;
    eprintln!(
        "wasmcached replay: wrote {n} requests to {}",
        path.display()
    );
    Ok(())
}
