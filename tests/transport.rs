//! Transports other than the default TCP listener: a unix domain socket
//! (`-s`, with `-a` as its access mask), and several `-l` addresses.

use crate::common;

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

/// Binary-protocol requests over UDP (issue 17): memcached picks each
/// datagram's protocol by its first byte, whatever `-B` says, and answers a
/// binary request with a framed binary response (a quiet miss with an empty
/// frame). The same datagrams go to Debian's memcached and to wasmcached;
/// the answers must be equal byte for byte, but for the CAS fields and the
/// version string.
#[cfg(target_os = "linux")]
#[test]
fn udp_binary_requests_answer_as_memcached() {
    use std::net::UdpSocket;
    fn bin(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
        let body = extras.len() + key.len() + value.len();
        let mut p = vec![0x80, op];
        p.extend_from_slice(&(key.len() as u16).to_be_bytes());
        p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
        p.extend_from_slice(&(body as u32).to_be_bytes());
        p.extend_from_slice(&opaque.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(extras);
        p.extend_from_slice(key);
        p.extend_from_slice(value);
        p
    }
    let set_extras = [0, 0, 0, 5, 0, 0, 0, 0];
    let incr_extras = [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("set", bin(0x01, b"u:k", &set_extras, b"val", 1)),
        ("get hit", bin(0x00, b"u:k", &[], &[], 2)),
        ("getk hit", bin(0x0c, b"u:k", &[], &[], 3)),
        ("get miss", bin(0x00, b"u:none", &[], &[], 4)),
        ("getq miss", bin(0x09, b"u:none", &[], &[], 5)),
        ("set number", bin(0x01, b"u:n", &set_extras, b"40", 6)),
        ("incr", bin(0x05, b"u:n", &incr_extras, &[], 7)),
        ("delete", bin(0x04, b"u:k", &[], &[], 8)),
        ("delete miss", bin(0x04, b"u:k", &[], &[], 9)),
        ("noop", bin(0x0a, &[], &[], &[], 10)),
        ("unknown opcode", bin(0x7e, &[], &[], &[], 11)),
        ("text get", b"get u:n\r\n".to_vec()),
        ("version", bin(0x0b, &[], &[], &[], 12)),
    ];
    // -B ascii: the datagram's first byte still decides.
    let mut answers: Vec<Vec<Vec<u8>>> = Vec::new();
    for reference in [true, false] {
        let port = common::free_port();
        let args = ["-U", &port.to_string(), "-t", "1", "-B", "ascii"];
        let _s = if reference {
            common::Server::start_memcached(&args)
        } else {
            common::Server::start(&args)
        };
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        let mut got = Vec::new();
        for (i, (what, payload)) in requests.iter().enumerate() {
            let id = 100 + i as u16;
            let mut d = Vec::new();
            for v in [id, 0, 1, 0] {
                d.extend_from_slice(&v.to_be_bytes());
            }
            d.extend_from_slice(payload);
            sock.send_to(&d, ("127.0.0.1", port)).unwrap();
            let mut buf = [0u8; 2048];
            let n = match sock.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(e) => panic!("{what}: no answer from {}: {e}", _s.name()),
            };
            assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), id, "{what}");
            let mut a = buf[..n].to_vec();
            if a.len() >= 8 + 24 && a[8] == 0x81 {
                a[8 + 16..8 + 24].fill(0); // the CAS
                if *what == "version" {
                    a.truncate(8 + 8); // magic, opcode, status
                }
            }
            got.push(a);
        }
        answers.push(got);
    }
    for (i, (what, _)) in requests.iter().enumerate() {
        assert_eq!(
            answers[1][i], answers[0][i],
            "{what}: wasmcached vs memcached"
        );
    }
}
