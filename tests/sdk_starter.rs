//! The Rust SDK's starter plugin (`guest-sdk/examples/starter`, the
//! complete plugin `guest-sdk/README.md` shows): it is built for
//! wasm32-unknown-unknown and passes `wasmcached plugin check --contract
//! basic`, and the README shows its source and build settings as they are.
//! Its own behaviour is unit-tested natively in the crate
//! (`cargo test -p sdk-starter`).

use crate::common;

#[cfg(not(windows))]
use common::plugin_build;
use common::workspace_root;
use std::collections::BTreeMap;

fn read(path: &str) -> String {
    let p = workspace_root().join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The body of the first fenced block of `lang` in `md` that follows
/// `after`.
fn fenced(md: &str, after: &str, lang: &str) -> String {
    let start = md
        .find(after)
        .unwrap_or_else(|| panic!("the README has no {after:?}"));
    let open = format!("```{lang}\n");
    let body = &md[start..];
    let body = &body[body
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{lang} block after {after:?}"))
        + open.len()..];
    let end = body
        .find("\n```\n")
        .unwrap_or_else(|| panic!("the ```{lang} block after {after:?} is not closed"));
    body[..end + 1].to_string()
}

/// The `key = value` lines of TOML table `[table]` in `toml`, comments
/// and blank lines left out (enough for the profile tables compared here).
fn table(toml: &str, table: &str) -> BTreeMap<String, String> {
    let header = format!("[{table}]");
    toml.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| {
            let l = l.split('#').next().unwrap().trim();
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

#[test]
fn the_readme_shows_the_starter_source() {
    let readme = read("guest-sdk/README.md");
    let shown = fenced(&readme, "`src/lib.rs`:", "rust");
    let src = read("guest-sdk/examples/starter/src/lib.rs");
    assert!(
        shown == src,
        "the starter plugin in guest-sdk/README.md differs from \
         guest-sdk/examples/starter/src/lib.rs: copy the file into the README"
    );
}

/// What the test below builds with (the workspace's `plugin` profile,
/// since a member's own profile is ignored) is what the README tells an
/// author to put in `[profile.release]`, and the crate it names is the
/// one built.
#[test]
fn the_readme_build_settings_are_the_ones_tested() {
    let readme = read("guest-sdk/README.md");
    let shown = fenced(&readme, "`Cargo.toml`:", "toml");
    let workspace = read("Cargo.toml");
    let plugin = table(&workspace, "profile.plugin");
    let mut release = table(&shown, "profile.release");
    assert_eq!(
        plugin.get("inherits").map(String::as_str),
        Some("\"release\"")
    );
    release.insert("inherits".into(), "\"release\"".into());
    assert_eq!(
        release, plugin,
        "the README's [profile.release] must set what the workspace's [profile.plugin] sets"
    );
    let starter = read("guest-sdk/examples/starter/Cargo.toml");
    assert_eq!(
        table(&starter, "package").get("name"),
        table(&shown, "package").get("name")
    );
    assert_eq!(
        table(&starter, "lib").get("crate-type"),
        table(&shown, "lib").get("crate-type")
    );
    assert!(readme.contains("target/wasm32-unknown-unknown/release/sdk_starter.wasm"));
}

/// The README's promise: the starter passes the basic contract, every
/// check of it run (the wire checks included), none failed.
///
/// Not on Windows: the Windows test binary runs under Wine, which cannot
/// start the cargo that builds the plugin.
#[cfg(not(windows))]
#[test]
fn the_starter_passes_the_basic_contract() {
    // A workspace member, not a default one: built as tests/plugin_faults.rs
    // builds `panicky`.
    let wasm = plugin_build::workspace_plugin("sdk-starter", "sdk_starter.wasm");
    let (status, report) = plugin_build::check_basic(&wasm);
    assert!(
        status.success(),
        "plugin check sdk-starter: {status}\n{report}"
    );
    plugin_build::assert_basic_contract_passed(&report);
}
