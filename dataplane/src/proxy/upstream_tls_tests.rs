//! End-to-end tests of per-Ingress TLS to backends (`proxy-ssl-*`) through
//! [`BackendClients::request_with`]: a real rustls server on 127.0.0.1 that serves a
//! certificate for `secure.internal` from one test CA and requires a client certificate from
//! another, and records the SNI it saw.

use std::collections::BTreeMap;
use std::sync::Mutex as StdMutex;

use bytes::Bytes;
use http::{Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use sluice_crds::annotations::{SecretRef, Template, TemplateKind, UpstreamTls};
use sluice_crds::fleet::FleetSettings;
use tokio::net::TcpListener;

use super::*;
use crate::upstream_tls::testing::{Ca, Issued, data};
use crate::upstream_tls::{self, UpstreamTlsConfig};

const SERVER_NAME: &str = "secure.internal";

/// What the server saw of one accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    sni: Option<String>,
    client_cert: bool,
    alpn: Option<Vec<u8>>,
}

struct Backend {
    addr: SocketAddr,
    /// One entry per completed handshake.
    seen: Arc<StdMutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

/// Starts the backend: `server` is its certificate, clients must present one from
/// `client_ca`. It answers 200 with the HTTP version it spoke.
async fn backend(server: &Issued, client_ca: &Ca) -> Backend {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca.der.clone().into()).expect("client CA");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(StdMutex::new(Vec::new()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let record = record.clone();
            tokio::spawn(async move {
                // A failed handshake (no or wrong client certificate) just ends the connection.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, conn) = tls.get_ref();
                record.lock().expect("seen").push(Seen {
                    sni: conn.server_name().map(str::to_owned),
                    client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                    alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                });
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = format!("{:?}", req.version());
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Backend { addr, seen, task }
}

struct World {
    server_ca: Ca,
    client: Issued,
    backend: Backend,
    clients: BackendClients,
}

async fn world() -> World {
    let server_ca = Ca::new("backend server CA");
    let client_ca = Ca::new("ingress client CA");
    let server = server_ca.issue(&[SERVER_NAME]);
    let client = client_ca.issue(&[]);
    let backend = backend(&server, &client_ca).await;
    World {
        server_ca,
        client,
        backend,
        clients: BackendClients::new(Shared::new(FleetSettings::default())),
    }
}

fn policy(verify: bool, name: Option<&str>, server_name: bool) -> UpstreamTls {
    UpstreamTls {
        secret: Some(SecretRef {
            namespace: None,
            name: "backend-tls".into(),
        }),
        verify,
        name: name.map(|n| Template::parse(TemplateKind::Host, n).expect("name")),
        server_name,
    }
}

fn config(policy: &UpstreamTls, secret: &BTreeMap<String, Vec<u8>>) -> UpstreamTlsConfig {
    upstream_tls::build(policy, Some(("shop/backend-tls", secret))).expect("config")
}

impl World {
    /// tls.crt, tls.key of the client certificate and `ca` as ca.crt.
    fn secret(&self, ca: &Ca) -> BTreeMap<String, Vec<u8>> {
        data(&[
            ("tls.crt", &self.client.cert_pem),
            ("tls.key", &self.client.key_pem),
            ("ca.crt", &ca.pem),
        ])
    }

    /// One GET through `request_with`; the status and body, or the error.
    async fn get(
        &self,
        tls: &UpstreamTlsConfig,
        name: &str,
        grpc: bool,
    ) -> Result<(StatusCode, String), hyper_util::client::legacy::Error> {
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        let req = Request::builder()
            .uri(format!("https://{}/", self.backend.addr))
            .version(if grpc {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            })
            .body(RequestBody::empty())
            .expect("request");
        let resp = tokio::time::timeout(
            Duration::from_secs(10),
            self.clients.request_with(tls, &name, grpc, req),
        )
        .await
        .expect("no hang")?;
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

#[tokio::test]
async fn verified_with_client_certificate_and_sni_only_when_on() {
    let w = world().await;
    let secret = w.secret(&w.server_ca);
    for (sni, want) in [(false, None), (true, Some(SERVER_NAME.to_owned()))] {
        let tls = config(&policy(true, Some(SERVER_NAME), sni), &secret);
        let (status, _) = w.get(&tls, SERVER_NAME, false).await.expect("verified");
        assert_eq!(status, StatusCode::OK, "sni {sni}");
        let seen = w.backend.seen();
        let last = seen.last().expect("a handshake");
        assert_eq!(
            last.sni, want,
            "the SNI the backend saw (server-name {sni})"
        );
        assert!(last.client_cert, "the client certificate was presented");
    }
}

/// The error and its sources, one line.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

#[tokio::test]
async fn refused_handshakes() {
    let w = world().await;
    let other_ca = Ca::new("someone else");
    let good = w.secret(&w.server_ca);
    // (case, config, name, what the error says). The client's own checks fail the connect;
    // with TLS 1.3 the backend's refusal of the client certificate arrives after the client's
    // handshake is done, so it fails the request instead.
    let cases: Vec<(&str, UpstreamTlsConfig, &str, &str)> = vec![
        (
            "wrong CA",
            config(&policy(true, None, true), &w.secret(&other_ca)),
            SERVER_NAME,
            "(Connect): invalid peer certificate: UnknownIssuer",
        ),
        (
            "wrong name",
            config(&policy(true, Some("other.internal"), true), &good),
            "other.internal",
            "(Connect): invalid peer certificate: certificate not valid for name",
        ),
        (
            // The backend requires a client certificate; ca.crt alone has none.
            "no client certificate",
            config(
                &policy(true, None, true),
                &data(&[("ca.crt", &w.server_ca.pem)]),
            ),
            SERVER_NAME,
            "CertificateRequired",
        ),
        (
            // Signed by the server CA, which the backend does not trust for clients.
            "client certificate of an untrusted CA",
            {
                let stranger = w.server_ca.issue(&[]);
                config(
                    &policy(true, None, true),
                    &data(&[
                        ("tls.crt", &stranger.cert_pem),
                        ("tls.key", &stranger.key_pem),
                        ("ca.crt", &w.server_ca.pem),
                    ]),
                )
            },
            SERVER_NAME,
            "UnknownCA",
        ),
    ];
    for (name, tls, server_name, want) in cases {
        let error = w.get(&tls, server_name, false).await.expect_err(name);
        let message = chain(&error);
        assert!(message.contains(want), "{name}: {message}");
    }
    // No handshake completed on the backend's side either.
    assert_eq!(w.backend.seen(), Vec::new());
}

#[tokio::test]
async fn unverified_still_presents_the_client_certificate() {
    let w = world().await;
    // No ca.crt is needed with verify off; the name does not have to match.
    let secret = data(&[
        ("tls.crt", &w.client.cert_pem),
        ("tls.key", &w.client.key_pem),
    ]);
    let tls = config(&policy(false, None, false), &secret);
    let (status, _) = w
        .get(&tls, "web.shop.svc", false)
        .await
        .expect("unverified");
    assert_eq!(status, StatusCode::OK);
    let seen = w.backend.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].client_cert);
    assert_eq!(seen[0].sni, None);
}

#[tokio::test]
async fn https_negotiates_by_alpn_and_grpcs_is_h2_only() {
    let w = world().await;
    let tls = config(
        &policy(true, Some(SERVER_NAME), false),
        &w.secret(&w.server_ca),
    );
    let (_, version) = w.get(&tls, SERVER_NAME, false).await.expect("https");
    assert_eq!(version, "HTTP/2.0", "the backend offers h2: ALPN picks it");
    let (_, version) = w.get(&tls, SERVER_NAME, true).await.expect("grpcs");
    assert_eq!(version, "HTTP/2.0");
    let alpn: Vec<_> = w.backend.seen().into_iter().map(|s| s.alpn).collect();
    assert_eq!(alpn, [Some(b"h2".to_vec()), Some(b"h2".to_vec())]);
}

#[tokio::test]
async fn pooled_per_config_name_and_protocol() {
    let w = world().await;
    let secret = w.secret(&w.server_ca);
    let tls = config(&policy(true, Some(SERVER_NAME), true), &secret);
    // An equal config built again (a new snapshot) shares the pool.
    let again = config(&policy(true, Some(SERVER_NAME), true), &secret);
    for tls in [&tls, &again, &tls] {
        w.get(tls, SERVER_NAME, false).await.expect("request");
    }
    assert_eq!(w.clients.configured.len(), 1);
    assert_eq!(w.backend.seen().len(), 1, "one connection, reused");

    // Another protocol and another config are other clients and connections.
    w.get(&tls, SERVER_NAME, true).await.expect("grpcs");
    let unverified = config(&policy(false, None, true), &secret);
    w.get(&unverified, "web.shop.svc", false)
        .await
        .expect("unverified");
    assert_eq!(w.clients.configured.len(), 3);
    let sni: Vec<_> = w.backend.seen().into_iter().map(|s| s.sni).collect();
    assert_eq!(
        sni,
        [
            Some(SERVER_NAME.to_owned()),
            Some(SERVER_NAME.to_owned()),
            Some("web.shop.svc".to_owned()),
        ]
    );

    // Configs that left the snapshot lose their clients.
    w.clients.retain_upstream_tls([tls.identity()]);
    assert_eq!(
        w.clients.configured.len(),
        2,
        "https and grpcs of the live one"
    );
    w.clients.retain_upstream_tls([]);
    assert_eq!(w.clients.configured.len(), 0);
}

#[test]
fn cache_evicts_idle_then_least_recently_used() {
    let shared = Shared::new(FleetSettings::default());
    let start = Instant::now();
    let tls = upstream_tls::build(&UpstreamTls::default(), None).expect("config");
    let mut state = CacheState {
        clients: HashMap::new(),
        len: 0,
        last_sweep: start,
    };
    let client = || tls_client(&shared, (**tls.client_config()).clone(), None, false);
    let name = |i: usize| ServerName::try_from(format!("n{i}.internal")).expect("name");
    let key = (tls.identity(), false);
    for i in 0..MAX_TLS_CLIENTS {
        state.clients.entry(key).or_default().insert(
            name(i),
            CachedClient {
                client: client(),
                last_used: start + Duration::from_millis(i as u64),
            },
        );
    }
    state.recount();
    // Full: the least recently used one goes, nothing is idle yet.
    let soon = start + Duration::from_secs(1);
    state.make_room(soon);
    assert_eq!(state.len, MAX_TLS_CLIENTS - 1);
    assert!(!state.clients[&key].contains_key(&name(0)));
    assert!(state.clients[&key].contains_key(&name(1)));
    // Much later, all are idle.
    state.make_room(start + TLS_CLIENT_IDLE + Duration::from_secs(60));
    assert_eq!(state.len, 0);
    assert!(state.clients.is_empty());
}
