//! The IngressClass named `spec.ingressClassName`, when the operator creates it, and the test
//! of whether an existing one (possibly applied by the user from git) points at a set.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IngressClass, IngressClassParametersReference, IngressClassSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sluice_crds::{CONTROLLER_NAME, GROUP, IngressControllerSet};

use super::labels::{child_labels, set_name, set_namespace};

/// The annotation that makes an IngressClass the cluster default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// `spec.parameters.kind` of every Sluice IngressClass.
pub const PARAMETERS_KIND: &str = "IngressControllerSet";
/// `spec.parameters.scope`: the parameters object is namespaced.
pub const PARAMETERS_SCOPE: &str = "Namespace";

/// `spec.parameters` pointing at `set`.
pub fn parameters(set: &IngressControllerSet) -> IngressClassParametersReference {
    IngressClassParametersReference {
        api_group: Some(GROUP.to_owned()),
        kind: PARAMETERS_KIND.to_owned(),
        name: set_name(set),
        scope: Some(PARAMETERS_SCOPE.to_owned()),
        namespace: Some(set_namespace(set)),
    }
}

/// The IngressClass the operator creates when none of that name exists. Cluster-scoped, so no
/// owner reference (a finalizer deletes it); the set labels mark it as the operator's.
///
/// The default-class annotation is present only when `spec.defaultClass` is true; when it turns
/// false the operator simply stops applying the key and server-side apply removes it.
pub fn desired_ingress_class(set: &IngressControllerSet) -> IngressClass {
    let annotations = set
        .spec
        .default_class
        .then(|| BTreeMap::from([(DEFAULT_CLASS_ANNOTATION.to_owned(), "true".to_owned())]));
    IngressClass {
        metadata: ObjectMeta {
            name: Some(set.spec.ingress_class_name.clone()),
            labels: Some(child_labels(set)),
            annotations,
            ..ObjectMeta::default()
        },
        spec: Some(IngressClassSpec {
            controller: Some(CONTROLLER_NAME.to_owned()),
            parameters: Some(parameters(set)),
        }),
    }
}

/// True when `class` names the Sluice controller and its parameters point at exactly `set`
/// (group, kind, name, namespaced scope and namespace). Every Sluice class shares the
/// controller string, so the parameters are what tie a class to one fleet. Used both to bind a
/// user-supplied class and to check a class before the operator touches it.
pub fn ingress_class_points_at(class: &IngressClass, set: &IngressControllerSet) -> bool {
    let Some(spec) = class.spec.as_ref() else {
        return false;
    };
    spec.controller.as_deref() == Some(CONTROLLER_NAME)
        && spec.parameters.as_ref() == Some(&parameters(set))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::children::test_support::{apply_body, set};

    #[test]
    fn shape() {
        for (name, ns, class) in [
            ("ingress-public", "sluice-system", "public"),
            ("x", "t", "c"),
        ] {
            let mut s = set(name, ns);
            s.spec.ingress_class_name = class.to_owned();
            let ic = desired_ingress_class(&s);
            let body = apply_body(&ic, "networking.k8s.io/v1", "IngressClass");
            assert_eq!(body["metadata"]["name"], class);
            assert!(body["metadata"].get("namespace").is_none());
            assert!(body["metadata"].get("ownerReferences").is_none());
            assert_eq!(ic.metadata.labels, Some(child_labels(&s)));
            assert_eq!(
                body["spec"],
                json!({
                    "controller": "sluice.dev/ingress-controller",
                    "parameters": {
                        "apiGroup": "sluice.dev",
                        "kind": "IngressControllerSet",
                        "name": name,
                        "scope": "Namespace",
                        "namespace": ns,
                    },
                })
            );
            assert!(ingress_class_points_at(&ic, &s));
        }
    }

    #[test]
    fn default_class_annotation_on_and_off() {
        for (default_class, want) in [
            (false, None),
            (
                true,
                Some(BTreeMap::from([(
                    "ingressclass.kubernetes.io/is-default-class".to_owned(),
                    "true".to_owned(),
                )])),
            ),
        ] {
            let mut s = set("x", "ns");
            s.spec.default_class = default_class;
            let ic = desired_ingress_class(&s);
            assert_eq!(
                ic.metadata.annotations, want,
                "defaultClass {default_class}"
            );
            apply_body(&ic, "networking.k8s.io/v1", "IngressClass");
        }
    }

    #[test]
    fn points_at() {
        let s = set("x", "ns");
        let ours = desired_ingress_class(&s);
        let edit = |f: &dyn Fn(&mut IngressClassSpec)| {
            let mut class = ours.clone();
            f(class.spec.as_mut().expect("spec"));
            class
        };
        let params = |f: &dyn Fn(&mut IngressClassParametersReference)| {
            edit(&|spec| f(spec.parameters.as_mut().expect("parameters")))
        };
        let cases = [
            ("ours", ours.clone(), true),
            ("no spec", IngressClass::default(), false),
            (
                "other controller",
                edit(&|s| s.controller = Some("k8s.io/ingress-nginx".into())),
                false,
            ),
            ("no controller", edit(&|s| s.controller = None), false),
            ("no parameters", edit(&|s| s.parameters = None), false),
            ("other set", params(&|p| p.name = "y".into()), false),
            (
                "same name, other namespace",
                params(&|p| p.namespace = Some("other".into())),
                false,
            ),
            ("no namespace", params(&|p| p.namespace = None), false),
            (
                "cluster scope",
                params(&|p| p.scope = Some("Cluster".into())),
                false,
            ),
            (
                "other kind",
                params(&|p| p.kind = "ConfigMap".into()),
                false,
            ),
            (
                "other group",
                params(&|p| p.api_group = Some("k8s.example.com".into())),
                false,
            ),
            // Labels and annotations are not what binds a class: a user-supplied class from
            // git has none of ours and still binds.
            (
                "user-supplied, no labels",
                {
                    let mut c = ours.clone();
                    c.metadata.labels = None;
                    c.metadata.annotations = Some(BTreeMap::from([(
                        DEFAULT_CLASS_ANNOTATION.to_owned(),
                        "true".to_owned(),
                    )]));
                    c
                },
                true,
            ),
        ];
        for (what, class, want) in cases {
            assert_eq!(ingress_class_points_at(&class, &s), want, "{what}");
        }
        // The same class never points at a same-named set in another namespace.
        assert!(!ingress_class_points_at(&ours, &set("x", "other")));
    }
}
