//! # loom-gateway
//!
//! Loom's HTTP edge.

pub mod config;
