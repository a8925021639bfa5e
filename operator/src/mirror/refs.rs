//! Which Secrets and ConfigMaps a set's fleet needs: the pure part of mirroring.
//!
//! An Ingress belongs to a set's class exactly as the data plane decides it
//! (`dataplane/src/translate/class.rs`), so the operator never copies a Secret into a set's
//! namespace for an Ingress that fleet does not serve. Its Secret references are
//! `spec.tls[].secretName` and the annotations listed in [`SECRET_ANNOTATIONS`]; adding a key
//! there is all it takes to mirror one more kind of Secret. Its ConfigMap references are the
//! annotations listed in [`CONFIG_MAP_ANNOTATIONS`], under the same rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::networking::v1::Ingress;
use thiserror::Error;

/// The legacy class annotation, which (when non-empty) decides membership on its own.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Prefix of the annotations Sluice defines; wins over [`NGINX_PREFIX`] when both are set.
pub const SLUICE_PREFIX: &str = "sluice.dev/";
/// Prefix of the ingress-nginx annotations, read for migration with the same meaning.
pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// Annotation keys (without prefix) whose value names a Secret the data plane reads, as
/// `name` (in the Ingress's namespace) or `namespace/name`. One row per key.
pub const SECRET_ANNOTATIONS: &[&str] = &[
    // htpasswd file for basic/digest authentication (key `auth`).
    "auth-secret",
    // CA bundle (`ca.crt`, optional `ca.crl`) that client certificates must chain to.
    "auth-tls-secret",
    // Client certificate and CA the proxy uses towards HTTPS backends.
    "proxy-ssl-secret",
];

/// Annotation keys (without prefix) whose value names a ConfigMap the data plane reads, as
/// `name` or `namespace/name` (the Ingress's own namespace only, as for Secrets).
pub const CONFIG_MAP_ANNOTATIONS: &[&str] = &[
    // Response headers (header name -> value) set on every response of the Ingress.
    "custom-headers",
];

/// Reason of the Event for a reference that is not a valid Secret name.
pub const REASON_INVALID: &str = "InvalidSecretReference";
/// Reason of the Event for a reference into another namespace.
pub const REASON_CROSS_NAMESPACE: &str = "CrossNamespaceSecretRefused";
/// Reason of the Event for a reference that is not a valid ConfigMap name.
pub const REASON_INVALID_CONFIG_MAP: &str = "InvalidConfigMapReference";
/// Reason of the Event for a ConfigMap reference into another namespace.
pub const REASON_CROSS_NAMESPACE_CONFIG_MAP: &str = "CrossNamespaceConfigMapRefused";

/// The kinds of object mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Secret,
    ConfigMap,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
        })
    }
}

/// A namespaced object's identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object read from the API server (which always has both).
    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What decides which Ingresses a set serves, once it is known to run a fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassScope {
    pub class_name: String,
    /// The set asks for Ingresses without a class and holds that claim.
    pub watch_without_class: bool,
}

/// Whether the set scoped by `scope` serves `ingress`, as the data plane decides it: a
/// non-empty legacy `kubernetes.io/ingress.class` annotation decides alone; else
/// `spec.ingressClassName`; an Ingress naming neither belongs to the set that watches
/// Ingresses without a class. (The class itself being bound to the set is checked before a
/// scope is made at all.)
pub fn is_member(ingress: &Ingress, scope: &ClassScope) -> bool {
    let legacy = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
        .filter(|v| !v.is_empty());
    if let Some(legacy) = legacy {
        return *legacy == scope.class_name;
    }
    match ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        Some(name) => name == scope.class_name,
        None => scope.watch_without_class,
    }
}

/// One place an Ingress names a Secret, for Events (`field` is the path a user would edit).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub ingress: ObjectKey,
    pub field: String,
}

/// Something wrong with an Ingress's Secret reference, reported as a Warning Event on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub ingress: ObjectKey,
    pub reason: &'static str,
    pub message: String,
}

/// The Secrets and ConfigMaps one set's Ingresses reference.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct References {
    /// Origin Secret -> every place that names it (an origin appears once however often it is
    /// named).
    pub secrets: BTreeMap<ObjectKey, Vec<Reference>>,
    /// Origin ConfigMap -> every place that names it.
    pub config_maps: BTreeMap<ObjectKey, Vec<Reference>>,
    /// References that are not mirrored, and why.
    pub problems: Vec<Problem>,
    /// Every Ingress of the set's class (whether or not it names a Secret), so a later change
    /// to one of them wakes this set even if it moves to another class.
    pub ingresses: BTreeSet<ObjectKey>,
}

/// Why a reference is not mirrored.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RefError {
    #[error("{value:?} is not a {kind} name or namespace/name")]
    Invalid { kind: Kind, value: String },
    /// As ingress-nginx since 1.12 (`allow-cross-namespace-resources: false`): a reference into
    /// another namespace would let anyone who can write an Ingress have the fleet use (and
    /// serve) a Secret (or publish a ConfigMap) of a namespace they cannot read.
    #[error(
        "names {kind} {namespace}/{name} in another namespace; Sluice mirrors only {kind}s from the Ingress's own namespace {ingress_namespace}"
    )]
    CrossNamespace {
        kind: Kind,
        namespace: String,
        name: String,
        ingress_namespace: String,
    },
}

impl RefError {
    pub fn reason(&self) -> &'static str {
        match self {
            RefError::Invalid {
                kind: Kind::Secret, ..
            } => REASON_INVALID,
            RefError::CrossNamespace {
                kind: Kind::Secret, ..
            } => REASON_CROSS_NAMESPACE,
            RefError::Invalid {
                kind: Kind::ConfigMap,
                ..
            } => REASON_INVALID_CONFIG_MAP,
            RefError::CrossNamespace {
                kind: Kind::ConfigMap,
                ..
            } => REASON_CROSS_NAMESPACE_CONFIG_MAP,
        }
    }
}

/// An RFC 1123 subdomain: the rule for Secret names.
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// An RFC 1123 label: the rule for namespace names.
fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns1123_subdomain(s)
}

/// Parses a Secret reference written on an Ingress in `ingress_namespace`: `name`, or
/// `namespace/name` where the namespace must be the Ingress's own.
pub fn parse_secret_ref(value: &str, ingress_namespace: &str) -> Result<ObjectKey, RefError> {
    parse_ref(Kind::Secret, value, ingress_namespace)
}

/// Parses a reference to an object of `kind` (both are named by RFC 1123 subdomains) with the
/// rules of [`parse_secret_ref`].
pub fn parse_ref(kind: Kind, value: &str, ingress_namespace: &str) -> Result<ObjectKey, RefError> {
    let invalid = || RefError::Invalid {
        kind,
        value: value.to_owned(),
    };
    let trimmed = value.trim();
    let (namespace, name) = match trimmed.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => (ingress_namespace, trimmed),
    };
    if !is_dns1123_label(namespace) || !is_dns1123_subdomain(name) {
        return Err(invalid());
    }
    if namespace != ingress_namespace {
        return Err(RefError::CrossNamespace {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ingress_namespace: ingress_namespace.to_owned(),
        });
    }
    Ok(ObjectKey::new(namespace, name))
}

/// The value of annotation `key` (without prefix) and the full key it came from, the
/// `sluice.dev/` spelling winning over the ingress-nginx one.
fn annotation<'a>(ingress: &'a Ingress, key: &str) -> Option<(String, &'a str)> {
    let annotations = ingress.metadata.annotations.as_ref()?;
    [SLUICE_PREFIX, NGINX_PREFIX].iter().find_map(|prefix| {
        let full = format!("{prefix}{key}");
        annotations.get(&full).map(|v| (full, v.as_str()))
    })
}

/// Every Secret reference of one Ingress: `(field, raw value)` in a stable order. Empty values
/// mean "none" (an empty `secretName` is served with the default certificate).
fn raw_references(ingress: &Ingress) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(tls) = ingress.spec.as_ref().and_then(|s| s.tls.as_ref()) {
        for (i, entry) in tls.iter().enumerate() {
            if let Some(name) = entry
                .secret_name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
            {
                out.push((format!("spec.tls[{i}].secretName"), name));
            }
        }
    }
    out.extend(annotation_references(ingress, SECRET_ANNOTATIONS));
    out
}

/// The non-empty values of `keys` on one Ingress, as `(field, raw value)`.
fn annotation_references<'a>(ingress: &'a Ingress, keys: &[&str]) -> Vec<(String, &'a str)> {
    keys.iter()
        .filter_map(|key| annotation(ingress, key).filter(|(_, v)| !v.trim().is_empty()))
        .map(|(full, value)| (format!("metadata.annotations[{full}]"), value))
        .collect()
}

/// The Secrets referenced by the Ingresses of `scope`'s class, and the references refused.
pub fn references<'a>(
    scope: &ClassScope,
    ingresses: impl IntoIterator<Item = &'a Ingress>,
) -> References {
    let mut refs = References::default();
    for ingress in ingresses {
        if !is_member(ingress, scope) {
            continue;
        }
        let key = ObjectKey::of(&ingress.metadata);
        refs.ingresses.insert(key.clone());
        for (field, value) in raw_references(ingress) {
            // spec.tls[].secretName is a plain name: a "/" in it is invalid, not a namespace.
            let parsed = if field.starts_with("spec.tls") && value.contains('/') {
                Err(RefError::Invalid {
                    kind: Kind::Secret,
                    value: value.to_owned(),
                })
            } else {
                parse_secret_ref(value, &key.namespace)
            };
            match parsed {
                Ok(secret) => refs.secrets.entry(secret).or_default().push(Reference {
                    ingress: key.clone(),
                    field,
                }),
                Err(e) => refs.problems.push(Problem {
                    ingress: key.clone(),
                    reason: e.reason(),
                    message: format!("{field}: {e}"),
                }),
            }
        }
        for (field, value) in annotation_references(ingress, CONFIG_MAP_ANNOTATIONS) {
            match parse_ref(Kind::ConfigMap, value, &key.namespace) {
                Ok(config_map) => refs
                    .config_maps
                    .entry(config_map)
                    .or_default()
                    .push(Reference {
                        ingress: key.clone(),
                        field,
                    }),
                Err(e) => refs.problems.push(Problem {
                    ingress: key.clone(),
                    reason: e.reason(),
                    message: format!("{field}: {e}"),
                }),
            }
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{IngressSpec, IngressTLS};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ingress(
        ns: &str,
        name: &str,
        class: Option<&str>,
        annotations: &[(&str, &str)],
        tls: &[&str],
    ) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                annotations: (!annotations.is_empty()).then(|| {
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect()
                }),
                ..ObjectMeta::default()
            },
            spec: Some(IngressSpec {
                ingress_class_name: class.map(Into::into),
                tls: (!tls.is_empty()).then(|| {
                    tls.iter()
                        .map(|s| IngressTLS {
                            secret_name: Some((*s).into()),
                            hosts: Some(vec!["example.test".into()]),
                        })
                        .collect()
                }),
                ..IngressSpec::default()
            }),
            status: None,
        }
    }

    /// (what, ingresses, scope, referenced secrets, problem reasons)
    type RefCase<'a> = (
        &'a str,
        Vec<Ingress>,
        ClassScope,
        Vec<&'a str>,
        Vec<&'a str>,
    );

    fn scope(class: &str, without: bool) -> ClassScope {
        ClassScope {
            class_name: class.into(),
            watch_without_class: without,
        }
    }

    fn keys(refs: &References) -> Vec<String> {
        refs.secrets.keys().map(ToString::to_string).collect()
    }

    #[test]
    fn membership() {
        let legacy = LEGACY_CLASS_ANNOTATION;
        // (what, ingress, scope, member)
        let cases = [
            (
                "spec class",
                ingress("a", "i", Some("public"), &[], &[]),
                scope("public", false),
                true,
            ),
            (
                "other spec class",
                ingress("a", "i", Some("private"), &[], &[]),
                scope("public", true),
                false,
            ),
            (
                "legacy annotation",
                ingress("a", "i", None, &[(legacy, "public")], &[]),
                scope("public", false),
                true,
            ),
            (
                "legacy annotation decides over spec",
                ingress("a", "i", Some("public"), &[(legacy, "private")], &[]),
                scope("public", false),
                false,
            ),
            (
                "empty legacy annotation falls through to spec",
                ingress("a", "i", Some("public"), &[(legacy, "")], &[]),
                scope("public", false),
                true,
            ),
            (
                "no class, set watches classless",
                ingress("a", "i", None, &[], &[]),
                scope("public", true),
                true,
            ),
            (
                "no class, set does not watch classless",
                ingress("a", "i", None, &[], &[]),
                scope("public", false),
                false,
            ),
            (
                "empty spec class counts as none",
                ingress("a", "i", Some(""), &[], &[]),
                scope("public", true),
                true,
            ),
        ];
        for (what, ing, sc, want) in cases {
            assert_eq!(is_member(&ing, &sc), want, "{what}");
        }
    }

    #[test]
    fn parse_refs() {
        let cross = |ns: &str, name: &str| {
            Err(RefError::CrossNamespace {
                kind: Kind::Secret,
                namespace: ns.into(),
                name: name.into(),
                ingress_namespace: "shop".into(),
            })
        };
        let invalid = |v: &str| {
            Err(RefError::Invalid {
                kind: Kind::Secret,
                value: v.into(),
            })
        };
        let cases: Vec<(&str, Result<ObjectKey, RefError>)> = vec![
            ("tls", Ok(ObjectKey::new("shop", "tls"))),
            (" tls ", Ok(ObjectKey::new("shop", "tls"))),
            ("shop/tls", Ok(ObjectKey::new("shop", "tls"))),
            ("a.b-c", Ok(ObjectKey::new("shop", "a.b-c"))),
            ("kube-system/tls", cross("kube-system", "tls")),
            ("Bad", invalid("Bad")),
            ("/tls", invalid("/tls")),
            ("shop/", invalid("shop/")),
            ("a/b/c", invalid("a/b/c")),
            ("ns.dotted/tls", invalid("ns.dotted/tls")),
            ("-x", invalid("-x")),
        ];
        for (value, want) in cases {
            assert_eq!(parse_secret_ref(value, "shop"), want, "{value:?}");
        }
    }

    #[test]
    fn references_table() {
        let legacy = LEGACY_CLASS_ANNOTATION;
        // (what, ingresses, scope, referenced secrets, problem reasons)
        let cases: Vec<RefCase> = vec![
            (
                "tls of our class",
                vec![ingress("shop", "web", Some("public"), &[], &["web-tls"])],
                scope("public", false),
                vec!["shop/web-tls"],
                vec![],
            ),
            (
                "another class is never ours",
                vec![
                    ingress("shop", "web", Some("private"), &[], &["private-tls"]),
                    ingress("shop", "old", None, &[(legacy, "private")], &["legacy-tls"]),
                ],
                scope("public", true),
                vec![],
                vec![],
            ),
            (
                "legacy annotation of our class",
                vec![ingress(
                    "shop",
                    "old",
                    None,
                    &[(legacy, "public")],
                    &["legacy-tls"],
                )],
                scope("public", false),
                vec!["shop/legacy-tls"],
                vec![],
            ),
            (
                "no class only with the claim",
                vec![ingress("shop", "bare", None, &[], &["bare-tls"])],
                scope("public", true),
                vec!["shop/bare-tls"],
                vec![],
            ),
            (
                "no class without the claim",
                vec![ingress("shop", "bare", None, &[], &["bare-tls"])],
                scope("public", false),
                vec![],
                vec![],
            ),
            (
                "annotation refs, both prefixes, with and without namespace",
                vec![ingress(
                    "shop",
                    "web",
                    Some("public"),
                    &[
                        ("nginx.ingress.kubernetes.io/auth-secret", "htpasswd"),
                        (
                            "nginx.ingress.kubernetes.io/auth-tls-secret",
                            "shop/client-ca",
                        ),
                        ("sluice.dev/proxy-ssl-secret", "backend-tls"),
                    ],
                    &[],
                )],
                scope("public", false),
                vec!["shop/backend-tls", "shop/client-ca", "shop/htpasswd"],
                vec![],
            ),
            (
                "sluice.dev wins over nginx",
                vec![ingress(
                    "shop",
                    "web",
                    Some("public"),
                    &[
                        ("nginx.ingress.kubernetes.io/auth-secret", "old"),
                        ("sluice.dev/auth-secret", "new"),
                    ],
                    &[],
                )],
                scope("public", false),
                vec!["shop/new"],
                vec![],
            ),
            (
                "cross-namespace and invalid refs are refused",
                vec![ingress(
                    "shop",
                    "web",
                    Some("public"),
                    &[
                        (
                            "nginx.ingress.kubernetes.io/auth-secret",
                            "kube-system/admin",
                        ),
                        ("nginx.ingress.kubernetes.io/auth-tls-secret", "Not_A_Name"),
                    ],
                    &["shop/tls"],
                )],
                scope("public", false),
                vec![],
                vec![REASON_INVALID, REASON_CROSS_NAMESPACE, REASON_INVALID],
            ),
            (
                "duplicates collapse to one origin",
                vec![
                    ingress("shop", "a", Some("public"), &[], &["shared", "shared"]),
                    ingress(
                        "shop",
                        "b",
                        Some("public"),
                        &[("sluice.dev/proxy-ssl-secret", "shop/shared")],
                        &["shared"],
                    ),
                    ingress("other", "c", Some("public"), &[], &["shared"]),
                ],
                scope("public", false),
                vec!["other/shared", "shop/shared"],
                vec![],
            ),
            (
                "empty secretName and empty annotation are no reference",
                vec![ingress(
                    "shop",
                    "web",
                    Some("public"),
                    &[("sluice.dev/auth-secret", " ")],
                    &[""],
                )],
                scope("public", false),
                vec![],
                vec![],
            ),
        ];
        for (what, ings, sc, want_secrets, want_problems) in cases {
            let refs = references(&sc, &ings);
            assert_eq!(keys(&refs), want_secrets, "{what}");
            let reasons: Vec<&str> = refs.problems.iter().map(|p| p.reason).collect();
            assert_eq!(reasons, want_problems, "{what}: {:?}", refs.problems);
        }
    }

    #[test]
    fn references_name_their_fields() {
        let ings = [
            ingress("shop", "a", Some("public"), &[], &["x", "shared"]),
            ingress(
                "shop",
                "b",
                Some("public"),
                &[("nginx.ingress.kubernetes.io/auth-secret", "shared")],
                &[],
            ),
            ingress("shop", "c", Some("private"), &[], &["shared"]),
        ];
        let refs = references(&scope("public", false), &ings);
        let shared = &refs.secrets[&ObjectKey::new("shop", "shared")];
        let fields: Vec<String> = shared
            .iter()
            .map(|r| format!("{} {}", r.ingress, r.field))
            .collect();
        assert_eq!(
            fields,
            [
                "shop/a spec.tls[1].secretName",
                "shop/b metadata.annotations[nginx.ingress.kubernetes.io/auth-secret]"
            ]
        );
        let members: Vec<String> = refs.ingresses.iter().map(ToString::to_string).collect();
        assert_eq!(members, ["shop/a", "shop/b"]);
    }

    #[test]
    fn problem_messages_name_the_field() {
        let ings = [ingress(
            "shop",
            "web",
            Some("public"),
            &[("sluice.dev/auth-secret", "kube-system/admin")],
            &[],
        )];
        let refs = references(&scope("public", false), &ings);
        assert_eq!(refs.problems.len(), 1);
        let msg = &refs.problems[0].message;
        assert!(
            msg.starts_with(
                "metadata.annotations[sluice.dev/auth-secret]: names Secret kube-system/admin"
            ),
            "{msg}"
        );
    }

    #[test]
    fn config_map_references() {
        let ings = [
            ingress(
                "shop",
                "a",
                Some("public"),
                &[("nginx.ingress.kubernetes.io/custom-headers", "headers")],
                &["headers"],
            ),
            ingress(
                "shop",
                "b",
                Some("public"),
                &[("sluice.dev/custom-headers", "shop/headers")],
                &[],
            ),
            ingress(
                "shop",
                "c",
                Some("public"),
                &[("sluice.dev/custom-headers", "kube-system/coredns")],
                &[],
            ),
            ingress(
                "shop",
                "d",
                Some("public"),
                &[("nginx.ingress.kubernetes.io/custom-headers", "Bad_Name")],
                &[],
            ),
            ingress(
                "shop",
                "e",
                Some("private"),
                &[("nginx.ingress.kubernetes.io/custom-headers", "private")],
                &[],
            ),
        ];
        let refs = references(&scope("public", false), &ings);
        // A Secret and a ConfigMap of one name are two origins of two kinds.
        assert_eq!(keys(&refs), ["shop/headers"]);
        let config_maps: Vec<String> = refs.config_maps.keys().map(ToString::to_string).collect();
        assert_eq!(config_maps, ["shop/headers"]);
        let fields: Vec<String> = refs.config_maps[&ObjectKey::new("shop", "headers")]
            .iter()
            .map(|r| format!("{} {}", r.ingress, r.field))
            .collect();
        assert_eq!(
            fields,
            [
                "shop/a metadata.annotations[nginx.ingress.kubernetes.io/custom-headers]",
                "shop/b metadata.annotations[sluice.dev/custom-headers]",
            ]
        );
        let problems: Vec<String> = refs
            .problems
            .iter()
            .map(|p| format!("{} {} {}", p.ingress, p.reason, p.message))
            .collect();
        assert_eq!(
            problems,
            [
                "shop/c CrossNamespaceConfigMapRefused metadata.annotations[sluice.dev/custom-headers]: names ConfigMap kube-system/coredns in another namespace; Sluice mirrors only ConfigMaps from the Ingress's own namespace shop",
                "shop/d InvalidConfigMapReference metadata.annotations[nginx.ingress.kubernetes.io/custom-headers]: \"Bad_Name\" is not a ConfigMap name or namespace/name",
            ]
        );
    }
}
