//! The console on the admin port: its page is served to anyone (it holds no data), while
//! the admin API it reads still needs the admin key.

use loom_e2e::{TestGateway, openai_config};
use loom_test_support::MockUpstream;

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
