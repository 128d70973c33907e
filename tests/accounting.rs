//! Token accounting end to end: usage records in the ledger, metrics, and `/ai/usage`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;
use loom_e2e::{TestGateway, next_frame, openai_config, sse_data};
use loom_test_support::{Gate, MockUpstream, Reply, SseStep, anthropic_fixtures, fixtures, gemini_fixtures};
use rusqlite::Connection;
use serde_json::{Value, json};

/// A ledger file in a fresh temporary directory, removed when the returned guard drops.
fn ledger_path(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir =
        tempfile::Builder::new().prefix(&format!("loom-accounting-{name}-")).tempdir().expect("temp dir");
    let path = dir.path().join("usage.db");
    (dir, path)
}

fn accounting_yaml(ledger: &Path) -> String {
    format!("  token_accounting:\n    ledger_path: {}\n    flush_interval: 50ms\n", ledger.display())
}

/// Every ledger row, as JSON objects, oldest first.
fn rows(ledger: &Path) -> Vec<Value> {
    let connection = Connection::open(ledger).expect("ledger opens");
    let mut statement = connection
        .prepare(
            "SELECT request_id, user, team, provider, model_requested, model_served, input_tokens, output_tokens, \
             cached_tokens, source, cost, status, outcome, streamed, ttfb_ms FROM usage ORDER BY rowid",
        )
        .expect("query");
    statement
        .query_map([], |row| {
            Ok(json!({
                "request_id": row.get::<_, String>(0)?,
                "user": row.get::<_, Option<String>>(1)?,
                "team": row.get::<_, Option<String>>(2)?,
                "provider": row.get::<_, Option<String>>(3)?,
                "model_requested": row.get::<_, String>(4)?,
                "model_served": row.get::<_, Option<String>>(5)?,
                "input_tokens": row.get::<_, i64>(6)?,
                "output_tokens": row.get::<_, i64>(7)?,
                "cached_tokens": row.get::<_, i64>(8)?,
                "source": row.get::<_, String>(9)?,
                "cost": row.get::<_, f64>(10)?,
                "status": row.get::<_, i64>(11)?,
                "outcome": row.get::<_, String>(12)?,
                "streamed": row.get::<_, bool>(13)?,
                "has_ttfb": row.get::<_, Option<i64>>(14)?.is_some(),
            }))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("decode")
}

/// Waits until the ledger has `n` rows (the writer commits every 50 ms).
async fn wait_rows(ledger: &Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let rows = rows(ledger);
        if rows.len() >= n || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn whole_and_streamed_openai_usage_is_recorded_with_identity_and_cost() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("openai");
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", &accounting_yaml(&ledger))).await;
    let headers = [("content-type", "application/json"), ("x-loom-user", "alice"), ("x-loom-team", "search")];
    let whole = gateway
        .post_with(
            "/v1/chat/completions",
            &headers,
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(whole.status, 200);
    // The client did not ask for usage: Loom asks upstream anyway and hides it.
    let streamed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","user":"bob","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert_eq!(mock.requests()[1].json()["stream_options"], json!({"include_usage": true}));
    let events = sse_data(&streamed.text());
    // Chunks pass through as upstream sent them (`"usage": null` included); the final
    // usage chunk the client did not ask for is held back.
    assert!(events.iter().all(|data| !data.contains("\"usage\":{")), "{events:?}");
    assert_eq!(events.len(), fixtures::chat_stream_chunks("gpt-4o", false).len() + 1, "{events:?}");

    let rows = wait_rows(&ledger, 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let gpt4o_cost = (9.0 * 0.0025 + 6.0 * 0.01) / 1000.0;
    for (row, user, team, streamed) in
        [(&rows[0], "alice", Some("search"), false), (&rows[1], "bob", None, true)]
    {
        assert_eq!(row["user"], user);
        assert_eq!(row["team"], json!(team));
        assert_eq!(row["provider"], "openai");
        assert_eq!(row["model_requested"], "gpt-4o");
        assert_eq!(row["model_served"], "gpt-4o");
        assert_eq!((row["input_tokens"].as_i64(), row["output_tokens"].as_i64()), (Some(9), Some(6)));
        assert_eq!(row["source"], "reported");
        assert!(close(row["cost"].as_f64().unwrap(), gpt4o_cost), "{row}");
        assert_eq!((row["status"].as_i64(), row["outcome"].as_str()), (Some(200), Some("ok")));
        assert_eq!(row["streamed"], streamed);
        assert_eq!(row["has_ttfb"], true);
    }
    assert_eq!(rows[0]["request_id"].as_str().map(|id| id.starts_with("req_")), Some(true));
}

#[tokio::test]
async fn anthropic_cumulative_usage_is_counted_once_and_gemini_usage_is_kept() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("providers");
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: claude\n      type: anthropic\n      api_key: k\n      base_url: http://{addr}\n      models: [claude-sonnet-4-5]\n    - name: gemini\n      type: gemini\n      api_key: k\n      base_url: http://{addr}\n      models: [gemini-2.5-flash]\n{}",
        accounting_yaml(&ledger),
        addr = mock.addr()
    );
    let gateway = TestGateway::start(&yaml).await;
    mock.push_reply(Reply::sse(anthropic_fixtures::text_stream("claude-sonnet-4-5", &["Hel", "lo"])));
    let claude = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert!(claude.text().ends_with("data: [DONE]\n\n"));
    mock.push_reply(Reply::sse(gemini_fixtures::text_stream("gemini-2.5-flash", &["Bon", "jour"])));
    let gemini = gateway
        .post("/v1/messages", r#"{"model":"gemini-2.5-flash","max_tokens":9,"messages":[{"role":"user","content":"Hi"}],"stream":true}"#)
        .await;
    assert!(gemini.text().contains("message_stop"));

    let rows = wait_rows(&ledger, 2).await;
    assert_eq!(rows[0]["provider"], "claude");
    // message_start: 12 input + 4 cache reads; output 1 then 6 (cumulative): 6, not 7.
    assert_eq!(
        (
            rows[0]["input_tokens"].as_i64(),
            rows[0]["output_tokens"].as_i64(),
            rows[0]["cached_tokens"].as_i64()
        ),
        (Some(16), Some(6), Some(4))
    );
    let sonnet_cost = (12.0 * 0.003 + 4.0 * 0.0003 + 6.0 * 0.015) / 1000.0;
    assert!(close(rows[0]["cost"].as_f64().unwrap(), sonnet_cost), "{}", rows[0]);
    assert_eq!(rows[1]["provider"], "gemini");
    // Gemini's usage is cumulative too: the last chunk's 11 / 4.
    assert_eq!((rows[1]["input_tokens"].as_i64(), rows[1]["output_tokens"].as_i64()), (Some(11), Some(4)));
    assert_eq!(rows[1]["source"], "reported");
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_still_gets_its_record() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("disconnect");
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", &accounting_yaml(&ledger))).await;
    let gate = Gate::new();
    let chunks = fixtures::chat_stream_chunks("gpt-4o", false);
    mock.push_reply(Reply::sse(vec![
        SseStep::json(&chunks[0]),
        SseStep::json(&chunks[1]),
        SseStep::Gate(gate.clone()),
        SseStep::json(&chunks[2]),
    ]));
    let response = gateway
        .send(
            Method::POST,
            &gateway.url("/v1/chat/completions"),
            &[("content-type", "application/json"), ("x-loom-user", "carol")],
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    let mut body = response.into_body();
    let mut seen = String::new();
    while !seen.contains("Hello") {
        let frame = next_frame(&mut body, Duration::from_secs(5)).await.expect("frames before the gate");
        seen.push_str(&String::from_utf8_lossy(&frame));
    }
    drop(body);
    assert!(mock.wait_for_dropped_stream(Duration::from_secs(5)).await);
    let rows = wait_rows(&ledger, 1).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row["outcome"].as_str(), row["status"].as_i64()), (Some("cancelled"), Some(499)));
    assert_eq!(row["user"], "carol");
    assert_eq!(row["output_tokens"], 1, "what was generated (\"Hello\") is counted");
    assert!(row["input_tokens"].as_i64().unwrap() > 0, "the input estimate is recorded");
    assert_ne!(row["source"], "reported");
}

#[tokio::test]
async fn failed_requests_are_recorded_with_their_status() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("failed");
    let yaml = openai_config(&mock.base_url(), "      models: [gpt-4o]\n", &accounting_yaml(&ledger));
    let gateway = TestGateway::start(&yaml).await;
    mock.push_reply(Reply::rate_limited(3));
    assert_eq!(
        gateway
            .post("/v1/chat/completions", r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#)
            .await
            .status,
        429
    );
    assert_eq!(
        gateway
            .post("/v1/chat/completions", r#"{"model":"nope","messages":[{"role":"user","content":"Hi"}]}"#)
            .await
            .status,
        404
    );
    let rows = wait_rows(&ledger, 2).await;
    assert_eq!((rows[0]["status"].as_i64(), rows[0]["outcome"].as_str()), (Some(429), Some("error")));
    assert_eq!(rows[0]["provider"], "openai");
    assert_eq!((rows[0]["input_tokens"].as_i64(), rows[0]["output_tokens"].as_i64()), (Some(0), Some(0)));
    assert_eq!((rows[1]["status"].as_i64(), rows[1]["provider"].clone()), (Some(404), Value::Null));
    assert_eq!(rows[1]["cost"], 0.0);
}

/// The `/ai/usage` groups by provider once `requests` requests are in them.
async fn usage_by_provider(gateway: &TestGateway, requests: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let report = gateway.admin_get("/ai/usage?group_by=provider").await.json();
        let groups = report["groups"].as_array().cloned().unwrap_or_default();
        let counted: u64 = groups.iter().filter_map(|group| group["requests"].as_u64()).sum();
        if counted >= requests || tokio::time::Instant::now() > deadline {
            return groups;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_cost_strategy_routes_by_the_price_billing_charges() {
    // Before one table: `dear`'s price, written in a route's routing block, steered the
    // router but billing never read it (route blocks were ignored), and `unpriced` was
    // routed last although billing priced it by its model.
    let (dear, unpriced) = (MockUpstream::start().await, MockUpstream::start().await);
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - {{name: dear, type: openai, api_key: sk-dear, base_url: {}}}\n    - {{name: unpriced, type: openai, api_key: sk-unpriced, base_url: {}}}\nroutes:\n  - id: ai\n    path: /v1/*\n    ai_gateway: true\n    routing:\n      strategy: cost\n      providers:\n        - {{name: dear, cost_per_1k_input: 0.01, cost_per_1k_output: 0.03}}\n        - {{name: unpriced}}\n",
        dear.base_url(),
        unpriced.base_url()
    );
    let gateway = TestGateway::start(&yaml).await;
    let ask = |model: &str| {
        format!(r#"{{"model":"{model}","max_tokens":100,"messages":[{{"role":"user","content":"Hi"}}]}}"#)
    };
    // gpt-4o-mini's built-in price (0.00015 / 0.0006) is below `dear`'s: `unpriced` serves it.
    let mini = gateway.post("/v1/chat/completions", &ask("gpt-4o-mini")).await;
    assert_eq!((mini.status.as_u16(), mini.header("x-loom-provider").as_deref()), (200, Some("unpriced")));
    // A model no table prices leaves `unpriced` without a price: `dear` serves it.
    let unknown = gateway.post("/v1/chat/completions", &ask("my-model")).await;
    assert_eq!((unknown.status.as_u16(), unknown.header("x-loom-provider").as_deref()), (200, Some("dear")));
    assert_eq!((dear.request_count(), unpriced.request_count()), (1, 1));

    // Each is billed at the price it was routed by (9 input, 6 output tokens reported).
    let groups = usage_by_provider(&gateway, 2).await;
    let billed: Vec<(&str, u64, f64)> = groups
        .iter()
        .map(|group| {
            (
                group["group"].as_str().unwrap(),
                group["requests"].as_u64().unwrap(),
                group["cost"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(billed.len(), 2, "{groups:?}");
    let cost_of =
        |name: &str| billed.iter().find(|(group, ..)| *group == name).map(|(_, n, cost)| (*n, *cost));
    let (dear_requests, dear_cost) = cost_of("dear").unwrap();
    let (unpriced_requests, unpriced_cost) = cost_of("unpriced").unwrap();
    assert_eq!((dear_requests, unpriced_requests), (1, 1));
    assert!(close(dear_cost, (9.0 * 0.01 + 6.0 * 0.03) / 1000.0), "{dear_cost}");
    assert!(close(unpriced_cost, (9.0 * 0.00015 + 6.0 * 0.0006) / 1000.0), "{unpriced_cost}");
}

#[tokio::test]
async fn metrics_are_exact_after_n_requests() {
    let mock = MockUpstream::start().await;
    let yaml = openai_config(
        &mock.base_url(),
        "      cost_per_1k_input: 0.01\n      cost_per_1k_output: 0.03\n",
        "",
    );
    let gateway = TestGateway::start(&yaml).await;
    for _ in 0..4 {
        let response = gateway
            .post("/v1/chat/completions", r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#)
            .await;
        assert_eq!(response.status, 200);
    }
    let metrics = gateway.admin_get("/metrics").await.text();
    let value = |prefix: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("loom_ai_tokens_total{provider=\"openai\",type=\"input\"}"), 36.0);
    assert_eq!(value("loom_ai_tokens_total{provider=\"openai\",type=\"output\"}"), 24.0);
    // The provider's own prices win over the built-in table: 4 x (9 x 0.01 + 6 x 0.03) / 1000.
    assert!(
        close(value("loom_ai_cost_total{provider=\"openai\"}"), 4.0 * (9.0 * 0.01 + 6.0 * 0.03) / 1000.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn usage_report_survives_a_restart() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("restart");
    let yaml = openai_config(&mock.base_url(), "", &accounting_yaml(&ledger));
    let first = TestGateway::start(&yaml).await;
    for user in ["dave", "dave", "erin"] {
        let headers = [("content-type", "application/json"), ("x-loom-user", user)];
        let response = first
            .post_with(
                "/v1/chat/completions",
                &headers,
                r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#,
            )
            .await;
        assert_eq!(response.status, 200);
    }
    first.running.shutdown().await;

    let second = TestGateway::start(&yaml).await;
    let report = second.admin_get("/ai/usage?group_by=user").await;
    assert_eq!(report.status, 200, "{}", report.text());
    let body = report.json();
    assert_eq!(body["group_by"], "user");
    let cost = |n: f64| n * (9.0 * 0.00015 + 6.0 * 0.0006) / 1000.0;
    let groups = body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{body}");
    assert_eq!(groups[0]["group"], "dave");
    assert_eq!(
        (
            groups[0]["requests"].as_u64(),
            groups[0]["input_tokens"].as_u64(),
            groups[0]["output_tokens"].as_u64()
        ),
        (Some(2), Some(18), Some(12))
    );
    assert!(close(groups[0]["cost"].as_f64().unwrap(), cost(2.0)));
    assert_eq!((groups[1]["group"].as_str(), groups[1]["requests"].as_u64()), (Some("erin"), Some(1)));

    let by_model = second.admin_get("/ai/usage?group_by=model&from=2000-01-01T00:00:00Z").await.json();
    assert_eq!(by_model["groups"][0]["group"], "gpt-4o-mini");
    assert_eq!(by_model["groups"][0]["requests"], 3);
    let empty = second.admin_get("/ai/usage?group_by=model&from=0&to=1").await.json();
    assert_eq!(empty["groups"], json!([]));
    let bad = second.admin_get("/ai/usage?group_by=planet").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["param"], "group_by");
}
