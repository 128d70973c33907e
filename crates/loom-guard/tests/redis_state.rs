//! GuardState on a real redis-server: GCRA, budgets, atomicity across instances, the same
//! decisions as memory, bounded keys, and recovery after Redis restarts.

use std::time::{Duration, SystemTime};

use loom_core::Secret;
use loom_guard::{
    Backend, BudgetCheck, BudgetScope, BudgetUnit, BudgetWindow, Decision, GuardError, GuardState,
    LimitCheck, LimitKind, Refusal, Reservation, Scope, StateConfig,
};
use loom_test_support::RedisServer;

const TTL: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);

fn config(server: &RedisServer) -> StateConfig {
    StateConfig {
        backend: Backend::Redis,
        url: Some(Secret::new(server.url())),
        timeout: Duration::from_millis(300),
        ..StateConfig::default()
    }
}

async fn redis_state(server: &RedisServer) -> GuardState {
    GuardState::redis(&config(server)).unwrap()
}

fn limit(bucket: &str, kind: LimitKind, limit: u64, period: Duration, burst: u64, cost: u64) -> LimitCheck {
    LimitCheck { bucket: bucket.to_owned(), scope: Scope::Key, kind, limit, period, burst, cost }
}

fn budget(bucket: &str, limit: u64, reserve: u64) -> BudgetCheck {
    BudgetCheck {
        bucket: bucket.to_owned(),
        scope: BudgetScope::Team,
        name: "team eng daily tokens".to_owned(),
        unit: BudgetUnit::Tokens,
        limit,
        reserve,
        resets_at: SystemTime::now() + HOUR,
        ttl: HOUR,
        window: BudgetWindow { slot: 0, slots: 1 },
    }
}

fn allowed(decision: Decision) -> Reservation {
    match decision {
        Decision::Allowed { reservation, .. } => reservation,
        Decision::Refused(refusal) => panic!("refused: {refusal:?}"),
    }
}

#[tokio::test]
async fn ten_per_minute_allows_ten_then_asks_to_wait_about_six_seconds() {
    let server = RedisServer::start();
    let state = redis_state(&server).await;
    let rpm = [limit("rl:key:a:rpm:10", LimitKind::Requests, 10, Duration::from_secs(60), 10, 1)];
    for expected_remaining in (0..10).rev() {
        match state.acquire(&rpm, &[], TTL).await.unwrap() {
            Decision::Allowed { limits, .. } => assert_eq!(limits[0].remaining, expected_remaining),
            Decision::Refused(refusal) => panic!("{refusal:?}"),
        }
    }
    match state.acquire(&rpm, &[], TTL).await.unwrap() {
        Decision::Refused(Refusal::RateLimited { check_index: 0, retry_after, too_large: false, limits }) => {
            // Six seconds minus the moments the ten requests took.
            assert!(
                retry_after <= Duration::from_secs(6) && retry_after > Duration::from_millis(5500),
                "{retry_after:?}"
            );
            assert_eq!((limits[0].kind, limits[0].limit, limits[0].remaining), (LimitKind::Requests, 10, 0));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn token_settles_give_back_and_charge_the_difference() {
    let server = RedisServer::start();
    let state = redis_state(&server).await;
    // 1000 tokens per hour: refills 0.28 tokens a second, too slow to blur the counts.
    let tokens = |cost| [limit("rl:key:a:tph", LimitKind::Tokens, 1000, HOUR, 1000, cost)];
    let reservation = allowed(state.acquire(&tokens(1000), &[], TTL).await.unwrap());
    state.settle(&reservation, 100, 0).await.unwrap();
    match state.acquire(&tokens(0), &[], TTL).await.unwrap() {
        Decision::Allowed { limits, .. } => assert_eq!(limits[0].remaining, 900),
        Decision::Refused(refusal) => panic!("{refusal:?}"),
    }
    // Settling again changes nothing.
    state.settle(&reservation, 1000, 0).await.unwrap();
    let second = allowed(state.acquire(&tokens(900), &[], TTL).await.unwrap());
    state.settle(&second, 950, 0).await.unwrap();
    // 50 tokens over: even an empty request waits until those 50 have drained (3 minutes).
    match state.acquire(&tokens(0), &[], TTL).await.unwrap() {
        Decision::Refused(Refusal::RateLimited { retry_after, too_large: false, limits, .. }) => {
            assert!(
                retry_after > Duration::from_secs(170) && retry_after <= Duration::from_secs(180),
                "{retry_after:?}"
            );
            assert_eq!(limits[0].remaining, 0);
            // 1050 tokens' worth ahead: 63 minutes (minus the test's moments).
            assert!(limits[0].reset_after > Duration::from_secs(3770), "{:?}", limits[0].reset_after);
            assert!(limits[0].reset_after <= Duration::from_secs(3780), "{:?}", limits[0].reset_after);
        }
        other => panic!("{other:?}"),
    }
    match state.acquire(&tokens(1001), &[], TTL).await.unwrap() {
        Decision::Refused(Refusal::RateLimited { too_large: true, retry_after, .. }) => {
            assert_eq!(retry_after, HOUR)
        }
        other => panic!("{other:?}"),
    }
}

/// The budget's (spent, in flight) once `check` says so, within 2 s.
async fn budget_becomes(state: &GuardState, budget: &BudgetCheck, spent: u64, in_flight: u64) -> (u64, u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let status = state.budget_status(std::slice::from_ref(budget)).await.unwrap();
        let now = (status[0].spent, status[0].in_flight);
        if now == (spent, in_flight) || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_queued_settle_rides_along_with_the_next_decision() {
    let server = RedisServer::start();
    let state = redis_state(&server).await;
    let tokens = |cost| [limit("rl:key:a:tph", LimitKind::Tokens, 1000, HOUR, 1000, cost)];
    let reservation = allowed(state.acquire(&tokens(1000), &[], TTL).await.unwrap());
    let settled_marker = format!("{{loom}}:settled:{}", reservation.id);
    state.settle_soon(reservation, 100, 0);
    // The very next decision, sent at once, already sees the 900 tokens given back: the
    // settle ran first, in the same script call.
    match state.acquire(&tokens(0), &[], TTL).await.unwrap() {
        Decision::Allowed { limits, .. } => assert_eq!(limits[0].remaining, 900),
        Decision::Refused(refusal) => panic!("{refusal:?}"),
    }
    let mut connection = server.connection();
    let marked: bool = redis::cmd("EXISTS").arg(&settled_marker).query(&mut connection).unwrap();
    assert!(marked, "the settle is marked done");
}

#[tokio::test]
async fn a_queued_settle_goes_alone_when_no_decision_comes_and_after_an_outage() {
    let mut server = RedisServer::start();
    let state = redis_state(&server).await;
    let ten = |reserve| budget("bd:team:eng:tokens:day:2026-12-06", 10, reserve);
    let first = allowed(state.acquire(&[], &[ten(4)], TTL).await.unwrap());
    state.settle_soon(first, 3, 0);
    assert_eq!(budget_becomes(&state, &ten(0), 3, 0).await, (3, 0), "settled by the settle task");
    // Queued while Redis is down: kept, and sent once it is back.
    let second = allowed(state.acquire(&[], &[ten(4)], TTL).await.unwrap());
    server.stop();
    state.settle_soon(second, 2, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.restart();
    // The restarted Redis is empty, so the in-flight hold is gone too; the settle still
    // lands (spent 2), exactly once.
    assert_eq!(budget_becomes(&state, &ten(0), 2, 0).await, (2, 0));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(budget_becomes(&state, &ten(0), 2, 0).await, (2, 0));
}

#[tokio::test]
async fn budgets_count_spend_and_in_flight_settle_release_and_sweep() {
    let server = RedisServer::start();
    let state = redis_state(&server).await;
    let ten = |reserve| [budget("bd:team:eng:tokens:day:2026-12-06", 10, reserve)];
    let first = allowed(state.acquire(&[], &ten(4), TTL).await.unwrap());
    let second = allowed(state.acquire(&[], &ten(4), TTL).await.unwrap());
    match state.acquire(&[], &ten(3), TTL).await.unwrap() {
        Decision::Refused(Refusal::OverBudget {
            check_index: 0, spent: 0, in_flight: 8, limit: 10, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    state.settle(&first, 5, 999).await.unwrap();
    let status = state.budget_status(&ten(0)).await.unwrap();
    assert_eq!((status[0].spent, status[0].in_flight, status[0].limit), (5, 4, 10));
    assert_eq!(status[0].name, "team eng daily tokens");
    state.release(&second).await.unwrap();
    let status = state.budget_status(&ten(0)).await.unwrap();
    assert_eq!((status[0].spent, status[0].in_flight), (5, 0));
    // A reservation that is never settled stops holding budget after its ttl.
    let _abandoned = allowed(state.acquire(&[], &ten(5), Duration::from_millis(50)).await.unwrap());
    assert_eq!(state.budget_status(&ten(0)).await.unwrap()[0].in_flight, 5);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(state.budget_status(&ten(0)).await.unwrap()[0].in_flight, 0);
    allowed(state.acquire(&[], &ten(5), TTL).await.unwrap());
    // Exhausted: even a request reserving nothing is refused.
    let exhausted = state.acquire(&[], &ten(0), TTL).await.unwrap();
    assert!(
        matches!(exhausted, Decision::Refused(Refusal::OverBudget { in_flight: 5, spent: 5, .. })),
        "{exhausted:?}"
    );
}

#[tokio::test]
async fn a_refused_request_takes_nothing_from_any_bucket() {
    let server = RedisServer::start();
    let state = redis_state(&server).await;
    let requests = limit("rl:key:a:rph", LimitKind::Requests, 100, HOUR, 100, 1);
    let budget = budget("bd:key:a:tokens:day:x", 10, 11);
    let refused = state.acquire(std::slice::from_ref(&requests), &[budget], TTL).await.unwrap();
    assert!(matches!(refused, Decision::Refused(Refusal::OverBudget { check_index: 0, .. })), "{refused:?}");
    match state.acquire(&[requests], &[], TTL).await.unwrap() {
        Decision::Allowed { limits, .. } => assert_eq!(limits[0].remaining, 99),
        Decision::Refused(refusal) => panic!("{refusal:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_redis_allow_exactly_the_limit() {
    let server = RedisServer::start();
    let instances = [redis_state(&server).await, redis_state(&server).await];
    let requests = [limit("rl:global:rph:50", LimitKind::Requests, 50, HOUR, 50, 1)];
    let budgets = [budget("bd:team:eng:tokens:day:x", 30, 1)];
    for (limits, budgets, expected) in [(&requests[..], &[][..], 50), (&[][..], &budgets[..], 30)] {
        let mut tasks = Vec::new();
        for n in 0..200 {
            let state = instances[n % 2].clone();
            let (limits, budgets) = (limits.to_vec(), budgets.to_vec());
            tasks.push(tokio::spawn(async move { state.acquire(&limits, &budgets, TTL).await }));
        }
        let mut allowed = 0;
        for task in tasks {
            if let Decision::Allowed { .. } = task.await.unwrap().unwrap() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, expected);
    }
}

/// One step of the scripted sequence replayed on both backends.
enum Step {
    Acquire { tokens: u64, budget_only: bool },
    Settle { step: usize, tokens: u64 },
    Release { step: usize },
}

async fn replay(state: &GuardState) -> Vec<String> {
    use Step::*;
    let steps = [
        Acquire { tokens: 400, budget_only: false },
        Acquire { tokens: 400, budget_only: false },
        Acquire { tokens: 400, budget_only: false },
        Settle { step: 0, tokens: 100 },
        Acquire { tokens: 400, budget_only: false },
        Release { step: 1 },
        Acquire { tokens: 450, budget_only: false },
        Acquire { tokens: 10, budget_only: false },
        Acquire { tokens: 10, budget_only: false },
        Settle { step: 4, tokens: 1200 },
        Acquire { tokens: 10, budget_only: false },
        Settle { step: 6, tokens: 450 },
        Settle { step: 7, tokens: 10 },
        Settle { step: 0, tokens: 1000 },
        Acquire { tokens: 800, budget_only: true },
        Acquire { tokens: 700, budget_only: true },
        Acquire { tokens: 50, budget_only: true },
    ];
    let mut reservations: Vec<Option<Reservation>> = Vec::new();
    let mut log = Vec::new();
    for step in steps {
        let mut reservation = None;
        match step {
            Acquire { tokens, budget_only } => {
                let limits = [
                    limit("rl:key:a:rph:5", LimitKind::Requests, 5, HOUR, 5, 1),
                    limit("rl:key:a:tph:1000", LimitKind::Tokens, 1000, HOUR, 1000, tokens),
                ];
                let limits = if budget_only { &limits[..0] } else { &limits[..] };
                let budgets = [budget("bd:key:a:tokens:day:x", 2500, tokens)];
                match state.acquire(limits, &budgets, TTL).await.unwrap() {
                    Decision::Allowed { reservation: taken, limits } => {
                        let requests_left = limits.first().map(|status| status.remaining);
                        log.push(format!("allowed, requests left {requests_left:?}"));
                        reservation = Some(taken);
                    }
                    Decision::Refused(Refusal::RateLimited { check_index, too_large, .. }) => {
                        log.push(format!("rate limited by {check_index} (too large: {too_large})"))
                    }
                    Decision::Refused(Refusal::OverBudget { spent, in_flight, limit, .. }) => {
                        log.push(format!("over budget: {spent} spent, {in_flight} in flight of {limit}"))
                    }
                }
            }
            Settle { step, tokens } => {
                state.settle(reservations[step].as_ref().unwrap(), tokens, 0).await.unwrap();
                log.push(format!("settled {step}"));
            }
            Release { step } => {
                state.release(reservations[step].as_ref().unwrap()).await.unwrap();
                log.push(format!("released {step}"));
            }
        }
        reservations.push(reservation);
    }
    let status = state.budget_status(&[budget("bd:key:a:tokens:day:x", 2500, 0)]).await.unwrap();
    log.push(format!("budget: {} spent, {} in flight", status[0].spent, status[0].in_flight));
    log
}

#[tokio::test]
async fn memory_and_redis_decide_the_same_sequence_alike() {
    let server = RedisServer::start();
    let on_redis = replay(&redis_state(&server).await).await;
    let in_memory = replay(&GuardState::memory(1000)).await;
    assert_eq!(on_redis, in_memory);
    assert_eq!(
        in_memory,
        [
            "allowed, requests left Some(4)",
            "allowed, requests left Some(3)",
            "rate limited by 1 (too large: false)",
            "settled 0",
            "allowed, requests left Some(2)",
            "released 1",
            "allowed, requests left Some(1)",
            "allowed, requests left Some(0)",
            "rate limited by 0 (too large: false)",
            "settled 4",
            "rate limited by 0 (too large: false)",
            "settled 6",
            "settled 7",
            "settled 0",
            "over budget: 1760 spent, 0 in flight of 2500",
            "allowed, requests left None",
            "over budget: 1760 spent, 700 in flight of 2500",
            "budget: 1760 spent, 700 in flight",
        ]
    );
}

#[tokio::test]
async fn every_key_is_hash_tagged_and_expires() {
    let server = RedisServer::start();
    let state = redis_state(&server).await;
    let limits = [limit("rl:key:a:rpm:10", LimitKind::Requests, 10, Duration::from_secs(60), 10, 1)];
    let budgets = [budget("bd:key:a:tokens:day:x", 100, 5)];
    let first = allowed(state.acquire(&limits, &budgets, TTL).await.unwrap());
    allowed(state.acquire(&limits, &budgets, TTL).await.unwrap());
    state.settle(&first, 7, 0).await.unwrap();
    let mut connection = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert_eq!(keys.len(), 5, "{keys:?}");
    for key in keys {
        assert!(key.starts_with("{loom}:"), "{key}");
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut connection).unwrap();
        assert!(ttl > 0, "{key} has no expiry");
    }
}

#[tokio::test]
async fn a_stopped_redis_fails_fast_and_a_restarted_one_works_again() {
    let mut server = RedisServer::start();
    let state = redis_state(&server).await;
    let limits = [limit("rl:key:a:rpm:100", LimitKind::Requests, 100, Duration::from_secs(60), 100, 1)];
    allowed(state.acquire(&limits, &[], TTL).await.unwrap());

    server.stop();
    for _ in 0..3 {
        // The outer timeout only keeps a hang from stalling the suite.
        let failed =
            tokio::time::timeout(Duration::from_secs(10), state.acquire(&limits, &[], TTL)).await.unwrap();
        assert!(matches!(failed, Err(GuardError::Backend(_))), "{failed:?}");
    }

    server.restart();
    let mut recovered = None;
    for _ in 0..100 {
        match state.acquire(&limits, &[], TTL).await {
            Ok(decision) => {
                recovered = Some(decision);
                break;
            }
            Err(GuardError::Backend(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("{other:?}"),
        }
    }
    // The restarted Redis is empty: the bucket starts full again.
    match recovered.expect("the state recovers once Redis is back") {
        Decision::Allowed { limits, .. } => assert_eq!(limits[0].remaining, 99),
        Decision::Refused(refusal) => panic!("{refusal:?}"),
    }
}

#[tokio::test]
async fn a_redis_that_hangs_fails_within_the_timeout_and_recovers_when_it_answers() {
    let server = RedisServer::start();
    let state = redis_state(&server).await;
    let limits = [limit("rl:key:a:rpm:100", LimitKind::Requests, 100, Duration::from_secs(60), 100, 1)];
    allowed(state.acquire(&limits, &[], TTL).await.unwrap());
    server.pause();
    let hung = tokio::time::timeout(Duration::from_secs(10), state.acquire(&limits, &[], TTL)).await.unwrap();
    server.resume();
    assert_eq!(hung.unwrap_err(), GuardError::Backend("Redis did not answer within 300ms".to_owned()));
    let mut recovered = false;
    for _ in 0..100 {
        if let Ok(decision) = state.acquire(&limits, &[], TTL).await {
            allowed(decision);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the state answers again once Redis does");
}

#[tokio::test]
async fn errors_never_show_the_url_password() {
    let server = RedisServer::start();
    let port = server.port();
    drop(server);
    let config = StateConfig {
        backend: Backend::Redis,
        url: Some(Secret::new(format!("redis://:hunter2@127.0.0.1:{port}/"))),
        timeout: Duration::from_millis(200),
        ..StateConfig::default()
    };
    let state = GuardState::redis(&config).unwrap();
    let error = state.ping().await.unwrap_err();
    assert!(matches!(error, GuardError::Backend(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}
