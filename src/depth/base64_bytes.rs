//! The visitor behind [`Bytes::Base64`](super::Bytes::Base64): byte strings that arrive as
//! base64 text.
//!
//! JSON has no byte type, so the JSON format writes a byte string as a base64 string (see
//! `crate::json`). When the target type asks for bytes, serde_json's `deserialize_bytes` hands
//! a string's raw text to the visitor as bytes, and an array (the number-array form earlier
//! versions wrote) as a sequence. [`Base64Bytes`] wraps the target's visitor: text, whether it
//! comes as `str` or as bytes, is decoded and handed over with `visit_byte_buf`; every other
//! call reaches the wrapped visitor unchanged, so an array of numbers still decodes as it always
//! did.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

/// Wraps a visitor that expects bytes, decoding base64 text for it.
pub(super) struct Base64Bytes<V>(pub(super) V);

impl<V> Base64Bytes<V> {
    /// Decodes `text` and hands the bytes to the wrapped visitor; text that is not base64
    /// (standard alphabet, padded) is an error, never a panic.
    fn decode<'de, E: de::Error>(self, text: &[u8]) -> Result<V::Value, E>
    where
        V: Visitor<'de>,
    {
        let mut bytes = Vec::new();
        crate::json::BASE64
            .decode_vec(text, &mut bytes)
            .map_err(|e| E::custom(format_args!("a byte string is not valid base64: {e}")))?;
        self.0.visit_byte_buf(bytes)
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Base64Bytes<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(" (base64 text or a list of byte values)")
    }

    // Text, however it arrives: base64.

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.decode(v.as_bytes())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.decode(v.as_bytes())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.decode(v.as_bytes())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<V::Value, E> {
        self.decode(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<V::Value, E> {
        self.decode(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<V::Value, E> {
        self.decode(&v)
    }

    // Anything else, such as the old number-array form: unchanged.

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(data)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(deserializer)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        self.0.visit_bool(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        self.0.visit_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.0.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        self.0.visit_f64(v)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_bytes::ByteBuf;

    use super::super::{Bytes, DepthLimited, MAX_DEPTH};

    fn read(text: &str) -> serde_json::Result<ByteBuf> {
        let mut json = serde_json::Deserializer::from_str(text);
        ByteBuf::deserialize(DepthLimited::with(&mut json, MAX_DEPTH, Bytes::Base64))
    }

    #[test]
    fn text_is_decoded_and_arrays_pass_through() {
        assert_eq!(read(r#""aGk=""#).unwrap(), b"hi"[..]);
        assert_eq!(read(r#""""#).unwrap(), b""[..]);
        assert_eq!(read("[104,105]").unwrap(), b"hi"[..]);
        assert_eq!(read("[]").unwrap(), b""[..]);
    }

    #[test]
    fn errors_say_what_was_wrong_and_where() {
        let err = read(r#""aGk""#).unwrap_err().to_string();
        assert!(
            err.starts_with("a byte string is not valid base64: ") && err.contains("column 5"),
            "{err}"
        );
        let err = read("7").unwrap_err().to_string();
        assert!(
            err.contains("(base64 text or a list of byte values)"),
            "{err}"
        );
    }
}
