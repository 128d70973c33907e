//! Canonical chunks -> Responses stream events, as they arrive.
//!
//! Every event is `event: <type>` plus JSON data carrying the same `type` and a
//! `sequence_number` counting from 0. The writer keeps the output items it has opened
//! (the final `response.completed` repeats them whole), never the events themselves.

use bytes::{BufMut, BytesMut};
use futures_util::StreamExt;
use loom_core::{ChatChunk, ChunkStream, FinishReason, LoomError, StreamChunk, Usage};
use serde_json::{Map, Value, json};

use crate::responses_format::{
    OutputContent, OutputItem, ResponseEcho, ResponseObject, SummaryPart, new_id, redacted_reasoning_item,
};
use crate::sse::{EventStream, SseEvent};

/// Called with the finished response (completed or incomplete, never failed); the last
/// event waits for its future (so the response is kept before the client sees it end).
pub type OnFinished = Box<dyn FnOnce(&ResponseObject) -> KeepFuture + Send>;

/// The work [`OnFinished`] starts.
pub type KeepFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The output item currently receiving deltas.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// A reasoning item at this output index; whether its summary part has begun.
    Reasoning { output_index: usize, summary_open: bool },
    /// A message item at this output index.
    Message { output_index: usize },
    /// Function calls: open until another kind of item starts or the answer ends.
    Calls,
}

/// Rebuilds the Responses item structure from canonical deltas.
struct EventWriter {
    sequence: u64,
    response: ResponseObject,
    started: bool,
    open: Option<Open>,
    /// (tool-call index, output index) of the open function calls.
    calls: Vec<(u32, usize)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    on_finished: Option<OnFinished>,
}

impl EventWriter {
    fn new(model: String, echo: &ResponseEcho, on_finished: Option<OnFinished>) -> Self {
        EventWriter {
            sequence: 0,
            response: ResponseObject::start(new_id("resp"), model, echo),
            started: false,
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
            on_finished,
        }
    }

    /// Appends one event: its type as the SSE event name and in the data, with the next
    /// sequence number.
    fn emit(&mut self, out: &mut BytesMut, kind: &'static str, mut data: Map<String, Value>) {
        data.insert("type".to_owned(), Value::String(kind.to_owned()));
        data.insert("sequence_number".to_owned(), Value::from(self.sequence));
        self.sequence += 1;
        out.put_slice(b"event: ");
        out.put_slice(kind.as_bytes());
        out.put_slice(b"\ndata: ");
        let mut writer = out.writer();
        // A map of JSON values always serializes.
        let _ = serde_json::to_writer(&mut writer, &data);
        writer.into_inner().put_slice(b"\n\n");
    }

    fn emit_response(&mut self, out: &mut BytesMut, kind: &'static str) {
        let response = serde_json::to_value(&self.response).unwrap_or(Value::Null);
        self.emit(out, kind, object(json!({ "response": response })));
    }

    fn start(&mut self, out: &mut BytesMut, model: Option<&str>) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(model) = model.filter(|model| !model.is_empty()) {
            self.response.set_model(model);
        }
        self.emit_response(out, "response.created");
        self.emit_response(out, "response.in_progress");
    }

    fn add_item(&mut self, out: &mut BytesMut, item: OutputItem) -> usize {
        let output_index = self.response.output.len();
        let shown = serde_json::to_value(&item).unwrap_or(Value::Null);
        self.response.output.push(item);
        self.emit(
            out,
            "response.output_item.added",
            object(json!({"output_index": output_index, "item": shown})),
        );
        output_index
    }

    fn item_done(&mut self, out: &mut BytesMut, output_index: usize) {
        let status = self.item_status();
        let Some(item) = self.response.output.get_mut(output_index) else { return };
        match item {
            OutputItem::Reasoning { status: item_status, .. } => *item_status = "completed",
            OutputItem::Message { status: item_status, .. } => *item_status = status,
            OutputItem::FunctionCall { status: item_status, .. } => *item_status = "completed",
        }
        let shown = serde_json::to_value(&*item).unwrap_or(Value::Null);
        self.emit(
            out,
            "response.output_item.done",
            object(json!({"output_index": output_index, "item": shown})),
        );
    }

    /// A message's status when it closes: incomplete when the answer was cut short.
    fn item_status(&self) -> &'static str {
        match self.finish {
            Some(FinishReason::Length | FinishReason::ContentFilter) => "incomplete",
            _ => "completed",
        }
    }

    fn item_id(&self, output_index: usize) -> String {
        match self.response.output.get(output_index) {
            Some(
                OutputItem::Reasoning { id, .. }
                | OutputItem::Message { id, .. }
                | OutputItem::FunctionCall { id, .. },
            ) => id.clone(),
            None => String::new(),
        }
    }

    fn close(&mut self, out: &mut BytesMut) {
        match self.open.take() {
            None => {}
            Some(Open::Reasoning { output_index, summary_open }) => {
                if summary_open {
                    let item_id = self.item_id(output_index);
                    let text = match self.response.output.get(output_index) {
                        Some(OutputItem::Reasoning { summary, .. }) => {
                            summary.first().map(|part| part.text.clone()).unwrap_or_default()
                        }
                        _ => String::new(),
                    };
                    let at = json!({"item_id": item_id, "output_index": output_index, "summary_index": 0});
                    let mut done = object(at.clone());
                    done.insert("text".to_owned(), Value::String(text.clone()));
                    self.emit(out, "response.reasoning_summary_text.done", done);
                    let mut part = object(at);
                    part.insert("part".to_owned(), json!({"type": "summary_text", "text": text}));
                    self.emit(out, "response.reasoning_summary_part.done", part);
                }
                self.item_done(out, output_index);
            }
            Some(Open::Message { output_index }) => {
                let item_id = self.item_id(output_index);
                let content = match self.response.output.get(output_index) {
                    Some(OutputItem::Message { content, .. }) => content.clone(),
                    _ => Vec::new(),
                };
                for (content_index, part) in content.into_iter().enumerate() {
                    let at = json!({"item_id": item_id, "output_index": output_index, "content_index": content_index});
                    let mut done = object(at.clone());
                    match &part {
                        OutputContent::OutputText { text, .. } => {
                            done.insert("text".to_owned(), Value::String(text.clone()));
                            done.insert("logprobs".to_owned(), json!([]));
                            self.emit(out, "response.output_text.done", done);
                        }
                        OutputContent::Refusal { refusal } => {
                            done.insert("refusal".to_owned(), Value::String(refusal.clone()));
                            self.emit(out, "response.refusal.done", done);
                        }
                    }
                    let mut part_done = object(at);
                    part_done.insert("part".to_owned(), serde_json::to_value(&part).unwrap_or(Value::Null));
                    self.emit(out, "response.content_part.done", part_done);
                }
                self.item_done(out, output_index);
            }
            Some(Open::Calls) => {
                for (_, output_index) in std::mem::take(&mut self.calls) {
                    let item_id = self.item_id(output_index);
                    if let Some(OutputItem::FunctionCall { name, arguments, .. }) =
                        self.response.output.get(output_index)
                    {
                        let done = json!({"item_id": item_id, "output_index": output_index,
                            "name": name, "arguments": arguments});
                        self.emit(out, "response.function_call_arguments.done", object(done));
                    }
                    self.item_done(out, output_index);
                }
            }
        }
    }

    fn open_reasoning(&mut self, out: &mut BytesMut) -> usize {
        if let Some(Open::Reasoning { output_index, .. }) = self.open {
            return output_index;
        }
        self.close(out);
        let item = OutputItem::Reasoning {
            id: new_id("rs"),
            summary: Vec::new(),
            encrypted_content: None,
            status: "in_progress",
        };
        let output_index = self.add_item(out, item);
        self.open = Some(Open::Reasoning { output_index, summary_open: false });
        output_index
    }

    fn on_reasoning(&mut self, out: &mut BytesMut, delta: String) {
        let output_index = self.open_reasoning(out);
        let item_id = self.item_id(output_index);
        let at = json!({"item_id": item_id, "output_index": output_index, "summary_index": 0});
        if self.open == Some(Open::Reasoning { output_index, summary_open: false }) {
            self.open = Some(Open::Reasoning { output_index, summary_open: true });
            if let Some(OutputItem::Reasoning { summary, .. }) = self.response.output.get_mut(output_index) {
                summary.push(SummaryPart::new(String::new()));
            }
            let mut added = object(at.clone());
            added.insert("part".to_owned(), json!({"type": "summary_text", "text": ""}));
            self.emit(out, "response.reasoning_summary_part.added", added);
        }
        if let Some(OutputItem::Reasoning { summary, .. }) = self.response.output.get_mut(output_index)
            && let Some(part) = summary.first_mut()
        {
            part.text.push_str(&delta);
        }
        let mut event = object(at);
        event.insert("delta".to_owned(), Value::String(delta));
        self.emit(out, "response.reasoning_summary_text.delta", event);
    }

    fn on_signature(&mut self, out: &mut BytesMut, signature: String) {
        let output_index = self.open_reasoning(out);
        if let Some(OutputItem::Reasoning { encrypted_content, .. }) =
            self.response.output.get_mut(output_index)
        {
            encrypted_content.get_or_insert_with(String::new).push_str(&signature);
        }
    }

    fn on_redacted(&mut self, out: &mut BytesMut, data: &str) {
        self.close(out);
        let mut item = redacted_reasoning_item(data);
        if let OutputItem::Reasoning { status, .. } = &mut item {
            *status = "in_progress";
        }
        let output_index = self.add_item(out, item);
        self.item_done(out, output_index);
    }

    fn on_text(&mut self, out: &mut BytesMut, delta: String, refusal: bool) {
        let output_index = match self.open {
            Some(Open::Message { output_index }) => output_index,
            _ => {
                self.close(out);
                let item = OutputItem::Message {
                    id: new_id("msg"),
                    status: "in_progress",
                    role: "assistant",
                    content: Vec::new(),
                };
                let output_index = self.add_item(out, item);
                self.open = Some(Open::Message { output_index });
                output_index
            }
        };
        let item_id = self.item_id(output_index);
        let Some(OutputItem::Message { content, .. }) = self.response.output.get_mut(output_index) else {
            return;
        };
        // A new part when the kind changes (text, then a refusal, or back).
        let same_kind = matches!(
            (content.last(), refusal),
            (Some(OutputContent::OutputText { .. }), false) | (Some(OutputContent::Refusal { .. }), true)
        );
        let added = if same_kind {
            None
        } else {
            let part = if refusal {
                OutputContent::Refusal { refusal: String::new() }
            } else {
                OutputContent::text(String::new())
            };
            let shown = serde_json::to_value(&part).unwrap_or(Value::Null);
            content.push(part);
            Some(shown)
        };
        let content_index = content.len() - 1;
        match content.last_mut() {
            Some(OutputContent::OutputText { text, .. }) => text.push_str(&delta),
            Some(OutputContent::Refusal { refusal }) => refusal.push_str(&delta),
            None => {}
        }
        let at = json!({"item_id": item_id, "output_index": output_index, "content_index": content_index});
        if let Some(part) = added {
            let mut event = object(at.clone());
            event.insert("part".to_owned(), part);
            self.emit(out, "response.content_part.added", event);
        }
        let mut event = object(at);
        event.insert("delta".to_owned(), Value::String(delta));
        if refusal {
            self.emit(out, "response.refusal.delta", event);
        } else {
            event.insert("logprobs".to_owned(), json!([]));
            self.emit(out, "response.output_text.delta", event);
        }
    }

    fn on_tool_call(&mut self, out: &mut BytesMut, call: loom_core::ToolCallDelta) {
        if self.open != Some(Open::Calls) {
            self.close(out);
            self.open = Some(Open::Calls);
        }
        let (name, arguments) = match call.function {
            Some(function) => (function.name, function.arguments),
            None => (None, None),
        };
        let output_index = match self.calls.iter().find(|(index, _)| *index == call.index) {
            Some((_, output_index)) => *output_index,
            None => {
                let item = OutputItem::FunctionCall {
                    id: new_id("fc"),
                    call_id: call.id.unwrap_or_default(),
                    name: name.unwrap_or_default(),
                    arguments: String::new(),
                    status: "in_progress",
                };
                let output_index = self.add_item(out, item);
                self.calls.push((call.index, output_index));
                output_index
            }
        };
        let Some(delta) = arguments.filter(|arguments| !arguments.is_empty()) else { return };
        if let Some(OutputItem::FunctionCall { arguments, .. }) = self.response.output.get_mut(output_index) {
            arguments.push_str(&delta);
        }
        let item_id = self.item_id(output_index);
        let event = json!({"item_id": item_id, "output_index": output_index, "delta": delta});
        self.emit(out, "response.function_call_arguments.delta", object(event));
    }

    /// The events one chunk becomes.
    fn on_chunk(&mut self, chunk: ChatChunk) -> BytesMut {
        let mut out = BytesMut::new();
        self.start(&mut out, Some(&chunk.model));
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        // A response has one choice; others are ignored.
        let Some(choice) = chunk.choices.into_iter().find(|choice| choice.index == 0) else { return out };
        let delta = choice.delta;
        if let Some(reasoning) = delta.reasoning_content.filter(|text| !text.is_empty()) {
            self.on_reasoning(&mut out, reasoning);
        }
        if let Some(signature) = delta.reasoning_signature.filter(|signature| !signature.is_empty()) {
            self.on_signature(&mut out, signature);
        }
        if let Some(data) = delta.redacted_reasoning {
            self.on_redacted(&mut out, &data);
        }
        if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
            self.on_text(&mut out, text, false);
        }
        if let Some(refusal) = delta.refusal.filter(|text| !text.is_empty()) {
            self.on_text(&mut out, refusal, true);
        }
        for call in delta.tool_calls.into_iter().flatten() {
            self.on_tool_call(&mut out, call);
        }
        if let Some(finish) = choice.finish_reason {
            self.finish = Some(finish);
            self.close(&mut out);
        }
        out
    }

    /// The closing events once the chunks end, and the work to finish before sending them.
    fn finish(&mut self) -> (BytesMut, Option<KeepFuture>) {
        let mut out = BytesMut::new();
        self.start(&mut out, None);
        self.close(&mut out);
        self.response.finish(self.finish.as_ref(), self.usage.as_ref());
        let kind =
            if self.response.status == "incomplete" { "response.incomplete" } else { "response.completed" };
        self.emit_response(&mut out, kind);
        let keep = self.on_finished.take().map(|on_finished| on_finished(&self.response));
        (out, keep)
    }

    /// The events that end a failed stream.
    fn fail(&mut self, error: &LoomError) -> BytesMut {
        let mut out = BytesMut::new();
        self.start(&mut out, None);
        self.response.fail(error);
        self.emit_response(&mut out, "response.failed");
        out
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Responses SSE events for a canonical chunk stream; `model` is the one asked for (the
/// provider's own name replaces it once the first chunk tells it), and `on_finished`
/// receives the whole response when the stream completes.
pub fn responses_events(
    chunks: ChunkStream,
    model: String,
    echo: &ResponseEcho,
    on_finished: Option<OnFinished>,
) -> EventStream {
    let state = (chunks, EventWriter::new(model, echo, on_finished));
    Box::pin(futures_util::stream::unfold(Some(state), |state| async move {
        let (mut chunks, mut writer) = state?;
        loop {
            let next = chunks.next().await.map(|item| item.and_then(StreamChunk::into_typed));
            return match next {
                Some(Ok(chunk)) => {
                    let events = writer.on_chunk(chunk);
                    if events.is_empty() {
                        continue;
                    }
                    Some((SseEvent::Encoded(events.freeze()), Some((chunks, writer))))
                }
                Some(Err(error)) => Some((SseEvent::Encoded(writer.fail(&error).freeze()), None)),
                None => {
                    let (events, keep) = writer.finish();
                    if let Some(keep) = keep {
                        keep.await;
                    }
                    Some((SseEvent::Encoded(events.freeze()), None))
                }
            };
        }
    }))
}

/// Called with a native stream's response id and output items when it completes (or ends
/// incomplete, never failed); that event waits for the future.
pub type OnNativeCompleted = Box<dyn FnOnce(String, Vec<Value>) -> KeepFuture + Send>;

/// What is read of a native provider's event.
#[derive(serde::Deserialize)]
struct NativeEvent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(default)]
    response: Option<NativeResponse>,
}

#[derive(serde::Deserialize)]
struct NativeResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    output: Vec<Value>,
}

/// A native provider's Responses events, passed on one by one as the upstream wrote
/// them (`event: <type>` and its JSON); a failure after the first ends the stream with
/// an `error` event, numbered after the last.
pub fn native_events(chunks: ChunkStream, on_completed: Option<OnNativeCompleted>) -> EventStream {
    let state = (chunks, on_completed, 0u64);
    Box::pin(futures_util::stream::unfold(Some(state), |state| async move {
        let (mut chunks, mut on_completed, next_sequence) = state?;
        let failed = |error: &LoomError, sequence: u64| {
            let code = if error.kind == loom_core::ErrorKind::RateLimited {
                "rate_limit_exceeded"
            } else {
                "server_error"
            };
            let data = json!({"type": "error", "code": code, "message": error.message, "param": null,
                              "sequence_number": sequence});
            let mut out = BytesMut::new();
            write_event(&mut out, "error", data.to_string().as_bytes());
            Some((SseEvent::Encoded(out.freeze()), None))
        };
        match chunks.next().await {
            Some(Ok(StreamChunk::Wire(wire))) => {
                let event: NativeEvent = match serde_json::from_slice(wire.json()) {
                    Ok(event) => event,
                    Err(error) => {
                        let error = LoomError::new(
                            loom_core::ErrorKind::UpstreamError,
                            format!("unexpected event: {error}"),
                        );
                        return failed(&error, next_sequence);
                    }
                };
                if matches!(event.kind.as_str(), "response.completed" | "response.incomplete")
                    && let (Some(on_completed), Some(response)) = (on_completed.take(), event.response)
                {
                    on_completed(response.id, response.output).await;
                }
                let mut out = BytesMut::new();
                write_event(&mut out, &event.kind, wire.json());
                let next_sequence = event.sequence_number.map_or(next_sequence, |sequence| sequence + 1);
                Some((SseEvent::Encoded(out.freeze()), Some((chunks, on_completed, next_sequence))))
            }
            Some(Ok(StreamChunk::Typed(_))) => {
                failed(&LoomError::internal("a canonical chunk in a passed-through stream"), next_sequence)
            }
            Some(Err(error)) => failed(&error, next_sequence),
            None => None,
        }
    }))
}

/// Appends one SSE event: `event: <kind>` (left out unless it is a plain event name, so
/// an upstream cannot frame events of its own) and its data, line by line.
fn write_event(out: &mut BytesMut, kind: &str, data: &[u8]) {
    let plain = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-');
    if !kind.is_empty() && kind.bytes().all(plain) {
        out.put_slice(b"event: ");
        out.put_slice(kind.as_bytes());
        out.put_slice(b"\n");
    }
    for line in data.split(|byte| *byte == b'\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.put_slice(b"\n");
    }
    out.put_slice(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: Value, finish: Option<&str>, usage: Option<Value>) -> Result<StreamChunk, LoomError> {
        let mut json = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if let Some(usage) = usage {
            json["usage"] = usage;
        }
        Ok(StreamChunk::Typed(Box::new(serde_json::from_value(json).unwrap())))
    }

    async fn events(chunks: Vec<Result<StreamChunk, LoomError>>) -> Vec<(String, Value)> {
        let stream = responses_events(
            Box::pin(futures_util::stream::iter(chunks)),
            "asked".to_owned(),
            &ResponseEcho::default(),
            None,
        );
        let mut text = String::new();
        for event in stream.collect::<Vec<_>>().await {
            let mut encoded = BytesMut::new();
            event.write_to(&mut encoded);
            text.push_str(std::str::from_utf8(&encoded).unwrap());
        }
        text.split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                assert_eq!(data["type"], json!(name));
                (name, data)
            })
            .collect()
    }

    #[tokio::test]
    async fn reasoning_text_and_a_call_in_order() {
        let events = events(vec![
            chunk(json!({"role": "assistant", "reasoning_content": "Hm"}), None, None),
            chunk(json!({"reasoning_signature": "sig"}), None, None),
            chunk(json!({"content": "Hi"}), None, None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "f", "arguments": ""}}]}),
                None,
                None,
            ),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}), None, None),
            chunk(
                json!({}),
                Some("tool_calls"),
                Some(json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})),
            ),
        ])
        .await;
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let numbers: Vec<u64> =
            events.iter().map(|(_, data)| data["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (0..19).collect::<Vec<u64>>());
        assert_eq!(events[7].1["item"]["encrypted_content"], "sig");
        let completed = &events[18].1["response"];
        assert_eq!(completed["status"], "completed");
        assert_eq!(completed["model"], "m");
        assert_eq!(completed["usage"]["total_tokens"], 7);
        assert_eq!(completed["output"][2]["arguments"], "{}");
        assert_eq!(completed["output"][2]["call_id"], "call_1");
    }

    #[tokio::test]
    async fn a_cut_short_answer_is_incomplete_and_an_error_fails() {
        let events_of = events(vec![chunk(json!({"content": "Hi"}), Some("length"), None)]).await;
        let (name, last) = events_of.last().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
        let failed =
            events(vec![chunk(json!({"content": "Hi"}), None, None), Err(LoomError::internal("boom"))]).await;
        let (name, last) = failed.last().unwrap();
        assert_eq!(name, "response.failed");
        assert_eq!(last["response"]["error"], json!({"code": "server_error", "message": "boom"}));
    }

    fn native_chunk(json: Value) -> Result<StreamChunk, LoomError> {
        Ok(StreamChunk::Wire(loom_core::WireChunk::passed_through(
            bytes::Bytes::from(json.to_string()),
            None,
        )))
    }

    async fn native_text(
        chunks: Vec<Result<StreamChunk, LoomError>>,
        on_completed: Option<OnNativeCompleted>,
    ) -> String {
        let stream = native_events(Box::pin(futures_util::stream::iter(chunks)), on_completed);
        let mut encoded = BytesMut::new();
        for event in stream.collect::<Vec<_>>().await {
            event.write_to(&mut encoded);
        }
        String::from_utf8(encoded.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn native_events_pass_on_as_written_and_keep_the_completed_response_first() {
        let kept = std::sync::Arc::new(std::sync::Mutex::new(None));
        let on_completed: OnNativeCompleted = {
            let kept = kept.clone();
            Box::new(move |id, output| {
                *kept.lock().unwrap() = Some((id, output));
                Box::pin(async {}) as KeepFuture
            })
        };
        let delta = json!({"type": "response.output_text.delta", "sequence_number": 0, "delta": "Hi"});
        let completed = json!({"type": "response.completed", "sequence_number": 1,
            "response": {"id": "resp_up", "output": [{"type": "message"}]}});
        let text = native_text(
            vec![native_chunk(delta.clone()), native_chunk(completed.clone())],
            Some(on_completed),
        )
        .await;
        assert_eq!(
            text,
            format!(
                "event: response.output_text.delta\ndata: {delta}\n\nevent: response.completed\ndata: {completed}\n\n"
            )
        );
        assert_eq!(*kept.lock().unwrap(), Some(("resp_up".to_owned(), vec![json!({"type": "message"})])));
    }

    #[tokio::test]
    async fn a_failing_native_stream_ends_with_an_error_event_numbered_after_the_last() {
        let delta = json!({"type": "response.output_text.delta", "sequence_number": 7, "delta": "Hi"});
        let text =
            native_text(vec![native_chunk(delta.clone()), Err(LoomError::internal("boom"))], None).await;
        let error = json!({"type": "error", "code": "server_error", "message": "boom", "param": null, "sequence_number": 8});
        assert_eq!(
            text,
            format!("event: response.output_text.delta\ndata: {delta}\n\nevent: error\ndata: {error}\n\n")
        );
    }

    #[test]
    fn an_upstream_cannot_frame_events_of_its_own() {
        let mut out = BytesMut::new();
        write_event(&mut out, "x\ndata: injected", b"{\"a\":\n1}");
        assert_eq!(&out[..], b"data: {\"a\":\ndata: 1}\n\n");
    }
}
