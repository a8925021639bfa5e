//! The debug port: `GET /snapshot` returns the routing snapshot in use as pretty JSON (hosts,
//! paths, backends and their endpoints, the Ingress each route came from) — what
//! `cat /etc/nginx/nginx.conf` was for ingress-nginx users.
//!
//! Loopback only: [`serve`] refuses a listener that is not bound to a loopback address, so the
//! dump (internal endpoint addresses) is reachable from inside the pod
//! (`kubectl exec ... sluice-dataplane snapshot`) and never from the network. [`bind`] binds
//! 127.0.0.1 for callers that only have a port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::admin::{serve_small, text};
use crate::shared::Shared;

/// Binds `127.0.0.1:port` (0 picks a free port).
pub async fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await
}

/// Serves `GET /snapshot` on `listener` for the life of the process. Returns at once, serving
/// nothing, if `listener` is not on a loopback address.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    match listener.local_addr() {
        Ok(addr) if addr.ip().is_loopback() => {}
        other => {
            tracing::error!(addr = ?other, "debug endpoint refused: it must listen on loopback only");
            return;
        }
    }
    serve_small(listener, std::future::pending(), move |req| {
        debug_response(&req, &shared)
    })
    .await;
}

fn debug_response(req: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if req.uri().path() != "/snapshot" {
        return text(StatusCode::NOT_FOUND, "not found; try GET /snapshot\n");
    }
    let snapshot = shared.snapshot.load();
    let json = serde_json::to_value(&**snapshot).and_then(|v| serde_json::to_vec_pretty(&v));
    match json {
        Ok(mut body) => {
            body.push(b'\n');
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "serializing the snapshot failed\n",
        ),
    }
}

/// Fetches `GET /snapshot` from a data plane's debug endpoint (for the
/// `sluice-dataplane snapshot` command).
pub async fn fetch_snapshot(addr: SocketAddr) -> anyhow::Result<serde_json::Value> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get("/snapshot")
        .header(header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!(
            "debug endpoint answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, Endpoint, PortRef, ServiceRef, Snapshot};
    use sluice_crds::fleet::FleetSettings;

    #[tokio::test]
    async fn snapshot_dump_on_loopback() {
        let shared = Shared::new(FleetSettings::default());
        let snapshot = Snapshot {
            generation: 7,
            default_backend: Some(Arc::new(Backend::Service {
                service: ServiceRef {
                    namespace: "ns".into(),
                    name: "fallback".into(),
                    port: PortRef::Number(8080),
                },
                endpoints: Arc::from(vec![Endpoint {
                    addr: "127.0.0.1:9".parse().expect("addr"),
                    ready: true,
                    serving: true,
                    terminating: false,
                }]),
            })),
            ..Snapshot::default()
        };
        shared.snapshot.store(Arc::new(snapshot));
        let listener = bind(0).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        assert!(addr.ip().is_loopback());
        let task = tokio::spawn(serve(listener, shared.clone()));

        let json = fetch_snapshot(addr).await.expect("fetch");
        assert_eq!(json["generation"], 7);
        assert_eq!(json["default_backend"]["service"]["name"], "fallback");
        assert_eq!(
            json["default_backend"]["endpoints"][0]["addr"],
            "127.0.0.1:9"
        );
        task.abort();
    }
}
