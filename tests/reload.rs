//! Hot plugin reload over real sockets: `plugin reload` (every platform) and
//! SIGHUP (unix) swap the plugin of a running server while clients keep
//! going. No connection may drop and no reply may be lost or wrong; with the
//! ABI v3 item dump/load on both sides no item is lost either.

use crate::common;

use common::{Client, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client that loops set/get on its own keys until `stop`, checking every
/// reply; returns how many round trips it made.
fn churn(port: u16, id: usize, stop: Arc<AtomicBool>) -> u64 {
    let mut c = Client::connect(port).with_label(&format!("churn-{id}"));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("churn:{id}:{}", n % 50);
        let value = format!("{id}-{n}");
        // Pipelined: a set and a get in one write, so replies are in flight
        // while the reload happens.
        let mut msg = format!("set {key} {id} 0 {}\r\n{value}\r\n", value.len()).into_bytes();
        msg.extend_from_slice(format!("get {key}\r\n").as_bytes());
        c.send(msg);
        assert_eq!(c.line(), "STORED", "set #{n}");
        let v = c.values();
        assert_eq!(v.len(), 1, "get #{n} of {key} after its set");
        assert_eq!(v[0].data, value.as_bytes(), "get #{n}");
        assert_eq!(v[0].flags, id as u32);
        n += 1;
    }
    n
}

fn fill(c: &mut Client, n: usize) {
    for i in 0..n {
        assert_eq!(
            c.set(
                &format!("keep:{i}"),
                i as u32,
                0,
                format!("v{i}").as_bytes()
            ),
            "STORED"
        );
    }
}

fn assert_all_there(c: &mut Client, n: usize) {
    for i in 0..n {
        c.send(format!("get keep:{i}\r\n"));
        let v = c.values();
        assert_eq!(v.len(), 1, "keep:{i} lost");
        assert_eq!(v[0].data, format!("v{i}").as_bytes());
        assert_eq!(v[0].flags, i as u32);
    }
}

/// Reload under load with the default store on both sides: every client
/// keeps its connection and every answer, and every item survives.
#[test]
fn reload_under_load_loses_no_connection_reply_or_item() {
    let s = Server::start(&["-t", "2", "-o", "shards=4"]);
    let mut admin = s.client();
    fill(&mut admin, 3000);
    let stop = Arc::new(AtomicBool::new(false));
    let port = s.port();
    let clients: Vec<_> = (0..6)
        .map(|id| {
            let stop = stop.clone();
            std::thread::spawn(move || churn(port, id, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(admin.cmd("plugin reload"), "OK");
    let reload_time = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    #[cfg(unix)]
    {
        // SAFETY: kill() on our own child.
        assert_eq!(
            unsafe { libc::kill(s.pid() as libc::pid_t, libc::SIGHUP) },
            0
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.stats("plugin")["plugin_reloads"] != "2" {
            assert!(Instant::now() < deadline, "SIGHUP did not reload");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        total += c
            .join()
            .expect("a client saw a dropped connection or a wrong reply");
    }
    assert!(total > 0);
    assert_all_there(&mut admin, 3000);
    let st = s.stats("plugin");
    let reloads = if cfg!(unix) { "2" } else { "1" };
    assert_eq!(st["plugin_reloads"], reloads);
    assert_eq!(st["plugin_reload_failures"], "0");
    assert_eq!(st["plugin_traps"], "0");
    let log = s.log();
    assert!(
        log.contains("plugin reload: default-store on 4 shards, "),
        "no reload line in the log:\n{log}"
    );
    eprintln!("{total} round trips during the reloads; `plugin reload` took {reload_time:?}");
}

/// A plugin without dump/load (the minimal WAT store) is swapped for a fresh
/// instance of itself: it starts empty, and the log says so.
#[test]
fn reload_without_dump_starts_empty_and_says_so() {
    let wat = common::workspace_root().join("examples/wat-minimal/wat_minimal.wat");
    let s = Server::start(&["--plugin", wat.to_str().unwrap(), "-t", "1"]);
    let mut c = s.client();
    assert_eq!(c.set("k", 1, 0, b"v"), "STORED");
    assert_eq!(c.cmd("plugin reload"), "OK");
    assert_eq!(
        c.get("k"),
        None,
        "the minimal store has no dump: nothing moves"
    );
    assert_eq!(c.set("k2", 1, 0, b"v2"), "STORED");
    assert_eq!(c.get("k2").as_deref(), Some(&b"v2"[..]));
    assert!(
        s.log()
            .contains("started empty (the old plugin has no item dump (wmc_dump))"),
        "{}",
        s.log()
    );
}

/// A reload that cannot compile the new file keeps the old plugin and its
/// items, and answers SERVER_ERROR; fixing the file makes the next one work.
#[test]
fn failed_reload_keeps_the_old_plugin() {
    let dir = std::env::temp_dir().join(format!("wasmcached-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("store.wat");
    let wat = common::workspace_root().join("examples/wat-minimal/wat_minimal.wat");
    std::fs::copy(&wat, &plugin).unwrap();
    let s = Server::start(&["--plugin", plugin.to_str().unwrap(), "-t", "1"]);
    let mut c = s.client();
    assert_eq!(c.set("k", 1, 0, b"v"), "STORED");
    std::fs::write(&plugin, b"(module (this is not wasm))").unwrap();
    let reply = c.cmd("plugin reload");
    assert!(reply.starts_with("SERVER_ERROR "), "{reply}");
    assert_eq!(c.get("k").as_deref(), Some(&b"v"[..]), "old plugin kept");
    assert_eq!(s.stats("plugin")["plugin_reload_failures"], "1");
    assert_eq!(c.cmd("plugin nonsense"), "ERROR");
    std::fs::copy(&wat, &plugin).unwrap();
    assert_eq!(c.cmd("plugin reload"), "OK");
    let _ = std::fs::remove_dir_all(&dir);
}
