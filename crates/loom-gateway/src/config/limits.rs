//! Ranges numeric config values must fall in, so no value panics or exhausts the gateway.
//!
//! Durations are added to `Instant`s (deadlines, sleeps), which panics on overflow, so
//! every duration has an upper bound; keys where 0 makes no sense also have a lower one.
//! docs/configuration.md ("Limits and ranges") lists every bound.

use std::time::Duration;

use humantime::format_duration;

use super::error::ConfigError;

type Result = std::result::Result<(), ConfigError>;

/// An inclusive range a duration key must fall in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationRange {
    min: Duration,
    max: Duration,
}

/// The lower bound of durations that must be greater than 0.
const ABOVE_ZERO: Duration = Duration::from_nanos(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Timeouts, breaker cooldowns and probe intervals: 0 would fail or skip everything at
/// once, and a wait over a day is a mistake.
pub(crate) const TIMEOUT: DurationRange = DurationRange { min: ABOVE_ZERO, max: DAY };
/// Delays and backoffs (0 means none) and the ledger's commit window.
pub(crate) const DELAY: DurationRange = DurationRange { min: Duration::ZERO, max: HOUR };
/// The streaming batch window (0 sends every chunk at once); a chunk held longer than a
/// minute stalls the stream past any client's patience.
pub(crate) const STREAM_BATCH: DurationRange = DurationRange { min: Duration::ZERO, max: MINUTE };

/// How often upstream model lists are fetched: more than once a second is load on the
/// upstream for nothing, less than once a day leaves lists stale.
pub(crate) const MODELS_REFRESH: DurationRange = DurationRange { min: Duration::from_secs(1), max: DAY };

/// How long a stored Responses conversation lives: Redis expires keys in whole seconds,
/// and a month is far past any client's conversation.
pub(crate) const RESPONSES_TTL: DurationRange =
    DurationRange { min: Duration::from_secs(1), max: Duration::from_secs(30 * 24 * 60 * 60) };

/// Checks that the duration at `key` lies in `range`.
pub(crate) fn check_duration(key: &str, value: Duration, range: DurationRange) -> Result {
    if value < range.min {
        let message = if range.min == ABOVE_ZERO {
            "must be greater than 0".to_owned()
        } else {
            format!("must be at least {}", format_duration(range.min))
        };
        return Err(ConfigError::invalid(key, message));
    }
    if value > range.max {
        return Err(ConfigError::invalid(
            key,
            format!("must be at most {}, not {}", format_bound(range.max), format_duration(value)),
        ));
    }
    Ok(())
}

/// Checks the durations `prefix.name` of a table of `(name, value, range)`; one error
/// for each that is out of its range, in table order.
pub(crate) fn check_durations(prefix: &str, table: &[(&str, Duration, DurationRange)]) -> Vec<ConfigError> {
    table
        .iter()
        .filter_map(|(name, value, range)| check_duration(&format!("{prefix}.{name}"), *value, *range).err())
        .collect()
}

/// Checks that the count at `key` lies in `min..=max`.
pub(crate) fn check_count(key: &str, value: u64, min: u64, max: u64) -> Result {
    if value < min {
        let message =
            if min == 1 { "must be greater than 0".to_owned() } else { format!("must be at least {min}") };
        return Err(ConfigError::invalid(key, message));
    }
    if value > max {
        return Err(ConfigError::invalid(key, format!("must be at most {max}, not {value}")));
    }
    Ok(())
}

/// Largest `server.max_body_bytes`: 1 GiB (each request body is held in memory whole).
pub(crate) const MAX_BODY_BYTES: u64 = 1024 * 1024 * 1024;
/// Largest `server.max_connections`: each connection holds a descriptor and buffers.
pub(crate) const MAX_CONNECTIONS: u64 = 1_000_000;
/// Largest `server.max_buffered_body_bytes`: 64 GiB.
pub(crate) const MAX_BUFFERED_BODY_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// Largest `server.http2_max_concurrent_streams`.
pub(crate) const MAX_HTTP2_STREAMS: u64 = 10_000;
/// Largest `pool_max_idle_per_host`: each idle connection holds a socket.
pub(crate) const MAX_POOL_IDLE_PER_HOST: u64 = 16_384;
/// Largest `failover.max_retries`: more retries only stretch a failing request.
pub(crate) const MAX_RETRIES: u64 = 10;
/// Largest routing `weight`: shares are relative, so more resolution buys nothing.
pub(crate) const MAX_WEIGHT: u64 = 1_000_000;
/// Largest `token_accounting.max_aggregate_bytes`: 16 GiB; more is a typo, and the
/// ledger is the place for that much history.
pub(crate) const MAX_AGGREGATE_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// Largest `responses.max_conversations`: each entry costs an index slot in memory.
pub(crate) const MAX_CONVERSATIONS: u64 = 10_000_000;
/// Largest `responses.max_bytes`: 64 GiB.
pub(crate) const MAX_CONVERSATIONS_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// Largest `responses.max_conversation_bytes`: 1 GiB (one conversation is read whole).
pub(crate) const MAX_CONVERSATION_BYTES: u64 = 1024 * 1024 * 1024;

/// Largest price per 1,000 tokens: far above any real one, and small enough that a cost
/// of billions of tokens stays finite.
pub(crate) const MAX_PRICE: f64 = 1_000_000.0;

/// Checks an optional price per 1,000 tokens: a number from 0 to [`MAX_PRICE`].
pub(crate) fn check_price(key: &str, price: Option<f64>) -> Result {
    match price {
        Some(price) if !price.is_finite() || price < 0.0 => {
            Err(ConfigError::invalid(key, "must be a price of 0 or more"))
        }
        Some(price) if price > MAX_PRICE => {
            Err(ConfigError::invalid(key, format!("must be a price of at most {MAX_PRICE}")))
        }
        _ => Ok(()),
    }
}

/// Threads per available CPU `server.workers` may ask for.
pub(crate) const WORKERS_PER_CPU: usize = 8;
/// Most threads `server.workers` may ask for, however many CPUs there are.
pub(crate) const MAX_WORKERS: usize = 1024;

/// The most `server.workers` allowed on a machine with `cpus` CPUs.
pub(crate) fn max_workers(cpus: usize) -> usize {
    cpus.saturating_mul(WORKERS_PER_CPU).min(MAX_WORKERS)
}

/// A bound written as the whole unit it is (`24h`, `1h`, `1m`).
fn format_bound(bound: Duration) -> String {
    let seconds = bound.as_secs();
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format_duration(bound).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result) -> String {
        result.err().map(|error| error.to_string()).unwrap_or_default()
    }

    #[test]
    fn durations() {
        assert!(check_duration("k", Duration::from_secs(1), TIMEOUT).is_ok());
        assert!(check_duration("k", DAY, TIMEOUT).is_ok());
        assert!(check_duration("k", Duration::ZERO, DELAY).is_ok());
        assert_eq!(message(check_duration("k", Duration::ZERO, TIMEOUT)), "k: must be greater than 0");
        assert_eq!(
            message(check_duration("k", DAY + Duration::from_secs(1), TIMEOUT)),
            "k: must be at most 24h, not 1day 1s"
        );
        assert_eq!(message(check_duration("k", HOUR * 2, DELAY)), "k: must be at most 1h, not 2h");
        assert_eq!(message(check_duration("k", HOUR, STREAM_BATCH)), "k: must be at most 1m, not 1h");
        assert_eq!(
            message(check_duration("k", Duration::from_millis(500), MODELS_REFRESH)),
            "k: must be at least 1s"
        );
        let table =
            [("ok", Duration::ZERO, DELAY), ("bad", Duration::ZERO, TIMEOUT), ("worse", HOUR * 2, DELAY)];
        let errors: Vec<String> = check_durations("a.b", &table).iter().map(ToString::to_string).collect();
        assert_eq!(errors, ["a.b.bad: must be greater than 0", "a.b.worse: must be at most 1h, not 2h"]);
    }

    #[test]
    fn counts_prices_and_workers() {
        assert!(check_count("k", 0, 0, 10).is_ok());
        assert_eq!(message(check_count("k", 0, 1, 10)), "k: must be greater than 0");
        assert_eq!(message(check_count("k", 1, 2, 10)), "k: must be at least 2");
        assert_eq!(message(check_count("k", 11, 0, 10)), "k: must be at most 10, not 11");
        assert!(check_price("k", Some(0.0)).is_ok() && check_price("k", None).is_ok());
        assert_eq!(message(check_price("k", Some(f64::NAN))), "k: must be a price of 0 or more");
        assert_eq!(message(check_price("k", Some(2e6))), "k: must be a price of at most 1000000");
        assert_eq!((max_workers(1), max_workers(2), max_workers(200)), (8, 16, 1024));
    }
}
