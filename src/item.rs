//! Turning values into DynamoDB items and back, with expiry and serializer checks.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::chunks::{self, Prepared};
use crate::layout::{self, FORMAT, Layout, MAX_ITEM_BYTES, PK, SIGNATURE, SK, VALUE};
use crate::serializer::{Encoded, Serializer, attribute_size, canonical_bytes};
use crate::{Error, Result};

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The expiry timestamp for a time-to-live starting now: whole seconds, rounded up, so an item
/// never expires before its time-to-live has passed.
pub(crate) fn expiry_after(ttl: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let at = now.saturating_add(ttl);
    at.as_secs() + u64::from(at.subsec_nanos() > 0)
}

/// Whether an item has not expired, judged exactly as the server-side filter
/// `attribute_not_exists(ttl) OR ttl > :now` judges it (so `get` and listing always agree):
/// no expiry attribute is live; a number is compared with now; any other type is expired.
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

/// Encodes `value` into the item(s) for `key`: one item, or with `max_value` set and the value
/// over the item limit, a manifest and its chunks (see [`crate::chunks`]).
pub(crate) fn build_item<V: Serialize + ?Sized>(
    layout: &Layout,
    serializer: &Serializer,
    key: &str,
    value: &V,
    expires_at: Option<u64>,
    max_value: Option<usize>,
) -> Result<Prepared> {
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
    let ttl = match (layout.ttl_attribute.as_deref(), expires_at) {
        (Some(attr), Some(at)) => {
            let n = AttributeValue::N(at.to_string());
            size += attr.len() + attribute_size(&n);
            item.insert(attr.to_owned(), n.clone());
            Some((attr, n))
        }
        _ => None,
    };
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
        return Ok(Prepared::Inline(item));
    }
    let Some(max) = max_value else {
        return Err(Error::ItemTooLarge {
            key: key.to_owned(),
            size: inline_size,
            max: MAX_ITEM_BYTES,
        });
    };
    let payload = match encoded {
        Encoded::Bytes(bytes) => bytes,
        Encoded::Document { value, signature } => {
            if let Some(sig) = signature {
                item.insert(SIGNATURE.to_owned(), AttributeValue::B(Blob::new(sig)));
            }
            canonical_bytes(&value)
        }
    };
    if payload.len() > max {
        return Err(Error::ItemTooLarge {
            key: key.to_owned(),
            size: payload.len(),
            max,
        });
    }
    Ok(chunks::split(layout, key, item, &payload, ttl))
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
    let value = item.remove(VALUE).ok_or_else(|| Error::Deserialize {
        key: key.to_owned(),
        message: "the item has no value attribute".into(),
    })?;
    let encoded = match serializer.format() {
        crate::serializer::Format::Document => Encoded::Document {
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
    serializer.loads(key, encoded).map(Some)
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
    use super::*;

    fn layout() -> Layout {
        Layout {
            table: "t".into(),
            namespace: "ns".into(),
            shards: 8,
            ttl_attribute: Some("ttl".into()),
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let (l, s) = (layout(), Serializer::bincode());
        let (item, _) = build_item(&l, &s, "k", &42u32, Some(100), None)
            .unwrap()
            .into_parts();
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
        let at = expiry_after(Duration::from_millis(1));
        assert!(at > now_secs().saturating_sub(1));
        assert!(expiry_after(Duration::from_secs(10)) >= now_secs() + 10);
    }

    #[test]
    fn other_serializer_is_reported() {
        let l = layout();
        let (item, _) = build_item(&l, &Serializer::json(), "k", &1u8, None, None)
            .unwrap()
            .into_parts();
        let err = read_item::<u8>(&l, &Serializer::bincode(), "k", item, 0).unwrap_err();
        assert!(
            matches!(err, Error::SerializerMismatch { ref found, .. } if found == "json"),
            "{err}"
        );
    }

    #[test]
    fn oversized_items_are_refused_or_chunked() {
        let l = layout();
        let big = "x".repeat(MAX_ITEM_BYTES);
        let s = Serializer::bincode();
        let err = build_item(&l, &s, "k", &big, None, None).err().unwrap();
        assert!(
            matches!(err, Error::ItemTooLarge { ref key, max: MAX_ITEM_BYTES, .. } if key == "k")
        );
        let Prepared::Chunked { manifest, chunks } =
            build_item(&l, &s, "k", &big, Some(9), Some(1 << 20)).unwrap()
        else {
            panic!("expected chunks")
        };
        assert_eq!(chunks.len(), 2);
        assert!(!manifest.contains_key(VALUE) && manifest.contains_key("g"));
        assert!(
            chunks
                .iter()
                .all(|c| c.get("ttl") == Some(&AttributeValue::N("9".into())))
        );
        let err = build_item(&l, &s, "k", &"y".repeat(2 << 20), None, Some(1 << 20))
            .err()
            .unwrap();
        assert!(matches!(err, Error::ItemTooLarge { max: 1048576, .. }));
    }
}
