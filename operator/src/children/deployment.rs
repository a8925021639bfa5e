//! Deployment `X`: the fleet of data-plane pods.
//!
//! Shape decisions, each for a reason:
//! - Rolling update with `maxUnavailable: 0`, `maxSurge: 1`: an ingress fleet must never serve
//!   with fewer ready pods than asked for, so a new pod must be ready before an old one goes.
//! - Topology spread across nodes (`ScheduleAnyway`): one node failing should not take the
//!   whole fleet, but a small cluster must still be able to schedule every replica.
//! - Restricted Pod Security: the pods face the internet; non-root (65532, the distroless
//!   `nonroot` user), read-only root filesystem, no privilege escalation, no capabilities
//!   (every port is above 1024), seccomp `RuntimeDefault`.
//! - Probes on the named admin port, so the port number lives in one place.
//! - No config-hash annotation: the data plane applies ConfigMap changes live, and rolling the
//!   fleet on every `spec.proxy` edit would only drop connections.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecurityContext, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_crds::IngressControllerSet;

use super::BuildContext;
use super::labels::{child_labels, namespaced_meta, selector_labels, set_name, set_namespace};

/// Name of the data-plane container.
pub const CONTAINER_NAME: &str = "dataplane";
/// The data-plane binary; the image holds both binaries on its `PATH`.
pub const DATAPLANE_COMMAND: &str = "sluice-dataplane";
/// Plain HTTP listener in the pod (the Service's port 80 targets it by name).
pub const HTTP_PORT: i32 = 8080;
/// HTTPS listener in the pod (the Service's port 443 targets it by name).
pub const HTTPS_PORT: i32 = 8443;
/// Admin listener: `/healthz`, `/readyz`, `/metrics`.
pub const ADMIN_PORT: i32 = 10254;
/// Port names, shared with the Service's `targetPort`s and the probes.
pub const HTTP_PORT_NAME: &str = "http";
/// See [`HTTP_PORT_NAME`].
pub const HTTPS_PORT_NAME: &str = "https";
/// See [`HTTP_PORT_NAME`].
pub const ADMIN_PORT_NAME: &str = "admin";
/// The distroless `nonroot` user and group.
pub const RUN_AS_USER: i64 = 65532;
/// Time a pod gets between SIGTERM and SIGKILL to drain its connections.
pub const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 60;

/// The data-plane command line: which class it serves, which ConfigMap it reads, which Service's
/// load-balancer address it publishes into Ingress status. Every other flag keeps its default,
/// which matches the ports above.
pub fn dataplane_args(set: &IngressControllerSet) -> Vec<String> {
    let own = format!("{}/{}", set_namespace(set), set_name(set));
    vec![
        "--ingress-class".to_owned(),
        set.spec.ingress_class_name.clone(),
        "--config-map".to_owned(),
        own.clone(),
        "--publish-service".to_owned(),
        own,
    ]
}

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn admin_get(path: &str) -> Option<HTTPGetAction> {
    Some(HTTPGetAction {
        path: Some(path.to_owned()),
        port: IntOrString::String(ADMIN_PORT_NAME.to_owned()),
        scheme: Some("HTTP".to_owned()),
        ..HTTPGetAction::default()
    })
}

/// Downward-API variables, as ingress-nginx sets them: the pod name is the data plane's
/// identity in its leader-election Lease, the namespace is where its own objects live.
fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn container(set: &IngressControllerSet, ctx: &BuildContext) -> Container {
    Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(ctx.image.clone()),
        image_pull_policy: ctx.image_pull_policy.clone(),
        command: Some(vec![DATAPLANE_COMMAND.to_owned()]),
        args: Some(dataplane_args(set)),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(vec![
            port(HTTP_PORT_NAME, HTTP_PORT),
            port(HTTPS_PORT_NAME, HTTPS_PORT),
            port(ADMIN_PORT_NAME, ADMIN_PORT),
        ]),
        // Readiness is checked often so a pod joins (and leaves) the load balancer quickly.
        readiness_probe: Some(Probe {
            http_get: admin_get("/readyz"),
            period_seconds: Some(5),
            timeout_seconds: Some(1),
            success_threshold: Some(1),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // Liveness is lenient (ingress-nginx's values): a restart drops every connection of
        // the pod, so only a data plane that stays wedged for ~50s is restarted.
        liveness_probe: Some(Probe {
            http_get: admin_get("/healthz"),
            initial_delay_seconds: Some(10),
            period_seconds: Some(10),
            timeout_seconds: Some(1),
            success_threshold: Some(1),
            failure_threshold: Some(5),
            ..Probe::default()
        }),
        resources: set
            .spec
            .pod
            .resources
            .clone()
            .filter(|r| *r != Default::default()),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The fleet's Deployment. `spec.replicas` comes from the set, so `kubectl scale ics` and an
/// HPA on the set's scale subresource drive it; the selector is [`selector_labels`], which is
/// also what `status.selector` reports.
pub fn desired_deployment(set: &IngressControllerSet, ctx: &BuildContext) -> Deployment {
    let pod = &set.spec.pod;
    let selector = LabelSelector {
        match_labels: Some(selector_labels(set)),
        ..LabelSelector::default()
    };
    Deployment {
        metadata: namespaced_meta(set),
        spec: Some(DeploymentSpec {
            replicas: Some(set.spec.replicas),
            selector: selector.clone(),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(child_labels(set)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(set_name(set)),
                    // The data plane talks to the API server with this account's token.
                    automount_service_account_token: Some(true),
                    // Service links would put every Service of the namespace into the
                    // environment; the data plane reads nothing from it.
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(TERMINATION_GRACE_PERIOD_SECONDS),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS_USER),
                        run_as_group: Some(RUN_AS_USER),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container(set, ctx)],
                    node_selector: (!pod.node_selector.is_empty())
                        .then(|| pod.node_selector.clone()),
                    tolerations: (!pod.tolerations.is_empty()).then(|| pod.tolerations.clone()),
                    affinity: pod.affinity.clone().filter(|a| *a != Default::default()),
                    topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: "kubernetes.io/hostname".to_owned(),
                        when_unsatisfiable: "ScheduleAnyway".to_owned(),
                        label_selector: Some(selector),
                        ..TopologySpreadConstraint::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
        ResourceRequirements, Toleration,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use serde_json::json;

    use super::*;
    use crate::children::labels::{owner_reference, selector_string};
    use crate::children::test_support::{apply_body, ctx, set};
    use crate::provider::ConcreteProvider;

    fn build(name: &str, ns: &str) -> Deployment {
        desired_deployment(&set(name, ns), &ctx(ConcreteProvider::Aws))
    }

    fn pod_spec(d: &Deployment) -> &PodSpec {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod spec")
    }

    fn the_container(d: &Deployment) -> &Container {
        let containers = &pod_spec(d).containers;
        assert_eq!(containers.len(), 1);
        &containers[0]
    }

    #[test]
    fn names_labels_owner() {
        for (name, ns) in [("ingress-public", "sluice-system"), ("x", "team-a")] {
            let s = set(name, ns);
            let d = desired_deployment(&s, &ctx(ConcreteProvider::None));
            let body = apply_body(&d, "apps/v1", "Deployment");
            assert_eq!(body["metadata"]["name"], name);
            assert_eq!(body["metadata"]["namespace"], ns);
            assert_eq!(d.metadata.labels, Some(child_labels(&s)));
            assert_eq!(d.metadata.owner_references, Some(vec![owner_reference(&s)]));
            assert!(d.metadata.annotations.is_none());
            let template = d.spec.as_ref().expect("spec").template.metadata.as_ref();
            let template = template.expect("template metadata");
            assert_eq!(template.labels, Some(child_labels(&s)));
            assert!(
                template.annotations.is_none(),
                "no config-hash or other annotation"
            );
            assert!(
                !body.to_string().contains("app.kubernetes.io/instance"),
                "{body}"
            );
        }
    }

    #[test]
    fn selector_matches_selector_string_and_pod_labels() {
        for (name, ns) in [("ingress-public", "sluice-system"), ("a", "b")] {
            let s = set(name, ns);
            let d = desired_deployment(&s, &ctx(ConcreteProvider::None));
            let spec = d.spec.as_ref().expect("spec");
            let match_labels = spec.selector.match_labels.as_ref().expect("matchLabels");
            assert!(spec.selector.match_expressions.is_none());
            assert_eq!(match_labels, &selector_labels(&s));
            let as_string = match_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            assert_eq!(as_string, selector_string(&s));
            let pod_labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref());
            let pod_labels = pod_labels.expect("pod labels");
            assert!(
                match_labels
                    .iter()
                    .all(|(k, v)| pod_labels.get(k) == Some(v))
            );
        }
    }

    #[test]
    fn replicas_follow_the_set() {
        for replicas in [0, 1, 2, 7] {
            let mut s = set("x", "ns");
            s.spec.replicas = replicas;
            let d = desired_deployment(&s, &ctx(ConcreteProvider::None));
            assert_eq!(d.spec.expect("spec").replicas, Some(replicas));
        }
    }

    #[test]
    fn container_command_args_image() {
        // (set name, namespace, class, pull policy)
        let cases = [
            ("ingress-public", "sluice-system", "public", None),
            ("ingress-private", "edge", "private", Some("IfNotPresent")),
        ];
        for (name, ns, class, pull) in cases {
            let mut s = set(name, ns);
            s.spec.ingress_class_name = class.to_owned();
            let mut c = ctx(ConcreteProvider::Azure);
            c.image = format!("registry.example/sluice:{name}");
            c.image_pull_policy = pull.map(str::to_owned);
            let d = desired_deployment(&s, &c);
            let container = the_container(&d);
            assert_eq!(container.name, "dataplane");
            assert_eq!(container.image.as_deref(), Some(c.image.as_str()));
            assert_eq!(container.image_pull_policy.as_deref(), pull);
            assert_eq!(container.command, Some(vec!["sluice-dataplane".to_owned()]));
            let own = format!("{ns}/{name}");
            let want: Vec<String> = [
                "--ingress-class",
                class,
                "--config-map",
                &own,
                "--publish-service",
                &own,
            ]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
            assert_eq!(container.args.as_ref(), Some(&want));
        }
    }

    #[test]
    fn ports_and_probes() {
        let d = build("x", "ns");
        let body = serde_json::to_value(the_container(&d)).expect("json");
        assert_eq!(
            body["ports"],
            json!([
                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"name": "https", "containerPort": 8443, "protocol": "TCP"},
                {"name": "admin", "containerPort": 10254, "protocol": "TCP"},
            ])
        );
        // (probe, path)
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            assert_eq!(
                body[probe]["httpGet"],
                json!({"path": path, "port": "admin", "scheme": "HTTP"}),
                "{probe}"
            );
        }
        // Liveness must be more patient than readiness: restarting drops connections.
        let budget = |p: &str| {
            body[p]["periodSeconds"].as_i64().expect("period")
                * body[p]["failureThreshold"].as_i64().expect("threshold")
        };
        assert!(budget("livenessProbe") > budget("readinessProbe"));
        assert_eq!(
            body["env"],
            json!([
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ])
        );
    }

    #[test]
    fn restricted_pod_security() {
        let d = build("x", "ns");
        let pod = pod_spec(&d);
        assert_eq!(pod.service_account_name.as_deref(), Some("x"));
        assert_eq!(pod.automount_service_account_token, Some(true));
        assert!(pod.host_network.is_none() && pod.host_pid.is_none() && pod.host_ipc.is_none());
        assert!(pod.volumes.is_none(), "no hostPath or other volumes");
        let psc = serde_json::to_value(pod.security_context.as_ref().expect("pod sc")).unwrap();
        assert_eq!(
            psc,
            json!({
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            })
        );
        let csc = the_container(&d)
            .security_context
            .as_ref()
            .expect("container sc");
        let csc = serde_json::to_value(csc).expect("json");
        assert_eq!(
            csc,
            json!({
                "runAsNonRoot": true,
                "readOnlyRootFilesystem": true,
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
            })
        );
    }

    #[test]
    fn rollout_never_drops_below_desired() {
        let d = build("x", "ns");
        let spec = d.spec.as_ref().expect("spec");
        let strategy = serde_json::to_value(spec.strategy.as_ref().expect("strategy")).unwrap();
        assert_eq!(
            strategy,
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
        );
        let pod = pod_spec(&d);
        assert_eq!(pod.termination_grace_period_seconds, Some(60));
        let spread =
            serde_json::to_value(pod.topology_spread_constraints.as_ref().unwrap()).expect("json");
        assert_eq!(
            spread,
            json!([{
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"sluice.dev/set": "x", "sluice.dev/set-namespace": "ns"}},
            }])
        );
    }

    #[test]
    fn placement_and_resources_from_spec_pod() {
        let resources = ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("100m".to_owned())),
                ("memory".to_owned(), Quantity("64Mi".to_owned())),
            ])),
            ..ResourceRequirements::default()
        };
        let toleration = Toleration {
            key: Some("dedicated".to_owned()),
            operator: Some("Equal".to_owned()),
            value: Some("ingress".to_owned()),
            effect: Some("NoSchedule".to_owned()),
            ..Toleration::default()
        };
        let affinity = Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "zone".to_owned(),
                            operator: "In".to_owned(),
                            values: Some(vec!["a".to_owned()]),
                        }]),
                        ..NodeSelectorTerm::default()
                    }],
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        };
        let node_selector = BTreeMap::from([("role".to_owned(), "edge".to_owned())]);

        // Unset, and set-but-empty, both leave the fields out of the apply body.
        for empty in [None, Some(ResourceRequirements::default())] {
            let mut s = set("x", "ns");
            s.spec.pod.resources = empty;
            s.spec.pod.affinity = Some(Affinity::default());
            let d = desired_deployment(&s, &ctx(ConcreteProvider::None));
            let pod = pod_spec(&d);
            assert!(the_container(&d).resources.is_none());
            assert!(pod.node_selector.is_none() && pod.tolerations.is_none());
            assert!(pod.affinity.is_none());
            apply_body(&d, "apps/v1", "Deployment");
        }

        let mut s = set("x", "ns");
        s.spec.pod.resources = Some(resources.clone());
        s.spec.pod.node_selector = node_selector.clone();
        s.spec.pod.tolerations = vec![toleration.clone()];
        s.spec.pod.affinity = Some(affinity.clone());
        let d = desired_deployment(&s, &ctx(ConcreteProvider::None));
        let pod = pod_spec(&d);
        assert_eq!(the_container(&d).resources.as_ref(), Some(&resources));
        assert_eq!(pod.node_selector.as_ref(), Some(&node_selector));
        assert_eq!(pod.tolerations.as_deref(), Some(&[toleration][..]));
        assert_eq!(pod.affinity.as_ref(), Some(&affinity));
        // The user's affinity does not replace the spread constraint.
        assert!(pod.topology_spread_constraints.is_some());
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            serde_json::to_string(&build("x", "ns")).unwrap(),
            serde_json::to_string(&build("x", "ns")).unwrap()
        );
    }
}
