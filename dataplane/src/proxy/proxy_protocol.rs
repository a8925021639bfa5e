//! PROXY protocol v1 (text) and v2 (binary), as sent by cloud load balancers in front of the
//! fleet when the set has `loadBalancer.proxyProtocol: true`.
//!
//! The parser is a pure function over a byte prefix ([`parse`]) so every hostile or truncated
//! input can be table-tested; [`read_proxy_header`] feeds it from a socket with a size limit, and
//! the caller adds a deadline ([`HEADER_TIMEOUT`]). Bytes read past the header (the start of the
//! HTTP request or TLS ClientHello) are handed back and replayed by [`PrefixedIo`].
//!
//! Reference: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The 12-byte signature that starts every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header is at most 107 bytes including the CRLF (spec, section 2.1).
pub const V1_MAX_LEN: usize = 107;
/// Largest v2 address-and-TLV block we accept. The format allows 65535 bytes; load balancers send
/// addresses plus a few short TLVs (AWS: VPC endpoint id; GCP: connection id), so anything larger
/// is refused rather than buffered for an unauthenticated peer.
pub const V2_MAX_PAYLOAD: usize = 4096;
/// How long a new connection may take to send its PROXY header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED_LEN: usize = 16;

/// The addresses a PROXY header carried. `None` for `UNKNOWN` (v1), `LOCAL` (v2, health checks
/// from the load balancer itself) and address families without an IP (unix sockets): the
/// connection's own peer address then stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyHeader {
    pub source: Option<SocketAddr>,
    pub destination: Option<SocketAddr>,
}

/// Why a connection's PROXY header was refused; the connection is then closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyProtocolError {
    #[error("the connection did not start with a PROXY protocol header")]
    NotProxyProtocol,
    #[error("malformed PROXY v1 header: {0}")]
    InvalidV1(&'static str),
    #[error("malformed PROXY v2 header: {0}")]
    InvalidV2(&'static str),
    #[error("PROXY v2 header of {0} bytes is over the limit")]
    TooLong(usize),
    #[error("the connection closed before the PROXY header was complete")]
    Truncated,
    #[error("timed out waiting for the PROXY header")]
    Timeout,
    #[error("reading the PROXY header: {0}")]
    Io(io::ErrorKind),
}

/// Parses a PROXY header at the start of `buf`.
///
/// `Ok(None)`: not enough bytes yet, read more. `Ok(Some((header, n)))`: the header is the first
/// `n` bytes. Errors are final: the input can never become a valid header. Invalid input is
/// detected as early as possible (a wrong first byte fails at once) so a hostile peer cannot make
/// the reader wait for bytes that would not help.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => Err(ProxyProtocolError::NotProxyProtocol),
    }
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyProtocolError> {
    let known = buf.len().min(V1_PREFIX.len());
    if buf[..known] != V1_PREFIX[..known] {
        return Err(ProxyProtocolError::NotProxyProtocol);
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if window.len() >= V1_MAX_LEN {
            return Err(ProxyProtocolError::InvalidV1("no CRLF within 107 bytes"));
        }
        if window.iter().any(|&b| !(b' '..=b'~').contains(&b)) {
            return Err(ProxyProtocolError::InvalidV1("non-printable byte"));
        }
        return Ok(None);
    };
    match window.get(cr + 1) {
        None if cr + 1 < V1_MAX_LEN => return Ok(None),
        Some(b'\n') => {}
        _ => return Err(ProxyProtocolError::InvalidV1("CR not followed by LF")),
    }
    let line = &window[..cr];
    if line.iter().any(|&b| !(b' '..=b'~').contains(&b)) {
        return Err(ProxyProtocolError::InvalidV1("non-printable byte"));
    }
    // Printable ASCII, so this cannot fail; no unwrap on network input regardless.
    let line = std::str::from_utf8(line).map_err(|_| ProxyProtocolError::InvalidV1("not ASCII"))?;
    let mut fields = line.split(' ');
    fields.next(); // "PROXY", checked above
    let header = match fields.next() {
        // "the receiver must ignore anything presented before the CRLF is found"
        Some("UNKNOWN") => ProxyHeader::default(),
        Some(proto @ ("TCP4" | "TCP6")) => {
            let v6 = proto == "TCP6";
            let src = v1_ip(fields.next(), v6)?;
            let dst = v1_ip(fields.next(), v6)?;
            let sport = v1_port(fields.next())?;
            let dport = v1_port(fields.next())?;
            if fields.next().is_some() {
                return Err(ProxyProtocolError::InvalidV1("trailing fields"));
            }
            ProxyHeader {
                source: Some(SocketAddr::new(src, sport)),
                destination: Some(SocketAddr::new(dst, dport)),
            }
        }
        _ => return Err(ProxyProtocolError::InvalidV1("unknown protocol")),
    };
    Ok(Some((header, cr + 2)))
}

fn v1_ip(field: Option<&str>, v6: bool) -> Result<IpAddr, ProxyProtocolError> {
    let field = field.ok_or(ProxyProtocolError::InvalidV1("missing address"))?;
    let ip = if v6 {
        Ipv6Addr::from_str(field).map(IpAddr::V6)
    } else {
        Ipv4Addr::from_str(field).map(IpAddr::V4)
    };
    ip.map_err(|_| ProxyProtocolError::InvalidV1("bad address"))
}

fn v1_port(field: Option<&str>) -> Result<u16, ProxyProtocolError> {
    let field = field.ok_or(ProxyProtocolError::InvalidV1("missing port"))?;
    // Digits only and no leading zero (spec: "represented as a decimal integer ... without
    // leading zeroes"), so "+80" or "080" are refused.
    let well_formed = !field.is_empty()
        && field.len() <= 5
        && field.bytes().all(|b| b.is_ascii_digit())
        && (field == "0" || !field.starts_with('0'));
    if !well_formed {
        return Err(ProxyProtocolError::InvalidV1("bad port"));
    }
    field
        .parse()
        .map_err(|_| ProxyProtocolError::InvalidV1("bad port"))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyProtocolError> {
    let known = buf.len().min(V2_SIGNATURE.len());
    if buf[..known] != V2_SIGNATURE[..known] {
        return Err(ProxyProtocolError::NotProxyProtocol);
    }
    if buf.len() < V2_FIXED_LEN {
        return Ok(None);
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyProtocolError::InvalidV2("version is not 2"));
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyProtocolError::InvalidV2("unknown command")),
    };
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX_PAYLOAD {
        return Err(ProxyProtocolError::TooLong(V2_FIXED_LEN + len));
    }
    let total = V2_FIXED_LEN + len;
    if buf.len() < total {
        return Ok(None);
    }
    let payload = &buf[V2_FIXED_LEN..total];
    if local {
        // LOCAL: the load balancer's own connection (health check); addresses are ignored.
        return Ok(Some((ProxyHeader::default(), total)));
    }
    let transport = family & 0x0f;
    if transport > 2 {
        return Err(ProxyProtocolError::InvalidV2("unknown transport"));
    }
    let header = match family >> 4 {
        // AF_UNSPEC and AF_UNIX carry no IP address.
        0 | 3 => ProxyHeader::default(),
        1 => {
            let a = payload
                .get(..12)
                .ok_or(ProxyProtocolError::InvalidV2("IPv4 block too short"))?;
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            ProxyHeader {
                source: Some(SocketAddr::new(
                    src.into(),
                    u16::from_be_bytes([a[8], a[9]]),
                )),
                destination: Some(SocketAddr::new(
                    dst.into(),
                    u16::from_be_bytes([a[10], a[11]]),
                )),
            }
        }
        2 => {
            let a = payload
                .get(..36)
                .ok_or(ProxyProtocolError::InvalidV2("IPv6 block too short"))?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&a[..16]);
            dst.copy_from_slice(&a[16..32]);
            ProxyHeader {
                source: Some(SocketAddr::new(
                    Ipv6Addr::from(src).into(),
                    u16::from_be_bytes([a[32], a[33]]),
                )),
                destination: Some(SocketAddr::new(
                    Ipv6Addr::from(dst).into(),
                    u16::from_be_bytes([a[34], a[35]]),
                )),
            }
        }
        _ => return Err(ProxyProtocolError::InvalidV2("unknown address family")),
    };
    Ok(Some((header, total)))
}

/// Reads one PROXY header from the start of `io`. Returns the header and whatever was read past
/// it, which the caller must replay before reading `io` again (see [`PrefixedIo`]). Never buffers
/// more than a maximal header plus one read. The caller bounds the time ([`HEADER_TIMEOUT`]).
pub async fn read_proxy_header<S: AsyncRead + Unpin>(
    io: &mut S,
) -> Result<(ProxyHeader, Bytes), ProxyProtocolError> {
    let mut buf = BytesMut::with_capacity(512);
    loop {
        if let Some((header, len)) = parse(&buf)? {
            buf.advance(len);
            return Ok((header, buf.freeze()));
        }
        if buf.capacity() == buf.len() {
            buf.reserve(512);
        }
        let read = io
            .read_buf(&mut buf)
            .await
            .map_err(|e| ProxyProtocolError::Io(e.kind()))?;
        if read == 0 {
            return Err(ProxyProtocolError::Truncated);
        }
    }
}

/// An I/O stream with some already-read bytes put back in front of it. Used for the bytes that
/// arrived together with a PROXY header; with an empty prefix it is a plain pass-through, so
/// listeners use one connection type whether PROXY protocol is on or not.
#[derive(Debug)]
pub struct PrefixedIo<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> PrefixedIo<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner stream; what is left of the prefix is dropped (check [`has_prefix`](Self::has_prefix)).
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Whether bytes read ahead (after the PROXY header) are still waiting to be read.
    pub fn has_prefix(&self) -> bool {
        !self.prefix.is_empty()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefixedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefixedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn sa(s: &str) -> Option<SocketAddr> {
        Some(s.parse().expect("test address"))
    }

    type Want = Result<Option<(ProxyHeader, usize)>, ProxyProtocolError>;

    #[test]
    fn v1_table() {
        use ProxyProtocolError::*;
        let ok = |src: &str, dst: &str, len: usize| -> Want {
            Ok(Some((
                ProxyHeader {
                    source: sa(src),
                    destination: sa(dst),
                },
                len,
            )))
        };
        let long_unknown = format!("PROXY UNKNOWN {}\r\n", "x".repeat(90));
        let too_long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(100));
        let cases: Vec<(&str, &[u8], Want)> = vec![
            (
                "tcp4",
                b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /",
                ok("192.0.2.1:56324", "198.51.100.2:443", 45),
            ),
            (
                "tcp6",
                b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
                ok("[2001:db8::1]:1", "[2001:db8::2]:65535", 44),
            ),
            (
                "unknown ignores the rest",
                b"PROXY UNKNOWN whatever 1 2\r\n",
                Ok(Some((ProxyHeader::default(), 28))),
            ),
            (
                "unknown alone",
                b"PROXY UNKNOWN\r\n",
                Ok(Some((ProxyHeader::default(), 15))),
            ),
            (
                "unknown at the maximum length",
                long_unknown.as_bytes(),
                Ok(Some((ProxyHeader::default(), 106))),
            ),
            ("empty", b"", Ok(None)),
            ("partial signature", b"PRO", Ok(None)),
            ("partial line", b"PROXY TCP4 192.0.2.1", Ok(None)),
            ("CR without LF yet", b"PROXY UNKNOWN\r", Ok(None)),
            ("plain HTTP", b"GET / HTTP/1.1\r\n", Err(NotProxyProtocol)),
            (
                "P but not PROXY",
                b"POST / HTTP/1.1\r\n",
                Err(NotProxyProtocol),
            ),
            ("lowercase", b"proxy TCP4", Err(NotProxyProtocol)),
            (
                "no CRLF in 107 bytes",
                too_long.as_bytes(),
                Err(InvalidV1("no CRLF within 107 bytes")),
            ),
            (
                "bare LF",
                b"PROXY UNKNOWN\n",
                Err(InvalidV1("non-printable byte")),
            ),
            (
                "CR then junk",
                b"PROXY UNKNOWN\rX",
                Err(InvalidV1("CR not followed by LF")),
            ),
            (
                "NUL byte",
                b"PROXY TCP4 \0",
                Err(InvalidV1("non-printable byte")),
            ),
            (
                "unknown protocol",
                b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
                Err(InvalidV1("unknown protocol")),
            ),
            (
                "missing fields",
                b"PROXY TCP4 192.0.2.1\r\n",
                Err(InvalidV1("missing address")),
            ),
            (
                "missing port",
                b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
                Err(InvalidV1("missing port")),
            ),
            (
                "v6 address in TCP4",
                b"PROXY TCP4 ::1 ::1 1 2\r\n",
                Err(InvalidV1("bad address")),
            ),
            (
                "v4 address in TCP6",
                b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
                Err(InvalidV1("bad address")),
            ),
            (
                "port too large",
                b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
                Err(InvalidV1("bad port")),
            ),
            (
                "port with sign",
                b"PROXY TCP4 1.2.3.4 1.2.3.4 +80 2\r\n",
                Err(InvalidV1("bad port")),
            ),
            (
                "port leading zero",
                b"PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n",
                Err(InvalidV1("bad port")),
            ),
            (
                "double space",
                b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n",
                Err(InvalidV1("bad address")),
            ),
            (
                "trailing field",
                b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
                Err(InvalidV1("trailing fields")),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse(input), want, "case {name:?}");
        }
    }

    #[test]
    fn v2_table() {
        use ProxyProtocolError::*;
        let mut v4 = vec![192, 0, 2, 1, 198, 51, 100, 2];
        v4.extend_from_slice(&56324u16.to_be_bytes());
        v4.extend_from_slice(&443u16.to_be_bytes());
        let mut v6 = Vec::new();
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().expect("v6").octets());
        v6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().expect("v6").octets());
        v6.extend_from_slice(&1u16.to_be_bytes());
        v6.extend_from_slice(&2u16.to_be_bytes());
        let mut v4_tlv = v4.clone();
        v4_tlv.extend_from_slice(&[0xEA, 0x00, 0x03, b'v', b'p', b'c']);

        let tcp4 = v2(1, 0x11, &v4);
        let tcp4_tlv = v2(1, 0x11, &v4_tlv);
        let tcp6 = v2(1, 0x21, &v6);
        let local = v2(0, 0x00, &[]);
        let local_with_addr = v2(0, 0x11, &v4);
        let unix = v2(1, 0x31, &[0u8; 216]);
        let unspec = v2(1, 0x00, &[]);
        let short_v4 = v2(1, 0x11, &v4[..11]);
        let short_v6 = v2(1, 0x21, &v6[..35]);
        let bad_family = v2(1, 0x41, &v4);
        let bad_transport = v2(1, 0x13, &v4);
        let bad_command = v2(2, 0x11, &v4);
        let mut bad_version = tcp4.clone();
        bad_version[12] = 0x11;
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let mut bad_signature = tcp4.clone();
        bad_signature[6] = b'X';

        let want4 = ProxyHeader {
            source: sa("192.0.2.1:56324"),
            destination: sa("198.51.100.2:443"),
        };
        let cases: Vec<(&str, &[u8], Want)> = vec![
            ("tcp4", &tcp4, Ok(Some((want4, 28)))),
            ("tcp4 with a TLV", &tcp4_tlv, Ok(Some((want4, 34)))),
            (
                "tcp6",
                &tcp6,
                Ok(Some((
                    ProxyHeader {
                        source: sa("[2001:db8::1]:1"),
                        destination: sa("[2001:db8::2]:2"),
                    },
                    52,
                ))),
            ),
            ("local", &local, Ok(Some((ProxyHeader::default(), 16)))),
            (
                "local ignores addresses",
                &local_with_addr,
                Ok(Some((ProxyHeader::default(), 28))),
            ),
            (
                "unix has no IP",
                &unix,
                Ok(Some((ProxyHeader::default(), 232))),
            ),
            ("unspec", &unspec, Ok(Some((ProxyHeader::default(), 16)))),
            ("signature only", &tcp4[..12], Ok(None)),
            ("partial signature", &tcp4[..5], Ok(None)),
            ("fixed part, no payload yet", &tcp4[..16], Ok(None)),
            ("payload truncated", &tcp4[..27], Ok(None)),
            (
                "IPv4 block too short",
                &short_v4,
                Err(InvalidV2("IPv4 block too short")),
            ),
            (
                "IPv6 block too short",
                &short_v6,
                Err(InvalidV2("IPv6 block too short")),
            ),
            (
                "unknown family",
                &bad_family,
                Err(InvalidV2("unknown address family")),
            ),
            (
                "unknown transport",
                &bad_transport,
                Err(InvalidV2("unknown transport")),
            ),
            (
                "unknown command",
                &bad_command,
                Err(InvalidV2("unknown command")),
            ),
            (
                "version 1 in binary form",
                &bad_version,
                Err(InvalidV2("version is not 2")),
            ),
            ("length over the limit", &huge, Err(TooLong(16 + 65535))),
            ("bad signature", &bad_signature, Err(NotProxyProtocol)),
            (
                "TLS ClientHello",
                &[0x16, 0x03, 0x01, 0x00],
                Err(NotProxyProtocol),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse(input), want, "case {name:?}");
        }
    }

    #[test]
    fn every_prefix_of_a_valid_header_asks_for_more() {
        let v1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec();
        let mut payload = vec![192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2];
        payload.extend_from_slice(&[0xEA, 0x00, 0x01, 0x00]);
        let v2 = v2(1, 0x11, &payload);
        for header in [v1, v2] {
            for end in 0..header.len() {
                assert_eq!(parse(&header[..end]), Ok(None), "prefix of {end} bytes");
            }
            assert!(matches!(parse(&header), Ok(Some((_, n))) if n == header.len()));
        }
    }

    #[tokio::test]
    async fn reader_returns_the_bytes_after_the_header() {
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\nGET / HTTP/1.1\r\n";
        let (header, rest) = read_proxy_header(&mut input).await.expect("header");
        assert_eq!(header.source, sa("192.0.2.1:1"));
        let mut io = PrefixedIo::new(rest, input);
        let mut replayed = String::new();
        io.read_to_string(&mut replayed).await.expect("read");
        assert_eq!(replayed, "GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn reader_errors() {
        let mut truncated: &[u8] = b"PROXY TCP4 192.0.2.1";
        assert_eq!(
            read_proxy_header(&mut truncated).await,
            Err(ProxyProtocolError::Truncated)
        );
        let mut http: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            read_proxy_header(&mut http).await,
            Err(ProxyProtocolError::NotProxyProtocol)
        );
        // A never-ending v1 line stops at the length limit instead of buffering forever.
        let endless = vec![b'A'; 10_000];
        let mut input: &[u8] = &[b"PROXY ".as_slice(), endless.as_slice()].concat();
        assert!(matches!(
            read_proxy_header(&mut input).await,
            Err(ProxyProtocolError::InvalidV1(_))
        ));
    }
}
