//! TLS decisions over a [`Snapshot`]: which policy a ClientHello gets, whether a request on a
//! TLS connection is misdirected (421), whether a plain-HTTP request is redirected to HTTPS,
//! and whether a response carries HSTS. Pure functions, table-tested below; the listener and
//! the request handler in [`crate::proxy`] only call them.
//!
//! Host lookup is the routing one (design.md, "Data plane"): lowercase, port and one trailing
//! dot stripped, exact host first, then the one-label wildcard (`*.foo.com` covers
//! `bar.foo.com`, not `foo.com`, not `a.bar.foo.com`).

use std::sync::Arc;

use crate::model::{Certificate, ClientAuth, ClientCa, IngressRef, Passthrough, Snapshot, TlsHost};
use crate::router::normalize_host;

/// Requests under this path are never redirected to HTTPS, so cert-manager's (and any ACME
/// client's) HTTP-01 challenges work on hosts that already have TLS, as in ingress-nginx.
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// ingress-nginx's `http-redirect-code` default: method and body are kept.
pub const REDIRECT_STATUS: u16 = 308;

/// What a TLS connection for one server name gets.
#[derive(Debug, Clone, Copy)]
pub enum TlsPolicy<'a> {
    /// Forward the connection undecrypted.
    Passthrough(&'a Passthrough),
    /// Terminate with this certificate; `None` is the default certificate (the set's, else the
    /// generated one).
    Terminate(Option<&'a Arc<Certificate>>),
}

impl TlsPolicy<'_> {
    /// The certificate's identity for comparing policies: the Secret it came from, `None` for
    /// the default certificate. A rotated Secret keeps its identity, so connections opened
    /// before a rotation keep working.
    fn certificate_identity(&self) -> Option<&str> {
        match self {
            TlsPolicy::Terminate(certificate) => certificate.map(|c| c.source.as_str()),
            TlsPolicy::Passthrough(_) => None,
        }
    }
}

impl Snapshot {
    /// The TLS settings for `name` (a server name or a Host header): exact, else one-label
    /// wildcard.
    pub fn tls_host(&self, name: &str) -> Option<&TlsHost> {
        let name = normalize_host(name);
        if name.is_empty() {
            return None;
        }
        if let Some(host) = self.tls.exact.get(name.as_ref()) {
            return Some(host);
        }
        let (label, parent) = name.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        self.tls.wildcard.get(parent)
    }

    /// The policy for a ClientHello with server name `sni` (none, or unknown: the default
    /// certificate).
    pub fn tls_policy(&self, sni: Option<&str>) -> TlsPolicy<'_> {
        let Some(host) = sni.and_then(|sni| self.tls_host(sni)) else {
            return TlsPolicy::Terminate(None);
        };
        if let Some(passthrough) = &host.passthrough {
            return TlsPolicy::Passthrough(passthrough);
        }
        TlsPolicy::Terminate(host.terminate.as_ref().and_then(|t| t.certificate.as_ref()))
    }

    /// True when a request for `host` must not be served on a TLS connection that was opened
    /// for `sni`: the host is passed through (its TLS belongs to its backend), or it is served
    /// with another certificate. HTTP/2 clients reuse a connection for every name its
    /// certificate covers, so without this check connection reuse could reach a host without
    /// going through that host's TLS policy. Clients answer 421 by retrying on a new
    /// connection (RFC 9110, section 15.5.20).
    pub fn misdirected(&self, sni: Option<&str>, host: &str) -> bool {
        let for_host = match host {
            // No Host (HTTP/1.0): nothing to compare, the catch-all answers.
            "" => return false,
            host => self.tls_policy(Some(host)),
        };
        if matches!(for_host, TlsPolicy::Passthrough(_)) {
            return true;
        }
        let for_sni = self.tls_policy(sni);
        if matches!(for_sni, TlsPolicy::Passthrough(_)) {
            // Never terminated, so no request should arrive; refuse rather than guess.
            return true;
        }
        // Same certificate but another ssl-ciphers selection is another TLS policy too: the
        // connection may have negotiated a suite the host refuses.
        // Likewise another client-certificate request (CA, depth): the connection's certificate
        // was requested and verified under the SNI host's.
        for_host.certificate_identity() != for_sni.certificate_identity()
            || self.tls12_ciphers(Some(host)) != self.tls12_ciphers(sni)
            || self.client_handshake(Some(host)) != self.client_handshake(sni)
    }

    /// The client-certificate authentication (`auth-tls-*`) of the host terminating `name` (a
    /// server name or a Host header), if it has one. The request handler checks it with
    /// `proxy::client_cert::check`.
    pub fn client_auth(&self, name: &str) -> Option<&ClientAuth> {
        let host = self.tls_host(name)?;
        if host.passthrough.is_some() {
            return None;
        }
        host.terminate.as_ref()?.client_auth.as_deref()
    }

    /// What a handshake for `name` requests of the client ([`ClientAuth::handshake`]).
    pub fn client_handshake(&self, name: Option<&str>) -> Option<(&Arc<ClientCa>, u32)> {
        self.client_auth(name?)?.handshake()
    }

    /// The `ssl-ciphers` selection of the host terminating `name`, if it has one.
    fn tls12_ciphers(&self, name: Option<&str>) -> Option<&crate::model::Tls12Ciphers> {
        self.tls_host(name?)?
            .terminate
            .as_ref()?
            .tls12_ciphers
            .as_ref()
    }

    /// Whether a plain-HTTP request for `host` and (normalised) `path`, answered by Ingress
    /// `source` (`None`: no Ingress rule matched), is redirected to HTTPS. As ingress-nginx:
    /// `force-ssl-redirect` always redirects; otherwise hosts with TLS redirect unless the
    /// answering Ingress says `ssl-redirect: "false"`; the ACME challenge path never does.
    pub fn https_redirect(&self, host: &str, path: &str, source: Option<&IngressRef>) -> bool {
        if path.starts_with(ACME_CHALLENGE_PREFIX) {
            return false;
        }
        let flags = source
            .and_then(|s| self.tls.redirects.get(s))
            .copied()
            .unwrap_or_default();
        flags.force_ssl_redirect || (flags.ssl_redirect && self.has_tls(host))
    }

    /// Whether `host` has TLS from an Ingress (so HTTPS responses for it carry HSTS).
    pub fn has_tls(&self, host: &str) -> bool {
        self.tls_host(host).is_some_and(|h| h.terminate.is_some())
    }
}

/// Why an `auth-tls-secret` gives no CA bundle; the `Display` goes into an Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCaError {
    #[error("the Secret has no ca.crt key")]
    MissingKey,
    #[error("ca.crt is not valid PEM: {0}")]
    Pem(String),
    #[error("ca.crt holds no CERTIFICATE block")]
    NoCertificate,
    #[error("a certificate in ca.crt cannot be used as a CA: {0}")]
    InvalidCertificate(String),
    #[error("ca.crl is not valid PEM: {0}")]
    CrlPem(String),
    #[error("the CA bundle cannot be used: {0}")]
    Verifier(String),
}

/// Parses an `auth-tls-secret`'s `ca.crt` (PEM, one or more CA certificates) and optional
/// `ca.crl` (PEM CRLs) into a [`ClientCa`] whose source is `source`. With CRLs, as nginx's
/// `ssl_crl`, every certificate of a chain needs a current CRL from its issuer.
pub fn parse_client_ca(
    source: &str,
    crt: &[u8],
    crl: Option<&[u8]>,
) -> Result<ClientCa, ClientCaError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
    let cas = CertificateDer::pem_slice_iter(crt)
        .collect::<Result<Vec<CertificateDer<'static>>, _>>()
        .map_err(|e| ClientCaError::Pem(e.to_string()))?;
    if cas.is_empty() {
        return Err(ClientCaError::NoCertificate);
    }
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| ClientCaError::InvalidCertificate(e.to_string()))?;
    }
    let crls = match crl {
        None => Vec::new(),
        Some(crl) => CertificateRevocationListDer::pem_slice_iter(crl)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientCaError::CrlPem(e.to_string()))?,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(crls)
            // OpenSSL refuses a CRL past its nextUpdate; so does nginx.
            .enforce_revocation_expiration()
            // A missing certificate is decided per request, by verify mode.
            .allow_unauthenticated()
            .build()
            .map_err(|e| ClientCaError::Verifier(e.to_string()))?;
    Ok(ClientCa {
        source: source.to_owned(),
        pem: crt.to_vec(),
        crl: crl.map(<[u8]>::to_vec).unwrap_or_default(),
        verifier,
    })
}

/// The `Location` of an HTTPS redirect: `https://<host>[:port]<request target>`, with the
/// host's port replaced by `external_https_port` (left out when 443), as nginx's
/// `https://$host$request_uri`. `host` is the request's (already validated) Host.
pub fn redirect_location(host: &str, external_https_port: u16, path_and_query: &str) -> String {
    let host = normalize_host(host);
    let path_and_query = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    if external_https_port == 443 {
        format!("https://{host}{path_and_query}")
    } else {
        format!("https://{host}:{external_https_port}{path_and_query}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::{
        Backend, PortRef, RedirectFlags, ServiceRef, Termination, TlsHost, TlsTable,
    };

    fn certificate(source: &str) -> Arc<Certificate> {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["test.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("der");
        let signing =
            rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).expect("signing key");
        Arc::new(Certificate {
            source: source.to_owned(),
            key: Arc::new(rustls::sign::CertifiedKey::new(
                vec![cert.der().clone()],
                signing,
            )),
        })
    }

    fn ingress(name: &str) -> IngressRef {
        IngressRef::new("apps", name)
    }

    fn terminate(host: &str, certificate: Option<Arc<Certificate>>, source: &str) -> TlsHost {
        TlsHost {
            host: host.to_owned(),
            terminate: Some(Termination {
                certificate,
                source: ingress(source),
                tls12_ciphers: None,
                client_auth: None,
            }),
            passthrough: None,
        }
    }

    fn passthrough(host: &str) -> TlsHost {
        TlsHost {
            host: host.to_owned(),
            terminate: None,
            passthrough: Some(Passthrough {
                backend: Arc::new(Backend::Service {
                    service: ServiceRef {
                        namespace: "apps".into(),
                        name: "pass".into(),
                        port: PortRef::Number(443),
                    },
                    endpoints: Arc::from(Vec::new()),
                }),
                source: ingress("pass"),
            }),
        }
    }

    /// a.example (cert A), b.example (cert B), *.wild.example (cert W), c.example (TLS with
    /// the default certificate), pass.example (passthrough), shared.example (cert A again,
    /// another Ingress), plain.example with no TLS, and Ingress `no-redirect` opting out.
    fn snapshot() -> Snapshot {
        let (a, b, w) = (
            certificate("apps/a"),
            certificate("apps/b"),
            certificate("apps/w"),
        );
        let exact: HashMap<String, TlsHost> = [
            terminate("a.example", Some(a.clone()), "a"),
            terminate("b.example", Some(b), "b"),
            terminate("c.example", None, "c"),
            terminate("shared.example", Some(a.clone()), "shared"),
            {
                // Cert A again, but with its own ssl-ciphers.
                let mut strict = terminate("strict.example", Some(a), "strict");
                if let Some(t) = strict.terminate.as_mut() {
                    t.tls12_ciphers = Some(crate::model::Tls12Ciphers::new(&[]));
                }
                strict
            },
            passthrough("pass.example"),
        ]
        .into_iter()
        .map(|h| (h.host.clone(), h))
        .collect();
        let wildcard = HashMap::from([(
            "wild.example".to_owned(),
            terminate("*.wild.example", Some(w), "w"),
        )]);
        Snapshot {
            tls: TlsTable {
                exact,
                wildcard,
                default_certificate: None,
                redirects: [
                    (
                        ingress("no-redirect"),
                        RedirectFlags {
                            ssl_redirect: false,
                            force_ssl_redirect: false,
                        },
                    ),
                    (
                        ingress("forced"),
                        RedirectFlags {
                            ssl_redirect: true,
                            force_ssl_redirect: true,
                        },
                    ),
                ]
                .into(),
            },
            ..Snapshot::default()
        }
    }

    fn source_of(policy: TlsPolicy<'_>) -> String {
        match policy {
            TlsPolicy::Passthrough(p) => format!("passthrough {}", p.source),
            TlsPolicy::Terminate(Some(c)) => c.source.clone(),
            TlsPolicy::Terminate(None) => "default".to_owned(),
        }
    }

    #[test]
    fn certificate_selection_by_server_name() {
        let snapshot = snapshot();
        let cases = [
            (Some("a.example"), "apps/a"),
            (Some("A.Example."), "apps/a"),
            (Some("b.example"), "apps/b"),
            (Some("x.wild.example"), "apps/w"),
            // One label only.
            (Some("x.y.wild.example"), "default"),
            (Some("wild.example"), "default"),
            (Some("c.example"), "default"),
            (Some("unknown.example"), "default"),
            (None, "default"),
            (Some(""), "default"),
            (Some(".wild.example"), "default"),
            (Some("pass.example"), "passthrough apps/pass"),
        ];
        for (sni, want) in cases {
            assert_eq!(source_of(snapshot.tls_policy(sni)), want, "{sni:?}");
        }
    }

    #[test]
    fn misdirected_requests_table() {
        let snapshot = snapshot();
        let cases = [
            // (SNI, Host, 421?)
            (Some("a.example"), "a.example", false),
            (Some("a.example"), "A.EXAMPLE:443", false),
            // Same certificate (same Secret) on another host: coalescing is fine.
            (Some("a.example"), "shared.example", false),
            // Another certificate.
            (Some("a.example"), "b.example", true),
            // The same certificate under another ssl-ciphers selection.
            (Some("a.example"), "strict.example", true),
            (Some("strict.example"), "shared.example", true),
            (Some("strict.example"), "strict.example", false),
            (Some("a.example"), "x.wild.example", true),
            // The passthrough host's TLS belongs to its backend.
            (Some("a.example"), "pass.example", true),
            (None, "pass.example", true),
            (Some("unknown.example"), "pass.example:443", true),
            // Default certificate on both sides.
            (Some("unknown.example"), "plain.example", false),
            (Some("c.example"), "plain.example", false),
            (None, "plain.example", false),
            // A host with its own certificate, reached without SNI or via an unknown name.
            (None, "a.example", true),
            (Some("plain.example"), "a.example", true),
            (Some("a.example"), "plain.example", true),
            (Some("x.wild.example"), "y.wild.example", false),
            (Some("a.example"), "", false),
        ];
        for (sni, host, want) in cases {
            assert_eq!(snapshot.misdirected(sni, host), want, "{sni:?} -> {host:?}");
        }
    }

    fn client_ca(source: &str) -> Arc<ClientCa> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("ca");
        Arc::new(parse_client_ca(source, cert.pem().as_bytes(), None).expect("ca"))
    }

    #[test]
    fn misdirected_by_client_auth() {
        use sluice_crds::annotations::VerifyClient;
        let mut snapshot = snapshot();
        let (ca, other) = (client_ca("apps/ca"), client_ca("apps/other"));
        let a = snapshot.tls.exact["a.example"].clone();
        let with = |host: &str, mode, depth, ca: Result<Arc<ClientCa>, String>| {
            let mut h = a.clone();
            h.host = host.to_owned();
            if let Some(t) = h.terminate.as_mut() {
                t.client_auth = Some(Arc::new(ClientAuth {
                    mode,
                    depth,
                    pass_to_upstream: false,
                    error_page: None,
                    ca,
                }));
            }
            (host.to_owned(), h)
        };
        // All with certificate A, as a.example and shared.example.
        snapshot.tls.exact.extend([
            with("on.example", VerifyClient::On, 1, Ok(ca.clone())),
            with(
                "optional.example",
                VerifyClient::Optional,
                1,
                Ok(ca.clone()),
            ),
            with("deep.example", VerifyClient::On, 2, Ok(ca.clone())),
            with("other.example", VerifyClient::On, 1, Ok(other)),
            with("off.example", VerifyClient::Off, 1, Ok(ca.clone())),
            with("broken.example", VerifyClient::On, 1, Err("missing".into())),
            // A rotated bundle under the same Secret: another CA.
            with(
                "again.example",
                VerifyClient::On,
                1,
                Ok(client_ca("apps/ca")),
            ),
        ]);
        let cases = [
            (Some("a.example"), "shared.example", false),
            (Some("a.example"), "on.example", true),
            (Some("on.example"), "a.example", true),
            (Some("on.example"), "on.example", false),
            // Same CA and depth: one handshake fits both; the request check applies each mode.
            (Some("on.example"), "optional.example", false),
            (Some("on.example"), "deep.example", true),
            (Some("on.example"), "other.example", true),
            (Some("on.example"), "again.example", true),
            // `off` and an unusable CA request no certificate, like hosts without client auth.
            (Some("a.example"), "off.example", false),
            (Some("a.example"), "broken.example", false),
            (Some("on.example"), "off.example", true),
            (None, "on.example", true),
        ];
        for (sni, host, want) in cases {
            assert_eq!(snapshot.misdirected(sni, host), want, "{sni:?} -> {host:?}");
        }
        assert!(snapshot.client_auth("optional.example").is_some());
        assert!(snapshot.client_auth("a.example").is_none());
        assert!(snapshot.client_auth("pass.example").is_none());
    }

    #[test]
    fn https_redirect_table() {
        let snapshot = snapshot();
        let (no_redirect, forced, a) = (ingress("no-redirect"), ingress("forced"), ingress("a"));
        let cases = [
            ("a.example", "/", Some(&a), true),
            ("a.example:80", "/x", Some(&a), true),
            ("x.wild.example", "/", None, true),
            ("c.example", "/", None, true),
            // The ACME challenge stays plain HTTP.
            (
                "a.example",
                "/.well-known/acme-challenge/token",
                Some(&a),
                false,
            ),
            (
                "plain.example",
                "/.well-known/acme-challenge/token",
                Some(&forced),
                false,
            ),
            ("a.example", "/.well-known/acme-challengex", Some(&a), true),
            // Opted out.
            ("a.example", "/", Some(&no_redirect), false),
            // No TLS, no redirect, unless forced.
            ("plain.example", "/", Some(&a), false),
            ("plain.example", "/", Some(&forced), true),
            ("plain.example", "/", None, false),
            // Passthrough only: no TLS section, no redirect.
            ("pass.example", "/", None, false),
        ];
        for (host, path, source, want) in cases {
            assert_eq!(
                snapshot.https_redirect(host, path, source),
                want,
                "{host}{path} from {source:?}"
            );
        }
    }

    #[test]
    fn hsts_hosts() {
        let snapshot = snapshot();
        assert!(snapshot.has_tls("a.example"));
        assert!(snapshot.has_tls("q.wild.example"));
        assert!(snapshot.has_tls("c.example"));
        assert!(!snapshot.has_tls("plain.example"));
        assert!(!snapshot.has_tls("pass.example"));
    }

    #[test]
    fn redirect_locations() {
        let cases = [
            ("foo.bar.com", 443, "/x?y=1", "https://foo.bar.com/x?y=1"),
            ("Foo.Bar.com:8080", 443, "/", "https://foo.bar.com/"),
            ("foo.bar.com", 8443, "/a", "https://foo.bar.com:8443/a"),
            ("foo.bar.com.", 443, "", "https://foo.bar.com/"),
            ("[::1]:80", 443, "/", "https://[::1]/"),
        ];
        for (host, port, target, want) in cases {
            assert_eq!(redirect_location(host, port, target), want, "{host}");
        }
    }
}
