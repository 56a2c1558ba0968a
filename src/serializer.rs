//! The serializer pipeline (documented on [`Serializer`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::{Error, Result, depth, document, json};

/// The largest value, in bytes, that any decoder in this module will produce: a length field in
/// corrupt or hostile data can never make it allocate more than this.
pub const MAX_DECODED_SIZE: usize = 64 * 1024 * 1024;

/// The first stage of a pipeline: how a value becomes a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// bincode 2 (serde mode, standard configuration): compact binary.
    Bincode,
    /// JSON (serde_json, compact), stored as bytes. Byte strings are base64 strings; the
    /// number arrays earlier versions wrote for them still read (see
    /// [`Serializer`]).
    Json,
    /// A native DynamoDB map, browsable in the AWS console, in `serde_dynamo`'s representation
    /// (items written by either read back with the other). Byte stages cannot follow it, but it
    /// can be [signed](Serializer::signed).
    Document,
}

impl Format {
    fn id(self) -> &'static str {
        match self {
            Format::Bincode => "bincode2",
            Format::Json => "json",
            Format::Document => "document",
        }
    }

    /// The first stage of the pipeline with id `id` (what an item's `f` attribute records),
    /// when it is a built-in format.
    pub(crate) fn of_pipeline(id: &str) -> Option<Format> {
        let first = id.split('+').next()?;
        [Format::Bincode, Format::Json, Format::Document]
            .into_iter()
            .find(|format| format.id() == first)
    }
}

/// An encoded value, as it is stored in the value attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoded {
    /// Bytes, stored as a DynamoDB binary (`B`) attribute.
    Bytes(Vec<u8>),
    /// A document, stored as a DynamoDB map (`M`) or other native attribute, with an optional
    /// detached signature.
    Document {
        /// The value as a DynamoDB attribute.
        value: AttributeValue,
        /// HMAC-SHA256 over the canonical form of `value` and the key, when signed.
        signature: Option<Vec<u8>>,
    },
}

impl Encoded {
    /// The number of bytes DynamoDB counts for this payload (excluding the attribute name).
    pub fn stored_size(&self) -> usize {
        match self {
            Encoded::Bytes(b) => b.len(),
            Encoded::Document { value, signature } => {
                attribute_size(value) + signature.as_ref().map_or(0, |s| s.len() + 1)
            }
        }
    }
}

/// A byte-to-byte transformation in a [`Serializer`] pipeline.
///
/// Implement this to add your own stage (encryption, another compressor, ...). `encode` runs in
/// pipeline order when storing; `decode` runs in reverse order when loading. Both receive the
/// item's key, so a stage can bind its output to the key (as [`Signer`] does). A stage must
/// return an error, never panic, on input it cannot decode.
///
/// ```
/// use dynamodict::{Serializer, Stage};
/// use std::borrow::Cow;
///
/// /// A toy stage that reverses the bytes.
/// #[derive(Debug)]
/// struct Reverse;
///
/// impl Stage for Reverse {
///     fn id(&self) -> Cow<'static, str> { "reverse".into() }
///     fn encode(&self, _key: &str, mut data: Vec<u8>) -> dynamodict::Result<Vec<u8>> {
///         data.reverse();
///         Ok(data)
///     }
///     fn decode(&self, _key: &str, mut data: Vec<u8>) -> dynamodict::Result<Vec<u8>> {
///         data.reverse();
///         Ok(data)
///     }
/// }
///
/// let s = Serializer::bincode().with_stage(Reverse)?;
/// assert_eq!(s.id(), "bincode2+reverse");
/// let v: u32 = s.loads("k", s.dumps("k", &7u32)?)?;
/// assert_eq!(v, 7);
/// # Ok::<(), dynamodict::Error>(())
/// ```
pub trait Stage: Send + Sync + fmt::Debug {
    /// A short, stable name recorded with every item (e.g. `"zstd"`).
    fn id(&self) -> Cow<'static, str>;
    /// Transforms bytes on the way into the table.
    ///
    /// # Errors
    ///
    /// Whatever the stage reports, failing the write before any request; by convention
    /// [`Error::Serialize`] naming `key`.
    fn encode(&self, key: &str, data: Vec<u8>) -> Result<Vec<u8>>;
    /// Reverses [`encode`](Stage::encode) on the way out.
    ///
    /// # Errors
    ///
    /// Whatever the stage reports for bytes it cannot decode, failing the read: by convention
    /// [`Error::Deserialize`] naming `key`, or [`Error::BadSignature`] for data that fails a check
    /// of authenticity (as [`Signer`] does).
    fn decode(&self, key: &str, data: Vec<u8>) -> Result<Vec<u8>>;
}

/// A pipeline: a [`Format`] followed by byte [`Stage`]s. Cheap to clone.
///
/// How values become DynamoDB attributes and back:
///
/// A [`Serializer`] is a first stage, the [`Format`], that turns a value into a payload, followed
/// by any number of byte [`Stage`]s (signing, compression, your own) that transform the bytes.
/// Loading runs the stages in reverse, then the format's decoder.
///
/// | format | stored as | notes |
/// |---|---|---|
/// | [`Format::Bincode`] (default) | binary attribute | compact and fast; bincode 2 with serde |
/// | [`Format::Json`] | binary attribute | portable, readable with any JSON tool; byte strings as base64 |
/// | [`Format::Document`] | native DynamoDB map | browsable in the AWS console; no byte stages |
///
/// The JSON format is serde_json's compact output, except for byte strings (anything serialized
/// with `serialize_bytes`, such as `serde_bytes` fields and response bodies): JSON has no byte
/// type, and they are written as base64 strings (standard alphabet, padded) rather than as
/// arrays of numbers: under half the size and many times faster. Where a type asks for bytes,
/// both a base64 string and an array of numbers (what earlier versions wrote) are read, so
/// stored values stay readable. Types that read bytes through
/// `deserialize_any`, and byte strings inside `#[serde(flatten)]` structs and untagged or
/// internally tagged enums, cannot tell base64 from text and get the base64 text back: use
/// bincode (or plain `Vec<u8>` sequences) for those.
///
/// Every item records the pipeline's [`id`](Serializer::id) beside the value, so a value written
/// by a different pipeline is reported as [`Error::SerializerMismatch`] instead of being decoded
/// as garbage.
///
/// ```
/// use dynamodict::{DynamoDbDict, Encoded, Error, Serializer};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Point { x: i32, y: i32 }
/// let p = || Point { x: 1, y: 2 };
///
/// // JSON is readable by any tool; bincode (the default) is compact.
/// let json = Serializer::json().dumps("p", &p())?;
/// assert_eq!(json, Encoded::Bytes(br#"{"x":1,"y":2}"#.to_vec()));
/// assert_eq!(Serializer::bincode().dumps("p", &p())?.stored_size(), 2);
///
/// // Signed: an HMAC-SHA256 tag over the key and the value is stored with the value and
/// // checked on every read, so a value altered in the table, or copied to another key, fails.
/// let signed = Serializer::json().signed("a long random secret", "salt");
/// let points: DynamoDbDict<Point> = DynamoDbDict::builder("doc-serializers")
///     .namespace("points")
///     .serializer(signed.clone())
///     .local() // the embedded DynamoDB Local
///     .build()?;
/// points.set("p", p())?;
/// assert_eq!(points.get("p")?, Some(p()));
/// let copied = signed.dumps("p", &p())?;
/// assert!(matches!(signed.loads::<Point>("q", copied), Err(Error::BadSignature { .. })));
///
/// // Every item records its pipeline's id: read with another pipeline, it is an error, never
/// // garbage.
/// assert_eq!(signed.id(), "json+hmac-sha256");
/// let unsigned: DynamoDbDict<Point> = points.with_namespace("points", Serializer::json())?;
/// assert!(matches!(unsigned.get("p"), Err(Error::SerializerMismatch { .. })));
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Clone)]
pub struct Serializer {
    format: Format,
    stages: Vec<Arc<dyn Stage>>,
    /// Signs documents (byte formats use a [`Signer`] stage instead).
    document_signer: Option<Arc<Signer>>,
    /// Set when [`signed`](Serializer::signed) was given an empty secret key: every use then
    /// fails (see [`Serializer::check`]).
    empty_secret: bool,
    id: String,
}

impl fmt::Debug for Serializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serializer").field("id", &self.id).finish()
    }
}

impl Default for Serializer {
    fn default() -> Self {
        Self::bincode()
    }
}

impl Serializer {
    /// A pipeline with the given first stage and no byte stages.
    pub fn new(format: Format) -> Self {
        Serializer {
            format,
            stages: Vec::new(),
            document_signer: None,
            empty_secret: false,
            id: format.id().to_owned(),
        }
    }

    /// Whether the pipeline can be used: `Err(Error::Config)` when it signs with an empty
    /// secret key.
    ///
    /// # Errors
    /// [`Error::Config`] naming the problem and what to do.
    pub fn check(&self) -> Result<()> {
        if self.empty_secret {
            return Err(Error::Config(format!(
                "serializer {:?} signs with an empty secret key, which anyone can forge; pass a \
                 long random secret to `signed` (or the cache builder's `secret_key`)",
                self.id
            )));
        }
        Ok(())
    }

    /// bincode 2: the default.
    pub fn bincode() -> Self {
        Self::new(Format::Bincode)
    }

    /// JSON.
    pub fn json() -> Self {
        Self::new(Format::Json)
    }

    /// A native DynamoDB document (map), browsable in the AWS console.
    pub fn document() -> Self {
        Self::new(Format::Document)
    }

    /// The first stage.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The pipeline's id, recorded with every item: the format and stage ids joined by `+`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Appends a byte stage.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for the document format, whose payload is not bytes (signed or not).
    pub fn with_stage(mut self, stage: impl Stage + 'static) -> Result<Self> {
        if self.format == Format::Document {
            return Err(Error::Config(
                "byte stages cannot follow the document format; use bincode or json".into(),
            ));
        }
        self.id.push('+');
        self.id.push_str(&stage.id());
        self.stages.push(Arc::new(stage));
        Ok(self)
    }

    /// Signs every value with HMAC-SHA256 (see [`Signer`]). For byte formats this appends a
    /// signing stage; for documents the signature is stored beside the map. Values that are
    /// unsigned, altered, moved to another key or signed with another key fail with
    /// [`Error::BadSignature`] before they are deserialized.
    ///
    /// An empty `secret_key` would sign with a key anyone knows: such a serializer is refused
    /// with [`Error::Config`] by [`check`](Self::check), by the map and cache builders, and by
    /// every `dumps`/`loads`.
    ///
    /// ```
    /// use dynamodict::{Error, Serializer};
    ///
    /// assert!(Serializer::json().signed("a long random secret", "salt").check().is_ok());
    /// assert!(matches!(Serializer::json().signed("", "salt").check(), Err(Error::Config(_))));
    /// ```
    pub fn signed(mut self, secret_key: impl AsRef<[u8]>, salt: impl AsRef<[u8]>) -> Self {
        self.empty_secret |= secret_key.as_ref().is_empty();
        let signer = Signer::new(secret_key, salt);
        if self.format == Format::Document {
            self.id.push('+');
            self.id.push_str(&signer.id());
            self.document_signer = Some(Arc::new(signer));
            self
        } else {
            self.with_stage(signer).expect("byte formats accept stages")
        }
    }

    /// Compresses values with zstd at the given level (1-22; 3 is a good default). Values that
    /// do not shrink are stored as they are, flagged by a one-byte header.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for the document format, whose payload is not bytes.
    #[cfg(feature = "compression")]
    pub fn compressed(self, level: i32) -> Result<Self> {
        self.with_stage(Zstd::new(level))
    }

    /// Encodes a value for the item at `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when the format cannot encode the value (its `Serialize`
    /// implementation fails, or the format has no form for it); [`Error::Config`] when the
    /// pipeline signs with an empty secret key (see [`check`](Self::check)); the error of a
    /// [`Stage`] that fails.
    pub fn dumps<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Result<Encoded> {
        self.check()?;
        let ser_err = |message: String| Error::Serialize {
            key: key.to_owned(),
            message,
        };
        let mut bytes = match self.format {
            Format::Bincode => bincode::serde::encode_to_vec(value, bincode::config::standard())
                .map_err(|e| ser_err(e.to_string()))?,
            Format::Json => json::to_vec(value).map_err(|e| ser_err(e.to_string()))?,
            Format::Document => {
                let value =
                    document::to_attribute_value(value).map_err(|e| ser_err(e.to_string()))?;
                let signature = self
                    .document_signer
                    .as_ref()
                    .map(|s| s.sign_parts(key, &canonical_bytes(&value)));
                return Ok(Encoded::Document { value, signature });
            }
        };
        for stage in &self.stages {
            bytes = stage.encode(key, bytes)?;
        }
        Ok(Encoded::Bytes(bytes))
    }

    /// Decodes a value read from the item at `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Deserialize`] when the payload is corrupt, of another type than `V`, nested too
    /// deeply, larger than [`MAX_DECODED_SIZE`] or not the kind the format stores (bytes or a
    /// document); [`Error::BadSignature`] when the pipeline signs and the value is unsigned,
    /// altered, signed for another key or with another secret key; [`Error::Config`] when the
    /// pipeline signs with an empty secret key; the error of a [`Stage`] that fails.
    pub fn loads<V: DeserializeOwned>(&self, key: &str, encoded: Encoded) -> Result<V> {
        self.load(key, encoded, None)
    }

    /// Decodes a value read from an item that records `written_by` as its serializer id: a
    /// value the format's decoder rejects is reported as a value of another type than `V`,
    /// naming both serializers.
    pub(crate) fn loads_stored<V: DeserializeOwned>(
        &self,
        key: &str,
        encoded: Encoded,
        written_by: &str,
    ) -> Result<V> {
        self.load(key, encoded, Some(written_by))
    }

    fn load<V: DeserializeOwned>(
        &self,
        key: &str,
        encoded: Encoded,
        written_by: Option<&str>,
    ) -> Result<V> {
        self.check()?;
        let de_err = |message: String| Error::Deserialize {
            key: key.to_owned(),
            message,
        };
        // What the format's decoder rejects is, in a stored item of this serializer, a value of
        // another type.
        let type_err = |detail: String| match written_by {
            Some(written_by) => de_err(wrong_type_message(written_by, &self.id, &detail)),
            None => de_err(detail),
        };
        match (self.format, encoded) {
            (Format::Document, Encoded::Document { value, signature }) => {
                if let Some(signer) = &self.document_signer {
                    let sig = signature.ok_or_else(|| Error::BadSignature {
                        key: key.to_owned(),
                    })?;
                    signer.verify_parts(key, &canonical_bytes(&value), &sig)?;
                }
                document::from_attribute_value(value).map_err(|e| type_err(e.to_string()))
            }
            (Format::Document, Encoded::Bytes(_)) => {
                Err(de_err("expected a document, found bytes".into()))
            }
            (_, Encoded::Document { .. }) => Err(de_err("expected bytes, found a document".into())),
            (format, Encoded::Bytes(mut bytes)) => {
                for stage in self.stages.iter().rev() {
                    bytes = stage.decode(key, bytes)?;
                }
                match format {
                    Format::Bincode => {
                        let config = bincode::config::standard().with_limit::<MAX_DECODED_SIZE>();
                        // The borrowing decoder copies byte strings straight out of `bytes`
                        // (the owned one zero-fills a buffer first); `V` owns its data anyway.
                        // bincode has no recursion limit, so its deserializer is wrapped in a
                        // depth limit: hostile nesting is an error, not a stack overflow.
                        // (`seed_decode_from_slice` is `BorrowedSerdeDecoder::from_slice` and
                        // `as_deserializer`, handing the deserializer to the seed, that also
                        // reports the bytes read.)
                        let (value, used) = bincode::serde::seed_decode_from_slice(
                            depth::Limited::<V>::new(),
                            &bytes,
                            config,
                        )
                        .map_err(|e| match e {
                            bincode::error::DecodeError::OtherString(m) if m == depth::TOO_DEEP => {
                                de_err(m)
                            }
                            e => type_err(e.to_string()),
                        })?;
                        if used != bytes.len() {
                            return Err(type_err(format!(
                                "{} trailing bytes after the value",
                                bytes.len() - used
                            )));
                        }
                        Ok(value)
                    }
                    Format::Json => json::from_slice(&bytes).map_err(|e| type_err(e.to_string())),
                    Format::Document => unreachable!("handled above"),
                }
            }
        }
    }
}

/// The message of [`Error::Deserialize`] for a stored value of another type than the map's.
pub(crate) fn wrong_type_message(written_by: &str, read_by: &str, detail: &str) -> String {
    format!(
        "it does not match this map's value type (written by serializer {written_by:?}, read by \
         serializer {read_by:?}): read it with the type it was written with, or overwrite or \
         remove the key (decoder: {detail})"
    )
}

impl Serializer {
    /// For a signed document stored as canonical bytes (a large value split across items):
    /// checks the signature over those exact bytes before they are parsed.
    pub(crate) fn verify_document_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<()> {
        match &self.document_signer {
            Some(signer) => {
                let sig = signature.ok_or_else(|| Error::BadSignature {
                    key: key.to_owned(),
                })?;
                signer.verify_parts(key, bytes, sig)
            }
            None => Ok(()),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Signs values with HMAC-SHA256 so that tampered values are rejected.
///
/// The MAC key is `HMAC-SHA256(key = secret_key, message = salt)`; the tag covers the item's key
/// (length-prefixed) and the payload, so a valid value copied to another key is rejected too.
/// Encoded form: the 32-byte tag followed by the payload. Verification is constant-time.
///
/// `Debug` prints no key material.
#[derive(Clone)]
pub struct Signer {
    mac: HmacSha256,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(HMAC-SHA256, key redacted)")
    }
}

const TAG_LEN: usize = 32;

impl Signer {
    /// A signer for the given secret key and salt.
    pub fn new(secret_key: impl AsRef<[u8]>, salt: impl AsRef<[u8]>) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret_key.as_ref())
            .expect("HMAC accepts keys of any length");
        derive.update(salt.as_ref());
        let derived = derive.finalize().into_bytes();
        Signer {
            mac: HmacSha256::new_from_slice(&derived).expect("HMAC accepts keys of any length"),
        }
    }

    fn tagged(&self, key: &str, payload: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(&(key.len() as u64).to_be_bytes());
        mac.update(key.as_bytes());
        mac.update(payload);
        mac
    }

    fn sign_parts(&self, key: &str, payload: &[u8]) -> Vec<u8> {
        self.tagged(key, payload).finalize().into_bytes().to_vec()
    }

    fn verify_parts(&self, key: &str, payload: &[u8], tag: &[u8]) -> Result<()> {
        self.tagged(key, payload)
            .verify_slice(tag)
            .map_err(|_| Error::BadSignature {
                key: key.to_owned(),
            })
    }
}

impl Stage for Signer {
    fn id(&self) -> Cow<'static, str> {
        "hmac-sha256".into()
    }

    fn encode(&self, key: &str, data: Vec<u8>) -> Result<Vec<u8>> {
        let tag = self.sign_parts(key, &data);
        let mut out = Vec::with_capacity(TAG_LEN + data.len());
        out.extend_from_slice(&tag);
        out.extend_from_slice(&data);
        Ok(out)
    }

    fn decode(&self, key: &str, mut data: Vec<u8>) -> Result<Vec<u8>> {
        if data.len() < TAG_LEN {
            return Err(Error::BadSignature {
                key: key.to_owned(),
            });
        }
        self.verify_parts(key, &data[TAG_LEN..], &data[..TAG_LEN])?;
        data.drain(..TAG_LEN);
        Ok(data)
    }
}

/// zstd compression (feature `compression`).
///
/// Encoded form: one flag byte (`0` stored as is, `1` zstd frame) and the data. Decompression
/// never produces more than [`MAX_DECODED_SIZE`] bytes, whatever the frame header claims.
///
/// Compression and decompression contexts are kept per thread and reused: creating a zstd
/// context costs more than compressing a typical small value.
#[cfg(feature = "compression")]
#[derive(Debug, Clone)]
pub struct Zstd {
    level: i32,
}

/// The largest compression context, in bytes, a thread keeps for the next value (contexts for
/// high levels and large inputs take tens of megabytes).
#[cfg(feature = "compression")]
const MAX_KEPT_CONTEXT: usize = 8 * 1024 * 1024;

#[cfg(feature = "compression")]
thread_local! {
    /// This thread's compression context and the level it is set to.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    /// This thread's decompression context.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `run` with this thread's context slot in `slot`, or with an empty slot (a fresh
/// context, not kept) while the thread is being torn down.
#[cfg(feature = "compression")]
fn with_thread_context<C, R>(
    slot: &'static std::thread::LocalKey<std::cell::RefCell<Option<C>>>,
    mut run: impl FnMut(&mut Option<C>) -> R,
) -> R {
    slot.try_with(|cell| run(&mut cell.borrow_mut()))
        .unwrap_or_else(|_| run(&mut None))
}

#[cfg(feature = "compression")]
impl Zstd {
    /// A stage compressing at `level` (clamped to zstd's range).
    pub fn new(level: i32) -> Self {
        Zstd {
            level: level.clamp(1, 22),
        }
    }

    /// Compresses `data` into `out` after the bytes already there, with this thread's context
    /// (or a fresh one while the thread is being torn down). Returns the compressed length.
    fn compress_into(&self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<usize> {
        let mut sink = std::io::Cursor::new(out);
        sink.set_position(sink.get_ref().len() as u64);
        let run = |slot: &mut Option<(i32, zstd::bulk::Compressor<'static>)>| {
            let mut compressor = match slot.take() {
                Some((level, mut compressor)) => {
                    if level != self.level {
                        compressor.set_compression_level(self.level)?;
                    }
                    compressor
                }
                None => zstd::bulk::Compressor::new(self.level)?,
            };
            let result = compressor.compress_to_buffer(data, &mut sink);
            // A context grows with the level and the input; a large one is not kept.
            if compressor.context_mut().sizeof() <= MAX_KEPT_CONTEXT {
                *slot = Some((self.level, compressor));
            }
            result
        };
        with_thread_context(&COMPRESSOR, run)
    }

    /// Decompresses a frame with this thread's context (or a fresh one while the thread is
    /// being torn down), never producing more than [`MAX_DECODED_SIZE`] bytes.
    fn decompress(frame: &[u8]) -> std::result::Result<Vec<u8>, String> {
        // Allocate by what the frame claims only up to the limit.
        let claimed = zstd::zstd_safe::get_frame_content_size(frame)
            .ok()
            .flatten()
            .unwrap_or(0);
        if claimed > MAX_DECODED_SIZE as u64 {
            return Err(format!(
                "zstd frame claims {claimed} bytes, over the {MAX_DECODED_SIZE}-byte limit"
            ));
        }
        let run = |slot: &mut Option<zstd::bulk::Decompressor<'static>>| {
            let mut decoder = match slot.take() {
                Some(decoder) => decoder,
                None => zstd::bulk::Decompressor::new()?,
            };
            let mut out = Vec::with_capacity((claimed as usize).max(frame.len() * 2));
            let result = match decoder.decompress_to_buffer(frame, &mut out) {
                Ok(_) => Ok(out),
                // Unknown or wrong content size: retry into a bounded buffer.
                Err(_) => decoder.decompress(frame, MAX_DECODED_SIZE),
            };
            *slot = Some(decoder);
            result
        };
        with_thread_context(&DECOMPRESSOR, run).map_err(|e| format!("zstd: {e}"))
    }
}

#[cfg(feature = "compression")]
impl Stage for Zstd {
    fn id(&self) -> Cow<'static, str> {
        "zstd".into()
    }

    fn encode(&self, key: &str, data: Vec<u8>) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + zstd::zstd_safe::compress_bound(data.len()));
        out.push(1u8);
        let compressed = self
            .compress_into(&data, &mut out)
            .map_err(|e| Error::Serialize {
                key: key.to_owned(),
                message: format!("zstd: {e}"),
            })?;
        if compressed < data.len() {
            Ok(out)
        } else {
            // Incompressible: stored as it is.
            out.clear();
            out.push(0u8);
            out.extend_from_slice(&data);
            Ok(out)
        }
    }

    fn decode(&self, key: &str, mut data: Vec<u8>) -> Result<Vec<u8>> {
        let de_err = |message: String| Error::Deserialize {
            key: key.to_owned(),
            message,
        };
        match data.first() {
            Some(0) => {
                data.remove(0);
                Ok(data)
            }
            Some(1) => Self::decompress(&data[1..]).map_err(de_err),
            Some(other) => Err(de_err(format!("unknown compression flag {other}"))),
            None => Err(de_err("empty compressed payload".into())),
        }
    }
}

/// The size DynamoDB counts for an attribute value (approximate for numbers).
pub(crate) fn attribute_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + attribute_size(i)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + attribute_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// A deterministic byte encoding of an attribute value (maps sorted by key, every field typed
/// and length-prefixed), used to sign documents.
pub(crate) fn canonical_bytes(value: &AttributeValue) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    fn walk(out: &mut Vec<u8>, value: &AttributeValue) {
        match value {
            AttributeValue::B(b) => put(out, b'B', b.as_ref()),
            AttributeValue::S(s) => put(out, b'S', s.as_bytes()),
            AttributeValue::N(n) => put(out, b'N', n.as_bytes()),
            AttributeValue::Bool(b) => put(out, b'T', &[u8::from(*b)]),
            AttributeValue::Null(_) => put(out, b'0', &[]),
            AttributeValue::Ss(v) => {
                put(out, b's', &(v.len() as u64).to_be_bytes());
                v.iter().for_each(|s| put(out, b'S', s.as_bytes()));
            }
            AttributeValue::Ns(v) => {
                put(out, b'n', &(v.len() as u64).to_be_bytes());
                v.iter().for_each(|s| put(out, b'N', s.as_bytes()));
            }
            AttributeValue::Bs(v) => {
                put(out, b'b', &(v.len() as u64).to_be_bytes());
                v.iter().for_each(|b| put(out, b'B', b.as_ref()));
            }
            AttributeValue::L(items) => {
                put(out, b'L', &(items.len() as u64).to_be_bytes());
                items.iter().for_each(|i| walk(out, i));
            }
            AttributeValue::M(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                put(out, b'M', &(keys.len() as u64).to_be_bytes());
                for k in keys {
                    put(out, b'k', k.as_bytes());
                    walk(out, &map[k]);
                }
            }
            _ => put(out, b'?', &[]),
        }
    }
    let mut out = Vec::new();
    walk(&mut out, value);
    out
}

/// Deepest nesting [`from_canonical_bytes`] accepts: hostile data cannot overflow the stack.
const MAX_CANONICAL_DEPTH: usize = 64;

/// Parses what [`canonical_bytes`] produced (used for documents too large for one item, which
/// are stored as canonical bytes split across chunks). Every length is checked against the
/// input, so corrupt input is an error, never a panic or a large allocation.
pub(crate) fn from_canonical_bytes(bytes: &[u8]) -> std::result::Result<AttributeValue, String> {
    struct Reader<'a> {
        rest: &'a [u8],
    }
    impl<'a> Reader<'a> {
        fn field(&mut self) -> std::result::Result<(u8, &'a [u8]), String> {
            if self.rest.len() < 9 {
                return Err("truncated field header".into());
            }
            let tag = self.rest[0];
            let mut len = [0u8; 8];
            len.copy_from_slice(&self.rest[1..9]);
            let len = usize::try_from(u64::from_be_bytes(len)).map_err(|_| "length overflow")?;
            let body = self
                .rest
                .get(9..9usize.saturating_add(len))
                .ok_or("field longer than the data")?;
            self.rest = &self.rest[9 + len..];
            Ok((tag, body))
        }
        fn count(&mut self, expected: u8) -> std::result::Result<usize, String> {
            let (tag, body) = self.field()?;
            if tag != expected || body.len() != 8 {
                return Err(format!("expected a count tagged {:?}", expected as char));
            }
            let mut n = [0u8; 8];
            n.copy_from_slice(body);
            // Each element takes at least one 9-byte header: a count beyond that is corrupt.
            let n = usize::try_from(u64::from_be_bytes(n)).map_err(|_| "count overflow")?;
            if n > self.rest.len() / 9 {
                return Err("count larger than the data".into());
            }
            Ok(n)
        }
        fn text(&mut self, expected: u8) -> std::result::Result<String, String> {
            let (tag, body) = self.field()?;
            if tag != expected {
                return Err(format!("expected a field tagged {:?}", expected as char));
            }
            String::from_utf8(body.to_vec()).map_err(|_| "invalid UTF-8".into())
        }
        fn value(&mut self, depth: usize) -> std::result::Result<AttributeValue, String> {
            if depth > MAX_CANONICAL_DEPTH {
                return Err("document nested too deeply".into());
            }
            let Some(&tag) = self.rest.first() else {
                return Err("missing value".into());
            };
            let utf8 =
                |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8".to_string());
            Ok(match tag {
                b's' => {
                    let n = self.count(b's')?;
                    AttributeValue::Ss(
                        (0..n)
                            .map(|_| self.text(b'S'))
                            .collect::<std::result::Result<_, _>>()?,
                    )
                }
                b'n' => {
                    let n = self.count(b'n')?;
                    AttributeValue::Ns(
                        (0..n)
                            .map(|_| self.text(b'N'))
                            .collect::<std::result::Result<_, _>>()?,
                    )
                }
                b'b' => {
                    let n = self.count(b'b')?;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        let (t, body) = self.field()?;
                        if t != b'B' {
                            return Err("expected binary set element".into());
                        }
                        items.push(aws_sdk_dynamodb::primitives::Blob::new(body));
                    }
                    AttributeValue::Bs(items)
                }
                b'L' => {
                    let n = self.count(b'L')?;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.value(depth + 1)?);
                    }
                    AttributeValue::L(items)
                }
                b'M' => {
                    let n = self.count(b'M')?;
                    let mut map = std::collections::HashMap::with_capacity(n);
                    for _ in 0..n {
                        let k = self.text(b'k')?;
                        map.insert(k, self.value(depth + 1)?);
                    }
                    AttributeValue::M(map)
                }
                _ => {
                    let (tag, body) = self.field()?;
                    match tag {
                        b'B' => AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(body)),
                        b'S' => AttributeValue::S(utf8(body)?),
                        b'N' => AttributeValue::N(utf8(body)?),
                        b'T' => AttributeValue::Bool(body.first() == Some(&1)),
                        b'0' => AttributeValue::Null(true),
                        other => return Err(format!("unknown tag {other}")),
                    }
                }
            })
        }
    }
    let mut reader = Reader { rest: bytes };
    let value = reader.value(0)?;
    if !reader.rest.is_empty() {
        return Err("trailing bytes after the document".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pipelines() -> Vec<Serializer> {
        #[cfg_attr(not(feature = "compression"), allow(unused_mut))]
        let mut v = vec![
            Serializer::bincode(),
            Serializer::json(),
            Serializer::bincode().signed("k", "s"),
            Serializer::json().signed("k", "s"),
            Serializer::document().signed("k", "s"),
        ];
        #[cfg(feature = "compression")]
        v.push(
            Serializer::bincode()
                .compressed(3)
                .unwrap()
                .signed("k", "s"),
        );
        v
    }

    #[test]
    fn round_trips_every_pipeline() {
        for s in pipelines() {
            let v: u64 = s.loads("k", s.dumps("k", &7u64).unwrap()).unwrap();
            assert_eq!(v, 7, "{}", s.id());
            let text: String = s.loads("k", s.dumps("k", "text").unwrap()).unwrap();
            assert_eq!(text, "text");
        }
    }

    #[test]
    fn document_round_trip_of_a_struct() {
        let s = Serializer::document();
        let encoded = s.dumps("k", &[1u8, 2, 3]).unwrap();
        assert!(matches!(
            encoded,
            Encoded::Document {
                signature: None,
                ..
            }
        ));
        let back: Vec<u8> = s.loads("k", encoded).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
    }

    #[test]
    fn stored_values_of_another_type_name_both_serializers() {
        let message = |r: Result<u8>| match r {
            Err(Error::Deserialize { message, .. }) => message,
            other => panic!("{other:?}"),
        };
        let s = Serializer::bincode();
        let hello = s.dumps("k", "hello").unwrap();
        assert_eq!(
            message(s.loads_stored("k", hello.clone(), "bincode2")),
            "it does not match this map's value type (written by serializer \"bincode2\", read \
             by serializer \"bincode2\"): read it with the type it was written with, or \
             overwrite or remove the key (decoder: 5 trailing bytes after the value)"
        );
        // `loads` alone knows no item: the decoder's words only.
        assert_eq!(
            message(s.loads("k", hello)),
            "5 trailing bytes after the value"
        );
        let json = Serializer::json();
        let text = message(json.loads_stored("k", json.dumps("k", "hello").unwrap(), "json"));
        assert!(
            text.starts_with(
                "it does not match this map's value type (written by serializer \"json\""
            ) && text.contains("(decoder: invalid type: string"),
            "{text}"
        );
        // Damage that no value type explains keeps its own message.
        assert_eq!(
            message(s.loads_stored(
                "k",
                Encoded::Document {
                    value: AttributeValue::S("x".into()),
                    signature: None
                },
                "bincode2"
            )),
            "expected bytes, found a document"
        );
    }

    #[test]
    fn ids_describe_the_pipeline() {
        assert_eq!(Serializer::bincode().id(), "bincode2");
        assert_eq!(Serializer::json().signed("a", "b").id(), "json+hmac-sha256");
        assert_eq!(
            Serializer::document().signed("a", "b").id(),
            "document+hmac-sha256"
        );
        assert!(
            Serializer::document()
                .with_stage(Signer::new("a", "b"))
                .is_err()
        );
    }

    #[test]
    fn tampering_is_rejected_for_bytes() {
        let s = Serializer::bincode().signed("secret", "salt");
        let Encoded::Bytes(mut bytes) = s.dumps("k", &"value").unwrap() else {
            panic!("bytes expected")
        };
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = s
            .loads::<String>("k", Encoded::Bytes(bytes.clone()))
            .unwrap_err();
        assert!(matches!(err, Error::BadSignature { ref key } if key == "k"));
        // Altered signature.
        bytes[last] ^= 1;
        bytes[0] ^= 1;
        assert!(matches!(
            s.loads::<String>("k", Encoded::Bytes(bytes)),
            Err(Error::BadSignature { .. })
        ));
        // Unsigned or truncated.
        let plain = Serializer::bincode().dumps("k", &"value").unwrap();
        assert!(matches!(
            s.loads::<String>("k", plain),
            Err(Error::BadSignature { .. })
        ));
        assert!(matches!(
            s.loads::<String>("k", Encoded::Bytes(vec![1, 2])),
            Err(Error::BadSignature { .. })
        ));
        // Wrong key material.
        let other = Serializer::bincode().signed("other", "salt");
        let good = s.dumps("k", &"value").unwrap();
        assert!(matches!(
            other.loads::<String>("k", good.clone()),
            Err(Error::BadSignature { .. })
        ));
        let other_salt = Serializer::bincode().signed("secret", "pepper");
        assert!(matches!(
            other_salt.loads::<String>("k", good),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn tampering_is_rejected_for_documents() {
        let s = Serializer::document().signed("secret", "salt");
        let Encoded::Document { value, signature } = s.dumps("k", &sample_map()).unwrap() else {
            panic!("document expected")
        };
        let AttributeValue::M(mut map) = value.clone() else {
            panic!("map expected")
        };
        map.insert("b".into(), AttributeValue::N("3".into()));
        let tampered = Encoded::Document {
            value: AttributeValue::M(map),
            signature: signature.clone(),
        };
        assert!(matches!(
            s.loads::<BTreeMap<String, i32>>("k", tampered),
            Err(Error::BadSignature { .. })
        ));
        let unsigned = Encoded::Document {
            value: value.clone(),
            signature: None,
        };
        assert!(matches!(
            s.loads::<BTreeMap<String, i32>>("k", unsigned),
            Err(Error::BadSignature { .. })
        ));
        let ok: BTreeMap<String, i32> = s
            .loads("k", Encoded::Document { value, signature })
            .unwrap();
        assert_eq!(ok, sample_map());
    }

    fn sample_map() -> BTreeMap<String, i32> {
        [("a".to_owned(), 1), ("b".to_owned(), 2)]
            .into_iter()
            .collect()
    }

    #[test]
    fn wrong_type_and_garbage_are_errors_naming_the_key() {
        for s in [Serializer::bincode(), Serializer::json()] {
            let encoded = s.dumps("k", &"not a number").unwrap();
            // (bincode cannot tell a string from a `Vec<u64>` of small numbers: same wire shape.)
            let err = s.loads::<Vec<String>>("the-key", encoded).unwrap_err();
            assert!(
                matches!(err, Error::Deserialize { ref key, .. } if key == "the-key"),
                "{err}"
            );
            for garbage in [
                vec![],
                vec![0xff; 3],
                vec![0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            ] {
                assert!(
                    s.loads::<Vec<String>>("k", Encoded::Bytes(garbage))
                        .is_err()
                );
            }
        }
        // A length prefix claiming 2^62 elements must not allocate them.
        let mut huge = vec![0xfd];
        huge.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(
            Serializer::bincode()
                .loads::<Vec<u8>>("k", Encoded::Bytes(huge))
                .is_err()
        );
        // Trailing bytes are corruption too.
        let Encoded::Bytes(mut b) = Serializer::bincode().dumps("k", &1u8).unwrap() else {
            unreachable!()
        };
        b.push(0);
        assert!(
            Serializer::bincode()
                .loads::<u8>("k", Encoded::Bytes(b))
                .is_err()
        );
    }

    #[test]
    fn canonical_bytes_ignore_map_order_but_not_content() {
        let a = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(sample_map()).unwrap();
        let mut m = std::collections::HashMap::new();
        m.insert("b".to_owned(), AttributeValue::N("2".into()));
        m.insert("a".to_owned(), AttributeValue::N("1".into()));
        assert_eq!(
            canonical_bytes(&a),
            canonical_bytes(&AttributeValue::M(m.clone()))
        );
        m.insert("a".to_owned(), AttributeValue::S("1".into()));
        assert_ne!(canonical_bytes(&a), canonical_bytes(&AttributeValue::M(m)));
    }

    #[test]
    fn canonical_bytes_parse_back() {
        let value = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(serde_json::json!({
            "s": "text", "n": 1.5, "b": true, "null": null, "list": [1, "two", [3]],
            "map": {"nested": {"deep": "yes"}}
        }))
        .unwrap();
        let bytes = canonical_bytes(&value);
        assert_eq!(from_canonical_bytes(&bytes).unwrap(), value);
        let sets = AttributeValue::M(std::collections::HashMap::from([
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            ("ns".to_owned(), AttributeValue::Ns(vec!["1".into()])),
            (
                "bs".to_owned(),
                AttributeValue::Bs(vec![aws_sdk_dynamodb::primitives::Blob::new(vec![1u8, 2])]),
            ),
            (
                "bin".to_owned(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0u8; 3])),
            ),
        ]));
        assert_eq!(from_canonical_bytes(&canonical_bytes(&sets)).unwrap(), sets);
        // Every truncation and a few corruptions are errors, not panics.
        for cut in 0..bytes.len() {
            assert!(from_canonical_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge_count = vec![b'L'];
        huge_count.extend_from_slice(&8u64.to_be_bytes());
        huge_count.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(from_canonical_bytes(&huge_count).is_err());
        // Deep nesting is refused before the stack runs out.
        let mut deep = AttributeValue::S("x".into());
        for _ in 0..200 {
            deep = AttributeValue::L(vec![deep]);
        }
        assert!(from_canonical_bytes(&canonical_bytes(&deep)).is_err());
    }

    #[cfg(feature = "compression")]
    #[test]
    fn compression_shrinks_and_bounds_output() {
        let s = Serializer::bincode().compressed(3).unwrap();
        let big = vec![7u8; 100_000];
        let Encoded::Bytes(bytes) = s.dumps("k", &serde_json::Value::from(big.clone())).unwrap()
        else {
            unreachable!()
        };
        assert!(bytes.len() < 10_000);
        let z = Zstd::new(3);
        assert!(z.decode("k", vec![9, 1, 2]).is_err());
        assert!(z.decode("k", vec![1, 1, 2, 3]).is_err());
        assert!(z.decode("k", vec![]).is_err());
        // A frame that claims more than the limit is refused before allocating.
        let mut bomb = vec![1u8];
        bomb.extend(zstd::bulk::compress(&vec![0u8; 1 << 20], 1).unwrap());
        assert_eq!(z.decode("k", bomb).unwrap().len(), 1 << 20);
    }

    #[cfg(feature = "compression")]
    #[test]
    fn reused_contexts_follow_each_stage_level() {
        // Stages at different levels share this thread's context; each output must be exactly
        // what a fresh context at that level produces, and decode back.
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("row {} of {} ", i % 97, i % 13).into_bytes())
            .collect();
        for level in [1, 19, 3, 19, 1] {
            let z = Zstd::new(level);
            let encoded = z.encode("k", text.clone()).unwrap();
            let mut expected = vec![1u8];
            expected.extend(zstd::bulk::compress(&text, level).unwrap());
            assert_eq!(encoded, expected, "level {level}");
            assert_eq!(z.decode("k", encoded).unwrap(), text);
        }
        // Incompressible input is stored as it is, and a later compressible one still works.
        let z = Zstd::new(3);
        let noise: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
        let stored = z.encode("k", noise.clone()).unwrap();
        assert_eq!((stored[0], &stored[1..]), (0, &noise[..]));
        assert_eq!(z.decode("k", stored).unwrap(), noise);
        let again = z.encode("k", text.clone()).unwrap();
        assert_eq!(z.decode("k", again).unwrap(), text);
    }
}
