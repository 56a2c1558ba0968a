//! The `http-cache` backend through the middleware its users run: `reqwest-middleware` +
//! `http-cache-reqwest`, against a real origin on loopback and DynamoDB Local.

use std::time::SystemTime;

use dynamodict::AsyncDynamoDbDict;
use dynamodict::http_cache::{HttpCacheEntry, HttpCacheManager};
use futures_util::StreamExt;
use http_cache_reqwest::{Cache, CacheMode, HttpCache, HttpCacheOptions};

use crate::support;
use crate::support::origin::{Origin, Reply, Seen};

async fn entries(namespace: &str) -> AsyncDynamoDbDict<HttpCacheEntry> {
    AsyncDynamoDbDict::builder(support::TABLE)
        .namespace(namespace)
        .local()
        .build_async()
        .await
        .expect("opening the entries map")
}

fn client(manager: HttpCacheManager) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(Cache(HttpCache {
            mode: CacheMode::Default,
            manager,
            options: HttpCacheOptions::default(),
        }))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_request_is_served_from_dynamodb_and_entries_survive_a_new_client() {
    let body: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let served = body.clone();
    let origin = Origin::start(move |seen: &Seen| match seen.path.as_str() {
        "/big" => Reply::ok(served.clone()).header("Cache-Control", "max-age=60"),
        _ => Reply::ok("small").header("Cache-Control", "max-age=60"),
    });
    let namespace = support::unique("http-cache");
    let manager = HttpCacheManager::new(entries(&namespace).await);
    let first = client(manager.clone());
    for path in ["/small", "/big", "/small", "/big"] {
        let response = first.get(origin.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let got = response.bytes().await.unwrap();
        let expected: &[u8] = if path == "/big" { &body } else { b"small" };
        assert!(got.as_ref() == expected, "wrong body for {path}");
    }
    assert_eq!((origin.count("/small"), origin.count("/big")), (1, 1));

    // A new client over a newly opened map of the same namespace: still served from DynamoDB.
    let reopened = HttpCacheManager::new(entries(&namespace).await);
    let second = client(reopened.clone());
    let again = second.get(origin.url("/big")).send().await.unwrap();
    assert!(again.bytes().await.unwrap().as_ref() == body.as_slice());
    assert_eq!(origin.count("/big"), 1);

    // The entry's DynamoDB TTL is the policy's time to live plus the grace period.
    let keys: Vec<String> = reopened
        .entries()
        .keys()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let small = keys.iter().find(|k| k.ends_with("/small")).unwrap().clone();
    let ns = reopened.entries().namespace().to_owned();
    let item = tokio::task::spawn_blocking(move || support::Raw::new().get(&ns, &small))
        .await
        .unwrap()
        .expect("the entry's item");
    let ttl: u64 = item["ttl"].as_n().unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expected = 60 + dynamodict::http_cache::DEFAULT_GRACE.as_secs();
    assert!(
        ttl <= now + expected + 1 && ttl + 30 >= now + expected,
        "ttl {ttl}, now {now}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_is_revalidated_through_the_backend() {
    let origin = Origin::start(|seen: &Seen| {
        if seen.header("if-none-match") == Some("\"e1\"") {
            return Reply::new(304, "")
                .header("ETag", "\"e1\"")
                .header("Cache-Control", "max-age=60");
        }
        Reply::ok("versioned")
            .header("ETag", "\"e1\"")
            .header("Cache-Control", "max-age=0")
    });
    let manager = HttpCacheManager::new(entries(&support::unique("http-cache")).await);
    let client = client(manager);
    for _ in 0..3 {
        let r = client.get(origin.url("/e")).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"versioned");
    }
    let seen = origin.seen();
    assert_eq!(
        seen.len(),
        2,
        "a fetch, then one revalidation; the third is fresh"
    );
    assert_eq!(seen[1].header("if-none-match"), Some("\"e1\""));
}
