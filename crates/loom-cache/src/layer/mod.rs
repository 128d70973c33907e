//! [`CacheLayer`]: answers a request from the [`ResponseCache`](crate::ResponseCache) when
//! it can, and stores good answers of the provider when it cannot.
//!
//! For a chat request on a route where caching is on:
//!
//! 1. a client that sent `x-loom-cache: bypass`, or a request that is not cacheable (a
//!    `temperature` above 0 where the route does not allow it, a Responses API request),
//!    goes straight on (`x-loom-cache: bypass`);
//! 2. unless the client sent `Cache-Control: no-cache`, the exact entry of the request is
//!    served (`x-loom-cache: hit`), whole or as a stream, in the client's format (the
//!    front door writes it), with a fresh id;
//! 3. otherwise the provider answers (`x-loom-cache: miss`); a complete answer that
//!    stopped on its own is stored, unless the client sent `Cache-Control: no-store`. A
//!    streamed answer is stored when its stream ends, from the chunks the client got:
//!    the client's stream is never held back.
//!
//! ```
//! use std::sync::Arc;
//! use loom_cache::{CacheConfig, CacheLayer, ResponseCache};
//! use loom_core::{LlmRequest, LlmResponse, LoomError};
//! use tower::{ServiceBuilder, service_fn};
//!
//! let cache = Arc::new(ResponseCache::new(&CacheConfig { enabled: true, ..CacheConfig::default() }, []));
//! let provider = service_fn(|_request: LlmRequest| async {
//!     Err::<LlmResponse, _>(LoomError::internal("no provider in this example"))
//! });
//! let service = ServiceBuilder::new().layer(CacheLayer::new(cache)).service(provider);
//! # let _ = service;
//! ```

mod service;
mod stream;

use std::sync::Arc;

use tower::Layer;

pub use service::CacheService;

use crate::cache::ResponseCache;

/// The layer that puts a [`ResponseCache`] in front of a service.
#[derive(Clone)]
pub struct CacheLayer {
    cache: Arc<ResponseCache>,
}

impl CacheLayer {
    /// A layer serving from and storing into `cache`.
    pub fn new(cache: Arc<ResponseCache>) -> CacheLayer {
        CacheLayer { cache }
    }

    /// The cache (for the admin API).
    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.cache
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> CacheService<S> {
        CacheService { inner, cache: self.cache.clone() }
    }
}
