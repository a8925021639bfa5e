//! CORS (`enable-cors` and the `cors-*` keys), as ingress-nginx's `CORS` template block does it.
//!
//! ingress-nginx first decides whether the request's Origin is allowed (`$cors = true`): always
//! with `cors-allow-origin: *`, else when the Origin matches one of the listed origins. Then:
//! - an allowed `OPTIONS` request is answered 204 by the proxy itself with the CORS headers
//!   ([`preflight`]);
//! - any other allowed request is proxied and the CORS headers are set on the response,
//!   replacing the upstream's ([`add_response_headers`]);
//! - a request whose Origin is not allowed (the `OPTIONS` ones included) is proxied with no CORS
//!   header added: the browser then refuses the cross-origin read.
//!
//! Two deliberate differences: the Origin must match a listed origin exactly (ingress-nginx's
//! regex is anchored at the end only, which is looser), and with a list of origins every
//! response carries `Vary: Origin` (ingress-nginx sends none), because the answer then depends
//! on the Origin and a shared cache must not serve one origin's answer to another.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    CONTENT_LENGTH, CONTENT_TYPE, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method};
use sluice_crds::annotations::Cors;

/// What `Access-Control-Allow-Origin` says for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowOrigin {
    /// `*`: `cors-allow-origin` is `*` (or unset).
    Any,
    /// The request's Origin, echoed because it matched the list.
    Echo(HeaderValue),
}

/// The headers of the 204 answering an `OPTIONS` request, or `None` when the request is not an
/// `OPTIONS` or its Origin is not allowed (ingress-nginx proxies those).
///
/// ingress-nginx answers every `OPTIONS` request whose Origin is allowed this way, preflight or
/// not, without asking the upstream; with `cors-allow-origin: *` that is every `OPTIONS`.
pub fn preflight(cors: &Cors, method: &Method, headers: &HeaderMap) -> Option<HeaderMap> {
    if method != Method::OPTIONS {
        return None;
    }
    let allow = allow_origin(cors, headers.get(ORIGIN))?;
    let mut out = HeaderMap::new();
    set_cors_headers(cors, &allow, &mut out);
    // nginx's literal value (no `;` after the type); kept for byte-for-byte parity.
    out.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain charset=UTF-8"),
    );
    out.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    Some(out)
}

/// Sets the CORS headers on a proxied response when `request_origin` is allowed, replacing any
/// the upstream sent. Otherwise adds no CORS header and leaves the upstream's, as ingress-nginx
/// does; only `Vary: Origin` is added when origins are listed.
pub fn add_response_headers(
    cors: &Cors,
    request_origin: Option<&HeaderValue>,
    response: &mut HeaderMap,
) {
    match allow_origin(cors, request_origin) {
        Some(allow) => set_cors_headers(cors, &allow, response),
        None => add_vary_origin(response),
    }
}

/// The headers ingress-nginx's `$cors = "true"` branch sets (the 204 adds its own two).
fn set_cors_headers(cors: &Cors, allow: &AllowOrigin, out: &mut HeaderMap) {
    match allow {
        // With credentials, browsers reject `*`; ingress-nginx still sends it (and
        // `Allow-Credentials: true`), so a migrated Ingress behaves the same here. The cure is
        // to list the origins.
        AllowOrigin::Any => {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        AllowOrigin::Echo(origin) => {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            add_vary_origin(out);
        }
    }
    if cors.allow_credentials {
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    } else {
        // The upstream's own value must not survive next to ours.
        out.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }
    set_list(out, ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods);
    set_list(out, ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers);
    set_list(out, ACCESS_CONTROL_EXPOSE_HEADERS, &cors.expose_headers);
    out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(cors.max_age));
}

/// Sets `name` to the items joined with ", ", or removes it when there are none (or when they
/// cannot form a header value, which validated annotations never produce).
fn set_list(out: &mut HeaderMap, name: http::HeaderName, items: &[String]) {
    match HeaderValue::from_str(&items.join(", ")) {
        Ok(value) if !items.is_empty() => {
            out.insert(name, value);
        }
        _ => {
            out.remove(name);
        }
    }
}

/// Adds `Origin` to `Vary` unless the response already varies on it (or on everything).
fn add_vary_origin(out: &mut HeaderMap) {
    let covered = out.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.eq_ignore_ascii_case("origin"))
        })
    });
    if !covered {
        out.append(VARY, HeaderValue::from_static("Origin"));
    }
}

/// Whether the Origin is allowed, and what to answer.
fn allow_origin(cors: &Cors, origin: Option<&HeaderValue>) -> Option<AllowOrigin> {
    if cors.allow_origin.is_empty() {
        return Some(AllowOrigin::Any);
    }
    let origin = origin?;
    let text = std::str::from_utf8(origin.as_bytes()).ok()?;
    // Only printable ASCII without spaces can be an origin; anything else never matches, so a
    // crafted value is never reflected.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    cors.allow_origin
        .iter()
        .any(|entry| origin_matches(entry, &lower))
        .then(|| AllowOrigin::Echo(origin.clone()))
}

/// `origin` (lowercase) against one listed origin (lowercase `scheme://host[:port]`).
///
/// A `scheme://*.domain[:port]` entry matches exactly one more label in front of `domain`
/// (letters, digits, `-`), with the same scheme and port: ingress-nginx turns the `*` into
/// `[A-Za-z0-9\-]+`, which matches a single label, not `a.b.domain` nor `domain` itself.
fn origin_matches(entry: &str, origin: &str) -> bool {
    let Some((scheme, rest)) = entry.split_once("://*.") else {
        return entry == origin;
    };
    let Some(label) = origin
        .strip_prefix(scheme)
        .and_then(|o| o.strip_prefix("://"))
        .and_then(|o| o.strip_suffix(rest))
        .and_then(|o| o.strip_suffix('.'))
    else {
        return false;
    };
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors {
            allow_origin: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["GET".into(), "PUT".into(), "OPTIONS".into()],
            allow_headers: vec!["dnt".into(), "content-type".into()],
            allow_credentials: credentials,
            expose_headers: Vec::new(),
            max_age: 1_728_000,
        }
    }

    fn origin_headers(origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    fn get(h: &HeaderMap, name: http::HeaderName) -> Option<&str> {
        h.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn origin_matching_table() {
        let list = [
            "https://app.example.com",
            "http://localhost:3000",
            "https://*.example.org",
            "myproto://*.bar.foo:9000",
        ];
        let c = cors(&list, true);
        // (origin sent, echoed?)
        let cases: &[(&str, bool)] = &[
            ("https://app.example.com", true),
            ("HTTPS://APP.Example.COM", true),
            ("http://app.example.com", false),
            ("https://app.example.com:443", false),
            ("https://app.example.com.evil.net", false),
            ("https://evil.net/https://app.example.com", false),
            ("https://xapp.example.com", false),
            ("http://localhost:3000", true),
            ("http://localhost:3001", false),
            ("http://localhost", false),
            ("https://a.example.org", true),
            ("https://a-1.example.org", true),
            ("https://A.Example.Org", true),
            ("https://a.b.example.org", false),
            ("https://example.org", false),
            ("https://.example.org", false),
            ("https://a.example.org:8443", false),
            ("http://a.example.org", false),
            ("https://a_b.example.org", false),
            ("https://aexample.org", false),
            ("myproto://x.bar.foo:9000", true),
            ("myproto://x.bar.foo", false),
            ("myproto://x.bar.foo:90001", false),
            ("null", false),
            ("", false),
            ("https://app.example.com ", false),
            ("https://app.example.com\t", false),
        ];
        for (origin, echoed) in cases {
            let value = HeaderValue::from_str(origin).unwrap();
            let mut resp = HeaderMap::new();
            add_response_headers(&c, Some(&value), &mut resp);
            assert_eq!(get(&resp, VARY), Some("Origin"), "{origin:?}");
            if *echoed {
                assert_eq!(
                    resp.get(ACCESS_CONTROL_ALLOW_ORIGIN),
                    Some(&value),
                    "{origin:?}"
                );
            } else {
                assert_eq!(resp.len(), 1, "{origin:?}: {resp:?}");
            }
        }
    }

    #[test]
    fn non_ascii_or_control_origin_never_matches() {
        let c = cors(&["https://app.example.com"], true);
        for raw in [
            &b"https://app.example.com\t"[..],
            b"https://app.\texample.com",
            b"https://app.ex\xc3\xa4mple.com",
            b"https://app.example.com\xff",
        ] {
            let value = HeaderValue::from_bytes(raw).unwrap();
            let mut resp = HeaderMap::new();
            add_response_headers(&c, Some(&value), &mut resp);
            assert_eq!(resp.get(ACCESS_CONTROL_ALLOW_ORIGIN), None, "{raw:?}");
        }
        assert!(!origin_matches(
            "https://*.example.com",
            "https://é.example.com"
        ));
    }

    #[test]
    fn preflight_table() {
        let any = cors(&[], true);
        let listed = cors(&["https://app.example.com"], false);
        // (case, policy, method, origin, answered?, allow-origin)
        type Case<'a> = (
            &'a str,
            &'a Cors,
            Method,
            Option<&'a str>,
            bool,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (
                "GET is not a preflight",
                &any,
                Method::GET,
                Some("https://x.test"),
                false,
                None,
            ),
            (
                "POST is not a preflight",
                &listed,
                Method::POST,
                Some("https://app.example.com"),
                false,
                None,
            ),
            (
                "any origin: star",
                &any,
                Method::OPTIONS,
                Some("https://x.test"),
                true,
                Some("*"),
            ),
            (
                "any origin without Origin",
                &any,
                Method::OPTIONS,
                None,
                true,
                Some("*"),
            ),
            (
                "listed: echoed",
                &listed,
                Method::OPTIONS,
                Some("https://app.example.com"),
                true,
                Some("https://app.example.com"),
            ),
            (
                "listed: unknown origin goes upstream",
                &listed,
                Method::OPTIONS,
                Some("https://x.test"),
                false,
                None,
            ),
            (
                "listed: no Origin goes upstream",
                &listed,
                Method::OPTIONS,
                None,
                false,
                None,
            ),
        ];
        for (case, policy, method, origin, answered, allow) in cases {
            let got = preflight(policy, method, &origin_headers(*origin));
            assert_eq!(got.is_some(), *answered, "{case}");
            if let Some(h) = got {
                assert_eq!(get(&h, ACCESS_CONTROL_ALLOW_ORIGIN), *allow, "{case}");
                assert_eq!(
                    get(&h, ACCESS_CONTROL_ALLOW_METHODS),
                    Some("GET, PUT, OPTIONS"),
                    "{case}"
                );
                assert_eq!(
                    get(&h, ACCESS_CONTROL_ALLOW_HEADERS),
                    Some("dnt, content-type"),
                    "{case}"
                );
                assert_eq!(get(&h, ACCESS_CONTROL_MAX_AGE), Some("1728000"), "{case}");
                assert_eq!(
                    get(&h, CONTENT_TYPE),
                    Some("text/plain charset=UTF-8"),
                    "{case}"
                );
                assert_eq!(get(&h, CONTENT_LENGTH), Some("0"), "{case}");
                assert_eq!(h.get(ACCESS_CONTROL_EXPOSE_HEADERS), None, "{case}");
            }
        }
    }

    #[test]
    fn credentials_only_when_true() {
        let h = preflight(&cors(&[], true), &Method::OPTIONS, &HeaderMap::new()).unwrap();
        assert_eq!(get(&h, ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        // ingress-nginx's combination, kept: `*` with credentials (browsers refuse it).
        assert_eq!(get(&h, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(h.get(VARY), None);

        let h = preflight(&cors(&[], false), &Method::OPTIONS, &HeaderMap::new()).unwrap();
        assert_eq!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
    }

    #[test]
    fn response_headers_replace_the_upstreams() {
        let mut c = cors(&["https://app.example.com"], false);
        c.expose_headers = vec!["x-request-id".into(), "content-range".into()];
        let origin = HeaderValue::from_static("https://app.example.com");
        let mut resp = HeaderMap::new();
        resp.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        resp.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        resp.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("DELETE"),
        );
        resp.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        resp.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        add_response_headers(&c, Some(&origin), &mut resp);

        assert_eq!(
            get(&resp, ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://app.example.com")
        );
        assert_eq!(resp.get_all(ACCESS_CONTROL_ALLOW_ORIGIN).iter().count(), 1);
        assert_eq!(resp.get(ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        assert_eq!(
            get(&resp, ACCESS_CONTROL_ALLOW_METHODS),
            Some("GET, PUT, OPTIONS")
        );
        assert_eq!(
            get(&resp, ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("x-request-id, content-range")
        );
        let vary: Vec<_> = resp.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        // Not ours: untouched.
        assert_eq!(get(&resp, CONTENT_TYPE), Some("application/json"));
    }

    #[test]
    fn vary_not_duplicated() {
        let c = cors(&["https://app.example.com"], true);
        let origin = HeaderValue::from_static("https://app.example.com");
        for existing in ["origin", "Accept, Origin", "*"] {
            let mut resp = HeaderMap::new();
            resp.insert(VARY, HeaderValue::from_static(existing));
            add_response_headers(&c, Some(&origin), &mut resp);
            assert_eq!(resp.get_all(VARY).iter().count(), 1, "{existing}");
        }
    }

    #[test]
    fn unmatched_origin_leaves_upstream_headers() {
        let c = cors(&["https://app.example.com"], true);
        let mut resp = HeaderMap::new();
        resp.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        let mut expected = resp.clone();
        expected.insert(VARY, HeaderValue::from_static("Origin"));
        add_response_headers(
            &c,
            Some(&HeaderValue::from_static("https://x.test")),
            &mut resp,
        );
        assert_eq!(resp, expected);
        add_response_headers(&c, None, &mut resp);
        assert_eq!(resp, expected);
    }

    #[test]
    fn star_for_normal_responses_without_origin() {
        let c = cors(&[], true);
        let mut resp = HeaderMap::new();
        add_response_headers(&c, None, &mut resp);
        assert_eq!(get(&resp, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(get(&resp, ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        assert_eq!(resp.get(VARY), None);
    }
}
