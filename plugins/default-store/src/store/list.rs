//! ABI v5 item listing (`wmc_iter`): memcached's `lru_crawler metadump` and
//! `stats cachedump` read the store through it.
//!
//! The walk goes through the items in log order (oldest write first); the
//! cursor is the log position of the next item to look at, plus 1 (so that
//! 0 stays "start" to the host). Positions only grow, so an item that stays
//! where it is for the whole walk is listed once; one that moves meanwhile
//! (eviction's second chance, a compaction) moves to a higher position and
//! may be listed twice. While a listing is under way the background
//! compaction pauses (see [`LISTING_QUIET_SECS`]), so only a store that
//! evicts mid-walk moves items. Nothing is touched: no frequency, no access
//! time, no expiry.

use super::dump::iflags_of;
use super::Store;
use crate::log::Queue;
use crate::mem::memcached_ntotal;
use wasmcached_sdk::abi::ItemMeta;
use wasmcached_sdk::guest::{self, IterWriter};

/// Items (and holes) one call looks at, at most: a fraction of a
/// millisecond.
pub const LIST_ITEMS_PER_CALL: u32 = 16 * 1024;

/// How long after handing out a cursor the background slice waits before it
/// compacts segments again: the host asks for the next chunk as soon as the
/// client has read the last one, so a listing that is still going calls at
/// least this often unless its client stalls.
pub const LISTING_QUIET_SECS: u32 = 10;

impl Store {
    /// Writes the next items of a listing into `out`; see the module doc.
    pub fn list(&mut self, out: &mut IterWriter<'_>) -> bool {
        let now = guest::now();
        let from = out.cursor().saturating_sub(1);
        let mut segs: Vec<u32> = self
            .log
            .queue(Queue::Main)
            .chain(self.log.queue(Queue::Small))
            .filter(|&s| {
                let seg = &self.log.segs[s as usize];
                seg.base + seg.buf.len() as u64 > from
            })
            .collect();
        segs.sort_by_key(|&s| self.log.segs[s as usize].base);
        let mut looked = 0;
        for s in segs {
            let seg = &self.log.segs[s as usize];
            let mut off = from.saturating_sub(seg.base) as usize;
            while off < self.log.segs[s as usize].buf.len() {
                if looked == LIST_ITEMS_PER_CALL {
                    let pos = self.log.segs[s as usize].base + off as u64;
                    out.set_cursor(pos + 1);
                    self.listing_until = now.saturating_add(LISTING_QUIET_SECS);
                    return true;
                }
                let b = &self.log.segs[s as usize].buf[off..];
                looked += 1;
                if let Some(n) = crate::item::hole_len(b) {
                    off += n;
                    continue;
                }
                let i = self.log.handle(s, off);
                let total = crate::item::header(b).total();
                let e = self.log.view(i, self.casm);
                if !self.is_dead(&e, now) {
                    let value_len = e.value().len();
                    let size = memcached_ntotal(
                        e.key().len(),
                        value_len,
                        e.client_flags(),
                        self.cas_enabled,
                    );
                    let meta = ItemMeta {
                        key: e.key(),
                        exptime: e.exptime(),
                        last_access: e.time,
                        cas: e.cas,
                        client_flags: e.client_flags(),
                        value_len: value_len as u32,
                        size: size.min(u64::from(u32::MAX)) as u32,
                        iflags: iflags_of(&e),
                        // memcached's class for the item under this server's
                        // -n / -f / slab settings (see `store::classes`).
                        class: self.classes.of_entry(&e) as u8,
                    };
                    if !out.item(&meta) {
                        let pos = self.log.segs[s as usize].base + off as u64;
                        out.set_cursor(pos + 1);
                        self.listing_until = now.saturating_add(LISTING_QUIET_SECS);
                        return true;
                    }
                }
                off += total;
            }
        }
        out.set_cursor(0);
        true
    }

    /// Whether a listing called within the last [`LISTING_QUIET_SECS`].
    pub(super) fn listing(&self, now: u32) -> bool {
        now <= self.listing_until
    }
}
