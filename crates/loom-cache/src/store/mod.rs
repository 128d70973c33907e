//! Where entries are kept.

pub mod memory;
