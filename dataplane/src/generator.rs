//! The config generator: watches the cluster, keeps only the fields translation uses, and
//! publishes a new immutable snapshot (coalescing bursts) for the proxy to read lock-free.
//!
//! The proxy never sees a Kubernetes type: translation ([`crate::translate`]) is the only
//! place they meet the model. When the API server goes away, the watches retry with backoff
//! and the last published snapshot keeps serving.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};
use tokio::sync::Mutex as AsyncMutex;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use sluice_crds::dataplane_config::DataplaneConfig;
use sluice_crds::fleet::{FLEET_CONFIG_MAP_KEY, FleetSettings};
use tokio::sync::{Notify, watch};

use crate::model::{PortRef, ServiceRef, Snapshot};
use crate::shared::Shared;
use crate::status::{StatusBook, StatusEntry};
use crate::translate::{self, ClassScope, ClusterState, ObjectKey, Problem};

/// How long after the last snapshot was built a change waits, so a burst of changes arriving
/// meanwhile goes into one snapshot.
pub const COALESCE: Duration = Duration::from_millis(20);

/// Which objects a fleet serves and reads.
#[derive(Clone, Debug)]
pub struct GeneratorOptions {
    pub class_name: String,
    /// The fleet's ConfigMap (named after the set, in the set's namespace).
    pub config_map: ObjectKey,
    /// The Service whose load-balancer address goes into Ingress status.
    pub publish_service: ObjectKey,
}

/// What the generator learned last, for the status writer and Events.
#[derive(Clone, Debug, Default)]
pub struct Published {
    pub snapshot: Arc<Snapshot>,
    pub problems: Vec<Problem>,
    /// The status of every Ingress of this class, and of others that carry an address (the
    /// status writer removes what it wrote before an Ingress left the class). Kept up to date
    /// by the generator; the same book in every `Published`.
    pub book: Arc<Mutex<StatusBook>>,
    /// The publish Service's load-balancer addresses (ip, hostname).
    pub service_addresses: Vec<LbEntry>,
    pub fleet: FleetSettings,
}

/// An address in `status.loadBalancer.ingress`: (ip, hostname).
pub type LbEntry = (Option<String>, Option<String>);

/// An Ingress's current load-balancer status and the resourceVersion it was read at (the
/// precondition for writing it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveStatus {
    pub resource_version: String,
    pub uid: Option<String>,
    pub entries: Vec<LbEntry>,
}

/// Counters the admin endpoint exposes.
#[derive(Default)]
pub struct GeneratorStats {
    pub swaps: std::sync::atomic::AtomicU64,
    pub last_swap_unix_ms: std::sync::atomic::AtomicU64,
    pub objects: Mutex<BTreeMap<&'static str, usize>>,
}

/// The mirror of the cluster the generator translates, updated by the watch tasks.
#[derive(Default)]
struct Mirror {
    state: ClusterState,
    config_map: Option<ConfigMap>,
    synced: BTreeSet<&'static str>,
    /// Something translation reads changed since the last translation. An Ingress whose
    /// status alone changed (the status writer's own writes, echoed by the watch) leaves it
    /// false: the status publisher needs the new status, translation does not.
    dirty: bool,
    /// The keys changed since the last translation, so it compares only those objects (at 10k
    /// of each kind, comparing them all took longer than translating the change).
    changes: translate::Changes,
    /// The Ingresses changed since the last pass, status echoes included, for the status book
    /// (`None`: every Ingress).
    status_keys: Option<BTreeSet<ObjectKey>>,
}

const KINDS: [&str; 8] = [
    "Ingress",
    "IngressClass",
    "Service",
    "EndpointSlice",
    "ConfigMap",
    // The mirrored TLS Secrets, and the set's default certificate: serving before they are
    // read would hand out the generated certificate for hosts that have their own.
    "Secret",
    "DefaultCertificate",
    // The mirrored ConfigMaps (`custom-headers`): serving before they are read would answer
    // without headers (a Content-Security-Policy, say) the Ingress asks for.
    "MirrorConfigMap",
];

/// Applies one watch event to a keyed map, buffering a relist so it replaces the map whole.
fn apply_event<K: Clone + Ord, V>(
    map: &mut BTreeMap<K, V>,
    pending: &mut Option<BTreeMap<K, V>>,
    event: watcher::Event<V>,
    key: impl Fn(&V) -> Option<K>,
) -> bool {
    apply_event_as(map, pending, event, key, |o| o)
}

/// [`apply_event`], storing each object as `convert` makes it (what translation reads of it).
fn apply_event_as<K: Clone + Ord, V, W>(
    map: &mut BTreeMap<K, W>,
    pending: &mut Option<BTreeMap<K, W>>,
    event: watcher::Event<V>,
    key: impl Fn(&V) -> Option<K>,
    convert: impl Fn(V) -> W,
) -> bool {
    match event {
        watcher::Event::Init => {
            *pending = Some(BTreeMap::new());
            false
        }
        watcher::Event::InitApply(o) => {
            if let (Some(p), Some(k)) = (pending.as_mut(), key(&o)) {
                p.insert(k, convert(o));
            }
            false
        }
        watcher::Event::InitDone => {
            if let Some(p) = pending.take() {
                *map = p;
            }
            true
        }
        watcher::Event::Apply(o) => {
            if let Some(k) = key(&o) {
                map.insert(k, convert(o));
            }
            true
        }
        watcher::Event::Delete(o) => {
            if let Some(k) = key(&o) {
                map.remove(&k);
            }
            true
        }
    }
}

/// True when two versions of an Ingress differ only in status (and resourceVersion): the
/// status writer's own writes come back through the watch, and at 10k Ingresses translating
/// again for each would keep the fleet busy for nothing.
fn same_but_status(old: &Ingress, new: &Ingress) -> bool {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let meta = |m: &ObjectMeta| ObjectMeta {
        resource_version: None,
        ..m.clone()
    };
    old.spec == new.spec && meta(&old.metadata) == meta(&new.metadata)
}

fn ns_key<T: kube::Resource>(o: &T) -> Option<ObjectKey> {
    ObjectKey::from_meta(o.meta())
}

fn name_key<T: kube::Resource>(o: &T) -> Option<String> {
    o.meta().name.clone()
}

/// The map of one kind in the mirror, and the journals where its changed keys are noted (none
/// for kinds the translator compares whole).
type Selected<'a, K, V> = (&'a mut BTreeMap<K, V>, [Option<Journal<'a, K>>; 2]);

/// Keys changed since its reader last took them (`None`: all).
type Journal<'a, K> = &'a mut Option<BTreeSet<K>>;

/// Consumes one kind's watch stream into the mirror; `select` picks the map, `convert` makes
/// what is stored of each object.
#[allow(clippy::too_many_arguments)]
async fn pump<V, W, K>(
    kind: &'static str,
    stream: impl Stream<Item = Result<watcher::Event<V>, watcher::Error>>,
    mirror: Arc<AsyncMutex<Mirror>>,
    notify: Arc<Notify>,
    select: impl for<'a> Fn(&'a mut Mirror) -> Selected<'a, K, W>,
    key: impl Fn(&V) -> Option<K>,
    convert: impl Fn(V) -> W,
    same: impl Fn(&W, &V) -> bool,
) where
    K: Ord + Clone,
{
    let mut pending = None;
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                let init_done = matches!(ev, watcher::Event::InitDone);
                let event_key = match &ev {
                    watcher::Event::Apply(o) | watcher::Event::Delete(o) => key(o),
                    _ => None,
                };
                let changed = {
                    let mut m = mirror.lock().await;
                    let significant = match &ev {
                        watcher::Event::Apply(new) => key(new)
                            .and_then(|k| select(&mut m).0.get(&k).map(|old| !same(old, new)))
                            .unwrap_or(true),
                        _ => true,
                    };
                    let [translation, others] = select(&mut m).1;
                    // The translation's journal skips status-only updates (the status writer's
                    // own writes echoed): compared by resourceVersion, each would be translated
                    // again, all 10k of them at the first real change after the status writes.
                    let journals = [translation.filter(|_| significant), others];
                    for keys in journals.into_iter().flatten() {
                        match &event_key {
                            Some(k) => {
                                if let Some(keys) = keys {
                                    keys.insert(k.clone());
                                }
                            }
                            // A relist replaces the map: compare every object.
                            None if init_done => *keys = None,
                            None => {}
                        }
                    }
                    let changed =
                        apply_event_as(select(&mut m).0, &mut pending, ev, &key, &convert);
                    if init_done {
                        m.synced.insert(kind);
                    }
                    if changed && significant {
                        m.dirty = true;
                    }
                    changed
                };
                if changed {
                    notify.notify_one();
                }
            }
            // The watcher retries with backoff; the last snapshot keeps serving meanwhile.
            Err(e) => tracing::warn!(kind, error = %e, "watch failed; retrying"),
        }
    }
}

fn lb_entries(status: Option<&k8s_openapi::api::networking::v1::IngressStatus>) -> Vec<LbEntry> {
    status
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| {
            list.iter()
                .map(|i| (i.ip.clone(), i.hostname.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the fleet's ConfigMap, falling back to what was known before when it is invalid.
fn read_config_map(
    cm: Option<&ConfigMap>,
    fallback: &FleetSettings,
) -> (Result<DataplaneConfig, String>, FleetSettings) {
    let Some(data) = cm.and_then(|c| c.data.as_ref()) else {
        return (Ok(DataplaneConfig::default()), fallback.clone());
    };
    let config = DataplaneConfig::from_config_map_data(data).map_err(|e| e.to_string());
    let fleet = data
        .get(FLEET_CONFIG_MAP_KEY)
        .map(|j| FleetSettings::from_json(j))
        .transpose()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "fleet settings in the ConfigMap are invalid; keeping the last good ones");
            None
        })
        .unwrap_or_else(|| fallback.clone());
    (config, fleet)
}

fn scope_for(
    opts: &GeneratorOptions,
    fleet: &FleetSettings,
    config: &DataplaneConfig,
) -> ClassScope {
    let mut scope = ClassScope::new(
        opts.class_name.clone(),
        opts.config_map.namespace.to_string(),
        opts.config_map.name.to_string(),
    );
    scope.watch_without_class = fleet.watch_ingress_without_class;
    scope.disable_catch_all = config.disable_catch_all;
    scope.enable_ssl_passthrough = config.enable_ssl_passthrough;
    scope.default_ssl_certificate = config.default_ssl_certificate.clone();
    scope.default_backend = fleet.default_backend.as_ref().and_then(|b| {
        let port = match (&b.port_number, &b.port_name) {
            (Some(n), _) => PortRef::Number(u16::try_from(*n).ok()?),
            (None, Some(name)) => PortRef::Name(name.clone()),
            (None, None) => return None,
        };
        Some(ServiceRef {
            namespace: opts.config_map.namespace.to_string(),
            name: b.service.clone(),
            port,
        })
    });
    scope
}

/// Consumes the watch of this fleet's mirrored Secrets or ConfigMaps (`kind`). Mirrors are kept
/// by their own name and folded into the map `select` picks (`ClusterState::secrets` or
/// `config_maps`) by origin after every change (the first mirror by name wins if two ever
/// claim one origin), so a deleted or re-pointed mirror never leaves a stale entry behind.
/// There are few mirrors and they change rarely; rebuilding is cheap.
async fn pump_mirrors<T>(
    kind: &'static str,
    stream: impl Stream<Item = Result<watcher::Event<T>, watcher::Error>>,
    mirror: Arc<AsyncMutex<Mirror>>,
    notify: Arc<Notify>,
    select: impl Fn(&mut Mirror) -> &mut BTreeMap<ObjectKey, T>,
    journal: impl Fn(&mut translate::Changes) -> &mut Option<BTreeSet<ObjectKey>>,
) where
    T: kube::Resource + Clone,
{
    let mut by_name: BTreeMap<String, T> = BTreeMap::new();
    let mut pending = None;
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                let init_done = matches!(ev, watcher::Event::InitDone);
                if !apply_event(&mut by_name, &mut pending, ev, name_key) {
                    continue;
                }
                let mut by_origin = BTreeMap::new();
                for object in by_name.values() {
                    if let Some(origin) = translate::mirror_origin_of(object.meta()) {
                        by_origin.entry(origin).or_insert_with(|| object.clone());
                    }
                }
                {
                    let mut m = mirror.lock().await;
                    *select(&mut m) = by_origin;
                    // Rebuilt whole (there are few): compare them all.
                    *journal(&mut m.changes) = None;
                    m.dirty = true;
                    if init_done {
                        m.synced.insert(kind);
                    }
                }
                notify.notify_one();
            }
            Err(e) => tracing::warn!(kind, error = %e, "watch failed; retrying"),
        }
    }
}

/// Which default-certificate Secret to watch: `None` until the ConfigMap was read, then the
/// `defaultSslCertificate` name (or none).
type DefaultCertificateName = Option<Option<String>>;

/// Watches the set's `defaultSslCertificate` Secret by name, restarting the watch when the
/// name in the ConfigMap changes. Only that one Secret is read: the data plane never lists
/// its namespace's other Secrets.
async fn pump_default_certificate(
    client: kube::Client,
    namespace: String,
    mut desired: watch::Receiver<DefaultCertificateName>,
    mirror: Arc<AsyncMutex<Mirror>>,
    notify: Arc<Notify>,
) {
    loop {
        let current = desired.borrow_and_update().clone();
        let name = match current {
            Some(name) => name,
            None => {
                if desired.changed().await.is_err() {
                    return;
                }
                continue;
            }
        };
        let Some(name) = name else {
            {
                let mut m = mirror.lock().await;
                m.state.default_certificate = None;
                m.dirty = true;
                m.synced.insert("DefaultCertificate");
            }
            notify.notify_one();
            if desired.changed().await.is_err() {
                return;
            }
            continue;
        };
        let cfg = watcher::Config::default()
            .fields(&format!("metadata.name={name}"))
            .any_semantic();
        let stream = watcher(Api::<Secret>::namespaced(client.clone(), &namespace), cfg)
            .modify(translate::strip_secret)
            .default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut map: BTreeMap<String, Secret> = BTreeMap::new();
        let mut pending = None;
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    Some(Ok(ev)) => {
                        let init_done = matches!(ev, watcher::Event::InitDone);
                        if !apply_event(&mut map, &mut pending, ev, name_key) {
                            continue;
                        }
                        {
                            let mut m = mirror.lock().await;
                            m.state.default_certificate = map.get(&name).cloned();
                            m.dirty = true;
                            if init_done {
                                m.synced.insert("DefaultCertificate");
                            }
                        }
                        notify.notify_one();
                    }
                    Some(Err(e)) => {
                        tracing::warn!(kind = "Secret", secret = %name, error = %e, "watch of the default certificate failed; retrying");
                    }
                    None => return,
                },
                changed = desired.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// The default-certificate name a ConfigMap asks for; `None` when its config is invalid (the
/// caller keeps what it had).
fn default_certificate_name(cm: Option<&ConfigMap>) -> Option<Option<String>> {
    match cm.and_then(|c| c.data.as_ref()) {
        None => Some(None),
        Some(data) => DataplaneConfig::from_config_map_data(data)
            .ok()
            .map(|c| c.default_ssl_certificate),
    }
}

/// Runs the watches and the publisher until the process ends. Every published state is
/// also sent on `published` for the status writer and the Event publisher.
pub async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    opts: GeneratorOptions,
    stats: Arc<GeneratorStats>,
    published: watch::Sender<Arc<Published>>,
) {
    // An async lock: the pumps run on the proxy's worker and must not block it while a
    // translation pass (on the blocking pool) holds the mirror for milliseconds.
    let mirror = Arc::new(AsyncMutex::new(Mirror::default()));
    let notify = Arc::new(Notify::new());
    let cfg = watcher::Config::default().any_semantic();

    let ingresses = watcher(Api::<Ingress>::all(client.clone()), cfg.clone())
        .modify(translate::strip_ingress)
        .default_backoff();
    let classes = watcher(Api::<IngressClass>::all(client.clone()), cfg.clone())
        .modify(translate::strip_ingress_class)
        .default_backoff();
    // Services and EndpointSlices are stored converted (`convert` in their pumps below).
    let services = watcher(Api::<Service>::all(client.clone()), cfg.clone()).default_backoff();
    let slices = watcher(Api::<EndpointSlice>::all(client.clone()), cfg.clone()).default_backoff();
    let cm_cfg = watcher::Config::default()
        .fields(&format!("metadata.name={}", opts.config_map.name))
        .any_semantic();
    let config_maps = watcher(
        Api::<ConfigMap>::namespaced(client.clone(), &opts.config_map.namespace),
        cm_cfg,
    )
    .modify(|c| c.metadata.managed_fields = None)
    .default_backoff();

    let mirrors_cfg = watcher::Config::default()
        .labels(&sluice_crds::mirror::mirror_selector(
            &opts.config_map.name,
            &opts.config_map.namespace,
        ))
        .any_semantic();
    let mirrors = watcher(
        Api::<Secret>::namespaced(client.clone(), &opts.config_map.namespace),
        mirrors_cfg.clone(),
    )
    .modify(translate::strip_secret)
    .default_backoff();
    tokio::spawn(pump_mirrors(
        "Secret",
        mirrors,
        mirror.clone(),
        notify.clone(),
        |m| &mut m.state.secrets,
        |c| &mut c.secrets,
    ));
    // The same selector finds the mirrored ConfigMaps; the set's own ConfigMap has no mirror
    // label.
    let config_map_mirrors = watcher(
        Api::<ConfigMap>::namespaced(client.clone(), &opts.config_map.namespace),
        mirrors_cfg,
    )
    .modify(translate::strip_config_map)
    .default_backoff();
    tokio::spawn(pump_mirrors(
        "MirrorConfigMap",
        config_map_mirrors,
        mirror.clone(),
        notify.clone(),
        |m| &mut m.state.config_maps,
        |c| &mut c.config_maps,
    ));
    let (default_name_tx, default_name_rx) = watch::channel::<DefaultCertificateName>(None);
    tokio::spawn(pump_default_certificate(
        client.clone(),
        opts.config_map.namespace.to_string(),
        default_name_rx,
        mirror.clone(),
        notify.clone(),
    ));

    tokio::spawn(pump(
        "Ingress",
        ingresses,
        mirror.clone(),
        notify.clone(),
        |m| {
            (
                &mut m.state.ingresses,
                [Some(&mut m.changes.ingresses), Some(&mut m.status_keys)],
            )
        },
        ns_key,
        |o| o,
        same_but_status,
    ));
    tokio::spawn(pump(
        "IngressClass",
        classes,
        mirror.clone(),
        notify.clone(),
        // Compared whole by the translator (there are few).
        |m| (&mut m.state.ingress_classes, [None, None]),
        name_key,
        |o| o,
        |_, _| false,
    ));
    tokio::spawn(pump(
        "Service",
        services,
        mirror.clone(),
        notify.clone(),
        |m| (&mut m.state.services, [Some(&mut m.changes.services), None]),
        ns_key,
        translate::ServiceInfo::from,
        |_, _| false,
    ));
    tokio::spawn(pump(
        "EndpointSlice",
        slices,
        mirror.clone(),
        notify.clone(),
        |m| {
            (
                &mut m.state.endpoint_slices,
                [Some(&mut m.changes.endpoint_slices), None],
            )
        },
        ns_key,
        translate::SliceInfo::from,
        |_, _| false,
    ));
    // The ConfigMap is one object; keep it in a one-entry map.
    let cm_map: Arc<Mutex<BTreeMap<String, ConfigMap>>> = Arc::default();
    {
        let (mirror, notify, cm_map) = (mirror.clone(), notify.clone(), cm_map.clone());
        let default_name_tx = default_name_tx;
        tokio::spawn(async move {
            let mut pending = None;
            let mut stream = std::pin::pin!(config_maps);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => {
                        let init_done = matches!(ev, watcher::Event::InitDone);
                        let (config_map, changed) = {
                            let Ok(mut map) = cm_map.lock() else { return };
                            let changed = apply_event(&mut map, &mut pending, ev, name_key);
                            (map.values().next().cloned(), changed)
                        };
                        {
                            let mut m = mirror.lock().await;
                            m.config_map = config_map.clone();
                            m.dirty |= changed;
                            if init_done {
                                m.synced.insert("ConfigMap");
                            }
                        }
                        if changed {
                            let wanted = default_certificate_name(config_map.as_ref());
                            default_name_tx.send_if_modified(|current| match &wanted {
                                Some(name) if current.as_ref() != Some(name) => {
                                    *current = Some(name.clone());
                                    true
                                }
                                // Invalid config before any valid one: no default Secret yet,
                                // so readiness does not wait for one.
                                None if current.is_none() => {
                                    *current = Some(None);
                                    true
                                }
                                _ => false,
                            });
                        }
                        if changed {
                            notify.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(kind = "ConfigMap", error = %e, "watch failed; retrying")
                    }
                }
            }
        });
    }

    let initial_fleet = shared.fleet.load_full();
    let mut last_config_error: Option<String> = None;
    let mut generation = 0u64;
    let mut last_problems: Option<Vec<Problem>> = None;
    // Keeps what it translated: a change translates only the Ingresses it can affect.
    let mut translator = translate::Translator::new();
    let mut last_run: Option<Instant> = None;
    let book: Arc<Mutex<StatusBook>> = Arc::default();
    loop {
        notify.notified().await;
        // Coalesce a burst: a change within COALESCE of the last run waits out the rest of
        // it, absorbing what else arrives, so one snapshot covers the burst. An isolated
        // change (one translates in milliseconds) is published at once.
        if let Some(wait) = last_run.and_then(|t| COALESCE.checked_sub(t.elapsed())) {
            tokio::time::sleep(wait).await;
        }
        let started = Instant::now();
        last_run = Some(started);
        // Translation and the status walk over every Ingress run on the blocking pool: the
        // proxy's worker (its only thread on a current-thread runtime) keeps serving meanwhile.
        let job = {
            let (mirror, shared, opts, stats, book) = (
                mirror.clone(),
                shared.clone(),
                opts.clone(),
                stats.clone(),
                book.clone(),
            );
            let initial_fleet = initial_fleet.clone();
            let first = last_problems.is_none();
            let published_once = generation > 0;
            let mut translator = std::mem::take(&mut translator);
            let mut last_config_error = last_config_error.take();
            off_worker(move || {
                let step = (|| -> Step {
                    let mut m = mirror.blocking_lock();
                    if KINDS.iter().any(|k| !m.synced.contains(k)) {
                        return Step::Skip;
                    }
                    let (config, fleet) = read_config_map(m.config_map.as_ref(), &initial_fleet);
                    let config = match config {
                        Ok(c) => {
                            last_config_error = None;
                            shared.config.store(Arc::new(c.clone()));
                            c
                        }
                        Err(e) => {
                            if last_config_error.as_ref() != Some(&e) {
                                tracing::warn!(error = %e, "ConfigMap is invalid; keeping the last good proxy settings");
                                last_config_error = Some(e);
                            }
                            (**shared.config.load()).clone()
                        }
                    };
                    shared.fleet.store(Arc::new(fleet.clone()));
                    let scope = scope_for(&opts, &fleet, &config);
                    // Only when something translation reads changed (not for status echoes); and off
                    // the worker the proxy runs on, so requests keep flowing while 10k Ingresses
                    // translate.
                    let epoch = translator.epoch();
                    let translated = if m.dirty || first {
                        m.dirty = false;
                        let (snapshot, problems) =
                            translator.translate_changes(&m.state, &scope, &m.changes);
                        m.changes = translate::Changes::none();
                        // Compared here, not on the proxy's thread: a snapshot that differs
                        // from the serving one in a few hosts is compared host by host.
                        let same = published_once
                            && strip_generation_eq(&shared.snapshot.load(), &snapshot);
                        Some(((!same).then_some(snapshot), problems))
                    } else {
                        None
                    };
                    // The status book learns the Ingresses changed since the last pass (every
                    // one after a relist, or when the class or scope changed under them all).
                    let keys = m.status_keys.replace(BTreeSet::new());
                    let entry = |key: &ObjectKey, ingress: &Ingress| StatusEntry {
                        member: translator.is_member(key),
                        live: LiveStatus {
                            resource_version: ingress
                                .metadata
                                .resource_version
                                .clone()
                                .unwrap_or_default(),
                            uid: ingress.metadata.uid.clone(),
                            entries: lb_entries(ingress.status.as_ref()),
                        },
                    };
                    if let Ok(mut book) = book.lock() {
                        match keys {
                            Some(keys) if translator.epoch() == epoch => {
                                for key in &keys {
                                    let ingress = m.state.ingresses.get(key);
                                    book.set(key, ingress.map(|i| entry(key, i)));
                                }
                            }
                            _ => book.replace_all(
                                m.state
                                    .ingresses
                                    .iter()
                                    .map(|(k, i)| (k.clone(), entry(k, i))),
                            ),
                        }
                    }
                    let service_addresses = m
                        .state
                        .services
                        .get(&opts.publish_service)
                        .and_then(|s| s.status.as_ref())
                        .and_then(|s| s.load_balancer.as_ref())
                        .and_then(|lb| lb.ingress.as_ref())
                        .map(|l| {
                            l.iter()
                                .map(|i| (i.ip.clone(), i.hostname.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Ok(mut objects) = stats.objects.lock() {
                        objects.insert("Ingress", m.state.ingresses.len());
                        objects.insert("IngressClass", m.state.ingress_classes.len());
                        objects.insert("Service", m.state.services.len());
                        objects.insert("EndpointSlice", m.state.endpoint_slices.len());
                        objects.insert("Secret", m.state.secrets.len());
                        objects.insert("MirrorConfigMap", m.state.config_maps.len());
                    }
                    Step::Built(Box::new((translated, (service_addresses, fleet))))
                })();
                (translator, last_config_error, step)
            })
        };
        let Some((kept, config_error, step)) = job.await else {
            return;
        };
        translator = kept;
        last_config_error = config_error;
        let (snapshot, extra) = match step {
            Step::Built(built) => *built,
            Step::Skip => continue,
        };
        let current = shared.snapshot.load_full();
        let (snapshot, problems) = match snapshot {
            Some(pair) => pair,
            // Nothing translation reads changed: the same snapshot and problems.
            None => {
                shared.mark_synced();
                let (service_addresses, fleet) = extra;
                let _ = published.send(Arc::new(Published {
                    snapshot: current,
                    problems: last_problems.clone().unwrap_or_default(),
                    book: book.clone(),
                    service_addresses,
                    fleet,
                }));
                continue;
            }
        };
        last_problems = Some(problems.clone());
        let snapshot = match snapshot {
            None => current,
            Some(mut s) => {
                generation += 1;
                s.generation = generation;
                let s = Arc::new(s);
                shared.snapshot.store(s.clone());
                stats
                    .swaps
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                stats.last_swap_unix_ms.store(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tracing::debug!(
                    generation,
                    took_ms = started.elapsed().as_millis() as u64,
                    "snapshot swapped"
                );
                s
            }
        };
        shared.mark_synced();
        let (service_addresses, fleet) = extra;
        let _ = published.send(Arc::new(Published {
            snapshot,
            problems,
            book: book.clone(),
            service_addresses,
            fleet,
        }));
    }
}

/// Snapshots compare equal apart from their generation (compared field by field: cloning a
/// 10k-Ingress snapshot to compare it would cost more than the translation).
fn strip_generation_eq(current: &Snapshot, new: &Snapshot) -> bool {
    current.ingresses == new.ingresses
        && current.exact_hosts == new.exact_hosts
        && current.wildcard_hosts == new.wildcard_hosts
        && current.catch_all == new.catch_all
        && current.default_backend == new.default_backend
        && current.tls == new.tls
        && current.www_redirects == new.www_redirects
}

/// Runs `f` on the blocking pool, so the proxy's tasks keep running while it works (on a
/// one-worker runtime, or a current-thread one, they would otherwise wait for all of it). A
/// panic in `f` is resumed here, as if `f` had run in place; `None` when the runtime is
/// shutting down.
async fn off_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let f = move || {
        crate::sched::yield_to_requests();
        f()
    };
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Some(value),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => None,
    }
}

/// What one pass of the generator loop built under the mirror lock.
enum Step {
    /// The translation (when something it reads changed) and the status inputs.
    Built(Box<(Option<Translated>, StatusInputs)>),
    /// Not every watch has synced yet.
    Skip,
}

/// The translation's snapshot (`None`: the same as the serving one but for its generation) and
/// its problems.
type Translated = (Option<Snapshot>, Vec<Problem>);

/// The publish Service's addresses and the fleet settings.
type StatusInputs = (Vec<LbEntry>, FleetSettings);

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(name: &str, rv: &str, path: &str, status_ip: Option<&str>) -> Ingress {
        let status =
            status_ip.map(|ip| serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}}));
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "ns", "name": name, "resourceVersion": rv},
            "spec": {"rules": [{"host": "a.example", "http": {"paths": [{
                "path": path, "pathType": "Prefix",
                "backend": {"service": {"name": "svc", "port": {"number": 80}}},
            }]}}]},
            "status": status,
        }))
        .expect("a valid Ingress")
    }

    /// The status writer's echoes reach the status book's journal but not the translation's,
    /// and do not make the mirror dirty; a spec change reaches both.
    #[tokio::test]
    async fn status_echoes_are_journaled_for_status_only() {
        let mirror = Arc::new(AsyncMutex::new(Mirror::default()));
        mirror.lock().await.changes = translate::Changes::none();
        let events = vec![
            watcher::Event::Init,
            watcher::Event::InitApply(ingress("a", "1", "/", None)),
            watcher::Event::InitApply(ingress("b", "1", "/", None)),
            watcher::Event::InitDone,
        ];
        fn ingresses(m: &mut Mirror) -> Selected<'_, ObjectKey, Ingress> {
            (
                &mut m.state.ingresses,
                [Some(&mut m.changes.ingresses), Some(&mut m.status_keys)],
            )
        }
        let run = |events: Vec<watcher::Event<Ingress>>| {
            pump(
                "Ingress",
                futures::stream::iter(events.into_iter().map(Ok)),
                mirror.clone(),
                Arc::new(Notify::new()),
                ingresses,
                ns_key,
                |o| o,
                same_but_status,
            )
        };
        run(events).await;
        {
            let mut m = mirror.lock().await;
            assert!(m.dirty, "the first list is a change");
            assert!(
                m.changes.ingresses.is_none() && m.status_keys.is_none(),
                "a relist: all"
            );
            m.dirty = false;
            m.changes = translate::Changes::none();
            m.status_keys = Some(BTreeSet::new());
        }
        run(vec![
            watcher::Event::Apply(ingress("a", "2", "/", Some("192.0.2.1"))),
            watcher::Event::Apply(ingress("b", "2", "/b", None)),
        ])
        .await;
        let m = mirror.lock().await;
        let keys = |k: &Option<BTreeSet<ObjectKey>>| -> Vec<String> {
            k.iter().flatten().map(|k| k.name.to_string()).collect()
        };
        assert!(m.dirty, "b's spec changed");
        assert_eq!(
            keys(&m.changes.ingresses),
            ["b"],
            "a's echo is not translated again"
        );
        assert_eq!(keys(&m.status_keys), ["a", "b"], "the book learns both");
        assert_eq!(
            m.state.ingresses[&ObjectKey::new("ns", "a")]
                .metadata
                .resource_version
                .as_deref(),
            Some("2"),
            "the mirror keeps the echo"
        );
    }

    /// Translation work runs on a blocking thread niced below the proxy's worker, and a panic
    /// in it surfaces as before.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn off_worker_runs_below_the_proxy() {
        let nice = || unsafe {
            // SAFETY: getpriority reads this thread's scheduling priority only.
            libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as _)
        };
        let worker = nice();
        let translation = off_worker(nice).await.expect("runtime is up");
        assert_eq!(
            translation,
            worker + 10,
            "the translation thread is niced by 10"
        );
        assert_eq!(nice(), worker, "the worker keeps its priority");
        let panicked = tokio::spawn(off_worker(|| panic!("translation bug"))).await;
        assert!(panicked.is_err_and(|e| e.is_panic()));
    }
}
