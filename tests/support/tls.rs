//! TLS for integration tests: a throwaway CA issuing server certificates, TLS Secrets and
//! their mirrors in the set's namespace exactly as `sluice_crds::mirror` specifies (so data
//! plane tests do not depend on the operator), and TLS clients (HTTP/1.1 and HTTP/2) that
//! report the certificate the server presented.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use sluice_crds::mirror::mirror_name;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A certificate and its private key, PEM and DER.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

/// A CA that signs server certificates; clients trust only its certificate.
pub struct TestCa {
    pub cert_der: Vec<u8>,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate()?)?;
        Ok(Self {
            cert_der: issuer.der().to_vec(),
            issuer,
        })
    }

    /// A server certificate for `names` (DNS names, `*.` wildcards allowed), with a fresh key.
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<Issued> {
        let key = rcgen::KeyPair::generate()?;
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        })
    }
}

fn tls_data(issued: &Issued) -> serde_json::Value {
    json!({"tls.crt": issued.cert_pem, "tls.key": issued.key_pem})
}

/// Creates or replaces (server-side apply) TLS Secret `namespace/name`; returns its
/// resourceVersion.
pub async fn apply_tls_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    issued: &Issued,
) -> anyhow::Result<String> {
    apply_secret(
        client,
        namespace,
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": tls_data(issued),
        }),
    )
    .await
}

/// Creates or replaces the mirror of `origin_namespace/origin_name` for set
/// `set_namespace/set` holding `data` (a JSON map of string values), as the operator would:
/// named by [`mirror_name`], labelled with the set's labels and [`MIRROR_LABEL`], annotated with
/// the origin and its resourceVersion.
pub async fn apply_mirror_data(
    client: &kube::Client,
    set_namespace: &str,
    set: &str,
    origin_namespace: &str,
    origin_name: &str,
    origin_version: &str,
    data: serde_json::Value,
) -> anyhow::Result<String> {
    apply_mirror_typed(
        client,
        "kubernetes.io/tls",
        set_namespace,
        set,
        origin_namespace,
        origin_name,
        origin_version,
        data,
    )
    .await
}

/// [`apply_mirror_data`] for a Secret of another type (`Opaque` for `auth-secret`s).
#[allow(clippy::too_many_arguments)]
pub async fn apply_mirror_typed(
    client: &kube::Client,
    type_: &str,
    set_namespace: &str,
    set: &str,
    origin_namespace: &str,
    origin_name: &str,
    origin_version: &str,
    data: serde_json::Value,
) -> anyhow::Result<String> {
    apply_secret(
        client,
        set_namespace,
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": crate::config_map::mirror_metadata(
                set_namespace, set, origin_namespace, origin_name, origin_version,
            ),
            "stringData": data,
        }),
    )
    .await
}

/// Creates TLS Secret `origin_namespace/origin_name` and its mirror for the set; returns the
/// mirror's name.
pub async fn apply_tls_secret_and_mirror(
    client: &kube::Client,
    set_namespace: &str,
    set: &str,
    origin_namespace: &str,
    origin_name: &str,
    issued: &Issued,
) -> anyhow::Result<String> {
    let version = apply_tls_secret(client, origin_namespace, origin_name, issued).await?;
    apply_mirror_data(
        client,
        set_namespace,
        set,
        origin_namespace,
        origin_name,
        &version,
        tls_data(issued),
    )
    .await?;
    Ok(mirror_name(set, origin_namespace, origin_name))
}

async fn apply_secret(
    client: &kube::Client,
    namespace: &str,
    secret: serde_json::Value,
) -> anyhow::Result<String> {
    let name = secret["metadata"]["name"]
        .as_str()
        .context("secret name")?
        .to_owned();
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let applied = api
        .patch(
            &name,
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(secret),
        )
        .await
        .with_context(|| format!("applying Secret {namespace}/{name}"))?;
    Ok(applied.metadata.resource_version.unwrap_or_default())
}

/// How a TLS client checks the server.
#[derive(Debug, Clone)]
pub enum Trust<'a> {
    /// Only certificates issued by this CA (DER), valid for the server name.
    Ca(&'a [u8]),
    /// Anything: for tests that only compare the presented certificate.
    Any,
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connection to `addr` with SNI `server_name`, offering `alpn`. Returns the stream and
/// the DER of the leaf certificate the server presented.
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    server_name: &str,
    trust: Trust<'_>,
    alpn: &[&[u8]],
) -> anyhow::Result<(TlsStream<TcpStream>, Vec<u8>)> {
    tls_connect_as(addr, server_name, trust, alpn, None).await
}

/// [`tls_connect`] presenting `client` (certificate and key) when the server asks for one.
pub async fn tls_connect_as(
    addr: std::net::SocketAddr,
    server_name: &str,
    trust: Trust<'_>,
    alpn: &[&[u8]],
    client: Option<&Issued>,
) -> anyhow::Result<(TlsStream<TcpStream>, Vec<u8>)> {
    crate::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match trust {
        Trust::Ca(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.to_vec().into())?;
            builder.with_root_certificates(roots)
        }
        Trust::Any => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
    };
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
                .map_err(|e| anyhow::anyhow!("client key: {e}"))?;
            builder.with_client_auth_cert(vec![issued.cert_der.clone().into()], key)?
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let name = ServerName::try_from(server_name.to_owned())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {addr} for {server_name}"))?;
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    Ok((tls, peer))
}

/// What one HTTPS request returned.
#[derive(Debug)]
pub struct HttpsResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The leaf certificate the server presented.
    pub peer: Vec<u8>,
    pub version: http::Version,
}

/// One HTTP/1.1 GET over a new TLS connection with SNI `server_name` and Host `host`.
pub async fn https_get_h1(
    addr: std::net::SocketAddr,
    server_name: &str,
    host: &str,
    path: &str,
    trust: Trust<'_>,
) -> anyhow::Result<HttpsResponse> {
    https_get_h1_as(addr, server_name, host, path, trust, None).await
}

/// [`https_get_h1`] presenting the client certificate `client`.
pub async fn https_get_h1_as(
    addr: std::net::SocketAddr,
    server_name: &str,
    host: &str,
    path: &str,
    trust: Trust<'_>,
    client: Option<&Issued>,
) -> anyhow::Result<HttpsResponse> {
    let (tls, peer) = tls_connect_as(addr, server_name, trust, &[b"http/1.1"], client).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    Ok(HttpsResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
        peer,
        version: parts.version,
    })
}

/// An HTTP/2 connection (ALPN h2) with SNI `server_name`: send requests for any authority on
/// it with [`h2_get`].
pub struct H2Connection {
    sender: hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    pub peer: Vec<u8>,
}

pub async fn h2_connect(
    addr: std::net::SocketAddr,
    server_name: &str,
    trust: Trust<'_>,
) -> anyhow::Result<H2Connection> {
    let (tls, peer) = tls_connect(addr, server_name, trust, &[b"h2"]).await?;
    anyhow::ensure!(
        tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        "the server did not choose h2 by ALPN"
    );
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(H2Connection { sender, peer })
}

impl H2Connection {
    /// GET `https://<authority><path>` on this connection.
    pub async fn get(&mut self, authority: &str, path: &str) -> anyhow::Result<HttpsResponse> {
        let req = Request::get(format!("https://{authority}{path}")).body(Empty::<Bytes>::new())?;
        let resp = self.sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        Ok(HttpsResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await?.to_bytes(),
            peer: self.peer.clone(),
            version: parts.version,
        })
    }
}

/// A plain HTTP/1.1 GET returning status, headers and body (for redirects).
pub async fn http_get_full(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
) -> anyhow::Result<(u16, http::HeaderMap, Bytes)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    Ok((
        parts.status.as_u16(),
        parts.headers,
        body.collect().await?.to_bytes(),
    ))
}
