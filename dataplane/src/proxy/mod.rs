//! The proxy half of the data plane: listeners, the per-request handler, upstream pools.
//!
//! Entry points, built once in `main`:
//!
//! ```ignore
//! let mut registry = Registry::with_prefix("sluice");
//! let metrics = Arc::new(ProxyMetrics::new(&mut registry));
//! let proxy = Arc::new(Proxy::new(shared.clone(), metrics, ProxyOptions::default()));
//! let http = TcpListener::bind((bind_address, http_port)).await?;
//! tokio::spawn(serve_http(http, proxy.clone(), shutdown_signal, Duration::from_secs(30)));
//! ```
//!
//! The HTTPS listener ([`serve_https`]) reuses [`accept_connection`] (PROXY protocol), reads the
//! ClientHello ([`client_hello`]), then either splices the connection to a passthrough backend
//! or terminates TLS with the config [`Tls`] picks for its server name, and calls
//! [`Proxy::handle`] with `ClientInfo { tls: true, server_name, .. }` from its own hyper
//! connection (HTTP/1.1 or HTTP/2 by ALPN, both give `Request<Incoming>`).
//!
//! Every request reads the current [`Snapshot`](crate::model::Snapshot) and config once, when it
//! arrives, and keeps those `Arc`s until it is done: a swap never changes a request in flight.

mod access_log;
mod body;
mod client_cert;
pub mod client_hello;
mod coalesce;
mod errors;
mod handler;
mod headers;
mod https;
mod listener;
mod metrics;
mod park;
mod parked;
mod passthrough;
mod policy;
mod pool;
mod proxy_protocol;
pub mod tls;
mod tunnel;
mod upstream;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

pub use access_log::{ACCESS_LOG_CAPACITY, AccessLog, AccessLogEntry};
pub use client_cert::{ClientCert, Verification};
pub use errors::ProxyError;
pub use headers::PathError;
pub use https::serve_https;
pub use listener::{Connection, accept_connection, serve_http};
pub use metrics::{ProxyMetrics, RequestLabels};
pub use proxy_protocol::{
    HEADER_TIMEOUT, PrefixedIo, ProxyHeader, ProxyProtocolError, parse as parse_proxy_header,
    read_proxy_header,
};
pub use tls::Tls;

use crate::shared::Shared;

/// Errors carried by response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type of [`Proxy::handle`]: streamed, `Send`, not `Sync`.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// Settings fixed at startup (flags), as opposed to the live [`Shared`] config.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The port clients use for plain HTTP (the Service's 80, not the pod's 8080): sent as
    /// `X-Forwarded-Port`.
    pub external_http_port: u16,
    /// `--external-https-port`: `X-Forwarded-Port` on TLS connections, and the port of HTTPS
    /// redirects (TLS issue).
    pub external_https_port: u16,
    /// One JSON access-log line per request on stdout. Off by default.
    pub access_log: bool,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            external_http_port: 80,
            external_https_port: 443,
            access_log: false,
        }
    }
}

/// What the listener knows about a client connection, passed to every request on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The TCP peer (the load balancer, with PROXY protocol or an L7 LB in front).
    pub peer: SocketAddr,
    /// Our local address of the connection.
    pub local: SocketAddr,
    /// The connection is TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
    /// The client address from the PROXY protocol header, when there was one with an address.
    pub proxy_protocol_src: Option<SocketAddr>,
    /// On a TLS connection, the server name (SNI) its handshake was for, lowercase; `None`
    /// without SNI. Requests for hosts under another TLS policy are refused (421).
    pub server_name: Option<Arc<str>>,
    /// On a TLS connection whose handshake requested a client certificate (`auth-tls-*`),
    /// what was sent and how it verified; `None` when none was requested.
    pub client_cert: Option<Arc<ClientCert>>,
}

/// The proxy: built once, shared by every listener and connection.
pub struct Proxy {
    shared: Arc<Shared>,
    metrics: Arc<ProxyMetrics>,
    opts: ProxyOptions,
    /// Plain-HTTP upstream connections (`backend-protocol: HTTP`, the default).
    pool: Arc<pool::Http1Pool>,
    /// `backend-protocol` HTTPS, GRPC and GRPCS.
    backends: upstream::BackendClients,
    /// External auth requests (`auth-url`): by host name, HTTP or HTTPS.
    auth_client: upstream::AuthClient,
    /// `load-balance: ewma` response times per endpoint.
    ewma: crate::policy::ewma::EwmaTable,
    /// `limit-rps`, `limit-rpm`, `limit-connections` state, per Ingress and client address.
    limits: crate::policy::ratelimit::RateLimiters,
    access_log: Option<AccessLog>,
}

impl Proxy {
    /// Builds the proxy and its upstream pool; starts the access-log writer (a thread writing
    /// to stdout) when `opts.access_log` is set. Needs no runtime to be running yet.
    pub fn new(shared: Arc<Shared>, metrics: Arc<ProxyMetrics>, opts: ProxyOptions) -> Self {
        let access_log = if opts.access_log {
            match AccessLog::stdout(metrics.clone()) {
                Ok(log) => Some(log),
                // Only fails if no thread can be started; serving beats logging.
                Err(error) => {
                    tracing::error!(%error, "cannot start the access-log writer; access log off");
                    None
                }
            }
        } else {
            None
        };
        Self::with_access_log(shared, metrics, opts, access_log)
    }

    /// Like [`Proxy::new`] with the access log going to `access_log` (any writer, see
    /// [`AccessLog::spawn`]), or nowhere; `opts.access_log` is ignored.
    pub fn with_access_log(
        shared: Arc<Shared>,
        metrics: Arc<ProxyMetrics>,
        opts: ProxyOptions,
        access_log: Option<AccessLog>,
    ) -> Self {
        Proxy {
            pool: pool::Http1Pool::new(shared.clone(), metrics.upstream_idle_gauges()),
            auth_client: upstream::auth_client(shared.clone()),
            backends: upstream::BackendClients::new(shared.clone()),
            limits: Default::default(),
            ewma: Default::default(),
            shared,
            metrics,
            opts,
            access_log,
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn metrics(&self) -> &Arc<ProxyMetrics> {
        &self.metrics
    }
}
