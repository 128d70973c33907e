//! Route table: which paths the AI front door serves, from the `routes:` config.

use std::sync::Arc;

use crate::config::RouteConfig;
use crate::models::RouteModels;

/// A route's path: `/prefix/*` or an exact path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    /// Path prefix for `/x/*` routes, or the exact path.
    pattern: String,
    /// Whether the pattern ended in `/*`.
    wildcard: bool,
}

impl RoutePattern {
    /// Parses a configured `path`.
    pub fn new(path: &str) -> Self {
        match path.strip_suffix('*') {
            Some(prefix) => RoutePattern { pattern: prefix.to_owned(), wildcard: true },
            None => RoutePattern { pattern: path.to_owned(), wildcard: false },
        }
    }

    /// The endpoint below the route (e.g. `chat/completions`), if `path` is in it.
    pub fn endpoint<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.wildcard {
            path.strip_prefix(self.pattern.as_str())
        } else if path == self.pattern {
            // An exact route names the endpoint by what follows `/v1/` (e.g. `/v1/chat/completions`).
            path.rsplit_once("/v1/").map(|(_, endpoint)| endpoint).or(Some(""))
        } else {
            None
        }
    }
}

/// A configured route, ready for matching, with its own pipeline `S`.
#[derive(Clone)]
pub struct MountedRoute<S> {
    /// Route id from config.
    pub id: Arc<str>,
    /// Its path.
    pub pattern: RoutePattern,
    /// Whether the AI gateway serves it.
    pub ai_gateway: bool,
    /// The pipeline its requests go through (its own router when it has a routing block).
    pub pipeline: S,
    /// What answers its token counts (`/v1/messages/count_tokens`); none: not served.
    pub token_counter: Option<S>,
    /// Its `/models` answers.
    pub(crate) models: Arc<RouteModels>,
}

impl<S> MountedRoute<S> {
    /// Prepares a configured route whose `/models` answer lists no models.
    pub fn new(config: &RouteConfig, pipeline: S) -> Self {
        let models = RouteModels::new(&std::collections::BTreeMap::new(), &[], |_| false);
        MountedRoute::with_models(config, pipeline, Arc::new(models))
    }

    /// Prepares a configured route whose `/models` answers are `models`.
    pub(crate) fn with_models(config: &RouteConfig, pipeline: S, models: Arc<RouteModels>) -> Self {
        MountedRoute {
            id: Arc::from(config.id.as_str()),
            pattern: RoutePattern::new(&config.path),
            ai_gateway: config.ai_gateway,
            pipeline,
            token_counter: None,
            models,
        }
    }

    /// This route with `counter` answering its token counts.
    pub fn with_token_counter(mut self, counter: S) -> Self {
        self.token_counter = Some(counter);
        self
    }
}

/// What a path resolved to.
pub enum RouteMatch<'r, 'p, S> {
    /// An AI route, and the endpoint below its prefix (e.g. `chat/completions`).
    Ai {
        /// The route.
        route: &'r MountedRoute<S>,
        /// The endpoint below it.
        endpoint: &'p str,
    },
    /// A route the AI gateway does not serve.
    NotAi(&'r MountedRoute<S>),
    /// No route.
    None,
}

/// Finds the first route matching `path`.
pub fn match_route<'r, 'p, S>(routes: &'r [MountedRoute<S>], path: &'p str) -> RouteMatch<'r, 'p, S> {
    for route in routes {
        if let Some(endpoint) = route.pattern.endpoint(path) {
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

    #[test]
    fn wildcard_and_exact_patterns() {
        let wildcard = RoutePattern::new("/v1/*");
        assert_eq!(wildcard.endpoint("/v1/chat/completions"), Some("chat/completions"));
        assert_eq!(wildcard.endpoint("/v2/chat/completions"), None);
        let exact = RoutePattern::new("/openai/v1/chat/completions");
        assert_eq!(exact.endpoint("/openai/v1/chat/completions"), Some("chat/completions"));
        assert_eq!(exact.endpoint("/openai/v1/embeddings"), None);
    }
}
