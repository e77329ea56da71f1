//! One guest call (`Shard::batch`) into the default store: the host writes a
//! request batch into guest memory, calls `wmc_batch`, and checks the answer.
//! Batches of 1 get, 1 set and 16 gets (32-byte keys, 100-byte values), so
//! the fixed cost of a call and the per-request cost can be told apart, and
//! 1 get of a 16 KiB value (`get16k_x1`: held, not copied, from ABI v4 on).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
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

criterion_group!(benches, bench);
criterion_main!(benches);
