//! Start-up: the compiled plugin code cache (host/src/plugin.rs, `CodeCache`),
//! and memcached's command line (module `command_line`, below).
//!
//! The first start compiles the default store and writes its code to
//! `$WASMCACHED_CACHE_DIR`; the next start loads it from there. A corrupt or
//! truncated cache file is never used: it is recompiled and replaced, and the
//! server serves as usual. `-o plugin_cache=off` neither reads nor writes the
//! cache, and an unusable cache directory only costs the compile.
//!
//! Everything runs in one test: the starts depend on each other's cache
//! files. The cache directory reaches each server through its own
//! environment (`Server::start_env`), never through this process's.

use crate::common;

use common::Server;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const LOADED: &str = "plugin code loaded from cache";
const CACHED: &str = "plugin code cached at";

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The transparent huge page mode Linux shows, if any.
fn thp_mode() -> Option<String> {
    let text = fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    text.split_whitespace()
        .find_map(|w| Some(w.strip_prefix('[')?.strip_suffix(']')?.to_string()))
}

/// Kilobytes of huge pages in the mappings advised `MADV_HUGEPAGE` (`hg`)
/// of process `pid`.
fn advised_huge_kb(pid: u32) -> u64 {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut total, mut pending) = (0, 0);
    for line in smaps.lines() {
        if let Some(v) = line.strip_prefix("AnonHugePages:") {
            pending = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            if flags.split_whitespace().any(|f| f == "hg") {
                total += pending;
            }
        }
    }
    total
}

/// `-L -v` says in one line at start what became of the huge pages it asks
/// for: the plugins' memory advised for transparent huge pages (Linux, THP
/// `always` or `madvise`), or why not (THP `never`, no THP, not Linux).
#[test]
fn large_pages_say_what_happened() {
    let mut server = Server::start(&["-L", "-v", "-t", "2", "-m", "64"]);
    let mut c = server.client();
    let value = vec![b'x'; 100_000];
    for i in 0..200 {
        assert_eq!(c.set(&format!("big:{i}"), 0, 0, &value), "STORED");
    }
    server.assert_running();
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("-L: ")).collect();
    assert_eq!(lines.len(), 1, "one -L line: {log}");
    let line = lines[0];
    match thp_mode().as_deref() {
        Some(mode @ ("always" | "madvise")) if cfg!(target_os = "linux") => {
            let want = format!(
                "-L: the memory of 2 plugin instance(s) is advised for transparent huge pages (mode {mode}); "
            );
            assert!(line.starts_with(&want), "{line:?}");
            assert!(
                line.ends_with("kB on huge pages now (AnonHugePages)"),
                "{line:?}"
            );
            // Whether the kernel found 2 MiB pages for it depends on its
            // free memory: shown, not asserted.
            eprintln!(
                "huge pages in the advised mappings after 20 MB of items: {} kB",
                advised_huge_kb(server.pid())
            );
        }
        Some("never") => assert!(
            line.starts_with("-L: huge pages not available: transparent huge pages are disabled"),
            "{line:?}"
        ),
        _ => assert!(
            line.starts_with("-L: huge pages not available: "),
            "{line:?}"
        ),
    }
    server.kill();
    // Without -v it says nothing when it could have them.
    let mut quiet = Server::start(&["-L", "-t", "2"]);
    quiet.client().set("k", 0, 0, b"v");
    let log = quiet.log();
    if thp_mode().is_some_and(|m| m != "never") && cfg!(target_os = "linux") {
        assert!(!log.contains("-L: "), "{log}");
    } else {
        assert!(log.contains("-L: huge pages not available: "), "{log}");
    }
    quiet.kill();
}

/// Starts a server with `-vv` and `extra`, its plugin code cache in
/// `cache_dir`, checks that it stores and serves an item, and returns its
/// log.
fn start_and_serve(cache_dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["-vv", "-t", "2"];
    args.extend_from_slice(extra);
    let mut server = Server::start_env(&args, &[("WASMCACHED_CACHE_DIR", cache_dir)]);
    let mut c = server.client();
    assert_eq!(c.set("startup:key", 7, 0, b"value"), "STORED");
    assert_eq!(c.get("startup:key").as_deref(), Some(&b"value"[..]));
    server.assert_running();
    let log = server.log();
    server.kill();
    log
}

/// `plugin check` and `replay` compile through the same code cache as the
/// server: the first writes the file, and a server started next loads it
/// instead of compiling (a Python or JavaScript component takes tens of
/// seconds to compile).
#[test]
fn plugin_check_and_replay_share_the_servers_code_cache() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("startup-tools-cache-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let dir = base.join("code");
    let tool = |args: &[&str]| {
        let out = Command::new(common::server_bin())
            .args(args)
            .env("WASMCACHED_CACHE_DIR", &dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    tool(&["plugin", "check", "default", "--contract", "basic"]);
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1, "plugin check wrote the code: {files:?}");
    let written = fs::metadata(&files[0]).unwrap().modified().unwrap();
    tool(&[
        "replay",
        "--synthetic",
        "zipf:keys=100,requests=1000,seed=1",
    ]);
    assert_eq!(cache_files(&dir), files, "replay used the same file");
    assert_eq!(
        fs::metadata(&files[0]).unwrap().modified().unwrap(),
        written,
        "and did not write it again"
    );
    let log = start_and_serve(&dir, &[]);
    assert!(log.contains(LOADED), "{log}");
    assert!(!log.contains(CACHED), "{log}");
    let _ = fs::remove_dir_all(&base);
}

#[test]
fn compiled_plugin_code_is_cached_checked_and_replaced() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("startup-cache-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let dir = base.join("code");

    // First start: nothing cached, the code is compiled and written.
    let log = start_and_serve(&dir, &[]);
    assert!(!log.contains(LOADED), "{log}");
    assert!(log.contains(CACHED), "{log}");
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1, "one cache file, no temp files: {files:?}");
    let file = files[0].clone();
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("cwasm"));
    let good = fs::read(&file).unwrap();
    assert!(good.len() > 1000, "{} bytes", good.len());

    // Second start: the code comes from the cache, which stays as it was.
    let log = start_and_serve(&dir, &[]);
    assert!(log.contains(LOADED), "{log}");
    assert!(!log.contains(CACHED), "{log}");
    assert_eq!(fs::read(&file).unwrap(), good);

    // A flipped byte in the middle of the code: refused (checksum),
    // recompiled, replaced by a good file that the next start uses.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    fs::write(&file, &bad).unwrap();
    let log = start_and_serve(&dir, &[]);
    assert!(log.contains("is corrupt"), "{log}");
    assert!(!log.contains(LOADED), "{log}");
    assert!(log.contains(CACHED), "{log}");
    assert_ne!(fs::read(&file).unwrap(), bad);
    let log = start_and_serve(&dir, &[]);
    assert!(log.contains(LOADED), "{log}");

    // A truncated file, and a good header in front of another payload.
    fs::write(&file, &good[..20]).unwrap();
    let log = start_and_serve(&dir, &[]);
    assert!(log.contains("is corrupt"), "{log}");
    assert!(log.contains(CACHED), "{log}");
    let header = 32; // magic + checksum, see plugin.rs
    let mut foreign = good[..header].to_vec();
    foreign.extend_from_slice(b"not a serialized module");
    fs::write(&file, &foreign).unwrap();
    let log = start_and_serve(&dir, &[]);
    assert!(
        log.contains("is corrupt"),
        "checksum covers the payload: {log}"
    );
    assert!(log.contains(CACHED), "{log}");
    assert!(start_and_serve(&dir, &[]).contains(LOADED));

    // plugin_cache=off: neither read nor written.
    fs::remove_file(&file).unwrap();
    let log = start_and_serve(&dir, &["-o", "plugin_cache=off"]);
    assert!(!log.contains(LOADED) && !log.contains(CACHED), "{log}");
    assert!(cache_files(&dir).is_empty());

    // An unusable cache directory (a regular file): compiled, still serves.
    fs::write(base.join("plain-file"), b"x").unwrap();
    let log = start_and_serve(&base.join("plain-file"), &[]);
    assert!(log.contains("cannot write plugin code cache"), "{log}");
    assert!(!log.contains(LOADED), "{log}");

    let _ = fs::remove_dir_all(&base);
}

// ------------------------------------------------------------ command line

/// memcached's command line, side by side with Debian's memcached 1.6.18
/// (Linux only: the reference runs there).
///
/// Every flag and every `-o` suboption that `memcached -h` lists is read
/// from the real binary's help at test time, so that none is forgotten: a
/// name the help lists and the tables below lack fails the test. Each is
/// started on both servers, one after the other on the same port, socket
/// path and files; both must serve (and `stats settings` must list the same
/// names in the same order with the same values, wasmcached's own settings
/// after memcached's), or both must refuse with the same exit status and
/// memcached's error line, or (`-e`, `ext_*`) wasmcached alone refuses with
/// a reason. The suboptions memcached accepts without listing them, and the
/// bad values, are tables of their own.
///
/// The servers get their own plugin code cache directory through their
/// environment (the cache test above uses directories of its own).
#[cfg(target_os = "linux")]
mod command_line {
    use super::common::{
        free_port, is_memcached, memcached_bin, running_as_root, server_bin,
        set_parent_death_signal, START_TIMEOUT,
    };
    use std::fs;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// The TLS flags every `ssl_*` case starts from; `notls:` keeps the
    /// listener plain so that `stats settings` can be asked.
    const TLS: &[&str] = &[
        "-Z",
        "-o",
        "ssl_chain_cert={certs}/server.pem,ssl_key={certs}/server.key",
        "-l",
        "notls:127.0.0.1",
    ];

    static SEQ: AtomicU32 = AtomicU32::new(0);

    /// A scratch directory, removed on drop.
    pub struct Scratch(pub PathBuf);

    impl Scratch {
        pub fn new(what: &str) -> Scratch {
            let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
                "cl-{what}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The plugin code cache of every wasmcached these tests start.
    fn cache_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("command-line-code-cache")
    }

    /// What a case asks a server that started.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Ask {
        /// `stats settings`.
        Stats,
        /// `-Y`: authenticate, then `stats settings`.
        Auth,
        /// Only that it accepts a connection and keeps running (binary-only
        /// servers do not answer text).
        Alive,
    }

    /// How a start went.
    #[derive(Debug)]
    pub enum Outcome {
        /// Accepted connections; its `stats settings` (empty for `Ask::Alive`).
        Serves(Vec<(String, String)>),
        Exited {
            status: i32,
            stdout: String,
            stderr: String,
        },
    }

    /// Where a run listens and keeps its files.
    pub struct Env {
        pub port: u16,
        pub udp: u16,
        pub dir: PathBuf,
    }

    impl Env {
        pub fn new(dir: &Path) -> Env {
            fs::write(dir.join("auth"), "user:secret\n").unwrap();
            let sasl = dir.join("sasl");
            fs::create_dir_all(&sasl).unwrap();
            // memcached's libsasl needs a mechanism to start with -S.
            fs::write(sasl.join("memcached.conf"), "mech_list: plain\n").unwrap();
            Env {
                port: free_port(),
                udp: free_port(),
                dir: dir.to_path_buf(),
            }
        }

        pub fn expand(&self, a: &str) -> String {
            let certs = super::common::workspace_root().join("tests/tls");
            a.replace("{port}", &self.port.to_string())
                .replace("{udp}", &self.udp.to_string())
                .replace("{dir}", &self.dir.to_string_lossy())
                .replace("{certs}", &certs.to_string_lossy())
        }
    }

    fn has_flag(args: &[String], short: &str, long: &str) -> bool {
        args.iter()
            .any(|a| a == short || a == long || a.starts_with(&format!("{long}=")))
    }

    /// The value after `-s`/`--unix-socket`, if any.
    fn unix_path(args: &[String]) -> Option<PathBuf> {
        if let Some(p) = args.iter().find_map(|a| a.strip_prefix("--unix-socket=")) {
            return Some(PathBuf::from(p));
        }
        let i = args
            .iter()
            .position(|a| a == "-s" || a == "--unix-socket")?;
        args.get(i + 1).map(PathBuf::from)
    }

    /// `bin` with `args` (placeholders expanded), plus `-p`/`-l` unless
    /// given, and `-u root` for memcached when run as root.
    pub fn command(bin: &Path, args: &[&str], env: &Env) -> (Command, Vec<String>) {
        let mut full: Vec<String> = args.iter().map(|a| env.expand(a)).collect();
        if !has_flag(&full, "-p", "--port") {
            full.extend(["-p".into(), env.port.to_string()]);
        }
        if !has_flag(&full, "-l", "--listen") {
            full.extend(["-l".into(), "127.0.0.1".into()]);
        }
        if is_memcached(bin) && running_as_root() && !has_flag(&full, "-u", "--user") {
            full.extend(["-u".into(), "root".into()]);
        }
        let mut cmd = Command::new(bin);
        cmd.args(&full)
            .env("WASMCACHED_CACHE_DIR", cache_dir())
            .env("SASL_CONF_PATH", env.dir.join("sasl"))
            .stdin(Stdio::null());
        // The server dies with the thread that started it, so none outlives
        // a failed test.
        set_parent_death_signal(&mut cmd);
        (cmd, full)
    }

    trait Conn: Read + Write {}
    impl<T: Read + Write> Conn for T {}

    fn connect(env: &Env, unix: Option<&Path>) -> Option<Box<dyn Conn>> {
        let t = Some(Duration::from_secs(10));
        match unix {
            Some(p) => {
                let s = UnixStream::connect(p).ok()?;
                s.set_read_timeout(t).ok()?;
                s.set_write_timeout(t).ok()?;
                Some(Box::new(s))
            }
            None => {
                let addr = ([127, 0, 0, 1], env.port).into();
                let s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
                s.set_read_timeout(t).ok()?;
                s.set_write_timeout(t).ok()?;
                Some(Box::new(s))
            }
        }
    }

    /// `stats settings` (after the `-Y` exchange for `Ask::Auth`).
    fn ask_settings(conn: Box<dyn Conn>, ask: Ask) -> Result<Vec<(String, String)>, String> {
        let mut r = BufReader::new(conn);
        let mut line = String::new();
        if ask == Ask::Auth {
            r.get_mut()
                .write_all(b"set auth 0 0 11\r\nuser secret\r\n")
                .map_err(|e| e.to_string())?;
            r.read_line(&mut line).map_err(|e| e.to_string())?;
            if line != "STORED\r\n" {
                return Err(format!("authentication answered {line:?}"));
            }
        }
        r.get_mut()
            .write_all(b"stats settings\r\n")
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err(format!("connection closed after {} lines", out.len()));
            }
            if line == "END\r\n" {
                return Ok(out);
            }
            let Some(rest) = line
                .strip_suffix("\r\n")
                .and_then(|l| l.strip_prefix("STAT "))
            else {
                return Err(format!("not a STAT line: {line:?}"));
            };
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push((name.to_string(), value.to_string()));
        }
    }

    fn exited(child: &mut Child, status: i32, out: &Path, err: &Path) -> Outcome {
        let _ = child.wait();
        Outcome::Exited {
            status,
            stdout: fs::read_to_string(out).unwrap_or_default(),
            stderr: fs::read_to_string(err).unwrap_or_default(),
        }
    }

    fn kill_pid(pid: i32) {
        // SAFETY: signals a process this test started (the daemon).
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        // SAFETY: signal 0 only checks that the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `bin args`, waits until it accepts a connection (then asks
    /// what `ask` says and stops it) or exits.
    pub fn run(bin: &Path, args: &[&str], ask: Ask, env: &Env) -> Outcome {
        let (mut cmd, full) = command(bin, args, env);
        let tag = format!(
            "{}-{}",
            if is_memcached(bin) { "m" } else { "w" },
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let (out, err) = (
            env.dir.join(format!("{tag}.out")),
            env.dir.join(format!("{tag}.err")),
        );
        cmd.stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        // The previous server of this case (memcached, SIGKILLed) left its
        // pid here: a daemon that has not written its own yet must not be
        // taken for it.
        let _ = fs::remove_file(env.dir.join("pid"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let unix = unix_path(&full);
        let daemon = has_flag(&full, "-d", "--daemon");
        let pidfile = env.dir.join("pid");
        let deadline = Instant::now() + START_TIMEOUT;
        let mut daemon_pid = None;
        loop {
            if Instant::now() > deadline {
                let _ = child.kill();
                if let Some(pid) = daemon_pid {
                    kill_pid(pid);
                }
                return exited(&mut child, -1, &out, &err);
            }
            match child.try_wait().unwrap() {
                Some(st) if !(daemon && st.success()) => {
                    return exited(&mut child, st.code().unwrap_or(-1), &out, &err)
                }
                // -d: the parent is gone; the daemon wrote its pid.
                Some(_) if daemon_pid.is_none() => {
                    daemon_pid = fs::read_to_string(&pidfile)
                        .ok()
                        .and_then(|p| p.trim().parse::<i32>().ok());
                }
                _ => {}
            }
            if !daemon || daemon_pid.is_some() {
                if let Some(conn) = connect(env, unix.as_deref()) {
                    let answer = match ask {
                        Ask::Alive => {
                            drop(conn);
                            std::thread::sleep(Duration::from_millis(100));
                            Ok(Vec::new())
                        }
                        _ => ask_settings(conn, ask),
                    };
                    let still_running = match daemon_pid {
                        // SAFETY: signal 0 only checks that the process exists.
                        Some(pid) => unsafe { libc::kill(pid, 0) == 0 },
                        None => child.try_wait().unwrap().is_none(),
                    };
                    let _ = child.kill();
                    let _ = child.wait();
                    if let Some(pid) = daemon_pid {
                        kill_pid(pid);
                    }
                    return match (answer, still_running) {
                        (Ok(lines), true) => Outcome::Serves(lines),
                        (Err(e), _) => Outcome::Exited {
                            status: -2,
                            stdout: String::new(),
                            stderr: format!("served, but stats settings failed: {e}"),
                        },
                        (Ok(_), false) => Outcome::Exited {
                            status: -3,
                            stdout: String::new(),
                            stderr: "accepted a connection, then exited".into(),
                        },
                    };
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What both servers must do with a case.
    #[derive(Clone, Copy, Debug)]
    pub enum Expect {
        /// Both serve; `stats settings` identical (names, order, values).
        Serve,
        /// Both exit 0 and print (to stdout) a text containing this.
        Print(&'static str),
        /// Both exit with the same status; wasmcached's one line (after
        /// `wasmcached: `) starts with memcached's first line (after
        /// `memcached: `).
        Refuse,
        /// Both exit with the same status (getopt's and clap's words differ).
        RefuseStatus,
        /// memcached serves; wasmcached exits 64 with a line containing this.
        OnlyWasmcachedRefuses(&'static str),
    }

    pub struct Case {
        pub label: String,
        pub args: Vec<String>,
        pub ask: Ask,
        pub expect: Expect,
    }

    fn first_line(s: &str) -> &str {
        s.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
    }

    /// Runs one case on both servers; None when they agree as expected.
    fn check(case: &Case) -> Option<String> {
        let scratch = Scratch::new("case");
        let env = Env::new(&scratch.0);
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let mut m = run(&memcached_bin(), &args, case.ask, &env);
        let mut w = run(&server_bin(), &args, case.ask, &env);
        // The port may have been taken meanwhile: once more on fresh ones.
        let taken = |o: &Outcome| {
            matches!(o, Outcome::Exited { stderr, .. }
                if stderr.contains("in use") || stderr.contains("failed to listen"))
        };
        if taken(&m) || taken(&w) {
            let env = Env::new(&scratch.0);
            m = run(&memcached_bin(), &args, case.ask, &env);
            w = run(&server_bin(), &args, case.ask, &env);
        }
        let fail = |why: String| {
            Some(format!(
                "{}: {why}\n  memcached: {m:?}\n  wasmcached: {w:?}",
                case.label
            ))
        };
        match (case.expect, &m, &w) {
            (Expect::Serve, Outcome::Serves(ms), Outcome::Serves(ws)) => {
                if case.ask == Ask::Alive {
                    return None;
                }
                let mnames: Vec<&str> = ms.iter().map(|(n, _)| n.as_str()).collect();
                let wnames: Vec<&str> = ws.iter().map(|(n, _)| n.as_str()).collect();
                if wnames != mnames {
                    return fail(format!(
                        "stats settings names differ:\n    memcached:  {mnames:?}\n    wasmcached: {wnames:?}"
                    ));
                }
                let differ: Vec<String> = ms
                    .iter()
                    .zip(ws)
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| format!("{} {:?} vs {:?}", a.0, a.1, b.1))
                    .collect();
                if !differ.is_empty() {
                    return Some(format!(
                        "{}: stats settings values differ (memcached vs wasmcached): {differ:?}",
                        case.label
                    ));
                }
                None
            }
            (
                Expect::Print(text),
                Outcome::Exited {
                    status: 0,
                    stdout: mo,
                    ..
                },
                Outcome::Exited {
                    status: 0,
                    stdout: wo,
                    ..
                },
            ) if mo.contains(text) && wo.contains(text) => None,
            (
                Expect::Refuse | Expect::RefuseStatus,
                Outcome::Exited {
                    status: ms,
                    stderr: me,
                    ..
                },
                Outcome::Exited {
                    status: ws,
                    stderr: we,
                    ..
                },
            ) if ms == ws && *ms > 0 => {
                if matches!(case.expect, Expect::RefuseStatus) {
                    return None;
                }
                // getopt's lines start with memcached's argv[0].
                let ml = first_line(me);
                let ml = match ml.find("memcached: ") {
                    Some(i) if !ml[..i].contains(' ') => &ml[i + "memcached: ".len()..],
                    _ => ml,
                };
                let wl = first_line(we);
                let wl = wl.strip_prefix("wasmcached: ").unwrap_or(wl);
                if we.lines().filter(|l| !l.trim().is_empty()).count() != 1 {
                    return fail("wasmcached's refusal is not one line".into());
                }
                if !wl.starts_with(ml) {
                    return fail(format!("error lines differ: {ml:?} vs {wl:?}"));
                }
                None
            }
            (
                Expect::OnlyWasmcachedRefuses(text),
                Outcome::Serves(_),
                Outcome::Exited {
                    status: 64, stderr, ..
                },
            ) if stderr.contains(text) && stderr.lines().count() == 1 => None,
            _ => fail(format!("expected {:?}", case.expect)),
        }
    }

    /// Runs every case (three at a time), returns the failures.
    fn check_all(cases: Vec<Case>) -> Vec<String> {
        let cases = Mutex::new(cases);
        let failures = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| loop {
                    let Some(case) = cases.lock().unwrap().pop() else {
                        return;
                    };
                    if let Some(f) = check(&case) {
                        failures.lock().unwrap().push(f);
                    }
                });
            }
        });
        failures.into_inner().unwrap()
    }

    /// One flag of `memcached -h`: its short form (`p`, `vv`), its long
    /// form, whether it takes a value.
    #[derive(Debug)]
    struct HelpFlag {
        short: String,
        long: Option<String>,
    }

    /// The flags and `-o` suboptions `memcached -h` lists.
    fn memcached_help() -> (Vec<HelpFlag>, Vec<String>) {
        let out = Command::new(memcached_bin()).arg("-h").output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut flags = Vec::new();
        let mut subopts = Vec::new();
        for line in help.lines() {
            if let Some(rest) = line.strip_prefix('-') {
                let short: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if short.is_empty() {
                    continue;
                }
                let long = line.find("--").map(|i| {
                    line[i + 2..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect::<String>()
                });
                flags.push(HelpFlag { short, long });
            } else if let Some(rest) = line.trim_start().strip_prefix("- ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if rest[name.len()..].starts_with(':') && !name.is_empty() {
                    subopts.push(name);
                }
            }
        }
        (flags, subopts)
    }

    /// A good value for each flag of `memcached -h` (by its short form):
    /// the value (if it takes one), extra arguments, what to ask, what both
    /// must do.
    fn flag_sample(
        short: &str,
    ) -> Option<(Option<&'static str>, &'static [&'static str], Ask, Expect)> {
        use Ask::*;
        use Expect::*;
        let none: &'static [&'static str] = &[];
        Some(match short {
            "p" => (Some("{port}"), none, Stats, Serve),
            "U" => (Some("{udp}"), none, Stats, Serve),
            "s" => (Some("{dir}/sock"), none, Stats, Serve),
            "a" => (Some("0755"), &["-s", "{dir}/sock"], Stats, Serve),
            "A" | "d" | "r" | "M" | "k" | "v" | "vv" | "vvv" | "L" | "C" | "F" | "X" | "W" => {
                let extra: &'static [&'static str] = if short == "d" {
                    &["-P", "{dir}/pid"]
                } else {
                    none
                };
                (None, extra, Stats, Serve)
            }
            "l" => (Some("127.0.0.1"), none, Stats, Serve),
            "u" => (Some("root"), none, Stats, Serve),
            "m" => (Some("32"), none, Stats, Serve),
            "c" => (Some("100"), none, Stats, Serve),
            "h" | "V" => (None, none, Stats, Print("")),
            "i" => (
                None,
                none,
                Stats,
                Print("Redistribution and use in source and binary forms"),
            ),
            "P" => (Some("{dir}/pid"), none, Stats, Serve),
            "f" => (Some("1.1"), none, Stats, Serve),
            "n" => (Some("64"), none, Stats, Serve),
            "D" => (Some("#"), none, Stats, Serve),
            "t" => (Some("2"), none, Stats, Serve),
            "R" => (Some("5"), none, Stats, Serve),
            "b" => (Some("50"), none, Stats, Serve),
            "B" => (Some("ascii"), none, Stats, Serve),
            "I" => (Some("2m"), none, Stats, Serve),
            // Binary only: no text `stats`.
            "S" => (None, none, Alive, Serve),
            "Y" => (Some("{dir}/auth"), none, Auth, Serve),
            "e" => (Some("{dir}/memfile"), none, Stats, Serve),
            "Z" => (None, &TLS[1..], Stats, Serve),
            "o" => (Some("modern"), none, Stats, Serve),
            // memcached drops a connection without a NAPI ID (loopback's).
            "N" => (Some("1"), none, Alive, Serve),
            _ => return None,
        })
    }

    /// A good value for each suboption of `memcached -h`: the suboption as
    /// given, extra arguments, what both must do.
    fn subopt_sample(name: &str) -> Option<(&'static str, &'static [&'static str], Expect)> {
        use Expect::*;
        let none: &'static [&'static str] = &[];
        let ext = OnlyWasmcachedRefuses("extstore");
        Some(match name {
            "maxconns_fast" => ("maxconns_fast", none, Serve),
            "hashpower" => ("hashpower=20", none, Serve),
            "tail_repair_time" => ("tail_repair_time=20", none, Serve),
            "hash_algorithm" => ("hash_algorithm=xxh3", none, Serve),
            "no_lru_crawler" => ("no_lru_crawler", none, Serve),
            "lru_crawler_sleep" => ("lru_crawler_sleep=50", none, Serve),
            "lru_crawler_tocrawl" => ("lru_crawler_tocrawl=5", none, Serve),
            "read_buf_mem_limit" => ("read_buf_mem_limit=5", none, Serve),
            "no_lru_maintainer" => ("no_lru_maintainer", none, Serve),
            "hot_lru_pct" => ("hot_lru_pct=10", none, Serve),
            "warm_lru_pct" => ("warm_lru_pct=30", none, Serve),
            "hot_max_factor" => ("hot_max_factor=0.5", none, Serve),
            "warm_max_factor" => ("warm_max_factor=1.5", none, Serve),
            "temporary_ttl" => ("temporary_ttl=30", none, Serve),
            "idle_timeout" => ("idle_timeout=9", none, Serve),
            "slab_chunk_max" => ("slab_chunk_max=16384", none, Serve),
            "watcher_logbuf_size" => ("watcher_logbuf_size=100", none, Serve),
            // memcached 1.6.18 also reads this value as `slab_sizes`, which
            // must be at least -n: 64 passes both.
            "worker_logbuf_size" => ("worker_logbuf_size=64", none, Serve),
            "track_sizes" => ("track_sizes", none, Serve),
            "no_hashexpand" => ("no_hashexpand", none, Serve),
            "modern" => ("modern", none, Serve),
            "no_modern" => ("no_modern", none, Serve),
            "sock_cookie_id" => ("sock_cookie_id=5", none, Serve),
            "ext_path" => ("ext_path={dir}/ext:64m", none, ext),
            "ext_page_size" => ("ext_page_size=8", none, ext),
            "ext_wbuf_size" => ("ext_wbuf_size=4", none, ext),
            "ext_threads" => ("ext_threads=1", none, ext),
            "ext_item_size" => ("ext_item_size=100", none, ext),
            "ext_item_age" => ("ext_item_age=5", none, ext),
            "ext_low_ttl" => ("ext_low_ttl=5", none, ext),
            "ext_drop_unread" => ("ext_drop_unread", none, ext),
            "ext_recache_rate" => ("ext_recache_rate=5", none, ext),
            "ext_compact_under" => ("ext_compact_under=1", none, ext),
            "ext_drop_under" => ("ext_drop_under=1", none, ext),
            "ext_max_frag" => ("ext_max_frag=0.5", none, ext),
            "ext_max_sleep" => ("ext_max_sleep=5", none, ext),
            "slab_automove_freeratio" => ("slab_automove_freeratio=0.02", none, Serve),
            "ssl_chain_cert" | "ssl_key" => ("ssl_session_cache", TLS, Serve),
            "ssl_keyformat" => ("ssl_keyformat=1", TLS, Serve),
            "ssl_verify_mode" => ("ssl_verify_mode=1,ssl_ca_cert={certs}/ca.pem", TLS, Serve),
            "ssl_ciphers" => ("ssl_ciphers=HIGH", TLS, Serve),
            "ssl_ca_cert" => ("ssl_ca_cert={certs}/ca.pem", TLS, Serve),
            "ssl_wbuf_size" => ("ssl_wbuf_size=8", TLS, Serve),
            "ssl_session_cache" => ("ssl_session_cache", TLS, Serve),
            "ssl_kernel_tls" => ("ssl_kernel_tls", TLS, Serve),
            "ssl_min_version" => ("ssl_min_version=3", TLS, Serve),
            _ => return None,
        })
    }

    /// Suboptions memcached 1.6.18 accepts without listing them, and the
    /// command lines of issue 17.
    const UNLISTED: &[&str] = &[
        "slab_reassign",
        "no_slab_reassign",
        "slab_automove",
        "slab_automove=2",
        "no_slab_automove",
        "slab_automove_ratio=0.5",
        "slab_automove_window=10",
        "lru_crawler",
        "lru_maintainer",
        "no_maxconns_fast",
        "inline_ascii_resp",
        "no_inline_ascii_resp",
        "no_chunked_items",
        "slab_sizes=100-200-300",
        "drop_privileges",
        "no_drop_privileges",
        "resp_obj_mem_limit=5",
        "hash_algorithm=jenkins",
        "hash_algorithm=murmur3",
        "modern,",
        "slab_reassign,slab_automove=1,lru_crawler,lru_maintainer,no_inline_ascii_resp",
        "slab_reassign,slab_automove",
        "no_modern,hash_algorithm=murmur3,slab_chunk_max=65536",
        "slab_chunk_max=524288",
        "hot_lru_pct=10,warm_lru_pct=30,hot_max_factor=0.333,warm_max_factor=1.5,slab_automove_ratio=0.555",
    ];

    /// Bad values: both refuse, memcached's line and status (`RefuseStatus`:
    /// status only).
    const BAD: &[(&[&str], Expect)] = {
        use Expect::*;
        &[
            (&["-f", "1"], Refuse),
            (&["-f", "abc"], Refuse),
            (&["-n", "0"], Refuse),
            (&["-n", "abc"], Refuse),
            (&["-D", ""], Refuse),
            (&["-t", "0"], Refuse),
            (&["-t", "abc"], Refuse),
            (&["-R", "0"], Refuse),
            (&["-c", "0"], Refuse),
            (&["-c", "abc"], Refuse),
            (&["-m", "0"], Refuse),
            (&["-m", "abc"], Refuse),
            (&["-I", "512"], Refuse),
            (&["-I", "2g"], Refuse),
            (&["-I", "abc"], Refuse),
            (&["-I", "40m"], Refuse),
            (&["-I", "2000m", "-m", "5000"], Refuse),
            (&["-B", "bad"], Refuse),
            (&["-S", "-B", "ascii"], Refuse),
            (&["-S", "-U", "{udp}"], Refuse),
            (&["-Y", "{dir}/auth", "-B", "binary"], Refuse),
            (&["-Y", "{dir}/auth", "-U", "{udp}"], Refuse),
            (&["-p", "70000"], Refuse),
            // memcached checks only the TCP port (-p is given here) and
            // binds UDP port 70000 mod 65536.
            (
                &["-U", "70000"],
                OnlyWasmcachedRefuses("Invalid port number 70000"),
            ),
            (&["-N", "0"], Refuse),
            (&["-N", "9"], Refuse),
            (&["-N", "2", "-t", "1"], Refuse),
            (&["-q"], Refuse),
            (&["--bogus"], Refuse),
            (&["--bogus=1"], Refuse),
            // memcached's help says --napi_ids; its option is --napi-ids.
            (&["--napi_ids=1"], Refuse),
            (&["-f"], RefuseStatus),
            (&["-o", "bogus"], Refuse),
            (&["-o", "=5"], Refuse),
            (&["-o", ",modern"], Refuse),
            (&["-o", "modern,,track_sizes"], Refuse),
            (&["-o", " modern"], Refuse),
            (&["-o", "no_track_sizes"], Refuse),
            (&["-o", "meta_response_old"], Refuse),
            (&["-o", "ext_bogus=1"], Refuse),
            (&["-o", "no_ext_drop_unread"], Refuse),
            (&["-o", "hashpower"], Refuse),
            (&["-o", "hashpower=abc"], Refuse),
            (&["-o", "hashpower=11"], Refuse),
            (&["-o", "hashpower=33"], Refuse),
            (&["-o", "hashpower=12"], Refuse),
            (&["-t", "5", "-o", "hashpower=13"], Refuse),
            (&["-o", "slab_automove=3"], Refuse),
            (&["-o", "slab_automove=-1"], Refuse),
            (&["-o", "slab_automove_ratio"], Refuse),
            (&["-o", "slab_automove_ratio=0"], Refuse),
            (&["-o", "slab_automove_ratio=1.5"], Refuse),
            (&["-o", "slab_automove_window"], Refuse),
            (&["-o", "slab_automove_window=2"], Refuse),
            (&["-o", "slab_automove_freeratio"], Refuse),
            (&["-o", "slab_automove_freeratio=abc"], Refuse),
            (&["-o", "tail_repair_time"], Refuse),
            (&["-o", "tail_repair_time=5"], Refuse),
            (&["-o", "hash_algorithm"], Refuse),
            (&["-o", "hash_algorithm=foo"], Refuse),
            (&["-o", "hash_algorithm=MURMUR3"], Refuse),
            (&["-o", "lru_crawler_sleep"], Refuse),
            (&["-o", "lru_crawler_sleep=1000001"], Refuse),
            (&["-o", "lru_crawler_sleep=-1"], Refuse),
            (&["-o", "lru_crawler_tocrawl"], Refuse),
            (&["-o", "lru_crawler_tocrawl=abc"], Refuse),
            (&["-o", "lru_crawler_tocrawl=-1"], Refuse),
            (&["-o", "hot_lru_pct"], Refuse),
            (&["-o", "hot_lru_pct=80"], Refuse),
            (&["-o", "hot_lru_pct=abc"], Refuse),
            (&["-o", "hot_lru_pct=79"], Refuse),
            (&["-o", "warm_lru_pct=80"], Refuse),
            (&["-o", "hot_lru_pct=50,warm_lru_pct=40"], Refuse),
            (&["-o", "hot_max_factor"], Refuse),
            (&["-o", "hot_max_factor=0"], Refuse),
            (&["-o", "warm_max_factor=0"], Refuse),
            (&["-o", "warm_max_factor"], Refuse),
            (&["-o", "temporary_ttl"], Refuse),
            (&["-o", "temporary_ttl=5,no_lru_maintainer"], Refuse),
            (&["-o", "idle_timeout"], Refuse),
            (&["-o", "watcher_logbuf_size"], Refuse),
            (&["-o", "watcher_logbuf_size=abc"], Refuse),
            (&["-o", "worker_logbuf_size"], Refuse),
            (&["-o", "worker_logbuf_size=5x"], Refuse),
            (&["-o", "read_buf_mem_limit"], Refuse),
            (&["-o", "read_buf_mem_limit=abc"], Refuse),
            (&["-o", "read_buf_mem_limit=-1"], Refuse),
            (&["-o", "slab_chunk_max=300"], Refuse),
            (&["-o", "slab_chunk_max=-5"], Refuse),
            (&["-I", "1k", "-o", "slab_chunk_max=2048"], Refuse),
            (&["-o", "slab_sizes=40"], Refuse),
            (&["-o", "slab_sizes=100-104"], Refuse),
            (&["-o", "slab_sizes=200-100"], Refuse),
            (&["-o", "slab_sizes=abc"], Refuse),
            (&["-o", "ssl_verify_mode"], Refuse),
            (&["-o", "ssl_verify_mode=9"], Refuse),
            (&["-o", "ssl_verify_mode=-1"], Refuse),
            (&["-o", "ssl_verify_mode=abc"], Refuse),
            (&["-o", "ssl_min_version"], Refuse),
            (&["-o", "ssl_min_version=9"], Refuse),
            (&["-o", "ssl_min_version=abc"], Refuse),
            (&["-o", "ssl_keyformat"], Refuse),
            (&["-o", "ssl_keyformat=abc"], Refuse),
            (&["-o", "ssl_wbuf_size"], Refuse),
            (&["-o", "ssl_wbuf_size=abc"], Refuse),
            (&["-o", "ssl_wbuf_size=-1"], Refuse),
            (&["-o", "ssl_chain_cert"], Refuse),
            (&["-o", "ssl_key"], Refuse),
            (&["-o", "ssl_ciphers"], Refuse),
            (&["-o", "ssl_ca_cert"], Refuse),
        ]
    };

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_flag_and_suboption_of_memcached_h_side_by_side() {
        let (flags, subopts) = memcached_help();
        assert!(
            flags.len() >= 35,
            "parsed too few flags from memcached -h: {flags:?}"
        );
        assert!(
            subopts.len() >= 45,
            "parsed too few suboptions from memcached -h: {subopts:?}"
        );
        let mut cases = Vec::new();
        let mut lacking = Vec::new();
        for f in &flags {
            let Some((value, extra, ask, expect)) = flag_sample(&f.short) else {
                lacking.push(format!("-{}", f.short));
                continue;
            };
            let mut short = vec![format!("-{}", f.short)];
            short.extend(value.map(String::from));
            short.extend(strings(extra));
            cases.push(Case {
                label: format!("-{}", f.short),
                args: short,
                ask,
                expect,
            });
            if let Some(long) = &f.long {
                // memcached's help spells --napi-ids with an underscore.
                let long = format!("--{}", long.replace('_', "-"));
                let mut args = vec![match value {
                    Some(v) => format!("{long}={v}"),
                    None => long.clone(),
                }];
                args.extend(strings(extra));
                cases.push(Case {
                    label: long,
                    args,
                    ask,
                    expect,
                });
            }
        }
        for name in &subopts {
            let Some((opt, extra, expect)) = subopt_sample(name) else {
                lacking.push(format!("-o {name}"));
                continue;
            };
            let mut args = strings(extra);
            args.extend(["-o".to_string(), opt.to_string()]);
            cases.push(Case {
                label: format!("-o {opt}"),
                args,
                ask: Ask::Stats,
                expect,
            });
        }
        assert!(
            lacking.is_empty(),
            "memcached -h lists these, which this test's tables lack: {lacking:?}"
        );
        for opt in UNLISTED {
            cases.push(Case {
                label: format!("-o {opt}"),
                args: strings(&["-o", opt]),
                ask: Ask::Stats,
                expect: Expect::Serve,
            });
        }
        for (args, expect) in BAD {
            cases.push(Case {
                label: args.join(" "),
                args: strings(args),
                ask: Ask::Stats,
                expect: *expect,
            });
        }
        let n = cases.len();
        let failures = check_all(cases);
        assert!(
            failures.is_empty(),
            "{} of {n} command lines behave differently:\n{}",
            failures.len(),
            failures.join("\n")
        );
        eprintln!(
            "{n} command lines: {} flags and {} suboptions of memcached -h, {} unlisted suboptions, {} bad values",
            flags.len(),
            subopts.len(),
            UNLISTED.len(),
            BAD.len()
        );
    }

    /// A server that answered a connection; killed and reaped on drop.
    struct Running(Child, &'static str);

    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start_serving(bin: &Path, args: &[&str], env: &Env) -> Running {
        let (mut cmd, _) = command(bin, args, env);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let name = if is_memcached(bin) {
            "memcached"
        } else {
            "wasmcached"
        };
        let mut r = Running(cmd.spawn().unwrap(), name);
        let deadline = Instant::now() + START_TIMEOUT;
        while connect(env, None).is_none() {
            assert!(r.0.try_wait().unwrap().is_none(), "{name} {args:?} exited");
            assert!(Instant::now() < deadline, "{name} {args:?} did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        r
    }

    /// The backlog (`Send-Q`) `ss` shows for the listener on `port`.
    fn listen_backlog(port: u16) -> u32 {
        let out = Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .expect("ss (Debian package iproute2)");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no listener on {port}: {text:?}"));
        line.split_whitespace()
            .nth(2)
            .and_then(|q| q.parse().ok())
            .unwrap_or_else(|| panic!("no Send-Q in {line:?}"))
    }

    /// `-b` is the listen backlog: the kernel shows the same for both
    /// servers, with and without it.
    #[test]
    fn listen_backlog_is_what_b_says() {
        for args in [&["-b", "37"][..], &["--listen-backlog=5"], &[]] {
            let scratch = Scratch::new("backlog");
            let mut seen = Vec::new();
            for bin in [memcached_bin(), server_bin()] {
                let env = Env::new(&scratch.0);
                let r = start_serving(&bin, args, &env);
                seen.push((r.1, listen_backlog(env.port)));
            }
            assert_eq!(seen[0].1, seen[1].1, "{args:?}: {seen:?}");
            if let Some(b) = args
                .last()
                .and_then(|a| a.rsplit('=').next()?.parse::<u32>().ok())
            {
                assert_eq!(seen[1].1, b, "{args:?}");
            }
        }
    }

    /// `stats` (the general group) as name/value pairs.
    fn general_stats(env: &Env) -> Vec<(String, String)> {
        let mut r = BufReader::new(connect(env, None).expect("connect"));
        r.get_mut().write_all(b"stats\r\n").unwrap();
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "closed after {out:?}");
            if line == "END\r\n" {
                return out;
            }
            let rest = line.trim_end().strip_prefix("STAT ").expect("a STAT line");
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push((name.to_string(), value.to_string()));
        }
    }

    fn stat<'a>(stats: &'a [(String, String)], name: &str) -> &'a str {
        &stats
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {stats:?}"))
            .1
    }

    /// `-o hashpower` reaches the plugin as a hint (ABI v5) and the default
    /// store starts its hash index at that size: `stats` shows the same
    /// `hash_power_level` as memcached's, and `-o no_hashexpand` keeps it.
    #[test]
    fn hashpower_sizes_the_store_index_as_memcached_does() {
        for args in [
            &["-o", "hashpower=20"][..],
            &["-o", "hashpower=13,no_hashexpand"],
            &["-m", "256", "-o", "hashpower=17"],
        ] {
            let scratch = Scratch::new("hashpower");
            let mut seen = Vec::new();
            for bin in [memcached_bin(), server_bin()] {
                let env = Env::new(&scratch.0);
                let r = start_serving(&bin, args, &env);
                let stats = general_stats(&env);
                seen.push((r.1, stat(&stats, "hash_power_level").to_string()));
            }
            let want = args.last().unwrap()["hashpower=".len()..]
                .split(',')
                .next()
                .unwrap();
            assert_eq!(seen[0].1, want, "memcached {args:?}");
            assert_eq!(seen[0].1, seen[1].1, "{args:?}: {seen:?}");
        }
    }

    fn version(c: &mut TcpStream) -> std::io::Result<String> {
        c.write_all(b"version\r\n")?;
        let mut buf = [0u8; 128];
        let n = c.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// `-o maxconns_fast` (the default) tells a connection over `-c` `ERROR
    /// Too many open connections`; `no_maxconns_fast` leaves it waiting in
    /// the listen backlog and serves it once a connection closes.
    #[test]
    fn maxconns_fast_and_no_maxconns_fast() {
        let scratch = Scratch::new("maxconns");
        for fast in [true, false] {
            let env = Env::new(&scratch.0);
            let opt = if fast {
                "maxconns_fast"
            } else {
                "no_maxconns_fast"
            };
            let _r = start_serving(&server_bin(), &["-c", "2", "-o", opt], &env);
            let addr = ("127.0.0.1", env.port);
            // Two connections, once the start-up probe's has been closed.
            let deadline = Instant::now() + Duration::from_secs(10);
            let (a, _b) = loop {
                let mut a = TcpStream::connect(addr).unwrap();
                let mut b = TcpStream::connect(addr).unwrap();
                let mut ok = true;
                for c in [&mut a, &mut b] {
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    ok &= version(c).unwrap_or_default().starts_with("VERSION ");
                }
                if ok {
                    break (a, b);
                }
                assert!(
                    Instant::now() < deadline,
                    "-c 2 never let two connections in"
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            let mut x = TcpStream::connect(addr).unwrap();
            x.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let answer = version(&mut x);
            if fast {
                assert_eq!(answer.unwrap(), "ERROR Too many open connections\r\n");
                continue;
            }
            assert!(answer.is_err(), "served over -c: {answer:?}");
            drop(a);
            x.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 128];
            let n = x.read(&mut buf).unwrap();
            assert!(
                buf[..n].starts_with(b"VERSION "),
                "{:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }

    /// A process this test did not spawn (a daemon): killed on drop.
    struct Daemon(i32);

    impl Drop for Daemon {
        fn drop(&mut self) {
            kill_pid(self.0);
        }
    }

    fn user_exists(name: &str) -> bool {
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: getpwnam reads a NUL-terminated name; only the NULL check
        // looks at the result.
        unsafe { !libc::getpwnam(c.as_ptr()).is_null() }
    }

    /// Debian's /etc/memcached.conf through Debian's start-memcached (the
    /// script the package's init script and systemd wrapper use), pointed at
    /// each server: it starts, serves, and runs with the file's settings.
    /// The script and the file are copied into a scratch directory and
    /// changed there only where they name the binary, the port, the pid file
    /// and the log file.
    #[test]
    fn debian_start_memcached_and_memcached_conf() {
        const SCRIPT: &str = "/usr/share/memcached/scripts/start-memcached";
        const CONF: &str = "/etc/memcached.conf";
        assert!(running_as_root(), "start-memcached runs as root only");
        let script = fs::read_to_string(SCRIPT)
            .unwrap_or_else(|e| panic!("{SCRIPT} (Debian package memcached): {e}"));
        let conf = fs::read_to_string(CONF)
            .unwrap_or_else(|e| panic!("{CONF} (Debian package memcached): {e}"));
        for bin in [memcached_bin(), server_bin()] {
            let scratch = Scratch::new("start-memcached");
            let dir = &scratch.0;
            // The server drops to the file's user (memcache) before it
            // writes its pid file here.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap();
            let port = free_port();
            let binary = "my $memcached = \"/usr/bin/memcached\";";
            assert!(
                script.contains(binary),
                "{SCRIPT} no longer names /usr/bin/memcached"
            );
            let copy = dir.join("start-memcached");
            fs::write(
                &copy,
                script.replace(binary, &format!("my $memcached = \"{}\";", bin.display())),
            )
            .unwrap();
            let mut seen = Vec::new();
            let lines: Vec<String> = conf
                .lines()
                .map(|l| {
                    let t = l.trim_start();
                    let key = t.split_whitespace().next().unwrap_or("");
                    seen.push(key.to_string());
                    match key {
                        "-p" => format!("-p {port}"),
                        "-P" => format!("-P {}", dir.join("server.pid").display()),
                        "logfile" => format!("logfile {}", dir.join("log").display()),
                        "-u" if !user_exists(t[2..].trim()) => "-u root".into(),
                        _ => l.to_string(),
                    }
                })
                .collect();
            for key in ["-p", "-P", "logfile", "-m", "-l", "-u", "-d"] {
                assert!(
                    seen.iter().any(|k| k == key),
                    "{CONF} has no {key} line any more"
                );
            }
            let conf_copy = dir.join("memcached.conf");
            fs::write(&conf_copy, lines.join("\n") + "\n").unwrap();
            let pidfile = dir.join("script.pid");
            let st = Command::new("perl")
                .arg(&copy)
                .arg(&conf_copy)
                .arg(&pidfile)
                .env("WASMCACHED_CACHE_DIR", cache_dir())
                .stdin(Stdio::null())
                .status()
                .expect("perl");
            assert!(st.success(), "start-memcached: {st}");
            // The script's pid file holds the server's pid (it execs it).
            let deadline = Instant::now() + START_TIMEOUT;
            let pid = loop {
                if let Some(pid) = fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|p| p.trim().parse::<i32>().ok())
                {
                    break pid;
                }
                assert!(
                    Instant::now() < deadline,
                    "start-memcached wrote no pid file"
                );
                std::thread::sleep(Duration::from_millis(10));
            };
            let _daemon = Daemon(pid);
            let env = Env {
                port,
                udp: 0,
                dir: dir.clone(),
            };
            let log = || fs::read_to_string(dir.join("log")).unwrap_or_default();
            let mut conn = loop {
                if let Some(c) = connect(&env, None) {
                    break c;
                }
                // SAFETY: signal 0 only checks that the process exists.
                let alive = unsafe { libc::kill(pid, 0) == 0 };
                assert!(alive, "{} exited; its log:\n{}", bin.display(), log());
                assert!(
                    Instant::now() < deadline,
                    "{} did not start; its log:\n{}",
                    bin.display(),
                    log()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            conn.write_all(b"set conf 0 0 5\r\nvalue\r\nget conf\r\n")
                .unwrap();
            let want = "STORED\r\nVALUE conf 0 5\r\nvalue\r\nEND\r\n";
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while got.len() < want.len() {
                let n = conn.read(&mut buf).unwrap();
                assert!(
                    n > 0,
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(String::from_utf8_lossy(&got), want, "{}", bin.display());
            let settings = ask_settings(conn, Ask::Stats).unwrap();
            let get = |k: &str| {
                settings
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("tcpport"), Some(port.to_string().as_str()));
            assert_eq!(get("inter"), Some("127.0.0.1"));
            assert_eq!(get("maxbytes"), Some("67108864"));
            // The file's -P: the server wrote its pid there too.
            let own = fs::read_to_string(dir.join("server.pid")).unwrap_or_default();
            assert_eq!(own.trim(), pid.to_string(), "{}", bin.display());
        }
    }
}
