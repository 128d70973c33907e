//! [`ProviderTokens`]: token counts into provider statistics.

use std::collections::HashMap;
use std::sync::Arc;

use loom_routing::ProviderState;
use loom_tokens::accounting::{UsageObserver, UsageRecord};

/// Adds each request's tokens to its provider's statistics (for `/ai/providers`).
pub struct ProviderTokens {
    by_name: HashMap<String, Arc<ProviderState>>,
}

impl ProviderTokens {
    /// Tracks these providers.
    pub fn new(states: &[Arc<ProviderState>]) -> Self {
        ProviderTokens {
            by_name: states.iter().map(|state| (state.name().to_owned(), state.clone())).collect(),
        }
    }
}

impl UsageObserver for ProviderTokens {
    fn observe(&self, record: &UsageRecord) {
        // A cache hit cost its provider nothing.
        if record.cache_hit {
            return;
        }
        if let Some(state) = record.provider.as_deref().and_then(|name| self.by_name.get(name)) {
            state.add_tokens(record.input_tokens, record.output_tokens);
        }
    }
}
