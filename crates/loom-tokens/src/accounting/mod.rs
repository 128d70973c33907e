//! Usage and cost accounting: records, prices, aggregates, the SQLite ledger and the
//! tower layer that produces a record for every request.

pub mod aggregate;
mod estimate;
pub mod layer;
pub mod ledger;
pub mod prices;
pub mod record;
pub mod recorder;

pub use aggregate::{Dimension, UsageAggregates, UsageGroup, UsageTotals};
pub use layer::{TokenAccounting, TokenAccountingLayer};
pub use prices::{Price, PriceTable};
pub use record::{MAX_RECORD_TOKENS, Outcome, UsageRecord, UsageSource};
pub use recorder::{UsageObserver, UsageRecorder};

/// Why accounting could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum AccountingError {
    /// The ledger database failed.
    #[error("usage ledger {path}: {reason}")]
    Ledger {
        /// Database path.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The background thread could not start.
    #[error("usage recorder: {0}")]
    Worker(String),
}
