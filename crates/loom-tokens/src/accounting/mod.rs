//! Usage and cost accounting: records, prices, aggregates, the SQLite ledger and the
//! tower layer that produces a record for every request.
//!
//! Prices are always here (routing reads them too). The rest needs the `accounting`
//! feature (tokio, tower); the SQLite ledger needs the `ledger` feature.

#[cfg(feature = "accounting")]
pub mod aggregate;
#[cfg(feature = "accounting")]
pub mod count_tokens;
#[cfg(feature = "accounting")]
mod estimate;
#[cfg(feature = "ledger")]
pub mod ledger;
#[cfg(feature = "accounting")]
mod offload;
pub mod prices;
#[cfg(feature = "accounting")]
pub mod record;
#[cfg(feature = "accounting")]
pub mod recorder;
#[cfg(feature = "accounting")]
pub mod report;
#[cfg(feature = "accounting")]
pub mod series;
#[cfg(feature = "accounting")]
pub mod token_accounting;

#[cfg(feature = "accounting")]
pub use aggregate::{DEFAULT_MAX_AGGREGATE_BYTES, Dimension, UsageAggregates, UsageGroup, UsageTotals};
#[cfg(feature = "accounting")]
pub use count_tokens::{CountTokens, CountTokensLayer};
#[cfg(feature = "accounting")]
pub use estimate::rough_input_tokens;
#[cfg(feature = "accounting")]
pub use offload::BLOCKING_COUNT_BYTES;
pub use prices::{Price, PriceTable};
#[cfg(feature = "accounting")]
pub use record::{MAX_RECORD_TOKENS, Outcome, UsageRecord, UsageSource};
#[cfg(feature = "accounting")]
pub use recorder::{UsageObserver, UsageRecorder};
#[cfg(feature = "accounting")]
pub use report::{RecordedUsage, UsageReport};
#[cfg(feature = "accounting")]
pub use series::{MAX_SERIES_GROUPS, SeriesGroup, SeriesPoint, UsageSeries};
#[cfg(feature = "accounting")]
pub use token_accounting::{TokenAccounting, TokenAccountingLayer};

/// Why accounting could not start or answer.
#[cfg(feature = "accounting")]
#[derive(Debug, thiserror::Error)]
pub enum AccountingError {
    /// The ledger database failed (or this build has none).
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
