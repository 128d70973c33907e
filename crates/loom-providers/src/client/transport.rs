//! Opening upstream connections: DNS, TCP (no delay, keep-alive), and TLS with rustls.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::TransportError;

/// TCP keep-alive probe delay, so dead idle connections are noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Where a request goes: scheme, host and port, from the runtime it is sent on. Idle
/// connections are pooled per target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub(crate) https: bool,
    /// Shared: every request to an endpoint carries its target.
    pub(crate) host: Arc<str>,
    pub(crate) port: u16,
    /// A socket is registered with the reactor of the runtime that opened it; on another
    /// single-threaded runtime its readiness would arrive on the wrong thread.
    runtime: Option<tokio::runtime::Id>,
}

impl Target {
    /// The target of an absolute `http://` or `https://` URI, on no runtime yet.
    pub(crate) fn parse(uri: &Uri) -> Result<Self, TransportError> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(TransportError::InvalidUri(format!(
                    "unsupported scheme `{}` (http or https)",
                    other.unwrap_or("")
                )));
            }
        };
        let host = uri
            .host()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| TransportError::InvalidUri(format!("`{uri}` has no host")))?;
        // IPv6 literals come bracketed in URIs; DNS and SNI want them bare.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Target { https, host: host.into(), port, runtime: None })
    }

    /// This target as reached from the current runtime.
    pub(crate) fn on_this_runtime(&self) -> Target {
        let runtime = tokio::runtime::Handle::try_current().ok().map(|runtime| runtime.id());
        Target { runtime, ..self.clone() }
    }
}

/// A connected socket, plain or TLS.
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The Mozilla root certificates (webpki-roots), which upstream servers are checked against.
pub(crate) fn public_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// The TLS client settings shared by every connection of a client: HTTP/1.1 by ALPN.
pub(crate) fn tls_connector(roots: rustls::RootCertStore) -> Result<TlsConnector, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Opens a connection to `target` within `timeout` (DNS, TCP and the TLS handshake together).
pub(crate) async fn connect(
    target: &Target,
    tls: &TlsConnector,
    timeout: Duration,
) -> Result<Transport, TransportError> {
    match tokio::time::timeout(timeout, open(target, tls)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::ConnectTimeout),
    }
}

async fn open(target: &Target, tls: &TlsConnector) -> Result<Transport, TransportError> {
    let tcp = open_tcp(target).await?;
    if !target.https {
        return Ok(Transport::Plain(tcp));
    }
    let server_name = ServerName::try_from(target.host.to_string()).map_err(|_| {
        TransportError::InvalidUri(format!("`{}` is not a valid TLS server name", target.host))
    })?;
    let stream = tls.connect(server_name, tcp).await.map_err(TransportError::Tls)?;
    Ok(Transport::Tls(Box::new(stream)))
}

async fn open_tcp(target: &Target) -> Result<TcpStream, TransportError> {
    let addresses =
        tokio::net::lookup_host((&*target.host, target.port)).await.map_err(TransportError::Dns)?;
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                // Best effort: a socket that refuses these options still works.
                let _ = stream.set_nodelay(true);
                let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
                let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(TransportError::Connect(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("no address found for `{}`", target.host))
    })))
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(stream) => stream.is_write_vectored(),
            Transport::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_of_uris() {
        let target = |uri: &str| Target::parse(&uri.parse::<Uri>().unwrap());
        assert_eq!(
            target("https://api.openai.com/v1").unwrap(),
            Target { https: true, host: "api.openai.com".into(), port: 443, runtime: None }
        );
        assert_eq!(
            target("http://127.0.0.1:8000/v1").unwrap(),
            Target { https: false, host: "127.0.0.1".into(), port: 8000, runtime: None }
        );
        assert_eq!(
            target("http://[::1]:9/x").unwrap(),
            Target { https: false, host: "::1".into(), port: 9, runtime: None }
        );
        assert!(
            matches!(target("ftp://host/x"), Err(TransportError::InvalidUri(reason)) if reason.contains("ftp"))
        );
        assert!(matches!(target("/relative"), Err(TransportError::InvalidUri(_))));
    }

    #[test]
    fn targets_differ_between_runtimes() {
        let target = Target::parse(&"http://127.0.0.1:8000/v1".parse::<Uri>().unwrap()).unwrap();
        let on_new_runtime = || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async { (target.on_this_runtime(), target.on_this_runtime()) })
        };
        let (first, again) = on_new_runtime();
        assert_eq!(first, again, "one runtime, one pool");
        assert_ne!(first, on_new_runtime().0, "another runtime, another pool");
    }
}
