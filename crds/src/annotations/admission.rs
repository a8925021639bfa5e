//! The ValidatingAdmissionPolicy that refuses invalid annotation values at `kubectl apply`
//! time, generated from [`TABLE`] and committed as `config/default/annotation-policy.yaml`.
//!
//! CEL, no webhook: nothing of Sluice runs in the API server's request path, and no user text
//! reaches a program (ingress-nginx's admission webhook ran nginx on it).
//!
//! Design:
//!
//! - Two policies. [`POLICY_NAME`] checks `sluice.dev/` keys on every Ingress: no other
//!   controller reads them. [`NGINX_POLICY_NAME`] checks `nginx.ingress.kubernetes.io/` keys
//!   only on Ingresses of Sluice classes, because during a migration ingress-nginx may still
//!   serve others, and what it accepts is not ours to refuse.
//! - "A Sluice class" is decided with IngressClasses as parameters: the nginx policy's binding
//!   selects every IngressClass (`paramRef.selector: {}`), the policy is evaluated once per
//!   class, and each evaluation only checks when that class has Sluice's controller
//!   (`sluice.dev/ingress-controller`) and is the Ingress's class (the legacy
//!   `kubernetes.io/ingress.class` annotation first, as the data plane reads it). Nothing has
//!   to be kept in sync: operator-created and user-applied classes count alike. Without any
//!   IngressClass, `parameterNotFoundAction: Allow`. An Ingress without a class (served by a
//!   set with `watchIngressWithoutClass`) is not checked: the policy cannot see that setting.
//! - Each validation checks exactly the value's length, control characters and syntax
//!   ([`super::Grammar::cel_check`], the same patterns the parser uses) and answers with
//!   `messageExpression`, which builds the parser's own message ([`verdict`]). A key is checked
//!   only where the parser reads it: an nginx key shadowed by its `sluice.dev/` twin is not.
//! - Updates are ratcheted: a value that did not change is not checked again, so an Ingress
//!   written before the policy existed can still get a label, lose a finalizer or be deleted.
//! - `failurePolicy: Ignore`: a policy that cannot be evaluated (an older API server without
//!   a CEL function, a cost limit) must never block Ingress writes; the data plane validates
//!   every value anyway and reports it as an Event.
//!
//! Requires Kubernetes 1.31 or later (CEL optionals, `strings.quote`, `isCIDR`/`isIP`).

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MatchResources, NamedRuleWithOperations, ParamKind, ParamRef,
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, Validation, Variable,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::grammar::{CONTROL_PATTERN, Invalid, cel_raw, cel_string};
use super::{
    AnnotationProblem, AnnotationSpec, MAX_VALUE_BYTES, NGINX_PREFIX, SHOWN_VALUE_CHARS,
    SLUICE_PREFIX, TABLE,
};
use crate::CONTROLLER_NAME;

/// The policy (and binding) checking `sluice.dev/` keys.
pub const POLICY_NAME: &str = "sluice-ingress-annotations";
/// The policy (and binding) checking `nginx.ingress.kubernetes.io/` keys on Sluice's classes.
pub const NGINX_POLICY_NAME: &str = "sluice-ingress-annotations-nginx";
/// Where the generated policy is committed, relative to the workspace root.
pub const POLICY_PATH: &str = "config/default/annotation-policy.yaml";
/// The command that regenerates it.
pub const REGENERATE: &str = "cargo run -p sluice-crds --bin annotations-doc -- --admission-policy > config/default/annotation-policy.yaml";

/// The legacy class annotation, which decides the class when set (as in the data plane).
const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// What admission answers for `value` under the full annotation `key`: `None` when it lets the
/// value through, else the message it refuses it with, which is the message of the problem
/// [`super::parse_annotations`] reports for it. Keys that are not supported are never refused.
pub fn verdict(key: &str, value: &str) -> Option<String> {
    let bare = key
        .strip_prefix(SLUICE_PREFIX)
        .or_else(|| key.strip_prefix(NGINX_PREFIX))?;
    let spec = super::table::spec(bare)?;
    let why: Invalid = spec.grammar.precheck(value).err()?;
    Some(AnnotationProblem::invalid(key, value, spec, why).message())
}

/// The CEL check of one key whose value is the string expression `v`.
fn cel_valid(spec: &AnnotationSpec, v: &str) -> String {
    format!(
        "(bytes({v}).size() <= {MAX_VALUE_BYTES} && !{v}.matches({ctl}) &&\n ({check}))",
        ctl = cel_raw(CONTROL_PATTERN),
        check = spec.grammar.cel_check(v),
    )
}

/// The CEL twin of [`AnnotationProblem::message`] for a value that failed [`cel_valid`].
fn cel_message(key: &str, spec: &AnnotationSpec, v: &str) -> String {
    let expected = spec.grammar.expected();
    let text = |s: &str| cel_string(s);
    let mut hint = String::new();
    if let super::Grammar::Enum(e) = spec.grammar {
        for (bad, good) in e.hints {
            hint.push_str(&format!(
                " + ({v} == {} ? {} : '')",
                text(bad),
                text(&format!("; did you mean {}?", super::quote(good)))
            ));
        }
    }
    // Every branch ends in "expected <form>", so it is written once; a hint can only match a
    // value that reached the syntax branch (hints are short and printable).
    format!(
        "{prefix} + (bytes({v}).size() > {MAX_VALUE_BYTES}\n  ? {long}\n  : {v}.matches({ctl})\n  ? {control}\n  : ' ' + strings.quote({v}.size() > {SHOWN_VALUE_CHARS} ? {v}.substring(0, {SHOWN_VALUE_CHARS}) + '...' : {v}) + ': ')\n  + {expected}{hint}",
        prefix = text(&format!("{key}: invalid value")),
        long = text(&format!(": longer than {MAX_VALUE_BYTES} bytes; ")),
        ctl = cel_raw(CONTROL_PATTERN),
        control = text(": contains control or invisible formatting characters; "),
        expected = text(&format!("expected {expected}")),
    )
}

/// One validation per supported key under `prefix`.
fn validations(prefix: &str) -> Vec<Validation> {
    TABLE
        .iter()
        .map(|spec| {
            let key = format!("{prefix}{}", spec.key);
            let lit = cel_string(&key);
            let v = format!("variables.a[{lit}]");
            let mut guards = Vec::new();
            if prefix == NGINX_PREFIX {
                // Only on our classes, and only when the sluice.dev/ twin does not win.
                guards.push("!variables.ours".to_owned());
                guards.push(format!(
                    "{} in variables.a",
                    cel_string(&format!("{SLUICE_PREFIX}{}", spec.key))
                ));
            }
            guards.push(format!("!({lit} in variables.a)"));
            // Ratchet: an unchanged value is not checked again.
            guards.push(format!("variables.o[?{lit}] == variables.a[?{lit}]"));
            Validation {
                expression: format!("{} ||\n{}", guards.join(" || "), cel_valid(spec, &v)),
                message: Some(format!("{key}: invalid value")),
                message_expression: Some(cel_message(&key, spec, &v)),
                reason: Some("Invalid".into()),
            }
        })
        .collect()
}

fn policy(name: &str, prefix: &str) -> ValidatingAdmissionPolicy {
    let nginx = prefix == NGINX_PREFIX;
    let mut variables = vec![
        Variable {
            name: "a".into(),
            expression: "object.metadata.?annotations.orValue({})".into(),
        },
        Variable {
            name: "o".into(),
            expression: "oldObject == null ? {} : oldObject.metadata.?annotations.orValue({})"
                .into(),
        },
    ];
    if nginx {
        variables.push(Variable {
            name: "ours".into(),
            expression: format!(
                "params.?spec.?controller.orValue('') == {controller} &&\n\
                 (variables.a[?{legacy}].orValue('') != ''\n  \
                 ? variables.a[{legacy}] == params.metadata.name\n  \
                 : object.spec.?ingressClassName.orValue('') == params.metadata.name)",
                controller = cel_string(CONTROLLER_NAME),
                legacy = cel_string(LEGACY_CLASS_ANNOTATION),
            ),
        });
    }
    ValidatingAdmissionPolicy {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "sluice".to_owned())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Ignore".into()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![NamedRuleWithOperations {
                    api_groups: Some(vec!["networking.k8s.io".into()]),
                    api_versions: Some(vec!["v1".into()]),
                    operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                    resources: Some(vec!["ingresses".into()]),
                    ..NamedRuleWithOperations::default()
                }]),
                ..MatchResources::default()
            }),
            // Ingresses without any annotation under the prefix are not evaluated further.
            match_conditions: Some(vec![MatchCondition {
                name: "has-annotations-under-prefix".into(),
                expression: format!(
                    "object.metadata.?annotations.orValue({{}}).exists(k, k.startsWith({}))",
                    cel_string(prefix)
                ),
            }]),
            param_kind: nginx.then(|| ParamKind {
                api_version: Some("networking.k8s.io/v1".into()),
                kind: Some("IngressClass".into()),
            }),
            variables: Some(variables),
            validations: Some(validations(prefix)),
            ..ValidatingAdmissionPolicySpec::default()
        }),
        status: None,
    }
}

fn binding(name: &str, with_params: bool) -> ValidatingAdmissionPolicyBinding {
    ValidatingAdmissionPolicyBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "sluice".to_owned())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(ValidatingAdmissionPolicyBindingSpec {
            policy_name: Some(name.into()),
            validation_actions: Some(vec!["Deny".into()]),
            param_ref: with_params.then(|| ParamRef {
                selector: Some(LabelSelector::default()),
                parameter_not_found_action: Some("Allow".into()),
                ..ParamRef::default()
            }),
            ..ValidatingAdmissionPolicyBindingSpec::default()
        }),
    }
}

/// The two policies and their bindings, as committed under [`POLICY_PATH`].
pub fn policy_yaml() -> Result<String, serde_yaml::Error> {
    let docs = [
        serde_yaml::to_string(&policy(POLICY_NAME, SLUICE_PREFIX))?,
        serde_yaml::to_string(&binding(POLICY_NAME, false))?,
        serde_yaml::to_string(&policy(NGINX_POLICY_NAME, NGINX_PREFIX))?,
        serde_yaml::to_string(&binding(NGINX_POLICY_NAME, true))?,
    ];
    Ok(format!(
        "# Generated from crds/src/annotations/table.rs; do not edit.\n\
         # Regenerate: {REGENERATE}\n\
         #\n\
         # Refuses syntactically invalid values of Sluice's annotations at apply time, with the\n\
         # message the data plane's Event would carry. {POLICY_NAME} checks sluice.dev/ keys on\n\
         # every Ingress; {NGINX_POLICY_NAME} checks nginx.ingress.kubernetes.io/ keys on\n\
         # Ingresses whose IngressClass has controller {CONTROLLER_NAME} (the IngressClasses are\n\
         # its parameters). See crds/src/annotations/admission.rs and docs/annotations.md.\n\
         {}",
        docs.join("---\n")
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::annotations::parse_annotations;

    #[test]
    fn committed_policy_matches_the_table() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/default/annotation-policy.yaml"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = policy_yaml().expect("policy generates");
        assert!(
            committed == generated,
            "{POLICY_PATH} is missing or differs from what the annotation table generates.\n\
             Regenerate it from the workspace root with:\n    {REGENERATE}"
        );
    }

    #[test]
    fn the_policy_is_listed_in_the_default_kustomization() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/default/kustomization.yaml"
        );
        let kustomization = std::fs::read_to_string(path).expect("kustomization");
        assert!(kustomization.contains("- annotation-policy.yaml"));
    }

    /// Admission refuses a value exactly when the parser's checks up to the syntax fail, and with
    /// the parser's message.
    #[test]
    fn verdicts_are_the_parser_messages() {
        let values = [
            "",
            "true",
            "lots",
            "10xb",
            "5m",
            "8k",
            "0",
            "sticky",
            "cookie",
            "https://a.example/$foo",
            "a\nb",
            "x\u{200b}",
            "\"quoted\\\"",
            &"v".repeat(MAX_VALUE_BYTES + 1),
            &"é".repeat(150),
        ];
        for spec in TABLE {
            for prefix in [SLUICE_PREFIX, NGINX_PREFIX] {
                let key = format!("{prefix}{}", spec.key);
                for value in values {
                    let parsed = parse_annotations(&BTreeMap::from([(key.clone(), value.into())]));
                    let messages: Vec<String> =
                        parsed.problems.iter().map(|p| p.message()).collect();
                    match verdict(&key, value) {
                        Some(message) => assert!(
                            messages.contains(&message),
                            "{key}={value:?}: admission says {message:?}, the parser {messages:?}"
                        ),
                        None => assert!(spec.grammar.precheck(value).is_ok(), "{key}={value:?}"),
                    }
                }
            }
        }
        assert_eq!(
            verdict("nginx.ingress.kubernetes.io/proxy-body-size", "10xb").as_deref(),
            Some(
                "nginx.ingress.kubernetes.io/proxy-body-size: invalid value \"10xb\": expected \
                 a size: digits with an optional k, m or g suffix (8k, 1m; 0 means unlimited)"
            )
        );
        assert_eq!(
            verdict("sluice.dev/affinity", "sticky").as_deref(),
            Some(
                "sluice.dev/affinity: invalid value \"sticky\": expected cookie; did you mean \
                 \"cookie\"?"
            )
        );
        assert_eq!(verdict("sluice.dev/unknown-key", "x"), None);
        assert_eq!(verdict("example.com/limit-rps", "lots"), None);
    }

    #[test]
    fn every_key_is_checked_under_both_prefixes() {
        let yaml = policy_yaml().unwrap();
        for spec in TABLE {
            for prefix in [SLUICE_PREFIX, NGINX_PREFIX] {
                let key = format!("'{prefix}{}'", spec.key);
                assert!(yaml.contains(&key), "{key} is not checked");
            }
        }
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
            .collect();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding"
            ]
        );
        assert_eq!(
            docs[3]["spec"]["paramRef"]["parameterNotFoundAction"],
            "Allow"
        );
        assert_eq!(docs[2]["spec"]["paramKind"]["kind"], "IngressClass");
    }
}
