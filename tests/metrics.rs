//! `/metrics` (`-o metrics_listen=HOST:PORT`) over real sockets: the
//! families memcached_exporter exports, under its names, types and labels
//! (checked against the list kept in tests/data/memcached_exporter_metrics.txt),
//! with the values the test's own commands caused; OpenMetrics when asked;
//! `promtool check metrics` on the output; and Debian's Prometheus
//! scraping the server and answering queries about it (those two where
//! Debian's packages are, on Linux).

use crate::common::{self, Client, Server};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
#[cfg(target_os = "linux")]
use std::process::Stdio;
use std::time::Duration;
#[cfg(target_os = "linux")]
use std::time::Instant;

/// One HTTP exchange: the status code, the headers (lower-case names) and
/// the body.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

fn http(port: u16, request: &str) -> Answer {
    try_http(port, request).unwrap_or_else(|e| panic!("{request:?} to port {port}: {e}"))
}

fn try_http(port: u16, request: &str) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

fn get_request(path: &str, accept: Option<&str>) -> String {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{accept}\r\n")
}

fn get(port: u16, path: &str, accept: Option<&str>) -> Answer {
    http(port, &get_request(path, accept))
}

/// A server with `/metrics` on a port of its own.
fn start(extra: &[&str]) -> (Server, u16) {
    let port = common::free_port();
    let opt = format!("metrics_listen=127.0.0.1:{port}");
    let mut args = vec!["-t", "2", "-o", &opt];
    args.extend_from_slice(extra);
    (Server::start(&args), port)
}

/// One family of memcached_exporter, as the list in the repo has it.
struct ExporterFamily {
    name: String,
    kind: String,
    labels: Vec<String>,
    /// Only memcached built with extstore, running as a proxy, or with an
    /// option (the list's fifth column) has its stats.
    optional: bool,
}

fn exporter_families() -> Vec<ExporterFamily> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/memcached_exporter_metrics.txt");
    let text = std::fs::read_to_string(&path).expect("the list of memcached_exporter's names");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 4, "a bad line in {}: {l}", path.display());
            ExporterFamily {
                name: f[0].to_string(),
                kind: f[1].to_string(),
                labels: match f[2] {
                    "-" => Vec::new(),
                    l => l.split(',').map(str::to_string).collect(),
                },
                optional: f[3].starts_with("extstore") || f[3].starts_with("proxy") || f.len() > 4,
            }
        })
        .collect()
}

/// The `# TYPE` of every family in a text exposition.
fn types(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// The value of the sample written exactly as `series` (name and labels).
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{body}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Label names of the samples of `family`.
fn label_names(body: &str, family: &str) -> Vec<String> {
    let line = body
        .lines()
        .find(|l| !l.starts_with('#') && l.starts_with(&format!("{family}{{")))
        .unwrap_or_else(|| panic!("no labelled sample of {family}"));
    let labels = &line[family.len() + 1..line.find('}').unwrap()];
    let mut names: Vec<String> = labels
        .split("\",")
        .map(|kv| kv.split('=').next().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// A few of everything: hits, misses, sets, deletes, incr, touch, cas.
fn traffic(c: &mut Client) {
    for i in 0..10 {
        assert_eq!(c.set(&format!("k{i}"), 0, 0, b"value"), "STORED");
    }
    assert_eq!(c.set("big", 0, 0, &vec![b'x'; 5000]), "STORED");
    for i in 0..7 {
        c.cmd(&format!("get k{i}"));
        c.until_end();
    }
    for i in 0..3 {
        c.send(format!("get missing{i}\r\n"));
        c.until_end();
    }
    assert_eq!(c.cmd("delete k9"), "DELETED");
    assert_eq!(c.cmd("delete nope"), "NOT_FOUND");
    assert_eq!(c.set("n", 0, 0, b"5"), "STORED");
    assert_eq!(c.cmd("incr n 2"), "7");
    assert_eq!(c.cmd("touch k1 100"), "TOUCHED");
}

#[test]
fn memcached_exporters_families_carry_the_values_the_commands_caused() {
    let (s, port) = start(&[]);
    let mut c = s.client();
    c.send("get warmup\r\n");
    c.until_end();
    traffic(&mut c);
    // The server's start-up probe may still be closing on a loaded
    // machine: the scrape sees the connections between these two counts.
    let connections_before = c.stat("curr_connections");
    let a = get(port, "/metrics", None);
    let connections_after = c.stat("curr_connections");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = &a.body;
    let got = types(body);
    // Every family memcached_exporter exports from a memcached like Debian's
    // (no extstore, no proxy), with its type and labels.
    let mut missing = Vec::new();
    for f in exporter_families().iter().filter(|f| !f.optional) {
        match got.get(&f.name) {
            None => missing.push(f.name.clone()),
            Some(t) => {
                assert_eq!(t, &f.kind, "{}: type", f.name);
                if !f.labels.is_empty() {
                    let mut want = f.labels.clone();
                    want.sort();
                    assert_eq!(label_names(body, &f.name), want, "{}: labels", f.name);
                }
            }
        }
    }
    assert!(missing.is_empty(), "families missing: {missing:?}\n{body}");
    assert_eq!(value(body, "memcached_up"), 1.0);
    assert_eq!(
        value(
            body,
            "memcached_commands_total{command=\"get\",status=\"hit\"}"
        ),
        7.0
    );
    assert_eq!(
        value(
            body,
            "memcached_commands_total{command=\"get\",status=\"miss\"}"
        ),
        4.0
    );
    assert_eq!(
        value(
            body,
            "memcached_commands_total{command=\"set\",status=\"hit\"}"
        ),
        12.0
    );
    assert_eq!(
        value(
            body,
            "memcached_commands_total{command=\"delete\",status=\"hit\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            body,
            "memcached_commands_total{command=\"incr\",status=\"hit\"}"
        ),
        1.0
    );
    assert_eq!(value(body, "memcached_current_items"), 11.0);
    assert_eq!(value(body, "memcached_limit_bytes"), 64.0 * 1024.0 * 1024.0);
    // As `stats` says it, asked on the same connection just before and
    // after (connections only close meanwhile).
    let scraped = value(body, "memcached_current_connections");
    assert!(
        (connections_after as f64..=connections_before as f64).contains(&scraped),
        "{scraped} connections scraped, {connections_before} before and {connections_after} after"
    );
    // wasmcached's own: the shards' items add up, each shard has memory.
    let shard_items: f64 = (0..2)
        .map(|i| value(body, &format!("wasmcached_shard_items{{shard=\"{i}\"}}")))
        .sum();
    assert_eq!(shard_items, 11.0);
    assert!(value(body, "wasmcached_shard_guest_memory_bytes{shard=\"0\"}") >= 65536.0);
    let calls: f64 = (0..2)
        .map(|w| {
            value(
                body,
                &format!("wasmcached_guest_call_duration_seconds_count{{worker=\"{w}\"}}"),
            )
        })
        .sum();
    assert!(calls >= 1.0, "no guest call counted:\n{body}");
    assert_eq!(value(body, "wasmcached_plugin_traps_total"), 0.0);
    // The default store's own metrics (ABI v8), per shard.
    let stored: f64 = (0..2)
        .map(|i| {
            value(
                body,
                &format!("wasmcached_plugin_stored_value_bytes_count{{shard=\"{i}\"}}"),
            )
        })
        .sum();
    assert!(stored >= 12.0, "{stored} stores counted:\n{body}");
    assert_eq!(
        value(body, "wasmcached_plugin_budget_bytes{shard=\"1\"}"),
        32.0 * 1024.0 * 1024.0
    );
    assert_eq!(
        types(body)["wasmcached_plugin_stored_value_bytes"],
        "histogram"
    );
}

#[test]
fn openmetrics_when_the_scraper_asks_for_it() {
    let (s, port) = start(&[]);
    traffic(&mut s.client());
    let a = get(
        port,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(a.status, 200);
    assert!(
        a.headers["content-type"].starts_with("application/openmetrics-text; version=1.0.0"),
        "{:?}",
        a.headers
    );
    assert!(a.body.ends_with("# EOF\n"), "{}", a.body);
    // A counter family's name has no _total in OpenMetrics; its samples do.
    assert!(a.body.contains("# TYPE memcached_commands counter\n"));
    assert_eq!(
        value(
            &a.body,
            "memcached_commands_total{command=\"get\",status=\"hit\"}"
        ),
        7.0
    );
}

/// promtool, the Prometheus project's own checker, parses the output.
/// Its lint notes are allowed only on names that memcached_exporter chose
/// (dashboards depend on them): wasmcached's own families are clean.
#[cfg(target_os = "linux")]
#[test]
fn promtool_checks_the_exposition() {
    let (s, port) = start(&[]);
    traffic(&mut s.client());
    let body = get(port, "/metrics", None).body;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let exporter: Vec<String> = exporter_families().into_iter().map(|f| f.name).collect();
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap();
        assert!(
            exporter.iter().any(|e| e == name),
            "promtool: {line}\n(full report:\n{report})"
        );
    }
    // 0: clean; 3: lint notes only (listed above). Anything else is a
    // parse error.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool failed: {report}"
    );
}

/// Debian's Prometheus scrapes the server once a second; its query API
/// answers with the values the test caused.
#[cfg(target_os = "linux")]
#[test]
fn prometheus_scrapes_the_server() {
    let (s, port) = start(&[]);
    let mut c = s.client();
    traffic(&mut c);
    let dir = std::env::temp_dir().join(format!("wmc-prometheus-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
             - job_name: wasmcached\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let web = common::free_port();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    common::set_parent_death_signal(&mut cmd);
    let mut prom = cmd
        .spawn()
        .expect("prometheus (Debian's package; scripts/test.sh installs it)");
    // Prometheus answers once it is up; until then the port refuses.
    let query = |q: &str| -> Option<String> {
        let a = try_http(web, &get_request(&format!("/api/v1/query?query={q}"), None)).ok()?;
        (a.status == 200).then_some(a.body)
    };
    // The query API quotes sample values: `"value":[<time>,"7"]`.
    let sample = |body: &str| -> Option<f64> {
        let at = body.find("\"value\":[")?;
        let rest = &body[at..];
        let v = rest.split('"').nth(3)?;
        v.parse().ok()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let hits = loop {
        if let Some(body) =
            query("memcached_commands_total%7Bcommand%3D%22get%22%2Cstatus%3D%22hit%22%7D")
        {
            if let Some(v) = sample(&body) {
                break v;
            }
            last = body;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the server: {last}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(hits, 7.0);
    let up = query("up%7Bjob%3D%22wasmcached%22%7D").and_then(|b| sample(&b));
    assert_eq!(up, Some(1.0), "the scrape itself succeeded");
    // A change shows in a later scrape.
    for i in 0..5 {
        c.cmd(&format!("get k{i}"));
        c.until_end();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = query("memcached_commands_total%7Bcommand%3D%22get%22%2Cstatus%3D%22hit%22%7D")
            .and_then(|b| sample(&b));
        if v == Some(12.0) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus kept {v:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every query of the Grafana dashboard and of docs/observability.md is
    // one Prometheus runs.
    for expr in dashboard_queries().into_iter().chain(doc_queries()) {
        let q = expr.replace("$instance", ".*");
        let body = query(&url_encode(&q)).unwrap_or_else(|| panic!("{q}: no answer"));
        assert!(body.contains("\"status\":\"success\""), "{q}: {body}");
    }
    let _ = prom.kill();
    let _ = prom.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `expr` strings of docs/grafana/wasmcached.json, unescaped.
#[cfg(target_os = "linux")]
fn dashboard_queries() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/wasmcached.json");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\"expr\": \"") {
        rest = &rest[at + 9..];
        let mut expr = String::new();
        let mut chars = rest.char_indices();
        loop {
            match chars.next() {
                Some((_, '\\')) => expr.push(chars.next().unwrap().1),
                Some((i, '"')) => {
                    rest = &rest[i + 1..];
                    break;
                }
                Some((_, c)) => expr.push(c),
                None => panic!("an unterminated expr"),
            }
        }
        out.push(expr);
    }
    assert!(out.len() >= 10, "{out:?}");
    out
}

/// The PromQL examples of docs/observability.md: the ```promql block, one
/// expression per group of lines (a line starting with a space continues
/// the one before; `#` lines are comments).
#[cfg(target_os = "linux")]
fn doc_queries() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/observability.md");
    let text = std::fs::read_to_string(path).unwrap();
    let block = text
        .split("```promql\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a promql block");
    let mut out: Vec<String> = Vec::new();
    for line in block.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match out.last_mut() {
            Some(expr) if line.starts_with(' ') => expr.push_str(line),
            _ => out.push(line.to_string()),
        }
    }
    assert!(out.len() >= 6, "{out:?}");
    out
}

#[cfg(target_os = "linux")]
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whatever arrives on the metrics port gets an HTTP answer, and the cache
/// never notices.
#[test]
fn bad_requests_get_http_errors_and_the_cache_keeps_serving() {
    let (s, port) = start(&[]);
    let mut c = s.client();
    assert_eq!(c.set("a", 0, 0, b"1"), "STORED");
    assert_eq!(get(port, "/nope", None).status, 404);
    assert_eq!(
        http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status,
        405
    );
    assert_eq!(http(port, "stats\r\n\r\n").status, 400);
    let head = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // A client that connects and says nothing does not hold up a scrape
    // for long, nor the cache at all.
    let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(c.cmd("get a"), "VALUE a 0 1");
    assert_eq!(c.line(), "1");
    assert_eq!(c.line(), "END");
    // Garbage bytes, then a good scrape.
    let mut g = TcpStream::connect(("127.0.0.1", port)).unwrap();
    g.write_all(&[0xff; 20_000]).unwrap();
    drop(g);
    assert_eq!(get(port, "/metrics", None).status, 200);
    assert_eq!(c.set("b", 0, 0, b"2"), "STORED");
}

/// The metrics address is the server's like its memcached ports: a start
/// that cannot listen there fails and says why; a malformed one is refused.
#[test]
fn a_busy_or_malformed_metrics_address_fails_the_start() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = common::run_bounded(
        Command::new(common::server_bin())
            .args(["-p", &common::free_port().to_string(), "-U", "0"])
            .args(["-o", &format!("metrics_listen=127.0.0.1:{port}")]),
        Duration::from_secs(30),
    );
    assert!(!out.success, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("metrics_listen: failed to listen on 127.0.0.1"),
        "{}",
        out.stderr
    );
    let out = common::run_bounded(
        Command::new(common::server_bin())
            .args(["-p", &common::free_port().to_string(), "-U", "0"])
            .args(["-o", "metrics_listen=9150"]),
        Duration::from_secs(30),
    );
    assert!(!out.success, "{}", out.stderr);
    assert!(
        out.stderr.contains("metrics_listen must be HOST:PORT"),
        "{}",
        out.stderr
    );
}

/// The hot keys of `stats hotkeys` are on `/metrics` too.
#[test]
fn hot_keys_are_metrics() {
    let (s, port) = start(&["-o", "hotkeys_sample=1"]);
    let mut c = s.client();
    assert_eq!(c.set("user:hot", 0, 0, b"v"), "STORED");
    assert_eq!(c.set("user:cold", 0, 0, b"v"), "STORED");
    for _ in 0..20 {
        c.cmd("get user:hot");
        c.until_end();
    }
    c.cmd("get user:cold");
    c.until_end();
    let body = get(port, "/metrics", None).body;
    assert_eq!(
        value(
            &body,
            "wasmcached_hot_key_count{measure=\"reads\",by=\"key\",rank=\"1\",name=\"user:hot\"}"
        ),
        20.0
    );
    assert_eq!(
        value(
            &body,
            "wasmcached_hot_key_count{measure=\"reads\",by=\"prefix\",rank=\"1\",name=\"user\"}"
        ),
        21.0
    );
    assert_eq!(
        value(&body, "wasmcached_hot_keys_counted{measure=\"reads\"}"),
        21.0
    );
    // Off: no hot-key families at all.
    let (_s2, port2) = start(&["-o", "hotkeys_sample=0"]);
    assert!(!get(port2, "/metrics", None)
        .body
        .contains("wasmcached_hot_key"));
}
