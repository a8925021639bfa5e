//! The ingress-nginx controller ConfigMap mapped onto `spec.proxy`, and its TCP/UDP services
//! ConfigMaps.
//!
//! `spec.proxy` is named after the ingress-nginx ConfigMap keys, so most of the mapping is a
//! rename plus a check that Sluice accepts the value. The rest of the ConfigMap falls in three
//! kinds, and each Ingress's verdict inherits what matters for it:
//!
//! - no effect on what is served (worker tuning, logs, tracing, nginx internals, values equal
//!   to ingress-nginx's default): listed, nothing else;
//! - a set-wide behaviour Sluice lacks (`use-gzip`, `ssl-redirect: "false"`, unknown keys):
//!   every Ingress is served with differences;
//! - a set-wide access rule (`global-auth-url`, `whitelist-source-range`, `block-cidrs`, a
//!   `server-snippet` that may hold an access rule, ...): the Ingresses it protects are not
//!   served, because serving them without it would expose what it protects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;
use sluice_crds::annotations::grammar::{BOOL_FALSE, BOOL_TRUE, Grammar, Value};
use sluice_crds::annotations::{NGINX_PREFIX, SLUICE_PREFIX};
use sluice_crds::dataplane_config::{
    DEFAULT_SSL_CIPHERS, DataplaneConfig, IpCidr, MAX_HSTS_MAX_AGE, MAX_PROXY_NEXT_UPSTREAM_TRIES,
    parse_duration, parse_size,
};
use sluice_crds::{ProxySettings, TlsProtocol};

use sluice_crds::annotations::snippet::{self, Assessment};

/// What a ConfigMap key that is not carried over does to the Ingresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Nothing that changes how requests are answered.
    None,
    /// Every Ingress is served, differently.
    Difference,
    /// What it protects or defines is not served (see the finding's reason for which).
    NotServed,
}

/// A key mapped onto the suggested spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappedKey {
    /// The ingress-nginx key.
    pub key: String,
    /// Its value as written.
    pub value: String,
    /// The field of the IngressControllerSet spec it became, e.g. `proxy.proxyBodySize`.
    pub field: String,
    /// What was not carried over of the value (TLS 1.1, DHE suites, ...), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A key that is not carried over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFinding {
    /// The ingress-nginx key.
    pub key: String,
    /// Its value as written.
    pub value: String,
    /// Why it is not carried over, and what that means.
    pub reason: String,
    /// What it does to the Ingresses.
    pub effect: Effect,
}

/// The controller ConfigMap's section of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapReport {
    /// Namespace of the ConfigMap.
    pub namespace: String,
    /// Name of the ConfigMap.
    pub name: String,
    /// Keys carried over into the suggested spec.
    pub mapped: Vec<MappedKey>,
    /// Keys not carried over, sorted by key.
    pub not_carried_over: Vec<ConfigFinding>,
}

/// Which Ingresses a set-wide rule reaches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reach {
    /// Every Ingress.
    All,
    /// Ingresses that set none of these annotations (bare keys) themselves: in ingress-nginx
    /// the Ingress's own value replaces the global one.
    UnlessOwn(&'static [&'static str]),
    /// Global external auth: not for Ingresses with their own `auth-url` or with
    /// `enable-global-auth: "false"`.
    GlobalAuth,
    /// The web application firewall: not for Ingresses with `enable-modsecurity: "false"`.
    Modsecurity,
}

impl Reach {
    pub(crate) fn reaches(self, annotations: &BTreeMap<String, String>) -> bool {
        let own = |bare: &str| {
            [SLUICE_PREFIX, NGINX_PREFIX]
                .iter()
                .find_map(|prefix| annotations.get(&format!("{prefix}{bare}")))
        };
        match self {
            Reach::All => true,
            Reach::UnlessOwn(keys) => keys.iter().all(|k| own(k).is_none()),
            Reach::GlobalAuth => {
                own("auth-url").is_none()
                    && !own("enable-global-auth").is_some_and(|v| BOOL_FALSE.contains(&v.as_str()))
            }
            Reach::Modsecurity => {
                !own("enable-modsecurity").is_some_and(|v| BOOL_FALSE.contains(&v.as_str()))
            }
        }
    }
}

/// A set-wide finding each Ingress it reaches inherits.
#[derive(Debug, Clone)]
pub(crate) struct SetWideRule {
    pub(crate) key: String,
    pub(crate) reason: String,
    pub(crate) effect: Effect,
    pub(crate) reach: Reach,
}

/// The mapping's result.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    pub(crate) report: ConfigMapReport,
    pub(crate) proxy: ProxySettings,
    pub(crate) proxy_protocol: Option<bool>,
    pub(crate) rules: Vec<SetWideRule>,
}

/// Maps the controller ConfigMap.
pub(crate) fn map(config_map: &ConfigMap) -> Mapped {
    let data = config_map.data.clone().unwrap_or_default();
    let mut out = Mapped {
        report: ConfigMapReport {
            namespace: config_map.metadata.namespace.clone().unwrap_or_default(),
            name: config_map.metadata.name.clone().unwrap_or_default(),
            mapped: Vec::new(),
            not_carried_over: Vec::new(),
        },
        proxy: ProxySettings::default(),
        proxy_protocol: None,
        rules: Vec::new(),
    };
    for (key, value) in &data {
        match map_key(key, value, &mut out.proxy, &mut out.proxy_protocol) {
            Ok(Some((field, note))) => out.report.mapped.push(MappedKey {
                key: key.clone(),
                value: value.clone(),
                field: field.to_owned(),
                note,
            }),
            Ok(None) => {
                let (reason, effect, reach) = unmapped(key, value);
                out.report.not_carried_over.push(ConfigFinding {
                    key: key.clone(),
                    value: value.clone(),
                    reason: reason.clone(),
                    effect,
                });
                if let Some(reach) = reach {
                    out.rules.push(SetWideRule {
                        key: key.clone(),
                        reason,
                        effect,
                        reach,
                    });
                }
            }
            Err(why) => {
                let reason = format!("{why}; Sluice's default applies instead");
                out.report.not_carried_over.push(ConfigFinding {
                    key: key.clone(),
                    value: value.clone(),
                    reason: reason.clone(),
                    effect: Effect::Difference,
                });
                out.rules.push(SetWideRule {
                    key: key.clone(),
                    reason,
                    effect: Effect::Difference,
                    reach: Reach::All,
                });
            }
        }
    }
    // Mapped notes that drop part of a value (TLS 1.1, DHE suites) change what some clients
    // get: every Ingress inherits them as differences.
    for mapped in &out.report.mapped {
        if let Some(note) = &mapped.note {
            out.rules.push(SetWideRule {
                key: mapped.key.clone(),
                reason: note.clone(),
                effect: Effect::Difference,
                reach: Reach::All,
            });
        }
    }
    debug_assert!(
        DataplaneConfig::from_proxy(&out.proxy).is_ok(),
        "every mapped value was checked"
    );
    out
}

/// `Ok(Some((field, note)))`: mapped (the note says what part of the value was dropped);
/// `Ok(None)`: not a mapped key; `Err`: a mapped key whose value Sluice does not accept.
fn map_key(
    key: &str,
    value: &str,
    proxy: &mut ProxySettings,
    proxy_protocol: &mut Option<bool>,
) -> Result<Option<(&'static str, Option<String>)>, String> {
    let field = match key {
        "ssl-protocols" => {
            let mut protocols = Vec::new();
            let mut dropped = Vec::new();
            for word in value.split_whitespace() {
                match word {
                    "TLSv1.2" => protocols.push(TlsProtocol::Tls12),
                    "TLSv1.3" => protocols.push(TlsProtocol::Tls13),
                    other => dropped.push(other.to_owned()),
                }
            }
            protocols.sort_unstable();
            protocols.dedup();
            if protocols.is_empty() {
                return Err(format!(
                    "names no protocol Sluice supports (TLSv1.2, TLSv1.3): {value:?}"
                ));
            }
            let note = (!dropped.is_empty()).then(|| {
                format!(
                    "{} not supported: Sluice accepts TLS 1.2 and 1.3 only, so clients limited to \
                     older versions cannot connect",
                    dropped.join(", ")
                )
            });
            if protocols != [TlsProtocol::Tls12, TlsProtocol::Tls13] {
                proxy.ssl_protocols = protocols;
            }
            return Ok(Some(("proxy.sslProtocols", note)));
        }
        "ssl-ciphers" => {
            let selection = match Grammar::Ciphers.parse(value) {
                Ok(Value::Ciphers(selection)) => selection,
                _ => return Err(format!("is not an OpenSSL cipher list: {value:?}")),
            };
            if selection.tls12.is_empty() {
                return Err(format!(
                    "selects no TLS 1.2 cipher suite Sluice implements ({value:?})"
                ));
            }
            let note = (!selection.not_honoured.is_empty()).then(|| {
                format!(
                    "not honoured (no such suite in rustls, or unknown): {}",
                    selection.not_honoured.join(", ")
                )
            });
            if selection.tls12 != DEFAULT_SSL_CIPHERS {
                proxy.ssl_ciphers = selection.tls12;
            }
            return Ok(Some(("proxy.sslCiphers", note)));
        }
        "hsts" => {
            proxy.hsts = Some(boolean(value)?);
            "proxy.hsts"
        }
        "hsts-include-subdomains" => {
            proxy.hsts_include_subdomains = Some(boolean(value)?);
            "proxy.hstsIncludeSubdomains"
        }
        "hsts-preload" => {
            proxy.hsts_preload = Some(boolean(value)?);
            "proxy.hstsPreload"
        }
        "hsts-max-age" => {
            let age: i64 = value
                .parse()
                .ok()
                .filter(|n| (0..=MAX_HSTS_MAX_AGE as i64).contains(n))
                .ok_or_else(|| format!("is not a number of seconds up to {MAX_HSTS_MAX_AGE}"))?;
            proxy.hsts_max_age = Some(age);
            "proxy.hstsMaxAge"
        }
        "proxy-body-size" => {
            parse_size(value).map_err(|e| e.to_string())?;
            proxy.proxy_body_size = Some(value.to_owned());
            "proxy.proxyBodySize"
        }
        "proxy-connect-timeout" => {
            proxy.proxy_connect_timeout = Some(timeout(value)?);
            "proxy.proxyConnectTimeout"
        }
        "proxy-read-timeout" => {
            proxy.proxy_read_timeout = Some(timeout(value)?);
            "proxy.proxyReadTimeout"
        }
        "proxy-send-timeout" => {
            proxy.proxy_send_timeout = Some(timeout(value)?);
            "proxy.proxySendTimeout"
        }
        "use-forwarded-headers" => {
            proxy.use_forwarded_headers = Some(boolean(value)?);
            "proxy.useForwardedHeaders"
        }
        "enable-real-ip" => {
            proxy.enable_real_ip = Some(boolean(value)?);
            "proxy.enableRealIp"
        }
        "proxy-real-ip-cidr" => {
            let cidrs: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            for cidr in &cidrs {
                cidr.parse::<IpCidr>().map_err(|e| e.to_string())?;
            }
            if cidrs.is_empty() {
                return Err("names no CIDR".to_owned());
            }
            proxy.proxy_real_ip_cidr = cidrs;
            "proxy.proxyRealIpCidr"
        }
        "limit-req-status-code" => {
            proxy.limit_req_status_code = Some(
                value
                    .parse()
                    .ok()
                    .filter(|n| (400..=599).contains(n))
                    .ok_or("is not a status code from 400 to 599")?,
            );
            "proxy.limitReqStatusCode"
        }
        "proxy-next-upstream-tries" => {
            proxy.proxy_next_upstream_tries = Some(
                value
                    .parse()
                    .ok()
                    .filter(|n| (0..=MAX_PROXY_NEXT_UPSTREAM_TRIES as i32).contains(n))
                    .ok_or_else(|| {
                        format!("is not a number from 0 to {MAX_PROXY_NEXT_UPSTREAM_TRIES}")
                    })?,
            );
            "proxy.proxyNextUpstreamTries"
        }
        "use-proxy-protocol" => {
            *proxy_protocol = Some(boolean(value)?);
            "loadBalancer.proxyProtocol"
        }
        _ => return Ok(None),
    };
    Ok(Some((field, None)))
}

/// Go's `strconv.ParseBool`, which ingress-nginx reads its ConfigMap with.
fn boolean(value: &str) -> Result<bool, String> {
    if BOOL_TRUE.contains(&value) {
        Ok(true)
    } else if BOOL_FALSE.contains(&value) {
        Ok(false)
    } else {
        Err(format!("{value:?} is not a boolean"))
    }
}

fn timeout(value: &str) -> Result<String, String> {
    match parse_duration(value) {
        Ok(d) if d.is_zero() => Err("a timeout of zero is not accepted".to_owned()),
        Ok(_) => Ok(value.to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Keys with no effect on how requests are answered: process tuning, logs, metrics, tracing,
/// nginx internals, and the snippet and annotation gates (every snippet is assessed on its own).
const NO_EFFECT: &[&str] = &[
    "access-log-params",
    "access-log-path",
    "allow-backend-server-header",
    "allow-cross-namespace-resources",
    "allow-snippet-annotations",
    "annotation-value-word-blocklist",
    "annotations-risk-level",
    "disable-access-log",
    "enable-access-log-for-default-backend",
    "enable-opentelemetry",
    "enable-opentracing",
    "enable-syslog",
    "error-log-level",
    "error-log-path",
    "http-access-log-path",
    "log-format-escape-json",
    "log-format-escape-none",
    "log-format-stream",
    "log-format-upstream",
    "map-hash-bucket-size",
    "max-worker-connections",
    "max-worker-open-files",
    "nginx-status-ipv4-whitelist",
    "nginx-status-ipv6-whitelist",
    "opentelemetry-config",
    "opentelemetry-operation-name",
    "opentelemetry-trust-incoming-span",
    "otel-max-export-batch-size",
    "otel-max-queuesize",
    "otel-sampler",
    "otel-sampler-parent-based",
    "otel-sampler-ratio",
    "otel-schedule-delay-millis",
    "otel-service-name",
    "otlp-collector-host",
    "otlp-collector-port",
    "proxy-headers-hash-bucket-size",
    "proxy-headers-hash-max-size",
    "reuse-port",
    "server-name-hash-bucket-size",
    "server-name-hash-max-size",
    "server-tokens",
    "skip-access-log-urls",
    "ssl-session-cache",
    "ssl-session-cache-size",
    "ssl-session-tickets",
    "ssl-session-timeout",
    "stream-access-log-path",
    "strict-validate-path-type",
    "syslog-host",
    "syslog-port",
    "upstream-keepalive-connections",
    "upstream-keepalive-requests",
    "upstream-keepalive-time",
    "upstream-keepalive-timeout",
    "variables-hash-bucket-size",
    "variables-hash-max-size",
    "worker-cpu-affinity",
    "worker-processes",
    "worker-shutdown-timeout",
];

/// Keys Sluice behaves like by default: written with ingress-nginx's default value, they
/// change nothing.
const NGINX_DEFAULTS: &[(&str, &str)] = &[
    ("enable-brotli", "false"),
    ("enable-underscores-in-headers", "false"),
    ("force-ssl-redirect", "false"),
    ("load-balance", "round_robin"),
    ("proxy-buffering", "off"),
    ("proxy-http-version", "1.1"),
    ("proxy-request-buffering", "on"),
    ("ssl-redirect", "true"),
    ("use-gzip", "false"),
    ("use-http2", "true"),
];

/// Keys a streaming proxy has no use for: Sluice accepts the matching annotations for
/// compatibility and behaves the same whatever they say.
const STREAMING: &[&str] = &[
    "client-body-buffer-size",
    "proxy-buffer-size",
    "proxy-buffering",
    "proxy-buffers-number",
    "proxy-max-temp-file-size",
    "proxy-request-buffering",
];

/// Why a key is not carried over, what it does, and which Ingresses inherit it.
fn unmapped(key: &str, value: &str) -> (String, Effect, Option<Reach>) {
    let none = |reason: &str| (reason.to_owned(), Effect::None, None);
    if NO_EFFECT.contains(&key) {
        return none("no Sluice equivalent; it does not change how requests are answered");
    }
    if NGINX_DEFAULTS.contains(&(key, value)) {
        return none("ingress-nginx's default, which Sluice behaves like");
    }
    if STREAMING.contains(&key) {
        return none(
            "Sluice streams requests and responses; nginx buffer settings have no equivalent \
             and no effect on what is served",
        );
    }
    let truthy = BOOL_TRUE.contains(&value);
    let set = !value.trim().is_empty();
    let not_served = |reason: String, reach| (reason, Effect::NotServed, Some(reach));
    match key {
        "global-auth-url" if set => {
            return not_served(
                "global external authentication has no Sluice equivalent: every Ingress \
                 without its own auth-url or enable-global-auth: \"false\" would be served \
                 without it"
                    .into(),
                Reach::GlobalAuth,
            );
        }
        k if k.starts_with("global-auth-") => {
            return none("part of global external authentication (see global-auth-url)");
        }
        "whitelist-source-range" | "allowlist-source-range" if set => {
            return not_served(
                format!(
                    "the set-wide allow-list has no Sluice equivalent: every Ingress without its \
                     own allowlist-source-range would be open to all clients instead of {value}"
                ),
                Reach::UnlessOwn(&["allowlist-source-range", "whitelist-source-range"]),
            );
        }
        "denylist-source-range" if set => {
            return not_served(
                format!(
                    "the set-wide deny-list has no Sluice equivalent: every Ingress without its \
                     own denylist-source-range would serve {value}"
                ),
                Reach::UnlessOwn(&["denylist-source-range"]),
            );
        }
        "block-cidrs" | "block-user-agents" | "block-referers" if set => {
            return not_served(
                format!("{key} has no Sluice equivalent: the clients it blocks would be served"),
                Reach::All,
            );
        }
        "enable-modsecurity" | "enable-owasp-modsecurity-crs" if truthy => {
            return not_served(
                "the ModSecurity web application firewall has no Sluice equivalent: requests \
                 it blocks would reach the backends"
                    .into(),
                Reach::Modsecurity,
            );
        }
        "server-snippet" | "location-snippet" | "http-snippet" => {
            let context = match key {
                "server-snippet" => snippet::Context::Server,
                "location-snippet" => snippet::Context::Location,
                _ => snippet::Context::Http,
            };
            return match snippet::assess(value, context) {
                Assessment::Native { what } => none(&format!(
                    "snippet not executed, and nothing is lost: {what}"
                )),
                Assessment::Harmless { what, .. } => (
                    match snippet::translate(value, context) {
                        // The data plane reads no ConfigMap: the translation needs the snippet
                        // on the Ingresses.
                        Ok(_) => format!(
                            "snippet not executed ({what}); Sluice translates the same \
                             directives written as a server-snippet or configuration-snippet \
                             annotation on each Ingress"
                        ),
                        Err(untranslated) => format!(
                            "snippet not executed ({what}); not translatable: {untranslated}"
                        ),
                    },
                    Effect::Difference,
                    Some(Reach::All),
                ),
                Assessment::Unsafe { reason } => not_served(
                    format!(
                        "security-relevant snippet cannot be carried over: {reason}; it applies \
                         to every host, so every Ingress would be served without it"
                    ),
                    Reach::All,
                ),
            };
        }
        "main-snippet" | "stream-snippet" if set => {
            // Not part of HTTP routing: Ingress verdicts are unaffected, but whatever it
            // defines (TCP/UDP servers, modules) is gone.
            return (
                "raw nginx configuration outside HTTP routing is not carried over: whatever it \
                 defines (stream servers, modules, environment) is not served"
                    .to_owned(),
                Effect::NotServed,
                None,
            );
        }
        _ => {}
    }
    if !set {
        return none("empty: ingress-nginx's default, which Sluice behaves like");
    }
    (
        "no Sluice equivalent yet: every Ingress is served as if it were not set".to_owned(),
        Effect::Difference,
        Some(Reach::All),
    )
}

/// One entry of a TCP or UDP services ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamReport {
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// The port ingress-nginx listened on (the ConfigMap key).
    pub port: String,
    /// Where it sent the stream: `namespace/service:port[:PROXY[:PROXY]]`, as written.
    pub target: String,
    /// The ConfigMap it came from, `namespace/name`.
    pub source: String,
    /// Always [`super::Verdict::NotServed`] today.
    pub verdict: super::Verdict,
    /// Why.
    pub reason: String,
}

/// The entries of a `--tcp-services-configmap` or `--udp-services-configmap` ConfigMap.
pub(crate) fn streams(protocol: &str, config_map: &ConfigMap) -> Vec<StreamReport> {
    let source = format!(
        "{}/{}",
        config_map.metadata.namespace.as_deref().unwrap_or_default(),
        config_map.metadata.name.as_deref().unwrap_or_default()
    );
    let mut entries: Vec<(&String, &String)> = config_map
        .data
        .iter()
        .flat_map(|data| data.iter())
        .collect();
    // Numeric port order reads better than string order (80 before 443 before 9000).
    entries.sort_by_key(|(port, _)| (port.parse::<u32>().unwrap_or(u32::MAX), port.to_string()));
    entries
        .into_iter()
        .map(|(port, target)| StreamReport {
            protocol: protocol.to_owned(),
            port: port.clone(),
            target: target.clone(),
            source: source.clone(),
            verdict: super::Verdict::NotServed,
            reason: format!(
                "Sluice serves HTTP and HTTPS only; {protocol} port {port} from ingress-nginx's \
                 {} services ConfigMap is not served",
                protocol.to_ascii_lowercase()
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use sluice_crds::CipherSuite;

    fn config_map(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("ingress-nginx-controller".into()),
                namespace: Some("ingress-nginx".into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn finding<'a>(mapped: &'a Mapped, key: &str) -> &'a ConfigFinding {
        mapped
            .report
            .not_carried_over
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("{key} not reported"))
    }

    #[test]
    fn maps_the_spec_proxy_keys() {
        let mapped = map(&config_map(&[
            ("ssl-protocols", "TLSv1.2 TLSv1.3"),
            ("hsts", "true"),
            ("hsts-max-age", "63072000"),
            ("hsts-include-subdomains", "false"),
            ("hsts-preload", "true"),
            ("proxy-body-size", "50m"),
            ("proxy-connect-timeout", "10"),
            ("proxy-read-timeout", "120"),
            ("proxy-send-timeout", "120"),
            ("use-forwarded-headers", "true"),
            ("enable-real-ip", "true"),
            ("proxy-real-ip-cidr", "10.0.0.0/8, 192.168.0.0/16"),
            ("limit-req-status-code", "429"),
            ("proxy-next-upstream-tries", "2"),
            ("use-proxy-protocol", "true"),
        ]));
        assert!(mapped.report.not_carried_over.is_empty());
        assert!(mapped.rules.is_empty());
        assert_eq!(mapped.proxy_protocol, Some(true));
        let expected = ProxySettings {
            hsts: Some(true),
            hsts_max_age: Some(63_072_000),
            hsts_include_subdomains: Some(false),
            hsts_preload: Some(true),
            proxy_body_size: Some("50m".into()),
            proxy_connect_timeout: Some("10".into()),
            proxy_read_timeout: Some("120".into()),
            proxy_send_timeout: Some("120".into()),
            use_forwarded_headers: Some(true),
            enable_real_ip: Some(true),
            proxy_real_ip_cidr: vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()],
            limit_req_status_code: Some(429),
            proxy_next_upstream_tries: Some(2),
            ..Default::default()
        };
        assert_eq!(mapped.proxy, expected);
        DataplaneConfig::from_proxy(&mapped.proxy).expect("valid");
        let fields: Vec<&str> = mapped
            .report
            .mapped
            .iter()
            .map(|m| m.field.as_str())
            .collect();
        assert!(fields.contains(&"loadBalancer.proxyProtocol"));
        assert!(fields.contains(&"proxy.sslProtocols"));
    }

    #[test]
    fn partial_values_are_noted() {
        let mapped = map(&config_map(&[
            ("ssl-protocols", "TLSv1.1 TLSv1.2"),
            (
                "ssl-ciphers",
                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256",
            ),
        ]));
        assert_eq!(mapped.proxy.ssl_protocols, vec![TlsProtocol::Tls12]);
        assert_eq!(
            mapped.proxy.ssl_ciphers,
            vec![
                CipherSuite::EcdheEcdsaAes128GcmSha256,
                CipherSuite::EcdheRsaAes128GcmSha256
            ]
        );
        let notes: Vec<&str> = mapped
            .report
            .mapped
            .iter()
            .filter_map(|m| m.note.as_deref())
            .collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("DHE-RSA-AES128-GCM-SHA256"), "{notes:?}");
        assert!(notes[1].contains("TLSv1.1 not supported"), "{notes:?}");
        assert_eq!(mapped.rules.len(), 2);
        assert!(mapped.rules.iter().all(|r| r.effect == Effect::Difference));
    }

    #[test]
    fn ingress_nginx_default_ciphers_need_no_field() {
        // The chart's default list: its DHE suites are not honoured, the rest is Sluice's
        // default.
        let mapped = map(&config_map(&[(
            "ssl-ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
        )]));
        assert!(mapped.proxy.ssl_ciphers.is_empty(), "{:?}", mapped.proxy);
        assert!(
            mapped.report.mapped[0]
                .note
                .as_deref()
                .unwrap()
                .contains("DHE-RSA")
        );
    }

    #[test]
    fn invalid_values_fall_back_to_the_default() {
        let mapped = map(&config_map(&[
            ("proxy-body-size", "lots"),
            ("hsts", "yes"),
            ("proxy-read-timeout", "0"),
            ("ssl-protocols", "TLSv1 TLSv1.1"),
        ]));
        assert_eq!(mapped.proxy, ProxySettings::default());
        assert_eq!(mapped.report.not_carried_over.len(), 4);
        for f in &mapped.report.not_carried_over {
            assert_eq!(f.effect, Effect::Difference, "{f:?}");
            assert!(
                f.reason.ends_with("Sluice's default applies instead"),
                "{f:?}"
            );
        }
    }

    #[test]
    fn unmapped_keys_by_kind() {
        let mapped = map(&config_map(&[
            ("allow-snippet-annotations", "true"),
            ("worker-processes", "4"),
            ("ssl-redirect", "true"),
            ("ssl-redirect-x", ""),
            ("load-balance", "round_robin"),
            ("proxy-buffer-size", "16k"),
            ("use-gzip", "true"),
            ("global-auth-url", "http://auth.example/check"),
            ("global-auth-signin", "https://auth.example/start"),
            ("whitelist-source-range", "10.0.0.0/8"),
            ("block-user-agents", "~*curl"),
            (
                "server-snippet",
                "more_set_headers \"X-Frame-Options: DENY\";",
            ),
            (
                "location-snippet",
                "if ($request_method = DELETE) { return 405; }",
            ),
            (
                "http-snippet",
                "map $http_upgrade $connection_upgrade { default upgrade; }",
            ),
            (
                "stream-snippet",
                "server { listen 5432; proxy_pass db:5432; }",
            ),
        ]));
        let effect = |key: &str| finding(&mapped, key).effect;
        assert_eq!(effect("allow-snippet-annotations"), Effect::None);
        assert_eq!(effect("worker-processes"), Effect::None);
        assert_eq!(effect("ssl-redirect"), Effect::None);
        assert_eq!(effect("ssl-redirect-x"), Effect::None);
        assert_eq!(effect("load-balance"), Effect::None);
        assert_eq!(effect("proxy-buffer-size"), Effect::None);
        assert_eq!(effect("http-snippet"), Effect::None);
        assert_eq!(effect("global-auth-signin"), Effect::None);
        assert_eq!(effect("use-gzip"), Effect::Difference);
        assert_eq!(effect("server-snippet"), Effect::Difference);
        assert_eq!(effect("global-auth-url"), Effect::NotServed);
        assert_eq!(effect("whitelist-source-range"), Effect::NotServed);
        assert_eq!(effect("block-user-agents"), Effect::NotServed);
        assert_eq!(effect("location-snippet"), Effect::NotServed);
        assert_eq!(effect("stream-snippet"), Effect::NotServed);
        let ruled: Vec<&str> = mapped.rules.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            ruled,
            [
                "block-user-agents",
                "global-auth-url",
                "location-snippet",
                "server-snippet",
                "use-gzip",
                "whitelist-source-range"
            ]
        );
    }

    #[test]
    fn tuning_snippets_are_a_difference() {
        // Buffering, timeouts and logging decide nothing about access: every Ingress is served,
        // without them.
        let mapped = map(&config_map(&[
            (
                "server-snippet",
                "client_max_body_size 100m;\nproxy_read_timeout 3600;\naccess_log off;",
            ),
            ("location-snippet", "proxy_buffering off;\ndeny all;"),
        ]));
        let server = finding(&mapped, "server-snippet");
        assert_eq!(server.effect, Effect::Difference);
        assert!(
            server.reason.contains(
                "tunes performance, caching or logging (client_max_body_size, \
                 proxy_read_timeout, access_log)"
            ),
            "{server:?}"
        );
        assert!(
            server
                .reason
                .contains("`client_max_body_size 100m` only limits request bodies"),
            "{server:?}"
        );
        // A near miss beside tuning is still an access rule.
        assert_eq!(
            finding(&mapped, "location-snippet").effect,
            Effect::NotServed
        );
    }

    #[test]
    fn reach_follows_ingress_overrides() {
        let annotations = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), (*v).to_owned()))
                .collect()
        };
        assert!(Reach::GlobalAuth.reaches(&annotations(&[])));
        assert!(!Reach::GlobalAuth.reaches(&annotations(&[("enable-global-auth", "false")])));
        assert!(!Reach::GlobalAuth.reaches(&annotations(&[("auth-url", "http://a/")])));
        let allow = Reach::UnlessOwn(&["allowlist-source-range", "whitelist-source-range"]);
        assert!(allow.reaches(&annotations(&[])));
        assert!(!allow.reaches(&annotations(&[("whitelist-source-range", "0.0.0.0/0")])));
        assert!(!Reach::Modsecurity.reaches(&annotations(&[("enable-modsecurity", "false")])));
    }

    #[test]
    fn tcp_and_udp_services_are_not_served() {
        let mut tcp = config_map(&[
            ("9000", "default/example-go:8080"),
            ("22", "gitlab/gitlab-gitlab-shell:22:PROXY"),
        ]);
        tcp.metadata.name = Some("ingress-nginx-tcp".into());
        let entries = streams("TCP", &tcp);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].port, "22");
        assert_eq!(entries[0].target, "gitlab/gitlab-gitlab-shell:22:PROXY");
        assert_eq!(entries[0].source, "ingress-nginx/ingress-nginx-tcp");
        assert_eq!(entries[0].verdict, crate::migrate::Verdict::NotServed);
        assert!(
            entries[1].reason.contains("TCP port 9000"),
            "{:?}",
            entries[1]
        );
    }
}
