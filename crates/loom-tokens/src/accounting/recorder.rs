//! `UsageRecorder`: where every usage record goes. Observers (metrics) see it at
//! once; a background thread adds it to the in-memory aggregates and, when a ledger
//! is configured (the `ledger` feature), commits it to disk in batches.
//!
//! Two counters tell what did not arrive whole, for metrics:
//! [`UsageRecorder::dropped_records`] (the queue to the background thread was full) and
//! [`UsageRecorder::folded_records`] (a group did not fit the aggregates' memory budget).
//!
//! Crash-loss window: a record waits at most `flush_interval` (or until
//! [`MAX_BATCH`] records are waiting) before it is committed, so a crash loses at most
//! that much; [`UsageRecorder::flush`] (called on shutdown) commits everything.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use super::AccountingError;
use super::aggregate::{Dimension, UsageAggregates, UsageGroup};
#[cfg(feature = "ledger")]
use super::ledger;
use super::record::UsageRecord;
use super::series::UsageSeries;

/// An open ledger database.
#[cfg(feature = "ledger")]
type LedgerConnection = rusqlite::Connection;
/// Without the `ledger` feature there is no ledger to open.
#[cfg(not(feature = "ledger"))]
enum LedgerConnection {}

/// Records committed in one transaction at most.
pub const MAX_BATCH: usize = 1024;
/// Records waiting for the background thread at most; beyond that they are dropped
/// (and counted), so a stalled disk cannot grow memory without bound.
pub const QUEUE_CAPACITY: usize = 65_536;

/// Sees every record as it is made (e.g. to update metrics). Must be quick.
pub trait UsageObserver: Send + Sync {
    /// Called once per record.
    fn observe(&self, record: &UsageRecord);
}

enum Message {
    Record(Box<UsageRecord>),
    Flush(SyncSender<()>),
}

/// Fans usage records out to observers, the aggregates and the ledger.
pub struct UsageRecorder {
    queue: SyncSender<Message>,
    aggregates: Arc<UsageAggregates>,
    ledger_path: Option<PathBuf>,
    observers: Vec<Arc<dyn UsageObserver>>,
    dropped: AtomicU64,
}

impl UsageRecorder {
    /// A recorder keeping aggregates in memory within `max_aggregate_bytes`
    /// ([`UsageAggregates::new`]) and, with `ledger`, rows in SQLite at that path,
    /// committed at least every `flush_interval`. A ledger needs the `ledger` feature.
    pub fn new(
        ledger: Option<&Path>,
        flush_interval: Duration,
        max_aggregate_bytes: usize,
        observers: Vec<Arc<dyn UsageObserver>>,
    ) -> Result<UsageRecorder, AccountingError> {
        let connection = ledger.map(open_ledger).transpose()?;
        let aggregates = Arc::new(UsageAggregates::new(max_aggregate_bytes));
        let (queue, receiver) = sync_channel(QUEUE_CAPACITY);
        let worker_aggregates = aggregates.clone();
        let path = ledger.map(|path| path.display().to_string()).unwrap_or_default();
        std::thread::Builder::new()
            .name("loom-usage".to_owned())
            .spawn(move || work(receiver, worker_aggregates, connection, flush_interval, path))
            .map_err(|error| AccountingError::Worker(error.to_string()))?;
        Ok(UsageRecorder {
            queue,
            aggregates,
            ledger_path: ledger.map(Path::to_path_buf),
            observers,
            dropped: AtomicU64::new(0),
        })
    }

    /// Records one request's usage, its counts clamped to their bounds
    /// ([`UsageRecord::clamp_to_bounds`]); never blocks.
    pub fn record(&self, mut record: UsageRecord) {
        record.clamp_to_bounds();
        for observer in &self.observers {
            observer.observe(&record);
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(Message::Record(Box::new(record)))
        {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::error!(dropped, "usage queue is full; records are being dropped");
            }
        }
    }

    /// Records dropped because the background thread could not keep up (the queue of
    /// [`QUEUE_CAPACITY`] was full): they reached the observers, but not the aggregates
    /// or the ledger. For a counter metric (`loom_ai_usage_dropped_total`).
    pub fn dropped_records(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records of which a group was folded into `(other)` in the aggregates because it
    /// did not fit their memory budget ([`UsageAggregates::folded_records`]). For a
    /// counter metric (`loom_ai_usage_folded_total`).
    pub fn folded_records(&self) -> u64 {
        self.aggregates.folded_records()
    }

    /// Waits until every record so far is in the aggregates and committed to the ledger.
    pub fn flush(&self) {
        let (done, wait) = sync_channel(1);
        if self.queue.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Whether records are written to a ledger.
    pub fn has_ledger(&self) -> bool {
        self.ledger_path.is_some()
    }

    /// Totals per group for `[from_ms, to_ms)`: from the ledger when there is one
    /// (it survives restarts), else from memory.
    pub fn report(
        &self,
        dimension: Dimension,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UsageGroup>, AccountingError> {
        self.flush();
        match &self.ledger_path {
            #[cfg(feature = "ledger")]
            Some(path) => ledger::report(path, dimension, from_ms, to_ms),
            #[cfg(not(feature = "ledger"))]
            Some(_) => Ok(Vec::new()), // `new` opens no ledger without the feature
            None => Ok(self.aggregates.report(dimension, from_ms, to_ms)),
        }
    }

    /// Usage per group of `dimension` over `[from_ms, to_ms)` in buckets of about
    /// `bucket_ms`, the `limit` largest groups by name and the rest as `(other)`: from the
    /// ledger when there is one (any whole number of minutes), else from memory (whole
    /// minutes within the last day, whole days before).
    pub fn series(
        &self,
        dimension: Dimension,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
        limit: usize,
    ) -> Result<UsageSeries, AccountingError> {
        self.flush();
        match &self.ledger_path {
            #[cfg(feature = "ledger")]
            Some(path) => ledger::series(path, dimension, from_ms, to_ms, bucket_ms, limit),
            #[cfg(not(feature = "ledger"))]
            Some(_) => Ok(UsageSeries { bucket_ms, groups: Vec::new() }), // no ledger without the feature
            None => Ok(self.aggregates.series(dimension, from_ms, to_ms, bucket_ms, limit)),
        }
    }

    /// The in-memory aggregates.
    pub fn aggregates(&self) -> &UsageAggregates {
        &self.aggregates
    }
}

/// Opens the ledger at `path`.
#[cfg(feature = "ledger")]
fn open_ledger(path: &Path) -> Result<LedgerConnection, AccountingError> {
    ledger::open(path)
}

/// Without the `ledger` feature: an error naming the feature.
#[cfg(not(feature = "ledger"))]
fn open_ledger(path: &Path) -> Result<LedgerConnection, AccountingError> {
    Err(AccountingError::Ledger {
        path: path.display().to_string(),
        reason: "this build has no ledger (loom-tokens' `ledger` feature)".to_owned(),
    })
}

/// Commits `batch` to the ledger, if there is one, and empties it.
#[cfg(feature = "ledger")]
fn commit(connection: Option<&mut LedgerConnection>, batch: &mut Vec<UsageRecord>, path: &str) {
    match connection {
        Some(connection) => ledger::commit(connection, batch, path),
        None => batch.clear(),
    }
}

/// Without the `ledger` feature there is only the batch to empty.
#[cfg(not(feature = "ledger"))]
fn commit(connection: Option<&mut LedgerConnection>, batch: &mut Vec<UsageRecord>, _path: &str) {
    if let Some(never) = connection {
        match *never {}
    }
    batch.clear();
}

/// How often the background thread picks up queued records. Senders never wake it,
/// so recording costs a request no system call.
const TICK: Duration = Duration::from_millis(10);

fn work(
    receiver: Receiver<Message>,
    aggregates: Arc<UsageAggregates>,
    mut connection: Option<LedgerConnection>,
    flush_interval: Duration,
    path: String,
) {
    let mut batch: Vec<UsageRecord> = Vec::with_capacity(MAX_BATCH);
    let mut oldest: Option<Instant> = None;
    let mut commit = |batch: &mut Vec<UsageRecord>| commit(connection.as_mut(), batch, &path);
    loop {
        loop {
            match receiver.try_recv() {
                Ok(Message::Record(record)) => {
                    aggregates.add(&record);
                    batch.push(*record);
                    oldest.get_or_insert_with(Instant::now);
                    if batch.len() >= MAX_BATCH {
                        commit(&mut batch);
                        oldest = None;
                    }
                }
                Ok(Message::Flush(done)) => {
                    commit(&mut batch);
                    oldest = None;
                    let _ = done.send(());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    commit(&mut batch);
                    return;
                }
            }
        }
        if oldest.is_some_and(|since| since.elapsed() >= flush_interval) {
            commit(&mut batch);
            oldest = None;
        }
        std::thread::sleep(TICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "ledger"))]
    #[test]
    fn a_ledger_without_the_ledger_feature_is_an_error_naming_it() {
        let error = UsageRecorder::new(Some(Path::new("usage.db")), Duration::ZERO, 0, Vec::new()).err();
        assert_eq!(
            error.map(|error| error.to_string()).as_deref(),
            Some("usage ledger usage.db: this build has no ledger (loom-tokens' `ledger` feature)")
        );
    }

    #[test]
    fn records_folded_by_the_aggregates_budget_are_counted() {
        let record = UsageRecord {
            request_id: Arc::from("r"),
            time: std::time::SystemTime::now(),
            key_id: None,
            user: None,
            team: None,
            route: None,
            provider: None,
            model_requested: "m".to_owned(),
            model_served: None,
            input_tokens: 1,
            output_tokens: 1,
            cached_tokens: 0,
            reasoning_tokens: 0,
            source: crate::accounting::UsageSource::Reported,
            cost: 0.0,
            latency: Duration::ZERO,
            time_to_first_byte: None,
            status: 200,
            outcome: crate::accounting::Outcome::Ok,
            saved_cost: 0.0,
            cache_hit: false,
            streamed: false,
            refusal: None,
            guard: None,
        };
        let recorder = UsageRecorder::new(None, Duration::ZERO, 0, Vec::new()).unwrap();
        recorder.record(record.clone());
        recorder.record(record);
        recorder.flush();
        assert_eq!((recorder.folded_records(), recorder.dropped_records()), (2, 0));
        let report = recorder.report(Dimension::Model, 0, i64::MAX).unwrap();
        assert_eq!(
            report.iter().map(|group| (group.group.as_str(), group.totals.requests)).collect::<Vec<_>>(),
            vec![("(other)", 2)]
        );
    }
}
