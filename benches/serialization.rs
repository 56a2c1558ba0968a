//! Serializer round trips (`dumps` then `loads`), no server: every pipeline, for a small struct
//! and for a `dynamodict::cache::CachedResponse` with 1 KiB, 64 KiB and 1 MiB bodies, beside the floor of
//! copying the body once.
//!
//! ```text
//! cargo bench --bench serialization [--features compression]
//! DYNAMODICT_BENCH_QUICK=1 cargo bench --bench serialization   # small and 1 KiB only
//! ```

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dynamodict::Serializer;
use serde::Serialize;
use serde::de::DeserializeOwned;

use common::{CachedResponse, quick, response, small};

const KEY: &str = "https://api.example.com/v1/items?page=3";

/// Every pipeline the crate provides, by bench name.
fn pipelines() -> Vec<(&'static str, Serializer)> {
    #[cfg_attr(not(feature = "compression"), allow(unused_mut))]
    let mut v = vec![
        ("bincode", Serializer::bincode()),
        ("json", Serializer::json()),
        ("document", Serializer::document()),
        (
            "bincode+hmac",
            Serializer::bincode().signed("bench secret key", "salt"),
        ),
        (
            "document+hmac",
            Serializer::document().signed("bench secret key", "salt"),
        ),
    ];
    #[cfg(feature = "compression")]
    v.push((
        "bincode+zstd3",
        Serializer::bincode()
            .compressed(3)
            .expect("byte formats accept a zstd stage"),
    ));
    v
}

/// Checks the round trip once (a wrong bench should fail, not report fast numbers) and returns
/// the stored size.
fn check<V>(s: &Serializer, value: &V) -> usize
where
    V: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let encoded = s.dumps(KEY, value).expect("dumps");
    let size = encoded.stored_size();
    let back: V = s.loads(KEY, encoded).expect("loads");
    assert!(&back == value, "{} does not round-trip", s.id());
    size
}

fn round_trip<V: Serialize + DeserializeOwned>(s: &Serializer, value: &V) -> V {
    let encoded = s.dumps(KEY, black_box(value)).expect("dumps");
    s.loads(KEY, black_box(encoded)).expect("loads")
}

fn bench_small(c: &mut Criterion) {
    let value = small();
    let mut group = c.benchmark_group("roundtrip/small");
    for (name, s) in pipelines() {
        eprintln!("small struct, {name}: {} bytes stored", check(&s, &value));
        group.bench_function(name, |b| b.iter(|| round_trip(&s, &value)));
    }
    group.finish();
}

fn bench_responses(c: &mut Criterion) {
    let sizes: &[(&str, usize)] = if quick() {
        &[("1KiB", 1024)]
    } else {
        &[("1KiB", 1024), ("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)]
    };
    for &(label, len) in sizes {
        let value: CachedResponse = response(len);
        let mut group = c.benchmark_group(format!("roundtrip/response_{label}"));
        group.throughput(Throughput::Bytes(len as u64));
        // The floor: copying the body once.
        group.bench_function(BenchmarkId::from_parameter("copy_body"), |b| {
            b.iter(|| black_box(&value.body).clone())
        });
        for (name, s) in pipelines() {
            eprintln!(
                "response {label}, {name}: {} bytes stored",
                check(&s, &value)
            );
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| round_trip(&s, &value))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion(30);
    targets = bench_small, bench_responses
}
criterion_main!(benches);
