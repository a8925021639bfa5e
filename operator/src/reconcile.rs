//! The reconcile pipeline for one set: fetch -> validate (claims) -> build children (pure) ->
//! apply (server-side apply, skipped when nothing changed) -> status (pure).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_crds::{IngressControllerSet, LoadBalancerScheme};

use crate::apply::{self, Foreign, Outcome, ensure};
use crate::children::labels::{FIELD_MANAGER, is_ours};
use crate::children::{self, BuildContext};
use crate::claims::{self, Claim, ClassBinding, SetSummary};
use crate::context::{Context, ErrorLabels, SetLabels};
use crate::error::{Error, Result};
use crate::patches::apply_patch;
use crate::provider::{self, ConcreteProvider};
use crate::status::{self, Observed, Verdict};

/// Removes the cluster-scoped objects (IngressClass, ClusterRoleBinding) a namespaced owner
/// cannot own; namespaced children go by garbage collection through their ownerReferences.
pub const FINALIZER: &str = "sluice.dev/cleanup";
/// On the Service: the scheme its load balancer was created with.
pub const SCHEME_ANNOTATION: &str = "sluice.dev/load-balancer-scheme";
/// On the set: the user's opt-in to move a live load balancer to this scheme (a new address).
pub const ACCEPT_SCHEME_CHANGE: &str = "sluice.dev/accept-scheme-change";

/// Safety net: reconcile every set this often even when nothing is watched to change.
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(set: Arc<IngressControllerSet>, ctx: Arc<Context>) -> Result<Action> {
    let ns = set
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let labels = SetLabels {
        namespace: ns.clone(),
        set: set.name_any(),
    };
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let started = Instant::now();
    let api: Api<IngressControllerSet> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, set, |event| async {
        match event {
            Finalizer::Apply(set) => apply_set(&set, &ctx).await,
            Finalizer::Cleanup(set) => cleanup(&set, &ctx).await,
        }
    })
    .await;
    ctx.metrics
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(action) => Ok(action),
        // The namespace is going away (its deletion reaches the set's children before the
        // set), or the set is already gone: nothing left to do, and nothing to report.
        Err(e) if is_terminal(&e) => Ok(Action::await_change()),
        Err(kube::runtime::finalizer::Error::ApplyFailed(e))
        | Err(kube::runtime::finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(other) => Err(Error::Finalizer(other.to_string())),
    }
}

fn is_terminal(e: &kube::runtime::finalizer::Error<Error>) -> bool {
    use kube::runtime::finalizer::Error as F;
    let api = match e {
        F::ApplyFailed(Error::Kube(kube::Error::Api(s)))
        | F::CleanupFailed(Error::Kube(kube::Error::Api(s))) => s,
        F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s)) => s,
        _ => return false,
    };
    api.code == 404
        || (api.code == 403
            && api
                .details
                .as_ref()
                .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
}

/// Requeues failed reconciles with a short delay and records the failure.
pub fn error_policy(set: Arc<IngressControllerSet>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(set = %set.name_any(), namespace = ?set.namespace(), error = %err, "reconcile failed");
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels {
            namespace: set.namespace().unwrap_or_default(),
            set: set.name_any(),
            reason: err.reason().into(),
        })
        .inc();
    let (recorder, reference, note) = (ctx.recorder.clone(), set.object_ref(&()), err.to_string());
    let reason = err.reason();
    tokio::spawn(async move {
        let _ = recorder
            .publish(
                &KubeEvent {
                    type_: EventType::Warning,
                    reason: reason.into(),
                    note: Some(truncate(&note, 1000)),
                    action: "Reconcile".into(),
                    secondary: None,
                },
                &reference,
            )
            .await;
    });
    Action::requeue(Duration::from_secs(5))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Collects what the reconcile learned, for status and Events.
#[derive(Default)]
struct Findings {
    stalled: Vec<(String, String)>,
    /// (reason, message) of Normal Events for objects created or updated.
    changes: Vec<(String, String)>,
}

impl Findings {
    fn stall(&mut self, reason: &str, message: impl Into<String>) {
        self.stalled.push((reason.into(), message.into()));
    }

    fn record(&mut self, outcome: Outcome, kind: &str, name: &str) {
        match outcome {
            Outcome::Unchanged => {}
            Outcome::Created => self
                .changes
                .push(("Created".into(), format!("created {kind} {name}"))),
            Outcome::Updated => self
                .changes
                .push(("Updated".into(), format!("updated {kind} {name}"))),
        }
    }

    fn foreign(&mut self, f: &Foreign, ns: &str) {
        self.stall(
            "ForeignObject",
            format!(
                "{} {ns}/{} exists without this set's labels (sluice.dev/set, sluice.dev/set-namespace); Sluice does not modify objects it does not own: delete or rename it",
                f.kind, f.name
            ),
        );
    }
}

/// Applies one child; a foreign object in the way is recorded, not an error.
async fn apply_child<K>(
    api: &Api<K>,
    set: &IngressControllerSet,
    kind: &'static str,
    desired: &K,
    findings: &mut Findings,
    ctx: &Context,
) -> Result<Option<K>>
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    match ensure(api, set, kind, desired).await? {
        Ok((outcome, live)) => {
            if outcome != Outcome::Unchanged {
                ctx.metrics.writes.get_or_create(&set_labels(set)).inc();
            }
            findings.record(outcome, kind, &live.name_any());
            Ok(Some(live))
        }
        Err(foreign) => {
            findings.foreign(&foreign, &set.namespace().unwrap_or_default());
            Ok(None)
        }
    }
}

fn set_labels(set: &IngressControllerSet) -> SetLabels {
    SetLabels {
        namespace: set.namespace().unwrap_or_default(),
        set: set.name_any(),
    }
}

/// Resolves `provider: auto` from the Nodes' spec.providerID.
fn resolve_provider(set: &IngressControllerSet, ctx: &Context) -> ConcreteProvider {
    let nodes = ctx.nodes.state();
    let ids: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.spec.as_ref().and_then(|s| s.provider_id.clone()))
        .collect();
    provider::resolve(
        set.spec.load_balancer.provider,
        ids.iter().map(String::as_str),
    )
}

async fn apply_set(set: &IngressControllerSet, ctx: &Context) -> Result<Action> {
    let client = &ctx.client;
    let ns = set.namespace().unwrap_or_default();
    let mut findings = Findings::default();

    // --- validate: claims between sets --------------------------------------------------
    let me = SetSummary::of(set).ok_or(Error::MissingField("metadata (set is being deleted)"))?;
    let others: Vec<SetSummary> = ctx
        .sets
        .state()
        .iter()
        .filter(|s| !(s.namespace() == set.namespace() && s.name_any() == set.name_any()))
        .filter_map(|s| SetSummary::of(s))
        .collect();
    let mut runs_fleet = true;
    if let Claim::HeldBy { namespace, name } = claims::class_claim(&me, &others) {
        runs_fleet = false;
        findings.stall(
            "IngressClassClaimed",
            format!(
                "IngressClass {} is already served by the older IngressControllerSet {namespace}/{name}; this set runs no fleet until that set is deleted or spec.ingressClassName changes",
                set.spec.ingress_class_name
            ),
        );
    }
    let mut watch_without_class = set.spec.watch_ingress_without_class;
    if watch_without_class
        && let Claim::HeldBy { namespace, name } = claims::without_class_claim(&me, &others)
    {
        watch_without_class = false;
        findings.stall(
            "WatchWithoutClassConflict",
            format!(
                "spec.watchIngressWithoutClass: the older IngressControllerSet {namespace}/{name} already serves Ingresses without a class; at most one set may, so this set ignores them"
            ),
        );
    }

    // --- the IngressClass -------------------------------------------------------------
    let mut class_verdict = None;
    if runs_fleet {
        let classes: Api<IngressClass> = Api::all(client.clone());
        let existing = classes.get_opt(&set.spec.ingress_class_name).await?;
        class_verdict = Some(match claims::class_binding(set, existing.as_ref()) {
            ClassBinding::Create | ClassBinding::Managed => {
                let desired = children::ingress_class::desired_ingress_class(set);
                match apply_child(&classes, set, "IngressClass", &desired, &mut findings, ctx)
                    .await?
                {
                    Some(_) => Verdict::yes(
                        "Created",
                        format!(
                            "IngressClass {} is managed by this set",
                            set.spec.ingress_class_name
                        ),
                    ),
                    None => Verdict::no("Conflict", "the IngressClass changed hands"),
                }
            }
            ClassBinding::UserProvided { default_mismatch } => {
                let mut msg = format!(
                    "IngressClass {} (applied by the user) points at this set; Sluice never modifies it",
                    set.spec.ingress_class_name
                );
                if default_mismatch {
                    msg.push_str(&format!(
                        "; note: spec.defaultClass is {} but the class's {} annotation says otherwise, and the class's annotation is what Kubernetes uses",
                        set.spec.default_class,
                        claims::DEFAULT_CLASS_ANNOTATION
                    ));
                }
                Verdict::yes("UserProvided", msg)
            }
            ClassBinding::Conflict { message } => {
                runs_fleet = false;
                findings.stall("IngressClassConflict", message.clone());
                Verdict::no("Conflict", message)
            }
        });
    }

    // --- children ------------------------------------------------------------------------
    let concrete = resolve_provider(set, ctx);
    let mut deployment = None;
    let mut service = None;
    let mut scheme_change_pending = None;
    if runs_fleet {
        let build = BuildContext {
            image: ctx.image.clone(),
            provider: concrete,
            image_pull_policy: ctx.image_pull_policy.clone(),
        };

        let sa = children::service_account::desired_service_account(set);
        apply_child(
            &apply::namespaced::<ServiceAccount>(client, set),
            set,
            "ServiceAccount",
            &sa,
            &mut findings,
            ctx,
        )
        .await?;
        let role = children::role::desired_role(set);
        apply_child(
            &apply::namespaced::<Role>(client, set),
            set,
            "Role",
            &role,
            &mut findings,
            ctx,
        )
        .await?;
        let rb = children::role_binding::desired_role_binding(set);
        apply_child(
            &apply::namespaced::<RoleBinding>(client, set),
            set,
            "RoleBinding",
            &rb,
            &mut findings,
            ctx,
        )
        .await?;
        let crb = children::cluster_role_binding::desired_cluster_role_binding(set);
        apply_child(
            &Api::<ClusterRoleBinding>::all(client.clone()),
            set,
            "ClusterRoleBinding",
            &crb,
            &mut findings,
            ctx,
        )
        .await?;

        match children::config_map::desired_config_map(set, watch_without_class) {
            Ok(cm) => {
                apply_child(
                    &apply::namespaced::<ConfigMap>(client, set),
                    set,
                    "ConfigMap",
                    &cm,
                    &mut findings,
                    ctx,
                )
                .await?;
            }
            Err(e) => findings.stall("InvalidProxySettings", format!("spec.proxy.{e}")),
        }

        let pdb = children::pdb::desired_pdb(set);
        apply_child(
            &apply::namespaced::<PodDisruptionBudget>(client, set),
            set,
            "PodDisruptionBudget",
            &pdb,
            &mut findings,
            ctx,
        )
        .await?;

        let deployments = apply::namespaced::<Deployment>(client, set);
        let desired = children::deployment::desired_deployment(set, &build);
        deployment = match patched(
            set,
            desired,
            set.spec.patches.deployment.as_ref(),
            "Deployment",
            &mut findings,
        ) {
            Some(d) => apply_child(&deployments, set, "Deployment", &d, &mut findings, ctx).await?,
            None => deployments.get_opt(&set.name_any()).await?,
        };

        let services = apply::namespaced::<Service>(client, set);
        let mut desired = children::service::desired_service(set, &build);
        desired
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                SCHEME_ANNOTATION.into(),
                scheme_str(&set.spec.load_balancer.scheme).into(),
            );
        let live = services.get_opt(&set.name_any()).await?;
        let live_scheme = live
            .as_ref()
            .filter(|s| is_ours(&s.metadata, set))
            .and_then(|s| s.metadata.annotations.as_ref())
            .and_then(|a| a.get(SCHEME_ANNOTATION).cloned());
        let wanted = scheme_str(&set.spec.load_balancer.scheme);
        let accepted = set
            .annotations()
            .get(ACCEPT_SCHEME_CHANGE)
            .is_some_and(|v| v == wanted);
        service = live.clone();
        match live_scheme {
            Some(old) if old != wanted && !accepted => {
                scheme_change_pending = Some(format!(
                    "spec.loadBalancer.scheme changed from {old} to {wanted}: the load balancer will get a new address ({}); annotate the set with {ACCEPT_SCHEME_CHANGE}={wanted} to proceed",
                    if matches!(
                        concrete,
                        ConcreteProvider::Aws | ConcreteProvider::AwsLegacy
                    ) {
                        "on AWS the Service is deleted and recreated"
                    } else {
                        "the cloud migrates it in place"
                    }
                ));
            }
            other => {
                if other.is_some_and(|old| old != wanted)
                    && matches!(
                        concrete,
                        ConcreteProvider::Aws | ConcreteProvider::AwsLegacy
                    )
                {
                    // AWS cannot change a load balancer's scheme in place.
                    services
                        .delete(&set.name_any(), &DeleteParams::foreground())
                        .await?;
                    let note = format!(
                        "deleted Service {} to recreate its load balancer as {wanted}",
                        set.name_any()
                    );
                    publish(
                        ctx,
                        &set.object_ref(&()),
                        EventType::Normal,
                        "Recreating",
                        &note,
                    )
                    .await;
                    return Ok(Action::requeue(Duration::from_secs(2)));
                }
                if let Some(s) = patched(
                    set,
                    desired,
                    set.spec.patches.service.as_ref(),
                    "Service",
                    &mut findings,
                ) {
                    service =
                        apply_child(&services, set, "Service", &s, &mut findings, ctx).await?;
                }
            }
        }
    }

    // --- status ---------------------------------------------------------------------------
    let observed = Observed {
        stalled: findings.stalled.clone(),
        class_bound: class_verdict,
        deployment: deployment.as_ref(),
        service: service.as_ref(),
        provider: Some(concrete.into()),
        scheme_change_pending,
    };
    let now = Time(Timestamp::now());
    let new_status = status::compute_status(set, &observed, set.status.as_ref(), &now);
    let old_stalled = set.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == status::STALLED)
            .cloned()
    });
    if set.status.as_ref() != Some(&new_status) {
        let api: Api<IngressControllerSet> = Api::namespaced(client.clone(), &ns);
        api.patch_status(
            &set.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "sluice.dev/v1alpha1",
                "kind": "IngressControllerSet",
                "status": new_status,
            })),
        )
        .await?;
    }

    // --- events: what changed, and a stall only when it is new ---------------------------------
    let reference = set.object_ref(&());
    for (reason, note) in &findings.changes {
        publish(ctx, &reference, EventType::Normal, reason, note).await;
    }
    let new_stalled = new_status
        .conditions
        .iter()
        .find(|c| c.type_ == status::STALLED);
    if let Some(c) = new_stalled.filter(|c| c.status == "True")
        && old_stalled
            .as_ref()
            .is_none_or(|o| o.status != c.status || o.message != c.message)
    {
        publish(ctx, &reference, EventType::Warning, &c.reason, &c.message).await;
    }
    ctx.mark_ready();
    Ok(Action::requeue(RESYNC))
}

async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let ev = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(truncate(note, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, reference).await {
        tracing::warn!(error = %e, "publishing an Event failed");
    }
}

/// Applies the user's patch for a child; `None` (and a stall) when it fails, so the last good
/// child stays as it is.
fn patched<T: Serialize + DeserializeOwned>(
    _set: &IngressControllerSet,
    desired: T,
    patch: Option<&sluice_crds::ChildPatch>,
    kind: &str,
    findings: &mut Findings,
) -> Option<T> {
    let Some(patch) = patch else {
        return Some(desired);
    };
    match apply_patch(&desired, patch, kind) {
        Ok(p) => Some(p),
        Err(e) => {
            findings.stall("PatchFailed", format!("spec.patches: {e}"));
            None
        }
    }
}

fn scheme_str(s: &LoadBalancerScheme) -> &'static str {
    match s {
        LoadBalancerScheme::InternetFacing => "internet-facing",
        LoadBalancerScheme::Internal => "internal",
    }
}

/// Deletes the cluster-scoped objects this set created; never one without its labels.
async fn cleanup(set: &IngressControllerSet, ctx: &Context) -> Result<Action> {
    let classes: Api<IngressClass> = Api::all(ctx.client.clone());
    if let Some(c) = classes.get_opt(&set.spec.ingress_class_name).await?
        && is_ours(&c.metadata, set)
    {
        classes
            .delete(&set.spec.ingress_class_name, &DeleteParams::default())
            .await?;
    }
    let crbs: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    let crb_name = children::labels::cluster_role_binding_name(set);
    if let Some(b) = crbs.get_opt(&crb_name).await?
        && is_ours(&b.metadata, set)
    {
        crbs.delete(&crb_name, &DeleteParams::default()).await?;
    }
    Ok(Action::await_change())
}
