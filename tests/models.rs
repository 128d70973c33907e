//! `GET /v1/models`: configured lists, mapping names and the upstreams' own lists, fetched
//! in the background, in the OpenAI or the Anthropic format.

use std::time::Duration;

use http::Method;
use loom_e2e::{TestGateway, TestResponse, openai_config, read_whole};
use loom_test_support::{MockUpstream, Reply, anthropic_fixtures, fixtures, gemini_fixtures};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const ANTHROPIC_CLIENT: [(&str, &str); 2] =
    [("anthropic-version", "2023-06-01"), ("x-api-key", "client-key")];

async fn get_models(gateway: &TestGateway, headers: &[(&str, &str)]) -> TestResponse {
    read_whole(gateway.send(Method::GET, &gateway.url("/v1/models"), headers, "").await).await
}

/// The `/v1/models` body once it equals `expected`, or the last one seen after a while:
/// lists are fetched in the background, so the first answers may come before them.
async fn models_once(gateway: &TestGateway, headers: &[(&str, &str)], expected: &Value) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        let response = get_models(gateway, headers).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("content-type").as_deref(), Some("application/json"));
        last = response.json();
        if &last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last
}

fn openai_model(id: &str, created: u64, owned_by: &str) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": owned_by})
}

fn openai_list(models: &[Value]) -> Value {
    json!({"object": "list", "data": models})
}

#[tokio::test]
async fn the_minimal_config_lists_the_upstream_models() {
    let mock = MockUpstream::start().await;
    mock.set_models(&["gpt-4o-mini", "gpt-4o"]);
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let expected = openai_list(&[
        openai_model("gpt-4o", fixtures::CREATED, "openai"),
        openai_model("gpt-4o-mini", fixtures::CREATED, "openai"),
    ]);
    assert_eq!(models_once(&gateway, &[], &expected).await, expected);
    let listed = mock.model_list_requests();
    assert_eq!(listed[0].path, "/v1/models");
    assert_eq!(listed[0].query, None);
    assert_eq!(listed[0].header("authorization").as_deref(), Some("Bearer sk-test-key-0123456789"));
    assert_eq!(listed[0].header("content-type"), None);
    // The answers cost the upstream nothing more.
    let fetched = mock.model_list_requests().len();
    get_models(&gateway, &[]).await;
    assert_eq!(mock.model_list_requests().len(), fetched);
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_list_and_a_later_one_replaces_it() {
    let mock = MockUpstream::start().await;
    mock.set_models(&["a", "b"]);
    let yaml = openai_config(&mock.base_url(), "", "  models_refresh: 1s\n");
    let gateway = TestGateway::start(&yaml).await;
    let first = openai_list(&[
        openai_model("a", fixtures::CREATED, "openai"),
        openai_model("b", fixtures::CREATED, "openai"),
    ]);
    assert_eq!(models_once(&gateway, &[], &first).await, first);
    let failure = json!({"error": {"message": "model list unavailable", "type": "server_error"}});
    mock.push_models_reply(Reply::json_status(500, failure.clone()));
    mock.push_models_reply(Reply::json_status(500, failure));
    // The refreshes run one after another: once the third has been answered, the
    // failed second one has been handled.
    assert!(mock.wait_for_model_list_requests(3, WAIT).await);
    assert_eq!(get_models(&gateway, &[]).await.json(), first);
    mock.set_models(&["a", "b", "c"]);
    let refreshed = openai_list(&[
        openai_model("a", fixtures::CREATED, "openai"),
        openai_model("b", fixtures::CREATED, "openai"),
        openai_model("c", fixtures::CREATED, "openai"),
    ]);
    assert_eq!(models_once(&gateway, &[], &refreshed).await, refreshed);
}

#[tokio::test]
async fn mapping_names_configured_lists_and_deployments_are_listed_once() {
    let configured = MockUpstream::start().await;
    let listing = MockUpstream::start().await;
    listing.set_models(&["shared-model", "gpt-4o-mini", "listed-only"]);
    let yaml = format!(
        "ai_gateway:\n  providers:\n\
         \x20   - name: openai\n      type: openai\n      api_key: sk-test-key-0123456789\n      base_url: {}\n      models: [gpt-4o, shared-model]\n\
         \x20   - name: azure\n      type: azure\n      api_key: azure-key-123\n      base_url: http://{}\n      api_version: \"2024-10-21\"\n      deployments:\n        azure-model: prod-deployment\n\
         \x20   - name: listing\n      type: openai\n      api_key: sk-other-key-0123456789\n      base_url: {}\n\
         \x20 model_mapping:\n    fast:\n      openai: gpt-4o\n    gpt-4o-mini:\n      listing: gpt-4o-mini\n",
        configured.base_url(),
        configured.addr(),
        listing.base_url()
    );
    let gateway = TestGateway::start(&yaml).await;
    let expected = openai_list(&[
        openai_model("azure-model", 0, "azure"),
        openai_model("fast", 0, "loom"),
        openai_model("gpt-4o", 0, "openai"),
        openai_model("gpt-4o-mini", 0, "loom"),
        openai_model("listed-only", fixtures::CREATED, "listing"),
        openai_model("shared-model", 0, "openai"),
    ]);
    assert_eq!(models_once(&gateway, &[], &expected).await, expected);
    // Providers with a `models:` list and Azure (its deployments) are not asked.
    assert!(configured.model_list_requests().is_empty());
    assert_eq!(
        listing.model_list_requests()[0].header("authorization").as_deref(),
        Some("Bearer sk-other-key-0123456789")
    );
}

#[tokio::test]
async fn an_anthropic_upstream_is_listed_page_by_page_and_anthropic_clients_get_its_format() {
    let mock = MockUpstream::start().await;
    mock.set_models(&["claude-b", "claude-a", "claude-c"]);
    mock.set_models_page_size(2);
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: claude\n      type: anthropic\n      api_key: sk-ant-test-0123456789\n      base_url: http://{}\n",
        mock.addr()
    );
    let gateway = TestGateway::start(&yaml).await;
    let model = |id: &str| {
        json!({
            "type": "model",
            "id": id,
            "display_name": anthropic_fixtures::model_display_name(id),
            "created_at": anthropic_fixtures::MODEL_CREATED_AT
        })
    };
    let expected = json!({
        "data": [model("claude-a"), model("claude-b"), model("claude-c")],
        "has_more": false,
        "first_id": "claude-a",
        "last_id": "claude-c"
    });
    assert_eq!(models_once(&gateway, &ANTHROPIC_CLIENT, &expected).await, expected);
    // `x-api-key` alone marks an Anthropic client too.
    assert_eq!(get_models(&gateway, &[("x-api-key", "client-key")]).await.json(), expected);
    // 2025-02-19T00:00:00Z.
    let created = 1_739_923_200;
    assert_eq!(
        get_models(&gateway, &[]).await.json(),
        openai_list(&[
            openai_model("claude-a", created, "claude"),
            openai_model("claude-b", created, "claude"),
            openai_model("claude-c", created, "claude"),
        ])
    );
    let listed = mock.model_list_requests();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].path, "/v1/models");
    assert_eq!(listed[0].query.as_deref(), Some("limit=1000"));
    assert_eq!(listed[1].query.as_deref(), Some("limit=1000&after_id=claude-a"));
    for request in &listed {
        assert_eq!(request.header("x-api-key").as_deref(), Some("sk-ant-test-0123456789"));
        assert_eq!(request.header("anthropic-version").as_deref(), Some("2023-06-01"));
    }
}

#[tokio::test]
async fn a_gemini_list_is_followed_through_its_page_token() {
    let mock = MockUpstream::start().await;
    mock.set_models(&["gemini-2.5-pro", "gemini-2.5-flash", "gemini-embedding-001"]);
    mock.set_models_page_size(2);
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: gemini\n      type: gemini\n      api_key: AIzaTestKey0123456789\n      base_url: http://{}\n",
        mock.addr()
    );
    let gateway = TestGateway::start(&yaml).await;
    let expected = openai_list(&[
        openai_model("gemini-2.5-flash", 0, "gemini"),
        openai_model("gemini-2.5-pro", 0, "gemini"),
        openai_model("gemini-embedding-001", 0, "gemini"),
    ]);
    assert_eq!(models_once(&gateway, &[], &expected).await, expected);
    let anthropic = get_models(&gateway, &ANTHROPIC_CLIENT).await.json();
    assert_eq!(anthropic["data"][0]["display_name"], gemini_fixtures::model_display_name("gemini-2.5-flash"));
    let listed = mock.model_list_requests();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].path, "/v1beta/models");
    assert_eq!(listed[0].query.as_deref(), Some("pageSize=1000"));
    assert_eq!(listed[1].query.as_deref(), Some("pageSize=1000&pageToken=2"));
    // The key travels in a header, never in a URL that may be logged.
    assert_eq!(listed[0].header("x-goog-api-key").as_deref(), Some("AIzaTestKey0123456789"));
}
