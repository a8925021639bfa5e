//! Per-Ingress policies from ingress-nginx annotations, through the real data plane against
//! the real control plane: redirects, rewrites, basic and external auth (failing closed),
//! CORS, rate limits, allow and deny lists, session affinity across an endpoint going away,
//! body-size limits, and Events for invalid values.
//!
//! Backends are echo servers on 10.244.128.0/17 published through EndpointSlices; the external
//! auth service is a small server on the same range; the auth-secret's mirror is created as
//! `sluice_crds::mirror` specifies (the operator's mirroring has its own tests).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use sluice_test_support::backend::{Echo, next_backend_ip};
use sluice_test_support::fleet::{DataPlane, apply_fleet_objects};
use sluice_test_support::publish::endpoint_slice;
use sluice_test_support::tls::{Issued, apply_mirror_typed};
use sluice_test_support::{
    Backend, ServicePortSpec, TestEnv, TestNamespace, publish_service, wait_until,
};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(30);
const SET: &str = "fleet";
const NGINX: &str = "nginx.ingress.kubernetes.io/";

struct World {
    client: kube::Client,
    fleet: TestNamespace,
    app: TestNamespace,
    backends: Vec<Backend>,
    dp: DataPlane,
}

fn http_port() -> [ServicePortSpec; 1] {
    [ServicePortSpec {
        name: "http".into(),
        port: 80,
        target_port: 8080,
    }]
}

fn class(app: &TestNamespace) -> String {
    format!("pol-{}", app.name)
}

async fn world(prefix: &str, proxy: Value) -> anyhow::Result<World> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let fleet = TestNamespace::create(&env, &client, &format!("{prefix}-set")).await?;
    let app = TestNamespace::create(&env, &client, &format!("{prefix}-app")).await?;
    let class = class(&app);
    apply_fleet_objects(&client, &fleet.name, SET, &class, json!({}), proxy).await?;
    let dp = DataPlane::start(&env, &fleet.name, SET, &class).await?;
    Ok(World {
        client,
        fleet,
        app,
        backends: Vec::new(),
        dp,
    })
}

impl World {
    /// Echo backends `name-0`.. published as one Service `name` (port 80).
    async fn service(&mut self, name: &str, replicas: usize) -> anyhow::Result<Vec<SocketAddr>> {
        let mut addrs = Vec::new();
        for i in 0..replicas {
            let b = Backend::http(&format!("{name}-{i}"), 8080).await?;
            addrs.push(b.addr);
            self.backends.push(b);
        }
        self.publish(name, &addrs).await?;
        Ok(addrs)
    }

    async fn publish(&self, name: &str, addrs: &[SocketAddr]) -> anyhow::Result<()> {
        publish_service(&self.client, &self.app.name, name, &http_port(), addrs).await?;
        Ok(())
    }

    /// Replaces the endpoints of Service `name`.
    async fn move_endpoints(&self, name: &str, addrs: &[SocketAddr]) -> anyhow::Result<()> {
        let slice = endpoint_slice(&self.app.name, name, &http_port(), addrs);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &self.app.name);
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        api.patch(
            &slice_name,
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(slice),
        )
        .await?;
        Ok(())
    }

    /// An Ingress with nginx-prefixed `annotations` routing `host` `path` to `service`.
    async fn ingress(
        &self,
        name: &str,
        annotations: &[(&str, &str)],
        host: &str,
        path: &str,
        path_type: &str,
        service: &str,
    ) -> anyhow::Result<()> {
        let annotations: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| (format!("{NGINX}{k}"), (*v).to_owned()))
            .collect();
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &self.app.name);
        api.patch(
            name,
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "annotations": annotations},
                "spec": {
                    "ingressClassName": class(&self.app),
                    "rules": [{"host": host, "http": {"paths": [{
                        "path": path, "pathType": path_type,
                        "backend": {"service": {"name": service, "port": {"number": 80}}},
                    }]}}],
                },
            })),
        )
        .await?;
        Ok(())
    }

    async fn send(&self, req: Req<'_>) -> anyhow::Result<Resp> {
        send(self.dp.http, req).await
    }

    /// Waits until `req` answers `status`.
    async fn wait_status(&self, req: Req<'_>, status: u16) -> anyhow::Result<Resp> {
        let what = format!("{} {}{} answering {status}", req.method, req.host, req.path);
        wait_until(&what, WAIT, || {
            let req = req.clone();
            async move {
                let resp = self.send(req).await?;
                Ok((resp.status == status).then_some(resp))
            }
        })
        .await
    }

    /// The notes of Warning Events on Ingress `name`.
    async fn events(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.app.name);
        let list = api
            .list(&ListParams::default().fields(&format!("regarding.name={name}")))
            .await?;
        Ok(list.items.into_iter().filter_map(|e| e.note).collect())
    }

    async fn wait_event(&self, name: &str, needle: &str) -> anyhow::Result<String> {
        wait_until(
            &format!("an Event on {name} with {needle:?}"),
            WAIT,
            || async {
                Ok(self
                    .events(name)
                    .await?
                    .into_iter()
                    .find(|n| n.contains(needle)))
            },
        )
        .await
    }
}

#[derive(Clone)]
struct Req<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Vec<u8>,
}

fn get<'a>(host: &'a str, path: &'a str) -> Req<'a> {
    Req {
        method: "GET",
        host,
        path,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

impl<'a> Req<'a> {
    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn echo(&self) -> Option<Echo> {
        serde_json::from_slice(&self.body).ok()
    }
}

async fn send(addr: SocketAddr, req: Req<'_>) -> anyhow::Result<Resp> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(req.method)
        .uri(req.path)
        .header(hyper::header::HOST, req.host);
    for (name, value) in &req.headers {
        builder = builder.header(*name, value.as_str());
    }
    let resp = sender
        .send_request(builder.body(Full::new(Bytes::from(req.body)))?)
        .await?;
    let (parts, body) = resp.into_parts();
    Ok(Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
    })
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// Standard base64 (the tests crate has no base64 dependency for this one use).
fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A stand-in for oauth2-proxy's `/oauth2/auth`: `Bearer good` is alice (200 with
/// `X-Auth-User`), `Bearer forbidden` gets 403, `Bearer broken` 500, anything else 401.
/// Counts the requests it answered and records the last X-Original-URL.
struct AuthService {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    last_original: Arc<std::sync::Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuthService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn auth_service() -> anyhow::Result<AuthService> {
    let listener = TcpListener::bind((next_backend_ip(), 9091)).await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicUsize::new(0));
    let last_original = Arc::new(std::sync::Mutex::new(String::new()));
    let (c, l) = (calls.clone(), last_original.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (c, l) = (c.clone(), l.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (c, l) = (c.clone(), l.clone());
                    async move {
                        c.fetch_add(1, Ordering::SeqCst);
                        if let Some(v) = req.headers().get("x-original-url")
                            && let (Ok(v), Ok(mut last)) = (v.to_str(), l.lock())
                        {
                            *last = v.to_owned();
                        }
                        let token = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let (status, user) = match token.as_str() {
                            "Bearer good" => (200, Some("alice")),
                            "Bearer forbidden" => (403, None),
                            "Bearer broken" => (500, None),
                            _ => (401, None),
                        };
                        let mut resp = Response::builder().status(status);
                        if let Some(user) = user {
                            resp = resp.header("x-auth-user", user).header("x-not-copied", "1");
                        }
                        Ok::<_, Infallible>(
                            resp.body(Full::new(Bytes::new()))
                                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(AuthService {
        addr,
        calls,
        last_original,
        task,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_rewrites_cors_limits_and_access_lists() -> anyhow::Result<()> {
    let mut w = world("pol-traffic", json!({"limitReqStatusCode": 429})).await?;
    w.service("web", 1).await?;

    w.ingress(
        "moved",
        &[
            ("permanent-redirect", "https://new.example.com$request_uri"),
            ("permanent-redirect-code", "308"),
        ],
        "moved.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "temp",
        &[("temporal-redirect", "https://maintenance.example.com/")],
        "temp.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "approot",
        &[("app-root", "/app")],
        "approot.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "rewrite",
        &[
            ("rewrite-target", "/$2"),
            ("x-forwarded-prefix", "/api"),
            ("upstream-vhost", "internal.$namespace.svc"),
        ],
        "rewrite.example.com",
        "/api(/|$)(.*)",
        "ImplementationSpecific",
        "web",
    )
    .await?;
    w.ingress(
        "cors",
        &[
            ("enable-cors", "true"),
            (
                "cors-allow-origin",
                "https://app.example.com, https://*.trusted.example.com",
            ),
            ("cors-allow-methods", "GET, POST"),
            ("cors-max-age", "600"),
        ],
        "cors.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "limited",
        &[("limit-rps", "1"), ("limit-burst-multiplier", "3")],
        "limited.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "denied",
        &[("denylist-source-range", "0.0.0.0/0")],
        "denied.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "allowed-elsewhere",
        &[("whitelist-source-range", "192.0.2.0/24, 2001:db8::/32")],
        "allowlist.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "allowed-here",
        &[("whitelist-source-range", "10.0.0.0/8")],
        "allowed.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "small-bodies",
        &[("proxy-body-size", "10")],
        "small.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    // A header-only snippet is translated; one holding an access rule fails closed.
    w.ingress(
        "headers",
        &[(
            "configuration-snippet",
            "more_set_headers \"X-Frame-Options: DENY\";\n\
             proxy_set_header X-Team \"payments\";\n\
             proxy_hide_header X-Backend;",
        )],
        "headers.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "guarded",
        &[(
            "server-snippet",
            "location ~* ^/admin { deny all; return 403; }",
        )],
        "guarded.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "www",
        &[("from-to-www-redirect", "true")],
        "shop.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    // An allow list that cannot be parsed fails closed: the Ingress answers 503.
    w.ingress(
        "bad-allowlist",
        &[("whitelist-source-range", "10.0.0.0/8, not-a-cidr")],
        "badallow.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;

    // Redirects, with the request URI expanded into the permanent one.
    let resp = w
        .wait_status(get("moved.example.com", "/a/b?c=1&d=%20"), 308)
        .await?;
    assert_eq!(
        resp.header("location"),
        Some("https://new.example.com/a/b?c=1&d=%20")
    );
    let resp = w.wait_status(get("temp.example.com", "/x"), 302).await?;
    assert_eq!(
        resp.header("location"),
        Some("https://maintenance.example.com/")
    );
    let resp = w.wait_status(get("approot.example.com", "/"), 302).await?;
    assert_eq!(
        resp.header("location"),
        Some("http://approot.example.com/app")
    );
    let resp = w
        .wait_status(get("approot.example.com", "/app/page"), 200)
        .await?;
    assert_eq!(resp.echo().map(|e| e.path), Some("/app/page".to_owned()));

    let resp = w
        .wait_status(get("www.shop.example.com", "/cart?id=3"), 308)
        .await?;
    assert_eq!(
        resp.header("location"),
        Some("http://shop.example.com/cart?id=3")
    );
    assert_eq!(w.send(get("shop.example.com", "/")).await?.status, 200);

    // rewrite-target with the capture group of the regex path, the query kept.
    let resp = w
        .wait_status(get("rewrite.example.com", "/api/users/7?full=1"), 200)
        .await?;
    let echo = resp.echo().context("rewrite: not an echo")?;
    assert_eq!(echo.path, "/users/7?full=1");
    assert_eq!(echo.host, format!("internal.{}.svc", w.app.name));
    assert_eq!(
        echo.headers.get("x-forwarded-prefix").map(String::as_str),
        Some("/api")
    );
    let resp = w.send(get("rewrite.example.com", "/api")).await?;
    assert_eq!(resp.echo().map(|e| e.path), Some("/".to_owned()));

    // CORS: the preflight is answered without the upstream; a listed origin is echoed, a
    // wildcard subdomain matches, anything else gets no Allow-Origin.
    let preflight = w
        .wait_status(
            Req {
                method: "OPTIONS",
                ..get("cors.example.com", "/api")
            }
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST"),
            204,
        )
        .await?;
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    assert!(preflight.body.is_empty(), "a preflight has no body");
    let resp = w
        .send(get("cors.example.com", "/").header("origin", "https://a.trusted.example.com"))
        .await?;
    assert_eq!(resp.status, 200);
    assert!(
        resp.echo().is_some(),
        "a normal request reaches the upstream"
    );
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://a.trusted.example.com")
    );
    let resp = w
        .send(get("cors.example.com", "/").header("origin", "https://evil.example"))
        .await?;
    assert_eq!(resp.header("access-control-allow-origin"), None);

    // Rate limit: 1 r/s with a burst of 3; the set answers 429 (limitReqStatusCode).
    w.wait_status(get("limited.example.com", "/"), 200).await?;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(w.send(get("limited.example.com", "/")).await?.status);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        limited >= 5,
        "10 quick requests after one: {statuses:?} (burst 3, 1 r/s)"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(w.send(get("limited.example.com", "/")).await?.status, 200);

    // Allow and deny lists: our address is in 10.0.0.0/8.
    w.wait_status(get("denied.example.com", "/"), 403).await?;
    w.wait_status(get("allowlist.example.com", "/"), 403)
        .await?;
    w.wait_status(get("allowed.example.com", "/"), 200).await?;
    let bad = w.wait_status(get("badallow.example.com", "/"), 503).await?;
    assert!(
        bad.echo().is_none(),
        "a denied Ingress never reaches upstream"
    );
    w.wait_event("bad-allowlist", "whitelist-source-range")
        .await?;

    // Snippets.
    let resp = w.wait_status(get("headers.example.com", "/"), 200).await?;
    assert_eq!(resp.header("x-frame-options"), Some("DENY"));
    assert_eq!(resp.header("x-backend"), None, "proxy_hide_header");
    let echo = resp.echo().context("headers: not an echo")?;
    assert_eq!(
        echo.headers.get("x-team").map(String::as_str),
        Some("payments")
    );
    let guarded = w
        .wait_status(get("guarded.example.com", "/admin"), 503)
        .await?;
    assert!(guarded.echo().is_none());
    w.wait_event("guarded", "server-snippet").await?;

    // proxy-body-size per Ingress.
    let big = Req {
        method: "POST",
        body: vec![b'x'; 100],
        ..get("small.example.com", "/")
    };
    w.wait_status(big, 413).await?;
    let small = Req {
        method: "POST",
        body: vec![b'x'; 10],
        ..get("small.example.com", "/")
    };
    assert_eq!(w.send(small).await?.status, 200);
    drop(w.fleet);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_and_external_auth_fail_closed() -> anyhow::Result<()> {
    let mut w = world("pol-auth", json!({})).await?;
    w.service("private", 1).await?;
    let auth = auth_service().await?;

    // htpasswd with the three hash forms, and its mirror.
    let htpasswd = "# users\n\
        bob:$2y$08$fvYy/YXZI71SIx/JhoqJgurFADKbfd3gRdpzg/kUedepC7aFD935u\n\
        carol:$apr1$s1uiceSa$SEioBpbx9sz/G.rfJF6Ls0\n\
        dave:{SHA}xO2etOilyqtV8o1RvvnmkeBx7QI=\n";
    apply_mirror_typed(
        &w.client,
        "Opaque",
        &w.fleet.name,
        SET,
        &w.app.name,
        "users",
        "1",
        json!({"auth": htpasswd}),
    )
    .await?;
    w.ingress(
        "basic",
        &[
            ("auth-type", "basic"),
            ("auth-secret", "users"),
            ("auth-realm", "Staff only"),
        ],
        "basic.example.com",
        "/",
        "Prefix",
        "private",
    )
    .await?;
    // Its Secret does not exist: fail closed.
    w.ingress(
        "basic-missing",
        &[("auth-type", "basic"), ("auth-secret", "nobody")],
        "missing.example.com",
        "/",
        "Prefix",
        "private",
    )
    .await?;
    let auth_url = format!("http://{}/oauth2/auth", auth.addr);
    w.ingress(
        "external",
        &[
            ("auth-url", &auth_url),
            (
                "auth-signin",
                "https://auth.example.com/oauth2/start?rd=$scheme://$http_host$escaped_request_uri",
            ),
            ("auth-response-headers", "X-Auth-User"),
        ],
        "ext.example.com",
        "/",
        "Prefix",
        "private",
    )
    .await?;
    // Nothing listens on this port: the auth request fails, so the request is refused.
    let dead = format!("http://{}/oauth2/auth", SocketAddr::new(auth.addr.ip(), 9));
    w.ingress(
        "external-down",
        &[("auth-url", &dead)],
        "extdown.example.com",
        "/",
        "Prefix",
        "private",
    )
    .await?;

    // Basic auth.
    let challenge = w.wait_status(get("basic.example.com", "/"), 401).await?;
    assert_eq!(
        challenge.header("www-authenticate"),
        Some("Basic realm=\"Staff only\", charset=\"UTF-8\"")
    );
    assert!(challenge.echo().is_none());
    for (user, password) in [
        ("bob", "hunter2"),
        ("carol", "s3cret!"),
        ("dave", "sha-pass"),
    ] {
        let resp = w
            .send(get("basic.example.com", "/").header("authorization", basic(user, password)))
            .await?;
        assert_eq!(resp.status, 200, "{user}");
        assert_eq!(resp.echo().map(|e| e.backend), Some("private-0".to_owned()));
    }
    for (user, password) in [("bob", "hunter3"), ("carol", "s3cret"), ("eve", "x")] {
        let resp = w
            .send(get("basic.example.com", "/").header("authorization", basic(user, password)))
            .await?;
        assert_eq!(resp.status, 401, "{user}/{password}");
        assert!(resp.echo().is_none());
    }
    let missing = w.wait_status(get("missing.example.com", "/"), 503).await?;
    assert!(missing.echo().is_none());
    w.wait_event("basic-missing", "not found").await?;

    // External auth: signin redirect with where to come back to.
    let resp = w
        .wait_status(get("ext.example.com", "/page?x=1"), 302)
        .await?;
    assert_eq!(
        resp.header("location"),
        Some("https://auth.example.com/oauth2/start?rd=http://ext.example.com%2Fpage%3Fx%3D1"),
        "the rd parameter"
    );
    let resp = w
        .send(get("ext.example.com", "/page?x=1").header("authorization", "Bearer good"))
        .await?;
    assert_eq!(resp.status, 200);
    let echo = resp.echo().context("external auth: not an echo")?;
    assert_eq!(
        echo.headers.get("x-auth-user").map(String::as_str),
        Some("alice")
    );
    assert!(!echo.headers.contains_key("x-not-copied"));
    assert_eq!(
        auth.last_original
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
        "http://ext.example.com/page?x=1"
    );
    let resp = w
        .send(get("ext.example.com", "/").header("authorization", "Bearer forbidden"))
        .await?;
    assert_eq!(resp.status, 403);
    assert!(resp.echo().is_none());
    let resp = w
        .send(get("ext.example.com", "/").header("authorization", "Bearer broken"))
        .await?;
    assert_eq!(resp.status, 500);
    assert!(resp.echo().is_none());
    let before = auth.calls.load(Ordering::SeqCst);
    let resp = w
        .wait_status(
            get("extdown.example.com", "/").header("authorization", "Bearer good"),
            500,
        )
        .await?;
    assert!(resp.echo().is_none(), "an unreachable auth service refuses");
    assert_eq!(auth.calls.load(Ordering::SeqCst), before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn session_affinity_pins_and_repins_when_the_endpoint_goes() -> anyhow::Result<()> {
    let mut w = world("pol-aff", json!({})).await?;
    let addrs = w.service("sticky", 3).await?;
    w.ingress(
        "sticky",
        &[
            ("affinity", "cookie"),
            ("affinity-mode", "persistent"),
            ("session-cookie-name", "route"),
            ("session-cookie-max-age", "3600"),
        ],
        "sticky.example.com",
        "/",
        "Prefix",
        "sticky",
    )
    .await?;
    let first = w.wait_status(get("sticky.example.com", "/"), 200).await?;
    let set_cookie = first
        .header("set-cookie")
        .context("the first response sets the affinity cookie")?
        .to_owned();
    assert!(set_cookie.starts_with("route="), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=3600"), "{set_cookie}");
    let cookie = set_cookie
        .split(';')
        .next()
        .context("cookie pair")?
        .to_owned();
    let pinned = first.echo().context("echo")?.backend;
    for _ in 0..12 {
        let resp = w
            .send(get("sticky.example.com", "/").header("cookie", cookie.clone()))
            .await?;
        assert_eq!(resp.echo().map(|e| e.backend), Some(pinned.clone()));
        assert_eq!(
            resp.header("set-cookie"),
            None,
            "no new cookie while pinned"
        );
    }
    // The pinned endpoint leaves the Service: the next request is served elsewhere, re-pinned.
    let index: usize = pinned
        .rsplit('-')
        .next()
        .and_then(|i| i.parse().ok())
        .context("backend index")?;
    let remaining: Vec<SocketAddr> = addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, a)| *a)
        .collect();
    w.move_endpoints("sticky", &remaining).await?;
    let repinned = wait_until("a re-pinned response", WAIT, || {
        let cookie = cookie.clone();
        let w = &w;
        let pinned = pinned.clone();
        async move {
            let resp = w
                .send(get("sticky.example.com", "/").header("cookie", cookie))
                .await?;
            Ok(resp
                .echo()
                .filter(|e| e.backend != pinned)
                .map(|e| (e.backend, resp.header("set-cookie").map(str::to_owned))))
        }
    })
    .await?;
    assert!(
        repinned.1.is_some_and(|c| c.starts_with("route=")),
        "re-pinning sets a new cookie"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_values_are_reported_and_the_rest_applies() -> anyhow::Result<()> {
    let mut w = world("pol-events", json!({})).await?;
    w.service("web", 1).await?;
    w.ingress(
        "typos",
        &[
            ("affinity", "sticky"),
            ("proxy-read-timeout", "soon"),
            ("rate-limit", "10"),
            ("enable-cors", "true"),
        ],
        "typos.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    let resp = w
        .wait_status(
            get("typos.example.com", "/").header("origin", "https://x.example"),
            200,
        )
        .await?;
    // CORS still applies; the invalid keys do not take the Ingress down.
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    let note = w.wait_event("typos", "affinity").await?;
    assert!(note.contains("cookie"), "suggests cookie: {note}");
    w.wait_event("typos", "proxy-read-timeout").await?;
    w.wait_event("typos", "rate-limit").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_protocols_reach_tls_and_h2c_backends() -> anyhow::Result<()> {
    let mut w = world("pol-proto", json!({})).await?;
    // A TLS echo backend with a self-signed certificate (proxy-ssl-verify is off by default,
    // as in ingress-nginx) and a plain one that also speaks h2c.
    let secure = Backend::https("secure-0", 8443, &["secure.internal"]).await?;
    let ports = [ServicePortSpec {
        name: "https".into(),
        port: 80,
        target_port: 8443,
    }];
    publish_service(&w.client, &w.app.name, "secure", &ports, &[secure.addr]).await?;
    w.backends.push(secure);
    w.service("plain", 1).await?;
    w.ingress(
        "https-backend",
        &[("backend-protocol", "HTTPS")],
        "tls-backend.example.com",
        "/",
        "Prefix",
        "secure",
    )
    .await?;
    w.ingress(
        "grpc-backend",
        &[("backend-protocol", "GRPC")],
        "h2c-backend.example.com",
        "/",
        "Prefix",
        "plain",
    )
    .await?;
    w.ingress(
        "http-backend",
        &[],
        "http-backend.example.com",
        "/",
        "Prefix",
        "plain",
    )
    .await?;

    let resp = w
        .wait_status(get("tls-backend.example.com", "/x"), 200)
        .await?;
    let echo = resp.echo().context("HTTPS backend: not an echo")?;
    assert!(echo.tls, "the backend saw TLS");
    assert_eq!(echo.backend, "secure-0");
    let resp = w
        .wait_status(get("h2c-backend.example.com", "/svc.Echo/Call"), 200)
        .await?;
    let echo = resp.echo().context("GRPC backend: not an echo")?;
    assert_eq!(echo.version, "HTTP/2.0", "GRPC goes upstream as h2c");
    assert_eq!(echo.headers.get("te").map(String::as_str), Some("trailers"));
    // proxy-ssl-*: verify the backend's (self-signed) certificate against the Secret's CA,
    // under the name given; a name the certificate lacks fails the connection.
    let ca = w.backends[0]
        .tls
        .as_ref()
        .map(|t| t.cert_pem.clone())
        .context("the TLS backend's certificate")?;
    apply_mirror_typed(
        &w.client,
        "Opaque",
        &w.fleet.name,
        SET,
        &w.app.name,
        "backend-ca",
        "1",
        json!({"ca.crt": ca}),
    )
    .await?;
    w.ingress(
        "verified",
        &[
            ("backend-protocol", "HTTPS"),
            ("proxy-ssl-secret", "backend-ca"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", "secure.internal"),
        ],
        "verified.example.com",
        "/",
        "Prefix",
        "secure",
    )
    .await?;
    w.ingress(
        "misnamed",
        &[
            ("backend-protocol", "HTTPS"),
            ("proxy-ssl-secret", "backend-ca"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", "other.internal"),
        ],
        "misnamed.example.com",
        "/",
        "Prefix",
        "secure",
    )
    .await?;
    let resp = w.wait_status(get("verified.example.com", "/"), 200).await?;
    assert!(resp.echo().is_some_and(|e| e.tls));
    let resp = w.wait_status(get("misnamed.example.com", "/"), 502).await?;
    assert!(
        resp.echo().is_none(),
        "an unverifiable backend gets no request"
    );

    w.ingress(
        "old-http",
        &[
            ("proxy-http-version", "1.0"),
            ("connection-proxy-header", "close"),
        ],
        "old-http.example.com",
        "/",
        "Prefix",
        "plain",
    )
    .await?;
    let resp = w.wait_status(get("old-http.example.com", "/"), 200).await?;
    let echo = resp.echo().context("HTTP/1.0 backend: not an echo")?;
    assert_eq!(echo.version, "HTTP/1.0");
    assert_eq!(
        echo.headers.get("connection").map(String::as_str),
        Some("close")
    );

    let resp = w
        .wait_status(get("http-backend.example.com", "/"), 200)
        .await?;
    let echo = resp.echo().context("HTTP backend: not an echo")?;
    assert_eq!(echo.version, "HTTP/1.1");
    assert!(!echo.tls);
    Ok(())
}

/// A backend that answers with the status its path names (`/status/404` → 404) and its name
/// in `x-backend`; any other path is 200.
async fn status_service(
    name: &'static str,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind((next_backend_ip(), 8080)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let status = req
                        .uri()
                        .path()
                        .strip_prefix("/status/")
                        .and_then(|s| s.parse::<u16>().ok())
                        .unwrap_or(200);
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .header("x-backend", name)
                            .body(Full::new(Bytes::from_static(b"from the app\n")))
                            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_by_header_cookie_and_weight() -> anyhow::Result<()> {
    let mut w = world("pol-canary", json!({})).await?;
    w.service("stable", 1).await?;
    w.service("next", 1).await?;
    w.ingress("main", &[], "shop.example.com", "/", "Prefix", "stable")
        .await?;
    w.ingress(
        "main-canary",
        &[
            ("canary", "true"),
            ("canary-by-header", "X-Canary"),
            ("canary-by-cookie", "canary"),
        ],
        "shop.example.com",
        "/",
        "Prefix",
        "next",
    )
    .await?;
    let backend = |r: &Resp| r.echo().map(|e| e.backend).unwrap_or_default();
    let resp = w
        .wait_status(
            get("shop.example.com", "/").header("x-canary", "always"),
            200,
        )
        .await?;
    let resp = if backend(&resp) == "next-0" {
        resp
    } else {
        wait_until("the canary to be attached", WAIT, || async {
            let r = w
                .send(get("shop.example.com", "/").header("x-canary", "always"))
                .await?;
            Ok((backend(&r) == "next-0").then_some(r))
        })
        .await?
    };
    assert_eq!(backend(&resp), "next-0");
    for _ in 0..5 {
        let plain = w.send(get("shop.example.com", "/")).await?;
        assert_eq!(
            backend(&plain),
            "stable-0",
            "no header, no cookie, weight 0"
        );
        let never = w
            .send(
                get("shop.example.com", "/")
                    .header("x-canary", "never")
                    .header("cookie", "canary=always"),
            )
            .await?;
        assert_eq!(
            backend(&never),
            "stable-0",
            "the header wins over the cookie"
        );
        let cookie = w
            .send(get("shop.example.com", "/").header("cookie", "canary=always"))
            .await?;
        assert_eq!(backend(&cookie), "next-0");
    }

    // Weight: all of it, then half.
    w.ingress(
        "main-canary",
        &[("canary", "true"), ("canary-weight", "100")],
        "shop.example.com",
        "/",
        "Prefix",
        "next",
    )
    .await?;
    wait_until("weight 100", WAIT, || async {
        let r = w.send(get("shop.example.com", "/")).await?;
        Ok((backend(&r) == "next-0").then_some(()))
    })
    .await?;
    w.ingress(
        "main-canary",
        &[("canary", "true"), ("canary-weight", "50")],
        "shop.example.com",
        "/",
        "Prefix",
        "next",
    )
    .await?;
    let split = wait_until("weight 50 to split traffic", WAIT, || async {
        let mut next = 0;
        for _ in 0..100 {
            if backend(&w.send(get("shop.example.com", "/")).await?) == "next-0" {
                next += 1;
            }
        }
        Ok((20..=80).contains(&next).then_some(next))
    })
    .await?;
    assert!((20..=80).contains(&split), "{split} of 100 to the canary");

    // A canary with an invalid weight takes nothing: the main Ingress keeps all traffic.
    w.ingress(
        "main-canary",
        &[("canary", "true"), ("canary-weight", "half")],
        "shop.example.com",
        "/",
        "Prefix",
        "next",
    )
    .await?;
    wait_until("the broken canary to take nothing", WAIT, || async {
        for _ in 0..20 {
            if backend(&w.send(get("shop.example.com", "/")).await?) != "stable-0" {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    w.wait_event("main-canary", "canary-weight").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hashing_ewma_service_upstream_and_custom_errors() -> anyhow::Result<()> {
    let mut w = world("pol-lb", json!({})).await?;
    w.service("pool", 3).await?;
    w.ingress(
        "hashed",
        &[("upstream-hash-by", "$http_x_user")],
        "hash.example.com",
        "/",
        "Prefix",
        "pool",
    )
    .await?;
    w.ingress(
        "ewma",
        &[("load-balance", "ewma")],
        "ewma.example.com",
        "/",
        "Prefix",
        "pool",
    )
    .await?;

    // upstream-hash-by: one user always lands on one endpoint; users spread.
    w.wait_status(get("hash.example.com", "/").header("x-user", "u0"), 200)
        .await?;
    let mut chosen = std::collections::BTreeSet::new();
    for user in 0..20 {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let r = w
                .send(get("hash.example.com", "/").header("x-user", format!("u{user}")))
                .await?;
            seen.insert(r.echo().map(|e| e.backend).unwrap_or_default());
        }
        assert_eq!(seen.len(), 1, "user u{user} moved between {seen:?}");
        chosen.extend(seen);
    }
    assert!(chosen.len() >= 2, "20 users all on {chosen:?}");

    // ewma: every request served by the pool.
    w.wait_status(get("ewma.example.com", "/"), 200).await?;
    for _ in 0..20 {
        let r = w.send(get("ewma.example.com", "/")).await?;
        assert_eq!(r.status, 200);
        assert!(r.echo().is_some_and(|e| e.backend.starts_with("pool-")));
    }

    // service-upstream: to the ClusterIP (local in the test network), not the endpoints.
    let (svc, _) = publish_service(
        &w.client,
        &w.app.name,
        "viaip",
        &http_port(),
        &[w.backends[0].addr],
    )
    .await?;
    let cluster_ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .context("the Service has a ClusterIP")?;
    let at_ip = Backend::http_at("cluster-ip", format!("{cluster_ip}:80").parse()?).await?;
    w.backends.push(at_ip);
    w.ingress(
        "viaip",
        &[("service-upstream", "true")],
        "viaip.example.com",
        "/",
        "Prefix",
        "viaip",
    )
    .await?;
    let r = w.wait_status(get("viaip.example.com", "/"), 200).await?;
    assert_eq!(r.echo().map(|e| e.backend), Some("cluster-ip".to_owned()));

    // custom-http-errors with default-backend: the app's 404 and 503 become the error
    // backend's page; other statuses pass.
    let (app, _app_task) = status_service("app").await?;
    w.publish("statusapp", &[app]).await?;
    w.service("errorpages", 1).await?;
    w.ingress(
        "errors",
        &[
            ("custom-http-errors", "404,503"),
            ("default-backend", "errorpages"),
        ],
        "errors.example.com",
        "/",
        "Prefix",
        "statusapp",
    )
    .await?;
    let r = w
        .wait_status(get("errors.example.com", "/status/418"), 418)
        .await?;
    assert_eq!(r.header("x-backend"), Some("app"), "418 is not listed");
    let r = w
        .wait_status(
            get("errors.example.com", "/status/404").header("accept", "application/json"),
            200,
        )
        .await?;
    let echo = r.echo().context("the error backend answered")?;
    assert_eq!(echo.backend, "errorpages-0");
    assert_eq!(echo.headers.get("x-code").map(String::as_str), Some("404"));
    assert_eq!(
        echo.headers.get("x-format").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        echo.headers.get("x-original-uri").map(String::as_str),
        Some("/status/404")
    );
    assert_eq!(
        echo.headers.get("x-ingress-name").map(String::as_str),
        Some("errors")
    );
    assert_eq!(
        echo.headers.get("x-service-name").map(String::as_str),
        Some("statusapp")
    );
    // The app scaled to zero: default-backend answers.
    w.move_endpoints("statusapp", &[]).await?;
    let served = wait_until("the default backend to answer", WAIT, || async {
        let r = w.send(get("errors.example.com", "/anything")).await?;
        Ok(r.echo().map(|e| (r.status, e.backend)))
    })
    .await?;
    assert_eq!(served, (200, "errorpages-0".to_owned()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_per_host() -> anyhow::Result<()> {
    use sluice_test_support::tls::{TestCa, Trust, apply_tls_secret_and_mirror, https_get_h1_as};
    let mut w = world("pol-mtls", json!({})).await?;
    w.service("api", 1).await?;
    let server_ca = TestCa::new("server CA")?;
    let client_ca = TestCa::new("client CA")?;
    let stranger_ca = TestCa::new("another CA")?;
    let server = server_ca.issue(&["mtls.example.com", "open.example.com"])?;
    apply_tls_secret_and_mirror(&w.client, &w.fleet.name, SET, &w.app.name, "site", &server)
        .await?;
    let ca_pem = pem_of(&client_ca.cert_der);
    apply_mirror_typed(
        &w.client,
        "Opaque",
        &w.fleet.name,
        SET,
        &w.app.name,
        "client-ca",
        "1",
        json!({"ca.crt": ca_pem}),
    )
    .await?;
    let api: Api<Ingress> = Api::namespaced(w.client.clone(), &w.app.name);
    for (name, host, annotations) in [
        (
            "mtls",
            "mtls.example.com",
            json!({
                "nginx.ingress.kubernetes.io/auth-tls-secret": "client-ca",
                "nginx.ingress.kubernetes.io/auth-tls-verify-client": "on",
                "nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream": "true",
            }),
        ),
        ("open", "open.example.com", json!({})),
    ] {
        api.patch(
            name,
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "annotations": annotations},
                "spec": {
                    "ingressClassName": class(&w.app),
                    "tls": [{"hosts": [host], "secretName": "site"}],
                    "rules": [{"host": host, "http": {"paths": [{
                        "path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "api", "port": {"number": 80}}},
                    }]}}],
                },
            })),
        )
        .await?;
    }
    let alice = client_ca.issue(&["alice"])?;
    let mallory = stranger_ca.issue(&["mallory"])?;
    let dp = &w.dp;
    let get_as = |host: &'static str, client: Option<Issued>| {
        let ca = server_ca.cert_der.clone();
        async move { https_get_h1_as(dp.https, host, host, "/", Trust::Ca(&ca), client.as_ref()).await }
    };
    // A valid client certificate: the backend gets the verification result and the PEM.
    let ok = wait_until("mTLS with a valid certificate", WAIT, || {
        let get = get_as("mtls.example.com", Some(alice.clone()));
        async move {
            Ok(get
                .await
                .ok()
                .filter(|r| r.status == 200 && r.body.starts_with(b"{")))
        }
    })
    .await?;
    let echo: Echo = serde_json::from_slice(&ok.body)?;
    assert_eq!(
        echo.headers.get("ssl-client-verify").map(String::as_str),
        Some("SUCCESS")
    );
    assert!(
        echo.headers
            .get("ssl-client-subject-dn")
            .is_some_and(|dn| dn.contains("CN=alice")),
        "{:?}",
        echo.headers.get("ssl-client-subject-dn")
    );
    assert!(
        echo.headers
            .get("ssl-client-cert")
            .is_some_and(|c| c.contains("BEGIN%20CERTIFICATE")),
        "the URL-encoded PEM"
    );
    // No certificate, or one from another CA: nginx's 400 pages, never the backend.
    let none = get_as("mtls.example.com", None).await?;
    assert_eq!(none.status, 400);
    assert!(String::from_utf8_lossy(&none.body).contains("No required SSL certificate"));
    let stranger = get_as("mtls.example.com", Some(mallory.clone())).await?;
    assert_eq!(stranger.status, 400);
    assert!(String::from_utf8_lossy(&stranger.body).contains("SSL certificate error"));
    // The host without client auth shares the port and serves without a certificate.
    // (Its Ingress may reach the data plane a moment after the other's.)
    wait_until("the host without client auth", WAIT, || {
        let get = get_as("open.example.com", None);
        async move { Ok(get.await.ok().filter(|r| r.status == 200)) }
    })
    .await?;
    Ok(())
}

/// PEM of a DER certificate.
fn pem_of(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_headers_from_a_mirrored_config_map() -> anyhow::Result<()> {
    let mut w = world("pol-hdrs", json!({})).await?;
    w.service("web", 1).await?;
    // No endpoints: Sluice answers 503 for the Ingress.
    w.publish("down", &[]).await?;
    // The mirror as the operator writes it; Content-Length is refused, the rest applied.
    let mirror = |version: &'static str, frame: &'static str| {
        let (client, fleet, app) = (w.client.clone(), w.fleet.name.clone(), w.app.name.clone());
        async move {
            sluice_test_support::config_map::apply_config_map_mirror(
                &client,
                &fleet,
                SET,
                &app,
                "headers",
                version,
                json!({
                    "X-Frame-Options": frame,
                    "X-Backend": "replaced",
                    "X-Team": "shop\n",
                    "Content-Length": "0",
                }),
            )
            .await
        }
    };
    mirror("1", "DENY").await?;
    let headers = [("custom-headers", "headers")];
    w.ingress("hdrs", &headers, "hdrs.example.com", "/", "Prefix", "web")
        .await?;
    w.ingress(
        "hdrs-down",
        &headers,
        "down.example.com",
        "/",
        "Prefix",
        "down",
    )
    .await?;
    w.ingress(
        "hdrs-denied",
        &[
            ("custom-headers", "headers"),
            ("whitelist-source-range", "192.0.2.0/24"),
        ],
        "denied.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;
    w.ingress(
        "hdrs-missing",
        &[("custom-headers", "nothing")],
        "missing.example.com",
        "/",
        "Prefix",
        "web",
    )
    .await?;

    // On the backend's answer, replacing what it set; the body is intact.
    let ok = wait_until("custom headers on hdrs.example.com", WAIT, || async {
        let resp = w.send(get("hdrs.example.com", "/")).await?;
        Ok((resp.status == 200 && resp.header("x-frame-options") == Some("DENY")).then_some(resp))
    })
    .await?;
    assert_eq!(ok.header("x-backend"), Some("replaced"));
    assert_eq!(ok.header("x-team"), Some("shop"));
    assert_eq!(ok.echo().map(|e| e.backend), Some("web-0".to_owned()));
    assert_ne!(ok.header("content-length"), Some("0"));
    w.wait_event("hdrs", "Content-Length").await?;

    // On Sluice's own error answers for the Ingress too.
    let down = w.wait_status(get("down.example.com", "/"), 503).await?;
    assert_eq!(down.header("x-frame-options"), Some("DENY"), "{down:?}");
    let denied = w.wait_status(get("denied.example.com", "/"), 403).await?;
    assert_eq!(denied.header("x-frame-options"), Some("DENY"), "{denied:?}");

    // A ConfigMap that does not exist is reported; the Ingress is served without headers.
    let missing = w.wait_status(get("missing.example.com", "/"), 200).await?;
    assert_eq!(missing.header("x-frame-options"), None);
    assert_eq!(missing.header("x-backend"), Some("web-0"));
    w.wait_event("hdrs-missing", "not found").await?;

    // A change of the ConfigMap (a new mirror version) reaches the responses.
    mirror("2", "SAMEORIGIN").await?;
    wait_until("the changed header", WAIT, || async {
        let resp = w.send(get("hdrs.example.com", "/")).await?;
        Ok((resp.header("x-frame-options") == Some("SAMEORIGIN")).then_some(()))
    })
    .await?;
    Ok(())
}
