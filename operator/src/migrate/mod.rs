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
//! set-wide ([`nginx_config`]), and regex paths the data plane cannot compile.
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
use serde::Serialize;
use sluice_crds::ProxySettings;
use sluice_crds::annotations::grammar::BOOL_TRUE;
use sluice_crds::annotations::table::{Drops, SNIPPETS};
use sluice_crds::annotations::{
    AnnotationProblem, NGINX_PREFIX, ParsedAnnotations, SLUICE_PREFIX, Severity, effective,
    parse_annotations, path_regex, snippet, table,
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
    let regex_hosts = regex_hosts(&parsed);

    let mut reports: Vec<IngressReport> = parsed
        .iter()
        .map(|(ingress, annotations, parsed)| {
            ingress_report(ingress, annotations, parsed, rules, &regex_hosts)
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

/// The key without one of the two prefixes Sluice reads.
fn bare_key(key: &str) -> Option<&str> {
    key.strip_prefix(SLUICE_PREFIX)
        .or_else(|| key.strip_prefix(NGINX_PREFIX))
}

/// Unsupported keys the parser ignores whose absence opens something up: not served.
fn weakens_security(bare: &str, value: &str) -> Option<&'static str> {
    let on = BOOL_TRUE.contains(&value) || value.eq_ignore_ascii_case("on");
    match bare {
        "proxy-ssl-verify" if on => Some(
            "the backend's certificate would not be verified: upstream certificate verification \
             is not supported by Sluice yet",
        ),
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
    ingress: &Ingress,
    annotations: &BTreeMap<String, String>,
    parsed: &ParsedAnnotations,
    rules: &[nginx_config::SetWideRule],
    regex_hosts: &BTreeSet<(Option<String>, String)>,
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
    regex_paths(&mut out, ingress, parsed, &class, regex_hosts);

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
