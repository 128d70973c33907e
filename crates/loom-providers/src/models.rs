//! The models an upstream lists: `GET /models` in each wire format, paginated and bounded.
//!
//! An upstream's list is untrusted input: it is read with the provider's timeouts, at most
//! [`MAX_LIST_PAGE_BYTES`] a page and [`MAX_LIST_PAGES`] pages, and keeps at most
//! [`MAX_LISTED_MODELS`] ids of at most [`MAX_MODEL_ID_BYTES`] bytes each, without control
//! characters. Errors are scrubbed of the provider's secrets like every upstream error.

use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;

use crate::client::Endpoint;
use crate::error::ProviderError;
use crate::provider::Provider;
use crate::upstream::Upstream;

/// Most models kept from one upstream's list.
pub const MAX_LISTED_MODELS: usize = 10_000;
/// Longest model id (and display name) kept, in bytes.
pub const MAX_MODEL_ID_BYTES: usize = 256;
/// Most pages read from one upstream per refresh.
pub const MAX_LIST_PAGES: usize = 100;
/// Largest page body read.
pub const MAX_LIST_PAGE_BYTES: usize = 8 * 1024 * 1024;
/// Models asked for per page (the most Anthropic and Gemini return).
const PAGE_SIZE: usize = 1000;

/// One model an upstream lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// The id clients send as `model`.
    pub id: String,
    /// A human-readable name, when the upstream gives one.
    pub display_name: Option<String>,
    /// When it was created (Unix seconds), when the upstream says.
    pub created: Option<u64>,
}

impl Provider {
    /// Whether this provider can list its models upstream: `openai` and compatible
    /// servers, `anthropic` and `gemini`; not Azure (its models are its deployments),
    /// Vertex AI or the mock.
    pub fn lists_models(&self) -> bool {
        match self {
            Provider::OpenAi(provider) => provider.model_list().is_some(),
            Provider::Anthropic(_) => true,
            Provider::Gemini(provider) => provider.model_list().is_some(),
            Provider::Mock(_) => false,
        }
    }

    /// The models the upstream lists, in its order and bounded (see the module docs);
    /// empty for providers that do not list ([`Provider::lists_models`]).
    pub async fn list_models(&self) -> Result<Vec<ListedModel>, ProviderError> {
        match self {
            Provider::OpenAi(provider) => match provider.model_list() {
                Some((upstream, endpoint)) => list_openai(upstream, endpoint).await,
                None => Ok(Vec::new()),
            },
            Provider::Anthropic(provider) => {
                let (upstream, url) = provider.model_list();
                list_anthropic(upstream, url).await
            }
            Provider::Gemini(provider) => match provider.model_list() {
                Some((upstream, url)) => list_gemini(upstream, url).await,
                None => Ok(Vec::new()),
            },
            Provider::Mock(_) => Ok(Vec::new()),
        }
    }
}

/// OpenAI's `{"object": "list", "data": [{"id", "created", ...}]}`, in one page.
async fn list_openai(upstream: &Upstream, endpoint: &Endpoint) -> Result<Vec<ListedModel>, ProviderError> {
    #[derive(Deserialize)]
    struct Page {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
        #[serde(default)]
        created: Option<u64>,
    }
    let page: Page = upstream.decode(&upstream.get(endpoint, MAX_LIST_PAGE_BYTES).await?)?;
    let mut models = Models::default();
    models.extend(page.data.into_iter().map(|model| ListedModel {
        id: model.id,
        display_name: None,
        created: model.created,
    }));
    Ok(models.0)
}

/// Anthropic's `{"data": [{"id", "display_name", "created_at"}], "has_more", "last_id"}`,
/// paged with `after_id`.
async fn list_anthropic(upstream: &Upstream, url: &str) -> Result<Vec<ListedModel>, ProviderError> {
    #[derive(Deserialize)]
    struct Page {
        data: Vec<Model>,
        #[serde(default)]
        has_more: bool,
        #[serde(default)]
        last_id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
        #[serde(default)]
        display_name: Option<String>,
        #[serde(default)]
        created_at: Option<String>,
    }
    let mut models = Models::default();
    let mut after: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let mut page_url = format!("{url}?limit={PAGE_SIZE}");
        if let Some(after) = &after {
            page_url.push_str("&after_id=");
            page_url.push_str(&percent_encode(after));
        }
        let page: Page =
            upstream.decode(&upstream.get(&endpoint(upstream, &page_url)?, MAX_LIST_PAGE_BYTES).await?)?;
        models.extend(page.data.into_iter().map(|model| ListedModel {
            id: model.id,
            display_name: model.display_name,
            created: model.created_at.as_deref().and_then(unix_seconds),
        }));
        match page.last_id {
            Some(last) if page.has_more && !models.is_full() && after.as_ref() != Some(&last) => {
                after = Some(last);
            }
            _ => break,
        }
    }
    Ok(models.0)
}

/// Gemini's `{"models": [{"name": "models/ID", "displayName"}], "nextPageToken"}`, paged
/// with `pageToken`. The key travels in the `x-goog-api-key` header, never in the URL.
async fn list_gemini(upstream: &Upstream, url: &str) -> Result<Vec<ListedModel>, ProviderError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        #[serde(default)]
        models: Vec<Model>,
        #[serde(default)]
        next_page_token: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Model {
        name: String,
        #[serde(default)]
        display_name: Option<String>,
    }
    let mut models = Models::default();
    let mut token: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let mut page_url = format!("{url}?pageSize={PAGE_SIZE}");
        if let Some(token) = &token {
            page_url.push_str("&pageToken=");
            page_url.push_str(&percent_encode(token));
        }
        let page: Page =
            upstream.decode(&upstream.get(&endpoint(upstream, &page_url)?, MAX_LIST_PAGE_BYTES).await?)?;
        models.extend(page.models.into_iter().map(|model| ListedModel {
            id: model.name.strip_prefix("models/").map(str::to_owned).unwrap_or(model.name),
            display_name: model.display_name,
            created: None,
        }));
        match page.next_page_token.filter(|next| !next.is_empty()) {
            Some(next) if !models.is_full() && token.as_ref() != Some(&next) => token = Some(next),
            _ => break,
        }
    }
    Ok(models.0)
}

fn endpoint(upstream: &Upstream, url: &str) -> Result<Endpoint, ProviderError> {
    let uri = url.parse::<http::Uri>().map_err(|error| ProviderError::Config {
        provider: upstream.name.to_string(),
        reason: format!("invalid model list URL: {error}"),
    })?;
    upstream.endpoint(&uri)
}

/// The models kept so far: valid ids only, at most [`MAX_LISTED_MODELS`].
#[derive(Default)]
struct Models(Vec<ListedModel>);

impl Models {
    fn is_full(&self) -> bool {
        self.0.len() >= MAX_LISTED_MODELS
    }

    fn extend(&mut self, listed: impl Iterator<Item = ListedModel>) {
        for mut model in listed {
            if self.is_full() {
                return;
            }
            if !is_listable(&model.id) {
                continue;
            }
            model.display_name = model.display_name.filter(|name| is_listable(name));
            self.0.push(model);
        }
    }
}

/// Whether an upstream-given name may be shown to clients: not empty, at most
/// [`MAX_MODEL_ID_BYTES`], no control characters.
fn is_listable(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_MODEL_ID_BYTES && !name.chars().any(char::is_control)
}

/// An RFC 3339 time (`2025-02-19T00:00:00Z`) as Unix seconds.
fn unix_seconds(text: &str) -> Option<u64> {
    let time = humantime_serde::re::humantime::parse_rfc3339_weak(text).ok()?;
    time.duration_since(UNIX_EPOCH).ok().as_ref().map(Duration::as_secs)
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded, for a
/// query value.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str) -> ListedModel {
        ListedModel { id: id.to_owned(), display_name: Some(format!("{id}\u{7}")), created: None }
    }

    #[test]
    fn bad_ids_are_dropped_and_the_list_is_bounded() {
        let mut models = Models::default();
        let long = "m".repeat(MAX_MODEL_ID_BYTES + 1);
        let edge = "m".repeat(MAX_MODEL_ID_BYTES);
        models.extend(["ok", "", "bad\nid", long.as_str(), edge.as_str()].into_iter().map(listed));
        let ids: Vec<_> = models.0.iter().map(|model| model.id.as_str()).collect();
        assert_eq!(ids, ["ok", edge.as_str()]);
        // A display name with a control character is dropped; the id stays.
        assert_eq!(models.0[0].display_name, None);
        let many = (0..MAX_LISTED_MODELS + 5).map(|index| listed(&format!("m{index}")));
        models.extend(many);
        assert_eq!(models.0.len(), MAX_LISTED_MODELS);
        assert!(models.is_full());
    }

    #[test]
    fn times_and_query_values() {
        assert_eq!(unix_seconds("2025-02-19T00:00:00Z"), Some(1_739_923_200));
        assert_eq!(unix_seconds("not a time"), None);
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("x/y=z&w é"), "x%2Fy%3Dz%26w%20%C3%A9");
    }
}
