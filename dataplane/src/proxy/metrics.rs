//! The proxy's Prometheus metrics, registered into a registry the caller owns so the config
//! generator's snapshot metrics land on the same `/metrics` page. Names below assume the
//! registry was made with `Registry::with_prefix("sluice")`, as `main` does.
//!
//! | metric | labels |
//! | --- | --- |
//! | `sluice_http_requests_total` | `namespace`, `ingress`, `host`, `status` |
//! | `sluice_http_request_duration_seconds` (histogram, to the last response byte) | `namespace`, `ingress` |
//! | `sluice_upstream_errors_total` | `kind`, see below |
//! | `sluice_http_connections_open` | |
//! | `sluice_http_connections_parked` (idle HTTP/1 keep-alive, no buffers held) | |
//! | `sluice_upstream_connections_idle` (idle plain-HTTP upstream connections, as of the pool's last sweep, once a second) | `state`: `live` (with hyper, ready) or `parked` (a bare socket) |
//! | `sluice_access_log_dropped_total` | |
//! | `sluice_tls_connections_total` | `result`, see below |
//!
//! `host` is the host *rule* that matched (`foo.com`, `*.foo.com`, empty for the catch-all or no
//! match), never the request's Host header: label values must not be chosen by clients, or
//! anyone could grow the series without bound. `namespace`/`ingress` are empty when no
//! Ingress answered (built-in 404, the set's default backend).
//!
//! Upstream error kinds: per failed connect *attempt* `connect_refused`, `connect_timeout`,
//! `connect_error`; per *request* answered with an error `connect_failed` (every attempt
//! failed), `no_endpoints`, `resolve` (ExternalName), `timeout` (no response headers in time),
//! `upstream_error` (reset or bad response).
//!
//! TLS connection results: `terminated` (handshake done), `passthrough` (forwarded), and the
//! failures `client_hello` (not TLS, malformed, too large), `plain_http` (an HTTP request on the
//! HTTPS port), `timeout`, `handshake` (rustls refused it), `passthrough_failed` (no backend
//! could be reached).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::upstream::FastHasher;
use crate::model::{IngressRef, Snapshot};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub namespace: String,
    pub ingress: String,
    pub host: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngressLabels {
    pub namespace: String,
    pub ingress: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamIdleLabels {
    pub state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsResultLabels {
    pub result: &'static str,
}

type HistogramFamily = Family<IngressLabels, Histogram, fn() -> Histogram>;

/// The proxy's metrics. Build once with [`ProxyMetrics::new`] and share behind an `Arc`.
#[derive(Debug)]
pub struct ProxyMetrics {
    /// Unique per instance (never reused), so the per-thread handle cache of one instance is
    /// never served to another (tests build many).
    id: u64,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    pub(crate) connections_open: Gauge,
    pub(crate) connections_parked: Gauge,
    pub(crate) access_log_dropped: Counter,
    tls_connections: Family<TlsResultLabels, Counter>,
    upstream_idle: Family<UpstreamIdleLabels, Gauge>,
}

fn duration_histogram() -> Histogram {
    // 5 ms to ~82 s: covers fast APIs and the 60 s default read timeout.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl ProxyMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let metrics = ProxyMetrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            upstream_errors: Family::default(),
            connections_open: Gauge::default(),
            connections_parked: Gauge::default(),
            access_log_dropped: Counter::default(),
            tls_connections: Family::default(),
            upstream_idle: Family::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by Ingress, host rule and status code",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to sending the last response byte",
            metrics.duration.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failures to get a response from an upstream, by kind",
            metrics.upstream_errors.clone(),
        );
        registry.register(
            "http_connections_open",
            "Client connections currently open on the HTTP listeners",
            metrics.connections_open.clone(),
        );
        registry.register(
            "http_connections_parked",
            "Idle HTTP/1 keep-alive connections parked between requests, holding no buffers",
            metrics.connections_parked.clone(),
        );
        registry.register(
            "access_log_dropped",
            "Access log lines dropped because the writer fell behind",
            metrics.access_log_dropped.clone(),
        );
        registry.register(
            "tls_connections",
            "Connections on the HTTPS listener, by how their TLS start ended",
            metrics.tls_connections.clone(),
        );
        registry.register(
            "upstream_connections_idle",
            "Idle plain-HTTP upstream connections in the pool, live or parked as bare sockets",
            metrics.upstream_idle.clone(),
        );
        metrics
    }

    /// Metrics registered nowhere, for tests and tools.
    pub fn unregistered() -> Self {
        Self::new(&mut Registry::default())
    }

    /// The counter and histogram one finished request is recorded into.
    ///
    /// Resolving them through the families costs label `String`s, two SipHash lookups and a
    /// lock per request (it showed in the profile), so resolved handles are cached per thread,
    /// keyed by where the labels live in `snapshot` (the matched Ingress, the host rule) and the
    /// status. Handles share their atomics with the family, so `/metrics` sees every increment.
    /// The cache is emptied when the snapshot changes: its pointers are only meaningful in the
    /// snapshot they came from, which the cache's `Weak` keeps from being reallocated.
    pub(crate) fn request_metrics(
        &self,
        snapshot: &Arc<Snapshot>,
        source: Option<&IngressRef>,
        host_rule: &str,
        status: u16,
    ) -> Arc<RequestMetrics> {
        // Bounds the cache when statuses vary wildly; a reset only costs lookups.
        const MAX_ENTRIES: usize = 4096;
        thread_local! {
            static CACHE: RefCell<HandleCache> = RefCell::new(HandleCache::default());
        }
        let key = HandleKey {
            metrics: self.id,
            source: source.map_or(0, |s| s as *const IngressRef as usize),
            host: host_rule.as_ptr() as usize,
            host_len: host_rule.len(),
            status,
        };
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if !std::ptr::eq(cache.snapshot.as_ptr(), Arc::as_ptr(snapshot))
                || cache.handles.len() >= MAX_ENTRIES
            {
                cache.snapshot = Arc::downgrade(snapshot);
                cache.handles.clear();
            }
            cache
                .handles
                .entry(key)
                .or_insert_with(|| Arc::new(self.resolve(source, host_rule, status)))
                .clone()
        })
    }

    fn resolve(&self, source: Option<&IngressRef>, host_rule: &str, status: u16) -> RequestMetrics {
        let (namespace, ingress) = source.map_or((String::new(), String::new()), |s| {
            (s.namespace.to_string(), s.name.to_string())
        });
        let labels = RequestLabels {
            namespace: namespace.clone(),
            ingress: ingress.clone(),
            host: host_rule.to_owned(),
            status,
        };
        RequestMetrics {
            requests: self.requests.get_or_create_owned(&labels),
            duration: self
                .duration
                .get_or_create_owned(&IngressLabels { namespace, ingress }),
        }
    }

    pub(crate) fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&UpstreamErrorLabels { kind })
            .inc();
    }

    /// The gauges of idle upstream connections the pool sets: (live, parked).
    pub(crate) fn upstream_idle_gauges(&self) -> (Gauge, Gauge) {
        let gauge = |state| {
            self.upstream_idle
                .get_or_create(&UpstreamIdleLabels { state })
                .clone()
        };
        (gauge("live"), gauge("parked"))
    }

    pub(crate) fn tls_connection(&self, result: &'static str) {
        self.tls_connections
            .get_or_create(&TlsResultLabels { result })
            .inc();
    }

    /// The TLS connection counter of one result.
    pub fn tls_connections_total(&self, result: &'static str) -> u64 {
        self.tls_connections
            .get_or_create(&TlsResultLabels { result })
            .get()
    }

    /// The request counter for one label set (for tests and the lead's assertions).
    pub fn requests_total(&self, labels: &RequestLabels) -> u64 {
        self.requests.get_or_create(labels).get()
    }

    /// The upstream error counter of one kind.
    pub fn upstream_errors_total(&self, kind: &'static str) -> u64 {
        self.upstream_errors
            .get_or_create(&UpstreamErrorLabels { kind })
            .get()
    }
}

/// The metrics of one (Ingress, host rule, status), resolved once; see
/// [`ProxyMetrics::request_metrics`].
#[derive(Debug)]
pub(crate) struct RequestMetrics {
    requests: Counter,
    duration: Histogram,
}

impl RequestMetrics {
    pub(crate) fn record(&self, seconds: f64) {
        self.requests.inc();
        self.duration.observe(seconds);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HandleKey {
    metrics: u64,
    source: usize,
    host: usize,
    host_len: usize,
    status: u16,
}

#[derive(Default)]
struct HandleCache {
    /// The snapshot the keys' pointers point into.
    snapshot: Weak<Snapshot>,
    handles: HashMap<HandleKey, Arc<RequestMetrics>, BuildHasherDefault<FastHasher>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_with_their_names() {
        let mut registry = Registry::with_prefix("sluice");
        let metrics = ProxyMetrics::new(&mut registry);
        let source = IngressRef {
            namespace: "team".into(),
            name: "web".into(),
        };
        let snapshot = Arc::new(Snapshot::default());
        let handles = metrics.request_metrics(&snapshot, Some(&source), "*.foo.com", 200);
        handles.record(0.01);
        // The second request of the same route and status reuses the handles.
        let again = metrics.request_metrics(&snapshot, Some(&source), "*.foo.com", 200);
        assert!(Arc::ptr_eq(&handles, &again));
        metrics.upstream_error("connect_refused");
        let (live, parked) = metrics.upstream_idle_gauges();
        live.set(3);
        parked.set(2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains(
            r#"sluice_http_requests_total{namespace="team",ingress="web",host="*.foo.com",status="200"} 1"#
        ), "{text}");
        assert!(
            text.contains("sluice_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains(r#"sluice_upstream_errors_total{kind="connect_refused"} 1"#),
            "{text}"
        );
        for line in [
            r#"sluice_upstream_connections_idle{state="live"} 3"#,
            r#"sluice_upstream_connections_idle{state="parked"} 2"#,
        ] {
            assert!(text.contains(line), "{text}");
        }
    }
}
