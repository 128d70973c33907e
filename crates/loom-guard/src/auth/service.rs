//! [`Auth`], the service of [`AuthLayer`](super::AuthLayer).

use std::future::Ready;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_util::future::Either;
use loom_core::{ErrorKind, LlmRequest, LlmResponse, LoomError, PresentedKey};
use tower::Service;

use crate::observer::{AuthFailure, GuardObserver};
use crate::{KeyStore, Lookup, VirtualKey};

/// The key a request was authenticated with; in the request's extensions.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey(pub Arc<VirtualKey>);

/// The service [`AuthLayer`](super::AuthLayer) produces.
#[derive(Clone)]
pub struct Auth<S> {
    pub(super) inner: S,
    pub(super) keys: Arc<KeyStore>,
    pub(super) observer: Arc<dyn GuardObserver>,
}

impl<S> Service<LlmRequest> for Auth<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError>,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Either<Ready<Result<LlmResponse, LoomError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: LlmRequest) -> Self::Future {
        match authenticate(&self.keys, &mut request, SystemTime::now()) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(failure) => {
                self.observer.auth_failed(failure);
                Either::Left(std::future::ready(Err(refusal(failure, &request))))
            }
        }
    }
}

/// Checks the presented key and sets the request's identity from it.
fn authenticate(keys: &KeyStore, request: &mut LlmRequest, now: SystemTime) -> Result<(), AuthFailure> {
    let context = &mut request.context;
    // Removed: no later stage needs the secret itself.
    let Some(PresentedKey(presented)) = context.extensions.remove::<PresentedKey>() else {
        return Err(AuthFailure::MissingKey);
    };
    let key = match keys.lookup(presented.expose(), now) {
        Lookup::Found(key) => key,
        Lookup::Unknown => return Err(AuthFailure::UnknownKey),
        Lookup::Expired(_) => return Err(AuthFailure::ExpiredKey),
        Lookup::Revoked(_) => return Err(AuthFailure::RevokedKey),
    };
    context.identity.key_id = Some(Arc::from(key.id.as_str()));
    if !key.allows_route(context.route.as_deref()) {
        return Err(AuthFailure::RouteNotAllowed);
    }
    if !key.allows_model(request.payload.model()) {
        return Err(AuthFailure::ModelNotAllowed);
    }
    let context = &mut request.context;
    let from_key = |value: &Option<String>| value.as_deref().map(Arc::from);
    if key.allow_identity_headers {
        context.identity.user = context.identity.user.take().or_else(|| from_key(&key.user));
        context.identity.team = context.identity.team.take().or_else(|| from_key(&key.team));
    } else {
        context.identity.user = from_key(&key.user);
        context.identity.team = from_key(&key.team);
    }
    context.extensions.insert(AuthenticatedKey(key));
    Ok(())
}

/// The error a refused request gets: never the presented key, only the key's id.
fn refusal(failure: AuthFailure, request: &LlmRequest) -> LoomError {
    let key_id = request.context.identity.key_id.as_deref().unwrap_or_default();
    let (kind, message, param) = match failure {
        AuthFailure::MissingKey => (
            ErrorKind::Authentication,
            "No API key: send a Loom key as `Authorization: Bearer <key>`, `x-api-key` or `api-key`"
                .to_owned(),
            None,
        ),
        AuthFailure::UnknownKey => (ErrorKind::Authentication, "Incorrect API key provided".to_owned(), None),
        AuthFailure::ExpiredKey => (ErrorKind::Authentication, "The API key has expired".to_owned(), None),
        AuthFailure::RevokedKey => (ErrorKind::Authentication, "The API key was revoked".to_owned(), None),
        AuthFailure::ModelNotAllowed => (
            ErrorKind::PermissionDenied,
            format!("The key `{key_id}` may not use the model `{}`", request.payload.model()),
            Some("model".to_owned()),
        ),
        AuthFailure::RouteNotAllowed => (
            ErrorKind::PermissionDenied,
            format!(
                "The key `{key_id}` may not use the route `{}`",
                request.context.route.as_deref().unwrap_or_default()
            ),
            None,
        ),
    };
    LoomError { param, ..LoomError::new(kind, message) }.with_code(failure.as_str())
}
