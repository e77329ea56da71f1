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

use crate::batch::Msg;
use crate::plugin::{Plugin, ReloadOutcome};
use crate::worker::Shared;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a worker is asked to do: swap `plugin` into every shard it owns
/// and send one [`ShardResult`] per shard to `results`.
pub struct Request {
    pub plugin: Arc<Plugin>,
    pub results: Sender<ShardResult>,
}

/// One shard's answer to a [`Request`].
pub struct ShardResult {
    pub shard: u32,
    pub outcome: Result<ReloadOutcome, String>,
}

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
        w.send(Msg::Reload(Request {
            plugin: plugin.clone(),
            results: tx.clone(),
        }));
    }
    drop(tx);
    let shards = shared.router.shards();
    let (mut moved, mut transferred, mut failed) = (0u64, 0u32, Vec::new());
    let mut incomplete = 0u32;
    for _ in 0..shards {
        let r = rx
            .recv_timeout(WAIT)
            .map_err(|_| format!("the workers did not all answer within {WAIT:?}"))?;
        match r.outcome {
            Ok(o) => {
                moved += o.items_moved;
                transferred += o.transferred as u32;
                incomplete += (o.transferred && !o.complete) as u32;
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
    let items = if transferred == shards {
        format!("{moved} items moved")
    } else if transferred == 0 {
        "started empty (the old or the new plugin has no item dump/load)".to_string()
    } else {
        format!(
            "{moved} items moved; {} shards started empty",
            shards - transferred
        )
    };
    let lost = if incomplete > 0 {
        format!("; {incomplete} shards could not take every item (memory)")
    } else {
        String::new()
    };
    Ok(format!("{} on {shards} shards, {items}{lost}", plugin.name))
}
