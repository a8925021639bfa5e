//! Typed proxy failures and the synthetic responses they become (linkerd2-proxy style): every
//! way a request can fail without an upstream response is one variant, with one status code, a
//! short text body, and a metrics label.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
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
    /// A plain-HTTP request for a host with TLS: a 308 to its HTTPS address.
    #[error("redirect to {location:?}")]
    Redirect { location: HeaderValue },
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
            ProxyError::Redirect { .. } => StatusCode::PERMANENT_REDIRECT,
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
            ProxyError::Redirect { .. } => "308 Permanent Redirect\n",
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
            | ProxyError::Redirect { .. } => None,
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
        if let ProxyError::Redirect { location } = self {
            headers.insert(header::LOCATION, location.clone());
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
                },
                308,
                "308",
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
            if let ProxyError::Redirect { location } = &error {
                assert_eq!(response.headers()[header::LOCATION], location);
            }
        }
    }
}
