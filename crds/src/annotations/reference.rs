//! The annotation reference, `docs/annotations.md`, generated from [`TABLE`].

use std::fmt::Write as _;

use super::admission::{NGINX_POLICY_NAME, POLICY_NAME, POLICY_PATH};
use super::snippet::{Args, MAX_HEADER_DIRECTIVES, TUNING};
use super::table::{PolicyGroup, SNIPPETS, UNSUPPORTED, Unsupported};
use super::template::SUPPORTED_VARIABLES;
use super::{MAX_VALUE_BYTES, NGINX_PREFIX, SLUICE_PREFIX, TABLE};

/// Where the reference is committed, relative to the workspace root.
pub const REFERENCE_PATH: &str = "docs/annotations.md";
/// The command that regenerates it.
pub const REGENERATE: &str = "cargo run -p sluice-crds --bin annotations-doc > docs/annotations.md";

/// Escapes text for a Markdown table cell.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '|' | '*' | '_' | '`' | '<' | '>' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The reference as Markdown.
pub fn markdown() -> String {
    let mut md = String::new();
    let w = &mut md;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "<!-- Generated from crds/src/annotations/table.rs; do not edit.\n     \
         Regenerate: {REGENERATE} -->\n\n\
         # Ingress annotation reference\n\n\
         Sluice reads every key below as `{SLUICE_PREFIX}<key>` and, so that Ingresses written for \
         ingress-nginx keep working, as `{NGINX_PREFIX}<key>` with the same meaning. When both are \
         set, `{SLUICE_PREFIX}` wins and the other is not read.\n\n\
         Every value is parsed with a strict grammar into a typed policy; no value is ever pasted \
         into configuration or executed. A value that does not parse is reported as an Event on \
         the Ingress naming the key, the value and the expected form, and then:\n\n\
         - *policy not applied*: the Ingress is served without that setting or policy (the \
           \"On invalid value\" column says which);\n\
         - *Ingress not served*: for authentication and access lists, serving without them would \
           expose what they protect, so the whole Ingress is skipped (fails closed) until it is \
           fixed. Every other Ingress keeps serving.\n\n\
         Values are at most {MAX_VALUE_BYTES} bytes and must not contain control or invisible \
         formatting characters (line breaks, NUL, zero-width spaces, bidirectional overrides). \
         Booleans accept what ingress-nginx accepted: `true`, `false`, `True`, `TRUE`, `1`, `t`, \
         and their false forms. Unknown keys under either prefix are reported once (with a \
         suggestion for a likely typo) and ignored.\n"
    );
    for group in PolicyGroup::ALL {
        let _ = writeln!(
            w,
            "## {}\n\n| Key | Type and form | Default | Description | On invalid value |\n\
             | --- | --- | --- | --- | --- |",
            group.title()
        );
        for spec in TABLE.iter().filter(|s| s.group == group) {
            let default = match spec.default {
                "" => "none".to_owned(),
                d if d.starts_with("the ") => cell(d),
                d => format!("`{d}`"),
            };
            let mut description = cell(spec.description);
            if !spec.requires.is_empty() {
                let keys: Vec<String> = spec.requires.iter().map(|k| format!("`{k}`")).collect();
                let _ = write!(description, " Needs {}.", keys.join(" or "));
            }
            let _ = writeln!(
                w,
                "| `{}` | {}: {} | {} | {} | {} |",
                spec.key,
                spec.grammar.type_name(),
                cell(&spec.grammar.expected()),
                default,
                description,
                cell(&spec.on_invalid()),
            );
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(
        w,
        "## Variables in URLs, paths and hosts\n\n\
         `permanent-redirect`, `temporal-redirect`, `auth-url`, `auth-signin`, `rewrite-target` \
         and `upstream-vhost` may use these nginx variables, written `$name` or `${{name}}`: \
         {}. Any other `$name` is refused. `rewrite-target` also takes `$1` to `$9`, the capture \
         groups of the path regex.\n\n\
         A value is parsed once into literal text and typed variables; each request's values are \
         escaped for the place they stand in, never pasted as text:\n\n\
         - in a query or fragment, a value is percent-encoded as one component, so \
           `?rd=$scheme://$http_host$request_uri` carries the whole original URL in `rd`, \
           `&` and `#` included (`$escaped_request_uri` is the request URI alone, encoded the \
           same way); `$args` stays the request's own query string;\n\
         - in a path, `$request_uri` is the request's own path and query and `$uri` its path; \
           any other value is one path segment (`/` and a lone `..` are encoded);\n\
         - in a host (`https://$host/...`, `upstream-vhost`), a value with anything but letters, \
           digits, `.`, `-`, `_`, `:` and brackets fails the request instead of being used;\n\
         - in a header value, control characters (CR, LF, NUL, ...) are removed.\n",
        SUPPORTED_VARIABLES
            .split(", ")
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        w,
        "## TLS cipher lists\n\n\
         `ssl-ciphers` takes OpenSSL's cipher-list syntax (`ALL`, `HIGH`, `aRSA`, `ECDHE+AESGCM`, \
         `!x`, `-x`, `+x`, `@STRENGTH`, OpenSSL and IANA suite names) and evaluates it with \
         OpenSSL's rules against the TLS 1.2 suites rustls implements (ECDHE with AES-GCM or \
         ChaCha20-Poly1305). Like nginx's `ssl_ciphers`, it governs TLS 1.2 only; TLS 1.3 suites \
         and protocol versions are set-wide (`spec.proxy`). Elements asking for suites rustls \
         does not have (RC4, export, SSLv2, CBC, DHE, ...) are listed in an Event and skipped; \
         a list that leaves no suite turns TLS 1.2 off for the Ingress's hosts (Event too).\n"
    );
    let _ = writeln!(
        w,
        "## Snippets\n\n\
         {} are never executed: they hold nginx configuration, and running user-written \
         configuration is how ingress-nginx's worst CVEs happened.\n\n\
         A `server-snippet` or `configuration-snippet` whose every directive is in this header \
         subset is translated into typed header policies, like an annotation, and applies \
         without an Event:\n\n\
         - `more_set_headers \"Name: value\" ...` sets response headers on every response, \
           replacing any of that name; `add_header Name value [always]` adds one beside any of \
           that name, only on 200, 201, 204, 206, 301, 302, 303, 304, 307 and 308 unless \
           `always`, as nginx does; `proxy_hide_header Name` and `more_clear_headers Name ...` \
           remove response headers;\n\
         - `proxy_set_header Name value` and `more_set_input_headers \"Name: value\" ...` set \
           request headers towards the backend (an empty `proxy_set_header` value removes the \
           header, as in nginx); `more_clear_input_headers Name ...` removes them;\n\
         - `proxy_ssl_name name` sets the server name of TLS to the backend \
           (`proxy_ssl_server_name on` is accepted);\n\
         - the WebSocket pair `proxy_set_header Upgrade $http_upgrade` and `proxy_set_header \
           Connection \"upgrade\"` (or `$connection_upgrade`), and `proxy_http_version 1.1`, \
           which Sluice does by itself.\n\n\
         Header names must be tokens (`more_clear_headers` and `more_clear_input_headers` also \
         take a trailing `*`); values must not contain control or invisible characters and may \
         use the variables above. Headers that frame or route a message (`Content-Length`, \
         `Transfer-Encoding`, `Connection`, `Upgrade`, `TE`, `Trailer`, `Keep-Alive`, \
         `Proxy-*`, and `Host` except in `proxy_set_header`) are refused, as are headers-more's \
         options (`-s`, `-t`, `-r`, `-a`) and more than {MAX_HEADER_DIRECTIVES} directives. \
         When both snippets name a header, the `configuration-snippet` wins.\n\n\
         A snippet is translated whole or not at all. With a directive outside the subset:\n\n\
         - if the snippet may hold an access rule (`deny`, `allow`, `return`, `auth_basic`, \
           `rewrite`, an `if` or `location` block, Lua, any directive Sluice cannot vouch for, \
           or text that does not read as nginx configuration), the Ingress is *not served*, \
           rather than served without the rule. The Event names the directive: move the rule \
           to annotations such as `whitelist-source-range` or `auth-url`, or delete the \
           snippet;\n\
         - otherwise (headers Sluice does not translate, or directives that only tune \
           buffering, timeouts, compression, caching or logging, listed below), the Ingress is \
           served, the snippet is ignored and the Event names the first directive outside the \
           subset, and the annotation to use instead where Sluice has one.\n\n\
         These directives are harmless to drop, when written as plain directives with simple \
         arguments (sizes, times, `on`/`off`; no block, no `$` variable except in \
         `proxy_cache_bypass` and `proxy_no_cache`): {}.\n\n\
         A non-empty `auth-snippet` or `modsecurity-snippet` makes the Ingress not served: \
         Sluice cannot change the external-authentication request, and a firewall rule \
         dropped silently would let through what it blocks. A `stream-snippet` is reported and \
         ignored: it never applied to HTTP routes. A snippet that is empty or only `#` \
         comments has no effect.\n",
        SNIPPETS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", "),
        TUNING
            .iter()
            .map(|t| {
                let mut notes = Vec::new();
                if let Args::Word(words) = t.args {
                    let words: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
                    notes.push(format!("{} only", words.join(" or ")));
                }
                if let Some(key) = t.annotation {
                    notes.push(format!("instead: `{key}`"));
                }
                if notes.is_empty() {
                    format!("`{}`", t.name)
                } else {
                    format!("`{}` ({})", t.name, notes.join("; "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    let ignored: Vec<String> = UNSUPPORTED
        .iter()
        .filter(|(_, kind)| *kind == Unsupported::Ignored)
        .map(|(k, _)| format!("`{k}`"))
        .collect();
    let _ = writeln!(
        w,
        "## ingress-nginx keys not supported yet\n\n\
         These are reported as an Event and ignored: {}.\n\n\
         Two are not ignored, because serving the Ingress without them would be wrong: \
         `auth-tls-secret` (client-certificate authentication) makes the Ingress not served \
         rather than served without the check, and `canary: \"true\"` makes the canary Ingress \
         not served, so its main Ingress keeps all traffic.\n",
        ignored.join(", ")
    );
    let _ = write!(
        w,
        "## Checked at apply time\n\n\
         `{POLICY_PATH}` (part of `config/default`) holds two ValidatingAdmissionPolicies, CEL \
         evaluated by the API server with no webhook. `{POLICY_NAME}` checks `{SLUICE_PREFIX}` \
         keys on every Ingress; `{NGINX_POLICY_NAME}` checks `{NGINX_PREFIX}` keys only on \
         Ingresses of an IngressClass with controller `sluice.dev/ingress-controller`, so \
         Ingresses still served by ingress-nginx are left alone. They refuse a value that is too \
         long, has control characters or breaks its key's syntax, with the message the Event \
         would carry; deeper checks (an unknown `$variable`, a Secret name) are left to the data \
         plane's Events. Unchanged values are not re-checked on update, and a policy that cannot \
         be evaluated lets the request through (`failurePolicy: Ignore`). Needs Kubernetes 1.31 \
         or later.\n"
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_reference_matches_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/annotations.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == markdown(),
            "{REFERENCE_PATH} is missing or differs from what the annotation table generates.\n\
             Regenerate it from the workspace root with:\n    {REGENERATE}"
        );
    }

    #[test]
    fn every_key_has_a_row() {
        let md = markdown();
        for spec in TABLE {
            assert!(md.contains(&format!("| `{}` |", spec.key)), "{}", spec.key);
        }
        // One row per key: no cell broke the table.
        let rows = md
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.matches(" | ").count())
            .collect::<Vec<_>>();
        assert_eq!(rows.len(), TABLE.len());
        assert!(rows.iter().all(|n| *n == 4), "{rows:?}");
    }

    #[test]
    fn cells_are_escaped() {
        assert_eq!(cell("a|b*c_d`e"), r"a\|b\*c\_d\`e");
    }
}
