//! The local control plane's env file, a kube client from it, and per-test namespaces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

/// What `tests/cluster/up.sh` wrote into `$SLUICE_STATE/env`.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub kubeconfig: PathBuf,
    pub kubebins: PathBuf,
    /// `stage1` (etcd + kube-apiserver) or `all` (with controller manager, scheduler, kwok).
    pub stage: String,
    pub vars: BTreeMap<String, String>,
}

impl TestEnv {
    /// Reads the env file named by `SLUICE_ENV_FILE`, else `$SLUICE_STATE/env`.
    pub fn load() -> anyhow::Result<Self> {
        let path = match std::env::var_os("SLUICE_ENV_FILE") {
            Some(p) => PathBuf::from(p),
            None => match std::env::var_os("SLUICE_STATE") {
                Some(s) => Path::new(&s).join("env"),
                None => bail!(
                    "SLUICE_ENV_FILE is not set: integration tests run through `make test`, \
                     which starts the local control plane (tests/scripts/integration.sh)"
                ),
            },
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the cluster env file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses `export KEY=VALUE` lines; comments and blank lines are skipped.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let vars: BTreeMap<String, String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .with_context(|| format!("{k} missing from the env file"))
        };
        Ok(Self {
            kubeconfig: get("KUBECONFIG")?.into(),
            kubebins: get("SLUICE_KUBEBINS")?.into(),
            stage: get("SLUICE_CLUSTER_STAGE")?,
            vars,
        })
    }

    /// True when the controller manager, scheduler and kwok run (Deployments roll out, GC works).
    pub fn has_stage2(&self) -> bool {
        self.stage == "all"
    }

    /// The admin kube client (system:masters).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        crate::install_crypto_provider();
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// The kubectl built from the same Kubernetes version as the control plane.
    pub fn kubectl(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.kubebins.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }
}

/// A namespace created for one test and deleted when it is dropped.
pub struct TestNamespace {
    pub name: String,
    env: TestEnv,
}

static NS_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestNamespace {
    /// Creates `<prefix>-<pid>-<n>`, unique within the run.
    pub async fn create(
        env: &TestEnv,
        client: &kube::Client,
        prefix: &str,
    ) -> anyhow::Result<Self> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NS_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("sluice.dev/test".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self {
            name,
            env: env.clone(),
        })
    }

    /// Deletes the namespace now and waits for the API server to accept it.
    pub async fn delete(self, client: &kube::Client) -> anyhow::Result<()> {
        Api::<Namespace>::all(client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for TestNamespace {
    // Drop cannot await; kubectl deletes it without waiting (a failed test still cleans up).
    fn drop(&mut self) {
        let _ = self
            .env
            .kubectl()
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_file() {
        let env = TestEnv::parse(
            "# comment\nexport KUBECONFIG=/s/kubeconfig\nexport SLUICE_KUBEBINS=/bins\n\
             export SLUICE_CLUSTER_STAGE=all\nexport PATH=/bins:$PATH\n",
        )
        .unwrap();
        assert_eq!(env.kubeconfig, PathBuf::from("/s/kubeconfig"));
        assert_eq!(env.kubebins, PathBuf::from("/bins"));
        assert!(env.has_stage2());
        assert_eq!(env.vars["PATH"], "/bins:$PATH");
    }

    #[test]
    fn missing_kubeconfig_is_an_error() {
        let err = TestEnv::parse("export SLUICE_KUBEBINS=/b\n").unwrap_err();
        assert!(err.to_string().contains("KUBECONFIG"), "{err}");
    }
}
