//! What one mirroring pass does for one set, decided by pure functions from what the watches
//! hold: whether the set runs a fleet at all, which origins to copy, which mirrors to delete.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sluice_crds::IngressControllerSet;
use sluice_crds::mirror::{ORIGIN_ANNOTATION, ORIGIN_VERSION_ANNOTATION, mirror_name};

use super::refs::{ClassScope, ObjectKey};
use crate::children::ingress_class::ingress_class_points_at;
use crate::children::labels::set_name;
use crate::claims::{self, Claim, SetSummary};

/// The class scope of `set` when it runs a fleet, else `None` (then it needs no mirrors).
///
/// A set runs a fleet when it holds the claim on its class among `all` sets and the
/// IngressClass of that name exists and points at it (created by the operator or supplied by
/// the user); the same rules the reconcile applies, so mirrors exist exactly for fleets that
/// exist. It serves Ingresses without a class only when it also holds that claim.
pub fn scope_of<'a>(
    set: &IngressControllerSet,
    all: impl IntoIterator<Item = &'a IngressControllerSet>,
    class: Option<&IngressClass>,
) -> Option<ClassScope> {
    let me = SetSummary::of(set)?;
    let others: Vec<SetSummary> = all
        .into_iter()
        .filter_map(SetSummary::of)
        .filter(|s| !(s.namespace == me.namespace && s.name == me.name))
        .collect();
    if claims::class_claim(&me, &others) != Claim::Holds {
        return None;
    }
    if !class.is_some_and(|c| ingress_class_points_at(c, set)) {
        return None;
    }
    let watch_without_class =
        me.watch_without_class && claims::without_class_claim(&me, &others) == Claim::Holds;
    Some(ClassScope {
        class_name: me.class_name,
        watch_without_class,
    })
}

/// What the Secret metadata watch says about an origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No such Secret.
    Missing,
    /// The Secret is itself a mirror (someone referenced a mirror): never copied again.
    IsMirror,
    Present {
        resource_version: String,
    },
}

/// The work of one pass for one set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Origins whose mirror is missing, out of date, or changed by someone else since we
    /// last wrote or checked it.
    pub copy: Vec<ObjectKey>,
    /// Names of the set's mirrors that nobody references any more (or whose origin is gone).
    pub delete: Vec<String>,
    /// Referenced origins that do not exist.
    pub missing: Vec<ObjectKey>,
    /// Referenced origins that are mirrors themselves.
    pub refused: Vec<ObjectKey>,
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Decides the pass for `set`.
///
/// - `referenced`: the origins its Ingresses name (see [`super::refs::references`]).
/// - `origin`: what the metadata watch holds for an origin.
/// - `mirrors`: the set's existing mirrors (see
///   [`crate::children::mirror_secret::is_mirror_of`]).
/// - `verified`: mirror name -> the resourceVersion it had when this process last wrote or
///   compared it in full. A mirror whose resourceVersion moved since was edited by someone
///   else (its metadata alone cannot tell whether its data still matches): copy again. An
///   unknown mirror (first pass after a start) is compared in full once.
pub fn plan<'a>(
    set: &IngressControllerSet,
    referenced: impl IntoIterator<Item = &'a ObjectKey>,
    origin: impl Fn(&ObjectKey) -> Origin,
    mirrors: &[&ObjectMeta],
    verified: &HashMap<String, String>,
) -> Plan {
    let set = set_name(set);
    let mut plan = Plan::default();
    let mut wanted = BTreeSet::new();
    for key in referenced {
        let version = match origin(key) {
            Origin::Missing => {
                plan.missing.push(key.clone());
                continue;
            }
            Origin::IsMirror => {
                plan.refused.push(key.clone());
                continue;
            }
            Origin::Present { resource_version } => resource_version,
        };
        let name = mirror_name(&set, &key.namespace, &key.name);
        let current = mirrors
            .iter()
            .find(|m| m.name.as_deref() == Some(name.as_str()));
        let up_to_date = current.is_some_and(|m| {
            annotation(m, ORIGIN_ANNOTATION) == Some(key.to_string().as_str())
                && annotation(m, ORIGIN_VERSION_ANNOTATION) == Some(version.as_str())
                && m.resource_version.is_some()
                && verified.get(&name) == m.resource_version.as_ref()
        });
        if !up_to_date {
            plan.copy.push(key.clone());
        }
        wanted.insert(name);
    }
    plan.delete = mirrors
        .iter()
        .filter_map(|m| m.name.clone())
        .filter(|name| !wanted.contains(name))
        .collect();
    plan.delete.sort();
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::children::ingress_class::desired_ingress_class;
    use crate::children::test_support::set;

    /// (what, referenced, mirrors, verified, want)
    type PlanCase<'a> = (
        &'a str,
        Vec<&'a ObjectKey>,
        Vec<&'a ObjectMeta>,
        HashMap<String, String>,
        Plan,
    );
    /// (what, set, all sets, class, want)
    type ScopeCase<'a> = (
        &'a str,
        &'a IngressControllerSet,
        Vec<&'a IngressControllerSet>,
        Option<IngressClass>,
        Option<ClassScope>,
    );

    fn key(ns: &str, name: &str) -> ObjectKey {
        ObjectKey::new(ns, name)
    }

    fn mirror(set: &str, origin: &ObjectKey, origin_rv: &str, rv: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(mirror_name(set, &origin.namespace, &origin.name)),
            namespace: Some("edge".into()),
            resource_version: Some(rv.into()),
            annotations: Some(BTreeMap::from([
                (ORIGIN_ANNOTATION.into(), origin.to_string()),
                (ORIGIN_VERSION_ANNOTATION.into(), origin_rv.into()),
            ])),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn plans() {
        let s = set("x", "edge");
        let (tls, auth, gone, loop_) = (
            key("shop", "tls"),
            key("shop", "auth"),
            key("shop", "gone"),
            key("edge", "x-m-0000000000000000"),
        );
        let stale = key("shop", "stale");
        let origins = |k: &ObjectKey| match k.name.as_str() {
            "tls" => Origin::Present {
                resource_version: "10".into(),
            },
            "auth" => Origin::Present {
                resource_version: "20".into(),
            },
            "stale" => Origin::Present {
                resource_version: "30".into(),
            },
            "x-m-0000000000000000" => Origin::IsMirror,
            _ => Origin::Missing,
        };
        let tls_mirror = mirror("x", &tls, "10", "100");
        let tls_old = mirror("x", &tls, "9", "100");
        let auth_mirror = mirror("x", &auth, "20", "200");
        let stale_mirror = mirror("x", &stale, "30", "300");
        let gone_mirror = mirror("x", &gone, "1", "400");
        let verified = |pairs: &[(&ObjectMeta, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(m, rv)| (m.name.clone().unwrap(), (*rv).to_owned()))
                .collect()
        };
        let name = |k: &ObjectKey| mirror_name("x", &k.namespace, &k.name);

        // (what, referenced, mirrors, verified, want)
        let cases: Vec<PlanCase> = vec![
            (
                "new reference: copy",
                vec![&tls],
                vec![],
                HashMap::new(),
                Plan {
                    copy: vec![tls.clone()],
                    ..Plan::default()
                },
            ),
            (
                "up to date and verified: nothing",
                vec![&tls, &auth],
                vec![&tls_mirror, &auth_mirror],
                verified(&[(&tls_mirror, "100"), (&auth_mirror, "200")]),
                Plan::default(),
            ),
            (
                "rotated origin: copy",
                vec![&tls],
                vec![&tls_old],
                verified(&[(&tls_old, "100")]),
                Plan {
                    copy: vec![tls.clone()],
                    ..Plan::default()
                },
            ),
            (
                "mirror edited by someone else: copy",
                vec![&tls],
                vec![&tls_mirror],
                verified(&[(&tls_mirror, "99")]),
                Plan {
                    copy: vec![tls.clone()],
                    ..Plan::default()
                },
            ),
            (
                "unverified after a restart: copy (compared in full)",
                vec![&tls],
                vec![&tls_mirror],
                HashMap::new(),
                Plan {
                    copy: vec![tls.clone()],
                    ..Plan::default()
                },
            ),
            (
                "unreferenced mirrors are deleted, referenced ones kept",
                vec![&auth],
                vec![&tls_mirror, &auth_mirror, &stale_mirror],
                verified(&[(&auth_mirror, "200")]),
                Plan {
                    delete: {
                        let mut d = vec![name(&tls), name(&stale)];
                        d.sort();
                        d
                    },
                    ..Plan::default()
                },
            ),
            (
                "missing origin: no mirror, and its old mirror goes",
                vec![&gone],
                vec![&gone_mirror],
                verified(&[(&gone_mirror, "400")]),
                Plan {
                    delete: vec![name(&gone)],
                    missing: vec![gone.clone()],
                    ..Plan::default()
                },
            ),
            (
                "a mirror is never mirrored",
                vec![&loop_],
                vec![],
                HashMap::new(),
                Plan {
                    refused: vec![loop_.clone()],
                    ..Plan::default()
                },
            ),
            (
                "nothing referenced: every mirror goes",
                vec![],
                vec![&tls_mirror, &auth_mirror],
                HashMap::new(),
                Plan {
                    delete: {
                        let mut d = vec![name(&tls), name(&auth)];
                        d.sort();
                        d
                    },
                    ..Plan::default()
                },
            ),
        ];
        for (what, referenced, mirrors, verified, want) in cases {
            assert_eq!(
                plan(&s, referenced, origins, &mirrors, &verified),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn a_mirror_with_a_foreign_origin_annotation_is_recopied() {
        let s = set("x", "edge");
        let tls = key("shop", "tls");
        let mut m = mirror("x", &tls, "10", "100");
        m.annotations
            .as_mut()
            .unwrap()
            .insert(ORIGIN_ANNOTATION.into(), "other/tls".into());
        let verified = HashMap::from([(m.name.clone().unwrap(), "100".to_owned())]);
        let p = plan(
            &s,
            [&tls],
            |_| Origin::Present {
                resource_version: "10".into(),
            },
            &[&m],
            &verified,
        );
        assert_eq!(p.copy, vec![tls]);
    }

    fn at(mut s: IngressControllerSet, secs: i64) -> IngressControllerSet {
        s.metadata.creation_timestamp = Some(Time(Timestamp::from_second(secs).unwrap()));
        s
    }

    #[test]
    fn scopes() {
        let mut public = at(set("public", "edge"), 100);
        public.spec.ingress_class_name = "public".into();
        let mut newer = at(set("newer", "other"), 200);
        newer.spec.ingress_class_name = "public".into();
        let mut without = public.clone();
        without.spec.watch_ingress_without_class = true;
        let mut older_without = at(set("private", "edge"), 50);
        older_without.spec.ingress_class_name = "private".into();
        older_without.spec.watch_ingress_without_class = true;
        let mut deleting = public.clone();
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(300).unwrap()));

        let class_of = |s: &IngressControllerSet| desired_ingress_class(s);
        let foreign = {
            let mut c = class_of(&public);
            c.spec.as_mut().unwrap().controller = Some("k8s.io/ingress-nginx".into());
            c
        };
        let scope = |name: &str, without: bool| {
            Some(ClassScope {
                class_name: name.into(),
                watch_without_class: without,
            })
        };
        // (what, set, all sets, class, want)
        let cases: Vec<ScopeCase> = vec![
            (
                "alone and bound",
                &public,
                vec![&public],
                Some(class_of(&public)),
                scope("public", false),
            ),
            ("class not created yet", &public, vec![&public], None, None),
            (
                "class of another controller",
                &public,
                vec![&public],
                Some(foreign.clone()),
                None,
            ),
            (
                "older set holds the class",
                &newer,
                vec![&public, &newer],
                Some(class_of(&public)),
                None,
            ),
            (
                "the older set keeps it",
                &public,
                vec![&public, &newer],
                Some(class_of(&public)),
                scope("public", false),
            ),
            (
                "without-class claim held",
                &without,
                vec![&without],
                Some(class_of(&without)),
                scope("public", true),
            ),
            (
                "without-class claim held by an older set",
                &without,
                vec![&without, &older_without],
                Some(class_of(&without)),
                scope("public", false),
            ),
            (
                "being deleted",
                &deleting,
                vec![&deleting],
                Some(class_of(&public)),
                None,
            ),
        ];
        for (what, s, all, class, want) in cases {
            assert_eq!(scope_of(s, all, class.as_ref()), want, "{what}");
        }
    }
}
