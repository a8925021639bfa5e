//! Kubernetes objects to a [`Snapshot`]: the only place Kubernetes types appear.
//!
//! [`translate`] is a pure function of the objects as received (stripped on arrival with the
//! `strip_*` functions; Services and EndpointSlices converted to [`ServiceInfo`] and
//! [`SliceInfo`]) and the fleet's [`ClassScope`]. It never fails as a whole: anything
//! invalid is skipped at the smallest scope (one path, one rule, one default backend) and
//! reported as a [`Problem`] naming the object, the field and the reason, for an Event; every
//! other route keeps working.
//!
//! Cost is O(objects): EndpointSlices are indexed by Service once, each Service port is resolved
//! once and shared, routes are grouped per host in a hash map, and only each host's routes are
//! sorted.

mod backend;
mod class;
mod compact;
mod incremental;
mod policy;
mod strip;
mod tls;
mod validate;

#[cfg(test)]
mod incremental_tests;
#[cfg(test)]
pub(crate) mod scale_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

pub use backend::{BackendError, SERVICE_NAME_LABEL};
pub use class::{
    PARAMETERS_API_GROUP, PARAMETERS_KIND, PARAMETERS_SCOPE, class_is_ours, is_member,
};
pub use compact::{EndpointInfo, ServiceInfo, ServicePortInfo, SliceInfo, SlicePortInfo};
pub use incremental::{Changes, Translator};
pub use policy::CredentialsCache;
pub use strip::{
    is_used_annotation, strip_config_map, strip_endpoint_slice, strip_ingress, strip_ingress_class,
    strip_secret, strip_service,
};
pub use tls::{
    CertificateCache, CertificateError, TLS_CERT_KEY, TLS_PRIVATE_KEY_KEY, parse_certificate,
};
pub use validate::{Invalid, LEGACY_CLASS_ANNOTATION, NGINX_PREFIX, SLUICE_PREFIX};

use crate::model::{
    Backend, DefaultBackend, HostRoutes, IngressPolicy, IngressRef, ServiceRef, Snapshot,
};
use crate::router::{Rejection, RouteSpec};
use validate::{RuleHost, path_kind, rule_host, rule_path};

/// The `spec.controller` of every Sluice IngressClass.
pub const CONTROLLER_NAME: &str = "sluice.dev/ingress-controller";

/// A namespaced object's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ObjectKey {
    pub fn new(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        Self {
            namespace: intern_namespace(namespace.as_ref()),
            name: name.as_ref().into(),
        }
    }

    /// `None` when the object has no name (never the case for objects from the API server).
    pub fn from_meta(meta: &ObjectMeta) -> Option<Self> {
        Some(Self::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone()?,
        ))
    }
}

impl From<&ObjectKey> for IngressRef {
    fn from(key: &ObjectKey) -> Self {
        IngressRef {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        }
    }
}

/// One shared copy of each namespace name: keys of every object in a namespace hold the same
/// string (at 10k objects, separate copies of the namespace in every key and every index were
/// megabytes).
pub fn intern_namespace(namespace: &str) -> Arc<str> {
    /// The names, and the size at which names no key holds any more are dropped.
    static NAMESPACES: std::sync::Mutex<(Option<HashSet<Arc<str>>>, usize)> =
        std::sync::Mutex::new((None, 64));
    let mut guard = NAMESPACES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (names, prune_at) = &mut *guard;
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(shared) = names.get(namespace) {
        return shared.clone();
    }
    if names.len() >= *prune_at {
        // Deleted namespaces: only this set still holds them.
        names.retain(|name| Arc::strong_count(name) > 1);
        *prune_at = (names.len() * 2).max(64);
    }
    let shared: Arc<str> = namespace.into();
    names.insert(shared.clone());
    shared
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The objects translation reads, as received from the watches.
///
/// Keep every Ingress, not only this class's: membership depends on IngressClass objects that
/// can change later, so it is decided at translation.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub ingresses: BTreeMap<ObjectKey, Ingress>,
    /// Cluster-scoped, keyed by name.
    pub ingress_classes: BTreeMap<String, IngressClass>,
    /// Services and EndpointSlices as translation reads them (converted on arrival).
    pub services: BTreeMap<ObjectKey, ServiceInfo>,
    pub endpoint_slices: BTreeMap<ObjectKey, SliceInfo>,
    /// TLS Secrets mirrored into the set's namespace, keyed by their ORIGIN (the namespace and
    /// name an Ingress's `spec.tls[].secretName` refers to), not by the mirror's own name.
    pub secrets: BTreeMap<ObjectKey, Secret>,
    /// ConfigMaps mirrored into the set's namespace (`custom-headers`), keyed by origin like
    /// `secrets`.
    pub config_maps: BTreeMap<ObjectKey, ConfigMap>,
    /// The set's `defaultSslCertificate` Secret (in the set's namespace, read directly).
    pub default_certificate: Option<Secret>,
    /// Parsed certificates, reused between translations while a Secret's bytes are unchanged.
    pub certificates: CertificateCache,
    /// Parsed `auth-secret` credentials, reused the same way.
    pub credentials: CredentialsCache,
}

impl ClusterState {
    /// Strips and stores an Ingress (replacing an older version). Ignores a nameless object.
    pub fn upsert_ingress(&mut self, mut ingress: Ingress) {
        strip_ingress(&mut ingress);
        if let Some(key) = ObjectKey::from_meta(&ingress.metadata) {
            self.ingresses.insert(key, ingress);
        }
    }

    pub fn upsert_ingress_class(&mut self, mut class: IngressClass) {
        strip_ingress_class(&mut class);
        if let Some(name) = class.metadata.name.clone() {
            self.ingress_classes.insert(name, class);
        }
    }

    /// Stores a Service as translation reads it. Ignores a nameless object.
    pub fn upsert_service(&mut self, service: Service) {
        if let Some(key) = ObjectKey::from_meta(&service.metadata) {
            self.services.insert(key, ServiceInfo::from(service));
        }
    }

    /// Stores an EndpointSlice as translation reads it. Ignores a nameless object.
    pub fn upsert_endpoint_slice(&mut self, slice: EndpointSlice) {
        if let Some(key) = ObjectKey::from_meta(&slice.metadata) {
            self.endpoint_slices.insert(key, SliceInfo::from(slice));
        }
    }

    /// Stores a mirrored Secret under its origin (from the `sluice.dev/origin` annotation).
    /// Ignores a Secret without a valid origin.
    pub fn upsert_mirror(&mut self, mut secret: Secret) {
        strip_secret(&mut secret);
        if let Some(origin) = mirror_origin(&secret) {
            self.secrets.insert(origin, secret);
        }
    }

    /// Stores a mirrored ConfigMap under its origin. Ignores one without a valid origin.
    pub fn upsert_config_map_mirror(&mut self, mut config_map: ConfigMap) {
        strip_config_map(&mut config_map);
        if let Some(origin) = mirror_origin_of(&config_map.metadata) {
            self.config_maps.insert(origin, config_map);
        }
    }
}

/// The origin a mirrored Secret names in its `sluice.dev/origin` annotation.
pub fn mirror_origin(secret: &Secret) -> Option<ObjectKey> {
    mirror_origin_of(&secret.metadata)
}

/// The origin a mirror (Secret or ConfigMap) names in its `sluice.dev/origin` annotation.
pub fn mirror_origin_of(meta: &ObjectMeta) -> Option<ObjectKey> {
    let value = meta
        .annotations
        .as_ref()?
        .get(sluice_crds::mirror::ORIGIN_ANNOTATION)?;
    let (namespace, name) = sluice_crds::mirror::parse_origin(value)?;
    Some(ObjectKey::new(namespace, name))
}

/// What a fleet serves, from its IngressControllerSet and command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassScope {
    /// The IngressClass this fleet serves (`--ingress-class`).
    pub class_name: String,
    /// The IngressClass `spec.controller` to accept; [`CONTROLLER_NAME`].
    pub controller: String,
    /// The set the IngressClass's parameters must point at.
    pub set_namespace: String,
    pub set_name: String,
    /// `watchIngressWithoutClass`: also serve Ingresses that name no class.
    pub watch_without_class: bool,
    /// ingress-nginx's `disable-catch-all`: ignore a rule-less Ingress's defaultBackend.
    pub disable_catch_all: bool,
    /// The set's `defaultBackend`, for requests nothing else matches.
    pub default_backend: Option<ServiceRef>,
    /// `enableSslPassthrough`: Ingresses may ask for SSL passthrough.
    pub enable_ssl_passthrough: bool,
    /// `defaultSslCertificate`: a Secret in the set's namespace.
    pub default_ssl_certificate: Option<String>,
}

impl ClassScope {
    pub fn new(
        class_name: impl Into<String>,
        set_namespace: impl Into<String>,
        set_name: impl Into<String>,
    ) -> Self {
        ClassScope {
            class_name: class_name.into(),
            controller: CONTROLLER_NAME.to_owned(),
            set_namespace: set_namespace.into(),
            set_name: set_name.into(),
            watch_without_class: false,
            disable_catch_all: false,
            default_backend: None,
            enable_ssl_passthrough: false,
            default_ssl_certificate: None,
        }
    }
}

/// The object a [`Problem`] is about, where its Event goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind")]
pub enum ProblemObject {
    Ingress(IngressRef),
    /// The set itself (its `defaultBackend`).
    IngressControllerSet {
        namespace: String,
        name: String,
    },
}

/// Something translation skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Problem {
    pub object: ProblemObject,
    /// The field path, e.g. `spec.rules[0].http.paths[1].backend.service.port`.
    pub field: String,
    pub reason: String,
}

impl Problem {
    /// The Ingress this problem is about, if it is about an Ingress.
    pub fn ingress(&self) -> Option<&IngressRef> {
        match &self.object {
            ProblemObject::Ingress(ingress) => Some(ingress),
            ProblemObject::IngressControllerSet { .. } => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            ProblemObject::Ingress(ingress) => write!(f, "Ingress {ingress}")?,
            ProblemObject::IngressControllerSet { namespace, name } => {
                write!(f, "IngressControllerSet {namespace}/{name}")?
            }
        }
        write!(f, ": {}: {}", self.field, self.reason)
    }
}

/// Translates the cluster state into this fleet's snapshot and the problems found on the way.
///
/// The snapshot's `generation` is left at 0 for the publisher to set. The same input always
/// gives the same problems in the same order (grouped by object), so the caller can compare
/// them with the previous run's and emit Events only on change.
///
/// This translates everything; [`Translator`] gives the same result and, between calls,
/// translates again only the Ingresses a change can affect.
pub fn translate(state: &ClusterState, scope: &ClassScope) -> (Snapshot, Vec<Problem>) {
    let mut members: Vec<(IngressRef, &Ingress)> = state
        .ingresses
        .iter()
        .filter(|(_, ingress)| is_member(ingress, &state.ingress_classes, scope))
        .map(|(key, ingress)| (IngressRef::from(key), ingress))
        .collect();
    // Oldest first: conflicts are won by whoever claims first. Ties (same second) go by
    // namespace/name so the result never depends on arrival order.
    members.sort_by(|(a_ref, a), (b_ref, b)| age(a).cmp(&age(b)).then_with(|| a_ref.cmp(b_ref)));

    let index = backend::slice_index(&state.endpoint_slices);
    let mut part = translate_group(state, scope, &index, &members);

    let mut ingresses: Vec<IngressRef> = members.iter().map(|(r, _)| r.clone()).collect();
    ingresses.sort();
    let mut snapshot = Snapshot {
        ingresses: ingresses.into_iter().collect(),
        ..Snapshot::default()
    };
    for (host, routes) in part.exact.drain(..) {
        snapshot.exact_hosts.insert_shared(host, routes);
    }
    for (host, routes) in part.wildcard.drain(..) {
        snapshot.wildcard_hosts.insert_shared(host, routes);
    }
    snapshot.catch_all = part.catch_all.take().map(Arc::unwrap_or_clone);
    for (host, tls) in part.tls_exact.drain(..) {
        snapshot.tls.exact.insert(host, tls);
    }
    for (host, tls) in part.tls_wildcard.drain(..) {
        snapshot.tls.wildcard.insert(host, tls);
    }
    snapshot.tls.redirects = std::mem::take(&mut part.redirects);
    let aliases = std::mem::take(&mut part.www_aliases);
    let aliases = aliases
        .iter()
        .map(|(_, alias, canonical)| (alias, canonical));
    snapshot.www_redirects = www_redirects(aliases, &snapshot.exact_hosts);
    let mut problems = std::mem::take(&mut part.problems);
    let mut certificates_used = std::mem::take(&mut part.certificates_used);
    finish_global(
        state,
        scope,
        &index,
        &mut snapshot,
        &mut problems,
        &mut certificates_used,
    );
    state.credentials.retain(&part.secrets_used);
    state.certificates.retain(&certificates_used);
    // Grouped by object, each group in the order of the object's fields (a stable sort of a
    // deterministic emission order), without repeats (two rules can hit the same problem).
    problems.sort_by(|a, b| a.object.cmp(&b.object));
    let mut seen = std::collections::HashSet::new();
    problems.retain(|problem| seen.insert(problem.clone()));
    (snapshot, problems)
}

/// `from-to-www-redirect`: each (alias, canonical) pair, oldest Ingress first, whose alias no
/// rule names.
fn www_redirects<'a>(
    aliases: impl Iterator<Item = (&'a String, &'a String)>,
    exact_hosts: &crate::model::HostMap,
) -> HashMap<String, String> {
    let mut redirects = HashMap::new();
    for (alias, canonical) in aliases {
        if !exact_hosts.contains_key(alias) {
            redirects
                .entry(alias.clone())
                .or_insert_with(|| canonical.clone());
        }
    }
    redirects
}

/// What depends on no Ingress: the set's default certificate and default backend. Their
/// problems go after the Ingresses' (in this order), and the default certificate's Secret into
/// `certificates_used`.
fn finish_global(
    state: &ClusterState,
    scope: &ClassScope,
    index: &backend::SliceIndex,
    snapshot: &mut Snapshot,
    problems: &mut Vec<Problem>,
    certificates_used: &mut HashSet<ObjectKey>,
) {
    let (certificate, problem) = tls::default_certificate(state, scope, certificates_used);
    snapshot.tls.default_certificate = certificate;
    problems.extend(problem);
    if let Some(service) = &scope.default_backend {
        let mut resolver = backend::Resolver::new(&state.services, &state.endpoint_slices, index);
        match resolver.resolve(service) {
            Ok(backend) => snapshot.default_backend = Some(backend),
            Err(error) => problems.push(Problem {
                object: ProblemObject::IngressControllerSet {
                    namespace: scope.set_namespace.clone(),
                    name: scope.set_name.clone(),
                },
                field: format!("spec.defaultBackend.{}", error.field()),
                reason: error.to_string(),
            }),
        }
    }
}

/// What translating a group of Ingresses (every member, or one group of the incremental
/// translator) produced, before what depends on no Ingress is added.
#[derive(Default)]
struct Part {
    exact: Vec<(Arc<str>, Arc<HostRoutes>)>,
    wildcard: Vec<(Arc<str>, Arc<HostRoutes>)>,
    catch_all: Option<Arc<HostRoutes>>,
    tls_exact: Vec<(String, crate::model::TlsHost)>,
    tls_wildcard: Vec<(String, crate::model::TlsHost)>,
    redirects: BTreeMap<IngressRef, crate::model::RedirectFlags>,
    /// `from-to-www-redirect` (member, alias, canonical), oldest Ingress first.
    www_aliases: Vec<(usize, String, String)>,
    /// In emission order, not yet grouped by object.
    problems: Vec<Problem>,
    /// Credential Secrets read (`auth-secret`, `proxy-ssl-secret`).
    secrets_used: HashSet<ObjectKey>,
    /// Certificate and CA Secrets read.
    certificates_used: HashSet<ObjectKey>,
    /// Services read (EndpointSlices are read through their Service).
    services_read: Vec<ObjectKey>,
    /// Mirrored ConfigMaps read.
    config_maps_read: HashSet<ObjectKey>,
}

/// Translates `members` (sorted oldest first) on their own. Every host an Ingress names (in
/// rules or TLS) is decided by the Ingresses naming it, so a group that shares no host with
/// the other Ingresses translates the same alone as with them.
fn translate_group(
    state: &ClusterState,
    scope: &ClassScope,
    index: &backend::SliceIndex,
    members: &[(IngressRef, &Ingress)],
) -> Part {
    let mut builder = Builder {
        scope,
        state,
        tls: tls::TlsDraft::default(),
        resolver: backend::Resolver::new(&state.services, &state.endpoint_slices, index),
        problems: Vec::new(),
        hosts: HashMap::new(),
        origins: Vec::new(),
        catch_all_default: None,
        secrets_used: HashSet::new(),
        config_maps_read: HashSet::new(),
        www_aliases: Vec::new(),
        canaries: HashMap::new(),
    };
    for (member, (source, ingress)) in members.iter().enumerate() {
        builder.add_ingress(member, source, ingress);
    }
    builder.finish(members)
}

/// Creation time for ordering; an object without one (never from the API server) is newest.
fn age(ingress: &Ingress) -> (bool, Option<Timestamp>) {
    let created = ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (created.is_none(), created)
}

/// Where a route candidate came from, to name the field when it is rejected.
struct Origin {
    member: usize,
    rule: usize,
    path: usize,
}

/// Everything gathered for one host before its routes are built.
#[derive(Default)]
struct HostDraft {
    regex_mode: bool,
    default_backend: Option<DefaultBackend>,
    specs: Vec<RouteSpec>,
}

struct Builder<'a> {
    scope: &'a ClassScope,
    state: &'a ClusterState,
    tls: tls::TlsDraft,
    resolver: backend::Resolver<'a>,
    problems: Vec<Problem>,
    hosts: HashMap<RuleHost, HostDraft>,
    /// Indexed by `RouteSpec::origin`.
    origins: Vec<Origin>,
    catch_all_default: Option<DefaultBackend>,
    /// Credential Secrets read in this translation: the rest are dropped from the cache.
    secrets_used: HashSet<ObjectKey>,
    /// Mirrored ConfigMaps read (what the incremental translator watches for).
    config_maps_read: HashSet<ObjectKey>,
    /// `from-to-www-redirect` (member, alias, canonical), oldest Ingress first.
    www_aliases: Vec<(usize, String, String)>,
    /// Paths of canary Ingresses, attached to the main routes in `finish`.
    canaries: HashMap<RuleHost, Vec<CanarySpec>>,
}

/// One path of a canary Ingress, waiting for its main route.
struct CanarySpec {
    path: String,
    kind: crate::model::PathKind,
    backend: Arc<Backend>,
    source: IngressRef,
    rule: sluice_crds::annotations::Canary,
    /// `spec.rules[r].http.paths[p]`, for the problem when no main route exists.
    field: String,
}

impl Builder<'_> {
    fn problem(&mut self, source: &IngressRef, field: impl Into<String>, reason: impl ToString) {
        self.problems.push(Problem {
            object: ProblemObject::Ingress(source.clone()),
            field: field.into(),
            reason: reason.to_string(),
        });
    }

    /// Resolves an Ingress backend; on failure records a problem at `field` and returns `None`.
    fn backend(
        &mut self,
        source: &IngressRef,
        backend: &IngressBackend,
        field: &str,
    ) -> Option<Arc<Backend>> {
        self.backend_to(source, backend, field, false)
    }

    /// [`Builder::backend`], to the Service's ClusterIP when `cluster_ip` (`service-upstream`).
    fn backend_to(
        &mut self,
        source: &IngressRef,
        backend: &IngressBackend,
        field: &str,
        cluster_ip: bool,
    ) -> Option<Arc<Backend>> {
        let resolved = backend::service_ref(&source.namespace, backend).and_then(|service| {
            if cluster_ip {
                self.resolver.resolve_cluster_ip(&service)
            } else {
                self.resolver.resolve(&service)
            }
        });
        match resolved {
            Ok(backend) => Some(backend),
            Err(error) => {
                self.problem(source, format!("{field}.{}", error.field()), &error);
                None
            }
        }
    }

    fn add_ingress(&mut self, member: usize, source: &IngressRef, ingress: &Ingress) {
        let (policy, parsed) = self.ingress_policy(source, ingress);
        // ingress-nginx puts an Ingress's hosts in regex mode for use-regex or rewrite-target.
        let regex_mode = parsed.policies.rewrite.regex_mode();
        let empty = BTreeMap::new();
        let annotations = ingress.metadata.annotations.as_ref().unwrap_or(&empty);
        let canary_written = sluice_crds::annotations::effective(annotations, "canary")
            .is_some_and(|(_, v)| sluice_crds::annotations::grammar::BOOL_TRUE.contains(&v));
        if canary_written && parsed.policies.canary.is_none() {
            // A canary whose keys are invalid (reported): serving its paths as an ordinary
            // Ingress would take the main Ingress's traffic, so it gets none.
            self.add_tls(source, ingress, &parsed.policies);
            return;
        }
        self.add_routes(member, source, ingress, regex_mode, &policy);
        if parsed.policies.redirect.from_to_www == Some(true) {
            self.add_www_aliases(member, ingress);
        }
        self.add_tls(source, ingress, &parsed.policies);
    }

    /// ingress-nginx's `from-to-www-redirect`: `www.foo.com` redirects to `foo.com` (or the
    /// reverse) when no rule names it; decided in `finish`, once every host is known.
    fn add_www_aliases(&mut self, member: usize, ingress: &Ingress) {
        let rules = ingress.spec.iter().flat_map(|s| s.rules.iter().flatten());
        for rule in rules {
            if let Ok(RuleHost::Exact(host)) = rule_host(rule.host.as_deref()) {
                let alias = match host.strip_prefix("www.") {
                    Some(bare) => bare.to_owned(),
                    None => format!("www.{host}"),
                };
                self.www_aliases.push((member, alias, host));
            }
        }
    }

    fn add_routes(
        &mut self,
        member: usize,
        source: &IngressRef,
        ingress: &Ingress,
        regex_mode: bool,
        policy: &Arc<IngressPolicy>,
    ) {
        let Some(spec) = &ingress.spec else {
            return;
        };
        let cluster_ip = policy.annotations.load_balancing.service_upstream == Some(true);
        let default = spec.default_backend.as_ref().and_then(|backend| {
            let backend = self.backend_to(source, backend, "spec.defaultBackend", cluster_ip)?;
            Some(DefaultBackend {
                backend,
                source: source.clone(),
                policy: policy.clone(),
            })
        });
        let rules = spec.rules.as_deref().unwrap_or_default();

        if rules.is_empty() {
            // A rule-less Ingress with a defaultBackend is a catch-all Ingress.
            let Some(default) = default else { return };
            if self.scope.disable_catch_all {
                self.problem(
                    source,
                    "spec.defaultBackend",
                    "ignored: the IngressControllerSet disables catch-all Ingresses \
                     (a defaultBackend without rules)",
                );
            } else if let Some(winner) = &self.catch_all_default {
                let reason = format!(
                    "ignored: the catch-all already uses the defaultBackend of Ingress {}, \
                     which is older",
                    winner.source
                );
                self.problem(source, "spec.defaultBackend", reason);
            } else {
                self.catch_all_default = Some(default);
            }
            return;
        }

        for (r, rule) in rules.iter().enumerate() {
            let host = match rule_host(rule.host.as_deref()) {
                Ok(host) => host,
                Err(error) => {
                    self.problem(source, format!("spec.rules[{r}].host"), error);
                    continue;
                }
            };
            // As ingress-nginx: an Ingress's defaultBackend serves its named hosts; for
            // host-less rules only a rule-less Ingress sets the catch-all's default.
            let mut default_lost_to = None;
            {
                let draft = self.hosts.entry(host.clone()).or_default();
                draft.regex_mode |= regex_mode;
                if let (Some(default), false) = (&default, host == RuleHost::CatchAll) {
                    match &draft.default_backend {
                        None => draft.default_backend = Some(default.clone()),
                        Some(winner) if winner.source != *source => {
                            default_lost_to = Some(winner.source.clone());
                        }
                        Some(_) => {}
                    }
                }
            }
            if let Some(winner) = default_lost_to {
                let reason = format!(
                    "not used for {}: it already uses the defaultBackend of Ingress {winner}, \
                     which is older",
                    describe_host(&host)
                );
                self.problem(source, "spec.defaultBackend", reason);
            }

            let Some(http) = &rule.http else { continue };
            for (p, path) in http.paths.iter().enumerate() {
                let field = format!("spec.rules[{r}].http.paths[{p}]");
                let kind = match path_kind(&path.path_type) {
                    Ok(kind) => kind,
                    Err(error) => {
                        self.problem(source, format!("{field}.pathType"), error);
                        continue;
                    }
                };
                let route_path = match rule_path(path.path.as_deref(), kind) {
                    Ok(route_path) => route_path,
                    Err(error) => {
                        self.problem(source, format!("{field}.path"), error);
                        continue;
                    }
                };
                let Some(backend) = self.backend_to(
                    source,
                    &path.backend,
                    &format!("{field}.backend"),
                    cluster_ip,
                ) else {
                    continue;
                };
                if let Some(rule) = &policy.annotations.canary {
                    self.canaries
                        .entry(host.clone())
                        .or_default()
                        .push(CanarySpec {
                            path: route_path,
                            kind,
                            backend,
                            source: source.clone(),
                            rule: rule.clone(),
                            field,
                        });
                    continue;
                }
                let origin = self.origins.len();
                self.origins.push(Origin {
                    member,
                    rule: r,
                    path: p,
                });
                self.hosts
                    .entry(host.clone())
                    .or_default()
                    .specs
                    .push(RouteSpec {
                        path: route_path,
                        kind,
                        backend,
                        source: source.clone(),
                        policy: policy.clone(),
                        origin,
                    });
            }
        }
    }

    fn finish(mut self, members: &[(IngressRef, &Ingress)]) -> Part {
        let mut part = Part::default();
        self.finish_tls(&mut part);
        if let Some(default) = self.catch_all_default.take() {
            self.hosts
                .entry(RuleHost::CatchAll)
                .or_default()
                .default_backend = Some(default);
        }
        // Sorted so that problems come out in the same order every time.
        let mut hosts: Vec<(RuleHost, HostDraft)> =
            std::mem::take(&mut self.hosts).into_iter().collect();
        hosts.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, draft) in hosts {
            let name = match &host {
                RuleHost::CatchAll => String::new(),
                RuleHost::Exact(name) => name.clone(),
                RuleHost::Wildcard(parent) => format!("*.{parent}"),
            };
            let (mut routes, rejections) =
                HostRoutes::build(name, draft.regex_mode, draft.default_backend, draft.specs);
            for rejection in rejections {
                self.rejection_problem(members, &host, rejection);
            }
            if let Some(canaries) = self.canaries.remove(&host) {
                self.attach_canaries(&host, &mut routes, canaries);
            }
            let routes = Arc::new(routes);
            match host {
                RuleHost::CatchAll => part.catch_all = Some(routes),
                RuleHost::Exact(name) => part.exact.push((name.into(), routes)),
                RuleHost::Wildcard(parent) => part.wildcard.push((parent.into(), routes)),
            }
        }

        // Canaries for hosts no main Ingress serves.
        let mut orphans: Vec<(RuleHost, Vec<CanarySpec>)> = self.canaries.drain().collect();
        orphans.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, canaries) in orphans {
            for canary in canaries {
                let reason = format!(
                    "canary ignored: no Ingress serves {} path {:?} for it to be the canary of",
                    describe_host(&host),
                    canary.path
                );
                self.problem(&canary.source, canary.field, reason);
            }
        }
        part.www_aliases = std::mem::take(&mut self.www_aliases);
        part.problems = self.problems;
        part.secrets_used = self.secrets_used;
        part.config_maps_read = self.config_maps_read;
        part.services_read = self.resolver.services_read().collect();
        part
    }

    /// ingress-nginx merges a canary Ingress into the main Ingress serving the same host and
    /// path (and path type); the first canary for a route wins, as the oldest does elsewhere.
    fn attach_canaries(
        &mut self,
        host: &RuleHost,
        routes: &mut HostRoutes,
        canaries: Vec<CanarySpec>,
    ) {
        for canary in canaries {
            let main = routes.routes.iter_mut().find(|r| {
                r.path == canary.path && r.kind == canary.kind && r.source != canary.source
            });
            let reason = match main {
                None => format!(
                    "canary ignored: no Ingress serves {} path {:?} ({}) for it to be the canary of",
                    describe_host(host),
                    canary.path,
                    canary.kind
                ),
                Some(route) if route.canary.is_some() => format!(
                    "canary ignored: {} path {:?} already has a canary",
                    describe_host(host),
                    canary.path
                ),
                Some(route) => {
                    let pattern = match canary.rule.header_pattern.as_deref() {
                        None => None,
                        Some(p) => match regex::bytes::RegexBuilder::new(p)
                            .size_limit(crate::router::REGEX_SIZE_LIMIT)
                            .dfa_size_limit(crate::router::REGEX_SIZE_LIMIT)
                            .build()
                        {
                            Ok(re) => Some(crate::model::PathRegex(re)),
                            // The parser compiled it with the same limits; unreachable in
                            // practice, and a canary that cannot match simply never selects.
                            Err(_) => None,
                        },
                    };
                    route.canary = Some(Arc::new(crate::model::CanaryRoute {
                        backend: canary.backend,
                        source: canary.source,
                        rule: canary.rule,
                        pattern,
                    }));
                    continue;
                }
            };
            self.problem(&canary.source, canary.field, reason);
        }
    }

    fn rejection_problem(
        &mut self,
        members: &[(IngressRef, &Ingress)],
        host: &RuleHost,
        rejection: Rejection,
    ) {
        let origin_of = |origin: usize| {
            self.origins
                .get(origin)
                .and_then(|o| Some((members.get(o.member)?.0.clone(), o.rule, o.path)))
        };
        match rejection {
            Rejection::Shadowed {
                origin,
                path,
                kind,
                winner,
                winner_path,
            } => {
                let Some((source, r, p)) = origin_of(origin) else {
                    return;
                };
                let by = if winner == source {
                    "an earlier path of this Ingress".to_owned()
                } else {
                    format!("Ingress {winner}, which is older")
                };
                let same = if winner_path == path {
                    String::new()
                } else {
                    format!(" (as {winner_path:?}; trailing slashes do not change a Prefix)")
                };
                let reason = format!(
                    "ignored: {kind} path {path:?} on {} is already routed by {by}{same}",
                    describe_host(host)
                );
                self.problem(&source, format!("spec.rules[{r}].http.paths[{p}]"), reason);
            }
            Rejection::InvalidRegex {
                origin,
                path,
                error,
            } => {
                let Some((source, r, p)) = origin_of(origin) else {
                    return;
                };
                let reason = format!(
                    "path {path:?} is not a valid regex ({} is in regex mode because an \
                     Ingress on it uses use-regex or rewrite-target): {error}",
                    describe_host(host)
                );
                self.problem(
                    &source,
                    format!("spec.rules[{r}].http.paths[{p}].path"),
                    reason,
                );
            }
        }
    }
}

fn describe_host(host: &RuleHost) -> String {
    match host {
        RuleHost::CatchAll => "the catch-all (rules without a host)".to_owned(),
        RuleHost::Exact(name) => format!("host {name:?}"),
        RuleHost::Wildcard(parent) => format!("host \"*.{parent}\""),
    }
}
