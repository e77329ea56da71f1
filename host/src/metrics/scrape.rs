//! One scrape's figures: every worker is asked (`Msg::Scrape`) for the
//! stats lines, memory size and plugin metrics of the shards it owns, and
//! answers between batches; the metrics thread waits here, never a reactor.

use crate::batch::{Msg, ScrapeRequest, ShardScrape};
use crate::shared::Shared;
use std::time::{Duration, Instant};
use wasmcached_abi::stats_group;

/// How long a scrape waits for the workers' answers. A shard busy in a long
/// guest call (up to the plugin deadline) is left out of this scrape rather
/// than holding the scraper past its own timeout.
const SCRAPE_WAIT: Duration = Duration::from_secs(2);

/// The stats groups a scrape reads from every shard.
const GROUPS: [i32; 3] = [stats_group::GENERAL, stats_group::ITEMS, stats_group::SLABS];

/// What the workers sent for one scrape.
pub struct Scraped {
    pub shards: Vec<ShardScrape>,
    /// Shards that did not answer within [`SCRAPE_WAIT`].
    pub missing: usize,
}

/// Asks every worker for its shards' figures and waits for them.
pub fn scrape(shared: &Shared) -> Scraped {
    let expected = shared.router.shards() as usize;
    let (tx, rx) = crossbeam_channel::unbounded();
    if let Some(workers) = shared.workers.get() {
        for w in workers {
            w.send(Msg::Scrape(ScrapeRequest {
                groups: GROUPS.to_vec(),
                results: tx.clone(),
            }));
        }
    }
    drop(tx);
    let deadline = Instant::now() + SCRAPE_WAIT;
    let mut shards = Vec::with_capacity(expected);
    while shards.len() < expected {
        match rx.recv_deadline(deadline) {
            Ok(s) => shards.push(s),
            Err(_) => break,
        }
    }
    shards.sort_by_key(|s| s.shard);
    Scraped {
        missing: expected - shards.len(),
        shards,
    }
}
