//! Source-address access lists (`allowlist-source-range`, `whitelist-source-range`,
//! `denylist-source-range`), decided as ingress-nginx does: a denied address gets 403 even when
//! it is also allowed, and with an allow list only the addresses in it are served.

use std::net::IpAddr;

use sluice_crds::annotations::AccessLists;

/// The outcome for one client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Serve the request.
    Allowed,
    /// Answer 403.
    Denied,
}

/// Whether `client` may use a route with these lists.
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4
/// peer) is matched as the IPv4 address, so IPv4 CIDRs apply to it and such a client cannot
/// slip past an IPv4 deny list.
pub fn decide(lists: &AccessLists, client: IpAddr) -> Access {
    let client = client.to_canonical();
    if lists.deny.iter().any(|net| net.contains(client)) {
        return Access::Denied;
    }
    match &lists.allow {
        Some(allow) if !allow.iter().any(|net| net.contains(client)) => Access::Denied,
        _ => Access::Allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_crds::dataplane_config::IpCidr;

    fn cidrs(list: &[&str]) -> Vec<IpCidr> {
        list.iter()
            .map(|c| c.parse().unwrap_or_else(|e| panic!("{c}: {e:?}")))
            .collect()
    }

    #[test]
    fn table() {
        // (case, allow, deny, client, expected)
        type Case<'a> = (
            &'a str,
            Option<&'a [&'a str]>,
            &'a [&'a str],
            &'a str,
            Access,
        );
        let cases: &[Case] = &[
            ("no lists", None, &[], "192.0.2.1", Access::Allowed),
            (
                "in allow",
                Some(&["10.0.0.0/8"]),
                &[],
                "10.1.2.3",
                Access::Allowed,
            ),
            (
                "not in allow",
                Some(&["10.0.0.0/8"]),
                &[],
                "11.0.0.1",
                Access::Denied,
            ),
            (
                "empty allow list",
                Some(&[]),
                &[],
                "10.0.0.1",
                Access::Denied,
            ),
            (
                "deny only, denied",
                None,
                &["192.0.2.0/24"],
                "192.0.2.7",
                Access::Denied,
            ),
            (
                "deny only, other",
                None,
                &["192.0.2.0/24"],
                "198.51.100.1",
                Access::Allowed,
            ),
            (
                "deny wins over allow",
                Some(&["10.0.0.0/8"]),
                &["10.0.0.5/32"],
                "10.0.0.5",
                Access::Denied,
            ),
            (
                "allowed next to a denied host",
                Some(&["10.0.0.0/8"]),
                &["10.0.0.5/32"],
                "10.0.0.6",
                Access::Allowed,
            ),
            (
                "ipv6 allowed",
                Some(&["2001:db8::/32"]),
                &[],
                "2001:db8::1",
                Access::Allowed,
            ),
            (
                "ipv6 not allowed",
                Some(&["2001:db8::/32"]),
                &[],
                "2001:db9::1",
                Access::Denied,
            ),
            (
                "ipv4 client, ipv6-only allow list",
                Some(&["2001:db8::/32"]),
                &[],
                "10.0.0.1",
                Access::Denied,
            ),
            (
                "mapped client matches ipv4 allow",
                Some(&["10.0.0.0/8"]),
                &[],
                "::ffff:10.0.0.1",
                Access::Allowed,
            ),
            (
                "mapped client matches ipv4 deny",
                None,
                &["10.0.0.0/8"],
                "::ffff:10.0.0.1",
                Access::Denied,
            ),
            (
                "mapped client outside ipv4 allow",
                Some(&["10.0.0.0/8"]),
                &[],
                "::ffff:192.0.2.1",
                Access::Denied,
            ),
            (
                "allow everything v4",
                Some(&["0.0.0.0/0"]),
                &[],
                "203.0.113.9",
                Access::Allowed,
            ),
            (
                "deny everything v6 leaves v4 alone",
                None,
                &["::/0"],
                "203.0.113.9",
                Access::Allowed,
            ),
        ];
        for (case, allow, deny, client, expected) in cases {
            let lists = AccessLists {
                allow: allow.map(cidrs),
                deny: cidrs(deny),
            };
            let client: IpAddr = client.parse().unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(decide(&lists, client), *expected, "{case}");
        }
    }
}
