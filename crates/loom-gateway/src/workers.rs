//! Worker threads: one single-threaded Tokio runtime per thread, each serving the client
//! connections handed to it, nginx style.
//!
//! A connection and everything its requests do (the upstream connections included, which
//! the upstream pool keeps per runtime) stay on one thread: no work stealing, no wake-ups
//! across threads, and each busy thread handles many ready sockets per poll of its
//! reactor. One acceptor hands each new connection to the worker with the fewest open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use crate::server::{
    ConnectionLimits, ConnectionTicket, Connections, Handler, OpenConnections, accept_until,
};

/// A connection handed to a worker, with its place under the server's connection limit.
type Handed = (std::net::TcpStream, SocketAddr, ConnectionTicket);

/// A running worker thread: where to send it connections, and how many it serves.
struct Worker {
    connections: mpsc::UnboundedSender<Handed>,
    open: Arc<AtomicUsize>,
    stopped: oneshot::Receiver<()>,
}

/// Worker threads ready to serve one listener's connections.
pub struct Workers {
    workers: Vec<Worker>,
    open: OpenConnections,
}

/// Counts a connection as open on its worker until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// Starts `count` threads (named `loom-worker-N`) that serve connections with
    /// `handler` within `limits` and, once no more come, drain their own for at most `grace`.
    pub fn spawn(
        count: usize,
        handler: impl Handler,
        limits: &ConnectionLimits,
        grace: Duration,
    ) -> std::io::Result<Workers> {
        let mut workers = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (connections, incoming) = mpsc::unbounded_channel();
            let (stopped_tx, stopped) = oneshot::channel();
            let open = Arc::new(AtomicUsize::new(0));
            let (handler, worker_open, limits) = (handler.clone(), open.clone(), limits.clone());
            std::thread::Builder::new().name(format!("loom-worker-{index}")).spawn(move || {
                runtime.block_on(run(incoming, handler, worker_open, &limits, grace));
                // Tasks still running after the grace period are cancelled here.
                drop(runtime);
                let _ = stopped_tx.send(());
            })?;
            workers.push(Worker { connections, open, stopped });
        }
        Ok(Workers { workers, open: OpenConnections::new(limits.max_connections) })
    }

    /// Accepts on `listener` until `shutdown` fires, handing each connection to the
    /// worker with the fewest open; then returns once every worker has drained.
    pub async fn serve(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let Workers { workers, open } = self;
        accept_until(listener, shutdown, &open, |stream, peer, ticket| {
            let Some(worker) = workers.iter().min_by_key(|worker| worker.open.load(Ordering::Relaxed)) else {
                return;
            };
            // The socket moves to the worker's runtime, which registers it with its own reactor.
            match stream.into_std() {
                Ok(stream) => {
                    worker.open.fetch_add(1, Ordering::Relaxed);
                    if worker.connections.send((stream, peer, ticket)).is_err() {
                        worker.open.fetch_sub(1, Ordering::Relaxed);
                        warn!(%peer, "worker thread is gone; connection dropped");
                    }
                }
                Err(error) => warn!(%peer, %error, "cannot hand the connection to a worker"),
            }
        })
        .await;
        let mut stopped = Vec::with_capacity(workers.len());
        for worker in workers {
            // Closing the channel tells the worker that no more connections come.
            drop(worker.connections);
            stopped.push(worker.stopped);
        }
        for worker in stopped {
            let _ = worker.await;
        }
    }
}

/// One worker: serves the connections it is handed until the acceptor stops, then drains.
async fn run(
    mut incoming: mpsc::UnboundedReceiver<Handed>,
    handler: impl Handler,
    open: Arc<AtomicUsize>,
    limits: &ConnectionLimits,
    grace: Duration,
) {
    let connections = Connections::new(limits);
    while let Some((stream, peer, limit_ticket)) = incoming.recv().await {
        let ticket = (OpenConnection(open.clone()), limit_ticket);
        match TcpStream::from_std(stream) {
            Ok(stream) => connections.serve(stream, peer, handler.clone(), ticket),
            Err(error) => warn!(%peer, %error, "cannot serve the connection"),
        }
    }
    connections.drain(grace).await;
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use hyper::body::Incoming;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Answers with the name of the thread that served the request.
    async fn thread_name(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        Ok(Response::new(Full::new(Bytes::from(name))))
    }

    async fn get(stream: &mut tokio::net::TcpStream) -> String {
        stream.write_all(b"GET / HTTP/1.1\r\nhost: loom\r\n\r\n").await.unwrap();
        let mut buffer = vec![0u8; 1024];
        let read = stream.read(&mut buffer).await.unwrap();
        let answer = String::from_utf8_lossy(&buffer[..read]).into_owned();
        answer.rsplit("\r\n\r\n").next().unwrap().to_owned()
    }

    #[tokio::test]
    async fn connections_go_to_the_least_busy_worker_and_stay_there() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, watch) = watch::channel(false);
        let workers =
            Workers::spawn(2, thread_name, &ConnectionLimits::default(), Duration::from_secs(1)).unwrap();
        let open: Vec<_> = workers.workers.iter().map(|worker| worker.open.clone()).collect();
        let open_connections = move || open.iter().map(|count| count.load(Ordering::Relaxed)).sum::<usize>();
        let serving = tokio::spawn(workers.serve(listener, watch));

        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        let first_worker = get(&mut first).await;
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        let second_worker = get(&mut second).await;
        let mut served = [first_worker.clone(), second_worker.clone()];
        served.sort();
        assert_eq!(served, ["loom-worker-0", "loom-worker-1"], "one connection per worker");
        assert_eq!(get(&mut first).await, first_worker, "a connection stays on its worker");
        assert_eq!(get(&mut second).await, second_worker);

        // Once the first closes, its worker is the least busy again.
        drop(first);
        for _ in 0..500 {
            if open_connections() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(open_connections(), 1, "the closed connection is no longer counted");
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(get(&mut third).await, first_worker);

        shutdown.send(true).unwrap();
        drop((second, third));
        tokio::time::timeout(Duration::from_secs(5), serving).await.unwrap().unwrap();
    }
}
