//! The typed per-Ingress policies the annotations describe: what the data plane consumes.
//!
//! A field is `None` when its keys are not set, or when a key of it was invalid (the problem
//! says so). Fields whose default is set-wide (timeouts, body size, ciphers) stay `None` when
//! unset, so the data plane applies the set's `spec.proxy` value; fields whose default is fixed
//! carry it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ciphers::CipherSelection;
use super::grammar::Value;
use super::table::spec;
use super::template::Template;
use super::{AnnotationProblem, Severity};
use crate::dataplane_config::{BodySizeLimit, IpCidr};

/// Every policy an Ingress's annotations set, by issue-6 group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policies {
    /// ssl-redirect, permanent-redirect, app-root, ...
    pub redirect: RedirectPolicies,
    /// rewrite-target, use-regex, x-forwarded-prefix, upstream-vhost.
    pub rewrite: RewritePolicies,
    /// auth-type with auth-secret.
    pub basic_auth: Option<BasicAuth>,
    /// auth-url and friends.
    pub external_auth: Option<ExternalAuth>,
    /// affinity: cookie.
    pub affinity: Option<SessionAffinity>,
    /// ssl-passthrough, ssl-ciphers.
    pub tls: TlsPolicies,
    /// enable-cors.
    pub cors: Option<Cors>,
    /// limit-rps, limit-rpm, limit-connections.
    pub rate_limit: Option<RateLimit>,
    /// allowlist/whitelist/denylist-source-range.
    pub access: Option<AccessLists>,
    /// proxy-*, backend-protocol.
    pub proxy: ProxyPolicies,
    /// `canary: true` with its canary-* keys.
    pub canary: Option<Canary>,
    /// auth-tls-*.
    pub client_certificates: Option<ClientCertificates>,
    /// proxy-ssl-*.
    pub upstream_tls: Option<UpstreamTls>,
    /// load-balance, upstream-hash-by, service-upstream.
    pub load_balancing: LoadBalancing,
    /// custom-http-errors, default-backend.
    pub errors: Option<CustomErrors>,
    /// Header changes translated from header-only `server-snippet` and `configuration-snippet`
    /// ([`super::snippet`]).
    pub headers: HeaderPolicies,
    /// `custom-headers`: the ConfigMap whose entries are set on every response. Its contents
    /// are read (and each entry validated) by the data plane from the operator's mirror.
    pub custom_headers: Option<ConfigMapRef>,
}

impl Policies {
    /// The Secrets these policies read (today: `auth-secret`), for the operator to mirror into
    /// the fleet's namespace. Resolve each with [`SecretRef::name_in`] and the Ingress's
    /// namespace.
    pub fn secret_refs(&self) -> Vec<&SecretRef> {
        self.basic_auth
            .iter()
            .map(|auth| &auth.secret)
            .chain(self.client_certificates.iter().map(|c| &c.secret))
            .chain(self.upstream_tls.iter().filter_map(|t| t.secret.as_ref()))
            .collect()
    }
}

/// Redirect settings; each field is independent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedirectPolicies {
    /// `ssl-redirect` (default true on TLS hosts).
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect` (default false).
    pub force_ssl_redirect: Option<bool>,
    /// `permanent-redirect` with its code.
    pub permanent: Option<Redirect>,
    /// `temporal-redirect` with its code.
    pub temporal: Option<Redirect>,
    /// `app-root`: a path starting with `/`.
    pub app_root: Option<String>,
    /// `from-to-www-redirect`.
    pub from_to_www: Option<bool>,
}

/// A redirect answered instead of proxying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Where to, expanded per request.
    pub url: Template,
    /// 300..=308.
    pub code: u16,
}

/// Rewriting settings; each field is independent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RewritePolicies {
    /// `rewrite-target`: a path template with `$1`..`$9`.
    pub target: Option<Template>,
    /// `use-regex`.
    pub use_regex: Option<bool>,
    /// `x-forwarded-prefix`: a path.
    pub x_forwarded_prefix: Option<String>,
    /// `upstream-vhost`: a Host template.
    pub upstream_vhost: Option<Template>,
}

impl RewritePolicies {
    /// Whether this Ingress puts its hosts in regex mode (`use-regex: true` or a
    /// `rewrite-target`), as ingress-nginx does.
    pub fn regex_mode(&self) -> bool {
        self.use_regex == Some(true) || self.target.is_some()
    }
}

/// `auth-type` with its Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// basic or digest.
    pub scheme: AuthScheme,
    /// `auth-secret`.
    pub secret: SecretRef,
    /// `auth-secret-type`.
    pub secret_type: AuthSecretType,
    /// `auth-realm`: printable ASCII without `"` or `\`.
    pub realm: String,
}

/// HTTP authentication scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthScheme {
    /// RFC 7617.
    Basic,
    /// RFC 7616.
    Digest,
}

/// Layout of the credentials Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthSecretType {
    /// An htpasswd file under the key `auth`.
    AuthFile,
    /// One key per user, the value its password hash.
    AuthMap,
}

/// A Secret named by an annotation: `name` or `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// The namespace written, if any.
    pub namespace: Option<String>,
    /// The Secret's name.
    pub name: String,
}

impl SecretRef {
    /// The Secret's name when it lives in `namespace` (the Ingress's own). A reference into
    /// another namespace gives `None`: an Ingress must not be able to use another team's
    /// credentials, so such a reference fails closed.
    pub fn name_in(&self, namespace: &str) -> Option<&str> {
        match &self.namespace {
            Some(ns) if ns != namespace => None,
            _ => Some(&self.name),
        }
    }
}

/// A ConfigMap named by an annotation (`custom-headers`): `name` or `namespace/name`, with the
/// same own-namespace rule as a Secret ([`SecretRef::name_in`]): an Ingress must not be able to
/// publish another team's configuration on its responses.
pub type ConfigMapRef = SecretRef;

/// `auth-url` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAuth {
    /// Where to ask.
    pub url: Template,
    /// Method of the request to `url` (uppercase).
    pub method: &'static str,
    /// Where to send a client the auth service answered 401.
    pub signin: Option<Template>,
    /// Response headers copied upstream, lowercase.
    pub response_headers: Vec<String>,
}

/// `affinity: cookie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAffinity {
    /// `affinity-mode`.
    pub mode: AffinityMode,
    /// `session-cookie-name` (default `INGRESSCOOKIE`).
    pub cookie_name: String,
    /// `session-cookie-path`; `None`: the matched path.
    pub cookie_path: Option<String>,
    /// `session-cookie-domain`, lowercase.
    pub cookie_domain: Option<String>,
    /// `session-cookie-max-age`, seconds.
    pub max_age: Option<u32>,
    /// `session-cookie-expires`, seconds from now.
    pub expires: Option<u32>,
    /// `session-cookie-samesite`.
    pub samesite: Option<SameSite>,
    /// `session-cookie-secure`.
    pub secure: bool,
    /// `session-cookie-change-on-failure`.
    pub change_on_failure: bool,
}

/// `affinity-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AffinityMode {
    /// Re-pin some clients when backends are added.
    Balanced,
    /// Never re-pin while the backend lives.
    Persistent,
}

/// A cookie's SameSite attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=None`.
    None,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

/// TLS settings of the Ingress's hosts; each field is independent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsPolicies {
    /// `ssl-passthrough`.
    pub passthrough: Option<bool>,
    /// `ssl-ciphers`, evaluated; `None`: the set's `sslCiphers`.
    pub ciphers: Option<CipherSelection>,
}

/// `enable-cors: true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins, lowercase `scheme://host[:port]`, host possibly `*.`-prefixed. Empty:
    /// any origin (`*`).
    pub allow_origin: Vec<String>,
    /// Uppercase method names.
    pub allow_methods: Vec<String>,
    /// Lowercase header names.
    pub allow_headers: Vec<String>,
    /// Access-Control-Allow-Credentials.
    pub allow_credentials: bool,
    /// Lowercase header names.
    pub expose_headers: Vec<String>,
    /// Seconds.
    pub max_age: u32,
}

/// Per client IP, per replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second.
    pub rps: Option<u32>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Concurrent connections.
    pub connections: Option<u32>,
    /// Burst as a multiple of the rate.
    pub burst_multiplier: u32,
    /// Exempt clients.
    pub whitelist: Vec<IpCidr>,
}

/// Source address lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLists {
    /// Only these are served; `None`: everyone not denied.
    pub allow: Option<Vec<IpCidr>>,
    /// These get 403.
    pub deny: Vec<IpCidr>,
}

/// Proxying settings; each field is independent, `None` means the set-wide value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyPolicies {
    /// `proxy-body-size`.
    pub body_size: Option<BodySizeLimit>,
    /// `proxy-connect-timeout`, never zero.
    pub connect_timeout: Option<Duration>,
    /// `proxy-read-timeout`, never zero.
    pub read_timeout: Option<Duration>,
    /// `proxy-send-timeout`, never zero.
    pub send_timeout: Option<Duration>,
    /// `proxy-next-upstream-tries`, 0..=20.
    pub next_upstream_tries: Option<u32>,
    /// `backend-protocol`.
    pub backend_protocol: Option<BackendProtocol>,
    /// `proxy-http-version`.
    pub http_version: Option<HttpVersion>,
    /// `connection-proxy-header`, lowercase tokens.
    pub connection_header: Option<Vec<String>>,
    /// `proxy-buffering` (accepted; no effect on a streaming proxy).
    pub buffering: Option<bool>,
    /// `proxy-request-buffering` (accepted; no effect on a streaming proxy).
    pub request_buffering: Option<bool>,
    /// `proxy-buffer-size`, bytes (accepted; no effect on a streaming proxy).
    pub buffer_size: Option<u64>,
}

/// `canary: true`: this Ingress takes some of the requests for the host and paths another
/// (the main) Ingress serves. ingress-nginx's order: header, then cookie, then weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// `canary-by-header`, lowercase.
    pub by_header: Option<String>,
    /// `canary-by-header-value`: the value that selects the canary (exact).
    pub header_value: Option<String>,
    /// `canary-by-header-pattern`: a regex the value must match (it compiled).
    pub header_pattern: Option<String>,
    /// `canary-by-cookie`.
    pub by_cookie: Option<String>,
    /// `canary-weight` out of `weight_total`.
    pub weight: u32,
    /// `canary-weight-total` (default 100).
    pub weight_total: u32,
}

/// `auth-tls-verify-client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifyClient {
    /// A valid certificate is required.
    On,
    /// Not requested.
    Off,
    /// Verified when sent.
    Optional,
    /// Requested, not verified.
    OptionalNoCa,
}

/// `auth-tls-secret` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificates {
    /// The CA bundle's Secret (`ca.crt`).
    pub secret: SecretRef,
    /// `auth-tls-verify-client`.
    pub verify: VerifyClient,
    /// `auth-tls-verify-depth`.
    pub depth: u32,
    /// `auth-tls-pass-certificate-to-upstream`.
    pub pass_to_upstream: bool,
    /// `auth-tls-error-page`.
    pub error_page: Option<Template>,
}

/// `proxy-ssl-*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `proxy-ssl-secret`: client certificate and CA.
    pub secret: Option<SecretRef>,
    /// `proxy-ssl-verify: on`.
    pub verify: bool,
    /// `proxy-ssl-name`.
    pub name: Option<Template>,
    /// `proxy-ssl-server-name: on`.
    pub server_name: bool,
}

/// `load-balance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadBalance {
    /// The default.
    RoundRobin,
    /// Peak EWMA of response times.
    Ewma,
}

/// How a request picks an endpoint; each field independent, `None` is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancing {
    /// `load-balance`.
    pub algorithm: Option<LoadBalance>,
    /// `upstream-hash-by`: the key, expanded per request.
    pub hash_by: Option<Template>,
    /// `service-upstream`.
    pub service_upstream: Option<bool>,
}

/// `custom-http-errors` with `default-backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomErrors {
    /// Statuses replaced by the default backend's answer.
    pub codes: Vec<u16>,
    /// A Service in the Ingress's namespace; `None`: the set's default backend.
    pub default_backend: Option<String>,
}

/// `backend-protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendProtocol {
    /// HTTP/1.1 in clear text.
    Http,
    /// HTTP/1.1 (or h2 by ALPN) over TLS.
    Https,
    /// HTTP/2 in clear text (h2c).
    Grpc,
    /// HTTP/2 over TLS.
    Grpcs,
}

/// `proxy-http-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// Header changes translated from header-only snippets ([`super::snippet`]). Default: nothing
/// to do.
///
/// Names are lowercase RFC 7230 tokens; a name ending in `*` (only in `request_clear` and
/// `response_hide`) matches every header starting with the rest, which is never empty.
/// Framing and hop-by-hop headers (`Content-Length`, `Transfer-Encoding`, `Connection`,
/// `Upgrade`, `TE`, `Trailer`, `Keep-Alive`, `Proxy-*`) never appear, nor does `Host` except in
/// `request_set`. Lists are normalised so that their order does not matter: the data plane
/// removes first (`request_clear`, `response_hide`), then sets (`request_set`, `response_set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderPolicies {
    /// Request headers sent to the backend instead of what the client sent (`proxy_set_header`,
    /// `more_set_input_headers`): lowercase name and value, at most one entry per name. The value
    /// of `host` is a [`TemplateKind::Host`](super::TemplateKind::Host) template, every other a
    /// [`TemplateKind::HeaderValue`](super::TemplateKind::HeaderValue) one. Applied after
    /// Sluice's own forwarding headers, so an entry replaces them.
    pub request_set: Vec<(String, Template)>,
    /// Request headers removed before proxying (`more_clear_input_headers`, `proxy_set_header`
    /// with an empty value, as nginx).
    pub request_clear: Vec<String>,
    /// Response headers added or set, in order.
    pub response_set: Vec<ResponseHeader>,
    /// Response headers removed (`proxy_hide_header`, `more_clear_headers`), whoever set them:
    /// the backend or Sluice (`Server`).
    pub response_hide: Vec<String>,
    /// `proxy_ssl_name`: the server name for TLS to the backend (SNI and verification), a
    /// [`TemplateKind::Host`](super::TemplateKind::Host) template.
    pub upstream_tls_name: Option<Template>,
}

impl HeaderPolicies {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        *self == HeaderPolicies::default()
    }

    /// `proxy_set_header`: replaces an earlier entry for the name (the last one wins).
    pub(crate) fn set_request(&mut self, name: String, value: Template) {
        self.request_set.retain(|(n, _)| *n != name);
        self.request_set.push((name, value));
    }

    /// A removal after earlier sets of the same headers undoes them, as in nginx's order.
    pub(crate) fn clear_request(&mut self, pattern: String) {
        self.request_set
            .retain(|(n, _)| !header_matches(&pattern, n));
        if !self.request_clear.contains(&pattern) {
            self.request_clear.push(pattern);
        }
    }

    /// A replacing set drops earlier values of the name; an appending one keeps them.
    pub(crate) fn set_response(&mut self, header: ResponseHeader) {
        if !header.append {
            self.response_set.retain(|h| h.name != header.name);
        }
        self.response_set.push(header);
    }

    /// See [`HeaderPolicies::clear_request`].
    pub(crate) fn hide_response(&mut self, pattern: String) {
        self.response_set
            .retain(|h| !header_matches(&pattern, &h.name));
        if !self.response_hide.contains(&pattern) {
            self.response_hide.push(pattern);
        }
    }

    /// `server-snippet` then `configuration-snippet`: for each header the location names (a
    /// wildcard names those it matches), the server's operations on it are dropped, so the
    /// location wins per header; the TLS name likewise.
    pub(crate) fn merge(server: HeaderPolicies, location: HeaderPolicies) -> HeaderPolicies {
        let request: Vec<&str> = location
            .request_set
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(location.request_clear.iter().map(String::as_str))
            .collect();
        let response: Vec<&str> = location
            .response_set
            .iter()
            .map(|h| h.name.as_str())
            .chain(location.response_hide.iter().map(String::as_str))
            .collect();
        let named = |names: &[&str], name: &str| {
            names
                .iter()
                .any(|l| *l == name || (!name.ends_with('*') && header_matches(l, name)))
        };
        let mut merged = HeaderPolicies {
            request_set: server
                .request_set
                .into_iter()
                .filter(|(n, _)| !named(&request, n))
                .collect(),
            request_clear: server
                .request_clear
                .into_iter()
                .filter(|n| !named(&request, n))
                .collect(),
            response_set: server
                .response_set
                .into_iter()
                .filter(|h| !named(&response, &h.name))
                .collect(),
            response_hide: server
                .response_hide
                .into_iter()
                .filter(|n| !named(&response, n))
                .collect(),
            upstream_tls_name: location.upstream_tls_name.or(server.upstream_tls_name),
        };
        merged.request_set.extend(location.request_set);
        merged.request_clear.extend(location.request_clear);
        merged.response_set.extend(location.response_set);
        merged.response_hide.extend(location.response_hide);
        merged
    }
}

/// Whether `pattern` (a lowercase name, or a prefix ending in `*`) matches the lowercase `name`.
pub fn header_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A response header a snippet adds or sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Lowercase name.
    pub name: String,
    /// A [`TemplateKind::HeaderValue`](super::TemplateKind::HeaderValue) template, never empty.
    pub value: Template,
    /// `add_header`: added beside any header of that name already in the response, as nginx
    /// does. `more_set_headers`: replaces them.
    pub append: bool,
    /// `more_set_headers` and `add_header ... always`: on every response. `add_header` without
    /// `always`: only on [`ResponseHeader::NGINX_ADD_HEADER_STATUSES`], as nginx.
    pub always: bool,
}

impl ResponseHeader {
    /// The statuses nginx's `add_header` applies to without `always`.
    pub const NGINX_ADD_HEADER_STATUSES: [u16; 10] =
        [200, 201, 204, 206, 301, 302, 303, 304, 307, 308];

    /// Whether the header goes on a response with `status`.
    pub fn applies_to(&self, status: u16) -> bool {
        self.always || Self::NGINX_ADD_HEADER_STATUSES.contains(&status)
    }
}

/// What the parse step found for one supported key.
#[derive(Debug)]
pub(crate) enum Slot {
    /// Set and valid: the full key it was read from, the value as written, and typed.
    Valid(String, String, Value),
    /// Set and invalid (a problem was recorded).
    Invalid,
}

/// The parse step's result, by key without prefix.
pub(crate) type Slots = BTreeMap<&'static str, Slot>;

/// One key's state, seen from a builder.
enum Field<'a> {
    Absent,
    Invalid,
    Valid(&'a Value),
}

struct Reader<'a> {
    slots: &'a Slots,
}

impl<'a> Reader<'a> {
    fn field(&self, key: &str) -> Field<'a> {
        match self.slots.get(key) {
            None => Field::Absent,
            Some(Slot::Invalid) => Field::Invalid,
            Some(Slot::Valid(_, _, value)) => Field::Valid(value),
        }
    }

    /// The full key and the value as written, when set and valid.
    fn written(&self, key: &str) -> Option<(&'a str, &'a str)> {
        match self.slots.get(key) {
            Some(Slot::Valid(full, raw, _)) => Some((full, raw)),
            _ => None,
        }
    }

    /// True when any of `keys` is invalid: the unit they form is not applied.
    fn any_invalid(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| matches!(self.field(k), Field::Invalid))
    }

    fn value(&self, key: &str) -> Option<&'a Value> {
        match self.field(key) {
            Field::Valid(v) => Some(v),
            _ => None,
        }
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.value(key) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn int(&self, key: &str) -> Option<u32> {
        match self.value(key) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    fn duration(&self, key: &str) -> Option<Duration> {
        match self.value(key) {
            Some(Value::Duration(d)) => Some(*d),
            _ => None,
        }
    }

    fn size(&self, key: &str) -> Option<u64> {
        match self.value(key) {
            Some(Value::Size(n)) => Some(*n),
            _ => None,
        }
    }

    fn word(&self, key: &str) -> Option<&'static str> {
        match self.value(key) {
            Some(Value::Enum(w)) => Some(w),
            _ => None,
        }
    }

    fn template(&self, key: &str) -> Option<Template> {
        match self.value(key) {
            Some(Value::Template(t)) => Some(t.clone()),
            _ => None,
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.value(key) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        }
    }

    fn list(&self, key: &str) -> Option<Vec<String>> {
        match self.value(key) {
            Some(Value::List(l)) => Some(l.clone()),
            _ => None,
        }
    }

    fn cidrs(&self, key: &str) -> Option<Vec<IpCidr>> {
        match self.value(key) {
            Some(Value::Cidrs(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// The table default of `key` parsed with its grammar (the defaults are tested to parse).
    fn default_list(key: &str) -> Vec<String> {
        match spec(key).map(|s| s.grammar.parse(s.default)) {
            Some(Ok(Value::List(list))) => list,
            _ => Vec::new(),
        }
    }
}

/// Builds the policies from the parse step's slots; adds the problems only the combination of
/// keys reveals.
pub(crate) fn build(slots: &Slots, problems: &mut Vec<AnnotationProblem>) -> Policies {
    let r = Reader { slots };
    Policies {
        redirect: redirect(&r),
        rewrite: RewritePolicies {
            target: r.template("rewrite-target"),
            use_regex: r.bool("use-regex"),
            x_forwarded_prefix: r.text("x-forwarded-prefix"),
            upstream_vhost: r.template("upstream-vhost"),
        },
        basic_auth: basic_auth(&r, problems),
        external_auth: external_auth(&r),
        affinity: affinity(&r),
        tls: tls(&r, problems),
        cors: cors(&r),
        rate_limit: rate_limit(&r),
        access: access(&r, problems),
        proxy: proxy(&r),
        // Filled from the snippets by the caller: they are not table keys.
        headers: HeaderPolicies::default(),
        canary: canary(&r),
        client_certificates: client_certificates(&r),
        upstream_tls: upstream_tls(&r),
        load_balancing: LoadBalancing {
            algorithm: r.word("load-balance").map(|w| match w {
                "ewma" => LoadBalance::Ewma,
                _ => LoadBalance::RoundRobin,
            }),
            hash_by: r.template("upstream-hash-by"),
            service_upstream: r.bool("service-upstream"),
        },
        errors: custom_errors(&r),
        custom_headers: secret_ref(&r, "custom-headers"),
    }
}

fn secret_ref(r: &Reader, key: &str) -> Option<SecretRef> {
    match r.value(key) {
        Some(Value::Secret(namespace, name)) => Some(SecretRef {
            namespace: namespace.clone(),
            name: name.clone(),
        }),
        _ => None,
    }
}

const CANARY_KEYS: [&str; 7] = [
    "canary",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
];

fn canary(r: &Reader) -> Option<Canary> {
    // An invalid canary key rejects the Ingress (table severity), so the main Ingress keeps
    // all traffic; nothing to build then.
    if r.bool("canary") != Some(true) || r.any_invalid(&CANARY_KEYS) {
        return None;
    }
    Some(Canary {
        by_header: r.text("canary-by-header"),
        header_value: r.text("canary-by-header-value"),
        header_pattern: r.text("canary-by-header-pattern"),
        by_cookie: r.text("canary-by-cookie"),
        weight: r.int("canary-weight").unwrap_or(0),
        weight_total: r.int("canary-weight-total").unwrap_or(100),
    })
}

const CLIENT_CERT_KEYS: [&str; 5] = [
    "auth-tls-secret",
    "auth-tls-verify-client",
    "auth-tls-verify-depth",
    "auth-tls-pass-certificate-to-upstream",
    "auth-tls-error-page",
];

fn client_certificates(r: &Reader) -> Option<ClientCertificates> {
    if r.any_invalid(&CLIENT_CERT_KEYS) {
        return None;
    }
    Some(ClientCertificates {
        secret: secret_ref(r, "auth-tls-secret")?,
        verify: match r.word("auth-tls-verify-client") {
            Some("off") => VerifyClient::Off,
            Some("optional") => VerifyClient::Optional,
            Some("optional_no_ca") => VerifyClient::OptionalNoCa,
            _ => VerifyClient::On,
        },
        depth: r.int("auth-tls-verify-depth").unwrap_or(1),
        pass_to_upstream: r
            .bool("auth-tls-pass-certificate-to-upstream")
            .unwrap_or(false),
        error_page: r.template("auth-tls-error-page"),
    })
}

const UPSTREAM_TLS_KEYS: [&str; 4] = [
    "proxy-ssl-secret",
    "proxy-ssl-verify",
    "proxy-ssl-name",
    "proxy-ssl-server-name",
];

fn upstream_tls(r: &Reader) -> Option<UpstreamTls> {
    if r.any_invalid(&UPSTREAM_TLS_KEYS) {
        return None;
    }
    let tls = UpstreamTls {
        secret: secret_ref(r, "proxy-ssl-secret"),
        verify: r.word("proxy-ssl-verify") == Some("on"),
        name: r.template("proxy-ssl-name"),
        server_name: r.word("proxy-ssl-server-name") == Some("on"),
    };
    (tls != UpstreamTls::default()).then_some(tls)
}

fn custom_errors(r: &Reader) -> Option<CustomErrors> {
    if r.any_invalid(&["custom-http-errors", "default-backend"]) {
        return None;
    }
    let codes = match r.value("custom-http-errors") {
        Some(Value::Statuses(codes)) => codes.clone(),
        _ => Vec::new(),
    };
    let default_backend = r.text("default-backend");
    if codes.is_empty() && default_backend.is_none() {
        return None;
    }
    Some(CustomErrors {
        codes,
        default_backend,
    })
}

fn redirect(r: &Reader) -> RedirectPolicies {
    let unit = |url_key: &str, code_key: &str, default: u16| {
        if r.any_invalid(&[url_key, code_key]) {
            return None;
        }
        Some(Redirect {
            url: r.template(url_key)?,
            code: r
                .int(code_key)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(default),
        })
    };
    RedirectPolicies {
        ssl_redirect: r.bool("ssl-redirect"),
        force_ssl_redirect: r.bool("force-ssl-redirect"),
        permanent: unit("permanent-redirect", "permanent-redirect-code", 301),
        temporal: unit("temporal-redirect", "temporal-redirect-code", 302),
        app_root: r.text("app-root"),
        from_to_www: r.bool("from-to-www-redirect"),
    }
}

const BASIC_AUTH_KEYS: [&str; 4] = ["auth-type", "auth-secret", "auth-secret-type", "auth-realm"];

fn basic_auth(r: &Reader, problems: &mut Vec<AnnotationProblem>) -> Option<BasicAuth> {
    let scheme = match r.word("auth-type")? {
        "digest" => AuthScheme::Digest,
        _ => AuthScheme::Basic,
    };
    if r.any_invalid(&BASIC_AUTH_KEYS) {
        return None;
    }
    let Some(Value::Secret(namespace, name)) = r.value("auth-secret") else {
        // Authentication without credentials cannot be served: fail closed.
        if let Some((key, raw)) = r.written("auth-type") {
            problems.push(AnnotationProblem::combination(
                key,
                raw,
                "auth-type",
                "requires auth-secret (the Secret with the credentials)",
                Severity::RejectIngress,
            ));
        }
        return None;
    };
    Some(BasicAuth {
        scheme,
        secret: SecretRef {
            namespace: namespace.clone(),
            name: name.clone(),
        },
        secret_type: match r.word("auth-secret-type") {
            Some("auth-map") => AuthSecretType::AuthMap,
            _ => AuthSecretType::AuthFile,
        },
        realm: r
            .text("auth-realm")
            .unwrap_or_else(|| "Authentication Required".into()),
    })
}

fn external_auth(r: &Reader) -> Option<ExternalAuth> {
    let keys = [
        "auth-url",
        "auth-method",
        "auth-signin",
        "auth-response-headers",
    ];
    if r.any_invalid(&keys) {
        return None;
    }
    Some(ExternalAuth {
        url: r.template("auth-url")?,
        method: r.word("auth-method").unwrap_or("GET"),
        signin: r.template("auth-signin"),
        response_headers: r.list("auth-response-headers").unwrap_or_default(),
    })
}

fn affinity(r: &Reader) -> Option<SessionAffinity> {
    let keys = [
        "affinity",
        "affinity-mode",
        "session-cookie-name",
        "session-cookie-path",
        "session-cookie-domain",
        "session-cookie-max-age",
        "session-cookie-expires",
        "session-cookie-samesite",
        "session-cookie-secure",
        "session-cookie-change-on-failure",
    ];
    r.word("affinity")?;
    if r.any_invalid(&keys) {
        return None;
    }
    Some(SessionAffinity {
        mode: match r.word("affinity-mode") {
            Some("persistent") => AffinityMode::Persistent,
            _ => AffinityMode::Balanced,
        },
        cookie_name: r
            .text("session-cookie-name")
            .unwrap_or_else(|| "INGRESSCOOKIE".into()),
        cookie_path: r.text("session-cookie-path"),
        cookie_domain: r.text("session-cookie-domain"),
        max_age: r.int("session-cookie-max-age"),
        expires: r.int("session-cookie-expires"),
        samesite: r.word("session-cookie-samesite").map(|w| match w {
            "None" => SameSite::None,
            "Lax" => SameSite::Lax,
            _ => SameSite::Strict,
        }),
        secure: r.bool("session-cookie-secure").unwrap_or(false),
        change_on_failure: r.bool("session-cookie-change-on-failure").unwrap_or(false),
    })
}

fn tls(r: &Reader, problems: &mut Vec<AnnotationProblem>) -> TlsPolicies {
    let ciphers = match r.value("ssl-ciphers") {
        Some(Value::Ciphers(selection)) => {
            let (key, raw) = r.written("ssl-ciphers").unwrap_or(("ssl-ciphers", ""));
            if !selection.not_honoured.is_empty() {
                problems.push(AnnotationProblem::combination(
                    key,
                    raw,
                    "ssl-ciphers",
                    &format!(
                        "not honoured (rustls implements no such suite, or the name is unknown): {}",
                        selection.not_honoured.join(", ")
                    ),
                    Severity::Ignored,
                ));
            }
            if !selection.tls12_enabled() {
                problems.push(AnnotationProblem::combination(
                    key,
                    raw,
                    "ssl-ciphers",
                    "selects no TLS 1.2 cipher suite rustls implements: TLS 1.2 is off for these hosts, TLS 1.3 still works",
                    Severity::Ignored,
                ));
            }
            Some(selection.clone())
        }
        _ => None,
    };
    TlsPolicies {
        passthrough: r.bool("ssl-passthrough"),
        ciphers,
    }
}

fn cors(r: &Reader) -> Option<Cors> {
    let keys = [
        "enable-cors",
        "cors-allow-origin",
        "cors-allow-methods",
        "cors-allow-headers",
        "cors-allow-credentials",
        "cors-expose-headers",
        "cors-max-age",
    ];
    if r.bool("enable-cors") != Some(true) || r.any_invalid(&keys) {
        return None;
    }
    Some(Cors {
        allow_origin: match r.value("cors-allow-origin") {
            Some(Value::Origins(origins)) => origins.clone(),
            _ => Vec::new(),
        },
        allow_methods: r
            .list("cors-allow-methods")
            .unwrap_or_else(|| Reader::default_list("cors-allow-methods")),
        allow_headers: r
            .list("cors-allow-headers")
            .unwrap_or_else(|| Reader::default_list("cors-allow-headers")),
        allow_credentials: r.bool("cors-allow-credentials").unwrap_or(true),
        expose_headers: r.list("cors-expose-headers").unwrap_or_default(),
        max_age: r.int("cors-max-age").unwrap_or(1_728_000),
    })
}

fn rate_limit(r: &Reader) -> Option<RateLimit> {
    let keys = [
        "limit-rps",
        "limit-rpm",
        "limit-connections",
        "limit-burst-multiplier",
        "limit-whitelist",
    ];
    if r.any_invalid(&keys) {
        return None;
    }
    // 0 means "no limit", as in ingress-nginx.
    let positive = |key: &str| r.int(key).filter(|n| *n > 0);
    let (rps, rpm, connections) = (
        positive("limit-rps"),
        positive("limit-rpm"),
        positive("limit-connections"),
    );
    if rps.is_none() && rpm.is_none() && connections.is_none() {
        return None;
    }
    Some(RateLimit {
        rps,
        rpm,
        connections,
        burst_multiplier: r.int("limit-burst-multiplier").unwrap_or(5),
        whitelist: r.cidrs("limit-whitelist").unwrap_or_default(),
    })
}

fn access(r: &Reader, problems: &mut Vec<AnnotationProblem>) -> Option<AccessLists> {
    let keys = [
        "allowlist-source-range",
        "whitelist-source-range",
        "denylist-source-range",
    ];
    if r.any_invalid(&keys) {
        return None;
    }
    let allow = match (
        r.cidrs("allowlist-source-range"),
        r.written("whitelist-source-range"),
    ) {
        (Some(allow), Some((key, raw))) => {
            problems.push(AnnotationProblem::combination(
                key,
                raw,
                "whitelist-source-range",
                "ignored: allowlist-source-range is set and replaces it",
                Severity::Ignored,
            ));
            Some(allow)
        }
        (Some(allow), None) => Some(allow),
        (None, _) => r.cidrs("whitelist-source-range"),
    };
    let deny = r.cidrs("denylist-source-range");
    if allow.is_none() && deny.is_none() {
        return None;
    }
    Some(AccessLists {
        allow,
        deny: deny.unwrap_or_default(),
    })
}

fn proxy(r: &Reader) -> ProxyPolicies {
    ProxyPolicies {
        body_size: r.size("proxy-body-size").map(|n| {
            std::num::NonZeroU64::new(n).map_or(BodySizeLimit::Unlimited, BodySizeLimit::Bytes)
        }),
        connect_timeout: r.duration("proxy-connect-timeout"),
        read_timeout: r.duration("proxy-read-timeout"),
        send_timeout: r.duration("proxy-send-timeout"),
        next_upstream_tries: r.int("proxy-next-upstream-tries"),
        backend_protocol: r.word("backend-protocol").map(|w| match w {
            "HTTPS" => BackendProtocol::Https,
            "GRPC" => BackendProtocol::Grpc,
            "GRPCS" => BackendProtocol::Grpcs,
            _ => BackendProtocol::Http,
        }),
        http_version: r.word("proxy-http-version").map(|w| match w {
            "1.0" => HttpVersion::Http10,
            _ => HttpVersion::Http11,
        }),
        connection_header: r.list("connection-proxy-header"),
        buffering: r.word("proxy-buffering").map(|w| w == "on"),
        request_buffering: r.word("proxy-request-buffering").map(|w| w == "on"),
        buffer_size: r.size("proxy-buffer-size"),
    }
}
