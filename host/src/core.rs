//! The command layer's half of a worker ([`Core`]): where the session
//! handlers send what they parsed. It collects requests into one batch per
//! shard for the loop iteration, and posts batches and answers for other
//! workers; the worker's loop runs and delivers them.

use crate::batch::{Batch, Msg, Outbox};
use crate::conn::Ticket;
use crate::counters::ThreadStats;
use crate::hotkeys::Sampler;
use crate::listing::Listing;
use crate::shared::Shared;
use std::sync::Arc;
use wasmcached_abi::{self as abi, Request};

/// The part of a worker that command execution needs: where requests go.
pub struct Core {
    pub id: usize,
    pub shared: Arc<Shared>,
    /// Open batch per shard for this loop iteration.
    pub(crate) batches: Vec<Option<Box<Batch>>>,
    /// Shards whose batch has something in it, in first-use order.
    pub(crate) dirty: Vec<u32>,
    /// Spare batches, so the steady state allocates nothing. Boxed because
    /// batches travel between threads as `Box<Batch>`.
    #[allow(clippy::vec_box)]
    pub(crate) pool: Vec<Box<Batch>>,
    pub(crate) outbox: Outbox,
    /// Countdown to the next request `stats hotkeys` counts.
    pub(crate) hot_requests: Sampler,
    /// Countdown to the next answer whose value bytes it counts (the
    /// worker's delivery loops tick it).
    pub(crate) hot_answers: Sampler,
}

impl Core {
    pub fn stats(&self) -> &ThreadStats {
        &self.shared.threads[self.id]
    }

    pub(crate) fn batch(&mut self, shard: u32) -> &mut Batch {
        let slot = &mut self.batches[shard as usize];
        if slot.is_none() {
            let mut b = self
                .pool
                .pop()
                .unwrap_or_else(|| Box::new(Batch::new(shard, self.id)));
            b.shard = shard;
            b.origin = self.id;
            *slot = Some(b);
        }
        let b = slot.as_mut().expect("just filled");
        if b.is_empty() {
            self.dirty.push(shard);
        }
        b
    }

    /// Queues a request on the shard that owns its key. Every keyed
    /// request of every protocol passes here, so this is where `stats
    /// hotkeys` samples them.
    pub fn push(&mut self, req: &Request<'_>, ticket: Ticket) {
        if self.hot_requests.tick() {
            self.shared.hotkeys.request(self.id, req);
        }
        let shard = self.shared.router.shard_of(req.key);
        self.push_to(shard, req, ticket);
    }

    pub fn push_to(&mut self, shard: u32, req: &Request<'_>, ticket: Ticket) {
        self.batch(shard).push(req, ticket);
    }

    /// Queues a stats read of `group` on `shard`, after the requests before it.
    pub fn stats_to(&mut self, shard: u32, group: i32, ticket: Ticket) {
        self.batch(shard).stats.push((group, ticket));
    }

    pub(crate) fn recycle(&mut self, mut b: Box<Batch>) {
        if self.pool.len() < 64 && b.data.capacity() <= 1 << 20 {
            abi::begin_batch(&mut b.data);
            b.count = 0;
            b.tickets.clear();
            b.stats.clear();
            b.stats_out.clear();
            b.fault = None;
            b.events.clear();
            self.pool.push(b);
        }
    }
}

impl Core {
    /// Sends a listing to the owner of the shard it walks next.
    pub fn send_list_step(&mut self, job: Box<Listing>) {
        let owner = self.shared.router.owner(job.shard);
        self.outbox.post(owner, Msg::ListStep(job));
    }
}
