//! The incremental [`Translator`] against the full [`translate`]: after every change of a long
//! random sequence over a varied state (conflicting hosts where the oldest wins, ties on age,
//! canaries, regex mode, TLS with good, missing and mismatched certificates, passthrough, www
//! redirects, default backends, missing Services and ports, other classes, custom headers,
//! EndpointSlices moving between Services), both must give the same snapshot and problems.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::*;

const NS: &str = "apps";
const SET_NS: &str = "sluice-system";
const SET: &str = "ingress-public";
const CLASS: &str = "public";

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("test object")
}

const HOSTS: &[&str] = &[
    "a.example",
    "b.example",
    "www.b.example",
    "*.example",
    "c.example",
    "",
    "Bad_Host",
];
const PATHS: &[&str] = &["/", "/api", "/api/", "/v(1|2)", "/(", "/x"];
const KINDS: &[&str] = &["Prefix", "Exact", "ImplementationSpecific", "Bogus"];
const SERVICES: &[&str] = &["s0", "s1", "s2", "s3", "missing"];

/// A self-signed certificate for `names`, as a mirror of Secret `NS/origin`.
fn tls_mirror(origin: &str, names: &[&str], rv: Option<u64>) -> Secret {
    let (cert, key) = super::tests::tls_tests::pem(names);
    let data = BTreeMap::from([
        ("tls.crt".to_owned(), ByteString(cert.into_bytes())),
        ("tls.key".to_owned(), ByteString(key.into_bytes())),
    ]);
    Secret {
        metadata: ObjectMeta {
            namespace: Some(SET_NS.into()),
            name: Some(format!("mirror-{origin}")),
            resource_version: rv.map(|rv| rv.to_string()),
            annotations: Some(BTreeMap::from([(
                sluice_crds::mirror::ORIGIN_ANNOTATION.to_owned(),
                format!("{NS}/{origin}"),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    }
}

fn random_ingress(rng: &mut Rng, name: &str, rv: Option<u64>) -> Ingress {
    let mut annotations = serde_json::Map::new();
    if rng.chance(15) {
        annotations.insert("nginx.ingress.kubernetes.io/canary".into(), json!("true"));
        let weight = if rng.chance(80) { "50" } else { "x" };
        annotations.insert(
            "nginx.ingress.kubernetes.io/canary-weight".into(),
            json!(weight),
        );
    }
    if rng.chance(10) {
        annotations.insert(
            "nginx.ingress.kubernetes.io/use-regex".into(),
            json!("true"),
        );
    }
    if rng.chance(10) {
        annotations.insert(
            "nginx.ingress.kubernetes.io/from-to-www-redirect".into(),
            json!("true"),
        );
    }
    if rng.chance(8) {
        annotations.insert(
            "nginx.ingress.kubernetes.io/ssl-passthrough".into(),
            json!("true"),
        );
    }
    if rng.chance(8) {
        annotations.insert(
            "nginx.ingress.kubernetes.io/ssl-redirect".into(),
            json!("false"),
        );
    }
    if rng.chance(8) {
        annotations.insert(
            "nginx.ingress.kubernetes.io/custom-headers".into(),
            json!(format!("{NS}/headers")),
        );
    }
    if rng.chance(5) {
        annotations.insert(
            "nginx.ingress.kubernetes.io/default-backend".into(),
            json!(rng.pick(SERVICES)),
        );
    }
    let mut rules = Vec::new();
    for _ in 0..rng.below(3) {
        let mut paths = Vec::new();
        for _ in 0..rng.below(3) + 1 {
            let port = if rng.chance(90) {
                json!({"number": 80})
            } else {
                json!({"name": "nope"})
            };
            paths.push(json!({
                "path": rng.pick(PATHS),
                "pathType": rng.pick(KINDS),
                "backend": {"service": {"name": rng.pick(SERVICES), "port": port}}
            }));
        }
        let mut rule = json!({"http": {"paths": paths}});
        let host = rng.pick(HOSTS);
        if !host.is_empty() {
            rule["host"] = json!(host);
        }
        rules.push(rule);
    }
    let mut spec = json!({"rules": rules});
    spec["ingressClassName"] = match rng.below(10) {
        0 => json!("other"),
        1 => Value::Null,
        _ => json!(CLASS),
    };
    if rng.chance(20) {
        spec["defaultBackend"] =
            json!({"service": {"name": rng.pick(SERVICES), "port": {"number": 80}}});
    }
    if rng.chance(30) {
        let hosts: Vec<&str> = (0..rng.below(3)).map(|_| rng.pick(HOSTS)).collect();
        let secret = rng.pick(&["cert-a", "cert-star", "cert-missing", ""]);
        let mut entry = json!({"hosts": hosts});
        if !secret.is_empty() {
            entry["secretName"] = json!(secret);
        }
        spec["tls"] = json!([entry]);
    }
    // Few distinct ages, so ties (broken by name) are common.
    let created = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + rng.below(4) as i64)
        .expect("timestamp");
    let mut metadata = json!({
        "namespace": NS, "name": name, "creationTimestamp": created.to_string(),
        "annotations": annotations,
    });
    if let Some(rv) = rv {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    from_json(json!({"metadata": metadata, "spec": spec}))
}

fn random_service(rng: &mut Rng, name: &str, rv: Option<u64>) -> Service {
    let external = rng.chance(10);
    let mut metadata = json!({"namespace": NS, "name": name});
    if let Some(rv) = rv {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    let port = if rng.chance(85) { 80 } else { 81 };
    let spec = if external {
        json!({"type": "ExternalName", "externalName": "db.example.org",
               "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
    } else {
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.10",
               "ports": [{"name": "http", "port": port, "targetPort": 8080, "protocol": "TCP"}]})
    };
    from_json(json!({"metadata": metadata, "spec": spec}))
}

fn random_slice(rng: &mut Rng, name: &str, rv: Option<u64>) -> EndpointSlice {
    let mut metadata = json!({"namespace": NS, "name": name,
        "labels": {"kubernetes.io/service-name": rng.pick(SERVICES)}});
    if let Some(rv) = rv {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    let endpoints: Vec<Value> = (0..rng.below(3))
        .map(|_| {
            json!({"addresses": [format!("10.1.0.{}", rng.below(5) + 1)],
                   "conditions": {"ready": rng.chance(80)}})
        })
        .collect();
    from_json(json!({
        "metadata": metadata, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints
    }))
}

fn headers(rng: &mut Rng, rv: Option<u64>) -> ConfigMap {
    let mut metadata = json!({"namespace": SET_NS, "name": "mirror-headers",
        "annotations": {(sluice_crds::mirror::ORIGIN_ANNOTATION): format!("{NS}/headers")}});
    if let Some(rv) = rv {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    let value = rng.pick(&["on", "off", "bad\u{1}"]);
    from_json(json!({"metadata": metadata, "data": {"X-Test": value}}))
}

fn class(name: &str) -> IngressClass {
    from_json(json!({
        "metadata": {"name": name},
        "spec": {"controller": CONTROLLER_NAME, "parameters": {"apiGroup": "sluice.dev",
            "kind": "IngressControllerSet", "name": SET, "namespace": SET_NS, "scope": "Namespace"}}
    }))
}

/// One random change; returns what it did, for the failure message.
fn change(rng: &mut Rng, state: &mut ClusterState, rv: Option<u64>, certs: &[Secret]) -> String {
    let key = |prefix: &str, n: usize, rng: &mut Rng| format!("{prefix}{}", rng.below(n));
    match rng.below(20) {
        0..=9 => {
            let name = key("i", 14, rng);
            if rng.chance(15) {
                state.ingresses.remove(&ObjectKey::new(NS, &name));
                format!("delete Ingress {name}")
            } else {
                state.upsert_ingress(random_ingress(rng, &name, rv));
                format!("upsert Ingress {name}")
            }
        }
        10..=11 => {
            let name = rng.pick(&SERVICES[..4]).to_owned();
            if rng.chance(20) {
                state.services.remove(&ObjectKey::new(NS, &name));
                format!("delete Service {name}")
            } else {
                state.upsert_service(random_service(rng, &name, rv));
                format!("upsert Service {name}")
            }
        }
        12..=14 => {
            let name = key("e", 5, rng);
            if rng.chance(20) {
                state.endpoint_slices.remove(&ObjectKey::new(NS, &name));
                format!("delete EndpointSlice {name}")
            } else {
                state.upsert_endpoint_slice(random_slice(rng, &name, rv));
                format!("upsert EndpointSlice {name}")
            }
        }
        15..=16 => {
            let i = rng.below(certs.len() + 1);
            let origin = ["cert-a", "cert-star"][rng.below(2)];
            let origin_key = ObjectKey::new(NS, origin);
            match certs.get(i) {
                None => {
                    state.secrets.remove(&origin_key);
                    format!("delete Secret {origin}")
                }
                Some(secret) => {
                    let mut secret = secret.clone();
                    let mut annotations = BTreeMap::new();
                    annotations.insert(
                        sluice_crds::mirror::ORIGIN_ANNOTATION.to_owned(),
                        format!("{NS}/{origin}"),
                    );
                    secret.metadata.annotations = Some(annotations);
                    secret.metadata.resource_version = rv.map(|rv| rv.to_string());
                    state.upsert_mirror(secret);
                    format!("upsert Secret {origin} (certificate {i})")
                }
            }
        }
        17 => {
            if rng.chance(30) {
                state.config_maps.clear();
                "delete ConfigMap headers".to_owned()
            } else {
                state.upsert_config_map_mirror(headers(rng, rv));
                "upsert ConfigMap headers".to_owned()
            }
        }
        18 => {
            if rng.chance(50) {
                state.ingress_classes.remove(CLASS);
                "delete IngressClass".to_owned()
            } else {
                state.upsert_ingress_class(class(CLASS));
                "upsert IngressClass".to_owned()
            }
        }
        _ => "nothing".to_owned(),
    }
}

fn scope(rng: &mut Rng) -> ClassScope {
    let mut scope = ClassScope::new(CLASS, SET_NS, SET);
    scope.watch_without_class = rng.chance(50);
    scope.enable_ssl_passthrough = rng.chance(50);
    scope.disable_catch_all = rng.chance(20);
    if rng.chance(50) {
        scope.default_backend = Some(crate::model::ServiceRef {
            namespace: SET_NS.into(),
            name: "fallback".into(),
            port: crate::model::PortRef::Number(80),
        });
    }
    scope
}

/// The keys whose objects differ between two states.
fn hints_between(old: &ClusterState, new: &ClusterState) -> Changes {
    fn keys<T: PartialEq>(
        old: &BTreeMap<ObjectKey, T>,
        new: &BTreeMap<ObjectKey, T>,
    ) -> Option<std::collections::BTreeSet<ObjectKey>> {
        let changed = old
            .iter()
            .filter(|(k, v)| new.get(*k) != Some(*v))
            .map(|(k, _)| k);
        let added = new.keys().filter(|k| !old.contains_key(*k));
        Some(changed.chain(added).cloned().collect())
    }
    Changes {
        ingresses: keys(&old.ingresses, &new.ingresses),
        services: keys(&old.services, &new.services),
        endpoint_slices: keys(&old.endpoint_slices, &new.endpoint_slices),
        secrets: keys(&old.secrets, &new.secrets),
        config_maps: keys(&old.config_maps, &new.config_maps),
    }
}

fn run(seed: u64, with_versions: bool, with_hints: bool, steps: usize) {
    let mut rng = Rng(seed);
    let certs = vec![
        tls_mirror("x", &["a.example", "b.example"], None),
        tls_mirror("x", &["*.example"], None),
        tls_mirror("x", &["elsewhere.test"], None),
    ];
    let mut state = ClusterState::default();
    state.upsert_ingress_class(class(CLASS));
    let mut rv = 0u64;
    let mut version = |with: bool| {
        rv += 1;
        with.then_some(rv)
    };
    for i in 0..10 {
        let v = version(with_versions);
        state.upsert_ingress(random_ingress(&mut rng, &format!("i{i}"), v));
    }
    for name in &SERVICES[..4] {
        let v = version(with_versions);
        state.upsert_service(random_service(&mut rng, name, v));
    }
    for i in 0..4 {
        let v = version(with_versions);
        state.upsert_endpoint_slice(random_slice(&mut rng, &format!("e{i}"), v));
    }
    let mut scope = scope(&mut rng);
    let mut translator = Translator::new();
    let mut log = Vec::new();
    let mut previous = ClusterState::default();
    for step in 0..steps {
        if rng.chance(3) {
            scope = self::scope(&mut rng);
            log.push("new scope".to_owned());
        }
        let v = version(with_versions);
        // Sometimes several changes between translations, as a coalesced burst.
        for _ in 0..rng.below(3) + 1 {
            log.push(change(&mut rng, &mut state, v, &certs));
        }
        let (full, full_problems) = translate(&state, &scope);
        let (incremental, problems) = if with_hints {
            // As the generator journals watch events: the keys that changed.
            let hints = hints_between(&previous, &state);
            translator.translate_changes(&state, &scope, &hints)
        } else {
            translator.translate(&state, &scope)
        };
        previous = state.clone();
        let recent = &log[log.len().saturating_sub(6)..];
        // The status writer asks the translator which Ingresses are of the class.
        let members: Vec<&ObjectKey> = state
            .ingresses
            .keys()
            .filter(|k| translator.is_member(k))
            .collect();
        let listed: Vec<ObjectKey> = full
            .ingresses
            .iter()
            .map(|r| ObjectKey::new(&r.namespace, &r.name))
            .collect();
        assert_eq!(
            members,
            listed.iter().collect::<Vec<_>>(),
            "seed {seed} step {step}: members differ after {recent:?}"
        );
        assert_eq!(
            problems, full_problems,
            "seed {seed} step {step}: problems differ after {recent:?}"
        );
        assert!(
            incremental == full,
            "seed {seed} step {step}: snapshots differ after {recent:?}\n\
             incremental: {incremental:#?}\nfull: {full:#?}"
        );
    }
}

#[test]
fn incremental_translation_equals_full_translation() {
    for seed in 1..=12u64 {
        run(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            seed % 3 != 0,
            seed % 2 == 0,
            150,
        );
    }
}
