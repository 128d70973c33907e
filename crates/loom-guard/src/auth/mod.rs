//! Authentication with virtual keys: [`AuthLayer`] turns the key a client presented into
//! the request's identity, or refuses the request (401 unknown, expired or revoked key;
//! 403 a model or route the key may not use), in the client's own error format.
//!
//! The front door puts the presented key (`Authorization: Bearer`, `x-api-key` or
//! `api-key`) into the request's extensions as [`loom_core::PresentedKey`]; the layer
//! replaces it with [`AuthenticatedKey`], which later stages (rate limits and budgets)
//! read. Identity comes from the key: `user` and `team` sent by the client (the
//! `x-loom-user` / `x-loom-team` headers, the body's `user`) count only for keys with
//! `allow_identity_headers`.
//!
//! ```
//! use std::sync::Arc;
//! use loom_core::{ChatRequest, LlmRequest, LlmResponse, LoomError, Message, PresentedKey, RequestContext, ResponsePayload, Role, Secret};
//! use loom_guard::auth::AuthLayer;
//! use loom_guard::{AuthConfig, GuardState, KeyConfig, KeyStore};
//! use tower::{Layer, ServiceExt};
//!
//! fn answer() -> loom_core::ChatResponse {
//!     serde_json::from_str(r#"{"id":"c","model":"gpt-4o","choices":[]}"#).unwrap()
//! }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let auth = AuthConfig {
//!     enabled: true,
//!     keys: vec![KeyConfig { id: "app".into(), key: Some(Secret::new("lk-app")), team: Some("web".into()), ..KeyConfig::default() }],
//!     admin_key: None,
//! };
//! let keys = Arc::new(KeyStore::new(&auth, &GuardState::memory(1000)).unwrap());
//! let backend = tower::service_fn(|request: LlmRequest| async move {
//!     // The identity now comes from the key.
//!     assert_eq!(request.context.identity.team.as_deref(), Some("web"));
//!     Ok::<_, LoomError>(LlmResponse::new("echo", ResponsePayload::Chat(answer().into())))
//! });
//! let service = AuthLayer::new(keys).layer(backend);
//!
//! let chat = || ChatRequest::new("gpt-4o", vec![Message::text(Role::User, "Hi")]);
//! let mut request = LlmRequest::chat(RequestContext::new("r1"), chat());
//! request.context.extensions.insert(PresentedKey(Secret::new("lk-app")));
//! assert!(service.clone().oneshot(request).await.is_ok());
//!
//! let stranger = LlmRequest::chat(RequestContext::new("r2"), chat());
//! assert_eq!(service.oneshot(stranger).await.unwrap_err().http_status(), 401);
//! # });
//! ```

mod layer;
mod service;
#[cfg(test)]
mod tests;

pub use layer::AuthLayer;
pub use service::{Auth, AuthenticatedKey};
