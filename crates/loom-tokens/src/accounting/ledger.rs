//! The durable usage ledger: one SQLite row per request (WAL mode), written in
//! batches by the recorder's background thread.

use std::path::Path;

use rusqlite::{Connection, params};

use super::AccountingError;
use super::aggregate::{Dimension, UsageGroup, UsageTotals, sort_groups};
use super::record::{UsageRecord, unix_millis_of};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage (
    request_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    key_id TEXT,
    user TEXT,
    team TEXT,
    route TEXT,
    provider TEXT,
    model_requested TEXT NOT NULL,
    model_served TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    source TEXT NOT NULL,
    cost REAL NOT NULL,
    latency_ms INTEGER NOT NULL,
    ttfb_ms INTEGER,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    cache_hit INTEGER NOT NULL,
    streamed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_time ON usage (time_ms);
";

/// Opens (creating if needed) the ledger database at `path`.
pub fn open(path: &Path) -> Result<Connection, AccountingError> {
    let open_error = |error: rusqlite::Error| AccountingError::Ledger {
        path: path.display().to_string(),
        reason: error.to_string(),
    };
    let connection = Connection::open(path).map_err(open_error)?;
    connection.pragma_update(None, "journal_mode", "WAL").map_err(open_error)?;
    connection.pragma_update(None, "synchronous", "NORMAL").map_err(open_error)?;
    connection.execute_batch(SCHEMA).map_err(open_error)?;
    Ok(connection)
}

/// Totals per group of `dimension` for requests in `[from_ms, to_ms)`, read from disk.
pub fn report(
    path: &Path,
    dimension: Dimension,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<UsageGroup>, AccountingError> {
    let query_error = |error: rusqlite::Error| AccountingError::Ledger {
        path: path.display().to_string(),
        reason: error.to_string(),
    };
    let connection = Connection::open(path).map_err(query_error)?;
    // The column name comes from a fixed list, never from the request.
    let sql = format!(
        "SELECT COALESCE({column}, '(none)'), COUNT(*), SUM(input_tokens), SUM(output_tokens), \
         SUM(cached_tokens), SUM(cost) FROM usage WHERE time_ms >= ?1 AND time_ms < ?2 GROUP BY 1",
        column = dimension.column()
    );
    let mut statement = connection.prepare(&sql).map_err(query_error)?;
    let rows = statement
        .query_map(params![from_ms, to_ms], |row| {
            Ok(UsageGroup {
                group: row.get(0)?,
                totals: UsageTotals {
                    requests: row.get::<_, i64>(1)? as u64,
                    input_tokens: row.get::<_, i64>(2)? as u64,
                    output_tokens: row.get::<_, i64>(3)? as u64,
                    cached_tokens: row.get::<_, i64>(4)? as u64,
                    cost: row.get(5)?,
                },
            })
        })
        .map_err(query_error)?;
    let mut groups = rows.collect::<Result<Vec<_>, _>>().map_err(query_error)?;
    sort_groups(&mut groups);
    Ok(groups)
}

/// Commits `batch` in one transaction and empties it; failures are logged.
pub(crate) fn commit(connection: &mut Connection, batch: &mut Vec<UsageRecord>, path: &str) {
    if batch.is_empty() {
        return;
    }
    if let Err(error) = insert(connection, batch) {
        tracing::error!(%error, path, records = batch.len(), "writing usage records failed");
    }
    batch.clear();
}

fn insert(connection: &mut Connection, batch: &[UsageRecord]) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut statement = transaction.prepare_cached(
            "INSERT INTO usage VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )?;
        for record in batch {
            statement.execute(params![
                record.request_id.as_ref(),
                unix_millis_of(record.time),
                record.key_id.as_deref(),
                record.user.as_deref(),
                record.team.as_deref(),
                record.route.as_deref(),
                record.provider.as_deref(),
                record.model_requested,
                record.model_served,
                record.input_tokens as i64,
                record.output_tokens as i64,
                record.cached_tokens as i64,
                record.reasoning_tokens as i64,
                record.source.as_str(),
                record.cost,
                record.latency.as_millis() as i64,
                record.time_to_first_byte.map(|ttfb| ttfb.as_millis() as i64),
                record.status,
                record.outcome.as_str(),
                record.cache_hit,
                record.streamed,
            ])?;
        }
    }
    transaction.commit()
}
