//! The HTTPS listener: accept, optional PROXY protocol header, read the ClientHello, then by
//! its server name either pass the connection through undecrypted or terminate TLS and serve
//! HTTP/1.1 or HTTP/2 (ALPN) with [`Proxy::handle`]. Graceful drain as on the HTTP listener.
//!
//! The server name is read twice: by [`client_hello`](super::client_hello) to decide on
//! passthrough (the bytes must still be forwarded untouched), and by rustls when terminating
//! (the name the certificate is chosen for, and the one requests are checked against). Both
//! parsers ignore the same invalid names; should they still disagree so that rustls's name is a
//! passthrough host, the connection is closed rather than terminated with the wrong policy.
//! rustls's name also picks the host's `ssl-ciphers` and client-certificate request, with its
//! certificate. A requested client certificate is verified once, right after the handshake,
//! and the verdict goes with every request of the connection ([`ClientInfo::client_cert`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::server::Acceptor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::LazyConfigAcceptor;

use super::client_hello::{ClientHelloError, read_client_hello};
use super::listener::{HEADER_READ_TIMEOUT, Incoming, accept_connection, scopeguard};
use super::proxy_protocol::PrefixedIo;
use super::tls::{HANDSHAKE_TIMEOUT, Tls, tls12_ciphers};
use super::{ClientCert, ClientInfo, Proxy, passthrough};
use crate::router::normalize_host;
use crate::tls::TlsPolicy;

/// nginx's `http2_max_concurrent_streams` default.
const H2_MAX_CONCURRENT_STREAMS: u32 = 128;

/// What nginx answers a plain HTTP request on its HTTPS port with.
const PLAIN_HTTP_RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 49\r\n\
connection: close\r\n\
\r\n\
400 The plain HTTP request was sent to HTTPS port\n";

/// Serves HTTPS on `listener` until `shutdown` completes, then drains like
/// [`serve_http`](super::serve_http): the listener closes, idle connections close, requests in
/// flight finish for up to `drain_deadline`, then what is left (passthrough connections
/// included) is dropped.
pub async fn serve_https<F>(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    tls: Arc<Tls>,
    shutdown: F,
    drain_deadline: Duration,
) where
    F: Future<Output = ()>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    super::listener::accept_and_drain(
        listener,
        shutdown,
        drain_deadline,
        "HTTPS",
        // TLS connections do not park: hyper-util's auto builder cannot hand the socket back.
        None,
        |incoming, draining| {
            serve_connection(
                incoming,
                proxy.clone(),
                tls.clone(),
                builder.clone(),
                draining,
            )
        },
    )
    .await;
}

async fn serve_connection(
    incoming: Incoming,
    proxy: Arc<Proxy>,
    tls: Arc<Tls>,
    builder: auto::Builder<TokioExecutor>,
    mut drain: watch::Receiver<bool>,
) {
    // Nothing parks here (no set is passed), so only accepted connections arrive.
    let Incoming::Accepted(stream, peer) = incoming else {
        return;
    };
    let metrics = proxy.metrics.clone();
    metrics.connections_open.inc();
    let _open = {
        let metrics = metrics.clone();
        scopeguard(move || {
            metrics.connections_open.dec();
        })
    };
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let proxy_protocol = proxy.shared.fleet.load().proxy_protocol;
    let connection = match accept_connection(stream, peer, proxy_protocol, true).await {
        Ok(connection) => connection,
        Err(error) => {
            tracing::debug!(%peer, %error, "refused connection");
            return;
        }
    };
    let (mut io, info) = (connection.io, connection.info);

    let (hello, buffered) = match timeout_at(deadline, read_client_hello(&mut io)).await {
        Ok(Ok(read)) => read,
        Ok(Err(ClientHelloError::NotTls { http: true })) => {
            metrics.tls_connection("plain_http");
            let _ = timeout_at(deadline, io.write_all(PLAIN_HTTP_RESPONSE)).await;
            let _ = timeout_at(deadline, io.shutdown()).await;
            return;
        }
        Ok(Err(error)) => {
            metrics.tls_connection("client_hello");
            tracing::debug!(%peer, %error, "refused TLS connection");
            return;
        }
        Err(_) => {
            metrics.tls_connection("timeout");
            tracing::debug!(%peer, "no ClientHello in time");
            return;
        }
    };
    // Replays what was read, to the passthrough backend or to rustls.
    let io = PrefixedIo::new(buffered.freeze(), io);

    let config = proxy.shared.config.load_full();
    let snapshot = proxy.shared.snapshot.load_full();
    if let TlsPolicy::Passthrough(passthrough) = snapshot.tls_policy(hello.server_name.as_deref()) {
        let backend = passthrough.backend.clone();
        // The connection may last long; it keeps only what it uses, not the whole snapshot.
        drop(snapshot);
        metrics.tls_connection("passthrough");
        if let Err(error) = passthrough::forward(
            io,
            &backend,
            config.proxy_connect_timeout,
            config.proxy_next_upstream_tries,
        )
        .await
        {
            metrics.tls_connection("passthrough_failed");
            tracing::debug!(%peer, server_name = ?hello.server_name, %error, "passthrough failed");
        }
        return;
    }

    let start = match timeout_at(deadline, LazyConfigAcceptor::new(Acceptor::default(), io)).await {
        Ok(Ok(start)) => start,
        Ok(Err(error)) => {
            metrics.tls_connection("handshake");
            tracing::debug!(%peer, %error, "TLS ClientHello refused");
            return;
        }
        Err(_) => {
            metrics.tls_connection("timeout");
            return;
        }
    };
    let server_name: Option<Arc<str>> = start
        .client_hello()
        .server_name()
        .map(|name| Arc::from(normalize_host(name).as_ref()));
    let own = match snapshot.tls_policy(server_name.as_deref()) {
        TlsPolicy::Terminate(own) => own,
        TlsPolicy::Passthrough(_) => {
            metrics.tls_connection("client_hello");
            tracing::debug!(%peer, ?server_name, "server names disagree on a passthrough host");
            return;
        }
    };
    let certificate = tls.certificate(&snapshot, own).clone();
    let tls12 = tls12_ciphers(&snapshot, server_name.as_deref());
    let client_auth = snapshot
        .client_handshake(server_name.as_deref())
        .map(|(ca, depth)| (ca.clone(), depth));
    let client_ca = client_auth.as_ref().map(|(ca, _)| ca);
    let server_config = match tls.server_config(&snapshot, &config, &certificate, tls12, client_ca)
    {
        Ok(server_config) => server_config,
        Err(error) => {
            metrics.tls_connection("handshake");
            tracing::warn!(%error, "no TLS configuration for a connection");
            return;
        }
    };
    // Requests read the current snapshot themselves.
    drop(snapshot);
    let stream = match timeout_at(deadline, start.into_stream(server_config)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            metrics.tls_connection("handshake");
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            metrics.tls_connection("timeout");
            return;
        }
    };
    metrics.tls_connection("terminated");

    let client_cert = client_auth.map(|(ca, depth)| {
        let chain = stream.get_ref().1.peer_certificates().unwrap_or_default();
        Arc::new(ClientCert::verify(
            &ca,
            depth,
            chain,
            rustls::pki_types::UnixTime::now(),
        ))
    });
    let info = ClientInfo {
        server_name,
        client_cert,
        ..info
    };
    let service = service_fn(move |req| {
        let (proxy, info) = (proxy.clone(), info.clone());
        // Boxed per request: hyper keeps a slot the size of this future for every open
        // connection, and the handler's state (about 4 KiB) would otherwise stay allocated
        // on each idle keep-alive connection.
        async move { Ok::<_, Infallible>(Box::pin(proxy.handle(req, info)).await) }
    });
    // HTTP/2 multiplexes responses on one stream: they go out in batches (see `coalesce`).
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = super::coalesce::Coalesce::new(stream, h2);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = drain.changed() => {
            // HTTP/2 gets GOAWAY and finishes its streams; HTTP/1.1 closes when idle.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "TLS connection ended with an error");
    }
}
