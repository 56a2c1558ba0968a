//! `CachedSession` against a real HTTP origin on loopback (which counts what reaches it) and
//! DynamoDB Local.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use dynamodict::Error;
use dynamodict::cache::CachedRequest;
use dynamodict::session::{CacheStatus, CachedSession, SessionBuilder, StaleReason};

use crate::support;
use crate::support::origin::{Origin, Reply, Seen};

fn builder() -> SessionBuilder {
    let namespace = support::unique("session");
    CachedSession::builder(support::TABLE)
        .cache(|c| c.namespace(namespace))
        .local()
}

fn session() -> CachedSession {
    builder().build().expect("building a session")
}

/// An origin whose `/etag` resource has a version the test can change, answering 304 when the
/// request's `If-None-Match` names the current version.
fn versioned(cache_control: &'static str) -> (Origin, Arc<AtomicUsize>) {
    let version = Arc::new(AtomicUsize::new(1));
    let current = version.clone();
    let origin = Origin::start(move |seen: &Seen| {
        let v = current.load(Ordering::SeqCst);
        let etag = format!("\"v{v}\"");
        if seen.header("if-none-match") == Some(etag.as_str()) {
            return Reply::new(304, "")
                .header("ETag", &etag)
                .header("Cache-Control", "max-age=60")
                .header("X-Revalidated", "yes");
        }
        Reply::ok(format!("body v{v}"))
            .header("ETag", &etag)
            .header("Cache-Control", cache_control)
    });
    (origin, version)
}

#[test]
fn a_second_get_is_served_without_reaching_the_origin() {
    let origin = Origin::start(|_| Reply::ok("hello").header("Cache-Control", "max-age=60"));
    let session = session();
    let first = session.get(&origin.url("/a")).send().unwrap();
    assert_eq!(first.cache_status(), CacheStatus::Fetched { stored: true });
    assert!(!first.from_cache());
    let second = session.get(&origin.url("/a")).send().unwrap();
    assert_eq!(second.cache_status(), CacheStatus::Fresh);
    assert!(second.from_cache());
    assert_eq!(
        (second.status, second.body.as_slice()),
        (200, &b"hello"[..])
    );
    assert_eq!(second.cache_key(), first.cache_key());
    let expires = second.expires().expect("max-age gives an expiry");
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(origin.count("/a"), 1);
    // A new session on the same table and namespace reads the same entry.
    let again = CachedSession::from_cache(session.cache().clone())
        .build()
        .unwrap();
    assert_eq!(
        again.get(&origin.url("/a")).send().unwrap().cache_status(),
        CacheStatus::Fresh
    );
    assert_eq!(origin.count("/a"), 1);
}

#[test]
fn a_stale_entry_is_revalidated_and_a_304_serves_the_cached_body_and_extends_it() {
    let (origin, _) = versioned("max-age=0");
    let session = session();
    let url = origin.url("/etag");
    let first = session.get(&url).send().unwrap();
    assert_eq!(first.cache_status(), CacheStatus::Fetched { stored: true });
    let second = session.get(&url).send().unwrap();
    assert_eq!(second.cache_status(), CacheStatus::Revalidated);
    assert!(second.is_revalidated() && second.from_cache());
    assert_eq!(second.body, b"body v1");
    assert_eq!(second.headers.get_str("x-revalidated"), Some("yes"));
    assert_eq!(second.headers.get_str("cache-control"), Some("max-age=60"));
    let conditional = &origin.seen()[1];
    assert_eq!(conditional.header("if-none-match"), Some("\"v1\""));
    // The 304's max-age now applies: the third request does not reach the origin.
    let third = session.get(&url).send().unwrap();
    assert_eq!(third.cache_status(), CacheStatus::Fresh);
    assert_eq!(third.body, b"body v1");
    assert_eq!(origin.count("/etag"), 2);
}

#[test]
fn a_changed_etag_stores_the_new_200() {
    let (origin, version) = versioned("max-age=0");
    let session = session();
    let url = origin.url("/etag");
    session.get(&url).send().unwrap();
    version.store(2, Ordering::SeqCst);
    let changed = session.get(&url).send().unwrap();
    assert_eq!(
        changed.cache_status(),
        CacheStatus::Fetched { stored: true }
    );
    assert_eq!(changed.body, b"body v2");
    let stored = session
        .cache()
        .get_response(changed.cache_key().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(stored.body, b"body v2");
    assert_eq!(stored.headers.get_str("etag"), Some("\"v2\""));
}

#[test]
fn a_vary_mismatch_goes_to_the_origin() {
    let origin = Origin::start(|seen: &Seen| {
        Reply::ok(format!("for {}", seen.header("accept").unwrap_or("-")))
            .header("Cache-Control", "max-age=60")
            .header("Vary", "Accept")
    });
    let session = session();
    let url = origin.url("/v");
    let json = session
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(json.body, b"for application/json");
    let hit = session
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(hit.cache_status(), CacheStatus::Fresh);
    let html = session
        .get(&url)
        .header("Accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(html.cache_status(), CacheStatus::Fetched { stored: true });
    assert_eq!(html.body, b"for text/html");
    assert_eq!(origin.count("/v"), 2);
    // `Vary: *` never matches, so such a response is not stored at all.
    origin.answer(|_| {
        Reply::ok("star")
            .header("Vary", "*")
            .header("Cache-Control", "max-age=60")
    });
    let star = session.get(&origin.url("/star")).send().unwrap();
    assert_eq!(star.cache_status(), CacheStatus::Fetched { stored: false });
    session.get(&origin.url("/star")).send().unwrap();
    assert_eq!(origin.count("/star"), 2);
}

#[test]
fn no_store_is_never_stored_and_post_is_not_cached_but_invalidates() {
    let origin = Origin::start(|seen: &Seen| match seen.path.as_str() {
        "/secret" => Reply::ok("secret").header("Cache-Control", "no-store"),
        _ => Reply::ok(format!("{} {}", seen.method, seen.body.len()))
            .header("Cache-Control", "max-age=60"),
    });
    let session = session();
    for _ in 0..2 {
        let r = session.get(&origin.url("/secret")).send().unwrap();
        assert_eq!(r.cache_status(), CacheStatus::Fetched { stored: false });
    }
    assert_eq!(origin.count("/secret"), 2);
    let key = session
        .cache()
        .create_key(&CachedRequest::new("GET", origin.url("/secret")))
        .unwrap();
    assert!(!session.cache().contains(&key).unwrap());
    // A request's own no-store: fetched, not stored.
    let own = session
        .get(&origin.url("/r"))
        .header("Cache-Control", "no-store")
        .send()
        .unwrap();
    assert_eq!(own.cache_status(), CacheStatus::Fetched { stored: false });

    session.get(&origin.url("/r")).send().unwrap();
    assert_eq!(
        session
            .get(&origin.url("/r"))
            .send()
            .unwrap()
            .cache_status(),
        CacheStatus::Fresh
    );
    for _ in 0..2 {
        let post = session.post(&origin.url("/r")).body("xyz").send().unwrap();
        assert_eq!(post.cache_status(), CacheStatus::Fetched { stored: false });
        assert_eq!(post.body, b"POST 3");
        assert_eq!(post.cache_key(), None);
    }
    assert_eq!(
        origin.seen().iter().filter(|s| s.method == "POST").count(),
        2
    );
    // The successful POST removed the stored GET response for its URL.
    let after = session.get(&origin.url("/r")).send().unwrap();
    assert_eq!(after.cache_status(), CacheStatus::Fetched { stored: true });
}

#[test]
fn only_if_cached_gives_504_on_a_miss_and_never_asks_the_origin() {
    let origin = Origin::start(|_| Reply::ok("x").header("Cache-Control", "max-age=0"));
    let session = session();
    let miss = session
        .get(&origin.url("/o"))
        .only_if_cached()
        .send()
        .unwrap();
    assert_eq!(miss.status, 504);
    assert_eq!(miss.cache_status(), CacheStatus::Unavailable);
    let header = session
        .get(&origin.url("/o"))
        .header("Cache-Control", "only-if-cached")
        .send()
        .unwrap();
    assert_eq!(header.status, 504);
    assert_eq!(origin.count("/o"), 0);
    // Stored but stale: still 504, unless the request accepts stale responses.
    session.get(&origin.url("/o")).send().unwrap();
    let stale = session
        .get(&origin.url("/o"))
        .only_if_cached()
        .send()
        .unwrap();
    assert_eq!(stale.status, 504);
    let accepted = session
        .get(&origin.url("/o"))
        .header("Cache-Control", "max-stale")
        .only_if_cached()
        .send()
        .unwrap();
    assert_eq!(
        accepted.cache_status(),
        CacheStatus::Stale(StaleReason::MaxStale)
    );
    assert_eq!(
        (accepted.status, accepted.body.as_slice()),
        (200, &b"x"[..])
    );
    assert_eq!(origin.count("/o"), 1);
}

#[test]
fn stale_if_error_serves_the_stale_response_when_the_origin_is_down_or_fails() {
    let origin = Origin::start(|_| Reply::ok("good").header("Cache-Control", "max-age=0"));
    let session = builder()
        .stale_if_error(Duration::from_secs(600))
        .build()
        .unwrap();
    let plain = self::session();
    let url = origin.url("/s");
    session.get(&url).send().unwrap();
    plain.get(&url).send().unwrap();

    origin.set_down(true);
    let served = session.get(&url).send().unwrap();
    assert_eq!(
        served.cache_status(),
        CacheStatus::Stale(StaleReason::Error)
    );
    assert!(served.is_stale() && served.from_cache());
    assert_eq!(served.body, b"good");
    match plain.get(&url).send() {
        Err(Error::Http {
            url: failed,
            transient: true,
            ..
        }) => assert_eq!(failed, url),
        other => panic!("without stale_if_error the failure must surface: {other:?}"),
    }
    origin.set_down(false);

    origin.answer(|_| Reply::new(500, "broken"));
    let served = session.get(&url).send().unwrap();
    assert_eq!(
        served.cache_status(),
        CacheStatus::Stale(StaleReason::Error)
    );
    assert_eq!(served.body, b"good");
    let error = plain.get(&url).send().unwrap();
    assert_eq!((error.status, error.body.as_slice()), (500, &b"broken"[..]));
    // The failure did not replace the stored response.
    origin.answer(|_| Reply::new(503, "later"));
    assert_eq!(session.get(&url).send().unwrap().body, b"good");

    // The response's own directive works without the setting.
    origin.answer(|_| Reply::ok("own").header("Cache-Control", "max-age=0, stale-if-error=600"));
    plain.get(&origin.url("/own")).send().unwrap();
    origin.set_down(true);
    let own = plain.get(&origin.url("/own")).send().unwrap();
    assert_eq!(own.cache_status(), CacheStatus::Stale(StaleReason::Error));
    origin.set_down(false);
}

#[test]
fn stale_while_revalidate_serves_at_once_and_refreshes_in_the_background() {
    let (origin, _) = versioned("max-age=1, stale-while-revalidate=60");
    let session = session();
    let url = origin.url("/etag");
    session.get(&url).send().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let stale = session.get(&url).send().unwrap();
    assert_eq!(
        stale.cache_status(),
        CacheStatus::Stale(StaleReason::WhileRevalidate)
    );
    assert_eq!(stale.body, b"body v1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = session.get(&url).send().unwrap();
        if fresh.cache_status() == CacheStatus::Fresh {
            assert_eq!(fresh.headers.get_str("x-revalidated"), Some("yes"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background revalidation never landed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let conditional: Vec<Seen> = origin
        .seen()
        .into_iter()
        .filter(|s| s.header("if-none-match").is_some())
        .collect();
    assert_eq!(conditional.len(), 1, "one background revalidation");
}

#[test]
fn refresh_revalidates_and_force_refresh_refetches() {
    let (origin, _) = versioned("max-age=60");
    let session = session();
    let url = origin.url("/etag");
    session.get(&url).send().unwrap();
    let refreshed = session.get(&url).refresh().send().unwrap();
    assert_eq!(refreshed.cache_status(), CacheStatus::Revalidated);
    assert_eq!(origin.seen()[1].header("if-none-match"), Some("\"v1\""));
    let forced = session.get(&url).force_refresh().send().unwrap();
    assert_eq!(forced.cache_status(), CacheStatus::Fetched { stored: true });
    assert_eq!(origin.seen()[2].header("if-none-match"), None);
    // A per-request lifetime: a zero one makes the entry stale for this request.
    let short = session.get(&url).expire_after_secs(0).send().unwrap();
    assert_eq!(short.cache_status(), CacheStatus::Revalidated);
    assert_eq!(origin.count("/etag"), 4);
}

#[test]
fn eight_threads_on_one_url_get_the_right_body_and_the_origin_is_asked_once() {
    // With a slow origin the others wait on the first; with a fast one some read the cache
    // after the first stored: either way, one origin request.
    for (path, delay) in [("/slow", 100), ("/fast", 0)] {
        let origin = Origin::start(move |_| {
            std::thread::sleep(Duration::from_millis(delay));
            Reply::ok("shared").header("Cache-Control", "max-age=60")
        });
        let session = session();
        let url = origin.url(path);
        let statuses: Vec<CacheStatus> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let r = session.get(&url).send().unwrap();
                        assert_eq!(r.body, b"shared");
                        r.cache_status()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(origin.count(path), 1, "{path}: {statuses:?}");
        let fetched = CacheStatus::Fetched { stored: true };
        assert_eq!(statuses.iter().filter(|s| **s == fetched).count(), 1);
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == CacheStatus::Fresh)
                .count(),
            7
        );
    }
}

#[test]
fn redirects_are_followed_and_every_hop_becomes_an_alias() {
    let origin = Origin::start(|seen: &Seen| match seen.path.as_str() {
        "/old" => Reply::new(301, "").header("Location", "/middle"),
        "/middle" => Reply::new(302, "").header("Location", "/new"),
        _ => Reply::ok("final").header("Cache-Control", "max-age=60"),
    });
    let session = session();
    let first = session.get(&origin.url("/old")).send().unwrap();
    assert_eq!((first.status, first.body.as_slice()), (200, &b"final"[..]));
    assert_eq!(first.url, origin.url("/new"));
    assert_eq!(first.history.len(), 2);
    assert_eq!(first.history[0].status, 301);
    let again = session.get(&origin.url("/old")).send().unwrap();
    assert_eq!(again.cache_status(), CacheStatus::Fresh);
    let middle = session.get(&origin.url("/middle")).send().unwrap();
    assert_eq!(
        middle.cache_status(),
        CacheStatus::Fresh,
        "the hop is an alias"
    );
    assert_eq!(middle.body, b"final");
    assert_eq!(origin.seen().len(), 3);
    let key = session
        .cache()
        .create_key(&CachedRequest::new("GET", origin.url("/middle")))
        .unwrap();
    assert!(session.cache().redirects().contains_key(&key).unwrap());
    // A loop is an error, not a hang.
    origin.answer(|seen: &Seen| {
        let next = if seen.path == "/a" { "/b" } else { "/a" };
        Reply::new(302, "").header("Location", next)
    });
    match session.get(&origin.url("/a")).send() {
        Err(Error::Http {
            transient: false,
            message,
            ..
        }) => assert!(message.contains("redirects"), "{message}"),
        other => panic!("a redirect loop must fail: {other:?}"),
    }
}

#[test]
fn large_bodies_go_through_chunking_and_come_back_whole() {
    let body: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let served = body.clone();
    let origin =
        Origin::start(move |_| Reply::ok(served.clone()).header("Cache-Control", "max-age=60"));
    let session = session();
    let first = session.get(&origin.url("/big")).send().unwrap();
    assert_eq!(first.cache_status(), CacheStatus::Fetched { stored: true });
    let hit = session.get(&origin.url("/big")).send().unwrap();
    assert_eq!(hit.cache_status(), CacheStatus::Fresh);
    assert!(hit.body == body, "the large body came back different");
}

#[test]
fn bad_input_and_async_contexts_are_clear_errors() {
    let session = session();
    assert!(matches!(
        session.get("not a url").send(),
        Err(Error::InvalidUrl { .. })
    ));
    assert!(matches!(
        session.get("ftp://example.com/").send(),
        Err(Error::InvalidUrl { .. })
    ));
    let origin = Origin::start(|_| Reply::ok("x"));
    assert!(matches!(
        session
            .get(&origin.url("/"))
            .header("bad header", "v")
            .send(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        session
            .get(&origin.url("/"))
            .header("X-Ok", "line\nbreak")
            .send(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        builder().heuristic_freshness(f32::NAN).build(),
        Err(Error::Config(_))
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = runtime.block_on(async { session.get(&origin.url("/")).send() });
    assert!(matches!(inside, Err(Error::Runtime(_))), "{inside:?}");
    assert_eq!(origin.count("/"), 0);
    // Hostile freshness headers from the origin are handled, not a panic.
    origin.answer(|_| {
        Reply::ok("h")
            .header("Cache-Control", "max-age=99999999999999999999999999")
            .header("Age", "18446744073709551615")
            .header("Expires", "yesterday-ish")
    });
    let hostile = session.get(&origin.url("/h")).send().unwrap();
    assert_eq!(hostile.body, b"h");
}

#[test]
fn credentials_are_redacted_from_the_table_and_redirects_can_be_left_alone() {
    let origin = Origin::start(|seen: &Seen| match seen.path.as_str() {
        "/moved" => Reply::new(302, "").header("Location", "/private"),
        _ => Reply::ok("mine").header("Cache-Control", "max-age=60"),
    });
    let session = session();
    let url = format!("{}?api_key=K3Y-SECRET&page=2", origin.url("/private"));
    let first = session
        .get(&url)
        .header("Authorization", "Bearer T0KEN-SECRET")
        .header("Cookie", "session=C00KIE-SECRET")
        .send()
        .unwrap();
    assert_eq!(first.cache_status(), CacheStatus::Fetched { stored: true });
    // The origin got the real values; the table holds none of them.
    let seen = &origin.seen()[0];
    assert_eq!(seen.header("authorization"), Some("Bearer T0KEN-SECRET"));
    assert!(seen.path.contains("K3Y-SECRET"));
    let key = first.cache_key().unwrap();
    let ns = session.cache().responses().namespace().to_owned();
    let raw = format!(
        "{:?}",
        support::Raw::new().get(&ns, key).expect("the stored item")
    );
    for secret in ["T0KEN-SECRET", "C00KIE-SECRET", "K3Y-SECRET"] {
        assert!(!raw.contains(secret), "{secret} reached the table: {raw}");
    }
    let hit = session
        .get(&url)
        .header("Authorization", "Bearer T0KEN-SECRET")
        .send()
        .unwrap();
    assert_eq!(hit.cache_status(), CacheStatus::Fresh);

    let manual = builder().max_redirects(0).build().unwrap();
    let redirect = manual.get(&origin.url("/moved")).send().unwrap();
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.headers.get_str("location"), Some("/private"));
}
