//! Reading ahead for a batch: the memory every key of the next requests
//! (up to the SDK's `PREPARE_WINDOW` of them) will need is read in passes
//! before `handle` gets the first of them.
//!
//! A lookup is three dependent cache misses: the index group's control
//! bytes, its slot, the item's header and key. One key after another, a
//! 10-key multiget waits for 30 misses in a row. Within a pass the loads of
//! different keys do not depend on each other, so the CPU has them in flight
//! together, and `handle` then finds them in the cache. Wasm has no prefetch
//! instruction; plain loads whose result is kept (`Store::prefetch_sink`)
//! do the same.

use super::{Store, NIL};
use crate::hash::hash;
use wasmcached_sdk::abi::Requests;

impl Store {
    /// Whether a batch is worth reading ahead: only once the store has
    /// outgrown the caches (`Tuning::readahead_mb`).
    pub fn reads_ahead(&self) -> bool {
        self.used() + self.index.bytes() >= self.tuning.readahead_mb << 20
    }

    pub fn prefetch(&mut self, batch: Requests<'_>) {
        self.prefetch_keys(batch.flatten().map(|r| r.key))
    }

    /// Reads ahead what looking up each of `keys` will need (a batch's
    /// requests, or the items of a load chunk).
    pub fn prefetch_keys<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) {
        let mut ahead = std::mem::take(&mut self.ahead);
        ahead.clear();
        self.ahead_next = 0;
        // 0: the hashes (the keys are in the input buffer, already cached).
        for key in keys {
            if !key.is_empty() {
                ahead.push(Ahead {
                    hash: hash(key),
                    key_at: key.as_ptr() as usize,
                    key_len: key.len() as u32,
                    item: NIL,
                });
            }
        }
        // 1: the index groups, to the first slot whose tag matches.
        for a in ahead.iter_mut() {
            a.item = self.index.first_candidate(a.hash).unwrap_or(NIL);
        }
        // 2: the items' headers and keys.
        let mut sink = 0u32;
        for a in ahead.iter() {
            if a.item != NIL {
                let b = self.log.at(a.item);
                sink ^= u32::from(b[0]) ^ u32::from(b.get(40).copied().unwrap_or(0));
            }
        }
        self.prefetch_sink = self.prefetch_sink.wrapping_add(sink);
        self.ahead = ahead;
    }

    /// The hash of a request's key: the one the read-ahead computed for it,
    /// else a fresh one. Hashing was a fifth of a cached hit's time, done
    /// twice. A request is known by where its key lies in the input buffer:
    /// `handle` gets the window's requests in the read-ahead's order, so the
    /// entries before it belong to requests that needed no hash.
    #[inline]
    pub(super) fn key_hash(&mut self, key: &[u8]) -> u64 {
        let at = key.as_ptr() as usize;
        while let Some(a) = self.ahead.get(self.ahead_next) {
            if a.key_at > at {
                break;
            }
            self.ahead_next += 1;
            if a.key_at == at && a.key_len as usize == key.len() {
                return a.hash;
            }
        }
        hash(key)
    }

    /// Forgets the read-ahead: the input buffer it points into is about to
    /// hold the next batch, whose keys may lie where these did.
    pub(super) fn forget_ahead(&mut self) {
        self.ahead.clear();
        self.ahead_next = 0;
    }
}

#[cfg(test)]
impl Store {
    /// For each key of the last batch read ahead, in order: the item the
    /// read-ahead ended on, and the item the key is stored in (if stored).
    pub fn prefetch_targets(&self, batch: Requests<'_>) -> Vec<(u32, Option<u32>)> {
        let keys = batch.flatten().filter(|r| !r.key.is_empty());
        self.ahead
            .iter()
            .zip(keys)
            .map(|(a, r)| (a.item, self.find(r.key, hash(r.key))))
            .collect()
    }
}

/// One key of the batch being read ahead.
pub struct Ahead {
    hash: u64,
    /// Where its key is in the input buffer, which identifies the request.
    key_at: usize,
    key_len: u32,
    /// The item the key is likely in.
    item: u32,
}
