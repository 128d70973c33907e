//! The durable usage ledger: one SQLite row per request (WAL mode), written in
//! batches by the recorder's background thread.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};

use super::AccountingError;
use super::aggregate::{Dimension, NONE_GROUP, UsageGroup, UsageTotals, clamp_finite, sort_groups};
use super::record::{MAX_RECORD_TOKENS, UsageRecord, unix_millis_of};

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
    streamed INTEGER NOT NULL,
    refusal TEXT,
    guard TEXT
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
    add_missing_columns(&connection).map_err(open_error)?;
    Ok(connection)
}

/// Brings a ledger written by an older Loom up to the current columns.
fn add_missing_columns(connection: &Connection) -> rusqlite::Result<()> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('usage')")?;
    let columns: Vec<String> = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    for (column, kind) in [("refusal", "TEXT"), ("guard", "TEXT")] {
        if !columns.iter().any(|existing| existing == column) {
            connection.execute_batch(&format!("ALTER TABLE usage ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// Totals per group of `dimension` for requests in `[from_ms, to_ms)`, read from disk.
///
/// Whatever the rows hold (an older version's absurd estimates, negative or text
/// counts, infinite costs), the sums cannot fail: each row counts between 0 and
/// [`MAX_RECORD_TOKENS`] tokens and a cost that is not a finite number counts 0, sums are
/// SQLite's `TOTAL()` (a float that never fails, where `SUM()` errors on overflow), and
/// the results are clamped into `u64` and the finite range.
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
    totals(&connection, dimension, from_ms, to_ms).map_err(query_error)
}

/// [`report`] on an open connection.
fn totals(
    connection: &Connection,
    dimension: Dimension,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<UsageGroup>> {
    // The column name comes from a fixed list, never from the request.
    let sql = format!(
        "SELECT CAST(COALESCE({column}, '{NONE_GROUP}') AS TEXT), COUNT(*), {input}, {output}, {cached}, {cost} \
         FROM usage WHERE time_ms >= ?1 AND time_ms < ?2 GROUP BY 1",
        column = dimension.column(),
        input = total_tokens("input_tokens"),
        output = total_tokens("output_tokens"),
        cached = total_tokens("cached_tokens"),
        cost = total_cost("cost"),
    );
    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map(params![from_ms, to_ms], |row| {
        Ok(UsageGroup {
            group: text_of(row.get_ref(0)?),
            totals: UsageTotals {
                requests: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                input_tokens: tokens_of(row.get(2)?),
                output_tokens: tokens_of(row.get(3)?),
                cached_tokens: tokens_of(row.get(4)?),
                cost: clamp_finite(row.get(5)?),
            },
        })
    })?;
    let mut groups = rows.collect::<Result<Vec<_>, _>>()?;
    sort_groups(&mut groups);
    Ok(groups)
}

/// SQL summing a token column: numbers only, each clamped to `0..=MAX_RECORD_TOKENS`.
fn total_tokens(column: &str) -> String {
    format!(
        "TOTAL(CASE WHEN typeof({column}) IN ('integer', 'real') AND {column} > 0 \
         THEN CAST(MIN({column}, {MAX_RECORD_TOKENS}) AS INTEGER) ELSE 0 END)"
    )
}

/// SQL summing a cost column: finite numbers only (SQLite stores infinities as reals).
fn total_cost(column: &str) -> String {
    format!(
        "TOTAL(CASE WHEN typeof({column}) IN ('integer', 'real') AND abs({column}) <= {max:e} \
         THEN {column} ELSE 0 END)",
        max = f64::MAX
    )
}

/// A `TOTAL()` of token counts as a `u64` (`as` saturates, and makes NaN 0).
fn tokens_of(total: f64) -> u64 {
    total as u64
}

/// A group's name, whatever SQLite holds (text that is not UTF-8 included).
fn text_of(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        ValueRef::Integer(number) => number.to_string(),
        ValueRef::Real(number) => number.to_string(),
        ValueRef::Null => NONE_GROUP.to_owned(),
    }
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

/// A count as SQLite's `INTEGER` (an `i64`), saturating rather than turning negative.
fn stored(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn stored_millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn insert(connection: &mut Connection, batch: &[UsageRecord]) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut statement = transaction.prepare_cached(
            "INSERT INTO usage (request_id, time_ms, key_id, user, team, route, provider, model_requested, \
             model_served, input_tokens, output_tokens, cached_tokens, reasoning_tokens, source, cost, \
             latency_ms, ttfb_ms, status, outcome, cache_hit, streamed, refusal, guard) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
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
                stored(record.input_tokens),
                stored(record.output_tokens),
                stored(record.cached_tokens),
                stored(record.reasoning_tokens),
                record.source.as_str(),
                record.cost,
                stored_millis(record.latency),
                record.time_to_first_byte.map(stored_millis),
                record.status,
                record.outcome.as_str(),
                record.cache_hit,
                record.streamed,
                record.refusal.as_deref(),
                record.guard.as_deref(),
            ])?;
        }
    }
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_stored_value_adds_up_without_failing() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        let insert = |user: &str, tokens: &str, cost: &str| {
            let sql = format!(
                "INSERT INTO usage VALUES ('r', 5, NULL, {user}, NULL, NULL, NULL, 'm', NULL, \
                 {tokens}, {tokens}, {tokens}, 0, 'estimated', {cost}, 1, NULL, 200, 'ok', 0, 0, NULL, NULL)"
            );
            connection.execute(&sql, []).unwrap();
        };
        insert("'big'", &i64::MAX.to_string(), "1e308");
        insert("'big'", &i64::MAX.to_string(), "1e308");
        insert("'big'", "2.5", "0.25");
        insert("'odd'", "-7", "-9e999");
        insert("'odd'", "'lots'", "'free'");
        insert("x'ff00'", "9e999", "9e999");
        insert("NULL", "1", "0.5");
        let max = MAX_RECORD_TOKENS;
        let group = |group: &str, requests, tokens, cost| UsageGroup {
            group: group.to_owned(),
            totals: UsageTotals {
                requests,
                input_tokens: tokens,
                output_tokens: tokens,
                cached_tokens: tokens,
                cost,
            },
        };
        assert_eq!(
            totals(&connection, Dimension::User, 0, 10).unwrap(),
            vec![
                group("big", 3, 2 * max + 2, f64::MAX),
                group(NONE_GROUP, 1, 1, 0.5),
                group("odd", 2, 0, 0.0),
                group("\u{fffd}\0", 1, max, 0.0),
            ]
        );
        assert_eq!(totals(&connection, Dimension::User, 10, 0).unwrap(), vec![], "an empty range");
    }

    #[test]
    fn a_ledger_of_an_older_loom_gains_the_refusal_and_guard_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let old_schema = SCHEMA.replace(",\n    refusal TEXT,\n    guard TEXT", "");
        assert!(!old_schema.contains("refusal") && !old_schema.contains("guard"));
        Connection::open(&path).unwrap().execute_batch(&old_schema).unwrap();
        let mut connection = open(&path).unwrap();
        let mut record = crate::accounting::record::tests::sample_record();
        record.refusal = Some("rate_limit:team:requests".into());
        record.guard = Some("injection:flag".into());
        insert(&mut connection, &[record]).unwrap();
        let stored: (String, String) = connection
            .query_row("SELECT refusal, guard FROM usage", [], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        assert_eq!(stored, ("rate_limit:team:requests".to_owned(), "injection:flag".to_owned()));
    }
}
