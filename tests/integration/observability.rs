//! What a production user sees: the request and capacity counters of `stats()`, and the
//! `tracing` spans and events (nothing printed unless a subscriber is installed).

use std::io::Write;
use std::sync::{Arc, Mutex};

use dynamodict::{AsyncDynamoDbDict, DynamoDbDict, Serializer, Stats};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::proxy::{Fault, FaultProxy, ThrottleCode, local_upstream};
use crate::support::{self, builder, unique};

/// The difference between two snapshots (capacity rounded to thousandths).
fn delta(before: Stats, after: Stats) -> (u64, f64, f64, u64) {
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    (
        after.requests - before.requests,
        round(after.read_capacity_units - before.read_capacity_units),
        round(after.write_capacity_units - before.write_capacity_units),
        after.retries - before.retries,
    )
}

#[test]
fn a_known_sequence_costs_known_requests_and_capacity() {
    if support::skip_on(
        &[
            dynamodict::local::LocalEngine::Moto,
            dynamodict::local::LocalEngine::Dynalite,
        ],
        "only DynamoDB Local reports consumed capacity as DynamoDB does",
    ) {
        return;
    }
    let map: DynamoDbDict<String> = builder("stats").build().unwrap();
    let small = "x".repeat(100);
    let mut last = map.stats();
    let mut step = |what: &str, expected: (u64, f64, f64, u64), op: &dyn Fn()| {
        op();
        let now = map.stats();
        assert_eq!(delta(last, now), expected, "{what}");
        last = now;
    };
    // The first write of a namespace also reads its large-value marker (a consistent GetItem
    // of an absent item: 1 RCU); later writes trust that answer for a minute.
    step("first set", (2, 1.0, 1.0, 0), &|| {
        map.set("a", small.clone()).unwrap()
    });
    step("set", (1, 0.0, 1.0, 0), &|| {
        map.set("b", small.clone()).unwrap()
    });
    step("get", (1, 1.0, 0.0, 0), &|| {
        assert_eq!(map.get("a").unwrap().as_deref(), Some(small.as_str()))
    });
    step("insert", (1, 0.0, 1.0, 0), &|| {
        map.insert("a", "y".into()).unwrap();
    });
    step("remove", (1, 0.0, 1.0, 0), &|| {
        assert!(map.remove("a").unwrap())
    });
    // Eight shards: eight consistent COUNT queries; DynamoDB Local charges the one shard that
    // holds an item (under 4 KB) 1 RCU, the empty ones nothing.
    step("len", (8, 1.0, 0.0, 0), &|| {
        assert_eq!(map.len().unwrap(), 1)
    });
    // 25 items of ~100 bytes in one BatchWriteItem: 1 WCU each.
    let entries: Vec<(String, String)> =
        (0..25).map(|i| (format!("k{i}"), small.clone())).collect();
    step("insert_many", (1, 0.0, 25.0, 0), &|| {
        map.insert_many(entries.clone()).unwrap()
    });

    // A large value is written in chunks, and counted.
    let bytes: DynamoDbDict<Vec<u8>> = map
        .with_namespace(map.namespace(), Serializer::bincode())
        .unwrap();
    let before = bytes.stats();
    bytes.set("big", vec![7u8; 1_000_000]).unwrap();
    let after = bytes.stats();
    assert!(
        after.chunks_written - before.chunks_written >= 3,
        "{after:?}"
    );
    assert!(
        after.bytes_sent - before.bytes_sent > 1_000_000,
        "{after:?}"
    );
    // One WCU per KB written: at least 1,000,000 / 1024 for the chunks.
    assert!(
        after.write_capacity_units - before.write_capacity_units >= 977.0,
        "{after:?}"
    );
    // Clones, conversions and other namespaces share the counters.
    assert_eq!(map.clone().stats(), after);
    assert_eq!(map.to_async().stats(), after);
}

#[test]
fn throttled_attempts_are_counted_as_throttles_and_retries() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let map: DynamoDbDict<u32> = DynamoDbDict::builder(support::TABLE)
        .namespace(unique("throttle-stats"))
        .endpoint_url(proxy.endpoint())
        .max_attempts(4)
        .build()
        .unwrap();
    map.set("warm", 1).unwrap();
    let before = map.stats();
    // Every second request is throttled: the SDK retries each throttled attempt.
    proxy.set_fault(Fault::Throttle {
        share: 0.5,
        code: ThrottleCode::ProvisionedThroughputExceeded,
    });
    for i in 0..6 {
        map.set(&format!("k{i}"), i).unwrap();
    }
    proxy.clear();
    let after = map.stats();
    let throttled = after.throttles - before.throttles;
    assert_eq!(after.requests - before.requests, 6, "{after:?}");
    assert!(throttled >= 3, "{after:?}");
    assert_eq!(after.retries - before.retries, throttled, "{after:?}");
}

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Runs `f` on a current-thread runtime with a subscriber that records every span (when it
/// closes, with its fields) and event of the crate, and returns what it recorded.
pub fn capture<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> String {
    let captured = Captured::default();
    // Only the crate's own spans and events (the SDK logs through tracing too).
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .finish()
        .with(Targets::new().with_target("dynamodict", tracing::Level::TRACE));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(f()));
    captured.text()
}

#[test]
fn each_operation_is_a_span_with_what_its_requests_did() {
    let namespace = unique("traced");
    let log = capture(|| async {
        let map: AsyncDynamoDbDict<u32> = AsyncDynamoDbDict::builder(support::TABLE)
            .namespace(&namespace)
            .local()
            .build_async()
            .await
            .unwrap();
        map.set("alpha", 1).await.unwrap();
        assert_eq!(map.get("alpha").await.unwrap(), Some(1));
        map.bulk_delete(["alpha", "beta"]).await.unwrap();
        let text = map
            .with_namespace::<String>(&namespace, Serializer::json())
            .unwrap();
        text.set("alpha", "not a number".into()).await.unwrap();
        assert!(map.get("alpha").await.is_err());
    });
    let closing = |operation: &str, key: &str| {
        log.lines()
            .filter(|l| l.contains("close") && l.contains(&format!("operation=\"{operation}\"")))
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no closed {operation} span for {key} in:\n{log}"))
            .to_owned()
    };
    let get = closing("get", "key=\"alpha\"");
    for field in [
        "table=dynamodict-tests",
        &format!("namespace={namespace}"),
        "requests=1",
        "retries=0",
        "rcu=",
        "bytes_sent=",
        "bytes_received=",
    ] {
        assert!(get.contains(field), "{field} missing in {get}");
    }
    let batch = closing("bulk_delete", "keys=2");
    assert!(batch.contains("requests="), "{batch}");
    // A failed operation records its error on its span.
    let failed = log
        .lines()
        .filter(|l| l.contains("operation=\"get\"") && l.contains("error="))
        .count();
    assert_eq!(failed, 1, "{log}");
}

#[test]
fn chunking_and_sweeps_are_events() {
    let log = capture(|| async {
        let map: AsyncDynamoDbDict<Vec<u8>> = AsyncDynamoDbDict::builder(support::TABLE)
            .namespace(unique("traced-large"))
            .local()
            .build_async()
            .await
            .unwrap();
        map.set("big", vec![1u8; 900_000]).await.unwrap();
        map.sweep().await.unwrap();
    });
    assert!(
        log.contains("writing a large value in chunks") && log.contains("key=\"big\""),
        "{log}"
    );
    assert!(log.contains("swept unreferenced large values"), "{log}");
}

#[test]
fn nothing_is_printed_without_a_subscriber() {
    // The test binary has no global subscriber: a child process that runs operations prints
    // nothing but the test harness's own lines.
    let out = support::run_child("observability::child_quiet_workload", &[]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("dynamodict"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .all(|l| l.is_empty() || l.starts_with("running") || l.starts_with("test ")),
        "{stdout}"
    );
}

#[test]
#[ignore = "the child process of nothing_is_printed_without_a_subscriber"]
fn child_quiet_workload() {
    let map: DynamoDbDict<Vec<u8>> = builder("quiet").build().unwrap();
    map.set("big", vec![1u8; 900_000]).unwrap();
    map.sweep().unwrap();
    map.get("missing").unwrap();
}

#[test]
fn capacity_accounting_can_be_turned_off_and_requests_are_still_counted() {
    let map: DynamoDbDict<u32> = builder("no-capacity")
        .capacity_accounting(false)
        .build()
        .unwrap();
    let before = map.stats();
    map.set("k", 1).unwrap();
    assert_eq!(map.get("k").unwrap(), Some(1));
    let after = map.stats();
    assert!(after.requests - before.requests >= 2, "{after:?}");
    assert!(after.bytes_received > before.bytes_received, "{after:?}");
    assert_eq!(
        (after.read_capacity_units, after.write_capacity_units),
        (0.0, 0.0),
        "{after:?}"
    );
}
