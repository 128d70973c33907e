//! Rules a loaded config must meet; each error names the offending key.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::time::Duration;

use loom_providers::{ProviderConfig, ProviderType, ResponsesApi};
use loom_tokens::accounting::Price;

use super::error::ConfigError;
use super::limits::{
    DELAY, DurationRange, MAX_AGGREGATE_BYTES, MAX_BODY_BYTES, MAX_BUFFERED_BODY_BYTES, MAX_CONNECTIONS,
    MAX_CONVERSATION_BYTES, MAX_CONVERSATIONS, MAX_CONVERSATIONS_BYTES, MAX_HTTP2_STREAMS,
    MAX_POOL_IDLE_PER_HOST, MAX_RETRIES, MAX_WEIGHT, MAX_WORKERS, MODELS_REFRESH, RESPONSES_TTL,
    STREAM_BATCH, TIMEOUT, WORKERS_PER_CPU, check_count, check_durations, check_price, max_workers,
};
use super::schema::{AiGatewayConfig, LoomConfig, RouteConfig, RoutingConfig, ServerConfig, Strategy};

type Result = std::result::Result<(), ConfigError>;

/// The rule violations found so far, in config order.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    /// Records a violation at `key`.
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::invalid(key, message));
    }

    /// Records the violation a check found, if any.
    fn keep(&mut self, check: Result) {
        if let Err(error) = check {
            self.0.push(error);
        }
    }

    /// Records every duration of the table that is out of its range.
    fn durations(&mut self, prefix: &str, table: &[(&str, Duration, DurationRange)]) {
        self.0.extend(check_durations(prefix, table));
    }
}

impl LoomConfig {
    /// Checks every rule a loaded config must meet. The error names the offending key;
    /// when several rules are broken it is [`ConfigError::Many`], listing each in config order.
    pub fn validate(&self) -> Result {
        let mut problems = Problems::default();
        validate_server(&self.server, &mut problems);
        if self.admin.enabled && self.admin.listen.port() != 0 && self.admin.listen == self.server.listen {
            problems.add(
                "admin.listen",
                format!("{} is also server.listen; the admin API needs its own address", self.admin.listen),
            );
        }
        if self.logging.level.trim().is_empty() {
            problems.add("logging.level", "must not be empty (e.g. `info`)");
        }
        validate_ai_gateway(&self.ai_gateway, &mut problems);
        validate_guard(&self.ai_gateway, &mut problems);
        let serves_ai = self.effective_routes().iter().any(|route| route.ai_gateway);
        if self.ai_gateway.enabled && serves_ai && self.ai_gateway.providers.is_empty() {
            problems.add(
                "ai_gateway.providers",
                "at least one provider is required (or set ai_gateway.enabled: false)",
            );
        }
        validate_routes(&self.routes, &self.ai_gateway, &mut problems);
        validate_cache(self, &mut problems);
        check_native_responses(self, &mut problems);
        check_one_price_per_provider(&self.written_prices(), &mut problems);
        ConfigError::from_problems(problems.0).map_or(Ok(()), Err)
    }
}

/// Checks `ai_gateway.cache` and the routes' `cache` blocks.
fn validate_cache(config: &LoomConfig, problems: &mut Problems) {
    let cache = &config.ai_gateway.cache;
    if let Err(error) = cache.validate() {
        problems.add(format!("ai_gateway.cache.{}", error.key), error.reason);
    }
    let semantic_anywhere = cache.semantic.enabled
        || config.routes.iter().any(|route| {
            route
                .cache
                .as_ref()
                .and_then(|cache| cache.semantic.as_ref())
                .and_then(|semantic| semantic.enabled)
                == Some(true)
        });
    match &cache.semantic.embedder {
        Some(embedder) if config.ai_gateway.provider(&embedder.provider).is_none() => problems.add(
            "ai_gateway.cache.semantic.embedder.provider",
            format!("no provider named \"{}\" in ai_gateway.providers", embedder.provider),
        ),
        Some(_) => {}
        None if semantic_anywhere && config.ai_gateway.embedder.is_none() => problems.add(
            "ai_gateway.cache.semantic.enabled",
            "needs `ai_gateway.embedder` (the model's path) or `semantic.embedder` (a provider)",
        ),
        None => {}
    }
    for (index, route) in config.routes.iter().enumerate() {
        let Some(route_cache) = &route.cache else { continue };
        let key = format!("routes[{index}].cache");
        if !route.ai_gateway {
            problems.add(key, "only allowed on a route with `ai_gateway: true`");
        } else if let Err(error) = route_cache.validate() {
            problems.add(format!("{key}.{}", error.key), error.reason);
        }
    }
}

/// Checks keys, rate limits, budgets, reservations, the state backend and security checks.
fn validate_guard(ai: &AiGatewayConfig, problems: &mut Problems) {
    let found = [
        ai.auth.validate_at("ai_gateway.auth"),
        loom_guard::validate_limits(&ai.rate_limits, "ai_gateway.rate_limits"),
        loom_guard::validate_budgets(&ai.budgets, "ai_gateway.budgets"),
        ai.reservations.validate_at("ai_gateway.reservations"),
        ai.state.validate_at("ai_gateway.state"),
        ai.checks.as_ref().map(|checks| checks.validate_at("ai_gateway.checks")).unwrap_or_default(),
    ];
    for problem in found.into_iter().flatten() {
        problems.add(problem.path, problem.message);
    }
    validate_embedder(ai, problems);
}

/// An embedding stage needs `ai_gateway.embedder`; the embedder needs a thread.
fn validate_embedder(ai: &AiGatewayConfig, problems: &mut Problems) {
    if let Some(embedder) = &ai.embedder
        && !(1..=64).contains(&embedder.threads)
    {
        problems.add("ai_gateway.embedder.threads", "must be 1 to 64");
    }
    if ai.embedder.is_some() {
        return;
    }
    let key_checks = ai
        .auth
        .keys
        .iter()
        .enumerate()
        .map(|(index, key)| (format!("ai_gateway.auth.keys[{index}].checks"), &key.checks));
    let global = std::iter::once(("ai_gateway.checks".to_owned(), &ai.checks));
    for (path, checks) in global.chain(key_checks) {
        if checks.as_ref().is_some_and(|checks| checks.injection.embedding.enabled) {
            problems.add(
                format!("{path}.injection.embedding.enabled"),
                "needs `ai_gateway.embedder` (the model's path)",
            );
        }
    }
}

/// One place a provider's price is written: `cost_per_1k_*` on the provider itself, or
/// on its entry in a routing block.
pub(crate) struct WrittenPrice<'a> {
    /// The provider priced.
    pub(crate) provider: &'a str,
    /// The config key of the entry (without `.cost_per_1k_*`).
    pub(crate) key: String,
    pub(crate) input: Option<f64>,
    pub(crate) output: Option<f64>,
}

impl LoomConfig {
    /// Every place a provider's price is written, in config order: `ai_gateway.providers`,
    /// `ai_gateway.routing`, then each route's `routing`.
    pub(crate) fn written_prices(&self) -> Vec<WrittenPrice<'_>> {
        let ai = &self.ai_gateway;
        let on_providers = ai.providers.iter().enumerate().map(|(index, provider)| WrittenPrice {
            provider: &provider.name,
            key: format!("ai_gateway.providers[{index}]"),
            input: provider.cost_per_1k_input,
            output: provider.cost_per_1k_output,
        });
        let blocks = std::iter::once(("ai_gateway.routing".to_owned(), &ai.routing)).chain(
            self.routes.iter().enumerate().filter_map(|(index, route)| {
                route.routing.as_ref().map(|routing| (format!("routes[{index}].routing"), routing))
            }),
        );
        let on_targets = blocks.flat_map(|(key, routing)| {
            routing.providers.iter().enumerate().map(move |(index, target)| WrittenPrice {
                provider: &target.name,
                key: format!("{key}.providers[{index}]"),
                input: target.cost_per_1k_input,
                output: target.cost_per_1k_output,
            })
        });
        on_providers
            .chain(on_targets)
            .filter(|written| written.input.is_some() || written.output.is_some())
            .collect()
    }

    /// Each provider's own price, by the one rule routing and billing share: its
    /// `cost_per_1k_input` and `cost_per_1k_output` may be written on the provider or on
    /// its entry in any routing block, and have one value wherever they are written
    /// ([`LoomConfig::validate`] refuses two); one left unset counts as 0. Providers
    /// written nowhere are absent: the price of the model they serve applies.
    pub(crate) fn provider_prices(&self) -> BTreeMap<&str, Price> {
        let mut prices: BTreeMap<&str, (Option<f64>, Option<f64>)> = BTreeMap::new();
        for written in self.written_prices() {
            let (input, output) = prices.entry(written.provider).or_default();
            *input = input.or(written.input);
            *output = output.or(written.output);
        }
        prices
            .into_iter()
            .map(|(provider, (input, output))| {
                (provider, Price::new(input.unwrap_or(0.0), output.unwrap_or(0.0)))
            })
            .collect()
    }
}

/// Refuses a provider whose `cost_per_1k_input` or `cost_per_1k_output` is written twice
/// with different values: routing and billing must read one price.
fn check_one_price_per_provider(written: &[WrittenPrice<'_>], problems: &mut Problems) {
    type Field = fn(&WrittenPrice<'_>) -> Option<f64>;
    let fields: [(&str, Field); 2] =
        [("cost_per_1k_input", |written| written.input), ("cost_per_1k_output", |written| written.output)];
    for (field, value_of) in fields {
        let mut first: BTreeMap<&str, (&str, f64)> = BTreeMap::new();
        for entry in written {
            let Some(value) = value_of(entry) else { continue };
            match first.get(entry.provider) {
                None => {
                    first.insert(entry.provider, (&entry.key, value));
                }
                Some(&(first_key, first_value)) if first_value != value => problems.add(
                    format!("{}.{field}", entry.key),
                    format!(
                        "provider \"{}\" costs {value} here but {first_value} at {first_key}.{field}; \
                         a provider has one price, used for routing and billing alike: write it once, \
                         or the same everywhere",
                        entry.provider
                    ),
                ),
                Some(_) => {}
            }
        }
    }
}

fn validate_server(server: &ServerConfig, problems: &mut Problems) {
    problems.keep(check_count("server.max_body_bytes", server.max_body_bytes, 1, MAX_BODY_BYTES));
    // Every `server.*` duration has one line here (ranges: limits.rs).
    problems.durations(
        "server",
        &[
            ("request_timeout", server.request_timeout, TIMEOUT),
            ("shutdown_timeout", server.shutdown_timeout, TIMEOUT),
            ("body_timeout", server.body_timeout, TIMEOUT),
            ("header_timeout", server.header_timeout, TIMEOUT),
            ("keepalive_timeout", server.keepalive_timeout, TIMEOUT),
            ("http2_keepalive_interval", server.http2_keepalive_interval, TIMEOUT),
        ],
    );
    if let Some(max) = server.max_connections {
        problems.keep(check_count("server.max_connections", max.get() as u64, 1, MAX_CONNECTIONS));
    }
    if let Some(budget) = server.max_buffered_body_bytes {
        // A budget below one body would refuse every body of the largest allowed size.
        problems.keep(check_count(
            "server.max_buffered_body_bytes",
            budget,
            server.max_body_bytes,
            MAX_BUFFERED_BODY_BYTES,
        ));
    }
    problems.keep(check_count(
        "server.http2_max_concurrent_streams",
        u64::from(server.http2_max_concurrent_streams),
        1,
        MAX_HTTP2_STREAMS,
    ));
    problems.keep(check_workers(server.workers));
}

/// Checks `server.workers` against this machine: at most 8 per CPU, and 1024 in all.
fn check_workers(workers: Option<NonZeroUsize>) -> Result {
    let Some(workers) = workers else { return Ok(()) };
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let limit = max_workers(cpus);
    if workers.get() <= limit {
        return Ok(());
    }
    Err(ConfigError::invalid(
        "server.workers",
        format!(
            "{workers} is more than the limit of {limit} ({WORKERS_PER_CPU} per CPU, {cpus} CPUs here, \
             {MAX_WORKERS} at most); leave it unset for one per CPU"
        ),
    ))
}

fn validate_ai_gateway(ai: &AiGatewayConfig, problems: &mut Problems) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, provider) in ai.providers.iter().enumerate() {
        let key = format!("ai_gateway.providers[{index}]");
        if provider.name.trim().is_empty() {
            problems.add(format!("{key}.name"), "must not be empty");
        } else if let Some(first) = seen.insert(&provider.name, index) {
            problems.add(
                format!("{key}.name"),
                format!("duplicate provider name \"{}\" (also ai_gateway.providers[{first}])", provider.name),
            );
        }
        validate_provider(&key, provider, problems);
    }
    validate_routing(&ai.routing, "ai_gateway.routing", &ai.providers, problems);
    problems
        .durations("ai_gateway.streaming", &[("flush_interval", ai.streaming.flush_interval, STREAM_BATCH)]);
    problems.durations("ai_gateway", &[("models_refresh", ai.models_refresh, MODELS_REFRESH)]);
    let accounting = &ai.token_accounting;
    problems
        .durations("ai_gateway.token_accounting", &[("flush_interval", accounting.flush_interval, DELAY)]);
    problems.keep(check_count(
        "ai_gateway.token_accounting.max_aggregate_bytes",
        accounting.max_aggregate_bytes,
        0,
        MAX_AGGREGATE_BYTES,
    ));
    validate_responses(&ai.responses, problems);
    for (model, price) in &accounting.prices {
        let key = format!("ai_gateway.token_accounting.prices.{model}");
        problems.keep(check_price(&format!("{key}.cost_per_1k_input"), Some(price.cost_per_1k_input)));
        problems.keep(check_price(&format!("{key}.cost_per_1k_output"), Some(price.cost_per_1k_output)));
        problems
            .keep(check_price(&format!("{key}.cost_per_1k_cached_input"), price.cost_per_1k_cached_input));
    }
    for (model, per_provider) in &ai.model_mapping {
        let key = format!("ai_gateway.model_mapping.{model}");
        if model.trim().is_empty() {
            problems.add(key.clone(), "the client model name must not be empty");
        }
        for (provider, target) in per_provider {
            let key = format!("{key}.{provider}");
            if ai.provider(provider).is_none() {
                problems.add(key.clone(), unknown_provider(provider, &ai.providers));
            }
            if target.trim().is_empty() {
                problems.add(key, "the provider model name must not be empty");
            }
        }
    }
}

/// `responses_api: native` passes the upstream's answer on as Responses JSON, which the
/// checks that read or rewrite answers cannot read: the two are refused together.
fn check_native_responses(config: &LoomConfig, problems: &mut Problems) {
    let ai = &config.ai_gateway;
    let touches_answers = |checks: &loom_guard::ChecksConfig| {
        use loom_guard::check::Side;
        let pii = &checks.pii;
        let pii_answers =
            pii.enabled && (pii.action == loom_guard::Action::Redact || pii.on.contains(&Side::Response));
        pii_answers || checks.content_filters.iter().any(|filter| filter.on.contains(&Side::Response))
    };
    let answer_checks = ai
        .checks
        .iter()
        .map(|checks| ("ai_gateway.checks".to_owned(), checks))
        .chain(config.routes.iter().filter_map(|route| {
            route.checks.as_ref().map(|checks| (format!("routes ({}).checks", route.id), checks))
        }))
        .chain(ai.auth.keys.iter().filter_map(|key| {
            key.checks.as_ref().map(|checks| (format!("ai_gateway.auth.keys ({}).checks", key.id), checks))
        }))
        .find(|(_, checks)| touches_answers(checks));
    let Some((checks_key, _)) = answer_checks else { return };
    for (index, provider) in ai.providers.iter().enumerate() {
        if provider.responses_api == ResponsesApi::Native {
            problems.add(
                format!("ai_gateway.providers[{index}].responses_api"),
                format!(
                    "`native` passes answers on as the upstream's Responses JSON, which the answer checks of \
                     {checks_key} (pii `redact`, or `on: [response]`) cannot read; use `translate`"
                ),
            );
        }
    }
}

/// `ai_gateway.responses`: a ttl Redis can expire, and bounds that fit in memory.
fn validate_responses(responses: &super::schema::ResponsesConfig, problems: &mut Problems) {
    const KEY: &str = "ai_gateway.responses";
    problems.durations(KEY, &[("store_ttl", responses.store_ttl, RESPONSES_TTL)]);
    problems.keep(check_count(
        &format!("{KEY}.max_conversations"),
        responses.max_conversations,
        0,
        MAX_CONVERSATIONS,
    ));
    problems.keep(check_count(&format!("{KEY}.max_bytes"), responses.max_bytes, 1, MAX_CONVERSATIONS_BYTES));
    problems.keep(check_count(
        &format!("{KEY}.max_conversation_bytes"),
        responses.max_conversation_bytes,
        1,
        MAX_CONVERSATION_BYTES,
    ));
    if responses.max_bytes > 0 && responses.max_conversation_bytes > responses.max_bytes {
        problems.add(
            format!("{KEY}.max_conversation_bytes"),
            format!(
                "must be at most {KEY}.max_bytes ({}), not {}",
                responses.max_bytes, responses.max_conversation_bytes
            ),
        );
    }
}

fn validate_provider(key: &str, provider: &ProviderConfig, problems: &mut Problems) {
    let kind = provider.kind;
    if provider.responses_api == ResponsesApi::Native && kind != ProviderType::Openai {
        problems.add(
            format!("{key}.responses_api"),
            format!("`native` is for `type: openai` providers (this one is `{}`)", kind.as_str()),
        );
    }
    let needs_key = matches!(
        kind,
        ProviderType::Openai | ProviderType::Azure | ProviderType::Anthropic | ProviderType::Gemini
    );
    let has_key = provider.api_key.as_ref().is_some_and(|secret| !secret.expose().is_empty());
    if needs_key && !has_key {
        let hint = if kind == ProviderType::Openai {
            "; for an OpenAI-compatible server without keys use `type: local` with `format: openai`"
        } else {
            ""
        };
        problems.add(
            format!("{key}.api_key"),
            format!("required for type {} (e.g. `api_key: ${{API_KEY_VAR}}`){hint}", kind.as_str()),
        );
    }
    let requires: &[(&str, bool)] = match kind {
        ProviderType::Azure => {
            &[("base_url", provider.base_url.is_some()), ("api_version", provider.api_version.is_some())]
        }
        ProviderType::Local => {
            &[("base_url", provider.base_url.is_some()), ("format", provider.format.is_some())]
        }
        ProviderType::Vertex => &[("vertex", provider.vertex.is_some())],
        _ => &[],
    };
    for (field, present) in requires {
        if !present {
            problems.add(format!("{key}.{field}"), format!("required for type {}", kind.as_str()));
        }
    }
    if let Some(base_url) = &provider.base_url
        && let Err(message) = check_http_url(base_url)
    {
        problems.add(format!("{key}.base_url"), message);
    }
    let only_on: [(&str, bool, ProviderType); 4] = [
        ("deployments", !provider.deployments.is_empty(), ProviderType::Azure),
        ("format", provider.format.is_some(), ProviderType::Local),
        ("mock", provider.mock.is_some(), ProviderType::Mock),
        ("vertex", provider.vertex.is_some(), ProviderType::Vertex),
    ];
    for (field, present, allowed) in only_on {
        if present && kind != allowed {
            problems.add(
                format!("{key}.{field}"),
                format!("only allowed on type {}, this provider is type {}", allowed.as_str(), kind.as_str()),
            );
        }
    }
    for (index, model) in provider.models.iter().enumerate() {
        if model.trim().is_empty() {
            problems.add(format!("{key}.models[{index}]"), "must not be empty");
        }
    }
    for (model, deployment) in &provider.deployments {
        if deployment.trim().is_empty() {
            problems.add(format!("{key}.deployments.{model}"), "must not be empty");
        }
    }
    problems.keep(check_price(&format!("{key}.cost_per_1k_input"), provider.cost_per_1k_input));
    problems.keep(check_price(&format!("{key}.cost_per_1k_output"), provider.cost_per_1k_output));
    let timeouts = &provider.timeouts;
    problems.durations(
        &format!("{key}.timeouts"),
        &[
            ("connect", timeouts.connect, TIMEOUT),
            ("first_byte", timeouts.first_byte, TIMEOUT),
            ("idle", timeouts.idle, TIMEOUT),
            ("request", timeouts.request, TIMEOUT),
        ],
    );
    if let Some(mock) = &provider.mock {
        problems.durations(
            &format!("{key}.mock"),
            &[("latency", mock.latency, DELAY), ("chunk_delay", mock.chunk_delay, DELAY)],
        );
    }
    problems.keep(check_count(
        &format!("{key}.pool_max_idle_per_host"),
        u64::try_from(provider.pool_max_idle_per_host).unwrap_or(u64::MAX),
        0,
        MAX_POOL_IDLE_PER_HOST,
    ));
    for (name, value) in &provider.headers {
        let key = format!("{key}.headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.add(key, "not a valid HTTP header name");
        } else if http::HeaderValue::from_str(value.expose()).is_err() {
            problems.add(key, "not a valid HTTP header value (control characters?)");
        }
    }
}

/// Checks a `routing:` block (global or per route) rooted at `key`.
fn validate_routing(
    routing: &RoutingConfig,
    key: &str,
    providers: &[ProviderConfig],
    problems: &mut Problems,
) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, target) in routing.providers.iter().enumerate() {
        let target_key = format!("{key}.providers[{index}]");
        if !providers.iter().any(|provider| provider.name == target.name) {
            problems.add(format!("{target_key}.name"), unknown_provider(&target.name, providers));
        } else if let Some(first) = seen.insert(&target.name, index) {
            problems.add(
                format!("{target_key}.name"),
                format!("provider \"{}\" is already listed at {key}.providers[{first}]", target.name),
            );
        }
        problems.keep(check_price(&format!("{target_key}.cost_per_1k_input"), target.cost_per_1k_input));
        problems.keep(check_price(&format!("{target_key}.cost_per_1k_output"), target.cost_per_1k_output));
        if let Some(weight) = target.weight {
            problems.keep(check_count(&format!("{target_key}.weight"), weight.into(), 0, MAX_WEIGHT));
        }
    }
    if routing.strategy == Strategy::Weighted {
        let targets = routing.targets_or_all(providers);
        if !targets.is_empty() && targets.iter().all(|target| target.effective_weight() == 0) {
            problems.add(
                format!("{key}.providers"),
                "strategy weighted needs at least one target with a weight above 0",
            );
        }
    }
    let (failover, health) = (&routing.failover, &routing.health);
    problems.keep(check_count(
        &format!("{key}.failover.max_retries"),
        failover.max_retries.into(),
        0,
        MAX_RETRIES,
    ));
    problems.durations(
        &format!("{key}.failover"),
        &[("backoff", failover.backoff, DELAY), ("max_backoff", failover.max_backoff, DELAY)],
    );
    problems.keep(check_count(
        &format!("{key}.health.failure_threshold"),
        health.failure_threshold.into(),
        1,
        u64::MAX,
    ));
    problems.durations(
        &format!("{key}.health"),
        &[("cooldown", health.cooldown, TIMEOUT), ("probe_interval", health.probe_interval, TIMEOUT)],
    );
    for (index, code) in routing.failover.retry_codes.iter().enumerate() {
        if !(400..=599).contains(code) {
            problems.add(
                format!("{key}.failover.retry_codes[{index}]"),
                format!("{code} is not an HTTP error status (400-599)"),
            );
        }
    }
}

fn validate_routes(routes: &[RouteConfig], ai: &AiGatewayConfig, problems: &mut Problems) {
    let providers = &ai.providers;
    let mut ids = BTreeSet::new();
    let mut paths = BTreeMap::new();
    for (index, route) in routes.iter().enumerate() {
        let key = format!("routes[{index}]");
        if route.id.trim().is_empty() {
            problems.add(format!("{key}.id"), "must not be empty");
        } else if !ids.insert(route.id.as_str()) {
            problems.add(format!("{key}.id"), format!("duplicate route id \"{}\"", route.id));
        }
        if let Err(message) = check_route_path(&route.path) {
            problems.add(format!("{key}.path"), message);
        } else if let Some(first) = paths.insert(route.path.as_str(), index) {
            problems.add(
                format!("{key}.path"),
                format!("\"{}\" is already the path of routes[{first}]", route.path),
            );
        }
        if let Some(checks) = &route.checks {
            if route.ai_gateway {
                for problem in checks.validate_at(&format!("{key}.checks")) {
                    problems.add(problem.path, problem.message);
                }
                if checks.injection.embedding.enabled && ai.embedder.is_none() {
                    problems.add(
                        format!("{key}.checks.injection.embedding.enabled"),
                        "needs `ai_gateway.embedder` (the model's path)",
                    );
                }
            } else {
                problems.add(format!("{key}.checks"), "only allowed on a route with `ai_gateway: true`");
            }
        }
        if let Some(routing) = &route.routing {
            if route.ai_gateway {
                validate_routing(routing, &format!("{key}.routing"), providers, problems);
            } else {
                problems.add(format!("{key}.routing"), "only allowed on a route with `ai_gateway: true`");
            }
        }
    }
}

/// Checks a route path pattern: starts with `/`, and a `*` only as a trailing `/*`.
fn check_route_path(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("\"{path}\" must start with `/`"));
    }
    let body = path.strip_suffix("/*").unwrap_or(path);
    if body.contains('*') {
        return Err(format!("\"{path}\": only a trailing `/*` wildcard is allowed (e.g. `/v1/*`)"));
    }
    if path.contains(['?', '#', ' ']) {
        return Err(format!("\"{path}\" must be a plain path (no query, fragment or spaces)"));
    }
    Ok(())
}

/// Checks that `url` is an absolute http(s) URL; the message never repeats the URL (it may hold credentials).
fn check_http_url(url: &str) -> std::result::Result<(), String> {
    let uri: http::Uri =
        url.parse().map_err(|_| "not a valid URL; expected e.g. `https://api.openai.com/v1`".to_owned())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err("must use http:// or https://".to_owned()),
        None => return Err("must be an absolute URL starting with http:// or https://".to_owned()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("must name a host, e.g. `https://api.openai.com/v1`".to_owned());
    }
    Ok(())
}

/// The message for a reference to a provider that is not defined.
fn unknown_provider(name: &str, providers: &[ProviderConfig]) -> String {
    if providers.is_empty() {
        return format!("unknown provider \"{name}\"; no providers are defined in ai_gateway.providers");
    }
    let defined: Vec<&str> = providers.iter().map(|provider| provider.name.as_str()).collect();
    format!("unknown provider \"{name}\"; defined: {}", defined.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_paths() {
        assert!(check_route_path("/v1/*").is_ok());
        assert!(check_route_path("/*").is_ok());
        assert!(check_route_path("/v1/chat/completions").is_ok());
        assert!(check_route_path("v1/*").is_err());
        assert!(check_route_path("/v1*").is_err());
        assert!(check_route_path("/v1/*/chat").is_err());
        assert!(check_route_path("/v1/**").is_err());
    }

    #[test]
    fn a_provider_has_one_price_from_wherever_it_is_written() {
        let yaml = "ai_gateway:\n  providers:\n    - {name: a, type: mock, cost_per_1k_input: 0.01}\n    - {name: b, type: mock}\n    - {name: c, type: mock}\n  routing:\n    providers:\n      - {name: a, cost_per_1k_output: 0.03}\n      - {name: b}\nroutes:\n  - id: r\n    path: /v1/*\n    ai_gateway: true\n    routing:\n      providers:\n        - {name: b, cost_per_1k_output: 0.5}\n";
        let config = LoomConfig::from_yaml_str(yaml, &|_| None).unwrap();
        let prices: Vec<_> = config.provider_prices().into_iter().collect();
        // `a` joins its halves, `b` is priced by a route's block (input unset: 0), `c` nowhere.
        assert_eq!(prices, [("a", Price::new(0.01, 0.03)), ("b", Price::new(0.0, 0.5))]);
    }

    #[test]
    fn checks_are_validated_where_they_are_written() {
        let yaml = "ai_gateway:
  providers:
    - {name: o, type: openai, api_key: k}
  checks:
    injection: {threshold: 0}
  auth:
    enabled: true
    keys:
      - {id: app, key: lk-app, checks: {content_filters: [{name: empty}]}}
routes:
  - {id: ai, path: /v1/*, ai_gateway: true, checks: {content_filters: [{name: x, regex: ['(']}]}}
  - {id: web, path: /web/*, checks: {}}
";
        let error = LoomConfig::from_yaml_str(yaml, &|_| None).unwrap_err().to_string();
        for expected in [
            "ai_gateway.checks.injection.threshold: 0 is not in (0, 1]",
            "ai_gateway.auth.keys[0].checks.content_filters[0]: set `deny`, `regex` or both",
            "routes[0].checks.content_filters[0].regex[0]: not a valid regular expression",
            "routes[1].checks: only allowed on a route with `ai_gateway: true`",
        ] {
            assert!(error.contains(expected), "{expected} not in: {error}");
        }
        let fine = LoomConfig::from_yaml_str(
            "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k}\n  checks: {}\n",
            &|_| None,
        )
        .unwrap();
        assert_eq!(fine.ai_gateway.checks, Some(loom_guard::ChecksConfig::default()));
    }

    #[test]
    fn an_embedding_stage_needs_the_embedder_and_sane_bounds() {
        let yaml = "ai_gateway:
  providers:
    - {name: o, type: openai, api_key: k}
  checks:
    injection: {embedding: {enabled: true, max_windows: 0, timeout: 0s}}
  auth:
    enabled: true
    keys:
      - {id: app, key: lk-app, checks: {injection: {embedding: {enabled: true}}}}
routes:
  - {id: ai, path: /v1/*, ai_gateway: true, checks: {injection: {embedding: {enabled: true}}}}
";
        let error = LoomConfig::from_yaml_str(yaml, &|_| None).unwrap_err().to_string();
        for expected in [
            "ai_gateway.checks.injection.embedding.max_windows: must be 1 to 32",
            "ai_gateway.checks.injection.embedding.timeout: must be more than 0",
            "ai_gateway.checks.injection.embedding.enabled: needs `ai_gateway.embedder` (the model's path)",
            "ai_gateway.auth.keys[0].checks.injection.embedding.enabled: needs `ai_gateway.embedder`",
            "routes[0].checks.injection.embedding.enabled: needs `ai_gateway.embedder`",
        ] {
            assert!(error.contains(expected), "{expected} not in: {error}");
        }
        let threads = "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k}\n  embedder: {path: /m, threads: 0}\n";
        let error = LoomConfig::from_yaml_str(threads, &|_| None).unwrap_err().to_string();
        assert!(error.contains("ai_gateway.embedder.threads: must be 1 to 64"), "{error}");
    }

    #[test]
    fn the_usage_aggregates_budget_is_bounded() {
        const PROVIDER: &str = "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k}\n";
        let load = |bytes: u64| {
            let yaml = format!("{PROVIDER}  token_accounting:\n    max_aggregate_bytes: {bytes}\n");
            LoomConfig::from_yaml_str(&yaml, &|_| None).map_err(|error| error.to_string())
        };
        let accounting =
            |bytes| load(bytes).map(|config| config.ai_gateway.token_accounting.max_aggregate_bytes);
        assert_eq!(accounting(0), Ok(0), "0 keeps no group: everything adds up under (other)");
        assert_eq!(accounting(MAX_AGGREGATE_BYTES), Ok(MAX_AGGREGATE_BYTES));
        assert_eq!(
            accounting(MAX_AGGREGATE_BYTES + 1).unwrap_err(),
            "ai_gateway.token_accounting.max_aggregate_bytes: must be at most 17179869184, not 17179869185"
        );
        let default = LoomConfig::from_yaml_str(PROVIDER, &|_| None).unwrap();
        assert_eq!(default.ai_gateway.token_accounting.max_aggregate_bytes, 32 * 1024 * 1024);
    }

    #[test]
    fn the_responses_store_is_bounded_and_names_its_keys() {
        const PROVIDER: &str = "ai_gateway:\n  providers:\n    - {name: o, type: openai, api_key: k}\n";
        let load = |section: &str| {
            let yaml = format!("{PROVIDER}  responses:\n{section}");
            LoomConfig::from_yaml_str(&yaml, &|_| None).map(|config| config.ai_gateway.responses)
        };
        let error = |section: &str| load(section).unwrap_err().to_string();
        let configured = load(
            "    store_ttl: 15m\n    max_conversations: 5\n    max_bytes: 4096\n    max_conversation_bytes: 1024\n",
        )
        .unwrap();
        assert_eq!(
            (
                configured.store_ttl,
                configured.max_conversations,
                configured.max_bytes,
                configured.max_conversation_bytes
            ),
            (Duration::from_secs(900), 5, 4096, 1024)
        );
        assert_eq!(load("    max_conversations: 0\n").unwrap().max_conversations, 0, "0 keeps none");
        assert_eq!(error("    store_ttl: 500ms\n"), "ai_gateway.responses.store_ttl: must be at least 1s");
        assert_eq!(
            error("    store_ttl: 721h\n"),
            "ai_gateway.responses.store_ttl: must be at most 720h, not 30days 1h"
        );
        assert_eq!(error("    max_bytes: 0\n"), "ai_gateway.responses.max_bytes: must be greater than 0");
        assert_eq!(
            error("    max_conversations: 10000001\n"),
            "ai_gateway.responses.max_conversations: must be at most 10000000, not 10000001"
        );
        assert_eq!(
            error("    max_bytes: 1000\n    max_conversation_bytes: 2000\n"),
            "ai_gateway.responses.max_conversation_bytes: must be at most ai_gateway.responses.max_bytes (1000), not 2000"
        );
        assert!(error("    keep: 1h\n").contains("ai_gateway.responses"), "{}", error("    keep: 1h\n"));
        let native = |kind: &str| {
            let yaml = format!(
                "ai_gateway:\n  providers:\n    - {{name: p, type: {kind}, api_key: k, responses_api: native}}\n"
            );
            LoomConfig::from_yaml_str(&yaml, &|_| None)
                .map(|config| config.ai_gateway.providers[0].responses_api)
        };
        assert_eq!(native("openai").unwrap(), ResponsesApi::Native);
        let yaml = "ai_gateway:\n  providers:\n    - {name: p, type: openai, api_key: k, responses_api: native}\n  checks:\n    pii: {enabled: true, action: redact}\n";
        assert_eq!(
            LoomConfig::from_yaml_str(yaml, &|_| None).unwrap_err().to_string(),
            "ai_gateway.providers[0].responses_api: `native` passes answers on as the upstream's Responses JSON, \
             which the answer checks of ai_gateway.checks (pii `redact`, or `on: [response]`) cannot read; use `translate`"
        );
        let blocking = "ai_gateway:\n  providers:\n    - {name: p, type: openai, api_key: k, responses_api: native}\n  checks:\n    pii: {enabled: true, action: block}\n";
        assert!(
            LoomConfig::from_yaml_str(blocking, &|_| None).is_ok(),
            "request-side checks work with native"
        );
        assert_eq!(
            native("anthropic").unwrap_err().to_string(),
            "ai_gateway.providers[0].responses_api: `native` is for `type: openai` providers (this one is `anthropic`)"
        );
        let default = LoomConfig::from_yaml_str(PROVIDER, &|_| None).unwrap();
        assert_eq!(default.ai_gateway.responses, super::super::schema::ResponsesConfig::default());
    }

    #[test]
    fn urls() {
        assert!(check_http_url("https://api.openai.com/v1").is_ok());
        assert!(check_http_url("http://127.0.0.1:11434").is_ok());
        assert!(check_http_url("ftp://example.com").is_err());
        assert!(check_http_url("api.openai.com/v1").is_err());
        assert!(check_http_url("not a url").is_err());
        assert!(check_http_url("").is_err());
    }
}
