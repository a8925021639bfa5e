//! Server-side apply of children under one field manager, skipped when the live object
//! already carries everything we would write (an idle operator writes nothing).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_crds::IngressControllerSet;

use crate::children::labels::{FIELD_MANAGER, is_ours};
use crate::error::{Error, Result};

/// Annotation holding a hash of what we last applied: a key we stop setting changes the
/// hash, so the next apply removes it even though the live object still "contains" ours.
pub const DESIRED_HASH: &str = "sluice.dev/desired-hash";

/// What `ensure` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated,
}

/// The live object exists but does not carry this set's labels: never touched.
#[derive(Clone, Debug, PartialEq)]
pub struct Foreign {
    pub kind: &'static str,
    pub name: String,
}

/// True when every field of `desired` is present in `actual` with the same value. Objects
/// may have extra keys in `actual` (server defaults, other managers); lists must have the
/// same length, compared element-wise.
pub fn is_subset(desired: &Value, actual: &Value) -> bool {
    match (desired, actual) {
        (Value::Object(d), Value::Object(a)) => d
            .iter()
            .all(|(k, dv)| a.get(k).is_some_and(|av| is_subset(dv, av))),
        (Value::Array(d), Value::Array(a)) => {
            d.len() == a.len() && d.iter().zip(a).all(|(dv, av)| is_subset(dv, av))
        }
        (Value::Number(d), Value::Number(a)) => d.as_f64() == a.as_f64(),
        _ => desired == actual,
    }
}

/// FNV-1a over the canonical JSON (serde_json maps are sorted), stable across runs.
pub fn hash_of(value: &Value) -> String {
    let text = value.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Adds the desired-hash annotation to `obj` (as JSON) and returns it.
fn with_hash(mut desired: Value) -> Value {
    let hash = hash_of(&desired);
    if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(DESIRED_HASH.into(), Value::String(hash));
        }
    }
    desired
}

/// Whether [`ensure_with`] records the [`DESIRED_HASH`] annotation on the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesiredHash {
    Annotate,
    /// For Secret mirrors: a fast hash of Secret data must not sit in metadata (metadata
    /// travels where data does not: metadata watches, audit logs at Metadata level, UIs, and a
    /// low-entropy htpasswd file could be brute-forced from it). A mirror needs no hash: its
    /// origin-resource-version annotation changes with every change of the origin, so a key
    /// the origin dropped still makes the desired object differ and is removed by the apply.
    Omit,
}

/// Applies `desired` unless the live object already matches. Refuses (returns `Foreign`)
/// when the live object lacks the set's labels.
pub async fn ensure<K>(
    api: &Api<K>,
    set: &IngressControllerSet,
    kind: &'static str,
    desired: &K,
) -> Result<std::result::Result<(Outcome, K), Foreign>>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    ensure_with(api, set, kind, desired, DesiredHash::Annotate).await
}

/// [`ensure`], choosing whether the desired-hash annotation is written.
pub async fn ensure_with<K>(
    api: &Api<K>,
    set: &IngressControllerSet,
    kind: &'static str,
    desired: &K,
    hash: DesiredHash,
) -> Result<std::result::Result<(Outcome, K), Foreign>>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let name = desired.name_any();
    let live = api.get_opt(&name).await?;
    let desired_json = serde_json::to_value(desired).map_err(|e| Error::Serde(kind, e))?;
    let desired_json = match hash {
        DesiredHash::Annotate => with_hash(desired_json),
        DesiredHash::Omit => desired_json,
    };
    if let Some(live) = &live {
        if !is_ours(live.meta(), set) {
            return Ok(Err(Foreign { kind, name }));
        }
        let live_json = serde_json::to_value(live).map_err(|e| Error::Serde(kind, e))?;
        if is_subset(&desired_json, &live_json) {
            return Ok(Ok((Outcome::Unchanged, live.clone())));
        }
    }
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired_json),
        )
        .await?;
    let outcome = if live.is_some() {
        Outcome::Updated
    } else {
        Outcome::Created
    };
    Ok(Ok((outcome, applied)))
}

/// A namespaced Api for `K` in the set's namespace.
pub fn namespaced<K>(client: &kube::Client, set: &IngressControllerSet) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(client.clone(), &set.namespace().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_table() {
        let cases = [
            ("equal", json!({"a": 1}), json!({"a": 1}), true),
            (
                "extra key in live",
                json!({"a": 1}),
                json!({"a": 1, "b": 2}),
                true,
            ),
            (
                "missing key",
                json!({"a": 1, "c": 3}),
                json!({"a": 1}),
                false,
            ),
            ("changed value", json!({"a": 1}), json!({"a": 2}), false),
            (
                "nested default",
                json!({"s": {"p": [{"n": "http"}]}}),
                json!({"s": {"p": [{"n": "http", "protocol": "TCP"}]}}),
                true,
            ),
            (
                "list length",
                json!({"l": [1, 2]}),
                json!({"l": [1]}),
                false,
            ),
            (
                "list order",
                json!({"l": ["a", "b"]}),
                json!({"l": ["b", "a"]}),
                false,
            ),
            ("int vs float", json!({"n": 1}), json!({"n": 1.0}), true),
            (
                "string vs number",
                json!({"n": "1"}),
                json!({"n": 1}),
                false,
            ),
            (
                "null desired vs missing",
                json!({"a": null}),
                json!({}),
                false,
            ),
        ];
        for (what, d, a, want) in cases {
            assert_eq!(is_subset(&d, &a), want, "{what}");
        }
    }

    #[test]
    fn hash_changes_when_a_key_is_dropped() {
        let a = json!({"metadata": {"annotations": {"x": "1", "y": "2"}}});
        let b = json!({"metadata": {"annotations": {"x": "1"}}});
        assert_ne!(hash_of(&a), hash_of(&b));
        assert_eq!(hash_of(&a), hash_of(&a.clone()));
        let h = with_hash(b);
        assert_eq!(h["metadata"]["annotations"]["x"], "1");
        assert_eq!(
            h["metadata"]["annotations"][DESIRED_HASH]
                .as_str()
                .map(str::len),
            Some(16)
        );
    }
}
