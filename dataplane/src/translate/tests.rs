//! Table-driven tests of the translation, built from the objects' JSON as the API returns it.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::*;
use crate::model::{Endpoint, PathKind, PortRef};

const NS: &str = "apps";
const SET_NS: &str = "sluice-system";
const SET: &str = "ingress-public";
const CLASS: &str = "public";

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("test object")
}

/// An IngressClass bound to a set.
fn ingress_class(name: &str, controller: &str, set_ns: &str, set: &str) -> IngressClass {
    from_json(json!({
        "metadata": {"name": name},
        "spec": {
            "controller": controller,
            "parameters": {
                "apiGroup": "sluice.dev",
                "kind": "IngressControllerSet",
                "name": set,
                "namespace": set_ns,
                "scope": "Namespace"
            }
        }
    }))
}

/// An Ingress created `created` seconds after an arbitrary epoch, in the public class unless
/// `spec` says otherwise (`"ingressClassName": null` removes it).
fn ingress(name: &str, created: i64, annotations: Value, spec: Value) -> Ingress {
    ingress_in(NS, name, created, annotations, spec)
}

fn ingress_in(ns: &str, name: &str, created: i64, annotations: Value, spec: Value) -> Ingress {
    let created = Timestamp::from_second(1_700_000_000 + created).expect("timestamp");
    let mut full_spec = json!({"ingressClassName": CLASS});
    if let (Some(full), Some(given)) = (full_spec.as_object_mut(), spec.as_object()) {
        for (key, value) in given {
            full.insert(key.clone(), value.clone());
        }
    }
    from_json(json!({
        "metadata": {
            "namespace": ns,
            "name": name,
            "creationTimestamp": created.to_string(),
            "annotations": annotations,
        },
        "spec": full_spec,
    }))
}

/// `{host, paths: [(path, pathType, service, port)]}` as one rule.
fn rule(host: &str, paths: &[(&str, &str, &str, Value)]) -> Value {
    let paths: Vec<Value> = paths
        .iter()
        .map(|(path, kind, service, port)| {
            json!({
                "path": path,
                "pathType": kind,
                "backend": {"service": {"name": service, "port": port}}
            })
        })
        .collect();
    let mut rule = json!({"http": {"paths": paths}});
    if !host.is_empty() {
        rule["host"] = json!(host);
    }
    rule
}

fn num(port: u16) -> Value {
    json!({"number": port})
}

fn named(port: &str) -> Value {
    json!({"name": port})
}

/// A ClusterIP Service with ports `(name, port, targetPort)`.
fn service(name: &str, ports: &[(&str, i32, Value)]) -> Service {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, port, target)| {
            let mut p = json!({"port": port, "targetPort": target, "protocol": "TCP"});
            if !name.is_empty() {
                p["name"] = json!(name);
            }
            p
        })
        .collect();
    from_json(json!({
        "metadata": {"namespace": NS, "name": name},
        "spec": {"type": "ClusterIP", "ports": ports}
    }))
}

/// An EndpointSlice of `service` with ports `(name, port)` and endpoints
/// `(ip, conditions)`; conditions `null` leaves them all unset.
fn slice(
    name: &str,
    service: &str,
    ports: &[(&str, i32)],
    endpoints: &[(&str, Value)],
) -> EndpointSlice {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, port)| json!({"name": name, "port": port, "protocol": "TCP"}))
        .collect();
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, conditions)| json!({"addresses": [ip], "conditions": conditions}))
        .collect();
    from_json(json!({
        "metadata": {
            "namespace": NS,
            "name": name,
            "labels": {"kubernetes.io/service-name": service}
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints
    }))
}

fn ready() -> Value {
    json!({"ready": true, "serving": true, "terminating": false})
}

/// A cluster with our class, and Services `svc-a`..`svc-e` on port 80 (name `http`, target
/// 8080), each with one ready endpoint 10.0.0.<n>.
struct World {
    state: ClusterState,
    scope: ClassScope,
}

impl World {
    fn new() -> Self {
        let mut state = ClusterState::default();
        state.upsert_ingress_class(ingress_class(CLASS, CONTROLLER_NAME, SET_NS, SET));
        for (n, name) in ["svc-a", "svc-b", "svc-c", "svc-d", "svc-e"]
            .iter()
            .enumerate()
        {
            state.upsert_service(service(name, &[("http", 80, json!(8080))]));
            let ip = format!("10.0.0.{}", n + 1);
            state.upsert_endpoint_slice(slice(
                &format!("{name}-abcde"),
                name,
                &[("http", 8080)],
                &[(&ip, ready())],
            ));
        }
        World {
            state,
            scope: ClassScope::new(CLASS, SET_NS, SET),
        }
    }

    fn with(mut self, ingress: Ingress) -> Self {
        self.state.upsert_ingress(ingress);
        self
    }

    fn run(&self) -> (Snapshot, Vec<Problem>) {
        translate(&self.state, &self.scope)
    }

    /// Translates and asserts there were no problems.
    fn clean(&self) -> Snapshot {
        let (snapshot, problems) = self.run();
        assert_eq!(problems, vec![], "unexpected problems");
        snapshot
    }
}

/// The Service name that serves (host, path), if any route or host default does.
fn served(snapshot: &Snapshot, host: &str, path: &str) -> Option<String> {
    snapshot
        .route(host, path)
        .map(|m| m.backend().service().name.clone())
}

fn addrs(endpoints: &[Endpoint]) -> Vec<String> {
    endpoints.iter().map(|e| e.addr.to_string()).collect()
}

fn problem(ingress: &str, field: &str, reason_contains: &str) -> (String, String, String) {
    (
        ingress.to_owned(),
        field.to_owned(),
        reason_contains.to_owned(),
    )
}

/// Asserts the problems are exactly these (Ingress name, field, a part of the reason).
fn assert_problems(problems: &[Problem], want: &[(String, String, String)]) {
    let got: Vec<(String, String, String)> = problems
        .iter()
        .map(|p| {
            let name = match &p.object {
                ProblemObject::Ingress(i) => i.name.to_string(),
                ProblemObject::IngressControllerSet { name, .. } => format!("set:{name}"),
            };
            (name, p.field.clone(), p.reason.clone())
        })
        .collect();
    assert_eq!(got.len(), want.len(), "problems: {got:#?}");
    for ((gn, gf, gr), (wn, wf, wr)) in got.iter().zip(want) {
        assert_eq!((gn, gf), (wn, wf), "problems: {got:#?}");
        assert!(gr.contains(wr.as_str()), "reason {gr:?} lacks {wr:?}");
    }
}

#[test]
fn conformance_path_rules() {
    // The ingress-controller-conformance `path_rules.feature` Ingress, through translation.
    let world = World::new().with(ingress(
        "path-rules",
        0,
        json!({}),
        json!({"rules": [
            rule("exact-path-rules", &[("/foo", "Exact", "svc-a", num(80))]),
            rule("prefix-path-rules", &[
                ("/foo", "Prefix", "svc-b", num(80)),
                ("/aaa/bbb", "Prefix", "svc-c", num(80)),
                ("/aaa", "Prefix", "svc-d", num(80)),
            ]),
            rule("mixed-path-rules", &[
                ("/foo", "Prefix", "svc-b", num(80)),
                ("/foo", "Exact", "svc-a", num(80)),
            ]),
            rule("trailing-slash-path-rules", &[
                ("/aaa/bbb/", "Prefix", "svc-e", num(80)),
                ("/foo/", "Exact", "svc-a", num(80)),
            ]),
        ]}),
    ));
    let snapshot = world.clean();
    let cases = [
        ("exact-path-rules", "/foo", Some("svc-a")),
        ("exact-path-rules", "/foo/", None),
        ("exact-path-rules", "/FOO", None),
        ("exact-path-rules", "/bar", None),
        ("prefix-path-rules", "/foo", Some("svc-b")),
        ("prefix-path-rules", "/foo/", Some("svc-b")),
        ("prefix-path-rules", "/FOO", None),
        ("prefix-path-rules", "/aaa/bbb", Some("svc-c")),
        ("prefix-path-rules", "/aaa/bbb/ccc", Some("svc-c")),
        ("prefix-path-rules", "/aaa/bbbxyz", Some("svc-d")),
        ("prefix-path-rules", "/aaa/ccc", Some("svc-d")),
        ("prefix-path-rules", "/aaaccc", None),
        ("mixed-path-rules", "/foo", Some("svc-a")),
        ("mixed-path-rules", "/foo/x", Some("svc-b")),
        ("trailing-slash-path-rules", "/aaa/bbb", Some("svc-e")),
        ("trailing-slash-path-rules", "/aaa/bbb/", Some("svc-e")),
        ("trailing-slash-path-rules", "/foo", None),
        ("trailing-slash-path-rules", "/foo/", Some("svc-a")),
        ("unknown-host", "/foo", None),
    ];
    for (host, path, want) in cases {
        assert_eq!(
            served(&snapshot, host, path).as_deref(),
            want,
            "{host}{path}"
        );
    }
    // Routes carry the Ingress they came from.
    let m = snapshot.route("prefix-path-rules", "/aaa").expect("route");
    assert_eq!(m.source(), &IngressRef::new(NS, "path-rules"));
    assert_eq!(m.route().map(|r| r.kind), Some(PathKind::Prefix));
}

#[test]
fn host_rules() {
    let world = World::new()
        .with(ingress(
            "wild",
            0,
            json!({}),
            json!({"rules": [rule("*.foo.com", &[("/", "Prefix", "svc-a", num(80))])]}),
        ))
        .with(ingress(
            "exact",
            1,
            json!({}),
            json!({"rules": [
                rule("bar.foo.com", &[("/", "Prefix", "svc-b", num(80))]),
                rule("FOO.com", &[("/", "Prefix", "svc-c", num(80))]),
            ]}),
        ))
        .with(ingress(
            "any",
            2,
            json!({}),
            json!({"rules": [rule("", &[("/", "Prefix", "svc-d", num(80))])]}),
        ));
    let snapshot = world.clean();
    let cases = [
        ("bar.foo.com", Some("svc-b")),
        ("baz.foo.com", Some("svc-a")),
        ("BAZ.foo.com:8080", Some("svc-a")),
        ("baz.bar.foo.com", Some("svc-d")),
        ("foo.com", Some("svc-c")),
        ("foo.com.", Some("svc-c")),
        ("other.example", Some("svc-d")),
        ("", Some("svc-d")),
    ];
    for (host, want) in cases {
        assert_eq!(served(&snapshot, host, "/x").as_deref(), want, "{host}");
    }
    assert_eq!(
        snapshot
            .hosts()
            .map(|h| h.host.as_str())
            .collect::<Vec<_>>(),
        ["bar.foo.com", "foo.com", "*.foo.com", ""]
    );
}

#[test]
fn implementation_specific_plain_and_regex_mode() {
    struct Case {
        name: &'static str,
        annotations: Value,
        other_annotations: Value,
        want_regex: bool,
        want_problems: usize,
    }
    let cases = [
        Case {
            name: "no annotation: plain string prefix",
            annotations: json!({}),
            other_annotations: json!({}),
            want_regex: false,
            want_problems: 0,
        },
        Case {
            name: "nginx use-regex",
            annotations: json!({"nginx.ingress.kubernetes.io/use-regex": "true"}),
            other_annotations: json!({}),
            want_regex: true,
            want_problems: 0,
        },
        Case {
            name: "sluice use-regex",
            annotations: json!({"sluice.dev/use-regex": "true"}),
            other_annotations: json!({}),
            want_regex: true,
            want_problems: 0,
        },
        Case {
            name: "sluice.dev wins over nginx",
            annotations: json!({
                "sluice.dev/use-regex": "false",
                "nginx.ingress.kubernetes.io/use-regex": "true"
            }),
            other_annotations: json!({}),
            want_regex: false,
            want_problems: 0,
        },
        Case {
            name: "rewrite-target alone enables regex mode",
            annotations: json!({"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}),
            other_annotations: json!({}),
            want_regex: true,
            want_problems: 0,
        },
        Case {
            name: "another Ingress on the same host enables it for every path",
            annotations: json!({}),
            other_annotations: json!({"sluice.dev/rewrite-target": "/"}),
            want_regex: true,
            want_problems: 0,
        },
        Case {
            name: "an invalid boolean is a problem and means false",
            annotations: json!({"nginx.ingress.kubernetes.io/use-regex": "yes"}),
            other_annotations: json!({}),
            want_regex: false,
            want_problems: 1,
        },
    ];
    for case in cases {
        let world = World::new()
            .with(ingress(
                "api",
                0,
                case.annotations,
                json!({"rules": [
                    rule("h.example", &[("/api(/|$)(.*)", "ImplementationSpecific", "svc-a", num(80))]),
                ]}),
            ))
            .with(ingress(
                "plain",
                2,
                json!({}),
                json!({"rules": [
                    rule("other.example", &[("/api", "ImplementationSpecific", "svc-c", num(80))]),
                ]}),
            ))
            .with(ingress(
                "web",
                1,
                case.other_annotations,
                json!({"rules": [rule("h.example", &[("/", "Prefix", "svc-b", num(80))])]}),
            ));
        let (snapshot, problems) = world.run();
        assert_eq!(
            problems.len(),
            case.want_problems,
            "{}: {problems:?}",
            case.name
        );
        let host = &snapshot.exact_hosts["h.example"];
        assert_eq!(host.regex_mode, case.want_regex, "{}", case.name);
        // Regex mode is per host: the other host keeps plain prefixes.
        assert!(
            !snapshot.exact_hosts["other.example"].regex_mode,
            "{}",
            case.name
        );
        assert_eq!(
            served(&snapshot, "other.example", "/apiv2").as_deref(),
            Some("svc-c"),
            "{}",
            case.name
        );
        let api_v1 = served(&snapshot, "h.example", "/API/v1");
        let plain = served(&snapshot, "h.example", "/api(/|$)(.*)/x");
        if case.want_regex {
            assert_eq!(api_v1.as_deref(), Some("svc-a"), "{}", case.name);
            assert_eq!(
                served(&snapshot, "h.example", "/apiv2").as_deref(),
                Some("svc-b")
            );
        } else {
            // Plain mode: the path is a literal string prefix, case-sensitive.
            assert_eq!(api_v1.as_deref(), Some("svc-b"), "{}", case.name);
            assert_eq!(plain.as_deref(), Some("svc-a"), "{}", case.name);
        }
    }
}

#[test]
fn invalid_use_regex_problem_field() {
    let world = World::new().with(ingress(
        "bad",
        0,
        json!({"sluice.dev/use-regex": "maybe", "nginx.ingress.kubernetes.io/use-regex": "true"}),
        json!({"rules": [rule("h.example", &[("/", "Prefix", "svc-a", num(80))])]}),
    ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[problem(
            "bad",
            "metadata.annotations['sluice.dev/use-regex']",
            "invalid value \"maybe\": expected true or false",
        )],
    );
    assert!(!snapshot.exact_hosts["h.example"].regex_mode);
}

#[test]
fn merging_across_ingresses_oldest_wins() {
    // "zz-old" is older than "aa-new" although it sorts later by name.
    let world = World::new()
        .with(ingress(
            "aa-new",
            100,
            json!({}),
            json!({"rules": [rule("shop.example", &[
                ("/cart", "Prefix", "svc-b", num(80)),
                ("/pay", "Prefix", "svc-b", num(80)),
            ])]}),
        ))
        .with(ingress(
            "zz-old",
            10,
            json!({}),
            json!({"rules": [rule("shop.example", &[
                ("/cart/", "Prefix", "svc-a", num(80)),
                ("/", "Prefix", "svc-a", num(80)),
            ])]}),
        ));
    let (snapshot, problems) = world.run();
    assert_eq!(
        served(&snapshot, "shop.example", "/cart/1").as_deref(),
        Some("svc-a")
    );
    assert_eq!(
        served(&snapshot, "shop.example", "/pay").as_deref(),
        Some("svc-b")
    );
    assert_eq!(
        served(&snapshot, "shop.example", "/").as_deref(),
        Some("svc-a")
    );
    assert_problems(
        &problems,
        &[problem(
            "aa-new",
            "spec.rules[0].http.paths[0]",
            "already routed by Ingress apps/zz-old, which is older (as \"/cart/\"",
        )],
    );
}

#[test]
fn same_creation_time_tie_breaks_by_namespace_then_name() {
    let paths = json!({"rules": [rule("t.example", &[("/", "Prefix", "svc-a", num(80))])]});
    let mut world = World::new()
        .with(ingress("b", 5, json!({}), paths.clone()))
        .with(ingress(
            "a",
            5,
            json!({}),
            json!({"rules": [
                rule("t.example", &[("/", "Prefix", "svc-b", num(80))])
            ]}),
        ));
    let (snapshot, problems) = world.run();
    assert_eq!(
        served(&snapshot, "t.example", "/").as_deref(),
        Some("svc-b")
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].ingress(), Some(&IngressRef::new(NS, "b")));

    // A namespace that sorts first wins over both. Its Service must exist there.
    let mut svc = service("svc-c", &[("http", 80, json!(8080))]);
    svc.metadata.namespace = Some("aaa".into());
    world.state.upsert_service(svc);
    world.state.upsert_ingress(ingress_in(
        "aaa",
        "z",
        5,
        json!({}),
        json!({"rules": [rule("t.example", &[("/", "Prefix", "svc-c", num(80))])]}),
    ));
    let (snapshot, _) = world.run();
    assert_eq!(
        served(&snapshot, "t.example", "/").as_deref(),
        Some("svc-c")
    );
}

#[test]
fn duplicate_within_one_ingress() {
    let world = World::new().with(ingress(
        "dup",
        0,
        json!({}),
        json!({"rules": [
            rule("d.example", &[("/x", "Exact", "svc-a", num(80))]),
            rule("d.example", &[("/x", "Exact", "svc-b", num(80))]),
        ]}),
    ));
    let (snapshot, problems) = world.run();
    assert_eq!(
        served(&snapshot, "d.example", "/x").as_deref(),
        Some("svc-a")
    );
    assert_problems(
        &problems,
        &[problem(
            "dup",
            "spec.rules[1].http.paths[0]",
            "an earlier path of this Ingress",
        )],
    );
}

#[test]
fn ingress_default_backend_serves_its_hosts() {
    let world = World::new()
        .with(ingress(
            "old",
            0,
            json!({}),
            json!({
                "defaultBackend": {"service": {"name": "svc-a", "port": {"number": 80}}},
                "rules": [rule("d.example", &[("/api", "Prefix", "svc-b", num(80))])]
            }),
        ))
        .with(ingress(
            "new",
            1,
            json!({}),
            json!({
                "defaultBackend": {"service": {"name": "svc-c", "port": {"number": 80}}},
                "rules": [
                    rule("d.example", &[("/web", "Prefix", "svc-d", num(80))]),
                    {"host": "e.example"},
                    rule("", &[("/hostless", "Prefix", "svc-e", num(80))]),
                ]
            }),
        ));
    let (snapshot, problems) = world.run();
    let cases = [
        ("d.example", "/api", Some("svc-b")),
        ("d.example", "/web", Some("svc-d")),
        // The older Ingress's defaultBackend wins the shared host.
        ("d.example", "/other", Some("svc-a")),
        // A host with no paths uses its Ingress's defaultBackend.
        ("e.example", "/anything", Some("svc-c")),
        // Host-less rules do not pick up the Ingress's defaultBackend (as ingress-nginx).
        ("x.example", "/hostless", Some("svc-e")),
        ("x.example", "/other", None),
    ];
    for (host, path, want) in cases {
        assert_eq!(
            served(&snapshot, host, path).as_deref(),
            want,
            "{host}{path}"
        );
    }
    let m = snapshot.route("d.example", "/other").expect("default");
    assert!(m.route().is_none());
    assert_eq!(m.source(), &IngressRef::new(NS, "old"));
    assert_problems(
        &problems,
        &[problem(
            "new",
            "spec.defaultBackend",
            "not used for host \"d.example\": it already uses the defaultBackend of Ingress apps/old",
        )],
    );
}

#[test]
fn catch_all_ingress_and_disable_catch_all() {
    let catch_all = |name: &str, created: i64, svc: &str| {
        ingress(
            name,
            created,
            json!({}),
            json!({"defaultBackend": {"service": {"name": svc, "port": {"number": 80}}}}),
        )
    };
    let hostless = ingress(
        "hostless",
        5,
        json!({}),
        json!({"rules": [rule("", &[("/api", "Prefix", "svc-c", num(80))])]}),
    );
    let mut world = World::new()
        .with(catch_all("second", 2, "svc-b"))
        .with(catch_all("first", 1, "svc-a"))
        .with(hostless);

    let (snapshot, problems) = world.run();
    assert_eq!(
        served(&snapshot, "any.example", "/").as_deref(),
        Some("svc-a")
    );
    assert_eq!(
        served(&snapshot, "any.example", "/api/x").as_deref(),
        Some("svc-c")
    );
    assert_problems(
        &problems,
        &[problem(
            "second",
            "spec.defaultBackend",
            "the catch-all already uses the defaultBackend of Ingress apps/first",
        )],
    );

    world.scope.disable_catch_all = true;
    let (snapshot, problems) = world.run();
    assert_eq!(served(&snapshot, "any.example", "/").as_deref(), None);
    // Host-less rules are not catch-all Ingresses: still served.
    assert_eq!(
        served(&snapshot, "any.example", "/api/x").as_deref(),
        Some("svc-c")
    );
    assert_problems(
        &problems,
        &[
            problem(
                "first",
                "spec.defaultBackend",
                "disables catch-all Ingresses",
            ),
            problem(
                "second",
                "spec.defaultBackend",
                "disables catch-all Ingresses",
            ),
        ],
    );
    // Still members of the class (their status is still ours to publish).
    assert_eq!(snapshot.ingresses.len(), 3);
}

#[test]
fn set_default_backend() {
    let mut world = World::new();
    world.scope.default_backend = Some(ServiceRef {
        namespace: NS.into(),
        name: "svc-e".into(),
        port: PortRef::Name("http".into()),
    });
    let snapshot = world.clean();
    let backend = snapshot
        .default_backend
        .as_ref()
        .expect("set default backend");
    assert_eq!(backend.service().name, "svc-e");
    assert_eq!(addrs(backend.endpoints()), ["10.0.0.5:8080"]);
    // It is the caller's fallback, not a route.
    assert!(snapshot.route("x.example", "/").is_none());

    world.scope.default_backend = Some(ServiceRef {
        namespace: SET_NS.into(),
        name: "fallback".into(),
        port: PortRef::Number(8080),
    });
    let (snapshot, problems) = world.run();
    assert!(snapshot.default_backend.is_none());
    assert_problems(
        &problems,
        &[problem(
            "set:ingress-public",
            "spec.defaultBackend.service.name",
            "Service sluice-system/fallback not found",
        )],
    );
}

#[test]
fn class_selection() {
    struct Case {
        name: &'static str,
        class_name: Option<&'static str>,
        legacy: Option<&'static str>,
        watch_without_class: bool,
        member: bool,
    }
    let cases = [
        Case {
            name: "ingressClassName naming our class",
            class_name: Some(CLASS),
            legacy: None,
            watch_without_class: false,
            member: true,
        },
        Case {
            name: "ingressClassName naming another class",
            class_name: Some("private"),
            legacy: None,
            watch_without_class: false,
            member: false,
        },
        Case {
            name: "a class of another controller",
            class_name: Some("nginx"),
            legacy: None,
            watch_without_class: true,
            member: false,
        },
        Case {
            name: "a class pointing at another set",
            class_name: Some("other-set"),
            legacy: None,
            watch_without_class: false,
            member: false,
        },
        Case {
            name: "a class pointing at our set name in another namespace",
            class_name: Some("other-ns"),
            legacy: None,
            watch_without_class: false,
            member: false,
        },
        Case {
            name: "a class that does not exist",
            class_name: Some("missing"),
            legacy: None,
            watch_without_class: true,
            member: false,
        },
        Case {
            name: "legacy annotation equal to our class",
            class_name: None,
            legacy: Some(CLASS),
            watch_without_class: false,
            member: true,
        },
        Case {
            name: "legacy annotation of another class",
            class_name: None,
            legacy: Some("private"),
            watch_without_class: true,
            member: false,
        },
        Case {
            name: "legacy annotation wins over ingressClassName",
            class_name: Some("private"),
            legacy: Some(CLASS),
            watch_without_class: false,
            member: true,
        },
        Case {
            name: "no class, watchIngressWithoutClass off",
            class_name: None,
            legacy: None,
            watch_without_class: false,
            member: false,
        },
        Case {
            name: "no class, watchIngressWithoutClass on",
            class_name: None,
            legacy: None,
            watch_without_class: true,
            member: true,
        },
    ];
    for case in cases {
        let mut world = World::new();
        world.scope.watch_without_class = case.watch_without_class;
        for class in [
            ingress_class("private", CONTROLLER_NAME, SET_NS, "ingress-private"),
            ingress_class("nginx", "k8s.io/ingress-nginx", SET_NS, SET),
            // A class whose parameters point at another set, and one at our set's name in
            // another namespace: both must be refused although the controller is ours.
            ingress_class("other-set", CONTROLLER_NAME, SET_NS, "ingress-private"),
            ingress_class("other-ns", CONTROLLER_NAME, "elsewhere", SET),
        ] {
            world.state.upsert_ingress_class(class);
        }
        let annotations = match case.legacy {
            Some(class) => json!({"kubernetes.io/ingress.class": class}),
            None => json!({}),
        };
        let world = world.with(ingress(
            "app",
            0,
            annotations,
            json!({
                "ingressClassName": case.class_name,
                "rules": [rule("app.example", &[("/", "Prefix", "svc-a", num(80))])]
            }),
        ));
        let snapshot = world.clean();
        assert_eq!(
            served(&snapshot, "app.example", "/").is_some(),
            case.member,
            "{}",
            case.name
        );
        assert_eq!(
            snapshot.ingresses.len(),
            usize::from(case.member),
            "{}",
            case.name
        );
    }
}

#[test]
fn our_class_must_be_bound_to_our_set() {
    let own = |world: &mut World, class: IngressClass| world.state.upsert_ingress_class(class);
    let app = || {
        ingress(
            "app",
            0,
            json!({}),
            json!({"rules": [rule("app.example", &[("/", "Prefix", "svc-a", num(80))])]}),
        )
    };
    let legacy = || {
        ingress(
            "legacy",
            0,
            json!({"kubernetes.io/ingress.class": CLASS}),
            json!({"ingressClassName": null, "rules": [
                rule("legacy.example", &[("/", "Prefix", "svc-a", num(80))])
            ]}),
        )
    };
    let cases: Vec<(&str, IngressClass)> = vec![
        (
            "another set",
            ingress_class(CLASS, CONTROLLER_NAME, SET_NS, "ingress-private"),
        ),
        (
            "another controller",
            ingress_class(CLASS, "example.com/other", SET_NS, SET),
        ),
        ("wrong kind", {
            let mut c = ingress_class(CLASS, CONTROLLER_NAME, SET_NS, SET);
            if let Some(p) = c.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
                p.kind = "ConfigMap".into();
            }
            c
        }),
        ("cluster scope", {
            let mut c = ingress_class(CLASS, CONTROLLER_NAME, SET_NS, SET);
            if let Some(p) = c.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
                p.scope = Some("Cluster".into());
            }
            c
        }),
        ("no parameters", {
            let mut c = ingress_class(CLASS, CONTROLLER_NAME, SET_NS, SET);
            if let Some(spec) = c.spec.as_mut() {
                spec.parameters = None;
            }
            c
        }),
    ];
    for (name, class) in cases {
        let mut world = World::new().with(app()).with(legacy());
        own(&mut world, class);
        let snapshot = world.clean();
        assert!(snapshot.route("app.example", "/").is_none(), "{name}");
        assert!(
            snapshot.route("legacy.example", "/").is_none(),
            "{name} (legacy)"
        );
    }
}

#[test]
fn named_and_numbered_ports() {
    let mut world = World::new();
    world.state.upsert_service(service(
        "multi",
        &[
            ("http", 80, json!("web")),
            ("metrics", 9090, json!(9100)),
            ("admin", 81, json!(8081)),
        ],
    ));
    // `targetPort: web` resolves per pod, so two slices can carry different numbers.
    world.state.upsert_endpoint_slice(slice(
        "multi-1",
        "multi",
        &[("http", 8080), ("metrics", 9100)],
        &[("10.1.0.2", ready()), ("10.1.0.1", ready())],
    ));
    world.state.upsert_endpoint_slice(slice(
        "multi-2",
        "multi",
        &[("http", 8888), ("metrics", 9100)],
        &[("10.1.0.3", ready())],
    ));
    // A slice of another Service in the same namespace must not leak in.
    world.state.upsert_endpoint_slice(slice(
        "other-1",
        "other",
        &[("http", 8080)],
        &[("10.9.9.9", ready())],
    ));
    let world = world.with(ingress(
        "ports",
        0,
        json!({}),
        json!({"rules": [rule("p.example", &[
            ("/by-number", "Prefix", "multi", num(80)),
            ("/by-name", "Prefix", "multi", named("http")),
            ("/metrics", "Prefix", "multi", named("metrics")),
            ("/admin", "Prefix", "multi", num(81)),
            ("/again", "Prefix", "multi", num(80)),
        ])]}),
    ));
    let snapshot = world.clean();
    let endpoints = |path: &str| {
        let m = snapshot.route("p.example", path).expect("route");
        addrs(m.backend().endpoints())
    };
    let http = ["10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8888"];
    assert_eq!(endpoints("/by-number"), http);
    assert_eq!(endpoints("/by-name"), http);
    assert_eq!(
        endpoints("/metrics"),
        ["10.1.0.1:9100", "10.1.0.2:9100", "10.1.0.3:9100"]
    );
    // No slice carries the admin port yet: the route exists with no endpoints (503).
    assert_eq!(endpoints("/admin"), Vec::<String>::new());

    // The same Service port referenced by number and by name is still two references, but
    // each reference is resolved once and shared by every route naming it.
    let a = snapshot.route("p.example", "/by-number").expect("route");
    let b = snapshot.route("p.example", "/again").expect("route");
    assert_eq!(b.route().map(|r| r.path.as_str()), Some("/again"));
    assert!(Arc::ptr_eq(a.backend(), b.backend()));
}

#[test]
fn unnamed_single_port_service() {
    let mut world = World::new();
    world
        .state
        .upsert_service(service("single", &[("", 80, json!(3000))]));
    world.state.upsert_endpoint_slice(slice(
        "single-1",
        "single",
        &[("", 3000)],
        &[("10.2.0.1", ready())],
    ));
    let world = world.with(ingress(
        "single",
        0,
        json!({}),
        json!({"rules": [rule("s.example", &[("/", "Prefix", "single", num(80))])]}),
    ));
    let snapshot = world.clean();
    let m = snapshot.route("s.example", "/").expect("route");
    assert_eq!(addrs(m.backend().endpoints()), ["10.2.0.1:3000"]);
}

#[test]
fn endpoint_conditions() {
    // (ip, conditions, ready, serving, terminating)
    let cases: Vec<(&str, Value, bool, bool, bool)> = vec![
        ("10.3.0.1", json!(null), true, true, false),
        ("10.3.0.2", json!({}), true, true, false),
        ("10.3.0.3", json!({"ready": true}), true, true, false),
        ("10.3.0.4", json!({"ready": false}), false, false, false),
        (
            "10.3.0.5",
            json!({"ready": false, "serving": true}),
            false,
            true,
            false,
        ),
        // Terminating and still serving: kept, but no new requests.
        (
            "10.3.0.6",
            json!({"ready": false, "serving": true, "terminating": true}),
            false,
            true,
            true,
        ),
        // publishNotReadyAddresses reports terminating endpoints as ready: still not ready.
        (
            "10.3.0.7",
            json!({"ready": true, "serving": true, "terminating": true}),
            false,
            true,
            true,
        ),
        (
            "10.3.0.8",
            json!({"ready": false, "serving": false, "terminating": true}),
            false,
            false,
            true,
        ),
    ];
    let mut world = World::new();
    let endpoints: Vec<(&str, Value)> = cases.iter().map(|c| (c.0, c.1.clone())).collect();
    world.state.upsert_endpoint_slice(slice(
        "svc-a-conditions",
        "svc-a",
        &[("http", 8080)],
        &endpoints,
    ));
    let snapshot = world
        .with(ingress(
            "c",
            0,
            json!({}),
            json!({"rules": [rule("c.example", &[("/", "Prefix", "svc-a", num(80))])]}),
        ))
        .clean();
    let m = snapshot.route("c.example", "/").expect("route");
    let got = m.backend().endpoints();
    // 10.0.0.1 is svc-a's endpoint from the default world.
    assert_eq!(got.len(), cases.len() + 1);
    assert_eq!(got[0].addr.to_string(), "10.0.0.1:8080");
    for ((ip, _, ready, serving, terminating), endpoint) in cases.iter().zip(&got[1..]) {
        assert_eq!(endpoint.addr.to_string(), format!("{ip}:8080"));
        assert_eq!(
            (endpoint.ready, endpoint.serving, endpoint.terminating),
            (*ready, *serving, *terminating),
            "{ip}"
        );
    }
}

#[test]
fn endpoints_deduplicated_and_filtered() {
    let mut world = World::new();
    world
        .state
        .upsert_service(service("dedup", &[("http", 80, json!(8080))]));
    // The same address in two slices (a move in progress): its ready entry is kept.
    world.state.upsert_endpoint_slice(slice(
        "dedup-1",
        "dedup",
        &[("http", 8080)],
        &[
            ("10.4.0.1", json!({"ready": false})),
            ("127.0.0.1", ready()),
        ],
    ));
    world.state.upsert_endpoint_slice(slice(
        "dedup-2",
        "dedup",
        &[("http", 8080)],
        &[
            ("10.4.0.1", ready()),
            ("169.254.169.254", ready()),
            ("not-an-ip", ready()),
        ],
    ));
    // A slice for another port name, and an FQDN slice, contribute nothing.
    world.state.upsert_endpoint_slice(slice(
        "dedup-3",
        "dedup",
        &[("grpc", 9000)],
        &[("10.4.0.9", ready())],
    ));
    let mut fqdn = slice(
        "dedup-4",
        "dedup",
        &[("http", 8080)],
        &[("db.example", ready())],
    );
    fqdn.address_type = "FQDN".into();
    world.state.upsert_endpoint_slice(fqdn);
    let snapshot = world
        .with(ingress(
            "d",
            0,
            json!({}),
            json!({"rules": [rule("d.example", &[("/", "Prefix", "dedup", num(80))])]}),
        ))
        .clean();
    let m = snapshot.route("d.example", "/").expect("route");
    let endpoints = m.backend().endpoints();
    assert_eq!(addrs(endpoints), ["10.4.0.1:8080"]);
    assert!(endpoints[0].ready);
}

#[test]
fn external_name_services() {
    let external = |name: &str, target: &str, ports: Value| -> Service {
        from_json(json!({
            "metadata": {"namespace": NS, "name": name},
            "spec": {"type": "ExternalName", "externalName": target, "ports": ports}
        }))
    };
    let mut world = World::new();
    world
        .state
        .upsert_service(external("db", "db.example.net", json!(null)));
    world.state.upsert_service(external(
        "api",
        "api.example.net",
        json!([{"name": "https", "port": 443}]),
    ));
    world
        .state
        .upsert_service(external("local", "localhost", json!(null)));
    world
        .state
        .upsert_service(external("meta", "169.254.169.254", json!(null)));
    let (snapshot, problems) = world
        .with(ingress(
            "ext",
            0,
            json!({}),
            json!({"rules": [rule("x.example", &[
                ("/db", "Prefix", "db", num(5432)),
                ("/api", "Prefix", "api", named("https")),
                ("/nope", "Prefix", "api", named("http")),
                ("/local", "Prefix", "local", num(80)),
                ("/meta", "Prefix", "meta", num(80)),
            ])]}),
        ))
        .run();
    let backend = |path: &str| -> Backend {
        snapshot
            .route("x.example", path)
            .map(|m| m.backend().as_ref().clone())
            .expect("route")
    };
    assert!(matches!(
        backend("/db"),
        Backend::ExternalName { ref host, port: 5432, .. } if host == "db.example.net"
    ));
    assert!(matches!(
        backend("/api"),
        Backend::ExternalName { ref host, port: 443, .. } if host == "api.example.net"
    ));
    assert!(snapshot.route("x.example", "/local").is_none());
    assert_problems(
        &problems,
        &[
            problem(
                "ext",
                "spec.rules[0].http.paths[2].backend.service.port",
                "Service apps/api has no port \"http\"",
            ),
            problem(
                "ext",
                "spec.rules[0].http.paths[3].backend.service.name",
                "points at \"localhost\"",
            ),
            problem(
                "ext",
                "spec.rules[0].http.paths[4].backend.service.name",
                "points at \"169.254.169.254\"",
            ),
        ],
    );
}

#[test]
fn problems_at_the_smallest_scope() {
    let mut world = World::new();
    world.state.upsert_service(from_json(json!({
        "metadata": {"namespace": NS, "name": "dns"},
        "spec": {"ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
    })));
    let path = |path: &str, kind: &str, backend: Value| json!({"path": path, "pathType": kind, "backend": backend});
    let svc = |name: &str, port: Value| json!({"service": {"name": name, "port": port}});
    let world = world.with(ingress(
        "mixed",
        0,
        json!({"sluice.dev/use-regex": "false"}),
        json!({"rules": [
            {"host": "ok.example", "http": {"paths": [
                path("/good", "Prefix", svc("svc-a", num(80))),
                path("relative", "Prefix", svc("svc-a", num(80))),
                path("/t", "Regex", svc("svc-a", num(80))),
                path("/missing-svc", "Prefix", svc("nope", num(80))),
                path("/missing-port", "Prefix", svc("svc-a", num(81))),
                path("/missing-name", "Prefix", svc("svc-a", named("grpc"))),
                path("/udp", "Prefix", svc("dns", num(53))),
                path("/resource", "Prefix", json!({"resource": {"kind": "Bucket", "name": "b"}})),
                path("/both", "Prefix", svc("svc-a", json!({"number": 80, "name": "http"}))),
                path("/neither", "Prefix", svc("svc-a", json!({}))),
                path("/range", "Prefix", svc("svc-a", json!({"number": 70000}))),
                path("/a//b", "Exact", svc("svc-a", num(80))),
            ]}},
            {"host": "foo.*.example", "http": {"paths": [path("/", "Prefix", svc("svc-a", num(80)))]}},
            {"host": "bad_host.example", "http": {"paths": [path("/", "Prefix", svc("svc-a", num(80)))]}},
            {"host": "10.0.0.1", "http": {"paths": [path("/", "Prefix", svc("svc-a", num(80)))]}},
        ]}),
    ));
    let (snapshot, problems) = world.run();
    // The one good path still serves.
    assert_eq!(
        served(&snapshot, "ok.example", "/good").as_deref(),
        Some("svc-a")
    );
    assert_eq!(snapshot.exact_hosts["ok.example"].routes.len(), 1);
    assert_eq!(snapshot.exact_hosts.len(), 1);
    assert!(snapshot.wildcard_hosts.is_empty());
    let p = |i: usize, rest: &str| format!("spec.rules[0].http.paths[{i}]{rest}");
    assert_problems(
        &problems,
        &[
            problem("mixed", &p(1, ".path"), "must start with '/'"),
            problem(
                "mixed",
                &p(2, ".pathType"),
                "pathType \"Regex\" is not supported",
            ),
            problem(
                "mixed",
                &p(3, ".backend.service.name"),
                "Service apps/nope not found",
            ),
            problem(
                "mixed",
                &p(4, ".backend.service.port"),
                "Service apps/svc-a has no port 81",
            ),
            problem(
                "mixed",
                &p(5, ".backend.service.port"),
                "Service apps/svc-a has no port \"grpc\"",
            ),
            problem("mixed", &p(6, ".backend.service.port"), "uses UDP"),
            problem(
                "mixed",
                &p(7, ".backend.resource"),
                "resource backends are not supported",
            ),
            problem("mixed", &p(8, ".backend.service.port"), "exactly one of"),
            problem("mixed", &p(9, ".backend.service.port"), "exactly one of"),
            problem(
                "mixed",
                &p(10, ".backend.service.port.number"),
                "70000 is out of range",
            ),
            problem("mixed", &p(11, ".path"), "must not contain \"//\""),
            problem(
                "mixed",
                "spec.rules[1].host",
                "wildcard host \"foo.*.example\"",
            ),
            problem("mixed", "spec.rules[2].host", "not a valid DNS name"),
            problem("mixed", "spec.rules[3].host", "is an IP address"),
        ],
    );
}

#[test]
fn invalid_regex_skips_only_that_path() {
    let world = World::new().with(ingress(
        "re",
        0,
        json!({"nginx.ingress.kubernetes.io/use-regex": "true"}),
        json!({"rules": [rule("re.example", &[
            ("/(unclosed", "ImplementationSpecific", "svc-a", num(80)),
            ("/ok/[0-9]+", "ImplementationSpecific", "svc-b", num(80)),
        ])]}),
    ));
    let (snapshot, problems) = world.run();
    assert_eq!(
        served(&snapshot, "re.example", "/OK/12").as_deref(),
        Some("svc-b")
    );
    assert_problems(
        &problems,
        &[problem(
            "re",
            "spec.rules[0].http.paths[0].path",
            "is not a valid regex (host \"re.example\" is in regex mode",
        )],
    );
    assert!(
        !problems[0].reason.contains('\n'),
        "one line: {}",
        problems[0].reason
    );
}

#[test]
fn ingress_default_backend_problem_field() {
    let world = World::new().with(ingress(
        "d",
        0,
        json!({}),
        json!({
            "defaultBackend": {"service": {"name": "svc-a", "port": {"name": "nope"}}},
            "rules": [rule("d.example", &[("/a", "Prefix", "svc-b", num(80))])]
        }),
    ));
    let (snapshot, problems) = world.run();
    assert_eq!(
        served(&snapshot, "d.example", "/a").as_deref(),
        Some("svc-b")
    );
    assert_eq!(served(&snapshot, "d.example", "/b"), None);
    assert_problems(
        &problems,
        &[problem(
            "d",
            "spec.defaultBackend.service.port",
            "has no port \"nope\"",
        )],
    );
}

#[test]
fn strip_keeps_only_what_is_used() {
    let mut ing: Ingress = from_json(json!({
        "metadata": {
            "namespace": NS, "name": "i", "resourceVersion": "42", "uid": "u",
            "labels": {"app": "x"},
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "kubernetes.io/ingress.class": "public",
                "nginx.ingress.kubernetes.io/use-regex": "true",
                "sluice.dev/rewrite-target": "/",
                "example.com/other": "x"
            }
        },
        "spec": {"ingressClassName": "public"},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    }));
    strip_ingress(&mut ing);
    assert!(ing.metadata.managed_fields.is_none());
    assert!(ing.metadata.labels.is_none());
    assert_eq!(ing.metadata.resource_version.as_deref(), Some("42"));
    let keys: Vec<&str> = ing
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "kubernetes.io/ingress.class",
            "nginx.ingress.kubernetes.io/use-regex",
            "sluice.dev/rewrite-target"
        ]
    );
    assert!(
        ing.status.is_some(),
        "the status writer compares against it"
    );

    let mut svc: Service = from_json(json!({
        "metadata": {"namespace": NS, "name": "s", "annotations": {"a": "b"},
                     "managedFields": [{"manager": "m"}]},
        "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "clusterIP": "10.96.0.1",
                 "ports": [{"port": 80}], "sessionAffinity": "None"},
        "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]},
                   "conditions": [{"type": "x", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "r", "message": "m"}]}
    }));
    strip_service(&mut svc);
    assert!(svc.metadata.annotations.is_none() && svc.metadata.managed_fields.is_none());
    let spec = svc.spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert!(spec.selector.is_none());
    // service-upstream sends to it.
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.1"));
    assert_eq!(spec.ports.as_ref().map(Vec::len), Some(1));
    let status = svc.status.as_ref().expect("status");
    assert!(status.load_balancer.is_some() && status.conditions.is_none());

    let mut es: EndpointSlice = from_json(json!({
        "metadata": {"namespace": NS, "name": "e", "labels": {
            "kubernetes.io/service-name": "s",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
        }},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "n", "zone": "z",
                       "targetRef": {"kind": "Pod", "name": "p"}, "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080}]
    }));
    strip_endpoint_slice(&mut es);
    assert_eq!(
        es.metadata.labels,
        Some(BTreeMap::from([(
            "kubernetes.io/service-name".to_owned(),
            "s".to_owned()
        )]))
    );
    assert!(es.endpoints[0].node_name.is_none() && es.endpoints[0].target_ref.is_none());
    assert_eq!(
        es.endpoints[0].conditions.as_ref().and_then(|c| c.ready),
        Some(true)
    );

    let mut class = ingress_class(CLASS, CONTROLLER_NAME, SET_NS, SET);
    class.metadata.annotations = Some(BTreeMap::from([("a".to_owned(), "b".to_owned())]));
    strip_ingress_class(&mut class);
    assert!(class.metadata.annotations.is_none());
    assert!(class_is_ours(&class, &ClassScope::new(CLASS, SET_NS, SET)));
}

#[test]
fn snapshot_serializes_for_the_debug_endpoint() {
    let snapshot = World::new()
        .with(ingress(
            "j",
            0,
            json!({"sluice.dev/use-regex": "true"}),
            json!({"rules": [
                rule("b.example", &[("/api/.*", "ImplementationSpecific", "svc-a", num(80))]),
                rule("a.example", &[("/", "Prefix", "svc-b", named("http"))]),
            ]}),
        ))
        .clean();
    let value = serde_json::to_value(&snapshot).expect("serializes");
    let hosts = value["hosts"].as_array().expect("hosts list");
    assert_eq!(hosts[0]["host"], "a.example");
    assert_eq!(hosts[1]["host"], "b.example");
    let route = &hosts[1]["routes"][0];
    assert_eq!(route["path"], "/api/.*");
    assert_eq!(route["regex"], "^(?:/api/.*)");
    assert_eq!(route["source"], json!({"namespace": NS, "name": "j"}));
    assert_eq!(route["backend"]["type"], "service");
    assert_eq!(route["backend"]["service"]["port"], 80);
    assert_eq!(
        route["backend"]["endpoints"],
        json!([{"addr": "10.0.0.1:8080", "ready": true, "serving": true, "terminating": false}])
    );
    assert_eq!(hosts[0]["routes"][0]["backend"]["service"]["port"], "http");
    assert_eq!(value["ingresses"], json!([{"namespace": NS, "name": "j"}]));
}

#[test]
fn translation_is_deterministic_and_comparable() {
    let world = World::new()
        .with(ingress(
            "one",
            0,
            json!({}),
            json!({"rules": [rule("x.example", &[("/", "Prefix", "svc-a", num(80))])]}),
        ))
        .with(ingress(
            "two",
            1,
            json!({}),
            json!({"rules": [rule("x.example", &[("/", "Prefix", "svc-b", num(80))])]}),
        ));
    let (a, pa) = world.run();
    let (b, pb) = world.run();
    assert_eq!(a, b);
    assert_eq!(pa, pb);
}

#[test]
fn scales_linearly_enough_for_many_ingresses() {
    // 3,000 Ingresses, each its own host plus one shared host: a correctness check at a size
    // where a quadratic step would be obvious in the test's run time.
    let mut world = World::new();
    for i in 0..3000 {
        world.state.upsert_ingress(ingress(
            &format!("app-{i}"),
            i,
            json!({}),
            json!({"rules": [
                rule(&format!("app-{i}.example"), &[("/", "Prefix", "svc-a", num(80))]),
                rule("shared.example", &[(&format!("/app-{i}"), "Prefix", "svc-b", num(80))]),
            ]}),
        ));
    }
    let snapshot = world.clean();
    assert_eq!(snapshot.exact_hosts.len(), 3001);
    assert_eq!(snapshot.route_count(), 6000);
    assert_eq!(
        served(&snapshot, "app-2999.example", "/x").as_deref(),
        Some("svc-a")
    );
    let m = snapshot
        .route("shared.example", "/app-1234/y")
        .expect("route");
    assert_eq!(m.source(), &IngressRef::new(NS, "app-1234"));
}

// TLS translation: spec.tls, passthrough, redirect annotations, the default certificate.
#[path = "tls_tests.rs"]
pub(super) mod tls_tests;

#[test]
fn annotation_policies_table() {
    struct Case {
        name: &'static str,
        annotations: Value,
        /// The policy summary on the route, `denied` when it answers 503.
        want: &'static [&'static str],
        problems: Vec<(String, String, String)>,
    }
    let cases = [
        Case {
            name: "no annotations: the shared inert policy",
            annotations: json!({}),
            want: &[],
            problems: vec![],
        },
        Case {
            name: "cors and a redirect",
            annotations: json!({
                "nginx.ingress.kubernetes.io/enable-cors": "true",
                "nginx.ingress.kubernetes.io/permanent-redirect": "https://x.example/",
            }),
            want: &["redirect", "cors"],
            problems: vec![],
        },
        Case {
            name: "an invalid policy value is reported, the rest applies",
            annotations: json!({
                "nginx.ingress.kubernetes.io/enable-cors": "true",
                "nginx.ingress.kubernetes.io/proxy-read-timeout": "soon",
            }),
            want: &["cors"],
            problems: vec![problem(
                "a",
                "metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout']",
                "this policy is not applied",
            )],
        },
        Case {
            name: "an allow list that cannot be parsed denies the Ingress",
            annotations: json!({"nginx.ingress.kubernetes.io/whitelist-source-range": "nope"}),
            want: &["denied"],
            problems: vec![problem(
                "a",
                "metadata.annotations['nginx.ingress.kubernetes.io/whitelist-source-range']",
                "not served",
            )],
        },
        Case {
            name: "an auth-secret that is not mirrored denies the Ingress",
            annotations: json!({
                "nginx.ingress.kubernetes.io/auth-type": "basic",
                "nginx.ingress.kubernetes.io/auth-secret": "users",
            }),
            want: &["denied"],
            problems: vec![problem(
                "a",
                "metadata.annotations['nginx.ingress.kubernetes.io/auth-secret']",
                "not found",
            )],
        },
        Case {
            name: "an auth-secret in another namespace is refused",
            annotations: json!({
                "nginx.ingress.kubernetes.io/auth-type": "basic",
                "nginx.ingress.kubernetes.io/auth-secret": "other/users",
            }),
            want: &["denied"],
            problems: vec![problem(
                "a",
                "metadata.annotations['nginx.ingress.kubernetes.io/auth-secret']",
                "another namespace",
            )],
        },
    ];
    for case in cases {
        let world = World::new().with(ingress(
            "a",
            0,
            case.annotations,
            json!({"ingressClassName": CLASS, "rules": [rule("a.example", &[("/", "Prefix", "svc-a", num(80))])]}),
        ));
        let (snapshot, problems) = world.run();
        let matched = snapshot.route("a.example", "/").expect(case.name);
        assert_eq!(matched.policy().summary(), case.want, "{}", case.name);
        assert_eq!(
            matched.policy().inert,
            case.want.is_empty(),
            "{}",
            case.name
        );
        assert_problems(&problems, &case.problems);
    }
}

#[test]
fn from_to_www_redirects_only_hosts_no_rule_names() {
    let annotations = json!({"nginx.ingress.kubernetes.io/from-to-www-redirect": "true"});
    let world = World::new()
        .with(ingress(
            "shop",
            0,
            annotations.clone(),
            json!({"ingressClassName": CLASS, "rules": [
                rule("shop.example", &[("/", "Prefix", "svc-a", num(80))]),
                rule("www.blog.example", &[("/", "Prefix", "svc-b", num(80))]),
                rule("api.example", &[("/", "Prefix", "svc-c", num(80))]),
            ]}),
        ))
        .with(ingress(
            "www-api",
            1,
            json!({}),
            json!({"ingressClassName": CLASS, "rules": [rule("www.api.example", &[("/", "Prefix", "svc-d", num(80))])]}),
        ));
    let snapshot = world.clean();
    let mut got: Vec<(&str, &str)> = snapshot
        .www_redirects
        .iter()
        .map(|(a, c)| (a.as_str(), c.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("blog.example", "www.blog.example"),
            ("www.shop.example", "shop.example")
        ]
    );
}

/// A ConfigMap mirror of `apps/<origin>` in the set's namespace, as the operator writes it.
fn config_map_mirror(origin: &str, data: Value) -> k8s_openapi::api::core::v1::ConfigMap {
    from_json(json!({
        "metadata": {
            "namespace": SET_NS,
            "name": sluice_crds::mirror::mirror_name(SET, NS, origin),
            "labels": {"sluice.dev/mirror": "true"},
            "annotations": {
                "sluice.dev/origin": format!("{NS}/{origin}"),
                "sluice.dev/origin-resource-version": "7",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "data": data,
        "binaryData": {"logo": "AAEC"},
    }))
}

#[test]
fn custom_header_entries_are_validated() {
    use super::policy::{CustomHeaderError as E, MAX_CUSTOM_HEADERS, custom_header_list};
    // (key, value, Ok(value set) or the error)
    let cases: &[(&str, &str, Result<&str, E>)] = &[
        ("X-Frame-Options", "DENY", Ok("DENY")),
        (
            "Content-Security-Policy",
            "default-src 'self'",
            Ok("default-src 'self'"),
        ),
        ("x-trailing-newline", "a b\n", Ok("a b")),
        (
            "Strict-Transport-Security",
            "max-age=63072000",
            Ok("max-age=63072000"),
        ),
        ("X Space", "v", Err(E::InvalidName)),
        ("X:Colon", "v", Err(E::InvalidName)),
        ("", "v", Err(E::InvalidName)),
        ("X-Ünicode", "v", Err(E::InvalidName)),
        ("Content-Length", "0", Err(E::Refused("content-length"))),
        (
            "Transfer-Encoding",
            "chunked",
            Err(E::Refused("transfer-encoding")),
        ),
        ("Connection", "close", Err(E::Refused("connection"))),
        ("Upgrade", "websocket", Err(E::Refused("upgrade"))),
        ("Keep-Alive", "timeout=5", Err(E::Refused("keep-alive"))),
        ("Set-Cookie", "a=b", Err(E::SetCookie)),
        ("X-Empty", "  ", Err(E::EmptyValue)),
        ("X-Split", "a\r\nX-Injected: 1", Err(E::InvalidValue)),
        ("X-Tab", "a\tb", Err(E::InvalidValue)),
        ("X-Nul", "a\0b", Err(E::InvalidValue)),
        ("X-Utf8", "café", Err(E::InvalidValue)),
    ];
    for (key, value, want) in cases {
        let data = BTreeMap::from([((*key).to_owned(), (*value).to_owned())]);
        let (headers, refused) = custom_header_list(&data);
        match want {
            Ok(v) => {
                assert!(refused.is_empty(), "{key}: {refused:?}");
                assert_eq!(headers.len(), 1, "{key}");
                assert_eq!(headers[0].0.as_str(), key.to_ascii_lowercase(), "{key}");
                assert_eq!(headers[0].1, *v, "{key}");
            }
            Err(e) => {
                assert!(headers.is_empty(), "{key}: {headers:?}");
                assert_eq!(refused, vec![((*key).to_owned(), e.clone())], "{key}");
            }
        }
    }

    // Names differ only in case: the first (in key order) is set, the other reported.
    let data = BTreeMap::from([
        ("X-A".to_owned(), "1".to_owned()),
        ("x-a".to_owned(), "2".to_owned()),
    ]);
    let (headers, refused) = custom_header_list(&data);
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].1, "1");
    assert_eq!(refused, vec![("x-a".to_owned(), E::Duplicate)]);

    // Beyond the cap, entries are reported, not set.
    let data: BTreeMap<String, String> = (0..MAX_CUSTOM_HEADERS + 2)
        .map(|i| (format!("x-h{i:03}"), "v".to_owned()))
        .collect();
    let (headers, refused) = custom_header_list(&data);
    assert_eq!(headers.len(), MAX_CUSTOM_HEADERS);
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|(_, e)| *e == E::TooMany));
}

#[test]
fn custom_headers_are_read_from_the_mirror() {
    let spec = json!({"ingressClassName": CLASS, "rules": [rule("a.example", &[("/", "Prefix", "svc-a", num(80))])]});
    let field = "metadata.annotations['nginx.ingress.kubernetes.io/custom-headers']";
    let headers_of = |world: &World| {
        let (snapshot, problems) = world.run();
        let matched = snapshot.route("a.example", "/").expect("route");
        let policy = matched.policy().clone();
        (policy, problems)
    };

    // Mirrored: valid entries are set, refused ones reported, the Ingress served.
    let mut world = World::new().with(ingress(
        "a",
        0,
        json!({"nginx.ingress.kubernetes.io/custom-headers": "headers"}),
        spec.clone(),
    ));
    world.state.upsert_config_map_mirror(config_map_mirror(
        "headers",
        json!({"X-Frame-Options": "DENY", "X-Team": "shop", "Content-Length": "1"}),
    ));
    let stored = &world.state.config_maps[&ObjectKey::new(NS, "headers")];
    assert_eq!(stored.binary_data, None, "stripped to data");
    assert_eq!(
        stored.metadata.annotations.as_ref().map(|a| a.len()),
        Some(1),
        "only the origin annotation is kept"
    );
    let (policy, problems) = headers_of(&world);
    let got: Vec<(&str, &str)> = policy
        .custom_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or_default()))
        .collect();
    assert_eq!(got, [("x-frame-options", "DENY"), ("x-team", "shop")]);
    assert_eq!(policy.summary(), ["custom-headers"]);
    assert!(policy.denied.is_none());
    assert_problems(
        &problems,
        &[problem("a", field, "entry \"Content-Length\"")],
    );

    // A changed ConfigMap changes the policy (so a new snapshot is published).
    let mut changed = World::new().with(ingress(
        "a",
        0,
        json!({"nginx.ingress.kubernetes.io/custom-headers": "headers"}),
        spec.clone(),
    ));
    changed
        .state
        .upsert_config_map_mirror(config_map_mirror("headers", json!({"X-Team": "web"})));
    assert_ne!(headers_of(&changed).0, policy);

    // Not mirrored (yet): reported, served without headers, the shared inert policy.
    let missing = World::new().with(ingress(
        "a",
        0,
        json!({"nginx.ingress.kubernetes.io/custom-headers": "headers"}),
        spec.clone(),
    ));
    let (policy, problems) = headers_of(&missing);
    assert!(policy.inert && policy.custom_headers.is_empty());
    assert_problems(&problems, &[problem("a", field, "not found")]);

    // Another namespace's ConfigMap is refused even when a mirror of it exists.
    let mut cross = World::new().with(ingress(
        "a",
        0,
        json!({"nginx.ingress.kubernetes.io/custom-headers": "other/headers"}),
        spec,
    ));
    let mut foreign = config_map_mirror("headers", json!({"X-A": "1"}));
    if let Some(a) = foreign.metadata.annotations.as_mut() {
        a.insert("sluice.dev/origin".into(), "other/headers".into());
    }
    cross.state.upsert_config_map_mirror(foreign);
    let (policy, problems) = headers_of(&cross);
    assert!(policy.custom_headers.is_empty());
    assert_problems(&problems, &[problem("a", field, "another namespace")]);
}

#[test]
fn keys_share_one_copy_of_each_namespace_and_forget_deleted_ones() {
    let a = ObjectKey::new("interned-ns", "a");
    let b = ObjectKey::new(String::from("interned-ns"), "b");
    let r = IngressRef::new("interned-ns", "c");
    assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
    assert!(Arc::ptr_eq(&a.namespace, &r.namespace));
    assert_eq!(&*IngressRef::from(&a).name, "a");

    // Namespaces no key holds any more are dropped once enough new ones arrive.
    let gone = Arc::downgrade(&ObjectKey::new("deleted-ns", "x").namespace);
    for i in 0..200 {
        let _ = ObjectKey::new(format!("churn-ns-{i}"), "x");
    }
    assert!(gone.upgrade().is_none(), "the deleted namespace was pruned");
    assert!(Arc::ptr_eq(
        &a.namespace,
        &ObjectKey::new("interned-ns", "d").namespace
    ));
}
