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

/// What a listener hears: the usage, or `None` when no record was made.
type Listener = Box<dyn FnOnce(Option<RecordedUsage>) + Send>;

/// Who waits for the usage; `closed` once it was sent, so late listeners hear `None`.
#[derive(Default)]
struct Listeners {
    listeners: Vec<Listener>,
    closed: bool,
}

impl Drop for Listeners {
    /// The last report went away unsent: no record was made.
    fn drop(&mut self) {
        for listener in self.listeners.drain(..) {
            listener(None);
        }
    }
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
        self.on_usage(move |usage| {
            if let Some(usage) = usage {
                // The receiver may be gone (its request ended otherwise): nothing to do.
                let _ = sender.send(usage);
            }
        });
        receiver
    }

    /// Calls `listener` once: with the usage when the record is made, or with `None` when
    /// the last copy of this report goes away without one (or already went). It runs on
    /// whichever thread records the request, so it must be quick: spawn for slow work.
    pub fn on_usage(&self, listener: impl FnOnce(Option<RecordedUsage>) + Send + 'static) {
        let mut listeners = self.listeners();
        if listeners.closed {
            drop(listeners);
            listener(None);
            return;
        }
        listeners.listeners.push(Box::new(listener));
    }

    /// Sends `usage` to every listener, once.
    pub(crate) fn send(&self, usage: RecordedUsage) {
        let listeners = {
            let mut listeners = self.listeners();
            listeners.closed = true;
            std::mem::take(&mut listeners.listeners)
        };
        for listener in listeners {
            listener(Some(usage));
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
    fn listeners_hear_the_usage_or_none_once() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let heard = Arc::new(AtomicU64::new(0));
        let listen = |report: &UsageReport| {
            let heard = heard.clone();
            report.on_usage(move |usage| {
                heard.fetch_add(usage.map_or(1000, |usage| usage.output_tokens), Ordering::SeqCst);
            });
        };
        let sent = UsageReport::new();
        listen(&sent);
        sent.send(RecordedUsage { input_tokens: 1, output_tokens: 2, cost: 0.0 });
        assert_eq!(heard.load(Ordering::SeqCst), 2);
        // After the send, and on a report dropped unsent: `None`, at once or at the drop.
        listen(&sent);
        assert_eq!(heard.load(Ordering::SeqCst), 1002);
        let unsent = UsageReport::new();
        listen(&unsent);
        let copy = unsent.clone();
        drop(unsent);
        assert_eq!(heard.load(Ordering::SeqCst), 1002, "a copy is still alive");
        drop(copy);
        assert_eq!(heard.load(Ordering::SeqCst), 2002);
    }

    #[test]
    fn a_report_dropped_unsent_closes_its_receivers() {
        let report = UsageReport::new();
        let mut receiver = report.subscribe();
        drop(report);
        assert_eq!(receiver.try_recv(), Err(oneshot::error::TryRecvError::Closed));
    }
}
