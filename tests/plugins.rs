//! End-to-end tests of the plugin sandbox and the host services plugins get:
//! a plugin that traps, loops forever, grows memory without bound or returns
//! a malformed answer costs only the affected commands (`SERVER_ERROR`) and
//! that shard's contents; held values (ABI v4) are read only inside the
//! plugin's memory; the clock tick and guest timers reach the guest.

use crate::common;

use common::Server;
use std::time::{Duration, Instant};

/// Each misbehaviour of tests/plugins/faulty.wat, one at a time: the command
/// that triggered it gets SERVER_ERROR, the shard restarts, and the server
/// keeps serving this and other connections.
#[test]
fn faulting_plugin_never_takes_the_server_down() {
    let faulty = common::test_plugin("faulty.wat");
    let mut server = Server::start(&[
        "-t",
        "2",
        "-m",
        "64",
        "--plugin",
        &faulty,
        "-o",
        "plugin_deadline_ms=300",
    ]);
    let mut bystander = server.client();
    let mut c = server.client();
    for (i, key) in ["trap1", "loop1", "grow1", "badr1"].iter().enumerate() {
        let start = Instant::now();
        let answer = c.cmd(&format!("get {key}"));
        assert!(
            answer.starts_with("SERVER_ERROR"),
            "{key}: expected SERVER_ERROR, got {answer:?}"
        );
        assert_eq!(c.line(), "END", "{key}: the get still ends");
        // A runaway guest is stopped by the deadline, not left spinning.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{key} took {:?}",
            start.elapsed()
        );
        // Same connection, same and other shards: still served.
        assert_eq!(c.set("after", 0, 0, b"v"), "STORED", "after {key}");
        assert_eq!(
            bystander.set(&format!("other{i}"), 0, 0, b"v"),
            "STORED",
            "after {key}"
        );
        assert_eq!(
            server.plugin_stat("plugin_traps"),
            i as u64 + 1,
            "after {key}"
        );
        assert_eq!(
            server.plugin_stat("plugin_restarts"),
            i as u64 + 1,
            "after {key}"
        );
    }
    server.assert_running();
}

/// ABI v4 held values from a plugin other than the default store
/// (tests/plugins/held.wat): the host reads the value where the answer
/// points, for the worker that owns the shard and for the other one
/// (`-t 2`, keys on both); an address past the end of the plugin's memory
/// is a fault, answered `SERVER_ERROR`, never read.
#[test]
fn held_values_are_read_in_bounds_only() {
    let held = common::test_plugin("held.wat");
    let server = Server::start(&["-t", "2", "--plugin", &held]);
    let mut c = server.client();
    let mut value = b"held".to_vec();
    value.resize(3000, b'h');
    // One multiget: its keys spread over both workers' shards.
    let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    c.send(format!("get {}\r\n", keys.join(" ")));
    for k in &keys {
        assert_eq!(c.line(), format!("VALUE {k} 0 3000"));
        assert_eq!(c.exact(3002), [value.as_slice(), b"\r\n"].concat(), "{k}");
    }
    assert_eq!(c.line(), "END");
    let answer = c.cmd("get bad1");
    assert!(
        answer.starts_with("SERVER_ERROR"),
        "expected SERVER_ERROR, got {answer:?}"
    );
    assert_eq!(c.line(), "END");
    assert_eq!(server.plugin_stat("plugin_traps"), 1);
    // The shard restarted and serves held values again.
    let mut again = server.client();
    assert_eq!(again.get("k1"), Some(value.clone()));
    assert_eq!(c.get("k2"), Some(value));
}

/// The memory cap holds: a guest that grows its memory until refused is
/// stopped at the cap (budget * 1.5 + 32 MiB + 4 * -I), not at the machine's
/// limit, so the server's RSS stays bounded.
#[test]
fn runaway_memory_growth_is_capped() {
    let faulty = common::test_plugin("faulty.wat");
    let mut server = Server::start(&["-t", "1", "-m", "8", "-I", "1k", "--plugin", &faulty]);
    let mut c = server.client();
    for _ in 0..3 {
        assert!(c.cmd("get grow").starts_with("SERVER_ERROR"));
        assert_eq!(c.line(), "END");
    }
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    #[cfg(target_os = "linux")]
    {
        let rss_kb = common::rss_kib(server.pid());
        // Cap for -m 8: 12 MiB + 32 MiB + 4 KiB; the process adds its own code.
        assert!(rss_kb < 200 * 1024, "RSS {rss_kb} KiB after capped growth");
    }
    server.assert_running();
}

/// The 1-second clock is forwarded into every guest (`wmc_tick`, with the
/// same `now` the `now` import returns), and a timer a guest asked for
/// through `timer_set` calls it back (tests/plugins/timers.wat re-arms a
/// 100 ms timer each time it fires).
#[test]
fn clock_ticks_and_guest_timers_reach_the_plugin() {
    let timers = common::test_plugin("timers.wat");
    let mut server = Server::start(&["-t", "2", "--plugin", &timers]);
    // Two shards, ~10 firings a second each: wait (bounded) until at least
    // 10 firings and 2 ticks are counted, so a loaded machine (or Wine)
    // that runs the timers late does not fail the test.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (fired, ticks, last_now) = loop {
        let s = server.stats("plugin");
        let fired: u64 = s["timer_fired"].parse().unwrap();
        let ticks: u64 = s["ticks"].parse().unwrap();
        let last_now: u64 = s["last_tick_now"].parse().unwrap();
        if (fired >= 10 && ticks >= 2) || Instant::now() > deadline {
            break (fired, ticks, last_now);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(fired >= 10, "timer_fired {fired}");
    assert!(ticks >= 2, "ticks {ticks}");
    // Server time starts at 62 (memcached's clock), summed over two shards.
    assert!(last_now >= 2 * 62, "last_tick_now {last_now}");
    server.assert_running();
}

/// A plugin whose ABI version is not one the server speaks (1, 2) is refused at start with a clear error.
#[test]
fn wrong_abi_version_is_refused() {
    let dir = std::env::temp_dir().join(format!("wasmcached-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v2.wat");
    let faulty = std::fs::read_to_string(common::test_plugin("faulty.wat")).unwrap();
    std::fs::write(
        &path,
        faulty.replace(
            "(func (export \"wmc_abi_version\") (result i32) (i32.const 1))",
            "(func (export \"wmc_abi_version\") (result i32) (i32.const 99))",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::server_bin())
        .args(["-p", "0", "-l", "127.0.0.1", "--plugin"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ABI version 99"), "stderr: {err}");
}

/// A `--plugin` file that is neither a Wasm module nor WAT text is refused
/// at start with a message that says so (issue 16: it said `expected '('`,
/// the WAT parser's complaint); a WAT file with an error gets the WAT
/// parser's message.
#[test]
fn a_file_that_is_neither_wasm_nor_wat_is_refused_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("wasmcached-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let start = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new(common::server_bin())
            .args(["-p", "0", "-l", "127.0.0.1", "--plugin"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} started");
        (path, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (path, err) = start("store.so", b"\x7fELF\x02\x01\x01\0 not a plugin");
    assert_eq!(
        err.trim_end(),
        format!(
            "wasmcached: {} is neither a Wasm module (it does not start with \\0asm) nor WAT \
             text (its first token is not `(`)",
            path.display()
        )
    );
    let (path, err) = start("broken.wat", b";; a store\n(module (func $f (bogus)))\n");
    assert!(
        err.starts_with(&format!(
            "wasmcached: {}: not valid WAT text: ",
            path.display()
        )),
        "stderr: {err}"
    );
    assert!(!err.contains("neither"), "stderr: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A plugin's log lines follow the level `verbosity N` sets at run time
/// (issue 16), not only the `-v` flags it started with:
/// tests/plugins/chatty.wat logs an info line (shown from -vv on) for every
/// batch it runs.
#[test]
fn verbosity_decides_at_run_time_whether_plugin_lines_are_logged() {
    let chatty = common::test_plugin("chatty.wat");
    let server = Server::start(&["-t", "1", "--plugin", &chatty]);
    let mut c = server.client();
    let logged = |s: &Server| {
        s.log()
            .lines()
            .filter(|l| *l == "chatty shard 0: chatty: batch")
            .count()
    };
    assert_eq!(c.cmd("get a"), "END");
    assert_eq!(logged(&server), 0, "logged without -v:\n{}", server.log());
    assert_eq!(c.cmd("verbosity 2"), "OK");
    assert_eq!(c.cmd("get a"), "END");
    // The guest logs while its batch runs, before the answer is sent.
    assert_eq!(logged(&server), 1, "after verbosity 2:\n{}", server.log());
    assert_eq!(c.cmd("verbosity 1"), "OK");
    assert_eq!(c.cmd("get a"), "END");
    assert_eq!(c.cmd("verbosity 2"), "OK");
    assert_eq!(c.cmd("get a"), "END");
    assert_eq!(c.cmd("verbosity 0"), "OK");
    assert_eq!(c.cmd("get a"), "END");
    assert_eq!(
        logged(&server),
        2,
        "info lines at -vv only:\n{}",
        server.log()
    );
}
