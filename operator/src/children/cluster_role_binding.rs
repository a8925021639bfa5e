//! ClusterRoleBinding `sluice-<ns>-X`: gives ServiceAccount `X` the cluster-wide reads of the
//! static ClusterRole `sluice-dataplane` (shipped in `config/rbac`). The operator holds `bind`
//! on that ClusterRole by name instead of every permission it grants.

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sluice_crds::IngressControllerSet;

use super::labels::{child_labels, cluster_role_binding_name};
use super::role_binding::service_account_subject;

/// The static ClusterRole every fleet is bound to.
pub const DATAPLANE_CLUSTER_ROLE: &str = "sluice-dataplane";

/// The fleet's ClusterRoleBinding. Cluster-scoped: a namespaced set cannot own it, so it has
/// no ownerReference and is deleted by the set's finalizer; the set labels (which include the
/// namespace) are how the operator recognises it.
pub fn desired_cluster_role_binding(set: &IngressControllerSet) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(cluster_role_binding_name(set)),
            labels: Some(child_labels(set)),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: DATAPLANE_CLUSTER_ROLE.to_owned(),
        },
        subjects: Some(vec![service_account_subject(set)]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::children::test_support::{apply_body, set};

    #[test]
    fn shape() {
        let cases = [
            (
                "ingress-public",
                "sluice-system",
                "sluice-sluice-system-ingress-public",
            ),
            ("x", "team-a", "sluice-team-a-x"),
        ];
        for (name, ns, crb_name) in cases {
            let s = set(name, ns);
            let crb = desired_cluster_role_binding(&s);
            let body = apply_body(&crb, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding");
            assert_eq!(body["metadata"]["name"], crb_name);
            assert!(body["metadata"].get("namespace").is_none());
            assert!(body["metadata"].get("ownerReferences").is_none());
            assert_eq!(crb.metadata.labels, Some(child_labels(&s)));
            assert_eq!(
                body["roleRef"],
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sluice-dataplane"})
            );
            assert_eq!(
                body["subjects"],
                json!([{"kind": "ServiceAccount", "name": name, "namespace": ns}])
            );
        }
    }
}
