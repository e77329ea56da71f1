//! The text protocol parser on the commands of the benchmark workloads
//! (docs/performance.md): a get, a 10-key multi-get and a 100-byte set, as
//! the read buffer holds them.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use wasmcached_protocol::text::{parse, Limits, Parsed};

fn key(i: usize) -> String {
    format!("key:{i:028}")
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let get = format!("get {}\r\n", key(7)).into_bytes();
    let mget = format!("get {}\r\n", (0..10).map(key).collect::<Vec<_>>().join(" ")).into_bytes();
    let set = format!("set {} 0 0 100\r\n{}\r\n", key(7), "v".repeat(100)).into_bytes();
    // A pipeline of 20 gets: what one read holds under memaslap's load.
    let pipeline: Vec<u8> = (0..20)
        .flat_map(|i| format!("get {}\r\n", key(i)).into_bytes())
        .collect();

    let mut g = c.benchmark_group("parser");
    for (name, buf) in [("get", &get), ("mget10", &mget), ("set100", &set)] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| match parse(black_box(buf), &limits) {
                Parsed::Cmd { consumed, .. } => consumed,
                other => panic!("{other:?}"),
            })
        });
    }
    g.throughput(Throughput::Elements(20));
    g.bench_function("pipeline20_get", |b| {
        b.iter(|| {
            let mut buf = black_box(&pipeline[..]);
            let mut n = 0;
            while let Parsed::Cmd { consumed, .. } = parse(buf, &limits) {
                buf = &buf[consumed..];
                n += 1;
            }
            assert_eq!(n, 20);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
