//! The layer of [`ScrubErrors`].

use loom_core::Scrubber;
use loom_providers::ProviderConfig;
use tower::Layer;

use super::ScrubErrors;

/// Scrubs errors (returned, and inside chunk streams) of the secrets of every provider.
#[derive(Clone, Debug)]
pub struct ScrubErrorsLayer {
    scrubber: Scrubber,
}

impl ScrubErrorsLayer {
    /// A layer removing `scrubber`'s secrets.
    pub fn new(scrubber: Scrubber) -> Self {
        ScrubErrorsLayer { scrubber }
    }

    /// A layer removing every secret of these providers' configs.
    pub fn for_providers(providers: &[ProviderConfig]) -> Self {
        let secrets = providers.iter().flat_map(ProviderConfig::secrets);
        ScrubErrorsLayer::new(Scrubber::new(secrets.map(|secret| secret.expose())))
    }
}

impl<S> Layer<S> for ScrubErrorsLayer {
    type Service = ScrubErrors<S>;

    fn layer(&self, inner: S) -> ScrubErrors<S> {
        ScrubErrors::new(inner, self.scrubber.clone())
    }
}
