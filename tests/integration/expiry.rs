//! Expiry extremes through every way of setting one: `insert_with_ttl`, `default_ttl` and the
//! cache's `expires`. No overflow, "too far" means never, and a value stored already expired
//! carries a TTL that DynamoDB's sweep still honours (not more than five years in the past).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dynamodict::DynamoDbDict;
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::cache::{CachedRequest, CachedResponse, DynamoDbCache, ExpireAfter};

use crate::support::{self, Raw, builder};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `ttl` attribute stored for `key`, as a number (`None` when absent).
fn stored_ttl<V>(d: &DynamoDbDict<V>, key: &str) -> Option<u64> {
    let item = Raw::new()
        .get(d.namespace(), key)
        .expect("the item is stored");
    match item.get("ttl") {
        None => None,
        Some(AttributeValue::N(n)) => Some(n.parse().expect("an integer TTL")),
        Some(other) => panic!("a non-number TTL: {other:?}"),
    }
}

/// An already-expired value must carry a TTL DynamoDB sweeps: at most now, and not more than
/// five years old.
fn assert_sweepable(ttl: Option<u64>) {
    let ttl = ttl.expect("an expired value must carry a TTL");
    let now = now();
    assert!(ttl <= now, "{ttl} is not in the past (now {now})");
    assert!(
        ttl + 5 * 365 * 86_400 > now,
        "{ttl} is more than five years old: DynamoDB would never sweep it"
    );
}

#[test]
fn insert_with_ttl_handles_every_extreme() {
    let d: DynamoDbDict<String> = builder("ttl-extremes").build().unwrap();
    let v = "value".to_owned();
    for (key, ttl) in [
        ("max", Duration::MAX),
        ("u64-max-secs", Duration::from_secs(u64::MAX)),
        ("past-9999", Duration::from_secs(9_000 * 365 * 86_400)),
    ] {
        d.insert_with_ttl(key, v.clone(), ttl).unwrap();
        assert_eq!(d.get(key).unwrap().as_deref(), Some("value"), "{key}");
        assert_eq!(stored_ttl(&d, key), None, "{key}: too far means never");
    }
    // Far, but representable: stored as is.
    let century = Duration::from_secs(100 * 365 * 86_400);
    d.insert_with_ttl("century", v.clone(), century).unwrap();
    assert!(stored_ttl(&d, "century").unwrap() >= now() + century.as_secs());
    assert_eq!(d.get("century").unwrap().as_deref(), Some("value"));
    // Zero: expired at once, and swept.
    d.insert_with_ttl("zero", v, Duration::ZERO).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(d.get("zero").unwrap(), None);
    assert!(!d.contains_key("zero").unwrap());
    assert!(stored_ttl(&d, "zero").unwrap() <= now());
    assert_eq!(d.len().unwrap(), 4);
}

#[test]
fn default_ttl_of_duration_max_means_never() {
    let d: DynamoDbDict<u32> = builder("ttl-default-max")
        .default_ttl(Duration::MAX)
        .build()
        .unwrap();
    d.set("a", 1).unwrap();
    d.insert("b", 2).unwrap();
    assert_eq!(d.setdefault("c", 3).unwrap(), 3);
    d.insert_many([("d", 4)]).unwrap();
    for key in ["a", "b", "c", "d"] {
        assert_eq!(stored_ttl(&d, key), None, "{key}");
    }
    assert_eq!(
        d.get_many(["a", "b", "c", "d"]).unwrap(),
        vec![Some(1), Some(2), Some(3), Some(4)]
    );
}

#[test]
fn large_values_with_extreme_ttls() {
    let d: DynamoDbDict<serde_bytes::ByteBuf> = builder("ttl-large").build().unwrap();
    let big = serde_bytes::ByteBuf::from(vec![7u8; 600 * 1024]);
    d.insert_with_ttl("never", big.clone(), Duration::MAX)
        .unwrap();
    assert_eq!(stored_ttl(&d, "never"), None);
    assert_eq!(d.get("never").unwrap().as_ref(), Some(&big));
    d.insert_with_ttl("gone", big, Duration::ZERO).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(d.get("gone").unwrap(), None);
}

fn cache() -> DynamoDbCache {
    DynamoDbCache::builder(support::TABLE)
        .namespace(support::unique("ttl-cache"))
        .local()
        .build()
        .unwrap()
}

fn response(url: &str) -> CachedResponse {
    CachedResponse::new(CachedRequest::new("GET", url), 200, b"body".to_vec())
}

#[test]
fn cache_expires_in_the_past_or_far_future() {
    let c = cache();
    let before_1970 = UNIX_EPOCH - Duration::from_secs(86_400);
    let ten_years_ago = SystemTime::now() - Duration::from_secs(10 * 365 * 86_400);
    let far = SystemTime::now() + Duration::from_secs(20_000 * 365 * 86_400);
    let cases = [
        ("https://example.com/1969", Some(before_1970), true),
        ("https://example.com/epoch", Some(UNIX_EPOCH), true),
        ("https://example.com/decade", Some(ten_years_ago), true),
        ("https://example.com/far", Some(far), false),
    ];
    for (url, expires, expired) in cases {
        let key = c
            .save_response(&response(url), None, expires)
            .unwrap()
            .expect("saved");
        let ttl = stored_ttl(c.responses(), &key);
        if expired {
            assert_sweepable(ttl);
            assert!(c.get_response(&key).unwrap().is_none(), "{url}");
        } else {
            assert_eq!(ttl, None, "{url}: too far means never");
            let got = c.get_response(&key).unwrap().expect("a live response");
            assert!(!got.is_expired(), "{url}");
        }
    }
}

#[test]
fn cache_expire_after_and_grace_of_duration_max_mean_never() {
    let c = DynamoDbCache::builder(support::TABLE)
        .namespace(support::unique("ttl-cache-max"))
        .local()
        .expire_after(ExpireAfter::After(Duration::MAX))
        .ttl_grace(Duration::MAX)
        .build()
        .unwrap();
    let key = c
        .save_response(&response("https://example.com/max"), None, None)
        .unwrap()
        .expect("saved");
    assert_eq!(stored_ttl(c.responses(), &key), None);
    let got = c.get_response(&key).unwrap().expect("a live response");
    assert!(!got.is_expired());
}
