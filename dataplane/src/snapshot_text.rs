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

/// TLS per host: the certificate's Secret (or the default one), passthrough backends.
fn tls_block(out: &mut String, tls: &Value) {
    let hosts: Vec<&Value> = ["hosts", "wildcard_hosts"]
        .iter()
        .flat_map(|key| tls[*key].as_array().into_iter().flatten())
        .collect();
    if hosts.is_empty() {
        return;
    }
    let _ = writeln!(out, "TLS");
    for h in hosts {
        if let Some(p) = h.get("passthrough").filter(|p| !p.is_null()) {
            let _ = writeln!(
                out,
                "  {:<30} passthrough -> {}   from {}/{}",
                s(&h["host"]),
                backend(&p["backend"]),
                s(&p["source"]["namespace"]),
                s(&p["source"]["name"])
            );
        }
        if let Some(t) = h.get("terminate").filter(|t| !t.is_null()) {
            let certificate = match t.get("certificate").filter(|c| !c.is_null()) {
                Some(c) => format!("Secret {}", s(&c["secret"])),
                None => "default certificate".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {:<30} {}   from {}/{}",
                s(&h["host"]),
                certificate,
                s(&t["source"]["namespace"]),
                s(&t["source"]["name"])
            );
        }
    }
    let default = tls
        .get("default_certificate")
        .filter(|c| !c.is_null())
        .map_or("generated at start (self-signed)".to_owned(), |c| {
            format!("Secret {}", s(&c["secret"]))
        });
    let _ = writeln!(out, "  (other names)                  {default}");
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
    tls_block(&mut out, &snapshot["tls"]);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{
        Backend, IngressRef, Passthrough, PortRef, ServiceRef, Snapshot, Termination, TlsHost,
    };

    #[test]
    fn tls_section() {
        let mut certificate = crate::proxy::tls::generate_certificate().expect("certificate");
        certificate.source = "apps/site-tls".into();
        let mut snapshot = Snapshot::default();
        snapshot.tls.exact.insert(
            "site.example".into(),
            TlsHost {
                host: "site.example".into(),
                terminate: Some(Termination {
                    certificate: Some(Arc::new(certificate)),
                    source: IngressRef::new("apps", "site"),
                    tls12_ciphers: None,
                    client_auth: None,
                }),
                passthrough: None,
            },
        );
        snapshot.tls.wildcard.insert(
            "pass.example".into(),
            TlsHost {
                host: "*.pass.example".into(),
                terminate: None,
                passthrough: Some(Passthrough {
                    backend: Arc::new(Backend::Service {
                        service: ServiceRef {
                            namespace: "apps".into(),
                            name: "vault".into(),
                            port: PortRef::Number(443),
                        },
                        endpoints: Arc::from(Vec::new()),
                    }),
                    source: IngressRef::new("apps", "vault"),
                }),
            },
        );
        let text = render(&serde_json::to_value(&snapshot).expect("json"));
        assert!(
            text.contains("site.example                   Secret apps/site-tls   from apps/site"),
            "{text}"
        );
        assert!(
            text.contains("*.pass.example                 passthrough -> apps/vault:443"),
            "{text}"
        );
        assert!(
            text.contains("(other names)                  generated at start"),
            "{text}"
        );
    }
}
