//! `sluice-dataplane`: the proxy fleet of one IngressClass.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use sluice_crds::fleet::FleetSettings;
use sluice_dataplane::generator::{self, GeneratorOptions, GeneratorStats, Published};
use sluice_dataplane::shared::Shared;
use sluice_dataplane::translate::ObjectKey;
use sluice_dataplane::{admin, debug, events, proxy, sched, snapshot_text, status};

/// Serves the Ingresses of one IngressClass: config generator plus proxy.
#[derive(Parser, Debug)]
#[command(name = "sluice-dataplane", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The IngressClass this fleet serves.
    #[arg(long)]
    ingress_class: Option<String>,
    /// The fleet's ConfigMap, as namespace/name (named after its IngressControllerSet).
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
    /// Serves the debug endpoint (GET /snapshot), always on 127.0.0.1.
    #[arg(long, default_value_t = 10246, global = true)]
    debug_port: u16,
    /// The HTTPS port clients see, written into redirects.
    #[arg(long, default_value_t = 443)]
    external_https_port: u16,
    /// Path to a kubeconfig. Defaults to $KUBECONFIG, then the in-cluster service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// How long in-flight requests may run after SIGTERM before they are cut.
    #[arg(long, default_value = "30s", value_parser = humantime_secs)]
    drain_timeout: Duration,
    /// Write one JSON access-log line per request to stdout.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the running data plane's current snapshot (hosts, paths, backends, endpoints).
    Snapshot {
        /// Print the raw JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

fn humantime_secs(s: &str) -> Result<Duration, String> {
    sluice_crds::dataplane_config::parse_duration(s).map_err(|e| e.to_string())
}

fn split_key(flag: &str, value: &str) -> anyhow::Result<ObjectKey> {
    match value.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok(ObjectKey::new(ns, name)),
        _ => bail!("--{flag} must be namespace/name, got {value:?}"),
    }
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

async fn print_snapshot(port: u16, json: bool) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let body = debug::fetch_snapshot(addr)
        .await
        .with_context(|| format!("reading the snapshot from the debug endpoint {addr}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", snapshot_text::render(&body));
    }
    Ok(())
}

/// Leadership for Ingress status and Events: a Lease named after the set, in its namespace.
async fn elect(
    client: kube::Client,
    lease: ObjectKey,
    identity: String,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let manager =
                match kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &*lease.name)
                    .with_namespace(&*lease.namespace)
                    .with_identity(&identity)
                    .with_duration(15)
                    .with_grace(5)
                    .build()
                    .await
                {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "leader election unavailable; retrying");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        continue;
                    }
                };
            let (mut leading, task) = manager.watch().await;
            loop {
                let is = *leading.borrow_and_update();
                if tx.send(is).is_err() {
                    return;
                }
                if leading.changed().await.is_err() {
                    break;
                }
            }
            let _ = tx.send(false);
            let _ = task.await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx
}

fn main() -> anyhow::Result<()> {
    runtime(worker_threads())
        .context("starting the async runtime")?
        .block_on(run())
}

/// jemalloc, not glibc malloc. glibc keeps what a thread frees resident in that thread's arena
/// until `malloc_trim`, which holds the arena for milliseconds: 10k idle keep-alive connections
/// left 5 KiB per connection of freed request buffers resident (84 MiB RSS, 3.3x nginx), and at
/// 10k Ingresses RSS stayed at its peak long after 1000 config changes (108.7 MiB 70 s later;
/// with jemalloc 88.1 falling to 80.0). jemalloc's background thread returns freed pages to the
/// OS about a second after they go unused, with no lock a worker waits on (settings in
/// `_rjem_malloc_conf`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads this before `main` (tikv-jemalloc-sys prefixes its symbols with `_rjem_`);
/// `_RJEM_MALLOC_CONF` in the environment still overrides it. `background_thread`: purging
/// runs on jemalloc's own thread, also while the proxy is idle and allocates nothing.
/// `dirty_decay_ms:1000`: freed pages are reused for a second before they are returned, so a
/// burst of requests does not map and unmap its buffers each time.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &u8 = &b"background_thread:true,dirty_decay_ms:1000\0"[0];

/// The proxy's runtime. With one worker (`TOKIO_WORKER_THREADS=1`, as tokio reads it), a
/// current-thread runtime: the multi-thread scheduler's cross-thread queues and wake-ups cost
/// about a quarter of the CPU per proxied request and buy nothing on one worker. Translation
/// runs on the blocking pool either way, so it never holds up requests.
///
/// Every thread that serves requests asks for the kernel's shortest time slice
/// ([`sched::prefer_latency`]): the current-thread runtime's is the calling one, the
/// multi-thread runtime's are started with it. Blocking-pool threads are started with it too;
/// translation gives theirs back (see the `sched` module).
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if workers == 1 {
        sched::prefer_latency();
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .on_thread_start(sched::prefer_latency)
        .enable_all()
        .build()
}

/// Worker threads as tokio counts them: `TOKIO_WORKER_THREADS`, else the CPUs available to
/// the process (a cgroup CPU limit counts).
fn worker_threads() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

async fn run() -> anyhow::Result<()> {
    // Before any TLS is set up: kube, hyper and the proxy must all use aws-lc-rs.
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(Command::Snapshot { json }) = args.command {
        return print_snapshot(args.debug_port, json).await;
    }
    let class = args
        .ingress_class
        .clone()
        .context("--ingress-class is required")?;
    let config_map = split_key(
        "config-map",
        args.config_map
            .as_deref()
            .context("--config-map is required")?,
    )?;
    let publish_service = split_key(
        "publish-service",
        args.publish_service
            .as_deref()
            .context("--publish-service is required")?,
    )?;

    let client = client(args.kubeconfig.as_ref()).await?;
    let shared = Shared::new(FleetSettings {
        set_namespace: config_map.namespace.to_string(),
        set_name: config_map.name.to_string(),
        ingress_class_name: class.clone(),
        ..Default::default()
    });

    let mut registry = prometheus_client::registry::Registry::with_prefix("sluice");
    let proxy_metrics = Arc::new(proxy::ProxyMetrics::new(&mut registry));
    let stats = Arc::new(GeneratorStats::default());
    let registry = Arc::new(admin::with_generator_metrics(registry, stats.clone()));

    let admin_addr = SocketAddr::new(args.bind_address, args.admin_port);
    let admin_listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding the admin port {admin_addr}"))?;
    tokio::spawn(admin::serve(
        admin_listener,
        shared.clone(),
        registry.clone(),
    ));
    let debug_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.debug_port));
    match tokio::net::TcpListener::bind(debug_addr).await {
        Ok(l) => {
            tokio::spawn(debug::serve(l, shared.clone()));
        }
        Err(e) => tracing::warn!(%debug_addr, error = %e, "debug endpoint disabled"),
    }

    let (published_tx, published_rx) = tokio::sync::watch::channel(Arc::new(Published::default()));
    tokio::spawn(generator::run(
        client.clone(),
        shared.clone(),
        GeneratorOptions {
            class_name: class.clone(),
            config_map: config_map.clone(),
            publish_service,
        },
        stats,
        published_tx,
    ));

    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("{}-{}", args.bind_address, std::process::id()));
    let leader = elect(client.clone(), config_map.clone(), identity.clone()).await;
    tokio::spawn(status::run(
        client.clone(),
        published_rx.clone(),
        leader.clone(),
    ));
    tokio::spawn(events::run(client.clone(), identity, published_rx, leader));

    let http_addr = SocketAddr::new(args.bind_address, args.http_port);
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding the HTTP port {http_addr}"))?;
    let https_addr = SocketAddr::new(args.bind_address, args.https_port);
    let https_listener = tokio::net::TcpListener::bind(https_addr)
        .await
        .with_context(|| format!("binding the HTTPS port {https_addr}"))?;
    // Generated once per process: served for names without a certificate until (or unless)
    // the set's defaultSslCertificate is readable.
    let tls = Arc::new(proxy::Tls::new().context("setting up TLS")?);
    let proxy = Arc::new(proxy::Proxy::new(
        shared.clone(),
        proxy_metrics,
        proxy::ProxyOptions {
            external_https_port: args.external_https_port,
            access_log: args.access_log,
            ..Default::default()
        },
    ));
    tracing::info!(%http_addr, %https_addr, %admin_addr, class = %class, "serving");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: tokio::sync::watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let server = tokio::spawn(proxy::serve_http(
        http_listener,
        proxy.clone(),
        stopped(stop_rx.clone()),
        args.drain_timeout,
    ));
    let https_server = tokio::spawn(proxy::serve_https(
        https_listener,
        proxy,
        tls,
        stopped(stop_rx),
        args.drain_timeout,
    ));

    wait_for_termination().await;
    // Fail readiness first so the load balancer stops sending, then stop accepting and let
    // in-flight requests finish up to the drain deadline.
    tracing::info!("terminating: draining");
    shared.start_draining();
    let _ = stop_tx.send(true);
    let _ = tokio::join!(server, https_server);
    tracing::info!("drained; exiting");
    Ok(())
}

async fn wait_for_termination() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
