//! TLS (`-Z`) over real sockets, with memcached's option names: a rustls
//! client (and Debian's `openssl s_client` on Linux) against the test
//! certificates in tests/tls/ (a throw-away CA, a server certificate for
//! 127.0.0.1 and a client certificate; private keys for tests only).

use crate::common;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn certs() -> PathBuf {
    common::workspace_root().join("tests/tls")
}

fn cert(name: &str) -> String {
    certs().join(name).to_string_lossy().into_owned()
}

fn ssl_opts(extra: &str) -> String {
    format!(
        "ssl_chain_cert={},ssl_key={}{extra}",
        cert("server.pem"),
        cert("server.key")
    )
}

/// A server process, killed on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new(common::server_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A server with TLS on `port` and the test certificates, plus `extra`.
fn spawn_tls(port: u16, extra: &[&str]) -> Proc {
    let (opts, port) = (ssl_opts(""), port.to_string());
    let mut args = vec!["-Z", "-o", &opts, "-p", &port, "-l", "127.0.0.1"];
    args.extend_from_slice(extra);
    spawn(&args)
}

fn client_config(with_client_cert: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(if with_client_cert {
        let chain = CertificateDer::pem_file_iter(cert("client.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(cert("client.key")).unwrap();
        b.with_client_auth_cert(chain, key).unwrap()
    } else {
        b.with_no_client_auth()
    })
}

type Tls = BufReader<StreamOwned<ClientConnection, TcpStream>>;

fn tls_connect(port: u16, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(common::IO_TIMEOUT))?;
    sock.set_write_timeout(Some(common::IO_TIMEOUT))?;
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    Ok(BufReader::new(StreamOwned::new(conn, sock)))
}

/// Waits until the TLS port answers `version`.
fn tls_ready(port: u16, config: Arc<ClientConfig>) -> Tls {
    let deadline = Instant::now() + common::START_TIMEOUT;
    loop {
        if let Ok(mut c) = tls_connect(port, config.clone()) {
            if c.get_mut().write_all(b"version\r\n").is_ok() {
                let mut line = String::new();
                if c.read_line(&mut line).is_ok() && line.starts_with("VERSION ") {
                    return c;
                }
            }
        }
        assert!(Instant::now() < deadline, "no TLS answer on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn line(c: &mut Tls) -> String {
    let mut l = String::new();
    c.read_line(&mut l).expect("read a line over TLS");
    l
}

#[test]
fn tls_serves_the_text_protocol_and_a_plain_listener_beside_it() {
    let port = common::free_port();
    let plain = common::free_port();
    let _p = spawn_tls(port, &["-l", &format!("notls:127.0.0.1:{plain}")]);
    let mut c = tls_ready(port, client_config(false));
    c.get_mut().write_all(b"set k 7 0 5\r\nhello\r\n").unwrap();
    assert_eq!(line(&mut c), "STORED\r\n");
    // A value larger than one TLS record, and many pipelined commands in
    // one write: decrypted input beyond one read must not stall.
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut msg = format!("set big 1 0 {}\r\n", big.len()).into_bytes();
    msg.extend_from_slice(&big);
    msg.extend_from_slice(b"\r\n");
    for _ in 0..200 {
        msg.extend_from_slice(b"get k\r\n");
    }
    msg.extend_from_slice(b"get big\r\n");
    c.get_mut().write_all(&msg).unwrap();
    assert_eq!(line(&mut c), "STORED\r\n");
    for _ in 0..200 {
        assert_eq!(line(&mut c), "VALUE k 7 5\r\n");
        assert_eq!(line(&mut c), "hello\r\n");
        assert_eq!(line(&mut c), "END\r\n");
    }
    assert_eq!(line(&mut c), format!("VALUE big 1 {}\r\n", big.len()));
    let mut got = vec![0u8; big.len() + 2];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got[..big.len()], &big[..]);
    assert_eq!(line(&mut c), "END\r\n");
    c.get_mut().write_all(b"refresh_certs\r\n").unwrap();
    assert_eq!(line(&mut c), "OK\r\n");

    // The notls: listener speaks plain text to the same cache.
    let mut p = common::Client::connect(plain);
    assert_eq!(p.get("k").as_deref(), Some(&b"hello"[..]));

    // A plain client on the TLS port gets no memcached answer.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"version\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert!(
        !buf[..n].starts_with(b"VERSION"),
        "plain text answered on the TLS port"
    );
}

/// Large values over TLS, spliced between the small replies around them
/// (a large value's own path, `Conn::complete_direct`): every byte arrives,
/// in request order, whether the value leaves at once or waits behind
/// earlier output.
#[test]
fn large_values_over_tls_keep_their_place_among_small_replies() {
    let port = common::free_port();
    let _p = spawn_tls(port, &[]);
    let mut c = tls_ready(port, client_config(false));
    // Sizes below, at and above a TLS record (16 KiB) and rustls's 64 KiB
    // of buffered records.
    let values: Vec<Vec<u8>> = [1000usize, 16_384, 20_000, 70_000]
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| b'a' + ((i + j) % 26) as u8).collect())
        .collect();
    let mut setup = Vec::new();
    for (i, v) in values.iter().enumerate() {
        setup.extend_from_slice(format!("set big{i} {i} 0 {}\r\n", v.len()).as_bytes());
        setup.extend_from_slice(v);
        setup.extend_from_slice(b"\r\n");
    }
    setup.extend_from_slice(b"set k 0 0 2\r\nhi\r\n");
    c.get_mut().write_all(&setup).unwrap();
    for _ in 0..=values.len() {
        assert_eq!(line(&mut c), "STORED\r\n");
    }
    let mut want = Vec::new();
    let mut msg = Vec::new();
    for round in 0..30 {
        let i = round % values.len();
        msg.extend_from_slice(format!("get k\r\nget big{i}\r\nmg k v\r\n").as_bytes());
        want.extend_from_slice(b"VALUE k 0 2\r\nhi\r\nEND\r\n");
        want.extend_from_slice(format!("VALUE big{i} {i} {}\r\n", values[i].len()).as_bytes());
        want.extend_from_slice(&values[i]);
        want.extend_from_slice(b"\r\nEND\r\nVA 2\r\nhi\r\n");
    }
    // One request per write (a value can leave as soon as it is answered),
    // then all of them in one write (values queue behind unwritten output).
    for req in msg.split_inclusive(|&b| b == b'\n') {
        c.get_mut().write_all(req).unwrap();
    }
    c.get_mut().write_all(&msg).unwrap();
    let mut got = vec![0u8; 2 * want.len()];
    c.read_exact(&mut got).unwrap();
    assert!(
        got[..want.len()] == want[..],
        "replies one at a time differ"
    );
    assert!(got[want.len()..] == want[..], "pipelined replies differ");
}

/// Issue 17: with `-Z`, `stats` has memcached's names in memcached's order
/// (its TLS figures included), compared with Debian's memcached started
/// with the same flags; wasmcached counts failed handshakes and times
/// `refresh_certs`.
#[cfg(target_os = "linux")]
#[test]
fn stats_names_with_tls_match_memcached() {
    fn start(bin: &std::path::Path, extra: &[&str]) -> (Proc, u16, common::Client) {
        let (port, plain) = (common::free_port(), common::free_port());
        let mut args = vec![
            "-Z".to_string(),
            "-o".into(),
            ssl_opts(""),
            "-p".into(),
            port.to_string(),
            "-l".into(),
            "127.0.0.1".into(),
            "-l".into(),
            format!("notls:127.0.0.1:{plain}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let p = Proc(
            Command::new(bin)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = common::Client::try_connect(plain) {
                if c.cmd("version").starts_with("VERSION") {
                    return (p, port, c);
                }
            }
            assert!(Instant::now() < deadline, "{} did not start", bin.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fn names(c: &mut common::Client) -> Vec<String> {
        c.send("stats\r\n");
        c.until_end()
            .iter()
            .map(|l| l.split(' ').nth(1).expect("STAT name value").to_string())
            .collect()
    }
    // memcached ignores -u unless it runs as root, and needs it then.
    let (_m, _, mut theirs) = start(&common::memcached_bin(), &["-u", "root"]);
    let (_w, tls_port, mut ours) = start(&common::server_bin(), &[]);
    let want = names(&mut theirs);
    assert!(
        want.contains(&"ssl_handshake_errors".to_string()),
        "{want:?}"
    );
    assert_eq!(names(&mut ours), want);
    if common::testing_memcached() {
        return;
    }
    // A plain-text client on the TLS port fails the handshake.
    let mut raw = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"version\r\n").unwrap();
    let _ = raw.read(&mut [0u8; 64]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ours.stats("")["ssl_handshake_errors"] != "1" {
        assert!(Instant::now() < deadline, "{:?}", ours.stats(""));
        std::thread::sleep(Duration::from_millis(50));
    }
    let since = |c: &mut common::Client| -> u64 {
        c.stats("")["time_since_server_cert_refresh"]
            .parse()
            .unwrap()
    };
    // As in memcached: counted from the server clock's start until a refresh.
    assert!(since(&mut ours) >= 60);
    assert_eq!(ours.cmd("refresh_certs"), "OK");
    assert!(since(&mut ours) <= 2);
}

#[test]
fn client_certificates_are_required_with_verify_mode_2() {
    let port = common::free_port();
    let _p = spawn(&[
        "-Z",
        "-o",
        &ssl_opts(&format!(
            ",ssl_ca_cert={},ssl_verify_mode=2",
            cert("ca.pem")
        )),
        "-p",
        &port.to_string(),
        "-l",
        "127.0.0.1",
    ]);
    let mut c = tls_ready(port, client_config(true));
    c.get_mut().write_all(b"set k 0 0 1\r\nx\r\n").unwrap();
    assert_eq!(line(&mut c), "STORED\r\n");
    // Without a client certificate the handshake fails.
    let mut anon = tls_connect(port, client_config(false)).unwrap();
    let r = anon
        .get_mut()
        .write_all(b"version\r\n")
        .and_then(|_| anon.read_line(&mut String::new()));
    assert!(
        !matches!(r, Ok(n) if n > 0),
        "a client without a certificate was served"
    );
}

#[test]
fn bad_tls_settings_are_refused_at_start() {
    let run = |args: &[&str]| {
        let out = Command::new(common::server_bin())
            .args(args)
            .args(["-l", "127.0.0.1", "-p", &common::free_port().to_string()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["-Z"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("ssl_chain_cert"), "{err}");
    let (code, err) = run(&["-o", &ssl_opts("")]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("needs -Z"), "{err}");
    let (code, err) = run(&["-Z", "-o", &ssl_opts(",ssl_verify_mode=2")]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("ssl_ca_cert"), "{err}");
    let missing = format!(
        "ssl_chain_cert=/nonexistent.pem,ssl_key={}",
        cert("server.key")
    );
    let (code, err) = run(&["-Z", "-o", &missing]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("ssl_chain_cert"), "{err}");
}

/// Debian's openssl s_client, a TLS client that is not ours.
#[cfg(target_os = "linux")]
#[test]
fn openssl_s_client_talks_to_it() {
    let port = common::free_port();
    let _p = spawn_tls(port, &[]);
    tls_ready(port, client_config(false));
    let mut s = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-CAfile", &cert("ca.pem"), "-verify_return_error", "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client (Debian package openssl)");
    s.stdin
        .as_mut()
        .unwrap()
        .write_all(b"set k 0 0 2\r\nhi\r\nget k\r\nquit\r\n")
        .unwrap();
    let mut out = String::new();
    s.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = s.wait();
    assert_eq!(out, "STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
}
