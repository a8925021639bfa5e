//! `sluice-scale-bench`: the control plane at scale (issue #9), driven by `tests/bench/scale.sh`
//! inside the benchmark's own network namespace against the local control plane.
//!
//!   sluice-scale-bench dataplane --out DIR   10k Ingresses: initial sync, RSS, change latency,
//!                                            churn under a fixed-rate load (Sluice, plain nginx)
//!   sluice-scale-bench operator --out DIR --proxy-cert C --proxy-key K
//!                                            50 IngressControllerSets to Ready, idle API writes
//!   sluice-scale-bench report --out DIR      scale-report.md from the JSON the two wrote
//!
//! Every figure is measured here, by this process, from outside the product: the load
//! generator is a small open-loop client (fixed rate, latency from the scheduled send time, so
//! a stall is not hidden by coordinated omission), and the operator's API writes are counted by
//! a TLS-terminating proxy between the operator and the API server.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_test_support::TestEnv;
use sluice_test_support::fleet::{apply_fleet_objects, free_local_port};

const NS: &str = "scale";
const CLASS: &str = "scale";
const BACKEND_PORT: u16 = 9090;
const SLUICE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 100, 1);
const NGINX_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 100, 2);
const LB_IP: &str = "198.51.100.10";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

// --- small helpers ---------------------------------------------------------------------------

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn say(msg: impl AsRef<str>) {
    eprintln!("[scale {}] {}", chrono_like_now(), msg.as_ref().trim_end());
}

fn chrono_like_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Resident and peak resident memory of a process, in MiB, from /proc/<pid>/status.
fn rss_mib(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Percentiles (nearest rank) of microsecond samples, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Pcts {
    n: usize,
    p50: f64,
    p90: f64,
    p95: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

fn pcts(samples: &mut [u64]) -> Pcts {
    samples.sort_unstable();
    let n = samples.len();
    let at = |q: f64| {
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        samples[rank - 1] as f64 / 1000.0
    };
    Pcts {
        n,
        p50: at(0.50),
        p90: at(0.90),
        p95: at(0.95),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    }
}

/// A child process killed when dropped (the data plane, nginx, the operator).
struct Kid {
    child: Child,
}

impl Kid {
    fn spawn(cmd: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log)?;
        let child = cmd
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        Ok(Self { child })
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin_dir() -> PathBuf {
    std::env::var_os("SLUICE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("release")
        })
}

// --- HTTP client: one keep-alive HTTP/1.1 connection ------------------------------------------

type Sender = SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

fn get(host: &str, path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::new())
        .expect("static request parts are valid")
}

/// GET on `sender`; the status, after reading the whole body.
async fn send(sender: &mut Sender, host: &str, path: &str) -> anyhow::Result<u16> {
    sender.ready().await?;
    let resp = sender.send_request(get(host, path)).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

async fn get_once(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<u16> {
    let mut s = connect(addr).await?;
    send(&mut s, host, path).await
}

// --- the backend: one tiny HTTP server answering 200 on every 10.244.x.y:9090 -------------------

async fn start_backend() -> anyhow::Result<()> {
    // Bound to the wildcard address inside the benchmark's own namespace, where every
    // 10.244.0.0/16 address is local: each Service's endpoint gets its own address.
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, BACKEND_PORT))
        .await
        .context("binding the backend (inside the benchmark's network namespace?)")?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(())
}

// --- the fixed-rate open-loop load generator ----------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LoadResult {
    label: String,
    rate: u32,
    secs: u64,
    sent: u64,
    ok_2xx: u64,
    non_2xx: u64,
    resets: u64,
    closed_before_response: u64,
    other_socket_errors: u64,
    timeouts: u64,
    latency_ms: Pcts,
    changes: u64,
    change_api_ms: Pcts,
    /// For plain nginx: how long `nginx -s reload` (config rewrite included) took.
    reload_ms: Pcts,
    loadavg_before: String,
    loadavg_after: String,
}

impl LoadResult {
    fn errors(&self) -> u64 {
        self.non_2xx
            + self.resets
            + self.closed_before_response
            + self.other_socket_errors
            + self.timeouts
    }
}

enum Outcome {
    Ok(u64),
    Status,
    Reset,
    Closed,
    Socket,
    Timeout,
}

fn classify(e: &anyhow::Error) -> Outcome {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )
        {
            return Outcome::Reset;
        }
        if let Some(h) = cause.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled() || h.is_closed())
        {
            return Outcome::Closed;
        }
    }
    Outcome::Socket
}

type Pool = Arc<Mutex<Vec<Sender>>>;

async fn one_request(
    target: SocketAddr,
    pool: Pool,
    host: String,
    path: &'static str,
    scheduled: tokio::time::Instant,
) -> Outcome {
    let pooled = {
        let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        while let Some(s) = p.pop() {
            if !s.is_closed() && s.is_ready() {
                found = Some(s);
                break;
            }
        }
        found
    };
    let work = async {
        let mut sender = match pooled {
            Some(s) => s,
            None => connect(target).await?,
        };
        let status = send(&mut sender, &host, path).await?;
        Ok::<_, anyhow::Error>((status, sender))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(e)) => classify(&e),
        Ok(Ok((status, sender))) => {
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(sender);
            if (200..300).contains(&status) {
                Outcome::Ok(scheduled.elapsed().as_micros() as u64)
            } else {
                Outcome::Status
            }
        }
    }
}

/// Sends `rate` requests per second for `secs` seconds, spread over `hosts` (paths /a and /b),
/// on keep-alive connections opened as needed. Latency counts from the scheduled send time.
async fn run_load(
    label: &str,
    target: SocketAddr,
    hosts: Arc<Vec<String>>,
    rate: u32,
    secs: u64,
) -> LoadResult {
    let pool: Pool = Arc::new(Mutex::new(Vec::new()));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = u64::from(rate) * secs;
    let mut tasks = tokio::task::JoinSet::new();
    let mut r = LoadResult {
        label: label.into(),
        rate,
        secs,
        loadavg_before: loadavg(),
        ..Default::default()
    };
    let mut lat = Vec::with_capacity(total as usize);
    let tally = |r: &mut LoadResult, o: Outcome, lat: &mut Vec<u64>| match o {
        Outcome::Ok(us) => {
            r.ok_2xx += 1;
            lat.push(us);
        }
        Outcome::Status => r.non_2xx += 1,
        Outcome::Reset => r.resets += 1,
        Outcome::Closed => r.closed_before_response += 1,
        Outcome::Socket => r.other_socket_errors += 1,
        Outcome::Timeout => r.timeouts += 1,
    };
    for i in 0..total {
        let scheduled = ticker.tick().await;
        let host = hosts[(i as usize / 2) % hosts.len()].clone();
        let path = if i % 2 == 0 { "/a" } else { "/b" };
        tasks.spawn(one_request(target, pool.clone(), host, path, scheduled));
        r.sent += 1;
        while let Some(Ok(o)) = tasks.try_join_next() {
            tally(&mut r, o, &mut lat);
        }
    }
    while let Some(o) = tasks.join_next().await {
        if let Ok(o) = o {
            tally(&mut r, o, &mut lat);
        }
    }
    r.latency_ms = pcts(&mut lat);
    r.loadavg_after = loadavg();
    r
}

// --- Kubernetes objects --------------------------------------------------------------------------

fn endpoint_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, (128 + i / 250) as u8, (2 + i % 250) as u8)
}

fn host(i: usize) -> String {
    format!("h{i}.scale.test")
}

fn path_json(path: &str, svc: usize) -> Value {
    json!({"path": path, "pathType": "Prefix",
           "backend": {"service": {"name": format!("s{svc}"), "port": {"number": 80}}}})
}

fn ingress_json(name: &str, host: &str, paths: Vec<Value>) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"ingressClassName": CLASS, "rules": [{"host": host, "http": {"paths": paths}}]}
    })
}

/// Ingress `i<i>`: host h<i>, /a -> s<i>, /b -> s<b>.
fn ingress(i: usize, b: usize) -> Value {
    ingress_json(
        &format!("i{i}"),
        &host(i),
        vec![path_json("/a", i), path_json("/b", b)],
    )
}

async fn create_all<K, F>(api: Api<K>, n: usize, make: F) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned,
    F: Fn(usize) -> Value,
{
    let objs: Vec<K> = (0..n)
        .map(|i| serde_json::from_value(make(i)))
        .collect::<Result<_, _>>()?;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(objs)
        .map(|o| {
            let api = api.clone();
            async move {
                match api.create(&PostParams::default(), &o).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

// --- the data-plane scenarios ----------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DataplaneReport {
    ingresses: usize,
    services: usize,
    endpoint_slices: usize,
    secrets: usize,
    apply_secs: f64,
    apply_objects_per_sec: f64,
    sync_secs: f64,
    routes_checked_after_ready: Vec<(String, u16)>,
    rss_after_sync_mib: f64,
    status_settle_secs: Option<f64>,
    status_written: usize,
    rss_after_status_mib: f64,
    changes: usize,
    change_failures: usize,
    change_create_ms: Pcts,
    change_edit_ms: Pcts,
    change_all_ms: Pcts,
    change_api_ms: Pcts,
    rss_after_changes_mib: f64,
    /// After the churn runs: by then the changes' idle upstream connections (kept 60 s) have
    /// closed when the churn lasted long enough, so this tells them from retained memory.
    #[serde(default)]
    rss_at_end_mib: f64,
    #[serde(default)]
    secs_from_changes_to_end: f64,
    peak_rss_mib: f64,
    churn: Vec<LoadResult>,
    nginx_error: Option<String>,
    loadavg_start: String,
    loadavg_end: String,
    worker_threads: String,
    load_hosts: usize,
    publish_status: bool,
}

struct Opts {
    out: PathBuf,
    n: usize,
    changes: usize,
    churn_secs: u64,
    rate: u32,
    load_hosts: usize,
}

async fn dataplane(out: PathBuf) -> anyhow::Result<()> {
    let o = Opts {
        out,
        n: env_or("BENCH_SCALE_INGRESSES", 10_000),
        changes: env_or("BENCH_SCALE_CHANGES", 1000),
        churn_secs: env_or("BENCH_SCALE_CHURN_SECS", 120),
        rate: env_or("BENCH_SCALE_RATE", 500),
        load_hosts: env_or("BENCH_SCALE_LOAD_HOSTS", 100),
    };
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let mut rep = DataplaneReport {
        ingresses: o.n,
        services: o.n,
        endpoint_slices: o.n,
        loadavg_start: loadavg(),
        worker_threads: std::env::var("BENCH_SCALE_DP_THREADS").unwrap_or_else(|_| "1".into()),
        load_hosts: o.load_hosts.min(o.n),
        ..Default::default()
    };
    start_backend().await?;

    // Objects: the fleet's class + ConfigMap, the publish Service with a load-balancer
    // address, then N Services, N EndpointSlices and N Ingresses (two paths each).
    let nss: Api<Namespace> = Api::all(client.clone());
    let _ = nss
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await;
    apply_fleet_objects(&client, NS, "fleet", CLASS, json!({}), json!({})).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    services
        .patch(
            "fleet",
            &PatchParams::apply("sluice-scale-bench").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "fleet", "namespace": NS},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})),
        )
        .await?;
    // BENCH_SCALE_STATUS=0: no address, so the fleet writes no Ingress status (isolates the
    // status writer's load from the change-latency and churn runs).
    let publish_status = env_or("BENCH_SCALE_STATUS", 1) == 1;
    rep.publish_status = publish_status;
    if publish_status {
        services
            .patch_status(
                "fleet",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}})),
            )
            .await?;
    }
    let n = o.n;
    let t = Instant::now();
    say(format!(
        "creating {n} Services, EndpointSlices and Ingresses (32 concurrent creates)"
    ));
    create_all(services.clone(), n, |i| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("s{i}"), "namespace": NS},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": BACKEND_PORT}]}})
    })
    .await?;
    create_all(Api::<EndpointSlice>::namespaced(client.clone(), NS), n, |i| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": format!("s{i}-1"), "namespace": NS,
                            "labels": {"kubernetes.io/service-name": format!("s{i}")}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [endpoint_ip(i).to_string()], "conditions": {"ready": true}}],
               "ports": [{"name": "http", "port": BACKEND_PORT, "protocol": "TCP"}]})
    })
    .await?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), NS);
    create_all(ingresses.clone(), n, |i| ingress(i, (i + 1) % n)).await?;
    rep.apply_secs = t.elapsed().as_secs_f64();
    rep.apply_objects_per_sec = (3 * n) as f64 / rep.apply_secs;
    say(format!(
        "created {} objects in {:.1}s ({:.0}/s)",
        3 * n,
        rep.apply_secs,
        rep.apply_objects_per_sec
    ));

    // Initial sync: from starting the process to the first 200 on /readyz.
    let debug_port = free_local_port()?;
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        &std::env::var("BENCH_SCALE_DP_CPUS").unwrap_or_else(|_| "1".into()),
    ])
    .arg(bin_dir().join("sluice-dataplane"))
    .arg("--kubeconfig")
    .arg(&env.kubeconfig)
    .args(["--ingress-class", CLASS, "--config-map", "scale/fleet"])
    .args(["--publish-service", "scale/fleet", "--bind-address"])
    .arg(SLUICE_IP.to_string())
    .args([
        "--http-port",
        "8080",
        "--https-port",
        "8443",
        "--admin-port",
        "10254",
    ])
    .args([
        "--debug-port",
        &debug_port.to_string(),
        "--access-log=false",
    ])
    .args(["--drain-timeout", "2s"])
    .env("TOKIO_WORKER_THREADS", &rep.worker_threads)
    .env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    let admin = SocketAddr::new(IpAddr::V4(SLUICE_IP), 10254);
    let http = SocketAddr::new(IpAddr::V4(SLUICE_IP), 8080);
    say("starting the data plane, waiting for /readyz");
    let t = Instant::now();
    let mut dp = Kid::spawn(&mut cmd, &o.out.join("scale-dataplane.log"))?;
    loop {
        if matches!(get_once(admin, "admin", "/readyz").await, Ok(200)) {
            break;
        }
        if !dp.alive() {
            bail!(
                "the data plane exited; see {}",
                o.out.join("scale-dataplane.log").display()
            );
        }
        if t.elapsed() > Duration::from_secs(300) {
            bail!("the data plane was not ready after 300s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rep.sync_secs = t.elapsed().as_secs_f64();
    for i in [0, n / 2, n - 1] {
        for p in ["/a", "/b"] {
            let s = get_once(http, &host(i), p).await.unwrap_or(0);
            rep.routes_checked_after_ready
                .push((format!("{}{p}", host(i)), s));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    rep.rss_after_sync_mib = rss_mib(dp.pid()).0;
    say(format!(
        "ready after {:.2}s; RSS {:.1} MiB; routes right after ready: {:?}",
        rep.sync_secs, rep.rss_after_sync_mib, rep.routes_checked_after_ready
    ));

    // The fleet then publishes its address into every Ingress's status (one write each);
    // wait for that to finish so the change-latency run measures changes, not this.
    let t = Instant::now();
    let status_wait = Duration::from_secs(env_or("BENCH_SCALE_STATUS_WAIT", 300));
    loop {
        if !publish_status {
            break;
        }
        let mut written = 0;
        let mut lp = ListParams::default().limit(1000);
        loop {
            let page = ingresses.list(&lp).await?;
            written += page
                .items
                .iter()
                .filter(|i| {
                    i.status
                        .as_ref()
                        .and_then(|s| s.load_balancer.as_ref())
                        .and_then(|l| l.ingress.as_ref())
                        .is_some_and(|v| !v.is_empty())
                })
                .count();
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        rep.status_written = written;
        if written >= n {
            rep.status_settle_secs = Some(t.elapsed().as_secs_f64() + rep.sync_secs);
            break;
        }
        if t.elapsed() > status_wait {
            say(format!(
                "status written on {written}/{n} Ingresses after {status_wait:?}; going on"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    rep.rss_after_status_mib = rss_mib(dp.pid()).0;
    say(format!(
        "status on {}/{} Ingresses ({:?} s after start); RSS {:.1} MiB",
        rep.status_written, n, rep.status_settle_secs, rep.rss_after_status_mib
    ));

    // Change latency: alternately create a new Ingress and edit an existing one (a new path),
    // from just before the API call to the first 200 on the new route.
    change_latency(&o, &ingresses, http, &mut rep).await?;
    rep.rss_after_changes_mib = rss_mib(dp.pid()).0;
    let changes_done = Instant::now();

    // Churn: a fixed-rate load for churn_secs without changes, then with one change a second.
    let hosts: Arc<Vec<String>> = Arc::new((0..o.load_hosts.min(n)).map(host).collect());
    say(format!(
        "churn, Sluice: {} req/s for {}s without changes",
        o.rate, o.churn_secs
    ));
    let base = run_load(
        "Sluice, no changes",
        http,
        hosts.clone(),
        o.rate,
        o.churn_secs,
    )
    .await;
    say(format!("{base:?}"));
    say("churn, Sluice: the same load with one Ingress change per second");
    let churn = {
        let ingresses = ingresses.clone();
        let (k, n) = (o.load_hosts.min(n), n);
        churn_while(
            run_load(
                "Sluice, 1 change/s",
                http,
                hosts.clone(),
                o.rate,
                o.churn_secs,
            ),
            o.churn_secs,
            move |t| {
                let ingresses = ingresses.clone();
                async move {
                    let (j, b) = flip(t, k, n);
                    let started = Instant::now();
                    ingresses
                        .patch(
                            &format!("i{j}"),
                            &PatchParams::default(),
                            &Patch::Merge(ingress(j, b)),
                        )
                        .await?;
                    Ok(started.elapsed())
                }
            },
        )
        .await?
    };
    say(format!("{churn:?}"));
    rep.churn.push(base);
    rep.churn.push(churn);
    (rep.rss_at_end_mib, rep.peak_rss_mib) = rss_mib(dp.pid());
    rep.secs_from_changes_to_end = changes_done.elapsed().as_secs_f64();
    dp.stop();

    // Plain nginx, reloading a rewritten config file on every change (BENCH_SCALE_NGINX=0
    // skips it).
    let nginx = if env_or("BENCH_SCALE_NGINX", 1) == 1 {
        nginx_churn(&o, hosts).await
    } else {
        Ok(Vec::new())
    };
    match nginx {
        Ok(mut r) => rep.churn.append(&mut r),
        Err(e) => {
            say(format!("plain nginx run failed: {e:#}"));
            rep.nginx_error = Some(format!("{e:#}"));
        }
    }
    rep.loadavg_end = loadavg();
    std::fs::write(
        o.out.join("scale-dataplane.json"),
        serde_json::to_vec_pretty(&rep)?,
    )?;
    say("wrote scale-dataplane.json");
    Ok(())
}

/// Change number `t` of the churn: Ingress i<j> of the loaded hosts gets /b pointed at the
/// other of two Services (both serve 200), so a change moves a route that takes traffic.
fn flip(t: u64, k: usize, n: usize) -> (usize, usize) {
    let j = t as usize % k;
    let alt = (t as usize / k) % 2;
    (j, (j + 1 + (1 - alt)) % n)
}

/// Runs `load` while calling `change(t)` once a second; the load's result with the changes'
/// API (or reload) times.
async fn churn_while<L, F, Fut>(load: L, secs: u64, change: F) -> anyhow::Result<LoadResult>
where
    L: std::future::Future<Output = LoadResult>,
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Duration>>,
{
    let changes = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut times = Vec::new();
        let end = tokio::time::Instant::now() + Duration::from_secs(secs);
        for t in 0..secs {
            // A change (an nginx reload) slower than a second delays the next; none start
            // after the load ends.
            if tick.tick().await >= end {
                break;
            }
            times.push(change(t).await?.as_micros() as u64);
        }
        Ok::<_, anyhow::Error>(times)
    };
    let (mut r, times) = tokio::join!(load, changes);
    let mut times = times?;
    r.changes = times.len() as u64;
    r.change_api_ms = pcts(&mut times);
    Ok(r)
}

async fn change_latency(
    o: &Opts,
    ingresses: &Api<Ingress>,
    http: SocketAddr,
    rep: &mut DataplaneReport,
) -> anyhow::Result<()> {
    say(format!(
        "{} changes (creates and edits, alternating), each timed from the API call to the first 200",
        o.changes
    ));
    let mut probe: Option<Sender> = None;
    let (mut creates, mut edits, mut all, mut api) = (vec![], vec![], vec![], vec![]);
    let mut raw = String::from("# change kind name host path api_ms total_ms\n");
    for k in 0..o.changes {
        let (kind, name, h, path) = if k % 2 == 0 {
            let name = format!("new{k}");
            (
                "create",
                name.clone(),
                format!("{name}.scale.test"),
                "/a".to_string(),
            )
        } else {
            let j = (k * 7919) % o.n;
            ("edit", format!("i{j}"), host(j), format!("/c{k}"))
        };
        let started = Instant::now();
        if kind == "create" {
            let obj: Ingress =
                serde_json::from_value(ingress_json(&name, &h, vec![path_json("/a", k % o.n)]))?;
            ingresses.create(&PostParams::default(), &obj).await?;
        } else {
            let j = (k * 7919) % o.n;
            let body = ingress_json(
                &name,
                &h,
                vec![
                    path_json("/a", j),
                    path_json("/b", (j + 1) % o.n),
                    path_json(&path, j),
                ],
            );
            ingresses
                .patch(&name, &PatchParams::default(), &Patch::Merge(body))
                .await?;
        }
        let api_us = started.elapsed().as_micros() as u64;
        let mut ok = false;
        while started.elapsed() < Duration::from_secs(10) {
            let sender = match probe.as_mut() {
                Some(s) if !s.is_closed() => s,
                _ => probe.insert(connect(http).await?),
            };
            match send(sender, &h, &path).await {
                Ok(200) => {
                    ok = true;
                    break;
                }
                Ok(_) => {}
                Err(_) => probe = None,
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let total_us = started.elapsed().as_micros() as u64;
        if (k + 1) % 100 == 0 {
            say(format!("{} changes done", k + 1));
        }
        if !ok {
            rep.change_failures += 1;
        }
        raw.push_str(&format!(
            "{k} {kind} {name} {h} {path} {:.3} {:.3}{}\n",
            api_us as f64 / 1000.0,
            total_us as f64 / 1000.0,
            if ok { "" } else { " TIMEOUT" }
        ));
        api.push(api_us);
        all.push(total_us);
        if kind == "create" {
            creates.push(total_us);
        } else {
            edits.push(total_us);
        }
    }
    std::fs::write(o.out.join("scale-changes.txt"), raw)?;
    rep.changes = o.changes;
    rep.change_create_ms = pcts(&mut creates);
    rep.change_edit_ms = pcts(&mut edits);
    rep.change_all_ms = pcts(&mut all);
    rep.change_api_ms = pcts(&mut api);
    say(format!(
        "change -> first 200: {:?} (API call alone: {:?}); failures {}",
        rep.change_all_ms, rep.change_api_ms, rep.change_failures
    ));
    Ok(())
}

// --- plain nginx: the same N hosts, one config file rewritten and reloaded per change ------------

fn nginx_conf(work: &Path, n: usize, b_of: &[usize]) -> String {
    let mut c = format!(
        "worker_processes 1; daemon off; pid {w}/nginx.pid; error_log {w}/nginx.err;\n\
         events {{ worker_connections 20000; }}\n\
         http {{ access_log off; keepalive_requests 1000000;\n\
         server_names_hash_max_size 65536; server_names_hash_bucket_size 128;\n\
         proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
         server {{ listen {ip}:8080 default_server; return 404; }}\n",
        w = work.display(),
        ip = NGINX_IP
    );
    for i in 0..n {
        c.push_str(&format!(
            "upstream s{i} {{ server {}:{BACKEND_PORT}; keepalive 16; }}\n",
            endpoint_ip(i)
        ));
    }
    for (i, b) in b_of.iter().enumerate() {
        c.push_str(&format!(
            "server {{ listen {NGINX_IP}:8080; server_name {}; \
             location /a {{ proxy_pass http://s{i}; }} location /b {{ proxy_pass http://s{b}; }} }}\n",
            host(i)
        ));
    }
    c.push_str("}\n");
    c
}

async fn nginx_churn(o: &Opts, hosts: Arc<Vec<String>>) -> anyhow::Result<Vec<LoadResult>> {
    let n = o.n;
    let work = o.out.join("nginx-scale");
    std::fs::create_dir_all(&work)?;
    let conf = work.join("nginx.conf");
    let b_of: Vec<usize> = (0..n).map(|i| (i + 1) % n).collect();
    std::fs::write(&conf, nginx_conf(&work, n, &b_of))?;
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "nginx", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(&work);
    let mut nginx = Kid::spawn(&mut cmd, &work.join("nginx.out"))?;
    let http = SocketAddr::new(IpAddr::V4(NGINX_IP), 8080);
    let t = Instant::now();
    while !matches!(get_once(http, &host(0), "/a").await, Ok(200)) {
        if !nginx.alive() || t.elapsed() > Duration::from_secs(60) {
            bail!(
                "plain nginx did not serve: {}",
                std::fs::read_to_string(work.join("nginx.err")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    say(format!(
        "plain nginx up with {n} servers after {:.1}s; {} req/s for {}s without changes",
        t.elapsed().as_secs_f64(),
        o.rate,
        o.churn_secs
    ));
    let base = run_load(
        "plain nginx, no changes",
        http,
        hosts.clone(),
        o.rate,
        o.churn_secs,
    )
    .await;
    say(format!("{base:?}"));
    say("churn, plain nginx: rewrite nginx.conf and `nginx -s reload` once a second");
    let state = Arc::new(Mutex::new(b_of));
    let k = o.load_hosts.min(n);
    let churn = churn_while(
        run_load("plain nginx, 1 reload/s", http, hosts, o.rate, o.churn_secs),
        o.churn_secs,
        |t| {
            let (state, work, conf) = (state.clone(), work.clone(), conf.clone());
            async move {
                let started = Instant::now();
                let text = {
                    let mut b_of = state.lock().unwrap_or_else(|e| e.into_inner());
                    let (j, b) = flip(t, k, n);
                    b_of[j] = b;
                    nginx_conf(&work, n, &b_of)
                };
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    // Atomically: the master may still be reading the previous version.
                    let tmp = conf.with_extension("conf.new");
                    std::fs::write(&tmp, text)?;
                    std::fs::rename(&tmp, &conf)?;
                    let st = Command::new("nginx")
                        .arg("-c")
                        .arg(&conf)
                        .arg("-p")
                        .arg(&work)
                        .args(["-s", "reload"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()?;
                    anyhow::ensure!(st.success(), "nginx -s reload failed");
                    Ok(())
                })
                .await??;
                Ok(started.elapsed())
            }
        },
    )
    .await?;
    let mut churn = churn;
    churn.reload_ms = churn.change_api_ms.clone();
    say(format!("{churn:?}"));
    nginx.stop();
    Ok(vec![base, churn])
}

// --- the operator: 50 sets to Ready, then API writes while idle, counted by a proxy -------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Logged {
    at_ms: u64,
    method: String,
    resource: String,
    watch: bool,
    status: u16,
}

fn resource_of(path: &str) -> String {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest: &[&str] = match segs.first() {
        Some(&"api") if segs.len() >= 2 => &segs[2..],
        Some(&"apis") if segs.len() >= 3 => &segs[3..],
        _ => return path.to_string(),
    };
    let rest = if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        &rest[2..]
    } else {
        rest
    };
    match rest {
        [] => "namespaces".into(),
        [r] | [r, _] => (*r).to_string(),
        [r, _, sub, ..] => format!("{r}/{sub}"),
    }
}

struct Counter {
    start: Instant,
    log: Mutex<Vec<Logged>>,
}

async fn forward(
    upstream: kube::Client,
    counter: Arc<Counter>,
    req: Request<Incoming>,
) -> Result<Response<kube::client::Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let (path, query) = pq.split_once('?').unwrap_or((&pq, ""));
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let mut up = Request::builder().method(parts.method.clone()).uri(&pq);
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST && k != hyper::header::CONNECTION {
            up = up.header(k, v);
        }
    }
    let at_ms = counter.start.elapsed().as_millis() as u64;
    let resp = match up.body(kube::client::Body::from(body)) {
        Ok(r) => upstream.send(r).await.ok(),
        Err(_) => None,
    };
    let resp = resp.unwrap_or_else(|| {
        let mut r = Response::new(kube::client::Body::from(b"proxy error".to_vec()));
        *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        r
    });
    counter
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Logged {
            at_ms,
            method: parts.method.to_string(),
            resource: resource_of(path),
            watch,
            status: resp.status().as_u16(),
        });
    Ok(resp)
}

/// A TLS-terminating proxy on 127.0.0.1 in front of the API server; returns its address.
async fn start_counting_proxy(
    env: &TestEnv,
    cert: &Path,
    key: &Path,
    counter: Arc<Counter>,
) -> anyhow::Result<SocketAddr> {
    sluice_test_support::install_crypto_provider();
    let certs = rustls_pemfile::certs(&mut std::fs::read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::fs::read(key)?.as_slice())?
        .context("no key in --proxy-key")?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let upstream = env.client().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, upstream, counter) =
                (acceptor.clone(), upstream.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| {
                    forward(upstream.clone(), counter.clone(), req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OperatorReport {
    sets: usize,
    replicas_per_set: u32,
    leader_elect: bool,
    ready_secs: f64,
    ready: usize,
    rollout_writes: BTreeMap<String, u64>,
    settle_secs: u64,
    idle_secs: u64,
    idle_writes: BTreeMap<String, u64>,
    idle_writes_excluding_lease: u64,
    idle_lease_writes: u64,
    idle_reads: u64,
    idle_watch_starts: u64,
    operator_rss_mib: f64,
    loadavg_start: String,
    loadavg_end: String,
}

fn is_write(m: &str) -> bool {
    matches!(m, "POST" | "PUT" | "PATCH" | "DELETE")
}

fn writes_between(log: &[Logged], from_ms: u64, to_ms: u64) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in log
        .iter()
        .filter(|l| l.at_ms >= from_ms && l.at_ms < to_ms && is_write(&l.method))
    {
        *m.entry(format!("{} {}", l.method, l.resource)).or_insert(0) += 1;
    }
    m
}

async fn operator(out: PathBuf, cert: PathBuf, key: PathBuf) -> anyhow::Result<()> {
    let sets_n: usize = env_or("BENCH_SCALE_SETS", 50);
    let idle_secs: u64 = env_or("BENCH_SCALE_IDLE_SECS", 60);
    let settle_secs: u64 = env_or("BENCH_SCALE_SETTLE_SECS", 15);
    let leader_elect: bool = env_or("BENCH_SCALE_LEADER_ELECT", true);
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let counter = Arc::new(Counter {
        start: Instant::now(),
        log: Mutex::new(Vec::new()),
    });
    let proxy = start_counting_proxy(&env, &cert, &key, counter.clone()).await?;
    // The operator's kubeconfig: the admin's, pointed at the counting proxy.
    let mut kc: Value = serde_yaml::from_str(&std::fs::read_to_string(&env.kubeconfig)?)?;
    kc["clusters"][0]["cluster"]["server"] = json!(format!("https://{proxy}"));
    // It holds the admin's credentials: keep it with the cluster's state, which down.sh removes.
    let kc_path = std::env::var_os("SLUICE_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.clone())
        .join("operator-kubeconfig");
    std::fs::write(&kc_path, serde_yaml::to_string(&kc)?)?;

    let mut rep = OperatorReport {
        sets: sets_n,
        replicas_per_set: 2,
        leader_elect,
        settle_secs,
        idle_secs,
        loadavg_start: loadavg(),
        ..Default::default()
    };
    let mut cmd = Command::new(bin_dir().join("sluice-operator"));
    cmd.arg("--kubeconfig")
        .arg(&kc_path)
        .args(["--dataplane-image", "registry.invalid/sluice:bench"])
        .args(["--admin-address", "127.0.0.1:0"])
        .arg(format!("--leader-elect={leader_elect}"))
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
    let mut op = Kid::spawn(&mut cmd, &out.join("scale-operator.log"))?;

    let ns = "ops";
    let nss: Api<Namespace> = Api::all(client.clone());
    let _ = nss
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await;
    let sets: Api<sluice_crds::IngressControllerSet> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    say(format!("applying {sets_n} IngressControllerSets"));
    let t0 = Instant::now();
    let t0_ms = counter.start.elapsed().as_millis() as u64;
    for k in 0..sets_n {
        sets.patch(
            &format!("set-{k}"),
            &PatchParams::apply("sluice-scale-bench").force(),
            &Patch::Apply(json!({
                "apiVersion": "sluice.dev/v1alpha1", "kind": "IngressControllerSet",
                "metadata": {"name": format!("set-{k}"), "namespace": ns},
                "spec": {"ingressClassName": format!("ops-{k}"), "replicas": 2,
                         "loadBalancer": {"scheme": "internet-facing", "provider": "aws"}}
            })),
        )
        .await?;
    }
    // Wait for Ready, acting as the cloud: each set's Service gets a load-balancer address.
    let mut given = std::collections::BTreeSet::new();
    loop {
        if !op.alive() {
            bail!(
                "the operator exited; see {}",
                out.join("scale-operator.log").display()
            );
        }
        for svc in services.list(&ListParams::default()).await?.items {
            let name = svc.metadata.name.clone().unwrap_or_default();
            if given.contains(&name) || !name.starts_with("set-") {
                continue;
            }
            let k: usize = name.trim_start_matches("set-").parse().unwrap_or(0);
            services
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [
                        {"ip": format!("198.51.100.{}", 100 + k % 150)}]}}})),
                )
                .await?;
            given.insert(name);
        }
        let ready = sets
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|s| {
                let st = s.status.as_ref();
                st.and_then(|st| st.observed_generation) == s.metadata.generation
                    && st.is_some_and(|st| {
                        st.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
            })
            .count();
        rep.ready = ready;
        if ready == sets_n {
            break;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            say(format!("only {ready}/{sets_n} Ready after 600s"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    rep.ready_secs = t0.elapsed().as_secs_f64();
    let ready_ms = counter.start.elapsed().as_millis() as u64;
    say(format!(
        "{}/{sets_n} sets Ready after {:.1}s; settling {settle_secs}s, then counting for {idle_secs}s",
        rep.ready, rep.ready_secs
    ));
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;
    let from = counter.start.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let to = counter.start.elapsed().as_millis() as u64;
    rep.operator_rss_mib = rss_mib(op.pid()).0;
    op.stop();
    let log = counter
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    rep.rollout_writes = writes_between(&log, t0_ms, ready_ms);
    rep.idle_writes = writes_between(&log, from, to);
    rep.idle_lease_writes = rep
        .idle_writes
        .iter()
        .filter(|(k, _)| k.ends_with(" leases"))
        .map(|(_, v)| v)
        .sum();
    rep.idle_writes_excluding_lease = rep.idle_writes.values().sum::<u64>() - rep.idle_lease_writes;
    let idle: Vec<&Logged> = log
        .iter()
        .filter(|l| l.at_ms >= from && l.at_ms < to)
        .collect();
    rep.idle_reads = idle
        .iter()
        .filter(|l| l.method == "GET" && !l.watch)
        .count() as u64;
    rep.idle_watch_starts = idle.iter().filter(|l| l.watch).count() as u64;
    rep.loadavg_end = loadavg();
    let mut raw = String::from("# at_ms method resource watch status\n");
    for l in &log {
        raw.push_str(&format!(
            "{} {} {} {} {}\n",
            l.at_ms, l.method, l.resource, l.watch, l.status
        ));
    }
    std::fs::write(out.join("scale-operator-requests.txt"), raw)?;
    std::fs::write(
        out.join("scale-operator.json"),
        serde_json::to_vec_pretty(&rep)?,
    )?;
    say(format!(
        "idle {idle_secs}s: writes {:?} (excluding the leader Lease: {}); reads {}, watch starts {}",
        rep.idle_writes, rep.idle_writes_excluding_lease, rep.idle_reads, rep.idle_watch_starts
    ));
    Ok(())
}

// --- the report -------------------------------------------------------------------------------------

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn report(out: PathBuf) -> anyhow::Result<()> {
    let mut md = String::from("# Sluice control plane at scale (issue #9)\n\n");
    let machine = std::fs::read_to_string(out.join("scale-machine.txt")).unwrap_or_default();
    md.push_str(&format!(
        "Rerun: `make bench-scale` (or `tests/bench/scale.sh`); raw numbers in `scale-dataplane.json`, \
         `scale-operator.json`, `scale-changes.txt`, `scale-operator-requests.txt`.\n\n\
         Machine (2 cores, shared; others may be compiling):\n\n```\n{}```\n\n",
        machine
    ));
    if let Ok(text) = std::fs::read_to_string(out.join("scale-dataplane.json")) {
        let d: DataplaneReport = serde_json::from_str(&text)?;
        let base = d.churn.iter().find(|r| r.label == "Sluice, no changes");
        let churn = d.churn.iter().find(|r| r.label == "Sluice, 1 change/s");
        md.push_str(&format!(
            "## Data plane\n\n\
             Objects: {} Ingresses (one host, paths /a and /b each), {} Services, {} EndpointSlices \
             (one endpoint each, a distinct 10.244.128.0/17 address), {} Secrets; one IngressClass, \
             the fleet ConfigMap, the publish Service (LoadBalancer, address {LB_IP} unless BENCH_SCALE_STATUS=0). Created in \
             {:.1}s ({:.0} objects/s, 32 concurrent creates). `sluice-dataplane` (release) pinned \
             to core 1 with TOKIO_WORKER_THREADS={}; the load generator and backend (this bench \
             program) on core 0; etcd, kube-apiserver unpinned. Load average at start {}, at end {}.\n\n",
            d.ingresses, d.services, d.endpoint_slices, d.secrets, d.apply_secs,
            d.apply_objects_per_sec, d.worker_threads, d.loadavg_start, d.loadavg_end
        ));
        md.push_str("| target | measured | verdict |\n|---|---|---|\n");
        md.push_str(&format!(
            "| initial sync to `/readyz` 200 within 10 s | {:.2} s (routes right after: {}) | {} |\n",
            d.sync_secs,
            d.routes_checked_after_ready
                .iter()
                .map(|(r, s)| format!("{r} {s}"))
                .collect::<Vec<_>>()
                .join(", "),
            verdict(d.sync_secs <= 10.0)
        ));
        let rss_max = d.peak_rss_mib.max(d.rss_after_changes_mib);
        md.push_str(&format!(
            "| data-plane RSS at most 100 MB | {:.1} MiB after sync, {:.1} after status writes, {:.1} after the changes, {:.1} after the churn ({:.0} s after the changes; idle upstream connections close after 60 s), peak (VmHWM) {:.1} | {} |\n",
            d.rss_after_sync_mib, d.rss_after_status_mib, d.rss_after_changes_mib, d.rss_at_end_mib,
            d.secs_from_changes_to_end, d.peak_rss_mib,
            verdict(rss_max * 1.048_576 <= 100.0)
        ));
        md.push_str(&format!(
            "| change → first 200, p99 ≤ 100 ms over ≥ 1000 changes | {} changes ({} failed): p50 {:.1} / p95 {:.1} / p99 {:.1} / max {:.1} ms | {} |\n",
            d.change_all_ms.n, d.change_failures, d.change_all_ms.p50, d.change_all_ms.p95,
            d.change_all_ms.p99, d.change_all_ms.max,
            verdict(d.change_all_ms.n >= 1000 && d.change_failures == 0 && d.change_all_ms.p99 <= 100.0)
        ));
        if let (Some(b), Some(c)) = (base, churn) {
            let ratio = if b.latency_ms.p99 > 0.0 {
                c.latency_ms.p99 / b.latency_ms.p99
            } else {
                0.0
            };
            md.push_str(&format!(
                "| churn: 0 non-2xx / resets / socket errors / timeouts | {} non-2xx, {} resets, {} closed before response, {} other socket errors, {} timeouts of {} | {} |\n",
                c.non_2xx, c.resets, c.closed_before_response, c.other_socket_errors, c.timeouts, c.sent,
                verdict(c.errors() == 0)
            ));
            md.push_str(&format!(
                "| churn: p99 within 10% of the run without changes | {:.2} ms vs {:.2} ms ({:+.0}%) | {} |\n",
                c.latency_ms.p99, b.latency_ms.p99, (ratio - 1.0) * 100.0, verdict(ratio <= 1.10)
            ));
        }
        if !d.publish_status {
            md.push_str("\nRun with BENCH_SCALE_STATUS=0: the publish Service had no address, so the fleet wrote no Ingress status.\n");
        }
        md.push_str(&format!(
            "\nStatus: the fleet wrote its address into {}/{} Ingresses' status, all done {} after start. \
             Change latency by kind: creates p50/p95/p99 {:.1}/{:.1}/{:.1} ms, edits {:.1}/{:.1}/{:.1} ms; \
             the API call alone {:.1}/{:.1}/{:.1} ms.\n\n",
            d.status_written, d.ingresses,
            d.status_settle_secs.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "not".into()),
            d.change_create_ms.p50, d.change_create_ms.p95, d.change_create_ms.p99,
            d.change_edit_ms.p50, d.change_edit_ms.p95, d.change_edit_ms.p99,
            d.change_api_ms.p50, d.change_api_ms.p95, d.change_api_ms.p99
        ));
        md.push_str(&format!(
            "### Churn: fixed-rate open-loop load, one Ingress change per second\n\n\
             Load: HTTP/1.1 keep-alive, hosts h0..h{} alternating /a and /b, latency from the \
             scheduled send time (no coordinated omission), 2 s timeout. A change points /b of one \
             loaded Ingress at another Service (both answer 200). Plain nginx: the same hosts as \
             server blocks, one upstream (keepalive 16) per Service, one worker pinned to core 1; \
             the harness rewrites nginx.conf and runs `nginx -s reload` per change.\n\n\
             | run | rate | sent | 2xx | non-2xx | resets | closed before response | other socket errors | timeouts | p50 ms | p99 ms | p99.9 ms | max ms | change/reload ms p50/p99 |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            d.load_hosts.saturating_sub(1)
        ));
        for r in &d.churn {
            md.push_str(&format!(
                "| {} | {}/s × {} s | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} |\n",
                r.label, r.rate, r.secs, r.sent, r.ok_2xx, r.non_2xx, r.resets,
                r.closed_before_response, r.other_socket_errors, r.timeouts,
                r.latency_ms.p50, r.latency_ms.p99, r.latency_ms.p999, r.latency_ms.max,
                if r.changes > 0 { format!("{:.1} / {:.1}", r.change_api_ms.p50, r.change_api_ms.p99) } else { "-".into() }
            ));
        }
        if let Some(e) = &d.nginx_error {
            md.push_str(&format!("\nPlain nginx could not be measured: {e}\n"));
        }
        md.push('\n');
    } else {
        md.push_str("## Data plane\n\nNot run (no scale-dataplane.json).\n\n");
    }
    if let Ok(text) = std::fs::read_to_string(out.join("scale-operator.json")) {
        let r: OperatorReport = serde_json::from_str(&text)?;
        md.push_str(&format!(
            "## Operator\n\n\
             {} IngressControllerSets ({} replicas each, kwok makes the pods Ready, the harness \
             gives each Service a load-balancer address as a cloud would), `sluice-operator` \
             (release) with --leader-elect={}. Every request the operator makes goes through a \
             TLS-terminating proxy in the bench program, which counts them: writes are \
             POST/PUT/PATCH/DELETE. Load average at start {}, at end {}.\n\n\
             | target | measured | verdict |\n|---|---|---|\n\
             | {} sets reconciled to Ready | {}/{} Ready after {:.1} s | {} |\n\
             | API writes per minute once idle: 0 | {} in {} s (after {} s settling), plus {} leader-election Lease renewals | {} |\n\n\
             Idle window: {} reads, {} watch (re)starts. Operator RSS {:.1} MiB. Writes while rolling out: {}. \
             Writes in the idle window by verb and resource: {}.\n\n",
            r.sets, r.replicas_per_set, r.leader_elect, r.loadavg_start, r.loadavg_end,
            r.sets, r.ready, r.sets, r.ready_secs, verdict(r.ready == r.sets),
            r.idle_writes_excluding_lease, r.idle_secs, r.settle_secs, r.idle_lease_writes,
            verdict(r.idle_writes_excluding_lease == 0),
            r.idle_reads, r.idle_watch_starts, r.operator_rss_mib,
            r.rollout_writes.values().sum::<u64>(),
            if r.idle_writes.is_empty() { "none".to_string() } else { format!("{:?}", r.idle_writes) }
        ));
    } else {
        md.push_str("## Operator\n\nNot run (no scale-operator.json).\n\n");
    }
    std::fs::write(out.join("scale-report.md"), &md)?;
    println!("{md}");
    Ok(())
}

// --- main -----------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sluice_test_support::install_crypto_provider();
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let mut flags = BTreeMap::new();
    while let Some(f) = args.next() {
        let v = args.next().with_context(|| format!("{f} needs a value"))?;
        flags.insert(f, v);
    }
    let out = PathBuf::from(
        flags
            .get("--out")
            .cloned()
            .unwrap_or_else(|| "target/bench".into()),
    );
    std::fs::create_dir_all(&out)?;
    match cmd.as_str() {
        "dataplane" => dataplane(out).await,
        "operator" => {
            let cert = flags
                .get("--proxy-cert")
                .context("--proxy-cert is required")?;
            let key = flags
                .get("--proxy-key")
                .context("--proxy-key is required")?;
            operator(out, cert.into(), key.into()).await
        }
        "report" => report(out),
        _ => bail!("usage: sluice-scale-bench dataplane|operator|report --out DIR [...]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let p = pcts(&mut v);
        assert_eq!(p.n, 1000);
        assert_eq!(p.p50, 500.0);
        assert_eq!(p.p99, 990.0);
        assert_eq!(p.max, 1000.0);
        assert_eq!(pcts(&mut []).p99, 0.0);
    }

    #[test]
    fn resources_from_paths() {
        assert_eq!(
            resource_of("/api/v1/namespaces/ops/services/set-1"),
            "services"
        );
        assert_eq!(
            resource_of("/api/v1/namespaces/ops/services/set-1/status"),
            "services/status"
        );
        assert_eq!(
            resource_of("/apis/apps/v1/namespaces/ops/deployments"),
            "deployments"
        );
        assert_eq!(
            resource_of("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x"),
            "clusterrolebindings"
        );
        assert_eq!(
            resource_of("/apis/coordination.k8s.io/v1/namespaces/s/leases/op"),
            "leases"
        );
        assert_eq!(resource_of("/api/v1/namespaces/ops"), "namespaces");
    }

    #[test]
    fn churn_flips_between_two_services() {
        assert_eq!(flip(0, 100, 10_000), (0, 2));
        assert_eq!(flip(100, 100, 10_000), (0, 1));
        assert_eq!(flip(200, 100, 10_000), (0, 2));
        assert_eq!(flip(1, 100, 10_000), (1, 3));
    }

    #[test]
    fn endpoint_addresses_stay_in_the_backend_range() {
        for i in [0, 249, 250, 9_999] {
            let o = endpoint_ip(i).octets();
            assert_eq!((o[0], o[1]), (10, 244));
            assert!((128..=255).contains(&o[2]) && (2..=251).contains(&o[3]));
        }
    }
}
