//! The admin API's errors, as OpenAI-style `{"error": {...}}` JSON.

use bytes::Bytes;
use http::StatusCode;
use loom_guard::GuardError;
use serde_json::json;
use tracing::warn;

/// An admin request's failure: its status, machine-readable code, message and parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
}

impl ApiError {
    /// An error without a parameter.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), param: None }
    }

    /// A 400 `invalid_parameter` naming `param`.
    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
        }
    }

    /// A 404 for a path the admin API does not serve.
    pub(crate) fn unknown_path() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_url",
            "unknown admin path; try /health, /metrics, /ai/providers, /ai/usage, /ai/keys, /ai/budgets or /ai/guard/scan",
        )
    }

    /// A 405 naming the methods the path takes.
    pub(crate) fn method_not_allowed(allowed: &str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("use {allowed}"))
    }

    /// A 500 whose message is safe to show (no secrets, no paths of the host).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Bytes {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::REQUEST_TIMEOUT => "timeout_error",
            StatusCode::SERVICE_UNAVAILABLE => "overloaded_error",
            status if status.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        let body = json!({"error": {
            "message": self.message,
            "type": kind,
            "param": self.param,
            "code": self.code,
        }});
        Bytes::from(body.to_string())
    }
}

impl From<GuardError> for ApiError {
    fn from(error: GuardError) -> Self {
        match error {
            GuardError::Invalid { field, message } => {
                ApiError::invalid(field.clone(), format!("{field}: {message}"))
            }
            GuardError::NotFound(id) => {
                ApiError::new(StatusCode::NOT_FOUND, "key_not_found", format!("no key with id `{id}`"))
            }
            GuardError::ReadOnlyKey(id) => ApiError::new(
                StatusCode::CONFLICT,
                "read_only_key",
                format!("key `{id}` comes from the configuration file and cannot be changed at run time"),
            ),
            GuardError::Backend(detail) => {
                // The detail stays in the log: the client learns only that the backend failed.
                warn!(error = %detail, "admin API: the state backend failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "state_unavailable",
                    "the state backend (ai_gateway.state) is unavailable; try again",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(error: ApiError) -> (StatusCode, serde_json::Value) {
        (error.status, serde_json::from_slice(&error.body()).unwrap())
    }

    #[test]
    fn guard_errors_map_to_statuses_and_codes() {
        assert_eq!(
            json(GuardError::invalid("limits[0]", "needs a rate").into()),
            (
                StatusCode::BAD_REQUEST,
                json!({"error": {"message": "limits[0]: needs a rate", "type": "invalid_request_error",
                    "param": "limits[0]", "code": "invalid_parameter"}})
            )
        );
        assert_eq!(
            json(GuardError::NotFound("k1".to_owned()).into()),
            (
                StatusCode::NOT_FOUND,
                json!({"error": {"message": "no key with id `k1`", "type": "invalid_request_error",
                    "param": null, "code": "key_not_found"}})
            )
        );
        let (status, body) = json(GuardError::ReadOnlyKey("ops".to_owned()).into());
        assert_eq!((status, &body["error"]["code"]), (StatusCode::CONFLICT, &json!("read_only_key")));
    }

    #[test]
    fn backend_errors_hide_their_detail() {
        let error: ApiError = GuardError::Backend("redis://:hunter2@10.0.0.5 refused".to_owned()).into();
        assert_eq!(
            json(error),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"message": "the state backend (ai_gateway.state) is unavailable; try again",
                    "type": "overloaded_error", "param": null, "code": "state_unavailable"}})
            )
        );
    }
}
