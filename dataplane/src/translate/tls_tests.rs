//! TLS translation tables: certificate selection (exact, wildcard, default), broken and missing
//! Secrets, the SAN checks and fallback, conflicts, passthrough, redirect annotations, the
//! set's default certificate, and the certificate cache.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::model::{Certificate, RedirectFlags};
use crate::tls::TlsPolicy;

/// A self-signed certificate for `names` and its key, as PEM.
pub(in crate::translate) fn pem(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params")
            .self_signed(&key)
            .expect("cert");
    (cert.pem(), key.serialize_pem())
}

/// A mirror in the set's namespace whose origin is `NS/origin`, with `data`.
fn mirror(origin: &str, data: &[(&str, &[u8])]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            namespace: Some(SET_NS.into()),
            name: Some(sluice_crds::mirror::mirror_name(SET, NS, origin)),
            annotations: Some(BTreeMap::from([(
                sluice_crds::mirror::ORIGIN_ANNOTATION.to_owned(),
                format!("{NS}/{origin}"),
            )])),
            labels: Some(BTreeMap::from([(
                "sluice.dev/mirror".into(),
                "true".into(),
            )])),
            managed_fields: Some(vec![Default::default()]),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                .collect(),
        ),
        type_: Some("kubernetes.io/tls".into()),
        ..Secret::default()
    }
}

fn tls_mirror(origin: &str, names: &[&str]) -> Secret {
    let (crt, key) = pem(names);
    mirror(
        origin,
        &[("tls.crt", crt.as_bytes()), ("tls.key", key.as_bytes())],
    )
}

fn tls(hosts: &[&str], secret: Option<&str>) -> Value {
    let mut entry = json!({"hosts": hosts});
    if let Some(secret) = secret {
        entry["secretName"] = json!(secret);
    }
    entry
}

fn root(host: &str, service: &str) -> Value {
    rule(host, &[("/", "Prefix", service, num(80))])
}

impl World {
    fn with_mirror(mut self, secret: Secret) -> Self {
        self.state.upsert_mirror(secret);
        self
    }
}

/// The certificate source a server name gets (`default` for the default certificate).
fn cert_for(snapshot: &Snapshot, sni: &str) -> String {
    match snapshot.tls_policy(Some(sni)) {
        TlsPolicy::Terminate(Some(c)) => c.source.clone(),
        TlsPolicy::Terminate(None) => "default".into(),
        TlsPolicy::Passthrough(p) => format!("passthrough to {}", p.backend.service().name),
    }
}

#[test]
fn certificates_by_host_exact_wildcard_and_default() {
    let world = World::new()
        .with_mirror(tls_mirror("foo-tls", &["foo.bar.com"]))
        .with_mirror(tls_mirror("wild-tls", &["*.wild.example"]))
        .with(ingress(
            "web",
            0,
            json!({}),
            json!({
                "tls": [
                    tls(&["foo.bar.com"], Some("foo-tls")),
                    tls(&["*.wild.example"], Some("wild-tls")),
                    tls(&["nocert.example"], None),
                ],
                "rules": [
                    root("foo.bar.com", "svc-a"),
                    root("*.wild.example", "svc-b"),
                    root("nocert.example", "svc-c"),
                    root("plain.example", "svc-d"),
                ],
            }),
        ));
    let snapshot = world.clean();
    let cases = [
        ("foo.bar.com", "apps/foo-tls"),
        ("FOO.bar.com", "apps/foo-tls"),
        ("a.wild.example", "apps/wild-tls"),
        ("a.b.wild.example", "default"),
        ("wild.example", "default"),
        ("nocert.example", "default"),
        ("plain.example", "default"),
        ("unknown.example", "default"),
    ];
    for (sni, want) in cases {
        assert_eq!(cert_for(&snapshot, sni), want, "{sni}");
    }
    // TLS hosts redirect and get HSTS; the host without TLS does not.
    assert!(snapshot.has_tls("nocert.example"));
    assert!(snapshot.has_tls("x.wild.example"));
    assert!(!snapshot.has_tls("plain.example"));
    assert_eq!(snapshot.tls.wildcard["wild.example"].host, "*.wild.example");
    // The debug dump names Secrets, never key material.
    let dump = serde_json::to_string(&snapshot).expect("json");
    assert!(dump.contains("\"secret\":\"apps/foo-tls\""), "{dump}");
    assert!(!dump.contains("PRIVATE"), "{dump}");
}

#[test]
fn missing_and_broken_secrets_fall_back_to_the_default_certificate() {
    let (crt, key) = pem(&["mismatch.example"]);
    let (_, other_key) = pem(&["mismatch.example"]);
    let world = World::new()
        .with_mirror(mirror(
            "garbage",
            &[("tls.crt", &b"not pem"[..]), ("tls.key", &b"x"[..])],
        ))
        .with_mirror(mirror("no-key", &[("tls.crt", crt.as_bytes())]))
        .with_mirror(mirror(
            "mismatch",
            &[
                ("tls.crt", crt.as_bytes()),
                ("tls.key", other_key.as_bytes()),
            ],
        ))
        .with_mirror(mirror(
            "bad-key",
            &[
                ("tls.crt", crt.as_bytes()),
                (
                    "tls.key",
                    &b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"[..],
                ),
            ],
        ))
        .with_mirror(mirror(
            "swapped",
            &[("tls.crt", key.as_bytes()), ("tls.key", crt.as_bytes())],
        ))
        .with(ingress(
            "web",
            0,
            json!({}),
            json!({
                "tls": [
                    tls(&["missing.example"], Some("missing")),
                    tls(&["garbage.example"], Some("garbage")),
                    tls(&["no-key.example"], Some("no-key")),
                    tls(&["mismatch.example"], Some("mismatch")),
                    tls(&["bad-key.example"], Some("bad-key")),
                    tls(&["swapped.example"], Some("swapped")),
                ],
                "rules": [root("missing.example", "svc-a")],
            }),
        ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "web",
                "spec.tls[0].secretName",
                "Secret apps/missing not found",
            ),
            problem(
                "web",
                "spec.tls[1].secretName",
                "holds no CERTIFICATE block",
            ),
            problem("web", "spec.tls[2].secretName", "has no tls.key key"),
            problem(
                "web",
                "spec.tls[3].secretName",
                "does not belong to the certificate",
            ),
            problem("web", "spec.tls[4].secretName", "private key"),
            problem("web", "spec.tls[5].secretName", "no CERTIFICATE block"),
        ],
    );
    assert!(
        problems
            .iter()
            .all(|p| p.reason.ends_with("served with the default certificate")),
        "{problems:#?}"
    );
    for host in [
        "missing.example",
        "garbage.example",
        "no-key.example",
        "mismatch.example",
        "bad-key.example",
        "swapped.example",
    ] {
        assert_eq!(cert_for(&snapshot, host), "default", "{host}");
        // Still TLS hosts: redirected, HSTS.
        assert!(snapshot.has_tls(host), "{host}");
    }
    // The routes of the Ingress are unaffected.
    assert_eq!(
        served(&snapshot, "missing.example", "/"),
        Some("svc-a".into())
    );
}

#[test]
fn a_certificate_that_does_not_cover_its_host_is_served_with_a_problem() {
    let world = World::new()
        .with_mirror(tls_mirror("other", &["other.example"]))
        .with_mirror(tls_mirror("narrow", &["a.wild.example"]))
        .with(ingress(
            "web",
            0,
            json!({}),
            json!({
                "tls": [
                    tls(&["foo.bar.com"], Some("other")),
                    tls(&["*.wild.example"], Some("narrow")),
                    tls(&["", "bad_host!"], Some("other")),
                ],
                "rules": [root("foo.bar.com", "svc-a")],
            }),
        ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "web",
                "spec.tls[0].hosts[0]",
                "the certificate of Secret apps/other is not valid for host \"foo.bar.com\"",
            ),
            problem(
                "web",
                "spec.tls[1].hosts[0]",
                "is not valid for host \"*.wild.example\"",
            ),
            problem("web", "spec.tls[2].hosts[0]", "empty host"),
            problem("web", "spec.tls[2].hosts[1]", "not a valid DNS name"),
        ],
    );
    assert_eq!(cert_for(&snapshot, "foo.bar.com"), "apps/other");
    assert_eq!(cert_for(&snapshot, "a.wild.example"), "apps/narrow");
}

#[test]
fn a_tls_entry_without_hosts_covers_the_rule_hosts_its_certificate_names() {
    let world = World::new()
        .with_mirror(tls_mirror("site", &["www.example", "*.apps.example"]))
        .with(ingress(
            "web",
            0,
            json!({}),
            json!({
                "tls": [tls(&[], Some("site"))],
                "rules": [
                    root("www.example", "svc-a"),
                    root("x.apps.example", "svc-b"),
                    root("*.apps.example", "svc-c"),
                    root("elsewhere.example", "svc-d"),
                ],
            }),
        ));
    let snapshot = world.clean();
    assert_eq!(cert_for(&snapshot, "www.example"), "apps/site");
    assert_eq!(cert_for(&snapshot, "x.apps.example"), "apps/site");
    assert_eq!(cert_for(&snapshot, "y.apps.example"), "apps/site");
    assert_eq!(cert_for(&snapshot, "elsewhere.example"), "default");
    assert!(!snapshot.has_tls("elsewhere.example"));
}

#[test]
fn the_oldest_ingress_decides_a_hosts_certificate() {
    let world = World::new()
        .with_mirror(tls_mirror("old-tls", &["shop.example"]))
        .with_mirror(tls_mirror("new-tls", &["shop.example"]))
        .with(ingress(
            "new",
            10,
            json!({}),
            json!({"tls": [tls(&["shop.example"], Some("new-tls"))], "rules": [rule("shop.example", &[("/new", "Prefix", "svc-b", num(80))])]}),
        ))
        .with(ingress(
            "old",
            0,
            json!({}),
            json!({"tls": [tls(&["shop.example"], Some("old-tls")), tls(&["shop.example"], None)], "rules": [root("shop.example", "svc-a")]}),
        ))
        .with(ingress(
            "same",
            20,
            json!({}),
            json!({"tls": [tls(&["shop.example"], Some("old-tls"))]}),
        ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "new",
                "spec.tls[0].hosts[0]",
                "ignored: host \"shop.example\" already uses the certificate of Secret apps/old-tls from Ingress apps/old, which is older",
            ),
            problem(
                "old",
                "spec.tls[1].hosts[0]",
                "from an earlier spec.tls entry of this Ingress",
            ),
        ],
    );
    assert_eq!(cert_for(&snapshot, "shop.example"), "apps/old-tls");
}

#[test]
fn passthrough_table() {
    let passthrough = |value: &str| json!({"nginx.ingress.kubernetes.io/ssl-passthrough": value});
    let mut world = World::new()
        .with(ingress(
            "pass",
            0,
            passthrough("true"),
            json!({"rules": [
                rule("pass.example", &[("/", "Prefix", "svc-a", num(80)), ("/other", "Prefix", "svc-b", num(80))]),
                rule("*.pass.example", &[("", "ImplementationSpecific", "svc-c", num(80))]),
                rule("noroot.example", &[("/api", "Prefix", "svc-b", num(80))]),
                rule("", &[("/", "Prefix", "svc-b", num(80))]),
            ]}),
        ))
        .with(ingress(
            "later",
            5,
            json!({"sluice.dev/ssl-passthrough": "true"}),
            json!({"rules": [rule("pass.example", &[("/", "Exact", "svc-d", num(80))])]}),
        ))
        .with(ingress(
            "off",
            6,
            json!({"sluice.dev/ssl-passthrough": "false", "nginx.ingress.kubernetes.io/ssl-passthrough": "true"}),
            json!({"rules": [root("off.example", "svc-d")]}),
        ))
        .with(ingress(
            "invalid",
            7,
            passthrough("yes"),
            json!({"rules": [root("invalid.example", "svc-d")]}),
        ));

    // Not enabled for the set: ignored, with a problem.
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "invalid",
                "metadata.annotations['nginx.ingress.kubernetes.io/ssl-passthrough']",
                "expected true or false",
            ),
            problem(
                "later",
                "metadata.annotations['sluice.dev/ssl-passthrough']",
                "does not enable SSL passthrough",
            ),
            problem(
                "pass",
                "metadata.annotations['nginx.ingress.kubernetes.io/ssl-passthrough']",
                "does not enable SSL passthrough",
            ),
        ],
    );
    assert_eq!(cert_for(&snapshot, "pass.example"), "default");

    world.scope.enable_ssl_passthrough = true;
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "invalid",
                "metadata.annotations['nginx.ingress.kubernetes.io/ssl-passthrough']",
                "expected true or false",
            ),
            problem(
                "later",
                "spec.rules[0].host",
                "Ingress apps/pass, which is older, already passes it through",
            ),
            problem("pass", "spec.rules[2].http.paths", "has none"),
            problem("pass", "spec.rules[3].host", "needs a host"),
        ],
    );
    let cases = [
        ("pass.example", "passthrough to svc-a"),
        ("x.pass.example", "passthrough to svc-c"),
        ("noroot.example", "default"),
        ("off.example", "default"),
        ("invalid.example", "default"),
    ];
    for (sni, want) in cases {
        assert_eq!(cert_for(&snapshot, sni), want, "{sni}");
    }
    // Plain HTTP keeps routing every path of a passthrough host, without a redirect.
    assert_eq!(
        served(&snapshot, "pass.example", "/other"),
        Some("svc-b".into())
    );
    assert!(!snapshot.https_redirect("pass.example", "/", None));
}

#[test]
fn redirect_annotations() {
    let world = World::new()
        .with(ingress(
            "opt-out",
            0,
            json!({"nginx.ingress.kubernetes.io/ssl-redirect": "false"}),
            json!({"tls": [tls(&["a.example"], None)], "rules": [root("a.example", "svc-a")]}),
        ))
        .with(ingress(
            "forced",
            1,
            json!({"sluice.dev/force-ssl-redirect": "true", "nginx.ingress.kubernetes.io/force-ssl-redirect": "false"}),
            json!({"rules": [root("b.example", "svc-b")]}),
        ))
        .with(ingress(
            "plain",
            2,
            json!({"nginx.ingress.kubernetes.io/ssl-redirect": "maybe"}),
            json!({"tls": [tls(&["c.example"], None)], "rules": [root("c.example", "svc-c")]}),
        ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[problem(
            "plain",
            "metadata.annotations['nginx.ingress.kubernetes.io/ssl-redirect']",
            "expected true or false",
        )],
    );
    assert_eq!(
        snapshot.tls.redirects,
        BTreeMap::from([
            (
                IngressRef::new(NS, "forced"),
                RedirectFlags {
                    ssl_redirect: true,
                    force_ssl_redirect: true
                }
            ),
            (
                IngressRef::new(NS, "opt-out"),
                RedirectFlags {
                    ssl_redirect: false,
                    force_ssl_redirect: false
                }
            ),
        ])
    );
    let source = |host: &str| snapshot.route(host, "/").map(|m| m.source().clone());
    let redirects = |host: &str| snapshot.https_redirect(host, "/", source(host).as_ref());
    assert!(!redirects("a.example"));
    assert!(redirects("b.example"));
    assert!(redirects("c.example"));
}

#[test]
fn the_sets_default_certificate() {
    let (crt, key) = pem(&["default.example"]);
    let default_secret = |data: &[(&str, &[u8])]| Secret {
        metadata: ObjectMeta {
            namespace: Some(SET_NS.into()),
            name: Some("default-tls".into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    let mut world = World::new();
    world.scope.default_ssl_certificate = Some("default-tls".into());

    // Not there (yet): the generated certificate, and the set hears about it.
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[problem(
            "set:ingress-public",
            "spec.proxy.defaultSslCertificate",
            "Secret sluice-system/default-tls not found; a self-signed certificate",
        )],
    );
    assert!(snapshot.tls.default_certificate.is_none());

    world.state.default_certificate = Some(default_secret(&[
        ("tls.crt", crt.as_bytes()),
        ("tls.key", key.as_bytes()),
    ]));
    let snapshot = world.clean();
    assert_eq!(
        snapshot
            .tls
            .default_certificate
            .as_ref()
            .map(|c| c.source.as_str()),
        Some("sluice-system/default-tls")
    );

    // A Secret of another name (the watch not caught up with a rename) is not used.
    world.scope.default_ssl_certificate = Some("renamed".into());
    let (snapshot, problems) = world.run();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(snapshot.tls.default_certificate.is_none());

    world.scope.default_ssl_certificate = Some("default-tls".into());
    world.state.default_certificate = Some(default_secret(&[("tls.crt", &b"junk"[..])]));
    let (_, problems) = world.run();
    assert_problems(
        &problems,
        &[problem(
            "set:ingress-public",
            "spec.proxy.defaultSslCertificate",
            "has no tls.key",
        )],
    );
}

#[test]
fn certificates_are_parsed_once_per_secret_version() {
    let mut world = World::new()
        .with_mirror(tls_mirror("site", &["site.example"]))
        .with(ingress(
            "web",
            0,
            json!({}),
            json!({"tls": [tls(&["site.example"], Some("site"))], "rules": [root("site.example", "svc-a")]}),
        ));
    let first = world.clean();
    let again = world.clean();
    let cert = |s: &Snapshot| -> Arc<Certificate> {
        match s.tls_policy(Some("site.example")) {
            TlsPolicy::Terminate(Some(c)) => c.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert!(Arc::ptr_eq(&cert(&first), &cert(&again)), "reused");
    assert_eq!(first.tls, again.tls);
    assert_eq!(world.state.certificates.len(), 1);

    // Rotated in place: a new certificate, and snapshots differ (so the publisher swaps).
    world
        .state
        .upsert_mirror(tls_mirror("site", &["site.example"]));
    let rotated = world.clean();
    assert!(!Arc::ptr_eq(&cert(&first), &cert(&rotated)));
    assert_ne!(first.tls, rotated.tls);

    // No longer referenced: dropped from the cache.
    world.state.ingresses.clear();
    world.clean();
    assert!(world.state.certificates.is_empty());
}

#[test]
fn mirrors_are_stripped_and_keyed_by_origin() {
    let mut state = ClusterState::default();
    let mut secret = tls_mirror("site", &["site.example"]);
    if let Some(data) = secret.data.as_mut() {
        data.insert("ca.crt".into(), ByteString(b"ca".to_vec()));
    }
    secret.metadata.annotations.get_or_insert_default().insert(
        "kubectl.kubernetes.io/last-applied-configuration".into(),
        "{}".into(),
    );
    state.upsert_mirror(secret);
    // No origin annotation: ignored.
    let mut orphan = tls_mirror("x", &["x.example"]);
    orphan.metadata.annotations = None;
    state.upsert_mirror(orphan);

    assert_eq!(state.secrets.len(), 1);
    let stored = &state.secrets[&ObjectKey::new(NS, "site")];
    let keys: Vec<&String> = stored.data.as_ref().expect("data").keys().collect();
    // Every data key stays (an auth-map Secret has one per user); the metadata goes.
    assert_eq!(keys, ["ca.crt", "tls.crt", "tls.key"]);
    assert_eq!(
        stored.metadata.annotations.as_ref().map(|a| a.len()),
        Some(1)
    );
    assert!(stored.metadata.managed_fields.is_none() && stored.metadata.labels.is_none());
}

/// The `ssl-ciphers` of the host a server name is terminated as.
fn ciphers_for(snapshot: &Snapshot, sni: &str) -> Option<Vec<sluice_crds::CipherSuite>> {
    let host = snapshot.tls_host(sni)?;
    let ciphers = host.terminate.as_ref()?.tls12_ciphers.as_ref()?;
    Some(ciphers.suites().to_vec())
}

#[test]
fn ssl_ciphers_land_on_the_hosts_the_ingress_terminates() {
    use sluice_crds::CipherSuite::*;
    let ciphers = |list: &str| json!({"nginx.ingress.kubernetes.io/ssl-ciphers": list});
    let world = World::new()
        .with_mirror(tls_mirror("shop-tls", &["shop.example", "*.shop.example"]))
        .with(ingress(
            "shop",
            0,
            ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"),
            json!({
                "tls": [tls(&["shop.example", "*.shop.example"], Some("shop-tls"))],
                "rules": [root("shop.example", "svc-a")],
            }),
        ))
        .with(ingress(
            "strict",
            1,
            json!({"sluice.dev/ssl-ciphers": "!ALL"}),
            json!({"tls": [tls(&["strict.example"], None)]}),
        ))
        .with(ingress(
            "plain",
            2,
            json!({}),
            json!({"tls": [tls(&["plain.example"], None)]}),
        ));
    let (snapshot, problems) = world.run();
    // The parser's own Event for the empty selection; nothing from TLS translation.
    assert_problems(
        &problems,
        &[problem(
            "strict",
            "metadata.annotations['sluice.dev/ssl-ciphers']",
            "TLS 1.2 is off",
        )],
    );
    let selected = Some(vec![EcdheEcdsaAes128GcmSha256, EcdheRsaAes256GcmSha384]);
    assert_eq!(ciphers_for(&snapshot, "shop.example"), selected);
    assert_eq!(ciphers_for(&snapshot, "a.shop.example"), selected);
    assert_eq!(ciphers_for(&snapshot, "strict.example"), Some(vec![]));
    assert_eq!(ciphers_for(&snapshot, "plain.example"), None);
    assert_eq!(ciphers_for(&snapshot, "unknown.example"), None);
    // The debug dump names the suites.
    let dump = serde_json::to_string(&snapshot.tls.exact["shop.example"]).expect("json");
    assert!(
        dump.contains(
            r#""tls12_ciphers":["ECDHE-ECDSA-AES128-GCM-SHA256","ECDHE-RSA-AES256-GCM-SHA384"]"#
        ),
        "{dump}"
    );
    let dump = serde_json::to_string(&snapshot.tls.exact["plain.example"]).expect("json");
    assert!(!dump.contains("tls12_ciphers"), "{dump}");
}

#[test]
fn the_oldest_ingress_decides_a_hosts_ssl_ciphers() {
    use sluice_crds::CipherSuite::*;
    let ciphers = |list: &str| json!({"nginx.ingress.kubernetes.io/ssl-ciphers": list});
    let world = World::new()
        .with_mirror(tls_mirror("shop-tls", &["shop.example"]))
        .with_mirror(tls_mirror("other-tls", &["shop.example"]))
        .with(ingress(
            "old",
            0,
            ciphers("ECDHE-ECDSA-AES128-GCM-SHA256"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        // Same certificate, other ciphers: only the ciphers are ignored.
        .with(ingress(
            "new",
            10,
            ciphers("ECDHE-ECDSA-CHACHA20-POLY1305"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        // Same certificate and ciphers, or no ciphers at all: nothing to report.
        .with(ingress(
            "same",
            20,
            ciphers("ECDHE-ECDSA-AES128-GCM-SHA256"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        .with(ingress(
            "silent",
            30,
            json!({}),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        // Other certificate and ciphers: one problem saying both are ignored.
        .with(ingress(
            "other",
            40,
            json!({"sluice.dev/ssl-ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384"}),
            json!({"tls": [tls(&["shop.example"], Some("other-tls"))]}),
        ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "new",
                "metadata.annotations['nginx.ingress.kubernetes.io/ssl-ciphers']",
                "ssl-ciphers ignored for host \"shop.example\": Ingress apps/old, which is older, \
                 decides its TLS termination and serves it with ssl-ciphers \
                 ECDHE-ECDSA-AES128-GCM-SHA256",
            ),
            problem(
                "other",
                "spec.tls[0].hosts[0]",
                "from Ingress apps/old, which is older (its ssl-ciphers are ignored too)",
            ),
        ],
    );
    assert_eq!(
        ciphers_for(&snapshot, "shop.example"),
        Some(vec![EcdheEcdsaAes128GcmSha256])
    );
    assert_eq!(cert_for(&snapshot, "shop.example"), "apps/shop-tls");

    // An older Ingress without ciphers decides too: the set's suites.
    let world = World::new()
        .with_mirror(tls_mirror("shop-tls", &["shop.example"]))
        .with(ingress(
            "old",
            0,
            json!({}),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        .with(ingress(
            "new",
            10,
            ciphers("!ALL"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "new",
                "metadata.annotations['nginx.ingress.kubernetes.io/ssl-ciphers']",
                "TLS 1.2 is off",
            ),
            problem(
                "new",
                "metadata.annotations['nginx.ingress.kubernetes.io/ssl-ciphers']",
                "which is older, decides its TLS termination and serves it with the set's sslCiphers",
            ),
        ],
    );
    assert_eq!(ciphers_for(&snapshot, "shop.example"), None);
}

/// A Secret with a CA bundle (`ca.crt`), and the PEM of that CA.
fn ca_mirror(origin: &str) -> Secret {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("ca");
    mirror(origin, &[("ca.crt", cert.pem().as_bytes())])
}

/// The client auth of the host a server name is terminated as, in short: `mode depth CA`.
fn client_auth_for(snapshot: &Snapshot, sni: &str) -> Option<String> {
    let auth = snapshot.client_auth(sni)?;
    let ca = match &auth.ca {
        Ok(ca) => ca.source.clone(),
        Err(_) => "broken".to_owned(),
    };
    Some(format!("{:?} {} {ca}", auth.mode, auth.depth))
}

#[test]
fn client_certificates_land_on_the_hosts_the_ingress_terminates() {
    let auth = |secret: &str, extra: &[(&str, &str)]| {
        let mut a = json!({"nginx.ingress.kubernetes.io/auth-tls-secret": secret});
        for (k, v) in extra {
            a[format!("nginx.ingress.kubernetes.io/{k}")] = json!(v);
        }
        a
    };
    let world = World::new()
        .with_mirror(tls_mirror("shop-tls", &["shop.example", "*.shop.example"]))
        .with_mirror(ca_mirror("client-ca"))
        .with_mirror(mirror("not-a-ca", &[("ca.crt", b"garbage")]))
        .with_mirror(mirror("no-ca-key", &[("tls.crt", b"x")]))
        .with(ingress(
            "shop",
            0,
            auth(
                "apps/client-ca",
                &[
                    ("auth-tls-verify-client", "optional"),
                    ("auth-tls-verify-depth", "2"),
                ],
            ),
            json!({
                "tls": [tls(&["shop.example", "*.shop.example"], Some("shop-tls"))],
                "rules": [root("shop.example", "svc-a")],
            }),
        ))
        .with(ingress(
            "missing",
            1,
            auth("nope", &[]),
            json!({"tls": [tls(&["missing.example"], None)]}),
        ))
        .with(ingress(
            "garbage",
            2,
            auth("not-a-ca", &[]),
            json!({"tls": [tls(&["garbage.example"], None)]}),
        ))
        .with(ingress(
            "nokey",
            3,
            auth("no-ca-key", &[]),
            json!({"tls": [tls(&["nokey.example"], None)]}),
        ))
        .with(ingress(
            "elsewhere",
            4,
            auth("other-ns/client-ca", &[]),
            json!({"tls": [tls(&["elsewhere.example"], None)]}),
        ))
        .with(ingress(
            "notls",
            5,
            auth("client-ca", &[]),
            json!({"rules": [root("notls.example", "svc-a")]}),
        ))
        .with(ingress(
            "plain",
            6,
            json!({}),
            json!({"tls": [tls(&["plain.example"], None)]}),
        ));
    let (snapshot, problems) = world.run();
    let field = "metadata.annotations['nginx.ingress.kubernetes.io/auth-tls-secret']";
    let broken = "the Ingress's TLS hosts refuse every request (503)";
    let ours: Vec<_> = problems
        .iter()
        .filter(|p| {
            p.field == field && (p.reason.contains(broken) || p.reason.contains("spec.tls"))
        })
        .cloned()
        .collect();
    assert_problems(
        &ours,
        &[
            problem("elsewhere", field, "is in another namespace"),
            problem("garbage", field, "ca.crt holds no CERTIFICATE block"),
            problem("missing", field, "Secret apps/nope not found"),
            problem("nokey", field, "the Secret has no ca.crt key"),
            problem(
                "notls",
                field,
                "ignored: client certificates apply to the Ingress's TLS hosts",
            ),
        ],
    );
    let cases = [
        ("shop.example", Some("Optional 2 apps/client-ca")),
        ("a.shop.example", Some("Optional 2 apps/client-ca")),
        ("missing.example", Some("On 1 broken")),
        ("garbage.example", Some("On 1 broken")),
        ("nokey.example", Some("On 1 broken")),
        ("elsewhere.example", Some("On 1 broken")),
        ("notls.example", None),
        ("plain.example", None),
        ("unknown.example", None),
    ];
    for (host, want) in cases {
        assert_eq!(client_auth_for(&snapshot, host).as_deref(), want, "{host}");
    }
    // A broken CA requests no certificate at the handshake (requests are refused instead).
    assert!(snapshot.client_handshake(Some("missing.example")).is_none());
    assert!(snapshot.client_handshake(Some("shop.example")).is_some());
    let dump = serde_json::to_string(&snapshot.tls.exact["shop.example"]).expect("json");
    assert!(
        dump.contains(r#""client_auth":{"verify":"optional","depth":2"#),
        "{dump}"
    );
    let dump = serde_json::to_string(&snapshot.tls.exact["missing.example"]).expect("json");
    assert!(
        dump.contains(r#""broken":"Secret apps/nope not found"#),
        "{dump}"
    );
}

#[test]
fn the_oldest_ingress_decides_a_hosts_client_certificates() {
    let auth = |secret: &str| json!({"nginx.ingress.kubernetes.io/auth-tls-secret": secret});
    let world = World::new()
        .with_mirror(tls_mirror("shop-tls", &["shop.example"]))
        .with_mirror(tls_mirror("other-tls", &["shop.example"]))
        .with_mirror(ca_mirror("ca-1"))
        .with_mirror(ca_mirror("ca-2"))
        .with(ingress(
            "old",
            0,
            auth("ca-1"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        // Same certificate, another CA: only the client auth is ignored.
        .with(ingress(
            "new",
            10,
            auth("ca-2"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        // Same CA, or none asked: nothing to report.
        .with(ingress(
            "same",
            20,
            auth("ca-1"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        .with(ingress(
            "silent",
            30,
            json!({}),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ))
        // Other certificate and CA: one problem saying both are ignored.
        .with(ingress(
            "other",
            40,
            auth("ca-2"),
            json!({"tls": [tls(&["shop.example"], Some("other-tls"))]}),
        ));
    let (snapshot, problems) = world.run();
    assert_problems(
        &problems,
        &[
            problem(
                "new",
                "metadata.annotations['nginx.ingress.kubernetes.io/auth-tls-secret']",
                "client certificates ignored for host \"shop.example\": Ingress apps/old, which \
                 is older, decides its TLS termination and serves it with client certificates \
                 from the CA of Secret apps/ca-1 (verify on, depth 1)",
            ),
            problem(
                "other",
                "spec.tls[0].hosts[0]",
                "from Ingress apps/old, which is older (its client certificates are ignored too)",
            ),
        ],
    );
    assert_eq!(
        client_auth_for(&snapshot, "shop.example").as_deref(),
        Some("On 1 apps/ca-1")
    );

    // CA bundles are parsed once per Secret version, like certificates.
    let world = World::new()
        .with_mirror(tls_mirror("shop-tls", &["shop.example"]))
        .with_mirror(ca_mirror("ca-1"))
        .with(ingress(
            "old",
            0,
            auth("ca-1"),
            json!({"tls": [tls(&["shop.example"], Some("shop-tls"))]}),
        ));
    let first = world.clean();
    let second = world.clean();
    let ca = |s: &Snapshot| {
        s.client_handshake(Some("shop.example"))
            .map(|(ca, _)| ca.clone())
    };
    assert!(Arc::ptr_eq(
        &ca(&first).expect("ca"),
        &ca(&second).expect("ca")
    ));
}
