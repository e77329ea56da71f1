//! A component's item hand-over: the world's `dump` and `load`, spoken as
//! the core ABI's v3 item chunks, so that a reload (to a component or a
//! core module, either way), a warm restart and a shard transfer move a
//! component's items exactly as they move a core plugin's
//! (`transfer.rs`, `snapshot.rs` never see the difference).
//!
//! The world's `item` carries key, value, client flags, exptime and CAS.
//! What the ABI's record has beyond that is filled in on the way out: the
//! last access is the time of the dump, the iflags and `refs` are 0 (an
//! item from a component arrives as if just stored); on the way in a
//! component gets the five fields and nothing else.

use super::{bindings::wasmcached::store::types, flush_stdio, DumpPos, Guest};
use crate::plugin::handover::{DumpStep, Loaded};
use crate::plugin::imports::ShardCtx;
use anyhow::{anyhow, bail, Result};
use wasmcached_abi::{self as abi, Item};
use wasmtime::Store;

/// The longest key an item record carries (memcached's KEY_MAX_LENGTH).
const KEY_MAX: usize = 250;
/// How many items the first `dump` call asks for; later calls ask for as
/// many as fit in the chunk size at the average size seen so far.
const FIRST_ASK: u32 = 16;
/// The most items one `dump` call is asked for.
const MAX_ASK: u32 = 4096;
/// Calls in a row that may answer no items (a plugin skipping over empty
/// places) before the dump counts as stuck: each call has its deadline, but
/// a cursor that never reaches 0 would loop for ever.
const MAX_EMPTY_CALLS: u32 = 100_000;

impl Guest {
    /// The next chunk of the running dump, of about `max_bytes` (at least
    /// one item). An answer the ABI would call malformed (a key of 0 or
    /// over 250 bytes, more items than asked for, a dump that never ends)
    /// is an error: the plugin's fault.
    pub(in crate::plugin) fn dump_chunk(
        &mut self,
        store: &mut Store<ShardCtx>,
        max_bytes: usize,
    ) -> Result<DumpStep> {
        let mut chunk = Vec::new();
        abi::begin_batch(&mut chunk);
        let mut count = 0u32;
        let mut empty_calls = 0u32;
        let mut ask = FIRST_ASK;
        self.tick_if_moved(store)?;
        let now = crate::clock::now();
        while chunk.len() < max_bytes {
            let cursor = match self.dump {
                DumpPos::Start => 0,
                DumpPos::At(c) => c,
                DumpPos::Done => break,
            };
            let answer = self.bindings.call_dump(&mut *store, cursor, ask);
            flush_stdio(store);
            let Some((next, items)) = answer? else {
                if self.dump == DumpPos::Start {
                    return Ok(DumpStep::Unsupported);
                }
                bail!("dump answered none in the middle of a dump");
            };
            if items.len() > ask as usize {
                bail!("dump answered {} items when asked for {ask}", items.len());
            }
            self.dump = if next == 0 {
                DumpPos::Done
            } else {
                DumpPos::At(next)
            };
            empty_calls = if items.is_empty() { empty_calls + 1 } else { 0 };
            if empty_calls > MAX_EMPTY_CALLS {
                bail!("dump answered no items {MAX_EMPTY_CALLS} times in a row without ending");
            }
            for it in &items {
                encode_item(&mut chunk, it, now)?;
                count += 1;
            }
            let average = (chunk.len() / count.max(1) as usize).max(1);
            ask = ((max_bytes.saturating_sub(chunk.len()) / average) as u32).clamp(1, MAX_ASK);
        }
        if count == 0 {
            self.dump = DumpPos::Start;
            return Ok(DumpStep::End);
        }
        abi::set_batch_count(&mut chunk, count);
        Ok(DumpStep::Chunk(chunk))
    }

    /// Offers one well-formed chunk (the host checked it) to the world's
    /// `load`: `false` from it is "cannot load".
    pub(in crate::plugin) fn load_chunk(
        &mut self,
        store: &mut Store<ShardCtx>,
        chunk: &[u8],
    ) -> Result<Loaded> {
        self.dump = DumpPos::Start;
        let items = decode_chunk(chunk)?;
        self.tick_if_moved(store)?;
        let took = self.bindings.call_load(&mut *store, &items);
        flush_stdio(store);
        Ok(if took? {
            Loaded::All
        } else {
            Loaded::Unsupported
        })
    }
}

/// Appends `it` to `chunk` as an ABI item record, last accessed `now`. A
/// value came out of a 32-bit guest memory, so its length fits the
/// record's u32.
fn encode_item(chunk: &mut Vec<u8>, it: &types::Item, now: u32) -> Result<()> {
    if it.key.is_empty() || it.key.len() > KEY_MAX {
        bail!("dump answered an item with a key of {} bytes", it.key.len());
    }
    Item {
        key: &it.key,
        value: &it.value,
        client_flags: it.client_flags,
        exptime: it.exptime,
        cas: it.cas,
        last_access: now,
        iflags: 0,
        refs: 0,
    }
    .encode(chunk);
    Ok(())
}

/// The world's items of an ABI item chunk.
fn decode_chunk(chunk: &[u8]) -> Result<Vec<types::Item>> {
    let records = abi::items(chunk).ok_or_else(|| anyhow!("an item chunk without its count"))?;
    records
        .map(|r| {
            let r = r.ok_or_else(|| anyhow!("a malformed item record"))?;
            Ok(types::Item {
                key: r.key.to_vec(),
                value: r.value.to_vec(),
                client_flags: r.client_flags,
                exptime: r.exptime,
                cas: r.cas,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &[u8], value: &[u8], cas: u64) -> types::Item {
        types::Item {
            key: key.to_vec(),
            value: value.to_vec(),
            client_flags: 7,
            exptime: 99,
            cas,
        }
    }

    #[test]
    fn items_travel_as_abi_records_and_back() {
        let mut chunk = Vec::new();
        abi::begin_batch(&mut chunk);
        encode_item(&mut chunk, &item(b"k1", b"v1", 5), 42).unwrap();
        encode_item(&mut chunk, &item(b"k2", b"", 6), 42).unwrap();
        abi::set_batch_count(&mut chunk, 2);
        assert_eq!(abi::check_items(&chunk), Some(2));
        let first = abi::items(&chunk).unwrap().next().unwrap().unwrap();
        assert_eq!(
            (first.last_access, first.iflags, first.refs),
            (42, 0, 0),
            "a component's item arrives as if just stored"
        );
        let back = decode_chunk(&chunk).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            (&back[0].key[..], &back[0].value[..], back[0].client_flags),
            (&b"k1"[..], &b"v1"[..], 7)
        );
        assert_eq!((back[1].exptime, back[1].cas), (99, 6));
    }

    #[test]
    fn a_key_the_protocols_could_not_carry_is_refused() {
        let mut chunk = Vec::new();
        assert!(encode_item(&mut chunk, &item(b"", b"v", 1), 0).is_err());
        let long = vec![b'k'; KEY_MAX + 1];
        assert!(encode_item(&mut chunk, &item(&long, b"v", 1), 0).is_err());
        assert!(chunk.is_empty(), "nothing written for a refused item");
    }
}
