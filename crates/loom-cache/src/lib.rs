//! # loom-cache
//!
//! loom-cache
pub mod eval;
pub mod same_question;

pub use same_question::{Difference, Verdict, same_question};

/// Default similarity threshold.
pub const DEFAULT_SIMILARITY_THRESHOLD: f32 = 0.85;
