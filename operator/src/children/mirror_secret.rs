//! Mirror Secrets: a copy, in the set's namespace, of each Secret an Ingress of the set's class
//! references, because the fleet may read Secrets only there (see `sluice_crds::mirror`, the
//! contract the data plane reads them by).
//!
//! Unlike the other children there are many per set, one per origin, named
//! [`mirror_name`]`(set, origin namespace, origin name)`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sluice_crds::IngressControllerSet;
use sluice_crds::mirror::{
    MIRROR_LABEL, ORIGIN_ANNOTATION, ORIGIN_VERSION_ANNOTATION, mirror_name,
};

use super::labels::{child_labels, is_ours, owner_reference, set_name, set_namespace};

/// Labels of every mirror of `set`: the child labels plus `sluice.dev/mirror: "true"`, which is
/// what `sluice_crds::mirror::mirror_selector` selects.
pub fn mirror_labels(set: &IngressControllerSet) -> BTreeMap<String, String> {
    let mut labels = child_labels(set);
    labels.insert(MIRROR_LABEL.to_owned(), "true".to_owned());
    labels
}

/// True when `meta` is a mirror belonging to `set`: in its namespace, with its set labels and
/// the mirror label. Only such Secrets are ever updated or deleted by mirroring.
pub fn is_mirror_of(meta: &ObjectMeta, set: &IngressControllerSet) -> bool {
    meta.namespace.as_deref() == Some(set_namespace(set).as_str())
        && is_ours(meta, set)
        && meta
            .labels
            .as_ref()
            .and_then(|l| l.get(MIRROR_LABEL))
            .is_some_and(|v| v == "true")
}

/// The metadata of the mirror of an object with `origin` metadata (a Secret or a ConfigMap),
/// for `set`: the `sluice_crds::mirror` contract's name, labels and origin annotations, and the
/// set as controller owner.
pub fn mirror_metadata(set: &IngressControllerSet, origin: &ObjectMeta) -> ObjectMeta {
    let origin_ns = origin.namespace.clone().unwrap_or_default();
    let origin_name = origin.name.clone().unwrap_or_default();
    let mut annotations = BTreeMap::from([(
        ORIGIN_ANNOTATION.to_owned(),
        format!("{origin_ns}/{origin_name}"),
    )]);
    if let Some(version) = &origin.resource_version {
        annotations.insert(ORIGIN_VERSION_ANNOTATION.to_owned(), version.clone());
    }
    ObjectMeta {
        name: Some(mirror_name(&set_name(set), &origin_ns, &origin_name)),
        namespace: Some(set_namespace(set)),
        labels: Some(mirror_labels(set)),
        annotations: Some(annotations),
        owner_references: Some(vec![owner_reference(set)]),
        ..ObjectMeta::default()
    }
}

/// The mirror of `origin` (as read from the API server) for `set`.
///
/// - `type` and `data` are copied; `immutable` is not (a mirror must follow its origin when the
///   origin is deleted and recreated with new content), nor are the origin's labels and
///   annotations (they are the origin owner's, and may hold a copy of the data, as
///   `kubectl.kubernetes.io/last-applied-configuration` does).
/// - `sluice.dev/origin` names the origin; `sluice.dev/origin-resource-version` is its
///   resourceVersion, so a rotation changes the desired object and is copied exactly once.
/// - The set is the controller owner, so garbage collection removes the mirrors with the set.
pub fn desired_mirror(set: &IngressControllerSet, origin: &Secret) -> Secret {
    Secret {
        metadata: mirror_metadata(set, &origin.metadata),
        type_: origin.type_.clone(),
        data: origin.data.clone(),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use serde_json::json;

    use super::*;
    use crate::children::test_support::{apply_body, set};

    fn origin() -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("web-tls".into()),
                namespace: Some("shop".into()),
                resource_version: Some("4711".into()),
                uid: Some("origin-uid".into()),
                labels: Some(BTreeMap::from([("team".into(), "web".into())])),
                annotations: Some(BTreeMap::from([(
                    "kubectl.kubernetes.io/last-applied-configuration".into(),
                    "{\"data\":{\"tls.key\":\"c2VjcmV0\"}}".into(),
                )])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                ("tls.crt".into(), ByteString(b"CERT".to_vec())),
                ("tls.key".into(), ByteString(b"KEY".to_vec())),
            ])),
            immutable: Some(true),
            ..Secret::default()
        }
    }

    #[test]
    fn shape() {
        let s = set("ingress-public", "edge");
        let mirror = desired_mirror(&s, &origin());
        let body = apply_body(&mirror, "v1", "Secret");
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": mirror_name("ingress-public", "shop", "web-tls"),
                    "namespace": "edge",
                    "labels": {
                        "app.kubernetes.io/managed-by": "sluice-operator",
                        "app.kubernetes.io/name": "sluice-dataplane",
                        "sluice.dev/mirror": "true",
                        "sluice.dev/set": "ingress-public",
                        "sluice.dev/set-namespace": "edge",
                    },
                    "annotations": {
                        "sluice.dev/origin": "shop/web-tls",
                        "sluice.dev/origin-resource-version": "4711",
                    },
                    "ownerReferences": [serde_json::to_value(owner_reference(&s)).unwrap()],
                },
                "type": "kubernetes.io/tls",
                // base64 of CERT and KEY
                "data": {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ"},
            })
        );
        assert!(is_mirror_of(&mirror.metadata, &s));
    }

    #[test]
    fn selected_by_the_contract_selector() {
        let s = set("ingress-public", "edge");
        let labels = mirror_labels(&s);
        let selector = sluice_crds::mirror::mirror_selector("ingress-public", "edge");
        for pair in selector.split(',') {
            let (k, v) = pair.split_once('=').unwrap();
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "{pair}");
        }
        assert_eq!(labels.len(), child_labels(&s).len() + 1);
    }

    #[test]
    fn rotation_changes_version_and_data_only() {
        let s = set("x", "edge");
        let before = desired_mirror(&s, &origin());
        let mut rotated = origin();
        rotated.metadata.resource_version = Some("4712".into());
        rotated
            .data
            .as_mut()
            .unwrap()
            .insert("tls.crt".into(), ByteString(b"NEW".to_vec()));
        let after = desired_mirror(&s, &rotated);
        assert_eq!(before.metadata.name, after.metadata.name);
        assert_eq!(before.metadata.labels, after.metadata.labels);
        assert_ne!(before.metadata.annotations, after.metadata.annotations);
        assert_ne!(before.data, after.data);
    }

    #[test]
    fn opaque_without_data() {
        let s = set("x", "edge");
        let bare = Secret {
            metadata: ObjectMeta {
                name: Some("empty".into()),
                namespace: Some("shop".into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        let body = apply_body(&desired_mirror(&s, &bare), "v1", "Secret");
        assert!(
            body.get("data").is_none() && body.get("type").is_none(),
            "{body}"
        );
        assert_eq!(
            body["metadata"]["annotations"],
            json!({"sluice.dev/origin": "shop/empty"})
        );
    }

    #[test]
    fn mirrors_of_other_sets_or_namespaces_are_not_ours() {
        let s = set("x", "edge");
        let mine = desired_mirror(&s, &origin()).metadata;
        let mut other_ns = mine.clone();
        other_ns.namespace = Some("elsewhere".into());
        let mut not_mirror = mine.clone();
        not_mirror.labels.as_mut().unwrap().remove(MIRROR_LABEL);
        let other_set = desired_mirror(&set("y", "edge"), &origin()).metadata;
        let cases = [
            (mine, true),
            (other_ns, false),
            (not_mirror, false),
            (other_set, false),
        ];
        for (i, (meta, want)) in cases.into_iter().enumerate() {
            assert_eq!(is_mirror_of(&meta, &s), want, "case {i}");
        }
    }
}
