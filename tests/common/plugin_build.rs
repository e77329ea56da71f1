//! Plugins the tests build from crates of this workspace (the panicky test
//! plugin, the SDK's starter), and what `plugin check --contract basic`
//! owes such a plugin.

use super::{server_bin, workspace_root};
use std::process::{Command, Stdio};

/// Builds workspace `package` for wasm32-unknown-unknown with the `plugin`
/// profile into this build's target dir and returns its .wasm (`file`).
/// Panics with the build's output on failure.
pub fn workspace_plugin(package: &str, file: &str) -> String {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target tmp dir has a parent");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", package, "--lib"])
        .args(["--target", "wasm32-unknown-unknown", "--profile", "plugin"])
        .arg("--target-dir")
        .arg(target)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
    assert!(
        out.status.success(),
        "building {package} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = target.join("wasm32-unknown-unknown/plugin").join(file);
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    wasm.to_string_lossy().into_owned()
}

/// `report` (plugin check's output) shows every check of the basic
/// contract passed: run, not skipped, none failed.
pub fn assert_basic_contract_passed(report: &str) {
    assert!(!report.contains("FAIL "), "{report}");
    for check in [
        "get_miss",
        "set_get_hit",
        "set_overwrite",
        "delete",
        "flush_all_immediate",
        "wire_text_set_get",
        "wire_binary_get",
    ] {
        assert!(
            report.lines().any(|l| l == format!("PASS {check}")),
            "{check} must pass, not be skipped:\n{report}"
        );
    }
}

/// `wasmcached plugin check --contract basic` on `wasm`: its exit status
/// and report.
pub fn check_basic(wasm: &str) -> (std::process::ExitStatus, String) {
    let out = Command::new(server_bin())
        .args(["plugin", "check", wasm, "--contract", "basic"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
