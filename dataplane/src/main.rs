//! `sluice-dataplane`: the proxy fleet of one IngressClass.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// Serves the Ingresses of one IngressClass: config generator plus proxy.
#[derive(Parser, Debug)]
#[command(name = "sluice-dataplane", version, about)]
struct Args {
    /// The IngressClass this fleet serves.
    #[arg(long)]
    ingress_class: Option<String>,
    /// The fleet's ConfigMap, as namespace/name.
    #[arg(long)]
    config_map: Option<String>,
    /// The Service whose load-balancer address is published into Ingress status, as namespace/name.
    #[arg(long)]
    publish_service: Option<String>,
    /// Address the HTTP, HTTPS and admin listeners bind.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    #[arg(long, default_value_t = 8443)]
    https_port: u16,
    /// Serves /healthz, /readyz and /metrics.
    #[arg(long, default_value_t = 10254)]
    admin_port: u16,
    /// Serves the debug endpoint, always on 127.0.0.1.
    #[arg(long, default_value_t = 10246)]
    debug_port: u16,
    /// The HTTPS port clients see, written into redirects.
    #[arg(long, default_value_t = 443)]
    external_https_port: u16,
    /// Path to a kubeconfig. Defaults to $KUBECONFIG, then the in-cluster service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
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
    tracing::info!(server = %version.git_version, ?args, "connected");
    Ok(())
}
