//! TLS to HTTPS and GRPCS backends per Ingress: ingress-nginx's `proxy-ssl-*` annotations turned
//! into a prebuilt rustls client configuration.
//!
//! ingress-nginx's directives and what they become here:
//!
//! - `proxy_ssl_certificate` / `proxy_ssl_certificate_key`: `tls.crt` / `tls.key` of
//!   `proxy-ssl-secret`, the client certificate presented to the backend (both or neither).
//! - `proxy_ssl_trusted_certificate`: its `ca.crt`, the only roots the backend is verified
//!   against with `proxy-ssl-verify: on` (no system roots: backends are in-cluster).
//! - `proxy_ssl_verify off` (the default): the certificate is not verified, but the handshake
//!   signature is, with the key the certificate names ([`UnverifiedBackend`]).
//! - `proxy_ssl_name`: the name the certificate is verified against and, with
//!   `proxy-ssl-server-name: on`, sent as SNI. ingress-nginx defaults to `$proxy_host`, its
//!   upstream block's name (`<namespace>-<service>-<port>`), which no certificate carries; the
//!   default here is the Service's cluster DNS name `<service>.<namespace>.svc`, the name
//!   cert-manager and service meshes put in in-cluster certificates. A template
//!   (`$service_name.$namespace.svc`, `$host`) is expanded per request.
//! - `proxy_ssl_server_name off` (the default): no SNI; the name is still verified.
//!
//! Pure: parsing and building only. The proxy keeps the connection pools
//! (`proxy::upstream::BackendClients::request_with`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ParsedCertificate;
use sluice_crds::annotations::{ExpandError, RequestVars, Template, UpstreamTls, Var};

/// The Secret keys `proxy-ssl-secret` is read from.
pub const CLIENT_CERT_KEY: &str = "tls.crt";
pub const CLIENT_KEY_KEY: &str = "tls.key";
pub const CA_KEY: &str = "ca.crt";

/// Why a `proxy-ssl-*` policy cannot be built, or its name not expanded for a request. The
/// messages name the Secret and key; they never hold Secret data (PEM errors are described, not
/// quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamTlsError {
    /// The Secret named by `proxy-ssl-secret` is not mirrored (absent, or in another namespace).
    #[error("Secret {0} of proxy-ssl-secret was not found")]
    SecretNotFound(String),
    /// One of `tls.crt` and `tls.key` without the other.
    #[error("Secret {secret} has {present} but no {missing}")]
    MissingKey {
        secret: String,
        present: &'static str,
        missing: &'static str,
    },
    /// Nothing usable in the Secret.
    #[error("Secret {secret} has neither tls.crt and tls.key nor ca.crt")]
    EmptySecret { secret: String },
    /// `proxy-ssl-verify: on` without `proxy-ssl-secret`.
    #[error("proxy-ssl-verify is on but no proxy-ssl-secret names the ca.crt to verify against")]
    VerifyWithoutSecret,
    /// `proxy-ssl-verify: on` with a Secret that has no `ca.crt`.
    #[error("proxy-ssl-verify is on but Secret {secret} has no ca.crt")]
    VerifyWithoutCa { secret: String },
    /// A key is not valid PEM.
    #[error("{key} of Secret {secret} is not valid PEM ({reason})")]
    Pem {
        secret: String,
        key: &'static str,
        reason: &'static str,
    },
    /// A key holds no PEM block of the kind needed.
    #[error("{key} of Secret {secret} holds no {what}")]
    NoItems {
        secret: String,
        key: &'static str,
        what: &'static str,
    },
    /// A certificate rustls cannot use (certificates are public: the reason may be detailed).
    #[error("a certificate in {key} of Secret {secret} cannot be used: {reason}")]
    InvalidCertificate {
        secret: String,
        key: &'static str,
        reason: String,
    },
    /// A private key type the crypto provider does not support.
    #[error("the private key in tls.key of Secret {secret} is not supported")]
    UnsupportedKey { secret: String },
    /// `tls.key` is not the key of `tls.crt`'s leaf certificate.
    #[error(
        "the private key in tls.key of Secret {secret} does not belong to the certificate in tls.crt"
    )]
    KeyMismatch { secret: String },
    /// `proxy-ssl-name` (or the default name) is not a DNS name or IP address (a port, say).
    #[error("proxy-ssl-name {name:?} is not a DNS name or IP address")]
    InvalidName { name: String },
    /// `proxy-ssl-name` could not be expanded for this request.
    #[error("proxy-ssl-name could not be expanded for this request: {0}")]
    Expand(ExpandError),
    /// The request has no Service name or namespace for the default name.
    #[error("the request has no Service for the default proxy-ssl-name")]
    NoService,
    /// rustls refused the configuration (no supported protocol versions, say).
    #[error("TLS to the backend cannot be set up: {0}")]
    Tls(String),
}

/// A SHA-256 digest over everything the [`ClientConfig`] was built from: two configs with the
/// same identity behave the same, so connection pools are shared between them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigIdentity([u8; 32]);

impl fmt::Debug for ConfigIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell configs apart in logs.
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Where the server name comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NameSource {
    /// A `proxy-ssl-name` without variables, validated when built.
    Static(ServerName<'static>),
    /// A `proxy-ssl-name` with variables, expanded per request.
    Template(Template),
    /// No `proxy-ssl-name`: `<service>.<namespace>.svc`.
    ServiceDns,
}

/// One Ingress's TLS to its backends, built once per Secret version by [`build`]. Equal when
/// built from the same Secret (origin and data), flags and name, so snapshots compare.
#[derive(Clone)]
pub struct UpstreamTlsConfig {
    identity: ConfigIdentity,
    name: NameSource,
    secret: Option<String>,
    verify: bool,
    sni: bool,
    client_cert: bool,
    /// ALPN is left empty: the proxy's connector sets it per protocol.
    config: Arc<ClientConfig>,
}

impl PartialEq for UpstreamTlsConfig {
    fn eq(&self, other: &Self) -> bool {
        // The identity covers the Secret and flags the ClientConfig came from.
        self.identity == other.identity && self.name == other.name
    }
}

impl Eq for UpstreamTlsConfig {}

impl fmt::Debug for UpstreamTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the ClientConfig: it holds the client's private key.
        f.debug_struct("UpstreamTlsConfig")
            .field("identity", &self.identity)
            .field("secret", &self.secret)
            .field("verify", &self.verify)
            .field("server_name", &self.sni)
            .field("client_cert", &self.client_cert)
            .field("name", &self.name)
            .finish()
    }
}

impl UpstreamTlsConfig {
    /// What the client configuration was built from; pools are keyed by it.
    pub fn identity(&self) -> ConfigIdentity {
        self.identity
    }

    /// The rustls configuration: verifier, client certificate, `enable_sni`; no ALPN.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The origin (`namespace/name`) of `proxy-ssl-secret`, if any.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// `proxy-ssl-verify: on`.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// `proxy-ssl-server-name: on`: the name is sent as SNI.
    pub fn sends_sni(&self) -> bool {
        self.sni
    }

    /// Whether a client certificate is presented.
    pub fn has_client_certificate(&self) -> bool {
        self.client_cert
    }

    /// The server name for one request: verified against the backend's certificate (with
    /// verify on) and sent as SNI (with server-name on). `vars` must answer
    /// [`Var::ServiceName`] and [`Var::Namespace`] for the default name.
    pub fn server_name(
        &self,
        vars: &dyn RequestVars,
    ) -> Result<ServerName<'static>, UpstreamTlsError> {
        match &self.name {
            NameSource::Static(name) => Ok(name.clone()),
            NameSource::Template(template) => {
                parse_name(template.expand(vars).map_err(UpstreamTlsError::Expand)?)
            }
            NameSource::ServiceDns => {
                let service = vars.var(&Var::ServiceName).filter(|s| !s.is_empty());
                let namespace = vars.var(&Var::Namespace).filter(|s| !s.is_empty());
                let (Some(service), Some(namespace)) = (service, namespace) else {
                    return Err(UpstreamTlsError::NoService);
                };
                parse_name(format!("{service}.{namespace}.svc"))
            }
        }
    }
}

/// Builds the configuration for `policy`. `secret` is the mirrored `proxy-ssl-secret`
/// (origin `namespace/name` for messages, and its data), `None` when the policy names none or
/// it was not found.
pub fn build(
    policy: &UpstreamTls,
    secret: Option<(&str, &BTreeMap<String, Vec<u8>>)>,
) -> Result<UpstreamTlsConfig, UpstreamTlsError> {
    let secret = match (&policy.secret, secret) {
        (Some(wanted), None) => {
            let name = match &wanted.namespace {
                Some(ns) => format!("{ns}/{}", wanted.name),
                None => wanted.name.clone(),
            };
            return Err(UpstreamTlsError::SecretNotFound(name));
        }
        // A Secret passed without being named is not used: the policy decides.
        (None, _) => None,
        (Some(_), Some(secret)) => Some(secret),
    };
    let name = match &policy.name {
        None => NameSource::ServiceDns,
        Some(template) if template.is_static() => {
            NameSource::Static(parse_name(template.as_str().to_owned())?)
        }
        Some(template) => NameSource::Template(template.clone()),
    };

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut feed = |part: &[u8]| {
        // Length-prefixed, so adjacent parts cannot run into each other.
        digest.update(&(part.len() as u64).to_be_bytes());
        digest.update(part);
    };
    feed(&[u8::from(policy.verify), u8::from(policy.server_name)]);

    let mut roots = None;
    let mut client = None;
    if let Some((origin, data)) = secret {
        feed(origin.as_bytes());
        let get = |key: &str| data.get(key).map(Vec::as_slice);
        let (crt, key, ca) = (get(CLIENT_CERT_KEY), get(CLIENT_KEY_KEY), get(CA_KEY));
        for part in [crt, key] {
            feed(part.unwrap_or_default());
            feed(&[u8::from(part.is_some())]);
        }
        client = match (crt, key) {
            (Some(crt), Some(key)) => Some(client_certificate(origin, crt, key, &provider)?),
            (Some(_), None) => return Err(missing(origin, CLIENT_CERT_KEY, CLIENT_KEY_KEY)),
            (None, Some(_)) => return Err(missing(origin, CLIENT_KEY_KEY, CLIENT_CERT_KEY)),
            (None, None) if ca.is_none() => {
                return Err(UpstreamTlsError::EmptySecret {
                    secret: origin.to_owned(),
                });
            }
            (None, None) => None,
        };
        // ca.crt only matters when verifying: a broken one is not an error otherwise.
        if policy.verify {
            let ca = ca.ok_or_else(|| UpstreamTlsError::VerifyWithoutCa {
                secret: origin.to_owned(),
            })?;
            feed(ca);
            roots = Some(root_store(origin, ca)?);
        }
    } else if policy.verify {
        return Err(UpstreamTlsError::VerifyWithoutSecret);
    }
    let identity = ConfigIdentity(
        digest
            .finish()
            .as_ref()
            .try_into()
            .map_err(|_| UpstreamTlsError::Tls("unexpected digest length".into()))?,
    );

    let tls = |e: rustls::Error| UpstreamTlsError::Tls(e.to_string());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls)?;
    let builder = match roots {
        Some(roots) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| UpstreamTlsError::Tls(e.to_string()))?;
            builder.with_webpki_verifier(verifier)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new())),
    };
    let client_cert = client.is_some();
    let mut config = match client {
        Some(key) => {
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)))
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = policy.server_name;
    Ok(UpstreamTlsConfig {
        identity,
        name,
        secret: secret.map(|(origin, _)| origin.to_owned()),
        verify: policy.verify,
        sni: policy.server_name,
        client_cert,
        config: Arc::new(config),
    })
}

fn missing(secret: &str, present: &'static str, missing: &'static str) -> UpstreamTlsError {
    UpstreamTlsError::MissingKey {
        secret: secret.to_owned(),
        present,
        missing,
    }
}

fn parse_name(name: String) -> Result<ServerName<'static>, UpstreamTlsError> {
    // A literal IPv6 address may be written in brackets, as in a Host header.
    let bare = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(inner) => inner.to_owned(),
        None => name.clone(),
    };
    ServerName::try_from(bare).map_err(|_| UpstreamTlsError::InvalidName { name })
}

/// Describes a PEM error without quoting the input (a line of `tls.key` is key material).
fn pem_reason(error: &pem::Error) -> &'static str {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "invalid base64",
        _ => "unreadable",
    }
}

fn certificates(
    secret: &str,
    key: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, UpstreamTlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UpstreamTlsError::Pem {
            secret: secret.to_owned(),
            key,
            reason: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(UpstreamTlsError::NoItems {
            secret: secret.to_owned(),
            key,
            what: "CERTIFICATE block",
        });
    }
    Ok(certs)
}

fn invalid_certificate(secret: &str, key: &'static str, reason: String) -> UpstreamTlsError {
    UpstreamTlsError::InvalidCertificate {
        secret: secret.to_owned(),
        key,
        reason,
    }
}

fn client_certificate(
    secret: &str,
    crt: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<rustls::sign::CertifiedKey, UpstreamTlsError> {
    let chain = certificates(secret, CLIENT_CERT_KEY, crt)?;
    if let Some(leaf) = chain.first() {
        ParsedCertificate::try_from(leaf)
            .map_err(|e| invalid_certificate(secret, CLIENT_CERT_KEY, e.to_string()))?;
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
        pem::Error::NoItemsFound => UpstreamTlsError::NoItems {
            secret: secret.to_owned(),
            key: CLIENT_KEY_KEY,
            what: "private key (PKCS#8, PKCS#1 or SEC1 PEM block)",
        },
        other => UpstreamTlsError::Pem {
            secret: secret.to_owned(),
            key: CLIENT_KEY_KEY,
            reason: pem_reason(&other),
        },
    })?;
    let signing = provider.key_provider.load_private_key(key).map_err(|_| {
        UpstreamTlsError::UnsupportedKey {
            secret: secret.to_owned(),
        }
    })?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // aws-lc-rs always knows the public key; "unknown" would only mean it cannot tell.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(UpstreamTlsError::KeyMismatch {
            secret: secret.to_owned(),
        }),
        Err(other) => Err(invalid_certificate(
            secret,
            CLIENT_CERT_KEY,
            other.to_string(),
        )),
    }
}

fn root_store(secret: &str, ca: &[u8]) -> Result<rustls::RootCertStore, UpstreamTlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(secret, CA_KEY, ca)? {
        roots
            .add(cert)
            .map_err(|e| invalid_certificate(secret, CA_KEY, e.to_string()))?;
    }
    Ok(roots)
}

/// Accepts any backend certificate (`proxy-ssl-verify: off`) but checks the handshake
/// signatures with the provider's algorithms, so the connection is still to the holder of the
/// key the certificate names.
#[derive(Debug)]
pub struct UnverifiedBackend {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl UnverifiedBackend {
    pub fn new() -> Self {
        UnverifiedBackend {
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
        }
    }
}

impl Default for UnverifiedBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl rustls::client::danger::ServerCertVerifier for UnverifiedBackend {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Test certificates, shared with the proxy's end-to-end tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    /// A test CA that issues server and client certificates.
    pub(crate) struct Ca {
        pub(crate) pem: String,
        pub(crate) der: Vec<u8>,
        issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    }

    /// A certificate and its key.
    pub(crate) struct Issued {
        pub(crate) cert_pem: String,
        pub(crate) key_pem: String,
    }

    impl Ca {
        pub(crate) fn new(name: &str) -> Ca {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            let issuer = rcgen::CertifiedIssuer::self_signed(
                params,
                rcgen::KeyPair::generate().expect("key"),
            )
            .expect("ca");
            Ca {
                pem: issuer.pem(),
                der: issuer.der().to_vec(),
                issuer,
            }
        }

        /// A leaf for `names` (none: a client certificate).
        pub(crate) fn issue(&self, names: &[&str]) -> Issued {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
            .expect("params");
            params.distinguished_name.push(
                rcgen::DnType::CommonName,
                *names.first().unwrap_or(&"client"),
            );
            let cert = params.signed_by(&key, &self.issuer).expect("sign");
            Issued {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            }
        }
    }

    /// Secret data from `(key, value)` pairs.
    pub(crate) fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Ca, data};
    use super::*;
    use sluice_crds::annotations::{SecretRef, StaticVars, TemplateKind};

    const ORIGIN: &str = "shop/backend-tls";

    fn policy(secret: bool, verify: bool, name: Option<&str>, server_name: bool) -> UpstreamTls {
        UpstreamTls {
            secret: secret.then(|| SecretRef {
                namespace: None,
                name: "backend-tls".into(),
            }),
            verify,
            name: name.map(|n| Template::parse(TemplateKind::Host, n).expect("template")),
            server_name,
        }
    }

    fn build_with(
        policy: &UpstreamTls,
        secret: Option<&BTreeMap<String, Vec<u8>>>,
    ) -> Result<UpstreamTlsConfig, UpstreamTlsError> {
        build(policy, secret.map(|d| (ORIGIN, d)))
    }

    #[test]
    fn build_table() {
        let ca = Ca::new("backend CA");
        let client = ca.issue(&[]);
        let other = ca.issue(&[]);
        let full = data(&[
            ("tls.crt", &client.cert_pem),
            ("tls.key", &client.key_pem),
            ("ca.crt", &ca.pem),
        ]);
        let pair = data(&[("tls.crt", &client.cert_pem), ("tls.key", &client.key_pem)]);
        let ca_only = data(&[("ca.crt", &ca.pem)]);
        let garbage_ca = data(&[("ca.crt", "not pem at all")]);
        let bad_base64_ca = data(&[(
            "ca.crt",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )]);
        let bad_der_ca = data(&[(
            "ca.crt",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )]);
        let bad_der_crt = data(&[
            (
                "tls.crt",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            ("tls.key", &client.key_pem),
        ]);
        let mismatch = data(&[("tls.crt", &client.cert_pem), ("tls.key", &other.key_pem)]);
        let crt_only = data(&[("tls.crt", &client.cert_pem)]);
        let key_only = data(&[("tls.key", &client.key_pem)]);
        let key_not_pem = data(&[("tls.crt", &client.cert_pem), ("tls.key", "nope")]);
        let empty = data(&[("other", "x")]);
        let secret = |secret: &str| secret.to_owned();

        type Data = BTreeMap<String, Vec<u8>>;
        type Want = Result<(bool, bool), UpstreamTlsError>;
        let cases: Vec<(&str, UpstreamTls, Option<&Data>, Want)> = vec![
            (
                "defaults: nothing to read",
                policy(false, false, None, false),
                None,
                Ok((false, false)),
            ),
            (
                "client certificate, not verified",
                policy(true, false, None, false),
                Some(&pair),
                Ok((true, false)),
            ),
            (
                "client certificate and CA, verified",
                policy(true, true, None, true),
                Some(&full),
                Ok((true, true)),
            ),
            (
                "CA only, verified",
                policy(true, true, None, false),
                Some(&ca_only),
                Ok((false, true)),
            ),
            (
                "an unused broken ca.crt is ignored",
                policy(true, false, None, false),
                Some(&garbage_ca),
                Ok((false, false)),
            ),
            (
                "Secret not mirrored",
                policy(true, false, None, false),
                None,
                Err(UpstreamTlsError::SecretNotFound("backend-tls".into())),
            ),
            (
                "verify without a Secret",
                policy(false, true, None, false),
                None,
                Err(UpstreamTlsError::VerifyWithoutSecret),
            ),
            (
                "verify without ca.crt",
                policy(true, true, None, false),
                Some(&pair),
                Err(UpstreamTlsError::VerifyWithoutCa {
                    secret: secret(ORIGIN),
                }),
            ),
            (
                "tls.crt without tls.key",
                policy(true, false, None, false),
                Some(&crt_only),
                Err(UpstreamTlsError::MissingKey {
                    secret: secret(ORIGIN),
                    present: "tls.crt",
                    missing: "tls.key",
                }),
            ),
            (
                "tls.key without tls.crt",
                policy(true, false, None, false),
                Some(&key_only),
                Err(UpstreamTlsError::MissingKey {
                    secret: secret(ORIGIN),
                    present: "tls.key",
                    missing: "tls.crt",
                }),
            ),
            (
                "nothing usable",
                policy(true, false, None, false),
                Some(&empty),
                Err(UpstreamTlsError::EmptySecret {
                    secret: secret(ORIGIN),
                }),
            ),
            (
                "ca.crt without PEM blocks",
                policy(true, true, None, false),
                Some(&garbage_ca),
                Err(UpstreamTlsError::NoItems {
                    secret: secret(ORIGIN),
                    key: "ca.crt",
                    what: "CERTIFICATE block",
                }),
            ),
            (
                "ca.crt with bad base64",
                policy(true, true, None, false),
                Some(&bad_base64_ca),
                Err(UpstreamTlsError::Pem {
                    secret: secret(ORIGIN),
                    key: "ca.crt",
                    reason: "invalid base64",
                }),
            ),
            (
                "tls.key without a key block",
                policy(true, false, None, false),
                Some(&key_not_pem),
                Err(UpstreamTlsError::NoItems {
                    secret: secret(ORIGIN),
                    key: "tls.key",
                    what: "private key (PKCS#8, PKCS#1 or SEC1 PEM block)",
                }),
            ),
            (
                "tls.key of another certificate",
                policy(true, false, None, false),
                Some(&mismatch),
                Err(UpstreamTlsError::KeyMismatch {
                    secret: secret(ORIGIN),
                }),
            ),
            (
                "a name with a port",
                policy(false, false, Some("backend.internal:8443"), true),
                None,
                Err(UpstreamTlsError::InvalidName {
                    name: "backend.internal:8443".into(),
                }),
            ),
        ];
        for (name, policy, secret, want) in cases {
            let got =
                build_with(&policy, secret).map(|c| (c.has_client_certificate(), c.verifies()));
            assert_eq!(got, want, "{name}");
        }
        // Undecodable DER: the error kind is fixed, the reason is rustls's.
        for (name, secret, key) in [
            ("ca.crt not a certificate", &bad_der_ca, "ca.crt"),
            ("tls.crt not a certificate", &bad_der_crt, "tls.crt"),
        ] {
            match build_with(&policy(true, true, None, false), Some(secret)) {
                Err(UpstreamTlsError::InvalidCertificate { key: k, .. }) => {
                    assert_eq!(k, key, "{name}")
                }
                Err(UpstreamTlsError::VerifyWithoutCa { .. }) if key == "tls.crt" => {
                    // No ca.crt: the client certificate is checked first, so this is not hit.
                    panic!("{name}: tls.crt must be checked before ca.crt");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn messages_name_the_secret_and_never_quote_its_data() {
        let marker = "c2VjcmV0IGtleSBtYXRlcmlhbA";
        let ca = Ca::new("ca");
        let client = ca.issue(&[]);
        let bad_key =
            format!("-----BEGIN PRIVATE KEY-----\n{marker}!!\n-----END PRIVATE KEY-----\n");
        let unended = format!("-----BEGIN PRIVATE KEY-----\n{marker}\n");
        for key in [bad_key, unended, format!("{marker}\n")] {
            let secret = data(&[("tls.crt", &client.cert_pem), ("tls.key", &key)]);
            let error = build_with(&policy(true, false, None, false), Some(&secret))
                .expect_err("broken key");
            let message = error.to_string();
            assert!(message.contains(ORIGIN), "{message}");
            assert!(message.contains("tls.key"), "{message}");
            assert!(!message.contains(marker), "{message}");
        }
        let config = build_with(
            &policy(true, false, None, false),
            Some(&data(&[
                ("tls.crt", &client.cert_pem),
                ("tls.key", &client.key_pem),
            ])),
        )
        .expect("config");
        let debug = format!("{config:?}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
        assert!(debug.contains(ORIGIN), "{debug}");
    }

    #[test]
    fn equality_is_by_source() {
        let ca = Ca::new("ca");
        let client = ca.issue(&[]);
        let rotated = ca.issue(&[]);
        let full = data(&[
            ("tls.crt", &client.cert_pem),
            ("tls.key", &client.key_pem),
            ("ca.crt", &ca.pem),
        ]);
        let other_ca = Ca::new("other");
        let full_other_ca = data(&[
            ("tls.crt", &client.cert_pem),
            ("tls.key", &client.key_pem),
            ("ca.crt", &other_ca.pem),
        ]);
        let rotated = data(&[
            ("tls.crt", &rotated.cert_pem),
            ("tls.key", &rotated.key_pem),
            ("ca.crt", &ca.pem),
        ]);
        let base = policy(true, true, None, false);
        let a = build_with(&base, Some(&full)).expect("a");
        let b = build_with(&base, Some(&full)).expect("b");
        assert!(!Arc::ptr_eq(a.client_config(), b.client_config()));
        assert_eq!(a, b, "built twice from the same source");
        assert_eq!(a.identity(), b.identity());

        let differs = |name: &str, other: Result<UpstreamTlsConfig, UpstreamTlsError>| {
            let other = other.expect(name);
            assert_ne!(a, other, "{name}");
            other
        };
        differs("rotated key", build_with(&base, Some(&rotated)));
        differs("other CA", build_with(&base, Some(&full_other_ca)));
        differs(
            "SNI on",
            build_with(&policy(true, true, None, true), Some(&full)),
        );
        differs(
            "not verified",
            build_with(&policy(true, false, None, false), Some(&full)),
        );
        differs("another Secret", build(&base, Some(("shop/other", &full))));
        let named = differs(
            "a name",
            build_with(&policy(true, true, Some("x.internal"), false), Some(&full)),
        );
        assert_eq!(
            named.identity(),
            a.identity(),
            "the name is not part of the client configuration"
        );
        // Unverified: ca.crt is not read, so it does not matter.
        let unverified = policy(true, false, None, false);
        assert_eq!(
            build_with(&unverified, Some(&full)).expect("one"),
            build_with(&unverified, Some(&full_other_ca)).expect("two"),
        );
    }

    #[test]
    fn client_config_flags() {
        for sni in [false, true] {
            let config = build_with(&policy(false, false, None, sni), None).expect("config");
            assert_eq!(config.client_config().enable_sni, sni);
            assert_eq!(config.sends_sni(), sni);
            // hyper-rustls's connector builder panics on a preset ALPN list.
            assert!(config.client_config().alpn_protocols.is_empty());
        }
    }

    #[test]
    fn server_name_table() {
        let vars = StaticVars(vec![
            (Var::ServiceName, "web".into()),
            (Var::Namespace, "shop".into()),
            (Var::Host, "app.example.com".into()),
            (Var::Header("x-bad".into()), "a b".into()),
        ]);
        let dns = |n: &str| Ok(ServerName::try_from(n.to_owned()).expect("name"));
        type Want = Result<ServerName<'static>, UpstreamTlsError>;
        let cases: Vec<(&str, Option<&str>, &StaticVars, Want)> = vec![
            (
                "default: the Service's DNS name",
                None,
                &vars,
                dns("web.shop.svc"),
            ),
            (
                "static",
                Some("secure.internal"),
                &vars,
                dns("secure.internal"),
            ),
            ("IPv4", Some("10.0.0.7"), &vars, dns("10.0.0.7")),
            ("IPv6 in brackets", Some("[fd00::7]"), &vars, dns("fd00::7")),
            (
                "template",
                Some("$service_name.$namespace.svc.cluster.local"),
                &vars,
                dns("web.shop.svc.cluster.local"),
            ),
            ("request host", Some("$host"), &vars, dns("app.example.com")),
            (
                "a value no host can have",
                Some("$http_x_bad"),
                &vars,
                Err(UpstreamTlsError::Expand(ExpandError::InvalidHost {
                    var: "$http_x_bad".into(),
                })),
            ),
            (
                "expands to nothing",
                Some("$http_x_missing"),
                &vars,
                Err(UpstreamTlsError::Expand(ExpandError::EmptyHost)),
            ),
        ];
        for (name, template, vars, want) in cases {
            let config = build_with(&policy(false, false, template, true), None).expect(name);
            assert_eq!(config.server_name(vars), want, "{name}");
        }
        let config = build_with(&policy(false, false, None, true), None).expect("config");
        assert_eq!(
            config.server_name(&StaticVars::default()),
            Err(UpstreamTlsError::NoService)
        );
    }
}
