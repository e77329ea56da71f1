//! `-o io=uring|poll`: the workers' reactor backend. The whole suite runs
//! on each (scripts/test.sh sets `WASMCACHED_IO` for a second pass); the
//! tests here pick a backend explicitly and drive the paths that differ
//! most between them: many connections at once (more receives in one loop
//! than the ring has buffers), a client that pipelines without reading
//! (back-pressure cancels the receive), and connections closed while a
//! large reply is still being sent.

use crate::common::{self, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// The backends this platform runs.
fn backends() -> Vec<&'static str> {
    if cfg!(target_os = "linux") {
        vec!["uring", "poll"]
    } else {
        vec!["poll"]
    }
}

#[test]
fn io_option_picks_the_backend() {
    if common::testing_memcached() {
        return; // wasmcached's own option
    }
    for io in backends() {
        let s = Server::start(&["-o", &format!("io={io}")]);
        let mut c = s.client();
        assert_eq!(c.set("k", 3, 0, b"value"), "STORED");
        assert_eq!(c.get("k").as_deref(), Some(&b"value"[..]));
        assert_eq!(c.stats("plugin").get("io").map(String::as_str), Some(io));
    }
    let out = common::run_bounded(
        Command::new(common::server_bin()).args(["-o", "io=epoll", "-p", "0"]),
        Duration::from_secs(30),
    );
    assert!(!out.success);
    assert!(
        out.stderr.contains("io must be uring or poll"),
        "{}",
        out.stderr
    );
    if !cfg!(target_os = "linux") {
        let out = common::run_bounded(
            Command::new(common::server_bin()).args(["-o", "io=uring", "-p", "0"]),
            Duration::from_secs(30),
        );
        assert!(!out.success);
        assert!(out.stderr.contains("Linux only"), "{}", out.stderr);
    }
}

/// 300 connections each send a 40 KiB set before any answer is read: on
/// io_uring one loop then sees more received buffers than the ring's 512
/// (8 KiB each), which ends multishot receives (ENOBUFS) until they are
/// re-armed. Every set is stored whole.
#[test]
fn many_connections_at_once_all_answered() {
    if common::testing_memcached() {
        return;
    }
    for io in backends() {
        let s = Server::start(&["-o", &format!("io={io}"), "-t", "1"]);
        let mut conns: Vec<TcpStream> = (0..300)
            .map(|_| {
                let t = TcpStream::connect(("127.0.0.1", s.port())).unwrap();
                t.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
                t
            })
            .collect();
        let value = |i: usize| vec![b'a' + (i % 26) as u8; 40 * 1024];
        for (i, t) in conns.iter_mut().enumerate() {
            let mut req = format!("set k{i} 0 0 {}\r\n", 40 * 1024).into_bytes();
            req.extend(value(i));
            req.extend(b"\r\nget k0\r\n");
            t.write_all(&req).unwrap();
        }
        for (i, t) in conns.iter_mut().enumerate() {
            let mut got = vec![0u8; 8];
            t.read_exact(&mut got)
                .unwrap_or_else(|e| panic!("io={io}: connection {i}: {e}"));
            assert_eq!(&got[..], b"STORED\r\n", "io={io}: connection {i}");
        }
        let mut c = s.client();
        for i in [0, 137, 299] {
            assert_eq!(c.get(&format!("k{i}")), Some(value(i)), "io={io}: k{i}");
        }
    }
}

/// A client that pipelines gets of a 512 KiB value without reading: the
/// server stops taking its input at the high-water mark (so its buffers
/// stay bounded), another connection is served meanwhile, and once the
/// client reads, every answer arrives in order.
#[cfg(target_os = "linux")] // reads the server's RSS from /proc
#[test]
fn pipelining_without_reading_is_held_back_then_answered() {
    if common::testing_memcached() {
        return;
    }
    for io in backends() {
        let s = Server::start(&["-o", &format!("io={io}"), "-t", "1"]);
        let value = vec![b'x'; 512 * 1024];
        let mut c = s.client();
        assert_eq!(c.set("big", 0, 0, &value), "STORED");
        let rss_before = common::rss_kib(s.pid());
        let mut greedy = TcpStream::connect(("127.0.0.1", s.port())).unwrap();
        greedy.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        greedy
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // 400 gets ask for 200 MiB of answers; the server cannot keep them,
        // so the client's writes block once the socket buffers are full.
        let req = b"get big\r\n".repeat(400);
        let mut sent = 0;
        while sent < req.len() {
            match greedy.write(&req[sent..]) {
                Ok(n) => sent += n,
                Err(_) => break, // the server stopped reading: back-pressure
            }
        }
        // Held back: far less than the 200 MiB asked for is buffered.
        let grown = common::rss_kib(s.pid()).saturating_sub(rss_before);
        assert!(grown < 64 * 1024, "io={io}: grew by {grown} KiB");
        // The worker still serves others.
        let mut other = common::Client::connect(s.port());
        assert_eq!(other.set("small", 0, 0, b"1"), "STORED");
        assert_eq!(other.get("small").as_deref(), Some(&b"1"[..]));
        // Now read: all that was sent is answered, in order.
        greedy.set_write_timeout(None).unwrap();
        greedy.write_all(&req[sent..]).ok();
        let reader = std::thread::spawn(move || {
            let one = format!("VALUE big 0 {}\r\n", 512 * 1024).len() + 512 * 1024 + 2 + 5;
            let mut buf = vec![0u8; one];
            for i in 0..400 {
                greedy
                    .read_exact(&mut buf)
                    .unwrap_or_else(|e| panic!("answer {i}: {e}"));
                assert!(buf.starts_with(b"VALUE big 0 "), "answer {i}");
                assert!(buf.ends_with(b"\r\nEND\r\n"), "answer {i}");
            }
        });
        reader.join().unwrap();
    }
}

/// Connections that close while large replies are still leaving (the
/// io_uring backend keeps a send's buffer until it completes) leave the
/// server serving.
#[test]
fn closing_with_replies_in_flight() {
    if common::testing_memcached() {
        return;
    }
    for io in backends() {
        let s = Server::start(&["-o", &format!("io={io}")]);
        let mut c = s.client();
        assert_eq!(c.set("big", 0, 0, &vec![b'y'; 256 * 1024]), "STORED");
        for _ in 0..50 {
            let mut t = TcpStream::connect(("127.0.0.1", s.port())).unwrap();
            t.write_all(&b"get big\r\n".repeat(8)).unwrap();
            let mut first = [0u8; 64];
            let _ = t.read(&mut first);
            drop(t);
        }
        let mut after = s.client();
        assert_eq!(after.cmd("version").split(' ').next(), Some("VERSION"));
        assert_eq!(after.get("big").map(|v| v.len()), Some(256 * 1024));
    }
}
