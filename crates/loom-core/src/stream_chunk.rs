//! The items of a streamed answer: canonical chunks, or an OpenAI-format upstream's own
//! chunk JSON, read only as far as the pipeline needs.
//!
//! A chunk from an OpenAI-format upstream going to an OpenAI-format client needs no
//! translation: decoding it into a [`ChatChunk`] and encoding it again would cost more
//! than everything else Loom does per chunk. A [`WireChunk`] keeps the bytes, checks
//! they are JSON, and reads its usage; the stages that need more read it on demand.

use std::borrow::Cow;
use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem::Finder;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::chunk::ChatChunk;
use crate::error::{ErrorKind, LoomError};
use crate::usage::Usage;

/// One item of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamChunk {
    /// A canonical chunk (boxed: every stage moves chunks, and a small item moves cheaply).
    Typed(Box<ChatChunk>),
    /// An OpenAI `chat.completion.chunk` exactly as the upstream sent it.
    Wire(WireChunk),
}

impl From<ChatChunk> for StreamChunk {
    fn from(chunk: ChatChunk) -> Self {
        StreamChunk::Typed(Box::new(chunk))
    }
}

impl StreamChunk {
    /// The usage the chunk reports.
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            StreamChunk::Typed(chunk) => chunk.usage.as_ref(),
            StreamChunk::Wire(wire) => wire.usage.as_deref(),
        }
    }

    /// The canonical chunk, decoding wire JSON (a chunk that does not decode is an upstream error).
    pub fn into_typed(self) -> Result<ChatChunk, LoomError> {
        match self {
            StreamChunk::Typed(chunk) => Ok(*chunk),
            StreamChunk::Wire(wire) => wire.decode().map_err(|error| {
                LoomError::new(ErrorKind::UpstreamError, format!("unexpected stream chunk: {error}"))
            }),
        }
    }
}

/// An OpenAI `chat.completion.chunk` in the upstream's JSON, with its usage read.
#[derive(Debug, Clone, PartialEq)]
pub struct WireChunk {
    json: Bytes,
    usage: Option<Box<Usage>>,
    /// Where the model's name is in `json` (start, length), when it was read.
    model_at: Option<(u32, u32)>,
    has_choices: bool,
    is_error: bool,
}

/// What is read of a wire chunk, in one pass; everything else is skipped, not built.
#[derive(Deserialize)]
struct Outline<'a> {
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default, borrow)]
    model: Option<ModelText<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<Count>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// The length of a JSON array, its items skipped.
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = Count;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Count, A::Error> {
                let mut count = 0;
                while items.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Count(count))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

/// A chunk's `model` member: its text when it is a string without escapes (which
/// borrows from the chunk's JSON), anything else skipped.
struct ModelText<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for ModelText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, SeqAccess, Visitor};
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = ModelText<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(ModelText(Some(text)))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ModelText(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ModelText(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ModelText(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ModelText(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ModelText(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ModelText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, items: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(items).map(|_| ModelText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(members).map(|_| ModelText(None))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

/// Where `part`, a string borrowed from `whole`, lies in it.
fn span_in(whole: &[u8], part: &str) -> Option<(u32, u32)> {
    let start = part.as_ptr().addr().checked_sub(whole.as_ptr().addr())?;
    let end = start.checked_add(part.len())?;
    (whole.get(start..end)? == part.as_bytes()).then_some(())?;
    Some((u32::try_from(start).ok()?, u32::try_from(part.len()).ok()?))
}

/// Whether `rest` (what follows a key) is `: null`.
fn is_null_value(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    rest.strip_prefix(b":").is_some_and(|value| value.trim_ascii_start().starts_with(b"null"))
}

/// The model a chunk names.
#[derive(Deserialize)]
struct ModelOutline<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
}

impl WireChunk {
    /// Checks that `json` is a chunk (a JSON object with `id` and `model`) or an
    /// `{"error": ...}` object, and reads its usage.
    pub fn parse(json: Bytes) -> Result<Self, serde_json::Error> {
        use serde::de::Error;
        let outline: Outline = crate::json::object_from_bytes(&json, "a stream chunk")?;
        if outline.error.is_none() {
            if outline.id.is_none() {
                return Err(serde_json::Error::missing_field("id"));
            }
            if outline.model.is_none() {
                return Err(serde_json::Error::missing_field("model"));
            }
        }
        let has_choices = outline.choices.is_some_and(|Count(count)| count > 0);
        let usage = outline.usage.map(Box::new);
        let is_error = outline.error.is_some();
        let model_at = outline.model.and_then(|ModelText(text)| span_in(&json, text?));
        Ok(WireChunk { json, usage, model_at, has_choices, is_error })
    }

    /// Reads a later chunk of a stream whose first chunk [`WireChunk::parse`] accepted:
    /// only a chunk whose bytes may hold usage or an error is parsed; the others are passed
    /// on unread (their JSON is not checked), as most of a stream's chunks are.
    pub fn parse_next(json: Bytes) -> Result<Self, serde_json::Error> {
        // Searchers are built once: building one costs more than a search in a chunk.
        static ERROR_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));
        static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
        let object = json.trim_ascii();
        let needs_reading = !(object.starts_with(b"{") && object.ends_with(b"}"))
            || ERROR_KEY.find(object).is_some()
            || USAGE_KEY.find_iter(object).any(|at| !is_null_value(&object[at + USAGE_KEY.needle().len()..]));
        if needs_reading {
            return Self::parse(json);
        }
        // Not counted: only a chunk with usage is asked whether it has choices.
        Ok(WireChunk { json, usage: None, model_at: None, has_choices: true, is_error: false })
    }

    /// A stream event in another API's format passed through as is (the Responses API's,
    /// from a provider that serves it natively), with the usage it reports; it is no chat
    /// chunk, so [`StreamChunk::into_typed`] fails on it.
    pub fn passed_through(json: Bytes, usage: Option<Usage>) -> Self {
        WireChunk { json, usage: usage.map(Box::new), model_at: None, has_choices: true, is_error: false }
    }

    /// The chunk's JSON, as received.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The usage the chunk reports.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_deref()
    }

    /// Whether the chunk has choices (the final usage-only chunk has none).
    pub fn has_choices(&self) -> bool {
        self.has_choices
    }

    /// Whether the upstream sent an `{"error": ...}` object instead of a chunk.
    pub fn is_error(&self) -> bool {
        self.is_error
    }

    /// The canonical chunk.
    pub fn decode(&self) -> Result<ChatChunk, serde_json::Error> {
        crate::json::from_bytes(&self.json)
    }

    /// The model the chunk names.
    pub fn model(&self) -> Option<String> {
        // Read with the rest of the chunk, unless the chunk was passed on unread.
        if let Some((start, length)) = self.model_at {
            let (start, length) = (start as usize, length as usize);
            let text = self.json.get(start..start + length).and_then(|bytes| std::str::from_utf8(bytes).ok());
            return text.map(str::to_owned);
        }
        let outline: ModelOutline<'_> = crate::json::from_bytes(&self.json).ok()?;
        outline.model.map(Cow::into_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi \"you\"","reasoning_content":"think"},"logprobs":null,"finish_reason":null}],"x_vendor":{"a":1}}"#;
    const USAGE: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;

    #[test]
    fn keeps_the_bytes_and_reads_usage_and_choices() {
        let wire = WireChunk::parse(Bytes::from_static(CONTENT.as_bytes())).unwrap();
        assert_eq!(wire.json(), CONTENT.as_bytes());
        assert!(wire.has_choices());
        assert_eq!(wire.usage(), None);
        assert!(!wire.is_error());
        assert_eq!(wire.model().as_deref(), Some("gpt-4o"));
        assert_eq!(wire.decode().unwrap(), serde_json::from_str::<ChatChunk>(CONTENT).unwrap());

        let usage = WireChunk::parse(Bytes::from_static(USAGE.as_bytes())).unwrap();
        assert!(!usage.has_choices());
        assert_eq!(usage.usage(), Some(&Usage::new(5, 7)));
        assert_eq!(StreamChunk::Wire(usage).usage(), Some(&Usage::new(5, 7)));
    }

    #[test]
    fn later_chunks_are_read_only_when_they_may_hold_usage_or_an_error() {
        let next = |json: &'static str| WireChunk::parse_next(Bytes::from_static(json.as_bytes()));
        // Passed on unread: not even checked as JSON.
        let unread =
            next(r#"{"id":"c1","choices":[{"delta":{"content":"say \"usage\": 1"}}],"usage" : null}"#)
                .unwrap();
        assert_eq!((unread.usage(), unread.is_error(), unread.has_choices()), (None, false, true));
        assert!(next(r#"{"not json"#).is_err(), "the braces are checked");
        // Read: usage, errors, and anything that names them.
        assert_eq!(next(USAGE).unwrap().usage(), Some(&Usage::new(5, 7)));
        assert!(!next(USAGE).unwrap().has_choices());
        assert!(next(r#"{"error":{"message":"overloaded"}}"#).unwrap().is_error());
        assert!(next(r#"{"id":"c","model":"m","usage":{"prompt_tokens":1,"completion_tokens":2}"#).is_err());
        let spaced = next(
            "{\"id\":\"c\",\"model\":\"m\",\"usage\" :\n {\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}",
        );
        assert_eq!(spaced.unwrap().usage(), Some(&Usage::new(1, 2)));
    }

    #[test]
    fn the_model_is_read_with_the_chunk_or_on_demand() {
        let parse = |json: &'static str| WireChunk::parse(Bytes::from_static(json.as_bytes())).unwrap();
        let plain = parse(CONTENT);
        let at = CONTENT.find(r#""gpt-4o""#).unwrap() + 1;
        assert_eq!(plain.model_at, Some((at as u32, 6)));
        assert_eq!(plain.model().as_deref(), Some("gpt-4o"));
        let escaped = parse(r#"{"id":"c","model":"gpt-\u0034o","choices":[]}"#);
        assert_eq!((escaped.model_at, escaped.model().as_deref()), (None, Some("gpt-4o")));
        assert_eq!(parse(r#"{"id":"c","model":7,"choices":[]}"#).model(), None);
        assert_eq!(parse(r#"{"id":"c","model":{"name":[1]},"choices":[]}"#).model(), None);
        let unread = WireChunk::parse_next(Bytes::from_static(CONTENT.as_bytes())).unwrap();
        assert_eq!((unread.model_at, unread.model().as_deref()), (None, Some("gpt-4o")));
    }

    #[test]
    fn errors_and_bad_json_are_told_apart() {
        let error = WireChunk::parse(Bytes::from_static(br#"{"error":{"message":"overloaded"}}"#)).unwrap();
        assert!(error.is_error());
        assert!(WireChunk::parse(Bytes::from_static(b"{\"choices\":[")).is_err());
        assert!(WireChunk::parse(Bytes::from_static(b"[1,2]")).is_err());
        let no_id = WireChunk::parse(Bytes::from_static(br#"{"model":"m","choices":[]}"#)).unwrap_err();
        assert_eq!(no_id.to_string(), "missing field `id`");
    }
}
