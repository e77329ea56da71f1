//! `wasmcached plugin check`: the plugin conformance kit, run as the real
//! binary. The embedded default store passes every check; plugins that
//! answer wrongly get FAIL lines and a non-zero exit, so a broken plugin
//! cannot slip through.

use crate::common;

use std::process::{Command, Output};

fn check(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let Output { status, stdout, .. } = Command::new(common::server_bin())
        .arg("plugin")
        .args(args)
        .output()
        .expect("running wasmcached plugin check");
    let out = String::from_utf8(stdout).expect("UTF-8 report");
    (status.code(), out.lines().map(str::to_string).collect())
}

fn count(lines: &[String], prefix: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn the_default_store_passes_every_check() {
    let (code, lines) = check(&["check", "default"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(count(&lines, "FAIL"), 0, "{lines:#?}");
    assert_eq!(count(&lines, "SKIP"), 0, "{lines:#?}");
    // Every semantic area the kit covers ran and passed.
    for name in [
        "exports_and_abi_version",
        "get_miss",
        "set_get_hit",
        "cas_mismatch_exists",
        "incr_wraps_at_2_64",
        "decr_floors_at_0",
        "expiry_relative",
        "negative_exptime_expired",
        "flush_all_delayed",
        "memory_budget_evict",
        "memory_budget_no_evict",
        "many_keys_in_one_batch",
        "dump_load_roundtrip",
        "memory_image_roundtrip",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l == &format!("PASS {name}") || l.starts_with(&format!("PASS {name} "))),
            "no PASS {name} in {lines:#?}"
        );
    }
    let passed = count(&lines, "PASS");
    assert!(passed >= 30, "{lines:#?}");
    assert_eq!(
        lines.last().unwrap(),
        &format!("{passed} passed, 0 failed, 0 skipped")
    );
    // The basic contract is a subset: it passes too, skipping the rest.
    let (code, lines) = check(&["check", "--default", "--contract", "basic"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(count(&lines, "FAIL"), 0);
    assert!(count(&lines, "SKIP") > 20);
    assert!(lines
        .iter()
        .any(|l| l == "SKIP incr_decr (not in the basic contract)"));
}

#[test]
fn a_plugin_that_forgets_fails() {
    let forgetful = common::test_plugin("forgetful.wat");
    for contract in ["full", "basic"] {
        let (code, lines) = check(&["check", &forgetful, "--contract", contract]);
        assert_eq!(code, Some(1), "{contract}: {lines:#?}");
        assert!(
            lines.contains(&"FAIL set_get_hit: get foo: expected Hit, got Miss".to_string()),
            "{contract}: {lines:#?}"
        );
        assert!(lines.contains(&"PASS get_miss".to_string()));
        let failed = count(&lines, "FAIL");
        assert!(
            lines
                .last()
                .unwrap()
                .contains(&format!(", {failed} failed,")),
            "{lines:#?}"
        );
    }
    // Without dump/load the round trip is skipped, not failed.
    let (_, lines) = check(&["check", &forgetful]);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("SKIP dump_load_roundtrip (")));
}

#[test]
fn a_faulting_plugin_fails_without_taking_the_kit_down() {
    // faulty.wat (ABI v1) also forgets everything, and the kit's 40 MB fill
    // is refused by its tiny input buffer: answered as faults, not crashes.
    let (code, lines) = check(&["check", &common::test_plugin("faulty.wat")]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert!(lines[0].starts_with("PASS exports_and_abi_version (ABI v1"));
    assert!(count(&lines, "FAIL") >= 10, "{lines:#?}");
    assert!(lines.last().unwrap().ends_with("skipped"));
}

#[test]
fn bad_files_and_arguments() {
    let (code, lines) = check(&["check", "/nonexistent/plugin.wasm"]);
    assert_eq!(code, Some(1));
    assert!(lines[0].starts_with("FAIL load: "), "{lines:#?}");
    // A module that is not a wasmcached plugin.
    let dir = std::env::temp_dir().join(format!("wmc-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.wat");
    std::fs::write(&empty, "(module)").unwrap();
    let (code, lines) = check(&["check", empty.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        lines[0].starts_with("FAIL load: ") && lines[0].contains("wmc_abi_version"),
        "{lines:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(check(&["check"]).0, Some(64));
    assert_eq!(check(&["frobnicate"]).0, Some(64));
    assert_eq!(
        check(&["check", "default", "--contract", "some"]).0,
        Some(64)
    );
}
