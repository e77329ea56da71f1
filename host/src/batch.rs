//! What travels between workers: connections handed off by the main reactor,
//! request batches sent to the worker that owns a shard, and their answers.

use crate::conn::Stream;
use crate::conn::Ticket;
use crate::event_base::Waker;
use crate::listing::Listing;
use crate::plugin::{Plugin, ReloadOutcome};
use crossbeam_channel::Sender;
use std::sync::Arc;
use wasmcached_abi::{self as abi, Request};

/// All requests one worker collected for one shard in one loop iteration:
/// they run as one guest call.
pub struct Batch {
    pub shard: u32,
    /// Worker that built the batch and gets the answers.
    pub origin: usize,
    /// Request records (ABI batch) on the way out; response records on the way back.
    pub data: Vec<u8>,
    pub count: u32,
    pub tickets: Vec<Ticket>,
    /// Stats groups to read from the shard after the requests ran, with their tickets.
    pub stats: Vec<(i32, Ticket)>,
    /// On the way back: one stats text per entry of `stats`.
    pub stats_out: Vec<Vec<u8>>,
    /// On the way back: set when the shard faulted; every ticket gets this error.
    pub fault: Option<String>,
    /// On the way back: the plugin's `log_event` records (ABI v6), only
    /// while someone watches.
    pub events: Vec<u8>,
}

impl Batch {
    pub fn new(shard: u32, origin: usize) -> Batch {
        let mut data = Vec::with_capacity(4096);
        abi::begin_batch(&mut data);
        Batch {
            shard,
            origin,
            data,
            count: 0,
            tickets: Vec::new(),
            stats: Vec::new(),
            stats_out: Vec::new(),
            fault: None,
            events: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.stats.is_empty()
    }

    pub fn push(&mut self, req: &Request<'_>, ticket: Ticket) {
        req.encode(&mut self.data);
        self.count += 1;
        self.tickets.push(ticket);
    }

    /// Finishes the request batch before it is run.
    pub fn seal(&mut self) {
        abi::set_batch_count(&mut self.data, self.count);
    }
}

/// A message to a worker.
pub enum Msg {
    /// A new client connection from the main reactor.
    Conn(Stream),
    /// Requests for a shard this worker owns.
    Run(Box<Batch>),
    /// Answers to a batch this worker sent.
    Done(Box<Batch>),
    /// Stop reading commands; finish and close every connection (graceful
    /// stop; the worker reports through `Shared::drained`).
    Drain,
    /// Stop: close connections and exit the thread.
    Shutdown,
    /// Swap a new plugin into every shard this worker owns (host/src/reload.rs).
    Reload(ReloadRequest),
    /// A finished admin answer (e.g. `plugin reload`) for a waiting slot.
    Reply(Ticket, Vec<u8>),
    /// An item listing (`lru_crawler metadump`, `stats cachedump`) for the
    /// owner of the shard it walks next: run one chunk
    /// (host/src/listing.rs).
    ListStep(Box<Listing>),
    /// A listing's rendered chunk, back to the worker of its connection.
    ListOut(Box<Listing>),
    /// `/metrics` wants every shard's figures (host/src/metrics/).
    Scrape(ScrapeRequest),
}

/// What a worker is asked for a `/metrics` scrape: the stats `groups` of
/// every shard it owns, one [`ShardScrape`] per shard to `results`.
pub struct ScrapeRequest {
    pub groups: Vec<i32>,
    pub results: Sender<ShardScrape>,
}

/// One shard's figures for a scrape, read on its worker between batches.
pub struct ShardScrape {
    pub shard: u32,
    pub worker: usize,
    /// The plugin's stat lines for each group asked for, in that order.
    pub stats: Vec<(i32, Vec<u8>)>,
    /// The instance's linear memory (0 without an instance).
    pub memory_bytes: u64,
    /// The metrics the plugin declares (ABI v8), read now.
    pub plugin_metrics: Vec<crate::plugin::PluginMetric>,
}

/// What a worker is asked to do: swap `plugin` into every shard it owns
/// and send one [`ShardResult`] per shard to `results`.
pub struct ReloadRequest {
    pub plugin: Arc<Plugin>,
    pub results: Sender<ShardResult>,
}

/// One shard's answer to a [`ReloadRequest`].
pub struct ShardResult {
    pub shard: u32,
    pub outcome: Result<ReloadOutcome, String>,
}

/// How other threads reach a worker.
#[derive(Clone)]
pub struct WorkerHandle {
    pub tx: Sender<Msg>,
    pub waker: Waker,
}

impl WorkerHandle {
    pub fn send(&self, msg: Msg) {
        // The receiver only goes away at shutdown, when nothing needs delivering.
        if self.tx.send(msg).is_ok() {
            self.waker.wake();
        }
    }
}

/// Batches and answers for other workers, held until the end of the loop
/// iteration and then sent with one wake-up per worker. Sent as soon as they
/// were ready, each woke its worker mid-iteration: on a shared core the
/// woken worker could preempt this one before it had written its own
/// replies, and at -t 2 under multigets the workers ping-ponged a couple of
/// requests at a time.
#[derive(Default)]
pub struct Outbox {
    msgs: Vec<(usize, Msg)>,
    /// Per worker: has a message in `msgs` (sized at the first post).
    to: Vec<bool>,
}

impl Outbox {
    pub fn post(&mut self, worker: usize, msg: Msg) {
        self.msgs.push((worker, msg));
    }

    /// Sends everything posted, in order, then wakes each receiver once.
    pub fn send(&mut self, workers: &[WorkerHandle]) {
        if self.msgs.is_empty() {
            return;
        }
        self.to.resize(workers.len(), false);
        for (w, msg) in self.msgs.drain(..) {
            // A closed channel means shutdown: nothing needs delivering.
            if workers[w].tx.send(msg).is_ok() {
                self.to[w] = true;
            }
        }
        for (w, to) in self.to.iter_mut().enumerate() {
            if std::mem::take(to) {
                workers[w].waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_base::EventBase;
    use crossbeam_channel::Receiver;
    use std::time::{Duration, Instant};

    /// Posted messages reach each worker in posting order once sent, and
    /// a sleeping receiver is woken.
    #[test]
    fn outbox_sends_in_order_and_wakes_each_receiver() {
        let mut bases: Vec<EventBase<()>> = (0..2).map(|_| EventBase::new().unwrap()).collect();
        let (handles, rxs): (Vec<WorkerHandle>, Vec<Receiver<Msg>>) = bases
            .iter()
            .map(|b| {
                let (tx, rx) = crossbeam_channel::unbounded();
                (
                    WorkerHandle {
                        tx,
                        waker: b.waker(),
                    },
                    rx,
                )
            })
            .unzip();
        let mut outbox = Outbox::default();
        outbox.post(0, Msg::Drain);
        outbox.post(1, Msg::Drain);
        outbox.post(0, Msg::Shutdown);
        assert!(
            rxs.iter().all(|rx| rx.is_empty()),
            "nothing leaves before send"
        );
        outbox.send(&handles);
        let kinds = |rx: &Receiver<Msg>| -> Vec<&str> {
            rx.try_iter()
                .map(|m| match m {
                    Msg::Drain => "drain",
                    Msg::Shutdown => "shutdown",
                    _ => "other",
                })
                .collect()
        };
        assert_eq!(kinds(&rxs[0]), ["drain", "shutdown"]);
        assert_eq!(kinds(&rxs[1]), ["drain"]);
        for base in &mut bases {
            let start = Instant::now();
            base.wait(Some(Duration::from_secs(10)), |_| {}).unwrap();
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "receiver not woken"
            );
        }
        // Nothing posted: nothing sent, nobody woken.
        outbox.send(&handles);
        let start = Instant::now();
        bases[0]
            .wait(Some(Duration::from_millis(50)), |_| {})
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
