//! Where tokenizing runs: large inputs on tokio's blocking pool, so one big request
//! cannot stall the other connections of the worker thread that polls it.

use tokio::runtime::Handle;

/// Inputs with at least this many bytes of text are tokenized on tokio's blocking pool
/// rather than on the thread that polls the request (a front-door worker). Below it a
/// count takes tens of microseconds, less than handing it to another thread.
pub const BLOCKING_COUNT_BYTES: u64 = 32 * 1024;

/// Whether counting `bytes` of text goes to the blocking pool: it is large, and there is
/// a tokio runtime to run it (under another executor everything counts inline).
pub(crate) fn is_large(bytes: u64) -> bool {
    bytes >= BLOCKING_COUNT_BYTES && Handle::try_current().is_ok()
}

/// Runs `count` on the blocking pool and waits for it; `None` if it panicked or the
/// runtime shut down first.
pub(crate) async fn off_worker<T, F>(count: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(count).await.ok(),
        Err(_) => Some(count()),
    }
}

/// Runs `count` on the blocking pool without waiting for it (inline without a runtime).
pub(crate) fn detach<F>(count: F)
where
    F: FnOnce() + Send + 'static,
{
    match Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(count);
        }
        Err(_) => count(),
    }
}
