//! Configuration schema and loading.
