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

/// `-U`: a request in one datagram behind memcached's 8-byte frame header
/// (request id, sequence, datagram count, reserved); the reply comes back in
/// as many datagrams of at most 1400 bytes as it needs, each framed with the
/// same request id and its sequence number.
#[test]
fn udp_request_with_multi_datagram_reply() {
    use std::net::UdpSocket;
    let udp_port = common::free_port();
    let s = common::Server::start(&["-U", &udp_port.to_string(), "-t", "2"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let ask = |id: u16, payload: &[u8]| -> (Vec<u8>, Vec<usize>) {
        let mut d = Vec::new();
        for v in [id, 0, 1, 0] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        d.extend_from_slice(payload);
        sock.send_to(&d, ("127.0.0.1", udp_port)).unwrap();
        let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
        let mut sizes = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let (n, _) = sock.recv_from(&mut buf).expect("a reply datagram");
            assert!((8..=1400).contains(&n), "datagram of {n} bytes");
            sizes.push(n);
            let rid = u16::from_be_bytes([buf[0], buf[1]]);
            let seq = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            let total = u16::from_be_bytes([buf[4], buf[5]]) as usize;
            assert_eq!(rid, id, "request id echoed");
            parts.resize(total, None);
            parts[seq] = Some(buf[8..n].to_vec());
            if parts.iter().all(|p| p.is_some()) {
                return (parts.into_iter().flatten().flatten().collect(), sizes);
            }
        }
    };
    let value = vec![b'v'; 5000];
    let mut set = b"set big 3 0 5000\r\n".to_vec();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(ask(7, &set).0, b"STORED\r\n");
    let (reply, sizes) = ask(8, b"get big\r\n");
    let mut want = b"VALUE big 3 5000\r\n".to_vec();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\nEND\r\n");
    assert_eq!(reply, want);
    assert_eq!(sizes.len(), 4, "5025 bytes in datagrams of 1400: {sizes:?}");
    // What UDP stored is there for TCP clients too.
    let mut c = s.client();
    assert_eq!(c.get("big").as_deref(), Some(&value[..]));
    assert_eq!(s.stats("settings")["udpport"], udp_port.to_string());
    // stats conns lists the UDP socket as memcached does.
    let conns = s.stats("conns");
    let udp_addr = format!("udp:127.0.0.1:{udp_port}");
    let id = conns
        .iter()
        .find(|(k, v)| k.ends_with(":addr") && **v == udp_addr)
        .map(|(k, _)| k.trim_end_matches(":addr").to_string())
        .unwrap_or_else(|| panic!("no {udp_addr} in {conns:?}"));
    assert_eq!(conns[&format!("{id}:state")], "conn_read");
}
