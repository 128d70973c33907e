//! The admin server, on its own port: health, Prometheus metrics, usage reports
//! (`/ai/usage`) and usage over time (`/ai/usage/series`), provider state, virtual keys (`/ai/keys`), budgets (`/ai/budgets`) and a scan explaining the
//! security checks' decision on a text (`POST /ai/guard/scan`), and the response cache
//! (`GET` and `DELETE /ai/cache`); and the console, a page that reads them (`GET /`).
//!
//! With `ai_gateway.auth.admin_key` set, every endpoint but `/health` needs that key in
//! `Authorization: Bearer` or `x-api-key`; a Prometheus scraper then sends it through its
//! `authorization` setting (`authorization: {type: Bearer, credentials: ...}`).

mod access;
mod budgets;
mod cache;
mod console;
mod error;
pub mod guard_scan;
mod json_body;
mod keys;
mod usage;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue, VARY};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use loom_guard::KeyStore;
use loom_routing::{ProviderSnapshot, ProviderState};
use loom_tokens::accounting::UsageRecorder;
use serde_json::json;

use self::access::check_admin_key;
use self::error::ApiError;
use self::json_body::read_bounded;
use self::keys::KeysPath;
pub use self::usage::{QueryError, SeriesQuery, UsageQuery, parse_series_query, parse_usage_query};
use crate::metrics::{ExpositionFormat, Metrics};

/// What the admin endpoints read.
pub struct AdminState {
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Usage records.
    pub usage: Arc<UsageRecorder>,
    /// Provider health and statistics, in config order.
    pub providers: Vec<Arc<ProviderState>>,
    /// Keys, budgets and the admin key, when authentication, a rate limit, a budget or the
    /// admin key is configured.
    pub guard: Option<AdminGuard>,
    /// The security checks `POST /ai/guard/scan` runs.
    pub checks: Arc<guard_scan::ScanChecks>,
    /// The response cache, when any route caches.
    pub cache: Option<Arc<loom_cache::ResponseCache>>,
}

/// What the admin API manages when authentication, rate limits or budgets are configured.
#[derive(Clone)]
pub struct AdminGuard {
    /// Where limits, budgets and run-time keys live.
    pub state: loom_guard::GuardState,
    /// The keys, when authentication is on.
    pub keys: Option<Arc<loom_guard::KeyStore>>,
    /// The global budgets (`GET /ai/budgets`).
    pub budgets: loom_guard::Budgets,
    /// The admin API's own key (`ai_gateway.auth.admin_key`), when set.
    pub admin_key: Option<loom_core::Secret>,
}

/// Handles one admin request.
pub async fn handle_admin<B>(
    state: Arc<AdminState>,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let is_metrics = request.uri().path() == "/metrics";
    let mut reply = answer(&state, request).await.unwrap_or_else(|error| Reply::error(&error));
    if is_metrics {
        // The format depends on `Accept`: caches must not serve one scraper's to another.
        reply.headers.insert(VARY, HeaderValue::from_static("accept"));
    }
    Ok(reply.into_response())
}

async fn answer<B>(state: &AdminState, request: Request<B>) -> Result<Reply, ApiError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = request.uri().path().to_owned();
    // The console's files hold no data: the page asks for the admin key itself.
    if request.method() == Method::GET
        && let Some(page) = console::asset(&path)
    {
        return Ok(page);
    }
    if request.method() == Method::GET && path == console::SESSION_PATH {
        return Ok(console::session(state, request.headers()));
    }
    // Health stays open for load balancers; everything else may reveal or change state.
    if path != "/health" {
        let admin_key = state.guard.as_ref().and_then(|guard| guard.admin_key.as_ref());
        check_admin_key(admin_key, request.headers())?;
    }
    let query = request.uri().query().unwrap_or("").to_owned();
    let method = request.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/health") => {
            Ok(Reply::bytes(StatusCode::OK, "application/json", Bytes::from_static(br#"{"status":"ok"}"#)))
        }
        (&Method::GET, "/metrics") => {
            let accept = request.headers().get(ACCEPT).and_then(|accept| accept.to_str().ok());
            let format = ExpositionFormat::from_accept(accept);
            state.metrics.record_usage_losses(state.usage.dropped_records(), state.usage.folded_records());
            let body = Bytes::from(state.metrics.encode(&state.providers, format));
            Ok(Reply::bytes(StatusCode::OK, format.content_type(), body))
        }
        (&Method::GET, "/ai/providers") => {
            let providers: Vec<ProviderSnapshot> =
                state.providers.iter().map(|provider| provider.snapshot()).collect();
            Ok(Reply::json(StatusCode::OK, json!({"providers": providers})))
        }
        (&Method::GET, "/ai/usage") => usage::usage(state, &query)
            .await
            .map(|body| Reply::bytes(StatusCode::OK, "application/json", body)),
        (&Method::GET, "/ai/usage/series") => usage::series(state, &query)
            .await
            .map(|body| Reply::bytes(StatusCode::OK, "application/json", body)),
        (&Method::GET, "/ai/budgets") => budgets::budgets(guard_for_budgets(state)?, &query).await,
        (_, "/health" | "/metrics" | "/ai/usage" | "/ai/usage/series" | "/ai/providers" | "/ai/budgets") => {
            Err(ApiError::method_not_allowed("GET"))
        }
        (&Method::GET, "/ai/cache") => Ok(cache::stats(state.cache.as_deref())),
        (&Method::DELETE, "/ai/cache") => cache::clear(state.cache.as_deref(), &query).await,
        (_, "/ai/cache") => Err(ApiError::method_not_allowed("GET, DELETE")),
        (&Method::POST, "/ai/guard/scan") => guard_scan::scan(&state.checks, &read_bounded(request).await?),
        (_, "/ai/guard/scan") => Err(ApiError::method_not_allowed("POST")),
        (_, path) => match KeysPath::parse(path) {
            Some(keys_path) => {
                let keys = key_store(state)?;
                let body =
                    if keys_path.takes_body(&method) { read_bounded(request).await? } else { Bytes::new() };
                keys::handle_keys(keys, &keys_path, &method, &body)
                    .await
                    .unwrap_or_else(|| Err(ApiError::method_not_allowed(keys_path.allowed())))
            }
            None => Err(ApiError::unknown_path()),
        },
    }
}

/// The key store, or a 404 saying authentication is off.
fn key_store(state: &AdminState) -> Result<&KeyStore, ApiError> {
    state.guard.as_ref().and_then(|guard| guard.keys.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "auth_disabled",
            "virtual keys are off: set ai_gateway.auth.enabled: true to manage them here",
        )
    })
}

/// The guard, or a 404 saying nothing is configured to keep budgets.
fn guard_for_budgets(state: &AdminState) -> Result<&AdminGuard, ApiError> {
    state.guard.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "budgets_disabled",
            "no budgets are kept: configure ai_gateway.budgets, ai_gateway.rate_limits or ai_gateway.auth",
        )
    })
}

/// An admin answer before it becomes a response.
pub(crate) struct Reply {
    status: StatusCode,
    content_type: &'static str,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Self {
        Reply::bytes(status, "application/json", Bytes::from(value.to_string()))
    }

    /// An answer of any content type.
    pub(crate) fn bytes(status: StatusCode, content_type: &'static str, body: Bytes) -> Self {
        Reply { status, content_type, headers: HeaderMap::new(), body }
    }

    /// An error's answer.
    pub(crate) fn error(error: &ApiError) -> Self {
        Reply::bytes(error.status, "application/json", error.body())
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        response
    }
}

/// The admin API as a `tower::Service<http::Request<B>>`, to mount in any server.
#[derive(Clone)]
pub struct Admin {
    state: Arc<AdminState>,
}

impl Admin {
    /// The admin API over `state`.
    pub fn new(state: AdminState) -> Self {
        Admin { state: Arc::new(state) }
    }
}

impl<B> tower::Service<Request<B>> for Admin
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        Box::pin(handle_admin(self.state.clone(), request))
    }
}
