//! ABI v5 item listing (`wmc_iter`): memcached's `lru_crawler metadump` and
//! `stats cachedump` read the store through it.
//!
//! The walk goes through the slots in slot order; the cursor is the next
//! slot to look at, plus 1 (so that 0 stays "start" to the host and a walk
//! under way never hands back 0). Nothing is touched: no CLOCK counter, no
//! access time, no expiry. Items do not change slots while they live, so an
//! item that stays stored for the whole walk is listed once, with one
//! exception the store avoids: the background slice, which empties the last
//! slot chunk by moving its items down, pauses while a listing is under way
//! (see [`LISTING_QUIET_SECS`]). Only a store that runs out of memory
//! mid-walk still compacts, and may then miss items it moved behind the
//! cursor.

use super::dump::CARRIED;
use super::Store;
use crate::mem::memcached_ntotal;
use wasmcached_sdk::abi::ItemMeta;
use wasmcached_sdk::guest::{self, IterWriter};

/// Slots one call looks at, at most: a fraction of a millisecond.
pub const LIST_SLOTS_PER_CALL: u32 = 16 * 1024;

/// How long after handing out a cursor the background slice waits before it
/// compacts the slot table again: the host asks for the next chunk as soon
/// as the client has read the last one, so a listing that is still going
/// calls at least this often unless its client stalls.
pub const LISTING_QUIET_SECS: u32 = 10;

impl Store {
    /// Writes the next items of a listing into `out`; see the module doc.
    pub fn list(&mut self, out: &mut IterWriter<'_>) -> bool {
        let now = guest::now();
        let cap = self.slab.capacity() as u64;
        let mut slot = out.cursor().saturating_sub(1);
        let end = (slot + u64::from(LIST_SLOTS_PER_CALL)).min(cap);
        while slot < end {
            let e = self.slab.get(slot as u32);
            if e.is_live() && !self.is_dead(e, now) {
                let mut iflags = 0;
                for (b, f) in CARRIED {
                    if e.has(b) {
                        iflags |= f;
                    }
                }
                let value_len = e.value().len();
                let size =
                    memcached_ntotal(e.key().len(), value_len, e.client_flags(), self.cas_enabled);
                let meta = ItemMeta {
                    key: e.key(),
                    exptime: e.exptime,
                    last_access: e.time,
                    cas: e.cas(),
                    client_flags: e.client_flags(),
                    value_len: value_len as u32,
                    size: size.min(u64::from(u32::MAX)) as u32,
                    iflags,
                    // memcached's class for the item under this server's
                    // -n / -f / slab settings (see `store::classes`).
                    class: self.classes.of_entry(e) as u8,
                };
                if !out.item(&meta) {
                    break;
                }
            }
            slot += 1;
        }
        if slot >= cap {
            out.set_cursor(0);
        } else {
            // A listing is under way until the host comes back with this.
            out.set_cursor(slot + 1);
            self.listing_until = now.saturating_add(LISTING_QUIET_SECS);
        }
        true
    }

    /// Whether a listing called within the last [`LISTING_QUIET_SECS`].
    pub(super) fn listing(&self, now: u32) -> bool {
        now <= self.listing_until
    }
}
