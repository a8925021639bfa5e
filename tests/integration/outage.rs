//! The API server goes away while the data plane serves: the last snapshot keeps serving,
//! and when the API server is back the watches resume and new changes flow again.
//!
//! Ignored in the parallel run because it stops the shared API server; `make test` runs it
//! on its own afterwards (`cargo test --test outage -- --ignored`).

use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sluice_test_support::backend::{Echo, http_get};
use sluice_test_support::fleet::{DataPlane, apply_fleet_objects};
use sluice_test_support::{
    Backend, ServicePortSpec, TestEnv, TestNamespace, publish_service, wait_until,
};

fn component(env: &TestEnv, action: &str, name: &str) -> anyhow::Result<()> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/component.sh");
    let state = env.vars.get("SLUICE_STATE").cloned().unwrap_or_default();
    let out = std::process::Command::new(script)
        .args([action, name])
        .env("SLUICE_STATE", state)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "component.sh {action} {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

async fn ingress(
    client: &kube::Client,
    ns: &str,
    class: &str,
    paths: &[&str],
) -> anyhow::Result<()> {
    let paths: Vec<_> = paths
        .iter()
        .map(|p| json!({"path": p, "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}))
        .collect();
    Api::<Ingress>::namespaced(client.clone(), ns)
        .patch(
            "site",
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site"},
                "spec": {"ingressClassName": class, "rules": [{"host": "outage.example.com", "http": {"paths": paths}}]}
            })),
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared API server; make test runs it alone after the other tests"]
async fn serves_the_last_snapshot_while_the_api_server_is_away() -> anyhow::Result<()> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let ns = TestNamespace::create(&env, &client, "dp-outage").await?;
    let class = format!("outage-{}", ns.name);
    let backend = Backend::http("app", 8080).await?;
    let ports = [ServicePortSpec {
        name: "http".into(),
        port: 80,
        target_port: 8080,
    }];
    publish_service(&client, &ns.name, "app", &ports, &[backend.addr]).await?;
    apply_fleet_objects(&client, &ns.name, "fleet", &class, json!({}), json!({})).await?;
    let dp = DataPlane::start(&env, &ns.name, "fleet", &class).await?;
    ingress(&client, &ns.name, &class, &["/a"]).await?;
    let route_ok = |p: &'static str| {
        let addr = dp.http;
        move || async move {
            let (s, body) = http_get(addr, "outage.example.com", p).await?;
            let e: Option<Echo> = serde_json::from_slice(&body).ok();
            Ok((s == 200 && e.is_some_and(|e| e.backend == "app")).then_some(()))
        }
    };
    wait_until("route /a", Duration::from_secs(30), route_ok("/a")).await?;

    component(&env, "stop", "kube-apiserver")?;
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let (s, _) = http_get(dp.http, "outage.example.com", "/a/x").await?;
        assert_eq!(
            s, 200,
            "served from the last snapshot while the API server is away"
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served > 50);
    // Readiness stays true: the fleet is serving correctly, just not learning changes.
    let (ready, _) = http_get(dp.admin, "admin", "/readyz").await?;
    assert_eq!(ready, 200);

    component(&env, "start", "kube-apiserver")?;
    let client = env.client().await?;
    wait_until("API server back", Duration::from_secs(60), || {
        let client = client.clone();
        async move { Ok(client.apiserver_version().await.ok().map(|_| ())) }
    })
    .await?;
    // The watches resume: a change made after the outage reaches the proxy.
    wait_until("edit accepted", Duration::from_secs(30), || {
        let (client, ns, class) = (client.clone(), ns.name.clone(), class.clone());
        async move { Ok(ingress(&client, &ns, &class, &["/a", "/b"]).await.ok()) }
    })
    .await?;
    wait_until(
        "route /b after the outage",
        Duration::from_secs(60),
        route_ok("/b"),
    )
    .await?;
    Ok(())
}
