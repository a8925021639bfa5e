//! The annotation ValidatingAdmissionPolicy (`config/default/annotation-policy.yaml`) against
//! the real API server: installed with the real kubectl, it refuses invalid values at apply
//! time with the data plane's own Event message, leaves other controllers' Ingresses alone, and
//! agrees with the Rust parser on every key.
//!
//! The policies are cluster-wide, so this binary installs them once, runs its checks in one
//! test, and removes them again (also on failure), leaving the shared control plane as it was
//! for the test binaries after it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::{StreamExt as _, stream};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_crds::annotations::admission::{NGINX_POLICY_NAME, POLICY_NAME, verdict};
use sluice_crds::annotations::{MAX_VALUE_BYTES, NGINX_PREFIX, SLUICE_PREFIX, TABLE};
use sluice_test_support::{TestEnv, TestNamespace, wait_until};

/// A new ValidatingAdmissionPolicy takes a moment to be compiled and its parameters to be
/// watched; polls stop as soon as it acts.
const WAIT: Duration = Duration::from_secs(60);

fn policy_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/default/annotation-policy.yaml")
}

/// Runs kubectl with `stdin`; returns (success, stdout + stderr).
fn kubectl(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> anyhow::Result<(bool, String)> {
    let mut child = env
        .kubectl()
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Removes what the test installed cluster-wide, whatever happens.
struct Cleanup {
    env: TestEnv,
    classes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let file = policy_file().display().to_string();
        let _ = self
            .env
            .kubectl()
            .args(["delete", "--ignore-not-found", "--wait=false", "-f", &file])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for class in &self.classes {
            let _ = Command::new(self.env.kubebins.join("kubectl"))
                .arg("--kubeconfig")
                .arg(&self.env.kubeconfig)
                .args(["delete", "ingressclass", class, "--ignore-not-found"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn ingress_class(name: &str, controller: &str) -> anyhow::Result<IngressClass> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name, "labels": {"sluice.dev/test": "true"}},
        "spec": {"controller": controller}
    }))?)
}

fn ingress(
    name: &str,
    class: Option<&str>,
    annotations: &BTreeMap<String, String>,
) -> anyhow::Result<Ingress> {
    let mut spec = json!({
        "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}
    });
    if let Some(class) = class {
        spec["ingressClassName"] = json!(class);
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": annotations},
        "spec": spec,
    }))?)
}

fn one(key: &str, value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(key.to_owned(), value.to_owned())])
}

/// Dry-run create: `Ok(())` when admitted, `Err(message)` when refused.
async fn admitted(
    ingresses: &Api<Ingress>,
    name: &str,
    class: Option<&str>,
    annotations: &BTreeMap<String, String>,
) -> anyhow::Result<Result<(), String>> {
    let object = ingress(name, class, annotations)?;
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match ingresses.create(&params, &object).await {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(status)) if status.code == 422 => Ok(Err(status.message.clone())),
        Err(other) => Err(other.into()),
    }
}

/// An Ingress manifest for `kubectl apply`.
fn manifest(name: &str, class: &str, annotations: &[(&str, &str)]) -> String {
    let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    serde_json::to_string(&json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "ingressClassName": class,
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}
        }
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn annotation_policy_refuses_invalid_values_at_apply_time() -> anyhow::Result<()> {
    let env = TestEnv::load()?;
    let client = env.client().await?;
    let ns = TestNamespace::create(&env, &client, "admission").await?;
    let ours = format!("adm-sluice-{}", std::process::id());
    let theirs = format!("adm-nginx-{}", std::process::id());
    let _cleanup = Cleanup {
        env: env.clone(),
        classes: vec![ours.clone(), theirs.clone()],
    };

    // A Sluice class and an ingress-nginx class: the IngressClasses are the nginx policy's
    // parameters.
    let classes = Api::<IngressClass>::all(client.clone());
    for (name, controller) in [
        (&ours, "sluice.dev/ingress-controller"),
        (&theirs, "k8s.io/ingress-nginx"),
    ] {
        classes
            .patch(
                name,
                &PatchParams::apply("sluice-tests").force(),
                &Patch::Apply(&ingress_class(name, controller)?),
            )
            .await?;
    }

    // Installed the way users install it: the committed file, the real kubectl.
    let file = policy_file().display().to_string();
    let (ok, out) = kubectl(&env, &["apply", "--server-side", "-f", &file], None)?;
    anyhow::ensure!(ok, "kubectl apply {file}: {out}");
    for name in [POLICY_NAME, NGINX_POLICY_NAME] {
        assert!(
            out.contains(&format!(
                "validatingadmissionpolicy.admissionregistration.k8s.io/{name} serverside-applied"
            )),
            "{out}"
        );
    }

    let ingresses = Api::<Ingress>::namespaced(client.clone(), &ns.name);
    // Both policies act once compiled and (nginx) once the classes are seen as parameters.
    let probes = [
        (
            format!("{SLUICE_PREFIX}limit-rps"),
            "lots",
            Some(theirs.as_str()),
        ),
        (
            format!("{NGINX_PREFIX}proxy-body-size"),
            "10xb",
            Some(ours.as_str()),
        ),
    ];
    for (key, value, class) in &probes {
        let annotations = one(key, value);
        wait_until(&format!("admission refusing {key}={value}"), WAIT, || {
            let (ingresses, annotations) = (ingresses.clone(), annotations.clone());
            async move {
                Ok(admitted(&ingresses, "probe", *class, &annotations)
                    .await?
                    .err())
            }
        })
        .await?;
    }

    // --- kubectl apply: refused with the Event's message, or accepted ---------------------
    let apply = |yaml: String| kubectl(&env, &["apply", "-n", &ns.name, "-f", "-"], Some(&yaml));
    let refused: [(&str, &str, &str, &str); 3] = [
        (
            "bad-body-size",
            &ours,
            "nginx.ingress.kubernetes.io/proxy-body-size",
            "10xb",
        ),
        ("bad-rps", &theirs, "sluice.dev/limit-rps", "lots"),
        (
            "bad-affinity",
            &ours,
            "nginx.ingress.kubernetes.io/affinity",
            "sticky",
        ),
    ];
    for (name, class, key, value) in refused {
        let (ok, out) = apply(manifest(name, class, &[(key, value)]))?;
        let message = verdict(key, value).expect("an invalid value");
        assert!(!ok, "{key}={value} was applied: {out}");
        assert!(
            out.contains(&message),
            "kubectl's answer should carry the Event message {message:?}:\n{out}"
        );
    }
    let expected = "nginx.ingress.kubernetes.io/proxy-body-size: invalid value \"10xb\": \
                    expected a size: digits with an optional k, m or g suffix (8k, 1m; 0 means \
                    unlimited)";
    assert_eq!(
        verdict("nginx.ingress.kubernetes.io/proxy-body-size", "10xb").as_deref(),
        Some(expected)
    );

    let (ok, out) = apply(manifest(
        "good",
        &ours,
        &[
            ("nginx.ingress.kubernetes.io/proxy-body-size", "10m"),
            ("nginx.ingress.kubernetes.io/affinity", "cookie"),
            (
                "nginx.ingress.kubernetes.io/whitelist-source-range",
                "10.0.0.0/8, 192.0.2.1",
            ),
            (
                "nginx.ingress.kubernetes.io/auth-signin",
                "https://auth.example.com/oauth2/start?rd=$scheme://$http_host$request_uri",
            ),
            ("sluice.dev/limit-rps", "20"),
            // Not a Sluice key: never refused, the data plane reports it as unknown.
            ("nginx.ingress.kubernetes.io/rate-limit", "lots"),
        ],
    ))?;
    assert!(ok, "valid values are applied: {out}");

    // Another controller's Ingress: its nginx keys are not ours to judge.
    let (ok, out) = apply(manifest(
        "not-ours",
        &theirs,
        &[("nginx.ingress.kubernetes.io/proxy-body-size", "10xb")],
    ))?;
    assert!(ok, "an ingress-nginx Ingress is left alone: {out}");

    // The sluice.dev/ twin wins, so a shadowed nginx value is not checked either.
    let (ok, out) = apply(manifest(
        "shadowed",
        &ours,
        &[
            ("nginx.ingress.kubernetes.io/proxy-body-size", "10xb"),
            ("sluice.dev/proxy-body-size", "10m"),
        ],
    ))?;
    assert!(ok, "a shadowed nginx value is not read: {out}");

    // The legacy class annotation decides the class, as in the data plane.
    let legacy = BTreeMap::from([
        ("kubernetes.io/ingress.class".to_owned(), ours.clone()),
        (format!("{NGINX_PREFIX}limit-rpm"), "many".to_owned()),
    ]);
    let answer = admitted(&ingresses, "legacy", None, &legacy).await?;
    let message = verdict(&format!("{NGINX_PREFIX}limit-rpm"), "many").unwrap();
    assert!(
        answer.as_ref().is_err_and(|got| got.ends_with(&format!(
            "ValidatingAdmissionPolicy '{NGINX_POLICY_NAME}' with binding \
             '{NGINX_POLICY_NAME}' denied request: {message}"
        ))),
        "{answer:?}"
    );

    // --- Ratcheting: values that did not change are not checked again ---------------------
    // "not-ours" holds an invalid nginx value; moving it to our class (as a migration does)
    // keeps it writable, while a new invalid value is refused and a fix is accepted.
    let patch = |body: serde_json::Value| {
        let ingresses = ingresses.clone();
        async move {
            ingresses
                .patch("not-ours", &PatchParams::default(), &Patch::Merge(&body))
                .await
        }
    };
    patch(json!({"spec": {"ingressClassName": ours}})).await?;
    patch(json!({"metadata": {"labels": {"team": "shop"}}})).await?;
    let err = patch(json!({"metadata": {"annotations": {
        "nginx.ingress.kubernetes.io/proxy-body-size": "11xb"
    }}}))
    .await
    .expect_err("a changed invalid value is checked");
    let message = verdict("nginx.ingress.kubernetes.io/proxy-body-size", "11xb").unwrap();
    assert!(err.to_string().contains(&message), "{err}");
    patch(json!({"metadata": {"annotations": {
        "nginx.ingress.kubernetes.io/proxy-body-size": "11m"
    }}}))
    .await?;

    // --- Every key, both prefixes: admission answers exactly what the parser's checks say --
    let long = "v".repeat(MAX_VALUE_BYTES + 1);
    let wordy = "é".repeat(150);
    let values: Vec<&str> = vec![
        "",
        "true",
        "False",
        "yes",
        "0",
        "1",
        "301",
        "99999",
        "-1",
        "lots",
        "5m",
        "0s",
        "1m30s",
        "8k",
        "10xb",
        "cookie",
        "sticky",
        "persistent",
        "lax",
        "grpcs",
        "AUTO_HTTP",
        "1.1",
        "on",
        "basic",
        "auth-map",
        "PATCH",
        "10.0.0.0/8, 192.0.2.1",
        "2001:db8::/32",
        "10.0.0.0/8,",
        "10.0.0.0/33",
        "010.0.0.0/8",
        "::ffff:1.2.3.4",
        "::ffff:1.2.3.4/128",
        "https://auth.example.com/oauth2/start?rd=$escaped_request_uri",
        "https://a.example/$nope",
        "https://a b/",
        "ftp://a.example/",
        "/$2",
        "/app",
        "/a;b",
        "$service_name.$namespace.svc",
        "X-Auth-Request-User, X-Auth-Request-Email",
        "X A",
        "GET, POST",
        "INGRESSCOOKIE",
        ".example.com",
        "*",
        "https://*.example.com, http://b.example:8080",
        "example.com",
        "ns/basic-auth",
        "Basic_Auth",
        "Authentication Required",
        "say \"hi\"",
        "back\\slash",
        "ALL:!aNULL:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP",
        "ALL;ssl_engine x",
        "a\nb",
        "a\r\nX-Injected: 1",
        "\0",
        "x\u{200b}",
        "\u{202e}true",
        "content_by_lua_block { os.execute(\"id\") }",
        &wordy,
        &long,
    ];
    let mut cases = Vec::new();
    for spec in TABLE {
        for prefix in [SLUICE_PREFIX, NGINX_PREFIX] {
            for value in &values {
                cases.push((format!("{prefix}{}", spec.key), (*value).to_owned()));
            }
        }
    }
    let total = cases.len();
    let mismatches: Vec<String> = stream::iter(cases)
        .map(|(key, value)| {
            let (ingresses, ours) = (ingresses.clone(), ours.clone());
            async move {
                let answer = admitted(&ingresses, "sweep", Some(&ours), &one(&key, &value)).await;
                let want = verdict(&key, &value);
                let agrees = match (&answer, &want) {
                    (Ok(Ok(())), None) => true,
                    (Ok(Err(got)), Some(want)) => got.ends_with(&format!("denied request: {want}")),
                    _ => false,
                };
                (!agrees).then(|| format!("{key}={value:?}: admission {answer:?}, parser {want:?}"))
            }
        })
        .buffer_unordered(8)
        .filter_map(|mismatch| async move { mismatch })
        .collect()
        .await;
    assert!(
        mismatches.is_empty(),
        "{} of {total} cases disagree:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    ns.delete(&client).await?;
    Ok(())
}
