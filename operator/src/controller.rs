//! Wires the reconcile into a kube-runtime Controller: the sets, their children, the
//! IngressClasses and ClusterRoleBindings they relate to, other sets that compete for the
//! same class, and Nodes (for `provider: auto`). Secret mirroring ([`crate::mirror`]) runs
//! beside it for as long as the controller runs, so it shares the leader election.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt};
use sluice_crds::IngressControllerSet;

use crate::children::labels::{MANAGED_BY, MANAGED_BY_LABEL, SET_LABEL, SET_NAMESPACE_LABEL};
use crate::context::{Context, Metrics};
use crate::reconcile::{error_policy, reconcile};

/// Settings of a controller run.
pub struct Settings {
    pub image: String,
    pub image_pull_policy: Option<String>,
}

fn by_labels<K: Resource>(obj: &K) -> Option<ObjectRef<IngressControllerSet>> {
    let labels = obj.meta().labels.as_ref()?;
    Some(ObjectRef::new(labels.get(SET_LABEL)?).within(labels.get(SET_NAMESPACE_LABEL)?))
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let sets: Api<IngressControllerSet> = Api::all(client.clone());
    let ours = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));

    // Nodes only matter for their providerID; drop the rest on arrival.
    let (nodes, node_writer) = reflector::store::<Node>();
    let node_stream = reflector::reflector(
        node_writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).modify(|n| {
            n.status = None;
            n.metadata.managed_fields = None;
            n.metadata.annotations = None;
        }),
    )
    .applied_objects();

    let controller = Controller::new(sets.clone(), watcher::Config::default());
    let store = controller.store();
    let seen_provider_kinds = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let for_classes = store.clone();
    let for_sets = store.clone();
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: kube::runtime::events::Recorder::new(client.clone(), Context::reporter()),
        image: settings.image,
        image_pull_policy: settings.image_pull_policy,
        sets: store,
        nodes,
        metrics,
        ready,
    });

    // Both stop with the controller (leadership lost, shutdown): a new leader term starts
    // fresh ones, and a former leader must not keep writing.
    let _side_tasks = AbortOnDrop(vec![
        tokio::spawn(report_orphan_classes(client.clone(), ctx.recorder.clone())),
        tokio::spawn(crate::mirror::run(
            client.clone(),
            ctx.recorder.clone(),
            ctx.metrics.clone(),
        )),
    ]);

    controller
        .owns(Api::<Deployment>::all(client.clone()), ours.clone())
        .owns(Api::<Service>::all(client.clone()), ours.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), ours.clone())
        .owns(Api::<ServiceAccount>::all(client.clone()), ours.clone())
        .owns(Api::<Role>::all(client.clone()), ours.clone())
        .owns(Api::<RoleBinding>::all(client.clone()), ours.clone())
        .owns(
            Api::<PodDisruptionBudget>::all(client.clone()),
            ours.clone(),
        )
        .watches(
            Api::<ClusterRoleBinding>::all(client.clone()),
            ours,
            |crb| by_labels(&crb),
        )
        // Any class change may bind, unbind or conflict with the sets naming it.
        .watches(
            Api::<IngressClass>::all(client.clone()),
            watcher::Config::default(),
            move |class| {
                let name = class.name_any();
                for_classes
                    .state()
                    .iter()
                    .filter(|s| s.spec.ingress_class_name == name)
                    .map(|s| ObjectRef::from_obj(&**s))
                    .collect::<Vec<_>>()
            },
        )
        // A set appearing, changing or going can move a claim to another set.
        .watches(sets, watcher::Config::default(), move |changed| {
            for_sets
                .state()
                .iter()
                .filter(|s| {
                    s.spec.ingress_class_name == changed.spec.ingress_class_name
                        || (s.spec.watch_ingress_without_class
                            && changed.spec.watch_ingress_without_class)
                })
                .map(|s| ObjectRef::from_obj(&**s))
                .collect::<Vec<_>>()
        })
        // Only a new kind of provider among the Nodes can change an `auto` decision.
        .reconcile_all_on(node_stream.filter_map(move |node| {
            let kinds = seen_provider_kinds.clone();
            async move {
                let node = node.ok()?;
                let id = node.spec.and_then(|s| s.provider_id)?;
                let kind = id.split("://").next()?.to_string();
                let mut kinds = kinds.lock().ok()?;
                kinds.insert(kind).then_some(())
            }
        }))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(set = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
}

/// Aborts its tasks when dropped, so they end with the controller run that started them.
pub(crate) struct AbortOnDrop(pub(crate) Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// An IngressClass of our controller whose parameters name a set that does not exist gets a
/// Warning Event (once per version of the class); nothing else happens to it.
async fn report_orphan_classes(client: kube::Client, recorder: kube::runtime::events::Recorder) {
    use kube::runtime::events::{Event, EventType};
    let mut reported = std::collections::HashSet::<(String, String)>::new();
    let stream = watcher(
        Api::<IngressClass>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let Ok(class) = item else { continue };
        let Some(spec) = class.spec.as_ref() else {
            continue;
        };
        if spec.controller.as_deref() != Some(sluice_crds::CONTROLLER_NAME) {
            continue;
        }
        let Some(p) = spec.parameters.as_ref() else {
            continue;
        };
        if p.kind != "IngressControllerSet" {
            continue;
        }
        let version = (
            class.name_any(),
            class.resource_version().unwrap_or_default(),
        );
        if reported.contains(&version) {
            continue;
        }
        let ns = p.namespace.clone().unwrap_or_default();
        // Asked of the API server, not a cache that may not have synced yet.
        let sets: Api<IngressControllerSet> = Api::namespaced(client.clone(), &ns);
        if !matches!(sets.get_opt(&p.name).await, Ok(None)) {
            continue;
        }
        reported.insert(version);
        let note = format!(
            "spec.parameters points at IngressControllerSet {ns}/{} which does not exist; no Sluice fleet serves this class",
            p.name
        );
        tracing::warn!(class = %class.name_any(), "{note}");
        let _ = recorder
            .publish(
                &Event {
                    type_: EventType::Warning,
                    reason: "SetNotFound".into(),
                    note: Some(note),
                    action: "Bind".into(),
                    secondary: None,
                },
                &class.object_ref(&()),
            )
            .await;
    }
}
