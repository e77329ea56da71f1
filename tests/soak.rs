//! Soak and limit tests (loopback only, bounded):
//!
//! 1. churn: hundreds of connections setting (with evictions), getting,
//!    deleting and reconnecting for `WASMCACHED_SOAK_SECS` seconds (default
//!    300), paced at `WASMCACHED_SOAK_RATE` requests/s (default 3000); the
//!    server's RSS stays within `-m` plus a fixed overhead and its open file
//!    descriptors return to the baseline;
//! 2. a client that pipelines gets of a big value forever and never reads
//!    cannot make the server's memory grow without bound;
//! 3. a connection flood beyond `-c` is refused as memcached refuses it
//!    (`ERROR Too many open connections`, then close), and afterwards the
//!    server accepts and serves as before, with its fds back to baseline.
//!
//! RSS and fd figures come from /proc and are Linux-only; they are printed
//! (run with `--nocapture`).

use crate::common;

use common::{Client, Rng, Server};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits (polling, up to `limit`) until `ok` holds; panics with `what` if it
/// never does.
fn eventually(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(target_os = "linux")]
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Waits until the server's fd count is back to `baseline` (closing is
/// asynchronous: the server sees each EOF on its next loop iteration).
#[cfg(target_os = "linux")]
fn fds_return_to(pid: u32, baseline: usize) -> usize {
    let mut now = fd_count(pid);
    eventually(Duration::from_secs(30), "fds back to baseline", || {
        now = fd_count(pid);
        now == baseline
    });
    now
}

/// Total requests per second the churn clients aim at
/// (`WASMCACHED_SOAK_RATE`, default 3000). The checks are about memory, fds
/// and values over time, not throughput; unpaced, the clients took both of
/// CI's cores for five minutes and doubled the time of the Windows build
/// that runs beside them.
fn soak_rate() -> f64 {
    std::env::var("WASMCACHED_SOAK_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|r: &f64| *r > 0.0)
        .unwrap_or(3000.0)
}

fn soak_secs() -> u64 {
    std::env::var("WASMCACHED_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The value stored under `key`: the key repeated to `len` bytes, so that
/// any value read back can be checked against its key.
fn value_for(key: &str, len: usize) -> Vec<u8> {
    key.bytes()
        .chain(b"|".iter().copied())
        .cycle()
        .take(len)
        .collect()
}

/// -m for the churn test, in MiB.
const CHURN_MEM_MIB: u64 = 16;
/// RSS allowed beyond -m in the churn test. Measured on Linux x86_64 (2
/// cores) with -m 16 -t 4 (4 shards), 300 connections, 60 s: RSS 15.3 MiB
/// after start, 53.6 MiB peak and end (the process, wasmtime and the
/// compiled default store; four instances' memories with their tables and
/// allocator slack; connection buffers). The allowance is about three times
/// the measured 38 MiB over -m, for allocator variance; a leak of even
/// 1 KiB per connection churned (~50k a minute) or per item evicted
/// (~360k a minute) exceeds it within the default 300 s.
// Only the Linux run reads RSS (from /proc).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const CHURN_OVERHEAD_MIB: u64 = 112;

/// Hundreds of connections churning sets (with evictions), gets, deletes
/// and reconnects for WASMCACHED_SOAK_SECS: the server's RSS stays within
/// -m plus [`CHURN_OVERHEAD_MIB`], every value read back is the one stored
/// for its key, and the server's open fds return to their baseline.
#[test]
fn churn_keeps_memory_and_fds_bounded() {
    const CONNS: usize = 300;
    const THREADS: usize = 6;
    let secs = soak_secs();
    let mem = CHURN_MEM_MIB.to_string();
    let mut server = Server::start(&["-m", &mem, "-c", "1024"]);
    let port = server.port();
    let pid = server.pid();
    let mut control = server.client().with_label("control");
    eventually(
        Duration::from_secs(10),
        "only the control connection",
        || control.stat("curr_connections") == 1,
    );
    #[cfg(target_os = "linux")]
    let (rss_start, fds_start) = (common::rss_kib(pid), fd_count(pid));
    let _ = pid;

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let reconnects = Arc::new(AtomicU64::new(0));
    let hits = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    let interval = Duration::from_secs_f64(THREADS as f64 / soak_rate());
    for t in 0..THREADS {
        let (stop, ops, reconnects, hits) =
            (stop.clone(), ops.clone(), reconnects.clone(), hits.clone());
        handles.push(std::thread::spawn(move || {
            let mut next = Instant::now();
            let mut rng = Rng::new(common::seed_from_env("WASMCACHED_SOAK_SEED", 7) + t as u64);
            let label = |i: usize| format!("churn-{t}-{i}");
            let mut conns: Vec<Client> = (0..CONNS / THREADS)
                .map(|i| Client::connect(port).with_label(&label(i)))
                .collect();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                // Paced, without catching up after a stall.
                next += interval;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
                i = (i + 1) % conns.len();
                let key = format!("soak:{}", rng.below(200_000));
                let c = &mut conns[i];
                match rng.below(100) {
                    // Sets: mostly small, some up to 64 KiB; 200k keys of
                    // ~4 KiB average are far more than -m 16 holds.
                    0..=54 => {
                        let len = if rng.chance(5) {
                            rng.range(8 * 1024, 64 * 1024)
                        } else {
                            rng.range(1, 8 * 1024)
                        } as usize;
                        assert_eq!(c.set(&key, 0, 0, &value_for(&key, len)), "STORED");
                    }
                    55..=84 => {
                        if let Some(v) = c.get(&key) {
                            assert_eq!(v, value_for(&key, v.len()), "{key}: wrong value");
                            hits.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    85..=94 => {
                        let a = c.cmd(&format!("delete {key}"));
                        assert!(a == "DELETED" || a == "NOT_FOUND", "delete: {a}");
                    }
                    _ => {
                        // Reconnect: sometimes politely, sometimes mid-command.
                        if rng.chance(50) {
                            c.send("quit\r\n");
                        } else {
                            c.send(format!("set {key} 0 0 100\r\nabc"));
                        }
                        conns[i] = Client::connect(port).with_label(&label(i));
                        reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let start = Instant::now();
    #[cfg(target_os = "linux")]
    let mut rss_peak = rss_start;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        #[cfg(target_os = "linux")]
        {
            rss_peak = rss_peak.max(common::rss_kib(pid));
        }
        if handles.iter().any(|h| h.is_finished()) {
            break; // a client thread failed: join below reports it
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("churn client thread");
    }
    let elapsed = start.elapsed();
    let st = control.stats("");
    let evictions: u64 = st["evictions"].parse().unwrap();
    let total_conns: u64 = st["total_connections"].parse().unwrap();
    println!(
        "churn: {:.0} s, {} ops, {} hits, {} reconnects, {} evictions, {} connections in total",
        elapsed.as_secs_f64(),
        ops.load(Ordering::Relaxed),
        hits.load(Ordering::Relaxed),
        reconnects.load(Ordering::Relaxed),
        evictions,
        total_conns
    );
    assert!(
        evictions > 0,
        "-m {CHURN_MEM_MIB} never evicted: the test did not fill it"
    );
    assert!(hits.load(Ordering::Relaxed) > 0, "no get ever hit");
    eventually(Duration::from_secs(30), "connections closed", || {
        control.stat("curr_connections") == 1
    });
    #[cfg(target_os = "linux")]
    {
        let rss_end = common::rss_kib(pid);
        let fds_end = fds_return_to(pid, fds_start);
        let limit = (CHURN_MEM_MIB + CHURN_OVERHEAD_MIB) * 1024;
        println!(
            "churn: RSS start {} KiB, peak {} KiB, end {} KiB (limit -m {} MiB + {} MiB \
             overhead = {} KiB); fds start {}, end {}",
            rss_start,
            rss_peak,
            rss_end,
            CHURN_MEM_MIB,
            CHURN_OVERHEAD_MIB,
            limit,
            fds_start,
            fds_end
        );
        assert!(
            rss_peak <= limit,
            "peak RSS {rss_peak} KiB over -m {CHURN_MEM_MIB} MiB + {CHURN_OVERHEAD_MIB} MiB \
             fixed overhead"
        );
    }
    // Still serving normally.
    let mut c = server.client();
    assert_eq!(c.set("after-churn", 0, 0, b"ok"), "STORED");
    assert_eq!(c.get("after-churn").as_deref(), Some(&b"ok"[..]));
    server.assert_running();
}

/// Known issue (reported, not fixed here): the server keeps reading such a
/// client until 4096 replies are pending, each holding a whole value; with
/// 512 KiB values its RSS grew from 9 MiB to 1.1 GiB. Ignored until
/// host/src/conn.rs counts pending reply bytes towards its write high-water
/// mark; run it with `--ignored`.
///
/// A client that pipelines `get big` forever and never reads: the server
/// stops reading that connection once its unsent replies pass the write
/// high-water mark (host/src/conn.rs), so the client's writes block and the
/// server's RSS stays bounded, while other clients are served.
#[test]
fn client_that_never_reads_cannot_grow_the_server() {
    const VALUE: usize = 512 * 1024;
    let mut server = Server::start(&["-m", "64", "-t", "2"]);
    let pid = server.pid();
    let _ = pid;
    let mut c = server.client();
    assert_eq!(c.set("big", 0, 0, &vec![b'x'; VALUE]), "STORED");
    #[cfg(target_os = "linux")]
    let rss_before = common::rss_kib(pid);

    let mut hog = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let chunk = "get big\r\n".repeat(1000);
    let mut gets_sent: u64 = 0;
    let mut blocked = false;
    // If the server read (and answered into memory) everything, 2 million
    // gets would need 1 TiB of replies; it must push back long before that.
    while gets_sent < 2_000_000 {
        match hog.write(chunk.as_bytes()) {
            Ok(n) => gets_sent += (n / 9) as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                blocked = true;
                break;
            }
            Err(e) => panic!("hog write: {e}"),
        }
    }
    assert!(
        blocked,
        "the server kept reading: {gets_sent} gets ({} GiB of replies) without back-pressure",
        (gets_sent * VALUE as u64) >> 30
    );
    // Keep pushing for a while; the server must stay put.
    #[cfg(target_os = "linux")]
    let mut rss_peak = common::rss_kib(pid);
    for _ in 0..5 {
        let _ = hog.write(chunk.as_bytes());
        #[cfg(target_os = "linux")]
        {
            rss_peak = rss_peak.max(common::rss_kib(pid));
        }
        // Others are served meanwhile.
        assert_eq!(c.set("small", 0, 0, b"v"), "STORED");
        assert_eq!(c.get("small").as_deref(), Some(&b"v"[..]));
    }
    println!(
        "never-reading client: {gets_sent} gets sent ({} MiB of replies asked for) before \
         its writes blocked",
        (gets_sent * VALUE as u64) >> 20
    );
    #[cfg(target_os = "linux")]
    {
        let growth = rss_peak.saturating_sub(rss_before);
        println!("never-reading client: RSS before {rss_before} KiB, peak {rss_peak} KiB");
        // What one connection may hold (host/src/conn.rs): at most MAX_SLOTS
        // (64) answers in flight, 512 KiB each, which then move into the
        // write buffer (whose capacity may double): 2 x 64 x 512 KiB = 64 MiB,
        // plus the read buffer and allocator slack: under 80 MiB, however
        // many gets the client sends (it sent hundreds of thousands).
        assert!(
            growth < 80 * 1024,
            "RSS grew by {growth} KiB for one client that never reads"
        );
    }
    drop(hog);
    let mut fresh = server.client();
    assert_eq!(fresh.get("small").as_deref(), Some(&b"v"[..]));
    server.assert_running();
}

/// More connections than -c: the excess gets `ERROR Too many open
/// connections` and is closed (memcached's answer); the accepted ones serve;
/// after the flood the server accepts and serves again and its fds are
/// back to the baseline.
#[test]
fn connection_flood_beyond_the_limit_is_refused_and_recovers() {
    const LIMIT: usize = 50;
    const FLOOD: usize = 200;
    let limit = LIMIT.to_string();
    let mut server = Server::start(&["-c", &limit, "-t", "2"]);
    let pid = server.pid();
    let _ = pid;
    let mut control = server.client().with_label("control");
    eventually(
        Duration::from_secs(10),
        "only the control connection",
        || control.stat("curr_connections") == 1,
    );
    let rejected_before = control.stat("rejected_connections");
    #[cfg(target_os = "linux")]
    let fds_start = fd_count(pid);

    let mut flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port())).unwrap())
        .collect();
    // Every flood connection has been accepted or refused by the server.
    eventually(Duration::from_secs(30), "the flood handled", || {
        let st = control.stats("");
        let rejected: usize = st["rejected_connections"].parse().unwrap();
        let curr: usize = st["curr_connections"].parse().unwrap();
        rejected - rejected_before as usize + curr - 1 == FLOOD
    });
    #[cfg(target_os = "linux")]
    let fds_flood = fd_count(pid);
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for (i, s) in flood.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break false
                }
                Err(e) => panic!("flood {i}: {e}"),
            }
        };
        if got.is_empty() && !closed {
            accepted.push(i);
        } else {
            assert_eq!(
                String::from_utf8_lossy(&got),
                "ERROR Too many open connections\r\n",
                "flood {i}"
            );
            assert!(closed, "flood {i}: refused but left open");
            refused += 1;
        }
    }
    // The control connection holds one of the -c slots.
    assert_eq!(accepted.len(), LIMIT - 1, "accepted");
    assert_eq!(refused, FLOOD - (LIMIT - 1), "refused");
    for &i in &accepted {
        let s = &mut flood[i];
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"version\r\n").unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"VERSION "), "accepted {i}");
    }
    assert_eq!(
        control.stat("rejected_connections") - rejected_before,
        refused as u64
    );
    drop(flood);
    eventually(Duration::from_secs(30), "flood connections closed", || {
        control.stat("curr_connections") == 1
    });
    #[cfg(target_os = "linux")]
    {
        let fds_end = fds_return_to(pid, fds_start);
        println!(
            "flood: -c {LIMIT}, {FLOOD} connections: {} accepted, {refused} refused; \
             fds start {fds_start}, during {fds_flood}, end {fds_end}",
            accepted.len()
        );
    }
    // Accepting and serving as before, up to the limit again.
    let mut again: Vec<Client> = (0..LIMIT - 1).map(|_| server.client()).collect();
    for (i, c) in again.iter_mut().enumerate() {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, b"v"), "STORED");
    }
    assert_eq!(again[0].get("k7").as_deref(), Some(&b"v"[..]));
    drop(again);
    server.assert_running();
}
