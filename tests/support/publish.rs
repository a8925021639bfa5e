//! Publishing test backends the Kubernetes way: a selector-less Service plus a hand-written
//! EndpointSlice labelled `kubernetes.io/service-name`.

use std::net::SocketAddr;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{Api, ObjectMeta, PostParams};

/// One port of a published Service.
#[derive(Debug, Clone)]
pub struct ServicePortSpec {
    /// Port name (used by Ingresses that reference the port by name).
    pub name: String,
    /// The Service port.
    pub port: i32,
    /// The port the backends listen on (EndpointSlice port).
    pub target_port: i32,
}

/// Creates Service `name` (no selector) and EndpointSlice `<name>-test` listing `endpoints`
/// (ready), each serving every port in `ports`.
pub async fn publish_service(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    ports: &[ServicePortSpec],
    endpoints: &[SocketAddr],
) -> anyhow::Result<(Service, EndpointSlice)> {
    let svc = Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(
                ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(p.name.clone()),
                        port: p.port,
                        target_port: Some(
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                                p.target_port,
                            ),
                        ),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let svc = Api::<Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &svc)
        .await
        .with_context(|| format!("creating Service {namespace}/{name}"))?;
    let slice = endpoint_slice(namespace, name, ports, endpoints);
    let slice = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &slice)
        .await
        .with_context(|| format!("creating EndpointSlice {namespace}/{name}-test"))?;
    Ok((svc, slice))
}

/// The EndpointSlice `publish_service` creates (pure, so tests can also build invalid ones).
pub fn endpoint_slice(
    namespace: &str,
    service: &str,
    ports: &[ServicePortSpec],
    endpoints: &[SocketAddr],
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{service}-test")),
            namespace: Some(namespace.to_string()),
            labels: Some(
                [
                    (
                        "kubernetes.io/service-name".to_string(),
                        service.to_string(),
                    ),
                    (
                        "endpointslice.kubernetes.io/managed-by".to_string(),
                        "sluice-tests".to_string(),
                    ),
                ]
                .into(),
            ),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: endpoints
            .iter()
            .map(|a| Endpoint {
                addresses: vec![a.ip().to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|p| EndpointPort {
                    name: Some(p.name.clone()),
                    port: Some(p.target_port),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}
