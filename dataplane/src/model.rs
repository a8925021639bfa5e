//! The immutable routing snapshot the proxy reads.
//!
//! Nothing in this module knows about Kubernetes: the translation in [`crate::translate`] is the
//! only place where API objects appear. A [`Snapshot`] is built once per configuration change,
//! published behind an `Arc` (the proxy swaps it with `ArcSwap`) and never mutated afterwards, so
//! every matching structure (host maps, path indexes, compiled regexes) is built here, at
//! construction, and a request only does lookups.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use regex::bytes::Regex;
use serde::{Serialize, Serializer};
pub use sluice_crds::annotations::Policies;

use crate::policy::basic_auth::Authenticator;

/// The Ingress a route, default backend or problem came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IngressRef {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl IngressRef {
    pub fn new(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        Self {
            namespace: crate::translate::intern_namespace(namespace.as_ref()),
            name: name.as_ref().into(),
        }
    }
}

impl fmt::Display for IngressRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Service port as an Ingress backend names it: by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(name) => write!(f, "{name:?}"),
        }
    }
}

/// A Service and one of its ports, as referenced by an Ingress (or by the set's default backend).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub port: PortRef,
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// One upstream address of a Service port, with its EndpointSlice conditions.
///
/// `ready` is the only flag the load balancer needs for new requests: translation already folds
/// the API's rules into it (a nil `ready` means ready; a terminating endpoint is never ready, so
/// requests in flight on it finish but no new request is sent there). `serving` and
/// `terminating` are kept so the proxy can fall back to serving-but-terminating endpoints when no
/// endpoint is ready (as kube-proxy does), and for the debug dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// Where a route sends its requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Backend {
    /// A Service with endpoints from its EndpointSlices. The list is sorted by address, has no
    /// duplicates, and is shared (not copied) by every route that names the same Service port.
    /// It may be empty (a Service scaled to zero): the proxy answers 503.
    Service {
        service: ServiceRef,
        #[serde(serialize_with = "through_arc")]
        endpoints: Arc<[Endpoint]>,
    },
    /// An `ExternalName` Service: the proxy resolves `host` itself and connects to `port`.
    ExternalName {
        service: ServiceRef,
        host: String,
        port: u16,
    },
}

impl Backend {
    /// The Service this backend was built from.
    pub fn service(&self) -> &ServiceRef {
        match self {
            Backend::Service { service, .. } | Backend::ExternalName { service, .. } => service,
        }
    }

    /// The endpoints of a `Service` backend; empty for `ExternalName`.
    pub fn endpoints(&self) -> &[Endpoint] {
        match self {
            Backend::Service { endpoints, .. } => endpoints,
            Backend::ExternalName { .. } => &[],
        }
    }
}

/// How a route's path is matched; see [`crate::router`] for the exact rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PathKind {
    Exact,
    Prefix,
    ImplementationSpecific,
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::Exact => "Exact",
            PathKind::Prefix => "Prefix",
            PathKind::ImplementationSpecific => "ImplementationSpecific",
        })
    }
}

/// A compiled path regex (regex mode). Compared and serialized by its pattern, so snapshots can
/// be compared for equality and dumped as JSON.
#[derive(Debug, Clone)]
pub struct PathRegex(pub(crate) Regex);

impl PathRegex {
    /// The compiled regex; match it against the request path's bytes. Capture group numbering is
    /// the user's (the anchoring wrapper is non-capturing), as `rewrite-target` expects.
    pub fn regex(&self) -> &Regex {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PathRegex {}

impl Serialize for PathRegex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One path of one host, from one Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The path as written in the Ingress (an empty ImplementationSpecific path becomes `/`).
    pub path: String,
    pub kind: PathKind,
    #[serde(serialize_with = "through_arc")]
    pub backend: Arc<Backend>,
    pub source: IngressRef,
    /// Set exactly when the host is in regex mode: then this, not `kind`, decides the match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<PathRegex>,
    /// The policies of `source`, shared by all its routes.
    #[serde(
        serialize_with = "through_arc",
        skip_serializing_if = "IngressPolicy::arc_is_none"
    )]
    pub policy: Arc<IngressPolicy>,
    /// A canary Ingress's backend for the same host and path, and when to use it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "option_through_arc"
    )]
    pub canary: Option<Arc<CanaryRoute>>,
}

/// The canary of a route: ingress-nginx's `canary: "true"` Ingress for the same host and path.
/// Requests it selects go to its backend; everything else about the request (the main
/// Ingress's policies) stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanaryRoute {
    #[serde(serialize_with = "through_arc")]
    pub backend: Arc<Backend>,
    pub source: IngressRef,
    /// Header, then cookie, then weight, as ingress-nginx decides.
    #[serde(skip)]
    pub rule: sluice_crds::annotations::Canary,
    /// `canary-by-header-pattern`, compiled.
    #[serde(skip)]
    pub pattern: Option<PathRegex>,
}

/// A backend used when no path matched, with the Ingress that provided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultBackend {
    #[serde(serialize_with = "through_arc")]
    pub backend: Arc<Backend>,
    pub source: IngressRef,
    /// The policies of `source`.
    #[serde(
        serialize_with = "through_arc",
        skip_serializing_if = "IngressPolicy::arc_is_none"
    )]
    pub policy: Arc<IngressPolicy>,
}

/// What an Ingress's annotations ask of the requests its routes serve, with the Secrets they
/// name already read. One per Ingress, shared by its routes and its default backend; most
/// Ingresses share [`IngressPolicy::none`].
#[derive(Debug, Default)]
pub struct IngressPolicy {
    /// The typed annotations (invalid keys already left out, see the Ingress's Events).
    pub annotations: Policies,
    /// `auth-type` with the credentials of its `auth-secret`.
    pub basic_auth: Option<Authenticator>,
    /// Set when the Ingress must not be served: an annotation that fails closed was invalid,
    /// or its credentials could not be read. Its routes stay (so requests do not fall through
    /// to another Ingress's less specific path) and answer 503, as ingress-nginx's denied
    /// locations do. The reason is for logs; the Event already told the user.
    pub denied: Option<String>,
    /// `default-backend`: answers for `custom-http-errors` and when the route's backend has no
    /// endpoints; `None` with `custom-http-errors`: the set's default backend.
    pub error_backend: Option<Arc<Backend>>,
    /// `proxy-ssl-*`: TLS to HTTPS and GRPCS backends with the client certificate, CA and
    /// server name of the `proxy-ssl-secret`.
    pub upstream_tls: Option<Arc<crate::upstream_tls::UpstreamTlsConfig>>,
    /// `custom-headers`: the validated entries of the named ConfigMap (lowercase names, in the
    /// ConfigMap's key order), set on every response of the Ingress, errors included,
    /// replacing the backend's (ingress-nginx's `more_set_headers`).
    pub custom_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Nothing to do per request: the handler skips every policy check.
    pub inert: bool,
}

static NO_POLICY: LazyLock<Arc<IngressPolicy>> = LazyLock::new(|| {
    Arc::new(IngressPolicy {
        inert: true,
        ..IngressPolicy::default()
    })
});

impl IngressPolicy {
    /// The shared policy of Ingresses without effective annotations.
    pub fn none() -> Arc<IngressPolicy> {
        NO_POLICY.clone()
    }

    /// Wraps a policy (its `inert` is recomputed), sharing [`IngressPolicy::none`] when it
    /// asks for nothing.
    pub fn new(policy: IngressPolicy) -> Arc<IngressPolicy> {
        let inert = IngressPolicy {
            inert: true,
            ..IngressPolicy::default()
        };
        let policy = IngressPolicy {
            inert: false,
            ..policy
        };
        if policy.annotations == inert.annotations
            && policy.basic_auth.is_none()
            && policy.denied.is_none()
            && policy.error_backend.is_none()
            && policy.upstream_tls.is_none()
            && policy.custom_headers.is_empty()
        {
            return IngressPolicy::none();
        }
        Arc::new(policy)
    }

    fn arc_is_none(policy: &Arc<IngressPolicy>) -> bool {
        policy.inert
    }

    /// The names of the policies in effect, for the debug dump.
    pub fn summary(&self) -> Vec<&'static str> {
        let a = &self.annotations;
        let mut out = Vec::new();
        let mut add = |on: bool, name: &'static str| {
            if on {
                out.push(name);
            }
        };
        add(self.denied.is_some(), "denied");
        add(a.redirect != Default::default(), "redirect");
        add(a.rewrite != Default::default(), "rewrite");
        add(self.basic_auth.is_some(), "basic-auth");
        add(a.external_auth.is_some(), "external-auth");
        add(a.affinity.is_some(), "affinity");
        add(a.tls != Default::default(), "tls");
        add(a.cors.is_some(), "cors");
        add(a.rate_limit.is_some(), "rate-limit");
        add(a.access.is_some(), "access-lists");
        add(a.proxy != Default::default(), "proxy");
        add(!a.headers.is_empty(), "headers");
        add(a.canary.is_some(), "canary");
        add(a.client_certificates.is_some(), "client-certificates");
        add(a.upstream_tls.is_some(), "upstream-tls");
        add(a.load_balancing != Default::default(), "load-balancing");
        add(a.errors.is_some(), "custom-errors");
        add(!self.custom_headers.is_empty(), "custom-headers");
        out
    }
}

impl PartialEq for IngressPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.annotations == other.annotations
            && self.basic_auth == other.basic_auth
            && self.denied == other.denied
            && self.error_backend == other.error_backend
            && self.upstream_tls == other.upstream_tls
            && self.custom_headers == other.custom_headers
    }
}

// `Policies` is only `PartialEq` for its durations and lists; it holds no floats.
impl Eq for IngressPolicy {}

impl Serialize for IngressPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("IngressPolicy", 2)?;
        s.serialize_field("policies", &self.summary())?;
        s.serialize_field("denied", &self.denied)?;
        s.end()
    }
}

/// Everything routed on one host (or on the catch-all).
///
/// Built by `HostRoutes::build` in [`crate::router`], which also builds the lookup indexes; the
/// indexes are private so they can never disagree with `routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRoutes {
    /// `foo.com`, `*.foo.com`, or empty for the catch-all.
    pub host: String,
    /// Every path on this host is a case-insensitive regex anchored at the start
    /// (ingress-nginx's `use-regex` / `rewrite-target` behaviour).
    pub regex_mode: bool,
    /// Used when no path matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<DefaultBackend>,
    /// In the order they are tried (regex mode) or displayed (otherwise): Exact, then Prefix and
    /// ImplementationSpecific longest first.
    pub routes: Vec<Route>,
    #[serde(skip)]
    pub(crate) index: PathIndex,
}

/// Lookup structures over `HostRoutes::routes`; values are indexes into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PathIndex {
    /// Exact paths, case-sensitive.
    pub(crate) exact: HashMap<String, usize>,
    /// Prefix paths keyed without trailing slashes (`/` is the empty key), so an element-wise
    /// match is a walk up the request path's `/` boundaries with one lookup each.
    pub(crate) prefix: HashMap<String, usize>,
    /// ImplementationSpecific paths as plain string prefixes.
    pub(crate) plain: HashMap<String, usize>,
    /// The distinct lengths of `plain` keys, longest first: the longest string prefix is found
    /// with one lookup per length instead of a scan over every path.
    pub(crate) plain_lengths: Vec<usize>,
}

/// Host name to its routes, each entry shared between snapshots.
///
/// A map of `HashMap`'s interface (by value in, by reference out), but every value sits behind
/// an `Arc`: a snapshot built after one Ingress changed shares every other host's routes with
/// the one before, so building, comparing and dropping it costs pointer copies per host, not
/// copies of every route and index (at 10k hosts that was most of a change's cost). The map
/// itself is persistent: a clone shares every node, and a change copies the few nodes on its
/// path, so the next snapshot costs neither a copy of the 10k-entry table nor, when the old one
/// is dropped on the proxy's thread, freeing one.
#[derive(Debug, Clone, Default)]
pub struct HostMap(
    imbl::GenericHashMap<
        Arc<str>,
        Arc<HostRoutes>,
        foldhash::fast::RandomState,
        imbl::shared_ptr::DefaultSharedPtr,
    >,
);

impl HostMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, host: String, routes: HostRoutes) -> Option<HostRoutes> {
        self.insert_shared(host.into(), Arc::new(routes))
            .map(Arc::unwrap_or_clone)
    }

    /// Inserts routes shared with another snapshot.
    pub fn insert_shared(
        &mut self,
        host: Arc<str>,
        routes: Arc<HostRoutes>,
    ) -> Option<Arc<HostRoutes>> {
        self.0.insert(host, routes)
    }

    pub fn get(&self, host: &str) -> Option<&HostRoutes> {
        self.0.get(host).map(|routes| &**routes)
    }

    /// The shared entry, to reuse in another snapshot.
    pub fn get_shared(&self, host: &str) -> Option<&Arc<HostRoutes>> {
        self.0.get(host)
    }

    /// Copies the entry first if another snapshot shares it.
    pub fn get_mut(&mut self, host: &str) -> Option<&mut HostRoutes> {
        self.0.get_mut(host).map(Arc::make_mut)
    }

    /// Removes an entry without copying it out.
    pub fn remove_shared(&mut self, host: &str) -> Option<Arc<HostRoutes>> {
        self.0.remove(host)
    }

    pub fn remove(&mut self, host: &str) -> Option<HostRoutes> {
        self.0.remove(host).map(Arc::unwrap_or_clone)
    }

    pub fn contains_key(&self, host: &str) -> bool {
        self.0.contains_key(host)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(|host| &**host)
    }

    pub fn values(&self) -> impl Iterator<Item = &HostRoutes> {
        self.0.values().map(|routes| &**routes)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &HostRoutes)> {
        self.0.iter().map(|(host, routes)| (&**host, &**routes))
    }
}

impl std::ops::Index<&str> for HostMap {
    type Output = HostRoutes;

    fn index(&self, host: &str) -> &HostRoutes {
        match self.get(host) {
            Some(routes) => routes,
            None => panic!("no host {host:?} in the snapshot"),
        }
    }
}

impl PartialEq for HostMap {
    fn eq(&self, other: &Self) -> bool {
        // Shared maps, and shared entries, are equal without looking inside.
        self.0.ptr_eq(&other.0)
            || self.0.len() == other.0.len()
                && self.0.iter().all(|(host, routes)| {
                    other
                        .0
                        .get(host)
                        .is_some_and(|o| Arc::ptr_eq(routes, o) || **routes == **o)
                })
    }
}

impl Eq for HostMap {}

/// The Ingresses of a snapshot, sorted, in a persistent set: a snapshot after an Ingress joined
/// or left shares all but a path of nodes with the one before (at 10k Ingresses, copying the
/// list for every new snapshot and freeing the old one was a visible part of a change).
#[derive(Debug, Clone, Default)]
pub struct IngressList(imbl::OrdSet<IngressRef>);

impl IngressList {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ingress: &IngressRef) -> bool {
        self.0.contains(ingress)
    }

    pub fn insert(&mut self, ingress: IngressRef) {
        self.0.insert(ingress);
    }

    pub fn remove(&mut self, ingress: &IngressRef) {
        self.0.remove(ingress);
    }

    /// In order.
    pub fn iter(&self) -> impl Iterator<Item = &IngressRef> {
        self.0.iter()
    }
}

impl FromIterator<IngressRef> for IngressList {
    fn from_iter<I: IntoIterator<Item = IngressRef>>(iter: I) -> Self {
        IngressList(iter.into_iter().collect())
    }
}

impl PartialEq for IngressList {
    fn eq(&self, other: &Self) -> bool {
        self.0.ptr_eq(&other.0) || self.0 == other.0
    }
}

impl Eq for IngressList {}

impl Serialize for IngressList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// The immutable routing table of one fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Set by the publisher (it counts swaps); translation leaves it at 0.
    pub generation: u64,
    /// The Ingresses of this class, sorted (for status publishing and metrics), including those
    /// whose every route was rejected.
    pub ingresses: IngressList,
    /// Exact hosts, lowercase.
    #[serde(rename = "hosts", serialize_with = "sorted_values")]
    pub exact_hosts: HostMap,
    /// One-label wildcards, keyed by the part after `*.` (`*.foo.com` is under `foo.com`).
    #[serde(serialize_with = "sorted_values")]
    pub wildcard_hosts: HostMap,
    /// Rules without a host, and a rule-less Ingress's defaultBackend when the set allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_all: Option<HostRoutes>,
    /// The set's defaultBackend: the caller uses it when [`Snapshot::route`] finds nothing,
    /// before falling back to the built-in 404.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "option_through_arc"
    )]
    pub default_backend: Option<Arc<Backend>>,
    /// TLS per host: certificates, passthrough, redirect flags.
    pub tls: TlsTable,
    /// `from-to-www-redirect`: a host no rule names (`www.foo.com`) → the host to redirect
    /// it to (`foo.com`), and the other way round.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub www_redirects: HashMap<String, String>,
}

impl Snapshot {
    /// Every host's routes, exact hosts first, each group sorted by host, then the catch-all.
    pub fn hosts(&self) -> impl Iterator<Item = &HostRoutes> {
        let mut exact: Vec<_> = self.exact_hosts.values().collect();
        exact.sort_by(|a, b| a.host.cmp(&b.host));
        let mut wildcard: Vec<_> = self.wildcard_hosts.values().collect();
        wildcard.sort_by(|a, b| a.host.cmp(&b.host));
        exact
            .into_iter()
            .chain(wildcard)
            .chain(self.catch_all.as_ref())
    }

    /// Number of routes over all hosts (for metrics).
    pub fn route_count(&self) -> usize {
        self.exact_hosts
            .values()
            .chain(self.wildcard_hosts.values())
            .chain(self.catch_all.as_ref())
            .map(|h| h.routes.len())
            .sum()
    }
}

/// A certificate chain with its private key, parsed once from a Secret (or generated) and
/// shared by every host and every snapshot that uses it unchanged.
///
/// Compared by source and chain: a chain pins its public key, and a key that did not match it
/// would have been refused when parsing, so equal chains mean an equivalent certificate. Never
/// serialized with its key: the debug dump shows where it came from.
#[derive(Debug)]
pub struct Certificate {
    /// The Secret it came from as `namespace/name` (for mirrored Secrets, the Secret the
    /// Ingress referenced, not the mirror), or a description such as `generated`.
    pub source: String,
    pub key: Arc<rustls::sign::CertifiedKey>,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.key.cert == other.key.cert
    }
}

impl Eq for Certificate {}

impl Serialize for Certificate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Certificate", 2)?;
        s.serialize_field("secret", &self.source)?;
        s.serialize_field("chain_length", &self.key.cert.len())?;
        s.end()
    }
}

/// TLS termination of one host, from an Ingress's `spec.tls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Termination {
    /// `None`: the set's default certificate (no `secretName`, or the Secret is missing or
    /// unusable; translation reported why).
    #[serde(serialize_with = "option_through_arc")]
    pub certificate: Option<Arc<Certificate>>,
    pub source: IngressRef,
    /// `ssl-ciphers` of `source`; `None`: the set's `sslCiphers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls12_ciphers: Option<Tls12Ciphers>,
    /// `auth-tls-*` of `source`: client certificates. `None`: none requested.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "option_through_arc"
    )]
    pub client_auth: Option<Arc<ClientAuth>>,
}

/// The CA bundle client certificates must chain to (`ca.crt` of an `auth-tls-secret`, with
/// its optional `ca.crl`), parsed once per Secret version and shared, like [`Certificate`],
/// by every host and snapshot that uses it unchanged (the proxy caches rustls configs by it).
/// Compared by source and bytes.
pub struct ClientCa {
    /// The Secret as `namespace/name` (the one the Ingress referenced, not the mirror).
    pub source: String,
    /// `ca.crt` as read.
    pub pem: Vec<u8>,
    /// `ca.crl` as read; empty without one.
    pub crl: Vec<u8>,
    /// Verifies a chain to the bundle (with the CRLs); a missing certificate is not its
    /// concern (the request check decides, per verify mode).
    pub verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCa")
            .field("source", &self.source)
            .field("crl", &!self.crl.is_empty())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientCa {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
            || (self.source == other.source && self.pem == other.pem && self.crl == other.crl)
    }
}

impl Eq for ClientCa {}

impl Serialize for ClientCa {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("ClientCa", 2)?;
        s.serialize_field("secret", &self.source)?;
        s.serialize_field("crl", &!self.crl.is_empty())?;
        s.end()
    }
}

/// Client-certificate authentication of one TLS host (`auth-tls-*` of the Ingress that decides
/// its termination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// `auth-tls-verify-client`.
    pub mode: sluice_crds::annotations::VerifyClient,
    /// `auth-tls-verify-depth`: most intermediates between the certificate and the CA.
    pub depth: u32,
    /// `auth-tls-pass-certificate-to-upstream`.
    pub pass_to_upstream: bool,
    /// `auth-tls-error-page`: where failed verifications are redirected instead of a 400.
    pub error_page: Option<sluice_crds::annotations::Template>,
    /// The CA bundle; `Err(reason)` when its Secret is missing or unusable. Fails closed:
    /// every request for the host is refused (503) rather than served unchecked.
    pub ca: Result<Arc<ClientCa>, String>,
}

impl ClientAuth {
    /// What the TLS handshake depends on: the CA and depth a certificate is requested and
    /// verified under, `None` when none is requested (`off`, or the CA is unusable). Two hosts
    /// with equal values can share a connection.
    pub fn handshake(&self) -> Option<(&Arc<ClientCa>, u32)> {
        use sluice_crds::annotations::VerifyClient;
        match (&self.ca, self.mode) {
            (_, VerifyClient::Off) | (Err(_), _) => None,
            (Ok(ca), _) => Some((ca, self.depth)),
        }
    }
}

impl Serialize for ClientAuth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        use sluice_crds::annotations::VerifyClient;
        let mut s = serializer.serialize_struct("ClientAuth", 5)?;
        let mode = match self.mode {
            VerifyClient::On => "on",
            VerifyClient::Off => "off",
            VerifyClient::Optional => "optional",
            VerifyClient::OptionalNoCa => "optional_no_ca",
        };
        s.serialize_field("verify", mode)?;
        s.serialize_field("depth", &self.depth)?;
        s.serialize_field("pass_to_upstream", &self.pass_to_upstream)?;
        s.serialize_field("error_page", &self.error_page.as_ref().map(|t| t.as_str()))?;
        match &self.ca {
            Ok(ca) => s.serialize_field("ca", &**ca)?,
            Err(reason) => s.serialize_field("broken", reason)?,
        }
        s.end()
    }
}

/// A host's own TLS 1.2 cipher suites (`ssl-ciphers`), in preference order. As nginx's
/// `ssl_ciphers`, it replaces only the set's TLS 1.2 suites: TLS 1.3 suites and protocol
/// versions stay set-wide. Empty: TLS 1.2 is off for the host. Compared and hashed by content
/// (the proxy caches its rustls configs by it); serialized as the suites' OpenSSL names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tls12Ciphers(pub Arc<[sluice_crds::CipherSuite]>);

impl Tls12Ciphers {
    pub fn new(suites: &[sluice_crds::CipherSuite]) -> Self {
        Tls12Ciphers(Arc::from(suites))
    }

    pub fn suites(&self) -> &[sluice_crds::CipherSuite] {
        &self.0
    }
}

impl Serialize for Tls12Ciphers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// SSL passthrough of one host: TLS connections are forwarded by SNI, undecrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Passthrough {
    /// The backend of the host's `/` rule.
    #[serde(serialize_with = "through_arc")]
    pub backend: Arc<Backend>,
    pub source: IngressRef,
}

/// The TLS settings of one host (exact or one-label wildcard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsHost {
    /// `foo.com` or `*.foo.com`.
    pub host: String,
    /// Set when an Ingress lists the host under `spec.tls` (or its certificate covers one of
    /// its rule hosts): plain HTTP redirects to HTTPS, HTTPS responses carry HSTS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminate: Option<Termination>,
    /// Set for ssl-passthrough hosts; wins over `terminate` for TLS connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Passthrough>,
}

/// An Ingress's `ssl-redirect` and `force-ssl-redirect` annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RedirectFlags {
    /// Redirect plain HTTP to HTTPS on hosts with TLS (default true).
    pub ssl_redirect: bool,
    /// Redirect plain HTTP to HTTPS even on hosts without TLS, e.g. when the load balancer
    /// terminates TLS (default false).
    pub force_ssl_redirect: bool,
}

impl Default for RedirectFlags {
    fn default() -> Self {
        RedirectFlags {
            ssl_redirect: true,
            force_ssl_redirect: false,
        }
    }
}

/// Everything TLS in a snapshot. Looked up with [`Snapshot::tls_host`] and friends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsTable {
    /// Exact hosts, lowercase.
    #[serde(rename = "hosts", serialize_with = "sorted_tls_values")]
    pub exact: HashMap<String, TlsHost>,
    /// One-label wildcards, keyed by the part after `*.`.
    #[serde(rename = "wildcard_hosts", serialize_with = "sorted_tls_values")]
    pub wildcard: HashMap<String, TlsHost>,
    /// The set's `defaultSslCertificate`; `None` means the certificate the data plane generated
    /// at start.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "option_through_arc"
    )]
    pub default_certificate: Option<Arc<Certificate>>,
    /// Ingresses whose redirect annotations differ from [`RedirectFlags::default`].
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "redirects_list"
    )]
    pub redirects: BTreeMap<IngressRef, RedirectFlags>,
}

fn sorted_tls_values<S: Serializer>(
    map: &HashMap<String, TlsHost>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut values: Vec<&TlsHost> = map.values().collect();
    values.sort_by(|a, b| a.host.cmp(&b.host));
    serializer.collect_seq(values)
}

fn redirects_list<S: Serializer>(
    map: &BTreeMap<IngressRef, RedirectFlags>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a> {
        ingress: &'a IngressRef,
        #[serde(flatten)]
        flags: &'a RedirectFlags,
    }
    serializer.collect_seq(map.iter().map(|(ingress, flags)| Entry { ingress, flags }))
}

/// Serializes a host map as a list sorted by host, so the debug dump is stable.
fn sorted_values<S: Serializer>(map: &HostMap, serializer: S) -> Result<S::Ok, S::Error> {
    let mut values: Vec<&HostRoutes> = map.values().collect();
    values.sort_by(|a, b| a.host.cmp(&b.host));
    serializer.collect_seq(values)
}

// Serializing through `Arc` without serde's `rc` feature: that feature would give this crate a
// differently-featured serde than the rest of the workspace and rebuild everything above it.
fn through_arc<T: Serialize + ?Sized, S: Serializer>(
    value: &Arc<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    T::serialize(value, serializer)
}

fn option_through_arc<T: Serialize + ?Sized, S: Serializer>(
    value: &Option<Arc<T>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.as_deref().serialize(serializer)
}
