//! Process behaviour that differs by platform: stop signals, memcached's
//! unix process flags (`-d`, `-u`, `-r`, `-k`) and their refusal where the
//! platform lacks them. Every test here runs on the platform its cfg names;
//! .ci/run runs the unix ones natively and the Windows ones under Wine.

use crate::common;

use common::Server;
use std::time::Duration;

/// `shutdown` with `-A` works on every platform: the process exits 0.
#[test]
fn shutdown_command_exits_cleanly() {
    let mut s = Server::start(&["-A"]);
    let mut c = s.client();
    c.set("k", 0, 0, b"v");
    c.send("shutdown\r\n");
    let st = s
        .wait_exit(Duration::from_secs(20))
        .expect("server still running 20 s after shutdown");
    assert!(st.success(), "exit status {st}");
}

#[cfg(unix)]
fn signal_stops_with_memcached_line(sig: libc::c_int, line: &str) {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
    // SAFETY: kill() on our own child's pid.
    assert_eq!(unsafe { libc::kill(s.pid() as libc::pid_t, sig) }, 0);
    let st = s
        .wait_exit(Duration::from_secs(20))
        .expect("server still running 20 s after the signal");
    assert_eq!(st.code(), Some(0), "exit status {st}");
    assert!(
        s.log().contains(line),
        "no {line:?} in the log:\n{}",
        s.log()
    );
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_with_status_0() {
    signal_stops_with_memcached_line(libc::SIGTERM, "Signal handled: Terminated.");
}

#[cfg(unix)]
#[test]
fn sigint_stops_the_server_with_status_0() {
    signal_stops_with_memcached_line(libc::SIGINT, "Signal handled: Interrupt.");
}

/// `-d`: the started process returns at once, the daemon serves, writes the
/// `-P` pid file, and stops (removing the pid file) on SIGTERM.
#[cfg(unix)]
#[test]
fn daemon_mode_detaches_and_writes_the_pid_file() {
    let dir = std::env::temp_dir().join(format!("wasmcached-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("wasmcached.pid");
    let port = common::free_port();
    let st = std::process::Command::new(common::server_bin())
        .args(["-d", "-l", "127.0.0.1", "-p", &port.to_string(), "-P"])
        .arg(&pidfile)
        .status()
        .unwrap();
    assert!(st.success(), "the launching process exits 0, got {st}");
    let deadline = std::time::Instant::now() + common::START_TIMEOUT;
    let pid: libc::pid_t = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Kill it whatever happens below.
    struct Reap(libc::pid_t);
    impl Drop for Reap {
        fn drop(&mut self) {
            // SAFETY: kill() on a pid we started; harmless if it is gone.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _reap = Reap(pid);
    let mut c = common::Client::connect(port);
    assert!(c.cmd("version").starts_with("VERSION "));
    assert_eq!(c.set("k", 0, 0, b"daemon"), "STORED");
    assert_eq!(c.get("k").as_deref(), Some(&b"daemon"[..]));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        assert!(std::time::Instant::now() < deadline, "daemon still alive");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pidfile.exists(), "pid file left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-u` as root switches to that user (memcached's privilege drop); not as
/// root it is ignored, as memcached ignores it.
#[cfg(target_os = "linux")]
#[test]
fn user_flag_drops_root_privileges() {
    let s = Server::start(&["-u", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let euid: u32 = uid_line.split_whitespace().nth(2).unwrap().parse().unwrap();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if me == 0 {
        assert_eq!(euid, 65534, "still root after -u nobody: {uid_line}");
    } else {
        assert_eq!(euid, me, "{uid_line}");
    }
    let mut c = s.client();
    assert_eq!(c.set("k", 0, 0, b"v"), "STORED");
}

/// On Windows the unix-only flags are refused at start with a reason.
#[cfg(windows)]
#[test]
fn unix_only_flags_are_refused_with_a_reason() {
    for flag in [
        &["-d"][..],
        &["-u", "nobody"],
        &["-r"],
        &["-k"],
        &["-s", "x.sock"],
    ] {
        let out = std::process::Command::new(common::server_bin())
            .args(flag)
            .args(["-l", "127.0.0.1", "-p", &common::free_port().to_string()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{flag:?}: {err}");
        assert!(
            err.contains("is not available on this platform"),
            "{flag:?}: {err}"
        );
    }
}

/// Stops a server while a client has a big pipelined multi-get in flight
/// (tens of MB of answers, most not yet written and many commands not yet
/// parsed): the client still gets every answer, then EOF; new connections
/// are refused; the process exits 0.
fn graceful_stop_finishes_replies_in_flight(stop: impl FnOnce(&mut Server)) {
    let mut s = Server::start(&["-A", "-t", "2", "-m", "256", "-I", "2m"]);
    let mut c = s.client();
    let value = vec![b'x'; 512 * 1024];
    for i in 0..8 {
        assert_eq!(c.set(&format!("big{i}"), i, 0, &value), "STORED");
    }
    let gets = 100;
    let mut req = Vec::new();
    for n in 0..gets {
        req.extend_from_slice(format!("get big{}\r\n", n % 8).as_bytes());
    }
    c.send(req);
    // The first answer has arrived: the rest is queued inside the server.
    let first = c.values();
    assert_eq!(first.len(), 1);
    stop(&mut s);
    for n in 1..gets {
        let v = c.values();
        assert_eq!(v.len(), 1, "answer {n} of {gets}");
        assert_eq!(v[0].data.len(), value.len(), "answer {n}");
        assert_eq!(v[0].key, format!("big{}", n % 8));
    }
    c.expect_closed(Duration::from_secs(20));
    let st = s
        .wait_exit(Duration::from_secs(20))
        .expect("server still running after a graceful stop");
    assert_eq!(st.code(), Some(0), "exit status {st}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", s.port())).is_err(),
        "still accepting after exit"
    );
}

#[test]
fn shutdown_graceful_finishes_replies_in_flight() {
    graceful_stop_finishes_replies_in_flight(|s| {
        let mut admin = s.client();
        admin.send("shutdown graceful\r\n");
    });
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_replies_in_flight() {
    graceful_stop_finishes_replies_in_flight(|s| {
        // SAFETY: kill() on our own child.
        assert_eq!(
            unsafe { libc::kill(s.pid() as libc::pid_t, libc::SIGTERM) },
            0
        );
    });
}
