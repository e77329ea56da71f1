//! One guest call (`Shard::batch`) into the default store: the host writes a
//! request batch into guest memory, calls `wmc_batch`, and checks the answer.
//! Batches of 1 get, 1 set and 16 gets (32-byte keys, 100-byte values), so
//! the fixed cost of a call and the per-request cost can be told apart, and
//! 1 get of a 16 KiB value (`get16k_x1`: held, not copied, from ABI v4 on).
//!
//! `guest_abi` (issue 22): the same 1-get, 1-set and 16-get batches, after
//! storing the same 1024 keys, into the SDK's starter store twice: built for
//! the core byte ABI (`starter/*`, guest-sdk/examples/starter) and as a
//! component of the WIT world (`wit/*`, examples/rust-wit), the same store
//! logic, so the difference is the cost of the ABI. It needs both .wasm
//! files and stops (exit 1) with how to build them when one is missing:
//!
//! ```sh
//! cargo build --profile plugin --target wasm32-unknown-unknown -p sdk-starter
//! examples/rust-wit/build.sh
//! ```
//!
//! (`WASMCACHED_STARTER_WASM` and `WASMCACHED_RUST_WIT_WASM` name other
//! files.)

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmcached::plugin::{Plugin, Shard, ShardConfig, DEFAULT_PLUGIN};
use wasmcached_abi::{self as abi, Op, Request};

fn batch(reqs: &[Request<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    abi::begin_batch(&mut buf);
    for r in reqs {
        r.encode(&mut buf);
    }
    abi::set_batch_count(&mut buf, reqs.len() as u32);
    buf
}

fn bench(c: &mut Criterion) {
    let plugin = Arc::new(Plugin::new(DEFAULT_PLUGIN, "default-store").expect("default plugin"));
    let config = ShardConfig {
        shard_id: 0,
        shard_count: 1,
        memory_budget: 64 << 20,
        item_size_max: 1 << 20,
        use_cas: true,
        evict_to_free: true,
        plugin_config: String::new(),
        hints: Default::default(),
        deadline: Duration::from_secs(5),
    };
    let mut shard = Shard::new(plugin, config, Arc::default()).expect("shard");
    let keys: Vec<Vec<u8>> = (0..1024)
        .map(|i| format!("key:{i:028}").into_bytes())
        .collect();
    let value = vec![b'v'; 100];
    let mut store = |keys: &[Vec<u8>], value: &[u8]| {
        for k in keys {
            let set = batch(&[Request {
                op: Op::Set as u8,
                key: k,
                value,
                ..Default::default()
            }]);
            shard.batch(&set, 1).expect("set");
        }
    };
    store(&keys, &value);
    let get = |k: &[u8]| -> Vec<u8> {
        batch(&[Request {
            op: Op::Get as u8,
            key: k,
            ..Default::default()
        }])
    };
    let gets1: Vec<Vec<u8>> = keys.iter().map(|k| get(k)).collect();
    // 4 MiB of 16 KiB values: more than the L2 cache, as under load.
    let large = vec![b'L'; 16 * 1024];
    let large_keys: Vec<Vec<u8>> = (0..256)
        .map(|i| format!("large:{i:026}").into_bytes())
        .collect();
    store(&large_keys, &large);
    let gets_large: Vec<Vec<u8>> = large_keys.iter().map(|k| get(k)).collect();
    let sets1: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            batch(&[Request {
                op: Op::Set as u8,
                key: k,
                value: &value,
                ..Default::default()
            }])
        })
        .collect();
    let gets16: Vec<Vec<u8>> = keys
        .chunks(16)
        .map(|ks| {
            let reqs: Vec<Request<'_>> = ks
                .iter()
                .map(|k| Request {
                    op: Op::Get as u8,
                    key: k,
                    ..Default::default()
                })
                .collect();
            batch(&reqs)
        })
        .collect();

    let mut g = c.benchmark_group("guest_call");
    for (name, bufs, per) in [
        ("get_x1", &gets1, 1u32),
        ("set_x1", &sets1, 1),
        ("get_x16", &gets16, 16),
        ("get16k_x1", &gets_large, 1),
    ] {
        g.throughput(Throughput::Elements(u64::from(per)));
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    i = (i + 1) % bufs.len();
                    i
                },
                |i| shard.batch(&bufs[i], per).expect("no fault").count(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// A shard of `plugin` with the settings of [`bench`]'s.
fn shard(plugin: Plugin) -> Shard {
    let config = ShardConfig {
        shard_id: 0,
        shard_count: 1,
        memory_budget: 64 << 20,
        item_size_max: 1 << 20,
        use_cas: true,
        evict_to_free: true,
        plugin_config: String::new(),
        hints: Default::default(),
        deadline: Duration::from_secs(5),
    };
    Shard::new(Arc::new(plugin), config, Arc::default()).expect("shard")
}

/// The .wasm a `guest_abi` run loads: `var` if set, else `default` under
/// the workspace root (the target dir: `CARGO_TARGET_DIR` if set).
fn wasm_path(var: &str, default: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join(default)
}

/// The bytes of the plugin at `path`; a missing file ends the run (exit 1)
/// with how to build it.
fn wasm(path: &Path, build: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!(
            "guest_abi: cannot read {}: {e}\n\
             build it first (from the workspace root): {build}",
            path.display()
        );
        std::process::exit(1)
    })
}

/// The starter store, core ABI against WIT world: the same batches as
/// `guest_call`'s get_x1, set_x1 and get_x16, through `Shard::batch`.
fn bench_abi(c: &mut Criterion) {
    let starter = wasm(
        &wasm_path(
            "WASMCACHED_STARTER_WASM",
            "wasm32-unknown-unknown/plugin/sdk_starter.wasm",
        ),
        "cargo build --profile plugin --target wasm32-unknown-unknown -p sdk-starter",
    );
    let wit = wasm(
        &wasm_path("WASMCACHED_RUST_WIT_WASM", "examples/rust-wit.wasm"),
        "examples/rust-wit/build.sh",
    );
    let keys: Vec<Vec<u8>> = (0..1024)
        .map(|i| format!("key:{i:028}").into_bytes())
        .collect();
    let value = vec![b'v'; 100];
    let gets1: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            batch(&[Request {
                op: Op::Get as u8,
                key: k,
                ..Default::default()
            }])
        })
        .collect();
    let sets1: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            batch(&[Request {
                op: Op::Set as u8,
                key: k,
                value: &value,
                ..Default::default()
            }])
        })
        .collect();
    let gets16: Vec<Vec<u8>> = keys
        .chunks(16)
        .map(|ks| {
            let reqs: Vec<Request<'_>> = ks
                .iter()
                .map(|k| Request {
                    op: Op::Get as u8,
                    key: k,
                    ..Default::default()
                })
                .collect();
            batch(&reqs)
        })
        .collect();

    let mut g = c.benchmark_group("guest_abi");
    for (abi_name, bytes, plugin_name) in [
        ("starter", &starter, "sdk-starter"),
        ("wit", &wit, "rust-wit"),
    ] {
        let plugin = Plugin::new(bytes, plugin_name).expect("plugin");
        let mut shard = shard(plugin);
        // The 1024 keys the gets find (and the sets replace).
        for set in &sets1 {
            let answers = shard.batch(set, 1).expect("set");
            let stored = answers.records().next().map(|r| r.status);
            assert_eq!(stored, Some(abi::Status::Stored as u8), "{abi_name}");
        }
        // Both answer the same: 16 hits of the 100-byte value.
        let answers = shard.batch(&gets16[0], 16).expect("get");
        assert!(
            answers
                .records()
                .all(|r| r.status == abi::Status::Hit as u8 && r.value == &value[..]),
            "{abi_name}: every get hits"
        );
        for (name, bufs, per) in [
            ("get_x1", &gets1, 1u32),
            ("set_x1", &sets1, 1),
            ("get_x16", &gets16, 16),
        ] {
            g.throughput(Throughput::Elements(u64::from(per)));
            let mut i = 0;
            g.bench_function(format!("{abi_name}/{name}"), |b| {
                b.iter_batched(
                    || {
                        i = (i + 1) % bufs.len();
                        i
                    },
                    |i| shard.batch(&bufs[i], per).expect("no fault").count(),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

// guest_abi first: a missing .wasm stops the run before anything is measured.
criterion_group!(benches, bench_abi, bench);
criterion_main!(benches);
