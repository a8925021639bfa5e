//! A strict, bounds-checked reader of the TLS ClientHello, for routing a TLS connection by its
//! server name (SNI) before deciding whether to terminate it or pass it through.
//!
//! [`parse`] is a pure function over the bytes received so far, so every truncated and hostile
//! input can be table-tested; [`read_client_hello`] feeds it from a socket with size limits (the
//! caller adds a deadline). The bytes read are returned so they can be replayed: to the
//! passthrough backend, or to rustls.
//!
//! Only what routing needs is interpreted: the record layer (the ClientHello may span several
//! handshake records), the handshake header, and the ClientHello's fixed fields, which are walked
//! to reach the extensions; of those, only `server_name` is read, and every length is checked
//! against what contains it. Post-quantum key shares (X25519MLKEM768 alone is 1216 bytes) make
//! ClientHellos of 1.5 to 2 KiB normal, so the limits are generous: 16 KiB of handshake message.
//!
//! References: RFC 8446 sections 4.1.2 and 5.1, RFC 6066 section 3.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest ClientHello handshake message accepted (the record layer's maximal fragment; real
/// ones are a few KiB even with post-quantum key shares and ECH).
pub const MAX_HELLO_LEN: usize = 16 * 1024;
/// Most records a ClientHello may be split into. Real clients use one (rarely two); a peer
/// sending one-byte records could otherwise make every re-parse walk thousands of headers.
pub const MAX_RECORDS: usize = 16;
/// Most bytes buffered before giving up: the message plus record headers plus one read of
/// whatever follows it.
pub const MAX_BUFFERED: usize = MAX_HELLO_LEN + MAX_RECORDS * RECORD_HEADER_LEN + READ_CHUNK;

const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;
const READ_CHUNK: usize = 4096;
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// TLSPlaintext.length must not exceed 2^14 (RFC 8446 section 5.1).
const MAX_FRAGMENT_LEN: usize = 1 << 14;
const EXTENSION_SERVER_NAME: u16 = 0;
const SERVER_NAME_TYPE_HOST: u8 = 0;

/// What routing needs from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The server name, lowercase, without a trailing dot. `None` when the client sent none,
    /// or sent an IP address or a name that is not a DNS name (as rustls: such names are
    /// ignored, not fatal).
    pub server_name: Option<String>,
}

/// Why a connection's first bytes are not a usable ClientHello; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientHelloError {
    /// The first byte is not a TLS handshake record; `http` when it looks like a plain HTTP
    /// request (answered with a 400 like nginx's "plain HTTP request was sent to HTTPS port").
    #[error("not a TLS connection")]
    NotTls { http: bool },
    #[error("the first handshake message is not a ClientHello")]
    NotClientHello,
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    #[error(
        "ClientHello larger than {MAX_HELLO_LEN} bytes or split into more than {MAX_RECORDS} records"
    )]
    TooLarge,
    #[error("the connection closed before the ClientHello was complete")]
    Truncated,
    #[error("timed out waiting for the ClientHello")]
    Timeout,
    #[error("reading the ClientHello: {0}")]
    Io(std::io::ErrorKind),
}

/// A cursor over a byte slice whose every read is checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        if n > self.buf.len() {
            return Err(ClientHelloError::Malformed(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ClientHelloError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, ClientHelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let len = usize::from(self.u8(what)?);
        self.take(len, what)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let len = usize::from(self.u16(what)?);
        self.take(len, what)
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Parses the ClientHello at the start of `buf`.
///
/// `Ok(None)`: not enough bytes yet, read more. Errors are final. Bytes after the ClientHello
/// are allowed (and ignored).
pub fn parse(buf: &[u8]) -> Result<Option<ClientHello>, ClientHelloError> {
    let Some(message) = reassemble(buf)? else {
        return Ok(None);
    };
    parse_client_hello(&message).map(Some)
}

/// Collects the first handshake message from the handshake records at the start of `buf`.
fn reassemble(buf: &[u8]) -> Result<Option<Vec<u8>>, ClientHelloError> {
    let mut message: Vec<u8> = Vec::new();
    let mut rest = buf;
    let mut records = 0;
    loop {
        // Check what is there of the header as early as possible, so that garbage is refused
        // on its first byte instead of waiting for more.
        if let Some(&content_type) = rest.first()
            && content_type != CONTENT_TYPE_HANDSHAKE
        {
            if records == 0 {
                return Err(ClientHelloError::NotTls {
                    http: content_type.is_ascii_uppercase(),
                });
            }
            return Err(ClientHelloError::Malformed(
                "record of another type inside the ClientHello",
            ));
        }
        if let Some(&major) = rest.get(1)
            && major != 3
        {
            return Err(ClientHelloError::NotTls { http: false });
        }
        if rest.len() < RECORD_HEADER_LEN {
            return Ok(None);
        }
        let fragment_len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if fragment_len == 0 {
            // RFC 8446 section 5.1: no zero-length handshake fragments.
            return Err(ClientHelloError::Malformed("empty handshake record"));
        }
        if fragment_len > MAX_FRAGMENT_LEN {
            return Err(ClientHelloError::Malformed("record longer than 2^14 bytes"));
        }
        records += 1;
        if records > MAX_RECORDS {
            return Err(ClientHelloError::TooLarge);
        }
        let available = rest.len() - RECORD_HEADER_LEN;
        let fragment = &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + available.min(fragment_len)];
        message.extend_from_slice(fragment);

        if message.len() >= HANDSHAKE_HEADER_LEN {
            if message[0] != HANDSHAKE_CLIENT_HELLO {
                return Err(ClientHelloError::NotClientHello);
            }
            let body_len = usize::from(message[1]) << 16
                | usize::from(message[2]) << 8
                | usize::from(message[3]);
            if body_len > MAX_HELLO_LEN {
                return Err(ClientHelloError::TooLarge);
            }
            let total = HANDSHAKE_HEADER_LEN + body_len;
            if message.len() >= total {
                message.truncate(total);
                return Ok(Some(message));
            }
        } else if let Some(&kind) = message.first()
            && kind != HANDSHAKE_CLIENT_HELLO
        {
            return Err(ClientHelloError::NotClientHello);
        }
        if available < fragment_len {
            return Ok(None);
        }
        rest = &rest[RECORD_HEADER_LEN + fragment_len..];
    }
}

/// Parses a complete ClientHello handshake message (header included).
fn parse_client_hello(message: &[u8]) -> Result<ClientHello, ClientHelloError> {
    let mut r = Reader::new(message);
    r.take(HANDSHAKE_HEADER_LEN, "handshake header")?;
    let legacy_version = r.u16("legacy_version")?;
    if legacy_version >> 8 != 3 {
        return Err(ClientHelloError::Malformed("legacy_version"));
    }
    r.take(32, "random")?;
    let session_id_len = usize::from(r.u8("legacy_session_id")?);
    if session_id_len > 32 {
        return Err(ClientHelloError::Malformed(
            "legacy_session_id longer than 32",
        ));
    }
    r.take(session_id_len, "legacy_session_id")?;
    let suites = r.vec16("cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(ClientHelloError::Malformed("cipher_suites"));
    }
    if r.vec8("legacy_compression_methods")?.is_empty() {
        return Err(ClientHelloError::Malformed("legacy_compression_methods"));
    }
    if r.is_empty() {
        // A TLS 1.2 ClientHello may end here: no extensions, so no SNI.
        return Ok(ClientHello { server_name: None });
    }
    let mut extensions = Reader::new(r.vec16("extensions")?);
    if !r.is_empty() {
        return Err(ClientHelloError::Malformed("bytes after the extensions"));
    }
    let mut server_name = None;
    let mut seen: Vec<u16> = Vec::new();
    while !extensions.is_empty() {
        let kind = extensions.u16("extension type")?;
        let data = extensions.vec16("extension data")?;
        // RFC 8446 section 4.2: at most one extension of each type.
        if seen.contains(&kind) {
            return Err(ClientHelloError::Malformed("duplicate extension"));
        }
        seen.push(kind);
        if kind == EXTENSION_SERVER_NAME {
            server_name = parse_server_name(data)?;
        }
    }
    Ok(ClientHello { server_name })
}

/// The `server_name` extension's data: `ServerName server_name_list<1..2^16-1>`.
fn parse_server_name(data: &[u8]) -> Result<Option<String>, ClientHelloError> {
    let mut outer = Reader::new(data);
    let list = outer.vec16("server_name_list")?;
    if !outer.is_empty() {
        return Err(ClientHelloError::Malformed("bytes after server_name_list"));
    }
    if list.is_empty() {
        return Err(ClientHelloError::Malformed("empty server_name_list"));
    }
    let mut list = Reader::new(list);
    let mut found: Option<&[u8]> = None;
    while !list.is_empty() {
        let name_type = list.u8("server name type")?;
        if name_type != SERVER_NAME_TYPE_HOST {
            // Other name types have unknown encodings, so nothing after one can be read
            // (RFC 6066; rustls stops there too).
            break;
        }
        let name = list.vec16("host_name")?;
        if name.is_empty() {
            return Err(ClientHelloError::Malformed("empty host_name"));
        }
        // RFC 6066: "MUST NOT contain more than one name of the same name_type".
        if found.is_some() {
            return Err(ClientHelloError::Malformed("two host_names"));
        }
        found = Some(name);
    }
    Ok(found.and_then(dns_name))
}

/// The host name as routing uses it, or `None` for an IP address or a name that is not a DNS
/// name (rustls ignores those too, so both parsers reach the same decision).
fn dns_name(raw: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(raw).ok()?;
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 || name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let valid = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    valid.then(|| name.to_ascii_lowercase())
}

/// Reads from `io` until a complete ClientHello arrived. Returns it and every byte read (to be
/// replayed). Never buffers more than [`MAX_BUFFERED`]; the caller bounds the time.
pub async fn read_client_hello<S: AsyncRead + Unpin>(
    io: &mut S,
) -> Result<(ClientHello, BytesMut), ClientHelloError> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if let Some(hello) = parse(&buf)? {
            return Ok((hello, buf));
        }
        if buf.len() >= MAX_BUFFERED {
            return Err(ClientHelloError::TooLarge);
        }
        buf.reserve(READ_CHUNK.min(MAX_BUFFERED - buf.len()));
        let read = io
            .read_buf(&mut buf)
            .await
            .map_err(|e| ClientHelloError::Io(e.kind()))?;
        if read == 0 {
            return Err(ClientHelloError::Truncated);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A real ClientHello: the first flight of a rustls client offering X25519MLKEM768 first
    /// (so it sends the 1216-byte post-quantum key share), ALPN h2 and http/1.1.
    fn rustls_client_hello(server_name: &str) -> Vec<u8> {
        use rustls::crypto::aws_lc_rs;
        let provider = rustls::crypto::CryptoProvider {
            kx_groups: vec![
                aws_lc_rs::kx_group::X25519MLKEM768,
                aws_lc_rs::kx_group::X25519,
            ],
            ..aws_lc_rs::default_provider()
        };
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).expect("server name");
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).expect("write");
        }
        out
    }

    /// A handshake record (or several) around `body`, a ClientHello body.
    fn records(body: &[u8], fragment: usize) -> Vec<u8> {
        let mut message = vec![1u8];
        message.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        message.extend_from_slice(body);
        let mut out = Vec::new();
        for chunk in message.chunks(fragment) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    fn vec16(data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(data);
        out
    }

    fn sni_extension(names: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (kind, name) in names {
            list.push(*kind);
            list.extend_from_slice(&vec16(name));
        }
        let mut ext = 0u16.to_be_bytes().to_vec();
        ext.extend_from_slice(&vec16(&vec16(&list)));
        ext
    }

    /// A minimal ClientHello body with the given extensions (`None`: no extensions block).
    fn hello_body(extensions: Option<&[Vec<u8>]>) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&vec16(&[0x13, 0x01]));
        body.extend_from_slice(&[1, 0]); // compression: null
        if let Some(extensions) = extensions {
            body.extend_from_slice(&vec16(&extensions.concat()));
        }
        body
    }

    fn hello_with_sni(name: &[u8]) -> Vec<u8> {
        records(&hello_body(Some(&[sni_extension(&[(0, name)])])), 1 << 14)
    }

    fn sni(result: Result<Option<ClientHello>, ClientHelloError>) -> Option<String> {
        result.expect("parses").expect("complete").server_name
    }

    #[test]
    fn a_real_post_quantum_client_hello() {
        let hello = rustls_client_hello("Foo.Bar.com");
        assert!(
            hello.len() > 1400,
            "the X25519MLKEM768 key share makes it big: {} bytes",
            hello.len()
        );
        assert_eq!(sni(parse(&hello)).as_deref(), Some("foo.bar.com"));

        // Every truncation is "read more", never an error or a panic.
        for len in 0..hello.len() {
            assert_eq!(parse(&hello[..len]), Ok(None), "truncated at {len}");
        }
        // Trailing bytes (the next flight, already received) are fine.
        let mut longer = hello.clone();
        longer.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(sni(parse(&longer)).as_deref(), Some("foo.bar.com"));

        // The same message split over several records, at every split width.
        let body = &hello[RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN..];
        for fragment in [1500, 512, 200] {
            let split = records(body, fragment);
            assert_eq!(
                sni(parse(&split)).as_deref(),
                Some("foo.bar.com"),
                "{fragment}"
            );
            for len in 0..split.len() {
                assert_eq!(
                    parse(&split[..len]),
                    Ok(None),
                    "{fragment} truncated at {len}"
                );
            }
        }
        // Too many tiny records.
        assert_eq!(parse(&records(body, 64)), Err(ClientHelloError::TooLarge));
    }

    #[test]
    fn server_name_table() {
        type Case = (Vec<u8>, Result<Option<&'static str>, ClientHelloError>);
        let cases: Vec<Case> = vec![
            (hello_with_sni(b"a.example"), Ok(Some("a.example"))),
            (hello_with_sni(b"A.Example."), Ok(Some("a.example"))),
            (
                hello_with_sni(b"under_score.example"),
                Ok(Some("under_score.example")),
            ),
            // IP addresses and non-DNS names are ignored, as rustls does.
            (hello_with_sni(b"10.0.0.1"), Ok(None)),
            (hello_with_sni(b"::1"), Ok(None)),
            (hello_with_sni(b"a..example"), Ok(None)),
            (hello_with_sni(b"bad name"), Ok(None)),
            (hello_with_sni(b"*.example"), Ok(None)),
            (hello_with_sni(&[0xff, 0xfe]), Ok(None)),
            (hello_with_sni(&[b'a'; 300]), Ok(None)),
            (
                hello_with_sni(b""),
                Err(ClientHelloError::Malformed("empty host_name")),
            ),
            // No SNI at all: no extensions, or other extensions only.
            (records(&hello_body(None), 1 << 14), Ok(None)),
            (
                records(
                    &hello_body(Some(&[vec![0, 16, 0, 3, 2, b'h', b'2']])),
                    1 << 14,
                ),
                Ok(None),
            ),
            (
                records(
                    &hello_body(Some(&[sni_extension(&[
                        (0, b"a.example"),
                        (0, b"b.example"),
                    ])])),
                    1 << 14,
                ),
                Err(ClientHelloError::Malformed("two host_names")),
            ),
            (
                records(
                    &hello_body(Some(&[sni_extension(&[(0, b"a.example"), (9, b"zz")])])),
                    1 << 14,
                ),
                Ok(Some("a.example")),
            ),
            (
                records(
                    &hello_body(Some(&[
                        sni_extension(&[(0, b"a.example")]),
                        sni_extension(&[(0, b"b.example")]),
                    ])),
                    1 << 14,
                ),
                Err(ClientHelloError::Malformed("duplicate extension")),
            ),
        ];
        for (input, want) in cases {
            let got = parse(&input).map(|h| h.expect("complete").server_name);
            let want = want.map(|name| name.map(str::to_owned));
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn hostile_lengths_and_garbage() {
        let good = hello_with_sni(b"a.example");
        let at = |offset: usize, bytes: &[u8]| {
            let mut v = good.clone();
            v[offset..offset + bytes.len()].copy_from_slice(bytes);
            v
        };
        // Offsets in `good`: record header 0..5, handshake header 5..9, version 9..11,
        // random 11..43, session id length 43, cipher suites length 44..46.
        let cases: Vec<(Vec<u8>, ClientHelloError)> = vec![
            (
                b"GET / HTTP/1.1\r\n".to_vec(),
                ClientHelloError::NotTls { http: true },
            ),
            (
                vec![0x80, 0x2e, 0x01],
                ClientHelloError::NotTls { http: false },
            ),
            (vec![22, 2, 0], ClientHelloError::NotTls { http: false }),
            (
                vec![22, 3, 1, 0, 0],
                ClientHelloError::Malformed("empty handshake record"),
            ),
            (
                vec![22, 3, 1, 0x40, 0x01],
                ClientHelloError::Malformed("record longer than 2^14 bytes"),
            ),
            (
                vec![22, 3, 1, 0, 4, 2, 0, 0, 0],
                ClientHelloError::NotClientHello,
            ),
            (vec![22, 3, 1, 0, 1, 2], ClientHelloError::NotClientHello),
            // Handshake length over the limit, announced up front.
            (
                vec![22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff],
                ClientHelloError::TooLarge,
            ),
            (
                at(9, &[2, 0]),
                ClientHelloError::Malformed("legacy_version"),
            ),
            (
                at(43, &[33]),
                ClientHelloError::Malformed("legacy_session_id longer than 32"),
            ),
            (
                at(43, &[0xff]),
                ClientHelloError::Malformed("legacy_session_id longer than 32"),
            ),
            (
                at(43, &[32]),
                ClientHelloError::Malformed("legacy_session_id"),
            ),
            (
                at(44, &[0xff, 0xff]),
                ClientHelloError::Malformed("cipher_suites"),
            ),
            (
                at(44, &[0, 3]),
                ClientHelloError::Malformed("cipher_suites"),
            ),
            (
                at(44, &[0, 0]),
                ClientHelloError::Malformed("cipher_suites"),
            ),
            (
                at(48, &[0]),
                ClientHelloError::Malformed("legacy_compression_methods"),
            ),
            // Extensions block longer than the message.
            (
                at(50, &[0xff, 0xff]),
                ClientHelloError::Malformed("extensions"),
            ),
            // Extension data longer than the block.
            (
                at(54, &[0xff, 0xff]),
                ClientHelloError::Malformed("extension data"),
            ),
            // server_name_list longer than its extension.
            (
                at(56, &[0xff, 0xff]),
                ClientHelloError::Malformed("server_name_list"),
            ),
            // host_name longer than the list.
            (
                at(59, &[0xff, 0xff]),
                ClientHelloError::Malformed("host_name"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(&input), Err(want.clone()), "{input:?}");
        }
        // A record of another type in the middle of a split ClientHello.
        let mut split = records(
            &hello_body(Some(&[sni_extension(&[(0, b"a.example")])])),
            20,
        );
        split[25] = 23;
        assert_eq!(
            parse(&split),
            Err(ClientHelloError::Malformed(
                "record of another type inside the ClientHello"
            ))
        );
        // Random bytes never panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut v = good.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % v.len();
                v[i] = (seed >> 32) as u8;
            }
            let _ = parse(&v);
        }
    }

    #[tokio::test]
    async fn reading_from_a_stream_keeps_every_byte() {
        let hello = rustls_client_hello("stream.example");
        let mut sent = hello.clone();
        sent.extend_from_slice(b"after");
        // A small pipe: the reader gets the ClientHello in pieces.
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for chunk in sent.chunks(100) {
                // Fails once the reader is done and gone; that is fine.
                if client.write_all(chunk).await.is_err() {
                    break;
                }
            }
        });
        let (parsed, buf) = read_client_hello(&mut server).await.expect("hello");
        assert_eq!(parsed.server_name.as_deref(), Some("stream.example"));
        assert!(buf.starts_with(&hello));
        drop(server);
        writer.await.expect("writer");

        // A peer that closes early.
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        {
            use tokio::io::AsyncWriteExt;
            client.write_all(&hello[..100]).await.expect("write");
        }
        drop(client);
        assert_eq!(
            read_client_hello(&mut server).await.map(|(h, _)| h),
            Err(ClientHelloError::Truncated)
        );
    }
}
