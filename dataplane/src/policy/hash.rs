//! Consistent endpoint choice by key: rendezvous (highest-random-weight) hashing, used by
//! session affinity (and later `upstream-hash-by`).
//!
//! Every replica, and every version of Sluice, must map a key to the same endpoint, so the hash
//! is fixed here (FNV-1a then MurmurHash3's 64-bit finalizer) instead of `std`'s hashers, whose
//! algorithm may change between Rust releases. Changing [`stable_hash`] re-pins every session:
//! treat it as a wire format.
//!
//! Rendezvous hashing scores every endpoint against the key and takes the highest score. When an
//! endpoint leaves, only the keys it held move; when one joins, it takes about `1/(n+1)` of the
//! keys, from every other endpoint evenly. Cost is O(n) per pick with no state to rebuild when
//! the endpoints change, which suits the per-Service endpoint counts an ingress sees.

use std::net::SocketAddr;

use crate::model::Endpoint;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit hash of `bytes` that never changes between processes, replicas or releases.
///
/// FNV-1a alone mixes poorly for short inputs that differ in a few bits (adjacent IPs, ports);
/// the finalizer gives every input bit an effect on every output bit.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h)
}

/// MurmurHash3's 64-bit finalizer: a bijection with full avalanche.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The stable hash of an endpoint's address (IP octets then the port, big-endian), without
/// allocating; the family is implied by the length.
pub fn addr_hash(addr: SocketAddr) -> u64 {
    let mut buf = [0u8; 18];
    let len = match addr {
        SocketAddr::V4(a) => {
            buf[..4].copy_from_slice(&a.ip().octets());
            buf[4..6].copy_from_slice(&a.port().to_be_bytes());
            6
        }
        SocketAddr::V6(a) => {
            buf[..16].copy_from_slice(&a.ip().octets());
            buf[16..18].copy_from_slice(&a.port().to_be_bytes());
            18
        }
    };
    stable_hash(&buf[..len])
}

/// Whether `e` may take new requests: the ready endpoints, or, when none is ready, those still
/// serving while terminating. The same rule as the proxy's load balancer
/// (`proxy::upstream::Candidates`), so affinity never picks what plain balancing would not.
pub fn eligible(endpoints: &[Endpoint]) -> impl Fn(&Endpoint) -> bool + use<> {
    let any_ready = endpoints.iter().any(|e| e.ready);
    move |e: &Endpoint| {
        if any_ready {
            e.ready
        } else {
            e.serving && e.terminating
        }
    }
}

/// The endpoint `key` maps to, as an index into `endpoints`, among the eligible ones (see
/// [`eligible`]); `None` when no endpoint is eligible.
///
/// The result depends only on the key and the set of eligible addresses, not on their order,
/// so replicas that list the endpoints differently still agree.
pub fn pick(key: &[u8], endpoints: &[Endpoint]) -> Option<usize> {
    let key_hash = stable_hash(key);
    let eligible = eligible(endpoints);
    endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| eligible(e))
        // Ties (astronomically rare) go to the greater address, so the order does not matter.
        .max_by_key(|(_, e)| (score(key_hash, e.addr), e.addr))
        .map(|(i, _)| i)
}

/// The weight of `addr` for a key: the finalizer over both hashes, so the scores of one key
/// across endpoints behave as independent uniform draws.
fn score(key_hash: u64, addr: SocketAddr) -> u64 {
    fmix64(key_hash ^ addr_hash(addr).rotate_left(17))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

    fn keys(count: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..count).map(|i| format!("session-{i}").into_bytes())
    }

    fn addr_of(endpoints: &[Endpoint], key: &[u8]) -> Option<SocketAddr> {
        pick(key, endpoints).map(|i| endpoints[i].addr)
    }

    #[test]
    fn stable_hash_is_fixed() {
        // Pinned values (also computed independently): a change here re-pins every session in
        // the field.
        assert_eq!(stable_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash(b"a"), 0x82a2_a958_a9be_ce5b);
        // FNV-1a's published test vector, through the finalizer.
        assert_eq!(stable_hash(b"foobar"), fmix64(0x8594_4171_f739_67e8));
        let endpoints = ready(5);
        assert_eq!(pick(b"session-0", &endpoints), Some(4));
        assert_eq!(pick(b"session-1", &endpoints), Some(4));
        assert_eq!(pick(b"abc", &endpoints), Some(3));
    }

    #[test]
    fn empty_and_ineligible() {
        assert_eq!(pick(b"k", &[]), None);
        assert_eq!(pick(b"k", &[ep(1, false), ep(2, false)]), None);
        // Only the ready one is eligible.
        assert_eq!(pick(b"k", &[ep(1, false), ep(2, true)]), Some(1));
    }

    #[test]
    fn falls_back_to_serving_terminating() {
        let draining = Endpoint {
            terminating: true,
            serving: true,
            ..ep(3, false)
        };
        let not_serving = Endpoint {
            terminating: true,
            serving: false,
            ..ep(4, false)
        };
        let endpoints = [ep(1, false), draining, not_serving];
        for key in keys(100) {
            assert_eq!(pick(&key, &endpoints), Some(1));
        }
        // A ready endpoint takes precedence over the fallback.
        let endpoints = [ep(1, false), draining, ep(2, true)];
        assert_eq!(pick(b"k", &endpoints), Some(2));
    }

    #[test]
    fn same_key_same_endpoint_whatever_the_order() {
        let endpoints = ready(7);
        let mut reversed = endpoints.clone();
        reversed.reverse();
        for key in keys(1000) {
            let a = addr_of(&endpoints, &key);
            assert_eq!(a, addr_of(&endpoints, &key));
            assert_eq!(a, addr_of(&reversed, &key));
        }
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_keys() {
        let n = 8;
        let endpoints = ready(n);
        let removed = endpoints[3].addr;
        let fewer: Vec<_> = endpoints
            .iter()
            .copied()
            .filter(|e| e.addr != removed)
            .collect();
        let mut moved = 0;
        for key in keys(10_000) {
            let before = addr_of(&endpoints, &key);
            let after = addr_of(&fewer, &key);
            if before == Some(removed) {
                moved += 1;
            } else {
                assert_eq!(before, after, "a key not on the removed endpoint moved");
            }
        }
        // Sanity: the removed endpoint held about 1/n of the keys.
        assert!(moved > 10_000 / (2 * usize::from(n)), "{moved}");
    }

    #[test]
    fn an_endpoint_turning_unready_is_like_removing_it() {
        let endpoints = ready(5);
        let mut degraded = endpoints.clone();
        degraded[2].ready = false;
        for key in keys(2000) {
            let before = addr_of(&endpoints, &key);
            if before != Some(endpoints[2].addr) {
                assert_eq!(before, addr_of(&degraded, &key));
            }
        }
    }

    #[test]
    fn adding_an_endpoint_moves_about_one_in_n_plus_one() {
        for n in [1u8, 2, 4, 9] {
            let endpoints = ready(n);
            let more = ready(n + 1);
            let added = more[usize::from(n)].addr;
            let total = 10_000;
            let mut moved = 0;
            for key in keys(total) {
                let before = addr_of(&endpoints, &key);
                let after = addr_of(&more, &key);
                if before != after {
                    // Keys only ever move to the new endpoint.
                    assert_eq!(after, Some(added));
                    moved += 1;
                }
            }
            let bound = 2 * total / (usize::from(n) + 1);
            assert!(moved < bound, "n={n}: {moved} moved, bound {bound}");
            assert!(moved > total / (2 * (usize::from(n) + 1)), "n={n}: {moved}");
        }
    }

    #[test]
    fn distribution_is_roughly_even() {
        let n = 10;
        let endpoints = ready(n);
        let mut counts = vec![0usize; usize::from(n)];
        let total = 20_000;
        for key in keys(total) {
            if let Some(i) = pick(&key, &endpoints) {
                counts[i] += 1;
            }
        }
        let expected = total / usize::from(n);
        for (i, c) in counts.iter().enumerate() {
            assert!(
                *c > expected * 8 / 10 && *c < expected * 12 / 10,
                "endpoint {i}: {c} of {total} (expected ~{expected}): {counts:?}"
            );
        }
    }

    #[test]
    fn ipv6_and_ports_are_distinct() {
        let v6 = |port| Endpoint {
            addr: SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ready: true,
            serving: true,
            terminating: false,
        };
        let endpoints = [v6(1), v6(2), v6(3)];
        let mut seen = [false; 3];
        for key in keys(300) {
            if let Some(i) = pick(&key, &endpoints) {
                seen[i] = true;
            }
        }
        assert_eq!(seen, [true; 3]);
        assert_ne!(addr_hash(endpoints[0].addr), addr_hash(endpoints[1].addr));
    }
}
