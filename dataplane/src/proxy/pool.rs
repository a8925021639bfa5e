//! The HTTP/1.1 upstream pool: keep-alive connections to plain-HTTP endpoints, per endpoint
//! address, most recently used first (as nginx's `keepalive` cache).
//!
//! Replaces hyper-util's legacy client for `backend-protocol: HTTP`, which per request boxed
//! its future, raced a pool checkout against a lazy connect, hashed a (scheme, authority) key
//! with SipHash and spawned a task to put the connection back once it was ready. Here a
//! connection goes back when its response body ends (from the body's own poll), with no task
//! per request; each connection still runs hyper's HTTP/1 client in a task of its own.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::BoxError;
use super::body::RequestBody;
use super::upstream::{ConnectTimeout, FastHasher, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_ENDPOINT};
use crate::shared::Shared;

/// How often idle connections past [`POOL_IDLE_TIMEOUT`] are closed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// TCP keepalive probes on upstream connections start after this much silence.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

type Sender = SendRequest<RequestBody>;

/// A failed exchange with an upstream endpoint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// No connection: refused, timed out ([`ConnectTimeout`]) or the handshake failed. Nothing
    /// of the request was sent, so another endpoint may be tried.
    #[error("connect to {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: BoxError,
    },
    /// The connection failed while sending the request or reading the response head.
    #[error("upstream connection")]
    Http(#[source] hyper::Error),
}

impl PoolError {
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, PoolError::Connect { .. })
    }
}

/// Keep-alive connections to plain-HTTP endpoints. Cheap to share: one per proxy.
pub(crate) struct Http1Pool {
    shared: Arc<Shared>,
    /// Ready connections per endpoint, oldest first.
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>, BuildHasherDefault<FastHasher>>>,
    sweeper: AtomicBool,
    idle_timeout: Duration,
    max_idle_per_endpoint: usize,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl std::fmt::Debug for Http1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Pool")
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Http1Pool {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Self> {
        Self::with_limits(shared, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_ENDPOINT)
    }

    pub(crate) fn with_limits(
        shared: Arc<Shared>,
        idle_timeout: Duration,
        max_idle_per_endpoint: usize,
    ) -> Arc<Self> {
        Arc::new(Http1Pool {
            shared,
            idle: Mutex::new(HashMap::default()),
            sweeper: AtomicBool::new(false),
            idle_timeout,
            max_idle_per_endpoint,
        })
    }

    /// Sends `req` (its URI in origin form, `/path?query`) to `addr` on an idle connection, or
    /// a new one. A pooled connection that turns out closed before the request went out is
    /// skipped; once a request has gone out, its failure is returned (it may not be idempotent).
    pub(crate) async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut req: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, PoolError> {
        if !req.headers().contains_key(header::HOST) {
            // An HTTP/1.1 upstream requires a Host; the client's (HTTP/1.0) sent none.
            if let Some(host) = host_value(addr) {
                req.headers_mut().insert(header::HOST, host);
            }
        }
        while let Some(mut sender) = self.checkout(addr) {
            if sender.ready().await.is_err() {
                continue; // closed while idle (the upstream's keep-alive timeout)
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(addr, sender, resp)),
                Err(mut error) => match error.take_message() {
                    // Not written: the connection closed just now; try the next.
                    Some(unsent) => req = unsent,
                    None => return Err(PoolError::Http(error.into_error())),
                },
            }
        }
        let mut sender = self.connect(addr).await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok(self.wrap(addr, sender, resp)),
            Err(error) => Err(PoolError::Http(error)),
        }
    }

    /// A new connection to `addr`, its HTTP/1 client running in a task of its own.
    async fn connect(&self, addr: SocketAddr) -> Result<Sender, PoolError> {
        let failed = |source: BoxError| PoolError::Connect { addr, source };
        // Read on every connect: the connect timeout is live config.
        let timeout = self.shared.config.load().proxy_connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(failed(Box::new(error))),
            Err(_) => return Err(failed(Box::new(ConnectTimeout(timeout)))),
        };
        // Small requests and responses must not wait for Nagle; keepalive finds dead peers.
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(Box::new(e)))?;
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::trace!(%error, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// The response, with its connection going back to the pool when the body ends.
    fn wrap(
        self: &Arc<Self>,
        addr: SocketAddr,
        sender: Sender,
        resp: Response<Incoming>,
    ) -> Response<UpstreamBody> {
        // A 101 hands the connection to the tunnel: it is never reused.
        let reusable = resp.status() != StatusCode::SWITCHING_PROTOCOLS;
        let mut give_back = reusable.then(|| GiveBack {
            pool: self.clone(),
            addr,
            sender,
        });
        let (parts, inner) = resp.into_parts();
        if inner.is_end_stream()
            && let Some(give_back) = give_back.take()
        {
            give_back.done();
        }
        Response::from_parts(parts, UpstreamBody { inner, give_back })
    }

    /// The most recently used idle connection to `addr`, if any still young enough.
    fn checkout(&self, addr: SocketAddr) -> Option<Sender> {
        let now = Instant::now();
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(&addr)?;
        while let Some(entry) = list.pop() {
            if now.duration_since(entry.since) < self.idle_timeout && !entry.sender.is_closed() {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Puts a ready connection back. Over the per-endpoint limit, the oldest is closed.
    fn checkin(self: &Arc<Self>, addr: SocketAddr, sender: Sender) {
        if !self.sweeper.swap(true, Ordering::Relaxed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(sweep(Arc::downgrade(self)));
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let list = idle.entry(addr).or_default();
        if list.len() >= self.max_idle_per_endpoint {
            list.remove(0);
        }
        list.push(Idle {
            sender,
            since: Instant::now(),
        });
    }

    /// Closes idle connections past the idle timeout (and closed ones); returns how many are
    /// left.
    fn sweep_once(&self, now: Instant) -> usize {
        let Ok(mut idle) = self.idle.lock() else {
            return 0;
        };
        idle.retain(|_, list| {
            list.retain(|e| {
                now.duration_since(e.since) < self.idle_timeout && !e.sender.is_closed()
            });
            !list.is_empty()
        });
        idle.values().map(Vec::len).sum()
    }

    /// Idle connections held, for tests.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .map_or(0, |idle| idle.values().map(Vec::len).sum())
    }
}

/// Closes idle connections past the timeout every [`SWEEP_EVERY`] while the pool lives.
async fn sweep(pool: Weak<Http1Pool>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.sweep_once(Instant::now());
    }
}

/// `Host` for a request that had none: the endpoint, without the default port.
fn host_value(addr: SocketAddr) -> Option<HeaderValue> {
    let authority = super::upstream::endpoint_authority(addr)?;
    if addr.port() == 80 {
        HeaderValue::from_str(authority.host()).ok()
    } else {
        HeaderValue::from_str(authority.as_str()).ok()
    }
}

/// A connection to return once its response has been read to the end.
#[derive(Debug)]
struct GiveBack {
    pool: Arc<Http1Pool>,
    addr: SocketAddr,
    sender: Sender,
}

impl GiveBack {
    fn done(self) {
        let GiveBack {
            pool,
            addr,
            mut sender,
        } = self;
        if sender.is_ready() {
            pool.checkin(addr, sender);
            return;
        }
        if sender.is_closed() {
            return;
        }
        // Its task has not yet taken up the next request (or is still sending this request's
        // body): put it back once it does, so no request waits behind another's upload.
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                pool.checkin(addr, sender);
            }
        });
    }
}

/// An upstream response body; returns its connection to the pool at the end. Dropped before
/// the end (the client went away), the connection closes with it.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    inner: Incoming,
    give_back: Option<GiveBack>,
}

impl From<Incoming> for UpstreamBody {
    /// A body from a client that pools by itself (h2c, TLS).
    fn from(inner: Incoming) -> Self {
        UpstreamBody {
            inner,
            give_back: None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(_)) if !this.inner.is_end_stream() => {}
            Some(Err(_)) => this.give_back = None,
            _ => {
                if let Some(give_back) = this.give_back.take() {
                    give_back.done();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Read to the end but never polled past it (a consumer that trusts is_end_stream).
        if self.inner.is_end_stream()
            && let Some(give_back) = self.give_back.take()
        {
            give_back.done();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use sluice_crds::fleet::FleetSettings;

    /// A keep-alive HTTP/1.1 backend on loopback that answers every request with headers
    /// `x-conn: <connection number>` and `x-host: <Host header>` and a body of `size` bytes. With
    /// `close_after`, it closes each connection that long after its first response (as an
    /// upstream whose keep-alive timeout passed), without saying so.
    async fn backend(size: usize, close_after: Option<Duration>) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 1024];
                        let Ok(read) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..read]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        buf.drain(..end + 4);
                        let host = head
                            .lines()
                            .find_map(|l| l.strip_prefix("host: "))
                            .unwrap_or("-")
                            .to_owned();
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nx-conn: {n}\r\nx-host: {host}\r\ncontent-length: {size}\r\n\r\n{}",
                            ".".repeat(size)
                        );
                        if socket.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                        if let Some(delay) = close_after {
                            tokio::time::sleep(delay).await;
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn pool(idle_timeout: Duration, max_idle: usize) -> Arc<Http1Pool> {
        Http1Pool::with_limits(
            Shared::new(FleetSettings::default()),
            idle_timeout,
            max_idle,
        )
    }

    fn get(host: Option<&str>) -> Request<RequestBody> {
        let mut req = Request::new(RequestBody::empty());
        *req.uri_mut() = http::Uri::from_static("/x");
        if let Some(host) = host {
            req.headers_mut()
                .insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        }
        req
    }

    /// `<x-conn> <x-host>`, once the body has been read.
    async fn text(resp: Response<UpstreamBody>) -> String {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let text = format!("{} {}", header("x-conn"), header("x-host"));
        // As hyper's server reads a body: frames until is_end_stream, never past it.
        let mut body = resp.into_body();
        while !body.is_end_stream() {
            body.frame().await.expect("a frame").expect("data");
        }
        text
    }

    /// Lets connection tasks take up their next request (and the pool see them ready).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_is_reused() {
        let (addr, accepted) = backend(2048, None).await;
        let pool = pool(Duration::from_secs(60), 8);
        for _ in 0..3 {
            let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
            assert_eq!(text(resp).await, "1 a.test");
            settle().await;
            assert_eq!(pool.idle_count(), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let (addr, accepted) = backend(256 * 1024, None).await;
        let pool = pool(Duration::from_secs(60), 8);
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        let mut body = resp.into_body();
        let first = body.frame().await.expect("a frame").expect("data");
        assert!(first.is_data());
        drop(body);
        settle().await;
        assert_eq!(pool.idle_count(), 0, "a half-read connection is not pooled");
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        assert!(text(resp).await.starts_with("2 "), "a new connection");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_skipped() {
        let (addr, accepted) = backend(16, Some(Duration::from_millis(30))).await;
        let pool = pool(Duration::from_secs(60), 8);
        for want in ["1 a.test", "2 a.test", "3 a.test"] {
            let resp = pool
                .send(addr, get(Some("a.test")))
                .await
                .expect("no error");
            assert_eq!(text(resp).await, want);
            settle().await;
            assert_eq!(
                pool.idle_count(),
                1,
                "pooled while the upstream kept it open"
            );
            // The backend closes it meanwhile; the next request must not fail on it.
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_response_without_a_body_returns_its_connection_at_once() {
        let (addr, accepted) = backend(0, None).await;
        let pool = pool(Duration::from_secs(60), 8);
        for _ in 0..3 {
            // Not read: a consumer that trusts is_end_stream never polls an empty body.
            let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
            assert_eq!(resp.headers()["x-conn"], "1");
            std::mem::forget(resp);
            settle().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn idle_connections_close_after_the_timeout() {
        let (addr, accepted) = backend(16, None).await;
        let pool = pool(Duration::from_millis(100), 8);
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        text(resp).await;
        settle().await;
        assert_eq!(pool.sweep_once(Instant::now()), 1, "young: kept");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            pool.sweep_once(Instant::now()),
            0,
            "past the timeout: closed"
        );
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        assert_eq!(text(resp).await, "2 a.test");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn at_most_the_limit_stays_idle_per_endpoint() {
        let (addr, accepted) = backend(16, None).await;
        let pool = pool(Duration::from_secs(60), 2);
        // Five at once: five connections, of which two stay.
        let mut responses = Vec::new();
        for _ in 0..5 {
            responses.push(pool.send(addr, get(Some("a.test"))).await.expect("send"));
        }
        for resp in responses {
            text(resp).await;
        }
        settle().await;
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
        assert_eq!(pool.idle_count(), 2);
    }

    #[tokio::test]
    async fn a_request_without_host_gets_the_endpoint() {
        let (addr, _) = backend(16, None).await;
        let pool = pool(Duration::from_secs(60), 8);
        let resp = pool.send(addr, get(None)).await.expect("send");
        assert_eq!(text(resp).await, format!("1 {addr}"));
        let resp = pool.send(addr, get(Some("kept.test"))).await.expect("send");
        assert_eq!(
            text(resp).await,
            "1 kept.test",
            "a client's Host is never replaced"
        );
    }

    #[tokio::test]
    async fn a_refused_connect_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let pool = pool(Duration::from_secs(60), 8);
        let error = pool.send(addr, get(None)).await.expect_err("refused");
        assert!(error.is_connect());
        assert_eq!(
            super::super::upstream::connect_failure_kind(&error),
            "connect_refused"
        );
    }

    #[test]
    fn host_values() {
        let cases = [
            ("10.0.0.1:80", "10.0.0.1"),
            ("10.0.0.1:8080", "10.0.0.1:8080"),
            ("[::1]:80", "[::1]"),
            ("[::1]:8443", "[::1]:8443"),
        ];
        for (addr, want) in cases {
            let value = host_value(addr.parse().expect("addr")).expect("value");
            assert_eq!(value, want, "{addr}");
        }
    }
}
