//! `/metrics` (`-o metrics_listen=HOST:PORT`): Prometheus' text exposition
//! format, or OpenMetrics when the scraper asks for it, served by a thread
//! of its own. A scrape asks every worker for its shards' figures
//! (`Msg::Scrape`, answered between batches) and waits for them here, so a
//! reactor never waits for a scraper.
//!
//! `expo` writes the exposition formats; `exporter` turns memcached's stats
//! into memcached_exporter's metric families, so that its dashboards and
//! alerts work unchanged; `own` adds the families only wasmcached has;
//! `scrape` gathers the figures from the workers; `http` reads a request
//! and writes the answer.

pub mod expo;
pub mod exporter;
mod http;
mod own;
mod scrape;

use crate::reply::Aggregate;
use crate::shared::Shared;
use crate::stats;
use anyhow::{Context, Result};
use expo::Format;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmcached_abi::stats_group;

/// The running endpoint.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `-o metrics_listen` and starts serving. A start fails when the
/// address cannot be bound, as it does for the memcached ports.
pub fn start(shared: Arc<Shared>) -> Result<Option<MetricsServer>> {
    let Some(listen) = shared.settings.metrics_listen.clone() else {
        return Ok(None);
    };
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .with_context(|| format!("metrics_listen: cannot resolve {listen}"))?
        .collect();
    let listener = TcpListener::bind(&addrs[..])
        .with_context(|| format!("metrics_listen: failed to listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serve(listener, &shared, &stopping))?;
    Ok(Some(MetricsServer {
        addr,
        stop,
        thread: Some(thread),
    }))
}

impl MetricsServer {
    /// Stops the thread (it is blocked in `accept`: a connection wakes it).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, shared: &Shared, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut stream) = conn else {
            // Out of descriptors and the like: let the moment pass.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        // A client that goes away or sends garbage only ends its exchange.
        let _ = answer(&mut stream, shared);
    }
}

fn answer(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some(req) = http::read_request(stream)? else {
        return http::respond(
            stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
            true,
        );
    };
    let with_body = match req.method.as_str() {
        "GET" => true,
        "HEAD" => false,
        _ => {
            let body = b"only GET and HEAD\n";
            return http::respond(stream, "405 Method Not Allowed", "text/plain", body, true);
        }
    };
    match req.path.as_str() {
        "/metrics" => {
            let format = Format::from_accept(req.accept.as_deref());
            let body = render(shared, format);
            http::respond(
                stream,
                "200 OK",
                format.content_type(),
                body.as_bytes(),
                with_body,
            )
        }
        "/" => {
            let body = b"<html><head><title>wasmcached</title></head><body>\
                <h1>wasmcached</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";
            http::respond(
                stream,
                "200 OK",
                "text/html; charset=utf-8",
                body,
                with_body,
            )
        }
        _ => http::respond(
            stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            with_body,
        ),
    }
}

/// One scrape, rendered.
pub fn render(shared: &Shared, format: Format) -> String {
    let scraped = scrape::scrape(shared);
    // memcached's groups exactly as `stats`, `stats items` and `stats
    // slabs` print them: the exporter reads those.
    let group = |g: i32| {
        let mut agg = Aggregate::default();
        for s in &scraped.shards {
            if let Some((_, lines)) = s.stats.iter().find(|(group, _)| *group == g) {
                agg.add_lines(lines);
            }
        }
        stats::finish(shared, g, &mut agg)
    };
    let general = group(stats_group::GENERAL);
    let items = group(stats_group::ITEMS);
    let slabs = group(stats_group::SLABS);
    let settings = stats::settings(shared);
    let mut families = exporter::families(&exporter::Stats {
        general: &general,
        settings: &settings,
        items: &items,
        slabs: &slabs,
    });
    families.extend(own::families(shared, &scraped));
    expo::render(&families, format)
}
