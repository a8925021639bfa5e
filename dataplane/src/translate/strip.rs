//! Dropping what translation (and the status writer) never reads, on arrival from a watch, so a
//! cluster's worth of objects costs as little memory as possible (managedFields and
//! `last-applied-configuration` alone are often most of an object).
//!
//! Each function has the shape `kube::runtime::WatchStreamExt::modify` takes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceSpec, ServiceStatus};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::backend::SERVICE_NAME_LABEL;
use super::validate::{LEGACY_CLASS_ANNOTATION, NGINX_PREFIX, SLUICE_PREFIX};

/// Keeps identity, ordering and concurrency fields; drops the rest of the metadata.
fn strip_metadata(meta: &mut ObjectMeta) {
    let ObjectMeta {
        name,
        namespace,
        uid,
        resource_version,
        generation,
        creation_timestamp,
        deletion_timestamp,
        ..
    } = std::mem::take(meta);
    *meta = ObjectMeta {
        name,
        namespace,
        uid,
        resource_version,
        generation,
        creation_timestamp,
        deletion_timestamp,
        ..ObjectMeta::default()
    };
}

/// Whether an Ingress annotation is one Sluice reads.
pub fn is_used_annotation(key: &str) -> bool {
    key == LEGACY_CLASS_ANNOTATION
        || key.starts_with(SLUICE_PREFIX)
        || key.starts_with(NGINX_PREFIX)
}

/// Keeps the spec (every field is routing or TLS input), the status (the status writer compares
/// against it), the class and Sluice/ingress-nginx annotations.
pub fn strip_ingress(ingress: &mut Ingress) {
    let annotations = ingress.metadata.annotations.take().map(|annotations| {
        annotations
            .into_iter()
            .filter(|(key, _)| is_used_annotation(key))
            .collect::<BTreeMap<_, _>>()
    });
    strip_metadata(&mut ingress.metadata);
    ingress.metadata.annotations = annotations.filter(|a| !a.is_empty());
    shrink_ingress(ingress);
}

/// Gives back the spare room of an Ingress's lists: deserialized from a response (no length
/// known up front), a one-entry list has room for four, and at 10k Ingresses the spare
/// rules, paths and status entries were megabytes.
fn shrink_ingress(ingress: &mut Ingress) {
    if let Some(spec) = &mut ingress.spec {
        if let Some(rules) = &mut spec.rules {
            for http in rules.iter_mut().filter_map(|rule| rule.http.as_mut()) {
                http.paths.shrink_to_fit();
            }
            rules.shrink_to_fit();
        }
        if let Some(tls) = &mut spec.tls {
            for hosts in tls.iter_mut().filter_map(|t| t.hosts.as_mut()) {
                hosts.shrink_to_fit();
            }
            tls.shrink_to_fit();
        }
    }
    let entries = ingress
        .status
        .as_mut()
        .and_then(|s| s.load_balancer.as_mut())
        .and_then(|lb| lb.ingress.as_mut());
    if let Some(entries) = entries {
        for ports in entries.iter_mut().filter_map(|e| e.ports.as_mut()) {
            ports.shrink_to_fit();
        }
        entries.shrink_to_fit();
    }
}

/// Keeps the controller and parameters.
pub fn strip_ingress_class(class: &mut IngressClass) {
    strip_metadata(&mut class.metadata);
}

/// Keeps the type, ports, externalName and ClusterIP, and the load-balancer status (the fleet publishes
/// its own Service's address into Ingress status).
pub fn strip_service(service: &mut Service) {
    strip_metadata(&mut service.metadata);
    service.spec = service.spec.take().map(|spec| ServiceSpec {
        type_: spec.type_,
        ports: spec.ports,
        external_name: spec.external_name,
        // service-upstream sends to it.
        cluster_ip: spec.cluster_ip,
        ..ServiceSpec::default()
    });
    service.status = service.status.take().map(|status| ServiceStatus {
        load_balancer: status.load_balancer,
        ..ServiceStatus::default()
    });
}

/// Keeps the Service label, the address type, ports, and each endpoint's addresses and
/// conditions.
pub fn strip_endpoint_slice(slice: &mut EndpointSlice) {
    let service = slice
        .metadata
        .labels
        .take()
        .and_then(|mut labels| labels.remove_entry(SERVICE_NAME_LABEL));
    strip_metadata(&mut slice.metadata);
    slice.metadata.labels = service.map(|entry| BTreeMap::from([entry]));
    for endpoint in &mut slice.endpoints {
        endpoint.deprecated_topology = None;
        endpoint.hints = None;
        endpoint.hostname = None;
        endpoint.node_name = None;
        endpoint.target_ref = None;
        endpoint.zone = None;
    }
}

/// Keeps the origin annotation and the data; drops everything else (labels, managedFields,
/// `stringData`). Every data key stays: mirrors hold only Secrets an Ingress of this class
/// names, and an `auth-map` Secret keeps one key per user.
pub fn strip_secret(secret: &mut Secret) {
    let origin = secret
        .metadata
        .annotations
        .take()
        .and_then(|mut a| a.remove_entry(sluice_crds::mirror::ORIGIN_ANNOTATION));
    strip_metadata(&mut secret.metadata);
    secret.metadata.annotations = origin.map(|entry| BTreeMap::from([entry]));
    secret.string_data = None;
}

/// Keeps the origin annotation and `data` of a mirrored ConfigMap (`custom-headers`); drops
/// everything else, `binaryData` included (header values are text).
pub fn strip_config_map(config_map: &mut ConfigMap) {
    let origin = config_map
        .metadata
        .annotations
        .take()
        .and_then(|mut a| a.remove_entry(sluice_crds::mirror::ORIGIN_ANNOTATION));
    strip_metadata(&mut config_map.metadata);
    config_map.metadata.annotations = origin.map(|entry| BTreeMap::from([entry]));
    config_map.binary_data = None;
    config_map.immutable = None;
}
