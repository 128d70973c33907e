//! # loom-gateway
//!
//! Loom's HTTP edge: the OpenAI front door (`/v1/chat/completions`, `/v1/responses`,
//! `/v1/embeddings`, `/v1/models`) over hyper (HTTP/1.1 keep-alive and h2c), SSE streaming with
//! `streaming.flush_interval`, the admin server (`/health`, `/metrics`), and the
//! config schema that every block of the spec loads into.
//!
//! ```
//! use loom_gateway::{Gateway, config::LoomConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = "ai_gateway:\n  providers:\n    - name: demo\n      type: mock\n";
//! let config = LoomConfig::from_yaml_str(yaml, &|_| None)?;
//! // `Gateway::start()` binds the configured addresses; tests bind port 0 themselves.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let running = Gateway::from_config(&config)?.start_on(listener, None);
//!
//! let body = r#"{"model":"any","messages":[{"role":"user","content":"hi"}]}"#;
//! let mut tcp = tokio::net::TcpStream::connect(running.addr().unwrap()).await?;
//! tcp.write_all(format!(
//!     "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-type: application/json\r\n\
//!      content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes()).await?;
//! let mut answer = String::new();
//! tcp.read_to_string(&mut answer).await?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK"));
//! assert!(answer.contains("Hello from Loom's mock provider! You said: hi"));
//!
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod access_log;
pub mod admin;
pub mod anthropic_format;
mod anthropic_stream;
mod budget_seed;
mod cache_embedder;
pub mod config;
mod deadline;
pub mod front_door;
pub mod gateway;
mod http_error;
pub mod metrics;
mod models;
pub mod openai_format;
pub mod pipeline;
pub mod provider_metrics;
mod request_body;
mod request_id;
pub mod responses_format;
pub mod responses_state;
mod responses_stream;
pub mod routes;
pub mod scrub;
pub mod server;
pub mod sse;
pub mod workers;

pub use admin::Admin;
pub use front_door::{FrontDoor, FrontDoorSettings};
pub use gateway::{Gateway, GatewayError, RunningGateway};

/// Guides whose code is compiled and run as doctests.
pub mod guide {
    #[doc = include_str!("../../../docs/embedding.md")]
    pub mod embedding {}
}
