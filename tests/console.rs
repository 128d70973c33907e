//! The console on the admin port: its page is served to anyone (it holds no data), while
//! the admin API it reads still needs the admin key.

use loom_e2e::{TestGateway, openai_config};
use loom_test_support::MockUpstream;
use serde_json::json;

#[tokio::test]
async fn the_page_is_open_and_the_data_behind_it_needs_the_admin_key() {
    let mock = MockUpstream::start().await;
    let auth = "  auth:\n    admin_key: console-admin-secret\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", auth)).await;

    let page = gateway.admin_get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "{policy}");
    assert!(page.text().contains("<title>Loom console</title>"));
    assert!(!page.text().contains("openai"), "the page itself names no provider");
    for asset in ["/console.js", "/console.css"] {
        assert_eq!(gateway.admin_get(asset).await.status, 200, "{asset}");
    }

    let providers = gateway.admin_get("/ai/providers").await;
    assert_eq!(providers.status, 401, "{}", providers.text());
}

#[tokio::test]
async fn the_session_check_answers_200_and_shows_what_is_offered_only_to_the_admin() {
    let mock = MockUpstream::start().await;
    let auth = "  auth:\n    enabled: true\n    admin_key: console-admin-secret\n    keys:\n      - {id: app, key: lk-app}\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", auth)).await;
    let session = |key: Option<&'static str>| {
        let gateway = &gateway;
        async move {
            let headers: Vec<(&str, String)> =
                key.map(|key| ("authorization", format!("Bearer {key}"))).into_iter().collect();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
            let url = format!("http://{}/console/session", gateway.admin_addr);
            loom_e2e::read_whole(gateway.send(http::Method::GET, &url, &headers, bytes::Bytes::new()).await)
                .await
        }
    };

    for key in [None, Some("lk-app"), Some("wrong")] {
        let answer = session(key).await;
        assert_eq!(answer.status, 200, "{key:?}");
        assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(
            answer.json(),
            json!({"admin_key_required": true, "signed_in": false, "keys": false}),
            "{key:?}"
        );
    }
    let admin = session(Some("console-admin-secret")).await;
    assert_eq!(admin.json(), json!({"admin_key_required": true, "signed_in": true, "keys": true}));

    let open = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let url = format!("http://{}/console/session", open.admin_addr);
    let answer =
        loom_e2e::read_whole(open.send(http::Method::GET, &url, &[], bytes::Bytes::new()).await).await;
    assert_eq!(answer.json(), json!({"admin_key_required": false, "signed_in": true, "keys": false}));
}
