//! Table tests of [`parse_annotations`]: precedence, problems and the typed policies.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::CipherSuite;
use crate::dataplane_config::BodySizeLimit;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(pairs: &[(&str, &str)]) -> ParsedAnnotations {
    parse_annotations(&annotations(pairs))
}

fn messages(parsed: &ParsedAnnotations) -> Vec<String> {
    parsed
        .problems
        .iter()
        .map(AnnotationProblem::message)
        .collect()
}

#[test]
fn nothing_set_means_no_policies_and_no_problems() {
    let parsed = parse(&[
        ("kubernetes.io/ingress.class", "public"),
        ("example.com/x", "y"),
    ]);
    assert_eq!(parsed, ParsedAnnotations::default());
    assert!(!parsed.rejects_ingress());
}

#[test]
fn sluice_prefix_wins_and_the_other_is_not_read() {
    let parsed = parse(&[
        (
            "nginx.ingress.kubernetes.io/proxy-read-timeout",
            "not a duration",
        ),
        ("sluice.dev/proxy-read-timeout", "2m"),
        ("nginx.ingress.kubernetes.io/proxy-send-timeout", "30"),
    ]);
    assert!(parsed.problems.is_empty(), "{:?}", messages(&parsed));
    assert_eq!(
        parsed.policies.proxy.read_timeout,
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parsed.policies.proxy.send_timeout,
        Some(Duration::from_secs(30))
    );

    // The winning key is the one reported.
    let parsed = parse(&[
        ("nginx.ingress.kubernetes.io/use-regex", "true"),
        ("sluice.dev/use-regex", "maybe"),
    ]);
    assert_eq!(
        messages(&parsed),
        ["sluice.dev/use-regex: invalid value \"maybe\": expected true or false"]
    );
    assert_eq!(parsed.policies.rewrite.use_regex, None);
    assert!(!parsed.policies.rewrite.regex_mode());
}

#[test]
fn invalid_values_name_key_value_and_form() {
    let cases: &[(&str, &str, &str, Severity)] = &[
        (
            "nginx.ingress.kubernetes.io/proxy-body-size",
            "10xb",
            "nginx.ingress.kubernetes.io/proxy-body-size: invalid value \"10xb\": expected a size: \
             digits with an optional k, m or g suffix (8k, 1m; 0 means unlimited)",
            Severity::RejectPolicy,
        ),
        (
            "sluice.dev/limit-rps",
            "lots",
            "sluice.dev/limit-rps: invalid value \"lots\": expected an integer from 0 to 1000000",
            Severity::RejectPolicy,
        ),
        (
            "nginx.ingress.kubernetes.io/affinity",
            "sticky",
            "nginx.ingress.kubernetes.io/affinity: invalid value \"sticky\": expected cookie; \
             did you mean \"cookie\"?",
            Severity::RejectPolicy,
        ),
        (
            "nginx.ingress.kubernetes.io/permanent-redirect-code",
            "200",
            "nginx.ingress.kubernetes.io/permanent-redirect-code: invalid value \"200\": \
             expected an integer from 300 to 308",
            Severity::RejectPolicy,
        ),
        (
            "nginx.ingress.kubernetes.io/auth-signin",
            "https://auth.example.com/start?rd=$redirect_to",
            "nginx.ingress.kubernetes.io/auth-signin: invalid value \
             \"https://auth.example.com/start?rd=$redirect_to\": unknown variable $redirect_to \
             (supported: $scheme, $host, $http_host, $request_uri, $escaped_request_uri, $uri, \
             $args, $remote_addr, $http_<name>, $cookie_<name>, $service_name, $namespace); \
             expected an absolute http:// or https:// URL, optionally with nginx variables \
             ($scheme, $host, $escaped_request_uri, ...)",
            Severity::RejectIngress,
        ),
        (
            "nginx.ingress.kubernetes.io/whitelist-source-range",
            "10.0.0.0/8, 192.168.0.0/33",
            "nginx.ingress.kubernetes.io/whitelist-source-range: invalid value \
             \"10.0.0.0/8, 192.168.0.0/33\": expected a comma-separated list of IP addresses or \
             CIDRs (10.0.0.0/8, 2001:db8::/32, 192.0.2.1)",
            Severity::RejectIngress,
        ),
        (
            "sluice.dev/configuration-snippet",
            "more_set_headers \"X: y\";\nssl_engine x;",
            "sluice.dev/configuration-snippet: security-relevant snippet not executed: \
             `ssl_engine x` is not a header directive, so what the snippet does cannot be \
             vouched for; the Ingress is not served rather than served without the access rule \
             it may hold; move the rule to annotations such as whitelist-source-range or \
             auth-url, or delete the snippet",
            Severity::RejectIngress,
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-read-timeout",
            "6\n0",
            "nginx.ingress.kubernetes.io/proxy-read-timeout: invalid value: contains control or \
             invisible formatting characters; expected a duration greater than zero: seconds, or \
             digits with one unit of ms, s, m, h or d (60, 60s, 5m)",
            Severity::RejectPolicy,
        ),
    ];
    for (key, value, message, severity) in cases {
        let parsed = parse(&[(key, value)]);
        assert_eq!(messages(&parsed), [*message], "{key}");
        assert_eq!(parsed.problems[0].severity, *severity, "{key}");
        assert_eq!(parsed.problems[0].key, *key);
        assert_eq!(parsed.problems[0].value, *value);
        assert_eq!(
            parsed.problems[0].field_path(),
            format!("metadata.annotations['{key}']")
        );
        assert_eq!(
            parsed.rejects_ingress(),
            *severity == Severity::RejectIngress,
            "{key}"
        );
    }
}

#[test]
fn long_values_are_refused_without_being_echoed() {
    let long = format!("https://a.example/{}", "x".repeat(5000));
    let parsed = parse(&[("sluice.dev/permanent-redirect", &long)]);
    let message = parsed.problems[0].message();
    assert!(message.starts_with(
        "sluice.dev/permanent-redirect: invalid value: longer than 4096 bytes; expected"
    ));
    assert!(message.len() < 300, "{message}");
    assert_eq!(parsed.policies.redirect.permanent, None);

    // Shown values are cut to 100 characters.
    let wordy = "é".repeat(150);
    let parsed = parse(&[("sluice.dev/enable-cors", &wordy)]);
    let shown = format!("\"{}...\"", "é".repeat(100));
    assert!(parsed.problems[0].message().contains(&shown));
}

#[test]
fn unknown_keys_are_reported_once_with_suggestions() {
    let parsed = parse(&[
        ("nginx.ingress.kubernetes.io/rate-limit", "10"),
        ("sluice.dev/rate-limit", "10"),
        ("nginx.ingress.kubernetes.io/proxy-body-sise", "1m"),
        ("sluice.dev/frobnicate", "yes"),
        ("nginx.ingress.kubernetes.io/SSL-Redirect", "false"),
    ]);
    assert_eq!(
        messages(&parsed),
        [
            "nginx.ingress.kubernetes.io/SSL-Redirect: unknown annotation; ignored. Did you mean \
             nginx.ingress.kubernetes.io/ssl-redirect?",
            "nginx.ingress.kubernetes.io/proxy-body-sise: unknown annotation; ignored. Did you \
             mean nginx.ingress.kubernetes.io/proxy-body-size?",
            "sluice.dev/frobnicate: unknown annotation; ignored",
            "sluice.dev/rate-limit: unknown annotation; ignored. Did you mean \
             sluice.dev/limit-rps?",
        ]
    );
    assert!(
        parsed
            .problems
            .iter()
            .all(|p| p.severity == Severity::Ignored)
    );
}

#[test]
fn snippets_unsupported_and_fail_closed_keys() {
    let cases: &[(&str, &str, Severity, &str)] = &[
        (
            "nginx.ingress.kubernetes.io/server-snippet",
            "location /x { content_by_lua_block { os.execute(\"id\") } }",
            Severity::RejectIngress,
            "snippet not executed: `location /x` block with `content_by_lua_block` guards a path",
        ),
        (
            "nginx.ingress.kubernetes.io/modsecurity-snippet",
            "SecRuleEngine Off",
            Severity::RejectIngress,
            "ModSecurity rules (a web application firewall) have no Sluice equivalent",
        ),
        (
            "nginx.ingress.kubernetes.io/mirror-target",
            "https://mirror.example/",
            Severity::Ignored,
            "not supported by Sluice yet; ignored",
        ),
        (
            "nginx.ingress.kubernetes.io/auth-tls-secret",
            "ns/",
            Severity::RejectIngress,
            "expected a Secret name, or namespace/name",
        ),
        (
            "nginx.ingress.kubernetes.io/auth-tls-verify-client",
            "maybe",
            Severity::RejectIngress,
            "expected one of on, off, optional, optional_no_ca",
        ),
        (
            "nginx.ingress.kubernetes.io/canary-weight",
            "20%",
            Severity::RejectIngress,
            "expected an integer from 0 to 1000000",
        ),
    ];
    for (key, value, severity, text) in cases {
        let parsed = parse(&[(key, value)]);
        assert_eq!(parsed.problems.len(), 1, "{key}");
        let problem = &parsed.problems[0];
        assert_eq!(problem.severity, *severity, "{key}");
        let message = problem.message();
        assert!(message.contains(text), "{message}");
        // Snippet text is never echoed into an Event.
        assert!(!message.contains("os.execute"), "{message}");
    }
}

#[test]
fn keys_without_their_enabler_have_no_effect() {
    let parsed = parse(&[
        (
            "nginx.ingress.kubernetes.io/cors-allow-origin",
            "https://a.example",
        ),
        ("nginx.ingress.kubernetes.io/session-cookie-name", "route"),
        ("sluice.dev/enable-cors", "false"),
        ("sluice.dev/limit-burst-multiplier", "3"),
        ("sluice.dev/limit-rps", "0"),
        ("sluice.dev/permanent-redirect-code", "308"),
    ]);
    assert_eq!(
        messages(&parsed),
        [
            "nginx.ingress.kubernetes.io/cors-allow-origin: has no effect unless enable-cors is \
             true; ignored",
            "nginx.ingress.kubernetes.io/session-cookie-name: has no effect unless affinity is \
             set; ignored",
            "sluice.dev/limit-burst-multiplier: has no effect unless limit-rps is above 0 or \
             limit-rpm is above 0; ignored",
            "sluice.dev/permanent-redirect-code: has no effect unless permanent-redirect is set; \
             ignored",
        ]
    );
    assert_eq!(parsed.policies.cors, None);
    assert_eq!(parsed.policies.affinity, None);
    assert_eq!(parsed.policies.rate_limit, None);
    assert_eq!(parsed.policies.redirect.permanent, None);
}

#[test]
fn basic_auth_fails_closed() {
    let parsed = parse(&[
        ("nginx.ingress.kubernetes.io/auth-type", "basic"),
        ("nginx.ingress.kubernetes.io/auth-secret", "basic-auth"),
        (
            "nginx.ingress.kubernetes.io/auth-realm",
            "Authentication Required - foo",
        ),
    ]);
    assert!(parsed.problems.is_empty(), "{:?}", messages(&parsed));
    assert_eq!(
        parsed.policies.basic_auth,
        Some(BasicAuth {
            scheme: AuthScheme::Basic,
            secret: SecretRef {
                namespace: None,
                name: "basic-auth".into()
            },
            secret_type: AuthSecretType::AuthFile,
            realm: "Authentication Required - foo".into(),
        })
    );
    assert_eq!(parsed.policies.secret_refs().len(), 1);
    let secret = &parsed.policies.basic_auth.as_ref().unwrap().secret;
    assert_eq!(secret.name_in("shop"), Some("basic-auth"));
    let other = SecretRef {
        namespace: Some("other".into()),
        name: "x".into(),
    };
    assert_eq!(
        other.name_in("shop"),
        None,
        "no cross-namespace credentials"
    );

    let cases: &[&[(&str, &str)]] = &[
        &[("sluice.dev/auth-type", "basic")],
        &[
            ("sluice.dev/auth-type", "basci"),
            ("sluice.dev/auth-secret", "s"),
        ],
        &[
            ("sluice.dev/auth-type", "basic"),
            ("sluice.dev/auth-secret", "s"),
            ("sluice.dev/auth-realm", "say \"hi\""),
        ],
        &[
            ("sluice.dev/auth-type", "basic"),
            ("sluice.dev/auth-secret", "Not_A_Name"),
        ],
        &[
            ("sluice.dev/auth-type", "digest"),
            ("sluice.dev/auth-secret", "s"),
            ("sluice.dev/auth-secret-type", "htpasswd"),
        ],
    ];
    for pairs in cases {
        let parsed = parse(pairs);
        assert!(
            parsed.rejects_ingress(),
            "{pairs:?}: {:?}",
            messages(&parsed)
        );
        assert_eq!(parsed.policies.basic_auth, None, "{pairs:?}");
    }
    assert_eq!(
        messages(&parse(&[("sluice.dev/auth-type", "basic")])),
        ["sluice.dev/auth-type: requires auth-secret (the Secret with the credentials)"]
    );
}

#[test]
fn external_auth_with_real_world_values() {
    let signins = [
        "https://auth.example.com/oauth2/start?rd=$scheme://$http_host$request_uri",
        "https://auth.example.com/oauth2/start?rd=$escaped_request_uri",
        "https://$host/oauth2/start?rd=$escaped_request_uri",
    ];
    for signin in signins {
        let parsed = parse(&[
            (
                "nginx.ingress.kubernetes.io/auth-url",
                "https://$host/oauth2/auth",
            ),
            ("nginx.ingress.kubernetes.io/auth-signin", signin),
            (
                "nginx.ingress.kubernetes.io/auth-response-headers",
                "X-Auth-Request-User, X-Auth-Request-Email",
            ),
        ]);
        assert!(parsed.problems.is_empty(), "{:?}", messages(&parsed));
        let auth = parsed.policies.external_auth.expect("external auth");
        assert_eq!(auth.method, "GET");
        assert_eq!(
            auth.response_headers,
            ["x-auth-request-user", "x-auth-request-email"]
        );
        let vars = StaticVars(vec![
            (Var::Scheme, "https".into()),
            (Var::Host, "app.example.com".into()),
            (Var::HttpHost, "app.example.com".into()),
            (Var::RequestUri, "/orders?id=7&x=1".into()),
        ]);
        let location = auth.signin.expect("signin").expand(&vars).expect("expands");
        assert!(
            location.ends_with("rd=https://app.example.com%2Forders%3Fid%3D7%26x%3D1")
                || location.ends_with("rd=%2Forders%3Fid%3D7%26x%3D1"),
            "{location}"
        );
        assert_eq!(
            auth.url.expand(&vars).as_deref(),
            Ok("https://app.example.com/oauth2/auth")
        );
    }
}

#[test]
fn access_lists_fail_closed_and_allowlist_wins() {
    let parsed = parse(&[
        (
            "nginx.ingress.kubernetes.io/allowlist-source-range",
            "10.0.0.0/8",
        ),
        (
            "nginx.ingress.kubernetes.io/whitelist-source-range",
            "0.0.0.0/0",
        ),
        (
            "sluice.dev/denylist-source-range",
            "10.9.0.0/16, 2001:db8::1",
        ),
    ]);
    assert_eq!(
        messages(&parsed),
        [
            "nginx.ingress.kubernetes.io/whitelist-source-range: ignored: allowlist-source-range \
             is set and replaces it"
        ]
    );
    let access = parsed.policies.access.expect("access");
    assert_eq!(access.allow, Some(vec!["10.0.0.0/8".parse().unwrap()]));
    assert_eq!(
        access.deny,
        [
            "10.9.0.0/16".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap()
        ]
    );

    let parsed = parse(&[("sluice.dev/whitelist-source-range", "10.0.0.0/8,everyone")]);
    assert!(parsed.rejects_ingress());
    assert_eq!(parsed.policies.access, None);
}

#[test]
fn affinity_cors_and_rate_limits_are_applied_whole_or_not_at_all() {
    let good = parse(&[
        ("nginx.ingress.kubernetes.io/affinity", "cookie"),
        ("nginx.ingress.kubernetes.io/affinity-mode", "persistent"),
        ("nginx.ingress.kubernetes.io/session-cookie-name", "route"),
        (
            "nginx.ingress.kubernetes.io/session-cookie-max-age",
            "172800",
        ),
        ("nginx.ingress.kubernetes.io/session-cookie-samesite", "lax"),
        ("nginx.ingress.kubernetes.io/session-cookie-path", "/app"),
        ("nginx.ingress.kubernetes.io/enable-cors", "true"),
        (
            "nginx.ingress.kubernetes.io/cors-allow-origin",
            "https://a.example, https://*.b.example",
        ),
        (
            "nginx.ingress.kubernetes.io/cors-allow-credentials",
            "false",
        ),
        ("nginx.ingress.kubernetes.io/limit-rps", "10"),
        ("nginx.ingress.kubernetes.io/limit-whitelist", "10.0.0.0/8"),
    ]);
    assert!(good.problems.is_empty(), "{:?}", messages(&good));
    let affinity = good.policies.affinity.expect("affinity");
    assert_eq!(affinity.mode, AffinityMode::Persistent);
    assert_eq!(affinity.cookie_name, "route");
    assert_eq!(affinity.max_age, Some(172_800));
    assert_eq!(affinity.samesite, Some(SameSite::Lax));
    assert_eq!(affinity.cookie_path.as_deref(), Some("/app"));
    assert!(!affinity.secure);
    let cors = good.policies.cors.expect("cors");
    assert_eq!(
        cors.allow_origin,
        ["https://a.example", "https://*.b.example"]
    );
    assert_eq!(
        cors.allow_methods,
        ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]
    );
    assert!(cors.allow_headers.contains(&"authorization".to_owned()));
    assert!(!cors.allow_credentials);
    assert_eq!(cors.max_age, 1_728_000);
    let limit = good.policies.rate_limit.expect("rate limit");
    assert_eq!((limit.rps, limit.burst_multiplier), (Some(10), 5));
    assert_eq!(limit.whitelist.len(), 1);

    // One bad key drops its whole policy, and only that one.
    let bad = parse(&[
        ("nginx.ingress.kubernetes.io/affinity", "cookie"),
        ("nginx.ingress.kubernetes.io/session-cookie-name", "a;b"),
        ("nginx.ingress.kubernetes.io/enable-cors", "true"),
        ("nginx.ingress.kubernetes.io/cors-allow-origin", "evil"),
        ("nginx.ingress.kubernetes.io/limit-rps", "10"),
        ("nginx.ingress.kubernetes.io/limit-burst-multiplier", "0"),
        ("nginx.ingress.kubernetes.io/proxy-body-size", "8m"),
    ]);
    assert_eq!(bad.problems.len(), 3, "{:?}", messages(&bad));
    assert!(!bad.rejects_ingress());
    assert_eq!(bad.policies.affinity, None);
    assert_eq!(
        bad.policies.cors, None,
        "a bad origin never widens CORS to *"
    );
    assert_eq!(bad.policies.rate_limit, None);
    assert_eq!(
        bad.policies.proxy.body_size,
        Some(BodySizeLimit::Bytes(
            std::num::NonZeroU64::new(8 << 20).unwrap()
        ))
    );
}

#[test]
fn proxy_settings_are_independent() {
    let parsed = parse(&[
        ("nginx.ingress.kubernetes.io/proxy-body-size", "0"),
        ("nginx.ingress.kubernetes.io/proxy-connect-timeout", "nope"),
        ("nginx.ingress.kubernetes.io/proxy-read-timeout", "3600"),
        ("nginx.ingress.kubernetes.io/backend-protocol", "grpcs"),
        ("nginx.ingress.kubernetes.io/proxy-http-version", "1.0"),
        ("nginx.ingress.kubernetes.io/proxy-buffering", "on"),
        ("nginx.ingress.kubernetes.io/proxy-buffer-size", "16k"),
        ("nginx.ingress.kubernetes.io/proxy-next-upstream-tries", "5"),
        (
            "nginx.ingress.kubernetes.io/connection-proxy-header",
            "keep-alive",
        ),
    ]);
    assert_eq!(parsed.problems.len(), 1);
    let proxy = &parsed.policies.proxy;
    assert_eq!(proxy.body_size, Some(BodySizeLimit::Unlimited));
    assert_eq!(proxy.connect_timeout, None);
    assert_eq!(proxy.read_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(proxy.backend_protocol, Some(BackendProtocol::Grpcs));
    assert_eq!(proxy.http_version, Some(HttpVersion::Http10));
    assert_eq!(proxy.buffering, Some(true));
    assert_eq!(proxy.buffer_size, Some(16 * 1024));
    assert_eq!(proxy.next_upstream_tries, Some(5));
    assert_eq!(proxy.connection_header, Some(vec!["keep-alive".to_owned()]));
}

#[test]
fn redirects_and_rewrites() {
    let parsed = parse(&[
        ("nginx.ingress.kubernetes.io/ssl-redirect", "false"),
        ("nginx.ingress.kubernetes.io/force-ssl-redirect", "true"),
        (
            "nginx.ingress.kubernetes.io/permanent-redirect",
            "https://new.example.com$request_uri",
        ),
        ("nginx.ingress.kubernetes.io/permanent-redirect-code", "308"),
        (
            "nginx.ingress.kubernetes.io/temporal-redirect",
            "https://x.example/",
        ),
        ("nginx.ingress.kubernetes.io/app-root", "/app1"),
        ("nginx.ingress.kubernetes.io/from-to-www-redirect", "true"),
        ("nginx.ingress.kubernetes.io/rewrite-target", "/$2"),
        ("nginx.ingress.kubernetes.io/x-forwarded-prefix", "/api"),
        (
            "nginx.ingress.kubernetes.io/upstream-vhost",
            "$service_name.$namespace.svc.cluster.local",
        ),
    ]);
    assert!(parsed.problems.is_empty(), "{:?}", messages(&parsed));
    let redirect = &parsed.policies.redirect;
    assert_eq!(redirect.ssl_redirect, Some(false));
    assert_eq!(redirect.force_ssl_redirect, Some(true));
    let permanent = redirect.permanent.as_ref().expect("permanent");
    assert_eq!(permanent.code, 308);
    assert_eq!(
        permanent.url.as_str(),
        "https://new.example.com$request_uri"
    );
    assert_eq!(redirect.temporal.as_ref().map(|r| r.code), Some(302));
    assert_eq!(redirect.app_root.as_deref(), Some("/app1"));
    assert_eq!(redirect.from_to_www, Some(true));
    let rewrite = &parsed.policies.rewrite;
    assert!(rewrite.regex_mode());
    let vars = StaticVars(vec![
        (Var::Capture(2), "items/7".into()),
        (Var::ServiceName, "web".into()),
        (Var::Namespace, "shop".into()),
    ]);
    assert_eq!(
        rewrite.target.as_ref().unwrap().expand(&vars).as_deref(),
        Ok("/items/7")
    );
    assert_eq!(
        rewrite
            .upstream_vhost
            .as_ref()
            .unwrap()
            .expand(&vars)
            .as_deref(),
        Ok("web.shop.svc.cluster.local")
    );
    assert_eq!(rewrite.x_forwarded_prefix.as_deref(), Some("/api"));

    // A bad code drops its redirect, and nothing else.
    let parsed = parse(&[
        ("sluice.dev/permanent-redirect", "https://a.example/"),
        ("sluice.dev/permanent-redirect-code", "399"),
        ("sluice.dev/ssl-redirect", "false"),
    ]);
    assert_eq!(parsed.policies.redirect.permanent, None);
    assert_eq!(parsed.policies.redirect.ssl_redirect, Some(false));
}

#[test]
fn ssl_ciphers_report_what_is_not_honoured() {
    let parsed = parse(&[
        ("nginx.ingress.kubernetes.io/ssl-passthrough", "true"),
        (
            "nginx.ingress.kubernetes.io/ssl-ciphers",
            "ALL:!aNULL:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP",
        ),
    ]);
    assert_eq!(
        messages(&parsed),
        [
            "nginx.ingress.kubernetes.io/ssl-ciphers: not honoured (rustls implements no such \
             suite, or the name is unknown): RC4+RSA, +MEDIUM, +LOW, +SSLv2, +EXP"
        ]
    );
    assert_eq!(parsed.problems[0].severity, Severity::Ignored);
    let ciphers = parsed.policies.tls.ciphers.as_ref().expect("ciphers");
    assert_eq!(ciphers.tls12.len(), 6);
    assert_eq!(parsed.policies.tls.passthrough, Some(true));

    let parsed = parse(&[("sluice.dev/ssl-ciphers", "RC4-SHA:DES-CBC3-SHA")]);
    assert_eq!(parsed.problems.len(), 2);
    assert!(parsed.problems[1].message().contains("TLS 1.2 is off"));
    assert!(
        !parsed
            .policies
            .tls
            .ciphers
            .as_ref()
            .unwrap()
            .tls12_enabled()
    );

    let parsed = parse(&[(
        "sluice.dev/ssl-ciphers",
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
    )]);
    assert!(parsed.problems.is_empty());
    assert_eq!(
        parsed.policies.tls.ciphers.unwrap().tls12,
        [
            CipherSuite::EcdheRsaAes128GcmSha256,
            CipherSuite::EcdheEcdsaAes128GcmSha256
        ]
    );
}

#[test]
fn problems_are_sorted_by_key() {
    let parsed = parse(&[
        ("sluice.dev/zzz", "1"),
        ("nginx.ingress.kubernetes.io/limit-rps", "x"),
        ("sluice.dev/app-root", "nope"),
        ("nginx.ingress.kubernetes.io/aaa", "1"),
    ]);
    let keys: Vec<&str> = parsed.problems.iter().map(|p| p.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 4);
}

#[test]
fn every_key_parses_its_documented_default_or_an_example() {
    // One valid value per grammar type keeps the whole table exercised through the parser.
    for spec in TABLE {
        let min_text;
        let example = match spec.grammar {
            Grammar::Bool => "true",
            Grammar::Duration => "30s",
            Grammar::Size(_) => "8k",
            Grammar::Int { min, .. } => {
                min_text = min.to_string();
                &min_text
            }
            Grammar::Enum(e) => e.values[0],
            Grammar::CidrList => "10.0.0.0/8",
            Grammar::Url => "https://a.example/",
            Grammar::Rewrite => "/$1",
            Grammar::Host => "a.example",
            Grammar::Path => "/a",
            Grammar::TokenList => "X-A",
            Grammar::MethodList => "GET",
            Grammar::CookieName => "c",
            Grammar::Domain => "a.example",
            Grammar::Origins => "*",
            Grammar::SecretRef => "s",
            Grammar::ConfigMapRef => "c",
            Grammar::Realm => "r",
            Grammar::Ciphers => "HIGH",
            Grammar::HeaderName => "X-Canary",
            Grammar::Text => "always on",
            Grammar::Regex => "^v[0-9]+$",
            Grammar::StatusList => "404,503",
            Grammar::ServiceName => "errors",
            Grammar::KeyTemplate => "$remote_addr",
        }
        .to_owned();
        let parsed = parse(&[(&format!("sluice.dev/{}", spec.key), &example)]);
        assert!(
            parsed
                .problems
                .iter()
                .all(|p| p.severity != Severity::RejectPolicy),
            "{}: {:?}",
            spec.key,
            messages(&parsed)
        );
    }
}

fn header_value(source: &str) -> Template {
    Template::parse(TemplateKind::HeaderValue, source).expect("a header value")
}

#[test]
fn header_only_snippets_become_header_policies_without_problems() {
    let parsed = parse(&[
        (
            "nginx.ingress.kubernetes.io/configuration-snippet",
            "more_set_headers \"X-Frame-Options: DENY\";\n\
             proxy_set_header Upgrade $http_upgrade;\nproxy_set_header Connection \"upgrade\";\n\
             proxy_hide_header X-Powered-By;\nproxy_set_header X-Real-IP $remote_addr;\n",
        ),
        (
            "nginx.ingress.kubernetes.io/server-snippet",
            "add_header X-Frame-Options SAMEORIGIN always;\nadd_header X-Served-By edge;\n\
             proxy_ssl_name \"svc.ns.cluster.local\";",
        ),
    ]);
    // Events are for problems: a snippet translated whole has none.
    assert!(parsed.problems.is_empty(), "{:?}", messages(&parsed));
    let headers = &parsed.policies.headers;
    // Server first, then location; the location wins for X-Frame-Options.
    assert_eq!(
        headers.response_set,
        [
            ResponseHeader {
                name: "x-served-by".into(),
                value: header_value("edge"),
                append: true,
                always: false,
            },
            ResponseHeader {
                name: "x-frame-options".into(),
                value: header_value("DENY"),
                append: false,
                always: true,
            },
        ]
    );
    assert_eq!(headers.response_hide, ["x-powered-by"]);
    assert_eq!(
        headers.request_set,
        [("x-real-ip".to_owned(), header_value("$remote_addr"))]
    );
    assert!(headers.request_clear.is_empty());
    assert_eq!(
        headers.upstream_tls_name.as_ref().map(Template::as_str),
        Some("svc.ns.cluster.local")
    );
    assert!(!headers.response_set[0].applies_to(502));
    assert!(headers.response_set[0].applies_to(304));
    assert!(headers.response_set[1].applies_to(502));

    // sluice.dev/ wins for snippets too; the other is not read.
    let parsed = parse(&[
        (
            "nginx.ingress.kubernetes.io/configuration-snippet",
            "deny all;",
        ),
        (
            "sluice.dev/configuration-snippet",
            "more_clear_headers Server;",
        ),
    ]);
    assert!(parsed.problems.is_empty(), "{:?}", messages(&parsed));
    assert_eq!(parsed.policies.headers.response_hide, ["server"]);
}

#[test]
fn access_rules_in_snippets_fail_closed() {
    let cases = [
        (
            "nginx.ingress.kubernetes.io/server-snippet",
            "location ~* \"^/admin\" {\n  deny all;\n  return 403;\n}\n",
            "nginx.ingress.kubernetes.io/server-snippet: security-relevant snippet not executed: \
             `location ~* ^/admin` block with `deny all` guards a path: it changes how that path \
             is answered; the Ingress is not served rather than served without the access rule \
             it may hold; move the rule to annotations such as whitelist-source-range or \
             auth-url, or delete the snippet",
        ),
        (
            "nginx.ingress.kubernetes.io/configuration-snippet",
            "more_set_headers \"X-Frame-Options: DENY\";\nallow 10.0.0.0/8;\ndeny all;",
            "nginx.ingress.kubernetes.io/configuration-snippet: security-relevant snippet not \
             executed: `allow 10.0.0.0/8` restricts which client addresses are served; the \
             Ingress is not served",
        ),
        (
            "sluice.dev/configuration-snippet",
            "auth_basic \"closed\";\nauth_basic_user_file /etc/htpasswd;",
            "sluice.dev/configuration-snippet: security-relevant snippet not executed: \
             `auth_basic closed` requires authentication",
        ),
        (
            "nginx.ingress.kubernetes.io/configuration-snippet",
            "if ($http_user_agent ~* \"(GPTBot|CCBot)\") { return 403; }",
            "`if ($http_user_agent ~* (GPTBot|CCBot) )` block with `return 403` decides per \
             request",
        ),
        (
            "nginx.ingress.kubernetes.io/server-snippet",
            "more_set_headers \"X: y\"",
            "could not be read as nginx configuration (`more_set_headers X: y` does not end \
             with ';')",
        ),
        (
            "nginx.ingress.kubernetes.io/auth-snippet",
            "proxy_set_header X-Forwarded-Host $http_host;",
            "nginx.ingress.kubernetes.io/auth-snippet: auth snippets are never executed, and \
             Sluice cannot change the external-authentication request as it asks; the Ingress \
             is not served",
        ),
        (
            "nginx.ingress.kubernetes.io/modsecurity-snippet",
            "SecRule REQUEST_URI \"@beginsWith /admin\" \"id:1,deny,status:403\"",
            "nginx.ingress.kubernetes.io/modsecurity-snippet: ModSecurity rules (a web \
             application firewall) have no Sluice equivalent; the Ingress is not served",
        ),
    ];
    for (key, value, message) in cases {
        let parsed = parse(&[(key, value)]);
        assert_eq!(parsed.problems.len(), 1, "{key}={value:?}");
        assert_eq!(parsed.problems[0].severity, Severity::RejectIngress);
        assert!(parsed.rejects_ingress());
        let got = parsed.problems[0].message();
        assert!(got.contains(message), "{got}\nlacks\n{message}");
        // Nothing of a rejected snippet applies.
        assert!(parsed.policies.headers.is_empty(), "{key}={value:?}");
    }
}

#[test]
fn untranslatable_header_snippets_are_ignored_whole() {
    let parsed = parse(&[
        (
            "nginx.ingress.kubernetes.io/configuration-snippet",
            "more_set_headers \"X-Frame-Options: DENY\";\n\
             more_set_headers -s 404 \"Cache-Control: no-store\";\n\
             add_header X-Upstream $upstream_addr;",
        ),
        (
            "nginx.ingress.kubernetes.io/server-snippet",
            "more_set_headers \"X-Content-Type-Options: nosniff\";",
        ),
        (
            "nginx.ingress.kubernetes.io/stream-snippet",
            "server { listen 5432; proxy_pass db:5432; }",
        ),
    ]);
    assert_eq!(
        messages(&parsed),
        [
            "nginx.ingress.kubernetes.io/configuration-snippet: snippet not applied: \
             `more_set_headers -s 404 \"Cache-Control: no-store\"` uses the option -s, which \
             Sluice does not translate; Sluice translates a snippet only when every directive \
             sets, adds, hides or clears headers with literal values or supported variables, so \
             none of it applies; ignored",
            "nginx.ingress.kubernetes.io/stream-snippet: stream snippets define TCP/UDP servers, \
             which never applied to HTTP routes and which Sluice does not serve; ignored",
        ]
    );
    assert!(
        parsed
            .problems
            .iter()
            .all(|p| p.severity == Severity::Ignored)
    );
    assert!(!parsed.rejects_ingress());
    // All or nothing per snippet: the location's X-Frame-Options is not set, the server's
    // header is.
    let names: Vec<&str> = parsed
        .policies
        .headers
        .response_set
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(names, ["x-content-type-options"]);
}

#[test]
fn empty_snippets_have_no_effect_and_no_problem() {
    for key in [
        "configuration-snippet",
        "server-snippet",
        "auth-snippet",
        "modsecurity-snippet",
        "stream-snippet",
    ] {
        let full = format!("{NGINX_PREFIX}{key}");
        let parsed = parse(&[(&full, "  \n# nothing yet\n")]);
        assert_eq!(parsed, ParsedAnnotations::default(), "{key}");
    }
}

#[test]
fn hostile_snippet_values_are_refused_or_inert() {
    for (value, severity) in [
        // CR LF inside a value, written as nginx escapes and as real characters.
        (
            "add_header X \"a\\r\\nSet-Cookie: b=1\";",
            Severity::Ignored,
        ),
        ("add_header X \"a\r\nSet-Cookie: b=1\";", Severity::Ignored),
        ("more_set_headers \"X: a\0b\";", Severity::Ignored),
        (
            "proxy_set_header Transfer-Encoding chunked;",
            Severity::Ignored,
        ),
        (
            "more_set_headers \"X: y\"; } location / { return 200; } #",
            Severity::RejectIngress,
        ),
        ("add_header X \"y;", Severity::RejectIngress),
        ("add_header X y; }", Severity::RejectIngress),
        ("load_module /tmp/evil.so;", Severity::RejectIngress),
        ("add_header X \"$(id)\";", Severity::Ignored),
    ] {
        let parsed = parse(&[("sluice.dev/configuration-snippet", value)]);
        assert_eq!(parsed.problems.len(), 1, "{value:?}");
        assert_eq!(parsed.problems[0].severity, severity, "{value:?}");
        assert!(parsed.policies.headers.is_empty(), "{value:?}");
        let message = parsed.problems[0].message();
        assert!(!grammar::has_control(&message), "{message:?}");
    }
}

#[test]
fn tuning_snippets_are_ignored_and_name_the_annotation_to_use() {
    // Tuning only: served; the Event names the first directive and the annotations to use.
    let parsed = parse(&[(
        "nginx.ingress.kubernetes.io/configuration-snippet",
        "proxy_buffering off;\nproxy_request_buffering off;\nclient_max_body_size 0;\n\
         proxy_buffers 4 32k;",
    )]);
    assert_eq!(
        messages(&parsed),
        [
            "nginx.ingress.kubernetes.io/configuration-snippet: snippet not applied: \
             `proxy_buffering off` only tunes buffering, which Sluice does not take from a \
             snippet; Sluice translates a snippet only when every directive sets, adds, hides \
             or clears headers with literal values or supported variables, so none of it \
             applies; ignored; use nginx.ingress.kubernetes.io/proxy-buffering: \"off\", \
             nginx.ingress.kubernetes.io/proxy-request-buffering: \"off\", \
             nginx.ingress.kubernetes.io/proxy-body-size: \"0\" instead"
        ]
    );
    assert_eq!(parsed.problems[0].severity, Severity::Ignored);
    assert!(!parsed.rejects_ingress());

    // With headers: all or nothing, the header is not applied either. An annotation already
    // set is not suggested again; the suggestion takes the snippet key's prefix.
    let parsed = parse(&[
        (
            "sluice.dev/configuration-snippet",
            "more_set_headers \"X-Frame-Options: DENY\";\nproxy_read_timeout 3600;\n\
             proxy_send_timeout 3600;",
        ),
        ("sluice.dev/proxy-read-timeout", "3600"),
    ]);
    assert_eq!(parsed.problems.len(), 1, "{:?}", messages(&parsed));
    let message = parsed.problems[0].message();
    assert_eq!(parsed.problems[0].severity, Severity::Ignored);
    assert!(
        message.starts_with(
            "sluice.dev/configuration-snippet: snippet not applied: `proxy_read_timeout 3600` \
             only sets a timeout"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("; use sluice.dev/proxy-send-timeout: \"3600\" instead"),
        "{message}"
    );
    assert!(parsed.policies.headers.is_empty());
    assert_eq!(
        parsed.policies.proxy.read_timeout,
        Some(Duration::from_secs(3600))
    );

    // Server snippets too; nothing to suggest for a directive without an annotation.
    let parsed = parse(&[(
        "nginx.ingress.kubernetes.io/server-snippet",
        "gzip on;\ngzip_types text/plain application/json;\naccess_log off;",
    )]);
    assert_eq!(parsed.problems.len(), 1);
    assert_eq!(parsed.problems[0].severity, Severity::Ignored);
    assert!(
        parsed.problems[0]
            .message()
            .ends_with("so none of it applies; ignored"),
        "{:?}",
        messages(&parsed)
    );

    // A near miss beside tuning still makes the Ingress not served.
    for value in [
        "proxy_buffering off;\ndeny all;",
        "client_max_body_size $x;",
        "gzip on;\nlocation / { }",
        "expires 1h;\nif ($x) {}",
    ] {
        let parsed = parse(&[("nginx.ingress.kubernetes.io/configuration-snippet", value)]);
        assert_eq!(parsed.problems.len(), 1, "{value:?}");
        assert_eq!(
            parsed.problems[0].severity,
            Severity::RejectIngress,
            "{value:?}"
        );
    }
}

#[test]
fn custom_headers_names_a_config_map() {
    let parsed = parse(&[("nginx.ingress.kubernetes.io/custom-headers", "shop/headers")]);
    assert!(parsed.problems.is_empty(), "{:?}", messages(&parsed));
    let named = parsed
        .policies
        .custom_headers
        .as_ref()
        .expect("a reference");
    assert_eq!(named.name_in("shop"), Some("headers"));
    assert_eq!(
        named.name_in("other"),
        None,
        "no cross-namespace ConfigMaps"
    );
    // Not a Secret: the operator mirrors it as a ConfigMap.
    assert!(parsed.policies.secret_refs().is_empty());

    // An invalid name drops only this setting (headers are not an access control).
    let parsed = parse(&[("sluice.dev/custom-headers", "Not_A_Name")]);
    assert_eq!(parsed.policies.custom_headers, None);
    assert!(
        parsed
            .problems
            .iter()
            .all(|p| p.severity == Severity::RejectPolicy),
        "{:?}",
        messages(&parsed)
    );
    assert!(!parsed.problems.is_empty());
}
