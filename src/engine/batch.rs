//! Batch writes and reads: split into DynamoDB's request limits, several requests in flight,
//! unprocessed items retried with exponential backoff and full jitter.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest,
};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::Engine;
use super::options::BatchOptions;
use crate::error::sdk_error;
use crate::layout::{Item, SK};
use crate::{Error, Result};

/// Most write requests in one BatchWriteItem.
pub const WRITE_BATCH: usize = 25;
/// Most keys in one BatchGetItem.
pub const READ_BATCH: usize = 100;

/// The delay before retry number `attempt` (1-based): uniform in `[0, min(max, base * 2^attempt))`.
pub(crate) fn backoff(options: &BatchOptions, attempt: u32) -> Duration {
    let cap = options
        .initial_backoff
        .saturating_mul(1u32 << attempt.min(16))
        .min(options.max_backoff);
    cap.mul_f64(fastrand::f64())
}

fn gave_up(what: &str, left: usize, attempts: u32) -> Error {
    Error::Throttled {
        message: format!(
            "{left} {what} still unprocessed after {attempts} attempts; DynamoDB kept handing them back"
        ),
    }
}

/// Splits `items` into owned chunks of at most `size` items, moving them (no copies).
fn owned_chunks<T>(items: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut items = items.into_iter();
    std::iter::from_fn(move || {
        let chunk: Vec<T> = items.by_ref().take(size).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

/// A write for the batch: a put of a whole item, or a delete of a key.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Put(Item),
    Delete(Item),
}

impl Write {
    fn request(self) -> Result<WriteRequest> {
        let built = match self {
            Write::Put(item) => PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build()),
            Write::Delete(key) => DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build()),
        };
        built.map_err(|e| Error::Config(e.to_string()))
    }
}

/// Writes everything, `WRITE_BATCH` per request, `concurrency` requests at a time.
///
/// The caller must not pass two writes for the same key (DynamoDB rejects such a batch).
pub(crate) async fn write_all(engine: &Engine, writes: Vec<Write>) -> Result<()> {
    write_all_before(engine, writes, None).await
}

/// [`write_all`], sending no request (first or retry) after `deadline`: past it, the call
/// fails with [`Error::Timeout`].
pub(crate) async fn write_all_until(
    engine: &Engine,
    writes: Vec<Write>,
    deadline: tokio::time::Instant,
) -> Result<()> {
    write_all_before(engine, writes, Some(deadline)).await
}

async fn write_all_before(
    engine: &Engine,
    writes: Vec<Write>,
    deadline: Option<tokio::time::Instant>,
) -> Result<()> {
    let requests: Vec<WriteRequest> = writes
        .into_iter()
        .map(Write::request)
        .collect::<Result<_>>()?;
    stream::iter(
        owned_chunks(requests, WRITE_BATCH).map(|chunk| write_one(engine, chunk, deadline)),
    )
    .buffer_unordered(engine.batch.concurrency)
    .try_collect::<()>()
    .await
}

async fn write_one(
    engine: &Engine,
    pending: Vec<WriteRequest>,
    deadline: Option<tokio::time::Instant>,
) -> Result<()> {
    let table = engine.layout.table.as_str();
    drain(engine, "writes", pending, deadline, |pending| async move {
        let out = engine
            .client()
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|e| sdk_error(e, table, &engine.connection.endpoint))?;
        let unprocessed = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
        Ok((unprocessed, Vec::new()))
    })
    .await
    .map(|_| ())
}

/// Sends `pending` until DynamoDB hands nothing back unprocessed, backing off between attempts.
/// `send` returns the unprocessed part and the items found; all items found are returned.
async fn drain<T, F, Fut>(
    engine: &Engine,
    what: &str,
    mut pending: Vec<T>,
    deadline: Option<tokio::time::Instant>,
    mut send: F,
) -> Result<Vec<Item>>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Vec<Item>)>>,
{
    let mut found = Vec::new();
    let mut attempt = 0;
    while !pending.is_empty() {
        attempt += 1;
        if attempt > engine.batch.max_attempts {
            return Err(gave_up(what, pending.len(), engine.batch.max_attempts));
        }
        if attempt > 1 {
            engine.connection.counters.retried();
            tracing::debug!(
                target: "dynamodict",
                attempt,
                items = pending.len(),
                "DynamoDB left {what} unprocessed; retrying them after a backoff"
            );
            tokio::time::sleep(backoff(&engine.batch, attempt - 1)).await;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err(Error::Timeout { timeout: None });
        }
        let (unprocessed, items) = send(pending).await?;
        found.extend(items);
        pending = unprocessed;
    }
    Ok(found)
}

/// Reads the items with the given primary keys (distinct), `READ_BATCH` per request, with an
/// optional projection (expression and attribute names). Returns the items found, by sort key;
/// expiry is not checked here.
pub(crate) async fn get_items(
    engine: &Engine,
    keys: Vec<Item>,
    consistent: bool,
    projection: Option<(&'static str, &'static [(&'static str, &'static str)])>,
) -> Result<HashMap<String, Item>> {
    let found = stream::iter(
        owned_chunks(keys, READ_BATCH).map(|chunk| get_one(engine, chunk, consistent, projection)),
    )
    .buffer_unordered(engine.batch.concurrency)
    .try_collect::<Vec<Vec<Item>>>()
    .await?;
    Ok(found
        .into_iter()
        .flatten()
        .filter_map(|item| match item.get(SK) {
            Some(AttributeValue::S(sk)) => Some((sk.clone(), item)),
            _ => None,
        })
        .collect())
}

async fn get_one(
    engine: &Engine,
    pending: Vec<Item>,
    consistent: bool,
    projection: Option<(&'static str, &'static [(&'static str, &'static str)])>,
) -> Result<Vec<Item>> {
    let table = engine.layout.table.as_str();
    drain(engine, "reads", pending, None, |pending| async move {
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(pending))
            .consistent_read(consistent);
        if let Some((expression, names)) = projection {
            request = request.projection_expression(expression);
            for (name, attr) in names {
                request = request.expression_attribute_names(*name, *attr);
            }
        }
        let request = request.build().map_err(|e| Error::Config(e.to_string()))?;
        let mut out = engine
            .client()
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(|e| sdk_error(e, table, &engine.connection.endpoint))?;
        let found = out
            .responses
            .as_mut()
            .and_then(|r| r.remove(table))
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.contains_key(SK))
            .collect();
        let unprocessed = out
            .unprocessed_keys
            .and_then(|mut m| m.remove(table))
            .map(|k| k.keys)
            .unwrap_or_default();
        Ok((unprocessed, found))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let o = BatchOptions {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            ..BatchOptions::default()
        };
        for attempt in 1..40 {
            let d = backoff(&o, attempt);
            let cap = Duration::from_millis(10 * (1u64 << attempt.min(16)))
                .min(Duration::from_millis(100));
            assert!(d <= cap, "{attempt}: {d:?} > {cap:?}");
        }
        // Jittered: not always the same.
        let samples: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff(&o, 5)).collect();
        assert!(samples.len() > 1);
    }
}
