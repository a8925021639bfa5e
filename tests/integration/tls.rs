//! TLS through the real data plane against the real control plane: certificates from Secrets
//! mirrored into the set's namespace (created here as `sluice_crds::mirror` specifies, not by
//! the operator), termination by SNI with wildcard and default certificates, HTTP/2 by ALPN,
//! SSL passthrough to a backend that terminates its own TLS, the 421 guard, redirects with the
//! ACME exemption, HSTS, and rotation under load.
//!
//! `sluice-dataplane` runs as a process on its own 10.244.x.y address; backends are real
//! servers on 10.244.128.0/17 published through EndpointSlices. Every client is a real rustls
//! client verifying against the test CA (or comparing the presented certificate exactly).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use sluice_test_support::backend::Echo;
use sluice_test_support::fleet::{DataPlane, apply_fleet_objects};
use sluice_test_support::tls::{
    HttpsResponse, Issued, TestCa, Trust, apply_mirror_data, apply_tls_secret,
    apply_tls_secret_and_mirror, h2_connect, http_get_full, https_get_h1,
};
use sluice_test_support::{
    Backend, ServicePortSpec, TestEnv, TestNamespace, publish_service, wait_until,
};

const WAIT: Duration = Duration::from_secs(30);
const SET: &str = "fleet";

/// A set namespace (ConfigMap, mirrors, default certificate, the data plane's Lease) and an
/// application namespace (Ingresses, Services, origin Secrets).
struct World {
    env: TestEnv,
    client: kube::Client,
    fleet: TestNamespace,
    app: TestNamespace,
    ca: TestCa,
    backends: Vec<Backend>,
}

async fn world(prefix: &str) -> anyhow::Result<World> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let fleet = TestNamespace::create(&env, &client, &format!("{prefix}-set")).await?;
    let app = TestNamespace::create(&env, &client, &format!("{prefix}-app")).await?;
    Ok(World {
        env,
        client,
        fleet,
        app,
        ca: TestCa::new("Sluice test CA")?,
        backends: Vec::new(),
    })
}

impl World {
    fn class(&self) -> String {
        format!("tls-{}", self.app.name)
    }

    /// An HTTP echo backend published as Service `name` (port 80).
    async fn service(&mut self, name: &str) -> anyhow::Result<()> {
        let b = Backend::http(name, 8080).await?;
        let ports = [ServicePortSpec {
            name: "http".into(),
            port: 80,
            target_port: 8080,
        }];
        publish_service(&self.client, &self.app.name, name, &ports, &[b.addr]).await?;
        self.backends.push(b);
        Ok(())
    }

    /// The fleet objects with `proxy` settings, and a running data plane.
    async fn data_plane(&self, proxy: Value) -> anyhow::Result<DataPlane> {
        let class = self.class();
        apply_fleet_objects(
            &self.client,
            &self.fleet.name,
            SET,
            &class,
            json!({}),
            proxy,
        )
        .await?;
        DataPlane::start(&self.env, &self.fleet.name, SET, &class).await
    }

    /// Origin Secret `name` in the app namespace and its mirror in the set's namespace.
    async fn tls_secret(&self, name: &str, issued: &Issued) -> anyhow::Result<String> {
        apply_tls_secret_and_mirror(
            &self.client,
            &self.fleet.name,
            SET,
            &self.app.name,
            name,
            issued,
        )
        .await
    }

    async fn ingress(&self, name: &str, annotations: Value, spec: Value) -> anyhow::Result<()> {
        let mut spec = spec;
        spec["ingressClassName"] = json!(self.class());
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &self.app.name);
        api.patch(
            name,
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "annotations": annotations},
                "spec": spec,
            })),
        )
        .await?;
        Ok(())
    }
}

fn path(p: &str, kind: &str, svc: &str, port: u16) -> Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": port}}}})
}

fn rule(host: &str, paths: Vec<Value>) -> Value {
    json!({"host": host, "http": {"paths": paths}})
}

fn echo(resp: &HttpsResponse) -> anyhow::Result<Echo> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        anyhow::anyhow!(
            "not an echo ({e}): {} {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        )
    })
}

/// Waits until an HTTPS GET for `host` (SNI and Host) verified against the CA answers from
/// `backend`.
async fn wait_https(
    dp: &DataPlane,
    host: &str,
    backend: &str,
    ca: &[u8],
) -> anyhow::Result<HttpsResponse> {
    wait_until(
        &format!("https://{host} from {backend}"),
        WAIT,
        || async move {
            let Ok(resp) = https_get_h1(dp.https, host, host, "/", Trust::Ca(ca)).await else {
                return Ok(None);
            };
            let served = echo(&resp).map(|e| e.backend).unwrap_or_default();
            Ok((resp.status == 200 && served == backend).then_some(resp))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn terminates_by_sni_with_wildcard_and_default_certificates_and_redirects()
-> anyhow::Result<()> {
    let mut w = world("tls-term").await?;
    for s in ["host-a", "wild", "acme-solver", "optout", "broken"] {
        w.service(s).await?;
    }
    let foo = w.ca.issue(&["foo.bar.com"])?;
    let wild = w.ca.issue(&["*.wild.example.com"])?;
    let default = w.ca.issue(&["default.example.com"])?;
    w.tls_secret("foo-tls", &foo).await?;
    w.tls_secret("wild-tls", &wild).await?;
    // The set's default certificate lives in its own namespace and is not mirrored.
    apply_tls_secret(&w.client, &w.fleet.name, "default-tls", &default).await?;
    // A mirror whose data is not a certificate.
    apply_mirror_data(
        &w.client,
        &w.fleet.name,
        SET,
        &w.app.name,
        "broken-tls",
        "1",
        json!({"tls.crt": "not a certificate", "tls.key": "nor a key"}),
    )
    .await?;
    let dp = w
        .data_plane(json!({"defaultSslCertificate": "default-tls"}))
        .await?;

    // The conformance host-rule scenario, with TLS for foo.bar.com.
    w.ingress(
        "host-rules",
        json!({}),
        json!({
            "tls": [{"hosts": ["foo.bar.com"], "secretName": "foo-tls"}],
            "rules": [
                rule("foo.bar.com", vec![path("/", "Prefix", "host-a", 80)]),
                rule("*.foo.com", vec![path("/", "Prefix", "wild", 80)]),
            ],
        }),
    )
    .await?;
    w.ingress(
        "wildcard",
        json!({}),
        json!({
            "tls": [{"hosts": ["*.wild.example.com"], "secretName": "wild-tls"}],
            "rules": [rule("*.wild.example.com", vec![path("/", "Prefix", "wild", 80)])],
        }),
    )
    .await?;
    // What cert-manager's HTTP-01 solver creates next to an Ingress with TLS.
    w.ingress(
        "cm-acme-http-solver",
        json!({}),
        json!({"rules": [rule("foo.bar.com", vec![path(
            "/.well-known/acme-challenge/token-123", "ImplementationSpecific", "acme-solver", 80)])]}),
    )
    .await?;
    w.ingress(
        "optout",
        json!({"nginx.ingress.kubernetes.io/ssl-redirect": "false"}),
        json!({
            "tls": [{"hosts": ["optout.example.com"]}],
            "rules": [rule("optout.example.com", vec![path("/", "Prefix", "optout", 80)])],
        }),
    )
    .await?;
    w.ingress(
        "broken",
        json!({}),
        json!({
            "tls": [{"hosts": ["broken.example.com"], "secretName": "broken-tls"}],
            "rules": [rule("broken.example.com", vec![path("/", "Prefix", "broken", 80)])],
        }),
    )
    .await?;

    // https://foo.bar.com, verified against the CA: the Secret's certificate, HSTS, and the
    // backend sees an HTTPS request.
    let resp = wait_https(&dp, "foo.bar.com", "host-a", &w.ca.cert_der).await?;
    assert_eq!(resp.peer, foo.cert_der);
    assert_eq!(
        resp.headers
            .get("strict-transport-security")
            .map(|v| v.as_bytes()),
        Some(&b"max-age=31536000; includeSubDomains"[..])
    );
    let seen = echo(&resp)?;
    assert_eq!(seen.host, "foo.bar.com");
    assert_eq!(
        seen.headers.get("x-forwarded-proto").map(String::as_str),
        Some("https")
    );
    assert_eq!(
        seen.headers.get("x-forwarded-port").map(String::as_str),
        Some("443")
    );

    // HTTP/2 by ALPN, to the HTTP/1.1 backend.
    let mut h2 = h2_connect(dp.https, "foo.bar.com", Trust::Ca(&w.ca.cert_der)).await?;
    let resp = h2.get("foo.bar.com", "/h2?x=1").await?;
    assert_eq!(resp.version, http::Version::HTTP_2);
    let seen = echo(&resp)?;
    assert_eq!((resp.status, seen.backend.as_str()), (200, "host-a"));
    assert_eq!(seen.host, "foo.bar.com", "Host from :authority");
    assert_eq!(seen.path, "/h2?x=1");

    // Wildcard: one label, verified against the CA; two labels get the default.
    let resp = wait_https(&dp, "a.wild.example.com", "wild", &w.ca.cert_der).await?;
    assert_eq!(resp.peer, wild.cert_der);
    let deep = https_get_h1(
        dp.https,
        "a.b.wild.example.com",
        "a.b.wild.example.com",
        "/",
        Trust::Any,
    )
    .await?;
    assert_eq!(deep.peer, default.cert_der);

    // Unknown names get the set's default certificate.
    let resp = https_get_h1(
        dp.https,
        "unknown.example.org",
        "unknown.example.org",
        "/",
        Trust::Any,
    )
    .await?;
    assert_eq!(resp.peer, default.cert_der);
    assert_eq!(resp.status, 404);
    assert!(resp.headers.get("strict-transport-security").is_none());
    let resp = https_get_h1(
        dp.https,
        "default.example.com",
        "default.example.com",
        "/",
        Trust::Ca(&w.ca.cert_der),
    )
    .await?;
    assert_eq!(resp.status, 404, "verified against the CA");

    // A broken Secret: the host is served with the default certificate, and an Event says
    // which field and why.
    // (Its Ingress may reach the data plane after the others.)
    let resp = wait_until("broken.example.com routed", WAIT, || async {
        let resp = https_get_h1(
            dp.https,
            "broken.example.com",
            "broken.example.com",
            "/",
            Trust::Any,
        )
        .await?;
        let routed = echo(&resp).is_ok_and(|e| e.backend == "broken");
        Ok(routed.then_some(resp))
    })
    .await?;
    assert_eq!(resp.peer, default.cert_der);
    let events: Api<Event> = Api::namespaced(w.client.clone(), &w.app.name);
    let note = wait_until("an Event about the broken Secret", WAIT, || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await?;
            Ok(list.items.into_iter().find_map(|e| {
                let about = e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken");
                let note = e.note.unwrap_or_default();
                (about && note.contains("spec.tls[0].secretName")).then_some(note)
            }))
        }
    })
    .await?;
    assert!(
        note.contains("holds no CERTIFICATE block") && note.contains("default certificate"),
        "{note}"
    );

    // Plain HTTP: TLS hosts redirect to port 443 (left out of the URL), except the ACME
    // challenge; an Ingress that opts out and hosts without TLS are served.
    let (status, headers, _) = http_get_full(dp.http, "foo.bar.com", "/x?y=1").await?;
    assert_eq!(status, 308);
    assert_eq!(
        headers.get("location").map(|v| v.as_bytes()),
        Some(&b"https://foo.bar.com/x?y=1"[..])
    );
    assert!(headers.get("strict-transport-security").is_none());
    let (status, _, body) = http_get_full(
        dp.http,
        "foo.bar.com",
        "/.well-known/acme-challenge/token-123",
    )
    .await?;
    let seen: Echo = serde_json::from_slice(&body)?;
    assert_eq!((status, seen.backend.as_str()), (200, "acme-solver"));
    assert!(!seen.tls);
    let (status, headers, _) = http_get_full(dp.http, "a.wild.example.com", "/").await?;
    assert_eq!(status, 308);
    assert_eq!(
        headers.get("location").map(|v| v.as_bytes()),
        Some(&b"https://a.wild.example.com/"[..])
    );
    let (status, _, body) = http_get_full(dp.http, "optout.example.com", "/").await?;
    let seen: Echo = serde_json::from_slice(&body)?;
    assert_eq!((status, seen.backend.as_str()), (200, "optout"));
    let (status, _, _) = http_get_full(dp.http, "x.foo.com", "/").await?;
    assert_eq!(status, 200, "no TLS for *.foo.com: no redirect");

    // The debug dump shows where each certificate came from, never key material.
    let snapshot = dp.snapshot().await?.to_string();
    assert!(
        snapshot.contains(&format!("\"secret\":\"{}/foo-tls\"", w.app.name)),
        "{snapshot}"
    );
    assert!(!snapshot.contains("PRIVATE KEY"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn passthrough_shares_the_port_and_connection_reuse_gets_421() -> anyhow::Result<()> {
    let mut w = world("tls-pass").await?;
    w.service("host-a").await?;
    // A backend that terminates its own TLS, behind Service port 443.
    let pass = Backend::https("pass", 8443, &["pass.example.com"]).await?;
    let pass_cert = pass
        .tls
        .as_ref()
        .map(|t| t.cert_der.clone())
        .unwrap_or_default();
    publish_service(
        &w.client,
        &w.app.name,
        "pass",
        &[ServicePortSpec {
            name: "https".into(),
            port: 443,
            target_port: 8443,
        }],
        &[pass.addr],
    )
    .await?;
    w.backends.push(pass);
    let foo = w.ca.issue(&["foo.bar.com", "pass.example.com"])?;
    w.tls_secret("foo-tls", &foo).await?;
    let dp = w.data_plane(json!({"enableSslPassthrough": true})).await?;

    w.ingress(
        "site",
        json!({}),
        json!({
            "tls": [{"hosts": ["foo.bar.com"], "secretName": "foo-tls"}],
            "rules": [rule("foo.bar.com", vec![path("/", "Prefix", "host-a", 80)])],
        }),
    )
    .await?;
    w.ingress(
        "vault",
        json!({"nginx.ingress.kubernetes.io/ssl-passthrough": "true"}),
        json!({"rules": [rule("pass.example.com", vec![
            path("/", "Prefix", "pass", 443),
            // Only the "/" rule's backend is used for passthrough.
            path("/other", "Prefix", "host-a", 80),
        ])]}),
    )
    .await?;

    // Passthrough end to end: the client sees (and verifies) the backend's own certificate,
    // and the backend saw TLS.
    let resp = wait_until("pass.example.com passed through", WAIT, || {
        let cert = pass_cert.clone();
        let https = dp.https;
        async move {
            let Ok(resp) = https_get_h1(
                https,
                "pass.example.com",
                "pass.example.com",
                "/other",
                Trust::Ca(&cert),
            )
            .await
            else {
                return Ok(None);
            };
            Ok((resp.status == 200).then_some(resp))
        }
    })
    .await?;
    assert_eq!(resp.peer, pass_cert);
    let seen = echo(&resp)?;
    assert_eq!((seen.backend.as_str(), seen.tls), ("pass", true));
    assert_eq!(seen.path, "/other", "passed through untouched");
    assert!(
        !seen.headers.contains_key("x-forwarded-for"),
        "not proxied at HTTP level"
    );

    // A terminated host on the same port.
    let resp = wait_https(&dp, "foo.bar.com", "host-a", &w.ca.cert_der).await?;
    assert_eq!(resp.peer, foo.cert_der);

    // One HTTP/2 connection opened for foo.bar.com (whose certificate also names
    // pass.example.com, so a browser would reuse it): a request for the passthrough host on
    // it gets 421, and the connection stays usable.
    let mut h2 = h2_connect(dp.https, "foo.bar.com", Trust::Ca(&w.ca.cert_der)).await?;
    let misdirected = h2.get("pass.example.com", "/").await?;
    assert_eq!(misdirected.status, 421);
    let ok = h2.get("foo.bar.com", "/").await?;
    assert_eq!((ok.status, echo(&ok)?.backend.as_str()), (200, "host-a"));
    // A forged Host over HTTP/1.1 is refused the same way.
    let forged = https_get_h1(
        dp.https,
        "foo.bar.com",
        "pass.example.com",
        "/",
        Trust::Ca(&w.ca.cert_der),
    )
    .await?;
    assert_eq!(forged.status, 421);

    // Plain HTTP still routes every path of the passthrough host (no TLS section: no
    // redirect).
    let (status, _, body) = http_get_full(dp.http, "pass.example.com", "/other").await?;
    let seen: Echo = serde_json::from_slice(&body)?;
    assert_eq!((status, seen.backend.as_str()), (200, "host-a"));

    // No default certificate configured: unknown names get the generated one.
    let unknown = https_get_h1(
        dp.https,
        "nobody.example",
        "nobody.example",
        "/",
        Trust::Any,
    )
    .await?;
    assert_eq!(unknown.status, 404);
    assert!(unknown.peer != foo.cert_der && unknown.peer != pass_cert);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_is_served_without_failed_handshakes() -> anyhow::Result<()> {
    let mut w = world("tls-rot").await?;
    w.service("site").await?;
    let v1 = w.ca.issue(&["rotate.example.com"])?;
    let v2 = w.ca.issue(&["rotate.example.com"])?;
    w.tls_secret("site-tls", &v1).await?;
    let dp = w.data_plane(json!({})).await?;
    w.ingress(
        "site",
        json!({}),
        json!({
            "tls": [{"hosts": ["rotate.example.com"], "secretName": "site-tls"}],
            "rules": [rule("rotate.example.com", vec![path("/", "Prefix", "site", 80)])],
        }),
    )
    .await?;
    let resp = wait_https(&dp, "rotate.example.com", "site", &w.ca.cert_der).await?;
    assert_eq!(resp.peer, v1.cert_der);

    // Closed-loop load: every request is a new connection, so every one is a full handshake
    // verified against the CA.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    // (when, which certificate) of every handshake.
    let seen: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
    let mut loaders = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failures, seen) = (stop.clone(), ok.clone(), failures.clone(), seen.clone());
        let (addr, ca, v2_der): (SocketAddr, Vec<u8>, Vec<u8>) =
            (dp.https, w.ca.cert_der.clone(), v2.cert_der.clone());
        loaders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match https_get_h1(
                    addr,
                    "rotate.example.com",
                    "rotate.example.com",
                    "/",
                    Trust::Ca(&ca),
                )
                .await
                {
                    Ok(resp) if resp.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut s) = seen.lock() {
                            s.push((started, resp.peer == v2_der));
                        }
                    }
                    Ok(resp) => {
                        if let Ok(mut f) = failures.lock() {
                            *f.entry(format!("status {}", resp.status)).or_default() += 1;
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures.lock() {
                            *f.entry(format!("{e:#}")).or_default() += 1;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Rotate in place: the origin Secret and, as the operator would, its mirror.
    let rotated_at = Instant::now();
    w.tls_secret("site-tls", &v2).await?;
    let first_v2 = wait_until("the rotated certificate served", WAIT, || {
        let seen = seen.clone();
        async move {
            Ok(seen
                .lock()
                .ok()
                .and_then(|s| s.iter().find(|(_, is_v2)| *is_v2).map(|(t, _)| *t)))
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await?;
    }

    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    let ok = ok.load(Ordering::Relaxed);
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(ok > 20, "load ran: {ok} handshakes");
    assert!(failures.is_empty(), "{ok} ok, failures: {failures:?}");
    let delay = first_v2.saturating_duration_since(rotated_at);
    eprintln!("rotation served {delay:?} after the Secret changed; {ok} handshakes");
    assert!(delay < Duration::from_secs(5), "rotation took {delay:?}");
    // Handshakes that started clearly after the first new one all got the new certificate.
    let settled = first_v2 + Duration::from_millis(500);
    let stale: Vec<_> = seen
        .iter()
        .filter(|(t, is_v2)| *t > settled && !is_v2)
        .collect();
    assert!(stale.is_empty(), "{} handshakes still got v1", stale.len());
    let after = https_get_h1(
        dp.https,
        "rotate.example.com",
        "rotate.example.com",
        "/",
        Trust::Ca(&w.ca.cert_der),
    )
    .await?;
    assert_eq!(after.peer, v2.cert_der);
    Ok(())
}

/// A handshake for `server_name` verified against `ca`, from a client limited to `versions`
/// and, when given, `suites`; the negotiated version and suite, or the error.
async fn handshake(
    addr: SocketAddr,
    server_name: &str,
    ca: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: Option<&[rustls::SupportedCipherSuite]>,
) -> anyhow::Result<(rustls::ProtocolVersion, rustls::CipherSuite)> {
    let base = rustls::crypto::aws_lc_rs::default_provider();
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: suites.map_or_else(|| base.cipher_suites.clone(), <[_]>::to_vec),
        ..base
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.to_vec().into())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let conn = tls.get_ref().1;
    let version = conn
        .protocol_version()
        .ok_or_else(|| anyhow::anyhow!("no version"))?;
    let suite = conn
        .negotiated_cipher_suite()
        .ok_or_else(|| anyhow::anyhow!("no suite"))?;
    Ok((version, suite.suite()))
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_ciphers_restrict_tls12_per_host() -> anyhow::Result<()> {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    use rustls::version::{TLS12, TLS13};
    let mut w = world("tls-ciph").await?;
    for s in ["strict", "plain", "tls13"] {
        w.service(s).await?;
    }
    // The test CA issues ECDSA certificates: the ECDSA suites are the usable ones.
    let hosts = [
        "strict.example.com",
        "plain.example.com",
        "tls13.example.com",
    ];
    let issued = w.ca.issue(&hosts)?;
    w.tls_secret("site-tls", &issued).await?;
    let dp = w.data_plane(json!({})).await?;
    let site = |host: &str, svc: &str| {
        json!({
            "tls": [{"hosts": [host], "secretName": "site-tls"}],
            "rules": [rule(host, vec![path("/", "Prefix", svc, 80)])],
        })
    };
    w.ingress(
        "strict",
        json!({"nginx.ingress.kubernetes.io/ssl-ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256"}),
        site("strict.example.com", "strict"),
    )
    .await?;
    w.ingress("plain", json!({}), site("plain.example.com", "plain"))
        .await?;
    w.ingress(
        "tls13",
        json!({"sluice.dev/ssl-ciphers": "!ALL"}),
        site("tls13.example.com", "tls13"),
    )
    .await?;
    for (host, svc) in hosts.iter().zip(["strict", "plain", "tls13"]) {
        wait_https(&dp, host, svc, &w.ca.cert_der).await?;
    }

    let (aes128, aes256) = (
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    );
    let ca = &w.ca.cert_der;
    let tls12 = rustls::ProtocolVersion::TLSv1_2;
    assert_eq!(
        handshake(dp.https, hosts[0], ca, &[&TLS12], Some(&[aes128])).await?,
        (tls12, aes128.suite())
    );
    let refused = handshake(dp.https, hosts[0], ca, &[&TLS12], Some(&[aes256])).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        handshake(dp.https, hosts[1], ca, &[&TLS12], Some(&[aes256])).await?,
        (tls12, aes256.suite())
    );
    let refused = handshake(dp.https, hosts[2], ca, &[&TLS12], None).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        handshake(dp.https, hosts[2], ca, &[&TLS13], None).await?.0,
        rustls::ProtocolVersion::TLSv1_3
    );
    Ok(())
}
