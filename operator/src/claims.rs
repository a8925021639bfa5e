//! Who may serve what: the pure rules that decide between sets claiming the same
//! IngressClass, sets that both want Ingresses without a class, and IngressClasses that exist
//! already (created by us, supplied by the user, or belonging to someone else).

use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sluice_crds::IngressControllerSet;

use crate::children::ingress_class::ingress_class_points_at;
use crate::children::labels::is_ours;

/// The facts about one set that claims depend on.
#[derive(Clone, Debug, PartialEq)]
pub struct SetSummary {
    pub namespace: String,
    pub name: String,
    pub class_name: String,
    pub watch_without_class: bool,
    pub created: Option<Time>,
}

impl SetSummary {
    /// Summarises a set; `None` for a set being deleted (it no longer holds claims, so the
    /// next-oldest set takes over as soon as deletion starts).
    pub fn of(set: &IngressControllerSet) -> Option<Self> {
        if set.metadata.deletion_timestamp.is_some() {
            return None;
        }
        Some(Self {
            namespace: set.metadata.namespace.clone().unwrap_or_default(),
            name: set.metadata.name.clone().unwrap_or_default(),
            class_name: set.spec.ingress_class_name.clone(),
            watch_without_class: set.spec.watch_ingress_without_class,
            created: set.metadata.creation_timestamp.clone(),
        })
    }

    /// Seniority: older first; a missing timestamp counts as newest; ties by namespace/name.
    fn seniority(&self) -> (bool, Option<&Time>, &str, &str) {
        (
            self.created.is_none(),
            self.created.as_ref(),
            &self.namespace,
            &self.name,
        )
    }

    fn same_set(&self, other: &SetSummary) -> bool {
        self.namespace == other.namespace && self.name == other.name
    }
}

/// Outcome of a claim among competing sets.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This set holds the claim.
    Holds,
    /// An older set holds it.
    HeldBy { namespace: String, name: String },
}

fn oldest<'a>(candidates: impl Iterator<Item = &'a SetSummary>) -> Option<&'a SetSummary> {
    candidates.min_by(|a, b| a.seniority().cmp(&b.seniority()))
}

/// Which set holds `me.class_name`: the oldest live set naming it.
pub fn class_claim(me: &SetSummary, all: &[SetSummary]) -> Claim {
    let winner = oldest(
        all.iter()
            .chain(std::iter::once(me))
            .filter(|s| s.class_name == me.class_name),
    );
    match winner {
        Some(w) if !w.same_set(me) => Claim::HeldBy {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
        },
        _ => Claim::Holds,
    }
}

/// Which set serves Ingresses without a class: the oldest live set asking for it. Only
/// meaningful when `me.watch_without_class`.
pub fn without_class_claim(me: &SetSummary, all: &[SetSummary]) -> Claim {
    let winner = oldest(
        all.iter()
            .chain(std::iter::once(me))
            .filter(|s| s.watch_without_class),
    );
    match winner {
        Some(w) if !w.same_set(me) => Claim::HeldBy {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
        },
        _ => Claim::Holds,
    }
}

/// What to do about the IngressClass named by a set.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassBinding {
    /// No such class: the operator creates it.
    Create,
    /// The class carries this set's labels: the operator keeps it as desired.
    Managed,
    /// The user supplied a class pointing at this set: bind it, never modify it.
    /// `default_mismatch` says whether its is-default-class annotation disagrees with
    /// `spec.defaultClass`.
    UserProvided { default_mismatch: bool },
    /// The class belongs to another controller or set.
    Conflict { message: String },
}

pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// Decides how the set relates to the existing class (if any) of its name.
pub fn class_binding(set: &IngressControllerSet, existing: Option<&IngressClass>) -> ClassBinding {
    let Some(class) = existing else {
        return ClassBinding::Create;
    };
    if is_ours(&class.metadata, set) {
        return ClassBinding::Managed;
    }
    if ingress_class_points_at(class, set) {
        let is_default = class
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
            .is_some_and(|v| v == "true");
        return ClassBinding::UserProvided {
            default_mismatch: is_default != set.spec.default_class,
        };
    }
    let controller = class
        .spec
        .as_ref()
        .and_then(|s| s.controller.clone())
        .unwrap_or_default();
    let message = if controller != sluice_crds::CONTROLLER_NAME {
        format!(
            "IngressClass {} exists with spec.controller {controller:?}, not {:?}; it belongs to another ingress controller",
            set.spec.ingress_class_name,
            sluice_crds::CONTROLLER_NAME
        )
    } else {
        let params = class.spec.as_ref().and_then(|s| s.parameters.as_ref());
        format!(
            "IngressClass {} exists and its spec.parameters point at IngressControllerSet {}/{}, not at this set",
            set.spec.ingress_class_name,
            params.and_then(|p| p.namespace.clone()).unwrap_or_default(),
            params.map(|p| p.name.clone()).unwrap_or_default(),
        )
    };
    ClassBinding::Conflict { message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn s(ns: &str, name: &str, class: &str, without: bool, t: Option<i64>) -> SetSummary {
        SetSummary {
            namespace: ns.into(),
            name: name.into(),
            class_name: class.into(),
            watch_without_class: without,
            created: t.map(|secs| Time(Timestamp::from_second(secs).unwrap())),
        }
    }

    #[test]
    fn class_claims() {
        let old = s("a", "old", "public", false, Some(100));
        let new = s("b", "new", "public", false, Some(200));
        let other = s("c", "other", "private", false, Some(50));
        let tie = s("a", "zzz", "public", false, Some(100));
        let untimed = s("0", "untimed", "public", false, None);
        let cases: Vec<(&str, &SetSummary, Vec<SetSummary>, Claim)> = vec![
            ("alone", &new, vec![], Claim::Holds),
            ("self in list", &new, vec![new.clone()], Claim::Holds),
            (
                "older wins",
                &new,
                vec![old.clone(), new.clone()],
                Claim::HeldBy {
                    namespace: "a".into(),
                    name: "old".into(),
                },
            ),
            (
                "older keeps it",
                &old,
                vec![old.clone(), new.clone()],
                Claim::Holds,
            ),
            (
                "other class ignored",
                &new,
                vec![other.clone()],
                Claim::Holds,
            ),
            (
                "tie by namespace/name",
                &tie,
                vec![old.clone()],
                Claim::HeldBy {
                    namespace: "a".into(),
                    name: "old".into(),
                },
            ),
            (
                "no timestamp is newest",
                &old,
                vec![untimed.clone()],
                Claim::Holds,
            ),
        ];
        for (what, me, all, want) in cases {
            assert_eq!(class_claim(me, &all), want, "{what}");
        }
    }

    #[test]
    fn without_class_claims() {
        let a = s("a", "a", "public", true, Some(100));
        let b = s("b", "b", "private", true, Some(200));
        let c = s("c", "c", "other", false, Some(10));
        assert_eq!(
            without_class_claim(&a, &[b.clone(), c.clone()]),
            Claim::Holds
        );
        assert_eq!(
            without_class_claim(&b, &[a.clone(), c]),
            Claim::HeldBy {
                namespace: "a".into(),
                name: "a".into()
            }
        );
    }
}
