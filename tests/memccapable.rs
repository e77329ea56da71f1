//! libmemcached's protocol conformance tool, `memccapable` (Debian package
//! libmemcached-tools), run against the server under test: every test must
//! pass. It is first run against the reference memcached so that a broken
//! tool or environment shows up as such, not as a server bug.
//!
//! memccapable prints one line per test ("ascii set   [pass]"; on failure
//! the line may carry an error and "[FAIL]" comes on the next line) and a
//! summary ("All tests passed" or "N of M tests failed"); it FLUSHES the
//! server, so every run gets a fresh one.
// The reference comparisons run where Debian's memcached and its tools do:
// Linux. Under Wine or on macOS/Windows this module is empty (see the
// README, "Platforms").
#![cfg(target_os = "linux")]

use crate::common;

use common::{run_bounded, Server};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// ascii and binary suites of libmemcached 1.0.18's memccapable.
const ASCII_TESTS: usize = 27;
const BINARY_TESTS: usize = 27;

fn memccapable_bin() -> PathBuf {
    for p in [
        "/usr/bin/memccapable",
        "/usr/local/bin/memccapable",
        "/usr/bin/memcapable",
    ] {
        let p = PathBuf::from(p);
        if p.is_file() {
            return p;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            for n in ["memccapable", "memcapable"] {
                let p = dir.join(n);
                if p.is_file() {
                    return p;
                }
            }
        }
    }
    panic!(
        "memccapable not found: apt-get install -y libmemcached-tools (or run ./scripts/test.sh)"
    );
}

struct Report {
    output: String,
    success: bool,
    passed: Vec<String>,
    failed: Vec<String>,
}

/// Runs memccapable with `mode` ("-a" or "-b") against 127.0.0.1:port,
/// killing it (and failing) if it runs for more than `limit`.
fn run_memccapable(port: u16, mode: &str, limit: Duration) -> Report {
    let out = run_bounded(
        Command::new(memccapable_bin()).args([
            mode,
            "-t",
            "2",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]),
        limit,
    );
    let stdout = out.stdout_str();
    let output = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{}", out.stderr);
    // stdout holds "NAME<padding>[pass]" for passing tests and only
    // "NAME<padding>" for failing ones (their "[FAIL]" and error go to
    // stderr, unsynchronised): split stdout into one record per test name.
    let mut starts = Vec::new();
    for (i, _) in stdout.char_indices() {
        let rest = &stdout[i..];
        let at_boundary = i == 0 || stdout[..i].ends_with(|c: char| c.is_whitespace());
        if at_boundary && (rest.starts_with("ascii ") || rest.starts_with("binary ")) {
            starts.push(i);
        }
    }
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for (n, &a) in starts.iter().enumerate() {
        let b = starts.get(n + 1).copied().unwrap_or(stdout.len());
        let rec = &stdout[a..b];
        let name = rec.split("  ").next().unwrap_or("").trim().to_string();
        if rec.contains("[pass]") {
            passed.push(name);
        } else {
            failed.push(name);
        }
    }
    Report {
        output,
        success: out.success,
        passed,
        failed,
    }
}

fn assert_all_pass(r: &Report, what: &str, expected_tests: usize) {
    assert!(
        r.failed.is_empty() && r.success && r.passed.len() >= expected_tests && r.output.contains("All tests passed"),
        "memccapable against {what}: {} passed, failed: {:?}, exit success: {}\n--- memccapable output ---\n{}",
        r.passed.len(),
        r.failed,
        r.success,
        r.output
    );
}

#[test]
fn memccapable_ascii_against_the_reference() {
    let s = Server::start_memcached(&[]);
    let r = run_memccapable(s.port(), "-a", Duration::from_secs(120));
    assert_all_pass(
        &r,
        "the reference memcached (tool sanity check)",
        ASCII_TESTS,
    );
}

#[test]
fn memccapable_ascii() {
    let mut s = Server::start(&[]);
    let r = run_memccapable(s.port(), "-a", Duration::from_secs(180));
    s.assert_running();
    assert_all_pass(&r, s.name(), ASCII_TESTS);
    assert!(
        r.passed.iter().all(|n| n.starts_with("ascii ")),
        "{:?}",
        r.passed
    );
}

#[test]
fn memccapable_binary_against_the_reference() {
    let s = Server::start_memcached(&[]);
    let r = run_memccapable(s.port(), "-b", Duration::from_secs(120));
    assert_all_pass(
        &r,
        "the reference memcached (tool sanity check)",
        BINARY_TESTS,
    );
}

#[test]
fn memccapable_binary() {
    let mut s = Server::start(&[]);
    let r = run_memccapable(s.port(), "-b", Duration::from_secs(180));
    s.assert_running();
    assert_all_pass(&r, s.name(), BINARY_TESTS);
    assert!(
        r.passed.iter().all(|n| n.starts_with("binary ")),
        "{:?}",
        r.passed
    );
}
