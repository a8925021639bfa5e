//! ConfigMap `X`: everything the data plane needs to know about its set, so the internet-facing
//! data plane never needs read access to IngressControllerSets.
//!
//! - `config.json`: `spec.proxy` rendered with defaults filled in ([`DataplaneConfig`]).
//! - `fleet.json`: the set-level facts ([`FleetSettings`]): class, the effective
//!   `watchIngressWithoutClass`, default backend, PROXY protocol, published addresses.
//!
//! The operator owns the ConfigMap and reverts hand edits; the data plane applies changes live,
//! so no pod annotation ties the Deployment to its content.

use k8s_openapi::api::core::v1::ConfigMap;
use sluice_crds::IngressControllerSet;
use sluice_crds::dataplane_config::{ConfigError, DataplaneConfig};
use sluice_crds::fleet::{FLEET_CONFIG_MAP_KEY, FleetBackend, FleetSettings};

use super::labels::{namespaced_meta, set_name, set_namespace};

/// The set-level facts for `fleet.json`. `watch_without_class` is the effective value after the
/// cluster-wide claim check (only one set may serve Ingresses without a class), not the raw
/// `spec.watchIngressWithoutClass`.
pub fn fleet_settings(set: &IngressControllerSet, watch_without_class: bool) -> FleetSettings {
    let spec = &set.spec;
    FleetSettings {
        set_namespace: set_namespace(set),
        set_name: set_name(set),
        ingress_class_name: spec.ingress_class_name.clone(),
        watch_ingress_without_class: watch_without_class,
        default_backend: spec.default_backend.as_ref().map(|b| FleetBackend {
            service: b.service.name.clone(),
            port_number: b.service.port.number,
            port_name: b.service.port.name.clone(),
        }),
        proxy_protocol: spec.load_balancer.proxy_protocol,
        publish_status_address: spec.publish_status_address.clone(),
    }
}

/// The fleet's ConfigMap. Fails when `spec.proxy` holds a value the schema let through but the
/// data plane could not use (the error names the `spec.proxy` field); the reconciler then keeps
/// the last good ConfigMap rather than hand the fleet a config it would reject.
pub fn desired_config_map(
    set: &IngressControllerSet,
    watch_without_class: bool,
) -> Result<ConfigMap, ConfigError> {
    let mut data = DataplaneConfig::from_proxy(&set.spec.proxy)?.to_config_map_data();
    let fleet = fleet_settings(set, watch_without_class);
    data.insert(
        FLEET_CONFIG_MAP_KEY.to_owned(),
        // Pretty, like config.json: people read it with `kubectl get -o yaml`. Struct fields
        // serialise in declaration order, so an unchanged set renders byte-for-byte the same.
        serde_json::to_string_pretty(&fleet)?,
    );
    Ok(ConfigMap {
        metadata: namespaced_meta(set),
        data: Some(data),
        ..ConfigMap::default()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_crds::dataplane_config::CONFIG_MAP_KEY;
    use sluice_crds::{BackendPort, BackendService, DefaultBackend, ProxySettings};

    use super::*;
    use crate::children::labels::{child_labels, owner_reference};
    use crate::children::test_support::{apply_body, set};

    fn proxy(json: serde_json::Value) -> ProxySettings {
        serde_json::from_value(json).expect("proxy settings")
    }

    fn fleet_of(cm: &ConfigMap) -> FleetSettings {
        let data = cm.data.as_ref().expect("data");
        FleetSettings::from_json(&data[FLEET_CONFIG_MAP_KEY]).expect("fleet.json parses")
    }

    #[test]
    fn shape() {
        let s = set("ingress-public", "sluice-system");
        let cm = desired_config_map(&s, false).expect("default proxy settings are valid");
        let body = apply_body(&cm, "v1", "ConfigMap");
        assert_eq!(body["metadata"]["name"], "ingress-public");
        assert_eq!(body["metadata"]["namespace"], "sluice-system");
        assert_eq!(cm.metadata.labels, Some(child_labels(&s)));
        assert_eq!(
            cm.metadata.owner_references,
            Some(vec![owner_reference(&s)])
        );
        assert!(cm.binary_data.is_none() && cm.immutable.is_none());
        let keys: Vec<&String> = cm.data.as_ref().expect("data").keys().collect();
        assert_eq!(keys, [CONFIG_MAP_KEY, FLEET_CONFIG_MAP_KEY]);
    }

    #[test]
    fn renders_proxy_settings() {
        // (spec.proxy, a JSON key of config.json, its expected value)
        let cases = [
            // Empty spec.proxy: the defaults are written out.
            (json!({}), "proxyBodySize", json!("1m")),
            (json!({"proxyBodySize": "8m"}), "proxyBodySize", json!("8m")),
            (json!({"hsts": false}), "hsts", json!(false)),
        ];
        for (spec_proxy, key, want) in cases {
            let mut s = set("x", "ns");
            s.spec.proxy = proxy(spec_proxy.clone());
            let cm = desired_config_map(&s, false).expect("valid");
            let data = cm.data.expect("data");
            let expected = DataplaneConfig::from_proxy(&s.spec.proxy)
                .expect("valid")
                .to_config_map_data();
            assert_eq!(
                data[CONFIG_MAP_KEY], expected[CONFIG_MAP_KEY],
                "{spec_proxy}"
            );
            let doc: serde_json::Value =
                serde_json::from_str(&data[CONFIG_MAP_KEY]).expect("config.json is JSON");
            assert_eq!(doc[key], want, "{key} for {spec_proxy}");
            // And the data plane reads back what was written.
            let read = DataplaneConfig::from_config_map_data(&data).expect("reads back");
            assert_eq!(
                read,
                DataplaneConfig::from_proxy(&s.spec.proxy).expect("valid")
            );
        }
    }

    #[test]
    fn renders_fleet_settings() {
        let backend = |port: BackendPort| DefaultBackend {
            service: BackendService {
                name: "fallback".into(),
                port,
            },
        };
        // (set edit, effective watch-without-class, expected fleet.json)
        type Edit = fn(&mut IngressControllerSet);
        let cases: Vec<(Edit, bool, serde_json::Value)> = vec![
            (
                |_| {},
                false,
                json!({"setNamespace": "ns", "setName": "x", "ingressClassName": "x-class",
                       "watchIngressWithoutClass": false, "proxyProtocol": false}),
            ),
            // The effective claim is written, whatever the spec says.
            (
                |s| s.spec.watch_ingress_without_class = true,
                false,
                json!({"setNamespace": "ns", "setName": "x", "ingressClassName": "x-class",
                       "watchIngressWithoutClass": false, "proxyProtocol": false}),
            ),
            (
                |s| {
                    s.spec.watch_ingress_without_class = true;
                    s.spec.load_balancer.proxy_protocol = true;
                    s.spec.publish_status_address =
                        vec!["203.0.113.7".into(), "lb.example.com".into()];
                },
                true,
                json!({"setNamespace": "ns", "setName": "x", "ingressClassName": "x-class",
                       "watchIngressWithoutClass": true, "proxyProtocol": true,
                       "publishStatusAddress": ["203.0.113.7", "lb.example.com"]}),
            ),
        ];
        for (i, (edit, watch, want)) in cases.into_iter().enumerate() {
            let mut s = set("x", "ns");
            edit(&mut s);
            let cm = desired_config_map(&s, watch).expect("valid");
            let got: serde_json::Value =
                serde_json::from_str(&cm.data.as_ref().expect("data")[FLEET_CONFIG_MAP_KEY])
                    .expect("json");
            assert_eq!(got, want, "case {i}");
            assert_eq!(fleet_of(&cm), fleet_settings(&s, watch), "case {i}");
        }

        // Default backend by number and by name.
        for (port, number, name) in [
            (
                BackendPort {
                    number: Some(8080),
                    name: None,
                },
                Some(8080),
                None,
            ),
            (
                BackendPort {
                    number: None,
                    name: Some("http".into()),
                },
                None,
                Some("http"),
            ),
        ] {
            let mut s = set("x", "ns");
            s.spec.default_backend = Some(backend(port));
            let fleet = fleet_of(&desired_config_map(&s, false).expect("valid"));
            let got = fleet.default_backend.expect("default backend");
            assert_eq!(got.service, "fallback");
            assert_eq!(got.port_number, number);
            assert_eq!(got.port_name.as_deref(), name);
        }
    }

    #[test]
    fn invalid_settings_are_an_error_naming_the_field() {
        let mut s = set("x", "ns");
        s.spec.proxy = proxy(json!({"proxyReadTimeout": "0"}));
        let err = desired_config_map(&s, false).expect_err("a zero timeout is refused");
        assert_eq!(err.field(), Some("proxyReadTimeout"), "{err}");
    }

    #[test]
    fn same_set_same_bytes() {
        let mut s = set("x", "ns");
        s.spec.proxy = proxy(json!({"proxyBodySize": "8m", "hsts": true}));
        assert_eq!(
            desired_config_map(&s, true).expect("valid"),
            desired_config_map(&s.clone(), true).expect("valid")
        );
    }
}
