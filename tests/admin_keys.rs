//! The admin API for virtual keys and budgets, and the admin key, over real HTTP.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use loom_e2e::{TestGateway, TestResponse, openai_config, read_whole};
use loom_test_support::MockUpstream;
use loom_test_support::fixtures::{COMPLETION_TOKENS, PROMPT_TOKENS};
use serde_json::{Value, json};

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
const ADMIN_KEY: &str = "adm-0123456789abcdef";
const CONFIG_KEY: &str = "lk-config-key-0123456789";

/// Auth on, one configuration key `ops` (team eng), the admin key, and `budgets`.
fn guarded_config(base_url: &str, budgets: &str) -> String {
    let auth = format!(
        "  auth:\n    enabled: true\n    admin_key: {ADMIN_KEY}\n    keys:\n      - id: ops\n        key: {CONFIG_KEY}\n        team: eng\n{budgets}"
    );
    openai_config(base_url, "", &auth)
}

async fn admin(
    gateway: &TestGateway,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TestResponse {
    let url = format!("http://{}{path}", gateway.admin_addr);
    read_whole(gateway.send(method, &url, headers, Bytes::from(body.to_owned())).await).await
}

/// An admin request with the right admin key.
async fn authorized(gateway: &TestGateway, method: Method, path: &str, body: &str) -> TestResponse {
    let bearer = format!("Bearer {ADMIN_KEY}");
    let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    admin(gateway, method, path, &headers, body).await
}

async fn chat_with(gateway: &TestGateway, key: &str, body: &str) -> TestResponse {
    let bearer = format!("Bearer {key}");
    gateway
        .post_with(
            "/v1/chat/completions",
            &[("authorization", &bearer), ("content-type", "application/json")],
            body,
        )
        .await
}

fn invalid_admin_key(message: &str) -> Value {
    json!({"error": {"message": message, "type": "authentication_error", "param": null, "code": "invalid_admin_key"}})
}

#[tokio::test]
async fn the_admin_key_guards_every_endpoint_but_health() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&guarded_config(&mock.base_url(), "")).await;
    let missing = "this admin endpoint needs the admin key (ai_gateway.auth.admin_key) in `Authorization: Bearer` or `x-api-key`";
    for path in [
        "/metrics",
        "/ai/usage",
        "/ai/usage/series",
        "/ai/providers",
        "/ai/keys",
        "/ai/budgets",
        "/ai/keys/ops",
        "/nowhere",
    ] {
        let response = admin(&gateway, Method::GET, path, &[], "").await;
        assert_eq!((response.status.as_u16(), response.json()), (401, invalid_admin_key(missing)), "{path}");
        for wrong in [("authorization", "Bearer adm-0123456789abcdeX"), ("x-api-key", "adm-0123456789abcde")]
        {
            let response = admin(&gateway, Method::GET, path, &[wrong], "").await;
            assert_eq!(
                (response.status.as_u16(), response.json()),
                (401, invalid_admin_key("invalid admin key")),
                "{path} {wrong:?}"
            );
        }
    }
    // Writes are refused before anything is read or changed.
    let refused = admin(&gateway, Method::POST, "/ai/keys", &[], r#"{"id":"sneaky"}"#).await;
    assert_eq!(refused.status, 401);
    assert_eq!(authorized(&gateway, Method::GET, "/ai/keys/sneaky", "").await.status, 404);

    let health = admin(&gateway, Method::GET, "/health", &[], "").await;
    assert_eq!((health.status.as_u16(), health.json()), (200, json!({"status": "ok"})));
    for path in ["/metrics", "/ai/usage", "/ai/usage/series", "/ai/providers", "/ai/keys", "/ai/budgets"] {
        assert_eq!(authorized(&gateway, Method::GET, path, "").await.status, 200, "{path}");
    }
    let by_header = admin(&gateway, Method::GET, "/metrics", &[("x-api-key", ADMIN_KEY)], "").await;
    assert_eq!(by_header.status, 200);
    assert!(by_header.text().contains("loom_ai_usage_dropped_total 0"), "{}", by_header.text());
}

#[tokio::test]
async fn without_an_admin_key_the_admin_port_stays_open() {
    let mock = MockUpstream::start().await;
    let auth = "  auth:\n    enabled: true\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", auth)).await;
    for path in ["/health", "/metrics", "/ai/usage", "/ai/providers", "/ai/keys", "/ai/budgets"] {
        assert_eq!(admin(&gateway, Method::GET, path, &[], "").await.status, 200, "{path}");
    }
    // Keys and budgets need auth (or a budget); the rest keeps its old answers.
    let plain = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let keys = plain.admin_get("/ai/keys").await;
    assert_eq!(
        (keys.status.as_u16(), keys.json()),
        (
            404,
            json!({"error": {"message": "virtual keys are off: set ai_gateway.auth.enabled: true to manage them here",
                "type": "invalid_request_error", "param": null, "code": "auth_disabled"}})
        )
    );
    assert_eq!(plain.admin_get("/ai/budgets").await.json()["error"]["code"], "budgets_disabled");
    let wrong_method = admin(&plain, Method::POST, "/metrics", &[], "").await;
    assert_eq!(
        (wrong_method.status.as_u16(), wrong_method.json()),
        (
            405,
            json!({"error": {"message": "use GET", "type": "invalid_request_error", "param": null,
                "code": "method_not_allowed"}})
        )
    );
    assert_eq!(plain.admin_get("/nowhere").await.json()["error"]["code"], "unknown_url");
}

#[tokio::test]
async fn a_created_key_works_until_changed_and_revoked() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&guarded_config(&mock.base_url(), "")).await;

    let created =
        authorized(&gateway, Method::POST, "/ai/keys", r#"{"id":"web-app","name":"Web app","team":"web"}"#)
            .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("location").as_deref(), Some("/ai/keys/web-app"));
    let mut body = created.json();
    let plaintext = body["key"].as_str().expect("the plaintext key").to_owned();
    assert!(plaintext.starts_with("lk-") && plaintext.len() == 46, "{plaintext}");
    let created_at = body["created_at"].as_str().expect("a creation time").to_owned();
    body.as_object_mut().unwrap().remove("key");
    let record = json!({
        "id": "web-app", "name": "Web app", "user": null, "team": "web", "metadata": {}, "models": [],
        "routes": [], "allow_identity_headers": false, "expires_at": null, "revoked": false, "limits": [],
        "budgets": [], "created_at": created_at, "source": "api"
    });
    assert_eq!(body, record);

    let answered = chat_with(&gateway, &plaintext, CHAT).await;
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert_eq!(answered.json()["object"], "chat.completion");

    let listed = authorized(&gateway, Method::GET, "/ai/keys", "").await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text().contains(&plaintext), "{}", listed.text());
    let ids: Vec<(Value, Value)> = listed.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| (key["id"].clone(), key["source"].clone()))
        .collect();
    assert_eq!(ids, [(json!("ops"), json!("config")), (json!("web-app"), json!("api"))]);
    let shown = authorized(&gateway, Method::GET, "/ai/keys/web-app", "").await;
    assert_eq!((shown.status.as_u16(), shown.json()), (200, record));

    let patched =
        authorized(&gateway, Method::PATCH, "/ai/keys/web-app", r#"{"models":["gpt-4o-mini"]}"#).await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["models"], json!(["gpt-4o-mini"]));
    let forbidden = chat_with(&gateway, &plaintext, CHAT).await;
    assert_eq!(
        (forbidden.status.as_u16(), forbidden.json()),
        (
            403,
            json!({"error": {"message": "The key `web-app` may not use the model `gpt-4o`",
                "type": "permission_error", "param": "model", "code": "model_not_allowed"}})
        )
    );
    let mini = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
    assert_eq!(chat_with(&gateway, &plaintext, mini).await.status, 200);

    let revoked = authorized(&gateway, Method::DELETE, "/ai/keys/web-app", "").await;
    assert_eq!((revoked.status.as_u16(), revoked.json()), (200, json!({"id": "web-app", "revoked": true})));
    let again = authorized(&gateway, Method::DELETE, "/ai/keys/web-app", "").await;
    assert_eq!(again.status, 200);
    let refused = chat_with(&gateway, &plaintext, mini).await;
    assert_eq!(
        (refused.status.as_u16(), refused.json()),
        (
            401,
            json!({"error": {"message": "The API key was revoked", "type": "authentication_error",
                "param": null, "code": "revoked_api_key"}})
        )
    );
    let unknown = authorized(&gateway, Method::DELETE, "/ai/keys/nobody", "").await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.json()),
        (
            404,
            json!({"error": {"message": "no key with id `nobody`", "type": "invalid_request_error",
                "param": null, "code": "key_not_found"}})
        )
    );
    let duplicate = authorized(&gateway, Method::POST, "/ai/keys", r#"{"id":"web-app"}"#).await;
    assert_eq!(
        (duplicate.status.as_u16(), duplicate.json()),
        (
            409,
            json!({"error": {"message": "a key with id `web-app` exists", "type": "invalid_request_error",
                "param": "id", "code": "key_exists"}})
        )
    );
}

#[tokio::test]
async fn configuration_keys_are_listed_and_read_only() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&guarded_config(&mock.base_url(), "")).await;
    let listed = authorized(&gateway, Method::GET, "/ai/keys", "").await;
    assert_eq!(
        listed.json(),
        json!({"data": [{
            "id": "ops", "name": null, "user": null, "team": "eng", "metadata": {}, "models": [], "routes": [],
            "allow_identity_headers": false, "expires_at": null, "revoked": false, "limits": [], "budgets": [],
            "created_at": null, "source": "config"
        }]})
    );
    assert!(!listed.text().contains(CONFIG_KEY));
    let read_only = json!({"error": {
        "message": "key `ops` comes from the configuration file and cannot be changed at run time",
        "type": "invalid_request_error", "param": null, "code": "read_only_key"}});
    let patched = authorized(&gateway, Method::PATCH, "/ai/keys/ops", r#"{"name":"x"}"#).await;
    assert_eq!((patched.status.as_u16(), patched.json()), (409, read_only.clone()));
    let deleted = authorized(&gateway, Method::DELETE, "/ai/keys/ops", "").await;
    assert_eq!((deleted.status.as_u16(), deleted.json()), (409, read_only));
    // Still working.
    assert_eq!(chat_with(&gateway, CONFIG_KEY, CHAT).await.status, 200);
}

#[tokio::test]
async fn bad_bodies_and_paths_name_what_is_wrong() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&guarded_config(&mock.base_url(), "")).await;
    let unknown = authorized(&gateway, Method::POST, "/ai/keys", r#"{"id":"k","secret":"x"}"#).await;
    assert_eq!(unknown.status, 400);
    let error = &unknown.json()["error"];
    assert_eq!((&error["param"], &error["code"]), (&json!("secret"), &json!("invalid_parameter")));
    assert!(error["message"].as_str().unwrap().starts_with("secret: unknown field `secret`"), "{error}");

    let no_rate = authorized(&gateway, Method::POST, "/ai/keys", r#"{"limits":[{"scope":"key"}]}"#).await;
    assert_eq!(no_rate.status, 400, "{}", no_rate.text());
    assert_eq!(no_rate.json()["error"]["param"], "limits[0]");

    let wrong_type = authorized(
        &gateway,
        Method::POST,
        "/ai/keys",
        r#"{"budgets":[{"scope":"key","period":"day","max_tokens":"many"}]}"#,
    )
    .await;
    assert_eq!(wrong_type.json()["error"]["param"], "budgets[0].max_tokens");
    let broken = authorized(&gateway, Method::POST, "/ai/keys", r#"{"id":"#).await;
    assert_eq!(broken.json()["error"]["param"], "body");

    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(70_000));
    let too_large = authorized(&gateway, Method::POST, "/ai/keys", &huge).await;
    assert_eq!(
        (too_large.status.as_u16(), too_large.json()),
        (
            413,
            json!({"error": {"message": "admin request bodies are limited to 65536 bytes",
                "type": "invalid_request_error", "param": null, "code": "request_too_large"}})
        )
    );
    let long_id = format!("/ai/keys/{}", "k".repeat(129));
    assert_eq!(authorized(&gateway, Method::GET, &long_id, "").await.json()["error"]["param"], "id");
    assert_eq!(authorized(&gateway, Method::GET, "/ai/keys/a/b", "").await.status, 400);
    let put = authorized(&gateway, Method::PUT, "/ai/keys/ops", "").await;
    assert_eq!(
        (put.status.as_u16(), put.json()["error"]["message"].clone()),
        (405, json!("use GET, PATCH or DELETE"))
    );
    // Nothing was created by the refused bodies.
    assert_eq!(
        authorized(&gateway, Method::GET, "/ai/keys", "").await.json()["data"].as_array().unwrap().len(),
        1
    );
}

/// `GET /ai/budgets` once no request holds a reservation any more (settling follows the
/// response).
async fn settled_budgets(gateway: &TestGateway, query: &str) -> Value {
    for _ in 0..400 {
        let budgets = authorized(gateway, Method::GET, &format!("/ai/budgets{query}"), "").await;
        assert_eq!(budgets.status, 200, "{}", budgets.text());
        let body = budgets.json();
        let settled = body["data"].as_array().unwrap().iter().all(|entry| entry["in_flight"] == 0);
        if settled {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("reservations were never settled");
}

#[tokio::test]
async fn budgets_show_the_spend_of_recorded_requests() {
    let mock = MockUpstream::start().await;
    let budgets = "  budgets:\n    - {scope: team, match: web, period: month, max_tokens: 100000}\n    - {scope: team, period: day, max_cost_usd: 5}\n";
    let gateway = TestGateway::start(&guarded_config(&mock.base_url(), budgets)).await;
    let created = authorized(
        &gateway,
        Method::POST,
        "/ai/keys",
        r#"{"id":"web-app","team":"web","budgets":[{"scope":"key","period":"7d","max_tokens":5000}]}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let plaintext = created.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(chat_with(&gateway, &plaintext, CHAT).await.status, 200);

    let usage = authorized(&gateway, Method::GET, "/ai/usage?group_by=team", "").await.json();
    let web = usage["groups"].as_array().unwrap().iter().find(|group| group["group"] == "web").cloned();
    let web = web.unwrap_or_else(|| panic!("no usage of team web in {usage}"));
    let recorded = web["input_tokens"].as_u64().unwrap() + web["output_tokens"].as_u64().unwrap();
    assert_eq!(recorded, PROMPT_TOKENS + COMPLETION_TOKENS);

    let body = settled_budgets(&gateway, "").await;
    let rows: Vec<(Value, Value, Value, Value, Value)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["subject"].clone(),
                entry["scope"].clone(),
                entry["name"].clone(),
                entry["unit"].clone(),
                entry["spent"].clone(),
            )
        })
        .collect();
    let cost_spent = rows[2].4.clone();
    assert_eq!(
        rows,
        [
            (json!("web"), json!("team"), json!("team web monthly tokens"), json!("tokens"), json!(recorded)),
            (json!("eng"), json!("team"), json!("team eng daily cost"), json!("nano_usd"), json!(0)),
            (
                json!("web"),
                json!("team"),
                json!("team web daily cost"),
                json!("nano_usd"),
                cost_spent.clone()
            ),
            (
                json!("web-app"),
                json!("key"),
                json!("key web-app rolling 7days tokens"),
                json!("tokens"),
                json!(recorded)
            ),
        ]
    );
    // gpt-4o has a price: the cost budget is debited the recorded cost, shown in USD too.
    let cost = web["cost"].as_f64().unwrap();
    assert!(cost > 0.0, "{web}");
    assert_eq!(cost_spent, json!((cost * 1e9).round() as u64));
    let cost_row = &body["data"][2];
    assert_eq!((&cost_row["limit"], &cost_row["limit_usd"]), (&json!(5_000_000_000u64), &json!(5.0)));
    assert_eq!(cost_row["spent_usd"].as_f64().unwrap(), cost_spent.as_u64().unwrap() as f64 / 1e9);

    let team = settled_budgets(&gateway, "?scope=team&value=x").await;
    let rows: Vec<(Value, Value, Value)> = team["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["subject"].clone(), entry["name"].clone(), entry["spent"].clone()))
        .collect();
    assert_eq!(rows, [(json!("x"), json!("team x daily cost"), json!(0))]);
    let bad = authorized(&gateway, Method::GET, "/ai/budgets?scope=model&value=x", "").await;
    assert_eq!((bad.status.as_u16(), bad.json()["error"]["param"].clone()), (400, json!("scope")));
}

#[tokio::test]
async fn a_key_made_at_run_time_carries_its_own_checks() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&guarded_config(&mock.base_url(), "")).await;
    let body = r#"{"id": "kiosk", "checks": {"injection": {"enabled": false},
        "content_filters": [{"name": "codenames", "deny": ["orca"]}]}}"#;
    let created = authorized(&gateway, Method::POST, "/ai/keys", body).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["checks"]["content_filters"][0]["name"], "codenames");
    let plaintext = created.json()["key"].as_str().expect("the plaintext key").to_owned();
    let codename = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Status of ORCA?"}]}"#;

    let refused = chat_with(&gateway, &plaintext, codename).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["error"]["message"], "Request blocked by the content filter `codenames`");
    // The configuration key has none of them: the built-in checks apply.
    assert_eq!(chat_with(&gateway, CONFIG_KEY, codename).await.status, 200);

    // `null` takes them away again.
    let patched = authorized(&gateway, Method::PATCH, "/ai/keys/kiosk", r#"{"checks": null}"#).await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert!(patched.json().get("checks").is_none(), "{}", patched.text());
    assert_eq!(chat_with(&gateway, &plaintext, codename).await.status, 200);

    // Bad checks name the field.
    let bad = authorized(
        &gateway,
        Method::POST,
        "/ai/keys",
        r#"{"checks": {"content_filters": [{"name": "x", "regex": ["("]}]}}"#,
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.json()["error"]["param"], "checks.content_filters[0].regex[0]");
}
