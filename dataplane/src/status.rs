//! Publishes the fleet's load-balancer address into `status.loadBalancer` of the Ingresses it
//! serves, so external-dns and Argo CD's Ingress health check work.
//!
//! Rules (design.md): only the Lease holder writes; deterministic order; no write when nothing
//! changed; never cleared on restart or while the address is unknown; when an Ingress leaves
//! the class, only the entries this fleet wrote are removed; every write carries the
//! resourceVersion it was computed from, so a newer write (say, the new class's fleet) is
//! never overwritten.

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

/// The writes needed to bring every Ingress's status in line (pure).
pub fn plan(p: &Published) -> Vec<Write> {
    let desired = desired_entries(p);
    if desired.is_empty() {
        // Unknown address (no load balancer yet, or the API server told us nothing):
        // never clear what is there.
        return Vec::new();
    }
    let mut writes = Vec::new();
    for (key, live) in &p.ingress_status {
        if live.entries != desired {
            writes.push(Write {
                ingress: key.clone(),
                resource_version: live.resource_version.clone(),
                entries: desired.clone(),
            });
        }
    }
    for (key, live) in &p.others {
        if let Some(w) = release(key, live, &desired) {
            writes.push(w);
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
    loop {
        tokio::select! {
            r = published.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
        }
        if !*leader.borrow_and_update() {
            continue;
        }
        let p = published.borrow_and_update().clone();
        for w in plan(&p) {
            let api: Api<Ingress> = Api::namespaced(client.clone(), &w.ingress.namespace);
            // A merge patch carrying metadata.resourceVersion is a precondition: it fails
            // with 409 if the Ingress changed since we read it, and the next round retries
            // with fresh data.
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
                    tracing::warn!(ingress = %w.ingress.name, error = %e, "status write failed")
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

    #[test]
    fn plans() {
        let base = Published {
            service_addresses: vec![e("198.51.100.2"), h("lb.example.com"), e("198.51.100.1")],
            ..Default::default()
        };
        // Hostname-only entries sort first (empty IP), as ingress-nginx orders them.
        let sorted = vec![h("lb.example.com"), e("198.51.100.1"), e("198.51.100.2")];

        let mut p = base.clone();
        p.ingress_status.insert(key("a"), live("1", vec![]));
        p.ingress_status.insert(key("b"), live("2", sorted.clone()));
        let w = plan(&p);
        assert_eq!(w.len(), 1, "only the Ingress whose status differs: {w:?}");
        assert_eq!(w[0].ingress, key("a"));
        assert_eq!(w[0].resource_version, "1");
        assert_eq!(w[0].entries, sorted, "deterministic order");

        // Unknown address: never clear.
        let mut p = Published::default();
        p.ingress_status
            .insert(key("a"), live("1", vec![e("203.0.113.5")]));
        assert!(plan(&p).is_empty());

        // Left the class: remove only our entries, keep the other fleet's.
        let mut p = base.clone();
        p.others.push((
            key("gone"),
            live("7", vec![e("198.51.100.1"), e("203.0.113.9")]),
        ));
        p.others
            .push((key("never-ours"), live("8", vec![e("203.0.113.9")])));
        let w = plan(&p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].ingress, key("gone"));
        assert_eq!(w[0].entries, vec![e("203.0.113.9")]);

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
