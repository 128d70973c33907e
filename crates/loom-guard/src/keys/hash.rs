//! Key hashes and key generation.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::GuardError;

/// SHA-256 of a presented plaintext key: what is stored and compared, never the key itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// The hash of a plaintext key.
    pub fn of(plaintext: &str) -> Self {
        KeyHash(Sha256::digest(plaintext.as_bytes()).into())
    }

    /// Parses 64 lowercase hex characters.
    pub fn from_hex(hex: &str) -> Result<Self, GuardError> {
        let invalid = || GuardError::invalid("key_sha256", "expected 64 lowercase hex characters");
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(invalid());
        }
        let mut hash = [0u8; 32];
        for (byte, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
            *byte =
                (hex_value(pair[0]).ok_or_else(invalid)? << 4) | hex_value(pair[1]).ok_or_else(invalid)?;
        }
        Ok(KeyHash(hash))
    }

    /// The hash as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether two hashes are equal, in time that does not depend on where they differ.
    pub fn constant_time_eq(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix tells keys apart in logs without handing out the whole hash.
        write!(f, "KeyHash({}..)", &self.to_hex()[..8])
    }
}

/// The prefix of every generated key.
pub const KEY_PREFIX: &str = "lk-";

/// A new random key, `lk-` and 43 base64url characters (32 random bytes), with its hash.
///
/// Fails only when the operating system has no randomness to give.
pub fn generate_key() -> Result<(String, KeyHash), GuardError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    let plaintext = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = KeyHash::of(&plaintext);
    Ok((plaintext, hash))
}

/// Fills `out` from the operating system's random source.
pub(crate) fn random_bytes(out: &mut [u8]) -> Result<(), GuardError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| GuardError::Backend("the system random source failed".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_matches_sha256() {
        let hash = KeyHash::of("abc");
        assert_eq!(hash.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(KeyHash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert_eq!(format!("{hash:?}"), "KeyHash(ba7816bf..)");
    }

    #[test]
    fn from_hex_refuses_uppercase_short_and_non_hex() {
        let upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        for bad in [upper, "ba78", &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(
                KeyHash::from_hex(bad),
                Err(GuardError::invalid("key_sha256", "expected 64 lowercase hex characters"))
            );
        }
    }

    #[test]
    fn generated_keys_have_the_documented_shape_and_differ() {
        let (first, first_hash) = generate_key().unwrap();
        let (second, _) = generate_key().unwrap();
        assert!(first.starts_with("lk-") && first.len() == 46, "{first}");
        assert!(first[3..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(first, second);
        assert_eq!(KeyHash::of(&first), first_hash);
        assert!(first_hash.constant_time_eq(&KeyHash::of(&first)));
        assert!(!first_hash.constant_time_eq(&KeyHash::of(&second)));
    }
}
