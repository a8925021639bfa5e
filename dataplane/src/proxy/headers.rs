//! Request and response header rewriting, the client address (ingress-nginx's realip rules) and
//! `X-Request-ID`. Pure functions over `HeaderMap`s, table-tested below.
//!
//! What the upstream sees (ingress-nginx's `proxy_set_header` list):
//!
//! | header | value |
//! | --- | --- |
//! | `Host` | the host the request was routed on (absolute-form authority, else `Host`) |
//! | `X-Request-ID` | the client's, when it is a sane token; else 32 random hex digits |
//! | `X-Real-IP` | the client address (see [`Forwarding`]) |
//! | `X-Forwarded-For` | trusted: the incoming chain plus the address that connected; else the client address |
//! | `X-Forwarded-Proto`, `X-Forwarded-Scheme`, `X-Scheme` | trusted and present: the incoming value; else `http`/`https` |
//! | `X-Forwarded-Host` | trusted and present: the incoming value; else the routed host |
//! | `X-Forwarded-Port` | trusted and present: the incoming value; else the port the client used (80/443 by default) |
//!
//! "Trusted" means `use-forwarded-headers` is on *and* the address that sent the headers is in
//! `proxy-real-ip-cidr` (ingress-nginx checks the CIDRs only for the client address; checking
//! them for every forwarded header means narrowing the CIDRs really narrows whom we believe).
//! Untrusted requests lose every incoming `X-Forwarded-*` and `X-Real-IP` header, so a client
//! cannot spoof its address or scheme to the application.

use std::borrow::Cow;
use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use http::header::{self, Entry, HeaderName, HeaderValue};
use sluice_crds::dataplane_config::{DataplaneConfig, IpCidr};

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `x-forwarded-proto`, for readers outside this module.
pub(crate) const X_FORWARDED_PROTO_NAME: &str = "x-forwarded-proto";
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_SCHEME: HeaderName = HeaderName::from_static("x-forwarded-scheme");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Longest incoming `X-Request-ID` passed on; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 200;

/// Who the client is and whether its forwarding headers are believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Forwarding {
    /// The client address: `X-Real-IP`, the access log's `remote_addr`.
    pub client_ip: IpAddr,
    /// The address that sent us this request: the PROXY protocol source when there is one
    /// (the load balancer only relays), else the TCP peer. Appended to a trusted
    /// `X-Forwarded-For` chain.
    pub immediate: IpAddr,
    /// `use-forwarded-headers` is on and `immediate` is in `proxy-real-ip-cidr`.
    pub trusted: bool,
}

/// Decides [`Forwarding`] as ingress-nginx's realip module does: when `enable-real-ip` or
/// `use-forwarded-headers` is on and the sender is trusted, the client is the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (`real_ip_recursive on`); if every
/// entry is trusted, the left-most. An unparsable entry stops the walk (the address to its right
/// stands), so garbage cannot choose the client address.
pub(crate) fn forwarding(
    headers: &HeaderMap,
    peer: SocketAddr,
    proxy_protocol_src: Option<SocketAddr>,
    config: &DataplaneConfig,
) -> Forwarding {
    let immediate = proxy_protocol_src.unwrap_or(peer).ip();
    let cidrs = &config.proxy_real_ip_cidr;
    let sender_trusted = is_trusted(cidrs, immediate);
    let trusted = config.use_forwarded_headers && sender_trusted;
    let mut client_ip = immediate;
    if (config.use_forwarded_headers || config.enable_real_ip) && sender_trusted {
        'walk: for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
            let Ok(value) = value.to_str() else { break };
            for entry in value.rsplit(',') {
                let Some(ip) = parse_forwarded_ip(entry.trim()) else {
                    break 'walk;
                };
                client_ip = ip;
                if !is_trusted(cidrs, ip) {
                    break 'walk;
                }
            }
        }
    }
    Forwarding {
        client_ip,
        immediate,
        trusted,
    }
}

fn is_trusted(cidrs: &[IpCidr], ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    cidrs.iter().any(|c| c.contains(ip))
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) compared as IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An `X-Forwarded-For` entry: an IP, or an IP with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical_ip)
}

/// Everything [`rewrite_request`] needs besides the headers themselves.
pub(crate) struct RequestFacts<'a> {
    pub forwarding: Forwarding,
    /// The host the request was routed on, as the client sent it (port included).
    pub host: Option<&'a HeaderValue>,
    pub tls: bool,
    /// The port the client connected to, as it sees it (the Service's, not the pod's).
    pub external_port: u16,
    pub request_id: &'a HeaderValue,
    /// An HTTP/1.1 `Upgrade` (WebSocket) request: keep `Upgrade` and `Connection: upgrade`.
    pub upgrade: bool,
}

/// Rewrites the client's request headers in place into what the upstream gets.
pub(crate) fn rewrite_request(headers: &mut HeaderMap, facts: &RequestFacts<'_>) {
    let upgrade_value = if facts.upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    remove_hop_by_hop(headers);
    // The ingress answers `Expect: 100-continue` itself (hyper sends 100 when the body is first
    // read); passing it on would make a strict upstream wait for a 100 that nobody relays.
    headers.remove(header::EXPECT);
    if let Some(upgrade) = upgrade_value {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }

    let fwd = facts.forwarding;
    let scheme = if facts.tls { "https" } else { "http" };

    // Read the incoming forwarded values we may keep before removing the rest.
    let incoming = |name: &HeaderName| {
        if fwd.trusted {
            headers.get(name).cloned()
        } else {
            None
        }
    };
    let proto = incoming(&X_FORWARDED_PROTO).unwrap_or(HeaderValue::from_static(scheme));
    let fwd_host = incoming(&X_FORWARDED_HOST).or_else(|| facts.host.cloned());
    let port = incoming(&X_FORWARDED_PORT).unwrap_or_else(|| port_value(facts.external_port));
    let real_ip = ip_value(fwd.client_ip);
    let xff = if fwd.trusted {
        appended_xff(headers, fwd.immediate)
    } else {
        real_ip.clone()
    };

    if !fwd.trusted {
        remove_x_forwarded(headers);
    }
    headers.insert(X_REAL_IP.clone(), real_ip);
    headers.insert(X_FORWARDED_FOR.clone(), xff);
    headers.insert(X_FORWARDED_PROTO.clone(), proto.clone());
    headers.insert(X_FORWARDED_SCHEME.clone(), proto.clone());
    headers.insert(X_SCHEME.clone(), proto);
    match fwd_host {
        Some(h) => headers.insert(X_FORWARDED_HOST.clone(), h),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    headers.insert(X_FORWARDED_PORT.clone(), port);
    headers.insert(X_REQUEST_ID.clone(), facts.request_id.clone());
    if let Some(host) = facts.host {
        headers.insert(header::HOST, host.clone());
    }
}

/// Joins several `Cookie` fields into one with `"; "`, as RFC 9113 section 8.2.3 requires when
/// an HTTP/2 request goes on as HTTP/1.1. One field or none is left as it is.
pub(crate) fn merge_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::COOKIE).iter();
    if values.next().is_none() || values.next().is_none() {
        return;
    }
    let mut joined: Vec<u8> = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    // Valid header bytes joined by "; " are valid header bytes.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// `incoming, chain, immediate` from every `X-Forwarded-For` line, or just `immediate`.
fn appended_xff(headers: &HeaderMap, immediate: IpAddr) -> HeaderValue {
    let mut chain = String::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        let Ok(value) = value.to_str() else { continue };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        chain.push_str(value);
        chain.push_str(", ");
    }
    if chain.is_empty() {
        return ip_value(immediate);
    }
    chain.push_str(&canonical_ip(immediate).to_string());
    // Built from a visible-ASCII header value plus an IP, so always valid; stay total anyway.
    HeaderValue::try_from(chain).unwrap_or_else(|_| ip_value(immediate))
}

fn ip_value(ip: IpAddr) -> HeaderValue {
    // Formatting an address showed in the profile, and consecutive requests on a thread mostly
    // come from the same client (keep-alive, or the load balancer): remember the last one. A
    // clone shares the bytes.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    let ip = canonical_ip(ip);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((cached, value)) = last.as_ref()
            && *cached == ip
        {
            return value.clone();
        }
        // An IP's text form is always a valid header value.
        let value = HeaderValue::try_from(ip.to_string()).unwrap_or(HeaderValue::from_static(""));
        *last = Some((ip, value.clone()));
        value
    })
}

/// `X-Forwarded-Port`: the usual ports without formatting.
fn port_value(port: u16) -> HeaderValue {
    match port {
        80 => HeaderValue::from_static("80"),
        443 => HeaderValue::from_static("443"),
        port => HeaderValue::from(port),
    }
}

fn remove_x_forwarded(headers: &mut HeaderMap) {
    // Collect first: a HeaderMap cannot be edited while iterated. Usually nothing matches and
    // nothing is allocated.
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-forwarded-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Removes hop-by-hop headers (RFC 9110 section 7.6.1): those named by `Connection`, and the
/// fixed list. Applied to both directions; the proxy re-adds `Connection`/`Upgrade` for
/// upgrades.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect();
        for name in named {
            // Never let `Connection: host` (or the like) strip end-to-end headers we rely on.
            if name != header::HOST && name != X_REQUEST_ID {
                headers.remove(name);
            }
        }
        headers.remove(header::CONNECTION);
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::UPGRADE);
}

/// Rewrites an upstream response's headers for the client. A `101 Switching Protocols` keeps
/// its `Upgrade`/`Connection` (the handshake needs them); everything else loses its hop-by-hop
/// headers. The request id is added unless the upstream set its own; either way it is kept out
/// of HPACK's table (see [`request_id`]).
pub(crate) fn rewrite_response(headers: &mut HeaderMap, switching: bool, request_id: &HeaderValue) {
    if switching {
        let upgrade = headers.get(header::UPGRADE).cloned();
        remove_hop_by_hop(headers);
        if let Some(upgrade) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, upgrade);
        }
    } else {
        remove_hop_by_hop(headers);
    }
    match headers.entry(&X_REQUEST_ID) {
        Entry::Occupied(mut own) => own.get_mut().set_sensitive(true),
        Entry::Vacant(slot) => {
            slot.insert(request_id.clone());
        }
    }
}

/// True for an HTTP/1.1 upgrade request: `Connection` lists `upgrade` and `Upgrade` is set.
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// The client's `X-Request-ID` when it is a sane token (1 to 200 visible ASCII characters),
/// else a new one. Like ingress-nginx, a client-supplied id is kept so traces can span hops.
///
/// Marked sensitive, which HTTP/2 sends as a never-indexed literal: a value unique to each
/// request gains nothing from HPACK's dynamic table, and inserting one per response evicted
/// the entries that repeat (server, content-type) while h2's encoder compared it with every
/// earlier id still in the table (perf, HTTP/2 with 1 KiB bodies: HPACK encoding went from
/// 4.4% to 3.2% of the proxy's CPU). Its `Debug` shows "Sensitive"; log it with `to_str`.
pub(crate) fn request_id(headers: &HeaderMap) -> HeaderValue {
    let mut id = match headers.get(&X_REQUEST_ID) {
        Some(v)
            if !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LEN
                && v.as_bytes().iter().all(|b| (b'!'..=b'~').contains(b)) =>
        {
            v.clone()
        }
        _ => new_request_id(),
    };
    id.set_sensitive(true);
    id
}

/// 32 lowercase hex digits (128 bits), like nginx's `$request_id`.
///
/// From a per-thread SplitMix64 stream whose seed comes from std's `RandomState` (keys from the
/// OS's randomness) mixed with the time and a global counter: unpredictable enough for an
/// identifier, no lock, no system call per request, and no extra crate. Not for secrets.
pub(crate) fn new_request_id() -> HeaderValue {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    let (a, b) = STATE.with(|state| {
        let mut s = state.get();
        let a = splitmix64(&mut s);
        let b = splitmix64(&mut s);
        state.set(s);
        (a, b)
    });
    let mut out = [0u8; 32];
    hex_into(&mut out[..16], a);
    hex_into(&mut out[16..], b);
    // Hex digits are valid header bytes.
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("0"))
}

fn seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    hasher.write_u64(now);
    hasher.finish()
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hex_into(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// Why a request target is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path does not start with '/'")]
    NotAbsolute,
    #[error("the request path has an invalid percent-encoding")]
    BadEscape,
    #[error("the request path climbs above the root")]
    AboveRoot,
}

/// Normalises a request path (no query) for matching *and* forwarding:
///
/// * percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded (RFC 3986
///   section 6.2.2.2: equivalent URIs); other escapes, `%2F` included, are kept as sent;
/// * runs of `/` are merged (nginx's `merge_slashes on`);
/// * `.` and `..` segments are resolved; `..` above the root is a 400, as in nginx.
///
/// nginx matches on its normalised `$uri` but forwards the raw request line; we forward what we
/// matched on, so `//admin` or `/%61dmin` can never reach a backend as `/admin` through a
/// route meant for `/`. Borrows (no allocation) when the path is already normal, the common
/// case.
pub(crate) fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let needs_work = bytes.contains(&b'%') || bytes.windows(2).any(|w| w == b"//" || w == b"/.");
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }

    // 1. Decode unreserved escapes.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
            let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let byte = hi << 4 | lo;
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                decoded.push(byte);
            } else {
                decoded.extend_from_slice(&bytes[i..i + 3]);
            }
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }

    // 2. Merge slashes and resolve dot segments. Segments are between slashes; the path starts
    // with '/', so the first split element is empty and skipped.
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded[1..].split(|&b| b == b'/') {
        trailing_slash = false;
        match segment {
            b"" => trailing_slash = true,
            b"." => trailing_slash = true,
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push(b'/');
    }
    if out == bytes {
        // `/.well-known/...` and the like: nothing changed, forward the original.
        return Ok(Cow::Borrowed(path));
    }
    // Only ASCII bytes were decoded and the input was valid UTF-8, so the output is too.
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::BadEscape)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Host validation in the spirit of nginx's `ngx_http_validate_host`: no path separators,
/// control characters, spaces or `..`. A bad Host is a 400, never routed.
pub(crate) fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && !host.contains("..")
        && !host.starts_with('.')
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(use_forwarded: bool, real_ip: bool, cidrs: &[&str]) -> DataplaneConfig {
        let mut c = DataplaneConfig {
            use_forwarded_headers: use_forwarded,
            enable_real_ip: real_ip,
            ..DataplaneConfig::default()
        };
        if !cidrs.is_empty() {
            c.proxy_real_ip_cidr = cidrs.iter().map(|s| s.parse().expect("cidr")).collect();
        }
        c
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    struct FwdCase {
        name: &'static str,
        config: DataplaneConfig,
        xff: &'static [&'static str],
        peer: &'static str,
        pp: Option<&'static str>,
        client: &'static str,
        trusted: bool,
    }

    #[test]
    fn http2_cookie_fields_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("c=3"));
        merge_cookies(&mut headers);
        let values: Vec<_> = headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(values, ["a=1; b=2; c=3"]);

        let mut one = HeaderMap::new();
        one.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        merge_cookies(&mut one);
        assert_eq!(one[header::COOKIE], "a=1; b=2");
        let mut none = HeaderMap::new();
        merge_cookies(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn forwarding_table() {
        let cases = [
            FwdCase {
                name: "defaults: XFF ignored, the peer is the client",
                config: config(false, false, &[]),
                xff: &["203.0.113.7"],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "10.0.0.5",
                trusted: false,
            },
            FwdCase {
                name: "use-forwarded-headers, default CIDR trusts all: first untrusted from the right is... every address is trusted, so the left-most",
                config: config(true, false, &[]),
                xff: &["203.0.113.7, 198.51.100.1"],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "203.0.113.7",
                trusted: true,
            },
            FwdCase {
                name: "trusted LB: right-most untrusted entry is the client",
                config: config(true, false, &["10.0.0.0/8"]),
                xff: &["1.1.1.1, 203.0.113.7, 10.1.1.1"],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "203.0.113.7",
                trusted: true,
            },
            FwdCase {
                name: "untrusted peer: XFF ignored even with use-forwarded-headers",
                config: config(true, false, &["10.0.0.0/8"]),
                xff: &["1.1.1.1"],
                peer: "192.0.2.9:4000",
                pp: None,
                client: "192.0.2.9",
                trusted: false,
            },
            FwdCase {
                name: "enable-real-ip alone: client from XFF, other headers untrusted",
                config: config(false, true, &["10.0.0.0/8"]),
                xff: &["203.0.113.7"],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "203.0.113.7",
                trusted: false,
            },
            FwdCase {
                name: "several XFF lines are one list, walked from the last",
                config: config(true, false, &["10.0.0.0/8"]),
                xff: &["203.0.113.7", "10.2.2.2"],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "203.0.113.7",
                trusted: true,
            },
            FwdCase {
                name: "garbage stops the walk at the last good address",
                config: config(true, false, &["10.0.0.0/8"]),
                xff: &["1.1.1.1, not-an-ip, 10.3.3.3"],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "10.3.3.3",
                trusted: true,
            },
            FwdCase {
                name: "entries with ports",
                config: config(true, false, &["10.0.0.0/8"]),
                xff: &["203.0.113.7:5555, [2001:db8::1]:80"],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "2001:db8::1",
                trusted: true,
            },
            FwdCase {
                name: "PROXY protocol source is the client by default",
                config: config(false, false, &[]),
                xff: &["1.1.1.1"],
                peer: "10.0.0.5:4000",
                pp: Some("203.0.113.7:1234"),
                client: "203.0.113.7",
                trusted: false,
            },
            FwdCase {
                name: "PROXY source trusted: XFF from a CDN behind it is walked",
                config: config(true, false, &["198.51.100.0/24"]),
                xff: &["203.0.113.7"],
                peer: "10.0.0.5:4000",
                pp: Some("198.51.100.3:1234"),
                client: "203.0.113.7",
                trusted: true,
            },
            FwdCase {
                name: "IPv4-mapped peer matches an IPv4 CIDR",
                config: config(true, false, &["10.0.0.0/8"]),
                xff: &["203.0.113.7"],
                peer: "[::ffff:10.0.0.5]:4000",
                pp: None,
                client: "203.0.113.7",
                trusted: true,
            },
            FwdCase {
                name: "no XFF: the peer",
                config: config(true, true, &[]),
                xff: &[],
                peer: "10.0.0.5:4000",
                pp: None,
                client: "10.0.0.5",
                trusted: true,
            },
        ];
        for case in cases {
            let h = headers(
                &case
                    .xff
                    .iter()
                    .map(|v| ("x-forwarded-for", *v))
                    .collect::<Vec<_>>(),
            );
            let f = forwarding(&h, sa(case.peer), case.pp.map(sa), &case.config);
            assert_eq!(canonical_ip(f.client_ip), ip(case.client), "{}", case.name);
            assert_eq!(f.trusted, case.trusted, "{}", case.name);
        }
    }

    struct RewriteCase {
        name: &'static str,
        trusted: bool,
        tls: bool,
        upgrade: bool,
        input: &'static [(&'static str, &'static str)],
        want: &'static [(&'static str, Option<&'static str>)],
    }

    #[test]
    fn rewrite_request_table() {
        let cases = [
            RewriteCase {
                name: "untrusted: spoofed forwarding headers replaced or dropped",
                trusted: false,
                tls: false,
                upgrade: false,
                input: &[
                    ("host", "app.example.com"),
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-port", "1"),
                    ("x-forwarded-prefix", "/evil"),
                    ("x-real-ip", "6.6.6.6"),
                    ("accept", "*/*"),
                ],
                want: &[
                    ("host", Some("app.example.com")),
                    ("x-forwarded-for", Some("192.0.2.10")),
                    ("x-real-ip", Some("192.0.2.10")),
                    ("x-forwarded-proto", Some("http")),
                    ("x-scheme", Some("http")),
                    ("x-forwarded-host", Some("app.example.com")),
                    ("x-forwarded-port", Some("80")),
                    ("x-forwarded-prefix", None),
                    ("x-request-id", Some("rid")),
                    ("accept", Some("*/*")),
                ],
            },
            RewriteCase {
                name: "trusted: chain appended, incoming proto/host/port kept",
                trusted: true,
                tls: false,
                upgrade: false,
                input: &[
                    ("host", "app.example.com"),
                    ("x-forwarded-for", "203.0.113.7, 198.51.100.1"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "www.example.com"),
                    ("x-forwarded-port", "443"),
                    ("x-forwarded-prefix", "/app"),
                ],
                want: &[
                    (
                        "x-forwarded-for",
                        Some("203.0.113.7, 198.51.100.1, 10.0.0.5"),
                    ),
                    ("x-real-ip", Some("192.0.2.10")),
                    ("x-forwarded-proto", Some("https")),
                    ("x-forwarded-scheme", Some("https")),
                    ("x-forwarded-host", Some("www.example.com")),
                    ("x-forwarded-port", Some("443")),
                    ("x-forwarded-prefix", Some("/app")),
                ],
            },
            RewriteCase {
                name: "trusted without incoming headers: own values",
                trusted: true,
                tls: true,
                upgrade: false,
                input: &[("host", "app.example.com")],
                want: &[
                    ("x-forwarded-for", Some("10.0.0.5")),
                    ("x-forwarded-proto", Some("https")),
                    ("x-forwarded-port", Some("443")),
                ],
            },
            RewriteCase {
                name: "hop-by-hop headers removed, including those Connection names",
                trusted: false,
                tls: false,
                upgrade: false,
                input: &[
                    ("host", "h"),
                    ("connection", "keep-alive, x-secret, host"),
                    ("keep-alive", "timeout=5"),
                    ("x-secret", "s"),
                    ("te", "trailers"),
                    ("trailer", "x"),
                    ("transfer-encoding", "chunked"),
                    ("proxy-connection", "keep-alive"),
                    ("upgrade", "websocket"),
                    ("expect", "100-continue"),
                ],
                want: &[
                    ("connection", None),
                    ("keep-alive", None),
                    ("x-secret", None),
                    ("te", None),
                    ("trailer", None),
                    ("transfer-encoding", None),
                    ("proxy-connection", None),
                    ("upgrade", None),
                    ("expect", None),
                    ("host", Some("h")),
                ],
            },
            RewriteCase {
                name: "upgrade keeps Upgrade and Connection: upgrade",
                trusted: false,
                tls: false,
                upgrade: true,
                input: &[
                    ("host", "h"),
                    ("connection", "Upgrade, keep-alive"),
                    ("upgrade", "websocket"),
                    ("sec-websocket-key", "k"),
                ],
                want: &[
                    ("connection", Some("upgrade")),
                    ("upgrade", Some("websocket")),
                    ("sec-websocket-key", Some("k")),
                ],
            },
            RewriteCase {
                name: "client request id passed through",
                trusted: false,
                tls: false,
                upgrade: false,
                input: &[("host", "h"), ("x-request-id", "from-client")],
                want: &[("x-request-id", Some("rid"))],
            },
        ];
        let rid = HeaderValue::from_static("rid");
        for case in cases {
            let mut h = headers(case.input);
            let host = h.get(header::HOST).cloned();
            let facts = RequestFacts {
                forwarding: Forwarding {
                    client_ip: ip("192.0.2.10"),
                    immediate: ip("10.0.0.5"),
                    trusted: case.trusted,
                },
                host: host.as_ref(),
                tls: case.tls,
                external_port: if case.tls { 443 } else { 80 },
                request_id: &rid,
                upgrade: case.upgrade,
            };
            rewrite_request(&mut h, &facts);
            for (name, want) in case.want {
                let got = h.get(*name).map(|v| v.to_str().expect("ascii"));
                assert_eq!(got, *want, "{}: header {name}", case.name);
            }
            assert_eq!(
                h.get_all(X_FORWARDED_FOR.clone()).iter().count(),
                1,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn hop_by_hop_table() {
        // (case, headers in, names left)
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                "none",
                &[("host", "h"), ("accept", "*/*")],
                &["host", "accept"],
            ),
            (
                "connection alone",
                &[("connection", "keep-alive"), ("a", "1")],
                &["a"],
            ),
            (
                "keep-alive alone",
                &[("keep-alive", "timeout=5"), ("a", "1")],
                &["a"],
            ),
            (
                "proxy-connection alone",
                &[("proxy-connection", "x"), ("a", "1")],
                &["a"],
            ),
            ("te alone", &[("te", "trailers"), ("a", "1")], &["a"]),
            ("trailer alone", &[("trailer", "x-t"), ("a", "1")], &["a"]),
            (
                "transfer-encoding alone",
                &[("transfer-encoding", "chunked"), ("a", "1")],
                &["a"],
            ),
            (
                "upgrade alone",
                &[("upgrade", "websocket"), ("a", "1")],
                &["a"],
            ),
            (
                "named by connection, across lines and case",
                &[
                    ("connection", "X-One , close"),
                    ("connection", "x-two"),
                    ("x-one", "1"),
                    ("x-two", "2"),
                    ("x-three", "3"),
                ],
                &["x-three"],
            ),
            (
                "connection cannot strip host or the request id",
                &[
                    ("connection", "host, x-request-id"),
                    ("host", "h"),
                    ("x-request-id", "r"),
                ],
                &["host", "x-request-id"],
            ),
            (
                "a name that is no header name is skipped",
                &[
                    ("connection", "bad name, x-one"),
                    ("x-one", "1"),
                    ("a", "1"),
                ],
                &["a"],
            ),
            (
                "every fixed name at once",
                &[
                    ("upgrade", "h2c"),
                    ("te", "trailers"),
                    ("connection", "upgrade, keep-alive, te"),
                    ("keep-alive", "1"),
                    ("trailer", "x"),
                    ("transfer-encoding", "chunked"),
                    ("proxy-connection", "close"),
                    ("content-type", "text/plain"),
                ],
                &["content-type"],
            ),
        ];
        for (case, input, left) in cases {
            let mut h = headers(input);
            remove_hop_by_hop(&mut h);
            let mut got: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
            let mut want = left.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn response_rewrite() {
        let rid = HeaderValue::from_static("rid");
        let mut h = headers(&[
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ]);
        rewrite_response(&mut h, false, &rid);
        assert!(h.get("connection").is_none() && h.get("keep-alive").is_none());
        assert!(h.get("transfer-encoding").is_none());
        assert_eq!(h["x-request-id"], "rid");
        assert_eq!(h["content-type"], "text/plain");

        let mut h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("x-request-id", "up"),
        ]);
        rewrite_response(&mut h, true, &rid);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["x-request-id"], "up", "the upstream's own id is kept");
        assert!(h["x-request-id"].is_sensitive(), "never indexed by HPACK");
    }

    #[test]
    fn upgrade_detection_table() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("connection", "Upgrade"), ("upgrade", "websocket")], true),
            (
                &[
                    ("connection", "keep-alive, upgrade"),
                    ("upgrade", "websocket"),
                ],
                true,
            ),
            (
                &[("connection", "keep-alive"), ("upgrade", "websocket")],
                false,
            ),
            (&[("connection", "upgrade")], false),
            (&[], false),
        ];
        for (input, want) in cases {
            assert_eq!(is_upgrade_request(&headers(input)), *want, "{input:?}");
        }
    }

    #[test]
    fn request_id_table() {
        let long = "a".repeat(201);
        let cases: &[(Option<&str>, bool)] = &[
            (Some("abc-123"), true),
            (Some("a".repeat(200).leak()), true),
            (Some(long.as_str()), false),
            (Some("has space"), false),
            (Some(""), false),
            (None, false),
        ];
        for (incoming, kept) in cases {
            let h = match incoming {
                Some(v) => headers(&[("x-request-id", v)]),
                None => HeaderMap::new(),
            };
            let id = request_id(&h);
            assert!(id.is_sensitive(), "never indexed by HPACK: {incoming:?}");
            if *kept {
                assert_eq!(Some(id.to_str().expect("ascii")), *incoming);
            } else {
                assert_eq!(id.len(), 32, "{incoming:?}");
            }
        }
    }

    #[test]
    fn generated_request_ids_are_32_hex_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_request_id();
            let s = id.to_str().expect("ascii").to_owned();
            assert_eq!(s.len(), 32);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{s}"
            );
            assert!(seen.insert(s), "duplicate id");
        }
        let other_thread =
            std::thread::spawn(|| new_request_id().to_str().expect("ascii").to_owned())
                .join()
                .expect("thread");
        assert!(
            !seen.contains(&other_thread),
            "threads use different streams"
        );
    }

    #[test]
    fn normalize_path_table() {
        use PathError::*;
        let cases: &[(&str, Result<&str, PathError>)] = &[
            ("/", Ok("/")),
            ("/foo/bar", Ok("/foo/bar")),
            ("/foo/", Ok("/foo/")),
            ("//admin", Ok("/admin")),
            ("/a//b///c", Ok("/a/b/c")),
            ("/%61dmin", Ok("/admin")),
            ("/a%2Fb", Ok("/a%2Fb")),
            ("/a%20b", Ok("/a%20b")),
            ("/%7Euser", Ok("/~user")),
            ("/a/./b", Ok("/a/b")),
            ("/a/b/..", Ok("/a/")),
            ("/a/b/../c", Ok("/a/c")),
            ("/a/%2e%2e/b", Ok("/b")),
            ("/a/.", Ok("/a/")),
            ("/.hidden", Ok("/.hidden")),
            ("/a/..b", Ok("/a/..b")),
            ("/..", Err(AboveRoot)),
            ("/a/../..", Err(AboveRoot)),
            ("/%2e%2e/etc", Err(AboveRoot)),
            ("/%zz", Err(BadEscape)),
            ("/%4", Err(BadEscape)),
            ("/%", Err(BadEscape)),
            ("*", Err(NotAbsolute)),
            ("foo", Err(NotAbsolute)),
            ("", Err(NotAbsolute)),
            ("/\u{e9}t\u{e9}//x", Ok("/\u{e9}t\u{e9}/x")),
        ];
        for (input, want) in cases {
            let got = normalize_path(input);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{input:?}");
        }
        assert!(matches!(
            normalize_path("/plain/path"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            normalize_path("/.well-known/acme-challenge/t"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn host_validation_table() {
        let cases = [
            ("example.com", true),
            ("example.com:8080", true),
            ("[::1]:80", true),
            ("under_score.example", true),
            ("", false),
            ("a/b", false),
            ("a..b", false),
            (".example.com", false),
            ("a b", false),
            ("a\\b", false),
        ];
        for (host, want) in cases {
            assert_eq!(valid_host(host), want, "{host:?}");
        }
    }
}
