//! [`UsageReport`]: how a stage above token accounting learns what a request finally
//! used and cost (to settle a rate-limit or budget reservation, for instance).

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// What a request used and cost, as token accounting recorded it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedUsage {
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Cost in USD.
    pub cost: f64,
}

/// Asks token accounting for the request's [`RecordedUsage`]: insert it into the
/// request's `RequestContext::extensions` before accounting sees the request. The
/// receiver gets the usage once the record is made (streams: when they end, or when the
/// client leaves); it gets an error when no record is made (the request never reached
/// accounting), so a reservation can be released.
#[derive(Clone)]
pub struct UsageReport(Arc<Mutex<Option<oneshot::Sender<RecordedUsage>>>>);

impl UsageReport {
    /// A report to insert, and the receiver of its usage.
    pub fn channel() -> (UsageReport, oneshot::Receiver<RecordedUsage>) {
        let (sender, receiver) = oneshot::channel();
        (UsageReport(Arc::new(Mutex::new(Some(sender)))), receiver)
    }

    /// The sender, once: whoever takes it reports.
    pub(crate) fn take(&self) -> Option<oneshot::Sender<RecordedUsage>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

impl std::fmt::Debug for UsageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsageReport")
    }
}
