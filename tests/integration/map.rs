//! Every map operation, against DynamoDB Local.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use dynamodict::local::LocalEngine;
use dynamodict::{DynamoDbDict, Error, Serializer};
use serde::{Deserialize, Serialize};

use crate::support::facade::{Facade, Map, each_facade};
use crate::support::{self, Raw, builder, dict};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
    tags: Vec<String>,
}

fn user(name: &str, age: u32) -> User {
    User {
        name: name.into(),
        age,
        tags: vec!["a".into(), name.into()],
    }
}

#[test]
fn get_insert_set_contains_remove() {
    each_facade("crud", |d: &Map<User>| {
        assert_eq!(d.get("alice").unwrap(), None);
        assert!(!d.contains_key("alice").unwrap());
        assert_eq!(d.insert("alice", user("alice", 30)).unwrap(), None);
        assert_eq!(
            d.insert("alice", user("alice", 31)).unwrap(),
            Some(user("alice", 30))
        );
        assert_eq!(d.get("alice").unwrap(), Some(user("alice", 31)));
        assert!(d.contains_key("alice").unwrap());
        d.set("bob", user("bob", 5)).unwrap();
        assert_eq!(d.get("bob").unwrap(), Some(user("bob", 5)));
        assert_eq!(d.len().unwrap(), 2);
        assert!(d.remove("alice").unwrap());
        assert!(!d.remove("alice").unwrap(), "second remove finds nothing");
        assert_eq!(d.get("alice").unwrap(), None);
        assert_eq!(d.len().unwrap(), 1);
        // Unicode and odd keys round-trip as they are.
        for key in ["ключ", "a b/c?d#e", "🦀", " "] {
            d.set(key, user(key, 1)).unwrap();
            assert_eq!(d.get(key).unwrap().unwrap().name, key);
        }
    });
}

#[test]
fn pop_is_one_atomic_delete() {
    each_facade("pop", |d: &Map<String>| {
        d.set("k", "v".to_owned()).unwrap();
        assert_eq!(d.pop("k").unwrap(), Some("v".to_owned()));
        assert_eq!(d.pop("k").unwrap(), None);
        assert_eq!(d.get("k").unwrap(), None);

        // Eight threads pop the same key: exactly one gets the value.
        d.set("race", "prize".to_owned()).unwrap();
        let barrier = std::sync::Barrier::new(8);
        let winners: Vec<Option<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let d = d.clone();
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        d.pop("race").unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(winners.iter().flatten().count(), 1, "{winners:?}");
    });
}

#[test]
fn popitem_drains_the_namespace() {
    each_facade("popitem", |d: &Map<u32>| {
        assert_eq!(d.popitem().unwrap(), None);
        let entries: BTreeMap<String, u32> = (0..20).map(|i| (format!("k{i}"), i)).collect();
        d.insert_many(entries.clone()).unwrap();
        let mut drained = BTreeMap::new();
        while let Some((k, v)) = d.popitem().unwrap() {
            assert!(
                drained.insert(k, v).is_none(),
                "popitem returned a key twice"
            );
        }
        assert_eq!(drained, entries);
        assert!(d.is_empty().unwrap());
    });
}

#[test]
fn setdefault_is_atomic_and_returns_the_stored_value() {
    each_facade("setdefault", |d: &Map<String>| {
        assert_eq!(d.setdefault("k", "first".into()).unwrap(), "first");
        assert_eq!(d.setdefault("k", "second".into()).unwrap(), "first");
        assert_eq!(d.get("k").unwrap().as_deref(), Some("first"));

        // Eight threads race on one missing key: all get back the same stored value.
        for round in 0..5 {
            let key = format!("race-{round}");
            let barrier = std::sync::Barrier::new(8);
            let got: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|t| {
                        let (d, key, barrier) = (d.clone(), key.clone(), &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            d.setdefault(&key, format!("thread-{t}")).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let stored = d.get(&key).unwrap().unwrap();
            assert!(
                got.iter().all(|g| *g == stored),
                "round {round}: {got:?} vs {stored}"
            );
        }
    });
}

#[test]
fn insert_many_get_many_and_bulk_delete_span_many_batches() {
    each_facade("batch", |d: &Map<u64>| {
        // 260 entries: 11 write batches; a duplicate key where the last value wins.
        let mut entries: Vec<(String, u64)> = (0..260).map(|i| (format!("key-{i}"), i)).collect();
        entries.push(("key-0".into(), 999));
        d.insert_many(entries).unwrap();
        assert_eq!(d.len().unwrap(), 260);

        // 250 keys asked (3 read batches), in order, with a duplicate and missing keys.
        let mut asked: Vec<String> = (0..248).map(|i| format!("key-{i}")).collect();
        asked.push("missing".into());
        asked.push("key-5".into());
        let got = d.get_many(&asked).unwrap();
        assert_eq!(got.len(), 250);
        assert_eq!(got[0], Some(999));
        for (i, value) in got.iter().enumerate().take(248).skip(1) {
            assert_eq!(*value, Some(i as u64));
        }
        assert_eq!(got[248], None);
        assert_eq!(got[249], Some(5));

        // update is the same operation.
        d.update([("key-1", 1001u64)]).unwrap();
        assert_eq!(d.get("key-1").unwrap(), Some(1001));

        // Delete 200 existing keys and 30 that never existed.
        let doomed: Vec<String> = (0..200)
            .map(|i| format!("key-{i}"))
            .chain((0..30).map(|i| format!("ghost-{i}")))
            .collect();
        d.bulk_delete(&doomed).unwrap();
        assert_eq!(d.len().unwrap(), 60);
        assert_eq!(d.get("key-199").unwrap(), None);
        assert_eq!(d.get("key-200").unwrap(), Some(200));
        d.bulk_delete(Vec::<String>::new()).unwrap();
        assert!(d.get_many::<&str>([]).unwrap().is_empty());
    });
}

#[test]
fn keys_values_items_page_through_more_than_one_page() {
    // One shard, so one partition holds every item: 2,400 values of 1 KiB are > 2 MB, which
    // DynamoDB must return in several 1 MB pages.
    for facade in Facade::ALL {
        let table = support::unique("paging");
        let d: Map<String> = Map::build(DynamoDbDict::builder(&table).shards(1).local(), facade);
        let value = "x".repeat(1024);
        let n = 2400;
        d.insert_many((0..n).map(|i| (format!("k{i:05}"), value.clone())))
            .unwrap();

        let keys: Vec<String> = d.keys().into_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(keys.len(), n);
        assert_eq!(
            keys.iter().collect::<HashSet<_>>().len(),
            n,
            "no duplicates"
        );
        let values: Vec<String> = d.values().into_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(values.len(), n);
        assert!(values.iter().all(|v| *v == value));
        let items: BTreeMap<String, String> =
            d.items().into_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(items.len(), n);
        assert!(items.contains_key("k00000") && items.contains_key(&format!("k{:05}", n - 1)));
        assert_eq!(d.len().unwrap(), n);

        // Page count really exceeded one: ask the server directly.
        let raw = Raw::new();
        let first = raw
            .block(
                raw.client
                    .query()
                    .table_name(&table)
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(
                        ":p",
                        dynamodict::aws_sdk_dynamodb::types::AttributeValue::S("default#0".into()),
                    )
                    .send(),
            )
            .unwrap();
        assert!(
            first.last_evaluated_key.is_some(),
            "the data set must span several pages"
        );
    }
}

#[test]
fn iterators_over_the_sharded_namespace() {
    each_facade("iter", |d: &Map<u32>| {
        assert_eq!(d.keys().len(), 0);
        assert!(d.is_empty().unwrap());
        d.insert_many((0..100).map(|i| (format!("k{i}"), i)))
            .unwrap();
        let mut keys: Vec<String> = d.keys().into_iter().map(Result::unwrap).collect();
        keys.sort();
        let mut expected: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected);
        let sum: u32 = d.values().into_iter().map(Result::unwrap).sum();
        assert_eq!(sum, (0..100u32).sum::<u32>());
        assert!(!d.is_empty().unwrap());
    });
}

#[test]
fn clear_only_touches_its_namespace() {
    let ns = support::unique("clear");
    let a: DynamoDbDict<u32> = support::in_namespace(format!("{ns}-a"));
    let b: DynamoDbDict<u32> = support::in_namespace(format!("{ns}-b"));
    a.insert_many((0..60).map(|i| (format!("k{i}"), i)))
        .unwrap();
    b.insert_many((0..40).map(|i| (format!("k{i}"), i + 1000)))
        .unwrap();
    // Same key, two namespaces, two values.
    assert_eq!(a.get("k1").unwrap(), Some(1));
    assert_eq!(b.get("k1").unwrap(), Some(1001));
    a.clear().unwrap();
    assert_eq!(a.len().unwrap(), 0);
    assert_eq!(b.len().unwrap(), 40);
    assert_eq!(b.get("k39").unwrap(), Some(1039));
}

#[test]
fn expired_items_read_as_absent_at_once() {
    let d: DynamoDbDict<String> = dict("ttl");
    d.insert_with_ttl("short", "gone soon".into(), Duration::from_secs(1))
        .unwrap();
    d.insert_with_ttl("long", "stays".into(), Duration::from_secs(3600))
        .unwrap();
    d.set("forever", "no ttl".into()).unwrap();
    assert_eq!(d.get("short").unwrap().as_deref(), Some("gone soon"));
    assert_eq!(d.len().unwrap(), 3);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(d.get("short").unwrap(), None);
    assert!(!d.contains_key("short").unwrap());
    assert_eq!(d.len().unwrap(), 2);
    let keys: HashSet<String> = d.keys().map(Result::unwrap).collect();
    assert_eq!(
        keys,
        HashSet::from(["long".to_owned(), "forever".to_owned()])
    );
    assert_eq!(
        d.get_many(["short", "long"]).unwrap(),
        vec![None, Some("stays".into())]
    );
    // An expired key counts as missing for setdefault, insert and pop.
    d.insert_with_ttl("again", "old".into(), Duration::from_secs(1))
        .unwrap();
    d.insert_with_ttl("popme", "old".into(), Duration::from_secs(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(d.setdefault("short", "fresh".into()).unwrap(), "fresh");
    assert_eq!(d.insert("again", "new".into()).unwrap(), None);
    assert_eq!(d.pop("popme").unwrap(), None);
    assert!(!d.remove("popme").unwrap());
}

#[test]
fn default_ttl_applies_and_ttl_can_be_disabled() {
    let d: DynamoDbDict<u8> = builder("default-ttl")
        .default_ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    d.set("a", 1).unwrap();
    d.insert_many([("b", 2u8)]).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(d.len().unwrap(), 0);

    let table = support::unique("no-ttl");
    let plain: DynamoDbDict<u8> = DynamoDbDict::builder(&table)
        .ttl(false)
        .local()
        .build()
        .unwrap();
    plain.set("a", 1).unwrap();
    assert!(matches!(
        plain.insert_with_ttl("a", 1, Duration::from_secs(1)),
        Err(Error::Config(_))
    ));
    assert_eq!(plain.setdefault("a", 2).unwrap(), 1);
    assert_eq!(plain.len().unwrap(), 1);
}

#[test]
fn every_serializer_round_trips_through_the_table() {
    #[cfg_attr(not(feature = "compression"), allow(unused_mut))]
    let mut pipelines = vec![
        Serializer::bincode(),
        Serializer::json(),
        Serializer::document(),
        Serializer::bincode().signed("secret", "salt"),
        Serializer::document().signed("secret", "salt"),
    ];
    #[cfg(feature = "compression")]
    pipelines.push(
        Serializer::json()
            .compressed(3)
            .unwrap()
            .signed("secret", "salt"),
    );
    for s in pipelines {
        let id = s.id().to_owned();
        let d: DynamoDbDict<User> = builder("ser").serializer(s).build().unwrap();
        d.insert_many((0..30).map(|i| (format!("u{i}"), user("x", i))))
            .unwrap();
        assert_eq!(d.get("u7").unwrap(), Some(user("x", 7)), "{id}");
        assert_eq!(
            d.setdefault("u7", user("y", 0)).unwrap(),
            user("x", 7),
            "{id}"
        );
        assert_eq!(d.values().count(), 30, "{id}");
        assert_eq!(d.pop("u7").unwrap(), Some(user("x", 7)), "{id}");
    }
}

#[test]
fn documents_are_native_maps_in_the_table() {
    let d: DynamoDbDict<User> = builder("doc")
        .serializer(Serializer::document())
        .build()
        .unwrap();
    d.set("alice", user("alice", 30)).unwrap();
    let raw = Raw::new();
    let item = raw
        .block(
            raw.client
                .get_item()
                .table_name(support::TABLE)
                .set_key(Some(std::collections::HashMap::from([
                    (
                        "pk".to_owned(),
                        dynamodict::aws_sdk_dynamodb::types::AttributeValue::S(format!(
                            "{}#{:x}",
                            d.namespace(),
                            dynamodict::layout::shard_of("alice", 8)
                        )),
                    ),
                    (
                        "sk".to_owned(),
                        dynamodict::aws_sdk_dynamodb::types::AttributeValue::S("alice".into()),
                    ),
                ])))
                .send(),
        )
        .unwrap()
        .item
        .expect("stored where the layout says");
    let v = item["v"].as_m().expect("a native map");
    assert_eq!(v["name"].as_s().unwrap(), "alice");
    assert_eq!(v["age"].as_n().unwrap(), "30");
    assert_eq!(item["f"].as_s().unwrap(), "document");
}

#[test]
fn clones_and_namespace_views_share_one_connection() {
    let d: DynamoDbDict<u32> = dict("views");
    let clone = d.clone();
    clone.set("a", 1).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(1));
    let other: DynamoDbDict<String> = d
        .with_namespace(&format!("{}-other", d.namespace()), Serializer::json())
        .unwrap();
    other.set("a", "text".into()).unwrap();
    assert_eq!(other.get("a").unwrap().as_deref(), Some("text"));
    assert_eq!(d.get("a").unwrap(), Some(1));
    assert!(matches!(
        d.with_namespace::<u8>("bad#ns", Serializer::bincode()),
        Err(Error::InvalidNamespace { .. })
    ));
    assert!(format!("{d:?}").contains(d.namespace()));
}

#[test]
fn existing_sdk_config_and_client_can_be_reused() {
    if support::skip_on(
        &[LocalEngine::Moto],
        "moto keeps tables per region, and this test reads through a client of another region",
    ) {
        return;
    }
    let endpoint = support::endpoint();
    let raw = Raw::at(&endpoint);
    let d: DynamoDbDict<u8> = DynamoDbDict::builder(support::TABLE)
        .namespace(support::unique("client"))
        .client(&raw.client)
        .build()
        .unwrap();
    d.set("x", 1).unwrap();
    let sdk_config = raw.block(
        dynamodict::aws_config::defaults(dynamodict::aws_config::BehaviorVersion::latest())
            .region(dynamodict::aws_config::Region::new("eu-west-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(dynamodict::aws_sdk_dynamodb::config::Credentials::new(
                "a", "b", None, None, "t",
            ))
            .load(),
    );
    let e: DynamoDbDict<u8> = DynamoDbDict::builder(support::TABLE)
        .namespace(d.namespace())
        .sdk_config(&sdk_config)
        .build()
        .unwrap();
    assert_eq!(e.get("x").unwrap(), Some(1));
    // Plain endpoint_url: loopback gets dummy credentials and a region by itself.
    let f: DynamoDbDict<u8> = DynamoDbDict::builder(support::TABLE)
        .namespace(d.namespace())
        .endpoint_url(&endpoint)
        .build()
        .unwrap();
    assert_eq!(f.get("x").unwrap(), Some(1));
}

#[test]
fn streams_and_iterators_keep_ending_after_their_end() {
    let d: DynamoDbDict<u32> = dict("fused");
    d.insert_many((0..5).map(|i| (format!("k{i}"), i))).unwrap();
    let mut keys = d.keys();
    assert_eq!(keys.by_ref().count(), 5);
    assert!(keys.next().is_none() && keys.next().is_none());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = d.to_async();
    rt.block_on(async {
        let mut values = a.values();
        let mut n = 0;
        while let Some(v) = values.next().await {
            v.unwrap();
            n += 1;
        }
        assert_eq!(n, 5);
        assert!(values.next().await.is_none() && values.next().await.is_none());
        let mut items = a.items();
        while items.next().await.is_some() {}
        assert!(items.next().await.is_none());
        let mut keys = a.keys();
        while keys.next().await.is_some() {}
        assert!(keys.next().await.is_none());
    });
}

#[test]
fn setdefault_with_computes_the_default_only_when_the_key_is_unset() {
    each_facade("setdefault-with", |d: &Map<String>| {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let make = |text: &str| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            text.to_owned()
        };
        assert_eq!(d.setdefault_with("k", || make("first")).unwrap(), "first");
        assert_eq!(d.setdefault_with("k", || make("second")).unwrap(), "first");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(d.get("k").unwrap().as_deref(), Some("first"));
    });
}
