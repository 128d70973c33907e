//! A human summary of a config (for `loom check`) and the list of features not active yet.

use std::fmt::Write as _;

use humantime_serde::re::humantime::format_duration;

use loom_providers::{ProviderConfig, ProviderType, WireFormat};

use super::schema::{LoomConfig, RoutingConfig};

/// Whether this build sends requests to a provider of this configuration.
pub fn provider_is_active(provider: &ProviderConfig) -> bool {
    match provider.kind {
        ProviderType::Local => provider.format.is_some(),
        ProviderType::Openai
        | ProviderType::Azure
        | ProviderType::Anthropic
        | ProviderType::Gemini
        | ProviderType::Vertex
        | ProviderType::Mock => true,
    }
}

impl LoomConfig {
    /// A multi-line human summary: listeners, providers (never their keys), routing, routes, streaming.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_summary(&mut out);
        out
    }

    fn write_summary(&self, out: &mut String) -> std::fmt::Result {
        let server = &self.server;
        writeln!(
            out,
            "server: listen {}, max body {} bytes, request timeout {}, shutdown timeout {}",
            server.listen,
            server.max_body_bytes,
            format_duration(server.request_timeout),
            format_duration(server.shutdown_timeout),
        )?;
        if self.admin.enabled {
            writeln!(out, "admin: listen {}", self.admin.listen)?;
        } else {
            writeln!(out, "admin: disabled")?;
        }
        writeln!(out, "logging: level {}, format {}", self.logging.level, self.logging.format.as_str())?;

        let ai = &self.ai_gateway;
        writeln!(out, "ai_gateway: {}", if ai.enabled { "enabled" } else { "disabled" })?;
        writeln!(out, "  providers ({}):", ai.providers.len())?;
        for provider in &ai.providers {
            write!(out, "    - {} (type {}", provider.name, provider.kind.as_str())?;
            if let Some(format) = provider.format {
                let format = match format {
                    WireFormat::Openai => "openai",
                    WireFormat::Anthropic => "anthropic",
                };
                write!(out, ", format {format}")?;
            }
            write!(out, ")")?;
            if let Some(base_url) = &provider.base_url {
                write!(out, " {}", display_url(base_url))?;
            }
            if let Some(version) = &provider.api_version {
                write!(out, " api_version {version}")?;
            }
            let key = if provider.api_key.is_some() { "set" } else { "none" };
            write!(out, "; api key {key}")?;
            if provider.models.is_empty() {
                write!(out, "; models: any")?;
            } else {
                write!(out, "; models: {}", provider.models.join(", "))?;
            }
            if !provider.deployments.is_empty() {
                let deployments: Vec<String> =
                    provider.deployments.iter().map(|(model, name)| format!("{model} -> {name}")).collect();
                write!(out, "; deployments: {}", deployments.join(", "))?;
            }
            if !provider_is_active(provider) {
                write!(out, " [configured, not active yet]")?;
            }
            writeln!(out)?;
        }
        write_routing(out, "  ", &ai.routing, &ai.providers)?;
        if !ai.model_mapping.is_empty() {
            writeln!(out, "  model mapping:")?;
            for (model, per_provider) in &ai.model_mapping {
                let targets: Vec<String> =
                    per_provider.iter().map(|(provider, target)| format!("{provider}: {target}")).collect();
                writeln!(out, "    {model} -> {}", targets.join(", "))?;
            }
        }
        if ai.streaming.enabled {
            writeln!(
                out,
                "  streaming: enabled, flush interval {}",
                format_duration(ai.streaming.flush_interval)
            )?;
        } else {
            writeln!(out, "  streaming: disabled")?;
        }
        write_cache(out, self)?;

        let routes = self.effective_routes();
        let default_note = if self.routes.is_empty() { " (default)" } else { "" };
        writeln!(out, "routes{default_note}:")?;
        for route in &routes {
            let kind = if route.ai_gateway { "ai_gateway" } else { "not ai_gateway" };
            writeln!(out, "  - {} {} ({kind})", route.id, route.path)?;
            if let Some(routing) = &route.routing {
                write_routing(out, "    ", routing, &ai.providers)?;
            }
        }
        Ok(())
    }

    /// Settings that expose the gateway or its admin API to the network without a key, one
    /// line each (`loom check` prints them as warnings).
    pub fn exposure_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let ai = &self.ai_gateway;
        if ai.enabled && !self.server.listen.ip().is_loopback() && !ai.auth.enabled {
            warnings.push(format!(
                "server.listen {} is not a loopback address and ai_gateway.auth.enabled is false: \
                 anyone who can reach it spends your provider keys; turn auth on (docs/security.md) \
                 or listen on 127.0.0.1",
                self.server.listen
            ));
        }
        if self.admin.enabled && !self.admin.listen.ip().is_loopback() && ai.auth.admin_key.is_none() {
            warnings.push(format!(
                "admin.listen {} is not a loopback address and ai_gateway.auth.admin_key is not set: \
                 anyone who can reach it can create keys and read usage; set admin_key \
                 (docs/security.md) or listen on 127.0.0.1",
                self.admin.listen
            ));
        }
        warnings
    }

    /// Features this config sets that load but are not active in this build, one line each.
    pub fn inactive_features(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let ai = &self.ai_gateway;
        for (index, provider) in ai.providers.iter().enumerate() {
            if !provider_is_active(provider) {
                let kind = match (provider.kind, provider.format) {
                    (ProviderType::Local, Some(WireFormat::Anthropic)) => {
                        "local with format anthropic".to_owned()
                    }
                    (kind, _) => kind.as_str().to_owned(),
                };
                notes.push(format!(
                    "ai_gateway.providers[{index}] ({}): provider type {kind} is configured, not active yet; \
                     no requests are sent to it",
                    provider.name
                ));
            }
        }
        for (index, route) in self.routes.iter().enumerate() {
            if !route.ai_gateway {
                notes.push(format!(
                    "routes[{index}] ({}): ai_gateway: false is configured, not active yet; \
                     only ai_gateway routes are served",
                    route.id
                ));
            }
        }
        notes
    }
}

/// Writes a routing block: strategy, failover and targets.
fn write_routing(
    out: &mut String,
    indent: &str,
    routing: &RoutingConfig,
    providers: &[ProviderConfig],
) -> std::fmt::Result {
    writeln!(out, "{indent}routing: strategy {}", routing.strategy.as_str())?;
    if routing.failover.enabled {
        let codes: Vec<String> = routing.failover.retry_codes.iter().map(u16::to_string).collect();
        writeln!(
            out,
            "{indent}  failover: on, max {} retries on {}",
            routing.failover.max_retries,
            codes.join(", ")
        )?;
    } else {
        writeln!(out, "{indent}  failover: off")?;
    }
    if routing.providers.is_empty() {
        return writeln!(out, "{indent}  targets: all providers, in listed order");
    }
    for target in routing.targets_by_priority(providers) {
        write!(out, "{indent}  - {}", target.name)?;
        if let Some(priority) = target.priority {
            write!(out, " priority {priority}")?;
        }
        if let Some(weight) = target.weight {
            write!(out, " weight {weight}")?;
        }
        if let Some(price) = target.cost_per_1k_input {
            write!(out, " input {price}/1k")?;
        }
        if let Some(price) = target.cost_per_1k_output {
            write!(out, " output {price}/1k")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A URL fit to print: scheme, host, port and path only (no user info, no query).
fn display_url(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => {
            let scheme = uri.scheme_str().unwrap_or("");
            let host = uri.host().unwrap_or("");
            let port = uri.port_u16().map(|port| format!(":{port}")).unwrap_or_default();
            format!("{scheme}://{host}{port}{}", uri.path().trim_end_matches('/'))
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// The cache line: off, or how it is set up.
fn write_cache(out: &mut String, config: &LoomConfig) -> std::fmt::Result {
    let cache = &config.ai_gateway.cache;
    let routes_on = config
        .routes
        .iter()
        .filter(|route| route.cache.as_ref().and_then(|cache| cache.enabled) == Some(true));
    if !cache.enabled && routes_on.count() == 0 {
        return writeln!(out, "  cache: off");
    }
    let namespace = cache.namespace.as_str();
    let shared = cache.store == loom_cache::config::StoreChoice::State
        && config.ai_gateway.state.backend == loom_guard::Backend::Redis;
    write!(
        out,
        "  cache: {}, namespace {namespace}, ttl {}, max {} bytes, entries {}",
        if cache.enabled { "on" } else { "on for some routes" },
        format_duration(cache.ttl),
        cache.max_bytes,
        if shared { "shared on redis" } else { "in memory" },
    )?;
    if cache.semantic.enabled {
        write!(out, ", semantic (threshold {})", cache.semantic.similarity_threshold)?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_print_without_credentials_or_query() {
        assert_eq!(display_url("https://user:pw@example.com:8443/v1/?key=sk"), "https://example.com:8443/v1");
        assert_eq!(display_url("https://api.openai.com/v1"), "https://api.openai.com/v1");
    }
}
