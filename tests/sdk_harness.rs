//! The native test harnesses of the C and AssemblyScript SDKs, run as a
//! plugin author runs them, on the examples that use them:
//!
//! - C: `examples/c-quota/test_native.sh` compiles c-quota, the C SDK and
//!   `guest-sdk/c/harness/wmc_harness.c` (and `wmc_host.c`) for this machine (with `cc`, and
//!   again with `clang`, `-Wall -Wextra -Werror`) and runs its tests;
//! - AssemblyScript: `node --test examples/as-lfu/test.mjs` drives the
//!   built as-lfu.wasm through `guest-sdk/assemblyscript/harness.mjs`.
//!
//! Each passes, and each fails when a test of it expects something wrong
//! (`BREAK_EXPECTATION` adds one): the harness can catch a bug.
//!
//! Linux only: the C harness forks a process per test, and the Windows
//! test binary runs under Wine, which cannot run these scripts.
#![cfg(target_os = "linux")]

use crate::common::example_build::example;
use crate::common::workspace_root;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The tests of examples/c-quota/test_native.c, all of which must pass.
const C_TESTS: &[&str] = &[
    "set_get_flags_and_cas",
    "delete_and_batches",
    "incr_and_decr",
    "expiry_follows_the_clock",
    "evicts_within_a_small_budget",
    "the_memory_cap_is_not_a_trap",
    "no_evict_answers_out_of_memory",
    "quotas_refuse_and_count",
    "a_bad_config_is_refused_with_a_reason",
    "dump_load_and_listing",
    "watch_reports_lookups",
];

/// The tests of examples/as-lfu/test.mjs.
const AS_TESTS: &[&str] = &[
    "set, get, flags and cas",
    "delete, batches and refusals",
    "incr and decr",
    "expiry follows the clock",
    "the least used keys are evicted within a small budget",
    "a bad config is refused with the reason",
    "dump, load and listing",
    "watch reports lookups",
];

fn report(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs examples/c-quota/test_native.sh with compiler `cc` and the extra
/// compiler arguments `args`, into a binary of its own.
fn c_quota_native(cc: &str, name: &str, args: &[&str]) -> Output {
    let bin: PathBuf = [env!("CARGO_TARGET_TMPDIR"), "sdk-harness", name]
        .iter()
        .collect();
    Command::new(workspace_root().join("examples/c-quota/test_native.sh"))
        .args(args)
        .env("CC", cc)
        .env("TEST_BIN", &bin)
        .stdin(Stdio::null())
        .output()
        .expect("run examples/c-quota/test_native.sh")
}

#[test]
fn the_c_harness_runs_c_quota_natively() {
    for cc in ["cc", "clang"] {
        let out = c_quota_native(cc, &format!("c-quota-{cc}"), &[]);
        let text = report(&format!("c-quota's native tests built with {cc}"), &out);
        assert!(out.status.success(), "{text}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        for t in C_TESTS {
            assert!(stdout.contains(&format!("PASS {t}\n")), "{text}");
        }
        assert!(
            stdout.contains(&format!("{} passed, 0 failed", C_TESTS.len())),
            "{text}"
        );
    }
}

#[test]
fn the_c_harness_fails_a_wrong_expectation() {
    let out = c_quota_native("cc", "c-quota-broken", &["-DBREAK_EXPECTATION"]);
    let text = report("c-quota's native tests with a wrong expectation", &out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("FAIL a_wrong_expectation\n"), "{text}");
    assert!(
        stdout.contains(&format!("{} passed, 1 failed", C_TESTS.len())),
        "{text}"
    );
    // The failed check says where and what.
    assert!(
        stderr.contains("test_native.c:")
            && stderr.contains(r#"wmc_h_get(h, "k"): HIT "right", expected HIT "wrong""#),
        "{text}"
    );
}

/// `node --test examples/as-lfu/test.mjs` on the built as-lfu.wasm, with
/// `BREAK_EXPECTATION` set or not.
fn as_lfu_tests(broken: bool) -> Output {
    let wasm = example("as-lfu");
    let mut cmd = Command::new("node");
    cmd.arg("--test")
        .arg(workspace_root().join("examples/as-lfu/test.mjs"))
        .env("PLUGIN_WASM", &wasm)
        .env_remove("BREAK_EXPECTATION")
        .stdin(Stdio::null());
    if broken {
        cmd.env("BREAK_EXPECTATION", "1");
    }
    cmd.output()
        .expect("run node (./scripts/test.sh installs it for the examples)")
}

#[test]
fn the_assemblyscript_harness_runs_as_lfu() {
    let out = as_lfu_tests(false);
    let text = report("node --test examples/as-lfu/test.mjs", &out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (i, t) in AS_TESTS.iter().enumerate() {
        assert!(stdout.contains(&format!("ok {} - {t}\n", i + 1)), "{text}");
    }
    assert!(
        stdout.contains(&format!("# pass {}\n", AS_TESTS.len())),
        "{text}"
    );
    assert!(stdout.contains("# fail 0\n"), "{text}");
}

#[test]
fn the_assemblyscript_harness_fails_a_wrong_expectation() {
    let out = as_lfu_tests(true);
    let text = report("the as-lfu tests with a wrong expectation", &out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("not ok 9 - a wrong expectation"), "{text}");
    assert!(
        stdout.contains("expected: 'wrong'") && stdout.contains("actual: 'right'"),
        "{text}"
    );
    assert!(
        stdout.contains(&format!("# pass {}\n", AS_TESTS.len())),
        "{text}"
    );
    assert!(stdout.contains("# fail 1\n"), "{text}");
}
