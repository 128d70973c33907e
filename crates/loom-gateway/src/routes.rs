//! Route table: which paths the AI front door serves, from the `routes:` config.

use std::sync::Arc;

use crate::config::RouteConfig;

/// A configured route, ready for matching.
#[derive(Debug, Clone)]
pub struct MountedRoute {
    /// Route id from config.
    pub id: Arc<str>,
    /// Path prefix for `/x/*` routes, or the exact path.
    pattern: String,
    /// Whether the pattern ended in `/*`.
    wildcard: bool,
    /// Whether the AI gateway serves it.
    pub ai_gateway: bool,
}

/// What a path resolved to.
pub enum RouteMatch<'a> {
    /// An AI route, and the endpoint below its prefix (e.g. `chat/completions`).
    Ai { route: &'a MountedRoute, endpoint: &'a str },
    /// A route the AI gateway does not serve.
    NotAi(&'a MountedRoute),
    /// No route.
    None,
}

impl MountedRoute {
    /// Prepares a configured route.
    pub fn new(config: &RouteConfig) -> Self {
        let (pattern, wildcard) = match config.path.strip_suffix('*') {
            Some(prefix) => (prefix.to_owned(), true),
            None => (config.path.clone(), false),
        };
        MountedRoute { id: Arc::from(config.id.as_str()), pattern, wildcard, ai_gateway: config.ai_gateway }
    }

    fn endpoint<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.wildcard {
            path.strip_prefix(self.pattern.as_str())
        } else if path == self.pattern {
            // An exact route names the endpoint by its last segment (e.g. `/chat/completions`).
            path.rsplit_once("/v1/").map(|(_, endpoint)| endpoint).or(Some(""))
        } else {
            None
        }
    }
}

/// Finds the first route matching `path`.
pub fn match_route<'a>(routes: &'a [MountedRoute], path: &'a str) -> RouteMatch<'a> {
    for route in routes {
        if let Some(endpoint) = route.endpoint(path) {
            return if route.ai_gateway {
                RouteMatch::Ai { route, endpoint }
            } else {
                RouteMatch::NotAi(route)
            };
        }
    }
    RouteMatch::None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, path: &str, ai_gateway: bool) -> MountedRoute {
        MountedRoute::new(&RouteConfig { id: id.into(), path: path.into(), ai_gateway, routing: None })
    }

    #[test]
    fn wildcard_routes_expose_the_endpoint() {
        let routes = [route("ai", "/v1/*", true), route("web", "/web/*", false)];
        assert!(matches!(
            match_route(&routes, "/v1/chat/completions"),
            RouteMatch::Ai { endpoint: "chat/completions", .. }
        ));
        assert!(matches!(match_route(&routes, "/web/x"), RouteMatch::NotAi(_)));
        assert!(matches!(match_route(&routes, "/v2/chat/completions"), RouteMatch::None));
    }
}
