//! Secret and ConfigMap mirroring: copies the Secrets (and the `custom-headers` ConfigMaps) that
//! Ingresses of each set's class reference into the set's namespace, where the fleet's Role
//! lets the data plane read them.
//!
//! RBAC cannot limit a watch to TLS Secrets, so the internet-facing data plane has no
//! cluster-wide Secret access at all; the operator (not exposed to traffic) does this for it.
//! The contract the data plane reads mirrors by is `sluice_crds::mirror`.
//!
//! One task, run by [`crate::controller::run`] so it shares the leader election, driven by
//! watches rather than the resync so a rotation reaches the mirror within a second:
//!
//! - Secrets, metadata only (no data is cached), split in two watches: origins
//!   (`sluice.dev/mirror!=true`, labels and annotations dropped on arrival, since
//!   `last-applied-configuration` can hold a Secret's data) and mirrors (`sluice.dev/mirror=true`).
//!   The data of an origin is read with a GET only when its mirror has to be written.
//! - ConfigMaps, metadata only, split the same way (origins and mirrors): ConfigMaps are
//!   mirrored exactly like Secrets, each kind with its own plan, mirrors and Events.
//! - Ingresses (stripped to class, TLS and the reference annotations), IngressClasses and sets.
//!
//! Each watch event marks the sets it concerns (a Secret: the sets whose Ingresses name it, or
//! the set a mirror belongs to); after a short coalescing window one pass per marked set
//! computes the plan ([`plan::plan`]) from the watches alone, so an idle pass makes no API
//! call, and then copies, deletes and reports what the plan says.

pub mod config_map;
pub mod plan;
pub mod refs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressSpec, IngressTLS};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PartialObjectMeta, Preconditions};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt};
use sluice_crds::IngressControllerSet;
use sluice_crds::mirror::{MIRROR_LABEL, ORIGIN_ANNOTATION, ORIGIN_VERSION_ANNOTATION};
use thiserror::Error;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::plan::Origin;
use self::refs::{ClassScope, Kind, ObjectKey, Problem, Reference, References};
use crate::apply::{DesiredHash, Outcome, ensure_with};
use crate::children::labels::{SET_LABEL, SET_NAMESPACE_LABEL};
use crate::children::mirror_secret::{desired_mirror, is_mirror_of};
use crate::context::{Metrics, SetLabels};
use crate::controller::AbortOnDrop;

/// How long a burst of watch events is gathered into one pass (an `kubectl apply` of many
/// Ingresses, a certificate renewal touching several Secrets); short next to the one-second
/// rotation budget.
const COALESCE: Duration = Duration::from_millis(50);
/// Safety net: every set gets a pass this often even without events.
const RESYNC: Duration = Duration::from_secs(300);
/// A set whose pass failed is tried again after this long.
const RETRY: Duration = Duration::from_secs(5);

/// Reason of the Event on an Ingress that names a Secret which does not exist.
pub const REASON_NOT_FOUND: &str = "SecretNotFound";
/// Reason of the Event on an Ingress that names a mirror instead of its origin.
pub const REASON_MIRROR_REFERENCED: &str = "MirrorSecretReferenced";
/// Reason of the Event on an Ingress that names a ConfigMap which does not exist.
pub const REASON_CONFIG_MAP_NOT_FOUND: &str = "ConfigMapNotFound";
/// Reason of the Event on an Ingress that names a mirror ConfigMap instead of its origin.
pub const REASON_MIRROR_CONFIG_MAP_REFERENCED: &str = "MirrorConfigMapReferenced";

type SecretMeta = PartialObjectMeta<Secret>;
type ConfigMapMeta = PartialObjectMeta<ConfigMap>;

/// A kind mirroring copies: how its mirror is made from its origin.
pub trait Mirrored:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: Kind;
    const KIND_NAME: &'static str;
    fn desired(set: &IngressControllerSet, origin: &Self) -> Self;
}

impl Mirrored for Secret {
    const KIND: Kind = Kind::Secret;
    const KIND_NAME: &'static str = "Secret";
    fn desired(set: &IngressControllerSet, origin: &Self) -> Self {
        desired_mirror(set, origin)
    }
}

impl Mirrored for ConfigMap {
    const KIND: Kind = Kind::ConfigMap;
    const KIND_NAME: &'static str = "ConfigMap";
    fn desired(set: &IngressControllerSet, origin: &Self) -> Self {
        config_map::desired_mirror(set, origin)
    }
}

/// A failed step of a pass; the pass goes on with the other objects and is retried.
#[derive(Debug, Error)]
pub enum MirrorError {
    #[error("reading origin {kind} {origin}: {source}")]
    ReadOrigin {
        kind: Kind,
        origin: ObjectKey,
        source: kube::Error,
    },
    #[error("writing mirror {kind} {mirror} (of {origin}): {source}")]
    Write {
        kind: Kind,
        origin: ObjectKey,
        mirror: ObjectKey,
        source: crate::error::Error,
    },
    #[error("deleting mirror {kind} {mirror}: {source}")]
    Delete {
        kind: Kind,
        mirror: ObjectKey,
        source: kube::Error,
    },
}

/// Sets waiting for a pass.
#[derive(Debug, Default)]
struct Dirty {
    all: bool,
    sets: BTreeSet<ObjectKey>,
}

/// Which sets an origin Secret or an Ingress concerns, as of each set's last pass: how a watch
/// event finds the sets to wake without scanning every Ingress.
#[derive(Debug, Default)]
struct Index {
    by_origin: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    /// Origin ConfigMaps (a Secret and a ConfigMap of one name are different origins).
    by_config_map: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    by_ingress: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
}

fn reindex(
    map: &mut HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    set: &ObjectKey,
    old: &BTreeSet<ObjectKey>,
    new: &BTreeSet<ObjectKey>,
) {
    for gone in old.difference(new) {
        if let Some(sets) = map.get_mut(gone) {
            sets.remove(set);
            if sets.is_empty() {
                map.remove(gone);
            }
        }
    }
    for added in new.difference(old) {
        map.entry(added.clone()).or_default().insert(set.clone());
    }
}

/// Shared between the watch tasks (which mark) and the worker (which passes).
#[derive(Default)]
struct Triggers {
    dirty: Mutex<Dirty>,
    notify: Notify,
    index: Mutex<Index>,
}

impl Triggers {
    fn mark_all(&self) {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner()).all = true;
        self.notify.notify_one();
    }

    fn mark(&self, sets: impl IntoIterator<Item = ObjectKey>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        let before = dirty.sets.len();
        dirty.sets.extend(sets);
        if dirty.sets.len() != before {
            drop(dirty);
            self.notify.notify_one();
        }
    }

    fn take(&self) -> Dirty {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The set a mirror belongs to, from its labels.
fn set_of_mirror(meta: &ObjectMeta) -> Option<ObjectKey> {
    let labels = meta.labels.as_ref()?;
    Some(ObjectKey::new(
        labels.get(SET_NAMESPACE_LABEL)?,
        labels.get(SET_LABEL)?,
    ))
}

fn set_key(set: &IngressControllerSet) -> ObjectKey {
    ObjectKey::of(&set.metadata)
}

/// The sets an Ingress event concerns: those whose class it names (or that watch Ingresses
/// without a class, when it names none), and those it belonged to at their last pass (it may
/// have moved to another class or gone).
fn sets_for_ingress(
    ingress: &Ingress,
    sets: &[Arc<IngressControllerSet>],
    index: &Index,
) -> BTreeSet<ObjectKey> {
    let mut out: BTreeSet<ObjectKey> = sets
        .iter()
        .filter(|s| {
            let scope = ClassScope {
                class_name: s.spec.ingress_class_name.clone(),
                watch_without_class: s.spec.watch_ingress_without_class,
            };
            refs::is_member(ingress, &scope)
        })
        .map(|s| set_key(s))
        .collect();
    if let Some(known) = index.by_ingress.get(&ObjectKey::of(&ingress.metadata)) {
        out.extend(known.iter().cloned());
    }
    out
}

/// Keeps what membership and references need (and the uid, for Events on the Ingress).
pub fn strip_ingress(ingress: &mut Ingress) {
    let annotations = ingress.metadata.annotations.take().map(|a| {
        a.into_iter()
            .filter(|(k, _)| {
                k == refs::LEGACY_CLASS_ANNOTATION
                    || refs::SECRET_ANNOTATIONS
                        .iter()
                        .chain(refs::CONFIG_MAP_ANNOTATIONS)
                        .any(|key| {
                            k.strip_prefix(refs::SLUICE_PREFIX)
                                .or_else(|| k.strip_prefix(refs::NGINX_PREFIX))
                                == Some(*key)
                        })
            })
            .collect::<BTreeMap<_, _>>()
    });
    ingress.metadata = ObjectMeta {
        name: ingress.metadata.name.take(),
        namespace: ingress.metadata.namespace.take(),
        uid: ingress.metadata.uid.take(),
        resource_version: ingress.metadata.resource_version.take(),
        annotations: annotations.filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    };
    ingress.spec = ingress.spec.take().map(|spec| IngressSpec {
        ingress_class_name: spec.ingress_class_name,
        tls: spec.tls.map(|tls| {
            tls.into_iter()
                .map(|t| IngressTLS {
                    secret_name: t.secret_name,
                    hosts: None,
                })
                .collect()
        }),
        ..IngressSpec::default()
    });
    ingress.status = None;
}

/// An origin needs only its identity and resourceVersion. Its labels and annotations are
/// dropped on arrival: `kubectl.kubernetes.io/last-applied-configuration` holds the whole
/// Secret, data included, when it was applied client-side.
pub fn strip_origin<K>(object: &mut PartialObjectMeta<K>) {
    let meta = &mut object.metadata;
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        ..ObjectMeta::default()
    };
}

/// A mirror keeps its labels (whose set it is) and the two origin annotations.
pub fn strip_mirror<K>(object: &mut PartialObjectMeta<K>) {
    let meta = &mut object.metadata;
    let annotations = meta.annotations.take().map(|a| {
        a.into_iter()
            .filter(|(k, _)| k == ORIGIN_ANNOTATION || k == ORIGIN_VERSION_ANNOTATION)
            .collect::<BTreeMap<_, _>>()
    });
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        labels: meta.labels.take(),
        annotations,
        ..ObjectMeta::default()
    };
}

/// Drives a reflector, marking sets for every event `on_event` maps to them; a re-list marks
/// every set (events may have been missed).
fn pump<K, S>(
    writer: reflector::store::Writer<K>,
    stream: S,
    what: &'static str,
    triggers: Arc<Triggers>,
    on_event: impl Fn(&K, &Triggers) + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let stream = reflector::reflector(writer, stream);
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => {
                    on_event(&obj, &triggers)
                }
                Ok(watcher::Event::InitDone) => triggers.mark_all(),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Err(e) => {
                    tracing::warn!(watch = what, error = %e, "mirroring watch failed; retrying")
                }
            }
        }
    })
}

/// Runs mirroring until the future is dropped.
pub async fn run(client: kube::Client, recorder: Recorder, metrics: Arc<Metrics>) {
    let triggers = Arc::new(Triggers::default());
    let cfg = watcher::Config::default().any_semantic();

    let (sets, sets_writer) = reflector::store::<IngressControllerSet>();
    let (classes, classes_writer) = reflector::store::<IngressClass>();
    let (ingresses, ingresses_writer) = reflector::store::<Ingress>();
    let (origins, origins_writer) = reflector::store::<SecretMeta>();
    let (mirrors, mirrors_writer) = reflector::store::<SecretMeta>();
    let (config_map_origins, config_map_origins_writer) = reflector::store::<ConfigMapMeta>();
    let (config_map_mirrors, config_map_mirrors_writer) = reflector::store::<ConfigMapMeta>();

    let for_ingresses = sets.clone();
    // The watches end with mirroring (leadership lost, shutdown).
    let _tasks = AbortOnDrop(vec![
        // A set or class appearing, changing or going can move claims between sets.
        pump(
            sets_writer,
            watcher(
                Api::<IngressControllerSet>::all(client.clone()),
                cfg.clone(),
            )
            .default_backoff(),
            "IngressControllerSet",
            triggers.clone(),
            |_, t| t.mark_all(),
        ),
        pump(
            classes_writer,
            watcher(Api::<IngressClass>::all(client.clone()), cfg.clone()).default_backoff(),
            "IngressClass",
            triggers.clone(),
            |_, t| t.mark_all(),
        ),
        pump(
            ingresses_writer,
            watcher(Api::<Ingress>::all(client.clone()), cfg.clone())
                .default_backoff()
                .modify(strip_ingress),
            "Ingress",
            triggers.clone(),
            move |ingress, t| {
                let sets = for_ingresses.state();
                let marked = sets_for_ingress(ingress, &sets, &t.index());
                t.mark(marked);
            },
        ),
        pump(
            origins_writer,
            watcher(
                Api::<SecretMeta>::all(client.clone()),
                cfg.clone().labels(&format!("{MIRROR_LABEL}!=true")),
            )
            .default_backoff()
            .modify(strip_origin),
            "Secret (metadata)",
            triggers.clone(),
            |secret, t| {
                let key = ObjectKey::of(&secret.metadata);
                let marked = t.index().by_origin.get(&key).cloned();
                if let Some(marked) = marked {
                    t.mark(marked);
                }
            },
        ),
        pump(
            mirrors_writer,
            watcher(
                Api::<SecretMeta>::all(client.clone()),
                cfg.clone().labels(&format!("{MIRROR_LABEL}=true")),
            )
            .default_backoff()
            .modify(strip_mirror),
            "mirror Secret (metadata)",
            triggers.clone(),
            |secret, t| t.mark(set_of_mirror(&secret.metadata)),
        ),
        pump(
            config_map_origins_writer,
            watcher(
                Api::<ConfigMapMeta>::all(client.clone()),
                cfg.clone().labels(&format!("{MIRROR_LABEL}!=true")),
            )
            .default_backoff()
            .modify(strip_origin),
            "ConfigMap (metadata)",
            triggers.clone(),
            |config_map, t| {
                let key = ObjectKey::of(&config_map.metadata);
                let marked = t.index().by_config_map.get(&key).cloned();
                if let Some(marked) = marked {
                    t.mark(marked);
                }
            },
        ),
        pump(
            config_map_mirrors_writer,
            watcher(
                Api::<ConfigMapMeta>::all(client.clone()),
                cfg.labels(&format!("{MIRROR_LABEL}=true")),
            )
            .default_backoff()
            .modify(strip_mirror),
            "mirror ConfigMap (metadata)",
            triggers.clone(),
            |config_map, t| t.mark(set_of_mirror(&config_map.metadata)),
        ),
    ]);

    // A pass on half-synced watches would delete mirrors whose references it has not seen yet.
    for (what, ready) in [
        ("IngressControllerSets", sets.wait_until_ready().await),
        ("IngressClasses", classes.wait_until_ready().await),
        ("Ingresses", ingresses.wait_until_ready().await),
        ("Secrets", origins.wait_until_ready().await),
        ("mirror Secrets", mirrors.wait_until_ready().await),
        ("ConfigMaps", config_map_origins.wait_until_ready().await),
        (
            "mirror ConfigMaps",
            config_map_mirrors.wait_until_ready().await,
        ),
    ] {
        if ready.is_err() {
            tracing::error!(watch = what, "mirroring stopped: its watch ended");
            return;
        }
    }
    tracing::info!("mirroring Secrets and ConfigMaps for the sets' fleets");

    let mut worker = Worker {
        client,
        recorder,
        metrics,
        sets,
        classes,
        ingresses,
        origins,
        mirrors,
        config_map_origins,
        config_map_mirrors,
        triggers: triggers.clone(),
        state: HashMap::new(),
    };
    triggers.mark_all();
    let mut next_resync = Instant::now() + RESYNC;
    let mut retry: BTreeSet<ObjectKey> = BTreeSet::new();
    let mut retry_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = triggers.notify.notified() => {}
            _ = tokio::time::sleep_until(next_resync) => {
                next_resync = Instant::now() + RESYNC;
                triggers.mark_all();
            }
            _ = tokio::time::sleep_until(retry_at.unwrap_or(next_resync)), if retry_at.is_some() => {
                retry_at = None;
                triggers.mark(std::mem::take(&mut retry));
            }
        }
        tokio::time::sleep(COALESCE).await;
        let dirty = triggers.take();
        let keys: BTreeSet<ObjectKey> = if dirty.all {
            worker
                .sets
                .state()
                .iter()
                .map(|s| set_key(s))
                .chain(worker.state.keys().cloned())
                .collect()
        } else {
            dirty.sets
        };
        for key in keys {
            let errors = worker.pass(&key).await;
            if !errors.is_empty() {
                for e in &errors {
                    tracing::warn!(set = %key, error = %e, "mirroring failed; retrying");
                }
                retry.insert(key);
                retry_at.get_or_insert_with(|| Instant::now() + RETRY);
            }
        }
    }
}

/// What the worker remembers about one set between passes.
#[derive(Debug, Default)]
struct SetState {
    origins: BTreeSet<ObjectKey>,
    config_maps: BTreeSet<ObjectKey>,
    ingresses: BTreeSet<ObjectKey>,
    /// Mirror name -> resourceVersion when last written or compared in full.
    verified: HashMap<String, String>,
    /// The same for the mirror ConfigMaps (a mirror Secret and ConfigMap may share a name).
    verified_config_maps: HashMap<String, String>,
    /// Problems already reported as Events: (problem, the Ingress's uid). Reported once per
    /// change, not on every pass.
    reported: BTreeSet<(Problem, Option<String>)>,
}

struct Worker {
    client: kube::Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    sets: Store<IngressControllerSet>,
    classes: Store<IngressClass>,
    ingresses: Store<Ingress>,
    origins: Store<SecretMeta>,
    mirrors: Store<SecretMeta>,
    config_map_origins: Store<ConfigMapMeta>,
    config_map_mirrors: Store<ConfigMapMeta>,
    triggers: Arc<Triggers>,
    state: HashMap<ObjectKey, SetState>,
}

/// What the metadata watches say about an origin of kind `K`.
fn origin_in<K: Mirrored>(
    origins: &Store<PartialObjectMeta<K>>,
    mirrors: &Store<PartialObjectMeta<K>>,
    key: &ObjectKey,
) -> Origin {
    let r = ObjectRef::new(&key.name).within(&key.namespace);
    if mirrors.get(&r).is_some() {
        return Origin::IsMirror;
    }
    match origins.get(&r) {
        None => Origin::Missing,
        Some(meta) => Origin::Present {
            resource_version: meta.metadata.resource_version.clone().unwrap_or_default(),
        },
    }
}

/// Referenced origins of one kind that were not mirrored, for Events.
#[derive(Debug, Default)]
struct Unmirrored {
    /// They do not exist.
    missing: Vec<ObjectKey>,
    /// They are mirrors themselves.
    refused: Vec<ObjectKey>,
}

impl Worker {
    /// One pass for one set; returns what failed (the rest was done).
    async fn pass(&mut self, key: &ObjectKey) -> Vec<MirrorError> {
        let Some(set) = self
            .sets
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
        else {
            // Gone: garbage collection removes its mirrors through their owner reference.
            let old = self.state.remove(key).unwrap_or_default();
            self.forget(key, &old);
            return Vec::new();
        };
        let class = self
            .classes
            .get(&ObjectRef::new(&set.spec.ingress_class_name));
        let scope = plan::scope_of(
            &set,
            self.sets.state().iter().map(|s| &**s),
            class.as_deref(),
        );
        let refs = match &scope {
            Some(scope) => refs::references(scope, self.ingresses.state().iter().map(|i| &**i)),
            None => References::default(),
        };
        let mut state = self.state.remove(key).unwrap_or_default();
        let mut errors = Vec::new();
        let secrets = self
            .sync(
                &set,
                key,
                &refs.secrets,
                &self.origins,
                &self.mirrors,
                &mut state.verified,
                &mut errors,
            )
            .await;
        let config_maps = self
            .sync(
                &set,
                key,
                &refs.config_maps,
                &self.config_map_origins,
                &self.config_map_mirrors,
                &mut state.verified_config_maps,
                &mut errors,
            )
            .await;

        let problems = problems(&refs, &secrets, &config_maps);
        self.report(&set, problems, &mut state).await;

        let origins: BTreeSet<ObjectKey> = refs.secrets.keys().cloned().collect();
        let config_maps: BTreeSet<ObjectKey> = refs.config_maps.keys().cloned().collect();
        {
            let mut index = self.triggers.index();
            reindex(&mut index.by_origin, key, &state.origins, &origins);
            reindex(
                &mut index.by_config_map,
                key,
                &state.config_maps,
                &config_maps,
            );
            reindex(
                &mut index.by_ingress,
                key,
                &state.ingresses,
                &refs.ingresses,
            );
        }
        state.origins = origins;
        state.config_maps = config_maps;
        state.ingresses = refs.ingresses;
        self.state.insert(key.clone(), state);
        errors
    }

    fn forget(&self, set: &ObjectKey, old: &SetState) {
        let none = BTreeSet::new();
        let mut index = self.triggers.index();
        reindex(&mut index.by_origin, set, &old.origins, &none);
        reindex(&mut index.by_config_map, set, &old.config_maps, &none);
        reindex(&mut index.by_ingress, set, &old.ingresses, &none);
    }

    /// Copies and deletes the mirrors of one kind for `set` as the plan says; returns the
    /// referenced origins that could not be mirrored. Failures go to `errors`.
    #[allow(clippy::too_many_arguments)] // one kind's watches and state, borrowed apart
    async fn sync<K: Mirrored>(
        &self,
        set: &IngressControllerSet,
        key: &ObjectKey,
        referenced: &BTreeMap<ObjectKey, Vec<Reference>>,
        origins: &Store<PartialObjectMeta<K>>,
        mirrors: &Store<PartialObjectMeta<K>>,
        verified: &mut HashMap<String, String>,
        errors: &mut Vec<MirrorError>,
    ) -> Unmirrored {
        let mine = mirrors.state_filter(|m| is_mirror_of(&m.metadata, set));
        let metas: Vec<&ObjectMeta> = mine.iter().map(|m| &m.metadata).collect();
        let plan = plan::plan(
            set,
            referenced.keys(),
            |k| origin_in(origins, mirrors, k),
            &metas,
            verified,
        );
        let mut missing = plan.missing.clone();
        let api: Api<K> = Api::namespaced(self.client.clone(), &key.namespace);
        for origin in &plan.copy {
            let origin_api: Api<K> = Api::namespaced(self.client.clone(), &origin.namespace);
            match origin_api.get_opt(&origin.name).await {
                Err(source) => errors.push(MirrorError::ReadOrigin {
                    kind: K::KIND,
                    origin: origin.clone(),
                    source,
                }),
                // Deleted since the watch saw it; the watch will say so too.
                Ok(None) => missing.push(origin.clone()),
                Ok(Some(object)) => {
                    if let Err(e) = self.write(set, &api, origin, &object, verified).await {
                        errors.push(e);
                    }
                }
            }
        }
        for name in &plan.delete {
            let uid = metas
                .iter()
                .find(|m| m.name.as_deref() == Some(name.as_str()))
                .and_then(|m| m.uid.clone());
            let params = DeleteParams {
                // Never an object recreated under the same name since the watch saw ours.
                preconditions: Some(Preconditions {
                    uid,
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(name, &params).await {
                Ok(_) => {
                    tracing::info!(set = %key, mirror = %name, kind = K::KIND_NAME, "deleted mirror nobody references");
                    self.count_write(key);
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => errors.push(MirrorError::Delete {
                    kind: K::KIND,
                    mirror: ObjectKey::new(&key.namespace, name),
                    source,
                }),
            }
            verified.remove(name);
        }
        verified.retain(|name, _| metas.iter().any(|m| m.name.as_deref() == Some(name)));
        Unmirrored {
            missing,
            refused: plan.refused,
        }
    }

    fn count_write(&self, set: &ObjectKey) {
        self.metrics
            .writes
            .get_or_create(&SetLabels {
                namespace: set.namespace.clone(),
                set: set.name.clone(),
            })
            .inc();
    }

    /// Writes the mirror of `origin` (server-side apply, skipped when it already matches).
    async fn write<K: Mirrored>(
        &self,
        set: &IngressControllerSet,
        api: &Api<K>,
        key: &ObjectKey,
        origin: &K,
        verified: &mut HashMap<String, String>,
    ) -> Result<(), MirrorError> {
        if origin
            .labels()
            .get(MIRROR_LABEL)
            .is_some_and(|v| v == "true")
        {
            // Labelled a mirror since the watch saw it; the mirror watch will wake us.
            return Ok(());
        }
        let desired = K::desired(set, origin);
        let name = desired.name_any();
        let set_key = set_key(set);
        let err = |source| MirrorError::Write {
            kind: K::KIND,
            origin: key.clone(),
            mirror: ObjectKey::new(&set_key.namespace, &name),
            source,
        };
        let mut result = ensure_with(api, set, K::KIND_NAME, &desired, DesiredHash::Omit).await;
        if let Err(crate::error::Error::Kube(kube::Error::Api(s))) = &result
            && s.code == 422
        {
            // A Secret's type is immutable: the origin was recreated with another type.
            tracing::info!(set = %set_key, mirror = %name, kind = K::KIND_NAME, "recreating mirror: {}", s.message);
            api.delete(&name, &DeleteParams::default())
                .await
                .map_err(|e| err(e.into()))?;
            result = ensure_with(api, set, K::KIND_NAME, &desired, DesiredHash::Omit).await;
        }
        match result.map_err(err)? {
            Ok((outcome, live)) => {
                if let Some(rv) = live.resource_version() {
                    verified.insert(name.clone(), rv);
                }
                if outcome != Outcome::Unchanged {
                    self.count_write(&set_key);
                    tracing::info!(
                        set = %set_key,
                        origin = %key,
                        mirror = %name,
                        kind = K::KIND_NAME,
                        origin_version = ?origin.meta().resource_version,
                        ?outcome,
                        "mirrored"
                    );
                }
            }
            Err(foreign) => tracing::warn!(
                set = %set_key,
                origin = %key,
                "{} {}/{} exists without this set's labels; Sluice does not modify objects it does not own, so {key} is not mirrored",
                K::KIND_NAME,
                set_key.namespace,
                foreign.name
            ),
        }
        Ok(())
    }

    /// Publishes a Warning Event on the Ingress for each problem not reported before (for
    /// this Ingress object), and forgets problems that went away so they are reported again
    /// if they come back.
    async fn report(
        &self,
        set: &IngressControllerSet,
        problems: Vec<Problem>,
        state: &mut SetState,
    ) {
        let mut now = BTreeSet::new();
        for problem in problems {
            let ingress = self
                .ingresses
                .get(&ObjectRef::new(&problem.ingress.name).within(&problem.ingress.namespace));
            let uid = ingress.as_ref().and_then(|i| i.metadata.uid.clone());
            let entry = (problem, uid);
            if !state.reported.contains(&entry)
                && let Some(ingress) = &ingress
            {
                let (problem, _) = &entry;
                tracing::warn!(set = %set_key(set), ingress = %problem.ingress, "{}", problem.message);
                let event = KubeEvent {
                    type_: EventType::Warning,
                    reason: problem.reason.into(),
                    note: Some(problem.message.clone()),
                    action: "MirrorSecret".into(),
                    secondary: Some(set.object_ref(&())),
                };
                if let Err(e) = self
                    .recorder
                    .publish(&event, &ingress.object_ref(&()))
                    .await
                {
                    tracing::warn!(error = %e, "publishing an Event failed");
                }
            }
            now.insert(entry);
        }
        state.reported = now;
    }
}

/// The problems of one pass, as Events on the Ingresses that name the Secrets and ConfigMaps.
fn problems(refs: &References, secrets: &Unmirrored, config_maps: &Unmirrored) -> Vec<Problem> {
    let mut out = refs.problems.clone();
    let mut each = |named: &BTreeMap<ObjectKey, Vec<Reference>>,
                    keys: &[ObjectKey],
                    reason: &'static str,
                    what: &dyn Fn(&ObjectKey) -> String| {
        for key in keys {
            for r in named.get(key).into_iter().flatten() {
                out.push(Problem {
                    ingress: r.ingress.clone(),
                    reason,
                    message: format!("{}: {}", r.field, what(key)),
                });
            }
        }
    };
    each(&refs.secrets, &secrets.missing, REASON_NOT_FOUND, &|k| {
        format!("Secret {k} does not exist; the fleet gets no copy of it until it does")
    });
    each(
        &refs.secrets,
        &secrets.refused,
        REASON_MIRROR_REFERENCED,
        &|k| {
            format!(
                "Secret {k} is a copy Sluice made for a fleet; name the original Secret instead"
            )
        },
    );
    each(
        &refs.config_maps,
        &config_maps.missing,
        REASON_CONFIG_MAP_NOT_FOUND,
        &|k| format!("ConfigMap {k} does not exist; the fleet gets no copy of it until it does"),
    );
    each(
        &refs.config_maps,
        &config_maps.refused,
        REASON_MIRROR_CONFIG_MAP_REFERENCED,
        &|k| {
            format!(
                "ConfigMap {k} is a copy Sluice made for a fleet; name the original ConfigMap instead"
            )
        },
    );
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::test_support::set;
    use k8s_openapi::api::networking::v1::IngressSpec;
    use kube::api::PartialObjectMetaExt as _;

    fn key(ns: &str, name: &str) -> ObjectKey {
        ObjectKey::new(ns, name)
    }

    fn ingress(ns: &str, name: &str, class: Option<&str>, legacy: Option<&str>) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                annotations: legacy.map(|c| {
                    BTreeMap::from([(refs::LEGACY_CLASS_ANNOTATION.to_owned(), c.to_owned())])
                }),
                ..ObjectMeta::default()
            },
            spec: Some(IngressSpec {
                ingress_class_name: class.map(Into::into),
                ..IngressSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn index_follows_passes() {
        let mut map = HashMap::new();
        let (a, b) = (key("edge", "a"), key("edge", "b"));
        let s1: BTreeSet<_> = [key("shop", "x"), key("shop", "y")].into();
        let s2: BTreeSet<_> = [key("shop", "y"), key("shop", "z")].into();
        reindex(&mut map, &a, &BTreeSet::new(), &s1);
        reindex(&mut map, &b, &BTreeSet::new(), &s2);
        assert_eq!(map[&key("shop", "y")], [a.clone(), b.clone()].into());
        reindex(&mut map, &a, &s1, &BTreeSet::new());
        assert!(!map.contains_key(&key("shop", "x")));
        assert_eq!(map[&key("shop", "y")], [b.clone()].into());
        assert_eq!(map[&key("shop", "z")], [b].into());
    }

    #[test]
    fn ingress_events_wake_their_sets() {
        let mut public = set("public", "edge");
        public.spec.ingress_class_name = "public".into();
        let mut private = set("private", "edge");
        private.spec.ingress_class_name = "private".into();
        private.spec.watch_ingress_without_class = true;
        let sets = vec![Arc::new(public), Arc::new(private)];
        let mut index = Index::default();
        // shop/moved belonged to public at its last pass.
        index
            .by_ingress
            .insert(key("shop", "moved"), [key("edge", "public")].into());
        let names = |s: BTreeSet<ObjectKey>| s.into_iter().map(|k| k.name).collect::<Vec<_>>();
        let cases = [
            (ingress("shop", "a", Some("public"), None), vec!["public"]),
            (ingress("shop", "b", None, Some("private")), vec!["private"]),
            (ingress("shop", "c", None, None), vec!["private"]),
            (ingress("shop", "d", Some("nobody"), None), vec![]),
            (
                ingress("shop", "moved", Some("private"), None),
                vec!["private", "public"],
            ),
        ];
        for (ing, want) in cases {
            assert_eq!(
                names(sets_for_ingress(&ing, &sets, &index)),
                want,
                "{:?}",
                ing.metadata.name
            );
        }
    }

    #[test]
    fn stripping_keeps_only_what_mirroring_reads() {
        let mut ing = ingress("shop", "web", Some("public"), Some("public"));
        ing.metadata.uid = Some("u".into());
        ing.metadata.labels = Some(BTreeMap::from([("a".into(), "b".into())]));
        let annotations = ing.metadata.annotations.as_mut().unwrap();
        annotations.insert("nginx.ingress.kubernetes.io/auth-secret".into(), "x".into());
        annotations.insert("sluice.dev/proxy-ssl-secret".into(), "y".into());
        annotations.insert(
            "nginx.ingress.kubernetes.io/rewrite-target".into(),
            "/".into(),
        );
        annotations.insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "{}".into(),
        );
        ing.spec.as_mut().unwrap().tls = Some(vec![IngressTLS {
            hosts: Some(vec!["a.test".into()]),
            secret_name: Some("tls".into()),
        }]);
        strip_ingress(&mut ing);
        let kept: Vec<&String> = ing.metadata.annotations.as_ref().unwrap().keys().collect();
        assert_eq!(
            kept,
            [
                "kubernetes.io/ingress.class",
                "nginx.ingress.kubernetes.io/auth-secret",
                "sluice.dev/proxy-ssl-secret"
            ]
        );
        assert_eq!(ing.metadata.labels, None);
        assert_eq!(ing.metadata.uid.as_deref(), Some("u"));
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("public"));
        assert_eq!(spec.tls.unwrap()[0].secret_name.as_deref(), Some("tls"));

        let meta = ObjectMeta {
            name: Some("s".into()),
            namespace: Some("shop".into()),
            resource_version: Some("7".into()),
            labels: Some(BTreeMap::from([(MIRROR_LABEL.into(), "true".into())])),
            annotations: Some(BTreeMap::from([
                (ORIGIN_ANNOTATION.into(), "a/b".into()),
                (
                    "kubectl.kubernetes.io/last-applied-configuration".into(),
                    "{\"data\":{}}".into(),
                ),
            ])),
            ..ObjectMeta::default()
        };
        let mut origin: SecretMeta = meta.clone().into_response_partial();
        strip_origin(&mut origin);
        assert_eq!(origin.metadata.annotations, None);
        assert_eq!(origin.metadata.labels, None);
        assert_eq!(origin.metadata.resource_version.as_deref(), Some("7"));
        let mut mirror: SecretMeta = meta.into_response_partial();
        strip_mirror(&mut mirror);
        assert_eq!(
            mirror.metadata.annotations,
            Some(BTreeMap::from([(ORIGIN_ANNOTATION.into(), "a/b".into())]))
        );
        assert!(mirror.metadata.labels.is_some());
    }

    #[test]
    fn problems_name_each_referencing_field() {
        let mut refs = References::default();
        let gone = key("shop", "gone");
        refs.secrets.insert(
            gone.clone(),
            vec![
                refs::Reference {
                    ingress: key("shop", "a"),
                    field: "spec.tls[0].secretName".into(),
                },
                refs::Reference {
                    ingress: key("shop", "b"),
                    field: "spec.tls[2].secretName".into(),
                },
            ],
        );
        let out = problems(
            &refs,
            &Unmirrored {
                missing: vec![gone],
                refused: Vec::new(),
            },
            &Unmirrored::default(),
        );
        let messages: Vec<String> = out
            .iter()
            .map(|p| format!("{} {} {}", p.ingress, p.reason, p.message))
            .collect();
        assert_eq!(
            messages,
            [
                "shop/a SecretNotFound spec.tls[0].secretName: Secret shop/gone does not exist; the fleet gets no copy of it until it does",
                "shop/b SecretNotFound spec.tls[2].secretName: Secret shop/gone does not exist; the fleet gets no copy of it until it does",
            ]
        );
    }

    #[test]
    fn config_map_problems_and_stripping() {
        let headers = key("shop", "headers");
        let copy = key("edge", "x-m-0000000000000000");
        let mut refs = References::default();
        for (origin, ingress) in [(&headers, "a"), (&copy, "b")] {
            refs.config_maps.insert(
                origin.clone(),
                vec![refs::Reference {
                    ingress: key("shop", ingress),
                    field: "metadata.annotations[sluice.dev/custom-headers]".into(),
                }],
            );
        }
        // A Secret of the same name is another origin: its absence says nothing here.
        refs.secrets.insert(headers.clone(), Vec::new());
        let out = problems(
            &refs,
            &Unmirrored::default(),
            &Unmirrored {
                missing: vec![headers],
                refused: vec![copy],
            },
        );
        let reasons: Vec<(String, &str)> = out
            .iter()
            .map(|p| (p.ingress.to_string(), p.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("shop/a".to_owned(), REASON_CONFIG_MAP_NOT_FOUND),
                ("shop/b".to_owned(), REASON_MIRROR_CONFIG_MAP_REFERENCED),
            ]
        );
        assert!(
            out[0]
                .message
                .contains("ConfigMap shop/headers does not exist")
        );

        let mut ing = ingress("shop", "web", Some("public"), None);
        ing.metadata.annotations = Some(BTreeMap::from([
            (
                "nginx.ingress.kubernetes.io/custom-headers".to_owned(),
                "headers".to_owned(),
            ),
            (
                "nginx.ingress.kubernetes.io/proxy-body-size".to_owned(),
                "1m".to_owned(),
            ),
        ]));
        strip_ingress(&mut ing);
        let kept: Vec<&String> = ing.metadata.annotations.as_ref().unwrap().keys().collect();
        assert_eq!(kept, ["nginx.ingress.kubernetes.io/custom-headers"]);
    }
}
