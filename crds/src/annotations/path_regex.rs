//! Ingress paths as regexes (regex mode: `use-regex` or `rewrite-target` on the host), compiled
//! with bounds, and the check that a `rewrite-target` only names capture groups the path has.
//!
//! A path is user text compiled into an automaton on every fleet pod, so its size is bounded:
//! [`REGEX_SIZE_LIMIT`] on the compiled program and its lazy DFA cache, [`REGEX_NEST_LIMIT`] on
//! nesting. The regex crate matches in linear time, so no pattern can make matching slow
//! (`(a+)+$` is as fast as `a+`); the bounds keep compiling and memory in check. These are the
//! limits the data plane's router uses (`dataplane/src/router.rs`).

use regex::bytes::{Regex, RegexBuilder};

use super::template::{Template, Var};

/// Upper bound on one compiled path regex and on its lazy DFA cache.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Upper bound on nesting depth.
pub const REGEX_NEST_LIMIT: u32 = 64;

/// Why a path is not a usable regex. One line, for an Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRegexError {
    /// Not valid regex syntax, or over a limit.
    #[error("path {path:?} is not a valid regex: {reason}")]
    Invalid {
        /// The path as written.
        path: String,
        /// What the regex crate said, last line only.
        reason: String,
    },
    /// rewrite-target names a group the path does not have.
    #[error("rewrite-target uses ${group} but path {path:?} has only {groups} capture group(s)")]
    MissingGroup {
        /// The path as written.
        path: String,
        /// The highest group rewrite-target uses.
        group: u8,
        /// How many the path has.
        groups: usize,
    },
}

/// Compiles `path` the way regex mode matches it: case-insensitive, anchored at the start,
/// ASCII only (like nginx's PCRE without UTF mode, which keeps case-insensitive automata
/// small). The pattern is compiled on its own first, so that an unbalanced `)` cannot close the
/// anchoring group and leave an unanchored alternative.
pub fn compile(path: &str) -> Result<Regex, PathRegexError> {
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .case_insensitive(true)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|error| PathRegexError::Invalid {
                path: path.to_owned(),
                reason: concise(&error),
            })
    };
    build(path)?;
    build(&format!("^(?:{path})"))
}

/// Checks that every `$1`..`$9` of `target` exists in `regex` (compiled from `path`).
/// nginx would expand a missing group to nothing; saying so is kinder.
pub fn check_rewrite_groups(
    path: &str,
    regex: &Regex,
    target: &Template,
) -> Result<(), PathRegexError> {
    // captures_len counts the whole match as group 0 and our anchoring group (?:) not at all.
    let groups = regex.captures_len() - 1;
    let highest = target
        .vars()
        .filter_map(|v| match v {
            Var::Capture(n) => Some(*n),
            _ => None,
        })
        .max();
    match highest {
        Some(group) if usize::from(group) > groups => Err(PathRegexError::MissingGroup {
            path: path.to_owned(),
            group,
            groups,
        }),
        _ => Ok(()),
    }
}

/// The regex crate's syntax errors are multi-line diagrams; the last `error:` line says what is
/// wrong, and an Event takes one line.
fn concise(error: &regex::Error) -> String {
    let text = match error {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(text)
            .to_owned(),
        other => other.to_string(),
    };
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::annotations::template::TemplateKind;

    #[test]
    fn regex_mode_matching() {
        let cases = [
            ("/api(/|$)(.*)", "/api/v1/items", true),
            ("/api(/|$)(.*)", "/API", true),
            ("/api(/|$)(.*)", "/x/api", false),
            ("/foo", "/foobar", true),
            // An unbalanced ')' cannot leave an unanchored alternative.
            ("/a)|(.*", "/anything", false),
        ];
        for (path, request, want) in cases {
            match compile(path) {
                Ok(re) => assert_eq!(re.is_match(request.as_bytes()), want, "{path} {request}"),
                Err(_) => assert!(!want, "{path} should compile"),
            }
        }
    }

    #[test]
    fn hostile_paths_fail_or_stay_bounded() {
        let hostile = [
            "/(a+)+$",
            "/(.*a){20}",
            "/((((((((((x))))))))))",
            "/a{1000}{1000}",
            "/[\\x{0}-\\x{10FFFF}]{5000}",
            "/\\",
            "/(",
            "/a\nb",
            "/\r\nSet-Cookie: x",
            "/(?i:ssl_engine)",
            &"(".repeat(200),
            &format!("/{}", "(a)".repeat(2000)),
        ];
        let input = format!("/{}!", "a".repeat(10_000));
        for path in hostile {
            match compile(path) {
                Ok(re) => {
                    let start = Instant::now();
                    let _ = re.is_match(input.as_bytes());
                    assert!(
                        start.elapsed() < Duration::from_secs(1),
                        "{path:?} took {:?}",
                        start.elapsed()
                    );
                }
                Err(error) => {
                    let message = error.to_string();
                    assert!(!message.contains(['\n', '\r']), "{message:?}");
                }
            }
        }
        assert!(matches!(
            compile("/a{1000}{1000}"),
            Err(PathRegexError::Invalid { .. })
        ));
    }

    #[test]
    fn rewrite_groups_must_exist() {
        let path = "/api(/|$)(.*)";
        let re = compile(path).unwrap();
        let ok = Template::parse(TemplateKind::Rewrite, "/$2").unwrap();
        assert_eq!(check_rewrite_groups(path, &re, &ok), Ok(()));
        let missing = Template::parse(TemplateKind::Rewrite, "/$1/$3").unwrap();
        assert_eq!(
            check_rewrite_groups(path, &re, &missing),
            Err(PathRegexError::MissingGroup {
                path: path.into(),
                group: 3,
                groups: 2
            })
        );
        let plain = Template::parse(TemplateKind::Rewrite, "/").unwrap();
        let re = compile("/static").unwrap();
        assert_eq!(check_rewrite_groups("/static", &re, &plain), Ok(()));
    }
}
