//! `loom tokens` as a user runs it: files, stdin, chat bodies, errors. No config file.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const LOOM: &str = env!("CARGO_BIN_EXE_loom");

/// Runs `loom tokens ARGS` in an empty directory (no loom.yaml), `LOOM_*` cleared except a
/// `LOOM_CONFIG` that points nowhere, feeding `stdin`.
fn loom_tokens(args: &[&str], stdin: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(LOOM);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LOOM_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .arg("tokens")
        .args(args)
        .current_dir(dir.path())
        .env("LOOM_CONFIG", "/nonexistent/loom.yaml")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `loom tokens` may exit before reading stdin (a usage error, a file argument): the
    // write then fails with a broken pipe, which is no failure of the test.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "loom tokens failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn failure(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&output.stdout));
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A file holding `contents`, removed when the returned guard is dropped.
fn temp_file(suffix: &str, contents: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(contents).unwrap();
    file
}

fn cookbook_request(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
        {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
        {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}
    ]})
}

#[test]
fn counts_a_file() {
    let file = temp_file("birthday.txt", "お誕生日おめでとう".as_bytes());
    let path = file.path().to_str().unwrap();
    assert_eq!(stdout(&loom_tokens(&["--model", "gpt-4o", path], "")), "8\n");
    assert_eq!(stdout(&loom_tokens(&["--model", "gpt-4", path], "")), "9\n");
    assert_eq!(stdout(&loom_tokens(&["-m", "gpt-4", "--tokenizer", "o200k_base", path], "")), "8\n");
}

#[test]
fn counts_stdin() {
    assert_eq!(stdout(&loom_tokens(&["--model", "gpt-4o-mini"], "tiktoken is great!")), "6\n");
    assert_eq!(stdout(&loom_tokens(&["--model", "gpt-4o-mini", "-"], "<|endoftext|>")), "7\n");
    assert_eq!(stdout(&loom_tokens(&["--model", "gpt-4o"], "")), "0\n");
}

#[test]
fn text_json_details() {
    let out = stdout(&loom_tokens(&["--model", "gpt-4o", "--json"], "hello world"));
    let value: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        value,
        json!({"model": "gpt-4o", "encoding": "o200k_base", "family": "openai",
               "basis": {"kind": "exact"}, "tokens": 2, "exact": true})
    );
    let out = stdout(&loom_tokens(&["--model", "claude-sonnet-4-5", "--json"], "hello world"));
    let value: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["basis"], json!({"kind": "scaled", "percent": 120}));
    assert_eq!((value["tokens"].as_u64(), value["exact"].as_bool()), (Some(3), Some(false)));
}

#[test]
fn chat_json_matches_the_published_counts() {
    for (model, per_message, total) in
        [("gpt-4o", [21, 17, 16, 24, 21, 22], 124), ("gpt-4-0613", [22, 17, 16, 25, 23, 23], 129)]
    {
        let body = cookbook_request(model).to_string();
        let out = stdout(&loom_tokens(&["--chat", "--json"], &body));
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["model"], model);
        assert_eq!(value["tokens"], total);
        assert_eq!(value["exact"], true);
        assert_eq!(
            value["breakdown"],
            json!({"messages": total - 3, "per_message": per_message, "tools": 0, "images": 0,
                   "image_count": 0, "priming": 3})
        );
        assert_eq!(stdout(&loom_tokens(&["--chat"], &body)), format!("{total}\n"));
    }
    // --model overrides the body's model
    let body = cookbook_request("gpt-4o").to_string();
    assert_eq!(stdout(&loom_tokens(&["--chat", "--model", "gpt-4"], &body)), "129\n");
}

#[test]
fn chat_with_tools_and_images() {
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
        {"role": "user", "content": [
            {"type": "text", "text": "What's the weather like in San Francisco?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg", "detail": "low"}}
        ]}
    ], "tools": [{"type": "function", "function": {
        "name": "get_current_weather", "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "description": "The unit of temperature to return", "enum": ["celsius", "fahrenheit"]}
        }, "required": ["location"]}}}]});
    let out = stdout(&loom_tokens(&["--chat", "--json"], &body.to_string()));
    let value: Value = serde_json::from_str(&out).unwrap();
    // the cookbook's 101 (gpt-4o) plus a low-detail image (85)
    assert_eq!(value["tokens"], 101 + 85);
    assert_eq!(value["exact"], false);
    assert_eq!(value["breakdown"]["images"], 85);
    assert_eq!(value["breakdown"]["image_count"], 1);
    assert_eq!(value["breakdown"]["priming"], 3);
    let b = &value["breakdown"];
    let sum = ["messages", "tools", "images", "priming"].iter().map(|k| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(value["tokens"].as_u64(), Some(sum));
}

#[test]
fn errors_exit_non_zero_with_a_clear_message() {
    let error = failure(&loom_tokens(&["--model", "my-local-llama"], "hi"));
    assert!(error.contains("no tokenizer known for model `my-local-llama`"), "{error}");
    assert!(error.contains("--tokenizer"), "{error}");

    let error = failure(&loom_tokens(&["--model", "gpt-4o", "/nonexistent/input.txt"], ""));
    assert!(error.starts_with("loom tokens: cannot read /nonexistent/input.txt: "), "{error}");

    let body = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text"}]}]}"#;
    let error = failure(&loom_tokens(&["--chat"], body));
    assert_eq!(
        error,
        "loom tokens: invalid chat request at `messages[0].content[0]`: missing field `text`\n"
    );

    let error = failure(&loom_tokens(&["--chat"], r#"{"model": "gpt-4o", "messages": [{"role": "usr"}]}"#));
    assert!(error.contains("at `messages[0].role`: unknown variant `usr`"), "{error}");

    let error = failure(&loom_tokens(&["--chat"], "{not json"));
    assert!(error.starts_with("loom tokens: invalid JSON: "), "{error}");

    let error = failure(&loom_tokens(&["--chat"], r#"{"messages": []}"#));
    assert_eq!(error, "loom tokens: invalid chat request: missing field `model`\n");

    let error = failure(&loom_tokens(&["--model", "gpt-4o", "--tokenizer", "o200k"], "hi"));
    assert!(error.contains("unknown tokenizer `o200k`"), "{error}");

    let error =
        failure(&loom_tokens(&["--model", "local", "--tokenizer", "/nonexistent/tokenizer.json"], "hi"));
    assert!(error.contains("cannot load tokenizer /nonexistent/tokenizer.json"), "{error}");

    let file = temp_file("binary.bin", &[0x66, 0x6f, 0xff, 0x00]);
    let error = failure(&loom_tokens(&["--model", "gpt-4o", file.path().to_str().unwrap()], ""));
    assert!(error.contains("is not UTF-8 text (invalid byte at 2)"), "{error}");

    // usage errors are clap's: exit 2
    let output = loom_tokens(&[], "hi");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--model <MODEL>"));
}
