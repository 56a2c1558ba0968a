//! `DynamoDbCache` against DynamoDB Local: every operation, expiry, redirects, redaction,
//! signatures and large responses.

use std::time::{Duration, SystemTime};

use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::cache::{
    CacheBuilder, CachedRequest, CachedResponse, DeleteFilter, DynamoDbCache, ExpireAfter,
    MatchHeaders, Selection,
};
use dynamodict::{Error, Serializer};

use crate::support::facade::{Cache, Facade};
use crate::support::{self, Raw};

fn builder() -> CacheBuilder {
    DynamoDbCache::builder(support::TABLE)
        .namespace(support::unique("cache"))
        .local()
}

fn get(url: &str) -> CachedRequest {
    CachedRequest::new("GET", url)
}

fn response(url: &str, body: &[u8]) -> CachedResponse {
    CachedResponse::new(get(url), 200, body.to_vec())
}

/// Every raw item of the cache's two namespaces, as debug text.
fn raw_items(cache: &DynamoDbCache) -> String {
    let raw = Raw::new();
    let mut all = String::new();
    for ns in [cache.responses().namespace(), cache.redirects().namespace()] {
        for shard in 0..8 {
            let out = raw
                .block(
                    raw.client
                        .query()
                        .table_name(support::TABLE)
                        .key_condition_expression("pk = :p")
                        .expression_attribute_values(
                            ":p",
                            AttributeValue::S(format!("{ns}#{shard:x}")),
                        )
                        .send(),
                )
                .unwrap();
            for item in out.items.unwrap_or_default() {
                all.push_str(&format!("{item:?}\n"));
                if let Some(AttributeValue::B(b)) = item.get("v") {
                    all.push_str(&String::from_utf8_lossy(b.as_ref()));
                }
            }
        }
    }
    all
}

#[test]
fn save_get_contains_and_delete() {
    for facade in Facade::ALL {
        let cache = Cache::build(builder(), facade);
        let r = response("https://example.com/a?b=2&a=1", b"body a");
        let key = cache.save_response(&r, None, None).unwrap().unwrap();
        assert_eq!(
            key,
            cache
                .create_key(&get("https://EXAMPLE.com:443/a?a=1&b=2"))
                .unwrap(),
            "normalized"
        );
        let got = cache.get_response(&key).unwrap().unwrap();
        assert!(got.is_from_cache());
        assert_eq!(got.body, b"body a");
        assert_eq!(got.status, 200);
        assert!(cache.contains(&key).unwrap());
        assert!(
            cache
                .contains_request(&get("https://example.com/a?a=1&b=2"))
                .unwrap()
        );
        assert!(
            cache
                .has_url("https://example.com/a?a=1&b=2", "GET")
                .unwrap()
        );
        assert!(
            !cache
                .has_url("https://example.com/a?a=1&b=2", "POST")
                .unwrap()
        );
        assert_eq!(
            cache
                .get_response_for(&get("https://example.com/a?b=2&a=1"))
                .unwrap()
                .unwrap()
                .body,
            b"body a"
        );
        assert_eq!(cache.get_response("nope").unwrap(), None);

        // Explicit key and explicit expiry.
        let at = SystemTime::now() + Duration::from_secs(600);
        cache
            .save_response(
                &response("https://example.com/b", b"b"),
                Some("custom-key"),
                Some(at),
            )
            .unwrap();
        let b = cache.get_response("custom-key").unwrap().unwrap();
        assert!(b.ttl().unwrap() > Duration::from_secs(590));

        cache
            .delete_url("https://example.com/a?a=1&b=2", "GET")
            .unwrap();
        assert!(!cache.contains(&key).unwrap());
        cache
            .delete(DeleteFilter {
                keys: vec!["custom-key".into()],
                ..DeleteFilter::default()
            })
            .unwrap();
        assert_eq!(cache.response_count(Selection::default()).unwrap(), 0);
        // Deleting what is not there is fine.
        cache
            .delete_urls(["https://nowhere.example/"], "GET")
            .unwrap();
    }
}

#[test]
fn policy_decides_what_is_saved() {
    let cache = builder()
        .allowed_codes([200, 404])
        .allowed_methods(["GET", "POST"])
        .filter(|r| !r.body.starts_with(b"skip"))
        .build()
        .unwrap();
    let mut not_found = response("https://example.com/404", b"missing");
    not_found.status = 404;
    assert!(
        cache
            .save_response(&not_found, None, None)
            .unwrap()
            .is_some()
    );
    let mut error = response("https://example.com/500", b"error");
    error.status = 500;
    assert_eq!(cache.save_response(&error, None, None).unwrap(), None);
    let put = CachedResponse::new(
        CachedRequest::new("PUT", "https://example.com/put"),
        200,
        vec![],
    );
    assert_eq!(cache.save_response(&put, None, None).unwrap(), None);
    let post = CachedResponse::new(
        CachedRequest::new("POST", "https://example.com/post"),
        200,
        vec![],
    );
    assert!(cache.save_response(&post, None, None).unwrap().is_some());
    assert_eq!(
        cache
            .save_response(&response("https://example.com/s", b"skip me"), None, None)
            .unwrap(),
        None
    );
    assert_eq!(cache.response_count(Selection::default()).unwrap(), 2);
}

#[test]
fn expiry_by_duration_pattern_and_headers() {
    let cache = builder()
        .expire_after(ExpireAfter::After(Duration::from_secs(3600)))
        .urls_expire_after(
            "fast.example.com/*",
            ExpireAfter::After(Duration::from_secs(1)),
        )
        .urls_expire_after("never.example.com", ExpireAfter::Never)
        .urls_expire_after("skip.example.com", ExpireAfter::DoNotCache)
        .cache_control(true)
        .build()
        .unwrap();
    let slow = cache
        .save_response(&response("https://slow.example.com/x", b"1"), None, None)
        .unwrap()
        .unwrap();
    let fast = cache
        .save_response(&response("https://fast.example.com/x", b"2"), None, None)
        .unwrap()
        .unwrap();
    let never = cache
        .save_response(&response("https://never.example.com/x", b"3"), None, None)
        .unwrap()
        .unwrap();
    assert_eq!(
        cache
            .save_response(&response("https://skip.example.com/x", b"4"), None, None)
            .unwrap(),
        None
    );
    let mut max_age = response("https://slow.example.com/max-age", b"5");
    max_age.headers.insert("Cache-Control", "max-age=3");
    let max_age = cache.save_response(&max_age, None, None).unwrap().unwrap();
    let mut no_store = response("https://slow.example.com/no-store", b"6");
    no_store.headers.insert("Cache-Control", "no-store");
    assert_eq!(cache.save_response(&no_store, None, None).unwrap(), None);
    let mut expires = response("https://slow.example.com/expires", b"7");
    expires.headers.insert(
        "Expires",
        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3)),
    );
    let expires = cache.save_response(&expires, None, None).unwrap().unwrap();

    let slow_r = cache.get_response(&slow).unwrap().unwrap();
    assert!(slow_r.ttl().unwrap() > Duration::from_secs(3500));
    assert_eq!(cache.get_response(&never).unwrap().unwrap().expires, None);
    // (3 s of expiry leaves room for slow saves on a loaded machine.)
    assert_eq!(cache.response_count(Selection::unexpired()).unwrap(), 5);
    std::thread::sleep(Duration::from_millis(3300));
    // Without a grace period, DynamoDB's TTL follows the expiry: gone at once.
    for key in [&fast, &max_age, &expires] {
        assert_eq!(cache.get_response(key).unwrap(), None, "{key}");
    }
    assert!(cache.get_response(&slow).unwrap().is_some());
    assert_eq!(cache.response_count(Selection::unexpired()).unwrap(), 2);
}

#[test]
fn grace_period_keeps_stale_responses_for_revalidation() {
    let cache = builder()
        .ttl_grace(Duration::from_secs(3600))
        .expire_after(ExpireAfter::Immediately)
        .build()
        .unwrap();
    let key = cache
        .save_response(&response("https://example.com/stale", b"old"), None, None)
        .unwrap()
        .unwrap();
    let fresh = cache
        .save_response(
            &response("https://example.com/fresh", b"new"),
            None,
            Some(SystemTime::now() + Duration::from_secs(600)),
        )
        .unwrap()
        .unwrap();
    let stale = cache.get_response(&key).unwrap().unwrap();
    assert!(stale.is_expired(), "saved, but stale at once");
    assert_eq!(cache.response_count(Selection::default()).unwrap(), 2);
    assert_eq!(cache.response_count(Selection::unexpired()).unwrap(), 1);
    let expired: Vec<CachedResponse> = cache
        .filter(Selection {
            valid: false,
            expired: true,
            invalid: false,
            older_than: None,
        })
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].body, b"old");
    let valid: Vec<CachedResponse> = cache
        .filter(Selection {
            valid: true,
            expired: false,
            invalid: false,
            older_than: None,
        })
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(valid[0].body, b"new");
    cache.remove_expired_responses(None).unwrap();
    assert_eq!(cache.get_response(&key).unwrap(), None);
    assert!(cache.get_response(&fresh).unwrap().is_some());
    // reset_expiration makes everything expired; remove_expired_responses with a new expiry
    // resets first, so nothing is removed.
    cache.reset_expiration(ExpireAfter::Immediately).unwrap();
    assert_eq!(cache.response_count(Selection::unexpired()).unwrap(), 0);
    cache
        .remove_expired_responses(Some(ExpireAfter::After(Duration::from_secs(60))))
        .unwrap();
    assert_eq!(cache.response_count(Selection::unexpired()).unwrap(), 1);
    assert!(cache.get_response(&fresh).unwrap().unwrap().ttl().unwrap() <= Duration::from_secs(60));
}

#[test]
fn redirect_aliases_survive_a_new_cache_instance() {
    let namespace = support::unique("redirects");
    let cache = DynamoDbCache::builder(support::TABLE)
        .namespace(&namespace)
        .local()
        .build()
        .unwrap();
    let mut first = CachedResponse::new(get("https://example.com/old"), 301, vec![]);
    first.headers.insert("Location", "https://example.com/new");
    let mut r = response("https://example.com/new", b"final");
    r.history = vec![first];
    let key = cache.save_response(&r, None, None).unwrap().unwrap();
    let alias = cache.create_key(&get("https://example.com/old")).unwrap();
    assert_ne!(alias, key);
    drop(cache);

    let again = DynamoDbCache::builder(support::TABLE)
        .namespace(&namespace)
        .local()
        .build()
        .unwrap();
    assert_eq!(again.get_response(&alias).unwrap().unwrap().body, b"final");
    assert!(again.has_url("https://example.com/old", "GET").unwrap());
    assert_eq!(
        again.redirects().get(&alias).unwrap().as_deref(),
        Some(key.as_str())
    );
    // Deleting by the alias removes the alias only: the response saved for the URL it
    // redirected to stays, reachable by its own URL.
    again.delete_url("https://example.com/old", "GET").unwrap();
    assert!(!again.contains(&alias).unwrap());
    assert!(!again.has_url("https://example.com/old", "GET").unwrap());
    assert!(again.contains(&key).unwrap());
    assert_eq!(
        again
            .get_response_for(&get("https://example.com/new"))
            .unwrap()
            .unwrap()
            .body,
        b"final"
    );
    // Deleting the response removes its aliases too.
    let back = again.save_response(&r, None, None).unwrap().unwrap();
    assert!(again.has_url("https://example.com/old", "GET").unwrap());
    again.delete_url("https://example.com/new", "GET").unwrap();
    assert!(!again.contains(&back).unwrap());
    assert!(!again.has_url("https://example.com/old", "GET").unwrap());
}

#[test]
fn ignored_parameters_are_redacted_from_the_table() {
    // bincode, so the raw bytes can be searched as text too.
    let cache = builder()
        .allowed_methods(["POST"])
        .ignored_parameters(["api_key", "Authorization", "token"])
        .match_headers(MatchHeaders::All)
        .serializer(Serializer::bincode())
        .build()
        .unwrap();
    let mut request = CachedRequest::new(
        "POST",
        "https://api.example.com/v1?api_key=sk-LIVE-123456&q=1",
    );
    request
        .headers
        .insert("Authorization", "Bearer tok-SECRET-987");
    request.headers.insert("Content-Type", "application/json");
    request.body = br#"{"token": "json-SECRET-555", "query": "x"}"#.to_vec();
    let key = cache
        .save_response(
            &CachedResponse::new(request.clone(), 200, b"ok".to_vec()),
            None,
            None,
        )
        .unwrap()
        .unwrap();
    // The same request with other secret values maps to the same key.
    let mut other = request.clone();
    other.url = "https://api.example.com/v1?api_key=different&q=1".into();
    assert_eq!(cache.create_key(&other).unwrap(), key);
    let stored = cache.get_response(&key).unwrap().unwrap();
    assert!(stored.request.url.contains("q=1"));
    let raw = raw_items(&cache);
    assert!(
        raw.contains("q=1") || raw.contains("api.example.com"),
        "the item is there"
    );
    for secret in ["sk-LIVE-123456", "tok-SECRET-987", "json-SECRET-555"] {
        assert!(!raw.contains(secret), "{secret} reached the table:\n{raw}");
    }
}

#[test]
fn signed_entries_reject_a_tampered_item() {
    let cache = builder()
        .secret_key("cache secret")
        .salt("pepper")
        .build()
        .unwrap();
    let key = cache
        .save_response(
            &response("https://example.com/signed", b"genuine"),
            None,
            None,
        )
        .unwrap()
        .unwrap();
    assert_eq!(cache.get_response(&key).unwrap().unwrap().body, b"genuine");
    // Rewrite the stored document's body with the raw SDK.
    let raw = Raw::new();
    let ns = cache.responses().namespace().to_owned();
    let mut item = raw.get(&ns, &key).unwrap();
    let mut doc = item["v"].as_m().unwrap().clone();
    doc.insert(
        "body".into(),
        AttributeValue::B(dynamodict::aws_sdk_dynamodb::primitives::Blob::new(
            b"forged".to_vec(),
        )),
    );
    item.insert("v".into(), AttributeValue::M(doc));
    raw.put(item);
    assert!(
        matches!(cache.get_response(&key), Err(Error::BadSignature { key: ref k }) if *k == key)
    );
    // A cache with another secret cannot read genuine entries either.
    let genuine = cache
        .save_response(&response("https://example.com/other", b"x"), None, None)
        .unwrap()
        .unwrap();
    let other = DynamoDbCache::builder(support::TABLE)
        .namespace(ns.trim_end_matches(".responses"))
        .secret_key("wrong")
        .salt("pepper")
        .local()
        .build()
        .unwrap();
    assert!(matches!(
        other.get_response(&genuine),
        Err(Error::BadSignature { .. })
    ));
    // The tampered entry is invalid: filter shows it, delete(invalid) removes it.
    let invalid: Vec<CachedResponse> = cache
        .filter(Selection {
            valid: false,
            expired: false,
            invalid: true,
            older_than: None,
        })
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0].url, key);
    cache
        .delete(DeleteFilter {
            invalid: true,
            ..DeleteFilter::default()
        })
        .unwrap();
    assert!(!cache.contains(&key).unwrap());
    assert!(cache.contains(&genuine).unwrap());
}

#[test]
fn three_megabyte_response_round_trip() {
    for serializer in [Serializer::document(), Serializer::bincode()] {
        let cache = builder().serializer(serializer).build().unwrap();
        let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let key = cache
            .save_response(&response("https://example.com/big", &body), None, None)
            .unwrap()
            .unwrap();
        let got = cache.get_response(&key).unwrap().unwrap();
        assert_eq!(got.body.len(), body.len());
        assert!(got.body == body);
        cache.clear().unwrap();
        assert_eq!(cache.response_count(Selection::default()).unwrap(), 0);
    }
}

#[test]
fn bookkeeping_urls_older_than_recreate_keys_update_clear() {
    for facade in Facade::ALL {
        let cache = Cache::build(builder(), facade);
        for (url, body) in [
            ("https://b.example.com/1", b"1"),
            ("https://a.example.com/2", b"2"),
            ("https://a.example.com/3", b"3"),
        ] {
            cache
                .save_response(&response(url, body), None, None)
                .unwrap();
        }
        assert_eq!(
            cache.urls().unwrap(),
            [
                "https://a.example.com/2",
                "https://a.example.com/3",
                "https://b.example.com/1"
            ]
        );
        assert_eq!(cache.response_count(Selection::default()).unwrap(), 3);
        // older_than: nothing is an hour old; everything is older than zero seconds.
        assert_eq!(
            cache
                .filter(Selection {
                    valid: true,
                    expired: true,
                    invalid: false,
                    older_than: Some(Duration::from_secs(3600))
                })
                .len(),
            0
        );
        std::thread::sleep(Duration::from_millis(20));
        cache
            .delete(DeleteFilter {
                older_than: Some(Duration::from_secs(3600)),
                ..DeleteFilter::default()
            })
            .unwrap();
        assert_eq!(cache.response_count(Selection::default()).unwrap(), 3);
        cache
            .delete(DeleteFilter {
                requests: vec![get("https://a.example.com/2")],
                urls: vec!["https://a.example.com/3".into()],
                ..DeleteFilter::default()
            })
            .unwrap();
        assert_eq!(cache.urls().unwrap(), ["https://b.example.com/1"]);

        // update copies another cache's entries.
        let other = Cache::build(builder(), facade);
        other
            .save_response(&response("https://c.example.com/", b"c"), None, None)
            .unwrap();
        cache.update(&other).unwrap();
        assert_eq!(cache.response_count(Selection::default()).unwrap(), 2);

        // recreate_keys after the key settings change.
        let ns = cache
            .blocking()
            .responses()
            .namespace()
            .trim_end_matches(".responses")
            .to_owned();
        let mut with_header = CachedRequest::new("GET", "https://d.example.com/");
        with_header.headers.insert("Accept", "application/json");
        cache
            .save_response(
                &CachedResponse::new(with_header.clone(), 200, b"d".to_vec()),
                None,
                None,
            )
            .unwrap();
        let rekeyed = Cache::build(
            DynamoDbCache::builder(support::TABLE)
                .namespace(&ns)
                .match_headers(MatchHeaders::All)
                .local(),
            facade,
        );
        assert!(
            !rekeyed.contains_request(&with_header).unwrap(),
            "keys differ under the new settings"
        );
        // Only the request with headers gets a new key.
        assert_eq!(rekeyed.recreate_keys().unwrap(), 1);
        assert!(rekeyed.contains_request(&with_header).unwrap());
        assert_eq!(rekeyed.response_count(Selection::default()).unwrap(), 3);

        rekeyed.clear().unwrap();
        assert_eq!(cache.response_count(Selection::default()).unwrap(), 0);
    }
}

#[test]
fn http_crate_responses_round_trip() {
    let cache = builder().build().unwrap();
    let request = http::Request::builder()
        .method("GET")
        .uri("https://example.com/json?x=1")
        .header("Accept", "application/json")
        .body(Vec::new())
        .unwrap();
    let http_response = http::Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .header("Set-Cookie", "a=1")
        .header("Set-Cookie", "b=2")
        .body(br#"{"ok":true}"#.to_vec())
        .unwrap();
    let cached = CachedResponse::from_http(http_response, &request, "https://example.com/json?x=1");
    let key = cache.save_response(&cached, None, None).unwrap().unwrap();
    assert_eq!(key, cache.create_key(&request).unwrap());
    let back = cache
        .get_response(&key)
        .unwrap()
        .unwrap()
        .into_http()
        .unwrap();
    assert_eq!(back.status(), 200);
    assert_eq!(back.headers().get_all("set-cookie").iter().count(), 2);
    assert_eq!(back.body(), br#"{"ok":true}"#);
}

/// A real HTTP exchange over loopback with `reqwest::blocking`, saved and read back.
#[cfg(feature = "reqwest")]
#[test]
fn reqwest_blocking_responses_are_cached() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).unwrap();
        let body = "hello from a real server";
        write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    });
    let url = format!("http://127.0.0.1:{port}/hello?b=2&a=1");
    let response = reqwest::blocking::Client::new().get(&url).send().unwrap();
    let cached = CachedResponse::from_reqwest(get(&url), response).unwrap();
    server.join().unwrap();
    assert_eq!(cached.status, 200);
    assert_eq!(cached.headers.get_str("x-test"), Some("yes"));
    let cache = builder().build().unwrap();
    let key = cache.save_response(&cached, None, None).unwrap().unwrap();
    let back = cache.get_response(&key).unwrap().unwrap();
    assert_eq!(back.body, b"hello from a real server");
    assert_eq!(back.url, url);
}

#[test]
fn a_map_cannot_take_a_caches_namespace() {
    let name = support::unique("shared-name");
    let cache = DynamoDbCache::builder(support::TABLE)
        .namespace(&name)
        .local()
        .build()
        .unwrap();
    cache
        .save_response(&response("https://example.com/x", b"body"), None, None)
        .unwrap();
    for suffix in ["responses", "redirects"] {
        let taken = format!("{name}.{suffix}");
        let r = support::builder::<Vec<u8>>("unused")
            .namespace(&taken)
            .build();
        assert!(
            matches!(&r, Err(Error::InvalidNamespace { name, reason })
                if *name == taken && reason.contains("response cache")),
            "{r:?}"
        );
        let map = support::dict::<Vec<u8>>("other");
        let r = map.with_namespace::<Vec<u8>>(&taken, Serializer::bincode());
        assert!(matches!(r, Err(Error::InvalidNamespace { .. })), "{r:?}");
    }
    // The cache itself is unaffected, and its name may contain the suffixes elsewhere.
    assert_eq!(cache.response_count(Selection::default()).unwrap(), 1);
    let nested = DynamoDbCache::builder(support::TABLE)
        .namespace(format!("{name}.responses.v2"))
        .local()
        .build();
    assert!(nested.is_ok(), "{nested:?}");
}

#[test]
fn empty_signing_secrets_are_refused() {
    let salt_only = builder().salt("pepper").build();
    assert!(
        matches!(&salt_only, Err(Error::Config(m)) if m.contains("secret_key")),
        "{salt_only:?}"
    );
    let empty = builder().secret_key("").build();
    assert!(matches!(empty, Err(Error::Config(_))), "{empty:?}");
    let empty_doc = builder()
        .serializer(Serializer::document().signed("", "salt"))
        .build();
    assert!(matches!(empty_doc, Err(Error::Config(_))), "{empty_doc:?}");
    let map = support::builder::<u8>("empty-secret")
        .serializer(Serializer::bincode().signed(b"", b"salt"))
        .build();
    assert!(
        matches!(&map, Err(Error::Config(m)) if m.contains("empty secret key")),
        "{map:?}"
    );
    // Used directly, such a serializer refuses to encode or decode.
    let direct = Serializer::json().signed("", "");
    assert!(matches!(direct.dumps("k", &1u8), Err(Error::Config(_))));
    let good = Serializer::json()
        .signed("secret", "")
        .dumps("k", &1u8)
        .unwrap();
    assert!(matches!(
        direct.loads::<u8>("k", good),
        Err(Error::Config(_))
    ));
}
