//! Differential test of the binary protocol: the same seeded random stream of
//! binary requests (valid, quiet, malformed) goes to Debian's memcached (the
//! reference) and to the server under test, started with the same flags; the
//! responses must match field by field (magic, opcode, key length, extras
//! length, data type, status, body length, opaque, body), except CAS values,
//! which are mapped through a bijection: the first time a reference CAS and a
//! target CAS appear at the same place they become a pair, and every later
//! appearance of either must keep the pairing. A `version` response's body
//! (the version string) is not compared.
//!
//! A request that carries a CAS takes it from what *its* server answered
//! before for that key (or 0, or a random literal), so both sides compare
//! against their own values.
//!
//! The stream is cut into batches; a batch ends with a `noop` (whose answer
//! proves every earlier answer arrived), or with a request after which the
//! server closes the connection (quit, quitq, a malformed request), in which
//! case both sides are read to EOF and reconnected. Now and then a request
//! with a bad magic byte is sent alone: both must close without answering.
//!
//! Determinism, as in the text differential: exptimes are 0, far future, or
//! in the past; flush has no delay; no incr/decr follows a retrieval of the
//! same key within two batches (memcached rewrites a number in place, with
//! blank padding, only when no pending response holds the item); numbers
//! stay below 2^62 and no stored byte is '-' (memcached 1.6.18's stale-minus
//! bug); an unknown opcode's swallowed bytes are sent in full so that the
//! stream stays aligned.
//!
//! Environment: DIFF_SEED, DIFF_PACKETS (default 24000), plus the harness's
//! WASMCACHED_TEST_BIN / MEMCACHED_BIN. The reference memcached is required
//! (the test fails when it is missing).
// The reference comparisons run where Debian's memcached and its tools do:
// Linux. Under Wine or on macOS/Windows this module is empty (see the
// README, "Platforms").
#![cfg(target_os = "linux")]

use crate::common;

use common::binary::{arith_extras, store_extras, write_header, Frame as Resp};
use common::diff::{start_pair, CasBijection};
use common::Rng;
use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const FLAGS: &[&str] = &["-t", "4", "-m", "64", "-I", "16k"];
/// The reference's flags (`common::diff::REF_ONLY_FLAGS`, plus:)
/// memcached refuses `-I` below its slab chunk size (512 KiB) unless that
/// is lowered too: to `-I` itself, so that no item is chunked (memcached's
/// incr answers a chunked item "non-numeric" before it checks the CAS, and
/// the default store models the default chunk size).
const REF_ONLY_FLAGS: &[&str] = &[
    "-o",
    "no_lru_crawler,no_lru_maintainer,slab_automove=0,slab_chunk_max=16384",
];
const ITEM_MAX: usize = 16 * 1024;

/// Where a request's CAS comes from.
#[derive(Clone, Debug)]
enum Cas {
    Zero,
    /// The CAS this side last saw for the key.
    Last(Vec<u8>),
    Literal(u64),
}

/// One request, abstract enough to be encoded for either side.
#[derive(Clone, Debug)]
struct Req {
    magic: u8,
    op: u8,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
    cas: Cas,
    opaque: u32,
    /// Header field overrides for malformed requests.
    keylen: Option<u16>,
    bodylen: Option<u32>,
    /// Bytes sent after the packet (what an unknown opcode swallows).
    trailer: Vec<u8>,
}

impl Req {
    fn new(op: u8, extras: Vec<u8>, key: &[u8], value: Vec<u8>) -> Req {
        Req {
            magic: 0x80,
            op,
            extras,
            key: key.to_vec(),
            value,
            cas: Cas::Zero,
            opaque: 0,
            keylen: None,
            bodylen: None,
            trailer: Vec::new(),
        }
    }

    fn encode(&self, last_cas: &HashMap<Vec<u8>, u64>, out: &mut Vec<u8>) {
        let cas = match &self.cas {
            Cas::Zero => 0,
            Cas::Last(k) => last_cas.get(k).copied().unwrap_or(1 << 50),
            Cas::Literal(v) => *v,
        };
        let body = (self.extras.len() + self.key.len() + self.value.len()) as u32;
        write_header(
            out,
            self.magic,
            self.op,
            self.keylen.unwrap_or(self.key.len() as u16),
            self.extras.len() as u8,
            self.bodylen.unwrap_or(body),
            self.opaque,
            cas,
        );
        out.extend_from_slice(&self.extras);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.value);
        out.extend_from_slice(&self.trailer);
    }
}

/// What reading a batch's answers ended with.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Terminator,
    Closed,
    /// Nothing more arrived within the read timeout.
    Timeout,
}

struct Side {
    name: &'static str,
    port: u16,
    stream: TcpStream,
    last_cas: HashMap<Vec<u8>, u64>,
}

impl Side {
    fn connect(name: &'static str, port: u16) -> Side {
        Side {
            name,
            port,
            stream: connect(port),
            last_cas: HashMap::new(),
        }
    }

    fn reconnect(&mut self) {
        self.stream = connect(self.port);
    }

    fn send(&mut self, reqs: &[Req]) {
        let mut out = Vec::new();
        for r in reqs {
            r.encode(&self.last_cas, &mut out);
        }
        // The peer may already have closed (a malformed request mid-batch).
        let _ = self.stream.write_all(&out);
    }

    fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, End> {
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => return Err(End::Closed),
                Ok(k) => got += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(End::Closed),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(End::Timeout)
                }
                Err(e) => panic!("[{}] read failed: {e}", self.name),
            }
        }
        Ok(buf)
    }

    /// Reads responses up to the one with `terminator` as opaque (or EOF).
    fn read_until(&mut self, terminator: Option<u32>) -> (Vec<Resp>, End) {
        let mut out = Vec::new();
        loop {
            let h = match self.read_exact(24) {
                Ok(h) => h,
                Err(e) => return (out, e),
            };
            let mut r = Resp::header(&h);
            r.body = match self.read_exact(r.bodylen as usize) {
                Ok(b) => b,
                Err(e) => return (out, e),
            };
            let done = Some(r.opaque) == terminator && r.op == 0x0a;
            out.push(r);
            if done {
                return (out, End::Terminator);
            }
        }
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

struct Gen {
    rng: Rng,
    keys: Vec<Vec<u8>>,
    opaque: u32,
    batch: u64,
    /// Batch of the last retrieval of each key.
    retrieved: HashMap<Vec<u8>, u64>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut keys: Vec<Vec<u8>> = (0..14).map(|i| format!("k{i}").into_bytes()).collect();
        keys.push(b"\x00bin key\r\n".to_vec());
        keys.push(b"k y".to_vec());
        keys.push(vec![0xff, 0xfe, b'z']);
        keys.push(vec![b'L'; 250]);
        Gen {
            rng: Rng::new(seed),
            keys,
            opaque: 1,
            batch: 0,
            retrieved: HashMap::new(),
        }
    }

    fn key(&mut self) -> Vec<u8> {
        self.rng.pick(&self.keys).clone()
    }

    fn exptime(&mut self) -> u32 {
        match self.rng.below(10) {
            0..=5 => 0,
            6 => 1_000_000,
            7 => 0xf000_0000,
            8 => 100_000_000, // absolute, in the past
            _ => self.rng.range(2_592_001, 1_000_000_000) as u32,
        }
    }

    fn value(&mut self) -> Vec<u8> {
        match self.rng.below(10) {
            0..=3 => self.rng.range(0, 1 << 20).to_string().into_bytes(),
            4 => self.rng.range(0, 1 << 62).to_string().into_bytes(),
            5 => Vec::new(),
            6 => {
                // Near the item size limit (E2BIG or not).
                let n = self.rng.range(ITEM_MAX as u64 - 400, ITEM_MAX as u64 + 50) as usize;
                vec![b'v'; n]
            }
            _ => {
                let n = self.rng.range(1, 40) as usize;
                (0..n)
                    .map(|_| loop {
                        let b = self.rng.below(256) as u8;
                        if b != b'-' {
                            break b;
                        }
                    })
                    .collect()
            }
        }
    }

    fn cas(&mut self, key: &[u8]) -> Cas {
        match self.rng.below(10) {
            0..=4 => Cas::Zero,
            5..=7 => Cas::Last(key.to_vec()),
            8 => Cas::Literal(self.rng.range(1, 1 << 60)),
            _ => Cas::Last(self.keys[0].clone()),
        }
    }

    /// A valid request (maybe quiet). None when the pick was not allowed.
    fn valid(&mut self) -> Option<Req> {
        let key = self.key();
        let r = match self.rng.below(100) {
            0..=19 => {
                let op = *self.rng.pick(&[0x00, 0x09, 0x0c, 0x0d]);
                self.retrieved.insert(key.clone(), self.batch);
                Req::new(op, vec![], &key, vec![])
            }
            20..=44 => {
                let op = *self.rng.pick(&[0x01, 0x11, 0x02, 0x12, 0x03, 0x13]);
                let flags = *self.rng.pick(&[0u32, 1, 0xdead_beef, u32::MAX]);
                let exptime = self.exptime();
                let value = self.value();
                let mut r = Req::new(op, store_extras(flags, exptime), &key, value);
                r.cas = self.cas(&key);
                r
            }
            45..=52 => {
                let op = *self.rng.pick(&[0x0e, 0x19, 0x0f, 0x1a]);
                let value = if self.rng.chance(70) {
                    let n = self.rng.range(1, 10) as usize;
                    vec![b'a'; n]
                } else {
                    self.value()
                };
                let mut r = Req::new(op, vec![], &key, value);
                if self.rng.chance(20) {
                    r.cas = self.cas(&key);
                }
                r
            }
            53..=60 => {
                let op = *self.rng.pick(&[0x04, 0x14]);
                let mut r = Req::new(op, vec![], &key, vec![]);
                if self.rng.chance(30) {
                    r.cas = self.cas(&key);
                }
                r
            }
            61..=74 => {
                if self
                    .retrieved
                    .get(&key)
                    .is_some_and(|&b| b + 2 >= self.batch)
                {
                    return None;
                }
                let op = *self.rng.pick(&[0x05, 0x15, 0x06, 0x16]);
                let delta = match self.rng.below(4) {
                    0 => 0,
                    1 => 1,
                    _ => self.rng.range(0, 1 << 40),
                };
                let initial = self.rng.range(0, 1 << 40);
                let exptime = if self.rng.chance(30) {
                    u32::MAX
                } else {
                    self.exptime()
                };
                let mut r = Req::new(op, arith_extras(delta, initial, exptime), &key, vec![]);
                if self.rng.chance(15) {
                    r.cas = self.cas(&key);
                }
                r
            }
            75..=86 => {
                let op = *self.rng.pick(&[0x1c, 0x1d, 0x1e, 0x23, 0x24]);
                self.retrieved.insert(key.clone(), self.batch);
                let exptime = self.exptime();
                Req::new(op, exptime.to_be_bytes().to_vec(), &key, vec![])
            }
            87 => {
                let op = *self.rng.pick(&[0x08, 0x18]);
                let extras = if self.rng.chance(50) {
                    vec![0; 4]
                } else {
                    vec![]
                };
                Req::new(op, extras, b"", vec![])
            }
            88..=93 => Req::new(0x0a, vec![], b"", vec![]),
            94..=96 => Req::new(0x0b, vec![], b"", vec![]),
            _ => {
                // Unknown opcodes (verbosity and SASL included, SASL being
                // off): answered, their body swallowed.
                match self.rng.below(4) {
                    0 => {
                        let mut r = Req::new(0x1b, vec![0, 0, 0, 1], b"", vec![]);
                        r.trailer = vec![b'x'; 4];
                        r
                    }
                    1 => Req::new(0x21, vec![], b"PLAIN", b"\0user\0pass".to_vec()),
                    2 => Req::new(0x20, vec![], b"", vec![]),
                    _ => {
                        let op = *self.rng.pick(&[0x25u8, 0x30, 0x3d, 0x41, 0x89, 0xfe]);
                        let n = self.rng.range(0, 20) as usize;
                        Req::new(op, vec![], b"", vec![b'u'; n])
                    }
                }
            }
        };
        Some(r)
    }

    /// A request after which the server closes the connection.
    fn closing(&mut self) -> Req {
        let key = self.key();
        match self.rng.below(9) {
            0 => Req::new(0x07, vec![], b"", vec![]),
            1 => Req::new(0x17, vec![], b"", vec![]),
            2 => Req::new(0x00, vec![0, 0, 0, 0], &key, vec![]),
            3 => Req::new(
                0x00,
                vec![],
                &vec![b'g'; 251 + self.rng.below(40) as usize],
                vec![],
            ),
            4 => Req::new(0x01, vec![0; 4], &key, vec![]),
            5 => Req::new(0x05, arith_extras(1, 1, 0)[..12].to_vec(), &key, vec![]),
            6 => Req::new(0x0a, vec![], b"k", vec![]),
            7 => {
                // Body shorter than the key.
                let mut r = Req::new(0x00, vec![], b"abcde", vec![]);
                r.bodylen = Some(3);
                r
            }
            _ => Req::new(0x1c, vec![], &key, vec![]),
        }
    }
}

/// memcached's binary opcode names, for the coverage report.
fn tally(counts: &mut BTreeMap<(u8, u16), u64>, r: &Resp) {
    *counts.entry((r.op, r.status)).or_default() += 1;
}

fn describe(r: &Resp) -> String {
    format!(
        "op={:#04x} status={:#x} keylen={} extlen={} bodylen={} opaque={} cas={} body={:?}",
        r.op,
        r.status,
        r.keylen,
        r.extlen,
        r.bodylen,
        r.opaque,
        r.cas,
        String::from_utf8_lossy(&r.body[..r.body.len().min(80)])
    )
}

#[test]
fn differential_binary_random_stream() {
    let seed = common::seed_from_env("DIFF_SEED", 20_261_127);
    let packets = common::seed_from_env("DIFF_PACKETS", 24_000) as usize;
    let (reference, target) = start_pair(FLAGS, REF_ONLY_FLAGS, &[]);
    eprintln!("[differential_binary] seed {seed}, {packets} packets");
    let mut r = Side::connect("reference", reference.port());
    let mut t = Side::connect("target", target.port());
    let mut gen = Gen::new(seed);
    let mut bij = CasBijection::default();
    let mut sent = 0usize;
    let mut counts = BTreeMap::new();
    let mut closes = 0u64;
    let mut bad_magic = 0u64;
    let mut history: Vec<String> = Vec::new();
    while sent < packets {
        gen.batch += 1;
        // Now and then: a bad magic byte, alone: both close, silently.
        if gen.rng.chance(1) {
            let mut req = Req::new(0x0a, vec![], b"", vec![]);
            req.magic = *gen.rng.pick(&[0x81u8, 0x00, b'g', 0x7f]);
            // First make sure the connection speaks binary (-B auto decides
            // on a connection's first byte).
            let mut noop = Req::new(0x0a, vec![], b"", vec![]);
            noop.opaque = gen.opaque;
            gen.opaque += 1;
            for side in [&mut r, &mut t] {
                side.send(std::slice::from_ref(&noop));
                let (got, end) = side.read_until(Some(noop.opaque));
                assert!(
                    end == End::Terminator && got.len() == 1,
                    "{}: {got:?} {end:?}",
                    side.name
                );
            }
            r.send(std::slice::from_ref(&req));
            t.send(std::slice::from_ref(&req));
            let (ra, re) = r.read_until(None);
            let (ta, te) = t.read_until(None);
            assert!(
                ra.is_empty() && ta.is_empty() && re == End::Closed && te == End::Closed,
                "bad magic {:#x}: reference {ra:?} {re:?}, target {ta:?} {te:?}",
                req.magic
            );
            r.reconnect();
            t.reconnect();
            sent += 1;
            bad_magic += 1;
            continue;
        }
        let n = gen.rng.range(1, 8) as usize;
        let mut batch = Vec::new();
        while batch.len() < n {
            if let Some(req) = gen.valid() {
                batch.push(req);
            }
        }
        let closing = gen.rng.chance(6);
        let last = if closing {
            gen.closing()
        } else {
            Req::new(0x0a, vec![], b"", vec![])
        };
        batch.push(last);
        for req in batch.iter_mut() {
            req.opaque = gen.opaque;
            gen.opaque += 1;
        }
        let terminator = (!closing).then(|| batch.last().unwrap().opaque);
        let by_opaque: HashMap<u32, &Req> = batch.iter().map(|q| (q.opaque, q)).collect();
        r.send(&batch);
        t.send(&batch);
        sent += batch.len();
        let (ra, re) = r.read_until(terminator);
        let (ta, te) = t.read_until(terminator);
        let mut trace = format!("batch {}:", gen.batch);
        for q in &batch {
            trace.push_str(&format!(
                "\n  > op={:#04x} key={:?} extras={:?} vlen={} cas={:?} opaque={}",
                q.op,
                String::from_utf8_lossy(&q.key[..q.key.len().min(40)]),
                q.extras,
                q.value.len(),
                q.cas,
                q.opaque
            ));
        }
        let report = |why: String, history: &[String]| -> String {
            let mut s = String::new();
            for h in history.iter().rev().take(3).rev() {
                s.push_str(h);
                s.push('\n');
            }
            format!(
                "mismatch after {sent} packets (seed {seed}): {why}\nreference: {:#?}\ntarget: {:#?}\n--- earlier batches ---\n{s}--- this batch ---\n{trace}",
                ra.iter().map(describe).collect::<Vec<_>>(),
                ta.iter().map(describe).collect::<Vec<_>>()
            )
        };
        if re == End::Timeout || re != te {
            panic!(
                "{}",
                report(format!("reference ended {re:?}, target {te:?}"), &history)
            );
        }
        if ra.len() != ta.len() {
            panic!(
                "{}",
                report(format!("{} vs {} responses", ra.len(), ta.len()), &history)
            );
        }
        for (a, b) in ra.iter().zip(ta.iter()) {
            let version = a.op == 0x0b && a.status == 0;
            let same = a.magic == b.magic
                && a.op == b.op
                && a.keylen == b.keylen
                && a.extlen == b.extlen
                && a.datatype == b.datatype
                && a.status == b.status
                && a.opaque == b.opaque
                && (version || (a.bodylen == b.bodylen && a.body == b.body))
                && (a.cas == 0) == (b.cas == 0)
                && bij.check(&a.cas, &b.cas).is_ok();
            if !same {
                panic!(
                    "{}",
                    report(
                        format!("differs: {} vs {}", describe(a), describe(b)),
                        &history
                    )
                );
            }
            tally(&mut counts, a);
            // Each side remembers the CAS its server gave the key.
            if let Some(q) = by_opaque.get(&a.opaque) {
                if a.cas != 0 && !q.key.is_empty() {
                    r.last_cas.insert(q.key.clone(), a.cas);
                    t.last_cas.insert(q.key.clone(), b.cas);
                }
            }
        }
        if re == End::Closed {
            closes += 1;
            r.reconnect();
            t.reconnect();
        }
        history.push(trace);
        if history.len() > 8 {
            history.remove(0);
        }
    }
    eprintln!(
        "[differential_binary] {sent} packets, 0 mismatches, {closes} closing batches, {bad_magic} bad magic; (opcode, status) counts: {counts:?}"
    );
    // The stream must have exercised what it is meant to.
    for (op, status) in [
        (0x00u8, 0x0u16),
        (0x00, 0x1),
        (0x0c, 0x1),
        (0x01, 0x0),
        (0x01, 0x2),
        (0x01, 0x3),
        (0x02, 0x2),
        (0x03, 0x1),
        (0x0e, 0x5),
        (0x04, 0x0),
        (0x04, 0x1),
        (0x05, 0x0),
        (0x05, 0x1),
        (0x05, 0x6),
        (0x1c, 0x0),
        (0x1d, 0x0),
        (0x08, 0x0),
        (0x0b, 0x0),
        (0x1b, 0x81),
        (0x21, 0x81),
        (0x00, 0x4),
        (0x07, 0x0),
    ] {
        assert!(
            counts.get(&(op, status)).copied().unwrap_or(0) > 0,
            "the stream never produced opcode {op:#x} with status {status:#x}: {counts:?}"
        );
    }
    assert!(
        closes > 50 && bad_magic > 5,
        "closes {closes}, bad magic {bad_magic}"
    );
}
