//! Integration tests against a real DynamoDB Local (no mocks).

mod support;

mod bridge;
mod cache;
mod engines;
mod error_messages;
mod errors;
mod expiry;
mod faults;
mod hostile;
#[cfg(feature = "http-cache")]
mod http_cache;
mod large;
mod map;
mod model;
mod observability;
mod open_modes;
mod processes;
mod protocol;
mod secrets;
#[cfg(feature = "reqwest")]
mod session;
mod table;
