//! When a stored response may be used, and how long a fetched one stays fresh: RFC 9111 for a
//! private cache, with requests-cache's settings as the layer on top.
//!
//! The `http-cache-semantics` crate computes a response's freshness lifetime (`max-age`,
//! `Expires` against `Date`, `Age`, `no-cache`, `immutable`, `Vary: *`, the `Last-Modified`
//! heuristic) and decides whether a `304` matches the stored response's validators. The rest is
//! here, because the crate cannot do it for this cache:
//!
//! * a lifetime may come from the settings (`expire_after`, `urls_expire_after`, a per-request
//!   override), which the crate does not know, so the request's `max-age`, `min-fresh`,
//!   `max-stale` and `no-cache` are checked against the stored `expires`;
//! * a response reached through a redirect alias has another URI than the request, which the
//!   crate's `before_request` counts as a mismatch, so `Vary` is compared here;
//! * `stale-if-error` and `stale-while-revalidate` (RFC 5861) are not in the crate;
//! * the crate's 304 merge keeps one value per header name (a second `Set-Cookie` is lost) and
//!   drops header fields the stored response did not have, so the merge is done here.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, SystemTime};

use http_cache_semantics::{AfterResponse, CacheOptions, CachePolicy as RfcPolicy};

use crate::cache::{CachePolicy, CachedRequest, CachedResponse, ExpireAfter, Headers};
use crate::cache::{for_each_directive, parse_delta_seconds};

/// Delta-seconds above this (about 68 years) are read as this (RFC 9111 §1.2.2).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// How long `immutable` alone (without `max-age`) keeps a response fresh.
const IMMUTABLE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Header fields a 304 never updates (RFC 9111 §3.2), and hop-by-hop fields (RFC 9110 §7.6.1).
const NOT_UPDATED_BY_304: &[&str] = &[
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "content-range",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// The session's freshness settings.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Freshness {
    /// Serve a stale response when the origin fails, if stale by at most this much.
    pub stale_if_error: Option<Duration>,
    /// Serve a stale response at once and revalidate in the background, if stale by at most this.
    pub stale_while_revalidate: Option<Duration>,
    /// The `Last-Modified` heuristic: this fraction of the time since the last modification.
    pub heuristic: Option<f32>,
    /// Revalidate every cached response before use, fresh or not.
    pub always_revalidate: bool,
}

/// What a request asks of the cache: its `Cache-Control` (and `Pragma`) directives, merged
/// with the per-request options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ask {
    pub no_cache: bool,
    pub no_store: bool,
    pub max_age: Option<u64>,
    pub min_fresh: Option<u64>,
    /// `Some(None)`: any staleness is acceptable.
    pub max_stale: Option<Option<u64>>,
    pub only_if_cached: bool,
}

impl Ask {
    /// Reads the request directives from `headers`.
    pub fn from_headers(headers: &Headers) -> Self {
        let mut ask = Ask::default();
        for value in headers.get_all("cache-control") {
            for_each_directive(&String::from_utf8_lossy(value), |name, argument| {
                let seconds = || argument.map(|a| parse_delta_seconds(a).unwrap_or(0));
                match name.to_ascii_lowercase().as_str() {
                    "no-cache" => ask.no_cache = true,
                    "no-store" => ask.no_store = true,
                    "only-if-cached" => ask.only_if_cached = true,
                    "max-age" if ask.max_age.is_none() => {
                        ask.max_age = Some(seconds().unwrap_or(0))
                    }
                    "min-fresh" if ask.min_fresh.is_none() => {
                        ask.min_fresh = Some(seconds().unwrap_or(0))
                    }
                    "max-stale" if ask.max_stale.is_none() => ask.max_stale = Some(seconds()),
                    _ => {}
                }
            });
        }
        // `Pragma: no-cache` counts only without `Cache-Control` (RFC 9111 §5.4).
        if !headers.contains("cache-control")
            && headers.get_all("pragma").any(|v| {
                String::from_utf8_lossy(v)
                    .to_ascii_lowercase()
                    .contains("no-cache")
            })
        {
            ask.no_cache = true;
        }
        ask
    }
}

/// The response directives that matter once a response is stored.
#[derive(Clone, Copy, Debug, Default)]
struct Stored {
    must_revalidate: bool,
    immutable: bool,
    stale_if_error: Option<u64>,
    stale_while_revalidate: Option<u64>,
}

impl Stored {
    fn of(headers: &Headers) -> Self {
        let mut stored = Stored::default();
        for value in headers.get_all("cache-control") {
            for_each_directive(&String::from_utf8_lossy(value), |name, argument| {
                let seconds = || argument.and_then(parse_delta_seconds);
                match name.to_ascii_lowercase().as_str() {
                    // A private cache treats `proxy-revalidate` as not applying to it.
                    "must-revalidate" => stored.must_revalidate = true,
                    "immutable" => stored.immutable = true,
                    "stale-if-error" => stored.stale_if_error = seconds(),
                    "stale-while-revalidate" => stored.stale_while_revalidate = seconds(),
                    _ => {}
                }
            });
        }
        stored
    }
}

/// What to do with a stored response for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Serve it.
    Fresh,
    /// Serve it although stale: the request accepts that (`max-stale`).
    StaleAccepted,
    /// Ask the origin first; with `background`, serve it now and revalidate in the background
    /// (`stale-while-revalidate`).
    Validate { background: bool },
}

/// The `Age` header of a stored response, capped.
fn age_header(headers: &Headers) -> Duration {
    let seconds = headers
        .get_str("age")
        .and_then(|v| parse_delta_seconds(v.trim()))
        .unwrap_or(0);
    Duration::from_secs(seconds.min(MAX_DELTA_SECONDS))
}

/// When `entry` stops being fresh for this request: the per-request override counted from when
/// it was received, or its stored `expires`.
fn fresh_until(entry: &CachedResponse, expire_after: Option<ExpireAfter>) -> Option<SystemTime> {
    match expire_after {
        Some(e) => e.expires_at(entry.created_at),
        None => entry.expires,
    }
}

/// How long past `until` `now` is (zero while fresh, and for "never").
fn staleness(until: Option<SystemTime>, now: SystemTime) -> Duration {
    until
        .and_then(|u| now.duration_since(u).ok())
        .unwrap_or_default()
}

/// Whether `window` covers `stale`.
fn within(stale: Duration, window: Option<Duration>) -> bool {
    window.is_some_and(|w| stale <= w)
}

/// Decides how a stored response may serve a request (RFC 9111 §4.2 and §5.2.1, RFC 5861).
pub(crate) fn judge(
    entry: &CachedResponse,
    ask: &Ask,
    settings: &Freshness,
    expire_after: Option<ExpireAfter>,
    now: SystemTime,
) -> Verdict {
    let until = fresh_until(entry, expire_after);
    let fresh = until.is_none_or(|u| now < u);
    let stored = Stored::of(&entry.headers);
    let age = age_header(&entry.headers) + now.duration_since(entry.created_at).unwrap_or_default();
    let left = until.map(|u| u.duration_since(now).unwrap_or_default());

    // `immutable` (RFC 8246): while fresh, a reload need not ask the origin.
    let wants_validation = ask.no_cache || settings.always_revalidate;
    if wants_validation && !(fresh && stored.immutable) {
        return Verdict::Validate { background: false };
    }
    let young_enough = ask
        .max_age
        .is_none_or(|max| age <= Duration::from_secs(max));
    let lasts = ask
        .min_fresh
        .is_none_or(|min| left.is_none_or(|l| l >= Duration::from_secs(min)));
    if fresh && young_enough && lasts {
        return Verdict::Fresh;
    }
    if fresh {
        // Fresh, but not fresh enough for this request.
        return Verdict::Validate { background: false };
    }
    let stale = staleness(until, now);
    if stored.must_revalidate {
        return Verdict::Validate { background: false };
    }
    if let Some(max_stale) = ask.max_stale
        && max_stale.is_none_or(|m| stale <= Duration::from_secs(m))
    {
        return Verdict::StaleAccepted;
    }
    let window = stored
        .stale_while_revalidate
        .map(Duration::from_secs)
        .or(settings.stale_while_revalidate);
    Verdict::Validate {
        background: within(stale, window),
    }
}

/// Whether a stored response may be served because the origin failed (`stale-if-error`: the
/// response's own directive, or the setting unless the response says `must-revalidate`).
pub(crate) fn may_serve_on_error(
    entry: &CachedResponse,
    settings: &Freshness,
    expire_after: Option<ExpireAfter>,
    now: SystemTime,
) -> bool {
    let stale = staleness(fresh_until(entry, expire_after), now);
    let stored = Stored::of(&entry.headers);
    within(stale, stored.stale_if_error.map(Duration::from_secs))
        || (!stored.must_revalidate && within(stale, settings.stale_if_error))
}

/// Whether the request headers that `entry` varies on are those of `request` (`Vary: *`
/// never matches). Values are compared as sent, all of them, in order.
pub(crate) fn vary_matches(entry: &CachedResponse, request: &CachedRequest) -> bool {
    for value in entry.headers.get_all("vary") {
        for name in String::from_utf8_lossy(value).split(',') {
            let name = name.trim();
            if name == "*" {
                return false;
            }
            if name.is_empty() {
                continue;
            }
            let stored = entry.request.headers.get_all(name);
            if !stored.eq(request.headers.get_all(name)) {
                return false;
            }
        }
    }
    true
}

/// Adds the validators of `entry` to an outgoing request: `If-None-Match` from its `ETag`,
/// `If-Modified-Since` from its `Last-Modified` (RFC 9110 §13.1), unless the request has its
/// own.
pub(crate) fn add_validators(request: &mut CachedRequest, entry: &CachedResponse) {
    if let Some(etag) = entry.headers.get("etag")
        && !request.headers.contains("if-none-match")
    {
        request.headers.insert("If-None-Match", etag);
    }
    if let Some(modified) = entry.headers.get("last-modified")
        && !request.headers.contains("if-modified-since")
    {
        request.headers.insert("If-Modified-Since", modified);
    }
}

/// Whether the request carried validators the caller set itself (a 304 answer is then theirs).
pub(crate) fn has_own_validators(request: &CachedRequest) -> bool {
    request.headers.contains("if-none-match") || request.headers.contains("if-modified-since")
}

/// The freshness options given to `http-cache-semantics`: a private cache, the heuristic only
/// when enabled.
fn options(heuristic: Option<f32>) -> CacheOptions {
    CacheOptions {
        shared: false,
        cache_heuristic: heuristic.unwrap_or(0.0),
        immutable_min_time_to_live: IMMUTABLE_LIFETIME,
        ignore_cargo_cult: false,
    }
}

/// `http-cache-semantics`' view of a request and its response, received at `at`; `None` when
/// either is not valid HTTP (then the settings decide).
fn rfc_policy(
    request: &CachedRequest,
    response: &CachedResponse,
    at: SystemTime,
    heuristic: Option<f32>,
) -> Option<RfcPolicy> {
    let request_parts = request_parts(request)?;
    let response_parts = response_parts(response.status, &response.headers)?;
    // The crate adds `Age` to a duration unchecked: cap it so hostile values cannot overflow.
    guarded(|| RfcPolicy::new_options(&request_parts, &response_parts, at, options(heuristic)))
}

fn request_parts(request: &CachedRequest) -> Option<http::request::Parts> {
    let mut built = http::Request::new(());
    *built.method_mut() = http::Method::from_bytes(request.method.as_bytes()).ok()?;
    *built.uri_mut() = request.url.parse().ok()?;
    *built.headers_mut() = request.headers.to_header_map().ok()?;
    Some(built.into_parts().0)
}

fn response_parts(status: u16, headers: &Headers) -> Option<http::response::Parts> {
    let mut built = http::Response::new(());
    *built.status_mut() = http::StatusCode::from_u16(status).ok()?;
    let mut map = headers.to_header_map().ok()?;
    if let Some(age) = map.get("age") {
        let capped = age
            .to_str()
            .ok()
            .and_then(|v| parse_delta_seconds(v.trim()))
            .unwrap_or(0)
            .min(MAX_DELTA_SECONDS);
        map.insert(http::header::AGE, http::HeaderValue::from(capped));
    }
    *built.headers_mut() = map;
    Some(built.into_parts().0)
}

/// Runs a call into `http-cache-semantics`, turning a panic in it into `None`: foreign header
/// values must never bring the caller down.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Whether the response states its own freshness: `max-age`, `Expires`, `no-cache`,
/// `immutable`, or `Last-Modified` when the heuristic is on.
fn states_freshness(headers: &Headers, heuristic: Option<f32>) -> bool {
    let mut explicit =
        headers.contains("expires") || (heuristic.is_some() && headers.contains("last-modified"));
    for value in headers.get_all("cache-control") {
        for_each_directive(&String::from_utf8_lossy(value), |name, _| {
            explicit |= ["max-age", "no-cache", "immutable"]
                .iter()
                .any(|d| name.eq_ignore_ascii_case(d));
        });
    }
    explicit
}

/// When a response received at `now` stops being fresh (`None`: never), in this order: the
/// per-request `expire_after`; with `cache_control` on, the lifetime the response states
/// (computed by `http-cache-semantics`); then the cache policy (request `max-age`,
/// `urls_expire_after`, `expire_after`).
pub(crate) fn expires_for(
    policy: &CachePolicy,
    response: &CachedResponse,
    expire_after: Option<ExpireAfter>,
    heuristic: Option<f32>,
    now: SystemTime,
) -> Option<SystemTime> {
    if let Some(e) = expire_after {
        return e.expires_at(now);
    }
    if policy.cache_control && states_freshness(&response.headers, heuristic) {
        let lifetime = rfc_policy(response.original_request(), response, now, heuristic)
            .filter(|p| guarded(|| p.is_storable()).unwrap_or(false))
            .and_then(|p| guarded(|| p.time_to_live(now)));
        if let Some(lifetime) = lifetime {
            return Some(now.checked_add(lifetime).unwrap_or(now));
        }
    }
    policy.expires_for(response, now)
}

/// Whether a fetched response may be stored: the cache policy (method, status, filter,
/// `no-store`), not `DoNotCache` for this request, and not `Vary: *` (it could never match).
pub(crate) fn may_store(
    policy: &CachePolicy,
    response: &CachedResponse,
    expire_after: Option<ExpireAfter>,
) -> bool {
    let vary_star = response.headers.get_all("vary").any(|v| {
        String::from_utf8_lossy(v)
            .split(',')
            .any(|n| n.trim() == "*")
    });
    !vary_star && !expire_after.is_some_and(|e| e.is_do_not_cache()) && policy.should_save(response)
}

/// The stored response updated by a `304 Not Modified` (RFC 9111 §4.3.4), or `None` when the
/// 304's validators do not match it (then it cannot be used). The merged response counts as
/// received `now`: every header field of the 304 replaces the stored field of that name or is
/// added, except the ones a 304 never updates.
pub(crate) fn merge_not_modified(
    entry: &CachedResponse,
    not_modified: &CachedResponse,
    heuristic: Option<f32>,
    now: SystemTime,
) -> Option<CachedResponse> {
    let policy = rfc_policy(&entry.request, entry, entry.created_at, heuristic)?;
    let request = request_parts(&not_modified.request)?;
    let answer = response_parts(not_modified.status, &not_modified.headers)?;
    let after = guarded(|| policy.after_response(&request, &answer, now))?;
    if !matches!(after, AfterResponse::NotModified(..)) {
        return None;
    }
    let mut merged = entry.clone();
    let updated: Vec<String> = not_modified
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| !NOT_UPDATED_BY_304.contains(&name.as_str()))
        .collect();
    merged
        .headers
        .retain(|name, _| !updated.iter().any(|u| u.eq_ignore_ascii_case(name)));
    for (name, value) in not_modified.headers.iter() {
        if updated.iter().any(|u| u.eq_ignore_ascii_case(name)) {
            merged.headers.append(name, value);
        }
    }
    merged.created_at = crate::cache::epoch_millis::truncate(now);
    merged.request = not_modified.request.clone();
    merged.history = not_modified.history.clone();
    merged.url.clone_from(&not_modified.url);
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    fn entry(headers: &[(&str, &str)], created: u64, expires: Option<u64>) -> CachedResponse {
        let mut r = CachedResponse::new(CachedRequest::new("GET", "https://o.test/a"), 200, vec![]);
        r.headers = headers.iter().copied().collect();
        r.created_at = at(created);
        r.expires = expires.map(at);
        r
    }

    fn ask(cache_control: &str) -> Ask {
        Ask::from_headers(&[("Cache-Control", cache_control)].into_iter().collect())
    }

    const NONE: Freshness = Freshness {
        stale_if_error: None,
        stale_while_revalidate: None,
        heuristic: None,
        always_revalidate: false,
    };

    #[test]
    fn request_directives_are_read() {
        let a = ask("No-Cache, max-age=5, min-fresh=\"7\", max-stale, only-if-cached, no-store");
        assert!(a.no_cache && a.no_store && a.only_if_cached);
        assert_eq!(
            (a.max_age, a.min_fresh, a.max_stale),
            (Some(5), Some(7), Some(None))
        );
        assert_eq!(ask("max-stale=30").max_stale, Some(Some(30)));
        assert_eq!(ask("max-age=99999999999999999999").max_age, Some(1 << 31));
        let pragma: Headers = [("Pragma", "no-cache")].into_iter().collect();
        assert!(Ask::from_headers(&pragma).no_cache);
        let both: Headers = [("Pragma", "no-cache"), ("Cache-Control", "max-age=1")]
            .into_iter()
            .collect();
        assert!(!Ask::from_headers(&both).no_cache);
    }

    #[test]
    fn fresh_stale_and_request_limits() {
        let e = entry(&[], 0, Some(100));
        let none = Ask::default();
        assert_eq!(judge(&e, &none, &NONE, None, at(50)), Verdict::Fresh);
        assert_eq!(
            judge(&e, &none, &NONE, None, at(100)),
            Verdict::Validate { background: false }
        );
        assert_eq!(
            judge(&e, &ask("max-age=10"), &NONE, None, at(50)),
            Verdict::Validate { background: false }
        );
        assert_eq!(
            judge(&e, &ask("max-age=60"), &NONE, None, at(50)),
            Verdict::Fresh
        );
        assert_eq!(
            judge(&e, &ask("min-fresh=60"), &NONE, None, at(50)),
            Verdict::Validate { background: false }
        );
        assert_eq!(
            judge(&e, &ask("max-stale=20"), &NONE, None, at(110)),
            Verdict::StaleAccepted
        );
        assert_eq!(
            judge(&e, &ask("max-stale=5"), &NONE, None, at(110)),
            Verdict::Validate { background: false }
        );
        assert_eq!(
            judge(&e, &ask("max-stale"), &NONE, None, at(10_000)),
            Verdict::StaleAccepted
        );
        // A per-request lifetime replaces the stored one, counted from reception.
        let short = Some(ExpireAfter::After(Duration::from_secs(10)));
        assert_eq!(
            judge(&e, &none, &NONE, short, at(50)),
            Verdict::Validate { background: false }
        );
        let never = entry(&[], 0, None);
        assert_eq!(
            judge(&never, &ask("min-fresh=999999"), &NONE, None, at(5)),
            Verdict::Fresh
        );
    }

    #[test]
    fn age_header_counts_toward_request_max_age() {
        let e = entry(&[("Age", "100")], 0, Some(1000));
        assert_eq!(
            judge(&e, &ask("max-age=50"), &NONE, None, at(1)),
            Verdict::Validate { background: false }
        );
        let hostile = entry(&[("Age", "18446744073709551615")], 0, Some(1000));
        assert_eq!(
            judge(&hostile, &ask("max-age=50"), &NONE, None, at(1)),
            Verdict::Validate { background: false }
        );
    }

    #[test]
    fn no_cache_must_revalidate_and_immutable() {
        let e = entry(&[], 0, Some(100));
        let revalidate = Verdict::Validate { background: false };
        assert_eq!(judge(&e, &ask("no-cache"), &NONE, None, at(1)), revalidate);
        let always = Freshness {
            always_revalidate: true,
            ..NONE
        };
        assert_eq!(judge(&e, &Ask::default(), &always, None, at(1)), revalidate);
        let immutable = entry(&[("Cache-Control", "max-age=100, immutable")], 0, Some(100));
        assert_eq!(
            judge(&immutable, &ask("no-cache"), &NONE, None, at(1)),
            Verdict::Fresh
        );
        assert_eq!(
            judge(&immutable, &ask("no-cache"), &NONE, None, at(200)),
            revalidate
        );
        let strict = entry(&[("Cache-Control", "must-revalidate")], 0, Some(100));
        assert_eq!(
            judge(&strict, &ask("max-stale"), &NONE, None, at(200)),
            revalidate
        );
    }

    #[test]
    fn stale_windows_from_headers_and_settings() {
        let swr = Freshness {
            stale_while_revalidate: Some(Duration::from_secs(30)),
            stale_if_error: Some(Duration::from_secs(30)),
            ..NONE
        };
        let e = entry(&[], 0, Some(100));
        assert_eq!(
            judge(&e, &Ask::default(), &swr, None, at(120)),
            Verdict::Validate { background: true }
        );
        assert_eq!(
            judge(&e, &Ask::default(), &swr, None, at(140)),
            Verdict::Validate { background: false }
        );
        assert!(may_serve_on_error(&e, &swr, None, at(120)));
        assert!(!may_serve_on_error(&e, &swr, None, at(140)));
        assert!(!may_serve_on_error(&e, &NONE, None, at(101)));
        let header = entry(
            &[(
                "Cache-Control",
                "max-age=100, stale-while-revalidate=60, stale-if-error=60",
            )],
            0,
            Some(100),
        );
        assert_eq!(
            judge(&header, &Ask::default(), &NONE, None, at(150)),
            Verdict::Validate { background: true }
        );
        assert!(may_serve_on_error(&header, &NONE, None, at(150)));
        let strict = entry(&[("Cache-Control", "must-revalidate")], 0, Some(100));
        assert!(!may_serve_on_error(&strict, &swr, None, at(110)));
        assert_eq!(
            judge(&strict, &Ask::default(), &swr, None, at(110)),
            Verdict::Validate { background: false }
        );
    }

    #[test]
    fn vary_compares_the_named_request_headers() {
        let mut e = entry(&[("Vary", "Accept, accept-language")], 0, None);
        e.request.headers.append("Accept", "text/html");
        let mut same = CachedRequest::new("GET", "https://o.test/a");
        same.headers.append("accept", "text/html");
        assert!(vary_matches(&e, &same));
        same.headers.append("Accept-Language", "fr");
        assert!(!vary_matches(&e, &same));
        let other = CachedRequest::new("GET", "https://o.test/a");
        assert!(!vary_matches(&e, &other));
        let star = entry(&[("Vary", "*")], 0, None);
        assert!(!vary_matches(&star, &other));
    }

    fn lifetime(headers: &[(&str, &str)], heuristic: Option<f32>) -> Option<Duration> {
        let policy = CachePolicy::default()
            .with_cache_control(true)
            .with_expire_after(ExpireAfter::After(Duration::from_secs(7)));
        let mut r = entry(headers, 0, None);
        r.created_at = SystemTime::now();
        let now = r.created_at;
        expires_for(&policy, &r, None, heuristic, now).map(|e| e.duration_since(now).unwrap())
    }

    #[test]
    fn lifetimes_follow_the_response_then_the_settings() {
        let s = Duration::from_secs;
        assert_eq!(
            lifetime(&[("Cache-Control", "max-age=60")], None),
            Some(s(60))
        );
        assert_eq!(
            lifetime(&[("Cache-Control", "max-age=60"), ("Age", "20")], None),
            Some(s(40))
        );
        assert_eq!(lifetime(&[("Cache-Control", "no-cache")], None), Some(s(0)));
        assert_eq!(
            lifetime(&[("Cache-Control", "immutable")], None),
            Some(IMMUTABLE_LIFETIME)
        );
        assert_eq!(
            lifetime(
                &[
                    ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                    ("Expires", "Sun, 06 Nov 1994 08:50:37 GMT")
                ],
                None
            ),
            Some(s(60))
        );
        assert_eq!(lifetime(&[("Expires", "0")], None), Some(s(0)));
        // No stated freshness: the settings (`expire_after` = 7 s).
        assert_eq!(lifetime(&[], None), Some(s(7)));
        let modified = [
            ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("Last-Modified", "Sun, 06 Nov 1994 08:32:57 GMT"),
        ];
        assert_eq!(lifetime(&modified, None), Some(s(7)));
        assert_eq!(lifetime(&modified, Some(0.1)), Some(s(100)));
        // Hostile values do not panic.
        assert_eq!(
            lifetime(
                &[
                    ("Cache-Control", "max-age=60"),
                    ("Age", "18446744073709551615")
                ],
                None
            ),
            Some(s(0))
        );
        assert!(
            lifetime(
                &[("Cache-Control", "max-age=99999999999999999999999")],
                None
            )
            .is_some()
        );
    }

    #[test]
    fn a_matching_304_merges_every_field_and_a_mismatch_does_not() {
        let mut e = entry(
            &[
                ("ETag", "\"v1\""),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("Content-Length", "3"),
                ("Cache-Control", "max-age=1"),
            ],
            0,
            Some(1),
        );
        e.body = b"abc".to_vec();
        let request = CachedRequest::new("GET", "https://o.test/a");
        let mut answer = CachedResponse::new(request.clone(), 304, vec![]);
        answer.headers = [
            ("ETag", "\"v1\""),
            ("Cache-Control", "max-age=60"),
            ("X-New", "1"),
            ("Content-Length", "0"),
        ]
        .into_iter()
        .collect();
        let merged = merge_not_modified(&e, &answer, None, at(10)).expect("validators match");
        assert_eq!(merged.body, b"abc");
        assert_eq!(merged.headers.get_str("cache-control"), Some("max-age=60"));
        assert_eq!(merged.headers.get_str("x-new"), Some("1"));
        assert_eq!(merged.headers.get_str("content-length"), Some("3"));
        assert_eq!(merged.headers.get_all("set-cookie").count(), 2);
        assert_eq!(merged.created_at, at(10));
        answer.headers.insert("ETag", "\"v2\"");
        assert!(merge_not_modified(&e, &answer, None, at(10)).is_none());
    }
}
