//! `sluice-operator migrate-report`: reads the cluster and prints the report.
//!
//! ```text
//! sluice-operator migrate-report [--kubeconfig PATH] [--output text|json] [--namespace NS]
//!     [--ingress-nginx-configmap NS/NAME]
//!     [--tcp-services-configmap NS/NAME] [--udp-services-configmap NS/NAME]
//! ```
//!
//! It only reads: `list` on Ingresses (cluster-wide, or in `--namespace`) and `get` on the named
//! ConfigMaps. Exit status: 0 when the report was printed, whatever its verdicts (a report is
//! not a failure; scripts read the verdicts from `--output json`); 1 when it could not be made
//! (no cluster, no permission, a named ConfigMap missing); 2 for a usage error.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};

use super::{Report, render, report_with_streams};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For scripts: one JSON object with stable field names (schemaVersion 1).
    Json,
}

/// A `namespace/name` reference on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl FromStr for ObjectRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(ObjectRef {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(format!("expected NAMESPACE/NAME, got {s:?}")),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Reports what Sluice will make of the cluster's ingress-nginx Ingresses: per Ingress, the
/// annotations it applies, translates, ignores and rejects, and a verdict (served identically,
/// served with differences, not served). Read-only. Exit status 0 whenever the report is
/// printed.
#[derive(clap::Args, Debug, Clone)]
pub struct MigrateReportArgs {
    /// Path to a kubeconfig. Defaults to $KUBECONFIG, then the in-cluster service account.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Only the Ingresses of this namespace (default: every namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// The ingress-nginx controller ConfigMap (the chart's is
    /// ingress-nginx/ingress-nginx-controller), mapped onto spec.proxy.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub ingress_nginx_configmap: Option<ObjectRef>,
    /// ingress-nginx's --tcp-services-configmap: its TCP services are listed as not served.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub tcp_services_configmap: Option<ObjectRef>,
    /// ingress-nginx's --udp-services-configmap: its UDP services are listed as not served.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub udp_services_configmap: Option<ObjectRef>,
}

/// Reads the cluster and builds the report.
pub async fn collect(client: kube::Client, args: &MigrateReportArgs) -> anyhow::Result<Report> {
    let api: Api<Ingress> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ingresses = list_all(&api).await.context("listing Ingresses")?;
    let get = |r: &Option<ObjectRef>| {
        let client = client.clone();
        let r = r.clone();
        async move {
            match r {
                None => Ok(None),
                Some(r) => Api::<ConfigMap>::namespaced(client, &r.namespace)
                    .get(&r.name)
                    .await
                    .map(Some)
                    .with_context(|| format!("reading ConfigMap {r}")),
            }
        }
    };
    let controller = get(&args.ingress_nginx_configmap).await?;
    let tcp = get(&args.tcp_services_configmap).await?;
    let udp = get(&args.udp_services_configmap).await?;
    Ok(report_with_streams(
        &ingresses,
        controller.as_ref(),
        tcp.as_ref(),
        udp.as_ref(),
    ))
}

/// Every Ingress, a page at a time (an estate can hold thousands).
async fn list_all(api: &Api<Ingress>) -> kube::Result<Vec<Ingress>> {
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Reads the cluster and renders the report in the chosen format.
pub async fn run(client: kube::Client, args: &MigrateReportArgs) -> anyhow::Result<String> {
    let report = collect(client, args).await?;
    Ok(match args.output {
        Output::Text => render::text(&report),
        Output::Json => render::json(&report),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_refs() {
        assert_eq!(
            "ingress-nginx/ingress-nginx-controller".parse(),
            Ok(ObjectRef {
                namespace: "ingress-nginx".into(),
                name: "ingress-nginx-controller".into()
            })
        );
        for bad in ["", "name", "/name", "ns/", "a/b/c"] {
            assert!(bad.parse::<ObjectRef>().is_err(), "{bad}");
        }
    }
}
