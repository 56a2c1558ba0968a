//! # dynamodict
//!
//! A persistent, dictionary-style map stored in an Amazon DynamoDB table, for blocking and
//! async Rust code, and an HTTP response cache built on it.
//!
//! - [`DynamoDbDict`]: a typed map (`get`, `insert`, `remove`, `pop`, `setdefault`, `keys`,
//!   `values`, `bulk_delete`, `clear`, ...) with a blocking API;
//! - [`AsyncDynamoDbDict`]: the same map for async code (every method a `Send` future on the
//!   caller's tokio runtime; `keys`/`values`/`items` are streams). The blocking map is a thin
//!   shell over it, and either converts into the other.
//! - [`Serializer`]: the pluggable pipeline that turns values into items (bincode, JSON, native
//!   DynamoDB documents, HMAC signing, zstd compression, your own stages).
//! - [`layout`]: how keys and namespaces map onto the table.
//! - [`cache`]: [`DynamoDbCache`] and [`cache::AsyncDynamoDbCache`], HTTP response bookkeeping on top of the map (requests-cache's
//!   `DynamoDbCache` API: `save_response`, `get_response`, `create_key`, `delete`, `filter`, ...).
//!
//! ```
//! use dynamodict::DynamoDbDict;
//!
//! let dict: DynamoDbDict<Vec<String>> = DynamoDbDict::builder("quickstart")
//!     .local() // an embedded DynamoDB Local; see the README for AWS
//!     .build()?;
//! dict.insert("fruits", vec!["apple".to_owned(), "pear".to_owned()])?;
//! assert_eq!(dict.get("fruits")?.map(|v| v.len()), Some(2));
//! # Ok::<(), dynamodict::Error>(())
//! ```
#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod async_dict;
pub mod cache;
mod config;
mod depth;
mod dict;
mod document;
mod engine;
mod error;
#[cfg(feature = "http-cache")]
pub mod http_cache;
mod item;
mod iter;
mod json;
pub mod layout;
#[cfg(feature = "local")]
pub mod local;
mod serializer;
#[cfg(feature = "reqwest")]
pub mod session;
mod stream;
mod values;

pub use async_dict::AsyncDynamoDbDict;
pub use cache::DynamoDbCache;
pub use config::DictBuilder;
pub use dict::DynamoDbDict;
pub use engine::{BatchOptions, OpenMode, Stats, Timeouts};
pub use error::{Error, Result};
pub use item::StoredValue;
pub use iter::{Items, Keys, Values};
#[cfg(feature = "compression")]
pub use serializer::Zstd;
pub use serializer::{Encoded, Format, MAX_DECODED_SIZE, Serializer, Signer, Stage};
pub use stream::{ItemStream, KeyStream, ValueStream};
pub use values::SweepReport;

// Re-exported so users can name the SDK types this crate accepts without a version mismatch.
pub use aws_config;
pub use aws_sdk_dynamodb;
/// The `http` crate this one speaks (requests, responses and headers convert to and from it).
pub use http;
/// The `reqwest` crate [`session::CachedSession`] is built on (feature `reqwest`): build a
/// client with `dynamodict::reqwest::blocking::Client::builder()` so the versions always match.
#[cfg(feature = "reqwest")]
pub use reqwest;

/// The README's code blocks, run as doctests (they use every feature, as the README's test
/// command `cargo test --all-features` enables).
#[cfg(all(doctest, feature = "reqwest", feature = "http-cache"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    #[test]
    fn dict_is_send_sync_and_clone() {
        assert_send_sync::<crate::DynamoDbDict<std::rc::Rc<u8>>>();
    }
}
