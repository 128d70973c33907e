//! Security checks on what the model will read and write: normalisation (so that an
//! encoded attack is seen as what it says), and the detectors built on it.

pub mod features;
pub mod injection;
pub mod linear;
pub mod normalize;
pub mod pii;
pub mod redact;
pub mod rules;
pub mod semantic;
pub mod stream_redact;
