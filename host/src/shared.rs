//! The server-wide state every thread reads ([`Shared`]): the settings, the
//! shard router, every worker's counters and handle, the connections that
//! `stats conns` lists, TLS, and the shutdown flags. It sits below the
//! command layer and the workers, which all hold an `Arc` of it.

use crate::batch::WorkerHandle;
use crate::conn::{ConnState, SharedState};
use crate::counters::{BufGauge, ConnStats, ThreadStats};
use crate::event_base::Waker;
use crate::hotkeys::HotKeys;
use crate::live_settings::LiveSettings;
use crate::plugin::FaultStats;
use crate::router::Router;
use crate::settings::Settings;
use crate::verbose;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What a connection shows in `stats conns`, readable from any thread.
pub struct ConnInfo {
    pub addr: String,
    pub listen_addr: String,
    /// A UDP socket: memcached lists it with a `UDP` line, always reading.
    pub udp: bool,
    /// Published by the connection's [`crate::conn::Conn::set_state`]; a
    /// server socket's stays as it was made.
    pub state: Arc<SharedState>,
    pub last_cmd_time: AtomicU32,
    /// Its buffers' sizes, for `stats` (`read_buf_*`, `response_obj_*`).
    pub bufs: BufGauge,
}

impl ConnInfo {
    /// A listening socket's entry, or (`udp`) a UDP socket's.
    pub fn socket(addr: String, udp: bool, now: u32) -> ConnInfo {
        let state = if udp {
            ConnState::Read
        } else {
            ConnState::Listening
        };
        ConnInfo {
            addr,
            listen_addr: String::new(),
            udp,
            state: SharedState::new(state),
            last_cmd_time: AtomicU32::new(now),
            bufs: Default::default(),
        }
    }
}

/// Server-wide state every thread reads.
pub struct Shared {
    pub settings: Settings,
    pub router: Router,
    pub threads: Vec<ThreadStats>,
    pub conns: ConnStats,
    pub faults: Arc<FaultStats>,
    /// `-m`, changed at run time by `cache_memlimit`.
    pub maxbytes: AtomicU64,
    pub workers: OnceLock<Vec<WorkerHandle>>,
    pub main_waker: OnceLock<Waker>,
    pub stopping: AtomicBool,
    /// The stop requested is graceful (memcached's GRACE_STOP: SIGUSR1,
    /// `shutdown graceful`, Ctrl-Break): with `-e` it saves the cache.
    pub graceful_stop: AtomicBool,
    /// `-Z`: TLS for TCP connections (certificates reloadable).
    pub tls: Option<crate::tls::TlsContext>,
    /// Workers that have finished every connection after `Msg::Drain`.
    pub drained: AtomicUsize,
    /// Connections by id, for `stats conns` (touched only on open/close).
    pub conn_registry: Mutex<BTreeMap<u64, Arc<ConnInfo>>>,
    pub next_conn_id: AtomicU64,
    /// `stats hotkeys`: every worker's top-K tables (host/src/hotkeys.rs);
    /// `/metrics` reads them with `hotkeys.report()`.
    pub hotkeys: HotKeys,
    /// The settings admin commands change at run time.
    pub live: LiveSettings,
}

impl Shared {
    pub fn new(
        settings: Settings,
        faults: Arc<FaultStats>,
        tls: Option<crate::tls::TlsContext>,
    ) -> Shared {
        let router = Router::new(settings.shards, settings.threads);
        let hotkeys = HotKeys::new(
            settings.hotkeys_sample,
            settings.hotkeys_window,
            settings.prefix_delimiter,
            settings.threads,
        );
        Shared {
            hotkeys,
            threads: (0..settings.threads)
                .map(|_| ThreadStats::default())
                .collect(),
            router,
            conns: ConnStats::default(),
            faults,
            maxbytes: AtomicU64::new(settings.maxbytes),
            workers: OnceLock::new(),
            main_waker: OnceLock::new(),
            stopping: AtomicBool::new(false),
            graceful_stop: AtomicBool::new(false),
            tls,
            drained: AtomicUsize::new(0),
            conn_registry: Mutex::new(BTreeMap::new()),
            next_conn_id: AtomicU64::new(1),
            live: LiveSettings::new(&settings),
            settings,
        }
    }

    /// Stops the server: finish what the connections sent, then exit.
    /// `graceful`: memcached's graceful stop, which also leaves the cache
    /// in the `-e` memory file (a plain stop never does, as in memcached).
    pub fn request_shutdown(&self, graceful: bool) {
        if graceful {
            self.graceful_stop.store(true, Ordering::SeqCst);
        }
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(w) = self.main_waker.get() {
            w.wake();
        }
    }

    /// The verbosity level (process-wide: see [`crate::verbose`]).
    pub fn verbose(&self) -> u8 {
        verbose::level()
    }

    pub fn reset_stats(&self) {
        for t in &self.threads {
            t.reset();
        }
        self.conns.reset();
        crate::detail::clear();
        self.hotkeys.clear();
    }
}

/// The id a connection has in `stats conns` (and the `-vv` log): on unix its
/// socket's file descriptor, as memcached numbers them; elsewhere a counter.
#[cfg(unix)]
pub fn conn_id(_shared: &Shared, sock: &impl std::os::fd::AsRawFd) -> u64 {
    sock.as_raw_fd() as u64
}

/// The id a connection has in `stats conns` (and the `-vv` log): on unix its
/// socket's file descriptor, as memcached numbers them; elsewhere a counter.
#[cfg(not(unix))]
pub fn conn_id<S>(shared: &Shared, _sock: &S) -> u64 {
    shared.next_conn_id.fetch_add(1, Ordering::Relaxed)
}

/// [`conn_id`] of an accepted connection's socket.
pub fn stream_id(shared: &Shared, stream: &crate::conn::Stream) -> u64 {
    use crate::conn::Stream;
    match stream {
        Stream::Tcp(s) => conn_id(shared, s),
        Stream::Tls(t) => conn_id(shared, &t.sock),
        #[cfg(unix)]
        Stream::Unix(s) => conn_id(shared, s),
        Stream::Udp(u) => conn_id(shared, &*u.sock),
    }
}
