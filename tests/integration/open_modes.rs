//! Opening a table: the requests each [`OpenMode`] sends (counted by the fault proxy), what
//! each may change, and TTL management kept apart from TTL use.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use dynamodict::aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use dynamodict::local::LocalEngine;
use dynamodict::{DictBuilder, DynamoDbDict, Error, OpenMode};

use crate::support::proxy::{Fault, FaultProxy, local_upstream};
use crate::support::{Raw, unique};

/// The requests the proxy saw while `f` ran, by operation.
fn requests_during<T>(proxy: &FaultProxy, f: impl FnOnce() -> T) -> (T, BTreeMap<String, u64>) {
    let before = proxy.operations();
    let out = f();
    let mut sent = proxy.operations();
    for (operation, count) in before {
        if let Some(after) = sent.get_mut(&operation) {
            *after -= count;
        }
    }
    sent.retain(|_, count| *count > 0);
    (out, sent)
}

fn ops(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
    list.iter().map(|(op, n)| (op.to_string(), *n)).collect()
}

fn through<V>(proxy: &FaultProxy, table: &str, mode: OpenMode) -> DictBuilder<V> {
    DynamoDbDict::builder(table)
        .endpoint_url(proxy.endpoint())
        .open_mode(mode)
}

/// A `pk`/`sk` table made without this crate: no TTL, no layout item.
fn create_bare_table(raw: &Raw, table: &str) {
    raw.create_table(table, &[("pk", true), ("sk", false)]);
}

fn ttl_status(raw: &Raw, table: &str) -> Option<TimeToLiveStatus> {
    raw.block(raw.client.describe_time_to_live().table_name(table).send())
        .unwrap()
        .time_to_live_description
        .and_then(|d| d.time_to_live_status)
}

fn table_exists(raw: &Raw, table: &str) -> bool {
    raw.block(raw.client.list_tables().send())
        .unwrap()
        .table_names()
        .iter()
        .any(|t| t == table)
}

fn meta_key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S("#meta".into())),
        ("sk".to_owned(), AttributeValue::S("layout".into())),
    ])
}

#[test]
fn each_open_mode_sends_the_requests_the_docs_state() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let table = unique("open-counts");

    // A new table: created, TTL enabled without asking first, layout item written.
    let (map, sent) = requests_during(&proxy, || {
        through::<u32>(&proxy, &table, OpenMode::Create)
            .build()
            .unwrap()
    });
    let described = sent.get("DescribeTable").copied().unwrap_or(0);
    assert!(described >= 1, "{sent:?}");
    assert_eq!(
        sent,
        ops(&[
            ("CreateTable", 1),
            ("DescribeTable", described),
            ("GetItem", 1),
            ("PutItem", 1),
            ("UpdateTimeToLive", 1),
        ])
    );
    map.set("k", 7).unwrap();

    // A table opened before: one GetItem in Create and Verify mode, nothing in Trust mode. On
    // a server without TTL (dynalite) nothing is recorded, so Create and Verify look it up
    // again at each open (and Create tries to enable it).
    let no_ttl = crate::support::engine() == LocalEngine::Dynalite;
    for mode in [OpenMode::Create, OpenMode::Verify] {
        let (map, sent) = requests_during(&proxy, || {
            through::<u32>(&proxy, &table, mode).build().unwrap()
        });
        let expected = match (no_ttl, mode) {
            (false, _) => ops(&[("GetItem", 1)]),
            (true, OpenMode::Create) => ops(&[
                ("DescribeTimeToLive", 1),
                ("GetItem", 1),
                ("UpdateTimeToLive", 1),
            ]),
            (true, _) => ops(&[("DescribeTimeToLive", 1), ("GetItem", 1)]),
        };
        assert_eq!(sent, expected, "{mode:?}");
        assert_eq!(map.get("k").unwrap(), Some(7));
    }
    let (map, sent) = requests_during(&proxy, || {
        through::<u32>(&proxy, &table, OpenMode::Trust)
            .build()
            .unwrap()
    });
    assert_eq!(sent, ops(&[]));
    // The first operation checks the layout first (one GetItem), the next ones do not, and
    // neither do clones.
    let (value, sent) = requests_during(&proxy, || map.get("k").unwrap());
    assert_eq!((value, sent), (Some(7), ops(&[("GetItem", 2)])));
    let clone = map.clone();
    let (value, sent) = requests_during(&proxy, || clone.get("k").unwrap());
    assert_eq!((value, sent), (Some(7), ops(&[("GetItem", 1)])));
    let (keys, sent) = requests_during(&proxy, || {
        map.keys().collect::<Result<Vec<_>, _>>().unwrap()
    });
    assert_eq!(keys, ["k"]);
    assert_eq!(sent, ops(&[("Query", 8)]));

    // A map without expiry needs no TTL check either.
    let (_, sent) = requests_during(&proxy, || {
        through::<u32>(&proxy, &table, OpenMode::Create)
            .ttl(false)
            .build()
            .unwrap()
    });
    assert_eq!(sent, ops(&[("GetItem", 1)]));

    // A layout item written before the TTL was recorded (an older version of the crate): the
    // first open looks the TTL up and records it, later ones do not.
    if crate::support::skip_on(&[LocalEngine::Dynalite], "no TTL to record") {
        return;
    }
    let raw = Raw::at(&proxy.endpoint());
    raw.block(
        raw.client
            .update_item()
            .table_name(&table)
            .set_key(Some(meta_key()))
            .update_expression("REMOVE ttl_attribute")
            .send(),
    )
    .unwrap();
    let (_, sent) = requests_during(&proxy, || {
        through::<u32>(&proxy, &table, OpenMode::Create)
            .build()
            .unwrap()
    });
    assert_eq!(
        sent,
        ops(&[("DescribeTimeToLive", 1), ("GetItem", 1), ("UpdateItem", 1)])
    );
    let (_, sent) = requests_during(&proxy, || {
        through::<u32>(&proxy, &table, OpenMode::Verify)
            .build()
            .unwrap()
    });
    assert_eq!(sent, ops(&[("GetItem", 1)]));
}

#[test]
fn concurrent_first_operations_of_a_trusting_map_check_the_layout_once() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let table = unique("trust-race");
    through::<u32>(&proxy, &table, OpenMode::Create)
        .build()
        .unwrap()
        .set("k", 1)
        .unwrap();
    let map = through::<u32>(&proxy, &table, OpenMode::Trust)
        .build()
        .unwrap();
    let (_, sent) = requests_during(&proxy, || {
        std::thread::scope(|s| {
            for _ in 0..8 {
                let map = map.clone();
                s.spawn(move || assert_eq!(map.get("k").unwrap(), Some(1)));
            }
        })
    });
    assert_eq!(sent, ops(&[("GetItem", 9)]));
}

#[test]
fn trust_mode_proves_the_table_at_the_first_operation() {
    let raw = Raw::new();
    // A missing table: nothing is sent at build, the first operation says so, nothing is created.
    let missing = unique("trust-missing");
    let map: DynamoDbDict<u32> = DynamoDbDict::builder(&missing)
        .local()
        .open_mode(OpenMode::Trust)
        .build()
        .unwrap();
    assert!(matches!(map.get("k"), Err(Error::TableNotFound { ref table }) if *table == missing));
    assert!(matches!(map.set("k", 1), Err(Error::TableNotFound { .. })));
    match map.keys().next() {
        Some(Err(Error::TableNotFound { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert!(!table_exists(&raw, &missing));

    // A table laid out with other settings: refused at the first operation, before it writes.
    let table = unique("trust-layout");
    let four: DynamoDbDict<u32> = DynamoDbDict::builder(&table)
        .local()
        .shards(4)
        .build()
        .unwrap();
    let eight: DynamoDbDict<u32> = DynamoDbDict::builder(&table)
        .local()
        .open_mode(OpenMode::Trust)
        .build()
        .unwrap();
    assert!(matches!(
        eight.set("k", 1),
        Err(Error::LayoutMismatch { .. })
    ));
    assert!(matches!(eight.get("k"), Err(Error::LayoutMismatch { .. })));
    assert_eq!(four.len().unwrap(), 0, "the refused write landed");

    // A table with another key schema: the first operation says how it differs.
    let foreign = unique("trust-foreign");
    raw.create_table(&foreign, &[("id", true)]);
    for mode in [OpenMode::Trust, OpenMode::Verify, OpenMode::Create] {
        let opened = DynamoDbDict::<u32>::builder(&foreign)
            .local()
            .open_mode(mode)
            .build()
            .and_then(|map| map.get("k"));
        match opened {
            Err(Error::LayoutMismatch { detail, .. }) => {
                assert!(detail.contains("id (HASH)"), "{mode:?}: {detail}")
            }
            other => panic!("{mode:?}: {other:?}"),
        }
    }
}

#[test]
fn verify_mode_changes_no_setting_and_still_hides_expired_values() {
    let raw = Raw::new();
    let missing = unique("verify-missing");
    assert!(matches!(
        DynamoDbDict::<u32>::builder(&missing)
            .local()
            .open_mode(OpenMode::Verify)
            .build(),
        Err(Error::TableNotFound { .. })
    ));
    assert!(!table_exists(&raw, &missing));

    let table = unique("verify-bare");
    create_bare_table(&raw, &table);
    let map: DynamoDbDict<u32> = DynamoDbDict::builder(&table)
        .local()
        .open_mode(OpenMode::Verify)
        .build()
        .unwrap();
    assert_ne!(ttl_status(&raw, &table), Some(TimeToLiveStatus::Enabled));
    map.insert_with_ttl("gone", 1, Duration::ZERO).unwrap();
    map.set("kept", 2).unwrap();
    assert_eq!(map.get("gone").unwrap(), None);
    assert!(!map.contains_key("gone").unwrap());
    assert_eq!(map.keys().collect::<Result<Vec<_>, _>>().unwrap(), ["kept"]);
    assert_eq!(map.len().unwrap(), 1);
    // The expired item is still stored (nothing deletes it), only hidden.
    assert!(raw.get_in(&table, map.namespace(), "gone").is_some());
}

#[test]
fn a_role_that_may_not_change_ttl_opens_in_verify_and_trust_mode() {
    let proxy = FaultProxy::start(local_upstream()).expect("proxy");
    let raw = Raw::at(&proxy.endpoint());
    let table = unique("no-ttl-role");
    create_bare_table(&raw, &table);
    proxy.set_fault(Fault::Deny {
        operation: "UpdateTimeToLive".into(),
    });

    // Create mode wants to enable TTL: refused, with what to do.
    match through::<u32>(&proxy, &table, OpenMode::Create).build() {
        Err(Error::AccessDenied { message }) => {
            assert!(message.contains("UpdateTimeToLive"), "{message}");
            assert!(message.contains("manage_ttl(false)"), "{message}");
            assert!(message.contains("OpenMode::Verify"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let builders = [
        through::<u32>(&proxy, &table, OpenMode::Create).manage_ttl(false),
        through::<u32>(&proxy, &table, OpenMode::Verify),
        through::<u32>(&proxy, &table, OpenMode::Trust),
    ];
    for (i, builder) in builders.into_iter().enumerate() {
        let (map, sent) = requests_during(&proxy, || builder.build().unwrap());
        assert!(!sent.contains_key("UpdateTimeToLive"), "{i}: {sent:?}");
        let key = format!("expired-{i}");
        map.insert_with_ttl(&key, 1, Duration::ZERO).unwrap();
        map.insert_with_ttl("live", 2, Duration::from_secs(3600))
            .unwrap();
        assert_eq!(map.get(&key).unwrap(), None, "{i}");
        assert_eq!(map.get("live").unwrap(), Some(2), "{i}");
        assert_eq!(map.len().unwrap(), 1, "{i}");
    }
    assert_ne!(ttl_status(&raw, &table), Some(TimeToLiveStatus::Enabled));
}
