//! Real HTTP and TLS echo backends on the test network's private range (10.244.128.0/17).
//!
//! Each backend answers every request with JSON naming itself and what it saw (method, host,
//! path, headers), so a test can tell which backend served a request and how it was proxied.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What a backend reports about one request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Echo {
    pub backend: String,
    pub method: String,
    pub host: String,
    pub path: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub tls: bool,
    /// `HTTP/1.1` or `HTTP/2.0`, as the backend received the request.
    #[serde(default)]
    pub version: String,
}

/// The certificate a TLS backend serves, for clients that verify it.
#[derive(Debug, Clone)]
pub struct BackendTls {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
}

/// A running backend; stops when dropped.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: Option<BackendTls>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

static NEXT_ADDR: AtomicU32 = AtomicU32::new(0);

/// A fresh address in 10.244.128.0/17, distinct per process and per call (two test binaries
/// never run at once, but tests in one binary do).
pub fn next_backend_ip() -> IpAddr {
    let seed = (std::process::id() % 64) * 400;
    let n = seed + NEXT_ADDR.fetch_add(1, Ordering::Relaxed);
    let third = 128 + (n / 250) % 128;
    let fourth = 2 + n % 250;
    IpAddr::V4(Ipv4Addr::new(10, 244, third as u8, fourth as u8))
}

impl Backend {
    /// Starts a plain HTTP/1.1 + h2c echo backend on a fresh 10.244.128.0/17 address.
    pub async fn http(name: &str, port: u16) -> anyhow::Result<Self> {
        Self::start(name, port, None).await
    }

    /// Starts a plain HTTP/1.1 + h2c echo backend on `addr` (for example a Service's ClusterIP,
    /// which the test network makes local).
    pub async fn http_at(name: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        Self::start_at(name, addr, None).await
    }

    /// Starts a TLS echo backend with a self-signed certificate for `hosts`.
    pub async fn https(name: &str, port: u16, hosts: &[&str]) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let ck = rcgen::generate_simple_self_signed(
            hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        )?;
        let cert_der = ck.cert.der().to_vec();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der())
            .map_err(|e| anyhow::anyhow!("key: {e}"))?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone().into()], key_der)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tls = BackendTls {
            cert_pem: ck.cert.pem(),
            cert_der,
        };
        Self::start(name, port, Some((tls, Arc::new(config)))).await
    }

    async fn start(
        name: &str,
        port: u16,
        tls: Option<(BackendTls, Arc<rustls::ServerConfig>)>,
    ) -> anyhow::Result<Self> {
        Self::start_at(name, SocketAddr::new(next_backend_ip(), port), tls).await
    }

    async fn start_at(
        name: &str,
        addr: SocketAddr,
        tls: Option<(BackendTls, Arc<rustls::ServerConfig>)>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("binding {addr}: is this inside the test network (tests/cluster/netns.sh)?")
        })?;
        let addr = listener.local_addr()?;
        let backend_name = name.to_string();
        let acceptor = tls
            .as_ref()
            .map(|(_, cfg)| tokio_rustls::TlsAcceptor::from(cfg.clone()));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let name = backend_name.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let is_tls = acceptor.is_some();
                    let svc =
                        hyper::service::service_fn(move |req| echo(name.clone(), is_tls, req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(stream).await {
                                let _ = builder
                                    .serve_connection_with_upgrades(TokioIo::new(s), svc)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await;
                        }
                    }
                });
            }
        });
        Ok(Self {
            name: name.to_string(),
            addr,
            tls: tls.map(|(t, _)| t),
            task,
        })
    }
}

async fn echo(
    backend: String,
    tls: bool,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let echo = Echo {
        backend,
        method: req.method().to_string(),
        host,
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers,
        tls,
        version: format!("{:?}", req.version()),
    };
    // Drain the request body so keep-alive connections stay usable.
    let _ = req.into_body().collect().await;
    let body = serde_json::to_vec(&echo).unwrap_or_default();
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("x-backend", echo.backend.as_str())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// A plain HTTP/1.1 GET with the given Host header to `addr`; returns status and body.
pub async fn http_get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(hyper::header::HOST, host)
        .body(http_body_util::Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// A GET over TLS to `addr` with SNI `host`, trusting only `ca_der`; returns status, body and
/// the DER of the certificate the server presented.
pub async fn https_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    ca_der: &[u8],
) -> anyhow::Result<(u16, Bytes, Vec<u8>)> {
    crate::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.to_vec().into())?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let server_name = rustls::pki_types::ServerName::try_from(host.to_string())?;
    let tls = connector.connect(server_name, tcp).await?;
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(hyper::header::HOST, host)
        .body(http_body_util::Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_ips_stay_in_the_test_range_and_differ() {
        let a = next_backend_ip();
        let b = next_backend_ip();
        assert_ne!(a, b);
        for ip in [a, b] {
            let IpAddr::V4(v4) = ip else { panic!("v4") };
            let o = v4.octets();
            assert_eq!((o[0], o[1]), (10, 244));
            assert!(o[2] >= 128, "{ip} outside 10.244.128.0/17");
            assert!((2..=251).contains(&o[3]));
        }
    }
}
