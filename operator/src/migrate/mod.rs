//! The migration report: what Sluice will make of an ingress-nginx estate.
//!
//! `sluice-operator migrate-report` ([`cli`]) reads every Ingress (and, if named, the
//! ingress-nginx controller ConfigMap and its TCP/UDP services ConfigMaps) and prints, per
//! Ingress, which annotations Sluice applies, translates, ignores and rejects, and a
//! [`Verdict`]. [`report`] is the pure part: Kubernetes objects in, a [`Report`] out; the
//! renderers in [`render`] turn it into text for people or JSON for scripts.
//!
//! Everything about annotations comes from the data plane's own parser
//! ([`sluice_crds::annotations::parse_annotations`]), so the report cannot disagree with what a
//! fleet does with the same Ingress; snippets are translated or refused by its snippet reader
//! ([`sluice_crds::annotations::snippet`]). On top of it the report adds what the parser leaves
//! to people: what a snippet it translates or ignores held, what the controller ConfigMap meant
//! set-wide ([`nginx_config`]), regex paths the data plane cannot compile, and what depends on
//! other Ingresses as the data plane settles it: the main Ingress a canary joins (same host, path
//! and path type; the oldest canary of a route wins) and the Ingress whose client certificates
//! decide a TLS host (the oldest that terminates it).
//!
//! The report is conservative: when it cannot vouch that an Ingress keeps its access rules, the
//! verdict is [`Verdict::NotServed`] with the reason, never a quieter one.
//!
//! # JSON output
//!
//! `--output json` prints one [`Report`] object. Field names are stable (additions only within
//! `schemaVersion` 1); lists are sorted (Ingresses by namespace and name, annotations by key):
//!
//! ```text
//! {
//!   "schemaVersion": 1,
//!   "ingresses": [{
//!     "namespace": "apps", "name": "shop",
//!     "class": "nginx",                      // kubernetes.io/ingress.class, else spec.ingressClassName; null: none
//!     "verdict": "served-identically" | "served-with-differences" | "not-served",
//!     "notServed": ["..."],                  // why not served, one line each (empty unless not-served)
//!     "differences": ["..."],                // what is served differently, one line each
//!     "requires": ["..."],                   // set settings this Ingress needs (passthrough, no class)
//!     "applied":    [{"key": "...", "value": "..."}],
//!     "translated": [{"key": "...", "value": "...", "reason": "..."}],
//!     "ignored":    [{"key": "...", "value": "...", "reason": "..."}],
//!     "rejected":   [{"key": "...", "value": "...", "expected": "...", "reason": "...",
//!                     "effect": "policy-not-applied" | "ingress-not-served"}]
//!   }],
//!   "ingressNginxConfigMap": null | {
//!     "namespace": "...", "name": "...",
//!     "mapped": [{"key": "...", "value": "...", "field": "proxy.proxyBodySize", "note": "..."?}],
//!     "notCarriedOver": [{"key": "...", "value": "...", "reason": "...",
//!                         "effect": "none" | "difference" | "not-served"}]
//!   },
//!   "streams": [{"protocol": "TCP" | "UDP", "port": "22", "target": "ns/svc:22",
//!                "source": "ns/configmap", "verdict": "not-served", "reason": "..."}],
//!   "suggestedSpec": {"proxy": {...}, "loadBalancer": {"proxyProtocol": true}},  // IngressControllerSet spec fields
//!   "suggestedSpecNotes": ["..."],
//!   "summary": {"ingresses": 0, "servedIdentically": 0, "servedWithDifferences": 0,
//!               "notServed": 0, "streamsNotServed": 0}
//! }
//! ```
//!
//! The `key` of an annotation is the full key as written (`nginx.ingress.kubernetes.io/...` or
//! `sluice.dev/...`); `value` is the value as written, in full.

pub mod cli;
pub mod nginx_config;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;
use sluice_crds::ProxySettings;
use sluice_crds::annotations::grammar::BOOL_TRUE;
use sluice_crds::annotations::table::{Drops, SNIPPETS};
use sluice_crds::annotations::{
    AnnotationProblem, ClientCertificates, LoadBalance, NGINX_PREFIX, ParsedAnnotations,
    PolicyGroup, SLUICE_PREFIX, SecretRef, Severity, VerifyClient, effective, parse_annotations,
    path_regex, snippet, table,
};

pub use nginx_config::{ConfigFinding, ConfigMapReport, Effect, MappedKey, StreamReport};

/// The version of the JSON layout; bumped only when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// The legacy class annotation, which ingress-nginx (and Sluice) read before
/// `spec.ingressClassName`.
const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// What happens to an Ingress's traffic on Sluice, compared with ingress-nginx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every annotation applies; nothing set-wide differs.
    ServedIdentically,
    /// Served, with the differences listed (ignored keys, policies not applied, harmless
    /// snippets, set-wide settings).
    ServedWithDifferences,
    /// Not served, or must not be switched over as it is: the reasons are listed.
    NotServed,
}

impl Verdict {
    /// The words people read.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::ServedIdentically => "served identically",
            Verdict::ServedWithDifferences => "served with differences",
            Verdict::NotServed => "not served",
        }
    }
}

/// An annotation Sluice applies as ingress-nginx did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The full key.
    pub key: String,
    /// The value as written.
    pub value: String,
}

/// An annotation translated or ignored, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The full key.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// Why, in words (the parser's reason for ignored keys).
    pub reason: String,
}

/// What a rejected annotation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectEffect {
    /// The policy (or setting) is not applied; the Ingress is served.
    PolicyNotApplied,
    /// The Ingress is not served (fails closed).
    IngressNotServed,
}

/// An annotation whose value the parser rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// The full key.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// The form the value must have (empty when the key itself is the problem).
    pub expected: String,
    /// Why.
    pub reason: String,
    /// What it does.
    pub effect: RejectEffect,
}

/// One Ingress's part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressReport {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The class it names: the legacy annotation, else `spec.ingressClassName`.
    pub class: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it is not served; empty unless the verdict is not-served.
    pub not_served: Vec<String>,
    /// What is served differently.
    pub differences: Vec<String>,
    /// Settings of the serving IngressControllerSet this Ingress needs.
    pub requires: Vec<String>,
    /// Annotations applied as ingress-nginx did.
    pub applied: Vec<Applied>,
    /// Snippets whose effect Sluice provides without executing them.
    pub translated: Vec<Finding>,
    /// Annotations without effect on Sluice.
    pub ignored: Vec<Finding>,
    /// Annotations whose value was rejected.
    pub rejected: Vec<Rejected>,
}

/// The load-balancer part of the suggested spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedLoadBalancer {
    /// `use-proxy-protocol`.
    pub proxy_protocol: bool,
}

/// IngressControllerSet spec fields that reproduce the ingress-nginx controller's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedSpec {
    /// `spec.proxy`.
    #[serde(skip_serializing_if = "ProxySettings::is_empty")]
    pub proxy: ProxySettings,
    /// `spec.loadBalancer` (only the fields the ConfigMap decides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<SuggestedLoadBalancer>,
}

impl SuggestedSpec {
    /// True when nothing needs setting.
    pub fn is_empty(&self) -> bool {
        self.proxy.is_empty() && self.load_balancer.is_none()
    }
}

/// Counts for the last line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Ingresses read.
    pub ingresses: usize,
    /// Verdict served-identically.
    pub served_identically: usize,
    /// Verdict served-with-differences.
    pub served_with_differences: usize,
    /// Verdict not-served.
    pub not_served: usize,
    /// TCP/UDP services (all not served).
    pub streams_not_served: usize,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// One entry per Ingress, sorted by namespace and name.
    pub ingresses: Vec<IngressReport>,
    /// The controller ConfigMap's section, when one was given.
    pub ingress_nginx_config_map: Option<ConfigMapReport>,
    /// TCP and UDP services from ingress-nginx's services ConfigMaps.
    pub streams: Vec<StreamReport>,
    /// Spec fields to set on the IngressControllerSet replacing the controller.
    pub suggested_spec: SuggestedSpec,
    /// Why the suggested spec holds what the ConfigMap does not say (passthrough).
    pub suggested_spec_notes: Vec<String>,
    /// Counts.
    pub summary: Summary,
}

/// The report for `ingresses` and the controller ConfigMap (if any), without TCP/UDP services.
pub fn report(ingresses: &[Ingress], nginx_configmap: Option<&ConfigMap>) -> Report {
    report_with_streams(ingresses, nginx_configmap, None, None)
}

/// The report, with the TCP and UDP services ConfigMaps of ingress-nginx
/// (`--tcp-services-configmap`, `--udp-services-configmap`) if given.
pub fn report_with_streams(
    ingresses: &[Ingress],
    nginx_configmap: Option<&ConfigMap>,
    tcp_services: Option<&ConfigMap>,
    udp_services: Option<&ConfigMap>,
) -> Report {
    let mapped = nginx_configmap.map(nginx_config::map);
    let rules = mapped.as_ref().map(|m| m.rules.as_slice()).unwrap_or(&[]);

    let parsed: Vec<(&Ingress, BTreeMap<String, String>, ParsedAnnotations)> = ingresses
        .iter()
        .map(|ingress| {
            let annotations = ingress.metadata.annotations.clone().unwrap_or_default();
            let parsed = parse_annotations(&annotations);
            (ingress, annotations, parsed)
        })
        .collect();
    let estate = Estate::new(&parsed);

    let mut reports: Vec<IngressReport> = parsed
        .iter()
        .enumerate()
        .map(|(index, (ingress, annotations, parsed))| {
            ingress_report(index, ingress, annotations, parsed, rules, &estate)
        })
        .collect();
    reports.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

    let mut suggested_spec = SuggestedSpec::default();
    let mut suggested_spec_notes = Vec::new();
    if let Some(mapped) = &mapped {
        suggested_spec.proxy = mapped.proxy.clone();
        suggested_spec.load_balancer = mapped
            .proxy_protocol
            .filter(|on| *on)
            .map(|proxy_protocol| SuggestedLoadBalancer { proxy_protocol });
    }
    let passthrough: Vec<String> = parsed
        .iter()
        .filter(|(_, _, parsed)| parsed.policies.tls.passthrough == Some(true))
        .map(|(ingress, _, _)| qualified(ingress))
        .collect();
    if !passthrough.is_empty() {
        suggested_spec.proxy.enable_ssl_passthrough = Some(true);
        suggested_spec_notes.push(format!(
            "proxy.enableSslPassthrough: true because of ssl-passthrough on {} (ingress-nginx's \
             --enable-ssl-passthrough flag, which no ConfigMap shows)",
            passthrough.join(", ")
        ));
    }

    let mut streams = Vec::new();
    if let Some(cm) = tcp_services {
        streams.extend(nginx_config::streams("TCP", cm));
    }
    if let Some(cm) = udp_services {
        streams.extend(nginx_config::streams("UDP", cm));
    }

    let count = |v: Verdict| reports.iter().filter(|r| r.verdict == v).count();
    let summary = Summary {
        ingresses: reports.len(),
        served_identically: count(Verdict::ServedIdentically),
        served_with_differences: count(Verdict::ServedWithDifferences),
        not_served: count(Verdict::NotServed),
        streams_not_served: streams.len(),
    };
    Report {
        schema_version: SCHEMA_VERSION,
        ingresses: reports,
        ingress_nginx_config_map: mapped.map(|m| m.report),
        streams,
        suggested_spec,
        suggested_spec_notes,
        summary,
    }
}

fn qualified(ingress: &Ingress) -> String {
    format!(
        "{}/{}",
        ingress.metadata.namespace.as_deref().unwrap_or_default(),
        ingress.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The class an Ingress names: the legacy annotation wins, as in ingress-nginx.
fn class_of(ingress: &Ingress) -> Option<String> {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
        .cloned()
        .or_else(|| {
            ingress
                .spec
                .as_ref()
                .and_then(|s| s.ingress_class_name.clone())
        })
}

/// (class, host) pairs in regex mode: any Ingress of the class on the host has use-regex or
/// rewrite-target, which makes every path on the host a regex (ingress-nginx's rule, kept by
/// Sluice).
fn regex_hosts(
    parsed: &[(&Ingress, BTreeMap<String, String>, ParsedAnnotations)],
) -> BTreeSet<(Option<String>, String)> {
    let mut hosts = BTreeSet::new();
    for (ingress, _, parsed) in parsed {
        if !parsed.policies.rewrite.regex_mode() {
            continue;
        }
        let class = class_of(ingress);
        for (host, _) in paths(ingress) {
            hosts.insert((class.clone(), host));
        }
    }
    hosts
}

/// Every (host, path) of an Ingress's rules; a rule without host has host "".
fn paths(ingress: &Ingress) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rule in ingress
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
    {
        let host = rule.host.clone().unwrap_or_default();
        for path in rule.http.iter().flat_map(|http| http.paths.iter()) {
            out.push((
                host.clone(),
                path.path.clone().unwrap_or_else(|| "/".into()),
            ));
        }
    }
    out
}

/// A path of an Ingress's rules as the data plane matches a canary to its main Ingress: host,
/// path (an empty ImplementationSpecific path is `/`) and path type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RoutePath {
    host: String,
    path: String,
    kind: String,
}

impl RoutePath {
    /// As the data plane's "canary ignored" Event names it.
    fn describe(&self) -> String {
        let host = if self.host.is_empty() {
            "hosts without rules of their own (the catch-all)".to_owned()
        } else {
            format!("host {}", self.host)
        };
        format!("{host} path {:?} ({})", self.path, self.kind)
    }
}

fn route_paths(ingress: &Ingress) -> Vec<RoutePath> {
    let mut out = Vec::new();
    for rule in ingress
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
    {
        let host = rule.host.clone().unwrap_or_default();
        for path in rule.http.iter().flat_map(|http| http.paths.iter()) {
            let raw = path.path.clone().unwrap_or_default();
            let path_str = if raw.is_empty() && path.path_type == "ImplementationSpecific" {
                "/".to_owned()
            } else {
                raw
            };
            out.push(RoutePath {
                host: host.clone(),
                path: path_str,
                kind: path.path_type.clone(),
            });
        }
    }
    out
}

/// The hosts an Ingress terminates TLS for (`spec.tls[].hosts`), in order.
fn tls_hosts(ingress: &Ingress) -> Vec<String> {
    ingress
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|tls| tls.hosts.iter().flatten())
        .filter(|host| !host.is_empty())
        .cloned()
        .collect()
}

/// Whether client certificates have any TLS host to apply to, as the data plane decides.
fn has_tls_hosts(ingress: &Ingress) -> bool {
    ingress
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .any(|tls| tls.hosts.as_ref().is_some_and(|h| !h.is_empty()) || tls.secret_name.is_some())
}

/// Two classes one IngressControllerSet may serve together: the same class, or no class on
/// either side (a set with watchIngressWithoutClass serves those with its own class).
fn same_set(a: &Option<String>, b: &Option<String>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Oldest first, as the data plane orders Ingresses to settle conflicts: creation time (none
/// is newest), then namespace/name.
type Age = (bool, Option<Time>, String);

/// One Ingress as the others see it.
struct Member {
    class: Option<String>,
    qualified: String,
    age: Age,
    /// Not rejected by the parser: its routes and TLS hosts take part.
    served: bool,
    /// `canary: "true"` with valid canary keys.
    canary: bool,
    routes: Vec<RoutePath>,
    tls_hosts: Vec<String>,
    /// Its `auth-tls-*`, the Secret's namespace filled in (what decides a host's termination).
    client_certificates: Option<ClientCertificates>,
}

/// What an Ingress's report needs to know about the others.
struct Estate {
    /// (class, host) pairs in regex mode.
    regex_hosts: BTreeSet<(Option<String>, String)>,
    members: Vec<Member>,
}

impl Estate {
    fn new(parsed: &[(&Ingress, BTreeMap<String, String>, ParsedAnnotations)]) -> Self {
        let members = parsed
            .iter()
            .map(|(ingress, _, parsed)| {
                let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
                let created = ingress.metadata.creation_timestamp.clone();
                Member {
                    class: class_of(ingress),
                    qualified: qualified(ingress),
                    age: (created.is_none(), created, qualified(ingress)),
                    served: !parsed.rejects_ingress(),
                    canary: parsed.policies.canary.is_some(),
                    routes: route_paths(ingress),
                    tls_hosts: tls_hosts(ingress),
                    client_certificates: parsed.policies.client_certificates.clone().map(
                        |mut c| {
                            if c.secret.namespace.is_none() {
                                c.secret.namespace = Some(namespace.clone());
                            }
                            c
                        },
                    ),
                }
            })
            .collect();
        Estate {
            regex_hosts: regex_hosts(parsed),
            members,
        }
    }

    /// Why the canary `index` takes no requests on each of its paths that it does not serve,
    /// and how many paths it has.
    fn canary_losses(&self, index: usize) -> (Vec<String>, usize) {
        let Some(canary) = self.members.get(index) else {
            return (Vec::new(), 0);
        };
        let mut lost = Vec::new();
        let mut seen = BTreeSet::new();
        for route in &canary.routes {
            if !seen.insert(route) {
                continue;
            }
            let peers = || {
                self.members.iter().enumerate().filter(|(i, m)| {
                    *i != index
                        && m.served
                        && m.qualified != canary.qualified
                        && same_set(&m.class, &canary.class)
                        && m.routes.contains(route)
                })
            };
            if !peers().any(|(_, m)| !m.canary) {
                lost.push(format!(
                    "no main Ingress for this canary: no other Ingress in the report serves {}; \
                     Sluice ignores the canary there (its Event: canary ignored: no Ingress \
                     serves ...), as ingress-nginx has nothing to merge it into",
                    route.describe()
                ));
                continue;
            }
            if let Some((_, older)) = peers()
                .filter(|(_, m)| m.canary && m.age < canary.age)
                .min_by(|a, b| a.1.age.cmp(&b.1.age))
            {
                lost.push(format!(
                    "{} already has a canary, Ingress {}, which is older: Sluice ignores this \
                     one there",
                    route.describe(),
                    older.qualified
                ));
            }
        }
        (lost, seen.len())
    }

    /// TLS hosts of `index` whose termination an older Ingress decides with other client
    /// certificates than `index` asks for, with that Ingress.
    fn client_certificate_conflicts(&self, index: usize) -> Vec<(String, &str)> {
        let Some(this) = self.members.get(index) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for host in &this.tls_hosts {
            if !seen.insert(host) {
                continue;
            }
            let winner = self
                .members
                .iter()
                .filter(|m| {
                    m.served && same_set(&m.class, &this.class) && m.tls_hosts.contains(host)
                })
                .min_by(|a, b| a.age.cmp(&b.age));
            if let Some(winner) = winner
                && winner.qualified != this.qualified
                && winner.client_certificates != this.client_certificates
            {
                out.push((host.clone(), winner.qualified.as_str()));
            }
        }
        out
    }
}

/// The key without one of the two prefixes Sluice reads.
fn bare_key(key: &str) -> Option<&str> {
    key.strip_prefix(SLUICE_PREFIX)
        .or_else(|| key.strip_prefix(NGINX_PREFIX))
}

/// Unsupported keys the parser ignores whose absence opens something up: not served.
fn weakens_security(bare: &str, value: &str) -> Option<&'static str> {
    let on = BOOL_TRUE.contains(&value) || value.eq_ignore_ascii_case("on");
    match bare {
        "enable-modsecurity" | "enable-owasp-core-rules" if on => Some(
            "the ModSecurity web application firewall has no Sluice equivalent: requests it \
             blocks would reach the backend",
        ),
        // The parser ignores it (no HTTP route depends on it), but what it served is gone.
        "stream-snippet" => Some(
            "it defines TCP/UDP stream servers, and Sluice serves HTTP and HTTPS only: what they \
             serve would not be served",
        ),
        _ => None,
    }
}

fn ingress_report(
    index: usize,
    ingress: &Ingress,
    annotations: &BTreeMap<String, String>,
    parsed: &ParsedAnnotations,
    rules: &[nginx_config::SetWideRule],
    estate: &Estate,
) -> IngressReport {
    let class = class_of(ingress);
    let mut out = IngressReport {
        namespace: ingress.metadata.namespace.clone().unwrap_or_default(),
        name: ingress.metadata.name.clone().unwrap_or_default(),
        class: class.clone(),
        verdict: Verdict::ServedIdentically,
        not_served: Vec::new(),
        differences: Vec::new(),
        requires: Vec::new(),
        applied: Vec::new(),
        translated: Vec::new(),
        ignored: Vec::new(),
        rejected: Vec::new(),
    };

    let mut problems: BTreeMap<&str, Vec<&AnnotationProblem>> = BTreeMap::new();
    for problem in &parsed.problems {
        problems
            .entry(problem.key.as_str())
            .or_default()
            .push(problem);
    }
    // Policies read as a unit (affinity, CORS, authentication, ...) are dropped whole when one
    // of their keys is rejected; their valid keys are then not applied either.
    let is_canary = parsed.policies.canary.is_some();
    let mut dropped: BTreeMap<&'static str, &str> = BTreeMap::new();
    for problem in &parsed.problems {
        if problem.severity == Severity::Ignored {
            continue;
        }
        if let Some(Drops::Policy(policy)) = bare_key(&problem.key)
            .and_then(table::spec)
            .map(|spec| spec.drops)
        {
            dropped.entry(policy).or_insert(problem.key.as_str());
        }
    }
    for (key, value) in annotations {
        let Some(bare) = bare_key(key) else {
            continue;
        };
        let winner = effective(annotations, bare).map(|(k, _)| k);
        if winner.as_deref() != Some(key.as_str()) {
            let winner = winner.unwrap_or_default();
            out.ignored.push(Finding {
                key: key.clone(),
                value: value.clone(),
                reason: format!("not read: {winner} is set and wins"),
            });
            if annotations.get(&winner) != Some(value) {
                out.differences.push(format!(
                    "{key}: not read; {winner} is set with another value and wins"
                ));
            }
            continue;
        }
        let found = problems.remove(key.as_str()).unwrap_or_default();
        if SNIPPETS.contains(&bare) {
            snippet_finding(&mut out, key, bare, value, &found);
        } else if let Some((policy, culprit)) = found
            .is_empty()
            .then(|| table::spec(bare))
            .flatten()
            .and_then(|spec| match spec.drops {
                Drops::Policy(policy) => dropped.get(policy).map(|culprit| (policy, *culprit)),
                Drops::Setting => None,
            })
        {
            let reason =
                format!("not applied: {policy} is not applied because {culprit} is rejected");
            out.differences.push(format!("{key}: {reason}"));
            out.ignored.push(Finding {
                key: key.clone(),
                value: value.clone(),
                reason,
            });
        } else if let Some(spec) = found
            .is_empty()
            .then(|| table::spec(bare))
            .flatten()
            .filter(|spec| is_canary && !applies_on_a_canary(spec))
        {
            // ingress-nginx's rule, which the data plane keeps: a canary's requests get the
            // main Ingress's policies; only its backend (and service-upstream) is its own.
            let reason = "not applied: a canary's requests get the main Ingress's policies \
                          (as in ingress-nginx)"
                .to_owned();
            if matches!(
                spec.group,
                PolicyGroup::LoadBalancing | PolicyGroup::SessionAffinity
            ) {
                out.differences.push(format!(
                    "{key}: not applied to the canary's endpoints, which ingress-nginx balanced \
                     by the canary's own load-balance, upstream-hash-by and affinity settings; \
                     Sluice uses the main Ingress's"
                ));
            }
            out.ignored.push(Finding {
                key: key.clone(),
                value: value.clone(),
                reason,
            });
        } else if found.is_empty() && table::spec(bare).is_some() {
            out.applied.push(Applied {
                key: key.clone(),
                value: value.clone(),
            });
        } else {
            problem_findings(&mut out, key, bare, value, &found);
        }
    }
    // Every problem names a key written on the Ingress; should one ever not, it is still shown.
    for (key, found) in problems {
        let value = found.first().map(|p| p.value.clone()).unwrap_or_default();
        problem_findings(&mut out, key, key, &value, &found);
    }

    set_wide(&mut out, annotations, rules);
    regex_paths(&mut out, ingress, parsed, &class, &estate.regex_hosts);
    if !parsed.rejects_ingress() {
        canary(&mut out, index, parsed, estate);
        client_certificates(&mut out, index, ingress, parsed, estate);
        upstream_tls(&mut out, ingress, parsed);
        load_balancing(&mut out, parsed);
    }
    custom_errors(&mut out, parsed);

    if parsed.policies.tls.passthrough == Some(true) {
        out.requires.push(
            "spec.proxy.enableSslPassthrough: true on the serving IngressControllerSet \
             (ingress-nginx's --enable-ssl-passthrough flag); it is in the suggested spec"
                .to_owned(),
        );
    }
    if class.is_none() {
        out.requires.push(
            "an IngressControllerSet with watchIngressWithoutClass: true (the Ingress names no \
             IngressClass)"
                .to_owned(),
        );
    }

    out.verdict = if !out.not_served.is_empty() {
        Verdict::NotServed
    } else if !out.differences.is_empty() {
        Verdict::ServedWithDifferences
    } else {
        Verdict::ServedIdentically
    };
    out
}

/// Keys a canary Ingress's own value decides: the canary rule, TLS termination for its hosts
/// (host-wide, whoever writes it) and how its backend is reached.
fn applies_on_a_canary(spec: &table::AnnotationSpec) -> bool {
    matches!(
        spec.group,
        PolicyGroup::Canary | PolicyGroup::Tls | PolicyGroup::ClientCertificates
    ) || spec.key == "service-upstream"
}

/// A canary is served as the canary of the main Ingress serving the same host, path and path
/// type; where the report sees none (or an older canary), the data plane ignores it there.
fn canary(out: &mut IngressReport, index: usize, parsed: &ParsedAnnotations, estate: &Estate) {
    if parsed.policies.canary.is_none() {
        return;
    }
    let (lost, paths) = estate.canary_losses(index);
    if paths == 0 {
        out.not_served.push(
            "no main Ingress for this canary: it has no rule paths to be the canary of".to_owned(),
        );
    } else if lost.len() == paths {
        out.not_served.extend(lost);
    } else {
        out.differences.extend(lost);
    }
}

/// Client certificates: applied on the Ingress's TLS hosts, from a Secret of its namespace,
/// unless an older Ingress decides a host's TLS termination. Each way Sluice would serve a path
/// without the certificates ingress-nginx asked for is a reason not to serve.
fn client_certificates(
    out: &mut IngressReport,
    index: usize,
    ingress: &Ingress,
    parsed: &ParsedAnnotations,
    estate: &Estate,
) {
    let Some(wanted) = &parsed.policies.client_certificates else {
        return;
    };
    let key = written_key(out, "auth-tls-secret");
    if let Some(why) = foreign_secret(&wanted.secret, &out.namespace) {
        out.not_served.push(format!(
            "{key}: {why}; the Ingress's TLS hosts would refuse every request (503)"
        ));
    }
    if wanted.verify == VerifyClient::Off {
        return;
    }
    if !has_tls_hosts(ingress) {
        out.not_served.push(format!(
            "{key}: client certificates apply to the Ingress's TLS hosts (spec.tls), and it has \
             none: Sluice would serve it without asking for them"
        ));
        return;
    }
    for (host, winner) in estate.client_certificate_conflicts(index) {
        out.not_served.push(format!(
            "{key}: client certificates ignored for host {host}: Ingress {winner}, which is \
             older, decides its TLS termination with other client-certificate settings, so this \
             Ingress's paths there would not get its own"
        ));
    }
}

/// TLS to HTTPS backends: what Sluice does differently from ingress-nginx.
fn upstream_tls(out: &mut IngressReport, ingress: &Ingress, parsed: &ParsedAnnotations) {
    if let Some(applied) = applied_key(out, "proxy-ssl-verify-depth") {
        let key = applied.key.clone();
        out.differences.push(format!(
            "{key}: accepted, but rustls verifies the backend's certificate chain to any depth"
        ));
    }
    // On a canary the main Ingress's proxy-ssl-* apply.
    if parsed.policies.canary.is_some() {
        return;
    }
    let Some(tls) = &parsed.policies.upstream_tls else {
        return;
    };
    if let Some(secret) = &tls.secret
        && let Some(why) = foreign_secret(secret, &out.namespace)
    {
        let key = written_key(out, "proxy-ssl-secret");
        out.not_served.push(format!(
            "{key}: {why}; requests to its HTTPS backends would fail"
        ));
    }
    if tls.name.is_none() && (tls.verify || tls.server_name) {
        let namespace = ingress.metadata.namespace.as_deref().unwrap_or_default();
        let what = match (tls.verify, tls.server_name) {
            (true, true) => "verified against and sent as SNI",
            (true, false) => "verified against",
            _ => "sent as SNI",
        };
        out.differences.push(format!(
            "proxy-ssl-*: without proxy-ssl-name the backend's name {what} is the Service's \
             cluster DNS name (<service>.{namespace}.svc), where ingress-nginx used its upstream \
             name ({namespace}-<service>-<port>)"
        ));
    }
}

/// Load balancing: what Sluice does differently from ingress-nginx.
fn load_balancing(out: &mut IngressReport, parsed: &ParsedAnnotations) {
    if parsed.policies.load_balancing.algorithm == Some(LoadBalance::Ewma)
        && let Some(applied) = applied_key(out, "load-balance")
    {
        let key = applied.key.clone();
        out.differences.push(format!(
            "{key}: ewma is a peak EWMA of response times with two random choices, close to \
             ingress-nginx's balancer but not the same picks"
        ));
    }
    // upstream-hash-by-subset* stay unsupported (the parser ignores them): say what the hash
    // does without them.
    if parsed.policies.load_balancing.hash_by.is_some()
        && applied_key(out, "upstream-hash-by").is_some()
    {
        let subset_keys: Vec<String> = out
            .ignored
            .iter()
            .filter(|f| {
                matches!(
                    bare_key(&f.key),
                    Some("upstream-hash-by-subset" | "upstream-hash-by-subset-size")
                )
            })
            .map(|f| format!("{}: ", f.key))
            .collect();
        for line in out.differences.iter_mut() {
            if subset_keys.iter().any(|k| line.starts_with(k.as_str())) {
                line.push_str(
                    "; upstream-hash-by is applied without subsets: each key goes to one \
                     endpoint, not to a subset of them",
                );
            }
        }
    }
}

/// custom-http-errors without default-backend: the serving set's default backend answers.
fn custom_errors(out: &mut IngressReport, parsed: &ParsedAnnotations) {
    if let Some(errors) = &parsed.policies.errors
        && errors.default_backend.is_none()
        && !errors.codes.is_empty()
        && applied_key(out, "custom-http-errors").is_some()
    {
        out.requires.push(
            "spec.defaultBackend on the serving IngressControllerSet (ingress-nginx's \
             --default-backend-service): it answers for custom-http-errors, as the Ingress \
             names no default-backend"
                .to_owned(),
        );
    }
}

/// The applied annotation with this bare key, if any.
fn applied_key<'r>(out: &'r IngressReport, bare: &str) -> Option<&'r Applied> {
    out.applied.iter().find(|a| bare_key(&a.key) == Some(bare))
}

/// The full key an applied annotation was written under (the nginx one when not found).
fn written_key(out: &IngressReport, bare: &str) -> String {
    applied_key(out, bare).map_or_else(|| format!("{NGINX_PREFIX}{bare}"), |a| a.key.clone())
}

/// Why a Secret reference fails closed: it names another namespace's Secret.
fn foreign_secret(secret: &SecretRef, namespace: &str) -> Option<String> {
    secret.name_in(namespace).is_none().then(|| {
        format!(
            "Secret {}/{} is in another namespace: Sluice lets an Ingress use only Secrets of \
             its own namespace ({namespace})",
            secret.namespace.as_deref().unwrap_or_default(),
            secret.name
        )
    })
}

/// A snippet key: never executed. The parser translated it (no problem), ignored it or made
/// the Ingress not served; the report says which and what the snippet held.
fn snippet_finding(
    out: &mut IngressReport,
    key: &str,
    bare: &str,
    value: &str,
    found: &[&AnnotationProblem],
) {
    let context = match bare {
        "configuration-snippet" => Some(snippet::Context::Location),
        "server-snippet" => Some(snippet::Context::Server),
        _ => None,
    };
    let ignored = found.iter().all(|p| p.severity == Severity::Ignored);
    if found.is_empty() {
        // Translated whole, or nothing to translate (empty, or what Sluice does itself).
        let translation = context.and_then(|context| snippet::translate(value, context).ok());
        let reason = match translation {
            Some(t) if !t.headers.is_empty() => format!("translated: {}", t.what),
            Some(t) => format!("not executed, and nothing is lost: {}", t.what),
            None => "not executed, and nothing is lost: an empty snippet".to_owned(),
        };
        out.translated.push(Finding {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        });
    } else if let Some(context) = context.filter(|_| ignored) {
        // Headers outside the subset or tuning directives: served without them. Say which
        // security headers and tuning directives go (the parser's message already names the
        // annotations to use instead).
        let mut line = found
            .iter()
            .map(|p| p.message())
            .collect::<Vec<_>>()
            .join("; ");
        if let snippet::Assessment::Harmless {
            security_headers,
            tuning,
            ..
        } = snippet::assess(value, context)
        {
            if !security_headers.is_empty() {
                line.push_str(&format!(
                    "; responses lack the security headers {}",
                    security_headers.join(", ")
                ));
            }
            if !tuning.is_empty() {
                let dropped: Vec<String> = tuning
                    .iter()
                    .map(|t| format!("`{}`", t.directive))
                    .collect();
                line.push_str(&format!("; dropped: {}", dropped.join(", ")));
            }
        }
        out.ignored.push(Finding {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reasons(found).unwrap_or_default(),
        });
        out.differences.push(line);
    } else {
        problem_findings(out, key, bare, value, found);
    }
}

/// The parser's reasons for one key, joined.
fn reasons(found: &[&AnnotationProblem]) -> Option<String> {
    if found.is_empty() {
        return None;
    }
    let mut seen = Vec::new();
    for p in found {
        if !seen.contains(&p.reason) {
            seen.push(p.reason.clone());
        }
    }
    Some(seen.join("; "))
}

/// A key with parser problems (or, defensively, none): ignored or rejected by its worst.
fn problem_findings(
    out: &mut IngressReport,
    key: &str,
    bare: &str,
    value: &str,
    found: &[&AnnotationProblem],
) {
    let worst = found
        .iter()
        .map(|p| p.severity)
        .max()
        .unwrap_or(Severity::Ignored);
    let reason = reasons(found).unwrap_or_else(|| "not read by Sluice".into());
    let messages: Vec<String> = if found.is_empty() {
        vec![format!("{key}: {reason}")]
    } else {
        found.iter().map(|p| p.message()).collect()
    };
    match worst {
        Severity::Ignored => {
            out.ignored.push(Finding {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            });
            match weakens_security(bare, value) {
                Some(why) => out.not_served.push(format!("{key}: {why}")),
                None => out.differences.extend(messages),
            }
        }
        Severity::RejectPolicy | Severity::RejectIngress => {
            let ingress = worst == Severity::RejectIngress;
            out.rejected.push(Rejected {
                key: key.to_owned(),
                value: value.to_owned(),
                expected: found
                    .iter()
                    .map(|p| p.expected.clone())
                    .find(|e| !e.is_empty())
                    .unwrap_or_default(),
                reason,
                effect: if ingress {
                    RejectEffect::IngressNotServed
                } else {
                    RejectEffect::PolicyNotApplied
                },
            });
            if ingress {
                out.not_served.extend(messages);
            } else {
                out.differences.extend(messages);
            }
        }
    }
}

/// The controller ConfigMap's set-wide findings this Ingress inherits.
fn set_wide(
    out: &mut IngressReport,
    annotations: &BTreeMap<String, String>,
    rules: &[nginx_config::SetWideRule],
) {
    let mut differing = Vec::new();
    for rule in rules.iter().filter(|r| r.reach.reaches(annotations)) {
        match rule.effect {
            Effect::NotServed => out.not_served.push(format!(
                "set-wide: ingress-nginx ConfigMap {}: {}",
                rule.key, rule.reason
            )),
            Effect::Difference => {
                if !differing.contains(&rule.key) {
                    differing.push(rule.key.clone());
                }
            }
            Effect::None => {}
        }
    }
    if !differing.is_empty() {
        out.differences.push(format!(
            "set-wide: ingress-nginx ConfigMap settings not carried over as they were: {} (see \
             the ConfigMap section)",
            differing.join(", ")
        ));
    }
}

/// Paths on regex-mode hosts that Sluice's regex engine cannot compile, and rewrite targets
/// naming capture groups the path lacks.
fn regex_paths(
    out: &mut IngressReport,
    ingress: &Ingress,
    parsed: &ParsedAnnotations,
    class: &Option<String>,
    regex_hosts: &BTreeSet<(Option<String>, String)>,
) {
    for (host, path) in paths(ingress) {
        if !regex_hosts.contains(&(class.clone(), host.clone())) {
            continue;
        }
        let shown_host = if host.is_empty() { "*" } else { &host };
        match path_regex::compile(&path) {
            Err(error) => out.differences.push(format!(
                "host {shown_host}: {error}; in regex mode (use-regex or rewrite-target on the \
                 host) the path is not routed"
            )),
            Ok(regex) => {
                if let Some(target) = &parsed.policies.rewrite.target
                    && let Err(error) = path_regex::check_rewrite_groups(&path, &regex, target)
                {
                    out.differences.push(format!(
                        "host {shown_host}: {error} (ingress-nginx put nothing there)"
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
