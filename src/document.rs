//! A serde data format for native DynamoDB documents: values straight to and from the SDK's
//! [`AttributeValue`], with no intermediate tree.
//!
//! `serde_dynamo` serializes into its own `serde_dynamo::AttributeValue` and then converts that
//! tree into the SDK's type (and the other way round when reading), rebuilding every map and
//! rehashing every key in both directions. [`to_attribute_value`] builds the SDK value directly, and
//! [`from_attribute_value`] consumes an owned SDK value directly: strings, byte buffers and
//! lists are moved into the visitor, maps are drained with `into_iter`, and no key is ever
//! looked up.
//!
//! # Compatibility with `serde_dynamo` 4.3
//!
//! Items written by this crate used to be produced by `serde_dynamo`, and users may read and
//! write the same table with it, so both directions mirror `serde_dynamo` 4.3 exactly (the
//! tests compare the two on generated values and generated documents):
//!
//! - integers up to 64 bits, `f32` and `f64` become `N` holding their `Display` form, so NaN
//!   and the infinities become `N("NaN")`, `N("inf")` and `N("-inf")` rather than errors
//!   (DynamoDB itself refuses to store those); `i128` and `u128` values are refused, although
//!   they are accepted as map keys;
//! - `char` and strings become `S`; `serialize_bytes` (`serde_bytes`) becomes `B`, while a
//!   plain `Vec<u8>` is a sequence and becomes an `L` of `N`s (and does not read back from `B`);
//! - unit, unit structs and `None` become `NULL: true`; `Some(x)` and newtype structs are
//!   transparent;
//! - sequences, tuples and tuple structs become `L`; maps and structs become `M`;
//! - enums are externally tagged: a unit variant is `S(variant)`, the others a one-entry `M`
//!   from the variant name to the content (`L` for tuple variants, `M` for struct variants);
//! - map keys may be strings, chars, integers of every width (including 128 bits), bools
//!   (`"true"`/`"false"`), unit variants and newtype structs around those; floats, options,
//!   units, tuples, structs and non-unit variants are refused;
//! - the newtype-struct names used by `serde_dynamo::string_set`, `number_set` and
//!   `binary_set` turn an `L` of `S`, `N` or `B` into `SS`, `NS` or `BS`;
//! - `N` read through `deserialize_any` (`serde_json::Value`, untagged enums, flattening)
//!   becomes an `i64` if it parses as one, else a `u64`, else an `f64` (`"1e400"` is infinity),
//!   else an error; `NULL: false` is not a unit (only `NULL: true` is);
//! - `SS`, `NS` and `BS` read as sequences of strings, numbers and byte buffers.
//!
//! Where `serde_dynamo` panics this module returns an error instead: map keys that serialize
//! as sequences, maps or bytes, and the SDK's `Unknown` attribute value variant.
//!
//! # Nesting limit
//!
//! `serde_dynamo` recurses once per nesting level with no limit, so a deeply nested document
//! (10,000 levels of `L`) overflows the stack and aborts the process. DynamoDB itself stores at
//! most 32 levels, so [`from_attribute_value`] fails with [`TOO_DEEP`] past [`MAX_DEPTH`] (128)
//! levels, counting each `L`, `M`, set, `M`-encoded enum, `Some` and newtype struct as one
//! level, the same budget bincode values get from [`crate::depth`]. Input that is rejected or
//! left unread is dropped without recursion, so arbitrarily deep input cannot overflow the
//! stack while being discarded either.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map;
use std::fmt;
use std::vec;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde::forward_to_deserialize_any;
use serde::ser::{self, Impossible, Serialize};

use crate::depth::{MAX_DEPTH, TOO_DEEP};

/// Serializes `value` as a DynamoDB attribute value, exactly as
/// `serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value` would.
pub(crate) fn to_attribute_value<T: Serialize + ?Sized>(
    value: &T,
) -> Result<AttributeValue, DocumentError> {
    value.serialize(Serializer)
}

/// Deserializes a `T` from a DynamoDB attribute value, accepting and refusing exactly what
/// `serde_dynamo::aws_sdk_dynamodb_1::from_attribute_value` does, except that it fails instead
/// of overflowing the stack past [`MAX_DEPTH`] levels of nesting and instead of panicking on
/// `AttributeValue::Unknown`.
pub(crate) fn from_attribute_value<T: DeserializeOwned>(
    value: AttributeValue,
) -> Result<T, DocumentError> {
    T::deserialize(Deserializer::new(value, MAX_DEPTH))
}

/// Why a value could not be converted to or from a DynamoDB attribute value.
///
/// The messages of the errors this module raises itself are the ones `serde_dynamo` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocumentError(Cow<'static, str>);

impl DocumentError {
    /// An error with a fixed message (no allocation: untagged enums create and discard many).
    const fn new(message: &'static str) -> Self {
        Self(Cow::Borrowed(message))
    }
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DocumentError {}

impl ser::Error for DocumentError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(Cow::Owned(msg.to_string()))
    }
}

impl de::Error for DocumentError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(Cow::Owned(msg.to_string()))
    }
}

// serde_dynamo's messages, for the errors it raises itself.
const NOT_SETLIKE: DocumentError = DocumentError::new("Not a set-like sequence");
const EXPECTED_STRING: DocumentError = DocumentError::new("Expected string");
const EXPECTED_MAP: DocumentError = DocumentError::new("Expected map");
const EXPECTED_SEQ: DocumentError = DocumentError::new("Expected seq");
const EXPECTED_NUM: DocumentError = DocumentError::new("Expected num");
const EXPECTED_BOOL: DocumentError = DocumentError::new("Expected bool");
const EXPECTED_CHAR: DocumentError = DocumentError::new("Expected char");
const EXPECTED_UNIT: DocumentError = DocumentError::new("Expected unit");
const EXPECTED_UNIT_STRUCT: DocumentError = DocumentError::new("Expected unit struct");
const EXPECTED_ENUM: DocumentError = DocumentError::new("Expected enum");
const EXPECTED_BYTES: DocumentError = DocumentError::new("Expected binary data");
const EXPECTED_SINGLE_KEY: DocumentError = DocumentError::new("Expected an item with a single key");
const KEY_MUST_BE_A_STRING: DocumentError = DocumentError::new("Key must be a string");
const KEY_CALLED_TWICE: DocumentError =
    DocumentError::new("SerializeMap::serialize_key called twice");
const VALUE_BEFORE_KEY: DocumentError =
    DocumentError::new("SerializeMap::serialize_value called before SerializeMap::serialize_key");
const STRING_SET_EXPECTED_TYPE: DocumentError =
    DocumentError::new("String set element does not serialize to string");
const NUMBER_SET_EXPECTED_TYPE: DocumentError =
    DocumentError::new("Number set element does not serialize to number");
const BINARY_SET_EXPECTED_TYPE: DocumentError =
    DocumentError::new("Binary set element does not serialize to binary");
// Cases where serde_dynamo panics instead.
const UNKNOWN_VARIANT: DocumentError = DocumentError::new("unknown DynamoDB attribute value type");
const VALUE_WITHOUT_KEY: DocumentError =
    DocumentError::new("MapAccess::next_value called before MapAccess::next_key");

/// The newtype-struct name `serde_dynamo::string_set` serializes through.
///
/// serde_dynamo compares the pointer to its own static; this module compares the text, so it
/// also honours the name when it comes from another copy of serde_dynamo.
const STRING_SET: &str = "\u{037E}STRINGSET\u{037E}";
/// The newtype-struct name `serde_dynamo::number_set` serializes through.
const NUMBER_SET: &str = "\u{037E}NUMBERSET\u{037E}";
/// The newtype-struct name `serde_dynamo::binary_set` serializes through.
const BINARY_SET: &str = "\u{037E}BYTESSET\u{037E}";

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

/// The serde serializer producing an [`AttributeValue`].
struct Serializer;

/// A number as serde_dynamo writes it: its `Display` form.
fn number(n: impl ToString) -> Result<AttributeValue, DocumentError> {
    Ok(AttributeValue::N(n.to_string()))
}

/// A number map key as serde_dynamo writes it: its `Display` form.
fn key_number(n: impl ToString) -> Result<String, DocumentError> {
    Ok(n.to_string())
}

/// Serializer methods for integer types, each returning `$convert(v)`.
macro_rules! serialize_numbers {
    ($out:ty, $convert:ident; $($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<$out, DocumentError> {
            $convert(v)
        }
    )*};
}

/// Exactly `v.to_string()` (the shortest decimal that parses back to `v`, written without an
/// exponent), which serde_dynamo uses, but about twice as fast when that decimal has at most
/// 15 significant digits (prices, scores, measurements: most floats people store).
fn f64_to_string(v: f64) -> String {
    short_decimal(v).unwrap_or_else(|| v.to_string())
}

/// `v` written as `to_string` writes it, if it is finite and equal to (the double nearest to) a
/// decimal of at most 15 significant digits with at most 22 digits after the point; `None`
/// otherwise.
///
/// Why this matches `to_string`:
/// - Two different decimals of at most 15 significant digits never parse to the same double
///   (15 is `f64::DIGITS`), so a decimal of at most 15 digits that parses back to `v` is the
///   only one, and no shorter one exists: it is what the shortest round-trip algorithm behind
///   `Display` prints (written positionally, without trailing zeros after the point).
/// - Such a decimal has at most `k` digits after the point, `k` being the largest (at most 22)
///   with `y = |v| * 10^k < 10^15`, so `D = decimal * 10^k` is an integer below `10^15`. `|v|`
///   is within half an ulp (relative error 2^-53) of `D / 10^k`, and the product rounds with
///   the same relative error, so `|y - D| <= y * 2^-52`, less than one half: `D` is the
///   integer nearest `y`. When `y` is further than `y * 2^-51` from an integer, there is no
///   such decimal.
/// - `D / 10^k == |v|` tests that the decimal parses back to `v`: `D < 2^53` and `10^k`
///   (`k <= 22`) are exact doubles, so the division is correctly rounded (to nearest, ties to
///   even) like parsing is.
fn short_decimal(v: f64) -> Option<String> {
    /// Powers of ten that are exact doubles.
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    /// 2^-51: twice the bound on how far `y` is from `D`, relative to `y`.
    const TOLERANCE: f64 = 4.440_892_098_500_626e-16;
    if v == 0.0 {
        return Some(if v.is_sign_negative() { "-0" } else { "0" }.to_owned());
    }
    let a = v.abs();
    if !a.is_finite() || a >= 1e15 {
        return None;
    }
    // floor(log2 a) (-1023 for subnormals), then floor(log10 a) or one less.
    let log2 = (a.to_bits() >> 52) as i32 - 1023;
    let log10 = (log2 * 78_913) >> 18;
    // 14 - log10 is the largest k with a * 10^k < 10^15, or one more.
    let mut k = (14 - log10).clamp(0, 22) as usize;
    while k > 0 && a * POW10[k] >= 1e15 {
        k -= 1;
    }
    let scale = POW10[k];
    let y = a * scale;
    // `as` truncates (exactly, below 1e15) and `y - whole` is exact.
    let whole = y as u64;
    let fraction = y - whole as f64;
    let tolerance = y * TOLERANCE;
    let mut digits = if fraction <= tolerance {
        whole
    } else if 1.0 - fraction <= tolerance {
        whole + 1
    } else {
        return None; // more than 15 significant digits: the usual case for arbitrary doubles
    };
    if digits as f64 / scale != a {
        return None;
    }
    // Drop the trailing zeros after the point: min(their count, k) <= 15 of them, stripped
    // 8, 4, 2 and 1 at a time.
    for (count, power) in [(8, 100_000_000), (4, 10_000), (2, 100), (1, 10)] {
        if k >= count && digits % power == 0 {
            digits /= power;
            k -= count;
        }
    }
    write_decimal(v < 0.0, digits, k)
}

/// `digits * 10^-k` in positional notation (`"-0.0125"`, `"97.25"`, `"3"`), for
/// `digits <= 10^15` and `k <= 22`. (Never `None`: the bytes are ASCII.)
fn write_decimal(negative: bool, mut digits: u64, k: usize) -> Option<String> {
    // Built from the end: at most 23 digits (16, or `k` after the point and a leading zero),
    // the point and the sign.
    let mut buf = [b'0'; 32];
    let mut start = buf.len();
    let mut written = 0;
    while digits > 0 || written <= k {
        if written == k && k > 0 {
            start -= 1;
            buf[start] = b'.';
        }
        start -= 1;
        buf[start] = b'0' + (digits % 10) as u8;
        digits /= 10;
        written += 1;
    }
    if negative {
        start -= 1;
        buf[start] = b'-';
    }
    std::str::from_utf8(&buf[start..]).ok().map(str::to_owned)
}

/// A one-entry map, the form of every non-unit enum variant.
fn variant_map(variant: &'static str, value: AttributeValue) -> AttributeValue {
    let mut map = HashMap::with_capacity(1);
    map.insert(variant.to_owned(), value);
    AttributeValue::M(map)
}

/// Turns an `L` whose elements are all of one kind into a set, as serde_dynamo does for the
/// values of its `*_set` modules: anything but an `L` is [`NOT_SETLIKE`], any element `pick`
/// refuses is `wrong_element`.
fn into_set<T>(
    value: AttributeValue,
    pick: fn(AttributeValue) -> Option<T>,
    wrong_element: DocumentError,
) -> Result<Vec<T>, DocumentError> {
    let AttributeValue::L(items) = value else {
        return Err(NOT_SETLIKE);
    };
    items
        .into_iter()
        .map(|item| pick(item).ok_or_else(|| wrong_element.clone()))
        .collect()
}

impl ser::Serializer for Serializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    type SerializeSeq = SeqSerializer;
    type SerializeTuple = SeqSerializer;
    type SerializeTupleStruct = SeqSerializer;
    type SerializeTupleVariant = TupleVariantSerializer;
    type SerializeMap = MapSerializer;
    type SerializeStruct = StructSerializer;
    type SerializeStructVariant = StructVariantSerializer;

    fn serialize_bool(self, v: bool) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::Bool(v))
    }

    serialize_numbers! {
        AttributeValue, number;
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64
    }

    // `serialize_i128` and `serialize_u128` keep serde's default, an "i128 is not supported"
    // error, as in serde_dynamo (whose map keys do accept them).

    /// `Display`, like serde_dynamo: shortest round-tripping digits, never an exponent
    /// (`1e20` is `"100000000000000000000"`), and `"NaN"`, `"inf"`, `"-inf"` (not refused).
    fn serialize_f32(self, v: f32) -> Result<AttributeValue, DocumentError> {
        number(v)
    }

    /// Like `serialize_f32`; [`f64_to_string`] is a faster `to_string`.
    fn serialize_f64(self, v: f64) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::N(f64_to_string(v)))
    }

    fn serialize_char(self, v: char) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::S(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::S(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::B(Blob::new(v)))
    }

    fn serialize_none(self) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::Null(true))
    }

    fn serialize_some<T: Serialize + ?Sized>(
        self,
        value: &T,
    ) -> Result<AttributeValue, DocumentError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::Null(true))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::Null(true))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::S(variant.to_owned()))
    }

    /// Transparent, except for the names of serde_dynamo's set modules.
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<AttributeValue, DocumentError> {
        let value = value.serialize(self)?;
        match name {
            STRING_SET => into_set(
                value,
                |item| match item {
                    AttributeValue::S(s) => Some(s),
                    _ => None,
                },
                STRING_SET_EXPECTED_TYPE,
            )
            .map(AttributeValue::Ss),
            NUMBER_SET => into_set(
                value,
                |item| match item {
                    AttributeValue::N(n) => Some(n),
                    _ => None,
                },
                NUMBER_SET_EXPECTED_TYPE,
            )
            .map(AttributeValue::Ns),
            BINARY_SET => into_set(
                value,
                |item| match item {
                    AttributeValue::B(b) => Some(b),
                    _ => None,
                },
                BINARY_SET_EXPECTED_TYPE,
            )
            .map(AttributeValue::Bs),
            _ => Ok(value),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<AttributeValue, DocumentError> {
        Ok(variant_map(variant, value.serialize(Serializer)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer, DocumentError> {
        Ok(SeqSerializer(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqSerializer, DocumentError> {
        Ok(SeqSerializer(Vec::with_capacity(len)))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqSerializer, DocumentError> {
        Ok(SeqSerializer(Vec::with_capacity(len)))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TupleVariantSerializer, DocumentError> {
        Ok(TupleVariantSerializer {
            variant,
            items: Vec::with_capacity(len),
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapSerializer, DocumentError> {
        Ok(MapSerializer {
            map: HashMap::with_capacity(len.unwrap_or(0)),
            next_key: None,
        })
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<StructSerializer, DocumentError> {
        Ok(StructSerializer(HashMap::with_capacity(len)))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<StructVariantSerializer, DocumentError> {
        Ok(StructVariantSerializer {
            variant,
            fields: HashMap::with_capacity(len),
        })
    }
}

/// Sequences, tuples and tuple structs: an `L`.
struct SeqSerializer(Vec<AttributeValue>);

impl ser::SerializeSeq for SeqSerializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DocumentError> {
        self.0.push(value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::L(self.0))
    }
}

impl ser::SerializeTuple for SeqSerializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DocumentError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<AttributeValue, DocumentError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqSerializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DocumentError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<AttributeValue, DocumentError> {
        ser::SerializeSeq::end(self)
    }
}

/// Tuple variants: `{variant: L}`.
struct TupleVariantSerializer {
    /// The variant's name, the key of the one-entry map.
    variant: &'static str,
    /// The fields so far.
    items: Vec<AttributeValue>,
}

impl ser::SerializeTupleVariant for TupleVariantSerializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DocumentError> {
        self.items.push(value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<AttributeValue, DocumentError> {
        Ok(variant_map(self.variant, AttributeValue::L(self.items)))
    }
}

/// Maps (and structs with flattened fields): an `M`, keys stringified by [`KeySerializer`].
///
/// As in serde_dynamo, a repeated key keeps the last value.
struct MapSerializer {
    /// The entries so far.
    map: HashMap<String, AttributeValue>,
    /// The key passed to `serialize_key`, waiting for its value.
    next_key: Option<String>,
}

impl ser::SerializeMap for MapSerializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), DocumentError> {
        if self.next_key.is_some() {
            return Err(KEY_CALLED_TWICE);
        }
        self.next_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DocumentError> {
        let key = self.next_key.take().ok_or(VALUE_BEFORE_KEY)?;
        self.map.insert(key, value.serialize(Serializer)?);
        Ok(())
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), DocumentError> {
        let key = key.serialize(KeySerializer)?;
        let value = value.serialize(Serializer)?;
        self.map.insert(key, value);
        Ok(())
    }

    fn end(self) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::M(self.map))
    }
}

/// Structs: an `M` from field names. Skipped fields are left out.
struct StructSerializer(HashMap<String, AttributeValue>);

impl ser::SerializeStruct for StructSerializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), DocumentError> {
        let value = value.serialize(Serializer)?;
        self.0.insert(key.to_owned(), value);
        Ok(())
    }

    fn end(self) -> Result<AttributeValue, DocumentError> {
        Ok(AttributeValue::M(self.0))
    }
}

/// Struct variants: `{variant: M}`.
struct StructVariantSerializer {
    /// The variant's name, the key of the one-entry map.
    variant: &'static str,
    /// The fields so far.
    fields: HashMap<String, AttributeValue>,
}

impl ser::SerializeStructVariant for StructVariantSerializer {
    type Ok = AttributeValue;
    type Error = DocumentError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), DocumentError> {
        let value = value.serialize(Serializer)?;
        self.fields.insert(key.to_owned(), value);
        Ok(())
    }

    fn end(self) -> Result<AttributeValue, DocumentError> {
        Ok(variant_map(self.variant, AttributeValue::M(self.fields)))
    }
}

/// Serializes map keys to the strings serde_dynamo uses: strings and chars as they are,
/// integers of every width in decimal, bools as `"true"`/`"false"`, unit variants as their
/// name, newtype structs as their content (the set names are not special here). Everything else
/// is [`KEY_MUST_BE_A_STRING`]; serde_dynamo panics (`unreachable!`) on sequences, maps and
/// bytes, which this serializer refuses like the rest.
struct KeySerializer;

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = DocumentError;

    type SerializeSeq = Impossible<String, DocumentError>;
    type SerializeTuple = Impossible<String, DocumentError>;
    type SerializeTupleStruct = Impossible<String, DocumentError>;
    type SerializeTupleVariant = Impossible<String, DocumentError>;
    type SerializeMap = Impossible<String, DocumentError>;
    type SerializeStruct = Impossible<String, DocumentError>;
    type SerializeStructVariant = Impossible<String, DocumentError>;

    fn serialize_bool(self, v: bool) -> Result<String, DocumentError> {
        Ok(if v { "true" } else { "false" }.to_owned())
    }

    serialize_numbers! {
        String, key_number;
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128
    }

    fn serialize_f32(self, _v: f32) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_f64(self, _v: f64) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_char(self, v: char) -> Result<String, DocumentError> {
        Ok(v.to_string())
    }

    fn serialize_str(self, v: &str) -> Result<String, DocumentError> {
        Ok(v.to_owned())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_none(self) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_unit(self) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<String, DocumentError> {
        Ok(variant.to_owned())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, DocumentError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, DocumentError> {
        Err(KEY_MUST_BE_A_STRING)
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialization
// ---------------------------------------------------------------------------------------------

/// Drops `value` without recursing, however deeply it nests.
///
/// Used for every part of the input this module discards (refused values, unread list
/// elements and map entries, the content of unit variants), so that a document nested far
/// deeper than [`MAX_DEPTH`] cannot overflow the stack in drop glue either.
fn discard(value: AttributeValue) {
    if !matches!(value, AttributeValue::L(_) | AttributeValue::M(_)) {
        return; // no nested attribute values: the ordinary drop does not recurse
    }
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            AttributeValue::L(items) => pending.extend(items),
            AttributeValue::M(map) => pending.extend(map.into_values()),
            _ => {}
        }
    }
}

/// Discards `value` (see [`discard`]) and returns `error`.
#[cold]
fn refuse(value: AttributeValue, error: DocumentError) -> DocumentError {
    discard(value);
    error
}

/// The error for a value with no nesting budget left; discards the value.
#[cold]
fn too_deep(value: AttributeValue) -> DocumentError {
    refuse(value, DocumentError::new(TOO_DEEP))
}

/// The serde deserializer consuming an owned [`AttributeValue`].
struct Deserializer {
    /// The value to deserialize.
    input: AttributeValue,
    /// How many more levels the value may nest (see the module documentation).
    remaining: usize,
}

impl Deserializer {
    /// A deserializer for `input`, which may nest `remaining` more levels.
    fn new(input: AttributeValue, remaining: usize) -> Self {
        Self { input, remaining }
    }

    /// The budget of the values nested in this one, or `None` when it is spent.
    fn nested(&self) -> Option<usize> {
        self.remaining.checked_sub(1)
    }

    /// The number inside an `N`, or [`EXPECTED_NUM`].
    fn number(self) -> Result<NumberDeserializer, DocumentError> {
        match self.input {
            AttributeValue::N(n) => Ok(NumberDeserializer(n)),
            other => Err(refuse(other, EXPECTED_NUM)),
        }
    }
}

/// Forwards a typed number request to [`NumberDeserializer`]: `N` only, parsed as that type.
macro_rules! deserialize_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
            self.number()?.$method(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Deserializer {
    type Error = DocumentError;

    /// `N` as an `i64`, `u64` or `f64` (the first that parses), `S` as a string, `BOOL`, `B` as
    /// bytes, `NULL: true` as unit (`NULL: false` is an error), `M` as a map, and `L`, `SS`,
    /// `NS`, `BS` as sequences.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        match self.input {
            AttributeValue::N(n) => NumberDeserializer(n).deserialize_any(visitor),
            AttributeValue::S(s) => visitor.visit_string(s),
            AttributeValue::Bool(b) => visitor.visit_bool(b),
            // serde_dynamo calls `visit_bytes` with a borrow; handing over the buffer gives every
            // visitor the same value without a copy (`visit_byte_buf` defaults to `visit_bytes`).
            AttributeValue::B(b) => visitor.visit_byte_buf(b.into_inner()),
            AttributeValue::Null(true) => visitor.visit_unit(),
            AttributeValue::Null(false) => Err(EXPECTED_UNIT),
            AttributeValue::M(_) => self.deserialize_map(visitor),
            AttributeValue::L(_)
            | AttributeValue::Ss(_)
            | AttributeValue::Ns(_)
            | AttributeValue::Bs(_) => self.deserialize_seq(visitor),
            // serde_dynamo panics converting this (a type newer than the SDK) to its own tree.
            _ => Err(UNKNOWN_VARIANT),
        }
    }

    deserialize_number! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64
    }

    // `deserialize_i128` and `deserialize_u128` keep serde's default, an "i128 is not
    // supported" error, as in serde_dynamo.

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        match self.input {
            AttributeValue::Bool(b) => visitor.visit_bool(b),
            other => Err(refuse(other, EXPECTED_BOOL)),
        }
    }

    /// An `S` of exactly one character.
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        let s = match self.input {
            AttributeValue::S(s) => s,
            other => return Err(refuse(other, EXPECTED_CHAR)),
        };
        let mut chars = s.chars();
        let Some(c) = chars.next() else {
            return Err(EXPECTED_CHAR);
        };
        // serde_dynamo visits the first character before checking that there is no second.
        let value = visitor.visit_char(c)?;
        match chars.next() {
            Some(_) => Err(EXPECTED_CHAR),
            None => Ok(value),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        match self.input {
            AttributeValue::S(s) => visitor.visit_string(s),
            other => Err(refuse(other, EXPECTED_STRING)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        self.deserialize_string(visitor)
    }

    /// A `B` only: a `Vec<u8>` asks for a sequence and cannot be read from `B` (as in
    /// serde_dynamo); `serde_bytes::ByteBuf` can.
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        match self.input {
            AttributeValue::B(b) => visitor.visit_byte_buf(b.into_inner()),
            other => Err(refuse(other, EXPECTED_BYTES)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        self.deserialize_bytes(visitor)
    }

    /// `NULL: true` is `None`; anything else (`NULL: false` included) is `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        if let AttributeValue::Null(true) = self.input {
            return visitor.visit_none();
        }
        match self.nested() {
            Some(remaining) => visitor.visit_some(Deserializer::new(self.input, remaining)),
            None => Err(too_deep(self.input)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        match self.input {
            AttributeValue::Null(true) => visitor.visit_unit(),
            other => Err(refuse(other, EXPECTED_UNIT)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        match self.input {
            AttributeValue::Null(true) => visitor.visit_unit(),
            other => Err(refuse(other, EXPECTED_UNIT_STRUCT)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        match self.nested() {
            Some(remaining) => {
                visitor.visit_newtype_struct(Deserializer::new(self.input, remaining))
            }
            None => Err(too_deep(self.input)),
        }
    }

    /// `L`, `SS`, `NS` or `BS`. Elements the visitor leaves unread are ignored (a tuple reads
    /// its prefix of a longer list), as in serde_dynamo.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        let Some(remaining) = self.nested() else {
            return Err(too_deep(self.input));
        };
        match self.input {
            AttributeValue::L(items) => visitor.visit_seq(ListAccess {
                items: items.into_iter(),
                remaining,
            }),
            // `SS` elements go through serde's own string deserializer, as in serde_dynamo:
            // everything but enums is `visit_string` (so an `Option<String>` element is an
            // error); `NS` elements are numbers, `BS` elements byte buffers.
            AttributeValue::Ss(strings) => {
                visitor.visit_seq(SetAccess::new(strings, StringDeserializer::new))
            }
            AttributeValue::Ns(numbers) => {
                visitor.visit_seq(SetAccess::new(numbers, NumberDeserializer))
            }
            AttributeValue::Bs(blobs) => visitor.visit_seq(SetAccess::new(blobs, |b: Blob| {
                BytesDeserializer(b.into_inner())
            })),
            other => Err(refuse(other, EXPECTED_SEQ)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        let Some(remaining) = self.nested() else {
            return Err(too_deep(self.input));
        };
        match self.input {
            AttributeValue::M(map) => visitor.visit_map(MapAccess {
                entries: map.into_iter(),
                value: None,
                remaining,
            }),
            other => Err(refuse(other, EXPECTED_MAP)),
        }
    }

    /// An `M`, or an `L` read as a sequence of the fields in order (as in serde_dynamo).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        if let AttributeValue::L(_) = self.input {
            self.deserialize_seq(visitor)
        } else {
            self.deserialize_map(visitor)
        }
    }

    /// `S(variant)` for a unit variant, or a one-entry `M` from the variant name to its
    /// content.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        let nested = self.nested();
        match self.input {
            AttributeValue::S(s) => visitor.visit_enum(StringDeserializer::<DocumentError>::new(s)),
            AttributeValue::M(map) => match nested {
                Some(remaining) => visitor.visit_enum(EnumAccess { map, remaining }),
                None => Err(too_deep(AttributeValue::M(map))),
            },
            other => Err(refuse(other, EXPECTED_ENUM)),
        }
    }

    /// Like `deserialize_any`, as in serde_dynamo: an unknown field holding an `N` that is no
    /// number, or `NULL: false`, fails the whole value.
    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        self.deserialize_any(visitor)
    }
}

/// The elements of an `L`.
struct ListAccess {
    /// The elements not read yet.
    items: vec::IntoIter<AttributeValue>,
    /// The nesting budget of each element.
    remaining: usize,
}

impl<'de> de::SeqAccess<'de> for ListAccess {
    type Error = DocumentError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DocumentError> {
        match self.items.next() {
            Some(item) => seed
                .deserialize(Deserializer::new(item, self.remaining))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

impl Drop for ListAccess {
    fn drop(&mut self) {
        self.items.by_ref().for_each(discard);
    }
}

/// The elements of a set (`SS`, `NS` or `BS`), each read through the deserializer `read`
/// makes of it.
struct SetAccess<T, D> {
    items: vec::IntoIter<T>,
    read: fn(T) -> D,
}

impl<T, D> SetAccess<T, D> {
    fn new(items: Vec<T>, read: fn(T) -> D) -> Self {
        SetAccess {
            items: items.into_iter(),
            read,
        }
    }
}

impl<'de, T, D: de::Deserializer<'de, Error = DocumentError>> de::SeqAccess<'de>
    for SetAccess<T, D>
{
    type Error = DocumentError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DocumentError> {
        match self.items.next() {
            Some(item) => seed.deserialize((self.read)(item)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of an `M`, in the map's iteration order.
struct MapAccess {
    /// The entries not read yet.
    entries: hash_map::IntoIter<String, AttributeValue>,
    /// The value of the key just read.
    value: Option<AttributeValue>,
    /// The nesting budget of each value.
    remaining: usize,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = DocumentError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DocumentError> {
        match self.entries.next() {
            Some((key, value)) => {
                if let Some(unread) = self.value.replace(value) {
                    discard(unread);
                }
                seed.deserialize(KeyDeserializer {
                    key,
                    remaining: self.remaining,
                })
                .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DocumentError> {
        // serde_dynamo panics (`unreachable!`) when a visitor asks for a value first.
        let value = self.value.take().ok_or(VALUE_WITHOUT_KEY)?;
        seed.deserialize(Deserializer::new(value, self.remaining))
    }

    fn next_entry_seed<K: DeserializeSeed<'de>, V: DeserializeSeed<'de>>(
        &mut self,
        key_seed: K,
        value_seed: V,
    ) -> Result<Option<(K::Value, V::Value)>, DocumentError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let key = match key_seed.deserialize(KeyDeserializer {
            key,
            remaining: self.remaining,
        }) {
            Ok(key) => key,
            Err(error) => return Err(refuse(value, error)),
        };
        let value = value_seed.deserialize(Deserializer::new(value, self.remaining))?;
        Ok(Some((key, value)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

impl Drop for MapAccess {
    fn drop(&mut self) {
        if let Some(unread) = self.value.take() {
            discard(unread);
        }
        self.entries.by_ref().for_each(|(_, value)| discard(value));
    }
}

/// An enum encoded as a one-entry `M`.
struct EnumAccess {
    /// The map, which must have exactly one entry.
    map: HashMap<String, AttributeValue>,
    /// The nesting budget of the variant's content.
    remaining: usize,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = DocumentError;
    type Variant = VariantAccess;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess), DocumentError> {
        let mut entries = self.map.into_iter();
        let Some((key, value)) = entries.next() else {
            return Err(EXPECTED_SINGLE_KEY);
        };
        if let Some((_, extra)) = entries.next() {
            discard(extra);
            entries.for_each(|(_, value)| discard(value));
            return Err(refuse(value, EXPECTED_SINGLE_KEY));
        }
        match seed.deserialize(StringDeserializer::<DocumentError>::new(key)) {
            Ok(variant) => Ok((
                variant,
                VariantAccess {
                    value,
                    remaining: self.remaining,
                },
            )),
            Err(error) => Err(refuse(value, error)),
        }
    }
}

/// The content of an enum variant encoded as a one-entry `M`.
struct VariantAccess {
    /// The entry's value.
    value: AttributeValue,
    /// Its nesting budget.
    remaining: usize,
}

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = DocumentError;

    /// Any content is accepted and ignored: serde_dynamo reads `{"Unit": <anything>}` as the
    /// unit variant `Unit`.
    fn unit_variant(self) -> Result<(), DocumentError> {
        discard(self.value);
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DocumentError> {
        seed.deserialize(Deserializer::new(self.value, self.remaining))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        de::Deserializer::deserialize_seq(Deserializer::new(self.value, self.remaining), visitor)
    }

    /// An `M` only (an `L` is refused here although `deserialize_struct` accepts one), as in
    /// serde_dynamo.
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        de::Deserializer::deserialize_map(Deserializer::new(self.value, self.remaining), visitor)
    }
}

/// The number inside an `N` (or an element of an `NS`), still as text.
struct NumberDeserializer(String);

impl NumberDeserializer {
    /// Parses the text as an integer type, with serde_dynamo's error message.
    fn int<T: std::str::FromStr<Err = std::num::ParseIntError>>(self) -> Result<T, DocumentError> {
        self.0.parse().map_err(|error| {
            de::Error::custom(format_args!(
                "Failed to parse '{}' as an integer: {error}",
                self.0
            ))
        })
    }

    /// Parses the text as a float type, with serde_dynamo's error message.
    fn float<T: std::str::FromStr<Err = std::num::ParseFloatError>>(
        self,
    ) -> Result<T, DocumentError> {
        self.0.parse().map_err(|error| {
            de::Error::custom(format_args!(
                "Failed to parse '{}' as a float: {error}",
                self.0
            ))
        })
    }
}

/// A typed number request: parse the text as that type, or fail.
macro_rules! parse_number {
    ($($method:ident => $parse:ident $visit:ident,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
            visitor.$visit(self.$parse()?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NumberDeserializer {
    type Error = DocumentError;

    /// The first of `i64`, `u64` and `f64` that the text parses as (so `"-0"` is the integer
    /// 0, `"1e400"` is infinity and `"NaN"` is NaN), as in serde_dynamo.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        if let Ok(i) = self.0.parse::<i64>() {
            visitor.visit_i64(i)
        } else if let Ok(u) = self.0.parse::<u64>() {
            visitor.visit_u64(u)
        } else {
            visitor.visit_f64(self.float()?)
        }
    }

    parse_number! {
        deserialize_i8 => int visit_i8,
        deserialize_i16 => int visit_i16,
        deserialize_i32 => int visit_i32,
        deserialize_i64 => int visit_i64,
        deserialize_u8 => int visit_u8,
        deserialize_u16 => int visit_u16,
        deserialize_u32 => int visit_u32,
        deserialize_u64 => int visit_u64,
        deserialize_f32 => float visit_f32,
        deserialize_f64 => float visit_f64,
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        self.deserialize_any(visitor)
    }

    // Everything else is the number as `deserialize_any` sees it (so an `N` is never a
    // string, an option or a newtype struct's content), as in serde_dynamo; `i128` and `u128`
    // keep serde's "not supported" default.
    forward_to_deserialize_any! {
        bool char str string bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier
    }
}

/// A `B` (or an element of a `BS`): its bytes, whatever is asked for.
struct BytesDeserializer(Vec<u8>);

impl<'de> de::Deserializer<'de> for BytesDeserializer {
    type Error = DocumentError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        visitor.visit_byte_buf(self.0)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        self.deserialize_any(visitor)
    }

    // `i128` and `u128` keep serde's "not supported" default, as in serde_dynamo.
    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
    }
}

/// A key of an `M`.
struct KeyDeserializer {
    /// The key.
    key: String,
    /// The nesting budget, spent by newtype structs around the key.
    remaining: usize,
}

/// A key parsed as an integer type (128 bits included), or [`EXPECTED_NUM`].
macro_rules! parse_key {
    ($($method:ident => $visit:ident,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
            visitor.$visit(self.key.parse().map_err(|_| EXPECTED_NUM)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDeserializer {
    type Error = DocumentError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        visitor.visit_string(self.key)
    }

    parse_key! {
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_i128 => visit_i128,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_u128 => visit_u128,
    }

    /// `"true"` or `"false"` (anything else is serde_dynamo's "Expected string").
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DocumentError> {
        match self.key.as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(EXPECTED_STRING),
        }
    }

    /// Unit variants only.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        visitor.visit_enum(StringDeserializer::<DocumentError>::new(self.key))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DocumentError> {
        match self.remaining.checked_sub(1) {
            Some(remaining) => visitor.visit_newtype_struct(KeyDeserializer {
                key: self.key,
                remaining,
            }),
            None => Err(DocumentError::new(TOO_DEEP)),
        }
    }

    // Everything else is `visit_string`, as in serde_dynamo: a `char` key works through the
    // visitor's `visit_str`, float and option keys are refused by their visitors.
    forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf option unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::fmt::Debug;

    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    use proptest::collection::{btree_map, hash_map, vec};
    use proptest::prelude::*;
    use proptest::sample::{Index, select};
    use serde::de::{DeserializeOwned, IgnoredAny};
    use serde::{Deserialize, Serialize};
    use serde_bytes::ByteBuf;
    use serde_json::{Value, json};

    use super::*;

    // ---- serde_dynamo, the reference --------------------------------------------------------

    fn theirs_to<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue, serde_dynamo::Error> {
        serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(value)
    }

    fn theirs_from<T: DeserializeOwned>(value: AttributeValue) -> Result<T, serde_dynamo::Error> {
        serde_dynamo::aws_sdk_dynamodb_1::from_attribute_value(value)
    }

    /// Equality that tells NaN, -0.0 and 0.0 apart and ignores map order: both values as
    /// serde_dynamo writes them.
    fn same<T: Serialize>(a: &T, b: &T) -> bool {
        match (theirs_to(a), theirs_to(b)) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }

    /// `to_attribute_value` gives what serde_dynamo gives, or fails where it fails.
    fn check_to<T: Serialize + Debug + ?Sized>(value: &T) -> Result<(), TestCaseError> {
        match (to_attribute_value(value), theirs_to(value)) {
            (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs, "serializing {:?}", value),
            (Err(_), Err(_)) => {}
            (ours, theirs) => {
                prop_assert!(
                    false,
                    "serializing {value:?}: ours {ours:?}, theirs {theirs:?}"
                )
            }
        }
        Ok(())
    }

    /// `from_attribute_value::<T>` gives what serde_dynamo gives, or fails where it fails.
    fn check_from<T: DeserializeOwned + Serialize + Debug>(
        value: &AttributeValue,
    ) -> Result<(), TestCaseError> {
        match (
            from_attribute_value::<T>(value.clone()),
            theirs_from::<T>(value.clone()),
        ) {
            (Ok(ours), Ok(theirs)) => prop_assert!(
                same(&ours, &theirs),
                "reading {} from {value:?}: ours {ours:?}, theirs {theirs:?}",
                std::any::type_name::<T>()
            ),
            (Err(_), Err(_)) => {}
            (ours, theirs) => prop_assert!(
                false,
                "reading {} from {value:?}: ours {ours:?}, theirs {theirs:?}",
                std::any::type_name::<T>()
            ),
        }
        Ok(())
    }

    /// Serializes like serde_dynamo and reads serde_dynamo's output back to the same value.
    fn check_round_trip<T>(value: &T) -> Result<(), TestCaseError>
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let theirs = theirs_to(value).expect("serde_dynamo serializes the test values");
        prop_assert_eq!(&to_attribute_value(value).unwrap(), &theirs);
        prop_assert_eq!(&from_attribute_value::<T>(theirs.clone()).unwrap(), value);
        check_from::<T>(&theirs)
    }

    fn ok<T, E: Debug>(result: Result<T, E>) -> T {
        result.unwrap()
    }

    // ---- test types -------------------------------------------------------------------------

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Inner {
        a: i32,
        b: String,
        c: Option<f64>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Variant {
        Unit,
        Newtype(i32),
        Tuple(u8, String),
        Struct { a: bool, b: Option<f64> },
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    enum Kind {
        Alpha,
        Beta,
        Gamma,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Marker;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Wrapper(u64);

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    struct Name(String);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Point(i32, i32);

    /// Integers, floats, text and the special unit-like values.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Scalars {
        u8_: u8,
        u16_: u16,
        u32_: u32,
        u64_: u64,
        i8_: i8,
        i16_: i16,
        i32_: i32,
        i64_: i64,
        f32_: f32,
        f64_: f64,
        flag: bool,
        letter: char,
        text: String,
        unit: (),
        marker: Marker,
    }

    /// A field of every kind the document format handles.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Everything {
        scalars: Scalars,
        maybe: Option<i32>,
        maybe_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        omitted_when_none: Option<u8>,
        #[serde(skip)]
        skipped: u32,
        list: Vec<i64>,
        nested: Inner,
        nested_list: Vec<Inner>,
        by_name: HashMap<String, f64>,
        by_id: BTreeMap<u32, String>,
        by_signed: BTreeMap<i64, bool>,
        by_wide: BTreeMap<u128, u8>,
        by_flag: BTreeMap<bool, u8>,
        by_char: BTreeMap<char, u8>,
        by_kind: BTreeMap<Kind, u8>,
        by_newtype: BTreeMap<Name, u8>,
        bytes: ByteBuf,
        plain_bytes: Vec<u8>,
        variants: Vec<Variant>,
        pair: (u16, String, Option<bool>),
        wrapped: Wrapper,
        point: Point,
        #[serde(with = "serde_dynamo::string_set")]
        names: Vec<String>,
        #[serde(with = "serde_dynamo::number_set")]
        numbers: Vec<u32>,
        #[serde(with = "serde_dynamo::binary_set")]
        blobs: Vec<ByteBuf>,
    }

    /// Flattening, which goes through serde's buffered `deserialize_any` path.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Flattened {
        id: u64,
        #[serde(flatten)]
        inner: Inner,
        #[serde(flatten)]
        extra: BTreeMap<String, Value>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Untagged {
        Int(i64),
        Big(u64),
        Float(f64),
        Text(String),
        Bytes(ByteBuf),
        List(Vec<Untagged>),
        Map(BTreeMap<String, Untagged>),
        Nothing(()),
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Tagged {
        A { x: u32 },
        B { y: String, z: Option<f64> },
        C,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "t", content = "c")]
    enum Adjacent {
        One(i32),
        Two { s: String },
        Three,
    }

    // ---- strategies -------------------------------------------------------------------------

    /// Finite and infinite doubles (NaN is not equal to itself: tested separately).
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("NaN", |f| !f.is_nan()),
            any::<u64>()
                .prop_map(f64::from_bits)
                .prop_filter("NaN", |f| !f.is_nan()),
            (-10_000_000i64..10_000_000, 0i32..12).prop_map(|(m, e)| m as f64 / 10f64.powi(e)),
            select(vec![
                0.0,
                -0.0,
                f64::MAX,
                f64::MIN,
                f64::MIN_POSITIVE,
                f64::EPSILON,
                f64::INFINITY,
                f64::NEG_INFINITY,
                5e-324,
                1e300,
                1e-300,
                1e15,
                1e16,
                1e20,
                123_456_789_012_345.0,
                0.1,
                0.1 + 0.2,
                97.25,
                9_007_199_254_740_993.0,
            ]),
        ]
    }

    fn float32() -> impl Strategy<Value = f32> {
        prop_oneof![
            any::<f32>().prop_filter("NaN", |f| !f.is_nan()),
            select(vec![
                0.0,
                -0.0,
                f32::MAX,
                f32::MIN_POSITIVE,
                f32::INFINITY,
                0.1,
                1e-45
            ]),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "\\PC{0,12}", Just(String::new())]
    }

    fn inner() -> impl Strategy<Value = Inner> {
        (any::<i32>(), text(), proptest::option::of(float())).prop_map(|(a, b, c)| Inner {
            a,
            b,
            c,
        })
    }

    fn variant() -> impl Strategy<Value = Variant> {
        prop_oneof![
            Just(Variant::Unit),
            any::<i32>().prop_map(Variant::Newtype),
            (any::<u8>(), text()).prop_map(|(a, b)| Variant::Tuple(a, b)),
            (any::<bool>(), proptest::option::of(float()))
                .prop_map(|(a, b)| Variant::Struct { a, b }),
        ]
    }

    fn kind() -> impl Strategy<Value = Kind> {
        select(vec![Kind::Alpha, Kind::Beta, Kind::Gamma])
    }

    fn bytes() -> impl Strategy<Value = ByteBuf> {
        vec(any::<u8>(), 0..16).prop_map(ByteBuf::from)
    }

    fn scalars() -> impl Strategy<Value = Scalars> {
        (
            (
                any::<u8>(),
                any::<u16>(),
                any::<u32>(),
                any::<u64>(),
                any::<i8>(),
                any::<i16>(),
                any::<i32>(),
                any::<i64>(),
            ),
            (float32(), float(), any::<bool>(), any::<char>(), text()),
        )
            .prop_map(
                |(
                    (u8_, u16_, u32_, u64_, i8_, i16_, i32_, i64_),
                    (f32_, f64_, flag, letter, text),
                )| Scalars {
                    u8_,
                    u16_,
                    u32_,
                    u64_,
                    i8_,
                    i16_,
                    i32_,
                    i64_,
                    f32_,
                    f64_,
                    flag,
                    letter,
                    text,
                    unit: (),
                    marker: Marker,
                },
            )
    }

    prop_compose! {
        fn everything()(
            scalars in scalars(),
            options in (
                proptest::option::of(any::<i32>()),
                proptest::option::of(text()),
                proptest::option::of(any::<u8>()),
            ),
            lists in (vec(any::<i64>(), 0..5), inner(), vec(inner(), 0..3)),
            maps in (
                hash_map(text(), float(), 0..4),
                btree_map(any::<u32>(), text(), 0..4),
                btree_map(any::<i64>(), any::<bool>(), 0..4),
                btree_map(any::<u128>(), any::<u8>(), 0..4),
                btree_map(any::<bool>(), any::<u8>(), 0..2),
                btree_map(any::<char>(), any::<u8>(), 0..4),
                btree_map(kind(), any::<u8>(), 0..3),
                btree_map(text().prop_map(Name), any::<u8>(), 0..3),
            ),
            binary in (bytes(), vec(any::<u8>(), 0..8)),
            misc in (
                vec(variant(), 0..5),
                (any::<u16>(), text(), proptest::option::of(any::<bool>())),
                any::<u64>(),
                (any::<i32>(), any::<i32>()),
            ),
            sets in (vec(text(), 0..4), vec(any::<u32>(), 0..4), vec(bytes(), 0..4)),
        ) -> Everything {
            let (maybe, maybe_text, omitted_when_none) = options;
            let (list, nested, nested_list) = lists;
            let (by_name, by_id, by_signed, by_wide, by_flag, by_char, by_kind, by_newtype) = maps;
            let (variants, pair, wrapped, point) = misc;
            let (names, numbers, blobs) = sets;
            Everything {
                scalars,
                maybe,
                maybe_text,
                omitted_when_none,
                skipped: 0,
                list,
                nested,
                nested_list,
                by_name,
                by_id,
                by_signed,
                by_wide,
                by_flag,
                by_char,
                by_kind,
                by_newtype,
                bytes: binary.0,
                plain_bytes: binary.1,
                variants,
                pair,
                wrapped: Wrapper(wrapped),
                point: Point(point.0, point.1),
                names,
                numbers,
                blobs,
            }
        }
    }

    /// Arbitrary JSON trees (serde_json's `Number` holds no NaN or infinity).
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            float().prop_filter_map("not finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..8).prop_map(Value::Array),
                btree_map(text(), inner, 0..8)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn flattened() -> impl Strategy<Value = Flattened> {
        (
            any::<u64>(),
            inner(),
            btree_map("x_[a-z]{0,4}", json_value(), 0..4),
        )
            .prop_map(|(id, inner, extra)| Flattened { id, inner, extra })
    }

    fn untagged() -> impl Strategy<Value = Untagged> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Untagged::Int),
            any::<u64>().prop_map(Untagged::Big),
            float().prop_map(Untagged::Float),
            text().prop_map(Untagged::Text),
            bytes().prop_map(Untagged::Bytes),
            Just(Untagged::Nothing(())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Untagged::List),
                btree_map(text(), inner, 0..4).prop_map(Untagged::Map),
            ]
        })
    }

    fn tagged() -> impl Strategy<Value = Tagged> {
        prop_oneof![
            any::<u32>().prop_map(|x| Tagged::A { x }),
            (text(), proptest::option::of(float())).prop_map(|(y, z)| Tagged::B { y, z }),
            Just(Tagged::C),
        ]
    }

    fn adjacent() -> impl Strategy<Value = Adjacent> {
        prop_oneof![
            any::<i32>().prop_map(Adjacent::One),
            text().prop_map(|s| Adjacent::Two { s }),
            Just(Adjacent::Three),
        ]
    }

    /// Text for `N`: numbers of every type as serde_dynamo writes them, and odd ones.
    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<u8>().prop_map(|n| n.to_string()),
            float().prop_map(|f| f.to_string()),
            select(vec![
                "1e400",
                "-1e400",
                "1e-400",
                "-0",
                "0",
                "+5",
                "abc",
                "",
                " 1",
                "1 ",
                "NaN",
                "nan",
                "inf",
                "-inf",
                "infinity",
                "1.5e3",
                "0x10",
                "18446744073709551615",
                "18446744073709551616",
                "-9223372036854775808",
                "-9223372036854775809",
                "340282366920938463463374607431768211456",
                "1_000",
                "\u{663}",
                "1.",
                ".5",
                "e5",
                "255",
                "256",
                "-129",
                "65535",
                "4294967296",
                "3.4e38",
                "3.5e38",
            ])
            .prop_map(str::to_owned),
            "[-+0-9.eE]{0,12}",
        ]
    }

    /// Map keys: the test types' field and variant names, numbers, and anything.
    fn key_text() -> impl Strategy<Value = String> {
        prop_oneof![
            select(vec![
                "scalars", "u8_", "u64_", "f64_", "letter", "text", "unit", "marker", "maybe",
                "list", "nested", "by_id", "by_char", "by_kind", "variants", "pair", "names",
                "numbers", "blobs", "bytes", "a", "b", "c", "id", "type", "t", "x", "y", "z", "s",
                "Unit", "Newtype", "Tuple", "Struct", "Alpha", "A", "B", "C", "One", "Two",
                "Three", "true", "false", "é", "",
            ])
            .prop_map(str::to_owned),
            number_text(),
            text(),
        ]
    }

    fn blob() -> impl Strategy<Value = Blob> {
        vec(any::<u8>(), 0..12).prop_map(Blob::new)
    }

    /// Arbitrary attribute values: every variant, odd numbers, nesting up to about 100 levels.
    fn attribute_value() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            3 => number_text().prop_map(AttributeValue::N),
            2 => key_text().prop_map(AttributeValue::S),
            1 => any::<bool>().prop_map(AttributeValue::Bool),
            2 => any::<bool>().prop_map(AttributeValue::Null),
            1 => blob().prop_map(AttributeValue::B),
            1 => vec(key_text(), 0..4).prop_map(AttributeValue::Ss),
            1 => vec(number_text(), 0..4).prop_map(AttributeValue::Ns),
            1 => vec(blob(), 0..4).prop_map(AttributeValue::Bs),
        ];
        let tree = leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(AttributeValue::L),
                hash_map(key_text(), inner.clone(), 0..6).prop_map(AttributeValue::M),
                // Shaped like an enum.
                (
                    select(vec!["Unit", "Newtype", "Tuple", "Struct", "One", "Two"]),
                    inner
                )
                    .prop_map(|(key, value)| {
                        AttributeValue::M(HashMap::from([(key.to_owned(), value)]))
                    }),
            ]
        });
        let chain = (tree.clone(), vec((any::<bool>(), key_text()), 0..100)).prop_map(
            |(mut value, levels)| {
                for (list, key) in levels {
                    value = if list {
                        AttributeValue::L(vec![value])
                    } else {
                        AttributeValue::M(HashMap::from([(key, value)]))
                    };
                }
                value
            },
        );
        prop_oneof![6 => tree, 1 => chain]
    }

    /// A valid `Everything` document with one field replaced by an arbitrary value, removed,
    /// or joined by an unknown field.
    fn near_everything() -> impl Strategy<Value = AttributeValue> {
        (everything(), any::<Index>(), attribute_value(), 0..3u8).prop_map(
            |(value, index, replacement, operation)| {
                let AttributeValue::M(mut map) = theirs_to(&value).unwrap() else {
                    unreachable!("a struct is a map");
                };
                let mut keys: Vec<String> = map.keys().cloned().collect();
                keys.sort();
                let key = index.get(&keys).clone();
                match operation {
                    0 => {
                        map.insert(key, replacement);
                    }
                    1 => {
                        map.remove(&key);
                    }
                    _ => {
                        map.insert(format!("unknown_{key}"), replacement);
                    }
                }
                AttributeValue::M(map)
            },
        )
    }

    /// Every target type the generated documents are read as.
    fn check_from_all(value: &AttributeValue) -> Result<(), TestCaseError> {
        check_from::<Value>(value)?;
        check_from::<u64>(value)?;
        check_from::<i8>(value)?;
        check_from::<f64>(value)?;
        check_from::<f32>(value)?;
        check_from::<String>(value)?;
        check_from::<char>(value)?;
        check_from::<bool>(value)?;
        check_from::<()>(value)?;
        check_from::<Marker>(value)?;
        check_from::<Option<i32>>(value)?;
        check_from::<Option<()>>(value)?;
        check_from::<Vec<String>>(value)?;
        check_from::<Vec<u32>>(value)?;
        check_from::<Vec<Value>>(value)?;
        check_from::<BTreeSet<String>>(value)?;
        check_from::<(i32, String)>(value)?;
        check_from::<ByteBuf>(value)?;
        check_from::<Vec<ByteBuf>>(value)?;
        check_from::<Vec<u8>>(value)?;
        check_from::<HashMap<String, Value>>(value)?;
        check_from::<BTreeMap<u32, Value>>(value)?;
        check_from::<BTreeMap<i128, Value>>(value)?;
        check_from::<BTreeMap<bool, Value>>(value)?;
        check_from::<BTreeMap<char, Value>>(value)?;
        check_from::<BTreeMap<Kind, Value>>(value)?;
        check_from::<BTreeMap<Name, Value>>(value)?;
        check_from::<Kind>(value)?;
        check_from::<Variant>(value)?;
        check_from::<Vec<Variant>>(value)?;
        check_from::<Wrapper>(value)?;
        check_from::<Point>(value)?;
        check_from::<Inner>(value)?;
        check_from::<Scalars>(value)?;
        check_from::<Everything>(value)?;
        check_from::<Flattened>(value)?;
        check_from::<Untagged>(value)?;
        check_from::<Tagged>(value)?;
        check_from::<Adjacent>(value)?;
        prop_assert_eq!(
            from_attribute_value::<IgnoredAny>(value.clone()).is_ok(),
            theirs_from::<IgnoredAny>(value.clone()).is_ok()
        );
        Ok(())
    }

    // ---- property tests ---------------------------------------------------------------------

    proptest! {
        #[test]
        fn everything_matches_serde_dynamo(value in everything()) {
            check_round_trip(&value)?;
            check_to(&value.variants)?;
            check_to(&value.by_kind)?;
        }

        #[test]
        fn json_matches_serde_dynamo(value in json_value()) {
            check_to(&value)?;
            let document = theirs_to(&value).unwrap();
            check_from::<Value>(&document)?;
            check_from::<Untagged>(&document)?;
        }

        #[test]
        fn flattened_matches_serde_dynamo(value in flattened()) {
            check_to(&value)?;
            check_from::<Flattened>(&theirs_to(&value).unwrap())?;
        }

        #[test]
        fn serde_enum_representations_match_serde_dynamo(
            untagged in untagged(),
            tagged in tagged(),
            adjacent in adjacent(),
        ) {
            check_to(&untagged)?;
            check_from::<Untagged>(&theirs_to(&untagged).unwrap())?;
            check_round_trip(&tagged)?;
            check_round_trip(&adjacent)?;
        }

        #[test]
        fn arbitrary_documents_read_like_serde_dynamo(value in attribute_value()) {
            check_from_all(&value)?;
        }

        #[test]
        fn damaged_documents_read_like_serde_dynamo(value in near_everything()) {
            check_from::<Everything>(&value)?;
            check_from::<Value>(&value)?;
            check_from::<Flattened>(&value)?;
        }

        #[test]
        fn floats_are_written_like_display(
            bits in any::<u64>(),
            mantissa in any::<i64>(),
            short in -1_000_000i64..1_000_000,
            exponent in 0i32..25,
        ) {
            for v in [
                f64::from_bits(bits),
                mantissa as f64 / 10f64.powi(exponent),
                short as f64 / 10f64.powi(exponent),
                short as f64 * 10f64.powi(exponent),
            ] {
                prop_assert_eq!(f64_to_string(v), v.to_string());
            }
        }
    }

    // ---- unit tests -------------------------------------------------------------------------

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(text.to_owned())
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    fn m<const N: usize>(entries: [(&str, AttributeValue); N]) -> AttributeValue {
        AttributeValue::M(entries.map(|(k, v)| (k.to_owned(), v)).into())
    }

    /// The same document as serde_dynamo, which is `expected`.
    fn assert_to<T: Serialize + ?Sized>(value: &T, expected: AttributeValue) {
        let name = std::any::type_name::<T>();
        assert_eq!(
            ok(theirs_to(value)),
            expected,
            "serde_dynamo writes a {name}"
        );
        assert_eq!(ok(to_attribute_value(value)), expected, "we write a {name}");
    }

    /// Both refuse to write `value`.
    fn assert_to_fails<T: Serialize + ?Sized>(value: &T) {
        let name = std::any::type_name::<T>();
        assert!(theirs_to(value).is_err(), "serde_dynamo writes a {name}");
        assert!(to_attribute_value(value).is_err(), "we write a {name}");
    }

    /// Both read `T` from `document`, to equal values, which are returned.
    fn assert_from<T: DeserializeOwned + Serialize + Debug>(document: AttributeValue) -> T {
        let theirs = theirs_from::<T>(document.clone());
        let ours = from_attribute_value::<T>(document.clone());
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) if same(&ours, &theirs) => ours,
            (ours, theirs) => panic!("reading {document:?}: ours {ours:?}, theirs {theirs:?}"),
        }
    }

    /// Both refuse to read `T` from `document`.
    fn assert_from_fails<T: DeserializeOwned + Debug>(document: AttributeValue) {
        let theirs = theirs_from::<T>(document.clone());
        assert!(
            theirs.is_err(),
            "serde_dynamo reads {document:?} as {theirs:?}"
        );
        let ours = from_attribute_value::<T>(document.clone());
        assert!(ours.is_err(), "we read {document:?} as {ours:?}");
    }

    #[test]
    fn unit_like_values_are_null() {
        assert_to(&(), AttributeValue::Null(true));
        assert_to(&Marker, AttributeValue::Null(true));
        assert_to(&None::<i32>, AttributeValue::Null(true));
        assert_to(&Some(()), AttributeValue::Null(true));
        assert_to(&Some(5), n("5"));
        assert_to(&Wrapper(7), n("7"));
        assert_to(&Kind::Beta, s("Beta"));

        assert_from::<()>(AttributeValue::Null(true));
        assert_from::<Marker>(AttributeValue::Null(true));
        assert_eq!(assert_from::<Option<i32>>(AttributeValue::Null(true)), None);
        // `Some(())` is written as `NULL`, which reads back as `None`.
        assert_eq!(assert_from::<Option<()>>(AttributeValue::Null(true)), None);
        assert_eq!(
            assert_from::<Value>(AttributeValue::Null(true)),
            Value::Null
        );
        // `NULL: false` is not a unit, and an option holding it is `Some` of it.
        assert_from_fails::<()>(AttributeValue::Null(false));
        assert_from_fails::<Value>(AttributeValue::Null(false));
        assert_from_fails::<Option<i32>>(AttributeValue::Null(false));
        assert_from_fails::<Option<()>>(AttributeValue::Null(false));
        assert_from_fails::<Marker>(n("0"));
    }

    #[test]
    fn numbers_are_written_with_display() {
        assert_to(&f64::NAN, n("NaN"));
        assert_to(&f64::INFINITY, n("inf"));
        assert_to(&f64::NEG_INFINITY, n("-inf"));
        assert_to(&f32::NAN, n("NaN"));
        assert_to(&-0.0, n("-0"));
        assert_to(&1e20, n("100000000000000000000"));
        assert_to(&1e-7, n("0.0000001"));
        assert_to(&97.25, n("97.25"));
        assert_to(&(0.1 + 0.2), n("0.30000000000000004"));
        assert_to(&0.1f32, n("0.1"));
        assert_to(&i64::MIN, n("-9223372036854775808"));
        assert_to(&u64::MAX, n("18446744073709551615"));
        assert_to(&'é', s("é"));
        // 128-bit integers are refused as values (serde's default), though accepted as keys.
        assert_to_fails(&1i128);
        assert_to_fails(&1u128);
        assert_to(
            &BTreeMap::from([(u128::MAX, 1u8)]),
            m([("340282366920938463463374607431768211455", n("1"))]),
        );
    }

    #[test]
    fn numbers_are_read_like_serde_dynamo() {
        assert!(assert_from::<f64>(n("NaN")).is_nan());
        assert_eq!(assert_from::<f64>(n("1e400")), f64::INFINITY);
        assert_eq!(assert_from::<u8>(n("255")), 255);
        assert_from_fails::<u8>(n("256"));
        assert_from_fails::<u64>(n("-0"));
        assert_from_fails::<u64>(n("1.0"));
        assert_from_fails::<i128>(n("1"));
        assert_from_fails::<u128>(n("1"));
        assert_from_fails::<u64>(s("1"));
        // `deserialize_any`: i64, else u64, else f64.
        assert_eq!(assert_from::<Value>(n("-0")), json!(0));
        assert_eq!(assert_from::<Value>(n("+5")), json!(5));
        assert_eq!(
            assert_from::<Value>(n("18446744073709551615")),
            json!(u64::MAX)
        );
        assert_eq!(
            assert_from::<Value>(n("18446744073709551616")),
            json!(1.8446744073709552e19)
        );
        assert_eq!(assert_from::<Value>(n("2.50")), json!(2.5));
        assert_eq!(assert_from::<Value>(n("1e400")), Value::Null);
        assert_eq!(assert_from::<Value>(n("NaN")), Value::Null);
        assert_from_fails::<Value>(n("abc"));
        assert_from_fails::<Value>(n(""));
        // An `N` is never a string.
        assert_from_fails::<String>(n("1"));
        assert_eq!(assert_from::<Untagged>(n("2")), Untagged::Int(2));
        assert_eq!(assert_from::<Untagged>(n("2.5")), Untagged::Float(2.5));
        // An unknown field whose `N` is no number fails the whole struct (`ignored_any` is
        // `deserialize_any`).
        assert_from_fails::<Wrapped>(m([("a", n("1")), ("junk", n("x"))]));
        assert_eq!(
            assert_from::<Wrapped>(m([("a", n("1")), ("junk", n("1"))])),
            Wrapped { a: 1 }
        );
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wrapped {
        a: u8,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sets {
        #[serde(with = "serde_dynamo::string_set")]
        strings: Vec<String>,
        #[serde(with = "serde_dynamo::number_set")]
        numbers: Vec<f64>,
        #[serde(with = "serde_dynamo::binary_set")]
        blobs: Vec<ByteBuf>,
    }

    #[test]
    fn sets_are_written_like_serde_dynamo() {
        use serde_dynamo::binary_set::BinarySet;
        use serde_dynamo::number_set::NumberSet;
        use serde_dynamo::string_set::StringSet;

        let sets = Sets {
            strings: vec!["a".into(), "b".into()],
            numbers: vec![1.5, -2.0],
            blobs: vec![ByteBuf::from(vec![1, 2]), ByteBuf::new()],
        };
        assert_to(
            &sets,
            m([
                ("strings", AttributeValue::Ss(vec!["a".into(), "b".into()])),
                (
                    "numbers",
                    AttributeValue::Ns(vec!["1.5".into(), "-2".into()]),
                ),
                (
                    "blobs",
                    AttributeValue::Bs(vec![Blob::new(vec![1, 2]), Blob::new(vec![])]),
                ),
            ]),
        );
        assert_eq!(assert_from::<Sets>(ok(to_attribute_value(&sets))), sets);
        assert_to(
            &StringSet(vec!['x', 'y']),
            AttributeValue::Ss(vec!["x".into(), "y".into()]),
        );
        assert_to(&StringSet(Vec::<String>::new()), AttributeValue::Ss(vec![]));
        assert_to(
            &NumberSet([1u8, 2]),
            AttributeValue::Ns(vec!["1".into(), "2".into()]),
        );
        assert_to(
            &NumberSet(vec![Some(1)]),
            AttributeValue::Ns(vec!["1".into()]),
        );
        assert_to(
            &BinarySet(vec![serde_bytes::Bytes::new(b"z")]),
            AttributeValue::Bs(vec![Blob::new(b"z".to_vec())]),
        );
        // Elements of the wrong kind, or no sequence at all.
        assert_to_fails(&StringSet(vec![1]));
        assert_to_fails(&StringSet("not a sequence"));
        assert_to_fails(&StringSet(StringSet(vec!["nested"])));
        assert_to_fails(&NumberSet(vec!["1"]));
        assert_to_fails(&NumberSet(vec![None::<u8>]));
        assert_to_fails(&BinarySet(vec![vec![1u8]])); // a `Vec<u8>` is a list of numbers
        // Set names only matter for values, not keys.
        assert_to(&PairsMap(vec![(StringSet("k"), 1)]), m([("k", n("1"))]));
    }

    #[test]
    fn sets_are_read_like_serde_dynamo() {
        let ss = AttributeValue::Ss(vec!["b".into(), "a".into()]);
        let ns = AttributeValue::Ns(vec!["1".into(), "-2.5".into(), "1e400".into()]);
        let bs = AttributeValue::Bs(vec![Blob::new(vec![0, 255])]);
        assert_eq!(assert_from::<Vec<String>>(ss.clone()), ["b", "a"]);
        assert_eq!(assert_from::<BTreeSet<String>>(ss.clone()).len(), 2);
        assert_eq!(assert_from::<Value>(ss.clone()), json!(["b", "a"]));
        assert_eq!(
            assert_from::<Vec<Kind>>(AttributeValue::Ss(vec!["Beta".into()])),
            [Kind::Beta]
        );
        assert_from_fails::<Vec<Option<String>>>(ss.clone());
        assert_from_fails::<Vec<u8>>(ss);
        assert_eq!(
            assert_from::<Vec<f64>>(ns.clone()),
            [1.0, -2.5, f64::INFINITY]
        );
        assert_eq!(assert_from::<Value>(ns.clone()), json!([1, -2.5, null]));
        assert_from_fails::<Vec<String>>(ns.clone());
        assert_from_fails::<Vec<Option<f64>>>(ns.clone());
        assert_from_fails::<Vec<i64>>(ns);
        assert_eq!(
            assert_from::<Vec<ByteBuf>>(bs.clone()),
            [ByteBuf::from(vec![0, 255])]
        );
        assert_from_fails::<Vec<Value>>(bs.clone());
        assert_from_fails::<Vec<Vec<u8>>>(bs);
    }

    #[test]
    fn bytes_are_b_only_through_serde_bytes() {
        assert_to(
            &ByteBuf::from(vec![1, 2]),
            AttributeValue::B(Blob::new(vec![1, 2])),
        );
        assert_to(&vec![1u8, 2], AttributeValue::L(vec![n("1"), n("2")]));
        let b = AttributeValue::B(Blob::new(vec![1, 2]));
        assert_eq!(assert_from::<ByteBuf>(b.clone()), ByteBuf::from(vec![1, 2]));
        assert_from_fails::<Vec<u8>>(b.clone());
        assert_from_fails::<String>(b.clone());
        assert_from_fails::<Value>(b.clone());
        assert_from_fails::<ByteBuf>(AttributeValue::L(vec![n("1")]));
        // serde's `String` accepts bytes that are UTF-8, and comes before `Bytes`.
        assert_eq!(
            assert_from::<Untagged>(b),
            Untagged::Text("\u{1}\u{2}".into())
        );
        assert_eq!(
            assert_from::<Untagged>(AttributeValue::B(Blob::new(vec![255]))),
            Untagged::Bytes(ByteBuf::from(vec![255]))
        );
    }

    #[test]
    fn enums_are_externally_tagged() {
        assert_to(&Variant::Unit, s("Unit"));
        assert_to(&Variant::Newtype(3), m([("Newtype", n("3"))]));
        assert_to(
            &Variant::Tuple(1, "x".into()),
            m([("Tuple", AttributeValue::L(vec![n("1"), s("x")]))]),
        );
        assert_to(
            &Variant::Struct { a: true, b: None },
            m([(
                "Struct",
                m([
                    ("a", AttributeValue::Bool(true)),
                    ("b", AttributeValue::Null(true)),
                ]),
            )]),
        );

        assert_eq!(assert_from::<Variant>(s("Unit")), Variant::Unit);
        // A one-entry map names a unit variant whatever its value.
        assert_eq!(
            assert_from::<Variant>(m([("Unit", n("junk"))])),
            Variant::Unit
        );
        assert_from_fails::<Variant>(s("Newtype"));
        assert_from_fails::<Variant>(s("Nope"));
        assert_from_fails::<Variant>(m([]));
        assert_from_fails::<Variant>(m([("Newtype", n("1")), ("Unit", n("1"))]));
        assert_from_fails::<Variant>(n("0"));
        // Structs may be read from lists (fields in order), struct variants may not.
        assert_eq!(
            assert_from::<Inner>(AttributeValue::L(vec![
                n("1"),
                s("b"),
                AttributeValue::Null(true),
                s("ignored")
            ])),
            Inner {
                a: 1,
                b: "b".into(),
                c: None
            }
        );
        assert_from_fails::<Variant>(m([(
            "Struct",
            AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)]),
        )]));
        // Unread list elements are ignored.
        assert_eq!(
            assert_from::<(u8, u8)>(AttributeValue::L(vec![n("1"), n("2"), n("3")])),
            (1, 2)
        );
    }

    #[test]
    fn map_keys_are_stringified_like_serde_dynamo() {
        assert_to(&BTreeMap::from([(-3i64, 1)]), m([("-3", n("1"))]));
        assert_to(&BTreeMap::from([(true, 1)]), m([("true", n("1"))]));
        assert_to(&BTreeMap::from([('c', 1)]), m([("c", n("1"))]));
        assert_to(&BTreeMap::from([(Kind::Gamma, 1)]), m([("Gamma", n("1"))]));
        assert_to(&BTreeMap::from([(Name("k".into()), 1)]), m([("k", n("1"))]));
        // Later duplicates win.
        assert_to(&[("k", 1), ("k", 2)].into_iter().collect::<Vec<_>>(), {
            AttributeValue::L(vec![
                AttributeValue::L(vec![s("k"), n("1")]),
                AttributeValue::L(vec![s("k"), n("2")]),
            ])
        });

        assert_eq!(
            assert_from::<BTreeMap<u8, u8>>(m([("7", n("1"))])),
            BTreeMap::from([(7, 1)])
        );
        assert_eq!(
            assert_from::<BTreeMap<i128, u8>>(m([("-7", n("1"))])),
            BTreeMap::from([(-7, 1)])
        );
        assert_eq!(
            assert_from::<BTreeMap<bool, u8>>(m([("false", n("1"))])),
            BTreeMap::from([(false, 1)])
        );
        assert_eq!(
            assert_from::<BTreeMap<char, u8>>(m([("é", n("1"))])),
            BTreeMap::from([('é', 1)])
        );
        assert_eq!(
            assert_from::<BTreeMap<Kind, u8>>(m([("Alpha", n("1"))])),
            BTreeMap::from([(Kind::Alpha, 1)])
        );
        assert_from_fails::<BTreeMap<u8, u8>>(m([("256", n("1"))]));
        assert_from_fails::<BTreeMap<bool, u8>>(m([("True", n("1"))]));
        assert_from_fails::<BTreeMap<char, u8>>(m([("ab", n("1"))]));
        assert_from_fails::<HashMap<Option<String>, u8>>(m([("a", n("1"))]));
        assert_from_fails::<Vec<(String, u8)>>(m([("a", n("1"))]));
    }

    #[test]
    fn refused_map_keys() {
        assert_to_fails(&PairsMap(vec![(1.5f64, 1)]));
        assert_to_fails(&PairsMap(vec![(1.5f32, 1)]));
        assert_to_fails(&PairsMap(vec![(None::<String>, 1)]));
        assert_to_fails(&PairsMap(vec![(Some("k"), 1)]));
        assert_to_fails(&PairsMap(vec![((), 1)]));
        assert_to_fails(&PairsMap(vec![(Marker, 1)]));
        assert_to_fails(&PairsMap(vec![((1, 2), 1)]));
        assert_to_fails(&PairsMap(vec![(Point(1, 2), 1)]));
        assert_to_fails(&PairsMap(vec![(
            Inner {
                a: 1,
                b: String::new(),
                c: None,
            },
            1,
        )]));
        assert_to_fails(&PairsMap(vec![(Variant::Newtype(1), 1)]));
        assert_to_fails(&PairsMap(vec![(Variant::Tuple(1, String::new()), 1)]));
        assert_to_fails(&PairsMap(vec![(Variant::Struct { a: true, b: None }, 1)]));
        // serde_dynamo panics (`unreachable!`) on these; we refuse them like the others.
        for refused in [
            to_attribute_value(&PairsMap(vec![(vec![1], 1)])),
            to_attribute_value(&PairsMap(vec![(BTreeMap::from([(1, 1)]), 1)])),
            to_attribute_value(&PairsMap(vec![(ByteBuf::from(vec![1]), 1)])),
        ] {
            assert_eq!(refused, Err(KEY_MUST_BE_A_STRING));
        }
    }

    /// A map written from a list of pairs, so that any key type can be tried.
    #[derive(Debug)]
    struct PairsMap<K, V>(Vec<(K, V)>);

    impl<K: Serialize, V: Serialize> Serialize for PairsMap<K, V> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    #[test]
    fn map_serializer_misuse_is_an_error() {
        use serde::ser::{SerializeMap, Serializer as _};
        let mut map = Serializer.serialize_map(None).unwrap();
        assert_eq!(map.serialize_value(&1), Err(VALUE_BEFORE_KEY));
        map.serialize_key("a").unwrap();
        assert_eq!(map.serialize_key("b"), Err(KEY_CALLED_TWICE));
    }

    /// 10,000 levels of `L` (or `M`) around a number, built without recursion.
    fn deep(levels: usize, list: bool) -> AttributeValue {
        let mut value = n("1");
        for _ in 0..levels {
            value = if list {
                AttributeValue::L(vec![value])
            } else {
                m([("k", value)])
            };
        }
        value
    }

    #[test]
    fn deep_documents_fail_instead_of_overflowing_the_stack() {
        // serde_dynamo recurses once per level without a limit and overflows the stack here
        // (aborting the process), so it is not called.
        for list in [true, false] {
            let too_deep = Err(DocumentError::new(TOO_DEEP));
            assert_eq!(from_attribute_value::<Value>(deep(10_000, list)), too_deep);
            assert_eq!(
                from_attribute_value::<IgnoredAny>(deep(10_000, list)).err(),
                too_deep.clone().err()
            );
            assert_eq!(
                from_attribute_value::<Untagged>(deep(10_000, list)).err(),
                too_deep.clone().err()
            );
            // Refused or unread input is dropped without recursion too.
            assert_eq!(
                from_attribute_value::<u64>(deep(10_000, list)),
                Err(EXPECTED_NUM)
            );
            assert!(
                from_attribute_value::<Vec<Value>>(AttributeValue::L(vec![
                    n("x"),
                    deep(10_000, list)
                ]))
                .is_err()
            );
            assert!(
                from_attribute_value::<(u8,)>(AttributeValue::L(vec![n("1"), deep(10_000, list)]))
                    .is_ok()
            );
            assert_eq!(
                from_attribute_value::<Variant>(m([("Unit", deep(10_000, list))])),
                Ok(Variant::Unit)
            );
            assert!(
                from_attribute_value::<Variant>(m([
                    ("Unit", deep(10_000, list)),
                    ("Tuple", deep(10_000, list))
                ]))
                .is_err()
            );
            assert!(
                from_attribute_value::<Wrapped>(m([("a", n("x")), ("b", deep(10_000, list))]))
                    .is_err()
            );
        }
        // 128 levels are read like serde_dynamo reads them; one more is refused.
        for list in [true, false] {
            assert_eq!(
                assert_from::<Value>(deep(MAX_DEPTH, list)),
                ok(theirs_from::<Value>(deep(MAX_DEPTH, list)))
            );
            assert_eq!(
                from_attribute_value::<Value>(deep(MAX_DEPTH + 1, list)),
                Err(DocumentError::new(TOO_DEEP))
            );
        }
        // Recursion without nesting in the document: each `Some` and newtype level counts.
        #[derive(Debug, Deserialize)]
        struct Endless(#[allow(dead_code)] Option<Box<Endless>>);
        assert_eq!(
            from_attribute_value::<Endless>(n("1")).err(),
            Some(DocumentError::new(TOO_DEEP))
        );
    }

    #[test]
    fn errors_carry_serde_dynamo_messages() {
        let error = from_attribute_value::<u8>(n("300")).unwrap_err();
        assert_eq!(
            error.to_string(),
            theirs_from::<u8>(n("300")).unwrap_err().to_string()
        );
        assert_eq!(
            error.to_string(),
            "Failed to parse '300' as an integer: number too large to fit in target type"
        );
        assert_eq!(
            from_attribute_value::<bool>(n("1"))
                .unwrap_err()
                .to_string(),
            theirs_from::<bool>(n("1")).unwrap_err().to_string()
        );
        let boxed: Box<dyn std::error::Error> = Box::new(error);
        assert!(boxed.to_string().starts_with("Failed to parse"));
    }
}
