//! Items: a value turned into a DynamoDB item and back, and expiry times. Pure data, no
//! requests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use crate::layout::Item;
use crate::layout::{self, FORMAT, Layout, MAX_ITEM_BYTES, PK, SIGNATURE, SK, VALUE};
use crate::serializer::{Encoded, Format, Serializer, attribute_size, canonical_bytes};
use crate::{Error, Result};

/// The latest expiry that is stored (9999-12-31T23:59:59Z, in epoch seconds). An expiry after
/// it, such as `Duration::MAX` from now, means "never expires": no expiry attribute is written.
pub const MAX_EXPIRY_SECS: u64 = 253_402_300_799;

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The stored expiry for a time-to-live starting now: whole seconds, rounded up, so an item
/// never expires before its time-to-live has passed; zero is expired at once. `None` (never)
/// when that is past [`MAX_EXPIRY_SECS`].
pub(crate) fn expiry_after(ttl: Duration) -> Option<u64> {
    if ttl.is_zero() {
        return Some(now_secs().saturating_sub(1));
    }
    SystemTime::now().checked_add(ttl).and_then(expiry_at)
}

/// The stored expiry for an absolute time: whole seconds, rounded up. `None` (never) past
/// [`MAX_EXPIRY_SECS`]. A time already past (before 1970 included) is stored as one second ago:
/// the item reads as expired, and DynamoDB's TTL sweep, which ignores expiries more than five
/// years old, still deletes it.
pub(crate) fn expiry_at(at: SystemTime) -> Option<u64> {
    let secs = match at.duration_since(UNIX_EPOCH) {
        Ok(since) => since
            .as_secs()
            .saturating_add(u64::from(since.subsec_nanos() > 0)),
        Err(_) => 0,
    };
    if secs > MAX_EXPIRY_SECS {
        return None;
    }
    Some(secs.max(now_secs().saturating_sub(1)))
}

/// [`is_live`] as a filter or condition expression, with `#t` bound to the expiry attribute,
/// `:n` to the string `"N"` and `:now` to now (see [`expiry_values`]). The type test keeps the
/// comparison to numbers: DynamoDB judges a string compared with a number false anyway, and
/// moto answers HTTP 500 to it instead.
pub(crate) const LIVE: &str = "attribute_not_exists(#t) OR (attribute_type(#t, :n) AND #t > :now)";

/// The negation of [`LIVE`], with the same bindings: an expiry that is past, or not a number.
pub(crate) const EXPIRED: &str = "(attribute_type(#t, :n) AND #t <= :now) OR (attribute_exists(#t) AND NOT attribute_type(#t, :n))";

/// The values [`LIVE`] and [`EXPIRED`] refer to, as of now.
pub(crate) fn expiry_values() -> [(&'static str, AttributeValue); 2] {
    [
        (":n", AttributeValue::S("N".to_owned())),
        (":now", AttributeValue::N(now_secs().to_string())),
    ]
}

/// Whether an item has not expired, judged exactly as the server judges [`LIVE`] (so `get`
/// and listing always agree): no expiry attribute is live; a number is compared with now; any
/// other type is expired.
pub(crate) fn is_live(item: &Item, layout: &Layout, now: u64) -> bool {
    let Some(attr) = layout.ttl_attribute.as_deref() else {
        return true;
    };
    match item.get(attr) {
        None => true,
        Some(AttributeValue::N(n)) => n.parse::<f64>().is_ok_and(|at| at > now as f64),
        Some(_) => false,
    }
}

/// A value encoded into its item.
pub(crate) enum Built {
    /// The whole item, value included.
    Inline(Item),
    /// Too large for one item: the item without its value, the value's bytes (for a document,
    /// its canonical byte encoding), to be stored in chunks, and the size the inline item
    /// would have had.
    Large {
        item: Item,
        payload: Vec<u8>,
        inline_size: usize,
    },
}

/// Encodes `value` into the item for `key`, expiring at `expires_at` (epoch seconds) when the
/// layout has an expiry attribute.
pub(crate) fn build_item<V: Serialize + ?Sized>(
    layout: &Layout,
    serializer: &Serializer,
    key: &str,
    value: &V,
    expires_at: Option<u64>,
) -> Result<Built> {
    layout::validate_key(key)?;
    let encoded = serializer.dumps(key, value)?;
    let mut item = layout.item_key(key);
    let mut size = PK.len()
        + SK.len()
        + key.len()
        + layout.namespace.len()
        + 3
        + FORMAT.len()
        + serializer.id().len();
    item.insert(
        FORMAT.to_owned(),
        AttributeValue::S(serializer.id().to_owned()),
    );
    if let (Some(attr), Some(at)) = (layout.ttl_attribute.as_deref(), expires_at) {
        let n = AttributeValue::N(at.to_string());
        size += attr.len() + attribute_size(&n);
        item.insert(attr.to_owned(), n);
    }
    let inline_size = size + VALUE.len() + encoded.stored_size() + SIGNATURE.len();
    if inline_size <= MAX_ITEM_BYTES {
        match encoded {
            Encoded::Bytes(bytes) => {
                item.insert(VALUE.to_owned(), AttributeValue::B(Blob::new(bytes)));
            }
            Encoded::Document { value, signature } => {
                item.insert(VALUE.to_owned(), value);
                if let Some(sig) = signature {
                    item.insert(SIGNATURE.to_owned(), AttributeValue::B(Blob::new(sig)));
                }
            }
        }
        return Ok(Built::Inline(item));
    }
    let payload = match encoded {
        Encoded::Bytes(bytes) => bytes,
        Encoded::Document { value, signature } => {
            if let Some(sig) = signature {
                item.insert(SIGNATURE.to_owned(), AttributeValue::B(Blob::new(sig)));
            }
            canonical_bytes(&value)
        }
    };
    Ok(Built::Large {
        item,
        payload,
        inline_size,
    })
}

/// The expiry attribute of an item, if it has one (copied onto a large value's chunks).
pub(crate) fn expiry_of<'a>(
    item: &'a Item,
    layout: &'a Layout,
) -> Option<(&'a str, &'a AttributeValue)> {
    let attr = layout.ttl_attribute.as_deref()?;
    item.get(attr).map(|value| (attr, value))
}

/// Decodes a stored item read from `key`. `None` when it has expired.
pub(crate) fn read_item<V: DeserializeOwned>(
    layout: &Layout,
    serializer: &Serializer,
    key: &str,
    mut item: Item,
    now: u64,
) -> Result<Option<V>> {
    if !is_live(&item, layout, now) {
        return Ok(None);
    }
    let found = match item.get(FORMAT) {
        Some(AttributeValue::S(id)) => id.as_str(),
        _ => "",
    };
    if found != serializer.id() {
        return Err(Error::SerializerMismatch {
            key: key.to_owned(),
            expected: serializer.id().to_owned(),
            found: found.to_owned(),
        });
    }
    let written_by = found.to_owned();
    let value = item.remove(VALUE).ok_or_else(|| Error::Deserialize {
        key: key.to_owned(),
        message: "the item has no value attribute".into(),
    })?;
    let encoded = match serializer.format() {
        Format::Document => Encoded::Document {
            value,
            signature: match item.remove(SIGNATURE) {
                Some(AttributeValue::B(b)) => Some(b.into_inner()),
                _ => None,
            },
        },
        _ => match value {
            AttributeValue::B(bytes) => Encoded::Bytes(bytes.into_inner()),
            _ => {
                return Err(Error::Deserialize {
                    key: key.to_owned(),
                    message: "expected a binary value attribute".into(),
                });
            }
        },
    };
    serializer.loads_stored(key, encoded, &written_by).map(Some)
}

/// A value as it is stored, not decoded: what
/// [`AsyncDynamoDbDict::get_stored`](crate::AsyncDynamoDbDict::get_stored) returns, whatever
/// serializer wrote it. For tools that inspect a table (the `dynamodict` command-line tool's
/// `get`); decode it with [`Serializer::loads`] of the pipeline that wrote it, which also
/// checks its signature.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredValue {
    /// The id of the serializer pipeline that wrote it (the item's `f` attribute, e.g.
    /// `"bincode2"`, `"json"`, `"document+hmac-sha256"`; empty when the item has none).
    pub serializer_id: String,
    /// The encoded value: bytes, or a document with its detached signature (for a signed
    /// document). A large value's chunks are joined, and a large document is a document again,
    /// as a small one is stored. Signatures are not checked.
    pub encoded: Encoded,
    /// How many chunk items the value is split across (0: stored in its own item).
    pub chunks: usize,
}

impl StoredValue {
    /// The stored value of a live item read at `key`, a large value's chunks already joined in.
    pub(crate) fn from_item(key: &str, mut item: Item) -> Result<StoredValue> {
        let serializer_id = match item.get(FORMAT) {
            Some(AttributeValue::S(id)) => id.clone(),
            _ => String::new(),
        };
        let chunks = crate::values::chunked::manifest_of(&item).map_or(0, |m| m.count);
        let value = item.remove(VALUE).ok_or_else(|| Error::Deserialize {
            key: key.to_owned(),
            message: "the item has no value attribute".into(),
        })?;
        let encoded = match value {
            AttributeValue::B(bytes)
                if Format::of_pipeline(&serializer_id) != Some(Format::Document) =>
            {
                Encoded::Bytes(bytes.into_inner())
            }
            value => Encoded::Document {
                value,
                signature: match item.remove(SIGNATURE) {
                    Some(AttributeValue::B(b)) => Some(b.into_inner()),
                    _ => None,
                },
            },
        };
        Ok(StoredValue {
            serializer_id,
            encoded,
            chunks,
        })
    }
}

/// The map key (`sk`) of an item.
pub(crate) fn key_of(item: &Item) -> Option<&str> {
    match item.get(SK) {
        Some(AttributeValue::S(k)) => Some(k),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn layout() -> Layout {
        crate::layout::test_layout()
    }

    #[test]
    fn round_trip_and_expiry() {
        let (l, s) = (layout(), Serializer::bincode());
        let Built::Inline(item) = build_item(&l, &s, "k", &42u32, Some(100)).unwrap() else {
            panic!("small values are inline")
        };
        assert_eq!(
            read_item::<u32>(&l, &s, "k", item.clone(), 99).unwrap(),
            Some(42)
        );
        assert_eq!(read_item::<u32>(&l, &s, "k", item, 100).unwrap(), None);
    }

    #[test]
    fn odd_expiry_values_are_judged_like_the_server_filter() {
        let l = layout();
        let with = |v: AttributeValue| HashMap::from([("ttl".to_owned(), v)]);
        assert!(is_live(&HashMap::new(), &l, 100));
        assert!(is_live(&with(AttributeValue::N("101".into())), &l, 100));
        assert!(is_live(&with(AttributeValue::N("1e30".into())), &l, 100));
        assert!(!is_live(&with(AttributeValue::N("100".into())), &l, 100));
        assert!(!is_live(&with(AttributeValue::N("-5".into())), &l, 100));
        assert!(!is_live(&with(AttributeValue::N("1.5".into())), &l, 100));
        assert!(!is_live(&with(AttributeValue::S("x".into())), &l, 100));
        assert!(!is_live(&with(AttributeValue::Null(true)), &l, 100));
    }

    #[test]
    fn expiry_rounds_up() {
        let at = expiry_after(Duration::from_millis(1)).unwrap();
        assert!(at > now_secs().saturating_sub(1));
        assert!(expiry_after(Duration::from_secs(10)).unwrap() >= now_secs() + 10);
    }

    #[test]
    fn other_serializer_is_reported() {
        let l = layout();
        let Built::Inline(item) = build_item(&l, &Serializer::json(), "k", &1u8, None).unwrap()
        else {
            panic!("small values are inline")
        };
        let err = read_item::<u8>(&l, &Serializer::bincode(), "k", item, 0).unwrap_err();
        assert!(
            matches!(err, Error::SerializerMismatch { ref found, .. } if found == "json"),
            "{err}"
        );
    }

    #[test]
    fn oversized_values_are_built_as_large() {
        let l = layout();
        let big = "x".repeat(MAX_ITEM_BYTES);
        let built = build_item(&l, &Serializer::bincode(), "k", &big, Some(9)).unwrap();
        let Built::Large {
            item,
            payload,
            inline_size,
        } = built
        else {
            panic!("expected a large value")
        };
        assert!(!item.contains_key(VALUE));
        assert_eq!(item.get("ttl"), Some(&AttributeValue::N("9".into())));
        assert!(payload.len() > MAX_ITEM_BYTES && inline_size > payload.len());
    }

    #[test]
    fn expiry_never_overflows() {
        assert_eq!(expiry_after(Duration::MAX), None);
        assert_eq!(expiry_after(Duration::from_secs(u64::MAX)), None);
        let far = Duration::from_secs(MAX_EXPIRY_SECS + 10);
        assert_eq!(expiry_after(far), None);
        let in_a_year = expiry_after(Duration::from_secs(365 * 86_400)).unwrap();
        assert!(in_a_year >= now_secs() + 365 * 86_400);
        assert_eq!(
            expiry_at(UNIX_EPOCH + Duration::from_secs(MAX_EXPIRY_SECS)),
            Some(MAX_EXPIRY_SECS)
        );
        assert_eq!(
            expiry_at(UNIX_EPOCH + Duration::from_secs(MAX_EXPIRY_SECS + 1)),
            None
        );
    }

    #[test]
    fn past_expiries_are_stored_recent_enough_for_the_sweep() {
        let now = now_secs();
        for at in [
            UNIX_EPOCH - Duration::from_secs(86_400),
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_secs(1),
            SystemTime::now() - Duration::from_secs(10 * 365 * 86_400),
        ] {
            let stored = expiry_at(at).unwrap();
            assert!(stored + 2 >= now && stored < now + 1, "{at:?} -> {stored}");
        }
        // Zero TTL: expired at once, not "never".
        let zero = expiry_after(Duration::ZERO).unwrap();
        assert!(zero < now_secs());
    }
}
