//! TEMPORARY: counting arrives from the tokens branch.
pub mod accounting;
/// Stand-in.
pub struct Estimate {
    pub tokens: usize,
    pub exact: bool,
}
/// Stand-in.
pub fn count_chat(_m: &str, c: &loom_core::ChatRequest) -> Estimate {
    Estimate { tokens: c.messages.len() * 4, exact: false }
}
/// Stand-in.
pub fn count_text(_m: &str, t: &str) -> Estimate {
    Estimate { tokens: t.split_whitespace().count(), exact: false }
}
