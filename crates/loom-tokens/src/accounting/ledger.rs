//! The durable usage ledger: one SQLite row per request (WAL mode), written in
//! batches by the recorder's background thread.

use std::path::Path;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params};

use super::AccountingError;
use super::aggregate::{
    BUDGET_REFUSAL, Dimension, GUARD_REFUSAL, NONE_GROUP, OTHER_GROUP, RATE_LIMIT_REFUSAL, UsageGroup,
    UsageTotals, clamp_finite, sort_groups,
};
use super::record::{MAX_RECORD_TOKENS, UsageRecord, unix_millis_of};
use super::series::{self, MAX_SERIES_GROUPS, SeriesRows, UsageSeries};

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
    guard TEXT,
    saved_cost REAL NOT NULL DEFAULT 0
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
    for (column, kind) in [("refusal", "TEXT"), ("guard", "TEXT"), ("saved_cost", "REAL DEFAULT 0")] {
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

/// A usage series of `dimension` over `[from_ms, to_ms)` in buckets of `bucket_ms`
/// rounded up to whole minutes, read from disk with the sums of [`report`].
pub fn series(
    path: &Path,
    dimension: Dimension,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
    limit: usize,
) -> Result<UsageSeries, AccountingError> {
    let query_error = |error: rusqlite::Error| AccountingError::Ledger {
        path: path.display().to_string(),
        reason: error.to_string(),
    };
    let connection = Connection::open(path).map_err(query_error)?;
    let width = series::round_up_width(bucket_ms, MINUTE_MS);
    let rows = series_rows(&connection, dimension, from_ms, to_ms, width, limit).map_err(query_error)?;
    Ok(series::build(width, rows, limit))
}

const MINUTE_MS: i64 = 60_000;

/// [`report`] on an open connection.
fn totals(
    connection: &Connection,
    dimension: Dimension,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<UsageGroup>> {
    let sql = format!(
        "SELECT {group}, {sums} FROM usage WHERE time_ms >= ?1 AND time_ms < ?2 GROUP BY 1",
        group = group_of(dimension),
        sums = total_columns(),
    );
    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map(params![from_ms, to_ms], |row| {
        Ok(UsageGroup { group: text_of(row.get_ref(0)?), totals: totals_at(row, 1)? })
    })?;
    let mut groups = rows.collect::<Result<Vec<_>, _>>()?;
    sort_groups(&mut groups);
    Ok(groups)
}

/// [`series`]' totals per bucket start and group: the `limit` largest groups by name and
/// every other one as `(other)`, so the rows read stay within buckets × (`limit` + 1)
/// however many groups (client-chosen user names, say) the range holds.
fn series_rows(
    connection: &Connection,
    dimension: Dimension,
    from_ms: i64,
    to_ms: i64,
    width_ms: i64,
    limit: usize,
) -> rusqlite::Result<SeriesRows> {
    let group = group_of(dimension);
    // Times are at least 0 (the range starts at 0 or later), so integer division floors.
    let from_ms = from_ms.max(0);
    // `sort_groups`' order: largest cost first, then most requests, then by name. The
    // values are kept as stored, so they match their rows below whatever their bytes.
    let top_sql = format!(
        "SELECT {group} FROM usage WHERE time_ms >= ?1 AND time_ms < ?2 AND {group} <> '{OTHER_GROUP}' \
         GROUP BY 1 ORDER BY {cost} DESC, COUNT(*) DESC, 1 LIMIT ?3",
        cost = total_cost("cost"),
    );
    let limit = i64::try_from(limit.clamp(1, MAX_SERIES_GROUPS)).unwrap_or(1);
    let top: Vec<Value> = connection
        .prepare(&top_sql)?
        .query_map(params![from_ms, to_ms, limit], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let named = if top.is_empty() {
        "0".to_owned()
    } else {
        let placeholders: Vec<String> = (4..4 + top.len()).map(|index| format!("?{index}")).collect();
        format!("{group} IN ({})", placeholders.join(", "))
    };
    let sql = format!(
        "SELECT (CAST(time_ms AS INTEGER) / ?3) * ?3, CASE WHEN {named} THEN {group} ELSE '{OTHER_GROUP}' END, \
         {sums} FROM usage WHERE time_ms >= ?1 AND time_ms < ?2 GROUP BY 1, 2",
        sums = total_columns(),
    );
    let mut statement = connection.prepare(&sql)?;
    let bound = [Value::Integer(from_ms), Value::Integer(to_ms), Value::Integer(width_ms)];
    let mut rows = statement.query(rusqlite::params_from_iter(bound.into_iter().chain(top)))?;
    let mut series = SeriesRows::default();
    while let Some(row) = rows.next()? {
        let start_ms = match row.get_ref(0)? {
            ValueRef::Integer(start) => start,
            _ => 0, // an odd stored time still counts, in the first bucket
        };
        series.add(start_ms, &text_of(row.get_ref(1)?), &totals_at(row, 2)?);
    }
    Ok(series)
}

/// The SQL of a row's group in `dimension`: its column as text, `(none)` when empty. The
/// column name comes from a fixed list, never from the request.
fn group_of(dimension: Dimension) -> String {
    format!("CAST(COALESCE({}, '{NONE_GROUP}') AS TEXT)", dimension.column())
}

/// The SQL of the totals' columns, in [`totals_at`]'s order.
fn total_columns() -> String {
    let count_if = |condition: &str| format!("TOTAL(CASE WHEN {condition} THEN 1 ELSE 0 END)");
    // The kind alone, or followed by `:` (as `is_refusal_of`); kinds are fixed identifiers.
    let refused_by = |kind: &str| {
        count_if(&format!("(refusal = '{kind}' OR substr(refusal, 1, {}) = '{kind}:')", kind.len() + 1))
    };
    [
        "COUNT(*)".to_owned(),
        total_tokens("input_tokens"),
        total_tokens("output_tokens"),
        total_tokens("cached_tokens"),
        total_cost("cost"),
        count_if("outcome = 'error'"),
        count_if("typeof(cache_hit) IN ('integer', 'real') AND cache_hit <> 0"),
        total_cost("saved_cost"),
        refused_by(RATE_LIMIT_REFUSAL),
        refused_by(BUDGET_REFUSAL),
        refused_by(GUARD_REFUSAL),
        count_if("guard IS NOT NULL"),
    ]
    .join(", ")
}

/// The totals in `row`'s columns from `first` on ([`total_columns`]).
fn totals_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<UsageTotals> {
    let count = |offset: usize| row.get::<_, f64>(first + offset).map(tokens_of);
    let cost = |offset: usize| row.get::<_, f64>(first + offset).map(clamp_finite);
    Ok(UsageTotals {
        requests: u64::try_from(row.get::<_, i64>(first)?).unwrap_or(0),
        input_tokens: count(1)?,
        output_tokens: count(2)?,
        cached_tokens: count(3)?,
        cost: cost(4)?,
        errors: count(5)?,
        cache_hits: count(6)?,
        saved_cost: cost(7)?,
        rate_limited: count(8)?,
        over_budget: count(9)?,
        guard_blocked: count(10)?,
        guard_flagged: count(11)?,
    })
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
             latency_ms, ttfb_ms, status, outcome, cache_hit, streamed, refusal, guard, saved_cost) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
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
                // SQLite would store NaN as NULL, which the column refuses.
                if record.saved_cost.is_finite() { record.saved_cost } else { 0.0 },
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
                 {tokens}, {tokens}, {tokens}, 0, 'estimated', {cost}, 1, NULL, 200, 'ok', 0, 0, NULL, NULL, {cost})"
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
                saved_cost: cost,
                ..UsageTotals::default()
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
    fn a_ledger_of_an_older_loom_gains_the_refusal_guard_and_saved_cost_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let old_schema = SCHEMA
            .replace(",\n    refusal TEXT,\n    guard TEXT,\n    saved_cost REAL NOT NULL DEFAULT 0", "");
        assert!(
            !old_schema.contains("refusal") && !old_schema.contains("guard") && !old_schema.contains("saved")
        );
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
        // A row an older Loom wrote (no saved cost) counts 0 saved.
        connection
            .execute(
                "INSERT INTO usage (request_id, time_ms, model_requested, input_tokens, output_tokens, \
                 cached_tokens, reasoning_tokens, source, cost, latency_ms, status, outcome, cache_hit, streamed) \
                 VALUES ('old', 0, 'm', 1, 1, 0, 0, 'reported', 0.5, 1, 200, 'ok', 1, 0)",
                [],
            )
            .unwrap();
        let report = totals(&connection, Dimension::Model, 0, 1).unwrap();
        let expected = UsageTotals {
            requests: 2,
            input_tokens: 2,
            output_tokens: 2,
            cost: 0.5,
            cache_hits: 1,
            rate_limited: 1,
            guard_flagged: 1,
            ..UsageTotals::default()
        };
        assert_eq!(report, vec![UsageGroup { group: "m".to_owned(), totals: expected }]);
    }

    #[test]
    fn each_kind_of_record_counts_in_its_own_total() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let mut connection = open(&path).unwrap();
        let (records, expected) = crate::accounting::aggregate::tests::one_record_of_each_kind();
        insert(&mut connection, &records).unwrap();
        let report = report(&path, Dimension::Model, 0, 1).unwrap();
        assert_eq!(report, vec![UsageGroup { group: "m".to_owned(), totals: expected }]);
    }

    #[test]
    fn odd_flags_and_refusals_count_nothing_and_fail_nothing() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        for (cache_hit, refusal, saved) in [
            ("'yes'", "x'726174655f6c696d69743a'", "'lots'"), // refusal as a blob, text flags
            ("x'01'", "'rate_limiter'", "9e999"),             // a blob flag, another word, an infinite saving
            ("0.0", "42", "-1e999"),
            ("2", "'guard:pii'", "0.25"), // counted: a numeric flag, a guard refusal
            ("0", "'budget'", "0"),       // counted: a refusal's kind without details
        ] {
            let sql = format!(
                "INSERT INTO usage VALUES ('r', 5, NULL, NULL, NULL, NULL, NULL, 'm', NULL, 0, 0, 0, 0, 'estimated', \
                 0, 1, NULL, 200, 'refused', {cache_hit}, 0, {refusal}, NULL, {saved})"
            );
            connection.execute(&sql, []).unwrap();
        }
        let expected = UsageTotals {
            requests: 5,
            cache_hits: 1,
            saved_cost: 0.25,
            over_budget: 1,
            guard_blocked: 1,
            ..UsageTotals::default()
        };
        let report = totals(&connection, Dimension::Model, 0, 10).unwrap();
        assert_eq!(report, vec![UsageGroup { group: "m".to_owned(), totals: expected }]);
    }
}
