//! ABI v3 item dump and load: how a shard's items move to a new instance
//! (possibly of another plugin) when the server swaps plugins.
//!
//! The dump walks the slots once round, starting at the CLOCK hand: the
//! order in which the hand would next look at the items, which is roughly
//! least recently stored (or saved by a hit) first, since new items land
//! just behind the hand. A loading store puts them in its slots in that order
//! with its own hand at the start, so the items it would evict first are
//! again the ones the dump wrote first, and the last item loaded is the
//! newest. Each item's CLOCK counter travels in the record's `refs` (ABI
//! v7) and the FETCHED mark in its iflags, so the loaded store protects the
//! same items the dumped one did.

use super::{NoMemory, Store, Value, MAX_KEY};
use crate::clock;
use crate::hash::hash;
use crate::slab::{bit, Entry};
use wasmcached_sdk::abi::{iflag, Item};
use wasmcached_sdk::guest::{self, DumpWriter, LoadError};

/// The entry bits an item record carries, and their record `iflags`.
pub(super) const CARRIED: [(u8, u8); 4] = [
    (bit::FETCHED, iflag::FETCHED),
    (bit::STALE, iflag::STALE),
    (bit::TOKEN_SENT, iflag::TOKEN_SENT),
    (bit::KEY_BINARY, iflag::KEY_BINARY),
];

/// The dump cursor: the slot the walk started at (plus 1, so that 0 means
/// the dump starts) and how many slots it has walked. The host calls nothing
/// else during a dump, so neither the hand nor the slots move in between.
fn cursor(start: u64, walked: u64) -> u64 {
    ((start + 1) << 32) | walked
}

impl Store {
    /// Whether an item is dead for a dump: expired or flushed (the same
    /// tests as a lookup).
    pub(super) fn is_dead(&self, e: &Entry, now: u32) -> bool {
        (e.exptime != 0 && e.exptime <= now) || self.is_flushed(e, now)
    }

    /// Writes the next items of the dump into `out`; see [`cursor`]. Only
    /// reads: an interrupted dump leaves the store as it was.
    pub fn dump(&mut self, out: &mut DumpWriter<'_>) -> bool {
        let now = guest::now();
        let cap = self.slab.capacity() as u64;
        let (start, mut walked) = match out.cursor() {
            0 => (u64::from(self.clock.hand), 0),
            c => ((c >> 32) - 1, c & u64::from(u32::MAX)),
        };
        while walked < cap {
            let e = self.slab.get(((start + walked) % cap) as u32);
            if e.is_live() && !self.is_dead(e, now) {
                let mut iflags = 0;
                for (b, f) in CARRIED {
                    if e.has(b) {
                        iflags |= f;
                    }
                }
                let item = Item {
                    key: e.key(),
                    value: e.value(),
                    client_flags: e.client_flags(),
                    exptime: e.exptime,
                    cas: e.cas(),
                    last_access: e.time,
                    iflags,
                    refs: clock::refs(e),
                };
                if !out.item(&item) {
                    out.set_cursor(cursor(start, walked));
                    return true;
                }
            }
            walked += 1;
        }
        out.set_cursor(cursor(start, walked));
        true
    }

    /// Stores one dumped item with its flags, exptime, CAS, last access and
    /// carried bits. Expired items, bad keys and items too large for this
    /// store are dropped, as a `set` of them would be; out of memory (after
    /// evicting, unless `-M`) is [`LoadError::Full`].
    pub fn load(&mut self, item: &Item<'_>) -> Result<(), LoadError> {
        let now = guest::now();
        let key = item.key;
        if key.is_empty() || key.len() > MAX_KEY {
            return Ok(());
        }
        if item.exptime != 0 && item.exptime <= now {
            return Ok(());
        }
        if !self.fits(key.len(), item.value.len(), item.client_flags) {
            return Ok(());
        }
        let h = hash(key);
        let old = self.lookup(key, h, now);
        // A counter from another plugin's scale is clamped into ours.
        let mut bits = item.refs.min(self.clock.max()) << bit::REF_SHIFT;
        for (b, f) in CARRIED {
            if item.iflags & f != 0 {
                bits |= b;
            }
        }
        let stored = self.put(
            key,
            h,
            old,
            Value::Plain(item.value),
            item.client_flags,
            item.exptime,
            now,
            bits,
        );
        let i = match stored {
            Ok((i, _)) => i,
            Err(NoMemory) => {
                let class = self
                    .classes
                    .of(key.len(), item.value.len(), item.client_flags);
                self.classes.class[class].outofmemory += 1;
                return Err(LoadError::Full);
            }
        };
        // Keep the item's CAS (clients may hold it for a `cas`), and never
        // hand it out again: the sequence moves past every loaded value.
        if self.cas_enabled && item.cas != 0 {
            self.slab.get_mut(i).set_cas(item.cas);
            let seq = (item.cas - 1) / self.shard_count + 1;
            self.cas_seq = self.cas_seq.max(seq);
        }
        self.slab.get_mut(i).time = item.last_access.min(now);
        Ok(())
    }
}
