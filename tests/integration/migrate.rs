//! `sluice-operator migrate-report` against the real API server: corpus Ingresses (from
//! `operator/tests/migrate-corpus/`) and ingress-nginx ConfigMaps are created in a fresh
//! namespace, the built binary is run as a process with `--kubeconfig` and `--namespace`, and
//! its JSON verdicts must be the ones checked in beside the corpus; the text output must end
//! with the summary line. No IngressClass is needed: the report reads Ingresses, whatever
//! class they name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, PostParams};
use serde_json::Value;
use sluice_test_support::process::bin_dir;
use sluice_test_support::{TestEnv, TestNamespace};

/// Corpus entries created in the cluster: one of each verdict and of each list, a snippet of
/// each kind, and one Ingress without a class.
const CORPUS: &[&str] = &[
    "05-grafana",
    "09-cert-manager-http01-solver",
    "11-websocket-app",
    "14-server-snippet-blocks-path",
    "15-affinity-sticky",
    "16-canary",
    "17-security-headers-snippet",
    "24-prometheus-no-class",
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../operator/tests/migrate-corpus")
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("{}", path.display()))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// Runs the built `sluice-operator` with `args`; never through a shell.
fn migrate_report(env: &TestEnv, args: &[&str]) -> anyhow::Result<Output> {
    let binary = bin_dir().join("sluice-operator");
    anyhow::ensure!(
        binary.exists(),
        "{} not found: run `cargo build -p sluice-operator --bins` first",
        binary.display()
    );
    let kubeconfig = env.kubeconfig.to_string_lossy().into_owned();
    Command::new(&binary)
        .args(["migrate-report", "--kubeconfig", &kubeconfig])
        .args(args)
        // The kubeconfig flag must be what is used, not an ambient one.
        .env_remove("KUBECONFIG")
        .output()
        .with_context(|| format!("running {}", binary.display()))
}

fn stdout_of(output: &Output) -> anyhow::Result<String> {
    anyhow::ensure!(
        output.status.code() == Some(0),
        "exit status {:?}; stderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout.clone())?)
}

/// Verdicts by Ingress name from a JSON report, checking every entry is in `namespace`.
fn verdicts(report: &Value, namespace: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for ingress in report["ingresses"].as_array().context("ingresses")? {
        anyhow::ensure!(
            ingress["namespace"] == namespace,
            "--namespace {namespace} reported {}",
            ingress["namespace"]
        );
        out.insert(
            ingress["name"].as_str().context("name")?.to_owned(),
            ingress["verdict"].as_str().context("verdict")?.to_owned(),
        );
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_report_reads_the_cluster() -> anyhow::Result<()> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let ns = TestNamespace::create(&env, &client, "migrate").await?;

    // The corpus Ingresses, moved into the test namespace, with their expected verdicts.
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns.name);
    let mut expected_plain = BTreeMap::new();
    let mut expected_with_config = BTreeMap::new();
    let config_expectations = read_json(&corpus_dir().join("ingress-nginx/expected.json"))?;
    for stem in CORPUS {
        let mut ingress: Ingress = read_yaml(&corpus_dir().join(format!("{stem}.yaml")))?;
        ingress.metadata.namespace = Some(ns.name.clone());
        // cert-manager's solver names its owning Challenge, which does not exist here.
        ingress.metadata.owner_references = None;
        ingress.metadata.generate_name = None;
        let name = ingress
            .metadata
            .name
            .clone()
            .context("corpus Ingresses have names")?;
        ingresses
            .create(&PostParams::default(), &ingress)
            .await
            .with_context(|| format!("creating {stem}"))?;
        let expected = read_json(&corpus_dir().join(format!("{stem}.expected.json")))?;
        let verdict = expected["verdict"].as_str().context("verdict")?.to_owned();
        let with_config = config_expectations["verdicts"][*stem]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| verdict.clone());
        expected_plain.insert(name.clone(), verdict);
        expected_with_config.insert(name, with_config);
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    for file in ["controller-configmap.yaml", "tcp-services.yaml"] {
        let mut cm: ConfigMap = read_yaml(&corpus_dir().join("ingress-nginx").join(file))?;
        cm.metadata.namespace = Some(ns.name.clone());
        config_maps.create(&PostParams::default(), &cm).await?;
    }

    // JSON, without the ConfigMaps.
    let out = migrate_report(&env, &["--namespace", &ns.name, "--output", "json"])?;
    let report: Value = serde_json::from_str(&stdout_of(&out)?)?;
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(verdicts(&report, &ns.name)?, expected_plain);
    assert_eq!(report["ingressNginxConfigMap"], Value::Null);
    assert_eq!(report["summary"]["ingresses"], CORPUS.len());
    let orders = report["ingresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "orders")
        .context("the server-snippet Ingress")?;
    assert!(
        orders["notServed"][0]
            .as_str()
            .unwrap()
            .contains("`location ~* ^/actuator` block with `deny all`"),
        "{orders}"
    );

    // JSON, with the controller and TCP services ConfigMaps.
    let controller = format!("{}/ingress-nginx-controller", ns.name);
    let tcp = format!("{}/ingress-nginx-tcp", ns.name);
    let out = migrate_report(
        &env,
        &[
            "--namespace",
            &ns.name,
            "--output",
            "json",
            "--ingress-nginx-configmap",
            &controller,
            "--tcp-services-configmap",
            &tcp,
        ],
    )?;
    let report: Value = serde_json::from_str(&stdout_of(&out)?)?;
    assert_eq!(verdicts(&report, &ns.name)?, expected_with_config);
    assert_eq!(
        report["ingressNginxConfigMap"]["name"],
        "ingress-nginx-controller"
    );
    assert_eq!(
        report["suggestedSpec"]["proxy"]["proxyBodySize"], "100m",
        "{}",
        report["suggestedSpec"]
    );
    assert_eq!(
        report["suggestedSpec"]["loadBalancer"]["proxyProtocol"],
        true
    );
    let streams: Vec<String> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {} {}", s["protocol"], s["port"], s["verdict"]))
        .collect();
    assert_eq!(
        streams,
        [r#""TCP" "22" "not-served""#, r#""TCP" "5432" "not-served""#]
    );

    // Text: every Ingress, then the summary line.
    let out = migrate_report(&env, &["--namespace", &ns.name])?;
    let text = stdout_of(&out)?;
    for name in expected_plain.keys() {
        assert!(text.contains(&format!("{}/{name} (", ns.name)), "{text}");
    }
    let count = |v: &str| expected_plain.values().filter(|x| *x == v).count();
    let summary = format!(
        "Summary: {} Ingresses: {} served identically, {} served with differences, {} not served.",
        CORPUS.len(),
        count("served-identically"),
        count("served-with-differences"),
        count("not-served"),
    );
    assert_eq!(text.lines().last(), Some(summary.as_str()), "{text}");

    // Exit statuses: a ConfigMap that is not there is an error (1), a bad flag a usage
    // error (2).
    let missing = format!("{}/no-such-configmap", ns.name);
    let out = migrate_report(
        &env,
        &[
            "--namespace",
            &ns.name,
            "--ingress-nginx-configmap",
            &missing,
        ],
    )?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("reading ConfigMap {missing}")),
        "{stderr}"
    );
    let out = migrate_report(&env, &["--output", "yaml"])?;
    assert_eq!(out.status.code(), Some(2));

    ns.delete(&client).await?;
    Ok(())
}

/// The subcommand is added beside the controller's flags, which keep working: `--help` lists
/// both.
#[test]
fn help_lists_the_subcommand_and_the_controller_flags() -> anyhow::Result<()> {
    let out = Command::new(bin_dir().join("sluice-operator"))
        .arg("--help")
        .output()?;
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout)?;
    for needle in [
        "migrate-report",
        "--dataplane-image",
        "--leader-elect",
        "--kubeconfig",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    Ok(())
}
