//! Virtual keys: their hashes, their records and the store that looks them up.

mod hash;
mod record;
mod store;

pub(crate) use self::hash::random_bytes;
pub use self::hash::{KEY_PREFIX, KeyHash, generate_key};
pub use self::record::{KeyPatch, KeySource, NewKey, VirtualKey};
pub use self::store::{DEFAULT_REFRESH_INTERVAL, KeyStore, Lookup};
