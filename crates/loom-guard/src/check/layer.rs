//! [`CheckLayer`] and what it is built from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use loom_tokens::accounting::UsageRecorder;
use tower::Layer;

use super::config::ChecksConfig;
use super::policy::Policy;
use super::service::Check;
use crate::keys::VirtualKey;
use crate::observer::{GuardObserver, NoObserver};

/// What the stage decides with.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) global: Option<Arc<Policy>>,
    pub(super) routes: HashMap<Arc<str>, Arc<Policy>>,
    pub(super) keys: HashMap<Arc<str>, Arc<Policy>>,
    pub(super) recorder: Option<Arc<UsageRecorder>>,
    pub(super) observer: Arc<dyn GuardObserver>,
    /// Compiled checks of keys made at run time, by key id, with the config compiled.
    pub(super) runtime_keys: Arc<Mutex<RuntimeKeyPolicies>>,
    /// The pool the injection check's embedding stage runs on.
    #[cfg(feature = "embed")]
    pub(super) embedder: Option<Arc<loom_tokens::embed::EmbedPool>>,
}

/// Run-time keys' checks by key id: the config and its compiled policy.
type RuntimeKeyPolicies = HashMap<Arc<str>, (ChecksConfig, Arc<Policy>)>;

/// Most keys made at run time whose compiled checks are kept; past it the cache starts over.
const MAX_RUNTIME_KEY_POLICIES: usize = 4096;

impl Settings {
    /// The checks for a request: its key's (from the config, else the run-time key's own
    /// `checks`), else its route's, else the global ones.
    pub(super) fn policy_for(
        &self,
        key_id: Option<&str>,
        key: Option<&VirtualKey>,
        route: Option<&str>,
    ) -> Option<Arc<Policy>> {
        key_id
            .and_then(|key| self.keys.get(key).cloned())
            .or_else(|| key.and_then(|key| self.runtime_key_policy(key)))
            .or_else(|| route.and_then(|route| self.routes.get(route).cloned()))
            .or_else(|| self.global.clone())
    }

    /// A run-time key's own checks, compiled once per version of them.
    fn runtime_key_policy(&self, key: &VirtualKey) -> Option<Arc<Policy>> {
        let checks = key.checks.as_ref()?;
        let mut cache = self.runtime_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((compiled, policy)) = cache.get(key.id.as_str())
            && compiled == checks
        {
            return Some(policy.clone());
        }
        // Validated when the key was made; one that no longer compiles gets no checks of its own.
        let policy = Arc::new(Policy::new(checks).ok()?);
        if cache.len() >= MAX_RUNTIME_KEY_POLICIES {
            cache.clear();
        }
        cache.insert(Arc::from(key.id.as_str()), (checks.clone(), policy.clone()));
        Some(policy)
    }
}

/// Runs the security checks on each request's input (see the [module docs](super)).
#[derive(Clone)]
pub struct CheckLayer {
    settings: Arc<Settings>,
}

impl CheckLayer {
    /// The `global` checks (`None`: only routes and keys with checks of their own are checked).
    pub fn new(global: Option<Policy>) -> Self {
        CheckLayer {
            settings: Arc::new(Settings {
                global: global.map(Arc::new),
                routes: HashMap::new(),
                keys: HashMap::new(),
                recorder: None,
                observer: Arc::new(NoObserver),
                runtime_keys: Arc::default(),
                #[cfg(feature = "embed")]
                embedder: None,
            }),
        }
    }

    fn settings_mut(&mut self) -> &mut Settings {
        // Builders run before the layer is shared; a shared one is copied on write.
        Arc::make_mut(&mut self.settings)
    }

    /// The checks of the route `route` (its id), instead of the global ones.
    pub fn with_route(mut self, route: &str, policy: Policy) -> Self {
        self.settings_mut().routes.insert(Arc::from(route), Arc::new(policy));
        self
    }

    /// The checks of the key `key_id`, instead of its route's or the global ones.
    pub fn with_key(mut self, key_id: &str, policy: Policy) -> Self {
        self.settings_mut().keys.insert(Arc::from(key_id), Arc::new(policy));
        self
    }

    /// Records blocked requests (zero cost, with their reason) in `recorder`.
    pub fn with_recorder(mut self, recorder: Arc<UsageRecorder>) -> Self {
        self.settings_mut().recorder = Some(recorder);
        self
    }

    /// The checks of key `key_id`, when it has its own.
    pub fn key_policy(&self, key_id: &str) -> Option<Arc<Policy>> {
        self.settings.keys.get(key_id).cloned()
    }

    /// The checks of route `route` (its id), when it has its own.
    pub fn route_policy(&self, route: &str) -> Option<Arc<Policy>> {
        self.settings.routes.get(route).cloned()
    }

    /// The global checks, when configured.
    pub fn global_policy(&self) -> Option<Arc<Policy>> {
        self.settings.global.clone()
    }

    /// Runs the injection check's embedding stage (where a policy enables it) on `pool`.
    #[cfg(feature = "embed")]
    pub fn with_embedder(mut self, pool: Arc<loom_tokens::embed::EmbedPool>) -> Self {
        self.settings_mut().embedder = Some(pool);
        self
    }

    /// Reports decisions to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn GuardObserver>) -> Self {
        self.settings_mut().observer = observer;
        self
    }
}

impl<S> Layer<S> for CheckLayer {
    type Service = Check<S>;

    fn layer(&self, inner: S) -> Check<S> {
        Check { inner, settings: self.settings.clone() }
    }
}
