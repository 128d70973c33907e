//! [`AuthLayer`].

use std::sync::Arc;

use tower::Layer;

use super::service::Auth;
use crate::KeyStore;
use crate::observer::{GuardObserver, NoObserver};

/// Authenticates every request with a virtual key (see the [module docs](super)).
#[derive(Clone)]
pub struct AuthLayer {
    keys: Arc<KeyStore>,
    observer: Arc<dyn GuardObserver>,
}

impl AuthLayer {
    /// A layer checking keys against `keys`.
    pub fn new(keys: Arc<KeyStore>) -> Self {
        AuthLayer { keys, observer: Arc::new(NoObserver) }
    }

    /// Reports refusals to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn GuardObserver>) -> Self {
        self.observer = observer;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, keys: self.keys.clone(), observer: self.observer.clone() }
    }
}
