//! The kit's protocol checks: the plugin behind a real server (started in
//! this process on a loopback port), spoken to in the text, meta and binary
//! protocols, so that what a client sees is checked, not only the ABI
//! records. The renderers read fields the ABI checks do not look at: the
//! exptime of an answer for `mg t` and `me`, the FETCHED bit for `mg h`, the
//! last access for `mg l`, the CAS of a binary answer.
//!
//! The server clock runs for real here, so TTLs are compared with a few
//! seconds of slack.

use super::report::{self, Check, Options, Outcome, Report, Selected, Verdict};
use crate::server::Server;
use crate::settings::Settings;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// How long any one answer may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

type WireFn = fn(&mut Wire) -> Outcome;

/// The protocol checks, in order.
pub(super) const WIRE_CHECKS: &[Check<WireFn>] = &[
    Check {
        name: "wire_text_set_get",
        basic: true,
        about: "text set, get and delete as a client sees them",
        run: text_set_get,
    },
    Check {
        name: "wire_binary_get",
        basic: true,
        about: "a binary GET answers the value, flags and a CAS; a miss, status 1",
        run: binary_get,
    },
    Check {
        name: "wire_text_gets_cas",
        basic: false,
        about: "text gets answers a CAS that cas accepts, and a stale one EXISTS",
        run: text_gets_cas,
    },
    Check {
        name: "wire_meta_get_flags",
        basic: false,
        about: "mg v s f c k echoes what ms stored",
        run: meta_get_flags,
    },
    Check {
        name: "wire_meta_ttl",
        basic: false,
        about: "mg t and me show the remaining TTL, t-1 for no expiry",
        run: meta_ttl,
    },
    Check {
        name: "wire_meta_touch_ttl",
        basic: false,
        about: "mg T t touches and shows the new TTL",
        run: meta_touch_ttl,
    },
    Check {
        name: "wire_meta_arithmetic_ttl",
        basic: false,
        about: "ma t v answers the new number and the remaining TTL",
        run: meta_arithmetic_ttl,
    },
    Check {
        name: "wire_meta_hit_before_and_last_access",
        basic: false,
        about: "mg h l show whether the item was fetched before and its last access",
        run: meta_hit_before,
    },
    Check {
        name: "wire_text_gat",
        basic: false,
        about: "gat answers the value and sets the TTL mg t then shows",
        run: text_gat,
    },
];

/// A text connection to the server under check.
pub struct Wire {
    addr: SocketAddr,
    text: BufReader<TcpStream>,
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

impl Wire {
    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.text
            .get_mut()
            .write_all(bytes)
            .map_err(|e| format!("sending {:?}: {e}", String::from_utf8_lossy(bytes)))
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = Vec::new();
        self.text
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading an answer: {e}"))?;
        if !line.ends_with(b"\r\n") {
            return Err(format!(
                "expected a line ending in \\r\\n, got {:?}",
                String::from_utf8_lossy(&line)
            ));
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Sends one command line and reads one answer line.
    fn cmd(&mut self, line: &str) -> Result<String, String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.line()
    }

    /// Sends a command with a data block and reads one answer line.
    fn store(&mut self, line: &str, data: &[u8]) -> Result<String, String> {
        let mut b = format!("{line}\r\n").into_bytes();
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
        self.send(&b)?;
        self.line()
    }

    /// Expects `want` as the answer to `line`.
    fn expect(&mut self, line: &str, want: &str) -> Result<(), String> {
        let got = self.cmd(line)?;
        same(line, want, &got)
    }

    /// Reads the data block of a `VALUE`/`VA` answer of `len` bytes.
    fn data(&mut self, len: usize) -> Result<Vec<u8>, String> {
        let mut b = vec![0; len + 2];
        self.text
            .read_exact(&mut b)
            .map_err(|e| format!("reading a data block: {e}"))?;
        if !b.ends_with(b"\r\n") {
            return Err("a data block did not end in \\r\\n".into());
        }
        b.truncate(len);
        Ok(b)
    }
}

fn same(what: &str, want: &str, got: &str) -> Result<(), String> {
    if want == got {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

/// The value of the flag `f` (e.g. `t`, `c`) in a meta answer line.
fn flag<'a>(line: &'a str, f: &str) -> Option<&'a str> {
    line.split(' ').skip(1).find_map(|t| t.strip_prefix(f))
}

/// A TTL flag's value: a remaining TTL within `slack` seconds below `want`.
fn ttl(what: &str, line: &str, f: &str, want: i64) -> Result<(), String> {
    let got = flag(line, f).and_then(|v| v.parse::<i64>().ok());
    let ok = match got {
        Some(-1) => want == -1,
        Some(t) => want >= 0 && (want - 3..=want).contains(&t),
        None => false,
    };
    if ok {
        Ok(())
    } else if want == -1 {
        Err(format!(
            "{what}: expected {f}-1 (never expires), got {line:?}"
        ))
    } else {
        Err(format!(
            "{what}: expected {f}{want} (the TTL set), got {line:?}"
        ))
    }
}

/// Starts the server for `plugin` (None: the embedded default store), runs
/// the protocol checks `opts` select, stops the server.
pub fn run(plugin: Option<&Path>, opts: &Options, report: &mut Report) {
    let chosen: Vec<(&Check<WireFn>, Selected)> = WIRE_CHECKS
        .iter()
        .map(|c| (c, opts.select(c.name, c.basic)))
        .collect();
    // No server when no protocol check runs: nothing to start or fail.
    if !chosen.iter().any(|(_, s)| *s == Selected::Run) {
        for (c, selected) in chosen {
            selected.report_skip(c.name, report);
        }
        return;
    }
    let mut args: Vec<std::ffi::OsString> = ["wasmcached", "-l", "127.0.0.1", "-p", "0", "-U", "0"]
        .iter()
        .chain(&["-t", "1", "-A", "-m", "64"])
        .map(Into::into)
        .collect();
    if let Some(p) = plugin {
        args.push("--plugin".into());
        args.push(p.into());
    }
    let started = Settings::parse_from(args).and_then(|settings| {
        // The ABI checks set the clock by hand; the server runs it for real.
        crate::clock::set_now_for_check(0);
        Server::start(settings)
    });
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            report.record(
                "wire_server_start",
                Err(format!("expected the plugin to serve, got: {e:#}")),
            );
            return;
        }
    };
    let Some(&addr) = server.local_addrs().first() else {
        println!("FAIL wire_server_start: expected a TCP listener, got none");
        report.failed += 1;
        return;
    };
    let thread = std::thread::spawn(move || server.run());
    for (c, selected) in chosen {
        if selected != Selected::Run {
            selected.report_skip(c.name, report);
            continue;
        }
        // Each check's log starts here: what the shards logged while
        // starting, or between checks, belongs to no check.
        report::log_start();
        let outcome = connect(addr)
            .map_err(|e| format!("expected a connection, got: {e}"))
            .and_then(|s| {
                let mut w = Wire {
                    addr,
                    text: BufReader::new(s),
                };
                // Every check starts from an empty cache.
                w.expect("flush_all", "OK")?;
                (c.run)(&mut w)
            });
        report.record(c.name, outcome);
    }
    if let Ok(mut s) = connect(addr) {
        let _ = s.write_all(b"shutdown\r\n");
    }
    if let Ok(Err(e)) = thread.join() {
        println!("FAIL wire_server_stop: expected a clean stop, got: {e:#}");
        report.failed += 1;
    }
}

fn text_set_get(w: &mut Wire) -> Outcome {
    same("set", "STORED", &w.store("set wire:a 7 0 5", b"hello")?)?;
    w.expect("get wire:a", "VALUE wire:a 7 5")?;
    same("get data", "hello", &String::from_utf8_lossy(&w.data(5)?))?;
    same("get end", "END", &w.line()?)?;
    w.expect("get wire:none", "END")?;
    same("delete", "DELETED", &w.cmd("delete wire:a")?)?;
    w.expect("get wire:a", "END")?;
    Ok(Verdict::Pass)
}

fn text_gets_cas(w: &mut Wire) -> Outcome {
    same("set", "STORED", &w.store("set wire:c 0 0 1", b"1")?)?;
    let line = w.cmd("gets wire:c")?;
    let cas: u64 = line
        .strip_prefix("VALUE wire:c 0 1 ")
        .and_then(|c| c.parse().ok())
        .filter(|&c| c != 0)
        .ok_or_else(|| format!("gets: expected \"VALUE wire:c 0 1 <cas>\", got {line:?}"))?;
    w.data(1)?;
    same("gets end", "END", &w.line()?)?;
    let stale = format!("cas wire:c 0 0 1 {}", cas + 1);
    same(&stale, "EXISTS", &w.store(&stale, b"2")?)?;
    let fresh = format!("cas wire:c 0 0 1 {cas}");
    same(&fresh, "STORED", &w.store(&fresh, b"3")?)?;
    Ok(Verdict::Pass)
}

/// `mg` with value, size, flags, CAS and key flags echoes what was stored.
fn meta_get_flags(w: &mut Wire) -> Outcome {
    same("ms", "HD", &w.store("ms wire:m 3 F9", b"abc")?)?;
    let line = w.cmd("gets wire:m")?;
    let cas = line.rsplit(' ').next().unwrap_or("").to_string();
    w.data(3)?;
    w.line()?;
    let want = format!("VA 3 s3 f9 c{cas} kwire:m");
    w.expect("mg wire:m v s f c k", &want)?;
    same("mg data", "abc", &String::from_utf8_lossy(&w.data(3)?))?;
    w.expect("mg wire:none v", "EN")?;
    Ok(Verdict::Pass)
}

/// `mg t` and `me` show the remaining TTL, `t-1` for an item that never
/// expires: from the answer's exptime (ABI v1) or prev_exptime (v2+).
fn meta_ttl(w: &mut Wire) -> Outcome {
    same("ms", "HD", &w.store("ms wire:t 1 T100", b"x")?)?;
    ttl("mg wire:t t", &w.cmd("mg wire:t t")?, "t", 100)?;
    // memcached 1.6.18's `me` prints now - exptime: negative for a live item.
    let me = w.cmd("me wire:t")?;
    let exp = flag(&me, "exp=").and_then(|v| v.parse::<i64>().ok());
    if !exp.is_some_and(|e| (-100..=-97).contains(&e)) {
        return Err(format!(
            "me wire:t: expected exp=-100 (now - exptime), got {me:?}"
        ));
    }
    same("set", "STORED", &w.store("set wire:t2 0 200 1", b"y")?)?;
    ttl("mg wire:t2 t", &w.cmd("mg wire:t2 t")?, "t", 200)?;
    same("set", "STORED", &w.store("set wire:never 0 0 1", b"z")?)?;
    ttl("mg wire:never t", &w.cmd("mg wire:never t")?, "t", -1)?;
    Ok(Verdict::Pass)
}

/// `mg T t` touches and shows the new TTL.
fn meta_touch_ttl(w: &mut Wire) -> Outcome {
    same("ms", "HD", &w.store("ms wire:tt 1 T100", b"x")?)?;
    ttl("mg wire:tt T300 t", &w.cmd("mg wire:tt T300 t")?, "t", 300)?;
    ttl("mg wire:tt t", &w.cmd("mg wire:tt t")?, "t", 300)?;
    Ok(Verdict::Pass)
}

/// `ma t v` answers the new number and the item's remaining TTL.
fn meta_arithmetic_ttl(w: &mut Wire) -> Outcome {
    same("ms", "HD", &w.store("ms wire:n 1 T100", b"5")?)?;
    let line = w.cmd("ma wire:n t v")?;
    if !line.starts_with("VA 1 ") {
        return Err(format!(
            "ma wire:n t v: expected \"VA 1 t100\", got {line:?}"
        ));
    }
    ttl("ma wire:n t v", &line, "t", 100)?;
    same("ma data", "6", &String::from_utf8_lossy(&w.data(1)?))?;
    Ok(Verdict::Pass)
}

/// `mg h l`: whether the item was fetched before (FETCHED), and seconds
/// since its last access.
fn meta_hit_before(w: &mut Wire) -> Outcome {
    same("set", "STORED", &w.store("set wire:h 0 0 1", b"x")?)?;
    let first = w.cmd("mg wire:h h l")?;
    if flag(&first, "h") != Some("0") {
        return Err(format!(
            "mg wire:h h l (first fetch): expected h0, got {first:?}"
        ));
    }
    let l = flag(&first, "l").and_then(|v| v.parse::<u32>().ok());
    if l.is_none_or(|l| l > 3) {
        return Err(format!("mg wire:h h l: expected l0, got {first:?}"));
    }
    let second = w.cmd("mg wire:h h")?;
    same("mg wire:h h (second fetch)", "HD h1", &second)?;
    Ok(Verdict::Pass)
}

/// `gat` answers the value and sets the TTL that `mg t` then shows.
fn text_gat(w: &mut Wire) -> Outcome {
    same("set", "STORED", &w.store("set wire:g 4 0 2", b"gg")?)?;
    w.expect("gat 500 wire:g", "VALUE wire:g 4 2")?;
    w.data(2)?;
    same("gat end", "END", &w.line()?)?;
    ttl("mg wire:g t", &w.cmd("mg wire:g t")?, "t", 500)?;
    Ok(Verdict::Pass)
}

/// A binary-protocol GET answers the value, flags and a CAS; a miss answers
/// status 1 (key not found).
fn binary_get(w: &mut Wire) -> Outcome {
    same("set", "STORED", &w.store("set wire:b 11 0 3", b"bin")?)?;
    let mut s = connect(w.addr).map_err(|e| format!("expected a connection, got: {e}"))?;
    let (status, extras, value, cas) = binary_request(&mut s, b"wire:b")?;
    if status != 0 || extras != 11u32.to_be_bytes() || value != b"bin" || cas == 0 {
        return Err(format!(
            "binary GET wire:b: expected status 0, flags 11, value \"bin\" and a CAS, got \
             status {status}, extras {extras:?}, value {:?}, cas {cas}",
            String::from_utf8_lossy(&value)
        ));
    }
    let (status, ..) = binary_request(&mut s, b"wire:none")?;
    if status != 1 {
        return Err(format!(
            "binary GET of a missing key: expected status 1, got {status}"
        ));
    }
    Ok(Verdict::Pass)
}

/// Sends one binary GET of `key`; returns (status, extras, value, cas).
fn binary_request(s: &mut TcpStream, key: &[u8]) -> Result<(u16, Vec<u8>, Vec<u8>, u64), String> {
    let mut req = vec![0x80, 0x00];
    req.extend_from_slice(&(key.len() as u16).to_be_bytes());
    req.extend_from_slice(&[0, 0, 0, 0]); // extras length, data type, vbucket
    req.extend_from_slice(&(key.len() as u32).to_be_bytes());
    req.extend_from_slice(&[0; 12]); // opaque, cas
    req.extend_from_slice(key);
    s.write_all(&req)
        .map_err(|e| format!("sending a binary GET: {e}"))?;
    let mut h = [0u8; 24];
    s.read_exact(&mut h)
        .map_err(|e| format!("reading a binary answer: {e}"))?;
    if h[0] != 0x81 {
        return Err(format!("binary GET: expected magic 0x81, got {:#x}", h[0]));
    }
    let key_len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let extras_len = h[4] as usize;
    let status = u16::from_be_bytes([h[6], h[7]]);
    let body_len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    let cas = u64::from_be_bytes(h[16..24].try_into().expect("8 bytes"));
    let mut body = vec![0; body_len];
    s.read_exact(&mut body)
        .map_err(|e| format!("reading a binary answer's body: {e}"))?;
    if extras_len + key_len > body_len {
        return Err("binary GET: extras and key longer than the body".into());
    }
    let value = body.split_off(extras_len + key_len);
    body.truncate(extras_len);
    Ok((status, body, value, cas))
}
