//! Per-provider state shared by every router: a passive circuit breaker and the
//! statistics the admin API and the `latency` strategy read.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::HealthConfig;

/// Weight of a new latency sample in the moving average.
const EWMA_ALPHA: f64 = 0.3;

/// Where a provider's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests skip the provider until the cooldown ends.
    Open,
    /// The cooldown ended: one probe request decides.
    HalfOpen,
}

impl BreakerState {
    /// Every state, in the order the metrics list them.
    pub const ALL: [BreakerState; 3] = [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen];

    /// The state's name, as the admin API and the metrics write it.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

struct Breaker {
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

/// How a provider has been doing.
pub struct ProviderState {
    name: String,
    health: HealthConfig,
    breaker: Mutex<Breaker>,
    requests: AtomicU64,
    failures: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    /// Moving average of time to first byte, microseconds (0: no sample yet).
    latency_ewma_us: AtomicU64,
    /// Sum of total latencies, microseconds, for the admin API's average.
    latency_total_us: AtomicU64,
    last_tried: Mutex<Option<Instant>>,
}

/// A point-in-time view of a provider, for the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderSnapshot {
    /// Provider name.
    pub name: String,
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: &'static str,
    /// Requests sent.
    pub requests: u64,
    /// Input tokens of its requests.
    pub tokens_in: u64,
    /// Output tokens of its requests.
    pub tokens_out: u64,
    /// Average latency (to the last byte), milliseconds.
    pub avg_latency_ms: u64,
    /// Failed requests.
    pub failures: u64,
    /// Breaker details.
    pub breaker: BreakerSnapshot,
}

/// The breaker part of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    /// Closed, open or half-open.
    pub state: BreakerState,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Milliseconds until an open breaker lets a probe through.
    pub retry_in_ms: Option<u64>,
}

impl ProviderState {
    /// Fresh state for provider `name`.
    pub fn new(name: &str, health: HealthConfig) -> Self {
        ProviderState {
            name: name.to_owned(),
            health,
            breaker: Mutex::new(Breaker { consecutive_failures: 0, opened_at: None, probing: false }),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
            latency_ewma_us: AtomicU64::new(0),
            latency_total_us: AtomicU64::new(0),
            last_tried: Mutex::new(None),
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        let breaker = self.breaker();
        match breaker.opened_at {
            None => BreakerState::Closed,
            Some(opened) if opened.elapsed() < self.health.cooldown => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may go to this provider now; in half-open state only one
    /// probe is let through at a time.
    pub fn admits(&self) -> bool {
        let mut breaker = self.breaker();
        match breaker.opened_at {
            None => true,
            Some(opened) if opened.elapsed() < self.health.cooldown => false,
            Some(_) if breaker.probing => false,
            Some(_) => {
                breaker.probing = true;
                true
            }
        }
    }

    /// Notes that a request is being sent.
    pub fn on_attempt(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self.last_tried.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }

    /// Notes a success and how long the first byte took.
    pub fn on_success(&self, first_byte: Duration) {
        let mut breaker = self.breaker();
        breaker.consecutive_failures = 0;
        breaker.opened_at = None;
        breaker.probing = false;
        drop(breaker);
        let sample = first_byte.as_micros().max(1) as u64;
        let previous = self.latency_ewma_us.load(Ordering::Relaxed);
        let next = if previous == 0 {
            sample
        } else if sample > previous {
            // Peak-sensitive: a slower sample counts at once, recovery is gradual.
            sample
        } else {
            (EWMA_ALPHA * sample as f64 + (1.0 - EWMA_ALPHA) * previous as f64) as u64
        };
        self.latency_ewma_us.store(next.max(1), Ordering::Relaxed);
    }

    /// Notes a failure; enough in a row open the breaker.
    pub fn on_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut breaker = self.breaker();
        breaker.consecutive_failures += 1;
        let reopen = breaker.probing;
        if reopen || breaker.consecutive_failures >= self.health.failure_threshold {
            if breaker.opened_at.is_none() || reopen {
                tracing::warn!(provider = %self.name, failures = breaker.consecutive_failures, "circuit breaker opened");
            }
            breaker.opened_at = Some(Instant::now());
            breaker.probing = false;
        }
    }

    /// Adds a finished request's total latency (for the admin API's average).
    pub fn on_complete(&self, total: Duration) {
        self.latency_total_us.fetch_add(total.as_micros() as u64, Ordering::Relaxed);
    }

    /// Adds tokens of a finished request.
    pub fn add_tokens(&self, input: u64, output: u64) {
        self.tokens_in.fetch_add(input, Ordering::Relaxed);
        self.tokens_out.fetch_add(output, Ordering::Relaxed);
    }

    /// Peak-EWMA time to first byte; `None` before the first success.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_ewma_us.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    /// Whether the provider has not been tried for `probe_interval`.
    pub fn due_for_probe(&self) -> bool {
        let last = *self.last_tried.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        last.is_none_or(|last| last.elapsed() >= self.health.probe_interval)
    }

    /// A snapshot for the admin API.
    pub fn snapshot(&self) -> ProviderSnapshot {
        let state = self.breaker_state();
        let breaker = self.breaker();
        let consecutive_failures = breaker.consecutive_failures;
        let retry_in_ms = match (state, breaker.opened_at) {
            (BreakerState::Open, Some(opened)) => {
                Some(self.health.cooldown.saturating_sub(opened.elapsed()).as_millis() as u64)
            }
            _ => None,
        };
        drop(breaker);
        let requests = self.requests.load(Ordering::Relaxed);
        let failures = self.failures.load(Ordering::Relaxed);
        let completed = requests.saturating_sub(failures).max(1);
        let status = match state {
            BreakerState::Open => "unhealthy",
            BreakerState::HalfOpen => "degraded",
            BreakerState::Closed if consecutive_failures > 0 => "degraded",
            BreakerState::Closed => "healthy",
        };
        ProviderSnapshot {
            name: self.name.clone(),
            status,
            requests,
            tokens_in: self.tokens_in.load(Ordering::Relaxed),
            tokens_out: self.tokens_out.load(Ordering::Relaxed),
            avg_latency_ms: self.latency_total_us.load(Ordering::Relaxed) / completed / 1000,
            failures,
            breaker: BreakerSnapshot { state, consecutive_failures, retry_in_ms },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_the_admin_apis() {
        for state in BreakerState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    fn health() -> HealthConfig {
        HealthConfig {
            failure_threshold: 2,
            cooldown: Duration::from_secs(10),
            probe_interval: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_then_a_probe_closes_it() {
        let state = ProviderState::new("p", health());
        state.on_failure();
        assert!(state.admits());
        assert_eq!(state.snapshot().status, "degraded");
        state.on_failure();
        assert_eq!(state.breaker_state(), BreakerState::Open);
        assert!(!state.admits());
        assert_eq!(state.snapshot().status, "unhealthy");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(state.breaker_state(), BreakerState::HalfOpen);
        assert!(state.admits(), "one probe");
        assert!(!state.admits(), "only one probe at a time");
        state.on_success(Duration::from_millis(5));
        assert_eq!(state.breaker_state(), BreakerState::Closed);
        assert_eq!(state.snapshot().status, "healthy");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_the_breaker() {
        let state = ProviderState::new("p", health());
        state.on_failure();
        state.on_failure();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(state.admits());
        state.on_failure();
        assert_eq!(state.breaker_state(), BreakerState::Open);
    }
}
