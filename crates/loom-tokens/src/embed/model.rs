//! The sentence embedder itself: `tokenizer.json` + BERT weights (candle, CPU, f32),
//! mean pooling over the tokens, L2 normalisation: sentence-transformers' recipe for
//! all-MiniLM-L6-v2.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use loom_core::file::{MAX_CONFIG_BYTES, MAX_TOKENIZER_BYTES, read_config_file};
use serde::Deserialize;

use super::error::EmbedError;
use super::vector::Embedding;

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, `[CLS]` and `[SEP]` included;
/// used when the directory has no `sentence_bert_config.json`.
pub const DEFAULT_MAX_SEQUENCE_TOKENS: usize = 256;

/// Size limit of `model.safetensors`: 1 GiB (all-MiniLM-L6-v2's is 87 MiB).
pub const MAX_WEIGHTS_BYTES: u64 = 1024 * 1024 * 1024;

/// Longest input considered, in bytes: longer text is cut at a character boundary
/// before tokenizing (a window rarely spans more than 2 KiB; this bounds tokenizing time).
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Bytes of input tokenized per window needed: a window is at most 256 word pieces,
/// and real text has fewer than 64 bytes per word piece, so cutting a long input here
/// before tokenizing leaves the kept word pieces unchanged and saves the rest's cost.
const BYTES_PER_WORD_PIECE_BOUND: usize = 64;

/// `[CLS]` and `[SEP]`, which every window carries around its word pieces.
const SPECIAL_TOKENS: usize = 2;

/// A loaded sentence-embedding model (BERT family, e.g. all-MiniLM-L6-v2). Cheap to share
/// behind an `Arc`; [`Embedder::embed`] takes `&self`.
pub struct Embedder {
    dir: PathBuf,
    model: BertModel,
    tokenizer: tokenizers::Tokenizer,
    cls: u32,
    sep: u32,
    dims: usize,
    max_sequence_tokens: usize,
}

/// The fields of `sentence_bert_config.json` used here.
#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

/// The fields of `1_Pooling/config.json` checked here.
#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

impl Embedder {
    /// Loads a model directory: `config.json`, `model.safetensors`, `tokenizer.json`, and
    /// when present `sentence_bert_config.json` (maximum sequence length) and
    /// `1_Pooling/config.json` (must say mean pooling). Never downloads anything.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        let config_path = dir.join("config.json");
        let config: Config = parse_json(&config_path)?;
        let max_sequence_tokens = max_sequence_tokens(dir, &config)?;
        check_pooling(dir)?;
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"))?;
        let special = |token: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| EmbedError::Malformed {
                file: dir.join("tokenizer.json"),
                message: format!("no {token} token in the vocabulary"),
            })
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        let model = load_model(&dir.join("model.safetensors"), &config)?;
        Ok(Embedder {
            dir: dir.to_owned(),
            model,
            tokenizer,
            cls,
            sep,
            dims: config.hidden_size,
            max_sequence_tokens,
        })
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Length of the vectors it produces (384 for all-MiniLM-L6-v2).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Word pieces one window holds: the maximum sequence length less `[CLS]` and `[SEP]`
    /// (254 for all-MiniLM-L6-v2).
    pub fn window_word_pieces(&self) -> usize {
        self.max_sequence_tokens - SPECIAL_TOKENS
    }

    /// Number of word pieces in `text` (without `[CLS]`/`[SEP]`), counting at most the
    /// first [`MAX_INPUT_BYTES`] bytes.
    pub fn token_count(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(self.word_pieces(cut(text, MAX_INPUT_BYTES))?.len())
    }

    /// The embedding of `text`, truncated to the model's maximum sequence length as
    /// sentence-transformers does (the first 254 word pieces between `[CLS]` and `[SEP]`).
    /// Empty text embeds `[CLS][SEP]`: a valid vector like any other.
    pub fn embed(&self, text: &str) -> Result<Embedding, EmbedError> {
        let window = self.window_word_pieces();
        let ids = self.word_pieces(cut(text, window * BYTES_PER_WORD_PIECE_BOUND))?;
        self.embed_word_pieces(&ids[..ids.len().min(window)])
    }

    /// Embeddings of consecutive windows of `text` of at most [`Self::window_word_pieces`]
    /// word pieces each, at most `max_windows` of them (0 counts as 1). Text that needs more
    /// windows is sampled: the first and last windows and ones evenly spaced in between.
    /// Always returns at least one embedding: text that fits one window gives one (empty
    /// text gives [`Embedder::embed`]'s of ""). Considers the first [`MAX_INPUT_BYTES`] bytes.
    pub fn embed_windows(&self, text: &str, max_windows: usize) -> Result<Vec<Embedding>, EmbedError> {
        self.embed_windows_unless(text, max_windows, &|| false)
    }

    /// [`Embedder::embed_windows`], giving up with [`EmbedError::Abandoned`] before a window
    /// when `abandoned()` says nobody waits for the answer any more.
    pub(crate) fn embed_windows_unless(
        &self,
        text: &str,
        max_windows: usize,
        abandoned: &dyn Fn() -> bool,
    ) -> Result<Vec<Embedding>, EmbedError> {
        let ids = self.word_pieces(cut(text, MAX_INPUT_BYTES))?;
        let chunks: Vec<&[u32]> = ids.chunks(self.window_word_pieces()).collect();
        if chunks.is_empty() {
            return Ok(vec![self.embed_word_pieces(&[])?]);
        }
        sample_evenly(chunks.len(), max_windows.max(1))
            .map(
                |index| {
                    if abandoned() {
                        Err(EmbedError::Abandoned)
                    } else {
                        self.embed_word_pieces(chunks[index])
                    }
                },
            )
            .collect()
    }

    /// Word-piece ids of `text`, without special tokens.
    fn word_pieces(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding =
            self.tokenizer.encode_fast(text, false).map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// BERT over `[CLS] ids [SEP]`, mean-pooled over all its tokens and L2-normalised.
    fn embed_word_pieces(&self, ids: &[u32]) -> Result<Embedding, EmbedError> {
        let mut sequence = Vec::with_capacity(ids.len() + SPECIAL_TOKENS);
        sequence.push(self.cls);
        sequence.extend_from_slice(ids);
        sequence.push(self.sep);
        let vector = self.forward(&sequence).map_err(|e| EmbedError::Model(e.to_string()))?;
        Ok(Embedding::normalized(vector))
    }

    /// The mean of the last hidden states over the sequence. One unpadded sequence: every
    /// attention-mask entry is 1, so the masked mean is the plain mean.
    fn forward(&self, sequence: &[u32]) -> candle_core::Result<Vec<f32>> {
        let device = &self.model.device;
        let input_ids = Tensor::new(sequence, device)?.unsqueeze(0)?;
        let token_type_ids = input_ids.zeros_like()?;
        let attention_mask = input_ids.ones_like()?;
        let hidden = self.model.forward(&input_ids, &token_type_ids, Some(&attention_mask))?;
        hidden.squeeze(0)?.mean(0)?.to_vec1::<f32>()
    }
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("dims", &self.dims)
            .field("max_sequence_tokens", &self.max_sequence_tokens)
            .finish_non_exhaustive()
    }
}

/// `count` indices out of `0..len`, in order: all of them if they fit, else the first,
/// the last and evenly spaced ones between.
fn sample_evenly(len: usize, count: usize) -> impl Iterator<Item = usize> {
    let count = count.min(len);
    (0..count).map(move |i| if count == 1 { 0 } else { i * (len - 1) / (count - 1) })
}

/// `text` cut to at most `max_bytes` bytes, at a character boundary.
fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn read(path: &Path, limit: u64) -> Result<Vec<u8>, EmbedError> {
    read_config_file(path, limit)
        .map_err(|e| EmbedError::Read { file: path.to_owned(), message: e.to_string() })
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, EmbedError> {
    let bytes = read(path, MAX_CONFIG_BYTES)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EmbedError::Malformed { file: path.to_owned(), message: e.to_string() })
}

/// sentence-transformers' maximum sequence length, bounded by the model's position table.
fn max_sequence_tokens(dir: &Path, config: &Config) -> Result<usize, EmbedError> {
    let path = dir.join("sentence_bert_config.json");
    let configured = if path.exists() {
        parse_json::<SentenceBertConfig>(&path)?.max_seq_length
    } else {
        DEFAULT_MAX_SEQUENCE_TOKENS
    };
    let tokens = configured.min(config.max_position_embeddings);
    if tokens <= SPECIAL_TOKENS {
        return Err(EmbedError::Malformed {
            file: path,
            message: format!("maximum sequence length {tokens} leaves no room for text"),
        });
    }
    Ok(tokens)
}

/// Refuses a directory whose sentence-transformers pooling is not the mean this embedder does.
fn check_pooling(dir: &Path) -> Result<(), EmbedError> {
    let path = dir.join("1_Pooling").join("config.json");
    if path.exists() && !parse_json::<PoolingConfig>(&path)?.pooling_mode_mean_tokens {
        return Err(EmbedError::Malformed {
            file: path,
            message: "only mean pooling (pooling_mode_mean_tokens) is supported".into(),
        });
    }
    Ok(())
}

/// The tokenizer with the file's padding (128 for all-MiniLM-L6-v2) and truncation off:
/// windows are cut here, and padding would change the mean.
fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer, EmbedError> {
    let malformed = |message: String| EmbedError::Malformed { file: path.to_owned(), message };
    let bytes = read(path, MAX_TOKENIZER_BYTES)?;
    let mut tokenizer = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| malformed(e.to_string()))?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(|e| malformed(e.to_string()))?;
    Ok(tokenizer)
}

/// The BERT weights, read into memory (no mmap: no `unsafe`, and the file may change later).
fn load_model(path: &Path, config: &Config) -> Result<BertModel, EmbedError> {
    let bytes = read(path, MAX_WEIGHTS_BYTES)?;
    let malformed =
        |e: candle_core::Error| EmbedError::Malformed { file: path.to_owned(), message: e.to_string() };
    let weights = VarBuilder::from_slice_safetensors(&bytes, DType::F32, &Device::Cpu).map_err(malformed)?;
    BertModel::load(weights, config).map_err(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_all_windows_that_fit() {
        assert_eq!(sample_evenly(3, 8).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn sampling_keeps_first_and_last_and_spreads_the_rest() {
        assert_eq!(sample_evenly(10, 4).collect::<Vec<_>>(), [0, 3, 6, 9]);
        assert_eq!(sample_evenly(10, 2).collect::<Vec<_>>(), [0, 9]);
        assert_eq!(sample_evenly(10, 1).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn cut_stops_at_a_character_boundary() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("héllo", 100), "héllo");
    }
}
