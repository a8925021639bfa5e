//! End-to-end TLS tests of the real listeners on 127.0.0.1: termination by SNI, HTTP/2 by
//! ALPN to HTTP/1.1 upstreams, the 421 guard, passthrough to a backend that terminates its own
//! TLS, redirects, HSTS, plain HTTP on the HTTPS port, per-host `ssl-ciphers`. Every address
//! is loopback.

use std::sync::Arc;

use http::Version;
use hyper_util::rt::TokioExecutor;
use rustls::SignatureScheme;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::model::{Certificate, Passthrough, RedirectFlags, Termination, Tls12Ciphers, TlsHost};
use crate::proxy::tls::{Tls, generate_certificate};
use crate::upstream_tls::UnverifiedBackend;

// ---------------------------------------------------------------------------------------------
// Certificates and TLS clients

/// A self-signed certificate for `names`, as the model holds it.
fn certificate(source: &str, names: &[&str]) -> Arc<Certificate> {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params")
            .self_signed(&key)
            .expect("cert");
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).expect("signing");
    Arc::new(Certificate {
        source: source.to_owned(),
        key: Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert.der().clone()],
            signing,
        )),
    })
}

fn leaf(certificate: &Certificate) -> Vec<u8> {
    certificate.key.cert[0].to_vec()
}

/// Connects with SNI `sni` offering `alpn`; returns the stream and the presented leaf DER.
async fn connect(addr: SocketAddr, sni: &str, alpn: &[&[u8]]) -> (TlsStream<TcpStream>, Vec<u8>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new()))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let peer = tls.get_ref().1.peer_certificates().expect("certificate")[0].to_vec();
    (tls, peer)
}

/// An HTTP/2 connection for `sni`.
async fn h2(
    addr: SocketAddr,
    sni: &str,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    Vec<u8>,
) {
    let (tls, peer) = connect(addr, sni, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    (sender, peer)
}

/// One HTTP/1.1 GET over TLS.
async fn https_get(
    addr: SocketAddr,
    sni: &str,
    host: &str,
    path: &str,
) -> (StatusCode, http::HeaderMap, String, Vec<u8>) {
    let (tls, peer) = connect(addr, sni, &[b"http/1.1"]).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header(header::HOST, host)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (status, headers, body) = read(sender.send_request(req).await.expect("response")).await;
    (status, headers, body, peer)
}

/// A backend terminating its own TLS with `certificate`, answering "passthrough-backend".
async fn tls_backend(certificate: Arc<Certificate>) -> SocketAddr {
    let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
            certificate.key.clone(),
        )));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(|req: Request<Incoming>| async move {
                    let host = req
                        .headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "passthrough-backend {host}"
                    )))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// The proxy under test: both listeners on one snapshot

struct TlsProxy {
    http: SocketAddr,
    https: SocketAddr,
    shared: Arc<Shared>,
    tls: Arc<Tls>,
    metrics: Arc<ProxyMetrics>,
}

impl TlsProxy {
    async fn start_with(snapshot: Snapshot, opts: ProxyOptions, fleet: FleetSettings) -> TlsProxy {
        let shared = Shared::new(fleet);
        shared.snapshot.store(Arc::new(snapshot));
        shared.mark_synced();
        let metrics = Arc::new(ProxyMetrics::unregistered());
        let proxy = Arc::new(Proxy::with_access_log(
            shared.clone(),
            metrics.clone(),
            opts,
            None,
        ));
        let tls = Arc::new(Tls::with_fallback(Arc::new(
            generate_certificate().expect("generated"),
        )));
        let http = TcpListener::bind(LOOPBACK).await.expect("bind");
        let https = TcpListener::bind(LOOPBACK).await.expect("bind");
        let (http_addr, https_addr) = (
            http.local_addr().expect("addr"),
            https.local_addr().expect("addr"),
        );
        tokio::spawn(serve_http(
            http,
            proxy.clone(),
            std::future::pending(),
            Duration::from_secs(1),
        ));
        tokio::spawn(serve_https(
            https,
            proxy,
            tls.clone(),
            std::future::pending(),
            Duration::from_secs(1),
        ));
        TlsProxy {
            http: http_addr,
            https: https_addr,
            shared,
            tls,
            metrics,
        }
    }

    fn edit_snapshot(&self, edit: impl FnOnce(&mut Snapshot)) {
        let mut snapshot = (**self.shared.snapshot.load()).clone();
        snapshot.generation += 1;
        edit(&mut snapshot);
        self.shared.snapshot.store(Arc::new(snapshot));
    }
}

fn terminate(host: &str, certificate: Option<Arc<Certificate>>) -> TlsHost {
    TlsHost {
        host: host.to_owned(),
        terminate: Some(Termination {
            certificate,
            source: IngressRef::new("team", "web"),
            tls12_ciphers: None,
            client_auth: None,
        }),
        passthrough: None,
    }
}

struct World {
    proxy: TlsProxy,
    a: Arc<Certificate>,
    b: Arc<Certificate>,
    pass: Arc<Certificate>,
}

/// a.test (cert A) and b.test (cert B) terminated to an echo backend, pass.test passed through
/// to a TLS backend with its own certificate, plain.test without TLS.
async fn world(opts: ProxyOptions) -> World {
    world_with(opts, FleetSettings::default()).await
}

async fn world_with(opts: ProxyOptions, fleet: FleetSettings) -> World {
    let echo = backend("echo").await;
    let svc = service("echo", vec![ready(echo.addr)]);
    let pass = certificate("backend", &["pass.test"]);
    let pass_addr = tls_backend(pass.clone()).await;
    let mut snap = snapshot(&[
        ("a.test", &[("/", svc.clone())]),
        ("b.test", &[("/", svc.clone())]),
        ("pass.test", &[("/", svc.clone())]),
        ("plain.test", &[("/", svc.clone())]),
        ("acme.test", &[("/", svc.clone())]),
    ]);
    let (a, b) = (
        certificate("team/a-tls", &["a.test"]),
        certificate("team/b-tls", &["b.test"]),
    );
    snap.tls
        .exact
        .insert("a.test".into(), terminate("a.test", Some(a.clone())));
    snap.tls
        .exact
        .insert("b.test".into(), terminate("b.test", Some(b.clone())));
    snap.tls
        .exact
        .insert("acme.test".into(), terminate("acme.test", None));
    snap.tls.exact.insert(
        "pass.test".into(),
        TlsHost {
            host: "pass.test".into(),
            terminate: None,
            passthrough: Some(Passthrough {
                backend: service("pass", vec![ready(pass_addr)]),
                source: IngressRef::new("team", "pass"),
            }),
        },
    );
    World {
        proxy: TlsProxy::start_with(snap, opts, fleet).await,
        a,
        b,
        pass,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn terminates_by_sni_with_hsts_and_forwarding_headers() {
    let w = world(ProxyOptions::default()).await;
    let (status, headers, body, peer) =
        https_get(w.proxy.https, "a.test", "a.test", "/x?q=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(peer, leaf(&w.a));
    assert_eq!(
        headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000; includeSubDomains"
    );
    let seen = &json(&body);
    assert_eq!(seen["target"], "/x?q=1");
    assert_eq!(seen["headers"]["host"], "a.test");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(seen["headers"]["x-forwarded-port"], "443");

    let (_, _, _, peer) = https_get(w.proxy.https, "b.test", "b.test", "/").await;
    assert_eq!(peer, leaf(&w.b));
    // Unknown names get the generated certificate, and no HSTS (no TLS for the host).
    let (status, headers, _, peer) =
        https_get(w.proxy.https, "plain.test", "plain.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(peer, leaf(w.proxy.tls.generated()));
    assert!(headers.get(header::STRICT_TRANSPORT_SECURITY).is_none());
    // HSTS follows the config, also on errors the proxy answers itself.
    w.proxy.shared.config.store(Arc::new(DataplaneConfig {
        hsts_preload: true,
        ..DataplaneConfig::default()
    }));
    let (status, headers, _, _) = https_get(w.proxy.https, "acme.test", "acme.test", "/%zz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000; includeSubDomains; preload"
    );
    assert_eq!(w.proxy.metrics.tls_connections_total("terminated"), 4);
}

/// Responses on one HTTP/2 connection go out in batches (`coalesce`): many at once, small and
/// large, each arrives whole and to its own stream, and a body that streams is not held back.
#[tokio::test]
async fn http2_responses_in_flight_together_arrive_whole() {
    let w = world(ProxyOptions::default()).await;
    let (sender, _) = h2(w.proxy.https, "a.test").await;
    let requests = (0..60).map(|i| {
        let mut sender = sender.clone();
        async move {
            let target = if i % 4 == 0 {
                "/big".to_owned()
            } else {
                format!("/c/{i}")
            };
            let req = Request::get(format!("https://a.test{target}"))
                .body(Empty::<Bytes>::new())
                .expect("request");
            let resp = sender.send_request(req).await.expect("response");
            let (status, _, body) = read(resp).await;
            assert_eq!(status, StatusCode::OK, "{target}");
            if target == "/big" {
                assert_eq!(body.len(), super::BIG_BODY);
                assert!(body.bytes().all(|b| b == b'b'));
            } else {
                assert_eq!(json(&body)["target"], target);
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(requests))
        .await
        .expect("every response arrives");

    // The first chunk of a streaming body is sent while the upstream waits to send the next.
    let req = Request::get("https://a.test/hold")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let mut body = sender
        .clone()
        .send_request(req)
        .await
        .expect("response")
        .into_body();
    let first = tokio::time::timeout(Duration::from_millis(400), body.frame())
        .await
        .expect("the first chunk does not wait for the second")
        .expect("a frame")
        .expect("data");
    assert_eq!(first.into_data().expect("data"), "first-");
}

#[tokio::test]
async fn http2_requests_reach_http1_upstreams_and_misdirected_ones_get_421() {
    let w = world(ProxyOptions::default()).await;
    let (mut sender, peer) = h2(w.proxy.https, "a.test").await;
    assert_eq!(peer, leaf(&w.a));
    let req = Request::get("https://a.test/h2?x=1")
        .header(header::COOKIE, "a=1")
        .header(header::COOKIE, "b=2")
        .header(header::TE, "trailers")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.version(), Version::HTTP_2);
    let (status, headers, body) = read(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let seen = &json(&body)["headers"];
    assert_eq!(seen["host"], "a.test", "Host from :authority");
    assert_eq!(seen["cookie"], "a=1; b=2", "cookies joined for HTTP/1.1");
    assert!(seen.get("te").is_none(), "no connection-specific headers");
    assert_eq!(json(&body)["target"], "/h2?x=1");

    // Same connection, other hosts: the passthrough host and a host with another
    // certificate are refused; a host under the same policy would be served.
    for (host, want) in [
        ("pass.test", StatusCode::MISDIRECTED_REQUEST),
        ("b.test", StatusCode::MISDIRECTED_REQUEST),
        ("plain.test", StatusCode::MISDIRECTED_REQUEST),
        ("a.test:443", StatusCode::OK),
    ] {
        let req = Request::get(format!("https://{host}/"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        let (status, _, body) = read(sender.send_request(req).await.expect("response")).await;
        assert_eq!(status, want, "{host}: {body}");
    }

    // HTTP/1.1 with a forged Host is refused the same way.
    let (status, _, _, _) = https_get(w.proxy.https, "a.test", "pass.test", "/").await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    // Unknown SNI, host without TLS: the default policy on both sides.
    let (status, _, _, _) = https_get(w.proxy.https, "other.test", "plain.test", "/").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn passthrough_and_termination_share_the_port() {
    let w = world(ProxyOptions::default()).await;
    let (status, _, body, peer) =
        https_get(w.proxy.https, "pass.test", "pass.test", "/anything").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "passthrough-backend pass.test");
    assert_eq!(peer, leaf(&w.pass), "the backend's own certificate");
    let (status, _, _, peer) = https_get(w.proxy.https, "a.test", "a.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(peer, leaf(&w.a));
    assert_eq!(w.proxy.metrics.tls_connections_total("passthrough"), 1);

    // A passthrough backend that is down: the client's handshake fails, nothing else does.
    let dead = dead_addr().await;
    w.proxy.edit_snapshot(|s| {
        if let Some(p) = s
            .tls
            .exact
            .get_mut("pass.test")
            .and_then(|h| h.passthrough.as_mut())
        {
            p.backend = service("pass", vec![ready(dead)]);
        }
    });
    let tcp = TcpStream::connect(w.proxy.https).await.expect("connect");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new()))
        .with_no_client_auth();
    let name = ServerName::try_from("pass.test").expect("name");
    assert!(
        TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .is_err()
    );
    assert_eq!(
        w.proxy.metrics.tls_connections_total("passthrough_failed"),
        1
    );
}

#[tokio::test]
async fn plain_http_redirects_to_the_external_https_port_except_acme() {
    let opts = ProxyOptions {
        external_https_port: 8443,
        ..ProxyOptions::default()
    };
    let w = world(opts).await;
    let http = w.proxy.http;
    let get = |host: &'static str, path: &'static str| async move {
        let stream = TcpStream::connect(http).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(header::HOST, host)
            .body(Empty::<Bytes>::new())
            .expect("request");
        read(sender.send_request(req).await.expect("response")).await
    };
    let (status, headers, _) = get("a.test:80", "/x/../y?q=1").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "https://a.test:8443/x/../y?q=1");
    assert!(headers.get(header::STRICT_TRANSPORT_SECURITY).is_none());
    let (status, _, body) = get("acme.test", "/.well-known/acme-challenge/token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = get("acme.test", "/other").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    let (status, _, _) = get("plain.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    // A TLS host redirects even for a request no rule routes.
    let (status, _, _) = get("a.test", "/").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    let a_routes = w.proxy.shared.snapshot.load().exact_hosts["a.test"].clone();
    w.proxy.edit_snapshot(|s| {
        s.exact_hosts.remove("a.test");
    });
    let (status, headers, _) = get("a.test", "/nowhere").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "https://a.test:8443/nowhere");

    w.proxy.edit_snapshot(|s| {
        s.exact_hosts.insert("a.test".into(), a_routes);
    });
    // Opted out; and behind a TLS-terminating load balancer (trusted X-Forwarded-Proto).
    w.proxy.edit_snapshot(|s| {
        s.tls.redirects.insert(
            IngressRef::new("team", "web"),
            RedirectFlags {
                ssl_redirect: false,
                force_ssl_redirect: false,
            },
        );
    });
    let (status, _, _) = get("a.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    w.proxy.edit_snapshot(|s| {
        s.tls.redirects.clear();
    });
    w.proxy.shared.config.store(Arc::new(DataplaneConfig {
        use_forwarded_headers: true,
        ..DataplaneConfig::default()
    }));
    let stream = TcpStream::connect(w.proxy.http).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get("/")
        .header(header::HOST, "a.test")
        .header("x-forwarded-proto", "https")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (status, _, _) = read(sender.send_request(req).await.expect("response")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn garbage_and_plain_http_on_the_https_port() {
    let w = world(ProxyOptions::default()).await;
    let mut stream = TcpStream::connect(w.proxy.https).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.ends_with("sent to HTTPS port\n"), "{response}");

    let mut stream = TcpStream::connect(w.proxy.https).await.expect("connect");
    stream
        .write_all(&[22, 3, 1, 0, 4, 2, 0, 0, 0])
        .await
        .expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    assert!(response.is_empty());
    assert_eq!(w.proxy.metrics.tls_connections_total("plain_http"), 1);
    assert_eq!(w.proxy.metrics.tls_connections_total("client_hello"), 1);
}

#[tokio::test]
async fn a_rotated_certificate_is_served_by_the_next_handshake() {
    let w = world(ProxyOptions::default()).await;
    let (_, _, _, before) = https_get(w.proxy.https, "a.test", "a.test", "/").await;
    assert_eq!(before, leaf(&w.a));
    // An open HTTP/2 connection from before the rotation keeps working.
    let (mut sender, _) = h2(w.proxy.https, "a.test").await;
    let rotated = certificate("team/a-tls", &["a.test"]);
    w.proxy.edit_snapshot(|s| {
        s.tls
            .exact
            .insert("a.test".into(), terminate("a.test", Some(rotated.clone())));
    });
    let (_, _, _, after) = https_get(w.proxy.https, "a.test", "a.test", "/").await;
    assert_eq!(after, leaf(&rotated));
    let req = Request::get("https://a.test/")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (status, _, _) = read(sender.send_request(req).await.expect("response")).await;
    assert_eq!(status, StatusCode::OK, "same Secret: not misdirected");
}

#[tokio::test]
async fn proxy_protocol_comes_before_the_client_hello() {
    let fleet = FleetSettings {
        proxy_protocol: true,
        ..FleetSettings::default()
    };
    let w = world_with(ProxyOptions::default(), fleet).await;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new()))
            .with_no_client_auth(),
    );
    // What a load balancer sends: the PROXY header, then the client's bytes.
    let connect = |sni: &'static str| {
        let config = config.clone();
        let addr = w.proxy.https;
        async move {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 443\r\n")
                .await
                .expect("write");
            let name = ServerName::try_from(sni).expect("name");
            TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .expect("handshake")
        }
    };
    let tls = connect("a.test").await;
    assert_eq!(
        tls.get_ref().1.peer_certificates().expect("cert")[0].as_ref(),
        leaf(&w.a)
    );
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get("/")
        .header(header::HOST, "a.test")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (status, _, body) = read(sender.send_request(req).await.expect("response")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["headers"]["x-real-ip"], "203.0.113.9");

    // Passthrough: the header is consumed, the backend gets the bare TLS stream.
    let tls = connect("pass.test").await;
    assert_eq!(
        tls.get_ref().1.peer_certificates().expect("cert")[0].as_ref(),
        leaf(&w.pass)
    );
}

/// A TLS handshake for `sni` from a client limited to `versions` and, when given, `suites`;
/// returns the negotiated version and suite, or the client's error.
async fn handshake(
    addr: SocketAddr,
    sni: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: Option<&[rustls::SupportedCipherSuite]>,
) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), String> {
    let base = rustls::crypto::aws_lc_rs::default_provider();
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: suites.map_or_else(|| base.cipher_suites.clone(), <[_]>::to_vec),
        ..base
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new()))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tls.get_ref().1;
    Ok((
        conn.protocol_version().expect("version"),
        conn.negotiated_cipher_suite().expect("suite").suite(),
    ))
}

#[tokio::test]
async fn ssl_ciphers_restrict_tls12_per_host() {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    use rustls::version::{TLS12, TLS13};
    use sluice_crds::CipherSuite as Suite;

    // The test certificates are ECDSA (rcgen's default), so the ECDSA suites are the usable ones.
    let w = world(ProxyOptions::default()).await;
    let strict = certificate("team/strict-tls", &["strict.test"]);
    let with_ciphers = |host: &str, certificate: &Arc<Certificate>, suites: &[Suite]| {
        let mut host = terminate(host, Some(certificate.clone()));
        if let Some(t) = host.terminate.as_mut() {
            t.tls12_ciphers = Some(Tls12Ciphers::new(suites));
        }
        host
    };
    w.proxy.edit_snapshot(|s| {
        s.tls.exact.insert(
            "a.test".into(),
            with_ciphers("a.test", &w.a, &[Suite::EcdheEcdsaAes128GcmSha256]),
        );
        s.tls.exact.insert(
            "strict.test".into(),
            with_ciphers("strict.test", &strict, &[]),
        );
    });
    let (aes128, aes256) = (
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    );
    let https = w.proxy.https;

    // The selected suite is accepted, another one is not.
    assert_eq!(
        handshake(https, "a.test", &[&TLS12], Some(&[aes128])).await,
        Ok((rustls::ProtocolVersion::TLSv1_2, aes128.suite()))
    );
    let refused = handshake(https, "a.test", &[&TLS12], Some(&[aes256])).await;
    assert!(refused.is_err(), "{refused:?}");
    // A TLS 1.2 client offering everything gets the host's suite.
    assert_eq!(
        handshake(https, "a.test", &[&TLS12], None).await,
        Ok((rustls::ProtocolVersion::TLSv1_2, aes128.suite()))
    );
    // TLS 1.3 is set-wide.
    let tls13 = handshake(https, "a.test", &[&TLS13], None).await;
    assert_eq!(tls13.map(|r| r.0), Ok(rustls::ProtocolVersion::TLSv1_3));
    // The same port, a host without ssl-ciphers: the set's suites.
    assert_eq!(
        handshake(https, "b.test", &[&TLS12], Some(&[aes256])).await,
        Ok((rustls::ProtocolVersion::TLSv1_2, aes256.suite()))
    );
    // An empty selection: TLS 1.2 off, TLS 1.3 on.
    let refused = handshake(https, "strict.test", &[&TLS12], None).await;
    assert!(refused.is_err(), "{refused:?}");
    let tls13 = handshake(https, "strict.test", &[&TLS13], None).await;
    assert_eq!(tls13.map(|r| r.0), Ok(rustls::ProtocolVersion::TLSv1_3));
    // Requests are served over the restricted connection.
    let (status, _, _, peer) = https_get(https, "a.test", "a.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(peer, leaf(&w.a));

    // A host's suites replace the set's TLS 1.2 list, even when the set leaves them out.
    w.proxy.shared.config.store(Arc::new(DataplaneConfig {
        ssl_ciphers: vec![Suite::EcdheEcdsaAes256GcmSha384],
        ..DataplaneConfig::default()
    }));
    assert!(
        handshake(https, "a.test", &[&TLS12], Some(&[aes128]))
            .await
            .is_ok()
    );
    assert!(
        handshake(https, "b.test", &[&TLS12], Some(&[aes128]))
            .await
            .is_err()
    );

    // The selection is read per handshake: dropping it restores the set's suites.
    w.proxy.edit_snapshot(|s| {
        s.tls
            .exact
            .insert("a.test".into(), terminate("a.test", Some(w.a.clone())));
    });
    assert!(
        handshake(https, "a.test", &[&TLS12], Some(&[aes256]))
            .await
            .is_ok()
    );
    assert!(
        handshake(https, "a.test", &[&TLS12], Some(&[aes128]))
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Client certificates (auth-tls-*)

use crate::model::{ClientAuth, ClientCa};
use crate::proxy::client_cert::test_pki::{self, Pki};
use sluice_crds::annotations::VerifyClient;

/// A client certificate source that records whether (and with which CA names) the server
/// asked for a certificate.
#[derive(Debug, Default)]
struct RecordingClientCert {
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    asked: std::sync::Mutex<Option<Vec<Vec<u8>>>>,
}

impl rustls::client::ResolvesClientCert for RecordingClientCert {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        *self.asked.lock().expect("lock") =
            Some(root_hint_subjects.iter().map(|s| s.to_vec()).collect());
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified(client: &test_pki::Client) -> Arc<rustls::sign::CertifiedKey> {
    let signing =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&client.key).expect("signing key");
    Arc::new(rustls::sign::CertifiedKey::new(
        client.chain.clone(),
        signing,
    ))
}

/// A TLS connection for `sni` presenting `client` (or nothing when asked). Returns the
/// stream (or the handshake error) and whether the server requested a certificate, with the
/// number of CA names it sent.
async fn connect_mtls(
    addr: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
    client: Option<&test_pki::Client>,
) -> (Result<TlsStream<TcpStream>, String>, Option<usize>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(RecordingClientCert {
        key: client.map(certified),
        ..RecordingClientCert::default()
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(UnverifiedBackend::new()))
        .with_client_cert_resolver(recorder.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    let result = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string());
    let asked = recorder.asked.lock().expect("lock").as_ref().map(Vec::len);
    (result, asked)
}

/// One HTTP/1.1 GET on an established connection.
async fn get_on(tls: TlsStream<TcpStream>, host: &str) -> StatusCode {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get("/")
        .header(header::HOST, host)
        .body(Empty::<Bytes>::new())
        .expect("request");
    read(sender.send_request(req).await.expect("response"))
        .await
        .0
}

fn with_client_auth(
    mut host: TlsHost,
    mode: VerifyClient,
    ca: Result<Arc<ClientCa>, String>,
) -> TlsHost {
    if let Some(t) = host.terminate.as_mut() {
        t.client_auth = Some(Arc::new(ClientAuth {
            mode,
            depth: 1,
            pass_to_upstream: false,
            error_page: None,
            ca,
        }));
    }
    host
}

#[tokio::test]
async fn client_certificates_are_requested_per_host() {
    let w = world(ProxyOptions::default()).await;
    let pki = Pki::new("Client CA");
    let ca = test_pki::client_ca("team/client-ca", &pki);
    let good = pki.client("alice");
    let foreign = Pki::new("Other CA").client("mallory");
    for name in ["on", "optional", "noca", "off", "broken"] {
        let host = format!("{name}.test");
        w.proxy.edit_snapshot(|s| {
            let mode = match name {
                "on" | "broken" => VerifyClient::On,
                "optional" => VerifyClient::Optional,
                "noca" => VerifyClient::OptionalNoCa,
                _ => VerifyClient::Off,
            };
            let ca = if name == "broken" {
                Err("Secret team/missing not found".to_owned())
            } else {
                Ok(ca.clone())
            };
            s.tls.exact.insert(
                host.clone(),
                with_client_auth(terminate(&host, Some(w.a.clone())), mode, ca),
            );
        });
    }
    let https = w.proxy.https;
    // (SNI, client certificate, certificate requested?)
    let cases: [(&str, Option<&test_pki::Client>, bool); 12] = [
        ("on.test", Some(&good), true),
        // No certificate, or one from another CA: the handshake still completes; the request
        // is refused at HTTP level (400, as nginx), see client_cert::check.
        ("on.test", None, true),
        ("on.test", Some(&foreign), true),
        ("optional.test", Some(&good), true),
        ("optional.test", None, true),
        ("noca.test", Some(&foreign), true),
        ("noca.test", None, true),
        // Not requested.
        ("off.test", Some(&good), false),
        ("a.test", Some(&good), false),
        ("b.test", None, false),
        // An unusable CA requests nothing (every request is refused with 503).
        ("broken.test", Some(&good), false),
        ("unknown.test", Some(&good), false),
    ];
    for (sni, client, requested) in cases {
        let (result, asked) = connect_mtls(https, sni, &[b"http/1.1"], client).await;
        let tls = result.unwrap_or_else(|e| panic!("{sni}: {e}"));
        assert_eq!(asked.is_some(), requested, "{sni}");
        if requested {
            // The CA's subject is named, so clients can pick a matching certificate.
            assert_eq!(asked, Some(1), "{sni}");
        }
        // The handler checks the certificate per request: nginx's 400 for a missing or
        // unverified one where the mode demands it, 503 for an unusable CA; otherwise the
        // hosts without routes answer 404 and a.test/b.test have routes.
        let status = get_on(tls, sni).await;
        let foreign_cert = client.is_some_and(|c| std::ptr::eq(c, &foreign));
        let want = match sni {
            "a.test" | "b.test" => StatusCode::OK,
            "on.test" if client.is_none() || foreign_cert => StatusCode::BAD_REQUEST,
            "broken.test" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::NOT_FOUND,
        };
        assert_eq!(
            status,
            want,
            "{sni} with {:?}",
            client.map(|_| "a certificate")
        );
    }
    assert_eq!(w.proxy.metrics.tls_connections_total("terminated"), 12);
    // Handshakes that requested a certificate share the CA's config; hosts without one keep
    // theirs.
    let configs = |ca: Option<&Arc<ClientCa>>| {
        let snapshot = w.proxy.shared.snapshot.load_full();
        let config = w.proxy.shared.config.load_full();
        w.proxy
            .tls
            .server_config(&snapshot, &config, &w.a, None, ca)
            .expect("config")
    };
    let (with_ca, without) = (configs(Some(&ca)), configs(None));
    assert!(!Arc::ptr_eq(&with_ca, &without));
    assert!(Arc::ptr_eq(&with_ca, &configs(Some(&ca))), "cached");
    // The same CA parsed again (a new Secret version) gets its own config.
    let reparsed = test_pki::client_ca("team/client-ca", &pki);
    assert!(!Arc::ptr_eq(&with_ca, &configs(Some(&reparsed))));
}

#[tokio::test]
async fn a_client_certificate_must_hold_its_key_and_is_verified_after_the_handshake() {
    // The listener's steps for a host with client auth: the cached config, the handshake,
    // ClientCert::verify on what the client sent, then the request check.
    let tls = Tls::new().expect("tls");
    let own = Arc::new(generate_certificate().expect("cert"));
    let pki = Pki::new("Client CA");
    let ca = test_pki::client_ca("team/client-ca", &pki);
    let snapshot = Snapshot::default();
    let config = Arc::new(DataplaneConfig::default());
    let server = tls
        .server_config(&snapshot, &config, &own, None, Some(&ca))
        .expect("config");
    let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        while let Ok((stream, _)) = listener.accept().await {
            let verdict = match acceptor.accept(stream).await {
                Ok(tls) => {
                    let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
                    let cert = crate::proxy::ClientCert::verify(
                        &ca,
                        1,
                        chain,
                        rustls::pki_types::UnixTime::now(),
                    );
                    Ok(cert.verification)
                }
                Err(error) => Err(error.to_string()),
            };
            let _ = tx.send(verdict);
        }
    });
    use crate::proxy::Verification;
    let good = pki.client("alice");
    let foreign = Pki::new("Other CA").client("mallory");
    let cases = [
        (Some(&good), Ok(Verification::Success)),
        (None, Ok(Verification::None)),
        (
            Some(&foreign),
            Ok(Verification::Failed(
                "unable to get local issuer certificate".into(),
            )),
        ),
    ];
    for (client, want) in cases {
        let (result, asked) = connect_mtls(addr, "a.test", &[b"http/1.1"], client).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(asked.is_some());
        // TLS 1.3: the server reads the client's Finished after the client is done; wait.
        let mut tls = result.expect("tls");
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
        assert_eq!(rx.recv().await.expect("verdict"), want);
    }

    // A client presenting the right certificate without its private key fails the handshake:
    // the signature over the handshake is checked.
    let thief = test_pki::Client {
        chain: good.chain.clone(),
        key: foreign.key.clone_key(),
    };
    let (result, _) = connect_mtls(addr, "a.test", &[b"http/1.1"], Some(&thief)).await;
    let server_side = rx.recv().await.expect("verdict");
    let refused = match result {
        Err(_) => true,
        Ok(mut tls) => {
            // TLS 1.3 reports the server's refusal on the first read.
            let mut buf = [0u8; 1];
            tokio::io::AsyncReadExt::read(&mut tls, &mut buf)
                .await
                .map_or(true, |n| n == 0)
        }
    };
    assert!(refused && server_side.is_err(), "{server_side:?}");
}

#[tokio::test]
async fn a_connection_for_a_host_without_client_auth_cannot_reach_one_with_it() {
    let w = world(ProxyOptions::default()).await;
    let pki = Pki::new("Client CA");
    let ca = test_pki::client_ca("team/client-ca", &pki);
    let other_ca = test_pki::client_ca("team/other-ca", &Pki::new("Other CA"));
    // Same certificate and ciphers as a.test; only the client-certificate policy differs.
    w.proxy.edit_snapshot(|s| {
        for (host, mode, ca) in [
            ("mtls.test", VerifyClient::On, &ca),
            ("also.test", VerifyClient::Optional, &ca),
            ("other.test", VerifyClient::On, &other_ca),
            ("off.test", VerifyClient::Off, &ca),
        ] {
            s.tls.exact.insert(
                host.into(),
                with_client_auth(terminate(host, Some(w.a.clone())), mode, Ok(ca.clone())),
            );
        }
        for host in ["mtls.test", "also.test", "other.test", "off.test"] {
            let svc = s.exact_hosts["a.test"].clone();
            s.exact_hosts.insert(
                host.into(),
                crate::model::HostRoutes {
                    host: host.into(),
                    ..svc
                },
            );
        }
    });
    let good = pki.client("alice");

    // HTTP/2 opened for a.test (no client auth): same certificate, but the client-auth host
    // is another TLS policy.
    let (sender, _) = h2(w.proxy.https, "a.test").await;
    let (mtls, asked) = {
        let (tls, asked) = connect_mtls(w.proxy.https, "mtls.test", &[b"h2"], Some(&good)).await;
        let tls = tls.expect("handshake");
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        (sender, asked)
    };
    assert!(asked.is_some());
    for (mut sender, sni, host, want) in [
        (
            sender.clone(),
            "a.test",
            "mtls.test",
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (
            sender.clone(),
            "a.test",
            "other.test",
            StatusCode::MISDIRECTED_REQUEST,
        ),
        // `off` requests nothing, like a.test.
        (sender.clone(), "a.test", "off.test", StatusCode::OK),
        (sender.clone(), "a.test", "a.test", StatusCode::OK),
        // The other way round: a connection that requested a certificate is another policy
        // for hosts that request none, or under another CA.
        (
            mtls.clone(),
            "mtls.test",
            "a.test",
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (
            mtls.clone(),
            "mtls.test",
            "other.test",
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (
            mtls.clone(),
            "mtls.test",
            "off.test",
            StatusCode::MISDIRECTED_REQUEST,
        ),
        // Same CA and depth, another verify mode: one handshake serves both; the request
        // check applies each host's mode.
        (mtls.clone(), "mtls.test", "also.test", StatusCode::OK),
        (mtls.clone(), "mtls.test", "mtls.test", StatusCode::OK),
    ] {
        let req = Request::get(format!("https://{host}/"))
            .body(Empty::<Bytes>::new())
            .expect("request");
        let (status, _, body) = read(sender.send_request(req).await.expect("response")).await;
        assert_eq!(status, want, "{sni} -> {host}: {body}");
    }
    // HTTP/1.1 with a forged Host: the same.
    let (tls, _) = connect_mtls(w.proxy.https, "a.test", &[b"http/1.1"], Some(&good)).await;
    assert_eq!(
        get_on(tls.expect("tls"), "mtls.test").await,
        StatusCode::MISDIRECTED_REQUEST
    );
}
