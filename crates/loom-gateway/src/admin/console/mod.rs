//! The console: one self-contained page on the admin port (`GET /`, with `/console.js` and
//! `/console.css`), embedded in the binary. The page holds no data: it asks for the admin key
//! when one is configured and reads the admin API with it, so an unauthenticated visitor
//! sees a sign-in form and nothing else.
//!
//! `GET /console/session` tells the page whether the key it holds (if any) is accepted,
//! always with a 200, so a visitor who has not signed in sees no failed request.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::access::check_admin_key;
use super::{AdminState, Reply};

/// The path of the page's session check.
pub(crate) const SESSION_PATH: &str = "/console/session";

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// Only the page's own files; no inline script, no other origin, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console file at `path`, if it is one (served without the admin key: it holds no data).
pub(crate) fn asset(path: &str) -> Option<Reply> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX),
        "/console.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/console.css" => ("text/css; charset=utf-8", STYLE),
        _ => return None,
    };
    let mut reply = Reply::bytes(StatusCode::OK, content_type, Bytes::from_static(body.as_bytes()));
    reply.headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    reply.headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    reply.headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    reply.headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(reply)
}

/// `GET /console/session`: whether an admin key is needed and whether `headers` carry it;
/// what the admin API offers (virtual keys) only to a caller that may use it.
pub(crate) fn session(state: &AdminState, headers: &HeaderMap) -> Reply {
    let admin_key = state.guard.as_ref().and_then(|guard| guard.admin_key.as_ref());
    let signed_in = check_admin_key(admin_key, headers).is_ok();
    let keys = signed_in && state.guard.as_ref().is_some_and(|guard| guard.keys.is_some());
    let mut reply = Reply::json(
        StatusCode::OK,
        json!({"admin_key_required": admin_key.is_some(), "signed_in": signed_in, "keys": keys}),
    );
    reply.headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_small_and_self_contained() {
        let total = INDEX.len() + SCRIPT.len() + STYLE.len();
        assert!(total < 100 * 1024, "the console takes {total} bytes");
        for file in [INDEX, SCRIPT, STYLE] {
            // The SVG namespace is a name, never fetched.
            let file = file.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(!file.contains("http://") && !file.contains("https://"), "no other origin");
        }
        assert!(INDEX.contains(r#"<script src="/console.js" defer></script>"#));
        assert!(asset("/").is_some() && asset("/console.js").is_some() && asset("/metrics").is_none());
    }
}
