//! Bad input gets a clear, typed error, checked before any request, and loses nothing.

use std::time::{Duration, Instant};

use dynamodict::aws_sdk_dynamodb::primitives::Blob;
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::{DynamoDbDict, Error, Serializer, Timeouts};

use crate::support::{self, Raw, builder, dict};

#[test]
fn bad_keys_are_refused_by_every_method() {
    let d: DynamoDbDict<u8> = dict("badkeys");
    let long = "k".repeat(1025);
    for key in ["", long.as_str()] {
        let check = |r: Result<(), Error>| match r {
            Err(Error::EmptyKey) => assert!(key.is_empty()),
            Err(Error::KeyTooLong {
                len: 1025,
                max: 1024,
            }) => assert_eq!(key.len(), 1025),
            other => panic!("{other:?}"),
        };
        check(d.get(key).map(|_| ()));
        check(d.contains_key(key).map(|_| ()));
        check(d.insert(key, 1).map(|_| ()));
        check(d.set(key, 1));
        check(d.remove(key).map(|_| ()));
        check(d.pop(key).map(|_| ()));
        check(d.setdefault(key, 1).map(|_| ()));
        check(d.insert_many([("ok", 1), (key, 2)]));
        check(d.get_many(["ok", key]).map(|_| ()));
        check(d.bulk_delete(["ok", key]));
    }
    // A batch with one bad key writes nothing at all.
    assert_eq!(d.len().unwrap(), 0);
    // The longest allowed key works.
    let max = "k".repeat(1024);
    d.set(&max, 1).unwrap();
    assert_eq!(d.get(&max).unwrap(), Some(1));
}

#[test]
fn bad_names_are_refused_before_connecting() {
    let start = Instant::now();
    let r = DynamoDbDict::<u8>::builder("no")
        .endpoint_url("http://127.0.0.1:9")
        .build();
    assert!(matches!(r, Err(Error::InvalidTableName { .. })), "{r:?}");
    let r = DynamoDbDict::<u8>::builder("fine-table")
        .namespace("a#b")
        .endpoint_url("http://127.0.0.1:9")
        .build();
    assert!(matches!(r, Err(Error::InvalidNamespace { .. })), "{r:?}");
    let r = DynamoDbDict::<u8>::builder("fine-table")
        .namespace("")
        .endpoint_url("http://127.0.0.1:9")
        .build();
    assert!(matches!(r, Err(Error::InvalidNamespace { .. })), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn oversized_values_fail_and_are_never_skipped() {
    // Over the configured maximum (16 MiB by default), and over 400 KB with large values off.
    let default: DynamoDbDict<serde_bytes::ByteBuf> = dict("big");
    let small: DynamoDbDict<serde_bytes::ByteBuf> =
        builder("big-off").large_values(false).build().unwrap();
    for (d, size, limit) in [
        (&default, 17 * 1024 * 1024, Some(16 * 1024 * 1024)),
        (&small, 500 * 1024, None),
    ] {
        let big = serde_bytes::ByteBuf::from(vec![7u8; size]);
        d.set("k", serde_bytes::ByteBuf::from(vec![1, 2, 3]))
            .unwrap();
        match d.insert("k", big.clone()) {
            Err(Error::ItemTooLarge {
                key,
                size,
                max,
                max_value_size,
            }) => {
                assert_eq!(key, "k");
                assert!(size > max);
                assert_eq!(max_value_size, limit);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            d.set("k", big.clone()),
            Err(Error::ItemTooLarge { .. })
        ));
        assert!(matches!(
            d.setdefault("new", big.clone()),
            Err(Error::ItemTooLarge { .. })
        ));
        let batch = [("a", serde_bytes::ByteBuf::from(vec![1u8])), ("b", big)];
        assert!(matches!(
            d.insert_many(batch),
            Err(Error::ItemTooLarge { .. })
        ));
        // Nothing was lost or half-written.
        assert_eq!(
            d.get("k").unwrap().map(|b| b.into_vec()),
            Some(vec![1, 2, 3])
        );
        assert_eq!(d.get("a").unwrap(), None);
        assert_eq!(d.len().unwrap(), 1);
    }
}

#[test]
fn wrong_type_and_other_serializers_are_errors_naming_the_key() {
    let ns = support::unique("types");
    let strings: DynamoDbDict<String> = support::in_namespace(&ns);
    strings.set("s", "text".into()).unwrap();
    let numbers: DynamoDbDict<Vec<String>> = support::in_namespace(&ns);
    match numbers.get("s") {
        Err(Error::Deserialize { key, .. }) => assert_eq!(key, "s"),
        other => panic!("{other:?}"),
    }
    let json: DynamoDbDict<String> = DynamoDbDict::builder(support::TABLE)
        .namespace(&ns)
        .serializer(Serializer::json())
        .local()
        .build()
        .unwrap();
    match json.get("s") {
        Err(Error::SerializerMismatch {
            key,
            expected,
            found,
        }) => {
            assert_eq!(
                (key.as_str(), expected.as_str(), found.as_str()),
                ("s", "json", "bincode2")
            );
        }
        other => panic!("{other:?}"),
    }
    // pop with the wrong serializer leaves the value in place.
    assert!(matches!(
        json.pop("s"),
        Err(Error::SerializerMismatch { .. })
    ));
    assert_eq!(strings.get("s").unwrap().as_deref(), Some("text"));
    // setdefault reports the stored value's problem instead of overwriting it.
    assert!(matches!(
        json.setdefault("s", "other".into()),
        Err(Error::SerializerMismatch { .. })
    ));
    assert_eq!(strings.get("s").unwrap().as_deref(), Some("text"));
    // Iteration reports the bad item and goes on.
    json.set("j", "json value".into()).unwrap();
    let results: Vec<_> = json.items().collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    // remove never decodes, so it can clean up.
    assert!(json.remove("s").unwrap());
}

#[test]
fn corrupt_and_tampered_items_are_rejected() {
    let d: DynamoDbDict<String> = builder("tamper")
        .serializer(Serializer::bincode().signed("secret", "salt"))
        .build()
        .unwrap();
    d.set("k", "genuine".into()).unwrap();
    let raw = Raw::new();
    let item = raw.get(d.namespace(), "k").unwrap();
    let mut bytes = item["v"].as_b().unwrap().as_ref().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let mut tampered = item.clone();
    tampered.insert("v".into(), AttributeValue::B(Blob::new(bytes)));
    raw.put(tampered);
    assert!(matches!(d.get("k"), Err(Error::BadSignature { ref key }) if key == "k"));
    // A value attribute of the wrong type, and a missing one.
    let mut wrong = item.clone();
    wrong.insert("v".into(), AttributeValue::S("not bytes".into()));
    raw.put(wrong);
    assert!(matches!(d.get("k"), Err(Error::Deserialize { .. })));
    let mut missing = item;
    missing.remove("v");
    raw.put(missing);
    assert!(matches!(d.get("k"), Err(Error::Deserialize { .. })));
}

#[test]
fn missing_table_with_creation_off() {
    let table = support::unique("absent");
    let r = DynamoDbDict::<u8>::builder(&table)
        .create_table(false)
        .local()
        .build();
    match r {
        Err(Error::TableNotFound { table: t }) => assert_eq!(t, table),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreachable_endpoint_is_a_connection_error_not_a_hang() {
    // Bind then drop: nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let r = DynamoDbDict::<u8>::builder("some-table")
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .max_attempts(1)
        .timeouts(Timeouts {
            connect: Duration::from_secs(1),
            attempt: Duration::from_secs(2),
            operation: Duration::from_secs(3),
        })
        .build();
    assert!(matches!(r, Err(Error::Connection { .. })), "{r:?}");
    assert!(r.unwrap_err().is_transient());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_silent_server_times_out() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let start = Instant::now();
    let r = DynamoDbDict::<u8>::builder("some-table")
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .max_attempts(1)
        .timeouts(Timeouts {
            connect: Duration::from_secs(1),
            attempt: Duration::from_millis(500),
            operation: Duration::from_secs(1),
        })
        .build();
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    hold.join().unwrap();
}

#[test]
fn missing_credentials_are_reported_as_such() {
    // An SDK config with a region and an endpoint but no credentials provider at all.
    let endpoint = support::endpoint();
    let sdk_config = dynamodict::aws_config::SdkConfig::builder()
        .region(dynamodict::aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .behavior_version(dynamodict::aws_config::BehaviorVersion::latest())
        .build();
    let r = DynamoDbDict::<u8>::builder(support::TABLE)
        .sdk_config(&sdk_config)
        .max_attempts(1)
        .build();
    match r {
        Err(Error::Credentials { message }) => assert!(!message.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_region_is_a_config_error() {
    let sdk_config = dynamodict::aws_config::SdkConfig::builder()
        .behavior_version(dynamodict::aws_config::BehaviorVersion::latest())
        .build();
    let r = DynamoDbDict::<u8>::builder(support::TABLE)
        .sdk_config(&sdk_config)
        .build();
    assert!(
        matches!(r, Err(Error::Config(ref m)) if m.contains("region")),
        "{r:?}"
    );
}

#[test]
fn debug_and_display_never_print_secrets() {
    let secret = "wJalrXUtnFEMI-very-secret";
    let b = DynamoDbDict::<u8>::builder(support::TABLE)
        .credentials("AKIAEXAMPLEKEY", secret, Some("session-token-xyz".into()))
        .serializer(Serializer::bincode().signed("signing-secret-123", "salt-456"));
    let text = format!("{b:?}");
    for s in [
        secret,
        "AKIAEXAMPLEKEY",
        "session-token-xyz",
        "signing-secret-123",
        "salt-456",
    ] {
        assert!(!text.contains(s), "{s} leaked in {text}");
    }
    let d = b.endpoint_url(support::endpoint()).build().unwrap();
    let text = format!("{d:?} {:?}", d.serializer());
    assert!(
        !text.contains(secret) && !text.contains("signing-secret-123"),
        "{text}"
    );
    let err = d.get("").unwrap_err();
    assert!(!format!("{err} {err:?}").contains(secret));
}

#[test]
fn get_and_listing_agree_on_odd_expiry_values() {
    let d: DynamoDbDict<u8> = dict("odd-ttl");
    d.set("plain", 1).unwrap();
    let raw = Raw::new();
    let odd = [
        ("negative", AttributeValue::N("-5".into())),
        ("fraction", AttributeValue::N("1.5".into())),
        ("text", AttributeValue::S("x".into())),
        ("far-future", AttributeValue::N("99999999999".into())),
        ("null", AttributeValue::Null(true)),
    ];
    let template = raw.get(d.namespace(), "plain").unwrap();
    for (name, ttl) in odd {
        let mut item = template.clone();
        item.insert(
            "pk".into(),
            AttributeValue::S(format!(
                "{}#{:x}",
                d.namespace(),
                dynamodict::layout::shard_of(name, 8)
            )),
        );
        item.insert("sk".into(), AttributeValue::S(name.into()));
        item.insert("ttl".into(), ttl);
        raw.put(item);
    }
    let mut listed: Vec<String> = d.keys().map(Result::unwrap).collect();
    listed.sort();
    let mut readable: Vec<String> = [
        "plain",
        "negative",
        "fraction",
        "text",
        "far-future",
        "null",
    ]
    .into_iter()
    .filter(|k| d.get(k).unwrap().is_some())
    .map(str::to_owned)
    .collect();
    readable.sort();
    assert_eq!(listed, readable);
    assert_eq!(listed, ["far-future", "plain"]);
    assert_eq!(d.len().unwrap(), 2);
}
