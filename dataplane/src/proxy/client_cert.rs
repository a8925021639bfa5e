//! Client-certificate authentication per host (`auth-tls-*`), as ingress-nginx's server blocks
//! do it with `ssl_verify_client`.
//!
//! The handshake of a host with client auth requests a certificate but never fails for it: the
//! rustls verifier ([`super::tls`]) only checks the handshake signature (possession of the
//! key). The chain is verified right after the handshake ([`ClientCert::verify`]) and the
//! verdict travels with the connection in [`ClientInfo::client_cert`]. [`check`] then decides
//! per request, as nginx does after its handshake: a 400 page (or the `auth-tls-error-page`
//! redirect) instead of a TLS alert the user cannot read, and `optional_no_ca` can still tell
//! the backend why a certificate did not verify.

use std::sync::Arc;

use base64::Engine;
use http::{HeaderName, HeaderValue, StatusCode};
use rustls::pki_types::{CertificateDer, UnixTime};
use sluice_crds::annotations::{RequestVars, VerifyClient, template::escape_component};

use super::{ClientInfo, ProxyError};
use crate::model::{ClientAuth, ClientCa};

/// `$ssl_client_escaped_cert`, with `auth-tls-pass-certificate-to-upstream`.
pub(super) const SSL_CLIENT_CERT: HeaderName = HeaderName::from_static("ssl-client-cert");
/// `$ssl_client_verify`: `SUCCESS`, `FAILED:<reason>` or `NONE`.
pub(super) const SSL_CLIENT_VERIFY: HeaderName = HeaderName::from_static("ssl-client-verify");
/// `$ssl_client_s_dn` (RFC 2253).
pub(super) const SSL_CLIENT_SUBJECT_DN: HeaderName =
    HeaderName::from_static("ssl-client-subject-dn");
/// `$ssl_client_i_dn` (RFC 2253).
pub(super) const SSL_CLIENT_ISSUER_DN: HeaderName = HeaderName::from_static("ssl-client-issuer-dn");

/// The client certificate of a connection whose handshake requested one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The CA the handshake requested a certificate for and the chain was verified against.
    pub ca: Arc<ClientCa>,
    /// The verify depth it was verified with.
    pub depth: u32,
    /// As sent, leaf first; empty when the client sent none.
    pub chain: Vec<CertificateDer<'static>>,
    pub verification: Verification,
}

/// The verdict on a connection's client certificate (nginx's `$ssl_client_verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// No certificate was sent.
    None,
    /// The chain leads to the CA within the depth, nothing expired or revoked.
    Success,
    /// Why not, in OpenSSL's words (what nginx puts after `FAILED:`).
    Failed(String),
}

impl ClientCert {
    /// Verifies `chain` (as the client sent it, leaf first) against `ca` at `now`. At most
    /// `depth` intermediates are used, in the order sent: as with OpenSSL's verify depth, a
    /// longer path then fails to find its issuer.
    pub fn verify(
        ca: &Arc<ClientCa>,
        depth: u32,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> ClientCert {
        let verification = match chain.split_first() {
            None => Verification::None,
            Some((leaf, rest)) => {
                let depth = usize::try_from(depth).unwrap_or(usize::MAX);
                let intermediates = &rest[..rest.len().min(depth)];
                match ca.verifier.verify_client_cert(leaf, intermediates, now) {
                    Ok(_) => Verification::Success,
                    Err(error) => Verification::Failed(failure_reason(&error, leaf)),
                }
            }
        };
        ClientCert {
            ca: ca.clone(),
            depth,
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
            verification,
        }
    }
}

/// OpenSSL's message for a verification error, so `ssl-client-verify` reads as with nginx.
fn failure_reason(error: &rustls::Error, leaf: &CertificateDer<'_>) -> String {
    use rustls::CertificateError as E;
    let rustls::Error::InvalidCertificate(error) = error else {
        return "certificate verify failed".to_owned();
    };
    match error {
        // webpki finds no issuer for a self-signed certificate; OpenSSL says why.
        E::UnknownIssuer | E::Other(_) => {
            let names = names(leaf);
            if names.is_some_and(|(subject, issuer)| subject == issuer) {
                "self-signed certificate"
            } else {
                "unable to get local issuer certificate"
            }
        }
        E::Expired | E::ExpiredContext { .. } => "certificate has expired",
        E::NotValidYet | E::NotValidYetContext { .. } => "certificate is not yet valid",
        E::Revoked => "certificate revoked",
        E::UnknownRevocationStatus => "unable to get certificate CRL",
        E::ExpiredRevocationList | E::ExpiredRevocationListContext { .. } => "CRL has expired",
        E::BadSignature => "certificate signature failure",
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => "unsupported certificate purpose",
        E::BadEncoding => "unable to decode certificate",
        _ => "certificate verify failed",
    }
    .to_owned()
}

/// Why a request is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `on` and no certificate: nginx's 496, answered as 400.
    NoCertificate,
    /// A certificate that did not verify (`on`, `optional`): nginx's 495, answered as 400.
    CertificateError { reason: String },
    /// Either of the above with `auth-tls-error-page`: 302 there.
    ErrorPage { location: HeaderValue },
    /// The connection's handshake did not request a certificate under this host's CA (it was
    /// opened for another host, or the CA changed since): 421, the client reconnects.
    Misdirected,
    /// The host's CA Secret is missing or unusable: 503, never served unchecked.
    Denied { reason: String },
}

impl Refusal {
    #[cfg(test)]
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Refusal::NoCertificate | Refusal::CertificateError { .. } => StatusCode::BAD_REQUEST,
            Refusal::ErrorPage { .. } => StatusCode::FOUND,
            Refusal::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Refusal::Denied { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// nginx's page titles for 496 and 495.
    pub(super) fn body(&self) -> &'static str {
        match self {
            Refusal::NoCertificate => "400 No required SSL certificate was sent\n",
            Refusal::CertificateError { .. } => "400 The SSL certificate error\n",
            Refusal::ErrorPage { .. } => "Redirecting\n",
            Refusal::Misdirected => "421 Misdirected Request\n",
            Refusal::Denied { .. } => "503 Service Unavailable\n",
        }
    }
}

impl From<Refusal> for ProxyError {
    fn from(refusal: Refusal) -> ProxyError {
        match refusal {
            Refusal::NoCertificate | Refusal::CertificateError { .. } => {
                ProxyError::ClientCertificate {
                    body: refusal.body(),
                }
            }
            Refusal::ErrorPage { location } => ProxyError::Redirect {
                location,
                status: StatusCode::FOUND,
            },
            Refusal::Misdirected => ProxyError::Misdirected,
            Refusal::Denied { reason } => ProxyError::PolicyDenied {
                reason: format!("auth-tls-secret: {reason}"),
            },
        }
    }
}

/// Decides a request for a host with client auth `auth` (`None`: none, nothing to do) on the
/// connection `client`. `Ok` holds the headers to set on the upstream request (replacing any
/// the client sent), as ingress-nginx's `proxy_set_header ssl-client-*`; `Err` the answer.
/// `vars` expands `auth-tls-error-page`.
///
/// Plain HTTP is not checked, as in nginx (it has no certificate to check; the host's TLS
/// redirect normally applies first), except that an unusable CA refuses every request.
pub(super) fn check(
    auth: Option<&ClientAuth>,
    client: &ClientInfo,
    vars: &dyn RequestVars,
) -> Result<Vec<(HeaderName, HeaderValue)>, Refusal> {
    let Some(auth) = auth else {
        return Ok(Vec::new());
    };
    let ca = match &auth.ca {
        Ok(ca) => ca,
        Err(reason) => {
            return Err(Refusal::Denied {
                reason: reason.clone(),
            });
        }
    };
    if !client.tls {
        return Ok(Vec::new());
    }
    if auth.mode == VerifyClient::Off {
        return Ok(vec![(SSL_CLIENT_VERIFY, HeaderValue::from_static("NONE"))]);
    }
    let cert = match &client.client_cert {
        Some(cert) if cert.ca == *ca && cert.depth == auth.depth => cert,
        _ => return Err(Refusal::Misdirected),
    };
    let refuse = |refusal: Refusal| {
        let location = auth
            .error_page
            .as_ref()
            .and_then(|page| page.expand(vars).ok())
            .and_then(|url| HeaderValue::try_from(url).ok());
        // A page that cannot be built for this request: the plain refusal.
        match location {
            Some(location) => Refusal::ErrorPage { location },
            None => refusal,
        }
    };
    match (&cert.verification, auth.mode) {
        (Verification::None, VerifyClient::On) => Err(refuse(Refusal::NoCertificate)),
        (Verification::Failed(reason), VerifyClient::On | VerifyClient::Optional) => {
            Err(refuse(Refusal::CertificateError {
                reason: reason.clone(),
            }))
        }
        _ => Ok(upstream_headers(cert, auth.pass_to_upstream)),
    }
}

/// nginx's `ssl-client-*` headers for `cert`; empty variables leave their header out.
fn upstream_headers(cert: &ClientCert, pass_certificate: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(4);
    let leaf = cert.chain.first();
    if pass_certificate && let Some(leaf) = leaf {
        // Percent-encoded PEM: only ASCII, a valid header value.
        if let Ok(value) = HeaderValue::try_from(escape_component(&pem(leaf))) {
            out.push((SSL_CLIENT_CERT, value));
        }
    }
    let verify = match &cert.verification {
        Verification::None => HeaderValue::from_static("NONE"),
        Verification::Success => HeaderValue::from_static("SUCCESS"),
        // Reasons are fixed ASCII strings.
        Verification::Failed(reason) => HeaderValue::try_from(format!("FAILED:{reason}"))
            .unwrap_or_else(|_| HeaderValue::from_static("FAILED")),
    };
    out.push((SSL_CLIENT_VERIFY, verify));
    if let Some((subject, issuer)) = leaf.and_then(|leaf| names(leaf)) {
        for (name, dn) in [
            (SSL_CLIENT_SUBJECT_DN, subject),
            (SSL_CLIENT_ISSUER_DN, issuer),
        ] {
            // RFC 2253 escaping leaves only printable ASCII.
            if !dn.is_empty()
                && let Ok(value) = HeaderValue::try_from(dn)
            {
                out.push((name, value));
            }
        }
    }
    out
}

/// A certificate as OpenSSL writes it: PEM, 64 base64 characters a line.
fn pem(der: &CertificateDer<'_>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Distinguished names, as nginx's `$ssl_client_s_dn` / `$ssl_client_i_dn` (OpenSSL's
// `X509_NAME_print_ex` with `XN_FLAG_RFC2253`): last RDN first, `,` between RDNs, `+` inside
// one, short attribute names, RFC 2253 escapes, bytes outside printable ASCII as `\XX`,
// unknown attributes as `oid=#<DER hex>`.

/// One DER element: tag, contents, the whole element, and what follows it.
struct Tlv<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
    rest: &'a [u8],
}

fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, mut after_len) = after_tag.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || after_len.len() < count {
            return None;
        }
        let (bytes, rest) = after_len.split_at(count);
        after_len = rest;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    if after_len.len() < len {
        return None;
    }
    let header = input.len() - after_len.len();
    Some(Tlv {
        tag,
        contents: &after_len[..len],
        whole: &input[..header + len],
        rest: &after_len[len..],
    })
}

/// The subject and issuer of a DER certificate, RFC 2253 strings.
fn names(der: &[u8]) -> Option<(String, String)> {
    const SEQUENCE: u8 = 0x30;
    let cert = tlv(der).filter(|t| t.tag == SEQUENCE)?;
    let tbs = tlv(cert.contents).filter(|t| t.tag == SEQUENCE)?;
    let mut rest = tbs.contents;
    let mut next = || {
        let element = tlv(rest)?;
        rest = element.rest;
        Some(element)
    };
    if next()?.tag == 0xa0 {
        // That was the [0] version; next comes the serial.
        next()?;
    }
    // signature algorithm, issuer, validity, subject
    let _signature = next()?;
    let issuer = next().filter(|t| t.tag == SEQUENCE)?;
    let _validity = next()?;
    let subject = next().filter(|t| t.tag == SEQUENCE)?;
    Some((rfc2253(subject.contents)?, rfc2253(issuer.contents)?))
}

/// A Name's RDN sequence (the contents of its SEQUENCE) as RFC 2253.
fn rfc2253(mut rdns: &[u8]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    while !rdns.is_empty() {
        let set = tlv(rdns).filter(|t| t.tag == 0x31)?;
        rdns = set.rest;
        let mut attributes = set.contents;
        let mut rdn = String::new();
        while !attributes.is_empty() {
            let attribute = tlv(attributes).filter(|t| t.tag == 0x30)?;
            attributes = attribute.rest;
            let oid = tlv(attribute.contents).filter(|t| t.tag == 0x06)?;
            let value = tlv(oid.rest)?;
            if !rdn.is_empty() {
                rdn.push('+');
            }
            let dotted = oid_string(oid.contents)?;
            match short_name(&dotted) {
                Some(name) => {
                    rdn.push_str(name);
                    rdn.push('=');
                    push_value(&mut rdn, &value);
                }
                None => {
                    rdn.push_str(&dotted);
                    rdn.push_str("=#");
                    push_hex(&mut rdn, value.whole);
                }
            }
        }
        parts.push(rdn);
    }
    parts.reverse();
    Some(parts.join(","))
}

fn oid_string(bytes: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == bytes.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// OpenSSL's short names of the usual attributes.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push_str(&format!("{b:02X}"));
    }
}

/// An attribute value: strings as UTF-8 with RFC 2253 escapes, anything else as `#<DER hex>`.
fn push_value(out: &mut String, value: &Tlv<'_>) {
    let text: Option<String> = match value.tag {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => std::str::from_utf8(value.contents).ok().map(str::to_owned),
        // TeletexString: Latin-1, as OpenSSL reads it
        0x14 => Some(value.contents.iter().map(|b| char::from(*b)).collect()),
        // BMPString: UTF-16BE
        0x1e => {
            let units: Vec<u16> = value
                .contents
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    };
    let Some(text) = text else {
        out.push('#');
        push_hex(out, value.whole);
        return;
    };
    let last = text.len().saturating_sub(1);
    for (i, c) in text.char_indices() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// A test PKI: a CA issuing client certificates (and intermediates), for the tests here and
/// the real-handshake tests.
#[cfg(test)]
pub(super) mod test_pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;

    pub(crate) struct Pki {
        pub ca_pem: String,
        issuer: Issuer<'static, KeyPair>,
        /// Certificates between this issuer and the root, nearest first.
        chain: Vec<CertificateDer<'static>>,
    }

    /// A client certificate with its chain (leaf first) and key.
    pub(crate) struct Client {
        pub chain: Vec<CertificateDer<'static>>,
        pub key: PrivateKeyDer<'static>,
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        // A fresh name: rcgen's default has a CN first, and the order shows in the DN.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Sluice Test");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
    }

    impl Pki {
        /// A self-signed root.
        pub(crate) fn new(cn: &str) -> Pki {
            let key = KeyPair::generate().expect("key");
            let params = ca_params(cn);
            let cert = params.self_signed(&key).expect("ca");
            Pki {
                ca_pem: cert.pem(),
                issuer: Issuer::new(params, key),
                chain: Vec::new(),
            }
        }

        /// An intermediate CA under this one.
        pub(crate) fn intermediate(&self, cn: &str) -> Pki {
            let key = KeyPair::generate().expect("key");
            let params = ca_params(cn);
            let cert = params.signed_by(&key, &self.issuer).expect("intermediate");
            let mut chain = vec![cert.der().clone()];
            chain.extend(self.chain.iter().cloned());
            Pki {
                ca_pem: cert.pem(),
                issuer: Issuer::new(params, key),
                chain,
            }
        }

        /// A client certificate `CN=<cn>,O=Sluice Test Clients`, with the intermediates.
        pub(crate) fn client(&self, cn: &str) -> Client {
            self.client_with(cn, |_| {})
        }

        pub(crate) fn client_with(
            &self,
            cn: &str,
            edit: impl FnOnce(&mut CertificateParams),
        ) -> Client {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Sluice Test Clients");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            edit(&mut params);
            let cert = params.signed_by(&key, &self.issuer).expect("client");
            let mut chain = vec![cert.der().clone()];
            chain.extend(self.chain.iter().cloned());
            Client {
                chain,
                key: PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
            }
        }
    }

    /// The parsed CA of `pki`, as translation builds it.
    pub(crate) fn client_ca(source: &str, pki: &Pki) -> Arc<ClientCa> {
        Arc::new(crate::tls::parse_client_ca(source, pki.ca_pem.as_bytes(), None).expect("ca"))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use sluice_crds::annotations::{StaticVars, Template, TemplateKind, Var};

    use super::test_pki::{Pki, client_ca};
    use super::*;

    fn auth(mode: VerifyClient, ca: &Arc<ClientCa>) -> ClientAuth {
        ClientAuth {
            mode,
            depth: 1,
            pass_to_upstream: false,
            error_page: None,
            ca: Ok(ca.clone()),
        }
    }

    fn client(cert: Option<ClientCert>) -> ClientInfo {
        let addr: SocketAddr = "127.0.0.1:443".parse().expect("addr");
        ClientInfo {
            peer: addr,
            local: addr,
            tls: true,
            proxy_protocol_src: None,
            server_name: Some(Arc::from("a.test")),
            client_cert: cert.map(Arc::new),
        }
    }

    fn header<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    /// The verdict's short form, for the table.
    fn verdict(result: &Result<Vec<(HeaderName, HeaderValue)>, Refusal>) -> String {
        match result {
            Ok(headers) => format!(
                "ok {}",
                header(headers, "ssl-client-verify").unwrap_or("(no verify header)")
            ),
            Err(refusal) => format!("{} {}", refusal.status().as_u16(), refusal.body().trim()),
        }
    }

    #[test]
    fn verify_modes_table() {
        let pki = Pki::new("Test CA");
        let other = Pki::new("Other CA");
        let ca = client_ca("apps/ca", &pki);
        let now = UnixTime::now();
        let good = pki.client("alice");
        let foreign = other.client("mallory");
        let expired = pki.client_with("old", |p| {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        });
        let valid = ClientCert::verify(&ca, 1, &good.chain, now);
        let none = ClientCert::verify(&ca, 1, &[], now);
        let bad = ClientCert::verify(&ca, 1, &foreign.chain, now);
        let old = ClientCert::verify(&ca, 1, &expired.chain, now);
        assert_eq!(valid.verification, Verification::Success);
        assert_eq!(none.verification, Verification::None);
        assert_eq!(
            bad.verification,
            Verification::Failed("unable to get local issuer certificate".into())
        );
        assert_eq!(
            old.verification,
            Verification::Failed("certificate has expired".into())
        );

        use VerifyClient::*;
        let cases: [(VerifyClient, Option<&ClientCert>, &str); 16] = [
            (On, Some(&valid), "ok SUCCESS"),
            (
                On,
                Some(&none),
                "400 400 No required SSL certificate was sent",
            ),
            (On, Some(&bad), "400 400 The SSL certificate error"),
            (On, Some(&old), "400 400 The SSL certificate error"),
            (Optional, Some(&valid), "ok SUCCESS"),
            (Optional, Some(&none), "ok NONE"),
            (Optional, Some(&bad), "400 400 The SSL certificate error"),
            (OptionalNoCa, Some(&valid), "ok SUCCESS"),
            (OptionalNoCa, Some(&none), "ok NONE"),
            (
                OptionalNoCa,
                Some(&bad),
                "ok FAILED:unable to get local issuer certificate",
            ),
            (
                OptionalNoCa,
                Some(&old),
                "ok FAILED:certificate has expired",
            ),
            // Not requested: nothing to check, the backend is told NONE.
            (Off, None, "ok NONE"),
            (Off, Some(&valid), "ok NONE"),
            // A connection whose handshake requested no certificate (opened for a host
            // without client auth): the client must reconnect.
            (On, None, "421 421 Misdirected Request"),
            (Optional, None, "421 421 Misdirected Request"),
            (OptionalNoCa, None, "421 421 Misdirected Request"),
        ];
        let vars = StaticVars::default();
        for (mode, cert, want) in cases {
            let result = check(Some(&auth(mode, &ca)), &client(cert.cloned()), &vars);
            assert_eq!(verdict(&result), want, "{mode:?} {cert:?}");
        }
    }

    #[test]
    fn no_policy_plain_http_broken_ca_and_another_ca() {
        let pki = Pki::new("Test CA");
        let ca = client_ca("apps/ca", &pki);
        let vars = StaticVars::default();
        let valid = ClientCert::verify(&ca, 1, &pki.client("alice").chain, UnixTime::now());
        // No client auth on the host.
        assert_eq!(check(None, &client(None), &vars), Ok(Vec::new()));
        // Plain HTTP is not checked, as in nginx.
        let plain = ClientInfo {
            tls: false,
            server_name: None,
            ..client(None)
        };
        let on = auth(VerifyClient::On, &ca);
        assert_eq!(check(Some(&on), &plain, &vars), Ok(Vec::new()));
        // An unusable CA refuses everything, plain HTTP included.
        let broken = ClientAuth {
            ca: Err("Secret apps/ca not found".into()),
            ..on.clone()
        };
        for info in [plain, client(Some(valid.clone()))] {
            assert_eq!(
                check(Some(&broken), &info, &vars),
                Err(Refusal::Denied {
                    reason: "Secret apps/ca not found".into()
                })
            );
        }
        // Verified under another CA (the connection predates a CA change, or another host's
        // bundle) or another depth: reconnect.
        let other = client_ca("apps/other", &Pki::new("Other CA"));
        let elsewhere = auth(VerifyClient::On, &other);
        assert_eq!(
            check(Some(&elsewhere), &client(Some(valid.clone())), &vars),
            Err(Refusal::Misdirected)
        );
        let deeper = ClientAuth { depth: 2, ..on };
        assert_eq!(
            check(Some(&deeper), &client(Some(valid.clone())), &vars),
            Err(Refusal::Misdirected)
        );
        // The same CA parsed again (a new snapshot) is the same CA.
        let again = client_ca("apps/ca", &pki);
        assert!(!Arc::ptr_eq(&again, &ca));
        assert!(
            check(
                Some(&auth(VerifyClient::On, &again)),
                &client(Some(valid)),
                &vars
            )
            .is_ok()
        );
    }

    #[test]
    fn headers_for_the_backend() {
        let pki = Pki::new("Test CA");
        let ca = client_ca("apps/ca", &pki);
        let alice = pki.client("alice");
        let valid = ClientCert::verify(&ca, 1, &alice.chain, UnixTime::now());
        let pass = ClientAuth {
            pass_to_upstream: true,
            ..auth(VerifyClient::On, &ca)
        };
        let headers = check(
            Some(&pass),
            &client(Some(valid.clone())),
            &StaticVars::default(),
        )
        .expect("allowed");
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "ssl-client-cert",
                "ssl-client-verify",
                "ssl-client-subject-dn",
                "ssl-client-issuer-dn"
            ]
        );
        assert_eq!(
            header(&headers, "ssl-client-subject-dn"),
            Some("CN=alice,O=Sluice Test Clients")
        );
        assert_eq!(
            header(&headers, "ssl-client-issuer-dn"),
            Some("CN=Test CA,O=Sluice Test")
        );
        let escaped = header(&headers, "ssl-client-cert").expect("cert");
        assert!(
            escaped.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
            "{escaped}"
        );
        assert!(escaped.ends_with("%0A-----END%20CERTIFICATE-----%0A"));
        assert!(!escaped.contains(['+', '/', '=', ' ']), "{escaped}");
        // The PEM round-trips to the leaf.
        let pem = pem(&alice.chain[0]);
        let parsed: Vec<CertificateDer<'_>> = {
            use rustls::pki_types::pem::PemObject;
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("pem")
        };
        assert_eq!(parsed, vec![alice.chain[0].clone()]);

        // Without pass-certificate-to-upstream: the rest only.
        let headers = check(
            Some(&auth(VerifyClient::On, &ca)),
            &client(Some(valid)),
            &StaticVars::default(),
        )
        .expect("allowed");
        assert_eq!(header(&headers, "ssl-client-cert"), None);
        assert_eq!(header(&headers, "ssl-client-verify"), Some("SUCCESS"));
        // optional and no certificate: only NONE.
        let none = ClientCert::verify(&ca, 1, &[], UnixTime::now());
        let headers = check(
            Some(&auth(VerifyClient::Optional, &ca)),
            &client(Some(none)),
            &StaticVars::default(),
        )
        .expect("allowed");
        assert_eq!(
            headers,
            vec![(SSL_CLIENT_VERIFY, HeaderValue::from_static("NONE"))]
        );
    }

    #[test]
    fn error_page_redirects_failures() {
        let pki = Pki::new("Test CA");
        let ca = client_ca("apps/ca", &pki);
        let foreign = Pki::new("Other CA").client("mallory");
        let bad = ClientCert::verify(&ca, 1, &foreign.chain, UnixTime::now());
        let none = ClientCert::verify(&ca, 1, &[], UnixTime::now());
        let page = Template::parse(
            TemplateKind::Url,
            "https://errors.test/cert?from=$escaped_request_uri",
        )
        .expect("template");
        let vars = StaticVars(vec![(Var::RequestUri, "/a?b=1".into())]);
        for mode in [VerifyClient::On, VerifyClient::Optional] {
            let with_page = ClientAuth {
                error_page: Some(page.clone()),
                ..auth(mode, &ca)
            };
            let result = check(Some(&with_page), &client(Some(bad.clone())), &vars);
            let Err(Refusal::ErrorPage { location }) = &result else {
                panic!("{mode:?}: {result:?}");
            };
            assert_eq!(location, "https://errors.test/cert?from=%2Fa%3Fb%3D1");
            assert_eq!(result.unwrap_err().status(), StatusCode::FOUND);
        }
        let on = ClientAuth {
            error_page: Some(page.clone()),
            ..auth(VerifyClient::On, &ca)
        };
        assert!(matches!(
            check(Some(&on), &client(Some(none.clone())), &vars),
            Err(Refusal::ErrorPage { .. })
        ));
        // optional without a certificate is not a failure.
        let optional = ClientAuth {
            error_page: Some(page),
            ..auth(VerifyClient::Optional, &ca)
        };
        assert!(check(Some(&optional), &client(Some(none)), &vars).is_ok());
        // Into the handler's error type.
        let error = ProxyError::from(Refusal::ErrorPage {
            location: HeaderValue::from_static("https://errors.test/"),
        });
        assert_eq!(error.status(), StatusCode::FOUND);
        assert_eq!(
            ProxyError::from(Refusal::NoCertificate).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ProxyError::from(Refusal::Denied { reason: "x".into() }).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn verify_depth_counts_intermediates() {
        let root = Pki::new("Root CA");
        let one = root.intermediate("Intermediate 1");
        let two = one.intermediate("Intermediate 2");
        let ca = client_ca("apps/root", &root);
        let now = UnixTime::now();
        let direct = root.client("direct");
        let via_one = one.client("one");
        let via_two = two.client("two");
        let cases = [
            (&direct, 1, true),
            (&via_one, 1, true),
            (&via_two, 1, false),
            (&via_two, 2, true),
            (&via_one, 10, true),
        ];
        for (client, depth, ok) in cases {
            let verified = ClientCert::verify(&ca, depth, &client.chain, now);
            assert_eq!(
                verified.verification == Verification::Success,
                ok,
                "depth {depth}, chain {}: {:?}",
                client.chain.len(),
                verified.verification
            );
        }
        // A self-signed client certificate, in OpenSSL's words.
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let own = params.self_signed(&key).expect("self-signed");
        let verified = ClientCert::verify(&ca, 1, std::slice::from_ref(own.der()), now);
        assert_eq!(
            verified.verification,
            Verification::Failed("self-signed certificate".into())
        );
    }

    #[test]
    fn distinguished_names_in_rfc2253() {
        let pki = Pki::new("Test CA");
        let tricky = pki.client_with("ignored", |p| {
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(rcgen::DnType::CountryName, "DE");
            dn.push(rcgen::DnType::OrganizationName, "Acme, Inc.");
            dn.push(rcgen::DnType::OrganizationalUnitName, " a+b ");
            dn.push(rcgen::DnType::CommonName, "Zoë #1 \"q\"");
            p.distinguished_name = dn;
        });
        let (subject, issuer) = names(&tricky.chain[0]).expect("names");
        assert_eq!(
            subject,
            "CN=Zo\\C3\\AB #1 \\\"q\\\",OU=\\ a\\+b\\ ,O=Acme\\, Inc.,C=DE"
        );
        assert_eq!(issuer, "CN=Test CA,O=Sluice Test");
        assert_eq!(names(b"\x30\x03\x02\x01\x01"), None);
        assert_eq!(names(b""), None);
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]).as_deref(),
            Some("1.2.840.113549")
        );
    }
}
