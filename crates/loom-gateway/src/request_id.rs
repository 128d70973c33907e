//! Request ids: the client's `x-request-id` when sane, else a fresh unique one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};

/// The header a client's own request id comes in.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
        if let Some(value) = headers.get(REQUEST_ID)
            && let Ok(text) = value.to_str()
            && !text.is_empty()
            && text.len() <= MAX_CLIENT_ID_LEN
            && text.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return text.to_owned();
        }
        let sequence = self.counter.fetch_add(1, Ordering::Relaxed);
        // `req_`, the prefix in 16 hex digits, the sequence in 10 (written by hand: this
        // runs for every request, and `format!` with padding is several times slower).
        let mut id = String::with_capacity(30);
        id.push_str("req_");
        push_hex(&mut id, self.prefix, 16);
        push_hex(&mut id, sequence, 10.max(16 - sequence.leading_zeros() / 4));
        id
    }
}

/// Appends the lowest `digits` hex digits of `value`, zero-padded.
fn push_hex(out: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        let nibble = value.checked_shr(shift * 4).unwrap_or(0) & 0xf;
        out.push(char::from(HEX[nibble as usize]));
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
        let expected = format!("req_{:016x}{:010x}", ids.prefix, 2);
        assert_eq!(ids.for_request(&headers), expected);
        let mut hex = String::new();
        push_hex(&mut hex, u64::MAX, 16 - u64::MAX.leading_zeros() / 4);
        assert_eq!(hex, format!("{:x}", u64::MAX));
        headers.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(ids.for_request(&headers), "abc-123");
        headers.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_ne!(ids.for_request(&headers), "has space");
    }
}
