//! Renders the debug endpoint's snapshot JSON as a table for people: what
//! `cat /etc/nginx/nginx.conf` was for ingress-nginx users, without the template noise.

use std::fmt::Write as _;

use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn backend(v: &Value) -> String {
    match v.get("type").and_then(Value::as_str) {
        Some("service") => {
            let svc = &v["service"];
            let eps: Vec<String> = v["endpoints"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| {
                            let mut t = s(&e["addr"]);
                            if e["ready"] != Value::Bool(true) {
                                t.push_str(if e["terminating"] == Value::Bool(true) {
                                    " (terminating)"
                                } else {
                                    " (not ready)"
                                });
                            }
                            t
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{}/{}:{} -> [{}]",
                s(&svc["namespace"]),
                s(&svc["name"]),
                s(&svc["port"]),
                if eps.is_empty() {
                    "no endpoints".to_string()
                } else {
                    eps.join(", ")
                }
            )
        }
        Some("externalName") => format!(
            "{}/{} -> external {}:{}",
            s(&v["service"]["namespace"]),
            s(&v["service"]["name"]),
            s(&v["host"]),
            s(&v["port"])
        ),
        _ => v.to_string(),
    }
}

fn host_block(out: &mut String, label: &str, h: &Value) {
    let regex = if h["regex_mode"] == Value::Bool(true) {
        "  (regex mode)"
    } else {
        ""
    };
    let _ = writeln!(out, "{label}{regex}");
    for r in h["routes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<7} {:<30} {}   from {}/{}",
            s(&r["kind"]),
            s(&r["path"]),
            backend(&r["backend"]),
            s(&r["source"]["namespace"]),
            s(&r["source"]["name"])
        );
    }
    if let Some(d) = h.get("default_backend").filter(|d| !d.is_null()) {
        let _ = writeln!(
            out,
            "  default {:<30} {}   from {}/{}",
            "",
            backend(&d["backend"]),
            s(&d["source"]["namespace"]),
            s(&d["source"]["name"])
        );
    }
}

/// The table `sluice-dataplane snapshot` prints.
pub fn render(snapshot: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "snapshot generation {}, {} Ingresses",
        s(&snapshot["generation"]),
        snapshot["ingresses"].as_array().map_or(0, Vec::len)
    );
    for key in ["hosts", "wildcard_hosts"] {
        for h in snapshot[key].as_array().into_iter().flatten() {
            let label = if key == "hosts" {
                s(&h["host"])
            } else {
                format!("*.{}", s(&h["host"]))
            };
            host_block(&mut out, &label, h);
        }
    }
    if let Some(c) = snapshot.get("catch_all").filter(|c| !c.is_null()) {
        host_block(&mut out, "(any host)", c);
    }
    match snapshot.get("default_backend").filter(|d| !d.is_null()) {
        Some(d) => {
            let _ = writeln!(out, "unmatched requests -> {}", backend(d));
        }
        None => {
            let _ = writeln!(out, "unmatched requests -> built-in 404");
        }
    }
    out
}
