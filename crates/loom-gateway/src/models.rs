//! `GET /v1/models`: the models a route serves, kept as ready answers in the OpenAI and
//! Anthropic formats, and the background task that refreshes upstream model lists.
//!
//! A route lists the union of its `model_mapping` names (owned by `loom`), its providers'
//! `models:` lists and Azure `deployments`, and, for providers with no `models:` list
//! (they serve any model), the list their upstream gives. Lists are fetched at start and
//! every `ai_gateway.models_refresh`, never on the request path; a failed fetch keeps
//! the last good list. A request clones a ready body and does no JSON work.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use loom_providers::{ListedModel, Provider, ProviderConfig};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::warn;

/// Who owns the model-mapping names in answers.
const LOOM: &str = "loom";

/// The fetched lists, by provider name.
type Fetched = HashMap<Arc<str>, Vec<ListedModel>>;

/// The `/v1/models` answers of one routing block.
pub(crate) struct RouteModels {
    /// Mapping names, then each provider's configured ids, with their owner.
    configured: Vec<(String, Arc<str>)>,
    /// The route's providers whose upstream list counts, in priority order.
    listing: Vec<Arc<str>>,
    openai: RwLock<Bytes>,
    anthropic: RwLock<Bytes>,
}

impl RouteModels {
    /// The models of a route over `providers` (in priority order); `lists(name)` says
    /// whether a provider's upstream list is fetched.
    pub(crate) fn new(
        model_mapping: &BTreeMap<String, BTreeMap<String, String>>,
        providers: &[&ProviderConfig],
        lists: impl Fn(&str) -> bool,
    ) -> Self {
        let loom: Arc<str> = Arc::from(LOOM);
        let mut configured: Vec<(String, Arc<str>)> =
            model_mapping.keys().map(|model| (model.clone(), loom.clone())).collect();
        let mut listing = Vec::new();
        for provider in providers {
            let name: Arc<str> = Arc::from(provider.name.as_str());
            let ids = provider.models.iter().chain(provider.deployments.keys());
            configured.extend(ids.map(|id| (id.clone(), name.clone())));
            if provider.models.is_empty() && lists(&provider.name) {
                listing.push(name);
            }
        }
        let models = RouteModels {
            configured,
            listing,
            openai: RwLock::new(Bytes::new()),
            anthropic: RwLock::new(Bytes::new()),
        };
        models.rebuild(&Fetched::new());
        models
    }

    /// The answer for a request with `headers`: Anthropic's format when it comes from an
    /// Anthropic client (`anthropic-version` or `x-api-key`), else OpenAI's.
    pub(crate) fn answer(&self, headers: &HeaderMap) -> Bytes {
        let cell = if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
            &self.anthropic
        } else {
            &self.openai
        };
        cell.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Whether this route's answer depends on the upstream list of `provider`.
    fn lists(&self, provider: &str) -> bool {
        self.listing.iter().any(|name| &**name == provider)
    }

    /// Rebuilds both answers from the configured ids and the `fetched` lists.
    fn rebuild(&self, fetched: &Fetched) {
        // Sorted by id; the first owner in priority order keeps an id.
        let mut entries: BTreeMap<&str, Entry<'_>> = BTreeMap::new();
        for (id, owner) in &self.configured {
            entries.entry(id).or_insert(Entry { owner, display_name: None, created: None });
        }
        for owner in &self.listing {
            for model in fetched.get(owner).into_iter().flatten() {
                entries.entry(&model.id).or_insert(Entry {
                    owner,
                    display_name: model.display_name.as_deref(),
                    created: model.created,
                });
            }
        }
        let openai: Vec<Value> = entries
            .iter()
            .map(|(id, entry)| {
                json!({"id": id, "object": "model", "created": entry.created.unwrap_or(0), "owned_by": &**entry.owner})
            })
            .collect();
        let anthropic: Vec<Value> = entries
            .iter()
            .map(|(id, entry)| {
                json!({
                    "type": "model",
                    "id": id,
                    "display_name": entry.display_name.unwrap_or(id),
                    "created_at": rfc3339(entry.created.unwrap_or(0)),
                })
            })
            .collect();
        let openai = json!({"object": "list", "data": openai});
        let anthropic = json!({
            "data": anthropic,
            "has_more": false,
            "first_id": entries.keys().next(),
            "last_id": entries.keys().next_back(),
        });
        replace(&self.openai, Bytes::from(openai.to_string()));
        replace(&self.anthropic, Bytes::from(anthropic.to_string()));
    }
}

/// One model of an answer.
struct Entry<'a> {
    owner: &'a Arc<str>,
    display_name: Option<&'a str>,
    created: Option<u64>,
}

fn replace(cell: &RwLock<Bytes>, body: Bytes) {
    *cell.write().unwrap_or_else(std::sync::PoisonError::into_inner) = body;
}

/// Unix seconds as an RFC 3339 time (`2025-02-19T00:00:00Z`).
fn rfc3339(unix_seconds: u64) -> String {
    let time = UNIX_EPOCH.checked_add(Duration::from_secs(unix_seconds)).unwrap_or(UNIX_EPOCH);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Fetches the upstream model lists at start and every refresh interval, and rebuilds the
/// answers of the routes that show them when a list changes.
pub(crate) struct ModelRefresher {
    /// Each provider whose list some route shows, once.
    providers: Vec<(Arc<str>, Provider)>,
    routes: Vec<Arc<RouteModels>>,
    every: Duration,
}

impl ModelRefresher {
    /// A refresher for the lists `routes` show, fetched from `providers` every `every`.
    pub(crate) fn new(
        providers: &HashMap<String, Provider>,
        mut routes: Vec<Arc<RouteModels>>,
        every: Duration,
    ) -> Self {
        // Routes without a routing block of their own share the global answers.
        let mut seen: Vec<Arc<RouteModels>> = Vec::new();
        routes.retain(|route| {
            let new = !seen.iter().any(|other| Arc::ptr_eq(other, route));
            if new {
                seen.push(route.clone());
            }
            new
        });
        let mut names: Vec<&Arc<str>> = routes.iter().flat_map(|route| &route.listing).collect();
        names.sort();
        names.dedup();
        let providers = names
            .into_iter()
            .filter_map(|name| Some((name.clone(), providers.get(&**name)?.clone())))
            .collect();
        ModelRefresher { providers, routes, every }
    }

    /// Whether there is nothing to fetch.
    pub(crate) fn is_idle(&self) -> bool {
        self.providers.is_empty()
    }

    /// Refreshes until `shutdown` turns true or its sender is dropped.
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut fetched = Fetched::new();
        loop {
            let round = futures_util::future::join_all(
                self.providers
                    .iter()
                    .map(|(name, provider)| async move { (name, provider.list_models().await) }),
            );
            let results = tokio::select! {
                results = round => results,
                _ = shutdown.changed() => return,
            };
            let mut changed = Vec::new();
            for (name, result) in results {
                match result {
                    Ok(list) if fetched.get(name) != Some(&list) => {
                        fetched.insert(name.clone(), list);
                        changed.push(name);
                    }
                    Ok(_) => {}
                    // Provider errors are scrubbed of the provider's secrets.
                    Err(error) => {
                        warn!(provider = %name, %error, "cannot refresh the model list; keeping the last one")
                    }
                }
            }
            for route in &self.routes {
                if changed.iter().any(|name| route.lists(name)) {
                    route.rebuild(&fetched);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loom_providers::ProviderType;

    fn provider(name: &str, models: &[&str]) -> ProviderConfig {
        let mut config = ProviderConfig::new(name, ProviderType::Openai);
        config.models = models.iter().map(|model| (*model).to_owned()).collect();
        config
    }

    fn json_of(body: Bytes) -> Value {
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn answers_merge_mapping_names_configured_and_fetched_lists() {
        let mapping = BTreeMap::from([("fast".to_owned(), BTreeMap::new())]);
        let (a, b) = (provider("a", &["m2", "fast"]), provider("b", &[]));
        let models = RouteModels::new(&mapping, &[&a, &b], |_| true);
        let fetched = Fetched::from([(
            Arc::from("b"),
            vec![
                ListedModel { id: "m2".into(), display_name: None, created: Some(5) },
                ListedModel {
                    id: "m1".into(),
                    display_name: Some("Model One".into()),
                    created: Some(1_739_923_200),
                },
            ],
        )]);
        models.rebuild(&fetched);
        assert_eq!(
            json_of(models.answer(&HeaderMap::new())),
            json!({"object": "list", "data": [
                {"id": "fast", "object": "model", "created": 0, "owned_by": "loom"},
                {"id": "m1", "object": "model", "created": 1_739_923_200, "owned_by": "b"},
                {"id": "m2", "object": "model", "created": 0, "owned_by": "a"},
            ]})
        );
        let mut anthropic = HeaderMap::new();
        anthropic.insert("anthropic-version", http::HeaderValue::from_static("2023-06-01"));
        assert_eq!(
            json_of(models.answer(&anthropic)),
            json!({"data": [
                {"type": "model", "id": "fast", "display_name": "fast", "created_at": "1970-01-01T00:00:00Z"},
                {"type": "model", "id": "m1", "display_name": "Model One", "created_at": "2025-02-19T00:00:00Z"},
                {"type": "model", "id": "m2", "display_name": "m2", "created_at": "1970-01-01T00:00:00Z"},
            ], "has_more": false, "first_id": "fast", "last_id": "m2"})
        );
    }

    #[test]
    fn only_providers_without_models_are_listed() {
        let (a, b, c) = (provider("a", &["x"]), provider("b", &[]), provider("c", &[]));
        let models = RouteModels::new(&BTreeMap::new(), &[&a, &b, &c], |name| name != "c");
        assert_eq!(models.listing, [Arc::from("b")]);
        let empty = RouteModels::new(&BTreeMap::new(), &[], |_| true);
        let mut key = HeaderMap::new();
        key.insert("x-api-key", http::HeaderValue::from_static("k"));
        assert_eq!(
            json_of(empty.answer(&key)),
            json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
        );
    }
}
