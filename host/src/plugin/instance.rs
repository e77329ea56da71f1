//! One plugin instance (`Live`): a `Store` + `Instance` with the sandbox
//! around it (the memory cap through a `ResourceLimiter`, the epoch deadline
//! set before every call), started with `wmc_init` from the shard's config,
//! and the bounds-checked copy of a request into the guest's input buffer.
//! A component of the WIT world gets the same store and sandbox, and its
//! own calls (`component::Guest`).

use super::component;
use super::engine::{Code, Plugin};
use super::imports::ShardCtx;
use crate::clock;
use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;
use wasmcached_abi::{self as abi, export, Init};
use wasmtime::{Instance, Memory, Store, StoreLimitsBuilder, TypedFunc};

/// Memory a shard may grow to beyond its item budget: the store's tables,
/// allocator slack and the I/O buffers of a batch.
pub fn memory_cap(budget: u64, item_size_max: usize) -> usize {
    let cap = budget + budget / 2 + 32 * 1024 * 1024 + 4 * item_size_max as u64;
    cap.min(4 << 30) as usize
}

/// `hints` with `hashpower` raised to the index that `items` need, for an
/// instance about to load them (memcached restores its saved hash power
/// the same way): loading then does not grow the plugin's index a dozen
/// times over.
pub fn sized_for_items(mut hints: abi::Hints, items: u64) -> abi::Hints {
    // Two buckets for three items: loading looks every key up first (a
    // dump may repeat one), and each item in a chain is a cache miss.
    let buckets = (items * 2 / 3).max(1);
    let power = 64 - (buckets - 1).leading_zeros();
    hints.hashpower = hints.hashpower.max(power.min(30));
    hints
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

/// A running instance: its store (the sandbox and what the host imports
/// keep) and how the host calls it.
pub(super) struct Live {
    /// The ABI version the instance's `wmc_abi_version` returned (a
    /// component: [`COMPONENT_ABI`]).
    pub(super) abi: u32,
    pub(super) store: Store<ShardCtx>,
    pub(super) guest: Guest,
}

/// The core-ABI version whose batches a component is served: the host
/// turns them into the world's records and back (`component`). Later
/// versions add held values, which the world does not have, and listings,
/// watch events and metrics, which it has as an export or import of its
/// own.
pub(super) const COMPONENT_ABI: u32 = 3;

/// How the host calls an instance.
// The core variant is not boxed: it is on every batch's path, and there is
// one `Live` per shard.
#[allow(clippy::large_enum_variant)]
pub(super) enum Guest {
    /// A core module: the byte ABI's exports.
    Core(Core),
    /// A component of the WIT world.
    Component(Box<component::Guest>),
}

impl Live {
    /// The core module's exports (`None` for a component).
    pub(super) fn core(&self) -> Option<&Core> {
        match &self.guest {
            Guest::Core(c) => Some(c),
            Guest::Component(_) => None,
        }
    }

    /// Whether the plugin lists its items (`wmc_iter`, or a component's
    /// `iter`).
    pub(super) fn lists(&self) -> bool {
        match &self.guest {
            Guest::Core(c) => c.iter.is_some(),
            Guest::Component(g) => g.lists(),
        }
    }

    /// Whether it reports `watch` events when a request asks (ABI v6
    /// `log_event`, or a component's `events` import).
    pub(super) fn reports_events(&self) -> bool {
        match &self.guest {
            Guest::Core(_) => self.abi >= abi::LOG_EVENT_VERSION,
            Guest::Component(g) => g.reports_events(),
        }
    }

    /// The bytes of the instance's memory (a component: those its memory
    /// limiter has granted, all its core instances together).
    pub(super) fn memory_bytes(&self) -> u64 {
        match &self.guest {
            Guest::Core(c) => c.memory.data_size(&self.store) as u64,
            Guest::Component(_) => self.store.data().limits_used(),
        }
    }
}

/// A core module's exports.
pub(super) struct Core {
    /// v3 `wmc_dump` / `wmc_load`, when exported (only looked up for v3).
    pub(super) dump: Option<TypedFunc<i32, i64>>,
    pub(super) load: Option<TypedFunc<i32, i32>>,
    pub(super) memory: Memory,
    pub(super) input: TypedFunc<i32, i32>,
    pub(super) batch: TypedFunc<i32, i64>,
    pub(super) tick: Option<TypedFunc<i32, ()>>,
    pub(super) timer: Option<TypedFunc<i64, ()>>,
    pub(super) stats: Option<TypedFunc<i32, i64>>,
    /// v5 `wmc_iter`, when exported (only looked up for v5).
    pub(super) iter: Option<TypedFunc<(i64, i32), i64>>,
    /// v8 `wmc_metrics`, when exported (only looked up for v8).
    pub(super) metrics: Option<TypedFunc<(), i64>>,
}

/// Instantiates `plugin` for a shard and runs `wmc_init` (a component: its
/// `init`).
pub(super) fn instantiate(plugin: &Plugin, c: &ShardConfig, deadline_ticks: u64) -> Result<Live> {
    let cap = memory_cap(c.memory_budget, c.item_size_max);
    // A component is several core instances (a Python runtime: a dozen),
    // each with its memory and tables; the memory cap is for all together
    // (`imports::Limits`).
    let (instances, memories, tables) = match plugin.code {
        Code::Module(_) => (1, 1, 4),
        Code::Component(_) => (64, 16, 64),
    };
    let limits = StoreLimitsBuilder::new()
        .memory_size(cap)
        .instances(instances)
        .memories(memories)
        .tables(tables)
        .build();
    let mut store = Store::new(
        &plugin.engine,
        ShardCtx::new(c.shard_id, plugin.log_name().into(), limits, cap as u64),
    );
    store.limiter(|ctx| &mut ctx.limits);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(deadline_ticks);
    let pre = match &plugin.code {
        Code::Module(pre) => pre,
        Code::Component(code) => {
            let init = component::InitConfig {
                shard_id: c.shard_id,
                shard_count: c.shard_count,
                memory_budget: c.memory_budget,
                max_item_size: c.item_size_max as u32,
                cas_enabled: c.use_cas,
                no_evict: !c.evict_to_free,
                now: clock::now(),
                config: &c.plugin_config,
            };
            store.data_mut().init_log = Some(String::new());
            let started = component::Guest::start(code, &mut store, &init);
            let logged = store.data_mut().init_log.take().unwrap_or_default();
            let guest = started.map_err(|e| match logged.is_empty() {
                true => e.context(format!("plugin {}", plugin.name)),
                false => e.context(format!("plugin {} (it logged: {logged})", plugin.name)),
            })?;
            return Ok(Live {
                abi: COMPONENT_ABI,
                store,
                guest: Guest::Component(Box::new(guest)),
            });
        }
    };
    let instance: Instance = pre.instantiate(&mut store)?;
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
    let core = Core {
        dump: optional_func(&instance, &mut store, export::DUMP, v3)?,
        load: optional_func(&instance, &mut store, export::LOAD, v3)?,
        iter: optional_func(
            &instance,
            &mut store,
            export::ITER,
            v as u32 >= abi::ITER_VERSION,
        )?,
        metrics: optional_func(
            &instance,
            &mut store,
            export::METRICS,
            v as u32 >= abi::METRICS_VERSION,
        )?,
        input: instance.get_typed_func(&mut store, export::INPUT)?,
        batch: instance.get_typed_func(&mut store, export::BATCH)?,
        tick: instance.get_typed_func(&mut store, export::TICK).ok(),
        timer: instance.get_typed_func(&mut store, export::TIMER).ok(),
        stats: instance.get_typed_func(&mut store, export::STATS).ok(),
        memory,
    };
    let mut inst = Live {
        abi: v as u32,
        store,
        guest: Guest::Core(core),
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
    if let Some(f) = inst.core().and_then(|c| c.iter.clone()) {
        inst.store.set_epoch_deadline(deadline_ticks);
        let probe = f.call(&mut inst.store, (0, 0)).map_err(|e| {
            anyhow!("wmc_iter(0, 0), asked whether the plugin can list its items: {e:#}")
        })?;
        if probe == abi::iter_status::UNSUPPORTED {
            if let Guest::Core(c) = &mut inst.guest {
                c.iter = None;
            }
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

/// The guest had no memory for a batch's input: the batch fails with an
/// out-of-memory error, but the instance and its items are fine.
#[derive(Debug)]
pub(super) struct NoInputBuffer;

impl std::fmt::Display for NoInputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("out of memory")
    }
}

impl std::error::Error for NoInputBuffer {}

/// Copies `bytes` into the guest's input buffer (`wmc_input`), bounds-checked.
pub(super) fn write_input(inst: &mut Live, bytes: &[u8], ticks: u64) -> Result<()> {
    let Guest::Core(core) = &inst.guest else {
        bail!("a component has no input buffer");
    };
    inst.store.set_epoch_deadline(ticks);
    let ptr = core.input.call(&mut inst.store, bytes.len() as i32)? as u32 as usize;
    if ptr == 0 && !bytes.is_empty() {
        return Err(NoInputBuffer.into());
    }
    // The guest may have grown its memory: look the data up afresh.
    let data = core.memory.data_mut(&mut inst.store);
    let dst = ptr
        .checked_add(bytes.len())
        .and_then(|end| data.get_mut(ptr..end))
        .ok_or_else(|| anyhow!("input buffer outside guest memory"))?;
    dst.copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::test_support::*;
    use crate::plugin::Shard;
    use std::sync::Arc;

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
}
