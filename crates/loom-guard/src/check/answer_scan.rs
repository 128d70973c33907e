//! The checks on answers (`on: [response]`): content filters and the PII check with
//! `block`, `flag` or `log`. A whole answer is read at once; a streamed one as it streams,
//! holding back the last [`HOLD_BACK`] to 2x[`HOLD_BACK`] bytes of each choice's text, so
//! that what a check blocks never reaches the client, even when it arrives split across
//! chunks.
//!
//! A blocked whole answer becomes a 400 `content_policy_violation` naming the check; a
//! blocked stream ends with that error in place of the rest of the answer (its headers
//! are sent). `flag` names the check in `x-loom-guard` on whole answers; a stream's
//! headers are gone by the time its text is read, so there it counts and logs only.

use std::sync::Arc;

use futures_util::StreamExt;
use http::HeaderValue;
use loom_core::{
    ChatChunk, ChunkChoice, ChunkStream, Content, ContentPart, Delta, ErrorKind, LlmResponse, LoomError,
    ResponsePayload, StreamChunk,
};
use tracing::info;

use super::config::Action;
use super::policy::{Finding, Policy};
use super::service::GUARD_HEADER;
use crate::observer::GuardObserver;

/// Bytes of a streamed answer's text held back at least: a match no longer than this is
/// caught before any of it is sent.
pub const HOLD_BACK: usize = 256;

/// Runs `policy`'s answer checks on `response`: an error for a blocked whole answer, a
/// checked stream in place of a streamed one.
pub(super) fn check_answer(
    policy: Arc<Policy>,
    observer: Arc<dyn GuardObserver>,
    request_id: Arc<str>,
    mut response: LlmResponse,
) -> Result<LlmResponse, LoomError> {
    let empty: ChunkStream = Box::pin(futures_util::stream::empty());
    match std::mem::replace(&mut response.payload, ResponsePayload::Stream(empty)) {
        ResponsePayload::Chat(answer) => {
            let typed = answer.into_typed()?;
            let mut text = String::new();
            for choice in &typed.choices {
                match &choice.message.content {
                    Some(Content::Text(part)) => text.push_str(part),
                    Some(Content::Parts(parts)) => parts.iter().for_each(|part| {
                        if let ContentPart::Text(part) = part {
                            text.push_str(&part.text);
                        }
                    }),
                    None => {}
                }
                text.push('\n');
            }
            let findings = policy.inspect_answer(&text);
            let decided = decide(&findings, observer.as_ref(), &request_id);
            if let Some(error) = decided.blocked {
                return Err(error);
            }
            if !decided.flagged.is_empty() {
                append_flags(&mut response, &decided.flagged);
            }
            response.payload = ResponsePayload::Chat(typed.into());
        }
        ResponsePayload::Stream(stream) => {
            response.payload = ResponsePayload::Stream(scan_stream(stream, policy, observer, request_id));
        }
        other => response.payload = other,
    }
    Ok(response)
}

/// What the findings on an answer decide.
struct Decided {
    blocked: Option<LoomError>,
    flagged: Vec<Arc<str>>,
}

/// Reports each finding to `observer`, logs the `log` ones, and gives the first block
/// and the flags.
fn decide(findings: &[Finding], observer: &dyn GuardObserver, request_id: &str) -> Decided {
    let mut decided = Decided { blocked: None, flagged: Vec::new() };
    for finding in findings {
        observer
            .check_decision(&finding.check, if finding.fired { finding.action.as_str() } else { "allow" });
        if !finding.fired {
            continue;
        }
        match finding.action {
            Action::Block => {
                decided.blocked.get_or_insert_with(|| blocked_answer(finding));
            }
            Action::Flag => decided.flagged.push(finding.check.clone()),
            Action::Log | Action::Redact => info!(
                check = &*finding.check,
                kinds = %finding.pii_kinds.join(","),
                request_id,
                "security check fired on the answer; it goes on"
            ),
        }
    }
    decided
}

/// The error that replaces a blocked answer: the check, never the text.
fn blocked_answer(finding: &Finding) -> LoomError {
    let message = if finding.pii_kinds.is_empty() {
        let name = finding.check.strip_prefix("content_filter:").unwrap_or(&finding.check);
        format!("Answer blocked by the content filter `{name}`")
    } else {
        format!("Answer blocked by the PII check (found: {})", finding.pii_kinds.join(", "))
    };
    LoomError::new(ErrorKind::InvalidRequest, message)
        .with_code("content_policy_violation")
        .with_refusal(format!("guard:{}", finding.check))
}

/// Adds `flags` to the answer's `x-loom-guard`, after what the request's checks put there.
fn append_flags(response: &mut LlmResponse, flags: &[Arc<str>]) {
    let mut names: Vec<&str> = Vec::new();
    let existing =
        response.headers.get(GUARD_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned);
    if let Some(existing) = &existing {
        names.extend(existing.split(", "));
    }
    for flag in flags {
        if !names.contains(&&**flag) {
            names.push(flag);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
        response.headers.insert(GUARD_HEADER, value);
    }
}

/// A streamed answer under check: each choice's text not yet sent.
struct Scanning {
    inner: ChunkStream,
    policy: Arc<Policy>,
    observer: Arc<dyn GuardObserver>,
    request_id: Arc<str>,
    held: Vec<(u32, String)>,
    /// The answer checks that fired on the text read so far, once each.
    fired: Vec<Finding>,
    /// The last chunk seen, whose id and model a closing chunk of held-back text reuses.
    last: Option<ChatChunk>,
}

impl Scanning {
    fn held(&mut self, index: u32) -> &mut String {
        let position = match self.held.iter().position(|(choice, _)| *choice == index) {
            Some(position) => position,
            None => {
                self.held.push((index, String::new()));
                self.held.len() - 1
            }
        };
        &mut self.held[position].1
    }

    /// Reads `text`; a block ends the stream with its error.
    fn read(&mut self, text: &str) -> Result<(), LoomError> {
        for finding in self.policy.inspect_answer(text) {
            if !finding.fired {
                continue;
            }
            if finding.action == Action::Block {
                let error = blocked_answer(&finding);
                self.report(Some(finding));
                return Err(error);
            }
            if !self.fired.iter().any(|seen| seen.check == finding.check) {
                self.fired.push(finding);
            }
        }
        Ok(())
    }

    /// Takes what of choice `index`'s held text can be sent: all of it at the end, else
    /// all but the last [`HOLD_BACK`] bytes (cut at a space, so a word is read whole) once
    /// twice that is held.
    fn release(&mut self, index: u32, end: bool) -> Result<String, LoomError> {
        let held = std::mem::take(self.held(index));
        if !end && held.len() < 2 * HOLD_BACK {
            *self.held(index) = held;
            return Ok(String::new());
        }
        self.read(&held)?;
        if end {
            return Ok(held);
        }
        let mut cut = held.len() - HOLD_BACK;
        while !held.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = held[..cut].rfind(char::is_whitespace) {
            cut = space;
        }
        let mut sent = held;
        *self.held(index) = sent.split_off(cut);
        Ok(sent)
    }

    fn chunk(&mut self, chunk: StreamChunk) -> Result<StreamChunk, LoomError> {
        let mut chunk = chunk.into_typed()?;
        for choice in &mut chunk.choices {
            let content = choice.delta.content.take();
            if let Some(text) = &content {
                self.held(choice.index).push_str(text);
            }
            let out = self.release(choice.index, choice.finish_reason.is_some())?;
            if content.is_some() || !out.is_empty() {
                choice.delta.content = Some(out);
            }
        }
        let mut template = chunk.clone();
        template.choices.clear();
        template.usage = None;
        self.last = Some(template);
        Ok(chunk.into())
    }

    /// The text still held when the stream ends without a finish reason, as one chunk.
    fn tail(&mut self) -> Option<Result<StreamChunk, LoomError>> {
        let mut chunk = self.last.take()?;
        let indexes: Vec<u32> = self.held.iter().map(|(index, _)| *index).collect();
        for index in indexes {
            let text = match self.release(index, true) {
                Ok(text) => text,
                Err(error) => return Some(Err(error)),
            };
            if !text.is_empty() {
                chunk.choices.push(ChunkChoice {
                    index,
                    delta: Delta { content: Some(text), ..Delta::default() },
                    finish_reason: None,
                    logprobs: None,
                    extra: Default::default(),
                });
            }
        }
        (!chunk.choices.is_empty()).then(|| Ok(chunk.into()))
    }

    /// Reports every answer check once: what fired (plus `blocked`), the rest allowed.
    fn report(&mut self, blocked: Option<Finding>) {
        let mut findings = std::mem::take(&mut self.fired);
        findings.extend(blocked);
        for finding in self.policy.answer_checks() {
            if !findings.iter().any(|fired| fired.check == finding.check) {
                findings.push(finding);
            }
        }
        let _ = decide(&findings, self.observer.as_ref(), &self.request_id);
    }
}

fn scan_stream(
    inner: ChunkStream,
    policy: Arc<Policy>,
    observer: Arc<dyn GuardObserver>,
    request_id: Arc<str>,
) -> ChunkStream {
    let state =
        Scanning { inner, policy, observer, request_id, held: Vec::new(), fired: Vec::new(), last: None };
    Box::pin(futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.inner.next().await {
            Some(Ok(chunk)) => match state.chunk(chunk) {
                Ok(chunk) => Some((Ok(chunk), Some(state))),
                // Blocked: the error ends the stream.
                Err(error) => Some((Err(error), None)),
            },
            Some(Err(error)) => Some((Err(error), Some(state))),
            None => {
                let tail = state.tail();
                if !matches!(tail, Some(Err(_))) {
                    state.report(None);
                }
                tail.map(|tail| (tail, None))
            }
        }
    }))
}
