//! # loom-gateway
//!
//! Loom's HTTP edge: the OpenAI front door (`/v1/chat/completions`, `/v1/embeddings`,
//! `/v1/models`) over hyper (HTTP/1.1 keep-alive and h2c), SSE streaming with
//! `streaming.flush_interval`, the admin server (`/health`, `/metrics`), and the
//! config schema that every block of the spec loads into.
//!
//! ```no_run
//! use loom_gateway::{Gateway, config::LoomConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = LoomConfig::load("examples/quickstart.yaml".as_ref())?;
//! let running = Gateway::from_config(&config)?.start().await?;
//! tokio::signal::ctrl_c().await?;
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod config;
pub mod deadline;
pub mod dispatch;
pub mod gateway;
pub mod http_error;
pub mod metrics;
pub mod observe;
pub mod openai_format;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod service;
pub mod sse;

pub use gateway::{Gateway, GatewayError, RunningGateway};
