//! ConfigMap mirrors as the operator writes them (`sluice_crds::mirror`), for data-plane tests
//! that run without an operator.

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sluice_crds::mirror::{
    MIRROR_LABEL, ORIGIN_ANNOTATION, ORIGIN_VERSION_ANNOTATION, mirror_name,
};

/// The metadata the operator gives the mirror (Secret or ConfigMap) of
/// `origin_namespace/origin_name` at `origin_version` for set `set_namespace/set`.
pub fn mirror_metadata(
    set_namespace: &str,
    set: &str,
    origin_namespace: &str,
    origin_name: &str,
    origin_version: &str,
) -> serde_json::Value {
    json!({
        "name": mirror_name(set, origin_namespace, origin_name),
        "namespace": set_namespace,
        "labels": {
            MIRROR_LABEL: "true",
            "app.kubernetes.io/name": "sluice-dataplane",
            "app.kubernetes.io/managed-by": "sluice-operator",
            "sluice.dev/set": set,
            "sluice.dev/set-namespace": set_namespace,
        },
        "annotations": {
            ORIGIN_ANNOTATION: format!("{origin_namespace}/{origin_name}"),
            ORIGIN_VERSION_ANNOTATION: origin_version,
        },
    })
}

/// Applies the mirror of ConfigMap `origin_namespace/origin_name` (at `origin_version`) with
/// `data` into the set's namespace, with the contract's name, labels and annotations; returns
/// the mirror's name.
pub async fn apply_config_map_mirror(
    client: &kube::Client,
    set_namespace: &str,
    set: &str,
    origin_namespace: &str,
    origin_name: &str,
    origin_version: &str,
    data: serde_json::Value,
) -> anyhow::Result<String> {
    let name = mirror_name(set, origin_namespace, origin_name);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), set_namespace);
    api.patch(
        &name,
        &PatchParams::apply("sluice-tests").force(),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": mirror_metadata(set_namespace, set, origin_namespace, origin_name, origin_version),
            "data": data,
        })),
    )
    .await
    .with_context(|| format!("applying mirror ConfigMap {set_namespace}/{name}"))?;
    Ok(name)
}
