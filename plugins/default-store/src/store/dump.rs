//! ABI v3 item dump and load: how a shard's items move to a new instance
//! (possibly of another plugin) when the server swaps plugins.
//!
//! The dump walks the main queue and then the small queue, each from its
//! oldest segment: the order in which eviction would reach them. A loading
//! store of this kind puts every item at its small queue's head in that
//! order, so the items it would evict first are again the ones the dump
//! wrote first. Each item's frequency travels in the record's `refs` (ABI
//! v7) and the FETCHED mark in its iflags.

use super::{Extra, NoMemory, Store, Value, MAX_KEY};
use crate::hash::hash;
use crate::item::{bit, ext, View};
use crate::log::Queue;
use wasmcached_sdk::abi::{iflag, Item};
use wasmcached_sdk::guest::{self, DumpWriter, LoadError};

/// The marks an item record carries, and their record `iflags`.
const CARRIED: [(u8, u8); 3] = [
    (ext::STALE, iflag::STALE),
    (ext::TOKEN_SENT, iflag::TOKEN_SENT),
    (ext::KEY_BINARY, iflag::KEY_BINARY),
];

/// An item's record `iflags`.
pub(super) fn iflags_of(e: &View<'_>) -> u8 {
    let mut f = if e.has(bit::FETCHED) {
        iflag::FETCHED
    } else {
        0
    };
    for (m, i) in CARRIED {
        if e.has_ext(m) {
            f |= i;
        }
    }
    f
}

impl Store {
    /// The segments in dump order.
    fn dump_order(&self) -> Vec<u32> {
        self.log
            .queue(Queue::Main)
            .chain(self.log.queue(Queue::Small))
            .collect()
    }

    /// Writes the next items of the dump into `out`. The cursor is the
    /// segment's place in [`Store::dump_order`] and the offset in it, plus
    /// 1 so that 0 means the dump starts; the host calls nothing else during
    /// a dump, so nothing moves in between. Only reads.
    pub fn dump(&mut self, out: &mut DumpWriter<'_>) -> bool {
        let now = guest::now();
        let order = self.dump_order();
        let c = out.cursor().saturating_sub(1);
        let (mut n, mut off) = ((c >> 32) as usize, (c & u64::from(u32::MAX)) as usize);
        while n < order.len() {
            let s = order[n];
            let mut next = off;
            while let Some(i) = self.log.next_item(s, &mut next) {
                let e = self.log.view(i, self.casm);
                if !self.is_dead(&e, now) {
                    let item = Item {
                        key: e.key(),
                        value: e.value(),
                        client_flags: e.client_flags(),
                        exptime: e.exptime(),
                        cas: e.cas,
                        last_access: e.time,
                        iflags: iflags_of(&e),
                        refs: e.refs(),
                    };
                    if !out.item(&item) {
                        out.set_cursor((((n as u64) << 32) | off as u64) + 1);
                        return true;
                    }
                }
                off = next;
            }
            n += 1;
            off = 0;
        }
        out.set_cursor(((order.len() as u64) << 32) + 1);
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
        let mut bits = item.refs.min(self.tuning.freq_max) << bit::REF_SHIFT;
        if item.iflags & iflag::FETCHED != 0 {
            bits |= bit::FETCHED;
        }
        let mut marks = 0;
        for (m, f) in CARRIED {
            if item.iflags & f != 0 {
                marks |= m;
            }
        }
        // Keep the item's CAS (clients may hold it for a `cas`), and never
        // hand it out again: new items are written past it in the log.
        let cas = Some(item.cas).filter(|&c| c != 0 && self.cas_enabled);
        if let Some(c) = cas {
            let pos = ((c - 1) / self.shard_count + 1) * 8;
            self.pos_floor = self.pos_floor.max(pos);
        }
        let x = Extra {
            bits,
            marks,
            cas,
            same: false,
        };
        // The last access is kept as far as the log can: a loaded item's
        // time counts from its segment's opening, so an older access reads
        // as that moment (a smaller `la`, never a larger one).
        let stored = self.put(
            key,
            h,
            old,
            Value::Plain(item.value),
            item.client_flags,
            item.exptime,
            item.last_access.min(now),
            x,
        );
        if let Err(NoMemory) = stored {
            let class = self
                .classes
                .of(key.len(), item.value.len(), item.client_flags);
            self.classes.class[class].outofmemory += 1;
            return Err(LoadError::Full);
        }
        Ok(())
    }
}
