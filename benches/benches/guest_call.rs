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
//! files.) `GUEST_ABI_PAIRED=41 cargo bench -p wasmcached-benches --bench
//! guest_call` measures the two in alternating bursts instead and prints
//! the ratio (see `paired`): the figure docs/performance.md quotes;
//! `GUEST_ABI_LOAD=get_x16` limits it to one load.

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
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

/// The batches `guest_abi` runs: (name, one batch per key, requests each).
type Loads = Vec<(&'static str, Vec<Vec<u8>>, u32)>;

/// The two shards of the starter store, core ABI and WIT world, each
/// holding the same 1024 keys, and the get_x1, set_x1 and get_x16 batches
/// over those keys.
fn abi_shards() -> (Vec<(&'static str, Shard)>, Loads) {
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
    let mut shards = Vec::new();
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
        shards.push((abi_name, shard));
    }
    let loads = vec![
        ("get_x1", gets1, 1),
        ("set_x1", sets1, 1),
        ("get_x16", gets16, 16),
    ];
    (shards, loads)
}

/// The starter store, core ABI against WIT world: the same batches as
/// `guest_call`'s get_x1, set_x1 and get_x16, through `Shard::batch`.
fn bench_abi(c: &mut Criterion) {
    let (shards, loads) = abi_shards();
    let mut g = c.benchmark_group("guest_abi");
    for (abi_name, mut shard) in shards {
        for (name, bufs, per) in &loads {
            let per = *per;
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

/// `GUEST_ABI_PAIRED=ROUNDS`: the WIT world's guest time as a ratio of the
/// core ABI's, measured in pairs. Each round times a burst of batches on
/// one shard and then the same burst on the other (the order alternating),
/// so that a shared machine's changes of speed fall on both sides of the
/// ratio; prints each load's median ratio and quartiles over the rounds.
/// Criterion's separate runs of the two, minutes apart, varied by ±20 % on
/// such a machine.
fn paired(rounds: usize) {
    let (mut shards, loads) = abi_shards();
    const BURST: usize = 4096;
    println!("guest_abi paired: {rounds} rounds of {BURST} batches per side");
    // `GUEST_ABI_LOAD=get_x16`: that load alone (for callgrind, say).
    let only = std::env::var("GUEST_ABI_LOAD").ok();
    for (name, bufs, per) in &loads {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let time = |shard: &mut Shard| {
            let began = Instant::now();
            for i in 0..BURST {
                let answers = shard.batch(&bufs[i % bufs.len()], *per).expect("no fault");
                std::hint::black_box(answers.count());
            }
            began.elapsed().as_secs_f64() * 1e9 / BURST as f64
        };
        // One unmeasured burst each: caches, branch predictors, lazy inits.
        for (_, shard) in shards.iter_mut() {
            time(shard);
        }
        let (mut ratios, mut starter, mut wit) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (s, w) = if round % 2 == 0 {
                let s = time(&mut shards[0].1);
                (s, time(&mut shards[1].1))
            } else {
                let w = time(&mut shards[1].1);
                (time(&mut shards[0].1), w)
            };
            ratios.push(w / s);
            starter.push(s);
            wit.push(w);
        }
        let q = |v: &mut Vec<f64>, at: f64| {
            v.sort_by(f64::total_cmp);
            v[((v.len() - 1) as f64 * at).round() as usize]
        };
        println!(
            "{name:8} starter {:7.0} ns  wit {:7.0} ns  ratio {:.3} (quartiles {:.3}-{:.3})",
            q(&mut starter, 0.5),
            q(&mut wit, 0.5),
            q(&mut ratios, 0.5),
            q(&mut ratios, 0.25),
            q(&mut ratios, 0.75),
        );
    }
}

// guest_abi first: a missing .wasm stops the run before anything is measured.
criterion_group!(benches, bench_abi, bench);

fn main() {
    if let Some(rounds) = std::env::var_os("GUEST_ABI_PAIRED") {
        let rounds = rounds.to_str().and_then(|r| r.parse().ok()).unwrap_or(41);
        return paired(rounds);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
