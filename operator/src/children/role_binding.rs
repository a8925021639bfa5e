//! RoleBinding `X`: binds Role `X` to ServiceAccount `X`, both in the set's namespace.

use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use sluice_crds::IngressControllerSet;

use super::labels::{namespaced_meta, set_name, set_namespace};

/// The fleet's RoleBinding. `roleRef` is immutable in Kubernetes; it depends only on the set's
/// name, which cannot change, so applying it again never fails on that.
pub fn desired_role_binding(set: &IngressControllerSet) -> RoleBinding {
    RoleBinding {
        metadata: namespaced_meta(set),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: set_name(set),
        },
        subjects: Some(vec![service_account_subject(set)]),
    }
}

/// ServiceAccount `X` in the set's namespace, as an RBAC subject.
pub(crate) fn service_account_subject(set: &IngressControllerSet) -> Subject {
    Subject {
        // ServiceAccount subjects belong to the core group. Left out rather than written as
        // "": the API server drops empty strings (`omitempty`), and an apply body should say
        // what the live object will read back.
        api_group: None,
        kind: "ServiceAccount".to_owned(),
        name: set_name(set),
        namespace: Some(set_namespace(set)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::labels::{child_labels, owner_reference};
    use crate::children::test_support::{apply_body, set};

    #[test]
    fn shape() {
        for (name, ns) in [("ingress-public", "sluice-system"), ("x", "team-a")] {
            let s = set(name, ns);
            let rb = desired_role_binding(&s);
            let body = apply_body(&rb, "rbac.authorization.k8s.io/v1", "RoleBinding");
            assert_eq!(body["metadata"]["name"], name);
            assert_eq!(body["metadata"]["namespace"], ns);
            assert_eq!(rb.metadata.labels, Some(child_labels(&s)));
            assert_eq!(
                rb.metadata.owner_references,
                Some(vec![owner_reference(&s)])
            );
            assert_eq!(
                body["roleRef"],
                serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name})
            );
            assert_eq!(
                body["subjects"],
                serde_json::json!([{"kind": "ServiceAccount", "name": name, "namespace": ns}])
            );
        }
    }
}
