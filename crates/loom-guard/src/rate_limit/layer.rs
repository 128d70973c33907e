//! [`RateLimitLayer`] and what it is built from.

use std::sync::Arc;
use std::time::Duration;

use loom_tokens::accounting::{PriceTable, UsageRecorder};
use tower::Layer;

use super::provider::ProviderRateLimitLayer;
use super::service::RateLimit;
use crate::observer::{GuardObserver, NoObserver};
use crate::{Budgets, GuardState, Limits, OnStateError};

/// Output tokens reserved for a request that sets no `max_tokens`.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 1024;
/// How long a reservation holds when its instance never settles it (a crash).
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(600);

/// What the stage decides with.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) limits: Limits,
    pub(super) budgets: Budgets,
    pub(super) state: GuardState,
    pub(super) prices: PriceTable,
    pub(super) default_output_tokens: u64,
    pub(super) reservation_ttl: Duration,
    pub(super) on_state_error: OnStateError,
    pub(super) recorder: Option<Arc<UsageRecorder>>,
    pub(super) observer: Arc<dyn GuardObserver>,
}

/// Enforces rate limits and budgets (see the [module docs](super)).
#[derive(Clone)]
pub struct RateLimitLayer {
    settings: Arc<Settings>,
}

impl RateLimitLayer {
    /// Global `limits` and `budgets` (a key's own come with its
    /// [`AuthenticatedKey`](crate::auth::AuthenticatedKey)), kept in `state`.
    pub fn new(limits: Limits, budgets: Budgets, state: GuardState) -> Self {
        RateLimitLayer {
            settings: Arc::new(Settings {
                limits,
                budgets,
                state,
                prices: PriceTable::new(),
                default_output_tokens: DEFAULT_OUTPUT_TOKENS,
                reservation_ttl: DEFAULT_RESERVATION_TTL,
                on_state_error: OnStateError::default(),
                recorder: None,
                observer: Arc::new(NoObserver),
            }),
        }
    }

    fn settings_mut(&mut self) -> &mut Settings {
        // Builders run before the layer is shared; a shared one is copied on write.
        Arc::make_mut(&mut self.settings)
    }

    /// Prices for the cost estimate that budgets reserve.
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.settings_mut().prices = prices;
        self
    }

    /// Output tokens reserved when a request sets no `max_tokens`.
    pub fn with_default_output_tokens(mut self, tokens: u64) -> Self {
        self.settings_mut().default_output_tokens = tokens;
        self
    }

    /// How long an unsettled reservation holds.
    pub fn with_reservation_ttl(mut self, ttl: Duration) -> Self {
        self.settings_mut().reservation_ttl = ttl;
        self
    }

    /// What to do when the state backend fails.
    pub fn with_on_state_error(mut self, on_state_error: OnStateError) -> Self {
        self.settings_mut().on_state_error = on_state_error;
        self
    }

    /// Records refused requests (zero cost, with their reason) in `recorder`.
    pub fn with_recorder(mut self, recorder: Arc<UsageRecorder>) -> Self {
        self.settings_mut().recorder = Some(recorder);
        self
    }

    /// Reports decisions to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn GuardObserver>) -> Self {
        self.settings_mut().observer = observer;
        self
    }
}

impl RateLimitLayer {
    /// The layer that enforces `provider`'s provider-scoped limits (global, and the
    /// request's key's), with this layer's state and settings: put it around the
    /// router's target for that provider.
    pub fn for_provider(&self, provider: impl Into<Arc<str>>) -> ProviderRateLimitLayer {
        ProviderRateLimitLayer { settings: self.settings.clone(), provider: provider.into() }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit { inner, settings: self.settings.clone() }
    }
}
