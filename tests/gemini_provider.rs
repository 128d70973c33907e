//! Clients reaching `gemini` (AI Studio) and `vertex` providers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use loom_e2e::{TestGateway, sse_json};
use loom_test_support::{MockUpstream, Reply, gemini_fixtures as fixtures};
use serde_json::{Value, json};

fn gemini_config(mock: &MockUpstream) -> String {
    format!(
        "ai_gateway:\n  providers:\n    - name: gemini\n      type: gemini\n      api_key: AIzaTestKey0123456789\n      base_url: http://{}\n",
        mock.addr()
    )
}

#[tokio::test]
async fn whole_chat_translates_exactly() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    mock.push_reply(Reply::json(fixtures::text_response("gemini-2.5-flash-001", "Bonjour")));
    let body = json!({
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
            ]}
        ],
        "temperature": 0.1,
        "max_tokens": 100,
        "stop": ["END"],
        "seed": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
    });
    let response = gateway.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let upstream = &mock.requests()[0];
    assert_eq!(upstream.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(upstream.header("x-goog-api-key").as_deref(), Some("AIzaTestKey0123456789"));
    assert_eq!(
        upstream.json(),
        json!({
            "contents": [{"role": "user", "parts": [
                {"text": "Describe"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
            ]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"temperature": 0.1, "maxOutputTokens": 100, "stopSequences": ["END"], "seed": 3,
                "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}
        })
    );
    let answer = response.json();
    assert_eq!(answer["id"], "resp-gemini-1");
    assert_eq!(answer["model"], "gemini-2.5-flash-001");
    assert_eq!(
        answer["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Bonjour"}, "finish_reason": "stop"}])
    );
    assert_eq!(answer["usage"], json!({"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}));
}

#[tokio::test]
async fn tool_calls_round_trip_with_names_and_signatures() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    mock.push_reply(Reply::json(fixtures::function_call_response("gemini-2.5-pro")));
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let first = gateway
        .post(
            "/v1/chat/completions",
            &json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "reasoning_effort": "medium"})
            .to_string(),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let upstream = mock.requests()[0].json();
    assert_eq!(
        upstream["tools"],
        json!([{"functionDeclarations": [{"name": "get_weather",
            "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}}}]}])
    );
    assert_eq!(
        upstream["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    assert_eq!(
        upstream["generationConfig"],
        json!({"thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": true}})
    );
    let answer = first.json();
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let message = answer["choices"][0]["message"].clone();
    assert_eq!(
        message["tool_calls"],
        json!([{"id": "call_loom_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
    );
    assert_eq!(
        message["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "", "signature": "Cs4BAdHtim9sig"}])
    );
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 30, "completion_tokens": 28, "total_tokens": 58,
            "prompt_tokens_details": {"cached_tokens": 10}, "completion_tokens_details": {"reasoning_tokens": 20}})
    );

    mock.push_reply(Reply::json(fixtures::text_response("gemini-2.5-pro", "Sunny.")));
    let second = json!({"model": "gemini-2.5-pro", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        message,
        {"role": "tool", "tool_call_id": "call_loom_0", "content": "{\"sky\": \"clear\"}"}
    ]});
    let response = gateway.post("/v1/chat/completions", &second.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        mock.requests()[1].json()["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "Cs4BAdHtim9sig"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}}]}
        ])
    );
}

#[tokio::test]
async fn streamed_text_and_usage() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    mock.push_reply(Reply::sse(fixtures::text_stream("gemini-2.5-flash", &["Bon", "jour"])));
    let response = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let upstream = &mock.requests()[0];
    assert_eq!(upstream.path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    assert_eq!(upstream.query.as_deref(), Some("alt=sse"));
    let got = sse_json(&response.text());
    let choices: Vec<Value> = got.iter().map(|chunk| chunk["choices"].clone()).collect();
    assert_eq!(
        choices,
        vec![
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            json!([{"index": 0, "delta": {"content": "Bon"}, "finish_reason": null}]),
            json!([{"index": 0, "delta": {"content": "jour"}, "finish_reason": null}]),
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            json!([]),
        ]
    );
    assert_eq!(got[4]["usage"], json!({"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}));
    assert!(response.text().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn embeddings_and_errors() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    mock.push_reply(Reply::json(fixtures::batch_embeddings(2)));
    let response = gateway
        .post("/v1/embeddings", r#"{"model":"gemini-embedding-001","input":["a","b"],"dimensions":3}"#)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.requests()[0].path, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert_eq!(
        mock.requests()[0].json(),
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3}
        ]})
    );
    assert_eq!(
        response.json(),
        json!({"object": "list", "model": "gemini-embedding-001", "data": [
            {"object": "embedding", "index": 0, "embedding": [0.0, -0.5, 0.125]},
            {"object": "embedding", "index": 1, "embedding": [0.25, -0.5, 0.125]}
        ]})
    );

    mock.push_reply(Reply::json_status(429, fixtures::error(429, "RESOURCE_EXHAUSTED", "Quota exceeded")));
    let limited = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
    assert_eq!(limited.json()["error"]["message"], "provider `gemini` returned HTTP 429: Quota exceeded");
}

#[tokio::test]
async fn vertex_mints_a_token_from_a_service_account_and_reuses_it() {
    let mock = MockUpstream::start().await;
    let key_file = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/vertex-test-service-account.json");
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: vertex\n      type: vertex\n      base_url: http://{addr}\n      vertex:\n        project: loom-test\n        location: europe-west4\n        credentials_file: {key_file}\n        token_url: http://{addr}/token\n",
        addr = mock.addr()
    );
    let gateway = TestGateway::start(&yaml).await;
    mock.push_reply(Reply::json(
        json!({"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"}),
    ));
    mock.push_reply(Reply::json(fixtures::text_response("gemini-2.5-pro", "One")));
    mock.push_reply(Reply::json(fixtures::text_response("gemini-2.5-pro", "Two")));
    let hello = r#"{"model":"gemini-2.5-pro","messages":[{"role":"user","content":"Hi"}]}"#;
    assert_eq!(
        gateway.post("/v1/chat/completions", hello).await.json()["choices"][0]["message"]["content"],
        "One"
    );
    assert_eq!(
        gateway.post("/v1/chat/completions", hello).await.json()["choices"][0]["message"]["content"],
        "Two"
    );

    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "one token exchange, then two calls with the cached token");
    let token_request = &requests[0];
    assert_eq!(token_request.path, "/token");
    assert_eq!(token_request.header("content-type").as_deref(), Some("application/x-www-form-urlencoded"));
    let form = token_request.body_text();
    let assertion = form
        .strip_prefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=")
        .expect("JWT bearer grant");
    let pieces: Vec<&str> = assertion.split('.').collect();
    assert_eq!(pieces.len(), 3);
    let public_key = include_bytes!("fixtures/vertex-test-key.pub.der");
    let verifier =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key);
    let signature = URL_SAFE_NO_PAD.decode(pieces[2]).unwrap();
    verifier
        .verify(format!("{}.{}", pieces[0], pieces[1]).as_bytes(), &signature)
        .expect("RS256 signature verifies");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(pieces[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(pieces[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], "loom-test@loom-test.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/cloud-platform");
    assert_eq!(claims["aud"], format!("http://{}/token", mock.addr()));
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);

    for call in &requests[1..] {
        assert_eq!(
            call.path,
            "/v1/projects/loom-test/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(call.header("authorization").as_deref(), Some("Bearer ya29.test-token"));
        assert_eq!(call.header("x-goog-api-key"), None);
    }
}

#[tokio::test]
async fn anthropic_clients_reach_gemini() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    mock.push_reply(Reply::json(fixtures::function_call_response("gemini-2.5-pro")));
    let response = gateway
        .post(
            "/v1/messages",
            r#"{"model":"gemini-2.5-pro","max_tokens":50,"messages":[{"role":"user","content":"Weather?"}],
               "tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = response.json();
    assert_eq!(answer["stop_reason"], "tool_use");
    assert_eq!(
        answer["content"],
        json!([
            {"type": "thinking", "thinking": "", "signature": "Cs4BAdHtim9sig"},
            {"type": "tool_use", "id": "call_loom_0", "name": "get_weather", "input": {"city": "Paris"}}
        ])
    );
    assert_eq!(
        answer["usage"],
        json!({"input_tokens": 20, "output_tokens": 28, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10})
    );
}
