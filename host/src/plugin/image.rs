//! A shard's memory image, the warm restart's fast path (`-e`): the whole
//! linear memory of a running instance written to a file at a graceful
//! stop, and read back into a fresh instance of the same build of the same
//! plugin at the next start, instead of dumping and re-inserting every item
//! (host/src/plugin/snapshot.rs). At a million items, loading the records
//! re-inserts each one (about 0.2 s); reading the memory back is a copy.
//!
//! An image is only whole when the module keeps all of its state in its
//! linear memory: `image_check` decides that when the plugin is loaded,
//! and a plugin that keeps state elsewhere saves no image.
//!
//! A restored instance has run `wmc_init` (so the timers it arms at init
//! are armed, and the host has asked what it exports) before its memory is
//! replaced. It is not told that it was restored: the server clock
//! continues across the restart (host/src/restart/), so the times in its
//! memory need no rebasing.
//!
//! ```text
//! off len field
//!  0  16  magic         "wasmcached-image"
//! 16   4  format        1
//! 20   4  shard         the shard id the memory belongs to
//! 24   8  bytes         the memory's size (a whole number of 64 KiB pages)
//! 32   …  the memory, byte for byte
//! ```

use super::shard::Shard;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};

const MAGIC: &[u8; 16] = b"wasmcached-image";
const FORMAT: u32 = 1;
pub const IMAGE_HEADER: usize = 32;
const PAGE: u64 = 64 * 1024;

/// What [`Shard::save_image`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedImage {
    /// The file's length, header included.
    pub bytes: u64,
    pub crc: u32,
}

impl Shard {
    /// Writes the running instance's memory to `out` as an image file.
    /// `Ok(None)`: there is no image to take (the plugin keeps state outside
    /// its memory, or the shard is backing off without an instance).
    pub fn save_image(&mut self, out: &mut dyn Write) -> Result<Option<SavedImage>> {
        if self.plugin.image_safe.is_err() {
            return Ok(None);
        }
        let shard_id = self.config.shard_id;
        let Some(inst) = self.inst.as_mut() else {
            return Ok(None);
        };
        let Some(core) = inst.core() else {
            return Ok(None);
        };
        let memory = core.memory.data(&inst.store);
        let mut header = [0u8; IMAGE_HEADER];
        header[..16].copy_from_slice(MAGIC);
        header[16..20].copy_from_slice(&FORMAT.to_le_bytes());
        header[20..24].copy_from_slice(&shard_id.to_le_bytes());
        header[24..32].copy_from_slice(&(memory.len() as u64).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(memory);
        out.write_all(&header)?;
        out.write_all(memory)?;
        Ok(Some(SavedImage {
            bytes: (IMAGE_HEADER + memory.len()) as u64,
            crc: crc.finalize(),
        }))
    }

    /// Reads an image file of `want.bytes` bytes from `file` into the fresh
    /// instance's memory, and checks it against `want.crc`. On `Err` the
    /// instance's memory may hold part of the image: the caller starts the
    /// shard afresh ([`Shard::reset`]).
    pub fn load_image(&mut self, file: &mut dyn Read, want: SavedImage) -> Result<()> {
        if let Err(why) = &self.plugin.image_safe {
            bail!("the plugin keeps state outside its memory: {why}");
        }
        let shard_id = self.config.shard_id;
        let inst = self
            .inst
            .as_mut()
            .ok_or_else(|| anyhow!("the shard has no instance"))?;
        let mut header = [0u8; IMAGE_HEADER];
        file.read_exact(&mut header).context("reading its header")?;
        let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4"));
        if &header[..16] != MAGIC || word(16) != FORMAT {
            bail!("not a wasmcached memory image (format {FORMAT})");
        }
        if word(20) != shard_id {
            bail!("the image holds shard {}, not {shard_id}", word(20));
        }
        let len = u64::from_le_bytes(header[24..32].try_into().expect("8"));
        if len % PAGE != 0 || IMAGE_HEADER as u64 + len != want.bytes {
            bail!("an image of {len} bytes in a file of {}", want.bytes);
        }
        let memory = inst
            .core()
            .ok_or_else(|| anyhow!("a component has no memory image"))?
            .memory;
        let have = memory.data_size(&inst.store) as u64;
        if have > len {
            // The fresh instance already uses more memory than the image
            // holds: what lies beyond would not be the saved instance's.
            bail!("the fresh instance has {have} bytes of memory, the image {len}");
        }
        memory
            .grow(&mut inst.store, (len - have) / PAGE)
            .map_err(|e| anyhow!("growing the memory to {len} bytes: {e}"))?;
        let memory = &mut memory.data_mut(&mut inst.store)[..len as usize];
        crate::large_pages::advise_range(memory.as_mut_ptr(), memory.len()).ok();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        // A piece at a time, each summed while it is still in the cache.
        for piece in memory.chunks_mut(1 << 20) {
            file.read_exact(piece).context("reading the memory")?;
            crc.update(piece);
        }
        if crc.finalize() != want.crc {
            bail!("its CRC-32 does not match");
        }
        Ok(())
    }

    /// Replaces the instance with a fresh one (after an image that did not
    /// load), as after a fault but without counting one.
    pub fn reset(&mut self) -> Result<()> {
        self.inst = None;
        self.generation += 1;
        let fresh = self.instantiate()?;
        self.swap_in(fresh);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, default_plugin, get, set};
    use super::super::Plugin;
    use super::*;
    use std::sync::Arc;

    fn shard(plugin: Arc<Plugin>, id: u32) -> Shard {
        let mut c = config();
        c.shard_id = id;
        c.shard_count = 4;
        Shard::new(plugin, c, Arc::default()).unwrap()
    }

    #[test]
    fn a_saved_image_restores_the_items_into_a_fresh_instance() {
        let mut a = shard(default_plugin(), 1);
        let cas: Vec<u64> = (0..2000)
            .map(|i| set(&mut a, &format!("k{i}"), format!("v{i}").as_bytes(), i))
            .collect();
        let mut file = Vec::new();
        let saved = a.save_image(&mut file).unwrap().expect("the default store");
        assert_eq!(saved.bytes, file.len() as u64);
        let mut b = shard(default_plugin(), 1);
        b.load_image(&mut &file[..], saved).unwrap();
        for i in 0..2000 {
            let want = (format!("v{i}").into_bytes(), i, cas[i as usize]);
            assert_eq!(get(&mut b, &format!("k{i}")), Some(want));
        }
        // The restored instance goes on storing (its allocator and CAS
        // counter are the saved ones).
        let next = set(&mut b, "new", b"x", 0);
        assert!(next > *cas.iter().max().unwrap());
        assert_eq!(get(&mut b, "k7").unwrap().0, b"v7");
    }

    #[test]
    fn a_damaged_image_is_refused() {
        let mut a = shard(default_plugin(), 2);
        set(&mut a, "key", b"value", 0);
        let mut file = Vec::new();
        let saved = a.save_image(&mut file).unwrap().unwrap();
        let refused = |file: &[u8], want: SavedImage| {
            let mut b = shard(default_plugin(), 2);
            format!("{:#}", b.load_image(&mut &file[..], want).unwrap_err())
        };
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(refused(&flipped, saved).contains("CRC-32"));
        assert!(refused(&file[..file.len() - 1], saved).contains("reading the memory"));
        let mut b = shard(default_plugin(), 3);
        let other = format!("{:#}", b.load_image(&mut &file[..], saved).unwrap_err());
        assert!(other.contains("holds shard 2, not 3"), "{other}");
        let mut foreign = file.clone();
        foreign[0] = b'W';
        assert!(refused(&foreign, saved).contains("not a wasmcached memory image"));
    }
}
