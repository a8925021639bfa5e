//! Parking idle HTTP/1 keep-alive connections: after [`PARK_AFTER`] with no traffic between
//! requests, the socket is taken back from hyper and waits for its next request bare, holding
//! no buffers, as nginx's keep-alive handler frees its buffers between requests.
//!
//! hyper's HTTP/1 server reserves an 8 KiB read buffer and an 8 KiB header buffer per
//! connection and keeps both until the connection closes, so at 10k idle keep-alive clients
//! they were most of the proxy's memory. hyper has no way to release them on an open
//! connection, but it does end a connection cleanly when the client closes between requests.
//! [`ParkingIo`] sits between hyper and the socket and, once the connection has been idle long
//! enough, answers hyper's next read with end-of-file; hyper finishes the connection and asks
//! for a shutdown, which [`ParkingIo`] turns into handing the socket back (through
//! [`ConnState`]) instead. The listener then waits for the socket to become readable and
//! serves it with a fresh hyper connection.
//!
//! hyper treats end-of-file in the middle of a message as an error, so a connection parks only
//! when nothing is in between: no request in flight (from the service's call until hyper drops
//! the response body), no byte read since the last response ended (hyper might hold part of
//! the next request), no write waiting on the socket, and never after an upgrade.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a keep-alive connection stays idle inside hyper before it parks (it parks between
/// one and two of these after its last byte). Short enough that idle clients hold no buffers,
/// long enough that a client sending request after request never pays for a new hyper
/// connection.
pub const PARK_AFTER: Duration = Duration::from_millis(250);

/// What one connection's [`ParkingIo`] and its service share.
#[derive(Debug)]
pub struct ConnState<I> {
    /// Requests from the service's call until hyper dropped their response body.
    in_flight: AtomicUsize,
    /// A byte arrived since the last response ended: hyper may hold part of a request.
    read_since_idle: AtomicBool,
    /// A response switched protocols: the socket belongs to a tunnel and never parks.
    upgraded: AtomicBool,
    /// Where [`ParkingIo`] leaves the socket when it parks.
    parked: Mutex<Option<I>>,
}

impl<I> Default for ConnState<I> {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            read_since_idle: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            parked: Mutex::new(None),
        }
    }
}

impl<I> ConnState<I> {
    /// The socket, when the last hyper connection ended by parking it.
    pub fn take_parked(&self) -> Option<I> {
        self.parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlight<I> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn parkable(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && !self.read_since_idle.load(Ordering::Relaxed)
            && !self.upgraded.load(Ordering::Relaxed)
    }
}

/// One request in flight on a connection; dropped with the response body (or the service's
/// future, when the client goes away first).
#[derive(Debug)]
pub struct InFlight<I>(Arc<ConnState<I>>);

impl<I> InFlight<I> {
    /// The response switches protocols: the connection never parks again.
    pub fn upgraded(&self) {
        self.0.upgraded.store(true, Ordering::Relaxed);
    }
}

impl<I> Drop for InFlight<I> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            // The response is all with hyper: bytes from here on belong to the next request.
            self.0.read_since_idle.store(false, Ordering::Relaxed);
        }
    }
}

/// A response body that keeps its request counted in flight until hyper drops it.
#[derive(Debug)]
pub struct Tracked<B, I> {
    inner: B,
    _in_flight: InFlight<I>,
}

impl<B, I> Tracked<B, I> {
    pub fn new(inner: B, in_flight: InFlight<I>) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin, I> Body for Tracked<B, I> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket as hyper sees it: passes everything through, and answers a read with
/// end-of-file once the connection may park and has been idle for [`PARK_AFTER`].
#[derive(Debug)]
pub struct ParkingIo<I> {
    io: Option<I>,
    state: Arc<ConnState<I>>,
    /// Created at the first idle read; re-armed instead of reset per byte, so busy
    /// connections pay one counter increment per read or write, not a timer update.
    timer: Option<Pin<Box<Sleep>>>,
    /// Reads and writes that moved bytes, and their count when the timer was last armed.
    events: u32,
    armed_at: u32,
    /// The last write or flush found the socket full.
    write_blocked: bool,
    /// End-of-file was given to hyper; its shutdown hands the socket back.
    parking: bool,
}

impl<I> ParkingIo<I> {
    pub fn new(io: I, state: Arc<ConnState<I>>) -> Self {
        Self {
            io: Some(io),
            state,
            timer: None,
            events: 0,
            armed_at: 0,
            write_blocked: false,
            parking: false,
        }
    }

    /// Whether the connection may park now: idle in hyper's terms, and no byte moved for a
    /// whole timer period. Registers for a wake-up when the timer is what is missing.
    fn idle_long_enough(&mut self, cx: &mut Context<'_>) -> bool {
        if self.write_blocked || !self.state.parkable() {
            return false;
        }
        if self.timer.is_none() {
            self.armed_at = self.events;
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(PARK_AFTER)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if self.events == self.armed_at {
                return true;
            }
            // Traffic since the timer was armed: give it another full period.
            self.armed_at = self.events;
            timer.as_mut().reset(Instant::now() + PARK_AFTER);
        }
    }

    fn wrote<T>(&mut self, result: &Poll<io::Result<T>>) {
        match result {
            Poll::Pending => self.write_blocked = true,
            Poll::Ready(_) => {
                self.write_blocked = false;
                self.events = self.events.wrapping_add(1);
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ParkingIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut().filter(|_| !this.parking) else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(io).poll_read(cx, buf) {
            Poll::Pending => {
                if this.idle_long_enough(cx) {
                    this.parking = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.events = this.events.wrapping_add(1);
                this.state.read_since_idle.store(true, Ordering::Relaxed);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ParkingIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = Pin::new(io).poll_write(cx, buf);
        this.wrote(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = Pin::new(io).poll_write_vectored(cx, bufs);
        this.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(I::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let result = Pin::new(io).poll_flush(cx);
        if result.is_pending() {
            this.write_blocked = true;
        }
        result
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.parking {
            if let Some(io) = this.io.take() {
                *this
                    .state
                    .parked
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(io);
            }
            return Poll::Ready(Ok(()));
        }
        match this.io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
