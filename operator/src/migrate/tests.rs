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
            "nginx.ingress.kubernetes.io/limit-rate": "1024",
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
        ["nginx.ingress.kubernetes.io/limit-rate"]
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
        json!({"nginx.ingress.kubernetes.io/enable-modsecurity": "false"}),
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
    // An invalid canary key rejects the canary (fails closed): the main Ingress keeps all
    // traffic.
    let a = simple(
        "a",
        json!({
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "lots",
        }),
    );
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
        "apps/a (class nginx)\n  verdict: not served\n    - nginx.ingress.kubernetes.io/canary-weight: \
         invalid value"
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

/// An Ingress for `host` and `path` (Prefix) in class nginx, created at `created`.
fn route(
    name: &str,
    host: &str,
    path: &str,
    created: &str,
    annotations: serde_json::Value,
) -> Ingress {
    let mut i = ingress(
        name,
        annotations,
        json!({
            "ingressClassName": "nginx",
            "rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": "Prefix",
                 "backend": {"service": {"name": name, "port": {"number": 80}}}}
            ]}}]
        }),
    );
    i.metadata.creation_timestamp =
        Some(serde_json::from_value(json!(created)).expect("an RFC 3339 time"));
    i
}

fn by_name<'r>(r: &'r Report, name: &str) -> &'r IngressReport {
    r.ingresses
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} not in the report"))
}

#[test]
fn canaries_are_served_with_their_main_ingress() {
    let weight = json!({
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "20",
    });
    let main = route(
        "shop",
        "shop.example.com",
        "/",
        "2025-01-01T00:00:00Z",
        json!({}),
    );
    let canary = route(
        "shop-canary",
        "shop.example.com",
        "/",
        "2025-01-02T00:00:00Z",
        weight.clone(),
    );
    // Same host and path, newer: the route already has a canary.
    let second = route(
        "shop-canary-2",
        "shop.example.com",
        "/",
        "2025-01-03T00:00:00Z",
        weight.clone(),
    );
    // No Ingress serves this host; another class's Ingress does not count.
    let orphan = route(
        "orphan",
        "orphan.example.com",
        "/",
        "2025-01-01T00:00:00Z",
        weight.clone(),
    );
    let mut elsewhere = route(
        "elsewhere",
        "orphan.example.com",
        "/",
        "2025-01-01T00:00:00Z",
        json!({}),
    );
    elsewhere.spec.as_mut().unwrap().ingress_class_name = Some("internal".into());
    // Same host, another path type: no main either.
    let mut exact = route(
        "exact",
        "shop.example.com",
        "/",
        "2025-01-02T00:00:00Z",
        weight,
    );
    exact.spec.as_mut().unwrap().rules.as_mut().unwrap()[0]
        .http
        .as_mut()
        .unwrap()
        .paths[0]
        .path_type = "Exact".into();
    let r = report(&[main, canary, second, orphan, elsewhere, exact], None);

    let c = by_name(&r, "shop-canary");
    assert_eq!(c.verdict, Verdict::ServedIdentically, "{c:?}");
    assert_eq!(
        keys(&c.applied, |a| &a.key),
        [
            "nginx.ingress.kubernetes.io/canary",
            "nginx.ingress.kubernetes.io/canary-weight"
        ]
    );
    assert_eq!(by_name(&r, "shop").verdict, Verdict::ServedIdentically);

    let second = by_name(&r, "shop-canary-2");
    assert_eq!(second.verdict, Verdict::NotServed);
    assert!(
        second.not_served[0].contains("already has a canary, Ingress apps/shop-canary"),
        "{second:?}"
    );

    for name in ["orphan", "exact"] {
        let o = by_name(&r, name);
        assert_eq!(o.verdict, Verdict::NotServed, "{o:?}");
        assert_eq!(o.not_served.len(), 1, "{o:?}");
        assert!(
            o.not_served[0].starts_with("no main Ingress for this canary"),
            "{o:?}"
        );
    }
    assert!(by_name(&r, "exact").not_served[0].contains("path \"/\" (Exact)"));
}

#[test]
fn canary_with_some_paths_unmatched_is_served_with_differences() {
    let main = route(
        "api",
        "api.example.com",
        "/v1",
        "2025-01-01T00:00:00Z",
        json!({}),
    );
    let mut canary = route(
        "api-canary",
        "api.example.com",
        "/v1",
        "2025-01-02T00:00:00Z",
        json!({
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
            "nginx.ingress.kubernetes.io/canary-by-header-pattern": "^(beta|internal)$",
        }),
    );
    let mut v2 = canary.spec.as_ref().unwrap().rules.as_ref().unwrap()[0]
        .http
        .as_ref()
        .unwrap()
        .paths[0]
        .clone();
    v2.path = Some("/v2".into());
    canary.spec.as_mut().unwrap().rules.as_mut().unwrap()[0]
        .http
        .as_mut()
        .unwrap()
        .paths
        .push(v2);
    let r = report(&[main, canary], None);
    let c = by_name(&r, "api-canary");
    assert_eq!(c.verdict, Verdict::ServedWithDifferences, "{c:?}");
    assert_eq!(c.differences.len(), 1);
    assert!(c.differences[0].contains("path \"/v2\" (Prefix)"), "{c:?}");
    assert_eq!(c.applied.len(), 3);
}

#[test]
fn a_canarys_other_annotations_are_the_main_ingresss() {
    let main = route(
        "web",
        "web.example.com",
        "/",
        "2025-01-01T00:00:00Z",
        json!({}),
    );
    let canary = route(
        "web-canary",
        "web.example.com",
        "/",
        "2025-01-02T00:00:00Z",
        json!({
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-by-cookie": "canary",
            "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
            "nginx.ingress.kubernetes.io/load-balance": "ewma",
            "nginx.ingress.kubernetes.io/service-upstream": "true",
        }),
    );
    let r = report(&[main, canary], None);
    let c = by_name(&r, "web-canary");
    assert_eq!(
        keys(&c.applied, |a| &a.key),
        [
            "nginx.ingress.kubernetes.io/canary",
            "nginx.ingress.kubernetes.io/canary-by-cookie",
            "nginx.ingress.kubernetes.io/service-upstream"
        ]
    );
    assert_eq!(
        keys(&c.ignored, |a| &a.key),
        [
            "nginx.ingress.kubernetes.io/load-balance",
            "nginx.ingress.kubernetes.io/proxy-body-size"
        ]
    );
    assert!(c.ignored[1].reason.contains("main Ingress's policies"));
    // ingress-nginx ignored proxy-body-size on a canary too; load-balance it applied.
    assert_eq!(c.differences.len(), 1, "{c:?}");
    assert!(c.differences[0].starts_with(
        "nginx.ingress.kubernetes.io/load-balance: not applied to the canary's endpoints"
    ));
    assert_eq!(c.verdict, Verdict::ServedWithDifferences);
}

#[test]
fn invalid_canary_keys_reject_the_canary() {
    let main = route(
        "app",
        "app.example.com",
        "/",
        "2025-01-01T00:00:00Z",
        json!({}),
    );
    let canary = route(
        "app-canary",
        "app.example.com",
        "/",
        "2025-01-02T00:00:00Z",
        json!({
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-by-header-pattern": "([",
            "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
        }),
    );
    let r = report(&[main, canary], None);
    let c = by_name(&r, "app-canary");
    assert_eq!(c.verdict, Verdict::NotServed);
    assert_eq!(
        keys(&c.rejected, |a| &a.key),
        ["nginx.ingress.kubernetes.io/canary-by-header-pattern"]
    );
    assert_eq!(c.rejected[0].effect, RejectEffect::IngressNotServed);
    // Only the parser's reason: the main-Ingress check is not reached.
    assert_eq!(c.not_served.len(), 1, "{c:?}");
}

fn with_tls(mut i: Ingress, host: &str) -> Ingress {
    i.spec.as_mut().unwrap().tls = Some(vec![
        serde_json::from_value(json!({"hosts": [host], "secretName": "tls"})).unwrap(),
    ]);
    i
}

#[test]
fn client_certificates() {
    let mtls = json!({
        "nginx.ingress.kubernetes.io/auth-tls-secret": "apps/ca",
        "nginx.ingress.kubernetes.io/auth-tls-verify-client": "on",
        "nginx.ingress.kubernetes.io/auth-tls-verify-depth": "2",
        "nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream": "true",
    });
    let ok = one(with_tls(simple("mtls", mtls.clone()), "mtls.example.com"));
    assert_eq!(ok.verdict, Verdict::ServedIdentically, "{ok:?}");
    assert_eq!(ok.applied.len(), 4);

    // No TLS host to ask for certificates on.
    let plain = one(simple("plain", mtls.clone()));
    assert_eq!(plain.verdict, Verdict::NotServed);
    assert!(plain.not_served[0].contains("has none"), "{plain:?}");
    // Unless nothing is asked.
    let off = one(simple(
        "off",
        json!({
            "nginx.ingress.kubernetes.io/auth-tls-secret": "ca",
            "nginx.ingress.kubernetes.io/auth-tls-verify-client": "off",
        }),
    ));
    assert_eq!(off.verdict, Verdict::ServedIdentically, "{off:?}");

    // Another namespace's CA fails closed.
    let foreign = one(with_tls(
        simple(
            "foreign",
            json!({"nginx.ingress.kubernetes.io/auth-tls-secret": "security/ca"}),
        ),
        "foreign.example.com",
    ));
    assert_eq!(foreign.verdict, Verdict::NotServed);
    assert!(
        foreign.not_served[0].contains("Secret security/ca is in another namespace"),
        "{foreign:?}"
    );

    // An invalid value denies the Ingress.
    let bad = one(with_tls(
        simple(
            "bad",
            json!({
                "nginx.ingress.kubernetes.io/auth-tls-secret": "ca",
                "nginx.ingress.kubernetes.io/auth-tls-verify-client": "maybe",
            }),
        ),
        "bad.example.com",
    ));
    assert_eq!(bad.verdict, Verdict::NotServed);
    assert_eq!(bad.rejected[0].effect, RejectEffect::IngressNotServed);
}

#[test]
fn an_older_ingress_decides_a_hosts_client_certificates() {
    let older = with_tls(
        route(
            "site",
            "site.example.com",
            "/",
            "2025-01-01T00:00:00Z",
            json!({}),
        ),
        "site.example.com",
    );
    let newer = with_tls(
        route(
            "admin",
            "site.example.com",
            "/admin",
            "2025-01-02T00:00:00Z",
            json!({"nginx.ingress.kubernetes.io/auth-tls-secret": "ca"}),
        ),
        "site.example.com",
    );
    let r = report(&[older.clone(), newer.clone()], None);
    let admin = by_name(&r, "admin");
    assert_eq!(admin.verdict, Verdict::NotServed);
    assert!(
        admin.not_served[0]
            .contains("client certificates ignored for host site.example.com: Ingress apps/site"),
        "{admin:?}"
    );
    assert_eq!(by_name(&r, "site").verdict, Verdict::ServedIdentically);

    // The same settings on both (the Secret's namespace written or not): nothing lost.
    let mut same = older;
    same.metadata.annotations = Some(
        [(
            "nginx.ingress.kubernetes.io/auth-tls-secret".to_owned(),
            "apps/ca".to_owned(),
        )]
        .into(),
    );
    let r = report(&[same, newer], None);
    assert_eq!(by_name(&r, "admin").verdict, Verdict::ServedIdentically);
}

#[test]
fn tls_to_backends() {
    let full = one(simple(
        "https",
        json!({
            "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
            "nginx.ingress.kubernetes.io/proxy-ssl-secret": "apps/backend-tls",
            "nginx.ingress.kubernetes.io/proxy-ssl-verify": "on",
            "nginx.ingress.kubernetes.io/proxy-ssl-name": "api.internal",
            "nginx.ingress.kubernetes.io/proxy-ssl-server-name": "on",
        }),
    ));
    assert_eq!(full.verdict, Verdict::ServedIdentically, "{full:?}");
    assert_eq!(full.applied.len(), 5);

    let depth = one(simple(
        "depth",
        json!({
            "nginx.ingress.kubernetes.io/proxy-ssl-secret": "backend-tls",
            "nginx.ingress.kubernetes.io/proxy-ssl-verify": "on",
            "nginx.ingress.kubernetes.io/proxy-ssl-verify-depth": "2",
        }),
    ));
    assert_eq!(depth.verdict, Verdict::ServedWithDifferences);
    assert_eq!(depth.differences.len(), 2, "{depth:?}");
    assert!(
        depth.differences[0].contains("rustls verifies"),
        "{depth:?}"
    );
    assert!(
        depth.differences[1].contains("<service>.apps.svc"),
        "{depth:?}"
    );

    let foreign = one(simple(
        "foreign",
        json!({"nginx.ingress.kubernetes.io/proxy-ssl-secret": "other/backend-tls"}),
    ));
    assert_eq!(foreign.verdict, Verdict::NotServed);

    // proxy-ssl-* fail open on an invalid value: the policy is dropped, the Ingress served.
    let bad = one(simple(
        "bad",
        json!({
            "nginx.ingress.kubernetes.io/proxy-ssl-secret": "backend-tls",
            "nginx.ingress.kubernetes.io/proxy-ssl-verify": "yes please",
        }),
    ));
    assert_eq!(bad.verdict, Verdict::ServedWithDifferences, "{bad:?}");
    assert_eq!(bad.rejected[0].effect, RejectEffect::PolicyNotApplied);
}

#[test]
fn load_balancing() {
    let rr = one(simple(
        "rr",
        json!({
            "nginx.ingress.kubernetes.io/load-balance": "round_robin",
            "nginx.ingress.kubernetes.io/service-upstream": "true",
        }),
    ));
    assert_eq!(rr.verdict, Verdict::ServedIdentically, "{rr:?}");

    let ewma = one(simple(
        "ewma",
        json!({"nginx.ingress.kubernetes.io/load-balance": "ewma"}),
    ));
    assert_eq!(ewma.verdict, Verdict::ServedWithDifferences);
    assert!(ewma.differences[0].contains("two random choices"));

    let hash = one(simple(
        "hash",
        json!({
            "nginx.ingress.kubernetes.io/upstream-hash-by": "$request_uri",
            "nginx.ingress.kubernetes.io/upstream-hash-by-subset": "true",
        }),
    ));
    assert_eq!(
        keys(&hash.applied, |a| &a.key),
        ["nginx.ingress.kubernetes.io/upstream-hash-by"]
    );
    assert_eq!(
        keys(&hash.ignored, |a| &a.key),
        ["nginx.ingress.kubernetes.io/upstream-hash-by-subset"]
    );
    assert!(
        hash.differences[0].ends_with(
            "applied without subsets: each key goes to one endpoint, not to a subset of them"
        ),
        "{hash:?}"
    );
}

#[test]
fn custom_errors() {
    let own = one(simple(
        "own",
        json!({
            "nginx.ingress.kubernetes.io/custom-http-errors": "404,503",
            "nginx.ingress.kubernetes.io/default-backend": "error-pages",
        }),
    ));
    assert_eq!(own.verdict, Verdict::ServedIdentically, "{own:?}");
    assert!(own.requires.is_empty());

    let set = one(simple(
        "set",
        json!({"nginx.ingress.kubernetes.io/custom-http-errors": "503"}),
    ));
    assert_eq!(set.verdict, Verdict::ServedIdentically);
    assert!(
        set.requires[0].starts_with("spec.defaultBackend"),
        "{set:?}"
    );

    let bad = one(simple(
        "bad",
        json!({"nginx.ingress.kubernetes.io/custom-http-errors": "404,teapot"}),
    ));
    assert_eq!(bad.verdict, Verdict::ServedWithDifferences);
    assert_eq!(bad.rejected[0].effect, RejectEffect::PolicyNotApplied);
}
