//! [`Check`], the service of [`CheckLayer`](super::CheckLayer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use loom_core::{ErrorKind, GuardMarks, LlmRequest, LlmResponse, LoomError};
use tokio::runtime::Handle;
use tower::{Service, ServiceExt};
use tracing::info;

use super::answer::redact_response;
use super::answer_scan::check_answer;
use super::config::Action;
use super::layer::Settings;
use super::policy::{Finding, INJECTION, Policy};
use super::text::{inspected_texts, total_bytes};
use crate::auth::AuthenticatedKey;
use crate::inspect::redact::Redactor;
use crate::rate_limit::refused_record;

/// Requests with at least this many bytes of text are inspected on tokio's blocking pool:
/// at ~50-60 us per KB, longer ones would hold a front-door worker for milliseconds.
pub const BLOCKING_INSPECT_BYTES: usize = 32 * 1024;

/// The header naming the checks that flagged a request.
pub const GUARD_HEADER: &str = "x-loom-guard";

/// The service [`CheckLayer`](super::CheckLayer) produces.
#[derive(Clone)]
pub struct Check<S> {
    pub(super) inner: S,
    pub(super) settings: Arc<Settings>,
}

impl<S> Service<LlmRequest> for Check<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        // The service that was polled ready serves this request; a clone waits for the next.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(checked(self.settings.clone(), ready, request))
    }
}

async fn checked<S>(settings: Arc<Settings>, inner: S, request: LlmRequest) -> Result<LlmResponse, LoomError>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError>,
{
    let context = &request.context;
    let key = context.extensions.get::<AuthenticatedKey>().map(|key| &*key.0);
    let policy = settings.policy_for(context.identity.key_id.as_deref(), key, context.route.as_deref());
    let Some(policy) = policy.filter(|policy| !policy.is_empty()) else {
        return inner.oneshot(request).await;
    };
    #[cfg_attr(not(feature = "embed"), allow(unused_mut))]
    let (mut request, mut findings, redactor) = inspect(policy.clone(), request).await?;
    #[cfg(feature = "embed")]
    if let (Some(pool), Ok(model)) = (&settings.embedder, crate::inspect::semantic::builtin()) {
        let observer = settings.observer.as_ref();
        super::semantic_stage::decide(observer, pool, model, &policy, &mut request, &mut findings).await;
    }
    let mut flagged: Vec<&str> = Vec::new();
    let mut blocked = None;
    for finding in &findings {
        let action = if finding.fired { finding.action.as_str() } else { "allow" };
        settings.observer.check_decision(&finding.check, action);
        if !finding.fired {
            continue;
        }
        match finding.action {
            Action::Block => {
                blocked.get_or_insert(finding);
            }
            Action::Flag => flagged.push(&finding.check),
            Action::Log => log_finding(finding, &request),
            // Redacted by `inspect` already; the answer says the check acted.
            Action::Redact => flagged.push(&finding.check),
        }
    }
    let marks: Vec<String> = findings
        .iter()
        .filter(|finding| finding.fired && finding.action != Action::Block)
        .map(|finding| format!("{}:{}", finding.check, finding.action.as_str()))
        .collect();
    if blocked.is_none() && !marks.is_empty() {
        request.context.extensions.insert(GuardMarks(Arc::from(marks.join(", "))));
    }
    if let Some(finding) = blocked {
        let error = block(finding);
        if let Some(recorder) = &settings.recorder {
            let reason = error.refusal.as_deref().unwrap_or("guard");
            recorder.record(refused_record(&request, reason, error.http_status()));
        }
        return Err(error);
    }
    let flag = (!flagged.is_empty()).then(|| HeaderValue::from_str(&flagged.join(", ")).ok()).flatten();
    let checks_answers = policy.checks_answers();
    if flag.is_none() && redactor.is_none() && !checks_answers {
        return inner.oneshot(request).await;
    }
    let request_id = request.context.request_id.clone();
    match inner.oneshot(request).await {
        Ok(mut response) => {
            if let Some(redactor) = redactor {
                redact_response(&mut response, redactor)?;
            }
            if let Some(flag) = flag {
                response.headers.insert(GUARD_HEADER, flag);
            }
            if checks_answers {
                return check_answer(policy, settings.observer.clone(), request_id, response);
            }
            Ok(response)
        }
        Err(mut error) => {
            if let Some(flag) = flag {
                error.headers.get_or_insert_default().insert(GUARD_HEADER, flag);
            }
            Err(error)
        }
    }
}

/// Runs `policy` on the request's texts: inline when they are short, on the blocking
/// pool when they are long (the request moves there and back, so nothing is copied).
async fn inspect(
    policy: Arc<Policy>,
    request: LlmRequest,
) -> Result<(LlmRequest, Vec<Finding>, Option<Redactor>), LoomError> {
    let texts = inspected_texts(&request.payload);
    let runtime = Handle::try_current().ok().filter(|_| total_bytes(&texts) >= BLOCKING_INSPECT_BYTES);
    let Some(runtime) = runtime else {
        let findings = policy.inspect(&texts);
        drop(texts);
        let (mut request, mut findings) = (request, findings);
        let redactor = redact(&policy, &mut request, &mut findings);
        return Ok((request, findings, redactor));
    };
    drop(texts);
    runtime
        .spawn_blocking(move || {
            let mut findings = policy.inspect(&inspected_texts(&request.payload));
            let mut request = request;
            let redactor = redact(&policy, &mut request, &mut findings);
            (request, findings, redactor)
        })
        .await
        .map_err(|_| LoomError::internal("The security checks failed on this request"))
}

/// With a check whose action is `redact`, redacts every text of the request, also past
/// what the checks read, unless another check blocks it (then it goes nowhere), and gives
/// the placeholders for the answer. A check that found nothing in what it read but whose
/// redaction replaced values counts as fired.
fn redact(policy: &Policy, request: &mut LlmRequest, findings: &mut [Finding]) -> Option<Redactor> {
    let blocked = findings.iter().any(|finding| finding.fired && finding.action == Action::Block);
    let redacting = findings.iter_mut().find(|finding| finding.action == Action::Redact)?;
    if blocked {
        return None;
    }
    let redactor = policy.redact(&mut request.payload)?;
    if !redactor.is_empty() {
        redacting.fired = true;
    }
    Some(redactor)
}

/// The 400 a blocked request gets: the check that fired and why, never the text.
fn block(finding: &Finding) -> LoomError {
    let message = match &finding.injection {
        Some(injection) if !injection.rules.is_empty() => {
            format!("Request blocked by the prompt-injection check (rules: {})", injection.rules.join(", "))
        }
        Some(injection) => match injection.embedding {
            Some(probability) => format!(
                "Request blocked by the prompt-injection check (score {:.2}, embedding stage {:.2})",
                injection.score, probability
            ),
            None => format!(
                "Request blocked by the prompt-injection check (score {:.2} >= threshold {:.2})",
                injection.score, injection.threshold
            ),
        },
        None if !finding.pii_kinds.is_empty() => {
            format!("Request blocked by the PII check (found: {})", finding.pii_kinds.join(", "))
        }
        None => format!(
            "Request blocked by the content filter `{}`",
            finding.check.strip_prefix("content_filter:").unwrap_or(&finding.check)
        ),
    };
    LoomError::new(ErrorKind::InvalidRequest, message)
        .with_code("content_policy_violation")
        .with_refusal(format!("guard:{}", finding.check))
}

/// The log line of a check whose action is `log`: its name and score, never the text.
fn log_finding(finding: &Finding, request: &LlmRequest) {
    let request_id = &*request.context.request_id;
    match &finding.injection {
        Some(injection) => info!(
            check = INJECTION,
            score = injection.score,
            threshold = injection.threshold,
            rules = %injection.rules.join(","),
            request_id,
            "security check fired; the request goes on"
        ),
        None if !finding.pii_kinds.is_empty() => info!(
            check = &*finding.check,
            kinds = %finding.pii_kinds.join(","),
            request_id,
            "security check fired; the request goes on"
        ),
        None => info!(check = &*finding.check, request_id, "security check fired; the request goes on"),
    }
}
