//! `GET /ai/cache` (entries, memory, lookups and hit rate) and `DELETE /ai/cache` (every
//! entry, or those of `?namespace=` and/or `?model=`).

use http::StatusCode;
use loom_cache::ResponseCache;
use serde_json::json;

use super::Reply;
use super::error::ApiError;

/// Longest `namespace` or `model` a query may name.
const MAX_VALUE_BYTES: usize = 256;

/// Answers `GET /ai/cache`.
pub(crate) fn stats(cache: Option<&ResponseCache>) -> Reply {
    match cache {
        Some(cache) => {
            let stats = cache.stats();
            Reply::json(
                StatusCode::OK,
                json!({"enabled": true, "namespace": cache.config().namespace.as_str(), "stats": stats}),
            )
        }
        None => Reply::json(StatusCode::OK, json!({"enabled": false})),
    }
}

/// Answers `DELETE /ai/cache[?namespace=&model=]`: `deleted` counts this instance's
/// entries, `deleted_shared` the shared store's (absent without one, or when it failed).
pub(crate) async fn clear(cache: Option<&ResponseCache>, query: &str) -> Result<Reply, ApiError> {
    let (namespace, model) = parse_query(query)?;
    let Some(cache) = cache else { return Ok(Reply::json(StatusCode::OK, json!({"deleted": 0}))) };
    match cache.clear(namespace.as_deref(), model.as_deref()).await {
        (deleted, None) => Ok(Reply::json(StatusCode::OK, json!({"deleted": deleted}))),
        (deleted, Some(shared)) => {
            Ok(Reply::json(StatusCode::OK, json!({"deleted": deleted, "deleted_shared": shared})))
        }
    }
}

fn parse_query(query: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    let (mut namespace, mut model) = (None, None);
    for (name, given) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "namespace" => &mut namespace,
            "model" => &mut model,
            _ => return Err(ApiError::invalid("query", "only `namespace` and `model` are accepted")),
        };
        if slot.is_some() {
            return Err(ApiError::invalid(name.as_ref(), format!("`{name}` is given more than once")));
        }
        if given.is_empty() || given.len() > MAX_VALUE_BYTES {
            return Err(ApiError::invalid(
                name.as_ref(),
                format!("`{name}` must be 1 to {MAX_VALUE_BYTES} bytes"),
            ));
        }
        *slot = Some(given.into_owned());
    }
    Ok((namespace, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_a_namespace_a_model_or_both() {
        assert_eq!(parse_query("").unwrap(), (None, None));
        assert_eq!(
            parse_query("namespace=key%3Ak-1&model=gpt-4o").unwrap(),
            (Some("key:k-1".into()), Some("gpt-4o".into()))
        );
        assert!(parse_query("model=a&model=b").is_err());
        assert!(parse_query("team=x").is_err());
        assert!(parse_query("model=").is_err());
    }
}
