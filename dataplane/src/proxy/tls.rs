//! TLS termination state: the self-signed certificate generated at start (served when the set
//! has no usable `defaultSslCertificate`), and one rustls [`ServerConfig`] per certificate,
//! built on first use and cached until the certificate or the TLS settings change.
//!
//! A config is chosen per connection after the ClientHello was read (the snapshot's
//! [`TlsPolicy`](crate::tls::TlsPolicy) for its server name), so every config serves exactly
//! one certificate. Caching by certificate, not by snapshot generation, keeps a config (and
//! its session cache, so resumption keeps working) across snapshot swaps that do not touch it,
//! such as endpoint changes; a rotated Secret is a new certificate, so the next handshake
//! builds a new config with it.
//!
//! A host with its own `ssl-ciphers` ([`Tls12Ciphers`]) gets a config of its own: rustls
//! offers what the provider holds, so the suites must be chosen when the config is built. The
//! cache key is the certificate and the selection, and entries neither used by the current
//! snapshot nor the fallbacks are dropped at the first handshake after a swap.
//!
//! A host with client certificates (`auth-tls-*`, [`ClientCa`]) gets a config that requests
//! one ([`RequestClientCert`]); the CA is part of the cache key the same way.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::ServerConfig;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use sluice_crds::dataplane_config::DataplaneConfig;
use sluice_crds::{CipherSuite, TlsProtocol};

use crate::model::{Certificate, ClientCa, Snapshot, Tls12Ciphers};

/// How long a client has from connecting to finishing the TLS handshake (ClientHello read
/// included). nginx's `ssl_handshake_timeout` is 60 s; a handshake needs one round trip, and a
/// short bound limits what idle half-open connections can hold.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN, in preference order: HTTP/2, then HTTP/1.1.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The source shown for the generated certificate.
pub const GENERATED_SOURCE: &str = "generated at start (self-signed)";

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("generating the self-signed default certificate: {0}")]
    Generate(String),
    #[error("building the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The rustls suite of a configured cipher suite.
fn suite(cipher: CipherSuite) -> SupportedCipherSuite {
    use aws_lc_rs::cipher_suite as cs;
    match cipher {
        CipherSuite::EcdheEcdsaAes128GcmSha256 => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheRsaAes128GcmSha256 => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheEcdsaAes256GcmSha384 => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheRsaAes256GcmSha384 => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheEcdsaChacha20Poly1305 => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        CipherSuite::EcdheRsaChacha20Poly1305 => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        CipherSuite::Tls13Aes128GcmSha256 => cs::TLS13_AES_128_GCM_SHA256,
        CipherSuite::Tls13Aes256GcmSha384 => cs::TLS13_AES_256_GCM_SHA384,
        CipherSuite::Tls13Chacha20Poly1305Sha256 => cs::TLS13_CHACHA20_POLY1305_SHA256,
    }
}

/// The aws-lc-rs provider restricted to the configured suites, in the configured order. As
/// nginx does, the list restricts TLS 1.3 only if it names a TLS 1.3 suite; otherwise every
/// TLS 1.3 suite stays, in the provider's order.
pub fn provider(config: &DataplaneConfig) -> CryptoProvider {
    let base = aws_lc_rs::default_provider();
    let names_tls13 = config.ssl_ciphers.iter().any(|c| c.is_tls13());
    let mut suites: Vec<SupportedCipherSuite> = Vec::new();
    if !names_tls13 {
        suites.extend(
            base.cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .copied(),
        );
    }
    suites.extend(config.ssl_ciphers.iter().map(|c| suite(*c)));
    CryptoProvider {
        cipher_suites: suites,
        ..base
    }
}

/// [`provider`] for a host: with its own `ssl-ciphers`, the set's TLS 1.3 suites then exactly
/// the host's TLS 1.2 suites, in its order (nginx's `ssl_ciphers` replaces the TLS 1.2 list
/// only).
pub fn host_provider(config: &DataplaneConfig, tls12: Option<&Tls12Ciphers>) -> CryptoProvider {
    let mut provider = provider(config);
    if let Some(tls12) = tls12 {
        provider
            .cipher_suites
            .retain(|s| s.version() == &rustls::version::TLS13);
        provider.cipher_suites.extend(
            tls12
                .suites()
                .iter()
                .filter(|c| !c.is_tls13())
                .map(|c| suite(*c)),
        );
    }
    provider
}

/// The configured protocol versions.
pub fn versions(config: &DataplaneConfig) -> Vec<&'static SupportedProtocolVersion> {
    config
        .ssl_protocols
        .iter()
        .map(|p| match p {
            TlsProtocol::Tls12 => &rustls::version::TLS12,
            TlsProtocol::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

/// [`versions`] for a host: an empty `ssl-ciphers` selection turns TLS 1.2 off.
pub fn host_versions(
    config: &DataplaneConfig,
    tls12: Option<&Tls12Ciphers>,
) -> Vec<&'static SupportedProtocolVersion> {
    let mut versions = versions(config);
    if tls12.is_some_and(|c| c.suites().is_empty()) {
        versions.retain(|v| v.version != rustls::ProtocolVersion::TLSv1_2);
    }
    versions
}

/// Requests a client certificate for a host with `auth-tls-*`, naming the CA's subjects so
/// clients pick a matching certificate, but lets the handshake finish without one or with one
/// that does not verify: only the handshake signatures are checked here (the client holds the
/// key). The chain is verified right after the handshake
/// ([`ClientCert::verify`](super::ClientCert::verify)) and refused per request, as nginx does,
/// so a client gets a 400 page or the `auth-tls-error-page` instead of a TLS alert, and
/// `optional_no_ca` still lets an unverified certificate through.
#[derive(Debug)]
pub struct RequestClientCert(pub Arc<ClientCa>);

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.verifier.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.verifier.supported_verify_schemes()
    }
}

/// A server config serving `certificate` with the configured versions and suites and ALPN
/// h2 / http/1.1.
pub fn server_config(
    config: &DataplaneConfig,
    certificate: &Certificate,
) -> Result<ServerConfig, rustls::Error> {
    host_server_config(config, certificate, None, None)
}

/// [`server_config`] for a host with its own `ssl-ciphers` (`None`: the set's) and client
/// certificates (`None`: none requested).
pub fn host_server_config(
    config: &DataplaneConfig,
    certificate: &Certificate,
    tls12: Option<&Tls12Ciphers>,
    client_ca: Option<&Arc<ClientCa>>,
) -> Result<ServerConfig, rustls::Error> {
    let versions = host_versions(config, tls12);
    if versions.is_empty() {
        // rustls would build a config no client can use; say why instead.
        return Err(rustls::Error::General(
            "ssl-ciphers turns TLS 1.2 off and the set's sslProtocols enable no other version"
                .to_owned(),
        ));
    }
    let builder = ServerConfig::builder_with_provider(Arc::new(host_provider(config, tls12)))
        .with_protocol_versions(&versions)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(Arc::new(RequestClientCert(ca.clone()))),
    };
    let mut server =
        builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certificate.key.clone())));
    server.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(server)
}

/// Generates the self-signed certificate served when the set has no default certificate
/// (ingress-nginx's "Fake Certificate"): ECDSA P-256, for `ingress.local`.
pub fn generate_certificate() -> Result<Certificate, TlsSetupError> {
    let error = |e: &dyn std::fmt::Display| TlsSetupError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(|e| error(&e))?;
    let mut params =
        rcgen::CertificateParams::new(vec!["ingress.local".to_owned()]).map_err(|e| error(&e))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Sluice Ingress Controller Default Certificate",
    );
    let cert = params.self_signed(&key).map_err(|e| error(&e))?;
    let der =
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| error(&e))?;
    let signing = aws_lc_rs::sign::any_supported_type(&der).map_err(|e| error(&e))?;
    Ok(Certificate {
        source: GENERATED_SOURCE.to_owned(),
        key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)),
    })
}

/// The configs built so far, valid for one `DataplaneConfig`.
#[derive(Default)]
struct Cache {
    config: Option<Arc<DataplaneConfig>>,
    /// The snapshot generation last pruned for.
    generation: Option<u64>,
    /// Keyed by the certificate's address, the host's `ssl-ciphers` and its client CA's
    /// address; the entry holds the certificate and the CA, so an address cannot be reused by
    /// another one while the entry exists.
    configs: HashMap<CacheKey, CacheEntry>,
}

type CacheKey = (usize, Option<Tls12Ciphers>, Option<usize>);

struct CacheEntry {
    certificate: Arc<Certificate>,
    client_ca: Option<Arc<ClientCa>>,
    server: Arc<ServerConfig>,
}

/// The `ssl-ciphers` of the host a connection for `server_name` is terminated as (`None`: the
/// set's suites). Same lookup as the certificate's ([`Snapshot::tls_policy`]).
pub fn tls12_ciphers<'a>(
    snapshot: &'a Snapshot,
    server_name: Option<&str>,
) -> Option<&'a Tls12Ciphers> {
    let host = snapshot.tls_host(server_name?)?;
    if host.passthrough.is_some() {
        return None;
    }
    host.terminate.as_ref()?.tls12_ciphers.as_ref()
}

/// TLS termination state shared by every HTTPS connection.
pub struct Tls {
    generated: Arc<Certificate>,
    cache: Mutex<Cache>,
}

impl Tls {
    /// Generates the fallback certificate.
    pub fn new() -> Result<Self, TlsSetupError> {
        Ok(Self::with_fallback(Arc::new(generate_certificate()?)))
    }

    /// Uses `generated` as the fallback certificate.
    pub fn with_fallback(generated: Arc<Certificate>) -> Self {
        Tls {
            generated,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The certificate served when neither a host's own nor the set's default applies.
    pub fn generated(&self) -> &Arc<Certificate> {
        &self.generated
    }

    /// The certificate a terminating policy serves: its own, else the set's default, else the
    /// generated one.
    pub fn certificate<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        own: Option<&'a Arc<Certificate>>,
    ) -> &'a Arc<Certificate> {
        own.or(snapshot.tls.default_certificate.as_ref())
            .unwrap_or(&self.generated)
    }

    /// The server config for `certificate`, a host's `tls12` ciphers (`None`: the set's) and
    /// the CA it requests client certificates for (`None`: none, see
    /// [`Snapshot::client_handshake`]) under `config`, from the cache when possible.
    ///
    /// If the host's ciphers cannot make a config with the set's versions (TLS 1.2 off for the
    /// host, only TLS 1.2 enabled set-wide), the set's suites are used for it. If the
    /// configured versions and suites cannot make a config (say, only TLS 1.2 enabled but only
    /// TLS 1.3 suites named), ingress-nginx's defaults are used instead, so the listener keeps
    /// serving; the operator validates the settings, this is the last guard. Fallbacks are
    /// cached like the rest, so each is logged once per certificate and settings. No fallback
    /// drops the client-certificate request.
    pub fn server_config(
        &self,
        snapshot: &Snapshot,
        config: &Arc<DataplaneConfig>,
        certificate: &Arc<Certificate>,
        tls12: Option<&Tls12Ciphers>,
        client_ca: Option<&Arc<ClientCa>>,
    ) -> Result<Arc<ServerConfig>, TlsSetupError> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !cache
            .config
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, config))
        {
            cache.configs.clear();
            cache.config = Some(config.clone());
        }
        if cache.generation != Some(snapshot.generation) {
            // Drop configs of certificates, cipher selections and client CAs the snapshot no
            // longer uses (deleted or rotated Secrets, changed annotations), once per snapshot.
            let pointer = |c: &Arc<Certificate>| Arc::as_ptr(c) as usize;
            let ca_pointer = |c: &Arc<ClientCa>| Arc::as_ptr(c) as usize;
            let live: HashSet<CacheKey> = snapshot
                .tls
                .exact
                .values()
                .chain(snapshot.tls.wildcard.values())
                .filter_map(|h| h.terminate.as_ref())
                .map(|t| {
                    let certificate = self.certificate(snapshot, t.certificate.as_ref());
                    let ca = t.client_auth.as_ref().and_then(|a| a.handshake());
                    (
                        pointer(certificate),
                        t.tls12_ciphers.clone(),
                        ca.map(|(ca, _)| ca_pointer(ca)),
                    )
                })
                .chain(
                    snapshot
                        .tls
                        .default_certificate
                        .as_ref()
                        .map(|c| (pointer(c), None, None)),
                )
                .chain(Some((pointer(&self.generated), None, None)))
                .collect();
            cache.configs.retain(|key, _| live.contains(key));
            cache.generation = Some(snapshot.generation);
        }
        let key = (
            Arc::as_ptr(certificate) as usize,
            tls12.cloned(),
            client_ca.map(|ca| Arc::as_ptr(ca) as usize),
        );
        if let Some(entry) = cache.configs.get(&key)
            && Arc::ptr_eq(&entry.certificate, certificate)
            && entry.client_ca.as_ref().map(Arc::as_ptr) == client_ca.map(Arc::as_ptr)
        {
            return Ok(entry.server.clone());
        }
        let set_wide = || match host_server_config(config, certificate, None, client_ca) {
            Ok(server) => Ok(server),
            Err(error) => {
                tracing::warn!(%error, "the TLS settings cannot be used; serving ingress-nginx's defaults");
                host_server_config(&DataplaneConfig::default(), certificate, None, client_ca)
            }
        };
        let server = match tls12 {
            None => set_wide()?,
            Some(tls12) => match host_server_config(config, certificate, Some(tls12), client_ca) {
                Ok(server) => server,
                Err(error) => {
                    tracing::warn!(
                        %error,
                        certificate = %certificate.source,
                        ssl_ciphers = ?tls12.suites(),
                        "a host's ssl-ciphers cannot be used with the set's TLS settings; serving the set's cipher suites for it"
                    );
                    set_wide()?
                }
            },
        };
        let server = Arc::new(server);
        cache.configs.insert(
            key,
            CacheEntry {
                certificate: certificate.clone(),
                client_ca: client_ca.cloned(),
                server: server.clone(),
            },
        );
        Ok(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Termination, TlsHost};

    #[test]
    fn cipher_lists_restrict_tls13_only_when_they_name_it() {
        let names = |config: &DataplaneConfig| -> Vec<String> {
            provider(config)
                .cipher_suites
                .iter()
                .map(|s| format!("{:?}", s.suite()))
                .collect()
        };
        let defaults = names(&DataplaneConfig::default());
        assert_eq!(defaults.len(), 9, "{defaults:?}");
        assert!(
            defaults[..3].iter().all(|s| s.starts_with("TLS13_")),
            "{defaults:?}"
        );
        assert_eq!(defaults[3], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");

        let config = DataplaneConfig {
            ssl_ciphers: vec![
                CipherSuite::Tls13Aes256GcmSha384,
                CipherSuite::EcdheRsaAes256GcmSha384,
            ],
            ..DataplaneConfig::default()
        };
        assert_eq!(
            names(&config),
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        let only13 = DataplaneConfig {
            ssl_protocols: vec![TlsProtocol::Tls13],
            ..DataplaneConfig::default()
        };
        assert_eq!(versions(&only13).len(), 1);
        assert_eq!(versions(&DataplaneConfig::default()).len(), 2);
    }

    #[test]
    fn configs_are_cached_per_certificate_and_follow_changes() {
        let tls = Tls::new().expect("generate");
        let own = Arc::new(generate_certificate().expect("cert"));
        let mut snapshot = Snapshot::default();
        snapshot.tls.exact.insert(
            "a.example".into(),
            TlsHost {
                host: "a.example".into(),
                terminate: Some(Termination {
                    certificate: Some(own.clone()),
                    source: crate::model::IngressRef::new("apps", "a"),
                    tls12_ciphers: None,
                    client_auth: None,
                }),
                passthrough: None,
            },
        );
        let config = Arc::new(DataplaneConfig::default());
        let a = tls
            .server_config(&snapshot, &config, &own, None, None)
            .expect("config");
        let b = tls
            .server_config(&snapshot, &config, &own, None, None)
            .expect("config");
        assert!(Arc::ptr_eq(&a, &b), "cached");
        assert_eq!(a.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let fallback = tls.certificate(&snapshot, None).clone();
        assert!(Arc::ptr_eq(&fallback, tls.generated()));
        let c = tls
            .server_config(&snapshot, &config, &fallback, None, None)
            .expect("config");
        assert!(!Arc::ptr_eq(&a, &c));

        // New TLS settings: new configs.
        let config2 = Arc::new(DataplaneConfig {
            ssl_protocols: vec![TlsProtocol::Tls13],
            ..DataplaneConfig::default()
        });
        let d = tls
            .server_config(&snapshot, &config2, &own, None, None)
            .expect("config");
        assert!(!Arc::ptr_eq(&a, &d));

        // A snapshot without the certificate prunes it.
        let mut next = Snapshot {
            generation: 1,
            ..Snapshot::default()
        };
        let _ = tls
            .server_config(&next, &config2, &fallback, None, None)
            .expect("config");
        assert_eq!(tls.cache.lock().expect("lock").configs.len(), 1);
        next.tls.default_certificate = Some(own.clone());
        assert!(Arc::ptr_eq(tls.certificate(&next, None), &own));

        // Settings rustls refuses fall back to the defaults instead of failing.
        let broken = Arc::new(DataplaneConfig {
            ssl_protocols: vec![TlsProtocol::Tls12],
            ssl_ciphers: vec![CipherSuite::Tls13Aes128GcmSha256],
            ..DataplaneConfig::default()
        });
        assert!(server_config(&broken, &own).is_err());
        assert!(tls.server_config(&next, &broken, &own, None, None).is_ok());
    }

    #[test]
    fn host_ciphers_get_their_own_cached_configs_until_unused() {
        let tls = Tls::new().expect("generate");
        let own = Arc::new(generate_certificate().expect("cert"));
        let aes128 = Tls12Ciphers::new(&[CipherSuite::EcdheEcdsaAes128GcmSha256]);
        let none = Tls12Ciphers::new(&[]);
        let host = |name: &str, tls12_ciphers: Option<Tls12Ciphers>| TlsHost {
            host: name.into(),
            terminate: Some(Termination {
                certificate: Some(own.clone()),
                source: crate::model::IngressRef::new("apps", "a"),
                tls12_ciphers,
                client_auth: None,
            }),
            passthrough: None,
        };
        let mut snapshot = Snapshot::default();
        snapshot
            .tls
            .exact
            .insert("a.example".into(), host("a.example", Some(aes128.clone())));
        snapshot
            .tls
            .exact
            .insert("b.example".into(), host("b.example", None));
        let config = Arc::new(DataplaneConfig::default());
        let get = |snapshot: &Snapshot, config: &Arc<DataplaneConfig>, c: Option<&Tls12Ciphers>| {
            tls.server_config(snapshot, config, &own, c, None)
                .expect("config")
        };
        let plain = get(&snapshot, &config, None);
        let restricted = get(&snapshot, &config, Some(&aes128));
        assert!(!Arc::ptr_eq(&plain, &restricted));
        // Equal selections (another Arc, same suites) share the config.
        let again = Tls12Ciphers::new(&[CipherSuite::EcdheEcdsaAes128GcmSha256]);
        assert!(Arc::ptr_eq(
            &restricted,
            &get(&snapshot, &config, Some(&again))
        ));
        assert_eq!(tls.cache.lock().expect("lock").configs.len(), 2);

        let suites = |c: Option<&Tls12Ciphers>| -> Vec<String> {
            host_provider(&config, c)
                .cipher_suites
                .iter()
                .map(|s| format!("{:?}", s.suite()))
                .collect()
        };
        assert_eq!(
            suites(Some(&aes128)),
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(suites(Some(&none)).len(), 3);
        assert_eq!(host_versions(&config, Some(&none)).len(), 1);
        assert_eq!(host_versions(&config, Some(&aes128)).len(), 2);

        // A swap that drops the selection drops its config; the set-wide one stays.
        let mut next = snapshot.clone();
        next.generation = 1;
        next.tls
            .exact
            .insert("a.example".into(), host("a.example", None));
        assert!(Arc::ptr_eq(&plain, &get(&next, &config, None)));
        assert_eq!(tls.cache.lock().expect("lock").configs.len(), 1);

        // TLS 1.2 off for a host while the set enables only TLS 1.2: refused, and the host is
        // served with the set's settings instead (cached, so logged once).
        let only12 = Arc::new(DataplaneConfig {
            ssl_protocols: vec![TlsProtocol::Tls12],
            ..DataplaneConfig::default()
        });
        assert!(host_server_config(&only12, &own, Some(&none), None).is_err());
        let mut strict = next.clone();
        strict.generation = 2;
        strict
            .tls
            .exact
            .insert("a.example".into(), host("a.example", Some(none.clone())));
        let fallback = get(&strict, &only12, Some(&none));
        assert!(Arc::ptr_eq(&fallback, &get(&strict, &only12, Some(&none))));
    }
}
