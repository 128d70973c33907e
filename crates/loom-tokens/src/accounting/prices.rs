//! Prices per 1,000 tokens: from config (per provider), an overridable built-in table
//! of well-known models, and the cost of a request. One [`PriceTable`] is shared by
//! the router's `cost` strategy and by billing, so a request is routed and billed by
//! the same price.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

/// USD per 1,000 tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per 1,000 input tokens.
    pub cost_per_1k_input: f64,
    /// Per 1,000 output tokens.
    pub cost_per_1k_output: f64,
    /// Per 1,000 cached input tokens; the input price when unset.
    #[serde(default)]
    pub cost_per_1k_cached_input: Option<f64>,
}

impl Price {
    /// A price with no cached-input discount.
    pub const fn new(cost_per_1k_input: f64, cost_per_1k_output: f64) -> Price {
        Price { cost_per_1k_input, cost_per_1k_output, cost_per_1k_cached_input: None }
    }

    const fn cached(cost_per_1k_input: f64, cost_per_1k_output: f64, cached: f64) -> Price {
        Price { cost_per_1k_input, cost_per_1k_output, cost_per_1k_cached_input: Some(cached) }
    }

    /// The cost of these token counts.
    pub fn cost(&self, input_tokens: u64, cached_tokens: u64, output_tokens: u64) -> f64 {
        let cached = cached_tokens.min(input_tokens);
        let fresh = input_tokens - cached;
        let cached_price = self.cost_per_1k_cached_input.unwrap_or(self.cost_per_1k_input);
        (fresh as f64 * self.cost_per_1k_input
            + cached as f64 * cached_price
            + output_tokens as f64 * self.cost_per_1k_output)
            / 1000.0
    }
}

/// List prices (USD per 1K tokens) of well-known models, matched by longest prefix.
/// Checked against the providers' public price pages in November 2026; override them
/// in config when they change.
const BUILT_IN: &[(&str, Price)] = &[
    ("gpt-5-nano", Price::cached(0.00005, 0.0004, 0.000005)),
    ("gpt-5-mini", Price::cached(0.00025, 0.002, 0.000025)),
    ("gpt-5", Price::cached(0.00125, 0.01, 0.000125)),
    ("gpt-4.1-nano", Price::cached(0.0001, 0.0004, 0.000025)),
    ("gpt-4.1-mini", Price::cached(0.0004, 0.0016, 0.0001)),
    ("gpt-4.1", Price::cached(0.002, 0.008, 0.0005)),
    ("gpt-4o-mini", Price::cached(0.00015, 0.0006, 0.000075)),
    ("gpt-4o", Price::cached(0.0025, 0.01, 0.00125)),
    ("gpt-4-turbo", Price::new(0.01, 0.03)),
    ("gpt-4", Price::new(0.03, 0.06)),
    ("gpt-3.5-turbo", Price::new(0.0005, 0.0015)),
    ("o4-mini", Price::cached(0.0011, 0.0044, 0.000275)),
    ("o3-mini", Price::cached(0.0011, 0.0044, 0.00055)),
    ("o3", Price::cached(0.002, 0.008, 0.0005)),
    ("o1-mini", Price::cached(0.0011, 0.0044, 0.00055)),
    ("o1", Price::cached(0.015, 0.06, 0.0075)),
    ("text-embedding-3-small", Price::new(0.00002, 0.0)),
    ("text-embedding-3-large", Price::new(0.00013, 0.0)),
    ("text-embedding-ada-002", Price::new(0.0001, 0.0)),
    ("claude-opus-4", Price::cached(0.015, 0.075, 0.0015)),
    ("claude-sonnet-4", Price::cached(0.003, 0.015, 0.0003)),
    ("claude-3-7-sonnet", Price::cached(0.003, 0.015, 0.0003)),
    ("claude-3-5-sonnet", Price::cached(0.003, 0.015, 0.0003)),
    ("claude-haiku-4", Price::cached(0.001, 0.005, 0.0001)),
    ("claude-3-5-haiku", Price::cached(0.0008, 0.004, 0.00008)),
    ("claude-3-opus", Price::cached(0.015, 0.075, 0.0015)),
    ("claude-3-haiku", Price::cached(0.00025, 0.00125, 0.00003)),
    ("gemini-2.5-pro", Price::cached(0.00125, 0.01, 0.000125)),
    ("gemini-2.5-flash-lite", Price::cached(0.0001, 0.0004, 0.00001)),
    ("gemini-2.5-flash", Price::cached(0.0003, 0.0025, 0.00003)),
    ("gemini-2.0-flash", Price::cached(0.0001, 0.0004, 0.000025)),
];

/// Where a request's price comes from, in order: the provider's own price, else the
/// price of the model it serves (overrides by longest prefix, then the built-in table).
/// Clones share one table: build it, then hand clones to the router and to billing.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    shared: Arc<Prices>,
}

#[derive(Debug, Clone, Default)]
struct Prices {
    by_provider: HashMap<String, Price>,
    by_model: Vec<(String, Price)>,
}

impl PriceTable {
    /// The built-in table only.
    pub fn new() -> Self {
        PriceTable::default()
    }

    /// Prices every request answered by `provider` (the spec's `cost_per_1k_*`).
    pub fn set_provider_price(&mut self, provider: impl Into<String>, price: Price) {
        Arc::make_mut(&mut self.shared).by_provider.insert(provider.into(), price);
    }

    /// Overrides (or adds) the price of models starting with `model`.
    pub fn set_model_price(&mut self, model: impl Into<String>, price: Price) {
        Arc::make_mut(&mut self.shared).by_model.push((model.into(), price));
    }

    /// The price of `model` served by `provider`, if known.
    pub fn price(&self, provider: Option<&str>, model: &str) -> Option<Price> {
        let prices = &*self.shared;
        if let Some(price) = provider.and_then(|provider| prices.by_provider.get(provider)) {
            return Some(*price);
        }
        let lookup = |table: &mut dyn Iterator<Item = (&str, &Price)>| {
            table
                .filter(|(prefix, _)| model.starts_with(prefix))
                .max_by_key(|(prefix, _)| prefix.len())
                .map(|(_, price)| *price)
        };
        lookup(&mut prices.by_model.iter().map(|(prefix, price)| (prefix.as_str(), price)))
            .or_else(|| lookup(&mut BUILT_IN.iter().map(|(prefix, price)| (*prefix, price))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_price_wins_then_override_then_built_in() {
        let mut table = PriceTable::new();
        assert_eq!(
            table.price(None, "gpt-4o-mini-2024-07-18"),
            Some(Price::cached(0.00015, 0.0006, 0.000075))
        );
        assert_eq!(table.price(None, "gpt-4o-2024-08-06"), Some(Price::cached(0.0025, 0.01, 0.00125)));
        assert_eq!(table.price(None, "my-local-llama"), None);
        table.set_model_price("gpt-4o", Price::new(1.0, 2.0));
        assert_eq!(table.price(None, "gpt-4o-2024-08-06"), Some(Price::new(1.0, 2.0)));
        table.set_provider_price("openai", Price::new(0.01, 0.03));
        assert_eq!(table.price(Some("openai"), "gpt-4o"), Some(Price::new(0.01, 0.03)));
        assert_eq!(table.price(Some("other"), "gpt-4o"), Some(Price::new(1.0, 2.0)), "no price of its own");
    }

    #[test]
    fn clones_read_the_prices_set_before_they_were_made() {
        let mut table = PriceTable::new();
        table.set_provider_price("openai", Price::new(0.01, 0.03));
        let shared = table.clone();
        assert_eq!(shared.price(Some("openai"), "x"), Some(Price::new(0.01, 0.03)));
        // A later change is the changer's own: clones handed out never see prices move.
        table.set_provider_price("openai", Price::new(1.0, 1.0));
        assert_eq!(shared.price(Some("openai"), "x"), Some(Price::new(0.01, 0.03)));
    }

    #[test]
    fn cost_counts_cached_input_at_its_price() {
        let price = Price::cached(0.002, 0.008, 0.0005);
        let cost = price.cost(1000, 400, 500);
        assert!((cost - (600.0 * 0.002 + 400.0 * 0.0005 + 500.0 * 0.008) / 1000.0).abs() < 1e-12);
        assert_eq!(Price::new(0.01, 0.03).cost(1000, 0, 1000), 0.04);
    }
}
