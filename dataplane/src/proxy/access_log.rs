//! The access log: one JSON object per line per request, written off the request path.
//!
//! Requests hand a finished [`AccessLogEntry`] to a bounded channel with `try_send`; a dedicated
//! thread serialises and writes them (blocking writes to a slow stdout pipe must never stall a
//! runtime worker). When the writer falls behind, lines are dropped and counted in
//! `sluice_access_log_dropped_total` rather than slowing traffic down.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;

use super::metrics::ProxyMetrics;

/// Lines buffered before new ones are dropped.
pub const ACCESS_LOG_CAPACITY: usize = 8192;

/// One access-log line. Field by field:
///
/// * `time`: when the response finished (RFC 3339, UTC, milliseconds), like nginx's
///   `$time_iso8601`.
/// * `remote_addr`: the client address after PROXY protocol and trusted `X-Forwarded-For`
///   processing (what the upstream got as `X-Real-IP`).
/// * `request_id`: the `X-Request-ID` sent upstream and returned to the client.
/// * `method`, `host` (the `Host` header or absolute-form authority, as sent), `path` (the
///   request path as sent, *without* the query string, which often carries tokens), `protocol`
///   (`HTTP/1.1`, `HTTP/2.0`, ...).
/// * `status`: the status sent to the client; `bytes_sent`: response body bytes sent.
/// * `request_time`: seconds from the request's arrival to the last byte sent (or the client
///   going away).
/// * `upstream_addr`: every upstream address tried, comma-separated in order (nginx's
///   `$upstream_addr`); empty when none was tried.
/// * `upstream_status`: the upstream's status; `upstream_response_time`: seconds until its
///   response headers. Both absent when no upstream answered.
/// * `namespace`, `ingress`: the Ingress whose rule matched; `service`: the backend Service
///   (`namespace/name:port`). Absent for the built-in 404; `service` alone for the set's default
///   backend.
/// * `user_agent`: the `User-Agent` header, when sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccessLogEntry {
    pub time: String,
    pub remote_addr: IpAddr,
    pub request_id: String,
    pub method: String,
    pub host: String,
    pub path: String,
    pub protocol: &'static str,
    pub status: u16,
    pub bytes_sent: u64,
    pub request_time: f64,
    pub upstream_addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_response_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The sending half, cloned into each finished request.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<AccessLogEntry>,
    metrics: Arc<ProxyMetrics>,
}

impl AccessLog {
    /// Starts the writer thread writing to `out`. The thread ends when every `AccessLog` clone
    /// is dropped, after writing what was queued.
    pub fn spawn<W: Write + Send + 'static>(
        out: W,
        capacity: usize,
        metrics: Arc<ProxyMetrics>,
    ) -> std::io::Result<(AccessLog, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(rx, out))?;
        Ok((AccessLog { tx, metrics }, handle))
    }

    /// Starts the writer on stdout.
    pub fn stdout(metrics: Arc<ProxyMetrics>) -> std::io::Result<AccessLog> {
        Self::spawn(std::io::stdout(), ACCESS_LOG_CAPACITY, metrics).map(|(log, _)| log)
    }

    /// Queues a line, or drops and counts it when the writer is behind.
    pub(crate) fn send(&self, entry: AccessLogEntry) {
        if self.tx.try_send(entry).is_err() {
            self.metrics.access_log_dropped.inc();
        }
    }
}

fn write_lines<W: Write>(mut rx: mpsc::Receiver<AccessLogEntry>, out: W) {
    let mut out = std::io::BufWriter::new(out);
    while let Some(entry) = rx.blocking_recv() {
        let mut next = Some(entry);
        // Write everything already queued, then flush once: one syscall per burst.
        while let Some(entry) = next {
            if serde_json::to_writer(&mut out, &entry).is_ok() {
                let _ = out.write_all(b"\n");
            }
            next = rx.try_recv().ok();
        }
        // Nowhere to report a failing stdout; the next line tries again.
        let _ = out.flush();
    }
    let _ = out.flush();
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-03-01T12:34:56.789Z`, without a date crate.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn rfc3339_table() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_772_368_496_789, "2026-03-01T12:34:56.789Z"),
            (4_102_444_799_000, "2099-12-31T23:59:59.000Z"),
        ];
        for (millis, want) in cases {
            let t = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
            assert_eq!(rfc3339(t), want);
        }
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn entry(status: u16) -> AccessLogEntry {
        AccessLogEntry {
            time: "t".into(),
            remote_addr: "192.0.2.1".parse().expect("ip"),
            request_id: "r".into(),
            method: "GET".into(),
            host: "h".into(),
            path: "/\"quoted\"\n".into(),
            protocol: "HTTP/1.1",
            status,
            bytes_sent: 5,
            request_time: 0.5,
            upstream_addr: String::new(),
            upstream_status: None,
            upstream_response_time: None,
            namespace: None,
            ingress: None,
            service: None,
            user_agent: None,
        }
    }

    #[test]
    fn lines_are_json_and_drops_are_counted() {
        let out = Shared::default();
        let metrics = Arc::new(ProxyMetrics::unregistered());
        let (log, handle) = AccessLog::spawn(out.clone(), 4, metrics.clone()).expect("spawn");
        for status in [200, 404] {
            log.send(entry(status));
        }
        drop(log);
        handle.join().expect("writer");
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["status"], 404);
        assert_eq!(lines[0]["path"], "/\"quoted\"\n", "escaped, one line");
        assert!(lines[0].get("upstream_status").is_none());

        // A writer that never drains: the channel fills and further lines are dropped.
        let (tx, _rx) = mpsc::channel(1);
        let stuck = AccessLog {
            tx,
            metrics: metrics.clone(),
        };
        for _ in 0..3 {
            stuck.send(entry(200));
        }
        assert_eq!(metrics.access_log_dropped.get(), 2);
    }
}
