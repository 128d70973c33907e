//! The admin key (`ai_gateway.auth.admin_key`): who may use the admin API.

use http::HeaderMap;
use http::StatusCode;
use http::header::AUTHORIZATION;
use loom_core::Secret;
use loom_guard::KeyHash;

use super::error::ApiError;

/// Checks the admin key presented in `headers` (`Authorization: Bearer` or `x-api-key`)
/// against `admin_key`; no admin key configured lets everyone in. The hashes are compared
/// in constant time, so the answer's timing does not tell how much of a guess was right.
pub(crate) fn check_admin_key(admin_key: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(admin_key) = admin_key else { return Ok(()) };
    let presented = presented_key(headers);
    let expected = KeyHash::of(admin_key.expose());
    // A missing key is compared too (as the empty string, which is never an admin key).
    let matches = KeyHash::of(presented.unwrap_or_default()).constant_time_eq(&expected);
    if matches && presented.is_some() {
        return Ok(());
    }
    let message = if presented.is_some() {
        "invalid admin key"
    } else {
        "this admin endpoint needs the admin key (ai_gateway.auth.admin_key) in `Authorization: Bearer` or `x-api-key`"
    };
    Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_admin_key", message))
}

/// The key in `Authorization: Bearer <key>`, else in `x-api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|value| value.to_str().ok()).map(str::trim))
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_key_is_taken_from_bearer_or_x_api_key() {
        let key = Secret::new("adm-secret");
        for good in [
            headers(&[("authorization", "Bearer adm-secret")]),
            headers(&[("authorization", "bearer adm-secret")]),
            headers(&[("x-api-key", "adm-secret")]),
        ] {
            assert_eq!(check_admin_key(Some(&key), &good), Ok(()), "{good:?}");
        }
        for bad in [
            headers(&[]),
            headers(&[("authorization", "Bearer adm-secre")]),
            headers(&[("authorization", "Basic adm-secret")]),
            headers(&[("authorization", "Bearer ")]),
            headers(&[("x-api-key", "ADM-SECRET")]),
        ] {
            let error = check_admin_key(Some(&key), &bad).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (StatusCode::UNAUTHORIZED, "invalid_admin_key"),
                "{bad:?}"
            );
            assert!(!error.message.contains("adm-secret"));
        }
    }

    #[test]
    fn without_an_admin_key_everyone_may_enter() {
        assert_eq!(check_admin_key(None, &headers(&[])), Ok(()));
    }
}
