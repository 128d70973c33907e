//! `/ai/keys`: create, list, show, change and revoke virtual keys.

use http::header::{HeaderValue, LOCATION};
use http::{Method, StatusCode};
use loom_guard::{GuardError, KeyPatch, KeyStore, NewKey, VirtualKey};
use serde_json::{Value, json};

use super::Reply;
use super::error::ApiError;
use super::json_body::parse_json;

/// Longest key id a path may name.
const MAX_ID_BYTES: usize = 128;

/// Which key endpoint a path names.
pub(crate) enum KeysPath<'a> {
    /// `/ai/keys`.
    Collection,
    /// `/ai/keys/{id}`.
    One(&'a str),
}

impl<'a> KeysPath<'a> {
    /// The key endpoint `path` names, if any.
    pub(crate) fn parse(path: &'a str) -> Option<Self> {
        match path.strip_prefix("/ai/keys")? {
            "" | "/" => Some(KeysPath::Collection),
            rest => rest.strip_prefix('/').map(KeysPath::One),
        }
    }

    /// The methods the endpoint takes, for a 405.
    pub(crate) fn allowed(&self) -> &'static str {
        match self {
            KeysPath::Collection => "GET or POST",
            KeysPath::One(_) => "GET, PATCH or DELETE",
        }
    }

    /// Whether the endpoint reads a JSON body for `method`.
    pub(crate) fn takes_body(&self, method: &Method) -> bool {
        matches!((self, method), (KeysPath::Collection, &Method::POST) | (KeysPath::One(_), &Method::PATCH))
    }
}

/// Answers a key request (`body` is read only for POST and PATCH); `None` when the method
/// does not fit the path.
pub(crate) async fn handle_keys(
    keys: &KeyStore,
    path: &KeysPath<'_>,
    method: &Method,
    body: &[u8],
) -> Option<Result<Reply, ApiError>> {
    let answer = match (path, method) {
        (KeysPath::Collection, &Method::GET) => Ok(list(keys)),
        (KeysPath::Collection, &Method::POST) => create(keys, body).await,
        (KeysPath::One(id), &Method::GET) => match checked_id(id) {
            Ok(id) => keys
                .get(id)
                .map(|key| Reply::json(StatusCode::OK, key_json(&key)))
                .ok_or_else(|| ApiError::from(GuardError::NotFound(id.to_owned()))),
            Err(error) => Err(error),
        },
        (KeysPath::One(id), &Method::PATCH) => update(keys, id, body).await,
        (KeysPath::One(id), &Method::DELETE) => revoke(keys, id).await,
        _ => return None,
    };
    Some(answer)
}

fn list(keys: &KeyStore) -> Reply {
    let data: Vec<Value> = keys.list().iter().map(|key| key_json(key)).collect();
    Reply::json(StatusCode::OK, json!({"data": data}))
}

async fn create(keys: &KeyStore, body: &[u8]) -> Result<Reply, ApiError> {
    let new: NewKey = parse_json(body)?;
    // Validated here so that a later `Invalid` on `id` can only mean a duplicate.
    new.validate()?;
    if let Some(id) = &new.id
        && keys.get(id).is_some()
    {
        return Err(duplicate(id));
    }
    let requested_id = new.id.clone();
    let (plaintext, key) = keys.create(new).await.map_err(|error| match (error, &requested_id) {
        (GuardError::Invalid { field, .. }, Some(id)) if field == "id" => duplicate(id),
        (error, _) => ApiError::from(error),
    })?;
    let mut body = key_json(&key);
    if let Value::Object(fields) = &mut body {
        fields.insert("key".to_owned(), Value::String(plaintext));
    }
    let mut reply = Reply::json(StatusCode::CREATED, body);
    // Ids are validated (no whitespace, control characters or `/`); an id that is not a
    // valid header value just goes without a Location.
    if let Ok(location) = HeaderValue::from_str(&format!("/ai/keys/{}", key.id)) {
        reply.headers.insert(LOCATION, location);
    }
    Ok(reply)
}

async fn update(keys: &KeyStore, id: &str, body: &[u8]) -> Result<Reply, ApiError> {
    let id = checked_id(id)?;
    let patch: KeyPatch = parse_json(body)?;
    let key = keys.update(id, patch).await?;
    Ok(Reply::json(StatusCode::OK, key_json(&key)))
}

async fn revoke(keys: &KeyStore, id: &str) -> Result<Reply, ApiError> {
    let id = checked_id(id)?;
    keys.revoke(id).await?;
    Ok(Reply::json(StatusCode::OK, json!({"id": id, "revoked": true})))
}

/// A key's public JSON: never its plaintext or hash (`VirtualKey` serializes neither).
fn key_json(key: &VirtualKey) -> Value {
    serde_json::to_value(key).unwrap_or(Value::Null)
}

fn duplicate(id: &str) -> ApiError {
    ApiError {
        param: Some("id".to_owned()),
        ..ApiError::new(StatusCode::CONFLICT, "key_exists", format!("a key with id `{id}` exists"))
    }
}

/// The id of `/ai/keys/{id}`: not empty, at most [`MAX_ID_BYTES`], without `/`.
fn checked_id(id: &str) -> Result<&str, ApiError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.contains('/') {
        return Err(ApiError::invalid(
            "id",
            format!("a key id in the path must be 1 to {MAX_ID_BYTES} bytes without `/`"),
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use loom_guard::{AuthConfig, GuardState, KeyConfig};

    use super::*;

    fn store() -> KeyStore {
        let auth = AuthConfig {
            enabled: true,
            keys: vec![KeyConfig {
                id: "ops".to_owned(),
                key: Some(loom_core::Secret::new("lk-ops-secret")),
                ..KeyConfig::default()
            }],
            admin_key: None,
        };
        KeyStore::new(&auth, &GuardState::memory(1000)).unwrap()
    }

    async fn call(keys: &KeyStore, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let path = KeysPath::parse(path).unwrap();
        let reply = match handle_keys(keys, &path, &method, body.as_bytes()).await.unwrap() {
            Ok(reply) => reply,
            Err(error) => Reply::error(&error),
        };
        (reply.status, serde_json::from_slice(&reply.body).unwrap())
    }

    #[test]
    fn paths_name_the_collection_or_one_key() {
        assert!(matches!(KeysPath::parse("/ai/keys"), Some(KeysPath::Collection)));
        assert!(matches!(KeysPath::parse("/ai/keys/"), Some(KeysPath::Collection)));
        assert!(matches!(KeysPath::parse("/ai/keys/a/b"), Some(KeysPath::One("a/b"))));
        assert!(KeysPath::parse("/ai/keysx").is_none());
        assert!(KeysPath::parse("/ai/key").is_none());
    }

    #[tokio::test]
    async fn created_keys_show_their_plaintext_once() {
        let keys = store();
        let (status, created) = call(&keys, Method::POST, "/ai/keys", r#"{"id":"k1","team":"web"}"#).await;
        assert_eq!(status, StatusCode::CREATED);
        let plaintext = created["key"].as_str().unwrap().to_owned();
        assert!(plaintext.starts_with("lk-"), "{plaintext}");
        assert_eq!(
            (&created["id"], &created["team"], &created["source"]),
            (&json!("k1"), &json!("web"), &json!("api"))
        );
        let (status, shown) = call(&keys, Method::GET, "/ai/keys/k1", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(shown.get("key").is_none());
        let (_, listed) = call(&keys, Method::GET, "/ai/keys", "").await;
        assert!(!listed.to_string().contains(&plaintext));
        let ids: Vec<&Value> = listed["data"].as_array().unwrap().iter().map(|key| &key["id"]).collect();
        assert_eq!(ids, [&json!("k1"), &json!("ops")]);
    }

    #[tokio::test]
    async fn conflicts_and_bad_ids_are_refused() {
        let keys = store();
        call(&keys, Method::POST, "/ai/keys", r#"{"id":"k1"}"#).await;
        for id in ["k1", "ops"] {
            let (status, body) = call(&keys, Method::POST, "/ai/keys", &format!(r#"{{"id":"{id}"}}"#)).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (StatusCode::CONFLICT, &json!("key_exists")),
                "{id}"
            );
        }
        let (status, body) = call(&keys, Method::POST, "/ai/keys", r#"{"id":"a b"}"#).await;
        assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("id")));
        let long = format!("/ai/keys/{}", "x".repeat(129));
        for path in [long.as_str(), "/ai/keys/a/b"] {
            let (status, body) = call(&keys, Method::DELETE, path, "").await;
            assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("id")), "{path}");
        }
        let (status, body) = call(&keys, Method::DELETE, "/ai/keys/nope", "").await;
        assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("key_not_found")));
    }

    #[tokio::test]
    async fn revoking_is_idempotent_and_config_keys_are_read_only() {
        let keys = store();
        call(&keys, Method::POST, "/ai/keys", r#"{"id":"k1"}"#).await;
        for _ in 0..2 {
            assert_eq!(
                call(&keys, Method::DELETE, "/ai/keys/k1", "").await,
                (StatusCode::OK, json!({"id": "k1", "revoked": true}))
            );
        }
        assert_eq!(call(&keys, Method::GET, "/ai/keys/k1", "").await.1["revoked"], json!(true));
        for (method, body) in [(Method::PATCH, r#"{"name":"x"}"#), (Method::DELETE, "")] {
            let (status, error) = call(&keys, method, "/ai/keys/ops", body).await;
            assert_eq!((status, &error["error"]["code"]), (StatusCode::CONFLICT, &json!("read_only_key")));
        }
    }
}
