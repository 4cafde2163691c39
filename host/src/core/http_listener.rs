//! The HTTP accept loop: what `axum::serve` does, plus the limits a public
//! listener needs against slow or numerous clients.
//!
//! - A client has `header_read_timeout` to send a request's headers (the
//!   first one and each one after on a kept-alive connection); one that
//!   stalls is closed.
//! - At most `max_connections` connections are open at once (fewer when the
//!   file limit is lower); past that, new ones wait in the kernel's accept
//!   queue, with a log line when the limit is reached and when it clears.
//! - The soft file limit is raised to the hard one at start, so the process
//!   runs out of connections before it runs out of file descriptors.
//! - On shutdown the loop stops accepting, still serves the connections
//!   already waiting in the accept queue (one request each), and lets
//!   in-flight requests finish.
//!
//! HTTP/1.1 only: axum's default HTTP/2 (cleartext, prior knowledge) has no
//! read timeout for a stalled preface; clients reach the API over HTTP/1.1
//! (or through a TLS-terminating proxy that speaks it to us).

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;

/// Descriptors kept free of connections: the database, plugins, the broker,
/// log files and outbound calls need some too.
const RESERVED_FILES: u64 = 256;

#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), max_connections: 8192 }
    }
}

/// Raises the soft limit on open files to the hard limit where permitted;
/// returns the limit in force.
pub fn raise_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(limit, "open file limit");
            Some(limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains the
/// accept queue and waits for every connection to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let file_limit = raise_file_limit().unwrap_or(1024);
    let fd_bound = usize::try_from(file_limit.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
    let cap = limits.max_connections.min(fd_bound).max(1);
    tracing::info!(max_connections = cap, header_read_timeout = ?limits.header_read_timeout, "HTTP limits");
    let permits = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!(
                    max_connections = cap,
                    "HTTP connection limit reached; new connections wait in the accept queue"
                );
                let permit = tokio::select! {
                    permit = permits.clone().acquire_owned() => permit,
                    () = &mut shutdown => break,
                };
                tracing::info!("HTTP connections below the limit again");
                match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset while queued:
                    // back off briefly rather than spin.
                    tracing::error!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = builder.serve_connection(TokioIo::new(stream), service_for(app.clone(), peer));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }

    // Connections the kernel already accepted for us get their request
    // served; only then does the listener close.
    let mut drained = Vec::new();
    let mut single = http1::Builder::new();
    single.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(false);
    let listener = listener.into_std()?;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(true)?;
                let stream = tokio::net::TcpStream::from_std(stream)?;
                let connection = single.serve_connection(TokioIo::new(stream), service_for(app.clone(), peer));
                drained.push(tokio::spawn(connection));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                tracing::warn!(error = %e, "draining the accept queue stopped");
                break;
            }
        }
    }
    drop(listener);
    if !drained.is_empty() {
        tracing::info!(connections = drained.len(), "serving connections that were waiting to be accepted");
    }
    graceful.shutdown().await;
    for connection in drained {
        let _ = connection.await;
    }
    Ok(())
}

/// The app as a hyper service for one connection, with the peer address for
/// `ConnectInfo` (rate limits by address).
fn service_for(
    app: Router,
    peer: SocketAddr,
) -> TowerToHyperService<
    impl tower::Service<
        axum::http::Request<hyper::body::Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send,
> {
    TowerToHyperService::new(app.map_request(move |mut request: axum::http::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }))
}
