//! Writing items into the log: a new item (`put`), an item copied forward
//! with its CAS (`relocate`, for fields its header has no room for and for
//! eviction's second chances), and an item's death (`kill`).

use super::{NoMemory, Store, Value, NIL};
use crate::hash::hash;
use crate::item::{bit, header, Header, New, View, MAX_HEADER};
use crate::log::Queue;
use wasmcached_sdk::guest;

/// What a new item starts with beyond its key, value, flags and exptime.
#[derive(Clone, Copy, Default)]
pub(super) struct Extra {
    /// FETCHED and the frequency.
    pub bits: u8,
    /// The `ext` marks.
    pub marks: u8,
    /// A CAS value to keep (a loaded item) instead of a fresh one.
    pub cas: Option<u64>,
    /// The same item with a new CAS (an in-place incr, md with I), not a
    /// new one: memcached's `total_items` does not count it.
    pub same: bool,
}

/// An item's fields that a copy may change.
#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub exptime: u32,
    pub marks: u8,
    /// FETCHED and the frequency.
    pub state: u8,
    /// Last access, server time.
    pub time: u32,
}

impl Fields {
    pub fn of(e: &View<'_>) -> Fields {
        Fields {
            exptime: e.exptime(),
            marks: e.hdr.ext,
            state: e.hdr.bits & bit::STATE,
            time: e.time,
        }
    }
}

/// Bytes memcached's `bytes` counts for an item: its log bytes and its
/// out-of-line value.
fn size_of(hdr: &Header) -> u64 {
    hdr.total() as u64
        + if hdr.has(bit::LARGE) {
            u64::from(hdr.vlen)
        } else {
            0
        }
}

impl Store {
    pub(super) fn set_bits(&mut self, i: u32, bits: u8) {
        self.log.at_mut(i)[0] = bits;
    }

    /// Records an access at `now`. The header keeps the time relative to
    /// its segment's opening in 16 bits; an item read more than 18 hours
    /// after its segment opened moves forward to keep it exact. Returns
    /// where the item is.
    pub(super) fn set_time(&mut self, i: u32, now: u32) -> u32 {
        let at = header(self.log.at(i)).atime_at.into();
        self.set_time_at(i, at, now)
    }

    /// [`Store::set_time`] with the access time's offset in the header known.
    pub(super) fn set_time_at(&mut self, i: u32, at: usize, now: u32) -> u32 {
        let created = self.log.seg_of(i).created;
        let delta = now.saturating_sub(created);
        if let Ok(d) = u16::try_from(delta) {
            self.log.at_mut(i)[at..at + 2].copy_from_slice(&d.to_le_bytes());
            return i;
        }
        let mut f = self.fields(i);
        f.time = now;
        match self.relocate(i, Queue::Main, f) {
            Ok(j) => j,
            Err(NoMemory) => {
                self.log.at_mut(i)[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
                i
            }
        }
    }

    pub(super) fn fields(&self, i: u32) -> Fields {
        Fields::of(&self.log.view(i, self.casm))
    }

    /// Sets an item's exptime and marks (`ext`), in place when its header
    /// has room for them, else by moving it. `None`: no memory to move it.
    pub(super) fn rewrite_fields(&mut self, i: u32, exptime: u32, marks: u8) -> Option<u32> {
        let hdr = header(self.log.at(i));
        let exp_fits = hdr.has(bit::HAS_EXP) || exptime == 0;
        let marks_fit = hdr.has(bit::EXT) || marks == 0;
        if exp_fits && marks_fit {
            let b = self.log.at_mut(i);
            if hdr.has(bit::HAS_EXP) {
                let at = hdr.exp_at as usize;
                b[at..at + 4].copy_from_slice(&exptime.to_le_bytes());
            }
            if hdr.has(bit::EXT) {
                b[hdr.ext_at as usize] = marks;
            }
            return Some(i);
        }
        let mut f = self.fields(i);
        f.exptime = exptime;
        f.marks = marks;
        self.relocate(i, Queue::Main, f).ok()
    }

    /// Gives an item a new CAS value, keeping it otherwise (md with I): a
    /// new CAS is a new place in the log.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn renew(
        &mut self,
        i: u32,
        h: u64,
        exptime: u32,
        marks: u8,
        state: u8,
        now: u32,
    ) -> Result<u32, NoMemory> {
        let flags = self.log.view(i, self.casm).client_flags();
        let key = self.log.view(i, self.casm).key().to_vec();
        let (j, _) = self.put(
            &key,
            h,
            Some(i),
            Value::Append(&[]),
            flags,
            exptime,
            now,
            Extra {
                bits: state,
                marks,
                cas: None,
                same: true,
            },
        )?;
        Ok(j)
    }

    /// Copies item `i` to the head of `q` with its CAS and the given fields,
    /// making room first (and keeping `i` through it). Returns where it went.
    pub(super) fn relocate(&mut self, i: u32, q: Queue, f: Fields) -> Result<u32, NoMemory> {
        let total = self.moved_new(i, f).total();
        self.pinned = i;
        let ok = self.make_room(q, total, 0);
        let i = std::mem::replace(&mut self.pinned, NIL);
        if !ok {
            return Err(NoMemory);
        }
        Ok(self.copy_to(i, q, f))
    }

    fn moved_new(&self, i: u32, f: Fields) -> New {
        let e = self.log.view(i, self.casm);
        New {
            bits: f.state,
            ext: f.marks,
            klen: e.hdr.klen,
            vlen: e.hdr.vlen,
            large: e.has(bit::LARGE),
            atime: 0,
            cas: (e.cas != 0).then_some(e.cas),
            flags: e.client_flags(),
            exptime: f.exptime,
        }
    }

    /// Copies item `i` to the head of `q` (opening a segment there if it is
    /// full, whatever the budget: eviction calls this while it frees the
    /// segment `i` is in). The index and the counts follow.
    pub(super) fn copy_to(&mut self, i: u32, q: Queue, f: Fields) -> u32 {
        let mut n = self.moved_new(i, f);
        let total = n.total();
        if !self.log.fits_head(q, total) {
            // Out of heap: the caller's segment is about to be freed, so
            // this is at most one segment beyond what the budget allows.
            self.log
                .open(q, guest::now())
                .expect("heap for a segment while evicting");
        }
        let old = self.log.view(i, self.casm);
        self.classes.unlink(&old);
        let hdr = old.hdr;
        let body_at = hdr.key_at as usize;
        let body_len = hdr.klen as usize + hdr.inline_vlen();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(&self.log.at(i)[body_at..body_at + body_len]);
        let h = hash(&scratch[..hdr.klen as usize]);
        let created = self.log.seg_of_head(q).created;
        n.atime = f.time.saturating_sub(created).min(u32::from(u16::MAX)) as u16;
        let mut head = [0u8; MAX_HEADER];
        let at = n.write(&mut head);
        let j = self.log.append(q, total, &[&head[..at], &scratch]);
        self.scratch = scratch;
        self.index.replace(h, i, j);
        self.log.vacate(i, hdr.total());
        self.live_bytes = self.live_bytes - hdr.total() as u64 + total as u64;
        let e = self.log.view(j, self.casm);
        self.classes.link(&e);
        j
    }

    /// An item dies (its index entry is already gone).
    pub(super) fn kill(&mut self, i: u32) {
        let e = self.log.view(i, self.casm);
        self.classes.unlink(&e);
        let hdr = e.hdr;
        self.live -= 1;
        self.live_bytes -= size_of(&hdr);
        if let Some(n) = self.log.large_block(i, &hdr) {
            let held = self.held_large.contains(&n);
            self.log.drop_large(n, held);
        }
        self.log.vacate(i, hdr.total());
    }

    /// Item `i`'s value went to the host by reference: keep its bytes
    /// until `release_held`.
    pub(super) fn hold(&mut self, i: u32, large: bool) {
        if large {
            let hdr = header(self.log.at(i));
            if let Some(n) = self.log.large_block(i, &hdr) {
                self.held_large.push(n);
            }
        } else {
            let (s, _) = self.log.split(i);
            self.log.hold(s);
        }
    }

    /// The log position the next new item will have at least.
    pub(super) fn next_position(&self) -> u64 {
        let end = self.log.head(Queue::Small).map(|s| {
            let seg = &self.log.segs[s as usize];
            seg.base + seg.buf.len() as u64
        });
        end.unwrap_or(self.log.pos).max(self.pos_floor)
    }

    /// Writes a new item with a fresh CAS into the small queue's head,
    /// replacing `old` when given (memcached's `item_replace`: the new item
    /// starts unfetched with frequency 0 unless `bits` says otherwise).
    /// Returns where it is and its CAS.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn put(
        &mut self,
        key: &[u8],
        h: u64,
        old: Option<u32>,
        value: Value<'_>,
        client_flags: u32,
        exptime: u32,
        now: u32,
        x: Extra,
    ) -> Result<(u32, u64), NoMemory> {
        let Extra {
            bits,
            marks,
            cas,
            same,
        } = x;
        let old_len = old.map_or(0, |i| self.log.view(i, self.casm).value().len());
        let vlen = match value {
            Value::Plain(v) => v.len(),
            Value::Append(v) | Value::Prepend(v) => old_len + v.len(),
        };
        let large = vlen > self.log.inline_max();
        let mut bits = bits & bit::STATE;
        // S3-FIFO's ghost: a key evicted too early comes back with a hit.
        if old.is_none() && self.ghost.take(h) {
            bits |= self.tuning.promote << bit::REF_SHIFT;
            crate::metrics::GHOST_HITS.inc();
        }
        let mut n = New {
            bits,
            ext: marks,
            klen: key.len() as u8,
            vlen: vlen as u32,
            large,
            atime: 0,
            cas,
            flags: client_flags,
            exptime,
        };
        let total = n.total();
        self.pinned = old.unwrap_or(NIL);
        let ok = self.make_room(Queue::Small, total, if large { vlen } else { 0 });
        let pinned = std::mem::replace(&mut self.pinned, NIL);
        if !ok {
            return Err(NoMemory);
        }
        let old = old.map(|_| pinned);
        // The old value, for append / prepend.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        if let (Some(o), Value::Append(_) | Value::Prepend(_)) = (old, value) {
            scratch.extend_from_slice(self.log.view(o, self.casm).value());
        }
        let (first, second): (&[u8], &[u8]) = match value {
            Value::Plain(v) => (v, &[]),
            Value::Append(v) => (&scratch, v),
            Value::Prepend(v) => (v, &scratch),
        };
        let block = if large {
            let mut v = Vec::new();
            if v.try_reserve_exact(vlen).is_err() {
                self.stats.malloc_fails += 1;
                self.scratch = scratch;
                return Err(NoMemory);
            }
            v.extend_from_slice(first);
            v.extend_from_slice(second);
            Some(self.log.put_large(v))
        } else {
            None
        };
        let created = self.log.seg_of_head(Queue::Small).created;
        n.atime = now.saturating_sub(created).min(u32::from(u16::MAX)) as u16;
        let mut head = [0u8; MAX_HEADER];
        let at = n.write(&mut head);
        let block = block.map(u32::to_le_bytes);
        let j = match &block {
            Some(no) => self
                .log
                .append(Queue::Small, total, &[&head[..at], key, no]),
            None => self
                .log
                .append(Queue::Small, total, &[&head[..at], key, first, second]),
        };
        self.scratch = scratch;
        match old {
            Some(o) => {
                self.index.replace(h, o, j);
                self.kill(o);
            }
            None => {
                self.index.insert(h, j);
                self.maintain_index(super::space::INSERT_MIGRATE);
            }
        }
        self.live += 1;
        let e = self.log.view(j, self.casm);
        self.live_bytes += size_of(&e.hdr);
        self.classes.link(&e);
        let cas = e.cas;
        if !same {
            self.stats.total_items += 1;
            crate::metrics::VALUE_BYTES.observe(vlen as u64);
        }
        Ok((j, cas))
    }
}
