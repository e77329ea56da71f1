//! `EventBase`: the libevent-style reactor every thread runs.
//!
//! One `polling::Poller` (epoll / kqueue / IOCP), a timer heap whose nearest
//! deadline bounds each wait, and a [`Waker`] so other threads can wake it
//! (memcached writes a byte to a pipe).
//!
//! On Linux the wait itself bypasses `Poller::wait`: polling arms a timerfd
//! and re-arms its notifier around every `epoll_wait`, four syscalls per
//! loop that cost ~0.85 syscalls per request under memaslap's getset load
//! (a loop serves ~5 requests; docs/performance.md). There the reactor calls
//! `epoll_wait` on the poller's own epoll fd with a millisecond timeout
//! (rounded up, so a timer is never early) and wakes through an eventfd of
//! its own. That eventfd is edge-triggered and never read (as mio's waker):
//! every write is a new edge, so a wake costs the waker one syscall and the
//! woken reactor none, where a level-triggered one had to be read back
//! (at `-t 2` one syscall per cross-worker hand-off). Registration
//! still goes through polling; the one thing this relies on, that polling
//! stores the key as the epoll data, is checked by the tests below.
//!
//! Sources are registered level-triggered where the OS supports it, so a
//! readable socket with data left (after the `-R` fairness limit) is reported
//! again without a re-arm syscall. Where only oneshot exists, the caller re-arms
//! after every event; [`EventBase::rearm_each_event`] says which applies.

#[cfg(target_os = "linux")]
pub mod uring;

use crate::timer::TimerHeap;
#[cfg(not(target_os = "linux"))]
use polling::Events;
use polling::{AsRawSource, AsSource, Event, PollMode, Poller};
#[cfg(target_os = "linux")]
use rustix::{
    event::epoll::{self, EventFlags as EpollFlags},
    fd::OwnedFd,
};
use std::io;
#[cfg(target_os = "linux")]
use std::mem::MaybeUninit;
use std::sync::atomic::{fence, AtomicBool, Ordering};
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
pub struct Waker {
    handle: WakeHandle,
    /// False while the reactor is busy between two waits and will look at
    /// its queue before it sleeps again ([`EventBase::wait_parked`]): then
    /// a wake is a wasted syscall. At `-t 2` wakes were 0.5 syscalls per
    /// request, most of them to a worker that was not asleep.
    parked: Arc<AtomicBool>,
}

#[cfg(target_os = "linux")]
type WakeHandle = Arc<OwnedFd>;
#[cfg(not(target_os = "linux"))]
type WakeHandle = Arc<Poller>;

impl Waker {
    /// Wakes the reactor if it may be asleep. The caller has already queued
    /// what the reactor should look at.
    pub fn wake(&self) {
        // Pairs with the fence in `wait_parked`: either the reactor sees
        // what was queued before it sleeps, or this sees it parked.
        fence(Ordering::SeqCst);
        if !self.parked.load(Ordering::Relaxed) {
            return;
        }
        #[cfg(target_os = "linux")]
        wake_eventfd(&self.handle);
        #[cfg(not(target_os = "linux"))]
        let _ = self.handle.notify();
    }
}

/// Adds one to the never-read, edge-triggered eventfd: each write is an
/// edge that ends one wait. The counter only fills up (EAGAIN) after 2^64-2
/// wakes; then it is reset and written again so the wake is not lost. Any
/// other failure means the reactor is gone (shutdown).
#[cfg(target_os = "linux")]
fn wake_eventfd(fd: &OwnedFd) {
    let one = 1u64.to_ne_bytes();
    if rustix::io::write(fd, &one) == Err(rustix::io::Errno::AGAIN) {
        let _ = rustix::io::read(fd, &mut [0u8; 8]);
        let _ = rustix::io::write(fd, &one);
    }
}

/// The key the reactor's own eventfd is registered under; polling keeps
/// `usize::MAX` for its notifier, and sources use small numbers.
#[cfg(target_os = "linux")]
const WAKE_KEY: usize = usize::MAX - 1;

pub struct EventBase<T> {
    poller: Arc<Poller>,
    #[cfg(not(target_os = "linux"))]
    events: Events,
    #[cfg(target_os = "linux")]
    wake_fd: Arc<OwnedFd>,
    /// See [`Waker::parked`]. Stays true for a reactor that only uses
    /// [`EventBase::wait`], so every wake reaches it.
    parked: Arc<AtomicBool>,
    timers: TimerHeap<T>,
    mode: PollMode,
    /// The io_uring backend (`-o io=uring`): connection I/O as completions,
    /// the epoll above polled through it (event_base/uring.rs).
    #[cfg(target_os = "linux")]
    ring: Option<uring::Ring>,
}

impl<T> EventBase<T> {
    pub fn new() -> io::Result<Self> {
        Self::with_ring(false)
    }

    /// A reactor on io_uring (Linux): connection I/O goes through
    /// [`EventBase::ring`], readiness sources stay on epoll.
    #[cfg(target_os = "linux")]
    pub fn new_uring() -> io::Result<Self> {
        Self::with_ring(true)
    }

    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    fn with_ring(uring: bool) -> io::Result<Self> {
        let poller = Poller::new()?;
        let mode = if poller.supports_level() {
            PollMode::Level
        } else {
            PollMode::Oneshot
        };
        #[cfg(target_os = "linux")]
        let wake_fd = {
            use rustix::event::{eventfd, EventfdFlags};
            let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            // Under io_uring the ring polls the eventfd itself.
            if !uring {
                // SAFETY: the eventfd lives in `wake_fd` as long as the EventBase,
                // which owns the poller; it is never closed while registered.
                unsafe { poller.add_with_mode(&fd, Event::readable(WAKE_KEY), PollMode::Edge)? };
            }
            Arc::new(fd)
        };
        #[cfg(target_os = "linux")]
        let ring = if uring {
            use std::os::fd::AsRawFd;
            Some(uring::Ring::new(poller.as_raw_fd(), wake_fd.as_raw_fd())?)
        } else {
            None
        };
        Ok(EventBase {
            poller: Arc::new(poller),
            #[cfg(not(target_os = "linux"))]
            events: Events::new(),
            #[cfg(target_os = "linux")]
            wake_fd,
            parked: Arc::new(AtomicBool::new(true)),
            timers: TimerHeap::default(),
            mode,
            #[cfg(target_os = "linux")]
            ring,
        })
    }

    /// The io_uring backend, when this reactor runs on it.
    #[cfg(target_os = "linux")]
    pub fn ring(&mut self) -> Option<&mut uring::Ring> {
        self.ring.as_mut()
    }

    pub fn waker(&self) -> Waker {
        Waker {
            #[cfg(target_os = "linux")]
            handle: self.wake_fd.clone(),
            #[cfg(not(target_os = "linux"))]
            handle: self.poller.clone(),
            parked: self.parked.clone(),
        }
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

    /// [`EventBase::wait`] for a reactor fed through a queue: wakers skip
    /// the wake-up syscall while it is busy, and `pending` (is anything
    /// queued?) is checked once more after it announced that it may sleep,
    /// so nothing queued in between waits for the next event.
    pub fn wait_parked(
        &mut self,
        max_wait: Option<Duration>,
        pending: impl FnOnce() -> bool,
        on_event: impl FnMut(Event),
    ) -> io::Result<()> {
        self.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let max_wait = if pending() {
            Some(Duration::ZERO)
        } else {
            max_wait
        };
        let r = self.wait(max_wait, on_event);
        self.parked.store(false, Ordering::Relaxed);
        r
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
        #[cfg(not(target_os = "linux"))]
        {
            self.events.clear();
            match self.poller.wait(&mut self.events, timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for ev in self.events.iter() {
                on_event(ev);
            }
        }
        #[cfg(target_os = "linux")]
        {
            // On the stack: epoll's event type is not Send, and a worker's
            // EventBase moves to its thread. Level-triggered sources beyond
            // this many are simply reported by the next wait.
            let mut buf = [MaybeUninit::<epoll::Event>::uninit(); 256];
            const ZERO: rustix::event::Timespec = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if let Some(ring) = &mut self.ring {
                if ring.wait(timeout)? {
                    let ready = match epoll::wait(&*self.poller, &mut buf, Some(&ZERO)) {
                        Ok((ready, _)) => ready,
                        Err(rustix::io::Errno::INTR) => &mut [],
                        Err(e) => return Err(e.into()),
                    };
                    self.dispatch(ready, &mut on_event);
                    if let Some(ring) = &mut self.ring {
                        ring.rearm_epoll();
                    }
                }
                return Ok(());
            }
            let timeout = timeout.map(|t| rustix::event::Timespec {
                tv_sec: t.as_secs().min(i32::MAX as u64) as _,
                tv_nsec: t.subsec_nanos() as _,
            });
            let ready = match epoll::wait(&*self.poller, &mut buf, timeout.as_ref()) {
                Ok((ready, _)) => ready,
                Err(rustix::io::Errno::INTR) => &mut [],
                Err(e) => return Err(e.into()),
            };
            self.dispatch(ready, &mut on_event);
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn dispatch(&self, ready: &[epoll::Event], on_event: &mut impl FnMut(Event)) {
        for ev in ready {
            let key = ev.data.u64() as usize;
            if key == WAKE_KEY {
                // Edge-triggered: nothing to reset (see `wake_eventfd`).
                continue;
            }
            // polling's own mapping of epoll flags to readable/writable.
            let flags = ev.flags;
            let readable = flags
                .intersects(EpollFlags::IN | EpollFlags::HUP | EpollFlags::ERR | EpollFlags::PRI);
            let writable = flags.intersects(EpollFlags::OUT | EpollFlags::HUP | EpollFlags::ERR);
            on_event(Interest { readable, writable }.event(key));
        }
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

    /// Every reactor this platform runs: polling, and io_uring on Linux.
    /// The tests below hold for each.
    fn bases<T>() -> Vec<EventBase<T>> {
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut v = vec![EventBase::new().unwrap()];
        #[cfg(target_os = "linux")]
        v.push(EventBase::new_uring().unwrap());
        v
    }

    #[test]
    fn reports_readable_socket_and_timers() {
        for mut base in bases::<&str>() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            server.set_nonblocking(true).unwrap();
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
    }

    #[test]
    fn waker_interrupts_wait() {
        for mut base in bases::<()>() {
            let waker = base.waker();
            let t = std::thread::spawn(move || waker.wake());
            let start = Instant::now();
            base.wait(Some(Duration::from_secs(10)), |_| {}).unwrap();
            assert!(start.elapsed() < Duration::from_secs(5));
            t.join().unwrap();
        }
    }

    /// Wakes before a wait are not lost, several coalesce into one wake-up,
    /// and a consumed wake does not report again (which would spin the loop).
    #[test]
    fn wakes_coalesce_and_are_consumed() {
        for mut base in bases::<()>() {
            let waker = base.waker();
            waker.wake();
            waker.wake();
            let start = Instant::now();
            let mut seen = 0;
            base.wait(Some(Duration::from_secs(10)), |_| seen += 1)
                .unwrap();
            assert!(start.elapsed() < Duration::from_secs(5));
            assert_eq!(seen, 0, "a wake is not an I/O event");
            let start = Instant::now();
            base.wait(Some(Duration::from_millis(50)), |_| seen += 1)
                .unwrap();
            assert!(start.elapsed() >= Duration::from_millis(50));
            assert_eq!(seen, 0);
        }
    }

    /// The never-read eventfd's counter filling up does not swallow a wake.
    #[cfg(target_os = "linux")]
    #[test]
    fn wake_survives_a_full_eventfd_counter() {
        for mut base in bases::<()>() {
            let waker = base.waker();
            // The largest count an eventfd holds: the next write of 1 fails.
            rustix::io::write(&*base.wake_fd, &(u64::MAX - 1).to_ne_bytes()).unwrap();
            base.wait(Some(Duration::from_secs(5)), |_| {}).unwrap();
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                waker.wake();
            });
            let start = Instant::now();
            base.wait(Some(Duration::from_secs(10)), |_| {}).unwrap();
            assert!(start.elapsed() < Duration::from_secs(5));
            t.join().unwrap();
        }
    }

    /// A busy reactor is not woken (no syscall); one about to sleep sees
    /// what was queued (`pending`), and a parked one is woken.
    #[test]
    fn parked_wakes() {
        for mut base in bases::<()>() {
            let waker = base.waker();
            // Busy (after a wait_parked): the wake is skipped, so a later
            // plain-timeout wait is not cut short.
            base.wait_parked(Some(Duration::ZERO), || false, |_| {})
                .unwrap();
            waker.wake();
            let start = Instant::now();
            base.wait_parked(Some(Duration::from_millis(50)), || false, |_| {})
                .unwrap();
            assert!(start.elapsed() >= Duration::from_millis(50));
            // Something queued: no sleep even with a long timeout.
            let start = Instant::now();
            base.wait_parked(Some(Duration::from_secs(10)), || true, |_| {})
                .unwrap();
            assert!(start.elapsed() < Duration::from_secs(5));
            // Parked: another thread's wake ends the wait.
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                waker.wake();
            });
            let start = Instant::now();
            base.wait_parked(Some(Duration::from_secs(10)), || false, |_| {})
                .unwrap();
            assert!(start.elapsed() < Duration::from_secs(5));
            t.join().unwrap();
        }
    }

    /// A timer deadline bounds the wait and is never cut short by rounding.
    #[test]
    fn timer_bounds_the_wait() {
        for mut base in bases::<u8>() {
            let deadline = Instant::now() + Duration::from_micros(2500);
            base.add_timer(deadline, 1);
            base.wait(None, |_| {}).unwrap();
            assert!(Instant::now() >= deadline);
            assert_eq!(base.pop_due_timer(), Some(1));
        }
    }

    /// Writable and hang-up are reported with the key the source was
    /// registered under (the reactor reads epoll's data itself on Linux).
    #[test]
    fn reports_writable_and_hangup() {
        for mut base in bases::<()>() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            server.set_nonblocking(true).unwrap();
            base.register(&server, 3, Interest::WRITE).unwrap();
            let mut evs = Vec::new();
            base.wait(Some(Duration::from_secs(5)), |ev| {
                evs.push((ev.key, ev.readable, ev.writable))
            })
            .unwrap();
            assert_eq!(evs, vec![(3, false, true)]);
            base.modify(&server, 4, Interest::READ).unwrap();
            drop(client);
            let mut hup = Vec::new();
            base.wait(Some(Duration::from_secs(5)), |ev| {
                hup.push((ev.key, ev.readable))
            })
            .unwrap();
            assert_eq!(hup, vec![(4, true)]);
            base.deregister(&server).unwrap();
        }
    }
}
