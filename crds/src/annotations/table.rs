//! The one table of supported annotation keys, and the keys Sluice knows but does not support.
//!
//! Everything else is derived from [`TABLE`]: the parser, the reference
//! (`docs/annotations.md`) and the ValidatingAdmissionPolicy. Adding a key means adding a row
//! here and reading it in [`super::policies`].

use super::Severity;
use super::grammar::{EnumGrammar, Grammar, ZeroSize};

/// The policy group a key belongs to: the sections of issue 6 and of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyGroup {
    /// ssl-redirect, permanent-redirect, app-root, ...
    Redirects,
    /// rewrite-target, use-regex, x-forwarded-prefix, upstream-vhost.
    Rewriting,
    /// auth-type basic/digest with auth-secret.
    BasicAuth,
    /// auth-url and friends.
    ExternalAuth,
    /// affinity: cookie and the session-cookie-* keys.
    SessionAffinity,
    /// ssl-passthrough, ssl-ciphers.
    Tls,
    /// enable-cors and the cors-* keys.
    Cors,
    /// limit-rps, limit-rpm, limit-connections, ...
    RateLimits,
    /// allowlist/whitelist/denylist-source-range.
    Access,
    /// proxy-*, backend-protocol, connection-proxy-header.
    Proxying,
    /// canary and the canary-* keys.
    Canary,
    /// auth-tls-*: client certificates.
    ClientCertificates,
    /// proxy-ssl-*: TLS to HTTPS backends.
    UpstreamTls,
    /// load-balance, upstream-hash-by, service-upstream.
    LoadBalancing,
    /// custom-http-errors, default-backend.
    Errors,
}

impl PolicyGroup {
    /// Every group, in reference order.
    pub const ALL: [PolicyGroup; 15] = [
        PolicyGroup::Redirects,
        PolicyGroup::Rewriting,
        PolicyGroup::BasicAuth,
        PolicyGroup::ExternalAuth,
        PolicyGroup::SessionAffinity,
        PolicyGroup::Tls,
        PolicyGroup::Cors,
        PolicyGroup::RateLimits,
        PolicyGroup::Access,
        PolicyGroup::Proxying,
        PolicyGroup::Canary,
        PolicyGroup::ClientCertificates,
        PolicyGroup::UpstreamTls,
        PolicyGroup::LoadBalancing,
        PolicyGroup::Errors,
    ];

    /// The section title in the reference.
    pub fn title(self) -> &'static str {
        match self {
            PolicyGroup::Redirects => "Redirects",
            PolicyGroup::Rewriting => "Rewriting",
            PolicyGroup::BasicAuth => "Basic and digest authentication",
            PolicyGroup::ExternalAuth => "External authentication",
            PolicyGroup::SessionAffinity => "Session affinity",
            PolicyGroup::Tls => "TLS per host",
            PolicyGroup::Cors => "CORS",
            PolicyGroup::RateLimits => "Rate limits",
            PolicyGroup::Access => "Access lists",
            PolicyGroup::Proxying => "Proxying",
            PolicyGroup::Canary => "Canary releases",
            PolicyGroup::ClientCertificates => "Client certificates",
            PolicyGroup::UpstreamTls => "TLS to backends",
            PolicyGroup::LoadBalancing => "Load balancing",
            PolicyGroup::Errors => "Custom errors",
        }
    }
}

/// What is dropped when a value is invalid (and the severity is
/// [`Severity::RejectPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drops {
    /// Only this setting: its default applies.
    Setting,
    /// The named policy, all of whose keys are read together (a half-applied CORS or
    /// affinity configuration would surprise more than none).
    Policy(&'static str),
}

/// One supported key.
#[derive(Debug)]
pub struct AnnotationSpec {
    /// The key without prefix, e.g. `proxy-body-size`.
    pub key: &'static str,
    /// The value's grammar.
    pub grammar: Grammar,
    /// What applies when the key is not set (text for the reference; empty: nothing).
    pub default: &'static str,
    /// One line for the reference.
    pub description: &'static str,
    /// What an invalid value does: [`Severity::RejectPolicy`] or [`Severity::RejectIngress`]
    /// (auth and access lists fail closed: serving without them would be unsafe).
    pub severity: Severity,
    /// What an invalid value drops, for [`Severity::RejectPolicy`].
    pub drops: Drops,
    /// The policy group.
    pub group: PolicyGroup,
    /// The key has an effect only when one of these keys is set (and true, or above zero).
    pub requires: &'static [&'static str],
}

impl AnnotationSpec {
    /// The reference's "on invalid value" text.
    pub fn on_invalid(&self) -> String {
        match (self.severity, self.drops) {
            (Severity::RejectIngress, _) => "the Ingress is not served (fails closed)".into(),
            (_, Drops::Setting) => "ignored, the default applies".into(),
            (_, Drops::Policy(policy)) => format!("{policy} is not applied"),
        }
    }
}

/// Looks a key up by its name without prefix.
pub fn spec(key: &str) -> Option<&'static AnnotationSpec> {
    TABLE.iter().find(|s| s.key == key)
}

const AFFINITY: EnumGrammar = EnumGrammar {
    values: &["cookie"],
    case_insensitive: false,
    hints: &[("sticky", "cookie")],
};
const AFFINITY_MODE: EnumGrammar = EnumGrammar {
    values: &["balanced", "persistent"],
    case_insensitive: false,
    hints: &[],
};
const SAMESITE: EnumGrammar = EnumGrammar {
    values: &["None", "Lax", "Strict"],
    case_insensitive: true,
    hints: &[],
};
const BACKEND_PROTOCOL: EnumGrammar = EnumGrammar {
    values: &["HTTP", "HTTPS", "GRPC", "GRPCS"],
    case_insensitive: true,
    hints: &[("AUTO_HTTP", "HTTP")],
};
const AUTH_TYPE: EnumGrammar = EnumGrammar {
    values: &["basic", "digest"],
    case_insensitive: false,
    hints: &[],
};
const AUTH_SECRET_TYPE: EnumGrammar = EnumGrammar {
    values: &["auth-file", "auth-map"],
    case_insensitive: false,
    hints: &[],
};
const AUTH_METHOD: EnumGrammar = EnumGrammar {
    values: &[
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
    ],
    case_insensitive: false,
    hints: &[],
};
const HTTP_VERSION: EnumGrammar = EnumGrammar {
    values: &["1.0", "1.1"],
    case_insensitive: false,
    hints: &[],
};
const VERIFY_CLIENT: EnumGrammar = EnumGrammar {
    values: &["on", "off", "optional", "optional_no_ca"],
    case_insensitive: false,
    hints: &[("true", "on"), ("false", "off")],
};
const LOAD_BALANCE: EnumGrammar = EnumGrammar {
    values: &["round_robin", "ewma"],
    case_insensitive: false,
    hints: &[("round-robin", "round_robin"), ("least_conn", "ewma")],
};
const ON_OFF: EnumGrammar = EnumGrammar {
    values: &["on", "off"],
    case_insensitive: true,
    hints: &[],
};

/// Ten years, in seconds: the bound on cookie and CORS ages.
const TEN_YEARS: u32 = 315_360_000;

const REDIRECT_CODE: Grammar = Grammar::Int { min: 300, max: 308 };

/// The supported keys, in reference order.
pub static TABLE: &[AnnotationSpec] = &[
    // --- Redirects -------------------------------------------------------------------------
    AnnotationSpec {
        key: "ssl-redirect",
        grammar: Grammar::Bool,
        default: "true",
        description: "On hosts with TLS, redirect plain HTTP to HTTPS with 308 (except /.well-known/acme-challenge/).",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Redirects,
        requires: &[],
    },
    AnnotationSpec {
        key: "force-ssl-redirect",
        grammar: Grammar::Bool,
        default: "false",
        description: "Redirect plain HTTP to HTTPS even when the Ingress has no TLS section (TLS terminated in front of Sluice).",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Redirects,
        requires: &[],
    },
    AnnotationSpec {
        key: "permanent-redirect",
        grammar: Grammar::Url,
        default: "",
        description: "Answer every request with a redirect to this URL instead of proxying.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("the permanent redirect"),
        group: PolicyGroup::Redirects,
        requires: &[],
    },
    AnnotationSpec {
        key: "permanent-redirect-code",
        grammar: REDIRECT_CODE,
        default: "301",
        description: "Status code of permanent-redirect.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("the permanent redirect"),
        group: PolicyGroup::Redirects,
        requires: &["permanent-redirect"],
    },
    AnnotationSpec {
        key: "temporal-redirect",
        grammar: Grammar::Url,
        default: "",
        description: "Answer every request with a temporary redirect to this URL (permanent-redirect wins when both are set).",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("the temporal redirect"),
        group: PolicyGroup::Redirects,
        requires: &[],
    },
    AnnotationSpec {
        key: "temporal-redirect-code",
        grammar: REDIRECT_CODE,
        default: "302",
        description: "Status code of temporal-redirect.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("the temporal redirect"),
        group: PolicyGroup::Redirects,
        requires: &["temporal-redirect"],
    },
    AnnotationSpec {
        key: "app-root",
        grammar: Grammar::Path,
        default: "",
        description: "Redirect requests for / to this path with 302.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Redirects,
        requires: &[],
    },
    AnnotationSpec {
        key: "from-to-www-redirect",
        grammar: Grammar::Bool,
        default: "false",
        description: "Redirect www.host to host (or host to www.host, whichever the rules do not name) with 308.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Redirects,
        requires: &[],
    },
    // --- Rewriting -------------------------------------------------------------------------
    AnnotationSpec {
        key: "rewrite-target",
        grammar: Grammar::Rewrite,
        default: "",
        description: "Path sent upstream instead of the request's; $1 to $9 are the path regex's capture groups. Puts the host in regex mode.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Rewriting,
        requires: &[],
    },
    AnnotationSpec {
        key: "use-regex",
        grammar: Grammar::Bool,
        default: "false",
        description: "Regex mode: every path on the host is a case-insensitive regex anchored at the start.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Rewriting,
        requires: &[],
    },
    AnnotationSpec {
        key: "x-forwarded-prefix",
        grammar: Grammar::Path,
        default: "",
        description: "Send this value upstream as X-Forwarded-Prefix.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Rewriting,
        requires: &[],
    },
    AnnotationSpec {
        key: "upstream-vhost",
        grammar: Grammar::Host,
        default: "",
        description: "Host header sent upstream instead of the client's.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Rewriting,
        requires: &[],
    },
    // --- Basic and digest authentication -----------------------------------------------------
    AnnotationSpec {
        key: "auth-type",
        grammar: Grammar::Enum(&AUTH_TYPE),
        default: "",
        description: "Require HTTP authentication with the credentials in auth-secret.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("authentication"),
        group: PolicyGroup::BasicAuth,
        requires: &[],
    },
    AnnotationSpec {
        key: "auth-secret",
        grammar: Grammar::SecretRef,
        default: "",
        description: "Secret with the credentials, in the Ingress's namespace (required with auth-type).",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("authentication"),
        group: PolicyGroup::BasicAuth,
        requires: &["auth-type"],
    },
    AnnotationSpec {
        key: "auth-secret-type",
        grammar: Grammar::Enum(&AUTH_SECRET_TYPE),
        default: "auth-file",
        description: "auth-file: an htpasswd file under the key auth; auth-map: one key per user, the value its hash.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("authentication"),
        group: PolicyGroup::BasicAuth,
        requires: &["auth-type"],
    },
    AnnotationSpec {
        key: "auth-realm",
        grammar: Grammar::Realm,
        default: "Authentication Required",
        description: "Realm of the WWW-Authenticate challenge.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("authentication"),
        group: PolicyGroup::BasicAuth,
        requires: &["auth-type"],
    },
    // --- External authentication -----------------------------------------------------------
    AnnotationSpec {
        key: "auth-url",
        grammar: Grammar::Url,
        default: "",
        description: "Ask this URL about every request first: 2xx lets it through, 401 and 403 are returned to the client.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("external authentication"),
        group: PolicyGroup::ExternalAuth,
        requires: &[],
    },
    AnnotationSpec {
        key: "auth-method",
        grammar: Grammar::Enum(&AUTH_METHOD),
        default: "GET",
        description: "Method of the auth-url request.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("external authentication"),
        group: PolicyGroup::ExternalAuth,
        requires: &["auth-url"],
    },
    AnnotationSpec {
        key: "auth-signin",
        grammar: Grammar::Url,
        default: "",
        description: "Redirect a request that auth-url answered with 401 to this URL.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("external authentication"),
        group: PolicyGroup::ExternalAuth,
        requires: &["auth-url"],
    },
    AnnotationSpec {
        key: "auth-response-headers",
        grammar: Grammar::TokenList,
        default: "",
        description: "Headers of the auth-url response copied into the upstream request.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("external authentication"),
        group: PolicyGroup::ExternalAuth,
        requires: &["auth-url"],
    },
    // --- Session affinity ------------------------------------------------------------------
    AnnotationSpec {
        key: "affinity",
        grammar: Grammar::Enum(&AFFINITY),
        default: "",
        description: "Pin each client to one backend with a cookie; a cookie for a gone backend is re-pinned.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &[],
    },
    AnnotationSpec {
        key: "affinity-mode",
        grammar: Grammar::Enum(&AFFINITY_MODE),
        default: "balanced",
        description: "balanced: re-pin some clients when backends are added; persistent: never re-pin a live backend.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-name",
        grammar: Grammar::CookieName,
        default: "INGRESSCOOKIE",
        description: "Name of the affinity cookie.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-path",
        grammar: Grammar::Path,
        default: "the matched path",
        description: "Path attribute of the affinity cookie.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-domain",
        grammar: Grammar::Domain,
        default: "",
        description: "Domain attribute of the affinity cookie.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-max-age",
        grammar: Grammar::Int {
            min: 0,
            max: TEN_YEARS,
        },
        default: "",
        description: "Max-Age attribute of the affinity cookie, in seconds (unset: a session cookie).",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-expires",
        grammar: Grammar::Int {
            min: 0,
            max: TEN_YEARS,
        },
        default: "",
        description: "Expires attribute of the affinity cookie, in seconds from now.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-samesite",
        grammar: Grammar::Enum(&SAMESITE),
        default: "",
        description: "SameSite attribute of the affinity cookie.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-secure",
        grammar: Grammar::Bool,
        default: "false",
        description: "Set the Secure attribute on the affinity cookie.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    AnnotationSpec {
        key: "session-cookie-change-on-failure",
        grammar: Grammar::Bool,
        default: "false",
        description: "Also re-pin when the pinned backend fails a request (a gone backend is always re-pinned).",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("session affinity"),
        group: PolicyGroup::SessionAffinity,
        requires: &["affinity"],
    },
    // --- TLS per host ----------------------------------------------------------------------
    AnnotationSpec {
        key: "ssl-passthrough",
        grammar: Grammar::Bool,
        default: "false",
        description: "Pass TLS through to the backend by SNI without terminating it; only the / rule's backend is used. Needs enableSslPassthrough on the set.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Tls,
        requires: &[],
    },
    AnnotationSpec {
        key: "ssl-ciphers",
        grammar: Grammar::Ciphers,
        default: "the set's sslCiphers",
        description: "TLS 1.2 cipher suites of the Ingress's TLS hosts, OpenSSL syntax evaluated against rustls's suites; a list leaving none turns TLS 1.2 off for them.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Tls,
        requires: &[],
    },
    // --- CORS ------------------------------------------------------------------------------
    AnnotationSpec {
        key: "enable-cors",
        grammar: Grammar::Bool,
        default: "false",
        description: "Answer CORS preflight requests without the upstream and add CORS headers to responses.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("CORS"),
        group: PolicyGroup::Cors,
        requires: &[],
    },
    AnnotationSpec {
        key: "cors-allow-origin",
        grammar: Grammar::Origins,
        default: "*",
        description: "Origins allowed; a matching Origin is echoed back.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("CORS"),
        group: PolicyGroup::Cors,
        requires: &["enable-cors"],
    },
    AnnotationSpec {
        key: "cors-allow-methods",
        grammar: Grammar::MethodList,
        default: "GET, PUT, POST, DELETE, PATCH, OPTIONS",
        description: "Access-Control-Allow-Methods.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("CORS"),
        group: PolicyGroup::Cors,
        requires: &["enable-cors"],
    },
    AnnotationSpec {
        key: "cors-allow-headers",
        grammar: Grammar::TokenList,
        default: "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
        description: "Access-Control-Allow-Headers.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("CORS"),
        group: PolicyGroup::Cors,
        requires: &["enable-cors"],
    },
    AnnotationSpec {
        key: "cors-allow-credentials",
        grammar: Grammar::Bool,
        default: "true",
        description: "Access-Control-Allow-Credentials.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("CORS"),
        group: PolicyGroup::Cors,
        requires: &["enable-cors"],
    },
    AnnotationSpec {
        key: "cors-expose-headers",
        grammar: Grammar::TokenList,
        default: "",
        description: "Access-Control-Expose-Headers.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("CORS"),
        group: PolicyGroup::Cors,
        requires: &["enable-cors"],
    },
    AnnotationSpec {
        key: "cors-max-age",
        grammar: Grammar::Int {
            min: 0,
            max: TEN_YEARS,
        },
        default: "1728000",
        description: "Access-Control-Max-Age, in seconds.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("CORS"),
        group: PolicyGroup::Cors,
        requires: &["enable-cors"],
    },
    // --- Rate limits -----------------------------------------------------------------------
    AnnotationSpec {
        key: "limit-rps",
        grammar: Grammar::Int {
            min: 0,
            max: 1_000_000,
        },
        default: "",
        description: "Requests per second per client IP, per replica (0: no limit). Over the limit: the set's limitReqStatusCode (503).",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("rate limiting"),
        group: PolicyGroup::RateLimits,
        requires: &[],
    },
    AnnotationSpec {
        key: "limit-rpm",
        grammar: Grammar::Int {
            min: 0,
            max: 60_000_000,
        },
        default: "",
        description: "Requests per minute per client IP, per replica (0: no limit).",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("rate limiting"),
        group: PolicyGroup::RateLimits,
        requires: &[],
    },
    AnnotationSpec {
        key: "limit-connections",
        grammar: Grammar::Int {
            min: 0,
            max: 1_000_000,
        },
        default: "",
        description: "Concurrent connections per client IP, per replica (0: no limit).",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("rate limiting"),
        group: PolicyGroup::RateLimits,
        requires: &[],
    },
    AnnotationSpec {
        key: "limit-burst-multiplier",
        grammar: Grammar::Int { min: 1, max: 1000 },
        default: "5",
        description: "Burst allowed above limit-rps/limit-rpm, as a multiple of the rate.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("rate limiting"),
        group: PolicyGroup::RateLimits,
        requires: &["limit-rps", "limit-rpm"],
    },
    AnnotationSpec {
        key: "limit-whitelist",
        grammar: Grammar::CidrList,
        default: "",
        description: "Clients exempt from the rate limits.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("rate limiting"),
        group: PolicyGroup::RateLimits,
        requires: &["limit-rps", "limit-rpm", "limit-connections"],
    },
    // --- Access lists ----------------------------------------------------------------------
    AnnotationSpec {
        key: "allowlist-source-range",
        grammar: Grammar::CidrList,
        default: "",
        description: "Only clients in these ranges are served; others get 403.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the access lists"),
        group: PolicyGroup::Access,
        requires: &[],
    },
    AnnotationSpec {
        key: "whitelist-source-range",
        grammar: Grammar::CidrList,
        default: "",
        description: "Older name of allowlist-source-range, read when that is not set.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the access lists"),
        group: PolicyGroup::Access,
        requires: &[],
    },
    AnnotationSpec {
        key: "denylist-source-range",
        grammar: Grammar::CidrList,
        default: "",
        description: "Clients in these ranges get 403 (checked before the allowlist).",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the access lists"),
        group: PolicyGroup::Access,
        requires: &[],
    },
    // --- Proxying --------------------------------------------------------------------------
    AnnotationSpec {
        key: "custom-headers",
        grammar: Grammar::ConfigMapRef,
        default: "",
        description: "ConfigMap in the Ingress's namespace whose entries (header name: value) are set on every response of the Ingress, errors included, replacing the backend's. Names must be RFC 7230 tokens; framing and hop-by-hop headers (Content-Length, Transfer-Encoding, Connection, Upgrade, ...) and Set-Cookie are refused, as are values with control characters; each refused entry is reported and left out.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-body-size",
        grammar: Grammar::Size(ZeroSize::Unlimited),
        default: "the set's proxyBodySize (1m)",
        description: "Largest request body; larger ones get 413. 0: no limit.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-connect-timeout",
        grammar: Grammar::Duration,
        default: "the set's proxyConnectTimeout (5s)",
        description: "Timeout for connecting to a backend.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-read-timeout",
        grammar: Grammar::Duration,
        default: "the set's proxyReadTimeout (60s)",
        description: "Longest wait between two reads from the backend.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-send-timeout",
        grammar: Grammar::Duration,
        default: "the set's proxySendTimeout (60s)",
        description: "Longest wait between two writes to the backend.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-next-upstream-tries",
        grammar: Grammar::Int { min: 0, max: 20 },
        default: "the set's proxyNextUpstreamTries (3)",
        description: "Backends tried per request on connect failure, the first included (0: each once).",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "backend-protocol",
        grammar: Grammar::Enum(&BACKEND_PROTOCOL),
        default: "HTTP",
        description: "Protocol spoken to the backends: HTTP/1.1 or h2c (GRPC), over TLS for HTTPS and GRPCS.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-http-version",
        grammar: Grammar::Enum(&HTTP_VERSION),
        default: "1.1",
        description: "HTTP version of requests to HTTP backends.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "connection-proxy-header",
        grammar: Grammar::TokenList,
        default: "",
        description: "Connection header sent to the backend (keep-alive, close, upgrade).",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-buffering",
        grammar: Grammar::Enum(&ON_OFF),
        default: "off",
        description: "Accepted for compatibility. Sluice streams responses to the client as they arrive; on and off behave the same.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-request-buffering",
        grammar: Grammar::Enum(&ON_OFF),
        default: "on",
        description: "Accepted for compatibility. Sluice streams request bodies to the backend (proxy-body-size still applies); on and off behave the same.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-buffer-size",
        grammar: Grammar::Size(ZeroSize::Refused),
        default: "4k",
        description: "Accepted for compatibility. nginx's buffer for the response head; a streaming proxy has none to size (response heads of any size nginx accepted are read).",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::Proxying,
        requires: &[],
    },
    // --- Canary ----------------------------------------------------------------------------
    AnnotationSpec {
        key: "canary",
        grammar: Grammar::Bool,
        default: "false",
        description: "This Ingress is the canary of the Ingress that serves the same host and path: it takes the requests the canary-* keys select, the main Ingress the rest.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the canary"),
        group: PolicyGroup::Canary,
        requires: &[],
    },
    AnnotationSpec {
        key: "canary-by-header",
        grammar: Grammar::HeaderName,
        default: "",
        description: "Request header that routes to the canary: always when its value is `always`, never when `never`, else by canary-by-header-value or -pattern (or by the next rule).",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the canary"),
        group: PolicyGroup::Canary,
        requires: &["canary"],
    },
    AnnotationSpec {
        key: "canary-by-header-value",
        grammar: Grammar::Text,
        default: "",
        description: "The canary-by-header value that routes to the canary (exact match).",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the canary"),
        group: PolicyGroup::Canary,
        requires: &["canary-by-header"],
    },
    AnnotationSpec {
        key: "canary-by-header-pattern",
        grammar: Grammar::Regex,
        default: "",
        description: "A regex the canary-by-header value must match to route to the canary (ignored when canary-by-header-value is set).",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the canary"),
        group: PolicyGroup::Canary,
        requires: &["canary-by-header"],
    },
    AnnotationSpec {
        key: "canary-by-cookie",
        grammar: Grammar::CookieName,
        default: "",
        description: "Cookie that routes to the canary when its value is `always`, and never when `never` (after canary-by-header, before canary-weight).",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the canary"),
        group: PolicyGroup::Canary,
        requires: &["canary"],
    },
    AnnotationSpec {
        key: "canary-weight",
        grammar: Grammar::Int {
            min: 0,
            max: 1_000_000,
        },
        default: "0",
        description: "Share of the remaining requests (out of canary-weight-total) sent to the canary, at random.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the canary"),
        group: PolicyGroup::Canary,
        requires: &["canary"],
    },
    AnnotationSpec {
        key: "canary-weight-total",
        grammar: Grammar::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "100",
        description: "What canary-weight is a share of.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("the canary"),
        group: PolicyGroup::Canary,
        requires: &["canary"],
    },
    // --- Client certificates ---------------------------------------------------------------
    AnnotationSpec {
        key: "auth-tls-secret",
        grammar: Grammar::SecretRef,
        default: "",
        description: "Secret with the CA bundle (`ca.crt`) client certificates must chain to, in the Ingress's namespace; applies to the Ingress's TLS hosts.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("client-certificate authentication"),
        group: PolicyGroup::ClientCertificates,
        requires: &[],
    },
    AnnotationSpec {
        key: "auth-tls-verify-client",
        grammar: Grammar::Enum(&VERIFY_CLIENT),
        default: "on",
        description: "on: a valid client certificate is required; optional: verified when sent; optional_no_ca: requested, not verified, passed upstream; off: not requested.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("client-certificate authentication"),
        group: PolicyGroup::ClientCertificates,
        requires: &["auth-tls-secret"],
    },
    AnnotationSpec {
        key: "auth-tls-verify-depth",
        grammar: Grammar::Int { min: 1, max: 10 },
        default: "1",
        description: "Longest chain of intermediates between the client certificate and the CA.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("client-certificate authentication"),
        group: PolicyGroup::ClientCertificates,
        requires: &["auth-tls-secret"],
    },
    AnnotationSpec {
        key: "auth-tls-pass-certificate-to-upstream",
        grammar: Grammar::Bool,
        default: "false",
        description: "Send the client certificate to the backend in the ssl-client-cert header (URL-encoded PEM), as ingress-nginx.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("client-certificate authentication"),
        group: PolicyGroup::ClientCertificates,
        requires: &["auth-tls-secret"],
    },
    AnnotationSpec {
        key: "auth-tls-error-page",
        grammar: Grammar::Url,
        default: "",
        description: "Where to redirect a request whose client certificate failed verification (optional modes), instead of answering 400.",
        severity: Severity::RejectIngress,
        drops: Drops::Policy("client-certificate authentication"),
        group: PolicyGroup::ClientCertificates,
        requires: &["auth-tls-secret"],
    },
    // --- TLS to backends -------------------------------------------------------------------
    AnnotationSpec {
        key: "proxy-ssl-secret",
        grammar: Grammar::SecretRef,
        default: "",
        description: "Secret with the client certificate (`tls.crt`, `tls.key`) Sluice presents to HTTPS backends and the CA (`ca.crt`) it verifies them against.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("TLS to the backend"),
        group: PolicyGroup::UpstreamTls,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-ssl-verify",
        grammar: Grammar::Enum(&ON_OFF),
        default: "off",
        description: "Verify the HTTPS backend's certificate against the ca.crt of proxy-ssl-secret.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("TLS to the backend"),
        group: PolicyGroup::UpstreamTls,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-ssl-verify-depth",
        grammar: Grammar::Int { min: 1, max: 10 },
        default: "1",
        description: "Accepted for compatibility; the chain is verified by rustls to any depth.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::UpstreamTls,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-ssl-name",
        grammar: Grammar::Host,
        default: "",
        description: "Server name the backend's certificate is verified against and, with proxy-ssl-server-name, sent as SNI (default: the Service's cluster DNS name).",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("TLS to the backend"),
        group: PolicyGroup::UpstreamTls,
        requires: &[],
    },
    AnnotationSpec {
        key: "proxy-ssl-server-name",
        grammar: Grammar::Enum(&ON_OFF),
        default: "off",
        description: "Send SNI to HTTPS backends.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::UpstreamTls,
        requires: &[],
    },
    // --- Load balancing --------------------------------------------------------------------
    AnnotationSpec {
        key: "load-balance",
        grammar: Grammar::Enum(&LOAD_BALANCE),
        default: "round_robin",
        description: "round_robin, or ewma: the endpoint with the lowest moving average of response time weighted by requests in flight, of two chosen at random.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::LoadBalancing,
        requires: &[],
    },
    AnnotationSpec {
        key: "upstream-hash-by",
        grammar: Grammar::KeyTemplate,
        default: "",
        description: "Consistent hashing of this key (for example $remote_addr, $request_uri, $http_x_user, $cookie_session) to an endpoint; when endpoints change, few keys move.",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::LoadBalancing,
        requires: &[],
    },
    AnnotationSpec {
        key: "service-upstream",
        grammar: Grammar::Bool,
        default: "false",
        description: "Send to the Service's ClusterIP and port instead of its endpoints (kube-proxy balances; no retries on another endpoint).",
        severity: Severity::RejectPolicy,
        drops: Drops::Setting,
        group: PolicyGroup::LoadBalancing,
        requires: &[],
    },
    // --- Custom errors ---------------------------------------------------------------------
    AnnotationSpec {
        key: "custom-http-errors",
        grammar: Grammar::StatusList,
        default: "",
        description: "Responses with these statuses (from the backend or Sluice) are replaced by the default-backend's answer, which gets X-Code, X-Format, X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port and X-Request-ID.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("custom errors"),
        group: PolicyGroup::Errors,
        requires: &[],
    },
    AnnotationSpec {
        key: "default-backend",
        grammar: Grammar::ServiceName,
        default: "",
        description: "Service (port 80, or its only port) that answers for custom-http-errors, and for requests when the Ingress's backend has no endpoints.",
        severity: Severity::RejectPolicy,
        drops: Drops::Policy("custom errors"),
        group: PolicyGroup::Errors,
        requires: &[],
    },
];

/// Snippet keys: raw nginx configuration, never executed; header-only server and configuration
/// snippets are translated instead ([`super::snippet`]).
pub const SNIPPETS: &[&str] = &[
    "configuration-snippet",
    "server-snippet",
    "auth-snippet",
    "stream-snippet",
    "modsecurity-snippet",
];

/// How Sluice treats an ingress-nginx key it does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// Reported and ignored.
    Ignored,
}

/// ingress-nginx keys Sluice knows and does not support (yet). Anything else under the two
/// prefixes that is not in [`TABLE`] or [`SNIPPETS`] is unknown.
pub const UNSUPPORTED: &[(&str, Unsupported)] = &[
    ("affinity-canary-behavior", Unsupported::Ignored),
    ("auth-always-set-cookie", Unsupported::Ignored),
    ("auth-cache-duration", Unsupported::Ignored),
    ("auth-cache-key", Unsupported::Ignored),
    ("auth-keepalive", Unsupported::Ignored),
    ("auth-keepalive-requests", Unsupported::Ignored),
    ("auth-keepalive-share-vars", Unsupported::Ignored),
    ("auth-keepalive-timeout", Unsupported::Ignored),
    ("auth-proxy-set-headers", Unsupported::Ignored),
    ("auth-request-redirect", Unsupported::Ignored),
    ("auth-signin-redirect-param", Unsupported::Ignored),
    ("auth-tls-match-cn", Unsupported::Ignored),
    ("client-body-buffer-size", Unsupported::Ignored),
    ("enable-access-log", Unsupported::Ignored),
    ("enable-global-auth", Unsupported::Ignored),
    ("enable-modsecurity", Unsupported::Ignored),
    ("enable-opentelemetry", Unsupported::Ignored),
    ("enable-opentracing", Unsupported::Ignored),
    ("enable-owasp-core-rules", Unsupported::Ignored),
    ("enable-rewrite-log", Unsupported::Ignored),
    ("global-rate-limit", Unsupported::Ignored),
    ("global-rate-limit-ignored-cidrs", Unsupported::Ignored),
    ("global-rate-limit-key", Unsupported::Ignored),
    ("global-rate-limit-window", Unsupported::Ignored),
    ("http2-push-preload", Unsupported::Ignored),
    ("limit-rate", Unsupported::Ignored),
    ("limit-rate-after", Unsupported::Ignored),
    ("mirror-host", Unsupported::Ignored),
    ("mirror-request-body", Unsupported::Ignored),
    ("mirror-target", Unsupported::Ignored),
    ("modsecurity-transaction-id", Unsupported::Ignored),
    ("opentelemetry-operation-name", Unsupported::Ignored),
    ("opentelemetry-trust-incoming-span", Unsupported::Ignored),
    ("opentracing-trust-incoming-span", Unsupported::Ignored),
    ("preserve-trailing-slash", Unsupported::Ignored),
    ("proxy-buffers-number", Unsupported::Ignored),
    ("proxy-cookie-domain", Unsupported::Ignored),
    ("proxy-cookie-path", Unsupported::Ignored),
    ("proxy-max-temp-file-size", Unsupported::Ignored),
    ("proxy-next-upstream", Unsupported::Ignored),
    ("proxy-next-upstream-timeout", Unsupported::Ignored),
    ("proxy-redirect-from", Unsupported::Ignored),
    ("proxy-redirect-to", Unsupported::Ignored),
    ("proxy-ssl-ciphers", Unsupported::Ignored),
    ("proxy-ssl-protocols", Unsupported::Ignored),
    ("satisfy", Unsupported::Ignored),
    ("server-alias", Unsupported::Ignored),
    (
        "session-cookie-conditional-samesite-none",
        Unsupported::Ignored,
    ),
    ("ssl-prefer-server-ciphers", Unsupported::Ignored),
    ("upstream-hash-by-subset", Unsupported::Ignored),
    ("upstream-hash-by-subset-size", Unsupported::Ignored),
];

/// Keys people write for a supported key under another name (ingress-nginx look-alikes,
/// other controllers' names), with the key to suggest.
pub const LOOKALIKES: &[(&str, &str)] = &[
    ("rate-limit", "limit-rps"),
    ("ratelimit", "limit-rps"),
    ("rate-limit-rps", "limit-rps"),
    ("rate-limit-rpm", "limit-rpm"),
    ("rate-limit-connections", "limit-connections"),
    ("limit-allowlist", "limit-whitelist"),
    ("whitelist", "whitelist-source-range"),
    ("allowlist", "allowlist-source-range"),
    ("ip-whitelist", "whitelist-source-range"),
    ("ip-allowlist", "allowlist-source-range"),
    ("blacklist-source-range", "denylist-source-range"),
    ("denylist", "denylist-source-range"),
    ("cors-enable", "enable-cors"),
    ("cors-enabled", "enable-cors"),
    ("cors", "enable-cors"),
    ("sticky", "affinity"),
    ("session-affinity", "affinity"),
    ("affinity-cookie-name", "session-cookie-name"),
    ("https-redirect", "ssl-redirect"),
    ("force-https", "force-ssl-redirect"),
    ("redirect", "permanent-redirect"),
    ("rewrite", "rewrite-target"),
    ("client-max-body-size", "proxy-body-size"),
    ("body-size", "proxy-body-size"),
    ("proxy-timeout", "proxy-read-timeout"),
    ("timeout", "proxy-read-timeout"),
    ("ciphers", "ssl-ciphers"),
    ("passthrough", "ssl-passthrough"),
    ("regex", "use-regex"),
    ("protocol", "backend-protocol"),
];

/// Up to three supported keys close to `key` (a typo, a look-alike name, wrong case).
pub fn suggestions(key: &str) -> Vec<&'static str> {
    let key = key.to_ascii_lowercase();
    if let Some((_, good)) = LOOKALIKES.iter().find(|(bad, _)| *bad == key) {
        return vec![good];
    }
    let mut close: Vec<(usize, &'static str)> = TABLE
        .iter()
        .map(|s| (edit_distance(&key, s.key), s.key))
        .filter(|(d, candidate)| *d <= 2 && *d < candidate.len() / 2)
        .collect();
    close.sort();
    if let Some(&(best, _)) = close.first() {
        // Only the closest: "limit-rsp" is limit-rps, not also limit-rpm.
        close.retain(|(d, _)| *d == best);
    }
    close.into_iter().take(3).map(|(_, k)| k).collect()
}

/// Edit distance counting a swap of two neighbours as one edit (optimal string alignment), so
/// transposition typos are as close as single-letter ones. Keys are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_well_formed() {
        let mut keys: Vec<&str> = TABLE.iter().map(|s| s.key).collect();
        keys.extend(SNIPPETS);
        keys.extend(UNSUPPORTED.iter().map(|(k, _)| *k));
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "a key is listed twice");
        for key in keys {
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{key}"
            );
        }
        for (bad, good) in LOOKALIKES {
            assert!(spec(good).is_some(), "{bad} suggests unknown {good}");
            assert!(spec(bad).is_none(), "{bad} is a supported key");
        }
    }

    #[test]
    fn requirements_name_supported_keys() {
        for spec_ in TABLE {
            for required in spec_.requires {
                let required = spec(required).unwrap_or_else(|| panic!("{required}"));
                assert_eq!(required.group, spec_.group, "{}", spec_.key);
            }
        }
    }

    #[test]
    fn every_key_the_issue_names_is_supported() {
        let issue = [
            "ssl-redirect",
            "force-ssl-redirect",
            "permanent-redirect",
            "permanent-redirect-code",
            "temporal-redirect",
            "temporal-redirect-code",
            "app-root",
            "from-to-www-redirect",
            "rewrite-target",
            "use-regex",
            "x-forwarded-prefix",
            "upstream-vhost",
            "auth-type",
            "auth-secret",
            "auth-secret-type",
            "auth-realm",
            "auth-url",
            "auth-method",
            "auth-signin",
            "auth-response-headers",
            "affinity",
            "affinity-mode",
            "session-cookie-name",
            "session-cookie-path",
            "session-cookie-domain",
            "session-cookie-max-age",
            "session-cookie-expires",
            "session-cookie-samesite",
            "session-cookie-secure",
            "ssl-passthrough",
            "ssl-ciphers",
            "enable-cors",
            "cors-allow-origin",
            "cors-allow-methods",
            "cors-allow-headers",
            "cors-allow-credentials",
            "cors-expose-headers",
            "cors-max-age",
            "limit-rps",
            "limit-rpm",
            "limit-connections",
            "limit-burst-multiplier",
            "limit-whitelist",
            "whitelist-source-range",
            "allowlist-source-range",
            "denylist-source-range",
            "proxy-body-size",
            "proxy-connect-timeout",
            "proxy-read-timeout",
            "proxy-send-timeout",
            "proxy-next-upstream-tries",
            "backend-protocol",
            "proxy-http-version",
            "connection-proxy-header",
            "proxy-buffering",
            "proxy-buffer-size",
        ];
        for key in issue {
            assert!(spec(key).is_some(), "{key} is missing from the table");
        }
    }

    #[test]
    fn auth_and_access_lists_fail_closed() {
        for spec_ in TABLE {
            let closed = matches!(
                spec_.group,
                PolicyGroup::BasicAuth
                    | PolicyGroup::ExternalAuth
                    | PolicyGroup::Access
                    | PolicyGroup::Canary
                    | PolicyGroup::ClientCertificates
            );
            assert_eq!(
                spec_.severity == Severity::RejectIngress,
                closed,
                "{}",
                spec_.key
            );
        }
    }

    #[test]
    fn defaults_parse_with_their_grammar() {
        for spec_ in TABLE {
            let d = spec_.default;
            // Defaults that describe rather than spell a value start with "the".
            if !d.is_empty() && !d.starts_with("the ") {
                assert!(spec_.grammar.parse(d).is_ok(), "{}: {d:?}", spec_.key);
            }
        }
    }

    #[test]
    fn suggestion_table() {
        let cases: &[(&str, &[&str])] = &[
            ("rate-limit", &["limit-rps"]),
            ("limit-rsp", &["limit-rps"]),
            ("proxy-body-sise", &["proxy-body-size"]),
            ("ssl-redirects", &["ssl-redirect"]),
            ("cors-allow-origins", &["cors-allow-origin"]),
            ("enable-corss", &["enable-cors"]),
            ("completely-different", &[]),
            ("x", &[]),
        ];
        for (key, want) in cases {
            assert_eq!(suggestions(key), *want, "{key}");
        }
    }
}
