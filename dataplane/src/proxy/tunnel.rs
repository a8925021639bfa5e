//! Upgraded connections (WebSocket and any other `Upgrade`): once both sides switched
//! protocols, bytes are copied both ways until either side closes or the tunnel is idle for
//! `proxy-read-timeout` (nginx closes idle WebSockets after that timeout too).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Waits for both upgrades, then copies. Runs as its own task, outside the HTTP connection.
pub(crate) async fn run(client: OnUpgrade, upstream: OnUpgrade, idle_timeout: Duration) {
    let (client, upstream) = tokio::join!(client, upstream);
    let (Ok(client), Ok(upstream)) = (client, upstream) else {
        // One side never switched (the client went away): dropping the other closes it.
        return;
    };
    let activity = Arc::new(AtomicU64::new(0));
    let mut client = Counted {
        inner: TokioIo::new(client),
        activity: activity.clone(),
    };
    let mut upstream = TokioIo::new(upstream);
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(copy);
    let mut seen = 0;
    loop {
        tokio::select! {
            result = &mut copy => {
                if let Err(error) = result {
                    tracing::debug!(%error, "upgraded connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep(idle_timeout) => {
                let now = activity.load(Ordering::Relaxed);
                if now == seen {
                    // Idle for a whole period: returning drops (closes) both sides.
                    return;
                }
                seen = now;
            }
        }
    }
}

/// Counts successful reads and writes on the client side: traffic in either direction moves
/// the counter, which the idle check compares between periods.
struct Counted<T> {
    inner: T,
    activity: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
