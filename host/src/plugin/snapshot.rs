//! One shard's items in a file, for the warm restart (`-e`): what a
//! graceful stop writes from the running instance and the next start loads
//! into the fresh one. host/src/restart/ names the files, keeps their
//! checksums in the memory file and decides whether to load them.
//!
//! The items travel as the ABI v3 dump chunks the plugin writes (`wmc_dump`,
//! `wmc_load`), byte for byte: the format of a saved cache is the plugin
//! ABI's item record, so any plugin that loads items can take a cache any
//! plugin saved, and the host never learns a plugin's memory layout. A
//! memory image (host/src/plugin/image.rs) restores faster but belongs to
//! one build of one plugin and misses the state a module keeps in globals:
//! the records are what an upgrade, and a plugin like AssemblyScript's,
//! restore from.
//!
//! ```text
//! off len field
//!  0  16  magic         "wasmcached-items"
//! 16   4  format        1
//! 20   4  shard         the shard id the items belong to
//! 24   …  frames: u32 len, then len bytes of one dump chunk (u32 count,
//!         then count item records); a frame of len 0 ends the file
//! ```

use super::handover::{DumpStep, Loaded};
use super::shard::Shard;
use super::transfer::{Transfer, TransferError};
use anyhow::{anyhow, bail, Result};
use std::io::Write;
use wasmcached_abi as abi;

const MAGIC: &[u8; 16] = b"wasmcached-items";
const FORMAT: u32 = 1;
const HEADER: usize = 24;

/// What [`Shard::save_items`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SavedItems {
    pub items: u64,
    pub bytes: u64,
}

/// The frames of a shard file, each a dump chunk; `Err` at the first
/// thing that is not one.
fn frames(file: &[u8], shard_id: u32) -> impl Iterator<Item = Result<(usize, usize)>> + '_ {
    let mut at = HEADER;
    let mut state = match check_header(file, shard_id) {
        Ok(()) => Ok(()),
        Err(e) => Err(Some(e)),
    };
    std::iter::from_fn(move || {
        if let Err(e) = &mut state {
            return e.take().map(Err);
        }
        let Some(len) = file.get(at..at + 4) else {
            state = Err(None);
            return Some(Err(anyhow!("the file ends before its end mark")));
        };
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        at += 4;
        if len == 0 {
            state = Err(None);
            return (at != file.len()).then(|| Err(anyhow!("bytes after the end mark")));
        }
        let frame = (at, at + len);
        if file.len() < frame.1 {
            state = Err(None);
            return Some(Err(anyhow!("a chunk runs past the end of the file")));
        }
        at += len;
        Some(Ok(frame))
    })
}

fn check_header(file: &[u8], shard_id: u32) -> Result<()> {
    if file.len() < HEADER || &file[..16] != MAGIC {
        bail!("not a wasmcached shard file");
    }
    let word = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().expect("4 bytes"));
    if word(16) != FORMAT {
        bail!(
            "shard file format {} (this server reads {FORMAT})",
            word(16)
        );
    }
    if word(20) != shard_id {
        bail!("the file holds shard {}, not {shard_id}", word(20));
    }
    Ok(())
}

/// Checks a whole shard file's framing without loading anything: the
/// header, every frame inside the file, the end mark last. Returns the item
/// count the chunks announce. The records themselves were checked when the
/// plugin dumped them (the CRC-32 in the memory file vouches that these are
/// the bytes written then), and `wmc_load` checks them again.
pub fn check_items_file(file: &[u8], shard_id: u32) -> Result<u64> {
    let mut items = 0u64;
    for frame in frames(file, shard_id) {
        let (start, end) = frame?;
        if end - start < 4 {
            bail!("a chunk without its count at byte {start}");
        }
        items += u64::from(abi::batch_count(&file[start..end]));
    }
    Ok(items)
}

impl Shard {
    /// Writes every item of the running instance to `out` in the shard file
    /// format. `Ok(None)`: the plugin cannot dump (no `wmc_dump`, ABI v1 or
    /// v2, or it answers unsupported). Only reads the instance (its dump
    /// position is left at the end); a fault of the instance is handled as
    /// after a batch and returned as the error. A shard without an instance
    /// (backing off after repeated faults) holds no items: its file is empty.
    pub fn save_items(&mut self, out: &mut dyn Write) -> Result<Option<SavedItems>> {
        let shard_id = self.config.shard_id;
        let ticks = self.deadline_ticks;
        let mut header = [0u8; HEADER];
        header[..16].copy_from_slice(MAGIC);
        header[16..20].copy_from_slice(&FORMAT.to_le_bytes());
        header[20..24].copy_from_slice(&shard_id.to_le_bytes());
        let mut saved = SavedItems {
            items: 0,
            bytes: HEADER as u64 + 4,
        };
        let inst = match self.live() {
            Ok(inst) if !inst.can_dump() => return Ok(None),
            Ok(inst) => inst,
            Err(_) => {
                out.write_all(&header)?;
                out.write_all(&0u32.to_le_bytes())?;
                return Ok(Some(saved));
            }
        };
        out.write_all(&header)?;
        let mut first = true;
        loop {
            let chunk = match inst.dump_chunk(ticks) {
                Ok(DumpStep::Chunk(c)) => c,
                Ok(DumpStep::End) => break,
                Ok(DumpStep::Unsupported) if first => return Ok(None),
                Ok(DumpStep::Unsupported) => {
                    bail!("wmc_dump answered unsupported in the middle of a dump")
                }
                Err(TransferError { fault, err, .. }) => {
                    let msg = format!("{err:#}");
                    if fault {
                        self.fault("dump", &msg);
                    }
                    return Err(err.context("item dump failed"));
                }
            };
            first = false;
            out.write_all(&(chunk.len() as u32).to_le_bytes())?;
            out.write_all(&chunk)?;
            saved.items += u64::from(abi::batch_count(&chunk));
            saved.bytes += 4 + chunk.len() as u64;
        }
        out.write_all(&0u32.to_le_bytes())?;
        Ok(Some(saved))
    }

    /// Loads a shard file (checked first with [`check_items_file`]) into the
    /// running instance. `supported` false: the plugin cannot load items.
    /// Stops at the first chunk the plugin has no room for (`complete`
    /// false); a fault of the instance is handled as after a batch.
    pub fn load_items(&mut self, mut file: Vec<u8>) -> Result<Transfer> {
        let shard_id = self.config.shard_id;
        let ticks = self.deadline_ticks;
        let bounds: Vec<(usize, usize)> = frames(&file, shard_id).collect::<Result<_>>()?;
        let inst = self.live().map_err(|f| anyhow!(f.0))?;
        let mut t = Transfer {
            supported: inst.can_load(),
            complete: true,
            ..Transfer::default()
        };
        if !t.supported {
            return Ok(t);
        }
        for (i, &(start, end)) in bounds.iter().enumerate() {
            let chunk = &mut file[start..end];
            let n = u64::from(abi::batch_count(chunk));
            t.dumped += n;
            let loaded = match inst.load_chunk(chunk, ticks) {
                Ok(loaded) => loaded,
                Err(e) => {
                    self.fault("load", format!("{e:#}"));
                    return Err(e.context("item load failed"));
                }
            };
            match loaded {
                Loaded::All => t.moved += n,
                Loaded::Full => {
                    t.complete = false;
                    for &(s, e) in &bounds[i + 1..] {
                        t.dumped += u64::from(abi::batch_count(&file[s..e]));
                    }
                    break;
                }
                Loaded::Unsupported if i == 0 => {
                    t.supported = false;
                    return Ok(t);
                }
                Loaded::Unsupported => {
                    let e = anyhow!("wmc_load answered unsupported after taking items");
                    self.fault("load", &e);
                    return Err(e.context("item load failed"));
                }
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, default_plugin, get, set};
    use super::*;
    use std::sync::Arc;

    fn shard(id: u32) -> Shard {
        let mut c = config();
        c.shard_id = id;
        c.shard_count = 4;
        Shard::new(default_plugin(), c, Arc::default()).unwrap()
    }

    fn saved(s: &mut Shard) -> Vec<u8> {
        let mut file = Vec::new();
        let out = s
            .save_items(&mut file)
            .unwrap()
            .expect("the default store dumps");
        assert_eq!(out.bytes, file.len() as u64);
        file
    }

    #[test]
    fn a_saved_shard_loads_into_a_fresh_instance() {
        let mut a = shard(0);
        let cas: Vec<u64> = (0..500)
            .map(|i| set(&mut a, &format!("k{i}"), format!("v{i}").as_bytes(), i))
            .collect();
        let file = saved(&mut a);
        assert_eq!(check_items_file(&file, 0).unwrap(), 500);
        let mut b = shard(0);
        let t = b.load_items(file).unwrap();
        assert!(t.supported && t.complete);
        assert_eq!((t.moved, t.dumped), (500, 500));
        for i in 0..500 {
            let want = (format!("v{i}").into_bytes(), i, cas[i as usize]);
            assert_eq!(get(&mut b, &format!("k{i}")), Some(want));
        }
    }

    #[test]
    fn every_damaged_shard_file_is_refused_before_loading() {
        let mut a = shard(3);
        for i in 0..20 {
            set(&mut a, &format!("key{i}"), b"value", 0);
        }
        let file = saved(&mut a);
        assert_eq!(check_items_file(&file, 3).unwrap(), 20);
        assert!(check_items_file(&file, 2).is_err(), "another shard's file");
        for cut in 0..file.len() {
            assert!(check_items_file(&file[..cut], 3).is_err(), "cut at {cut}");
        }
        let mut longer = file.clone();
        longer.push(0);
        assert!(
            check_items_file(&longer, 3).is_err(),
            "a byte after the end"
        );
        let mut foreign = file.clone();
        foreign[0] ^= 1;
        assert!(check_items_file(&foreign, 3).is_err());
        // A record whose key length lies passes the framing (the CRC-32 of
        // the memory file catches it) and wmc_load refuses its chunk.
        let mut lying = file.clone();
        lying[HEADER + 4 + 4 + 22] ^= 0x40;
        assert_eq!(check_items_file(&lying, 3).unwrap(), 20);
        assert!(shard(3).load_items(lying).is_err());
    }
}
