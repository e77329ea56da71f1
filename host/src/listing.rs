//! Item listings: memcached's `lru_crawler metadump all|hash|<classes>` and
//! `stats cachedump <class> <limit>`, read from the plugins through the ABI
//! v5 item iteration (`wmc_iter`), one bounded chunk at a time.
//!
//! A listing is a [`Listing`] job that travels between workers: the worker of
//! the client's connection reserves one reply slot and sends the job to the
//! worker that owns shard 0 (`Msg::ListStep`); that worker makes one
//! `wmc_iter` call on the shard, renders the records as text lines and sends
//! the job back (`Msg::ListOut`); the connection's worker appends the lines to
//! the slot (which stays open) and sends the job on for the next chunk, shard
//! after shard, until the last one ends it with `END`. A shard is only ever
//! called by its owner, one chunk per message, so a listing of millions of
//! items never holds a worker for more than one guest call at a time; batches
//! of every connection keep running in between. The next chunk is asked for
//! only while the client has less than [`LIST_HIGH_WATER`] bytes of the
//! listing unread; past that the job waits in its worker until the socket
//! drains (`Worker::resume_listings` in worker/listing.rs).
//!
//! The listing is not a snapshot, as memcached's crawler is not: an item
//! stored or removed while it runs may or may not be listed.
//!
//! This module holds the job and its rendering (it travels in messages, so
//! it sits with them, below the command layer); the text commands start a
//! listing (`proto::text_cmd`), the workers run its steps
//! (`worker::listing`).

use crate::conn::Ticket;
use crate::settings::Settings;
use wasmcached_abi::fmt_u64;
use wasmcached_abi::{iflag, ItemMeta};
use wasmcached_protocol::text::{reply, Limits, MAX_NUMBER_OF_SLAB_CLASSES};

/// Unread listing output past which the next chunk waits for the client.
pub const LIST_HIGH_WATER: usize = 256 << 10;

/// memcached's cap on one `stats cachedump` answer (`item_cachedump`'s
/// `memlimit`): lines stop when the next one and `END\r\n\0` would not fit.
pub const CACHEDUMP_MAX_BYTES: usize = 2 << 20;

/// Whether `lru_crawler metadump` and `stats cachedump` may run: not with
/// `-X` (disable dumping). The one place that decides it.
pub fn dump_allowed(settings: &Settings) -> bool {
    settings.dump_enabled
}

/// Which listing, and what it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `lru_crawler metadump`: the items of the classes whose bit is set
    /// (`all` and `hash` set every bit: there is one walk either way).
    Metadump { classes: u64 },
    /// `stats cachedump <class> <limit>` (limit 0: no limit).
    Cachedump { class: u32, limit: u32 },
}

/// How a listing ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Nothing more to list (every shard walked, or a cachedump's limit).
    Done,
    /// The plugin cannot list: memcached's refusal instead of the listing.
    Unsupported,
}

/// One listing under way; see the module doc.
pub struct Listing {
    pub(crate) kind: Kind,
    /// The connection's worker and reply slot.
    pub(crate) origin: usize,
    pub(crate) ticket: Ticket,
    /// The shard being walked, and where its walk goes on.
    pub(crate) shard: u32,
    pub(crate) cursor: u64,
    /// The generation of the shard's instance the cursor belongs to (a
    /// restarted or reloaded instance does not know it): `None` before the
    /// first chunk of the shard.
    pub(crate) generation: Option<u64>,
    /// Lines rendered by the shard's owner, on their way to the client.
    pub(crate) out: Vec<u8>,
    /// cachedump: items and bytes shown so far.
    pub(crate) shown: u64,
    pub(crate) bytes: usize,
    pub(crate) end: Option<End>,
}

impl Listing {
    /// A listing that starts at shard 0, for the connection of `ticket` on
    /// worker `origin`.
    pub fn new(kind: Kind, origin: usize, ticket: Ticket) -> Listing {
        Listing {
            kind,
            origin,
            ticket,
            shard: 0,
            cursor: 0,
            generation: None,
            out: Vec::new(),
            shown: 0,
            bytes: 0,
            end: None,
        }
    }

    pub fn refusal(&self) -> &'static str {
        match self.kind {
            Kind::Metadump { .. } => reply::METADUMP_NOT_ALLOWED,
            Kind::Cachedump { .. } => reply::CACHEDUMP_NOT_ALLOWED,
        }
    }
}

/// memcached's `lru_crawler_crawl` class list: `all`, `hash`, or class ids
/// 1..=63 separated by commas (empty parts skipped, as `strtok` does). A
/// list with no id at all starts nothing.
pub fn parse_classes(token: &[u8]) -> Result<u64, &'static str> {
    if token == b"all" || token == b"hash" {
        return Ok(u64::MAX);
    }
    let mut classes = 0u64;
    for part in token.split(|&b| b == b',').filter(|p| !p.is_empty()) {
        match wasmcached_protocol::num::safe_strtoul(part) {
            Some(id) if (1..MAX_NUMBER_OF_SLAB_CLASSES).contains(&id) => classes |= 1 << id,
            _ => return Err("BADCLASS invalid class id"),
        }
    }
    if classes == 0 {
        return Err("NOTSTARTED no items to crawl");
    }
    Ok(classes)
}

/// Renders the records of a checked `wmc_iter` chunk as the listing's lines.
pub fn render_chunk(job: &mut Listing, chunk: &[u8], limits: &Limits, started: i64) {
    let Some((_, recs)) = wasmcached_abi::iter_chunk(chunk) else {
        return;
    };
    for rec in recs.flatten() {
        let size = if rec.size != 0 {
            rec.size as usize
        } else {
            limits.item_size(rec.key.len(), rec.client_flags, rec.value_len as usize + 2)
        };
        let class = if rec.class != 0 {
            u32::from(rec.class)
        } else {
            wasmcached_protocol::limits::slab_class(size)
        };
        match job.kind {
            Kind::Metadump { classes } => {
                if class < 64 && classes & (1 << class) != 0 {
                    metadump_line(&mut job.out, &rec, class, size, started);
                }
            }
            Kind::Cachedump { class: want, limit } => {
                if class != want || rec.iflags & iflag::KEY_BINARY != 0 {
                    continue;
                }
                let start = job.out.len();
                cachedump_line(&mut job.out, &rec, started);
                let len = job.out.len() - start;
                if job.bytes + len + 6 > CACHEDUMP_MAX_BYTES {
                    job.out.truncate(start);
                    job.end = Some(End::Done);
                    return;
                }
                job.bytes += len;
                job.shown += 1;
                if limit != 0 && job.shown >= u64::from(limit) {
                    job.end = Some(End::Done);
                    return;
                }
            }
        }
    }
}

/// A server time as memcached prints it: unix time.
fn unix(t: u32, started: i64) -> i64 {
    i64::from(t) + started
}

/// memcached 1.6.18's metadump line (crawler.c): `key=<uriencoded key>
/// exp=<unix time, -1 for never> la=<unix time> cas=<n> fetch=<yes|no>
/// cls=<n> size=<n>`, ended by a bare `\n`.
pub fn metadump_line(out: &mut Vec<u8>, rec: &ItemMeta<'_>, class: u32, size: usize, started: i64) {
    out.extend_from_slice(b"key=");
    uriencode(rec.key, out);
    let exp = if rec.exptime == 0 {
        -1
    } else {
        unix(rec.exptime, started)
    };
    let fetch = if rec.iflags & iflag::FETCHED != 0 {
        "yes"
    } else {
        "no"
    };
    out.extend_from_slice(
        format!(
            " exp={exp} la={} cas={} fetch={fetch} cls={class} size={size}\n",
            unix(rec.last_access, started),
            rec.cas
        )
        .as_bytes(),
    );
}

/// memcached 1.6.18's cachedump line (items.c `item_cachedump`):
/// `ITEM <key> [<value bytes> b; <exptime as unix time, 0 for never> s]`.
pub fn cachedump_line(out: &mut Vec<u8>, rec: &ItemMeta<'_>, started: i64) {
    let mut num = [0u8; 20];
    out.extend_from_slice(b"ITEM ");
    out.extend_from_slice(rec.key);
    out.extend_from_slice(b" [");
    out.extend_from_slice(fmt_u64(u64::from(rec.value_len), &mut num));
    out.extend_from_slice(b" b; ");
    let exp = if rec.exptime == 0 {
        0
    } else {
        unix(rec.exptime, started).max(0) as u64
    };
    out.extend_from_slice(fmt_u64(exp, &mut num));
    out.extend_from_slice(b" s]\r\n");
}

/// memcached's `uriencode`: letters, digits and `-._~` as they are, every
/// other byte as `%XX` (upper-case hex).
pub fn uriencode(key: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_follow_memcached() {
        assert_eq!(parse_classes(b"all"), Ok(u64::MAX));
        assert_eq!(parse_classes(b"hash"), Ok(u64::MAX));
        assert_eq!(parse_classes(b"1"), Ok(1 << 1));
        assert_eq!(parse_classes(b"1,,63,"), Ok(1 << 1 | 1 << 63));
        // strtoul's leading '+' and zeros, and its 32-bit truncation.
        assert_eq!(parse_classes(b"+2,03"), Ok(1 << 2 | 1 << 3));
        assert_eq!(parse_classes(b"4294967297"), Ok(1 << 1));
        for bad in [
            &b"0"[..],
            b"64",
            b"x",
            b"1,x",
            b"all,1",
            b"ALL",
            b"-1",
            b"1,0",
        ] {
            assert_eq!(
                parse_classes(bad),
                Err("BADCLASS invalid class id"),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_classes(b","), Err("NOTSTARTED no items to crawl"));
    }

    #[test]
    fn lines_are_memcached_s() {
        let started = 1_700_000_000;
        let rec = ItemMeta {
            key: b"a%20b/\xff~",
            exptime: 100,
            last_access: 50,
            cas: 7,
            client_flags: 5,
            value_len: 3,
            size: 0,
            iflags: iflag::FETCHED,
            class: 0,
        };
        let mut out = Vec::new();
        metadump_line(&mut out, &rec, 1, 69, started);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "key=a%2520b%2F%FF~ exp=1700000100 la=1700000050 cas=7 fetch=yes cls=1 size=69\n"
        );
        let never = ItemMeta {
            exptime: 0,
            iflags: 0,
            ..rec.clone()
        };
        let mut out = Vec::new();
        metadump_line(&mut out, &never, 12, 1184, started);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(" exp=-1 la=1700000050 cas=7 fetch=no cls=12 size=1184\n"));
        let mut out = Vec::new();
        cachedump_line(
            &mut out,
            &ItemMeta {
                key: b"k2",
                ..rec.clone()
            },
            started,
        );
        cachedump_line(
            &mut out,
            &ItemMeta {
                key: b"k3",
                ..never
            },
            started,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ITEM k2 [3 b; 1700000100 s]\r\nITEM k3 [3 b; 0 s]\r\n"
        );
    }

    fn job(kind: Kind) -> Listing {
        Listing::new(kind, 0, Ticket::DISCARD)
    }

    fn chunk(recs: &[ItemMeta<'_>]) -> Vec<u8> {
        let mut c = Vec::new();
        wasmcached_abi::begin_iter_chunk(&mut c);
        for r in recs {
            r.encode(&mut c);
        }
        wasmcached_abi::finish_iter_chunk(&mut c, recs.len() as u32, 0);
        c
    }

    #[test]
    fn chunks_are_filtered_by_class_and_cachedump_stops_at_its_limits() {
        let limits = Limits {
            item_size_max: 1 << 20,
            cas_enabled: true,
        };
        let small = ItemMeta {
            key: b"small",
            value_len: 1,
            ..Default::default()
        };
        let big = ItemMeta {
            key: b"big",
            value_len: 2000,
            ..Default::default()
        };
        let own = ItemMeta {
            key: b"own",
            value_len: 1,
            size: 4000,
            class: 5,
            ..Default::default()
        };
        let bin = ItemMeta {
            key: b"bin",
            iflags: iflag::KEY_BINARY,
            ..small.clone()
        };
        let c = chunk(&[small.clone(), big, own, bin]);
        let mut j = job(Kind::Metadump { classes: 1 << 1 });
        render_chunk(&mut j, &c, &limits, 0);
        let text = String::from_utf8(j.out.clone()).unwrap();
        // The host's size (memcached's ITEM_ntotal) and class when the
        // plugin gives none; the plugin's own when it does.
        assert_eq!(
            text,
            "key=small exp=-1 la=0 cas=0 fetch=no cls=1 size=65\n\
             key=bin exp=-1 la=0 cas=0 fetch=no cls=1 size=63\n"
        );
        let mut j = job(Kind::Metadump { classes: u64::MAX });
        render_chunk(&mut j, &c, &limits, 0);
        let text = String::from_utf8(j.out).unwrap();
        assert!(text.contains("key=big exp=-1 la=0 cas=0 fetch=no cls=15 size=2062\n"));
        assert!(text.contains("key=own exp=-1 la=0 cas=0 fetch=no cls=5 size=4000\n"));
        assert_eq!(j.end, None);

        // cachedump: one class, binary keys left out, then the limit.
        let mut j = job(Kind::Cachedump { class: 1, limit: 0 });
        render_chunk(&mut j, &c, &limits, 0);
        assert_eq!(j.out, b"ITEM small [1 b; 0 s]\r\n");
        let many: Vec<ItemMeta<'_>> = (0..10).map(|_| small.clone()).collect();
        let mut j = job(Kind::Cachedump { class: 1, limit: 3 });
        render_chunk(&mut j, &chunk(&many), &limits, 0);
        assert_eq!((j.shown, j.end), (3, Some(End::Done)));
        // And memcached's 2 MB cap.
        let line = b"ITEM small [1 b; 0 s]\r\n".len();
        let mut j = job(Kind::Cachedump { class: 1, limit: 0 });
        j.bytes = CACHEDUMP_MAX_BYTES - 6 - 2 * line;
        render_chunk(&mut j, &chunk(&many), &limits, 0);
        assert_eq!(
            (j.shown, j.end, j.out.len()),
            (2, Some(End::Done), 2 * line)
        );
    }
}
