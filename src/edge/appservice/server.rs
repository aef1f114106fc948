//! The HTTP server of the appservice API. Synapse, and often a reverse proxy, reach its port, and
//! so may others: a request's head must arrive within a time limit, and only so many connections
//! are open at once (the next waits to be accepted), so that clients that connect and send
//! slowly cannot hold the listener or the process's sockets (see [`Limits::DEFAULT`]).

use std::{future::Future, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};

/// What one client may take of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a connection may take to send the head (request line and headers) of a
    /// request, its first one included.
    pub head_read: Duration,
    /// How many connections are served at once.
    pub connections: usize,
}

impl Limits {
    /// Synapse keeps a few connections and sends a head at once.
    pub const DEFAULT: Limits = Limits { head_read: Duration::from_secs(10), connections: 256 };
}

/// How long open connections have to finish their requests once `stop` completes.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` within `limits` until `stop` completes, then lets the open
/// connections finish their requests (for [`DRAIN_LIMIT`] at most).
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: impl Future<Output = ()>) {
    let connections = Arc::new(Semaphore::new(limits.connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.head_read);
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &connections) => accepted,
            () = &mut stop => break,
        };
        let Some((stream, slot)) = accepted else { continue };
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection to the appservice API ended with an error");
            }
            drop(slot);
        });
    }
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown()).await.is_err() {
        tracing::debug!("connections to the appservice API were still open at shutdown");
    }
}

/// The next connection, once a slot is free; `None` when accepting failed (after a pause, so
/// that running out of file descriptors does not spin).
async fn accept(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let slot = connections.clone().acquire_owned().await.expect("the semaphore is never closed");
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, slot)),
        Err(error) => {
            tracing::warn!(%error, "cannot accept a connection to the appservice API");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server of `GET /` within `limits`; its address.
    async fn server(limits: Limits) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(serve(listener, router, limits, std::future::pending()));
        address
    }

    /// What the server answers to `GET /` on a new connection (its status line), waiting at
    /// most `within`.
    async fn get_root(address: std::net::SocketAddr, within: Duration) -> Option<String> {
        let asked = async {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.write_all(b"GET / HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer.lines().next().unwrap_or_default().to_owned()
        };
        tokio::time::timeout(within, asked).await.ok()
    }

    /// Issue 22, item 15: a connection that sends a request's head slowly is closed after the
    /// limit.
    #[tokio::test]
    async fn a_head_that_does_not_end_is_cut_off() {
        let limits = Limits { head_read: Duration::from_millis(300), ..Limits::DEFAULT };
        let address = server(limits).await;
        assert_eq!(get_root(address, Duration::from_secs(2)).await.as_deref(), Some("HTTP/1.1 200 OK"));

        let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: bot\r\n").await.unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a head that never ends holds the connection");
        assert!(started.elapsed() >= limits.head_read, "closed after the limit, {:?}", started.elapsed());
    }

    /// Issue 22, item 15: while as many connections as allowed are open, another waits to be
    /// accepted, and is served once one closes.
    #[tokio::test]
    async fn connections_beyond_the_limit_wait() {
        let limits = Limits { head_read: Duration::from_secs(30), connections: 2 };
        let address = server(limits).await;
        let connect = |_| tokio::net::TcpStream::connect(address);
        let idle = futures_util::future::join_all((0..limits.connections).map(connect)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(get_root(address, Duration::from_millis(150)).await, None, "a third connection waits");
        drop(idle);
        assert_eq!(get_root(address, Duration::from_secs(2)).await.as_deref(), Some("HTTP/1.1 200 OK"));
    }
}
