//! The data plane against the real control plane, with real HTTP through the real proxy:
//! `sluice-dataplane` runs as a process on its own test-network address; backends are real
//! servers on 10.244.128.0/17 published through EndpointSlices.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use sluice_test_support::backend::{Echo, http_get};
use sluice_test_support::fleet::{DataPlane, apply_fleet_objects};
use sluice_test_support::publish::endpoint_slice;
use sluice_test_support::{
    Backend, ServicePortSpec, TestEnv, TestNamespace, publish_service, wait_until,
};

const WAIT: Duration = Duration::from_secs(30);

struct World {
    env: TestEnv,
    client: kube::Client,
    ns: TestNamespace,
    backends: Vec<Backend>,
}

async fn world(prefix: &str) -> anyhow::Result<World> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let ns = TestNamespace::create(&env, &client, prefix).await?;
    Ok(World {
        env,
        client,
        ns,
        backends: Vec::new(),
    })
}

fn http_port() -> [ServicePortSpec; 1] {
    [ServicePortSpec {
        name: "http".into(),
        port: 80,
        target_port: 8080,
    }]
}

impl World {
    /// Starts an echo backend named `name` and publishes it as Service `name` (port 80 "http").
    async fn service(&mut self, name: &str) -> anyhow::Result<SocketAddr> {
        let b = Backend::http(name, 8080).await?;
        let addr = b.addr;
        publish_service(&self.client, &self.ns.name, name, &http_port(), &[addr]).await?;
        self.backends.push(b);
        Ok(addr)
    }

    async fn ingress(
        &self,
        name: &str,
        class: Option<&str>,
        spec: Value,
        annotations: Value,
    ) -> anyhow::Result<()> {
        let mut spec = spec;
        if let (Some(c), Some(s)) = (class, spec.as_object_mut()) {
            s.insert("ingressClassName".into(), json!(c));
        }
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &self.ns.name);
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

    fn class(&self, base: &str) -> String {
        format!("{base}-{}", self.ns.name)
    }
}

fn path(p: &str, kind: &str, svc: &str) -> Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
}

fn rule(host: Option<&str>, paths: Vec<Value>) -> Value {
    let mut r = json!({"http": {"paths": paths}});
    if let Some(h) = host {
        r["host"] = json!(h);
    }
    r
}

/// GET through the data plane; returns (status, backend name or "").
async fn get(
    dp: &DataPlane,
    host: &str,
    path: &str,
) -> anyhow::Result<(u16, String, Option<Echo>)> {
    let (status, body) = http_get(dp.http, host, path).await?;
    let echo: Option<Echo> = serde_json::from_slice(&body).ok();
    Ok((
        status,
        echo.as_ref().map(|e| e.backend.clone()).unwrap_or_default(),
        echo,
    ))
}

/// Waits until every (host, path) gets the expected (status, backend).
async fn expect_routes(dp: &DataPlane, cases: &[(&str, &str, u16, &str)]) -> anyhow::Result<()> {
    for (host, p, status, backend) in cases {
        let what = format!("{host}{p} -> {status} {backend}");
        wait_until(&what, WAIT, || async move {
            let (s, b, _) = get(dp, host, p).await?;
            Ok((s == *status && b == *backend).then_some(()))
        })
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_paths_hosts_and_default_backends() -> anyhow::Result<()> {
    let mut w = world("dp-conf").await?;
    for s in [
        "exact",
        "prefix",
        "aaa",
        "aaa-bbb",
        "root-b",
        "host-a",
        "wild",
        "impl",
        "regex",
        "own-default",
        "set-default",
    ] {
        w.service(s).await?;
    }
    let class = w.class("conf");
    apply_fleet_objects(
        &w.client,
        &w.ns.name,
        "fleet",
        &class,
        json!({"defaultBackend": {"service": "set-default", "portNumber": 80}}),
        json!({}),
    )
    .await?;
    let dp = DataPlane::start(&w.env, &w.ns.name, "fleet", &class).await?;

    w.ingress(
        "paths",
        Some(&class),
        json!({"rules": [rule(Some("paths.example.com"), vec![
            path("/foo", "Exact", "exact"),
            path("/foo", "Prefix", "prefix"),
            path("/aaa", "Prefix", "aaa"),
            path("/aaa/bbb/", "Prefix", "aaa-bbb"),
        ])]}),
        json!({}),
    )
    .await?;
    w.ingress(
        "hosts",
        Some(&class),
        json!({"rules": [
            rule(Some("foo.bar.com"), vec![path("/", "Prefix", "host-a")]),
            rule(Some("*.foo.com"), vec![path("/", "Prefix", "wild")]),
            rule(Some("impl.example.com"), vec![path("/api", "ImplementationSpecific", "impl")]),
        ]}),
        json!({}),
    )
    .await?;
    w.ingress(
        "regex",
        Some(&class),
        json!({"rules": [rule(Some("regex.example.com"), vec![path("/api(/|$)(.*)", "ImplementationSpecific", "regex")])]}),
        json!({"nginx.ingress.kubernetes.io/use-regex": "true"}),
    )
    .await?;
    w.ingress(
        "own-default",
        Some(&class),
        json!({"defaultBackend": {"service": {"name": "own-default", "port": {"number": 80}}},
               "rules": [rule(Some("own.example.com"), vec![path("/only", "Exact", "exact")])]}),
        json!({}),
    )
    .await?;

    expect_routes(
        &dp,
        &[
            ("paths.example.com", "/foo", 200, "exact"),
            ("paths.example.com", "/foo/", 200, "prefix"),
            ("paths.example.com", "/foo/bar", 200, "prefix"),
            ("paths.example.com", "/FOO", 200, "set-default"),
            ("paths.example.com", "/foobar", 200, "set-default"),
            ("paths.example.com", "/aaa", 200, "aaa"),
            ("paths.example.com", "/aaa/bbb", 200, "aaa-bbb"),
            ("paths.example.com", "/aaa/bbb/ccc", 200, "aaa-bbb"),
            ("paths.example.com", "/aaa/bbbxyz", 200, "aaa"),
            ("paths.example.com", "/aaaccc", 200, "set-default"),
            ("foo.bar.com", "/anything", 200, "host-a"),
            ("bar.foo.com", "/", 200, "wild"),
            ("baz.bar.foo.com", "/", 200, "set-default"),
            ("foo.com", "/", 200, "set-default"),
            ("impl.example.com", "/apiv2", 200, "impl"),
            ("regex.example.com", "/API/v1", 200, "regex"),
            ("regex.example.com", "/apix", 200, "set-default"),
            ("own.example.com", "/only", 200, "exact"),
            ("own.example.com", "/elsewhere", 200, "own-default"),
        ],
    )
    .await?;

    // What the backend saw: the original Host, the path, forwarding headers.
    let (_, _, echo) = get(&dp, "foo.bar.com:8080", "/x?y=1").await?;
    let echo = echo.expect("echo body");
    assert_eq!(echo.host, "foo.bar.com:8080");
    assert_eq!(echo.path, "/x?y=1");
    let xff = echo
        .headers
        .get("x-forwarded-for")
        .cloned()
        .unwrap_or_default();
    assert!(
        xff.starts_with("10.244.") || xff.starts_with("127."),
        "x-forwarded-for {xff:?}"
    );
    assert_eq!(
        echo.headers.get("x-forwarded-proto").map(String::as_str),
        Some("http")
    );
    assert_eq!(
        echo.headers.get("x-forwarded-host").map(String::as_str),
        Some("foo.bar.com:8080")
    );
    assert_eq!(echo.headers.get("x-request-id").map(String::len), Some(32));
    // A spoofed X-Forwarded-For is not trusted by default.
    let stream = tokio::net::TcpStream::connect(dp.http).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            http::Request::get("/")
                .header("host", "foo.bar.com")
                .header("x-forwarded-for", "6.6.6.6")
                .body(http_body_util::Empty::<bytes::Bytes>::new())?,
        )
        .await?;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    let echo: Echo = serde_json::from_slice(&body)?;
    assert!(
        !echo
            .headers
            .get("x-forwarded-for")
            .cloned()
            .unwrap_or_default()
            .contains("6.6.6.6")
    );

    // Without the set's default backend, unmatched requests get the built-in 404.
    apply_fleet_objects(&w.client, &w.ns.name, "fleet", &class, json!({}), json!({})).await?;
    expect_routes(&dp, &[("nowhere.example.com", "/", 404, "")]).await?;

    // The debug endpoint shows where each route came from.
    let snap = dp.snapshot().await?;
    let text = snap.to_string();
    assert!(
        text.contains("paths.example.com") && text.contains("\"name\":\"paths\""),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_fleet_serves_only_its_own_class() -> anyhow::Result<()> {
    let mut w = world("dp-classes").await?;
    w.service("pub-app").await?;
    w.service("priv-app").await?;
    let (public, private) = (w.class("public"), w.class("private"));
    apply_fleet_objects(
        &w.client,
        &w.ns.name,
        "ingress-public",
        &public,
        json!({}),
        json!({}),
    )
    .await?;
    apply_fleet_objects(
        &w.client,
        &w.ns.name,
        "ingress-private",
        &private,
        json!({}),
        json!({}),
    )
    .await?;
    let pub_dp = DataPlane::start(&w.env, &w.ns.name, "ingress-public", &public).await?;
    let priv_dp = DataPlane::start(&w.env, &w.ns.name, "ingress-private", &private).await?;

    w.ingress(
        "pub",
        Some(&public),
        json!({"rules": [rule(Some("app.example.com"), vec![path("/", "Prefix", "pub-app")])]}),
        json!({}),
    )
    .await?;
    w.ingress("priv", Some(&private), json!({"rules": [rule(Some("internal.example.com"), vec![path("/", "Prefix", "priv-app")])]}), json!({})).await?;
    // Another controller's class: nobody here serves it.
    let classes: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(w.client.clone());
    let nginx = w.class("nginx");
    classes
        .patch(
            &nginx,
            &PatchParams::apply("sluice-tests"),
            &Patch::Apply(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": nginx}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
            ),
        )
        .await?;
    w.ingress(
        "foreign",
        Some(&nginx),
        json!({"rules": [rule(Some("foreign.example.com"), vec![path("/", "Prefix", "pub-app")])]}),
        json!({}),
    )
    .await?;
    // The legacy annotation picks a class too.
    w.ingress(
        "legacy",
        None,
        json!({"rules": [rule(Some("legacy.example.com"), vec![path("/", "Prefix", "priv-app")])]}),
        json!({"kubernetes.io/ingress.class": private}),
    )
    .await?;

    expect_routes(
        &pub_dp,
        &[
            ("app.example.com", "/", 200, "pub-app"),
            ("internal.example.com", "/", 404, ""),
            ("legacy.example.com", "/", 404, ""),
        ],
    )
    .await?;
    expect_routes(
        &priv_dp,
        &[
            ("internal.example.com", "/", 200, "priv-app"),
            ("legacy.example.com", "/", 200, "priv-app"),
            ("app.example.com", "/", 404, ""),
        ],
    )
    .await?;
    for dp in [&pub_dp, &priv_dp] {
        assert_eq!(get(dp, "foreign.example.com", "/").await?.0, 404);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_published_moved_between_classes_and_kept_across_restarts() -> anyhow::Result<()>
{
    let mut w = world("dp-status").await?;
    w.service("app").await?;
    let (public, private) = (w.class("public"), w.class("private"));
    apply_fleet_objects(&w.client, &w.ns.name, "pub", &public, json!({}), json!({})).await?;
    apply_fleet_objects(
        &w.client,
        &w.ns.name,
        "priv",
        &private,
        json!({"publishStatusAddress": ["internal.example.net"]}),
        json!({}),
    )
    .await?;
    // The public set's Service with an address from the "cloud".
    let services: Api<Service> = Api::namespaced(w.client.clone(), &w.ns.name);
    services
        .patch("pub", &PatchParams::apply("sluice-tests"), &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "pub"},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})))
        .await?;
    services
        .patch_status(
            "pub",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.44"}]}}})),
        )
        .await?;
    let mut pub_dp = DataPlane::start(&w.env, &w.ns.name, "pub", &public).await?;
    let _priv_dp = DataPlane::start(&w.env, &w.ns.name, "priv", &private).await?;
    w.ingress(
        "site",
        Some(&public),
        json!({"rules": [rule(Some("site.example.com"), vec![path("/", "Prefix", "app")])]}),
        json!({}),
    )
    .await?;

    let ingresses: Api<Ingress> = Api::namespaced(w.client.clone(), &w.ns.name);
    let addresses = |i: &Ingress| -> Vec<(Option<String>, Option<String>)> {
        i.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .map(|l| {
                l.iter()
                    .map(|e| (e.ip.clone(), e.hostname.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let published = wait_until("public address on the Ingress", WAIT, || {
        let ingresses = ingresses.clone();
        async move {
            let i = ingresses.get("site").await?;
            Ok((addresses(&i) == vec![(Some("192.0.2.44".to_string()), None)]).then_some(i))
        }
    })
    .await?;

    // Restarting the data plane writes nothing (and never clears the status).
    let rv = published.metadata.resource_version.clone();
    pub_dp.proc.terminate(Duration::from_secs(10));
    let pub_dp = DataPlane::start(&w.env, &w.ns.name, "pub", &public).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ingresses.get("site").await?.metadata.resource_version, rv);

    // Moving the Ingress to the private class: the public fleet removes only its entry, the
    // private fleet adds its own.
    w.ingress(
        "site",
        Some(&private),
        json!({"rules": [rule(Some("site.example.com"), vec![path("/", "Prefix", "app")])]}),
        json!({}),
    )
    .await?;
    wait_until("status moved to the private address", WAIT, || {
        let ingresses = ingresses.clone();
        async move {
            let i = ingresses.get("site").await?;
            Ok(
                (addresses(&i) == vec![(None, Some("internal.example.net".to_string()))])
                    .then_some(()),
            )
        }
    })
    .await?;
    expect_routes(&pub_dp, &[("site.example.com", "/", 404, "")]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_under_load_fail_no_request() -> anyhow::Result<()> {
    let mut w = world("dp-churn").await?;
    let class = w.class("churn");
    let first = Backend::http("v1", 8080).await?;
    let second = Backend::http("v2", 8080).await?;
    publish_service(&w.client, &w.ns.name, "app", &http_port(), &[first.addr]).await?;
    w.service("other").await?;
    apply_fleet_objects(&w.client, &w.ns.name, "fleet", &class, json!({}), json!({})).await?;
    let dp = DataPlane::start(&w.env, &w.ns.name, "fleet", &class).await?;
    w.ingress(
        "app",
        Some(&class),
        json!({"rules": [rule(Some("churn.example.com"), vec![path("/", "Prefix", "app")])]}),
        json!({}),
    )
    .await?;
    w.ingress(
        "side",
        Some(&class),
        json!({"rules": [rule(Some("side.example.com"), vec![path("/", "Prefix", "other")])]}),
        json!({}),
    )
    .await?;
    expect_routes(&dp, &[("churn.example.com", "/", 200, "v1")]).await?;

    // Closed-loop load from 4 clients while the world changes under it.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(BTreeMap::<String, u64>::new()));
    let mut loaders = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failures, addr) = (stop.clone(), ok.clone(), failures.clone(), dp.http);
        loaders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match http_get(addr, "churn.example.com", "/").await {
                    Ok((200, _)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((s, _)) => {
                        *failures
                            .lock()
                            .unwrap()
                            .entry(format!("status {s}"))
                            .or_default() += 1
                    }
                    Err(e) => {
                        *failures
                            .lock()
                            .unwrap()
                            .entry(format!("{e:#}"))
                            .or_default() += 1
                    }
                }
            }
        }));
    }
    let slices: Api<EndpointSlice> = Api::namespaced(w.client.clone(), &w.ns.name);
    let ingresses: Api<Ingress> = Api::namespaced(w.client.clone(), &w.ns.name);
    for round in 0..5 {
        // Scale out to both backends, then move entirely to the other one.
        let both = endpoint_slice(&w.ns.name, "app", &http_port(), &[first.addr, second.addr]);
        slices
            .replace(
                "app-test",
                &Default::default(),
                &with_rv(&slices, both).await?,
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let target = if round % 2 == 0 {
            second.addr
        } else {
            first.addr
        };
        let one = endpoint_slice(&w.ns.name, "app", &http_port(), &[target]);
        slices
            .replace(
                "app-test",
                &Default::default(),
                &with_rv(&slices, one).await?,
            )
            .await?;
        // Edit one Ingress, delete and recreate another.
        w.ingress("app", Some(&class), json!({"rules": [rule(Some("churn.example.com"), vec![path("/", "Prefix", "app"), path(&format!("/r{round}"), "Exact", "other")])]}), json!({})).await?;
        ingresses.delete("side", &DeleteParams::default()).await?;
        w.ingress(
            "side",
            Some(&class),
            json!({"rules": [rule(Some("side.example.com"), vec![path("/", "Prefix", "other")])]}),
            json!({}),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await?;
    }
    let failures = failures.lock().unwrap().clone();
    let ok = ok.load(Ordering::Relaxed);
    assert!(ok > 100, "load ran: {ok} requests");
    assert!(failures.is_empty(), "{ok} ok, failures: {failures:?}");
    let swaps = dp.snapshot().await?["generation"].as_u64().unwrap_or(0);
    assert!(
        swaps >= 10,
        "the snapshot really changed under load ({swaps} generations)"
    );
    Ok(())
}

async fn with_rv(
    api: &Api<EndpointSlice>,
    mut slice: EndpointSlice,
) -> anyhow::Result<EndpointSlice> {
    let live = api
        .get(slice.metadata.name.as_deref().unwrap_or_default())
        .await?;
    slice.metadata.resource_version = live.metadata.resource_version;
    Ok(slice)
}
