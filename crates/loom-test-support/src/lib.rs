//! Mock upstream servers for tests.
