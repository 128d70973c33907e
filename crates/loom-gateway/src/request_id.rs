//! Request ids: the client's `x-request-id` when sane, else a fresh unique one.

use std::collections::hash_map::RandomState;
use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// Longest client-supplied request id Loom adopts.
const MAX_CLIENT_ID_LEN: usize = 128;

/// Generates process-unique ids with a random per-process prefix.
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

impl RequestIds {
    /// A generator with a fresh random prefix.
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        let nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_nanos()).unwrap_or(0);
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        RequestIds { prefix: hasher.finish(), counter: AtomicU64::new(0) }
    }

    /// The client's id if it is short printable ASCII, else a new one.
    pub fn for_request(&self, headers: &HeaderMap) -> String {
        if let Some(value) = headers.get("x-request-id")
            && let Ok(text) = value.to_str()
            && !text.is_empty()
            && text.len() <= MAX_CLIENT_ID_LEN
            && text.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return text.to_owned();
        }
        let sequence = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(30);
        // Writing into a String cannot fail.
        let _ = write!(id, "req_{:016x}{:010x}", self.prefix, sequence);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn adopts_sane_client_ids_and_generates_unique_ones() {
        let ids = RequestIds::new();
        let mut headers = HeaderMap::new();
        let first = ids.for_request(&headers);
        assert_ne!(first, ids.for_request(&headers));
        assert!(first.starts_with("req_") && first.len() == 30, "{first}");
        headers.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(ids.for_request(&headers), "abc-123");
        headers.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_ne!(ids.for_request(&headers), "has space");
    }
}
