//! End-to-end tests of the binary protocol: every opcode memcached 1.6.18
//! implements, quiet semantics, errors, `-B` modes and binary and text
//! connections side by side. The expected answers are memcached's (checked
//! against Debian's memcached; `WASMCACHED_TEST_BIN=/usr/bin/memcached`
//! runs these tests against it).

use crate::common;

use common::{Client, Server};
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::binary::status::{DELTA_BADVAL, E2BIG, EEXISTS, EINVAL, ENOENT, NOT_STORED, UNKNOWN};
use common::binary::{arith_extras, op, packet, read_resp, store_extras, Resp};

/// A blocking binary client whose reads time out.
struct Bin {
    s: TcpStream,
    opaque: u32,
}

impl Bin {
    fn connect(port: u16) -> Bin {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        Bin { s, opaque: 100 }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Sends a request; returns its opaque.
    fn req(&mut self, op: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> u32 {
        self.opaque += 1;
        let p = packet(op, extras, key, value, cas, self.opaque);
        self.send(&p);
        self.opaque
    }

    fn try_read(&mut self) -> std::io::Result<Resp> {
        read_resp(&mut self.s)
    }

    fn read(&mut self) -> Resp {
        self.try_read().expect("read a response")
    }

    /// Sends a request and reads its response, checking opcode and opaque.
    fn call(&mut self, op: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Resp {
        let o = self.req(op, extras, key, value, cas);
        let r = self.read();
        assert_eq!((r.op, r.opaque), (op, o), "{r:?}");
        r
    }

    fn set(&mut self, key: &[u8], value: &[u8], flags: u32) -> Resp {
        let r = self.call(op::SET, &store_extras(flags, 0), key, value, 0);
        assert_eq!(r.status, 0, "{r:?}");
        r
    }

    fn get(&mut self, key: &[u8]) -> Resp {
        self.call(op::GET, &[], key, &[], 0)
    }

    /// Sends a noop and returns every response before its answer.
    fn until_noop(&mut self) -> Vec<Resp> {
        let o = self.req(op::NOOP, &[], &[], &[], 0);
        let mut out = Vec::new();
        loop {
            let r = self.read();
            if r.op == op::NOOP && r.opaque == o {
                return out;
            }
            out.push(r);
        }
    }

    /// Expects the server to close the connection (after any answers), returning those.
    fn expect_closed(&mut self) -> Vec<Resp> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "connection not closed: {out:?}");
            match self.try_read() {
                Ok(r) => out.push(r),
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return out,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
                Err(e) => panic!("expected a close, got {e}"),
            }
        }
    }
}

fn be64(v: &[u8]) -> u64 {
    u64::from_be_bytes(v.try_into().expect("8 bytes"))
}

fn err_body(status: u16) -> &'static [u8] {
    match status {
        ENOENT => b"Not found",
        EEXISTS => b"Data exists for key.",
        E2BIG => b"Too large.",
        EINVAL => b"Invalid arguments",
        NOT_STORED => b"Not stored.",
        DELTA_BADVAL => b"Non-numeric server-side value for incr or decr",
        UNKNOWN => b"Unknown command",
        _ => b"?",
    }
}

fn assert_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.value, err_body(status), "{r:?}");
    assert!(
        r.key.is_empty() && r.extras.is_empty() && r.cas == 0,
        "{r:?}"
    );
}

#[test]
fn get_set_and_their_variants() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    let set = c.set(b"a", b"hello", 0xdeadbeef);
    assert!(set.cas != 0 && set.value.is_empty() && set.extras.is_empty());
    let g = c.get(b"a");
    assert_eq!(g.status, 0);
    assert_eq!(g.extras, 0xdeadbeefu32.to_be_bytes());
    assert_eq!(
        (g.key.as_slice(), g.value.as_slice()),
        (&b""[..], &b"hello"[..])
    );
    assert_eq!(g.cas, set.cas);
    let k = c.call(op::GETK, &[], b"a", &[], 0);
    assert_eq!(
        (k.status, k.key.as_slice(), k.value.as_slice()),
        (0, &b"a"[..], &b"hello"[..])
    );
    // Misses: get answers "Not found", getk the key (as key, no body).
    assert_error(&c.get(b"nope"), ENOENT);
    let km = c.call(op::GETK, &[], b"nope", &[], 0);
    assert_eq!(
        (km.status, km.key.as_slice(), km.value.len()),
        (ENOENT, &b"nope"[..], 0)
    );
    // Binary keys may hold any byte.
    let weird = b"\x00 \r\nkey\xff";
    c.set(weird, b"w", 0);
    assert_eq!(c.get(weird).value, b"w");
    // add / replace
    assert_error(
        &c.call(op::ADD, &store_extras(0, 0), b"a", b"x", 0),
        EEXISTS,
    );
    assert_eq!(
        c.call(op::ADD, &store_extras(0, 0), b"b", b"bee", 0).status,
        0
    );
    assert_error(
        &c.call(op::REPLACE, &store_extras(0, 0), b"zz", b"x", 0),
        ENOENT,
    );
    assert_eq!(
        c.call(op::REPLACE, &store_extras(7, 0), b"b", b"B", 0)
            .status,
        0
    );
    let b = c.get(b"b");
    assert_eq!(
        (b.extras, b.value),
        (7u32.to_be_bytes().to_vec(), b"B".to_vec())
    );
    // append / prepend keep the flags; a missing key is NOT_STORED.
    assert_eq!(c.call(op::APPEND, &[], b"a", b"!", 0).status, 0);
    assert_eq!(c.call(op::PREPEND, &[], b"a", b"<", 0).status, 0);
    let a = c.get(b"a");
    assert_eq!(
        (a.value.as_slice(), a.extras.as_slice()),
        (&b"<hello!"[..], &0xdeadbeefu32.to_be_bytes()[..])
    );
    assert_error(&c.call(op::APPEND, &[], b"zz", b"x", 0), NOT_STORED);
    assert_error(&c.call(op::PREPEND, &[], b"zz", b"x", 0), NOT_STORED);
    // Empty values are fine.
    c.set(b"empty", b"", 0);
    assert_eq!(c.get(b"empty").value, b"");
}

#[test]
fn cas_semantics() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    let first = c.set(b"k", b"1", 0).cas;
    // A set with a CAS is a compare-and-swap.
    assert_error(
        &c.call(op::SET, &store_extras(0, 0), b"k", b"2", first + 1000),
        EEXISTS,
    );
    let second = c.call(op::SET, &store_extras(0, 0), b"k", b"2", first);
    assert_eq!(second.status, 0);
    assert_ne!(second.cas, first);
    // add/replace with a CAS are compare-and-swaps too; a missing key is ENOENT.
    assert_error(
        &c.call(op::ADD, &store_extras(0, 0), b"missing", b"x", 5),
        ENOENT,
    );
    assert_eq!(
        c.call(op::ADD, &store_extras(0, 0), b"k", b"3", second.cas)
            .status,
        0
    );
    // append with a wrong CAS fails.
    let now = c.get(b"k").cas;
    assert_error(&c.call(op::APPEND, &[], b"k", b"x", now + 1), EEXISTS);
    assert_eq!(c.call(op::APPEND, &[], b"k", b"x", now).status, 0);
    // delete with a CAS.
    let now = c.get(b"k").cas;
    assert_error(&c.call(op::DELETE, &[], b"k", &[], now + 1), EEXISTS);
    let d = c.call(op::DELETE, &[], b"k", &[], now);
    assert_eq!((d.status, d.cas), (0, 0));
    assert_error(&c.call(op::DELETE, &[], b"k", &[], 0), ENOENT);
    // incr with a wrong CAS.
    let n = c.set(b"n", b"5", 0).cas;
    assert_error(
        &c.call(op::INCR, &arith_extras(1, 0, 0), b"n", &[], n + 1),
        EEXISTS,
    );
    let r = c.call(op::INCR, &arith_extras(1, 0, 0), b"n", &[], n);
    assert_eq!((r.status, be64(&r.value)), (0, 6));
}

#[test]
fn incr_decr() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    // A miss creates the item with the initial value (flags 0).
    let r = c.call(op::INCR, &arith_extras(5, 10, 0), b"n", &[], 0);
    assert_eq!((r.status, be64(&r.value), r.extras.len()), (0, 10, 0));
    assert!(r.cas != 0);
    let g = c.get(b"n");
    assert_eq!(
        (g.value.as_slice(), g.extras.as_slice()),
        (&b"10"[..], &[0u8; 4][..])
    );
    assert_eq!(g.cas, r.cas);
    let r = c.call(op::INCR, &arith_extras(5, 10, 0), b"n", &[], 0);
    assert_eq!(be64(&r.value), 15);
    let r = c.call(op::DECR, &arith_extras(100, 0, 0), b"n", &[], 0);
    assert_eq!(be64(&r.value), 0, "decr saturates at 0");
    // Wrap-around at 2^64.
    c.set(b"big", u64::MAX.to_string().as_bytes(), 0);
    let r = c.call(op::INCR, &arith_extras(2, 0, 0), b"big", &[], 0);
    assert_eq!(be64(&r.value), 1);
    // Expiration 0xffffffff: no autovivification.
    assert_error(
        &c.call(op::INCR, &arith_extras(1, 1, u32::MAX), b"none", &[], 0),
        ENOENT,
    );
    assert_error(
        &c.call(op::DECR, &arith_extras(1, 1, u32::MAX), b"none", &[], 0),
        ENOENT,
    );
    // Non-numeric value.
    c.set(b"text", b"abc", 0);
    assert_error(
        &c.call(op::INCR, &arith_extras(1, 0, 0), b"text", &[], 0),
        DELTA_BADVAL,
    );
    // Quiet forms answer only errors.
    c.req(op::INCRQ, &arith_extras(1, 0, 0), b"n", &[], 0);
    c.req(op::DECRQ, &arith_extras(1, 0, 0), b"n", &[], 0);
    let o = c.req(op::INCRQ, &arith_extras(1, 0, u32::MAX), b"none", &[], 0);
    let rs = c.until_noop();
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert_eq!(
        (rs[0].op, rs[0].opaque, rs[0].status),
        (op::INCRQ, o, ENOENT)
    );
    // memcached rewrites a shorter number in place, padded with blanks.
    assert_eq!(c.get(b"n").value, b"0 ");
}

#[test]
fn touch_and_gat() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    let set = c.set(b"t", b"val", 42);
    // touch: flags, no key, no value.
    let r = c.call(op::TOUCH, &100u32.to_be_bytes(), b"t", &[], 0);
    assert_eq!(
        (r.status, r.extras.as_slice(), r.value.len(), r.cas),
        (0, &42u32.to_be_bytes()[..], 0, set.cas)
    );
    let r = c.call(op::GAT, &100u32.to_be_bytes(), b"t", &[], 0);
    assert_eq!(
        (r.status, r.key.len(), r.value.as_slice()),
        (0, 0, &b"val"[..])
    );
    let r = c.call(op::GATK, &100u32.to_be_bytes(), b"t", &[], 0);
    assert_eq!(
        (r.key.as_slice(), r.value.as_slice()),
        (&b"t"[..], &b"val"[..])
    );
    assert_error(&c.call(op::TOUCH, &[0; 4], b"zz", &[], 0), ENOENT);
    assert_error(&c.call(op::GAT, &[0; 4], b"zz", &[], 0), ENOENT);
    let r = c.call(op::GATK, &[0; 4], b"zz", &[], 0);
    assert_eq!((r.status, r.key.as_slice()), (ENOENT, &b"zz"[..]));
    // Quiet gats answer hits only.
    let hit = c.req(op::GATQ, &[0; 4], b"t", &[], 0);
    c.req(op::GATQ, &[0; 4], b"zz", &[], 0);
    let hitk = c.req(op::GATKQ, &[0; 4], b"t", &[], 0);
    c.req(op::GATKQ, &[0; 4], b"zz", &[], 0);
    let rs = c.until_noop();
    assert_eq!(
        rs.iter().map(|r| (r.op, r.opaque)).collect::<Vec<_>>(),
        vec![(op::GATQ, hit), (op::GATKQ, hitk)]
    );
    assert_eq!(rs[1].key, b"t");
    // A touch into the past expires the item.
    let r = c.call(op::TOUCH, &100_000_000u32.to_be_bytes(), b"t", &[], 0);
    assert_eq!(r.status, 0);
    assert_error(&c.get(b"t"), ENOENT);
}

#[test]
fn quiet_commands_answer_only_what_memcached_does() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    c.req(op::SETQ, &store_extras(1, 0), b"q1", b"one", 0);
    c.req(op::SETQ, &store_extras(2, 0), b"q2", b"two", 0);
    let add = c.req(op::ADDQ, &store_extras(0, 0), b"q1", b"x", 0);
    c.req(op::ADDQ, &store_extras(0, 0), b"q3", b"three", 0);
    let rep = c.req(op::REPLACEQ, &store_extras(0, 0), b"none", b"x", 0);
    c.req(op::REPLACEQ, &store_extras(0, 0), b"q3", b"THREE", 0);
    c.req(op::APPENDQ, &[], b"q1", b"+", 0);
    c.req(op::PREPENDQ, &[], b"q1", b"-", 0);
    let app = c.req(op::APPENDQ, &[], b"none", b"x", 0);
    c.req(op::DELETEQ, &[], b"q2", &[], 0);
    let del = c.req(op::DELETEQ, &[], b"q2", &[], 0);
    let hit = c.req(op::GETQ, &[], b"q1", &[], 0);
    c.req(op::GETQ, &[], b"q2", &[], 0);
    let hitk = c.req(op::GETKQ, &[], b"q3", &[], 0);
    c.req(op::GETKQ, &[], b"none", &[], 0);
    let rs = c.until_noop();
    let got: Vec<(u8, u32, u16)> = rs.iter().map(|r| (r.op, r.opaque, r.status)).collect();
    assert_eq!(
        got,
        vec![
            (op::ADDQ, add, EEXISTS),
            (op::REPLACEQ, rep, ENOENT),
            (op::APPENDQ, app, NOT_STORED),
            (op::DELETEQ, del, ENOENT),
            (op::GETQ, hit, 0),
            (op::GETKQ, hitk, 0),
        ]
    );
    assert_eq!(
        (rs[4].value.as_slice(), rs[4].key.len()),
        (&b"-one+"[..], 0)
    );
    assert_eq!(
        (rs[5].value.as_slice(), rs[5].key.as_slice()),
        (&b"THREE"[..], &b"q3"[..])
    );
    // A non-quiet command after quiet ones answers in order.
    c.req(op::SETQ, &store_extras(0, 0), b"x", b"1", 0);
    let o = c.req(op::GET, &[], b"x", &[], 0);
    let r = c.read();
    assert_eq!(
        (r.op, r.opaque, r.value.as_slice()),
        (op::GET, o, &b"1"[..])
    );
}

#[test]
fn noop_version_verbosity_and_sasl() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    let r = c.call(op::NOOP, &[], &[], &[], 0);
    assert_eq!((r.status, r.value.len(), r.cas), (0, 0, 0));
    let v = c.call(op::VERSION, &[], &[], &[], 0);
    assert_eq!(v.status, 0);
    assert!(v.value.starts_with(b"1.6."), "{v:?}");
    // memcached 1.6.18 has no verbosity handler, and SASL is off: unknown
    // commands, whose body is swallowed.
    let o = c.req(op::VERBOSITY, &1u32.to_be_bytes(), &[], &[], 0);
    c.send(b"xxxx");
    let r = c.read();
    assert_eq!((r.op, r.opaque), (op::VERBOSITY, o));
    assert_error(&r, UNKNOWN);
    for (opc, key, value) in [
        (op::SASL_LIST, &b""[..], &b""[..]),
        (op::SASL_AUTH, b"PLAIN", b"\0user\0pass"),
        (op::SASL_STEP, b"PLAIN", b"more"),
        (0x42, b"", b"whatever"),
    ] {
        let r = c.call(opc, &[], key, value, 0);
        assert_error(&r, UNKNOWN);
    }
    // The connection is still in step.
    assert_eq!(c.call(op::NOOP, &[], &[], &[], 0).status, 0);
}

#[test]
fn flush_with_and_without_delay() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    c.set(b"f", b"1", 0);
    let r = c.call(op::FLUSH, &[], &[], &[], 0);
    assert_eq!((r.status, r.value.len()), (0, 0));
    assert_error(&c.get(b"f"), ENOENT);
    c.set(b"f", b"2", 0);
    assert_eq!(c.get(b"f").value, b"2", "items set after a flush survive");
    // flushq: no answer.
    c.req(op::FLUSHQ, &[0; 4], &[], &[], 0);
    assert!(c.until_noop().is_empty());
    assert_error(&c.get(b"f"), ENOENT);
    // A delayed flush.
    c.set(b"d", b"3", 0);
    assert_eq!(
        c.call(op::FLUSH, &2u32.to_be_bytes(), &[], &[], 0).status,
        0
    );
    assert_eq!(c.get(b"d").status, 0, "still there before the delay");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if c.get(b"d").status == ENOENT {
            break;
        }
        assert!(Instant::now() < deadline, "delayed flush never happened");
    }
}

#[test]
fn flush_disabled_is_auth_error() {
    let s = Server::start(&["-F"]);
    let mut c = Bin::connect(s.port());
    let r = c.call(op::FLUSH, &[], &[], &[], 0);
    assert_eq!(
        (r.status, r.value.as_slice()),
        (0x20, &b"Auth failure."[..])
    );
    let r = c.call(op::FLUSHQ, &[], &[], &[], 0);
    assert_eq!(r.status, 0x20, "errors answer quiet commands too");
}

/// A binary `stat` request for `group`: its (name, value) packets, or the
/// error status.
fn read_stats(c: &mut Bin, group: &[u8]) -> Result<Vec<(String, String)>, u16> {
    let o = c.req(op::STAT, &[], group, &[], 0);
    let mut out = Vec::new();
    loop {
        let r = c.read();
        assert_eq!((r.op, r.opaque), (op::STAT, o));
        if r.status != 0 {
            return Err(r.status);
        }
        if r.key.is_empty() {
            assert!(r.value.is_empty());
            return Ok(out);
        }
        out.push((
            String::from_utf8_lossy(&r.key).into_owned(),
            String::from_utf8_lossy(&r.value).into_owned(),
        ));
    }
}

/// Issue 17: the binary protocol's stats groups have memcached's names in
/// memcached's order too (the same items in both: small ones, in
/// memcached's first slab class), and `plugin` is wasmcached's own group.
#[cfg(target_os = "linux")]
#[test]
fn stats_names_match_memcached() {
    let ours = Server::start(&["-t", "2"]);
    let theirs = Server::start_memcached(&["-t", "2"]);
    let mut names = Vec::new();
    for s in [&ours, &theirs] {
        let mut c = Bin::connect(s.port());
        c.set(b"a", b"v", 0);
        c.set(b"b", b"vv", 0);
        c.get(b"a");
        let mut groups = Vec::new();
        for g in [&b""[..], b"items", b"slabs", b"sizes"] {
            let lines = read_stats(&mut c, g).unwrap();
            groups.push(lines.into_iter().map(|(k, _)| k).collect::<Vec<_>>());
        }
        names.push(groups);
    }
    for (i, g) in ["", "items", "slabs", "sizes"].iter().enumerate() {
        assert_eq!(names[0][i], names[1][i], "binary stats {g:?}");
    }
    let mut c = Bin::connect(ours.port());
    if common::testing_memcached() {
        assert_eq!(read_stats(&mut c, b"plugin"), Err(ENOENT));
    } else {
        let plugin = read_stats(&mut c, b"plugin").unwrap();
        assert_eq!(
            plugin[0],
            ("plugin".to_string(), "default-store".to_string())
        );
        assert!(
            plugin.contains(&("shards".to_string(), "2".to_string())),
            "{plugin:?}"
        );
        assert!(
            plugin.iter().any(|(k, _)| k == "plugin_traps"),
            "{plugin:?}"
        );
    }
}

#[test]
fn stats_groups() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    c.set(b"s", b"v", 0);
    c.get(b"s");
    c.get(b"none");
    let general = read_stats(&mut c, b"").unwrap();
    let get = |k: &str| general.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("cmd_get").as_deref(), Some("2"));
    assert_eq!(get("get_hits").as_deref(), Some("1"));
    assert_eq!(get("get_misses").as_deref(), Some("1"));
    assert_eq!(get("cmd_set").as_deref(), Some("1"));
    assert_eq!(get("curr_items").as_deref(), Some("1"));
    assert!(get("pid").is_some() && get("uptime").is_some());
    let settings = read_stats(&mut c, b"settings").unwrap();
    assert!(
        settings.contains(&("binding_protocol".into(), "auto-negotiate".into())),
        "{settings:?}"
    );
    assert!(read_stats(&mut c, b"items")
        .unwrap()
        .iter()
        .any(|(k, _)| k.ends_with(":number")));
    read_stats(&mut c, b"slabs").unwrap();
    read_stats(&mut c, b"sizes").unwrap();
    assert_eq!(read_stats(&mut c, b"detail on"), Ok(vec![]));
    assert_eq!(read_stats(&mut c, b"bogus"), Err(ENOENT));
    assert_eq!(read_stats(&mut c, b"conns"), Err(ENOENT));
    assert_eq!(read_stats(&mut c, b"reset"), Ok(vec![]));
    let after = read_stats(&mut c, b"").unwrap();
    assert!(
        after.contains(&("cmd_get".into(), "0".into())),
        "reset: {after:?}"
    );
}

#[test]
fn binary_counters_are_shared_with_text() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    c.set(b"x", b"1", 0);
    c.get(b"x");
    c.get(b"y");
    c.call(op::INCR, &arith_extras(1, 0, u32::MAX), b"y", &[], 0);
    c.call(op::INCR, &arith_extras(1, 0, 0), b"x", &[], 0);
    c.call(op::DECR, &arith_extras(1, 0, 0), b"x", &[], 0);
    c.call(op::DELETE, &[], b"y", &[], 0);
    c.call(op::TOUCH, &[0; 4], b"x", &[], 0);
    c.call(op::GAT, &[0; 4], b"y", &[], 0);
    let st = s.stats("");
    let n = |k: &str| st.get(k).cloned().unwrap_or_default();
    assert_eq!(n("cmd_get"), "2");
    assert_eq!(n("get_hits"), "1");
    assert_eq!(n("get_misses"), "1");
    assert_eq!(n("cmd_set"), "1");
    assert_eq!(n("incr_misses"), "1");
    assert_eq!(n("incr_hits"), "1");
    assert_eq!(n("decr_hits"), "1");
    assert_eq!(n("delete_misses"), "1");
    assert_eq!(n("cmd_touch"), "2");
    assert_eq!(n("touch_hits"), "1");
    assert_eq!(n("touch_misses"), "1");
    assert_eq!(n("cmd_flush"), "0");
}

#[test]
fn text_and_binary_connections_share_the_cache() {
    let s = Server::start(&[]);
    let mut b = Bin::connect(s.port());
    let mut t = s.client();
    assert_eq!(t.set("shared", 5, 0, b"from-text"), "STORED");
    let r = b.get(b"shared");
    assert_eq!(
        (r.value.as_slice(), r.extras.as_slice()),
        (&b"from-text"[..], &5u32.to_be_bytes()[..])
    );
    b.set(b"bin", b"from-binary", 9);
    let (v, cas) = t.gets("bin").expect("hit");
    assert_eq!(v, b"from-binary");
    assert_eq!(cas, b.get(b"bin").cas, "one CAS space");
    // Several connections of each kind at once.
    let mut bins: Vec<Bin> = (0..4).map(|_| Bin::connect(s.port())).collect();
    for (i, c) in bins.iter_mut().enumerate() {
        for j in 0..50 {
            c.req(
                op::SETQ,
                &store_extras(0, 0),
                format!("m{i}-{j}").as_bytes(),
                b"v",
                0,
            );
        }
    }
    for c in bins.iter_mut() {
        assert!(c.until_noop().is_empty());
    }
    for i in 0..4 {
        for j in (0..50).step_by(7) {
            assert_eq!(t.get(&format!("m{i}-{j}")).as_deref(), Some(&b"v"[..]));
        }
    }
}

#[test]
fn protocol_errors_close_the_connection() {
    let s = Server::start(&[]);
    // Wrong extras for a get: EINVAL, then close (earlier answers still arrive).
    let mut c = Bin::connect(s.port());
    let n = c.req(op::NOOP, &[], &[], &[], 0);
    let o = c.req(op::GET, &[0; 4], b"k", &[], 0);
    let rs = c.expect_closed();
    assert_eq!(rs.len(), 2, "{rs:?}");
    assert_eq!(rs[0].opaque, n);
    assert_eq!((rs[1].op, rs[1].opaque), (op::GET, o));
    assert_error(&rs[1], EINVAL);
    // A key longer than 250 bytes.
    let mut c = Bin::connect(s.port());
    c.req(op::GET, &[], &[b'k'; 251], &[], 0);
    let rs = c.expect_closed();
    assert_eq!(rs.len(), 1);
    assert_error(&rs[0], EINVAL);
    // A body shorter than the key: unknown command, close.
    let mut c = Bin::connect(s.port());
    let mut p = packet(op::GET, &[], b"abcde", &[], 0, 1);
    p[11] = 3;
    c.send(&p);
    let rs = c.expect_closed();
    assert_eq!(rs.len(), 1);
    assert_error(&rs[0], UNKNOWN);
    // Other malformed requests of known opcodes.
    for p in [
        packet(op::SET, &[0; 4], b"k", &[], 0, 1),
        packet(op::INCR, &[0; 8], b"k", &[], 0, 1),
        packet(op::NOOP, &[], b"k", &[], 0, 1),
        packet(op::VERSION, &[1], &[], &[], 0, 1),
        packet(op::DELETE, &[], &[], &[], 0, 1),
        packet(op::TOUCH, &[], b"k", &[], 0, 1),
        packet(op::FLUSH, &[0; 2], &[], &[], 0, 1),
        packet(op::QUIT, &[], b"k", &[], 0, 1),
        packet(op::STAT, &[0; 4], &[], &[], 0, 1),
    ] {
        let mut c = Bin::connect(s.port());
        c.send(&p);
        let rs = c.expect_closed();
        assert_eq!(rs.len(), 1, "{p:?}: {rs:?}");
        assert_eq!(rs[0].op, p[1]);
        assert_error(&rs[0], EINVAL);
    }
    // Bad magic in the middle of a binary connection: closed without a word.
    let mut c = Bin::connect(s.port());
    assert_eq!(c.call(op::NOOP, &[], &[], &[], 0).status, 0);
    let mut p = packet(op::NOOP, &[], &[], &[], 0, 1);
    p[0] = 0x81;
    c.send(&p);
    assert!(c.expect_closed().is_empty());
    // The server is fine.
    let mut c = Bin::connect(s.port());
    assert_eq!(c.call(op::NOOP, &[], &[], &[], 0).status, 0);
}

#[test]
fn too_large_values_are_e2big_and_swallowed() {
    // memcached also needs its slab chunk size below -I (wasmcached has no slabs).
    let s = if common::testing_memcached() {
        Server::start(&["-I", "2k", "-o", "slab_chunk_max=1024"])
    } else {
        Server::start(&["-I", "2k"])
    };
    let mut c = Bin::connect(s.port());
    c.set(b"big", b"old", 0);
    let r = c.call(op::SET, &store_extras(0, 0), b"big", &[b'x'; 4000], 0);
    assert_error(&r, E2BIG);
    // memcached removes the old value of a refused set.
    assert_error(&c.get(b"big"), ENOENT);
    assert_error(&c.call(op::APPENDQ, &[], b"big", &[b'x'; 4000], 0), E2BIG);
    // Just at the limit: 48 + key 1 + 1 + value + 2 + cas 8 <= 2048.
    assert_eq!(
        c.call(op::SET, &store_extras(0, 0), b"e", &[b'y'; 1988], 0)
            .status,
        0
    );
    assert_error(
        &c.call(op::SET, &store_extras(0, 0), b"e", &[b'y'; 1989], 0),
        E2BIG,
    );
    assert_eq!(c.call(op::NOOP, &[], &[], &[], 0).status, 0);
}

#[test]
fn quit_and_quitq() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    let o = c.req(op::QUIT, &[], &[], &[], 0);
    let rs = c.expect_closed();
    assert_eq!(rs.len(), 1);
    assert_eq!((rs[0].op, rs[0].opaque, rs[0].status), (op::QUIT, o, 0));
    let mut c = Bin::connect(s.port());
    c.req(op::SETQ, &store_extras(0, 0), b"q", b"v", 0);
    c.req(op::QUITQ, &[], &[], &[], 0);
    assert!(c.expect_closed().is_empty());
    let mut c = Bin::connect(s.port());
    assert_eq!(c.get(b"q").value, b"v", "what came before quitq was done");
}

#[test]
fn requests_fed_a_byte_at_a_time() {
    let s = Server::start(&[]);
    let mut c = Bin::connect(s.port());
    let mut stream = packet(op::SET, &store_extras(3, 0), b"slow", b"value", 0, 7);
    stream.extend(packet(op::GETK, &[], b"slow", &[], 0, 8));
    for b in &stream {
        c.send(&[*b]);
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = c.read();
    assert_eq!((r.op, r.opaque, r.status), (op::SET, 7, 0));
    let r = c.read();
    assert_eq!(
        (r.opaque, r.key.as_slice(), r.value.as_slice()),
        (8, &b"slow"[..], &b"value"[..])
    );
    // A deep pipeline in one write, keys over every shard.
    let mut big = Vec::new();
    for i in 0..500u32 {
        big.extend(packet(
            op::SETQ,
            &store_extras(i, 0),
            format!("p{i}").as_bytes(),
            &i.to_be_bytes(),
            0,
            i,
        ));
    }
    for i in 0..500u32 {
        big.extend(packet(
            op::GETKQ,
            &[],
            format!("p{i}").as_bytes(),
            &[],
            0,
            10_000 + i,
        ));
    }
    c.send(&big);
    let rs = c.until_noop();
    assert_eq!(rs.len(), 500);
    for (i, r) in rs.iter().enumerate() {
        assert_eq!(r.opaque, 10_000 + i as u32, "answers in request order");
        assert_eq!(r.value, (i as u32).to_be_bytes());
    }
}

/// A server started with `-B binary`, which the harness cannot start (it
/// waits for a text `version` answer): spawned here, killed on drop.
struct BinaryOnly {
    child: std::process::Child,
    port: u16,
}

impl BinaryOnly {
    fn start() -> BinaryOnly {
        for _ in 0..5 {
            let port = common::free_port();
            let bin = common::server_bin();
            let mut cmd = std::process::Command::new(&bin);
            cmd.args(["-B", "binary", "-p", &port.to_string(), "-l", "127.0.0.1"]);
            if common::testing_memcached() {
                cmd.args(["-u", "root"]);
            }
            let child = cmd
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start the server");
            let mut s = BinaryOnly { child, port };
            let deadline = Instant::now() + common::START_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = s.child.try_wait() {
                    break;
                }
                if let Ok(conn) = TcpStream::connect(("127.0.0.1", port)) {
                    conn.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
                    let mut c = Bin { s: conn, opaque: 1 };
                    if c.call(op::NOOP, &[], &[], &[], 0).status == 0 {
                        return s;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start a -B binary server");
    }
}

impl Drop for BinaryOnly {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Text long enough for a whole binary header (24 bytes): a binary
/// connection only judges the magic byte once it has one.
const TEXT_LINE: &[u8] = b"get aaaa bbbb cccc dddd eeee\r\n";

#[test]
fn b_binary_refuses_text() {
    let s = BinaryOnly::start();
    let mut c = Bin::connect(s.port);
    assert_eq!(c.call(op::NOOP, &[], &[], &[], 0).status, 0);
    let mut t = Bin::connect(s.port);
    t.send(TEXT_LINE);
    assert!(t.expect_closed().is_empty());
    let mut c = Bin::connect(s.port);
    let o = c.req(op::STAT, &[], b"settings", &[], 0);
    let mut found = false;
    loop {
        let r = c.read();
        assert_eq!(r.opaque, o);
        if r.key.is_empty() {
            break;
        }
        if r.key == b"binding_protocol" {
            assert_eq!(r.value, b"binary");
            found = true;
        }
    }
    assert!(found);
}

#[test]
fn b_ascii_refuses_binary() {
    let s = Server::start(&["-B", "ascii"]);
    let mut t = s.client();
    assert_eq!(t.cmd("version").split(' ').next(), Some("VERSION"));
    // A binary noop is text garbage here: its 0x0a byte ends an unknown command line.
    let mut raw = Client::connect(s.port());
    raw.send(packet(op::NOOP, &[], &[], &[], 0, 1));
    assert_eq!(raw.line(), "ERROR");
}

#[test]
fn b_auto_decides_per_connection() {
    let s = Server::start(&["-B", "auto"]);
    let mut b = Bin::connect(s.port());
    let mut t = s.client();
    assert_eq!(b.call(op::NOOP, &[], &[], &[], 0).status, 0);
    assert_eq!(t.set("a", 0, 0, b"1"), "STORED");
    // Once binary, always binary: text on that connection closes it.
    b.send(TEXT_LINE);
    assert!(b.expect_closed().is_empty());
    // Once text, always text: a binary packet is an error line.
    t.send(packet(op::NOOP, &[], &[], &[], 0, 1));
    assert_eq!(t.line(), "ERROR");
    let mut t2 = s.client();
    assert_eq!(t2.get("a").as_deref(), Some(&b"1"[..]));
}
