//! The host functions a plugin imports (`wasmcached` module: log, now,
//! log_event, timer_set) and the per-store state they write, which the shard
//! reads after each call. Nothing a guest passes them is trusted: pointers
//! are bounds-checked and what they keep is capped.

use crate::clock;
use anyhow::Result;
use wasmcached_abi::{self as abi, export, import};
use wasmtime::{Caller, Engine, Linker, StoreLimits};

/// Per-store host state, reachable from host imports.
pub struct ShardCtx {
    pub(super) limits: StoreLimits,
    pub(super) shard_id: u32,
    /// How log lines name the plugin ([`super::Plugin::log_name`]).
    pub(super) plugin_name: std::sync::Arc<str>,
    /// Timers the guest asked for during the last call: (token, delay_ms).
    pub(super) timers: Vec<(u64, u32)>,
    /// While `wmc_init` runs: what the guest logged, so that a refusal can
    /// say why without `-v`.
    pub(super) init_log: Option<String>,
    /// ABI v6 `log_event` records of the running batch, back to back (at
    /// most [`EVENTS_KEPT`] bytes): what `watch` logs for it.
    pub(super) events: Vec<u8>,
    /// Error lines the guest logged since the last batch began (at most
    /// [`ERRORS_KEPT`] bytes), so that a fault line can say why without
    /// `-v` (a Rust plugin's panic message arrives this way).
    pub(super) errors: String,
}

/// How much of a guest's error log a fault line repeats.
const ERRORS_KEPT: usize = 2048;

/// How many bytes of `log_event` records one batch may leave: a watcher
/// is told about lines it missed, a guest cannot grow host memory.
const EVENTS_KEPT: usize = 4 << 20;

/// Where `wasmcached plugin check` collects every line a guest logs, at
/// every level and whatever `-v` says, to show it under a failed check.
static LOG_TAP: std::sync::OnceLock<fn(i32, &str)> = std::sync::OnceLock::new();

/// Hands every guest log line (level, message) to `tap` as well; the first
/// tap of the process stays.
pub fn tap_log(tap: fn(i32, &str)) {
    let _ = LOG_TAP.set(tap);
}

/// A linker with every host import, for compiling plugins against.
pub(super) fn linker(engine: &Engine) -> Result<Linker<ShardCtx>> {
    let mut linker: Linker<ShardCtx> = Linker::new(engine);
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
            if let Some(tap) = LOG_TAP.get() {
                tap(level, &msg);
            }
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
                eprintln!("{} shard {}: {msg}", ctx.plugin_name, ctx.shard_id);
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
    Ok(linker)
}
