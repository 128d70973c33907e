//! `UsageRecorder`: where every usage record goes. Observers (metrics) see it at
//! once; a background thread adds it to the in-memory aggregates and, when a ledger
//! is configured, commits it to disk in batches.
//!
//! Crash-loss window: a record waits at most `flush_interval` (or until
//! [`MAX_BATCH`] records are waiting) before it is committed, so a crash loses at most
//! that much; [`UsageRecorder::flush`] (called on shutdown) commits everything.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::aggregate::{Dimension, UsageAggregates, UsageGroup};
use super::record::UsageRecord;
use super::{AccountingError, ledger};

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
    /// A recorder keeping aggregates in memory and, with `ledger`, rows in SQLite at
    /// that path, committed at least every `flush_interval`.
    pub fn new(
        ledger: Option<&Path>,
        flush_interval: Duration,
        observers: Vec<Arc<dyn UsageObserver>>,
    ) -> Result<UsageRecorder, AccountingError> {
        let connection = ledger.map(ledger::open).transpose()?;
        let aggregates = Arc::new(UsageAggregates::new());
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

    /// Records dropped because the background thread could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
        match &self.ledger_path {
            Some(path) => {
                self.flush();
                ledger::report(path, dimension, from_ms, to_ms)
            }
            None => {
                self.flush();
                Ok(self.aggregates.report(dimension, from_ms, to_ms))
            }
        }
    }

    /// The in-memory aggregates.
    pub fn aggregates(&self) -> &UsageAggregates {
        &self.aggregates
    }
}

/// How often the background thread picks up queued records. Senders never wake it,
/// so recording costs a request no system call.
const TICK: Duration = Duration::from_millis(10);

fn work(
    receiver: Receiver<Message>,
    aggregates: Arc<UsageAggregates>,
    mut connection: Option<Connection>,
    flush_interval: Duration,
    path: String,
) {
    let mut batch: Vec<UsageRecord> = Vec::with_capacity(MAX_BATCH);
    let mut oldest: Option<Instant> = None;
    let mut commit = |batch: &mut Vec<UsageRecord>| match connection.as_mut() {
        Some(connection) => ledger::commit(connection, batch, &path),
        None => batch.clear(),
    };
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
