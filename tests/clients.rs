//! Real, unchanged memcached clients against wasmcached:
//!
//! - pymemcache (PyPI) for the text protocol: `tests/clients/pymemcache_text.py`
//!   drives its base `Client` through every storage/retrieval/arithmetic
//!   command, `touch`, `flush_all`, `stats`, and spreads keys over three
//!   servers with its `HashClient` (client-side consistent hashing). The
//!   script asserts every result; its exit status is checked here. The
//!   Python is `PYMEMCACHE_PYTHON`, default the venv `./scripts/test.sh`
//!   creates, `target/clients-venv/bin/python3` (`python3 -m venv
//!   target/clients-venv && target/clients-venv/bin/pip install pymemcache`).
//! - libmemcached-tools (Debian) with `--binary` for the binary protocol:
//!   `memccp`, `memccat`, `memcexist`, `memctouch`, `memcrm`, `memcflush`,
//!   `memcstat` (Debian's names for memcp, memcat, ...), cross-checked with
//!   the harness's text client.
//!
//! A missing tool fails the test (never skips). Every external process is
//! killed after a time limit.
// The reference comparisons run where Debian's memcached and its tools do:
// Linux. Under Wine or on macOS/Windows this module is empty (see the
// README, "Platforms").
#![cfg(target_os = "linux")]

use crate::common;

use common::{run_bounded, workspace_root, Output, Server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TOOL_LIMIT: Duration = Duration::from_secs(60);

fn scratch_dir(name: &str) -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

// ---------------------------------------------------------------- pymemcache

fn python_with_pymemcache() -> PathBuf {
    let p = std::env::var_os("PYMEMCACHE_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/clients-venv/bin/python3"));
    assert!(
        p.is_file(),
        "no Python with pymemcache at {} (run ./scripts/test.sh, which creates it with \
         `python3 -m venv target/clients-venv && target/clients-venv/bin/pip install pymemcache`, \
         or set PYMEMCACHE_PYTHON)",
        p.display()
    );
    let probe = run_bounded(
        Command::new(&p).args(["-c", "import pymemcache; print(pymemcache.__version__)"]),
        TOOL_LIMIT,
    );
    assert!(
        probe.success,
        "{} cannot import pymemcache (run ./scripts/test.sh): {}",
        p.display(),
        probe.stderr
    );
    eprintln!(
        "[clients] pymemcache {} via {}",
        probe.stdout_str().trim(),
        p.display()
    );
    p
}

#[test]
fn pymemcache_text_protocol() {
    let python = python_with_pymemcache();
    let servers: Vec<Server> = (0..3).map(|_| Server::start(&[])).collect();
    let script = workspace_root().join("tests/clients/pymemcache_text.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .args(servers.iter().map(|s| s.port().to_string()))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let out = run_bounded(&mut cmd, TOOL_LIMIT);
    assert!(
        out.success && out.stdout_str().contains("ALL OK"),
        "pymemcache script failed ({:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.code,
        out.stdout_str(),
        out.stderr
    );
    // the servers did not crash meanwhile (Drop also checks)
    for mut s in servers {
        s.assert_running();
    }
}

// ---------------------------------------------------------------- libmemcached-tools --binary

/// Debian names libmemcached's tools memc* (memccp, memccat, ...); upstream
/// names are memcp, memcat, ...
fn libmemcached_tool(name: &str) -> PathBuf {
    let upstream = name.replacen("memc", "mem", 1);
    for n in [name, upstream.as_str()] {
        for dir in ["/usr/bin", "/usr/local/bin"] {
            let p = Path::new(dir).join(n);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{name} not found: apt-get install -y libmemcached-tools (or run ./scripts/test.sh)");
}

/// Runs a libmemcached tool against 127.0.0.1:port with `--binary`.
fn tool(name: &str, port: u16, args: &[&str], cwd: &Path) -> Output {
    let mut cmd = Command::new(libmemcached_tool(name));
    cmd.current_dir(cwd)
        .arg(format!("--servers=127.0.0.1:{port}"))
        .arg("--binary")
        .args(args);
    run_bounded(&mut cmd, TOOL_LIMIT)
}

fn ok(name: &str, out: &Output) {
    assert!(
        out.success,
        "{name} failed ({:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.code,
        out.stdout_str(),
        out.stderr
    );
}

fn fails(name: &str, out: &Output) {
    assert!(
        !out.success,
        "{name} should have failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout_str(),
        out.stderr
    );
}

/// `get KEY` through the text protocol: (flags, data).
fn text_get(server: &Server, key: &str) -> Option<(u32, Vec<u8>)> {
    let mut c = server.client();
    c.send(format!("get {key}\r\n"));
    let mut v = c.values();
    assert!(v.len() <= 1);
    v.pop().map(|v| (v.flags, v.data))
}

#[test]
fn libmemcached_tools_binary_protocol() {
    let server = Server::start(&[]);
    let port = server.port();
    let dir = scratch_dir("clients-binary");

    let small = b"alpha".to_vec();
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let files: [(&str, &[u8]); 3] = [
        ("bin-small", &small),
        ("bin-bytes", &all_bytes),
        ("bin-big", &big),
    ];
    for (name, data) in files {
        std::fs::write(dir.join(name), data).unwrap();
    }

    ok("memcflush", &tool("memcflush", port, &[], &dir));

    // memccp: a set per file, key = file name, with flags
    let names: Vec<&str> = files.iter().map(|f| f.0).collect();
    let mut args = vec!["--flags=42"];
    args.extend(&names);
    ok("memccp", &tool("memccp", port, &args, &dir));

    for (name, data) in files {
        // what the binary client stored, read through the text protocol
        assert_eq!(
            text_get(&server, name),
            Some((42, data.to_vec())),
            "{name} as stored by memccp --binary"
        );
        // and read back through the binary protocol (memccat adds "\n")
        let out = tool("memccat", port, &[name], &dir);
        ok("memccat", &out);
        let mut want = data.to_vec();
        want.push(b'\n');
        assert!(out.stdout == want, "memccat {name}: wrong data");
        ok("memcexist", &tool("memcexist", port, &[name], &dir));
    }

    // flags as memccat -F shows them
    let out = tool("memccat", port, &["-F", "bin-small"], &dir);
    ok("memccat -F", &out);
    assert_eq!(out.stdout_str(), "42\nalpha\n");

    // a key set through the text protocol, read through the binary one
    let mut c = server.client();
    assert_eq!(c.set("from-text", 7, 0, b"text value"), "STORED");
    let out = tool("memccat", port, &["from-text"], &dir);
    ok("memccat", &out);
    assert_eq!(out.stdout_str(), "text value\n");

    // misses
    fails("memccat missing", &tool("memccat", port, &["nope"], &dir));
    fails(
        "memcexist missing",
        &tool("memcexist", port, &["nope"], &dir),
    );

    // add / replace
    fails(
        "memccp --add existing",
        &tool("memccp", port, &["--add", "bin-small"], &dir),
    );
    std::fs::write(dir.join("bin-new"), b"new one").unwrap();
    ok(
        "memccp --add new",
        &tool("memccp", port, &["--add", "bin-new"], &dir),
    );
    fails(
        "memccp --replace missing",
        &tool("memccp", port, &["--replace", "bin-new2"], &dir),
    );
    std::fs::write(dir.join("bin-small"), b"replaced").unwrap();
    ok(
        "memccp --replace existing",
        &tool(
            "memccp",
            port,
            &["--replace", "--flags=5", "bin-small"],
            &dir,
        ),
    );
    assert_eq!(
        text_get(&server, "bin-small"),
        Some((5, b"replaced".to_vec()))
    );
    assert_eq!(text_get(&server, "bin-new"), Some((0, b"new one".to_vec())));

    // touch
    ok(
        "memctouch",
        &tool("memctouch", port, &["--expire=600", "bin-bytes"], &dir),
    );
    fails(
        "memctouch missing",
        &tool("memctouch", port, &["--expire=600", "nope"], &dir),
    );

    // delete
    ok("memcrm", &tool("memcrm", port, &["bin-new"], &dir));
    fails("memcrm again", &tool("memcrm", port, &["bin-new"], &dir));
    assert_eq!(text_get(&server, "bin-new"), None);

    // stats through the binary protocol
    let out = tool("memcstat", port, &[], &dir);
    ok("memcstat", &out);
    let stats = out.stdout_str();
    assert!(
        stats.contains(&format!("Server: 127.0.0.1 ({port})")),
        "memcstat output: {stats}"
    );
    for name in ["pid:", "curr_items: 4", "version:", "cmd_get:", "cmd_set:"] {
        assert!(stats.contains(name), "memcstat lacks {name:?}: {stats}");
    }

    // flush_all through the binary protocol
    ok("memcflush", &tool("memcflush", port, &[], &dir));
    fails(
        "memccat after flush",
        &tool("memccat", port, &["bin-big"], &dir),
    );
    assert_eq!(text_get(&server, "bin-big"), None);
    assert_eq!(text_get(&server, "from-text"), None);

    let _ = std::fs::remove_dir_all(&dir);
}

/// The tools really speak the binary protocol: against a server restricted
/// to the text protocol (`-B ascii`) they fail, without `--binary` they work.
#[test]
fn libmemcached_tools_really_use_binary() {
    let server = Server::start(&["-B", "ascii"]);
    let port = server.port();
    let dir = scratch_dir("clients-ascii-only");
    std::fs::write(dir.join("k"), b"v").unwrap();
    let mut cmd = Command::new(libmemcached_tool("memccp"));
    cmd.current_dir(&dir)
        .arg(format!("--servers=127.0.0.1:{port}"))
        .arg("k");
    ok("memccp (text)", &run_bounded(&mut cmd, TOOL_LIMIT));
    assert_eq!(text_get(&server, "k"), Some((0, b"v".to_vec())));
    fails(
        "memccat --binary against -B ascii",
        &tool("memccat", port, &["k"], &dir),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
