//! End-to-end tests: the real proxy (`serve_http`) on 127.0.0.1 in front of small hyper backends
//! on 127.0.0.1, with snapshots built by hand. Every address used is loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sluice_crds::dataplane_config::{BodySizeLimit, DataplaneConfig};
use sluice_crds::fleet::FleetSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::*;
use crate::model::{
    Backend, Endpoint, HostRoutes, IngressPolicy, IngressRef, PathKind, PortRef, ServiceRef,
    Snapshot,
};
use crate::router::RouteSpec;

const LOOPBACK: &str = "127.0.0.1:0";

// ---------------------------------------------------------------------------------------------
// Backends

/// A test backend: its name, address and how many TCP connections it accepted.
struct TestBackend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn backend(name: &'static str) -> TestBackend {
    let listener = TcpListener::bind(LOOPBACK).await.expect("bind backend");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(move |req| backend_handler(name, req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    TestBackend { addr, connections }
}

fn boxed<B>(body: B) -> BoxBody
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// The size of `/big`: more than a TLS record, several HTTP/2 DATA frames.
const BIG_BODY: usize = 100 * 1024;

/// `/echo` streams the request body back; `/consume` reads it all first and answers its size;
/// `/ws` upgrades and echoes bytes; `/slow` answers after 2 s; `/hold` sends one chunk, waits
/// 600 ms, sends another; `/big` answers [`BIG_BODY`] bytes of `b`; anything else describes
/// the request as JSON.
async fn backend_handler(
    name: &'static str,
    mut req: Request<Incoming>,
) -> Result<Response<BoxBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let response = match path.as_str() {
        "/echo" => Response::new(boxed(req.into_body())),
        "/consume" => {
            let size = match req.into_body().collect().await {
                Ok(body) => body.to_bytes().len(),
                Err(_) => 0,
            };
            Response::new(boxed(Full::new(Bytes::from(format!("{name} {size}")))))
        }
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(header::CONNECTION, "Upgrade")
                .header(header::UPGRADE, "websocket")
                .body(boxed(Empty::<Bytes>::new()))
                .expect("101")
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Response::new(boxed(Full::new(Bytes::from_static(b"slow"))))
        }
        "/big" => Response::new(boxed(Full::new(Bytes::from(vec![b'b'; BIG_BODY])))),
        "/hold" => {
            let frames = futures::stream::unfold(0u8, |step| async move {
                match step {
                    0 => Some((
                        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"first-"))),
                        1,
                    )),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                        Some((Ok(Frame::data(Bytes::from_static(b"second"))), 2))
                    }
                    _ => None,
                }
            });
            Response::new(boxed(StreamBody::new(Box::pin(frames))))
        }
        _ => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
                    )
                })
                .collect();
            let info = serde_json::json!({
                "backend": name,
                "method": req.method().as_str(),
                "target": req.uri().to_string(),
                "headers": headers,
            });
            let mut resp = Response::new(boxed(Full::new(Bytes::from(info.to_string()))));
            resp.headers_mut()
                .insert("x-served-by", header::HeaderValue::from_static(name));
            resp
        }
    };
    Ok(response)
}

/// An address nothing listens on: bound, then released.
async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
    listener.local_addr().expect("addr")
}

// ---------------------------------------------------------------------------------------------
// Snapshots

fn ready(addr: SocketAddr) -> Endpoint {
    Endpoint {
        addr,
        ready: true,
        serving: true,
        terminating: false,
    }
}

fn service(name: &str, endpoints: Vec<Endpoint>) -> Arc<Backend> {
    Arc::new(Backend::Service {
        service: ServiceRef {
            namespace: "team".into(),
            name: name.into(),
            port: PortRef::Number(80),
        },
        endpoints: Arc::from(endpoints),
    })
}

/// `(path, backend)` pairs of one host.
type Paths<'a> = &'a [(&'a str, Arc<Backend>)];

/// A snapshot with `host` routing each `(path, backend)` as a Prefix from Ingress `team/web`.
fn snapshot(hosts: &[(&str, Paths<'_>)]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for (host, routes) in hosts {
        let specs = routes
            .iter()
            .enumerate()
            .map(|(origin, (path, backend))| RouteSpec {
                path: (*path).to_owned(),
                kind: PathKind::Prefix,
                backend: backend.clone(),
                source: IngressRef::new("team", "web"),
                policy: IngressPolicy::none(),
                origin,
            })
            .collect();
        let (routes, rejections) = HostRoutes::build(*host, false, None, specs);
        assert!(rejections.is_empty(), "{rejections:?}");
        snapshot.exact_hosts.insert((*host).to_owned(), routes);
    }
    snapshot
}

// ---------------------------------------------------------------------------------------------
// The proxy under test

struct TestProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    metrics: Arc<ProxyMetrics>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl TestProxy {
    async fn start(snapshot: Snapshot) -> TestProxy {
        Self::start_with(
            snapshot,
            DataplaneConfig::default(),
            FleetSettings::default(),
            None,
        )
        .await
    }

    async fn start_with(
        snapshot: Snapshot,
        config: DataplaneConfig,
        fleet: FleetSettings,
        access_log: Option<AccessLog>,
    ) -> TestProxy {
        let shared = Shared::new(fleet);
        shared.snapshot.store(Arc::new(snapshot));
        shared.config.store(Arc::new(config));
        shared.mark_synced();
        let metrics = Arc::new(ProxyMetrics::unregistered());
        let proxy = Arc::new(Proxy::with_access_log(
            shared.clone(),
            metrics.clone(),
            ProxyOptions::default(),
            access_log,
        ));
        let listener = TcpListener::bind(LOOPBACK).await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_http(
            listener,
            proxy,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        TestProxy {
            addr,
            shared,
            metrics,
            stop: Some(stop),
            server,
        }
    }

    /// The proxy with one route, `a.test/` to `backend`.
    async fn for_backend(backend: &TestBackend) -> TestProxy {
        Self::start(snapshot(&[(
            "a.test",
            &[("/", service("a", vec![ready(backend.addr)]))],
        )]))
        .await
    }

    fn set_config(&self, edit: impl FnOnce(&mut DataplaneConfig)) {
        let mut config = (**self.shared.config.load()).clone();
        edit(&mut config);
        self.shared.config.store(Arc::new(config));
    }

    /// Sends one request on a new connection and returns the response (body still streaming).
    async fn send<B>(&self, req: Request<B>) -> Response<Incoming>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let stream = TcpStream::connect(self.addr).await.expect("connect proxy");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        sender.send_request(req).await.expect("response")
    }

    async fn get(&self, host: &str, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let req = Request::get(path)
            .header(header::HOST, host)
            .body(Empty::<Bytes>::new())
            .expect("request");
        read(self.send(req).await).await
    }
}

async fn read(resp: Response<Incoming>) -> (StatusCode, http::HeaderMap, String) {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn routes_by_host_and_path() {
    let a = backend("a").await;
    let b = backend("b").await;
    let svc_a = service("a", vec![ready(a.addr)]);
    let svc_b = service("b", vec![ready(b.addr)]);
    let proxy = TestProxy::start(snapshot(&[
        ("a.test", &[("/", svc_a.clone())]),
        ("b.test", &[("/", svc_a.clone()), ("/api", svc_b.clone())]),
    ]))
    .await;

    let cases = [
        ("a.test", "/", "a"),
        ("A.TEST:8080", "/x", "a"),
        ("b.test", "/api", "b"),
        ("b.test", "/api/v1?q=1", "b"),
        ("b.test", "/apix", "a"),
        ("b.test", "//api", "b"),
        ("b.test", "/%61pi", "b"),
    ];
    for (host, path, want) in cases {
        let (status, headers, body) = proxy.get(host, path).await;
        assert_eq!(status, StatusCode::OK, "{host}{path}: {body}");
        assert_eq!(headers["x-served-by"], want, "{host}{path}");
    }
    // The upstream sees the normalised path and the query as sent.
    let (_, _, body) = proxy.get("b.test", "//api/./v1?q=%20").await;
    assert_eq!(json(&body)["target"], "/api/v1?q=%20");

    // Keep-alive pool: many requests, one upstream connection.
    let before = b.connections.load(Ordering::SeqCst);
    for _ in 0..5 {
        proxy.get("b.test", "/api").await;
    }
    assert_eq!(
        b.connections.load(Ordering::SeqCst),
        before,
        "pooled connection reused"
    );

    let labels = RequestLabels {
        namespace: "team".into(),
        ingress: "web".into(),
        host: "b.test".into(),
        status: 200,
    };
    assert!(proxy.metrics.requests_total(&labels) >= 9);
}

#[tokio::test]
async fn no_route_is_404_or_the_default_backend() {
    let a = backend("fallback").await;
    let proxy = TestProxy::start(snapshot(&[("a.test", &[("/api", service("x", vec![]))])])).await;

    let (status, headers, body) = proxy.get("other.test", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, "default backend - 404\n");
    assert_eq!(headers["x-request-id"].len(), 32);
    // A host that exists but has no matching path: no fall-through either.
    assert_eq!(proxy.get("a.test", "/web").await.0, StatusCode::NOT_FOUND);

    let mut with_default = snapshot(&[("a.test", &[("/api", service("x", vec![]))])]);
    with_default.default_backend = Some(service("fallback", vec![ready(a.addr)]));
    proxy.shared.snapshot.store(Arc::new(with_default));
    let (status, headers, _) = proxy.get("other.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-served-by"], "fallback");
}

#[tokio::test]
async fn bad_requests_are_400() {
    let proxy = TestProxy::start(Snapshot::default()).await;
    assert_eq!(
        proxy.get("a.test", "/../etc/passwd").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(proxy.get("a/b", "/").await.0, StatusCode::BAD_REQUEST);
    // HTTP/1.1 without Host.
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0; 1024];
    let n = stream.read(&mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn no_endpoints_is_503() {
    let not_ready = Endpoint {
        addr: dead_addr().await,
        ready: false,
        serving: false,
        terminating: true,
    };
    let proxy = TestProxy::start(snapshot(&[
        ("empty.test", &[("/", service("empty", vec![]))]),
        ("gone.test", &[("/", service("gone", vec![not_ready]))]),
    ]))
    .await;
    for host in ["empty.test", "gone.test"] {
        let (status, _, body) = proxy.get(host, "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
        assert!(body.contains("no endpoints"), "{body}");
    }
    assert_eq!(proxy.metrics.upstream_errors_total("no_endpoints"), 2);
}

#[tokio::test]
async fn terminating_but_serving_endpoints_are_the_fallback() {
    let a = backend("old-pod").await;
    let terminating = Endpoint {
        addr: a.addr,
        ready: false,
        serving: true,
        terminating: true,
    };
    let proxy = TestProxy::start(snapshot(&[(
        "a.test",
        &[("/", service("a", vec![terminating]))],
    )]))
    .await;
    let (status, headers, _) = proxy.get("a.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-served-by"], "old-pod");
}

#[tokio::test]
async fn a_refused_connect_is_retried_on_the_next_endpoint_with_the_body() {
    let live = backend("live").await;
    let dead = dead_addr().await;
    let proxy = TestProxy::start(snapshot(&[(
        "a.test",
        &[("/", service("a", vec![ready(dead), ready(live.addr)]))],
    )]))
    .await;
    // Round robin starts anywhere; with two endpoints and 3 tries every request succeeds, and
    // at least one of them had to skip the dead endpoint.
    for i in 0..4 {
        let body = format!("payload-{i}");
        let req = Request::post("/consume")
            .header(header::HOST, "a.test")
            .body(Full::new(Bytes::from(body.clone())))
            .expect("request");
        let (status, _, text) = read(proxy.send(req).await).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(
            text,
            format!("live {}", body.len()),
            "the body survived the retry"
        );
    }
    assert!(proxy.metrics.upstream_errors_total("connect_refused") >= 1);
}

#[tokio::test]
async fn all_connects_failing_is_502() {
    let proxy = TestProxy::start(snapshot(&[(
        "a.test",
        &[(
            "/",
            service(
                "a",
                vec![ready(dead_addr().await), ready(dead_addr().await)],
            ),
        )],
    )]))
    .await;
    let (status, _, body) = proxy.get("a.test", "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(proxy.metrics.upstream_errors_total("connect_refused"), 2);
    assert_eq!(proxy.metrics.upstream_errors_total("connect_failed"), 1);

    // One try only: the first refusal is final.
    proxy.set_config(|c| c.proxy_next_upstream_tries = 1);
    assert_eq!(proxy.get("a.test", "/").await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(proxy.metrics.upstream_errors_total("connect_refused"), 3);
}

#[tokio::test]
async fn request_bodies_over_the_limit_are_413() {
    let a = backend("a").await;
    let config = DataplaneConfig {
        proxy_body_size: "1k".parse().expect("size"),
        ..DataplaneConfig::default()
    };
    let proxy = TestProxy::start_with(
        snapshot(&[("a.test", &[("/", service("a", vec![ready(a.addr)]))])]),
        config,
        FleetSettings::default(),
        None,
    )
    .await;

    // Content-Length over the limit: refused before anything reaches the upstream.
    let before = a.connections.load(Ordering::SeqCst);
    let req = Request::post("/consume")
        .header(header::HOST, "a.test")
        .body(Full::new(Bytes::from(vec![b'x'; 2048])))
        .expect("request");
    assert_eq!(
        proxy.send(req).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        a.connections.load(Ordering::SeqCst),
        before,
        "upstream never contacted"
    );

    // At the limit: fine.
    let req = Request::post("/consume")
        .header(header::HOST, "a.test")
        .body(Full::new(Bytes::from(vec![b'x'; 1024])))
        .expect("request");
    assert_eq!(read(proxy.send(req).await).await.2, "a 1024");

    // Chunked (no length up front): stopped while streaming.
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'y'; 512])))),
    );
    let req = Request::post("/consume")
        .header(header::HOST, "a.test")
        .body(StreamBody::new(chunks))
        .expect("request");
    assert_eq!(
        proxy.send(req).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn forwarding_headers_and_request_id_reach_the_upstream() {
    let a = backend("a").await;
    let proxy = TestProxy::for_backend(&a).await;

    let req = Request::get("/")
        .header(header::HOST, "a.test")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .header("x-real-ip", "6.6.6.6")
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "1")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (status, headers, body) = read(proxy.send(req).await).await;
    assert_eq!(status, StatusCode::OK);
    let seen = &json(&body)["headers"];
    assert_eq!(seen["host"], "a.test", "Host preserved");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "spoofed XFF replaced");
    assert_eq!(seen["x-real-ip"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "a.test");
    assert_eq!(seen["x-forwarded-port"], "80");
    assert!(
        seen.get("x-drop-me").is_none(),
        "hop-by-hop header named by Connection"
    );
    let id = seen["x-request-id"].as_str().expect("request id");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(headers["x-request-id"], id, "echoed to the client");

    // A client id is kept; trusted forwarded headers are passed on and appended to.
    proxy.set_config(|c| c.use_forwarded_headers = true);
    let req = Request::get("/")
        .header(header::HOST, "a.test")
        .header("x-request-id", "trace-123")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (_, headers, body) = read(proxy.send(req).await).await;
    let seen = &json(&body)["headers"];
    assert_eq!(seen["x-request-id"], "trace-123");
    assert_eq!(headers["x-request-id"], "trace-123");
    assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen["x-real-ip"], "203.0.113.7");
    assert_eq!(seen["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let a = backend("a").await;
    let config = DataplaneConfig {
        proxy_body_size: BodySizeLimit::Unlimited,
        ..DataplaneConfig::default()
    };
    let proxy = TestProxy::start_with(
        snapshot(&[("a.test", &[("/", service("a", vec![ready(a.addr)]))])]),
        config,
        FleetSettings::default(),
        None,
    )
    .await;
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 256; // 16 MiB
    let chunks = futures::stream::iter(
        (0..CHUNKS)
            .map(|i| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![(i % 251) as u8; CHUNK])))),
    );
    let req = Request::post("/echo")
        .header(header::HOST, "a.test")
        .body(StreamBody::new(chunks))
        .expect("request");
    let resp = proxy.send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    let mut total = 0usize;
    let mut checksum = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        for byte in chunk.iter() {
            checksum = checksum.wrapping_mul(31).wrapping_add(u64::from(*byte));
        }
        total += chunk.len();
    }
    let mut want = 0u64;
    for i in 0..CHUNKS {
        for _ in 0..CHUNK {
            want = want.wrapping_mul(31).wrapping_add((i % 251) as u64);
        }
    }
    assert_eq!(total, CHUNK * CHUNKS);
    assert_eq!(checksum, want, "bytes arrive intact and in order");
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    let a = backend("a").await;
    let proxy = TestProxy::for_backend(&a).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.expect("read"),
            1,
            "closed early"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [&b"hello"[..], &b"second message"[..]] {
        // Idle for longer than a keep-alive connection before it parks: a tunnel never does.
        tokio::time::sleep(3 * park::PARK_AFTER).await;
        stream.write_all(message).await.expect("write");
        let mut echo = vec![0u8; message.len()];
        stream.read_exact(&mut echo).await.expect("echo");
        assert_eq!(echo, message);
    }
}

#[tokio::test]
async fn a_snapshot_swap_does_not_break_a_request_in_flight() {
    let old = backend("old").await;
    let new = backend("new").await;
    let proxy = TestProxy::start(snapshot(&[(
        "a.test",
        &[("/", service("a", vec![ready(old.addr)]))],
    )]))
    .await;

    let req = Request::get("/hold")
        .header(header::HOST, "a.test")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = proxy.send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body
        .frame()
        .await
        .expect("frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(&first[..], b"first-");

    // The old endpoint leaves the snapshot while its response is still streaming.
    let mut swapped = snapshot(&[("a.test", &[("/", service("a", vec![ready(new.addr)]))])]);
    swapped.generation = 2;
    proxy.shared.snapshot.store(Arc::new(swapped));

    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(
        &rest[..],
        b"second",
        "the in-flight request finished on its endpoint"
    );
    let (_, headers, _) = proxy.get("a.test", "/").await;
    assert_eq!(
        headers["x-served-by"], "new",
        "new requests use the new snapshot"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_504() {
    let a = backend("a").await;
    let config = DataplaneConfig {
        proxy_connect_timeout: Duration::from_millis(100),
        proxy_read_timeout: Duration::from_millis(200),
        ..DataplaneConfig::default()
    };
    let proxy = TestProxy::start_with(
        snapshot(&[("a.test", &[("/", service("a", vec![ready(a.addr)]))])]),
        config,
        FleetSettings::default(),
        None,
    )
    .await;
    let started = std::time::Instant::now();
    let (status, _, _) = proxy.get("a.test", "/slow").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.metrics.upstream_errors_total("timeout"), 1);
}

#[tokio::test]
async fn proxy_protocol_sets_the_client_address() {
    let a = backend("a").await;
    let fleet = FleetSettings {
        proxy_protocol: true,
        ..FleetSettings::default()
    };
    let proxy = TestProxy::start_with(
        snapshot(&[("a.test", &[("/", service("a", vec![ready(a.addr)]))])]),
        DataplaneConfig::default(),
        fleet,
        None,
    )
    .await;

    // The v1 header and the request arrive in one write, as a load balancer sends them.
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(
            b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = &response[response.find("\r\n\r\n").expect("head end") + 4..];
    let seen = &json(body)["headers"];
    assert_eq!(seen["x-real-ip"], "203.0.113.9");
    assert_eq!(seen["x-forwarded-for"], "203.0.113.9");

    // Without the header the connection is closed unanswered.
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    assert!(
        response.is_empty(),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

#[tokio::test]
async fn the_access_log_has_one_json_line_per_request() {
    #[derive(Clone, Default)]
    struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let a = backend("a").await;
    let sink = Sink::default();
    let metrics = Arc::new(ProxyMetrics::unregistered());
    let (log, _writer) = AccessLog::spawn(sink.clone(), 16, metrics).expect("writer");
    let proxy = TestProxy::start_with(
        snapshot(&[("a.test", &[("/", service("a", vec![ready(a.addr)]))])]),
        DataplaneConfig::default(),
        FleetSettings::default(),
        Some(log),
    )
    .await;
    let (_, headers, _) = proxy.get("a.test", "/x?token=secret").await;
    proxy.get("nowhere.test", "/").await;

    let lines = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let text = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("utf8");
            if text.lines().count() >= 2 {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("two lines written");
    let lines: Vec<serde_json::Value> = lines.lines().map(json).collect();
    let ok = &lines[0];
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["path"], "/x", "the query string is not logged");
    assert_eq!(ok["host"], "a.test");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["protocol"], "HTTP/1.1");
    assert_eq!(ok["remote_addr"], "127.0.0.1");
    assert_eq!(
        ok["request_id"],
        headers["x-request-id"].to_str().expect("id")
    );
    assert_eq!(ok["upstream_addr"], a.addr.to_string());
    assert_eq!(ok["upstream_status"], 200);
    assert_eq!(ok["namespace"], "team");
    assert_eq!(ok["ingress"], "web");
    assert_eq!(ok["service"], "team/a:80");
    assert!(ok["bytes_sent"].as_u64().expect("bytes") > 0);
    assert!(ok["request_time"].is_number() && ok["upstream_response_time"].is_number());
    assert!(ok["time"].as_str().expect("time").ends_with('Z'));
    let missed = &lines[1];
    assert_eq!(missed["status"], 404);
    assert!(missed.get("ingress").is_none() && missed.get("upstream_status").is_none());
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight_and_stops_accepting() {
    let a = backend("a").await;
    let mut proxy = TestProxy::for_backend(&a).await;
    let req = Request::get("/hold")
        .header(header::HOST, "a.test")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = proxy.send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get(header::CONNECTION),
        None,
        "no close before the drain"
    );

    let _ = proxy.stop.take().expect("stop").send(());
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(
        &body[..],
        b"first-second",
        "the request in flight completed"
    );
    tokio::time::timeout(Duration::from_secs(5), &mut proxy.server)
        .await
        .expect("serve_http returns once drained")
        .expect("no panic");
    assert!(
        TcpStream::connect(proxy.addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn http10_without_host_uses_the_catch_all() {
    let a = backend("catch-all").await;
    let mut snap = Snapshot::default();
    let spec = RouteSpec {
        path: "/".into(),
        kind: PathKind::Prefix,
        backend: service("a", vec![ready(a.addr)]),
        source: IngressRef::new("team", "web"),
        policy: IngressPolicy::none(),
        origin: 0,
    };
    snap.catch_all = Some(HostRoutes::build("", false, None, vec![spec]).0);
    let proxy = TestProxy::start(snap).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"GET /x HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    let body = &response[response.find("\r\n\r\n").expect("head end") + 4..];
    // The upstream speaks HTTP/1.1 and needs a Host: the endpoint address stands in.
    assert_eq!(json(body)["headers"]["host"], a.addr.to_string());
}

// TLS: termination, HTTP/2, 421, passthrough, redirects.
#[path = "tls_tests.rs"]
mod tls_tests;

#[tokio::test]
async fn affinity_repins_to_the_endpoint_that_answered_after_a_failure() {
    use sluice_crds::annotations::{AffinityMode, Policies, SessionAffinity};
    let live = backend("live").await;
    let dead = dead_addr().await;
    let affinity = SessionAffinity {
        mode: AffinityMode::Persistent,
        cookie_name: "route".into(),
        cookie_path: None,
        cookie_domain: None,
        max_age: None,
        expires: None,
        samesite: None,
        secure: false,
        change_on_failure: true,
    };
    let policy = IngressPolicy::new(IngressPolicy {
        annotations: Policies {
            affinity: Some(affinity),
            ..Policies::default()
        },
        ..IngressPolicy::default()
    });
    let mut snap = snapshot(&[(
        "a.test",
        &[("/", service("a", vec![ready(dead), ready(live.addr)]))],
    )]);
    if let Some(host) = snap.exact_hosts.get_mut("a.test") {
        for route in &mut host.routes {
            route.policy = policy.clone();
        }
    }
    let proxy = TestProxy::start(snap).await;
    let pinned_to_dead = format!("route={}", crate::policy::affinity::endpoint_cookie(dead));
    let req = Request::get("/")
        .header(header::HOST, "a.test")
        .header(header::COOKIE, pinned_to_dead)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (status, headers, body) = read(proxy.send(req).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        cookie.starts_with(&format!(
            "route={}",
            crate::policy::affinity::endpoint_cookie(live.addr)
        )),
        "re-pinned to the live endpoint: {cookie:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Parking idle keep-alive connections

/// Waits (up to 5 s) until `gauge` reads `want`.
async fn gauge_reaches(gauge: &prometheus_client::metrics::gauge::Gauge, want: i64) -> bool {
    for _ in 0..100 {
        if gauge.get() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Reads one `Content-Length` response from a raw connection; returns the status line and body.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.expect("read"), 1, "closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .expect("content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn an_idle_keep_alive_connection_parks_and_serves_its_next_request() {
    let a = backend("a").await;
    let proxy = TestProxy::for_backend(&a).await;
    let stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let get = || {
        Request::get("/")
            .header(header::HOST, "a.test")
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    for round in 0..3 {
        let (status, _, body) = read(sender.send_request(get()).await.expect("response")).await;
        assert_eq!(status, StatusCode::OK, "round {round}");
        assert_eq!(json(&body)["backend"], "a");
        assert!(
            gauge_reaches(&proxy.metrics.connections_parked, 1).await,
            "round {round}: the idle connection parks"
        );
        assert_eq!(proxy.metrics.connections_open.get(), 1, "and stays open");
    }
    sender
        .ready()
        .await
        .expect("the client's connection is still usable");
    let (status, _, _) = read(sender.send_request(get()).await.expect("response")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        proxy.metrics.connections_parked.get(),
        0,
        "serving, not parked"
    );
}

#[tokio::test]
async fn requests_in_flight_never_park() {
    let a = backend("a").await;
    let proxy = TestProxy::for_backend(&a).await;
    let stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);

    // The upstream answers after 2 s: far longer than a connection idles before parking.
    let req = Request::get("/slow")
        .header(header::HOST, "a.test")
        .body(boxed(Empty::<Bytes>::new()))
        .expect("request");
    let (status, _, body) = read(sender.send_request(req).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "slow"));

    // The response body pauses 600 ms between its two chunks.
    let req = Request::get("/hold")
        .header(header::HOST, "a.test")
        .body(boxed(Empty::<Bytes>::new()))
        .expect("request");
    let (status, _, body) = read(sender.send_request(req).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "first-second"));

    // The request body pauses 700 ms between its two chunks.
    let chunks = futures::stream::unfold(0u8, |step| async move {
        match step {
            0 => Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"12345"))),
                1,
            )),
            1 => {
                tokio::time::sleep(Duration::from_millis(700)).await;
                Some((Ok(Frame::data(Bytes::from_static(b"678"))), 2))
            }
            _ => None,
        }
    });
    let req = Request::post("/consume")
        .header(header::HOST, "a.test")
        .body(boxed(StreamBody::new(Box::pin(chunks))))
        .expect("request");
    let (status, _, body) = read(sender.send_request(req).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a 8"));
    assert_eq!(
        proxy.metrics.connections_open.get(),
        1,
        "one connection served all three"
    );
}

#[tokio::test]
async fn a_request_head_split_by_a_pause_is_served_before_and_after_parking() {
    let a = backend("a").await;
    let proxy = TestProxy::for_backend(&a).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    for round in 0..2 {
        stream
            .write_all(b"GET /split HTTP/1.1\r\nHost: a.te")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(700)).await;
        stream.write_all(b"st\r\n\r\n").await.expect("write");
        let (status, body) = read_response(&mut stream).await;
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "round {round}: {status}"
        );
        assert_eq!(json(&body)["target"], "/split");
        assert!(
            gauge_reaches(&proxy.metrics.connections_parked, 1).await,
            "round {round}: parks once idle"
        );
    }
}

#[tokio::test]
async fn a_parked_connection_closes_at_the_drain() {
    let a = backend("a").await;
    let mut proxy = TestProxy::for_backend(&a).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let (status, _) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(gauge_reaches(&proxy.metrics.connections_parked, 1).await);

    let _ = proxy.stop.take().expect("stop").send(());
    tokio::time::timeout(Duration::from_secs(2), &mut proxy.server)
        .await
        .expect("serve_http returns at once: nothing was in flight")
        .expect("no panic");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest))
        .await
        .expect("closed");
    assert!(read.is_ok_and(|n| n == 0), "closed without a byte");
    assert_eq!(proxy.metrics.connections_parked.get(), 0);
    assert_eq!(proxy.metrics.connections_open.get(), 0);
}

#[tokio::test]
async fn a_pipelined_slow_request_is_answered() {
    let a = backend("a").await;
    let proxy = TestProxy::for_backend(&a).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    // Both heads arrive in one read; the second is in flight for 2 s after the first is done,
    // with no byte read meanwhile.
    stream
        .write_all(
            b"GET /first HTTP/1.1\r\nHost: a.test\r\n\r\nGET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n",
        )
        .await
        .expect("write");
    let (status, body) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(json(&body)["target"], "/first");
    let (status, body) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, "slow");
}

/// RSS and heap added per idle keep-alive client connection, in-process: a quick check while
/// working on per-connection memory (`tests/bench/protocols.sh` measures it against nginx).
/// A first round warms the proxy's upstream pool and the backend, which share the process.
/// `cargo test --release -p sluice-dataplane --lib idle_connection_memory -- --ignored --nocapture`
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
async fn idle_connection_memory() {
    use crate::translate::scale_tests::{heap, rss_mib, trim};
    const CONNECTIONS: usize = 5000;
    let rss_kib = || rss_mib() * 1024.0;
    let heap_kib = || heap().0 as f64 / 1024.0;
    let a = backend("a").await;
    let proxy = TestProxy::start(snapshot(&[(
        // idle_conns.py sends the address as its Host.
        "127.0.0.1",
        &[("/", service("a", vec![ready(a.addr)]))],
    )]))
    .await;
    let ready = std::env::temp_dir().join(format!("idle-conns-{}", std::process::id()));
    for round in ["warm-up", "measured"] {
        let _ = std::fs::remove_file(&ready);
        let (rss, heap_before) = (rss_kib(), heap_kib());
        let mut client = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/bench/idle_conns.py"
            ))
            .arg(proxy.addr.ip().to_string())
            .arg(proxy.addr.port().to_string())
            .arg(CONNECTIONS.to_string())
            .arg("/")
            .arg(&ready)
            .spawn()
            .expect("python3");
        while !ready.exists() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let per = |now: f64, then: f64| (now - then) / CONNECTIONS as f64;
        let rss_added = per(rss_kib(), rss);
        let t = std::time::Instant::now();
        trim();
        println!("malloc_trim took {:?}", t.elapsed());
        println!(
            "{round}: per idle connection {rss_added:.2} KiB RSS, {:.2} KiB after malloc_trim, {:.2} KiB heap in use; {} held by the client, {} open, {} parked",
            per(rss_kib(), rss),
            per(heap_kib(), heap_before),
            std::fs::read_to_string(&ready).unwrap_or_default().trim(),
            proxy.metrics.connections_open.get(),
            proxy.metrics.connections_parked.get()
        );
        let _ = client.kill();
        let _ = client.wait();
        while proxy.metrics.connections_open.get() > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = std::fs::remove_file(&ready);
}
