//! Shared harness for the end-to-end tests: start a server binary on a free
//! loopback port, wait until it answers `version`, kill and reap it on drop;
//! plus a tiny blocking text-protocol client whose every read has a timeout,
//! so that no test can hang.
//!
//! Which binary is "the server under test":
//! - default: the `wasmcached` binary cargo built for these tests
//!   (`CARGO_BIN_EXE_wasmcached`);
//! - `WASMCACHED_TEST_BIN=/path/to/server` overrides it (e.g.
//!   `WASMCACHED_TEST_BIN=/usr/bin/memcached` validates the tests themselves
//!   against the reference server).
//!
//! The reference server (differential tests, sanity checks) is
//! `MEMCACHED_BIN`, default `/usr/bin/memcached` (Debian package
//! `memcached`). It is required: a test that needs it fails when it is
//! missing, it never skips.
//!
//! Everything listens on and talks to 127.0.0.1 only. A memcached binary gets
//! `-u root` appended when the tests run as root (memcached refuses to run as
//! root otherwise).
//!
//! Each server's stdout+stderr go to a log file under cargo's per-target
//! scratch dir (`target/tmp/server-logs/`); the tail of it is printed when a
//! test fails while the server is alive, and the file is removed when the
//! test passes. A server that exits by itself while the test did not expect
//! it (crash, abort) fails the test when the `Server` is dropped.
//!
//! Not every test module uses every helper.
#![allow(dead_code)]

pub mod binary;
pub mod diff;
pub mod example_build;
pub mod plugin_build;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Default timeout of every client read and write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to answer its first `version`. The first start
/// of wasmcached compiles the default plugin with cranelift, which on a
/// loaded 2-core machine can take several seconds.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- binaries

/// The server under test: `WASMCACHED_TEST_BIN`, else the wasmcached binary
/// built by cargo for this test run.
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WASMCACHED_TEST_BIN") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    match option_env!("CARGO_BIN_EXE_wasmcached") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "no server to test: this build has no CARGO_BIN_EXE_wasmcached; set WASMCACHED_TEST_BIN"
        ),
    }
}

/// The reference memcached: `MEMCACHED_BIN`, default /usr/bin/memcached.
/// Panics (never skips) when it is not installed.
pub fn memcached_bin() -> PathBuf {
    let p = std::env::var_os("MEMCACHED_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/memcached"));
    assert!(
        p.is_file(),
        "reference memcached not found at {} (install it: apt-get install -y memcached \
         libmemcached-tools, or run ./scripts/test.sh, or set MEMCACHED_BIN)",
        p.display()
    );
    p
}

/// True when the server under test is a memcached binary (the tests are
/// being validated against the reference).
pub fn testing_memcached() -> bool {
    is_memcached(&server_bin())
}

/// True when `bin` is a memcached binary (by its file name).
pub fn is_memcached(bin: &Path) -> bool {
    bin.file_name()
        .map(|n| n.to_string_lossy().starts_with("memcached"))
        .unwrap_or(false)
}

/// True when the tests run as root (memcached then needs `-u root`).
pub fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

// ---------------------------------------------------------------- ports

static PORT_SEQ: AtomicU32 = AtomicU32::new(0);
static LOG_SEQ: AtomicU32 = AtomicU32::new(0);

/// A loopback TCP port that is free right now. Ports come from 20000-32767,
/// below Linux's ephemeral range (so outgoing connections do not take them),
/// spread by pid so that concurrent test processes rarely collide; the
/// caller still retries when the server cannot bind.
/// The workspace root (the tests belong to the host package, `host/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The path of a test plugin under tests/plugins/.
pub fn test_plugin(name: &str) -> String {
    format!("{}/../tests/plugins/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    let pid = std::process::id();
    for _ in 0..2000 {
        let n = PORT_SEQ.fetch_add(1, Ordering::Relaxed);
        let port = 20000
            + ((pid.wrapping_mul(7919).wrapping_add(n.wrapping_mul(104_729))) % 12_768) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port found in 20000-32767");
}

fn log_dir() -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join("server-logs");
    fs::create_dir_all(&d).expect("create server log dir");
    d
}

// ---------------------------------------------------------------- server

/// A running server process; killed (SIGKILL) and reaped on drop.
pub struct Server {
    child: Option<Child>,
    port: u16,
    name: String,
    bin: PathBuf,
    args: Vec<String>,
    log_path: PathBuf,
    /// Set when the test made the server exit on purpose (`shutdown`).
    expect_exit: bool,
}

impl Server {
    /// Starts the server under test with `args` (memcached flags, without
    /// -p/-l, which the harness adds).
    pub fn start(args: &[&str]) -> Server {
        Server::start_bin(&server_bin(), args)
    }

    /// Starts the reference memcached with `args`.
    pub fn start_memcached(args: &[&str]) -> Server {
        Server::start_bin(&memcached_bin(), args)
    }

    /// Starts `bin` with `args -p PORT -l 127.0.0.1` on a free port (new
    /// port and retry when the process exits during start-up, e.g. because
    /// the port was taken meanwhile) and waits until it answers `version`.
    pub fn start_bin(bin: &Path, args: &[&str]) -> Server {
        Server::start_bin_env(bin, args, &[])
    }

    /// As [`Server::start`], with `env` set for the server process only
    /// (tests run in parallel threads: changing this process's environment
    /// would reach the servers other tests start meanwhile).
    pub fn start_env(args: &[&str], env: &[(&str, &Path)]) -> Server {
        Server::start_bin_env(&server_bin(), args, env)
    }

    fn start_bin_env(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Server {
        assert!(
            bin.is_file(),
            "server binary {} does not exist",
            bin.display()
        );
        let name = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "server".into());
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            full.extend([
                "-p".into(),
                port.to_string(),
                "-l".into(),
                "127.0.0.1".into(),
            ]);
            if is_memcached(bin) && running_as_root() && !args.contains(&"-u") {
                full.extend(["-u".into(), "root".into()]);
            }
            let log_path = log_dir().join(format!(
                "{}-{}-{}-{}.log",
                name,
                std::process::id(),
                LOG_SEQ.fetch_add(1, Ordering::Relaxed),
                port
            ));
            let log = File::create(&log_path).expect("create server log");
            let log2 = log.try_clone().expect("clone log handle");
            let mut cmd = Command::new(bin);
            cmd.envs(env.iter().copied())
                .args(&full)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log2));
            set_parent_death_signal(&mut cmd);
            let child = match cmd.spawn() {
                Ok(c) => c,
                // Wine's CreateProcess fails now and then under load
                // ("Internal error", 1359): try again, like a lost port.
                Err(e) if attempt < 4 => {
                    last_log = format!("cannot start {}: {e}", bin.display());
                    std::thread::sleep(Duration::from_millis(300));
                    continue;
                }
                Err(e) => panic!("cannot start {}: {e}", bin.display()),
            };
            let mut server = Server {
                child: Some(child),
                port,
                name: name.clone(),
                bin: bin.to_path_buf(),
                args: full,
                log_path,
                expect_exit: false,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(ReadyError::Exited(status)) => {
                    last_log = server.log_tail(40);
                    server.expect_exit = true;
                    let lower = last_log.to_lowercase();
                    if !(lower.contains("in use")
                        || lower.contains("eaddrinuse")
                        || lower.contains("bind"))
                    {
                        drop(server);
                        panic!(
                            "{name} {:?} exited during start-up ({status})\n--- server log ---\n{last_log}",
                            args
                        );
                    }
                    eprintln!(
                        "[harness] {} exited during start-up on port {port} ({status}), attempt {}",
                        name,
                        attempt + 1
                    );
                    // the port was taken meanwhile: retry on another one
                    continue;
                }
                Err(ReadyError::Fatal(msg)) => {
                    let tail = server.log_tail(40);
                    server.expect_exit = true;
                    drop(server);
                    panic!(
                        "{name} {:?} did not start: {msg}\n--- server log ---\n{tail}",
                        args
                    );
                }
            }
        }
        panic!(
            "{} {:?} exited during start-up 5 times in a row\n--- last server log ---\n{}",
            name, args, last_log
        );
    }

    fn wait_ready(&mut self) -> Result<(), ReadyError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                return Err(ReadyError::Exited(status));
            }
            if Instant::now() > deadline {
                return Err(ReadyError::Fatal(format!(
                    "no answer to 'version' on 127.0.0.1:{} within {:?}",
                    self.port, START_TIMEOUT
                )));
            }
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                if s.write_all(b"version\r\n").is_ok() {
                    let mut r = BufReader::new(s);
                    let mut line = Vec::new();
                    match r.read_until(b'\n', &mut line) {
                        Ok(_) if line.starts_with(b"VERSION ") && line.ends_with(b"\r\n") => {
                            // Someone else's server on this port would also
                            // answer; ours is alive only if it could bind.
                            std::thread::sleep(Duration::from_millis(20));
                            if let Some(st) =
                                self.child.as_mut().unwrap().try_wait().expect("try_wait")
                            {
                                return Err(ReadyError::Exited(st));
                            }
                            return Ok(());
                        }
                        Ok(_) if !line.is_empty() => {
                            return Err(ReadyError::Fatal(format!(
                                "answered {:?} to 'version'",
                                String::from_utf8_lossy(&line)
                            )))
                        }
                        _ => {}
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full argument list the process was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// A new client connection to this server.
    pub fn client(&self) -> Client {
        Client::connect(self.port).with_label(&format!("{}:{}", self.name, self.port))
    }

    /// The whole log (stdout+stderr) so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Waits (bounded) for the process to exit on its own, e.g. after
    /// `shutdown`; returns its status, or None if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        self.expect_exit = true;
        loop {
            if let Some(st) = self.child.as_mut()?.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                self.expect_exit = false;
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics (with the server log) if the process is no longer running.
    pub fn assert_running(&mut self) {
        if !self.is_running() {
            let st = self.child.as_mut().unwrap().try_wait().ok().flatten();
            panic!(
                "{} on port {} is not running any more ({:?})\n--- server log ---\n{}",
                self.name,
                self.port,
                st,
                self.log_tail(60)
            );
        }
    }

    /// `stats` (or `stats SUB`) on a fresh connection, as a name -> value map.
    pub fn stats(&self, sub: &str) -> HashMap<String, String> {
        self.client().stats(sub)
    }

    /// One general stat as a number, over a new connection.
    pub fn stat(&self, name: &str) -> u64 {
        self.client().stat(name)
    }

    /// One `stats plugin` figure (wasmcached's own: plugin faults, reloads,
    /// the plugin's own stats) as a number, over a new connection.
    pub fn plugin_stat(&self, name: &str) -> u64 {
        self.client().plugin_stat(name)
    }

    /// Kills the server now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

enum ReadyError {
    Exited(ExitStatus),
    Fatal(String),
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let exited = child.try_wait().ok().flatten();
        let _ = child.kill();
        let _ = child.wait(); // reap: no zombies
        if std::thread::panicking() {
            eprintln!(
                "--- {} {:?} log ({}), last lines ---\n{}\n--- end of server log ---",
                self.name,
                self.args,
                self.log_path.display(),
                self.log_tail(40)
            );
            return;
        }
        if let (Some(status), false) = (exited, self.expect_exit) {
            panic!(
                "{} {:?} exited on its own during the test ({status})\n--- server log ---\n{}",
                self.name,
                self.args,
                self.log_tail(60)
            );
        }
        let _ = fs::remove_file(&self.log_path);
    }
}

/// The server dies with the thread that started it, even if the test
/// process is killed (so a reference memcached is never left running).
#[cfg(target_os = "linux")]
pub fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // the parent died before prctl took effect
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn set_parent_death_signal(_cmd: &mut Command) {}

// ---------------------------------------------------------------- tools

/// What a bounded run of a tool printed, and how it ended.
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` with stdin closed and stdout/stderr captured; kills it after
/// `limit` (a panic then).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let so = t_out.join().unwrap_or_default();
            let se = t_err.join().unwrap_or_default();
            panic!(
                "{desc} still running after {limit:?}; killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&so),
                String::from_utf8_lossy(&se)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        success: status.success(),
        code: status.code(),
        stdout: t_out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
    }
}

/// Resident memory of process `pid`, in KiB (VmRSS from /proc).
#[cfg(target_os = "linux")]
pub fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------- client

/// A blocking text-protocol client. Every read and write has a timeout; the
/// `line`/`exact`/... helpers panic with context on timeout or EOF, the
/// `try_*` variants return errors instead.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    label: String,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::try_connect(port).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    pub fn try_connect(port: u16) -> io::Result<Client> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let w = s.try_clone()?;
        Ok(Client {
            reader: BufReader::with_capacity(64 * 1024, s),
            writer: w,
            label: format!("127.0.0.1:{port}"),
        })
    }

    /// The client's own port: the `rport` the server sees.
    pub fn local_port(&self) -> u16 {
        self.writer.local_addr().expect("local_addr").port()
    }

    pub fn with_label(mut self, label: &str) -> Client {
        self.label = label.to_string();
        self
    }

    pub fn set_read_timeout(&mut self, t: Duration) {
        self.writer
            .set_read_timeout(Some(t))
            .expect("set_read_timeout");
    }

    /// Sends raw bytes (all of them).
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let b = bytes.as_ref();
        self.writer
            .write_all(b)
            .unwrap_or_else(|e| panic!("[{}] write of {} bytes failed: {e}", self.label, b.len()));
    }

    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.writer.write_all(bytes.as_ref())
    }

    /// Reads one line including its "\n"; Ok(empty) on EOF.
    pub fn try_line_raw(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf)?;
        Ok(buf)
    }

    /// Reads one "\r\n"-terminated line and returns it without the "\r\n".
    /// Panics on timeout, EOF, or a line not ending in "\r\n".
    pub fn line(&mut self) -> String {
        let raw = match self.try_line_raw() {
            Ok(r) => r,
            Err(e) => panic!(
                "[{}] reading a line: {e} (timeout {:?})",
                self.label, IO_TIMEOUT
            ),
        };
        if raw.is_empty() {
            panic!(
                "[{}] connection closed while waiting for a line",
                self.label
            );
        }
        if !raw.ends_with(b"\r\n") {
            panic!(
                "[{}] line not terminated by \\r\\n: {:?}",
                self.label,
                String::from_utf8_lossy(&raw)
            );
        }
        String::from_utf8_lossy(&raw[..raw.len() - 2]).into_owned()
    }

    /// Reads exactly n bytes.
    pub fn exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        if let Err(e) = self.reader.read_exact(&mut buf) {
            panic!("[{}] reading {n} bytes: {e}", self.label);
        }
        buf
    }

    /// Reads exactly n bytes, or the error (timeout, EOF).
    pub fn try_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.reader.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Reads lines up to and including "END"; returns them without "END".
    /// Data blocks of VALUE lines are returned as (lossy) lines too; use
    /// [`Client::values`] to parse a retrieval answer.
    pub fn until_end(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == "END" {
                return out;
            }
            if l.starts_with("ERROR")
                || l.starts_with("CLIENT_ERROR")
                || l.starts_with("SERVER_ERROR")
            {
                panic!(
                    "[{}] error while reading up to END: {l} (after {out:?})",
                    self.label
                );
            }
            out.push(l);
        }
    }

    /// Reads lines up to and including `end` (e.g. the meta no-op's `MN`);
    /// returns them without `end`. Data blocks come back as lines too.
    pub fn until_line(&mut self, end: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == end {
                return out;
            }
            out.push(l);
        }
    }

    /// Sends `line` + "\r\n" and returns the one-line answer.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n"));
        self.line()
    }

    /// `set KEY FLAGS EXPTIME LEN` + data; returns the answer line.
    pub fn set(&mut self, key: &str, flags: u32, exptime: i64, value: &[u8]) -> String {
        self.store("set", key, flags, exptime, value)
    }

    /// A storage command (set/add/replace/append/prepend) + data; returns
    /// the answer line.
    pub fn store(
        &mut self,
        verb: &str,
        key: &str,
        flags: u32,
        exptime: i64,
        value: &[u8],
    ) -> String {
        let mut msg = format!("{verb} {key} {flags} {exptime} {}\r\n", value.len()).into_bytes();
        msg.extend_from_slice(value);
        msg.extend_from_slice(b"\r\n");
        self.send(msg);
        self.line()
    }

    /// Parses a retrieval answer (VALUE blocks up to END).
    pub fn values(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == "END" {
                return out;
            }
            let t: Vec<&str> = l.split(' ').collect();
            if t[0] != "VALUE" || !(t.len() == 4 || t.len() == 5) {
                panic!(
                    "[{}] expected VALUE or END, got {l:?} (after {} values)",
                    self.label,
                    out.len()
                );
            }
            let len: usize = t[3]
                .parse()
                .unwrap_or_else(|_| panic!("bad length in {l:?}"));
            let data = self.exact(len + 2);
            assert_eq!(
                &data[len..],
                b"\r\n",
                "[{}] data block of {l:?} not followed by \\r\\n",
                self.label
            );
            out.push(Value {
                key: t[1].to_string(),
                flags: t[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad flags in {l:?}")),
                data: data[..len].to_vec(),
                cas: t
                    .get(4)
                    .map(|c| c.parse().unwrap_or_else(|_| panic!("bad cas in {l:?}"))),
            });
        }
    }

    /// `get KEY` -> the value's data, or None on a miss.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n"));
        let mut v = self.values();
        assert!(
            v.len() <= 1,
            "[{}] get {key} returned {} values",
            self.label,
            v.len()
        );
        v.pop().map(|v| {
            assert_eq!(v.key, key);
            v.data
        })
    }

    /// `gets KEY` -> (data, cas), or None on a miss.
    pub fn gets(&mut self, key: &str) -> Option<(Vec<u8>, u64)> {
        self.send(format!("gets {key}\r\n"));
        let mut v = self.values();
        assert!(
            v.len() <= 1,
            "[{}] gets {key} returned {} values",
            self.label,
            v.len()
        );
        v.pop().map(|v| (v.data, v.cas.expect("gets without cas")))
    }

    /// `stats [SUB]` as a map of name -> value (the part after "STAT ").
    /// One general stat as a number.
    pub fn stat(&mut self, name: &str) -> u64 {
        let s = self.stats("");
        s.get(name)
            .unwrap_or_else(|| panic!("no stat {name} in {s:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("stat {name} is not a number: {:?}", s[name]))
    }

    /// One `stats plugin` figure as a number.
    pub fn plugin_stat(&mut self, name: &str) -> u64 {
        let s = self.stats("plugin");
        s.get(name)
            .unwrap_or_else(|| panic!("no stat {name} in stats plugin: {s:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("stat {name} is not a number: {:?}", s[name]))
    }

    pub fn stats(&mut self, sub: &str) -> HashMap<String, String> {
        if sub.is_empty() {
            self.send("stats\r\n");
        } else {
            self.send(format!("stats {sub}\r\n"));
        }
        let mut m = HashMap::new();
        for l in self.until_end() {
            let rest = l
                .strip_prefix("STAT ")
                .unwrap_or_else(|| panic!("[{}] stats {sub}: unexpected line {l:?}", self.label));
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    /// Asserts that the server closes the connection within `within`,
    /// without sending anything more.
    pub fn expect_closed(&mut self, within: Duration) {
        let got = self.read_until_closed(within);
        assert!(
            got.is_empty(),
            "[{}] expected the connection to be closed, got {:?}",
            self.label,
            String::from_utf8_lossy(&got)
        );
    }

    /// Reads whatever arrives until the peer closes the connection (EOF or
    /// reset); panics if it is still open after `within`.
    pub fn read_until_closed(&mut self, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "[{}] connection still open after {within:?} (received {:?})",
                    self.label,
                    String::from_utf8_lossy(&got)
                );
            }
            self.writer
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("[{}] waiting for close: {e}", self.label),
            }
        }
        self.writer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        got
    }

    /// Whatever arrives within `quiet` of silence (for "nothing more must
    /// come" checks). Returns the bytes and whether the peer closed.
    pub fn drain(&mut self, quiet: Duration) -> (Vec<u8>, bool) {
        self.writer.set_read_timeout(Some(quiet)).unwrap();
        let mut got = Vec::new();
        let mut closed = false;
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        self.writer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        (got, closed)
    }

    /// Bytes already received and buffered but not consumed.
    pub fn buffered(&self) -> &[u8] {
        self.reader.buffer()
    }

    pub fn shutdown_write(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Write);
    }

    pub fn label(&self) -> &str {
        &self.label
    }
}

/// One VALUE block of a retrieval answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub key: String,
    pub flags: u32,
    pub data: Vec<u8>,
    pub cas: Option<u64>,
}

/// Deterministic xorshift64* generator (no external crates; seeds reproduce).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    /// True with probability p_percent/100.
    pub fn chance(&mut self, p_percent: u64) -> bool {
        self.below(100) < p_percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A seed from `name` (env var) if set, else `default`.
pub fn seed_from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) if !s.is_empty() => s
            .parse()
            .or_else(|_| u64::from_str_radix(s.trim_start_matches("0x"), 16))
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        _ => default,
    }
}
