//! An Ingress's annotations to its [`IngressPolicy`]: parsed once per translation with
//! `sluice_crds::annotations::parse_annotations`, every problem reported on the Ingress, and
//! the Secrets and ConfigMaps the policies name (`auth-secret`, `proxy-ssl-secret`,
//! `custom-headers`) read from the mirrors.
//!
//! Fail closed: a problem of severity `RejectIngress` (an invalid auth or access-list
//! annotation, a snippet holding an access rule) or credentials that cannot be read deny the
//! Ingress: its routes stay and answer 503, so its requests do not fall through to another
//! Ingress's shorter path and get served without the check they asked for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use http::{HeaderName, HeaderValue};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use sluice_crds::annotations::{
    AnnotationProblem, BasicAuth, ConfigMapRef, ParsedAnnotations, Severity, parse_annotations,
};
use thiserror::Error;

use super::{Builder, ObjectKey};
use crate::model::{IngressPolicy, IngressRef};
use crate::policy::basic_auth::{Authenticator, Credentials, CredentialsError};

/// Parsed credentials kept between translations, reused while a Secret's data is unchanged
/// (and with them the cache of verified bcrypt passwords). Cloning shares the cache.
#[derive(Clone, Default)]
pub struct CredentialsCache {
    entries: Arc<Mutex<HashMap<CredentialsKey, CredentialsEntry>>>,
}

type CredentialsKey = (
    ObjectKey,
    sluice_crds::annotations::AuthScheme,
    sluice_crds::annotations::AuthSecretType,
);

struct CredentialsEntry {
    data: BTreeMap<String, Vec<u8>>,
    parsed: Result<Arc<Credentials>, CredentialsError>,
}

impl std::fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map_or(0, |e| e.len());
        f.debug_struct("CredentialsCache")
            .field("entries", &len)
            .finish()
    }
}

impl CredentialsCache {
    fn get(
        &self,
        key: &ObjectKey,
        auth: &BasicAuth,
        secret: &Secret,
    ) -> Result<Arc<Credentials>, CredentialsError> {
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        let parse = |data: &BTreeMap<String, Vec<u8>>| {
            Credentials::from_secret(auth.scheme, auth.secret_type, data).map(Arc::new)
        };
        let cache_key = (key.clone(), auth.scheme, auth.secret_type);
        // A poisoned lock only means a panic elsewhere; parsing without the cache is correct.
        let Ok(mut entries) = self.entries.lock() else {
            return parse(&data);
        };
        if let Some(entry) = entries.get(&cache_key)
            && entry.data == data
        {
            return entry.parsed.clone();
        }
        let parsed = parse(&data);
        entries.insert(
            cache_key,
            CredentialsEntry {
                data,
                parsed: parsed.clone(),
            },
        );
        parsed
    }

    /// Forgets every Secret not in `used`.
    pub(super) fn retain(&self, used: &HashSet<ObjectKey>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(key, _, _), _| used.contains(key));
        }
    }
}

/// The Event reason of an annotation problem: its message without the key (the field names
/// it), and what it does to the Ingress when the message does not already say so.
fn problem_reason(problem: &AnnotationProblem) -> String {
    let message = problem.message();
    let prefix = format!("{}: ", problem.key);
    let reason = message.strip_prefix(&prefix).unwrap_or(&message);
    match problem.severity {
        Severity::Ignored => reason.to_owned(),
        Severity::RejectPolicy if !reason.contains("not applied") => {
            format!("{reason}; this policy is not applied")
        }
        Severity::RejectIngress if !reason.contains("not served") => {
            format!("{reason}; the Ingress is not served (503) until this is fixed")
        }
        _ => reason.to_owned(),
    }
}

impl Builder<'_> {
    /// Parses `ingress`'s annotations, reports their problems, reads the Secrets they name and
    /// returns the policy its routes carry, with the parsed annotations (for TLS and regex
    /// mode, which translation itself reads).
    pub(super) fn ingress_policy(
        &mut self,
        source: &IngressRef,
        ingress: &Ingress,
    ) -> (Arc<IngressPolicy>, ParsedAnnotations) {
        let empty = BTreeMap::new();
        let annotations = ingress.metadata.annotations.as_ref().unwrap_or(&empty);
        let parsed = parse_annotations(annotations);
        let mut denied = None;
        for problem in &parsed.problems {
            let reason = problem_reason(problem);
            if problem.severity == Severity::RejectIngress && denied.is_none() {
                denied = Some(format!("{}: {reason}", problem.key));
            }
            self.problem(source, problem.field_path(), reason);
        }
        let basic_auth = match &parsed.policies.basic_auth {
            Some(auth) if denied.is_none() => match self.authenticator(source, auth) {
                Ok(authenticator) => Some(authenticator),
                Err(reason) => {
                    let key = sluice_crds::annotations::effective(annotations, "auth-secret")
                        .map_or_else(|| "auth-secret".to_owned(), |(key, _)| key);
                    let field = format!("metadata.annotations['{key}']");
                    self.problem(
                        source,
                        field,
                        format!("{reason}; the Ingress is not served (503) until this is fixed"),
                    );
                    denied = Some(reason);
                    None
                }
            },
            _ => None,
        };
        let error_backend = parsed
            .policies
            .errors
            .as_ref()
            .and_then(|e| e.default_backend.as_deref())
            .and_then(|name| self.error_backend(source, ingress, name));
        let upstream_tls = match &parsed.policies.upstream_tls {
            Some(tls) if denied.is_none() => match self.upstream_tls(source, tls) {
                Ok(config) => Some(Arc::new(config)),
                Err(reason) => {
                    let key = sluice_crds::annotations::effective(annotations, "proxy-ssl-secret")
                        .or_else(|| {
                            sluice_crds::annotations::effective(annotations, "proxy-ssl-verify")
                        })
                        .map_or_else(|| "proxy-ssl-secret".to_owned(), |(key, _)| key);
                    let field = format!("metadata.annotations['{key}']");
                    if tls.verify {
                        // Verification was asked for: connecting unverified would be the
                        // unsafe fallback, so the Ingress is not served.
                        self.problem(
                            source,
                            field,
                            format!(
                                "{reason}; the Ingress is not served (503) until this is fixed"
                            ),
                        );
                        denied = Some(reason);
                    } else {
                        self.problem(
                            source,
                            field,
                            format!("{reason}; TLS to the backend uses the defaults (no client certificate, not verified)"),
                        );
                    }
                    None
                }
            },
            _ => None,
        };
        let custom_headers = match &parsed.policies.custom_headers {
            Some(named) => self.custom_headers(source, annotations, named),
            None => Vec::new(),
        };
        let mut policies = parsed.policies.clone();
        // What is served is the resolved list: an unresolvable reference must not keep the
        // policy from being inert, and a changed ConfigMap changes `custom_headers`.
        policies.custom_headers = None;
        let policy = IngressPolicy::new(IngressPolicy {
            annotations: policies,
            basic_auth,
            denied,
            error_backend,
            upstream_tls,
            custom_headers,
            inert: false,
        });
        (policy, parsed)
    }

    /// The `custom-headers` ConfigMap's entries that may be set on responses. A missing or
    /// foreign ConfigMap and every refused entry are problems; the Ingress is served either way
    /// (response headers are not an access control).
    fn custom_headers(
        &mut self,
        source: &IngressRef,
        annotations: &BTreeMap<String, String>,
        named: &ConfigMapRef,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let key = sluice_crds::annotations::effective(annotations, "custom-headers")
            .map_or_else(|| "custom-headers".to_owned(), |(key, _)| key);
        let field = format!("metadata.annotations['{key}']");
        let Some(name) = named.name_in(&source.namespace) else {
            self.problem(
                source,
                field,
                format!(
                    "ConfigMap {}/{} is in another namespace: an Ingress may only use \
                     ConfigMaps of its own namespace; no custom headers are set",
                    named.namespace.as_deref().unwrap_or_default(),
                    named.name
                ),
            );
            return Vec::new();
        };
        let origin = ObjectKey::new(&source.namespace, name);
        self.config_maps_read.insert(origin.clone());
        let Some(config_map) = self.state.config_maps.get(&origin) else {
            self.problem(
                source,
                field,
                format!(
                    "ConfigMap {origin} not found (the data plane reads the copy the operator \
                     mirrors into the set's namespace); no custom headers are set until it exists"
                ),
            );
            return Vec::new();
        };
        let empty = BTreeMap::new();
        let (headers, refused) = custom_header_list(config_map.data.as_ref().unwrap_or(&empty));
        for (entry, error) in refused {
            self.problem(
                source,
                field.clone(),
                format!("ConfigMap {origin}: entry {entry:?}: {error}; this header is not set"),
            );
        }
        headers
    }

    /// The `default-backend` Service: its port 80, else its only port (as ingress-nginx, whose
    /// custom error backends listen on 80). A problem when it cannot be used.
    fn error_backend(
        &mut self,
        source: &IngressRef,
        ingress: &Ingress,
        name: &str,
    ) -> Option<Arc<crate::model::Backend>> {
        let key = ObjectKey::new(&source.namespace, name);
        let ports: Vec<i32> = self
            .state
            .services
            .get(&key)
            .map(|s| s.ports.iter().map(|p| p.port).collect())
            .unwrap_or_default();
        let port = match ports.as_slice() {
            [only] => *only,
            ports if ports.contains(&80) => 80,
            _ => 80,
        };
        let service = crate::model::ServiceRef {
            namespace: source.namespace.to_string(),
            name: name.to_owned(),
            port: crate::model::PortRef::Number(u16::try_from(port).unwrap_or(80)),
        };
        match self.resolver.resolve(&service) {
            Ok(backend) => Some(backend),
            Err(error) => {
                let empty = BTreeMap::new();
                let annotations = ingress.metadata.annotations.as_ref().unwrap_or(&empty);
                let key = sluice_crds::annotations::effective(annotations, "default-backend")
                    .map_or_else(|| "default-backend".to_owned(), |(key, _)| key);
                self.problem(
                    source,
                    format!("metadata.annotations['{key}']"),
                    format!("{error}; custom errors use the set's default backend"),
                );
                None
            }
        }
    }

    /// Builds the TLS client configuration of `proxy-ssl-*` from its mirrored Secret.
    fn upstream_tls(
        &mut self,
        source: &IngressRef,
        tls: &sluice_crds::annotations::UpstreamTls,
    ) -> Result<crate::upstream_tls::UpstreamTlsConfig, String> {
        let mut data = None;
        if let Some(secret) = &tls.secret {
            let Some(name) = secret.name_in(&source.namespace) else {
                return Err(format!(
                    "proxy-ssl-secret {}/{} is in another namespace: an Ingress may only use \
                     Secrets of its own namespace",
                    secret.namespace.as_deref().unwrap_or_default(),
                    secret.name
                ));
            };
            let key = ObjectKey::new(&source.namespace, name);
            self.secrets_used.insert(key.clone());
            if let Some(found) = self.state.secrets.get(&key) {
                let map: BTreeMap<String, Vec<u8>> = found
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect();
                data = Some((key.to_string(), map));
            }
        }
        crate::upstream_tls::build(tls, data.as_ref().map(|(k, d)| (k.as_str(), d)))
            .map_err(|e| e.to_string())
    }

    /// Reads the credentials of an `auth-secret` from its mirror.
    fn authenticator(
        &mut self,
        source: &IngressRef,
        auth: &BasicAuth,
    ) -> Result<Authenticator, String> {
        let Some(name) = auth.secret.name_in(&source.namespace) else {
            return Err(format!(
                "auth-secret {}/{} is in another namespace: an Ingress may only use Secrets of \
                 its own namespace",
                auth.secret.namespace.as_deref().unwrap_or_default(),
                auth.secret.name
            ));
        };
        let key = ObjectKey::new(&source.namespace, name);
        self.secrets_used.insert(key.clone());
        let Some(secret) = self.state.secrets.get(&key) else {
            return Err(format!(
                "Secret {key} not found (the data plane reads the copy the operator mirrors \
                 into the set's namespace)"
            ));
        };
        let credentials = self
            .state
            .credentials
            .get(&key, auth, secret)
            .map_err(|error| format!("Secret {key}: {error}"))?;
        Authenticator::new(auth.realm.clone(), credentials)
            .map_err(|error| format!("Secret {key}: {error}"))
    }
}

/// At most this many custom headers per Ingress: every response of it carries them all.
pub const MAX_CUSTOM_HEADERS: usize = 64;
/// At most this many bytes of names and values in all: clients limit a response's header
/// section (often to 64 KiB in all, some far less), and the backend's headers need room too.
pub const MAX_CUSTOM_HEADER_BYTES: usize = 16 * 1024;

/// Response headers a ConfigMap may not set.
///
/// - Hop-by-hop (RFC 9110 7.6.1) and framing headers: Sluice and hyper frame each response
///   and connection themselves; a fixed value would corrupt the message or the connection.
/// - `Set-Cookie`: setting it replaces every cookie the backend sends, and Sluice's own
///   session-affinity cookie, with one fixed cookie; ingress-nginx allows it through
///   `more_set_headers`, but cookies are the application's, and a broken login or affinity is
///   a worse surprise than a refused entry (the Event says so).
const REFUSED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a ConfigMap entry is not set as a response header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustomHeaderError {
    #[error("not a header name (an RFC 7230 token such as X-Frame-Options)")]
    InvalidName,
    #[error("{0} is set by Sluice for each response and connection; it cannot be fixed")]
    Refused(&'static str),
    #[error(
        "set-cookie would replace every cookie of the backend and of session affinity; \
         set cookies in the application"
    )]
    SetCookie,
    #[error("the value is empty")]
    EmptyValue,
    #[error("the value has a control or non-ASCII character (printable ASCII only)")]
    InvalidValue,
    #[error("the header is already set by another entry (names are case-insensitive)")]
    Duplicate,
    #[error("over {MAX_CUSTOM_HEADERS} headers or {MAX_CUSTOM_HEADER_BYTES} bytes in all")]
    TooMany,
}

/// Response headers to set, in order.
pub type CustomHeaders = Vec<(HeaderName, HeaderValue)>;
/// ConfigMap keys not set as headers, with why.
pub type RefusedEntries = Vec<(String, CustomHeaderError)>;

/// Validates a `custom-headers` ConfigMap's data (header name -> value) into the headers to set,
/// in key order, and the refused entries with why. A value's surrounding whitespace is
/// dropped (a YAML block scalar ends with a newline); what remains must be printable ASCII.
pub fn custom_header_list(data: &BTreeMap<String, String>) -> (CustomHeaders, RefusedEntries) {
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let mut refused = Vec::new();
    let mut bytes = 0usize;
    for (key, value) in data {
        match custom_header(key, value) {
            Err(error) => refused.push((key.clone(), error)),
            Ok((name, _)) if headers.iter().any(|(n, _)| *n == name) => {
                refused.push((key.clone(), CustomHeaderError::Duplicate));
            }
            Ok((name, value)) => {
                let size = name.as_str().len() + value.len();
                if headers.len() >= MAX_CUSTOM_HEADERS || bytes + size > MAX_CUSTOM_HEADER_BYTES {
                    refused.push((key.clone(), CustomHeaderError::TooMany));
                    continue;
                }
                bytes += size;
                headers.push((name, value));
            }
        }
    }
    (headers, refused)
}

fn custom_header(key: &str, value: &str) -> Result<(HeaderName, HeaderValue), CustomHeaderError> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if key.is_empty() || !key.bytes().all(is_tchar) {
        return Err(CustomHeaderError::InvalidName);
    }
    let name =
        HeaderName::from_bytes(key.as_bytes()).map_err(|_| CustomHeaderError::InvalidName)?;
    if name == http::header::SET_COOKIE {
        return Err(CustomHeaderError::SetCookie);
    }
    if let Some(refused) = REFUSED_HEADERS.iter().find(|r| **r == name.as_str()) {
        return Err(CustomHeaderError::Refused(refused));
    }
    let value = value.trim_matches([' ', '\t', '\r', '\n']);
    if value.is_empty() {
        return Err(CustomHeaderError::EmptyValue);
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(CustomHeaderError::InvalidValue);
    }
    let value = HeaderValue::from_str(value).map_err(|_| CustomHeaderError::InvalidValue)?;
    Ok((name, value))
}
