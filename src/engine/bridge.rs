//! The blocking bridge: runs the async AWS SDK from synchronous code.
//!
//! The bridge owns a current-thread tokio runtime. On a plain thread, a call runs
//! `Runtime::block_on` right there, so the calling thread itself drives the request: no thread
//! hop, no channel, the same cost as awaiting the SDK on a current-thread runtime (the design of
//! the `postgres` crate). Several threads may call at once; tokio hands the I/O driver from one
//! to the next.
//!
//! `block_on` panics when called from inside another runtime, so when the caller is already in
//! a tokio context (inside a task, or a `spawn_blocking` closure) the call is instead run on a
//! short-lived scoped helper thread and the caller waits for it (the design of
//! `reqwest::blocking`, paid only where it is needed). Dropping a runtime inside async code
//! panics too, so the runtime is shut down with `shutdown_background`, which never blocks.

use std::cell::Cell;
use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::{Error, Result};

thread_local! {
    /// Whether this thread is driving a bridge's runtime right now.
    static ON_BRIDGE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling code runs on a bridge's runtime (a blocking call) rather than on the
/// caller's own runtime (an async call). Each side has its own connection pool: a pooled HTTP
/// connection is driven by the runtime that opened it, and the bridge's runtime only runs
/// while a blocking call is in progress.
pub(crate) fn on_bridge() -> bool {
    ON_BRIDGE.with(Cell::get)
}

/// Runs `future` to completion on `runtime`, marking the thread as driving a bridge.
fn block_on<T>(runtime: &Runtime, future: impl Future<Output = T>) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            ON_BRIDGE.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(ON_BRIDGE.with(|flag| flag.replace(true)));
    runtime.block_on(future)
}

/// Owns the runtime that drives every request of one client (shared by all clones of a map).
pub(crate) struct Bridge {
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bridge(current-thread runtime)")
    }
}

impl Bridge {
    pub(crate) fn new() -> Result<Self> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .thread_name("dynamodict")
            .build()
            .map_err(|e| Error::Runtime(format!("could not start the tokio runtime: {e}")))?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    /// Runs `future` to completion and returns its output, from any context.
    pub(crate) fn run<T, F>(&self, future: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(Error::Runtime("the runtime has been shut down".into()));
        };
        if Handle::try_current().is_err() {
            return block_on(runtime, future);
        }
        // Inside an async context: `block_on` here would panic, so drive the future from a
        // helper thread. The scope ends before this call returns, so borrowing is fine.
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("dynamodict-bridge".into())
                .spawn_scoped(scope, || block_on(runtime, future))
                .map_err(|e| Error::Runtime(format!("could not spawn a bridge thread: {e}")))?;
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Never blocks and never panics, even inside async code.
            runtime.shutdown_background();
        }
    }
}

/// Fails unless the caller runs inside a tokio runtime (which the SDK needs for its I/O and
/// timers): async calls and streams polled elsewhere get [`Error::Runtime`](crate::Error::Runtime)
/// instead of a panic.
pub(crate) fn in_runtime() -> crate::Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Ok(());
    }
    Err(crate::Error::Runtime(
        "an AsyncDynamoDbDict future or stream was polled outside a tokio runtime: await it \
         inside one (built with IO and time enabled, as #[tokio::main] does), or use \
         DynamoDbDict in blocking code"
            .into(),
    ))
}
