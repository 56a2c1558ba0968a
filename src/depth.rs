//! A serde [`Deserializer`] adapter that bounds how deeply a value may nest.
//!
//! bincode 2 has no recursion limit of its own: decoding `01 01 01 ..` as a recursive type such
//! as `enum Tree { Leaf, Node(Box<Tree>) }` recurses once per byte until the stack overflows,
//! which aborts the process. [`DepthLimited`] wraps any deserializer and counts the levels a
//! value nests: every visitor call that hands the visitor something to recurse into
//! (`visit_some`, `visit_newtype_struct`, `visit_seq`, `visit_map`, `visit_enum`) costs one
//! level of the budget, and the access objects it hands over (`SeqAccess`, `MapAccess`,
//! `EnumAccess`, `VariantAccess`) pass the remaining budget down to every nested value. Past
//! [`MAX_DEPTH`] levels decoding fails with a custom error whose message is [`TOO_DEEP`].
//!
//! Everything else is forwarded unchanged (including `is_human_readable`), so a value decodes
//! exactly as it would without the adapter. The adapter only adds a counter (and the byte mode
//! below) to each layer, which the compiler keeps in registers: no allocation, no dynamic
//! dispatch.
//!
//! The same plumbing carries a second setting down to every nested value, the [`Bytes`] mode.
//! With [`Bytes::Base64`] (the JSON format, which writes byte strings as base64 strings: see
//! `crate::json`), a `deserialize_bytes` / `deserialize_byte_buf` call accepts a string and
//! hands the visitor its base64-decoded bytes (see [`base64_bytes`]); a sequence of numbers, the
//! form earlier versions wrote, is still handed over as a sequence.
//!
//! Serde's hidden, unstable hooks (`__private_visit_untagged_option`, `__deserialize_content*`)
//! are not forwarded and keep their defaults. They only matter for self-describing content that
//! serde buffers (untagged and internally tagged enums, flattening), which bincode does not
//! support. With JSON, such content is buffered through `deserialize_any` (the default of
//! `__deserialize_content`), still through the adapter, but it is then read back by serde's own
//! deserializer, out of the adapter's reach: a byte string in it is its base64 text (see
//! `crate::json`).

mod base64_bytes;

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// How many levels a value may nest: a value and its nested values, each `Some`, newtype
/// struct, sequence (tuples and structs included), map and enum counting one level.
pub(crate) const MAX_DEPTH: usize = 128;

/// The message of the error returned when a value nests deeper than [`MAX_DEPTH`] levels.
pub(crate) const TOO_DEEP: &str = "nested deeper than 128 levels";

/// How a [`DepthLimited`] deserializer reads byte strings (`deserialize_bytes`,
/// `deserialize_byte_buf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bytes {
    /// As the wrapped deserializer hands them over.
    Native,
    /// For a deserializer without a byte type (JSON) whose `deserialize_bytes` hands over a
    /// string's text as bytes: that text is base64 (standard alphabet, padded) and the visitor
    /// gets the decoded bytes; text that is not base64 is an error. Anything else the wrapped
    /// deserializer hands over (such as a sequence of numbers) reaches the visitor unchanged.
    Base64,
}

/// What each layer of the adapter hands down to the values nested in it.
#[derive(Debug, Clone, Copy)]
struct Context {
    /// Levels the value may still nest.
    remaining: usize,
    /// How byte strings are read.
    bytes: Bytes,
}

impl Context {
    /// The context one level down: takes one level from the budget, or fails when it is spent.
    fn descend<E: de::Error>(self) -> Result<Self, E> {
        let remaining = self
            .remaining
            .checked_sub(1)
            .ok_or_else(|| E::custom(TOO_DEEP))?;
        Ok(Self { remaining, ..self })
    }
}

/// A [`DeserializeSeed`] that deserializes a `T` through a [`DepthLimited`] deserializer with
/// the full [`MAX_DEPTH`] budget: for decoders that take a seed rather than hand out their
/// deserializer (such as `bincode::serde::seed_decode_from_slice`, which also reports how many
/// bytes were read).
pub(crate) struct Limited<T>(PhantomData<fn() -> T>);

impl<T> Limited<T> {
    /// A seed for a `T`.
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Limited<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(DepthLimited::new(deserializer))
    }
}

/// A deserializer that behaves exactly like `inner`, but fails with [`TOO_DEEP`] instead of
/// recursing more than [`MAX_DEPTH`] levels deep (and reads byte strings as its [`Bytes`] mode
/// says).
pub(crate) struct DepthLimited<D> {
    /// The wrapped deserializer.
    inner: D,
    /// The budget left for the value being deserialized, and the byte mode.
    ctx: Context,
}

impl<D> DepthLimited<D> {
    /// Wraps `inner` with the full [`MAX_DEPTH`] budget, reading byte strings natively.
    pub(crate) fn new(inner: D) -> Self {
        Self::with(inner, MAX_DEPTH, Bytes::Native)
    }

    /// Wraps `inner`, letting the value nest `max_depth` levels and reading byte strings as
    /// `bytes` says. (`usize::MAX` levels is no limit at all: for a deserializer with a recursion
    /// limit of its own that only needs the byte mode.)
    pub(crate) fn with(inner: D, max_depth: usize, bytes: Bytes) -> Self {
        Self {
            inner,
            ctx: Context {
                remaining: max_depth,
                bytes,
            },
        }
    }
}

/// Forwards `deserialize_*` methods (with their extra arguments) to the inner deserializer,
/// wrapping the visitor so that it keeps counting.
macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* LimitedVisitor {
                inner: visitor,
                ctx: self.ctx,
            })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for DepthLimited<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = LimitedVisitor {
            inner: visitor,
            ctx: self.ctx,
        };
        match self.ctx.bytes {
            Bytes::Native => self.inner.deserialize_bytes(visitor),
            Bytes::Base64 => self
                .inner
                .deserialize_bytes(base64_bytes::Base64Bytes(visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = LimitedVisitor {
            inner: visitor,
            ctx: self.ctx,
        };
        match self.ctx.bytes {
            Bytes::Native => self.inner.deserialize_byte_buf(visitor),
            Bytes::Base64 => self
                .inner
                .deserialize_byte_buf(base64_bytes::Base64Bytes(visitor)),
        }
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor that forwards to `inner`, taking a level from the budget before every call that
/// lets it recurse and handing the rest (and the byte mode) down.
struct LimitedVisitor<V> {
    /// The wrapped visitor.
    inner: V,
    /// Levels the value may still nest, this one included, and the byte mode.
    ctx: Context,
}

/// Forwards `visit_*` methods that take a plain value and cannot recurse.
macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for LimitedVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(DepthLimited {
            inner: deserializer,
            ctx: self.ctx.descend::<D::Error>()?,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(DepthLimited {
            inner: deserializer,
            ctx: self.ctx.descend::<D::Error>()?,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Nested {
            inner: seq,
            ctx: self.ctx.descend::<A::Error>()?,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Nested {
            inner: map,
            ctx: self.ctx.descend::<A::Error>()?,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Nested {
            inner: data,
            ctx: self.ctx.descend::<A::Error>()?,
        })
    }
}

/// A seed that deserializes through a [`DepthLimited`] deserializer with the budget left.
struct LimitedSeed<S> {
    /// The wrapped seed.
    inner: S,
    /// Levels the value may still nest, and the byte mode.
    ctx: Context,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for LimitedSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(DepthLimited {
            inner: deserializer,
            ctx: self.ctx,
        })
    }
}

/// The contents of a sequence, map or enum (`inner`: its `SeqAccess`, `MapAccess`,
/// `EnumAccess` or `VariantAccess`), whose nested values get the budget left.
struct Nested<A> {
    /// The wrapped access.
    inner: A,
    /// Levels the nested values may still nest, and the byte mode.
    ctx: Context,
}

impl<A> Nested<A> {
    /// Wraps a seed for one nested value.
    fn seed<S>(&self, seed: S) -> LimitedSeed<S> {
        LimitedSeed {
            inner: seed,
            ctx: self.ctx,
        }
    }

    /// Wraps a visitor for the contents of a tuple or struct variant.
    fn visitor<V>(&self, visitor: V) -> LimitedVisitor<V> {
        LimitedVisitor {
            inner: visitor,
            ctx: self.ctx,
        }
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_value_seed(seed)
    }

    fn next_entry_seed<K: DeserializeSeed<'de>, S: DeserializeSeed<'de>>(
        &mut self,
        key: K,
        value: S,
    ) -> Result<Option<(K::Value, S::Value)>, A::Error> {
        let (key, value) = (self.seed(key), self.seed(value));
        self.inner.next_entry_seed(key, value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Nested<A> {
    type Error = A::Error;
    type Variant = Nested<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (seed, ctx) = (self.seed(seed), self.ctx);
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            Nested {
                inner: variant,
                ctx,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.visitor(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.visitor(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::serializer::MAX_DECODED_SIZE;
    use crate::{Encoded, Error, Serializer};

    /// A recursive value type, as users may store (trees, linked lists).
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Tree {
        Leaf,
        Node(Box<Tree>),
    }

    impl Tree {
        /// `nodes` nodes above a leaf: `nodes + 1` levels.
        fn deep(nodes: usize) -> Self {
            (0..nodes).fold(Tree::Leaf, |t, _| Tree::Node(Box::new(t)))
        }
    }

    /// bincode's encoding of [`Tree::deep`]`(nodes)`: one `01` per node, then `00`.
    fn tree_bytes(nodes: usize) -> Vec<u8> {
        let mut bytes = vec![1u8; nodes];
        bytes.push(0);
        bytes
    }

    fn loads<V: DeserializeOwned>(bytes: Vec<u8>) -> crate::Result<V> {
        Serializer::bincode().loads("the-key", Encoded::Bytes(bytes))
    }

    fn assert_too_deep<V: Debug>(r: crate::Result<V>) {
        match r {
            Err(Error::Deserialize { key, message }) => {
                assert_eq!(key, "the-key");
                assert_eq!(message, "nested deeper than 128 levels");
            }
            other => panic!("expected a depth error, got {other:?}"),
        }
    }

    #[test]
    fn the_message_names_the_limit() {
        assert_eq!(TOO_DEEP, format!("nested deeper than {MAX_DEPTH} levels"));
    }

    #[test]
    fn nesting_within_the_limit_decodes() {
        for nodes in [0, 1, 100, MAX_DEPTH - 1] {
            let s = Serializer::bincode();
            let tree = Tree::deep(nodes);
            let encoded = s.dumps("k", &tree).unwrap();
            assert_eq!(encoded, Encoded::Bytes(tree_bytes(nodes)));
            assert_eq!(s.loads::<Tree>("k", encoded).unwrap(), tree, "{nodes}");
        }
    }

    #[test]
    fn nesting_beyond_the_limit_is_an_error() {
        // MAX_DEPTH - 1 nodes and the leaf are MAX_DEPTH levels; one more is too many.
        assert_too_deep(loads::<Tree>(tree_bytes(MAX_DEPTH)));
        assert_too_deep(loads::<Tree>(tree_bytes(200)));
        // Options in newtype structs: two levels each.
        #[derive(Debug, Deserialize)]
        struct Chain(#[allow(dead_code)] Option<Box<Chain>>);
        assert_too_deep(loads::<Chain>(tree_bytes(200)));
        assert!(loads::<Chain>(tree_bytes(MAX_DEPTH / 2 - 1)).is_ok());
        // Sequences in newtype structs.
        #[derive(Debug, Deserialize)]
        struct Lists(#[allow(dead_code)] Vec<Lists>);
        assert_too_deep(loads::<Lists>(vec![1; 300]));
    }

    #[test]
    fn hostile_deep_input_is_an_error_not_a_stack_overflow() {
        // 300 000 levels (300 KB, one DynamoDB item): without the limit this aborts the process,
        // whatever the stack size. With it, a debug build needs under 200 KiB of stack here; run
        // on half the default 2 MiB of a spawned thread to keep a margin.
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                assert_too_deep(loads::<Tree>(vec![1u8; 300_000]));
                assert_too_deep(loads::<Tree>(tree_bytes(300_000)));
                #[derive(Debug, Deserialize)]
                struct Lists(#[allow(dead_code)] Vec<Lists>);
                assert_too_deep(loads::<Lists>(vec![1; 300_000]));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn the_adapter_wraps_bincode_directly() {
        let config = bincode::config::standard().with_limit::<MAX_DECODED_SIZE>();
        let bytes = tree_bytes(10);
        let mut decoder = bincode::serde::BorrowedSerdeDecoder::from_slice(&bytes, config, ());
        let tree = Tree::deserialize(DepthLimited::new(decoder.as_deserializer())).unwrap();
        assert_eq!(tree, Tree::deep(10));
        let bytes = tree_bytes(1000);
        let mut decoder = bincode::serde::BorrowedSerdeDecoder::from_slice(&bytes, config, ());
        let err = Tree::deserialize(DepthLimited::new(decoder.as_deserializer())).unwrap_err();
        assert!(
            matches!(err, bincode::error::DecodeError::OtherString(ref m) if m == TOO_DEEP),
            "{err:?}"
        );
    }

    #[test]
    fn human_readability_is_forwarded() {
        let mut json = serde_json::Deserializer::from_str("1");
        assert!(DepthLimited::new(&mut json).is_human_readable());
        let config = bincode::config::standard();
        let mut decoder = bincode::serde::BorrowedSerdeDecoder::from_slice(&[], config, ());
        assert!(!DepthLimited::new(decoder.as_deserializer()).is_human_readable());
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    struct Newtype(String);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct TupleStruct(i8, u16, char);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Kind {
        A,
        B(u32),
        T(i64, Option<String>),
        C { x: String, y: Vec<u8> },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Everything {
        flag: bool,
        small: (i8, i16, i32, i64, i128),
        unsigned: (u8, u16, u32, u64, u128),
        floats: (f32, f64),
        letter: char,
        text: String,
        unit: (),
        unit_struct: Unit,
        newtype: Newtype,
        tuple_struct: TupleStruct,
        kinds: Vec<Kind>,
        maybe: Option<Option<u8>>,
        none: Option<Box<Everything>>,
        map: BTreeMap<String, Vec<(u8, String)>>,
        hash: HashMap<u64, Kind>,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        buf: serde_bytes::ByteBuf,
        nested: Vec<Vec<Option<BTreeMap<u8, Newtype>>>>,
    }

    fn everything() -> Everything {
        Everything {
            flag: true,
            small: (-1, -300, -70_000, i64::MIN, i128::MIN),
            unsigned: (255, 65_535, u32::MAX, u64::MAX, u128::MAX),
            floats: (1.5, -0.25),
            letter: 'β',
            text: "hello, wörld".into(),
            unit: (),
            unit_struct: Unit,
            newtype: Newtype("new".into()),
            tuple_struct: TupleStruct(-8, 16, 'x'),
            kinds: vec![
                Kind::A,
                Kind::B(7),
                Kind::T(-3, Some("t".into())),
                Kind::T(0, None),
                Kind::C {
                    x: "deep".into(),
                    y: vec![1, 2, 3],
                },
            ],
            maybe: Some(Some(4)),
            none: None,
            map: BTreeMap::from([("a".into(), vec![(1, "one".into())]), ("b".into(), vec![])]),
            hash: HashMap::from([(1, Kind::A), (2, Kind::B(2))]),
            bytes: (0..=255).collect(),
            buf: serde_bytes::ByteBuf::from(vec![0u8, 1, 2]),
            nested: vec![vec![None, Some(BTreeMap::from([(1, Newtype("n".into()))]))]],
        }
    }

    /// Round trips through the limited `Serializer::loads`, and decodes the same bytes exactly
    /// as unlimited bincode does.
    fn round_trip<V>(value: &V)
    where
        V: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let s = Serializer::bincode();
        let encoded = s.dumps("k", value).unwrap();
        let Encoded::Bytes(bytes) = &encoded else {
            unreachable!()
        };
        let (plain, used): (V, usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard()).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(&plain, value);
        assert_eq!(&s.loads::<V>("k", encoded).unwrap(), value);
    }

    #[test]
    fn ordinary_values_round_trip() {
        round_trip(&everything());
        round_trip(&Some(Box::new(everything())));
        round_trip(&Kind::C {
            x: String::new(),
            y: vec![],
        });
        round_trip(&(1u8, Some("x".to_owned()), 2.5f64, Kind::B(1)));
        round_trip(&Option::<u8>::None);
        round_trip(&Some(Some(Some(1u8))));
        round_trip(&BTreeMap::from([(Newtype("k".into()), Some(Kind::A))]));
        round_trip(&serde_bytes::ByteBuf::from(vec![9u8; 1000]));
        round_trip(&String::from("plain"));
        round_trip(&());
        round_trip(&Tree::deep(50));
        round_trip(&crate::cache::CachedResponse::default());
    }

    #[test]
    fn trailing_bytes_and_size_limit_still_apply() {
        let Encoded::Bytes(mut bytes) = Serializer::bincode().dumps("k", &everything()).unwrap()
        else {
            unreachable!()
        };
        bytes.push(0);
        match loads::<Everything>(bytes) {
            Err(Error::Deserialize { message, .. }) => {
                assert_eq!(message, "1 trailing bytes after the value")
            }
            other => panic!("{other:?}"),
        }
        // A string claiming more than MAX_DECODED_SIZE bytes.
        let mut huge = vec![0xfc];
        huge.extend_from_slice(&(MAX_DECODED_SIZE as u32 + 1).to_le_bytes());
        huge.extend_from_slice(b"abc");
        assert!(matches!(
            loads::<String>(huge),
            Err(Error::Deserialize { .. })
        ));
    }

    #[test]
    fn the_adapter_is_transparent_for_self_describing_formats() {
        // serde_json drives `deserialize_any` and the map / seq / string visitors.
        let text = r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":"\u00e9"}"#;
        let mut json = serde_json::Deserializer::from_str(text);
        let value = serde_json::Value::deserialize(DepthLimited::new(&mut json)).unwrap();
        assert_eq!(
            value,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        let everything_json = serde_json::to_string(&everything()).unwrap();
        let mut json = serde_json::Deserializer::from_str(&everything_json);
        let back = Everything::deserialize(DepthLimited::new(&mut json)).unwrap();
        assert_eq!(back, everything());
    }

    #[test]
    fn byte_strings_are_read_natively_unless_base64_is_asked_for() {
        // Native (the default): what serde_json hands over, a string's text as bytes.
        let mut json = serde_json::Deserializer::from_str(r#""AQID""#);
        let raw = serde_bytes::ByteBuf::deserialize(DepthLimited::new(&mut json)).unwrap();
        assert_eq!(raw, b"AQID"[..]);
        // Base64: decoded, at every level (fields, sequences, maps, enum variants, options).
        let text = String::from_utf8(crate::json::to_vec(&everything()).unwrap()).unwrap();
        assert!(text.contains(r#""buf":"AAEC""#), "{text}");
        for bytes in [Bytes::Native, Bytes::Base64] {
            let mut json = serde_json::Deserializer::from_str(&text);
            let back = Everything::deserialize(DepthLimited::with(&mut json, MAX_DEPTH, bytes));
            match bytes {
                Bytes::Native => assert_ne!(back.unwrap(), everything()),
                Bytes::Base64 => assert_eq!(back.unwrap(), everything()),
            }
        }
        #[derive(Debug, PartialEq, Deserialize)]
        struct Nest(Vec<Option<BTreeMap<String, Kind2>>>);
        #[derive(Debug, PartialEq, Deserialize)]
        enum Kind2 {
            New(serde_bytes::ByteBuf),
            Tuple(u8, serde_bytes::ByteBuf),
            Struct { b: serde_bytes::ByteBuf },
        }
        let text =
            r#"[null,{"a":{"New":"AQ=="},"b":{"Tuple":[1,"Ag=="]},"c":{"Struct":{"b":[3]}}}]"#;
        let mut json = serde_json::Deserializer::from_str(text);
        let back = Nest::deserialize(DepthLimited::with(&mut json, MAX_DEPTH, Bytes::Base64));
        let b = |v: &[u8]| serde_bytes::ByteBuf::from(v.to_vec());
        assert_eq!(
            back.unwrap(),
            Nest(vec![
                None,
                Some(BTreeMap::from([
                    ("a".to_owned(), Kind2::New(b(&[1]))),
                    ("b".to_owned(), Kind2::Tuple(1, b(&[2]))),
                    ("c".to_owned(), Kind2::Struct { b: b(&[3]) }),
                ])),
            ])
        );
    }

    #[test]
    fn the_base64_mode_keeps_counting_levels() {
        #[derive(Debug, Deserialize)]
        struct Lists(#[allow(dead_code)] Vec<Lists>);
        // 100 nested arrays: within serde_json's limit, but two levels each here.
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let mut json = serde_json::Deserializer::from_str(&text);
        let err = Lists::deserialize(DepthLimited::with(&mut json, MAX_DEPTH, Bytes::Base64))
            .unwrap_err();
        assert!(err.to_string().starts_with(TOO_DEEP), "{err}");
        let mut json = serde_json::Deserializer::from_str(&text);
        assert!(
            Lists::deserialize(DepthLimited::with(&mut json, usize::MAX, Bytes::Base64)).is_ok()
        );
    }
}
