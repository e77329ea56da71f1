//! Builds the default plugin (plugins/default-store) for wasm32-unknown-unknown
//! so the host can embed it: a fresh clone needs nothing prebuilt.
//!
//! The nested cargo uses its own target dir under the workspace `target/`
//! (`target/wasm-plugins`): the outer cargo holds the lock on its own build
//! dir, so sharing it would deadlock.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let plugin_dir = root.join("plugins/default-store");
    let sdk_dir = root.join("guest-sdk");
    let abi_dir = root.join("abi");
    for p in [&plugin_dir, &sdk_dir, &abi_dir] {
        println!("cargo:rerun-if-changed={}", p.join("src").display());
        println!("cargo:rerun-if-changed={}", p.join("Cargo.toml").display());
    }
    let target_dir = env::var_os("WASMCACHED_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/wasm-plugins"));

    ensure_wasm_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "-p",
            "default-store",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "plugin",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host build must not leak into the wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        // `cargo clippy` wraps rustc; the plugin is linted as a workspace member
        // on its own, and must not be rebuilt just because clippy ran.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .status()
        .expect("running cargo to build the default plugin");
    assert!(status.success(), "building plugins/default-store failed");
    let wasm = target_dir.join("wasm32-unknown-unknown/plugin/default_store.wasm");
    assert!(wasm.exists(), "{} missing", wasm.display());
    println!(
        "cargo:rustc-env=WASMCACHED_DEFAULT_PLUGIN={}",
        wasm.display()
    );
}

/// `rustup target add wasm32-unknown-unknown` when the target's std is missing,
/// so `cargo build` works on a machine with only rustup's stable toolchain.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    let installed = sysroot
        .map(|s| s.join("lib/rustlib/wasm32-unknown-unknown/lib").exists())
        .unwrap_or(false);
    if !installed {
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "the wasm32-unknown-unknown target is missing and `rustup target add` failed"
        );
    }
}
