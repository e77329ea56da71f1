//! What travels between workers: connections handed off by the main reactor,
//! request batches sent to the worker that owns a shard, and their answers.

use crate::conn::Stream;
use wasmcached_sdk::abi::{self, Request};

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
    Reload(crate::reload::Request),
    /// A finished admin answer (e.g. `plugin reload`) for a waiting slot.
    Reply(Ticket, Vec<u8>),
    /// An item listing (`lru_crawler metadump`, `stats cachedump`) for the
    /// owner of the shard it walks next: run one chunk
    /// (host/src/worker/listing.rs).
    ListStep(Box<crate::worker::listing::Listing>),
    /// A listing's rendered chunk, back to the worker of its connection.
    ListOut(Box<crate::worker::listing::Listing>),
}
