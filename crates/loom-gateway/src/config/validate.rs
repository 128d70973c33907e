//! Rules a loaded config must meet; each error names the offending key.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;

use loom_providers::{ProviderConfig, ProviderType};

use super::error::ConfigError;
use super::limits::{
    DELAY, MAX_AGGREGATE_BYTES, MAX_BODY_BYTES, MAX_BUFFERED_BODY_BYTES, MAX_CONNECTIONS, MAX_HTTP2_STREAMS,
    MAX_POOL_IDLE_PER_HOST, MAX_RETRIES, MAX_WEIGHT, MAX_WORKERS, STREAM_BATCH, TIMEOUT, WORKERS_PER_CPU,
    check_count, check_durations, check_price, max_workers,
};
use super::schema::{AiGatewayConfig, LoomConfig, RouteConfig, RoutingConfig, ServerConfig, Strategy};

type Result = std::result::Result<(), ConfigError>;

impl LoomConfig {
    /// Checks every rule a loaded config must meet; the error names the offending key.
    pub fn validate(&self) -> Result {
        validate_server(&self.server)?;
        if self.admin.enabled && self.admin.listen.port() != 0 && self.admin.listen == self.server.listen {
            return Err(ConfigError::invalid(
                "admin.listen",
                format!("{} is also server.listen; the admin API needs its own address", self.admin.listen),
            ));
        }
        if self.logging.level.trim().is_empty() {
            return Err(ConfigError::invalid("logging.level", "must not be empty (e.g. `info`)"));
        }
        validate_ai_gateway(&self.ai_gateway)?;
        let serves_ai = self.effective_routes().iter().any(|route| route.ai_gateway);
        if self.ai_gateway.enabled && serves_ai && self.ai_gateway.providers.is_empty() {
            return Err(ConfigError::invalid(
                "ai_gateway.providers",
                "at least one provider is required (or set ai_gateway.enabled: false)",
            ));
        }
        validate_routes(&self.routes, &self.ai_gateway.providers)
    }
}

fn validate_server(server: &ServerConfig) -> Result {
    check_count("server.max_body_bytes", server.max_body_bytes, 1, MAX_BODY_BYTES)?;
    // Every `server.*` duration has one line here (ranges: limits.rs).
    check_durations(
        "server",
        &[
            ("request_timeout", server.request_timeout, TIMEOUT),
            ("shutdown_timeout", server.shutdown_timeout, TIMEOUT),
            ("body_timeout", server.body_timeout, TIMEOUT),
            ("header_timeout", server.header_timeout, TIMEOUT),
            ("keepalive_timeout", server.keepalive_timeout, TIMEOUT),
            ("http2_keepalive_interval", server.http2_keepalive_interval, TIMEOUT),
        ],
    )?;
    if let Some(max) = server.max_connections {
        check_count("server.max_connections", max.get() as u64, 1, MAX_CONNECTIONS)?;
    }
    if let Some(budget) = server.max_buffered_body_bytes {
        // A budget below one body would refuse every body of the largest allowed size.
        check_count(
            "server.max_buffered_body_bytes",
            budget,
            server.max_body_bytes,
            MAX_BUFFERED_BODY_BYTES,
        )?;
    }
    check_count(
        "server.http2_max_concurrent_streams",
        u64::from(server.http2_max_concurrent_streams),
        1,
        MAX_HTTP2_STREAMS,
    )?;
    check_workers(server.workers)
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

fn validate_ai_gateway(ai: &AiGatewayConfig) -> Result {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, provider) in ai.providers.iter().enumerate() {
        let key = format!("ai_gateway.providers[{index}]");
        if provider.name.trim().is_empty() {
            return Err(ConfigError::invalid(format!("{key}.name"), "must not be empty"));
        }
        if let Some(first) = seen.insert(&provider.name, index) {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                format!("duplicate provider name \"{}\" (also ai_gateway.providers[{first}])", provider.name),
            ));
        }
        validate_provider(&key, provider)?;
    }
    validate_routing(&ai.routing, "ai_gateway.routing", &ai.providers)?;
    check_durations(
        "ai_gateway.streaming",
        &[("flush_interval", ai.streaming.flush_interval, STREAM_BATCH)],
    )?;
    let accounting = &ai.token_accounting;
    check_durations("ai_gateway.token_accounting", &[("flush_interval", accounting.flush_interval, DELAY)])?;
    check_count(
        "ai_gateway.token_accounting.max_aggregate_bytes",
        accounting.max_aggregate_bytes,
        0,
        MAX_AGGREGATE_BYTES,
    )?;
    for (model, price) in &accounting.prices {
        let key = format!("ai_gateway.token_accounting.prices.{model}");
        check_price(&format!("{key}.cost_per_1k_input"), Some(price.cost_per_1k_input))?;
        check_price(&format!("{key}.cost_per_1k_output"), Some(price.cost_per_1k_output))?;
        check_price(&format!("{key}.cost_per_1k_cached_input"), price.cost_per_1k_cached_input)?;
    }
    for (model, per_provider) in &ai.model_mapping {
        let key = format!("ai_gateway.model_mapping.{model}");
        if model.trim().is_empty() {
            return Err(ConfigError::invalid(key, "the client model name must not be empty"));
        }
        for (provider, target) in per_provider {
            let key = format!("{key}.{provider}");
            if ai.provider(provider).is_none() {
                return Err(ConfigError::invalid(key, unknown_provider(provider, &ai.providers)));
            }
            if target.trim().is_empty() {
                return Err(ConfigError::invalid(key, "the provider model name must not be empty"));
            }
        }
    }
    Ok(())
}

fn validate_provider(key: &str, provider: &ProviderConfig) -> Result {
    let kind = provider.kind;
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
        return Err(ConfigError::invalid(
            format!("{key}.api_key"),
            format!("required for type {} (e.g. `api_key: ${{API_KEY_VAR}}`){hint}", kind.as_str()),
        ));
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
            return Err(ConfigError::invalid(
                format!("{key}.{field}"),
                format!("required for type {}", kind.as_str()),
            ));
        }
    }
    if let Some(base_url) = &provider.base_url {
        check_http_url(base_url)
            .map_err(|message| ConfigError::invalid(format!("{key}.base_url"), message))?;
    }
    let only_on: [(&str, bool, ProviderType); 4] = [
        ("deployments", !provider.deployments.is_empty(), ProviderType::Azure),
        ("format", provider.format.is_some(), ProviderType::Local),
        ("mock", provider.mock.is_some(), ProviderType::Mock),
        ("vertex", provider.vertex.is_some(), ProviderType::Vertex),
    ];
    for (field, present, allowed) in only_on {
        if present && kind != allowed {
            return Err(ConfigError::invalid(
                format!("{key}.{field}"),
                format!("only allowed on type {}, this provider is type {}", allowed.as_str(), kind.as_str()),
            ));
        }
    }
    for (index, model) in provider.models.iter().enumerate() {
        if model.trim().is_empty() {
            return Err(ConfigError::invalid(format!("{key}.models[{index}]"), "must not be empty"));
        }
    }
    for (model, deployment) in &provider.deployments {
        if deployment.trim().is_empty() {
            return Err(ConfigError::invalid(format!("{key}.deployments.{model}"), "must not be empty"));
        }
    }
    check_price(&format!("{key}.cost_per_1k_input"), provider.cost_per_1k_input)?;
    check_price(&format!("{key}.cost_per_1k_output"), provider.cost_per_1k_output)?;
    let timeouts = &provider.timeouts;
    check_durations(
        &format!("{key}.timeouts"),
        &[
            ("connect", timeouts.connect, TIMEOUT),
            ("first_byte", timeouts.first_byte, TIMEOUT),
            ("idle", timeouts.idle, TIMEOUT),
            ("request", timeouts.request, TIMEOUT),
        ],
    )?;
    if let Some(mock) = &provider.mock {
        check_durations(
            &format!("{key}.mock"),
            &[("latency", mock.latency, DELAY), ("chunk_delay", mock.chunk_delay, DELAY)],
        )?;
    }
    check_count(
        &format!("{key}.pool_max_idle_per_host"),
        u64::try_from(provider.pool_max_idle_per_host).unwrap_or(u64::MAX),
        0,
        MAX_POOL_IDLE_PER_HOST,
    )?;
    for (name, value) in &provider.headers {
        let key = format!("{key}.headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::invalid(key, "not a valid HTTP header name"));
        }
        if http::HeaderValue::from_str(value.expose()).is_err() {
            return Err(ConfigError::invalid(key, "not a valid HTTP header value (control characters?)"));
        }
    }
    Ok(())
}

/// Checks a `routing:` block (global or per route) rooted at `key`.
fn validate_routing(routing: &RoutingConfig, key: &str, providers: &[ProviderConfig]) -> Result {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, target) in routing.providers.iter().enumerate() {
        let target_key = format!("{key}.providers[{index}]");
        if !providers.iter().any(|provider| provider.name == target.name) {
            return Err(ConfigError::invalid(
                format!("{target_key}.name"),
                unknown_provider(&target.name, providers),
            ));
        }
        if let Some(first) = seen.insert(&target.name, index) {
            return Err(ConfigError::invalid(
                format!("{target_key}.name"),
                format!("provider \"{}\" is already listed at {key}.providers[{first}]", target.name),
            ));
        }
        check_price(&format!("{target_key}.cost_per_1k_input"), target.cost_per_1k_input)?;
        check_price(&format!("{target_key}.cost_per_1k_output"), target.cost_per_1k_output)?;
        if let Some(weight) = target.weight {
            check_count(&format!("{target_key}.weight"), weight.into(), 0, MAX_WEIGHT)?;
        }
    }
    if routing.strategy == Strategy::Weighted {
        let targets = routing.targets_or_all(providers);
        if !targets.is_empty() && targets.iter().all(|target| target.effective_weight() == 0) {
            return Err(ConfigError::invalid(
                format!("{key}.providers"),
                "strategy weighted needs at least one target with a weight above 0",
            ));
        }
    }
    let (failover, health) = (&routing.failover, &routing.health);
    check_count(&format!("{key}.failover.max_retries"), failover.max_retries.into(), 0, MAX_RETRIES)?;
    check_durations(
        &format!("{key}.failover"),
        &[("backoff", failover.backoff, DELAY), ("max_backoff", failover.max_backoff, DELAY)],
    )?;
    check_count(&format!("{key}.health.failure_threshold"), health.failure_threshold.into(), 1, u64::MAX)?;
    check_durations(
        &format!("{key}.health"),
        &[("cooldown", health.cooldown, TIMEOUT), ("probe_interval", health.probe_interval, TIMEOUT)],
    )?;
    for (index, code) in routing.failover.retry_codes.iter().enumerate() {
        if !(400..=599).contains(code) {
            return Err(ConfigError::invalid(
                format!("{key}.failover.retry_codes[{index}]"),
                format!("{code} is not an HTTP error status (400-599)"),
            ));
        }
    }
    Ok(())
}

fn validate_routes(routes: &[RouteConfig], providers: &[ProviderConfig]) -> Result {
    let mut ids = BTreeSet::new();
    let mut paths = BTreeMap::new();
    for (index, route) in routes.iter().enumerate() {
        let key = format!("routes[{index}]");
        if route.id.trim().is_empty() {
            return Err(ConfigError::invalid(format!("{key}.id"), "must not be empty"));
        }
        if !ids.insert(route.id.as_str()) {
            return Err(ConfigError::invalid(
                format!("{key}.id"),
                format!("duplicate route id \"{}\"", route.id),
            ));
        }
        check_route_path(&route.path)
            .map_err(|message| ConfigError::invalid(format!("{key}.path"), message))?;
        if let Some(first) = paths.insert(route.path.as_str(), index) {
            return Err(ConfigError::invalid(
                format!("{key}.path"),
                format!("\"{}\" is already the path of routes[{first}]", route.path),
            ));
        }
        if let Some(routing) = &route.routing {
            if !route.ai_gateway {
                return Err(ConfigError::invalid(
                    format!("{key}.routing"),
                    "only allowed on a route with `ai_gateway: true`",
                ));
            }
            validate_routing(routing, &format!("{key}.routing"), providers)?;
        }
    }
    Ok(())
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
    fn urls() {
        assert!(check_http_url("https://api.openai.com/v1").is_ok());
        assert!(check_http_url("http://127.0.0.1:11434").is_ok());
        assert!(check_http_url("ftp://example.com").is_err());
        assert!(check_http_url("api.openai.com/v1").is_err());
        assert!(check_http_url("not a url").is_err());
        assert!(check_http_url("").is_err());
    }
}
