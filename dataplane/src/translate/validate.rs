//! Validation of the parts of an Ingress that translation reads: hosts, paths, annotations.
//!
//! The API server already rejects most of this, but the data plane must not trust that (a
//! different API server version, a CRD-backed fake in tests, or a validation gap must not crash
//! or confuse a fleet), and the checks are cheap.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::PathKind;

/// What is wrong with one field; its `Display` is the reason an Event shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("host {0:?} is not a valid DNS name (lowercase letters, digits, '-' and '.')")]
    Host(String),
    #[error("host {0:?} is an IP address; Ingress hosts must be DNS names")]
    IpHost(String),
    #[error("wildcard host {0:?} must be \"*.\" followed by a DNS name (one leading label only)")]
    Wildcard(String),
    #[error("pathType {0:?} is not supported (Exact, Prefix or ImplementationSpecific)")]
    PathType(String),
    #[error("path {path:?} must start with '/' (pathType {kind})")]
    RelativePath { path: String, kind: PathKind },
    #[error("path {path:?} must not contain {sequence:?} (pathType {kind})")]
    PathSequence {
        path: String,
        sequence: &'static str,
        kind: PathKind,
    },
    #[error("path {path:?} must not end with {suffix:?} (pathType {kind})")]
    PathSuffix {
        path: String,
        suffix: &'static str,
        kind: PathKind,
    },
}

/// Where an Ingress rule's paths go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum RuleHost {
    /// No host: the catch-all.
    CatchAll,
    /// An exact host, lowercase.
    Exact(String),
    /// `*.parent`: holds `parent`.
    Wildcard(String),
}

/// Parses and validates `spec.rules[].host`.
pub(crate) fn rule_host(host: Option<&str>) -> Result<RuleHost, Invalid> {
    let host = host.unwrap_or_default();
    if host.is_empty() {
        return Ok(RuleHost::CatchAll);
    }
    let lower = host.to_ascii_lowercase();
    if let Some(parent) = lower.strip_prefix("*.") {
        return if is_dns_subdomain(parent) {
            Ok(RuleHost::Wildcard(parent.to_owned()))
        } else {
            Err(Invalid::Wildcard(host.to_owned()))
        };
    }
    if lower.contains('*') {
        return Err(Invalid::Wildcard(host.to_owned()));
    }
    if lower.parse::<IpAddr>().is_ok() {
        return Err(Invalid::IpHost(host.to_owned()));
    }
    if !is_dns_subdomain(&lower) {
        return Err(Invalid::Host(host.to_owned()));
    }
    Ok(RuleHost::Exact(lower))
}

/// RFC 1123 subdomain, as Kubernetes validates it: at most 253 characters, dot-separated labels
/// of 1 to 63 lowercase alphanumerics or '-', not starting or ending with '-'.
fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Parses `pathType`.
pub(crate) fn path_kind(path_type: &str) -> Result<PathKind, Invalid> {
    match path_type {
        "Exact" => Ok(PathKind::Exact),
        "Prefix" => Ok(PathKind::Prefix),
        "ImplementationSpecific" => Ok(PathKind::ImplementationSpecific),
        other => Err(Invalid::PathType(other.to_owned())),
    }
}

/// The Kubernetes API's rules for Exact and Prefix paths (`validateIngressHTTPIngressPath`).
const INVALID_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_SUFFIXES: [&str; 2] = ["/..", "/."];

/// Validates a path for its type and returns the path routes use: an empty
/// ImplementationSpecific path means `/`, as in ingress-nginx.
pub(crate) fn rule_path(path: Option<&str>, kind: PathKind) -> Result<String, Invalid> {
    let path = path.unwrap_or_default();
    if kind == PathKind::ImplementationSpecific {
        if path.is_empty() {
            return Ok("/".to_owned());
        }
        if !path.starts_with('/') {
            return Err(Invalid::RelativePath {
                path: path.to_owned(),
                kind,
            });
        }
        return Ok(path.to_owned());
    }
    if !path.starts_with('/') {
        return Err(Invalid::RelativePath {
            path: path.to_owned(),
            kind,
        });
    }
    if let Some(sequence) = INVALID_SEQUENCES.into_iter().find(|s| path.contains(s)) {
        return Err(Invalid::PathSequence {
            path: path.to_owned(),
            sequence,
            kind,
        });
    }
    if let Some(suffix) = INVALID_SUFFIXES.into_iter().find(|s| path.ends_with(s)) {
        return Err(Invalid::PathSuffix {
            path: path.to_owned(),
            suffix,
            kind,
        });
    }
    Ok(path.to_owned())
}

/// Prefix of the annotations Sluice defines.
pub const SLUICE_PREFIX: &str = "sluice.dev/";
/// Prefix of the ingress-nginx annotations read for migration.
pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";
/// The legacy class annotation, read for class membership.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// An annotation read under both prefixes, `sluice.dev/` winning when both are set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnnotationKey {
    pub sluice: &'static str,
    pub nginx: &'static str,
}

impl AnnotationKey {
    /// The value and the full key it was read from (for the problem's field path).
    pub(crate) fn get<'a>(
        &self,
        annotations: Option<&'a BTreeMap<String, String>>,
    ) -> Option<(&'static str, &'a str)> {
        let annotations = annotations?;
        [self.sluice, self.nginx]
            .into_iter()
            .find_map(|key| annotations.get(key).map(|value| (key, value.as_str())))
    }
}

/// The field path of an annotation, as Events name it.
pub(crate) fn annotation_field(key: &str) -> String {
    format!("metadata.annotations['{key}']")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_host_table() {
        let ok = |h: &str| RuleHost::Exact(h.to_owned());
        let wild = |h: &str| RuleHost::Wildcard(h.to_owned());
        let cases: Vec<(Option<&str>, Result<RuleHost, Invalid>)> = vec![
            (None, Ok(RuleHost::CatchAll)),
            (Some(""), Ok(RuleHost::CatchAll)),
            (Some("foo.com"), Ok(ok("foo.com"))),
            (Some("Foo.COM"), Ok(ok("foo.com"))),
            (Some("a-b.c1.example"), Ok(ok("a-b.c1.example"))),
            (Some("localhost"), Ok(ok("localhost"))),
            (Some("*.foo.com"), Ok(wild("foo.com"))),
            (Some("*.com"), Ok(wild("com"))),
            (Some("*"), Err(Invalid::Wildcard("*".into()))),
            (
                Some("*.*.foo.com"),
                Err(Invalid::Wildcard("*.*.foo.com".into())),
            ),
            (
                Some("foo.*.com"),
                Err(Invalid::Wildcard("foo.*.com".into())),
            ),
            (Some("*foo.com"), Err(Invalid::Wildcard("*foo.com".into()))),
            (Some("*."), Err(Invalid::Wildcard("*.".into()))),
            (Some("10.0.0.1"), Err(Invalid::IpHost("10.0.0.1".into()))),
            (Some("::1"), Err(Invalid::IpHost("::1".into()))),
            (
                Some("foo_bar.com"),
                Err(Invalid::Host("foo_bar.com".into())),
            ),
            (Some("-foo.com"), Err(Invalid::Host("-foo.com".into()))),
            (Some("foo..com"), Err(Invalid::Host("foo..com".into()))),
            (Some("foo.com."), Err(Invalid::Host("foo.com.".into()))),
            (Some("foo.com:80"), Err(Invalid::Host("foo.com:80".into()))),
        ];
        for (input, want) in cases {
            assert_eq!(rule_host(input), want, "{input:?}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(rule_host(Some(&long_label)).is_err());
    }

    #[test]
    fn rule_path_table() {
        use PathKind::{Exact, ImplementationSpecific as Specific, Prefix};
        let cases: Vec<(Option<&str>, PathKind, Result<&str, &str>)> = vec![
            (Some("/"), Prefix, Ok("/")),
            (Some("/foo/"), Exact, Ok("/foo/")),
            (None, Prefix, Err("must start with '/'")),
            (Some("foo"), Exact, Err("must start with '/'")),
            (Some("/a//b"), Prefix, Err("must not contain \"//\"")),
            (Some("/a/../b"), Prefix, Err("must not contain \"/../\"")),
            (Some("/a/./b"), Exact, Err("must not contain \"/./\"")),
            (Some("/a%2Fb"), Exact, Err("must not contain \"%2F\"")),
            (Some("/a/.."), Prefix, Err("must not end with \"/..\"")),
            (Some("/a/."), Prefix, Err("must not end with \"/.\"")),
            (None, Specific, Ok("/")),
            (Some(""), Specific, Ok("/")),
            (Some("/api(/|$)(.*)"), Specific, Ok("/api(/|$)(.*)")),
            (Some("/a//b"), Specific, Ok("/a//b")),
            (Some("api"), Specific, Err("must start with '/'")),
        ];
        for (path, kind, want) in cases {
            match (rule_path(path, kind), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{path:?} {kind}"),
                (Err(got), Err(want)) => {
                    assert!(got.to_string().contains(want), "{path:?} {kind}: {got}")
                }
                (got, want) => panic!("{path:?} {kind}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn path_kind_table() {
        assert_eq!(path_kind("Exact"), Ok(PathKind::Exact));
        assert_eq!(path_kind("Prefix"), Ok(PathKind::Prefix));
        assert_eq!(
            path_kind("ImplementationSpecific"),
            Ok(PathKind::ImplementationSpecific)
        );
        assert_eq!(path_kind("prefix"), Err(Invalid::PathType("prefix".into())));
        assert_eq!(path_kind(""), Err(Invalid::PathType("".into())));
    }
}
