//! One shard (`Shard`): the plugin instance it runs, replaced after a
//! fault (or not, while it backs off), and every call the worker makes into
//! it (batch, tick, timer, stats, item listing), with the checks on what
//! comes back: answers and their held values, `log_event` records, listing
//! chunks.

use super::component::Answered;
use super::engine::{Plugin, EPOCH_TICK};
use super::faults::{BackOff, CrashLoop, FaultStats, CRASH_LOOP_WINDOW};
use super::handover::Renewal;
use super::instance::{
    instantiate, memory_cap, write_input, Guest, Live, NoInputBuffer, ShardConfig,
};
use super::stats_reset::Baseline;
use anyhow::{anyhow, Result};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmcached_abi::{self as abi, Response};

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

/// Whether the loaded plugin reports its own `watch` events (ABI v6
/// `log_event`, or a component that imports the world's `events`).
static PLUGIN_EVENTS: AtomicBool = AtomicBool::new(false);

/// Whether the loaded plugin reports its lookups, stores and evictions
/// itself: then `watch` logs those, and nothing it would otherwise derive
/// from the answers.
pub fn plugin_reports_events() -> bool {
    PLUGIN_EVENTS.load(Ordering::Relaxed)
}

/// Tells the protocol code what the plugin of instance `inst` can do
/// ([`plugin_abi`], [`plugin_lists`], [`plugin_reports_events`]): at start,
/// after a restart and after a reload.
pub(super) fn publish(inst: &Live) {
    PLUGIN_ABI.store(inst.abi, Ordering::Relaxed);
    PLUGIN_LISTS.store(inst.lists(), Ordering::Relaxed);
    PLUGIN_EVENTS.store(inst.reports_events(), Ordering::Relaxed);
}

/// The bytes the host asks each `wmc_iter` chunk to stay within.
pub const LIST_CHUNK_BYTES: usize = 64 << 10;

/// One shard: a plugin instance that can be replaced after a fault.
pub struct Shard {
    pub config: ShardConfig,
    pub(super) plugin: Arc<Plugin>,
    pub(super) inst: Option<Live>,
    pub(super) deadline_ticks: u64,
    faults: Arc<FaultStats>,
    /// Bumped on every re-instantiation so stale guest timers are dropped.
    pub generation: u64,
    /// Fault history for the crash-loop back-off.
    crash: CrashLoop,
    /// Time spent in guest calls ([`Shard::guest_time`]).
    guest_time: Duration,
    /// The counters at the last `stats reset` (plugin/stats_reset.rs).
    pub(super) baseline: Baseline,
    /// The instance's memory at which it is renewed
    /// ([`Shard::renew_if_bloated`]).
    pub(super) renew_at: u64,
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
            guest_time: Duration::ZERO,
            baseline: Baseline::default(),
            renew_at: 0,
        };
        shard.renew_at = shard.first_renewal();
        let inst = shard.instantiate()?;
        publish(&inst);
        shard.inst = Some(inst);
        Ok(shard)
    }

    /// The plugin this shard runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Which shard this is.
    pub fn shard_id(&self) -> u32 {
        self.config.shard_id
    }

    /// The ABI version of the running instance (`None` while there is none).
    pub fn abi_version(&self) -> Option<u32> {
        self.inst.as_ref().map(|i| i.abi)
    }

    /// Whether the running instance reports `watch` events when a request
    /// asks (ABI v6, or a component importing the world's `events`).
    pub fn reports_events(&self) -> bool {
        self.inst.as_ref().is_some_and(|i| i.reports_events())
    }

    /// Whether the running instance can hand its items over (ABI v3, exports
    /// `wmc_dump` and `wmc_load`; it may still answer "unsupported").
    pub fn exports_dump_load(&self) -> bool {
        self.inst
            .as_ref()
            .is_some_and(|i| i.can_dump() && i.can_load())
    }

    /// The WIT world version the running instance is a component of
    /// (`None` for a core module, or while there is no instance).
    pub fn wit_version(&self) -> Option<u32> {
        self.inst.as_ref().and_then(|i| match &i.guest {
            Guest::Component(_) => Some(super::component::WIT_VERSION),
            Guest::Core(_) => None,
        })
    }

    /// Puts `fresh` in place of the running instance (a reload's or a
    /// renewal's).
    pub(super) fn swap_in(&mut self, fresh: Live) {
        self.inst = Some(fresh);
        // Timers of the old instance must not reach the new one.
        self.generation += 1;
        self.renew_at = self.first_renewal();
    }

    /// Where a fresh instance's memory gets it renewed: three quarters of
    /// the memory cap.
    fn first_renewal(&self) -> u64 {
        memory_cap(self.config.memory_budget, self.config.item_size_max) as u64 / 4 * 3
    }

    /// Renews the instance ([`Shard::renew`]: a fresh one of the same
    /// plugin takes its items, as a `plugin reload` moves them) once its
    /// memory has passed `renew_at`. A Wasm memory never shrinks, and a
    /// guest runtime that never frees its garbage (componentize-js: the
    /// SpiderMonkey collector does not run inside the component) grows with
    /// every call until it reaches the cap, faults and restarts empty. The
    /// fresh instance holds the same items and starts small again; the cost
    /// is one pause of this shard for the dump and load. A plugin that
    /// cannot hand its items over keeps running as before.
    fn renew_if_bloated(&mut self) {
        let Some(inst) = self.inst.as_ref() else {
            return;
        };
        let before = inst.memory_bytes();
        if before < self.renew_at {
            return;
        }
        if !(inst.can_dump() && inst.can_load()) {
            // Without dump and load a fresh instance would start empty.
            self.renew_at = u64::MAX;
            return;
        }
        let id = self.config.shard_id;
        let cap = memory_cap(self.config.memory_budget, self.config.item_size_max) as u64;
        let mb = |b: u64| b >> 20;
        let began = Instant::now();
        let renewal = self.renew();
        self.guest_time += began.elapsed();
        match renewal {
            Ok(Renewal::Renewed { items }) => {
                self.faults.plugin_renewals.fetch_add(1, Ordering::Relaxed);
                let after = self.memory_bytes();
                // Renewed with the items alone near the line: next time
                // only when half of what is left to the cap is gone.
                self.renew_at = self.renew_at.max(after + (cap.saturating_sub(after)) / 2);
                eprintln!(
                    "shard {id}: plugin memory at {} of its {} MiB cap; renewed the instance \
                     with its {items} items in {} ms ({} MiB now)",
                    mb(before),
                    mb(cap),
                    began.elapsed().as_millis(),
                    mb(after)
                );
            }
            Ok(Renewal::Kept(why)) => {
                self.renew_at = before + cap.saturating_sub(before) / 2;
                eprintln!(
                    "shard {id}: plugin memory at {} of its {} MiB cap; not renewed: {why}",
                    mb(before),
                    mb(cap)
                );
            }
            Err(e) => {
                self.renew_at = before + cap.saturating_sub(before) / 2;
                eprintln!("shard {id}: {e:#}");
            }
        }
    }

    pub(super) fn instantiate(&self) -> Result<Live> {
        instantiate(&self.plugin, &self.config, self.deadline_ticks)
    }

    /// Whether the running instance lists its items (ABI v5 `wmc_iter`,
    /// exported and not answering "unsupported" at start-up).
    pub fn lists(&self) -> bool {
        self.inst.as_ref().is_some_and(|i| i.lists())
    }

    /// Records a fault and replaces the instance with a fresh, empty one,
    /// unless the shard is in a crash loop: then it backs off (no instance
    /// until the back-off ends).
    pub(super) fn fault(&mut self, what: &str, err: impl std::fmt::Display) -> Fault {
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
                publish(&i);
                self.inst = Some(i);
                self.renew_at = self.first_renewal();
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
    pub(super) fn live(&mut self) -> Result<&mut Live, Fault> {
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
        self.renew_if_bloated();
        // No instance (backing off, or it could not be restarted): no guest
        // call, and no new fault for the batch.
        self.live()?;
        let started = Instant::now();
        let result = (|| -> Result<(usize, usize, bool)> {
            let inst = self.inst.as_mut().expect("live instance");
            let ctx = inst.store.data_mut();
            if !ctx.errors.is_empty() {
                ctx.errors.clear();
            }
            ctx.events.clear();
            if let Guest::Component(g) = &mut inst.guest {
                inst.store.set_epoch_deadline(ticks);
                g.batch(&mut inst.store, requests, count)?;
                return Ok((0, 0, false));
            }
            write_input(inst, requests, ticks)?;
            // The exports are borrowed, not cloned: a clone of a typed
            // function takes and drops a reference on its registered type,
            // atomics that cost a one-get batch about a seventh of its time.
            let Guest::Core(core) = &inst.guest else {
                unreachable!("a component returned above")
            };
            inst.store.set_epoch_deadline(ticks);
            let packed = core.batch.call(&mut inst.store, requests.len() as i32)?;
            let (ptr, len) = abi::unpack_ptr_len(packed);
            let (ptr, len) = (ptr as usize, len as usize);
            let data = core.memory.data(&inst.store);
            let resp = ptr
                .checked_add(len)
                .and_then(|end| data.get(ptr..end))
                .ok_or_else(|| anyhow!("response buffer outside guest memory"))?;
            let held = abi::check_responses(resp, held_in(inst.abi, data), count)
                .map_err(|e| anyhow!(e))?;
            Ok((ptr, len, held))
        })();
        self.guest_time += started.elapsed();
        match result {
            Ok((ptr, len, held)) => {
                let inst = self.inst.as_ref().expect("live instance");
                let events = &inst.store.data().events;
                let records = match &inst.guest {
                    Guest::Component(g) => Records::Component(g.answers()),
                    Guest::Core(c) => {
                        let mem = c.memory.data(&inst.store);
                        Records::Abi {
                            batch: &mem[ptr..ptr + len],
                            mem: held_in(inst.abi, mem),
                            held,
                        }
                    }
                };
                Ok(Answers { records, events })
            }
            Err(e) if e.is::<NoInputBuffer>() => Err(Fault("out of memory".into())),
            Err(e) => Err(self.fault("batch", format!("{e:#}"))),
        }
    }

    /// The once-a-second clock callback.
    pub fn tick(&mut self, now: u32) {
        let ticks = self.deadline_ticks;
        let started = Instant::now();
        let Ok(inst) = self.live() else { return };
        inst.store.set_epoch_deadline(ticks);
        let r = match &mut inst.guest {
            Guest::Component(g) => g.tick(&mut inst.store, now),
            Guest::Core(c) => match c.tick.clone() {
                Some(f) => f.call(&mut inst.store, now as i32).map_err(Into::into),
                None => return,
            },
        };
        self.guest_time += started.elapsed();
        if let Err(e) = r {
            self.fault("tick", format!("{e:#}"));
        }
    }

    /// A guest timer fired.
    pub fn timer(&mut self, token: u64) {
        let ticks = self.deadline_ticks;
        let started = Instant::now();
        let Ok(inst) = self.live() else { return };
        inst.store.set_epoch_deadline(ticks);
        let r = match &mut inst.guest {
            Guest::Component(g) => g.timer(&mut inst.store, token),
            Guest::Core(c) => match c.timer.clone() {
                Some(f) => f.call(&mut inst.store, token as i64).map_err(Into::into),
                None => return,
            },
        };
        self.guest_time += started.elapsed();
        if let Err(e) = r {
            self.fault("timer", format!("{e:#}"));
        }
    }

    /// Time spent in the guest's batch, tick and timer calls since the
    /// shard started (`plugin_guest_time_us`).
    pub fn guest_time(&self) -> Duration {
        self.guest_time
    }

    /// One step of an item listing (ABI v5 `wmc_iter`): the records from
    /// `cursor` on, at most about `max_bytes` of them. Only reads the store.
    /// A trap or a malformed chunk is a fault (the shard restarts empty);
    /// a chunk the plugin had no memory for is an error without a fault.
    pub fn list(&mut self, cursor: u64, max_bytes: usize) -> Result<ListStep<'_>, Fault> {
        let ticks = self.deadline_ticks;
        let inst = self.live()?;
        if let Guest::Component(_) = inst.guest {
            return self.list_component(cursor, max_bytes);
        }
        let Some(f) = inst.core().and_then(|c| c.iter.clone()) else {
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
        let memory = |inst: &Live| inst.core().expect("a core module lists").memory;
        let checked = {
            let inst = self.inst.as_ref().expect("live instance");
            let data = memory(inst).data(&inst.store);
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
                let data = memory(inst).data(&inst.store);
                Ok(ListStep::Chunk {
                    cursor,
                    chunk: &data[ptr..ptr + len],
                })
            }
            Err(e) => Err(self.fault("iter", e)),
        }
    }

    /// [`Shard::list`] for a component (component/listing.rs), once
    /// `list` has made sure an instance is live.
    fn list_component(&mut self, cursor: u64, max_bytes: usize) -> Result<ListStep<'_>, Fault> {
        let ticks = self.deadline_ticks;
        let inst = self.inst.as_mut().expect("live instance");
        let Guest::Component(g) = &mut inst.guest else {
            unreachable!("list_component on a core module")
        };
        inst.store.set_epoch_deadline(ticks);
        let cursor = match g.list(&mut inst.store, cursor, max_bytes) {
            Ok(Some(cursor)) => cursor,
            Ok(None) => return Ok(ListStep::Unsupported),
            Err(e) => return Err(self.fault("iter", format!("{e:#}"))),
        };
        // Borrowed again: the fault above needs `self` whole.
        let Some(Guest::Component(g)) = self.inst.as_ref().map(|i| &i.guest) else {
            unreachable!("the instance listed just now")
        };
        Ok(ListStep::Chunk {
            cursor,
            chunk: g.listed(),
        })
    }

    /// What the guest's `wmc_stats(group)` answers (`Shard::stats` adds
    /// the metrics to it).
    pub(super) fn guest_stats(&mut self, group: i32) -> Vec<u8> {
        let ticks = self.deadline_ticks;
        let Ok(inst) = self.live() else {
            return Vec::new();
        };
        inst.store.set_epoch_deadline(ticks);
        let (f, memory) = match &mut inst.guest {
            Guest::Component(g) => {
                return match g.stats(&mut inst.store, group) {
                    Ok(lines) => lines,
                    Err(e) => {
                        self.fault("stats", format!("{e:#}"));
                        Vec::new()
                    }
                };
            }
            Guest::Core(c) => match c.stats.clone() {
                Some(f) => (f, c.memory),
                None => return Vec::new(),
            },
        };
        match f.call(&mut inst.store, group) {
            Ok(packed) => {
                let (ptr, len) = abi::unpack_ptr_len(packed);
                let (ptr, len) = (ptr as usize, len as usize);
                let data = memory.data(&inst.store);
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

    /// The size of the running instance's linear memory (0 without one).
    pub fn memory_bytes(&self) -> u64 {
        self.inst.as_ref().map_or(0, Live::memory_bytes)
    }

    /// The running instance's item count, as its `curr_items` stat says
    /// (0 when it keeps no such stat).
    pub fn curr_items(&mut self) -> u64 {
        let lines = self.guest_stats(abi::stats_group::GENERAL);
        String::from_utf8_lossy(&lines)
            .lines()
            .find_map(|l| l.strip_prefix("curr_items ")?.trim().parse().ok())
            .unwrap_or(0)
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

/// Where a plugin speaking `abi` keeps held values: its memory from v4 on.
fn held_in(abi: u32, mem: &[u8]) -> Option<&[u8]> {
    (abi >= abi::VALUE_REF_VERSION).then_some(mem)
}

/// One batch's answers as the plugin left them: valid until the next call
/// into the plugin.
pub struct Answers<'a> {
    records: Records<'a>,
    /// ABI v6 `log_event` records of the batch, in request order.
    events: &'a [u8],
}

#[derive(Clone, Copy)]
enum Records<'a> {
    /// A core plugin's response batch, in its memory.
    Abi {
        batch: &'a [u8],
        /// v4: the plugin's memory, where held values are read.
        mem: Option<&'a [u8]>,
        /// Some answer holds its value by reference.
        held: bool,
    },
    /// A component's answers (plugin/component.rs).
    Component(Answered<'a>),
}

impl<'a> Answers<'a> {
    /// The answers, held values resolved (checked by [`Shard::batch`]).
    pub fn records(&self) -> impl Iterator<Item = Response<'a>> {
        let (core, component) = match self.records {
            Records::Abi { batch, mem, .. } => {
                let records = abi::responses_in(batch, mem).expect("checked by Shard::batch");
                (
                    Some(records.map(|r| r.expect("checked by Shard::batch"))),
                    None,
                )
            }
            Records::Component(a) => (None, Some(a.records())),
        };
        core.into_iter()
            .flatten()
            .chain(component.into_iter().flatten())
    }

    /// Replaces `out` with the answers as a response batch that carries all
    /// its values, to outlive the next guest call (answers for another
    /// worker).
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        out.clear();
        if let Records::Abi {
            batch, held: false, ..
        } = self.records
        {
            out.extend_from_slice(batch);
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
        match self.records {
            Records::Abi { batch, .. } => abi::batch_count(batch),
            Records::Component(a) => a.count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::plugin_lists;
    use crate::plugin::test_support::*;

    /// A shard whose instance's memory passed `renew_at` runs its next batch
    /// in a fresh instance that holds every item as it was.
    #[test]
    fn a_bloated_instance_is_renewed_with_its_items() {
        let _serial = serial();
        let mut s = shard(&default_plugin());
        let first = s.renew_at;
        assert_eq!(first, memory_cap(64 << 20, 1 << 20) as u64 / 4 * 3);
        let cas: Vec<u64> = (0..300)
            .map(|i| set(&mut s, &format!("k{i}"), &vec![b'v'; i * 10], i as u32))
            .collect();
        let generation = s.generation;
        // Below the line nothing happens.
        assert!(get(&mut s, "k1").is_some());
        assert_eq!(s.generation, generation);
        s.renew_at = 1;
        assert_eq!(get(&mut s, "k7"), Some((vec![b'v'; 70], 7, cas[7])));
        assert_eq!(s.generation, generation + 1, "a fresh instance");
        assert_eq!(s.faults.plugin_renewals.load(Ordering::Relaxed), 1);
        assert_eq!(s.faults.plugin_traps.load(Ordering::Relaxed), 0);
        assert!(s.renew_at >= first, "{} against {first}", s.renew_at);
        for (i, c) in cas.iter().enumerate() {
            let want = (vec![b'v'; i * 10], i as u32, *c);
            assert_eq!(get(&mut s, &format!("k{i}")), Some(want));
        }
        assert_eq!(s.curr_items(), 300);
    }

    /// A plugin without dump and load is never renewed (it would start
    /// empty): it runs on until its memory cap, as before.
    #[test]
    fn a_plugin_that_cannot_hand_its_items_over_is_not_renewed() {
        let _serial = serial();
        let plugin = Arc::new(Plugin::new(FORGETFUL.as_bytes(), "forgetful").unwrap());
        let mut s = shard(&plugin);
        s.renew_at = 1;
        let generation = s.generation;
        assert!(get(&mut s, "k").is_none());
        assert_eq!(s.generation, generation);
        assert_eq!(s.faults.plugin_renewals.load(Ordering::Relaxed), 0);
        assert_eq!(s.renew_at, u64::MAX);
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
