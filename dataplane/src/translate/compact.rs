//! Services and EndpointSlices as translation reads them: at 10k of each, the k8s-openapi types
//! (a Service is 824 bytes before any of its strings, an Endpoint over 300) held most of the
//! mirror's memory even stripped. The generator converts each object on arrival; only the
//! fields translation (and the status publisher, for the Service's load-balancer status) reads
//! are kept, already parsed where translation only ever parsed them.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service, ServiceStatus};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::backend::SERVICE_NAME_LABEL;

/// What a Service is for translation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceInfo {
    pub resource_version: Option<Box<str>>,
    /// `spec.type` is `ExternalName`.
    pub external: bool,
    /// `spec.externalName`, kept only for an ExternalName Service.
    pub external_name: Option<Box<str>>,
    /// `spec.clusterIP` when it is an IP address (not `None` or empty).
    pub cluster_ip: Option<IpAddr>,
    pub ports: Box<[ServicePortInfo]>,
    /// The load-balancer status (only when it lists addresses), for the publish Service's
    /// address in Ingress status. Same shape as the k8s type so readers stay unchanged.
    pub status: Option<Box<ServiceStatus>>,
}

/// One `spec.ports[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortInfo {
    pub name: Option<Box<str>>,
    pub port: i32,
    /// The protocol when it is set and is not TCP.
    pub not_tcp: Option<Box<str>>,
}

impl From<Service> for ServiceInfo {
    fn from(service: Service) -> Self {
        let spec = service.spec.unwrap_or_default();
        let external = spec.type_.as_deref() == Some("ExternalName");
        let ports = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| ServicePortInfo {
                name: p.name.map(Into::into),
                port: p.port,
                not_tcp: p.protocol.filter(|p| p != "TCP").map(Into::into),
            })
            .collect();
        let load_balancer = service
            .status
            .and_then(|s| s.load_balancer)
            .filter(|lb| lb.ingress.as_ref().is_some_and(|l| !l.is_empty()));
        ServiceInfo {
            resource_version: service.metadata.resource_version.map(Into::into),
            external,
            external_name: spec.external_name.filter(|_| external).map(Into::into),
            cluster_ip: spec.cluster_ip.and_then(|ip| ip.parse().ok()),
            ports,
            status: load_balancer.map(|lb: LoadBalancerStatus| {
                Box::new(ServiceStatus {
                    load_balancer: Some(lb),
                    ..ServiceStatus::default()
                })
            }),
        }
    }
}

/// What an EndpointSlice is for translation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SliceInfo {
    pub resource_version: Option<Box<str>>,
    /// Its `kubernetes.io/service-name` label.
    pub service: Option<Box<str>>,
    /// `addressType` is IPv4 or IPv6 (FQDN slices have no IPs to connect to).
    pub ip: bool,
    pub ports: Box<[SlicePortInfo]>,
    /// The endpoints whose first address is an IP.
    pub endpoints: Box<[EndpointInfo]>,
}

/// One `ports[]` entry of a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePortInfo {
    /// The Service port's name (empty for an unnamed one).
    pub name: Box<str>,
    /// The protocol is TCP (or unset).
    pub tcp: bool,
    pub port: Option<i32>,
}

/// One endpoint: its first address (the only one with defined semantics) and its conditions
/// as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    pub ip: IpAddr,
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

impl From<EndpointSlice> for SliceInfo {
    fn from(slice: EndpointSlice) -> Self {
        let service = slice
            .metadata
            .labels
            .and_then(|mut labels| labels.remove(SERVICE_NAME_LABEL))
            .map(Into::into);
        let ports = slice
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| SlicePortInfo {
                name: p.name.unwrap_or_default().into(),
                tcp: p.protocol.as_deref().unwrap_or("TCP") == "TCP",
                port: p.port,
            })
            .collect();
        let endpoints = slice
            .endpoints
            .into_iter()
            .filter_map(|endpoint| {
                let ip = endpoint.addresses.first()?.parse::<IpAddr>().ok()?;
                let conditions = endpoint.conditions.unwrap_or_default();
                Some(EndpointInfo {
                    ip,
                    ready: conditions.ready,
                    serving: conditions.serving,
                    terminating: conditions.terminating,
                })
            })
            .collect();
        SliceInfo {
            resource_version: slice.metadata.resource_version.map(Into::into),
            service,
            ip: slice.address_type == "IPv4" || slice.address_type == "IPv6",
            ports,
            endpoints,
        }
    }
}
