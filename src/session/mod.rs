//! Transparent HTTP caching for blocking code: [`CachedSession`] (cargo feature `reqwest`).
//!
//! A session wraps a `reqwest::blocking::Client` and a [`DynamoDbCache`](crate::DynamoDbCache).
//! `session.get(url).header(..).send()` looks the request up, serves a fresh response from the
//! cache, revalidates a stale one with the origin (`If-None-Match` / `If-Modified-Since`; a
//! `304` refreshes the entry), or fetches and stores a new one. Each [`SessionResponse`] says
//! which of these happened ([`CacheStatus`]).
//!
//! The rules are those of RFC 9111 for a **private** cache, with requests-cache's settings as
//! the layer on top (`expire_after`, `urls_expire_after`, allowed codes and methods, `filter`).
//! The README's table lists what is honoured. In short:
//!
//! * **Lifetime** of a response, first that applies: the request's
//!   [`expire_after`](RequestBuilder::expire_after); the response's `Cache-Control:
//!   max-age`, `Expires` against `Date`, minus `Age`, `no-cache` (stored, always revalidated),
//!   `immutable` (a day without `max-age`), or the `Last-Modified` heuristic when
//!   [enabled](SessionBuilder::heuristic_freshness); then the cache's settings. Computed by the
//!   `http-cache-semantics` crate.
//! * **Not stored**: `no-store` (request or response), `Vary: *`, methods and statuses outside
//!   the cache's allowed ones (default `GET`/`HEAD` and `200`).
//! * **Request directives**: `no-cache` (or [`refresh`](RequestBuilder::refresh)), `max-age`,
//!   `min-fresh`, `max-stale`, `only-if-cached` (or
//!   [`only_if_cached`](RequestBuilder::only_if_cached): a `504` on a miss).
//! * **`Vary`**: the request headers a response varies on are stored with it; a request with
//!   other values is a miss (and its response replaces the entry).
//! * **Stale responses**: `must-revalidate` forbids serving them; `stale-if-error` and
//!   `stale-while-revalidate` (response directives or session settings) allow it.
//! * **Redirects** are followed by the session, each hop recorded as an alias of the final
//!   response.
//! * **Unsafe methods** (`POST`, `PUT`, `DELETE`, ...) that succeed remove the stored `GET`
//!   response for their URL.
//! * **Concurrency**: within one session, concurrent requests for one key send one request
//!   to the origin; the others wait and read what it stored.
//!
//! The blocking client cannot run inside an async runtime: calling [`RequestBuilder::send`]
//! there returns [`Error::Runtime`](crate::Error::Runtime). Async code uses the `http-cache`
//! backend ([`crate::http_cache`]) with `reqwest-middleware`.
//!
//! ```no_run
//! use dynamodict::session::{CacheStatus, CachedSession};
//!
//! let session = CachedSession::builder("http-cache").build()?;
//! let first = session.get("https://example.com/").send()?;
//! let second = session.get("https://example.com/").send()?;
//! assert_eq!(second.body, first.body);
//! println!("{:?} then {:?}", first.cache_status(), second.cache_status());
//! # Ok::<(), dynamodict::Error>(())
//! ```

mod builder;
mod cached_session;
mod fetch;
mod freshness;
mod inflight;
mod request;
mod response;

pub use builder::{
    DEFAULT_IGNORED_PARAMETERS, DEFAULT_MAX_REDIRECTS, DEFAULT_SESSION_GRACE, SessionBuilder,
};
pub use cached_session::CachedSession;
pub use request::RequestBuilder;
pub use response::{CacheStatus, SessionResponse, StaleReason};
