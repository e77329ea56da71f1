//! The workers' side of a `/metrics` scrape (host/src/metrics/): read the
//! figures of every shard owned here, between batches, and send them to the
//! metrics thread, which never touches a shard itself.

use super::Worker;
use crate::batch::{ScrapeRequest, ShardScrape};

impl Worker {
    pub(super) fn scrape(&mut self, req: ScrapeRequest) {
        let worker = self.core.id;
        for shard in self.shards.iter_mut().flatten() {
            let (lines, plugin_metrics) = shard.stats_and_metrics(&req.groups);
            let answer = ShardScrape {
                shard: shard.shard_id(),
                worker,
                stats: req.groups.iter().copied().zip(lines).collect(),
                memory_bytes: shard.memory_bytes(),
                plugin_metrics,
            };
            // The metrics thread gave up waiting: nothing to do.
            let _ = req.results.send(answer);
        }
    }
}
