//! The bare hyper proxy: the `bare-proxy` subcommand, and starting it as a child process.
//!
//! It is Loom's plumbing without Loom: the same worker threads and hyper server
//! (`loom_gateway::workers`), the same pooled upstream client (`loom_providers::client`),
//! and a handler that forwards the request body unchanged and the upstream's answer as it
//! arrives. The difference between it and Loom is what Loom's pipeline costs; the
//! difference between it and nginx is what hyper and Tokio cost.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use loom_providers::client::{HttpClient, UpstreamBody, build_client};
use tokio::net::TcpListener;

use crate::child::{ChildGuard, print_listening, spawn_listening};

/// Run the bare proxy on `listen` in front of `upstream` until SIGINT or SIGTERM.
pub fn serve(listen: SocketAddr, upstream: SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("loom-bench bare-proxy: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let client = match build_client("bare-proxy", Duration::from_secs(5), 1024) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("loom-bench bare-proxy: {err}");
            return ExitCode::FAILURE;
        }
    };
    let base = format!("http://{upstream}");
    runtime.block_on(async move {
        let listener = match TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("loom-bench bare-proxy: cannot listen on {listen}: {err}");
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().unwrap_or(listen);
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let handler = move |request| forward(client.clone(), base.clone(), request);
        // The same connection handling as Loom's front door, so only the pipeline differs.
        let limits = loom_gateway::server::ConnectionLimits::default();
        let workers =
            match loom_gateway::workers::Workers::spawn(workers, handler, &limits, Duration::from_secs(1)) {
                Ok(workers) => workers,
                Err(err) => {
                    eprintln!("loom-bench bare-proxy: cannot start worker threads: {err}");
                    return ExitCode::FAILURE;
                }
            };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(workers.serve(listener, stopped));
        print_listening(addr);
        if let Err(err) = crate::shutdown_signal().await {
            eprintln!("loom-bench bare-proxy: cannot wait for signals: {err}");
        }
        let _ = stop.send(true);
        let _ = serving.await;
        ExitCode::SUCCESS
    })
}

type ProxyBody = Either<Full<Bytes>, UpstreamBody>;

/// Forwards one request: path, body, content type and authorization to the upstream;
/// status, content type and body (as it arrives) back.
async fn forward(
    client: HttpClient,
    base: String,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let failed = |status: StatusCode, message: String| {
        let mut response = Response::new(Either::Left(Full::new(Bytes::from(message))));
        *response.status_mut() = status;
        Ok(response)
    };
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return failed(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let uri = match format!("{base}{}", parts.uri.path()).parse::<Uri>() {
        Ok(uri) => uri,
        Err(err) => return failed(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let mut upstream = Request::new(Full::new(body));
    *upstream.method_mut() = Method::POST;
    *upstream.uri_mut() = uri;
    let headers = upstream.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(auth) = parts.headers.get(AUTHORIZATION) {
        headers.insert(AUTHORIZATION, auth.clone());
    }
    match client.request(upstream).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let mut answer = Response::new(Either::Right(body));
            *answer.status_mut() = parts.status;
            if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
                answer.headers_mut().insert(CONTENT_TYPE, content_type.clone());
            }
            Ok(answer)
        }
        Err(err) => failed(StatusCode::BAD_GATEWAY, err.to_string()),
    }
}

/// A bare proxy running in a child process.
#[derive(Debug)]
pub struct BareProxyChild {
    /// The child process (stopped on drop).
    pub guard: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Start `self_exe bare-proxy` in front of `upstream` on an ephemeral port.
pub fn spawn(self_exe: &std::path::Path, upstream: SocketAddr) -> io::Result<BareProxyChild> {
    let mut command = Command::new(self_exe);
    command
        .args(["bare-proxy", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.to_string())
        .stdin(Stdio::null());
    let (guard, addr) = spawn_listening("bare proxy", command)?;
    Ok(BareProxyChild { guard, addr })
}

#[cfg(test)]
mod tests {
    use loom_test_support::MockUpstream;

    use super::*;
    use crate::load::{Workload, probe};

    #[tokio::test]
    async fn forwards_the_body_unchanged_and_relays_the_answer() {
        let mock = MockUpstream::start().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = build_client("bare-proxy", Duration::from_secs(5), 8).unwrap();
        let base = format!("http://{}", mock.addr());
        let handler = move |request| forward(client.clone(), base.clone(), request);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(loom_gateway::server::serve(
            listener,
            handler,
            loom_gateway::server::ConnectionLimits::default(),
            stopped,
            Duration::from_secs(1),
        ));

        // The probe checks that each answer is a whole chat completion, or a stream ending in [DONE].
        for workload in [Workload::Whole, Workload::Stream] {
            probe(addr, workload).await.unwrap();
        }
        let requests = mock.take_requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].path, "/v1/chat/completions");
        assert_eq!(requests[0].body, Workload::Whole.body());
        assert_eq!(requests[1].body, Workload::Stream.body());
        assert_eq!(requests[0].header("authorization").as_deref(), Some("Bearer sk-bench"));

        stop.send(true).unwrap();
        serving.await.unwrap();
    }
}
