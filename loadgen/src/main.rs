//! wasmcached-loadgen: a closed-loop memcached load generator (text
//! protocol) for the two loads memaslap cannot make: many requests in flight
//! per connection, and TLS. scripts/bench-wire.sh runs it against wasmcached
//! and memcached.
//!
//! Each client thread owns some connections and repeats one round: write a
//! batch of `--depth` requests to every connection (one write each), then
//! read every connection until all answers of its batch are parsed. Blocking
//! sockets are enough: while the thread reads connection 1, the server is
//! already answering all the others. A request's latency runs from the
//! write of its batch to the moment its answer is parsed.
//!
//! Output: one line, `ops=N secs=S ops_per_sec=R p50_us=.. p99_us=..
//! p999_us=.. errors=E`; exit status 1 if any answer was wrong or missing.

mod answer;
mod hist;

use answer::{Parsed, Req, Values};
use clap::{Parser, ValueEnum};
use hist::Hist;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    version,
    about = "memcached load generator: pipelined and TLS workloads"
)]
struct Opts {
    /// Server address
    #[arg(long, default_value = "127.0.0.1:11211")]
    addr: String,
    /// Connections (split among the threads)
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Requests in flight per connection
    #[arg(long, default_value_t = 16)]
    depth: usize,
    /// Length of the timed run, seconds
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Client threads
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// get: all gets of preloaded keys (all hits); getset: 90 % get, 10 % set
    #[arg(long, value_enum, default_value_t = Workload::Get)]
    workload: Workload,
    /// Value size, bytes
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Keys (32 bytes each), all set before the timed run
    #[arg(long, default_value_t = 10_000)]
    keys: u32,
    /// Connect with TLS (needs --ca)
    #[arg(long, requires = "ca")]
    tls: bool,
    /// PEM file of the certificate(s) the server's certificate must chain to
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Server name to send and verify
    #[arg(long, default_value = "localhost")]
    sni: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Get,
    Getset,
}

/// Bytes a batch may put on the wire in one direction. A batch is written
/// with one blocking write before anything is read, and a server that
/// cannot send its answers stops reading; so a batch must fit in the
/// socket buffers (client send + server receive, at least a few hundred KiB
/// on Linux loopback) or client and server wait for each other forever.
const MAX_BATCH_BYTES: usize = 256 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

struct Stats {
    ops: u64,
    errors: u64,
    hist: Hist,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            ops: 0,
            errors: 0,
            hist: Hist::new(),
        }
    }
}

struct Conn {
    stream: Stream,
    /// The batch in flight, in order.
    batch: Vec<Req>,
    out: Vec<u8>,
    sent_at: Instant,
    /// Received bytes are `inbuf[start..end]`; the buffer only grows when
    /// one answer is larger than it.
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    fn open(opts: &Opts, tls: Option<&Arc<ClientConfig>>) -> io::Result<Conn> {
        let tcp = TcpStream::connect(&opts.addr)?;
        // Batches are whole writes already; Nagle would only hold them back.
        tcp.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Plain(tcp),
            Some(cfg) => {
                let name = ServerName::try_from(opts.sni.clone()).map_err(io::Error::other)?;
                let mut c = ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
                let mut tcp = tcp;
                // The handshake now, so that it is not part of the timed run.
                while c.is_handshaking() {
                    c.complete_io(&mut tcp)?;
                }
                Stream::Tls(Box::new(StreamOwned::new(c, tcp)))
            }
        };
        Ok(Conn {
            stream,
            batch: Vec::new(),
            out: Vec::new(),
            sent_at: Instant::now(),
            inbuf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        })
    }

    fn send(&mut self, reqs: impl Iterator<Item = Req>, values: &Values) -> io::Result<()> {
        self.batch.clear();
        self.out.clear();
        for r in reqs {
            values.write_req(r, &mut self.out);
            self.batch.push(r);
        }
        self.sent_at = Instant::now();
        self.stream.write_all(&self.out)
    }

    /// Reads until every answer of the batch is parsed.
    fn receive(&mut self, values: &Values, stats: &mut Stats) -> io::Result<()> {
        let mut next = 0;
        while next < self.batch.len() {
            match values.parse(&self.inbuf[self.start..self.end], self.batch[next]) {
                Parsed::Answer { len, ok } => {
                    self.start += len;
                    next += 1;
                    stats.ops += 1;
                    if !ok {
                        stats.errors += 1;
                    }
                    stats.hist.record(self.sent_at.elapsed().as_nanos() as u64);
                }
                Parsed::Incomplete => {
                    // Move the partial answer to the front, grow if it fills
                    // the whole buffer, then read behind it.
                    self.inbuf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                    if self.end == self.inbuf.len() {
                        self.inbuf.resize(self.inbuf.len() * 2, 0);
                    }
                    let n = self.stream.read(&mut self.inbuf[self.end..])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "server closed the connection",
                        ));
                    }
                    self.end += n;
                }
            }
        }
        Ok(())
    }
}

/// xorshift64*: fast, and good enough to pick keys and operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }
}

fn tls_config(ca: &Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Sets every key once, in batches on one connection.
fn preload(conn: &mut Conn, opts: &Opts, values: &Values) -> Result<(), String> {
    let per_batch = (MAX_BATCH_BYTES / (opts.value_size + 64)).clamp(1, 100) as u32;
    let mut stats = Stats::new();
    let mut k = 0;
    while k < opts.keys {
        let n = per_batch.min(opts.keys - k);
        let io = conn.send((k..k + n).map(Req::Set), values);
        io.and_then(|_| conn.receive(values, &mut stats))
            .map_err(|e| format!("preload: {e}"))?;
        k += n;
    }
    match stats.errors {
        0 => Ok(()),
        e => Err(format!("preload: {e} sets not STORED")),
    }
}

/// The timed run of one thread.
fn drive(conns: &mut [Conn], opts: &Opts, values: &Values, seed: u64, until: Instant) -> Stats {
    let mut rng = Rng(seed | 1);
    let mut stats = Stats::new();
    let pick = |rng: &mut Rng| {
        let k = rng.below(opts.keys);
        if opts.workload == Workload::Getset && rng.below(10) == 0 {
            Req::Set(k)
        } else {
            Req::Get(k)
        }
    };
    while Instant::now() < until {
        let round = conns
            .iter_mut()
            .try_for_each(|c| c.send((0..opts.depth).map(|_| pick(&mut rng)), values));
        let round = round.and_then(|_| {
            conns
                .iter_mut()
                .try_for_each(|c| c.receive(values, &mut stats))
        });
        if let Err(e) = round {
            // Count the whole round as failed: its answers were lost.
            eprintln!("loadgen: {e}");
            stats.errors += (conns.len() * opts.depth) as u64;
            break;
        }
    }
    stats
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    if opts.conns == 0 || opts.depth == 0 || opts.threads == 0 || opts.keys == 0 {
        eprintln!("loadgen: --conns, --depth, --threads and --keys must be at least 1");
        return ExitCode::from(2);
    }
    if opts.depth * (opts.value_size + 64) > MAX_BATCH_BYTES {
        eprintln!(
            "loadgen: --depth x (--value-size + 64) must stay under {MAX_BATCH_BYTES} bytes \
             (a batch is written before its answers are read)"
        );
        return ExitCode::from(2);
    }
    let tls = match (opts.tls, &opts.ca) {
        (true, Some(ca)) => match tls_config(ca) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("loadgen: --ca {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let values = Values::new(opts.value_size);
    let connect =
        || Conn::open(&opts, tls.as_ref()).map_err(|e| format!("connecting to {}: {e}", opts.addr));
    let setup = connect()
        .and_then(|mut c| preload(&mut c, &opts, &values))
        .and_then(|_| {
            let mut groups: Vec<Vec<Conn>> = (0..opts.threads).map(|_| Vec::new()).collect();
            for i in 0..opts.conns {
                groups[i % opts.threads].push(connect()?);
            }
            Ok(groups)
        });
    let mut groups = match setup {
        Ok(g) => g,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    // bench-wire.sh waits for this line to start its measurements of the
    // server (CPU time, syscalls), so that they leave out the preload.
    eprintln!("loadgen: {} keys preloaded; running", opts.keys);

    let start = Instant::now();
    let until = start + Duration::from_secs_f64(opts.secs);
    let (opts, values) = (&opts, &values);
    let results: Vec<(Stats, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter_mut()
            .enumerate()
            .map(|(i, g)| {
                let seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1);
                s.spawn(move || (drive(g, opts, values, seed, until), Instant::now()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect()
    });

    let mut total = Stats::new();
    let mut finish = start;
    for (st, t) in &results {
        total.ops += st.ops;
        total.errors += st.errors;
        total.hist.merge(&st.hist);
        finish = finish.max(*t);
    }
    let secs = (finish - start).as_secs_f64();
    let us = |q| total.hist.quantile(q) as f64 / 1000.0;
    println!(
        "ops={} secs={secs:.2} ops_per_sec={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} errors={}",
        total.ops,
        total.ops as f64 / secs,
        us(0.5),
        us(0.99),
        us(0.999),
        total.errors
    );
    if total.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
