//! The names of the files under the `-e` path, and what happens to them:
//! removed once loaded, renamed aside when refused.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

/// The removal of a loaded save's files, when it runs in the background.
static REMOVING: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// How a shard file is named beside the memory file.
pub(super) fn shard_path(base: &Path, shard: u32) -> PathBuf {
    suffixed(base, &format!(".{shard}"))
}

/// How a shard's memory image is named beside the memory file.
pub(super) fn image_path(base: &Path, shard: u32) -> PathBuf {
    suffixed(base, &format!(".{shard}.image"))
}

fn suffixed(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(super) fn temporary(path: &Path) -> PathBuf {
    suffixed(path, ".tmp")
}

/// Every file a save may have left (shards of any count up to `shards`,
/// and the temporary names).
pub(super) fn all_files(base: &Path, shards: usize) -> Vec<PathBuf> {
    let mut out = vec![base.to_path_buf(), temporary(base)];
    // A save with more shards than this start has left files beyond them.
    let mut n = 0u32;
    loop {
        let p = shard_path(base, n);
        let i = image_path(base, n);
        let group = [temporary(&p), temporary(&i), p, i];
        if n as usize >= shards && !group.iter().any(|f| f.exists()) {
            break;
        }
        out.extend(group);
        n += 1;
    }
    out
}

pub(super) fn remove_files(base: &Path, shards: usize) {
    for p in all_files(base, shards) {
        let _ = std::fs::remove_file(p);
    }
}

/// Removes a loaded save: the memory file at once (without it the others
/// are never loaded again), the shard files and images on a thread of
/// their own, since freeing a few hundred megabytes of tmpfs pages takes
/// tens of milliseconds that the first clients need not wait for.
/// [`finish_removing`] waits for it.
pub(super) fn remove_files_soon(base: &Path, shards: usize) {
    let _ = std::fs::remove_file(base);
    let base = base.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("restart-cleanup".into())
        .spawn(move || remove_files(&base, shards));
    let mut removing = REMOVING.lock().unwrap_or_else(|p| p.into_inner());
    if let Ok(handle) = spawned {
        *removing = Some(handle);
    }
}

/// Waits until the files of a loaded save are gone, so that they cannot be
/// removed after a new save is written under their names.
pub fn finish_removing() {
    let handle = REMOVING.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(h) = handle {
        let _ = h.join();
    }
}

pub(super) fn remove_shard_files(base: &Path, shards: usize) {
    for p in all_files(base, shards).into_iter().skip(1) {
        let _ = std::fs::remove_file(p);
    }
}

/// Renames every file of a refused save aside, so that it is neither
/// loaded by a later start nor lost to an operator who wants to look.
pub(super) fn reject(base: &Path) {
    for p in all_files(base, 0) {
        if p.exists() {
            let _ = std::fs::rename(&p, suffixed(&p, ".rejected"));
        }
    }
}

/// Makes the renames durable (unix: fsync of the directory; Windows has no
/// such call and needs none for a rename).
pub(super) fn sync_dir(base: &Path) {
    #[cfg(unix)]
    if let Some(dir) = base.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = base;
}
