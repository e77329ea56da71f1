//! `wasmcached plugin check`: the plugin conformance kit, run as the real
//! binary. The embedded default store passes every check; plugins that
//! answer wrongly get FAIL lines and a non-zero exit, so a broken plugin
//! cannot slip through. A plugin author's tools: `--list` names the checks,
//! `--skip` leaves some out (exit 3, not 0), and a failed check shows what
//! the plugin logged while it ran.

use crate::common;

use std::process::{Command, Output};

fn check(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let (code, lines, _) = check_stderr(args);
    (code, lines)
}

/// The exit code, the report's lines and what went to stderr.
fn check_stderr(args: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(common::server_bin())
        .arg("plugin")
        .args(args)
        .output()
        .expect("running wasmcached plugin check");
    let out = String::from_utf8(stdout).expect("UTF-8 report");
    (
        status.code(),
        out.lines().map(str::to_string).collect(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
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
    // A plugin that cannot be loaded was not checked: 2, not 1.
    let (code, lines) = check(&["check", "/nonexistent/plugin.wasm"]);
    assert_eq!(code, Some(2));
    assert!(lines[0].starts_with("FAIL load: "), "{lines:#?}");
    // A module that is not a wasmcached plugin.
    let dir = std::env::temp_dir().join(format!("wmc-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.wat");
    std::fs::write(&empty, "(module)").unwrap();
    let (code, lines) = check(&["check", empty.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        lines[0].starts_with("FAIL load: ") && lines[0].contains("wmc_abi_version"),
        "{lines:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(check(&["check"]).0, Some(2));
    assert_eq!(check(&["frobnicate"]).0, Some(2));
    assert_eq!(
        check(&["check", "default", "--contract", "some"]).0,
        Some(2)
    );
    // --help documents the exit statuses.
    let (code, lines) = check(&["check", "--help"]);
    assert_eq!(code, Some(0));
    for status in [
        "  0  every check that ran passed",
        "  1  at least one check failed",
        "  2  a usage error, or the plugin could not be loaded",
        "  3  every check that ran passed, but some were left out with --skip",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(status)),
            "no {status:?} in {lines:#?}"
        );
    }
    // `plugin --help` names both tools, each with its own help.
    let (code, lines) = check(&["--help"]);
    assert_eq!(code, Some(0));
    let text = lines.join("\n");
    for tool in [
        "wasmcached plugin new rust|c|assemblyscript|python|javascript NAME",
        "wasmcached plugin check FILE",
        "(wasmcached plugin new --help)",
        "(wasmcached plugin check --help)",
    ] {
        assert!(text.contains(tool), "no {tool:?} in {text}");
    }
}

/// The check names of a `--list` output (each line: name, contract, what).
fn listed(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap_or("");
            let group = words.next().unwrap_or("");
            assert!(
                ["required", "basic", "full"].contains(&group) && words.next().is_some(),
                "not name, contract, description: {l:?}"
            );
            name
        })
        .collect()
}

#[test]
fn list_names_the_checks_with_or_without_a_plugin() {
    let (code, lines) = check(&["check", "--list"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let all = listed(&lines);
    for name in [
        "exports_and_abi_version",
        "get_miss",
        "delete",
        "touch",
        "dump_load_roundtrip",
        "plugin_metrics",
        "wire_text_set_get",
        "wire_text_gat",
    ] {
        assert!(all.contains(&name), "no {name} in {all:#?}");
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("touch ") && l.contains(" full ") && l.contains("exptime")));
    // The basic contract lists its own checks only; --skip leaves one out.
    let (code, lines) = check(&["check", "--list", "--contract", "basic", "--skip", "delete"]);
    assert_eq!(code, Some(0));
    let basic = listed(&lines);
    assert!(basic.contains(&"get_miss") && basic.contains(&"wire_binary_get"));
    assert!(
        !basic.contains(&"touch") && !basic.contains(&"delete"),
        "{basic:#?}"
    );
    // With a plugin: the checks that would run for it. lenient has no
    // wmc_dump/wmc_load; the default store has them.
    let lenient = common::test_plugin("lenient.wat");
    let (code, lines) = check(&["check", "--list", &lenient]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let for_lenient = listed(&lines);
    assert!(for_lenient.contains(&"touch") && !for_lenient.contains(&"dump_load_roundtrip"));
    let (_, lines) = check(&["check", "default", "--list"]);
    assert!(listed(&lines).contains(&"dump_load_roundtrip"));
    // A plugin that cannot be loaded cannot be listed for.
    let (code, lines, stderr) = check_stderr(&["check", "--list", "/nonexistent/plugin.wasm"]);
    assert_eq!(code, Some(2));
    assert!(lines.is_empty() && stderr.contains("/nonexistent/plugin.wasm"));
}

#[test]
fn skipping_the_failing_check_turns_exit_1_into_3() {
    let lenient = common::test_plugin("lenient.wat");
    let (code, lines) = check(&["check", &lenient, "--contract", "basic"]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(count(&lines, "FAIL"), 1, "{lines:#?}");
    assert!(
        lines.contains(&"FAIL delete: delete gone again: expected NotFound, got Deleted".into())
    );
    // Skipping it: nothing failed, but not everything ran.
    let (code, lines) = check(&["check", &lenient, "--contract", "basic", "--skip", "delete"]);
    assert_eq!(code, Some(3), "{lines:#?}");
    assert_eq!(count(&lines, "FAIL"), 0, "{lines:#?}");
    assert!(lines.contains(&"SKIP delete (asked with --skip)".into()));
    // A skip the plugin asks for (an optional export it lacks) is a SKIP
    // line but not one "with --skip".
    assert!(lines
        .iter()
        .any(|l| l.starts_with("SKIP plugin_metrics (the plugin exports no metrics")));
    let skipped = count(&lines, "SKIP");
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "{} passed, 0 failed, {skipped} skipped (1 with --skip)",
            count(&lines, "PASS")
        )
    );
    // A comma-separated list, and the wire checks too; skips of checks the
    // basic contract leaves out change nothing.
    let (code, lines) = check(&[
        "check",
        &lenient,
        "--contract=basic",
        "--skip=delete,wire_binary_get",
        "--skip",
        "touch",
    ]);
    assert_eq!(code, Some(3), "{lines:#?}");
    assert!(lines.contains(&"SKIP wire_binary_get (asked with --skip)".into()));
    assert!(lines.contains(&"SKIP touch (not in the basic contract)".into()));
    assert!(
        lines.last().unwrap().ends_with(" skipped (2 with --skip)"),
        "{lines:#?}"
    );
}

#[test]
fn an_unknown_skip_is_a_usage_error_naming_the_nearest() {
    let lenient = common::test_plugin("lenient.wat");
    let (code, lines, stderr) = check_stderr(&["check", &lenient, "--skip", "delete,tuch"]);
    assert_eq!(code, Some(2));
    assert!(lines.is_empty(), "checks ran: {lines:#?}");
    assert!(
        stderr.contains("\"tuch\"") && stderr.contains("the nearest: touch"),
        "{stderr}"
    );
    let (code, _, stderr) = check_stderr(&["check", "--list", "--skip", "wire_txt_gat"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("the nearest: wire_text_gat"), "{stderr}");
}

/// The lines under check line `first`: the plugin's log, if shown.
fn log_under<'a>(lines: &'a [String], first: &str) -> Vec<&'a str> {
    let at = lines
        .iter()
        .position(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("no {first:?} in {lines:#?}"));
    lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("    | "))
        .map(String::as_str)
        .collect()
}

#[test]
fn a_failing_check_shows_the_plugins_log() {
    let lenient = common::test_plugin("lenient.wat");
    let (_, lines) = check(&["check", &lenient, "--contract", "basic"]);
    let log = log_under(&lines, "FAIL delete:");
    assert_eq!(
        log.last(),
        Some(&"    | warn: lenient: delete of a missing key, answering Deleted anyway"),
        "{lines:#?}"
    );
    // Only this check's lines: one per batch of the check, five of them.
    assert_eq!(
        log.iter()
            .filter(|l| **l == "    | info: lenient: batch of 1")
            .count(),
        5,
        "{log:#?}"
    );
    // A check that passed shows nothing, though the plugin logged.
    assert!(
        log_under(&lines, "PASS set_get_hit").is_empty(),
        "{lines:#?}"
    );
    assert!(log_under(&lines, "PASS wire_text_set_get").is_empty());
    // -v shows every check's log, also from the server's worker threads.
    let (code, lines) = check(&["check", &lenient, "--contract", "basic", "-v"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        log_under(&lines, "PASS set_get_hit"),
        ["    | info: lenient: batch of 1"; 2],
        "{lines:#?}"
    );
    assert!(
        log_under(&lines, "PASS wire_text_set_get")
            .iter()
            .any(|l| l.starts_with("    | info: lenient: batch of ")),
        "{lines:#?}"
    );
}

#[test]
fn a_plugin_that_refuses_to_start_is_not_checked() {
    // wmc_init refuses, saying why through the log: nothing else can run,
    // exit 2 (not checked) rather than 1 (checked and failed).
    let dir = std::env::temp_dir().join(format!("wmc-check-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let refusing = dir.join("refusing.wat");
    std::fs::write(
        &refusing,
        r#"(module
  (import "wasmcached" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "refusing: no config")
  (func (export "wmc_abi_version") (result i32) (i32.const 2))
  (func (export "wmc_input") (param i32) (result i32) (i32.const 1024))
  (func (export "wmc_init") (param i32) (result i32)
    (call $log (i32.const 0) (i32.const 0) (i32.const 19))
    (i32.const 1))
  (func (export "wmc_batch") (param i32) (result i64) (i64.const 0)))"#,
    )
    .unwrap();
    let (code, lines) = check(&["check", refusing.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(2), "{lines:#?}");
    assert!(
        lines[0].starts_with("FAIL exports_and_abi_version: "),
        "{lines:#?}"
    );
    assert_eq!(
        log_under(&lines, "FAIL exports_and_abi_version"),
        ["    | error: refusing: no config"]
    );
    assert_eq!(lines.last().unwrap(), "0 passed, 1 failed, 0 skipped");
}
