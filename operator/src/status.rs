//! The set's status as a pure function of what the reconcile observed.
//!
//! Conditions follow kstatus so Argo CD, Flux and kpt read health correctly: `Reconciling`
//! while a rollout or load balancer is in progress, `Stalled` only for states that need a
//! person, `Ready` as the summary.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use sluice_crds::{
    IngressControllerSet, IngressControllerSetStatus, LoadBalancerIngress, LoadBalancerStatus,
    Provider,
};

pub const READY: &str = "Ready";
pub const AVAILABLE: &str = "Available";
pub const LOAD_BALANCER_READY: &str = "LoadBalancerReady";
pub const INGRESS_CLASS_BOUND: &str = "IngressClassBound";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// A condition's status, reason and message before bookkeeping is added.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    pub fn yes(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ok: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn no(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Everything the status depends on, gathered by the reconcile.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    /// Problems that need a person (class claimed elsewhere, patch failing, foreign object in
    /// the way, invalid settings), each with a reason and message. Empty when none.
    pub stalled: Vec<(String, String)>,
    /// The IngressClass binding verdict.
    pub class_bound: Option<Verdict>,
    pub deployment: Option<&'a Deployment>,
    pub service: Option<&'a Service>,
    /// The provider the operator used (resolved from `auto`).
    pub provider: Option<Provider>,
    /// Set while a scheme change waits for the user's opt-in.
    pub scheme_change_pending: Option<String>,
}

/// Computes the status. `old` keeps `lastTransitionTime` of conditions whose status did not
/// change, so an unchanged world yields an identical status (and no write).
pub fn compute_status(
    set: &IngressControllerSet,
    obs: &Observed<'_>,
    old: Option<&IngressControllerSetStatus>,
    now: &Time,
) -> IngressControllerSetStatus {
    let generation = set.metadata.generation;
    let desired = set.spec.replicas;

    let stalled = match obs.stalled.first() {
        Some((reason, message)) => {
            let mut message = message.clone();
            for (_, more) in obs.stalled.iter().skip(1) {
                message.push_str("; ");
                message.push_str(more);
            }
            Verdict::yes(reason, message)
        }
        None => Verdict::no("AsExpected", "nothing needs attention"),
    };

    let class_bound = obs
        .class_bound
        .clone()
        .unwrap_or_else(|| Verdict::no("Pending", "the IngressClass has not been reconciled yet"));

    let dstatus = obs
        .deployment
        .and_then(|d| d.status.clone())
        .unwrap_or_default();
    let ready_replicas = dstatus.ready_replicas.unwrap_or(0);
    let updated = dstatus.updated_replicas.unwrap_or(0);
    let deployment_current = obs.deployment.is_some_and(|d| {
        dstatus.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
    });
    let deployment_available = dstatus.conditions.as_ref().is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    });
    let rolled_out = deployment_current && updated >= desired && ready_replicas >= desired;
    let available = match obs.deployment {
        None => Verdict::no(
            "DeploymentMissing",
            "the data-plane Deployment does not exist yet",
        ),
        Some(_) if deployment_available && rolled_out => Verdict::yes(
            "MinimumReplicasAvailable",
            format!("{ready_replicas} of {desired} data-plane replicas are ready"),
        ),
        Some(_) if deployment_available => Verdict::yes(
            "RollingOut",
            format!(
                "{ready_replicas} of {desired} data-plane replicas are ready; rollout in progress"
            ),
        ),
        Some(_) => Verdict::no(
            "ReplicasUnavailable",
            format!("{ready_replicas} of {desired} data-plane replicas are ready"),
        ),
    };

    let lb_ingress = load_balancer_ingress(set, obs.service);
    let load_balancer = if let Some(msg) = &obs.scheme_change_pending {
        Verdict::no("SchemeChangePending", msg.clone())
    } else if obs.service.is_none() {
        Verdict::no(
            "ServiceMissing",
            "the load-balancer Service does not exist yet",
        )
    } else if lb_ingress.is_empty() {
        Verdict::no(
            "AddressPending",
            "the load balancer has no address yet (waiting for the cloud provider)",
        )
    } else {
        Verdict::yes(
            "AddressAssigned",
            format!(
                "the load balancer is reachable at {}",
                address_of(&lb_ingress[0])
            ),
        )
    };

    let is_stalled = stalled.ok;
    let reconciling = if is_stalled {
        Verdict::no(
            "Stalled",
            "progress needs a person; see the Stalled condition",
        )
    } else if !available.ok || !rolled_out {
        Verdict::yes("RollingOut", available.message.clone())
    } else if !load_balancer.ok {
        Verdict::yes(&load_balancer.reason, load_balancer.message.clone())
    } else if !class_bound.ok {
        Verdict::yes(&class_bound.reason, class_bound.message.clone())
    } else {
        Verdict::no("Reconciled", "the fleet matches the spec")
    };

    let ready = if is_stalled {
        Verdict::no(&stalled.reason, stalled.message.clone())
    } else if !class_bound.ok {
        Verdict::no(&class_bound.reason, class_bound.message.clone())
    } else if !available.ok {
        Verdict::no(&available.reason, available.message.clone())
    } else if !load_balancer.ok {
        Verdict::no(&load_balancer.reason, load_balancer.message.clone())
    } else {
        Verdict::yes("Ready", "the fleet is serving its IngressClass")
    };

    let old_conditions = old.map(|o| o.conditions.as_slice()).unwrap_or_default();
    let conditions = [
        (READY, ready),
        (AVAILABLE, available),
        (LOAD_BALANCER_READY, load_balancer),
        (INGRESS_CLASS_BOUND, class_bound),
        (RECONCILING, reconciling),
        (STALLED, stalled),
    ]
    .into_iter()
    .map(|(type_, v)| condition(type_, v, generation, old_conditions, now))
    .collect();

    IngressControllerSetStatus {
        observed_generation: generation,
        replicas: obs.deployment.map(|_| dstatus.replicas.unwrap_or(0)),
        ready_replicas: obs.deployment.map(|_| ready_replicas),
        selector: Some(crate::children::labels::selector_string(set)),
        ingress_class_name: Some(set.spec.ingress_class_name.clone()),
        address: lb_ingress.first().map(address_of),
        load_balancer: (!lb_ingress.is_empty()).then(|| LoadBalancerStatus {
            ingress: lb_ingress.clone(),
        }),
        provider: obs.provider,
        conditions,
    }
}

fn address_of(i: &LoadBalancerIngress) -> String {
    i.hostname
        .clone()
        .or_else(|| i.ip.clone())
        .unwrap_or_default()
}

/// `publishStatusAddress` when set, else the Service's load-balancer ingress.
pub fn load_balancer_ingress(
    set: &IngressControllerSet,
    service: Option<&Service>,
) -> Vec<LoadBalancerIngress> {
    if !set.spec.publish_status_address.is_empty() {
        return set
            .spec
            .publish_status_address
            .iter()
            .map(|a| {
                if a.parse::<std::net::IpAddr>().is_ok() {
                    LoadBalancerIngress {
                        ip: Some(a.clone()),
                        hostname: None,
                    }
                } else {
                    LoadBalancerIngress {
                        ip: None,
                        hostname: Some(a.clone()),
                    }
                }
            })
            .collect();
    }
    service
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| {
            list.iter()
                .filter(|i| i.ip.is_some() || i.hostname.is_some())
                .map(|i| LoadBalancerIngress {
                    ip: i.ip.clone(),
                    hostname: i.hostname.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn condition(
    type_: &str,
    v: Verdict,
    generation: Option<i64>,
    old: &[Condition],
    now: &Time,
) -> Condition {
    let status = if v.ok { "True" } else { "False" };
    let last_transition_time = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: v.reason,
        message: v.message,
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::test_support::set;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress as CoreLbIngress, LoadBalancerStatus as CoreLbStatus, ServiceStatus,
    };
    use k8s_openapi::jiff::Timestamp;

    fn deployment(ready: i32, updated: i32, available: bool) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                generation: Some(3),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                observed_generation: Some(3),
                replicas: Some(updated.max(ready)),
                ready_replicas: Some(ready),
                updated_replicas: Some(updated),
                conditions: Some(vec![DeploymentCondition {
                    type_: "Available".into(),
                    status: if available { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service(ip: Option<&str>) -> Service {
        Service {
            status: Some(ServiceStatus {
                load_balancer: Some(CoreLbStatus {
                    ingress: ip.map(|ip| {
                        vec![CoreLbIngress {
                            ip: Some(ip.into()),
                            ..Default::default()
                        }]
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn bound() -> Option<Verdict> {
        Some(Verdict::yes("Created", "bound"))
    }

    fn get<'a>(s: &'a IngressControllerSetStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).expect(t)
    }

    #[test]
    fn conditions_table() {
        let now = Time(Timestamp::from_second(1_000).unwrap());
        let ready_dep = deployment(2, 2, true);
        let rolling = deployment(1, 1, true);
        let down = deployment(0, 2, false);
        let lb = service(Some("192.0.2.1"));
        let no_lb = service(None);
        // (what, observed, want Ready, Available, LoadBalancerReady, Reconciling, Stalled, Ready reason)
        let cases: Vec<(&str, Observed, [&str; 5], &str)> = vec![
            (
                "all good",
                Observed {
                    class_bound: bound(),
                    deployment: Some(&ready_dep),
                    service: Some(&lb),
                    ..Default::default()
                },
                ["True", "True", "True", "False", "False"],
                "Ready",
            ),
            (
                "rolling out",
                Observed {
                    class_bound: bound(),
                    deployment: Some(&rolling),
                    service: Some(&lb),
                    ..Default::default()
                },
                ["True", "True", "True", "True", "False"],
                "Ready",
            ),
            (
                "no replica ready",
                Observed {
                    class_bound: bound(),
                    deployment: Some(&down),
                    service: Some(&lb),
                    ..Default::default()
                },
                ["False", "False", "True", "True", "False"],
                "ReplicasUnavailable",
            ),
            (
                "waiting for the cloud",
                Observed {
                    class_bound: bound(),
                    deployment: Some(&ready_dep),
                    service: Some(&no_lb),
                    ..Default::default()
                },
                ["False", "True", "False", "True", "False"],
                "AddressPending",
            ),
            (
                "stalled wins",
                Observed {
                    stalled: vec![("IngressClassClaimed".into(), "older set has it".into())],
                    class_bound: bound(),
                    deployment: Some(&ready_dep),
                    service: Some(&lb),
                    ..Default::default()
                },
                ["False", "True", "True", "False", "True"],
                "IngressClassClaimed",
            ),
            (
                "scheme change pending",
                Observed {
                    class_bound: bound(),
                    deployment: Some(&ready_dep),
                    service: Some(&lb),
                    scheme_change_pending: Some("opt in".into()),
                    ..Default::default()
                },
                ["False", "True", "False", "True", "False"],
                "SchemeChangePending",
            ),
            (
                "nothing yet",
                Observed::default(),
                ["False", "False", "False", "True", "False"],
                "Pending",
            ),
        ];
        let s = set("ingress-public", "sluice-system");
        for (what, obs, want, reason) in cases {
            let st = compute_status(&s, &obs, None, &now);
            let got: Vec<&str> = [READY, AVAILABLE, LOAD_BALANCER_READY, RECONCILING, STALLED]
                .iter()
                .map(|t| get(&st, t).status.as_str())
                .collect();
            assert_eq!(got, want, "{what}");
            assert_eq!(get(&st, READY).reason, reason, "{what}");
            for c in &st.conditions {
                assert_eq!(c.observed_generation, Some(1), "{what}: {}", c.type_);
            }
        }
    }

    #[test]
    fn status_fields_and_stable_transition_times() {
        let s = set("ingress-public", "sluice-system");
        let d = deployment(2, 2, true);
        let lb = service(Some("192.0.2.1"));
        let obs = Observed {
            class_bound: bound(),
            deployment: Some(&d),
            service: Some(&lb),
            provider: Some(Provider::Aws),
            ..Default::default()
        };
        let t1 = Time(Timestamp::from_second(1_000).unwrap());
        let t2 = Time(Timestamp::from_second(2_000).unwrap());
        let first = compute_status(&s, &obs, None, &t1);
        assert_eq!(first.address.as_deref(), Some("192.0.2.1"));
        assert_eq!(first.ready_replicas, Some(2));
        assert_eq!(first.replicas, Some(2));
        assert_eq!(
            first.selector.as_deref(),
            Some("sluice.dev/set=ingress-public,sluice.dev/set-namespace=sluice-system")
        );
        assert_eq!(first.provider, Some(Provider::Aws));
        // The same world later: identical status (so no write), times kept.
        let again = compute_status(&s, &obs, Some(&first), &t2);
        assert_eq!(again, first);
        // A changed condition gets the new time; the others keep theirs.
        let no_lb = service(None);
        let obs2 = Observed {
            service: Some(&no_lb),
            ..obs.clone()
        };
        let changed = compute_status(&s, &obs2, Some(&first), &t2);
        assert_eq!(get(&changed, LOAD_BALANCER_READY).last_transition_time, t2);
        assert_eq!(get(&changed, AVAILABLE).last_transition_time, t1);
        assert_eq!(changed.address, None);
    }

    #[test]
    fn publish_status_address_overrides_the_service() {
        let mut s = set("p", "ns");
        s.spec.publish_status_address = vec!["192.0.2.9".into(), "lb.example.com".into()];
        let got = load_balancer_ingress(&s, Some(&service(Some("198.51.100.1"))));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].ip.as_deref(), Some("192.0.2.9"));
        assert_eq!(got[1].hostname.as_deref(), Some("lb.example.com"));
    }
}
