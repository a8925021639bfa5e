//! Ingress annotations: one table of supported keys, strict grammars, typed policies.
//!
//! Sluice reads `sluice.dev/<key>` and, for migration from ingress-nginx,
//! `nginx.ingress.kubernetes.io/<key>` with the same meaning; `sluice.dev/` wins when both are
//! set (the other is then not read at all). [`parse_annotations`] turns an Ingress's
//! annotations into [`ParsedAnnotations`]: typed [`Policies`] and the [`AnnotationProblem`]s
//! the data plane publishes as Events. It is a pure function; nothing here knows about
//! requests, Secrets or the cluster.
//!
//! - [`table::TABLE`] is the one list of supported keys: grammar, default, description, what an
//!   invalid value does, policy group. The reference `docs/annotations.md`
//!   ([`reference::markdown`]) and the ValidatingAdmissionPolicy
//!   ([`admission::policy_yaml`]) are generated from it, and tests fail when the committed
//!   copies differ.
//! - Values are never pasted into anything: URLs and paths with nginx variables become
//!   [`Template`]s of literal parts and typed [`Var`]s, expanded per request with escaping
//!   for their place ([`template`]).
//! - Snippets (`configuration-snippet`, ...) are never executed. A server or configuration
//!   snippet that only sets, adds, hides or clears headers is translated whole into
//!   [`HeaderPolicies`]; one that holds anything else is not applied, and when it may hold an
//!   access rule the Ingress is not served ([`snippet`]). Unknown keys under either prefix are
//!   reported once, with suggestions.
//! - Paths in regex mode are compiled with size limits ([`path_regex`]), which also checks
//!   that a `rewrite-target` names only capture groups its path has.
//!
//! What the data plane does with a problem follows its [`Severity`]: [`Severity::RejectIngress`]
//! skips the whole Ingress ([`ParsedAnnotations::rejects_ingress`]); the other two only inform,
//! the policies already leave out what was invalid.

pub mod admission;
pub mod ciphers;
pub mod grammar;
pub mod path_regex;
pub mod policies;
pub mod reference;
pub mod snippet;
pub mod table;
pub mod template;

#[cfg(test)]
mod corpus;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use ciphers::CipherSelection;
pub use grammar::{Grammar, MAX_VALUE_BYTES};
pub use policies::*;
pub use table::{AnnotationSpec, PolicyGroup, TABLE};
pub use template::{ExpandError, RequestVars, StaticVars, Template, TemplateKind, Var};

use grammar::Invalid;
use policies::{Slot, Slots};
use table::{SNIPPETS, UNSUPPORTED, Unsupported};

/// Prefix of the annotations Sluice defines.
pub const SLUICE_PREFIX: &str = "sluice.dev/";
/// Prefix of the ingress-nginx annotations read for migration.
pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// At most this many characters of a value are shown in a message (then `...`).
pub const SHOWN_VALUE_CHARS: usize = 100;

/// What a problem does to the Ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Nothing is rejected: the key has no effect (unknown, snippet, unsupported, or a value
    /// partly honoured). The rest applies.
    Ignored,
    /// The key's policy is not applied (see [`table::Drops`]); the Ingress is served.
    RejectPolicy,
    /// The Ingress is not served: serving it without the policy would be unsafe (auth, access
    /// lists fail closed).
    RejectIngress,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Ignored => "ignored",
            Severity::RejectPolicy => "policy not applied",
            Severity::RejectIngress => "Ingress not served",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ProblemKind {
    /// The value failed its grammar: the message shows it.
    InvalidValue,
    /// Anything else: the reason says it all.
    Other,
}

/// One thing wrong with an Ingress's annotations. [`AnnotationProblem::message`] is the Event
/// message (and, for the syntax errors it checks, exactly what admission answers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnnotationProblem {
    /// The full annotation key, e.g. `nginx.ingress.kubernetes.io/proxy-body-size`.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// The form the value must have (empty when the key itself is the problem).
    pub expected: String,
    /// Why, in words.
    pub reason: String,
    /// What it does to the Ingress.
    pub severity: Severity,
    kind: ProblemKind,
}

impl AnnotationProblem {
    /// The Event message: names the key, the value (when it is printable and short enough to
    /// show) and the expected form. One line.
    pub fn message(&self) -> String {
        // The API server only admits printable keys; a key from anywhere else must not carry a
        // control character into a message either.
        let key = grammar::replace_control(&self.key);
        match (self.kind, shown_value(&self.value)) {
            (ProblemKind::InvalidValue, Some(shown)) => {
                format!("{key}: invalid value {shown}: {}", self.reason)
            }
            (ProblemKind::InvalidValue, None) => {
                format!("{key}: invalid value: {}", self.reason)
            }
            (ProblemKind::Other, _) => format!("{key}: {}", self.reason),
        }
    }

    /// The field path an Event names, as the data plane's other problems do.
    pub fn field_path(&self) -> String {
        format!("metadata.annotations['{}']", self.key)
    }

    /// A value that failed its grammar.
    pub(crate) fn invalid(key: &str, value: &str, spec: &AnnotationSpec, why: Invalid) -> Self {
        let expected = spec.grammar.expected();
        let reason = match why {
            Invalid::TooLong => format!("longer than {MAX_VALUE_BYTES} bytes; expected {expected}"),
            Invalid::Control => {
                format!("contains control or invisible formatting characters; expected {expected}")
            }
            Invalid::Syntax => syntax_reason(&spec.grammar, &expected, value),
            Invalid::Specific(why) => format!("{why}; expected {expected}"),
        };
        AnnotationProblem {
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
            reason,
            severity: spec.severity,
            kind: ProblemKind::InvalidValue,
        }
    }

    /// A problem about a valid key in combination with others, or about the key itself.
    pub(crate) fn combination(
        key: &str,
        value: &str,
        bare: &str,
        reason: &str,
        severity: Severity,
    ) -> Self {
        AnnotationProblem {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: table::spec(bare)
                .map(|s| s.grammar.expected())
                .unwrap_or_default(),
            reason: reason.to_owned(),
            severity,
            kind: ProblemKind::Other,
        }
    }
}

impl fmt::Display for AnnotationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// The reason for a value failing its syntax: `expected <form>`, plus a hint for a value people
/// commonly write (`affinity: sticky`). Admission builds the same text in CEL.
pub(crate) fn syntax_reason(grammar: &Grammar, expected: &str, value: &str) -> String {
    match grammar.hint(value) {
        Some(hint) => format!("expected {expected}; did you mean {}?", quote(hint)),
        None => format!("expected {expected}"),
    }
}

/// How a value appears in a message: quoted like CEL's `strings.quote` (Go's escapes for `\`
/// and `"`), cut to [`SHOWN_VALUE_CHARS`] characters. `None` when it is too long to show or
/// holds control characters, which a message must not carry (admission does the same).
pub(crate) fn shown_value(value: &str) -> Option<String> {
    if value.len() > MAX_VALUE_BYTES || grammar::has_control(value) {
        return None;
    }
    if value.chars().count() > SHOWN_VALUE_CHARS {
        let cut: String = value.chars().take(SHOWN_VALUE_CHARS).collect();
        Some(quote(&format!("{cut}...")))
    } else {
        Some(quote(value))
    }
}

/// Go's `strconv.Quote` subset that CEL's `strings.quote` implements: `\` and `"` escaped,
/// the C escapes for the controls that have one (never reached for shown values), everything
/// else as is.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What [`parse_annotations`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedAnnotations {
    /// The policies the valid keys set.
    pub policies: Policies,
    /// Everything that was invalid, unknown or ignored, sorted by key; each reported once.
    pub problems: Vec<AnnotationProblem>,
}

impl ParsedAnnotations {
    /// True when the Ingress must not be served at all (a problem with
    /// [`Severity::RejectIngress`]).
    pub fn rejects_ingress(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.severity == Severity::RejectIngress)
    }
}

/// The value of a supported key and the full key it was read from: `sluice.dev/` first.
pub fn effective<'a>(
    annotations: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<(String, &'a str)> {
    // Scans rather than formatting both full keys for a lookup: this runs for every table key
    // of every annotated Ingress, and Ingresses carry few annotations.
    let find = |prefix: &str| {
        annotations.iter().find_map(|(full, value)| {
            (full.strip_prefix(prefix) == Some(key)).then(|| (full.clone(), value.as_str()))
        })
    };
    find(SLUICE_PREFIX).or_else(|| find(NGINX_PREFIX))
}

/// Parses an Ingress's annotations. Keys under other prefixes are not looked at.
pub fn parse_annotations(annotations: &BTreeMap<String, String>) -> ParsedAnnotations {
    // Most Ingresses carry none of our keys: at 10k Ingresses per translation, skipping the
    // table walk for them matters.
    if !annotations
        .keys()
        .any(|k| k.starts_with(SLUICE_PREFIX) || k.starts_with(NGINX_PREFIX))
    {
        return ParsedAnnotations::default();
    }
    let mut problems = Vec::new();
    let mut slots = Slots::new();
    for spec in TABLE {
        let Some((key, value)) = effective(annotations, spec.key) else {
            continue;
        };
        let slot = match spec.grammar.parse(value) {
            Ok(parsed) => Slot::Valid(key, value.to_owned(), parsed),
            Err(why) => {
                problems.push(AnnotationProblem::invalid(&key, value, spec, why));
                Slot::Invalid
            }
        };
        slots.insert(spec.key, slot);
    }
    problems.extend(without_effect(&slots));
    problems.extend(unsupported_keys(annotations));
    let (headers, snippet_problems) = snippet::snippet_policies(annotations);
    problems.extend(snippet_problems);
    let mut policies = policies::build(&slots, &mut problems);
    policies.headers = headers;
    // Stable: a key's problems keep their order.
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    ParsedAnnotations { policies, problems }
}

/// Keys that are valid but have no effect, because the key they refine is not set (a
/// session-cookie-name without affinity, a cors-allow-origin without enable-cors).
fn without_effect(slots: &Slots) -> Vec<AnnotationProblem> {
    let mut problems = Vec::new();
    for (bare, slot) in slots {
        let Slot::Valid(key, raw, _) = slot else {
            continue;
        };
        let Some(spec) = table::spec(bare) else {
            continue;
        };
        if spec.requires.is_empty() {
            continue;
        }
        let enabled = spec
            .requires
            .iter()
            .any(|required| match slots.get(required) {
                // An invalid enabler was reported already; do not add noise.
                Some(Slot::Invalid) => true,
                Some(Slot::Valid(_, _, value)) => match value {
                    grammar::Value::Bool(b) => *b,
                    grammar::Value::Int(n) => *n > 0,
                    _ => true,
                },
                None => false,
            });
        if enabled {
            continue;
        }
        let conditions: Vec<String> = spec
            .requires
            .iter()
            .map(|required| match table::spec(required).map(|s| s.grammar) {
                Some(Grammar::Bool) => format!("{required} is true"),
                Some(Grammar::Int { .. }) => format!("{required} is above 0"),
                _ => format!("{required} is set"),
            })
            .collect();
        problems.push(AnnotationProblem::combination(
            key,
            raw,
            bare,
            &format!("has no effect unless {}; ignored", conditions.join(" or ")),
            Severity::Ignored,
        ));
    }
    problems
}

/// Known-but-unsupported and unknown keys under the two prefixes, once per key. Snippets are
/// [`snippet::snippet_policies`]'s.
fn unsupported_keys(annotations: &BTreeMap<String, String>) -> Vec<AnnotationProblem> {
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for full in annotations.keys() {
        let Some(bare) = full
            .strip_prefix(SLUICE_PREFIX)
            .or_else(|| full.strip_prefix(NGINX_PREFIX))
        else {
            continue;
        };
        if table::spec(bare).is_some() || SNIPPETS.contains(&bare) || !seen.insert(bare) {
            continue;
        }
        // Report the key that would win, like every other problem.
        let (key, value) = effective(annotations, bare).unwrap_or((full.clone(), ""));
        let prefix = &key[..key.len() - bare.len()];
        let unsupported = UNSUPPORTED.iter().find(|(k, _)| *k == bare);
        let (reason, severity) = if let Some((_, kind)) = unsupported {
            match kind {
                Unsupported::Ignored => (
                    "not supported by Sluice yet; ignored".to_owned(),
                    Severity::Ignored,
                ),
            }
        } else {
            let suggestions: Vec<String> = table::suggestions(bare)
                .into_iter()
                .map(|s| format!("{prefix}{s}"))
                .collect();
            let reason = if suggestions.is_empty() {
                "unknown annotation; ignored".to_owned()
            } else {
                format!(
                    "unknown annotation; ignored. Did you mean {}?",
                    suggestions.join(" or ")
                )
            };
            (reason, Severity::Ignored)
        };
        problems.push(AnnotationProblem {
            key,
            value: value.to_owned(),
            expected: String::new(),
            reason,
            severity,
            kind: ProblemKind::Other,
        });
    }
    problems
}

#[cfg(test)]
mod tests;
