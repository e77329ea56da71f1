//! Reading ahead for a batch: the memory every key of the next requests
//! (up to the SDK's `PREPARE_WINDOW` of them) will need is read in three
//! passes before `handle` gets the first of them.
//!
//! A lookup is three dependent cache misses: the bucket, the slot, the key
//! bytes. One key after another, a 10-key multiget waits for 30 misses in
//! a row; profiled under memaslap's multiget load, `index::scan` and
//! `Index::find` were a quarter of the server's CPU, nearly all of it
//! waiting on memory (docs/performance.md). Within a pass the loads of
//! different keys do not depend on each other, so the CPU has them in flight
//! together, and `handle` then finds them in the cache. Wasm has no prefetch
//! instruction; plain loads whose result is kept (`Store::prefetch_sink`)
//! do the same.

use super::Store;
use crate::hash::{hash, tag};
use crate::slab::NIL;
use wasmcached_sdk::abi::Requests;

/// Chain steps followed per key: chains average under 1.5 slots, and a
/// longer one is better left to the lookup than stalled on here.
const MAX_STEPS: usize = 4;

impl Store {
    pub fn prefetch(&mut self, batch: Requests<'_>) {
        self.prefetch_keys(batch.flatten().map(|r| r.key))
    }

    /// Reads ahead what looking up each of `keys` will need (a batch's
    /// requests, or the items of a load chunk).
    pub fn prefetch_keys<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) {
        let ahead = &mut self.ahead;
        ahead.clear();
        // Each pass is a short loop, so that many iterations (and their
        // loads) fit in the CPU's reorder window at once.
        // 0: the hashes (the keys are in the input buffer, already cached).
        for key in keys {
            if !key.is_empty() {
                ahead.push(Ahead {
                    hash: hash(key),
                    slot: NIL,
                });
            }
        }
        // 1: the buckets.
        for a in ahead.iter_mut() {
            a.slot = self.index.head(a.hash);
        }
        // 2: the slots, up to the one whose tag matches.
        for a in ahead.iter_mut() {
            let t = tag(a.hash);
            let mut steps = 0;
            while a.slot != NIL {
                let e = self.slab.get(a.slot);
                if e.tag == t || steps == MAX_STEPS {
                    break;
                }
                steps += 1;
                a.slot = e.hnext;
            }
        }
        // 3: the key (and, for small items, the value) of those slots.
        let mut sink = 0u32;
        for a in ahead.iter() {
            if a.slot != NIL {
                let data = &self.slab.get(a.slot).data;
                sink ^= u32::from(data.first().copied().unwrap_or(0));
                sink ^= u32::from(data.last().copied().unwrap_or(0));
            }
        }
        self.prefetch_sink = self.prefetch_sink.wrapping_add(sink);
    }
}

#[cfg(test)]
impl Store {
    /// For each key of the last batch read ahead, in order: the slot the
    /// read-ahead ended on, and the slot the key's item is in (if stored).
    pub fn prefetch_targets(&self, batch: Requests<'_>) -> Vec<(u32, Option<u32>)> {
        let keys = batch.flatten().filter(|r| !r.key.is_empty());
        self.ahead
            .iter()
            .zip(keys)
            .map(|(a, r)| (a.slot, self.index.find(&self.slab, hash(r.key), r.key)))
            .collect()
    }
}

/// One key of the batch being read ahead.
pub struct Ahead {
    hash: u64,
    /// The chain head, then the slot the key is likely in.
    slot: u32,
}
