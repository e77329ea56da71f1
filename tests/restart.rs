//! Warm restart (`-e <file>`) over real sockets: a graceful stop (SIGUSR1 on
//! unix, `shutdown graceful` with `-A` everywhere) leaves the cache in the
//! memory file, and the next start with the same settings serves every item
//! with its value, flags, CAS and remaining TTL. Changed settings and
//! damaged, foreign or half-written files start empty with one `[restart]`
//! line and never serve a wrong value. Where Debian's memcached is present,
//! the same steps run against it and the log lines are compared.

use crate::common;

use common::{Client, Server};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh memory-file path (in /dev/shm where there is one, as memcached
/// advises); its files are removed when it is dropped.
struct MemFile(PathBuf);

impl MemFile {
    fn new(name: &str) -> MemFile {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!(
            "wmc-restart-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        MemFile(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }

    /// A file beside the memory file: `""` is the memory file itself, `".0"`
    /// shard 0's file.
    fn file(&self, suffix: &str) -> PathBuf {
        PathBuf::from(format!("{}{suffix}", self.arg()))
    }

    /// The names of every file with this prefix, sorted.
    fn files(&self) -> Vec<String> {
        let dir = self.0.parent().unwrap();
        let base = self.0.file_name().unwrap().to_string_lossy().into_owned();
        let mut out: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&base))
            .map(|n| n[base.len()..].to_string())
            .collect();
        out.sort();
        out
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        for f in self.files() {
            let _ = fs::remove_file(self.file(&f));
        }
    }
}

fn args<'a>(m: &'a MemFile, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["-e", m.arg(), "-A", "-U", "0"];
    a.extend_from_slice(extra);
    a
}

/// The graceful stop that saves: `shutdown graceful` (every platform).
fn stop_saving(s: &mut Server) {
    let mut c = s.client();
    c.send("shutdown graceful\r\n");
    assert!(
        s.wait_exit(Duration::from_secs(60)).is_some(),
        "the server did not stop:\n{}",
        s.log_tail(20)
    );
}

#[cfg(unix)]
fn signal(s: &Server, sig: i32) {
    // SAFETY: kill(2) on a child process this test started; no memory passed.
    assert_eq!(unsafe { libc::kill(s.pid() as i32, sig) }, 0);
}

/// SIGUSR1, memcached's graceful stop.
#[cfg(unix)]
fn sigusr1(s: &mut Server) {
    signal(s, libc::SIGUSR1);
    assert!(
        s.wait_exit(Duration::from_secs(60)).is_some(),
        "the server did not stop on SIGUSR1:\n{}",
        s.log_tail(20)
    );
}

/// The `mg KEY v f t c` answer's value, flags, TTL and CAS (None: a miss).
fn meta_get(c: &mut Client, key: &str) -> Option<(Vec<u8>, u32, i64, u64)> {
    c.send(format!("mg {key} v f t c\r\n"));
    let head = c.line();
    if head == "EN" {
        return None;
    }
    let mut parts = head.split(' ');
    assert_eq!(parts.next(), Some("VA"), "{head}");
    let len: usize = parts.next().unwrap().parse().unwrap();
    let (mut flags, mut ttl, mut cas) = (0, 0, 0);
    for p in parts {
        let (k, v) = p.split_at(1);
        match k {
            "f" => flags = v.parse().unwrap(),
            "t" => ttl = v.parse().unwrap(),
            "c" => cas = v.parse().unwrap(),
            _ => {}
        }
    }
    let data = c.exact(len + 2);
    Some((data[..len].to_vec(), flags, ttl, cas))
}

/// What [`fill`] stored: the items' CAS values (it derefs to them), and
/// when it began.
struct Filled {
    cas: Vec<u64>,
    began: Instant,
}

impl std::ops::Deref for Filled {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.cas
    }
}

/// `n` items `k{i}` with flags i, a TTL of 1000 s on every third, and
/// values of varied sizes.
fn fill(c: &mut Client, n: usize) -> Filled {
    let began = Instant::now();
    let mut cas = Vec::with_capacity(n);
    for i in 0..n {
        let ttl = if i % 3 == 0 { 1000 } else { 0 };
        let value = value_of(i);
        assert_eq!(c.set(&format!("k{i}"), i as u32, ttl, &value), "STORED");
        cas.push(meta_get(c, &format!("k{i}")).unwrap().3);
    }
    Filled { cas, began }
}

fn value_of(i: usize) -> Vec<u8> {
    format!("value-{i}-").repeat(1 + i % 40).into_bytes()
}

/// Every item `fill` stored is there with its value, flags, CAS and a TTL
/// that has run for `elapsed` seconds of wall-clock time (±2 s), or for as
/// long as since the fill began when that was longer (a loaded machine
/// can take seconds to fill).
fn assert_filled(c: &mut Client, filled: &Filled, elapsed: u64) {
    let since_fill = filled.began.elapsed().as_secs() as i64;
    for (i, &cas) in filled.iter().enumerate() {
        let key = format!("k{i}");
        let (value, flags, ttl, got_cas) =
            meta_get(c, &key).unwrap_or_else(|| panic!("{key} lost across the restart"));
        assert_eq!(value, value_of(i), "{key}");
        assert_eq!(flags, i as u32, "{key}");
        assert_eq!(got_cas, cas, "{key}: CAS changed");
        if i % 3 == 0 {
            let want = 1000 - elapsed as i64;
            assert!(
                (1000 - since_fill - 2..=want + 1).contains(&ttl),
                "{key}: TTL {ttl}, want about {want} (filled {since_fill} s ago)"
            );
        } else {
            assert_eq!(ttl, -1, "{key}");
        }
    }
}

/// Both a graceful stop by `stop` and the start after it: everything
/// comes back, CAS values stay valid and new ones lie above them, and the
/// files are gone once loaded.
fn round_trip(stop: impl FnOnce(&mut Server)) {
    let m = MemFile::new("trip");
    let mut s = Server::start(&args(&m, &["-t", "2"]));
    assert!(s
        .log()
        .contains("[restart] no metadata save file, starting with a clean cache"));
    let mut c = s.client();
    let cas = fill(&mut c, 600);
    let uptime = c.stat("uptime");
    let stopped = Instant::now();
    stop(&mut s);
    assert!(s.log().contains("Gracefully stopping"), "{}", s.log());
    assert_eq!(
        m.files(),
        ["", ".0", ".0.image", ".1", ".1.image"],
        "the memory file, and per shard its records and its memory image"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let s2 = Server::start(&args(&m, &["-t", "2", "-v"]));
    let elapsed = stopped.elapsed().as_secs();
    let log = s2.log();
    let restarts: Vec<&str> = log.lines().filter(|l| l.contains("[restart]")).collect();
    assert_eq!(restarts.len(), 1, "{log}");
    assert!(
        restarts[0].contains("restored 600 of 600 items")
            && restarts[0].contains("then 2 shards from their memory images"),
        "{log}"
    );
    // The memory file is gone before the first client is served, the
    // others soon after.
    assert!(!m.file("").exists(), "{:?}", m.files());
    assert_gone_soon(&m);
    let mut c = s2.client();
    assert_filled(&mut c, &cas, elapsed);
    assert_eq!(c.stat("curr_items"), 600);
    // Server time continued, as memcached's does.
    assert!(c.stat("uptime") > uptime, "uptime restarted");
    // A CAS from before the restart still works; new ones are above all.
    assert_eq!(c.cmd(&format!("cas k5 0 0 1 {}\r\nx", cas[5])), "STORED");
    let fresh = meta_get(&mut c, "k5").unwrap().3;
    assert!(cas.iter().all(|&old| fresh > old), "CAS {fresh} reused");
}

#[test]
fn shutdown_graceful_saves_the_cache_and_the_next_start_serves_it() {
    round_trip(stop_saving);
}

#[cfg(unix)]
#[test]
fn sigusr1_saves_the_cache_and_the_next_start_serves_it() {
    round_trip(sigusr1);
}

/// Waits (a few seconds at most) until a loaded save's files are gone.
fn assert_gone_soon(m: &MemFile) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !m.files().is_empty() {
        assert!(
            Instant::now() < deadline,
            "loaded files stay: {:?}",
            m.files()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Only memcached's graceful stops save: `shutdown` and SIGTERM do not,
/// and the file a start loaded is gone, so the next start is empty.
#[test]
fn a_plain_stop_leaves_no_cache_behind() {
    let m = MemFile::new("plain");
    let mut s = Server::start(&args(&m, &[]));
    s.client().set("a", 0, 0, b"1");
    stop_saving(&mut s);
    let mut s = Server::start(&args(&m, &[]));
    assert_eq!(s.client().get("a").as_deref(), Some(&b"1"[..]));
    s.client().send("shutdown\r\n");
    s.wait_exit(Duration::from_secs(30)).expect("stopped");
    assert!(m.files().is_empty(), "{:?}", m.files());
    let s = Server::start(&args(&m, &[]));
    assert!(s.log().contains("[restart] no metadata save file"));
    assert_eq!(s.client().get("a"), None);
}

/// A `-e` path that cannot be written stops the start (memcached aborts
/// too), rather than losing the cache at the stop.
#[test]
fn an_unwritable_memory_file_path_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("wmc-no-such-dir-{}", std::process::id()));
    let file = dir.join("cache");
    let out = common::run_bounded(
        std::process::Command::new(common::server_bin()).args([
            "-p",
            "0",
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-e",
            file.to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    );
    assert!(!out.success, "started without a place to save");
    assert!(
        out.stderr.contains("cannot write the memory file"),
        "{}",
        out.stderr
    );
}

/// Saves `n` items with `settings`, then starts with `then`; returns the
/// second server.
fn saved_then_started(m: &MemFile, settings: &[&str], then: &[&str]) -> Server {
    let mut s = Server::start(&args(m, settings));
    let mut c = s.client();
    for i in 0..50 {
        c.set(&format!("k{i}"), 0, 0, b"saved");
    }
    stop_saving(&mut s);
    Server::start(&args(m, then))
}

/// An empty cache that works: nothing of the old one, new items stored.
fn assert_starts_empty(s: &Server) {
    let mut c = s.client();
    assert_eq!(c.stat("curr_items"), 0);
    for i in 0..50 {
        assert_eq!(c.get(&format!("k{i}")), None);
    }
    assert_eq!(c.set("new", 0, 0, b"1"), "STORED");
    assert_eq!(c.get("new").as_deref(), Some(&b"1"[..]));
}

#[test]
fn changed_settings_start_empty_and_keep_the_old_files_aside() {
    let other = common::test_plugin("forgetful.wat");
    let cases: [(&[&str], &[&str], &str); 5] = [
        (
            &["-m", "64"],
            &["-m", "128"],
            "[maxbytes] [old value: 67108864]",
        ),
        (&["-t", "2"], &["-t", "3"], "[shards] [old value: 2]"),
        (
            &["-I", "1m"],
            &["-I", "2m"],
            "[item_size_max] [old value: 1048576]",
        ),
        (&[], &["-C"], "[use_cas] [old value: true]"),
        (
            &[],
            &["--plugin", &other],
            "[plugin] [old value: default-store]",
        ),
    ];
    for (before, after, why) in cases {
        let m = MemFile::new("compat");
        let s = saved_then_started(&m, before, after);
        let log = s.log();
        let line = log
            .lines()
            .find(|l| l.starts_with("[restart] restart incompatible due to setting for "))
            .unwrap_or_else(|| panic!("{after:?}: no [restart] line in\n{log}"));
        assert!(line.contains(why), "{after:?}: {line}");
        assert!(line.ends_with("starting with a clean cache"), "{line}");
        assert_eq!(log.matches("[restart]").count(), 1, "one line: {log}");
        if !after.contains(&"--plugin") {
            assert_starts_empty(&s);
        }
        drop(s);
        // Kept aside, never loaded again by a later start.
        assert!(m.file(".rejected").exists(), "{:?}", m.files());
        assert!(!m.file("").exists());
        let again = Server::start(&args(&m, before));
        assert!(again.log().contains("[restart] no metadata save file"));
    }
}

/// Every way a file can be damaged: the server starts, empty, says why,
/// and serves.
#[test]
fn damaged_truncated_and_foreign_files_start_empty() {
    type Damage = fn(&MemFile);
    fn cut(p: PathBuf) {
        let b = fs::read(&p).unwrap();
        fs::write(&p, &b[..b.len() / 2]).unwrap();
    }
    fn flip(p: PathBuf, at: usize) {
        let mut b = fs::read(&p).unwrap();
        let i = at.min(b.len() - 1);
        b[i] ^= 0x20;
        fs::write(&p, &b).unwrap();
    }
    let cases: [(&str, Damage, &str); 8] = [
        (
            "a truncated memory file",
            |m| cut(m.file("")),
            "corrupt metadata file",
        ),
        (
            "a flipped memory-file byte",
            |m| flip(m.file(""), 40),
            "corrupt metadata file",
        ),
        (
            "a truncated shard file and image",
            |m| {
                cut(m.file(".1"));
                cut(m.file(".1.image"));
            },
            "corrupt shard file",
        ),
        (
            // The image fails only as it loads, after the other shard's
            // has loaded: that shard is emptied again.
            "a flipped shard-file and image byte",
            |m| {
                flip(m.file(".0"), 60);
                flip(m.file(".0.image"), 5000);
            },
            "corrupt shard file",
        ),
        (
            "a missing shard file and image",
            |m| {
                fs::remove_file(m.file(".1")).unwrap();
                fs::remove_file(m.file(".1.image")).unwrap();
            },
            "corrupt shard file",
        ),
        (
            "a foreign file",
            |m| fs::write(m.file(""), vec![0xa5u8; 4096]).unwrap(),
            "not a wasmcached memory file",
        ),
        (
            "an empty file",
            |m| fs::write(m.file(""), b"").unwrap(),
            "not a wasmcached memory file",
        ),
        (
            // A crash between the shard files and the memory file of a
            // later save: new shard files, an old memory file.
            "shard files of another save",
            |m| {
                let shard = fs::read(m.file(".0")).unwrap();
                let image = fs::read(m.file(".0.image")).unwrap();
                let mut s = Server::start(&args(m, &["-t", "2"]));
                s.client().set("other", 0, 0, b"save");
                stop_saving(&mut s);
                fs::write(m.file(".0"), shard).unwrap();
                fs::write(m.file(".0.image"), image).unwrap();
            },
            "corrupt shard file",
        ),
    ];
    for (what, damage, why) in cases {
        let m = MemFile::new("damage");
        let mut s = Server::start(&args(&m, &["-t", "2"]));
        let mut c = s.client();
        for i in 0..50 {
            c.set(&format!("k{i}"), 0, 0, b"saved");
        }
        stop_saving(&mut s);
        damage(&m);
        let s = Server::start(&args(&m, &["-t", "2"]));
        let log = s.log();
        let line = log
            .lines()
            .find(|l| l.starts_with("[restart] ") && l.ends_with("starting with a clean cache"))
            .unwrap_or_else(|| panic!("{what}: no [restart] line in\n{log}"));
        assert!(line.contains(why), "{what}: {line}");
        assert_starts_empty(&s);
        assert_eq!(s.client().get("other"), None, "{what}");
        // Kept aside for a look, never loaded again.
        drop(s);
        assert!(!m.file("").exists(), "{what}: {:?}", m.files());
    }
}

/// A memory image that is damaged, cut short, missing or another shard's
/// is never loaded: its shard loads the item records saved beside it, and
/// every item comes back.
#[test]
fn a_damaged_memory_image_falls_back_to_the_item_records() {
    type Damage = fn(&MemFile);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "a flipped image byte",
            |m| {
                let mut b = fs::read(m.file(".0.image")).unwrap();
                let last = b.len() - 1;
                b[last / 2] ^= 0x01;
                fs::write(m.file(".0.image"), b).unwrap();
            },
            "shard 0: its memory image did not load (its CRC-32 does not match)",
        ),
        (
            "a truncated image",
            |m| {
                let b = fs::read(m.file(".1.image")).unwrap();
                fs::write(m.file(".1.image"), &b[..b.len() - 65536]).unwrap();
            },
            "shard 1: its memory image has",
        ),
        (
            "a missing image",
            |m| fs::remove_file(m.file(".0.image")).unwrap(),
            "shard 0: cannot open its memory image",
        ),
        (
            "the other shard's image",
            |m| {
                let one = fs::read(m.file(".1.image")).unwrap();
                fs::write(m.file(".0.image"), one).unwrap();
            },
            "shard 0: its memory image",
        ),
    ];
    for (what, damage, why) in cases {
        let m = MemFile::new("image");
        let mut s = Server::start(&args(&m, &["-t", "2"]));
        let cas = fill(&mut s.client(), 600);
        let stopped = Instant::now();
        stop_saving(&mut s);
        damage(&m);
        let s = Server::start(&args(&m, &["-t", "2", "-v"]));
        let log = s.log();
        assert!(log.contains(why), "{what}: {log}");
        assert!(
            log.contains("restored 600 of 600 items")
                && log.contains("then 1 shards from their memory images"),
            "{what}: {log}"
        );
        let mut c = s.client();
        assert_filled(&mut c, &cas, stopped.elapsed().as_secs());
        assert_eq!(c.stat("curr_items"), 600, "{what}");
        assert_gone_soon(&m);
    }
}

/// A new build of the plugin at the same path (an upgrade) cannot take
/// the old build's memory: its items load from the records.
#[test]
fn an_upgraded_plugin_loads_the_item_records() {
    let m = MemFile::new("upgrade");
    let plugin = PathBuf::from(format!("{}.plugin.wasm", m.arg()));
    fs::copy(common::example_build::example("c-quota"), &plugin).unwrap();
    let a = args(&m, &["-t", "2", "-v", "--plugin", plugin.to_str().unwrap()]);
    let mut s = Server::start(&a);
    let cas = fill(&mut s.client(), 300);
    let stopped = Instant::now();
    stop_saving(&mut s);
    assert!(m.file(".0.image").exists(), "{:?}", m.files());
    // The same code with one more custom section: another build.
    let mut wasm = fs::read(&plugin).unwrap();
    wasm.extend_from_slice(&[0, 6, 5, b'b', b'u', b'i', b'l', b'd']);
    fs::write(&plugin, wasm).unwrap();
    let s = Server::start(&a);
    let log = s.log();
    assert!(
        log.contains("[restart] the plugin changed since the save (an upgrade)"),
        "{log}"
    );
    assert!(
        log.contains("restored 300 of 300 items")
            && log.contains("then 0 shards from their memory images"),
        "{log}"
    );
    let mut c = s.client();
    assert_filled(&mut c, &cas, stopped.elapsed().as_secs());
    drop(s);
    let _ = fs::remove_file(&plugin);
}

/// SIGKILL at any moment of a save leaves files that a start either loads
/// whole or refuses: never some items of the save without the others.
#[cfg(unix)]
#[test]
fn sigkill_during_a_save_restores_all_or_nothing() {
    let n = 30_000;
    let mut outcomes = (0, 0);
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let m = MemFile::new("kill");
        let mut s = Server::start(&args(&m, &["-t", "2"]));
        let mut c = s.client();
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend_from_slice(format!("ms k{i} 100 q\r\n{}\r\n", "v".repeat(100)).as_bytes());
        }
        batch.extend_from_slice(b"mn\r\n");
        c.send(&batch);
        assert_eq!(c.line(), "MN");
        signal(&s, libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(delay_ms));
        s.kill();
        let s = Server::start(&args(&m, &["-t", "2"]));
        let items = s.client().stat("curr_items");
        assert!(
            items == 0 || items == n,
            "after SIGKILL {delay_ms} ms into a save: {items} of {n} items\n{}",
            s.log()
        );
        if items == n {
            outcomes.1 += 1;
        } else {
            outcomes.0 += 1;
        }
    }
    eprintln!(
        "SIGKILL during a save: {} empty starts, {} whole ones",
        outcomes.0, outcomes.1
    );
}

/// 20 restart cycles with a client writing all along: every write the
/// server acknowledged before it stopped is there after the restart.
#[cfg(unix)]
#[test]
fn twenty_restart_cycles_under_a_writer_lose_no_acknowledged_item() {
    use std::collections::HashMap;
    let m = MemFile::new("cycles");
    // key -> (last acknowledged value, the value in flight when it stopped).
    // A key whose only write was in flight may be absent: the server may
    // have stopped before it read that set.
    let mut acked: HashMap<String, (Option<u64>, Option<u64>)> = HashMap::new();
    let mut seq = 0u64;
    for cycle in 0..20 {
        let mut s = Server::start(&args(&m, &["-t", "2"]));
        let mut c = s.client();
        // Everything acknowledged so far is here.
        for (key, (value, in_flight)) in &acked {
            let Some(got) = c.get(key) else {
                assert!(value.is_none(), "cycle {cycle}: {key} lost");
                continue;
            };
            let got: u64 = String::from_utf8(got).unwrap().parse().unwrap();
            assert!(
                Some(got) == *value || Some(got) == *in_flight,
                "cycle {cycle}: {key} = {got}, acknowledged {value:?}"
            );
        }
        // Write until the server stops under the writer.
        let port = s.port();
        let writer = std::thread::spawn(move || {
            let mut done = Vec::new();
            let mut pending = None;
            let Ok(mut c) = Client::try_connect(port) else {
                return (done, pending);
            };
            c.set_read_timeout(Duration::from_secs(10));
            for i in 0.. {
                let key = format!("w{}", (seq + i) % 500);
                let value = seq + i;
                pending = Some((key.clone(), value));
                let msg = format!("set {key} 0 0 {}\r\n{value}\r\n", value.to_string().len());
                if c.try_send(msg).is_err() {
                    break;
                }
                match c.try_line_raw() {
                    Ok(l) if l == b"STORED\r\n" => done.push((key, value)),
                    _ => break,
                }
                pending = None;
            }
            (done, pending)
        });
        std::thread::sleep(Duration::from_millis(150));
        sigusr1(&mut s);
        let (done, pending) = writer.join().unwrap();
        assert!(!done.is_empty(), "cycle {cycle}: the writer wrote nothing");
        seq += done.len() as u64 + 1;
        for (key, value) in done {
            acked.insert(key, (Some(value), None));
        }
        if let Some((key, value)) = pending {
            acked.entry(key).or_insert((None, None)).1 = Some(value);
        }
    }
    assert!(
        acked.values().filter(|(v, _)| v.is_some()).count() >= 100,
        "{} keys written",
        acked.len()
    );
}

/// The same steps against Debian's memcached and wasmcached: the same
/// `[restart]` lines, the same items back.
#[cfg(unix)]
#[test]
fn warm_restart_matches_memcached() {
    if !common::testing_memcached() {
        eprintln!("memcached is not installed: warm_restart_matches_memcached compares nothing");
        return;
    }
    let mut logs = Vec::new();
    for memcached in [true, false] {
        let m = MemFile::new(if memcached { "mc" } else { "wmc" });
        let start = |extra: &[&str]| {
            let mut a = vec!["-e", m.arg(), "-U", "0"];
            a.extend_from_slice(extra);
            if memcached {
                Server::start_memcached(&a)
            } else {
                Server::start(&a)
            }
        };
        let mut s = start(&["-m", "64"]);
        let mut c = s.client();
        assert_eq!(c.set("a", 5, 100, b"abc"), "STORED");
        assert_eq!(c.set("b", 0, 0, b"hi"), "STORED");
        sigusr1(&mut s);
        let mut log = s.log();
        // memcached refuses a restart within the second it stopped in
        // ("restart incompatible due to setting for [stop_time]").
        std::thread::sleep(Duration::from_millis(1100));
        let mut s = start(&["-m", "64"]);
        let mut c = s.client();
        let a = meta_get(&mut c, "a").expect("a restored");
        assert_eq!((a.0.as_slice(), a.1), (&b"abc"[..], 5));
        assert!((97..=100).contains(&a.2), "TTL {}", a.2);
        assert_eq!(c.get("b").as_deref(), Some(&b"hi"[..]));
        sigusr1(&mut s);
        log += &s.log();
        std::thread::sleep(Duration::from_millis(1100));
        // Saved with -m 64, started with -m 128.
        let s = start(&["-m", "128"]);
        assert_eq!(s.client().get("a"), None);
        log += &s.log();
        logs.push(log);
    }
    let lines = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.starts_with("[restart]") || l.starts_with("Gracefully"))
            // memcached also says how it failed to read the rest.
            .filter(|l| !l.contains("missing some metadata") && !l.contains("failed to validate"))
            .map(|l| {
                // wasmcached says the new value and the outcome on the same line.
                l.split(" [new value").next().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(
        lines(&logs[0]),
        lines(&logs[1]),
        "memcached:\n{}\nwasmcached:\n{}",
        logs[0],
        logs[1]
    );
}

/// The C and AssemblyScript SDKs' examples save and restore their items
/// too (the C ones from their memory images, as-lfu through the same ABI
/// dump and load as the default store).
#[test]
fn the_c_and_assemblyscript_examples_keep_their_items_across_a_restart() {
    for name in ["c-quota", "c-sieve", "as-lfu"] {
        assert_example_keeps_its_items_across_a_restart(name);
    }
}

/// The Python, JavaScript and Go examples, components of the WIT world,
/// save and restore their items through the world's `dump` and `load`.
#[test]
fn the_component_examples_keep_their_items_across_a_restart() {
    for name in ["python-lru", "js-lru", "go-lru"] {
        assert_example_keeps_its_items_across_a_restart(name);
    }
}

/// Example `name` on two shards saves 300 items at a graceful stop and the
/// next start serves every one with its value, flags, TTL and CAS.
fn assert_example_keeps_its_items_across_a_restart(name: &str) {
    let wasm = common::example_build::example(name);
    let m = MemFile::new(name);
    let a = args(&m, &["-t", "2", "--plugin", &wasm]);
    let mut s = Server::start(&a);
    let cas = fill(&mut s.client(), 300);
    let stopped = Instant::now();
    stop_saving(&mut s);
    // The C plugins keep all their state in their memory, so they save
    // images too; AssemblyScript's runtime keeps its heap in globals, and a
    // component's state is not one memory.
    let images: &[&str] = match name {
        "c-quota" | "c-sieve" => &["", ".0", ".0.image", ".1", ".1.image"],
        _ => &["", ".0", ".1"],
    };
    assert_eq!(m.files(), images, "{name}");
    let s = Server::start(&a);
    assert!(!s.log().contains("[restart]"), "{name}: {}", s.log());
    let mut c = s.client();
    assert_filled(&mut c, &cas, stopped.elapsed().as_secs());
    assert_eq!(c.stat("curr_items"), 300, "{name}");
}
