//! Reading an admin request's JSON body: bounded in size and time, errors naming the field.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest admin request body.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time a whole admin request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the whole body: 413 past [`MAX_BODY_BYTES`], 408 past [`BODY_TIMEOUT`].
pub(crate) async fn read_bounded<B>(request: http::Request<B>) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(request.into_body(), MAX_BODY_BYTES);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(error)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("could not read the request body: {error}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body did not arrive within {} seconds", BODY_TIMEOUT.as_secs()),
        )),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("admin request bodies are limited to {MAX_BODY_BYTES} bytes"),
    )
}

/// Parses `bytes` as a `T`: 400 with `param` set to the path of the offending field
/// (`limits[0].scope`), or `body` when the JSON itself is malformed.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        json_error(error.into_inner(), (path != ".").then_some(path))
    })?;
    deserializer.end().map_err(|error| json_error(error, None))?;
    Ok(parsed)
}

/// A 400 naming `path` for a value of the wrong shape, or `body` for broken JSON.
fn json_error(error: serde_json::Error, path: Option<String>) -> ApiError {
    match path {
        Some(path) if error.is_data() => ApiError::invalid(path.clone(), format!("{path}: {error}")),
        _ if error.is_data() => ApiError::invalid("body", error.to_string()),
        _ => ApiError::invalid("body", format!("the body is not valid JSON: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        items: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        count: u32,
    }

    fn error_of(json: &str) -> (String, String) {
        let error = parse_json::<Outer>(json.as_bytes()).unwrap_err();
        (error.param.unwrap(), error.message)
    }

    #[test]
    fn errors_name_the_field_path() {
        assert_eq!(parse_json::<Outer>(br#"{"items":[{"count":2}]}"#).unwrap().items, [Inner { count: 2 }]);
        let (param, message) = error_of(r#"{"items":[{"count":1},{"count":"x"}]}"#);
        assert_eq!(param, "items[1].count");
        assert!(message.starts_with("items[1].count: invalid type: string \"x\""), "{message}");
        let (param, message) = error_of(r#"{"itemz":[]}"#);
        assert_eq!(param, "itemz");
        assert!(message.contains("unknown field `itemz`"), "{message}");
        let (param, message) = error_of(r#"{"items":[{"count":1}]} trailing"#);
        assert_eq!(param, "body");
        assert!(message.starts_with("the body is not valid JSON: trailing characters"), "{message}");
        assert_eq!(
            error_of(r#""text""#),
            (
                "body".to_owned(),
                "invalid type: string \"text\", expected struct Outer at line 1 column 6".to_owned()
            )
        );
    }

    #[tokio::test]
    async fn bodies_are_bounded() {
        let small = http::Request::new(Full::new(Bytes::from_static(b"{}")));
        assert_eq!(read_bounded(small).await.unwrap(), Bytes::from_static(b"{}"));
        let big = http::Request::new(Full::new(Bytes::from(vec![b' '; MAX_BODY_BYTES + 1])));
        assert_eq!(read_bounded(big).await.unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        let declared =
            http::Request::builder().header(CONTENT_LENGTH, "1000000").body(Full::new(Bytes::new())).unwrap();
        assert_eq!(read_bounded(declared).await.unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
