//! Warm restart, memcached's restartable cache (`-e <file>`, its restart.c):
//! a graceful stop (SIGUSR1, `shutdown graceful`, Ctrl-Break on Windows)
//! leaves every shard's items in files under the `-e` path, and the next
//! start with compatible settings serves them again.
//!
//! The files, all beside each other with the `-e` path as their prefix:
//! - `FILE`: the memory file proper, text in the manner of memcached's
//!   `FILE.meta`: the settings the cache depends on, the server clock, and
//!   one line per shard file with its size and CRC-32, then a checksum line
//!   over all of it;
//! - `FILE.0`, `FILE.1`, …: each shard's items in the plugin ABI's item
//!   records (host/src/plugin/snapshot.rs: why records and not a copy of
//!   the linear memory).
//!
//! Saving writes the shard files under temporary names, renames them, then
//! writes `FILE` last (temporary name, sync, rename), so a crash or a
//! SIGKILL at any point leaves either no `FILE` or one whose checksums name
//! exactly the shard files beside it. A start reads and checks every file
//! before a single item is loaded, then removes them, as memcached removes
//! its `.meta` file: a server killed later must not come back with items
//! that were deleted or overwritten since. A file that is truncated,
//! corrupted, foreign or saved with other settings is renamed aside (with a
//! `.rejected` suffix) and the server starts empty, after one `[restart]`
//! line saying why.
//!
//! Server time continues across the restart (memcached restores its
//! `process_started` the same way): the saved records load unchanged, and a
//! TTL counts wall-clock time, the time the server was down included.
//!
//! `meta` reads and writes the memory file's text; `files` names the files
//! and removes or renames them.

mod files;
mod meta;

use crate::clock;
use crate::plugin::{check_items_file, Plugin, SavedItems, Shard};
use crate::settings::Settings;
use anyhow::{anyhow, bail, Context, Result};
use files::{reject, remove_files, remove_shard_files, shard_path, sync_dir, temporary};
use meta::{format_meta, parse_meta, ShardFile};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The settings a saved cache depends on, in the order memcached checks
/// its own (`slab_config`, `maxbytes`, …), plus the shard count (which
/// shard owns a key) and the plugin. A start with any of them different
/// starts empty.
fn compatibility(s: &Settings, plugin: &Plugin) -> Vec<(&'static str, String)> {
    let k = &s.knobs;
    vec![
        ("slab_config", format!("{:.2}", k.growth_factor)),
        ("maxbytes", s.maxbytes.to_string()),
        ("chunk_size", k.chunk_size.to_string()),
        ("item_size_max", s.item_size_max.to_string()),
        ("slab_chunk_size_max", k.slab_chunk_max.to_string()),
        ("use_cas", s.use_cas.to_string()),
        ("shards", s.shards.to_string()),
        ("plugin", plugin.name.clone()),
        ("plugin_config", s.plugin_config.clone()),
    ]
}

/// What a start found in the memory file: the saved clock and every
/// shard's checked items, ready to load.
pub struct Restore {
    path: PathBuf,
    /// Unix time at which the saved server's time was 0.
    pub process_started: i64,
    /// The saved server time at the stop (the restored clock never runs
    /// below it).
    pub current_time: u32,
    /// Each shard's file, by shard id.
    files: Vec<Option<Vec<u8>>>,
    /// Each shard's item count, by shard id.
    shard_items: Vec<u64>,
    /// How long reading and checking the files took.
    checked_in: std::time::Duration,
}

/// Logs one `[restart]` line (on stderr, as memcached does, at any
/// verbosity).
fn log(line: &str) {
    eprintln!("[restart] {line}");
}

/// At start-up, before the clock starts: reads and checks the memory file
/// and its shard files against `settings` and the plugin loaded. `None`:
/// start empty (the reason is logged, a bad file renamed aside). Either way
/// the files are gone from their names afterwards. `Err`: the `-e` path
/// cannot be written, so a stop could not save (memcached does not start
/// either).
pub fn open(settings: &Settings, plugin: &Plugin) -> Result<Option<Restore>> {
    let Some(path) = settings.memory_file.as_deref() else {
        return Ok(None);
    };
    let probe = temporary(path);
    File::create(&probe)
        .with_context(|| format!("cannot write the memory file {}", probe.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(read(path, settings, plugin))
}

fn read(path: &Path, settings: &Settings, plugin: &Plugin) -> Option<Restore> {
    let started = Instant::now();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log("no metadata save file, starting with a clean cache");
            remove_shard_files(path, settings.shards);
            return None;
        }
        Err(e) => {
            log(&format!(
                "cannot read {}: {e}; starting with a clean cache",
                path.display()
            ));
            return None;
        }
    };
    match check(path, &bytes, settings, plugin) {
        Ok(mut r) => {
            remove_files(path, settings.shards);
            r.checked_in = started.elapsed();
            Some(r)
        }
        Err(why) => {
            log(&format!("{why:#}; starting with a clean cache"));
            reject(path);
            None
        }
    }
}

fn check(path: &Path, bytes: &[u8], settings: &Settings, plugin: &Plugin) -> Result<Restore> {
    let meta = parse_meta(bytes).map_err(|e| anyhow!("corrupt metadata file: {e}"))?;
    for (key, now) in compatibility(settings, plugin) {
        let old = meta.get(key).unwrap_or("(none)");
        if old != now {
            bail!(
                "restart incompatible due to setting for [{key}] [old value: {old}] \
                 [new value: {now}]"
            );
        }
    }
    if meta.get("plugin_digest") != Some(plugin.digest.as_str()) {
        log("the plugin changed since the save (an upgrade): its items load as item records");
    }
    let process_started: i64 = meta.number("process_started")?;
    let current_time: u32 = meta.number("current_time")?;
    let shards = settings.shards;
    let mut wanted: Vec<Option<&ShardFile>> = vec![None; shards];
    for f in &meta.shards {
        match wanted.get_mut(f.shard as usize) {
            Some(slot @ None) => *slot = Some(f),
            _ => bail!(
                "corrupt metadata file: a bad shard line for shard {}",
                f.shard
            ),
        }
    }
    // Read and check every shard file, in parallel, before loading any.
    let read: Vec<Result<Option<Vec<u8>>>> = std::thread::scope(|scope| {
        let tasks: Vec<_> = wanted
            .iter()
            .map(|f| scope.spawn(move || f.map(|f| read_shard(path, f)).transpose()))
            .collect();
        tasks
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(anyhow!("reader panicked"))))
            .collect()
    });
    let mut files = Vec::with_capacity(shards);
    for r in read {
        files.push(r?);
    }
    let shard_items = wanted.iter().map(|f| f.map_or(0, |f| f.items)).collect();
    Ok(Restore {
        path: path.to_path_buf(),
        process_started,
        current_time,
        files,
        shard_items,
        checked_in: std::time::Duration::ZERO,
    })
}

fn read_shard(base: &Path, f: &ShardFile) -> Result<Vec<u8>> {
    let path = shard_path(base, f.shard);
    let bad = |why: String| anyhow!("corrupt shard file {}: {why}", path.display());
    let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 != f.bytes {
        return Err(bad(format!("{} bytes, saved {}", bytes.len(), f.bytes)));
    }
    if crc32fast::hash(&bytes) != f.crc {
        return Err(bad("its CRC-32 does not match".into()));
    }
    let items = check_items_file(&bytes, f.shard).map_err(|e| bad(format!("{e:#}")))?;
    if items != f.items {
        return Err(bad(format!("{items} items, saved {}", f.items)));
    }
    Ok(bytes)
}

impl Restore {
    /// Starts the server clock where the saved one was.
    pub fn start_clock(&self) {
        clock::init_restored(self.process_started, self.current_time);
    }

    /// The hints for a restored shard's instance: `hashpower` raised to the
    /// table its saved items need (memcached restores its saved hash power
    /// the same way), so that loading them does not grow the plugin's index
    /// a dozen times over.
    pub fn hints_for(&self, shard: u32, mut hints: wasmcached_abi::Hints) -> wasmcached_abi::Hints {
        let items = self.shard_items.get(shard as usize).copied().unwrap_or(0);
        // A bucket per item: loading looks every key up first (a dump may
        // repeat one), and each item in a chain is a cache miss.
        let buckets = (items * 2 / 3).max(1);
        let power = 64 - (buckets - 1).leading_zeros();
        hints.hashpower = hints.hashpower.max(power.min(30));
        hints
    }

    /// Loads the saved items into the shards (each list is one worker's,
    /// loaded on a thread of its own); logs what it did. A shard whose
    /// plugin faults or runs out of memory keeps what it took; the others
    /// are not affected.
    pub fn load(mut self, shards: &mut [Vec<Shard>], verbose: bool) {
        let started = Instant::now();
        type Work<'a> = Vec<(&'a mut Shard, Option<Vec<u8>>)>;
        type Loaded = Vec<(u32, Result<crate::plugin::Transfer>)>;
        let work: Vec<Work> = shards
            .iter_mut()
            .map(|owned| {
                owned
                    .iter_mut()
                    .map(|s| {
                        let id = s.shard_id() as usize;
                        let file = self.files.get_mut(id).and_then(Option::take);
                        (s, file)
                    })
                    .collect()
            })
            .collect();
        let results: Vec<Loaded> = std::thread::scope(|scope| {
            let tasks: Vec<_> = work
                .into_iter()
                .map(|group| {
                    scope.spawn(move || {
                        group
                            .into_iter()
                            .filter_map(|(s, f)| f.map(|f| (s.shard_id(), s.load_items(f))))
                            .collect()
                    })
                })
                .collect();
            tasks
                .into_iter()
                .map(|t| t.join().unwrap_or_default())
                .collect()
        });
        let mut loaded = 0u64;
        for (shard, r) in results.into_iter().flatten() {
            match r {
                Ok(t) if !t.supported => log(&format!(
                    "shard {shard}: the plugin cannot load items (ABI v3 wmc_load); \
                     it starts empty"
                )),
                Ok(t) => {
                    loaded += t.moved;
                    if !t.complete {
                        log(&format!(
                            "shard {shard}: out of memory after {} of {} items",
                            t.moved, t.dumped
                        ));
                    }
                }
                Err(e) => log(&format!("shard {shard}: {e:#}; it starts empty")),
            }
        }
        if verbose {
            log(&format!(
                "restored {loaded} of {} items from {} in {} ms (the files read and \
                 checked in {} ms, then loaded)",
                self.shard_items.iter().sum::<u64>(),
                self.path.display(),
                (self.checked_in + started.elapsed()).as_millis(),
                self.checked_in.as_millis()
            ));
        }
    }
}

/// At a graceful stop, after the workers have stopped and handed their
/// shards back: saves every shard (each on a thread of its own) and
/// commits the memory file. Logs the outcome; on failure no memory file is
/// left, so the next start begins empty.
pub fn save(settings: &Settings, mut shards: Vec<Shard>, verbose: bool) {
    let Some(base) = settings.memory_file.as_deref() else {
        return;
    };
    let started = Instant::now();
    let Some(plugin) = shards.first().map(|s| s.plugin().clone()) else {
        return;
    };
    let saved: Vec<(u32, Result<Option<ShardFile>>)> = std::thread::scope(|scope| {
        let tasks: Vec<_> = shards
            .iter_mut()
            .map(|s| scope.spawn(move || (s.shard_id(), save_shard(s, base))))
            .collect();
        tasks
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| (u32::MAX, Err(anyhow!("saver panicked"))))
            })
            .collect()
    });
    match commit(settings, &plugin, saved) {
        Ok(items) if verbose => log(&format!(
            "saved {items} items to {} in {} ms",
            base.display(),
            started.elapsed().as_millis()
        )),
        Ok(_) => {}
        Err(e) => log(&format!(
            "failed to save the cache: {e:#}; the next start begins empty"
        )),
    }
}

/// A writer that keeps the CRC-32 of what passes through it.
struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// On a worker, at a graceful stop: writes one shard's items to its file
/// (under a temporary name until [`commit`]). `Ok(None)`: the plugin cannot
/// dump its items.
pub fn save_shard(shard: &mut Shard, base: &Path) -> Result<Option<ShardFile>> {
    let id = shard.shard_id();
    let tmp = temporary(&shard_path(base, id));
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = CrcWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    let saved: Option<SavedItems> = shard
        .save_items(&mut w)
        .with_context(|| format!("writing {}", tmp.display()))?;
    let Some(saved) = saved else {
        drop(w);
        let _ = std::fs::remove_file(&tmp);
        return Ok(None);
    };
    w.flush()?;
    let crc = w.crc.finalize();
    let file = w.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(Some(ShardFile {
        shard: id,
        items: saved.items,
        bytes: saved.bytes,
        crc,
    }))
}

/// On the main thread, once every shard is saved: puts the shard files in
/// place and writes the memory file that vouches for them. `saved` holds
/// every shard's outcome; if one failed or cannot dump, nothing is
/// committed (the next start begins empty) and the error says why.
pub fn commit(
    settings: &Settings,
    plugin: &Plugin,
    saved: Vec<(u32, Result<Option<ShardFile>>)>,
) -> Result<u64> {
    let base = settings
        .memory_file
        .as_deref()
        .ok_or_else(|| anyhow!("no -e"))?;
    let mut files = Vec::new();
    let mut failed = None;
    for (shard, r) in saved {
        match r {
            Ok(Some(f)) => files.push(f),
            Ok(None) => {
                failed.get_or_insert(anyhow!(
                    "shard {shard}: the plugin cannot dump its items (ABI v3 wmc_dump)"
                ));
            }
            Err(e) => {
                failed.get_or_insert(e.context(format!("shard {shard}")));
            }
        }
    }
    if files.len() != settings.shards && failed.is_none() {
        failed = Some(anyhow!(
            "{} of {} shards saved",
            files.len(),
            settings.shards
        ));
    }
    if let Some(e) = failed {
        remove_files(base, settings.shards);
        return Err(e);
    }
    files.sort_by_key(|f| f.shard);
    for f in &files {
        let p = shard_path(base, f.shard);
        std::fs::rename(temporary(&p), &p).with_context(|| format!("renaming {}", p.display()))?;
    }
    let mut values = compatibility(settings, plugin);
    values.push(("plugin_digest", plugin.digest.clone()));
    values.push(("version", crate::settings::VERSION.into()));
    values.push(("process_started", clock::process_started().to_string()));
    values.push(("current_time", clock::now().to_string()));
    values.push(("stop_time", clock::unix_now().to_string()));
    let text = format_meta(&values, &files);
    let tmp = temporary(base);
    {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, base).with_context(|| format!("renaming {}", tmp.display()))?;
    sync_dir(base);
    Ok(files.iter().map(|f| f.items).sum())
}
