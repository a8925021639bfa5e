//! Translation that, between calls, translates again only what a change can affect.
//!
//! Everything [`super::translate`] decides about a host (which route wins, its default backend,
//! canaries, TLS termination, passthrough) depends only on the Ingresses naming that host, and
//! every problem is about one Ingress. So Ingresses fall into groups that share no host with
//! one another, and a group translated on its own gives exactly what it gives inside the whole
//! (same code, same order: members oldest first). The translator keeps each group's output and
//! what it read (Services, through them EndpointSlices, Secrets, ConfigMaps); a call finds
//! what changed since the last one (by resourceVersion), translates again the groups that
//! contain or read it (merged with any group the new versions now share a host with), and
//! assembles the snapshot from the kept outputs: at 10k Ingresses a change costs one group,
//! not 10k Ingresses.
//!
//! The scope and the IngressClasses decide membership of every Ingress: when either changes,
//! everything is translated again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Resource;

use super::backend::{self, SliceIndex};
use super::compact::{ServiceInfo, SliceInfo};
use super::validate::{RuleHost, rule_host};
use super::{ClassScope, ClusterState, ObjectKey, Part, Problem, age, is_member};
use crate::model::{
    HostMap, HostRoutes, IngressList, IngressRef, RedirectFlags, Snapshot, TlsHost, TlsTable,
};

/// How a member is ordered: oldest first, then by namespace/name (as `translate` sorts).
type Order = ((bool, Option<k8s_openapi::jiff::Timestamp>), IngressRef);

type GroupId = u64;

/// What an object was when last translated: its resourceVersion, or (objects built without
/// one, as in tests) the object itself.
enum Version<T> {
    /// A resourceVersion that is a number in canonical form (the API server's always are, but
    /// they are opaque, so any other is kept as a string): no allocation per object.
    Num(u64),
    Rv(Box<str>),
    Value(Box<T>),
}

/// An object with a resourceVersion (when it came from the API server).
trait Versioned: Clone + PartialEq {
    fn resource_version(&self) -> Option<&str>;
}

macro_rules! versioned_resource {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn resource_version(&self) -> Option<&str> {
                self.meta().resource_version.as_deref()
            }
        }
    )*};
}
versioned_resource!(Ingress, Secret, ConfigMap);

impl Versioned for ServiceInfo {
    fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }
}

impl Versioned for SliceInfo {
    fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }
}

impl<T: Versioned> Version<T> {
    fn of(object: &T) -> Self {
        match object.resource_version() {
            Some(rv) => match canonical_number(rv) {
                Some(n) => Version::Num(n),
                None => Version::Rv(rv.into()),
            },
            None => Version::Value(Box::new(object.clone())),
        }
    }

    fn same(&self, object: &T) -> bool {
        match self {
            Version::Num(n) => object
                .resource_version()
                .is_some_and(|rv| canonical_number(rv) == Some(*n)),
            Version::Rv(rv) => object.resource_version() == Some(&**rv),
            Version::Value(old) => object.resource_version().is_none() && **old == *object,
        }
    }
}

/// `rv` as a number when it is one written the one way `u64`'s `Display` writes it, so equal
/// numbers mean equal strings.
fn canonical_number(rv: &str) -> Option<u64> {
    let canonical = !rv.is_empty()
        && rv.bytes().all(|b| b.is_ascii_digit())
        && (rv == "0" || !rv.starts_with('0'));
    if canonical { rv.parse().ok() } else { None }
}

/// Records in `seen` (sorted by key, as `current` is) the current version of every object and
/// pushes the keys of those added, changed or removed since. Merge walks over both, without
/// hashing or copying keys unless something changed: at 10k objects of each kind this runs on
/// every change.
fn diff<T: Versioned>(
    seen: &mut Vec<(ObjectKey, Version<T>)>,
    current: &BTreeMap<ObjectKey, T>,
    changed: &mut Vec<ObjectKey>,
) {
    let unchanged = seen.len() == current.len()
        && seen
            .iter()
            .zip(current)
            .all(|((k, v), (key, object))| k == key && v.same(object));
    if unchanged {
        return;
    }
    let mut next = Vec::with_capacity(current.len());
    let mut old = std::mem::take(seen).into_iter().peekable();
    for (key, object) in current {
        while let Some((removed, _)) = old.next_if(|(k, _)| k < key) {
            changed.push(removed);
        }
        match old.next_if(|(k, _)| k == key) {
            Some((k, version)) if version.same(object) => next.push((k, version)),
            Some((k, _)) => {
                changed.push(key.clone());
                next.push((k, Version::of(object)));
            }
            None => {
                changed.push(key.clone());
                next.push((key.clone(), Version::of(object)));
            }
        }
    }
    changed.extend(old.map(|(removed, _)| removed));
    *seen = next;
}

/// Keys whose objects may have changed since the last translation, kept by the owner of a
/// [`ClusterState`] that knows them (the generator, from watch events). `None`: unknown, so
/// every object of that kind is compared.
#[derive(Debug, Default)]
pub struct Changes {
    pub ingresses: Option<BTreeSet<ObjectKey>>,
    pub services: Option<BTreeSet<ObjectKey>>,
    pub endpoint_slices: Option<BTreeSet<ObjectKey>>,
    pub secrets: Option<BTreeSet<ObjectKey>>,
    pub config_maps: Option<BTreeSet<ObjectKey>>,
}

impl Changes {
    /// Nothing known to have changed (after a translation).
    pub fn none() -> Self {
        let empty = || Some(BTreeSet::new());
        Changes {
            ingresses: empty(),
            services: empty(),
            endpoint_slices: empty(),
            secrets: empty(),
            config_maps: empty(),
        }
    }

    /// Notes a changed key; nothing to note once the whole kind is unknown.
    pub fn note(keys: &mut Option<BTreeSet<ObjectKey>>, key: &ObjectKey) {
        if let Some(keys) = keys {
            keys.insert(key.clone());
        }
    }
}

/// [`diff`] limited to `keys` when they are known.
fn diff_some<T: Versioned>(
    seen: &mut Vec<(ObjectKey, Version<T>)>,
    current: &BTreeMap<ObjectKey, T>,
    keys: Option<&BTreeSet<ObjectKey>>,
    changed: &mut Vec<ObjectKey>,
) {
    let Some(keys) = keys else {
        return diff(seen, current, changed);
    };
    for key in keys {
        let at = seen.binary_search_by(|(k, _)| k.cmp(key));
        match (at, current.get(key)) {
            (Ok(i), Some(object)) => {
                if !seen[i].1.same(object) {
                    seen[i].1 = Version::of(object);
                    changed.push(key.clone());
                }
            }
            (Ok(i), None) => {
                seen.remove(i);
                changed.push(key.clone());
            }
            (Err(i), Some(object)) => {
                seen.insert(i, (key.clone(), Version::of(object)));
                changed.push(key.clone());
            }
            (Err(_), None) => {}
        }
    }
}

/// Something a group read besides its Ingresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Dep {
    Service(ObjectKey),
    Secret(ObjectKey),
    ConfigMap(ObjectKey),
}

/// Every host an Ingress can claim or contend for: rule hosts, TLS hosts, and the catch-all for
/// a rule-less Ingress (its defaultBackend contends for the catch-all's). Invalid hosts are
/// claimed by nobody.
fn touched_hosts(ingress: &Ingress) -> Vec<RuleHost> {
    let Some(spec) = &ingress.spec else {
        return Vec::new();
    };
    let rules = spec.rules.as_deref().unwrap_or_default();
    let mut hosts: Vec<RuleHost> = rules
        .iter()
        .filter_map(|rule| rule_host(rule.host.as_deref()).ok())
        .collect();
    if rules.is_empty() {
        hosts.push(RuleHost::CatchAll);
    }
    let tls_hosts = spec
        .tls
        .iter()
        .flatten()
        .flat_map(|t| t.hosts.iter().flatten());
    hosts.extend(tls_hosts.filter_map(|host| rule_host(Some(host)).ok()));
    hosts.sort();
    hosts.dedup();
    hosts
}

/// One group's members and where its output went, as built and as taken apart; kept as a
/// [`Group`].
#[derive(Default)]
struct GroupParts {
    members: Vec<ObjectKey>,
    hosts: Vec<RuleHost>,
    deps: Vec<Dep>,
    exact: Vec<Arc<str>>,
    wildcard: Vec<Arc<str>>,
    catch_all: bool,
    tls_exact: Vec<String>,
    tls_wildcard: Vec<String>,
    redirects: Vec<IngressRef>,
    /// Members with `from-to-www-redirect` aliases.
    aliases: Vec<Order>,
    problems: Vec<IngressRef>,
    secrets_used: Vec<ObjectKey>,
    certificates_used: Vec<ObjectKey>,
}

/// A [`GroupParts`] as kept: at 10k groups of one Ingress each, thirteen vectors (each
/// allocated with room for four) per group were megabytes. The lists every group has are
/// exact-size; the rest, which most groups leave empty, are boxed behind one pointer.
struct Group {
    members: Box<[ObjectKey]>,
    hosts: Box<[RuleHost]>,
    deps: Box<[Dep]>,
    exact: Box<[Arc<str>]>,
    rest: Option<Box<GroupParts>>,
}

impl From<GroupParts> for Group {
    fn from(mut parts: GroupParts) -> Self {
        let members = std::mem::take(&mut parts.members).into_boxed_slice();
        let hosts = std::mem::take(&mut parts.hosts).into_boxed_slice();
        let deps = std::mem::take(&mut parts.deps).into_boxed_slice();
        let exact = std::mem::take(&mut parts.exact).into_boxed_slice();
        let empty = parts.wildcard.is_empty()
            && !parts.catch_all
            && parts.tls_exact.is_empty()
            && parts.tls_wildcard.is_empty()
            && parts.redirects.is_empty()
            && parts.aliases.is_empty()
            && parts.problems.is_empty()
            && parts.secrets_used.is_empty()
            && parts.certificates_used.is_empty();
        Group {
            members,
            hosts,
            deps,
            exact,
            rest: (!empty).then(|| Box::new(parts)),
        }
    }
}

impl From<Group> for GroupParts {
    fn from(group: Group) -> Self {
        GroupParts {
            members: group.members.into_vec(),
            hosts: group.hosts.into_vec(),
            deps: group.deps.into_vec(),
            exact: group.exact.into_vec(),
            ..group.rest.map(|rest| *rest).unwrap_or_default()
        }
    }
}

/// Keeps what was translated, to translate only what changed; see the module documentation.
/// Gives exactly what [`super::translate`] gives for the same state and scope.
#[derive(Default)]
pub struct Translator {
    /// Counts the times everything was translated anew (a new scope or IngressClasses), when
    /// any Ingress may have joined or left the class.
    epoch: u64,
    scope: Option<ClassScope>,
    classes: BTreeMap<String, IngressClass>,
    /// The version of every object last translated, sorted by key.
    ingresses: Vec<(ObjectKey, Version<Ingress>)>,
    services: Vec<(ObjectKey, Version<ServiceInfo>)>,
    slices: Vec<(ObjectKey, Version<SliceInfo>)>,
    secrets: Vec<(ObjectKey, Version<Secret>)>,
    config_maps: Vec<(ObjectKey, Version<ConfigMap>)>,
    /// The Service of each slice, as indexed.
    slice_owner: HashMap<ObjectKey, ObjectKey>,
    slice_index: SliceIndex,

    /// Each member Ingress of the class, and its group.
    members: BTreeMap<ObjectKey, GroupId>,
    /// The members as [`Snapshot::ingresses`] lists them, shared between snapshots while no
    /// Ingress joins or leaves.
    member_list: IngressList,
    groups: HashMap<GroupId, Group>,
    next_group: GroupId,
    host_group: HashMap<RuleHost, GroupId>,
    dep_groups: HashMap<Dep, HashSet<GroupId>>,

    exact: HostMap,
    wildcard: HostMap,
    catch_all: Option<Arc<HostRoutes>>,
    tls_exact: HashMap<String, TlsHost>,
    tls_wildcard: HashMap<String, TlsHost>,
    redirects: BTreeMap<IngressRef, RedirectFlags>,
    aliases: BTreeMap<Order, Vec<(String, String)>>,
    /// Each Ingress's problems, grouped and in order.
    problems: BTreeMap<IngressRef, Vec<Problem>>,
    /// How many groups read each Secret, to keep only those in the parse caches.
    secrets_used: HashMap<ObjectKey, usize>,
    certificates_used: HashMap<ObjectKey, usize>,
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator")
            .field("members", &self.members.len())
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

fn count(counts: &mut HashMap<ObjectKey, usize>, key: &ObjectKey, up: bool) {
    if up {
        *counts.entry(key.clone()).or_default() += 1;
    } else if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl Translator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Translates `state` as [`super::translate`] does, reusing what the last call translated
    /// wherever nothing it depends on changed.
    pub fn translate(
        &mut self,
        state: &ClusterState,
        scope: &ClassScope,
    ) -> (Snapshot, Vec<Problem>) {
        self.translate_changes(state, scope, &Changes::default())
    }

    /// Whether the last translation found this Ingress to be of the class (its routes
    /// rejected or not): the Ingresses in [`Snapshot::ingresses`].
    pub fn is_member(&self, key: &ObjectKey) -> bool {
        self.members.contains_key(key)
    }

    /// Changes whenever membership may have changed for Ingresses that did not change
    /// themselves; otherwise only a changed Ingress can join or leave the class.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// [`Translator::translate`], comparing only the objects `changes` names (every object of a
    /// kind it does not know) with what was translated last.
    pub fn translate_changes(
        &mut self,
        state: &ClusterState,
        scope: &ClassScope,
        changes: &Changes,
    ) -> (Snapshot, Vec<Problem>) {
        let mut changes = changes;
        let everything = Changes::default();
        if self.scope.as_ref() != Some(scope) || self.classes != state.ingress_classes {
            *self = Translator {
                epoch: self.epoch + 1,
                scope: Some(scope.clone()),
                classes: state.ingress_classes.clone(),
                ..Translator::default()
            };
            changes = &everything;
        }
        let mut work = self.changes(state, changes);
        self.regroup(state, scope, &mut work);
        // Only an Ingress translated again can have joined or left.
        for key in &work {
            let listed = IngressRef::from(key);
            if self.is_member(key) {
                if !self.member_list.contains(&listed) {
                    self.member_list.insert(listed);
                }
            } else if self.member_list.contains(&listed) {
                self.member_list.remove(&listed);
            }
        }
        self.assemble(state, scope)
    }

    /// Finds what changed since the last call: the Ingresses, and the groups to translate again
    /// because they read a changed object (their members go into the returned set).
    fn changes(&mut self, state: &ClusterState, hints: &Changes) -> HashSet<ObjectKey> {
        let mut ingresses = Vec::new();
        let (ingress_keys, slice_keys) = (hints.ingresses.as_ref(), hints.endpoint_slices.as_ref());
        diff_some(
            &mut self.ingresses,
            &state.ingresses,
            ingress_keys,
            &mut ingresses,
        );
        let mut deps = Vec::new();
        let mut changed = Vec::new();
        let service_keys = hints.services.as_ref();
        diff_some(
            &mut self.services,
            &state.services,
            service_keys,
            &mut changed,
        );
        deps.extend(changed.drain(..).map(Dep::Service));
        diff_some(
            &mut self.slices,
            &state.endpoint_slices,
            slice_keys,
            &mut changed,
        );
        for key in changed.drain(..) {
            if let Some(old) = self.slice_owner.remove(&key) {
                if let Some(slices) = self.slice_index.get_mut(&old) {
                    if let Ok(at) = slices.binary_search(&key) {
                        slices.remove(at);
                    }
                    if slices.is_empty() {
                        self.slice_index.remove(&old);
                    }
                }
                deps.push(Dep::Service(old));
            }
            let service = state
                .endpoint_slices
                .get(&key)
                .and_then(|slice| backend::slice_service(&key, slice));
            if let Some(service) = service {
                let slices = self.slice_index.entry(service.clone()).or_default();
                if let Err(at) = slices.binary_search(&key) {
                    slices.insert(at, key.clone());
                }
                self.slice_owner.insert(key, service.clone());
                deps.push(Dep::Service(service));
            }
        }
        let secret_keys = hints.secrets.as_ref();
        diff_some(&mut self.secrets, &state.secrets, secret_keys, &mut changed);
        deps.extend(changed.drain(..).map(Dep::Secret));
        let config_map_keys = hints.config_maps.as_ref();
        diff_some(
            &mut self.config_maps,
            &state.config_maps,
            config_map_keys,
            &mut changed,
        );
        deps.extend(changed.drain(..).map(Dep::ConfigMap));

        let mut dirty: HashSet<GroupId> = HashSet::new();
        for dep in &deps {
            if let Some(groups) = self.dep_groups.get(dep) {
                dirty.extend(groups);
            }
        }
        let mut work: HashSet<ObjectKey> = HashSet::new();
        for key in ingresses {
            if let Some(&group) = self.members.get(&key) {
                dirty.insert(group);
            }
            work.insert(key);
        }
        for id in dirty {
            self.remove_group(id, &mut work);
        }
        work
    }

    /// Takes a group's output out of the assembled state; its members go into `work`.
    fn remove_group(&mut self, id: GroupId, work: &mut HashSet<ObjectKey>) {
        let Some(group) = self.groups.remove(&id) else {
            return;
        };
        let group = GroupParts::from(group);
        for host in &group.hosts {
            if self.host_group.get(host) == Some(&id) {
                self.host_group.remove(host);
            }
        }
        for dep in &group.deps {
            if let Some(groups) = self.dep_groups.get_mut(dep) {
                groups.remove(&id);
                if groups.is_empty() {
                    self.dep_groups.remove(dep);
                }
            }
        }
        for host in &group.exact {
            self.exact.remove_shared(host);
        }
        for host in &group.wildcard {
            self.wildcard.remove_shared(host);
        }
        if group.catch_all {
            self.catch_all = None;
        }
        for host in &group.tls_exact {
            self.tls_exact.remove(host);
        }
        for host in &group.tls_wildcard {
            self.tls_wildcard.remove(host);
        }
        for ingress in &group.redirects {
            self.redirects.remove(ingress);
        }
        for order in &group.aliases {
            self.aliases.remove(order);
        }
        for ingress in &group.problems {
            self.problems.remove(ingress);
        }
        for key in &group.secrets_used {
            count(&mut self.secrets_used, key, false);
        }
        for key in &group.certificates_used {
            count(&mut self.certificates_used, key, false);
        }
        for key in group.members {
            self.members.remove(&key);
            work.insert(key);
        }
    }

    /// Translates the Ingresses in `work` again, with every group they now share a host with,
    /// in new groups.
    fn regroup(&mut self, state: &ClusterState, scope: &ClassScope, work: &mut HashSet<ObjectKey>) {
        // The members among `work`, with their hosts; a kept group that shares a host joins.
        let mut entries: Vec<(Order, &Ingress, Vec<RuleHost>)> = Vec::new();
        let mut pending: Vec<ObjectKey> = work.iter().cloned().collect();
        while !pending.is_empty() {
            let mut joined = Vec::new();
            for key in pending.drain(..) {
                let Some(ingress) = state.ingresses.get(&key) else {
                    continue;
                };
                if !is_member(ingress, &state.ingress_classes, scope) {
                    continue;
                }
                let hosts = touched_hosts(ingress);
                for host in &hosts {
                    if let Some(&id) = self.host_group.get(host) {
                        joined.push(id);
                    }
                }
                entries.push(((age(ingress), IngressRef::from(&key)), ingress, hosts));
            }
            for id in joined {
                let before = work.len();
                let mut added = HashSet::new();
                self.remove_group(id, &mut added);
                for key in added {
                    if work.insert(key.clone()) {
                        pending.push(key);
                    }
                }
                debug_assert!(work.len() >= before);
            }
        }

        // Connected by shared hosts: a union-find over the entries.
        let mut parent: Vec<usize> = (0..entries.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        let mut owner: HashMap<&RuleHost, usize> = HashMap::new();
        for (i, (_, _, hosts)) in entries.iter().enumerate() {
            for host in hosts {
                match owner.get(host) {
                    Some(&j) => {
                        let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                        parent[a] = b;
                    }
                    None => {
                        owner.insert(host, i);
                    }
                }
            }
        }
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..entries.len() {
            groups.entry(root(&mut parent, i)).or_default().push(i);
        }
        let index = std::mem::take(&mut self.slice_index);
        for (_, mut indices) in groups {
            indices.sort_by(|&a, &b| entries[a].0.cmp(&entries[b].0));
            let members: Vec<(IngressRef, &Ingress)> = indices
                .iter()
                .map(|&i| (entries[i].0.1.clone(), entries[i].1))
                .collect();
            let part = super::translate_group(state, scope, &index, &members);
            let mut hosts: Vec<RuleHost> = indices
                .iter()
                .flat_map(|&i| entries[i].2.iter().cloned())
                .collect();
            hosts.sort();
            hosts.dedup();
            let orders: Vec<Order> = indices.iter().map(|&i| entries[i].0.clone()).collect();
            self.add_group(part, orders, hosts);
        }
        self.slice_index = index;
    }

    fn add_group(&mut self, mut part: Part, orders: Vec<Order>, hosts: Vec<RuleHost>) {
        let id = self.next_group;
        self.next_group += 1;
        let mut group = GroupParts::default();
        for host in &hosts {
            self.host_group.insert(host.clone(), id);
        }
        group.hosts = hosts;
        for (host, routes) in part.exact.drain(..) {
            self.exact.insert_shared(host.clone(), routes);
            group.exact.push(host);
        }
        for (host, routes) in part.wildcard.drain(..) {
            self.wildcard.insert_shared(host.clone(), routes);
            group.wildcard.push(host);
        }
        if let Some(routes) = part.catch_all.take() {
            self.catch_all = Some(routes);
            group.catch_all = true;
        }
        for (host, tls) in part.tls_exact.drain(..) {
            group.tls_exact.push(host.clone());
            self.tls_exact.insert(host, tls);
        }
        for (host, tls) in part.tls_wildcard.drain(..) {
            group.tls_wildcard.push(host.clone());
            self.tls_wildcard.insert(host, tls);
        }
        for (ingress, flags) in std::mem::take(&mut part.redirects) {
            group.redirects.push(ingress.clone());
            self.redirects.insert(ingress, flags);
        }
        for (member, alias, canonical) in part.www_aliases.drain(..) {
            let Some(order) = orders.get(member) else {
                continue;
            };
            if !group.aliases.contains(order) {
                group.aliases.push(order.clone());
            }
            self.aliases
                .entry(order.clone())
                .or_default()
                .push((alias, canonical));
        }
        // Grouped by object as `translate` groups them (a stable sort), without repeats.
        let mut problems = std::mem::take(&mut part.problems);
        problems.sort_by(|a, b| a.object.cmp(&b.object));
        let mut seen = HashSet::new();
        problems.retain(|problem| seen.insert(problem.clone()));
        for problem in problems {
            // Only the set's own problems are about no Ingress, and groups make none.
            let Some(ingress) = problem.ingress().cloned() else {
                continue;
            };
            let list = self.problems.entry(ingress.clone()).or_default();
            if list.is_empty() {
                group.problems.push(ingress);
            }
            list.push(problem);
        }
        for key in &part.secrets_used {
            count(&mut self.secrets_used, key, true);
        }
        for key in &part.certificates_used {
            count(&mut self.certificates_used, key, true);
        }
        group.secrets_used = part.secrets_used.drain().collect();
        group.certificates_used = part.certificates_used.drain().collect();
        let deps = part
            .services_read
            .drain(..)
            .map(Dep::Service)
            .chain(group.secrets_used.iter().cloned().map(Dep::Secret))
            .chain(group.certificates_used.iter().cloned().map(Dep::Secret))
            .chain(part.config_maps_read.drain().map(Dep::ConfigMap));
        for dep in deps {
            let groups = self.dep_groups.entry(dep.clone()).or_default();
            if groups.insert(id) {
                group.deps.push(dep);
            }
        }
        for order in orders {
            let key = ObjectKey::new(&order.1.namespace, &order.1.name);
            group.members.push(key.clone());
            self.members.insert(key, id);
        }
        self.groups.insert(id, Group::from(group));
    }

    /// The snapshot from the kept outputs, with what depends on no Ingress.
    fn assemble(&self, state: &ClusterState, scope: &ClassScope) -> (Snapshot, Vec<Problem>) {
        let mut snapshot = Snapshot {
            generation: 0,
            ingresses: self.member_list.clone(),
            exact_hosts: self.exact.clone(),
            wildcard_hosts: self.wildcard.clone(),
            catch_all: self.catch_all.as_deref().cloned(),
            default_backend: None,
            tls: TlsTable {
                exact: self.tls_exact.clone(),
                wildcard: self.tls_wildcard.clone(),
                default_certificate: None,
                redirects: self.redirects.clone(),
            },
            www_redirects: HashMap::new(),
        };
        let aliases = self
            .aliases
            .values()
            .flatten()
            .map(|(alias, canonical)| (alias, canonical));
        snapshot.www_redirects = super::www_redirects(aliases, &snapshot.exact_hosts);
        let mut problems: Vec<Problem> = self.problems.values().flatten().cloned().collect();
        let mut certificates_used: HashSet<ObjectKey> =
            self.certificates_used.keys().cloned().collect();
        super::finish_global(
            state,
            scope,
            &self.slice_index,
            &mut snapshot,
            &mut problems,
            &mut certificates_used,
        );
        let secrets_used: HashSet<ObjectKey> = self.secrets_used.keys().cloned().collect();
        state.credentials.retain(&secrets_used);
        state.certificates.retain(&certificates_used);
        (snapshot, problems)
    }
}
