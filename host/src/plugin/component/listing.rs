//! A component's item listing: the optional `iter` export of the world
//! `store-with-listing` (wit/store.wit), the component's form of the core
//! ABI's v5 `wmc_iter`. It is looked up by name, as `metrics` is, and its
//! answers are written as a `wmc_iter` chunk, so the listing code above the
//! shard (listing.rs, worker/listing.rs) reads both kinds of plugin alike.

use super::{flush_stdio, optional_export, DumpPos, Guest};
use crate::plugin::imports::ShardCtx;
use anyhow::{bail, Result};
use wasmcached_abi::{self as abi, ItemMeta};
use wasmtime::component::{ComponentType, Func, Instance, Lift, TypedFunc};
use wasmtime::Store;

/// The export's name.
const EXPORT: &str = "iter";
/// The longest key a record carries (memcached's KEY_MAX_LENGTH).
const KEY_MAX: usize = 250;
/// A listed record's usual size, to turn the host's byte budget for a
/// chunk into the world's count of items: a 48-byte record (32 bytes of
/// ABI header and a typical key) per item.
const RECORD_GUESS: usize = 48;

/// `listing-types.listed-item`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub(in crate::plugin) struct ListedItem {
    key: Vec<u8>,
    exptime: u32,
    #[component(name = "last-access")]
    last_access: u32,
    cas: u64,
    #[component(name = "client-flags")]
    client_flags: u32,
    #[component(name = "value-len")]
    value_len: u32,
    size: u32,
    iflags: u8,
    class: u8,
}

/// The `iter` export's type.
type IterFn = TypedFunc<(u64, u32), (Option<(u64, Vec<ListedItem>)>,)>;

impl Guest {
    /// The instance's `iter` export if it lists: `None` when it has none or
    /// answers none to the probe `iter(0, 0)`, an error when it has one of
    /// another type (as a core module's export of the wrong signature is
    /// refused). Called after `init`.
    pub(super) fn find_iter(
        instance: &Instance,
        store: &mut Store<ShardCtx>,
    ) -> Result<Option<Func>> {
        let Some(f): Option<IterFn> = optional_export(instance, store, EXPORT)? else {
            return Ok(None);
        };
        let probe = f.call(&mut *store, (0, 0));
        flush_stdio(store);
        match probe {
            Ok((Some(_),)) => Ok(Some(*f.func())),
            Ok((None,)) => Ok(None),
            Err(e) => bail!("iter(0, 0), asked whether the plugin can list its items: {e:#}"),
        }
    }

    /// Whether the plugin lists its items.
    pub(in crate::plugin) fn lists(&self) -> bool {
        self.iter.is_some()
    }

    /// One step of a listing from `cursor`, about `max_bytes` of records:
    /// the cursor to go on from (0: done); the records are then in
    /// [`Guest::listed`], as a `wmc_iter` chunk. `None`: the plugin cannot
    /// list (no export, or it answered none). An answer the ABI would call
    /// malformed (a key of 0 or over 250 bytes, more items than asked for)
    /// is an error: the plugin's fault.
    pub(in crate::plugin) fn list(
        &mut self,
        store: &mut Store<ShardCtx>,
        cursor: u64,
        max_bytes: usize,
    ) -> Result<Option<u64>> {
        let Some(f) = self.iter else {
            return Ok(None);
        };
        self.dump = DumpPos::Start;
        self.tick_if_moved(store)?;
        // Checked at start (`find_iter`); the field holds an untyped `Func`
        // because `Guest`'s module cannot name this one's types.
        let f: IterFn = f.typed(&*store)?;
        let max = (max_bytes / RECORD_GUESS).clamp(1, u32::MAX as usize) as u32;
        let answer = f.call(&mut *store, (cursor, max));
        flush_stdio(store);
        let Some((next, items)) = answer?.0 else {
            return Ok(None);
        };
        encode(&items, max, next, &mut self.chunk)?;
        Ok(Some(next))
    }

    /// The records of the last [`Guest::list`] step, as a `wmc_iter` chunk.
    pub(in crate::plugin) fn listed(&self) -> &[u8] {
        &self.chunk
    }
}

/// Writes `items`, the answer to a call that asked for `max`, and the
/// cursor `next` as a `wmc_iter` chunk in `out`. An answer the ABI would
/// call malformed is an error.
fn encode(items: &[ListedItem], max: u32, next: u64, out: &mut Vec<u8>) -> Result<()> {
    if items.len() > max as usize {
        bail!("iter answered {} items, asked for {max}", items.len());
    }
    abi::begin_iter_chunk(out);
    for it in items {
        if it.key.is_empty() || it.key.len() > KEY_MAX {
            bail!("iter listed a key of {} bytes", it.key.len());
        }
        ItemMeta {
            key: &it.key,
            exptime: it.exptime,
            last_access: it.last_access,
            cas: it.cas,
            client_flags: it.client_flags,
            value_len: it.value_len,
            size: it.size,
            iflags: it.iflags & ItemMeta::IFLAGS,
            class: it.class,
        }
        .encode(out);
    }
    abi::finish_iter_chunk(out, items.len() as u32, next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &[u8], cas: u64) -> ListedItem {
        ListedItem {
            key: key.to_vec(),
            exptime: 7,
            last_access: 5,
            cas,
            client_flags: 0xdead_beef,
            value_len: 100,
            size: 0,
            iflags: 0xff,
            class: 3,
        }
    }

    #[test]
    fn listed_items_become_a_wmc_iter_chunk() {
        let mut out = Vec::new();
        encode(&[item(b"a", 1), item(&[b'k'; 250], 2)], 2, 99, &mut out).unwrap();
        assert_eq!(abi::check_iter_chunk(&out), Some((99, 2)));
        let (cursor, recs) = abi::iter_chunk(&out).unwrap();
        assert_eq!(cursor, 99);
        let recs: Vec<_> = recs.map(Option::unwrap).collect();
        assert_eq!(recs[0].key, b"a");
        assert_eq!(recs[1].key.len(), 250);
        let r = &recs[1];
        assert_eq!(
            (
                r.exptime,
                r.last_access,
                r.cas,
                r.client_flags,
                r.value_len,
                r.size,
                r.class
            ),
            (7, 5, 2, 0xdead_beef, 100, 0, 3)
        );
        // Bits the record does not define are dropped, not passed on.
        assert_eq!(r.iflags, ItemMeta::IFLAGS);
        // An empty answer is an empty chunk, with its cursor.
        encode(&[], 0, 0, &mut out).unwrap();
        assert_eq!(abi::check_iter_chunk(&out), Some((0, 0)));
    }

    #[test]
    fn a_malformed_listing_is_an_error() {
        let mut out = Vec::new();
        for (items, max, why) in [
            (vec![item(b"", 1)], 1, "a key of 0 bytes"),
            (vec![item(&[b'k'; 251], 1)], 1, "a key of 251 bytes"),
            (
                vec![item(b"a", 1), item(b"b", 2)],
                1,
                "2 items, asked for 1",
            ),
        ] {
            let err = encode(&items, max, 0, &mut out).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
