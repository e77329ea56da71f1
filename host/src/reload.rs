//! Hot plugin reload: SIGHUP (unix) or the `plugin reload` text command
//! (every platform) compile the `--plugin` file again (the embedded default
//! store when there is none) and swap every shard's instance, each on the
//! worker that owns it, without closing a connection.
//!
//! Why no command is lost: a worker handles its messages between loop
//! iterations, after the batches of the previous iteration have run, so
//! every request already handed to a shard is answered by the old instance,
//! and every later one by the new. Where both plugins export the ABI v3 item
//! dump/load, [`Shard::reload`](crate::plugin::Shard::reload) moves the
//! items across; otherwise the new instance starts empty and the log says so.

use crate::batch::{Msg, ReloadRequest};
use crate::plugin::{Plugin, StartedEmpty};
use crate::shared::Shared;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a whole reload may take before the caller gives up waiting:
/// moving the items of a big cache is bounded by memory bandwidth and the
/// guests' dump/load speed, so this is generous.
const WAIT: Duration = Duration::from_secs(300);

static IN_PROGRESS: AtomicBool = AtomicBool::new(false);

/// Compiles the plugin again and swaps it into every shard; returns the
/// one-line summary it also logs. Blocks until every worker has answered,
/// so it must not run on a worker thread.
pub fn reload_all(shared: &Shared) -> Result<String, String> {
    if IN_PROGRESS.swap(true, Ordering::SeqCst) {
        return Err("a plugin reload is already in progress".into());
    }
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            IN_PROGRESS.store(false, Ordering::SeqCst);
        }
    }
    let _done = Done;
    let result = swap_everywhere(shared);
    let counter = match &result {
        Ok(_) => &shared.faults.plugin_reloads,
        Err(_) => &shared.faults.plugin_reload_failures,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    match &result {
        Ok(line) => eprintln!("plugin reload: {line}"),
        Err(e) => eprintln!("plugin reload failed: {e}"),
    }
    result
}

fn swap_everywhere(shared: &Shared) -> Result<String, String> {
    let plugin = Plugin::load(shared.settings.plugin.as_deref())
        .map(Arc::new)
        .map_err(|e| format!("{e:#}"))?;
    let workers = shared.workers.get().ok_or("the server is not running")?;
    let (tx, rx) = crossbeam_channel::unbounded();
    for w in workers {
        w.send(Msg::Reload(ReloadRequest {
            plugin: plugin.clone(),
            results: tx.clone(),
        }));
    }
    drop(tx);
    let shards = shared.router.shards();
    let (mut moved, mut failed) = (0u64, Vec::new());
    let mut incomplete = 0u32;
    // Shards whose new instance started empty, by why.
    let mut empty: BTreeMap<StartedEmpty, u32> = BTreeMap::new();
    for _ in 0..shards {
        let r = rx
            .recv_timeout(WAIT)
            .map_err(|_| format!("the workers did not all answer within {WAIT:?}"))?;
        match r.outcome {
            Ok(o) => {
                moved += o.items_moved;
                match o.started_empty {
                    Some(why) => *empty.entry(why).or_default() += 1,
                    None => incomplete += !o.complete as u32,
                }
            }
            Err(e) => failed.push(format!("shard {}: {e}", r.shard)),
        }
    }
    if !failed.is_empty() {
        return Err(format!(
            "{} of {shards} shards kept the old plugin: {}",
            failed.len(),
            failed.join("; ")
        ));
    }
    let items = describe(moved, shards, &empty);
    let lost = if incomplete > 0 {
        format!("; {incomplete} shards could not take every item (memory)")
    } else {
        String::new()
    };
    Ok(format!("{} on {shards} shards, {items}{lost}", plugin.name))
}

/// The reload line's account of the items: how many moved, and which shards
/// started empty and why (each reason once, with its shard count).
fn describe(moved: u64, shards: u32, empty: &BTreeMap<StartedEmpty, u32>) -> String {
    let started_empty: u32 = empty.values().sum();
    if started_empty == 0 {
        return format!("{moved} items moved");
    }
    let why: Vec<String> = empty
        .iter()
        .map(|(why, &n)| {
            if n == shards {
                why.to_string()
            } else {
                format!("{n} of {shards} shards: {why}")
            }
        })
        .collect();
    let why = why.join("; ");
    if started_empty == shards {
        format!("started empty ({why})")
    } else {
        format!("{moved} items moved; {started_empty} shards started empty ({why})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_line_says_why_shards_started_empty() {
        let none = BTreeMap::new();
        assert_eq!(describe(7, 4, &none), "7 items moved");
        let all = BTreeMap::from([(StartedEmpty::OldCannotDump, 2)]);
        assert_eq!(
            describe(0, 2, &all),
            "started empty (the old plugin has no item dump (wmc_dump))"
        );
        let some = BTreeMap::from([(StartedEmpty::NoOldInstance, 1)]);
        assert_eq!(
            describe(5, 4, &some),
            "5 items moved; 1 shards started empty (1 of 4 shards: backing off after \
             repeated faults, so it held no items to move)"
        );
    }
}
