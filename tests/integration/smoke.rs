//! Smoke tests proving the local control plane is a real Kubernetes: CRDs and watches, the
//! EndpointSlice address rules, real backends on the test network, and (stage 2) Deployments
//! rolled out by the controller manager, scheduler and kwok, then garbage-collected.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher;
use serde_json::json;
use sluice_test_support::backend::{Echo, http_get, https_get};
use sluice_test_support::publish::endpoint_slice;
use sluice_test_support::{
    Backend, ServicePortSpec, TestEnv, TestNamespace, publish_service, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

async fn setup(prefix: &str) -> anyhow::Result<(TestEnv, kube::Client, TestNamespace)> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let ns = TestNamespace::create(&env, &client, prefix).await?;
    Ok((env, client, ns))
}

#[tokio::test(flavor = "multi_thread")]
async fn crd_installs_and_custom_resources_are_validated_and_watched() -> anyhow::Result<()> {
    let (_env, client, ns) = setup("smoke-crd").await?;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.smoke.sluice.dev"},
        "spec": {
            "group": "smoke.sluice.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {"size": {"type": "integer", "minimum": 1}}
                    }}
                }}
            }]
        }
    }))?;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.patch(
        "widgets.smoke.sluice.dev",
        &PatchParams::apply("sluice-tests").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    wait_until("CRD widgets.smoke.sluice.dev Established", WAIT, || {
        let crds = crds.clone();
        async move {
            let c = crds.get("widgets.smoke.sluice.dev").await?;
            let established = c
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            Ok(established.then_some(()))
        }
    })
    .await?;

    let ar = ApiResource {
        group: "smoke.sluice.dev".into(),
        version: "v1".into(),
        api_version: "smoke.sluice.dev/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);

    // The discovery cache of a fresh CRD can lag Established by a moment.
    let mut events = Box::pin(watcher(widgets.clone(), watcher::Config::default()));
    let good: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "smoke.sluice.dev/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }))?;
    wait_until("creating Widget w1", WAIT, || {
        let widgets = widgets.clone();
        let good = good.clone();
        async move { Ok(Some(widgets.create(&PostParams::default(), &good).await?)) }
    })
    .await?;

    let seen = tokio::time::timeout(WAIT, async {
        while let Some(ev) = events.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev
                && o.metadata.name.as_deref() == Some("w1")
            {
                return Some(o);
            }
        }
        None
    })
    .await?
    .expect("watch ended before Widget w1 arrived");
    assert_eq!(seen.data["spec"]["size"], 3);

    // The schema is enforced by the API server, not by us.
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "smoke.sluice.dev/v1", "kind": "Widget",
        "metadata": {"name": "w2"}, "spec": {"size": 0}
    }))?;
    let err = widgets
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("size 0 violates minimum 1");
    assert!(
        err.to_string().contains("spec.size"),
        "rejection names the field: {err}"
    );
    ns.delete(&client).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn endpointslice_publishes_a_real_backend_and_loopback_is_refused() -> anyhow::Result<()> {
    let (_env, client, ns) = setup("smoke-eps").await?;
    let backend = Backend::http("echo-a", 8080).await?;
    let ports = [ServicePortSpec {
        name: "http".into(),
        port: 80,
        target_port: 8080,
    }];
    publish_service(&client, &ns.name, "echo", &ports, &[backend.addr]).await?;

    // Read the slice back from the API server and follow it to the backend.
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), &ns.name);
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=echo"))
        .await?;
    assert_eq!(list.items.len(), 1);
    let slice = &list.items[0];
    let ip = &slice.endpoints[0].addresses[0];
    let port = slice.ports.as_ref().unwrap()[0].port.unwrap();
    assert_eq!(ip, &backend.addr.ip().to_string());
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse()?;
    let (status, body) = http_get(addr, "echo.example.com", "/hello?x=1").await?;
    assert_eq!(status, 200);
    let echo: Echo = serde_json::from_slice(&body)?;
    assert_eq!(echo.backend, "echo-a");
    assert_eq!(echo.host, "echo.example.com");
    assert_eq!(echo.path, "/hello?x=1");

    // Why the test network exists: the API server refuses loopback endpoints.
    let mut lo = endpoint_slice(&ns.name, "lo", &ports, &["127.0.0.1:8080".parse()?]);
    lo.metadata.name = Some("lo-test".into());
    let err = slices
        .create(&PostParams::default(), &lo)
        .await
        .expect_err("loopback endpoint must be refused");
    assert!(err.to_string().contains("loopback"), "{err}");
    ns.delete(&client).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_backend_serves_its_own_certificate() -> anyhow::Result<()> {
    let backend = Backend::https("secure", 8443, &["secure.example.com"]).await?;
    let tls = backend.tls.clone().expect("tls backend");
    let (status, body, peer) =
        https_get(backend.addr, "secure.example.com", "/", &tls.cert_der).await?;
    assert_eq!(status, 200);
    assert_eq!(peer, tls.cert_der);
    let echo: Echo = serde_json::from_slice(&body)?;
    assert!(echo.tls);
    assert_eq!(echo.backend, "secure");
    // A name the certificate does not cover fails verification.
    assert!(
        https_get(backend.addr, "other.example.com", "/", &tls.cert_der)
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_becomes_available_and_is_garbage_collected() -> anyhow::Result<()> {
    let (env, client, ns) = setup("smoke-deploy").await?;
    assert!(
        env.has_stage2(),
        "needs the controller manager, scheduler and kwok (stage 2)"
    );
    let deploys = Api::<Deployment>::namespaced(client.clone(), &ns.name);
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}
            }
        }
    }))?;
    deploys.create(&PostParams::default(), &d).await?;
    wait_until(
        "Deployment web Available with 2 ready replicas",
        WAIT,
        || {
            let deploys = deploys.clone();
            async move {
                let d = deploys.get("web").await?;
                let status = d.status.unwrap_or_default();
                let available = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True");
                Ok((available && status.ready_replicas == Some(2)).then_some(()))
            }
        },
    )
    .await?;

    let pods = Api::<Pod>::namespaced(client.clone(), &ns.name);
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), &ns.name);
    let by_app = ListParams::default().labels("app=web");
    let running = pods.list(&by_app).await?;
    assert_eq!(running.items.len(), 2);
    for p in &running.items {
        let status = p.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let ip = status.pod_ip.unwrap_or_default();
        assert!(
            ip.starts_with("10.244."),
            "kwok pod IP {ip} in the pod range"
        );
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some("kwok-node-0")
        );
    }
    assert_eq!(rss.list(&by_app).await?.items.len(), 1);

    deploys.delete("web", &DeleteParams::background()).await?;
    wait_until(
        "ReplicaSets and Pods of web garbage-collected",
        WAIT,
        || {
            let (pods, rss, by_app) = (pods.clone(), rss.clone(), by_app.clone());
            async move {
                let left =
                    pods.list(&by_app).await?.items.len() + rss.list(&by_app).await?.items.len();
                Ok((left == 0).then_some(()))
            }
        },
    )
    .await?;
    ns.delete(&client).await?;
    Ok(())
}
