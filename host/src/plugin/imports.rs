//! The host functions a plugin imports (`wasmcached` module: log, now,
//! log_event, timer_set) and the per-store state they write, which the shard
//! reads after each call. Nothing a guest passes them is trusted: pointers
//! are bounds-checked and what they keep is capped. A component (the WIT
//! world, `component`) also imports WASI 0.2: its state is here too, with
//! nothing granted.

use crate::clock;
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wasmcached_abi::{self as abi, export, import};
use wasmtime::component::ResourceTable;
use wasmtime::{Caller, Engine, Linker, ResourceLimiter, StoreLimits};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::ClosedInputStream;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Per-store host state, reachable from host imports.
pub struct ShardCtx {
    pub(super) limits: Limits,
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
    /// A component's WASI state (`None` for a core module).
    pub(super) wasi: Option<Box<WasiState>>,
}

/// The sandbox's limits, counting the memory granted: a component's
/// memories are not reachable through the component API, so this is how
/// the host knows what it uses, and caps all of them together.
pub(super) struct Limits {
    limits: StoreLimits,
    memory: u64,
    cap: u64,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current) as u64;
        if self.memory + more > self.cap {
            return Ok(false);
        }
        let granted = self.limits.memory_growing(current, desired, maximum)?;
        if granted {
            self.memory += more;
        }
        Ok(granted)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl ShardCtx {
    /// Bytes of linear memory the sandbox has granted the instance.
    pub(super) fn limits_used(&self) -> u64 {
        self.limits.memory
    }

    /// `limits` caps each memory; `memory_cap` all of them together.
    pub(super) fn new(
        shard_id: u32,
        plugin_name: Arc<str>,
        limits: StoreLimits,
        memory_cap: u64,
    ) -> ShardCtx {
        ShardCtx {
            limits: Limits {
                limits,
                memory: 0,
                cap: memory_cap,
            },
            shard_id,
            plugin_name,
            timers: Vec::new(),
            init_log: None,
            events: Vec::new(),
            errors: String::new(),
            wasi: None,
        }
    }

    /// A line the guest logged at `level` (abi::log_level): kept for a
    /// refused init and a fault line, shown by `-v` as its level asks.
    pub(super) fn guest_log(&mut self, level: i32, msg: String) {
        if let Some(tap) = LOG_TAP.get() {
            tap(level, &msg);
        }
        if let Some(log) = self.init_log.as_mut() {
            if !log.is_empty() {
                log.push_str("; ");
            }
            log.push_str(&msg);
        }
        if level == abi::log_level::ERROR && self.errors.len() < ERRORS_KEPT {
            if !self.errors.is_empty() {
                self.errors.push_str("; ");
            }
            let room = ERRORS_KEPT - self.errors.len();
            let mut cut = msg.len().min(room);
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            self.errors.push_str(&msg[..cut]);
        }
        // Guest errors show with -v, warnings/info with -vv, debug
        // with -vvv (the level `verbosity` changes at run time).
        let needed = match level {
            abi::log_level::ERROR => 1,
            abi::log_level::WARN | abi::log_level::INFO => 2,
            _ => 3,
        };
        if crate::verbose::level() >= needed {
            eprintln!("{} shard {}: {msg}", self.plugin_name, self.shard_id);
        }
    }

    /// A timer the guest asked for; a guest cannot flood the host's timer
    /// heap.
    pub(super) fn set_timer(&mut self, token: u64, delay_ms: u32) {
        if self.timers.len() < 1024 {
            self.timers.push((token, delay_ms));
        }
    }

    /// Keeps a component's `watch` event (the world's `events.log-event`)
    /// as the core import keeps a `log_event` record: a key of at most 250
    /// bytes, within [`EVENTS_KEPT`] a batch.
    pub(super) fn keep_event(&mut self, e: &abi::Event<'_>) {
        if e.key.len() <= wasmcached_protocol::limits::KEY_MAX_LENGTH
            && self.events.len() + abi::EVENT_HEADER + e.key.len() <= EVENTS_KEPT
        {
            e.encode(&mut self.events);
        }
    }

    /// What a component printed to stdout and stderr since the last call.
    pub(super) fn take_stdio(&mut self) -> (Vec<u8>, Vec<u8>) {
        match self.wasi.as_ref() {
            Some(w) => (w.stdout.take(), w.stderr.take()),
            None => (Vec::new(), Vec::new()),
        }
    }
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
            caller.data_mut().guest_log(level, msg);
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
            caller
                .data_mut()
                .set_timer(token as u64, delay_ms.max(0) as u32);
        },
    )?;
    Ok(linker)
}

/// The WASI side of a component's store: a context with nothing granted.
pub struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    stdout: LogPipe,
    stderr: LogPipe,
}

impl WasiState {
    pub(super) fn new() -> WasiState {
        let (stdout, stderr) = (LogPipe::default(), LogPipe::default());
        // WasiCtx's defaults grant nothing: no preopens, no environment, no
        // arguments, every socket address refused. Only stdio is set, so
        // that what a guest prints reaches the plugin's log.
        let ctx = WasiCtx::builder()
            .stdin(ClosedInputStream)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        WasiState {
            ctx,
            table: ResourceTable::new(),
            stdout,
            stderr,
        }
    }
}

impl WasiView for ShardCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let w = self
            .wasi
            .as_mut()
            .expect("a component's store has its WASI state");
        WasiCtxView {
            ctx: &mut w.ctx,
            table: &mut w.table,
        }
    }
}

/// A component's stdout or stderr: bytes kept until the host passes them
/// to the log after the call, at most `PIPE_CAPACITY` (the rest of a
/// flood is dropped, never an error the guest would trip over).
#[derive(Clone, Default)]
struct LogPipe(Arc<Pipe>);

#[derive(Default)]
struct Pipe {
    bytes: Mutex<Vec<u8>>,
    /// Set by a write: the host takes the bytes after every call into the
    /// guest, and almost every call prints nothing, so it checks this
    /// instead of taking the lock.
    written: AtomicBool,
}

impl LogPipe {
    fn take(&self) -> Vec<u8> {
        if !self.0.written.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.0.bytes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.3 guests (async) ask for this one; the world is 0.2.
        Box::new(tokio::io::sink())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let mut buf = self.0.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let room = PIPE_CAPACITY.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.0.written.store(true, Ordering::Release);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(PIPE_CAPACITY)
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

/// What a component's stdout and stderr may hold between two calls; the
/// rest is dropped, so a guest printing in a loop cannot grow host memory.
const PIPE_CAPACITY: usize = 64 * 1024;
