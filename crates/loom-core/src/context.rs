//! Per-request context that travels with the request through every stage.

use std::sync::Arc;
use std::time::Instant;

/// The wire format the client spoke, so the answer goes back in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFormat {
    /// OpenAI chat-completions / embeddings.
    OpenAi,
    /// Anthropic messages.
    Anthropic,
}

/// Who is calling; filled by authentication, or from request hints until then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Id of the virtual key used, never the key itself.
    pub key_id: Option<Arc<str>>,
    /// End user.
    pub user: Option<Arc<str>>,
    /// Team.
    pub team: Option<Arc<str>>,
}

/// Facts about one request that every stage may read.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Unique id, echoed to the client as `x-request-id`.
    pub request_id: Arc<str>,
    /// Id of the route that matched, if any.
    pub route: Option<Arc<str>>,
    /// Caller identity.
    pub identity: Identity,
    /// Format the client spoke.
    pub client_format: ClientFormat,
    /// When the gateway received the request.
    pub received_at: Instant,
    /// Estimated input tokens, set by token accounting for later stages (cost routing).
    pub input_token_estimate: Option<u64>,
}

impl RequestContext {
    /// A context for a request with this id, received now.
    pub fn new(request_id: impl Into<Arc<str>>) -> Self {
        RequestContext {
            request_id: request_id.into(),
            route: None,
            identity: Identity::default(),
            client_format: ClientFormat::OpenAi,
            received_at: Instant::now(),
            input_token_estimate: None,
        }
    }
}
