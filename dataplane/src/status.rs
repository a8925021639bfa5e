//! Publishes the fleet's load-balancer address into `status.loadBalancer` of the Ingresses it
//! serves, so external-dns and Argo CD's Ingress health check work.
//!
//! Rules (design.md): only the Lease holder writes; deterministic order; no write when nothing
//! changed; never cleared on restart or while the address is unknown; when an Ingress leaves
//! the class, only the entries this fleet wrote are removed; every write carries the
//! resourceVersion it was computed from, so a newer write (say, the new class's fleet) is
//! never overwritten.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::watch;

use crate::generator::{LbEntry, LiveStatus, Published};
use crate::translate::ObjectKey;

/// The addresses to publish, sorted: `publishStatusAddress` when set, else the Service's.
pub fn desired_entries(p: &Published) -> Vec<LbEntry> {
    let mut entries: Vec<LbEntry> = if p.fleet.publish_status_address.is_empty() {
        p.service_addresses.clone()
    } else {
        p.fleet
            .publish_status_address
            .iter()
            .map(|a| {
                if a.parse::<std::net::IpAddr>().is_ok() {
                    (Some(a.clone()), None)
                } else {
                    (None, Some(a.clone()))
                }
            })
            .collect()
    };
    entries.sort();
    entries.dedup();
    entries
}

/// One status write: the Ingress, the resourceVersion precondition and the new entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub ingress: ObjectKey,
    pub resource_version: String,
    pub entries: Vec<LbEntry>,
}

/// What the status writer needs of one Ingress: whether this fleet serves it, and its status
/// as last read.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusEntry {
    pub member: bool,
    pub live: LiveStatus,
}

/// The status of every Ingress this fleet serves or may have written to, kept up to date by the
/// generator from watch events, and the keys changed since the writer last planned. At 10k
/// Ingresses a change then costs the writer one entry, not a walk (and a copy) of all of them.
#[derive(Debug, Default)]
pub struct StatusBook {
    entries: BTreeMap<ObjectKey, StatusEntry>,
    /// Changed since the last [`StatusBook::take_writes`]; `None`: everything.
    dirty: Option<BTreeSet<ObjectKey>>,
}

impl StatusBook {
    /// Records an Ingress as now read (`None`: deleted). Only members and Ingresses carrying
    /// some address are kept: any other has nothing of ours to remove.
    pub fn set(&mut self, key: &ObjectKey, entry: Option<StatusEntry>) {
        let entry = entry.filter(|e| e.member || !e.live.entries.is_empty());
        let changed = match entry {
            Some(entry) => {
                self.entries.get(key) != Some(&entry) && {
                    self.entries.insert(key.clone(), entry);
                    true
                }
            }
            None => self.entries.remove(key).is_some(),
        };
        if changed {
            self.mark(key);
        }
    }

    /// Replaces every entry (after a relist, or when membership may have changed for all).
    pub fn replace_all(&mut self, entries: impl IntoIterator<Item = (ObjectKey, StatusEntry)>) {
        self.entries = entries
            .into_iter()
            .filter(|(_, e)| e.member || !e.live.entries.is_empty())
            .collect();
        self.dirty = None;
    }

    /// Plans `key` again at the next [`StatusBook::take_writes`] (a write that failed).
    pub fn mark(&mut self, key: &ObjectKey) {
        if let Some(dirty) = &mut self.dirty {
            dirty.insert(key.clone());
        }
    }

    /// The uid of an Ingress in the book, for Events.
    pub fn uid(&self, key: &ObjectKey) -> Option<String> {
        self.entries.get(key).and_then(|e| e.live.uid.clone())
    }

    /// The writes for the Ingresses changed since the last call (every Ingress when
    /// `everything`), and forgets those changes.
    pub fn take_writes(&mut self, desired: &[LbEntry], everything: bool) -> Vec<Write> {
        let dirty = self.dirty.replace(BTreeSet::new());
        match dirty {
            Some(keys) if !everything => plan(
                keys.iter().filter_map(|k| self.entries.get_key_value(k)),
                desired,
            ),
            _ => plan(self.entries.iter(), desired),
        }
    }
}

/// The writes needed to bring these Ingresses' status in line with `desired` (pure).
pub fn plan<'a>(
    entries: impl Iterator<Item = (&'a ObjectKey, &'a StatusEntry)>,
    desired: &[LbEntry],
) -> Vec<Write> {
    if desired.is_empty() {
        // Unknown address (no load balancer yet, or the API server told us nothing):
        // never clear what is there.
        return Vec::new();
    }
    let mut writes = Vec::new();
    for (key, entry) in entries {
        if !entry.member {
            writes.extend(release(key, &entry.live, desired));
        } else if entry.live.entries != desired {
            writes.push(Write {
                ingress: key.clone(),
                resource_version: entry.live.resource_version.clone(),
                entries: desired.to_vec(),
            });
        }
    }
    writes
}

/// For an Ingress no longer of this class: drop only the entries this fleet publishes.
fn release(key: &ObjectKey, live: &LiveStatus, ours: &[LbEntry]) -> Option<Write> {
    let kept: Vec<LbEntry> = live
        .entries
        .iter()
        .filter(|e| !ours.contains(e))
        .cloned()
        .collect();
    (kept.len() != live.entries.len()).then(|| Write {
        ingress: key.clone(),
        resource_version: live.resource_version.clone(),
        entries: kept,
    })
}

fn to_json(entries: &[LbEntry]) -> serde_json::Value {
    serde_json::Value::Array(
        entries
            .iter()
            .map(|(ip, hostname)| {
                let mut o = serde_json::Map::new();
                if let Some(ip) = ip {
                    o.insert("ip".into(), json!(ip));
                }
                if let Some(h) = hostname {
                    o.insert("hostname".into(), json!(h));
                }
                serde_json::Value::Object(o)
            })
            .collect(),
    )
}

/// Writes status while this replica holds the Lease.
pub async fn run(
    client: kube::Client,
    mut published: watch::Receiver<Arc<Published>>,
    mut leader: watch::Receiver<bool>,
) {
    // What the last plan covered: a new leader, or a new address, plans every Ingress.
    let mut planned: Option<Vec<LbEntry>> = None;
    loop {
        tokio::select! {
            r = published.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
        }
        if !*leader.borrow_and_update() {
            planned = None;
            continue;
        }
        let p = published.borrow_and_update().clone();
        let desired = desired_entries(&p);
        let everything = planned.as_ref() != Some(&desired);
        let writes = match p.book.lock() {
            Ok(mut book) => book.take_writes(&desired, everything),
            Err(_) => return,
        };
        planned = Some(desired);
        for w in writes {
            let api: Api<Ingress> = Api::namespaced(client.clone(), &w.ingress.namespace);
            // A merge patch carrying metadata.resourceVersion is a precondition: it fails
            // with 409 if the Ingress changed since we read it; its watch event marks it for
            // the next plan, with fresh data.
            let body = json!({
                "metadata": {"resourceVersion": w.resource_version},
                "status": {"loadBalancer": {"ingress": to_json(&w.entries)}},
            });
            match api
                .patch_status(
                    &w.ingress.name,
                    &PatchParams::default(),
                    &Patch::Merge(&body),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(ingress = %format!("{}/{}", w.ingress.namespace, w.ingress.name), entries = ?w.entries, "status published")
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tracing::debug!(ingress = %w.ingress.name, "status write lost a race; will retry")
                }
                Err(e) => {
                    tracing::warn!(ingress = %w.ingress.name, error = %e, "status write failed");
                    // Tried again with the next change.
                    if let Ok(mut book) = p.book.lock() {
                        book.mark(&w.ingress);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_crds::fleet::FleetSettings;

    fn e(ip: &str) -> LbEntry {
        (Some(ip.into()), None)
    }
    fn h(host: &str) -> LbEntry {
        (None, Some(host.into()))
    }
    fn live(rv: &str, entries: Vec<LbEntry>) -> LiveStatus {
        LiveStatus {
            resource_version: rv.into(),
            uid: None,
            entries,
        }
    }
    fn key(n: &str) -> ObjectKey {
        ObjectKey::new("ns", n)
    }

    fn member(rv: &str, entries: Vec<LbEntry>) -> Option<StatusEntry> {
        Some(StatusEntry {
            member: true,
            live: live(rv, entries),
        })
    }
    fn other(rv: &str, entries: Vec<LbEntry>) -> Option<StatusEntry> {
        Some(StatusEntry {
            member: false,
            live: live(rv, entries),
        })
    }
    fn written(writes: &[Write]) -> Vec<(&str, &str, &[LbEntry])> {
        writes
            .iter()
            .map(|w| {
                (
                    &*w.ingress.name,
                    w.resource_version.as_str(),
                    w.entries.as_slice(),
                )
            })
            .collect()
    }

    #[test]
    fn plans() {
        let base = Published {
            service_addresses: vec![e("198.51.100.2"), h("lb.example.com"), e("198.51.100.1")],
            ..Default::default()
        };
        // Hostname-only entries sort first (empty IP), as ingress-nginx orders them.
        let sorted = vec![h("lb.example.com"), e("198.51.100.1"), e("198.51.100.2")];
        assert_eq!(desired_entries(&base), sorted, "deterministic order");
        let ours = [e("198.51.100.1")];
        let theirs = e("203.0.113.9");

        // (what the book holds, the writes planned for all of it)
        type Case = (
            Vec<(&'static str, Option<StatusEntry>)>,
            Vec<(&'static str, &'static str, Vec<LbEntry>)>,
        );
        let cases: Vec<Case> = vec![
            // Only the member whose status differs.
            (
                vec![
                    ("a", member("1", vec![])),
                    ("b", member("2", ours.to_vec())),
                ],
                vec![("a", "1", ours.to_vec())],
            ),
            // Left the class: remove only our entries, keep the other fleet's.
            (
                vec![
                    ("gone", other("7", vec![ours[0].clone(), theirs.clone()])),
                    ("never-ours", other("8", vec![theirs.clone()])),
                ],
                vec![("gone", "7", vec![theirs.clone()])],
            ),
            // Deleted: nothing to write.
            (vec![("a", member("1", vec![])), ("a", None)], vec![]),
        ];
        for (entries, want) in cases {
            let mut book = StatusBook::default();
            for (name, entry) in &entries {
                book.set(&key(name), entry.clone());
            }
            let writes = book.take_writes(&ours, true);
            let want: Vec<_> = want
                .iter()
                .map(|(n, rv, e)| (*n, *rv, e.as_slice()))
                .collect();
            assert_eq!(written(&writes), want, "{entries:?}");
        }

        // Unknown address: never clear.
        let mut book = StatusBook::default();
        book.set(&key("a"), member("1", vec![e("203.0.113.5")]));
        assert!(book.take_writes(&[], true).is_empty());
    }

    /// After a plan, only what changed since is planned again; everything when asked.
    #[test]
    fn plans_only_changes() {
        let ours = [e("198.51.100.1")];
        let mut book = StatusBook::default();
        for n in ["a", "b", "c"] {
            book.set(&key(n), member("1", vec![]));
        }
        // Never read an Ingress of another class without addresses: nothing to remove.
        book.set(&key("x"), other("1", vec![]));
        assert_eq!(
            book.take_writes(&ours, false).len(),
            3,
            "new entries are changes"
        );
        assert!(
            book.take_writes(&ours, false).is_empty(),
            "nothing changed since"
        );

        // The writes came back through the watch, one of them not yet.
        book.set(&key("a"), member("2", ours.to_vec()));
        book.set(&key("b"), member("2", ours.to_vec()));
        assert!(book.take_writes(&ours, false).is_empty());
        // An edit of b (a newer resourceVersion, the same status): in line, no write.
        book.set(&key("b"), member("3", ours.to_vec()));
        // c's write failed: marked, it is planned again.
        book.mark(&key("c"));
        assert_eq!(
            written(&book.take_writes(&ours, false)),
            vec![("c", "1", &ours[..])]
        );
        // The same entry again is no change.
        book.set(&key("c"), member("1", vec![]));
        assert!(book.take_writes(&ours, false).is_empty());
        // A new address: every Ingress.
        let new = [e("198.51.100.9")];
        assert_eq!(book.take_writes(&new, true).len(), 3);
        // c left the class (no address yet): dropped, nothing to write.
        book.set(&key("c"), other("4", vec![]));
        assert!(book.take_writes(&ours, false).is_empty());
        assert_eq!(
            book.take_writes(&ours, true).len(),
            0,
            "a and b already carry ours"
        );
        // After a relist every entry is planned, even without asking for everything.
        book.replace_all([(key("d"), member("1", vec![]).unwrap())]);
        assert_eq!(
            written(&book.take_writes(&ours, false)),
            vec![("d", "1", &ours[..])]
        );
    }

    #[test]
    fn desired_addresses() {
        let base = Published {
            service_addresses: vec![e("198.51.100.2")],
            ..Default::default()
        };
        // publishStatusAddress overrides the Service.
        let mut p = base;
        p.fleet = FleetSettings {
            publish_status_address: vec!["ingress.example.com".into(), "192.0.2.1".into()],
            ..Default::default()
        };
        assert_eq!(
            desired_entries(&p),
            vec![h("ingress.example.com"), e("192.0.2.1")]
        );
    }
}
