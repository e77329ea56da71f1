//! `Conn`: one client connection's buffers and state machine.
//!
//! The states are memcached's (`enum conn_states`: [`ConnState`]), changed
//! only by [`Conn::set_state`] (memcached's `conn_set_state`), which also
//! publishes them for `stats conns`. The worker moves a connection through
//! them around the framing loop (`wasmcached_protocol::frame`); the session
//! modules set `Nread`, `Swallow`, `Closing` and `Closed` as a command asks.
//! Replies are kept in request
//! order with *slots*: every command reserves one when it is parsed; a slot
//! whose answer comes from a shard (maybe on another worker) waits, and only
//! the finished prefix of the slot queue reaches the socket. While nothing is
//! waiting, replies go straight into the write buffer without a slot.

use crate::event_base::Interest;
use crate::verbose::{self, Log};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
pub use wasmcached_protocol::frame::Protocol;

/// Initial read buffer; it grows to fit one data block (at most `-I`).
const RBUF_INITIAL: usize = 16 * 1024;
/// Buffered replies beyond which the connection stops parsing new commands
/// until the client reads (back-pressure, like memcached's conn_mwrite).
pub const WRITE_HIGH_WATER: usize = 1024 * 1024;
/// Slots beyond which the connection stops parsing new commands. Answers
/// from other workers' shards arrive after the parse loop has moved on, so
/// the write buffer alone cannot hold a client that pipelines without
/// reading: this bounds what can be in flight to MAX_SLOTS answers (of at
/// most `-I` each) per connection. 64 keeps batches full for any client
/// that reads its answers.
pub const MAX_SLOTS: usize = 64;

/// A client socket: TCP, or a unix domain socket where the OS has them.
pub enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    /// One UDP request: replies go back to its sender, framed.
    Udp(UdpPeer),
    /// TCP with TLS (`-Z`).
    Tls(Box<crate::tls::TlsStream>),
}

/// memcached's UDP_MAX_PAYLOAD_SIZE: one reply datagram, frame header included.
pub const UDP_MAX_PAYLOAD: usize = 1400;
/// memcached's 8-byte UDP frame header: request id, sequence number, datagram
/// count, reserved (all big-endian u16).
pub const UDP_HEADER: usize = 8;

/// Where the replies of one UDP request go.
pub struct UdpPeer {
    pub sock: Arc<UdpSocket>,
    pub peer: SocketAddr,
    pub request_id: u16,
    /// The datagram holds one whole binary request: if it answers nothing
    /// (a quiet miss), memcached still sends an empty frame.
    pub binary_request: bool,
}

impl UdpPeer {
    /// The answer to a binary request that has nothing to say: memcached's
    /// frame header alone, sequence 0 of 0 datagrams.
    pub fn send_empty_frame(&self) {
        let mut dgram = [0u8; UDP_HEADER];
        dgram[..2].copy_from_slice(&self.request_id.to_be_bytes());
        let _ = self.sock.send_to(&dgram, self.peer);
    }

    /// Sends `data` as memcached does: split into datagrams of at most
    /// [`UDP_MAX_PAYLOAD`] bytes, each with the frame header. UDP is
    /// best-effort: a datagram the socket cannot take now is dropped.
    pub fn send_framed(&self, data: &[u8]) {
        let chunk = UDP_MAX_PAYLOAD - UDP_HEADER;
        let total = data.len().div_ceil(chunk).clamp(1, u16::MAX as usize);
        let mut dgram = Vec::with_capacity(UDP_MAX_PAYLOAD);
        for seq in 0..total {
            let part = &data[(seq * chunk).min(data.len())..((seq + 1) * chunk).min(data.len())];
            dgram.clear();
            dgram.extend_from_slice(&self.request_id.to_be_bytes());
            dgram.extend_from_slice(&(seq as u16).to_be_bytes());
            dgram.extend_from_slice(&(total as u16).to_be_bytes());
            dgram.extend_from_slice(&[0, 0]);
            dgram.extend_from_slice(part);
            let _ = self.sock.send_to(&dgram, self.peer);
        }
    }
}

impl Stream {
    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)
            }
            #[cfg(unix)]
            Stream::Unix(s) => s.set_nonblocking(true),
            Stream::Udp(_) => Ok(()),
            Stream::Tls(t) => {
                t.sock.set_nodelay(true)?;
                t.sock.set_nonblocking(true)
            }
        }
    }

    pub fn is_udp(&self) -> bool {
        matches!(self, Stream::Udp(_))
    }

    /// The socket of a stream the io_uring backend can drive itself (plain
    /// TCP or unix): TLS and UDP stay on readiness.
    #[cfg(target_os = "linux")]
    pub fn ring_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => Some(s.as_raw_fd()),
            Stream::Unix(s) => Some(s.as_raw_fd()),
            Stream::Udp(_) | Stream::Tls(_) => None,
        }
    }

    /// memcached's `stats conns` address form (`tcp:1.2.3.4:5`, `unix:/path`).
    pub fn describe(&self) -> (String, String) {
        match self {
            Stream::Tls(t) => (
                t.sock
                    .peer_addr()
                    .map(|a| format!("tcp:{a}"))
                    .unwrap_or_default(),
                t.sock
                    .local_addr()
                    .map(|a| format!("tcp:{a}"))
                    .unwrap_or_default(),
            ),
            Stream::Tcp(s) => (
                s.peer_addr()
                    .map(|a| format!("tcp:{a}"))
                    .unwrap_or_default(),
                s.local_addr()
                    .map(|a| format!("tcp:{a}"))
                    .unwrap_or_default(),
            ),
            #[cfg(unix)]
            Stream::Unix(s) => (
                "unix:".to_string(),
                s.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                    .unwrap_or_else(|| "unix:".into()),
            ),
            Stream::Udp(u) => (
                format!("udp:{}", u.peer),
                u.sock
                    .local_addr()
                    .map(|a| format!("udp:{a}"))
                    .unwrap_or_default(),
            ),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
            // A UDP request's bytes are put into the read buffer when it arrives.
            Stream::Udp(_) => Ok(0),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
            Stream::Udp(u) => {
                u.send_framed(buf);
                Ok(buf.len())
            }
            Stream::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// memcached's connection states (`enum conn_states`), those that mean
/// something here. A connection's state changes only through
/// [`Conn::set_state`], which also publishes it for `stats conns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// A listening socket (only ever published, for `stats conns`).
    Listening,
    /// Accepted, nothing served yet.
    NewCmd,
    /// Waiting for a command, or for the rest of its line.
    Read,
    /// Running the commands it sent (memcached shows the connection that
    /// asks for `stats conns` in this state).
    ParseCmd,
    /// Waiting for the rest of a command: this many unparsed bytes from its
    /// start (its data block, or a binary request's body).
    Nread(usize),
    /// Dropping this many more bytes of a refused data block.
    Swallow(usize),
    /// Not reading until the replies are written: the socket is full, or so
    /// many replies are queued that parsing stopped (back-pressure). Where
    /// it goes then is kept in [`Conn::write_and_go`].
    Mwrite,
    /// Finishing its replies, then closing; nothing more is read.
    Closing,
    /// Closing at once, unwritten replies dropped.
    Closed,
}

impl ConnState {
    /// memcached's name of the state, as `stats conns` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Listening => "conn_listening",
            ConnState::NewCmd => "conn_new_cmd",
            ConnState::Read => "conn_read",
            ConnState::ParseCmd => "conn_parse_cmd",
            ConnState::Nread(_) => "conn_nread",
            ConnState::Swallow(_) => "conn_swallow",
            ConnState::Mwrite => "conn_mwrite",
            ConnState::Closing => "conn_closing",
            ConnState::Closed => "conn_closed",
        }
    }

    /// The state without its data, for another thread to read.
    fn code(self) -> u8 {
        match self {
            ConnState::Listening => 0,
            ConnState::NewCmd => 1,
            ConnState::Read => 2,
            ConnState::ParseCmd => 3,
            ConnState::Nread(_) => 4,
            ConnState::Swallow(_) => 5,
            ConnState::Mwrite => 6,
            ConnState::Closing => 7,
            ConnState::Closed => 8,
        }
    }

    fn from_code(code: u8) -> ConnState {
        match code {
            0 => ConnState::Listening,
            1 => ConnState::NewCmd,
            2 => ConnState::Read,
            3 => ConnState::ParseCmd,
            4 => ConnState::Nread(0),
            5 => ConnState::Swallow(0),
            6 => ConnState::Mwrite,
            7 => ConnState::Closing,
            _ => ConnState::Closed,
        }
    }

    /// Closing, with or without its replies: no more input is read.
    pub fn is_closing(self) -> bool {
        matches!(self, ConnState::Closing | ConnState::Closed)
    }
}

/// A connection's state as other threads see it (`stats conns`): the
/// connection stores into it on every transition, the stats reader loads.
pub struct SharedState(AtomicU8);

impl SharedState {
    pub fn new(state: ConnState) -> Arc<SharedState> {
        Arc::new(SharedState(AtomicU8::new(state.code())))
    }

    /// The published state (the data of `Nread` and `Swallow` is not kept).
    pub fn load(&self) -> ConnState {
        ConnState::from_code(self.0.load(Ordering::Relaxed))
    }

    fn store(&self, state: ConnState) {
        self.0.store(state.code(), Ordering::Relaxed);
    }
}

/// One reserved place in the reply order.
pub struct Slot<R> {
    pub reply: R,
    /// Shard answers still expected (fan-out commands expect one per shard).
    pub waiting: u32,
    /// Rendered output, used only while an earlier slot is unfinished.
    pub buf: Vec<u8>,
    /// `-vv`: how its reply is logged.
    pub log: Log,
}

/// Inserts `bytes` into `buf` at `at`, with memmoves. (`Vec::splice`
/// copies an iterator's bytes one at a time: with 16 KiB values buffered
/// behind other output it was 73 % of the server's CPU time.)
fn insert_slice(buf: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    buf.extend_from_slice(bytes);
    // Usually only a few bytes (`\r\nEND\r\n`) follow `at`.
    buf[at..].rotate_right(bytes.len());
}

/// A connection's I/O under the io_uring backend (event_base/uring.rs):
/// input arrives through a multishot receive, and replies leave through
/// sends the worker submits with the ring's next enter.
#[derive(Default)]
pub struct RingIo {
    pub recv: RecvState,
    /// The replies the kernel is sending: the write buffer, swapped out
    /// when the send was submitted, so new replies can be appended
    /// meanwhile without moving these bytes.
    sending: Vec<u8>,
    /// How much of `sending` the kernel has taken: a send is in flight
    /// while this is short of its length.
    sent: usize,
    /// Input arrived while parsing was held back (back-pressure): it is
    /// parsed once reading resumes, as no new receive may announce it.
    pub held_input: bool,
}

/// Where a ring connection's multishot receive stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecvState {
    /// None armed (not yet, or it ended: back-pressure, no buffers, ...).
    #[default]
    Off,
    Armed,
    /// A cancel was submitted; its last completion is still to come.
    Cancelling,
}

impl RingIo {
    /// True while a send is in the kernel's hands.
    pub fn in_flight(&self) -> bool {
        self.sent < self.sending.len()
    }

    /// The bytes to send now, if none are in flight: the unwritten part of
    /// `wbuf`, which becomes `sending` (and `wbuf` a recycled empty buffer).
    fn start(&mut self, wbuf: &mut Vec<u8>, wpos: &mut usize) -> Option<&[u8]> {
        if self.in_flight() || *wpos == wbuf.len() {
            return None;
        }
        self.sending.clear();
        std::mem::swap(&mut self.sending, wbuf);
        self.sent = std::mem::take(wpos);
        Some(&self.sending[self.sent..])
    }

    /// The kernel took `n` bytes: what is left to send of this buffer.
    fn took(&mut self, n: usize) -> Option<&[u8]> {
        self.sent = (self.sent + n).min(self.sending.len());
        if self.in_flight() {
            return Some(&self.sending[self.sent..]);
        }
        if self.sending.capacity() > WRITE_HIGH_WATER {
            self.sending = Vec::new();
        }
        None
    }

    /// Takes the buffer a send still in flight reads from, so it outlives
    /// a closed connection until the send completes.
    pub fn orphan(&mut self) -> Option<Vec<u8>> {
        self.in_flight().then(|| std::mem::take(&mut self.sending))
    }
}

/// Outcome of reading from the socket.
pub enum ReadOutcome {
    Data(usize),
    WouldBlock,
    Eof,
}

pub struct Conn<R> {
    pub stream: Stream,
    /// Generation of this slab entry, so late shard answers for a closed
    /// connection never reach a new one that reused its index.
    pub gen: u32,
    pub rbuf: Vec<u8>,
    pub rstart: usize,
    pub rend: usize,
    pub wbuf: Vec<u8>,
    pub wpos: usize,
    slots: VecDeque<Slot<R>>,
    /// Sequence number of `slots[0]` (or of the next slot when empty).
    front_seq: u64,
    /// Changed only by [`Conn::set_state`].
    state: ConnState,
    /// Where [`ConnState::Mwrite`] goes once the replies are out (memcached's
    /// `write_and_go`); [`ConnState::ParseCmd`] when input is left to parse.
    write_and_go: ConnState,
    /// What `stats conns` reads of `state`.
    shown: Arc<SharedState>,
    pub interest: Interest,
    /// Listed in the worker's queue of connections with input left to parse
    /// (the worker's bookkeeping, whatever the state).
    pub queued: bool,
    pub last_cmd_time: u32,
    /// Which protocol this connection speaks: `None` until its first byte
    /// arrives under `-B auto` (memcached's `try_read_command_negotiate`).
    pub protocol: Option<Protocol>,
    /// `-Y` / `-S`: whether this connection has authenticated.
    pub auth: ConnAuth,
    /// Emptied slot buffers for reuse. A `get` queues its `END` behind the
    /// slot still waiting for the shard, so without these every request
    /// paid a malloc and a free (~190 instructions, ~5 % of a request).
    spare: Vec<Vec<u8>>,
    /// Bytes [`Conn::complete_direct`] wrote to the socket, for `bytes_written`.
    pub written_direct: usize,
    /// The connection's id in the `-vv` log (and in `stats conns`).
    pub id: u64,
    /// `-vv`: how the replies of the command being run are logged (set by
    /// the worker for each command, see [`Conn::log_begin`]).
    pub log: Log,
    /// `watch`: gets and stores waiting for their answer to be logged
    /// (empty unless someone watches).
    pub watch_notes: Vec<crate::watch::Note>,
    /// `watch`: lines of answered requests waiting for the requests before
    /// them to be answered (memcached logs in request order; a multi-key
    /// get spanning shards is answered out of order): (the slot's sequence
    /// number, the stream, the line after `ts=… gid=… `).
    pub watch_queue: VecDeque<(u64, u8, Vec<u8>)>,
    /// Set when this connection became a watcher: its input is ignored.
    pub watcher: Option<crate::watch::Handle>,
    /// `-vv`: the request lines of the command being run, until they take
    /// their place in the log (before its first reply).
    log_request: Vec<u8>,
    /// `-vv`: log lines waiting for the replies before them to be logged:
    /// (the sequence number of the first slot they follow, lines).
    log_queue: VecDeque<(u64, Vec<u8>)>,
    /// Set when the io_uring backend does this connection's I/O.
    pub ring: Option<RingIo>,
}

/// Values at least this large go from the shard's memory to the socket
/// without a copy into the write buffer: for 16 KiB values that copy was
/// half of the server's memmove time (docs/performance.md). Smaller ones are
/// cheaper to batch into one write with their neighbours.
pub const DIRECT_MIN: usize = 8 * 1024;

/// Spare slot buffers kept per connection, and the largest one kept: enough
/// for a pipelined burst of small replies without holding big values.
const SPARE_BUFS: usize = 16;
const SPARE_BUF_MAX: usize = 4096;

impl<R> Conn<R> {
    pub fn new(stream: Stream, gen: u32, now: u32) -> Self {
        Conn {
            stream,
            gen,
            rbuf: vec![0; RBUF_INITIAL],
            rstart: 0,
            rend: 0,
            wbuf: Vec::new(),
            wpos: 0,
            slots: VecDeque::new(),
            front_seq: 0,
            state: ConnState::NewCmd,
            write_and_go: ConnState::Read,
            shown: SharedState::new(ConnState::NewCmd),
            interest: Interest::READ,
            queued: false,
            last_cmd_time: now,
            protocol: None,
            auth: Default::default(),
            spare: Vec::new(),
            written_direct: 0,
            id: 0,
            log: Log::Off,
            watch_notes: Vec::new(),
            watch_queue: VecDeque::new(),
            watcher: None,
            log_request: Vec::new(),
            log_queue: VecDeque::new(),
            ring: None,
        }
    }

    /// Where the connection stands.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// The state as `stats conns` sees it, shared with the connection's entry there.
    pub fn shown_state(&self) -> Arc<SharedState> {
        self.shown.clone()
    }

    /// The one way a connection changes state (memcached's
    /// `conn_set_state`); it publishes the state for `stats conns`.
    /// Closing is final: a connection that closes at once never goes back
    /// to finishing its replies.
    pub fn set_state(&mut self, next: ConnState) {
        debug_assert!(
            self.state != ConnState::Closed || next == ConnState::Closed,
            "{:?} -> {next:?}",
            self.state
        );
        debug_assert!(
            self.state != ConnState::Closing || next.is_closing(),
            "{:?} -> {next:?}",
            self.state
        );
        debug_assert!(next != ConnState::Listening, "a connection never listens");
        if next == ConnState::Mwrite && self.state != ConnState::Mwrite {
            self.write_and_go = self.state;
        }
        if self.state.code() != next.code() {
            self.shown.store(next);
        }
        self.state = next;
    }

    /// Leaves [`ConnState::Mwrite`] for where it was headed.
    pub fn written(&mut self) {
        debug_assert_eq!(self.state, ConnState::Mwrite);
        let next = std::mem::replace(&mut self.write_and_go, ConnState::Read);
        self.set_state(next);
    }

    /// Where the connection reads on from: the state [`ConnState::Mwrite`]
    /// returns to, or the current one.
    pub fn reading(&self) -> ConnState {
        match self.state {
            ConnState::Mwrite => self.write_and_go,
            s => s,
        }
    }

    fn spare_buf(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && buf.capacity() <= SPARE_BUF_MAX && self.spare.len() < SPARE_BUFS {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Unparsed input.
    pub fn pending_input(&self) -> usize {
        self.rend - self.rstart
    }

    /// Reads what the socket has into the read buffer, making room first.
    pub fn fill(&mut self, max_buffer: usize) -> io::Result<ReadOutcome> {
        let unparsed = self.rend - self.rstart;
        // Room for what the parser said it needs, or at least some more bytes.
        let need = match self.reading() {
            ConnState::Nread(need) => need,
            _ => 0,
        };
        let need = need.max(unparsed + 4096).min(max_buffer.max(RBUF_INITIAL));
        self.compact(need.saturating_sub(unparsed));
        let want = (self.rstart + need).max(RBUF_INITIAL);
        if self.rbuf.len() < want {
            self.rbuf.resize(want, 0);
        }
        if self.rend == self.rbuf.len() {
            return Ok(ReadOutcome::Data(0));
        }
        match self.stream.read(&mut self.rbuf[self.rend..]) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => {
                self.rend += n;
                // TLS may hold more decrypted input than fitted; take it all
                // now: no readiness event will announce it.
                let mut total = n;
                while let Stream::Tls(t) = &mut self.stream {
                    let more = t.plaintext_pending();
                    if more == 0 {
                        break;
                    }
                    if self.rbuf.len() < self.rend + more {
                        self.rbuf.resize(self.rend + more, 0);
                    }
                    match t.read(&mut self.rbuf[self.rend..]) {
                        Ok(0) => break,
                        Ok(m) => {
                            self.rend += m;
                            total += m;
                        }
                        Err(_) => break,
                    }
                }
                Ok(ReadOutcome::Data(total))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(ReadOutcome::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// Moves the unparsed input to the front of the read buffer when fewer
    /// than `room` bytes are free after it, none are, or half the buffer is
    /// already parsed.
    fn compact(&mut self, room: usize) {
        let len = self.rbuf.len();
        if self.rstart > 0 && (self.rend + room > len || self.rend == len || self.rstart >= len / 2)
        {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
    }

    /// Appends input that has already been received (the io_uring
    /// backend's receive buffers), making room as [`Conn::fill`] does.
    pub fn take_input(&mut self, data: &[u8]) {
        self.compact(data.len());
        if self.rbuf.len() < self.rend + data.len() {
            self.rbuf.resize(self.rend + data.len(), 0);
        }
        self.rbuf[self.rend..self.rend + data.len()].copy_from_slice(data);
        self.rend += data.len();
    }

    /// Ring connections: the bytes to hand to the kernel now, if no send is
    /// in flight (they stay in the connection until [`Conn::sent`]).
    pub fn start_send(&mut self) -> Option<&[u8]> {
        let ring = self.ring.as_mut()?;
        ring.start(&mut self.wbuf, &mut self.wpos)
    }

    /// Ring connections: a send took `n` bytes; what is still to send of
    /// it (a short send) is returned.
    pub fn sent(&mut self, n: usize) -> Option<&[u8]> {
        self.ring.as_mut()?.took(n)
    }

    /// Returns the read buffer to its resting size once it is empty, so one
    /// large value does not pin memory for the connection's life.
    pub fn shrink_rbuf(&mut self) {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
            if self.rbuf.len() > RBUF_INITIAL * 4 {
                self.rbuf.truncate(RBUF_INITIAL);
                self.rbuf.shrink_to_fit();
            }
        }
    }

    /// Writes buffered replies; returns the bytes written.
    pub fn flush(&mut self) -> io::Result<usize> {
        // The worker sends a ring connection's replies through the ring.
        if self.ring.is_some() {
            return Ok(0);
        }
        let mut total = 0;
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.wpos += n;
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if let Stream::Tls(t) = &mut self.stream {
            t.flush_tls()?;
        }
        if self.wpos == self.wbuf.len() {
            self.wpos = 0;
            self.wbuf.clear();
            if self.wbuf.capacity() > WRITE_HIGH_WATER {
                self.wbuf.shrink_to(64 * 1024);
            }
        }
        Ok(total)
    }

    /// Replies buffered but not yet written, plus the slots' rendered output.
    pub fn unwritten(&self) -> usize {
        let in_flight = self
            .ring
            .as_ref()
            .map_or(0, |r| r.sending.len().saturating_sub(r.sent));
        self.wbuf.len() - self.wpos + in_flight
    }

    pub fn has_unwritten(&self) -> bool {
        self.wpos < self.wbuf.len()
            || matches!(&self.stream, Stream::Tls(t) if t.wants_write())
            || self.ring.as_ref().is_some_and(RingIo::in_flight)
    }

    /// True while more input should not be parsed: too much reply data is queued.
    pub fn over_high_water(&self) -> bool {
        self.unwritten() > WRITE_HIGH_WATER || self.slots.len() > MAX_SLOTS
    }

    /// Appends a reply that is complete now.
    pub fn reply_now(&mut self, bytes: &[u8], ready: R) {
        self.reply_with(ready, |out| out.extend_from_slice(bytes));
    }

    /// Appends a reply rendered by `f` right now.
    pub fn reply_with(&mut self, ready: R, f: impl FnOnce(&mut Vec<u8>)) {
        self.place_log_request();
        if self.slots.is_empty() {
            let start = self.wbuf.len();
            f(&mut self.wbuf);
            if self.log != Log::Off {
                verbose::reply(self.id, self.log, &self.wbuf[start..]);
            }
        } else {
            let mut buf = self.spare_buf();
            f(&mut buf);
            self.slots.push_back(Slot {
                reply: ready,
                waiting: 0,
                buf,
                log: self.log,
            });
        }
    }

    /// `-vv`: the command about to run logs its replies as `log` says
    /// ([`Log::Off`]: not at all), and if `logged` its request lines, which
    /// `request` writes: they go to the log before its first reply, once
    /// every earlier reply has. (The two differ for `verbosity` only.)
    pub fn log_begin(&mut self, logged: bool, log: Log, request: impl FnOnce(&mut Vec<u8>, u64)) {
        self.log = log;
        self.log_request.clear();
        if logged {
            request(&mut self.log_request, self.id);
        }
    }

    /// `-vv`: the command started by [`Conn::log_begin`] ran (`done`), or
    /// waits for more input and will be started again (its request lines
    /// are dropped, so they are logged once).
    pub fn log_end(&mut self, done: bool) {
        if done {
            self.place_log_request();
        } else {
            self.log_request.clear();
        }
    }

    /// `-vv`: the answer `line` the host did not send because the client
    /// said `noreply`; memcached logs it as `>N NOREPLY line`.
    pub fn log_noreply(&mut self, line: &[u8]) {
        if self.log != Log::Off {
            self.place_log_request();
            let text = verbose::noreply_line(self.id, line);
            self.log_in_order(text);
        }
    }

    /// `-vv`: logs `text` right after the reply of slot `seq`.
    pub fn log_after(&mut self, seq: u64, text: Vec<u8>) {
        // Ahead of lines queued behind the same slot: those came later.
        let at = self
            .log_queue
            .iter()
            .position(|(s, _)| *s > seq)
            .unwrap_or(self.log_queue.len());
        self.log_queue.insert(at, (seq + 1, text));
    }

    /// Moves the pending request lines into the log, in reply order.
    fn place_log_request(&mut self) {
        if !self.log_request.is_empty() {
            let text = std::mem::take(&mut self.log_request);
            self.log_in_order(text);
        }
    }

    /// Logs `text` now if no reply is waiting, else once the waiting ones are logged.
    fn log_in_order(&mut self, text: Vec<u8>) {
        if self.slots.is_empty() {
            verbose::write(&text);
        } else {
            let seq = self.front_seq + self.slots.len() as u64;
            self.log_queue.push_back((seq, text));
        }
    }

    /// Logs the queued lines whose turn has come (every slot before them is gone).
    fn log_queued(&mut self) {
        while let Some((seq, _)) = self.log_queue.front() {
            if *seq > self.front_seq {
                break;
            }
            let (_, text) = self.log_queue.pop_front().expect("front exists");
            verbose::write(&text);
        }
    }

    /// The sequence number of the oldest reply not yet complete (or of the
    /// next slot when none waits): every slot before it is done.
    pub fn front_seq(&self) -> u64 {
        self.front_seq
    }

    /// The sequence number the next reserved slot gets.
    pub fn next_seq(&self) -> u64 {
        self.front_seq + self.slots.len() as u64
    }

    /// The slot waiting for answer `seq`, if any.
    pub fn slot(&self, seq: u64) -> Option<&Slot<R>> {
        self.slots.get(seq.checked_sub(self.front_seq)? as usize)
    }

    /// Reserves a slot for a reply that `waiting` shard answers will complete.
    pub fn reserve(&mut self, reply: R, waiting: u32) -> u64 {
        self.place_log_request();
        let seq = self.front_seq + self.slots.len() as u64;
        // A slot renders into its own buffer only when it finishes behind an
        // unfinished one; the first in line renders into `wbuf`.
        let buf = if self.slots.is_empty() {
            Vec::new()
        } else {
            self.spare_buf()
        };
        self.slots.push_back(Slot {
            reply,
            waiting,
            buf,
            log: self.log,
        });
        seq
    }

    pub fn slots_waiting(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Adds `bytes` to the reply of slot `seq` and leaves it waiting: an
    /// answer that arrives in parts (an item listing, host/src/worker/listing.rs).
    /// First in line, the bytes go to the write buffer, after what the slot
    /// gathered while it waited behind others; else into the slot's buffer.
    /// Call it once more with no bytes before the slot's last answer, so that
    /// nothing gathered is left behind. Returns false if no such slot is waiting.
    pub fn extend_slot(&mut self, seq: u64, bytes: &[u8]) -> bool {
        let Some(idx) = seq.checked_sub(self.front_seq) else {
            return false;
        };
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return false;
        };
        if slot.waiting == 0 {
            return false;
        }
        if idx == 0 {
            if !slot.buf.is_empty() {
                self.wbuf.extend_from_slice(&slot.buf);
                slot.buf.clear();
            }
            self.wbuf.extend_from_slice(bytes);
        } else {
            slot.buf.extend_from_slice(bytes);
        }
        true
    }

    /// Delivers one shard answer to slot `seq`. `render` gets the slot's reply
    /// state, whether this was the last answer it waited for, and the buffer to
    /// render into (the write buffer itself when the slot is first in line).
    /// Returns false if no such slot is waiting.
    pub fn complete(&mut self, seq: u64, render: impl FnOnce(&mut R, bool, &mut Vec<u8>)) -> bool {
        self.complete_direct(seq, |r, last, out| {
            render(r, last, out);
            None
        })
    }

    /// [`Conn::complete`] for a render that may hand back a large value to
    /// follow what it wrote, then `\r\n`. When the slot is first in line the
    /// value is written to the socket from where it lies, in one `writev`
    /// with the replies buffered before it and those finished after it (a
    /// `get`'s `END`); only what the socket does not take is copied into the
    /// write buffer.
    pub fn complete_direct<'v>(
        &mut self,
        seq: u64,
        render: impl FnOnce(&mut R, bool, &mut Vec<u8>) -> Option<&'v [u8]>,
    ) -> bool {
        let Some(idx) = seq.checked_sub(self.front_seq) else {
            return false;
        };
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return false;
        };
        if slot.waiting == 0 {
            return false;
        }
        slot.waiting -= 1;
        let last = slot.waiting == 0;
        if idx == 0 {
            let start = self.wbuf.len();
            let direct = render(&mut slot.reply, last, &mut self.wbuf);
            if slot.log != Log::Off {
                verbose::reply(self.id, slot.log, &self.wbuf[start..]);
            }
            // The value belongs at `at`; the buffer goes on with its "\r\n".
            let at = self.wbuf.len();
            if direct.is_some() {
                self.wbuf.extend_from_slice(b"\r\n");
            }
            if last {
                let done = self.slots.pop_front().expect("slot 0 exists");
                self.recycle(done.buf);
                self.front_seq += 1;
                if !self.log_queue.is_empty() {
                    self.log_queued();
                }
                self.drain_finished();
            }
            if let Some(value) = direct {
                self.write_through(at, value);
            }
        } else if let Some(value) = render(&mut slot.reply, last, &mut slot.buf) {
            slot.buf.extend_from_slice(value);
            slot.buf.extend_from_slice(b"\r\n");
        }
        true
    }

    /// Writes the buffered output with `value` spliced in at offset `at`, in
    /// one `writev`, and buffers what the socket did not take. TLS and UDP
    /// frame their output, so there the value is simply buffered. A write
    /// error is left for the next `flush` to find (the socket keeps
    /// reporting it).
    fn write_through(&mut self, at: usize, value: &[u8]) {
        // Nothing goes out directly when the replies are being dropped, or
        // when the socket was full at the last flush (the connection waits
        // for writability): the write could only fail. A ring connection
        // with a send in flight buffers the value behind it, to keep the
        // order; without one, the value goes out here as under polling
        // (copying 16 KiB into the buffer cost more than this writev).
        let written = if self.state == ConnState::Closed
            || self.interest.writable
            || self.ring.as_ref().is_some_and(RingIo::in_flight)
        {
            0
        } else {
            let bufs = [
                IoSlice::new(&self.wbuf[self.wpos..at]),
                IoSlice::new(value),
                IoSlice::new(&self.wbuf[at..]),
            ];
            match &mut self.stream {
                Stream::Tcp(s) => s.write_vectored(&bufs).unwrap_or(0),
                #[cfg(unix)]
                Stream::Unix(s) => s.write_vectored(&bufs).unwrap_or(0),
                Stream::Udp(_) | Stream::Tls(_) => 0,
            }
        };
        self.written_direct += written;
        let before = at - self.wpos;
        if written < before {
            self.wpos += written;
            insert_slice(&mut self.wbuf, at, value);
        } else if written < before + value.len() {
            // The bytes before the value are out: keep only what follows it.
            self.wbuf.drain(..at);
            self.wpos = 0;
            insert_slice(&mut self.wbuf, 0, &value[written - before..]);
        } else {
            self.wpos = at + (written - before - value.len());
        }
        if self.wpos == self.wbuf.len() {
            self.wpos = 0;
            self.wbuf.clear();
        }
    }

    /// Drops every reply not yet written, as memcached does when it resets a
    /// connection's queued responses. Waiting slots stay (their answers are
    /// still on the way) but will render nothing.
    pub fn discard_unwritten(&mut self, discarded: impl Fn() -> R) {
        self.wbuf.truncate(self.wpos);
        for s in self.slots.iter_mut() {
            s.buf.clear();
            s.reply = discarded();
        }
    }

    /// Moves finished slots at the front of the queue into the write buffer.
    fn drain_finished(&mut self) {
        while let Some(s) = self.slots.front() {
            if s.waiting > 0 {
                break;
            }
            let s = self.slots.pop_front().expect("front exists");
            self.front_seq += 1;
            self.wbuf.extend_from_slice(&s.buf);
            if s.log != Log::Off {
                verbose::reply(self.id, s.log, &s.buf);
            }
            self.recycle(s.buf);
            if !self.log_queue.is_empty() {
                self.log_queued();
            }
        }
        if !self.watch_queue.is_empty() {
            self.watch_flush();
        }
    }

    /// `watch`: logs `line` of stream `kind` for the request in slot `seq`
    /// once every request before it has been answered (memcached logs in
    /// request order).
    #[cold]
    pub fn watch_emit(&mut self, seq: u64, kind: u8, line: Vec<u8>) {
        self.watch_flush();
        if seq <= self.front_seq() {
            crate::watch::log_line(kind, &line);
            return;
        }
        let at = self
            .watch_queue
            .iter()
            .position(|(s, _, _)| *s > seq)
            .unwrap_or(self.watch_queue.len());
        self.watch_queue.insert(at, (seq, kind, line));
    }

    /// `watch`: logs the queued lines whose turn has come (every slot
    /// before theirs is answered).
    pub fn watch_flush(&mut self) {
        while let Some((seq, _, _)) = self.watch_queue.front() {
            if *seq > self.front_seq {
                return;
            }
            let (_, kind, line) = self.watch_queue.pop_front().expect("front exists");
            crate::watch::log_line(kind, &line);
        }
    }
}

/// A connection's authentication state, kept with the connection; the
/// auth gate (`crate::auth`) reads and moves it.
///
/// The SASL part follows what memcached 1.6.18 with libsasl answers: a new
/// `SASL_AUTH` drops the connection's authentication; once an exchange has
/// succeeded, the next exchange that carries credentials fails (libsasl's
/// "step after doneflag") and resets, so the one after it works again; a
/// PLAIN step with a wrong password may be retried.
#[derive(Default, Debug)]
pub struct ConnAuth {
    pub authenticated: bool,
    /// A SASL exchange was started and may take a step (memcached's `sasl_started`).
    pub sasl_started: bool,
    /// PLAIN was started without an initial response; the step carries it.
    pub plain_pending: bool,
    /// The last exchange succeeded (libsasl's `doneflag`).
    pub sasl_done: bool,
}

/// Where one answer goes: a connection (slab index + generation) and a slot.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    pub conn: u32,
    pub gen: u32,
    pub seq: u64,
}

impl Ticket {
    /// An answer nobody waits for (e.g. the delete memcached does after a
    /// refused `set`).
    pub const DISCARD: Ticket = Ticket {
        conn: u32::MAX,
        gen: 0,
        seq: 0,
    };

    /// Set in `seq` of a ticket whose answer nobody waits for but whose
    /// `watch` lines belong to the connection, in its reply order before
    /// slot `seq & !LOG_ONLY` (the lookup of memcached's unlink after a
    /// refused set).
    pub const LOG_ONLY: u64 = 1 << 63;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn conn() -> Conn<&'static str> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        Conn::new(Stream::Tcp(c), 0, 0)
    }

    /// A server-side connection and the client socket it talks to.
    fn pair() -> (Conn<&'static str>, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (Conn::new(Stream::Tcp(server), 0, 0), client)
    }

    /// Flushes `c` while reading from `client` until `want` bytes arrived.
    fn drain(c: &mut Conn<&'static str>, client: &mut TcpStream, want: usize) -> Vec<u8> {
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while got.len() < want {
            c.flush().unwrap();
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[test]
    fn large_value_goes_out_directly_in_order() {
        let (mut c, mut client) = pair();
        c.reply_now(b"A", "ready");
        let s1 = c.reserve("get", 1);
        let s2 = c.reserve("get", 1);
        c.reply_now(b"END\r\n", "ready");
        let v1: Vec<u8> = (0..DIRECT_MIN * 2).map(|i| (i % 251) as u8).collect();
        let v2: Vec<u8> = (0..DIRECT_MIN).map(|i| (i % 13) as u8).collect();
        // s2 finishes behind the unfinished s1: its value is copied.
        assert!(c.complete_direct(s2, |_, _, out| {
            out.extend_from_slice(b"H2 ");
            Some(&v2)
        }));
        assert_eq!(c.written_direct, 0);
        // s1 is first in line: "A", its header and its value leave at once.
        assert!(c.complete_direct(s1, |_, _, out| {
            out.extend_from_slice(b"H1 ");
            Some(&v1)
        }));
        assert!(c.written_direct > 3, "nothing was written directly");
        let mut want = b"AH1 ".to_vec();
        want.extend_from_slice(&v1);
        want.extend_from_slice(b"\r\nH2 ");
        want.extend_from_slice(&v2);
        want.extend_from_slice(b"\r\nEND\r\n");
        let already = c.written_direct;
        assert_eq!(c.unwritten() + already, want.len());
        assert_eq!(drain(&mut c, &mut client, want.len()), want);
    }

    /// Output already buffered is more than the socket takes: the value is
    /// spliced into the buffer behind it, before what followed it.
    #[test]
    fn large_value_behind_unwritten_output() {
        let (mut c, mut client) = pair();
        let before: Vec<u8> = (0..16 << 20).map(|i| (i % 199) as u8).collect();
        c.reply_now(&before, "ready");
        let s = c.reserve("get", 1);
        c.reply_now(b"END\r\n", "ready");
        let v: Vec<u8> = (0..DIRECT_MIN * 3).map(|i| (i % 7) as u8).collect();
        assert!(c.complete_direct(s, |_, _, out| {
            out.extend_from_slice(b"V\r\n");
            Some(&v)
        }));
        assert!(
            c.written_direct < before.len(),
            "16 MiB fit the socket at once?"
        );
        let mut want = before.clone();
        want.extend_from_slice(b"V\r\n");
        want.extend_from_slice(&v);
        want.extend_from_slice(b"\r\nEND\r\n");
        assert_eq!(drain(&mut c, &mut client, want.len()), want);
    }

    /// A value larger than the socket takes at once: the rest is buffered
    /// and goes out with later flushes, nothing lost or reordered.
    #[test]
    fn large_value_partly_written_is_buffered() {
        let (mut c, mut client) = pair();
        let v: Vec<u8> = (0..32 << 20).map(|i| (i % 241) as u8).collect();
        let s = c.reserve("get", 1);
        c.reply_now(b"END\r\n", "ready");
        assert!(c.complete_direct(s, |_, _, out| {
            out.extend_from_slice(b"VALUE k 0 n\r\n");
            Some(&v)
        }));
        assert!(c.has_unwritten(), "32 MiB fit the socket buffer at once?");
        let mut want = b"VALUE k 0 n\r\n".to_vec();
        want.extend_from_slice(&v);
        want.extend_from_slice(b"\r\nEND\r\n");
        assert_eq!(drain(&mut c, &mut client, want.len()), want);
    }

    /// `stats conns` sees every transition; `conn_mwrite` returns to where
    /// the reader stood, with its data.
    #[test]
    fn states_are_published_and_mwrite_goes_back() {
        let mut c = conn();
        let shown = c.shown_state();
        assert_eq!(shown.load(), ConnState::NewCmd);
        c.set_state(ConnState::ParseCmd);
        c.set_state(ConnState::Swallow(7));
        assert_eq!(shown.load().name(), "conn_swallow");
        c.set_state(ConnState::Mwrite);
        assert_eq!(c.reading(), ConnState::Swallow(7));
        assert_eq!(shown.load().name(), "conn_mwrite");
        c.written();
        assert_eq!(c.state(), ConnState::Swallow(7));
        c.set_state(ConnState::Closing);
        c.set_state(ConnState::Closed);
        assert_eq!(shown.load().name(), "conn_closed");
    }

    #[test]
    fn replies_leave_in_request_order() {
        let mut c = conn();
        c.reply_now(b"A", "ready");
        let s1 = c.reserve("get", 1);
        c.reply_now(b"C", "ready");
        let s2 = c.reserve("fanout", 2);
        c.reply_now(b"F", "ready");
        assert_eq!(c.wbuf, b"A");
        // The fan-out slot finishes first but must wait behind s1.
        assert!(c.complete(s2, |_, last, out| if last {
            out.extend_from_slice(b"E")
        }));
        assert!(c.complete(s2, |_, last, out| if last {
            out.extend_from_slice(b"E")
        }));
        assert_eq!(c.wbuf, b"A");
        assert!(c.complete(s1, |_, _, out| out.extend_from_slice(b"B")));
        assert_eq!(c.wbuf, b"ABCEF");
        assert!(!c.slots_waiting());
        // Unknown or finished slots are refused.
        assert!(!c.complete(s1, |_, _, _| panic!()));
        assert!(!c.complete(99, |_, _, _| panic!()));
    }
}
