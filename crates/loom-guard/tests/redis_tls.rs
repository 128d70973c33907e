//! GuardState over `rediss://`: a TLS-only redis-server with a self-signed CA, reached with
//! the redis crate's `#insecure` (no certificate verification), decides exactly as over
//! `redis://`; without `#insecure` a certificate from an unknown CA is refused; `rediss://`
//! to a plain server fails with a clear, password-free error.

use std::time::{Duration, SystemTime};

use loom_core::Secret;
use loom_guard::{
    Backend, BudgetCheck, BudgetScope, BudgetUnit, BudgetWindow, Decision, GuardError, GuardState,
    LimitCheck, LimitKind, Refusal, Scope, StateConfig,
};
use loom_test_support::RedisServer;

const TTL: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);

fn state(url: String, timeout: Duration) -> GuardState {
    let config = StateConfig {
        backend: Backend::Redis,
        url: Some(Secret::new(url)),
        timeout,
        ..StateConfig::default()
    };
    GuardState::from_config(&config).unwrap()
}

/// Two requests a minute, then a 100-token budget reserving 60 a request: what each
/// acquire decided, in words.
async fn decisions(state: &GuardState) -> Vec<String> {
    let rpm = [LimitCheck {
        bucket: "rl:key:tls:rpm:2".to_owned(),
        scope: Scope::Key,
        kind: LimitKind::Requests,
        limit: 2,
        period: Duration::from_secs(60),
        burst: 2,
        cost: 1,
    }];
    let budget = [BudgetCheck {
        bucket: "budget:team:tls".to_owned(),
        scope: BudgetScope::Team,
        name: "team tls daily tokens".to_owned(),
        unit: BudgetUnit::Tokens,
        limit: 100,
        reserve: 60,
        resets_at: SystemTime::now() + HOUR,
        ttl: HOUR,
        window: BudgetWindow { slot: 0, slots: 1 },
    }];
    let mut seen = Vec::new();
    for (limits, budgets) in [(&rpm[..], &[][..]), (&rpm, &[]), (&rpm, &[]), (&[], &budget), (&[], &budget)] {
        seen.push(match state.acquire(limits, budgets, TTL).await.unwrap() {
            Decision::Allowed { limits, .. } => {
                format!(
                    "allowed, remaining {:?}",
                    limits.iter().map(|limit| limit.remaining).collect::<Vec<_>>()
                )
            }
            Decision::Refused(Refusal::RateLimited { check_index, too_large, .. }) => {
                format!("rate limited by check {check_index}, too large: {too_large}")
            }
            Decision::Refused(Refusal::OverBudget { check_index, in_flight, limit, .. }) => {
                format!("over budget {check_index}: {in_flight} of {limit} in flight")
            }
        });
    }
    seen
}

const EXPECTED: [&str; 5] = [
    "allowed, remaining [1]",
    "allowed, remaining [0]",
    "rate limited by check 0, too large: false",
    "allowed, remaining []",
    "over budget 0: 60 of 100 in flight",
];

#[tokio::test]
async fn rediss_with_insecure_decides_exactly_as_plain_redis() {
    let plain = RedisServer::start();
    assert_eq!(decisions(&state(plain.url(), Duration::from_secs(2))).await, EXPECTED);

    let tls = RedisServer::start_tls();
    assert!(tls.url().starts_with("rediss://127.0.0.1:"), "{}", tls.url());
    assert_eq!(decisions(&state(format!("{}#insecure", tls.url()), Duration::from_secs(2))).await, EXPECTED);
    // The buckets are on the TLS server: the limit's TAT and the budget's reservation (nothing
    // settled, so no spent hash).
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut tls.connection()).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        ["{loom}:held-exp:budget:team:tls", "{loom}:held:budget:team:tls", "{loom}:rl:key:tls:rpm:2"]
    );
}

#[tokio::test]
async fn rediss_to_a_plain_server_fails_naming_the_state_backend_without_the_password() {
    let plain = RedisServer::start();
    let url = format!("rediss://:hunter2@127.0.0.1:{}/#insecure", plain.port());
    let state = state(url, Duration::from_millis(300));
    // The server reads the TLS hello as an inline command whose newline never comes (its
    // search stops at the hello's first zero byte), so the handshake never completes: a
    // timeout, as for any Redis that does not answer.
    let error = state.ping().await.unwrap_err();
    assert_eq!(error, GuardError::Backend("Redis did not answer within 300ms".to_owned()));
    assert_eq!(error.to_string(), "state backend: Redis did not answer within 300ms");
    // The decisions fail the same way (the gateway then applies `on_state_error`).
    let rpm = [LimitCheck {
        bucket: "rl:key:plain:rpm:1".to_owned(),
        scope: Scope::Key,
        kind: LimitKind::Requests,
        limit: 1,
        period: Duration::from_secs(60),
        burst: 1,
        cost: 1,
    }];
    let error = state.acquire(&rpm, &[], TTL).await.unwrap_err();
    assert_eq!(error.to_string(), "state backend: Redis did not answer within 300ms");
}

#[tokio::test]
async fn rediss_without_insecure_refuses_a_certificate_from_an_unknown_ca() {
    let tls = RedisServer::start_tls();
    let state = state(tls.url(), Duration::from_secs(2));
    let error = state.ping().await.unwrap_err();
    assert_eq!(error.to_string(), "state backend: invalid peer certificate: UnknownIssuer");
}
