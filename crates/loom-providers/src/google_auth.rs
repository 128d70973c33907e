//! OAuth2 access tokens for Vertex AI: a fixed token, or one minted from a
//! service-account key (an RS256-signed JWT exchanged at the token endpoint),
//! cached and refreshed before it expires.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use loom_core::Scrubber;
use loom_core::scrub::bounded;

use crate::client::HttpClient;
use crate::config::{Secret, VertexSettings};
use crate::error::ProviderError;
use crate::secrets::ProviderSecrets;

/// Scope Vertex AI needs.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Lifetime Loom asks for (Google's maximum).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Refresh this long before expiry so no request carries a stale token.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Longest token-endpoint message kept in an error, in bytes.
const MAX_TOKEN_ERROR_BYTES: usize = 1000;

/// The fields of a service-account key Loom uses.
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Where Vertex tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    /// A token from config, used as is.
    Fixed(Secret),
    /// Tokens minted from a service account.
    ServiceAccount(Arc<ServiceAccount>),
}

/// A service account that mints and caches tokens.
pub struct ServiceAccount {
    provider: String,
    client_email: String,
    key: RsaKeyPair,
    token_uri: Uri,
    client: HttpClient,
    cached: Mutex<Option<(Secret, Instant)>>,
    /// The provider's secrets: the key's, and each token minted, go in.
    secrets: ProviderSecrets,
}

impl TokenSource {
    /// Builds the source from `vertex:` settings; the key's material, and the tokens
    /// minted from it, join the provider's `secrets`.
    pub fn from_settings(
        provider: &str,
        settings: &VertexSettings,
        client: HttpClient,
        secrets: ProviderSecrets,
    ) -> Result<TokenSource, ProviderError> {
        let config_error = |reason: String| ProviderError::Config { provider: provider.to_owned(), reason };
        if let Some(token) = &settings.access_token {
            return Ok(TokenSource::Fixed(token.clone()));
        }
        let Some(path) = &settings.credentials_file else {
            return Err(config_error("vertex needs `access_token` or `credentials_file`".to_owned()));
        };
        let text = loom_core::file::read_config_text(
            std::path::Path::new(path),
            loom_core::file::MAX_CREDENTIALS_BYTES,
        )
        .map_err(|error| config_error(format!("cannot read credentials_file `{path}`: {error}")))?;
        let key: ServiceAccountKey = serde_json::from_str(&text).map_err(|error| {
            config_error(format!("credentials_file `{path}` is not a service-account key: {error}"))
        })?;
        secrets.add(key_material(&key));
        let der = PrivatePkcs8KeyDer::from_pem_slice(key.private_key.as_bytes()).map_err(|error| {
            config_error(format!("credentials_file `{path}`: private_key is not PKCS#8 PEM: {error}"))
        })?;
        let key_pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|error| config_error(format!("credentials_file `{path}`: unusable RSA key: {error}")))?;
        let token_url = settings
            .token_url
            .clone()
            .or(key.token_uri)
            .unwrap_or_else(|| "https://oauth2.googleapis.com/token".to_owned());
        let token_uri = token_url
            .parse::<Uri>()
            .map_err(|error| config_error(format!("token_url `{token_url}` is not a URL: {error}")))?;
        Ok(TokenSource::ServiceAccount(Arc::new(ServiceAccount {
            provider: provider.to_owned(),
            client_email: key.client_email,
            key: key_pair,
            token_uri,
            client,
            cached: Mutex::new(None),
            secrets,
        })))
    }

    /// A valid access token.
    pub async fn token(&self) -> Result<Secret, ProviderError> {
        match self {
            TokenSource::Fixed(token) => Ok(token.clone()),
            TokenSource::ServiceAccount(account) => account.token().await,
        }
    }
}

/// What of a service-account key must never be shown: the private key (whole, and line by
/// line in case a part of it is echoed), and its id.
fn key_material(key: &ServiceAccountKey) -> Vec<Secret> {
    let lines =
        key.private_key.lines().map(str::trim).filter(|line| line.len() >= 16 && !line.starts_with("-----"));
    std::iter::once(key.private_key.as_str())
        .chain(key.private_key_id.as_deref())
        .chain(lines)
        .map(Secret::from)
        .collect()
}

impl ServiceAccount {
    async fn token(&self) -> Result<Secret, ProviderError> {
        // One refresh at a time; everyone else waits for its result.
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + REFRESH_MARGIN < *expires
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        self.secrets.add_minted(&token);
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    fn error(&self, reason: String) -> ProviderError {
        ProviderError::Connect { provider: self.provider.clone(), reason: format!("Vertex token: {reason}") }
    }

    /// The signed JWT assertion for the token exchange.
    fn assertion(&self) -> Result<String, ProviderError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.token_uri.to_string(),
            "iat": now,
            "exp": now + TOKEN_LIFETIME.as_secs(),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| self.error("signing the JWT failed".to_owned()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    async fn fetch(&self) -> Result<(Secret, Duration), ProviderError> {
        // The assertion is URL-safe base64 and dots: no form escaping needed.
        // The signed assertion buys a token until it expires: it is a secret too.
        let assertion = self.assertion()?;
        let body =
            format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.token_uri.clone();
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .map_err(|_| self.error("the token endpoint timed out".to_owned()))?
            .map_err(|error| self.error(format!("the token endpoint is unreachable: {error}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| self.error(format!("reading the token answer failed: {error}")))?
            .to_bytes();
        if !status.is_success() {
            let message = crate::upstream::parse_error_body(&body).message;
            let message = Scrubber::new([assertion.as_str()]).scrub(&message).into_owned();
            let message = self.secrets.scrubber().scrub(&message).into_owned();
            let message = bounded(&message, MAX_TOKEN_ERROR_BYTES);
            return Err(self.error(format!("the token endpoint answered HTTP {status}: {message}")));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|error| self.error(format!("unexpected token answer: {error}")))?;
        let lifetime = token.expires_in.map(Duration::from_secs).unwrap_or(TOKEN_LIFETIME);
        Ok((Secret::new(token.access_token), lifetime))
    }
}
