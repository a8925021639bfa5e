//! End to end: what `make demo` brings up (tests/scripts/world.sh: the operator, one data
//! plane per set as local processes, the quickstart and the walkthrough), checked the way a
//! newcomer would, with real TLS through the real proxy.
//!
//! Ignored in the parallel run: `make test` runs it after world.sh has built the world
//! (`cargo test --test e2e -- --ignored`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use sluice_crds::IngressControllerSet;
use sluice_test_support::backend::{Echo, http_get};
use sluice_test_support::{TestEnv, wait_until};

const PUBLIC: &str = "10.244.200.1";
const PRIVATE: &str = "10.244.200.2";
const DEFAULT: &str = "10.244.200.3";

fn world_file(env: &TestEnv, rel: &str) -> std::path::PathBuf {
    std::path::Path::new(
        env.vars
            .get("SLUICE_STATE")
            .map(String::as_str)
            .unwrap_or("/tmp"),
    )
    .join("world")
    .join(rel)
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip"), port)
}

/// GET over TLS (HTTP/1.1) with SNI `host`, trusting only the PEM CA at `ca`; returns status,
/// body and the leaf certificate the server presented.
async fn https(
    ip: &str,
    host: &str,
    path: &str,
    ca: &std::path::Path,
) -> anyhow::Result<(u16, Vec<u8>, Vec<u8>)> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::fs::read(ca)?.as_slice()) {
        roots.add(c?)?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr(ip, 443)).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from(host.to_string())?,
            tcp,
        )
        .await?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            http::Request::get(path)
                .header("host", host)
                .body(http_body_util::Empty::<bytes::Bytes>::new())?,
        )
        .await?;
    let status = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes()
        .to_vec();
    Ok((status, body, leaf))
}

fn pem_der(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let c = rustls_pemfile::certs(&mut std::fs::read(path)?.as_slice())
        .next()
        .ok_or_else(|| anyhow::anyhow!("no certificate in {}", path.display()))??;
    Ok(c.to_vec())
}

fn kubectl(env: &TestEnv, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = env.kubectl().args(args).output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the world from tests/scripts/world.sh; make test runs it after building that"]
async fn the_demo_works_as_printed() -> anyhow::Result<()> {
    sluice_test_support::install_crypto_provider();
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let ca = world_file(&env, "certs/ca.crt");
    let gamma_ca = world_file(&env, "certs/gamma-ca.crt");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");

    // The walkthrough: /alpha and /beta behind Secret `public`, /wrong to the default backend.
    let public_leaf = pem_der(&world_file(&env, "certs/public.crt"))?;
    for (p, backend) in [("/alpha", "alpha"), ("/beta", "beta")] {
        let (status, body, leaf) = https(DEFAULT, "public.example.com", p, &ca).await?;
        assert_eq!(status, 200, "{p}");
        let echo: Echo = serde_json::from_slice(&body)?;
        assert_eq!(echo.backend, backend);
        assert_eq!(
            leaf, public_leaf,
            "served with the `public` Secret's certificate"
        );
    }
    let (status, _, _) = https(DEFAULT, "public.example.com", "/wrong", &ca).await?;
    assert_eq!(
        status, 404,
        "a path that matches nothing gets the default backend"
    );
    // gamma: passthrough, so the client sees gamma's own certificate.
    let (status, body, leaf) = https(DEFAULT, "gamma.public.example.com", "/", &gamma_ca).await?;
    assert_eq!(status, 200);
    assert_eq!(leaf, pem_der(&world_file(&env, "certs/gamma.crt"))?);
    let echo: Echo = serde_json::from_slice(&body)?;
    assert!(echo.tls && echo.backend == "gamma");

    // The quickstart: each fleet serves its own class only.
    let (s, body) = http_get(addr(PUBLIC, 80), "shop.example.com", "/").await?;
    assert_eq!(
        (s, serde_json::from_slice::<Echo>(&body)?.backend.as_str()),
        (200, "web")
    );
    let (s, body) = http_get(addr(PRIVATE, 80), "admin.shop.internal", "/").await?;
    assert_eq!(
        (s, serde_json::from_slice::<Echo>(&body)?.backend.as_str()),
        (200, "admin")
    );
    assert_eq!(
        http_get(addr(PRIVATE, 80), "shop.example.com", "/")
            .await?
            .0,
        404
    );
    assert_eq!(
        http_get(addr(PUBLIC, 80), "admin.shop.internal", "/")
            .await?
            .0,
        404
    );

    // Every Ingress shows its set's address (what external-dns and Argo CD read).
    let ingresses: Api<Ingress> = Api::all(client.clone());
    for i in ingresses.list(&ListParams::default()).await?.items {
        let class = i
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.clone())
            .unwrap_or_default();
        let want = match class.as_str() {
            "public" => PUBLIC,
            "private" => PRIVATE,
            "default" => DEFAULT,
            _ => continue,
        };
        let got: Vec<String> = i
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.ip)
            .collect();
        assert_eq!(got, vec![want.to_string()], "Ingress {:?}", i.metadata.name);
    }

    // After Ready, the examples are exactly what is in the cluster.
    for dir in ["examples/quickstart", "examples/walkthrough"] {
        let (ok, stdout, stderr) = kubectl(
            &env,
            &[
                "diff",
                "--server-side",
                "-k",
                &root.join(dir).display().to_string(),
            ],
        )?;
        assert!(
            ok && stdout.is_empty(),
            "kubectl diff {dir}:\n{stdout}{stderr}"
        );
    }

    // The operator never changes a set's spec or metadata, and a restart writes nothing.
    let sets: Api<IngressControllerSet> = Api::namespaced(client.clone(), "sluice-system");
    let before: Vec<(String, Option<i64>, Option<String>)> = sets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|s| {
            (
                s.metadata.name.unwrap_or_default(),
                s.metadata.generation,
                s.metadata.resource_version,
            )
        })
        .collect();
    assert_eq!(before.len(), 3);
    for (name, generation, _) in &before {
        assert_eq!(
            *generation,
            Some(1),
            "set {name}: the operator never changes the spec"
        );
    }
    let children = |env: &TestEnv| -> anyhow::Result<String> {
        let (ok, out, err) = kubectl(
            env,
            &[
                "get",
                "deploy,svc,cm,sa,role,rolebinding,pdb",
                "-n",
                "sluice-system",
                "-l",
                "app.kubernetes.io/managed-by=sluice-operator",
                "-o",
                "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.generation}{\"\\n\"}{end}",
            ],
        )?;
        anyhow::ensure!(ok, "{err}");
        Ok(out)
    };
    let children_before = children(&env)?;
    let script = root.join("tests/cluster/component.sh");
    let state = env.vars.get("SLUICE_STATE").cloned().unwrap_or_default();
    for action in ["stop", "start"] {
        let out = std::process::Command::new(&script)
            .args([action, "sluice-operator"])
            .env("SLUICE_STATE", &state)
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_until(
        "restarted operator healthy",
        Duration::from_secs(30),
        || async {
            Ok(http_get(addr("127.0.0.1", 10300), "localhost", "/readyz")
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
                .map(|_| ()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after: Vec<(String, Option<i64>, Option<String>)> = sets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|s| {
            (
                s.metadata.name.unwrap_or_default(),
                s.metadata.generation,
                s.metadata.resource_version,
            )
        })
        .collect();
    assert_eq!(
        before, after,
        "restarting the operator wrote nothing to the sets"
    );
    assert_eq!(children_before, children(&env)?, "nor to their children");

    // Installing: client-side and server-side apply both succeed, and applying the same way
    // again changes nothing (every resourceVersion unchanged).
    let default = root.join("config/default").display().to_string();
    let versions = |env: &TestEnv| -> anyhow::Result<String> {
        let (ok, out, err) = kubectl(
            env,
            &[
                "get",
                "-k",
                &default,
                "-o",
                "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
            ],
        )?;
        anyhow::ensure!(ok, "{err}");
        Ok(out)
    };
    for args in [
        vec!["apply", "-k", &default],
        vec![
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            &default,
        ],
    ] {
        let (ok, _, err) = kubectl(&env, &args)?;
        assert!(ok, "kubectl {args:?}: {err}");
        // The API server writes a new ValidatingAdmissionPolicy's type-checking status a
        // moment after creating it: wait until nothing moves before taking the baseline.
        let mut first = versions(&env)?;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = versions(&env)?;
            if now == first {
                break;
            }
            first = now;
        }
        let (ok, _, err) = kubectl(&env, &args)?;
        assert!(ok, "kubectl {args:?} again: {err}");
        assert_eq!(
            first,
            versions(&env)?,
            "kubectl {args:?} a second time changes nothing"
        );
    }
    Ok(())
}
