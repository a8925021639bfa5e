//! Text for people and JSON for scripts (the layout is documented in [`super`]).

use std::fmt::Write as _;

use super::{Effect, IngressReport, Report, Verdict};

/// Longest value shown on one line of the text report; JSON always has the whole value.
const SHOWN_VALUE_CHARS: usize = 80;

/// Pretty JSON with a final newline.
pub fn json(report: &Report) -> String {
    let mut out = serde_json::to_string_pretty(report)
        .expect("the report holds only strings, numbers, booleans and lists of them");
    out.push('\n');
    out
}

/// The text report: one block per Ingress, then the controller ConfigMap, TCP/UDP services, the
/// suggested spec, and a summary line starting with `Summary:`.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    if report.ingresses.is_empty() {
        out.push_str("No Ingresses found.\n\n");
    }
    for ingress in &report.ingresses {
        ingress_text(&mut out, ingress);
        out.push('\n');
    }

    if let Some(cm) = &report.ingress_nginx_config_map {
        let _ = writeln!(out, "ingress-nginx ConfigMap {}/{}", cm.namespace, cm.name);
        if cm.mapped.is_empty() && cm.not_carried_over.is_empty() {
            out.push_str("  (empty)\n");
        }
        if !cm.mapped.is_empty() {
            out.push_str("  carried over:\n");
            for m in &cm.mapped {
                let _ = writeln!(out, "    {} = {} -> {}", m.key, shown(&m.value), m.field);
                if let Some(note) = &m.note {
                    let _ = writeln!(out, "      {}", clean(note));
                }
            }
        }
        for (effect, title) in [
            (Effect::NotServed, "not carried over, not served"),
            (Effect::Difference, "not carried over, served differently"),
            (
                Effect::None,
                "not carried over, no effect on what is served",
            ),
        ] {
            let findings: Vec<_> = cm
                .not_carried_over
                .iter()
                .filter(|f| f.effect == effect)
                .collect();
            if findings.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {title}:");
            for f in findings {
                let _ = writeln!(out, "    {} = {}", f.key, shown(&f.value));
                let _ = writeln!(out, "      {}", clean(&f.reason));
            }
        }
        out.push('\n');
    } else {
        out.push_str(
            "No ingress-nginx ConfigMap given (--ingress-nginx-configmap NAMESPACE/NAME): \
             set-wide settings were not compared.\n\n",
        );
    }

    if !report.streams.is_empty() {
        out.push_str("TCP/UDP services (ingress-nginx services ConfigMaps)\n");
        for s in &report.streams {
            let _ = writeln!(
                out,
                "  {} {} -> {} (from {}): {}",
                s.protocol,
                clean(&s.port),
                clean(&s.target),
                s.source,
                s.verdict.text()
            );
            let _ = writeln!(out, "    {}", clean(&s.reason));
        }
        out.push('\n');
    }

    if !report.suggested_spec.is_empty() {
        out.push_str("Suggested IngressControllerSet spec:\n");
        let yaml = serde_yaml::to_string(&report.suggested_spec)
            .expect("the suggested spec holds only strings, numbers, booleans and lists");
        out.push_str("  spec:\n");
        for line in yaml.lines() {
            let _ = writeln!(out, "    {line}");
        }
        for note in &report.suggested_spec_notes {
            let _ = writeln!(out, "  note: {}", clean(note));
        }
        out.push('\n');
    }

    let s = &report.summary;
    let _ = write!(
        out,
        "Summary: {} {}: {} served identically, {} served with differences, {} not served",
        s.ingresses,
        plural(s.ingresses, "Ingress", "Ingresses"),
        s.served_identically,
        s.served_with_differences,
        s.not_served,
    );
    if s.streams_not_served > 0 {
        let _ = write!(
            out,
            "; {} TCP/UDP {} not served",
            s.streams_not_served,
            plural(s.streams_not_served, "service", "services")
        );
    }
    out.push_str(".\n");
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn ingress_text(out: &mut String, r: &IngressReport) {
    let class = match &r.class {
        Some(class) => format!("class {class}"),
        None => "no class".to_owned(),
    };
    let _ = writeln!(out, "{}/{} ({class})", r.namespace, r.name);
    let _ = writeln!(out, "  verdict: {}", r.verdict.text());
    if r.verdict == Verdict::NotServed {
        for line in &r.not_served {
            let _ = writeln!(out, "    - {}", clean(line));
        }
        if !r.differences.is_empty() {
            out.push_str("  also served differently:\n");
        }
    }
    for line in &r.differences {
        let _ = writeln!(out, "    - {}", clean(line));
    }
    if !r.requires.is_empty() {
        out.push_str("  needs:\n");
        for line in &r.requires {
            let _ = writeln!(out, "    - {}", clean(line));
        }
    }
    if !r.applied.is_empty() {
        let _ = writeln!(out, "  applied ({}):", r.applied.len());
        for a in &r.applied {
            let _ = writeln!(out, "    {} = {}", a.key, shown(&a.value));
        }
    }
    for (title, findings) in [("translated", &r.translated), ("ignored", &r.ignored)] {
        if findings.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title} ({}):", findings.len());
        for f in findings {
            let _ = writeln!(out, "    {} = {}", f.key, shown(&f.value));
            let _ = writeln!(out, "      {}", clean(&f.reason));
        }
    }
    if !r.rejected.is_empty() {
        let _ = writeln!(out, "  rejected ({}):", r.rejected.len());
        for f in &r.rejected {
            let effect = match f.effect {
                super::RejectEffect::PolicyNotApplied => "policy not applied",
                super::RejectEffect::IngressNotServed => "Ingress not served",
            };
            let _ = writeln!(out, "    {} = {} ({effect})", f.key, shown(&f.value));
            let _ = writeln!(out, "      {}", clean(&f.reason));
        }
    }
}

/// Free text that may carry bits of cluster data (reasons quote directives and values):
/// control characters escaped, so a line stays one line and cannot steer the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A value on one line: quoted, control characters escaped (a snippet's line breaks become
/// `\n`, and nothing from the cluster can move the terminal's cursor), cut when long.
fn shown(value: &str) -> String {
    let escaped: String = value.trim_end().escape_debug().collect();
    if escaped.chars().count() > SHOWN_VALUE_CHARS {
        let cut: String = escaped.chars().take(SHOWN_VALUE_CHARS).collect();
        format!("\"{cut}...\"")
    } else {
        format!("\"{escaped}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_one_line_and_inert() {
        assert_eq!(shown("a\nb\n"), r#""a\nb""#);
        assert_eq!(shown("\u{1b}[2J"), r#""\u{1b}[2J""#);
        let long = "x".repeat(200);
        assert_eq!(shown(&long), format!("\"{}...\"", "x".repeat(80)));
        assert_eq!(clean("a\u{1b}b\nc"), r"a\u{1b}b\nc");
    }
}
