//! `EventBase`: the libevent-style reactor every thread runs.
//!
//! One `polling::Poller` (epoll / kqueue / IOCP), a timer heap whose nearest
//! deadline bounds each wait, and `notify()` so other threads can wake it
//! (memcached writes a byte to a pipe; `Poller::notify` is our pipe).
//!
//! Sources are registered level-triggered where the OS supports it, so a
//! readable socket with data left (after the `-R` fairness limit) is reported
//! again without a re-arm syscall. Where only oneshot exists, the caller re-arms
//! after every event; [`EventBase::rearm_each_event`] says which applies.

use crate::timer::TimerHeap;
use polling::{AsRawSource, AsSource, Event, Events, PollMode, Poller};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a source wants to hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    pub readable: bool,
    pub writable: bool,
}

impl Interest {
    pub const READ: Interest = Interest {
        readable: true,
        writable: false,
    };
    pub const WRITE: Interest = Interest {
        readable: false,
        writable: true,
    };
    pub const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };

    fn event(self, key: usize) -> Event {
        match (self.readable, self.writable) {
            (true, true) => Event::all(key),
            (true, false) => Event::readable(key),
            (false, true) => Event::writable(key),
            (false, false) => Event::none(key),
        }
    }
}

/// A handle other threads use to wake a reactor.
#[derive(Clone)]
pub struct Waker(Arc<Poller>);

impl Waker {
    pub fn wake(&self) {
        // A failed notify only means the poller is gone (shutdown); nothing to do.
        let _ = self.0.notify();
    }
}

pub struct EventBase<T> {
    poller: Arc<Poller>,
    events: Events,
    timers: TimerHeap<T>,
    mode: PollMode,
}

impl<T> EventBase<T> {
    pub fn new() -> io::Result<Self> {
        let poller = Poller::new()?;
        let mode = if poller.supports_level() {
            PollMode::Level
        } else {
            PollMode::Oneshot
        };
        Ok(EventBase {
            poller: Arc::new(poller),
            events: Events::new(),
            timers: TimerHeap::default(),
            mode,
        })
    }

    pub fn waker(&self) -> Waker {
        Waker(self.poller.clone())
    }

    /// True when the poll mode is oneshot: interest must be re-armed after each event.
    pub fn rearm_each_event(&self) -> bool {
        self.mode == PollMode::Oneshot
    }

    /// Registers `source` under `key`. The caller must call [`EventBase::deregister`]
    /// before the source is closed.
    pub fn register<S>(&self, source: &S, key: usize, interest: Interest) -> io::Result<()>
    where
        S: AsSource,
        for<'a> &'a S: AsRawSource,
    {
        // SAFETY: polling requires the source to be deleted from the poller before it
        // is dropped; every owner of a registered source (Conn, Listener) deregisters
        // it in its close path before dropping the socket.
        unsafe {
            self.poller
                .add_with_mode(source, interest.event(key), self.mode)
        }
    }

    pub fn modify<S: AsSource>(
        &self,
        source: &S,
        key: usize,
        interest: Interest,
    ) -> io::Result<()> {
        self.poller
            .modify_with_mode(source, interest.event(key), self.mode)
    }

    pub fn deregister<S: AsSource>(&self, source: &S) -> io::Result<()> {
        self.poller.delete(source)
    }

    pub fn add_timer(&mut self, deadline: Instant, what: T) {
        self.timers.add(deadline, what);
    }

    /// Waits for I/O, a notify, or the nearest timer (at most `max_wait`), then
    /// hands the ready events to `on_event`. Due timers are taken with [`EventBase::pop_due_timer`].
    pub fn wait(
        &mut self,
        max_wait: Option<Duration>,
        mut on_event: impl FnMut(Event),
    ) -> io::Result<()> {
        let now = Instant::now();
        let timer_wait = self
            .timers
            .next_deadline()
            .map(|d| d.saturating_duration_since(now));
        let timeout = match (timer_wait, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            on_event(ev);
        }
        Ok(())
    }

    pub fn pop_due_timer(&mut self) -> Option<T> {
        self.timers.pop_due(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn reports_readable_socket_and_timers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();

        let mut base: EventBase<&str> = EventBase::new().unwrap();
        base.register(&server, 7, Interest::READ).unwrap();
        base.add_timer(Instant::now(), "due");

        client.write_all(b"x").unwrap();
        let mut keys = Vec::new();
        base.wait(Some(Duration::from_secs(5)), |ev| {
            keys.push((ev.key, ev.readable))
        })
        .unwrap();
        assert_eq!(keys, vec![(7, true)]);
        assert_eq!(base.pop_due_timer(), Some("due"));
        assert_eq!(base.pop_due_timer(), None);
        base.deregister(&server).unwrap();
    }

    #[test]
    fn waker_interrupts_wait() {
        let mut base: EventBase<()> = EventBase::new().unwrap();
        let waker = base.waker();
        let t = std::thread::spawn(move || waker.wake());
        let start = Instant::now();
        base.wait(Some(Duration::from_secs(10)), |_| {}).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    }
}
