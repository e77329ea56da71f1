//! The main thread (memcached's dispatcher): listening sockets, accept, and
//! round-robin hand-off of each new connection to a worker through its
//! channel plus a `notify` of its reactor. It also runs the server clock and
//! advances the Wasm epoch that bounds every guest call.

use crate::batch::Msg;
use crate::batch::WorkerHandle;
use crate::clock;
use crate::conn::Stream;
use crate::event_base::{EventBase, Interest};
use crate::plugin::{FaultStats, Plugin, Shard, ShardConfig, EPOCH_TICK};
use crate::settings::{BindProtocol, Io, Settings};
use crate::shared::{ConnInfo, Shared};
use crate::worker::{Timer, Worker};
use anyhow::{bail, Context, Result};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

enum Listener {
    /// A TCP listener; `true`: its connections speak TLS (`-Z`).
    Tcp(TcpListener, bool),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener, std::path::PathBuf),
}

impl Listener {
    #[cfg(target_os = "linux")]
    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Listener::Tcp(l, _) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l, _) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

/// How long a graceful stop waits for connections to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

enum MainTimer {
    Clock,
    Epoch,
    /// Accepting stopped for lack of file descriptors: try again.
    Relisten,
}

/// How long the listeners rest when the process is out of descriptors
/// (memcached's maxconns_handler retries every 10 ms).
const RELISTEN_DELAY: Duration = Duration::from_millis(10);

/// A running server: bound listeners and started workers.
pub struct Server {
    shared: Arc<Shared>,
    plugin: Arc<Plugin>,
    listeners: Vec<Listener>,
    base: EventBase<MainTimer>,
    /// io_uring: which listeners have an accept armed.
    #[cfg(target_os = "linux")]
    accepting: Vec<bool>,
    /// io_uring, `-o no_maxconns_fast` at `-c`: connections the kernel
    /// accepted after the limit was reached, waiting here as they would in
    /// the listen backlog under polling.
    held: std::collections::VecDeque<(usize, Stream)>,
    threads: Vec<std::thread::JoinHandle<Vec<Shard>>>,
    next_worker: usize,
    /// `-o metrics_listen`: the `/metrics` thread.
    metrics: Option<crate::metrics::MetricsServer>,
}

/// `-o io` as it will run: [`Io::Auto`] becomes io_uring where this kernel
/// gives what the ring needs, else polling; an explicit `uring` that
/// cannot run fails the start.
fn resolve_io(io: Io) -> Result<Io> {
    #[cfg(target_os = "linux")]
    let supported = crate::event_base::uring::Ring::supported();
    #[cfg(not(target_os = "linux"))]
    let supported = false;
    Ok(match io {
        Io::Poll => Io::Poll,
        Io::Auto if supported => Io::Uring,
        Io::Auto => Io::Poll,
        Io::Uring if supported => Io::Uring,
        Io::Uring if cfg!(target_os = "linux") => anyhow::bail!(
            "-o io=uring: this kernel refuses io_uring or lacks what it needs \
             (Linux 6.1, kernel.io_uring_disabled=0); use -o io=poll"
        ),
        Io::Uring => anyhow::bail!("-o io=uring: io_uring is Linux only; use -o io=poll"),
    })
}

/// A reactor (the main thread's or a worker's) on the backend `-o io`
/// chose. On io_uring the main thread's listeners accept through the ring
/// and the workers' connections receive and send through theirs.
fn reactor<T>(io: Io) -> Result<EventBase<T>> {
    #[cfg(target_os = "linux")]
    if io == Io::Uring {
        return Ok(EventBase::new_uring()?);
    }
    let _ = io;
    Ok(EventBase::new()?)
}

impl Server {
    /// Loads the plugin, binds the listeners and starts the workers.
    pub fn start(mut settings: Settings) -> Result<Server> {
        crate::os::prepare(&settings)?;
        settings.io = resolve_io(settings.io)?;
        crate::verbose::set(settings.verbose);
        crate::detail::init(settings.prefix_delimiter, settings.detail_enabled);
        let plugin = Arc::new(Plugin::load(settings.plugin.as_deref())?);
        // -e: a saved cache sets the clock, so it is read before the clock
        // starts and loaded before the first connection is accepted.
        let restore = crate::restart::open(&settings, &plugin)?;
        match &restore {
            Some(r) => r.start_clock(),
            None => clock::init(),
        }
        let listeners = bind(&settings)?;
        let udp = bind_udp(&settings)?;
        if let Some(p) = &settings.pidfile {
            std::fs::write(p, format!("{}\n", std::process::id())).with_context(|| {
                format!("Could not open the pid file {} for writing", p.display())
            })?;
        }
        let faults = Arc::new(FaultStats::default());
        let tls = match &settings.tls {
            Some(t) => Some(crate::tls::TlsContext::new(t.clone())?),
            None => None,
        };
        let shared = Arc::new(Shared::new(settings, faults.clone(), tls));
        let s = &shared.settings;

        let mut shards: Vec<Vec<Shard>> = (0..s.threads).map(|_| Vec::new()).collect();
        for shard_id in 0..shared.router.shards() {
            let config = ShardConfig {
                shard_id,
                shard_count: shared.router.shards(),
                memory_budget: s.shard_budget(),
                item_size_max: s.item_size_max,
                use_cas: s.use_cas,
                evict_to_free: s.evict_to_free,
                plugin_config: s.plugin_config.clone(),
                hints: match &restore {
                    Some(r) => r.hints_for(shard_id, s.plugin_hints()),
                    None => s.plugin_hints(),
                },
                deadline: s.plugin_deadline,
            };
            let shard = Shard::new(plugin.clone(), config, faults.clone())
                .with_context(|| format!("starting shard {shard_id}"))?;
            shards[shared.router.owner(shard_id)].push(shard);
        }
        if let Some(r) = restore {
            r.load(&mut shards, s.verbose > 0);
        }
        if s.large_pages {
            // memcached says when it cannot have large pages; here -v also
            // says when it could.
            match crate::large_pages::start_line() {
                Ok(line) if s.verbose > 0 => eprintln!("{line}"),
                Ok(_) => {}
                Err(line) => eprintln!("{line}"),
            }
        }

        let mut handles = Vec::new();
        let mut parts = Vec::new();
        for owned in shards {
            let base: EventBase<Timer> = reactor(s.io)?;
            let (tx, rx) = crossbeam_channel::unbounded();
            handles.push(WorkerHandle {
                tx,
                waker: base.waker(),
            });
            parts.push((base, rx, owned));
        }
        let _ = shared.workers.set(handles);
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut base: EventBase<MainTimer> = reactor(s.io)?;
        let _ = shared.main_waker.set(base.waker());
        crate::signals::install(shared.clone())?;
        // Bound before any worker runs: a busy address fails the start.
        let metrics = crate::metrics::start(shared.clone())?;

        let mut threads = Vec::new();
        for (id, (wbase, rx, owned)) in parts.into_iter().enumerate() {
            // As in memcached, every worker reads each UDP socket through a
            // descriptor of its own (a dup): `stats conns` lists one per worker.
            let mut wudp = Vec::new();
            let mut udp_ids = Vec::new();
            for sock in &udp {
                let sock = if id == 0 {
                    sock.clone()
                } else {
                    Arc::new(sock.try_clone()?)
                };
                let addr = sock
                    .local_addr()
                    .map(|a| format!("udp:{a}"))
                    .unwrap_or_default();
                let sid = crate::shared::conn_id(&shared, &*sock);
                udp_ids.push(register_socket(&shared, sid, addr, true, "udp"));
                wudp.push(sock);
            }
            let worker = Worker::new(id, shared.clone(), wbase, rx, owned, wudp, udp_ids);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("worker-{id}"))
                    .spawn(move || worker.run())?,
            );
        }
        for (i, l) in listeners.iter().enumerate() {
            register_listener(&shared, l);
            #[cfg(target_os = "linux")]
            if let Some(ring) = base.ring() {
                ring.accept(l.raw_fd(), i as u32);
                continue;
            }
            match l {
                Listener::Tcp(t, _) => base.register(t, i, Interest::READ)?,
                #[cfg(unix)]
                Listener::Unix(u, _) => base.register(u, i, Interest::READ)?,
            }
        }
        #[cfg(target_os = "linux")]
        let accepting = vec![true; listeners.len()];
        Ok(Server {
            shared,
            plugin,
            listeners,
            base,
            #[cfg(target_os = "linux")]
            accepting,
            held: Default::default(),
            threads,
            next_worker: 0,
            metrics,
        })
    }

    /// TCP addresses actually bound (useful with `-p 0`).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tcp(t, _) => t.local_addr().ok(),
                #[cfg(unix)]
                Listener::Unix(..) => None,
            })
            .collect()
    }

    /// Runs until `shutdown` (or a fatal poll error), then stops the workers.
    pub fn run(mut self) -> Result<()> {
        let now = Instant::now();
        self.base
            .add_timer(now + Duration::from_secs(1), MainTimer::Clock);
        self.base.add_timer(now + EPOCH_TICK, MainTimer::Epoch);
        let rearm = self.base.rearm_each_event();
        let mut ready = Vec::new();
        while !self.shared.stopping.load(Ordering::SeqCst) {
            ready.clear();
            self.base.wait(None, |ev| ready.push(ev.key))?;
            #[cfg(target_os = "linux")]
            self.on_accepted();
            for &i in &ready {
                self.accept_all(i);
                if rearm && !self.shared.conns.listen_disabled.load(Ordering::Relaxed) {
                    match &self.listeners[i] {
                        Listener::Tcp(t, _) => self.base.modify(t, i, Interest::READ)?,
                        #[cfg(unix)]
                        Listener::Unix(u, _) => self.base.modify(u, i, Interest::READ)?,
                    }
                }
            }
            while let Some(t) = self.base.pop_due_timer() {
                match t {
                    MainTimer::Clock => {
                        clock::update();
                        self.base
                            .add_timer(Instant::now() + Duration::from_secs(1), MainTimer::Clock);
                    }
                    MainTimer::Epoch => {
                        self.plugin.tick_epoch();
                        self.base
                            .add_timer(Instant::now() + EPOCH_TICK, MainTimer::Epoch);
                    }
                    // -o no_maxconns_fast: still full, keep waiting.
                    MainTimer::Relisten if self.waits_for_a_free_conn() => self
                        .base
                        .add_timer(Instant::now() + RELISTEN_DELAY, MainTimer::Relisten),
                    MainTimer::Relisten => self.listen(true),
                }
            }
        }
        self.stop();
        Ok(())
    }

    /// Turns accepting on or off on every listener. Off, the connections
    /// wait in the kernel's backlog; memcached counts the times and the
    /// time (`listen_disabled_num`, `time_in_listen_disabled_us`).
    fn listen(&mut self, on: bool) {
        let interest = if on { Interest::READ } else { Interest::NONE };
        for (i, l) in self.listeners.iter().enumerate() {
            #[cfg(target_os = "linux")]
            if let Some(ring) = self.base.ring() {
                // Off: the accept is cancelled (its last completion clears
                // `accepting`); on: `on_accepted` arms what is not armed.
                if !on && self.accepting[i] {
                    ring.cancel_accept(i as u32);
                }
                continue;
            }
            let _ = match l {
                Listener::Tcp(t, _) => self.base.modify(t, i, interest),
                #[cfg(unix)]
                Listener::Unix(u, _) => self.base.modify(u, i, interest),
            };
        }
        let conns = &self.shared.conns;
        if on {
            conns.listen_enabled(Instant::now());
            // Connections accepted past the limit go first.
            while !self.held.is_empty() && !self.waits_for_a_free_conn() {
                if let Some((i, stream)) = self.held.pop_front() {
                    self.dispatch(i, stream);
                }
            }
            #[cfg(target_os = "linux")]
            self.rearm_accepts();
        } else {
            conns.listen_disabled(Instant::now());
            self.base
                .add_timer(Instant::now() + RELISTEN_DELAY, MainTimer::Relisten);
        }
    }

    /// `-o no_maxconns_fast` at `-c` connections: new ones wait in the
    /// listen backlog (memcached stops accepting) instead of being told
    /// `ERROR Too many open connections`.
    fn waits_for_a_free_conn(&self) -> bool {
        let s = &self.shared.settings;
        !s.maxconns_fast && self.shared.conns.curr_connections.load(Ordering::Relaxed) >= s.maxconns
    }

    fn accept_all(&mut self, i: usize) {
        if self.shared.conns.listen_disabled.load(Ordering::Relaxed) {
            return;
        }
        loop {
            if self.waits_for_a_free_conn() {
                self.listen(false);
                return;
            }
            let stream = match self.listeners[i].accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if self.shared.verbose() > 0 {
                        eprintln!("accept(): {e}");
                    }
                    // Out of descriptors: the listener stays readable, so
                    // stop accepting for a while, as memcached does, rather
                    // than spin on it.
                    if out_of_fds(&e) {
                        self.listen(false);
                    }
                    return;
                }
            };
            self.dispatch(i, stream);
        }
    }

    /// A new connection from listener `i`: a TLS session on a `-Z`
    /// listener (`None` when its handshake cannot start).
    fn session(&self, i: usize, stream: Stream) -> Option<Stream> {
        match (stream, &self.listeners[i], &self.shared.tls) {
            (Stream::Tcp(s), Listener::Tcp(_, true), Some(tls)) => match tls.accept(s) {
                Ok(t) => Some(Stream::Tls(Box::new(t))),
                Err(e) => {
                    if self.shared.verbose() > 0 {
                        eprintln!("TLS session: {e}");
                    }
                    None
                }
            },
            (stream, _, _) => Some(stream),
        }
    }

    /// A new connection from listener `i`: refused past `-c` (memcached's
    /// answer, in plain text before any TLS), else made a TLS session on a
    /// `-Z` listener and handed to the next worker.
    fn dispatch(&mut self, i: usize, stream: Stream) {
        let conns = &self.shared.conns;
        if conns.curr_connections.load(Ordering::Relaxed) >= self.shared.settings.maxconns {
            conns.rejected_connections.fetch_add(1, Ordering::Relaxed);
            let mut stream = stream;
            let _ = stream.write(b"ERROR Too many open connections\r\n");
            return;
        }
        let Some(stream) = self.session(i, stream) else {
            return;
        };
        conns.curr_connections.fetch_add(1, Ordering::Relaxed);
        let workers = self.shared.workers.get().expect("workers started");
        let w = self.next_worker % workers.len();
        self.next_worker = self.next_worker.wrapping_add(1);
        workers[w].send(Msg::Conn(stream));
    }

    /// io_uring: the connections the listeners' accepts took since the
    /// last wait, as `accept_all` takes them under polling; each listener's
    /// next accept is armed after.
    #[cfg(target_os = "linux")]
    fn on_accepted(&mut self) {
        use crate::event_base::uring::Op;
        use std::os::fd::{FromRawFd, OwnedFd};
        let mut done = Vec::new();
        match self.base.ring() {
            Some(ring) => ring.take_completed(&mut done),
            None => return,
        }
        for c in done {
            let i = c.key as usize;
            if c.op != Op::Accept || i >= self.listeners.len() {
                continue;
            }
            if !c.more {
                self.accepting[i] = false;
            }
            if c.res < 0 {
                let e = io::Error::from_raw_os_error(-c.res);
                if c.res == -libc::ECANCELED {
                    continue;
                }
                if self.shared.verbose() > 0 {
                    eprintln!("accept(): {e}");
                }
                if out_of_fds(&e) && !self.shared.conns.listen_disabled.load(Ordering::Relaxed) {
                    self.listen(false);
                }
                continue;
            }
            // SAFETY: the kernel opened this descriptor for this completion;
            // nothing else refers to it.
            let fd = unsafe { OwnedFd::from_raw_fd(c.res) };
            let stream = match &self.listeners[i] {
                Listener::Tcp(..) => Stream::Tcp(std::net::TcpStream::from(fd)),
                Listener::Unix(..) => Stream::Unix(std::os::unix::net::UnixStream::from(fd)),
            };
            if self.waits_for_a_free_conn() {
                // -o no_maxconns_fast: it waits, as in the backlog.
                self.held.push_back((i, stream));
                if !self.shared.conns.listen_disabled.load(Ordering::Relaxed) {
                    self.listen(false);
                }
                continue;
            }
            self.dispatch(i, stream);
        }
        self.rearm_accepts();
    }

    /// io_uring: arms the accept of every listener that has none while
    /// accepting is on.
    #[cfg(target_os = "linux")]
    fn rearm_accepts(&mut self) {
        if self.shared.conns.listen_disabled.load(Ordering::Relaxed) {
            return;
        }
        let Some(ring) = self.base.ring() else {
            return;
        };
        for (i, l) in self.listeners.iter().enumerate() {
            if !self.accepting[i] {
                ring.accept(l.raw_fd(), i as u32);
                self.accepting[i] = true;
            }
        }
    }

    /// Graceful stop: close the listeners (new connections are refused),
    /// let every worker finish the commands its connections already sent
    /// and write their answers (bounded by [`DRAIN_LIMIT`]), then stop the
    /// workers.
    fn stop(&mut self) {
        let graceful = self.shared.graceful_stop.load(Ordering::SeqCst);
        if graceful {
            // memcached's line for SIGUSR1 and `shutdown graceful`.
            eprintln!("Gracefully stopping");
        }
        // The kernel holds a listener while its accept is armed: cancel
        // them first, so the sockets really close (new connections are
        // refused).
        #[cfg(target_os = "linux")]
        if let Some(ring) = self.base.ring() {
            for (i, on) in self.accepting.iter().enumerate() {
                if *on {
                    ring.cancel_accept(i as u32);
                }
            }
            ring.submit();
        }
        for stream in self.held.drain(..) {
            drop(stream);
        }
        for l in self.listeners.drain(..) {
            match &l {
                Listener::Tcp(t, _) => {
                    let _ = self.base.deregister(t);
                }
                #[cfg(unix)]
                Listener::Unix(u, path) => {
                    let _ = self.base.deregister(u);
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let workers = self
            .shared
            .workers
            .get()
            .map(|w| w.as_slice())
            .unwrap_or(&[]);
        for w in workers {
            w.send(Msg::Drain);
        }
        let deadline = Instant::now() + DRAIN_LIMIT;
        let mut next_epoch = Instant::now() + EPOCH_TICK;
        while self.shared.drained.load(Ordering::SeqCst) < workers.len() {
            let now = Instant::now();
            if now > deadline {
                eprintln!("shutdown: connections still busy after {DRAIN_LIMIT:?}; closing them");
                break;
            }
            // Guest calls still run meanwhile: keep their deadline clock
            // going at its pace (a wake-up must not advance it).
            if now >= next_epoch {
                self.plugin.tick_epoch();
                clock::update();
                next_epoch = now + EPOCH_TICK;
            }
            let _ = self
                .base
                .wait(Some(next_epoch.saturating_duration_since(now)), |_| {});
        }
        // No scrape waits for workers that are going away.
        if let Some(m) = self.metrics.take() {
            m.stop();
        }
        for w in workers {
            w.send(Msg::Shutdown);
        }
        let mut shards = Vec::new();
        for t in self.threads.drain(..) {
            shards.extend(t.join().unwrap_or_default());
        }
        let s = &self.shared.settings;
        if s.memory_file.is_some() && graceful {
            crate::restart::save(s, shards, self.shared.verbose() > 0);
        }
        // The files of the save loaded at start go with any stop.
        crate::restart::finish_removing();
        if let Some(p) = &self.shared.settings.pidfile {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// accept() failed for lack of file descriptors (EMFILE, ENFILE).
fn out_of_fds(e: &io::Error) -> bool {
    #[cfg(unix)]
    return matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
    // WSAEMFILE
    #[cfg(windows)]
    return e.raw_os_error() == Some(10024);
    #[cfg(not(any(unix, windows)))]
    return false;
}

/// Lists a listening socket in `stats conns`, as memcached does.
fn register_listener(shared: &Shared, l: &Listener) {
    let addr = match l {
        Listener::Tcp(t, _) => t
            .local_addr()
            .map(|a| format!("tcp:{a}"))
            .unwrap_or_default(),
        #[cfg(unix)]
        Listener::Unix(_, path) => format!("unix:{}", path.display()),
    };
    let id = match l {
        Listener::Tcp(t, _) => crate::shared::conn_id(shared, t),
        #[cfg(unix)]
        Listener::Unix(u, _) => crate::shared::conn_id(shared, u),
    };
    // memcached's names for the protocols a listener speaks.
    let protocol = match shared.settings.protocol {
        BindProtocol::Auto => "auto-negotiate",
        BindProtocol::Ascii => "ascii",
        BindProtocol::Binary => "binary",
    };
    register_socket(shared, id, addr, false, protocol);
}

/// Lists a server socket (listener or UDP) in `stats conns`; returns its id.
/// `-vv` logs it as memcached does (`<id server listening (protocol)`).
fn register_socket(shared: &Shared, id: u64, addr: String, udp: bool, protocol: &str) -> u64 {
    let info = Arc::new(ConnInfo::socket(addr, udp, clock::now()));
    crate::counters::bump(&shared.conns.conn_structs, 1);
    shared
        .conn_registry
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, info);
    if crate::verbose::commands() {
        eprintln!("<{id} server listening ({protocol})");
    }
    id
}

/// Binds `-s`, or every `-l` address (all interfaces by default) on `-p`.
fn bind(s: &Settings) -> Result<Vec<Listener>> {
    #[cfg(unix)]
    if let Some(path) = &s.unix_socket {
        use std::os::unix::fs::PermissionsExt;
        // memcached removes a stale socket file before binding.
        if std::fs::symlink_metadata(path).is_ok() {
            let _ = std::fs::remove_file(path);
        }
        let l = std::os::unix::net::UnixListener::bind(path)
            .with_context(|| format!("failed to listen on UNIX socket \"{}\"", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(s.unix_mask))?;
        l.set_nonblocking(true)?;
        set_backlog(&l, s.backlog)?;
        return Ok(vec![Listener::Unix(l, path.clone())]);
    }
    if s.port == 0 && s.listen.is_empty() {
        bail!("no listening socket: -p 0 without -l or -s");
    }
    let hosts: Vec<String> = if s.listen.is_empty() {
        vec!["0.0.0.0".into()]
    } else {
        s.listen.clone()
    };
    let mut out = Vec::new();
    for h in &hosts {
        // memcached's `notls:` prefix: a plain listener beside TLS ones.
        let (plain, h) = match h.strip_prefix("notls:") {
            Some(rest) => (true, rest),
            None => (false, h.as_str()),
        };
        for addr in resolve(h, s.port)? {
            let l = TcpListener::bind(addr)
                .with_context(|| format!("failed to listen on TCP port {}", addr))?;
            l.set_nonblocking(true)?;
            set_backlog(&l, s.backlog)?;
            out.push(Listener::Tcp(l, s.tls.is_some() && !plain));
        }
    }
    Ok(out)
}

/// `-b`: memcached's listen backlog. The standard library listens with its
/// own; listen(2) again on the listening socket sets ours (Linux, the BSDs,
/// macOS). Windows keeps the standard library's.
#[cfg(unix)]
fn set_backlog(l: &impl std::os::fd::AsRawFd, backlog: i32) -> Result<()> {
    // SAFETY: listen(2) on a socket this process owns; no memory is passed.
    if unsafe { libc::listen(l.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error()).context("listen()");
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_backlog<T>(_: &T, _: i32) -> Result<()> {
    Ok(())
}

/// `-U`: a UDP socket on every `-l` address (all interfaces by default).
/// Every worker polls them, as memcached's threads share its UDP sockets.
fn bind_udp(s: &Settings) -> Result<Vec<Arc<UdpSocket>>> {
    if s.udp_port == 0 || s.unix_socket.is_some() {
        return Ok(Vec::new());
    }
    let hosts: Vec<String> = if s.listen.is_empty() {
        vec!["0.0.0.0".into()]
    } else {
        s.listen.clone()
    };
    let mut out = Vec::new();
    for h in &hosts {
        let h = h.strip_prefix("notls:").unwrap_or(h);
        // An address given with its own port keeps it for TCP; UDP uses -U.
        let host = match h.rsplit_once(':') {
            Some((host, port)) if h.matches(':').count() == 1 && port.parse::<u16>().is_ok() => {
                host
            }
            _ => h,
        };
        for addr in resolve(host, s.udp_port)? {
            let sock = UdpSocket::bind(addr)
                .with_context(|| format!("failed to listen on UDP port {addr}"))?;
            sock.set_nonblocking(true)?;
            out.push(Arc::new(sock));
        }
    }
    Ok(out)
}

/// memcached's `-l` forms: `host`, `host:port`, `[v6]`, `[v6]:port`, bare v6.
fn resolve(spec: &str, default_port: u16) -> Result<Vec<SocketAddr>> {
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').context("bad -l address")?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().context("bad port in -l")?,
            None => default_port,
        };
        (h.to_string(), port)
    } else if spec.matches(':').count() == 1 {
        let (h, p) = spec.split_once(':').expect("one colon");
        (h.to_string(), p.parse().context("bad port in -l")?)
    } else {
        (spec.to_string(), default_port)
    };
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listen address {spec}"))?
        .collect();
    if addrs.is_empty() {
        bail!("cannot resolve listen address {spec}");
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_address_forms() {
        assert_eq!(
            resolve("127.0.0.1", 5).unwrap()[0].to_string(),
            "127.0.0.1:5"
        );
        assert_eq!(
            resolve("127.0.0.1:7", 5).unwrap()[0].to_string(),
            "127.0.0.1:7"
        );
        assert_eq!(resolve("[::1]:7", 5).unwrap()[0].to_string(), "[::1]:7");
        assert_eq!(resolve("::1", 5).unwrap()[0].to_string(), "[::1]:5");
        assert!(resolve("[::1", 5).is_err());
    }
}
