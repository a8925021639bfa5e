//! The operator against the real control plane: the `sluice-operator` binary runs as a process
//! (one per test binary, shared by the tests, which each work in their own namespace with
//! their own IngressClass names), and the tests assert on what the API server holds.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use sluice_test_support::process::Proc;
use sluice_test_support::{TestEnv, TestNamespace, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const IMAGE: &str = "registry.invalid/sluice:test";

type Set = sluice_crds::IngressControllerSet;

/// One operator for this test binary, started on first use after the CRD and RBAC from
/// `config/` are applied with the real kubectl.
fn operator(env: &TestEnv) -> &'static std::sync::Mutex<Proc> {
    static OPERATOR: OnceLock<std::sync::Mutex<Proc>> = OnceLock::new();
    OPERATOR.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for dir in ["config/crd", "config/rbac"] {
            // sluice-system must exist for the operator's ServiceAccount in config/rbac.
            let _ = env
                .kubectl()
                .args(["create", "namespace", "sluice-system"])
                .output();
            let out = env
                .kubectl()
                .args(["apply", "--server-side", "-k"])
                .arg(root.join(dir))
                .output()
                .expect("kubectl runs");
            assert!(
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
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "CRD not established");
        let proc = Proc::spawn(
            env,
            "sluice-operator",
            "sluice-operator",
            &[
                "--kubeconfig".into(),
                env.kubeconfig.display().to_string(),
                "--dataplane-image".into(),
                IMAGE.into(),
                "--admin-address".into(),
                "127.0.0.1:0".into(),
                "--leader-elect=false".into(),
            ],
        )
        .expect("operator starts");
        std::sync::Mutex::new(proc)
    })
}

struct Fixture {
    env: TestEnv,
    client: kube::Client,
    ns: TestNamespace,
}

async fn fixture(prefix: &str) -> anyhow::Result<Fixture> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let ns = TestNamespace::create(&env, &client, prefix).await?;
    {
        let env2 = env.clone();
        tokio::task::spawn_blocking(move || {
            let mut p = operator(&env2).lock().unwrap_or_else(|e| e.into_inner());
            assert!(p.running(), "operator exited:\n{}", p.log_tail(40));
        })
        .await?;
    }
    Ok(Fixture { env, client, ns })
}

impl Fixture {
    fn sets(&self) -> Api<Set> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }
    /// A class name unique to this test's namespace (IngressClasses are cluster-wide).
    fn class(&self, base: &str) -> String {
        format!("{base}-{}", self.ns.name)
    }

    async fn apply_set(&self, name: &str, spec: Value) -> anyhow::Result<Set> {
        let body = json!({
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "IngressControllerSet",
            "metadata": {"name": name, "namespace": self.ns.name},
            "spec": spec,
        });
        Ok(self
            .sets()
            .patch(
                name,
                &PatchParams::apply("sluice-tests").force(),
                &Patch::Apply(&body),
            )
            .await?)
    }

    async fn get<K>(&self, api: &Api<K>, name: &str, what: &str) -> anyhow::Result<K>
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

    async fn condition(&self, set: &str, type_: &str, status: &str) -> anyhow::Result<Set> {
        let sets = self.sets();
        let set = set.to_string();
        let (t, s) = (type_.to_string(), status.to_string());
        wait_until(&format!("{set} {type_}={status}"), WAIT, || {
            let (sets, set, t, s) = (sets.clone(), set.clone(), t.clone(), s.clone());
            async move {
                let obj = sets.get(&set).await?;
                let gen_ok = obj.status.as_ref().and_then(|st| st.observed_generation)
                    == obj.metadata.generation;
                let hit = obj
                    .status
                    .as_ref()
                    .is_some_and(|st| st.conditions.iter().any(|c| c.type_ == t && c.status == s));
                Ok((gen_ok && hit).then_some(obj))
            }
        })
        .await
    }

    /// What a cloud controller would do: give the Service a load-balancer address.
    async fn assign_lb(&self, name: &str, ip: &str) -> anyhow::Result<()> {
        let services: Api<Service> = self.api();
        self.get(&services, name, "Service").await?;
        services
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})),
            )
            .await?;
        Ok(())
    }
}

fn condition_of<'a>(
    set: &'a Set,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    set.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
}

fn labels_of(meta: &kube::api::ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn assert_child_labels(meta: &kube::api::ObjectMeta, set: &str, ns: &str) {
    let l = labels_of(meta);
    assert_eq!(
        l.get("sluice.dev/set").map(String::as_str),
        Some(set),
        "{l:?}"
    );
    assert_eq!(
        l.get("sluice.dev/set-namespace").map(String::as_str),
        Some(ns)
    );
    assert_eq!(
        l.get("app.kubernetes.io/name").map(String::as_str),
        Some("sluice-dataplane")
    );
    assert_eq!(
        l.get("app.kubernetes.io/managed-by").map(String::as_str),
        Some("sluice-operator")
    );
    assert!(!l.contains_key("app.kubernetes.io/instance"));
}

fn assert_owned_by(meta: &kube::api::ObjectMeta, set: &Set) {
    let refs = meta.owner_references.clone().unwrap_or_default();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0].kind, "IngressControllerSet");
    assert_eq!(refs[0].name, set.name_any());
    assert_eq!(Some(&refs[0].uid), set.metadata.uid.as_ref());
    assert_eq!(refs[0].controller, Some(true));
}

fn annotations(svc: &Service) -> BTreeMap<String, String> {
    svc.metadata.annotations.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn public_and_private_sets_become_fleets() -> anyhow::Result<()> {
    let f = fixture("op-fleets").await?;
    let ns = f.ns.name.clone();
    let (public, private) = (f.class("public"), f.class("private"));
    f.apply_set(
        "ingress-public",
        json!({
            "ingressClassName": public,
            "loadBalancer": {"scheme": "internet-facing", "provider": "aws",
                              "annotations": {"example.com/team": "edge"},
                              "sourceRanges": ["203.0.113.0/24"]},
            "pod": {"nodeSelector": {"kubernetes.io/os": "linux"}}
        }),
    )
    .await?;
    f.apply_set(
        "ingress-private",
        json!({
            "ingressClassName": private,
            "replicas": 1,
            "loadBalancer": {"scheme": "internal", "provider": "azure", "externalTrafficPolicy": "Cluster"}
        }),
    )
    .await?;

    let set = f.sets().get("ingress-public").await?;
    let deployments: Api<Deployment> = f.api();
    let d = f
        .get(&deployments, "ingress-public", "Deployment ingress-public")
        .await?;
    assert_child_labels(&d.metadata, "ingress-public", &ns);
    assert_owned_by(&d.metadata, &set);
    let spec = d.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2), "schema default");
    let pod = spec.template.spec.clone().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("ingress-public"));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some(IMAGE));
    let args = c.args.clone().unwrap_or_default().join(" ");
    assert!(
        args.contains(&format!("--ingress-class {public}")),
        "{args}"
    );
    assert!(
        args.contains(&format!("--config-map {ns}/ingress-public")),
        "{args}"
    );
    assert!(
        args.contains(&format!("--publish-service {ns}/ingress-public")),
        "{args}"
    );
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        pod.node_selector
            .unwrap()
            .get("kubernetes.io/os")
            .map(String::as_str),
        Some("linux")
    );
    assert!(c.readiness_probe.is_some() && c.liveness_probe.is_some());

    let services: Api<Service> = f.api();
    let svc = f
        .get(&services, "ingress-public", "Service ingress-public")
        .await?;
    assert_child_labels(&svc.metadata, "ingress-public", &ns);
    assert_owned_by(&svc.metadata, &set);
    let a = annotations(&svc);
    assert_eq!(
        a.get("service.beta.kubernetes.io/aws-load-balancer-scheme")
            .map(String::as_str),
        Some("internet-facing")
    );
    assert_eq!(
        a.get("service.beta.kubernetes.io/aws-load-balancer-type")
            .map(String::as_str),
        Some("external")
    );
    assert_eq!(a.get("example.com/team").map(String::as_str), Some("edge"));
    let sspec = svc.spec.clone().unwrap();
    assert_eq!(sspec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(
        sspec.load_balancer_source_ranges,
        Some(vec!["203.0.113.0/24".to_string()])
    );
    let ports: Vec<(i32, String)> = sspec
        .ports
        .unwrap()
        .iter()
        .map(|p| (p.port, format!("{:?}", p.target_port)))
        .collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports.iter().any(|(p, _)| *p == 80) && ports.iter().any(|(p, _)| *p == 443));

    let private_svc = f
        .get(&services, "ingress-private", "Service ingress-private")
        .await?;
    let pa = annotations(&private_svc);
    assert_eq!(
        pa.get("service.beta.kubernetes.io/azure-load-balancer-internal")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        private_svc.spec.unwrap().external_traffic_policy.as_deref(),
        Some("Cluster")
    );

    // The rest of the children, each labelled and owned.
    let cm = f
        .get(&f.api::<ConfigMap>(), "ingress-public", "ConfigMap")
        .await?;
    assert_owned_by(&cm.metadata, &set);
    let data = cm.data.clone().unwrap_or_default();
    assert!(data.contains_key("config.json"), "{data:?}");
    let sa = f
        .get(
            &f.api::<ServiceAccount>(),
            "ingress-public",
            "ServiceAccount",
        )
        .await?;
    assert_owned_by(&sa.metadata, &set);
    let role = f.get(&f.api::<Role>(), "ingress-public", "Role").await?;
    assert_child_labels(&role.metadata, "ingress-public", &ns);
    let rb = f
        .get(&f.api::<RoleBinding>(), "ingress-public", "RoleBinding")
        .await?;
    assert_eq!(rb.role_ref.name, "ingress-public");
    let pdb = f
        .get(&f.api::<PodDisruptionBudget>(), "ingress-public", "PDB")
        .await?;
    assert_eq!(
        pdb.spec.unwrap().max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let crbs: Api<ClusterRoleBinding> = Api::all(f.client.clone());
    let crb = f
        .get(
            &crbs,
            &format!("sluice-{ns}-ingress-public"),
            "ClusterRoleBinding",
        )
        .await?;
    assert_eq!(crb.role_ref.name, "sluice-dataplane");
    assert_child_labels(&crb.metadata, "ingress-public", &ns);
    let classes: Api<IngressClass> = Api::all(f.client.clone());
    let class = f.get(&classes, &public, "IngressClass").await?;
    let cspec = class.spec.unwrap();
    assert_eq!(
        cspec.controller.as_deref(),
        Some("sluice.dev/ingress-controller")
    );
    let params = cspec.parameters.unwrap();
    assert_eq!(params.kind, "IngressControllerSet");
    assert_eq!(params.name, "ingress-public");
    assert_eq!(params.namespace.as_deref(), Some(ns.as_str()));

    // Switching the private set from azure to gcp swaps the scheme annotation.
    f.apply_set(
        "ingress-private",
        json!({
            "ingressClassName": private,
            "replicas": 1,
            "loadBalancer": {"scheme": "internal", "provider": "gcp", "externalTrafficPolicy": "Cluster"}
        }),
    )
    .await?;
    wait_until("private Service moved to gcp annotations", WAIT, || {
        let services = services.clone();
        async move {
            let a = annotations(&services.get("ingress-private").await?);
            Ok((a
                .get("networking.gke.io/load-balancer-type")
                .map(String::as_str)
                == Some("Internal")
                && !a.contains_key("service.beta.kubernetes.io/azure-load-balancer-internal"))
            .then_some(()))
        }
    })
    .await?;

    // kwok makes the pods ready; a "cloud" assigns the address: the set is Ready.
    f.assign_lb("ingress-public", "198.51.100.7").await?;
    let ready = f.condition("ingress-public", "Ready", "True").await?;
    let st = ready.status.clone().unwrap();
    assert_eq!(st.address.as_deref(), Some("198.51.100.7"));
    assert_eq!(st.ready_replicas, Some(2));
    assert_eq!(
        st.selector.as_deref(),
        Some(format!("sluice.dev/set=ingress-public,sluice.dev/set-namespace={ns}").as_str())
    );
    assert_eq!(
        condition_of(&ready, "Stalled").map(|c| c.status.as_str()),
        Some("False")
    );
    assert_eq!(
        condition_of(&ready, "Reconciling").map(|c| c.status.as_str()),
        Some("False")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_subresource_drift_and_deletion() -> anyhow::Result<()> {
    let f = fixture("op-scale").await?;
    let ns = f.ns.name.clone();
    let class = f.class("edge");
    f.apply_set(
        "edge",
        json!({"ingressClassName": class, "loadBalancer": {"scheme": "internet-facing", "provider": "none"}}),
    )
    .await?;
    let deployments: Api<Deployment> = f.api();
    f.get(&deployments, "edge", "Deployment").await?;
    // status.selector is written on the first reconcile, so scale works right away.
    f.condition("edge", "Stalled", "False").await?;

    let out = f
        .env
        .kubectl()
        .args(["-n", &ns, "scale", "ics", "edge", "--replicas=3"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("Deployment scaled to 3", WAIT, || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("edge").await?;
            Ok((d.spec.and_then(|s| s.replicas) == Some(3)).then_some(()))
        }
    })
    .await?;
    let out = f
        .env
        .kubectl()
        .args([
            "-n",
            &ns,
            "get",
            "ics",
            "edge",
            "--subresource=scale",
            "-o",
            "json",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scale: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(
        scale["status"]["selector"],
        format!("sluice.dev/set=edge,sluice.dev/set-namespace={ns}")
    );

    // Drift: a deleted child comes back, a hand-edited field is put back.
    let uid = deployments.get("edge").await?.metadata.uid;
    deployments.delete("edge", &DeleteParams::default()).await?;
    wait_until("Deployment recreated", WAIT, || {
        let (deployments, uid) = (deployments.clone(), uid.clone());
        async move {
            Ok(deployments
                .get_opt("edge")
                .await?
                .filter(|d| d.metadata.uid != uid && d.metadata.deletion_timestamp.is_none())
                .map(|_| ()))
        }
    })
    .await?;
    let services: Api<Service> = f.api();
    services
        .patch(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"externalTrafficPolicy": "Cluster"}})),
        )
        .await?;
    wait_until("Service externalTrafficPolicy put back", WAIT, || {
        let services = services.clone();
        async move {
            let s = services.get("edge").await?;
            Ok(
                (s.spec.and_then(|s| s.external_traffic_policy).as_deref() == Some("Local"))
                    .then_some(()),
            )
        }
    })
    .await?;

    // Deleting the set removes everything, cluster-scoped objects included.
    f.sets().delete("edge", &DeleteParams::default()).await?;
    let classes: Api<IngressClass> = Api::all(f.client.clone());
    let crbs: Api<ClusterRoleBinding> = Api::all(f.client.clone());
    let crb_name = format!("sluice-{ns}-edge");
    wait_until("set, class, bindings and children gone", WAIT, || {
        let (f_sets, classes, crbs, deployments, services) = (
            f.sets(),
            classes.clone(),
            crbs.clone(),
            deployments.clone(),
            services.clone(),
        );
        let (class, crb_name) = (class.clone(), crb_name.clone());
        async move {
            let gone = f_sets.get_opt("edge").await?.is_none()
                && classes.get_opt(&class).await?.is_none()
                && crbs.get_opt(&crb_name).await?.is_none()
                && deployments.get_opt("edge").await?.is_none()
                && services.get_opt("edge").await?.is_none();
            Ok(gone.then_some(()))
        }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn same_named_sets_in_two_namespaces_stay_apart() -> anyhow::Result<()> {
    let a = fixture("op-iso-a").await?;
    let b = TestNamespace::create(&a.env, &a.client, "op-iso-b").await?;
    let spec = |class: &str| json!({"ingressClassName": class, "loadBalancer": {"scheme": "internal", "provider": "none"}});
    a.apply_set("shared", spec(&a.class("iso"))).await?;
    let b_sets: Api<Set> = Api::namespaced(a.client.clone(), &b.name);
    b_sets
        .patch(
            "shared",
            &PatchParams::apply("sluice-tests"),
            &Patch::Apply(json!({
                "apiVersion": "sluice.dev/v1alpha1", "kind": "IngressControllerSet",
                "metadata": {"name": "shared"}, "spec": spec(&format!("iso-{}", b.name)),
            })),
        )
        .await?;
    let a_deps: Api<Deployment> = a.api();
    let b_deps: Api<Deployment> = Api::namespaced(a.client.clone(), &b.name);
    let da = a.get(&a_deps, "shared", "Deployment in a").await?;
    let db = a.get(&b_deps, "shared", "Deployment in b").await?;
    assert_child_labels(&da.metadata, "shared", &a.ns.name);
    assert_child_labels(&db.metadata, "shared", &b.name);
    let crbs: Api<ClusterRoleBinding> = Api::all(a.client.clone());
    a.get(
        &crbs,
        &format!("sluice-{}-shared", a.ns.name),
        "a's binding",
    )
    .await?;
    a.get(&crbs, &format!("sluice-{}-shared", b.name), "b's binding")
        .await?;

    // Deleting a's set leaves b's fleet exactly as it was (same object, same spec: the
    // resourceVersion itself moves with status updates from the controller manager).
    let b_before = (db.metadata.uid.clone(), db.metadata.generation);
    a.sets().delete("shared", &DeleteParams::default()).await?;
    wait_until("a's binding gone", WAIT, || {
        let (crbs, name) = (crbs.clone(), format!("sluice-{}-shared", a.ns.name));
        async move { Ok(crbs.get_opt(&name).await?.is_none().then_some(())) }
    })
    .await?;
    assert!(
        crbs.get_opt(&format!("sluice-{}-shared", b.name))
            .await?
            .is_some()
    );
    let db_after = b_deps.get("shared").await?;
    assert_eq!(
        (db_after.metadata.uid, db_after.metadata.generation),
        b_before
    );
    assert!(
        b_sets
            .get("shared")
            .await?
            .metadata
            .deletion_timestamp
            .is_none()
    );
    b.delete(&a.client).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_sets_are_refused_by_the_api_server() -> anyhow::Result<()> {
    let f = fixture("op-cel").await?;
    let class = f.class("cel");
    f.apply_set(
        "good",
        json!({"ingressClassName": class, "loadBalancer": {"scheme": "internal", "provider": "none"}}),
    )
    .await?;
    let cases = [
        (
            "class is immutable",
            json!({"ingressClassName": format!("{class}-x"), "loadBalancer": {"scheme": "internal", "provider": "none"}}),
            "ingressClassName",
        ),
        (
            "bad CIDR",
            json!({"ingressClassName": class, "loadBalancer": {"scheme": "internal", "provider": "none", "sourceRanges": ["10.0.0.0/33"]}}),
            "sourceRanges",
        ),
        (
            "unknown scheme",
            json!({"ingressClassName": class, "loadBalancer": {"scheme": "public"}}),
            "scheme",
        ),
    ];
    for (what, spec, field) in cases {
        let err = f.apply_set("good", spec).await.expect_err(what).to_string();
        assert!(err.contains(field), "{what}: {err}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_stall_the_newer_set_and_foreign_objects_are_left_alone() -> anyhow::Result<()> {
    let f = fixture("op-conflict").await?;
    let class = f.class("contested");
    let spec = json!({"ingressClassName": class, "watchIngressWithoutClass": true,
                      "loadBalancer": {"scheme": "internal", "provider": "none"}});
    f.apply_set("first", spec.clone()).await?;
    f.condition("first", "IngressClassBound", "True").await?;
    // creationTimestamp has one-second resolution: make "second" unambiguously newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    f.apply_set("second", spec).await?;
    let second = f.condition("second", "Stalled", "True").await?;
    let stalled = condition_of(&second, "Stalled").unwrap();
    assert_eq!(stalled.reason, "IngressClassClaimed");
    assert!(stalled.message.contains("first"), "{}", stalled.message);
    assert!(
        f.api::<Deployment>().get_opt("second").await?.is_none(),
        "no fleet for the loser"
    );

    // A user-supplied class pointing at a set is bound and never modified.
    let own = f.class("byo");
    let classes: Api<IngressClass> = Api::all(f.client.clone());
    let byo: IngressClass = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": own, "labels": {"team": "platform"}},
        "spec": {"controller": "sluice.dev/ingress-controller",
                 "parameters": {"apiGroup": "sluice.dev", "kind": "IngressControllerSet",
                                "name": "byo", "namespace": f.ns.name, "scope": "Namespace"}}
    }))?;
    let created = classes.create(&PostParams::default(), &byo).await?;
    f.apply_set(
        "byo",
        json!({"ingressClassName": own, "loadBalancer": {"scheme": "internal", "provider": "none"}}),
    )
    .await?;
    let bound = f.condition("byo", "IngressClassBound", "True").await?;
    assert_eq!(
        condition_of(&bound, "IngressClassBound").unwrap().reason,
        "UserProvided"
    );
    assert_eq!(
        classes.get(&own).await?.metadata.resource_version,
        created.metadata.resource_version,
        "a user's IngressClass is never modified"
    );

    // A class of ours pointing at a set that does not exist: an Event, nothing crashes.
    let orphan = f.class("orphan");
    let orphan_class: IngressClass = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": orphan},
        "spec": {"controller": "sluice.dev/ingress-controller",
                 "parameters": {"apiGroup": "sluice.dev", "kind": "IngressControllerSet",
                                "name": "nobody", "namespace": f.ns.name, "scope": "Namespace"}}
    }))?;
    classes
        .create(&PostParams::default(), &orphan_class)
        .await?;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::all(f.client.clone());
    let selector = format!("involvedObject.name={orphan}");
    wait_until("SetNotFound Event on the orphan class", WAIT, || {
        let (events, selector) = (events.clone(), selector.clone());
        async move {
            let list = events
                .list(&kube::api::ListParams::default().fields(&selector))
                .await?;
            Ok(list
                .items
                .iter()
                .find(|e| e.reason.as_deref() == Some("SetNotFound"))
                .map(|e| e.message.clone().unwrap_or_default()))
        }
    })
    .await
    .map(|msg| assert!(msg.contains("nobody"), "{msg}"))?;
    classes.delete(&orphan, &DeleteParams::default()).await?;

    // A Service without our labels in the way: reported, never touched.
    let services: Api<Service> = f.api();
    let foreign: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "squatted"},
        "spec": {"ports": [{"port": 80}]}
    }))?;
    let foreign = services.create(&PostParams::default(), &foreign).await?;
    f.apply_set(
        "squatted",
        json!({"ingressClassName": f.class("squat"), "loadBalancer": {"scheme": "internal", "provider": "none"}}),
    )
    .await?;
    let s = f.condition("squatted", "Stalled", "True").await?;
    assert_eq!(condition_of(&s, "Stalled").unwrap().reason, "ForeignObject");
    assert_eq!(
        services.get("squatted").await?.metadata.resource_version,
        foreign.metadata.resource_version
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_apply_and_bad_patches_stall_keeping_the_last_good_child() -> anyhow::Result<()> {
    let f = fixture("op-patch").await?;
    let class = f.class("patched");
    f.apply_set(
        "p",
        json!({"ingressClassName": class, "loadBalancer": {"scheme": "internal", "provider": "none"},
               "patches": {"deployment": {"type": "JSONPatch", "patch": [
                   {"op": "add", "path": "/spec/template/spec/containers/0/env", "value": [{"name": "EXTRA", "value": "1"}]}
               ]}, "service": {"type": "MergePatch", "patch": {"metadata": {"annotations": {"patched": "yes"}}}}}}),
    )
    .await?;
    let deployments: Api<Deployment> = f.api();
    let d = wait_until("patched Deployment", WAIT, || {
        let deployments = deployments.clone();
        async move {
            Ok(deployments.get_opt("p").await?.filter(|d| {
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .is_some_and(|p| {
                        p.containers[0]
                            .env
                            .as_ref()
                            .is_some_and(|e| e.iter().any(|v| v.name == "EXTRA"))
                    })
            }))
        }
    })
    .await?;
    let services: Api<Service> = f.api();
    let svc = f.get(&services, "p", "Service").await?;
    assert_eq!(
        annotations(&svc).get("patched").map(String::as_str),
        Some("yes")
    );

    f.apply_set(
        "p",
        json!({"ingressClassName": class, "loadBalancer": {"scheme": "internal", "provider": "none"},
               "replicas": 4,
               "patches": {"deployment": {"type": "JSONPatch", "patch": [
                   {"op": "replace", "path": "/spec/nope/0", "value": 1}
               ]}}}),
    )
    .await?;
    let s = f.condition("p", "Stalled", "True").await?;
    let c = condition_of(&s, "Stalled").unwrap();
    assert_eq!(c.reason, "PatchFailed");
    assert!(c.message.contains("/spec/nope/0"), "{}", c.message);
    // The last good Deployment stays (2 replicas, not the 4 the broken spec asks for).
    let now = deployments.get("p").await?;
    assert_eq!(now.spec.and_then(|s| s.replicas), Some(2));
    assert_eq!(
        now.metadata.generation, d.metadata.generation,
        "spec untouched"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn scheme_change_waits_for_opt_in() -> anyhow::Result<()> {
    let f = fixture("op-scheme").await?;
    let class = f.class("scheme");
    let spec = |scheme: &str| json!({"ingressClassName": class, "loadBalancer": {"scheme": scheme, "provider": "azure"}});
    f.apply_set("lb", spec("internal")).await?;
    let services: Api<Service> = f.api();
    let before = f.get(&services, "lb", "Service").await?;
    assert!(
        annotations(&before)
            .contains_key("service.beta.kubernetes.io/azure-load-balancer-internal")
    );
    f.apply_set("lb", spec("internet-facing")).await?;
    let pending = f.condition("lb", "LoadBalancerReady", "False").await?;
    let c = condition_of(&pending, "LoadBalancerReady").unwrap();
    assert_eq!(c.reason, "SchemeChangePending", "{c:?}");
    assert!(c.message.contains("sluice.dev/accept-scheme-change"));
    assert_eq!(
        services.get("lb").await?.metadata.resource_version,
        before.metadata.resource_version,
        "the live load balancer is left alone until the user opts in"
    );
    f.sets()
        .patch(
            "lb",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"sluice.dev/accept-scheme-change": "internet-facing"}}})),
        )
        .await?;
    wait_until("Service moved to internet-facing", WAIT, || {
        let services = services.clone();
        async move {
            let a = annotations(&services.get("lb").await?);
            Ok(
                (!a.contains_key("service.beta.kubernetes.io/azure-load-balancer-internal"))
                    .then_some(()),
            )
        }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_operator_writes_nothing() -> anyhow::Result<()> {
    let f = fixture("op-quiet").await?;
    let class = f.class("quiet");
    f.apply_set(
        "q",
        json!({"ingressClassName": class, "loadBalancer": {"scheme": "internet-facing", "provider": "aws"},
               "proxy": {"proxyBodySize": "8m"}}),
    )
    .await?;
    f.assign_lb("q", "198.51.100.9").await?;
    let ready = f.condition("q", "Ready", "True").await?;
    // Let in-flight status updates (kwok, the controller manager) settle.
    tokio::time::sleep(Duration::from_secs(3)).await;

    async fn versions(f: &Fixture, class: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
        let ns = f.ns.name.clone();
        let crbs: Api<ClusterRoleBinding> = Api::all(f.client.clone());
        let classes: Api<IngressClass> = Api::all(f.client.clone());
        Ok(vec![
            (
                "set".into(),
                f.sets().get("q").await?.metadata.resource_version,
            ),
            (
                "deployment".into(),
                f.api::<Deployment>()
                    .get("q")
                    .await?
                    .metadata
                    .resource_version,
            ),
            (
                "service".into(),
                f.api::<Service>().get("q").await?.metadata.resource_version,
            ),
            (
                "configmap".into(),
                f.api::<ConfigMap>()
                    .get("q")
                    .await?
                    .metadata
                    .resource_version,
            ),
            (
                "sa".into(),
                f.api::<ServiceAccount>()
                    .get("q")
                    .await?
                    .metadata
                    .resource_version,
            ),
            (
                "role".into(),
                f.api::<Role>().get("q").await?.metadata.resource_version,
            ),
            (
                "rolebinding".into(),
                f.api::<RoleBinding>()
                    .get("q")
                    .await?
                    .metadata
                    .resource_version,
            ),
            (
                "pdb".into(),
                f.api::<PodDisruptionBudget>()
                    .get("q")
                    .await?
                    .metadata
                    .resource_version,
            ),
            (
                "crb".into(),
                crbs.get(&format!("sluice-{ns}-q"))
                    .await?
                    .metadata
                    .resource_version,
            ),
            (
                "class".into(),
                classes.get(class).await?.metadata.resource_version,
            ),
        ])
    }
    let before = versions(&f, &class).await?;
    let window = std::env::var("SLUICE_QUIET_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    tokio::time::sleep(Duration::from_secs(window)).await;
    let after = versions(&f, &class).await?;
    assert_eq!(
        before, after,
        "resourceVersions changed over a quiet {window}s"
    );
    assert_eq!(
        f.sets().get("q").await?.metadata.generation,
        ready.metadata.generation,
        "the operator never changes the set's spec"
    );
    Ok(())
}
