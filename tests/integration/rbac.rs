//! Least privilege, end to end: the operator and a data plane run with their real
//! ServiceAccount tokens (TokenRequest API), bound only as `config/rbac` and the operator's
//! fleet Role make them, never with the admin kubeconfig.
//!
//! The operator must create every child of a set (including the ClusterRoleBinding to
//! `sluice-dataplane`, which needs `bind`, and the fleet's Role, which it may only grant with
//! rights it holds itself) and mirror the Secrets that Ingresses of the set's class reference
//! into the set's namespace, following rotations within a second. The fleet's token reads
//! Secrets only in its own namespace and is refused everywhere else, yet its data plane syncs,
//! routes and writes Ingress status.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use sluice_crds::mirror::{
    MIRROR_LABEL, ORIGIN_ANNOTATION, ORIGIN_VERSION_ANNOTATION, mirror_name,
};
use sluice_test_support::backend::http_get;
use sluice_test_support::fleet::DataPlane;
use sluice_test_support::process::Proc;
use sluice_test_support::token::{client_from, service_account_kubeconfig};
use sluice_test_support::{
    Backend, ServicePortSpec, TestEnv, TestNamespace, publish_service, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);
const IMAGE: &str = "registry.invalid/sluice:test";
/// The design's promise for a rotated Secret.
const ROTATION_BUDGET: Duration = Duration::from_secs(1);

type Set = sluice_crds::IngressControllerSet;

/// Applies `config/crd` and `config/rbac` with the real kubectl, as a user would.
fn apply_config(env: &TestEnv) -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // sluice-system must exist for the operator's ServiceAccount in config/rbac.
    let _ = env
        .kubectl()
        .args(["create", "namespace", "sluice-system"])
        .output();
    for dir in ["config/crd", "config/rbac"] {
        let out = env
            .kubectl()
            .args(["apply", "--server-side", "-k"])
            .arg(root.join(dir))
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl apply -k {dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = env
        .kubectl()
        .args([
            "wait",
            "--for=condition=Established",
            "crd/ingresscontrollersets.sluice.dev",
            "--timeout=60s",
        ])
        .output()?;
    anyhow::ensure!(out.status.success(), "CRD not established");
    Ok(())
}

fn state_dir(env: &TestEnv) -> anyhow::Result<PathBuf> {
    let dir = env
        .vars
        .get("SLUICE_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("rbac-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn apply<K>(api: &Api<K>, name: &str, body: Value) -> anyhow::Result<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    Ok(api
        .patch(
            name,
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(body),
        )
        .await?)
}

async fn exists<K>(api: &Api<K>, name: &str, what: &str) -> anyhow::Result<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let (api, name) = (api.clone(), name.to_string());
    wait_until(what, WAIT, || {
        let (api, name) = (api.clone(), name.clone());
        async move { Ok(api.get_opt(&name).await?) }
    })
    .await
}

/// A self-signed certificate and key for `host`, as PEM.
fn certificate(host: &str) -> anyhow::Result<(String, String)> {
    sluice_test_support::install_crypto_provider();
    let ck = rcgen::generate_simple_self_signed(vec![host.to_string()])?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

fn tls_secret(namespace: &str, name: &str, host: &str) -> anyhow::Result<Value> {
    let (cert, key) = certificate(host)?;
    Ok(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"tls.crt": cert, "tls.key": key},
    }))
}

/// An Ingress with one TLS entry; `class` goes into spec.ingressClassName, `legacy` into the
/// kubernetes.io/ingress.class annotation.
fn ingress(
    namespace: &str,
    name: &str,
    class: Option<&str>,
    legacy: Option<&str>,
    tls_secret: &str,
    host: &str,
) -> Value {
    let mut body = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "tls": [{"hosts": [host], "secretName": tls_secret}],
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}],
        },
    });
    if let Some(class) = class {
        body["spec"]["ingressClassName"] = json!(class);
    }
    if let Some(legacy) = legacy {
        body["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": legacy});
    }
    body
}

fn data(secret: &Secret) -> BTreeMap<String, ByteString> {
    secret.data.clone().unwrap_or_default()
}

/// Every mirror in the cluster, as (namespace, origin annotation).
async fn all_mirrors(admin: &kube::Client) -> anyhow::Result<BTreeSet<(String, String)>> {
    let list = Api::<Secret>::all(admin.clone())
        .list(&ListParams::default().labels(&format!("{MIRROR_LABEL}=true")))
        .await?;
    Ok(list
        .items
        .iter()
        .map(|s| {
            (
                s.namespace().unwrap_or_default(),
                s.annotations()
                    .get(ORIGIN_ANNOTATION)
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect())
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_and_fleet_run_with_least_privilege() -> anyhow::Result<()> {
    let env = TestEnv::load()?;
    let admin = env.client().await?;
    apply_config(&env)?;
    let dir = state_dir(&env)?;

    // --- the operator, with its own ServiceAccount's token ------------------------------
    let operator_kc = service_account_kubeconfig(
        &env,
        &admin,
        "sluice-system",
        "sluice-operator",
        &dir.join("operator.kubeconfig"),
    )
    .await?;
    let lease_name = format!("sluice-operator-rbac-{}", std::process::id());
    let mut operator = Proc::spawn(
        &env,
        "operator-rbac",
        "sluice-operator",
        &[
            "--kubeconfig".into(),
            operator_kc.display().to_string(),
            "--dataplane-image".into(),
            IMAGE.into(),
            "--admin-address".into(),
            "127.0.0.1:0".into(),
            "--leader-elect=true".into(),
            "--lease-namespace".into(),
            "sluice-system".into(),
            "--lease-name".into(),
            lease_name.clone(),
        ],
    )?;
    // Sanity: the token is not an admin's.
    let as_operator = client_from(&operator_kc).await?;
    forbidden(
        Api::<k8s_openapi::api::core::v1::Pod>::all(as_operator)
            .list(&ListParams::default().limit(1))
            .await,
        "the operator listing Pods",
    );

    let edge = TestNamespace::create(&env, &admin, "rbac-edge").await?;
    let internal = TestNamespace::create(&env, &admin, "rbac-internal").await?;
    let app = TestNamespace::create(&env, &admin, "rbac-app").await?;
    let (class, other_class) = (
        format!("rbac-{}", edge.name),
        format!("rbac-internal-{}", internal.name),
    );
    let sets: Api<Set> = Api::namespaced(admin.clone(), &edge.name);
    let internal_sets: Api<Set> = Api::namespaced(admin.clone(), &internal.name);
    let set_body = |ns: &str, name: &str, class: &str| {
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "IngressControllerSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"ingressClassName": class, "replicas": 1,
                     "loadBalancer": {"scheme": "internet-facing", "provider": "none"}},
        })
    };
    let set = apply(&sets, "edge", set_body(&edge.name, "edge", &class)).await?;
    apply(
        &internal_sets,
        "internal",
        set_body(&internal.name, "internal", &other_class),
    )
    .await?;

    // Leadership through the Lease in sluice-system, with the operator's own rights.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "sluice-system");
    wait_until("the operator holds its Lease", WAIT, || {
        let (leases, lease_name) = (leases.clone(), lease_name.clone());
        async move {
            let holder = leases
                .get_opt(&lease_name)
                .await?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity);
            Ok(holder.filter(|h| !h.is_empty()))
        }
    })
    .await?;

    // Every child, so the ClusterRole suffices for all of them (bind, escalation rules).
    let ns = edge.name.as_str();
    let started = Instant::now();
    exists(
        &Api::<ServiceAccount>::namespaced(admin.clone(), ns),
        "edge",
        "ServiceAccount",
    )
    .await?;
    exists(&Api::<Role>::namespaced(admin.clone(), ns), "edge", "Role").await?;
    exists(
        &Api::<RoleBinding>::namespaced(admin.clone(), ns),
        "edge",
        "RoleBinding",
    )
    .await?;
    exists(
        &Api::<ClusterRoleBinding>::all(admin.clone()),
        &format!("sluice-{ns}-edge"),
        "ClusterRoleBinding to sluice-dataplane",
    )
    .await?;
    exists(
        &Api::<ConfigMap>::namespaced(admin.clone(), ns),
        "edge",
        "ConfigMap",
    )
    .await?;
    exists(
        &Api::<PodDisruptionBudget>::namespaced(admin.clone(), ns),
        "edge",
        "PodDisruptionBudget",
    )
    .await?;
    exists(
        &Api::<Deployment>::namespaced(admin.clone(), ns),
        "edge",
        "Deployment",
    )
    .await?;
    exists(
        &Api::<Service>::namespaced(admin.clone(), ns),
        "edge",
        "Service",
    )
    .await?;
    exists(
        &Api::<IngressClass>::all(admin.clone()),
        &class,
        "IngressClass",
    )
    .await?;
    println!("children of the set created in {:?}", started.elapsed());
    assert!(
        operator.running(),
        "operator exited:\n{}",
        operator.log_tail(40)
    );

    // --- Secrets and Ingresses in an application namespace ------------------------------
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &app.name);
    let ingresses: Api<Ingress> = Api::namespaced(admin.clone(), &app.name);
    let host = "secure.rbac.test";
    apply(&secrets, "web-tls", tls_secret(&app.name, "web-tls", host)?).await?;
    apply(
        &secrets,
        "internal-tls",
        tls_secret(&app.name, "internal-tls", "internal.rbac.test")?,
    )
    .await?;
    apply(
        &secrets,
        "stray-tls",
        tls_secret(&app.name, "stray-tls", "stray.rbac.test")?,
    )
    .await?;
    apply(
        &secrets,
        "legacy-tls",
        tls_secret(&app.name, "legacy-tls", "legacy.rbac.test")?,
    )
    .await?;
    apply(
        &secrets,
        "old-style-tls",
        tls_secret(&app.name, "old-style-tls", "old-style.rbac.test")?,
    )
    .await?;
    let mut web = ingress(&app.name, "web", Some(&class), None, "web-tls", host);
    // A plain-HTTP host on the same Ingress, to see the fleet route under its own rights.
    web["spec"]["rules"].as_array_mut().unwrap().push(json!({
        "host": "plain.rbac.test",
        "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}
    }));
    // custom-headers: a ConfigMap the operator mirrors like a Secret.
    web["metadata"]["annotations"]["nginx.ingress.kubernetes.io/custom-headers"] =
        json!("web-headers");
    let config_maps: Api<ConfigMap> = Api::namespaced(admin.clone(), &app.name);
    apply(
        &config_maps,
        "web-headers",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-headers", "namespace": app.name},
            "data": {"X-Frame-Options": "DENY"},
        }),
    )
    .await?;
    apply(&ingresses, "web", web).await?;
    // The other set's class: mirrored into its namespace, never into edge's.
    apply(
        &ingresses,
        "internal",
        ingress(
            &app.name,
            "internal",
            Some(&other_class),
            None,
            "internal-tls",
            "internal.rbac.test",
        ),
    )
    .await?;
    // A class nobody serves.
    apply(
        &ingresses,
        "stray",
        ingress(
            &app.name,
            "stray",
            Some("nobody"),
            None,
            "stray-tls",
            "stray.rbac.test",
        ),
    )
    .await?;
    // The legacy class annotation: another class is never ours, our class is.
    apply(
        &ingresses,
        "legacy",
        ingress(
            &app.name,
            "legacy",
            None,
            Some("nobody"),
            "legacy-tls",
            "legacy.rbac.test",
        ),
    )
    .await?;
    apply(
        &ingresses,
        "old-style",
        ingress(
            &app.name,
            "old-style",
            None,
            Some(&class),
            "old-style-tls",
            "old-style.rbac.test",
        ),
    )
    .await?;
    // A reference to a Secret that does not exist yet.
    apply(
        &ingresses,
        "pending",
        ingress(
            &app.name,
            "pending",
            Some(&class),
            None,
            "later-tls",
            "later.rbac.test",
        ),
    )
    .await?;

    // --- the mirrors ----------------------------------------------------------------------
    let config_map_mirror = exists(
        &Api::<ConfigMap>::namespaced(admin.clone(), ns),
        &mirror_name("edge", &app.name, "web-headers"),
        "mirror of the web-headers ConfigMap",
    )
    .await?;
    assert_eq!(
        config_map_mirror
            .annotations()
            .get(ORIGIN_ANNOTATION)
            .map(String::as_str),
        Some(format!("{}/web-headers", app.name).as_str())
    );
    assert_eq!(
        config_map_mirror
            .data
            .as_ref()
            .and_then(|d| d.get("X-Frame-Options"))
            .map(String::as_str),
        Some("DENY")
    );
    let mirrors: Api<Secret> = Api::namespaced(admin.clone(), ns);
    let mirror = mirror_name("edge", &app.name, "web-tls");
    let origin = secrets.get("web-tls").await?;
    let copied = exists(&mirrors, &mirror, "mirror of web-tls").await?;
    let labels = copied.labels();
    for (k, v) in [
        ("sluice.dev/set", "edge"),
        ("sluice.dev/set-namespace", ns),
        ("app.kubernetes.io/name", "sluice-dataplane"),
        ("app.kubernetes.io/managed-by", "sluice-operator"),
        (MIRROR_LABEL, "true"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "label {k}: {labels:?}"
        );
    }
    let annotations = copied.annotations();
    assert_eq!(
        annotations.get(ORIGIN_ANNOTATION),
        Some(&format!("{}/web-tls", app.name))
    );
    assert_eq!(
        annotations.get(ORIGIN_VERSION_ANNOTATION),
        origin.metadata.resource_version.as_ref()
    );
    assert!(
        !annotations.keys().any(|k| k.contains("desired-hash")),
        "no hash of Secret data in metadata: {annotations:?}"
    );
    assert_eq!(copied.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(data(&copied), data(&origin));
    let owners = copied.owner_references();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "IngressControllerSet");
    assert_eq!(Some(&owners[0].uid), set.metadata.uid.as_ref());
    // The other set gets its own Secret, in its own namespace.
    exists(
        &Api::<Secret>::namespaced(admin.clone(), &internal.name),
        &mirror_name("internal", &app.name, "internal-tls"),
        "mirror of internal-tls for the internal set",
    )
    .await?;

    // A missing Secret: no mirror, one Warning Event on the Ingress naming the field.
    let events: Api<Event> = Api::namespaced(admin.clone(), &app.name);
    let not_found = || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await?;
            Ok::<_, anyhow::Error>(
                list.items
                    .into_iter()
                    .filter(|e| {
                        e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("pending")
                            && e.reason.as_deref() == Some("SecretNotFound")
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let found = wait_until("SecretNotFound Event on Ingress pending", WAIT, || async {
        let found = not_found().await?;
        Ok((!found.is_empty()).then_some(found))
    })
    .await?;
    let note = found[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("spec.tls[0].secretName") && note.contains("later-tls"),
        "{note}"
    );

    // --- rotation: the mirror follows within a second -------------------------------------
    let mut latencies = Vec::new();
    for round in 0..3 {
        let (cert, key) = certificate(host)?;
        let sent = Instant::now();
        apply(
            &secrets,
            "web-tls",
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "web-tls", "namespace": app.name},
                "stringData": {"tls.crt": cert, "tls.key": key},
            }),
        )
        .await?;
        let deadline = sent + Duration::from_secs(10);
        loop {
            let m = mirrors.get(&mirror).await?;
            if data(&m).get("tls.crt").map(|b| b.0.as_slice()) == Some(cert.as_bytes()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "rotation {round} did not reach the mirror in 10s:\n{}",
                operator.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let latency = sent.elapsed();
        println!("rotation {round}: origin write to mirror updated in {latency:?}");
        latencies.push(latency);
    }
    let worst = latencies.iter().max().copied().unwrap_or_default();
    assert!(
        worst < ROTATION_BUDGET,
        "rotation took {worst:?} (budget {ROTATION_BUDGET:?}): {latencies:?}"
    );

    // The Secret appears: mirrored, and the Event was not repeated meanwhile (once per change).
    let events_before = not_found().await?;
    assert_eq!(events_before.len(), 1, "{events_before:?}");
    assert!(
        events_before[0].series.is_none(),
        "SecretNotFound repeated: {:?}",
        events_before[0].series
    );
    apply(
        &secrets,
        "later-tls",
        tls_secret(&app.name, "later-tls", "later.rbac.test")?,
    )
    .await?;
    exists(
        &mirrors,
        &mirror_name("edge", &app.name, "later-tls"),
        "mirror of later-tls once it exists",
    )
    .await?;

    // Never a copy for an Ingress of another class (by spec or by legacy annotation).
    let app_ns = app.name.clone();
    let want: BTreeSet<(String, String)> = [
        (ns.to_string(), format!("{app_ns}/web-tls")),
        (ns.to_string(), format!("{app_ns}/later-tls")),
        (ns.to_string(), format!("{app_ns}/old-style-tls")),
        (internal.name.clone(), format!("{app_ns}/internal-tls")),
    ]
    .into();
    let have: BTreeSet<(String, String)> = all_mirrors(&admin)
        .await?
        .into_iter()
        .filter(|(ns, _)| *ns == edge.name || *ns == internal.name)
        .collect();
    assert_eq!(have, want, "mirrors of this test's sets");
    assert!(
        !all_mirrors(&admin).await?.iter().any(|(_, origin)| {
            origin == &format!("{app_ns}/stray-tls") || origin == &format!("{app_ns}/legacy-tls")
        }),
        "a Secret of another class was mirrored"
    );

    // --- the fleet's token ----------------------------------------------------------------
    let fleet_kc =
        service_account_kubeconfig(&env, &admin, ns, "edge", &dir.join("fleet.kubeconfig")).await?;
    let fleet = client_from(&fleet_kc).await?;
    let own = Api::<Secret>::namespaced(fleet.clone(), ns)
        .list(&ListParams::default())
        .await?;
    assert!(
        own.items.iter().any(|s| s.name_any() == mirror),
        "the fleet lists its mirrors: {:?}",
        own.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
    );
    forbidden(
        Api::<Secret>::namespaced(fleet.clone(), &app.name)
            .get("web-tls")
            .await,
        "the fleet reading the origin Secret",
    );
    forbidden(
        Api::<Secret>::all(fleet.clone())
            .list(&ListParams::default())
            .await,
        "the fleet listing Secrets cluster-wide",
    );
    forbidden(
        Api::<Secret>::namespaced(fleet.clone(), &internal.name)
            .list(&ListParams::default())
            .await,
        "the fleet listing another fleet's mirrors",
    );
    // ConfigMaps are readable in the fleet's own namespace (its own, and the mirrors of
    // `custom-headers` ConfigMaps, listed by label), nowhere else.
    forbidden(
        Api::<ConfigMap>::namespaced(fleet.clone(), &app.name)
            .get("kube-root-ca.crt")
            .await,
        "the fleet reading a ConfigMap of another namespace",
    );
    forbidden(
        Api::<ConfigMap>::all(fleet.clone())
            .list(&ListParams::default())
            .await,
        "the fleet listing ConfigMaps cluster-wide",
    );
    Api::<ConfigMap>::namespaced(fleet.clone(), ns)
        .list(&ListParams::default().labels(&format!("{MIRROR_LABEL}=true")))
        .await?;
    Api::<ConfigMap>::namespaced(fleet.clone(), ns)
        .get("edge")
        .await?;
    Api::<Ingress>::all(fleet.clone())
        .list(&ListParams::default().limit(1))
        .await?;
    Api::<IngressClass>::all(fleet.clone())
        .list(&ListParams::default().limit(1))
        .await?;
    Api::<Service>::all(fleet.clone())
        .list(&ListParams::default().limit(1))
        .await?;
    Api::<EndpointSlice>::all(fleet.clone())
        .list(&ListParams::default().limit(1))
        .await?;

    // The data plane with that token syncs (ready), routes and writes Ingress status.
    let backend = Backend::http("web", 8080).await?;
    publish_service(
        &admin,
        &app.name,
        "web",
        &[ServicePortSpec {
            name: "http".into(),
            port: 80,
            target_port: 8080,
        }],
        &[backend.addr],
    )
    .await?;
    let dp = DataPlane::start_with_kubeconfig(&env, &fleet_kc, ns, "edge", &class).await?;
    wait_until("plain.rbac.test routed by the fleet", WAIT, || async {
        let (status, _) = http_get(dp.http, "plain.rbac.test", "/").await?;
        Ok((status == 200).then_some(()))
    })
    .await?;
    Api::<Service>::namespaced(admin.clone(), ns)
        .patch_status(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}]}}}),
            ),
        )
        .await?;
    wait_until("Ingress web status written by the fleet", WAIT, || {
        let ingresses = ingresses.clone();
        async move {
            let ing = ingresses.get("web").await?;
            let ips: Vec<String> = ing
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| i.ip)
                .collect();
            Ok(ips.iter().any(|ip| ip == "198.51.100.9").then_some(()))
        }
    })
    .await?;

    // --- nobody references it any more: the mirror goes ------------------------------------
    ingresses.delete("web", &DeleteParams::default()).await?;
    wait_until("mirror of web-tls deleted with its Ingress", WAIT, || {
        let (mirrors, mirror) = (mirrors.clone(), mirror.clone());
        async move { Ok(mirrors.get_opt(&mirror).await?.is_none().then_some(())) }
    })
    .await?;

    // Clean up while the operator runs: its finalizer removes the cluster-scoped children,
    // with its own rights again.
    drop(dp);
    sets.delete("edge", &DeleteParams::default()).await?;
    internal_sets
        .delete("internal", &DeleteParams::default())
        .await?;
    for (api, name) in [(&sets, "edge"), (&internal_sets, "internal")] {
        wait_until(&format!("set {name} deleted"), WAIT, || {
            let api = api.clone();
            async move { Ok(api.get_opt(name).await?.is_none().then_some(())) }
        })
        .await?;
    }
    assert!(
        Api::<ClusterRoleBinding>::all(admin.clone())
            .get_opt(&format!("sluice-{ns}-edge"))
            .await?
            .is_none()
    );
    assert!(
        operator.running(),
        "operator exited:\n{}",
        operator.log_tail(40)
    );
    operator.terminate(Duration::from_secs(10));
    Ok(())
}
