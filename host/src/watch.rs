//! memcached's `watch` (its logger.c): live log lines for watcher
//! connections.
//!
//! A connection that sends `watch [fetchers] [mutations] [evictions]
//! [connevents]` stops being a client: it gets `OK`, then one line per
//! event in memcached 1.6.18's format, e.g.
//!
//! ```text
//! ts=1796523667.486419 gid=2 type=conn_new rip=127.0.0.1 rport=59600 transport=tcp cfd=25
//! ts=1796523667.486973 gid=4 type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd=25 size=3
//! ts=1796523667.536674 gid=5 type=item_get key=foo status=found clsid=1 cfd=25 size=3
//! ts=1796523667.937962 gid=14 type=conn_close rip=127.0.0.1 rport=59600 transport=tcp reason=normal cfd=25
//! ```
//!
//! Cost with no watcher: the request path reads [`mask`] (one relaxed
//! atomic load) once per get/store command and once per batch (whether to
//! ask a v6 plugin for its lookups and evictions, [`plugin_mflags`]), and
//! a delivery checks whether its connection holds notes and the batch
//! events (two length compares). Nothing is formatted, allocated or
//! locked.
//!
//! What memcached logs at its `do_item_get` (every lookup: the one each
//! store, delete, touch, incr/decr makes too, in every protocol) and at an
//! eviction only the plugin knows: a plugin of ABI v6 reports them through
//! its `log_event` import while a request carries `LOG_LOOKUP` /
//! `LOG_EVICTIONS` (docs/plugin-abi.md). For an older plugin the host logs
//! what the answers show: the get family's lookups and the stores.
//!
//! With watchers: each watcher has a buffer of `-o watcher_logbuf_size`
//! bytes, filled by the workers under a short lock and emptied by a thread
//! of its own that writes to the watcher's socket. A line that does not fit
//! is not written and counted; the watcher gets `skipped=N` before its next
//! lines, as memcached sends it. Workers never wait on a watcher's socket.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use wasmcached_protocol::text::WatchFlags;

/// Streams watched by at least one watcher.
static MASK: AtomicU8 = AtomicU8::new(0);
static GID: AtomicU64 = AtomicU64::new(0);
static WATCHERS: Mutex<Vec<Arc<Watcher>>> = Mutex::new(Vec::new());
static WORKER_WRITTEN: AtomicU64 = AtomicU64::new(0);
static WATCHER_SKIPPED: AtomicU64 = AtomicU64::new(0);
static WATCHER_SENT: AtomicU64 = AtomicU64::new(0);

pub const FETCHERS: u8 = 1;
pub const MUTATIONS: u8 = 2;
pub const EVICTIONS: u8 = 4;
pub const CONNEVENTS: u8 = 8;

/// Which streams have a watcher (one relaxed load).
#[inline]
pub fn mask() -> u8 {
    MASK.load(Ordering::Relaxed)
}

/// The request mflags that ask a v6 plugin for the events the watched
/// streams need (0 when nobody watches them): lookups for `fetchers` (and
/// for `mutations`, whose append lines need the size the plugin reports),
/// evictions for `evictions`.
#[inline]
pub fn plugin_mflags() -> u32 {
    use wasmcached_abi::mflag;
    let m = mask();
    let mut bits = 0;
    if m & (FETCHERS | MUTATIONS) != 0 {
        bits |= mflag::LOG_LOOKUP;
    }
    if m & EVICTIONS != 0 {
        bits |= mflag::LOG_EVICTIONS;
    }
    bits
}

/// The streams of a parsed `watch` this host logs (others are accepted and
/// stay silent: rawcmds, sysevents, proxy streams).
pub fn from_flags(f: WatchFlags) -> u8 {
    let mut m = 0;
    if f.0 & WatchFlags::FETCHERS != 0 {
        m |= FETCHERS;
    }
    if f.0 & WatchFlags::MUTATIONS != 0 {
        m |= MUTATIONS;
    }
    if f.0 & WatchFlags::EVICTIONS != 0 {
        m |= EVICTIONS;
    }
    if f.0 & WatchFlags::CONNEVENTS != 0 {
        m |= CONNEVENTS;
    }
    m
}

/// `log_worker_dropped`, `log_worker_written`, `log_watcher_skipped`,
/// `log_watcher_sent`, `log_watchers` for `stats`.
pub fn counters() -> [u64; 5] {
    let watchers = WATCHERS.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
    [
        0,
        WORKER_WRITTEN.load(Ordering::Relaxed),
        WATCHER_SKIPPED.load(Ordering::Relaxed),
        WATCHER_SENT.load(Ordering::Relaxed),
        watchers,
    ]
}

struct State {
    buf: Vec<u8>,
    lines: u64,
    skipped: u64,
    stop: bool,
}

pub struct Watcher {
    mask: u8,
    /// Set once the connection has written every answer before `watch`'s
    /// `OK` (its own): log lines go out only after those.
    ready: std::sync::atomic::AtomicBool,
    cap: usize,
    state: Mutex<State>,
    cv: Condvar,
}

/// Held by the watcher's connection: dropping it (the connection closes)
/// stops the watcher.
pub struct Handle(Arc<Watcher>);

impl Handle {
    /// The connection has written everything up to `OK`.
    pub fn release(&self) {
        if !self.0.ready.swap(true, Ordering::Relaxed) {
            let _g = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            self.0.cv.notify_one();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.0.cv.notify_one();
        remove(&self.0);
    }
}

fn remove(w: &Arc<Watcher>) {
    let mut all = WATCHERS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|x| !Arc::ptr_eq(x, w));
    MASK.store(all.iter().fold(0, |m, w| m | w.mask), Ordering::Relaxed);
}

/// Turns `sock` (a clone of the connection's socket) into a watcher of
/// `mask`: log lines, written by a thread of its own once the connection
/// has written its `OK` ([`Handle::release`]).
pub fn start(
    mut sock: impl Write + Send + 'static,
    mask: u8,
    cap: usize,
) -> std::io::Result<Handle> {
    let w = Arc::new(Watcher {
        mask,
        ready: Default::default(),
        cap: cap.max(1024),
        state: Mutex::new(State {
            buf: Vec::new(),
            lines: 0,
            skipped: 0,
            stop: false,
        }),
        cv: Condvar::new(),
    });
    let t = w.clone();
    std::thread::Builder::new()
        .name("watcher".into())
        .spawn(move || {
            let mut out = Vec::new();
            loop {
                if !out.is_empty() && write_all(&mut sock, &out, &t).is_err() {
                    break;
                }
                out.clear();
                let mut st = t.state.lock().unwrap_or_else(|e| e.into_inner());
                while (!t.ready.load(Ordering::Relaxed) || (st.buf.is_empty() && st.skipped == 0))
                    && !st.stop
                {
                    st = t.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.stop {
                    break;
                }
                if st.skipped > 0 {
                    out.extend_from_slice(format!("skipped={}\n", st.skipped).as_bytes());
                    st.skipped = 0;
                }
                out.append(&mut st.buf);
                WATCHER_SENT.fetch_add(std::mem::take(&mut st.lines), Ordering::Relaxed);
            }
            remove(&t);
        })?;
    let mut all = WATCHERS.lock().unwrap_or_else(|e| e.into_inner());
    all.push(w.clone());
    MASK.fetch_or(mask, Ordering::Relaxed);
    Ok(Handle(w))
}

/// The socket is the connection's, non-blocking: a full socket buffer is
/// waited out here, on the watcher's thread.
fn write_all(sock: &mut impl Write, mut buf: &[u8], w: &Watcher) -> std::io::Result<()> {
    while !buf.is_empty() {
        match sock.write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if w.state.lock().unwrap_or_else(|e| e.into_inner()).stop {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Formats one line of stream `kind` (after `ts=… gid=… `) and hands it to
/// every watcher of that stream.
pub fn log(kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let all = WATCHERS.lock().unwrap_or_else(|e| e.into_inner());
    let targets: Vec<&Arc<Watcher>> = all.iter().filter(|w| w.mask & kind != 0).collect();
    if targets.is_empty() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let gid = GID.fetch_add(1, Ordering::Relaxed) + 1;
    // memcached prints the microseconds without padding (`%d.%d`).
    let mut line = format!("ts={}.{} gid={gid} ", now.as_secs(), now.subsec_micros()).into_bytes();
    body(&mut line);
    line.push(b'\n');
    WORKER_WRITTEN.fetch_add(1, Ordering::Relaxed);
    for w in targets {
        let mut st = w.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.buf.len() + line.len() > w.cap {
            st.skipped += 1;
            WATCHER_SKIPPED.fetch_add(1, Ordering::Relaxed);
        } else {
            st.buf.extend_from_slice(&line);
            st.lines += 1;
        }
        drop(st);
        w.cv.notify_one();
    }
}

/// What a get or store will log once its answer arrives (kept on the
/// connection only while someone watches, or per-prefix stats are on).
pub struct Note {
    pub seq: u64,
    pub key: Box<[u8]>,
    /// `None`: a fetch (item_get); `Some`: a store command's name.
    pub cmd: Option<&'static str>,
    pub ttl: i64,
    /// memcached's item size for the stored value (its slab class).
    pub clsid: u32,
    pub size: usize,
    /// Per-prefix stats were on at the request: a hit counts
    /// ([`crate::detail`]).
    pub detail: bool,
}

/// `rip=… rport=… transport=…` of a connection, from its `tcp:ip:port`
/// address as `stats conns` shows it.
pub fn peer(addr: &str) -> String {
    if let Some(a) = addr.strip_prefix("tcp:") {
        if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
            return format!("rip={} rport={} transport=tcp", sa.ip(), sa.port());
        }
    }
    "transport=local".to_string()
}

/// `type=conn_new …`
pub fn conn_new(addr: &str, cfd: u64) {
    log(CONNEVENTS, |out| {
        let _ = write!(out, "type=conn_new {} cfd={cfd}", peer(addr));
    });
}

/// `type=conn_close …`
pub fn conn_close(addr: &str, reason: &str, cfd: u64) {
    log(CONNEVENTS, |out| {
        let _ = write!(
            out,
            "type=conn_close {} reason={reason} cfd={cfd}",
            peer(addr)
        );
    });
}

/// Hands `body` (a line after `ts=… gid=… `) to the watchers of `kind`.
pub fn log_line(kind: u8, body: &[u8]) {
    log(kind, |out| out.extend_from_slice(body));
}

/// `type=item_get …`: a lookup of `key` by connection `cfd` that `found`
/// an item of slab class `clsid` and `size` value bytes, or not.
pub fn item_get_line(key: &[u8], found: Option<(u32, usize)>, cfd: u64) -> Vec<u8> {
    let mut out = b"type=item_get key=".to_vec();
    out.extend_from_slice(key);
    let (clsid, size) = found.unwrap_or((0, 0));
    let st = if found.is_some() {
        "found"
    } else {
        "not_found"
    };
    let _ = write!(out, " status={st} clsid={clsid} cfd={cfd} size={size}");
    out
}

/// `type=eviction …` (memcached's `_logger_log_evictions`): `ttl` is the
/// seconds it had left (-1: no exptime), `la` the seconds since its last
/// access, `size` its value bytes.
pub fn eviction(key: &[u8], fetched: bool, ttl: i64, la: i64, clsid: u32, size: u32) {
    log(EVICTIONS, |out| {
        out.extend_from_slice(b"type=eviction key=");
        out.extend_from_slice(key);
        let fetch = if fetched { "yes" } else { "no" };
        let _ = write!(
            out,
            " fetch={fetch} ttl={ttl} la={la} clsid={clsid} size={size}"
        );
    })
}

/// The line of `note` with the plugin's answer, and its stream: `found` (a
/// get found the item, of slab class `clsid` and `size` value bytes) or
/// the store's `status`.
pub fn answered_line(
    note: &Note,
    cfd: u64,
    found: Option<(u32, usize)>,
    status: &str,
) -> (u8, Vec<u8>) {
    match note.cmd {
        None => (FETCHERS, item_get_line(&note.key, found, cfd)),
        Some(cmd) => {
            let mut out = b"type=item_store key=".to_vec();
            out.extend_from_slice(&note.key);
            let _ = write!(
                out,
                " status={status} cmd={cmd} ttl={} clsid={} cfd={cfd} size={}",
                note.ttl, note.clsid, note.size
            );
            (MUTATIONS, out)
        }
    }
}

/// Logs `note` with the plugin's answer now (see [`answered_line`]).
pub fn answered(note: &Note, cfd: u64, found: Option<(u32, usize)>, status: &str) {
    let (kind, line) = answered_line(note, cfd, found, status);
    log_line(kind, &line);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes nothing until the test lets it.
    struct Gate(
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<Vec<u8>>,
    );

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.recv().map_err(|_| std::io::ErrorKind::BrokenPipe)?;
            self.1.send(buf.to_vec()).unwrap();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A watcher that falls behind loses lines, never blocks the logger,
    /// and is told how many with memcached's `skipped=N`.
    #[test]
    fn a_slow_watcher_gets_skipped_lines() {
        let (go, gate) = std::sync::mpsc::channel();
        let (tx, got) = std::sync::mpsc::channel();
        let h = start(Gate(gate, tx), FETCHERS, 1024).unwrap();
        h.release();
        assert_eq!(mask() & FETCHERS, FETCHERS);
        let note = Note {
            seq: 0,
            key: b"k".to_vec().into(),
            cmd: None,
            ttl: 0,
            clsid: 0,
            size: 0,
            detail: false,
        };
        // The writer thread blocks on the gate: the buffer (1 KiB) holds a
        // few lines, the rest are skipped.
        let skipped_before = WATCHER_SKIPPED.load(Ordering::Relaxed);
        for _ in 0..200 {
            answered(&note, 7, None, "");
        }
        let skipped = WATCHER_SKIPPED.load(Ordering::Relaxed) - skipped_before;
        assert!(skipped > 100, "{skipped}");
        // The count may arrive split over several `skipped=N` lines (the
        // writer may get a turn while the lines are still coming).
        let told = |t: &[u8]| -> u64 {
            String::from_utf8_lossy(t)
                .lines()
                .filter_map(|l| l.strip_prefix("skipped=")?.parse::<u64>().ok())
                .sum()
        };
        let mut text = Vec::new();
        while told(&text) < skipped {
            go.send(()).unwrap();
            text.extend(got.recv().unwrap());
        }
        let s = String::from_utf8_lossy(&text).to_string();
        assert!(
            s.lines().any(|l| l.starts_with("ts=")
                && l.ends_with(" type=item_get key=k status=not_found clsid=0 cfd=7 size=0")),
            "{s}"
        );
        assert_eq!(told(&text), skipped, "{s}");
        drop(h);
        drop(go);
        assert_eq!(mask() & FETCHERS, 0);
    }

    #[test]
    fn peers() {
        assert_eq!(
            peer("tcp:127.0.0.1:5000"),
            "rip=127.0.0.1 rport=5000 transport=tcp"
        );
        assert_eq!(peer("unix:"), "transport=local");
    }
}
