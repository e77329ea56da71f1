//! Moving items between plugin instances (ABI v3 `wmc_dump` / `wmc_load`),
//! chunk by chunk: between two shards, and from the old to the new instance
//! when a shard is hot reloaded.

use super::engine::Plugin;
use super::handover::{DumpStep, Loaded, Renewal};
use super::instance::{instantiate, sized_for_items, write_input, Guest, Live, NoInputBuffer};
use super::shard::{publish, Shard};
use anyhow::{anyhow, bail, Context, Result};
use std::sync::Arc;
use wasmcached_abi::{self as abi, export};

/// The byte size the host asks `wmc_dump` chunks to stay within.
pub const DUMP_CHUNK_BYTES: usize = 1 << 20;

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
    /// The old plugin's `wmc_dump` (a component's `dump`) answered that it
    /// cannot dump.
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
            StartedEmpty::DumpRefused => "the old plugin answered that it cannot dump its items",
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
pub(super) struct TransferError {
    pub(super) source_side: bool,
    pub(super) fault: bool,
    pub(super) err: anyhow::Error,
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

impl Live {
    /// Whether the instance has a dump (a component always has the world's;
    /// it may still answer that it cannot).
    pub(super) fn can_dump(&self) -> bool {
        match &self.guest {
            Guest::Core(c) => self.abi >= abi::DUMP_LOAD_VERSION && c.dump.is_some(),
            Guest::Component(_) => true,
        }
    }

    pub(super) fn can_load(&self) -> bool {
        match &self.guest {
            Guest::Core(c) => self.abi >= abi::DUMP_LOAD_VERSION && c.load.is_some(),
            Guest::Component(_) => true,
        }
    }

    /// The next chunk of the running dump, checked to be well formed.
    pub(super) fn dump_chunk(&mut self, ticks: u64) -> Result<DumpStep, TransferError> {
        self.store.set_epoch_deadline(ticks);
        let core = match &mut self.guest {
            Guest::Core(c) => c,
            Guest::Component(g) => {
                return g
                    .dump_chunk(&mut self.store, DUMP_CHUNK_BYTES)
                    .map_err(|e| TransferError::source(true, e));
            }
        };
        let Some((f, memory)) = core.dump.clone().map(|f| (f, core.memory)) else {
            return Ok(DumpStep::Unsupported);
        };
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
        let data = memory.data(&self.store);
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

    /// Offers one well-formed chunk to `wmc_load`. A plugin older than v7
    /// gets the records' `refs` byte zeroed, as its version reserved it. An
    /// answer outside [`abi::load_status`] (or MALFORMED, for a chunk the host
    /// checked) is an error: the plugin's fault.
    pub(super) fn load_chunk(&mut self, chunk: &mut [u8], ticks: u64) -> Result<Loaded> {
        if let Guest::Component(g) = &mut self.guest {
            self.store.set_epoch_deadline(ticks);
            return g.load_chunk(&mut self.store, chunk);
        }
        let f = self
            .core()
            .and_then(|c| c.load.clone())
            .ok_or_else(|| anyhow!("the plugin does not export `{}`", export::LOAD))?;
        if self.abi < abi::ITEM_REFS_VERSION {
            abi::clear_item_refs(chunk);
        }
        match write_input(self, chunk, ticks) {
            Ok(()) => {}
            // No room even for the chunk: as good as a full store.
            Err(e) if e.is::<NoInputBuffer>() => return Ok(Loaded::Full),
            Err(e) => return Err(e),
        }
        self.store.set_epoch_deadline(ticks);
        match f.call(&mut self.store, chunk.len() as i32)? {
            abi::load_status::OK => Ok(Loaded::All),
            abi::load_status::FULL => Ok(Loaded::Full),
            abi::load_status::UNSUPPORTED => Ok(Loaded::Unsupported),
            rc => bail!(
                "wmc_load answered {rc} to a chunk of {} items",
                abi::batch_count(chunk)
            ),
        }
    }
}

/// Moves every item `src` dumps into `dst`, chunk by chunk (never more
/// than one chunk held by the host). When `dst` runs out of memory the
/// rest of the dump is only counted; the caller says what becomes of it.
fn transfer(
    src: &mut Live,
    src_ticks: u64,
    dst: &mut Live,
    dst_ticks: u64,
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
        let mut chunk = match src.dump_chunk(src_ticks)? {
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
        let loaded = dst
            .load_chunk(&mut chunk, dst_ticks)
            .map_err(TransferError::dest)?;
        match loaded {
            Loaded::All => t.moved += n,
            Loaded::Full => {
                t.complete = false;
                // Count what the source still had, for the report.
                while let DumpStep::Chunk(c) = src.dump_chunk(src_ticks)? {
                    t.dumped += u64::from(abi::batch_count(&c));
                }
                break;
            }
            Loaded::Unsupported if first => {
                t.supported = false;
                return Ok(t);
            }
            Loaded::Unsupported => {
                return Err(TransferError::dest(anyhow!(
                    "wmc_load answered unsupported after taking items"
                )))
            }
        }
        first = false;
    }
    Ok(t)
}

impl Shard {
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
        match transfer(src_inst, src_ticks, dst_inst, dst_ticks) {
            Ok(t) => {
                if !t.complete {
                    log_dropped(shard_id, &t);
                }
                Ok(t)
            }
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
    /// The process-wide [`plugin_abi`](super::plugin_abi) follows the new instance.
    pub fn reload(&mut self, new: Arc<Plugin>) -> Result<ReloadOutcome> {
        let ticks = self.deadline_ticks;
        let shard_id = self.config.shard_id;
        let mut fresh = self.instance_for_items(&new)?;
        let old_abi = self.abi_version();
        let mut outcome = ReloadOutcome {
            started_empty: Some(StartedEmpty::NoOldInstance),
            items_moved: 0,
            complete: true,
            old_abi,
            new_abi: fresh.abi,
        };
        if let Some(old) = self.inst.as_mut() {
            match transfer(old, ticks, &mut fresh, ticks) {
                Ok(t) => {
                    if !t.complete {
                        log_dropped(shard_id, &t);
                    }
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
        publish(&fresh);
        self.plugin = new;
        self.swap_in(fresh);
        Ok(outcome)
    }

    /// A fresh instance of `plugin` with this shard's settings, its index
    /// sized for the items it is about to take from the running instance
    /// (a reload's, a renewal's).
    fn instance_for_items(&mut self, plugin: &Plugin) -> Result<Live> {
        let mut config = self.config.clone();
        config.hints = sized_for_items(config.hints, self.curr_items());
        instantiate(plugin, &config, self.deadline_ticks)
            .with_context(|| format!("shard {}: starting plugin {}", config.shard_id, plugin.name))
    }

    /// Replaces the running instance with a fresh one of the same plugin
    /// and moves its items across, as a reload to the same plugin does, but
    /// keeps the old instance unless every item moved: a renewal must not
    /// lose what the old instance still holds. A fault of the old instance
    /// during its dump is handled as any fault (it restarts empty) and
    /// returned as the error.
    pub(super) fn renew(&mut self) -> Result<Renewal> {
        let ticks = self.deadline_ticks;
        let shard_id = self.config.shard_id;
        let mut fresh = self.instance_for_items(&self.plugin.clone())?;
        let Some(old) = self.inst.as_mut() else {
            return Ok(Renewal::Kept("no instance is running"));
        };
        match transfer(old, ticks, &mut fresh, ticks) {
            Ok(t) if !t.supported => Ok(Renewal::Kept("the plugin cannot dump or load its items")),
            Ok(t) if !t.complete => Ok(Renewal::Kept(
                "the fresh instance ran out of memory taking the items",
            )),
            Ok(t) => {
                self.swap_in(fresh);
                Ok(Renewal::Renewed { items: t.moved })
            }
            Err(e) => {
                let msg = format!("{:#}", e.err);
                if e.fault && e.source_side {
                    self.fault("dump", &msg);
                }
                Err(e.err.context(format!("shard {shard_id}: renewal failed")))
            }
        }
    }
}

fn log_dropped(shard_id: u32, t: &Transfer) {
    eprintln!(
        "shard {shard_id}: the new plugin instance ran out of memory after {} of {} items; \
         the remaining items are dropped",
        t.moved, t.dumped
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::plugin_abi;
    use crate::plugin::test_support::*;
    use wasmcached_abi::{Op, Request, Status};

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
}
