//! SSL passthrough: a TLS connection forwarded undecrypted to the backend of its host's `/`
//! rule. The ClientHello already read is replayed first (the caller hands it in as the
//! client stream's prefix), then bytes are copied both ways until either side closes, as
//! ingress-nginx's passthrough proxy does (no idle timeout: the TLS session is the backend's).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::upstream::{self, Candidates};
use crate::model::Backend;

/// Why a passthrough connection could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PassthroughError {
    #[error("the passthrough backend has no ready endpoints")]
    NoEndpoints,
    #[error("resolving {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error(
        "could not connect to the passthrough backend ({attempts} attempts, last {last}: {reason})"
    )]
    Connect {
        attempts: usize,
        last: SocketAddr,
        reason: String,
    },
}

/// The addresses to try, in round-robin order.
async fn targets(
    backend: &Backend,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, PassthroughError> {
    match backend {
        Backend::Service { service, endpoints } => {
            let candidates = Candidates::select(endpoints);
            let n = candidates.len();
            if n == 0 {
                return Err(PassthroughError::NoEndpoints);
            }
            let first = upstream::next_round_robin(service);
            Ok((0..n)
                .filter_map(|i| candidates.nth((first + i) % n))
                .collect())
        }
        Backend::ExternalName { host, port, .. } => {
            let failed = |reason: String| PassthroughError::Resolve {
                host: host.clone(),
                reason,
            };
            match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), *port)))
                .await
            {
                Ok(Ok(addrs)) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if addrs.is_empty() {
                        Err(failed("no addresses".into()))
                    } else {
                        Ok(addrs)
                    }
                }
                Ok(Err(e)) => Err(failed(e.to_string())),
                Err(_) => Err(failed("timed out".into())),
            }
        }
    }
}

/// Connects to the backend (the next endpoint on a connect failure, up to `tries`), then
/// copies `client` (whose prefix is the ClientHello) and the backend into each other. Returns
/// the bytes copied each way.
pub(crate) async fn forward<C: AsyncRead + AsyncWrite + Unpin>(
    mut client: C,
    backend: &Backend,
    connect_timeout: Duration,
    tries: u32,
) -> Result<(u64, u64), PassthroughError> {
    let addrs = targets(backend, connect_timeout).await?;
    let attempts = upstream::attempts(tries, addrs.len());
    let mut last = None;
    let mut upstream = None;
    for addr in addrs.iter().take(attempts) {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                upstream = Some(stream);
                break;
            }
            Ok(Err(e)) => last = Some((*addr, e.to_string())),
            Err(_) => last = Some((*addr, format!("timed out after {connect_timeout:?}"))),
        }
    }
    let Some(mut upstream) = upstream else {
        let (last, reason) =
            last.unwrap_or_else(|| (SocketAddr::from(([0, 0, 0, 0], 0)), "no address".into()));
        return Err(PassthroughError::Connect {
            attempts,
            last,
            reason,
        });
    };
    let _ = upstream.set_nodelay(true);
    // An error here is a reset by one side: routine, and both are closed by dropping.
    Ok(tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .unwrap_or_default())
}
