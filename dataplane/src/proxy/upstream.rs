//! Upstream connections: hyper-util's clients (h2c, TLS, auth), their connector (connect timeout read from
//! the live config on every connect), and which endpoints a request tries in which order.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tower_service::Service;

use super::BoxError;
use super::body::RequestBody;
use crate::model::{Endpoint, ServiceRef};
use crate::shared::Shared;
use crate::upstream_tls::{ConfigIdentity, UnverifiedBackend, UpstreamTlsConfig};

/// ingress-nginx's `upstream-keepalive-timeout`: idle upstream connections are closed after it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// ingress-nginx's `upstream-keepalive-connections`, applied per endpoint.
pub const POOL_MAX_IDLE_PER_ENDPOINT: usize = 320;

/// hyper-util's pooled client over [`Connector`]: h2c (`backend-protocol: GRPC`). Plain HTTP
/// goes through [`super::pool::Http1Pool`].
pub(crate) type UpstreamClient = Client<Connector, RequestBody>;

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
/// endpoint address. An Ingress with `proxy-ssl-*` annotations uses [`Self::request_with`].
pub(crate) struct BackendClients {
    pub h2c: UpstreamClient,
    pub https: TlsClient,
    pub grpcs: TlsClient,
    /// Clients for per-Ingress TLS (`proxy-ssl-*`), built on first use.
    configured: TlsClientCache,
}

pub(crate) type TlsClient = Client<hyper_rustls::HttpsConnector<Connector>, RequestBody>;

/// A plain connector for the TLS clients (their URIs are `https://<endpoint>`).
fn backend_connector(shared: &Arc<Shared>) -> Connector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(None);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    Connector {
        http,
        shared: shared.clone(),
    }
}

/// The pool settings every backend client shares.
fn backend_client_builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_ENDPOINT);
    b
}

/// A TLS client over `config` (whose ALPN must be empty: hyper-rustls sets it and panics
/// otherwise): h2 or http/1.1 by ALPN, or h2 only for gRPC.
fn tls_client(
    shared: &Arc<Shared>,
    config: rustls::ClientConfig,
    server_name: Option<ServerName<'static>>,
    grpc: bool,
) -> TlsClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    // Without a name, hyper-rustls uses the URI's host: the endpoint address.
    let builder = match server_name {
        Some(name) => {
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let builder = if grpc {
        builder.enable_http2()
    } else {
        builder.enable_all_versions()
    };
    let connector = builder.wrap_connector(backend_connector(shared));
    let mut client = backend_client_builder();
    if grpc {
        client.http2_only(true);
    }
    client.build(connector)
}

impl BackendClients {
    pub(crate) fn new(shared: Arc<Shared>) -> BackendClients {
        let tls = || {
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new()))
                .with_no_client_auth()
        };
        BackendClients {
            h2c: backend_client_builder()
                .http2_only(true)
                .build(backend_connector(&shared)),
            https: tls_client(&shared, tls(), None, false),
            grpcs: tls_client(&shared, tls(), None, true),
            configured: TlsClientCache::new(shared),
        }
    }

    /// Sends `req` (URI `https://<endpoint>`) over TLS configured by an Ingress's
    /// `proxy-ssl-*`: `server_name` (from [`UpstreamTlsConfig::server_name`]) is verified
    /// against the backend's certificate when the config verifies, and sent as SNI when it
    /// sends SNI. `grpc`: h2 only (GRPCS), else h2 or http/1.1 by ALPN (HTTPS).
    ///
    /// Connections are pooled per (config identity, server name, protocol) and, inside that,
    /// per endpoint address, so a connection is reused only for the same endpoint, name and
    /// client certificate. A failed handshake is a connect error of the returned future.
    pub(crate) fn request_with(
        &self,
        tls: &UpstreamTlsConfig,
        server_name: &ServerName<'static>,
        grpc: bool,
        req: Request<RequestBody>,
    ) -> ResponseFuture {
        self.configured.client(tls, server_name, grpc).request(req)
    }

    /// Drops the clients (and their idle connections) of configs not in `live`: call it when a
    /// new snapshot is published, so a rotated or removed Secret's key leaves memory promptly.
    /// Without it, unused clients still go after [`TLS_CLIENT_IDLE`].
    #[allow(dead_code)] // wired by the snapshot publisher
    pub(crate) fn retain_upstream_tls(&self, live: impl IntoIterator<Item = ConfigIdentity>) {
        self.configured.retain(&live.into_iter().collect());
    }
}

/// A per-Ingress TLS client unused this long is dropped (its pooled connections have idled out
/// after [`POOL_IDLE_TIMEOUT`] anyway; TLS session tickets live in the config, not the client).
pub(crate) const TLS_CLIENT_IDLE: Duration = Duration::from_secs(300);
/// At most this many per-Ingress TLS clients; beyond it the least recently used goes. A
/// `proxy-ssl-name` template with a per-request variable makes one client per value.
pub(crate) const MAX_TLS_CLIENTS: usize = 1024;
/// Idle clients are looked for at most this often (on inserts only).
const TLS_CLIENT_SWEEP: Duration = Duration::from_secs(30);

/// The per-Ingress TLS clients. hyper-rustls fixes the server name per connector, so there is
/// one client per (config, name, protocol); each pools per endpoint address.
struct TlsClientCache {
    shared: Arc<Shared>,
    state: Mutex<CacheState>,
}

type ConfigKey = (ConfigIdentity, bool);

struct CacheState {
    // Nested so a lookup borrows the name instead of cloning it per request.
    clients: HashMap<ConfigKey, HashMap<ServerName<'static>, CachedClient>>,
    len: usize,
    last_sweep: Instant,
}

struct CachedClient {
    client: TlsClient,
    last_used: Instant,
}

impl TlsClientCache {
    fn new(shared: Arc<Shared>) -> Self {
        TlsClientCache {
            shared,
            state: Mutex::new(CacheState {
                clients: HashMap::new(),
                len: 0,
                last_sweep: Instant::now(),
            }),
        }
    }

    fn build(&self, tls: &UpstreamTlsConfig, name: &ServerName<'static>, grpc: bool) -> TlsClient {
        let config = rustls::ClientConfig::clone(tls.client_config());
        tls_client(&self.shared, config, Some(name.clone()), grpc)
    }

    fn client(&self, tls: &UpstreamTlsConfig, name: &ServerName<'static>, grpc: bool) -> TlsClient {
        let now = Instant::now();
        // A poisoned lock only means a panic elsewhere: an unpooled client is still correct.
        let Ok(mut state) = self.state.lock() else {
            return self.build(tls, name, grpc);
        };
        let key = (tls.identity(), grpc);
        if let Some(cached) = state.clients.get_mut(&key).and_then(|m| m.get_mut(name)) {
            cached.last_used = now;
            return cached.client.clone();
        }
        state.make_room(now);
        let client = self.build(tls, name, grpc);
        state.clients.entry(key).or_default().insert(
            name.clone(),
            CachedClient {
                client: client.clone(),
                last_used: now,
            },
        );
        state.len += 1;
        client
    }

    fn retain(&self, live: &HashSet<ConfigIdentity>) {
        if let Ok(mut state) = self.state.lock() {
            state
                .clients
                .retain(|(identity, _), _| live.contains(identity));
            state.recount();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.len)
    }
}

impl CacheState {
    /// Drops idle clients (at most every [`TLS_CLIENT_SWEEP`], or when full), then the least
    /// recently used while still full.
    fn make_room(&mut self, now: Instant) {
        let full = self.len >= MAX_TLS_CLIENTS;
        if full || now.duration_since(self.last_sweep) >= TLS_CLIENT_SWEEP {
            self.last_sweep = now;
            for names in self.clients.values_mut() {
                names.retain(|_, c| now.duration_since(c.last_used) < TLS_CLIENT_IDLE);
            }
            self.recount();
        }
        while self.len >= MAX_TLS_CLIENTS {
            let oldest = self
                .clients
                .iter()
                .flat_map(|(key, names)| names.iter().map(move |(n, c)| (c.last_used, *key, n)))
                .min_by_key(|(used, _, _)| *used)
                .map(|(_, key, name)| (key, name.clone()));
            let Some((key, name)) = oldest else { break };
            if let Some(names) = self.clients.get_mut(&key) {
                names.remove(&name);
            }
            self.recount();
        }
    }

    fn recount(&mut self) {
        self.clients.retain(|_, names| !names.is_empty());
        self.len = self.clients.values().map(HashMap::len).sum();
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
        static COUNTERS: RefCell<HashMap<u64, usize, BuildHasherDefault<FastHasher>>> =
            RefCell::new(HashMap::default());
    }
    // Not SipHash: Service names are the cluster's, not clients', and this runs per request.
    let mut hasher = FastHasher::default();
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

/// FxHash's mixing step, for per-request maps keyed by data the cluster or the proxy chose
/// (pointers, addresses, Service names), never by clients: SipHash's flooding resistance buys
/// nothing there and it showed in the profile.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        for b in chunks.remainder() {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, word: u8) {
        self.write_u64(u64::from(word));
    }

    fn write_u16(&mut self, word: u16) {
        self.write_u64(u64::from(word));
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

/// The URI authority of an endpoint, `ip:port`. Formatting an address showed in the profile
/// and an endpoint's text never changes, so each thread keeps the ones it made (bounded);
/// a clone shares the bytes.
pub(crate) fn endpoint_authority(addr: SocketAddr) -> Option<http::uri::Authority> {
    const MAX_ENTRIES: usize = 4096;
    thread_local! {
        static AUTHORITIES: RefCell<HashMap<SocketAddr, http::uri::Authority, BuildHasherDefault<FastHasher>>> =
            RefCell::new(HashMap::default());
    }
    AUTHORITIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(authority) = cache.get(&addr) {
            return Some(authority.clone());
        }
        let authority = http::uri::Authority::try_from(addr.to_string()).ok()?;
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(addr, authority.clone());
        Some(authority)
    })
}

#[cfg(test)]
#[path = "upstream_tls_tests.rs"]
mod upstream_tls_tests;

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
