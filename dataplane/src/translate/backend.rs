//! Ingress backends to [`Backend`]s: Service ports resolved through EndpointSlices.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::networking::v1::IngressBackend;

use super::ObjectKey;
use super::compact::{ServiceInfo, ServicePortInfo, SliceInfo};
use crate::model::{Backend, Endpoint, PortRef, ServiceRef};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why a backend cannot be used; its `Display` is the reason an Event shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("resource backends are not supported; use a Service backend")]
    Resource,
    #[error("the backend names no Service")]
    NoService,
    #[error("set exactly one of port.number and port.name")]
    PortSpec,
    #[error("port number {0} is out of range 1-65535")]
    PortRange(i32),
    #[error("Service {0} not found")]
    ServiceNotFound(String),
    #[error("Service {service} has no port {port}")]
    PortNotFound { service: String, port: PortRef },
    #[error("port {port} of Service {service} uses {protocol}; only TCP can be proxied")]
    NotTcp {
        service: String,
        port: PortRef,
        protocol: String,
    },
    #[error("ExternalName Service {0} has no spec.externalName")]
    NoExternalName(String),
    #[error(
        "ExternalName Service {service} points at {target:?}: loopback, link-local and \
         unspecified targets are refused (they would reach the proxy's own ports or the node)"
    )]
    ForbiddenExternalName { service: String, target: String },
    #[error(
        "Service {0} has no usable ClusterIP for service-upstream (headless Services have          none; remove the annotation to use its endpoints)"
    )]
    NoClusterIp(String),
}

impl BackendError {
    /// The field under the backend (`...backend.<this>`) that is wrong.
    pub(crate) fn field(&self) -> &'static str {
        match self {
            BackendError::Resource => "resource",
            BackendError::NoService => "service",
            BackendError::PortSpec | BackendError::PortNotFound { .. } => "service.port",
            BackendError::NotTcp { .. } => "service.port",
            BackendError::PortRange(_) => "service.port.number",
            BackendError::ServiceNotFound(_)
            | BackendError::NoExternalName(_)
            | BackendError::ForbiddenExternalName { .. }
            | BackendError::NoClusterIp(_) => "service.name",
        }
    }
}

/// Reads an Ingress backend as a Service reference in the Ingress's namespace.
pub(crate) fn service_ref(
    namespace: &str,
    backend: &IngressBackend,
) -> Result<ServiceRef, BackendError> {
    let Some(service) = &backend.service else {
        return Err(if backend.resource.is_some() {
            BackendError::Resource
        } else {
            BackendError::NoService
        });
    };
    let port = match service.port.as_ref().map(|p| (p.number, p.name.as_deref())) {
        Some((Some(number), None | Some(""))) => PortRef::Number(
            u16::try_from(number)
                .ok()
                .filter(|n| *n != 0)
                .ok_or(BackendError::PortRange(number))?,
        ),
        Some((None, Some(name))) if !name.is_empty() => PortRef::Name(name.to_owned()),
        _ => return Err(BackendError::PortSpec),
    };
    Ok(ServiceRef {
        namespace: namespace.to_owned(),
        name: service.name.clone(),
        port,
    })
}

/// Addresses an upstream must never have: they would let an Ingress author reach the proxy's own
/// loopback-only listeners (the debug endpoint) or the node's link-local metadata service.
pub(crate) fn is_forbidden_upstream(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_unspecified() || v4.is_link_local() || v4.is_multicast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unicast_link_local()
                || v6.is_multicast()
        }
    }
}

fn is_forbidden_external_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    // An ExternalName may be an IP literal (optionally bracketed IPv6).
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(is_forbidden_upstream)
}

/// The EndpointSlices of each Service (namespace and Service name), by slice key: kept between
/// translations by the incremental translator, so resolving one Service does not scan them all.
///
/// Each list is sorted: a Service almost always has one slice, and a one-entry B-tree set
/// allocates a whole node (over 500 bytes) where a vector holds just the key.
pub(crate) type SliceIndex = HashMap<ObjectKey, Vec<ObjectKey>>;

/// The Service an EndpointSlice belongs to (its `kubernetes.io/service-name` label).
pub(crate) fn slice_service(key: &ObjectKey, slice: &SliceInfo) -> Option<ObjectKey> {
    let service = slice.service.as_deref()?;
    Some(ObjectKey::new(&key.namespace, service))
}

/// Builds the index of every slice.
pub(crate) fn slice_index(slices: &BTreeMap<ObjectKey, SliceInfo>) -> SliceIndex {
    let mut index = SliceIndex::new();
    for (key, slice) in slices {
        if let Some(service) = slice_service(key, slice) {
            // In key order: each list comes out sorted.
            index.entry(service).or_default().push(key.clone());
        }
    }
    index
}

/// Resolves Service references to backends, each Service port once per translation: every route
/// naming the same Service port shares one `Arc<Backend>` (and one endpoint list).
pub(crate) struct Resolver<'a> {
    services: &'a BTreeMap<ObjectKey, ServiceInfo>,
    slices: &'a BTreeMap<ObjectKey, SliceInfo>,
    index: &'a SliceIndex,
    cache: HashMap<ServiceRef, Result<Arc<Backend>, BackendError>>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(
        services: &'a BTreeMap<ObjectKey, ServiceInfo>,
        slices: &'a BTreeMap<ObjectKey, SliceInfo>,
        index: &'a SliceIndex,
    ) -> Self {
        Resolver {
            services,
            slices,
            index,
            cache: HashMap::new(),
        }
    }

    /// The Services resolved so far (what the translation read).
    pub(crate) fn services_read(&self) -> impl Iterator<Item = ObjectKey> + '_ {
        self.cache
            .keys()
            .map(|service| ObjectKey::new(&service.namespace, &service.name))
    }

    pub(crate) fn resolve(&mut self, service: &ServiceRef) -> Result<Arc<Backend>, BackendError> {
        if let Some(cached) = self.cache.get(service) {
            return cached.clone();
        }
        let resolved = self.resolve_uncached(service);
        self.cache.insert(service.clone(), resolved.clone());
        resolved
    }

    fn resolve_uncached(&self, service: &ServiceRef) -> Result<Arc<Backend>, BackendError> {
        let display = || format!("{}/{}", service.namespace, service.name);
        let key = ObjectKey::new(&service.namespace, &service.name);
        let object = self
            .services
            .get(&key)
            .ok_or_else(|| BackendError::ServiceNotFound(display()))?;
        let port = object.ports.iter().find(|p| match &service.port {
            PortRef::Number(n) => p.port == i32::from(*n),
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        });
        let port_not_found = || BackendError::PortNotFound {
            service: display(),
            port: service.port.clone(),
        };
        if let Some(port) = port
            && let Some(protocol) = port.not_tcp.as_deref()
        {
            return Err(BackendError::NotTcp {
                service: display(),
                port: service.port.clone(),
                protocol: protocol.to_owned(),
            });
        }

        if object.external {
            let host = object
                .external_name
                .as_deref()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| BackendError::NoExternalName(display()))?;
            if is_forbidden_external_name(host) {
                return Err(BackendError::ForbiddenExternalName {
                    service: display(),
                    target: host.to_owned(),
                });
            }
            // As ingress-nginx: the Service port's number, or the Ingress's own number when
            // the ExternalName Service lists no such port (they often list none).
            let number = match (port, &service.port) {
                (Some(port), _) => u16::try_from(port.port).map_err(|_| port_not_found())?,
                (None, PortRef::Number(n)) => *n,
                (None, PortRef::Name(_)) => return Err(port_not_found()),
            };
            return Ok(Arc::new(Backend::ExternalName {
                service: service.clone(),
                host: host.to_owned(),
                port: number,
            }));
        }

        let port = port.ok_or_else(port_not_found)?;
        let endpoints = self.endpoints(&service.namespace, &service.name, port);
        Ok(Arc::new(Backend::Service {
            service: service.clone(),
            endpoints,
        }))
    }

    /// `service-upstream`: the Service's ClusterIP and port as its only endpoint, so
    /// kube-proxy balances. ExternalName Services (no ClusterIP) resolve as usual; a headless
    /// Service (ClusterIP `None`) has none to use and is an error.
    pub(crate) fn resolve_cluster_ip(
        &mut self,
        service: &ServiceRef,
    ) -> Result<Arc<Backend>, BackendError> {
        let resolved = self.resolve(service)?;
        if matches!(*resolved, Backend::ExternalName { .. }) {
            return Ok(resolved);
        }
        let display = format!("{}/{}", service.namespace, service.name);
        let key = ObjectKey::new(&service.namespace, &service.name);
        let object = self.services.get(&key);
        let ip = object
            .and_then(|s| s.cluster_ip)
            .filter(|ip| !is_forbidden_upstream(*ip))
            .ok_or_else(|| BackendError::NoClusterIp(display.clone()))?;
        let port = object
            .map(|s| &*s.ports)
            .unwrap_or_default()
            .iter()
            .find(|p| match &service.port {
                PortRef::Number(n) => p.port == i32::from(*n),
                PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
            })
            .and_then(|p| u16::try_from(p.port).ok())
            .ok_or_else(|| BackendError::PortNotFound {
                service: display,
                port: service.port.clone(),
            })?;
        Ok(Arc::new(Backend::Service {
            service: service.clone(),
            endpoints: Arc::from(vec![Endpoint {
                addr: SocketAddr::new(ip, port),
                ready: true,
                serving: true,
                terminating: false,
            }]),
        }))
    }

    /// The endpoints of one Service port, over all of the Service's slices.
    ///
    /// Slice ports carry the Service port's name (empty for a single unnamed port) and the
    /// target port number, which may differ between slices when `targetPort` is a name.
    fn endpoints(&self, namespace: &str, service: &str, port: &ServicePortInfo) -> Arc<[Endpoint]> {
        let port_name = port.name.as_deref().unwrap_or_default();
        let mut endpoints = Vec::new();
        let keys = self.index.get(&ObjectKey::new(namespace, service));
        let slices = keys
            .into_iter()
            .flatten()
            .filter_map(|key| self.slices.get(key));
        for slice in slices {
            // FQDN slices have no IPs to connect to.
            if !slice.ip {
                continue;
            }
            let target = slice
                .ports
                .iter()
                .find(|p| &*p.name == port_name && p.tcp)
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0);
            let Some(target) = target else { continue };
            // Only the first address has defined semantics (the API says so); endpoints
            // without one that is an IP were left out on arrival.
            for endpoint in &slice.endpoints {
                let ip = endpoint.ip;
                if is_forbidden_upstream(ip) {
                    continue;
                }
                // The EndpointSlice API: nil `ready` means ready; nil `serving` defers to
                // `ready`; nil `terminating` means not terminating.
                let ready = endpoint.ready.unwrap_or(true);
                let serving = endpoint.serving.unwrap_or(ready);
                let terminating = endpoint.terminating.unwrap_or(false);
                endpoints.push(Endpoint {
                    addr: SocketAddr::new(ip, target),
                    // A terminating endpoint finishes what it has but gets no new requests,
                    // even when the Service publishes not-ready addresses.
                    ready: ready && !terminating,
                    serving,
                    terminating,
                });
            }
        }
        // An address can be in two slices while the controller moves it: keep its best entry.
        endpoints.sort_by(|a, b| {
            a.addr
                .cmp(&b.addr)
                .then(b.ready.cmp(&a.ready))
                .then(b.serving.cmp(&a.serving))
                .then(a.terminating.cmp(&b.terminating))
        });
        endpoints.dedup_by_key(|e| e.addr);
        endpoints.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_upstreams() {
        let forbidden = [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "169.254.169.254",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "::ffff:127.0.0.1",
            "ff02::1",
        ];
        for ip in forbidden {
            let ip: IpAddr = ip.parse().expect("test IP");
            assert!(is_forbidden_upstream(ip), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "fd00::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().expect("test IP");
            assert!(!is_forbidden_upstream(ip), "{ip}");
        }
    }

    #[test]
    fn forbidden_external_names() {
        for name in [
            "localhost",
            "LOCALHOST.",
            "foo.localhost",
            "127.0.0.1",
            "169.254.169.254",
            "[::1]",
        ] {
            assert!(is_forbidden_external_name(name), "{name}");
        }
        for name in ["db.example.com", "10.0.0.5", "localhost.example.com"] {
            assert!(!is_forbidden_external_name(name), "{name}");
        }
    }
}
