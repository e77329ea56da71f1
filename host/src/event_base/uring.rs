//! The io_uring half of a worker's [`EventBase`](super::EventBase) on Linux
//! (`-o io=uring`, the default where the kernel allows it).
//!
//! Why: under memaslap's getset load 80 % of a request's time is the
//! kernel's, and with epoll a loop pays `epoll_wait` plus a `recv` and a
//! `send` per ready connection (2.07 system calls per request,
//! docs/performance.md). Here one `io_uring_enter` per loop submits every
//! send queued during the loop and reaps every completion: a connection's
//! input arrives through a multishot receive into a ring of provided buffers
//! (no system call per read), and its replies leave through a send submitted
//! with the next enter.
//!
//! Only plain TCP and unix-socket connections take this path (the worker
//! calls them *ring connections*). Sources that need readiness stay on the
//! reactor's epoll: TLS, whose rustls state machine reads and writes the
//! socket itself, UDP sockets, and anything else registered through
//! `EventBase::register`. The epoll fd itself is polled through the ring
//! (one-shot, re-armed after each drain, so a level-triggered source with
//! data left is reported again). Timers bound the enter's wait (its
//! `EXT_ARG` timeout), and a cross-worker wake-up is a multishot poll on the
//! reactor's eventfd: one more completion of the same ring.
//!
//! Tokens: every submission's user data is `op << 60 | gen << 32 | key`, so
//! a completion finds its connection (the worker's slab index) and is
//! dropped when that slot has since been reused (the generation differs).

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::alloc::{self, Layout};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Submission queue entries; the completion queue is four times larger so a
/// loop with every connection answering at once does not overflow it.
const SQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES: u32 = 4 * SQ_ENTRIES;
/// Provided receive buffers: 512 of 8 KiB (4 MiB per worker). A buffer goes
/// back to the ring as soon as its bytes are copied into the connection's
/// read buffer, so this bounds only what one loop iteration can receive
/// before the kernel answers `ENOBUFS` (the receive is then re-armed).
const BUF_COUNT: u16 = 512;
const BUF_SIZE: usize = 8 * 1024;
/// The one buffer group.
const BGID: u16 = 0;

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CANCEL: u64 = 3;
const OP_EPOLL: u64 = 4;
const OP_WAKE: u64 = 5;
const OP_ACCEPT: u64 = 6;
/// Generations are compared on their low 28 bits (the token's room).
pub const GEN_MASK: u32 = (1 << 28) - 1;

fn token(op: u64, key: u32, gen: u32) -> u64 {
    op << 60 | ((gen & GEN_MASK) as u64) << 32 | key as u64
}

/// What finished: a connection's receive or send, or a listener's accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Recv,
    Send,
    /// `res` is the new connection's descriptor (the caller owns it).
    Accept,
}

/// One completion of a connection's I/O, handed to the worker.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub op: Op,
    pub key: u32,
    /// The connection's generation, masked with [`GEN_MASK`].
    pub gen: u32,
    /// Bytes received or sent, 0 at end of stream, or `-errno`.
    pub res: i32,
    /// A multishot receive stays armed (`IORING_CQE_F_MORE`).
    pub more: bool,
    /// The provided buffer holding a receive's bytes, until recycled.
    buf: Option<u16>,
}

pub struct Ring {
    // Dropped first: the kernel stops using the buffers below with the ring.
    ring: IoUring,
    bufs: BufPool,
    /// Rings start disabled and are enabled by the thread that runs them:
    /// a single-issuer ring belongs to the task that enables it, and the
    /// main thread creates every worker's reactor.
    enabled: bool,
    epoll_fd: RawFd,
    epoll_armed: bool,
    wake_fd: RawFd,
    wake_armed: bool,
    completed: Vec<Completion>,
}

impl Ring {
    /// A ring for a reactor whose epoll fd and eventfd are given (both
    /// outlive it: the EventBase owns them).
    pub fn new(epoll_fd: RawFd, wake_fd: RawFd) -> io::Result<Ring> {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_r_disabled()
            .setup_single_issuer()
            // Completions are processed when the worker asks for them (in
            // its enter), not by interrupting it while it parses.
            .setup_defer_taskrun()
            .build(SQ_ENTRIES)?;
        let bufs = BufPool::new()?;
        // SAFETY: the ring memory lives in `bufs`, which `Ring` drops after
        // `ring` (field order), and no other group uses BGID.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.entries.as_ptr() as u64,
                BUF_COUNT,
                BGID,
                0,
            )?
        };
        let mut r = Ring {
            ring,
            bufs,
            enabled: false,
            epoll_fd,
            epoll_armed: false,
            wake_fd,
            wake_armed: false,
            completed: Vec::new(),
        };
        r.arm_epoll();
        r.arm_wake();
        Ok(r)
    }

    /// Whether this kernel gives what the ring needs (multishot receive and
    /// provided buffer rings, 6.0; deferred task running, 6.1), without
    /// keeping anything.
    pub fn supported() -> bool {
        let Ok(ring) = IoUring::<squeue::Entry>::builder()
            .setup_r_disabled()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(8)
        else {
            return false;
        };
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe).is_ok()
            && probe.is_supported(opcode::RecvMulti::CODE)
            && probe.is_supported(opcode::Send::CODE)
            && probe.is_supported(opcode::PollAdd::CODE)
            && ring.params().is_feature_ext_arg()
    }

    /// Queues an entry, submitting first if the queue is full.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every entry's buffers are valid until its completion:
            // receives use the provided buffers (owned by `bufs`), sends the
            // caller's buffer under `send`'s contract, polls and cancels none.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if self.enable().is_err() || self.ring.submit().is_err() {
                // Nothing can be submitted: the next wait reports the error.
                return;
            }
        }
    }

    fn enable(&mut self) -> io::Result<()> {
        if !self.enabled {
            self.ring.submitter().register_enable_rings()?;
            self.enabled = true;
        }
        Ok(())
    }

    fn arm_epoll(&mut self) {
        let e = opcode::PollAdd::new(types::Fd(self.epoll_fd), libc::POLLIN as u32)
            .build()
            .user_data(token(OP_EPOLL, 0, 0));
        self.push(e);
        self.epoll_armed = true;
    }

    fn arm_wake(&mut self) {
        // Multishot: each write to the (never read) eventfd wakes its wait
        // queue once, and each wake-up is one completion.
        let e = opcode::PollAdd::new(types::Fd(self.wake_fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(token(OP_WAKE, 0, 0));
        self.push(e);
        self.wake_armed = true;
    }

    /// Starts connection `key`'s multishot receive on `fd`. The fd must
    /// stay open until the entry is submitted (the next wait).
    pub fn recv(&mut self, fd: RawFd, key: u32, gen: u32) {
        let e = opcode::RecvMulti::new(types::Fd(fd), BGID)
            .build()
            .user_data(token(OP_RECV, key, gen));
        self.push(e);
    }

    /// Accepts one connection on listener `key`'s `fd` (the caller arms
    /// the next one after its completion).
    ///
    /// Not a multishot accept: the kernel reads the descriptor limit
    /// (`RLIMIT_NOFILE`) when an accept is armed, so a multishot one kept
    /// accepting past a limit lowered later (`prlimit` on a running
    /// server), where memcached stops accepting (`listen_disabled_num`);
    /// tests/text_protocol.rs caught it. One accept per completion reads
    /// the limit each time and costs no system call of its own (it goes
    /// with the next wait).
    pub fn accept(&mut self, fd: RawFd, key: u32) {
        let e = opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(token(OP_ACCEPT, key, 0));
        self.push(e);
    }

    /// Stops listener `key`'s accept (its last completion follows).
    pub fn cancel_accept(&mut self, key: u32) {
        let e = opcode::AsyncCancel::new(token(OP_ACCEPT, key, 0))
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token(OP_CANCEL, key, 0));
        self.push(e);
    }

    /// Hands what is queued to the kernel now, without waiting: before a
    /// connection's socket is closed, so an entry still queued for it never
    /// reaches a new socket that reuses the descriptor.
    pub fn submit(&mut self) {
        if self.enable().is_ok() {
            let _ = self.ring.submit();
        }
    }

    /// Stops connection `key`'s receive; its last completion says
    /// `-ECANCELED` (or whatever ended it first).
    pub fn cancel_recv(&mut self, key: u32, gen: u32) {
        let e = opcode::AsyncCancel::new(token(OP_RECV, key, gen))
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token(OP_CANCEL, key, gen));
        self.push(e);
    }

    /// Sends `buf` on `fd` for connection `key`.
    ///
    /// # Safety
    /// `buf` must stay valid and unmoved (its heap memory: moving the `Vec`
    /// that owns it is fine) until the send's completion has been handed
    /// out by [`Ring::take_completed`].
    pub unsafe fn send(&mut self, fd: RawFd, key: u32, gen: u32, buf: &[u8]) {
        let len = buf.len().min(u32::MAX as usize) as u32;
        let e = opcode::Send::new(types::Fd(fd), buf.as_ptr(), len)
            // A client gone away is an error here, not a signal.
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(token(OP_SEND, key, gen));
        self.push(e);
    }

    /// Submits what is queued and waits for a completion, at most
    /// `timeout`. Returns whether the epoll fd became ready (the caller
    /// drains it and calls [`Ring::rearm_epoll`]).
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        self.enable()?;
        self.bufs.publish();
        let submitter = self.ring.submitter();
        let r = match timeout {
            None => submitter.submit_and_wait(1),
            Some(t) => {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                submitter.submit_with_args(1, &args)
            }
        };
        match r {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        let mut epoll = false;
        for cqe in self.ring.completion() {
            let ud = cqe.user_data();
            let more = cqueue::more(cqe.flags());
            match ud >> 60 {
                OP_EPOLL => {
                    epoll = true;
                    self.epoll_armed = false;
                }
                OP_WAKE => self.wake_armed &= more,
                op @ (OP_RECV | OP_SEND | OP_ACCEPT) => self.completed.push(Completion {
                    op: match op {
                        OP_RECV => Op::Recv,
                        OP_SEND => Op::Send,
                        _ => Op::Accept,
                    },
                    key: ud as u32,
                    gen: (ud >> 32) as u32 & GEN_MASK,
                    res: cqe.result(),
                    more,
                    buf: cqueue::buffer_select(cqe.flags()),
                }),
                // A cancel that found nothing (the receive had ended).
                _ => {}
            }
        }
        if !self.wake_armed {
            self.arm_wake();
        }
        Ok(epoll)
    }

    /// Polls the epoll fd again once its events have been taken: a
    /// one-shot poll completes at once while any source is still ready.
    pub fn rearm_epoll(&mut self) {
        if !self.epoll_armed {
            self.arm_epoll();
        }
    }

    /// Moves the completions gathered by the last waits into `into`.
    pub fn take_completed(&mut self, into: &mut Vec<Completion>) {
        into.append(&mut self.completed);
    }

    /// A receive's bytes (empty for other completions).
    pub fn received(&self, c: &Completion) -> &[u8] {
        match c.buf {
            Some(bid) if c.op == Op::Recv && c.res > 0 => self.bufs.get(bid, c.res as usize),
            _ => &[],
        }
    }

    /// Gives a receive's buffer back to the kernel (with the next wait).
    pub fn recycle(&mut self, c: &Completion) {
        if let (Op::Recv, Some(bid)) = (c.op, c.buf) {
            self.bufs.put(bid);
        }
    }
}

/// A provided-buffer ring: `BUF_COUNT` entries the kernel takes receive
/// buffers from, and the buffers themselves.
struct BufPool {
    entries: NonNull<types::BufRingEntry>,
    entries_layout: Layout,
    data: NonNull<u8>,
    data_layout: Layout,
    /// Our copy of the ring's tail; the kernel sees it at [`BufPool::publish`].
    tail: u16,
}

// SAFETY: the pool's memory is owned by it alone (and lent to the kernel
// through the ring that owns the pool); nothing else points into it.
unsafe impl Send for BufPool {}

impl BufPool {
    fn new() -> io::Result<BufPool> {
        let size = BUF_COUNT as usize * std::mem::size_of::<types::BufRingEntry>();
        // The kernel wants the ring page-aligned.
        let entries_layout = Layout::from_size_align(size, 4096).map_err(io::Error::other)?;
        let data_layout =
            Layout::from_size_align(BUF_COUNT as usize * BUF_SIZE, 64).map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size.
        let (entries, data) = unsafe {
            (
                alloc::alloc_zeroed(entries_layout),
                alloc::alloc(data_layout),
            )
        };
        let (Some(entries), Some(data)) = (
            NonNull::new(entries as *mut types::BufRingEntry),
            NonNull::new(data),
        ) else {
            return Err(io::ErrorKind::OutOfMemory.into());
        };
        let mut pool = BufPool {
            entries,
            entries_layout,
            data,
            data_layout,
            tail: 0,
        };
        for bid in 0..BUF_COUNT {
            pool.put(bid);
        }
        pool.publish();
        Ok(pool)
    }

    fn put(&mut self, bid: u16) {
        let slot = (self.tail & (BUF_COUNT - 1)) as usize;
        // SAFETY: `slot` < BUF_COUNT, inside the entries allocation; the
        // kernel only reads entries between its head and our published tail,
        // and this slot is past the tail.
        let e = unsafe { &mut *self.entries.as_ptr().add(slot) };
        // SAFETY: `bid` < BUF_COUNT, so the buffer is inside `data`.
        e.set_addr(unsafe { self.data.as_ptr().add(bid as usize * BUF_SIZE) } as u64);
        e.set_len(BUF_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives in the first entry, inside the
        // allocation; the kernel reads it concurrently, hence the atomic.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn get(&self, bid: u16, len: usize) -> &[u8] {
        let len = len.min(BUF_SIZE);
        let bid = (bid % BUF_COUNT) as usize;
        // SAFETY: the buffer is inside `data`; the kernel wrote `len` bytes
        // to it and does not touch it again until it is put back.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(bid * BUF_SIZE), len) }
    }
}

impl Drop for BufPool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the ring that lent
        // them to the kernel is closed (dropped before the pool).
        unsafe {
            alloc::dealloc(self.entries.as_ptr() as *mut u8, self.entries_layout);
            alloc::dealloc(self.data.as_ptr(), self.data_layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_base::{EventBase, Interest};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, server)
    }

    /// Waits (bounded) until the ring has handed out `n` completions.
    fn completions(base: &mut EventBase<()>, n: usize) -> Vec<Completion> {
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < n && start.elapsed() < Duration::from_secs(5) {
            base.wait(Some(Duration::from_millis(100)), |_| {}).unwrap();
            base.ring().unwrap().take_completed(&mut got);
        }
        got
    }

    /// Bytes arrive through the multishot receive, which stays armed;
    /// a send reaches the peer; the peer's close is a zero-byte receive.
    #[test]
    fn receives_sends_and_sees_the_end() {
        if !Ring::supported() {
            panic!("this kernel refuses io_uring: the suite needs it (kernel.io_uring_disabled=0)");
        }
        let mut base: EventBase<()> = EventBase::new_uring().unwrap();
        let (mut client, server) = pair();
        base.ring().unwrap().recv(server.as_raw_fd(), 3, 9);
        client.write_all(b"get a\r\n").unwrap();
        let got = completions(&mut base, 1);
        let c = got[0];
        assert_eq!((c.op, c.key, c.gen, c.more), (Op::Recv, 3, 9, true));
        assert_eq!(base.ring().unwrap().received(&c), b"get a\r\n");
        base.ring().unwrap().recycle(&c);

        let reply = b"END\r\n".to_vec();
        // SAFETY: `reply` outlives the wait that reports the send.
        unsafe { base.ring().unwrap().send(server.as_raw_fd(), 3, 9, &reply) };
        let got = completions(&mut base, 1);
        assert_eq!((got[0].op, got[0].res), (Op::Send, 5));
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"END\r\n");

        drop(client);
        let got = completions(&mut base, 1);
        assert_eq!((got[0].op, got[0].res), (Op::Recv, 0));
    }

    /// A cancelled receive ends with -ECANCELED and no more completions.
    #[test]
    fn cancel_ends_the_receive() {
        let mut base: EventBase<()> = EventBase::new_uring().unwrap();
        let (_client, server) = pair();
        base.ring().unwrap().recv(server.as_raw_fd(), 1, 1);
        base.wait(Some(Duration::ZERO), |_| {}).unwrap();
        base.ring().unwrap().cancel_recv(1, 1);
        let got = completions(&mut base, 1);
        assert_eq!(got[0].res, -libc::ECANCELED);
        assert!(!got[0].more);
    }

    /// A readiness source on the reactor's epoll is reported through the
    /// ring, and again while it stays ready (the epoll fd's poll is
    /// one-shot, re-armed after each drain, over level-triggered sources).
    /// Wakes and timers: the reactor's own tests run on both backends.
    #[test]
    fn unread_data_is_reported_again() {
        let mut base: EventBase<u8> = EventBase::new_uring().unwrap();
        let (mut client, server) = pair();
        base.register(&server, 7, Interest::READ).unwrap();
        client.write_all(b"x").unwrap();
        for _ in 0..2 {
            let mut keys = Vec::new();
            let start = Instant::now();
            while keys.is_empty() && start.elapsed() < Duration::from_secs(5) {
                base.wait(Some(Duration::from_millis(100)), |ev| keys.push(ev.key))
                    .unwrap();
            }
            assert_eq!(keys, vec![7], "unread data is reported again");
        }
        base.deregister(&server).unwrap();
    }

    #[test]
    fn tokens_carry_op_key_and_generation() {
        let t = token(OP_SEND, 7, 0xFFFF_FFFF);
        assert_eq!(t >> 60, OP_SEND);
        assert_eq!(t as u32, 7);
        assert_eq!((t >> 32) as u32 & GEN_MASK, GEN_MASK);
    }
}
