//! The WIT world (`wit/store.wit`, `wasmcached:store`): a storage plugin as
//! a WebAssembly component, for the languages that reach Wasm through the
//! Component Model (Python with componentize-py, JavaScript with
//! componentize-js, Rust with wit-bindgen, …).
//!
//! A component serves the same batches as a core-ABI plugin. The shard
//! still builds each batch in the core ABI's bytes and reads the answers as
//! the ABI's responses, so everything above the shard (the protocols,
//! `watch`, faults, reloads) is the same for both: this file hands `handle`
//! the request batch's bytes as they are, as the world's `data`, with a
//! `list<request>` whose key and value spans point at the keys and values in
//! it (the ABI headers between them are bytes no span covers). It checks
//! the `answers` as a core plugin's are checked (a value span outside
//! `answers.data` is a malformed answer) and hands them on as ABI responses
//! ([`Answered`]), each with its request's key and the value its span
//! points at. A batch thus crosses the boundary as two lists each way
//! whatever its size: a list costs a call into the guest's allocator. The
//! lists of records go as their canonical ABI bytes (`RawRequest`,
//! `RawResponse`), one copy a list, because wasmtime's generated types are
//! stored and loaded a field at a time.
//!
//! The sandbox is the core plugin's: the store's memory limiter, the epoch
//! deadline on every call, a trap or a malformed answer restarts the shard
//! empty.
//!
//! A componentized Python or JavaScript runtime imports WASI 0.2 (files,
//! sockets, environment, clocks, random, stdio). They are served by
//! wasmtime-wasi with nothing behind them: no preopened directory, no
//! network, no environment or arguments, stdin empty, stdout and stderr
//! into the plugin's log.

use super::imports::{ShardCtx, WasiState};
use anyhow::{anyhow, bail, Result};
use std::mem::MaybeUninit;
use wasmcached_abi::{self as abi, Request, Response};
use wasmtime::component::__internal::{InstanceType, InterfaceType, LiftContext, LowerContext};
use wasmtime::component::{
    Component, ComponentNamedList, ComponentType, Func, HasSelf, Instance, Lift, Linker, Lower,
    TypedFunc,
};
use wasmtime::{Engine, Store};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/store.wit",
        // `store` and the `events` import: the linker must offer it, and
        // the exports are `store`'s.
        world: "store-with-events",
    });
}

use bindings::wasmcached::store::{events, host, types};

mod items;
mod listing;
pub(super) mod metrics;

/// The world version this host serves (`wit-version`).
pub const WIT_VERSION: u32 = 2;

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

impl events::Host for ShardCtx {
    fn log_event(&mut self, e: events::Event) {
        self.keep_event(&abi::Event {
            kind: e.kind,
            flags: e.bits,
            key: &e.key,
            request: e.request,
            value_len: e.value_len,
            client_flags: e.client_flags,
            exptime: e.exptime,
            last_access: e.last_access,
        });
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
    pre: bindings::StoreWithEventsPre<ShardCtx>,
    /// It imports `events`: it reports its own `watch` events.
    events: bool,
}

impl Code {
    pub fn new(engine: &Engine, component: &Component, name: &str) -> Result<Code> {
        let mut linker: Linker<ShardCtx> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("{name}: linking WASI: {e}"))?;
        bindings::StoreWithEvents::add_to_linker::<ShardCtx, HasSelf<ShardCtx>>(
            &mut linker,
            |c| c,
        )?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| anyhow!("{name}: not a wasmcached:store component: {e}"))?;
        let pre = bindings::StoreWithEventsPre::new(pre)
            .map_err(|e| anyhow!("{name}: not a wasmcached:store component: {e}"))?;
        // Whichever version of the package: the linker took it above.
        let events = component
            .component_type()
            .imports(engine)
            .any(|(import, _)| import.starts_with("wasmcached:store/events@"));
        Ok(Code { pre, events })
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

/// `handle` with the host's raw record types (below).
type Handle<'a> = TypedFunc<(&'a [u8], &'a [RawRequest]), (RawAnswers,)>;

/// Where the running dump is. The world's `dump` takes its cursor as an
/// argument, so the host keeps it (a core plugin keeps its own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DumpPos {
    /// No dump running: the next `dump` call starts at cursor 0.
    #[default]
    Start,
    /// The cursor the plugin answered last.
    At(u64),
    /// The plugin answered cursor 0: its items are all out.
    Done,
}

/// One running component instance of a shard.
pub struct Guest {
    bindings: bindings::StoreWithEvents,
    /// `handle`, type-checked as a [`Handle`] at start.
    handle: Func,
    /// The last batch's requests (kept for their allocation too).
    requests: Vec<RawRequest>,
    /// Their keys, one after the other: every answer carries its
    /// request's key, and the request batch is the caller's.
    keys: Vec<u8>,
    /// The last batch's answers, checked, as the component returned them.
    answered: RawAnswers,
    /// Where a running item dump is; any other call starts it over.
    dump: DumpPos,
    /// The optional `metrics` export (world `store-with-metrics`), its
    /// type checked at start (component/metrics.rs).
    metrics: Option<Func>,
    /// The optional `iter` export (world `store-with-listing`), when it
    /// lists (component/listing.rs).
    iter: Option<Func>,
    /// The last listing step's records, as a `wmc_iter` chunk.
    chunk: Vec<u8>,
    /// It imports `events` (world `store-with-events`).
    events: bool,
    /// The server time of its last `tick` (at first, init's `now`).
    ticked: u32,
}

impl Guest {
    /// Gives `store` its WASI state, instantiates the component in it and
    /// runs its `init`.
    pub fn start(code: &Code, store: &mut Store<ShardCtx>, c: &InitConfig<'_>) -> Result<Guest> {
        store.data_mut().wasi = Some(Box::new(WasiState::new()));
        let instance = code.pre.instance_pre().instantiate(&mut *store)?;
        let bindings = bindings::StoreWithEvents::new(&mut *store, &instance)?;
        let handle = instance
            .get_func(&mut *store, "handle")
            .ok_or_else(|| anyhow!("it has no handle export"))?;
        handle.typed::<(&[u8], &[RawRequest]), (RawAnswers,)>(&*store)?;
        let metrics = Self::find_metrics(&instance, store)?;
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
        let iter = Self::find_iter(&instance, store)?;
        Ok(Guest {
            bindings,
            handle,
            requests: Vec::new(),
            keys: Vec::new(),
            answered: RawAnswers::default(),
            dump: DumpPos::Start,
            metrics,
            iter,
            chunk: Vec::new(),
            events: code.events,
            ticked: c.now,
        })
    }

    /// Ticks the plugin first when the server clock has moved since its
    /// last tick: the world promises every call the current clock in the
    /// last `tick` (or `init`) before it, so that a plugin keeps that
    /// instead of asking `host.now`. A component's host call costs more
    /// than a core module's (wasmtime's scope checks on the way in and
    /// out): asked once a batch, it was a tenth of a one-get batch's time.
    fn tick_if_moved(&mut self, store: &mut Store<ShardCtx>) -> Result<()> {
        self.tick_at(store, crate::clock::now())
    }

    /// Calls `tick(now)` unless the plugin was ticked at `now` already.
    fn tick_at(&mut self, store: &mut Store<ShardCtx>, now: u32) -> Result<()> {
        if now == self.ticked {
            return Ok(());
        }
        self.ticked = now;
        let r = self.bindings.call_tick(&mut *store, now);
        flush_stdio(store);
        Ok(r?)
    }

    /// Whether it reports its own `watch` events (it imports `events`).
    pub(in crate::plugin) fn reports_events(&self) -> bool {
        self.events
    }

    /// Runs an ABI request batch of `count` records; the answers, checked
    /// to be `count` well-formed records, are then in [`Guest::answers`].
    pub fn batch(&mut self, store: &mut Store<ShardCtx>, batch: &[u8], count: u32) -> Result<()> {
        if u32::try_from(batch.len()).is_err() {
            bail!("a request batch over 4 GiB");
        }
        self.dump = DumpPos::Start;
        self.tick_if_moved(store)?;
        self.requests.clear();
        self.keys.clear();
        for r in abi::requests(batch).ok_or_else(|| anyhow!("a malformed request batch"))? {
            let r = r.ok_or_else(|| anyhow!("a malformed request"))?;
            self.requests.push(RawRequest::new(&r, batch));
            self.keys.extend_from_slice(r.key);
        }
        if self.requests.len() != count as usize {
            bail!(
                "a batch of {} requests announced as {count}",
                self.requests.len()
            );
        }
        // SAFETY: `start` checked `handle`'s type against `Handle`'s.
        let handle: Handle<'_> = unsafe { TypedFunc::new_unchecked(self.handle) };
        let answered = handle
            .call(&mut *store, (batch, &self.requests))
            .map(|(a,)| a);
        flush_stdio(store);
        let spare = std::mem::replace(&mut self.answered, answered?);
        if spare.data.capacity() <= SPARE_MAX {
            SPARE_ANSWERS.set(spare);
        }
        check_answers(&self.requests, &self.answered)
    }

    /// The last batch's answers.
    pub fn answers(&self) -> Answered<'_> {
        Answered {
            keys: &self.keys,
            requests: &self.requests,
            answers: &self.answered,
        }
    }

    /// Once each time the server clock moves: the worker's once-a-second
    /// tick finds the plugin ticked already when a call caught it up.
    pub fn tick(&mut self, store: &mut Store<ShardCtx>, now: u32) -> Result<()> {
        self.dump = DumpPos::Start;
        self.tick_at(store, now)
    }

    pub fn timer(&mut self, store: &mut Store<ShardCtx>, token: u64) -> Result<()> {
        self.dump = DumpPos::Start;
        self.tick_if_moved(store)?;
        let r = self.bindings.call_timer(&mut *store, token);
        flush_stdio(store);
        Ok(r?)
    }

    /// The `stats` lines of `group`, as `wmc_stats` returns them:
    /// `name value\n`. Names and values are cut at the first white space or
    /// line break, so a guest cannot forge lines.
    pub fn stats(&mut self, store: &mut Store<ShardCtx>, group: i32) -> Result<Vec<u8>> {
        self.dump = DumpPos::Start;
        self.tick_if_moved(store)?;
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

/// An optional export of the world (`metrics`, `iter`), looked up by name
/// and type-checked once: `None` when the component has none, an error
/// when it has one of another type (as a core module's export of the wrong
/// signature is refused).
fn optional_export<P, R>(
    instance: &Instance,
    store: &mut Store<ShardCtx>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    let Some(index) = instance.get_export_index(&mut *store, None, name) else {
        return Ok(None);
    };
    let Some(func) = instance.get_func(&mut *store, index) else {
        bail!("its export `{name}` is not a function");
    };
    match func.typed::<P, R>(&*store) {
        Ok(f) => Ok(Some(f)),
        Err(e) => bail!("its export `{name}` is not the world's: {e}"),
    }
}

/// Passes what the guest printed to stdout (info) and stderr (error) on to
/// its log, a line at a time (a Python traceback arrives this way).
fn flush_stdio(store: &mut Store<ShardCtx>) {
    let ctx = store.data_mut();
    let (out, err) = ctx.take_stdio();
    if out.is_empty() && err.is_empty() {
        return;
    }
    for (level, text) in [(abi::log_level::INFO, out), (abi::log_level::ERROR, err)] {
        for line in String::from_utf8_lossy(&text).lines() {
            if !line.trim().is_empty() {
                ctx.guest_log(level, line.to_string());
            }
        }
    }
}

/// The span of `part`, a slice of `batch`, in `batch`. The caller has
/// checked that `batch` is shorter than 4 GiB.
fn span_in(batch: &[u8], part: &[u8]) -> types::Span {
    let offset = part.as_ptr() as usize - batch.as_ptr() as usize;
    debug_assert!(offset + part.len() <= batch.len());
    types::Span {
        offset: offset as u32,
        len: part.len() as u32,
    }
}

/// The bytes `span` points at in `data`, if it lies inside it.
fn at(data: &[u8], span: types::Span) -> Option<&[u8]> {
    let start = span.offset as usize;
    data.get(start..start.checked_add(span.len as usize)?)
}

// Where the fields of `request` and `response` lie in the canonical ABI
// (each aligned to its size, in the order of wit/store.wit; the test
// `the_raw_layouts_are_the_canonical_abis` checks them against wasmtime's).
const REQUEST_SIZE: usize = 56;
const REQ_KEY: usize = 4;
const REQ_VALUE: usize = 12;
const REQ_CLIENT_FLAGS: usize = 20;
const REQ_EXPTIME: usize = 24;
const REQ_CAS: usize = 32;
const REQ_DELTA: usize = 40;
const REQ_MFLAGS: usize = 48;
const REQ_AUX: usize = 52;
const RESPONSE_SIZE: usize = 40;
const RESP_VALUE: usize = 4;
const RESP_CLIENT_FLAGS: usize = 12;
const RESP_EXPTIME: usize = 16;
const RESP_CAS: usize = 24;
const RESP_LAST_ACCESS: usize = 32;
const RESP_PREV_EXPTIME: usize = 36;

const _: () = assert!(<types::Request as ComponentType>::SIZE32 == REQUEST_SIZE);
const _: () = assert!(<types::Response as ComponentType>::SIZE32 == RESPONSE_SIZE);

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn span_at(b: &[u8], at: usize) -> types::Span {
    types::Span {
        offset: u32_at(b, at),
        len: u32_at(b, at + 4),
    }
}

fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

fn put_span(b: &mut [u8], at: usize, s: types::Span) {
    put(b, at, &s.offset.to_le_bytes());
    put(b, at + 4, &s.len.to_le_bytes());
}

/// A `request` record as its canonical ABI bytes. wasmtime lowers a list
/// of the generated `types::Request` a field at a time (a bounds-checked
/// store and an offset computation each, 13 a request: a third of a 16-get
/// batch's time); a list of these is one copy.
#[derive(Clone, Copy)]
struct RawRequest([u8; REQUEST_SIZE]);

impl RawRequest {
    /// `r`, a request of `batch`, with its key and value as spans in it.
    fn new(r: &Request<'_>, batch: &[u8]) -> RawRequest {
        let mut b = [0u8; REQUEST_SIZE];
        b[0] = r.op;
        put_span(&mut b, REQ_KEY, span_in(batch, r.key));
        put_span(&mut b, REQ_VALUE, span_in(batch, r.value));
        put(&mut b, REQ_CLIENT_FLAGS, &r.client_flags.to_le_bytes());
        put(&mut b, REQ_EXPTIME, &r.exptime.to_le_bytes());
        put(&mut b, REQ_CAS, &r.cas.to_le_bytes());
        put(&mut b, REQ_DELTA, &r.delta.to_le_bytes());
        put(&mut b, REQ_MFLAGS, &r.mflags.to_le_bytes());
        put(&mut b, REQ_AUX, &r.aux.to_le_bytes());
        RawRequest(b)
    }

    fn key(&self) -> types::Span {
        span_at(&self.0, REQ_KEY)
    }

    fn to_wit(self) -> types::Request {
        let b = &self.0;
        types::Request {
            op: b[0],
            key: span_at(b, REQ_KEY),
            value: span_at(b, REQ_VALUE),
            client_flags: u32_at(b, REQ_CLIENT_FLAGS),
            exptime: u32_at(b, REQ_EXPTIME),
            cas: u64_at(b, REQ_CAS),
            delta: u64_at(b, REQ_DELTA),
            mflags: u32_at(b, REQ_MFLAGS),
            aux: u32_at(b, REQ_AUX),
        }
    }
}

// SAFETY: the type, its size and alignment are `types::Request`'s, whose
// canonical layout the bytes are.
unsafe impl ComponentType for RawRequest {
    type Lower = <types::Request as ComponentType>::Lower;
    const ABI: wasmtime::component::__internal::CanonicalAbiInfo =
        <types::Request as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        types::Request::typecheck(ty, types)
    }
}

// SAFETY: writes only the record's own `REQUEST_SIZE` bytes at `offset`,
// which wasmtime allocated and checked for it.
unsafe impl Lower for RawRequest {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        self.to_wit().linear_lower_to_flat(cx, ty, dst)
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        *cx.get::<REQUEST_SIZE>(offset) = self.0;
        Ok(())
    }

    fn linear_store_list_to_memory<T>(
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
        items: &[Self],
    ) -> wasmtime::Result<()> {
        let dst = &mut cx.as_slice_mut()[offset..][..items.len() * REQUEST_SIZE];
        for (d, r) in dst.chunks_exact_mut(REQUEST_SIZE).zip(items) {
            d.copy_from_slice(&r.0);
        }
        Ok(())
    }
}

/// A `response` record as its canonical ABI bytes, lifted in one copy of
/// the whole list with the rest of [`RawAnswers`].
#[derive(Clone, Copy)]
struct RawResponse([u8; RESPONSE_SIZE]);

impl RawResponse {
    fn from_wit(r: &types::Response) -> RawResponse {
        let mut b = [0u8; RESPONSE_SIZE];
        b[0] = r.status;
        b[1] = r.iflags;
        put_span(&mut b, RESP_VALUE, r.value);
        put(&mut b, RESP_CLIENT_FLAGS, &r.client_flags.to_le_bytes());
        put(&mut b, RESP_EXPTIME, &r.exptime.to_le_bytes());
        put(&mut b, RESP_CAS, &r.cas.to_le_bytes());
        put(&mut b, RESP_LAST_ACCESS, &r.last_access.to_le_bytes());
        put(&mut b, RESP_PREV_EXPTIME, &r.prev_exptime.to_le_bytes());
        RawResponse(b)
    }

    fn to_wit(self) -> types::Response {
        let b = &self.0;
        types::Response {
            status: b[0],
            iflags: b[1],
            value: span_at(b, RESP_VALUE),
            client_flags: u32_at(b, RESP_CLIENT_FLAGS),
            exptime: u32_at(b, RESP_EXPTIME),
            cas: u64_at(b, RESP_CAS),
            last_access: u32_at(b, RESP_LAST_ACCESS),
            prev_exptime: u32_at(b, RESP_PREV_EXPTIME),
        }
    }
}

/// The world's `answers` with raw responses. Lifted by hand: wasmtime
/// lifts a list of records an element at a time (a bounds check, a slice
/// and a call each); here each of the two lists is one bounds check and
/// one copy.
#[derive(Default)]
struct RawAnswers {
    data: Vec<u8>,
    responses: Vec<RawResponse>,
}

// Where `answers`' two lists (each a pointer and a length) lie in the
// record; `the_raw_layouts_are_the_canonical_abis` checks them.
const ANSWERS_DATA: usize = 0;
const ANSWERS_RESPONSES: usize = 8;

// SAFETY: the type, size and alignment are `types::Answers`', which the
// lift below reads.
unsafe impl ComponentType for RawAnswers {
    type Lower = <types::Answers as ComponentType>::Lower;
    const ABI: wasmtime::component::__internal::CanonicalAbiInfo =
        <types::Answers as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        types::Answers::typecheck(ty, types)
    }
}

// SAFETY: reads guest memory only inside the bounds checked here; every
// bit pattern of a response is a valid record (an unknown status is
// refused by `encode_answers`).
unsafe impl Lift for RawAnswers {
    /// Not taken by `handle` (two lists flatten to more than one result,
    /// so the answers come back in memory); there for completeness.
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let a = types::Answers::linear_lift_from_flat(cx, ty, src)?;
        Ok(RawAnswers {
            data: a.data,
            responses: a.responses.iter().map(RawResponse::from_wit).collect(),
        })
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let memory = cx.memory();
        // The canonical ABI's rules for a list: aligned to its element, and
        // inside the guest's memory.
        let list = |at: usize, size: usize, align: usize| -> wasmtime::Result<&[u8]> {
            let (ptr, len) = (u32_at(bytes, at) as usize, u32_at(bytes, at + 4) as usize);
            if ptr % align != 0 {
                return Err(wasmtime::format_err!("list pointer is not aligned"));
            }
            len.checked_mul(size)
                .and_then(|n| memory.get(ptr..ptr.checked_add(n)?))
                .ok_or_else(|| wasmtime::format_err!("list pointer/length out of bounds of memory"))
        };
        let data = list(ANSWERS_DATA, 1, 1)?;
        let align = <types::Response as ComponentType>::ALIGN32 as usize;
        let responses = list(ANSWERS_RESPONSES, RESPONSE_SIZE, align)?;
        let mut a = SPARE_ANSWERS.take();
        a.data.clear();
        a.data.extend_from_slice(data);
        a.responses.clear();
        a.responses.extend(
            responses
                .chunks_exact(RESPONSE_SIZE)
                .map(|r| RawResponse(r.try_into().expect("RESPONSE_SIZE bytes"))),
        );
        Ok(a)
    }
}

/// The largest value bytes kept for [`SPARE_ANSWERS`]: a batch of large
/// values allocates its own.
const SPARE_MAX: usize = 64 * 1024;

thread_local! {
    /// The buffers of the answers before the last, lifted into again: a
    /// one-get batch spent a tenth of its host time allocating and freeing
    /// them. A shard lives on one worker thread, so each worker has one.
    static SPARE_ANSWERS: std::cell::Cell<RawAnswers> = std::cell::Cell::default();
}

/// Checks `answers` to `requests`: one response each, every status one
/// the ABI defines, every value span inside `answers.data`.
fn check_answers(requests: &[RawRequest], answers: &RawAnswers) -> Result<()> {
    if answers.responses.len() != requests.len() {
        bail!(
            "handle answered {} responses to {} requests",
            answers.responses.len(),
            requests.len()
        );
    }
    for (i, r) in answers.responses.iter().enumerate() {
        let r = r.to_wit();
        if abi::Status::from_u8(r.status).is_none() {
            bail!("response {i}: unknown response status {}", r.status);
        }
        if at(&answers.data, r.value).is_none() {
            bail!(
                "response {i}: its value span ({} bytes at {}) is outside the answers' {} bytes",
                r.value.len,
                r.value.offset,
                answers.data.len()
            );
        }
    }
    Ok(())
}

/// A batch's answers as the component returned them, read as the core
/// ABI's responses, each with its request's key. They are not written out
/// in the ABI's bytes first: that copy of every key and value, and the
/// reading of it again, was a tenth of a 16-get batch's host time.
#[derive(Clone, Copy)]
pub struct Answered<'a> {
    keys: &'a [u8],
    requests: &'a [RawRequest],
    answers: &'a RawAnswers,
}

impl<'a> Answered<'a> {
    /// The number of answers (one a request).
    pub fn count(&self) -> u32 {
        self.requests.len() as u32
    }

    /// The answers in request order (checked by [`Guest::batch`]).
    pub fn records(&self) -> impl Iterator<Item = Response<'a>> {
        let (keys, data) = (self.keys, &self.answers.data[..]);
        let mut key_at = 0;
        let requests = self.requests.iter();
        requests.zip(&self.answers.responses).map(move |(req, r)| {
            let key = &keys[key_at..][..req.key().len as usize];
            key_at += key.len();
            let r = r.to_wit();
            Response {
                status: r.status,
                iflags: r.iflags,
                key,
                value: at(data, r.value).expect("checked by Guest::batch"),
                client_flags: r.client_flags,
                exptime: r.exptime,
                cas: r.cas,
                last_access: r.last_access,
                prev_exptime: r.prev_exptime,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::__internal::CanonicalAbiInfo;

    #[test]
    fn a_component_is_told_from_a_core_module_by_its_preamble() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"), "a core module");
        assert!(!is_component(b"\0asm\x0d\0"), "too short");
        assert!(!is_component(b"(component)"), "text is compiled as WAT");
    }

    #[test]
    fn a_components_events_are_kept_as_the_core_abis_records() {
        let mut ctx = ShardCtx::new(0, "t".into(), Default::default(), 1 << 20);
        let event = |key: Vec<u8>, request: u32| events::Event {
            kind: abi::event_kind::LOOKUP,
            bits: abi::event_flag::FOUND,
            key,
            request,
            value_len: 5,
            client_flags: 7,
            exptime: 0,
            last_access: 0,
        };
        events::Host::log_event(&mut ctx, event(b"k".to_vec(), 3));
        events::Host::log_event(&mut ctx, event(vec![b'x'; 251], 4));
        events::Host::log_event(&mut ctx, event(vec![b'y'; 250], 5));
        let kept: Vec<(u8, u8, usize, u32, u32, u32)> = abi::Event::all(&ctx.events)
            .map(|e| {
                (
                    e.kind,
                    e.flags,
                    e.key.len(),
                    e.request,
                    e.value_len,
                    e.client_flags,
                )
            })
            .collect();
        // The 251-byte key is not a key: dropped, as a malformed core
        // record is.
        assert_eq!(kept, [(1, 1, 1, 3, 5, 7), (1, 1, 250, 5, 5, 7)]);
    }

    fn span(offset: u32, len: u32) -> types::Span {
        types::Span { offset, len }
    }

    fn response(status: u8, value: types::Span) -> types::Response {
        types::Response {
            status,
            iflags: 1,
            value,
            client_flags: 9,
            exptime: 10,
            cas: 11,
            last_access: 12,
            prev_exptime: 13,
        }
    }

    fn raw(status: u8, value: types::Span) -> RawResponse {
        RawResponse::from_wit(&response(status, value))
    }

    /// The offsets wasmtime computes for the records' fields, in order.
    fn offsets(fields: &[CanonicalAbiInfo]) -> Vec<usize> {
        let mut at = 0;
        fields
            .iter()
            .map(|f| f.next_field32_size(&mut at))
            .collect()
    }

    #[test]
    fn the_raw_layouts_are_the_canonical_abis() {
        // Consts: CanonicalAbiInfo is not Copy, a const is made anew each use.
        const BYTE: CanonicalAbiInfo = u8::ABI;
        const WORD: CanonicalAbiInfo = u32::ABI;
        const LONG: CanonicalAbiInfo = u64::ABI;
        const SPAN: CanonicalAbiInfo = types::Span::ABI;
        assert_eq!(
            offsets(&[BYTE, SPAN, SPAN, WORD, WORD, LONG, LONG, WORD, WORD]),
            [
                0,
                REQ_KEY,
                REQ_VALUE,
                REQ_CLIENT_FLAGS,
                REQ_EXPTIME,
                REQ_CAS,
                REQ_DELTA,
                REQ_MFLAGS,
                REQ_AUX
            ]
        );
        assert_eq!(
            offsets(&[BYTE, BYTE, SPAN, WORD, WORD, LONG, WORD, WORD]),
            [
                0,
                1,
                RESP_VALUE,
                RESP_CLIENT_FLAGS,
                RESP_EXPTIME,
                RESP_CAS,
                RESP_LAST_ACCESS,
                RESP_PREV_EXPTIME
            ]
        );
        const LIST: CanonicalAbiInfo = <Vec<u8>>::ABI;
        assert_eq!(offsets(&[LIST, LIST]), [ANSWERS_DATA, ANSWERS_RESPONSES]);
        assert_eq!(types::Answers::ABI.size32, 16);
        assert_eq!(types::Request::ABI.align32, 8);
        assert_eq!(types::Response::ABI.align32, 8);
        let r = response(6, span(7, 8));
        let back = RawResponse::from_wit(&r).to_wit();
        assert_eq!(
            (back.status, back.iflags, back.value.offset, back.value.len),
            (6, 1, 7, 8)
        );
        assert_eq!(
            (
                back.client_flags,
                back.exptime,
                back.cas,
                back.last_access,
                back.prev_exptime
            ),
            (9, 10, 11, 12, 13)
        );
    }

    /// An ABI batch of `reqs`, and the world's requests made from it.
    fn batch_of(reqs: &[Request<'_>]) -> (Vec<u8>, Vec<RawRequest>) {
        let mut b = Vec::new();
        abi::begin_batch(&mut b);
        for r in reqs {
            r.encode(&mut b);
        }
        abi::set_batch_count(&mut b, reqs.len() as u32);
        let wit = abi::requests(&b)
            .unwrap()
            .map(|r| RawRequest::new(&r.unwrap(), &b))
            .collect();
        (b, wit)
    }

    #[test]
    fn spans_point_at_the_keys_and_values_in_the_batch() {
        let get = Request {
            op: 1,
            key: b"key",
            ..Default::default()
        };
        let set = Request {
            op: 2,
            key: b"other",
            value: b"value",
            client_flags: 1,
            exptime: 2,
            cas: 3,
            delta: 4,
            mflags: 5,
            aux: 6,
        };
        let (b, raw) = batch_of(&[get, set]);
        let wit: Vec<types::Request> = raw.iter().map(|r| r.to_wit()).collect();
        assert_eq!(at(&b, wit[0].key), Some(&b"key"[..]));
        assert_eq!(at(&b, wit[0].value), Some(&b""[..]));
        assert_eq!(at(&b, wit[1].key), Some(&b"other"[..]));
        assert_eq!(at(&b, wit[1].value), Some(&b"value"[..]));
        let w = &wit[1];
        assert_eq!(
            (
                w.op,
                w.client_flags,
                w.exptime,
                w.cas,
                w.delta,
                w.mflags,
                w.aux
            ),
            (2, 1, 2, 3, 4, 5, 6)
        );
    }

    #[test]
    fn a_span_outside_the_data_is_refused() {
        let data = b"0123456789";
        assert_eq!(at(data, span(2, 3)), Some(&b"234"[..]));
        assert_eq!(at(data, span(0, 10)), Some(&data[..]));
        assert_eq!(at(data, span(10, 0)), Some(&b""[..]), "empty, at the end");
        assert_eq!(at(data, span(8, 3)), None, "runs past the end");
        assert_eq!(at(data, span(11, 0)), None, "starts past the end");
        assert_eq!(at(data, span(u32::MAX, u32::MAX)), None);
        assert_eq!(at(data, span(1, u32::MAX)), None);
    }

    #[test]
    fn answers_are_abi_responses_with_the_requests_keys() {
        let (_, wit) = batch_of(&[
            Request {
                op: 1,
                key: b"a",
                ..Default::default()
            },
            Request {
                op: 1,
                key: b"bb",
                ..Default::default()
            },
        ]);
        let answers = RawAnswers {
            data: b"xxvalue".to_vec(),
            responses: vec![raw(6, span(2, 5)), raw(7, span(0, 0))],
        };
        check_answers(&wit, &answers).unwrap();
        let keys = b"abb";
        let a = Answered {
            keys,
            requests: &wit,
            answers: &answers,
        };
        assert_eq!(a.count(), 2);
        let got: Vec<Response<'_>> = a.records().collect();
        let hit = &got[0];
        assert_eq!(
            (hit.status, hit.iflags, hit.key, hit.value, hit.client_flags),
            (6, 1, &b"a"[..], &b"value"[..], 9)
        );
        assert_eq!(
            (hit.exptime, hit.cas, hit.last_access, hit.prev_exptime),
            (10, 11, 12, 13)
        );
        assert_eq!(
            (got[1].status, got[1].key, got[1].value),
            (7, &b"bb"[..], &b""[..])
        );
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        let (_, wit) = batch_of(&[Request {
            op: 1,
            key: b"a",
            ..Default::default()
        }]);
        let outside = RawAnswers {
            data: b"value".to_vec(),
            responses: vec![raw(6, span(1, 5))],
        };
        let e = check_answers(&wit, &outside).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        let two = RawAnswers {
            data: Vec::new(),
            responses: vec![raw(7, span(0, 0)), raw(7, span(0, 0))],
        };
        let e = check_answers(&wit, &two).unwrap_err();
        assert!(e.to_string().contains("2 responses to 1"), "{e}");
        assert!(check_answers(&wit, &RawAnswers::default()).is_err());
        let unknown = RawAnswers {
            data: Vec::new(),
            responses: vec![raw(200, span(0, 0))],
        };
        let e = check_answers(&wit, &unknown).unwrap_err();
        assert!(e.to_string().contains("unknown response status 200"), "{e}");
    }
}
