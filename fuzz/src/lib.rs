//! The checks behind the fuzz targets in `fuzz_targets/` (one module per
//! target), kept in a library so the targets stay one line each and the
//! drivers can be reused (the UDP target runs the text driver on a
//! datagram's payload).
//!
//! Every driver feeds bytes to a parser the way the host does (the worker's
//! framing loop itself, `binary_cmd::step`, `Shard::batch`, the guest SDK's runtime)
//! and asserts the invariants the caller relies on: no panic, `consumed`
//! within the buffer and non-zero, `need` beyond what is buffered, decided
//! results that do not change when more bytes arrive, and re-encoding round
//! trips for the ABI records.

use wasmcached_protocol::frame::{self, Protocol, Rest, Step};
use wasmcached_protocol::text::Limits;

/// Limits picked by a config byte: `-I` of 1 KiB, 1 MiB (memcached's default),
/// 2 MiB or 1 GiB, with or without CAS (`-C`).
pub fn limits(cfg: u8) -> Limits {
    const SIZES: [usize; 4] = [1024, 1 << 20, 2 << 20, 1 << 30];
    Limits {
        item_size_max: SIZES[(cfg & 3) as usize],
        cas_enabled: cfg & 4 == 0,
    }
}

/// How many bytes arrive per read, picked by a config byte (bits 3..8): all
/// at once, or 1..=961 bytes at a time.
pub fn read_size(cfg: u8) -> usize {
    match (cfg >> 3) as usize {
        0 => usize::MAX,
        n => n * n,
    }
}

/// Feeds `stream` through the framing loop the worker runs
/// (`wasmcached_protocol::frame::run`), `read` bytes arriving at a time:
/// swallowed data blocks, incomplete commands and the protocol chosen by the
/// first byte (`protocol` `None`, as under `-B auto`) are the loop's own.
/// `step` gets each command's protocol, its buffered bytes and, to check
/// that decisions are final, everything that will ever arrive.
fn drive(
    stream: &[u8],
    read: usize,
    mut protocol: Option<Protocol>,
    step: impl FnMut(Protocol, &[u8], &[u8]) -> Step,
) {
    struct Check<'s, F> {
        stream: &'s [u8],
        /// Bytes of `stream` arrived so far; the input always ends there.
        avail: usize,
        step: F,
    }
    impl<F: FnMut(Protocol, &[u8], &[u8]) -> Step> frame::Sink for Check<'_, F> {
        fn command(&mut self, protocol: Protocol, input: &[u8]) -> Step {
            let full = &self.stream[self.avail - input.len()..];
            let s = (self.step)(protocol, input, full);
            if let Step::Done { consumed, .. } = s {
                // Progress: every decided command drops at least one byte.
                assert!(consumed > 0 && consumed <= input.len());
            }
            s
        }
    }
    let mut check = Check {
        stream,
        avail: read.min(stream.len()),
        step,
    };
    let mut start = 0usize;
    let mut swallow = 0usize;
    loop {
        let input = &stream[start..check.avail];
        let f = frame::run(&mut protocol, input, swallow, &mut check);
        assert!(f.consumed <= input.len());
        start += f.consumed;
        swallow = 0;
        match f.rest {
            Rest::Closed => return,
            Rest::Swallow(n) => {
                assert_eq!(start, check.avail);
                swallow = n;
            }
            Rest::Read { .. } => {}
            Rest::Stopped(flow) => panic!("stopped ({flow:?}) by a sink that never stops"),
        }
        if check.avail == stream.len() {
            return;
        }
        check.avail = check.avail.saturating_add(read).min(stream.len());
    }
}

/// A connection's commands, checked by the driver of their protocol.
fn step(limits: &Limits) -> impl FnMut(Protocol, &[u8], &[u8]) -> Step + '_ {
    move |protocol, buf, full| match protocol {
        Protocol::Text => text::step(buf, full, limits),
        Protocol::Binary => binary::step(buf, full, limits),
    }
}

/// A connection's stream as the worker's framing loop takes it: text, or
/// binary when the first byte is the binary magic.
pub mod text {
    use super::{drive, limits, read_size, Step};
    use wasmcached_protocol::frame::Protocol;
    use wasmcached_protocol::meta::{self, MetaParsed};
    use wasmcached_protocol::text::{self, Command, Limits, Parsed, KEY_MAX_LENGTH};

    /// Byte 0 picks the limits and the read size; the rest is the stream.
    pub fn run(data: &[u8]) {
        let Some((&cfg, stream)) = data.split_first() else {
            return;
        };
        let limits = limits(cfg);
        drive(stream, read_size(cfg), None, super::step(&limits));
    }

    /// Parses a whole text-protocol stream (pipelined commands, data
    /// blocks, meta commands), `read` bytes arriving at a time.
    pub fn run_stream(stream: &[u8], limits: &Limits, read: usize) {
        drive(stream, read, Some(Protocol::Text), super::step(limits));
    }

    fn check_key(k: &[u8]) {
        assert!(!k.is_empty() && k.len() <= KEY_MAX_LENGTH, "key {k:?}");
        assert!(!k.contains(&b' ') && !k.contains(&b'\n') && !k.contains(&0));
    }

    fn check_cmd(cmd: &Command<'_>) {
        match cmd {
            Command::Get { keys, .. } | Command::Gat { keys, .. } => {
                keys.clone().for_each(check_key)
            }
            Command::Store { key, .. }
            | Command::Delete { key, .. }
            | Command::Arith { key, .. }
            | Command::Touch { key, .. } => check_key(key),
            _ => {}
        }
    }

    pub(super) fn step(buf: &[u8], full: &[u8], limits: &Limits) -> Step {
        let p = text::parse(buf, limits);
        let decided = match &p {
            Parsed::Incomplete { need } => {
                if let Some(n) = *need {
                    assert!(n > buf.len(), "need {n} <= buffered {}", buf.len());
                    // `need` is exact: with that many bytes the command is decided.
                    if n <= full.len() {
                        let q = text::parse(&full[..n], limits);
                        assert!(
                            !matches!(q, Parsed::Incomplete { .. }),
                            "need {n} not enough"
                        );
                    }
                }
                false
            }
            Parsed::Cmd { cmd, consumed } => {
                assert!(*consumed > 0 && *consumed <= buf.len());
                check_cmd(cmd);
                true
            }
            Parsed::Error {
                reply,
                consumed,
                close,
                unlink,
                ..
            } => {
                assert!(*consumed > 0 && *consumed <= buf.len());
                assert!(!reply.is_empty() || *close, "silent error without close");
                assert!(!reply.ends_with('\n'));
                if let Some(k) = unlink {
                    check_key(k);
                }
                !*close
            }
        };
        // A decided result (other than a close) does not change when more
        // bytes arrive: the worker acts on it at once.
        if decided && full.len() > buf.len() {
            let q = text::parse(full, limits);
            assert_eq!(format!("{q:?}"), format!("{p:?}"), "changed by later bytes");
        }
        match p {
            Parsed::Incomplete { .. } => Step::Incomplete { need: 0 },
            Parsed::Cmd {
                cmd: Command::Meta { op, line },
                consumed,
            } => meta_step(op, line, buf, full, consumed, limits),
            Parsed::Cmd { consumed, .. } => Step::Done {
                consumed,
                swallow: 0,
            },
            Parsed::Error { close: true, .. } => Step::Close,
            Parsed::Error {
                consumed, swallow, ..
            } => Step::Done { consumed, swallow },
        }
    }

    /// `meta_cmd::step`: the meta parser reads the line's flags and an `ms`
    /// data block.
    fn meta_step(
        op: text::MetaOp,
        line: &[u8],
        buf: &[u8],
        full: &[u8],
        line_len: usize,
        limits: &Limits,
    ) -> Step {
        let m = meta::parse(op, line, buf, line_len, limits);
        let decided = match &m {
            MetaParsed::Incomplete { need } => {
                assert!(
                    *need > buf.len(),
                    "meta need {need} <= buffered {}",
                    buf.len()
                );
                assert!(*need > line_len);
                if *need <= full.len() {
                    let q = meta_at(&full[..*need], limits);
                    assert!(!matches!(q, Some(MetaParsed::Incomplete { .. })));
                }
                false
            }
            MetaParsed::Cmd { cmd, consumed } => {
                assert!(*consumed >= line_len && *consumed <= buf.len());
                assert_eq!(cmd.op, op);
                assert!(cmd.value.len() <= consumed - line_len);
                for f in &cmd.flags {
                    assert!(!f.is_empty());
                    assert!(cmd.position(f[0]).is_some());
                }
                true
            }
            MetaParsed::Error {
                reply, consumed, ..
            } => {
                assert!(*consumed >= line_len && *consumed <= buf.len());
                assert!(!reply.is_empty() && !reply.ends_with('\n'));
                true
            }
        };
        if decided && full.len() > buf.len() {
            let q = meta_at(full, limits);
            assert_eq!(q.as_ref(), Some(&m), "meta result changed by later bytes");
        }
        match m {
            MetaParsed::Incomplete { .. } => Step::Incomplete { need: 0 },
            MetaParsed::Cmd { consumed, .. } => Step::Done {
                consumed,
                swallow: 0,
            },
            MetaParsed::Error {
                consumed, swallow, ..
            } => Step::Done { consumed, swallow },
        }
    }

    /// The meta result for the command at the start of `buf`, if the text
    /// parser hands it over as a meta command.
    fn meta_at<'a>(buf: &'a [u8], limits: &Limits) -> Option<MetaParsed<'a>> {
        match text::parse(buf, limits) {
            Parsed::Cmd {
                cmd: Command::Meta { op, line },
                consumed,
            } => Some(meta::parse(op, line, buf, consumed, limits)),
            _ => None,
        }
    }
}

/// The meta protocol: a stream that starts with a meta command.
pub mod meta {
    use super::{limits, read_size};
    use wasmcached_protocol::meta::{base64_decode, base64_encode};

    const OPS: [&[u8]; 6] = [b"mg ", b"ms ", b"md ", b"ma ", b"mn", b"me "];

    /// Byte 0 picks the limits and the read size, byte 1 the first meta
    /// command; the rest follows it (flags, data block, more commands).
    pub fn run(data: &[u8]) {
        let [cfg, op, rest @ ..] = data else {
            return;
        };
        let mut stream = OPS[*op as usize % OPS.len()].to_vec();
        stream.extend_from_slice(rest);
        super::text::run_stream(&stream, &limits(*cfg), read_size(*cfg));
        // Keys given with `b` are base64: encoding round-trips (memcached's
        // decoder refuses an empty result).
        let mut enc = Vec::new();
        base64_encode(rest, &mut enc);
        let want = (!rest.is_empty()).then_some(rest);
        assert_eq!(base64_decode(&enc).as_deref(), want);
        if let Some(dec) = base64_decode(rest) {
            enc.clear();
            base64_encode(&dec, &mut enc);
            assert_eq!(base64_decode(&enc), Some(dec));
        }
    }
}

/// The binary protocol, as `binary_cmd::step` reads each request.
pub mod binary {
    use super::{drive, limits, read_size, Step};
    use wasmcached_protocol::binary::{self, Command, Header, Parsed, HEADER_LEN, REQ_MAGIC};
    use wasmcached_protocol::text::Limits;

    /// Byte 0 picks the limits and the read size; the rest is the stream,
    /// whose first byte is forced to the request magic (a connection whose
    /// first byte is anything else is a text one).
    pub fn run(data: &[u8]) {
        let Some((&cfg, stream)) = data.split_first() else {
            return;
        };
        let mut stream = stream.to_vec();
        if let Some(b) = stream.first_mut() {
            *b = REQ_MAGIC;
        }
        let limits = limits(cfg);
        // The magic makes the loop choose binary, as `-B auto` does.
        drive(&stream, read_size(cfg), None, super::step(&limits));
    }

    pub(super) fn step(buf: &[u8], full: &[u8], limits: &Limits) -> Step {
        let p = binary::parse(buf);
        let (header, extras, key, consumed) = match p {
            Parsed::Incomplete { need } => {
                // `need` is a lower bound (first the header, then header,
                // extras and key): with that many bytes the parser moves on.
                assert!(need > buf.len());
                if need <= full.len() {
                    if let Parsed::Incomplete { need: next } = binary::parse(&full[..need]) {
                        assert!(next > need, "need {need} then {next}");
                    }
                }
                return Step::Incomplete { need: 0 };
            }
            Parsed::BadMagic => {
                assert_ne!(buf[0], REQ_MAGIC);
                return Step::Close;
            }
            Parsed::Packet {
                header,
                extras,
                key,
                consumed,
            } => (header, extras, key, consumed),
        };
        assert_eq!(binary::parse(full), p, "changed by later bytes");
        assert!(consumed >= HEADER_LEN && consumed <= buf.len());
        assert_eq!(extras.len(), header.extlen as usize);
        assert_eq!(key.len(), header.keylen as usize);
        assert_eq!(consumed, HEADER_LEN + extras.len() + key.len());
        let mut wire = Vec::new();
        header.write(&mut wire);
        assert_eq!(wire, &buf[..HEADER_LEN]);
        assert_eq!(Header::read(&wire), header);
        match binary::decode(&header, extras, key) {
            Command::Error { swallow, close, .. } => {
                if close {
                    return Step::Close;
                }
                Step::Done { consumed, swallow }
            }
            Command::Store {
                key, flags, vlen, ..
            } => value(buf, limits, consumed, key, flags, vlen),
            Command::Concat { key, vlen, .. } => value(buf, limits, consumed, key, 0, vlen),
            Command::Get { key, .. } | Command::Delete { key, .. } | Command::Arith { key, .. } => {
                assert!(!key.is_empty() && key.len() <= binary::KEY_MAX_LENGTH);
                Step::Done {
                    consumed,
                    swallow: 0,
                }
            }
            Command::Quit { .. } => Step::Close,
            _ => Step::Done {
                consumed,
                swallow: 0,
            },
        }
    }

    /// A storage command's value, as `binary_cmd::step` reads it.
    fn value(
        buf: &[u8],
        limits: &Limits,
        consumed: usize,
        key: &[u8],
        flags: u32,
        vlen: usize,
    ) -> Step {
        assert!(!key.is_empty() && key.len() <= binary::KEY_MAX_LENGTH);
        if limits.item_too_large(key.len(), flags, vlen + 2) {
            return Step::Done {
                consumed,
                swallow: vlen,
            };
        }
        match buf.get(consumed..consumed + vlen) {
            Some(_) => Step::Done {
                consumed: consumed + vlen,
                swallow: 0,
            },
            None => Step::Incomplete { need: 0 },
        }
    }
}

/// UDP: the frame header, then the payload as one text request batch.
pub mod udp_frame {
    use wasmcached_protocol::text::Limits;
    use wasmcached_protocol::udp::{self, HEADER_LEN};

    pub fn run(data: &[u8]) {
        match udp::parse(data) {
            None => assert!(data.len() < HEADER_LEN),
            Some((frame, payload)) => {
                assert_eq!(&frame.encode(), &data[..HEADER_LEN]);
                assert_eq!(payload, &data[HEADER_LEN..]);
                assert_eq!(frame.is_single(), frame.total == 1);
                if frame.is_single() {
                    // One datagram, one request batch: all of it is there.
                    super::text::run_stream(payload, &Limits::default(), usize::MAX);
                }
            }
        }
    }
}

/// Host side of the ABI: a plugin's answers, read out of guest memory.
pub mod abi_responses {
    use wasmcached_abi::{self as abi, Item, ItemMeta, Response};

    /// Bytes 0..4: the request count the host sent; 4..12: the `(ptr << 32)
    /// | len` the plugin returned; the rest: guest memory.
    pub fn run(data: &[u8]) {
        if data.len() < 12 {
            return;
        }
        let count = u32::from_le_bytes(data[0..4].try_into().unwrap());
        let packed = i64::from_le_bytes(data[4..12].try_into().unwrap());
        let memory = &data[12..];
        // Shard::batch / Shard::stats / dump_chunk: bounds-checked slice.
        let (ptr, len) = abi::unpack_ptr_len(packed);
        assert_eq!(abi::pack_ptr_len(ptr, len), packed);
        let (ptr, len) = (ptr as usize, len as usize);
        let Some(buf) = ptr.checked_add(len).and_then(|end| memory.get(ptr..end)) else {
            return;
        };
        // As from a v1-v3 plugin (values inline) and from a v4 one (values
        // may be held anywhere in its memory).
        batch(buf, None, count);
        batch(buf, Some(memory), count);
        dump_chunk(buf);
        iter_chunk(buf);
        // Whatever the response, the worker handing it to another thread
        // (`on_done`) only iterates it.
        for r in abi::responses(buf).into_iter().flatten().flatten() {
            let _ = r.status();
        }
    }

    /// `abi::check_responses` (as `Shard::batch` calls it), then what the
    /// worker does with a checked batch (`run_local`: `expect`s; `copy_to`
    /// for another worker: re-encoding, then `on_done` reads it inline).
    fn batch(resp: &[u8], mem: Option<&[u8]>, count: u32) {
        let Ok(held) = abi::check_responses(resp, mem, count) else {
            return;
        };
        let recs = abi::responses_in(resp, mem).expect("checked");
        let mut n = 0u32;
        let mut off = abi::BATCH_HEADER;
        for r in recs {
            let r = r.expect("checked");
            assert!(r.status().is_some());
            assert_eq!(r.iflags & abi::iflag::VALUE_REF, 0);
            let mut out = Vec::new();
            r.encode(&mut out);
            assert_eq!(Response::decode(&out), Some((r.clone(), out.len())));
            if !held {
                // Re-encoding gives the exact bytes (no reserved bytes; bit
                // 6 of iflags means nothing inline and is dropped).
                let mut orig = resp[off..off + out.len()].to_vec();
                orig[1] &= !abi::iflag::VALUE_REF;
                assert_eq!(out, orig);
                off += out.len();
            }
            n += 1;
        }
        assert_eq!(n, count);
    }

    /// `dump_chunk`: `check_items`; a checked chunk is passed to the next
    /// plugin's `wmc_load` as is.
    fn dump_chunk(chunk: &[u8]) {
        let checked = abi::check_items(chunk);
        let Some(recs) = abi::items(chunk) else {
            assert_eq!(checked, None);
            return;
        };
        let mut off = abi::BATCH_HEADER;
        let mut n = 0u32;
        let mut malformed = false;
        for it in recs {
            let Some(it) = it else {
                malformed = true;
                break;
            };
            let len = it.encoded_len();
            let mut out = Vec::new();
            it.encode(&mut out);
            // Every byte round-trips, byte 21 (v7 `refs`) included.
            assert_eq!(out, &chunk[off..off + len]);
            assert_eq!(Item::decode(&out), Some((it, len)));
            off += len;
            n += 1;
        }
        let whole = !malformed && off == chunk.len();
        assert_eq!(checked, whole.then_some(n));
        if whole {
            // What a v3..v6 plugin is handed: `refs` zeroed, nothing else.
            let mut old = chunk.to_vec();
            abi::clear_item_refs(&mut old);
            let mut off = abi::BATCH_HEADER;
            for (a, b) in abi::items(chunk).unwrap().zip(abi::items(&old).unwrap()) {
                let (a, b) = (a.unwrap(), b.unwrap());
                assert_eq!(b.refs, 0);
                assert_eq!(Item { refs: 0, ..a }, b);
                off += b.encoded_len();
            }
            assert_eq!(off, old.len());
        }
    }

    /// `Shard::list` (ABI v5 `wmc_iter`): `check_iter_chunk`, then what the
    /// worker does with a checked chunk (every record decodes; the listing
    /// renders its fields).
    fn iter_chunk(chunk: &[u8]) {
        let checked = abi::check_iter_chunk(chunk);
        let Some((cursor, recs)) = abi::iter_chunk(chunk) else {
            assert_eq!(checked, None);
            return;
        };
        let mut off = abi::ITER_HEADER;
        let mut n = 0u32;
        let mut malformed = false;
        for m in recs {
            let Some(m) = m else {
                malformed = true;
                break;
            };
            let len = m.encoded_len();
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(out, chunk[off..off + len]);
            assert_eq!(ItemMeta::decode(&out), Some((m, len)));
            off += len;
            n += 1;
        }
        let whole = !malformed && off == chunk.len();
        assert_eq!(checked, whole.then_some((cursor, n)));
        if let Some((cursor, n)) = checked {
            // Re-encoding the header gives the same bytes, but for the
            // reserved ones (4..8: written 0, ignored when read).
            let mut out = Vec::new();
            abi::begin_iter_chunk(&mut out);
            abi::finish_iter_chunk(&mut out, n, cursor);
            assert_eq!(out[..4], chunk[..4]);
            assert_eq!(out[8..16], chunk[8..16]);
        }
    }
}

/// Guest side of the ABI: the SDK runtime reading the host's request
/// batches, init records and item chunks.
pub mod abi_requests {
    use std::cell::RefCell;
    use wasmcached_abi::{self as abi, Init, Item, Request, Response, Status};
    use wasmcached_sdk::guest::Runtime;
    use wasmcached_sdk::{Config, LoadError, Plugin, Responder};

    /// Answers every request with a hit echoing its key and value.
    struct Echo {
        loaded: u32,
    }

    impl Plugin for Echo {
        fn init(_config: &Config) -> Result<Self, String> {
            Ok(Echo { loaded: 0 })
        }

        fn handle(&mut self, req: &Request<'_>, out: &mut Responder<'_>) {
            match req.op() {
                Some(_) => out.respond(&Response {
                    status: Status::Hit as u8,
                    key: req.key,
                    value: req.value,
                    client_flags: req.client_flags,
                    exptime: req.exptime,
                    cas: req.cas,
                    ..Default::default()
                }),
                None => out.error("unknown op"),
            }
        }

        fn load(&mut self, item: &Item<'_>) -> Result<(), LoadError> {
            assert!(item.encoded_len() >= abi::ITEM_HEADER);
            self.loaded += 1;
            Ok(())
        }
    }

    thread_local! {
        static RT: RefCell<Runtime<Echo>> = RefCell::new(started());
    }

    fn write(rt: &mut Runtime<Echo>, bytes: &[u8]) -> bool {
        let p = rt.input(bytes.len());
        if p.is_null() {
            return false;
        }
        // SAFETY: `input` returns a buffer of at least `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        true
    }

    fn started() -> Runtime<Echo> {
        let mut rt = Runtime::default();
        let mut init = Vec::new();
        Init {
            abi_version: abi::ABI_VERSION,
            shard_count: 1,
            memory_budget: 1 << 20,
            max_item_size: 1 << 20,
            ..Default::default()
        }
        .encode(&mut init);
        assert!(write(&mut rt, &init));
        assert_eq!(rt.init(init.len()), 0);
        rt
    }

    /// The same bytes as a request batch, an item chunk and an init record,
    /// decoded directly and by the runtime (`wmc_batch`, `wmc_load`).
    pub fn run(data: &[u8]) {
        requests(data);
        items(data);
        if let Some(init) = Init::decode(data) {
            let mut out = Vec::new();
            init.encode(&mut out);
            // Bytes 32..36 are reserved before v5 (encoded as 0), the hints'
            // length from v5 on (the hints are copied as they are).
            let mut orig = data[..init.encoded_len()].to_vec();
            if init.abi_version < abi::HINTS_VERSION {
                orig[32..36].fill(0);
            }
            assert_eq!(out, orig);
        }
        // The runtime reserves room for the announced number of answers
        // (`try_reserve`, which a wasm guest's 4 GiB memory refuses); keep
        // the harness clear of allocations the fuzzer counts as leaks/OOMs.
        if data.len() >= abi::BATCH_HEADER && abi::batch_count(data) > 1 << 16 {
            return;
        }
        RT.with(|rt| {
            let mut rt = rt.borrow_mut();
            if !write(&mut rt, data) {
                return;
            }
            let out = rt.batch(data.len());
            host_reads(out, data);
            if !write(&mut rt, data) {
                return;
            }
            let status = rt.load(data.len());
            let well_formed = abi::items(data).is_some_and(|mut it| it.all(|i| i.is_some()));
            if well_formed {
                assert_eq!(status, abi::load_status::OK);
            } else {
                assert_eq!(status, abi::load_status::MALFORMED);
            }
        });
    }

    /// The runtime's answer always passes the host's `check_responses` for
    /// the count the host announced, when the batch was well formed.
    fn host_reads(out: &[u8], batch: &[u8]) {
        let resps: Vec<_> = abi::responses(out).expect("batch header").collect();
        assert!(resps
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.status().is_some())));
        assert_eq!(resps.len() as u32, abi::batch_count(out));
        let Some(reqs) = abi::requests(batch) else {
            assert!(resps.is_empty());
            return;
        };
        let reqs: Vec<_> = reqs.collect();
        assert_eq!(resps.len(), reqs.len());
        for (q, r) in reqs.iter().zip(&resps) {
            let r = r.as_ref().unwrap();
            match q {
                Some(q) if q.op().is_some() => {
                    assert_eq!((r.key, r.value), (q.key, q.value));
                }
                _ => assert_eq!(r.status(), Some(Status::Error)),
            }
        }
    }

    fn requests(data: &[u8]) {
        let Some(recs) = abi::requests(data) else {
            assert!(data.len() < abi::BATCH_HEADER);
            return;
        };
        let mut off = abi::BATCH_HEADER;
        for r in recs {
            let Some(r) = r else { break };
            let len = r.encoded_len();
            let mut out = Vec::new();
            r.encode(&mut out);
            // Byte 1 is reserved: encoded as 0.
            let mut orig = data[off..off + len].to_vec();
            orig[1] = 0;
            assert_eq!(out, orig);
            assert_eq!(Request::decode(&out), Some((r, len)));
            off += len;
        }
    }

    fn items(data: &[u8]) {
        let Some(recs) = abi::items(data) else {
            return;
        };
        let mut off = abi::BATCH_HEADER;
        for it in recs {
            let Some(it) = it else { break };
            off += it.encoded_len();
            assert!(off <= data.len());
        }
    }
}
