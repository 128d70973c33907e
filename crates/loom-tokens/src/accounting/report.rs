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
///
/// Stages below accounting (e.g. a limit per provider, inside the router) find the same
/// report in the request and [`subscribe`](Self::subscribe) to it.
#[derive(Clone)]
pub struct UsageReport(Arc<Mutex<Listeners>>);

/// Who waits for the usage; `closed` once it was sent, so late subscribers hear nothing.
#[derive(Default)]
struct Listeners {
    senders: Vec<oneshot::Sender<RecordedUsage>>,
    closed: bool,
}

impl UsageReport {
    /// A report to insert, and the receiver of its usage.
    pub fn channel() -> (UsageReport, oneshot::Receiver<RecordedUsage>) {
        let report = UsageReport::new();
        let receiver = report.subscribe();
        (report, receiver)
    }

    /// A report nobody listens to yet: stages below may [`subscribe`](Self::subscribe).
    pub fn new() -> UsageReport {
        UsageReport(Arc::new(Mutex::new(Listeners::default())))
    }

    /// Another receiver of the same usage. After the usage was sent, its receiver gets
    /// an error at once.
    pub fn subscribe(&self) -> oneshot::Receiver<RecordedUsage> {
        let (sender, receiver) = oneshot::channel();
        let mut listeners = self.listeners();
        if !listeners.closed {
            listeners.senders.push(sender);
        }
        receiver
    }

    /// Sends `usage` to every receiver, once.
    pub(crate) fn send(&self, usage: RecordedUsage) {
        let senders = {
            let mut listeners = self.listeners();
            listeners.closed = true;
            std::mem::take(&mut listeners.senders)
        };
        for sender in senders {
            // A receiver may be gone (its request ended otherwise): nothing to settle.
            let _ = sender.send(usage);
        }
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Listeners> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for UsageReport {
    fn default() -> Self {
        UsageReport::new()
    }
}

impl std::fmt::Debug for UsageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsageReport")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_hears_the_usage_once_and_late_ones_hear_nothing() {
        let usage = RecordedUsage { input_tokens: 7, output_tokens: 8, cost: 0.5 };
        let (report, mut first) = UsageReport::channel();
        let mut second = report.clone().subscribe();
        report.send(usage);
        assert_eq!(first.try_recv(), Ok(usage));
        assert_eq!(second.try_recv(), Ok(usage));
        let mut late = report.subscribe();
        assert_eq!(late.try_recv(), Err(oneshot::error::TryRecvError::Closed));
    }

    #[test]
    fn a_report_dropped_unsent_closes_its_receivers() {
        let report = UsageReport::new();
        let mut receiver = report.subscribe();
        drop(report);
        assert_eq!(receiver.try_recv(), Err(oneshot::error::TryRecvError::Closed));
    }
}
