//! Request accounting: an SDK interceptor that asks DynamoDB for the capacity each request
//! consumes, counts what a connection sends and receives, and reports throttling and retries,
//! per connection ([`Stats`]) and per public operation (the fields of its `tracing` span).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    scan::{ScanInput, ScanOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use tracing::Instrument;

/// What a map and its clones have sent to DynamoDB since it was built: from
/// [`DynamoDbDict::stats`](crate::DynamoDbDict::stats). Maps made from one another
/// ([`with_namespace`](crate::DynamoDbDict::with_namespace), [`to_async`](crate::DynamoDbDict::to_async),
/// the namespaces of a cache) share one set of counters.
///
/// Capacity units are the ones DynamoDB reports for each request (`ReturnConsumedCapacity =
/// TOTAL` is sent with every item request): what the requests cost on an on-demand table, or
/// used of a provisioned one.
///
/// ```no_run
/// use dynamodict::DynamoDbDict;
///
/// let map: DynamoDbDict<String> = DynamoDbDict::builder("app-table").build()?;
/// map.set("k", "v".into())?;
/// let stats = map.stats();
/// println!(
///     "{} requests, {} RCU, {} WCU, {} retries",
///     stats.requests, stats.read_capacity_units, stats.write_capacity_units, stats.retries
/// );
/// # Ok::<(), dynamodict::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests (API calls) sent, each counted once however many attempts it took.
    pub requests: u64,
    /// Attempts beyond the first of each request: the SDK's retries, and this crate's retries
    /// of batch items DynamoDB left unprocessed and of writes whose outcome was unknown.
    pub retries: u64,
    /// Attempts DynamoDB answered with a throttling error (`ProvisionedThroughputExceeded`,
    /// `ThrottlingException`, `RequestLimitExceeded`).
    pub throttles: u64,
    /// Read capacity units consumed (`GetItem`, `BatchGetItem`, `Query`, `Scan`).
    pub read_capacity_units: f64,
    /// Write capacity units consumed (`PutItem`, `UpdateItem`, `DeleteItem`, `BatchWriteItem`).
    pub write_capacity_units: f64,
    /// Request body bytes sent, every attempt counted.
    pub bytes_sent: u64,
    /// Response body bytes received, every attempt counted.
    pub bytes_received: u64,
    /// Chunk items of large values written.
    pub chunks_written: u64,
    /// Chunk and record items of unreferenced large values deleted by sweeps.
    pub chunks_swept: u64,
}

/// Capacity is kept in thousandths of a unit (DynamoDB reports halves and tenths).
const MILLI: f64 = 1000.0;

/// Live counters, shared by the clones of a connection (and, per operation, by its requests).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    attempts: AtomicU64,
    extra_retries: AtomicU64,
    throttles: AtomicU64,
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    chunks_written: AtomicU64,
    chunks_swept: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let requests = get(&self.requests);
        Stats {
            requests,
            retries: get(&self.attempts).saturating_sub(requests) + get(&self.extra_retries),
            throttles: get(&self.throttles),
            read_capacity_units: get(&self.read_milli) as f64 / MILLI,
            write_capacity_units: get(&self.write_milli) as f64 / MILLI,
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            chunks_written: get(&self.chunks_written),
            chunks_swept: get(&self.chunks_swept),
        }
    }

    fn add(&self, counter: fn(&Counters) -> &AtomicU64, n: u64) {
        counter(self).fetch_add(n, Ordering::Relaxed);
        // The same for the operation in progress on this task, if it is being observed.
        let _ = OPERATION.try_with(|op| counter(op).fetch_add(n, Ordering::Relaxed));
    }

    /// One retry made by this crate (not by the SDK).
    pub(crate) fn retried(&self) {
        self.add(|c| &c.extra_retries, 1);
    }

    pub(crate) fn chunks_written(&self, n: u64) {
        self.add(|c| &c.chunks_written, n);
    }

    pub(crate) fn chunks_swept(&self, n: u64) {
        self.add(|c| &c.chunks_swept, n);
    }
}

tokio::task_local! {
    /// The counters of the public operation running on this task.
    static OPERATION: Arc<Counters>;
}

/// Runs one public operation inside `span`, and records on the span what its requests did
/// (`requests`, `retries`, `throttles`, `rcu`, `wcu`, `bytes_sent`, `bytes_received`) and its
/// error, if any.
pub(crate) async fn observe<T, E: std::fmt::Display>(
    span: tracing::Span,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    if span.is_disabled() {
        return future.await;
    }
    let counters = Arc::new(Counters::default());
    let out = OPERATION
        .scope(Arc::clone(&counters), future.instrument(span.clone()))
        .await;
    let done = counters.snapshot();
    span.record("requests", done.requests);
    span.record("retries", done.retries);
    span.record("throttles", done.throttles);
    span.record("rcu", done.read_capacity_units);
    span.record("wcu", done.write_capacity_units);
    span.record("bytes_sent", done.bytes_sent);
    span.record("bytes_received", done.bytes_received);
    if let Err(err) = &out {
        span.record("error", tracing::field::display(err));
    }
    out
}

/// The interceptor added to every client of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Accounting {
    pub counters: Arc<Counters>,
    /// Ask for `ReturnConsumedCapacity = TOTAL` (see `DictBuilder::capacity_accounting`).
    pub ask_capacity: bool,
}

/// Sets `ReturnConsumedCapacity = TOTAL` on the item operations' inputs.
macro_rules! ask_capacity {
    ($input:expr, $($ty:ty),+) => {
        $(
            if let Some(input) = $input.downcast_mut::<$ty>() {
                input.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
            }
        )+
    };
}

/// The (read, write) capacity units an operation's output reports (the output's type is
/// erased: each item operation's is tried).
macro_rules! consumed {
    ($output:expr) => {{
        let output = $output;
        if let Some(out) = output.downcast_ref::<GetItemOutput>() {
            (units(out.consumed_capacity()), 0.0)
        } else if let Some(out) = output.downcast_ref::<QueryOutput>() {
            (units(out.consumed_capacity()), 0.0)
        } else if let Some(out) = output.downcast_ref::<ScanOutput>() {
            (units(out.consumed_capacity()), 0.0)
        } else if let Some(out) = output.downcast_ref::<BatchGetItemOutput>() {
            (total(out.consumed_capacity()), 0.0)
        } else if let Some(out) = output.downcast_ref::<PutItemOutput>() {
            (0.0, units(out.consumed_capacity()))
        } else if let Some(out) = output.downcast_ref::<UpdateItemOutput>() {
            (0.0, units(out.consumed_capacity()))
        } else if let Some(out) = output.downcast_ref::<DeleteItemOutput>() {
            (0.0, units(out.consumed_capacity()))
        } else if let Some(out) = output.downcast_ref::<BatchWriteItemOutput>() {
            (0.0, total(out.consumed_capacity()))
        } else {
            (0.0, 0.0)
        }
    }};
}
impl Intercept for Accounting {
    fn name(&self) -> &'static str {
        "dynamodict::Accounting"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.counters.add(|c| &c.requests, 1);
        Ok(())
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.ask_capacity {
            return Ok(());
        }
        let input = context.input_mut();
        ask_capacity!(
            input,
            GetItemInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            QueryInput,
            ScanInput,
            BatchGetItemInput,
            BatchWriteItemInput
        );
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.counters.add(|c| &c.attempts, 1);
        let sent = context.request().body().bytes().map_or(0, <[u8]>::len);
        self.counters.add(|c| &c.bytes_sent, sent as u64);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let body = response.body().bytes().unwrap_or_default();
        self.counters.add(|c| &c.bytes_received, body.len() as u64);
        if response.status().as_u16() == 400 && is_throttling(body) {
            self.counters.add(|c| &c.throttles, 1);
            tracing::warn!(
                target: "dynamodict",
                "DynamoDB throttled a request (the SDK retries it with backoff)"
            );
        }
        if let Ok(output) = context.output_or_error() {
            let (read, write): (f64, f64) = consumed!(output);
            self.counters.add(|c| &c.read_milli, milli(read));
            self.counters.add(|c| &c.write_milli, milli(write));
        }
        Ok(())
    }
}

fn is_throttling(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ]
    .iter()
    .any(|code| text.contains(code))
}

fn milli(units: f64) -> u64 {
    if units.is_finite() && units > 0.0 {
        (units * MILLI).round() as u64
    } else {
        0
    }
}

fn units(capacity: Option<&ConsumedCapacity>) -> f64 {
    capacity
        .and_then(ConsumedCapacity::capacity_units)
        .unwrap_or(0.0)
}

fn total(capacities: &[ConsumedCapacity]) -> f64 {
    capacities.iter().map(|c| units(Some(c))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_recognised_by_its_error_code() {
        assert!(is_throttling(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}"#
        ));
        assert!(is_throttling(
            br#"{"__type":"com.amazon.coral.availability#ThrottlingException"}"#
        ));
        assert!(!is_throttling(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#
        ));
    }

    #[test]
    fn capacity_is_kept_in_thousandths() {
        assert_eq!(milli(0.5), 500);
        assert_eq!(milli(2.25), 2250);
        assert_eq!(milli(f64::NAN), 0);
        assert_eq!(milli(-1.0), 0);
        let counters = Counters::default();
        counters.add(|c| &c.read_milli, milli(0.5));
        counters.add(|c| &c.read_milli, milli(1.5));
        counters.add(|c| &c.requests, 2);
        counters.add(|c| &c.attempts, 3);
        counters.retried();
        let stats = counters.snapshot();
        assert_eq!(stats.read_capacity_units, 2.0);
        assert_eq!(stats.retries, 2);
    }
}
