//! Builds the example plugins of `examples/` for the tests that load them
//! (`tests/examples.rs`, and the meta differential's ABI v1 run):
//! `scripts/build-examples.sh NAME` when `target/examples/NAME.wasm` is
//! missing or older than its sources. A build that fails fails the test with
//! the build's output; nothing is skipped.

use super::workspace_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::SystemTime;

/// Newest modification time of the files under `dir` (skipping
/// node_modules), or UNIX_EPOCH.
fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return t;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == "node_modules") {
            continue;
        }
        let m = if p.is_dir() {
            newest(&p)
        } else {
            e.metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        t = t.max(m);
    }
    t
}

/// The sources an example's .wasm is built from.
fn sources(name: &str) -> Vec<PathBuf> {
    let r = workspace_root();
    let mut v = vec![r.join("examples").join(name)];
    match name {
        "c-quota" | "c-sieve" | "zig-s3fifo" => v.push(r.join("guest-sdk/c")),
        "as-lfu" => v.push(r.join("guest-sdk/assemblyscript/assembly")),
        // Components of the WIT world.
        "python-lru" | "js-lru" | "rust-wit" | "go-lru" => v.push(r.join("wit")),
        "rust-versioned" => {
            v.push(r.join("guest-sdk/src"));
            v.push(r.join("abi/src"));
        }
        _ => {}
    }
    v
}

/// The built plugin of example `name` (target/examples/NAME.wasm), built
/// first when missing or stale. Panics with the build output on failure.
pub fn example(name: &str) -> String {
    // One build at a time: the tests of this file run in parallel.
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = workspace_root()
        .join("target/examples")
        .join(format!("{name}.wasm"));
    let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
    let src = sources(name).iter().map(|d| newest(d)).max().unwrap();
    if built.is_none_or(|b| b < src) {
        let script = workspace_root().join("scripts/build-examples.sh");
        let out = Command::new(&script)
            .arg(name)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "building example {name} with {} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        wasm.is_file(),
        "scripts/build-examples.sh {name} succeeded but {} does not exist",
        wasm.display()
    );
    if matches!(name, "python-lru" | "js-lru" | "go-lru") {
        warm_code_cache(&wasm);
    }
    wasm.to_string_lossy().into_owned()
}

/// Starts a server on `wasm` once, so that its compiled code is in the
/// code cache before the tests start theirs. A component with a Python or
/// JavaScript runtime in it compiles for tens of seconds; several tests
/// compiling it at once on a loaded machine would outlast a server's
/// start-up timeout.
pub fn warm_code_cache(wasm: &Path) {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    static WARM: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut warm = WARM.lock().unwrap_or_else(|e| e.into_inner());
    if warm.iter().any(|w| w == wasm) {
        return;
    }
    let port = super::free_port();
    let mut child = Command::new(super::server_bin())
        .args(["-p", &port.to_string(), "-U", "0", "--plugin"])
        .arg(wasm)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a server to compile the plugin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let ready = loop {
        if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let mut line = String::new();
            if s.write_all(b"version\r\n").is_ok()
                && BufReader::new(s).read_line(&mut line).is_ok()
                && line.starts_with("VERSION ")
            {
                break true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "a server on {} never became ready", wasm.display());
    warm.push(wasm.to_path_buf());
}
