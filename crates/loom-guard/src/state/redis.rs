//! The Redis backend: every decision is one Lua script, atomic, timed by the server.
//!
//! A request costs one script call: its settle (after the answer) is queued and rides
//! along with the next decision this process sends, or goes on its own within
//! [`SETTLE_DELAY`] when no decision comes. Settles are idempotent per reservation, so one
//! whose call failed is queued again.
//!
//! Every key starts with `{<prefix>}:`, one hash tag, so each script's keys share a slot.
//! On a Redis Cluster that puts all guard keys on one shard: the price of atomic decisions
//! across a team's, a user's and a key's buckets at once. Every key but the run-time key
//! records (`{<prefix>}:keys` and its version counter) carries an expiry, so memory stays
//! bounded by the live buckets.

use std::collections::VecDeque;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, Script};
use tokio::sync::Notify;

use super::{ConnectionError, Outcome, Reservation, RuntimeConnections, increment_and_tolerance};
use crate::GuardError;
use crate::budgets::BudgetCheck;
use crate::config::StateConfig;
use crate::keys::random_bytes;
use crate::limits::LimitCheck;

/// How long a settled marker outlives the reservation's ttl, so late retries stay no-ops.
const SETTLED_GRACE: Duration = Duration::from_secs(3600);

/// The longest a queued settle waits for a decision to ride along with.
pub const SETTLE_DELAY: Duration = Duration::from_millis(10);
/// Settles sent in one script call at most.
const SETTLES_PER_CALL: usize = 32;
/// Queued settles at most (Redis unreachable): beyond, the oldest are dropped and their
/// reservations lapse after their ttl.
const MAX_QUEUED_SETTLES: usize = 10_000;

/// Limits, budgets and run-time keys on a Redis shared by every instance.
#[derive(Clone)]
pub struct RedisState {
    shared: Arc<Shared>,
}

struct Shared {
    /// One connection per Tokio runtime.
    connections: RuntimeConnections,
    /// `{prefix}`: the hash tag every key starts with.
    tag: String,
    timeout: Duration,
    /// Parts of the URL that must never reach an error message.
    secrets: Vec<String>,
    /// Random per process, so reservation ids differ across instances.
    id_prefix: String,
    next_id: AtomicU64,
    /// Settles, then optionally one decision (`batch.lua`).
    batch: Script,
    status: Script,
    key_write: Script,
    /// Settles waiting for a call to ride along with.
    queued: Mutex<VecDeque<QueuedSettle>>,
    /// Wakes the task that sends queued settles no decision took.
    settle_soon: Arc<Notify>,
}

impl Drop for Shared {
    /// Lets the settle task see the state is gone, and end.
    fn drop(&mut self) {
        self.settle_soon.notify_one();
    }
}

/// A settle waiting in the queue.
struct QueuedSettle {
    reservation: Reservation,
    tokens: u64,
    nano_usd: u64,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState").field("tag", &self.shared.tag).finish_non_exhaustive()
    }
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("common.lua"), include_str!($file)))
    };
}

impl RedisState {
    /// A state on the Redis at `config.url`; connects lazily and reconnects by itself.
    pub(crate) fn connect(config: &StateConfig) -> Result<Self, GuardError> {
        let url = config
            .url
            .as_ref()
            .ok_or_else(|| GuardError::invalid("ai_gateway.state.url", "required when backend is redis"))?;
        let secrets = url_secrets(url.expose());
        let client = Client::open(url.expose()).map_err(|error| scrubbed(&error, &secrets))?;
        let connections = RuntimeConnections::new(client, config.timeout);
        // Made now, so a bad setup fails at start rather than on the first request.
        connections.get().map_err(|error| connection_error(&error, &secrets))?;
        let mut random = [0u8; 6];
        random_bytes(&mut random)?;
        let id_prefix: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        let state = RedisState {
            shared: Arc::new(Shared {
                connections,
                tag: format!("{{{}}}", config.key_prefix),
                timeout: config.timeout,
                secrets,
                id_prefix,
                next_id: AtomicU64::new(1),
                batch: script!("batch.lua"),
                status: script!("status.lua"),
                key_write: script!("key_write.lua"),
                queued: Mutex::new(VecDeque::new()),
                settle_soon: Arc::new(Notify::new()),
            }),
        };
        tokio::spawn(send_queued_settles(Arc::downgrade(&state.shared), state.shared.settle_soon.clone()));
        Ok(state)
    }

    pub(crate) fn next_reservation_id(&self) -> String {
        format!("r{}-{}", self.shared.id_prefix, self.shared.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The connection of the runtime this runs on (made on first use there).
    fn connection(&self) -> Result<ConnectionManager, GuardError> {
        self.shared.connections.get().map_err(|error| connection_error(&error, &self.shared.secrets))
    }

    /// The Redis key of a bucket.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.shared.tag)
    }

    /// Runs one Redis call within the timeout, with a scrubbed error.
    async fn call<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, GuardError> {
        let timed_out =
            || GuardError::Backend(format!("Redis did not answer within {:?}", self.shared.timeout));
        match tokio::time::timeout(self.shared.timeout, call).await {
            Ok(Err(error)) if error.is_timeout() => Err(timed_out()),
            Ok(result) => result.map_err(|error| scrubbed(&error, &self.shared.secrets)),
            Err(_) => Err(timed_out()),
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), GuardError> {
        let mut connection = self.connection()?;
        self.call(async move { redis::cmd("PING").query_async::<String>(&mut connection).await })
            .await
            .map(drop)
    }

    fn push_budget_keys(&self, invocation: &mut redis::ScriptInvocation<'_>, bucket: &str) {
        invocation
            .key(self.key(bucket))
            .key(self.key(&format!("held:{bucket}")))
            .key(self.key(&format!("held-exp:{bucket}")));
    }

    pub(crate) async fn acquire(
        &self,
        limits: &[LimitCheck],
        budgets: &[BudgetCheck],
        ttl: Duration,
        id: &str,
    ) -> Result<Outcome, GuardError> {
        let riders = self.take_queued();
        let mut invocation = self.shared.batch.prepare_invoke();
        invocation.arg(riders.len());
        for rider in &riders {
            self.push_settle(&mut invocation, &rider.reservation, rider.tokens, rider.nano_usd);
        }
        invocation.arg(limits.len()).arg(budgets.len()).arg(id).arg(micros(ttl));
        for check in limits {
            let (increment, tolerance) = increment_and_tolerance(check);
            invocation.key(self.key(&check.bucket)).arg(increment).arg(tolerance);
        }
        for check in budgets {
            self.push_budget_keys(&mut invocation, &check.bucket);
            invocation.arg(check.limit).arg(check.reserve).arg(check.window.slot).arg(check.window.slots);
        }
        let reply = self.invoke::<Vec<i64>>(invocation).await;
        if reply.is_err() {
            self.requeue(riders);
        }
        parse_acquire(&reply?, limits, budgets.len())
    }

    /// Settles now, in a call of its own.
    pub(crate) async fn settle(
        &self,
        reservation: &Reservation,
        actual_tokens: u64,
        actual_nano_usd: u64,
    ) -> Result<(), GuardError> {
        let mut invocation = self.shared.batch.prepare_invoke();
        invocation.arg(1);
        self.push_settle(&mut invocation, reservation, actual_tokens, actual_nano_usd);
        self.invoke::<i64>(invocation).await.map(drop)
    }

    /// Queues a settle for the next decision to carry (or the settle task, within
    /// [`SETTLE_DELAY`]).
    pub(crate) fn settle_soon(&self, reservation: Reservation, tokens: u64, nano_usd: u64) {
        let mut queued = self.shared.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let was_empty = queued.is_empty();
        if queued.len() >= MAX_QUEUED_SETTLES {
            queued.pop_front();
        }
        queued.push_back(QueuedSettle { reservation, tokens, nano_usd });
        drop(queued);
        if was_empty {
            self.shared.settle_soon.notify_one();
        }
    }

    fn take_queued(&self) -> Vec<QueuedSettle> {
        let mut queued = self.shared.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = queued.len().min(SETTLES_PER_CALL);
        queued.drain(..count).collect()
    }

    /// Puts settles whose call failed back in front (they are idempotent: one that did
    /// reach Redis is a no-op the second time).
    fn requeue(&self, settles: Vec<QueuedSettle>) {
        if settles.is_empty() {
            return;
        }
        let mut queued = self.shared.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for settle in settles.into_iter().rev() {
            queued.push_front(settle);
        }
        queued.truncate(MAX_QUEUED_SETTLES);
    }

    /// Sends queued settles a batch at a time until none is left; false when a call failed.
    async fn send_queued(&self) -> bool {
        loop {
            let settles = self.take_queued();
            if settles.is_empty() {
                return true;
            }
            let mut invocation = self.shared.batch.prepare_invoke();
            invocation.arg(settles.len());
            for settle in &settles {
                self.push_settle(&mut invocation, &settle.reservation, settle.tokens, settle.nano_usd);
            }
            if let Err(error) = self.invoke::<i64>(invocation).await {
                self.requeue(settles);
                tracing::warn!(%error, "settling rate-limit and budget reservations on Redis failed; retrying");
                return false;
            }
        }
    }

    /// One settle's keys and arguments (see `batch.lua`).
    fn push_settle(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        reservation: &Reservation,
        actual_tokens: u64,
        actual_nano_usd: u64,
    ) {
        let marker_ms = millis(reservation.ttl + SETTLED_GRACE);
        invocation.key(self.key(&format!("settled:{}", reservation.id)));
        invocation
            .arg(reservation.limits.len())
            .arg(reservation.budgets.len())
            .arg(&reservation.id)
            .arg(marker_ms);
        for limit in &reservation.limits {
            invocation.key(self.key(&limit.bucket)).arg(limit.settle_delta(actual_tokens));
        }
        for budget in &reservation.budgets {
            self.push_budget_keys(invocation, &budget.bucket);
            invocation
                .arg(budget.actual(actual_tokens, actual_nano_usd))
                .arg(budget.window.slot)
                .arg(budget.window.slots)
                .arg(millis(budget.ttl));
        }
    }

    /// Runs a prepared script call on this runtime's connection, within the timeout.
    async fn invoke<T: redis::FromRedisValue + Send>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, GuardError> {
        let mut connection = self.connection()?;
        self.call(async move { invocation.invoke_async(&mut connection).await }).await
    }

    pub(crate) async fn budget_amounts(
        &self,
        budgets: &[BudgetCheck],
    ) -> Result<Vec<(u64, u64)>, GuardError> {
        if budgets.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.shared.status.prepare_invoke();
        for check in budgets {
            self.push_budget_keys(&mut invocation, &check.bucket);
            invocation.arg(check.window.slot).arg(check.window.slots);
        }
        let mut connection = self.connection()?;
        let reply: Vec<i64> =
            self.call(async move { invocation.invoke_async(&mut connection).await }).await?;
        if reply.len() != 2 * budgets.len() {
            return Err(unexpected(&reply));
        }
        Ok(reply.chunks_exact(2).map(|pair| (unsigned(pair[0]), unsigned(pair[1]))).collect())
    }

    /// The run-time key records' version (0 when none was ever written).
    pub(crate) async fn keys_version(&self) -> Result<u64, GuardError> {
        let mut connection = self.connection()?;
        let version_key = self.key("keys:version");
        let version: Option<u64> = self
            .call(async move { redis::cmd("GET").arg(version_key).query_async(&mut connection).await })
            .await?;
        Ok(version.unwrap_or(0))
    }

    /// Every run-time key record (id -> JSON) and the version they belong to, read atomically.
    pub(crate) async fn key_records(&self) -> Result<(u64, Vec<(String, String)>), GuardError> {
        let mut connection = self.connection()?;
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("GET").arg(self.key("keys:version")).cmd("HGETALL").arg(self.key("keys"));
        let (version, records): (Option<u64>, Vec<(String, String)>) =
            self.call(async move { pipe.query_async(&mut connection).await }).await?;
        Ok((version.unwrap_or(0), records))
    }

    /// Writes a record if the stored one is `expected` (`None`: the id must be new);
    /// false when it was not.
    pub(crate) async fn write_key_record(
        &self,
        id: &str,
        json: &str,
        expected: Option<&str>,
    ) -> Result<bool, GuardError> {
        let mut invocation = self.shared.key_write.prepare_invoke();
        invocation.key(self.key("keys")).key(self.key("keys:version"));
        invocation.arg(id).arg(json).arg(expected.unwrap_or(""));
        let mut connection = self.connection()?;
        let written: i64 = self.call(async move { invocation.invoke_async(&mut connection).await }).await?;
        Ok(written == 1)
    }

    /// One stored record's JSON.
    pub(crate) async fn key_record(&self, id: &str) -> Result<Option<String>, GuardError> {
        let mut connection = self.connection()?;
        let keys = self.key("keys");
        let id = id.to_owned();
        self.call(async move { redis::cmd("HGET").arg(keys).arg(id).query_async(&mut connection).await })
            .await
    }
}

/// Sends the settles no decision carried, [`SETTLE_DELAY`] after the first is queued;
/// retries after a failure. Ends when the state is dropped.
async fn send_queued_settles(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        loop {
            tokio::time::sleep(SETTLE_DELAY).await;
            let Some(shared) = shared.upgrade() else { return };
            let state = RedisState { shared };
            if state.send_queued().await {
                break;
            }
            // Redis is unreachable: try again after a pause as long as the timeout.
            tokio::time::sleep(state.shared.timeout).await;
        }
    }
}

fn parse_acquire(reply: &[i64], limits: &[LimitCheck], budgets: usize) -> Result<Outcome, GuardError> {
    let [code, index, a, b, ahead @ ..] = reply else { return Err(unexpected(reply)) };
    let ahead: Vec<u64> = ahead.iter().map(|value| unsigned(*value)).collect();
    let index = usize::try_from(*index).unwrap_or(0).saturating_sub(1);
    let outcome = match code {
        0 if ahead.len() == limits.len() => Outcome::Allowed { ahead },
        1 | 2 if ahead.len() == limits.len() && index < limits.len() => Outcome::Limited {
            index,
            retry_after: if *code == 1 { unsigned(*a) } else { micros(limits[index].period) },
            too_large: *code == 2,
            ahead,
        },
        3 if index < budgets => Outcome::OverBudget { index, spent: unsigned(*a), in_flight: unsigned(*b) },
        _ => return Err(unexpected(reply)),
    };
    Ok(outcome)
}

fn unexpected(reply: &[i64]) -> GuardError {
    GuardError::Backend(format!("unexpected script reply {reply:?}"))
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The user-info parts of a Redis URL (`user:password` and the password alone), which
/// errors must not show, longest first.
pub fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else { return Vec::new() };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((user_info, _)) = authority.rsplit_once('@') else { return Vec::new() };
    let mut secrets = vec![user_info.to_owned()];
    if let Some((_, password)) = user_info.split_once(':') {
        secrets.push(password.to_owned());
    }
    secrets.retain(|secret| !secret.is_empty());
    // Longest first, so the whole user info goes before its password.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets
}

/// `error`'s message with each of `secrets` replaced by `***`.
pub fn without_secrets(error: &impl Display, secrets: &[String]) -> String {
    let mut message = error.to_string();
    for secret in secrets {
        message = message.replace(secret.as_str(), "***");
    }
    message
}

/// A backend error whose message carries none of `secrets`.
/// Why no connection could be had, scrubbed of `secrets`.
fn connection_error(error: &ConnectionError, secrets: &[String]) -> GuardError {
    match error {
        ConnectionError::NoRuntime => {
            GuardError::Backend("the redis state backend needs a Tokio runtime".to_owned())
        }
        ConnectionError::Redis(error) => scrubbed(error, secrets),
    }
}

fn scrubbed(error: &impl Display, secrets: &[String]) -> GuardError {
    GuardError::Backend(without_secrets(error, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_secrets_are_the_user_info_and_password() {
        assert_eq!(url_secrets("redis://:hunter2@host:6379/0"), [":hunter2", "hunter2"]);
        assert_eq!(url_secrets("rediss://ann:pw@host"), ["ann:pw", "pw"]);
        assert!(url_secrets("redis://host:6379").is_empty());
        let error = scrubbed(&"connect to ann:pw@host failed (pw)", &url_secrets("redis://ann:pw@host"));
        assert_eq!(error, GuardError::Backend("connect to ***@host failed (***)".to_owned()));
    }

    #[test]
    fn malformed_urls_fail_without_their_password() {
        let config = StateConfig {
            backend: crate::config::Backend::Redis,
            url: Some(loom_core::Secret::new("redis://:hunter2@host:notaport")),
            ..StateConfig::default()
        };
        let error = RedisState::connect(&config).unwrap_err();
        assert!(matches!(&error, GuardError::Backend(_)), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
