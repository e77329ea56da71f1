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
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmcached_sdk::abi::{self, export, import, Init};
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

/// How often the engine's epoch advances; call deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(50);

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
    pub deadline: Duration,
    pub verbose: u8,
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
    verbose: u8,
    /// Timers the guest asked for during the last call: (token, delay_ms).
    timers: Vec<(u64, u32)>,
}

impl Plugin {
    /// Compiles `bytes` (a .wasm, or .wat text) and checks its exports.
    pub fn new(bytes: &[u8], name: &str) -> Result<Plugin> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, bytes)
            .map_err(|e| anyhow!("{name}: not a valid Wasm module: {e}"))?;
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
                let ctx = caller.data();
                // Guest errors show with -v, warnings/info with -vv, debug with -vvv.
                let needed = match level {
                    abi::log_level::ERROR => 1,
                    abi::log_level::WARN | abi::log_level::INFO => 2,
                    _ => 3,
                };
                if ctx.verbose >= needed {
                    eprintln!("shard {}: {}", ctx.shard_id, String::from_utf8_lossy(msg));
                }
            },
        )?;
        linker.func_wrap(import::MODULE, import::NOW, || clock::now() as i32)?;
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
    store: Store<ShardCtx>,
    memory: Memory,
    input: TypedFunc<i32, i32>,
    batch: TypedFunc<i32, i64>,
    tick: Option<TypedFunc<i32, ()>>,
    timer: Option<TypedFunc<i64, ()>>,
    stats: Option<TypedFunc<i32, i64>>,
}

/// Process-wide fault counters, shown in `stats`.
#[derive(Default)]
pub struct FaultStats {
    pub plugin_traps: AtomicU64,
    pub plugin_restarts: AtomicU64,
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
}

/// Why a batch got no answers.
#[derive(Debug)]
pub struct Fault(pub String);

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
        };
        shard.inst = Some(shard.instantiate()?);
        Ok(shard)
    }

    fn instantiate(&self) -> Result<Live> {
        let c = &self.config;
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_cap(c.memory_budget, c.item_size_max))
            .instances(1)
            .memories(1)
            .tables(4)
            .build();
        let mut store = Store::new(
            &self.plugin.engine,
            ShardCtx {
                limits,
                shard_id: c.shard_id,
                verbose: c.verbose,
                timers: Vec::new(),
            },
        );
        store.limiter(|ctx| &mut ctx.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        let instance: Instance = self.plugin.pre.instantiate(&mut store)?;
        let memory = instance
            .get_memory(&mut store, export::MEMORY)
            .context("no memory export")?;
        let version: TypedFunc<(), i32> =
            instance.get_typed_func(&mut store, export::ABI_VERSION)?;
        let v = version.call(&mut store, ())?;
        if !abi::SUPPORTED_ABI_VERSIONS.contains(&(v as u32)) {
            bail!(
                "plugin {} speaks ABI version {v}, this server speaks versions {:?}",
                self.plugin.name,
                abi::SUPPORTED_ABI_VERSIONS
            );
        }
        PLUGIN_ABI.store(v as u32, Ordering::Relaxed);
        let mut inst = Live {
            input: instance.get_typed_func(&mut store, export::INPUT)?,
            batch: instance.get_typed_func(&mut store, export::BATCH)?,
            tick: instance.get_typed_func(&mut store, export::TICK).ok(),
            timer: instance.get_typed_func(&mut store, export::TIMER).ok(),
            stats: instance.get_typed_func(&mut store, export::STATS).ok(),
            memory,
            store,
        };
        let init_fn: TypedFunc<i32, i32> =
            instance.get_typed_func(&mut inst.store, export::INIT)?;
        let mut rec = Vec::new();
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
        }
        .encode(&mut rec);
        write_input(&mut inst, &rec, self.deadline_ticks)?;
        inst.store.set_epoch_deadline(self.deadline_ticks);
        let rc = init_fn.call(&mut inst.store, rec.len() as i32)?;
        if rc != 0 {
            bail!(
                "plugin {} refused to initialise shard {} (code {rc})",
                self.plugin.name,
                c.shard_id
            );
        }
        Ok(inst)
    }

    /// Records a fault and replaces the instance with a fresh, empty one.
    fn fault(&mut self, what: &str, err: impl std::fmt::Display) -> Fault {
        self.faults.plugin_traps.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "shard {}: plugin fault during {what}: {err}; restarting the shard empty",
            self.config.shard_id
        );
        self.inst = None;
        self.generation += 1;
        self.restart();
        Fault(format!("plugin fault during {what}"))
    }

    fn restart(&mut self) {
        match self.instantiate() {
            Ok(i) => {
                self.faults.plugin_restarts.fetch_add(1, Ordering::Relaxed);
                self.inst = Some(i);
            }
            Err(e) => eprintln!("shard {}: restart failed: {e:#}", self.config.shard_id),
        }
    }

    fn live(&mut self) -> Result<&mut Live, Fault> {
        if self.inst.is_none() {
            self.restart();
        }
        self.inst
            .as_mut()
            .ok_or_else(|| Fault("storage plugin unavailable".into()))
    }

    /// Runs a request batch of `count` records. The answer borrows guest memory
    /// and is valid until the next call; it has been checked to hold exactly
    /// `count` well-formed records.
    pub fn batch(&mut self, requests: &[u8], count: u32) -> Result<&[u8], Fault> {
        let ticks = self.deadline_ticks;
        let result = (|| -> Result<(usize, usize)> {
            let inst = self.live().map_err(|f| anyhow!(f.0))?;
            write_input(inst, requests, ticks)?;
            inst.store.set_epoch_deadline(ticks);
            let packed = inst.batch.call(&mut inst.store, requests.len() as i32)?;
            let (ptr, len) = abi::unpack_ptr_len(packed);
            let (ptr, len) = (ptr as usize, len as usize);
            let data = inst.memory.data(&inst.store);
            let resp = ptr
                .checked_add(len)
                .and_then(|end| data.get(ptr..end))
                .ok_or_else(|| anyhow!("response buffer outside guest memory"))?;
            check_responses(resp, count)?;
            Ok((ptr, len))
        })();
        match result {
            Ok((ptr, len)) => {
                let inst = self.inst.as_ref().expect("live instance");
                Ok(&inst.memory.data(&inst.store)[ptr..ptr + len])
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

fn check_responses(resp: &[u8], count: u32) -> Result<()> {
    let recs = abi::responses(resp).ok_or_else(|| anyhow!("short response batch"))?;
    if abi::batch_count(resp) != count {
        bail!("{} responses for {count} requests", abi::batch_count(resp));
    }
    for r in recs {
        let r = r.ok_or_else(|| anyhow!("malformed response record"))?;
        if r.status().is_none() {
            bail!("unknown response status {}", r.status);
        }
    }
    Ok(())
}
