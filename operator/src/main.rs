//! `sluice-operator`: reconciles IngressControllerSets into data-plane fleets.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// Reconciles IngressControllerSets (sluice.dev/v1alpha1) into data-plane fleets.
#[derive(Parser, Debug)]
#[command(name = "sluice-operator", version, about)]
struct Args {
    /// Path to a kubeconfig. Defaults to $KUBECONFIG, then the in-cluster service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Container image of the data-plane fleets the operator creates.
    #[arg(long, default_value = "ghcr.io/sluice-dev/sluice:latest")]
    dataplane_image: String,
}

async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before any TLS is set up: kube, hyper and the proxy must all use aws-lc-rs.
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let client = client(args.kubeconfig.as_ref()).await?;
    let version = client.apiserver_version().await?;
    tracing::info!(server = %version.git_version, image = %args.dataplane_image, "connected");
    Ok(())
}
