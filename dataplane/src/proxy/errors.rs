//! Typed proxy failures and the synthetic responses they become (linkerd2-proxy style): every
//! way a request can fail without an upstream response is one variant, with one status code, a
//! short text body, and a metrics label.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use super::headers::PathError;

/// Why the proxy answered a request itself.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No rule matched and the set has no default backend: ingress-nginx's default backend.
    #[error("no route")]
    NoRoute,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("bad request path: {0}")]
    BadPath(#[from] PathError),
    /// `Content-Length` or the streamed body is over `proxy-body-size`.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// The backend Service has no ready (or serving) endpoint.
    #[error("no endpoints available")]
    NoEndpoints,
    /// An ExternalName backend's host did not resolve to any address.
    #[error("could not resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    /// Every connect attempt failed; `timed_out` when the last one hit the connect timeout
    /// (nginx answers 504 then, 502 for refused or unreachable).
    #[error("could not connect to an upstream ({attempts} attempts, last {last})")]
    ConnectFailed {
        attempts: u32,
        last: SocketAddr,
        timed_out: bool,
    },
    /// The upstream accepted the request but sent no response headers within the read (or,
    /// while the body was still being sent, the send) timeout.
    #[error("upstream {upstream} timed out")]
    UpstreamTimeout { upstream: SocketAddr },
    /// The upstream connection failed after the request started (reset, closed early,
    /// malformed response).
    #[error("upstream {upstream} failed: {reason}")]
    Upstream {
        upstream: SocketAddr,
        reason: String,
    },
    /// The client's request body failed while being forwarded (the client went away).
    #[error("client request body failed: {0}")]
    ClientBody(String),
    /// A request on a TLS connection for a host under another TLS policy than the server name
    /// the connection was opened for (see `Snapshot::misdirected`).
    #[error("misdirected request")]
    Misdirected,
    /// A redirect: plain HTTP to HTTPS (308), or an Ingress's `permanent-redirect`,
    /// `temporal-redirect`, `app-root` or `auth-signin`.
    #[error("{status} redirect to {location:?}")]
    Redirect {
        location: HeaderValue,
        status: StatusCode,
    },
    /// A CORS preflight (any OPTIONS on an `enable-cors` Ingress), answered here with 204.
    #[error("CORS preflight")]
    Preflight { headers: HeaderMap },
    /// The client address is refused by the Ingress's allow or deny list.
    #[error("client address not allowed")]
    Forbidden,
    /// Over the Ingress's `limit-rps`, `limit-rpm` or `limit-connections`; the status is the
    /// set's `limitReqStatusCode` (503 by default, as ingress-nginx).
    #[error("rate limited")]
    RateLimited { status: StatusCode },
    /// Missing or wrong credentials (basic auth, or the external auth service said 401).
    #[error("unauthorized")]
    Unauthorized { challenge: Option<HeaderValue> },
    /// The external auth service refused the request (403).
    #[error("forbidden by the auth service")]
    AuthForbidden,
    /// The external auth service could not be asked, or answered something other than 2xx,
    /// 401 or 403: the request is refused (500), never passed through.
    #[error("external auth failed: {reason}")]
    AuthFailed { reason: String },
    /// `auth-tls-verify-client`: no certificate, or one that did not verify; nginx's 400 pages.
    #[error("client certificate refused")]
    ClientCertificate { body: &'static str },
    /// The Ingress is not served: an annotation that fails closed was invalid, or its
    /// credentials could not be read (the Event says which).
    #[error("Ingress denied: {reason}")]
    PolicyDenied { reason: String },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::BadRequest(_) | ProxyError::BadPath(_) | ProxyError::ClientBody(_) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::NoEndpoints => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Resolve { .. } | ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::ConnectFailed { timed_out, .. } => {
                if *timed_out {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                }
            }
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            ProxyError::Redirect { status, .. } => *status,
            ProxyError::Preflight { .. } => StatusCode::NO_CONTENT,
            ProxyError::Forbidden | ProxyError::AuthForbidden => StatusCode::FORBIDDEN,
            ProxyError::RateLimited { status } => *status,
            ProxyError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ProxyError::AuthFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::PolicyDenied { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ClientCertificate { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The response body: short and fixed, never echoing request data or internal addresses.
    pub fn body(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => "default backend - 404\n",
            ProxyError::BadRequest(_) | ProxyError::BadPath(_) | ProxyError::ClientBody(_) => {
                "400 Bad Request\n"
            }
            ProxyError::BodyTooLarge { .. } => "413 Request Entity Too Large\n",
            ProxyError::NoEndpoints => "503 Service Unavailable: no endpoints available\n",
            ProxyError::Resolve { .. } | ProxyError::Upstream { .. } => "502 Bad Gateway\n",
            ProxyError::ConnectFailed { timed_out, .. } => {
                if *timed_out {
                    "504 Gateway Timeout\n"
                } else {
                    "502 Bad Gateway\n"
                }
            }
            ProxyError::UpstreamTimeout { .. } => "504 Gateway Timeout\n",
            ProxyError::Misdirected => "421 Misdirected Request\n",
            ProxyError::Redirect { .. } => "Redirecting\n",
            ProxyError::Preflight { .. } => "",
            ProxyError::Forbidden | ProxyError::AuthForbidden => "403 Forbidden\n",
            ProxyError::RateLimited { .. } => "Too many requests\n",
            ProxyError::Unauthorized { .. } => "401 Authorization Required\n",
            ProxyError::AuthFailed { .. } => "500 Internal Server Error\n",
            ProxyError::PolicyDenied { .. } => "503 Service Unavailable\n",
            ProxyError::ClientCertificate { body } => body,
        }
    }

    /// The `kind` label of `sluice_upstream_errors_total`, `None` for client-side failures.
    pub fn upstream_kind(&self) -> Option<&'static str> {
        match self {
            ProxyError::NoRoute
            | ProxyError::BadRequest(_)
            | ProxyError::BadPath(_)
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::ClientBody(_)
            | ProxyError::Misdirected
            | ProxyError::Redirect { .. }
            | ProxyError::Preflight { .. }
            | ProxyError::Forbidden
            | ProxyError::RateLimited { .. }
            | ProxyError::Unauthorized { .. }
            | ProxyError::AuthForbidden
            | ProxyError::PolicyDenied { .. }
            | ProxyError::ClientCertificate { .. } => None,
            ProxyError::AuthFailed { .. } => Some("auth_failed"),
            ProxyError::NoEndpoints => Some("no_endpoints"),
            ProxyError::Resolve { .. } => Some("resolve"),
            ProxyError::ConnectFailed { .. } => Some("connect_failed"),
            ProxyError::UpstreamTimeout { .. } => Some("timeout"),
            ProxyError::Upstream { .. } => Some("upstream_error"),
        }
    }

    /// The synthetic response. Errors after which the connection's state is unknown (a body
    /// left unread) close the connection, as nginx does for 400 and 413.
    pub fn response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from_static(self.body().as_bytes())));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if matches!(
            self,
            ProxyError::BadRequest(_) | ProxyError::BadPath(_) | ProxyError::BodyTooLarge { .. }
        ) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        match self {
            ProxyError::Redirect { location, .. } => {
                headers.insert(header::LOCATION, location.clone());
            }
            ProxyError::Unauthorized {
                challenge: Some(challenge),
            } => {
                headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
            }
            ProxyError::Preflight { headers: extra } => {
                headers.remove(header::CONTENT_TYPE);
                for (name, value) in extra {
                    headers.insert(name, value.clone());
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_mapping_table() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let cases: Vec<(ProxyError, u16, &str, Option<&str>)> = vec![
            (ProxyError::NoRoute, 404, "default backend - 404", None),
            (ProxyError::BadRequest("no host"), 400, "400", None),
            (ProxyError::BadPath(PathError::AboveRoot), 400, "400", None),
            (ProxyError::BodyTooLarge { limit: 1 }, 413, "413", None),
            (
                ProxyError::NoEndpoints,
                503,
                "no endpoints",
                Some("no_endpoints"),
            ),
            (
                ProxyError::Resolve {
                    host: "x".into(),
                    reason: "nx".into(),
                },
                502,
                "502",
                Some("resolve"),
            ),
            (
                ProxyError::ConnectFailed {
                    attempts: 3,
                    last: addr,
                    timed_out: false,
                },
                502,
                "502",
                Some("connect_failed"),
            ),
            (
                ProxyError::ConnectFailed {
                    attempts: 1,
                    last: addr,
                    timed_out: true,
                },
                504,
                "504",
                Some("connect_failed"),
            ),
            (
                ProxyError::UpstreamTimeout { upstream: addr },
                504,
                "504",
                Some("timeout"),
            ),
            (
                ProxyError::Upstream {
                    upstream: addr,
                    reason: "reset".into(),
                },
                502,
                "502",
                Some("upstream_error"),
            ),
            (ProxyError::ClientBody("eof".into()), 400, "400", None),
            (
                ProxyError::Misdirected,
                421,
                "421 Misdirected Request",
                None,
            ),
            (
                ProxyError::Redirect {
                    location: HeaderValue::from_static("https://a.example/"),
                    status: StatusCode::PERMANENT_REDIRECT,
                },
                308,
                "Redirecting",
                None,
            ),
            (ProxyError::Forbidden, 403, "403", None),
            (
                ProxyError::RateLimited {
                    status: StatusCode::TOO_MANY_REQUESTS,
                },
                429,
                "Too many",
                None,
            ),
            (
                ProxyError::Unauthorized { challenge: None },
                401,
                "401",
                None,
            ),
            (ProxyError::AuthForbidden, 403, "403", None),
            (
                ProxyError::AuthFailed {
                    reason: "refused".into(),
                },
                500,
                "500",
                Some("auth_failed"),
            ),
            (
                ProxyError::PolicyDenied { reason: "x".into() },
                503,
                "503",
                None,
            ),
        ];
        for (error, status, body, kind) in cases {
            let response = error.response();
            assert_eq!(response.status().as_u16(), status, "{error}");
            assert!(error.body().contains(body), "{error}: {:?}", error.body());
            assert!(
                !error.body().contains("127.0.0.1"),
                "no internal address leaks"
            );
            assert_eq!(error.upstream_kind(), kind, "{error}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            if let ProxyError::Redirect { location, .. } = &error {
                assert_eq!(response.headers()[header::LOCATION], location);
            }
        }
    }
}
