//! A data-plane fleet for tests without the operator: the ConfigMap and IngressClass the
//! operator would create, and `sluice-dataplane` running as a local process on its own
//! address of the test network, standing in for one pod.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::backend::next_backend_ip;
use crate::process::Proc;
use crate::{TestEnv, wait_until};

/// One running data plane and the names it serves.
pub struct DataPlane {
    pub class: String,
    pub namespace: String,
    pub set: String,
    pub ip: IpAddr,
    pub http: SocketAddr,
    /// The HTTPS listener (`--https-port 8443`).
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub debug_port: u16,
    pub proc: Proc,
}

/// A free TCP port on 127.0.0.1 (for the debug endpoint, which always binds there).
pub fn free_local_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Creates (server-side apply) IngressClass `class` pointing at set `namespace/set`, and
/// the set's ConfigMap with `fleet.json` and `config.json`, as the operator renders them.
pub async fn apply_fleet_objects(
    client: &kube::Client,
    namespace: &str,
    set: &str,
    class: &str,
    fleet_extra: serde_json::Value,
    proxy: serde_json::Value,
) -> anyhow::Result<()> {
    let classes: Api<IngressClass> = Api::all(client.clone());
    classes
        .patch(
            class,
            &PatchParams::apply("sluice-tests").force(),
            &Patch::Apply(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": class},
                "spec": {"controller": "sluice.dev/ingress-controller",
                         "parameters": {"apiGroup": "sluice.dev", "kind": "IngressControllerSet",
                                        "name": set, "namespace": namespace, "scope": "Namespace"}}
            })),
        )
        .await?;
    let mut fleet = json!({"setNamespace": namespace, "setName": set, "ingressClassName": class});
    if let (Some(f), Some(extra)) = (fleet.as_object_mut(), fleet_extra.as_object()) {
        for (k, v) in extra {
            f.insert(k.clone(), v.clone());
        }
    }
    let config: sluice_crds::ProxySettings = serde_json::from_value(proxy)?;
    let config = sluice_crds::dataplane_config::DataplaneConfig::from_proxy(&config)?;
    let mut data = config.to_config_map_data();
    data.insert(
        sluice_crds::fleet::FLEET_CONFIG_MAP_KEY.into(),
        fleet.to_string(),
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    cms.patch(
        set,
        &PatchParams::apply("sluice-tests").force(),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": set, "namespace": namespace},
            "data": data,
        })),
    )
    .await?;
    Ok(())
}

impl DataPlane {
    /// Starts `sluice-dataplane` for `class` (its ConfigMap `namespace/set` must exist) on a
    /// fresh test-network address, and waits for `/readyz`.
    pub async fn start(
        env: &TestEnv,
        namespace: &str,
        set: &str,
        class: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with_kubeconfig(env, &env.kubeconfig, namespace, set, class).await
    }

    /// [`DataPlane::start`] with the credentials of `kubeconfig` instead of the admin's (such
    /// as the fleet ServiceAccount's token, see [`crate::token`]).
    pub async fn start_with_kubeconfig(
        env: &TestEnv,
        kubeconfig: &std::path::Path,
        namespace: &str,
        set: &str,
        class: &str,
    ) -> anyhow::Result<Self> {
        let ip = next_backend_ip();
        let debug_port = free_local_port()?;
        let args: Vec<String> = vec![
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--ingress-class".into(),
            class.into(),
            "--config-map".into(),
            format!("{namespace}/{set}"),
            "--publish-service".into(),
            format!("{namespace}/{set}"),
            "--bind-address".into(),
            ip.to_string(),
            "--http-port".into(),
            "8080".into(),
            "--https-port".into(),
            "8443".into(),
            "--admin-port".into(),
            "10254".into(),
            "--debug-port".into(),
            debug_port.to_string(),
            "--drain-timeout".into(),
            "5s".into(),
        ];
        let proc = Proc::spawn(
            env,
            &format!("dataplane-{class}-{ip}"),
            "sluice-dataplane",
            &args,
        )?;
        let dp = Self {
            class: class.into(),
            namespace: namespace.into(),
            set: set.into(),
            ip,
            http: SocketAddr::new(ip, 8080),
            https: SocketAddr::new(ip, 8443),
            admin: SocketAddr::new(ip, 10254),
            debug_port,
            proc,
        };
        dp.wait_ready(Duration::from_secs(30)).await?;
        Ok(dp)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let admin = self.admin;
        let log = self.proc.log.clone();
        wait_until(
            &format!("data plane {} ready", self.ip),
            timeout,
            || async move {
                let (status, _) = crate::backend::http_get(admin, "admin", "/readyz").await?;
                Ok((status == 200).then_some(()))
            },
        )
        .await
        .map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = tail.lines().collect();
            anyhow::anyhow!(
                "{e}\n--- data plane log tail ---\n{}",
                lines[lines.len().saturating_sub(30)..].join("\n")
            )
        })
    }

    /// The current snapshot from the debug endpoint (127.0.0.1 only).
    pub async fn snapshot(&self) -> anyhow::Result<serde_json::Value> {
        let (status, body) = crate::backend::http_get(
            SocketAddr::from(([127, 0, 0, 1], self.debug_port)),
            "localhost",
            "/snapshot",
        )
        .await?;
        anyhow::ensure!(status == 200, "debug endpoint answered {status}");
        Ok(serde_json::from_slice(&body)?)
    }
}
