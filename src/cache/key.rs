//! Cache keys: which requests are "the same request", and redaction of stored requests.
//!
//! [`create_key`] turns a request into a 16-hex-digit key, like requests-cache's `create_key`:
//! requests that differ only in ways that do not matter (query parameter order, JSON key order,
//! host name case, a default port, a fragment, an ignored API-key parameter, ...) get the same
//! key; everything else gets a different one.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use url::Url;
use url::form_urlencoded;

use crate::cache::response::{CachedRequest, CachedResponse};
use crate::{Error, Result};

/// The value that [`redact`] puts in place of an ignored parameter's value.
pub const REDACTED: &str = "REDACTED";

/// Domain-separation tag that starts the hash input of version 1 keys.
const KEY_VERSION_TAG: &[u8] = b"dynamodict-key-v1";

/// Which request headers take part in the cache key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MatchHeaders {
    /// No header takes part (the default, as in requests-cache).
    #[default]
    None,
    /// Every header except the ignored ones.
    All,
    /// Only these headers (names compared ignoring ASCII case), except ignored ones.
    Only(Vec<String>),
}

impl MatchHeaders {
    /// [`MatchHeaders::Only`] from any list of names.
    pub fn only<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MatchHeaders::Only(names.into_iter().map(Into::into).collect())
    }

    fn selects(&self, name: &str) -> bool {
        match self {
            MatchHeaders::None => false,
            MatchHeaders::All => true,
            MatchHeaders::Only(names) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

/// Settings of [`create_key`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// Parameters that never take part in the key and are redacted before storage: URL query
    /// parameters and form fields (exact, case-sensitive names), top-level JSON body members
    /// (exact names) and headers (names compared ignoring ASCII case).
    pub ignored_parameters: Vec<String>,
    /// Which headers take part in the key.
    pub match_headers: MatchHeaders,
}

impl KeyOptions {
    /// Default options: no ignored parameters, no headers matched.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the ignored parameters.
    #[must_use]
    pub fn ignored_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignored_parameters = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets which headers are matched.
    #[must_use]
    pub fn match_headers(mut self, match_headers: MatchHeaders) -> Self {
        self.match_headers = match_headers;
        self
    }
}

/// A request that a cache key can be computed from.
///
/// Implemented for [`CachedRequest`] and for [`http::Request`] with any body that is a byte
/// slice (`Vec<u8>`, `&[u8]`, `String`, `bytes::Bytes`, ...), so keys can be computed
/// without copying the body.
pub trait KeySource {
    /// The request method as sent (any case).
    fn key_method(&self) -> &str;
    /// The absolute request URL.
    fn key_url(&self) -> Cow<'_, str>;
    /// Every header as `(name, value)`, in order.
    fn key_headers(&self) -> Vec<(&str, &[u8])>;
    /// The request body.
    fn key_body(&self) -> &[u8];
}

impl KeySource for CachedRequest {
    fn key_method(&self) -> &str {
        &self.method
    }

    fn key_url(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.url)
    }

    fn key_headers(&self) -> Vec<(&str, &[u8])> {
        self.headers.iter().collect()
    }

    fn key_body(&self) -> &[u8] {
        &self.body
    }
}

impl<B: AsRef<[u8]>> KeySource for http::Request<B> {
    fn key_method(&self) -> &str {
        self.method().as_str()
    }

    fn key_url(&self) -> Cow<'_, str> {
        Cow::Owned(self.uri().to_string())
    }

    fn key_headers(&self) -> Vec<(&str, &[u8])> {
        self.headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect()
    }

    fn key_body(&self) -> &[u8] {
        self.body().as_ref()
    }
}

impl<T: KeySource + ?Sized> KeySource for &T {
    fn key_method(&self) -> &str {
        (**self).key_method()
    }

    fn key_url(&self) -> Cow<'_, str> {
        (**self).key_url()
    }

    fn key_headers(&self) -> Vec<(&str, &[u8])> {
        (**self).key_headers()
    }

    fn key_body(&self) -> &[u8] {
        (**self).key_body()
    }
}

/// Computes the cache key of `request`: 16 lower-case hex digits.
///
/// # The key algorithm (version 1)
///
/// Keys are stored in tables and must not change between releases, so the exact algorithm is
/// part of this crate's compatibility promise. Any change to it will be a new, separately
/// named version.
///
/// Inputs: the request (anything implementing [`KeySource`]) and [`KeyOptions`]
/// (`ignored_parameters`, `match_headers`).
///
/// 1. **Method**: ASCII upper-cased (`get` → `GET`).
/// 2. **URL** ([`normalize_url`]):
///    * parsed as a WHATWG URL (the `url` crate): scheme and host are lower-cased, an IDN host is
///      converted to punycode, the scheme's default port is dropped, `.`/`..` path segments are
///      resolved, an empty `http(s)` path becomes `/`; a relative URL is an error
///      ([`Error::InvalidUrl`]);
///    * the fragment is dropped;
///    * the query is split at `&` into `name=value` pairs, each decoded as
///      `application/x-www-form-urlencoded` (`+` is a space, `%XX` escapes are decoded, invalid
///      UTF-8 becomes U+FFFD, a pair without `=` has an empty value, empty pairs are skipped);
///      pairs whose decoded name is exactly (case-sensitively) one of `ignored_parameters` are
///      removed; the rest are **stably** sorted by name (byte order), so repeated names keep
///      their relative order; they are re-encoded as `application/x-www-form-urlencoded`
///      (space → `+`; bytes other than ASCII alphanumerics and `*-._` → `%XX`, upper-case hex);
///      an empty result leaves no `?`.
/// 3. **Body**, depending on the media type of the first `Content-Type` header (the part before
///    any `;`, trimmed, ASCII lower-cased):
///    * `application/json` or any `…/…+json`: if the body parses as JSON, members of a top-level
///      object whose name is one of `ignored_parameters` are removed and the value is written
///      as canonical JSON: no whitespace; object members sorted by name (byte order of the
///      UTF-8 name) at every depth; array order kept; `true`, `false`, `null`; strings in
///      double quotes with `"` and `\` backslash-escaped, `\b \f \n \r \t` for those control
///      characters, other characters below U+0020 as `\u00xx` (lower-case hex) and everything
///      else as literal UTF-8; numbers that fit a `u64` or `i64` in decimal (`1`, `-2`); every
///      other number as the nearest `f64` in Rust's `{:e}` format, the shortest form that
///      round-trips (`1.0` → `1e0`, `2.5` → `2.5e0`, `0.1` → `1e-1`, `1e300` → `1e300`; so `1`
///      and `1.0` differ). A body that does not parse (including nesting deeper than 128
///      levels) is used as is;
///    * `application/x-www-form-urlencoded`: normalized exactly like the URL query above;
///    * anything else (or no `Content-Type`): the bytes as is.
/// 4. **Headers**, per [`MatchHeaders`]: none; all; or only the listed names (compared ignoring
///    ASCII case). Headers whose name is (ignoring ASCII case) one of `ignored_parameters` are
///    always left out. Each selected header becomes `(ASCII-lower-cased name, raw value
///    bytes)`; the list is stably sorted by name, so repeated headers keep their order.
/// 5. **Hash input**, where `field(x)` is the length of `x` in bytes as an unsigned 64-bit
///    big-endian integer followed by the bytes of `x`:
///
///    ```text
///    field("dynamodict-key-v1") field(method) field(url) field(body)
///    u64_be(number of headers) { field(name) field(value) } for each header
///    ```
///
///    Every field carries its length, so no two different inputs produce the same byte string
///    (there is no "`ab`+`c` = `a`+`bc`" ambiguity).
/// 6. **Key**: SHA-256 of the hash input; the first 8 bytes as 16 lower-case hex digits.
///
/// # Redaction
///
/// [`redact`] and [`redact_response`] replace the values of ignored parameters with
/// [`REDACTED`] in the URL query, a JSON or form body and the headers of a request before it is
/// stored, so API keys never reach the table. Because ignored parameters never take part in
/// the key, a redacted request has the same key as the original.
///
/// # Errors
/// [`Error::InvalidUrl`] when the request URL cannot be parsed as an absolute URL (the URL in
/// the error has ignored parameters redacted).
///
/// ```
/// use dynamodict::cache::{create_key, KeyOptions};
/// use dynamodict::cache::CachedRequest;
///
/// let opts = KeyOptions::new().ignored_parameters(["api_key"]);
/// let a = CachedRequest::new("GET", "https://Example.com:443/items?b=2&a=1&api_key=secret");
/// let b = CachedRequest::new("get", "https://example.com/items?a=1&b=2#top");
/// assert_eq!(create_key(&a, &opts)?, create_key(&b, &opts)?);
/// assert_eq!(create_key(&a, &opts)?.len(), 16);
/// # Ok::<(), dynamodict::Error>(())
/// ```
pub fn create_key<R: KeySource + ?Sized>(request: &R, opts: &KeyOptions) -> Result<String> {
    let ignored = opts.ignored_parameters.as_slice();
    let method = request.key_method().to_ascii_uppercase();
    let url = normalize_url(&request.key_url(), ignored)?;
    let headers = request.key_headers();
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| *v);
    let body = normalize_body(content_type, request.key_body(), ignored);

    let mut matched: Vec<(String, &[u8])> = headers
        .iter()
        .filter(|(name, _)| opts.match_headers.selects(name) && !is_ignored_header(name, ignored))
        .map(|(name, value)| (name.to_ascii_lowercase(), *value))
        .collect();
    matched.sort_by(|a, b| a.0.cmp(&b.0));

    let mut hasher = Sha256::new();
    hash_field(&mut hasher, KEY_VERSION_TAG);
    hash_field(&mut hasher, method.as_bytes());
    hash_field(&mut hasher, url.as_bytes());
    hash_field(&mut hasher, &body);
    hasher.update((matched.len() as u64).to_be_bytes());
    for (name, value) in &matched {
        hash_field(&mut hasher, name.as_bytes());
        hash_field(&mut hasher, value);
    }
    let digest = hasher.finalize();
    Ok(to_hex(&digest[..8]))
}

/// Normalizes a URL as step 2 of the [key algorithm](create_key#the-key-algorithm-version-1) describes: lower-cased scheme and
/// host, no default port, no fragment, query pairs without `ignored` names, sorted by name.
///
/// # Errors
/// [`Error::InvalidUrl`] when `url` is not an absolute URL (the URL in the error has ignored
/// parameters redacted).
///
/// ```
/// use dynamodict::cache::normalize_url;
///
/// let url = normalize_url("HTTPS://Example.COM:443/a/../b?z=1&a=2&token=x#frag", &["token"])?;
/// assert_eq!(url, "https://example.com/b?a=2&z=1");
/// # Ok::<(), dynamodict::Error>(())
/// ```
pub fn normalize_url<S: AsRef<str>>(url: &str, ignored: &[S]) -> Result<String> {
    let mut parsed = Url::parse(url).map_err(|e| Error::InvalidUrl {
        url: redact_url(url, ignored),
        reason: e.to_string(),
    })?;
    parsed.set_fragment(None);
    let query = parsed
        .query()
        .map(|q| normalize_form(q.as_bytes(), ignored));
    match query {
        Some(q) if !q.is_empty() => parsed.set_query(Some(&q)),
        _ => parsed.set_query(None),
    }
    Ok(parsed.into())
}

/// Returns a copy of `request` with the values of ignored parameters replaced by
/// [`REDACTED`]: URL query parameters, form fields and top-level JSON members (exact names),
/// and headers (names ignoring ASCII case; `Content-Type` is never redacted because body
/// normalization depends on it).
///
/// Everything else is kept byte for byte (a JSON body that needed redaction is re-serialized),
/// and the result has the same [`create_key`] as `request` for any options with the same
/// ignored parameters.
///
/// ```
/// use dynamodict::cache::{create_key, redact, KeyOptions};
/// use dynamodict::cache::CachedRequest;
///
/// let mut request = CachedRequest::new("GET", "https://api.test/v1?q=rust&api_key=s3cr3t");
/// request.headers.append("Authorization", "Bearer s3cr3t");
/// let ignored = ["api_key", "Authorization"];
/// let redacted = redact(&request, &ignored);
/// assert_eq!(redacted.url, "https://api.test/v1?q=rust&api_key=REDACTED");
/// assert_eq!(redacted.headers.get_str("authorization"), Some("REDACTED"));
/// let opts = KeyOptions::new().ignored_parameters(ignored);
/// assert_eq!(create_key(&redacted, &opts)?, create_key(&request, &opts)?);
/// # Ok::<(), dynamodict::Error>(())
/// ```
pub fn redact<S: AsRef<str>>(request: &CachedRequest, ignored: &[S]) -> CachedRequest {
    let mut out = request.clone();
    redact_in_place(&mut out, ignored);
    out
}

/// Redacts a response before storage: its final URL, its request and, recursively, every
/// response of its redirect history (see [`redact`]).
pub fn redact_response<S: AsRef<str>>(response: &mut CachedResponse, ignored: &[S]) {
    if ignored.is_empty() {
        return;
    }
    response.url = redact_url(&response.url, ignored);
    redact_in_place(&mut response.request, ignored);
    for hop in &mut response.history {
        redact_response(hop, ignored);
    }
}

fn redact_in_place<S: AsRef<str>>(request: &mut CachedRequest, ignored: &[S]) {
    if ignored.is_empty() {
        return;
    }
    request.url = redact_url(&request.url, ignored);
    let content_type = request.headers.get("content-type").map(media_type);
    match content_type.as_deref().map(BodyKind::of) {
        Some(BodyKind::Json) => {
            if let Some(body) = redact_json(&request.body, ignored) {
                request.body = body;
            }
        }
        Some(BodyKind::Form) => {
            if let Some(body) = redact_query(&request.body, ignored) {
                request.body = body;
            }
        }
        _ => {}
    }
    let redacts =
        |name: &str| is_ignored_header(name, ignored) && !name.eq_ignore_ascii_case("content-type");
    if request.headers.iter().any(|(name, _)| redacts(name)) {
        request.headers = request
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if redacts(name) {
                    REDACTED.as_bytes()
                } else {
                    value
                };
                (name, value)
            })
            .collect();
    }
}

// ---- helpers ---------------------------------------------------------------------------------

fn hash_field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    out
}

fn is_ignored<S: AsRef<str>>(name: &str, ignored: &[S]) -> bool {
    ignored.iter().any(|i| i.as_ref() == name)
}

fn is_ignored_header<S: AsRef<str>>(name: &str, ignored: &[S]) -> bool {
    ignored
        .iter()
        .any(|i| i.as_ref().eq_ignore_ascii_case(name))
}

/// The media type of a `Content-Type` value: before `;`, trimmed, ASCII lower-cased.
fn media_type(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .trim()
        .to_ascii_lowercase()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

impl BodyKind {
    fn of(media_type: &str) -> Self {
        if media_type == "application/json"
            || (media_type.ends_with("+json") && media_type.contains('/'))
        {
            BodyKind::Json
        } else if media_type == "application/x-www-form-urlencoded" {
            BodyKind::Form
        } else {
            BodyKind::Other
        }
    }
}

fn normalize_body<'a, S: AsRef<str>>(
    content_type: Option<&[u8]>,
    body: &'a [u8],
    ignored: &[S],
) -> Cow<'a, [u8]> {
    match content_type.map(|v| BodyKind::of(&media_type(v))) {
        Some(BodyKind::Json) => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(mut value) => {
                if let serde_json::Value::Object(map) = &mut value {
                    map.retain(|name, _| !is_ignored(name, ignored));
                }
                let mut out = Vec::with_capacity(body.len());
                write_canonical_json(&mut out, &value);
                Cow::Owned(out)
            }
            Err(_) => Cow::Borrowed(body),
        },
        Some(BodyKind::Form) => Cow::Owned(normalize_form(body, ignored).into_bytes()),
        _ => Cow::Borrowed(body),
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs, drops ignored names, sorts stably by
/// name and re-encodes.
fn normalize_form<S: AsRef<str>>(input: &[u8], ignored: &[S]) -> String {
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = form_urlencoded::parse(input)
        .filter(|(name, _)| !is_ignored(name, ignored))
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    form_urlencoded::Serializer::new(String::with_capacity(input.len()))
        .extend_pairs(pairs)
        .finish()
}

/// Writes `value` as canonical JSON (see step 3 of the module docs).
fn write_canonical_json(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    use std::io::Write as _;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // Writing to a Vec cannot fail.
            let _ = if let Some(u) = n.as_u64() {
                write!(out, "{u}")
            } else if let Some(i) = n.as_i64() {
                write!(out, "{i}")
            } else {
                write!(out, "{:e}", n.as_f64().unwrap_or(f64::NAN))
            };
        }
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (name, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(out, name);
                out.push(b':');
                write_canonical_json(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Writes a JSON string literal: `"` and `\` backslash-escaped; `\b \f \n \r \t` for those
/// control characters; other characters below U+0020 as `\u00xx` (lower-case hex); everything
/// else as literal UTF-8.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1F => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0F)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Redacts the query of a URL string without parsing (or re-encoding) anything else.
fn redact_url<S: AsRef<str>>(url: &str, ignored: &[S]) -> String {
    let fragment_start = url.find('#').unwrap_or(url.len());
    let Some(query_start) = url[..fragment_start].find('?').map(|q| q + 1) else {
        return url.to_owned();
    };
    match redact_query(&url.as_bytes()[query_start..fragment_start], ignored) {
        Some(query) => {
            let mut out = String::with_capacity(url.len() + 16);
            out.push_str(&url[..query_start]);
            // The input was a `str` and only ASCII was substituted, so this is valid UTF-8.
            out.push_str(&String::from_utf8_lossy(&query));
            out.push_str(&url[fragment_start..]);
            out
        }
        None => url.to_owned(),
    }
}

/// Replaces the values of ignored `name=value` pairs with [`REDACTED`], keeping every other
/// byte. Returns `None` when nothing was redacted.
fn redact_query<S: AsRef<str>>(query: &[u8], ignored: &[S]) -> Option<Vec<u8>> {
    let mut changed = false;
    let mut out = Vec::with_capacity(query.len() + 16);
    for (i, pair) in query.split(|&b| b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let raw_name = pair.split(|&b| b == b'=').next().unwrap_or(pair);
        let name_matches = !pair.is_empty()
            && form_urlencoded::parse(raw_name)
                .next()
                .is_some_and(|(name, _)| is_ignored(&name, ignored));
        if name_matches {
            out.extend_from_slice(raw_name);
            out.push(b'=');
            out.extend_from_slice(REDACTED.as_bytes());
            changed = true;
        } else {
            out.extend_from_slice(pair);
        }
    }
    changed.then_some(out)
}

/// Replaces ignored top-level members of a JSON object body; `None` when nothing changed.
fn redact_json<S: AsRef<str>>(body: &[u8], ignored: &[S]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let map = value.as_object_mut()?;
    let mut changed = false;
    for (name, item) in map.iter_mut() {
        if is_ignored(name, ignored) {
            *item = serde_json::Value::String(REDACTED.to_owned());
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> CachedRequest {
        CachedRequest::new("GET", url)
    }

    fn with_body(method: &str, url: &str, content_type: &str, body: &str) -> CachedRequest {
        let mut r = CachedRequest::new(method, url);
        r.headers.append("Content-Type", content_type);
        r.body = body.as_bytes().to_vec();
        r
    }

    fn key(r: &CachedRequest, opts: &KeyOptions) -> String {
        create_key(r, opts).unwrap()
    }

    fn plain() -> KeyOptions {
        KeyOptions::default()
    }

    // ---- golden keys: these values are a compatibility promise --------------------------

    // The expected values were cross-checked against an independent implementation of the
    // documented algorithm (Python hashlib), not only copied from this one's output.
    // Changing any of them breaks every existing cache table: don't.

    #[test]
    fn golden_keys() {
        let ignored = KeyOptions::new().ignored_parameters(["api_key", "token"]);
        let cases: Vec<(&str, CachedRequest, KeyOptions, &str)> = vec![
            (
                "simple GET",
                get("https://example.com/"),
                plain(),
                "ce41f31d7f5bf2dc",
            ),
            (
                "HEAD, same URL",
                CachedRequest::new("HEAD", "https://example.com/"),
                plain(),
                "06d403c44bd34ad7",
            ),
            (
                "query order",
                get("https://example.com/search?b=2&a=1"),
                plain(),
                "c583381b9f355f71",
            ),
            (
                "ignored param",
                get("https://example.com/search?a=1&api_key=secret&b=2"),
                ignored.clone(),
                "c583381b9f355f71",
            ),
            (
                "JSON body",
                with_body(
                    "POST",
                    "https://example.com/api",
                    "application/json",
                    r#"{"b": [1, 2.5, {"y": null, "x": true}], "a": "é\n"}"#,
                ),
                plain(),
                "e112862c10ac78bc",
            ),
            (
                "JSON body, ignored member",
                with_body(
                    "POST",
                    "https://example.com/api",
                    "application/json; charset=utf-8",
                    r#"{"token": "t", "a": "é\n", "b": [1, 2.5, {"x": true, "y": null}]}"#,
                ),
                ignored.clone(),
                "e112862c10ac78bc",
            ),
            (
                "form body",
                with_body(
                    "POST",
                    "https://example.com/form",
                    "application/x-www-form-urlencoded",
                    "z=last&a=first+word&token=x",
                ),
                ignored.clone(),
                "fad00f58338ac928",
            ),
            (
                "opaque body",
                with_body(
                    "PUT",
                    "https://example.com/blob",
                    "application/octet-stream",
                    "\u{1}raw",
                ),
                plain(),
                "d6493894495a78bc",
            ),
            (
                "header matching",
                {
                    let mut r = get("https://example.com/");
                    r.headers.append("Accept", "application/json");
                    r.headers.append("User-Agent", "x");
                    r
                },
                KeyOptions::new().match_headers(MatchHeaders::only(["accept"])),
                "944f94e3529b3be9",
            ),
            (
                "all headers",
                {
                    let mut r = get("https://example.com/");
                    r.headers.append("Accept", "application/json");
                    r.headers.append("Token", "ignored");
                    r.headers.append("X-Id", "7");
                    r
                },
                ignored.clone().match_headers(MatchHeaders::All),
                "33e79b830e8ea9d9",
            ),
            (
                "IDN host, default port, fragment, repeated names keep their order",
                get("HTTPS://Bücher.Example:443/list?y=a%20b&x=2&x=1#top"),
                plain(),
                "a47aaccd3f45af1f",
            ),
        ];
        let mut failures = Vec::new();
        for (name, request, opts, expected) in &cases {
            let actual = key(request, opts);
            if actual != *expected {
                failures.push(format!("{name}: expected {expected}, got {actual}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    // ---- equivalences -------------------------------------------------------------------

    #[test]
    fn equivalent_urls_share_a_key() {
        let base = key(&get("https://example.com/a/b?x=1&y=2"), &plain());
        for url in [
            "HTTPS://EXAMPLE.COM/a/b?x=1&y=2",
            "https://example.com:443/a/b?x=1&y=2",
            "https://example.com/a/./c/../b?y=2&x=1",
            "https://example.com/a/b?x=1&y=2#fragment",
            "https://example.com/a/b?x=%31&y=2",
            "https://example.com/a/b?&x=1&&y=2",
        ] {
            assert_eq!(key(&get(url), &plain()), base, "{url}");
        }
        let method = CachedRequest::new("get", "https://example.com/a/b?x=1&y=2");
        assert_eq!(key(&method, &plain()), base);
    }

    #[test]
    fn different_requests_get_different_keys() {
        let keys = [
            key(&get("https://example.com/a"), &plain()),
            key(&get("http://example.com/a"), &plain()),
            key(&get("https://example.com/A"), &plain()),
            key(&get("https://example.com:8443/a"), &plain()),
            key(&get("https://example.org/a"), &plain()),
            key(&get("https://example.com/a?x=1"), &plain()),
            key(&get("https://example.com/a?x=2"), &plain()),
            key(&get("https://example.com/a?x=1&x=2"), &plain()),
            key(&get("https://example.com/a?x=2&x=1"), &plain()),
            key(
                &CachedRequest::new("POST", "https://example.com/a"),
                &plain(),
            ),
            key(
                &with_body("POST", "https://example.com/a", "text/plain", "1"),
                &plain(),
            ),
            key(
                &with_body("POST", "https://example.com/a", "text/plain", "2"),
                &plain(),
            ),
        ];
        let mut sorted = keys.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "{keys:?}");
    }

    #[test]
    fn fields_are_length_prefixed() {
        // Shifting bytes between method, URL path and body must change the key.
        let a = with_body("POST", "https://example.com/ab", "text/plain", "c");
        let b = with_body("POST", "https://example.com/a", "text/plain", "bc");
        assert_ne!(key(&a, &plain()), key(&b, &plain()));
        // Shifting bytes between a header name and value must change the key.
        let opts = KeyOptions::new().match_headers(MatchHeaders::All);
        let mut c = get("https://example.com/");
        c.headers.append("x-a", "bc");
        let mut d = get("https://example.com/");
        d.headers.append("x-ab", "c");
        assert_ne!(key(&c, &opts), key(&d, &opts));
    }

    #[test]
    fn json_bodies_normalize() {
        let a = with_body(
            "POST",
            "https://e.test/",
            "application/json",
            r#"{"a":1,"b":{"d":2,"c":3}}"#,
        );
        let b = with_body(
            "POST",
            "https://e.test/",
            "Application/JSON; charset=UTF-8",
            "{ \"b\" : { \"c\" : 3, \"d\" : 2 },\n \"a\" : 1 }",
        );
        assert_eq!(key(&a, &plain()), key(&b, &plain()));
        let vendor = with_body(
            "POST",
            "https://e.test/",
            "application/vnd.api+json",
            r#"{ "b":{"c":3,"d":2}, "a":1 }"#,
        );
        assert_eq!(key(&a, &plain()), key(&vendor, &plain()));
        // Array order matters.
        let c = with_body("POST", "https://e.test/", "application/json", "[1,2]");
        let d = with_body("POST", "https://e.test/", "application/json", "[2,1]");
        assert_ne!(key(&c, &plain()), key(&d, &plain()));
        // Invalid JSON is used as is.
        let e = with_body("POST", "https://e.test/", "application/json", "{not json");
        let f = with_body("POST", "https://e.test/", "text/plain", "{not json");
        assert_eq!(key(&e, &plain()), key(&f, &plain()));
        // Ignored members only at the top level.
        let opts = plain().ignored_parameters(["secret"]);
        let g = with_body(
            "POST",
            "https://e.test/",
            "application/json",
            r#"{"a":1,"secret":"x"}"#,
        );
        let h = with_body("POST", "https://e.test/", "application/json", r#"{"a":1}"#);
        assert_eq!(key(&g, &opts), key(&h, &opts));
        let nested = with_body(
            "POST",
            "https://e.test/",
            "application/json",
            r#"{"a":{"secret":"x"}}"#,
        );
        let nested2 = with_body("POST", "https://e.test/", "application/json", r#"{"a":{}}"#);
        assert_ne!(key(&nested, &opts), key(&nested2, &opts));
    }

    #[test]
    fn canonical_json_output() {
        let value: serde_json::Value = serde_json::from_str(
            r#"{"z":[1,-2,2.5,1.0,1e300,"a\"b\u0001\n",false,null],"a":{"c":{},"b":[]}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_canonical_json(&mut out, &value);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"b":[],"c":{}},"z":[1,-2,2.5e0,1e0,1e300,"a\"b\u0001\n",false,null]}"#
        );
    }

    #[test]
    fn form_bodies_normalize() {
        let opts = plain().ignored_parameters(["csrf"]);
        let a = with_body(
            "POST",
            "https://e.test/",
            "application/x-www-form-urlencoded",
            "b=2&a=hello+world&csrf=123",
        );
        let b = with_body(
            "POST",
            "https://e.test/",
            "application/x-www-form-urlencoded; charset=utf-8",
            "a=hello%20world&b=2",
        );
        assert_eq!(key(&a, &opts), key(&b, &opts));
        let c = with_body(
            "POST",
            "https://e.test/",
            "application/x-www-form-urlencoded",
            "a=hello&b=2",
        );
        assert_ne!(key(&a, &opts), key(&c, &opts));
    }

    #[test]
    fn header_matching() {
        let mut a = get("https://e.test/");
        a.headers.append("Accept", "text/html");
        a.headers.append("X-Trace", "1");
        let mut b = get("https://e.test/");
        b.headers.append("accept", "text/html");
        b.headers.append("X-Trace", "2");
        let mut c = get("https://e.test/");
        c.headers.append("Accept", "application/json");

        // Default: headers do not matter.
        assert_eq!(key(&a, &plain()), key(&c, &plain()));
        // Only Accept: trace id does not matter, Accept does; name case does not.
        let only = plain().match_headers(MatchHeaders::only(["ACCEPT"]));
        assert_eq!(key(&a, &only), key(&b, &only));
        assert_ne!(key(&a, &only), key(&c, &only));
        // A listed header that is absent differs from one that is present.
        assert_ne!(key(&get("https://e.test/"), &only), key(&a, &only));
        // All headers, trace id ignored.
        let all = plain()
            .match_headers(MatchHeaders::All)
            .ignored_parameters(["x-trace"]);
        assert_eq!(key(&a, &all), key(&b, &all));
        assert_ne!(key(&a, &all), key(&c, &all));
        // Ignored headers are left out even when listed explicitly.
        let listed_and_ignored = plain()
            .match_headers(MatchHeaders::only(["X-Trace"]))
            .ignored_parameters(["X-Trace"]);
        assert_eq!(key(&a, &listed_and_ignored), key(&b, &listed_and_ignored));
        // Header order does not matter, but the order of repeated values does.
        let mut d = get("https://e.test/");
        d.headers.append("X-Trace", "1");
        d.headers.append("Accept", "text/html");
        let all_plain = plain().match_headers(MatchHeaders::All);
        assert_eq!(key(&a, &all_plain), key(&d, &all_plain));
        let mut e = get("https://e.test/");
        e.headers.append("X", "1");
        e.headers.append("X", "2");
        let mut f = get("https://e.test/");
        f.headers.append("X", "2");
        f.headers.append("X", "1");
        assert_ne!(key(&e, &all_plain), key(&f, &all_plain));
    }

    #[test]
    fn http_requests_and_cached_requests_agree() {
        let http_request = http::Request::builder()
            .method("POST")
            .uri("https://example.com/api?b=1&a=2")
            .header("Content-Type", "application/json")
            .header("Accept", "*/*")
            .body(br#"{"y":1,"x":2}"#.to_vec())
            .unwrap();
        let cached = CachedRequest::from(&http_request);
        let opts = plain().match_headers(MatchHeaders::All);
        assert_eq!(
            create_key(&http_request, &opts).unwrap(),
            create_key(&cached, &opts).unwrap()
        );
        let by_ref = &cached;
        assert_eq!(
            create_key(&by_ref, &opts).unwrap(),
            create_key(&cached, &opts).unwrap()
        );
    }

    #[test]
    fn invalid_urls_are_errors_and_hide_secrets() {
        let opts = plain().ignored_parameters(["api_key"]);
        for url in [
            "",
            "/relative?api_key=s3cr3t",
            "http://[::1/?api_key=s3cr3t",
            "not a url",
        ] {
            match create_key(&get(url), &opts) {
                Err(Error::InvalidUrl { url: shown, .. }) => {
                    assert!(!shown.contains("s3cr3t"), "{shown}")
                }
                other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
            }
        }
        let relative = http::Request::builder()
            .uri("/path")
            .body(Vec::<u8>::new())
            .unwrap();
        assert!(create_key(&relative, &opts).is_err());
    }

    #[test]
    fn normalize_url_examples() {
        let none: &[&str] = &[];
        assert_eq!(
            normalize_url("http://Example.com:80", none).unwrap(),
            "http://example.com/"
        );
        assert_eq!(
            normalize_url("https://example.com/?", none).unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            normalize_url("https://example.com/p?only=1", &["only"]).unwrap(),
            "https://example.com/p"
        );
        assert_eq!(
            normalize_url("https://example.com/p?flag&q=a b", none).unwrap(),
            "https://example.com/p?flag=&q=a+b"
        );
        assert_eq!(
            normalize_url("https://bücher.example/", none).unwrap(),
            "https://xn--bcher-kva.example/"
        );
    }

    // ---- redaction ----------------------------------------------------------------------

    #[test]
    fn redaction_hides_secrets_and_keeps_keys() {
        let ignored = ["api_key", "password", "Authorization"];
        let opts = plain()
            .ignored_parameters(ignored)
            .match_headers(MatchHeaders::All);
        let cases = [
            {
                let mut r = get("https://e.test/a?z=1&api_key=s3cr3t&b=%20x#frag");
                r.headers.append("authorization", "Bearer s3cr3t");
                r.headers.append("Accept", "*/*");
                r
            },
            with_body(
                "POST",
                "https://e.test/login",
                "application/json",
                r#"{"user":"bob","password":"s3cr3t","nested":{"password":"kept"}}"#,
            ),
            with_body(
                "POST",
                "https://e.test/login",
                "application/x-www-form-urlencoded",
                "user=bob&password=s3cr3t&password=again",
            ),
        ];
        for original in &cases {
            let redacted = redact(original, &ignored);
            let text = format!(
                "{} {:?} {}",
                redacted.url,
                redacted.headers,
                String::from_utf8_lossy(&redacted.body)
            );
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.contains(REDACTED), "{text}");
            assert_eq!(key(original, &opts), key(&redacted, &opts), "{text}");
            // Redaction is idempotent.
            assert_eq!(redact(&redacted, &ignored), redacted);
        }
        // Everything else is kept byte for byte.
        let redacted = redact(&cases[0], &ignored);
        assert_eq!(
            redacted.url,
            "https://e.test/a?z=1&api_key=REDACTED&b=%20x#frag"
        );
        assert_eq!(redacted.headers.get_str("accept"), Some("*/*"));
        let form = redact(&cases[2], &ignored);
        assert_eq!(form.body, b"user=bob&password=REDACTED&password=REDACTED");
    }

    #[test]
    fn redaction_without_matches_changes_nothing() {
        let r = with_body(
            "POST",
            "https://e.test/?a=1",
            "application/json",
            r#"{ "b" : 1 }"#,
        );
        assert_eq!(redact(&r, &["x"]), r);
        let none: &[&str] = &[];
        assert_eq!(redact(&r, none), r);
        let invalid = with_body("POST", "not a url?x=1", "application/json", "{bad");
        assert_eq!(redact(&invalid, &["y"]), invalid);
        // Redaction works on URLs that do not parse.
        assert_eq!(
            redact(&get("::bad::?x=1&y=2"), &["x"]).url,
            "::bad::?x=REDACTED&y=2"
        );
    }

    #[test]
    fn content_type_is_never_redacted() {
        let r = with_body(
            "POST",
            "https://e.test/",
            "application/json",
            r#"{"a":1,"k":2}"#,
        );
        let ignored = ["content-type", "k"];
        let redacted = redact(&r, &ignored);
        assert_eq!(
            redacted.headers.get_str("content-type"),
            Some("application/json")
        );
        let opts = plain().ignored_parameters(ignored);
        assert_eq!(key(&r, &opts), key(&redacted, &opts));
    }

    #[test]
    fn redact_response_covers_url_request_and_history() {
        let mut hop =
            CachedResponse::new(get("https://e.test/old?api_key=s3cr3t"), 302, Vec::new());
        hop.url = "https://e.test/old?api_key=s3cr3t".to_owned();
        let mut response =
            CachedResponse::new(get("https://e.test/new?api_key=s3cr3t"), 200, Vec::new());
        response.history.push(hop);
        redact_response(&mut response, &["api_key"]);
        let json = serde_json::to_string(&response).unwrap();
        assert!(!json.contains("s3cr3t"), "{json}");
        assert_eq!(response.url, "https://e.test/new?api_key=REDACTED");
        assert_eq!(
            response.history[0].request.url,
            "https://e.test/old?api_key=REDACTED"
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let opts = plain()
            .ignored_parameters(["a"])
            .match_headers(MatchHeaders::All);
        let mut r = with_body(
            "\u{e9}",
            "https://e.test/?%FF=%FE&a&=&&==",
            "application/x-www-form-urlencoded",
            "",
        );
        r.body = vec![0xFF, b'=', 0xFE, b'&', b'a', b'=', b'1'];
        r.headers.append("X", vec![0xFF]);
        r.headers.append("Content-Type", vec![0xFF, b';']);
        let _ = create_key(&r, &opts).unwrap();
        let _ = redact(&r, &["a", "\u{fffd}"]);
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let j = with_body("POST", "https://e.test/", "application/json", &deep);
        let _ = create_key(&j, &opts).unwrap();
        let _ = redact(&j, &["a"]);
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
