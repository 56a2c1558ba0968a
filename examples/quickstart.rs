//! The main job, end to end: a persistent map used from plain synchronous code, and an HTTP
//! response cache that saves and reads back `http` crate responses.
//!
//! Runs against an embedded DynamoDB Local that starts by itself (in memory, on a free loopback
//! port) unless `DYNAMODICT_ENDPOINT` points at an existing endpoint:
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use dynamodict::cache::{CachedResponse, DynamoDbCache, ExpireAfter, Selection};
use dynamodict::{DynamoDbDict, Serializer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    visits: u32,
}

fn main() -> Result<(), dynamodict::Error> {
    // A typed map in the "profiles" namespace of the "quickstart" table (created on demand).
    let profiles: DynamoDbDict<Profile> = DynamoDbDict::builder("quickstart")
        .namespace("profiles")
        .serializer(Serializer::bincode().signed("example secret", "profiles"))
        .local()
        .build()?;
    profiles.clear()?;
    println!(
        "map: table {:?}, namespace {:?}",
        profiles.table(),
        profiles.namespace()
    );

    let alice = Profile {
        name: "Alice".into(),
        visits: 1,
    };
    let previous = profiles.insert("alice", alice.clone())?;
    println!("insert alice -> previous {previous:?}");

    let bob = profiles.setdefault(
        "bob",
        Profile {
            name: "Bob".into(),
            visits: 0,
        },
    )?;
    println!("setdefault bob -> {bob:?}");

    let updated = Profile { visits: 2, ..alice };
    let previous = profiles.insert("alice", updated)?;
    println!("insert alice again -> previous {previous:?}");

    profiles.insert_many((0..40).map(|i| {
        (
            format!("guest-{i}"),
            Profile {
                name: format!("Guest {i}"),
                visits: i,
            },
        )
    }))?;
    println!("len after insert_many -> {}", profiles.len()?);

    let some = profiles.get_many(["alice", "guest-3", "nobody"])?;
    println!("get_many -> {some:?}");

    profiles.insert_with_ttl(
        "session",
        Profile {
            name: "temp".into(),
            visits: 0,
        },
        Duration::from_secs(1),
    )?;
    println!(
        "session before expiry -> {:?}",
        profiles.get("session")?.map(|p| p.name)
    );
    std::thread::sleep(Duration::from_millis(2100));
    println!("session after expiry -> {:?}", profiles.get("session")?);

    let guests: Vec<String> = profiles
        .keys()
        .filter_map(Result::ok)
        .filter(|k| k.starts_with("guest-"))
        .collect();
    profiles.bulk_delete(&guests)?;
    let mut names: Vec<String> = profiles
        .values()
        .map(|p| p.map(|p| p.name))
        .collect::<Result<_, _>>()?;
    names.sort();
    println!("values after bulk_delete -> {names:?}");

    println!("pop bob -> {:?}", profiles.pop("bob")?);
    println!("contains bob -> {}", profiles.contains_key("bob")?);
    profiles.clear()?;
    println!("len after clear -> {}", profiles.len()?);

    http_cache()
}

/// The response cache: `http` requests and responses in, the same responses back.
fn http_cache() -> Result<(), dynamodict::Error> {
    let cache = DynamoDbCache::builder("quickstart")
        .namespace("http")
        .expire_after(ExpireAfter::After(Duration::from_secs(3600)))
        .urls_expire_after(
            "api.example.com/live/*",
            ExpireAfter::After(Duration::from_secs(1)),
        )
        .ignored_parameters(["api_key"])
        .local()
        .build()?;
    cache.clear()?;

    let request = http::Request::get("https://api.example.com/v1/items?page=2&api_key=SECRET")
        .header("Accept", "application/json")
        .body(Vec::new())
        .expect("a valid request");
    let response = http::Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(br#"{"items":[1,2,3]}"#.to_vec())
        .expect("a valid response");
    let cached = CachedResponse::from_http(response, &request, "");
    let key = cache
        .save_response(&cached, None, None)?
        .expect("a 200 GET is cached");
    println!(
        "\ncache: saved GET {} under key {key}",
        request.uri().path()
    );

    let hit = cache.get_response_for(&request)?.expect("just saved");
    println!(
        "cache: read back status {} from_cache={} expires in ~{}s, stored url {:?}",
        hit.status,
        hit.is_from_cache(),
        hit.ttl().map_or(0, |t| t.as_secs()),
        hit.url,
    );
    let back: http::Response<Vec<u8>> = hit.into_http()?;
    println!(
        "cache: as http::Response -> {} {:?} {}",
        back.status(),
        back.headers().get("content-type"),
        String::from_utf8_lossy(back.body())
    );

    // A redirect: the old URL's key becomes an alias of the final response's key.
    let old = http::Request::get("https://api.example.com/v0/items")
        .body(Vec::new())
        .expect("valid");
    let mut moved = CachedResponse::from_http(
        http::Response::builder()
            .status(301)
            .body(Vec::new())
            .expect("valid"),
        &old,
        "",
    );
    moved
        .headers
        .insert("Location", "https://api.example.com/v1/items?page=2");
    let mut final_response = cache.get_response(&key)?.expect("saved above");
    final_response.history = vec![moved];
    cache.save_response(&final_response, Some(&key), None)?;
    println!(
        "cache: old URL cached via redirect alias -> {}",
        cache.has_url("https://api.example.com/v0/items", "GET")?
    );

    // Per-URL expiry.
    let live = http::Request::get("https://api.example.com/live/price")
        .body(Vec::new())
        .expect("valid");
    let quote = CachedResponse::from_http(http::Response::new(b"42".to_vec()), &live, "");
    cache.save_response(&quote, None, None)?;
    println!(
        "cache: responses {}, urls {:?}",
        cache.response_count(Selection::unexpired())?,
        cache.urls()?
    );
    std::thread::sleep(Duration::from_millis(2100));
    println!(
        "cache: after 2 s, live price cached -> {}",
        cache.has_url("https://api.example.com/live/price", "GET")?
    );
    println!(
        "cache: unexpired responses {}",
        cache.response_count(Selection::unexpired())?
    );
    cache.clear()?;
    Ok(())
}
