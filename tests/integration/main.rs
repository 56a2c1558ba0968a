//! Integration tests against a real DynamoDB Local (no mocks).

mod support;

mod bridge;
mod errors;
mod map;
mod model;
mod table;
