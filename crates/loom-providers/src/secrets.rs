//! The secrets of one provider, which its errors and logs are scrubbed of: those of its
//! config, key material read at start-up, and the access tokens minted at run time.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock};

use loom_core::Scrubber;

use crate::config::{ProviderConfig, Secret};

/// Minted tokens remembered: the current one and the one before (still valid a while).
const MINTED_KEPT: usize = 2;

/// A provider's secrets and the scrubber built from them; clones share one set.
#[derive(Clone, Default)]
pub struct ProviderSecrets {
    shared: Arc<RwLock<Known>>,
}

#[derive(Default)]
struct Known {
    fixed: Vec<Secret>,
    minted: VecDeque<Secret>,
    scrubber: Scrubber,
}

impl Known {
    fn rebuild(&mut self) {
        let all = self.fixed.iter().chain(&self.minted).map(Secret::expose);
        self.scrubber = Scrubber::new(all);
    }
}

impl ProviderSecrets {
    /// The secrets of a config entry (API key, header values, Vertex access token).
    pub fn from_config(config: &ProviderConfig) -> Self {
        ProviderSecrets::of(config.secrets().cloned())
    }

    /// A set of these secrets.
    pub fn of(secrets: impl IntoIterator<Item = Secret>) -> Self {
        let known = ProviderSecrets::default();
        known.add(secrets);
        known
    }

    /// Adds secrets known for the provider's whole life (e.g. key material).
    pub fn add(&self, secrets: impl IntoIterator<Item = Secret>) {
        let mut known = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        known.fixed.extend(secrets);
        known.rebuild();
    }

    /// Adds a token minted at run time; only the latest few are remembered.
    pub fn add_minted(&self, token: &Secret) {
        let mut known = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        if known.minted.contains(token) {
            return;
        }
        known.minted.push_back(token.clone());
        while known.minted.len() > MINTED_KEPT {
            known.minted.pop_front();
        }
        known.rebuild();
    }

    /// The scrubber of every secret known now.
    pub fn scrubber(&self) -> Scrubber {
        self.shared.read().unwrap_or_else(PoisonError::into_inner).scrubber.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderType;

    #[test]
    fn config_secrets_and_minted_tokens_are_scrubbed() {
        let mut config = ProviderConfig::new("p", ProviderType::Openai);
        config.api_key = Some(Secret::from("key-0123456789"));
        config.headers.insert("x-custom-auth".to_owned(), Secret::from("header-secret-42"));
        let secrets = ProviderSecrets::from_config(&config);
        assert_eq!(secrets.scrubber().scrub("key-0123456789 header-secret-42"), "[redacted] [redacted]");
        for token in ["token-one-1111", "token-two-2222", "token-three-3333"] {
            secrets.add_minted(&Secret::from(token));
        }
        // The oldest token is forgotten; the config's secrets never are.
        assert_eq!(
            secrets.scrubber().scrub("token-one-1111 token-two-2222 token-three-3333 key-0123456789"),
            "token-one-1111 [redacted] [redacted] [redacted]"
        );
    }
}
