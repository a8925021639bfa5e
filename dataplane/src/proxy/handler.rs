//! The per-request path: [`Proxy::handle`], shared by the plain-HTTP listener and (next issue)
//! the TLS one.
//!
//! Order of work for one request: read the snapshot and config once → request id and client
//! address → Host and path checks → route → body-size check → header rewrite → pick endpoints
//! → connect (next endpoint on connect failure) → stream the response back (or tunnel an
//! upgrade). Every failure is a [`ProxyError`] with its own status code; nothing panics on
//! client or upstream input.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming, SizeHint};
use sluice_crds::dataplane_config::DataplaneConfig;

use super::access_log::AccessLogEntry;
use super::body::{Finish, Progress, RequestBody, RequestBodyError, Tracked, round_millis};
use super::errors::ProxyError;
use super::headers::{self, Forwarding, RequestFacts, X_REQUEST_ID};
use super::policy::{Limits, RequestContext};
use super::pool::UpstreamBody;
use super::upstream::{self, Candidates, ConnectTimeout};
use super::{BoxBody, ClientInfo, Proxy, tunnel};
use crate::model::{Backend, IngressPolicy, IngressRef, ServiceRef, Snapshot};
use crate::policy::{self, affinity};
use crate::router::normalize_host;
use crate::upstream_tls::UpstreamTlsConfig;
use futures::future::Either;
use http::HeaderName;
use rustls::pki_types::ServerName;
use sluice_crds::annotations::{
    BackendProtocol, Cors, HttpVersion, LoadBalance, ResponseHeader, Template,
};

/// What one request learned on its way, for its metrics and access-log line.
struct Exchange<'s> {
    source: Option<&'s IngressRef>,
    /// The host rule that answered (`foo.com`, `*.foo.com`, `` for catch-all or none).
    host_rule: &'s str,
    service: Option<&'s ServiceRef>,
    /// Every address tried, only kept when the access log is on.
    upstream_addrs: Vec<SocketAddr>,
    /// The endpoint that answered.
    upstream: Option<SocketAddr>,
    upstream_status: Option<u16>,
    upstream_time: Option<Duration>,
    /// HTTPS for a host with TLS: the response carries Strict-Transport-Security.
    hsts: bool,
    /// `enable-cors` of the matched Ingress, with the request's Origin.
    cors: Option<(&'s Cors, Option<HeaderValue>)>,
    /// A new session-affinity cookie for the response.
    set_cookie: Option<HeaderValue>,
    /// Kept until the response is done (`limit-connections`).
    hold: Option<Box<dyn Send + Sync>>,
    /// Response headers a snippet removes (patterns, `*` suffix) and sets, expanded.
    response_hide: &'s [String],
    response_set: Vec<(&'s ResponseHeader, HeaderValue)>,
    /// `custom-headers` of the matched Ingress, set on every response (errors included).
    custom_headers: &'s [(HeaderName, HeaderValue)],
    /// `custom-http-errors`: what to ask the error backend when the status is listed.
    custom_errors: Option<CustomErrorRequest<'s>>,
}

/// What an error backend is told about the failed request, ingress-nginx's X-* headers.
struct CustomErrorRequest<'s> {
    codes: &'s [u16],
    backend: &'s Arc<Backend>,
    path_and_query: PathAndQuery,
    format: Option<HeaderValue>,
    service_port: String,
}

/// Request fields the access log needs, copied before the request is consumed (only when the
/// log is on).
struct LogRequest {
    method: String,
    host: String,
    path: String,
    protocol: &'static str,
    user_agent: Option<String>,
}

/// How one upstream attempt failed.
enum SendError {
    /// Connecting failed (refused, unreachable, timed out): nothing was sent, the next
    /// endpoint may be tried.
    Connect {
        kind: &'static str,
        timed_out: bool,
    },
    Timeout,
    BodyTooLarge {
        limit: u64,
    },
    ClientBody(String),
    Upstream(String),
}

/// The endpoints of one request: a Service's (borrowed from the snapshot) or an ExternalName's
/// resolved addresses.
enum Targets<'a> {
    Endpoints(Candidates<'a>),
    Resolved(Vec<SocketAddr>),
}

impl Targets<'_> {
    fn len(&self) -> usize {
        match self {
            Targets::Endpoints(c) => c.len(),
            Targets::Resolved(addrs) => addrs.len(),
        }
    }

    fn nth(&self, i: usize) -> Option<SocketAddr> {
        match self {
            Targets::Endpoints(c) => c.nth(i),
            Targets::Resolved(addrs) => addrs.get(i).copied(),
        }
    }
}

/// True when a body whose size is known up front (`Content-Length`) is over the limit; a
/// streamed body is checked as it arrives ([`RequestBody`]).
pub(crate) fn exceeds_limit(hint: &SizeHint, limit: Option<u64>) -> bool {
    limit.is_some_and(|limit| hint.lower() > limit)
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "",
    }
}

impl Proxy {
    /// Handles one request from a client connection. Never fails: errors become synthetic
    /// responses (see [`ProxyError`]). The returned body streams from the upstream; metrics and
    /// the access-log line are recorded when it has been sent (or dropped).
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        client: ClientInfo,
    ) -> Response<BoxBody> {
        let start = Instant::now();
        // Once per request: the request keeps these even if a new snapshot is published.
        let snapshot = self.shared.snapshot.load_full();
        let config = self.shared.config.load_full();

        let request_id = headers::request_id(req.headers());
        let forwarding = headers::forwarding(
            req.headers(),
            client.peer,
            client.proxy_protocol_src,
            &config,
        );
        let log_request = self.access_log.as_ref().map(|_| LogRequest {
            method: req.method().as_str().to_owned(),
            host: req
                .uri()
                .authority()
                .map(|a| a.as_str())
                .or_else(|| {
                    req.headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                })
                .unwrap_or_default()
                .to_owned(),
            path: req.uri().path().to_owned(),
            protocol: protocol(req.version()),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        let upgrade =
            req.version() == Version::HTTP_11 && headers::is_upgrade_request(req.headers());
        // Taken before the request is consumed: the client side of a WebSocket tunnel.
        let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

        let mut ex = Exchange {
            source: None,
            host_rule: "",
            service: None,
            upstream_addrs: Vec::new(),
            upstream: None,
            upstream_status: None,
            upstream_time: None,
            hsts: false,
            cors: None,
            set_cookie: None,
            hold: None,
            response_hide: &[],
            response_set: Vec::new(),
            custom_headers: &[],
            custom_errors: None,
        };
        let mut result = self
            .forward(
                req,
                &client,
                forwarding,
                &request_id,
                upgrade,
                &snapshot,
                &config,
                &mut ex,
            )
            .await;
        if let Some(errors) = ex.custom_errors.take() {
            let status = match &result {
                Ok(resp) => Some(resp.status()),
                // Only failures of the request itself; a redirect or a preflight is an answer.
                Err(e) if e.upstream_kind().is_some() => Some(e.status()),
                Err(_) => None,
            };
            if let Some(status) = status.filter(|s| errors.codes.contains(&s.as_u16())) {
                match self
                    .custom_error(&errors, status, &ex, &request_id, &config)
                    .await
                {
                    Ok(resp) => result = Ok(resp),
                    Err(error) => {
                        tracing::debug!(%error, "custom error backend failed; the original answer stands");
                    }
                }
            }
        }

        // ingress-nginx's `more_set_headers`: on every response for the host, errors included,
        // replacing what the upstream sent.
        let hsts = if ex.hsts {
            config
                .hsts_header()
                .and_then(|v| HeaderValue::try_from(v).ok())
        } else {
            None
        };
        let result = result.and_then(|mut resp| {
            let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
            if switching {
                let Some(client_side) = on_upgrade else {
                    return Err(ProxyError::Upstream {
                        upstream: ex.upstream.unwrap_or(client.local),
                        reason: "101 Switching Protocols to a request that asked for no upgrade"
                            .into(),
                    });
                };
                let upstream_side = hyper::upgrade::on(&mut resp);
                tokio::spawn(tunnel::run(
                    client_side,
                    upstream_side,
                    config.proxy_read_timeout,
                ));
            }
            headers::rewrite_response(resp.headers_mut(), switching, &request_id);
            if let Some(hsts) = &hsts {
                resp.headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            if let Some(cookie) = ex.set_cookie.take() {
                resp.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok((resp, switching))
        });
        // ingress-nginx sets the CORS headers with more_set_headers: on every response,
        // errors included (a preflight has its own).
        let cors = ex.cors.take();
        let (hide, set) = (ex.response_hide, std::mem::take(&mut ex.response_set));
        let add_cors = |status: StatusCode, headers: &mut http::HeaderMap| {
            if let Some((cors, origin)) = &cors {
                super::policy::cors_response(cors, origin.as_ref(), headers);
            }
            super::policy::response_headers(status, hide, &set, headers);
            // After the snippet's headers: like more_set_headers, the last setting wins.
            for (name, value) in ex.custom_headers {
                headers.insert(name.clone(), value.clone());
            }
        };

        match result {
            Ok((resp, switching)) => {
                let (mut parts, body) = resp.into_parts();
                add_cors(parts.status, &mut parts.headers);
                let finish = self.finish(
                    &snapshot,
                    parts.status,
                    &mut ex,
                    log_request,
                    forwarding,
                    &request_id,
                    start,
                );
                // A 101 has no body; the tunnel has its own idle timeout.
                let read_timeout = (!switching).then_some(config.proxy_read_timeout);
                Response::from_parts(parts, Tracked::boxed(body, read_timeout, finish))
            }
            Err(error) => {
                if let Some(kind) = error.upstream_kind() {
                    self.metrics.upstream_error(kind);
                    tracing::debug!(%error, request_id = request_id.to_str().unwrap_or_default(), "upstream failure");
                }
                let preflight = matches!(error, ProxyError::Preflight { .. });
                let mut resp = error.response();
                resp.headers_mut()
                    .insert(X_REQUEST_ID.clone(), request_id.clone());
                if !preflight {
                    let status = resp.status();
                    add_cors(status, resp.headers_mut());
                }
                if let Some(hsts) = hsts {
                    resp.headers_mut()
                        .insert(header::STRICT_TRANSPORT_SECURITY, hsts);
                }
                let (parts, body) = resp.into_parts();
                let finish = self.finish(
                    &snapshot,
                    parts.status,
                    &mut ex,
                    log_request,
                    forwarding,
                    &request_id,
                    start,
                );
                Response::from_parts(parts, Tracked::boxed(body, None, finish))
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // two call sites in `handle`; a struct would only rename them
    fn finish(
        &self,
        snapshot: &Arc<Snapshot>,
        status: StatusCode,
        ex: &mut Exchange<'_>,
        log_request: Option<LogRequest>,
        forwarding: Forwarding,
        request_id: &HeaderValue,
        start: Instant,
    ) -> Finish {
        // `ex.source` and `ex.host_rule` borrow from `snapshot`, as the handle cache requires.
        let metrics =
            self.metrics
                .request_metrics(snapshot, ex.source, ex.host_rule, status.as_u16());
        let log = match (&self.access_log, log_request) {
            (Some(log), Some(req)) => {
                let upstream_addr = ex
                    .upstream_addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let entry = AccessLogEntry {
                    time: String::new(),
                    remote_addr: forwarding.client_ip,
                    request_id: request_id.to_str().unwrap_or_default().to_owned(),
                    method: req.method,
                    host: req.host,
                    path: req.path,
                    protocol: req.protocol,
                    status: status.as_u16(),
                    bytes_sent: 0,
                    request_time: 0.0,
                    upstream_addr,
                    upstream_status: ex.upstream_status,
                    upstream_response_time: ex.upstream_time.map(|d| round_millis(d.as_secs_f64())),
                    namespace: ex.source.map(|s| s.namespace.to_string()),
                    ingress: ex.source.map(|s| s.name.to_string()),
                    service: ex.service.map(|s| s.to_string()),
                    user_agent: req.user_agent,
                };
                Some((log.clone(), Box::new(entry)))
            }
            _ => None,
        };
        Finish {
            metrics,
            start,
            log,
            hold: ex.hold.take(),
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    async fn forward<'s>(
        &self,
        req: Request<Incoming>,
        client: &ClientInfo,
        forwarding: Forwarding,
        request_id: &HeaderValue,
        upgrade: bool,
        snapshot: &'s Snapshot,
        config: &DataplaneConfig,
        ex: &mut Exchange<'s>,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let (mut parts, body) = req.into_parts();

        // Host: the absolute-form authority wins over the Host header (RFC 9112 section 3.2.2).
        let host_value = match parts.uri.authority() {
            Some(authority) if authority.as_str().contains('@') => {
                return Err(ProxyError::BadRequest("userinfo in the request target"));
            }
            Some(authority) => Some(
                HeaderValue::from_str(authority.as_str())
                    .map_err(|_| ProxyError::BadRequest("invalid authority"))?,
            ),
            None => parts.headers.get(header::HOST).cloned(),
        };
        let host = match &host_value {
            Some(value) => value
                .to_str()
                .map_err(|_| ProxyError::BadRequest("invalid Host header"))?,
            // HTTP/1.0 may omit Host: routed to the catch-all, like nginx's default server.
            None if parts.version <= Version::HTTP_10 => "",
            None => return Err(ProxyError::BadRequest("missing Host header")),
        };
        if !host.is_empty() && !headers::valid_host(host) {
            return Err(ProxyError::BadRequest("invalid Host header"));
        }
        if client.tls {
            // Before routing: a connection opened under one host's TLS policy must not reach
            // another's by reusing it (HTTP/2 coalescing, or a forged Host).
            if snapshot.misdirected(client.server_name.as_deref(), host) {
                return Err(ProxyError::Misdirected);
            }
            ex.hsts = snapshot.has_tls(host);
        }

        let path = headers::normalize_path(parts.uri.path())?;

        if !snapshot.www_redirects.is_empty()
            && let Some(canonical) = snapshot.www_redirects.get(normalize_host(host).as_ref())
        {
            let scheme = if client.tls { "https" } else { "http" };
            let port = host
                .rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map_or("", |(_, p)| p);
            let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let location = if port.is_empty() {
                format!("{scheme}://{canonical}{target}")
            } else {
                format!("{scheme}://{canonical}:{port}{target}")
            };
            return Err(ProxyError::Redirect {
                location: HeaderValue::try_from(location)
                    .map_err(|_| ProxyError::BadRequest("invalid request target"))?,
                status: StatusCode::PERMANENT_REDIRECT,
            });
        }

        // auth-tls: server level, as nginx's ssl_verify_client, so before routing and for
        // every path of the host.
        let mut client_cert_headers = Vec::new();
        let client_auth = snapshot.client_auth(host);
        if let Some(auth) = client_auth {
            let ctx = RequestContext {
                scheme: if client.tls { "https" } else { "http" },
                host: &normalize_host(host),
                http_host: host,
                request_uri: parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
                uri: &path,
                args: parts.uri.query(),
                remote_addr: forwarding.client_ip,
                headers: &parts.headers,
                service_name: "",
                namespace: "",
                captures: None,
            };
            client_cert_headers = super::client_cert::check(Some(auth), client, &ctx)?;
        }

        let matched = snapshot.route(host, &path);
        match &matched {
            Some(matched) => {
                ex.source = Some(matched.source());
                ex.host_rule = &matched.host.host;
            }
            None => {
                ex.host_rule = snapshot.select_host(host).map_or("", |h| h.host.as_str());
            }
        }

        // Before the backend is known to exist: a TLS host redirects even where no rule
        // matches, as ingress-nginx's server block does. It redirects when
        // `$pass_access_scheme` is http: the connection's scheme, or a trusted
        // X-Forwarded-Proto (TLS terminated by the load balancer).
        let forwarded_https = forwarding.trusted
            && parts
                .headers
                .get(headers::X_FORWARDED_PROTO_NAME)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        let plain_http = !client.tls && !forwarded_https;
        if plain_http && snapshot.https_redirect(host, &path, ex.source) {
            let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let location =
                crate::tls::redirect_location(host, self.opts.external_https_port, target);
            let location = HeaderValue::try_from(location)
                .map_err(|_| ProxyError::BadRequest("invalid request target"))?;
            return Err(ProxyError::Redirect {
                location,
                status: StatusCode::PERMANENT_REDIRECT,
            });
        }

        let policy: Option<&'s IngressPolicy> =
            matched.as_ref().map(|m| &**m.policy()).filter(|p| !p.inert);
        let route = matched.as_ref().and_then(|m| m.route());
        let mut backend: &'s Arc<Backend> = match matched {
            Some(matched) => matched.backend(),
            None => snapshot
                .default_backend
                .as_ref()
                .ok_or(ProxyError::NoRoute)?,
        };
        if let Some(canary) = route.and_then(|r| r.canary.as_deref())
            && policy::canary::selects(canary, &parts.headers, |total| {
                policy::random::below(u64::from(total)) as u32 + 1
            })
        {
            backend = &canary.backend;
        }
        ex.service = Some(backend.service());
        let limits = Limits::new(policy, config);

        // The Ingress's policies, on the request as the client sent it.
        let mut upstream_path = None;
        let mut upstream_host = None;
        let mut auth_headers = Vec::new();
        let mut request_set = Vec::new();
        let mut hash_key = None;
        let mut upstream_tls = None;
        if let Some(policy) = policy {
            let annotations = &policy.annotations;
            let rewrite = annotations.rewrite.target.as_ref();
            let captures = match (rewrite, route.and_then(|r| r.regex.as_ref())) {
                (Some(target), Some(regex))
                    if target
                        .vars()
                        .any(|v| matches!(v, sluice_crds::annotations::Var::Capture(_))) =>
                {
                    regex.regex().captures(path.as_bytes())
                }
                _ => None,
            };
            let request_uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let ctx = RequestContext {
                scheme: if plain_http { "http" } else { "https" },
                host: &normalize_host(host),
                http_host: host,
                request_uri,
                uri: &path,
                args: parts.uri.query(),
                remote_addr: forwarding.client_ip,
                headers: &parts.headers,
                service_name: &backend.service().name,
                namespace: ex.source.map_or("", |s| &*s.namespace),
                captures,
            };
            if let Some(errors) = annotations.errors.as_ref().filter(|e| !e.codes.is_empty())
                && let Some(backend) = policy
                    .error_backend
                    .as_ref()
                    .or(snapshot.default_backend.as_ref())
            {
                ex.custom_errors = Some(CustomErrorRequest {
                    codes: &errors.codes,
                    backend,
                    path_and_query: parts
                        .uri
                        .path_and_query()
                        .cloned()
                        .unwrap_or_else(|| PathAndQuery::from_static("/")),
                    format: parts.headers.get(header::ACCEPT).cloned(),
                    service_port: match &backend_port(route) {
                        Some(port) => port.to_string(),
                        None => String::new(),
                    },
                });
            }
            // Before admission, so its 401, 403 and 503 answers carry them too.
            ex.custom_headers = &policy.custom_headers;
            if let Some(cors) = &annotations.cors {
                ex.cors = Some((cors, parts.headers.get(header::ORIGIN).cloned()));
            }
            let zone = ex.source.map(|s| s.to_string()).unwrap_or_default();
            let admitted = self
                .admit(
                    policy,
                    &parts,
                    &ctx,
                    forwarding.client_ip,
                    client.tls,
                    config,
                    &zone,
                )
                .await?;
            ex.hold = admitted.hold;
            auth_headers = admitted.auth_headers;
            if let Some(target) = rewrite {
                let mut rewritten = target
                    .expand(&ctx)
                    .map_err(|_| ProxyError::BadRequest("invalid request target"))?;
                // nginx's rewrite appends the original arguments unless the target has its own.
                if let (false, Some(query)) = (rewritten.contains('?'), parts.uri.query()) {
                    rewritten.push('?');
                    rewritten.push_str(query);
                }
                upstream_path = Some(
                    PathAndQuery::try_from(rewritten)
                        .map_err(|_| ProxyError::BadRequest("invalid request target"))?,
                );
            }
            if let Some(tls) = policy.upstream_tls.as_deref() {
                let name = tls
                    .server_name(&ctx)
                    .map_err(|e| ProxyError::PolicyDenied {
                        reason: format!("proxy-ssl-name: {e}"),
                    })?;
                upstream_tls = Some((tls, name));
            }
            if let Some(key) = &annotations.load_balancing.hash_by {
                hash_key = key.expand(&ctx).ok();
            }
            let snippet = &annotations.headers;
            if !snippet.is_empty() {
                // Expanded now, with the request as the client sent it, as nginx evaluates
                // variables; values that cannot be expanded are left out.
                for (name, template) in &snippet.request_set {
                    if let (Ok(name), Some(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        expand_header(template, &ctx),
                    ) {
                        request_set.push((name, value));
                    }
                }
                for header in &snippet.response_set {
                    if let Some(value) = expand_header(&header.value, &ctx) {
                        ex.response_set.push((header, value));
                    }
                }
                ex.response_hide = &snippet.response_hide;
            }
            if let Some(vhost) = &annotations.rewrite.upstream_vhost {
                let value = vhost
                    .expand(&ctx)
                    .map_err(|_| ProxyError::BadRequest("invalid Host header"))?;
                upstream_host = Some(
                    HeaderValue::try_from(value)
                        .map_err(|_| ProxyError::BadRequest("invalid Host header"))?,
                );
            }
        }

        let limit = limits.body_limit;
        if exceeds_limit(&body.size_hint(), limit) {
            return Err(ProxyError::BodyTooLarge {
                limit: limit.unwrap_or_default(),
            });
        }

        let facts = RequestFacts {
            forwarding,
            host: host_value.as_ref(),
            tls: client.tls,
            external_port: if client.tls {
                self.opts.external_https_port
            } else {
                self.opts.external_http_port
            },
            request_id,
            upgrade,
        };
        if parts.version == Version::HTTP_2 {
            // HTTP/2 may split Cookie into several fields; an HTTP/1.1 upstream needs one.
            headers::merge_cookies(&mut parts.headers);
        }
        headers::rewrite_request(&mut parts.headers, &facts);
        for (name, value) in auth_headers {
            parts.headers.insert(name, value);
        }
        if client_auth.is_some() {
            // The backend trusts these on a host with client auth: never the client's own.
            for name in [
                "ssl-client-cert",
                "ssl-client-verify",
                "ssl-client-subject-dn",
                "ssl-client-issuer-dn",
            ] {
                parts.headers.remove(name);
            }
        }
        for (name, value) in client_cert_headers {
            parts.headers.insert(name, value);
        }
        if let Some(policy) = policy {
            if let Some(prefix) = &policy.annotations.rewrite.x_forwarded_prefix
                && let Ok(value) = HeaderValue::from_str(prefix)
            {
                parts
                    .headers
                    .insert(http::HeaderName::from_static("x-forwarded-prefix"), value);
            }
            if let Some(host) = upstream_host {
                parts.headers.insert(header::HOST, host);
            }
            for pattern in &policy.annotations.headers.request_clear {
                super::policy::remove_matching(&mut parts.headers, pattern);
            }
            for (name, value) in request_set {
                parts.headers.insert(name, value);
            }
            // connection-proxy-header: ingress-nginx's `proxy_set_header Connection`; an
            // upgrade keeps its own.
            if let Some(tokens) = &policy.annotations.proxy.connection_header
                && !upgrade
                && let Ok(value) = HeaderValue::from_str(&tokens.join(", "))
            {
                parts.headers.insert(header::CONNECTION, value);
            }
        }

        // Forward the normalised path (what we matched on) with the query as sent, or what
        // rewrite-target made of it.
        let path_and_query = match upstream_path {
            Some(rewritten) => rewritten,
            None => match (&path, parts.uri.path_and_query()) {
                (Cow::Borrowed(_), Some(pq)) => pq.clone(),
                _ => {
                    let joined = match parts.uri.query() {
                        Some(query) => format!("{path}?{query}"),
                        None => path.clone().into_owned(),
                    };
                    PathAndQuery::try_from(joined)
                        .map_err(|_| ProxyError::BadRequest("invalid request target"))?
                }
            },
        };

        let targets = match &**backend {
            Backend::Service { endpoints, .. } => Targets::Endpoints(Candidates::select(endpoints)),
            Backend::ExternalName { host, port, .. } => {
                Targets::Resolved(resolve(host, *port, config.proxy_connect_timeout).await?)
            }
        };
        let targets = match (targets.len(), policy.and_then(|p| p.error_backend.as_ref())) {
            // ingress-nginx's `default-backend`: it answers while the Service has no endpoints.
            (0, Some(fallback)) => {
                backend = fallback;
                ex.service = Some(backend.service());
                Targets::Endpoints(Candidates::select(backend.endpoints()))
            }
            _ => targets,
        };
        if targets.len() == 0 {
            return Err(ProxyError::NoEndpoints);
        }
        let protocol = policy
            .and_then(|p| p.annotations.proxy.backend_protocol)
            .unwrap_or(BackendProtocol::Http);
        if matches!(protocol, BackendProtocol::Grpc | BackendProtocol::Grpcs) {
            // As nginx's grpc_pass: gRPC servers may insist on it, and it is hop-by-hop.
            headers_te_trailers(&mut parts.headers);
        }
        let tries = upstream::attempts(limits.next_upstream_tries, targets.len());
        let mut first = None;
        if let (Some(affinity), Targets::Endpoints(candidates)) = (
            policy.and_then(|p| p.annotations.affinity.as_ref()),
            &targets,
        ) {
            let endpoints = backend.endpoints();
            let cookie = affinity::cookie_value(&parts.headers, &affinity.cookie_name);
            if let Some(choice) = affinity::choose(affinity, cookie, endpoints) {
                let addr = endpoints.get(choice.index).map(|e| e.addr);
                first = (0..candidates.len()).find(|&i| candidates.nth(i) == addr);
                if let Some(value) = choice.set_cookie {
                    let route_path = route.map_or("/", |r| r.path.as_str());
                    ex.set_cookie = Some(affinity::set_cookie_header(
                        affinity, &value, route_path, client.tls,
                    ));
                }
            }
        }
        let balancing = policy.map(|p| &p.annotations.load_balancing);
        let ewma = balancing.and_then(|b| b.algorithm) == Some(LoadBalance::Ewma);
        if let (None, Targets::Endpoints(candidates)) = (first, &targets) {
            if let Some(key) = &hash_key {
                // upstream-hash-by: rendezvous hashing, so few keys move when endpoints do.
                let endpoints = backend.endpoints();
                let addr = policy::hash::pick(key.as_bytes(), endpoints)
                    .and_then(|i| endpoints.get(i))
                    .map(|e| e.addr);
                first = (0..candidates.len()).find(|&i| candidates.nth(i) == addr);
            } else if ewma {
                first = Some(self.ewma.pick(
                    candidates.len(),
                    |i| candidates.nth(i),
                    |n| policy::random::below(n as u64) as usize,
                ));
            }
        }
        let first = first.unwrap_or_else(|| upstream::next_round_robin(backend.service()));

        let mut body = (!body.is_end_stream()).then_some(body);
        let progress = body.as_ref().map(|_| Arc::new(Progress::default()));
        let mut headers = parts.headers;
        let mut last_failure = None;
        for attempt in 0..tries {
            let Some(addr) = targets.nth((first + attempt) % targets.len()) else {
                break;
            };
            if self.access_log.is_some() {
                ex.upstream_addrs.push(addr);
            }
            let last = attempt + 1 == tries;
            let (request_body, reclaim) = match body.take() {
                // Reclaimable unless this is the last try: then nothing would retry with it.
                Some(incoming) => RequestBody::new(incoming, limit, progress.clone(), !last),
                None => (RequestBody::empty(), None),
            };
            let mut upstream_req = Request::new(request_body);
            *upstream_req.method_mut() = parts.method.clone();
            *upstream_req.uri_mut() = upstream_uri(protocol, addr, &path_and_query)?;
            *upstream_req.version_mut() = match policy
                .and_then(|p| p.annotations.proxy.http_version)
            {
                // proxy-http-version: 1.0 (no upgrades, no chunked request bodies upstream).
                Some(HttpVersion::Http10) if protocol == BackendProtocol::Http => Version::HTTP_10,
                _ => protocol.version(),
            };
            // Only the last attempt may consume the headers; earlier ones need a copy in case
            // they fail to connect.
            *upstream_req.headers_mut() = if last {
                std::mem::take(&mut headers)
            } else {
                headers.clone()
            };

            let attempt_start = Instant::now();
            let in_flight = ewma.then(|| self.ewma.start(addr));
            let tls = upstream_tls.as_ref().map(|(config, name)| (*config, name));
            match self
                .send(
                    addr,
                    upstream_req,
                    progress.as_deref(),
                    &limits,
                    protocol,
                    tls,
                )
                .await
            {
                Ok(resp) => {
                    ex.upstream_status = Some(resp.status().as_u16());
                    ex.upstream_time = Some(attempt_start.elapsed());
                    if let Some(in_flight) = in_flight {
                        in_flight.observe(attempt_start.elapsed());
                    }
                    ex.upstream = Some(addr);
                    // session-cookie-change-on-failure: a client pinned to an endpoint that
                    // failed is pinned to the one that answered.
                    if attempt > 0
                        && let Some(affinity) = policy
                            .and_then(|p| p.annotations.affinity.as_ref())
                            .filter(|a| {
                                a.change_on_failure
                                    && a.mode == sluice_crds::annotations::AffinityMode::Persistent
                            })
                    {
                        let route_path = route.map_or("/", |r| r.path.as_str());
                        ex.set_cookie = Some(affinity::set_cookie_header(
                            affinity,
                            &affinity::endpoint_cookie(addr),
                            route_path,
                            client.tls,
                        ));
                    }
                    return Ok(resp);
                }
                Err(SendError::Connect { kind, timed_out }) => {
                    self.metrics.upstream_error(kind);
                    last_failure = Some((addr, timed_out));
                    if let Some(mut reclaim) = reclaim {
                        match reclaim.try_recv() {
                            Ok(incoming) => body = Some(incoming),
                            // The body was read after all, so it cannot be replayed.
                            Err(_) => break,
                        }
                    }
                }
                Err(SendError::Timeout) => {
                    return Err(ProxyError::UpstreamTimeout { upstream: addr });
                }
                Err(SendError::BodyTooLarge { limit }) => {
                    return Err(ProxyError::BodyTooLarge { limit });
                }
                Err(SendError::ClientBody(reason)) => return Err(ProxyError::ClientBody(reason)),
                Err(SendError::Upstream(reason)) => {
                    return Err(ProxyError::Upstream {
                        upstream: addr,
                        reason,
                    });
                }
            }
        }
        let (last, timed_out) = last_failure.unwrap_or((client.local, false));
        Err(ProxyError::ConnectFailed {
            attempts: tries as u32,
            last,
            timed_out,
        })
    }

    /// One attempt. Waits for response headers: the first window covers the connect and the
    /// read timeout; after that, while the request body is still moving, each window of
    /// `proxy-send-timeout` (body still streaming) or `proxy-read-timeout` (body done) that saw
    /// progress earns another one. A request whose body and response both stall gets a 504.
    async fn send(
        &self,
        addr: SocketAddr,
        req: Request<RequestBody>,
        progress: Option<&Progress>,
        limits: &Limits,
        protocol: BackendProtocol,
        tls: Option<(&UpstreamTlsConfig, &ServerName<'static>)>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        // Plain HTTP goes through our pool, the other protocols through hyper-util's clients;
        // either way one future whose error says whether the connect failed.
        type Pending<'a> = std::pin::Pin<
            Box<
                dyn std::future::Future<Output = Result<Response<UpstreamBody>, SendError>>
                    + Send
                    + 'a,
            >,
        >;
        let legacy = |future: hyper_util::client::legacy::ResponseFuture| -> Pending<'_> {
            Box::pin(async move {
                match future.await {
                    Ok(resp) => Ok(resp.map(UpstreamBody::from)),
                    Err(error) => Err(classify(&error, error.is_connect())),
                }
            })
        };
        let http;
        let mut pending = match (protocol, tls) {
            (BackendProtocol::Http, _) => {
                // Not boxed: the common case pays for no allocation here.
                http = async {
                    self.pool
                        .send(addr, req)
                        .await
                        .map_err(|error| classify(&error, error.is_connect()))
                };
                Either::Left(std::pin::pin!(http))
            }
            (BackendProtocol::Grpc, _) => Either::Right(legacy(self.backends.h2c.request(req))),
            (BackendProtocol::Https, Some((config, name))) => {
                Either::Right(legacy(self.backends.request_with(config, name, false, req)))
            }
            (BackendProtocol::Grpcs, Some((config, name))) => {
                Either::Right(legacy(self.backends.request_with(config, name, true, req)))
            }
            (BackendProtocol::Https, None) => {
                Either::Right(legacy(self.backends.https.request(req)))
            }
            (BackendProtocol::Grpcs, None) => {
                Either::Right(legacy(self.backends.grpcs.request(req)))
            }
        };
        let mut window = limits.connect_timeout + limits.read_timeout;
        let mut seen = progress.map(Progress::frames);
        loop {
            match tokio::time::timeout(window, &mut pending).await {
                Ok(result) => return result,
                Err(_elapsed) => {
                    let Some(progress) = progress else {
                        return Err(SendError::Timeout);
                    };
                    let now = progress.frames();
                    if Some(now) == seen {
                        return Err(SendError::Timeout);
                    }
                    seen = Some(now);
                    window = if progress.done() {
                        limits.read_timeout
                    } else {
                        limits.send_timeout
                    };
                }
            }
        }
    }
}

fn expand_header(template: &Template, ctx: &RequestContext<'_>) -> Option<HeaderValue> {
    HeaderValue::try_from(template.expand(ctx).ok()?).ok()
}

/// The Service port of the matched route, as the X-Service-Port header names it.
fn backend_port(route: Option<&crate::model::Route>) -> Option<crate::model::PortRef> {
    route.map(|r| r.backend.service().port.clone())
}

impl Proxy {
    /// Asks the error backend for the page of `status` (ingress-nginx's custom error pages):
    /// a GET of the original URI with X-Code, X-Format, X-Original-URI, X-Namespace,
    /// X-Ingress-Name, X-Service-Name, X-Service-Port and X-Request-ID.
    async fn custom_error(
        &self,
        errors: &CustomErrorRequest<'_>,
        status: StatusCode,
        ex: &Exchange<'_>,
        request_id: &HeaderValue,
        config: &DataplaneConfig,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let candidates = Candidates::select(errors.backend.endpoints());
        if candidates.len() == 0 {
            return Err(ProxyError::NoEndpoints);
        }
        let first = upstream::next_round_robin(errors.backend.service()) % candidates.len();
        let addr = candidates.nth(first).ok_or(ProxyError::NoEndpoints)?;
        let mut req = Request::new(RequestBody::empty());
        *req.uri_mut() = upstream_uri(BackendProtocol::Http, addr, &errors.path_and_query)?;
        let headers = req.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set("x-code", status.as_str());
        set("x-original-uri", errors.path_and_query.as_str());
        if let Some(source) = ex.source {
            set("x-namespace", &source.namespace);
            set("x-ingress-name", &source.name);
        }
        if let Some(service) = ex.service {
            set("x-service-name", &service.name);
        }
        set("x-service-port", &errors.service_port);
        headers.insert(HeaderName::from_static("x-request-id"), request_id.clone());
        if let Some(format) = &errors.format {
            headers.insert(HeaderName::from_static("x-format"), format.clone());
        }
        let limits = Limits::new(None, config);
        match self
            .send(addr, req, None, &limits, BackendProtocol::Http, None)
            .await
        {
            Ok(resp) => Ok(resp),
            Err(_) => Err(ProxyError::Upstream {
                upstream: addr,
                reason: "custom error backend failed".into(),
            }),
        }
    }
}

/// What `backend-protocol` means on the wire.
trait Wire {
    fn scheme(&self) -> &'static str;
    fn version(&self) -> Version;
}

impl Wire for BackendProtocol {
    fn scheme(&self) -> &'static str {
        match self {
            BackendProtocol::Http | BackendProtocol::Grpc => "http",
            BackendProtocol::Https | BackendProtocol::Grpcs => "https",
        }
    }

    fn version(&self) -> Version {
        match self {
            BackendProtocol::Http | BackendProtocol::Https => Version::HTTP_11,
            BackendProtocol::Grpc | BackendProtocol::Grpcs => Version::HTTP_2,
        }
    }
}

fn headers_te_trailers(headers: &mut http::HeaderMap) {
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
}

/// Sorts an upstream client error into what the proxy does next.
fn classify(error: &(dyn std::error::Error + 'static), connect: bool) -> SendError {
    if connect {
        return SendError::Connect {
            kind: upstream::connect_failure_kind(error),
            timed_out: upstream::find_in_chain::<ConnectTimeout>(error).is_some(),
        };
    }
    match upstream::find_in_chain::<RequestBodyError>(error) {
        Some(RequestBodyError::TooLarge { limit }) => SendError::BodyTooLarge { limit: *limit },
        Some(RequestBodyError::Client(e)) => SendError::ClientBody(e.to_string()),
        None => {
            let reason = match std::error::Error::source(error) {
                Some(source) => format!("{error}: {source}"),
                None => error.to_string(),
            };
            SendError::Upstream(reason)
        }
    }
}

/// The request target upstream. Plain HTTP (our pool, which is keyed by the endpoint): the
/// origin form, `/path?query`, as it goes on the wire. The other protocols (hyper-util's
/// clients, which pool by URI authority): `<scheme>://<addr><path?query>`.
fn upstream_uri(
    protocol: BackendProtocol,
    addr: SocketAddr,
    path_and_query: &PathAndQuery,
) -> Result<Uri, ProxyError> {
    let invalid = || ProxyError::BadRequest("invalid request target");
    let mut parts = http::uri::Parts::default();
    if protocol != BackendProtocol::Http {
        parts.scheme = Some(match protocol.scheme() {
            "https" => http::uri::Scheme::HTTPS,
            _ => http::uri::Scheme::HTTP,
        });
        // Cached per endpoint: formatting the address per attempt showed in the profile.
        parts.authority = Some(upstream::endpoint_authority(addr).ok_or_else(invalid)?);
    }
    parts.path_and_query = Some(path_and_query.clone());
    Uri::from_parts(parts).map_err(|_| invalid())
}

/// Resolves an ExternalName backend at request time (IP literals need no DNS). Bounded by the
/// connect timeout, since a hung resolver would otherwise hang the request.
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, ProxyError> {
    let failed = |reason: String| ProxyError::Resolve {
        host: host.to_owned(),
        reason,
    };
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(failed("no addresses".into()))
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed("timed out".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limit_table() {
        let cases = [
            (SizeHint::with_exact(0), Some(10), false),
            (SizeHint::with_exact(10), Some(10), false),
            (SizeHint::with_exact(11), Some(10), true),
            (SizeHint::with_exact(u64::MAX), None, false),
            // Chunked: unknown up front, checked while streaming.
            (SizeHint::new(), Some(10), false),
        ];
        for (hint, limit, want) in cases {
            assert_eq!(exceeds_limit(&hint, limit), want, "{hint:?} {limit:?}");
        }
    }

    #[test]
    fn protocol_names() {
        assert_eq!(protocol(Version::HTTP_11), "HTTP/1.1");
        assert_eq!(protocol(Version::HTTP_2), "HTTP/2.0");
    }

    #[test]
    fn upstream_uri_forms() {
        let pq = PathAndQuery::from_static("/a?b=c");
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let cases = [
            (BackendProtocol::Http, "127.0.0.1:8080", "/a?b=c"),
            (
                BackendProtocol::Grpc,
                "127.0.0.1:8080",
                "http://127.0.0.1:8080/a?b=c",
            ),
            (BackendProtocol::Https, "[::1]:80", "https://[::1]:80/a?b=c"),
            (
                BackendProtocol::Grpcs,
                "10.0.0.1:443",
                "https://10.0.0.1:443/a?b=c",
            ),
        ];
        for (protocol, endpoint, want) in cases {
            let uri = upstream_uri(protocol, addr(endpoint), &pq).expect("uri");
            assert_eq!(uri.to_string(), want, "{protocol:?}");
        }
    }

    #[tokio::test]
    async fn resolve_ip_literals_without_dns() {
        let addrs = resolve("127.0.0.1", 8080, Duration::from_secs(1))
            .await
            .expect("literal");
        assert_eq!(
            addrs,
            ["127.0.0.1:8080".parse::<SocketAddr>().expect("addr")]
        );
    }
}
