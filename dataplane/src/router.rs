//! Host and path matching over a [`Snapshot`].
//!
//! The rules (design.md, "Data plane"):
//!
//! * Host: normalised (lowercase, port and one trailing dot stripped). An exact host beats a
//!   one-label wildcard (`*.foo.com` matches `bar.foo.com`, not `baz.bar.foo.com`, not
//!   `foo.com`); with neither, the catch-all (rules without a host). The chosen host is final:
//!   a request that matches no path there does not fall through to the wildcard or catch-all,
//!   as with ingress-nginx's `server` blocks.
//! * Path, outside regex mode: `Exact` (case-sensitive) first; then the longest of the `Prefix`
//!   matches (element-wise; trailing slashes in the rule ignored; `/` matches everything) and
//!   the `ImplementationSpecific` matches (plain string prefix, `/api` matches `/apiv2`). The
//!   two are compared the way ingress-nginx's nginx locations compare: a Prefix rule `/foo` is
//!   the location `/foo/`, one character longer than its key, and wins a tie.
//! * Path, in regex mode (any Ingress on the host uses `use-regex` or `rewrite-target`): every
//!   path of every type is a case-insensitive regex anchored at the start, tried longest path
//!   string first (then reverse lexicographic), the first match wins, as ingress-nginx orders
//!   its `location ~*` blocks.
//! * No path matched: the host's default backend (an Ingress's own `defaultBackend`), else
//!   `None`, and the caller uses the set's default backend or the built-in 404.
//!
//! The path given to [`Snapshot::route`] is the request path without the query string, already
//! normalised by the caller (percent-decoding of unreserved characters, dot segments) the way it
//! will be forwarded. Matching allocates nothing unless the host has uppercase letters.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use regex::bytes::RegexBuilder;

use crate::model::{
    Backend, DefaultBackend, HostRoutes, IngressPolicy, IngressRef, PathIndex, PathKind, PathRegex,
    Route, Snapshot,
};

/// Upper bound on one compiled path regex (and on its lazy DFA cache): a user-written pattern
/// must not be able to make the fleet allocate without limit.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Upper bound on regex nesting depth, for the same reason.
const REGEX_NEST_LIMIT: u32 = 64;

/// What a request matched.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    /// The host entry that was selected (exact, wildcard or catch-all).
    pub host: &'a HostRoutes,
    pub target: Target<'a>,
}

/// The part of a host entry that answered.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A path rule.
    Route(&'a Route),
    /// No path matched; the host's default backend (an Ingress's `defaultBackend`).
    HostDefault(&'a DefaultBackend),
}

impl<'a> RouteMatch<'a> {
    pub fn backend(&self) -> &'a Arc<Backend> {
        match self.target {
            Target::Route(route) => &route.backend,
            Target::HostDefault(default) => &default.backend,
        }
    }

    /// The Ingress whose rule or defaultBackend matched (for metrics, logs and its policies).
    pub fn source(&self) -> &'a IngressRef {
        match self.target {
            Target::Route(route) => &route.source,
            Target::HostDefault(default) => &default.source,
        }
    }

    /// The policies of that Ingress.
    pub fn policy(&self) -> &'a Arc<IngressPolicy> {
        match self.target {
            Target::Route(route) => &route.policy,
            Target::HostDefault(default) => &default.policy,
        }
    }

    /// The matched path rule, if a path rule (not a default backend) answered.
    pub fn route(&self) -> Option<&'a Route> {
        match self.target {
            Target::Route(route) => Some(route),
            Target::HostDefault(_) => None,
        }
    }
}

/// Lowercases `host` and strips a port and one trailing dot. Borrows unless it must lowercase.
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows the closing bracket.
        match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        }
    } else {
        host.split_once(':').map_or(host, |(name, _port)| name)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

impl Snapshot {
    /// Routes a request by its `Host` (or `:authority`) and path. `None` means the caller uses
    /// [`Snapshot::default_backend`], else the built-in 404.
    pub fn route(&self, host: &str, path: &str) -> Option<RouteMatch<'_>> {
        self.select_host(host)?.route(path)
    }

    /// The host entry a request for `host` uses: exact, else one-label wildcard, else catch-all.
    pub fn select_host(&self, host: &str) -> Option<&HostRoutes> {
        let host = normalize_host(host);
        if !host.is_empty() {
            if let Some(routes) = self.exact_hosts.get(host.as_ref()) {
                return Some(routes);
            }
            // `*.foo.com` is stored under `foo.com`: drop exactly one label.
            if let Some((label, parent)) = host.split_once('.')
                && !label.is_empty()
                && let Some(routes) = self.wildcard_hosts.get(parent)
            {
                return Some(routes);
            }
        }
        self.catch_all.as_ref()
    }
}

/// One candidate route handed to [`HostRoutes::build`], in priority order (oldest Ingress
/// first, then the order of its rules and paths).
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub path: String,
    pub kind: PathKind,
    pub backend: Arc<Backend>,
    pub source: IngressRef,
    pub policy: Arc<IngressPolicy>,
    /// The caller's tag for this candidate, returned in a [`Rejection`] so it can say which
    /// field of which object was rejected.
    pub origin: usize,
}

/// A candidate that [`HostRoutes::build`] did not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// An earlier candidate (an older Ingress, or earlier in the same one) routes the same
    /// path with the same type.
    Shadowed {
        origin: usize,
        path: String,
        kind: PathKind,
        winner: IngressRef,
        winner_path: String,
    },
    /// The path is not a valid regex (regex mode only).
    InvalidRegex {
        origin: usize,
        path: String,
        error: String,
    },
}

/// Compiles a path the way regex mode uses it: case-insensitive, anchored at the start.
///
/// Byte-oriented and ASCII-only (`unicode(false)`), like nginx's PCRE without UTF mode: this
/// keeps case-insensitive automata small. The pattern is first compiled on its own so that an
/// unbalanced `)` cannot close the anchoring group early and leave an unanchored alternative.
pub fn compile_path_regex(path: &str) -> Result<PathRegex, regex::Error> {
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .case_insensitive(true)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
    };
    build(path)?;
    Ok(PathRegex(build(&format!("^(?:{path})"))?))
}

/// One line for an Event: the regex crate's syntax errors are multi-line diagrams whose last
/// `error:` line says what is wrong.
fn concise_regex_error(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(text)
            .to_owned(),
        other => other.to_string(),
    }
}

/// A Prefix rule's lookup key: trailing slashes dropped, so `/` is the empty key.
fn prefix_key(path: &str) -> &str {
    path.trim_end_matches('/')
}

impl HostRoutes {
    /// Builds a host entry and its lookup index from candidates in priority order.
    ///
    /// A candidate that repeats an earlier one's (type, path) is rejected: the earlier one is
    /// from an older Ingress (or earlier in the same Ingress). Outside regex mode, Prefix paths
    /// that differ only by trailing slashes are the same path. In regex mode a path that does
    /// not compile is rejected.
    pub fn build(
        host: impl Into<String>,
        regex_mode: bool,
        default_backend: Option<DefaultBackend>,
        specs: Vec<RouteSpec>,
    ) -> (HostRoutes, Vec<Rejection>) {
        let mut rejections = Vec::new();
        let mut routes: Vec<Route> = Vec::with_capacity(specs.len());
        let mut seen: HashMap<(PathKind, String), usize> = HashMap::with_capacity(specs.len());
        for spec in specs {
            let key = match spec.kind {
                PathKind::Prefix if !regex_mode => prefix_key(&spec.path).to_owned(),
                _ => spec.path.clone(),
            };
            match seen.entry((spec.kind, key)) {
                Entry::Occupied(winner) => {
                    let winner = &routes[*winner.get()];
                    rejections.push(Rejection::Shadowed {
                        origin: spec.origin,
                        path: spec.path,
                        kind: spec.kind,
                        winner: winner.source.clone(),
                        winner_path: winner.path.clone(),
                    });
                    continue;
                }
                Entry::Vacant(slot) => {
                    let regex = if regex_mode {
                        match compile_path_regex(&spec.path) {
                            Ok(regex) => Some(regex),
                            Err(error) => {
                                rejections.push(Rejection::InvalidRegex {
                                    origin: spec.origin,
                                    path: spec.path,
                                    error: concise_regex_error(&error),
                                });
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    slot.insert(routes.len());
                    routes.push(Route {
                        path: spec.path,
                        kind: spec.kind,
                        backend: spec.backend,
                        source: spec.source,
                        regex,
                        policy: spec.policy,
                        canary: None,
                    });
                }
            }
        }

        let index = if regex_mode {
            // ingress-nginx sorts locations by path descending, then (stably) by length
            // descending; nginx tries regex locations in that order. Same path string: Exact
            // before Prefix before ImplementationSpecific. Stable, so otherwise oldest first.
            routes.sort_by(|a, b| {
                b.path
                    .len()
                    .cmp(&a.path.len())
                    .then_with(|| b.path.cmp(&a.path))
                    .then(a.kind.cmp(&b.kind))
            });
            PathIndex::default()
        } else {
            routes.sort_by(|a, b| {
                let exact = |r: &Route| r.kind != PathKind::Exact;
                exact(a)
                    .cmp(&exact(b))
                    .then_with(|| match_len(b).cmp(&match_len(a)))
                    .then(a.kind.cmp(&b.kind))
                    .then_with(|| a.path.cmp(&b.path))
            });
            PathIndex::new(&routes)
        };
        let host_routes = HostRoutes {
            host: host.into(),
            regex_mode,
            default_backend,
            routes,
            index,
        };
        (host_routes, rejections)
    }

    /// Matches `path` on this host; see the module documentation for the rules.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let path = if path.is_empty() { "/" } else { path };
        let found = if self.regex_mode {
            self.routes.iter().position(|route| {
                route
                    .regex
                    .as_ref()
                    .is_some_and(|regex| regex.0.is_match(path.as_bytes()))
            })
        } else {
            self.index.lookup(path)
        };
        let target = match found {
            Some(i) => Target::Route(&self.routes[i]),
            None => Target::HostDefault(self.default_backend.as_ref()?),
        };
        Some(RouteMatch { host: self, target })
    }
}

/// The length a non-Exact rule is compared by outside regex mode (see the module docs).
fn match_len(route: &Route) -> usize {
    match route.kind {
        PathKind::Prefix => prefix_key(&route.path).len() + 1,
        _ => route.path.len(),
    }
}

impl PathIndex {
    fn new(routes: &[Route]) -> PathIndex {
        let mut index = PathIndex::default();
        for (i, route) in routes.iter().enumerate() {
            // `build` removed duplicates, so no insert here replaces another route.
            match route.kind {
                PathKind::Exact => index.exact.insert(route.path.clone(), i),
                PathKind::Prefix => index.prefix.insert(prefix_key(&route.path).to_owned(), i),
                PathKind::ImplementationSpecific => index.plain.insert(route.path.clone(), i),
            };
        }
        index.plain_lengths = index.plain.keys().map(String::len).collect();
        index.plain_lengths.sort_unstable_by(|a, b| b.cmp(a));
        index.plain_lengths.dedup();
        index
    }

    fn lookup(&self, path: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(path) {
            return Some(i);
        }
        match (self.longest_prefix(path), self.longest_plain(path)) {
            (Some((p, prefix_len)), Some((q, plain_len))) => {
                Some(if plain_len > prefix_len { q } else { p })
            }
            (Some((p, _)), None) => Some(p),
            (None, Some((q, _))) => Some(q),
            (None, None) => None,
        }
    }

    /// The longest element-wise Prefix match and its comparison length: one lookup per `/`
    /// boundary of the request path, longest first.
    fn longest_prefix(&self, path: &str) -> Option<(usize, usize)> {
        if self.prefix.is_empty() {
            return None;
        }
        let mut candidate = path;
        loop {
            let key = prefix_key(candidate);
            if let Some(&i) = self.prefix.get(key) {
                return Some((i, key.len() + 1));
            }
            if key.is_empty() {
                return None;
            }
            candidate = key.rfind('/').map_or("", |slash| &key[..slash]);
        }
    }

    /// The longest ImplementationSpecific string prefix and its length.
    fn longest_plain(&self, path: &str) -> Option<(usize, usize)> {
        self.plain_lengths.iter().find_map(|&len| {
            let head = path.get(..len)?;
            self.plain.get(head).map(|&i| (i, len))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IngressPolicy, PortRef, ServiceRef};

    /// A backend whose Service name identifies it in assertions.
    fn backend(name: &str) -> Arc<Backend> {
        Arc::new(Backend::Service {
            service: ServiceRef {
                namespace: "default".into(),
                name: name.into(),
                port: PortRef::Number(80),
            },
            endpoints: Arc::from(Vec::new()),
        })
    }

    fn spec(path: &str, kind: PathKind, service: &str, ingress: &str, origin: usize) -> RouteSpec {
        RouteSpec {
            path: path.into(),
            kind,
            backend: backend(service),
            source: IngressRef::new("default", ingress),
            policy: IngressPolicy::none(),
            origin,
        }
    }

    /// Builds one host from (path, kind, service) triples, all from one Ingress.
    fn host(regex_mode: bool, paths: &[(&str, PathKind, &str)]) -> HostRoutes {
        let specs = paths
            .iter()
            .enumerate()
            .map(|(i, (path, kind, svc))| spec(path, *kind, svc, "ing", i))
            .collect();
        let (routes, rejections) = HostRoutes::build("example.com", regex_mode, None, specs);
        assert_eq!(rejections, vec![], "unexpected rejections");
        routes
    }

    fn served_by(routes: &HostRoutes, path: &str) -> Option<String> {
        routes
            .route(path)
            .map(|m| m.backend().service().name.clone())
    }

    use PathKind::{Exact, ImplementationSpecific as Specific, Prefix};

    struct PathCase {
        name: &'static str,
        rules: &'static [(&'static str, PathKind, &'static str)],
        request: &'static str,
        want: Option<&'static str>,
    }

    /// The Ingress v1 path-matching examples (API reference table and the
    /// ingress-controller-conformance `path_rules.feature`), plus ImplementationSpecific.
    const PATH_CASES: &[PathCase] = &[
        PathCase {
            name: "prefix / matches everything",
            rules: &[("/", Prefix, "root")],
            request: "/anything/at/all",
            want: Some("root"),
        },
        PathCase {
            name: "prefix / matches /",
            rules: &[("/", Prefix, "root")],
            request: "/",
            want: Some("root"),
        },
        PathCase {
            name: "exact /foo matches /foo",
            rules: &[("/foo", Exact, "foo-exact")],
            request: "/foo",
            want: Some("foo-exact"),
        },
        PathCase {
            name: "exact /foo does not match /bar",
            rules: &[("/foo", Exact, "foo-exact")],
            request: "/bar",
            want: None,
        },
        PathCase {
            name: "exact /foo does not match /foo/",
            rules: &[("/foo", Exact, "foo-exact")],
            request: "/foo/",
            want: None,
        },
        PathCase {
            name: "exact /foo/ does not match /foo",
            rules: &[("/foo/", Exact, "foo-slash-exact")],
            request: "/foo",
            want: None,
        },
        PathCase {
            name: "exact is case sensitive",
            rules: &[("/foo", Exact, "foo-exact")],
            request: "/FOO",
            want: None,
        },
        PathCase {
            name: "prefix /foo matches /foo",
            rules: &[("/foo", Prefix, "foo-prefix")],
            request: "/foo",
            want: Some("foo-prefix"),
        },
        PathCase {
            name: "prefix /foo matches /foo/",
            rules: &[("/foo", Prefix, "foo-prefix")],
            request: "/foo/",
            want: Some("foo-prefix"),
        },
        PathCase {
            name: "prefix /foo/ matches /foo",
            rules: &[("/foo/", Prefix, "foo-slash-prefix")],
            request: "/foo",
            want: Some("foo-slash-prefix"),
        },
        PathCase {
            name: "prefix /foo/ matches /foo/",
            rules: &[("/foo/", Prefix, "foo-slash-prefix")],
            request: "/foo/",
            want: Some("foo-slash-prefix"),
        },
        PathCase {
            name: "prefix is case sensitive",
            rules: &[("/foo", Prefix, "foo-prefix")],
            request: "/FOO",
            want: None,
        },
        PathCase {
            name: "prefix /aaa/bb does not match /aaa/bbb",
            rules: &[("/aaa/bb", Prefix, "bb")],
            request: "/aaa/bbb",
            want: None,
        },
        PathCase {
            name: "prefix /aaa/bbb matches /aaa/bbb",
            rules: &[("/aaa/bbb", Prefix, "bbb")],
            request: "/aaa/bbb",
            want: Some("bbb"),
        },
        PathCase {
            name: "prefix /aaa/bbb/ matches /aaa/bbb (rule trailing slash ignored)",
            rules: &[("/aaa/bbb/", Prefix, "bbb-slash")],
            request: "/aaa/bbb",
            want: Some("bbb-slash"),
        },
        PathCase {
            name: "prefix /aaa/bbb matches /aaa/bbb/ (request trailing slash)",
            rules: &[("/aaa/bbb", Prefix, "bbb")],
            request: "/aaa/bbb/",
            want: Some("bbb"),
        },
        PathCase {
            name: "prefix /aaa/bbb matches subpath /aaa/bbb/ccc",
            rules: &[("/aaa/bbb", Prefix, "bbb")],
            request: "/aaa/bbb/ccc",
            want: Some("bbb"),
        },
        PathCase {
            name: "prefix /aaa/bbb does not match string prefix /aaa/bbbxyz",
            rules: &[("/aaa/bbb", Prefix, "bbb")],
            request: "/aaa/bbbxyz",
            want: None,
        },
        PathCase {
            name: "prefix /aaa does not match /aaaccc",
            rules: &[("/aaa", Prefix, "aaa")],
            request: "/aaaccc",
            want: None,
        },
        PathCase {
            name: "prefixes /, /aaa: /aaa/ccc matches /aaa",
            rules: &[("/", Prefix, "root"), ("/aaa", Prefix, "aaa")],
            request: "/aaa/ccc",
            want: Some("aaa"),
        },
        PathCase {
            name: "prefixes /, /aaa, /aaa/bbb: /aaa/bbb matches /aaa/bbb",
            rules: &[
                ("/", Prefix, "root"),
                ("/aaa", Prefix, "aaa"),
                ("/aaa/bbb", Prefix, "bbb"),
            ],
            request: "/aaa/bbb",
            want: Some("bbb"),
        },
        PathCase {
            name: "prefixes /, /aaa, /aaa/bbb: /ccc matches /",
            rules: &[
                ("/", Prefix, "root"),
                ("/aaa", Prefix, "aaa"),
                ("/aaa/bbb", Prefix, "bbb"),
            ],
            request: "/ccc",
            want: Some("root"),
        },
        PathCase {
            name: "prefixes /aaa, /aaa/bbb: /aaa/bbbxyz falls back to /aaa",
            rules: &[("/aaa", Prefix, "aaa"), ("/aaa/bbb", Prefix, "bbb")],
            request: "/aaa/bbbxyz",
            want: Some("aaa"),
        },
        PathCase {
            name: "prefix /aaa does not match /ccc",
            rules: &[("/aaa", Prefix, "aaa")],
            request: "/ccc",
            want: None,
        },
        PathCase {
            name: "mixed: Exact /foo beats Prefix /foo (prefix listed first)",
            rules: &[("/foo", Prefix, "foo-prefix"), ("/foo", Exact, "foo-exact")],
            request: "/foo",
            want: Some("foo-exact"),
        },
        PathCase {
            name: "mixed: Prefix /foo still serves /foo/ when Exact /foo exists",
            rules: &[("/foo", Prefix, "foo-prefix"), ("/foo", Exact, "foo-exact")],
            request: "/foo/",
            want: Some("foo-prefix"),
        },
        PathCase {
            name: "mixed: Exact beats a longer Prefix",
            rules: &[
                ("/foo/bar", Prefix, "long-prefix"),
                ("/foo/bar", Exact, "exact"),
            ],
            request: "/foo/bar",
            want: Some("exact"),
        },
        PathCase {
            name: "empty request path is /",
            rules: &[("/", Exact, "root-exact")],
            request: "",
            want: Some("root-exact"),
        },
        PathCase {
            name: "implementation specific is a string prefix: /api matches /apiv2",
            rules: &[("/api", Specific, "api")],
            request: "/apiv2",
            want: Some("api"),
        },
        PathCase {
            name: "implementation specific is case sensitive outside regex mode",
            rules: &[("/api", Specific, "api")],
            request: "/API",
            want: None,
        },
        PathCase {
            name: "implementation specific: longest string prefix wins",
            rules: &[
                ("/a", Specific, "a"),
                ("/api", Specific, "api"),
                ("/", Specific, "root"),
            ],
            request: "/apix",
            want: Some("api"),
        },
        PathCase {
            name: "implementation specific is not a regex outside regex mode",
            rules: &[("/a.c", Specific, "dot")],
            request: "/abc",
            want: None,
        },
        PathCase {
            name: "a longer implementation specific beats a shorter prefix",
            rules: &[("/", Prefix, "root"), ("/api", Specific, "api")],
            request: "/apiv2",
            want: Some("api"),
        },
        PathCase {
            name: "a longer prefix beats a shorter implementation specific",
            rules: &[("/api/v1", Prefix, "v1"), ("/api", Specific, "api")],
            request: "/api/v1/x",
            want: Some("v1"),
        },
        PathCase {
            name: "prefix /api beats implementation specific /api on /api/x (nginx /api/)",
            rules: &[("/api", Specific, "plain"), ("/api", Prefix, "prefix")],
            request: "/api/x",
            want: Some("prefix"),
        },
        PathCase {
            name: "implementation specific /api still serves /apix next to prefix /api",
            rules: &[("/api", Specific, "plain"), ("/api", Prefix, "prefix")],
            request: "/apix",
            want: Some("plain"),
        },
        PathCase {
            name: "prefix /api wins the tie with implementation specific /api/ on /api/x",
            rules: &[("/api/", Specific, "plain"), ("/api", Prefix, "prefix")],
            request: "/api/x",
            want: Some("prefix"),
        },
        PathCase {
            name: "implementation specific /api/x beats prefix /api on /api/xy (longer)",
            rules: &[("/api/x", Specific, "plain"), ("/api", Prefix, "prefix")],
            request: "/api/xy",
            want: Some("plain"),
        },
        PathCase {
            name: "multi-byte request path does not split a character",
            rules: &[("/a", Specific, "a"), ("/", Prefix, "root")],
            request: "/\u{e9}t\u{e9}",
            want: Some("root"),
        },
    ];

    #[test]
    fn path_matching_table() {
        for case in PATH_CASES {
            let routes = host(false, case.rules);
            assert_eq!(
                served_by(&routes, case.request).as_deref(),
                case.want,
                "case {:?}: request {:?}",
                case.name,
                case.request
            );
        }
    }

    const REGEX_CASES: &[PathCase] = &[
        PathCase {
            name: "rewrite-style capture path matches its base",
            rules: &[("/api(/|$)(.*)", Specific, "api")],
            request: "/api",
            want: Some("api"),
        },
        PathCase {
            name: "rewrite-style capture path matches a subpath",
            rules: &[("/api(/|$)(.*)", Specific, "api")],
            request: "/api/v1/users",
            want: Some("api"),
        },
        PathCase {
            name: "rewrite-style capture path does not match /apiv2",
            rules: &[("/api(/|$)(.*)", Specific, "api")],
            request: "/apiv2",
            want: None,
        },
        PathCase {
            name: "regex mode is case insensitive",
            rules: &[("/api(/|$)(.*)", Specific, "api")],
            request: "/API/x",
            want: Some("api"),
        },
        PathCase {
            name: "regex mode is anchored at the start",
            rules: &[("/api", Specific, "api")],
            request: "/v1/api",
            want: None,
        },
        PathCase {
            name: "every type is a regex in regex mode: Exact /foo matches /foobar",
            rules: &[("/foo", Exact, "foo")],
            request: "/foobar",
            want: Some("foo"),
        },
        PathCase {
            name: "every type is a regex in regex mode: Prefix /foo matches /FOObar",
            rules: &[("/foo", Prefix, "foo")],
            request: "/FOObar",
            want: Some("foo"),
        },
        PathCase {
            name: "longest path string is tried first",
            rules: &[("/.*", Specific, "any"), ("/user/[0-9]+", Specific, "user")],
            request: "/user/42",
            want: Some("user"),
        },
        PathCase {
            name: "longest path string first even when the shorter is more specific",
            rules: &[
                ("/user/42", Specific, "exact-ish"),
                ("/user/[0-9]+", Specific, "re"),
            ],
            request: "/user/42",
            want: Some("re"),
        },
        PathCase {
            name: "equal length: reverse lexicographic order (ingress-nginx sort)",
            rules: &[("/a.c", Specific, "dot"), ("/abc", Specific, "abc")],
            request: "/abc",
            want: Some("abc"),
        },
        PathCase {
            name: "an alternation stays anchored",
            rules: &[("/a|/b", Specific, "ab")],
            request: "/x/b",
            want: None,
        },
        PathCase {
            name: "an alternation matches either branch at the start",
            rules: &[("/a|/b", Specific, "ab")],
            request: "/b/x",
            want: Some("ab"),
        },
    ];

    #[test]
    fn regex_mode_table() {
        for case in REGEX_CASES {
            let routes = host(true, case.rules);
            assert_eq!(
                served_by(&routes, case.request).as_deref(),
                case.want,
                "case {:?}: request {:?}",
                case.name,
                case.request
            );
        }
    }

    #[test]
    fn regex_mode_keeps_capture_numbering() {
        let routes = host(true, &[("/api(/|$)(.*)", Specific, "api")]);
        let route = routes
            .route("/api/v1")
            .and_then(|m| m.route())
            .expect("route");
        let regex = route.regex.as_ref().expect("regex mode route has a regex");
        let caps = regex.regex().captures(b"/api/v1").expect("captures");
        assert_eq!(caps.get(2).map(|m| m.as_bytes()), Some(&b"v1"[..]));
    }

    #[test]
    fn regex_rejections() {
        let cases: &[(&str, &str)] = &[
            ("/a)|(/b", "unbalanced parenthesis cannot escape the anchor"),
            ("/(?<=x)y", "look-behind is not supported"),
            ("/(a", "unclosed group"),
            ("/x{100000}{1000}", "over the size limit"),
        ];
        for (path, why) in cases {
            let specs = vec![
                spec(path, Specific, "bad", "ing", 7),
                spec("/ok", Specific, "ok", "ing", 8),
            ];
            let (routes, rejections) = HostRoutes::build("h", true, None, specs);
            assert!(
                matches!(
                    rejections.as_slice(),
                    [Rejection::InvalidRegex { origin: 7, .. }]
                ),
                "{why}: {path:?} gave {rejections:?}"
            );
            assert_eq!(served_by(&routes, "/ok").as_deref(), Some("ok"), "{why}");
        }
    }

    #[test]
    fn duplicates_keep_the_first_candidate() {
        let specs = vec![
            spec("/a", Prefix, "old", "old-ingress", 0),
            spec("/a", Prefix, "new", "new-ingress", 1),
            // Same path, other type: not a duplicate.
            spec("/a", Exact, "exact", "new-ingress", 2),
            // Differs only by a trailing slash: the same Prefix.
            spec("/a/", Prefix, "slash", "new-ingress", 3),
        ];
        let (routes, rejections) = HostRoutes::build("h", false, None, specs);
        assert_eq!(
            rejections,
            vec![
                Rejection::Shadowed {
                    origin: 1,
                    path: "/a".into(),
                    kind: Prefix,
                    winner: IngressRef::new("default", "old-ingress"),
                    winner_path: "/a".into(),
                },
                Rejection::Shadowed {
                    origin: 3,
                    path: "/a/".into(),
                    kind: Prefix,
                    winner: IngressRef::new("default", "old-ingress"),
                    winner_path: "/a".into(),
                },
            ]
        );
        assert_eq!(served_by(&routes, "/a/x").as_deref(), Some("old"));
        assert_eq!(served_by(&routes, "/a").as_deref(), Some("exact"));
        let m = routes.route("/a/x").expect("match");
        assert_eq!(m.source(), &IngressRef::new("default", "old-ingress"));
    }

    #[test]
    fn trailing_slash_variants_are_distinct_regexes_in_regex_mode() {
        let specs = vec![
            spec("/a", Prefix, "a", "ing", 0),
            spec("/a/", Prefix, "a-slash", "ing", 1),
        ];
        let (routes, rejections) = HostRoutes::build("h", true, None, specs);
        assert!(rejections.is_empty());
        assert_eq!(served_by(&routes, "/a/x").as_deref(), Some("a-slash"));
        assert_eq!(served_by(&routes, "/ab").as_deref(), Some("a"));
    }

    #[test]
    fn host_default_backend_when_no_path_matches() {
        let default = DefaultBackend {
            backend: backend("fallback"),
            source: IngressRef::new("default", "ing"),
            policy: IngressPolicy::none(),
        };
        let specs = vec![spec("/api", Prefix, "api", "ing", 0)];
        let (routes, _) = HostRoutes::build("h", false, Some(default), specs);
        assert_eq!(served_by(&routes, "/api/x").as_deref(), Some("api"));
        let m = routes.route("/other").expect("default backend");
        assert!(m.route().is_none());
        assert!(matches!(m.target, Target::HostDefault(_)));
        assert_eq!(m.backend().service().name, "fallback");
    }

    #[test]
    fn normalize_host_table() {
        let cases = [
            ("foo.com", "foo.com"),
            ("FOO.com", "foo.com"),
            ("foo.com:8080", "foo.com"),
            ("Foo.Com.:443", "foo.com"),
            ("foo.com.", "foo.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("10.0.0.1:80", "10.0.0.1"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_host(input), want, "{input:?}");
        }
        assert!(matches!(normalize_host("foo.com:80"), Cow::Borrowed(_)));
    }

    fn snapshot_with_hosts() -> Snapshot {
        let build = |name: &str, svc: &str| {
            HostRoutes::build(name, false, None, vec![spec("/", Prefix, svc, "ing", 0)]).0
        };
        let mut snapshot = Snapshot::default();
        snapshot
            .exact_hosts
            .insert("foo.com".into(), build("foo.com", "exact-foo"));
        snapshot
            .exact_hosts
            .insert("bar.foo.com".into(), build("bar.foo.com", "exact-bar"));
        snapshot
            .wildcard_hosts
            .insert("foo.com".into(), build("*.foo.com", "wildcard-foo"));
        snapshot.catch_all = Some(build("", "catch-all"));
        snapshot
    }

    #[test]
    fn host_selection_table() {
        let snapshot = snapshot_with_hosts();
        let cases = [
            ("foo.com", Some("exact-foo")),
            ("FOO.COM:80", Some("exact-foo")),
            ("foo.com.", Some("exact-foo")),
            ("bar.foo.com", Some("exact-bar")),
            ("baz.foo.com", Some("wildcard-foo")),
            ("Baz.Foo.Com:8080", Some("wildcard-foo")),
            ("baz.bar.foo.com", Some("catch-all")),
            ("other.org", Some("catch-all")),
            ("", Some("catch-all")),
            ("10.1.2.3", Some("catch-all")),
        ];
        for (host, want) in cases {
            let got = snapshot
                .route(host, "/x")
                .map(|m| m.backend().service().name.clone());
            assert_eq!(got.as_deref(), want, "host {host:?}");
        }
    }

    #[test]
    fn wildcard_needs_exactly_one_label() {
        let mut snapshot = snapshot_with_hosts();
        snapshot.catch_all = None;
        assert!(snapshot.route("baz.bar.foo.com", "/").is_none());
        assert!(
            snapshot.route(".foo.com", "/").is_none(),
            "the wildcard label is not empty"
        );
        snapshot.exact_hosts.clear();
        assert!(
            snapshot.route("foo.com", "/").is_none(),
            "*.foo.com must not match foo.com"
        );
    }

    #[test]
    fn selected_host_is_final() {
        // foo.com exists but has no matching path: no fall-through to the catch-all.
        let mut snapshot = Snapshot::default();
        let (foo, _) = HostRoutes::build(
            "foo.com",
            false,
            None,
            vec![spec("/api", Prefix, "api", "ing", 0)],
        );
        snapshot.exact_hosts.insert("foo.com".into(), foo);
        snapshot.catch_all =
            Some(HostRoutes::build("", false, None, vec![spec("/", Prefix, "all", "ing", 0)]).0);
        assert!(snapshot.route("foo.com", "/web").is_none());
        assert_eq!(
            snapshot
                .route("foo.com", "/api")
                .map(|m| m.backend().service().name.clone())
                .as_deref(),
            Some("api")
        );
    }

    #[test]
    fn display_order_exact_then_longest() {
        let routes = host(
            false,
            &[
                ("/", Prefix, "a"),
                ("/b", Exact, "b"),
                ("/ccc", Specific, "c"),
                ("/dd", Prefix, "d"),
            ],
        );
        let order: Vec<&str> = routes.routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(order, ["/b", "/dd", "/ccc", "/"]);
    }
}
