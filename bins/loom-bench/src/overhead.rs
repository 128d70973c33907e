//! Loom's own account of what it adds to a request: its `loom_ai_overhead_seconds`
//! histogram, read from its admin server before and after a run.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::header::HOST;
use http_body_util::{BodyExt, Full};
use serde::Serialize;

use crate::load;

/// The histogram's name in the Prometheus text.
const METRIC: &str = "loom_ai_overhead_seconds";
/// The benchmark's provider (see `loom_child::config`).
const PROVIDER_LABEL: &str = "provider=\"openai\"";
/// Longest a scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// One reading of the histogram's series for the benchmark's provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverheadHistogram {
    /// Upper bounds (seconds) and cumulative counts, in the order exposed.
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

/// What a run's requests spent in Loom by its own measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OverheadSummary {
    /// Requests Loom answered in the run.
    pub requests: u64,
    /// Mean overhead, µs.
    pub mean_us: f64,
    /// Upper bound of the bucket holding the median, µs (`None`: above every bound).
    pub p50_at_most_us: Option<f64>,
    /// Upper bound of the bucket holding the 99th percentile, µs.
    pub p99_at_most_us: Option<f64>,
}

impl OverheadHistogram {
    /// The series in Prometheus text `exposition`; an error if it is not there.
    pub fn parse(exposition: &str) -> Result<Self, String> {
        let mut histogram = OverheadHistogram::default();
        let (mut has_sum, mut has_count) = (false, false);
        for line in exposition.lines() {
            let Some(rest) = line.strip_prefix(METRIC) else { continue };
            let Some((series, value)) = rest.rsplit_once(' ') else { continue };
            if !series.contains(PROVIDER_LABEL) {
                continue;
            }
            let bad = || format!("unreadable line `{line}`");
            if series.starts_with("_bucket{") {
                let bound = series
                    .split_once("le=\"")
                    .and_then(|(_, bound)| bound.split_once('"'))
                    .map(|(bound, _)| bound)
                    .ok_or_else(bad)?;
                let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().map_err(|_| bad())? };
                histogram.buckets.push((bound, value.parse().map_err(|_| bad())?));
            } else if series.starts_with("_sum{") {
                histogram.sum = value.parse().map_err(|_| bad())?;
                has_sum = true;
            } else if series.starts_with("_count{") {
                histogram.count = value.parse().map_err(|_| bad())?;
                has_count = true;
            }
        }
        if histogram.buckets.is_empty() || !has_sum || !has_count {
            return Err(format!("no `{METRIC}{{{PROVIDER_LABEL}}}` histogram in the metrics"));
        }
        Ok(histogram)
    }

    /// What was recorded since `before` (an earlier reading of the same series).
    pub fn since(&self, before: &OverheadHistogram) -> OverheadHistogram {
        let earlier =
            |bound: f64| before.buckets.iter().find(|(b, _)| *b == bound).map_or(0, |(_, count)| *count);
        OverheadHistogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, count)| (bound, count.saturating_sub(earlier(bound))))
                .collect(),
            sum: (self.sum - before.sum).max(0.0),
            count: self.count.saturating_sub(before.count),
        }
    }

    /// Mean and bucket bounds of the median and 99th percentile; `None` without requests.
    pub fn summary(&self) -> Option<OverheadSummary> {
        if self.count == 0 {
            return None;
        }
        let at_most = |quantile: f64| {
            let rank = (quantile * self.count as f64).ceil() as u64;
            self.buckets
                .iter()
                .find(|(_, count)| *count >= rank)
                .and_then(|(bound, _)| bound.is_finite().then_some(bound * 1e6))
        };
        Some(OverheadSummary {
            requests: self.count,
            mean_us: self.sum / self.count as f64 * 1e6,
            p50_at_most_us: at_most(0.5),
            p99_at_most_us: at_most(0.99),
        })
    }
}

/// Reads the histogram from Loom's admin server at `admin`.
pub async fn read(admin: SocketAddr) -> Result<OverheadHistogram, String> {
    let scrape = async {
        let mut sender = load::connect(admin).await?;
        let request = Request::get("/metrics")
            .header(HOST, admin.to_string())
            .body(Full::new(Bytes::new()))
            .map_err(|err| format!("request: {err}"))?;
        let response = sender.send_request(request).await.map_err(|err| format!("GET /metrics: {err}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|err| format!("body: {err}"))?.to_bytes();
        if !status.is_success() {
            return Err(format!("GET /metrics: status {status}"));
        }
        OverheadHistogram::parse(&String::from_utf8_lossy(&body))
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, scrape).await.map_err(|_| "GET /metrics timed out".to_owned())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(buckets: [u64; 4], sum: f64) -> String {
        let count = buckets[3];
        format!(
            "# HELP loom_ai_overhead_seconds Loom's own time.\n\
             # TYPE loom_ai_overhead_seconds histogram\n\
             loom_ai_overhead_seconds_sum{{provider=\"openai\"}} {sum}\n\
             loom_ai_overhead_seconds_count{{provider=\"openai\"}} {count}\n\
             loom_ai_overhead_seconds_bucket{{le=\"0.000025\",provider=\"openai\"}} {}\n\
             loom_ai_overhead_seconds_bucket{{le=\"0.00005\",provider=\"openai\"}} {}\n\
             loom_ai_overhead_seconds_bucket{{le=\"0.0001\",provider=\"openai\"}} {}\n\
             loom_ai_overhead_seconds_bucket{{le=\"+Inf\",provider=\"openai\"}} {count}\n\
             loom_ai_overhead_seconds_sum{{provider=\"other\"}} 99.0\n\
             loom_ai_duration_seconds_sum{{provider=\"openai\"}} 7.0\n",
            buckets[0], buckets[1], buckets[2]
        )
    }

    #[test]
    fn a_run_is_the_difference_of_two_readings() {
        let before = OverheadHistogram::parse(&exposition([1, 2, 2, 2], 0.0001)).unwrap();
        let after = OverheadHistogram::parse(&exposition([1, 52, 100, 102], 0.0061)).unwrap();
        let run = after.since(&before).summary().unwrap();
        assert_eq!(run.requests, 100);
        assert!((run.mean_us - 60.0).abs() < 1e-6, "{run:?}");
        // 50 of 100 at most 50 µs, 98 at most 100 µs, two above every finite bound.
        assert_eq!(run.p50_at_most_us, Some(50.0));
        assert_eq!(run.p99_at_most_us, None);
    }

    #[test]
    fn no_requests_no_summary_and_a_missing_series_is_an_error() {
        let reading = OverheadHistogram::parse(&exposition([0, 0, 0, 0], 0.0)).unwrap();
        assert_eq!(reading.since(&reading).summary(), None);
        let error =
            OverheadHistogram::parse("loom_ai_duration_seconds_sum{provider=\"openai\"} 1\n").unwrap_err();
        assert!(error.contains("loom_ai_overhead_seconds"), "{error}");
    }
}
