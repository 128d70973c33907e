//! Per-request context that travels with the request through every stage.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The wire format the client spoke, so the answer goes back in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFormat {
    /// OpenAI chat-completions / embeddings.
    OpenAi,
    /// Anthropic messages.
    Anthropic,
    /// OpenAI Responses (`/v1/responses`), translated to chat at the edge.
    Responses,
}

/// Who is calling; filled by authentication, or from request hints until then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Id of the virtual key used, never the key itself.
    pub key_id: Option<Arc<str>>,
    /// End user.
    pub user: Option<Arc<str>>,
    /// Team.
    pub team: Option<Arc<str>>,
}

/// Facts about one request that every stage may read.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Unique id, echoed to the client as `x-request-id`.
    pub request_id: Arc<str>,
    /// Id of the route that matched, if any.
    pub route: Option<Arc<str>>,
    /// Caller identity.
    pub identity: Identity,
    /// Format the client spoke.
    pub client_format: ClientFormat,
    /// When the gateway received the request.
    pub received_at: Instant,
    /// Typed data a stage hands to later ones (e.g. [`InputTokenEstimate`]); stages add
    /// their own types without changing this struct.
    pub extensions: http::Extensions,
    /// Time spent waiting for upstreams, so Loom's own share of the request is the rest.
    pub upstream_time: UpstreamTime,
}

impl RequestContext {
    /// A context for a request with this id, received now.
    pub fn new(request_id: impl Into<Arc<str>>) -> Self {
        RequestContext::with_upstream_time(request_id, UpstreamTime::default())
    }

    /// A context whose upstream waits add to `upstream_time` (which the caller keeps to
    /// read them, whatever becomes of the request).
    pub fn with_upstream_time(request_id: impl Into<Arc<str>>, upstream_time: UpstreamTime) -> Self {
        RequestContext {
            request_id: request_id.into(),
            route: None,
            identity: Identity::default(),
            client_format: ClientFormat::OpenAi,
            received_at: Instant::now(),
            extensions: http::Extensions::new(),
            upstream_time,
        }
    }
}

/// The security checks that acted on a request and let it go on, with their actions
/// (e.g. `injection:flag, pii:redact`), for the usage record; set by the check stage in
/// [`RequestContext::extensions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardMarks(pub Arc<str>);

/// The request's input tokens as token accounting estimated them, for later stages
/// (the `cost` strategy); in [`RequestContext::extensions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputTokenEstimate(pub u64);

/// The key a client presented (`Authorization: Bearer`, `x-api-key` or `api-key`), for
/// the authentication stage; in [`RequestContext::extensions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey(pub crate::Secret);

/// What the client asked of the response cache (`Cache-Control: no-cache` / `no-store`,
/// `x-loom-cache: bypass`), set by the front door in [`RequestContext::extensions`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheDirectives {
    /// Do not answer from the cache; a good answer still refreshes it.
    pub no_cache: bool,
    /// Do not store this answer.
    pub no_store: bool,
    /// Neither look up nor store.
    pub bypass: bool,
}

impl CacheDirectives {
    /// The directives in a request's headers.
    pub fn from_headers(headers: &http::HeaderMap) -> CacheDirectives {
        let mut directives = CacheDirectives::default();
        for value in headers.get_all(http::header::CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',').map(str::trim) {
                if directive.eq_ignore_ascii_case("no-cache") {
                    directives.no_cache = true;
                } else if directive.eq_ignore_ascii_case("no-store") {
                    directives.no_store = true;
                }
            }
        }
        directives.bypass = headers
            .get(CACHE_STATUS_HEADER)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("bypass"));
        directives
    }
}

/// The header that says how the cache treated a request: on requests, `bypass`; on
/// answers, `hit`, `semantic-hit`, `miss` or `bypass`.
pub const CACHE_STATUS_HEADER: &str = "x-loom-cache";

/// [`CACHE_STATUS_HEADER`] on an answer served from the stored answer of the same request.
pub const CACHE_HIT: &str = "hit";

/// [`CACHE_STATUS_HEADER`] on an answer served from the stored answer of a question that
/// asks the same thing.
pub const CACHE_SEMANTIC_HIT: &str = "semantic-hit";

/// Whether an answer's headers say the cache served it (no provider was asked).
pub fn served_from_cache(headers: &http::HeaderMap) -> bool {
    headers.get(CACHE_STATUS_HEADER).is_some_and(|status| status == CACHE_HIT || status == CACHE_SEMANTIC_HIT)
}

/// Time a request spent waiting for upstreams (every attempt, and the backoff between
/// failover attempts), added up by the stages that wait; clones share one total.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTime(Arc<AtomicU64>);

impl UpstreamTime {
    /// Adds one wait.
    pub fn add(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        // Saturating: a total that wrapped would claim upstreams took no time.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |total| Some(total.saturating_add(nanos)));
    }

    /// The waits so far.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_directives_come_from_cache_control_and_x_loom_cache() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(CacheDirectives::from_headers(&headers), CacheDirectives::default());
        headers.append(http::header::CACHE_CONTROL, http::HeaderValue::from_static("max-age=0, No-Cache"));
        headers.append(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        headers.insert(CACHE_STATUS_HEADER, http::HeaderValue::from_static("Bypass"));
        assert_eq!(
            CacheDirectives::from_headers(&headers),
            CacheDirectives { no_cache: true, no_store: true, bypass: true }
        );
        headers.insert(CACHE_STATUS_HEADER, http::HeaderValue::from_static("hit"));
        assert!(!CacheDirectives::from_headers(&headers).bypass);
    }

    #[test]
    fn clones_add_to_one_total() {
        let time = UpstreamTime::default();
        let attempt = time.clone();
        time.add(Duration::from_millis(3));
        attempt.add(Duration::from_micros(250));
        assert_eq!(time.total(), Duration::from_micros(3_250));
        assert_eq!(attempt.total(), Duration::from_micros(3_250));
    }
}
