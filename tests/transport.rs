//! Transports other than the default TCP listener: a unix domain socket
//! (`-s`, with `-a` as its access mask), and several `-l` addresses.

mod common;

#[cfg(unix)]
#[test]
fn unix_socket_serves_with_its_access_mask() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    let dir = std::env::temp_dir().join(format!("wasmcached-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mc.sock");
    // A stale file where the socket goes is replaced, as memcached does.
    std::fs::write(&path, b"stale").unwrap();
    let mut child = std::process::Command::new(common::server_bin())
        .args(["-s"])
        .arg(&path)
        .args(["-a", "0660", "-t", "2"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + common::START_TIMEOUT;
    let stream = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                panic!("no unix socket at {}: {e}", path.display());
            }
        }
    };
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    let mut ask = |req: &[u8], lines: usize| -> Vec<String> {
        w.write_all(req).unwrap();
        (0..lines)
            .map(|_| {
                line.clear();
                r.read_line(&mut line).unwrap();
                line.trim_end().to_string()
            })
            .collect()
    };
    let stored = ask(b"set k 7 0 5\r\nhello\r\n", 1);
    let got = ask(b"get k\r\n", 3);
    let conns = ask(b"stats settings\r\n", 1);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(mode, 0o660, "socket mode {mode:o}");
    assert_eq!(stored, vec!["STORED"]);
    assert_eq!(got, vec!["VALUE k 7 5", "hello", "END"]);
    assert!(conns[0].starts_with("STAT "), "{conns:?}");
}

/// `-l` takes a comma-separated list; every address serves.
#[test]
fn listens_on_every_l_address() {
    let port = common::free_port();
    let port2 = common::free_port();
    let mut child = std::process::Command::new(common::server_bin())
        .args(["-p", &port.to_string(), "-l"])
        .arg(format!("127.0.0.1,127.0.0.2:{port2}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ok = |addr: String| -> bool {
        let deadline = std::time::Instant::now() + common::START_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                use std::io::{Read, Write};
                s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
                s.write_all(b"version\r\n").unwrap();
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).unwrap_or(0);
                return buf[..n].starts_with(b"VERSION ");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    };
    let a = ok(format!("127.0.0.1:{port}"));
    let b = ok(format!("127.0.0.2:{port2}"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(a && b, "127.0.0.1:{port} {a}, 127.0.0.2:{port2} {b}");
}
