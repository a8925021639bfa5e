//! Parked keep-alive connections, held outside any task until their next request.
//!
//! A parked connection used to be a task waiting on its socket: the task, its reactor
//! registration and the state around them were about 2 KiB a connection, four times what nginx
//! spends on an idle keep-alive connection. Here a parked socket is a slot (its descriptor and
//! who the client is) in one epoll set, which sits in tokio's reactor as a single descriptor;
//! when the socket becomes readable (a request, or the client closing) the listener's accept
//! loop gets it back and serves it with a fresh task.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use prometheus_client::metrics::gauge::Gauge;
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ClientInfo;

/// Events taken from the epoll set per look; more are taken on the next.
const EVENTS_PER_POLL: usize = 256;

/// The shortest time between two sweeps for connections idle past the timeout, so a steady
/// stream of parking connections does not scan the set each time one of them expires.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The parked connections of one listener.
pub struct ParkedConnections {
    /// The epoll set's descriptor in tokio's reactor: readable when a parked socket is.
    /// Declared before `lot`, so it leaves the reactor before the set it names is closed.
    ready: AsyncFd<EpollFd>,
    lot: Mutex<Lot>,
    /// A first connection parked into an empty set: [`woken`](Self::woken) has a sweep to
    /// schedule.
    sweep_due: Notify,
    idle_timeout: Duration,
    /// `connections_open` and `connections_parked`: a parked connection still counts as open.
    open: Gauge,
    parked: Gauge,
}

struct Lot {
    poll: Poll,
    events: Events,
    slots: Slab<Slot>,
    /// No earlier deadline than this is in `slots`, until more connections park.
    next_sweep: Option<Instant>,
    /// The listener drains: new arrivals are closed.
    closed: bool,
}

struct Slot {
    stream: mio::net::TcpStream,
    info: ClientInfo,
    /// Closed when still here then: the keep-alive timeout.
    deadline: Instant,
}

/// The epoll set's descriptor, borrowed from the `Poll` that owns it.
struct EpollFd(RawFd);

impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl ParkedConnections {
    /// An empty set in the current runtime's reactor. Parked connections are closed after
    /// `idle_timeout` (within [`SWEEP_EVERY`] after it), as idle keep-alive connections are.
    pub fn new(idle_timeout: Duration, open: Gauge, parked: Gauge) -> io::Result<Self> {
        let poll = Poll::new()?;
        // SAFETY: the descriptor belongs to `poll`, which moves into `lot` below and is never
        // replaced; `ready` is declared before `lot`, so it leaves the reactor before `poll`
        // closes the descriptor.
        let ready = unsafe {
            AsyncFd::register_with_interest(
                EpollFd(poll.as_raw_fd()),
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(|e| e.into_parts().1)?;
        Ok(Self {
            ready,
            lot: Mutex::new(Lot {
                poll,
                events: Events::with_capacity(EVENTS_PER_POLL),
                slots: Slab::new(),
                next_sweep: None,
                closed: false,
            }),
            sweep_due: Notify::new(),
            idle_timeout,
            open,
            parked,
        })
    }

    /// Parks `stream` until it becomes readable or idles past the timeout. The socket is closed
    /// instead when the listener drains or the set refuses it (an error of the kernel's).
    pub fn park(&self, stream: TcpStream, info: ClientInfo) {
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(peer = %info.peer, %error, "parking a connection failed, closing it");
                return;
            }
        };
        let mut stream = mio::net::TcpStream::from_std(stream);
        let deadline = Instant::now() + self.idle_timeout;
        let mut lot = self.lock();
        if lot.closed {
            return;
        }
        let lot = &mut *lot;
        let entry = lot.slots.vacant_entry();
        if let Err(error) =
            lot.poll
                .registry()
                .register(&mut stream, Token(entry.key()), Interest::READABLE)
        {
            tracing::debug!(peer = %info.peer, %error, "parking a connection failed, closing it");
            return;
        }
        entry.insert(Slot {
            stream,
            info,
            deadline,
        });
        if lot.next_sweep.is_none() {
            lot.next_sweep = Some(deadline.max(Instant::now() + SWEEP_EVERY));
            self.sweep_due.notify_one();
        }
        self.open.inc();
        self.parked.inc();
    }

    /// Waits until parked connections become readable and returns them, out of the set, as
    /// tokio streams with who their clients are; meanwhile closes the ones idle past the
    /// timeout. Cancel-safe: connections leave the set only when returned. Never returns
    /// after [`close_all`](Self::close_all) (their sockets are gone).
    pub async fn woken(&self) -> Vec<(TcpStream, ClientInfo)> {
        loop {
            let sweep = self.lock().next_sweep;
            let sweep = async {
                match sweep {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ready = self.ready.readable() => {
                    let mut ready = match ready {
                        Ok(ready) => ready,
                        Err(error) => {
                            // The reactor is gone (runtime shutting down): nothing to wake.
                            tracing::debug!(%error, "parked connections: reactor gone");
                            return std::future::pending().await;
                        }
                    };
                    let woken = self.take_readable();
                    if woken.is_empty() {
                        // Only once the set reported nothing: a socket turning readable after
                        // that look marks the descriptor ready again.
                        ready.clear_ready();
                    } else {
                        return to_tokio(woken);
                    }
                }
                () = sweep => self.sweep(),
                () = self.sweep_due.notified() => {}
            }
        }
    }

    /// Closes every parked connection and any that park from now on (the listener drains:
    /// idle keep-alive connections close at once).
    pub fn close_all(&self) {
        let mut lot = self.lock();
        lot.closed = true;
        let closed = lot.slots.len() as i64;
        lot.slots.clear();
        lot.next_sweep = None;
        self.forget(closed);
    }

    /// How many connections are parked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    fn lock(&self) -> MutexGuard<'_, Lot> {
        self.lot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One look at the epoll set, without waiting: the sockets it reports, out of the set.
    fn take_readable(&self) -> Vec<(mio::net::TcpStream, ClientInfo)> {
        let mut lot = self.lock();
        let lot = &mut *lot;
        if let Err(error) = lot.poll.poll(&mut lot.events, Some(Duration::ZERO)) {
            if error.kind() != io::ErrorKind::Interrupted {
                tracing::warn!(%error, "looking for readable parked connections failed");
            }
            return Vec::new();
        }
        let mut woken = Vec::with_capacity(lot.events.iter().count());
        for event in lot.events.iter() {
            // A slot leaves the set (deregistered, or closed with its socket) before it is
            // freed, so an event names a parked socket; `try_remove` only guards the invariant.
            let Some(mut slot) = lot.slots.try_remove(event.token().0) else {
                continue;
            };
            let _ = lot.poll.registry().deregister(&mut slot.stream);
            woken.push((slot.stream, slot.info));
        }
        if lot.slots.is_empty() {
            lot.next_sweep = None;
        }
        self.forget(woken.len() as i64);
        woken
    }

    /// Closes the connections past their deadline and sets the next sweep to the earliest
    /// deadline left (at least [`SWEEP_EVERY`] from now).
    fn sweep(&self) {
        let now = Instant::now();
        let mut lot = self.lock();
        let before = lot.slots.len();
        // Dropping a slot closes its socket, which also takes it out of the epoll set.
        lot.slots.retain(|_, slot| slot.deadline > now);
        let closed = (before - lot.slots.len()) as i64;
        lot.next_sweep = lot
            .slots
            .iter()
            .map(|(_, slot)| slot.deadline)
            .min()
            .map(|earliest| earliest.max(now + SWEEP_EVERY));
        self.forget(closed);
    }

    fn forget(&self, connections: i64) {
        self.open.dec_by(connections);
        self.parked.dec_by(connections);
    }
}

/// Parked sockets back in tokio's reactor; one it refuses is closed.
fn to_tokio(woken: Vec<(mio::net::TcpStream, ClientInfo)>) -> Vec<(TcpStream, ClientInfo)> {
    woken
        .into_iter()
        .filter_map(
            |(stream, info)| match TcpStream::from_std(stream.into()) {
                Ok(stream) => Some((stream, info)),
                Err(error) => {
                    tracing::debug!(peer = %info.peer, %error, "resuming a parked connection failed, closing it");
                    None
                }
            },
        )
        .collect()
}

impl Drop for ParkedConnections {
    fn drop(&mut self) {
        self.close_all();
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn info(peer: SocketAddr) -> ClientInfo {
        ClientInfo {
            peer,
            local: peer,
            tls: false,
            proxy_protocol_src: None,
            server_name: None,
            client_cert: None,
        }
    }

    /// `n` connected pairs: (the client's end, the server's end with the client's address).
    async fn pairs(n: usize) -> Vec<(TcpStream, TcpStream, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let client = TcpStream::connect(addr).await.expect("connect");
            let (server, peer) = listener.accept().await.expect("accept");
            pairs.push((client, server, peer));
        }
        pairs
    }

    fn set(idle_timeout: Duration) -> ParkedConnections {
        ParkedConnections::new(idle_timeout, Gauge::default(), Gauge::default()).expect("epoll")
    }

    /// The client's end sees the server close within `within`.
    async fn closes_within(client: &mut TcpStream, within: Duration) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(within, client.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }

    #[tokio::test]
    async fn a_parked_socket_comes_back_when_its_client_sends() {
        let parked = set(Duration::from_secs(60));
        let (mut client, server, peer) = pairs(1).await.pop().expect("pair");
        parked.park(server, info(peer));
        assert_eq!(
            (parked.len(), parked.open.get(), parked.parked.get()),
            (1, 1, 1)
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(300), parked.woken())
                .await
                .is_err(),
            "nothing to read: stays parked"
        );

        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        let mut woken = tokio::time::timeout(Duration::from_secs(5), parked.woken())
            .await
            .expect("woken once readable");
        assert_eq!(woken.len(), 1);
        let (mut server, back) = woken.pop().expect("one");
        assert_eq!(back.peer, peer, "with who its client is");
        assert_eq!(
            (parked.len(), parked.open.get(), parked.parked.get()),
            (0, 0, 0)
        );
        let mut head = [0u8; 16];
        server
            .read_exact(&mut head)
            .await
            .expect("the bytes wait on the socket");
        assert_eq!(&head, b"GET / HTTP/1.1\r\n");
        server
            .write_all(b"ok")
            .await
            .expect("a working tokio stream");
        let mut ok = [0u8; 2];
        client.read_exact(&mut ok).await.expect("read");
        assert_eq!(&ok, b"ok");
    }

    #[tokio::test]
    async fn only_the_sockets_that_became_readable_come_back() {
        // More than one look at the set takes, and a client closing counts as readable.
        let parked = set(Duration::from_secs(60));
        let mut clients = Vec::new();
        for (client, server, peer) in pairs(600).await {
            parked.park(server, info(peer));
            clients.push((client, peer));
        }
        let mut expected = Vec::new();
        for (i, (client, peer)) in clients.iter_mut().enumerate() {
            match i % 3 {
                0 => client.write_all(b"x").await.expect("write"),
                1 => client.shutdown().await.expect("shutdown"),
                _ => continue,
            }
            expected.push(*peer);
        }
        let mut back = Vec::new();
        while back.len() < expected.len() {
            let woken = tokio::time::timeout(Duration::from_secs(5), parked.woken())
                .await
                .expect("woken");
            back.extend(woken.into_iter().map(|(_, info)| info.peer));
        }
        expected.sort();
        back.sort();
        assert_eq!(back, expected);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), parked.woken())
                .await
                .is_err(),
            "the rest stay parked"
        );
        assert_eq!((parked.len(), parked.parked.get()), (200, 200));
    }

    #[tokio::test]
    async fn a_parked_socket_closes_after_the_idle_timeout() {
        let parked = Arc::new(set(Duration::from_millis(100)));
        // Already waiting on an empty set when the connection parks: the sweep still runs.
        let waiting = tokio::spawn({
            let parked = parked.clone();
            async move { parked.woken().await.len() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (mut client, server, peer) = pairs(1).await.pop().expect("pair");
        parked.park(server, info(peer));
        assert!(
            closes_within(&mut client, SWEEP_EVERY + Duration::from_secs(2)).await,
            "closed at the next sweep after its timeout"
        );
        assert_eq!(
            (parked.len(), parked.open.get(), parked.parked.get()),
            (0, 0, 0)
        );
        assert!(!waiting.is_finished(), "and never handed out");
        waiting.abort();
    }

    #[tokio::test]
    async fn close_all_closes_the_parked_and_any_that_park_later() {
        let parked = set(Duration::from_secs(60));
        let mut pairs = pairs(2).await;
        let (mut later, later_server, later_peer) = pairs.pop().expect("pair");
        let (mut first, server, peer) = pairs.pop().expect("pair");
        parked.park(server, info(peer));
        parked.close_all();
        assert!(closes_within(&mut first, Duration::from_secs(2)).await);
        parked.park(later_server, info(later_peer));
        assert!(closes_within(&mut later, Duration::from_secs(2)).await);
        assert_eq!(
            (parked.len(), parked.open.get(), parked.parked.get()),
            (0, 0, 0)
        );
    }
}
