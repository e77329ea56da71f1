//! The on-disk cache of compiled plugin code, and the hash that keys and
//! checks its files.
//!
//! Compiling the default store with Cranelift takes tens to hundreds of
//! milliseconds (more on a loaded machine), on every start and every reload.
//! The compiled code is kept on disk instead, one file per (plugin bytes,
//! engine) pair, and deserialized on the next start (a few milliseconds).

use super::compile::compile;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::sync::OnceLock;
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// The on-disk cache of compiled plugin code (`-o plugin_cache=off`
/// disables it; `plugin check` and `replay` always use it). Not configured
/// (unit tests): no cache.
static CODE_CACHE: OnceLock<CodeCache> = OnceLock::new();

/// Turns the code cache on (in the directory [`CodeCache::default_dir`]
/// picks) or off for this process; the first call wins. At `-vv` it logs
/// cache hits, misses and replacements.
pub fn configure_code_cache(enabled: bool) {
    let dir = if enabled {
        CodeCache::default_dir()
    } else {
        None
    };
    let _ = CODE_CACHE.set(CodeCache { dir });
}

pub(super) fn code_cache() -> Option<&'static CodeCache> {
    CODE_CACHE.get().filter(|c| c.dir.is_some())
}

/// Where compiled plugin code is kept.
pub struct CodeCache {
    dir: Option<std::path::PathBuf>,
}

/// What a cache file starts with: magic and format version, then the
/// 128-bit checksum of the rest, then wasmtime's serialized module.
const CACHE_MAGIC: &[u8; 16] = b"wasmcached-code1";
const CACHE_HEADER: usize = CACHE_MAGIC.len() + 16;

/// A stable 128-bit hash (two independent 64-bit lanes of FNV-1a-style
/// multiply-xor over 8-byte words, each finished with murmur3's fmix64). Not
/// a defence against someone who can write to the cache directory (they can
/// write a matching checksum, or replace the binary); it catches truncated,
/// torn and bit-flipped files, and keys files by content.
pub(super) fn hash128(parts: &[&[u8]]) -> [u8; 16] {
    fn fmix(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for part in parts {
        a = (a ^ part.len() as u64).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ part.len() as u64).wrapping_mul(0x9e37_79b1_85eb_ca87);
        let mut words = part.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            a = (a ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
            b = (b ^ w.rotate_left(17)).wrapping_mul(0x9e37_79b1_85eb_ca87);
        }
        for &byte in words.remainder() {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(byte)).wrapping_mul(0x9e37_79b1_85eb_ca87);
        }
    }
    let (a, b) = (fmix(a ^ b.rotate_left(32)), fmix(b ^ a));
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CodeCache {
    /// `$WASMCACHED_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmcached`, else
    /// `~/.cache/wasmcached` (Windows: `%LOCALAPPDATA%\wasmcached`). Relative
    /// XDG/LOCALAPPDATA values are ignored, as the XDG spec says.
    pub fn default_dir() -> Option<std::path::PathBuf> {
        use std::path::PathBuf;
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(d) = var("WASMCACHED_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        if cfg!(windows) {
            return var("LOCALAPPDATA")
                .and_then(absolute)
                .map(|p| p.join("wasmcached"));
        }
        if let Some(p) = var("XDG_CACHE_HOME").and_then(absolute) {
            return Some(p.join("wasmcached"));
        }
        var("HOME")
            .and_then(absolute)
            .map(|p| p.join(".cache").join("wasmcached"))
    }

    /// The cache file for `bytes` compiled by `engine`: keyed by the plugin
    /// bytes and wasmtime's compatibility hash of the engine's settings (a
    /// different wasmtime version or configuration gets another file).
    pub fn path_for(dir: &Path, engine: &Engine, bytes: &[u8]) -> std::path::PathBuf {
        use std::hash::{Hash, Hasher};
        // `precompile_compatibility_hash` only offers `Hash`: collect what it
        // feeds a hasher, then hash that with the stable hash above.
        #[derive(Default)]
        struct Collect(Vec<u8>);
        impl Hasher for Collect {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.extend_from_slice(bytes);
            }
        }
        let mut compat = Collect::default();
        engine.precompile_compatibility_hash().hash(&mut compat);
        let key = hash128(&[CACHE_MAGIC, &compat.0, bytes]);
        dir.join(format!("{}.cwasm", hex(&key)))
    }

    fn log(&self, msg: std::fmt::Arguments<'_>) {
        if crate::verbose::level() >= 2 {
            eprintln!("{msg}");
        }
    }

    /// The module for `bytes`: from the cache file when it is intact and
    /// compatible, else compiled (and the file written or replaced). Any
    /// cache trouble only costs the compile.
    pub(super) fn compiled<C: Compiled>(
        &self,
        engine: &Engine,
        bytes: &[u8],
        name: &str,
    ) -> Result<C> {
        let Some(dir) = self.dir.as_deref() else {
            return C::compile(engine, bytes, name);
        };
        let path = CodeCache::path_for(dir, engine, bytes);
        match std::fs::read(&path) {
            Ok(file) => match verified_payload(&file) {
                Some(payload) => {
                    // SAFETY: `Module::deserialize` trusts its input to be
                    // code wasmtime serialized; running anything else is
                    // undefined behaviour. The payload comes from a file in
                    // our own cache directory, named by a hash of these
                    // plugin bytes and of this engine's compatibility hash,
                    // that this function wrote (atomically, temp file +
                    // rename) from `Module::serialize` of exactly these
                    // bytes; its checksum has just been verified over the
                    // very bytes handed to wasmtime (no second read of the
                    // file), and wasmtime checks its own header (version,
                    // target, engine flags) and refuses a mismatch, which
                    // is then recompiled below. A directory writable by
                    // someone else is as trusted as the binary itself.
                    match unsafe { C::deserialize(engine, payload) } {
                        Ok(m) => {
                            self.log(format_args!(
                                "{name}: plugin code loaded from cache {}",
                                path.display()
                            ));
                            return Ok(m);
                        }
                        Err(e) => self.log(format_args!(
                            "{name}: cache file {} is not usable ({e}); recompiling",
                            path.display()
                        )),
                    }
                }
                None => self.log(format_args!(
                    "{name}: cache file {} is corrupt (bad header or checksum); recompiling",
                    path.display()
                )),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.log(format_args!(
                "{name}: no cached plugin code at {}; compiling",
                path.display()
            )),
            Err(e) => self.log(format_args!(
                "{name}: cannot read cache file {} ({e}); compiling",
                path.display()
            )),
        }
        let module = C::compile(engine, bytes, name)?;
        match module
            .serialize()
            .and_then(|payload| write_cache_file(&path, &payload))
        {
            Ok(()) => self.log(format_args!(
                "{name}: plugin code cached at {}",
                path.display()
            )),
            Err(e) => self.log(format_args!(
                "{name}: cannot write plugin code cache {}: {e:#}",
                path.display()
            )),
        }
        Ok(module)
    }
}

/// The serialized module inside a cache file, if magic and checksum match.
fn verified_payload(file: &[u8]) -> Option<&[u8]> {
    let (header, payload) = file.split_at_checked(CACHE_HEADER)?;
    let (magic, sum) = header.split_at(CACHE_MAGIC.len());
    (magic == CACHE_MAGIC && sum == hash128(&[payload])).then_some(payload)
}

/// What the cache keeps: a core module or a component, compiled.
pub(super) trait Compiled: Sized {
    fn compile(engine: &Engine, bytes: &[u8], name: &str) -> Result<Self>;
    /// # Safety
    /// `payload` must be what `serialize` wrote for this engine (see
    /// `CodeCache::compiled`).
    unsafe fn deserialize(engine: &Engine, payload: &[u8]) -> Result<Self>;
    fn serialize(&self) -> Result<Vec<u8>>;
}

impl Compiled for Module {
    fn compile(engine: &Engine, bytes: &[u8], name: &str) -> Result<Module> {
        compile(engine, bytes, name)
    }
    unsafe fn deserialize(engine: &Engine, payload: &[u8]) -> Result<Module> {
        // SAFETY: the caller's contract, passed on.
        Ok(unsafe { Module::deserialize(engine, payload) }?)
    }
    fn serialize(&self) -> Result<Vec<u8>> {
        Ok(Module::serialize(self)?)
    }
}

impl Compiled for Component {
    fn compile(engine: &Engine, bytes: &[u8], name: &str) -> Result<Component> {
        Component::new(engine, bytes).map_err(|e| anyhow!("{name}: not a valid component: {e}"))
    }
    unsafe fn deserialize(engine: &Engine, payload: &[u8]) -> Result<Component> {
        // SAFETY: the caller's contract, passed on.
        Ok(unsafe { Component::deserialize(engine, payload) }?)
    }
    fn serialize(&self) -> Result<Vec<u8>> {
        Ok(Component::serialize(self)?)
    }
}

/// Writes compiled code to `path` atomically: a unique temp file in the
/// same directory, renamed over the old file (readers see the old or the new
/// file, never half of one; two servers racing both write whole files).
fn write_cache_file(path: &Path, payload: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = path.with_extension(format!("tmp.{}.{nanos}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(CACHE_MAGIC)?;
        f.write_all(&hash128(&[payload]))?;
        f.write_all(payload)?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
