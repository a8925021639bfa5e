//! The IngressControllerSet CustomResourceDefinition as committed to
//! `config/crd/sluice.dev_ingresscontrollersets.yaml`.
//!
//! The schema is the derive's output with two clean-ups applied by [`crd`]:
//!
//! - kube marks every `Option` field `nullable: true`. Sluice never writes `null` (every optional
//!   field is skipped when unset), and a nullable field lets a client store an explicit `null`
//!   that every reader then has to handle, so `nullable` is removed.
//! - schemars keeps the line breaks of wrapped doc comments; single line breaks are joined so
//!   `kubectl explain` reflows the text (blank-line paragraph breaks stay).
//!
//! Use [`crd`] (or [`crd_yaml`]) wherever the definition is installed or compared, not the
//! derive's `IngressControllerSet::crd()`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

use crate::IngressControllerSet;

/// Where the committed CRD lives, relative to the workspace root.
pub const CRD_PATH: &str = "config/crd/sluice.dev_ingresscontrollersets.yaml";

/// The command that regenerates the committed CRD.
pub const REGENERATE: &str =
    "cargo run -p sluice-crds --bin crdgen > config/crd/sluice.dev_ingresscontrollersets.yaml";

/// Errors while turning the Rust types into the CRD.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The derived definition could not be converted to or from JSON.
    #[error("converting the derived CRD through JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The definition could not be written as YAML.
    #[error("writing the CRD as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// The IngressControllerSet CRD with the clean-ups described in the module docs.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut value = serde_json::to_value(IngressControllerSet::crd())?;
    clean_schema(&mut value);
    Ok(serde_json::from_value(value)?)
}

/// The CRD as the YAML document committed under `config/crd/`, with a header saying how to
/// regenerate it.
pub fn crd_yaml() -> Result<String, CrdError> {
    // Serialising the typed struct (not a JSON map) keeps the key order independent of
    // serde_json's `preserve_order` feature, which another workspace member may switch on.
    let mut yaml = serde_yaml::to_value(crd()?)?;
    integral_bounds(&mut yaml);
    let body = serde_yaml::to_string(&yaml)?;
    Ok(format!(
        "# Generated from crds/src/ingress_controller_set.rs; do not edit.\n# Regenerate: {REGENERATE}\n{body}"
    ))
}

/// Removes every `nullable` keyword and joins wrapped lines in every `description`. Only schema
/// keywords pass through here, never user data.
fn clean_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("nullable");
            if let Some(Value::String(text)) = map.get_mut("description") {
                *text = join_wrapped_lines(text);
            }
            map.values_mut().for_each(clean_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(clean_schema),
        _ => {}
    }
}

/// Joins lines broken by doc-comment wrapping; a blank line (paragraph break) is kept.
fn join_wrapped_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim_end)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `JSONSchemaProps` stores `minimum`/`maximum` as floats, which YAML would print as `65535.0`;
/// whole numbers are written as integers instead, as every hand-written CRD has them.
fn integral_bounds(value: &mut serde_yaml::Value) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (key, entry) in map.iter_mut() {
                let is_bound = matches!(key.as_str(), Some("minimum" | "maximum"));
                match entry.as_f64() {
                    Some(f) if is_bound && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        // Exact: |f| < 2^53, so the float holds this integer exactly.
                        *entry = serde_yaml::Value::from(f as i64);
                    }
                    _ => integral_bounds(entry),
                }
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(integral_bounds),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crd_matches_the_rust_types() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/crd/sluice.dev_ingresscontrollersets.yaml"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = crd_yaml().expect("CRD generates");
        assert!(
            committed == generated,
            "{CRD_PATH} is missing or differs from what the Rust types generate.\n\
             Regenerate it from the workspace root with:\n    {REGENERATE}"
        );
    }

    #[test]
    fn clean_schema_removes_every_nullable_marker() {
        let mut value = serde_json::json!({
            "nullable": true,
            "properties": {"a": {"type": "string", "nullable": true}},
            "items": [{"nullable": true}],
        });
        clean_schema(&mut value);
        assert!(!value.to_string().contains("nullable"));
    }

    #[test]
    fn wrapped_lines_are_joined_and_paragraphs_kept() {
        let cases = [
            ("one line", "one line"),
            ("wrapped\nline", "wrapped line"),
            ("first\nparagraph\n\nsecond", "first paragraph\n\nsecond"),
            ("trailing space \nremoved", "trailing space removed"),
        ];
        for (input, want) in cases {
            assert_eq!(join_wrapped_lines(input), want, "input {input:?}");
        }
    }
}
