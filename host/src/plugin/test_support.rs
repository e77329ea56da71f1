//! What the unit tests of the plugin runtime share: a shard of the default
//! store or of a test plugin, and set/get through a one-request batch.

use super::engine::{Plugin, DEFAULT_PLUGIN};
use super::instance::ShardConfig;
use super::shard::Shard;
use std::sync::Arc;
use std::time::Duration;
use wasmcached_abi::{self as abi, Op, Request, Status};

pub(super) const FORGETFUL: &str = include_str!("../../../tests/plugins/forgetful.wat");

/// The tests change the process-wide [`plugin_abi`](super::plugin_abi) and check it:
/// one at a time.
static ABI_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) fn serial() -> std::sync::MutexGuard<'static, ()> {
    ABI_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn config() -> ShardConfig {
    ShardConfig {
        shard_id: 0,
        shard_count: 1,
        memory_budget: 64 << 20,
        item_size_max: 1 << 20,
        use_cas: true,
        evict_to_free: true,
        plugin_config: String::new(),
        hints: abi::Hints::default(),
        deadline: Duration::from_secs(5),
    }
}

pub(super) fn shard(plugin: &Arc<Plugin>) -> Shard {
    Shard::new(plugin.clone(), config(), Arc::default()).unwrap()
}

pub(super) fn default_plugin() -> Arc<Plugin> {
    Arc::new(Plugin::new(DEFAULT_PLUGIN, "default-store").unwrap())
}

/// Runs one request; returns (status, value, flags, cas).
pub(super) fn run(s: &mut Shard, req: Request<'_>) -> (Status, Vec<u8>, u32, u64) {
    let mut buf = Vec::new();
    abi::begin_batch(&mut buf);
    req.encode(&mut buf);
    abi::set_batch_count(&mut buf, 1);
    let out = s.batch(&buf, 1).expect("no fault");
    let r = out.records().next().unwrap();
    (r.status().unwrap(), r.value.to_vec(), r.client_flags, r.cas)
}

pub(super) fn set(s: &mut Shard, key: &str, value: &[u8], flags: u32) -> u64 {
    let (st, _, _, cas) = run(
        s,
        Request {
            op: Op::Set as u8,
            key: key.as_bytes(),
            value,
            client_flags: flags,
            ..Default::default()
        },
    );
    assert_eq!(st, Status::Stored);
    cas
}

pub(super) fn get(s: &mut Shard, key: &str) -> Option<(Vec<u8>, u32, u64)> {
    let (st, v, f, cas) = run(
        s,
        Request {
            op: Op::Get as u8,
            key: key.as_bytes(),
            ..Default::default()
        },
    );
    match st {
        Status::Hit => Some((v, f, cas)),
        Status::Miss => None,
        st => panic!("get answered {st:?}"),
    }
}
