//! Where limits, budgets and in-flight reservations live: in this process or on Redis.
//!
//! [`GuardState`] is one enum over the two backends. Both make the same decisions for the
//! same sequence of calls: the arithmetic is the (private) `gcra` module's, done in Rust for memory and
//! in the Lua scripts beside this file for Redis.

mod connections;
mod memory;
mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use self::connections::{ConnectionError, RuntimeConnections};
pub use self::memory::MemoryState;
pub use self::redis::{RedisState, url_secrets, without_secrets};
use crate::GuardError;
use crate::budgets::{BudgetCheck, BudgetUnit, BudgetWindow};
use crate::config::{BudgetScope, StateConfig};
use crate::gcra;
use crate::limits::{LimitCheck, LimitKind};

/// The state backend: in memory (one instance) or on Redis (shared by many).
#[derive(Debug, Clone)]
pub enum GuardState {
    /// In this process.
    Memory(Arc<MemoryState>),
    /// On Redis.
    Redis(RedisState),
}

/// What [`GuardState::acquire`] decided.
#[derive(Debug)]
pub enum Decision {
    /// Every limit and budget allows the request: settle or release the reservation after it.
    Allowed {
        /// What was taken, to give back or settle later.
        reservation: Reservation,
        /// Every limit's state after this request, in the order of the checks.
        limits: Vec<LimitStatus>,
    },
    /// Something refused it; nothing was taken.
    Refused(Refusal),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rate limit is exhausted.
    RateLimited {
        /// Index of the refusing check in the `limits` passed to `acquire`.
        check_index: usize,
        /// When to try again (the limit's period when `too_large`).
        retry_after: Duration,
        /// The request alone costs more than the limit's burst: it can never pass.
        too_large: bool,
        /// Every limit's state (unchanged by this request), in the order of the checks.
        limits: Vec<LimitStatus>,
    },
    /// A budget would be exceeded.
    OverBudget {
        /// Index of the refusing check in the `budgets` passed to `acquire`.
        check_index: usize,
        /// When the budget's period resets.
        resets_at: SystemTime,
        /// Spent so far in the period.
        spent: u64,
        /// Reserved by requests still running.
        in_flight: u64,
        /// The budget's maximum.
        limit: u64,
    },
}

/// One limit's state, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitStatus {
    /// Requests or tokens.
    pub kind: LimitKind,
    /// Amount per period.
    pub limit: u64,
    /// What may still be spent now.
    pub remaining: u64,
    /// When the bucket is full again.
    pub reset_after: Duration,
}

/// One budget's state, for `GET /ai/budgets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    /// State key of the budget period.
    pub bucket: String,
    /// For people: `team eng monthly cost`.
    pub name: String,
    /// The budget's scope.
    pub scope: BudgetScope,
    /// Nano-USD or tokens.
    pub unit: BudgetUnit,
    /// The maximum per period.
    pub limit: u64,
    /// Spent in the period.
    pub spent: u64,
    /// Reserved by requests still running.
    pub in_flight: u64,
    /// When the period resets.
    #[serde(with = "crate::time::rfc3339")]
    pub resets_at: SystemTime,
}

/// What an allowed request took: enough to settle or release it without the checks.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// Unique id (also across instances sharing a Redis).
    pub id: String,
    pub(crate) limits: Vec<ReservedLimit>,
    pub(crate) budgets: Vec<ReservedBudget>,
    pub(crate) ttl: Duration,
    /// Set by the first settle or release: later ones do nothing (shared by clones).
    pub(crate) done: Arc<AtomicBool>,
}

impl Reservation {
    /// Whether this reservation was settled or released already.
    pub fn is_settled(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Whether nothing at all was reserved (no limit, no budget applied).
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.budgets.is_empty()
    }

    fn new(id: String, limits: &[LimitCheck], budgets: &[BudgetCheck], ttl: Duration) -> Self {
        Reservation {
            id,
            limits: limits
                .iter()
                .map(|check| ReservedLimit {
                    bucket: check.bucket.clone(),
                    kind: check.kind,
                    reserved: check.cost,
                    limit: check.limit,
                    period: check.period,
                })
                .collect(),
            budgets: budgets
                .iter()
                .map(|check| ReservedBudget {
                    bucket: check.bucket.clone(),
                    unit: check.unit,
                    window: check.window,
                    ttl: check.ttl,
                })
                .collect(),
            ttl,
            done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the reservation done; false when it already was.
    fn take(&self) -> bool {
        !self.done.swap(true, Ordering::AcqRel)
    }
}

/// A limit a reservation took from.
#[derive(Debug, Clone)]
pub(crate) struct ReservedLimit {
    pub(crate) bucket: String,
    pub(crate) kind: LimitKind,
    pub(crate) reserved: u64,
    pub(crate) limit: u64,
    pub(crate) period: Duration,
}

impl ReservedLimit {
    /// How far the TAT moves when `actual_tokens` replaces the reservation (signed µs).
    pub(crate) fn settle_delta(&self, actual_tokens: u64) -> i64 {
        if self.kind != LimitKind::Tokens || actual_tokens == self.reserved {
            return 0;
        }
        let (difference, sign) = if actual_tokens > self.reserved {
            (actual_tokens - self.reserved, 1)
        } else {
            (self.reserved - actual_tokens, -1)
        };
        sign * i64::try_from(gcra::span(difference, self.limit, self.period)).unwrap_or(i64::MAX)
    }
}

/// A budget a reservation holds an amount of.
#[derive(Debug, Clone)]
pub(crate) struct ReservedBudget {
    pub(crate) bucket: String,
    pub(crate) unit: BudgetUnit,
    pub(crate) window: BudgetWindow,
    pub(crate) ttl: Duration,
}

impl ReservedBudget {
    /// The real amount to record, in this budget's unit.
    pub(crate) fn actual(&self, tokens: u64, nano_usd: u64) -> u64 {
        match self.unit {
            BudgetUnit::Tokens => tokens,
            BudgetUnit::NanoUsd => nano_usd,
        }
    }
}

/// What a backend decided, before it becomes a [`Decision`].
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Taken; how far each limit's TAT now is ahead of now (µs).
    Allowed { ahead: Vec<u64> },
    /// A limit refused.
    Limited { index: usize, retry_after: u64, too_large: bool, ahead: Vec<u64> },
    /// A budget refused.
    OverBudget { index: usize, spent: u64, in_flight: u64 },
}

/// A limit's GCRA parameters for one request.
pub(crate) fn increment_and_tolerance(check: &LimitCheck) -> (u64, u64) {
    (gcra::span(check.cost, check.limit, check.period), gcra::span(check.burst, check.limit, check.period))
}

fn statuses(limits: &[LimitCheck], ahead: &[u64]) -> Vec<LimitStatus> {
    limits
        .iter()
        .zip(ahead)
        .map(|(check, &ahead)| {
            let tolerance = gcra::span(check.burst, check.limit, check.period);
            LimitStatus {
                kind: check.kind,
                limit: check.limit,
                remaining: gcra::remaining(ahead, tolerance, check.limit, check.period),
                reset_after: Duration::from_micros(ahead),
            }
        })
        .collect()
}

impl GuardState {
    /// An in-memory state bounded to `max_entries` buckets.
    pub fn memory(max_entries: usize) -> Self {
        GuardState::Memory(Arc::new(MemoryState::new(max_entries)))
    }

    /// A Redis state for `config` (connects lazily: a Redis that is down now is not an
    /// error). Needs a Tokio runtime, which drives the connection.
    pub fn redis(config: &StateConfig) -> Result<Self, GuardError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GuardError::Backend("the redis state backend needs a Tokio runtime".to_owned()));
        }
        RedisState::connect(config).map(GuardState::Redis)
    }

    /// The state `config` asks for (Redis: see [`GuardState::redis`]).
    pub fn from_config(config: &StateConfig) -> Result<Self, GuardError> {
        match config.backend {
            crate::config::Backend::Memory => Ok(GuardState::memory(config.max_entries)),
            crate::config::Backend::Redis => GuardState::redis(config),
        }
    }

    /// All-or-nothing: every limit and budget allows it, or nothing is taken. One round
    /// trip on Redis (one script). Reservations not settled or released within
    /// `reservation_ttl` stop holding budget.
    pub async fn acquire(
        &self,
        limits: &[LimitCheck],
        budgets: &[BudgetCheck],
        reservation_ttl: Duration,
    ) -> Result<Decision, GuardError> {
        let id = match self {
            GuardState::Memory(memory) => memory.next_reservation_id(),
            GuardState::Redis(redis) => redis.next_reservation_id(),
        };
        if limits.is_empty() && budgets.is_empty() {
            let reservation = Reservation::new(id, limits, budgets, reservation_ttl);
            return Ok(Decision::Allowed { reservation, limits: Vec::new() });
        }
        let outcome = match self {
            GuardState::Memory(memory) => Ok(memory.acquire(limits, budgets, reservation_ttl, &id)),
            GuardState::Redis(redis) => redis.acquire(limits, budgets, reservation_ttl, &id).await,
        }?;
        Ok(match outcome {
            Outcome::Allowed { ahead } => Decision::Allowed {
                reservation: Reservation::new(id, limits, budgets, reservation_ttl),
                limits: statuses(limits, &ahead),
            },
            Outcome::Limited { index, retry_after, too_large, ahead } => {
                Decision::Refused(Refusal::RateLimited {
                    check_index: index,
                    retry_after: Duration::from_micros(retry_after),
                    too_large,
                    limits: statuses(limits, &ahead),
                })
            }
            Outcome::OverBudget { index, spent, in_flight } => {
                let (resets_at, limit) = budgets
                    .get(index)
                    .map_or((SystemTime::UNIX_EPOCH, 0), |check| (check.resets_at, check.limit));
                Decision::Refused(Refusal::OverBudget {
                    check_index: index,
                    resets_at,
                    spent,
                    in_flight,
                    limit,
                })
            }
        })
    }

    /// After the call: token limits get (reserved − actual) tokens back, or are charged the
    /// excess; budgets move the reservation from in-flight to spent with the real amounts.
    /// Idempotent per reservation id (across clones and instances). One round trip.
    pub async fn settle(
        &self,
        reservation: &Reservation,
        actual_tokens: u64,
        actual_nano_usd: u64,
    ) -> Result<(), GuardError> {
        if reservation.is_empty() || !reservation.take() {
            return Ok(());
        }
        let result = match self {
            GuardState::Memory(memory) => {
                memory.settle(reservation, actual_tokens, actual_nano_usd);
                Ok(())
            }
            GuardState::Redis(redis) => redis.settle(reservation, actual_tokens, actual_nano_usd).await,
        };
        if result.is_err() {
            // Not done after all: a retry may still settle it.
            reservation.done.store(false, Ordering::Release);
        }
        result
    }

    /// Settles without waiting: at once in memory; on Redis the settle is queued and
    /// rides along with this process' next decision (or goes on its own shortly after).
    pub fn settle_soon(&self, reservation: Reservation, actual_tokens: u64, actual_nano_usd: u64) {
        if reservation.is_empty() || !reservation.take() {
            return;
        }
        match self {
            GuardState::Memory(memory) => memory.settle(&reservation, actual_tokens, actual_nano_usd),
            GuardState::Redis(redis) => redis.settle_soon(reservation, actual_tokens, actual_nano_usd),
        }
    }

    /// Releases a reservation without spending (the request never ran): token limits get
    /// their reservation back, budgets stop holding it. Request counts stay spent.
    pub async fn release(&self, reservation: &Reservation) -> Result<(), GuardError> {
        self.settle(reservation, 0, 0).await
    }

    /// Spend, in-flight and limit of these budgets now (for `GET /ai/budgets`).
    pub async fn budget_status(&self, budgets: &[BudgetCheck]) -> Result<Vec<BudgetStatus>, GuardError> {
        let amounts = match self {
            GuardState::Memory(memory) => memory.budget_amounts(budgets),
            GuardState::Redis(redis) => redis.budget_amounts(budgets).await?,
        };
        Ok(budgets
            .iter()
            .zip(amounts)
            .map(|(check, (spent, in_flight))| BudgetStatus {
                bucket: check.bucket.clone(),
                name: check.name.clone(),
                scope: check.scope,
                unit: check.unit,
                limit: check.limit,
                spent,
                in_flight,
                resets_at: check.resets_at,
            })
            .collect())
    }

    /// Adds spend to a budget period, e.g. from the usage ledger at start. Memory only: it
    /// counts until `resets_at`. On Redis this does nothing (the spend is already there).
    pub fn seed_spend(&self, bucket: &str, unit: BudgetUnit, amount: u64, resets_at: SystemTime) {
        if let GuardState::Memory(memory) = self {
            memory.seed_spend(bucket, unit, amount, resets_at);
        }
    }

    /// Checks the backend answers (memory always does).
    pub async fn ping(&self) -> Result<(), GuardError> {
        match self {
            GuardState::Memory(_) => Ok(()),
            GuardState::Redis(redis) => redis.ping().await,
        }
    }
}
