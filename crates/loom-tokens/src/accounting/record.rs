//! One request's usage: who, what, how many tokens, what it cost, how it went.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// The most tokens one record counts of each kind (2^32 - 1): far above any model's
/// context, and low enough that 4 billion records still add up within a `u64` (the
/// Prometheus counters and the ledger's sums cannot wrap).
pub const MAX_RECORD_TOKENS: u64 = u32::MAX as u64;

/// Where the token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// The provider reported them.
    Reported,
    /// Loom counted them (exact tokenizer) because the provider did not report.
    Counted,
    /// Loom estimated them (no exact tokenizer for this model).
    Estimated,
}

impl UsageSource {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Reported => "reported",
            UsageSource::Counted => "counted",
            UsageSource::Estimated => "estimated",
        }
    }
}

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered completely.
    Ok,
    /// Failed (the status says how).
    Error,
    /// The client went away before the answer was complete.
    Cancelled,
    /// Refused by Loom before any provider was asked (a rate limit, a budget, a
    /// security check); [`UsageRecord::refusal`] says which.
    Refused,
}

impl Outcome {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Refused => "refused",
        }
    }
}

/// The usage of one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRecord {
    /// Request id.
    pub request_id: Arc<str>,
    /// When the request arrived.
    #[serde(with = "unix_millis")]
    pub time: SystemTime,
    /// Virtual key id, when authenticated.
    pub key_id: Option<Arc<str>>,
    /// End user.
    pub user: Option<Arc<str>>,
    /// Team.
    pub team: Option<Arc<str>>,
    /// Route id.
    pub route: Option<Arc<str>>,
    /// Provider that answered (or failed).
    pub provider: Option<Arc<str>>,
    /// Model the client asked for.
    pub model_requested: String,
    /// Model that answered.
    pub model_served: Option<String>,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Input tokens read from the provider's cache.
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// Where the counts came from.
    pub source: UsageSource,
    /// Cost in USD.
    pub cost: f64,
    /// What a cache hit would have cost from its provider (0 unless `cache_hit`).
    #[serde(default)]
    pub saved_cost: f64,
    /// Time until the answer was complete (or the request ended).
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Time until the first byte of the answer (streams: the first chunk).
    #[serde(with = "opt_millis")]
    pub time_to_first_byte: Option<Duration>,
    /// HTTP status the client saw (200 for answers, the error status otherwise).
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether the answer came from Loom's cache.
    pub cache_hit: bool,
    /// Whether the answer was streamed.
    pub streamed: bool,
    /// Why Loom refused the request (e.g. `rate_limit:team:requests`), when it did.
    pub refusal: Option<Arc<str>>,
    /// The security checks that acted on the request and let it go on, with their
    /// actions (e.g. `injection:flag, pii:redact`).
    pub guard: Option<Arc<str>>,
}

impl UsageRecord {
    /// Clamps the token counts to [`MAX_RECORD_TOKENS`] and a cost that is not a finite
    /// number to 0: whatever an upstream reports or an estimate claims, no record can
    /// overflow a sum.
    pub fn clamp_to_bounds(&mut self) {
        for tokens in [
            &mut self.input_tokens,
            &mut self.output_tokens,
            &mut self.cached_tokens,
            &mut self.reasoning_tokens,
        ] {
            *tokens = (*tokens).min(MAX_RECORD_TOKENS);
        }
        if !self.cost.is_finite() {
            self.cost = 0.0;
        }
    }
}

/// Milliseconds since the Unix epoch (0 before it, `i64::MAX` past what an `i64` holds).
pub fn unix_millis_of(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

mod unix_millis {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(super::unix_millis_of(*time))
    }
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis() as u64)
    }
}

mod opt_millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_some(&(duration.as_millis() as u64)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    /// A plain record for tests.
    pub(crate) fn sample_record() -> UsageRecord {
        UsageRecord {
            request_id: Arc::from("r"),
            time: SystemTime::UNIX_EPOCH,
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
            source: UsageSource::Reported,
            cost: 0.0,
            latency: Duration::ZERO,
            time_to_first_byte: None,
            status: 200,
            outcome: Outcome::Ok,
            saved_cost: 0.0,
            cache_hit: false,
            streamed: false,
            refusal: None,
            guard: None,
        }
    }

    #[test]
    fn clamping_bounds_tokens_and_cost() {
        let mut record = UsageRecord {
            request_id: Arc::from("r"),
            time: SystemTime::UNIX_EPOCH,
            key_id: None,
            user: None,
            team: None,
            route: None,
            provider: None,
            model_requested: "m".to_owned(),
            model_served: None,
            input_tokens: u64::MAX,
            output_tokens: MAX_RECORD_TOKENS + 1,
            cached_tokens: MAX_RECORD_TOKENS,
            reasoning_tokens: 7,
            source: UsageSource::Reported,
            cost: f64::NAN,
            latency: Duration::ZERO,
            time_to_first_byte: None,
            status: 200,
            outcome: Outcome::Ok,
            saved_cost: 0.0,
            cache_hit: false,
            streamed: false,
            refusal: None,
            guard: None,
        };
        record.clamp_to_bounds();
        assert_eq!(
            (record.input_tokens, record.output_tokens, record.cached_tokens, record.reasoning_tokens),
            (MAX_RECORD_TOKENS, MAX_RECORD_TOKENS, MAX_RECORD_TOKENS, 7)
        );
        assert_eq!(record.cost, 0.0);
        record.cost = f64::INFINITY;
        record.clamp_to_bounds();
        assert_eq!(record.cost, 0.0);
        record.cost = 0.25;
        record.clamp_to_bounds();
        assert_eq!(record.cost, 0.25);
    }

    #[test]
    fn times_past_i64_milliseconds_saturate() {
        assert_eq!(unix_millis_of(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_millis_of(SystemTime::UNIX_EPOCH + Duration::from_millis(1500)), 1500);
    }
}
