//! `spec.patches`: the escape hatch for fields of the generated Deployment and Service that the
//! API does not expose, applied to the built child before server-side apply.
//!
//! - `JSONPatch` (RFC 6902): a list of operations, applied atomically by the json-patch crate
//!   (all or nothing). Errors name the index of the failing operation and its path, so a
//!   Stalled condition tells the user exactly which entry to fix.
//! - `MergePatch` (RFC 7386): an object merged into the child; `null` deletes a field. It must
//!   be an object: RFC 7386 says any other value replaces the whole document, which can never
//!   be a valid child.
//!
//! After patching, the fields the operator depends on must be unchanged: `apiVersion`, `kind`,
//! `metadata.name`, `metadata.namespace`, the set labels in `metadata.labels` (what `is_ours`
//! checks) and its `app.kubernetes.io/managed-by` label (what the operator's watches select
//! on), `spec.selector` (Deployment and Service), the set labels of the pod template (the
//! pods must keep matching the selector) and `metadata.ownerReferences` (garbage collection).
//! A patch that changes one is refused with [`PatchError::Protected`]; the operator then keeps
//! the last good child rather than apply a half-intended one. Other labels and annotations may
//! be patched freely.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_crds::{ChildPatch, PatchType};

use crate::children::labels::{MANAGED_BY_LABEL, SET_LABEL, SET_NAMESPACE_LABEL};

/// Why a patch could not be applied. Every variant names the child (its kind as passed to
/// [`apply_patch`], e.g. `Deployment`) and reads as a complete sentence in a condition message
/// or an Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body has the wrong shape for its type (JSONPatch needs a list of operations,
    /// MergePatch an object).
    #[error("{child} patch: {message}")]
    Shape {
        /// The patched child's kind.
        child: String,
        /// What is wrong.
        message: String,
    },
    /// A JSON Patch operation is malformed or failed to apply (a missing path, a failed
    /// `test`, ...). Nothing of the patch was applied.
    #[error("{child} patch: operation {operation} (path {path:?}) failed: {message}")]
    Operation {
        /// The patched child's kind.
        child: String,
        /// Index of the failing operation in the patch list, from 0.
        operation: usize,
        /// The operation's `path` (a JSON pointer), or `""` when it has none.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The patch changes a field the operator depends on.
    #[error(
        "{child} patch: changes {path}, which the operator depends on (names, set labels, selectors and owner references cannot be patched)"
    )]
    Protected {
        /// The patched child's kind.
        child: String,
        /// JSON pointer of the protected field that changed, e.g. `/spec/selector`.
        path: String,
    },
    /// The patched object is no longer a valid child: a value of the wrong type, or a field
    /// that does not exist in the API (it would otherwise be dropped without a word).
    #[error("{child} patch: the patched {child} is not valid: {message}")]
    Invalid {
        /// The patched child's kind.
        child: String,
        /// What is wrong.
        message: String,
    },
}

impl PatchError {
    /// The patched child's kind.
    pub fn child(&self) -> &str {
        match self {
            PatchError::Shape { child, .. }
            | PatchError::Operation { child, .. }
            | PatchError::Protected { child, .. }
            | PatchError::Invalid { child, .. } => child,
        }
    }

    /// Index of the failing JSON Patch operation, when one failed.
    pub fn operation(&self) -> Option<usize> {
        match self {
            PatchError::Operation { operation, .. } => Some(*operation),
            _ => None,
        }
    }

    /// The JSON pointer the error is about, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            PatchError::Operation { path, .. } | PatchError::Protected { path, .. } => Some(path),
            PatchError::Shape { .. } | PatchError::Invalid { .. } => None,
        }
    }
}

/// Escapes one JSON pointer segment (RFC 6901): `~` → `~0`, `/` → `~1`.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The fields a patch may not change, as JSON pointers, in the order they are reported.
fn protected_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "/apiVersion",
        "/kind",
        "/metadata/name",
        "/metadata/namespace",
        "/metadata/ownerReferences",
        "/spec/selector",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for label in [SET_LABEL, SET_NAMESPACE_LABEL] {
        paths.push(format!("/metadata/labels/{}", escape(label)));
        paths.push(format!("/spec/template/metadata/labels/{}", escape(label)));
    }
    // The operator watches its children with a managed-by label selector: without the label a
    // child would drop out of the watch and hand edits to it would no longer be reverted.
    paths.push(format!("/metadata/labels/{}", escape(MANAGED_BY_LABEL)));
    paths
}

/// Applies `patch` to the JSON form of a child and checks the protected fields. The result keeps
/// every field the patch wrote, including ones the k8s-openapi types do not know (for callers
/// that apply raw JSON); [`apply_patch`] is the typed, stricter form.
pub fn apply_patch_value(
    original: &Value,
    patch: &ChildPatch,
    child: &str,
) -> Result<Value, PatchError> {
    let mut doc = original.clone();
    match patch.type_ {
        PatchType::JsonPatch => json_patch_ops(&mut doc, &patch.patch, child)?,
        PatchType::MergePatch => {
            if !patch.patch.is_object() {
                return Err(PatchError::Shape {
                    child: child.to_owned(),
                    message: format!(
                        "a MergePatch must be an object, got {}",
                        kind_of(&patch.patch)
                    ),
                });
            }
            json_patch::merge(&mut doc, &patch.patch);
        }
    }
    for path in protected_paths() {
        if original.pointer(&path) != doc.pointer(&path) {
            return Err(PatchError::Protected {
                child: child.to_owned(),
                path,
            });
        }
    }
    Ok(doc)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses the operations one by one (so a malformed one is reported by index) and applies them
/// all or nothing.
fn json_patch_ops(doc: &mut Value, body: &Value, child: &str) -> Result<(), PatchError> {
    let Some(raw_ops) = body.as_array() else {
        return Err(PatchError::Shape {
            child: child.to_owned(),
            message: format!(
                "a JSONPatch must be a list of operations, got {}",
                kind_of(body)
            ),
        });
    };
    let mut ops = Vec::with_capacity(raw_ops.len());
    for (i, raw) in raw_ops.iter().enumerate() {
        let op: json_patch::PatchOperation =
            serde_json::from_value(raw.clone()).map_err(|e| PatchError::Operation {
                child: child.to_owned(),
                operation: i,
                path: raw["path"].as_str().unwrap_or_default().to_owned(),
                message: format!("not a valid operation: {e}"),
            })?;
        ops.push(op);
    }
    // json_patch::patch undoes the operations already applied when one fails.
    json_patch::patch(doc, &ops).map_err(|e| PatchError::Operation {
        child: child.to_owned(),
        operation: e.operation,
        path: e.path.to_string(),
        message: e.kind.to_string(),
    })
}

/// The first place where `patched` holds something that did not survive a round trip through
/// the typed object (`typed`): a misspelt or unknown field, which deserialisation ignores.
/// `null`s are skipped: they mean "absent" in a Kubernetes object.
fn first_dropped(patched: &Value, typed: &Value, path: &str) -> Option<String> {
    match (patched, typed) {
        (Value::Null, _) => None,
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| {
            let here = format!("{path}/{}", escape(key));
            match b.get(key) {
                None if value.is_null() => None,
                None => Some(here),
                Some(back) => first_dropped(value, back, &here),
            }
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_dropped(x, y, &format!("{path}/{i}"))),
        (a, b) => (a != b).then(|| path.to_owned()),
    }
}

/// Applies a `spec.patches` entry to a built child: JSON Patch or Merge Patch, then the
/// protected-field check (see the module docs), then back into the typed object. `child` is the
/// kind shown in errors, e.g. `"Deployment"`.
///
/// The typed round trip would silently drop a field the API does not have (`resorces` for
/// `resources`); such a patch is refused with [`PatchError::Invalid`] naming the field instead.
pub fn apply_patch<T: Serialize + DeserializeOwned>(
    obj: &T,
    patch: &ChildPatch,
    child: &str,
) -> Result<T, PatchError> {
    let invalid = |message: String| PatchError::Invalid {
        child: child.to_owned(),
        message,
    };
    let original = serde_json::to_value(obj).map_err(|e| invalid(e.to_string()))?;
    let patched = apply_patch_value(&original, patch, child)?;
    let typed: T = serde_json::from_value(patched.clone()).map_err(|e| invalid(e.to_string()))?;
    let back = serde_json::to_value(&typed).map_err(|e| invalid(e.to_string()))?;
    if let Some(path) = first_dropped(&patched, &back, "") {
        return Err(invalid(format!(
            "{path} is not a field of the {child} API, or has a value it cannot hold (misspelt?)"
        )));
    }
    Ok(typed)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    use super::*;
    use crate::children::test_support::{ctx, set};
    use crate::children::{desired_deployment, desired_service};
    use crate::provider::ConcreteProvider;

    fn deployment() -> Deployment {
        desired_deployment(&set("x", "ns"), &ctx(ConcreteProvider::Aws))
    }

    fn service() -> Service {
        desired_service(&set("x", "ns"), &ctx(ConcreteProvider::Aws))
    }

    fn json_patch(ops: Value) -> ChildPatch {
        ChildPatch {
            type_: PatchType::JsonPatch,
            patch: ops,
        }
    }

    fn merge_patch(body: Value) -> ChildPatch {
        ChildPatch {
            type_: PatchType::MergePatch,
            patch: body,
        }
    }

    /// What a successful patch must have done: the value at a JSON pointer of the result.
    type Check = (&'static str, Value);

    #[test]
    fn deployment_patches_that_apply() {
        let cases: Vec<(&str, ChildPatch, Vec<Check>)> = vec![
            (
                "add an env var via JSONPatch",
                json_patch(json!([
                    {"op": "add", "path": "/spec/template/spec/containers/0/env/-",
                     "value": {"name": "RUST_LOG", "value": "debug"}},
                ])),
                vec![
                    (
                        "/spec/template/spec/containers/0/env/2/name",
                        json!("RUST_LOG"),
                    ),
                    (
                        "/spec/template/spec/containers/0/env/2/value",
                        json!("debug"),
                    ),
                    // Untouched parts stay.
                    (
                        "/spec/template/spec/containers/0/env/0/name",
                        json!("POD_NAME"),
                    ),
                ],
            ),
            (
                "test then replace",
                json_patch(json!([
                    {"op": "test", "path": "/spec/replicas", "value": 2},
                    {"op": "replace", "path": "/spec/template/spec/terminationGracePeriodSeconds", "value": 300},
                ])),
                vec![(
                    "/spec/template/spec/terminationGracePeriodSeconds",
                    json!(300),
                )],
            ),
            (
                "merge-patch pod annotations and a priority class",
                merge_patch(json!({"spec": {"template": {
                    "metadata": {"annotations": {"prometheus.io/scrape": "true"}},
                    "spec": {"priorityClassName": "system-cluster-critical"},
                }}})),
                vec![
                    (
                        "/spec/template/metadata/annotations/prometheus.io~1scrape",
                        json!("true"),
                    ),
                    (
                        "/spec/template/spec/priorityClassName",
                        json!("system-cluster-critical"),
                    ),
                    ("/spec/template/spec/serviceAccountName", json!("x")),
                ],
            ),
            (
                "merge-patch null removes a field",
                merge_patch(
                    json!({"spec": {"template": {"spec": {"topologySpreadConstraints": null}}}}),
                ),
                vec![("/spec/template/spec/topologySpreadConstraints", Value::Null)],
            ),
            (
                "non-set labels may change",
                json_patch(json!([
                    {"op": "add", "path": "/metadata/labels/team", "value": "edge"},
                    {"op": "add", "path": "/spec/template/metadata/labels/team", "value": "edge"},
                ])),
                vec![
                    ("/metadata/labels/team", json!("edge")),
                    ("/metadata/labels/sluice.dev~1set", json!("x")),
                ],
            ),
            (
                "empty JSONPatch",
                json_patch(json!([])),
                vec![("/spec/replicas", json!(2))],
            ),
            (
                "empty MergePatch",
                merge_patch(json!({})),
                vec![("/spec/replicas", json!(2))],
            ),
        ];
        for (what, patch, checks) in cases {
            let out = apply_patch(&deployment(), &patch, "Deployment")
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let value = serde_json::to_value(&out).expect("json");
            for (pointer, want) in checks {
                assert_eq!(
                    value.pointer(pointer).cloned().unwrap_or(Value::Null),
                    want,
                    "{what}: {pointer}"
                );
            }
        }
    }

    #[test]
    fn service_merge_patch_annotations() {
        let key = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";
        let patch = merge_patch(json!({"metadata": {"annotations": {
            key: "instance",
            "external-dns.alpha.kubernetes.io/hostname": "a.example.com",
        }}}));
        let out = apply_patch(&service(), &patch, "Service").expect("applies");
        let annotations = out.metadata.annotations.expect("annotations");
        // A patch may override even the operator's own annotations: that is its purpose.
        assert_eq!(annotations[key], "instance");
        assert_eq!(
            annotations["external-dns.alpha.kubernetes.io/hostname"],
            "a.example.com"
        );
        assert_eq!(
            annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"],
            "internet-facing"
        );
    }

    #[test]
    fn failing_patches_report_what_and_where() {
        let op_error = |operation: usize, path: &str, message: &str| PatchError::Operation {
            child: "Deployment".into(),
            operation,
            path: path.into(),
            message: message.into(),
        };
        let cases: Vec<(&str, ChildPatch, PatchError)> = vec![
            (
                "bad path reports op index and path",
                json_patch(json!([
                    {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
                    {"op": "add", "path": "/spec/nope/0", "value": 1},
                ])),
                op_error(1, "/spec/nope/0", "path is invalid"),
            ),
            (
                "test op failing",
                json_patch(json!([{"op": "test", "path": "/spec/replicas", "value": 5}])),
                op_error(0, "/spec/replicas", "value did not match"),
            ),
            (
                "remove of a missing field",
                json_patch(json!([
                    {"op": "test", "path": "/spec/replicas", "value": 2},
                    {"op": "test", "path": "/kind", "value": "Deployment"},
                    {"op": "remove", "path": "/spec/template/spec/hostNetwork"},
                ])),
                op_error(2, "/spec/template/spec/hostNetwork", "path is invalid"),
            ),
            (
                "patch touching the selector refused",
                json_patch(json!([
                    {"op": "replace", "path": "/spec/selector/matchLabels/sluice.dev~1set", "value": "y"},
                ])),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/spec/selector".into(),
                },
            ),
            (
                "adding a selector key is a selector change too",
                merge_patch(json!({"spec": {"selector": {"matchLabels": {"extra": "x"}}}})),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/spec/selector".into(),
                },
            ),
            (
                "pod template set label",
                merge_patch(
                    json!({"spec": {"template": {"metadata": {"labels": {"sluice.dev/set-namespace": "other"}}}}}),
                ),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/spec/template/metadata/labels/sluice.dev~1set-namespace".into(),
                },
            ),
            (
                "object set label removed",
                json_patch(json!([{"op": "remove", "path": "/metadata/labels/sluice.dev~1set"}])),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/metadata/labels/sluice.dev~1set".into(),
                },
            ),
            (
                "managed-by label changed",
                merge_patch(
                    json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "helm"}}}),
                ),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/metadata/labels/app.kubernetes.io~1managed-by".into(),
                },
            ),
            (
                "all labels removed",
                merge_patch(json!({"metadata": {"labels": null}})),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/metadata/labels/sluice.dev~1set".into(),
                },
            ),
            (
                "rename",
                json_patch(json!([{"op": "replace", "path": "/metadata/name", "value": "y"}])),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/metadata/name".into(),
                },
            ),
            (
                "other namespace",
                merge_patch(json!({"metadata": {"namespace": "kube-system"}})),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/metadata/namespace".into(),
                },
            ),
            (
                "owner references",
                merge_patch(json!({"metadata": {"ownerReferences": []}})),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/metadata/ownerReferences".into(),
                },
            ),
            (
                "kind",
                json_patch(json!([{"op": "replace", "path": "/kind", "value": "DaemonSet"}])),
                PatchError::Protected {
                    child: "Deployment".into(),
                    path: "/kind".into(),
                },
            ),
            (
                "JSONPatch that is an object",
                json_patch(json!({"spec": {}})),
                PatchError::Shape {
                    child: "Deployment".into(),
                    message: "a JSONPatch must be a list of operations, got an object".into(),
                },
            ),
            (
                "MergePatch that is a list",
                merge_patch(json!([])),
                PatchError::Shape {
                    child: "Deployment".into(),
                    message: "a MergePatch must be an object, got a list".into(),
                },
            ),
        ];
        for (what, patch, want) in cases {
            let got = apply_patch(&deployment(), &patch, "Deployment").expect_err(what);
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn malformed_operation_is_reported_by_index() {
        let patch = json_patch(json!([
            {"op": "add", "path": "/metadata/annotations", "value": {}},
            {"op": "upsert", "path": "/spec/replicas", "value": 3},
        ]));
        let err = apply_patch(&deployment(), &patch, "Deployment").expect_err("unknown op");
        assert_eq!(err.operation(), Some(1));
        assert_eq!(err.path(), Some("/spec/replicas"));
        assert!(err.to_string().contains("not a valid operation"), "{err}");
    }

    #[test]
    fn invalid_results_are_refused() {
        let cases = [
            (
                "wrong type",
                merge_patch(json!({"spec": {"replicas": "three"}})),
                "invalid type",
            ),
            (
                "misspelt field",
                json_patch(json!([
                    {"op": "add", "path": "/spec/template/spec/containers/0/resorces", "value": {}},
                ])),
                "/spec/template/spec/containers/0/resorces is not a field",
            ),
        ];
        for (what, patch, message) in cases {
            let err = apply_patch(&deployment(), &patch, "Deployment").expect_err(what);
            assert!(matches!(err, PatchError::Invalid { .. }), "{what}: {err:?}");
            assert!(err.to_string().contains(message), "{what}: {err}");
        }
    }

    #[test]
    fn service_selector_is_protected() {
        let patch = merge_patch(json!({"spec": {"selector": {"app": "other"}}}));
        let err = apply_patch(&service(), &patch, "Service").expect_err("selector");
        assert_eq!(
            err,
            PatchError::Protected {
                child: "Service".into(),
                path: "/spec/selector".into()
            }
        );
        assert_eq!(err.child(), "Service");
        assert_eq!(err.path(), Some("/spec/selector"));
        assert_eq!(err.operation(), None);
    }

    #[test]
    fn error_messages_read_as_sentences() {
        let err = apply_patch(
            &deployment(),
            &json_patch(json!([{"op": "add", "path": "/spec/nope/0", "value": 1}])),
            "Deployment",
        )
        .expect_err("fails");
        assert_eq!(
            err.to_string(),
            "Deployment patch: operation 0 (path \"/spec/nope/0\") failed: path is invalid"
        );
    }

    #[test]
    fn value_form_keeps_unknown_fields() {
        let original = serde_json::to_value(deployment()).expect("json");
        let patch = merge_patch(json!({"spec": {"template": {"spec": {"futureField": true}}}}));
        let out = apply_patch_value(&original, &patch, "Deployment").expect("applies");
        assert_eq!(out["spec"]["template"]["spec"]["futureField"], true);
    }
}
