//! Service `X`: the load balancer in front of the fleet.
//!
//! Annotations are the provider table's keys for the scheme (see [`crate::provider`]) merged
//! with `spec.loadBalancer.annotations`. On a key both set, the operator's value wins: those
//! keys decide whether the load balancer is internal or internet-facing, and a stray user
//! annotation must never silently expose an `internal` set to the internet (or contradict what
//! the set, its printer column and its status say). Overriding such a key deliberately, such
//! as the AWS target type, is what `spec.patches.service` is for.
//!
//! With server-side apply the operator owns exactly the keys it sends; a key it stops sending
//! (the scheme, the provider or a user annotation changed) is removed from the live Service,
//! while annotations other managers (a cloud controller, a person) added stay untouched.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_crds::{ExternalTrafficPolicy, IngressControllerSet};

use super::BuildContext;
use super::deployment::{HTTP_PORT_NAME, HTTPS_PORT_NAME};
use super::labels::{namespaced_meta, selector_labels};
use crate::provider::scheme_annotations;

/// The Service's annotations: user annotations, then the provider's scheme annotations over
/// them (the operator wins on a shared key; see the module docs).
pub fn service_annotations(
    set: &IngressControllerSet,
    ctx: &BuildContext,
) -> BTreeMap<String, String> {
    let mut annotations = set.spec.load_balancer.annotations.clone();
    annotations.extend(scheme_annotations(
        ctx.provider,
        set.spec.load_balancer.scheme,
    ));
    annotations
}

fn port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: number,
        // By name, so the pod's port numbers live in the Deployment only.
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

/// The fleet's load balancer Service.
pub fn desired_service(set: &IngressControllerSet, ctx: &BuildContext) -> Service {
    let lb = &set.spec.load_balancer;
    let annotations = service_annotations(set, ctx);
    let mut metadata = namespaced_meta(set);
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".to_owned()),
            selector: Some(selector_labels(set)),
            ports: Some(vec![port(HTTP_PORT_NAME, 80), port(HTTPS_PORT_NAME, 443)]),
            load_balancer_class: lb.load_balancer_class.clone(),
            load_balancer_source_ranges: (!lb.source_ranges.is_empty())
                .then(|| lb.source_ranges.clone()),
            external_traffic_policy: Some(
                match lb.external_traffic_policy {
                    ExternalTrafficPolicy::Local => "Local",
                    ExternalTrafficPolicy::Cluster => "Cluster",
                }
                .to_owned(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_crds::LoadBalancerScheme;

    use super::*;
    use crate::children::labels::{child_labels, owner_reference};
    use crate::children::test_support::{apply_body, ctx, set};
    use crate::provider::{ConcreteProvider, all_scheme_annotation_keys};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn shape() {
        for (name, ns) in [("ingress-public", "sluice-system"), ("x", "team-a")] {
            let s = set(name, ns);
            let svc = desired_service(&s, &ctx(ConcreteProvider::None));
            let body = apply_body(&svc, "v1", "Service");
            assert_eq!(body["metadata"]["name"], name);
            assert_eq!(body["metadata"]["namespace"], ns);
            assert_eq!(svc.metadata.labels, Some(child_labels(&s)));
            assert_eq!(
                svc.metadata.owner_references,
                Some(vec![owner_reference(&s)])
            );
            // No provider, no user annotations: no annotations field at all.
            assert!(body["metadata"].get("annotations").is_none());
            assert_eq!(body["spec"]["type"], "LoadBalancer");
            assert_eq!(
                body["spec"]["selector"],
                json!({"sluice.dev/set": name, "sluice.dev/set-namespace": ns})
            );
            assert_eq!(
                body["spec"]["ports"],
                json!([
                    {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
                ])
            );
            assert_eq!(body["spec"]["externalTrafficPolicy"], "Local");
            for absent in ["loadBalancerClass", "loadBalancerSourceRanges", "clusterIP"] {
                assert!(body["spec"].get(absent).is_none(), "{absent}: {body}");
            }
        }
    }

    #[test]
    fn scheme_annotations_for_every_provider() {
        for p in ConcreteProvider::ALL {
            for scheme in [
                LoadBalancerScheme::Internal,
                LoadBalancerScheme::InternetFacing,
            ] {
                let mut s = set("x", "ns");
                s.spec.load_balancer.scheme = scheme;
                let svc = desired_service(&s, &ctx(p));
                let want = scheme_annotations(p, scheme);
                let got = svc.metadata.annotations.clone().unwrap_or_default();
                assert_eq!(got, want, "{p} {scheme:?}");
            }
        }
    }

    #[test]
    fn design_examples() {
        // (provider, scheme, annotations the Service must carry)
        let cases = [
            (
                ConcreteProvider::Aws,
                LoadBalancerScheme::InternetFacing,
                map(&[
                    (
                        "service.beta.kubernetes.io/aws-load-balancer-type",
                        "external",
                    ),
                    (
                        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type",
                        "ip",
                    ),
                    (
                        "service.beta.kubernetes.io/aws-load-balancer-scheme",
                        "internet-facing",
                    ),
                ]),
            ),
            (
                ConcreteProvider::Azure,
                LoadBalancerScheme::Internal,
                map(&[(
                    "service.beta.kubernetes.io/azure-load-balancer-internal",
                    "true",
                )]),
            ),
            (
                ConcreteProvider::Gcp,
                LoadBalancerScheme::Internal,
                map(&[("networking.gke.io/load-balancer-type", "Internal")]),
            ),
        ];
        for (p, scheme, want) in cases {
            let mut s = set("x", "ns");
            s.spec.load_balancer.scheme = scheme;
            let svc = desired_service(&s, &ctx(p));
            assert_eq!(svc.metadata.annotations, Some(want), "{p} {scheme:?}");
        }
    }

    #[test]
    fn user_annotations_merge_and_operator_keys_win() {
        let scheme_key = "service.beta.kubernetes.io/aws-load-balancer-scheme";
        // (provider, scheme, user annotations, expected annotations)
        let cases = [
            // User keys are added alongside the scheme keys.
            (
                ConcreteProvider::Azure,
                LoadBalancerScheme::Internal,
                map(&[("external-dns.alpha.kubernetes.io/hostname", "a.example.com")]),
                map(&[
                    ("external-dns.alpha.kubernetes.io/hostname", "a.example.com"),
                    (
                        "service.beta.kubernetes.io/azure-load-balancer-internal",
                        "true",
                    ),
                ]),
            ),
            // A user value for a key the operator sets is overridden: an internal set stays
            // internal.
            (
                ConcreteProvider::Aws,
                LoadBalancerScheme::Internal,
                map(&[(scheme_key, "internet-facing"), ("team", "web")]),
                map(&[
                    (
                        "service.beta.kubernetes.io/aws-load-balancer-type",
                        "external",
                    ),
                    (
                        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type",
                        "ip",
                    ),
                    (scheme_key, "internal"),
                    ("team", "web"),
                ]),
            ),
            // A key the operator does not set for this provider is the user's.
            (
                ConcreteProvider::AwsLegacy,
                LoadBalancerScheme::InternetFacing,
                map(&[(
                    "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol",
                    "*",
                )]),
                map(&[
                    ("service.beta.kubernetes.io/aws-load-balancer-type", "nlb"),
                    (
                        "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol",
                        "*",
                    ),
                ]),
            ),
            // Provider none: user annotations only.
            (
                ConcreteProvider::None,
                LoadBalancerScheme::Internal,
                map(&[("metallb.universe.tf/address-pool", "private")]),
                map(&[("metallb.universe.tf/address-pool", "private")]),
            ),
        ];
        for (p, scheme, user, want) in cases {
            let mut s = set("x", "ns");
            s.spec.load_balancer.scheme = scheme;
            s.spec.load_balancer.annotations = user.clone();
            let svc = desired_service(&s, &ctx(p));
            let got = svc.metadata.annotations.expect("annotations");
            assert_eq!(got, want, "{p} {scheme:?} {user:?}");
            for key in all_scheme_annotation_keys() {
                if let Some(owned) = scheme_annotations(p, scheme).get(key) {
                    assert_eq!(got.get(key), Some(owned), "operator's {key} wins");
                }
            }
        }
    }

    #[test]
    fn load_balancer_fields() {
        // (class, source ranges, traffic policy)
        let cases = [
            (None, vec![], ExternalTrafficPolicy::Local),
            (
                Some("service.k8s.aws/nlb"),
                vec!["10.0.0.0/8", "192.168.0.0/16"],
                ExternalTrafficPolicy::Cluster,
            ),
            (None, vec!["2001:db8::/32"], ExternalTrafficPolicy::Local),
        ];
        for (class, ranges, policy) in cases {
            let mut s = set("x", "ns");
            s.spec.load_balancer.load_balancer_class = class.map(str::to_owned);
            s.spec.load_balancer.source_ranges = ranges.iter().map(|r| (*r).to_owned()).collect();
            s.spec.load_balancer.external_traffic_policy = policy;
            let svc = desired_service(&s, &ctx(ConcreteProvider::Aws));
            let body = apply_body(&svc, "v1", "Service");
            let spec = svc.spec.expect("spec");
            assert_eq!(spec.load_balancer_class.as_deref(), class);
            if ranges.is_empty() {
                assert!(spec.load_balancer_source_ranges.is_none());
            } else {
                assert_eq!(
                    spec.load_balancer_source_ranges,
                    Some(s.spec.load_balancer.source_ranges.clone())
                );
            }
            let policy = serde_json::to_value(policy).expect("json");
            assert_eq!(body["spec"]["externalTrafficPolicy"], policy);
        }
    }
}
