//! The desired children of an `IngressControllerSet`, one pure builder per file.
//!
//! Every `desired_*` function takes the set (and, where it needs them, a [`BuildContext`]) and
//! returns the complete object to server-side apply: `apiVersion` and `kind` are written by
//! k8s-openapi's serialisation, so `serde_json::to_value(&child)` is an apply body as it is.
//! No builder does I/O or reads a clock, so the same set always gives byte-identical children
//! and an idle operator applies nothing that changes a resourceVersion.
//!
//! Every namespaced child is named after the set, lives in its namespace, carries
//! [`labels::child_labels`] and the controller [`labels::owner_reference`]. The cluster-scoped
//! children (ClusterRoleBinding, IngressClass) carry the labels but no owner reference: a
//! namespaced owner cannot own a cluster-scoped object, so a finalizer removes them.
//!
//! Mirror Secrets ([`mirror_secret`]) are namespaced children too, but many per set (one per
//! referenced Secret) and named after their origin; [`crate::mirror`] applies them.

pub mod cluster_role_binding;
pub mod config_map;
pub mod deployment;
pub mod ingress_class;
pub mod labels;
pub mod mirror_secret;
pub mod pdb;
pub mod role;
pub mod role_binding;
pub mod service;
pub mod service_account;

pub use cluster_role_binding::{DATAPLANE_CLUSTER_ROLE, desired_cluster_role_binding};
pub use config_map::desired_config_map;
pub use deployment::desired_deployment;
pub use ingress_class::{desired_ingress_class, ingress_class_points_at};
pub use mirror_secret::desired_mirror;
pub use pdb::desired_pdb;
pub use role::desired_role;
pub use role_binding::desired_role_binding;
pub use service::desired_service;
pub use service_account::desired_service_account;

use crate::provider::ConcreteProvider;

/// What the builders need beyond the set: operator flags and facts about the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildContext {
    /// Data-plane container image (the operator's `--dataplane-image`).
    pub image: String,
    /// The provider whose Service annotations express the scheme: `spec.loadBalancer.provider`,
    /// or the one detected from the Nodes when that is `auto` (see [`crate::provider::resolve`]).
    pub provider: ConcreteProvider,
    /// `imagePullPolicy` of the data-plane container; `None` leaves the Kubernetes default
    /// (`Always` for `:latest`, else `IfNotPresent`).
    pub image_pull_policy: Option<String>,
}

/// Shared fixtures for the builders' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::Value;
    use sluice_crds::{
        ExternalTrafficPolicy, IngressControllerSet, IngressControllerSetSpec, LoadBalancerScheme,
        LoadBalancerSpec, Provider,
    };

    use super::BuildContext;
    use crate::provider::ConcreteProvider;

    /// The uid every test set carries.
    pub const UID: &str = "0c5d4d43-7d0e-4c55-9a4a-1f3ad5f4d0e1";

    /// A set as read from the API server (name, namespace, uid), internet-facing on auto.
    pub fn set(name: &str, namespace: &str) -> IngressControllerSet {
        IngressControllerSet {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: Some(UID.to_owned()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: IngressControllerSetSpec {
                ingress_class_name: format!("{name}-class"),
                default_class: false,
                watch_ingress_without_class: false,
                replicas: 2,
                load_balancer: LoadBalancerSpec {
                    scheme: LoadBalancerScheme::InternetFacing,
                    provider: Provider::Auto,
                    annotations: Default::default(),
                    load_balancer_class: None,
                    source_ranges: Vec::new(),
                    external_traffic_policy: ExternalTrafficPolicy::Local,
                    proxy_protocol: false,
                },
                publish_status_address: Vec::new(),
                default_backend: None,
                proxy: Default::default(),
                pod: Default::default(),
                patches: Default::default(),
            },
            status: None,
        }
    }

    pub fn ctx(provider: ConcreteProvider) -> BuildContext {
        BuildContext {
            image: "ghcr.io/sluice-dev/sluice:v0.1.0".to_owned(),
            provider,
            image_pull_policy: None,
        }
    }

    /// Serialises a child as it would be sent to the API server and checks that it is a
    /// complete apply body: apiVersion and kind present, no nulls (an explicit null in an
    /// apply body would claim the field and clear it).
    pub fn apply_body<T: serde::Serialize>(obj: &T, api_version: &str, kind: &str) -> Value {
        let value = serde_json::to_value(obj).expect("children serialise");
        assert_eq!(value["apiVersion"], api_version, "{value}");
        assert_eq!(value["kind"], kind, "{value}");
        assert!(!value.to_string().contains("null"), "null in {value}");
        value
    }
}
