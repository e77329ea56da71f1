//! The one wasmtime engine of the process and a plugin compiled for it
//! (`Plugin`): the engine's configuration, the compiled module (from the
//! code cache when it has it), the exports every plugin must have, and the
//! instance template that every shard instantiates.

use super::code_cache::{code_cache, hash128};
use super::compile::compile;
use super::component;
use super::image_check::memory_image_safe;
use super::imports::{self, ShardCtx};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use wasmcached_abi::export;
use wasmtime::{Config, Engine, InstancePre, Module};

/// The default store, built from plugins/default-store by host/build.rs.
pub static DEFAULT_PLUGIN: &[u8] = include_bytes!(env!("WASMCACHED_DEFAULT_PLUGIN"));

/// How often the engine's epoch advances; call deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(50);

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
            config.wasm_component_model(true);
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

/// What a plugin was compiled into: a core module speaking the byte ABI
/// (docs/plugin-abi.md), or a component of the WIT world (wit/store.wit).
pub(super) enum Code {
    Module(InstancePre<ShardCtx>),
    Component(component::Code),
}

/// A compiled plugin, shared by all workers.
pub struct Plugin {
    pub(super) engine: Engine,
    pub(super) code: Code,
    pub name: String,
    /// A hash of the plugin's bytes (hex): which build it is, for the warm
    /// restart's memory file.
    pub digest: String,
    /// Whether a memory image of an instance is the whole instance, and if
    /// not, why (host/src/plugin/image.rs).
    pub image_safe: Result<(), String>,
}

impl Plugin {
    /// Compiles `bytes` (a .wasm, or .wat text) and checks its exports.
    pub fn new(bytes: &[u8], name: &str) -> Result<Plugin> {
        let engine = engine()?;
        let digest = hash128(&[bytes])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if component::is_component(bytes) {
            let compiled = match code_cache() {
                Some(cache) => cache.compiled(&engine, bytes, name)?,
                None => wasmtime::component::Component::new(&engine, bytes)
                    .map_err(|e| anyhow!("{name}: not a valid component: {e}"))?,
            };
            return Ok(Plugin {
                code: Code::Component(component::Code::new(&engine, &compiled, name)?),
                engine,
                name: name.to_string(),
                digest,
                image_safe: Err("a component's state is not one linear memory".into()),
            });
        }
        let module = match code_cache() {
            Some(cache) => cache.compiled(&engine, bytes, name)?,
            None => compile(&engine, bytes, name)?,
        };
        check_exports(&module).with_context(|| format!("{name}: not a wasmcached plugin"))?;

        let linker = imports::linker(&engine)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| anyhow!("{name}: {e}"))?;
        Ok(Plugin {
            engine,
            code: Code::Module(pre),
            name: name.to_string(),
            digest,
            image_safe: memory_image_safe(bytes),
        })
    }

    /// Whether the plugin is a component of the WIT world.
    pub fn is_component(&self) -> bool {
        matches!(self.code, Code::Component(_))
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

    /// The plugin as its log lines name it: the file name without its
    /// directory and extension (`c_quota` for `target/examples/c_quota.wasm`),
    /// `default-store` for the embedded store.
    pub fn log_name(&self) -> &str {
        Path::new(&self.name)
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.name)
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
