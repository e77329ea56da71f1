//! Worker threads: each runs an [`EventBase`], owns its connections and its
//! shards, and talks to other workers only through messages.
//!
//! One loop iteration: wait for I/O, messages or a timer; read and parse what
//! the ready connections sent, queueing each storage request on the batch of
//! the shard that owns its key; then run every batch for a local shard as one
//! guest call and send every batch for a foreign shard to its owner; finally
//! write what is ready. Answers from other workers arrive as messages and fill
//! the connections' reply slots in request order.

use crate::batch::{Batch, Msg, Outbox};
use crate::clock;
use crate::conn::Ticket;
use crate::conn::{Conn, ConnState, Protocol, ReadOutcome, Stream, UdpPeer};
use crate::core::Core;
use crate::counters::{bump, BufGauge, ThreadStats};
use crate::event_base::{EventBase, Interest};
use crate::plugin::Shard;
use crate::proto::{binary_cmd, meta_cmd, text_cmd};
use crate::reply::{Delivery, Reply};
use crate::settings::BindProtocol;
use crate::shared::{ConnInfo, Shared};
use crate::verbose::{self, Log};
use crossbeam_channel::Receiver;
use polling::Event;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmcached_abi as abi;
use wasmcached_protocol::binary;
use wasmcached_protocol::frame::{self, Flow, Rest, Step};
use wasmcached_protocol::text::{self, GetEnd, Limits, MetaOp, Parsed};
use wasmcached_protocol::udp;

pub mod listing;
#[cfg(target_os = "linux")]
mod ring_io;
mod scrape;

/// What a worker's timers mean.
pub enum Timer {
    Clock,
    Guest {
        shard: u32,
        generation: u64,
        token: u64,
    },
}

/// A live connection: its state, what `stats conns` shows of it, and its id there.
type Entry = (Conn<Reply>, Arc<ConnInfo>, u64);

/// Connections by slab index; the generation guards against index reuse.
struct Slab {
    conns: Vec<Option<Entry>>,
    gens: Vec<u32>,
    free: Vec<u32>,
}

impl Slab {
    fn get(&mut self, idx: u32) -> Option<&mut Conn<Reply>> {
        self.conns
            .get_mut(idx as usize)?
            .as_mut()
            .map(|(c, _, _)| c)
    }

    fn get_gen(&mut self, idx: u32, gen: u32) -> Option<&mut Conn<Reply>> {
        self.get(idx).filter(|c| c.gen == gen)
    }
}

pub struct Worker {
    core: Core,
    base: EventBase<Timer>,
    rx: Receiver<Msg>,
    slab: Slab,
    shards: Vec<Option<Shard>>,
    /// Connections with input left to parse (after `-R`, or once unblocked).
    ready: Vec<u32>,
    /// Connections that may have output to write or interest to change.
    touched: Vec<u32>,
    limits: Limits,
    max_rbuf: usize,
    /// UDP sockets (`-U`), shared by all workers like memcached's threads share them.
    udp: Vec<Arc<UdpSocket>>,
    /// Their ids in `stats conns`, which their requests show in the `-vv` log.
    udp_ids: Vec<u64>,
    /// One datagram's worth of receive buffer, kept so UDP reads allocate nothing.
    udp_buf: Vec<u8>,
    /// Shutting down: read no more commands, finish and close every connection.
    draining: bool,
    /// This worker has told the main thread that it has no connection left.
    drain_reported: bool,
    /// Item listings waiting for their clients to read (listing.rs).
    #[allow(clippy::vec_box)]
    listings: Vec<Box<crate::listing::Listing>>,
    /// io_uring: the last wait's completions (kept for their allocation).
    #[cfg(target_os = "linux")]
    completions: Vec<crate::event_base::uring::Completion>,
    /// io_uring: send buffers of connections closed while the kernel was
    /// sending from them (slab index, generation, buffer); each is freed
    /// when its send completes.
    #[cfg(target_os = "linux")]
    orphans: Vec<(u32, u32, Vec<u8>)>,
}

/// Poller keys of UDP sockets count down from here; connection keys are slab indices.
const UDP_KEY_BASE: u32 = u32::MAX;

impl Worker {
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        base: EventBase<Timer>,
        rx: Receiver<Msg>,
        shards: Vec<Shard>,
        udp: Vec<Arc<UdpSocket>>,
        udp_ids: Vec<u64>,
    ) -> Worker {
        let nshards = shared.router.shards() as usize;
        let mut owned: Vec<Option<Shard>> = (0..nshards).map(|_| None).collect();
        for s in shards {
            let id = s.config.shard_id as usize;
            owned[id] = Some(s);
        }
        let limits = Limits {
            item_size_max: shared.settings.item_size_max,
            cas_enabled: shared.settings.use_cas,
        };
        let max_rbuf = shared.settings.item_size_max + 256 * 1024;
        let hot_requests = shared.hotkeys.sampler(id);
        // Seeded apart from the requests' countdown.
        let hot_answers = shared.hotkeys.sampler(id + 1 + shared.settings.threads);
        Worker {
            core: Core {
                id,
                hot_requests,
                hot_answers,
                shared,
                batches: (0..nshards).map(|_| None).collect(),
                dirty: Vec::new(),
                pool: Vec::new(),
                outbox: Outbox::default(),
            },
            base,
            rx,
            slab: Slab {
                conns: Vec::new(),
                gens: Vec::new(),
                free: Vec::new(),
            },
            shards: owned,
            ready: Vec::new(),
            touched: Vec::new(),
            limits,
            max_rbuf,
            udp,
            udp_ids,
            udp_buf: Vec::new(),
            draining: false,
            drain_reported: false,
            listings: Vec::new(),
            #[cfg(target_os = "linux")]
            completions: Vec::new(),
            #[cfg(target_os = "linux")]
            orphans: Vec::new(),
        }
    }

    /// Runs the worker until `Msg::Shutdown` (or a fatal poll error), then
    /// hands its shards back (a graceful stop with `-e` saves them).
    pub fn run(mut self) -> Vec<Shard> {
        self.base
            .add_timer(Instant::now() + Duration::from_secs(1), Timer::Clock);
        for (i, sock) in self.udp.iter().enumerate() {
            let key = (UDP_KEY_BASE - i as u32) as usize;
            if let Err(e) = self.base.register(&**sock, key, Interest::READ) {
                eprintln!("worker {}: cannot poll the UDP socket: {e}", self.core.id);
            }
        }
        // Timers the shards asked for during init.
        for shard in self.shards.iter_mut().flatten() {
            schedule_guest_timers(&mut self.base, shard);
        }
        let mut events: Vec<Event> = Vec::with_capacity(256);
        loop {
            let max_wait = if self.ready.is_empty() {
                None
            } else {
                Some(Duration::ZERO)
            };
            events.clear();
            let rx = &self.rx;
            if let Err(e) = self
                .base
                .wait_parked(max_wait, || !rx.is_empty(), |ev| events.push(ev))
            {
                eprintln!("worker {}: poll failed: {e}", self.core.id);
                return std::mem::take(&mut self.shards)
                    .into_iter()
                    .flatten()
                    .collect();
            }
            for ev in &events {
                self.on_event(ev.key as u32, ev.readable, ev.writable);
            }
            #[cfg(target_os = "linux")]
            self.on_completions();
            if !self.drain_messages() {
                return std::mem::take(&mut self.shards)
                    .into_iter()
                    .flatten()
                    .collect();
            }
            self.parse_ready();
            self.flush_batches();
            self.write_touched();
            self.resume_listings();
            self.core
                .outbox
                .send(self.core.shared.workers.get().expect("workers started"));
            while let Some(t) = self.base.pop_due_timer() {
                self.on_timer(t);
            }
            if self.draining && !self.drain_reported && self.open_conns() == 0 {
                self.drain_reported = true;
                let shared = &self.core.shared;
                shared.drained.fetch_add(1, Ordering::SeqCst);
                if let Some(w) = shared.main_waker.get() {
                    w.wake();
                }
            }
        }
    }

    fn on_event(&mut self, idx: u32, readable: bool, writable: bool) {
        if idx > UDP_KEY_BASE - self.udp.len() as u32 {
            return self.on_udp((UDP_KEY_BASE - idx) as usize);
        }
        let max_rbuf = self.max_rbuf;
        let Some(conn) = self.slab.get(idx) else {
            return;
        };
        if writable && conn.has_unwritten() {
            match conn.flush() {
                Ok(n) => bump(
                    &self.core.shared.threads[self.core.id].bytes_written,
                    n as u64,
                ),
                Err(_) => return self.close(idx),
            }
        }
        if readable && !conn.state().is_closing() && !self.draining && !conn.over_high_water() {
            match conn.fill(max_rbuf) {
                Ok(ReadOutcome::Data(n)) => {
                    bump(&self.core.shared.threads[self.core.id].bytes_read, n as u64)
                }
                Ok(ReadOutcome::WouldBlock) => {}
                Ok(ReadOutcome::Eof) | Err(_) => return self.close(idx),
            }
            self.parse(idx);
        }
        self.touch(idx);
    }

    fn touch(&mut self, idx: u32) {
        self.touched.push(idx);
    }

    /// Parses and executes what connection `idx` has buffered, up to `-R` commands.
    fn parse(&mut self, idx: u32) {
        let reqs_per_event = self.core.shared.settings.reqs_per_event;
        let limits = self.limits;
        let max_rbuf = self.max_rbuf;
        let Some(conn) = self.slab.get(idx) else {
            return;
        };
        if conn.watcher.is_some() || conn.state().is_closing() {
            // A watcher's input is not read as commands (as in memcached),
            // and memcached stops reading a connection it is closing.
            conn.rstart = conn.rend;
            conn.shrink_rbuf();
            return;
        }
        let swallow = match conn.reading() {
            ConnState::Swallow(n) => n,
            _ => 0,
        };
        conn.set_state(ConnState::ParseCmd);
        let rbuf = std::mem::take(&mut conn.rbuf);
        let input = &rbuf[conn.rstart..conn.rend];
        let mut protocol = conn.protocol;
        let mut exec = Exec {
            core: &mut self.core,
            conn,
            idx,
            limits,
            max_rbuf,
            handled: 0,
            reqs_per_event,
        };
        let framed = frame::run(&mut protocol, input, swallow, &mut exec);
        let conn = exec.conn;
        conn.protocol = protocol;
        conn.rbuf = rbuf;
        conn.rstart += framed.consumed;
        conn.shrink_rbuf();
        let yielded = match framed.rest {
            Rest::Read { need: 0 } => {
                conn.set_state(ConnState::Read);
                false
            }
            Rest::Read { need } => {
                conn.set_state(ConnState::Nread(need));
                false
            }
            Rest::Swallow(n) => {
                conn.set_state(ConnState::Swallow(n));
                false
            }
            // Back-pressure: parsing resumes once the replies drain
            // (`write_touched`), as memcached's conn_mwrite goes back to
            // parsing after writing.
            Rest::Stopped(Flow::Pause) => {
                conn.set_state(ConnState::Mwrite);
                false
            }
            Rest::Stopped(_) => {
                conn.set_state(ConnState::Read);
                true
            }
            Rest::Closed => false,
        };
        if yielded && !conn.queued {
            conn.queued = true;
            self.ready.push(idx);
            bump(&self.core.shared.threads[self.core.id].conn_yields, 1);
        }
    }

    fn parse_ready(&mut self) {
        for idx in std::mem::take(&mut self.ready) {
            if let Some(c) = self.slab.get(idx) {
                c.queued = false;
                self.parse(idx);
                self.touch(idx);
            }
        }
    }

    /// Runs local batches and sends the others to their owners.
    fn flush_batches(&mut self) {
        while !self.core.dirty.is_empty() {
            for shard in std::mem::take(&mut self.core.dirty) {
                let Some(mut b) = self.core.batches[shard as usize].take() else {
                    continue;
                };
                b.seal();
                let owner = self.core.shared.router.owner(shard);
                if owner == self.core.id {
                    self.run_local(b);
                } else {
                    let st = &self.core.shared.threads[self.core.id];
                    bump(&st.figures.forwarded_batches, 1);
                    self.core.outbox.post(owner, Msg::Run(b));
                }
            }
        }
    }

    /// Runs a batch built here on a shard owned here, delivering straight from guest memory.
    fn run_local(&mut self, mut b: Box<Batch>) {
        let shard = self.shards[b.shard as usize].as_mut().expect("local shard");
        let shared = &self.core.shared;
        let st = &shared.threads[self.core.id];
        ask_for_events(shard, &mut b.data);
        let started = Instant::now();
        let result = shard.batch(&b.data, b.count);
        guest_call_done(st, started, b.count);
        match result {
            Ok(answers) => {
                let mut events = answers.events();
                for (i, (r, t)) in answers.records().zip(b.tickets.iter()).enumerate() {
                    if !events.is_empty() {
                        watch_events(&mut self.slab, &mut events, i as u32, *t, shared);
                    }
                    if self.core.hot_answers.tick() {
                        shared.hotkeys.answer(self.core.id, &r);
                    }
                    deliver(
                        &mut self.slab,
                        &mut self.touched,
                        shared,
                        st,
                        *t,
                        Delivery::Resp(r),
                    );
                }
            }
            Err(f) => {
                for t in &b.tickets {
                    deliver(
                        &mut self.slab,
                        &mut self.touched,
                        shared,
                        st,
                        *t,
                        Delivery::Fault(&f.0),
                    );
                }
            }
        }
        for (group, t) in std::mem::take(&mut b.stats) {
            let text = shard.stats(group);
            deliver(
                &mut self.slab,
                &mut self.touched,
                shared,
                st,
                t,
                Delivery::Stats(&text),
            );
        }
        schedule_guest_timers(&mut self.base, shard);
        self.core.recycle(b);
    }

    /// Runs a batch another worker sent for a shard owned here and sends the answers back.
    fn run_remote(&mut self, mut b: Box<Batch>) {
        let Some(shard) = self.shards[b.shard as usize].as_mut() else {
            b.fault = Some("shard routed to the wrong worker".into());
            return self.reply_remote(b);
        };
        ask_for_events(shard, &mut b.data);
        let started = Instant::now();
        let result = shard.batch(&b.data, b.count);
        guest_call_done(&self.core.shared.threads[self.core.id], started, b.count);
        match result {
            Ok(answers) => {
                b.events.clear();
                b.events.extend_from_slice(answers.events());
                answers.copy_to(&mut b.data)
            }
            Err(f) => b.fault = Some(f.0),
        }
        for (group, _) in &b.stats {
            b.stats_out.push(shard.stats(*group));
        }
        schedule_guest_timers(&mut self.base, shard);
        self.reply_remote(b)
    }

    fn reply_remote(&mut self, b: Box<Batch>) {
        let origin = b.origin;
        self.core.outbox.post(origin, Msg::Done(b));
    }

    /// Delivers the answers of a batch this worker sent to another.
    fn on_done(&mut self, mut b: Box<Batch>) {
        let shared = &self.core.shared;
        let st = &shared.threads[self.core.id];
        match &b.fault {
            None => {
                let recs = abi::responses(&b.data).into_iter().flatten();
                let mut events = &b.events[..];
                for (i, (r, t)) in recs.zip(b.tickets.iter()).enumerate() {
                    if !events.is_empty() {
                        watch_events(&mut self.slab, &mut events, i as u32, *t, shared);
                    }
                    let d = match &r {
                        Some(r) => {
                            if self.core.hot_answers.tick() {
                                shared.hotkeys.answer(self.core.id, r);
                            }
                            Delivery::Resp(r.clone())
                        }
                        None => Delivery::Fault("malformed response"),
                    };
                    deliver(&mut self.slab, &mut self.touched, shared, st, *t, d);
                }
            }
            Some(f) => {
                for t in &b.tickets {
                    deliver(
                        &mut self.slab,
                        &mut self.touched,
                        shared,
                        st,
                        *t,
                        Delivery::Fault(f),
                    );
                }
            }
        }
        let outs = std::mem::take(&mut b.stats_out);
        for ((_, t), text) in b.stats.iter().zip(outs.iter()) {
            deliver(
                &mut self.slab,
                &mut self.touched,
                shared,
                st,
                *t,
                Delivery::Stats(text),
            );
        }
        self.core.recycle(b);
    }

    /// Handles queued messages; false when the worker must stop.
    fn drain_messages(&mut self) -> bool {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Conn(stream) => self.open(stream),
                Msg::Run(b) => self.run_remote(b),
                Msg::Done(b) => self.on_done(b),
                Msg::Drain => self.drain(),
                Msg::Shutdown => {
                    self.close_all();
                    return false;
                }
                Msg::Reload(req) => self.reload_shards(req),
                Msg::ListStep(job) => self.list_step(job),
                Msg::ListOut(job) => self.list_out(job),
                Msg::Scrape(req) => self.scrape(req),
                Msg::Reply(t, text) => {
                    let st = &self.core.shared.threads[self.core.id];
                    let d = Delivery::Line(&text);
                    deliver(
                        &mut self.slab,
                        &mut self.touched,
                        &self.core.shared,
                        st,
                        t,
                        d,
                    );
                }
            }
        }
        true
    }

    /// Reads the datagrams waiting on UDP socket `i`: each is one request
    /// (memcached's 8-byte frame header, then the command), answered on a
    /// short-lived pseudo-connection that sends its replies framed and closes.
    fn on_udp(&mut self, i: usize) {
        let sock = self.udp[i].clone();
        let mut buf = std::mem::take(&mut self.udp_buf);
        buf.resize(65536, 0);
        // Bounded, so one busy UDP socket cannot starve the TCP connections.
        for _ in 0..64 {
            let (n, peer) = match sock.recv_from(&mut buf) {
                Ok(r) => r,
                Err(_) => break,
            };
            let Some((frame, payload)) = udp::parse(&buf[..n]) else {
                continue;
            };
            bump(&self.core.shared.threads[self.core.id].bytes_read, n as u64);
            let peer = UdpPeer {
                sock: sock.clone(),
                peer,
                request_id: frame.request_id,
                binary_request: binary::whole_request(payload),
            };
            if !frame.is_single() {
                peer.send_framed(b"SERVER_ERROR multi-packet request not supported\r\n");
                continue;
            }
            let id = self.udp_ids.get(i).copied().unwrap_or(0);
            self.open_udp(peer, id, payload);
        }
        self.udp_buf = buf;
    }

    fn open_udp(&mut self, peer: UdpPeer, id: u64, payload: &[u8]) {
        let idx = match self.slab.free.pop() {
            Some(i) => i,
            None => {
                self.slab.conns.push(None);
                bump(&self.core.shared.conns.conn_structs, 1);
                self.slab.gens.push(0);
                (self.slab.conns.len() - 1) as u32
            }
        };
        let gen = self.slab.gens[idx as usize].wrapping_add(1);
        self.slab.gens[idx as usize] = gen;
        let mut conn = Conn::new(Stream::Udp(peer), gen, clock::now());
        // memcached logs a UDP request under its UDP socket.
        conn.id = id;
        // memcached's try_read_command_udp: each datagram's first byte picks
        // the protocol, whatever -B says.
        conn.protocol = Some(
            payload
                .first()
                .map_or(Protocol::Text, |&b| Protocol::negotiate(b)),
        );
        if conn.rbuf.len() < payload.len() {
            conn.rbuf.resize(payload.len(), 0);
        }
        conn.rbuf[..payload.len()].copy_from_slice(payload);
        conn.rend = payload.len();
        let (addr, listen_addr) = conn.stream.describe();
        let info = Arc::new(ConnInfo {
            addr,
            listen_addr,
            udp: false,
            state: conn.shown_state(),
            last_cmd_time: AtomicU32::new(clock::now()),
            bufs: BufGauge::default(),
        });
        // UDP requests are not connections: not counted, not listed.
        self.slab.conns[idx as usize] = Some((conn, info, 0));
        self.parse(idx);
        if let Some(c) = self.slab.get(idx) {
            // One datagram, one request batch: what did not parse is dropped.
            if !c.state().is_closing() {
                c.set_state(ConnState::Closing);
            }
        }
        self.touch(idx);
    }

    fn open(&mut self, stream: Stream) {
        let shared = self.core.shared.clone();
        if stream.set_nonblocking().is_err() {
            shared
                .conns
                .curr_connections
                .fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let idx = match self.slab.free.pop() {
            Some(i) => i,
            None => {
                self.slab.conns.push(None);
                bump(&self.core.shared.conns.conn_structs, 1);
                self.slab.gens.push(0);
                (self.slab.conns.len() - 1) as u32
            }
        };
        let gen = self.slab.gens[idx as usize].wrapping_add(1);
        self.slab.gens[idx as usize] = gen;
        let mut conn = Conn::new(stream, gen, clock::now());
        // -B fixes the protocol; under `auto` the first byte will choose it.
        conn.protocol = match shared.settings.protocol {
            BindProtocol::Auto => None,
            BindProtocol::Ascii => Some(Protocol::Text),
            BindProtocol::Binary => Some(Protocol::Binary),
        };
        let key = idx as usize;
        #[cfg(target_os = "linux")]
        let on_ring = Self::ring_open(&mut self.base, &mut conn, idx);
        #[cfg(not(target_os = "linux"))]
        let on_ring = false;
        let registered = match &conn.stream {
            _ if on_ring => Ok(()),
            Stream::Tcp(s) => self.base.register(s, key, Interest::READ),
            Stream::Tls(t) => self.base.register(&t.sock, key, Interest::READ),
            #[cfg(unix)]
            Stream::Unix(s) => self.base.register(s, key, Interest::READ),
            Stream::Udp(_) => Err(std::io::ErrorKind::Unsupported.into()),
        };
        if registered.is_err() {
            shared
                .conns
                .curr_connections
                .fetch_sub(1, Ordering::Relaxed);
            self.slab.free.push(idx);
            return;
        }
        let (addr, listen_addr) = conn.stream.describe();
        let info = Arc::new(ConnInfo {
            addr,
            listen_addr,
            udp: false,
            state: conn.shown_state(),
            last_cmd_time: AtomicU32::new(clock::now()),
            bufs: BufGauge::default(),
        });
        let id = crate::shared::stream_id(&shared, &conn.stream);
        shared
            .conn_registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info.clone());
        bump(&shared.threads[self.core.id].total_connections, 1);
        if verbose::commands() {
            let how = match conn.protocol {
                None => "new auto-negotiating client connection",
                Some(Protocol::Text) => "new ascii client connection.",
                Some(Protocol::Binary) => "new binary client connection.",
            };
            eprintln!("<{id} {how}");
        }
        if crate::watch::mask() & crate::watch::CONNEVENTS != 0 {
            crate::watch::conn_new(&info.addr, id);
        }
        conn.id = id;
        self.slab.conns[idx as usize] = Some((conn, info, id));
    }

    fn close(&mut self, idx: u32) {
        let Some((conn, info, id)) = self.slab.conns.get_mut(idx as usize).and_then(|c| c.take())
        else {
            return;
        };
        if crate::watch::mask() & crate::watch::CONNEVENTS != 0 && !conn.stream.is_udp() {
            crate::watch::conn_close(&info.addr, "normal", id);
        }
        #[cfg(target_os = "linux")]
        let on_ring = conn.ring.is_some();
        #[cfg(not(target_os = "linux"))]
        let on_ring = false;
        let _ = match &conn.stream {
            // Never on epoll.
            _ if on_ring => Ok(()),
            Stream::Tcp(s) => self.base.deregister(s),
            Stream::Tls(t) => self.base.deregister(&t.sock),
            #[cfg(unix)]
            Stream::Unix(s) => self.base.deregister(s),
            Stream::Udp(_) => {
                self.slab.free.push(idx);
                return;
            }
        };
        let shared = &self.core.shared;
        // Before the socket closes: its id (the descriptor) is free for the
        // next connection from then on.
        shared
            .conn_registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.release_socket(conn, idx);
        self.slab.free.push(idx);
        self.core
            .shared
            .conns
            .curr_connections
            .fetch_sub(1, Ordering::Relaxed);
        if verbose::commands() {
            eprintln!("<{id} connection closed.");
        }
    }

    /// Closes a closed connection's socket; for a ring connection, once its
    /// receive is cancelled, with a send in flight keeping its buffer
    /// (`orphans`).
    #[cfg_attr(not(target_os = "linux"), allow(unused_mut, unused_variables))]
    fn release_socket(&mut self, mut conn: Conn<Reply>, idx: u32) {
        #[cfg(target_os = "linux")]
        self.orphans
            .extend(Self::ring_close(&mut self.base, &mut conn, idx));
        drop(conn);
    }

    /// Graceful stop, first half: every connection reads no further from its
    /// socket, gets the answers to every command it already sent (buffered
    /// ones included), and closes once they are written. Batches from other workers for this
    /// worker's shards keep running until `Msg::Shutdown`.
    fn drain(&mut self) {
        self.draining = true;
        for idx in 0..self.slab.conns.len() as u32 {
            if self.slab.get(idx).is_some() {
                self.touched.push(idx);
            }
        }
    }

    /// Open client connections (UDP requests are not connections).
    fn open_conns(&self) -> usize {
        self.slab
            .conns
            .iter()
            .flatten()
            .filter(|(c, _, _)| !c.stream.is_udp())
            .count()
    }

    fn close_all(&mut self) {
        for idx in 0..self.slab.conns.len() as u32 {
            if let Some(c) = self.slab.get(idx) {
                let _ = c.flush();
            }
            self.close(idx);
        }
    }

    /// Writes what is ready and sets each touched connection's interest.
    fn write_touched(&mut self) {
        let rearm = self.base.rearm_each_event();
        let touched = std::mem::take(&mut self.touched);
        for &idx in &touched {
            let st = &self.core.shared.threads[self.core.id];
            let Some((conn, info, _)) = self
                .slab
                .conns
                .get_mut(idx as usize)
                .and_then(|c| c.as_mut())
            else {
                continue;
            };
            // A UDP reply leaves in one go, once every part of it is there.
            let udp = conn.stream.is_udp();
            if udp && conn.slots_waiting() {
                continue;
            }
            if conn.written_direct > 0 {
                bump(
                    &st.bytes_written,
                    std::mem::take(&mut conn.written_direct) as u64,
                );
            }
            let answered = conn.has_unwritten();
            if answered {
                match conn.flush() {
                    Ok(n) => bump(&st.bytes_written, n as u64),
                    Err(_) => {
                        self.close(idx);
                        continue;
                    }
                }
            }
            if udp {
                if let Stream::Udp(peer) = &conn.stream {
                    if !answered && peer.binary_request {
                        peer.send_empty_frame();
                    }
                }
                self.close(idx);
                continue;
            }
            let finished = !conn.has_unwritten() && !conn.slots_waiting();
            if finished {
                if let Some(w) = &conn.watcher {
                    w.release();
                }
            }
            // Draining: done when nothing is left to answer or to parse (an
            // incomplete command in the buffer is dropped, as on close).
            // Parsing stopped for back-pressure (conn_mwrite, then back to parsing).
            let paused = conn.state() == ConnState::Mwrite && conn.reading() == ConnState::ParseCmd;
            let drained = self.draining && finished && !paused && !conn.queued;
            let close = match conn.state() {
                ConnState::Closed => true,
                ConnState::Closing => finished,
                _ => drained,
            };
            if close {
                self.close(idx);
                continue;
            }
            // The replies have drained: parse the rest next iteration.
            // (Input that is merely incomplete waits for the socket, or the
            // loop would spin on it.)
            if paused && !conn.has_unwritten() && !conn.over_high_water() && !conn.queued {
                conn.set_state(ConnState::Read);
                conn.queued = true;
                self.ready.push(idx);
            }
            // memcached's conn_mwrite: the socket took less than was ready.
            if conn.has_unwritten() {
                if !conn.state().is_closing() {
                    conn.set_state(ConnState::Mwrite);
                }
            } else if conn.state() == ConnState::Mwrite && !paused {
                conn.written();
            }
            let want = if conn.has_unwritten() {
                Interest::WRITE
            } else if conn.state() == ConnState::Closing || self.draining || conn.over_high_water()
            {
                Interest::NONE
            } else {
                Interest::READ
            };
            info.bufs.update(conn.rbuf.len(), conn.wbuf.capacity());
            info.last_cmd_time
                .store(conn.last_cmd_time, Ordering::Relaxed);
            // A ring connection keeps receiving while its replies are sent
            // (a send in flight is the kernel's, as a write that returned).
            #[cfg(target_os = "linux")]
            if conn.ring.is_some() {
                let read = !(conn.state() == ConnState::Closing
                    || self.draining
                    || conn.over_high_water());
                if Self::ring_update(&mut self.base, conn, idx, read) && !conn.queued {
                    conn.queued = true;
                    self.ready.push(idx);
                }
                continue;
            }
            if want != conn.interest || rearm {
                conn.interest = want;
                let r = match &conn.stream {
                    Stream::Tcp(s) => self.base.modify(s, idx as usize, want),
                    Stream::Tls(t) => self.base.modify(&t.sock, idx as usize, want),
                    #[cfg(unix)]
                    Stream::Unix(s) => self.base.modify(s, idx as usize, want),
                    Stream::Udp(_) => Ok(()),
                };
                if r.is_err() {
                    self.close(idx);
                }
            }
        }
        let mut touched = touched;
        touched.clear();
        if self.touched.is_empty() {
            self.touched = touched;
        }
    }

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Clock => {
                self.base
                    .add_timer(Instant::now() + Duration::from_secs(1), Timer::Clock);
                let now = clock::now();
                for shard in self.shards.iter_mut().flatten() {
                    shard.tick(now);
                    schedule_guest_timers(&mut self.base, shard);
                }
                self.close_idle(now);
            }
            Timer::Guest {
                shard,
                generation,
                token,
            } => {
                if let Some(s) = self.shards[shard as usize].as_mut() {
                    if s.generation == generation {
                        s.timer(token);
                        schedule_guest_timers(&mut self.base, s);
                    }
                }
            }
        }
    }

    /// Swaps the new plugin into each shard this worker owns. The batches
    /// of the last loop iteration have all run on the old instances; the
    /// next ones run on the new (see host/src/reload.rs).
    fn reload_shards(&mut self, req: crate::batch::ReloadRequest) {
        for shard in self.shards.iter_mut().flatten() {
            let outcome = shard
                .reload(req.plugin.clone())
                .map_err(|e| format!("{e:#}"));
            // The new instance's timers; the old ones die with its generation.
            schedule_guest_timers(&mut self.base, shard);
            let _ = req.results.send(crate::batch::ShardResult {
                shard: shard.config.shard_id,
                outcome,
            });
        }
    }

    /// memcached's `-o idle_timeout`: close connections idle that long.
    fn close_idle(&mut self, now: u32) {
        let timeout = self.core.shared.settings.idle_timeout;
        if timeout == 0 {
            return;
        }
        for idx in 0..self.slab.conns.len() as u32 {
            let idle = self.slab.get(idx).is_some_and(|c| {
                !c.slots_waiting()
                    && !c.has_unwritten()
                    && now.saturating_sub(c.last_cmd_time) > timeout
            });
            if idle {
                bump(&self.core.shared.threads[self.core.id].idle_kicks, 1);
                self.close(idx);
            }
        }
    }
}

/// `-vv`: how a text command's replies are logged.
fn text_log(cmd: &text::Command<'_>, logging: bool) -> Log {
    use text::Command as C;
    match cmd {
        // memcached sets the level, then answers: the answer is logged at
        // the level it sets.
        C::Verbosity { level, .. } if *level >= verbose::MAX_SETTABLE as u32 => Log::Text,
        C::Verbosity { .. } => Log::Off,
        _ if !logging => Log::Off,
        C::Get { .. } | C::Gat { .. } => Log::Get,
        C::Stats(_) => Log::Stats,
        _ => Log::Text,
    }
}

/// The worker's side of the framing loop: runs each command on a connection.
struct Exec<'a> {
    core: &'a mut Core,
    conn: &'a mut Conn<Reply>,
    idx: u32,
    limits: Limits,
    max_rbuf: usize,
    handled: usize,
    reqs_per_event: usize,
}

impl frame::Sink for Exec<'_> {
    fn flow(&mut self) -> Flow {
        if self.conn.over_high_water() {
            Flow::Pause
        } else if self.handled == self.reqs_per_event {
            Flow::Yield
        } else {
            Flow::Go
        }
    }

    fn negotiated(&mut self, protocol: Protocol) {
        if verbose::commands() {
            let name = match protocol {
                Protocol::Binary => "binary",
                Protocol::Text => "ascii",
            };
            eprintln!("{}: Client using the {name} protocol", self.conn.id);
        }
    }

    fn command(&mut self, protocol: Protocol, input: &[u8]) -> Step {
        let step = match protocol {
            Protocol::Binary => self.binary(input),
            Protocol::Text => self.text(input),
        };
        if let Step::Done { .. } = step {
            self.handled += 1;
        }
        // The session modules leave what follows the command in the state:
        // the loop takes it over.
        match (self.conn.state(), step) {
            (s, _) if s.is_closing() => Step::Close,
            (ConnState::Swallow(swallow), Step::Done { consumed, .. }) => {
                self.conn.set_state(ConnState::ParseCmd);
                Step::Done { consumed, swallow }
            }
            (ConnState::Nread(need), Step::Incomplete { .. }) => {
                self.conn.set_state(ConnState::ParseCmd);
                Step::Incomplete { need }
            }
            _ => step,
        }
    }
}

impl Exec<'_> {
    fn binary(&mut self, input: &[u8]) -> Step {
        let conn = &mut *self.conn;
        // -vv: the level is read once per command.
        let logging = verbose::commands();
        let log = if logging { Log::Binary } else { Log::Off };
        // -S: memcached logs its authentication check too.
        let sasl = self
            .core
            .shared
            .settings
            .sasl
            .then_some(conn.auth.authenticated);
        conn.log_begin(logging, log, |out, id| {
            verbose::binary_request(out, id, input, sasl)
        });
        match binary_cmd::step(self.core, conn, self.idx, input, &self.limits) {
            binary_cmd::Step::Done(consumed) => {
                conn.log_end(true);
                conn.last_cmd_time = clock::now();
                Step::Done {
                    consumed,
                    swallow: 0,
                }
            }
            binary_cmd::Step::Incomplete(need) => {
                conn.log_end(false);
                Step::Incomplete { need }
            }
        }
    }

    fn text(&mut self, input: &[u8]) -> Step {
        let (core, conn, idx) = (&mut *self.core, &mut *self.conn, self.idx);
        let logging = verbose::commands();
        // A command that ran (not a refused line) sets the connection's time.
        let done = |conn: &mut Conn<Reply>, consumed| {
            conn.last_cmd_time = clock::now();
            Step::Done {
                consumed,
                swallow: 0,
            }
        };
        if let (Some(creds), false) = (&core.shared.settings.ascii_auth, conn.auth.authenticated) {
            // -Y: only the auth `set` is read until the connection
            // authenticates; memcached logs its answers, not its lines.
            conn.log_begin(false, if logging { Log::Text } else { Log::Off }, |_, _| {});
            let st = &core.shared.threads[core.id];
            let n = crate::auth::ascii_step(creds, st, conn, input, self.max_rbuf);
            conn.log_end(n.is_some());
            return n.map_or(Step::Incomplete { need: 0 }, |n| done(conn, n));
        }
        match text::parse(input, &self.limits) {
            Parsed::Incomplete { need } => {
                if need.is_none() && input.len() >= self.max_rbuf {
                    // Only a multi-get line may grow this long (the parser
                    // closes others at 2 KiB); past the read buffer's limit
                    // memcached gives up on the connection too.
                    conn.discard_unwritten(|| Reply::Discarded);
                    conn.set_state(ConnState::Closed);
                    return Step::Close;
                }
                Step::Incomplete {
                    need: need.unwrap_or(0),
                }
            }
            Parsed::Cmd {
                cmd: text::Command::Meta { op, line },
                consumed,
            } => {
                // The meta parser reads the line's flags and an `ms` data block.
                let log = match (logging, op) {
                    (false, _) => Log::Off,
                    (true, MetaOp::Debug) => Log::MetaDebug,
                    (true, _) => Log::Meta,
                };
                conn.log_begin(logging, log, |out, id| {
                    verbose::text_request(out, id, input)
                });
                let limits = &self.limits;
                let n = meta_cmd::step(core, conn, idx, op, line, input, consumed, limits);
                conn.log_end(n.is_some());
                n.map_or(Step::Incomplete { need: 0 }, |n| done(conn, n))
            }
            Parsed::Cmd { cmd, consumed } => {
                conn.log_begin(logging, text_log(&cmd, logging), |out, id| {
                    verbose::text_request(out, id, input);
                    if let text::Command::Get {
                        end: GetEnd::KeyTooLong,
                        ..
                    } = &cmd
                    {
                        // memcached ends the get (`END`) before the error.
                        out.extend_from_slice(format!(">{id} END\n").as_bytes());
                    }
                });
                let step = done(conn, consumed);
                text_cmd::execute(core, conn, idx, cmd);
                conn.log_end(true);
                step
            }
            Parsed::Error {
                reply,
                noreply,
                consumed,
                swallow,
                close,
                unlink,
            } => {
                // memcached logs the line, unless it closes on junk that
                // has no line end within its limit.
                let line = !close
                    || input[..consumed].iter().position(|&b| b == b'\n') == Some(consumed - 1);
                let log = if logging { Log::Text } else { Log::Off };
                conn.log_begin(logging && line, log, |out, id| {
                    verbose::text_request(out, id, input)
                });
                if close {
                    // memcached closes at once; queued replies are lost.
                    conn.discard_unwritten(|| Reply::Discarded);
                    conn.log_end(true);
                    conn.set_state(ConnState::Closed);
                    return Step::Close;
                }
                if let Some(key) = unlink {
                    crate::proto::common::unlink(core, conn, idx, key, "set");
                }
                if noreply {
                    conn.log_noreply(reply.as_bytes());
                } else if !reply.is_empty() {
                    conn.reply_with(Reply::Ready, |out| {
                        out.extend_from_slice(reply.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    });
                }
                conn.log_end(true);
                Step::Done { consumed, swallow }
            }
        }
    }
}

/// Counts a batch call into a plugin for `/metrics`: how long it took and
/// how many requests it carried (a batch of stats reads alone calls no
/// plugin batch).
fn guest_call_done(st: &ThreadStats, started: Instant, requests: u32) {
    if requests > 0 {
        let f = &st.figures;
        f.guest_call_ns.observe(started.elapsed().as_nanos() as u64);
        f.batch_requests.observe(u64::from(requests));
    }
}

fn schedule_guest_timers(base: &mut EventBase<Timer>, shard: &mut Shard) {
    let shard_id = shard.config.shard_id;
    let generation = shard.generation;
    for (token, delay_ms) in shard.take_timers() {
        base.add_timer(
            Instant::now() + Duration::from_millis(delay_ms as u64),
            Timer::Guest {
                shard: shard_id,
                generation,
                token,
            },
        );
    }
}

/// Hands one shard answer to the connection slot waiting for it.
fn deliver(
    slab: &mut Slab,
    touched: &mut Vec<u32>,
    shared: &Shared,
    st: &ThreadStats,
    t: Ticket,
    d: Delivery<'_>,
) {
    if t.conn == Ticket::DISCARD.conn || t.seq & Ticket::LOG_ONLY != 0 {
        return;
    }
    let Some(conn) = slab.get_gen(t.conn, t.gen) else {
        return;
    };
    if conn.log != Log::Off {
        text_cmd::log_noreply(conn, t.seq, &d, shared);
    }
    if !conn.watch_notes.is_empty() {
        watch_answer(conn, t.seq, &d, shared);
    }
    if conn.complete_direct(t.seq, |reply, last, out| {
        crate::proto::render_direct(reply, d, last, out, shared, st)
    }) {
        touched.push(t.conn);
    }
    if !conn.watch_queue.is_empty() {
        conn.watch_flush();
    }
}

/// While someone watches, asks a plugin that can (ABI v6, or a component
/// importing `events`) to report its lookups and evictions for the
/// requests of `batch`. Nobody watching costs one relaxed load per batch.
fn ask_for_events(shard: &Shard, batch: &mut [u8]) {
    let bits = crate::watch::plugin_mflags();
    if bits != 0 && shard.reports_events() {
        abi::or_request_mflags(batch, bits);
    }
}

/// `watch`: logs what the plugin reported (ABI v6) for request `i` of a
/// batch, which travels to ticket `t`: its lookups (`item_get`, attributed
/// to the connection), the items it evicted, and the size an append left
/// (for the request's own `item_store` line, logged with its answer).
#[cold]
fn watch_events(slab: &mut Slab, rest: &mut &[u8], i: u32, t: Ticket, shared: &Shared) {
    use wasmcached_abi::{event_flag, event_kind, Event};
    let limits = text::Limits {
        item_size_max: shared.settings.item_size_max,
        cas_enabled: shared.settings.use_cas,
    };
    let clsid = |key_len: usize, flags: u32, value_len: u32| {
        let ntotal = limits.item_size(key_len, flags, value_len as usize + 2);
        wasmcached_protocol::limits::slab_class(ntotal)
    };
    let mut conn = (t.conn != Ticket::DISCARD.conn)
        .then(|| slab.get_gen(t.conn, t.gen))
        .flatten();
    let seq = t.seq & !Ticket::LOG_ONLY;
    while let Some((e, n)) = Event::decode(rest) {
        if e.request != u32::MAX && e.request > i {
            return;
        }
        *rest = &rest[n..];
        if e.request != i {
            continue;
        }
        match e.kind {
            event_kind::EVICTION => {
                let now = clock::now();
                crate::watch::eviction(
                    e.key,
                    e.flags & event_flag::FETCHED != 0,
                    if e.exptime == 0 {
                        -1
                    } else {
                        e.exptime as i64 - now as i64
                    },
                    now as i64 - e.last_access as i64,
                    clsid(e.key.len(), e.client_flags, e.value_len),
                    e.value_len,
                );
            }
            event_kind::LOOKUP => {
                let Some(c) = conn.as_deref_mut() else {
                    continue;
                };
                if crate::watch::mask() & crate::watch::FETCHERS == 0 {
                    continue;
                }
                let found = (e.flags & event_flag::FOUND != 0).then(|| {
                    (
                        clsid(e.key.len(), e.client_flags, e.value_len),
                        e.value_len as usize,
                    )
                });
                let line = crate::watch::item_get_line(e.key, found, c.id);
                c.watch_emit(seq, crate::watch::FETCHERS, line);
            }
            event_kind::STORED => {
                let Some(c) = conn.as_deref_mut() else {
                    continue;
                };
                let cls = clsid(e.key.len(), e.client_flags, e.value_len);
                // memcached logs the stored item's TTL: an append keeps the
                // old item's.
                let ttl = if e.exptime == 0 {
                    0
                } else {
                    e.exptime as i64 - clock::now() as i64
                };
                match c
                    .watch_notes
                    .iter_mut()
                    .find(|n| n.seq == seq && n.cmd.is_some())
                {
                    Some(note) => {
                        note.size = e.value_len as usize;
                        note.clsid = cls;
                        note.ttl = ttl;
                    }
                    None => {
                        // A vivify: memcached stores the item with an add.
                        let note = crate::watch::Note {
                            seq,
                            key: e.key.into(),
                            cmd: Some("add"),
                            ttl,
                            clsid: cls,
                            size: e.value_len as usize,
                            detail: false,
                        };
                        let (kind, line) = crate::watch::answered_line(&note, c.id, None, "stored");
                        c.watch_emit(seq, kind, line);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `watch`: logs the get or store of slot `seq` with its answer `d`.
#[cold]
fn watch_answer(conn: &mut Conn<Reply>, seq: u64, d: &Delivery<'_>, shared: &Shared) {
    use wasmcached_abi::Status;
    let Some(i) = conn.watch_notes.iter().position(|n| n.seq == seq) else {
        return;
    };
    let note = conn.watch_notes.remove(i);
    let Delivery::Resp(r) = d else {
        return;
    };
    let status = r.status();
    if note.detail && status == Some(Status::Hit) {
        crate::detail::hit(&note.key);
    }
    if crate::watch::mask() == 0 {
        return;
    }
    if note.cmd.is_none() {
        // A v6 plugin reports its lookups itself (watch_events).
        if crate::plugin::plugin_reports_events() {
            return;
        }
        let found = (status == Some(Status::Hit)).then(|| {
            let limits = text::Limits {
                item_size_max: shared.settings.item_size_max,
                cas_enabled: shared.settings.use_cas,
            };
            let ntotal = limits.item_size(note.key.len(), r.client_flags, r.value.len() + 2);
            (
                wasmcached_protocol::limits::slab_class(ntotal),
                r.value.len(),
            )
        });
        let (kind, line) = crate::watch::answered_line(&note, conn.id, found, "");
        conn.watch_emit(seq, kind, line);
        return;
    }
    let word = match status {
        Some(Status::Stored) => "stored",
        Some(Status::NotStored) => "not_stored",
        Some(Status::Exists) => "exists",
        Some(Status::NotFound) => "not_found",
        Some(Status::TooLarge) => "too_large",
        Some(Status::OutOfMemory) => "no_memory",
        _ => return,
    };
    let (kind, line) = crate::watch::answered_line(&note, conn.id, None, word);
    conn.watch_emit(seq, kind, line);
}
