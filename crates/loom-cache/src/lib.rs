//! loom-cache
