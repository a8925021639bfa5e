//! Role `X`: what a fleet may do in its own namespace, and nothing more.
//!
//! The data plane is exposed to the internet, so its namespaced rights are as narrow as RBAC
//! allows: the ConfigMaps and Secrets in its namespace (its own ConfigMap, and the mirrors of
//! what its Ingresses reference, so it needs no cluster-wide Secret or ConfigMap access), its
//! own leader election Lease, and Events. Cluster-wide reads (Ingresses, IngressClasses, Services,
//! EndpointSlices) come from the static ClusterRole `sluice-dataplane`.

use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
use sluice_crds::IngressControllerSet;

use super::labels::{namespaced_meta, set_name};

fn rule(group: &str, resource: &str, names: Option<&str>, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        resource_names: names.map(|n| vec![n.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The fleet's Role.
///
/// - ConfigMaps: get/list/watch in this namespace only: its own ConfigMap `X`, and the mirrors
///   of the `custom-headers` ConfigMaps, which it lists by label (a rule with `resourceNames`
///   cannot allow that, the mirrors' names are not known in advance).
/// - Secrets: get/list/watch in this namespace only (the Role is namespaced).
/// - Lease `X` (`coordination.k8s.io`): `create` cannot be limited by name in RBAC (the name is
///   not known at authorisation time), so it is a rule of its own; get/update/patch only on `X`.
/// - Events (`""` and `events.k8s.io`): create/patch, for per-Ingress problems.
pub fn desired_role(set: &IngressControllerSet) -> Role {
    let name = set_name(set);
    Role {
        metadata: namespaced_meta(set),
        rules: Some(vec![
            rule("", "configmaps", None, &["get", "list", "watch"]),
            rule("", "secrets", None, &["get", "list", "watch"]),
            rule("coordination.k8s.io", "leases", None, &["create"]),
            rule(
                "coordination.k8s.io",
                "leases",
                Some(&name),
                &["get", "update", "patch"],
            ),
            rule("", "events", None, &["create", "patch"]),
            rule("events.k8s.io", "events", None, &["create", "patch"]),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::labels::{child_labels, owner_reference};
    use crate::children::test_support::{apply_body, set};

    /// (apiGroup, resource, resourceNames, verbs) of every rule, in order.
    type RuleRow = (String, String, Option<Vec<String>>, Vec<String>);

    fn rows(role: &Role) -> Vec<RuleRow> {
        role.rules
            .as_ref()
            .expect("rules")
            .iter()
            .map(|r| {
                assert!(r.non_resource_urls.is_none());
                let groups = r.api_groups.clone().expect("apiGroups");
                let resources = r.resources.clone().expect("resources");
                assert_eq!((groups.len(), resources.len()), (1, 1), "{r:?}");
                (
                    groups[0].clone(),
                    resources[0].clone(),
                    r.resource_names.clone(),
                    r.verbs.clone(),
                )
            })
            .collect()
    }

    fn row(group: &str, resource: &str, names: Option<&str>, verbs: &[&str]) -> RuleRow {
        (
            group.to_owned(),
            resource.to_owned(),
            names.map(|n| vec![n.to_owned()]),
            verbs.iter().map(|v| (*v).to_owned()).collect(),
        )
    }

    #[test]
    fn shape_and_rules() {
        for (name, ns) in [("ingress-public", "sluice-system"), ("x", "team-a")] {
            let s = set(name, ns);
            let role = desired_role(&s);
            let body = apply_body(&role, "rbac.authorization.k8s.io/v1", "Role");
            assert_eq!(body["metadata"]["name"], name);
            assert_eq!(body["metadata"]["namespace"], ns);
            assert_eq!(role.metadata.labels, Some(child_labels(&s)));
            assert_eq!(
                role.metadata.owner_references,
                Some(vec![owner_reference(&s)])
            );
            let want = vec![
                row("", "configmaps", None, &["get", "list", "watch"]),
                row("", "secrets", None, &["get", "list", "watch"]),
                row("coordination.k8s.io", "leases", None, &["create"]),
                row(
                    "coordination.k8s.io",
                    "leases",
                    Some(name),
                    &["get", "update", "patch"],
                ),
                row("", "events", None, &["create", "patch"]),
                row("events.k8s.io", "events", None, &["create", "patch"]),
            ];
            assert_eq!(rows(&role), want);
        }
    }

    #[test]
    fn never_grants_more_than_needed() {
        let role = desired_role(&set("x", "ns"));
        for (group, resource, names, verbs) in rows(&role) {
            assert!(group != "*" && resource != "*", "wildcard in {resource}");
            for forbidden in ["*", "delete", "deletecollection", "escalate", "bind"] {
                assert!(
                    !verbs.iter().any(|v| v == forbidden),
                    "{forbidden} on {resource}"
                );
            }
            // Only Secrets and ConfigMaps may be read without a name, and never written.
            if resource == "secrets" || resource == "configmaps" {
                assert!(names.is_none());
                assert!(
                    verbs
                        .iter()
                        .all(|v| ["get", "list", "watch"].contains(&v.as_str()))
                );
            }
            // Writable leases are only our own one.
            if resource == "leases" && verbs.iter().any(|v| v == "update" || v == "patch") {
                assert_eq!(names, Some(vec!["x".to_owned()]));
            }
        }
    }
}
