//! Mirror ConfigMaps: a copy, in the set's namespace, of each ConfigMap an Ingress of the set's
//! class references (`custom-headers`), so the fleet reads ConfigMaps only in its own namespace.
//! The same contract as the mirror Secrets (`sluice_crds::mirror`): name, labels, origin
//! annotations and owner.

use k8s_openapi::api::core::v1::ConfigMap;
use sluice_crds::IngressControllerSet;

use crate::children::mirror_secret::mirror_metadata;

/// The mirror of `origin` (as read from the API server) for `set`.
///
/// Only `data` is copied: the data plane reads header values, which are text, so `binaryData`
/// would only cost memory in the fleet. Not `immutable` (a mirror follows its origin when it is
/// recreated), nor the origin's labels and annotations (they are its owner's).
pub fn desired_mirror(set: &IngressControllerSet, origin: &ConfigMap) -> ConfigMap {
    ConfigMap {
        metadata: mirror_metadata(set, &origin.metadata),
        data: origin.data.clone(),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;
    use sluice_crds::mirror::mirror_name;

    use crate::children::labels::owner_reference;

    use super::*;
    use crate::children::mirror_secret::is_mirror_of;
    use crate::children::test_support::{apply_body, set};

    fn origin() -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("headers".into()),
                namespace: Some("shop".into()),
                resource_version: Some("42".into()),
                labels: Some(BTreeMap::from([("team".into(), "web".into())])),
                annotations: Some(BTreeMap::from([(
                    "kubectl.kubernetes.io/last-applied-configuration".into(),
                    "{}".into(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("X-Frame-Options".into(), "DENY".into())])),
            binary_data: Some(BTreeMap::from([(
                "logo".into(),
                k8s_openapi::ByteString(vec![1, 2]),
            )])),
            immutable: Some(true),
        }
    }

    #[test]
    fn shape() {
        let s = set("ingress-public", "edge");
        let mirror = desired_mirror(&s, &origin());
        let body = apply_body(&mirror, "v1", "ConfigMap");
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": mirror_name("ingress-public", "shop", "headers"),
                    "namespace": "edge",
                    "labels": {
                        "app.kubernetes.io/managed-by": "sluice-operator",
                        "app.kubernetes.io/name": "sluice-dataplane",
                        "sluice.dev/mirror": "true",
                        "sluice.dev/set": "ingress-public",
                        "sluice.dev/set-namespace": "edge",
                    },
                    "annotations": {
                        "sluice.dev/origin": "shop/headers",
                        "sluice.dev/origin-resource-version": "42",
                    },
                    "ownerReferences": [serde_json::to_value(owner_reference(&s)).unwrap()],
                },
                "data": {"X-Frame-Options": "DENY"},
            })
        );
        assert!(is_mirror_of(&mirror.metadata, &s));
    }

    #[test]
    fn a_change_of_the_origin_changes_the_mirror() {
        let s = set("x", "edge");
        let before = desired_mirror(&s, &origin());
        let mut changed = origin();
        changed.metadata.resource_version = Some("43".into());
        changed.data = Some(BTreeMap::from([(
            "X-Frame-Options".into(),
            "SAMEORIGIN".into(),
        )]));
        let after = desired_mirror(&s, &changed);
        assert_eq!(before.metadata.name, after.metadata.name);
        assert_ne!(before.metadata.annotations, after.metadata.annotations);
        assert_ne!(before.data, after.data);
    }
}
