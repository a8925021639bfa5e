//! Body wrappers on the streaming path, both directions. Nothing here buffers: each wrapper
//! passes frames through as they come and only counts, checks or times them.
//!
//! * [`RequestBody`]: client → upstream. Enforces `proxy-body-size` while streaming, records
//!   progress for the send/read timeouts, and gives the client's body back if the upstream
//!   connect failed before a byte was read, so the request can be retried on another endpoint.
//! * [`Tracked`]: upstream (or a synthetic response) → client. Counts bytes sent, applies the
//!   read timeout between upstream frames, and on drop records metrics and the access-log line.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;
use tokio::time::Sleep;

use super::access_log::{AccessLog, AccessLogEntry, rfc3339};
use super::metrics::RequestMetrics;
use super::{BoxBody, BoxError};

/// How the request body failed; found again in the upstream client's error chain to pick the
/// client's status code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestBodyError {
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the client's request body: {0}")]
    Client(#[source] BoxError),
}

/// Request-body progress shared with the handler's timeout loop.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    frames: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    /// A value that changes whenever a frame was forwarded.
    pub(crate) fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    pub(crate) fn done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }
}

/// The client's request body on its way upstream. Generic only so tests can feed it any body.
#[derive(Debug)]
pub(crate) struct RequestBody<B = Incoming> {
    inner: Option<B>,
    limit: Option<u64>,
    received: u64,
    started: bool,
    reclaim: Option<oneshot::Sender<B>>,
    progress: Option<Arc<Progress>>,
}

impl<B> RequestBody<B> {
    /// An empty body (GET and friends).
    pub(crate) fn empty() -> Self {
        RequestBody {
            inner: None,
            limit: None,
            received: 0,
            started: false,
            reclaim: None,
            progress: None,
        }
    }

    /// Wraps `inner`, optionally `reclaim`able: if this body is dropped before it was ever
    /// polled (the connect failed), `inner` is sent back through the returned receiver.
    pub(crate) fn new(
        inner: B,
        limit: Option<u64>,
        progress: Option<Arc<Progress>>,
        reclaim: bool,
    ) -> (Self, Option<oneshot::Receiver<B>>) {
        let (tx, rx) = if reclaim {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        (
            RequestBody {
                inner: Some(inner),
                limit,
                received: 0,
                started: false,
                reclaim: tx,
                progress,
            },
            rx,
        )
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        this.started = true;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if let Some(limit) = this.limit
                        && this.received > limit
                    {
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit })));
                    }
                }
                if let Some(p) = &this.progress {
                    p.frames.fetch_add(1, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(RequestBodyError::Client(e.into())))),
            Poll::Ready(None) => {
                if let Some(p) = &this.progress {
                    p.done.store(true, Ordering::Relaxed);
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl<B> Drop for RequestBody<B> {
    fn drop(&mut self) {
        if !self.started
            && let (Some(inner), Some(tx)) = (self.inner.take(), self.reclaim.take())
        {
            // The receiver may be gone (the request was abandoned); nothing to do then.
            let _ = tx.send(inner);
        }
    }
}

/// What is recorded when a response finishes: metrics always, the access-log line when on.
pub(crate) struct Finish {
    /// The request's counter and histogram, resolved when the status was known.
    pub metrics: Arc<RequestMetrics>,
    pub start: Instant,
    pub log: Option<(AccessLog, Box<AccessLogEntry>)>,
    /// Dropped when the response is done: a `limit-connections` slot. Never read; it is held
    /// for its `Drop`.
    #[allow(dead_code)]
    pub hold: Option<Box<dyn Send + Sync>>,
}

impl Finish {
    fn complete(self, bytes_sent: u64) {
        let seconds = self.start.elapsed().as_secs_f64();
        if let Some((log, mut entry)) = self.log {
            entry.time = rfc3339(SystemTime::now());
            entry.bytes_sent = bytes_sent;
            entry.request_time = round_millis(seconds);
            log.send(*entry);
        }
        self.metrics.record(seconds);
    }
}

/// Seconds rounded to milliseconds, as nginx logs times.
pub(crate) fn round_millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[derive(Debug, thiserror::Error)]
#[error("upstream sent nothing for {0:?}")]
pub(crate) struct ReadTimeout(Duration);

/// A response body on its way to the client; see the module docs.
pub(crate) struct Tracked<B> {
    inner: B,
    idle: Option<IdleTimer>,
    finish: Option<Finish>,
    bytes: u64,
}

/// `proxy_read_timeout` between reads of the body. Armed only when the upstream makes the body
/// wait, so a body that is already buffered (most small responses) costs no timer and no clock
/// read.
struct IdleTimer {
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl IdleTimer {
    /// The body is waiting for the upstream: starts the window unless it already runs; true
    /// once it has passed.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            let deadline = tokio::time::Instant::now() + self.timeout;
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        self.sleep
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}

impl<B> Tracked<B>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// Wraps `inner`; with `read_timeout`, the response fails when the upstream sends nothing
    /// for that long (nginx's `proxy_read_timeout` applies between reads of the body too).
    pub(crate) fn boxed(inner: B, read_timeout: Option<Duration>, finish: Finish) -> BoxBody {
        let idle = read_timeout.map(|timeout| IdleTimer {
            timeout,
            sleep: None,
            armed: false,
        });
        Tracked {
            inner,
            idle,
            finish: Some(finish),
            bytes: 0,
        }
        .boxed_unsync()
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if let Some(idle) = &mut this.idle {
                    idle.armed = false;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if let Some(idle) = &mut this.idle
                    && idle.expired(cx)
                {
                    // Ends the response with an error: hyper closes the client connection, as
                    // nginx does when an upstream stalls mid-body.
                    return Poll::Ready(Some(Err(Box::new(ReadTimeout(idle.timeout)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.complete(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::future::poll_fn;

    use http_body_util::StreamBody;

    type Chunks =
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    fn chunks(sizes: &[usize]) -> Chunks {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = sizes
            .iter()
            .map(|n| Ok(Frame::data(Bytes::from(vec![b'x'; *n]))))
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    async fn next(
        body: &mut RequestBody<Chunks>,
    ) -> Option<Result<Frame<Bytes>, RequestBodyError>> {
        poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    }

    #[tokio::test]
    async fn streaming_limit_table() {
        // (chunk sizes, limit, index of the frame that fails or None)
        let cases: &[(&[usize], Option<u64>, Option<usize>)] = &[
            (&[6, 6], Some(12), None),
            (&[6, 6], Some(10), Some(1)),
            (&[11], Some(10), Some(0)),
            (&[1_000_000], None, None),
            (&[], Some(0), None),
        ];
        for (sizes, limit, fails_at) in cases {
            let progress = Arc::new(Progress::default());
            let (mut body, _) =
                RequestBody::new(chunks(sizes), *limit, Some(progress.clone()), false);
            let mut index = 0;
            let mut failed = None;
            while let Some(frame) = next(&mut body).await {
                if let Err(RequestBodyError::TooLarge { limit: l }) = frame {
                    assert_eq!(Some(l), *limit);
                    failed = Some(index);
                    break;
                }
                index += 1;
            }
            assert_eq!(failed, *fails_at, "{sizes:?} limit {limit:?}");
            if fails_at.is_none() {
                assert!(progress.done(), "{sizes:?}: end of stream recorded");
                assert_eq!(progress.frames(), sizes.len() as u64);
            }
        }
    }

    #[tokio::test]
    async fn an_unread_body_is_reclaimed_on_drop() {
        let (body, reclaim) = RequestBody::new(chunks(&[3]), None, None, true);
        drop(body);
        let mut reclaim = reclaim.expect("reclaimable");
        assert!(reclaim.try_recv().is_ok(), "the untouched body comes back");

        let (mut body, reclaim) = RequestBody::new(chunks(&[3]), None, None, true);
        assert!(next(&mut body).await.is_some());
        drop(body);
        assert!(
            reclaim.expect("reclaimable").try_recv().is_err(),
            "a body that was read cannot be replayed"
        );
    }

    /// A body whose frames arrive at the given delays after each other (then it ends).
    fn paced(
        delays_ms: &[u64],
    ) -> impl Body<Data = Bytes, Error = Infallible> + Unpin + Send + 'static {
        let delays = delays_ms.to_vec();
        let stream = futures::stream::unfold(delays.into_iter(), |mut it| async move {
            let d = it.next()?;
            tokio::time::sleep(Duration::from_millis(d)).await;
            Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"x"))),
                it,
            ))
        });
        StreamBody::new(Box::pin(stream))
    }

    fn finish() -> Finish {
        let metrics = crate::proxy::ProxyMetrics::unregistered();
        let snapshot = Arc::new(crate::model::Snapshot::default());
        Finish {
            metrics: metrics.request_metrics(&snapshot, None, "", 200),
            start: Instant::now(),
            log: None,
            hold: None,
        }
    }

    /// (frame delays in ms, read timeout in ms, frames before the end, timed out)
    #[tokio::test(start_paused = true)]
    async fn read_timeout_table() {
        let cases: &[(&[u64], u64, usize, bool)] = &[
            (&[0, 0, 0], 100, 3, false),
            // Each gap is under the timeout, the whole body is not: the window restarts.
            (&[60, 60, 60, 60], 100, 4, false),
            (&[10, 150], 100, 1, true),
            (&[150], 100, 0, true),
            (&[150], 200, 1, false),
        ];
        for (delays, timeout, frames, timed_out) in cases {
            let mut body = Tracked::boxed(
                paced(delays),
                Some(Duration::from_millis(*timeout)),
                finish(),
            );
            let mut seen = 0;
            let mut failed = false;
            while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                match frame {
                    Ok(_) => seen += 1,
                    Err(e) => {
                        assert!(e.is::<ReadTimeout>(), "{delays:?}: {e}");
                        failed = true;
                        break;
                    }
                }
            }
            assert_eq!(
                (seen, failed),
                (*frames, *timed_out),
                "{delays:?} timeout {timeout}"
            );
        }
    }

    #[test]
    fn round_millis_table() {
        assert_eq!(round_millis(0.0), 0.0);
        assert_eq!(round_millis(1.23456), 1.235);
        assert_eq!(round_millis(0.0004), 0.0);
    }
}
