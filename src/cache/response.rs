//! Cached HTTP requests and responses: the values the response cache stores.
//!
//! [`CachedResponse`] is a plain, owned snapshot of an HTTP exchange: status, headers, body, the
//! final URL, the [`CachedRequest`] that produced it, redirect history and the two timestamps
//! the cache needs (`created_at`, `expires`). It implements serde's `Serialize` and
//! `Deserialize` and is designed to go through three kinds of encoders:
//!
//! * **compact binary formats** (bincode 2 via serde): bodies are length-prefixed byte strings
//!   (one `memcpy`, never one element per byte); each header set is a single packed byte
//!   string (see [`Headers`]), so decoding it costs one allocation however many fields it has;
//!   timestamps are integers (milliseconds since the Unix epoch, zig-zag varints in bincode);
//!   the HTTP version is a one-byte enum tag;
//! * **the document format** (`serde_dynamo`'s representation), which turns a response into a
//!   native DynamoDB map: bodies become the `B` (binary) type, header values that are valid
//!   UTF-8 become `S` strings, so an item stays browsable in the console;
//! * **JSON**: header values are strings when they are valid UTF-8 (a list of byte values
//!   otherwise). JSON has no byte type: the crate's JSON format
//!   ([`Serializer::json`](crate::Serializer::json)) writes bodies as base64 strings and reads
//!   them back from base64 or from a list of byte values (the form plain `serde_json`, and
//!   earlier versions of this crate, write).
//!
//! Field order matters for speed: the response body is the **last** field, so a serializer
//! that appends to a growing buffer copies a large body once and never has to grow (and copy)
//! the buffer again after it. For the fastest bincode round trip, encode into a buffer
//! pre-sized with [`CachedResponse::size_hint`] and decode with
//! `bincode::serde::borrow_decode_from_slice` (it copies a body straight out of the input,
//! where `decode_from_slice` first zero-fills a new buffer).
//!
//! Timestamps are stored with millisecond precision. [`CachedResponse::from_http`] truncates
//! `created_at` to whole milliseconds so a response survives an encode/decode round trip
//! unchanged.
//!
//! A response read back from storage is marked with [`CachedResponse::set_from_cache`]; the
//! flag is never serialized, so a freshly decoded value always says "not from cache" until the
//! storage layer says otherwise. When a response is turned back into an [`http::Response`] the
//! flag and the timestamps travel along as a [`CacheInfo`] extension.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

// ---- headers ---------------------------------------------------------------------------------

/// An ordered, multi-valued collection of HTTP header fields.
///
/// * Lookups are ASCII case-insensitive (`Content-Type` and `content-type` are the same field).
/// * Insertion order is kept, names keep the case they were given, and a name may occur
///   several times (e.g. `Set-Cookie`).
/// * Values are kept byte-exact: HTTP header values need not be UTF-8.
///
/// All fields live in one packed buffer (each field is the LEB128 length of the name, the
/// name, the LEB128 length of the value, the value) plus a small index, so a header set costs
/// two allocations however many fields it has.
///
/// Serialization:
/// * in binary formats (bincode, ...) the packed buffer is written as **one byte string**, so
///   decoding is a single copy and no per-field allocation;
/// * in human-readable formats (JSON, DynamoDB documents) it is a list of `[name, value]`
///   pairs, the value a string when it is valid UTF-8 and a list of bytes otherwise.
///
/// ```
/// use dynamodict::cache::Headers;
///
/// let mut h = Headers::new();
/// h.append("Set-Cookie", "a=1");
/// h.append("set-cookie", "b=2");
/// h.insert("Content-Type", "text/plain");
/// assert_eq!(h.get_str("content-type"), Some("text/plain"));
/// assert_eq!(h.get_all("SET-COOKIE").count(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    /// The packed fields, always compact (no removed fields left behind).
    buf: Vec<u8>,
    /// Where each field's name and value are in `buf`.
    index: Vec<Field>,
}

/// Byte ranges of one field in [`Headers::buf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    name_start: usize,
    name_end: usize,
    value_start: usize,
    value_end: usize,
}

impl Headers {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty collection with room for about `capacity` fields.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity.saturating_mul(32)),
            index: Vec::with_capacity(capacity),
        }
    }

    /// Number of fields (a name that occurs twice counts twice).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no fields at all.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn name_of(&self, field: &Field) -> &str {
        // Names are validated as UTF-8 when they enter the buffer.
        self.buf
            .get(field.name_start..field.name_end)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    fn value_of(&self, field: &Field) -> &[u8] {
        self.buf
            .get(field.value_start..field.value_end)
            .unwrap_or_default()
    }

    /// The first value of the field `name` (case-insensitive), if any.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of the field `name` (case-insensitive), if any and if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of the field `name` (case-insensitive), in insertion order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether the field `name` (case-insensitive) occurs at least once.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Adds a value for `name`, keeping any existing ones.
    pub fn append(&mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) {
        self.push_field(name.as_ref(), value.as_ref());
    }

    /// Sets the field `name` to the single value `value`.
    ///
    /// The value takes the place of the first existing occurrence (keeping its position, with
    /// the new name's spelling); any further occurrences are removed. When the field is absent
    /// it is appended.
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) {
        let (name, value) = (name.as_ref(), value.as_ref());
        if !self.contains(name) {
            self.push_field(name, value);
            return;
        }
        let mut out = Headers::with_capacity(self.len());
        let mut replaced = false;
        for (n, v) in self.iter() {
            if !n.eq_ignore_ascii_case(name) {
                out.push_field(n, v);
            } else if !replaced {
                out.push_field(name, value);
                replaced = true;
            }
        }
        *self = out;
    }

    /// Removes every occurrence of `name` (case-insensitive) and returns the first removed
    /// value, like [`http::HeaderMap::remove`].
    pub fn remove(&mut self, name: &str) -> Option<Vec<u8>> {
        let first = self.get(name)?.to_vec();
        self.retain(|n, _| !n.eq_ignore_ascii_case(name));
        Some(first)
    }

    /// Keeps only the fields for which `keep(name, value)` returns `true`.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &[u8]) -> bool) {
        let mut out = Headers::with_capacity(self.len());
        for (n, v) in self.iter() {
            if keep(n, v) {
                out.push_field(n, v);
            }
        }
        *self = out;
    }

    /// All fields in insertion order.
    pub fn iter(&self) -> HeaderIter<'_> {
        HeaderIter {
            headers: self,
            fields: self.index.iter(),
        }
    }

    /// Converts into an [`http::HeaderMap`].
    ///
    /// # Errors
    /// [`Error::Deserialize`] (with an empty key) when a name or value is not acceptable to the
    /// `http` crate (e.g. a name with spaces, a value with a line break).
    pub fn to_header_map(&self) -> Result<http::HeaderMap> {
        let mut map = http::HeaderMap::with_capacity(self.len());
        for (name, value) in self {
            let header_name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| http_error(format!("invalid header name {name:?}: {e}")))?;
            let header_value = http::HeaderValue::from_bytes(value)
                .map_err(|e| http_error(format!("invalid value for header {name:?}: {e}")))?;
            map.append(header_name, header_value);
        }
        Ok(map)
    }

    /// The size of the packed form in bytes (what binary formats write, plus a length prefix).
    pub fn packed_len(&self) -> usize {
        self.buf.len()
    }

    fn push_field(&mut self, name: &str, value: &[u8]) {
        write_varint(&mut self.buf, name.len());
        let name_start = self.buf.len();
        self.buf.extend_from_slice(name.as_bytes());
        let name_end = self.buf.len();
        write_varint(&mut self.buf, value.len());
        let value_start = self.buf.len();
        self.buf.extend_from_slice(value);
        self.index.push(Field {
            name_start,
            name_end,
            value_start,
            value_end: self.buf.len(),
        });
    }

    /// Indexes a packed buffer (as written by `push_field`), checking every length and that
    /// every name is UTF-8.
    fn from_packed(buf: Vec<u8>) -> std::result::Result<Self, &'static str> {
        // About one field per 16 bytes is a generous guess for real headers.
        let mut index = Vec::with_capacity((buf.len() / 16).min(64));
        let mut pos = 0;
        while pos < buf.len() {
            let (name_len, name_start) = read_varint(&buf, pos)?;
            let name_end = name_start
                .checked_add(name_len)
                .filter(|&end| end <= buf.len())
                .ok_or("a header name runs past the end")?;
            if std::str::from_utf8(&buf[name_start..name_end]).is_err() {
                return Err("a header name is not UTF-8");
            }
            let (value_len, value_start) = read_varint(&buf, name_end)?;
            let value_end = value_start
                .checked_add(value_len)
                .filter(|&end| end <= buf.len())
                .ok_or("a header value runs past the end")?;
            index.push(Field {
                name_start,
                name_end,
                value_start,
                value_end,
            });
            pos = value_end;
        }
        Ok(Self { buf, index })
    }
}

/// Appends `n` as an unsigned LEB128 varint.
fn write_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7F) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads an unsigned LEB128 varint at `pos`; returns it and the position after it.
fn read_varint(buf: &[u8], mut pos: usize) -> std::result::Result<(usize, usize), &'static str> {
    let mut value: usize = 0;
    let mut shift = 0u32;
    loop {
        let byte = *buf.get(pos).ok_or("a header length runs past the end")?;
        pos += 1;
        let bits = usize::from(byte & 0x7F);
        let shifted = bits
            .checked_shl(shift)
            .filter(|s| s >> shift == bits)
            .ok_or("a header length is too large")?;
        value |= shifted;
        if byte & 0x80 == 0 {
            return Ok((value, pos));
        }
        shift += 7;
        if shift >= usize::BITS {
            return Err("a header length is too large");
        }
    }
}

/// Iterator over the fields of a [`Headers`], as `(name, value)`.
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    headers: &'a Headers,
    fields: std::slice::Iter<'a, Field>,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let field = self.fields.next()?;
        Some((self.headers.name_of(field), self.headers.value_of(field)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl DoubleEndedIterator for HeaderIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let field = self.fields.next_back()?;
        Some((self.headers.name_of(field), self.headers.value_of(field)))
    }
}

impl ExactSizeIterator for HeaderIter<'_> {}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

impl IntoIterator for Headers {
    type Item = (String, Vec<u8>);
    type IntoIter = std::vec::IntoIter<(String, Vec<u8>)>;

    /// Owned `(name, value)` pairs, in order.
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
            .map(|(n, v)| (n.to_owned(), v.to_vec()))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl std::hash::Hash for Headers {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for (name, value) in self {
            name.hash(state);
            value.hash(state);
        }
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self {
            match std::str::from_utf8(value) {
                Ok(text) => list.entry(&(name, text)),
                Err(_) => list.entry(&(name, value)),
            };
        }
        list.finish()
    }
}

impl From<&http::HeaderMap> for Headers {
    fn from(map: &http::HeaderMap) -> Self {
        let mut out = Headers::with_capacity(map.len());
        for (name, value) in map {
            out.push_field(name.as_str(), value.as_bytes());
        }
        out
    }
}

impl TryFrom<&Headers> for http::HeaderMap {
    type Error = Error;

    fn try_from(headers: &Headers) -> Result<Self> {
        headers.to_header_map()
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut out = Headers::new();
        out.extend(iter);
        out
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Extend<(N, V)> for Headers {
    fn extend<I: IntoIterator<Item = (N, V)>>(&mut self, iter: I) {
        for (name, value) in iter {
            self.push_field(name.as_ref(), value.as_ref());
        }
    }
}

/// A header value on its way out in a human-readable format: a string when possible, bytes
/// otherwise.
///
/// [`ValueIn`] tells the two apart with `deserialize_any`, so in the crate's JSON format, which
/// writes byte strings as base64 strings, a non-UTF-8 value keeps the number-array form
/// (`crate::json::bytes_as_numbers`): as a string it would read back as its base64 text.
struct ValueOut<'a>(&'a [u8]);

impl Serialize for ValueOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => crate::json::bytes_as_numbers(|| serializer.serialize_bytes(self.0)),
        }
    }
}

/// A header value on its way in from a human-readable format: a string, a byte string or a
/// list of bytes.
struct ValueIn(Vec<u8>);

impl<'de> Deserialize<'de> for ValueIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = ValueIn;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value (string or bytes)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ValueIn, E> {
                Ok(ValueIn(v.as_bytes().to_vec()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<ValueIn, E> {
                Ok(ValueIn(v.into_bytes()))
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ValueIn, E> {
                Ok(ValueIn(v.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ValueIn, E> {
                Ok(ValueIn(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ValueIn, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(8192));
                while let Some(byte) = seq.next_element::<u8>()? {
                    out.push(byte);
                }
                Ok(ValueIn(out))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_bytes(&self.buf);
        }

        struct Entry<'a>(&'a str, &'a [u8]);

        impl Serialize for Entry<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut tuple = serializer.serialize_tuple(2)?;
                tuple.serialize_element(self.0)?;
                tuple.serialize_element(&ValueOut(self.1))?;
                tuple.end()
            }
        }

        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for (name, value) in self {
            seq.serialize_element(&Entry(name, value))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PackedVisitor;

        impl<'de> Visitor<'de> for PackedVisitor {
            type Value = Headers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a packed header block")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Headers, E> {
                self.visit_byte_buf(v.to_vec())
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Headers, E> {
                Headers::from_packed(v).map_err(E::custom)
            }
        }

        struct ListVisitor;

        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Headers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of [name, value] header pairs")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Headers, A::Error> {
                // Cap the pre-allocation: the hint comes from untrusted input.
                let mut out = Headers::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some((name, ValueIn(value))) = seq.next_element::<(String, ValueIn)>()? {
                    out.push_field(&name, &value);
                }
                Ok(out)
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_seq(ListVisitor)
        } else {
            deserializer.deserialize_byte_buf(PackedVisitor)
        }
    }
}

// ---- timestamps ------------------------------------------------------------------------------

/// Serde helpers that store a [`SystemTime`] as signed milliseconds since the Unix epoch.
///
/// Used by [`CachedResponse`]; public so that storage code can encode timestamps the same way
/// (`#[serde(with = "epoch_millis")]`, or `epoch_millis::option` for `Option<SystemTime>`).
/// Sub-millisecond precision is dropped (truncated towards the past); times too far from the
/// epoch to fit an `i64` of milliseconds saturate.
pub mod epoch_millis {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Milliseconds since the Unix epoch (negative before it), saturating at the `i64` range.
    pub fn to_millis(time: SystemTime) -> i64 {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => {
                // Round towards the past so truncation is consistent on both sides of the epoch.
                let before = before.duration();
                let mut millis = before.as_millis();
                if before.subsec_nanos() % 1_000_000 != 0 {
                    millis += 1;
                }
                i64::try_from(millis).map(|m| -m).unwrap_or(i64::MIN)
            }
        }
    }

    /// The time `millis` milliseconds after (or before, when negative) the Unix epoch, or
    /// `None` when the platform's `SystemTime` cannot represent it.
    pub fn from_millis(millis: i64) -> Option<SystemTime> {
        let magnitude = Duration::from_millis(millis.unsigned_abs());
        if millis >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        }
    }

    /// `time` truncated to whole milliseconds (what survives a round trip through this module).
    pub fn truncate(time: SystemTime) -> SystemTime {
        from_millis(to_millis(time)).unwrap_or(time)
    }

    /// Serializes a timestamp as an `i64` of epoch milliseconds.
    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(to_millis(*time))
    }

    /// Deserializes a timestamp written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let millis = i64::deserialize(deserializer)?;
        from_millis(millis)
            .ok_or_else(|| de::Error::custom(format_args!("timestamp {millis} ms is out of range")))
    }

    /// The same for `Option<SystemTime>` (`None` is serialized as the format's "none").
    pub mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer, de};

        /// Serializes an optional timestamp as an optional `i64` of epoch milliseconds.
        pub fn serialize<S: Serializer>(
            time: &Option<SystemTime>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(t) => serializer.serialize_some(&super::to_millis(*t)),
                None => serializer.serialize_none(),
            }
        }

        /// Deserializes an optional timestamp written by [`serialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            match Option::<i64>::deserialize(deserializer)? {
                Some(millis) => super::from_millis(millis).map(Some).ok_or_else(|| {
                    de::Error::custom(format_args!("timestamp {millis} ms is out of range"))
                }),
                None => Ok(None),
            }
        }
    }
}

// ---- version ---------------------------------------------------------------------------------

/// The HTTP protocol version of a response.
///
/// Serialized as `"HTTP/1.1"` etc. in human-readable formats and as a one-byte tag in binary
/// ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HttpVersion {
    /// HTTP/0.9
    #[serde(rename = "HTTP/0.9")]
    Http09,
    /// HTTP/1.0
    #[serde(rename = "HTTP/1.0")]
    Http10,
    /// HTTP/1.1 (the default)
    #[default]
    #[serde(rename = "HTTP/1.1")]
    Http11,
    /// HTTP/2
    #[serde(rename = "HTTP/2")]
    Http2,
    /// HTTP/3
    #[serde(rename = "HTTP/3")]
    Http3,
}

impl HttpVersion {
    /// The protocol name as written on a status line, e.g. `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http09 => "HTTP/0.9",
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2",
            HttpVersion::Http3 => "HTTP/3",
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<http::Version> for HttpVersion {
    /// Maps the `http` crate's version; a version this enum does not know becomes `Http11`.
    fn from(version: http::Version) -> Self {
        if version == http::Version::HTTP_09 {
            HttpVersion::Http09
        } else if version == http::Version::HTTP_10 {
            HttpVersion::Http10
        } else if version == http::Version::HTTP_2 {
            HttpVersion::Http2
        } else if version == http::Version::HTTP_3 {
            HttpVersion::Http3
        } else {
            HttpVersion::Http11
        }
    }
}

impl From<HttpVersion> for http::Version {
    fn from(version: HttpVersion) -> Self {
        match version {
            HttpVersion::Http09 => http::Version::HTTP_09,
            HttpVersion::Http10 => http::Version::HTTP_10,
            HttpVersion::Http11 => http::Version::HTTP_11,
            HttpVersion::Http2 => http::Version::HTTP_2,
            HttpVersion::Http3 => http::Version::HTTP_3,
        }
    }
}

// ---- request ---------------------------------------------------------------------------------

/// The request that produced a cached response.
///
/// Before it is stored, the cache redacts it (see
/// [`redact`](crate::cache::redact)) so that ignored parameters such as API keys never
/// reach the table.
///
/// ```
/// use dynamodict::cache::{CachedRequest, CachedResponse, DynamoDbCache};
///
/// let cache = DynamoDbCache::builder("doc-http-cache")
///     .namespace("doc-request")
///     .allowed_methods(["GET", "POST"])
///     .ignored_parameters(["token"]) // left out of the key, and redacted before storage
///     .local()
///     .build()?;
///
/// let mut search = CachedRequest::new("POST", "https://example.com/search");
/// search.headers.insert("Content-Type", "application/json");
/// search.body = br#"{"q": "rust", "page": 1, "token": "SECRET"}"#.to_vec();
/// let response = CachedResponse::new(search.clone(), 200, b"results".to_vec());
/// cache.save_response(&response, None, None)?;
///
/// // The same search from an `http::Request`: other case, member order and token, same key.
/// let again = dynamodict::http::Request::post("https://EXAMPLE.com/search")
///     .header("content-type", "application/json")
///     .body(r#"{"token":"OTHER","page":1,"q":"rust"}"#)
///     .expect("a valid request");
/// let again = CachedRequest::from(&again);
/// assert_eq!(cache.create_key(&again)?, cache.create_key(&search)?);
///
/// let cached = cache.get_response_for(&again)?.expect("saved above");
/// assert_eq!(cached.body, b"results");
/// assert!(!String::from_utf8_lossy(&cached.request.body).contains("SECRET"));
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedRequest {
    /// The method, e.g. `"GET"`.
    pub method: String,
    /// The absolute URL the request was sent to.
    pub url: String,
    /// The request headers.
    pub headers: Headers,
    /// The request body (empty for most `GET`s).
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl Default for CachedRequest {
    /// An empty `GET` request with an empty URL.
    fn default() -> Self {
        Self {
            method: "GET".to_owned(),
            url: String::new(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
}

impl CachedRequest {
    /// A bodiless request without headers.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Copies an [`http::Request`] (its URI becomes `url`).
    pub fn from_http<B: AsRef<[u8]>>(request: &http::Request<B>) -> Self {
        Self {
            method: request.method().as_str().to_owned(),
            url: request.uri().to_string(),
            headers: Headers::from(request.headers()),
            body: request.body().as_ref().to_vec(),
        }
    }

    /// Builds an [`http::Request`] with a copy of the body.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when `url` is not a valid URI; [`Error::Deserialize`] (with an
    /// empty key) when the method or a header is not valid HTTP.
    pub fn to_http(&self) -> Result<http::Request<Vec<u8>>> {
        self.build_http(self.body.clone())
    }

    /// Builds an [`http::Request`], moving the body.
    ///
    /// # Errors
    /// As [`to_http`](Self::to_http).
    pub fn into_http(self) -> Result<http::Request<Vec<u8>>> {
        let mut this = self;
        let body = std::mem::take(&mut this.body);
        this.build_http(body)
    }

    fn build_http(&self, body: Vec<u8>) -> Result<http::Request<Vec<u8>>> {
        let method = http::Method::from_bytes(self.method.as_bytes())
            .map_err(|e| http_error(format!("invalid method {:?}: {e}", self.method)))?;
        let uri: http::Uri =
            self.url
                .parse()
                .map_err(|e: http::uri::InvalidUri| Error::InvalidUrl {
                    url: self.url.clone(),
                    reason: e.to_string(),
                })?;
        let mut request = http::Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.to_header_map()?;
        Ok(request)
    }
}

impl<B: AsRef<[u8]>> From<&http::Request<B>> for CachedRequest {
    fn from(request: &http::Request<B>) -> Self {
        Self::from_http(request)
    }
}

impl From<http::Request<Vec<u8>>> for CachedRequest {
    /// Converts without copying the body.
    fn from(request: http::Request<Vec<u8>>) -> Self {
        let (parts, body) = request.into_parts();
        Self {
            method: parts.method.as_str().to_owned(),
            url: parts.uri.to_string(),
            headers: Headers::from(&parts.headers),
            body,
        }
    }
}

impl TryFrom<CachedRequest> for http::Request<Vec<u8>> {
    type Error = Error;

    fn try_from(request: CachedRequest) -> Result<Self> {
        request.into_http()
    }
}

// ---- response --------------------------------------------------------------------------------

/// Cache metadata attached as an extension to every [`http::Response`] built by
/// [`CachedResponse::into_http`] / [`CachedResponse::to_http`].
///
/// ```
/// use dynamodict::cache::{CacheInfo, CachedRequest, CachedResponse};
///
/// let mut cached = CachedResponse::new(CachedRequest::new("GET", "https://example.com/"), 200, b"hi".to_vec());
/// cached.set_from_cache(true);
/// let response = cached.into_http().unwrap();
/// assert!(response.extensions().get::<CacheInfo>().unwrap().from_cache);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// Whether the response was read from the cache rather than received from the network.
    pub from_cache: bool,
    /// When the response was received.
    pub created_at: SystemTime,
    /// When the cached response expires, if ever.
    pub expires: Option<SystemTime>,
    /// The final URL (after redirects).
    pub url: String,
}

/// A complete HTTP response as stored in the cache.
///
/// `request` is the request that produced *this* response (the last hop of a redirect
/// chain); `history` holds the earlier hops in order, so the request the user originally made
/// is `history[0].request` when there were redirects (see
/// [`original_request`](Self::original_request)).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use dynamodict::cache::{CachedRequest, CachedResponse};
///
/// let request = CachedRequest::new("GET", "https://example.com/");
/// let mut response = CachedResponse::new(request, 200, b"hello".to_vec());
/// assert!(!response.is_expired());
/// response.expires = Some(SystemTime::now() - Duration::from_secs(1));
/// assert!(response.is_expired());
/// assert_eq!(response.ttl(), Some(Duration::ZERO));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// The reason phrase, e.g. `"OK"` (may be empty).
    pub reason: String,
    /// The protocol version.
    pub version: HttpVersion,
    /// The final URL, after redirects.
    pub url: String,
    /// The response headers.
    pub headers: Headers,
    /// When the response was received (millisecond precision once stored).
    #[serde(with = "epoch_millis")]
    pub created_at: SystemTime,
    /// When the cached response stops being fresh; `None` means never.
    #[serde(with = "epoch_millis::option")]
    pub expires: Option<SystemTime>,
    /// The request that produced this response.
    pub request: CachedRequest,
    /// Earlier responses of a redirect chain, oldest first.
    pub history: Vec<CachedResponse>,
    /// Whether this value was read from the cache (set by the storage layer; never serialized,
    /// so it is `false` after decoding until [`set_from_cache`](Self::set_from_cache) is called).
    #[serde(skip)]
    pub from_cache: bool,
    /// The response body. Kept as the last field on purpose: see the module docs.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl Default for CachedResponse {
    /// An empty `200 OK` HTTP/1.1 response to [`CachedRequest::default`], created at the Unix
    /// epoch, that never expires.
    fn default() -> Self {
        Self {
            status: 200,
            reason: "OK".to_owned(),
            version: HttpVersion::Http11,
            url: String::new(),
            headers: Headers::new(),
            created_at: SystemTime::UNIX_EPOCH,
            expires: None,
            request: CachedRequest::default(),
            history: Vec::new(),
            from_cache: false,
            body: Vec::new(),
        }
    }
}

impl CachedResponse {
    /// A response to `request` with the given status and body, no headers, the request's URL
    /// as final URL, the status's canonical reason phrase, created now (truncated to whole
    /// milliseconds) and never expiring.
    pub fn new(request: CachedRequest, status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            reason: canonical_reason(status),
            version: HttpVersion::Http11,
            url: request.url.clone(),
            headers: Headers::new(),
            created_at: epoch_millis::truncate(SystemTime::now()),
            expires: None,
            request,
            history: Vec::new(),
            from_cache: false,
            body,
        }
    }

    /// Captures a response received from the network, moving its body (no copy).
    ///
    /// `request` is the request that produced it (an `http::Request`, a reference to one, or a
    /// [`CachedRequest`]); `url` is the final URL after redirects (when empty, the request's URL
    /// is used). The reason phrase is the status's canonical one; `created_at` is now, truncated
    /// to whole milliseconds; `expires` is `None` (the cache policy decides it).
    pub fn from_http(
        response: http::Response<Vec<u8>>,
        request: impl Into<CachedRequest>,
        url: impl Into<String>,
    ) -> Self {
        let request = request.into();
        let mut url = url.into();
        if url.is_empty() {
            url.clone_from(&request.url);
        }
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status.as_u16(),
            reason: canonical_reason(parts.status.as_u16()),
            version: parts.version.into(),
            url,
            headers: Headers::from(&parts.headers),
            created_at: epoch_millis::truncate(SystemTime::now()),
            expires: None,
            request,
            history: Vec::new(),
            from_cache: false,
            body,
        }
    }

    /// Builds an [`http::Response`], moving the body, with a [`CacheInfo`] extension.
    ///
    /// # Errors
    /// [`Error::Deserialize`] (with an empty key) when the status is outside `100..=999` or a
    /// header is not valid HTTP (only possible for values not produced by
    /// [`from_http`](Self::from_http)).
    pub fn into_http(self) -> Result<http::Response<Vec<u8>>> {
        let mut this = self;
        let body = std::mem::take(&mut this.body);
        this.build_http(body)
    }

    /// Builds an [`http::Response`] with a copy of the body, with a [`CacheInfo`] extension.
    ///
    /// # Errors
    /// As [`into_http`](Self::into_http).
    pub fn to_http(&self) -> Result<http::Response<Vec<u8>>> {
        self.build_http(self.body.clone())
    }

    fn build_http(&self, body: Vec<u8>) -> Result<http::Response<Vec<u8>>> {
        let status = http::StatusCode::from_u16(self.status)
            .map_err(|e| http_error(format!("invalid status {}: {e}", self.status)))?;
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        *response.version_mut() = self.version.into();
        *response.headers_mut() = self.headers.to_header_map()?;
        response.extensions_mut().insert(self.cache_info());
        Ok(response)
    }

    /// The cache metadata of this response.
    pub fn cache_info(&self) -> CacheInfo {
        CacheInfo {
            from_cache: self.from_cache,
            created_at: self.created_at,
            expires: self.expires,
            url: self.url.clone(),
        }
    }

    /// Whether this value was read from the cache.
    pub fn is_from_cache(&self) -> bool {
        self.from_cache
    }

    /// Marks this value as read from the cache (the storage layer calls this after decoding).
    pub fn set_from_cache(&mut self, from_cache: bool) {
        self.from_cache = from_cache;
    }

    /// The request the user originally made: the first hop's request when there were
    /// redirects, otherwise [`request`](Self::request).
    pub fn original_request(&self) -> &CachedRequest {
        self.history
            .first()
            .map_or(&self.request, |first| &first.request)
    }

    /// Whether the response has expired: `expires <= now`. Never true without an expiry.
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(SystemTime::now())
    }

    /// Whether the response has expired at `now` (`expires <= now`).
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| expires <= now)
    }

    /// Time left until expiry (zero once expired); `None` when the response never expires.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_at(SystemTime::now())
    }

    /// Time left until expiry as seen at `now` (zero once expired); `None` without an expiry.
    pub fn ttl_at(&self, now: SystemTime) -> Option<Duration> {
        self.expires
            .map(|expires| expires.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// An upper estimate of this response's size in a compact binary format such as bincode
    /// (bodies, header blocks, strings, redirect history and a little per-field overhead).
    ///
    /// Use it to pre-size an encode buffer, e.g.
    /// `bincode::serde::encode_into_std_write(&r, &mut Vec::with_capacity(r.size_hint()), cfg)`:
    /// growing a buffer from empty costs several reallocations and copies.
    pub fn size_hint(&self) -> usize {
        // Fixed fields and up to a dozen length prefixes of at most 9 bytes each.
        const OVERHEAD: usize = 128;
        let request = &self.request;
        let own = self.body.len()
            + self.reason.len()
            + self.url.len()
            + self.headers.packed_len()
            + request.method.len()
            + request.url.len()
            + request.headers.packed_len()
            + request.body.len()
            + OVERHEAD;
        self.history
            .iter()
            .fold(own, |total, hop| total.saturating_add(hop.size_hint()))
    }

    /// The body as UTF-8 text, if it is valid UTF-8 (no charset decoding is attempted).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

impl TryFrom<CachedResponse> for http::Response<Vec<u8>> {
    type Error = Error;

    fn try_from(response: CachedResponse) -> Result<Self> {
        response.into_http()
    }
}

fn canonical_reason(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
        .to_owned()
}

/// The error for stored data that the `http` crate rejects.
fn http_error(message: String) -> Error {
    Error::Deserialize {
        key: String::new(),
        message,
    }
}

/// Conversion from `reqwest`'s blocking client (cargo feature `reqwest`).
#[cfg(feature = "reqwest")]
impl CachedResponse {
    /// Reads a [`reqwest::blocking::Response`] (consuming its body) into a `CachedResponse`.
    /// `request` is the request that was sent (reqwest does not keep it); the final URL after
    /// redirects is taken from the response.
    ///
    /// # Errors
    /// [`Error::Connection`] when reading the body fails.
    pub fn from_reqwest(
        request: impl Into<CachedRequest>,
        response: reqwest::blocking::Response,
    ) -> Result<Self> {
        let status = response.status();
        let version = response.version();
        let url = response.url().to_string();
        let headers = Headers::from(response.headers());
        let body = response.bytes().map_err(|e| Error::Connection {
            endpoint: String::new(),
            message: format!(
                "reading the response body failed: {}",
                crate::error::root_cause(&e)
            ),
        })?;
        let mut http_response = http::Response::new(body.to_vec());
        *http_response.status_mut() = status;
        *http_response.version_mut() = version;
        let mut cached = Self::from_http(http_response, request, url);
        cached.headers = headers;
        Ok(cached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn sample(body_len: usize) -> CachedResponse {
        let mut request = CachedRequest::new("GET", "https://example.com/api/items?page=2");
        request.headers.append("Accept", "application/json");
        request.headers.append("User-Agent", "dynamodict-test/1.0");
        let mut response = CachedResponse::new(request, 200, vec![0xAB; body_len]);
        response.headers.append("Content-Type", "application/json");
        response.headers.append("Cache-Control", "max-age=60");
        response.headers.append("Set-Cookie", "a=1");
        response.headers.append("Set-Cookie", "b=2");
        response.headers.append("X-Binary", vec![0xFF, 0x00, b'a']);
        response.expires = Some(response.created_at + Duration::from_secs(60));
        let mut hop = CachedResponse::new(
            CachedRequest::new("GET", "https://example.com/old"),
            301,
            Vec::new(),
        );
        hop.headers.append("Location", "/api/items?page=2");
        response.history.push(hop);
        response
    }

    // ---- headers ------------------------------------------------------------------------

    #[test]
    fn headers_are_case_insensitive_and_ordered() {
        let mut h = Headers::new();
        h.append("Set-Cookie", "a");
        h.append("X-Other", "x");
        h.append("set-cookie", "b");
        assert_eq!(h.get("SET-COOKIE"), Some(&b"a"[..]));
        assert_eq!(
            h.get_all("Set-Cookie").collect::<Vec<_>>(),
            vec![&b"a"[..], &b"b"[..]]
        );
        assert!(h.contains("x-other"));
        assert!(!h.contains("missing"));
        assert_eq!(h.get("missing"), None);
        let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Set-Cookie", "X-Other", "set-cookie"]);
    }

    #[test]
    fn headers_insert_replaces_all_in_place() {
        let mut h: Headers = [("A", "1"), ("B", "2"), ("a", "3"), ("C", "4")]
            .into_iter()
            .collect();
        h.insert("a", "new");
        let all: Vec<_> = h.iter().collect();
        assert_eq!(
            all,
            vec![("a", &b"new"[..]), ("B", &b"2"[..]), ("C", &b"4"[..])]
        );
        h.insert("D", "5");
        assert_eq!(h.len(), 4);
        assert_eq!(h.get_str("d"), Some("5"));
    }

    #[test]
    fn headers_remove_returns_first_and_removes_all() {
        let mut h: Headers = [("A", "1"), ("B", "2"), ("a", "3")].into_iter().collect();
        assert_eq!(h.remove("A"), Some(b"1".to_vec()));
        assert_eq!(h.len(), 1);
        assert_eq!(h.remove("a"), None);
        h.retain(|_, _| false);
        assert!(h.is_empty());
    }

    #[test]
    fn headers_keep_non_utf8_values() {
        let mut h = Headers::new();
        h.append("X-Bin", vec![0xFF, 0xFE]);
        assert_eq!(h.get("x-bin"), Some(&[0xFF, 0xFE][..]));
        assert_eq!(h.get_str("x-bin"), None);
        let debug = format!("{h:?}");
        assert!(debug.contains("255"), "{debug}");
    }

    #[test]
    fn headers_convert_to_and_from_header_map() {
        let mut map = http::HeaderMap::new();
        map.append("set-cookie", "a=1".parse().unwrap());
        map.append("set-cookie", "b=2".parse().unwrap());
        map.insert(
            "x-bin",
            http::HeaderValue::from_bytes(&[0xFF, b'x']).unwrap(),
        );
        let headers = Headers::from(&map);
        assert_eq!(headers.len(), 3);
        assert_eq!(headers.get("X-Bin"), Some(&[0xFF, b'x'][..]));
        let back = http::HeaderMap::try_from(&headers).unwrap();
        assert_eq!(back, map);
    }

    #[test]
    fn invalid_headers_fail_conversion_without_panicking() {
        let bad_name: Headers = [("bad name", "x")].into_iter().collect();
        assert!(matches!(
            bad_name.to_header_map(),
            Err(Error::Deserialize { .. })
        ));
        let bad_value: Headers = [("x", "a\r\nb")].into_iter().collect();
        assert!(bad_value.to_header_map().is_err());
    }

    #[test]
    fn headers_iterate_by_reference_and_by_value() {
        let mut h: Headers = [("A", "1")].into_iter().collect();
        h.extend([("B", b"2".to_vec())]);
        h.extend(vec![(String::from("C"), String::from("3"))]);
        let borrowed: Vec<(&str, &[u8])> = (&h).into_iter().collect();
        assert_eq!(
            borrowed,
            vec![("A", &b"1"[..]), ("B", &b"2"[..]), ("C", &b"3"[..])]
        );
        assert_eq!(h.iter().len(), 3);
        assert_eq!(h.iter().next_back(), Some(("C", &b"3"[..])));
        let owned: Vec<(String, Vec<u8>)> = h.into_iter().collect();
        assert_eq!(owned[1], ("B".to_owned(), b"2".to_vec()));
    }

    #[test]
    fn headers_equality_ignores_history_of_edits() {
        let mut a: Headers = [("A", "1"), ("B", "2"), ("C", "3")].into_iter().collect();
        a.remove("b");
        a.insert("a", "x");
        let b: Headers = [("a", "x"), ("C", "3")].into_iter().collect();
        assert_eq!(a, b);
        use std::hash::BuildHasher;
        let state = std::hash::RandomState::new();
        assert_eq!(state.hash_one(&a), state.hash_one(&b));
        assert_ne!(a, Headers::new());
        assert_eq!(Headers::with_capacity(4), Headers::new());
    }

    #[test]
    fn headers_binary_form_is_one_byte_string() {
        let mut h = Headers::new();
        h.append("A", "xy");
        h.append("Long", vec![7u8; 200]);
        let bytes = bincode::serde::encode_to_vec(&h, bincode::config::standard()).unwrap();
        // bincode's length prefix (1 byte below 251), then the packed fields:
        // len "A" len "xy" len "Long" len(200, a 2-byte LEB128) 200 bytes.
        assert_eq!(bytes.len(), 1 + (1 + 1 + 1 + 2 + 1 + 4 + 2 + 200));
        let (back, _): (Headers, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.get("long").map(<[u8]>::len), Some(200));
    }

    #[test]
    fn corrupt_packed_headers_are_rejected() {
        let config = bincode::config::standard();
        let cases: &[&[u8]] = &[
            &[5, b'a'],          // name past the end
            &[1, b'a', 9, b'x'], // value past the end
            &[1, 0xFF, 0],       // name not UTF-8
            &[0x80],             // truncated varint
            &[
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
            ], // too large
            &[1, b'a'],          // missing value length
        ];
        for packed in cases {
            let bytes =
                bincode::serde::encode_to_vec(serde_bytes::Bytes::new(packed), config).unwrap();
            let decoded = bincode::serde::decode_from_slice::<Headers, _>(&bytes, config);
            assert!(decoded.is_err(), "{packed:?} decoded as {decoded:?}");
        }
        // Empty names and values are fine.
        let bytes =
            bincode::serde::encode_to_vec(serde_bytes::Bytes::new(&[0, 0]), config).unwrap();
        let (h, _): (Headers, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![("", &b""[..])]);
    }

    #[test]
    fn varints_round_trip() {
        for n in [
            0usize,
            1,
            127,
            128,
            255,
            16_383,
            16_384,
            1 << 31,
            usize::MAX,
        ] {
            let mut buf = Vec::new();
            write_varint(&mut buf, n);
            assert_eq!(read_varint(&buf, 0), Ok((n, buf.len())), "{n}");
        }
    }

    // ---- timestamps ---------------------------------------------------------------------

    #[test]
    fn epoch_millis_round_trip_and_truncation() {
        use epoch_millis::{from_millis, to_millis, truncate};
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(to_millis(t), 1_700_000_000_123);
        assert_eq!(
            truncate(t),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        assert_eq!(from_millis(to_millis(truncate(t))), Some(truncate(t)));
        // Before the epoch: rounded towards the past.
        let before = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(to_millis(before), -2);
        assert_eq!(from_millis(-2), Some(UNIX_EPOCH - Duration::from_millis(2)));
        assert_eq!(to_millis(UNIX_EPOCH), 0);
    }

    #[test]
    fn out_of_range_timestamps_are_errors_not_panics() {
        // i64::MAX milliseconds is beyond what SystemTime can hold on some platforms; either
        // way, decoding must not panic.
        let _ = epoch_millis::from_millis(i64::MAX);
        let _ = epoch_millis::from_millis(i64::MIN);
        let json = format!(
            r#"{{"status":200,"reason":"","version":"HTTP/1.1","url":"","headers":[],"created_at":{},"expires":null,"request":{{"method":"GET","url":"","headers":[],"body":[]}},"history":[],"body":[]}}"#,
            i64::MIN
        );
        let _ = serde_json::from_str::<CachedResponse>(&json);
    }

    // ---- serde --------------------------------------------------------------------------

    #[test]
    fn bincode_round_trip() {
        let response = sample(1024);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&response, config).unwrap();
        let (back, read): (CachedResponse, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(read, bytes.len());
        assert_eq!(back, response);
        assert!(!back.is_from_cache());
        // Compact: the body dominates; metadata is a few hundred bytes at most.
        assert!(bytes.len() < 1024 + 400, "{} bytes", bytes.len());
    }

    #[test]
    fn size_hint_is_an_upper_bound() {
        let config = bincode::config::standard();
        for len in [0, 10, 1024, 100_000] {
            let response = sample(len);
            let bytes = bincode::serde::encode_to_vec(&response, config).unwrap();
            let hint = response.size_hint();
            assert!(hint >= bytes.len(), "{hint} < {}", bytes.len());
            assert!(
                hint <= bytes.len() + 512,
                "{hint} too loose for {}",
                bytes.len()
            );
        }
    }

    #[test]
    fn bincode_body_is_written_as_bytes_not_a_sequence() {
        // A 300-byte body of 0xFF: as a byte string it costs 300 bytes + a length prefix; as a
        // sequence of varint u8s each 0xFF byte would take 2 bytes.
        let response = CachedResponse {
            body: vec![0xFF; 300],
            ..CachedResponse::default()
        };
        let bytes = bincode::serde::encode_to_vec(&response, bincode::config::standard()).unwrap();
        assert!(bytes.len() < 400, "{} bytes", bytes.len());
        // The body is the last field: the encoding ends with it.
        assert!(bytes.ends_with(&[0xFF; 300]));
    }

    #[test]
    fn from_cache_is_not_serialized() {
        let mut response = sample(10);
        response.set_from_cache(true);
        let json = serde_json::to_string(&response).unwrap();
        assert!(!json.contains("from_cache"));
        let mut back: CachedResponse = serde_json::from_str(&json).unwrap();
        assert!(!back.is_from_cache());
        back.set_from_cache(true);
        assert_eq!(back, response);
    }

    #[test]
    fn json_round_trip_and_shape() {
        let response = sample(4);
        let value = serde_json::to_value(&response).unwrap();
        assert_eq!(value["version"], "HTTP/1.1");
        assert_eq!(value["headers"][0][0], "Content-Type");
        assert_eq!(value["headers"][0][1], "application/json");
        // A non-UTF-8 header value becomes a list of bytes.
        assert_eq!(value["headers"][4][1], serde_json::json!([255, 0, 97]));
        assert_eq!(value["body"], serde_json::json!([0xAB, 0xAB, 0xAB, 0xAB]));
        assert_eq!(
            value["created_at"],
            serde_json::json!(epoch_millis::to_millis(response.created_at))
        );
        let back: CachedResponse = serde_json::from_value(value).unwrap();
        assert_eq!(back, response);
    }

    #[test]
    fn json_serializer_round_trip_writes_bodies_as_base64() {
        use crate::serializer::{Encoded, Serializer};
        use base64::Engine as _;

        let mut response = sample(1000);
        response.request.body = b"{\"q\": 1}".to_vec();
        response.history[0].body = vec![0, 1, 2];
        let body = base64::engine::general_purpose::STANDARD.encode(&response.body);
        for s in [
            Serializer::json(),
            Serializer::json().signed("a long secret", "salt"),
        ] {
            let encoded = s.dumps("k", &response).unwrap();
            let Encoded::Bytes(bytes) = &encoded else {
                panic!("bytes expected")
            };
            // Signed: a 32-byte tag, then the JSON.
            let json = if s.id().ends_with("hmac-sha256") {
                &bytes[32..]
            } else {
                &bytes[..]
            };
            let text = std::str::from_utf8(json).unwrap();
            assert!(text.ends_with(&format!(r#""body":"{body}"}}"#)), "{text}");
            assert!(text.contains(r#""body":"eyJxIjogMX0=""#), "{text}");
            assert!(text.contains(r#""body":"AAEC""#), "{text}");
            // A non-UTF-8 header value keeps the number-array form (a string would read back
            // as text), UTF-8 ones stay strings.
            assert!(text.contains(r#"["X-Binary",[255,0,97]]"#), "{text}");
            assert!(text.contains(r#"["Set-Cookie","a=1"]"#), "{text}");
            // About 4/3 of the body plus the metadata, not 3.6 bytes per body byte.
            assert!(json.len() < body.len() + 900, "{} bytes", json.len());
            let back: CachedResponse = s.loads("k", encoded).unwrap();
            assert_eq!(back, response, "{}", s.id());
        }
        // A response stored by an earlier version (bodies as arrays of numbers) still reads.
        let old = serde_json::to_vec(&response).unwrap();
        assert!(
            std::str::from_utf8(&old)
                .unwrap()
                .contains(r#""body":[0,1,2]"#)
        );
        let back: CachedResponse = Serializer::json().loads("k", Encoded::Bytes(old)).unwrap();
        assert_eq!(back, response);
        // An empty body.
        let empty = CachedResponse::default();
        let s = Serializer::json();
        let back: CachedResponse = s.loads("k", s.dumps("k", &empty).unwrap()).unwrap();
        assert_eq!(back, empty);
    }

    #[test]
    fn json_accepts_header_values_as_strings_or_byte_lists() {
        let json = r#"[["A","x"],["B",[104,105]]]"#;
        let h: Headers = serde_json::from_str(json).unwrap();
        assert_eq!(h.get("a"), Some(&b"x"[..]));
        assert_eq!(h.get("b"), Some(&b"hi"[..]));
        assert!(serde_json::from_str::<Headers>(r#"[["A",1.5]]"#).is_err());
        assert!(serde_json::from_str::<Headers>(r#"[["A",[300]]]"#).is_err());
    }

    #[test]
    fn dynamodb_round_trip_uses_binary_and_strings() {
        use aws_sdk_dynamodb::types::AttributeValue;
        use std::collections::HashMap;

        let response = sample(16);
        let AttributeValue::M(item) = crate::document::to_attribute_value(&response).unwrap()
        else {
            panic!("a response should be a map");
        };
        // The same document serde_dynamo writes, so either reads the other's items.
        let theirs: HashMap<String, AttributeValue> = serde_dynamo::to_item(&response).unwrap();
        assert_eq!(item, theirs);
        match &item["body"] {
            AttributeValue::B(blob) => assert_eq!(blob.as_ref(), &[0xAB; 16][..]),
            other => panic!("body should be binary, got {other:?}"),
        }
        assert_eq!(item["status"], AttributeValue::N("200".to_owned()));
        assert_eq!(item["version"], AttributeValue::S("HTTP/1.1".to_owned()));
        let AttributeValue::L(headers) = &item["headers"] else {
            panic!("headers should be a list");
        };
        let AttributeValue::L(first) = &headers[0] else {
            panic!("a header should be a list");
        };
        assert_eq!(first[1], AttributeValue::S("application/json".to_owned()));
        let AttributeValue::L(binary) = &headers[4] else {
            panic!("a header should be a list");
        };
        assert!(matches!(binary[1], AttributeValue::B(_)));
        let back: CachedResponse = serde_dynamo::from_item(item.clone()).unwrap();
        assert_eq!(back, response);
        let back: CachedResponse =
            crate::document::from_attribute_value(AttributeValue::M(item)).unwrap();
        assert_eq!(back, response);
    }

    #[test]
    fn garbage_does_not_panic() {
        let config = bincode::config::standard();
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = bincode::serde::decode_from_slice::<CachedResponse, _>(&bytes, config);
        }
        let good = bincode::serde::encode_to_vec(sample(8), config).unwrap();
        for cut in 0..good.len() {
            assert!(
                bincode::serde::decode_from_slice::<CachedResponse, _>(&good[..cut], config)
                    .is_err()
            );
        }
        assert!(serde_json::from_str::<CachedResponse>("{}").is_err());
    }

    // ---- http conversions ---------------------------------------------------------------

    #[test]
    fn request_round_trips_through_http() {
        let http_request = http::Request::builder()
            .method("POST")
            .uri("https://example.com/submit?x=1")
            .header("Content-Type", "application/json")
            .body(br#"{"a":1}"#.to_vec())
            .unwrap();
        let cached = CachedRequest::from(&http_request);
        assert_eq!(cached.method, "POST");
        assert_eq!(cached.url, "https://example.com/submit?x=1");
        assert_eq!(
            cached.headers.get_str("content-type"),
            Some("application/json")
        );
        let back = cached.to_http().unwrap();
        assert_eq!(back.method(), http_request.method());
        assert_eq!(back.uri(), http_request.uri());
        assert_eq!(back.headers(), http_request.headers());
        assert_eq!(back.body(), http_request.body());
        let owned = CachedRequest::from(back);
        assert_eq!(owned, cached);
        let again: http::Request<Vec<u8>> = owned.try_into().unwrap();
        assert_eq!(again.body(), http_request.body());
    }

    #[test]
    fn invalid_request_parts_are_errors() {
        let bad_url = CachedRequest::new("GET", "http://exa mple.com/");
        assert!(matches!(bad_url.to_http(), Err(Error::InvalidUrl { .. })));
        let bad_method = CachedRequest::new("GE T", "http://example.com/");
        assert!(matches!(
            bad_method.into_http(),
            Err(Error::Deserialize { .. })
        ));
    }

    #[test]
    fn response_round_trips_through_http() {
        let request = http::Request::builder()
            .uri("https://example.com/a")
            .body(Vec::new())
            .unwrap();
        let response = http::Response::builder()
            .status(404)
            .version(http::Version::HTTP_2)
            .header("Content-Type", "text/plain")
            .header("Vary", "Accept")
            .body(b"not here".to_vec())
            .unwrap();
        let before = SystemTime::now();
        let cached = CachedResponse::from_http(response, &request, "https://example.com/b");
        assert_eq!(cached.status, 404);
        assert_eq!(cached.reason, "Not Found");
        assert_eq!(cached.version, HttpVersion::Http2);
        assert_eq!(cached.url, "https://example.com/b");
        assert_eq!(cached.request.url, "https://example.com/a");
        assert_eq!(cached.body, b"not here");
        assert!(cached.created_at >= epoch_millis::truncate(before));
        assert_eq!(epoch_millis::truncate(cached.created_at), cached.created_at);
        assert!(!cached.is_from_cache());

        let back = cached.clone().into_http().unwrap();
        assert_eq!(back.status(), 404);
        assert_eq!(back.version(), http::Version::HTTP_2);
        assert_eq!(back.headers()["vary"], "Accept");
        assert_eq!(back.body(), b"not here");
        let info = back.extensions().get::<CacheInfo>().unwrap();
        assert_eq!(info, &cached.cache_info());
        assert!(!info.from_cache);
        let copy = cached.to_http().unwrap();
        assert_eq!(copy.body(), b"not here");
    }

    #[test]
    fn empty_final_url_falls_back_to_request_url() {
        let response = http::Response::new(Vec::new());
        let cached =
            CachedResponse::from_http(response, CachedRequest::new("GET", "https://x.test/"), "");
        assert_eq!(cached.url, "https://x.test/");
    }

    #[test]
    fn invalid_status_is_an_error() {
        let cached = CachedResponse {
            status: 42,
            ..CachedResponse::default()
        };
        assert!(cached.to_http().is_err());
        let cached: Result<http::Response<Vec<u8>>> = CachedResponse {
            status: 1000,
            ..CachedResponse::default()
        }
        .try_into();
        assert!(cached.is_err());
    }

    #[test]
    fn versions_map_both_ways() {
        for version in [
            HttpVersion::Http09,
            HttpVersion::Http10,
            HttpVersion::Http11,
            HttpVersion::Http2,
            HttpVersion::Http3,
        ] {
            assert_eq!(HttpVersion::from(http::Version::from(version)), version);
            assert!(version.to_string().starts_with("HTTP/"));
        }
    }

    // ---- expiry -------------------------------------------------------------------------

    #[test]
    fn expiry_and_ttl() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut r = CachedResponse::default();
        assert!(!r.is_expired_at(now));
        assert_eq!(r.ttl_at(now), None);
        r.expires = Some(now + Duration::from_secs(30));
        assert!(!r.is_expired_at(now));
        assert_eq!(r.ttl_at(now), Some(Duration::from_secs(30)));
        r.expires = Some(now);
        assert!(r.is_expired_at(now), "expires <= now counts as expired");
        assert_eq!(r.ttl_at(now), Some(Duration::ZERO));
        r.expires = Some(now - Duration::from_secs(5));
        assert!(r.is_expired());
        assert_eq!(r.ttl(), Some(Duration::ZERO));
    }

    #[test]
    fn original_request_follows_history() {
        let r = sample(0);
        assert_eq!(r.original_request().url, "https://example.com/old");
        let plain = CachedResponse::new(CachedRequest::new("GET", "https://a.test/"), 200, vec![]);
        assert_eq!(plain.original_request().url, "https://a.test/");
        assert_eq!(plain.text(), Some(""));
    }
}
