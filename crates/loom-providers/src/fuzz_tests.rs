//! Shared pieces of the stream decoders' fuzz tests (one per provider format, next to
//! each decoder), and the fuzzing of the SSE framing every format's stream goes through.

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::Stream;
use proptest::prelude::*;
use serde_json::Value;
use sse_core::{MessageEvent, SseDecoder, SseEvent};

use crate::upstream::Upstream;

/// Cases per property and CI run; `PROPTEST_CASES` sets another number (for a longer hunt).
pub(crate) fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 512;
    }
    // Failures print their minimal input; a finding is kept as a named test, not a file.
    config.failure_persistence = None;
    config
}

/// The upstream of a provider named `fuzz` (never contacted).
pub(crate) fn upstream() -> Upstream {
    let config = crate::settings::UpstreamSettings::new("fuzz");
    match crate::client::build_client(&config.name, config.timeouts.connect, config.pool_max_idle_per_host) {
        Ok(client) => Upstream::for_provider(
            &config,
            client,
            http::HeaderMap::new(),
            crate::secrets::ProviderSecrets::default(),
        ),
        Err(error) => panic!("a client for the fuzz tests: {error}"),
    }
}

/// Every item of a stream whose items are all ready (no I/O behind it).
pub(crate) fn ready_items<S: Stream + Unpin>(mut stream: S) -> Vec<S::Item> {
    let mut context = Context::from_waker(Waker::noop());
    let mut items = Vec::new();
    loop {
        match Pin::new(&mut stream).poll_next(&mut context) {
            Poll::Ready(Some(item)) => items.push(item),
            Poll::Ready(None) => return items,
            Poll::Pending => panic!("a stream of ready events waited"),
        }
    }
}

/// A `message` event carrying `data`.
pub(crate) fn event(data: String) -> MessageEvent {
    MessageEvent { event: "message".into(), data, last_event_id: None }
}

/// What one provider format's fuzz tests generate events from.
#[derive(Clone, Copy)]
pub(crate) struct Format {
    /// A valid stream, event by event, in order.
    pub(crate) script: &'static [&'static str],
    /// Valid events of every kind.
    pub(crate) examples: &'static [&'static str],
    /// The keys of the format's JSON.
    pub(crate) keys: &'static [&'static str],
    /// The strings its fields take (types, roles, reasons...).
    pub(crate) words: &'static [&'static str],
    /// Whether numbers go past `u32` (up to `u64::MAX`, where sums of token counts
    /// overflow), or stay where real counts are.
    pub(crate) huge_numbers: bool,
}

/// Any JSON value, its objects using the format's keys and its strings mostly its words.
pub(crate) fn json_value(format: Format) -> BoxedStrategy<Value> {
    let any_number = if format.huge_numbers {
        any::<u64>().prop_map(Value::from).boxed()
    } else {
        any::<u32>().prop_map(Value::from).boxed()
    };
    let number = prop_oneof![
        edge_number(format.huge_numbers),
        any_number,
        any::<f64>().prop_map(|float| serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number)),
    ];
    let text = prop_oneof![
        4 => proptest::sample::select(format.words).prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
    ];
    let leaf = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number, text];
    leaf.prop_recursive(4, 40, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(format.keys), inner), 0..5).prop_map(
                |fields| {
                    Value::Object(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
                }
            ),
        ]
    })
    .boxed()
}

/// Numbers at the edges: where u32 fields end, the wrong kinds (negative, fractional),
/// and with `huge`, where sums of token counts overflow.
fn edge_number(huge: bool) -> BoxedStrategy<Value> {
    let mut unsigned = vec![u64::from(u32::MAX) + 1, u64::from(u32::MAX), 0, 1];
    if huge {
        unsigned.extend([u64::MAX, u64::MAX - 1, u64::MAX / 2 + 1]);
    }
    prop_oneof![
        proptest::sample::select(unsigned).prop_map(Value::from),
        proptest::sample::select(vec![-1i64, i64::MIN]).prop_map(Value::from),
        Just(Value::from(1.5)),
    ]
    .boxed()
}

/// One change to a JSON tree: the node at `at` (in document order) is replaced by
/// `value`, or removed from its object or array.
#[derive(Debug, Clone)]
pub(crate) struct Mutation {
    at: usize,
    remove: bool,
    value: Value,
}

fn mutation(values: BoxedStrategy<Value>) -> impl Strategy<Value = Mutation> {
    (any::<usize>(), proptest::bool::weighted(0.3), values).prop_map(|(at, remove, value)| Mutation {
        at,
        remove,
        value,
    })
}

/// How many nodes `value` has, itself included.
fn nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(nodes).sum(),
        Value::Object(fields) => fields.values().map(nodes).sum(),
        _ => 0,
    }
}

/// Applies `mutation` to the node `left` places after `value` in document order (0 is
/// `value` itself, which is replaced, never removed); `true` once applied.
fn apply(value: &mut Value, left: &mut usize, mutation: &Mutation) -> bool {
    if *left == 0 {
        value.clone_from(&mutation.value);
        return true;
    }
    *left -= 1;
    match value {
        Value::Array(items) => {
            for index in 0..items.len() {
                if *left == 0 && mutation.remove {
                    items.remove(index);
                    return true;
                }
                if apply(&mut items[index], left, mutation) {
                    return true;
                }
            }
        }
        Value::Object(fields) => {
            let keys: Vec<String> = fields.keys().cloned().collect();
            for key in keys {
                if *left == 0 && mutation.remove {
                    fields.remove(&key);
                    return true;
                }
                if fields.get_mut(&key).is_some_and(|child| apply(child, left, mutation)) {
                    return true;
                }
            }
        }
        _ => {}
    }
    false
}

/// One of `examples` (valid JSON texts) with up to three nodes replaced (by an edge
/// number, often: counts are what most numbers in an answer are) or removed.
fn mutated(examples: &'static [&'static str], format: Format) -> BoxedStrategy<Value> {
    let values = prop_oneof![2 => edge_number(format.huge_numbers), 3 => json_value(format)].boxed();
    (proptest::sample::select(examples), proptest::collection::vec(mutation(values), 0..4))
        .prop_map(|(example, mutations)| {
            let mut value: Value = serde_json::from_str(example).unwrap_or(Value::Null);
            for mutation in mutations {
                let mut at = mutation.at % nodes(&value);
                apply(&mut value, &mut at, &mutation);
            }
            value
        })
        .boxed()
}

/// Event payloads: mostly mutated examples, else JSON from the format's keys, text cut
/// from an example, or anything.
fn payload(format: Format) -> BoxedStrategy<String> {
    let cut = (proptest::sample::select(format.examples), any::<prop::sample::Index>())
        .prop_map(|(example, at)| example.get(..at.index(example.len() + 1)).unwrap_or(example).to_owned());
    prop_oneof![
        6 => mutated(format.examples, format).prop_map(|value| value.to_string()),
        2 => json_value(format).prop_map(|value| value.to_string()),
        1 => cut,
        1 => proptest::sample::select(vec!["", " ", "[DONE]", "null", "{}", "[]", "\"x\""]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
    .boxed()
}

/// The numbers of `value`, in document order.
fn numbers_mut<'a>(value: &'a mut Value, out: &mut Vec<&'a mut Value>) {
    match value {
        Value::Number(_) => out.push(value),
        Value::Array(items) => items.iter_mut().for_each(|item| numbers_mut(item, out)),
        Value::Object(fields) => fields.values_mut().for_each(|field| numbers_mut(field, out)),
        _ => {}
    }
}

/// `example` with one of its numbers (if it has any) set to an edge value.
fn edge_numbered(example: &'static str, huge: bool) -> BoxedStrategy<String> {
    (any::<prop::sample::Index>(), edge_number(huge))
        .prop_map(move |(at, edge)| {
            let mut value: Value = serde_json::from_str(example).unwrap_or(Value::Null);
            let mut numbers = Vec::new();
            numbers_mut(&mut value, &mut numbers);
            if !numbers.is_empty() {
                let at = at.index(numbers.len());
                *numbers[at] = edge;
            }
            value.to_string()
        })
        .boxed()
}

/// A stream's event payloads: mostly the format's script with each event kept, given an
/// edge number, changed, or replaced by any payload, and maybe cut short; else (1 in 5)
/// any payloads.
pub(crate) fn stream_payloads(format: Format) -> BoxedStrategy<Vec<String>> {
    let events: Vec<BoxedStrategy<String>> = format
        .script
        .iter()
        .map(|event| {
            prop_oneof![
                8 => Just((*event).to_owned()),
                3 => edge_numbered(event, format.huge_numbers),
                1 => mutated(std::slice::from_ref(event), format).prop_map(|value| value.to_string()),
                1 => payload(format),
            ]
            .boxed()
        })
        .collect();
    let scripted = (events, any::<prop::sample::Index>(), proptest::bool::weighted(0.2)).prop_map(
        |(mut events, end, cut)| {
            if cut {
                events.truncate(end.index(events.len() + 1));
            }
            events
        },
    );
    prop_oneof![4 => scripted, 1 => proptest::collection::vec(payload(format), 0..12)].boxed()
}

/// Limit of the decoder under test: small, so the too-large path is reached too.
const TEST_EVENT_LIMIT: NonZeroUsize = NonZeroUsize::new(256).unwrap();

/// The events the upstream's SSE decoder reads from `frames`, fed one frame at a time as
/// [`crate::upstream`] feeds them, and whether one was too large (which ends the stream).
fn decode_frames(frames: &[Vec<u8>], limit: NonZeroUsize) -> (Vec<MessageEvent>, bool) {
    let mut decoder = SseDecoder::with_limit(limit);
    let mut events = Vec::new();
    for frame in frames {
        let mut pending = Bytes::from(frame.clone());
        loop {
            match decoder.next(&mut pending) {
                Some(Ok(SseEvent::Message(event))) => events.push(event),
                Some(Ok(SseEvent::Retry(_))) => {}
                Some(Err(_)) => return (events, true),
                None => break,
            }
        }
    }
    (events, false)
}

/// SSE text: events with names, ids, multi-line data, comments and `retry:` lines, in LF,
/// CRLF or CR line endings.
fn sse_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => "[ -~]{0,24}".prop_map(|data| format!("data: {data}")),
        1 => "[a-z_]{0,12}".prop_map(|name| format!("event: {name}")),
        1 => "[0-9a-z]{0,6}".prop_map(|id| format!("id: {id}")),
        1 => "[0-9x]{0,6}".prop_map(|retry| format!("retry: {retry}")),
        1 => "[ -~]{0,12}".prop_map(|comment| format!(": {comment}")),
        1 => Just("data".to_owned()),
        1 => Just(String::new()),
    ];
    let ending = proptest::sample::select(vec!["\n", "\r\n", "\r"]);
    (proptest::collection::vec(line, 0..16), ending)
        .prop_map(|(lines, ending)| lines.iter().map(|line| format!("{line}{ending}")).collect())
}

/// `bytes` split at the given points into frames.
fn split(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut frames = Vec::new();
    let mut start = 0;
    for point in points.into_iter().chain(std::iter::once(bytes.len())) {
        frames.push(bytes[start..point].to_vec());
        start = point;
    }
    frames
}

proptest! {
    #![proptest_config(config())]

    /// Whatever bytes arrive, in whatever frames, the decoder reads events or ends the
    /// stream at a too-large one; it never panics.
    #[test]
    fn sse_decoding_of_any_bytes_never_panics(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..96), 0..8)) {
        let (events, _) = decode_frames(&frames, TEST_EVENT_LIMIT);
        prop_assert!(events.iter().all(|event| event.data.len() <= TEST_EVENT_LIMIT.get()));
    }

    /// Where the body is cut into frames does not change the events read.
    #[test]
    fn sse_events_do_not_depend_on_the_framing(text in sse_text(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let limit = NonZeroUsize::MIN.saturating_add(1 << 20);
        let whole = decode_frames(&[text.clone().into_bytes()], limit);
        let framed = decode_frames(&split(text.as_bytes(), &cuts), limit);
        prop_assert_eq!(framed, whole);
    }
}

#[test]
fn mutations_replace_and_remove_the_numbered_node() {
    let example = || serde_json::json!({"a": [1, {"b": 2}], "c": 3});
    let run = |at, remove| {
        let mut value = example();
        let mut left = at;
        assert!(apply(&mut value, &mut left, &Mutation { at, remove, value: Value::from("x") }));
        value
    };
    assert_eq!(nodes(&example()), 6);
    assert_eq!(run(0, true), Value::from("x"));
    assert_eq!(run(2, false), serde_json::json!({"a": ["x", {"b": 2}], "c": 3}));
    assert_eq!(run(4, true), serde_json::json!({"a": [1, {}], "c": 3}));
    assert_eq!(run(5, true), serde_json::json!({"a": [1, {"b": 2}]}));
    assert_eq!(run(3, true), serde_json::json!({"a": [1], "c": 3}));
}
