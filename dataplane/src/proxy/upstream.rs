//! Upstream connections: the pooled HTTP/1.1 client, its connector (connect timeout read from
//! the live config on every connect), and which endpoints a request tries in which order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower_service::Service;

use super::BoxError;
use super::body::RequestBody;
use crate::model::{Endpoint, ServiceRef};
use crate::shared::Shared;

/// ingress-nginx's `upstream-keepalive-timeout`: idle upstream connections are closed after it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// ingress-nginx's `upstream-keepalive-connections`, applied per endpoint.
pub const POOL_MAX_IDLE_PER_ENDPOINT: usize = 320;

pub(crate) type UpstreamClient = Client<Connector, RequestBody>;

/// Builds the shared upstream client. The pool is keyed by endpoint address (requests carry
/// `http://<ip>:<port>` URIs), so a keep-alive connection is only ever reused for the endpoint
/// it was opened to, and an endpoint that leaves the snapshot gets no new request.
pub(crate) fn client(shared: Arc<Shared>) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    // Our wrapper applies the (live) connect timeout; the inner one would be fixed at startup.
    http.set_connect_timeout(None);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_ENDPOINT)
        // Adds `Host: <endpoint>` only when the request has none (an HTTP/1.0 client sent
        // none): an HTTP/1.1 upstream requires one. The client's Host is never replaced.
        .set_host(true)
        .build(Connector { http, shared })
}

/// The client for external auth requests (`auth-url`): unlike [`UpstreamClient`], its URIs
/// name hosts (resolved by the system resolver) and may be HTTPS, verified against the
/// system's roots.
pub(crate) type AuthClient = Client<hyper_rustls::HttpsConnector<Connector>, RequestBody>;

/// Builds the [`AuthClient`]. Without readable system roots, HTTPS auth URLs fail (closed).
pub(crate) fn auth_client(shared: Arc<Shared>) -> AuthClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(None);
    http.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(builder) => builder,
        Err(error) => {
            tracing::warn!(%error, "no system root certificates: HTTPS auth-url requests will fail");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }
    };
    let https = builder
        .https_or_http()
        .enable_http1()
        .wrap_connector(Connector { http, shared });
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(https)
}

/// Clients for `backend-protocol` other than HTTP: h2c (GRPC), and TLS (HTTPS with ALPN
/// h2 or http/1.1, GRPCS with h2 only). As ingress-nginx's default `proxy-ssl-verify: off`,
/// the backend's certificate is not verified (its handshake signature still is): a backend's
/// certificate is typically self-signed for its Pod, and the client does not send SNI for an
/// endpoint address.
pub(crate) struct BackendClients {
    pub h2c: UpstreamClient,
    pub https: TlsClient,
    pub grpcs: TlsClient,
}

pub(crate) type TlsClient = Client<hyper_rustls::HttpsConnector<Connector>, RequestBody>;

impl BackendClients {
    pub(crate) fn new(shared: Arc<Shared>) -> BackendClients {
        let plain = || {
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            http.set_connect_timeout(None);
            http.set_keepalive(Some(Duration::from_secs(60)));
            http.enforce_http(false);
            Connector {
                http,
                shared: shared.clone(),
            }
        };
        let builder = || {
            let mut b = Client::builder(TokioExecutor::new());
            b.pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(POOL_MAX_IDLE_PER_ENDPOINT);
            b
        };
        // ALPN is set by the connector builder from the enabled versions.
        let tls = || {
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new()))
                .with_no_client_auth()
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls())
            .https_only()
            .enable_all_versions()
            .wrap_connector(plain());
        let grpcs = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls())
            .https_only()
            .enable_http2()
            .wrap_connector(plain());
        BackendClients {
            h2c: builder().http2_only(true).build(plain()),
            https: builder().build(https),
            grpcs: builder().http2_only(true).build(grpcs),
        }
    }
}

/// Accepts any backend certificate (`proxy-ssl-verify: off`) but checks the handshake
/// signatures with the provider's algorithms, so the connection is still to the holder of the
/// key the certificate names.
#[derive(Debug)]
struct UnverifiedBackend {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl UnverifiedBackend {
    fn new() -> Self {
        UnverifiedBackend {
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for UnverifiedBackend {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The connect step took longer than `proxy-connect-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out after {0:?}")]
pub(crate) struct ConnectTimeout(pub Duration);

/// `HttpConnector` with a connect timeout read from the current config on every connect.
#[derive(Clone)]
pub(crate) struct Connector {
    http: HttpConnector,
    shared: Arc<Shared>,
}

impl Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.shared.config.load().proxy_connect_timeout;
        let connect = self.http.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(timeout, connect).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimeout(timeout)) as BoxError),
            }
        })
    }
}

/// Finds an error of type `E` in `error`'s source chain.
pub(crate) fn find_in_chain<'a, E: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The metrics kind of a failed connect: refused, timed out, or anything else.
pub(crate) fn connect_failure_kind(error: &(dyn StdError + 'static)) -> &'static str {
    if find_in_chain::<ConnectTimeout>(error).is_some() {
        "connect_timeout"
    } else if find_in_chain::<std::io::Error>(error)
        .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    {
        "connect_refused"
    } else {
        "connect_error"
    }
}

/// The endpoints a request may use: the ready ones, or, when none is ready, those still
/// serving while terminating (kube-proxy's fallback, so a rolling update of a one-replica
/// Deployment does not drop traffic). Borrows the snapshot's list; never allocates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidates<'a> {
    endpoints: &'a [Endpoint],
    fallback: bool,
    all: bool,
    count: usize,
}

impl<'a> Candidates<'a> {
    pub(crate) fn select(endpoints: &'a [Endpoint]) -> Self {
        let ready = endpoints.iter().filter(|e| e.ready).count();
        if ready > 0 {
            return Candidates {
                endpoints,
                fallback: false,
                all: ready == endpoints.len(),
                count: ready,
            };
        }
        let serving = endpoints
            .iter()
            .filter(|e| e.serving && e.terminating)
            .count();
        Candidates {
            endpoints,
            fallback: true,
            all: false,
            count: serving,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    fn eligible(&self, e: &Endpoint) -> bool {
        if self.fallback {
            e.serving && e.terminating
        } else {
            e.ready
        }
    }

    /// The `i`-th eligible endpoint (`i < len()`).
    pub(crate) fn nth(&self, i: usize) -> Option<SocketAddr> {
        if self.all {
            return self.endpoints.get(i).map(|e| e.addr);
        }
        self.endpoints
            .iter()
            .filter(|e| self.eligible(e))
            .nth(i)
            .map(|e| e.addr)
    }
}

/// How many endpoints one request tries: `proxy-next-upstream-tries` (0 = every candidate once),
/// never more than there are candidates, since an endpoint that just refused is not retried.
pub(crate) fn attempts(tries: u32, candidates: usize) -> usize {
    if tries == 0 {
        candidates
    } else {
        candidates.min(tries as usize)
    }
}

/// The round-robin position for `service`, then advanced.
///
/// The counters are per worker thread, like nginx's per-worker round robin (ingress-nginx's
/// Lua balancer keeps its state per worker too): no lock and no shared cache line on the hot
/// path, and every thread still spreads its requests evenly. Keyed by the Service reference, not
/// by the snapshot's objects, so the rotation carries on across snapshot swaps.
pub(crate) fn next_round_robin(service: &ServiceRef) -> usize {
    // Keys of Services long gone would accumulate; a rare reset just restarts rotations.
    const MAX_KEYS: usize = 16_384;
    thread_local! {
        static COUNTERS: RefCell<HashMap<u64, usize>> = RefCell::new(HashMap::new());
    }
    let mut hasher = std::hash::DefaultHasher::new();
    service.hash(&mut hasher);
    let key = hasher.finish();
    COUNTERS.with(|counters| {
        let mut counters = counters.borrow_mut();
        if counters.len() >= MAX_KEYS && !counters.contains_key(&key) {
            counters.clear();
        }
        let slot = counters.entry(key).or_insert(0);
        let current = *slot;
        *slot = slot.wrapping_add(1);
        current
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortRef;

    fn ep(port: u16, ready: bool, serving: bool, terminating: bool) -> Endpoint {
        Endpoint {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ready,
            serving,
            terminating,
        }
    }

    fn ports(c: &Candidates<'_>) -> Vec<u16> {
        (0..c.len())
            .map(|i| c.nth(i).expect("in range").port())
            .collect()
    }

    #[test]
    fn candidate_selection_table() {
        let cases: Vec<(&str, Vec<Endpoint>, Vec<u16>)> = vec![
            ("empty", vec![], vec![]),
            (
                "all ready",
                vec![ep(1, true, true, false), ep(2, true, true, false)],
                vec![1, 2],
            ),
            (
                "not-ready ones skipped",
                vec![
                    ep(1, false, false, false),
                    ep(2, true, true, false),
                    ep(3, false, true, true),
                ],
                vec![2],
            ),
            (
                "no ready: serving terminating ones",
                vec![
                    ep(1, false, true, true),
                    ep(2, false, false, true),
                    ep(3, false, true, true),
                ],
                vec![1, 3],
            ),
            (
                "no ready, none serving: nothing",
                vec![ep(1, false, false, true), ep(2, false, false, false)],
                vec![],
            ),
            (
                "serving but not terminating and not ready is not a fallback",
                vec![ep(1, false, true, false)],
                vec![],
            ),
        ];
        for (name, endpoints, want) in cases {
            let c = Candidates::select(&endpoints);
            assert_eq!(ports(&c), want, "{name}");
            assert_eq!(c.nth(c.len()), None, "{name}: out of range");
        }
    }

    #[test]
    fn attempts_table() {
        let cases = [(3, 5, 3), (3, 2, 2), (0, 4, 4), (1, 4, 1), (20, 0, 0)];
        for (tries, candidates, want) in cases {
            assert_eq!(
                attempts(tries, candidates),
                want,
                "{tries} tries, {candidates}"
            );
        }
    }

    #[test]
    fn round_robin_rotates_per_service_and_survives_swaps() {
        let svc = |name: &str| ServiceRef {
            namespace: "ns".into(),
            name: name.into(),
            port: PortRef::Number(80),
        };
        let endpoints = [
            ep(1, true, true, false),
            ep(2, true, true, false),
            ep(3, true, true, false),
        ];
        let pick = |service: &ServiceRef, endpoints: &[Endpoint]| {
            let c = Candidates::select(endpoints);
            c.nth(next_round_robin(service) % c.len())
                .expect("candidate")
                .port()
        };
        let a = svc("a");
        let b = svc("b");
        let first: Vec<u16> = (0..3).map(|_| pick(&a, &endpoints)).collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3], "three requests hit three endpoints");
        // Interleaved requests for another Service do not disturb the rotation.
        let mut seq = Vec::new();
        for _ in 0..3 {
            seq.push(pick(&a, &endpoints));
            pick(&b, &endpoints);
        }
        assert_eq!(seq, first, "a's rotation continues where it was");
        // A new snapshot builds new endpoint lists: the counter is keyed by the Service.
        let swapped = endpoints.to_vec();
        assert_eq!(pick(&a, &swapped), first[0]);
    }

    #[test]
    fn connect_failure_kinds() {
        let refused: BoxError =
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(connect_failure_kind(&*refused), "connect_refused");
        let timeout: BoxError = Box::new(ConnectTimeout(Duration::from_secs(1)));
        assert_eq!(connect_failure_kind(&*timeout), "connect_timeout");
        let other: BoxError = "boom".into();
        assert_eq!(connect_failure_kind(&*other), "connect_error");
    }
}
