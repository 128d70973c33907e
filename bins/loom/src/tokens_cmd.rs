//! `loom tokens`: count the tokens of a text file, stdin, or a chat request. Needs no config.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use loom_core::ChatRequest;
use loom_tokens::{TokenCounter, TokenError, TokenizerRegistry, TokenizerSpec};
use serde_json::{Value, json};

/// Arguments of `loom tokens`.
#[derive(clap::Args, Debug)]
pub struct TokensArgs {
    /// Model whose tokenizer counts (gpt-4o, gpt-4, claude-..., gemini-...); with --chat,
    /// defaults to the request's `model`.
    #[arg(long, short, required_unless_present = "chat")]
    model: Option<String>,
    /// Tokenizer to use instead of the model's: o200k_base, cl100k_base or a tokenizer.json path.
    #[arg(long)]
    tokenizer: Option<String>,
    /// Read a chat-completions JSON body and count its prompt as the gateway does.
    #[arg(long)]
    chat: bool,
    /// Print details as JSON (model, encoding, tokens, exact; with --chat a breakdown).
    #[arg(long)]
    json: bool,
    /// Input file; standard input when absent or `-`.
    file: Option<PathBuf>,
}

/// Runs the subcommand, printing the result or an error.
pub fn run(args: &TokensArgs) -> ExitCode {
    match execute(args, std::io::stdin().lock()) {
        Ok(output) => crate::print_output(&output),
        Err(message) => {
            eprintln!("loom tokens: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: &TokensArgs, stdin: impl Read) -> Result<String, String> {
    let input = read_input(args.file.as_deref(), stdin)?;
    let registry = TokenizerRegistry::new();
    let tokenizer = args
        .tokenizer
        .as_deref()
        .map(|spec| spec.parse::<TokenizerSpec>().map_err(|e| e.to_string()))
        .transpose()?;
    let counter = |model: &str| {
        registry.counter(model, tokenizer.as_ref()).map_err(|error| match error {
            TokenError::UnknownModel(_) => format!("{error} with --tokenizer"),
            other => other.to_string(),
        })
    };

    if args.chat {
        let request = parse_chat(&input, args.model.as_deref())?;
        let model = args.model.as_deref().unwrap_or(&request.model);
        let counter = counter(model)?;
        let count = counter.count_chat(&request);
        if !args.json {
            return Ok(count.tokens.to_string());
        }
        let mut details = header(&counter, count.tokens, count.exact);
        details["breakdown"] = serde_json::to_value(&count.breakdown).map_err(|e| e.to_string())?;
        pretty(&details)
    } else {
        let model = args.model.as_deref().ok_or("--model is required to count text")?;
        let counter = counter(model)?;
        let estimate = counter.count_text(&input);
        if !args.json {
            return Ok(estimate.tokens.to_string());
        }
        pretty(&header(&counter, estimate.tokens, estimate.exact))
    }
}

/// Parses a chat-completions body; errors name the JSON path of the bad field. With
/// `--model`, the body's own `model` may be absent.
fn parse_chat(input: &str, model: Option<&str>) -> Result<ChatRequest, String> {
    let mut body: Value = serde_json::from_str(input).map_err(|e| format!("invalid JSON: {e}"))?;
    if let (Some(model), Some(object)) = (model, body.as_object_mut()) {
        object.entry("model").or_insert_with(|| Value::String(model.to_owned()));
    }
    serde_path_to_error::deserialize(body).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            format!("invalid chat request: {}", error.inner())
        } else {
            format!("invalid chat request at `{path}`: {}", error.inner())
        }
    })
}

fn header(counter: &TokenCounter, tokens: usize, exact: bool) -> Value {
    json!({
        "model": counter.model(),
        "encoding": counter.tokenizer().to_string(),
        "family": counter.family(),
        "basis": counter.basis(),
        "tokens": tokens,
        "exact": exact,
    })
}

fn pretty(value: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

fn read_input(file: Option<&Path>, mut stdin: impl Read) -> Result<String, String> {
    let mut bytes = Vec::new();
    match file {
        Some(path) if path != Path::new("-") => {
            bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        }
        _ => {
            stdin.read_to_end(&mut bytes).map_err(|e| format!("cannot read standard input: {e}"))?;
        }
    }
    let name = file.map_or_else(|| "standard input".to_owned(), |path| path.display().to_string());
    String::from_utf8(bytes)
        .map_err(|e| format!("{name} is not UTF-8 text (invalid byte at {})", e.utf8_error().valid_up_to()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(model: Option<&str>, chat: bool, json: bool) -> TokensArgs {
        TokensArgs { model: model.map(str::to_owned), tokenizer: None, chat, json, file: None }
    }

    #[test]
    fn counts_stdin_text() {
        let out = execute(&args(Some("gpt-4o"), false, false), "tiktoken is great!".as_bytes()).unwrap();
        assert_eq!(out, "6");
    }

    #[test]
    fn chat_defaults_to_the_request_model() {
        let body = r#"{"model":"gpt-4","messages":[{"role":"user","content":"Hello!"}]}"#;
        let out = execute(&args(None, true, true), body.as_bytes()).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["model"], "gpt-4");
        assert_eq!(value["encoding"], "cl100k_base");
        assert_eq!(value["tokens"], 3 + 1 + 2 + 3);
    }

    #[test]
    fn errors_are_clear() {
        let error = execute(&args(Some("gpt-4o"), false, false), &[0xff, 0xfe][..]).unwrap_err();
        assert_eq!(error, "standard input is not UTF-8 text (invalid byte at 0)");
        let error = execute(&args(None, false, false), "x".as_bytes()).unwrap_err();
        assert_eq!(error, "--model is required to count text");
    }
}
