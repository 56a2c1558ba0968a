//! `cache urls`, `cache stats`, `cache purge-expired`: a response cache (`DynamoDbCache`),
//! through its own API.

use dynamodict::cache::{DeleteFilter, Selection};
use futures_util::StreamExt;

use crate::args::{CacheArgs, CacheCommand};
use crate::connect::Connection;
use crate::error::CliResult;
use crate::output::Output;

pub async fn run(conn: &Connection, command: &CacheCommand, out: &mut Output) -> CliResult {
    match command {
        CacheCommand::Urls(args) => urls(conn, args, out).await,
        CacheCommand::Stats(args) => stats(conn, args, out).await,
        CacheCommand::PurgeExpired(args) => purge_expired(conn, args, out).await,
    }
}

/// The distinct URLs of the saved responses, sorted.
async fn urls(conn: &Connection, args: &CacheArgs, out: &mut Output) -> CliResult {
    let cache = conn.open_cache(args).await?;
    out.lines(cache.urls().await?)
}

/// How many responses are fresh, expired, or cannot be decoded with the given settings, and
/// how many redirect aliases there are.
async fn stats(conn: &Connection, args: &CacheArgs, out: &mut Output) -> CliResult {
    let cache = conn.open_cache(args).await?;
    let stored = cache.response_count(Selection::default()).await?;
    let (mut fresh, mut expired) = (0usize, 0usize);
    let mut responses = cache.filter(Selection::default());
    while let Some(response) = responses.next().await {
        if response?.is_expired() {
            expired += 1;
        } else {
            fresh += 1;
        }
    }
    // The COUNT query counts every stored response; the listing skips undecodable ones.
    let invalid = stored.saturating_sub(fresh + expired);
    let redirects = cache.redirects().len().await?;
    out.lines([
        format!("responses: {}", fresh + expired + invalid),
        format!("  fresh: {fresh}"),
        format!("  expired: {expired}"),
        format!("  undecodable: {invalid}"),
        format!("redirects: {redirects}"),
    ])
}

/// Deletes the expired responses (and the aliases pointing to them); never the undecodable
/// ones, which a wrong `--serializer` or `--secret-key` would make of every entry.
async fn purge_expired(conn: &Connection, args: &CacheArgs, out: &mut Output) -> CliResult {
    let cache = conn.open_cache(args).await?;
    let expired = cache
        .response_count(Selection {
            valid: false,
            expired: true,
            invalid: false,
            older_than: None,
        })
        .await?;
    cache
        .delete(DeleteFilter {
            expired: true,
            ..DeleteFilter::default()
        })
        .await?;
    out.line(format!(
        "removed {expired} expired response{}",
        if expired == 1 { "" } else { "s" }
    ))
}
