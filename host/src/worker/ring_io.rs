//! A worker's connections on the io_uring backend (event_base/uring.rs,
//! `-o io=uring`): what their receive and send completions do, and keeping
//! each one's receive armed while it reads and its replies moving.
//!
//! A completion is the ring's counterpart of a readiness event: received
//! bytes join the read buffer and are parsed as [`Worker::on_event`] parses
//! what `fill` read; a finished send is `flush` having written. The state
//! machine around them (conn.rs, `write_touched`) is the same for both
//! backends.

use super::{Timer, Worker};
use crate::conn::{Conn, ConnState, RecvState};
use crate::counters::bump;
use crate::event_base::uring::{Completion, Op, GEN_MASK};
use crate::event_base::EventBase;
use crate::reply::Reply;

impl Worker {
    /// Handles the connection completions of the last wait, in order.
    pub(super) fn on_completions(&mut self) {
        let Some(ring) = self.base.ring() else {
            return;
        };
        let mut done = std::mem::take(&mut self.completions);
        ring.take_completed(&mut done);
        for c in &done {
            match c.op {
                Op::Recv => self.on_recv(c),
                Op::Send => self.on_sent(c),
                // Only the main thread accepts.
                Op::Accept => {}
            }
        }
        done.clear();
        self.completions = done;
    }

    fn on_recv(&mut self, c: &Completion) {
        let idx = c.key;
        let draining = self.draining;
        let (Some(ring), Some(conn)) = (self.base.ring(), self.slab.get(idx)) else {
            return;
        };
        if conn.gen & GEN_MASK != c.gen || conn.ring.is_none() {
            // A connection closed since: its bytes have nowhere to go.
            ring.recycle(c);
            return;
        }
        if !c.more {
            if let Some(rio) = conn.ring.as_mut() {
                rio.recv = RecvState::Off;
            }
        }
        if c.res > 0 {
            conn.take_input(ring.received(c));
            ring.recycle(c);
            bump(
                &self.core.shared.threads[self.core.id].bytes_read,
                c.res as u64,
            );
            // As `on_event` reads only while the connection may parse.
            let paused = conn.state() == ConnState::Mwrite && conn.reading() == ConnState::ParseCmd;
            if conn.state().is_closing() || draining || conn.over_high_water() || paused {
                if let Some(rio) = conn.ring.as_mut() {
                    rio.held_input = true;
                }
            } else {
                self.parse(idx);
            }
        } else if c.res == 0 || !matches!(-c.res, libc::ENOBUFS | libc::ECANCELED) {
            // End of stream, or a failed read.
            return self.close(idx);
        }
        // Out of buffers, cancelled, or ended: `write_touched` re-arms it
        // if the connection is still reading.
        self.touch(idx);
    }

    fn on_sent(&mut self, c: &Completion) {
        let idx = c.key;
        let live = self.slab.get(idx).is_some_and(|conn| {
            conn.gen & GEN_MASK == c.gen && conn.ring.as_ref().is_some_and(|r| r.in_flight())
        });
        if !live {
            // The connection closed while the kernel was sending: its
            // buffer can go now.
            self.orphans
                .retain(|&(i, gen, _)| !(i == idx && gen == c.gen));
            return;
        }
        if c.res <= 0 {
            // A send never takes nothing of a non-empty buffer: the socket failed.
            return self.close(idx);
        }
        bump(
            &self.core.shared.threads[self.core.id].bytes_written,
            c.res as u64,
        );
        let (Some(ring), Some(conn)) = (self.base.ring(), self.slab.get(idx)) else {
            return;
        };
        let gen = conn.gen;
        if let Some(fd) = conn.stream.ring_fd() {
            if let Some(rest) = conn.sent(c.res as usize) {
                // SAFETY: as in `ring_update`: the bytes stay in the connection's
                // send buffer, unmoved, until this send completes.
                unsafe { ring.send(fd, idx, gen, rest) };
            }
        }
        self.touch(idx);
    }

    /// After the loop's writes, for a ring connection: submits its next send
    /// if none is in flight, and arms or cancels its receive as `read` says.
    /// Returns true when input held back earlier should be parsed now.
    pub(super) fn ring_update(
        base: &mut EventBase<Timer>,
        conn: &mut Conn<Reply>,
        idx: u32,
        read: bool,
    ) -> bool {
        let (Some(ring), Some(fd)) = (base.ring(), conn.stream.ring_fd()) else {
            return false;
        };
        let gen = conn.gen;
        if let Some(bytes) = conn.start_send() {
            // SAFETY: the bytes are the connection's send buffer (`RingIo`),
            // which nothing touches until `Conn::sent` sees the send complete;
            // a connection closed before that leaves the buffer in the worker's
            // `orphans` until the completion arrives (`Worker::close`).
            unsafe { ring.send(fd, idx, gen, bytes) };
        }
        let Some(rio) = conn.ring.as_mut() else {
            return false;
        };
        match (read, rio.recv) {
            (true, RecvState::Off) => {
                ring.recv(fd, idx, gen);
                rio.recv = RecvState::Armed;
            }
            (false, RecvState::Armed) => {
                ring.cancel_recv(idx, gen);
                rio.recv = RecvState::Cancelling;
            }
            _ => {}
        }
        read && std::mem::take(&mut rio.held_input)
    }

    /// A new connection's first receive; false when it is not a ring
    /// connection (TLS, or the reactor runs on polling).
    pub(super) fn ring_open(base: &mut EventBase<Timer>, conn: &mut Conn<Reply>, idx: u32) -> bool {
        let (Some(ring), Some(fd)) = (base.ring(), conn.stream.ring_fd()) else {
            return false;
        };
        ring.recv(fd, idx, conn.gen);
        let mut rio = crate::conn::RingIo::default();
        rio.recv = RecvState::Armed;
        conn.ring = Some(rio);
        true
    }

    /// A ring connection about to close its socket: its receive is cancelled,
    /// everything queued is submitted (so nothing queued for this descriptor
    /// reaches the next socket that gets its number: memcached's descriptors,
    /// `stats conns` ids, are reused at once), and a send still in flight keeps
    /// its buffer (returned for `orphans`).
    pub(super) fn ring_close(
        base: &mut EventBase<Timer>,
        conn: &mut Conn<Reply>,
        idx: u32,
    ) -> Option<(u32, u32, Vec<u8>)> {
        let rio = conn.ring.as_mut()?;
        if let Some(ring) = base.ring() {
            if rio.recv == RecvState::Armed {
                ring.cancel_recv(idx, conn.gen);
            }
            ring.submit();
        }
        rio.orphan().map(|buf| (idx, conn.gen & GEN_MASK, buf))
    }
}
