//! The JSON format ([`Format::Json`](crate::Format::Json)): serde_json, with byte strings as
//! base64 strings.
//!
//! JSON has no byte type; serde_json writes a byte string (anything serialized with
//! `serialize_bytes`, such as a `serde_bytes` field) as an array of numbers, 2 to 4 bytes of
//! text per byte and slow to write and parse. This format writes it as a base64 string instead
//! (standard alphabet, padded: 4 bytes of text per 3 bytes), through a serde_json
//! [`Formatter`] that is otherwise serde_json's compact one, so every other value (strings,
//! numbers, a plain `Vec<u8>`, which serializes as a sequence) is written exactly as before.
//!
//! Reading goes through the [`DepthLimited`] adapter in [`Bytes::Base64`] mode: where the target
//! type asks for bytes (`deserialize_bytes` / `deserialize_byte_buf`), a string is decoded from
//! base64 and an array of numbers, the form earlier versions wrote, is read as before. Text that
//! is not base64 where bytes are expected is a decoding error. The adapter adds no depth limit
//! here: serde_json's own recursion limit (128 nested arrays and objects) bounds the stack, as
//! it always did, so every value earlier versions wrote reads back.
//!
//! Two kinds of types cannot tell a base64 string from text, and see the base64 text itself:
//! * a type that reads bytes with `deserialize_any` rather than `deserialize_bytes`. The crate's
//!   own such type, a non-UTF-8 header value in
//!   [`Headers`](crate::cache::response::Headers), is written in the number-array form (see
//!   [`bytes_as_numbers`]);
//! * byte strings inside values that serde buffers before it knows their type: fields of
//!   `#[serde(flatten)]` structs and of untagged or internally tagged enums. Keep byte strings
//!   out of those when storing them as JSON, or use bincode.

use std::cell::Cell;
use std::io;

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::ser::{CompactFormatter, Formatter};

use crate::depth::{Bytes, DepthLimited};

/// The base64 engine of the format: standard alphabet, padded, strict when decoding. On x86-64
/// and AArch64 it is base64's SIMD engine (AVX2 or NEON when the CPU has them, detected once;
/// the scalar engine otherwise), several times faster on large byte strings.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) static BASE64: std::sync::LazyLock<base64::engine::Simd> =
    std::sync::LazyLock::new(|| {
        base64::engine::Simd::standard(base64::engine::general_purpose::PAD)
    });

/// The base64 engine of the format: standard alphabet, padded, strict when decoding.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) static BASE64: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// Input bytes encoded per chunk by [`Base64Formatter`]: a multiple of 3, so that only the last
/// chunk is padded and the chunks concatenate to the encoding of the whole.
const CHUNK: usize = 3 * 2048;

/// Encodes `value` as compact JSON with byte strings as base64 strings.
pub(crate) fn to_vec<V: Serialize + ?Sized>(value: &V) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        Base64Formatter,
    ))?;
    Ok(out)
}

/// Decodes JSON written by [`to_vec`] (or by earlier versions, with byte strings as arrays of
/// numbers); trailing characters other than whitespace are an error, as in
/// `serde_json::from_slice`.
pub(crate) fn from_slice<V: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<V> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = V::deserialize(DepthLimited::with(&mut de, usize::MAX, Bytes::Base64))?;
    de.end()?;
    Ok(value)
}

thread_local! {
    /// Set while [`bytes_as_numbers`] runs.
    static AS_NUMBERS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `write` with byte strings written by this format in the number-array form, not base64.
///
/// For a type that writes bytes with `serialize_bytes` but reads them back with
/// `deserialize_any` (which sees a base64 string as text), and so needs the array to tell bytes
/// from text: `write` should be that single `serialize_bytes` call. Other formats are unaffected.
pub(crate) fn bytes_as_numbers<R>(write: impl FnOnce() -> R) -> R {
    /// Restores the previous setting, even if `write` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            AS_NUMBERS.with(|flag| flag.set(self.0));
        }
    }
    let _restore = Restore(AS_NUMBERS.with(|flag| flag.replace(true)));
    write()
}

/// serde_json's compact formatter, except that byte strings are base64 strings.
struct Base64Formatter;

impl Formatter for Base64Formatter {
    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        if AS_NUMBERS.with(Cell::get) {
            return CompactFormatter.write_byte_array(writer, value);
        }
        // Base64 needs no escaping inside a JSON string. Encode through a stack buffer: no
        // allocation, and the writer (a `Vec`) grows once per chunk at most.
        let mut buf = [0u8; CHUNK / 3 * 4];
        writer.write_all(b"\"")?;
        for chunk in value.chunks(CHUNK) {
            let n = BASE64
                .encode_slice(chunk, &mut buf)
                .map_err(|e| io::Error::other(e.to_string()))?;
            writer.write_all(&buf[..n])?;
        }
        writer.write_all(b"\"")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Serialize};
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::{Encoded, Error, Serializer};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Unit,
        Newtype(ByteBuf),
        Tuple(u8, ByteBuf, Option<ByteBuf>),
        Struct {
            #[serde(with = "serde_bytes")]
            payload: Vec<u8>,
            label: String,
        },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Wrapper(#[serde(with = "serde_bytes")] Vec<u8>);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Record {
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        buf: ByteBuf,
        empty: ByteBuf,
        maybe: Option<ByteBuf>,
        none: Option<ByteBuf>,
        list: Vec<ByteBuf>,
        map: BTreeMap<String, ByteBuf>,
        hash: HashMap<u32, Option<ByteBuf>>,
        kinds: Vec<Kind>,
        wrapper: Wrapper,
        nested: Vec<Option<BTreeMap<String, Vec<ByteBuf>>>>,
        // Not byte strings: these keep their JSON forms.
        numbers: Vec<u8>,
        text: String,
        tuple: (u8, ByteBuf),
    }

    fn record() -> Record {
        let b = |v: &[u8]| ByteBuf::from(v.to_vec());
        Record {
            body: (0..=255).collect(),
            buf: b(b"hello"),
            empty: b(b""),
            maybe: Some(b(&[0xFF, 0x00, 0x7F])),
            none: None,
            list: vec![b(b"a"), b(b""), b(b"abcd")],
            map: BTreeMap::from([("k".to_owned(), b(b"\x00\x01")), ("e".to_owned(), b(b""))]),
            hash: HashMap::from([(1, Some(b(b"x"))), (2, None)]),
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(b(b"newtype")),
                Kind::Tuple(7, b(b"t"), Some(b(b"u"))),
                Kind::Tuple(8, b(b""), None),
                Kind::Struct {
                    payload: vec![1, 2, 3, 4, 5],
                    label: "AQID".to_owned(),
                },
            ],
            wrapper: Wrapper(b"wrapped".to_vec()),
            nested: vec![
                None,
                Some(BTreeMap::from([("n".to_owned(), vec![b(b"deep"), b(b"")])])),
            ],
            numbers: vec![1, 2, 3],
            text: "aGVsbG8=".to_owned(),
            tuple: (9, b(b"?")),
        }
    }

    fn round_trip<V>(value: &V) -> Vec<u8>
    where
        V: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let bytes = to_vec(value).unwrap();
        assert_eq!(&from_slice::<V>(&bytes).unwrap(), value);
        bytes
    }

    #[test]
    fn byte_strings_round_trip_at_every_nesting_level() {
        round_trip(&record());
        round_trip(&Some(record()));
        round_trip(&vec![record(), record()]);
        round_trip(&BTreeMap::from([("r".to_owned(), record())]));
        round_trip(&ByteBuf::from(vec![0u8; 100_000]));
        round_trip(&ByteBuf::new());
        round_trip(&Kind::Newtype(ByteBuf::from(vec![0xAB; 7])));
        // Every length modulo 3 (padding) and across the encoder's chunk boundary.
        for len in [0, 1, 2, 3, 4, 5, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 2] {
            let v: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let json = round_trip(&ByteBuf::from(v.clone()));
            assert_eq!(json, format!("\"{}\"", STANDARD.encode(&v)).into_bytes());
        }
    }

    #[test]
    fn byte_strings_are_base64_strings_and_nothing_else_changes() {
        let value = record();
        let ours = to_vec(&value).unwrap();
        let text = std::str::from_utf8(&ours).unwrap();
        assert!(text.contains(r#""buf":"aGVsbG8=""#), "{text}");
        assert!(text.contains(r#""empty":"""#), "{text}");
        assert!(text.contains(r#""maybe":"/wB/""#), "{text}");
        assert!(text.contains(r#""list":["YQ==","","YWJjZA=="]"#), "{text}");
        assert!(text.contains(r#"{"Struct":{"payload":"AQIDBAU=","label":"AQID"}}"#));
        assert!(text.contains(&format!(r#""body":"{}""#, STANDARD.encode(&value.body))));
        // Sequences of u8 that are not byte strings, and strings, are as serde_json writes them.
        assert!(text.contains(r#""numbers":[1,2,3]"#), "{text}");
        assert!(text.contains(r#""text":"aGVsbG8=""#), "{text}");
        // Without byte strings the output is byte for byte serde_json's.
        let plain = (
            1u8,
            "two",
            vec![3u8],
            4.5f64,
            BTreeMap::from([("k", [None, Some(6)])]),
        );
        assert_eq!(to_vec(&plain).unwrap(), serde_json::to_vec(&plain).unwrap());
    }

    #[test]
    fn the_old_number_array_form_still_reads() {
        // What earlier versions stored: serde_json's own output, byte strings as arrays.
        let value = record();
        let old = serde_json::to_vec(&value).unwrap();
        assert!(
            std::str::from_utf8(&old)
                .unwrap()
                .contains(r#""buf":[104,101,108,108,111]"#)
        );
        assert_eq!(from_slice::<Record>(&old).unwrap(), value);
        // Through the serializer too, and mixed with the new form in one value.
        let s = Serializer::json();
        assert_eq!(s.loads::<Record>("k", Encoded::Bytes(old)).unwrap(), value);
        let mixed = br#"[[104,105],"aGk=",[],""]"#;
        let back: Vec<ByteBuf> = from_slice(mixed).unwrap();
        assert_eq!(back, [&b"hi"[..], b"hi", b"", b""]);
        // Numbers out of byte range are still refused.
        assert!(from_slice::<ByteBuf>(b"[256]").is_err());
        assert!(from_slice::<ByteBuf>(b"[-1]").is_err());
    }

    #[test]
    fn invalid_base64_is_a_decoding_error_naming_the_key() {
        let s = Serializer::json();
        for bad in [
            &br#""not base64!""#[..],
            br#""aGVsbG8""#,              // missing padding
            br#""aGVsbG8==""#,            // too much padding
            br#""aGVsbG9=""#,             // non-zero trailing bits
            br#""a""#,                    // impossible length
            br#""aGVs bG8=""#,            // whitespace
            br#""aGVsbG8=\n""#,           // escaped newline
            "\"h\u{e9}llo=\"".as_bytes(), // non-ASCII
        ] {
            let err = s
                .loads::<ByteBuf>("the-key", Encoded::Bytes(bad.to_vec()))
                .unwrap_err();
            match err {
                Error::Deserialize { key, message } => {
                    assert_eq!(key, "the-key");
                    assert!(message.contains("not valid base64"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        // Nested, and in a struct field.
        let mut text = String::from_utf8(to_vec(&record()).unwrap()).unwrap();
        text = text.replace(r#""buf":"aGVsbG8=""#, r#""buf":"@@@@""#);
        assert!(matches!(
            s.loads::<Record>("k", Encoded::Bytes(text.into_bytes())),
            Err(Error::Deserialize { .. })
        ));
        // Other wrong types where bytes are expected are errors as before.
        for bad in [&b"1"[..], b"true", b"null", b"{}", br#"["YQ=="]"#] {
            assert!(from_slice::<ByteBuf>(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escaped_base64_text_decodes() {
        // A JSON writer may escape `/` (and anything else); the text is what counts.
        let escaped = br#""\/wB\u002f""#;
        assert_eq!(
            from_slice::<ByteBuf>(escaped).unwrap(),
            [0xFF, 0x00, 0x7F][..]
        );
    }

    #[test]
    fn serializer_round_trips_plain_and_signed() {
        for s in [
            Serializer::json(),
            Serializer::json().signed("a long secret", "salt"),
        ] {
            let value = record();
            let encoded = s.dumps("k", &value).unwrap();
            let Encoded::Bytes(bytes) = &encoded else {
                unreachable!()
            };
            let needle = format!(r#""body":"{}""#, STANDARD.encode(&value.body));
            assert!(
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{}",
                s.id()
            );
            assert_eq!(s.loads::<Record>("k", encoded).unwrap(), value);
            let empty: ByteBuf = s
                .loads("k", s.dumps("k", &ByteBuf::new()).unwrap())
                .unwrap();
            assert!(empty.is_empty());
        }
    }

    #[test]
    fn values_nested_deeper_than_the_bincode_limit_still_read() {
        // serde_json's own limit applies (128 nested arrays/objects); the adapter adds none, so
        // a value with many Option / newtype levels per JSON level reads as it always did.
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct W(Option<Vec<W>>);
        let mut w = W(None);
        for _ in 0..100 {
            w = W(Some(vec![w]));
        }
        round_trip(&w);
        let mut deep = String::new();
        for _ in 0..200 {
            deep.push('[');
        }
        assert!(from_slice::<serde_json::Value>(deep.as_bytes()).is_err());
    }

    #[test]
    fn trailing_characters_are_refused() {
        assert!(from_slice::<ByteBuf>(br#""YQ==" "#).is_ok());
        assert!(from_slice::<ByteBuf>(br#""YQ==" x"#).is_err());
        assert!(from_slice::<u8>(b"1 2").is_err());
    }

    #[test]
    fn buffered_values_see_the_base64_text() {
        // The documented limitation: serde buffers an internally tagged enum's (or a flattened
        // struct's) fields before it knows their types, so a byte string in one reads back as
        // its base64 text. The old number-array form reads correctly.
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        enum Tagged {
            Data { payload: ByteBuf },
        }
        let value = Tagged::Data {
            payload: ByteBuf::from(vec![1, 2, 3]),
        };
        let json = to_vec(&value).unwrap();
        assert_eq!(json, br#"{"type":"Data","payload":"AQID"}"#);
        assert_eq!(
            from_slice::<Tagged>(&json).unwrap(),
            Tagged::Data {
                payload: ByteBuf::from(b"AQID".to_vec())
            }
        );
        let old = serde_json::to_vec(&value).unwrap();
        assert_eq!(from_slice::<Tagged>(&old).unwrap(), value);
    }

    #[test]
    fn bytes_as_numbers_writes_arrays_and_restores() {
        struct Numbers<'a>(&'a [u8]);
        impl Serialize for Numbers<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                bytes_as_numbers(|| s.serialize_bytes(self.0))
            }
        }
        let value = (Numbers(&[1, 2]), ByteBuf::from(vec![1, 2]));
        assert_eq!(to_vec(&value).unwrap(), br#"[[1,2],"AQI="]"#);
        assert!(!AS_NUMBERS.with(Cell::get));
        // Restored after a panic, too.
        let _ = std::panic::catch_unwind(|| bytes_as_numbers(|| panic!("boom")));
        assert!(!AS_NUMBERS.with(Cell::get));
    }

    #[test]
    fn the_engine_matches_base64s_standard_one() {
        // The SIMD engine must accept and refuse exactly what the scalar STANDARD engine does.
        let mut rng = fastrand::Rng::with_seed(7);
        for len in (0..200).chain([1000, 4096, 65_537]) {
            let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let text = BASE64.encode(&data);
            assert_eq!(text, STANDARD.encode(&data), "{len}");
            assert_eq!(BASE64.decode(&text).unwrap(), data);
            // Corruptions: one byte replaced anywhere.
            if !text.is_empty() {
                for _ in 0..20 {
                    let mut bad = text.clone().into_bytes();
                    let i = rng.usize(..bad.len());
                    bad[i] = b"!=A/+\"\0\xff"[rng.usize(..8)];
                    assert_eq!(
                        BASE64.decode(&bad).is_ok(),
                        STANDARD.decode(&bad).is_ok(),
                        "{len} {:?}",
                        String::from_utf8_lossy(&bad)
                    );
                }
            }
        }
    }
}
