//! Real ServiceAccount identities for tests: a token from the TokenRequest API, written into a
//! kubeconfig that has the admin kubeconfig's server and CA but nothing of its credentials, so
//! a process (or client) using it has exactly the RBAC the ServiceAccount is bound to.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::TestEnv;

/// Requests a one-hour token for ServiceAccount `namespace/name` (as the kubelet would for a
/// pod) and writes a kubeconfig using it to `path`. JSON is YAML, so kubectl and kube-rs read it.
pub async fn service_account_kubeconfig(
    env: &TestEnv,
    admin: &kube::Client,
    namespace: &str,
    name: &str,
    path: &Path,
) -> anyhow::Result<PathBuf> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            // Empty: the API server's own audience.
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("requesting a token for ServiceAccount {namespace}/{name}"))?;
    let token = issued
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .with_context(|| format!("the TokenRequest for {namespace}/{name} returned no token"))?;

    let admin_config = kube::config::Kubeconfig::read_from(&env.kubeconfig)?;
    let cluster = admin_config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .context("the admin kubeconfig has no cluster")?;
    let server = cluster
        .server
        .clone()
        .context("the admin kubeconfig's cluster has no server")?;
    let ca = cluster
        .certificate_authority_data
        .clone()
        .context("the admin kubeconfig's cluster has no certificate-authority-data")?;
    let user = format!("{namespace}-{name}");
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sluice-test", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "sluice-test", "user": user}}],
        "current-context": user,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&kubeconfig)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// A kube client from a kubeconfig file (such as one written by
/// [`service_account_kubeconfig`]).
pub async fn client_from(path: &Path) -> anyhow::Result<kube::Client> {
    crate::install_crypto_provider();
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
