//! Which Ingresses belong to this fleet's class.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use super::ClassScope;
use super::validate::LEGACY_CLASS_ANNOTATION;

/// `spec.parameters` of an IngressClass bound to an IngressControllerSet (design.md).
pub const PARAMETERS_API_GROUP: &str = "sluice.dev";
pub const PARAMETERS_KIND: &str = "IngressControllerSet";
pub const PARAMETERS_SCOPE: &str = "Namespace";

/// Whether `class` is this fleet's IngressClass: our name, our controller, and parameters that
/// point at our set. Every set shares the controller string, so the parameters are what tell
/// two fleets apart.
pub fn class_is_ours(class: &IngressClass, scope: &ClassScope) -> bool {
    let Some(spec) = &class.spec else {
        return false;
    };
    let Some(parameters) = &spec.parameters else {
        return false;
    };
    class.metadata.name.as_deref() == Some(scope.class_name.as_str())
        && spec.controller.as_deref() == Some(scope.controller.as_str())
        && parameters.api_group.as_deref() == Some(PARAMETERS_API_GROUP)
        && parameters.kind == PARAMETERS_KIND
        && parameters.name == scope.set_name
        && parameters.namespace.as_deref() == Some(scope.set_namespace.as_str())
        && parameters.scope.as_deref() == Some(PARAMETERS_SCOPE)
}

/// Whether this fleet serves `ingress`.
///
/// As ingress-nginx: the legacy `kubernetes.io/ingress.class` annotation, when set, decides
/// (it must equal our class name); otherwise `spec.ingressClassName` must name our class;
/// an Ingress with neither is ours only when the set watches Ingresses without a class.
/// Unlike ingress-nginx, the annotation also requires our IngressClass to be bound to our set:
/// a set that lost its class to an older set (design.md) must not serve it through the
/// annotation either.
pub fn is_member(
    ingress: &Ingress,
    classes: &BTreeMap<String, IngressClass>,
    scope: &ClassScope,
) -> bool {
    let ours = || {
        classes
            .get(&scope.class_name)
            .is_some_and(|class| class_is_ours(class, scope))
    };
    let legacy = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
        .filter(|value| !value.is_empty());
    if let Some(legacy) = legacy {
        return *legacy == scope.class_name && ours();
    }
    match ingress
        .spec
        .as_ref()
        .and_then(|spec| spec.ingress_class_name.as_deref())
        .filter(|name| !name.is_empty())
    {
        Some(name) => name == scope.class_name && ours(),
        None => scope.watch_without_class,
    }
}
