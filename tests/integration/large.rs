//! Values larger than one DynamoDB item: split across items, never half-visible, cleaned up.

use std::collections::HashMap;
use std::time::Duration;

use dynamodict::aws_sdk_dynamodb::types::{AttributeValue, Select};
use dynamodict::{DynamoDbDict, Error, Serializer};

use crate::support::{Raw, builder};

/// Timeouts short enough for a 4 s grace period (which must be at least 4 × the operation
/// timeout).
const SHORT: dynamodict::Timeouts = dynamodict::Timeouts {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(1),
    operation: Duration::from_secs(1),
};

/// A short grace period, so that tests can wait for the sweep.
const GRACE: Duration = Duration::from_secs(4);

/// A builder whose maps reclaim unreferenced generations after [`GRACE`] (tests using it skip
/// the servers that are too slow for [`SHORT`], see `support::skip_if_large_items_are_slow`).
fn quick<V>(label: &str) -> dynamodict::DictBuilder<V> {
    builder(label).sweep_grace(GRACE).timeouts(SHORT)
}

/// [`chunk_items`] once the grace period has passed and a sweep ran: exactly what the live
/// large values use.
fn after_sweep<V>(d: &DynamoDbDict<V>) -> i32 {
    // Generation ids have whole seconds: past the grace period means two more seconds.
    std::thread::sleep(GRACE + Duration::from_millis(2100));
    d.sweep().expect("sweep");
    chunk_items(d)
}

fn blob(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Items in the namespace's chunk and generation-record partitions (what large values leave in
/// the table): a live large value of `n` chunks accounts for `n + 1`.
fn chunk_items<V>(d: &DynamoDbDict<V>) -> i32 {
    let raw = Raw::new();
    let mut total = 0;
    for partition in (0..8).flat_map(|s| [format!("{s:x}#c"), format!("{s:x}#g")]) {
        let mut start = None;
        loop {
            let page = raw
                .block(
                    raw.client
                        .query()
                        .table_name(d.table())
                        .key_condition_expression("pk = :p")
                        .expression_attribute_values(
                            ":p",
                            AttributeValue::S(format!("{}#{partition}", d.namespace())),
                        )
                        .select(Select::Count)
                        .set_exclusive_start_key(start)
                        .send(),
                )
                .unwrap();
            total += page.count;
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
    }
    total
}

#[test]
fn three_megabyte_values_round_trip_through_every_operation() {
    if crate::support::skip_if_large_items_are_slow() {
        return;
    }
    let d: DynamoDbDict<serde_bytes::ByteBuf> = quick("large").build().unwrap();
    let a = serde_bytes::ByteBuf::from(blob(1, 3 * 1024 * 1024));
    let b = serde_bytes::ByteBuf::from(blob(2, 1024 * 1024 + 17));
    assert_eq!(d.insert("big", a.clone()).unwrap(), None);
    assert_eq!(d.get("big").unwrap().as_ref(), Some(&a));
    assert!(chunk_items(&d) >= 9);
    // Replacing returns the old large value; its chunks are reclaimed after the grace period.
    assert_eq!(d.insert("big", b.clone()).unwrap().as_ref(), Some(&a));
    assert_eq!(after_sweep(&d), 4);
    assert_eq!(d.setdefault("big", a.clone()).unwrap(), b);
    assert_eq!(d.setdefault("other", a.clone()).unwrap(), a);
    assert_eq!(d.len().unwrap(), 2, "chunks are not entries");
    let got = d.get_many(["big", "other", "none"]).unwrap();
    assert_eq!(got, vec![Some(b.clone()), Some(a.clone()), None]);
    let mut values: Vec<usize> = d.values().map(|v| v.unwrap().len()).collect();
    values.sort();
    assert_eq!(values, vec![b.len(), a.len()]);
    assert_eq!(d.pop("other").unwrap().as_ref(), Some(&a));
    assert!(d.remove("big").unwrap());
    assert_eq!(after_sweep(&d), 0, "nothing left behind");
    assert_eq!(d.get("big").unwrap(), None);
}

#[test]
fn batch_writes_and_deletes_clean_up_chunks() {
    if crate::support::skip_if_large_items_are_slow() {
        return;
    }
    let d: DynamoDbDict<serde_bytes::ByteBuf> = quick("large-batch").build().unwrap();
    let big = |s| serde_bytes::ByteBuf::from(blob(s, 900 * 1024));
    d.insert_many((0..4u8).map(|i| (format!("k{i}"), big(i))))
        .unwrap();
    assert_eq!(d.get("k3").unwrap(), Some(big(3)));
    assert_eq!(chunk_items(&d), 16);
    // Overwrite two with small values in a batch: their chunks go.
    d.insert_many([
        ("k0", serde_bytes::ByteBuf::from(vec![0u8])),
        ("k1", serde_bytes::ByteBuf::from(vec![1u8])),
    ])
    .unwrap();
    assert_eq!(after_sweep(&d), 8);
    d.bulk_delete(["k2", "missing"]).unwrap();
    assert_eq!(after_sweep(&d), 4);
    d.clear().unwrap();
    assert_eq!(after_sweep(&d), 0);
    assert_eq!(d.len().unwrap(), 0);
}

#[test]
fn large_documents_and_signed_values() {
    if crate::support::skip_if_large_items_are_slow() {
        return;
    }
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        title: String,
        lines: Vec<String>,
    }
    let doc = Doc {
        title: "big".into(),
        lines: (0..20_000)
            .map(|i| format!("line number {i} of a long document"))
            .collect(),
    };
    for serializer in [
        Serializer::document(),
        Serializer::document().signed("k", "s"),
        Serializer::json().signed("k", "s"),
    ] {
        let d: DynamoDbDict<Doc> = quick("large-doc").serializer(serializer).build().unwrap();
        d.set("doc", doc.clone()).unwrap();
        assert_eq!(d.get("doc").unwrap().as_ref(), Some(&doc));
        assert_eq!(d.pop("doc").unwrap().as_ref(), Some(&doc));
        assert_eq!(after_sweep(&d), 0);
    }
}

#[test]
fn a_reader_never_sees_a_half_written_value() {
    if crate::support::skip_if_large_items_are_slow() {
        return;
    }
    let d: DynamoDbDict<serde_bytes::ByteBuf> = quick("large-race").build().unwrap();
    let a = serde_bytes::ByteBuf::from(blob(7, 1200 * 1024));
    let b = serde_bytes::ByteBuf::from(blob(9, 800 * 1024));
    d.set("k", a.clone()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = d.get("k").unwrap().expect("always present");
                assert!(v == a || v == b, "a torn value of {} bytes", v.len());
                reads += 1;
            }
            reads
        });
        for i in 0..12 {
            d.set("k", if i % 2 == 0 { b.clone() } else { a.clone() })
                .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    assert_eq!(
        after_sweep(&d),
        5,
        "only the last value's chunks (and record) remain"
    );
}

#[test]
fn limits_are_clear_errors() {
    let d: DynamoDbDict<serde_bytes::ByteBuf> = builder("large-limit")
        .max_value_size(2 * 1024 * 1024)
        .build()
        .unwrap();
    let too_big = serde_bytes::ByteBuf::from(vec![0u8; 3 * 1024 * 1024]);
    match d.set("k", too_big) {
        Err(Error::ItemTooLarge {
            key,
            size,
            max,
            max_value_size,
        }) => {
            assert_eq!(key, "k");
            assert!(size > max && max == 2 * 1024 * 1024);
            assert_eq!(max_value_size, Some(max));
        }
        other => panic!("{other:?}"),
    }
    let off: DynamoDbDict<serde_bytes::ByteBuf> =
        builder("large-off").large_values(false).build().unwrap();
    let r = off.set("k", serde_bytes::ByteBuf::from(vec![0u8; 500 * 1024]));
    assert!(
        matches!(
            r,
            Err(Error::ItemTooLarge {
                max: 409600,
                max_value_size: None,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(matches!(
        builder::<u8>("x").max_value_size(1 << 30).build(),
        Err(Error::Config(_))
    ));
    assert_eq!(chunk_items(&d) + chunk_items(&off), 0);
}

#[test]
fn expiring_large_values_expire_with_their_chunks_marked() {
    let d: DynamoDbDict<serde_bytes::ByteBuf> = builder("large-ttl").build().unwrap();
    // Long enough for the write and the first read on a slow server (moto).
    let ttl = if crate::support::engine() == dynamodict::local::LocalEngine::Moto {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(1)
    };
    d.insert_with_ttl("k", serde_bytes::ByteBuf::from(vec![1u8; 600 * 1024]), ttl)
        .unwrap();
    assert!(d.get("k").unwrap().is_some());
    std::thread::sleep(ttl + Duration::from_millis(1100));
    assert_eq!(d.get("k").unwrap(), None);
}

/// Batch writes read old items (to find chunks) only in namespaces that have held a large value.
#[test]
fn batch_writes_skip_the_manifest_read_until_a_large_value_exists() {
    use crate::support::proxy::{FaultProxy, local_upstream};
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let d: DynamoDbDict<serde_bytes::ByteBuf> = DynamoDbDict::builder(crate::support::TABLE)
        .namespace(crate::support::unique("marker"))
        .endpoint_url(proxy.endpoint())
        .sweep_grace(GRACE)
        .timeouts(SHORT)
        .build()
        .unwrap();
    let small = |i: u8| (format!("k{i}"), serde_bytes::ByteBuf::from(vec![i]));
    let gets = || proxy.operation_count("BatchGetItem");
    let before = gets();
    d.insert_many((0..50).map(small)).unwrap();
    d.bulk_delete(["k1", "k2"]).unwrap();
    assert_eq!(gets(), before, "no manifest read without large values");
    d.set("big", serde_bytes::ByteBuf::from(vec![9u8; 500 * 1024]))
        .unwrap();
    let before = gets();
    d.insert_many([
        small(1),
        ("big".to_owned(), serde_bytes::ByteBuf::from(vec![1u8])),
    ])
    .unwrap();
    assert!(
        gets() > before,
        "manifests are read once a large value exists"
    );
    assert_eq!(
        after_sweep(&d),
        0,
        "the replaced large value's chunks are gone"
    );
    // A fresh map on the same namespace finds the marker written by the first one.
    d.set("big2", serde_bytes::ByteBuf::from(vec![7u8; 500 * 1024]))
        .unwrap();
    let again: DynamoDbDict<serde_bytes::ByteBuf> = DynamoDbDict::builder(crate::support::TABLE)
        .namespace(d.namespace())
        .endpoint_url(proxy.endpoint())
        .build()
        .unwrap();
    again.bulk_delete(["big2"]).unwrap();
    assert_eq!(after_sweep(&d), 0);
}

/// What each operation on a large value (1 MiB: 3 chunks) costs in requests, read from the
/// proxy's request log. The protocol's price is visible here: one record `PutItem` per large
/// write, and a refused conditional write before replacing or popping a large value (the value
/// is read while it is current). The generations they retire are young, so they are left to
/// the sweep, which reclaims them once the grace period has passed.
#[test]
fn large_value_operations_cost_a_known_number_of_requests() {
    if crate::support::skip_if_large_items_are_slow() {
        return;
    }
    use std::collections::BTreeMap;

    use crate::support::proxy::{FaultProxy, local_upstream};
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let d: DynamoDbDict<serde_bytes::ByteBuf> = DynamoDbDict::builder(crate::support::TABLE)
        .namespace(crate::support::unique("cost"))
        .endpoint_url(proxy.endpoint())
        .sweep_grace(GRACE)
        .timeouts(SHORT)
        .auto_sweep(false)
        .build()
        .unwrap();
    let value = |seed| serde_bytes::ByteBuf::from(blob(seed, 1024 * 1024));
    d.set("warm-up", value(0)).unwrap(); // writes the namespace's large-value marker
    let mut measured = Vec::new();
    let mut cost = |label: &str, op: &mut dyn FnMut()| -> BTreeMap<String, u64> {
        let before = proxy.operations();
        op();
        let after = proxy.operations();
        let spent: BTreeMap<String, u64> = after
            .into_iter()
            .map(|(name, n)| (name.clone(), n - before.get(&name).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        measured.push(format!("{label}: {spent:?}"));
        spent
    };
    let expect = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    // A refused conditional write: DynamoDB returns the item that refused it; dynalite does not
    // (it ignores ReturnValuesOnConditionCheckFailure), so the map reads it with a GetItem.
    let refused = |mut expected: BTreeMap<String, u64>| {
        if crate::support::engine() == dynamodict::local::LocalEngine::Dynalite {
            *expected.entry("GetItem".to_owned()).or_insert(0) += 1;
        }
        expected
    };
    assert_eq!(
        cost("insert, new key", &mut || {
            assert_eq!(d.insert("a", value(1)).unwrap(), None)
        }),
        expect(&[("BatchWriteItem", 1), ("PutItem", 2)])
    );
    assert_eq!(
        cost("insert over a large value", &mut || {
            assert_eq!(d.insert("a", value(2)).unwrap(), Some(value(1)))
        }),
        refused(expect(&[
            ("BatchGetItem", 1),
            ("BatchWriteItem", 1),
            ("PutItem", 3)
        ]))
    );
    assert_eq!(
        cost("set over a large value", &mut || d
            .set("a", value(3))
            .unwrap()),
        expect(&[("BatchWriteItem", 1), ("PutItem", 2)])
    );
    assert_eq!(
        cost("get", &mut || assert_eq!(
            d.get("a").unwrap(),
            Some(value(3))
        )),
        expect(&[("BatchGetItem", 1), ("GetItem", 1)])
    );
    assert_eq!(
        cost("setdefault on a live large value", &mut || {
            assert_eq!(d.setdefault("a", value(4)).unwrap(), value(3))
        }),
        expect(&[("BatchGetItem", 1), ("GetItem", 1)])
    );
    assert_eq!(
        cost("pop", &mut || assert_eq!(
            d.pop("a").unwrap(),
            Some(value(3))
        )),
        refused(expect(&[("BatchGetItem", 1), ("DeleteItem", 2)]))
    );
    assert_eq!(
        cost("small set, namespace with large values", &mut || {
            d.set("s", serde_bytes::ByteBuf::from(vec![1u8])).unwrap()
        }),
        expect(&[("PutItem", 1)])
    );
    eprintln!("{}", measured.join("\n"));
    d.clear().unwrap();
    assert!(
        chunk_items(&d) > 0,
        "young generations wait for the grace period"
    );
    std::thread::sleep(GRACE + Duration::from_millis(2100));
    let report = d.sweep().unwrap();
    // warm-up, 1 (replaced), 2 (replaced), 3 (popped): 4 generations of 3 chunks.
    assert_eq!((report.generations, report.items), (4, 16), "{report:?}");
    assert_eq!(chunk_items(&d), 0);
}

/// Generation records that no map wrote (foreign or damaged data in the record partitions) do
/// not stop the sweep: it reclaims them like any other unreferenced record.
#[test]
fn the_sweep_survives_foreign_generation_records() {
    if crate::support::skip_if_large_items_are_slow() {
        return;
    }
    let d: DynamoDbDict<serde_bytes::ByteBuf> = quick("large-foreign").build().unwrap();
    d.set("live", serde_bytes::ByteBuf::from(blob(3, 500 * 1024)))
        .unwrap();
    let raw = Raw::new();
    let record = |shard: u16, sk: String, key: String| {
        HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(format!("{}#{shard:x}#g", d.namespace())),
            ),
            ("sk".to_owned(), AttributeValue::S(sk)),
            ("k".to_owned(), AttributeValue::S(key)),
            ("n".to_owned(), AttributeValue::N("3".into())),
            ("z".to_owned(), AttributeValue::N("99".into())),
        ])
    };
    for item in [
        // A key longer than any map key.
        record(0, "0-long-key".into(), "k".repeat(2000)),
        // A generation id too long to be part of a chunk's sort key.
        record(1, format!("0{}", "g".repeat(1020)), "x".into()),
        // A record stored in another shard than its key's.
        record(
            (dynamodict::layout::shard_of("live", 8) + 1) % 8,
            "0-elsewhere".into(),
            "live".into(),
        ),
    ] {
        raw.put(item);
    }
    // 500 KiB: two chunks and a record.
    assert_eq!(
        chunk_items(&d),
        3 + 3,
        "the live value, and three foreign records"
    );
    std::thread::sleep(GRACE + Duration::from_millis(2100));
    let report = d
        .sweep()
        .expect("the sweep is not stopped by foreign records");
    assert_eq!(report.generations, 3, "{report:?}");
    assert_eq!(chunk_items(&d), 3, "only the live value remains");
    assert_eq!(
        d.get("live").unwrap(),
        Some(serde_bytes::ByteBuf::from(blob(3, 500 * 1024)))
    );
}
