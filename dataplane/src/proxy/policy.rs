//! Applying an Ingress's policies to one request, in the order of ingress-nginx's nginx phases:
//! redirects (rewrite phase: `app-root`, then `permanent-redirect` / `temporal-redirect`),
//! the CORS preflight (a `return 204` in the location), rate limits (preaccess), allow and
//! deny lists, basic auth and external auth (access), then the rewrite of what goes upstream.
//!
//! Variables in annotation values are typed [`Template`]s; [`RequestContext`] gives them their
//! values for this request and the template escapes them for their place.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};
use sluice_crds::annotations::{Cors, ExternalAuth, RequestVars, ResponseHeader, Template, Var};
use sluice_crds::dataplane_config::DataplaneConfig;

use super::Proxy;
use super::body::RequestBody;
use super::errors::ProxyError;
use crate::model::IngressPolicy;
use crate::policy::access::{self, Access};
use crate::policy::basic_auth::Outcome;
use crate::policy::{affinity, cors};

/// The values of the template variables for one request.
pub(super) struct RequestContext<'a> {
    pub scheme: &'static str,
    /// `$host`: lowercase, without port.
    pub host: &'a str,
    /// `$http_host`: as sent, port included.
    pub http_host: &'a str,
    /// `$request_uri`: path and query as sent.
    pub request_uri: &'a str,
    /// `$uri`: the normalised path.
    pub uri: &'a str,
    pub args: Option<&'a str>,
    pub remote_addr: IpAddr,
    pub headers: &'a HeaderMap,
    pub service_name: &'a str,
    pub namespace: &'a str,
    /// The capture groups of the matched path regex, for `rewrite-target`.
    pub captures: Option<regex::bytes::Captures<'a>>,
}

impl RequestVars for RequestContext<'_> {
    fn var(&self, var: &Var) -> Option<Cow<'_, str>> {
        Some(match var {
            Var::Scheme => Cow::Borrowed(self.scheme),
            Var::Host => Cow::Borrowed(self.host),
            Var::HttpHost => Cow::Borrowed(self.http_host),
            Var::RequestUri | Var::EscapedRequestUri => Cow::Borrowed(self.request_uri),
            Var::Uri => Cow::Borrowed(self.uri),
            Var::Args => Cow::Borrowed(self.args?),
            Var::RemoteAddr => Cow::Owned(self.remote_addr.to_string()),
            Var::Header(name) => Cow::Borrowed(self.headers.get(name.as_str())?.to_str().ok()?),
            Var::Cookie(name) => Cow::Borrowed(affinity::cookie_value(self.headers, name)?),
            Var::ServiceName => Cow::Borrowed(self.service_name),
            Var::Namespace => Cow::Borrowed(self.namespace),
            Var::Capture(n) => {
                let group = self.captures.as_ref()?.get(usize::from(*n))?;
                String::from_utf8_lossy(group.as_bytes())
            }
        })
    }
}

/// What the request policies decided that the rest of the request needs.
#[derive(Default)]
pub(super) struct Admitted {
    /// Headers from the external auth response, for the upstream request.
    pub auth_headers: Vec<(HeaderName, HeaderValue)>,
    /// Released when the response is done (`limit-connections`).
    pub hold: Option<Box<dyn Send + Sync>>,
}

/// Expands a redirect-like template into a `Location` value.
fn location(template: &Template, ctx: &RequestContext<'_>) -> Result<HeaderValue, ProxyError> {
    let url = template
        .expand(ctx)
        .map_err(|_| ProxyError::BadRequest("a redirect could not be built from this request"))?;
    HeaderValue::try_from(url)
        .map_err(|_| ProxyError::BadRequest("a redirect could not be built from this request"))
}

impl Proxy {
    /// Applies everything that may answer the request before it goes upstream. `Err` is the
    /// answer (a redirect, a preflight, a refusal); `Ok` lets it through.
    #[allow(clippy::too_many_arguments)] // one call site, each argument a different fact
    pub(super) async fn admit(
        &self,
        policy: &IngressPolicy,
        parts: &Parts,
        ctx: &RequestContext<'_>,
        client_ip: IpAddr,
        tls: bool,
        config: &DataplaneConfig,
        zone: &str,
    ) -> Result<Admitted, ProxyError> {
        if let Some(reason) = &policy.denied {
            return Err(ProxyError::PolicyDenied {
                reason: reason.clone(),
            });
        }
        let p = &policy.annotations;

        // Rewrite phase: the server's app-root, then the location's return.
        if let Some(root) = &p.redirect.app_root
            && ctx.uri == "/"
        {
            let target = format!("{}://{}{root}", ctx.scheme, ctx.http_host);
            let location = HeaderValue::try_from(target)
                .map_err(|_| ProxyError::BadRequest("invalid Host header"))?;
            return Err(ProxyError::Redirect {
                location,
                status: StatusCode::FOUND,
            });
        }
        if let Some(redirect) = p
            .redirect
            .permanent
            .as_ref()
            .or(p.redirect.temporal.as_ref())
        {
            return Err(ProxyError::Redirect {
                location: location(&redirect.url, ctx)?,
                status: StatusCode::from_u16(redirect.code).unwrap_or(StatusCode::FOUND),
            });
        }
        if let Some(cors) = &p.cors
            && let Some(headers) = cors::preflight(cors, &parts.method, &parts.headers)
        {
            return Err(ProxyError::Preflight { headers });
        }

        let mut admitted = Admitted::default();
        // Preaccess: limit_req and limit_conn.
        if let Some(limit) = &p.rate_limit {
            match self.limits.check(zone, limit, client_ip, Instant::now()) {
                Ok(guard) => admitted.hold = guard.map(|g| Box::new(g) as Box<dyn Send + Sync>),
                Err(_) => {
                    return Err(ProxyError::RateLimited {
                        status: StatusCode::from_u16(config.limit_req_status_code)
                            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    });
                }
            }
        }
        // Access: allow/deny, then auth.
        if let Some(lists) = &p.access
            && access::decide(lists, client_ip) == Access::Denied
        {
            return Err(ProxyError::Forbidden);
        }
        if let Some(auth) = &policy.basic_auth {
            let authorization = parts.headers.get(header::AUTHORIZATION);
            if let Outcome::Challenge(challenge) =
                auth.check(authorization, &parts.method, ctx.request_uri)
            {
                return Err(ProxyError::Unauthorized {
                    challenge: Some(challenge),
                });
            }
        }
        if let Some(external) = &p.external_auth {
            admitted.auth_headers = self
                .external_auth(external, parts, ctx, client_ip, tls, config)
                .await?;
        }
        Ok(admitted)
    }

    /// ingress-nginx's `auth_request`: the request's headers (no body) go to `auth-url`; 2xx
    /// lets the request through with `auth-response-headers` copied from the answer, 401 sends
    /// the client to `auth-signin` (or answers 401), 403 answers 403, anything else 500.
    async fn external_auth(
        &self,
        auth: &ExternalAuth,
        parts: &Parts,
        ctx: &RequestContext<'_>,
        client_ip: IpAddr,
        tls: bool,
        config: &DataplaneConfig,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ProxyError> {
        let failed = |reason: String| ProxyError::AuthFailed { reason };
        let url = auth
            .url
            .expand(ctx)
            .map_err(|e| failed(format!("auth-url: {e}")))?;
        let uri: Uri = url
            .parse()
            .map_err(|_| failed("auth-url is not a valid URI for this request".into()))?;
        let mut req = Request::new(RequestBody::empty());
        *req.method_mut() = Method::from_bytes(auth.method.as_bytes()).unwrap_or(Method::GET);
        *req.version_mut() = Version::HTTP_11;
        let mut headers = parts.headers.clone();
        super::headers::remove_hop_by_hop(&mut headers);
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        headers.remove(header::EXPECT);
        if let Some(authority) = uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(header::HOST, host);
        }
        let scheme = if tls { "https" } else { "http" };
        let original = format!("{scheme}://{}{}", ctx.http_host, ctx.request_uri);
        let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set(&mut headers, "x-original-url", &original);
        set(&mut headers, "x-original-method", parts.method.as_str());
        set(&mut headers, "x-sent-from", "sluice");
        set(&mut headers, "x-real-ip", &client_ip.to_string());
        set(&mut headers, "x-forwarded-for", &client_ip.to_string());
        set(&mut headers, "x-forwarded-host", ctx.http_host);
        set(&mut headers, "x-forwarded-proto", scheme);
        set(&mut headers, "x-auth-request-redirect", ctx.request_uri);
        *req.headers_mut() = headers;
        *req.uri_mut() = uri;

        let timeout = config.proxy_connect_timeout + config.proxy_read_timeout;
        let response = match tokio::time::timeout(timeout, self.auth_client.request(req)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(failed(format!("asking {url}: {error}"))),
            Err(_) => return Err(failed(format!("asking {url}: timed out after {timeout:?}"))),
        };
        let status = response.status();
        if status.is_success() {
            let mut copied = Vec::new();
            for name in &auth.response_headers {
                let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                    continue;
                };
                if let Some(value) = response.headers().get(&name) {
                    copied.push((name, value.clone()));
                }
            }
            return Ok(copied);
        }
        match status {
            StatusCode::UNAUTHORIZED => match &auth.signin {
                Some(signin) => Err(ProxyError::Redirect {
                    location: signin_location(signin, ctx, scheme)?,
                    status: StatusCode::FOUND,
                }),
                None => Err(ProxyError::Unauthorized {
                    challenge: response.headers().get(header::WWW_AUTHENTICATE).cloned(),
                }),
            },
            StatusCode::FORBIDDEN => Err(ProxyError::AuthForbidden),
            other => Err(failed(format!("{url} answered {other}"))),
        }
    }
}

/// `auth-signin` with ingress-nginx's `rd` parameter added when the URL has none: where to
/// come back to after signing in.
fn signin_location(
    signin: &Template,
    ctx: &RequestContext<'_>,
    scheme: &str,
) -> Result<HeaderValue, ProxyError> {
    let mut url = signin
        .expand(ctx)
        .map_err(|_| ProxyError::BadRequest("auth-signin could not be built from this request"))?;
    let has_rd = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|kv| kv.starts_with("rd=")));
    if !has_rd {
        let back = format!("{scheme}://{}{}", ctx.http_host, ctx.request_uri);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("rd=");
        url.push_str(&sluice_crds::annotations::template::escape_component(&back));
    }
    HeaderValue::try_from(url)
        .map_err(|_| ProxyError::BadRequest("auth-signin could not be built from this request"))
}

/// The CORS headers of a normal response.
pub(super) fn cors_response(cors: &Cors, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    cors::add_response_headers(cors, origin, headers);
}

/// Removes the headers `pattern` names (a lowercase name, or a prefix ending in `*`).
pub(super) fn remove_matching(headers: &mut HeaderMap, pattern: &str) {
    match pattern.strip_suffix('*') {
        None => {
            headers.remove(pattern);
        }
        Some(prefix) => {
            let names: Vec<HeaderName> = headers
                .keys()
                .filter(|n| n.as_str().starts_with(prefix))
                .cloned()
                .collect();
            for name in names {
                headers.remove(name);
            }
        }
    }
}

/// A snippet's response headers: removals first, then sets (`add_header` only on the
/// statuses nginx adds it to, unless `always`).
pub(super) fn response_headers(
    status: StatusCode,
    hide: &[String],
    set: &[(&ResponseHeader, HeaderValue)],
    headers: &mut HeaderMap,
) {
    for pattern in hide {
        remove_matching(headers, pattern);
    }
    for (header, value) in set {
        if !header.applies_to(status.as_u16()) {
            continue;
        }
        let Ok(name) = HeaderName::from_bytes(header.name.as_bytes()) else {
            continue;
        };
        if header.append {
            headers.append(name, value.clone());
        } else {
            headers.insert(name, value.clone());
        }
    }
}

/// Per-request timeouts and limits: the Ingress's `proxy-*` annotations over the set's values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub send_timeout: Duration,
    pub body_limit: Option<u64>,
    pub next_upstream_tries: u32,
}

impl Limits {
    pub(super) fn new(policy: Option<&IngressPolicy>, config: &DataplaneConfig) -> Limits {
        let set = Limits {
            connect_timeout: config.proxy_connect_timeout,
            read_timeout: config.proxy_read_timeout,
            send_timeout: config.proxy_send_timeout,
            body_limit: config.proxy_body_size.max_bytes(),
            next_upstream_tries: config.proxy_next_upstream_tries,
        };
        let Some(policy) = policy.filter(|p| !p.inert) else {
            return set;
        };
        let p = &policy.annotations.proxy;
        Limits {
            connect_timeout: p.connect_timeout.unwrap_or(set.connect_timeout),
            read_timeout: p.read_timeout.unwrap_or(set.read_timeout),
            send_timeout: p.send_timeout.unwrap_or(set.send_timeout),
            body_limit: p.body_size.map_or(set.body_limit, |b| b.max_bytes()),
            next_upstream_tries: p.next_upstream_tries.unwrap_or(set.next_upstream_tries),
        }
    }
}
