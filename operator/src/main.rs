//! `sluice-operator`: reconciles IngressControllerSets into data-plane fleets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sluice_operator::context::Metrics;
use sluice_operator::migrate::cli::MigrateReportArgs;
use sluice_operator::{admin, controller, migrate};

/// Reconciles IngressControllerSets (sluice.dev/v1alpha1) into data-plane fleets.
///
/// Without a subcommand it runs the controller; the flags below are the controller's.
#[derive(Parser, Debug)]
#[command(name = "sluice-operator", version, about)]
struct Args {
    /// A one-shot tool instead of the controller.
    #[command(subcommand)]
    command: Option<Command>,
    /// Path to a kubeconfig. Defaults to $KUBECONFIG, then the in-cluster service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Container image of the data-plane fleets the operator creates.
    #[arg(long, default_value = "ghcr.io/sluice-dev/sluice:latest")]
    dataplane_image: String,
    /// imagePullPolicy of the fleets' pods (Always, IfNotPresent, Never); default: Kubernetes'.
    #[arg(long)]
    dataplane_image_pull_policy: Option<String>,
    /// Serves /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:10254")]
    admin_address: SocketAddr,
    /// Elect a leader through a Lease, so several replicas can run; only the leader reconciles.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Namespace of the leader-election Lease. Defaults to the pod's namespace, else
    /// sluice-system.
    #[arg(long, env = "POD_NAMESPACE", default_value = "sluice-system")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "sluice-operator")]
    lease_name: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report what Sluice makes of the cluster's ingress-nginx Ingresses.
    ///
    /// Per Ingress: the annotations Sluice applies, translates, ignores and rejects (with the
    /// reason), and a verdict: served identically, served with differences (listed), or not
    /// served (why). With --ingress-nginx-configmap, the controller ConfigMap is mapped onto a
    /// suggested spec.proxy; TCP/UDP services ConfigMaps are listed as not served. Read-only:
    /// lists Ingresses and gets the named ConfigMaps.
    ///
    /// Exit status: 0 when the report is printed, whatever the verdicts; 1 when it cannot be
    /// made (cluster unreachable, forbidden, a named ConfigMap missing); 2 for a usage error.
    MigrateReport(MigrateReportArgs),
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

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// The migrate-report subcommand: the report on stdout, anything else on stderr, so
/// `--output json` can be piped into a script.
async fn migrate_report(
    args: &MigrateReportArgs,
    top_kubeconfig: Option<&PathBuf>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    // `sluice-operator --kubeconfig P migrate-report` works too.
    let client = client(args.kubeconfig.as_ref().or(top_kubeconfig)).await?;
    let out = migrate::cli::run(client, args).await?;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A reader that stopped early (`| head`) is not an error of ours.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before any TLS is set up: kube, hyper and the proxy must all use aws-lc-rs.
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    let args = Args::parse();
    if let Some(Command::MigrateReport(report_args)) = &args.command {
        return migrate_report(report_args, args.kubeconfig.as_ref()).await;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let client = client(args.kubeconfig.as_ref()).await?;
    let version = client.apiserver_version().await?;
    tracing::info!(server = %version.git_version, image = %args.dataplane_image, "connected");

    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(admin::serve(
        args.admin_address,
        metrics.clone(),
        ready.clone(),
    ));

    let settings = controller::Settings {
        image: args.dataplane_image.clone(),
        image_pull_policy: args.dataplane_image_pull_policy.clone(),
    };
    if !args.leader_elect {
        controller::run(client, settings, metrics, ready, shutdown_signal()).await;
        return Ok(());
    }

    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("sluice-operator-{}", std::process::id()));
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leading, lease_task) = manager.watch().await;
    tracing::info!(%identity, lease = %args.lease_name, namespace = %args.lease_namespace, "waiting for leadership");
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // Wait to become leader (or to be told to stop).
        while !*leading.borrow_and_update() {
            tokio::select! {
                changed = leading.changed() => if changed.is_err() { anyhow::bail!("leader election stopped") },
                _ = &mut shutdown => return Ok(()),
            }
        }
        tracing::info!("leading: starting the controller");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = controller::run(
            client.clone(),
            controller::Settings {
                image: args.dataplane_image.clone(),
                image_pull_policy: args.dataplane_image_pull_policy.clone(),
            },
            metrics.clone(),
            ready.clone(),
            async move {
                let _ = stop_rx.await;
            },
        );
        tokio::pin!(run);
        let stop_reason = loop {
            tokio::select! {
                _ = &mut run => break "controller ended",
                changed = leading.changed() => {
                    if changed.is_err() || !*leading.borrow() { break "lost leadership" }
                }
                _ = &mut shutdown => break "shutdown",
            }
        };
        tracing::info!(reason = stop_reason, "stopping the controller");
        let _ = stop_tx.send(());
        run.await;
        if stop_reason == "shutdown" {
            drop(leading);
            let _ = lease_task.await;
            return Ok(());
        }
    }
}
