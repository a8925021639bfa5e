//! Whether a request goes to a route's canary: ingress-nginx's order (its balancer's
//! `route_to_alternative_balancer`): the header, then the cookie, then the weight.

use http::HeaderMap;

use crate::model::CanaryRoute;

/// True when the request goes to the canary. `roll(total)` returns a number in `1..=total`
/// (random in the proxy, fixed in tests).
pub fn selects(canary: &CanaryRoute, headers: &HeaderMap, roll: impl FnOnce(u32) -> u32) -> bool {
    let rule = &canary.rule;
    if let Some(name) = &rule.by_header
        && let Some(value) = headers.get(name.as_str())
    {
        let value = value.as_bytes();
        if let Some(want) = &rule.header_value {
            if value == want.as_bytes() {
                return true;
            }
        } else if rule.header_pattern.is_some() {
            if canary
                .pattern
                .as_ref()
                .is_some_and(|p| p.regex().is_match(value))
            {
                return true;
            }
        } else if value == b"always" {
            return true;
        } else if value == b"never" {
            return false;
        }
    }
    if let Some(name) = &rule.by_cookie
        && let Some(value) = super::affinity::cookie_value(headers, name)
    {
        match value {
            "always" => return true,
            "never" => return false,
            _ => {}
        }
    }
    rule.weight > 0 && roll(rule.weight_total.max(1)) <= rule.weight
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::HeaderValue;
    use sluice_crds::annotations::Canary;

    use super::*;
    use crate::model::{Backend, IngressRef, PathRegex, PortRef, ServiceRef};

    fn canary(rule: Canary) -> CanaryRoute {
        let pattern = rule
            .header_pattern
            .as_deref()
            .map(|p| PathRegex(regex::bytes::Regex::new(p).expect("pattern")));
        CanaryRoute {
            backend: Arc::new(Backend::Service {
                service: ServiceRef {
                    namespace: "ns".into(),
                    name: "canary".into(),
                    port: PortRef::Number(80),
                },
                endpoints: Arc::from(Vec::new()),
            }),
            source: IngressRef::new("ns", "canary"),
            rule,
            pattern,
        }
    }

    fn rule() -> Canary {
        Canary {
            by_header: None,
            header_value: None,
            header_pattern: None,
            by_cookie: None,
            weight: 0,
            weight_total: 100,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn precedence_table() {
        let by_header = Canary {
            by_header: Some("x-canary".into()),
            by_cookie: Some("canary".into()),
            weight: 100,
            ..rule()
        };
        let by_value = Canary {
            header_value: Some("beta".into()),
            ..by_header.clone()
        };
        let by_pattern = Canary {
            header_pattern: Some("^(beta|gamma)$".into()),
            weight: 0,
            ..by_header.clone()
        };
        let weighted = Canary {
            weight: 30,
            ..rule()
        };
        // (rule, headers, roll, want)
        let cases: Vec<(Canary, HeaderMap, u32, bool)> = vec![
            (
                by_header.clone(),
                headers(&[("x-canary", "always")]),
                100,
                true,
            ),
            // "never" wins over the cookie and the 100% weight.
            (
                by_header.clone(),
                headers(&[("x-canary", "never"), ("cookie", "canary=always")]),
                1,
                false,
            ),
            // Another header value falls through to the cookie, then the weight.
            (
                by_header.clone(),
                headers(&[("x-canary", "maybe"), ("cookie", "canary=never")]),
                1,
                false,
            ),
            (
                by_header.clone(),
                headers(&[("x-canary", "maybe")]),
                100,
                true,
            ),
            (
                by_value.clone(),
                headers(&[("x-canary", "beta")]),
                100,
                true,
            ),
            // With a value set, "always" is just another value.
            (
                Canary {
                    weight: 0,
                    ..by_value.clone()
                },
                headers(&[("x-canary", "always")]),
                1,
                false,
            ),
            (
                by_pattern.clone(),
                headers(&[("x-canary", "gamma")]),
                1,
                true,
            ),
            (
                by_pattern.clone(),
                headers(&[("x-canary", "delta")]),
                1,
                false,
            ),
            (weighted.clone(), headers(&[]), 30, true),
            (weighted.clone(), headers(&[]), 31, false),
            (rule(), headers(&[]), 1, false),
        ];
        for (i, (rule, headers, roll, want)) in cases.into_iter().enumerate() {
            let got = selects(&canary(rule), &headers, |_| roll);
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn weight_is_out_of_the_total() {
        let c = canary(Canary {
            weight: 1,
            weight_total: 1000,
            ..rule()
        });
        let mut seen_total = 0;
        assert!(selects(&c, &HeaderMap::new(), |total| {
            seen_total = total;
            1
        }));
        assert_eq!(seen_total, 1000);
        assert!(!selects(&c, &HeaderMap::new(), |_| 2));
    }
}
