//! Secrets never show up in `Debug` or `Display`: every public configuration type, the maps
//! built from them, and errors produced by real failures (refused and silent endpoints,
//! throttling, credentials DynamoDB Local rejects, tampered and foreign values, layout
//! mismatches) are formatted both ways and searched for every secret, raw and hex-encoded.

use std::time::Duration;

use dynamodict::aws_sdk_dynamodb::primitives::Blob;
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::cache::DynamoDbCache;
use dynamodict::local::{DynamoDbLocal, LocalEngine};
use dynamodict::{BatchOptions, DynamoDbDict, Error, Serializer, Signer, Timeouts};

use crate::support::proxy::{Fault, FaultProxy, ThrottleCode, local_upstream};
use crate::support::{self, Raw, unique};

const ACCESS_KEY: &str = "AKIAZQ4SECRETACCESS7";
/// DynamoDB Local only accepts alphanumeric access key ids: this one gets a real rejection.
const REJECTED_ACCESS_KEY: &str = "AKIA-REJECTED-ID-Q9";
const SECRET_KEY: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYzSecretKey9";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr-session-token-Secret-77";
const SIGNING_KEY: &str = "signing-key-Do-Not-Print-31";
const SALT: &str = "salt-Do-Not-Print-57";

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Formats `value` with `{:?}` and `{:#?}` (and `{}` when given) and fails if any secret, or
/// its hex encoding, appears.
fn assert_clean(what: &str, debug: &dyn std::fmt::Debug, display: Option<&dyn std::fmt::Display>) {
    let mut texts = vec![format!("{debug:?}"), format!("{debug:#?}")];
    if let Some(display) = display {
        texts.push(display.to_string());
    }
    for secret in [
        ACCESS_KEY,
        REJECTED_ACCESS_KEY,
        SECRET_KEY,
        SESSION_TOKEN,
        SIGNING_KEY,
        SALT,
    ] {
        for text in &texts {
            for form in [secret.to_owned(), hex(secret), hex(secret).to_uppercase()] {
                assert!(
                    !text.contains(&form),
                    "{what} leaks {secret:?}{}:\n{text}",
                    if form == secret { "" } else { " (hex)" }
                );
            }
        }
    }
}

fn clean_error(what: &str, err: &Error) {
    assert_clean(what, err, Some(err));
    // The source chain too.
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        assert_clean(&format!("{what} (source)"), &s, Some(&s));
        source = s.source();
    }
}

fn signed() -> Serializer {
    Serializer::bincode().signed(SIGNING_KEY, SALT)
}

fn with_credentials<V>(access_key: &str) -> dynamodict::DictBuilder<V> {
    DynamoDbDict::builder(support::TABLE)
        .namespace(unique("secrets"))
        .credentials(access_key, SECRET_KEY, Some(SESSION_TOKEN.to_owned()))
        .serializer(signed())
}

#[test]
fn configuration_types_never_print_secrets() {
    let builder = with_credentials::<String>(ACCESS_KEY)
        .endpoint_url(support::endpoint())
        .timeouts(Timeouts::default())
        .batch_options(BatchOptions::default());
    assert_clean("DictBuilder", &builder, None);
    let d = builder.build().expect("building with static credentials");
    assert_clean("DynamoDbDict", &d, None);
    assert_clean("Serializer", d.serializer(), None);
    assert_clean("Keys", &d.keys(), None);
    assert_clean("Values", &d.values(), None);
    assert_clean("Items", &d.items(), None);
    d.set("k", "value".to_owned()).unwrap();
    assert_clean(
        "an encoded value",
        &d.serializer().dumps("k", "value").unwrap(),
        None,
    );

    for s in [
        Serializer::json().signed(SIGNING_KEY, SALT),
        Serializer::document().signed(SIGNING_KEY, SALT),
        Serializer::bincode()
            .with_stage(Signer::new(SIGNING_KEY, SALT))
            .unwrap(),
    ] {
        assert_clean("Serializer", &s, None);
    }
    assert_clean("Signer", &Signer::new(SIGNING_KEY, SALT), None);
    assert_clean("Timeouts", &Timeouts::default(), None);
    assert_clean("BatchOptions", &BatchOptions::default(), None);
    assert_clean("DynamoDbLocal", DynamoDbLocal::shared().unwrap(), None);

    // Credentials given through an SDK configuration.
    let sdk = dynamodict::aws_config::SdkConfig::builder()
        .region(dynamodict::aws_config::Region::new("us-east-1"))
        .credentials_provider(
            dynamodict::aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                dynamodict::aws_sdk_dynamodb::config::Credentials::new(
                    ACCESS_KEY,
                    SECRET_KEY,
                    Some(SESSION_TOKEN.to_owned()),
                    None,
                    "test",
                ),
            ),
        )
        .behavior_version(dynamodict::aws_config::BehaviorVersion::latest())
        .build();
    let from_sdk = DynamoDbDict::<u8>::builder(support::TABLE).sdk_config(&sdk);
    assert_clean("DictBuilder with an SdkConfig", &from_sdk, None);

    // The HTTP cache's builder and cache, signed, with credentials.
    let cache_builder = DynamoDbCache::builder(support::TABLE)
        .namespace(unique("secrets-cache"))
        .secret_key(SIGNING_KEY)
        .salt(SALT)
        .dict(|b| b.credentials(ACCESS_KEY, SECRET_KEY, Some(SESSION_TOKEN.to_owned())))
        .endpoint_url(support::endpoint());
    assert_clean("CacheBuilder", &cache_builder, None);
    let cache = cache_builder.build().expect("building the cache");
    assert_clean("DynamoDbCache", &cache, None);
}

#[test]
fn errors_from_real_failures_never_print_secrets() {
    let mut errors: Vec<(&str, Error)> = Vec::new();
    let short = Timeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(800),
        operation: Duration::from_millis(1500),
    };

    // Nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = with_credentials::<u8>(ACCESS_KEY)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .timeouts(short)
        .max_attempts(1)
        .build()
        .unwrap_err();
    assert!(matches!(refused, Error::Connection { .. }), "{refused:?}");
    errors.push(("refused", refused));

    // A proxy that stalls, resets and throttles, in front of a map built with credentials.
    let proxy = FaultProxy::start(local_upstream()).unwrap();
    let d = with_credentials::<String>(ACCESS_KEY)
        .endpoint_url(proxy.endpoint())
        .timeouts(short)
        .max_attempts(1)
        .build()
        .unwrap();
    proxy.set_fault(Fault::Stall);
    let timeout = d.get("k").unwrap_err();
    assert!(matches!(timeout, Error::Timeout { .. }), "{timeout:?}");
    errors.push(("timeout", timeout));
    proxy.set_fault(Fault::Reset);
    errors.push(("reset", d.insert("k", "v".into()).unwrap_err()));
    proxy.set_fault(Fault::Throttle {
        share: 1.0,
        code: ThrottleCode::ProvisionedThroughputExceeded,
    });
    let throttled = d.setdefault("k", "v".into()).unwrap_err();
    assert!(
        matches!(throttled, Error::Throttled { .. }),
        "{throttled:?}"
    );
    errors.push(("throttled", throttled));
    proxy.set_fault(Fault::Unprocessed { share: 1.0 });
    let unprocessed = d.insert_many([("a", "1".to_owned())]).unwrap_err();
    errors.push(("unprocessed", unprocessed));
    proxy.clear();

    // DynamoDB Local rejects an access key id that is not alphanumeric (moto and dynalite
    // check no credentials: there the open succeeds and there is no error to look at).
    let rejected = with_credentials::<u8>(REJECTED_ACCESS_KEY)
        .endpoint_url(support::endpoint())
        .max_attempts(1)
        .build();
    match rejected {
        Err(rejected) => {
            assert!(
                matches!(rejected, Error::Credentials { .. } | Error::Service { .. }),
                "{rejected:?}"
            );
            errors.push(("rejected credentials", rejected));
        }
        Ok(_) => assert!(
            support::skip_on(
                &[LocalEngine::Moto, LocalEngine::Dynalite],
                "the server accepts any access key: no rejected-credentials error to check"
            ),
            "DynamoDB Local accepted the access key {REJECTED_ACCESS_KEY:?}"
        ),
    }

    // Tampered, foreign and undecodable values.
    d.set("k", "genuine".into()).unwrap();
    let raw = Raw::new();
    let mut item = raw.get(d.namespace(), "k").unwrap();
    let mut bytes = item["v"].as_b().unwrap().as_ref().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    item.insert("v".into(), AttributeValue::B(Blob::new(bytes)));
    raw.put(item);
    let bad = d.get("k").unwrap_err();
    assert!(matches!(bad, Error::BadSignature { .. }), "{bad:?}");
    errors.push(("bad signature", bad));
    let other = d
        .with_namespace::<String>(d.namespace(), Serializer::json())
        .unwrap();
    errors.push(("serializer mismatch", other.get("k").unwrap_err()));
    let wrong_type = d.with_namespace::<u8>(d.namespace(), signed()).unwrap();
    d.set("k", "text".into()).unwrap();
    errors.push(("deserialize", wrong_type.get("k").unwrap_err()));

    // Table-level failures.
    let missing = DynamoDbDict::<u8>::builder(unique("no-such-table"))
        .credentials(ACCESS_KEY, SECRET_KEY, Some(SESSION_TOKEN.to_owned()))
        .endpoint_url(support::endpoint())
        .create_table(false)
        .build()
        .unwrap_err();
    assert!(
        matches!(missing, Error::TableNotFound { .. }),
        "{missing:?}"
    );
    errors.push(("table not found", missing));
    let mismatch = with_credentials::<u8>(ACCESS_KEY)
        .endpoint_url(support::endpoint())
        .shards(3)
        .build()
        .unwrap_err();
    assert!(
        matches!(mismatch, Error::LayoutMismatch { .. }),
        "{mismatch:?}"
    );
    errors.push(("layout mismatch", mismatch));
    let no_region = DynamoDbDict::<u8>::builder(support::TABLE)
        .sdk_config(
            &dynamodict::aws_config::SdkConfig::builder()
                .behavior_version(dynamodict::aws_config::BehaviorVersion::latest())
                .build(),
        )
        .credentials(ACCESS_KEY, SECRET_KEY, Some(SESSION_TOKEN.to_owned()))
        .build()
        .unwrap_err();
    errors.push(("config", no_region));
    let long_key = d.get(&"k".repeat(2000)).unwrap_err();
    errors.push(("key too long", long_key));

    for (what, err) in &errors {
        clean_error(what, err);
    }
    let kinds: Vec<String> = errors
        .iter()
        .map(|(what, e)| {
            let debug = format!("{e:?}");
            let variant = debug.split([' ', '(', '{']).next().unwrap_or("").to_owned();
            format!("{what}: {variant}")
        })
        .collect();
    eprintln!("errors checked for secrets: {}", kinds.join(", "));
}

#[test]
fn spans_and_events_never_carry_secrets() {
    let proxy = FaultProxy::start(local_upstream()).unwrap();
    let log = crate::observability::capture(|| async {
        let map = with_credentials::<Vec<u8>>(ACCESS_KEY)
            .endpoint_url(proxy.endpoint())
            .build_async()
            .await
            .unwrap();
        map.set("small", b"value".to_vec()).await.unwrap();
        map.set("large", vec![3u8; 700_000]).await.unwrap();
        map.get("large").await.unwrap();
        map.sweep().await.unwrap();
        // Throttled and failing requests, whose events and error fields are recorded too.
        proxy.set_fault(Fault::Throttle {
            share: 0.5,
            code: ThrottleCode::Throttling,
        });
        let _ = map.insert_many([("a", vec![1u8])]).await;
        proxy.set_fault(Fault::Reset);
        let _ = map.get("small").await;
        proxy.clear();
        let other = map
            .with_namespace::<String>(map.namespace(), Serializer::json())
            .unwrap();
        let _ = other.get("small").await;
    });
    assert!(log.contains("operation="), "nothing was captured:\n{log}");
    assert_clean("the captured spans and events", &log, Some(&log));
}
