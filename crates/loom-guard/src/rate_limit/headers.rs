//! OpenAI's rate-limit headers, and the errors of refused requests.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use loom_core::{ErrorKind, LoomError};

use crate::budgets::BudgetCheck;
use crate::limits::{LimitCheck, LimitKind, Subject};
use crate::state::LimitStatus;
use crate::{BudgetUnit, time};

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");
const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");

/// The `x-ratelimit-*` headers for these limits: per kind, the one with the least left.
pub(super) fn rate_limit_headers(statuses: &[LimitStatus]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    write_rate_limit_headers(&mut headers, statuses, false);
    headers
}

/// Writes the `x-ratelimit-*` headers for these limits into `headers`: per kind, the one
/// with the least left. With `keep_tighter`, a kind `headers` already shows with less
/// left (a provider's limit, written below) is kept.
pub(super) fn write_rate_limit_headers(
    headers: &mut HeaderMap,
    statuses: &[LimitStatus],
    keep_tighter: bool,
) {
    for (kind, [limit, remaining, reset]) in [
        (LimitKind::Requests, [LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS]),
        (LimitKind::Tokens, [LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS]),
    ] {
        let tightest =
            statuses.iter().filter(|status| status.kind == kind).min_by_key(|status| status.remaining);
        let Some(status) = tightest else { continue };
        if keep_tighter && left(headers, &remaining).is_some_and(|theirs| theirs <= status.remaining) {
            continue;
        }
        headers.insert(limit, HeaderValue::from(status.limit));
        headers.insert(remaining, HeaderValue::from(status.remaining));
        match HeaderValue::from_str(&reset_text(status.reset_after)) {
            Ok(value) => headers.insert(reset, value),
            Err(_) => headers.remove(reset),
        };
    }
}

/// What a `x-ratelimit-remaining-*` header says is left.
fn left(headers: &HeaderMap, remaining: &HeaderName) -> Option<u64> {
    headers.get(remaining).and_then(|value| value.to_str().ok()).and_then(|text| text.parse().ok())
}

/// A wait as OpenAI writes it: `20ms`, `6s`, `1.5s`, `6m0s`, `1h2m3s`.
pub(super) fn reset_text(wait: Duration) -> String {
    let millis = wait.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let seconds = wait.as_secs();
    if seconds < 60 {
        let text = format!("{:.3}", wait.as_secs_f64());
        return format!("{}s", text.trim_end_matches('0').trim_end_matches('.'));
    }
    let (hours, minutes, seconds) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if hours > 0 { format!("{hours}h{minutes}m{seconds}s") } else { format!("{minutes}m{seconds}s") }
}

/// The 429 of a request a rate limit refused.
pub(super) fn rate_limited(
    check: Option<&LimitCheck>,
    subject: &Subject,
    retry_after: Duration,
    too_large: bool,
    statuses: &[LimitStatus],
) -> LoomError {
    let mut headers = rate_limit_headers(statuses);
    let message = match check {
        Some(check) => {
            let unit = match check.kind {
                LimitKind::Requests => "requests",
                LimitKind::Tokens => "tokens",
            };
            let whose = match subject.value(check.scope) {
                Some(value) if check.scope != crate::Scope::Global => {
                    format!("{} `{value}`", check.scope.as_str())
                }
                _ => check.scope.as_str().to_owned(),
            };
            let per = reset_text(check.period);
            if too_large {
                format!(
                    "Request too large: it needs {} {unit}, more than the limit for {whose} ({} {unit} per {per}) allows at once",
                    check.cost, check.limit
                )
            } else {
                format!("Rate limit reached for {whose}: {} {unit} per {per}", check.limit)
            }
        }
        None => "Rate limit reached".to_owned(),
    };
    // A request that can never fit gets no Retry-After: retrying cannot help.
    if !too_large {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        headers.insert(
            RETRY_AFTER_MS,
            // Rounded up: a client that waits exactly this long must not arrive early.
            HeaderValue::from(u64::try_from(retry_after.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)),
        );
    }
    LoomError::new(ErrorKind::RateLimited, message).with_code("rate_limit_exceeded").with_headers(headers)
}

/// The 429 of a request a budget refused.
pub(super) fn over_budget(check: Option<&BudgetCheck>, spent: u64, limit: u64) -> LoomError {
    let message = match check {
        Some(check) => {
            let amount = |value: u64| match check.unit {
                BudgetUnit::NanoUsd => format!("${:.2}", value as f64 / 1e9),
                BudgetUnit::Tokens => format!("{value} tokens"),
            };
            format!(
                "Budget exceeded: {} ({} of {} used); it resets at {}",
                check.name,
                amount(spent),
                amount(limit),
                time::format_rfc3339(check.resets_at)
            )
        }
        None => "Budget exceeded".to_owned(),
    };
    LoomError::new(ErrorKind::QuotaExceeded, message).with_code("insufficient_quota")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(limit: u64, remaining: u64, reset_ms: u64) -> LimitStatus {
        LimitStatus {
            kind: LimitKind::Requests,
            limit,
            remaining,
            reset_after: Duration::from_millis(reset_ms),
        }
    }

    fn shown(headers: &HeaderMap) -> [Option<&str>; 3] {
        [LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS]
            .map(|name| headers.get(name).and_then(|value| value.to_str().ok()))
    }

    #[test]
    fn written_headers_keep_the_limit_with_least_left_when_asked() {
        let provider = rate_limit_headers(&[requests(5, 1, 12_000)]);
        let mut headers = provider.clone();
        write_rate_limit_headers(&mut headers, &[requests(100, 40, 1000)], true);
        assert_eq!(shown(&headers), [Some("5"), Some("1"), Some("12s")]);
        write_rate_limit_headers(&mut headers, &[requests(100, 40, 1000)], false);
        assert_eq!(shown(&headers), [Some("100"), Some("40"), Some("1s")]);
        let mut headers = rate_limit_headers(&[requests(100, 90, 1000)]);
        write_rate_limit_headers(&mut headers, &[requests(5, 1, 12_000), requests(9, 3, 10)], true);
        assert_eq!(shown(&headers), [Some("5"), Some("1"), Some("12s")]);
        assert!(rate_limit_headers(&[]).is_empty());
    }

    #[test]
    fn waits_read_as_openai_writes_them() {
        assert_eq!(reset_text(Duration::from_millis(20)), "20ms");
        assert_eq!(reset_text(Duration::from_secs(6)), "6s");
        assert_eq!(reset_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
        assert_eq!(reset_text(Duration::from_secs(3723)), "1h2m3s");
    }
}
