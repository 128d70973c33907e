//! The service of [`TokenAccountingLayer`]: starts a request's record, calls the inner
//! service, and finishes the record when the answer (or the stream) ends.

use super::*;

/// The service [`TokenAccountingLayer`] produces.
#[derive(Clone)]
pub struct TokenAccounting<S> {
    pub(super) inner: S,
    pub(super) accounting: Arc<Accounting>,
}

/// What is known about a request before it is sent, and whether its input is still to
/// be counted off the worker ([`count_input`]); until then its estimate is a rough one.
pub(super) fn start(request: &mut LlmRequest, accounting: &Accounting) -> (Pending, bool) {
    let context = &request.context;
    let mut deferred = false;
    let (input_estimate, input_exact, model, streamed) = match &mut request.payload {
        RequestPayload::Chat(chat) | RequestPayload::CountTokens(chat) => {
            let (tokens, exact) = if accounting.count_input {
                let size = ChatSize::of(chat);
                deferred = offload::is_large(size.text_bytes);
                if deferred {
                    (estimate::rough_chat(chat), false)
                } else {
                    estimate::chat_of_size(&accounting.tokenizers, chat, &size)
                }
            } else {
                (estimate::rough_chat(chat), false)
            };
            if chat.is_stream() {
                // Usage comes from upstream even when the client did not ask; the edge
                // shows the client a usage chunk only if it asked.
                chat.stream_options.get_or_insert_with(Default::default).include_usage = Some(true);
            }
            (tokens, exact, chat.model.clone(), chat.is_stream())
        }
        RequestPayload::Embeddings(embeddings) => {
            let bytes = estimate::embeddings_text_bytes(embeddings);
            deferred = offload::is_large(bytes);
            let (tokens, exact) = if deferred {
                (bytes.div_ceil(4), false)
            } else {
                estimate::embeddings(&accounting.tokenizers, embeddings)
            };
            (tokens, exact, embeddings.model.clone(), false)
        }
    };
    let record = UsageRecord {
        request_id: context.request_id.clone(),
        time: SystemTime::now(),
        key_id: context.identity.key_id.clone(),
        user: context.identity.user.clone(),
        team: context.identity.team.clone(),
        route: context.route.clone(),
        provider: None,
        model_requested: model,
        model_served: None,
        input_tokens: 0,
        output_tokens: 0,
        cached_tokens: 0,
        reasoning_tokens: 0,
        source: UsageSource::Estimated,
        cost: 0.0,
        latency: Duration::ZERO,
        time_to_first_byte: None,
        status: 200,
        outcome: Outcome::Ok,
        saved_cost: 0.0,
        cache_hit: false,
        streamed,
        refusal: None,
        guard: context.extensions.get::<loom_core::GuardMarks>().map(|marks| marks.0.clone()),
    };
    let received_at = context.received_at;
    let report = context.extensions.get::<UsageReport>().cloned();
    request.context.extensions.insert(InputTokenEstimate(input_estimate));
    (Pending { record, input_estimate, input_exact, started: Instant::now(), received_at, report }, deferred)
}

/// Counts a request's input exactly (on the blocking pool: the request is large).
pub(super) fn count_input(accounting: &Accounting, request: &LlmRequest) -> (u64, bool) {
    match &request.payload {
        RequestPayload::Chat(chat) | RequestPayload::CountTokens(chat) => {
            estimate::chat(&accounting.tokenizers, chat)
        }
        RequestPayload::Embeddings(embeddings) => estimate::embeddings(&accounting.tokenizers, embeddings),
    }
}

/// The inner call: made at once, or after the input is counted off the worker (with the
/// inner service that was readied for it).
pub(super) enum Call<S, F> {
    Started(F),
    Deferred { inner: S, request: Box<LlmRequest> },
}

/// A request's record until its answer is in hand. The server drops a request's future
/// when its client leaves before the first byte; dropped with the record still here,
/// it records the request as ended early ([`Accounting::ended_early`]), so every
/// request leaves exactly one record.
pub(super) struct Unanswered {
    pub(super) pending: Option<Pending>,
    pub(super) accounting: Arc<Accounting>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            let (outcome, status) = self.accounting.ended_early(&pending, false);
            pending.finish(&self.accounting, None, None, outcome, status);
        }
    }
}

/// The text of a whole answer, for counting when the provider reports no usage.
pub(super) fn answer_text(answer: &ChatAnswer) -> String {
    // Answers without usage are rare (OpenAI-format upstreams report it): decoding is fine here.
    let decoded;
    let response = match answer {
        ChatAnswer::Typed(response) => response,
        ChatAnswer::Wire(_) => match answer.clone().into_typed() {
            Ok(response) => {
                decoded = response;
                &decoded
            }
            Err(_) => return String::new(),
        },
    };
    let mut text = String::new();
    for choice in &response.choices {
        if let Some(content) = &choice.message.content {
            match content {
                Content::Text(value) => text.push_str(value),
                Content::Parts(_) => text.push_str(&content.joined_text()),
            }
        }
        if let Some(reasoning) = &choice.message.reasoning_content {
            text.push_str(reasoning);
        }
        for call in choice.message.tool_calls.iter().flatten() {
            text.push_str(&call.function.name);
            text.push_str(&call.function.arguments);
        }
    }
    text
}

impl<S> Service<LlmRequest> for TokenAccounting<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: LlmRequest) -> Self::Future {
        let (pending, deferred) = start(&mut request, &self.accounting);
        let unanswered = Unanswered { pending: Some(pending), accounting: self.accounting.clone() };
        let call = if deferred {
            // The readied service makes the call; this one keeps a fresh clone.
            let fresh = self.inner.clone();
            Call::Deferred { inner: std::mem::replace(&mut self.inner, fresh), request: Box::new(request) }
        } else {
            Call::Started(self.inner.call(request))
        };
        Box::pin(async move {
            let mut unanswered = unanswered;
            let call = match call {
                Call::Started(call) => call,
                Call::Deferred { mut inner, request } => {
                    let accounting = unanswered.accounting.clone();
                    let counted = offload::off_worker(move || {
                        let count = count_input(&accounting, &request);
                        (request, count)
                    })
                    .await;
                    let Some((request, (tokens, exact))) = counted else {
                        let error = LoomError::internal("counting the request's input tokens failed");
                        if let Some(pending) = unanswered.pending.take() {
                            pending.finish(
                                &unanswered.accounting,
                                None,
                                None,
                                Outcome::Error,
                                error.http_status(),
                            );
                        }
                        return Err(error);
                    };
                    if let Some(pending) = unanswered.pending.as_mut() {
                        (pending.input_estimate, pending.input_exact) = (tokens, exact);
                    }
                    let mut request = *request;
                    request.context.extensions.insert(InputTokenEstimate(tokens));
                    inner.call(request)
                }
            };
            let result = call.await;
            // From here on the request ends in this block, which records it.
            let Some(mut pending) = unanswered.pending.take() else { return result };
            let accounting = &unanswered.accounting;
            let mut response = match result {
                Ok(response) => response,
                Err(error) => {
                    pending.record.provider =
                        error.upstream.as_ref().map(|upstream| Arc::from(upstream.provider.as_str()));
                    let outcome = match &error.refusal {
                        Some(reason) => {
                            pending.record.refusal = Some(Arc::from(&**reason));
                            Outcome::Refused
                        }
                        None => Outcome::Error,
                    };
                    pending.finish(accounting, None, None, outcome, error.http_status());
                    return Err(error);
                }
            };
            pending.record.provider = Some(response.provider.clone());
            // The cache stage marks answers it served: they cost nothing, and save their price.
            pending.record.cache_hit = loom_core::served_from_cache(&response.headers);
            pending.record.time_to_first_byte = Some(pending.started.elapsed());
            match &mut response.payload {
                ResponsePayload::Chat(answer) => {
                    pending.record.model_served = Some(answer.model().to_owned());
                    let text = answer.usage().is_none().then(|| answer_text(answer));
                    pending.finish(accounting, answer.usage(), text, Outcome::Ok, 200);
                }
                ResponsePayload::Embeddings(embeddings) => {
                    pending.record.model_served = Some(embeddings.model.clone());
                    let usage = embeddings.usage.as_ref().map(|usage| Usage::new(usage.prompt_tokens, 0));
                    pending.finish(accounting, usage.as_ref(), None, Outcome::Ok, 200);
                }
                ResponsePayload::TokenCount(_) => {
                    pending.finish(accounting, None, None, Outcome::Error, 500);
                    return Err(LoomError::internal("a token count answered a chat or embeddings request"));
                }
                ResponsePayload::Stream(stream) => {
                    pending.record.time_to_first_byte = None;
                    let inner = std::mem::replace(stream, Box::pin(futures_util::stream::empty()));
                    *stream = Box::pin(MeteredStream {
                        inner,
                        meter: Some(Meter {
                            pending,
                            accounting: accounting.clone(),
                            usage: None,
                            text: String::new(),
                            unread: Vec::new(),
                            unread_bytes: 0,
                        }),
                    });
                }
            }
            Ok(response)
        })
    }
}
