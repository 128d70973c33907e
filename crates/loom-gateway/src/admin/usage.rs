//! `GET /ai/usage`: usage grouped by user, team, key, model or provider over a time range;
//! `GET /ai/usage/series`: the same groups over time, in buckets.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use loom_tokens::accounting::{AccountingError, Dimension, MAX_SERIES_GROUPS, SeriesGroup, UsageGroup};
use serde::Serialize;

use super::AdminState;
use super::error::ApiError;

/// Default report window: the last day.
const DEFAULT_WINDOW: Duration = Duration::from_secs(86_400);

/// A usage report (`GET /ai/usage`).
#[derive(Serialize)]
struct UsageReport {
    group_by: Dimension,
    from: String,
    to: String,
    groups: Vec<UsageGroup>,
}

/// `GET /ai/usage?group_by=user|team|key|model|provider&from=&to=`.
pub(crate) async fn usage(state: &AdminState, query: &str) -> Result<Bytes, ApiError> {
    let query = parse_usage_query(query, SystemTime::now())
        .map_err(|error| ApiError::invalid(error.param, error.message))?;
    let (group_by, from_ms, to_ms) = (query.group_by(), query.from_ms(), query.to_ms());
    let usage = state.usage.clone();
    let groups = off_runtime("usage report", move || usage.report(group_by, from_ms, to_ms)).await?;
    json(&UsageReport { group_by, from: query.from_rfc3339(), to: query.to_rfc3339(), groups })
}

/// Runs a usage read on the blocking pool: with a ledger it is SQLite on disk.
async fn off_runtime<T: Send + 'static>(
    what: &str,
    read: impl FnOnce() -> Result<T, AccountingError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|error| ApiError::internal(format!("{what} failed: {error}")))?
        .map_err(|error| ApiError::internal(error.to_string()))
}

fn json(report: &impl Serialize) -> Result<Bytes, ApiError> {
    serde_json::to_vec(report).map(Bytes::from).map_err(|error| ApiError::internal(error.to_string()))
}

/// A usage series (`GET /ai/usage/series`).
#[derive(Serialize)]
struct SeriesReport {
    group_by: Dimension,
    from: String,
    to: String,
    bucket_seconds: i64,
    series: Vec<SeriesGroup>,
}

/// `GET /ai/usage/series?group_by=&from=&to=&bucket=&limit=`.
pub(crate) async fn series(state: &AdminState, query: &str) -> Result<Bytes, ApiError> {
    let query = parse_series_query(query, SystemTime::now())
        .map_err(|error| ApiError::invalid(error.param, error.message))?;
    let range = &query.range;
    let (group_by, from_ms, to_ms) = (range.group_by(), range.from_ms(), range.to_ms());
    let (bucket_ms, limit) = (query.bucket_ms, query.limit);
    let usage = state.usage.clone();
    let series =
        off_runtime("usage series", move || usage.series(group_by, from_ms, to_ms, bucket_ms, limit)).await?;
    json(&SeriesReport {
        group_by,
        from: range.from_rfc3339(),
        to: range.to_rfc3339(),
        bucket_seconds: series.bucket_ms / 1000,
        series: series.groups,
    })
}

/// The latest time a usage query may name: the last second of the year 9999, the end
/// of RFC 3339's four-digit years.
const LATEST_SECONDS: u64 = 253_402_300_799;
/// Longest echo of a rejected value in an error message.
const MAX_ECHO_CHARS: usize = 64;

/// What `GET /ai/usage` asks for: a grouping and a time range within 1970..=9999
/// (only [`parse_usage_query`] makes one, so the range always formats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    group_by: Dimension,
    from: SystemTime,
    to: SystemTime,
}

impl UsageQuery {
    /// What to group by.
    pub fn group_by(&self) -> Dimension {
        self.group_by
    }

    /// Start of the range (included).
    pub fn from(&self) -> SystemTime {
        self.from
    }

    /// End of the range (excluded); not before `from`.
    pub fn to(&self) -> SystemTime {
        self.to
    }

    /// `from` in milliseconds since the Unix epoch.
    pub fn from_ms(&self) -> i64 {
        unix_millis(self.from)
    }

    /// `to` in milliseconds since the Unix epoch.
    pub fn to_ms(&self) -> i64 {
        unix_millis(self.to)
    }

    /// `from` as RFC 3339 with milliseconds.
    pub fn from_rfc3339(&self) -> String {
        humantime::format_rfc3339_millis(self.from).to_string()
    }

    /// `to` as RFC 3339 with milliseconds.
    pub fn to_rfc3339(&self) -> String {
        humantime::format_rfc3339_millis(self.to).to_string()
    }
}

/// Why a usage query is rejected (always a 400): what is wrong, and the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The message, naming the parameter and echoing (the start of) its value.
    pub message: String,
    /// The parameter: `group_by`, `from`, `to`, `bucket`, `limit`, or `query` for an
    /// unknown one.
    pub param: &'static str,
}

/// What `GET /ai/usage/series` asks for: a [`UsageQuery`], a bucket width and how many
/// groups to name (only [`parse_series_query`] makes one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    range: UsageQuery,
    bucket_ms: i64,
    limit: usize,
}

impl SeriesQuery {
    /// The grouping and the range.
    pub fn range(&self) -> &UsageQuery {
        &self.range
    }

    /// The bucket width asked for (or chosen), in milliseconds: whole minutes.
    pub fn bucket_ms(&self) -> i64 {
        self.bucket_ms
    }

    /// How many groups to name.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Groups a series names unless `limit` says otherwise.
const DEFAULT_SERIES_GROUPS: usize = 10;
/// The most buckets a series may span.
const MAX_SERIES_BUCKETS: i64 = 1_500;
/// The most buckets a default width gives.
const DEFAULT_SERIES_BUCKETS: i64 = 120;
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// The widths tried for a default bucket, narrowest first.
const DEFAULT_BUCKETS_MS: [i64; 6] =
    [MINUTE_MS, 5 * MINUTE_MS, 15 * MINUTE_MS, 3_600_000, 21_600_000, DAY_MS];

/// The extra parameters of a series query, while parsing.
#[derive(Default)]
struct SeriesParams {
    bucket_ms: Option<i64>,
    limit: Option<usize>,
}

/// Parses the query string of `GET /ai/usage/series`: [`parse_usage_query`]'s
/// parameters, `bucket` (whole minutes; by default the narrowest of 1m, 5m, 15m, 1h, 6h
/// and 1d giving at most 120 buckets, else whole days giving at most 120) and `limit`
/// (1 to 50, default 10). A bucket giving more than 1,500 buckets is rejected.
pub fn parse_series_query(query: &str, now: SystemTime) -> Result<SeriesQuery, QueryError> {
    let mut params = SeriesParams::default();
    let range = parse_query(query, now, Some(&mut params))?;
    let span_ms = range.to_ms().saturating_sub(range.from_ms());
    // Both are positive here (widths are whole minutes, the range is within 1970..=9999).
    let ceil_div = |a: i64, b: i64| a / b + i64::from(a % b != 0);
    let buckets = |width_ms: i64| ceil_div(span_ms, width_ms);
    let bucket_ms = match params.bucket_ms {
        Some(width_ms) => width_ms,
        None => DEFAULT_BUCKETS_MS
            .into_iter()
            .find(|width_ms| buckets(*width_ms) <= DEFAULT_SERIES_BUCKETS)
            // Longer than 120 days: the fewest whole days that keep to 120 buckets.
            .unwrap_or_else(|| ceil_div(span_ms, DEFAULT_SERIES_BUCKETS * DAY_MS).saturating_mul(DAY_MS)),
    };
    if buckets(bucket_ms) > MAX_SERIES_BUCKETS {
        let message = format!(
            "`bucket` gives {} buckets over the range, more than {MAX_SERIES_BUCKETS}: choose a wider one",
            buckets(bucket_ms)
        );
        return Err(QueryError { message, param: "bucket" });
    }
    Ok(SeriesQuery { range, bucket_ms, limit: params.limit.unwrap_or(DEFAULT_SERIES_GROUPS) })
}

/// Parses the query string of `GET /ai/usage`, with `now` the default `to`. Never
/// panics: every time is checked against 1970..=9999 before any arithmetic, and each
/// parameter may appear once.
pub fn parse_usage_query(query: &str, now: SystemTime) -> Result<UsageQuery, QueryError> {
    parse_query(query, now, None)
}

/// [`parse_usage_query`], taking `bucket` and `limit` too when `series` is given.
fn parse_query(
    query: &str,
    now: SystemTime,
    mut series: Option<&mut SeriesParams>,
) -> Result<UsageQuery, QueryError> {
    let mut group_by = None;
    let mut from = None;
    let mut to = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match (key.as_ref(), series.as_deref_mut()) {
            ("group_by", _) => set_once(&mut group_by, "group_by", &value, parse_dimension)?,
            ("from", _) => set_once(&mut from, "from", &value, parse_time)?,
            ("to", _) => set_once(&mut to, "to", &value, parse_time)?,
            ("bucket", Some(series)) => set_once(&mut series.bucket_ms, "bucket", &value, parse_bucket)?,
            ("limit", Some(series)) => set_once(&mut series.limit, "limit", &value, parse_limit)?,
            (other, _) => {
                let message = format!("unknown parameter `{}`", echo(other));
                return Err(QueryError { message, param: "query" });
            }
        }
    }
    let latest = UNIX_EPOCH + Duration::from_secs(LATEST_SECONDS);
    let to = to.unwrap_or_else(|| now.clamp(UNIX_EPOCH, latest));
    let from = from.unwrap_or_else(|| {
        to.checked_sub(DEFAULT_WINDOW).filter(|from| *from >= UNIX_EPOCH).unwrap_or(UNIX_EPOCH)
    });
    if from > to {
        return Err(QueryError { message: "`from` must not be after `to`".to_owned(), param: "from" });
    }
    Ok(UsageQuery { group_by: group_by.unwrap_or(Dimension::User), from, to })
}

/// Parses `value` into `slot`, which must still be empty: a parameter given twice is
/// ambiguous, and an empty one is a mistake.
fn set_once<T>(
    slot: &mut Option<T>,
    param: &'static str,
    value: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<(), QueryError> {
    let error = |message: String| QueryError { message, param };
    if slot.is_some() {
        return Err(error(format!("`{param}` is given more than once")));
    }
    if value.is_empty() {
        return Err(error(format!("`{param}` must not be empty")));
    }
    *slot = Some(parse(value).map_err(error)?);
    Ok(())
}

fn parse_dimension(value: &str) -> Result<Dimension, String> {
    Dimension::parse(value)
        .ok_or_else(|| format!("group_by must be user, team, key, model or provider, not `{}`", echo(value)))
}

/// A humantime duration of whole minutes, at least one, in milliseconds.
fn parse_bucket(value: &str) -> Result<i64, String> {
    let invalid = || {
        format!(
            "`bucket` must be a whole number of minutes, at least 1m (1m, 5m, 1h, 1d), not `{}`",
            echo(value)
        )
    };
    let duration = humantime::parse_duration(value).map_err(|_| invalid())?;
    let millis = i64::try_from(duration.as_millis()).map_err(|_| invalid())?;
    if millis < MINUTE_MS || millis % MINUTE_MS != 0 {
        return Err(invalid());
    }
    Ok(millis)
}

/// A whole number from 1 to [`MAX_SERIES_GROUPS`].
fn parse_limit(value: &str) -> Result<usize, String> {
    value.parse::<usize>().ok().filter(|limit| (1..=MAX_SERIES_GROUPS).contains(limit)).ok_or_else(|| {
        format!("`limit` must be a whole number from 1 to {MAX_SERIES_GROUPS}, not `{}`", echo(value))
    })
}

/// Unix seconds or an RFC 3339 time, from 1970 to the end of 9999.
fn parse_time(value: &str) -> Result<SystemTime, String> {
    let out_of_range = || {
        format!(
            "`{}` must be an RFC 3339 time (2026-11-25T10:00:00Z) or Unix seconds, from 1970 to 9999",
            echo(value)
        )
    };
    let time = if value.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds = value.parse::<u64>().ok().filter(|seconds| *seconds <= LATEST_SECONDS);
        // In range, the addition cannot overflow.
        UNIX_EPOCH + Duration::from_secs(seconds.ok_or_else(out_of_range)?)
    } else {
        humantime::parse_rfc3339_weak(value).map_err(|_| out_of_range())?
    };
    let latest = UNIX_EPOCH + Duration::from_secs(LATEST_SECONDS + 1);
    if time < UNIX_EPOCH || time >= latest {
        return Err(out_of_range());
    }
    Ok(time)
}

/// A value quoted in an error message, cut to [`MAX_ECHO_CHARS`] characters.
fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

/// Milliseconds since the Unix epoch of a time in 1970..=9999.
fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: u64 = 1_795_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn seconds(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn rejected(query: &str) -> (String, &'static str) {
        let error = parse_usage_query(query, now()).expect_err(query);
        (error.message, error.param)
    }

    const RANGE: &str = "must be an RFC 3339 time (2026-11-25T10:00:00Z) or Unix seconds, from 1970 to 9999";

    #[test]
    fn defaults_are_the_last_day_by_user() {
        let query = parse_usage_query("", now()).unwrap();
        assert_eq!(query, UsageQuery { group_by: Dimension::User, from: seconds(NOW - 86_400), to: now() });
        // A clock before 1970 or past 9999 still gives a range that can be formatted.
        let early = parse_usage_query("", UNIX_EPOCH - Duration::from_secs(5)).unwrap();
        assert_eq!((early.from, early.to), (UNIX_EPOCH, UNIX_EPOCH));
        let late = parse_usage_query("", seconds(LATEST_SECONDS * 2)).unwrap();
        assert_eq!(late.to_rfc3339(), "9999-12-31T23:59:59.000Z");
    }

    #[test]
    fn times_are_unix_seconds_or_rfc_3339_within_1970_to_9999() {
        let query = parse_usage_query("group_by=model&from=0&to=2026-11-25T10:00:00Z", now()).unwrap();
        assert_eq!((query.group_by, query.from_ms()), (Dimension::Model, 0));
        assert_eq!(query.to_rfc3339(), "2026-11-25T10:00:00.000Z");
        let latest = parse_usage_query("from=253402300799&to=9999-12-31T23:59:59.999Z", now()).unwrap();
        assert_eq!((latest.from_ms(), latest.to_ms()), (253_402_300_799_000, 253_402_300_799_999));
        for (query, param, value) in [
            ("from=253402300800&to=253402300801", "from", "253402300800"),
            ("to=18446744073709551615", "to", "18446744073709551615"),
            ("to=99999999999999999999999", "to", "99999999999999999999999"),
            ("from=-1", "from", "-1"),
            ("from=1969-12-31T23:59:59Z", "from", "1969-12-31T23:59:59Z"),
            ("to=10000-01-01T00:00:00Z", "to", "10000-01-01T00:00:00Z"),
            ("to=tomorrow", "to", "tomorrow"),
        ] {
            assert_eq!(rejected(query), (format!("`{value}` {RANGE}"), param), "{query}");
        }
    }

    #[test]
    fn bad_shapes_name_their_parameter() {
        assert_eq!(rejected("from=10&to=9"), ("`from` must not be after `to`".to_owned(), "from"));
        assert_eq!(rejected("to=5&to=6"), ("`to` is given more than once".to_owned(), "to"));
        assert_eq!(
            rejected("group_by=user&group_by=user"),
            ("`group_by` is given more than once".to_owned(), "group_by")
        );
        assert_eq!(rejected("from="), ("`from` must not be empty".to_owned(), "from"));
        assert_eq!(rejected("group_by"), ("`group_by` must not be empty".to_owned(), "group_by"));
        assert_eq!(
            rejected("group_by=planet"),
            ("group_by must be user, team, key, model or provider, not `planet`".to_owned(), "group_by")
        );
        assert_eq!(rejected("=1"), ("unknown parameter ``".to_owned(), "query"));
        let long = "x".repeat(1000);
        assert_eq!(
            rejected(&format!("{long}=1")),
            (format!("unknown parameter `{}...`", &long[..64]), "query")
        );
        // Empty pairs between separators are skipped.
        assert!(parse_usage_query("&&from=1&&", now()).is_ok());
    }

    fn series(query: &str) -> Result<(i64, usize), (String, &'static str)> {
        parse_series_query(query, now())
            .map(|query| (query.bucket_ms() / 60_000, query.limit()))
            .map_err(|error| (error.message, error.param))
    }

    #[test]
    fn the_default_bucket_gives_at_most_120_over_the_range() {
        let minutes = |range: u64| series(&format!("from={}", NOW - range)).map(|(bucket, _)| bucket);
        assert_eq!(series(""), Ok((15, 10)), "a day: 96 quarters of an hour, 10 groups");
        assert_eq!(minutes(2 * 3600), Ok(1));
        assert_eq!(minutes(2 * 3600 + 1), Ok(5));
        assert_eq!(minutes(30 * 86_400), Ok(6 * 60));
        assert_eq!(minutes(120 * 86_400), Ok(24 * 60));
        assert_eq!(minutes(365 * 86_400), Ok(4 * 24 * 60), "past 120 days: whole days");
        assert_eq!(series(&format!("from={NOW}")), Ok((1, 10)), "an empty range");
        let all_time = parse_series_query("from=0&to=253402300799", now()).unwrap();
        assert_eq!(all_time.bucket_ms(), 24 * 3_600_000 * 24_441, "8030 years in 120 buckets");
    }

    #[test]
    fn buckets_are_whole_minutes_and_at_most_1500_over_the_range() {
        assert_eq!(series("bucket=60s&limit=50"), Ok((1, 50)));
        assert_eq!(series("bucket=1h 30m&limit=1"), Ok((90, 1)));
        assert_eq!(series("bucket=1d"), Ok((1440, 10)));
        let whole = "`bucket` must be a whole number of minutes, at least 1m (1m, 5m, 1h, 1d), not";
        for bad in ["30s", "90s", "0", "0m", "5", "-1m", "soon", "600000000000000000000d"] {
            assert_eq!(
                series(&format!("bucket={bad}")),
                Err((format!("{whole} `{bad}`"), "bucket")),
                "{bad}"
            );
        }
        let month = NOW - 30 * 86_400;
        assert_eq!(
            series(&format!("from={month}&bucket=1m")),
            Err((
                "`bucket` gives 43200 buckets over the range, more than 1500: choose a wider one".to_owned(),
                "bucket"
            ))
        );
        assert_eq!(series(&format!("from={}&bucket=1m", NOW - 25 * 3600)), Ok((1, 10)), "exactly 1500");
        assert_eq!(series("bucket=1m&bucket=1m").map_err(|error| error.1), Err("bucket"));
    }

    #[test]
    fn limits_are_1_to_50_and_only_series_take_bucket_or_limit() {
        for bad in ["0", "51", "-1", "ten", "1.5", "99999999999999999999999"] {
            assert_eq!(
                series(&format!("limit={bad}")),
                Err((format!("`limit` must be a whole number from 1 to 50, not `{bad}`"), "limit")),
                "{bad}"
            );
        }
        assert_eq!(rejected("bucket=1m"), ("unknown parameter `bucket`".to_owned(), "query"));
        assert_eq!(rejected("limit=5"), ("unknown parameter `limit`".to_owned(), "query"));
        assert_eq!(series("group_by=planet").map_err(|error| error.1), Err("group_by"));
        assert_eq!(series("step=1m"), Err(("unknown parameter `step`".to_owned(), "query")));
    }

    /// Query strings as clients and fuzzers write them: known and unknown keys, numbers
    /// of any size, RFC 3339-ish times with any year, percent-escapes and separators.
    fn any_query() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("group_by".to_owned()),
            Just("from".to_owned()),
            Just("to".to_owned()),
            Just("bucket".to_owned()),
            Just("limit".to_owned()),
            "[a-z_%=]{0,8}",
        ];
        let value = prop_oneof![
            any::<u64>().prop_map(|number| number.to_string()),
            any::<i64>().prop_map(|number| number.to_string()),
            (0u64..=LATEST_SECONDS * 2).prop_map(|number| number.to_string()),
            (0u32..100_000, 0u32..14, 0u32..33, 0u32..25, 0u32..61).prop_map(
                |(year, month, day, hour, minute)| {
                    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00Z")
                }
            ),
            Just("user".to_owned()),
            Just("provider".to_owned()),
            (0u64..100_000, prop::sample::select(vec!["s", "m", "h", "d", "y", ""]))
                .prop_map(|(number, unit)| format!("{number}{unit}")),
            "[0-9A-Za-z:.+% -]{0,30}",
            ".{0,20}",
        ];
        let pair = (key, value).prop_map(|(key, value)| format!("{key}={value}"));
        prop_oneof![prop::collection::vec(pair, 0..5).prop_map(|pairs| pairs.join("&")), ".{0,60}",]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The admin API's answer to any query is a report (200) or a 400 naming a
        /// parameter: parsing, the range's milliseconds and its RFC 3339 forms never panic.
        #[test]
        fn any_query_gives_a_range_or_names_a_parameter(query in any_query(), clock in any::<u64>()) {
            let now = UNIX_EPOCH.checked_add(Duration::from_secs(clock % (LATEST_SECONDS * 2))).unwrap_or(UNIX_EPOCH);
            match parse_usage_query(&query, now) {
                Ok(parsed) => {
                    prop_assert!(parsed.from <= parsed.to);
                    prop_assert!(0 <= parsed.from_ms() && parsed.to_ms() <= (LATEST_SECONDS as i64 + 1) * 1000);
                    prop_assert!(parsed.from_rfc3339().len() == 24 && parsed.to_rfc3339().len() == 24);
                }
                Err(error) => {
                    prop_assert!(["group_by", "from", "to", "query"].contains(&error.param), "{error:?}");
                    let body = ApiError::invalid(error.param, error.message.clone()).body();
                    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    prop_assert_eq!(&body["error"]["param"], error.param);
                    prop_assert_eq!(&body["error"]["code"], "invalid_parameter");
                }
            }
            match parse_series_query(&query, now) {
                Ok(parsed) => {
                    let span = parsed.range().to_ms() - parsed.range().from_ms();
                    prop_assert!(parsed.bucket_ms() >= 60_000 && parsed.bucket_ms() % 60_000 == 0);
                    prop_assert!(span / parsed.bucket_ms() <= 1_500, "{span} {}", parsed.bucket_ms());
                    prop_assert!((1..=50).contains(&parsed.limit()));
                }
                Err(error) => {
                    prop_assert!(
                        ["group_by", "from", "to", "bucket", "limit", "query"].contains(&error.param),
                        "{error:?}"
                    );
                    let body = ApiError::invalid(error.param, error.message.clone()).body();
                    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    prop_assert_eq!(&body["error"]["param"], error.param);
                    prop_assert_eq!(&body["error"]["code"], "invalid_parameter");
                }
            }
        }
    }
}
