//! The HTTP/1.1 upstream pool: keep-alive connections to plain-HTTP endpoints, per endpoint
//! address, most recently used first (as nginx's `keepalive` cache).
//!
//! Replaces hyper-util's legacy client for `backend-protocol: HTTP`, which per request boxed
//! its future, raced a pool checkout against a lazy connect, hashed a (scheme, authority) key
//! with SipHash and spawned a task to put the connection back once it was ready. Here a
//! connection goes back when its response body ends (from the body's own poll), with no task
//! per request; each connection still runs hyper's HTTP/1 client in a task of its own.
//!
//! A connection idle for [`UPSTREAM_PARK_AFTER`] is *parked*: its hyper client ends and hands
//! the socket back, and the pool keeps the bare socket (no buffers, no task) until a request
//! wants it, which gets a fresh hyper client on it. hyper's client keeps its read buffer and
//! connection state for as long as it lives, about 27 KiB per idle connection; nginx's idle
//! upstream connections hold no buffers either.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpStream;

use super::BoxError;
use super::body::RequestBody;
use super::upstream::{ConnectTimeout, FastHasher, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_ENDPOINT};
use crate::shared::Shared;

/// How often idle connections are parked, and those past [`POOL_IDLE_TIMEOUT`] closed.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// A connection idle this long loses its hyper client and waits as a bare socket.
const UPSTREAM_PARK_AFTER: Duration = Duration::from_secs(1);
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
    /// Ready connections per endpoint, least recently used first.
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>, BuildHasherDefault<FastHasher>>>,
    sweeper: AtomicBool,
    limits: PoolLimits,
    /// Idle (live, parked) connections as of the last sweep, for `/metrics`: set once a
    /// second by the sweep rather than per request, which would put two atomic updates and
    /// the count on every checkout.
    idle_gauges: (Gauge, Gauge),
}

/// How long and how many connections the pool keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolLimits {
    /// Idle this long, a connection is closed.
    pub idle_timeout: Duration,
    /// Idle this long, a connection is parked.
    pub park_after: Duration,
    /// Idle connections kept per endpoint; beyond it the least recently used is closed.
    pub max_idle_per_endpoint: usize,
}

/// A connection with its hyper client running.
#[derive(Debug)]
struct Conn {
    sender: Sender,
    /// Set (to when it went idle) before the pool drops the sender to park the connection: its
    /// task then gives the socket back. None: never pooled (an upgrade's connection).
    park: Option<Arc<OnceLock<Instant>>>,
}

enum Idle {
    Live { conn: Conn, since: Instant },
    Parked { stream: TcpStream, since: Instant },
}

impl Idle {
    fn since(&self) -> Instant {
        match self {
            Idle::Live { since, .. } | Idle::Parked { since, .. } => *since,
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Idle::Live { conn, .. } => conn.sender.is_closed(),
            // Looked at when taken (see `quiet`).
            Idle::Parked { .. } => false,
        }
    }
}

/// What a checkout found.
enum Checked {
    Live(Conn),
    Parked(TcpStream),
}

impl std::fmt::Debug for Http1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Pool")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Http1Pool {
    /// A pool that reports its idle connections into `idle_gauges` (live, parked).
    pub(crate) fn new(shared: Arc<Shared>, idle_gauges: (Gauge, Gauge)) -> Arc<Self> {
        Self::with_limits(
            shared,
            PoolLimits {
                idle_timeout: POOL_IDLE_TIMEOUT,
                park_after: UPSTREAM_PARK_AFTER,
                max_idle_per_endpoint: POOL_MAX_IDLE_PER_ENDPOINT,
            },
            idle_gauges,
        )
    }

    pub(crate) fn with_limits(
        shared: Arc<Shared>,
        limits: PoolLimits,
        idle_gauges: (Gauge, Gauge),
    ) -> Arc<Self> {
        Arc::new(Http1Pool {
            shared,
            idle: Mutex::new(HashMap::default()),
            sweeper: AtomicBool::new(false),
            limits,
            idle_gauges,
        })
    }

    /// Sends `req` (its URI in origin form, `/path?query`) to `addr` on an idle connection, or
    /// a new one. A pooled connection that turns out closed before the request went out is
    /// skipped; once a request has gone out, its failure is returned (it may not be idempotent).
    /// An upgrade request gets a connection of its own, which is never pooled.
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
        let upgrade = req.headers().contains_key(header::UPGRADE);
        while let Some(checked) = (!upgrade).then(|| self.checkout(addr)).flatten() {
            let mut conn = match checked {
                Checked::Live(conn) => conn,
                Checked::Parked(stream) if quiet(&stream) => {
                    match self.start(addr, stream, false).await {
                        Ok(conn) => conn,
                        Err(_) => continue,
                    }
                }
                Checked::Parked(_) => continue, // closed by the upstream while parked
            };
            if conn.sender.ready().await.is_err() {
                continue; // closed while idle (the upstream's keep-alive timeout)
            }
            match conn.sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(addr, conn, resp)),
                Err(mut error) => match error.take_message() {
                    // Not written: the connection closed just now; try the next.
                    Some(unsent) => req = unsent,
                    None => return Err(PoolError::Http(error.into_error())),
                },
            }
        }
        let mut conn = self.connect(addr, upgrade).await?;
        match conn.sender.send_request(req).await {
            Ok(resp) => Ok(self.wrap(addr, conn, resp)),
            Err(error) => Err(PoolError::Http(error)),
        }
    }

    /// A new connection to `addr`, its HTTP/1 client running in a task of its own.
    async fn connect(self: &Arc<Self>, addr: SocketAddr, upgrade: bool) -> Result<Conn, PoolError> {
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
        self.start(addr, stream, upgrade)
            .await
            .map_err(|e| failed(Box::new(e)))
    }

    /// Runs hyper's HTTP/1 client on `stream` in a task of its own. Without `upgrade`, the task
    /// parks the socket in the pool when the pool drops the sender to park it.
    async fn start(
        self: &Arc<Self>,
        addr: SocketAddr,
        stream: TcpStream,
        upgrade: bool,
    ) -> Result<Conn, hyper::Error> {
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        if upgrade {
            tokio::spawn(async move {
                if let Err(error) = conn.with_upgrades().await {
                    tracing::trace!(%error, "upstream connection ended");
                }
            });
            return Ok(Conn { sender, park: None });
        }
        let park = Arc::new(OnceLock::new());
        let note = park.clone();
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            match conn.without_shutdown().await {
                // Ended with its sender dropped and nothing in flight: parked on purpose, or
                // closed by the upstream (the socket is dropped, closing it).
                Ok(parts) => {
                    if let (Some(&since), Some(pool)) = (note.get(), pool.upgrade())
                        && parts.read_buf.is_empty()
                    {
                        pool.park(addr, parts.io.into_inner(), since);
                    }
                }
                Err(error) => tracing::trace!(%error, "upstream connection ended"),
            }
        });
        Ok(Conn {
            sender,
            park: Some(park),
        })
    }

    /// The response, with its connection going back to the pool when the body ends.
    fn wrap(
        self: &Arc<Self>,
        addr: SocketAddr,
        conn: Conn,
        resp: Response<Incoming>,
    ) -> Response<UpstreamBody> {
        // An upgrade's connection (a 101 hands it to the tunnel) is never reused.
        let reusable = conn.park.is_some() && resp.status() != StatusCode::SWITCHING_PROTOCOLS;
        let mut give_back = reusable.then(|| GiveBack {
            pool: self.clone(),
            addr,
            conn,
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
    fn checkout(&self, addr: SocketAddr) -> Option<Checked> {
        let now = Instant::now();
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(&addr)?;
        while let Some(entry) = list.pop() {
            if now.duration_since(entry.since()) >= self.limits.idle_timeout || entry.is_closed() {
                continue;
            }
            return Some(match entry {
                Idle::Live { conn, .. } => Checked::Live(conn),
                Idle::Parked { stream, .. } => Checked::Parked(stream),
            });
        }
        None
    }

    /// Puts a ready connection back.
    fn checkin(self: &Arc<Self>, addr: SocketAddr, conn: Conn) {
        if !self.sweeper.swap(true, Ordering::Relaxed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(sweep(Arc::downgrade(self)));
        }
        self.insert(
            addr,
            Idle::Live {
                conn,
                since: Instant::now(),
            },
        );
    }

    /// Keeps the bare socket of a connection parked by the sweep.
    fn park(&self, addr: SocketAddr, stream: TcpStream, since: Instant) {
        self.insert(addr, Idle::Parked { stream, since });
    }

    /// Adds an idle connection in its place by age. Over the per-endpoint limit, the least
    /// recently used is closed.
    fn insert(&self, addr: SocketAddr, entry: Idle) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let list = idle.entry(addr).or_default();
        // A parked one went idle earlier than the live ones checked in since.
        let at = list
            .iter()
            .rposition(|e| e.since() <= entry.since())
            .map_or(0, |i| i + 1);
        list.insert(at, entry);
        if list.len() > self.limits.max_idle_per_endpoint {
            list.remove(0);
        }
    }

    /// Closes idle connections past the idle timeout (and closed ones), and parks live ones
    /// idle for `park_after`: their tasks give the sockets back (see [`Self::start`]).
    fn sweep_once(&self, now: Instant) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let (mut live, mut parked) = (0, 0);
        idle.retain(|_, list| {
            list.retain(|e| {
                let idle_for = now.duration_since(e.since());
                if idle_for >= self.limits.idle_timeout || e.is_closed() {
                    return false;
                }
                match e {
                    Idle::Live { conn, since } if idle_for >= self.limits.park_after => {
                        if let Some(note) = &conn.park {
                            let _ = note.set(*since);
                            // Its task parks the socket in a moment.
                            parked += 1;
                        }
                        false // drops the sender: its task ends and parks the socket
                    }
                    Idle::Live { .. } => {
                        live += 1;
                        true
                    }
                    Idle::Parked { .. } => {
                        parked += 1;
                        true
                    }
                }
            });
            !list.is_empty()
        });
        self.idle_gauges.0.set(live);
        self.idle_gauges.1.set(parked);
    }

    /// Idle connections held: (live, parked), for tests.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> (usize, usize) {
        self.idle.lock().map_or((0, 0), |idle| {
            let all = idle.values().flatten();
            let parked = all.clone().filter(|e| matches!(e, Idle::Parked { .. }));
            let parked = parked.count();
            (idle.values().map(Vec::len).sum::<usize>() - parked, parked)
        })
    }
}

/// Whether a parked socket is still open with nothing to read (the upstream sends nothing
/// unasked on an idle HTTP/1 connection; end of file is its close).
fn quiet(stream: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    // Nonblocking (tokio's sockets are): nothing to read is WouldBlock.
    matches!(
        socket2::SockRef::from(stream).peek(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    )
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
    conn: Conn,
}

impl GiveBack {
    fn done(self) {
        let GiveBack {
            pool,
            addr,
            mut conn,
        } = self;
        if conn.sender.is_ready() {
            pool.checkin(addr, conn);
            return;
        }
        if conn.sender.is_closed() {
            return;
        }
        // Its task has not yet taken up the next request (or is still sending this request's
        // body): put it back once it does, so no request waits behind another's upload.
        tokio::spawn(async move {
            if conn.sender.ready().await.is_ok() {
                pool.checkin(addr, conn);
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
    /// upstream whose keep-alive timeout passed), without saying so; with `stray_after`, it
    /// sends an unasked response that long after each response.
    async fn backend(size: usize, close_after: Option<Duration>) -> (SocketAddr, Arc<AtomicUsize>) {
        backend_with(size, close_after, None).await
    }

    async fn backend_with(
        size: usize,
        close_after: Option<Duration>,
        stray_after: Option<Duration>,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
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
                        if let Some(delay) = stray_after {
                            tokio::time::sleep(delay).await;
                            let stray =
                                "HTTP/1.1 200 OK\r\nx-conn: stray\r\ncontent-length: 0\r\n\r\n";
                            if socket.write_all(stray.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    /// What the pool's idle gauges say: (live, parked).
    fn gauges(pool: &Http1Pool) -> (i64, i64) {
        (pool.idle_gauges.0.get(), pool.idle_gauges.1.get())
    }

    fn pool(idle_timeout: Duration, max_idle: usize) -> Arc<Http1Pool> {
        parking_pool(idle_timeout, Duration::from_secs(3600), max_idle)
    }

    fn parking_pool(idle_timeout: Duration, park_after: Duration, max: usize) -> Arc<Http1Pool> {
        let limits = PoolLimits {
            idle_timeout,
            park_after,
            max_idle_per_endpoint: max,
        };
        Http1Pool::with_limits(
            Shared::new(FleetSettings::default()),
            limits,
            Default::default(),
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
            assert_eq!(pool.idle_count(), (1, 0));
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
        assert_eq!(
            pool.idle_count(),
            (0, 0),
            "a half-read connection is not pooled"
        );
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
            assert_eq!(pool.idle_count(), (1, 0), "pooled while it was open");
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
        pool.sweep_once(Instant::now());
        assert_eq!(pool.idle_count(), (1, 0), "young: kept");
        tokio::time::sleep(Duration::from_millis(150)).await;
        pool.sweep_once(Instant::now());
        assert_eq!(pool.idle_count(), (0, 0), "past the timeout: closed");
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
        assert_eq!(pool.idle_count(), (2, 0));
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

    #[tokio::test]
    async fn an_idle_connection_parks_and_its_socket_is_reused() {
        let (addr, accepted) = backend(2048, None).await;
        let pool = parking_pool(Duration::from_secs(60), Duration::from_millis(20), 8);
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        assert_eq!(text(resp).await, "1 a.test");
        settle().await;
        pool.sweep_once(Instant::now());
        assert_eq!(pool.idle_count(), (1, 0), "young: live");
        assert_eq!(gauges(&pool), (1, 0), "the gauges count it live");
        tokio::time::sleep(Duration::from_millis(40)).await;
        pool.sweep_once(Instant::now());
        assert_eq!(gauges(&pool), (0, 1), "the gauges count it parked at once");
        settle().await;
        assert_eq!(
            pool.idle_count(),
            (0, 1),
            "idle past park_after: a bare socket"
        );
        for _ in 0..2 {
            let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
            assert_eq!(text(resp).await, "1 a.test", "the same upstream connection");
            settle().await;
            assert_eq!(pool.idle_count(), (1, 0), "live again");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Parked again, then past the idle timeout: the gauges follow the sweeps.
        tokio::time::sleep(Duration::from_millis(40)).await;
        pool.sweep_once(Instant::now());
        settle().await;
        pool.sweep_once(Instant::now());
        assert_eq!(gauges(&pool), (0, 1), "a parked socket counted parked");
        pool.sweep_once(Instant::now() + Duration::from_secs(61));
        assert_eq!(gauges(&pool), (0, 0), "closed after the idle timeout");
    }

    #[tokio::test]
    async fn a_parked_socket_the_upstream_closed_is_skipped() {
        let (addr, accepted) = backend(16, Some(Duration::from_millis(60))).await;
        let pool = parking_pool(Duration::from_secs(60), Duration::from_millis(10), 8);
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        assert_eq!(text(resp).await, "1 a.test");
        tokio::time::sleep(Duration::from_millis(20)).await;
        pool.sweep_once(Instant::now());
        settle().await;
        assert_eq!(
            pool.idle_count(),
            (0, 1),
            "parked before the upstream closed it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let resp = pool
            .send(addr, get(Some("a.test")))
            .await
            .expect("no error");
        assert_eq!(text(resp).await, "2 a.test");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_parked_socket_with_unasked_bytes_is_not_reused() {
        let (addr, accepted) = backend_with(16, None, Some(Duration::from_millis(60))).await;
        let pool = parking_pool(Duration::from_secs(60), Duration::from_millis(10), 8);
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        assert_eq!(text(resp).await, "1 a.test");
        tokio::time::sleep(Duration::from_millis(20)).await;
        pool.sweep_once(Instant::now());
        settle().await;
        assert_eq!(
            pool.idle_count(),
            (0, 1),
            "parked before the stray bytes came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Read as this request's answer, the stray response would say `stray`.
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        assert_eq!(text(resp).await, "2 a.test");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_upgrade_gets_a_connection_of_its_own() {
        let (addr, accepted) = backend(16, None).await;
        let pool = pool(Duration::from_secs(60), 8);
        let resp = pool.send(addr, get(Some("a.test"))).await.expect("send");
        assert_eq!(text(resp).await, "1 a.test");
        settle().await;
        let mut upgrade = get(Some("a.test"));
        upgrade
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let resp = pool.send(addr, upgrade).await.expect("send");
        assert_eq!(text(resp).await, "2 a.test", "not the pooled one");
        settle().await;
        assert_eq!(pool.idle_count(), (1, 0), "and not pooled after");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
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
