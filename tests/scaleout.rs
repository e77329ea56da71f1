//! Scale-out on an existing engine: Debian's `nutcracker` (twemproxy 0.5)
//! in front of three wasmcached servers, with the configuration
//! docs/scaling.md shows (ketama distribution, fnv1a_64 hash). Through the
//! proxy a few hundred keys are set and all read back (one cache), and each
//! backend's `stats` shows that the keys spread over all three.
//!
//! nutcracker is required (`apt-get install nutcracker`, done by
//! ./scripts/test.sh; `NUTCRACKER_BIN` overrides the path): a missing one
//! fails the test. It listens on 127.0.0.1 only (proxy and stats ports),
//! logs to a file under cargo's scratch dir, and is killed on drop.
// The reference comparisons run where Debian's memcached and its tools do:
// Linux. Under Wine or on macOS/Windows this module is empty (see the
// README, "Platforms").
#![cfg(target_os = "linux")]

use crate::common;

use common::{free_port, Client, Server};
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEYS: usize = 300;

fn nutcracker_bin() -> PathBuf {
    let p = std::env::var_os("NUTCRACKER_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nutcracker"));
    if p.is_file() {
        return p;
    }
    let alt = PathBuf::from("/usr/bin/nutcracker");
    if alt.is_file() {
        return alt;
    }
    panic!(
        "nutcracker not found at {} (apt-get install -y nutcracker, or run ./scripts/test.sh, \
         or set NUTCRACKER_BIN)",
        p.display()
    );
}

/// The pool configuration (the one docs/scaling.md shows).
fn nutcracker_config(listen: u16, backends: &[u16]) -> String {
    let mut s = format!(
        "wasmcached:\n  listen: 127.0.0.1:{listen}\n  hash: fnv1a_64\n  distribution: ketama\n  \
         timeout: 2000\n  backlog: 1024\n  preconnect: true\n  auto_eject_hosts: false\n  servers:\n"
    );
    for (i, p) in backends.iter().enumerate() {
        s.push_str(&format!("    - 127.0.0.1:{p}:1 wasmcached{}\n", i + 1));
    }
    s
}

/// A running nutcracker; killed and reaped on drop (its log is printed when
/// the test fails).
struct Nutcracker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nutcracker {
    fn start(backends: &[u16]) -> Nutcracker {
        let bin = nutcracker_bin();
        let base = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("nutcracker-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create nutcracker dir");
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let stats_port = free_port();
            let conf = dir.join("nutcracker.yml");
            fs::write(&conf, nutcracker_config(port, backends)).unwrap();
            // syntax check first (-t)
            let t = Command::new(&bin)
                .arg("-t")
                .arg("-c")
                .arg(&conf)
                .output()
                .expect("run nutcracker -t");
            assert!(
                t.status.success(),
                "nutcracker -t rejects the config:\n{}\n{}{}",
                fs::read_to_string(&conf).unwrap(),
                String::from_utf8_lossy(&t.stdout),
                String::from_utf8_lossy(&t.stderr)
            );
            let log = dir.join("nutcracker.log");
            let child = Command::new(&bin)
                .arg("-c")
                .arg(&conf)
                .arg("-o")
                .arg(&log)
                .args(["-a", "127.0.0.1", "-s", &stats_port.to_string()])
                .arg("-p")
                .arg(dir.join("nutcracker.pid"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut n = Nutcracker {
                child,
                port,
                dir: dir.clone(),
            };
            match n.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return n,
                Err(e) => {
                    last = format!("{e}\n--- log ---\n{}", n.log());
                    // port taken meanwhile, or a slow start: retry (Drop kills it)
                }
            }
        }
        panic!("nutcracker did not start 5 times in a row: {last}");
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Err(format!("nutcracker exited ({st})"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on 127.0.0.1:{} within {within:?}",
                    self.port
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                if let Ok(mut c) = Client::try_connect(self.port) {
                    c.set_read_timeout(Duration::from_secs(5));
                    if c.try_send(b"get wasmcached-readiness-probe\r\n").is_ok() {
                        if let Ok(l) = c.try_line_raw() {
                            if l == b"END\r\n" {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("nutcracker.log")).unwrap_or_default()
    }

    fn client(&self) -> Client {
        Client::connect(self.port).with_label(&format!("nutcracker:{}", self.port))
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- nutcracker log ({}), last lines ---\n{}",
                self.dir.display(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn curr_items(s: &Server) -> u64 {
    s.stats("")["curr_items"].parse().expect("curr_items")
}

#[test]
fn nutcracker_ketama_over_three_wasmcached() {
    let backends: Vec<Server> = (0..3).map(|_| Server::start(&[])).collect();
    let ports: Vec<u16> = backends.iter().map(|s| s.port()).collect();
    let proxy = Nutcracker::start(&ports);
    let mut c = proxy.client();

    let key = |i: usize| format!("scale:{i}");
    let val = |i: usize| format!("value-{i}-{}", "x".repeat(i % 50));
    for i in 0..KEYS {
        assert_eq!(
            c.set(&key(i), i as u32, 0, val(i).as_bytes()),
            "STORED",
            "set {} through nutcracker",
            key(i)
        );
    }
    // every key back, one by one ...
    for i in 0..KEYS {
        assert_eq!(
            c.get(&key(i)),
            Some(val(i).into_bytes()),
            "get {} through nutcracker",
            key(i)
        );
    }
    // ... and in multi-key gets, which nutcracker splits over the backends
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(50) {
        let line: Vec<String> = chunk.iter().map(|&i| key(i)).collect();
        c.send(format!("get {}\r\n", line.join(" ")));
        let vals = c.values();
        assert_eq!(vals.len(), chunk.len(), "multi-get through nutcracker");
        for (v, &i) in vals.iter().zip(chunk) {
            assert_eq!(v.key, key(i));
            assert_eq!(v.flags, i as u32);
            assert_eq!(v.data, val(i).into_bytes());
        }
    }
    // a miss, arithmetic and delete through the proxy
    assert_eq!(c.get("scale:none"), None);
    assert_eq!(c.set("scale:counter", 0, 0, b"41"), "STORED");
    assert_eq!(c.cmd("incr scale:counter 1"), "42");
    assert_eq!(c.cmd("delete scale:counter"), "DELETED");
    assert_eq!(c.cmd("delete scale:counter"), "NOT_FOUND");

    // the keys spread over all three backends, each key on exactly one
    let counts: Vec<u64> = backends.iter().map(curr_items).collect();
    eprintln!("[scaleout] curr_items per backend: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), KEYS as u64, "{counts:?}");
    for (i, n) in counts.iter().enumerate() {
        assert!(
            *n >= (KEYS / 10) as u64,
            "backend {i} holds only {n} of {KEYS} keys: {counts:?}"
        );
    }
    let mut direct: Vec<Client> = backends.iter().map(|s| s.client()).collect();
    for i in (0..KEYS).step_by(7) {
        let mut holders = 0;
        for d in direct.iter_mut() {
            if d.get(&key(i)).is_some() {
                holders += 1;
            }
        }
        assert_eq!(holders, 1, "{} is on {holders} backends", key(i));
    }

    drop(c);
    drop(proxy);
    for mut b in backends {
        b.assert_running();
    }
}
