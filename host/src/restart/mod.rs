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
//!   records (host/src/plugin/snapshot.rs), which any plugin that loads
//!   items can take: what an upgrade restores from;
//! - `FILE.0.image`, …: each shard's linear memory (host/src/plugin/image.rs),
//!   when the plugin keeps all its state there: what a start with the same
//!   build of the same plugin restores from, by copying the memory back
//!   instead of re-inserting every item. An image that does not check out
//!   at load time leaves its shard to a fresh instance and the records.
//!
//! Saving writes the shard files under temporary names, renames them, then
//! writes `FILE` last (temporary name, sync, rename), so a crash or a
//! SIGKILL at any point leaves either no `FILE` or one whose checksums name
//! exactly the shard files beside it. A start reads and checks every
//! records file before a single item is loaded (an image is checked as it
//! is read into its instance), then removes them all before it serves, as
//! memcached removes its `.meta` file: a server killed later must not come
//! back with items that were deleted or overwritten since. A file that is truncated,
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
use crate::plugin::{
    check_items_file, sized_for_items, Plugin, SavedImage, SavedItems, Shard, Transfer,
};
use crate::settings::Settings;
use anyhow::{anyhow, bail, Context, Result};
pub use files::finish_removing;
use files::{
    image_path, reject, remove_files, remove_files_soon, remove_shard_files, shard_path, sync_dir,
    temporary,
};
use meta::{format_meta, parse_meta, ImageFile, ShardFile};
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
    /// Where each shard's items come from, by shard id.
    sources: Vec<Source>,
    /// How many shards the save had (which files to remove once loaded).
    shards: usize,
    /// Each shard's item count, by shard id.
    shard_items: Vec<u64>,
    /// How long reading and checking the files took.
    checked_in: std::time::Duration,
}

/// Where one shard's saved items come from.
enum Source {
    /// Nothing was saved for the shard.
    Nothing,
    /// Its records file, read and checked.
    Records(Vec<u8>),
    /// Its memory image, opened, with the records file to fall back on.
    Image {
        file: File,
        image: SavedImage,
        records: ShardFile,
    },
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
    // The images are the memory of one build of one plugin.
    let same_build = meta.get("plugin_digest") == Some(plugin.digest.as_str());
    if !same_build {
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
    // Each shard's image, opened, where the same build saved one beside
    // its records.
    let mut images: Vec<Option<(File, SavedImage)>> = (0..shards).map(|_| None).collect();
    for i in meta
        .images
        .iter()
        .filter(|_| same_build && plugin.image_safe.is_ok())
    {
        if let (Some(slot), Some(Some(_))) = (
            images.get_mut(i.shard as usize),
            wanted.get(i.shard as usize),
        ) {
            let saved = SavedImage {
                bytes: i.bytes,
                crc: i.crc,
            };
            *slot = open_image(path, i).map(|file| (file, saved));
        }
    }
    // Read and check every records file not standing behind an image, in
    // parallel, before loading any.
    let read: Vec<Result<Option<Vec<u8>>>> = std::thread::scope(|scope| {
        let tasks: Vec<_> = wanted
            .iter()
            .zip(&images)
            .map(|(f, image)| {
                let f = f.filter(|_| image.is_none());
                scope.spawn(move || f.map(|f| read_shard(path, f)).transpose())
            })
            .collect();
        tasks
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(anyhow!("reader panicked"))))
            .collect()
    });
    let mut sources = Vec::with_capacity(shards);
    for ((r, image), f) in read.into_iter().zip(images).zip(&wanted) {
        sources.push(match (image.zip(*f), r?) {
            (Some(((file, image), records)), _) => Source::Image {
                file,
                image,
                records: records.clone(),
            },
            (None, Some(bytes)) => Source::Records(bytes),
            (None, None) => Source::Nothing,
        });
    }
    let shard_items = wanted.iter().map(|f| f.map_or(0, |f| f.items)).collect();
    Ok(Restore {
        path: path.to_path_buf(),
        process_started,
        current_time,
        sources,
        shards: meta.shards.len().max(shards),
        shard_items,
        checked_in: std::time::Duration::ZERO,
    })
}

/// Opens a shard's memory image if it is there at its saved size (its
/// contents are checked as they load). `None`: the shard loads its records.
fn open_image(base: &Path, i: &ImageFile) -> Option<File> {
    let path = image_path(base, i.shard);
    let opened = File::open(&path).and_then(|f| Ok((f.metadata()?.len(), f)));
    match opened {
        Ok((len, f)) if len == i.bytes => Some(f),
        Ok((len, _)) => {
            log(&format!(
                "shard {}: its memory image has {len} bytes, saved {}; loading its item records",
                i.shard, i.bytes
            ));
            None
        }
        Err(e) => {
            log(&format!(
                "shard {}: cannot open its memory image {}: {e}; loading its item records",
                i.shard,
                path.display()
            ));
            None
        }
    }
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

    /// The hints for a restored shard's instance: sized for the items it
    /// is about to load from records. An image brings its own index (and a
    /// fresh instance bigger than the image could not take it).
    pub fn hints_for(&self, shard: u32, hints: wasmcached_abi::Hints) -> wasmcached_abi::Hints {
        match self.sources.get(shard as usize) {
            Some(Source::Records(_)) => {
                let items = self.shard_items.get(shard as usize).copied().unwrap_or(0);
                sized_for_items(hints, items)
            }
            _ => hints,
        }
    }

    /// Loads the saved items into the shards (each list is one worker's,
    /// loaded on a thread of its own), then removes the files; logs what it
    /// did. A shard whose plugin faults or runs out of memory keeps what it
    /// took; the others are not affected.
    pub fn load(mut self, shards: &mut [Vec<Shard>], verbose: bool) {
        let started = Instant::now();
        let path = self.path.as_path();
        type Work<'a> = Vec<(&'a mut Shard, Source)>;
        let work: Vec<Work> = shards
            .iter_mut()
            .map(|owned| {
                owned
                    .iter_mut()
                    .map(|s| {
                        let id = s.shard_id() as usize;
                        let source = self
                            .sources
                            .get_mut(id)
                            .map_or(Source::Nothing, |s| std::mem::replace(s, Source::Nothing));
                        (s, source)
                    })
                    .collect()
            })
            .collect();
        let results: Vec<Vec<Outcome>> = std::thread::scope(|scope| {
            let tasks: Vec<_> = work
                .into_iter()
                .map(|group| {
                    scope.spawn(move || {
                        group
                            .into_iter()
                            .map(|(s, source)| load_shard(s, source, path))
                            .collect()
                    })
                })
                .collect();
            tasks
                .into_iter()
                .map(|t| t.join().unwrap_or_default())
                .collect()
        });
        let results: Vec<Outcome> = results.into_iter().flatten().collect();
        if let Some(why) = results.iter().find_map(|o| o.corrupt.as_ref()) {
            // An image that did not check out, and records that do not
            // either: nothing of this save is served, as when a file fails
            // its check before loading.
            log(&format!("{why:#}; starting with a clean cache"));
            for s in shards.iter_mut().flatten() {
                if let Err(e) = s.reset() {
                    log(&format!("shard {}: {e:#}", s.shard_id()));
                }
            }
            reject(path);
            return;
        }
        remove_files_soon(path, self.shards);
        let (mut loaded, mut from_images) = (0u64, 0);
        for o in results {
            let shard = o.shard;
            from_images += usize::from(o.from_image);
            match o.result {
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
                "restored {loaded} of {} items from {} in {} ms (the records files read \
                 and checked in {} ms, then {from_images} shards from their memory \
                 images and the others from their records)",
                self.shard_items.iter().sum::<u64>(),
                self.path.display(),
                (self.checked_in + started.elapsed()).as_millis(),
                self.checked_in.as_millis()
            ));
        }
    }
}

/// What loading one shard came to.
struct Outcome {
    shard: u32,
    /// Whether its memory image loaded.
    from_image: bool,
    result: Result<Transfer>,
    /// Its image did not load and its records file failed its check.
    corrupt: Option<anyhow::Error>,
}

/// Loads one shard from its source: the image when it checks out, else
/// (on a fresh instance) the records.
fn load_shard(s: &mut Shard, source: Source, base: &Path) -> Outcome {
    let shard = s.shard_id();
    let outcome = |from_image, result| Outcome {
        shard,
        from_image,
        result,
        corrupt: None,
    };
    match source {
        Source::Nothing => {
            let none = Transfer {
                supported: true,
                complete: true,
                ..Transfer::default()
            };
            outcome(false, Ok(none))
        }
        Source::Records(bytes) => outcome(false, s.load_items(bytes)),
        Source::Image {
            mut file,
            image,
            records,
        } => {
            let Err(e) = s.load_image(&mut file, image) else {
                let all = Transfer {
                    supported: true,
                    complete: true,
                    moved: records.items,
                    dumped: records.items,
                };
                return outcome(true, Ok(all));
            };
            log(&format!(
                "shard {shard}: its memory image did not load ({e:#}); loading its item records"
            ));
            if let Err(e) = s.reset() {
                return outcome(false, Err(e));
            }
            match read_shard(base, &records) {
                Ok(bytes) => outcome(false, s.load_items(bytes)),
                Err(e) => Outcome {
                    corrupt: Some(e),
                    ..outcome(false, Ok(Transfer::default()))
                },
            }
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
    finish_removing();
    let Some(plugin) = shards.first().map(|s| s.plugin().clone()) else {
        return;
    };
    let saved: Vec<(u32, Result<SavedShard>)> = std::thread::scope(|scope| {
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

/// What a graceful stop saved of one shard.
pub struct SavedShard {
    /// Its items; `None`: the plugin cannot dump them.
    pub records: Option<ShardFile>,
    /// Its memory image; `None`: the plugin keeps state elsewhere, or the
    /// image could not be written (the records are enough).
    pub image: Option<ImageFile>,
}

/// At a graceful stop: writes one shard's memory image, then its items
/// (each under a temporary name until [`commit`]). The image is taken
/// first, while the memory is as the last request left it.
pub fn save_shard(shard: &mut Shard, base: &Path) -> Result<SavedShard> {
    let image = save_image(shard, base).unwrap_or_else(|e| {
        let path = temporary(&image_path(base, shard.shard_id()));
        let _ = std::fs::remove_file(&path);
        log(&format!(
            "shard {}: no memory image ({e:#}); its items are saved as records",
            shard.shard_id()
        ));
        None
    });
    Ok(SavedShard {
        records: save_records(shard, base)?,
        image,
    })
}

fn save_image(shard: &mut Shard, base: &Path) -> Result<Option<ImageFile>> {
    if shard.plugin().image_safe.is_err() {
        return Ok(None);
    }
    let id = shard.shard_id();
    let tmp = temporary(&image_path(base, id));
    let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let Some(saved) = shard.save_image(&mut file)? else {
        drop(file);
        let _ = std::fs::remove_file(&tmp);
        return Ok(None);
    };
    file.sync_all()?;
    Ok(Some(ImageFile {
        shard: id,
        bytes: saved.bytes,
        crc: saved.crc,
    }))
}

/// Writes one shard's items to its records file. `Ok(None)`: the plugin
/// cannot dump its items.
fn save_records(shard: &mut Shard, base: &Path) -> Result<Option<ShardFile>> {
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
    saved: Vec<(u32, Result<SavedShard>)>,
) -> Result<u64> {
    let base = settings
        .memory_file
        .as_deref()
        .ok_or_else(|| anyhow!("no -e"))?;
    let mut files = Vec::new();
    let mut images = Vec::new();
    let mut failed = None;
    for (shard, r) in saved {
        match r {
            Ok(SavedShard {
                records: Some(f),
                image,
            }) => {
                files.push(f);
                images.extend(image);
            }
            Ok(SavedShard { records: None, .. }) => {
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
    // A memory file left from an earlier save must not vouch for any of
    // the files renamed below, even for the moment until its successor
    // replaces it.
    match std::fs::remove_file(base) {
        Ok(()) => sync_dir(base),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!(e).context(format!("removing the old {}", base.display()))),
    }
    files.sort_by_key(|f| f.shard);
    for f in &files {
        let p = shard_path(base, f.shard);
        std::fs::rename(temporary(&p), &p).with_context(|| format!("renaming {}", p.display()))?;
    }
    images.sort_by_key(|i| i.shard);
    for i in &images {
        let p = image_path(base, i.shard);
        std::fs::rename(temporary(&p), &p).with_context(|| format!("renaming {}", p.display()))?;
    }
    let mut values = compatibility(settings, plugin);
    values.push(("plugin_digest", plugin.digest.clone()));
    values.push(("version", crate::settings::VERSION.into()));
    values.push(("process_started", clock::process_started().to_string()));
    values.push(("current_time", clock::now().to_string()));
    values.push(("stop_time", clock::unix_now().to_string()));
    let text = format_meta(&values, &files, &images);
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
