//! The shard router: key -> shard -> owning worker, for 32-byte keys.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use wasmcached::router::Router;

fn bench(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..1024)
        .map(|i| format!("key:{i:028}").into_bytes())
        .collect();
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(keys.len() as u64));
    for (shards, workers) in [(1, 1), (4, 4), (6, 4)] {
        let r = Router::new(shards, workers);
        g.bench_function(format!("shard_and_owner_{shards}x{workers}"), |b| {
            b.iter(|| {
                let mut acc = 0usize;
                for k in &keys {
                    let s = r.shard_of(black_box(k));
                    acc = acc.wrapping_add(r.owner(s));
                }
                acc
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
