//! Cookie session affinity (`affinity: cookie` and the `session-cookie-*` keys), as
//! ingress-nginx's `balancer/sticky*.lua` do it:
//!
//! - **balanced** (the default): the cookie holds a random key and the endpoint is the key's
//!   consistent-hash choice ([`super::hash::pick`]), so scaling up moves about `1/(n+1)` of the
//!   sessions and scaling down only those of the removed endpoints; the cookie is set once.
//! - **persistent**: the cookie names the endpoint itself (a digest of its address), so a
//!   session stays put while its endpoint lives; when it is gone the session is re-pinned to an
//!   endpoint picked at random and the cookie replaced.
//!
//! A missing, stale or garbage cookie never fails a request: it just gets a new pin.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use sluice_crds::annotations::{AffinityMode, SameSite, SessionAffinity};

use super::hash;
use crate::model::Endpoint;

/// Longest balanced-mode key accepted from a client; longer values are replaced (ours are 32).
const MAX_KEY_LEN: usize = 128;

/// The endpoint for a request, and the cookie to set with the response, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Index into the endpoints given to [`choose`].
    pub index: usize,
    /// The new cookie value (for [`set_cookie_header`]); `None` when the client's cookie holds.
    pub set_cookie: Option<String>,
}

/// Picks the endpoint for a request carrying `cookie` (the value of the affinity cookie, see
/// [`cookie_value`]), among the eligible `endpoints` (ready ones, else serving-terminating ones,
/// as the load balancer). `None` when no endpoint is eligible.
pub fn choose(
    aff: &SessionAffinity,
    cookie: Option<&str>,
    endpoints: &[Endpoint],
) -> Option<Choice> {
    let cookie = cookie.filter(|c| !c.is_empty());
    match aff.mode {
        AffinityMode::Balanced => {
            if let Some(key) = cookie.filter(|c| c.len() <= MAX_KEY_LEN) {
                return hash::pick(key.as_bytes(), endpoints).map(|index| Choice {
                    index,
                    set_cookie: None,
                });
            }
            let key = random_key();
            let index = hash::pick(key.as_bytes(), endpoints)?;
            Some(Choice {
                index,
                set_cookie: Some(key),
            })
        }
        AffinityMode::Persistent => {
            let eligible = hash::eligible(endpoints);
            if let Some(digest) = cookie.and_then(parse_digest)
                && let Some(index) = endpoints
                    .iter()
                    .position(|e| eligible(e) && endpoint_digest(e.addr) == digest)
            {
                return Some(Choice {
                    index,
                    set_cookie: None,
                });
            }
            // ingress-nginx re-pins to a random endpoint; a fresh random key's hash choice is
            // one, without keeping round-robin state here.
            let index = hash::pick(random_key().as_bytes(), endpoints)?;
            let addr = endpoints.get(index)?.addr;
            Some(Choice {
                index,
                set_cookie: Some(endpoint_cookie(addr)),
            })
        }
    }
}

/// A new pin for a session whose endpoint failed, avoiding the `failed` addresses
/// (`session-cookie-change-on-failure`: ingress-nginx then picks a new endpoint and sets the new
/// cookie). `None` when every eligible endpoint failed.
pub fn repin(
    aff: &SessionAffinity,
    endpoints: &[Endpoint],
    failed: &[SocketAddr],
) -> Option<Choice> {
    let eligible = hash::eligible(endpoints);
    // The survivors, with their indexes into `endpoints`; only on the failure path, so the
    // copy is fine.
    let (indexes, survivors): (Vec<usize>, Vec<Endpoint>) = endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| eligible(e) && !failed.contains(&e.addr))
        .map(|(i, e)| (i, Endpoint { ready: true, ..*e }))
        .unzip();
    match aff.mode {
        AffinityMode::Balanced => {
            // The key must lead to a survivor on its own (later requests hash it over all
            // endpoints): try fresh keys, as ingress-nginx does (it gives up after 20; we try
            // more, then serve this request from a survivor and keep the old cookie).
            (0..64)
                .find_map(|_| {
                    let key = random_key();
                    let index = hash::pick(key.as_bytes(), endpoints)?;
                    indexes.contains(&index).then_some(Choice {
                        index,
                        set_cookie: Some(key),
                    })
                })
                .or_else(|| {
                    let pos = hash::pick(random_key().as_bytes(), &survivors)?;
                    Some(Choice {
                        index: *indexes.get(pos)?,
                        set_cookie: None,
                    })
                })
        }
        AffinityMode::Persistent => {
            let pos = hash::pick(random_key().as_bytes(), &survivors)?;
            let index = *indexes.get(pos)?;
            Some(Choice {
                index,
                set_cookie: Some(endpoint_cookie(endpoints.get(index)?.addr)),
            })
        }
    }
}

/// The persistent-mode cookie value naming `addr`: 16 hex digits of a fixed 64-bit digest, the
/// same on every replica. It keeps the address out of the cookie's plain sight; it is not a
/// secret (pod address ranges are small enough to search).
pub fn endpoint_cookie(addr: SocketAddr) -> String {
    format!("{:016x}", endpoint_digest(addr))
}

fn endpoint_digest(addr: SocketAddr) -> u64 {
    // Domain-separated from the rendezvous scores, which also hash the address.
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(b"affinity");
    buf[8..].copy_from_slice(&hash::addr_hash(addr).to_be_bytes());
    hash::stable_hash(&buf)
}

fn parse_digest(value: &str) -> Option<u64> {
    if value.len() != 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(value, 16).ok()
}

/// 128 random bits, hex: a fresh balanced-mode key. SipHash under the per-process random keys of
/// `RandomState`, over a counter and the time, so keys never repeat and cannot be predicted;
/// they only choose an endpoint, so this needs no cryptographic generator.
fn random_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let state = RandomState::new();
    let high = state.hash_one((n, nanos, 0u8));
    let low = state.hash_one((n, nanos, 1u8));
    format!("{high:016x}{low:016x}")
}

/// The `Set-Cookie` value for the affinity cookie, as ingress-nginx (lua-resty-cookie) writes
/// it: `NAME=value; Expires=…; Max-Age=…; Domain=…; Path=…; Secure; HttpOnly; SameSite=…`.
///
/// - Path: `session-cookie-path`, else the matched route's path when it is a plain path, else
///   `/` (a regex path is no cookie path; ingress-nginx asks for `session-cookie-path` then).
/// - Secure: `session-cookie-secure: true`, or the request came over HTTPS (ingress-nginx's
///   rule; it does not add Secure for `SameSite=None` on plain HTTP, nor do we).
/// - Expires: now + `session-cookie-expires`, as an IMF-fixdate (RFC 6265's preferred form;
///   nginx's `cookie_time` uses the older `Thu, 01-Jan-70` form, which browsers read the same).
pub fn set_cookie_header(
    aff: &SessionAffinity,
    value: &str,
    route_path: &str,
    https: bool,
) -> HeaderValue {
    set_cookie_header_at(aff, value, route_path, https, SystemTime::now())
}

/// [`set_cookie_header`] with the clock given.
pub fn set_cookie_header_at(
    aff: &SessionAffinity,
    value: &str,
    route_path: &str,
    https: bool,
    now: SystemTime,
) -> HeaderValue {
    use std::fmt::Write;

    // Every piece is filtered to bytes a header value and a cookie allow, so the result is
    // always a valid header: the name and value are validated upstream (a cookie token, our own
    // hex), the filter only guards against a future caller.
    let name: String = aff.cookie_name.chars().filter(|c| is_token(*c)).collect();
    let value: String = value.chars().filter(|c| is_cookie_octet(*c)).collect();
    let mut out = format!("{name}={value}");
    if let Some(secs) = aff.expires {
        let at = now
            .checked_add(Duration::from_secs(u64::from(secs)))
            .unwrap_or(now);
        let _ = write!(out, "; Expires={}", http_date(at));
    }
    if let Some(secs) = aff.max_age {
        let _ = write!(out, "; Max-Age={secs}");
    }
    if let Some(domain) = aff.cookie_domain.as_deref().filter(|d| is_attr_value(d)) {
        let _ = write!(out, "; Domain={domain}");
    }
    let path = match aff.cookie_path.as_deref() {
        Some(p) if is_plain_path(p) => p,
        _ if is_plain_path(route_path) => route_path,
        _ => "/",
    };
    let _ = write!(out, "; Path={path}");
    if aff.secure || https {
        out.push_str("; Secure");
    }
    out.push_str("; HttpOnly");
    if let Some(same_site) = aff.samesite {
        out.push_str(match same_site {
            SameSite::None => "; SameSite=None",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
        });
    }
    // Cannot fail: every byte above is visible ASCII.
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// RFC 7230 `tchar`.
fn is_token(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// RFC 6265 `cookie-octet`.
fn is_cookie_octet(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\')
}

/// A cookie attribute value: visible ASCII without `;`.
fn is_attr_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

/// A literal path usable as a cookie Path: starts with `/`, and no regex syntax (which would
/// mean the route is a regex, whose text is no path).
fn is_plain_path(p: &str) -> bool {
    p.starts_with('/')
        && p.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-'
                        | b'.'
                        | b'_'
                        | b'~'
                        | b'%'
                        | b':'
                        | b'@'
                        | b'!'
                        | b'&'
                        | b'\''
                        | b','
                        | b'='
                )
        })
}

/// `now` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); times before 1970 print as the
/// epoch.
fn http_date(now: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The value of cookie `name` in the request's `Cookie` headers (HTTP/2 may send several), the
/// first one if repeated (browsers send the most specific first). Tolerates spaces around
/// pairs, pairs without `=`, and a value in double quotes (returned without them); a value
/// that is not UTF-8 is skipped.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|h| h.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (key, value) = (trim(&pair[..eq]), trim(&pair[eq + 1..]));
            if key != name.as_bytes() {
                return None;
            }
            let value = match value {
                [b'"', inner @ .., b'"'] => inner,
                v => v,
            };
            std::str::from_utf8(value).ok()
        })
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr};

    fn aff(mode: AffinityMode) -> SessionAffinity {
        SessionAffinity {
            mode,
            cookie_name: "INGRESSCOOKIE".into(),
            cookie_path: None,
            cookie_domain: None,
            max_age: None,
            expires: None,
            samesite: None,
            secure: false,
            change_on_failure: false,
        }
    }

    fn ep(i: u8, ready: bool) -> Endpoint {
        Endpoint {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), 8080),
            ready,
            serving: ready,
            terminating: false,
        }
    }

    fn ready(n: u8) -> Vec<Endpoint> {
        (1..=n).map(|i| ep(i, true)).collect()
    }

    #[test]
    fn balanced_new_session_then_sticks() {
        let a = aff(AffinityMode::Balanced);
        let endpoints = ready(5);
        let first = choose(&a, None, &endpoints).unwrap();
        let key = first.set_cookie.clone().expect("a new cookie");
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        for _ in 0..10 {
            let again = choose(&a, Some(&key), &endpoints).unwrap();
            assert_eq!(
                again,
                Choice {
                    index: first.index,
                    set_cookie: None
                }
            );
        }
    }

    #[test]
    fn balanced_keys_are_fresh_and_spread() {
        let a = aff(AffinityMode::Balanced);
        let endpoints = ready(4);
        let mut keys = HashSet::new();
        let mut used = HashSet::new();
        for _ in 0..400 {
            let c = choose(&a, None, &endpoints).unwrap();
            keys.insert(c.set_cookie.unwrap());
            used.insert(c.index);
        }
        assert_eq!(keys.len(), 400);
        assert_eq!(used.len(), 4);
    }

    #[test]
    fn balanced_scaling_up_moves_about_one_in_n_plus_one() {
        let a = aff(AffinityMode::Balanced);
        let before = ready(4);
        let after = ready(5);
        let keys: Vec<String> = (0..5000)
            .map(|_| choose(&a, None, &before).unwrap().set_cookie.unwrap())
            .collect();
        let moved = keys
            .iter()
            .filter(|k| {
                let b = choose(&a, Some(k), &before).unwrap();
                let c = choose(&a, Some(k), &after).unwrap();
                assert_eq!(c.set_cookie, None);
                before[b.index].addr != after[c.index].addr
            })
            .count();
        assert!(moved < 2 * 5000 / 5, "{moved}");
        assert!(moved > 5000 / 10, "{moved}");
    }

    #[test]
    fn balanced_gone_endpoint_rehashes_without_new_cookie() {
        let a = aff(AffinityMode::Balanced);
        let endpoints = ready(3);
        let mut key = String::new();
        // A key that lands on endpoint 0.
        for _ in 0..1000 {
            let c = choose(&a, None, &endpoints).unwrap();
            if c.index == 0 {
                key = c.set_cookie.unwrap();
                break;
            }
        }
        assert!(!key.is_empty());
        let mut degraded = endpoints.clone();
        degraded[0].ready = false;
        let c = choose(&a, Some(&key), &degraded).unwrap();
        assert_ne!(c.index, 0);
        assert_eq!(c.set_cookie, None);
    }

    #[test]
    fn balanced_odd_cookies() {
        let a = aff(AffinityMode::Balanced);
        let endpoints = ready(3);
        // Someone else's value (e.g. ingress-nginx's `key|backend`) is a key like any other.
        let c = choose(&a, Some("1700000000.123.456|abcdef"), &endpoints).unwrap();
        assert_eq!(c.set_cookie, None);
        // Empty or oversized: a new key.
        assert!(
            choose(&a, Some(""), &endpoints)
                .unwrap()
                .set_cookie
                .is_some()
        );
        let long = "x".repeat(MAX_KEY_LEN + 1);
        assert!(
            choose(&a, Some(&long), &endpoints)
                .unwrap()
                .set_cookie
                .is_some()
        );
    }

    #[test]
    fn persistent_table() {
        let a = aff(AffinityMode::Persistent);
        let endpoints = ready(4);
        let pinned_to_2 = endpoint_cookie(endpoints[2].addr);
        let gone = endpoint_cookie(ep(99, true).addr);
        let unready_1 = endpoint_cookie(endpoints[1].addr);
        let mut with_unready = endpoints.clone();
        with_unready[1].ready = false;
        // (case, cookie, endpoints, expected index (None: any), new cookie?)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            &'a [Endpoint],
            Option<usize>,
            bool,
        );
        let cases: &[Case] = &[
            (
                "pinned and ready",
                Some(&pinned_to_2),
                &endpoints,
                Some(2),
                false,
            ),
            (
                "uppercase hex",
                Some(&pinned_to_2.to_uppercase()),
                &endpoints,
                Some(2),
                false,
            ),
            ("gone endpoint", Some(&gone), &endpoints, None, true),
            ("not ready", Some(&unready_1), &with_unready, None, true),
            ("no cookie", None, &endpoints, None, true),
            ("empty", Some(""), &endpoints, None, true),
            ("garbage", Some("not-a-digest"), &endpoints, None, true),
            (
                "too long",
                Some("0123456789abcdef0"),
                &endpoints,
                None,
                true,
            ),
            ("non-hex", Some("0123456789abcdeg"), &endpoints, None, true),
            ("signed", Some("+123456789abcdef"), &endpoints, None, true),
        ];
        for (case, cookie, eps, index, new) in cases {
            let c = choose(&a, *cookie, eps).unwrap_or_else(|| panic!("{case}"));
            if let Some(i) = index {
                assert_eq!(c.index, *i, "{case}");
            }
            assert!(eps[c.index].ready, "{case}");
            assert_eq!(c.set_cookie.is_some(), *new, "{case}");
            if let Some(v) = c.set_cookie {
                assert_eq!(v, endpoint_cookie(eps[c.index].addr), "{case}");
                // The new cookie sticks.
                let again = choose(&a, Some(&v), eps).unwrap();
                assert_eq!(
                    again,
                    Choice {
                        index: c.index,
                        set_cookie: None
                    },
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn persistent_does_not_move_on_scale_up() {
        let a = aff(AffinityMode::Persistent);
        let endpoints = ready(3);
        let more = ready(10);
        for e in &endpoints {
            let v = endpoint_cookie(e.addr);
            let c = choose(&a, Some(&v), &more).unwrap();
            assert_eq!(more[c.index].addr, e.addr);
            assert_eq!(c.set_cookie, None);
        }
    }

    #[test]
    fn persistent_cookie_hides_the_address() {
        let v = endpoint_cookie(ep(7, true).addr);
        assert_eq!(v.len(), 16);
        assert!(!v.contains("10.0.0.7") && !v.contains("0a000007"));
        assert_ne!(v, endpoint_cookie(ep(8, true).addr));
    }

    #[test]
    fn serving_fallback_and_nothing_eligible() {
        for mode in [AffinityMode::Balanced, AffinityMode::Persistent] {
            let a = aff(mode);
            assert_eq!(choose(&a, None, &[]), None);
            assert_eq!(choose(&a, Some("abc"), &[ep(1, false)]), None);
            let draining = Endpoint {
                serving: true,
                terminating: true,
                ..ep(2, false)
            };
            let c = choose(&a, None, &[ep(1, false), draining]).unwrap();
            assert_eq!(c.index, 1);
        }
        // A persistent pin on a draining endpoint holds while nothing is ready.
        let a = aff(AffinityMode::Persistent);
        let draining = Endpoint {
            serving: true,
            terminating: true,
            ..ep(2, false)
        };
        let v = endpoint_cookie(draining.addr);
        let c = choose(&a, Some(&v), &[ep(1, false), draining]).unwrap();
        assert_eq!(
            c,
            Choice {
                index: 1,
                set_cookie: None
            }
        );
    }

    #[test]
    fn repin_avoids_failed_endpoints() {
        let endpoints = ready(3);
        let failed = [endpoints[0].addr, endpoints[1].addr];
        for mode in [AffinityMode::Balanced, AffinityMode::Persistent] {
            let a = aff(mode);
            for _ in 0..50 {
                let c = repin(&a, &endpoints, &failed).unwrap();
                assert_eq!(c.index, 2, "{mode:?}");
                let cookie = c.set_cookie.expect("a new cookie");
                // The new cookie leads there on the next request.
                assert_eq!(choose(&a, Some(&cookie), &endpoints).unwrap().index, 2);
            }
            let all: Vec<_> = endpoints.iter().map(|e| e.addr).collect();
            assert_eq!(repin(&a, &endpoints, &all), None, "{mode:?}");
            assert_eq!(repin(&a, &[], &[]), None, "{mode:?}");
        }
    }

    #[test]
    fn set_cookie_table() {
        // 2024-02-29 12:00:00 UTC.
        let now = UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        let base = aff(AffinityMode::Balanced);
        let full = SessionAffinity {
            cookie_name: "route".into(),
            cookie_path: Some("/app".into()),
            cookie_domain: Some(".example.com".into()),
            max_age: Some(3600),
            expires: Some(86_400),
            samesite: Some(SameSite::None),
            secure: true,
            ..base.clone()
        };
        let lax = SessionAffinity {
            samesite: Some(SameSite::Lax),
            ..base.clone()
        };
        let strict_secure = SessionAffinity {
            samesite: Some(SameSite::Strict),
            secure: true,
            ..base.clone()
        };
        // (case, affinity, route path, https, expected)
        type Case<'a> = (&'a str, &'a SessionAffinity, &'a str, bool, &'a str);
        let cases: &[Case] = &[
            (
                "minimal, route path",
                &base,
                "/shop",
                false,
                "INGRESSCOOKIE=v; Path=/shop; HttpOnly",
            ),
            (
                "https adds Secure",
                &base,
                "/",
                true,
                "INGRESSCOOKIE=v; Path=/; Secure; HttpOnly",
            ),
            (
                "regex route: /",
                &base,
                "/api/.*",
                false,
                "INGRESSCOOKIE=v; Path=/; HttpOnly",
            ),
            (
                "anchored regex route: /",
                &base,
                "^/api",
                false,
                "INGRESSCOOKIE=v; Path=/; HttpOnly",
            ),
            (
                "empty route: /",
                &base,
                "",
                false,
                "INGRESSCOOKIE=v; Path=/; HttpOnly",
            ),
            (
                "lax",
                &lax,
                "/",
                false,
                "INGRESSCOOKIE=v; Path=/; HttpOnly; SameSite=Lax",
            ),
            (
                "secure annotation on http",
                &strict_secure,
                "/",
                false,
                "INGRESSCOOKIE=v; Path=/; Secure; HttpOnly; SameSite=Strict",
            ),
            (
                "everything",
                &full,
                "/ignored",
                false,
                "route=v; Expires=Fri, 01 Mar 2024 12:00:00 GMT; Max-Age=3600; Domain=.example.com; Path=/app; Secure; HttpOnly; SameSite=None",
            ),
        ];
        for (case, a, route, https, expected) in cases {
            let got = set_cookie_header_at(a, "v", route, *https, now);
            assert_eq!(got.to_str().unwrap(), *expected, "{case}");
        }
    }

    #[test]
    fn set_cookie_never_breaks_the_header() {
        let mut a = aff(AffinityMode::Balanced);
        a.cookie_name = "bad name;".into();
        a.cookie_domain = Some("a;b".into());
        a.cookie_path = Some("/x; Secure".into());
        let got = set_cookie_header_at(&a, "v a;l\"ue", "/", false, UNIX_EPOCH);
        assert_eq!(got.to_str().unwrap(), "badname=value; Path=/; HttpOnly");
    }

    #[test]
    fn http_dates() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, expected) in cases {
            assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(secs)), expected);
        }
        assert_eq!(
            http_date(UNIX_EPOCH - Duration::from_secs(10)),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn cookie_value_table() {
        fn headers(values: &[&[u8]]) -> HeaderMap {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
            }
            h
        }
        // (case, Cookie headers, expected)
        type Case<'a> = (&'a str, &'a [&'a [u8]], Option<&'a str>);
        let cases: &[Case] = &[
            ("none", &[], None),
            ("single", &[b"route=abc"], Some("abc")),
            ("among others", &[b"a=1; route=abc; b=2"], Some("abc")),
            ("no spaces", &[b"a=1;route=abc;b=2"], Some("abc")),
            ("extra spaces", &[b"a=1 ;  route = abc ; b=2"], Some("abc")),
            ("quoted", &[b"route=\"abc\""], Some("abc")),
            ("empty value", &[b"route="], Some("")),
            ("first wins", &[b"route=one; route=two"], Some("one")),
            ("second header", &[b"a=1", b"route=abc"], Some("abc")),
            ("name is case-sensitive", &[b"Route=abc"], None),
            ("prefix is not the name", &[b"xroute=abc; routex=def"], None),
            ("value with =", &[b"route=a=b"], Some("a=b")),
            ("pair without =", &[b"route; route=abc"], Some("abc")),
            ("trailing semicolon", &[b"route=abc;"], Some("abc")),
            ("non-utf8 elsewhere", &[b"a=\xff; route=abc"], Some("abc")),
            (
                "non-utf8 value skipped",
                &[b"route=\xff; route=abc"],
                Some("abc"),
            ),
        ];
        for (case, values, expected) in cases {
            let h = headers(values);
            assert_eq!(cookie_value(&h, "route"), *expected, "{case}");
        }
    }
}
