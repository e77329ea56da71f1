//! `-L`: huge pages for the plugins' linear memory, where the OS offers them.
//!
//! wasmtime reserves each instance's linear memory as one mapping (4 GiB of
//! address space on 64-bit hosts) and makes it accessible as the memory
//! grows, so the mapping never moves. On Linux the host marks that range
//! `MADV_HUGEPAGE` right after instantiation: with transparent huge pages in
//! mode `always` or `madvise` the kernel then backs 2 MiB-aligned stretches
//! the plugin touches with huge pages (as khugepaged or the fault path find
//! them). Elsewhere, or with THP `never`, nothing is asked and the start-up
//! line says why. memcached's `-L` preallocates its whole cache on huge pages
//! instead; the plugin's heap is not preallocated here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Where Linux shows the transparent huge page mode.
pub const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// Memory ranges advised so far, and the first failure.
static ADVISED: AtomicUsize = AtomicUsize::new(0);
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// The bracketed THP mode (`always`, `madvise`, `never`), or why there is none.
pub fn thp_mode() -> Result<String, String> {
    if !cfg!(target_os = "linux") {
        return Err("transparent huge pages are a Linux feature".into());
    }
    let text = std::fs::read_to_string(THP_ENABLED)
        .map_err(|e| format!("the kernel offers no transparent huge pages ({THP_ENABLED}: {e})"))?;
    let mode = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .ok_or_else(|| format!("no mode in {THP_ENABLED}: {:?}", text.trim()))?;
    match mode {
        "never" => Err(format!(
            "transparent huge pages are disabled ([never] in {THP_ENABLED})"
        )),
        m => Ok(m.to_string()),
    }
}

/// Asks for huge pages over an instance's memory: `base` is the start of its
/// linear memory, `reserved` the bytes it may grow to (within wasmtime's
/// reservation). Records the outcome for [`start_line`].
pub fn advise(base: *mut u8, reserved: usize, current: usize) {
    match advise_range(base, reserved).or_else(|_| advise_range(base, current)) {
        Ok(()) => {
            ADVISED.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            let mut f = FAILED.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert(e);
        }
    }
}

#[cfg(target_os = "linux")]
pub fn advise_range(base: *mut u8, len: usize) -> Result<(), String> {
    thp_mode()?;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: MADV_HUGEPAGE only changes the kernel's paging advice for the
    // range (wasmtime's mapping of this instance's memory, page-aligned); it
    // neither reads nor writes the bytes nor changes their protection, and
    // a range with unmapped parts only makes it fail with ENOMEM.
    let rc = unsafe { libc::madvise(base.cast(), len, libc::MADV_HUGEPAGE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "madvise(MADV_HUGEPAGE) failed: {}",
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(not(target_os = "linux"))]
pub fn advise_range(_base: *mut u8, _len: usize) -> Result<(), String> {
    thp_mode().map(|_| ())
}

/// Kilobytes of anonymous huge pages in the mappings this process advised
/// (`hg` in VmFlags of /proc/self/smaps), if that file is readable.
pub fn huge_kb() -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let (mut total, mut pending) = (0u64, 0u64);
    for line in smaps.lines() {
        if let Some(v) = line.strip_prefix("AnonHugePages:") {
            pending = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            if flags.split_whitespace().any(|f| f == "hg") {
                total += pending;
            }
            pending = 0;
        }
    }
    Some(total)
}

/// The line `-L` prints at start, once every shard is instantiated:
/// `Ok` when huge pages were asked for, `Err` when they could not be.
pub fn start_line() -> Result<String, String> {
    let failed = FAILED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let advised = ADVISED.load(Ordering::Relaxed);
    match (failed, thp_mode()) {
        (Some(e), _) | (None, Err(e)) => Err(format!("-L: huge pages not available: {e}")),
        (None, Ok(mode)) => {
            let now = match huge_kb() {
                Some(kb) => format!("{kb} kB on huge pages now (AnonHugePages)"),
                None => "how much is on huge pages is not known (no /proc/self/smaps)".into(),
            };
            Ok(format!(
                "-L: the memory of {advised} plugin instance(s) is advised for transparent huge pages (mode {mode}); {now}"
            ))
        }
    }
}
