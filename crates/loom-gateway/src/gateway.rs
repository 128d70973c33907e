//! `Gateway`: builds the pipeline from config and runs the front door and admin servers.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use loom_providers::{Provider, ProviderError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use loom_tokens::accounting::{
    AccountingError, CountTokensLayer, PriceTable, TokenAccountingLayer, UsageObserver, UsageRecorder,
};
use loom_tokens::{Encoding, TokenizerRegistry, TokenizerSpec};

use crate::admin::guard_scan::ScanChecks;
use crate::admin::{AdminGuard, AdminState, handle_admin};
use crate::config::{LoomConfig, RoutingConfig, Strategy, provider_is_active};
use crate::front_door::{FrontDoor, FrontDoorSettings};
use crate::metrics::Metrics;
use crate::models::{ModelRefresher, RouteModels};
use crate::pipeline::{Pipeline, Stages, pipeline, token_counter};
use crate::provider_metrics::MetricsLayer;
use crate::provider_metrics::ProviderTokens;
use crate::responses_state::{ResponseStore, ResponseStoreLimits};
use crate::routes::MountedRoute;
use crate::scrub::ScrubErrorsLayer;
use crate::server::{ConnectionLimits, serve};
use crate::workers::Workers;
use loom_guard::auth::AuthLayer;
use loom_guard::check::{CheckLayer, Policy};
use loom_guard::rate_limit::{ProviderRateLimit, RateLimitLayer};
use loom_guard::{Budgets, GuardObserver, GuardState, KeyStore, Limits};
use loom_routing::{ProviderState, RouteTarget, Router};
use std::collections::HashMap;
use tower::ServiceBuilder;
use tower::util::Either;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A provider could not be built from its config.
    #[error("ai_gateway.providers: {0}")]
    Provider(#[from] ProviderError),
    /// Usage accounting could not start (e.g. the ledger file cannot be opened).
    #[error("ai_gateway.token_accounting: {0}")]
    Accounting(#[from] AccountingError),
    /// A configured tokenizer could not be loaded.
    #[error("ai_gateway.token_accounting.tokenizers.{model}: {reason}")]
    Tokenizer {
        /// The model prefix it is configured for.
        model: String,
        /// Why.
        reason: String,
    },
    /// The local embedding model could not be loaded or started.
    #[error("ai_gateway.embedder.path: {0}")]
    Embedder(#[from] loom_tokens::embed::EmbedError),
    /// A `checks` block could not be compiled (validation rules this out).
    #[error("{key}: {source}")]
    Checks {
        /// The config key of the block.
        key: String,
        /// Why.
        source: loom_guard::check::PolicyError,
    },
    /// Keys, rate limits or budgets could not be set up (e.g. a bad Redis URL).
    #[error("ai_gateway.state: {0}")]
    Guard(#[from] loom_guard::GuardError),
    /// The Responses API's conversation store could not be set up (e.g. a bad Redis URL).
    #[error("ai_gateway.state: {0}")]
    Responses(#[from] crate::responses_state::StoreError),
    /// The response cache's shared store could not be set up (e.g. a bad Redis URL).
    #[error("ai_gateway.cache: {0}")]
    Cache(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        /// The config key of the address.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A gateway built from config, ready to serve.
pub struct Gateway {
    front_door: FrontDoor<Pipeline>,
    metrics: Arc<Metrics>,
    provider_states: Vec<Arc<ProviderState>>,
    recorder: Arc<UsageRecorder>,
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    shutdown_timeout: Duration,
    workers: usize,
    limits: ConnectionLimits,
    admin_limits: ConnectionLimits,
    models: ModelRefresher,
    guard: Option<AdminGuard>,
    /// The global budgets, as configured (seeded from the ledger at start).
    budgets: loom_guard::BudgetsConfig,
    /// The global security checks, for `POST /ai/guard/scan`.
    scan_checks: Arc<ScanChecks>,
    /// The response cache, for `GET` and `DELETE /ai/cache`.
    cache: Option<Arc<loom_cache::ResponseCache>>,
}

impl Gateway {
    /// Builds providers, the pipeline and the route table.
    pub fn from_config(config: &LoomConfig) -> Result<Gateway, GatewayError> {
        let ai = &config.ai_gateway;
        // One adapter and one health record per provider, shared by every route's router.
        let mut providers: HashMap<String, (Provider, Arc<ProviderState>)> = HashMap::new();
        let mut provider_states = Vec::new();
        for provider in ai.providers.iter().filter(|provider| provider_is_active(provider)) {
            let state = Arc::new(ProviderState::new(&provider.name, ai.routing.health.clone()));
            provider_states.push(state.clone());
            providers.insert(provider.name.clone(), (Provider::from_config(provider)?, state));
        }
        let metrics = Arc::new(Metrics::with_models(configured_models(config)));
        let accounting = &ai.token_accounting;
        let recorder = Arc::new(UsageRecorder::new(
            accounting.ledger_path.as_deref(),
            accounting.flush_interval,
            // At most 16 GiB (validated); a 32-bit target holds what it can address.
            usize::try_from(accounting.max_aggregate_bytes).unwrap_or(usize::MAX),
            vec![
                metrics.clone() as Arc<dyn UsageObserver>,
                Arc::new(ProviderTokens::new(&provider_states)) as Arc<dyn UsageObserver>,
            ],
        )?);
        // Models no rule knows are estimated with o200k_base (marked not exact).
        let mut tokenizers = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
        for (prefix, spec) in &accounting.tokenizers {
            tokenizers.load(spec).map_err(|error| GatewayError::Tokenizer {
                model: prefix.clone(),
                reason: error.to_string(),
            })?;
            tokenizers = tokenizers.with_model(prefix.clone(), spec.clone());
        }
        let cost_routing = std::iter::once(&ai.routing)
            .chain(config.routes.iter().filter_map(|route| route.routing.as_ref()))
            .any(|routing| routing.strategy == Strategy::Cost);
        let tokenizers = Arc::new(tokenizers);
        // One table: the cost strategy routes by the prices billing charges.
        let prices = price_table(config);
        let accounting_layer = TokenAccountingLayer::new(
            recorder.clone(),
            prices.clone(),
            tokenizers.clone(),
            accounting.count_input || cost_routing,
        )
        .with_request_timeout(config.server.request_timeout);
        let guard = build_guard(config)?;
        let observer = metrics.clone() as Arc<dyn GuardObserver>;
        let auth = guard
            .as_ref()
            .and_then(|guard| guard.keys.clone())
            .map(|keys| AuthLayer::new(keys).with_observer(observer.clone()));
        let rate_limits = guard.as_ref().map(|guard| {
            RateLimitLayer::new(Limits::new(&ai.rate_limits), guard.budgets.clone(), guard.state.clone())
                .with_prices(prices.clone())
                .with_default_output_tokens(ai.reservations.default_output_tokens)
                .with_reservation_ttl(ai.reservations.ttl)
                .with_on_state_error(ai.state.on_state_error)
                .with_recorder(recorder.clone())
                .with_observer(observer.clone())
        });
        let mut checks =
            build_checks(config)?.with_recorder(recorder.clone()).with_observer(observer.clone());
        let embedder = build_embedder(config)?;
        if let Some(embedder) = &embedder {
            checks = checks.with_embedder(embedder.clone());
        }
        let cache =
            build_cache(config, metrics.clone() as Arc<dyn loom_cache::CacheObserver>, embedder, &providers)?;
        let scan_checks = Arc::new(ScanChecks {
            layer: checks.clone(),
            routes: config.routes.iter().map(|route| route.id.clone()).collect(),
        });
        let checks = Some(checks);
        let stages = Stages {
            scrub_errors: ScrubErrorsLayer::for_providers(&ai.providers),
            auth,
            rate_limits,
            checks,
            accounting: accounting_layer,
            cache: cache.clone().map(loom_cache::CacheLayer::new),
            metrics: MetricsLayer::new(metrics.clone()),
            count_tokens: CountTokensLayer::new(tokenizers),
        };
        let routed = |routing: &RoutingConfig| -> (Pipeline, Pipeline, Arc<RouteModels>) {
            let router = build_router(config, routing, &providers, &prices, stages.rate_limits.as_ref());
            let models = Arc::new(route_models(config, routing, &providers));
            (pipeline(&stages, router.clone()), token_counter(&stages, router), models)
        };
        let global = routed(&ai.routing);
        let routes = if ai.enabled {
            config
                .effective_routes()
                .iter()
                .map(|route| {
                    let (pipeline, counter, models) = match &route.routing {
                        Some(routing) => routed(routing),
                        None => global.clone(),
                    };
                    MountedRoute::with_models(route, pipeline, models).with_token_counter(counter)
                })
                .collect()
        } else {
            Vec::new()
        };
        let listers =
            providers.iter().map(|(name, (provider, _))| (name.clone(), provider.clone())).collect();
        let models = ModelRefresher::new(
            &listers,
            routes.iter().map(|route: &MountedRoute<Pipeline>| route.models.clone()).collect(),
            ai.models_refresh,
        );
        let settings = FrontDoorSettings {
            max_body_bytes: config.server.max_body_bytes,
            body_timeout: config.server.body_timeout,
            max_buffered_body_bytes: config.server.buffered_body_budget(),
            streaming_enabled: ai.streaming.enabled,
            flush_interval: ai.streaming.flush_interval,
            request_timeout: config.server.request_timeout,
            metrics: metrics.clone(),
            // Only the authentication stage reads it.
            pass_presented_keys: ai.auth.enabled,
            responses: Arc::new(ResponseStore::from_config(&ai.state, response_store_limits(&ai.responses))?),
        };
        Ok(Gateway {
            front_door: FrontDoor::new(routes, settings),
            metrics,
            provider_states,
            recorder,
            listen: config.server.listen,
            admin_listen: config.admin.enabled.then_some(config.admin.listen),
            shutdown_timeout: config.server.shutdown_timeout,
            limits: ConnectionLimits::front_door(&config.server),
            admin_limits: ConnectionLimits::admin(&config.server),
            models,
            guard,
            budgets: ai.budgets.clone(),
            scan_checks,
            cache,
            workers: config.server.workers.map_or_else(
                || std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
                NonZeroUsize::get,
            ),
        })
    }

    /// The metrics this gateway records.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Where this gateway's usage records go.
    pub fn usage(&self) -> Arc<UsageRecorder> {
        self.recorder.clone()
    }

    /// Binds the configured addresses and serves until [`RunningGateway::shutdown`].
    pub async fn start(self) -> Result<RunningGateway, GatewayError> {
        let listener = TcpListener::bind(self.listen).await.map_err(|source| GatewayError::Bind {
            key: "server.listen",
            addr: self.listen,
            source,
        })?;
        let admin_listener = match self.admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| GatewayError::Bind {
                key: "admin.listen",
                addr,
                source,
            })?),
            None => None,
        };
        if let Some(guard) = &self.guard {
            if let Some(keys) = &guard.keys {
                // Keys created through the admin API on any instance work here from the start.
                if let Err(error) = keys.refresh().await {
                    warn!(%error, "cannot load the keys created at run time; retrying in the background");
                }
            }
            crate::budget_seed::seed_budgets(
                guard,
                &self.budgets,
                &self.recorder,
                std::time::SystemTime::now(),
            );
        }
        Ok(self.start_on(listener, admin_listener))
    }

    /// Serves on already-bound listeners (tests bind port 0): the front door on
    /// `server.workers` threads of its own, the admin server on the current runtime.
    pub fn start_on(self, listener: TcpListener, admin_listener: Option<TcpListener>) -> RunningGateway {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let grace = self.shutdown_timeout;
        let addr = listener.local_addr().ok();
        let front_door = self.front_door.clone();
        let handler = move |request| {
            // Boxed here, once: hyper moves the future it is given several times, and this
            // one is about 3 KB (every stage's state); measured 470 instructions less per request.
            let answer = Box::pin(front_door.handle::<hyper::body::Incoming>(request));
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        };
        let front = match Workers::spawn(self.workers, handler.clone(), &self.limits, grace) {
            Ok(workers) => tokio::spawn(workers.serve(listener, shutdown_rx.clone())),
            Err(error) => {
                warn!(%error, "cannot start worker threads; serving on the current runtime");
                tokio::spawn(serve(listener, handler, self.limits.clone(), shutdown_rx.clone(), grace))
            }
        };
        let mut tasks = vec![front];
        // Keys created, changed or revoked on another instance take effect here within a second.
        let mut background: Vec<JoinHandle<()>> = self
            .guard
            .as_ref()
            .and_then(|guard| guard.keys.as_ref())
            .map(|keys| keys.spawn_refresh(loom_guard::DEFAULT_REFRESH_INTERVAL))
            .into_iter()
            .collect();
        // Answers stored through another instance become semantic hits here.
        if let Some(cache) = self.cache.clone() {
            background.push(tokio::spawn(async move { cache.follow_shared().await }));
        }
        if !self.models.is_idle() {
            tasks.push(tokio::spawn(self.models.run(shutdown_rx.clone())));
        }
        let admin_addr = admin_listener.as_ref().and_then(|listener| listener.local_addr().ok());
        if let Some(admin_listener) = admin_listener {
            let admin = Arc::new(AdminState {
                metrics: self.metrics.clone(),
                usage: self.recorder.clone(),
                providers: self.provider_states.clone(),
                guard: self.guard.clone(),
                checks: self.scan_checks.clone(),
                cache: self.cache.clone(),
            });
            tasks.push(tokio::spawn(serve(
                admin_listener,
                move |request| handle_admin(admin.clone(), request),
                self.admin_limits.clone(),
                shutdown_rx,
                grace,
            )));
        }
        RunningGateway { addr, admin_addr, shutdown_tx, tasks, background, recorder: self.recorder }
    }
}

/// The conversation store's bounds, from `ai_gateway.responses` (validated to fit).
fn response_store_limits(config: &crate::config::ResponsesConfig) -> ResponseStoreLimits {
    let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
    ResponseStoreLimits {
        ttl: config.store_ttl,
        max_entries: size(config.max_conversations),
        max_bytes: size(config.max_bytes),
        max_conversation_bytes: size(config.max_conversation_bytes),
    }
}

/// The guard's state, keys and budgets, when authentication, a rate limit, a budget or
/// the admin key is configured.
fn build_guard(config: &LoomConfig) -> Result<Option<AdminGuard>, GatewayError> {
    let ai = &config.ai_gateway;
    // The admin key protects the admin port even with auth, limits and budgets off.
    if !ai.auth.enabled && ai.auth.admin_key.is_none() && ai.rate_limits.is_empty() && ai.budgets.is_empty() {
        return Ok(None);
    }
    let state = GuardState::from_config(&ai.state)?;
    let keys = if ai.auth.enabled { Some(Arc::new(KeyStore::new(&ai.auth, &state)?)) } else { None };
    Ok(Some(AdminGuard {
        state,
        keys,
        budgets: Budgets::new(&ai.budgets),
        admin_key: ai.auth.admin_key.clone(),
    }))
}

/// The security-check stage: the global checks, each route's and each configured key's;
/// `None` when none are configured (the stage then costs nothing).
fn build_checks(config: &LoomConfig) -> Result<CheckLayer, GatewayError> {
    let ai = &config.ai_gateway;
    let compile = |key: String, checks: &loom_guard::ChecksConfig| {
        Policy::new(checks).map_err(|source| GatewayError::Checks { key, source })
    };
    let routes: Vec<(&str, &loom_guard::ChecksConfig)> = config
        .routes
        .iter()
        .filter_map(|route| route.checks.as_ref().map(|checks| (route.id.as_str(), checks)))
        .collect();
    let keys: Vec<(&str, &loom_guard::ChecksConfig)> = ai
        .auth
        .keys
        .iter()
        .filter_map(|key| key.checks.as_ref().map(|checks| (key.id.as_str(), checks)))
        .collect();
    // Without a `checks` block, the built-in one: the injection check, flagging.
    let global = match &ai.checks {
        Some(checks) => compile("ai_gateway.checks".to_owned(), checks)?,
        None => compile("ai_gateway.checks".to_owned(), &loom_guard::ChecksConfig::built_in())?,
    };
    let mut layer = CheckLayer::new(Some(global));
    for (id, checks) in routes {
        layer = layer.with_route(id, compile(format!("routes ({id}).checks"), checks)?);
    }
    for (id, checks) in keys {
        layer = layer.with_key(id, compile(format!("ai_gateway.auth.keys ({id}).checks"), checks)?);
    }
    Ok(layer)
}

/// The local embedding model on its threads, when `ai_gateway.embedder` is configured.
fn build_embedder(config: &LoomConfig) -> Result<Option<Arc<loom_tokens::embed::EmbedPool>>, GatewayError> {
    let Some(embedder) = &config.ai_gateway.embedder else { return Ok(None) };
    let model = loom_tokens::embed::Embedder::load(&embedder.path)?;
    let options =
        loom_tokens::embed::PoolOptions { threads: embedder.threads, queue_capacity: embedder.queue };
    Ok(Some(Arc::new(loom_tokens::embed::EmbedPool::new(Arc::new(model), options)?)))
}

/// The response cache, when any route caches.
fn build_cache(
    config: &LoomConfig,
    observer: Arc<dyn loom_cache::CacheObserver>,
    embedder: Option<Arc<loom_tokens::embed::EmbedPool>>,
    providers: &HashMap<String, (Provider, Arc<ProviderState>)>,
) -> Result<Option<Arc<loom_cache::ResponseCache>>, GatewayError> {
    let global = &config.ai_gateway.cache;
    let routes: Vec<(String, loom_cache::CachePolicy)> = config
        .routes
        .iter()
        .filter_map(|route| {
            let changes = route.cache.as_ref()?;
            Some((route.id.clone(), loom_cache::CachePolicy::of(global, Some(changes))))
        })
        .collect();
    let caches = global.enabled || routes.iter().any(|(_, policy)| policy.enabled);
    if !caches {
        return Ok(None);
    }
    let semantic = global.semantic.enabled || routes.iter().any(|(_, policy)| policy.semantic);
    let mut cache = loom_cache::ResponseCache::new(global, routes).with_observer(observer);
    if semantic {
        let question_embedder: Option<Arc<dyn loom_cache::QuestionEmbedder>> = match &global.semantic.embedder
        {
            Some(remote) => providers.get(&remote.provider).map(|(provider, _)| {
                Arc::new(crate::cache_embedder::ProviderEmbedder::new(
                    provider.clone(),
                    remote.model.clone(),
                    remote.dimensions,
                    remote.max_concurrent,
                )) as Arc<dyn loom_cache::QuestionEmbedder>
            }),
            None => embedder.map(|pool| {
                Arc::new(crate::cache_embedder::LocalEmbedder::new(pool))
                    as Arc<dyn loom_cache::QuestionEmbedder>
            }),
        };
        if let Some(question_embedder) = question_embedder {
            cache = cache.with_semantic(question_embedder);
        }
    }
    let state = &config.ai_gateway.state;
    if global.store == loom_cache::config::StoreChoice::State && state.backend == loom_guard::Backend::Redis {
        let url = state.url.as_ref().ok_or_else(|| {
            GatewayError::Cache("ai_gateway.state.url is required when backend is redis".into())
        })?;
        let store =
            loom_cache::redis_store::RedisCacheStore::new(url.expose(), &state.key_prefix, state.timeout)
                .map_err(|error| GatewayError::Cache(error.to_string()))?;
        cache = cache.with_shared(Arc::new(store));
    }
    Ok(Some(Arc::new(cache)))
}

/// A router target: a provider, behind its provider-scoped limits when any may apply.
type Target = Either<ProviderRateLimit<Provider>, Provider>;

/// The router of one routing block: its targets in priority order, pricing with `prices`.
fn build_router(
    config: &LoomConfig,
    routing: &RoutingConfig,
    providers: &HashMap<String, (Provider, Arc<ProviderState>)>,
    prices: &PriceTable,
    rate_limits: Option<&RateLimitLayer>,
) -> Router<Target> {
    let ai = &config.ai_gateway;
    let targets = routing
        .targets_by_priority(&ai.providers)
        .into_iter()
        .filter_map(|target| {
            // Inactive provider types load but get no traffic.
            let (provider, state) = providers.get(&target.name)?;
            let provider_config = ai.provider(&target.name)?;
            // Provider-scoped limits are checked once the router has picked the provider.
            let provider_limits = rate_limits.map(|layer| layer.for_provider(target.name.as_str()));
            Some(RouteTarget {
                provider: ServiceBuilder::new().option_layer(provider_limits).service(provider.clone()),
                state: state.clone(),
                models: provider_config.models.clone(),
                weight: target.effective_weight(),
            })
        })
        .collect();
    Router::new(targets, routing, ai.model_mapping.clone()).with_prices(prices.clone())
}

/// The `/v1/models` answers of one routing block, over its active providers.
fn route_models(
    config: &LoomConfig,
    routing: &RoutingConfig,
    providers: &HashMap<String, (Provider, Arc<ProviderState>)>,
) -> RouteModels {
    let ai = &config.ai_gateway;
    let targets = routing.targets_by_priority(&ai.providers);
    let served: Vec<_> = targets
        .iter()
        .filter(|target| providers.contains_key(&target.name))
        .filter_map(|target| ai.provider(&target.name))
        .collect();
    RouteModels::new(&ai.model_mapping, &served, |name| {
        providers.get(name).is_some_and(|(provider, _)| provider.lists_models())
    })
}

/// The one price table routing and billing read: each provider's own price, wherever
/// config writes it ([`LoomConfig::provider_prices`]), over `token_accounting.prices`
/// and the built-in model table.
fn price_table(config: &LoomConfig) -> PriceTable {
    let mut table = PriceTable::new();
    for (model, price) in &config.ai_gateway.token_accounting.prices {
        table.set_model_price(model.clone(), *price);
    }
    for (provider, price) in config.provider_prices() {
        table.set_provider_price(provider, price);
    }
    table
}

/// A serving gateway.
pub struct RunningGateway {
    addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Loops that run until shutdown: polling the state backend for key changes, following
    /// the shared cache's index stream.
    background: Vec<JoinHandle<()>>,
    recorder: Arc<UsageRecorder>,
}

impl RunningGateway {
    /// Address of the front door.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Address of the admin server, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting, drains in-flight requests (streams included) within the
    /// configured grace period, commits the usage ledger, and returns when both
    /// servers have stopped.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for task in self.background {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let recorder = self.recorder;
        let _ = tokio::task::spawn_blocking(move || recorder.flush()).await;
    }
}

/// Every model name the configuration names: providers' `models:` lists and Azure
/// deployments, and both sides of `model_mapping`.
fn configured_models(config: &LoomConfig) -> impl Iterator<Item = &str> {
    let ai = &config.ai_gateway;
    let listed =
        ai.providers.iter().flat_map(|provider| provider.models.iter().chain(provider.deployments.keys()));
    let mapped = ai
        .model_mapping
        .iter()
        .flat_map(|(model, per_provider)| std::iter::once(model).chain(per_provider.values()));
    listed.chain(mapped).map(String::as_str)
}
