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
    wasm.to_string_lossy().into_owned()
}
