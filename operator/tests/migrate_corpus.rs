//! The migration report on a corpus of realistic Ingresses (`tests/migrate-corpus/`), written
//! the way popular charts and guides render them, each with its expected verdict and findings
//! checked in beside it (`<name>.expected.json`). Any difference fails the test.
//!
//! An expected file lists the verdict, the full annotation keys in each of the four lists
//! (applied, translated, ignored, rejected; each compared exactly, in order), and for
//! `notServed`, `differences` and `requires` one fragment per line the report must give, in
//! order (the same number of lines, each containing its fragment): the wording may improve,
//! what is said may not change unnoticed.
//!
//! `ingress-nginx/` holds a controller ConfigMap and TCP/UDP services ConfigMaps with their
//! own expectations (`expected.json`).
//!
//! On failure the actual report of each failing Ingress is printed, ready to compare.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use serde::Deserialize;
use sluice_operator::migrate::{IngressReport, Report, render, report, report_with_streams};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrate-corpus")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expected {
    verdict: String,
    #[serde(default)]
    applied: Vec<String>,
    #[serde(default)]
    translated: Vec<String>,
    #[serde(default)]
    ignored: Vec<String>,
    #[serde(default)]
    rejected: Vec<String>,
    #[serde(default)]
    not_served: Vec<String>,
    #[serde(default)]
    differences: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The corpus Ingresses by file stem, in file order.
fn corpus() -> Vec<(String, Ingress)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, read_yaml(path))
        })
        .collect()
}

fn qualified(ingress: &Ingress) -> String {
    format!(
        "{}/{}",
        ingress.metadata.namespace.as_deref().unwrap_or_default(),
        ingress.metadata.name.as_deref().unwrap_or_default()
    )
}

fn find<'a>(report: &'a Report, ingress: &Ingress) -> &'a IngressReport {
    let name = qualified(ingress);
    report
        .ingresses
        .iter()
        .find(|r| format!("{}/{}", r.namespace, r.name) == name)
        .unwrap_or_else(|| panic!("{name} is not in the report"))
}

/// Every way `actual` differs from `expected`, one line each.
fn compare(expected: &Expected, actual: &IngressReport) -> Vec<String> {
    let mut diffs = Vec::new();
    let verdict = serde_json::to_value(actual.verdict).unwrap();
    if verdict != expected.verdict.as_str() {
        diffs.push(format!(
            "verdict: expected {}, got {verdict}",
            expected.verdict
        ));
    }
    let lists: [(&str, &Vec<String>, Vec<&str>); 4] = [
        (
            "applied",
            &expected.applied,
            actual.applied.iter().map(|a| a.key.as_str()).collect(),
        ),
        (
            "translated",
            &expected.translated,
            actual.translated.iter().map(|a| a.key.as_str()).collect(),
        ),
        (
            "ignored",
            &expected.ignored,
            actual.ignored.iter().map(|a| a.key.as_str()).collect(),
        ),
        (
            "rejected",
            &expected.rejected,
            actual.rejected.iter().map(|a| a.key.as_str()).collect(),
        ),
    ];
    for (name, want, got) in lists {
        if *want != got {
            diffs.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
    }
    for (name, fragments, lines) in [
        ("notServed", &expected.not_served, &actual.not_served),
        ("differences", &expected.differences, &actual.differences),
        ("requires", &expected.requires, &actual.requires),
    ] {
        let matches = fragments.len() == lines.len()
            && fragments.iter().zip(lines).all(|(f, l)| l.contains(f));
        if !matches {
            diffs.push(format!(
                "{name}: expected lines containing {fragments:#?}, got {lines:#?}"
            ));
        }
    }
    diffs
}

#[test]
fn corpus_verdicts_match_the_checked_in_expectations() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 12,
        "the corpus has {} Ingresses; the issue asks for at least 12",
        corpus.len()
    );
    let ingresses: Vec<Ingress> = corpus.iter().map(|(_, i)| i.clone()).collect();
    let report = report(&ingresses, None);
    assert_eq!(report.ingresses.len(), corpus.len());

    let mut failures = Vec::new();
    for (stem, ingress) in &corpus {
        let expected_path = corpus_dir().join(format!("{stem}.expected.json"));
        let actual = find(&report, ingress);
        if !expected_path.exists() {
            failures.push(format!(
                "{stem}: no {stem}.expected.json; the report says:\n{}",
                serde_json::to_string_pretty(actual).unwrap()
            ));
            continue;
        }
        let expected: Expected = read_json(&expected_path);
        let diffs = compare(&expected, actual);
        if !diffs.is_empty() {
            failures.push(format!(
                "{stem}:\n  {}\nthe report says:\n{}",
                diffs.join("\n  "),
                serde_json::to_string_pretty(actual).unwrap()
            ));
        }
    }
    // Every expectation belongs to a corpus file (a renamed file must not leave one behind).
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected.json")
            && !corpus.iter().any(|(s, _)| s == stem)
        {
            failures.push(format!("{name} has no {stem}.yaml"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn corpus_covers_every_verdict_and_list() {
    let ingresses: Vec<Ingress> = corpus().into_iter().map(|(_, i)| i).collect();
    let report = report(&ingresses, None);
    let s = &report.summary;
    assert!(s.served_identically > 0 && s.served_with_differences > 0 && s.not_served > 0);
    for (name, any) in [
        (
            "translated",
            report.ingresses.iter().any(|i| !i.translated.is_empty()),
        ),
        (
            "ignored",
            report.ingresses.iter().any(|i| !i.ignored.is_empty()),
        ),
        (
            "rejected",
            report.ingresses.iter().any(|i| !i.rejected.is_empty()),
        ),
    ] {
        assert!(any, "no corpus Ingress has a {name} annotation");
    }
    // The text report names every Ingress and ends with the summary.
    let text = render::text(&report);
    for i in &report.ingresses {
        assert!(text.contains(&format!("{}/{} (", i.namespace, i.name)));
    }
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "Summary: {} Ingresses: {} served identically, {} served with differences, {} not served.",
            s.ingresses, s.served_identically, s.served_with_differences, s.not_served
        )
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExpectedConfigMaps {
    /// ingress-nginx key -> spec field.
    mapped: BTreeMap<String, String>,
    /// ingress-nginx key -> effect.
    not_carried_over: BTreeMap<String, String>,
    suggested_spec: serde_json::Value,
    suggested_spec_notes: Vec<String>,
    /// "TCP 22" -> target.
    streams: BTreeMap<String, String>,
    /// Corpus file stem -> verdict with the ConfigMap, for the Ingresses it changes.
    verdicts: BTreeMap<String, String>,
}

#[test]
fn controller_and_services_config_maps() {
    let dir = corpus_dir().join("ingress-nginx");
    let controller: ConfigMap = read_yaml(&dir.join("controller-configmap.yaml"));
    let tcp: ConfigMap = read_yaml(&dir.join("tcp-services.yaml"));
    let udp: ConfigMap = read_yaml(&dir.join("udp-services.yaml"));
    let expected: ExpectedConfigMaps = read_json(&dir.join("expected.json"));

    let corpus = corpus();
    let ingresses: Vec<Ingress> = corpus.iter().map(|(_, i)| i.clone()).collect();
    let without = report(&ingresses, None);
    let with = report_with_streams(&ingresses, Some(&controller), Some(&tcp), Some(&udp));

    let section = with.ingress_nginx_config_map.as_ref().expect("the section");
    let mapped: BTreeMap<String, String> = section
        .mapped
        .iter()
        .map(|m| (m.key.clone(), m.field.clone()))
        .collect();
    assert_eq!(mapped, expected.mapped);
    let not_carried: BTreeMap<String, String> = section
        .not_carried_over
        .iter()
        .map(|f| {
            let effect = serde_json::to_value(f.effect).unwrap();
            (f.key.clone(), effect.as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(not_carried, expected.not_carried_over);
    assert_eq!(
        serde_json::to_value(&with.suggested_spec).unwrap(),
        expected.suggested_spec
    );
    assert_eq!(
        with.suggested_spec_notes.len(),
        expected.suggested_spec_notes.len()
    );
    for (line, fragment) in with
        .suggested_spec_notes
        .iter()
        .zip(&expected.suggested_spec_notes)
    {
        assert!(line.contains(fragment), "{line:?} lacks {fragment:?}");
    }
    let streams: BTreeMap<String, String> = with
        .streams
        .iter()
        .map(|s| (format!("{} {}", s.protocol, s.port), s.target.clone()))
        .collect();
    assert_eq!(streams, expected.streams);
    assert_eq!(with.summary.streams_not_served, expected.streams.len());

    // The ConfigMap changes exactly the verdicts listed; the others stay as without it.
    for (stem, ingress) in &corpus {
        let before = serde_json::to_value(find(&without, ingress).verdict).unwrap();
        let after = serde_json::to_value(find(&with, ingress).verdict).unwrap();
        let want = expected
            .verdicts
            .get(stem)
            .map(|v| serde_json::Value::from(v.as_str()))
            .unwrap_or(before);
        assert_eq!(after, want, "{stem}");
    }

    // The suggested spec is what the operator accepts.
    let proxy: sluice_crds::ProxySettings =
        serde_json::from_value(expected.suggested_spec["proxy"].clone()).unwrap();
    sluice_crds::dataplane_config::DataplaneConfig::from_proxy(&proxy).expect("a valid spec.proxy");

    let text = render::text(&with);
    assert!(
        text.contains("Suggested IngressControllerSet spec:\n  spec:\n    proxy:\n"),
        "{text}"
    );
    assert!(
        text.contains("TCP 22 -> gitlab/gitlab-gitlab-shell:22"),
        "{text}"
    );
    assert!(text.trim_end().ends_with(&format!(
        "; {} TCP/UDP services not served.",
        expected.streams.len()
    )));
}
