//! # loom-test-support
//!
//! A mock OpenAI upstream for testing Loom without the network.
//!
//! [`MockUpstream`] listens on `127.0.0.1` with an ephemeral port, speaks HTTP/1.1
//! (keep-alive) and HTTP/2 prior knowledge, records every request it receives and
//! answers with scripted [`Reply`]s — or, when nothing is scripted, with OpenAI's
//! own wire format (see [`fixtures`]):
//!
//! - `POST /v1/chat/completions`: a `chat.completion`, or with `"stream": true` the
//!   chunk sequence OpenAI streams (honouring `stream_options.include_usage`),
//!   ending in `data: [DONE]`;
//! - `POST /v1/embeddings`: one deterministic vector per input;
//! - `GET /v1/models/{id}`;
//! - `GET` of any path ending in `/models`: the model list ([`fixtures::MODELS`] unless
//!   [`MockUpstream::set_models`] says otherwise) in OpenAI's format, Anthropic's (when
//!   the request carries `anthropic-version`, paged by `after_id`) or Gemini's (for
//!   `/v1beta/models`, paged by `pageToken`). These are recorded apart
//!   ([`MockUpstream::model_list_requests`]) and never take the replies queued with
//!   [`MockUpstream::push_reply`], so a gateway's background list fetches leave every
//!   other record as it was;
//! - anything else: 404 with an OpenAI error object.
//!
//! ```
//! use std::time::Duration;
//! use loom_test_support::{MockUpstream, Reply};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mock = MockUpstream::start().await;
//! assert!(mock.base_url().starts_with("http://127.0.0.1:"));
//! mock.push_reply(Reply::rate_limited(3));
//!
//! // Any HTTP client works; a raw socket keeps the example dependency-free.
//! let mut tcp = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
//! let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
//! let request = format!(
//!     "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer sk-test\r\n\
//!      content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
//!     body.len()
//! );
//! tcp.write_all(request.as_bytes()).await.unwrap();
//! let mut response = String::new();
//! tcp.read_to_string(&mut response).await.unwrap();
//! assert!(response.starts_with("HTTP/1.1 429"));
//! assert!(response.contains("retry-after: 3"));
//!
//! assert!(mock.wait_for_requests(1, Duration::from_secs(5)).await);
//! let requests = mock.requests();
//! assert_eq!(requests[0].method, "POST");
//! assert_eq!(requests[0].path, "/v1/chat/completions");
//! assert_eq!(requests[0].header("authorization").as_deref(), Some("Bearer sk-test"));
//! assert_eq!(requests[0].json()["model"], "gpt-4o-mini");
//! # }
//! ```
//!
//! Streams really stream: every [`SseStep`] that writes bytes is its own body frame,
//! sent as soon as the [`SseStep::Delay`]s and [`SseStep::Gate`]s before it are
//! over, and a client dropping the body early is counted by
//! [`MockUpstream::dropped_streams`].

#![warn(missing_docs)]

pub mod anthropic_fixtures;
pub mod fixtures;
pub mod gemini_fixtures;
pub mod redis_server;
mod reply;
mod server;

pub use redis_server::RedisServer;
pub use reply::{Gate, Reply, SseStep};
pub use server::{MockUpstream, RecordedRequest};
