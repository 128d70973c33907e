//! Chat counting against OpenAI's published prompt_tokens, tools, images.

use loom_core::ChatRequest;
use loom_tokens::image::data_url_size;
use loom_tokens::{Estimate, TokenizerRegistry, count_chat};
use serde_json::{Value, json};

fn request(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

/// The example conversation of OpenAI's cookbook "How to count tokens with tiktoken".
fn cookbook_messages() -> Value {
    json!([
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
        {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
        {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}
    ])
}

#[test]
fn cookbook_conversation_matches_the_api_prompt_tokens() {
    // "N prompt tokens counted by the OpenAI API", as published in the cookbook.
    let published = [
        ("gpt-3.5-turbo", 129),
        ("gpt-3.5-turbo-0125", 129),
        ("gpt-4-0613", 129),
        ("gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
        ("gpt-4o-2024-08-06", 124),
    ];
    for (model, tokens) in published {
        let body = request(json!({"model": model, "messages": cookbook_messages()}));
        assert_eq!(count_chat(model, &body).unwrap(), Estimate { tokens, exact: true }, "{model}");
    }
}

#[test]
fn cookbook_tools_example_matches_the_api_prompt_tokens() {
    let tools = json!([{
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {"type": "string", "description": "The unit of temperature to return", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["location"]
            }
        }
    }]);
    let messages = json!([
        {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
        {"role": "user", "content": "What's the weather like in San Francisco?"}
    ]);
    for (model, tokens) in [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101)] {
        let body = request(json!({"model": model, "messages": messages, "tools": tools}));
        // the tool rule is an approximation in general, so the total is not "exact"
        assert_eq!(count_chat(model, &body).unwrap(), Estimate { tokens, exact: false }, "{model}");
    }
}

#[test]
fn breakdown_adds_up() {
    let registry = TokenizerRegistry::new();
    let body = request(json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these images?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}}
            ]},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cats\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "two cats"}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Search.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    }));
    let count = registry.counter("gpt-4o", None).unwrap().count_chat(&body);
    let b = &count.breakdown;
    // system: 3 + "system"(1) + "Be brief."(3)
    assert_eq!(b.per_message[0], 3 + 1 + 3);
    // user: 3 + "user"(1) + "What is in these images?"(6); images are separate
    assert_eq!(b.per_message[1], 3 + 1 + 6);
    // assistant: 3 + "assistant"(1) + call: 3 + "lookup"(1) + {"q":"cats"}(5)
    assert_eq!(b.per_message[2], 3 + 1 + 3 + 1 + 5);
    // tool: 3 + "tool"(1) + "two cats"(2)
    assert_eq!(b.per_message[3], 3 + 1 + 2);
    assert_eq!(b.messages, b.per_message.iter().sum::<usize>());
    assert_eq!((b.images, b.image_count), (85 + 765, 2));
    // 7 + "lookup:Search"(3) + 3 + 3 + "q:string:"(3) + 12
    assert_eq!(b.tools, 7 + 3 + 3 + 3 + 3 + 12);
    assert_eq!(b.priming, 3);
    assert_eq!(count.tokens, b.messages + b.tools + b.images + b.priming);
    assert!(!count.exact);
}

fn fixtures() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["images"].as_array().unwrap().clone()
}

#[test]
fn image_sizes_come_from_base64_headers() {
    let images = fixtures();
    assert_eq!(images.len(), 8);
    for image in images {
        let url =
            format!("data:{};base64,{}", image["mime"].as_str().unwrap(), image["base64"].as_str().unwrap());
        let want = (image["width"].as_u64().unwrap() as u32, image["height"].as_u64().unwrap() as u32);
        assert_eq!(data_url_size(&url), Some(want), "{}", image["name"]);
        // a truncated payload has no size (except formats whose header fits)
        let cut = format!("data:image/png;base64,{}", &image["base64"].as_str().unwrap()[..8]);
        assert_eq!(data_url_size(&cut), None, "{} truncated", image["name"]);
    }
}

#[test]
fn image_tokens_in_a_request() {
    let png = fixtures().into_iter().find(|image| image["name"] == "png_3x2").unwrap();
    let png_url = format!("data:image/png;base64,{}", png["base64"].as_str().unwrap());
    // a PNG header claiming 2048x4096 (only the header is read)
    let mut big = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    big.extend_from_slice(&2048u32.to_be_bytes());
    big.extend_from_slice(&4096u32.to_be_bytes());
    big.extend_from_slice(&[8, 2, 0, 0, 0]);
    use base64::Engine;
    let big_url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&big));
    let cases = [
        (png_url.as_str(), "high", 255),
        (png_url.as_str(), "low", 85),
        (big_url.as_str(), "high", 1105),
        (big_url.as_str(), "auto", 1105),
        (big_url.as_str(), "low", 85),
        ("https://example.com/unknown.jpg", "high", 765),
    ];
    let registry = TokenizerRegistry::new();
    let counter = registry.counter("gpt-4o", None).unwrap();
    for (url, detail, tokens) in cases {
        let body = request(json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url, "detail": detail}}
        ]}]}));
        assert_eq!(
            counter.count_chat(&body).breakdown.images,
            tokens,
            "{detail} {}",
            &url[..30.min(url.len())]
        );
    }
    // Anthropic: width * height / 750 (capped at 1600); Gemini: 258 per 768 tile after
    // scaling to fit 3072x3072 (2048x4096 -> 1536x3072: 2x4 tiles)
    let body = request(json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": big_url}}
    ]}]}));
    let claude = registry.counter("claude-sonnet-4-5", None).unwrap().count_chat(&body);
    assert_eq!(claude.breakdown.images, 1600);
    let gemini = registry.counter("gemini-2.5-flash", None).unwrap().count_chat(&body);
    assert_eq!(gemini.breakdown.images, 258 * 2 * 4);
}

#[test]
fn anthropic_and_gemini_are_scaled_estimates() {
    let body = request(json!({"model": "x", "messages": cookbook_messages()}));
    let openai = count_chat("gpt-4o", &body).unwrap();
    let claude = count_chat("claude-3-5-sonnet-20241022", &body).unwrap();
    let gemini = count_chat("gemini-2.0-flash", &body).unwrap();
    assert!(!claude.exact && !gemini.exact);
    // per part, rounded up: never below the plain scaled total
    assert!(claude.tokens >= openai.tokens * 120 / 100, "{claude:?}");
    assert!(gemini.tokens >= openai.tokens * 110 / 100, "{gemini:?}");
    assert!(claude.tokens <= openai.tokens * 120 / 100 + 7, "{claude:?}");
}
