//! Start-up: the compiled plugin code cache (host/src/plugin.rs, `CodeCache`).
//!
//! The first start compiles the default store and writes its code to
//! `$WASMCACHED_CACHE_DIR`; the next start loads it from there. A corrupt or
//! truncated cache file is never used: it is recompiled and replaced, and the
//! server serves as usual. `-o plugin_cache=off` neither reads nor writes the
//! cache, and an unusable cache directory only costs the compile.
//!
//! Everything runs in one test, because the cache directory reaches the
//! servers through this process's environment.

mod common;

use common::Server;
use std::fs;
use std::path::{Path, PathBuf};

const LOADED: &str = "plugin code loaded from cache";
const CACHED: &str = "plugin code cached at";

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Starts a server with `-vv` and `extra`, checks that it stores and
/// serves an item, and returns its log.
fn start_and_serve(extra: &[&str]) -> String {
    let mut args = vec!["-vv", "-t", "2"];
    args.extend_from_slice(extra);
    let mut server = Server::start(&args);
    let mut c = server.client();
    assert_eq!(c.set("startup:key", 7, 0, b"value"), "STORED");
    assert_eq!(c.get("startup:key").as_deref(), Some(&b"value"[..]));
    server.assert_running();
    let log = server.log();
    server.kill();
    log
}

#[test]
fn compiled_plugin_code_is_cached_checked_and_replaced() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("startup-cache-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let dir = base.join("code");
    std::env::set_var("WASMCACHED_CACHE_DIR", &dir);

    // First start: nothing cached, the code is compiled and written.
    let log = start_and_serve(&[]);
    assert!(!log.contains(LOADED), "{log}");
    assert!(log.contains(CACHED), "{log}");
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1, "one cache file, no temp files: {files:?}");
    let file = files[0].clone();
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("cwasm"));
    let good = fs::read(&file).unwrap();
    assert!(good.len() > 1000, "{} bytes", good.len());

    // Second start: the code comes from the cache, which stays as it was.
    let log = start_and_serve(&[]);
    assert!(log.contains(LOADED), "{log}");
    assert!(!log.contains(CACHED), "{log}");
    assert_eq!(fs::read(&file).unwrap(), good);

    // A flipped byte in the middle of the code: refused (checksum),
    // recompiled, replaced by a good file that the next start uses.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    fs::write(&file, &bad).unwrap();
    let log = start_and_serve(&[]);
    assert!(log.contains("is corrupt"), "{log}");
    assert!(!log.contains(LOADED), "{log}");
    assert!(log.contains(CACHED), "{log}");
    assert_ne!(fs::read(&file).unwrap(), bad);
    let log = start_and_serve(&[]);
    assert!(log.contains(LOADED), "{log}");

    // A truncated file, and a good header in front of another payload.
    fs::write(&file, &good[..20]).unwrap();
    let log = start_and_serve(&[]);
    assert!(log.contains("is corrupt"), "{log}");
    assert!(log.contains(CACHED), "{log}");
    let header = 32; // magic + checksum, see plugin.rs
    let mut foreign = good[..header].to_vec();
    foreign.extend_from_slice(b"not a serialized module");
    fs::write(&file, &foreign).unwrap();
    let log = start_and_serve(&[]);
    assert!(
        log.contains("is corrupt"),
        "checksum covers the payload: {log}"
    );
    assert!(log.contains(CACHED), "{log}");
    assert!(start_and_serve(&[]).contains(LOADED));

    // plugin_cache=off: neither read nor written.
    fs::remove_file(&file).unwrap();
    let log = start_and_serve(&["-o", "plugin_cache=off"]);
    assert!(!log.contains(LOADED) && !log.contains(CACHED), "{log}");
    assert!(cache_files(&dir).is_empty());

    // An unusable cache directory (a regular file): compiled, still serves.
    fs::write(base.join("plain-file"), b"x").unwrap();
    std::env::set_var("WASMCACHED_CACHE_DIR", base.join("plain-file"));
    let log = start_and_serve(&[]);
    assert!(log.contains("cannot write plugin code cache"), "{log}");
    assert!(!log.contains(LOADED), "{log}");

    std::env::remove_var("WASMCACHED_CACHE_DIR");
    let _ = fs::remove_dir_all(&base);
}
