//! The plain-HTTP listener: accept, optional PROXY protocol header, HTTP/1.1 with upgrades,
//! graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::park::{ConnState, ParkingIo, Tracked};
use super::parked::ParkedConnections;
use super::proxy_protocol::{HEADER_TIMEOUT, PrefixedIo, ProxyProtocolError, read_proxy_header};
use super::{ClientInfo, Proxy};

/// nginx's `client_header_timeout`: a client must send a complete request head within this
/// (hyper also applies it to idle keep-alive connections waiting for their next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A client connection after the PROXY protocol step, ready for HTTP (or TLS).
#[derive(Debug)]
pub struct Connection {
    pub io: PrefixedIo<TcpStream>,
    pub info: ClientInfo,
}

/// Prepares an accepted TCP connection: `TCP_NODELAY`, then, when `proxy_protocol` is on, reads
/// and strips the PROXY header (within [`HEADER_TIMEOUT`], size-limited). Shared with the TLS
/// listener, which wraps `Connection::io` in its acceptor and sets `tls` itself.
pub async fn accept_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    proxy_protocol: bool,
    tls: bool,
) -> Result<Connection, ProxyProtocolError> {
    // Latency over packet count: responses are small writes.
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .map_err(|e| ProxyProtocolError::Io(e.kind()))?;
    let (source, rest) = if proxy_protocol {
        let (header, rest) = tokio::time::timeout(HEADER_TIMEOUT, read_proxy_header(&mut stream))
            .await
            .map_err(|_| ProxyProtocolError::Timeout)??;
        (header.source, rest)
    } else {
        (None, Bytes::new())
    };
    Ok(Connection {
        io: PrefixedIo::new(rest, stream),
        info: ClientInfo {
            peer,
            local,
            tls,
            proxy_protocol_src: source,
            server_name: None,
            client_cert: None,
        },
    })
}

/// Serves plain HTTP/1.1 on `listener` until `shutdown` completes, then drains: the listener
/// closes at once, idle keep-alive connections close, requests in flight finish (their
/// connections then close) for up to `drain_deadline`, after which the remaining connections
/// are dropped. Returns when the drain is over.
///
/// Whether connections start with a PROXY header is read from `shared.fleet` for each new
/// connection, so turning it on or off applies to new connections without a restart.
/// Upgraded (WebSocket) tunnels run as their own tasks and are not cut by the deadline; they
/// end with the process.
///
/// Strictly HTTP/1.1 (and 1.0): hyper-util's `auto` builder would also accept cleartext HTTP/2
/// with prior knowledge, which ingress-nginx does not serve on its HTTP port. hyper's
/// `http1::UpgradeableConnection` is not a `GracefulConnection`, so the drain signal is a
/// `watch` channel here, doing what `hyper_util::server::graceful::GracefulShutdown` does: each
/// connection holds a receiver and calls hyper's `graceful_shutdown` when it fires; the drain is
/// over when every receiver is gone.
pub async fn serve_http<F>(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: F,
    drain_deadline: Duration,
) where
    F: Future<Output = ()>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let parked = match ParkedConnections::new(
        HEADER_READ_TIMEOUT,
        proxy.metrics.connections_open.clone(),
        proxy.metrics.connections_parked.clone(),
    ) {
        Ok(parked) => Some(Arc::new(parked)),
        Err(error) => {
            // No epoll set (out of descriptors): idle connections stay with hyper instead.
            tracing::warn!(%error, "idle connections will not be parked");
            None
        }
    };
    accept_and_drain(
        listener,
        shutdown,
        drain_deadline,
        "HTTP",
        parked.clone(),
        |incoming, draining| {
            serve_connection(
                incoming,
                proxy.clone(),
                builder.clone(),
                parked.clone(),
                draining,
            )
        },
    )
    .await;
}

/// A connection for a listener's `serve`: new from `accept`, or back from
/// [`ParkedConnections`] with its next request on the way.
pub(super) enum Incoming {
    Accepted(TcpStream, SocketAddr),
    Resumed(TcpStream, ClientInfo),
}

/// The accept loop both listeners share: serves each connection, accepted or woken from
/// `parked`, with `serve` (handing it a drain signal) until `shutdown` completes; then closes
/// the listener and the parked connections, signals the others, lets them finish for up to
/// `drain_deadline`, and aborts what is left.
pub(super) async fn accept_and_drain<F, S, Fut>(
    listener: TcpListener,
    shutdown: F,
    drain_deadline: Duration,
    what: &'static str,
    parked: Option<Arc<ParkedConnections>>,
    mut serve: S,
) where
    F: Future<Output = ()>,
    S: FnMut(Incoming, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reaped as they finish: a finished task keeps its memory until joined, and after
            // a burst of connections closes there may be no next accept for a long time.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            woken = woken(parked.as_deref()) => {
                for (stream, info) in woken {
                    connections.spawn(serve(Incoming::Resumed(stream, info), draining.clone()));
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve(Incoming::Accepted(stream, peer), draining.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, listener = what, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    if let Some(parked) = &parked {
        parked.close_all();
    }
    drop(draining);
    let _ = drain.send(true);
    tokio::select! {
        () = drain.closed() => tracing::debug!(listener = what, "connections drained"),
        () = tokio::time::sleep(drain_deadline) => {
            tracing::info!(listener = what, open = connections.len(), "drain deadline reached, closing remaining connections");
        }
    }
    connections.abort_all();
}

/// Parked connections woken, or never with no set.
async fn woken(parked: Option<&ParkedConnections>) -> Vec<(TcpStream, ClientInfo)> {
    match parked {
        Some(parked) => parked.woken().await,
        None => std::future::pending().await,
    }
}

async fn serve_connection(
    incoming: Incoming,
    proxy: Arc<Proxy>,
    builder: http1::Builder,
    parked: Option<Arc<ParkedConnections>>,
    mut drain: watch::Receiver<bool>,
) {
    let metrics = proxy.metrics.clone();
    metrics.connections_open.inc();
    let _open = scopeguard(move || {
        metrics.connections_open.dec();
    });
    let (mut io, info, mut request_waiting) = match incoming {
        Incoming::Accepted(stream, peer) => {
            let proxy_protocol = proxy.shared.fleet.load().proxy_protocol;
            match accept_connection(stream, peer, proxy_protocol, false).await {
                Ok(connection) => (connection.io, connection.info, false),
                Err(error) => {
                    tracing::debug!(%peer, %error, "refused connection");
                    return;
                }
            }
        }
        // Readable already: its next request (or the client closing) is there.
        Incoming::Resumed(stream, info) => (PrefixedIo::new(Bytes::new(), stream), info, true),
    };
    let state = Arc::new(ConnState::default());
    loop {
        if *drain.borrow() || !(request_waiting || wait_for_request(&io, &mut drain).await) {
            return;
        }
        // Boxed: hyper's connection is the largest part of this future, and a connection
        // waiting for its first request should not keep room for it.
        let result = Box::pin(serve_hyper(&builder, io, &proxy, &info, &state, &mut drain)).await;
        if let Err(error) = result {
            // Client resets, malformed requests, header timeouts: routine on the internet.
            tracing::debug!(peer = %info.peer, %error, "connection ended with an error");
        }
        io = match state.take_parked() {
            Some(socket) => socket,
            None => return,
        };
        match &parked {
            // This task ends; the set holds the bare socket until its next request.
            Some(parked) if !io.has_prefix() => {
                parked.park(io.into_inner(), info);
                return;
            }
            // Without a set (or with bytes left over, which parking never leaves): this task
            // waits for the next request itself.
            _ => request_waiting = false,
        }
    }
}

/// Waits until the client sends (or closes), holding no buffer: hyper reserves its buffers at
/// its first read, so a connection gets them only once its first, or after parking its next,
/// request is on the way. False when the connection should close instead: idle for
/// [`HEADER_READ_TIMEOUT`] (the limit hyper applies to keep-alive connections), a socket error,
/// or the drain.
async fn wait_for_request(io: &PrefixedIo<TcpStream>, drain: &mut watch::Receiver<bool>) -> bool {
    if io.has_prefix() {
        return true;
    }
    let readable = tokio::time::timeout(HEADER_READ_TIMEOUT, io.get_ref().readable());
    tokio::select! {
        ready = readable => matches!(ready, Ok(Ok(()))),
        _ = drain.changed() => false,
    }
}

/// Serves `io` with one hyper connection until the client closes, an error, the drain, or the
/// connection parks (its socket is then in `state`).
async fn serve_hyper(
    builder: &http1::Builder,
    io: PrefixedIo<TcpStream>,
    proxy: &Arc<Proxy>,
    info: &ClientInfo,
    state: &Arc<ConnState<PrefixedIo<TcpStream>>>,
    drain: &mut watch::Receiver<bool>,
) -> hyper::Result<()> {
    let service = {
        let (proxy, info, state) = (proxy.clone(), info.clone(), state.clone());
        service_fn(move |req| {
            let (proxy, info) = (proxy.clone(), info.clone());
            let in_flight = state.enter();
            // Boxed per request: hyper keeps a slot the size of this future for every open
            // connection, and the handler's state (about 4 KiB) would otherwise stay
            // allocated on each idle keep-alive connection.
            async move {
                let response = Box::pin(proxy.handle(req, info)).await;
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    in_flight.upgraded();
                }
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
            }
        })
    };
    let conn = builder
        .serve_connection(TokioIo::new(ParkingIo::new(io, state.clone())), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        _ = drain.changed() => {
            // Closes an idle connection now; one with a request in flight after its response.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Runs `f` when dropped, including when the task is aborted at the drain deadline.
pub(crate) fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
