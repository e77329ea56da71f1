//! Authentication end to end: `-Y` ASCII auth and `-S` binary SASL PLAIN,
//! over real sockets, against wasmcached and (to prove the strings and
//! status codes) against the reference memcached.
//!
//! The harness's `Server` waits for a text `version` answer, which an auth
//! server refuses, so servers here are started by [`Proc`]: spawn, wait until
//! the port accepts, kill on drop.

use crate::common;

#[cfg(target_os = "linux")]
use common::memcached_bin;
use common::{free_port, is_memcached, running_as_root, server_bin, Client};
use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::binary::op::{GET, SASL_AUTH, SASL_LIST, SASL_STEP, SET, STAT, VERSION};
use common::binary::status::{AUTH_CONTINUE, AUTH_ERROR, EINVAL, ENOENT as KEY_ENOENT, SUCCESS};
use common::binary::{packet, Frame, Resp, HEADER_LEN, RES_MAGIC};

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let base = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let d = base.join(format!("auth-{tag}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process; killed and reaped on drop.
struct Proc {
    child: Child,
    port: u16,
    memcached: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(bin: &Path, args: &[&str], env: &[(&str, &Path)], port: u16) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .args(["-p", &port.to_string(), "-l", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if is_memcached(bin) {
        cmd.args(["-U", "0"]);
        if running_as_root() {
            cmd.args(["-u", "root"]);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts `bin` and waits until its port accepts connections.
fn spawn(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Proc {
    for _ in 0..5 {
        let port = free_port();
        let child = command(bin, args, env, port)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut p = Proc {
            child,
            port,
            memcached: is_memcached(bin),
        };
        let deadline = Instant::now() + common::START_TIMEOUT;
        loop {
            if let Some(st) = p.child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                let _ = p.child.stderr.take().unwrap().read_to_string(&mut err);
                assert!(
                    err.to_lowercase().contains("bind") || err.contains("in use"),
                    "{} {args:?} exited during start-up ({st}): {err}",
                    bin.display()
                );
                break; // port taken meanwhile: another one
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Alive only if it could bind the port itself.
                std::thread::sleep(Duration::from_millis(30));
                if p.child.try_wait().unwrap().is_none() {
                    return p;
                }
                continue;
            }
            assert!(Instant::now() < deadline, "{} did not start", bin.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{} {args:?} could not start", bin.display());
}

/// Runs `bin args` expecting it to refuse to start; returns (exit code, stderr).
#[cfg(target_os = "linux")]
fn refuses(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> (i32, String) {
    let out = command(bin, args, env, free_port())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

// ------------------------------------------------------------ ASCII auth

/// The `-Y` exchange; every string checked here was read off memcached 1.6.18.
fn check_ascii_auth(p: &Proc, authfile: &Path) {
    let who = if p.memcached {
        "memcached"
    } else {
        "wasmcached"
    };
    let mut c = Client::connect(p.port).with_label(who);
    for cmd in [
        "get foo",
        "version",
        "stats",
        "mg foo v",
        "ms foo 1",
        "set k 0 0",
    ] {
        c.send(format!("{cmd}\r\n"));
        assert_eq!(c.line(), "CLIENT_ERROR unauthenticated", "{who}: {cmd}");
    }
    // A wrong password (or user) never authenticates.
    for cred in [
        "alice wrong",
        "alice secre",
        "mallory secret",
        "alice secret2",
    ] {
        c.send(format!("set k 0 0 {}\r\n{cred}\r\n", cred.len()));
        assert_eq!(
            c.line(),
            "CLIENT_ERROR authentication failure",
            "{who}: {cred}"
        );
        c.send("get k\r\n");
        assert_eq!(
            c.line(),
            "CLIENT_ERROR unauthenticated",
            "{who}: after {cred}"
        );
    }
    c.send("set k 0 0 5\r\nalice\r\n");
    assert_eq!(c.line(), "CLIENT_ERROR bad authentication token format");
    c.send("set k 0 0 12\r\nalice secret\r\n");
    assert_eq!(c.line(), "STORED", "{who}");
    // Now a normal connection.
    assert_eq!(c.set("k", 5, 0, b"v"), "STORED");
    assert_eq!(c.get("k").as_deref(), Some(&b"v"[..]));
    assert!(c.cmd("version").starts_with("VERSION "));
    c.send("mn\r\n");
    assert_eq!(c.line(), "MN");
    // Another user, data with trailing tokens (memcached reads the first two).
    let mut d = Client::connect(p.port);
    d.send("set anykey 1 2 13\r\nbob pw2 extra\r\n");
    assert_eq!(d.line(), "STORED", "{who}");
    assert_eq!(d.get("k").as_deref(), Some(&b"v"[..]));

    let st = c.stats("");
    assert_eq!(st["auth_cmds"], "6", "{who}");
    assert_eq!(st["auth_errors"], "4", "{who}");
    let set = c.stats("settings");
    assert_eq!(set["auth_enabled_sasl"], "no");
    assert_eq!(set["auth_enabled_ascii"], authfile.display().to_string());
}

#[test]
fn ascii_auth() {
    let dir = TempDir::new("ascii");
    let authfile = dir.file("authfile", "alice:secret\nbob:pw2\n");
    let af = authfile.to_str().unwrap();
    let p = spawn(&server_bin(), &["-Y", af], &[]);
    check_ascii_auth(&p, &authfile);
}

// Compares with Debian's memcached: Linux only.
#[cfg(target_os = "linux")]
#[test]
fn ascii_auth_matches_memcached() {
    let dir = TempDir::new("ascii-mc");
    let authfile = dir.file("authfile", "alice:secret\nbob:pw2\n");
    let p = spawn(&memcached_bin(), &["-Y", authfile.to_str().unwrap()], &[]);
    check_ascii_auth(&p, &authfile);
}

#[test]
fn ascii_auth_off_by_default() {
    let p = spawn(&server_bin(), &[], &[]);
    let mut c = Client::connect(p.port);
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    let set = c.stats("settings");
    assert_eq!(set["auth_enabled_sasl"], "no");
    assert_eq!(set["auth_enabled_ascii"], "no");
    assert_eq!(c.stats("")["auth_cmds"], "0");
}

// Compares with Debian's memcached: Linux only.
#[cfg(target_os = "linux")]
#[test]
fn startup_refusals_match_memcached() {
    let dir = TempDir::new("refuse");
    let authfile = dir.file("authfile", "alice:secret\n");
    let malformed = dir.file("malformed", "alice\n");
    let af = authfile.to_str().unwrap();
    for bin in [server_bin(), memcached_bin()] {
        for (args, msg) in [
            (
                vec!["-Y", af, "-B", "binary"],
                "You cannot allow the BINARY protocol while using ascii authentication tokens.",
            ),
            (
                vec!["-S", "-B", "ascii"],
                "You cannot allow the ASCII protocol while using SASL.",
            ),
            (
                vec!["-S", "-B", "auto"],
                "You cannot allow the ASCII protocol while using SASL.",
            ),
            (
                vec!["-Y", malformed.to_str().unwrap()],
                "has a malformed entry. Should be 'user:password'",
            ),
            (
                vec!["-Y", "/nonexistent/authfile"],
                "Could not open authfile [/nonexistent/authfile] for reading",
            ),
        ] {
            let (code, text) = refuses(&bin, &args, &[]);
            assert_ne!(code, 0, "{} {args:?}", bin.display());
            assert!(text.contains(msg), "{} {args:?}: {text}", bin.display());
        }
    }
}

// ------------------------------------------------------------ binary SASL

fn pkt(op: u8, key: &[u8], val: &[u8], ext: &[u8], opaque: u32) -> Vec<u8> {
    packet(op, ext, key, val, 0, opaque)
}

fn read_resp(c: &mut Client) -> Resp {
    let mut f = Frame::header(&c.exact(HEADER_LEN));
    assert_eq!(f.magic, RES_MAGIC, "response magic");
    f.body = c.exact(f.bodylen as usize);
    f.split()
}

fn req(c: &mut Client, op: u8, key: &[u8], val: &[u8]) -> Resp {
    c.send(pkt(op, key, val, &[], 0));
    let r = read_resp(c);
    assert_eq!(r.op, op);
    r
}

fn auth(c: &mut Client, mech: &[u8], data: &[u8]) -> (u16, Vec<u8>) {
    let r = req(c, SASL_AUTH, mech, data);
    (r.status, r.value)
}

fn bin_stats(c: &mut Client, group: &[u8]) -> HashMap<String, String> {
    c.send(pkt(STAT, group, &[], &[], 0));
    let mut m = HashMap::new();
    loop {
        let r = read_resp(c);
        assert_eq!(r.status, SUCCESS);
        if r.key.is_empty() {
            return m;
        }
        m.insert(
            String::from_utf8_lossy(&r.key).into_owned(),
            String::from_utf8_lossy(&r.value).into_owned(),
        );
    }
}

const FAIL: (u16, &[u8]) = (AUTH_ERROR, b"Auth failure.");

/// The `-S` exchange. With `can_succeed` false (memcached without a user
/// database) only refusals and failures are checked.
fn check_sasl(p: &Proc, can_succeed: bool) {
    let who = if p.memcached {
        "memcached"
    } else {
        "wasmcached"
    };
    let ok = (SUCCESS, b"Authenticated".to_vec());
    let fail = (FAIL.0, FAIL.1.to_vec());

    // ASCII is off: a text command is read as a bad binary header, and the
    // connection closes without an answer.
    let mut t = Client::connect(p.port).with_label(who);
    t.send("get foo\r\nget foo\r\nget foo\r\n");
    t.expect_closed(Duration::from_secs(5));

    let mut c = Client::connect(p.port).with_label(who);
    let r = req(&mut c, SASL_LIST, b"", b"");
    assert_eq!(
        (r.status, r.value.as_slice()),
        (SUCCESS, &b"PLAIN"[..]),
        "{who}"
    );
    assert_eq!(req(&mut c, VERSION, b"", b"").status, SUCCESS, "{who}");
    // Failures keep the connection open and unauthenticated.
    for data in [
        &b"\0alice\0wrong"[..],
        b"\0alice\0secre",
        b"\0alice\0secret\0",
        b"\0mallory\0secret",
        b"bob\0alice\0secret",
        b"garbage",
    ] {
        assert_eq!(auth(&mut c, b"PLAIN", data), fail, "{who}: {data:?}");
    }
    assert_eq!(auth(&mut c, b"BOGUS", b"\0alice\0secret"), fail, "{who}");
    let r = req(&mut c, SASL_STEP, b"PLAIN", b"\0alice\0secret");
    assert_eq!((r.status, r.value), fail, "{who}: step before auth");
    let r = req(&mut c, SASL_AUTH, &[b'M'; 40], b"x");
    assert_eq!(
        (r.status, r.value.as_slice()),
        (EINVAL, &b"Invalid arguments"[..])
    );
    // Anything else before auth: AUTH_ERROR (opaque echoed), then closed.
    c.send(pkt(GET, b"foo", b"", &[], 0x1234_5678));
    let r = read_resp(&mut c);
    assert_eq!((r.op, r.status, r.value.as_slice()), (GET, FAIL.0, FAIL.1));
    assert_eq!(r.opaque, 0x1234_5678);
    c.expect_closed(Duration::from_secs(5));

    // PLAIN without an initial response asks for it.
    let mut c = Client::connect(p.port).with_label(who);
    assert_eq!(
        auth(&mut c, b"PLAIN", b""),
        (AUTH_CONTINUE, vec![]),
        "{who}"
    );
    if !can_succeed {
        return;
    }
    let r = req(&mut c, SASL_STEP, b"PLAIN", b"\0alice\0secret");
    assert_eq!((r.status, r.value), ok, "{who}: step");
    assert_eq!(req(&mut c, GET, b"nokey", b"").status, KEY_ENOENT);

    let mut c = Client::connect(p.port).with_label(who);
    assert_eq!(auth(&mut c, b"PLAIN", b"\0alice\0secret"), ok, "{who}");
    c.send(pkt(SET, b"k", b"v", &[0; 8], 0));
    assert_eq!(read_resp(&mut c).status, SUCCESS);
    let r = req(&mut c, GET, b"k", b"");
    assert_eq!((r.status, r.value.as_slice()), (SUCCESS, &b"v"[..]));
    // libsasl: after a success the next exchange fails (and resets)...
    assert_eq!(auth(&mut c, b"PLAIN", b"\0alice\0secret"), fail, "{who}");
    // ...the one after works (authzid equal to the user and a lower-case
    // mechanism name are fine).
    assert_eq!(auth(&mut c, b"plain", b"alice\0alice\0secret"), ok, "{who}");
    assert_eq!(req(&mut c, GET, b"k", b"").status, SUCCESS);
    // A new exchange drops the authentication.
    assert_eq!(
        auth(&mut c, b"PLAIN", b""),
        (AUTH_CONTINUE, vec![]),
        "{who}"
    );
    c.send(pkt(GET, b"k", b"", &[], 0));
    assert_eq!(read_resp(&mut c).status, AUTH_ERROR, "{who}");
    c.expect_closed(Duration::from_secs(5));

    // A PLAIN step with a wrong password may be retried.
    let mut c = Client::connect(p.port).with_label(who);
    assert_eq!(
        auth(&mut c, b"PLAIN", b""),
        (AUTH_CONTINUE, vec![]),
        "{who}"
    );
    let r = req(&mut c, SASL_STEP, b"PLAIN", b"\0alice\0bad");
    assert_eq!((r.status, r.value), fail, "{who}");
    let r = req(&mut c, SASL_STEP, b"PLAIN", b"\0alice\0secret");
    assert_eq!((r.status, r.value), ok, "{who}");
    // And a step after the exchange finished fails.
    let r = req(&mut c, SASL_STEP, b"PLAIN", b"\0alice\0secret");
    assert_eq!((r.status, r.value), fail, "{who}");

    let mut c = Client::connect(p.port).with_label(who);
    assert_eq!(auth(&mut c, b"PLAIN", b"\0alice\0secret"), ok);
    // Every answered exchange but a CONTINUE counts, as in memcached.
    let st = bin_stats(&mut c, b"");
    assert_eq!(st["auth_cmds"], "16", "{who}");
    assert_eq!(st["auth_errors"], "11", "{who}");
    let set = bin_stats(&mut c, b"settings");
    assert_eq!(set["auth_enabled_sasl"], "yes");
    assert_eq!(set["auth_enabled_ascii"], "no");
}

#[test]
fn sasl_plain() {
    let dir = TempDir::new("sasl");
    let pwdb = dir.file("pwdb", "alice:secret\nbob:pw2\n");
    let p = spawn(&server_bin(), &["-S"], &[("MEMCACHED_SASL_PWDB", &pwdb)]);
    check_sasl(&p, true);
}

#[test]
fn sasl_without_pwdb_never_authenticates() {
    let p = spawn(&server_bin(), &["-S"], &[]);
    let mut c = Client::connect(p.port);
    let (st, body) = auth(&mut c, b"PLAIN", b"\0alice\0secret");
    assert_eq!((st, body.as_slice()), FAIL);
}

/// Where Debian's libsasl looks for mechanism plugins.
#[cfg(target_os = "linux")]
fn libsasl_has_plain() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/sasl2",
        "/usr/lib/aarch64-linux-gnu/sasl2",
        "/usr/lib/sasl2",
    ]
    .iter()
    .any(|d| Path::new(d).join("libplain.so.2").exists())
}

// Compares with Debian's memcached: Linux only.
#[cfg(target_os = "linux")]
#[test]
fn sasl_matches_memcached() {
    // memcached's SASL comes from libsasl: its PLAIN plugin is in Debian's
    // libsasl2-modules (a Recommends of memcached, which the test script
    // does not install), and a user database needs saslpasswd2 (sasl2-bin).
    assert!(
        libsasl_has_plain(),
        "libsasl2-modules (PLAIN) is not installed: ./scripts/test.sh installs it"
    );
    let dir = TempDir::new("sasl-mc");
    let db = dir.0.join("sasldb2");
    let can_succeed = Command::new("saslpasswd2")
        .args(["-p", "-a", "memcached", "-c", "-f"])
        .arg(&db)
        .arg("alice")
        .stdin({
            let f = dir.file("pw", "secret");
            std::fs::File::open(f).unwrap()
        })
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        can_succeed,
        "saslpasswd2 (sasl2-bin) failed or is missing: ./scripts/test.sh installs it"
    );
    dir.file(
        "memcached.conf",
        &format!("mech_list: plain\nsasldb_path: {}\n", db.display()),
    );
    let p = spawn(&memcached_bin(), &["-S"], &[("SASL_CONF_PATH", &dir.0)]);
    check_sasl(&p, can_succeed);
}

#[test]
fn sasl_off_by_default() {
    // Without -S the SASL opcodes are unknown commands and nothing needs auth.
    let p = spawn(&server_bin(), &["-B", "binary"], &[]);
    let mut c = Client::connect(p.port);
    assert_eq!(req(&mut c, SASL_LIST, b"", b"").status, 0x81);
    assert_eq!(req(&mut c, GET, b"k", b"").status, KEY_ENOENT);
    assert_eq!(bin_stats(&mut c, b"settings")["auth_enabled_sasl"], "no");
}
