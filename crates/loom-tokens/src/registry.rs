//! Model name -> tokenizer: built-in OpenAI table, estimate rules, overrides, fallback.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use loom_core::ChatRequest;
use serde::Serialize;

use crate::chat::{self, ChatCount, Estimate};
use crate::encoding::Encoding;
use crate::error::TokenError;
use crate::hf::HfTokenizer;
use crate::spec::TokenizerSpec;

/// Built-in OpenAI model prefixes; the longest prefix of a model name wins.
///
/// After tiktoken's `MODEL_TO_ENCODING`/`MODEL_PREFIX_TO_ENCODING` (0.14), with
/// `gpt-oss` on `o200k_base`: its `o200k_harmony` differs only in special tokens, which
/// ordinary text never produces.
const OPENAI_PREFIXES: &[(&str, Encoding)] = &[
    ("gpt-5", Encoding::O200kBase),
    ("gpt-4.5", Encoding::O200kBase),
    ("gpt-4.1", Encoding::O200kBase),
    ("gpt-4o", Encoding::O200kBase),
    ("chatgpt-4o", Encoding::O200kBase),
    ("gpt-oss", Encoding::O200kBase),
    ("o1", Encoding::O200kBase),
    ("o3", Encoding::O200kBase),
    ("o4-mini", Encoding::O200kBase),
    ("codex-mini", Encoding::O200kBase),
    ("ft:gpt-4o", Encoding::O200kBase),
    ("ft:gpt-4.1", Encoding::O200kBase),
    ("gpt-4", Encoding::Cl100kBase),
    ("gpt-3.5", Encoding::Cl100kBase),
    ("gpt-35-turbo", Encoding::Cl100kBase),
    ("text-embedding-3-", Encoding::Cl100kBase),
    ("text-embedding-ada-002", Encoding::Cl100kBase),
    ("davinci-002", Encoding::Cl100kBase),
    ("babbage-002", Encoding::Cl100kBase),
    ("ft:gpt-4", Encoding::Cl100kBase),
    ("ft:gpt-3.5-turbo", Encoding::Cl100kBase),
    ("ft:davinci-002", Encoding::Cl100kBase),
    ("ft:babbage-002", Encoding::Cl100kBase),
];

/// Scale (percent of the `o200k_base` count) of the Anthropic estimate.
pub const ANTHROPIC_ESTIMATE_PERCENT: u32 = 120;
/// Scale (percent of the `o200k_base` count) of the Gemini estimate.
pub const GEMINI_ESTIMATE_PERCENT: u32 = 110;

/// The vendor family of a model, which decides chat framing and image rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFamily {
    /// OpenAI models (and Azure deployments of them).
    OpenAi,
    /// Anthropic Claude models (any name containing `claude`).
    Anthropic,
    /// Google Gemini models (any name containing `gemini`).
    Gemini,
    /// Anything else, e.g. local models.
    Other,
}

impl ModelFamily {
    /// The family of `model`, from its name.
    pub fn of(model: &str) -> ModelFamily {
        let key = model_key(model);
        if builtin_encoding(&key).is_some() {
            ModelFamily::OpenAi
        } else if key.contains("claude") {
            ModelFamily::Anthropic
        } else if key.contains("gemini") {
            ModelFamily::Gemini
        } else {
            ModelFamily::Other
        }
    }
}

/// The built-in encoding of an OpenAI model, by longest prefix (`None` if not OpenAI).
pub fn builtin_encoding(model: &str) -> Option<Encoding> {
    longest_prefix(OPENAI_PREFIXES.iter().map(|(prefix, encoding)| (*prefix, encoding)), &model_key(model))
        .copied()
}

/// Lower-cased model name without a provider path (`openai/gpt-4o`, `models/gemini-2.0`).
fn model_key(model: &str) -> String {
    let model = model.trim();
    let name = model.rsplit('/').next().unwrap_or(model);
    name.to_ascii_lowercase()
}

fn longest_prefix<'a, T>(entries: impl Iterator<Item = (&'a str, T)>, key: &str) -> Option<T> {
    entries
        .filter(|(prefix, _)| key.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, value)| value)
}

/// A loaded tokenizer: a built-in encoding or a HuggingFace file. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// A built-in tiktoken encoding.
    Builtin(Encoding),
    /// A loaded `tokenizer.json`, shared.
    HuggingFace(Arc<HfTokenizer>),
}

impl Tokenizer {
    /// Number of tokens in `text`.
    pub fn count(&self, text: &str) -> usize {
        match self {
            Tokenizer::Builtin(encoding) => encoding.count(text),
            Tokenizer::HuggingFace(tokenizer) => tokenizer.count(text),
        }
    }

    /// The spec that names this tokenizer.
    pub fn spec(&self) -> TokenizerSpec {
        match self {
            Tokenizer::Builtin(encoding) => TokenizerSpec::Builtin(*encoding),
            Tokenizer::HuggingFace(tokenizer) => TokenizerSpec::HuggingFace(tokenizer.path().to_owned()),
        }
    }

    /// The built-in encoding, if this is one.
    pub fn encoding(&self) -> Option<Encoding> {
        match self {
            Tokenizer::Builtin(encoding) => Some(*encoding),
            Tokenizer::HuggingFace(_) => None,
        }
    }
}

impl fmt::Display for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec().fmt(f)
    }
}

/// How a counter's numbers relate to what the provider bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Basis {
    /// The model's own tokenizer (built-in OpenAI mapping or a configured override).
    Exact,
    /// Another tokenizer's count times `percent / 100`, rounded up: an estimate.
    Scaled {
        /// The scale in percent.
        percent: u32,
    },
}

impl Basis {
    /// Applies the scale to a count (identity for `Exact`).
    pub fn apply(self, tokens: usize) -> usize {
        match self {
            Basis::Exact => tokens,
            Basis::Scaled { percent } => tokens.saturating_mul(percent as usize).div_ceil(100),
        }
    }

    /// Whether counts on this basis are exact.
    pub fn is_exact(self) -> bool {
        self == Basis::Exact
    }
}

/// The tokenizer and counting rules resolved for one model. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenCounter {
    model: String,
    tokenizer: Tokenizer,
    family: ModelFamily,
    basis: Basis,
}

impl TokenCounter {
    /// A counter for `model` with an explicit tokenizer and basis.
    pub fn new(model: impl Into<String>, tokenizer: Tokenizer, basis: Basis) -> Self {
        let model = model.into();
        let family = ModelFamily::of(&model);
        TokenCounter { model, tokenizer, family, basis }
    }

    /// The model name it was resolved for.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model's family.
    pub fn family(&self) -> ModelFamily {
        self.family
    }

    /// Exact, or scaled from another tokenizer.
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// Tokens in `text`.
    pub fn count_text(&self, text: &str) -> Estimate {
        Estimate { tokens: self.basis.apply(self.tokenizer.count(text)), exact: self.basis.is_exact() }
    }

    /// Prompt tokens of a chat request, with a per-part breakdown (see [`crate::chat`]).
    pub fn count_chat(&self, request: &ChatRequest) -> ChatCount {
        chat::count(self, request)
    }
}

/// Resolves model names (and optional configured overrides) to [`TokenCounter`]s,
/// caching loaded `tokenizer.json` files.
///
/// Order: the explicit override; then models configured with
/// [`with_model`](Self::with_model) (longest prefix); then the built-in OpenAI table
/// (longest prefix, exact); then the Anthropic and Gemini estimates
/// (`o200k_base` x 1.2 and x 1.1); then the fallback, if any (an estimate at x 1.0).
#[derive(Debug, Default)]
pub struct TokenizerRegistry {
    models: Vec<(String, TokenizerSpec)>,
    fallback: Option<TokenizerSpec>,
    loaded: Mutex<HashMap<PathBuf, Arc<HfTokenizer>>>,
}

impl TokenizerRegistry {
    /// Built-in rules only, no fallback: unknown models are an error.
    pub fn new() -> Self {
        TokenizerRegistry::default()
    }

    /// Uses `spec` for models whose name starts with `prefix` (longest prefix wins).
    pub fn with_model(mut self, prefix: impl Into<String>, spec: TokenizerSpec) -> Self {
        self.models.push((prefix.into().to_ascii_lowercase(), spec));
        self
    }

    /// Counts models no rule knows with `spec`, as an estimate.
    pub fn with_fallback(mut self, spec: TokenizerSpec) -> Self {
        self.fallback = Some(spec);
        self
    }

    /// The counter for `model`; `tokenizer` is a configured override for it, if any.
    pub fn counter(
        &self,
        model: &str,
        tokenizer: Option<&TokenizerSpec>,
    ) -> Result<TokenCounter, TokenError> {
        let key = model_key(model);
        let configured = tokenizer.or_else(|| {
            longest_prefix(self.models.iter().map(|(prefix, spec)| (prefix.as_str(), spec)), &key)
        });
        if let Some(spec) = configured {
            return Ok(TokenCounter::new(model, self.load(spec)?, Basis::Exact));
        }
        if let Some(encoding) = builtin_encoding(&key) {
            return Ok(TokenCounter::new(model, Tokenizer::Builtin(encoding), Basis::Exact));
        }
        let scaled = |percent| Basis::Scaled { percent };
        match ModelFamily::of(&key) {
            ModelFamily::Anthropic => Ok(TokenCounter::new(
                model,
                Tokenizer::Builtin(Encoding::O200kBase),
                scaled(ANTHROPIC_ESTIMATE_PERCENT),
            )),
            ModelFamily::Gemini => Ok(TokenCounter::new(
                model,
                Tokenizer::Builtin(Encoding::O200kBase),
                scaled(GEMINI_ESTIMATE_PERCENT),
            )),
            ModelFamily::OpenAi | ModelFamily::Other => match &self.fallback {
                Some(spec) => Ok(TokenCounter::new(model, self.load(spec)?, scaled(100))),
                None => Err(TokenError::UnknownModel(model.to_owned())),
            },
        }
    }

    /// The tokenizer `spec` names, loading (once) and caching a `tokenizer.json`.
    pub fn load(&self, spec: &TokenizerSpec) -> Result<Tokenizer, TokenError> {
        match spec {
            TokenizerSpec::Builtin(encoding) => Ok(Tokenizer::Builtin(*encoding)),
            TokenizerSpec::HuggingFace(path) => {
                let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(tokenizer) = loaded.get(path) {
                    return Ok(Tokenizer::HuggingFace(Arc::clone(tokenizer)));
                }
                let tokenizer = Arc::new(HfTokenizer::from_file(path)?);
                loaded.insert(path.clone(), Arc::clone(&tokenizer));
                Ok(Tokenizer::HuggingFace(tokenizer))
            }
        }
    }
}

static DEFAULT: LazyLock<TokenizerRegistry> = LazyLock::new(TokenizerRegistry::new);

/// The process-wide registry with the built-in rules and no fallback.
pub fn default_registry() -> &'static TokenizerRegistry {
    &DEFAULT
}

/// Tokens in `text` for `model`, by the built-in rules.
pub fn count_text(model: &str, text: &str) -> Result<Estimate, TokenError> {
    Ok(default_registry().counter(model, None)?.count_text(text))
}

/// Prompt tokens of `request` for `model`, by the built-in rules.
pub fn count_chat(model: &str, request: &ChatRequest) -> Result<Estimate, TokenError> {
    Ok(default_registry().counter(model, None)?.count_chat(request).estimate())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_picks_the_encoding() {
        let cases = [
            ("gpt-4o", Some(Encoding::O200kBase)),
            ("gpt-4o-mini-2024-07-18", Some(Encoding::O200kBase)),
            ("chatgpt-4o-latest", Some(Encoding::O200kBase)),
            ("gpt-4.1-nano", Some(Encoding::O200kBase)),
            ("gpt-4.5-preview", Some(Encoding::O200kBase)),
            ("gpt-5", Some(Encoding::O200kBase)),
            ("gpt-5-mini-2025-08-07", Some(Encoding::O200kBase)),
            ("o1", Some(Encoding::O200kBase)),
            ("o1-mini", Some(Encoding::O200kBase)),
            ("o3-pro", Some(Encoding::O200kBase)),
            ("o4-mini-high", Some(Encoding::O200kBase)),
            ("gpt-oss-120b", Some(Encoding::O200kBase)),
            ("ft:gpt-4o-mini-2024-07-18:org::abc", Some(Encoding::O200kBase)),
            ("gpt-4", Some(Encoding::Cl100kBase)),
            ("gpt-4-0613", Some(Encoding::Cl100kBase)),
            ("gpt-4-turbo-2024-04-09", Some(Encoding::Cl100kBase)),
            ("gpt-4-32k", Some(Encoding::Cl100kBase)),
            ("gpt-3.5-turbo-0125", Some(Encoding::Cl100kBase)),
            ("gpt-35-turbo", Some(Encoding::Cl100kBase)),
            ("text-embedding-3-small", Some(Encoding::Cl100kBase)),
            ("text-embedding-ada-002", Some(Encoding::Cl100kBase)),
            ("ft:gpt-3.5-turbo-0613:org::x", Some(Encoding::Cl100kBase)),
            ("openai/gpt-4o", Some(Encoding::O200kBase)),
            ("GPT-4o", Some(Encoding::O200kBase)),
            ("claude-3-5-sonnet", None),
            ("llama3", None),
        ];
        for (model, expected) in cases {
            assert_eq!(builtin_encoding(model), expected, "{model}");
        }
    }

    #[test]
    fn families() {
        assert_eq!(ModelFamily::of("gpt-4o"), ModelFamily::OpenAi);
        assert_eq!(ModelFamily::of("claude-sonnet-4-5"), ModelFamily::Anthropic);
        assert_eq!(ModelFamily::of("anthropic.claude-3-haiku-20240307-v1:0"), ModelFamily::Anthropic);
        assert_eq!(ModelFamily::of("models/gemini-2.0-flash"), ModelFamily::Gemini);
        assert_eq!(ModelFamily::of("llama3.1:8b"), ModelFamily::Other);
    }

    #[test]
    fn resolution_order() {
        let registry = TokenizerRegistry::new();
        let counter = registry.counter("gpt-4o", None).unwrap();
        assert_eq!(counter.tokenizer().encoding(), Some(Encoding::O200kBase));
        assert_eq!(counter.basis(), Basis::Exact);

        let counter = registry.counter("claude-3-5-haiku", None).unwrap();
        assert_eq!(counter.basis(), Basis::Scaled { percent: 120 });
        assert_eq!(counter.family(), ModelFamily::Anthropic);
        let counter = registry.counter("gemini-2.5-pro", None).unwrap();
        assert_eq!(counter.basis(), Basis::Scaled { percent: 110 });

        let error = registry.counter("llama3", None).unwrap_err();
        assert!(matches!(error, TokenError::UnknownModel(ref m) if m == "llama3"), "{error}");

        // an explicit override wins, even over the built-in table
        let spec = TokenizerSpec::Builtin(Encoding::Cl100kBase);
        let counter = registry.counter("gpt-4o", Some(&spec)).unwrap();
        assert_eq!(counter.tokenizer().encoding(), Some(Encoding::Cl100kBase));
        assert_eq!(counter.basis(), Basis::Exact);

        let registry = TokenizerRegistry::new()
            .with_model("llama", Encoding::Cl100kBase.into())
            .with_fallback(Encoding::O200kBase.into());
        let counter = registry.counter("llama3", None).unwrap();
        assert_eq!(
            (counter.tokenizer().encoding(), counter.basis()),
            (Some(Encoding::Cl100kBase), Basis::Exact)
        );
        let counter = registry.counter("mistral-7b", None).unwrap();
        assert_eq!(
            (counter.tokenizer().encoding(), counter.basis()),
            (Some(Encoding::O200kBase), Basis::Scaled { percent: 100 })
        );
    }

    #[test]
    fn scaled_counts_round_up() {
        assert_eq!(Basis::Scaled { percent: 120 }.apply(10), 12);
        assert_eq!(Basis::Scaled { percent: 120 }.apply(11), 14);
        assert_eq!(Basis::Scaled { percent: 100 }.apply(11), 11);
        assert_eq!(Basis::Exact.apply(11), 11);
        let estimate = count_text("claude-opus-4", "hello world").unwrap();
        assert_eq!(estimate, Estimate { tokens: 3, exact: false });
        assert_eq!(count_text("gpt-4o", "hello world").unwrap(), Estimate { tokens: 2, exact: true });
    }

    #[test]
    fn counters_are_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<TokenizerRegistry>();
        assert_send_sync::<TokenCounter>();
        let counter = default_registry().counter("gpt-4o", None).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let counter = counter.clone();
                std::thread::spawn(move || counter.count_text(&"hello world ".repeat(i + 1)).tokens)
            })
            .collect();
        let counts: Vec<usize> = threads.into_iter().map(|thread| thread.join().unwrap()).collect();
        assert_eq!(counts, [3, 5, 7, 9]); // "hello", " world" per repeat, and the trailing " "
    }

    #[test]
    fn missing_tokenizer_file_is_a_load_error() {
        let spec: TokenizerSpec = "/nonexistent/tokenizer.json".parse().unwrap();
        let error = TokenizerRegistry::new().counter("local-model", Some(&spec)).unwrap_err();
        assert!(
            error.to_string().starts_with("cannot load tokenizer /nonexistent/tokenizer.json: "),
            "{error}"
        );
    }
}
