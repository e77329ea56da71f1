//! The plugin runtime: one wasmtime `Engine` and compiled `Module` for the
//! process, one `Store` + `Instance` per shard, and the sandbox around each call
//! (memory cap through a `ResourceLimiter`, deadline through epoch interruption).
//!
//! Every guest fault — trap, deadline, malformed answer — is contained here: the
//! shard logs it, counts it, and comes back empty on a fresh instance, while the
//! worker answers the affected commands with `SERVER_ERROR`.

use crate::clock;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmcached_sdk::abi::{self, export, import, Init, Response};
use wasmtime::{
    Caller, Config, Engine, Instance, InstancePre, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TypedFunc,
};

/// The default store, built from plugins/default-store by host/build.rs.
pub static DEFAULT_PLUGIN: &[u8] = include_bytes!(env!("WASMCACHED_DEFAULT_PLUGIN"));

/// The ABI version the loaded plugin speaks (one plugin per process). Protocol
/// code asks [`plugin_abi`] before sending a request only version 2 can express.
static PLUGIN_ABI: AtomicU32 = AtomicU32::new(abi::ABI_VERSION);

/// The ABI version of the loaded plugin.
pub fn plugin_abi() -> u32 {
    PLUGIN_ABI.load(Ordering::Relaxed)
}

/// Whether the loaded plugin exports the ABI v5 item listing (`wmc_iter`);
/// it may still answer that it cannot list.
static PLUGIN_LISTS: AtomicBool = AtomicBool::new(false);

/// Whether the loaded plugin has `wmc_iter` (ABI v5): `lru_crawler
/// metadump` and `stats cachedump` are refused without it.
pub fn plugin_lists() -> bool {
    PLUGIN_LISTS.load(Ordering::Relaxed)
}

/// The bytes the host asks each `wmc_iter` chunk to stay within.
pub const LIST_CHUNK_BYTES: usize = 64 << 10;

/// How often the engine's epoch advances; call deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(50);

/// The byte size the host asks `wmc_dump` chunks to stay within.
pub const DUMP_CHUNK_BYTES: usize = 1 << 20;

/// The one wasmtime engine of the process. Every plugin is compiled for it,
/// so the epoch the main reactor advances (through any plugin's
/// [`Plugin::tick_epoch`]) bounds the calls of an old and a newly loaded
/// plugin alike.
fn engine() -> Result<Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            config.cranelift_opt_level(wasmtime::OptLevel::Speed);
            // WASMCACHED_PERFMAP=1: write /tmp/perf-PID.map, so that perf
            // (or a callgrind profile, by address) can name guest functions
            // (docs/performance.md).
            #[cfg(unix)]
            if std::env::var_os("WASMCACHED_PERFMAP").is_some_and(|v| v == "1") {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            Engine::new(&config).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow!("wasmtime engine: {e}"))
}

/// Memory a shard may grow to beyond its item budget: the store's tables,
/// allocator slack and the I/O buffers of a batch.
pub fn memory_cap(budget: u64, item_size_max: usize) -> usize {
    let cap = budget + budget / 2 + 32 * 1024 * 1024 + 4 * item_size_max as u64;
    cap.min(4 << 30) as usize
}

/// Everything a shard instance needs to know at init.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub shard_id: u32,
    pub shard_count: u32,
    pub memory_budget: u64,
    pub item_size_max: usize,
    pub use_cas: bool,
    pub evict_to_free: bool,
    pub plugin_config: String,
    /// memcached's allocator and LRU knobs, sent to v5 plugins in the init
    /// record (docs/plugin-abi.md, "Hints").
    pub hints: abi::Hints,
    pub deadline: Duration,
}

/// A compiled plugin, shared by all workers.
pub struct Plugin {
    engine: Engine,
    pre: InstancePre<ShardCtx>,
    pub name: String,
}

/// Per-store host state, reachable from host imports.
pub struct ShardCtx {
    limits: StoreLimits,
    shard_id: u32,
    /// Timers the guest asked for during the last call: (token, delay_ms).
    timers: Vec<(u64, u32)>,
    /// While `wmc_init` runs: what the guest logged, so that a refusal can
    /// say why without `-v`.
    init_log: Option<String>,
    /// ABI v6 `log_event` records of the running batch, back to back (at
    /// most [`EVENTS_KEPT`] bytes): what `watch` logs for it.
    events: Vec<u8>,
    /// Error lines the guest logged since the last batch began (at most
    /// [`ERRORS_KEPT`] bytes), so that a fault line can say why without
    /// `-v` (a Rust plugin's panic message arrives this way).
    errors: String,
}

/// How much of a guest's error log a fault line repeats.
const ERRORS_KEPT: usize = 2048;

/// How many bytes of `log_event` records one batch may leave: a watcher
/// is told about lines it missed, a guest cannot grow host memory.
const EVENTS_KEPT: usize = 4 << 20;

impl Plugin {
    /// Compiles `bytes` (a .wasm, or .wat text) and checks its exports.
    pub fn new(bytes: &[u8], name: &str) -> Result<Plugin> {
        let engine = engine()?;
        let module = match code_cache() {
            Some(cache) => cache.module(&engine, bytes, name)?,
            None => compile(&engine, bytes, name)?,
        };
        check_exports(&module).with_context(|| format!("{name}: not a wasmcached plugin"))?;

        let mut linker: Linker<ShardCtx> = Linker::new(&engine);
        linker.func_wrap(
            import::MODULE,
            import::LOG,
            |mut caller: Caller<'_, ShardCtx>, level: i32, ptr: i32, len: i32| {
                let Some(mem) = caller
                    .get_export(export::MEMORY)
                    .and_then(|e| e.into_memory())
                else {
                    return;
                };
                let data = mem.data(&caller);
                let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
                let Some(msg) = ptr.checked_add(len).and_then(|end| data.get(ptr..end)) else {
                    return;
                };
                let msg = String::from_utf8_lossy(msg).into_owned();
                let ctx = caller.data_mut();
                if let Some(log) = ctx.init_log.as_mut() {
                    if !log.is_empty() {
                        log.push_str("; ");
                    }
                    log.push_str(&msg);
                }
                if level == abi::log_level::ERROR && ctx.errors.len() < ERRORS_KEPT {
                    if !ctx.errors.is_empty() {
                        ctx.errors.push_str("; ");
                    }
                    let room = ERRORS_KEPT - ctx.errors.len();
                    let mut cut = msg.len().min(room);
                    while !msg.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    ctx.errors.push_str(&msg[..cut]);
                }
                let ctx = caller.data();
                // Guest errors show with -v, warnings/info with -vv, debug
                // with -vvv (the level `verbosity` changes at run time).
                let needed = match level {
                    abi::log_level::ERROR => 1,
                    abi::log_level::WARN | abi::log_level::INFO => 2,
                    _ => 3,
                };
                if crate::verbose::level() >= needed {
                    eprintln!("shard {}: {msg}", ctx.shard_id);
                }
            },
        )?;
        linker.func_wrap(import::MODULE, import::NOW, || clock::now() as i32)?;
        linker.func_wrap(
            import::MODULE,
            import::LOG_EVENT,
            |mut caller: Caller<'_, ShardCtx>, ptr: i32, len: i32| {
                let Some(mem) = caller
                    .get_export(export::MEMORY)
                    .and_then(|e| e.into_memory())
                else {
                    return;
                };
                let (data, ctx) = mem.data_and_store_mut(&mut caller);
                let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
                let Some(rec) = ptr.checked_add(len).and_then(|end| data.get(ptr..end)) else {
                    return;
                };
                // Only whole, well-formed records: the host walks them later.
                if ctx.events.len() + len <= EVENTS_KEPT
                    && abi::Event::decode(rec).is_some_and(|(_, n)| n == len)
                {
                    ctx.events.extend_from_slice(rec);
                }
            },
        )?;
        linker.func_wrap(
            import::MODULE,
            import::TIMER_SET,
            |mut caller: Caller<'_, ShardCtx>, token: i64, delay_ms: i32| {
                let timers = &mut caller.data_mut().timers;
                // A guest cannot flood the host's timer heap.
                if timers.len() < 1024 {
                    timers.push((token as u64, delay_ms.max(0) as u32));
                }
            },
        )?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| anyhow!("{name}: {e}"))?;
        Ok(Plugin {
            engine,
            pre,
            name: name.to_string(),
        })
    }

    /// Loads `--plugin FILE` or the embedded default store.
    pub fn load(path: Option<&Path>) -> Result<Plugin> {
        match path {
            None => Plugin::new(DEFAULT_PLUGIN, "default-store"),
            Some(p) => {
                let bytes =
                    std::fs::read(p).with_context(|| format!("reading plugin {}", p.display()))?;
                Plugin::new(&bytes, &p.display().to_string())
            }
        }
    }

    /// Advances the epoch; the main reactor calls this every [`EPOCH_TICK`].
    pub fn tick_epoch(&self) {
        self.engine.increment_epoch();
    }
}

fn compile(engine: &Engine, bytes: &[u8], name: &str) -> Result<Module> {
    match Format::of(bytes) {
        Format::Wasm => {
            Module::new(engine, bytes).map_err(|e| anyhow!("{name}: not a valid Wasm module: {e}"))
        }
        Format::Wat => {
            Module::new(engine, bytes).map_err(|e| anyhow!("{name}: not valid WAT text: {e}"))
        }
        Format::Neither => bail!(
            "{name} is neither a Wasm module (it does not start with \\0asm) nor WAT text \
             (its first token is not `(`)"
        ),
    }
}

/// What a plugin file holds, judged from its first bytes, so that a load
/// error names the format the file was meant to be in.
#[derive(Debug, PartialEq, Eq)]
enum Format {
    Wasm,
    Wat,
    Neither,
}

impl Format {
    fn of(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"\0asm") {
            return Format::Wasm;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Format::Neither;
        };
        // WAT starts with `(` after white space and comments (`;; …` to the
        // end of the line, `(; … ;)` blocks).
        let mut rest = text.trim_start_matches('\u{feff}');
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(";;") {
                rest = r.split_once('\n').map_or("", |(_, after)| after);
            } else if let Some(r) = rest.strip_prefix("(;") {
                match r.split_once(";)") {
                    Some((_, after)) => rest = after,
                    // An unclosed block comment: the WAT parser says so.
                    None => return Format::Wat,
                }
            } else {
                return if rest.starts_with('(') {
                    Format::Wat
                } else {
                    Format::Neither
                };
            }
        }
    }
}

// ------------------------------------------------------------ code cache
//
// Compiling the default store with Cranelift takes tens to hundreds of
// milliseconds (more on a loaded machine), on every start and every reload.
// The compiled code is kept on disk instead, one file per (plugin bytes,
// engine) pair, and deserialized on the next start (a few milliseconds).

/// The on-disk cache of compiled plugin code (`-o plugin_cache=off`
/// disables it). Not configured (unit tests, `plugin check`): no cache.
static CODE_CACHE: OnceLock<CodeCache> = OnceLock::new();

/// Turns the code cache on (in the directory [`CodeCache::default_dir`]
/// picks) or off for this process; the first call wins. At `-vv` it logs
/// cache hits, misses and replacements.
pub fn configure_code_cache(enabled: bool) {
    let dir = if enabled {
        CodeCache::default_dir()
    } else {
        None
    };
    let _ = CODE_CACHE.set(CodeCache { dir });
}

fn code_cache() -> Option<&'static CodeCache> {
    CODE_CACHE.get().filter(|c| c.dir.is_some())
}

/// Where compiled plugin code is kept.
pub struct CodeCache {
    dir: Option<std::path::PathBuf>,
}

/// What a cache file starts with: magic and format version, then the
/// 128-bit checksum of the rest, then wasmtime's serialized module.
const CACHE_MAGIC: &[u8; 16] = b"wasmcached-code1";
const CACHE_HEADER: usize = CACHE_MAGIC.len() + 16;

/// A stable 128-bit hash (two independent 64-bit lanes of FNV-1a-style
/// multiply-xor over 8-byte words, each finished with murmur3's fmix64). Not
/// a defence against someone who can write to the cache directory (they can
/// write a matching checksum, or replace the binary); it catches truncated,
/// torn and bit-flipped files, and keys files by content.
fn hash128(parts: &[&[u8]]) -> [u8; 16] {
    fn fmix(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for part in parts {
        a = (a ^ part.len() as u64).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ part.len() as u64).wrapping_mul(0x9e37_79b1_85eb_ca87);
        let mut words = part.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            a = (a ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
            b = (b ^ w.rotate_left(17)).wrapping_mul(0x9e37_79b1_85eb_ca87);
        }
        for &byte in words.remainder() {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(byte)).wrapping_mul(0x9e37_79b1_85eb_ca87);
        }
    }
    let (a, b) = (fmix(a ^ b.rotate_left(32)), fmix(b ^ a));
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CodeCache {
    /// `$WASMCACHED_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmcached`, else
    /// `~/.cache/wasmcached` (Windows: `%LOCALAPPDATA%\wasmcached`). Relative
    /// XDG/LOCALAPPDATA values are ignored, as the XDG spec says.
    pub fn default_dir() -> Option<std::path::PathBuf> {
        use std::path::PathBuf;
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(d) = var("WASMCACHED_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        if cfg!(windows) {
            return var("LOCALAPPDATA")
                .and_then(absolute)
                .map(|p| p.join("wasmcached"));
        }
        if let Some(p) = var("XDG_CACHE_HOME").and_then(absolute) {
            return Some(p.join("wasmcached"));
        }
        var("HOME")
            .and_then(absolute)
            .map(|p| p.join(".cache").join("wasmcached"))
    }

    /// The cache file for `bytes` compiled by `engine`: keyed by the plugin
    /// bytes and wasmtime's compatibility hash of the engine's settings (a
    /// different wasmtime version or configuration gets another file).
    pub fn path_for(dir: &Path, engine: &Engine, bytes: &[u8]) -> std::path::PathBuf {
        use std::hash::{Hash, Hasher};
        // `precompile_compatibility_hash` only offers `Hash`: collect what it
        // feeds a hasher, then hash that with the stable hash above.
        #[derive(Default)]
        struct Collect(Vec<u8>);
        impl Hasher for Collect {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.extend_from_slice(bytes);
            }
        }
        let mut compat = Collect::default();
        engine.precompile_compatibility_hash().hash(&mut compat);
        let key = hash128(&[CACHE_MAGIC, &compat.0, bytes]);
        dir.join(format!("{}.cwasm", hex(&key)))
    }

    fn log(&self, msg: std::fmt::Arguments<'_>) {
        if crate::verbose::level() >= 2 {
            eprintln!("{msg}");
        }
    }

    /// The module for `bytes`: from the cache file when it is intact and
    /// compatible, else compiled (and the file written or replaced). Any
    /// cache trouble only costs the compile.
    fn module(&self, engine: &Engine, bytes: &[u8], name: &str) -> Result<Module> {
        let Some(dir) = self.dir.as_deref() else {
            return compile(engine, bytes, name);
        };
        let path = CodeCache::path_for(dir, engine, bytes);
        match std::fs::read(&path) {
            Ok(file) => match verified_payload(&file) {
                Some(payload) => {
                    // SAFETY: `Module::deserialize` trusts its input to be
                    // code wasmtime serialized; running anything else is
                    // undefined behaviour. The payload comes from a file in
                    // our own cache directory, named by a hash of these
                    // plugin bytes and of this engine's compatibility hash,
                    // that this function wrote (atomically, temp file +
                    // rename) from `Module::serialize` of exactly these
                    // bytes; its checksum has just been verified over the
                    // very bytes handed to wasmtime (no second read of the
                    // file), and wasmtime checks its own header (version,
                    // target, engine flags) and refuses a mismatch, which
                    // is then recompiled below. A directory writable by
                    // someone else is as trusted as the binary itself.
                    match unsafe { Module::deserialize(engine, payload) } {
                        Ok(m) => {
                            self.log(format_args!(
                                "{name}: plugin code loaded from cache {}",
                                path.display()
                            ));
                            return Ok(m);
                        }
                        Err(e) => self.log(format_args!(
                            "{name}: cache file {} is not usable ({e}); recompiling",
                            path.display()
                        )),
                    }
                }
                None => self.log(format_args!(
                    "{name}: cache file {} is corrupt (bad header or checksum); recompiling",
                    path.display()
                )),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.log(format_args!(
                "{name}: no cached plugin code at {}; compiling",
                path.display()
            )),
            Err(e) => self.log(format_args!(
                "{name}: cannot read cache file {} ({e}); compiling",
                path.display()
            )),
        }
        let module = compile(engine, bytes, name)?;
        match write_cache_file(&path, &module) {
            Ok(()) => self.log(format_args!(
                "{name}: plugin code cached at {}",
                path.display()
            )),
            Err(e) => self.log(format_args!(
                "{name}: cannot write plugin code cache {}: {e:#}",
                path.display()
            )),
        }
        Ok(module)
    }
}

/// The serialized module inside a cache file, if magic and checksum match.
fn verified_payload(file: &[u8]) -> Option<&[u8]> {
    let (header, payload) = file.split_at_checked(CACHE_HEADER)?;
    let (magic, sum) = header.split_at(CACHE_MAGIC.len());
    (magic == CACHE_MAGIC && sum == hash128(&[payload])).then_some(payload)
}

/// Writes `module`'s code to `path` atomically: a unique temp file in the
/// same directory, renamed over the old file (readers see the old or the new
/// file, never half of one; two servers racing both write whole files).
fn write_cache_file(path: &Path, module: &Module) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let payload = module.serialize()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = path.with_extension(format!("tmp.{}.{nanos}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(CACHE_MAGIC)?;
        f.write_all(&hash128(&[&payload]))?;
        f.write_all(&payload)?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn check_exports(module: &Module) -> Result<()> {
    use wasmtime::ExternType;
    let has = |name: &str| module.get_export(name);
    match has(export::ABI_VERSION) {
        Some(ExternType::Func(_)) => {}
        _ => bail!("it does not export `{}`", export::ABI_VERSION),
    }
    for name in [export::INPUT, export::INIT, export::BATCH] {
        if !matches!(has(name), Some(ExternType::Func(_))) {
            bail!("it does not export the function `{name}`");
        }
    }
    if !matches!(has(export::MEMORY), Some(ExternType::Memory(_))) {
        bail!("it does not export its memory as `memory`");
    }
    Ok(())
}

struct Live {
    /// The ABI version the instance's `wmc_abi_version` returned.
    abi: u32,
    /// v3 `wmc_dump` / `wmc_load`, when exported (only looked up for v3).
    dump: Option<TypedFunc<i32, i64>>,
    load: Option<TypedFunc<i32, i32>>,
    store: Store<ShardCtx>,
    memory: Memory,
    input: TypedFunc<i32, i32>,
    batch: TypedFunc<i32, i64>,
    tick: Option<TypedFunc<i32, ()>>,
    timer: Option<TypedFunc<i64, ()>>,
    stats: Option<TypedFunc<i32, i64>>,
    /// v5 `wmc_iter`, when exported (only looked up for v5).
    iter: Option<TypedFunc<(i64, i32), i64>>,
}

/// Process-wide fault counters, shown in `stats`.
#[derive(Default)]
pub struct FaultStats {
    pub plugin_traps: AtomicU64,
    pub plugin_restarts: AtomicU64,
    /// Hot reloads done / refused (host/src/reload.rs).
    pub plugin_reloads: AtomicU64,
    pub plugin_reload_failures: AtomicU64,
    /// Re-instantiations after a fault that failed themselves (the fresh
    /// instance trapped or refused in `wmc_init`); each counts as a fault
    /// towards the crash-loop back-off.
    pub plugin_restart_failures: AtomicU64,
    /// Times a shard entered crash-loop back-off (see [`CrashLoop`]).
    pub plugin_backoffs: AtomicU64,
    /// Shards backing off right now (a gauge).
    pub plugin_shards_backing_off: AtomicU64,
}

/// Crash-loop back-off: a shard with [`CRASH_LOOP_FAULTS`] faults within
/// [`CRASH_LOOP_WINDOW`] stops being re-instantiated for a while; meanwhile
/// its commands are answered `SERVER_ERROR plugin shard N is backing off
/// after repeated faults` without calling the guest. The first back-off lasts
/// [`BACKOFF_FIRST`], each one that follows within [`BACKOFF_MAX`] of the
/// previous one's end lasts twice as long, up to [`BACKOFF_MAX`].
pub const CRASH_LOOP_FAULTS: usize = 5;
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(10);
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One shard's fault history, for the crash-loop back-off.
///
/// After a back-off ends the shard gets one fresh instance and is on
/// probation for [`CRASH_LOOP_WINDOW`]: a fault then (including a failed
/// re-instantiation) backs off again at once, for twice as long. A shard
/// that has not backed off for [`BACKOFF_MAX`] starts over at
/// [`BACKOFF_FIRST`].
#[derive(Debug, Default)]
struct CrashLoop {
    /// Faults within the last [`CRASH_LOOP_WINDOW`] (at most
    /// [`CRASH_LOOP_FAULTS`]: cleared when a back-off starts).
    recent: std::collections::VecDeque<std::time::Instant>,
    /// While backing off: when the shard may be re-instantiated.
    until: Option<std::time::Instant>,
    /// A fault before this instant backs off again at once.
    probation_until: Option<std::time::Instant>,
    /// When the last back-off ended.
    last_ended: Option<std::time::Instant>,
    /// Back-offs in a row (the next lasts `BACKOFF_FIRST * 2^streak`).
    streak: u32,
}

/// Why and for how long a shard backs off.
#[derive(Debug, PartialEq, Eq)]
struct BackOff {
    /// Faults counted (within `span`); 0 for a fault on probation.
    faults: usize,
    span: Duration,
    length: Duration,
}

impl CrashLoop {
    /// Records a fault at `now`; returns the back-off it starts, if any.
    fn record(&mut self, now: std::time::Instant) -> Option<BackOff> {
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > CRASH_LOOP_WINDOW)
        {
            self.recent.pop_front();
        }
        let on_probation = self.probation_until.is_some_and(|t| now < t);
        if self.recent.len() < CRASH_LOOP_FAULTS && !on_probation {
            return None;
        }
        if self
            .last_ended
            .is_some_and(|t| now.saturating_duration_since(t) > BACKOFF_MAX)
        {
            self.streak = 0;
        }
        let length = BACKOFF_FIRST
            .saturating_mul(1u32 << self.streak.min(16))
            .min(BACKOFF_MAX);
        self.streak = self.streak.saturating_add(1);
        let first = self.recent.front().copied().unwrap_or(now);
        let b = BackOff {
            faults: if self.recent.len() >= CRASH_LOOP_FAULTS {
                self.recent.len()
            } else {
                0
            },
            span: now.saturating_duration_since(first),
            length,
        };
        self.recent.clear();
        self.probation_until = None;
        self.until = Some(now + length);
        Some(b)
    }

    /// Ends a back-off at `now`: the shard may be re-instantiated, on probation.
    fn end(&mut self, now: std::time::Instant) {
        self.until = None;
        self.last_ended = Some(now);
        self.probation_until = Some(now + CRASH_LOOP_WINDOW);
    }
}

/// One shard: a plugin instance that can be replaced after a fault.
pub struct Shard {
    pub config: ShardConfig,
    plugin: Arc<Plugin>,
    inst: Option<Live>,
    deadline_ticks: u64,
    faults: Arc<FaultStats>,
    /// Bumped on every re-instantiation so stale guest timers are dropped.
    pub generation: u64,
    /// Fault history for the crash-loop back-off.
    crash: CrashLoop,
}

/// Why a batch got no answers.
#[derive(Debug)]
pub struct Fault(pub String);

/// One step of an item listing ([`Shard::list`]).
pub enum ListStep<'a> {
    /// A checked `wmc_iter` chunk in guest memory (valid until the next
    /// call into the plugin; empty when the plugin returned length 0) and
    /// the cursor to resume from: 0 when the listing of this shard is over.
    Chunk { cursor: u64, chunk: &'a [u8] },
    /// The plugin cannot list its items (no `wmc_iter`, an ABI before v5, or
    /// it answered unsupported).
    Unsupported,
}

/// What moving items from one instance to another did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Both sides speak ABI v3, export dump and load and implement them.
    pub supported: bool,
    /// Items in the chunks the destination took whole.
    pub moved: u64,
    /// Items the source dumped (including those of a refused chunk).
    pub dumped: u64,
    /// The destination took every chunk (false: it ran out of memory and
    /// loading stopped there).
    pub complete: bool,
}

/// Why a reloaded shard's new instance started empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StartedEmpty {
    /// The shard had no running instance to move items from: it was backing
    /// off after repeated faults (or its restart had failed).
    NoOldInstance,
    /// The old plugin exports no `wmc_dump` (or speaks ABI v1 or v2).
    OldCannotDump,
    /// The new plugin exports no `wmc_load` (or speaks ABI v1 or v2).
    NewCannotLoad,
    /// The old plugin's `wmc_dump` answered that it cannot dump.
    DumpRefused,
}

impl std::fmt::Display for StartedEmpty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StartedEmpty::NoOldInstance => {
                "backing off after repeated faults, so it held no items to move"
            }
            StartedEmpty::OldCannotDump => "the old plugin has no item dump (wmc_dump)",
            StartedEmpty::NewCannotLoad => "the new plugin has no item load (wmc_load)",
            StartedEmpty::DumpRefused => "the old plugin's wmc_dump answered unsupported",
        })
    }
}

/// What [`Shard::reload`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Why the new instance started empty; `None`: the items were moved
    /// from the old instance (both export dump and load).
    pub started_empty: Option<StartedEmpty>,
    /// Items the new instance took (see [`Transfer::moved`]).
    pub items_moved: u64,
    /// Every dumped item was offered and taken.
    pub complete: bool,
    /// The ABI version of the old (if it was running) and the new instance.
    pub old_abi: Option<u32>,
    pub new_abi: u32,
}

/// Which side of a transfer failed, and whether it was a guest fault.
struct TransferError {
    source_side: bool,
    fault: bool,
    err: anyhow::Error,
}

impl TransferError {
    fn source(fault: bool, err: anyhow::Error) -> TransferError {
        TransferError {
            source_side: true,
            fault,
            err,
        }
    }

    fn dest(err: anyhow::Error) -> TransferError {
        TransferError {
            source_side: false,
            fault: true,
            err,
        }
    }
}

/// One step of a dump.
enum DumpStep {
    Chunk(Vec<u8>),
    End,
    Unsupported,
}

impl Live {
    fn can_dump(&self) -> bool {
        self.abi >= abi::DUMP_LOAD_VERSION && self.dump.is_some()
    }

    fn can_load(&self) -> bool {
        self.abi >= abi::DUMP_LOAD_VERSION && self.load.is_some()
    }

    /// The next chunk of the running dump, checked to be well formed.
    fn dump_chunk(&mut self, ticks: u64) -> Result<DumpStep, TransferError> {
        let Some(f) = self.dump.clone() else {
            return Ok(DumpStep::Unsupported);
        };
        self.store.set_epoch_deadline(ticks);
        let packed = f
            .call(&mut self.store, DUMP_CHUNK_BYTES as i32)
            .map_err(|e| TransferError::source(true, e.into()))?;
        match packed {
            abi::dump_status::UNSUPPORTED => return Ok(DumpStep::Unsupported),
            abi::dump_status::FAILED => {
                return Err(TransferError::source(
                    false,
                    anyhow!("the plugin could not dump its items (out of memory)"),
                ))
            }
            _ => {}
        }
        let (ptr, len) = abi::unpack_ptr_len(packed);
        if len == 0 {
            return Ok(DumpStep::End);
        }
        let (ptr, len) = (ptr as usize, len as usize);
        let data = self.memory.data(&self.store);
        let chunk = ptr
            .checked_add(len)
            .and_then(|end| data.get(ptr..end))
            .ok_or_else(|| {
                TransferError::source(true, anyhow!("dump chunk outside guest memory"))
            })?;
        match abi::check_items(chunk) {
            Some(0) => Ok(DumpStep::End),
            Some(_) => Ok(DumpStep::Chunk(chunk.to_vec())),
            None => Err(TransferError::source(
                true,
                anyhow!("malformed dump chunk ({len} bytes)"),
            )),
        }
    }

    /// Offers one chunk to `wmc_load`; returns its status code.
    fn load_chunk(&mut self, chunk: &[u8], ticks: u64) -> Result<i32> {
        let f = self
            .load
            .clone()
            .ok_or_else(|| anyhow!("the plugin does not export `{}`", export::LOAD))?;
        match write_input(self, chunk, ticks) {
            Ok(()) => {}
            // No room even for the chunk: as good as a full store.
            Err(e) if e.is::<NoInputBuffer>() => return Ok(abi::load_status::FULL),
            Err(e) => return Err(e),
        }
        self.store.set_epoch_deadline(ticks);
        Ok(f.call(&mut self.store, chunk.len() as i32)?)
    }
}

/// Moves every item `src` dumps into `dst`, chunk by chunk (never more
/// than one chunk held by the host).
fn transfer(
    src: &mut Live,
    src_ticks: u64,
    dst: &mut Live,
    dst_ticks: u64,
    shard_id: u32,
) -> Result<Transfer, TransferError> {
    let mut t = Transfer {
        supported: src.can_dump() && dst.can_load(),
        complete: true,
        ..Transfer::default()
    };
    if !t.supported {
        return Ok(t);
    }
    let mut first = true;
    loop {
        let chunk = match src.dump_chunk(src_ticks)? {
            DumpStep::Chunk(c) => c,
            DumpStep::End => break,
            DumpStep::Unsupported if first => {
                t.supported = false;
                return Ok(t);
            }
            DumpStep::Unsupported => {
                return Err(TransferError::source(
                    true,
                    anyhow!("wmc_dump answered unsupported in the middle of a dump"),
                ))
            }
        };
        let n = u64::from(abi::batch_count(&chunk));
        t.dumped += n;
        let rc = dst
            .load_chunk(&chunk, dst_ticks)
            .map_err(TransferError::dest)?;
        match rc {
            abi::load_status::OK => t.moved += n,
            abi::load_status::FULL => {
                eprintln!(
                    "shard {shard_id}: the new plugin instance ran out of memory after \
                     {} items; the remaining items are dropped",
                    t.moved
                );
                t.complete = false;
                // Count what the source still had, for the report.
                while let DumpStep::Chunk(c) = src.dump_chunk(src_ticks)? {
                    t.dumped += u64::from(abi::batch_count(&c));
                }
                break;
            }
            abi::load_status::UNSUPPORTED if first => {
                t.supported = false;
                return Ok(t);
            }
            rc => {
                return Err(TransferError::dest(anyhow!(
                    "wmc_load answered {rc} to a chunk of {n} items"
                )))
            }
        }
        first = false;
    }
    Ok(t)
}

impl Shard {
    pub fn new(plugin: Arc<Plugin>, config: ShardConfig, faults: Arc<FaultStats>) -> Result<Shard> {
        let deadline_ticks =
            (config.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1;
        let mut shard = Shard {
            config,
            plugin,
            inst: None,
            deadline_ticks,
            faults,
            generation: 0,
            crash: CrashLoop::default(),
        };
        let inst = shard.instantiate()?;
        PLUGIN_ABI.store(inst.abi, Ordering::Relaxed);
        PLUGIN_LISTS.store(inst.iter.is_some(), Ordering::Relaxed);
        shard.inst = Some(inst);
        Ok(shard)
    }

    /// The plugin this shard runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The ABI version of the running instance (`None` while there is none).
    pub fn abi_version(&self) -> Option<u32> {
        self.inst.as_ref().map(|i| i.abi)
    }

    /// Whether the running instance can hand its items over (ABI v3, exports
    /// `wmc_dump` and `wmc_load`; it may still answer "unsupported").
    pub fn exports_dump_load(&self) -> bool {
        self.inst
            .as_ref()
            .is_some_and(|i| i.can_dump() && i.can_load())
    }

    fn instantiate(&self) -> Result<Live> {
        instantiate(&self.plugin, &self.config, self.deadline_ticks)
    }

    /// Whether the running instance lists its items (ABI v5 `wmc_iter`,
    /// exported and not answering "unsupported" at start-up).
    pub fn lists(&self) -> bool {
        self.inst.as_ref().is_some_and(|i| i.iter.is_some())
    }

    /// Moves every item of this shard's instance into `dst`'s (both need ABI
    /// v3 dump/load; otherwise nothing moves and `supported` is false). This
    /// instance is only read, but its dump position is left at the end: call
    /// it once. A fault of either side is handled as after a batch (that
    /// instance restarts empty) and returned as the error.
    pub fn transfer_to(&mut self, dst: &mut Shard) -> Result<Transfer> {
        let (src_ticks, dst_ticks) = (self.deadline_ticks, dst.deadline_ticks);
        let shard_id = dst.config.shard_id;
        let src_inst = self.live().map_err(|f| anyhow!(f.0))?;
        let dst_inst = dst.live().map_err(|f| anyhow!(f.0))?;
        match transfer(src_inst, src_ticks, dst_inst, dst_ticks, shard_id) {
            Ok(t) => Ok(t),
            Err(e) => {
                let msg = format!("{:#}", e.err);
                if e.fault {
                    if e.source_side {
                        self.fault("dump", &msg);
                    } else {
                        dst.fault("load", &msg);
                    }
                }
                let side = if e.source_side { "dump" } else { "load" };
                Err(e.err.context(format!("item {side} failed")))
            }
        }
    }

    /// Swaps in an instance of `new` for this shard (same config), moving
    /// the items across when both the old and the new instance speak ABI v3
    /// with dump and load; otherwise the new instance starts empty. On any
    /// error the old instance stays (a fault of the old instance during the
    /// dump restarts it empty, as any fault does) and the error is returned.
    /// The process-wide [`plugin_abi`] follows the new instance.
    pub fn reload(&mut self, new: Arc<Plugin>) -> Result<ReloadOutcome> {
        let ticks = self.deadline_ticks;
        let shard_id = self.config.shard_id;
        let mut fresh = instantiate(&new, &self.config, ticks)
            .with_context(|| format!("shard {shard_id}: starting plugin {}", new.name))?;
        let old_abi = self.abi_version();
        let mut outcome = ReloadOutcome {
            started_empty: Some(StartedEmpty::NoOldInstance),
            items_moved: 0,
            complete: true,
            old_abi,
            new_abi: fresh.abi,
        };
        if let Some(old) = self.inst.as_mut() {
            match transfer(old, ticks, &mut fresh, ticks, shard_id) {
                Ok(t) => {
                    outcome.started_empty = if t.supported {
                        None
                    } else if !old.can_dump() {
                        Some(StartedEmpty::OldCannotDump)
                    } else if !fresh.can_load() {
                        Some(StartedEmpty::NewCannotLoad)
                    } else {
                        Some(StartedEmpty::DumpRefused)
                    };
                    outcome.items_moved = t.moved;
                    outcome.complete = t.complete;
                }
                Err(e) => {
                    let msg = format!("{:#}", e.err);
                    if e.fault && e.source_side {
                        self.fault("dump", &msg);
                    }
                    let side = if e.source_side {
                        "dumping the old plugin's items"
                    } else {
                        "loading the items into the new plugin"
                    };
                    return Err(e
                        .err
                        .context(format!("shard {shard_id}: reload failed {side}")));
                }
            }
        }
        PLUGIN_ABI.store(fresh.abi, Ordering::Relaxed);
        PLUGIN_LISTS.store(fresh.iter.is_some(), Ordering::Relaxed);
        self.inst = Some(fresh);
        self.plugin = new;
        // Timers of the old instance must not reach the new one.
        self.generation += 1;
        Ok(outcome)
    }
}

/// Instantiates `plugin` for a shard and runs `wmc_init`.
fn instantiate(plugin: &Plugin, c: &ShardConfig, deadline_ticks: u64) -> Result<Live> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(memory_cap(c.memory_budget, c.item_size_max))
        .instances(1)
        .memories(1)
        .tables(4)
        .build();
    let mut store = Store::new(
        &plugin.engine,
        ShardCtx {
            limits,
            shard_id: c.shard_id,
            timers: Vec::new(),
            init_log: None,
            events: Vec::new(),
            errors: String::new(),
        },
    );
    store.limiter(|ctx| &mut ctx.limits);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(deadline_ticks);
    let instance: Instance = plugin.pre.instantiate(&mut store)?;
    let memory = instance
        .get_memory(&mut store, export::MEMORY)
        .context("no memory export")?;
    if c.hints.large_pages {
        // -L: wasmtime reserved the memory's whole range up front, so the
        // advice covers what it grows into too.
        let cap = memory_cap(c.memory_budget, c.item_size_max);
        crate::large_pages::advise(
            memory.data_ptr(&store),
            cap.next_multiple_of(64 * 1024),
            memory.data_size(&store),
        );
    }
    let version: TypedFunc<(), i32> = instance.get_typed_func(&mut store, export::ABI_VERSION)?;
    let v = version.call(&mut store, ())?;
    if !abi::SUPPORTED_ABI_VERSIONS.contains(&(v as u32)) {
        bail!(
            "plugin {} speaks ABI version {v}, this server speaks versions {:?}",
            plugin.name,
            abi::SUPPORTED_ABI_VERSIONS
        );
    }
    let v3 = v as u32 >= abi::DUMP_LOAD_VERSION;
    let mut inst = Live {
        abi: v as u32,
        dump: optional_func(&instance, &mut store, export::DUMP, v3)?,
        load: optional_func(&instance, &mut store, export::LOAD, v3)?,
        iter: optional_func(
            &instance,
            &mut store,
            export::ITER,
            v as u32 >= abi::ITER_VERSION,
        )?,
        input: instance.get_typed_func(&mut store, export::INPUT)?,
        batch: instance.get_typed_func(&mut store, export::BATCH)?,
        tick: instance.get_typed_func(&mut store, export::TICK).ok(),
        timer: instance.get_typed_func(&mut store, export::TIMER).ok(),
        stats: instance.get_typed_func(&mut store, export::STATS).ok(),
        memory,
        store,
    };
    let init_fn: TypedFunc<i32, i32> = instance.get_typed_func(&mut inst.store, export::INIT)?;
    let mut rec = Vec::new();
    let mut hints = Vec::new();
    c.hints.encode(&mut hints);
    Init {
        // The host speaks the plugin's version.
        abi_version: v as u32,
        shard_id: c.shard_id,
        shard_count: c.shard_count,
        flags: if c.use_cas { abi::init_flag::CAS } else { 0 }
            | if c.evict_to_free {
                0
            } else {
                abi::init_flag::NO_EVICT
            },
        memory_budget: c.memory_budget,
        max_item_size: c.item_size_max as u32,
        now: clock::now(),
        config: c.plugin_config.as_bytes(),
        // Left out by `encode` for v1-v4 plugins.
        hints: &hints,
    }
    .encode(&mut rec);
    write_input(&mut inst, &rec, deadline_ticks)?;
    inst.store.set_epoch_deadline(deadline_ticks);
    inst.store.data_mut().init_log = Some(String::new());
    let rc = init_fn.call(&mut inst.store, rec.len() as i32);
    let logged = inst.store.data_mut().init_log.take().unwrap_or_default();
    let rc = rc.map_err(|e| match logged.is_empty() {
        true => e,
        false => e.context(format!("the plugin logged: {logged}")),
    })?;
    if rc != 0 {
        let why = if logged.is_empty() {
            "it logged no reason".to_string()
        } else {
            logged
        };
        bail!(
            "plugin {} refused to initialise shard {} (code {rc}): {why}",
            plugin.name,
            c.shard_id
        );
    }
    // Whether `wmc_iter` lists at all, asked once: a plugin whose export
    // only answers "unsupported" (the Rust SDK's default) is then refused
    // up front, exactly as one without the export.
    if let Some(f) = inst.iter.clone() {
        inst.store.set_epoch_deadline(deadline_ticks);
        let probe = f.call(&mut inst.store, (0, 0)).map_err(|e| {
            anyhow!("wmc_iter(0, 0), asked whether the plugin can list its items: {e:#}")
        })?;
        if probe == abi::iter_status::UNSUPPORTED {
            inst.iter = None;
        }
    }
    Ok(inst)
}

/// An optional export: absent is fine, present with the wrong signature is
/// an error. Not looked up at all when `wanted` is false (an older ABI).
fn optional_func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<ShardCtx>,
    name: &str,
    wanted: bool,
) -> Result<Option<TypedFunc<P, R>>> {
    if !wanted || instance.get_func(&mut *store, name).is_none() {
        return Ok(None);
    }
    match instance.get_typed_func(store, name) {
        Ok(f) => Ok(Some(f)),
        Err(e) => bail!("the export `{name}` has the wrong signature: {e}"),
    }
}

impl Shard {
    /// Records a fault and replaces the instance with a fresh, empty one,
    /// unless the shard is in a crash loop: then it backs off (no instance
    /// until the back-off ends).
    fn fault(&mut self, what: &str, err: impl std::fmt::Display) -> Fault {
        self.faults.plugin_traps.fetch_add(1, Ordering::Relaxed);
        let logged = self
            .inst
            .take()
            .map(|mut i| std::mem::take(&mut i.store.data_mut().errors))
            .filter(|l| !l.is_empty())
            .map(|l| format!(" (the plugin logged: {l})"))
            .unwrap_or_default();
        self.generation += 1;
        let backoff = self.crash.record(std::time::Instant::now());
        let then = if backoff.is_some() {
            "not restarting it"
        } else {
            "restarting the shard empty"
        };
        eprintln!(
            "shard {}: plugin fault during {what}{logged}: {err}; {then}",
            self.config.shard_id
        );
        match backoff {
            Some(b) => self.enter_backoff(b),
            None => self.restart(),
        }
        Fault(format!("plugin fault during {what}"))
    }

    /// Starts a back-off [`CrashLoop::record`] asked for: counts it and logs
    /// one line.
    fn enter_backoff(&mut self, b: BackOff) {
        self.faults.plugin_backoffs.fetch_add(1, Ordering::Relaxed);
        self.faults
            .plugin_shards_backing_off
            .fetch_add(1, Ordering::Relaxed);
        let id = self.config.shard_id;
        let secs = b.length.as_secs();
        if b.faults > 0 {
            eprintln!(
                "shard {id}: {} faults in {:.1}s; backing off for {secs}s",
                b.faults,
                b.span.as_secs_f64()
            );
        } else {
            eprintln!(
                "shard {id}: faulted again within {}s of its last back-off; \
                 backing off for {secs}s",
                CRASH_LOOP_WINDOW.as_secs()
            );
        }
    }

    /// Ends a back-off when its time is up, or at once when an instance was
    /// put in place meanwhile (a plugin reload): that one starts with a
    /// clean fault history. True while the shard is still backing off.
    fn backing_off(&mut self) -> bool {
        let Some(until) = self.crash.until else {
            return false;
        };
        let now = std::time::Instant::now();
        if self.inst.is_none() && now < until {
            return true;
        }
        self.faults
            .plugin_shards_backing_off
            .fetch_sub(1, Ordering::Relaxed);
        if self.inst.is_some() {
            self.crash = CrashLoop {
                streak: self.crash.streak,
                ..CrashLoop::default()
            };
            self.crash.last_ended = Some(now);
        } else {
            self.crash.end(now);
            eprintln!(
                "shard {}: back-off over; starting a new plugin instance",
                self.config.shard_id
            );
        }
        false
    }

    fn restart(&mut self) {
        match self.instantiate() {
            Ok(i) => {
                self.faults.plugin_restarts.fetch_add(1, Ordering::Relaxed);
                PLUGIN_ABI.store(i.abi, Ordering::Relaxed);
                PLUGIN_LISTS.store(i.iter.is_some(), Ordering::Relaxed);
                self.inst = Some(i);
            }
            Err(e) => {
                // A fresh instance that cannot even start is a fault too:
                // a plugin that traps in `wmc_init` must not be retried on
                // every command.
                self.faults
                    .plugin_restart_failures
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!("shard {}: restart failed: {e:#}", self.config.shard_id);
                if let Some(b) = self.crash.record(std::time::Instant::now()) {
                    self.enter_backoff(b);
                }
            }
        }
    }

    /// The running instance, re-instantiated if a fault left none (unless
    /// the shard is backing off, when the guest is not called at all).
    fn live(&mut self) -> Result<&mut Live, Fault> {
        let shard_id = self.config.shard_id;
        let backing_off = || {
            Fault(format!(
                "plugin shard {shard_id} is backing off after repeated faults"
            ))
        };
        if self.backing_off() {
            return Err(backing_off());
        }
        if self.inst.is_none() {
            self.restart();
        }
        match self.inst.as_mut() {
            Some(i) => Ok(i),
            None if self.crash.until.is_some() => Err(backing_off()),
            None => Err(Fault("storage plugin unavailable".into())),
        }
    }

    /// Runs a request batch of `count` records. The answer borrows guest memory
    /// and is valid until the next call; it has been checked to hold exactly
    /// `count` well-formed records.
    pub fn batch(&mut self, requests: &[u8], count: u32) -> Result<Answers<'_>, Fault> {
        let ticks = self.deadline_ticks;
        // No instance (backing off, or it could not be restarted): no guest
        // call, and no new fault for the batch.
        self.live()?;
        let result = (|| -> Result<(usize, usize, bool)> {
            let inst = self.inst.as_mut().expect("live instance");
            write_input(inst, requests, ticks)?;
            inst.store.set_epoch_deadline(ticks);
            let ctx = inst.store.data_mut();
            if !ctx.errors.is_empty() {
                ctx.errors.clear();
            }
            ctx.events.clear();
            let packed = inst.batch.call(&mut inst.store, requests.len() as i32)?;
            let (ptr, len) = abi::unpack_ptr_len(packed);
            let (ptr, len) = (ptr as usize, len as usize);
            let data = inst.memory.data(&inst.store);
            let resp = ptr
                .checked_add(len)
                .and_then(|end| data.get(ptr..end))
                .ok_or_else(|| anyhow!("response buffer outside guest memory"))?;
            let held = abi::check_responses(resp, held_in(inst.abi, data), count)
                .map_err(|e| anyhow!(e))?;
            Ok((ptr, len, held))
        })();
        match result {
            Ok((ptr, len, held)) => {
                let inst = self.inst.as_ref().expect("live instance");
                let mem = inst.memory.data(&inst.store);
                Ok(Answers {
                    batch: &mem[ptr..ptr + len],
                    mem: held_in(inst.abi, mem),
                    held,
                    events: &inst.store.data().events,
                })
            }
            Err(e) if e.is::<NoInputBuffer>() => Err(Fault("out of memory".into())),
            Err(e) => Err(self.fault("batch", format!("{e:#}"))),
        }
    }

    /// The once-a-second clock callback.
    pub fn tick(&mut self, now: u32) {
        let ticks = self.deadline_ticks;
        let Ok(inst) = self.live() else { return };
        let Some(f) = inst.tick.clone() else { return };
        inst.store.set_epoch_deadline(ticks);
        if let Err(e) = f.call(&mut inst.store, now as i32) {
            self.fault("tick", format!("{e:#}"));
        }
    }

    /// A guest timer fired.
    pub fn timer(&mut self, token: u64) {
        let ticks = self.deadline_ticks;
        let Ok(inst) = self.live() else { return };
        let Some(f) = inst.timer.clone() else { return };
        inst.store.set_epoch_deadline(ticks);
        if let Err(e) = f.call(&mut inst.store, token as i64) {
            self.fault("timer", format!("{e:#}"));
        }
    }

    /// One step of an item listing (ABI v5 `wmc_iter`): the records from
    /// `cursor` on, at most about `max_bytes` of them. Only reads the store.
    /// A trap or a malformed chunk is a fault (the shard restarts empty);
    /// a chunk the plugin had no memory for is an error without a fault.
    pub fn list(&mut self, cursor: u64, max_bytes: usize) -> Result<ListStep<'_>, Fault> {
        let ticks = self.deadline_ticks;
        let inst = self.live()?;
        let Some(f) = inst.iter.clone() else {
            return Ok(ListStep::Unsupported);
        };
        inst.store.set_epoch_deadline(ticks);
        let max = max_bytes.min(i32::MAX as usize) as i32;
        let packed = match f.call(&mut inst.store, (cursor as i64, max)) {
            Ok(p) => p,
            Err(e) => return Err(self.fault("iter", format!("{e:#}"))),
        };
        match packed {
            abi::iter_status::UNSUPPORTED => return Ok(ListStep::Unsupported),
            abi::iter_status::FAILED => {
                return Err(Fault(
                    "the plugin could not list its items (out of memory)".into(),
                ))
            }
            _ => {}
        }
        let (ptr, len) = abi::unpack_ptr_len(packed);
        if len == 0 {
            return Ok(ListStep::Chunk {
                cursor: 0,
                chunk: &[],
            });
        }
        let (ptr, len) = (ptr as usize, len as usize);
        let checked = {
            let inst = self.inst.as_ref().expect("live instance");
            let data = inst.memory.data(&inst.store);
            match ptr.checked_add(len).and_then(|end| data.get(ptr..end)) {
                None => Err("listing chunk outside guest memory".to_string()),
                Some(chunk) => abi::check_iter_chunk(chunk)
                    .map(|(cursor, _)| cursor)
                    .ok_or_else(|| format!("malformed listing chunk ({len} bytes)")),
            }
        };
        match checked {
            Ok(cursor) => {
                let inst = self.inst.as_ref().expect("live instance");
                let data = inst.memory.data(&inst.store);
                Ok(ListStep::Chunk {
                    cursor,
                    chunk: &data[ptr..ptr + len],
                })
            }
            Err(e) => Err(self.fault("iter", e)),
        }
    }

    /// The guest's `name value` stat lines for `group`.
    pub fn stats(&mut self, group: i32) -> Vec<u8> {
        let ticks = self.deadline_ticks;
        let Ok(inst) = self.live() else {
            return Vec::new();
        };
        let Some(f) = inst.stats.clone() else {
            return Vec::new();
        };
        inst.store.set_epoch_deadline(ticks);
        match f.call(&mut inst.store, group) {
            Ok(packed) => {
                let (ptr, len) = abi::unpack_ptr_len(packed);
                let (ptr, len) = (ptr as usize, len as usize);
                let data = inst.memory.data(&inst.store);
                match ptr.checked_add(len).and_then(|end| data.get(ptr..end)) {
                    Some(s) => s.to_vec(),
                    None => {
                        self.fault("stats", "stats buffer outside guest memory");
                        Vec::new()
                    }
                }
            }
            Err(e) => {
                self.fault("stats", format!("{e:#}"));
                Vec::new()
            }
        }
    }

    /// Timers the guest requested since the last call.
    pub fn take_timers(&mut self) -> Vec<(u64, u32)> {
        match self.inst.as_mut() {
            Some(i) if !i.store.data().timers.is_empty() => {
                std::mem::take(&mut i.store.data_mut().timers)
            }
            _ => Vec::new(),
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        // Keep the gauge right when a shard goes away while backing off.
        if self.crash.until.is_some() {
            self.faults
                .plugin_shards_backing_off
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod crash_loop_tests {
    use super::*;
    use std::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn five_faults_in_the_window_back_off_and_the_back_off_doubles() {
        let t0 = Instant::now();
        let mut c = CrashLoop::default();
        for i in 0..4 {
            assert_eq!(c.record(t0 + 100 * i * MS), None, "fault {i}");
        }
        let b = c.record(t0 + 400 * MS).expect("fifth fault backs off");
        assert_eq!(
            b,
            BackOff {
                faults: 5,
                span: 400 * MS,
                length: BACKOFF_FIRST
            }
        );
        assert_eq!(c.until, Some(t0 + 400 * MS + BACKOFF_FIRST));
        // The back-off ends; one fault on probation backs off again, twice
        // as long, and so on up to the cap.
        let mut now = t0 + 1400 * MS;
        let mut expect = BACKOFF_FIRST;
        for _ in 0..10 {
            c.end(now);
            now += 10 * MS;
            expect = (expect * 2).min(BACKOFF_MAX);
            let b = c.record(now).expect("a fault on probation backs off");
            assert_eq!((b.faults, b.length), (0, expect));
            now += b.length;
        }
        assert_eq!(expect, BACKOFF_MAX);
    }

    #[test]
    fn spread_out_faults_never_back_off_and_a_quiet_shard_starts_over() {
        let t0 = Instant::now();
        let mut c = CrashLoop::default();
        // One fault every 3 s: never 5 within 10 s.
        for i in 0..100u32 {
            assert_eq!(c.record(t0 + 3000 * i * MS), None, "fault {i}");
        }
        assert!(c.recent.len() < CRASH_LOOP_FAULTS);
        // A crash loop, two back-offs...
        let mut now = t0 + Duration::from_secs(1000);
        for _ in 0..4 {
            assert_eq!(c.record(now), None);
        }
        assert_eq!(c.record(now).unwrap().length, BACKOFF_FIRST);
        now += BACKOFF_FIRST;
        c.end(now);
        assert_eq!(c.record(now).unwrap().length, 2 * BACKOFF_FIRST);
        now += 2 * BACKOFF_FIRST;
        c.end(now);
        // ...then the shard serves past its probation and past BACKOFF_MAX:
        // the next crash loop starts over at the first back-off length.
        now += CRASH_LOOP_WINDOW + BACKOFF_MAX + MS;
        for _ in 0..4 {
            assert_eq!(c.record(now), None);
        }
        assert_eq!(c.record(now).unwrap().length, BACKOFF_FIRST);
    }
}

/// The guest had no memory for a batch's input: the batch fails with an
/// out-of-memory error, but the instance and its items are fine.
#[derive(Debug)]
struct NoInputBuffer;

impl std::fmt::Display for NoInputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("out of memory")
    }
}

impl std::error::Error for NoInputBuffer {}

/// Copies `bytes` into the guest's input buffer (`wmc_input`), bounds-checked.
fn write_input(inst: &mut Live, bytes: &[u8], ticks: u64) -> Result<()> {
    inst.store.set_epoch_deadline(ticks);
    let ptr = inst.input.call(&mut inst.store, bytes.len() as i32)? as u32 as usize;
    if ptr == 0 && !bytes.is_empty() {
        return Err(NoInputBuffer.into());
    }
    // The guest may have grown its memory: look the data up afresh.
    let data = inst.memory.data_mut(&mut inst.store);
    let dst = ptr
        .checked_add(bytes.len())
        .and_then(|end| data.get_mut(ptr..end))
        .ok_or_else(|| anyhow!("input buffer outside guest memory"))?;
    dst.copy_from_slice(bytes);
    Ok(())
}

/// Where a plugin speaking `abi` keeps held values: its memory from v4 on.
fn held_in(abi: u32, mem: &[u8]) -> Option<&[u8]> {
    (abi >= abi::VALUE_REF_VERSION).then_some(mem)
}

/// One batch's answers as the plugin left them, in its memory: valid until
/// the next call into the plugin.
pub struct Answers<'a> {
    batch: &'a [u8],
    /// v4: the plugin's memory, where held values are read.
    mem: Option<&'a [u8]>,
    /// Some answer holds its value by reference.
    held: bool,
    /// ABI v6 `log_event` records of the batch, in request order.
    events: &'a [u8],
}

impl<'a> Answers<'a> {
    /// The answers, held values resolved (checked by [`Shard::batch`]).
    pub fn records(&self) -> impl Iterator<Item = Response<'a>> {
        abi::responses_in(self.batch, self.mem)
            .expect("checked by Shard::batch")
            .map(|r| r.expect("checked by Shard::batch"))
    }

    /// Replaces `out` with the answers as a response batch that carries all
    /// its values, to outlive the next guest call (answers for another
    /// worker).
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        out.clear();
        if !self.held {
            out.extend_from_slice(self.batch);
            return;
        }
        abi::begin_batch(out);
        let mut n = 0;
        for r in self.records() {
            r.encode(out);
            n += 1;
        }
        abi::set_batch_count(out, n);
    }

    /// What the plugin reported through `log_event` during the batch
    /// (ABI v6; empty unless asked, see [`abi::mflag::LOG_LOOKUP`]).
    pub fn events(&self) -> &'a [u8] {
        self.events
    }

    /// The number of answers.
    pub fn count(&self) -> u32 {
        abi::batch_count(self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmcached_sdk::abi::{Op, Request, Status};

    const FORGETFUL: &str = include_str!("../../tests/plugins/forgetful.wat");

    /// The tests below change the process-wide [`plugin_abi`] and check it:
    /// one at a time.
    static ABI_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        ABI_LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn config() -> ShardConfig {
        ShardConfig {
            shard_id: 0,
            shard_count: 1,
            memory_budget: 64 << 20,
            item_size_max: 1 << 20,
            use_cas: true,
            evict_to_free: true,
            plugin_config: String::new(),
            hints: abi::Hints::default(),
            deadline: Duration::from_secs(5),
        }
    }

    fn shard(plugin: &Arc<Plugin>) -> Shard {
        Shard::new(plugin.clone(), config(), Arc::default()).unwrap()
    }

    fn default_plugin() -> Arc<Plugin> {
        Arc::new(Plugin::new(DEFAULT_PLUGIN, "default-store").unwrap())
    }

    /// Runs one request; returns (status, value, flags, cas).
    fn run(s: &mut Shard, req: Request<'_>) -> (Status, Vec<u8>, u32, u64) {
        let mut buf = Vec::new();
        abi::begin_batch(&mut buf);
        req.encode(&mut buf);
        abi::set_batch_count(&mut buf, 1);
        let out = s.batch(&buf, 1).expect("no fault");
        let r = out.records().next().unwrap();
        (r.status().unwrap(), r.value.to_vec(), r.client_flags, r.cas)
    }

    fn set(s: &mut Shard, key: &str, value: &[u8], flags: u32) -> u64 {
        let (st, _, _, cas) = run(
            s,
            Request {
                op: Op::Set as u8,
                key: key.as_bytes(),
                value,
                client_flags: flags,
                ..Default::default()
            },
        );
        assert_eq!(st, Status::Stored);
        cas
    }

    fn get(s: &mut Shard, key: &str) -> Option<(Vec<u8>, u32, u64)> {
        let (st, v, f, cas) = run(
            s,
            Request {
                op: Op::Get as u8,
                key: key.as_bytes(),
                ..Default::default()
            },
        );
        match st {
            Status::Hit => Some((v, f, cas)),
            Status::Miss => None,
            st => panic!("get answered {st:?}"),
        }
    }

    #[test]
    fn reload_default_to_default_keeps_items_flags_and_cas() {
        let _serial = serial();
        let plugin = default_plugin();
        let mut s = shard(&plugin);
        assert_eq!(s.abi_version(), Some(abi::ABI_VERSION));
        assert!(s.exports_dump_load());
        let mut cas = Vec::new();
        for i in 0..5000u32 {
            // Values from 0 bytes to ~3 chunks' worth so chunking is exercised.
            let v = vec![b'a' + (i % 26) as u8; (i as usize * 7) % 3000];
            cas.push(set(&mut s, &format!("key{i}"), &v, i));
        }
        let big = vec![7u8; 900 * 1024];
        let big_cas = set(&mut s, "big", &big, 1);
        let generation = s.generation;

        let out = s.reload(default_plugin()).unwrap();
        assert_eq!(
            out,
            ReloadOutcome {
                started_empty: None,
                items_moved: 5001,
                complete: true,
                old_abi: Some(abi::ABI_VERSION),
                new_abi: abi::ABI_VERSION,
            }
        );
        assert_ne!(s.generation, generation, "old timers are dropped");
        assert!(!Arc::ptr_eq(s.plugin(), &plugin), "the new plugin runs");
        for i in (0..5000u32).step_by(37) {
            let v = vec![b'a' + (i % 26) as u8; (i as usize * 7) % 3000];
            assert_eq!(
                get(&mut s, &format!("key{i}")),
                Some((v, i, cas[i as usize])),
                "key{i}"
            );
        }
        assert_eq!(get(&mut s, "big"), Some((big, 1, big_cas)));
        // The moved CAS values still work for cas, and the instance takes
        // new writes.
        let (st, ..) = run(
            &mut s,
            Request {
                op: Op::Cas as u8,
                key: b"key1",
                value: b"new",
                cas: cas[1],
                ..Default::default()
            },
        );
        assert_eq!(st, Status::Stored);
        assert_eq!(get(&mut s, "key1").unwrap().0, b"new");
        assert_eq!(plugin_abi(), abi::ABI_VERSION);
    }

    #[test]
    fn reload_to_a_plugin_without_dump_starts_empty_and_back() {
        let _serial = serial();
        let mut s = shard(&default_plugin());
        set(&mut s, "kept", b"v", 0);
        let forgetful = Arc::new(Plugin::new(FORGETFUL.as_bytes(), "forgetful.wat").unwrap());
        let out = s.reload(forgetful).unwrap();
        assert_eq!(
            out,
            ReloadOutcome {
                started_empty: Some(StartedEmpty::NewCannotLoad),
                items_moved: 0,
                complete: true,
                old_abi: Some(abi::ABI_VERSION),
                new_abi: 2,
            }
        );
        assert_eq!(s.abi_version(), Some(2));
        assert!(!s.exports_dump_load());
        assert_eq!(plugin_abi(), 2);
        assert_eq!(get(&mut s, "kept"), None);
        // Back to the default store: the old instance cannot dump, so the
        // new one starts empty too.
        let out = s.reload(default_plugin()).unwrap();
        assert_eq!(out.started_empty, Some(StartedEmpty::OldCannotDump));
        assert_eq!((out.old_abi, out.new_abi), (Some(2), abi::ABI_VERSION));
        assert_eq!(get(&mut s, "kept"), None);
        assert_eq!(plugin_abi(), abi::ABI_VERSION);
        set(&mut s, "after", b"x", 0);
        assert_eq!(get(&mut s, "after").unwrap().0, b"x");
    }

    #[test]
    fn a_failed_reload_keeps_the_old_instance() {
        let _serial = serial();
        let mut s = shard(&default_plugin());
        set(&mut s, "kept", b"v", 5);
        // A plugin whose init refuses the shard (the default store refuses
        // an unknown plugin config setting).
        let refusing = r#"(module
            (memory (export "memory") 1)
            (func (export "wmc_abi_version") (result i32) (i32.const 3))
            (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
            (func (export "wmc_init") (param i32) (result i32) (i32.const 1))
            (func (export "wmc_batch") (param i32) (result i64) (i64.const 0)))"#;
        let bad = Arc::new(Plugin::new(refusing.as_bytes(), "refusing.wat").unwrap());
        let generation = s.generation;
        let err = s.reload(bad).unwrap_err();
        assert!(format!("{err:#}").contains("refused"), "{err:#}");
        assert_eq!(s.generation, generation);
        assert_eq!(get(&mut s, "kept").unwrap().0, b"v");
        assert_eq!(s.plugin().name, "default-store");

        // A v3 plugin whose load traps: the old instance stays, with its items.
        let trapping_load = r#"(module
            (memory (export "memory") 1)
            (func (export "wmc_abi_version") (result i32) (i32.const 3))
            (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
            (func (export "wmc_init") (param i32) (result i32) (i32.const 0))
            (func (export "wmc_batch") (param i32) (result i64) (i64.const 0))
            (func (export "wmc_dump") (param i32) (result i64) (i64.const 0))
            (func (export "wmc_load") (param i32) (result i32) unreachable))"#;
        let bad = Arc::new(Plugin::new(trapping_load.as_bytes(), "trap.wat").unwrap());
        let err = s.reload(bad).unwrap_err();
        assert!(format!("{err:#}").contains("loading"), "{err:#}");
        assert_eq!(get(&mut s, "kept").unwrap().0, b"v");
    }

    #[test]
    fn a_file_that_is_neither_wasm_nor_wat_says_so() {
        assert_eq!(Format::of(b"\0asm\x01\0\0\0"), Format::Wasm);
        assert_eq!(Format::of(b"(module)"), Format::Wat);
        assert_eq!(
            Format::of(b"\xef\xbb\xbf  ;; a store\n(; v1 ;)\n(module)"),
            Format::Wat
        );
        assert_eq!(Format::of(b"(; never closed"), Format::Wat);
        for junk in [
            &b""[..],
            b"hello",
            b"\x7fELF\x02\x01",
            b";; only a comment",
            b"\xff\xfe(",
        ] {
            assert_eq!(Format::of(junk), Format::Neither, "{junk:?}");
        }
        let err = format!(
            "{:#}",
            Plugin::new(b"#!/bin/sh\necho hi\n", "x.sh").err().unwrap()
        );
        assert_eq!(
            err,
            "x.sh is neither a Wasm module (it does not start with \\0asm) nor WAT text \
             (its first token is not `(`)"
        );
        let err = format!(
            "{:#}",
            Plugin::new(b"(module (func (bogus)))", "y.wat")
                .err()
                .unwrap()
        );
        assert!(err.starts_with("y.wat: not valid WAT text: "), "{err}");
        let err = format!(
            "{:#}",
            Plugin::new(b"\0asm\x0f\0\0\0", "z.wasm").err().unwrap()
        );
        assert!(
            err.starts_with("z.wasm: not a valid Wasm module: "),
            "{err}"
        );
    }

    #[test]
    fn a_refused_init_shows_what_the_plugin_logged() {
        let _serial = serial();
        let refusing = |log: &str| {
            format!(
                r#"(module
                (import "wasmcached" "log" (func $log (param i32 i32 i32)))
                (memory (export "memory") 1)
                (data (i32.const 64) "{log}")
                (func (export "wmc_abi_version") (result i32) (i32.const 1))
                (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
                (func (export "wmc_init") (param i32) (result i32)
                    (if (i32.const {n}) (then (call $log (i32.const 0) (i32.const 64) (i32.const {n}))))
                    (i32.const 3))
                (func (export "wmc_batch") (param i32) (result i64) (i64.const 0)))"#,
                n = log.len()
            )
        };
        let c = shard(&default_plugin()).config.clone();
        for (log, want) in [
            ("quota wants bytes", "(code 3): quota wants bytes"),
            ("", "(code 3): it logged no reason"),
        ] {
            let p = Arc::new(Plugin::new(refusing(log).as_bytes(), "refusing.wat").unwrap());
            let err = format!(
                "{:#}",
                Shard::new(p, c.clone(), Arc::default()).err().unwrap()
            );
            assert!(
                err.ends_with(&format!("refused to initialise shard 0 {want}")),
                "{err}"
            );
        }
    }

    #[test]
    fn transfer_between_shards_and_wrong_signatures() {
        let _serial = serial();
        let plugin = default_plugin();
        let mut a = shard(&plugin);
        let mut b = shard(&plugin);
        let cas = set(&mut a, "x", b"1", 9);
        let t = a.transfer_to(&mut b).unwrap();
        assert_eq!(
            t,
            Transfer {
                supported: true,
                moved: 1,
                dumped: 1,
                complete: true,
            }
        );
        assert_eq!(get(&mut b, "x"), Some((b"1".to_vec(), 9, cas)));
        // The source still has it (a dump only reads).
        assert_eq!(get(&mut a, "x"), Some((b"1".to_vec(), 9, cas)));

        let wrong = r#"(module
            (memory (export "memory") 1)
            (func (export "wmc_abi_version") (result i32) (i32.const 3))
            (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
            (func (export "wmc_init") (param i32) (result i32) (i32.const 0))
            (func (export "wmc_batch") (param i32) (result i64) (i64.const 0))
            (func (export "wmc_dump") (param i32) (result i32) (i32.const 0)))"#;
        let p = Arc::new(Plugin::new(wrong.as_bytes(), "wrong.wat").unwrap());
        let err = Shard::new(p, config(), Arc::default()).err().unwrap();
        assert!(format!("{err:#}").contains("wrong signature"), "{err:#}");
    }

    /// Every record of a whole listing of `s`, as (key, value_len, cursor
    /// count), walked as the worker does.
    fn list_all(s: &mut Shard, max_bytes: usize) -> (Vec<(String, u32)>, usize) {
        let (mut out, mut cursor, mut calls) = (Vec::new(), 0, 0);
        loop {
            calls += 1;
            let next = match s.list(cursor, max_bytes).expect("no fault") {
                ListStep::Unsupported => panic!("unsupported"),
                ListStep::Chunk { cursor, chunk } => {
                    let (_, recs) = abi::iter_chunk(chunk).unwrap();
                    for r in recs {
                        let r = r.unwrap();
                        out.push((String::from_utf8_lossy(r.key).into_owned(), r.value_len));
                    }
                    cursor
                }
            };
            if next == 0 {
                return (out, calls);
            }
            cursor = next;
        }
    }

    #[test]
    fn listing_walks_the_default_store_and_older_plugins_cannot() {
        let _serial = serial();
        let mut s = shard(&default_plugin());
        assert!(plugin_lists());
        for i in 0..2000u32 {
            set(&mut s, &format!("key{i}"), &vec![b'v'; i as usize % 50], 0);
        }
        let (mut got, calls) = list_all(&mut s, 4096);
        assert!(calls > 10, "{calls}");
        got.sort();
        let mut want: Vec<_> = (0..2000u32).map(|i| (format!("key{i}"), i % 50)).collect();
        want.sort();
        assert_eq!(got, want);
        // Batches go on between the steps; the listing only read.
        assert_eq!(get(&mut s, "key3").unwrap().0, b"vvv");

        // A v2 plugin has no listing, and neither has a v5 one without the export.
        let forgetful = Arc::new(Plugin::new(FORGETFUL.as_bytes(), "forgetful.wat").unwrap());
        let mut old = shard(&forgetful);
        assert!(!plugin_lists());
        assert!(matches!(old.list(0, 4096), Ok(ListStep::Unsupported)));
        let v5 = r#"(module
            (memory (export "memory") 1)
            (func (export "wmc_abi_version") (result i32) (i32.const 5))
            (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
            (func (export "wmc_init") (param i32) (result i32) (i32.const 0))
            (func (export "wmc_batch") (param i32) (result i64) (i64.const 0)))"#;
        let p = Arc::new(Plugin::new(v5.as_bytes(), "v5.wat").unwrap());
        let mut s5 = shard(&p);
        assert!(!plugin_lists());
        assert!(matches!(s5.list(0, 4096), Ok(ListStep::Unsupported)));
        // An export that answers "unsupported" (the Rust SDK's default) is
        // found out once, at start-up: as good as none.
        let unsupported = v5.replace(
            "(i64.const 0)))",
            "(i64.const 0))\n(func (export \"wmc_iter\") (param i64 i32) (result i64) (i64.const -1)))",
        );
        let p = Arc::new(Plugin::new(unsupported.as_bytes(), "v5-no-list.wat").unwrap());
        let mut s5 = shard(&p);
        assert!(!plugin_lists());
        assert!(matches!(s5.list(0, 4096), Ok(ListStep::Unsupported)));
        assert!(matches!(
            shard(&default_plugin()).list(0, 0),
            Ok(ListStep::Chunk { cursor: 0, .. })
        ));
        assert!(plugin_lists());
    }

    #[test]
    fn a_bad_listing_chunk_is_a_fault_and_out_of_memory_is_not() {
        let _serial = serial();
        // `wmc_iter` answers what the cursor says: 1 a chunk whose count
        // promises a record that is not there, 2 a chunk beyond memory, 3
        // "failed", 4 a trap; 0 an empty last chunk (length 0).
        let wat = r#"(module
            (memory (export "memory") 1)
            (data (i32.const 256) "\01\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")
            (func (export "wmc_abi_version") (result i32) (i32.const 5))
            (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
            (func (export "wmc_init") (param i32) (result i32) (i32.const 0))
            (func (export "wmc_batch") (param i32) (result i64) (i64.const 0))
            (func (export "wmc_iter") (param i64 i32) (result i64)
                (if (i64.eq (local.get 0) (i64.const 1)) (then (return (i64.const 0x10000000010))))
                (if (i64.eq (local.get 0) (i64.const 2)) (then (return (i64.const 0x1000000000010))))
                (if (i64.eq (local.get 0) (i64.const 3)) (then (return (i64.const -2))))
                (if (i64.eq (local.get 0) (i64.const 4)) (then unreachable))
                (i64.const 0)))"#;
        let p = Arc::new(Plugin::new(wat.as_bytes(), "lister.wat").unwrap());
        let faults = Arc::new(FaultStats::default());
        let mut s = Shard::new(p, config(), faults.clone()).unwrap();
        assert!(plugin_lists());
        assert!(matches!(
            s.list(0, 4096),
            Ok(ListStep::Chunk {
                cursor: 0,
                chunk: []
            })
        ));
        let traps = || faults.plugin_traps.load(Ordering::Relaxed);
        assert!(s.list(3, 4096).is_err());
        assert_eq!(traps(), 0, "no memory for a chunk is not a fault");
        for (cursor, n) in [(1, 1), (2, 2), (4, 3)] {
            let Err(f) = s.list(cursor, 4096) else {
                panic!("cursor {cursor}: no error")
            };
            assert_eq!(f.0, "plugin fault during iter");
            assert_eq!(traps(), n, "cursor {cursor}");
        }
    }
}
