//! Unit tests of the report's rules; the realistic Ingresses are in the corpus test
//! (`operator/tests/migrate_corpus.rs`).

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::*;

fn ingress(name: &str, annotations: serde_json::Value, spec: serde_json::Value) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "apps", "annotations": annotations},
        "spec": spec,
    }))
    .expect("a valid Ingress")
}

fn simple(name: &str, annotations: serde_json::Value) -> Ingress {
    ingress(
        name,
        annotations,
        json!({
            "ingressClassName": "nginx",
            "rules": [{"host": format!("{name}.example.com"), "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": name, "port": {"number": 80}}}}
            ]}}]
        }),
    )
}

fn one(ingress: Ingress) -> IngressReport {
    report(&[ingress], None).ingresses.remove(0)
}

fn config_map(data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "data": data,
    }))
    .expect("a valid ConfigMap")
}

fn keys<T>(list: &[T], key: impl Fn(&T) -> &str) -> Vec<&str> {
    list.iter().map(key).collect()
}

#[test]
fn no_annotations_is_identical() {
    let r = one(simple(
        "plain",
        json!({"cert-manager.io/cluster-issuer": "le"}),
    ));
    assert_eq!(r.verdict, Verdict::ServedIdentically);
    assert!(r.applied.is_empty() && r.ignored.is_empty() && r.rejected.is_empty());
    assert_eq!(r.class.as_deref(), Some("nginx"));
}

#[test]
fn each_annotation_lands_in_one_list() {
    let r = one(simple(
        "mixed",
        json!({
            "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "soon",
            "nginx.ingress.kubernetes.io/load-balance": "ewma",
            "nginx.ingress.kubernetes.io/configuration-snippet":
                "proxy_set_header Upgrade $http_upgrade;\nproxy_set_header Connection \"upgrade\";",
        }),
    ));
    assert_eq!(r.verdict, Verdict::ServedWithDifferences);
    assert_eq!(
        keys(&r.applied, |a| &a.key),
        ["nginx.ingress.kubernetes.io/proxy-body-size"]
    );
    assert_eq!(
        keys(&r.translated, |a| &a.key),
        ["nginx.ingress.kubernetes.io/configuration-snippet"]
    );
    assert_eq!(
        keys(&r.ignored, |a| &a.key),
        ["nginx.ingress.kubernetes.io/load-balance"]
    );
    assert_eq!(
        keys(&r.rejected, |a| &a.key),
        ["nginx.ingress.kubernetes.io/proxy-read-timeout"]
    );
    assert_eq!(r.rejected[0].effect, RejectEffect::PolicyNotApplied);
    assert!(!r.rejected[0].expected.is_empty());
    assert_eq!(r.differences.len(), 2, "{:?}", r.differences);
    assert!(r.not_served.is_empty());
}

#[test]
fn fail_closed_problems_are_not_served() {
    let r = one(simple(
        "auth",
        json!({"nginx.ingress.kubernetes.io/auth-type": "basic"}),
    ));
    assert_eq!(r.verdict, Verdict::NotServed);
    assert_eq!(r.rejected[0].effect, RejectEffect::IngressNotServed);
    assert!(r.not_served[0].contains("requires auth-secret"), "{r:?}");
}

#[test]
fn shadowed_nginx_keys() {
    let same = one(simple(
        "same",
        json!({
            "sluice.dev/proxy-body-size": "8m",
            "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        }),
    ));
    assert_eq!(same.verdict, Verdict::ServedIdentically);
    assert_eq!(
        keys(&same.applied, |a| &a.key),
        ["sluice.dev/proxy-body-size"]
    );
    assert_eq!(
        keys(&same.ignored, |a| &a.key),
        ["nginx.ingress.kubernetes.io/proxy-body-size"]
    );
    let other = one(simple(
        "other",
        json!({
            "sluice.dev/proxy-body-size": "8m",
            "nginx.ingress.kubernetes.io/proxy-body-size": "1g",
        }),
    ));
    assert_eq!(other.verdict, Verdict::ServedWithDifferences);
    assert!(other.differences[0].contains("sluice.dev/proxy-body-size is set with another value"));
}

#[test]
fn security_relevant_unsupported_keys_are_not_served() {
    for (key, value) in [
        ("proxy-ssl-verify", "on"),
        ("enable-modsecurity", "true"),
        ("enable-owasp-core-rules", "true"),
    ] {
        let r = one(simple(
            "sec",
            json!({format!("nginx.ingress.kubernetes.io/{key}"): value}),
        ));
        assert_eq!(r.verdict, Verdict::NotServed, "{key}");
        assert_eq!(r.ignored.len(), 1, "{key}");
    }
    let off = one(simple(
        "off",
        json!({"nginx.ingress.kubernetes.io/proxy-ssl-verify": "off"}),
    ));
    assert_eq!(off.verdict, Verdict::ServedWithDifferences);
}

#[test]
fn snippet_kinds() {
    let header = one(simple(
        "headers",
        json!({"nginx.ingress.kubernetes.io/configuration-snippet":
            "more_set_headers \"X-Frame-Options: DENY\";\n"}),
    ));
    assert_eq!(header.verdict, Verdict::ServedIdentically);
    assert_eq!(
        keys(&header.translated, |a| &a.key),
        ["nginx.ingress.kubernetes.io/configuration-snippet"]
    );
    assert_eq!(
        header.translated[0].reason,
        "translated: sets response headers X-Frame-Options"
    );

    // Headers outside the subset: ignored whole, the first one named, security headers said.
    let untranslated = one(simple(
        "untranslated",
        json!({"nginx.ingress.kubernetes.io/configuration-snippet":
            "more_set_headers \"X-Frame-Options: DENY\";\nadd_header X-Up $upstream_addr;\n"}),
    ));
    assert_eq!(untranslated.verdict, Verdict::ServedWithDifferences);
    assert_eq!(untranslated.ignored.len(), 1);
    assert_eq!(untranslated.differences.len(), 1);
    let line = &untranslated.differences[0];
    assert!(
        line.contains("`add_header X-Up $upstream_addr` uses $upstream_addr"),
        "{line}"
    );
    assert!(
        line.ends_with("lack the security headers X-Frame-Options"),
        "{line}"
    );

    let block = one(simple(
        "block",
        json!({"nginx.ingress.kubernetes.io/server-snippet":
            "location /metrics { deny all; }"}),
    ));
    assert_eq!(block.verdict, Verdict::NotServed);
    assert!(block.not_served[0].contains("`location /metrics` block with `deny all`"));
    // The data plane rejects it too: the report shows what the parser said.
    assert_eq!(block.rejected[0].effect, RejectEffect::IngressNotServed);

    for key in ["stream-snippet", "modsecurity-snippet"] {
        let r = one(simple(
            "other",
            json!({format!("nginx.ingress.kubernetes.io/{key}"): "SecRuleEngine On"}),
        ));
        assert_eq!(r.verdict, Verdict::NotServed, "{key}");
    }
}

#[test]
fn regex_mode_paths() {
    // The rewrite Ingress puts the host in regex mode; the other Ingress on the host has a
    // path the regex crate refuses (a look-ahead), the rewrite names a missing group.
    let rewrite = ingress(
        "rewrite",
        json!({"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}),
        json!({"ingressClassName": "nginx", "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/api(/|$)", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "api", "port": {"number": 80}}}}
        ]}}]}),
    );
    let lookahead = ingress(
        "lookahead",
        json!({}),
        json!({"ingressClassName": "nginx", "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/(?!admin)", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}
        ]}}]}),
    );
    let other_class = ingress(
        "elsewhere",
        json!({}),
        json!({"ingressClassName": "internal", "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/(?!admin)", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}
        ]}}]}),
    );
    let r = report(&[rewrite, lookahead, other_class], None);
    let by_name = |n: &str| r.ingresses.iter().find(|i| i.name == n).unwrap();
    let rw = by_name("rewrite");
    assert_eq!(rw.verdict, Verdict::ServedWithDifferences);
    assert!(
        rw.differences[0].contains("uses $2"),
        "{:?}",
        rw.differences
    );
    let la = by_name("lookahead");
    assert_eq!(la.verdict, Verdict::ServedWithDifferences);
    assert!(
        la.differences[0].contains("is not routed"),
        "{:?}",
        la.differences
    );
    assert_eq!(by_name("elsewhere").verdict, Verdict::ServedIdentically);
}

#[test]
fn set_wide_rules_reach_ingresses() {
    let cm = config_map(json!({
        "use-gzip": "true",
        "global-auth-url": "http://auth.example.svc/check",
        "proxy-body-size": "20m",
    }));
    let plain = simple("plain", json!({}));
    let own_auth = simple(
        "own",
        json!({"nginx.ingress.kubernetes.io/auth-url": "http://auth.example.svc/other"}),
    );
    let opted_out = simple(
        "out",
        json!({"nginx.ingress.kubernetes.io/enable-global-auth": "false"}),
    );
    let r = report(&[plain, own_auth, opted_out], Some(&cm));
    let by_name = |n: &str| r.ingresses.iter().find(|i| i.name == n).unwrap();
    let plain = by_name("plain");
    assert_eq!(plain.verdict, Verdict::NotServed);
    assert!(plain.not_served[0].starts_with("set-wide: ingress-nginx ConfigMap global-auth-url"));
    assert!(plain.differences[0].contains("use-gzip"));
    assert_eq!(by_name("own").verdict, Verdict::ServedWithDifferences);
    assert_eq!(by_name("out").verdict, Verdict::ServedWithDifferences);
    assert_eq!(
        r.suggested_spec.proxy.proxy_body_size.as_deref(),
        Some("20m")
    );
    let cm_report = r.ingress_nginx_config_map.as_ref().unwrap();
    assert_eq!(keys(&cm_report.mapped, |m| &m.key), ["proxy-body-size"]);
}

#[test]
fn passthrough_and_no_class_need_set_settings() {
    let passthrough = simple(
        "argocd",
        json!({"nginx.ingress.kubernetes.io/ssl-passthrough": "true"}),
    );
    let classless = ingress(
        "legacy",
        json!({}),
        json!({"rules": [{"host": "legacy.example.com"}]}),
    );
    let r = report(&[passthrough, classless], None);
    assert_eq!(r.suggested_spec.proxy.enable_ssl_passthrough, Some(true));
    assert!(r.suggested_spec_notes[0].contains("apps/argocd"));
    for i in &r.ingresses {
        assert_eq!(i.verdict, Verdict::ServedIdentically, "{i:?}");
        assert_eq!(i.requires.len(), 1, "{i:?}");
    }
}

#[test]
fn legacy_class_annotation_wins() {
    let mut i = simple(
        "legacy",
        json!({"kubernetes.io/ingress.class": "nginx-internal"}),
    );
    i.spec.as_mut().unwrap().ingress_class_name = Some("nginx".into());
    assert_eq!(one(i).class.as_deref(), Some("nginx-internal"));
}

#[test]
fn report_order_summary_and_text() {
    let mut b = simple("b", json!({}));
    b.metadata.namespace = Some("zeta".into());
    let a = simple("a", json!({"nginx.ingress.kubernetes.io/canary": "true"}));
    let tcp = config_map(json!({"22": "gitlab/gitlab-shell:22"}));
    let r = report_with_streams(&[b, a], None, Some(&tcp), None);
    assert_eq!(
        keys(&r.ingresses, |i| &i.name),
        ["a", "b"],
        "sorted by namespace, then name"
    );
    assert_eq!(
        r.summary,
        Summary {
            ingresses: 2,
            served_identically: 1,
            served_with_differences: 0,
            not_served: 1,
            streams_not_served: 1,
        }
    );
    let text = render::text(&r);
    assert!(
        text.ends_with(
            "Summary: 2 Ingresses: 1 served identically, 0 served with differences, 1 not \
             served; 1 TCP/UDP service not served.\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "apps/a (class nginx)\n  verdict: not served\n    - nginx.ingress.kubernetes.io/canary:"
    ));
    assert!(text.contains("TCP 22 -> gitlab/gitlab-shell:22"));

    let value: serde_json::Value = serde_json::from_str(&render::json(&r)).unwrap();
    assert_eq!(value["schemaVersion"], 1);
    assert_eq!(value["ingresses"][0]["verdict"], "not-served");
    assert_eq!(
        value["ingresses"][0]["rejected"][0]["effect"],
        "ingress-not-served"
    );
    assert_eq!(value["streams"][0]["verdict"], "not-served");
    assert_eq!(value["summary"]["streamsNotServed"], 1);
    assert_eq!(value["ingressNginxConfigMap"], serde_json::Value::Null);
}

#[test]
fn keys_of_a_dropped_policy_are_not_applied() {
    let r = one(simple(
        "sticky",
        json!({
            "nginx.ingress.kubernetes.io/affinity": "sticky",
            "nginx.ingress.kubernetes.io/session-cookie-name": "route",
            "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        }),
    ));
    assert_eq!(r.verdict, Verdict::ServedWithDifferences);
    assert_eq!(
        keys(&r.applied, |a| &a.key),
        ["nginx.ingress.kubernetes.io/proxy-body-size"]
    );
    assert_eq!(
        keys(&r.rejected, |a| &a.key),
        ["nginx.ingress.kubernetes.io/affinity"]
    );
    assert!(
        r.rejected[0].reason.contains("did you mean \"cookie\"?"),
        "{r:?}"
    );
    assert_eq!(
        keys(&r.ignored, |a| &a.key),
        ["nginx.ingress.kubernetes.io/session-cookie-name"]
    );
    assert!(
        r.ignored[0]
            .reason
            .contains("session affinity is not applied")
    );
}
