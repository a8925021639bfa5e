//! What the data plane must know about its own set besides `spec.proxy`: which class it
//! serves, whether it takes Ingresses without a class, and the set's default backend. The
//! operator writes it into the set's ConfigMap next to the proxy settings, so the internet-facing
//! data plane needs no read access to IngressControllerSets.

use serde::{Deserialize, Serialize};

/// ConfigMap key holding [`FleetSettings`] as JSON.
pub const FLEET_CONFIG_MAP_KEY: &str = "fleet.json";

/// The set-level facts a data plane acts on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FleetSettings {
    /// Namespace of the IngressControllerSet (and of the fleet).
    pub set_namespace: String,
    /// Name of the IngressControllerSet.
    pub set_name: String,
    /// The IngressClass this fleet serves.
    pub ingress_class_name: String,
    /// Serve Ingresses that name no class. The operator sets it only for the one set that
    /// holds that claim cluster-wide.
    #[serde(default)]
    pub watch_ingress_without_class: bool,
    /// Where requests no rule matches go, in the set's namespace; else the built-in 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<FleetBackend>,
    /// The load balancer speaks PROXY protocol (v1 or v2) on every connection.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Addresses to publish into Ingress status instead of the Service's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish_status_address: Vec<String>,
}

/// A Service port in the set's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FleetBackend {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
}

impl FleetSettings {
    /// Parses the ConfigMap value; the error names the key.
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("{FLEET_CONFIG_MAP_KEY}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let f = FleetSettings {
            set_namespace: "sluice-system".into(),
            set_name: "ingress-public".into(),
            ingress_class_name: "public".into(),
            watch_ingress_without_class: true,
            default_backend: Some(FleetBackend {
                service: "fallback".into(),
                port_number: Some(8080),
                port_name: None,
            }),
            proxy_protocol: false,
            publish_status_address: vec![],
        };
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("publishStatusAddress"), "{json}");
        assert_eq!(FleetSettings::from_json(&json).unwrap(), f);
        let minimal = FleetSettings::from_json(
            r#"{"setNamespace":"n","setName":"s","ingressClassName":"c"}"#,
        )
        .unwrap();
        assert!(!minimal.watch_ingress_without_class && minimal.default_backend.is_none());
        let err = FleetSettings::from_json("{}").unwrap_err();
        assert!(err.starts_with("fleet.json:"), "{err}");
    }
}
