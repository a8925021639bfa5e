//! Names, labels and owner references shared by every child of a set.
//!
//! The two set labels (`sluice.dev/set`, `sluice.dev/set-namespace`) are the operator's only
//! claim to an object: they select the fleet's pods, they are what [`is_ours`] checks before
//! the operator touches anything, and they carry the namespace so two same-named sets in two
//! namespaces can never match each other's cluster-scoped objects.
//!
//! Deliberately absent: `app.kubernetes.io/instance` (Argo CD's label tracking would claim or
//! prune the children as its own) and anything copied from the set's own labels or annotations
//! (Argo CD 3 tracks with an annotation, which would be copied along).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use sluice_crds::IngressControllerSet;

/// The one field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "sluice-operator";

/// Label naming the set a child belongs to.
pub const SET_LABEL: &str = "sluice.dev/set";
/// Label naming the namespace of the set a child belongs to.
pub const SET_NAMESPACE_LABEL: &str = "sluice.dev/set-namespace";
/// `app.kubernetes.io/name` of every child.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/managed-by` of every child.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`NAME_LABEL`].
pub const DATAPLANE_NAME: &str = "sluice-dataplane";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "sluice-operator";

/// The set's name (every namespaced child carries it as its own name).
pub fn set_name(set: &IngressControllerSet) -> String {
    set.metadata.name.clone().unwrap_or_default()
}

/// The set's namespace. A set read from the API server always has one (the kind is
/// namespaced); an object built by hand without one yields `""`, which the API server would
/// refuse for every namespaced child rather than silently pick `default`.
pub fn set_namespace(set: &IngressControllerSet) -> String {
    set.metadata.namespace.clone().unwrap_or_default()
}

/// `{sluice.dev/set: <name>, sluice.dev/set-namespace: <ns>}`: the pod selector of the
/// Deployment, Service and PodDisruptionBudget, and the labels [`is_ours`] checks.
pub fn selector_labels(set: &IngressControllerSet) -> BTreeMap<String, String> {
    BTreeMap::from([
        (SET_LABEL.to_owned(), set_name(set)),
        (SET_NAMESPACE_LABEL.to_owned(), set_namespace(set)),
    ])
}

/// Labels of every child (and of the fleet's pods): the selector labels plus the
/// `app.kubernetes.io` name and manager.
pub fn child_labels(set: &IngressControllerSet) -> BTreeMap<String, String> {
    let mut labels = selector_labels(set);
    labels.insert(NAME_LABEL.to_owned(), DATAPLANE_NAME.to_owned());
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    labels
}

/// The selector in string form, as `status.selector` (read by the scale subresource and so by
/// HPAs) must hold it: `key=value` pairs sorted by key, joined by commas, the same set of
/// pairs as the Deployment's `spec.selector.matchLabels`.
pub fn selector_string(set: &IngressControllerSet) -> String {
    // A BTreeMap iterates in key order, so the string is stable across reconciles and never
    // causes a status write by itself.
    selector_labels(set)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The controller owner reference every namespaced child carries, so Kubernetes garbage
/// collection removes the fleet with the set and `kubectl tree`-style tools show the relation.
/// `blockOwnerDeletion` keeps foreground deletion of the set waiting for its children.
///
/// The uid comes from the set as read from the API server; a set built by hand without one
/// gives an empty uid, which the API server refuses (never a reference to the wrong object).
pub fn owner_reference(set: &IngressControllerSet) -> OwnerReference {
    OwnerReference {
        api_version: IngressControllerSet::api_version(&()).into_owned(),
        kind: IngressControllerSet::kind(&()).into_owned(),
        name: set_name(set),
        uid: set.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// True when `meta` carries both set labels of `set`. The operator never modifies or deletes an
/// object for which this is false: it reports a conflict instead. Both labels are required so
/// a same-named set in another namespace never matches (cluster-scoped objects especially).
pub fn is_ours(meta: &ObjectMeta, set: &IngressControllerSet) -> bool {
    let Some(labels) = meta.labels.as_ref() else {
        return false;
    };
    selector_labels(set)
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Name of the set's ClusterRoleBinding to the `sluice-dataplane` ClusterRole:
/// `sluice-<ns>-<name>`. Cluster-scoped, so the namespace is part of the name.
///
/// The name alone is ambiguous (namespace `a-b` + set `c` and namespace `a` + set `b-c` give
/// the same name); the set labels are not, so a binding belonging to the other set fails
/// [`is_ours`] and is reported as a conflict instead of being taken over.
pub fn cluster_role_binding_name(set: &IngressControllerSet) -> String {
    format!("sluice-{}-{}", set_namespace(set), set_name(set))
}

/// Metadata of a namespaced child: named after the set, in its namespace, with the child
/// labels and the controller owner reference.
pub fn namespaced_meta(set: &IngressControllerSet) -> ObjectMeta {
    ObjectMeta {
        name: Some(set_name(set)),
        namespace: Some(set_namespace(set)),
        labels: Some(child_labels(set)),
        owner_references: Some(vec![owner_reference(set)]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::test_support::set;

    #[test]
    fn labels_per_set() {
        // (name, namespace, selector string)
        let cases = [
            (
                "ingress-public",
                "sluice-system",
                "sluice.dev/set=ingress-public,sluice.dev/set-namespace=sluice-system",
            ),
            ("a", "b", "sluice.dev/set=a,sluice.dev/set-namespace=b"),
        ];
        for (name, ns, selector) in cases {
            let s = set(name, ns);
            let sel = selector_labels(&s);
            assert_eq!(sel.len(), 2, "{name}");
            assert_eq!(sel[SET_LABEL], name);
            assert_eq!(sel[SET_NAMESPACE_LABEL], ns);
            assert_eq!(selector_string(&s), selector);

            let labels = child_labels(&s);
            assert_eq!(labels.len(), 4, "{labels:?}");
            assert_eq!(labels[NAME_LABEL], "sluice-dataplane");
            assert_eq!(labels[MANAGED_BY_LABEL], "sluice-operator");
            assert!(sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
            assert!(!labels.contains_key("app.kubernetes.io/instance"));
        }
    }

    #[test]
    fn set_labels_and_annotations_are_not_copied() {
        let mut s = set("x", "ns");
        s.metadata.labels = Some(BTreeMap::from([
            (
                "app.kubernetes.io/instance".to_owned(),
                "argo-app".to_owned(),
            ),
            ("team".to_owned(), "web".to_owned()),
        ]));
        s.metadata.annotations = Some(BTreeMap::from([(
            "argocd.argoproj.io/tracking-id".to_owned(),
            "app:sluice.dev/IngressControllerSet:ns/x".to_owned(),
        )]));
        let meta = namespaced_meta(&s);
        assert_eq!(meta.labels, Some(child_labels(&set("x", "ns"))));
        assert_eq!(meta.annotations, None);
    }

    #[test]
    fn owner_reference_is_controller() {
        let s = set("ingress-public", "sluice-system");
        let owner = owner_reference(&s);
        assert_eq!(owner.api_version, "sluice.dev/v1alpha1");
        assert_eq!(owner.kind, "IngressControllerSet");
        assert_eq!(owner.name, "ingress-public");
        assert_eq!(owner.uid, "0c5d4d43-7d0e-4c55-9a4a-1f3ad5f4d0e1");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
    }

    #[test]
    fn namespaced_meta_shape() {
        let s = set("ingress-private", "edge");
        let meta = namespaced_meta(&s);
        assert_eq!(meta.name.as_deref(), Some("ingress-private"));
        assert_eq!(meta.namespace.as_deref(), Some("edge"));
        assert_eq!(meta.owner_references, Some(vec![owner_reference(&s)]));
    }

    #[test]
    fn is_ours_needs_both_labels() {
        let s = set("x", "ns");
        let with = |pairs: &[(&str, &str)]| ObjectMeta {
            labels: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        let cases = [
            (ObjectMeta::default(), false),
            (with(&[]), false),
            (with(&[(SET_LABEL, "x")]), false),
            (with(&[(SET_NAMESPACE_LABEL, "ns")]), false),
            // Same name, other namespace: someone else's object.
            (
                with(&[(SET_LABEL, "x"), (SET_NAMESPACE_LABEL, "other")]),
                false,
            ),
            (
                with(&[(SET_LABEL, "y"), (SET_NAMESPACE_LABEL, "ns")]),
                false,
            ),
            (with(&[(SET_LABEL, "x"), (SET_NAMESPACE_LABEL, "ns")]), true),
            (
                with(&[
                    (SET_LABEL, "x"),
                    (SET_NAMESPACE_LABEL, "ns"),
                    ("extra", "label"),
                ]),
                true,
            ),
            (namespaced_meta(&s), true),
        ];
        for (i, (meta, want)) in cases.into_iter().enumerate() {
            assert_eq!(is_ours(&meta, &s), want, "case {i}: {meta:?}");
        }
    }

    #[test]
    fn cluster_role_binding_names() {
        let cases = [
            (
                "ingress-public",
                "sluice-system",
                "sluice-sluice-system-ingress-public",
            ),
            ("x", "default", "sluice-default-x"),
        ];
        for (name, ns, want) in cases {
            assert_eq!(cluster_role_binding_name(&set(name, ns)), want);
        }
    }

    #[test]
    fn field_manager() {
        assert_eq!(FIELD_MANAGER, "sluice-operator");
    }
}
