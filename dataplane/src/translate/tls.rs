//! `spec.tls`, the `ssl-passthrough` annotation and the redirect annotations to the snapshot's
//! [`TlsTable`].
//!
//! Rules (design.md "TLS rules", and ingress-nginx where the design is silent):
//!
//! * A host listed under `spec.tls[i].hosts` is served with the certificate of
//!   `spec.tls[i].secretName` (a Secret in the Ingress's namespace, read from the mirror the
//!   operator made in the set's namespace), or the default certificate when no `secretName` is
//!   given. A rule host that no `spec.tls` entry lists still gets a certificate of its
//!   Ingress's `spec.tls` that covers it (ingress-nginx's SAN fallback: `tls: [{secretName: x}]`
//!   without hosts is common).
//! * A missing or unusable Secret falls back to the default certificate; a certificate that does
//!   not cover a listed host is served anyway (as ingress-nginx does). Both are problems.
//! * Several Ingresses naming the same host: the oldest decides its certificate, as for routes,
//!   and its `ssl-ciphers` (TLS 1.2 suites); a younger Ingress's different ciphers are ignored.
//! * `ssl-passthrough: "true"` (only when the set enables it) forwards the Ingress's hosts by
//!   SNI to the backend of their `/` rule; the host's other paths and annotations do not apply
//!   to TLS connections.
//!
//! Certificates are parsed once per Secret version: [`CertificateCache`] keeps the parsed form
//! across translations, keyed by the Secret and compared by content, so a snapshot rebuilt for
//! an EndpointSlice change does not re-parse every private key, and an unchanged certificate
//! keeps its `Arc` (the proxy caches its rustls config by it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressSpec};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;

use super::validate::{AnnotationKey, RuleHost, annotation_field, rule_host};
use super::{Builder, ObjectKey, Problem, ProblemObject, describe_host};
use sluice_crds::annotations::{Policies, VerifyClient};

use crate::tls::{ClientCaError, parse_client_ca};

use crate::model::{
    Certificate, ClientAuth, ClientCa, IngressRef, Passthrough, RedirectFlags, Termination,
    Tls12Ciphers, TlsHost,
};

/// The Secret keys of a TLS Secret (`kubernetes.io/tls`).
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_PRIVATE_KEY_KEY: &str = "tls.key";
/// The Secret keys of an `auth-tls-secret`: the CA bundle and, optionally, its CRLs.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_CRL_KEY: &str = "ca.crl";

pub(crate) const SSL_PASSTHROUGH: AnnotationKey = AnnotationKey {
    sluice: "sluice.dev/ssl-passthrough",
    nginx: "nginx.ingress.kubernetes.io/ssl-passthrough",
};

/// Why a certificate and key cannot be used; the `Display` goes into an Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the Secret has no {0} key")]
    MissingKey(&'static str),
    #[error("tls.crt is not valid PEM: {0}")]
    CertificatePem(String),
    #[error("tls.crt holds no CERTIFICATE block")]
    NoCertificate,
    #[error("the certificate in tls.crt cannot be parsed: {0}")]
    InvalidCertificate(String),
    #[error("tls.key is not valid PEM: {0}")]
    KeyPem(String),
    #[error("tls.key holds no private key (PKCS#8, PKCS#1 or SEC1 PEM block)")]
    NoPrivateKey,
    #[error("the private key in tls.key is not supported: {0}")]
    UnsupportedKey(String),
    #[error("the private key in tls.key does not belong to the certificate in tls.crt")]
    KeyMismatch,
}

/// Parses a PEM certificate chain (leaf first) and its PEM private key into a [`Certificate`]
/// whose source is `source`.
pub fn parse_certificate(
    source: &str,
    crt: &[u8],
    key: &[u8],
) -> Result<Certificate, CertificateError> {
    let chain = CertificateDer::pem_slice_iter(crt)
        .collect::<Result<Vec<CertificateDer<'static>>, _>>()
        .map_err(|e| CertificateError::CertificatePem(e.to_string()))?;
    let leaf = chain.first().ok_or(CertificateError::NoCertificate)?;
    // webpki must be able to read the leaf: the host checks below and every client need it.
    ParsedCertificate::try_from(leaf)
        .map_err(|e| CertificateError::InvalidCertificate(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
        pem::Error::NoItemsFound => CertificateError::NoPrivateKey,
        other => CertificateError::KeyPem(other.to_string()),
    })?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| CertificateError::UnsupportedKey(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // aws-lc-rs always knows the public key; "unknown" would only mean it cannot tell.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => return Err(CertificateError::KeyMismatch),
        Err(other) => return Err(CertificateError::InvalidCertificate(other.to_string())),
    }
    Ok(Certificate {
        source: source.to_owned(),
        key: Arc::new(certified),
    })
}

/// Whether the leaf certificate's subjectAltNames cover `host` (webpki's rules, as clients
/// check: a `*.` SAN covers exactly one label). A wildcard host is covered when any name one
/// label under it is.
pub(crate) fn covers(certificate: &Certificate, host: &RuleHost) -> bool {
    let name = match host {
        RuleHost::CatchAll => return false,
        RuleHost::Exact(name) => name.clone(),
        // Any single label stands for all of them: only a `*.parent` SAN covers it.
        RuleHost::Wildcard(parent) => format!("wildcard-probe.{parent}"),
    };
    let Ok(server_name) = ServerName::try_from(name.as_str()) else {
        return false;
    };
    let Some(leaf) = certificate.key.cert.first() else {
        return false;
    };
    ParsedCertificate::try_from(leaf)
        .is_ok_and(|parsed| rustls::client::verify_server_name(&parsed, &server_name).is_ok())
}

/// Why a Secret named by an Ingress (or the set) gives no certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretError {
    NotFound {
        secret: ObjectKey,
        mirrored: bool,
    },
    Unusable {
        secret: ObjectKey,
        error: CertificateError,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotFound {
                secret,
                mirrored: true,
            } => write!(
                f,
                "Secret {secret} not found (the data plane reads the copy the operator mirrors \
                 into the set's namespace)"
            ),
            SecretError::NotFound {
                secret,
                mirrored: false,
            } => write!(f, "Secret {secret} not found"),
            SecretError::Unusable { secret, error } => write!(f, "Secret {secret}: {error}"),
        }
    }
}

struct CacheEntry {
    crt: Vec<u8>,
    key: Vec<u8>,
    parsed: Result<Arc<Certificate>, CertificateError>,
}

struct CaCacheEntry {
    crt: Vec<u8>,
    crl: Option<Vec<u8>>,
    parsed: Result<Arc<ClientCa>, ClientCaError>,
}

/// Parsed certificates kept between translations (see the module documentation). Cloning
/// shares the cache. Translation stays a function of its input: an entry is reused only when
/// the Secret's bytes are exactly those it was parsed from.
#[derive(Clone, Default)]
pub struct CertificateCache {
    entries: Arc<Mutex<HashMap<ObjectKey, CacheEntry>>>,
    /// `auth-tls-secret` CA bundles, the same way.
    cas: Arc<Mutex<HashMap<ObjectKey, CaCacheEntry>>>,
}

impl fmt::Debug for CertificateCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.entries.lock().map_or(0, |e| e.len());
        f.debug_struct("CertificateCache")
            .field("entries", &len)
            .finish()
    }
}

impl CertificateCache {
    /// The certificate of `secret`, known as `key` (its origin), parsed unless cached.
    fn get(&self, key: &ObjectKey, secret: &Secret) -> Result<Arc<Certificate>, CertificateError> {
        let data = secret.data.as_ref();
        let value = |name: &'static str| {
            data.and_then(|d| d.get(name))
                .map(|v| v.0.as_slice())
                .ok_or(CertificateError::MissingKey(name))
        };
        let crt = value(TLS_CERT_KEY)?;
        let private_key = value(TLS_PRIVATE_KEY_KEY)?;
        // A poisoned lock only means a panic elsewhere; parsing without the cache is correct.
        let Ok(mut entries) = self.entries.lock() else {
            return parse_certificate(&key.to_string(), crt, private_key).map(Arc::new);
        };
        if let Some(entry) = entries.get(key)
            && entry.crt == crt
            && entry.key == private_key
        {
            return entry.parsed.clone();
        }
        let parsed = parse_certificate(&key.to_string(), crt, private_key).map(Arc::new);
        entries.insert(
            key.clone(),
            CacheEntry {
                crt: crt.to_vec(),
                key: private_key.to_vec(),
                parsed: parsed.clone(),
            },
        );
        parsed
    }

    /// The CA bundle of `secret`, known as `key` (its origin), parsed unless cached.
    fn client_ca(&self, key: &ObjectKey, secret: &Secret) -> Result<Arc<ClientCa>, ClientCaError> {
        let data = secret.data.as_ref();
        let crt = data
            .and_then(|d| d.get(CA_CERT_KEY))
            .map(|v| v.0.as_slice())
            .ok_or(ClientCaError::MissingKey)?;
        let crl = data.and_then(|d| d.get(CA_CRL_KEY)).map(|v| v.0.as_slice());
        let parse = || parse_client_ca(&key.to_string(), crt, crl).map(Arc::new);
        // A poisoned lock only means a panic elsewhere; parsing without the cache is correct.
        let Ok(mut cas) = self.cas.lock() else {
            return parse();
        };
        if let Some(entry) = cas.get(key)
            && entry.crt == crt
            && entry.crl.as_deref() == crl
        {
            return entry.parsed.clone();
        }
        let parsed = parse();
        cas.insert(
            key.clone(),
            CaCacheEntry {
                crt: crt.to_vec(),
                crl: crl.map(<[u8]>::to_vec),
                parsed: parsed.clone(),
            },
        );
        parsed
    }

    /// Forgets every Secret not in `used` (deleted, or no longer referenced).
    pub(super) fn retain(&self, used: &HashSet<ObjectKey>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|key, _| used.contains(key));
        }
        if let Ok(mut cas) = self.cas.lock() {
            cas.retain(|key, _| used.contains(key));
        }
    }

    /// How many Secrets are cached (for tests and metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one Ingress asks of the hosts it terminates.
struct Claim<'a> {
    source: &'a IngressRef,
    /// Its `ssl-ciphers`, evaluated.
    ciphers: Option<Tls12Ciphers>,
    /// Where a conflict over the ciphers is reported.
    ciphers_field: String,
    /// Its `auth-tls-*`, with the CA read.
    client_auth: Option<Arc<ClientAuth>>,
    /// Where a conflict over client auth is reported.
    client_auth_field: String,
}

/// A host's client auth for a conflict message.
fn describe_client_auth(auth: Option<&ClientAuth>) -> String {
    match auth {
        None => "no client certificates".to_owned(),
        Some(auth) => {
            let ca = match &auth.ca {
                Ok(ca) => format!("the CA of Secret {}", ca.source),
                Err(_) => "an unusable CA".to_owned(),
            };
            let mode = match auth.mode {
                VerifyClient::On => "on",
                VerifyClient::Off => "off",
                VerifyClient::Optional => "optional",
                VerifyClient::OptionalNoCa => "optional_no_ca",
            };
            format!(
                "client certificates from {ca} (verify {mode}, depth {})",
                auth.depth
            )
        }
    }
}

/// The annotation field `key` was written under (sluice.dev or nginx prefix).
fn effective_field(ingress: &Ingress, key: &str) -> String {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| sluice_crds::annotations::effective(a, key))
        .map_or_else(
            || annotation_field(&format!("sluice.dev/{key}")),
            |(key, _)| annotation_field(&key),
        )
}

/// A host's TLS 1.2 suites for a conflict message.
fn describe_ciphers(ciphers: Option<&Tls12Ciphers>) -> String {
    match ciphers {
        None => "the set's sslCiphers".to_owned(),
        Some(c) if c.suites().is_empty() => "TLS 1.2 off (ssl-ciphers selects no suite)".to_owned(),
        Some(c) => {
            // The OpenSSL names are the suites' serde names.
            let names: Vec<String> = c
                .suites()
                .iter()
                .map(|s| match serde_json::to_value(s) {
                    Ok(serde_json::Value::String(name)) => name,
                    _ => format!("{s:?}"),
                })
                .collect();
            format!("ssl-ciphers {}", names.join(":"))
        }
    }
}

/// The winner of a host's termination, and the Secret it named (for conflict messages).
struct TerminationDraft {
    termination: Termination,
    secret: Option<ObjectKey>,
}

#[derive(Default)]
struct HostTlsDraft {
    terminate: Option<TerminationDraft>,
    passthrough: Option<Passthrough>,
}

/// TLS gathered while Ingresses are added, oldest first.
#[derive(Default)]
pub(super) struct TlsDraft {
    hosts: HashMap<RuleHost, HostTlsDraft>,
    redirects: BTreeMap<IngressRef, RedirectFlags>,
    /// Secrets read in this translation: the rest are dropped from the cache.
    used: HashSet<ObjectKey>,
}

fn is_root_path(path: &HTTPIngressPath) -> bool {
    match path.path.as_deref().unwrap_or_default() {
        "/" => true,
        // An empty ImplementationSpecific path means `/` (see `rule_path`).
        "" => path.path_type == "ImplementationSpecific",
        _ => false,
    }
}

impl Builder<'_> {
    /// The certificate of Secret `key` (an origin key), counting it as used.
    fn certificate(&mut self, key: &ObjectKey) -> Result<Arc<Certificate>, SecretError> {
        self.tls.used.insert(key.clone());
        let secret = self.state.secrets.get(key).ok_or(SecretError::NotFound {
            secret: key.clone(),
            mirrored: true,
        })?;
        self.state
            .certificates
            .get(key, secret)
            .map_err(|error| SecretError::Unusable {
                secret: key.clone(),
                error,
            })
    }

    /// Adds one Ingress's TLS: redirect flags, passthrough, `spec.tls`.
    pub(super) fn add_tls(&mut self, source: &IngressRef, ingress: &Ingress, policies: &Policies) {
        let defaults = RedirectFlags::default();
        let flags = RedirectFlags {
            ssl_redirect: policies
                .redirect
                .ssl_redirect
                .unwrap_or(defaults.ssl_redirect),
            force_ssl_redirect: policies
                .redirect
                .force_ssl_redirect
                .unwrap_or(defaults.force_ssl_redirect),
        };
        if flags != defaults {
            self.tls.redirects.insert(source.clone(), flags);
        }
        let Some(spec) = &ingress.spec else { return };

        if policies.tls.passthrough == Some(true) {
            self.add_passthrough(source, ingress, spec);
        }
        let ciphers = policies
            .tls
            .ciphers
            .as_ref()
            .map(|selection| Tls12Ciphers::new(&selection.tls12));
        let client_auth = self.client_auth(source, ingress, spec, policies);
        let claim = Claim {
            source,
            ciphers_field: effective_field(ingress, "ssl-ciphers"),
            ciphers,
            client_auth,
            client_auth_field: effective_field(ingress, "auth-tls-secret"),
        };

        let mut listed: HashSet<RuleHost> = HashSet::new();
        let mut certificates: Vec<(Arc<Certificate>, ObjectKey)> = Vec::new();
        for (i, tls) in spec.tls.iter().flatten().enumerate() {
            let secret = tls
                .secret_name
                .as_deref()
                .filter(|name| !name.is_empty())
                .map(|name| ObjectKey::new(&source.namespace, name));
            let certificate = match &secret {
                None => None,
                Some(key) => match self.certificate(key) {
                    Ok(certificate) => {
                        certificates.push((certificate.clone(), key.clone()));
                        Some(certificate)
                    }
                    Err(error) => {
                        self.problem(
                            source,
                            format!("spec.tls[{i}].secretName"),
                            format!("{error}; its hosts are served with the default certificate"),
                        );
                        None
                    }
                },
            };
            for (j, host) in tls.hosts.iter().flatten().enumerate() {
                let field = format!("spec.tls[{i}].hosts[{j}]");
                let host = match rule_host(Some(host)) {
                    Ok(RuleHost::CatchAll) => {
                        self.problem(source, field, "an empty host cannot be matched by SNI");
                        continue;
                    }
                    Ok(host) => host,
                    Err(error) => {
                        self.problem(source, field, error);
                        continue;
                    }
                };
                if let Some(certificate) = &certificate
                    && !covers(certificate, &host)
                {
                    let reason = format!(
                        "the certificate of Secret {} is not valid for {}: it is served anyway \
                         (as ingress-nginx does) and clients will reject it",
                        certificate.source,
                        describe_host(&host)
                    );
                    self.problem(source, field.clone(), reason);
                }
                listed.insert(host.clone());
                self.claim_termination(
                    &claim,
                    Some(&field),
                    host,
                    certificate.clone(),
                    secret.clone(),
                );
            }
        }

        // ingress-nginx's fallback: a rule host no entry lists uses a certificate of this
        // Ingress that covers it.
        if certificates.is_empty() {
            return;
        }
        for rule in spec.rules.iter().flatten() {
            let Ok(host) = rule_host(rule.host.as_deref()) else {
                continue;
            };
            if host == RuleHost::CatchAll || listed.contains(&host) {
                continue;
            }
            if let Some((certificate, key)) = certificates.iter().find(|(c, _)| covers(c, &host)) {
                let (certificate, key) = (certificate.clone(), key.clone());
                self.claim_termination(&claim, None, host, Some(certificate), Some(key));
            }
        }
    }

    /// The Ingress's `auth-tls-*` with its CA read. A CA that cannot be read is reported on
    /// `auth-tls-secret` and kept as unusable, so its hosts refuse every request (fail closed).
    fn client_auth(
        &mut self,
        source: &IngressRef,
        ingress: &Ingress,
        spec: &IngressSpec,
        policies: &Policies,
    ) -> Option<Arc<ClientAuth>> {
        let wanted = policies.client_certificates.as_ref()?;
        let field = effective_field(ingress, "auth-tls-secret");
        let has_tls_hosts = spec.tls.iter().flatten().any(|tls| {
            tls.hosts.as_ref().is_some_and(|h| !h.is_empty()) || tls.secret_name.is_some()
        });
        if !has_tls_hosts {
            self.problem(
                source,
                field,
                "ignored: client certificates apply to the Ingress's TLS hosts (spec.tls), and it \
                 has none",
            );
            return None;
        }
        let ca = match wanted.secret.name_in(&source.namespace) {
            None => Err(format!(
                "Secret {}/{} is in another namespace: an Ingress may only use its own \
                 namespace's Secrets",
                wanted.secret.namespace.as_deref().unwrap_or_default(),
                wanted.secret.name
            )),
            Some(name) => {
                let key = ObjectKey::new(&source.namespace, name);
                self.tls.used.insert(key.clone());
                match self.state.secrets.get(&key) {
                    None => Err(SecretError::NotFound {
                        secret: key,
                        mirrored: true,
                    }
                    .to_string()),
                    Some(secret) => self
                        .state
                        .certificates
                        .client_ca(&key, secret)
                        .map_err(|error| format!("Secret {key}: {error}")),
                }
            }
        };
        if let Err(reason) = &ca {
            self.problem(
                source,
                field,
                format!(
                    "{reason}; the Ingress's TLS hosts refuse every request (503) until the CA \
                     can be read"
                ),
            );
        }
        Some(Arc::new(ClientAuth {
            mode: wanted.verify,
            depth: wanted.depth,
            pass_to_upstream: wanted.pass_to_upstream,
            error_page: wanted.error_page.clone(),
            ca: ca.map_err(|reason| reason.to_string()),
        }))
    }

    /// Records `host`'s termination unless an older Ingress (or an earlier entry) decided it.
    /// `field` is `None` for the SAN fallback, which yields silently.
    fn claim_termination(
        &mut self,
        claim: &Claim<'_>,
        field: Option<&str>,
        host: RuleHost,
        certificate: Option<Arc<Certificate>>,
        secret: Option<ObjectKey>,
    ) {
        let source = claim.source;
        let draft = self.tls.hosts.entry(host.clone()).or_default();
        // Naming no ciphers asks for nothing, so only different ones conflict.
        let ciphers_ignored = |winner: &TerminationDraft| {
            claim.ciphers.is_some() && winner.termination.tls12_ciphers != claim.ciphers
        };
        let client_auth_ignored = |winner: &TerminationDraft| {
            claim.client_auth.is_some() && winner.termination.client_auth != claim.client_auth
        };
        let problems: Vec<(String, String)> = match &draft.terminate {
            None => {
                draft.terminate = Some(TerminationDraft {
                    termination: Termination {
                        certificate,
                        source: source.clone(),
                        tls12_ciphers: claim.ciphers.clone(),
                        client_auth: claim.client_auth.clone(),
                    },
                    secret,
                });
                return;
            }
            // The SAN fallback yields silently.
            Some(_) if field.is_none() => return,
            Some(winner) if winner.secret == secret => {
                let mut problems = Vec::new();
                if ciphers_ignored(winner) {
                    let reason = format!(
                        "ssl-ciphers ignored for {}: Ingress {}, which is older, decides its TLS \
                         termination and serves it with {}",
                        describe_host(&host),
                        winner.termination.source,
                        describe_ciphers(winner.termination.tls12_ciphers.as_ref()),
                    );
                    problems.push((claim.ciphers_field.clone(), reason));
                }
                if client_auth_ignored(winner) {
                    let reason = format!(
                        "client certificates ignored for {}: Ingress {}, which is older, \
                         decides its TLS termination and serves it with {}",
                        describe_host(&host),
                        winner.termination.source,
                        describe_client_auth(winner.termination.client_auth.as_deref()),
                    );
                    problems.push((claim.client_auth_field.clone(), reason));
                }
                problems
            }
            Some(winner) => {
                let what = match &winner.secret {
                    Some(key) => format!("the certificate of Secret {key}"),
                    None => "the default certificate".to_owned(),
                };
                let by = if winner.termination.source == *source {
                    "an earlier spec.tls entry of this Ingress".to_owned()
                } else {
                    format!("Ingress {}, which is older", winner.termination.source)
                };
                let also = match (ciphers_ignored(winner), client_auth_ignored(winner)) {
                    (true, true) => " (its ssl-ciphers and client certificates are ignored too)",
                    (true, false) => " (its ssl-ciphers are ignored too)",
                    (false, true) => " (its client certificates are ignored too)",
                    (false, false) => "",
                };
                let reason = format!(
                    "ignored: {} already uses {what} from {by}{also}",
                    describe_host(&host)
                );
                field.map(|f| (f.to_owned(), reason)).into_iter().collect()
            }
        };
        for (field, reason) in problems {
            self.problem(source, field, reason);
        }
    }

    fn add_passthrough(&mut self, source: &IngressRef, ingress: &Ingress, spec: &IngressSpec) {
        let annotation = SSL_PASSTHROUGH
            .get(ingress.metadata.annotations.as_ref())
            .map_or(SSL_PASSTHROUGH.sluice, |(key, _)| key);
        if !self.scope.enable_ssl_passthrough {
            self.problem(
                source,
                annotation_field(annotation),
                "ignored: the IngressControllerSet does not enable SSL passthrough \
                 (spec.proxy.enableSslPassthrough)",
            );
            return;
        }
        let rules = spec.rules.as_deref().unwrap_or_default();
        if rules.is_empty() {
            self.problem(
                source,
                annotation_field(annotation),
                "ssl-passthrough needs rules with hosts: connections are forwarded by SNI",
            );
        }
        for (r, rule) in rules.iter().enumerate() {
            let host = match rule_host(rule.host.as_deref()) {
                Ok(RuleHost::CatchAll) => {
                    self.problem(
                        source,
                        format!("spec.rules[{r}].host"),
                        "ssl-passthrough needs a host: connections are forwarded by SNI",
                    );
                    continue;
                }
                Ok(host) => host,
                // Already reported with the routes.
                Err(_) => continue,
            };
            let paths = rule.http.as_ref().map(|h| h.paths.as_slice());
            let root = paths
                .unwrap_or_default()
                .iter()
                .enumerate()
                .find(|(_, path)| is_root_path(path));
            let Some((p, path)) = root else {
                self.problem(
                    source,
                    format!("spec.rules[{r}].http.paths"),
                    format!(
                        "ssl-passthrough forwards {} to the backend of its \"/\" path, and this \
                         rule has none: the host is not passed through",
                        describe_host(&host)
                    ),
                );
                continue;
            };
            let Some(backend) = self.backend(
                source,
                &path.backend,
                &format!("spec.rules[{r}].http.paths[{p}].backend"),
            ) else {
                continue;
            };
            let draft = self.tls.hosts.entry(host.clone()).or_default();
            match &draft.passthrough {
                None => {
                    draft.passthrough = Some(Passthrough {
                        backend,
                        source: source.clone(),
                    });
                }
                Some(winner) if winner.source == *source => {}
                Some(winner) => {
                    let reason = format!(
                        "ssl-passthrough ignored for {}: Ingress {}, which is older, already \
                         passes it through",
                        describe_host(&host),
                        winner.source
                    );
                    self.problem(source, format!("spec.rules[{r}].host"), reason);
                }
            }
        }
    }

    /// Moves the TLS hosts and redirect flags into `part`, with the Secrets read.
    pub(super) fn finish_tls(&mut self, part: &mut super::Part) {
        part.redirects = std::mem::take(&mut self.tls.redirects);
        for (host, draft) in std::mem::take(&mut self.tls.hosts) {
            let (key, display, wildcard) = match host {
                RuleHost::CatchAll => continue,
                RuleHost::Exact(name) => (name.clone(), name, false),
                RuleHost::Wildcard(parent) => (parent.clone(), format!("*.{parent}"), true),
            };
            let entry = TlsHost {
                host: display,
                terminate: draft.terminate.map(|t| t.termination),
                passthrough: draft.passthrough,
            };
            if wildcard {
                part.tls_wildcard.push((key, entry));
            } else {
                part.tls_exact.push((key, entry));
            }
        }
        part.certificates_used = std::mem::take(&mut self.tls.used);
    }
}

/// The set's `defaultSslCertificate`, or the problem reading it; its Secret goes into `used`.
pub(super) fn default_certificate(
    state: &super::ClusterState,
    scope: &super::ClassScope,
    used: &mut HashSet<ObjectKey>,
) -> (Option<Arc<Certificate>>, Option<Problem>) {
    let Some(name) = scope.default_ssl_certificate.clone() else {
        return (None, None);
    };
    let key = ObjectKey::new(&scope.set_namespace, &name);
    used.insert(key.clone());
    let secret = state
        .default_certificate
        .as_ref()
        .filter(|s| s.metadata.name.as_deref() == Some(name.as_str()));
    let result = match secret {
        None => Err(SecretError::NotFound {
            secret: key.clone(),
            mirrored: false,
        }),
        Some(secret) => {
            state
                .certificates
                .get(&key, secret)
                .map_err(|error| SecretError::Unusable {
                    secret: key.clone(),
                    error,
                })
        }
    };
    match result {
        Ok(certificate) => (Some(certificate), None),
        Err(error) => (
            None,
            Some(Problem {
                object: ProblemObject::IngressControllerSet {
                    namespace: scope.set_namespace.clone(),
                    name: scope.set_name.clone(),
                },
                field: "spec.proxy.defaultSslCertificate".to_owned(),
                reason: format!(
                    "{error}; a self-signed certificate generated at start is served instead"
                ),
            }),
        ),
    }
}
