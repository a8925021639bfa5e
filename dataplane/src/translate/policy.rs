//! An Ingress's annotations to its [`IngressPolicy`]: parsed once per translation with
//! `sluice_crds::annotations::parse_annotations`, every problem reported on the Ingress, and
//! the Secrets the policies name (today `auth-secret`) read from the mirrors.
//!
//! Fail closed: a problem of severity `RejectIngress` (an invalid auth or access-list
//! annotation, a snippet holding an access rule) or credentials that cannot be read deny the
//! Ingress: its routes stay and answer 503, so its requests do not fall through to another
//! Ingress's shorter path and get served without the check they asked for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use sluice_crds::annotations::{
    AnnotationProblem, BasicAuth, ParsedAnnotations, Severity, parse_annotations,
};

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
        let policy = IngressPolicy::new(IngressPolicy {
            annotations: parsed.policies.clone(),
            basic_auth,
            denied,
            error_backend,
            upstream_tls,
            inert: false,
        });
        (policy, parsed)
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
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.ports.as_ref())
            .map(|ports| ports.iter().map(|p| p.port).collect())
            .unwrap_or_default();
        let port = match ports.as_slice() {
            [only] => *only,
            ports if ports.contains(&80) => 80,
            _ => 80,
        };
        let service = crate::model::ServiceRef {
            namespace: source.namespace.clone(),
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
