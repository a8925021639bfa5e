//! ServiceAccount `X`: the identity of the fleet's pods, bound to Role `X` and, through
//! ClusterRoleBinding `sluice-<ns>-X`, to the static ClusterRole `sluice-dataplane`.

use k8s_openapi::api::core::v1::ServiceAccount;
use sluice_crds::IngressControllerSet;

use super::labels::namespaced_meta;

/// The fleet's ServiceAccount. The token is mounted by the pod spec (which says so
/// explicitly), so the account itself leaves `automountServiceAccountToken` to the pod.
pub fn desired_service_account(set: &IngressControllerSet) -> ServiceAccount {
    ServiceAccount {
        metadata: namespaced_meta(set),
        ..ServiceAccount::default()
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
            let sa = desired_service_account(&s);
            let body = apply_body(&sa, "v1", "ServiceAccount");
            assert_eq!(body["metadata"]["name"], name);
            assert_eq!(body["metadata"]["namespace"], ns);
            assert_eq!(sa.metadata.labels, Some(child_labels(&s)));
            assert_eq!(
                sa.metadata.owner_references,
                Some(vec![owner_reference(&s)])
            );
            // Nothing but metadata: the pod spec decides about the token.
            assert_eq!(
                body.as_object().map(|o| o.len()),
                Some(3),
                "apiVersion, kind, metadata only: {body}"
            );
        }
    }
}
