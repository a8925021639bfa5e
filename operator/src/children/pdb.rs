//! PodDisruptionBudget `X`: at most one fleet pod voluntarily disrupted at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_crds::IngressControllerSet;

use super::labels::{namespaced_meta, selector_labels};

/// The fleet's PodDisruptionBudget: always `maxUnavailable: 1`, whatever the replica count, so
/// an HPA moving between 1 and 2 replicas never makes it appear and disappear (and a
/// one-replica fleet can still be drained: `minAvailable` would block that forever).
///
/// `unhealthyPodEvictionPolicy: AlwaysAllow` lets a drain evict pods that are not ready
/// anyway: a crash-looping pod protects no traffic and must not block node maintenance.
pub fn desired_pdb(set: &IngressControllerSet) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: namespaced_meta(set),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(set)),
                ..LabelSelector::default()
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::children::labels::{child_labels, owner_reference};
    use crate::children::test_support::{apply_body, set};

    #[test]
    fn always_max_unavailable_one() {
        for replicas in [0, 1, 2, 10] {
            let mut s = set("ingress-public", "sluice-system");
            s.spec.replicas = replicas;
            let pdb = desired_pdb(&s);
            let body = apply_body(&pdb, "policy/v1", "PodDisruptionBudget");
            assert_eq!(body["metadata"]["name"], "ingress-public");
            assert_eq!(body["metadata"]["namespace"], "sluice-system");
            assert_eq!(pdb.metadata.labels, Some(child_labels(&s)));
            assert_eq!(
                pdb.metadata.owner_references,
                Some(vec![owner_reference(&s)])
            );
            assert_eq!(
                body["spec"],
                json!({
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": {
                        "sluice.dev/set": "ingress-public",
                        "sluice.dev/set-namespace": "sluice-system",
                    }},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                }),
                "replicas {replicas}"
            );
        }
    }
}
