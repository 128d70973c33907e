//! `GET /ai/usage`: usage grouped by user, team, key, model or provider over a time range.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use loom_tokens::accounting::{Dimension, UsageGroup};
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
    let groups = tokio::task::spawn_blocking(move || usage.report(group_by, from_ms, to_ms))
        .await
        .map_err(|error| ApiError::internal(format!("usage report failed: {error}")))?
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let report = UsageReport { group_by, from: query.from_rfc3339(), to: query.to_rfc3339(), groups };
    serde_json::to_vec(&report).map(Bytes::from).map_err(|error| ApiError::internal(error.to_string()))
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
    /// The parameter: `group_by`, `from`, `to`, or `query` for an unknown one.
    pub param: &'static str,
}

/// Parses the query string of `GET /ai/usage`, with `now` the default `to`. Never
/// panics: every time is checked against 1970..=9999 before any arithmetic, and each
/// parameter may appear once.
pub fn parse_usage_query(query: &str, now: SystemTime) -> Result<UsageQuery, QueryError> {
    let mut group_by = None;
    let mut from = None;
    let mut to = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "group_by" => set_once(&mut group_by, "group_by", &value, parse_dimension)?,
            "from" => set_once(&mut from, "from", &value, parse_time)?,
            "to" => set_once(&mut to, "to", &value, parse_time)?,
            other => {
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

    /// Query strings as clients and fuzzers write them: known and unknown keys, numbers
    /// of any size, RFC 3339-ish times with any year, percent-escapes and separators.
    fn any_query() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("group_by".to_owned()),
            Just("from".to_owned()),
            Just("to".to_owned()),
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
        }
    }
}
