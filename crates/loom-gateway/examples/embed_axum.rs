//! Loom's front door inside an axum app, next to the app's own routes.
//!
//! The app builds its own pipeline from Loom's layers (token accounting over a router
//! with one mock provider), mounts the OpenAI and Anthropic front doors under `/v1/`, and
//! keeps `/hello` for itself. Run it and try it:
//!
//! ```text
//! cargo run -p loom-gateway --example embed_axum -- 127.0.0.1:3000
//! curl localhost:3000/hello
//! curl localhost:3000/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"any","messages":[{"role":"user","content":"hi"}]}'
//! ```
//!
//! With `--self-test` it serves on an ephemeral port, sends both requests itself, checks
//! the answers and exits; `cargo test` runs that self-test too.

use std::sync::Arc;
use std::time::Duration;

use axum::Router as App;
use axum::routing::get;
use loom_gateway::front_door::FrontDoor;
use loom_gateway::pipeline::Pipeline;
use loom_providers::{Provider, ProviderConfig, ProviderType};
use loom_routing::{ProviderState, RouteTarget, Router, RoutingConfig};
use loom_tokens::accounting::{DEFAULT_MAX_AGGREGATE_BYTES, PriceTable, TokenAccountingLayer, UsageRecorder};
use loom_tokens::{Encoding, TokenizerRegistry, TokenizerSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argument = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    run(&argument).await
}

/// Serves on `listen`, or with `--self-test` checks both kinds of route and returns.
async fn run(listen: &str) -> Result<(), Box<dyn std::error::Error>> {
    let self_test = listen == "--self-test";
    let listen = if self_test { "127.0.0.1:0" } else { listen };

    // One provider behind a router; any `Service<LlmRequest>` could stand here.
    let provider = Provider::from_config(&ProviderConfig::new("mock", ProviderType::Mock))?;
    let routing = RoutingConfig::default();
    let target = RouteTarget {
        provider,
        state: Arc::new(ProviderState::new("mock", routing.health.clone())),
        models: Vec::new(),
        weight: 1,
    };
    let router = Router::new(vec![target], &routing, Default::default());

    // Loom's token accounting in front of it: usage and cost of every request, in memory.
    let usage =
        Arc::new(UsageRecorder::new(None, Duration::from_secs(1), DEFAULT_MAX_AGGREGATE_BYTES, Vec::new())?);
    let tokenizers = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
    let accounting = TokenAccountingLayer::new(usage.clone(), PriceTable::new(), Arc::new(tokenizers), false);
    let pipeline: Pipeline = Pipeline::new(ServiceBuilder::new().layer(accounting).service(router));

    // The front door is a tower Service over any request body: axum mounts it as is.
    let front_door = FrontDoor::with_pipeline(pipeline);
    let app = App::new()
        .route("/hello", get(|| async { "hello from the app" }))
        .route_service("/v1/{*endpoint}", front_door);

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    if !self_test {
        println!("listening on http://{addr}");
        server.await??;
        return Ok(());
    }

    let hello = exchange(addr, "GET /hello HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n").await?;
    assert!(hello.starts_with("HTTP/1.1 200 OK"), "{hello}");
    assert!(hello.ends_with("hello from the app"), "{hello}");
    let body = r#"{"model":"any","messages":[{"role":"user","content":"hi"}]}"#;
    let chat = exchange(
        addr,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: app\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await?;
    assert!(chat.starts_with("HTTP/1.1 200 OK"), "{chat}");
    assert!(chat.contains("Hello from Loom's mock provider! You said: hi"), "{chat}");
    // The app's own accounting saw the request.
    tokio::task::spawn_blocking(move || usage.flush()).await?;
    println!("self-test passed: /hello and /v1/chat/completions served by one axum app");
    server.abort();
    Ok(())
}

/// One HTTP/1.1 exchange on a new connection; the whole answer as text.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "current_thread")]
    async fn the_app_serves_its_own_route_and_loom_s_front_door() {
        super::run("--self-test").await.unwrap();
    }
}
