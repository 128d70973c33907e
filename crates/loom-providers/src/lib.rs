//! # loom-providers
//!
//! Provider adapters.

pub mod config;

pub use config::{MockSettings, ProviderConfig, ProviderType, Secret, Timeouts, WireFormat};
