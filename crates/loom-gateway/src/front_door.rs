//! The HTTP service of the front doors (OpenAI chat and Responses, Anthropic): route, read,
//! parse, dispatch, answer.
//!
//! [`FrontDoor`] is a `tower::Service<http::Request<B>>` for any body `B`, over routes that
//! each send their requests to an inner `Service<LlmRequest>` (the pipeline), so it can be
//! mounted in any hyper or axum server.

use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{Either, Full};
use loom_core::{
    CacheDirectives, ChatAnswer, ChatRequest, ClientFormat, ErrorKind, LlmRequest, LlmResponse, LoomError,
    Message, PresentedKey, RequestContext, ResponsePayload, Secret, UpstreamTime,
};
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tracing::{Instrument, info_span, warn};

use crate::access_log::AccessLog;
use crate::anthropic_format::{parse_count_tokens, parse_messages, to_messages_response};
use crate::anthropic_stream::anthropic_events;
use crate::deadline::{request_timeout_error, stream_with_deadline};
use crate::http_error::error_response;
use crate::metrics::Metrics;
use crate::openai_format::{for_openai_client, openai_events, parse_chat, parse_embeddings, to_json};
use crate::request_body::{BodyLimits, read_body};
use crate::request_id::RequestIds;
use crate::responses_format::{
    ResponseEcho, ResponseObject, assistant_message, output_messages, parse_responses, to_response,
};
use crate::responses_state::{ConversationScope, ResponseStore, ResponseStoreLimits};
use crate::responses_stream::{KeepFuture, OnFinished, OnNativeCompleted, native_events, responses_events};
use crate::routes::{MountedRoute, RouteMatch, match_route};
use crate::sse::SseBody;
use loom_providers::NativeResponses;

/// Body of every gateway response: whole bytes or a live event stream.
pub type ResponseBody = Either<Full<Bytes>, SseBody>;

/// The OpenAI and Anthropic front doors: HTTP requests in, through each route's
/// pipeline `S` (a `Service<LlmRequest>`), answers out in the client's format.
pub struct FrontDoor<S> {
    state: Arc<FrontDoorState<S>>,
}

impl<S> Clone for FrontDoor<S> {
    fn clone(&self) -> Self {
        FrontDoor { state: self.state.clone() }
    }
}

/// How a front door treats requests: limits, streaming, the metrics it records into.
#[derive(Clone)]
pub struct FrontDoorSettings {
    /// Largest request body, in bytes.
    pub max_body_bytes: u64,
    /// Time a request body may take to arrive.
    pub body_timeout: Duration,
    /// Request-body bytes all requests may hold at once.
    pub max_buffered_body_bytes: u64,
    /// Whether clients may stream.
    pub streaming_enabled: bool,
    /// Longest time a stream chunk may wait to be batched.
    pub flush_interval: Duration,
    /// Upper bound on a whole request, from its arrival to its last byte.
    pub request_timeout: Duration,
    /// Where Loom's own time per request is recorded.
    pub metrics: Arc<Metrics>,
    /// Whether the key a client presents is handed to the stack as
    /// [`PresentedKey`] (for an authentication stage; default on).
    pub pass_presented_keys: bool,
    /// Where conversations are kept for the Responses API's `previous_response_id`.
    pub responses: Arc<ResponseStore>,
}

impl Default for FrontDoorSettings {
    /// The defaults of `server:` and `ai_gateway.streaming:`.
    fn default() -> Self {
        let server = crate::config::ServerConfig::default();
        let streaming = crate::config::StreamingConfig::default();
        FrontDoorSettings {
            max_body_bytes: server.max_body_bytes,
            body_timeout: server.body_timeout,
            max_buffered_body_bytes: server.buffered_body_budget(),
            streaming_enabled: streaming.enabled,
            flush_interval: streaming.flush_interval,
            request_timeout: server.request_timeout,
            metrics: Arc::new(Metrics::new()),
            pass_presented_keys: true,
            responses: Arc::new(ResponseStore::memory(ResponseStoreLimits::default())),
        }
    }
}

/// Everything a request handler reads; built once, shared immutably.
struct FrontDoorState<S> {
    routes: Vec<MountedRoute<S>>,
    body_limits: BodyLimits,
    streaming_enabled: bool,
    flush_interval: Duration,
    request_timeout: Duration,
    request_ids: RequestIds,
    metrics: Arc<Metrics>,
    pass_presented_keys: bool,
    /// Conversations kept for the Responses API's `previous_response_id`.
    responses: Arc<ResponseStore>,
}

impl<S> FrontDoor<S> {
    /// A front door serving `routes` (the first that matches a path serves it).
    pub fn new(routes: Vec<MountedRoute<S>>, settings: FrontDoorSettings) -> Self {
        FrontDoor {
            state: Arc::new(FrontDoorState {
                routes,
                body_limits: BodyLimits::new(
                    settings.max_body_bytes,
                    settings.body_timeout,
                    settings.max_buffered_body_bytes,
                ),
                streaming_enabled: settings.streaming_enabled,
                flush_interval: settings.flush_interval,
                request_timeout: settings.request_timeout,
                request_ids: RequestIds::new(),
                metrics: settings.metrics,
                pass_presented_keys: settings.pass_presented_keys,
                responses: settings.responses,
            }),
        }
    }

    /// A front door serving `/v1/*` (route `ai`) through `pipeline`, with default settings.
    pub fn with_pipeline(pipeline: S) -> Self {
        let route = MountedRoute::new(&crate::config::RouteConfig::default_ai_route(), pipeline);
        FrontDoor::new(vec![route], FrontDoorSettings::default())
    }
}

impl<S> FrontDoor<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    /// Answers one request; never fails: errors become error responses in the client's format.
    pub fn handle<B>(
        &self,
        request: Request<B>,
    ) -> impl Future<Output = Response<ResponseBody>> + Send + use<S, B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Display,
    {
        handle(self.state.clone(), request)
    }
}

impl<S, B> Service<Request<B>> for FrontDoor<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + Sync + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Display,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = self.handle(request);
        Box::pin(async move { Ok(answer.await) })
    }
}

/// The endpoints of the front doors.
#[derive(Clone, Copy)]
enum Endpoint {
    /// `GET /models`, answered by the front door itself.
    Models,
    /// An AI call, sent through the pipeline.
    Call(Call),
}

/// The endpoints whose requests go through the pipeline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Chat,
    Embeddings,
    Messages,
    CountTokens,
    Responses,
}

impl Endpoint {
    fn from_path(endpoint: &str) -> Option<Endpoint> {
        Some(match endpoint {
            "models" => Endpoint::Models,
            "chat/completions" => Endpoint::Call(Call::Chat),
            "embeddings" => Endpoint::Call(Call::Embeddings),
            "messages" => Endpoint::Call(Call::Messages),
            "messages/count_tokens" => Endpoint::Call(Call::CountTokens),
            "responses" => Endpoint::Call(Call::Responses),
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Endpoint::Models => Method::GET,
            Endpoint::Call(_) => Method::POST,
        }
    }

    fn format(self) -> ClientFormat {
        match self {
            Endpoint::Call(Call::Messages | Call::CountTokens) => ClientFormat::Anthropic,
            Endpoint::Call(Call::Responses) => ClientFormat::Responses,
            Endpoint::Call(Call::Chat | Call::Embeddings) | Endpoint::Models => ClientFormat::OpenAi,
        }
    }
}

// Header names as constants: a `&str` key is parsed on every lookup and copied on every insert.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const ANTHROPIC_REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const LOOM_PROVIDER: HeaderName = HeaderName::from_static("x-loom-provider");
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
const LOOM_USER: HeaderName = HeaderName::from_static("x-loom-user");
const LOOM_TEAM: HeaderName = HeaderName::from_static("x-loom-team");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const API_KEY: HeaderName = HeaderName::from_static("api-key");

/// Handles one HTTP request; never fails: errors become error responses in the client's format.
async fn handle<S, B>(state: Arc<FrontDoorState<S>>, request: Request<B>) -> Response<ResponseBody>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Display,
{
    let started = Instant::now();
    let request_id = state.request_ids.for_request(request.headers());
    let span =
        info_span!("request", id = %request_id, method = %request.method(), path = %request.uri().path());
    let upstream_time = UpstreamTime::default();
    // Logs the line even when the client leaves first and this future is dropped.
    let mut access = AccessLog::new(span.clone(), &request, started, upstream_time.clone());
    let (format, outcome) = match resolve(&state, &request) {
        Ok((route, endpoint)) => {
            let served = serve(&state, request, &request_id, route, endpoint, started, &upstream_time)
                .instrument(span.clone())
                .await;
            (endpoint.format(), served)
        }
        Err(error) => (ClientFormat::OpenAi, Err(error)),
    };
    let (mut response, provider) = match outcome {
        Ok(served) => served,
        Err(error) => {
            if error.kind == ErrorKind::Internal {
                warn!(parent: &span, error = %error.message, "request failed");
            }
            // The failure carries its provider into the log line.
            access.failed(&error);
            (error_response(format, &error).map(|body| Either::Left(Full::new(body))), None)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        if format == ClientFormat::Anthropic {
            // Anthropic SDKs read `request-id`.
            response.headers_mut().insert(ANTHROPIC_REQUEST_ID, value.clone());
        }
        response.headers_mut().insert(REQUEST_ID, value);
    }
    access.guarded(response.headers().get(loom_guard::check::GUARD_HEADER));
    access.answered(response.status(), provider);
    response
}

type Served = (Response<ResponseBody>, Option<Arc<str>>);

/// Finds the route and endpoint of a request.
fn resolve<'s, S, B>(
    state: &'s FrontDoorState<S>,
    request: &Request<B>,
) -> Result<(&'s MountedRoute<S>, Endpoint), LoomError> {
    let path = request.uri().path();
    let (route, endpoint) = match match_route(&state.routes, path) {
        RouteMatch::Ai { route, endpoint } => (route, endpoint),
        RouteMatch::NotAi(route) => {
            return Err(not_found(format!(
                "The route `{}` is not served by the AI gateway (set `ai_gateway: true` to serve it)",
                route.id
            )));
        }
        RouteMatch::None => return Err(not_found(format!("Unknown path `{path}`"))),
    };
    let endpoint =
        Endpoint::from_path(endpoint).ok_or_else(|| not_found(format!("Unknown path `{path}`")))?;
    let allowed = endpoint.method();
    if request.method() != allowed {
        return Err(method_not_allowed(request.method(), &allowed));
    }
    Ok((route, endpoint))
}

/// Reads, parses, dispatches and answers one request.
async fn serve<S, B>(
    state: &FrontDoorState<S>,
    request: Request<B>,
    request_id: &str,
    route: &MountedRoute<S>,
    endpoint: Endpoint,
    started: Instant,
    upstream_time: &UpstreamTime,
) -> Result<Served, LoomError>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Display,
{
    let call = match endpoint {
        Endpoint::Models => {
            return Ok((json_response(StatusCode::OK, route.models.answer(request.headers())), None));
        }
        Endpoint::Call(call) => call,
    };
    // Until authentication exists, callers name themselves with these headers.
    let header_user = header_identity(request.headers(), &LOOM_USER);
    let header_team = header_identity(request.headers(), &LOOM_TEAM);
    let presented_key = if state.pass_presented_keys { presented_key(request.headers()) } else { None };
    let cache_directives = CacheDirectives::from_headers(request.headers());
    // Conversations belong to the key that stored them, whether or not the stack sees it.
    let scope = (call == Call::Responses).then(|| {
        let key = presented_key.clone().or_else(|| self::presented_key(request.headers()));
        ConversationScope::of(key.as_ref().map(|key| key.0.expose()))
    });
    // One deadline from the request's arrival: a slow body eats into it.
    let deadline = started.checked_add(state.request_timeout).unwrap_or_else(far_future);
    let body = read_body(request, &state.body_limits, deadline).await?;
    let body = &body.bytes;
    let mut context = RequestContext::with_upstream_time(request_id, upstream_time.clone());
    context.identity.team = header_team;
    context.route = Some(route.id.clone());
    context.client_format = endpoint.format();
    if let Some(key) = presented_key {
        context.extensions.insert(key);
    }
    context.extensions.insert(cache_directives);
    let mut wants_usage = false;
    let mut responses_call = None;
    let llm_request = match call {
        Call::Chat | Call::Messages => {
            let mut chat = if call == Call::Messages { parse_messages(body)? } else { parse_chat(body)? };
            if chat.is_stream() && !state.streaming_enabled {
                return Err(LoomError::invalid_request(
                    "Streaming is disabled on this gateway (`ai_gateway.streaming.enabled: false`)",
                    Some("stream".into()),
                ));
            }
            if chat.is_stream() && context.client_format == ClientFormat::Anthropic {
                // Anthropic clients always get usage at the end of a stream.
                chat.stream_options.get_or_insert_with(Default::default).include_usage = Some(true);
            }
            context.identity.user = header_user.or_else(|| chat.user.as_deref().map(Arc::from));
            wants_usage = chat.wants_stream_usage();
            LlmRequest::chat(context, chat)
        }
        Call::Responses => {
            let scope = scope.ok_or_else(|| LoomError::internal("a Responses request without its scope"))?;
            let (mut chat, responses) = responses_request(&state.responses, body, scope).await?;
            context.extensions.insert(responses.native.clone());
            if chat.is_stream() && !state.streaming_enabled {
                return Err(LoomError::invalid_request(
                    "Streaming is disabled on this gateway (`ai_gateway.streaming.enabled: false`)",
                    Some("stream".into()),
                ));
            }
            if chat.is_stream() {
                // `response.completed` always carries usage.
                chat.stream_options.get_or_insert_with(Default::default).include_usage = Some(true);
            }
            context.identity.user = header_user.or_else(|| chat.user.as_deref().map(Arc::from));
            responses_call = Some(responses);
            LlmRequest::chat(context, chat)
        }
        Call::CountTokens => {
            let chat = parse_count_tokens(body)?;
            context.identity.user = header_user.or_else(|| chat.user.as_deref().map(Arc::from));
            LlmRequest::count_tokens(context, chat)
        }
        Call::Embeddings => {
            let embeddings = parse_embeddings(body)?;
            context.identity.user = header_user.or_else(|| embeddings.user.as_deref().map(Arc::from));
            LlmRequest::embeddings(context, embeddings)
        }
    };
    check_model_name(llm_request.payload.model())?;
    let received_at = llm_request.context.received_at;
    let stack = if call == Call::CountTokens {
        route.token_counter.clone().ok_or_else(|| {
            not_found(format!("The route `{}` does not count tokens (it has no token counter)", route.id))
        })?
    } else {
        route.pipeline.clone()
    };
    let mut response = match tokio::time::timeout_at(deadline, stack.oneshot(llm_request)).await {
        Ok(response) => response?,
        Err(_) => return Err(request_timeout_error(state.request_timeout)),
    };
    let provider = response.provider.clone();
    let stage_headers = std::mem::take(&mut response.headers);
    let mut http_response = match endpoint.format() {
        ClientFormat::OpenAi => openai_answer(state, response, deadline, wants_usage)?,
        ClientFormat::Anthropic => anthropic_answer(state, response, deadline)?,
        ClientFormat::Responses => {
            let call = responses_call
                .ok_or_else(|| LoomError::internal("a Responses answer without its request"))?;
            responses_answer(state, response, deadline, call).await?
        }
    };
    if let Ok(value) = HeaderValue::from_str(&provider) {
        http_response.headers_mut().insert(LOOM_PROVIDER, value);
    }
    if !stage_headers.is_empty() {
        // The stages' headers (usually more, with custom names) become the map and the
        // few of the answer's own move in, rather than hashing the stages' names again;
        // a name both have keeps the stage's value, as an `extend` would.
        let own = std::mem::replace(http_response.headers_mut(), stage_headers);
        let headers = http_response.headers_mut();
        let mut last_name = None;
        for (name, value) in own {
            if let Some(name) = name {
                last_name = (!headers.contains_key(&name)).then_some(name);
            }
            if let Some(name) = &last_name {
                headers.append(name.clone(), value);
            }
        }
    }
    if call != Call::CountTokens {
        // The answer is ready (a stream's first chunk is in hand): the rest is Loom's.
        state.metrics.record_overhead(&provider, received_at.elapsed().saturating_sub(upstream_time.total()));
    }
    Ok((http_response, Some(provider)))
}

fn openai_answer<S>(
    state: &FrontDoorState<S>,
    response: LlmResponse,
    deadline: Instant,
    wants_usage: bool,
) -> Result<Response<ResponseBody>, LoomError> {
    Ok(match response.payload {
        ResponsePayload::Chat(ChatAnswer::Wire(wire)) => json_response(StatusCode::OK, wire.json().clone()),
        ResponsePayload::Chat(ChatAnswer::Typed(mut chat)) => {
            for_openai_client(&mut chat);
            json_response(StatusCode::OK, to_json(&chat)?)
        }
        ResponsePayload::Embeddings(embeddings) => json_response(StatusCode::OK, to_json(&embeddings)?),
        ResponsePayload::Stream(chunks) => {
            let chunks = stream_with_deadline(chunks, deadline, state.request_timeout);
            sse_response(SseBody::new(openai_events(chunks, wants_usage), state.flush_interval))
        }
        ResponsePayload::TokenCount(_) => {
            return Err(LoomError::internal("a token count answered an OpenAI-format request"));
        }
    })
}

fn anthropic_answer<S>(
    state: &FrontDoorState<S>,
    response: LlmResponse,
    deadline: Instant,
) -> Result<Response<ResponseBody>, LoomError> {
    Ok(match response.payload {
        ResponsePayload::Chat(answer) => {
            json_response(StatusCode::OK, to_json(&to_messages_response(answer.into_typed()?)?)?)
        }
        ResponsePayload::Stream(chunks) => {
            let chunks = stream_with_deadline(chunks, deadline, state.request_timeout);
            sse_response(SseBody::new(anthropic_events(chunks), state.flush_interval))
        }
        ResponsePayload::TokenCount(count) => {
            let input_tokens =
                count.input_tokens.ok_or_else(|| LoomError::internal("tokens were not counted"))?;
            json_response(StatusCode::OK, to_json(&serde_json::json!({ "input_tokens": input_tokens }))?)
        }
        ResponsePayload::Embeddings(_) => {
            return Err(LoomError::internal("an embeddings answer to a messages request"));
        }
    })
}

/// What a Responses answer needs from its request.
struct ResponsesCall {
    /// The model asked for (a stream names it until the provider does).
    model: String,
    echo: ResponseEcho,
    /// Where the conversation goes once answered; `None` with `store: false`.
    keep: Option<Kept>,
    /// The client's body for a native provider, which tells whether one answered.
    native: NativeResponses,
}

/// A conversation to keep once its answer is known.
struct Kept {
    store: Arc<ResponseStore>,
    scope: ConversationScope,
    /// Input so far (earlier turns included, instructions not).
    conversation: Vec<Message>,
}

impl Kept {
    /// Stores the conversation with `response`'s output, under its id.
    async fn keep(mut self, response: &ResponseObject) {
        self.conversation.extend(assistant_message(&response.output));
        self.store.put(&response.id, self.scope, self.conversation).await;
    }

    /// Stores the conversation with a native provider's `output` items, under its `id`.
    async fn keep_native(mut self, id: &str, output: Vec<serde_json::Value>) {
        self.conversation.extend(output_messages(output));
        self.store.put(id, self.scope, self.conversation).await;
    }
}

/// Parses a Responses body and puts it after the conversation it continues.
async fn responses_request(
    store: &Arc<ResponseStore>,
    body: &[u8],
    scope: ConversationScope,
) -> Result<(ChatRequest, ResponsesCall), LoomError> {
    let mut parsed = parse_responses(body)?;
    if let Some(previous) = parsed.previous_response_id.as_deref() {
        let history =
            store.get(previous, scope).await?.ok_or_else(|| previous_response_not_found(previous))?;
        parsed.continue_from(&history);
    }
    let keep = parsed.echo.store().then(|| Kept {
        store: store.clone(),
        scope,
        conversation: parsed.conversation(),
    });
    let client_body = serde_json::from_slice(body).map_err(|error| {
        LoomError::invalid_request(format!("The body is not a JSON object: {error}"), None)
    })?;
    let native = NativeResponses::new(client_body, parsed.chat.messages.clone(), parsed.native_only);
    let call = ResponsesCall { model: parsed.chat.model.clone(), echo: parsed.echo, keep, native };
    Ok((parsed.chat, call))
}

fn previous_response_not_found(id: &str) -> LoomError {
    let shown: String = id.chars().take(MAX_MODEL_NAME_BYTES).collect();
    let mut error =
        LoomError::new(ErrorKind::NotFound, format!("Previous response with id '{shown}' not found."))
            .with_code("previous_response_not_found");
    error.param = Some("previous_response_id".to_owned());
    error
}

async fn responses_answer<S>(
    state: &FrontDoorState<S>,
    response: LlmResponse,
    deadline: Instant,
    call: ResponsesCall,
) -> Result<Response<ResponseBody>, LoomError> {
    let mut response = response;
    if let ResponsePayload::Stream(chunks) = response.payload {
        // A native provider marks its stream passed through with the first event (one
        // failing before it may have been retried on a translating provider).
        let mut chunks = stream_with_deadline(chunks, deadline, state.request_timeout);
        let first = chunks.next().await;
        response.payload = ResponsePayload::Stream(Box::pin(futures_util::stream::iter(first).chain(chunks)));
    }
    if call.native.was_passed_through() {
        return native_answer(state, response, call.keep).await;
    }
    Ok(match response.payload {
        ResponsePayload::Chat(answer) => {
            let answer = to_response(answer.into_typed()?, &call.echo)?;
            if let Some(keep) = call.keep {
                // Kept before answering: the client's next turn may come at once, to any instance.
                keep.keep(&answer).await;
            }
            json_response(StatusCode::OK, to_json(&answer)?)
        }
        ResponsePayload::Stream(chunks) => {
            let on_finished = call.keep.map(|keep| {
                Box::new(move |answer: &ResponseObject| {
                    let answer = answer.clone();
                    Box::pin(async move { keep.keep(&answer).await }) as KeepFuture
                }) as OnFinished
            });
            let events = responses_events(chunks, call.model, &call.echo, on_finished);
            sse_response(SseBody::new(events, state.flush_interval))
        }
        ResponsePayload::TokenCount(_) | ResponsePayload::Embeddings(_) => {
            return Err(LoomError::internal("a token count or embeddings answer to a Responses request"));
        }
    })
}

/// A native provider's answer, as the upstream gave it (its conversation kept first).
async fn native_answer<S>(
    state: &FrontDoorState<S>,
    response: LlmResponse,
    keep: Option<Kept>,
) -> Result<Response<ResponseBody>, LoomError> {
    Ok(match response.payload {
        ResponsePayload::Chat(answer) => {
            let id = answer.id().to_owned();
            let ChatAnswer::Wire(wire) = answer else {
                return Err(LoomError::internal("a passed-through answer that is not wire JSON"));
            };
            if let Some(keep) = keep {
                #[derive(serde::Deserialize)]
                struct Output {
                    #[serde(default)]
                    output: Vec<serde_json::Value>,
                }
                let output = serde_json::from_slice::<Output>(wire.json()).map(|kept| kept.output);
                keep.keep_native(&id, output.unwrap_or_default()).await;
            }
            json_response(StatusCode::OK, wire.json().clone())
        }
        ResponsePayload::Stream(chunks) => {
            let on_completed = keep.map(|keep| {
                Box::new(move |id: String, output: Vec<serde_json::Value>| {
                    Box::pin(async move { keep.keep_native(&id, output).await }) as KeepFuture
                }) as OnNativeCompleted
            });
            sse_response(SseBody::new(native_events(chunks, on_completed), state.flush_interval))
        }
        _ => return Err(LoomError::internal("a passed-through Responses answer of another kind")),
    })
}

/// A non-empty identity header's value.
/// The key the client presented: `Authorization: Bearer` (OpenAI SDKs), `x-api-key`
/// (Anthropic SDKs) or `api-key` (Azure SDKs), in that order.
fn presented_key(headers: &http::HeaderMap) -> Option<PresentedKey> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")));
    let key = bearer
        .or_else(|| headers.get(X_API_KEY).and_then(|value| value.to_str().ok()))
        .or_else(|| headers.get(API_KEY).and_then(|value| value.to_str().ok()))
        .map(str::trim)
        .filter(|key| !key.is_empty())?;
    Some(PresentedKey(Secret::new(key)))
}

fn header_identity(headers: &http::HeaderMap, name: &HeaderName) -> Option<Arc<str>> {
    headers.get(name).and_then(|value| value.to_str().ok()).filter(|value| !value.is_empty()).map(Arc::from)
}

/// Longest model name a request may carry: names are echoed in errors and logs, and
/// every legitimate name is far shorter.
pub const MAX_MODEL_NAME_BYTES: usize = 256;

fn check_model_name(model: &str) -> Result<(), LoomError> {
    if model.len() > MAX_MODEL_NAME_BYTES {
        return Err(LoomError::invalid_request(
            format!(
                "The model name is {} bytes long; at most {MAX_MODEL_NAME_BYTES} are allowed",
                model.len()
            ),
            Some("model".to_owned()),
        )
        .with_code("model_name_too_long"));
    }
    Ok(())
}

/// A deadline no request reaches (for durations too large to add to now).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

fn not_found(message: String) -> LoomError {
    LoomError::new(ErrorKind::NotFound, message).with_code("unknown_url")
}

fn method_not_allowed(method: &Method, allowed: &Method) -> LoomError {
    LoomError::new(ErrorKind::MethodNotAllowed, format!("Method {method} is not allowed here; use {allowed}"))
        .with_code("method_not_allowed")
}

fn json_response(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn sse_response(body: SseBody) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Right(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
    response
}
