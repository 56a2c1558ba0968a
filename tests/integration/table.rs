//! The table layout's promises: writes spread over partitions, a namespace is read without
//! touching others, and incompatible layouts are refused.

use std::collections::HashMap;

use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::local::LocalEngine;
use dynamodict::{DynamoDbDict, Error};

use crate::support::{self, Raw};

fn partition_count(raw: &Raw, table: &str, pk: &str) -> i32 {
    raw.block(
        raw.client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(pk.into()))
            .select(dynamodict::aws_sdk_dynamodb::types::Select::Count)
            .send(),
    )
    .unwrap()
    .count
}

#[test]
fn writes_spread_across_all_shards_of_a_namespace() {
    let d: DynamoDbDict<u32> = crate::support::dict("spread");
    d.insert_many((0..400).map(|i| (format!("key-{i}"), i)))
        .unwrap();
    let raw = Raw::new();
    let counts: Vec<i32> = (0..8)
        .map(|s| partition_count(&raw, support::TABLE, &format!("{}#{s:x}", d.namespace())))
        .collect();
    assert_eq!(counts.iter().sum::<i32>(), 400, "{counts:?}");
    // No shard holds more than a fair share plus slack: no hot partition.
    assert!(counts.iter().all(|&c| (20..=80).contains(&c)), "{counts:?}");
    // Nothing is stored under the bare namespace.
    assert_eq!(partition_count(&raw, support::TABLE, d.namespace()), 0);
}

#[test]
fn listing_a_namespace_ignores_a_large_neighbour() {
    let ns = support::unique("neighbour");
    let small: DynamoDbDict<u32> = support::in_namespace(format!("{ns}-small"));
    let big: DynamoDbDict<u32> = support::in_namespace(format!("{ns}-big"));
    big.insert_many((0..1500).map(|i| (format!("k{i}"), i)))
        .unwrap();
    small
        .insert_many((0..3).map(|i| (format!("k{i}"), i)))
        .unwrap();
    let mut keys: Vec<String> = small.keys().map(Result::unwrap).collect();
    keys.sort();
    assert_eq!(keys, ["k0", "k1", "k2"]);
    assert_eq!(small.len().unwrap(), 3);
    small.clear().unwrap();
    assert_eq!(big.len().unwrap(), 1500);
}

#[test]
fn layout_is_recorded_and_a_mismatch_is_refused() {
    let table = support::unique("layout");
    let d: DynamoDbDict<u8> = DynamoDbDict::builder(&table)
        .shards(4)
        .local()
        .build()
        .unwrap();
    d.set("a", 1).unwrap();
    // Same shard count: fine, and the data is visible.
    let again: DynamoDbDict<u8> = DynamoDbDict::builder(&table)
        .shards(4)
        .local()
        .build()
        .unwrap();
    assert_eq!(again.get("a").unwrap(), Some(1));
    // Another shard count would look for keys in the wrong partitions: refused.
    match DynamoDbDict::<u8>::builder(&table).local().build() {
        Err(Error::LayoutMismatch { table: t, detail }) => {
            assert_eq!(t, table);
            assert!(detail.contains('4') && detail.contains('8'), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Another TTL attribute than the table's DynamoDB TTL: refused too (dynalite has no TTL).
    if support::skip_on(&[LocalEngine::Dynalite], "no TTL to disagree with") {
        return;
    }
    assert!(matches!(
        DynamoDbDict::<u8>::builder(&table)
            .shards(4)
            .ttl_attribute("expires_at")
            .local()
            .build(),
        Err(Error::LayoutMismatch { .. })
    ));
}

#[test]
fn a_table_with_a_foreign_key_schema_is_refused() {
    let table = support::unique("foreign");
    let raw = Raw::new();
    raw.create_table(&table, &[("key", true)]);
    match DynamoDbDict::<u8>::builder(&table).local().build() {
        Err(Error::LayoutMismatch { detail, .. }) => {
            assert!(detail.contains("key (HASH)"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // The foreign table was not modified: still no metadata item.
    let items = raw
        .block(raw.client.scan().table_name(&table).send())
        .unwrap();
    assert_eq!(items.count, 0);
}

#[test]
fn creating_the_table_enables_ttl_and_writes_metadata() {
    if support::skip_on(&[LocalEngine::Dynalite], "dynalite has no UpdateTimeToLive") {
        return;
    }
    let table = support::unique("created");
    let _d: DynamoDbDict<u8> = DynamoDbDict::builder(&table).local().build().unwrap();
    let raw = Raw::new();
    let ttl = raw
        .block(raw.client.describe_time_to_live().table_name(&table).send())
        .unwrap();
    let desc = ttl.time_to_live_description.unwrap();
    assert_eq!(desc.attribute_name.as_deref(), Some("ttl"));
    let meta = raw
        .block(
            raw.client
                .get_item()
                .table_name(&table)
                .set_key(Some(HashMap::from([
                    ("pk".to_owned(), AttributeValue::S("#meta".into())),
                    ("sk".to_owned(), AttributeValue::S("layout".into())),
                ])))
                .send(),
        )
        .unwrap()
        .item
        .unwrap();
    assert_eq!(meta["shards"].as_n().unwrap(), "8");
    // Concurrent opens of a new table all succeed.
    let table = support::unique("concurrent-open");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| DynamoDbDict::<u8>::builder(&table).local().build().unwrap());
        }
    });
}
