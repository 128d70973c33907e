//! Authentication: identity from the key, refusals with their codes.

use std::sync::{Arc, Mutex};

use loom_core::{
    ChatRequest, Identity, LlmRequest, LlmResponse, LoomError, Message, PresentedKey, RequestContext,
    ResponsePayload, Role, Secret,
};
use tower::{Layer, ServiceExt};

use super::AuthLayer;
use crate::{AuthConfig, GuardState, KeyConfig, KeyStore, Timestamp};

fn keys() -> Arc<KeyStore> {
    let key = |id: &str, allow: bool| KeyConfig {
        id: id.into(),
        key: Some(Secret::new(format!("lk-{id}"))),
        user: Some("ann".into()),
        team: Some("web".into()),
        models: vec!["gpt-4o*".into()],
        allow_identity_headers: allow,
        ..KeyConfig::default()
    };
    let expired =
        KeyConfig { expires_at: Some(Timestamp(std::time::SystemTime::UNIX_EPOCH)), ..key("old", false) };
    let auth = AuthConfig {
        enabled: true,
        keys: vec![key("strict", false), key("trusted", true), expired],
        admin_key: None,
    };
    Arc::new(KeyStore::new(&auth, &GuardState::memory(100)).unwrap())
}

/// Sends a request presenting `key`, claiming `user`; the identity the backend saw, or the error.
async fn identity_seen(
    keys: &Arc<KeyStore>,
    key: &str,
    model: &str,
    user: Option<&str>,
) -> Result<Identity, LoomError> {
    let seen = Arc::new(Mutex::new(None));
    let recorded = seen.clone();
    let backend = tower::service_fn(move |request: LlmRequest| {
        assert!(request.context.extensions.get::<PresentedKey>().is_none(), "the secret does not travel on");
        *recorded.lock().unwrap() = Some(request.context.identity.clone());
        async {
            let answer: loom_core::ChatResponse =
                serde_json::from_str(r#"{"id":"c","model":"m","choices":[]}"#).unwrap();
            Ok::<_, LoomError>(LlmResponse::new("p", ResponsePayload::Chat(answer.into())))
        }
    });
    let mut request = LlmRequest::chat(
        RequestContext::new("r"),
        ChatRequest::new(model, vec![Message::text(Role::User, "Hi")]),
    );
    request.context.identity.user = user.map(Arc::from);
    request.context.identity.team = Some("claimed-team".into());
    request.context.extensions.insert(PresentedKey(Secret::new(key)));
    AuthLayer::new(keys.clone()).layer(backend).oneshot(request).await?;
    let identity = seen.lock().unwrap().take().unwrap();
    Ok(identity)
}

fn refusal(result: Result<Identity, LoomError>) -> (u16, String) {
    let error = result.unwrap_err();
    (error.http_status(), error.code.unwrap_or_default())
}

#[tokio::test]
async fn identity_comes_from_the_key_unless_it_may_be_claimed() {
    let keys = keys();
    let strict = identity_seen(&keys, "lk-strict", "gpt-4o", Some("mallory")).await.unwrap();
    assert_eq!(
        (strict.key_id.as_deref(), strict.user.as_deref(), strict.team.as_deref()),
        (Some("strict"), Some("ann"), Some("web"))
    );
    let trusted = identity_seen(&keys, "lk-trusted", "gpt-4o", Some("bob")).await.unwrap();
    assert_eq!((trusted.user.as_deref(), trusted.team.as_deref()), (Some("bob"), Some("claimed-team")));
    let unclaimed = identity_seen(&keys, "lk-trusted", "gpt-4o", None).await.unwrap();
    assert_eq!(unclaimed.user.as_deref(), Some("ann"));
}

#[tokio::test]
async fn unknown_expired_revoked_keys_and_other_models_are_refused_with_their_codes() {
    let keys = keys();
    assert_eq!(
        refusal(identity_seen(&keys, "lk-nobody", "gpt-4o", None).await),
        (401, "invalid_api_key".into())
    );
    assert_eq!(
        refusal(identity_seen(&keys, "lk-old", "gpt-4o", None).await),
        (401, "expired_api_key".into())
    );
    assert_eq!(
        refusal(identity_seen(&keys, "lk-strict", "claude-3", None).await),
        (403, "model_not_allowed".into())
    );
    let (plaintext, created) =
        keys.create(serde_json::from_str(r#"{"name":"temp"}"#).unwrap()).await.unwrap();
    assert!(identity_seen(&keys, &plaintext, "any-model", None).await.is_ok());
    keys.revoke(&created.id).await.unwrap();
    assert_eq!(
        refusal(identity_seen(&keys, &plaintext, "any-model", None).await),
        (401, "revoked_api_key".into())
    );
}
