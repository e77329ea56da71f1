//! The WIT world (`wit/store.wit`, `wasmcached:store`): a storage plugin as
//! a WebAssembly component, for the languages that reach Wasm through the
//! Component Model (Python with componentize-py, JavaScript with
//! componentize-js, Rust with wit-bindgen, …).
//!
//! A component serves the same batches as a core-ABI plugin. The shard
//! still builds each batch in the core ABI's bytes and reads the answers in
//! them, so everything above the shard (the protocols, `watch`, faults,
//! reloads) is the same for both: this file turns a request batch into the
//! world's `list<request>`, calls `handle`, and writes the `list<response>`
//! back as an ABI response batch, checked like a core plugin's. The sandbox
//! is the core plugin's: the store's memory limiter, the epoch deadline on
//! every call, a trap or a malformed answer restarts the shard empty.
//!
//! A componentized Python or JavaScript runtime imports WASI 0.2 (files,
//! sockets, environment, clocks, random, stdio). They are served by
//! wasmtime-wasi with nothing behind them: no preopened directory, no
//! network, no environment or arguments, stdin empty, stdout and stderr
//! into the plugin's log.

use super::imports::{ShardCtx, WasiState};
use anyhow::{anyhow, bail, Result};
use wasmcached_abi::{self as abi, Request, Response};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/store.wit",
        world: "store",
    });
}

use bindings::wasmcached::store::{host, types};

/// The world version this host serves (`wit-version`).
pub const WIT_VERSION: u32 = 1;

impl types::Host for ShardCtx {}

impl host::Host for ShardCtx {
    fn now(&mut self) -> u32 {
        crate::clock::now()
    }

    fn log(&mut self, level: u32, message: String) {
        self.guest_log(level.min(i32::MAX as u32) as i32, message);
    }

    fn timer_set(&mut self, token: u64, delay_ms: u32) {
        self.set_timer(token, delay_ms.min(i32::MAX as u32));
    }
}

/// Whether `bytes` is a component rather than a core module: the binary
/// format's layer field (docs: the component binary's preamble is
/// `\0asm` followed by version 0x0d and layer 1).
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

/// A compiled component and the template its shards instantiate.
pub struct Code {
    pre: bindings::StorePre<ShardCtx>,
}

impl Code {
    pub fn new(engine: &Engine, component: &Component, name: &str) -> Result<Code> {
        let mut linker: Linker<ShardCtx> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("{name}: linking WASI: {e}"))?;
        bindings::Store::add_to_linker::<ShardCtx, HasSelf<ShardCtx>>(&mut linker, |c| c)?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| anyhow!("{name}: not a wasmcached:store component: {e}"))?;
        let pre = bindings::StorePre::new(pre)
            .map_err(|e| anyhow!("{name}: not a wasmcached:store component: {e}"))?;
        Ok(Code { pre })
    }
}

/// The settings an instance is started with.
pub struct InitConfig<'a> {
    pub shard_id: u32,
    pub shard_count: u32,
    pub memory_budget: u64,
    pub max_item_size: u32,
    pub cas_enabled: bool,
    pub no_evict: bool,
    pub now: u32,
    pub config: &'a str,
}

/// One running component instance of a shard.
pub struct Guest {
    bindings: bindings::Store,
    /// The last batch's answers, in the core ABI's bytes.
    out: Vec<u8>,
}

impl Guest {
    /// Gives `store` its WASI state, instantiates the component in it and
    /// runs its `init`.
    pub fn start(code: &Code, store: &mut Store<ShardCtx>, c: &InitConfig<'_>) -> Result<Guest> {
        store.data_mut().wasi = Some(Box::new(WasiState::new()));
        let bindings = code.pre.instantiate(&mut *store)?;
        let version = bindings.call_wit_version(&mut *store)?;
        if version != WIT_VERSION {
            bail!("it was written for version {version} of the wasmcached:store world, this server serves version {WIT_VERSION}");
        }
        let config = types::Config {
            shard_id: c.shard_id,
            shard_count: c.shard_count,
            memory_budget: c.memory_budget,
            max_item_size: c.max_item_size,
            cas_enabled: c.cas_enabled,
            no_evict: c.no_evict,
            now: c.now,
            config: c.config.to_string(),
        };
        let answer = bindings.call_init(&mut *store, &config);
        flush_stdio(store);
        if let Err(why) = answer? {
            bail!("it refused to initialise shard {}: {why}", c.shard_id);
        }
        Ok(Guest {
            bindings,
            out: Vec::new(),
        })
    }

    /// Runs an ABI request batch of `count` records; the answers, checked
    /// to be `count` well-formed records, are then in [`Guest::answers`].
    pub fn batch(&mut self, store: &mut Store<ShardCtx>, batch: &[u8], count: u32) -> Result<()> {
        let requests: Vec<types::Request> = abi::requests(batch)
            .ok_or_else(|| anyhow!("a malformed request batch"))?
            .map(|r| r.map(to_wit).ok_or_else(|| anyhow!("a malformed request")))
            .collect::<Result<_>>()?;
        let answered = self.bindings.call_handle(&mut *store, &requests);
        flush_stdio(store);
        let responses = answered?;
        if responses.len() != requests.len() {
            bail!(
                "handle answered {} responses to {} requests",
                responses.len(),
                requests.len()
            );
        }
        self.out.clear();
        abi::begin_batch(&mut self.out);
        for (req, r) in requests.iter().zip(&responses) {
            from_wit(r, &req.key).encode(&mut self.out);
        }
        abi::set_batch_count(&mut self.out, responses.len() as u32);
        abi::check_responses(&self.out, None, count).map_err(|e| anyhow!(e))?;
        Ok(())
    }

    /// The last batch's answers, as an ABI response batch.
    pub fn answers(&self) -> &[u8] {
        &self.out
    }

    pub fn tick(&mut self, store: &mut Store<ShardCtx>, now: u32) -> Result<()> {
        let r = self.bindings.call_tick(&mut *store, now);
        flush_stdio(store);
        Ok(r?)
    }

    pub fn timer(&mut self, store: &mut Store<ShardCtx>, token: u64) -> Result<()> {
        let r = self.bindings.call_timer(&mut *store, token);
        flush_stdio(store);
        Ok(r?)
    }

    /// The `stats` lines of `group`, as `wmc_stats` returns them:
    /// `name value\n`. Names and values are cut at the first white space or
    /// line break, so a guest cannot forge lines.
    pub fn stats(&mut self, store: &mut Store<ShardCtx>, group: i32) -> Result<Vec<u8>> {
        let pairs = self.bindings.call_stats(&mut *store, group);
        flush_stdio(store);
        let mut out = Vec::new();
        for (name, value) in pairs? {
            let word = |s: &str| s.split_whitespace().next().unwrap_or("").to_string();
            let (name, value) = (word(&name), word(&value));
            if !name.is_empty() && !value.is_empty() {
                out.extend_from_slice(format!("{name} {value}\n").as_bytes());
            }
        }
        Ok(out)
    }
}

/// Passes what the guest printed to stdout (info) and stderr (error) on to
/// its log, a line at a time (a Python traceback arrives this way).
fn flush_stdio(store: &mut Store<ShardCtx>) {
    let ctx = store.data_mut();
    let (out, err) = ctx.take_stdio();
    for (level, text) in [(abi::log_level::INFO, out), (abi::log_level::ERROR, err)] {
        for line in String::from_utf8_lossy(&text).lines() {
            if !line.trim().is_empty() {
                ctx.guest_log(level, line.to_string());
            }
        }
    }
}

fn to_wit(r: Request<'_>) -> types::Request {
    types::Request {
        op: r.op,
        key: r.key.to_vec(),
        value: r.value.to_vec(),
        client_flags: r.client_flags,
        exptime: r.exptime,
        cas: r.cas,
        delta: r.delta,
        mflags: r.mflags,
        aux: r.aux,
    }
}

/// The ABI answer for `r`; the key is the request's (a component answers
/// only the value).
fn from_wit<'a>(r: &'a types::Response, key: &'a [u8]) -> Response<'a> {
    Response {
        status: r.status,
        iflags: r.iflags,
        key,
        value: &r.value,
        client_flags: r.client_flags,
        exptime: r.exptime,
        cas: r.cas,
        last_access: r.last_access,
        prev_exptime: r.prev_exptime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_is_told_from_a_core_module_by_its_preamble() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"), "a core module");
        assert!(!is_component(b"\0asm\x0d\0"), "too short");
        assert!(!is_component(b"(component)"), "text is compiled as WAT");
    }

    #[test]
    fn requests_and_answers_keep_every_field() {
        let req = Request {
            op: 7,
            key: b"k",
            value: b"v",
            client_flags: 1,
            exptime: 2,
            cas: 3,
            delta: 4,
            mflags: 5,
            aux: 6,
        };
        let w = to_wit(req.clone());
        assert_eq!(
            (w.op, &w.key[..], &w.value[..], w.client_flags, w.exptime),
            (7, &b"k"[..], &b"v"[..], 1, 2)
        );
        assert_eq!((w.cas, w.delta, w.mflags, w.aux), (3, 4, 5, 6));
        let r = types::Response {
            status: 6,
            iflags: 1,
            value: b"val".to_vec(),
            client_flags: 9,
            exptime: 10,
            cas: 11,
            last_access: 12,
            prev_exptime: 13,
        };
        let a = from_wit(&r, b"k");
        assert_eq!(
            (a.status, a.iflags, a.key, a.value, a.client_flags),
            (6, 1, &b"k"[..], &b"val"[..], 9)
        );
        assert_eq!(
            (a.exptime, a.cas, a.last_access, a.prev_exptime),
            (10, 11, 12, 13)
        );
    }
}
