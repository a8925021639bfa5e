//! The contract for Secrets and ConfigMaps the operator mirrors into a set's namespace for its
//! fleet.
//!
//! RBAC cannot limit a watch to TLS Secrets, so the internet-facing data plane has no
//! cluster-wide Secret access. The operator (not exposed to traffic) copies each Secret that
//! an Ingress of the set's class references (TLS, auth and CA bundles) into the set's
//! namespace; the data plane reads only Secrets there, selected by these labels, and finds
//! each by its origin annotation.
//!
//! ConfigMaps an Ingress references (`custom-headers`) are mirrored the same way, as ConfigMaps
//! with the same name, labels and annotations: the data plane then needs no cluster-wide
//! ConfigMap access either. A Secret and a ConfigMap of the same origin name get the same
//! mirror name; they are different kinds, so they never collide.

/// Label on every mirror: `"true"`.
pub const MIRROR_LABEL: &str = "sluice.dev/mirror";
/// Annotation naming the origin (Secret or ConfigMap) as `<namespace>/<name>`.
pub const ORIGIN_ANNOTATION: &str = "sluice.dev/origin";
/// Annotation with the origin's resourceVersion, so a rotation is copied once.
pub const ORIGIN_VERSION_ANNOTATION: &str = "sluice.dev/origin-resource-version";

/// The mirror's name in the set's namespace: `<set>-m-<16 hex of FNV-1a(origin ns/name)>`,
/// short, DNS-safe and distinct per set (two sets in one namespace each keep their own).
pub fn mirror_name(set: &str, origin_namespace: &str, origin_name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in origin_namespace
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(origin_name.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{set}-m-{h:016x}")
}

/// The label selector a fleet uses to list its mirrors (set labels as on every child).
pub fn mirror_selector(set: &str, set_namespace: &str) -> String {
    format!("{MIRROR_LABEL}=true,sluice.dev/set={set},sluice.dev/set-namespace={set_namespace}")
}

/// Parses the origin annotation into (namespace, name).
pub fn parse_origin(value: &str) -> Option<(&str, &str)> {
    let (ns, name) = value.split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then_some((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_distinct_and_short() {
        let a = mirror_name("ingress-public", "shop", "tls");
        assert_eq!(a, mirror_name("ingress-public", "shop", "tls"));
        assert_ne!(a, mirror_name("ingress-private", "shop", "tls"));
        assert_ne!(a, mirror_name("ingress-public", "shop-tls", ""));
        assert!(a.starts_with("ingress-public-m-") && a.len() == "ingress-public-m-".len() + 16);
        assert_eq!(parse_origin("shop/tls"), Some(("shop", "tls")));
        for bad in ["", "shop", "/tls", "shop/", "a/b/c"] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }
}
