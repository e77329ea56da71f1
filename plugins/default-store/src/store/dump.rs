//! ABI v3 item dump and load: how a shard's items move to a new instance
//! (possibly of another plugin) when the server swaps plugins.
//!
//! The dump walks the probation list and then the protected list, each from
//! its tail (least recently used) to its head, so that loading the records in
//! order rebuilds the recency order: the last item loaded is the newest.
//! The protected (warm) state itself is not carried over; warm items come
//! last and so land at the probation head, the safest place.

use super::{NoMemory, Store, Value, MAX_KEY};
use crate::hash::hash;
use crate::lru::{COLD, WARM};
use crate::slab::{bit, Entry, NIL};
use wasmcached_sdk::abi::{iflag, Item};
use wasmcached_sdk::guest::{self, DumpWriter, LoadError};

/// The entry bits an item record carries, and their record `iflags`.
const CARRIED: [(u8, u8); 4] = [
    (bit::FETCHED, iflag::FETCHED),
    (bit::STALE, iflag::STALE),
    (bit::TOKEN_SENT, iflag::TOKEN_SENT),
    (bit::KEY_BINARY, iflag::KEY_BINARY),
];

/// The dump cursor: which list (1 probation, 2 protected) and the next slot
/// to write, walking towards the head. 0 = the dump starts.
fn cursor(list: usize, slot: u32) -> u64 {
    ((list as u64 + 1) << 32) | u64::from(slot)
}

impl Store {
    /// Whether an item is dead for a dump: expired or flushed (the same
    /// tests as a lookup).
    fn is_dead(&self, e: &Entry, now: u32) -> bool {
        (e.exptime != 0 && e.exptime <= now) || self.is_flushed(e, now)
    }

    /// Writes the next items of the dump into `out`; see [`cursor`]. Only
    /// reads: an interrupted dump leaves the store as it was.
    pub fn dump(&mut self, out: &mut DumpWriter<'_>) -> bool {
        let now = guest::now();
        let (mut list, mut i) = match out.cursor() {
            0 => (COLD, self.lru.tail(COLD)),
            c => (((c >> 32) as usize).saturating_sub(1).min(WARM), c as u32),
        };
        loop {
            if i == NIL {
                if list == COLD {
                    list = WARM;
                    i = self.lru.tail(WARM);
                    continue;
                }
                out.set_cursor(cursor(WARM, NIL));
                return true;
            }
            let e = self.slab.get(i);
            if !self.is_dead(e, now) {
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
                };
                if !out.item(&item) {
                    out.set_cursor(cursor(list, i));
                    return true;
                }
            }
            i = e.prev;
        }
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
        let mut bits = 0;
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
        if let Err(NoMemory) = stored {
            self.stats.outofmemory += 1;
            return Err(LoadError::Full);
        }
        let i = self
            .index
            .find(&self.slab, h, key)
            .expect("an item just stored is indexed");
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
