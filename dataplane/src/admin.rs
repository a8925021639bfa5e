//! The admin port (10254): `/healthz`, `/readyz` and `/metrics`, for the kubelet and
//! Prometheus. Tiny HTTP/1.1 server; nothing here touches the proxy's hot path.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::generator::GeneratorStats;
use crate::shared::Shared;

/// The content type of `prometheus_client`'s text encoding.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves the admin endpoints for the life of the process (see [`serve_until`]). The admin port
/// keeps answering while the proxy drains, so probes see `/readyz` fail.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, registry: Arc<Registry>) {
    serve_until(listener, shared, registry, std::future::pending()).await;
}

/// Serves the admin endpoints until `shutdown` completes:
///
/// * `GET /healthz`: 200 while the process runs.
/// * `GET /readyz`: 200 only after the first full sync and before draining
///   ([`Shared::ready`]), else 503, so the load balancer stops sending before listeners close.
/// * `GET /metrics`: `registry` in the Prometheus/OpenMetrics text format.
///
/// Keep it serving through the proxy's drain so probes see the 503.
pub async fn serve_until<F>(
    listener: TcpListener,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    shutdown: F,
) where
    F: Future<Output = ()>,
{
    serve_small(listener, shutdown, move |req| {
        admin_response(&req, &shared, &registry)
    })
    .await;
}

/// Adds the config generator's metrics to `registry`, read from `stats` at scrape time:
///
/// * `sluice_snapshot_swaps_total`: snapshots published;
/// * `sluice_snapshot_age_seconds`: time since the last publish (absent before the first);
/// * `sluice_objects{kind}`: objects of each watched kind the generator holds.
pub fn with_generator_metrics(mut registry: Registry, stats: Arc<GeneratorStats>) -> Registry {
    registry.register_collector(Box::new(GeneratorCollector(stats)));
    registry
}

struct GeneratorCollector(Arc<GeneratorStats>);

impl std::fmt::Debug for GeneratorCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GeneratorCollector")
    }
}

impl Collector for GeneratorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.0;
        let swaps = ConstCounter::new(stats.swaps.load(Ordering::Relaxed));
        swaps.encode(encoder.encode_descriptor(
            "snapshot_swaps",
            "Routing snapshots published",
            None,
            swaps.metric_type(),
        )?)?;

        let last_ms = stats.last_swap_unix_ms.load(Ordering::Relaxed);
        if last_ms > 0 {
            let now_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let age = ConstGauge::new(now_ms.saturating_sub(last_ms) as f64 / 1000.0);
            age.encode(encoder.encode_descriptor(
                "snapshot_age_seconds",
                "Seconds since the routing snapshot in use was published",
                None,
                age.metric_type(),
            )?)?;
        }

        // Copied out so the generator's lock is not held while encoding.
        let objects: Vec<(&'static str, usize)> = match stats.objects.lock() {
            Ok(objects) => objects.iter().map(|(k, v)| (*k, *v)).collect(),
            Err(poisoned) => poisoned.get_ref().iter().map(|(k, v)| (*k, *v)).collect(),
        };
        let mut family = encoder.encode_descriptor(
            "objects",
            "Objects the config generator holds, by kind",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (kind, count) in objects {
            let labels = [("kind", kind)];
            ConstGauge::new(count as i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn admin_response(
    req: &Request<Incoming>,
    shared: &Shared,
    registry: &Registry,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if shared.ready() => text(StatusCode::OK, "ok\n"),
        "/readyz" if shared.draining() => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not synced yet\n"),
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => {
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(METRICS_CONTENT_TYPE),
                    );
                    resp
                }
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "encoding metrics failed\n",
                ),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A minimal HTTP/1.1 server for the admin and debug ports: synchronous handler, graceful stop
/// (in-flight requests get up to five seconds).
pub(crate) async fn serve_small<F, H>(listener: TcpListener, shutdown: F, handler: H)
where
    F: Future<Output = ()>,
    H: Fn(Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use sluice_crds::fleet::FleetSettings;

    async fn get(addr: std::net::SocketAddr, path: &str) -> (StatusCode, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(header::HOST, "admin")
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn admin_endpoints() {
        let shared = Shared::new(FleetSettings::default());
        let mut registry = Registry::with_prefix("sluice");
        let metrics = crate::proxy::ProxyMetrics::new(&mut registry);
        metrics.connections_open.inc();
        let stats = Arc::new(GeneratorStats::default());
        stats.swaps.store(3, Ordering::Relaxed);
        stats.last_swap_unix_ms.store(1, Ordering::Relaxed);
        stats.objects.lock().expect("lock").insert("Ingress", 2);
        let registry = with_generator_metrics(registry, stats);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(
            listener,
            shared.clone(),
            Arc::new(registry),
            async {
                let _ = stopped.await;
            },
        ));

        assert_eq!(get(addr, "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(addr, "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "not synced yet\n".into())
        );
        shared.mark_synced();
        assert_eq!(get(addr, "/readyz").await.0, StatusCode::OK);
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("sluice_http_connections_open 1"), "{body}");
        assert!(body.contains("sluice_snapshot_swaps_total 3"), "{body}");
        assert!(body.contains("sluice_snapshot_age_seconds "), "{body}");
        assert!(
            body.contains(r#"sluice_objects{kind="Ingress"} 2"#),
            "{body}"
        );
        shared.start_draining();
        assert_eq!(
            get(addr, "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
        );
        assert_eq!(get(addr, "/nope").await.0, StatusCode::NOT_FOUND);

        let _ = stop.send(());
        server.await.expect("admin server stops");
    }
}
