//! A small, conservative reading of ingress-nginx snippets (raw nginx configuration) for the
//! migration report.
//!
//! Sluice never executes snippets. What the report must tell a person is whether dropping one
//! changes *who gets in*: a snippet that only sets headers is a difference, a snippet holding
//! `deny`, `return 403`, `auth_basic`, an `if` or a `location` block is an access rule that would
//! silently disappear. The scan recognises a small set of header directives and, for anything
//! else, answers "security-relevant" with the first directive it could not vouch for. It does
//! not try to understand nginx: when in doubt it says unsafe, so a wrong answer errs towards a
//! person looking at the snippet, never towards exposing what it protects.

use std::fmt::Write as _;

/// Where a snippet is pasted in ingress-nginx's nginx.conf: it decides which definitions are
/// harmless on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// `configuration-snippet` (and the ConfigMap's `location-snippet`): inside each location.
    Location,
    /// `server-snippet`: inside the server block of each host.
    Server,
    /// `auth-snippet`: inside the location of the external-auth subrequest.
    Auth,
    /// The ConfigMap's `http-snippet`: the http block, around every server.
    Http,
}

/// What dropping a snippet means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Nothing is lost: Sluice already does what the snippet asks (the WebSocket upgrade pair,
    /// HTTP/1.1 to the backend), it only defines something (an http-level `map`), or it is
    /// empty. `what` says which.
    Native {
        /// One clause, e.g. "the WebSocket upgrade pair, which Sluice handles itself".
        what: String,
    },
    /// Only headers (and the upstream TLS server name): traffic is served, without them.
    HeaderOnly {
        /// One line naming the headers, e.g. "sets response headers X-Frame-Options".
        what: String,
        /// Security response headers (X-Frame-Options, Content-Security-Policy, ...) that
        /// responses will lack; worth saying even though no access rule is lost.
        security_headers: Vec<String>,
    },
    /// Anything else: potentially an access rule; the reason names the first directive the
    /// scan could not vouch for.
    Unsafe {
        /// One line, e.g. "`location ~* \"^/admin\"` block with `deny all`".
        reason: String,
    },
}

/// Assesses one snippet pasted at `context`.
pub fn assess(text: &str, context: Context) -> Assessment {
    let directives = match parse(text) {
        Ok(directives) => directives,
        Err(why) => {
            return Assessment::Unsafe {
                reason: format!("it could not be read as nginx configuration ({why})"),
            };
        }
    };
    let mut native = Vec::new();
    let mut headers = Headers::default();
    for directive in &directives {
        match classify(directive, context) {
            Class::Native(what) => {
                if !native.contains(&what) {
                    native.push(what);
                }
            }
            Class::Header(header) => headers.add(header),
            Class::Unsafe(reason) => return Assessment::Unsafe { reason },
        }
    }
    if headers.is_empty() {
        return Assessment::Native {
            what: if native.is_empty() {
                "an empty snippet".to_owned()
            } else {
                native.join("; ")
            },
        };
    }
    Assessment::HeaderOnly {
        what: headers.describe(),
        security_headers: headers.security(),
    }
}

/// One nginx directive: its name, arguments (quotes removed) and block, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Directive>>,
}

impl Directive {
    /// How the directive reads in a message: name and arguments, shortened.
    fn shown(&self) -> String {
        let mut text = self.name.clone();
        for arg in &self.args {
            text.push(' ');
            if arg.is_empty() || arg.contains([' ', ';', '{', '}']) {
                let _ = write!(text, "{arg:?}");
            } else {
                text.push_str(arg);
            }
        }
        shorten(&text, 60)
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}...")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
    /// The raw body of a `*_by_lua_block`, skipped as a whole (it is Lua, not nginx).
    Raw,
}

/// nginx's tokenizer, simplified: words, quoted strings ("..." and '...' with backslash
/// escapes), `;`, `{`, `}`, `#` comments, and `${var}` inside words.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ';' => {
                tokens.push(Token::Semicolon);
                i += 1;
            }
            '{' => {
                let lua =
                    matches!(tokens.last(), Some(Token::Word(w)) if w.ends_with("_by_lua_block"));
                if lua {
                    i = skip_lua_block(&chars, i)?;
                    tokens.push(Token::Raw);
                } else {
                    tokens.push(Token::Open);
                    i += 1;
                }
            }
            '}' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut word = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a quote is not closed".to_owned()),
                        Some('\\') => {
                            if let Some(next) = chars.get(i + 1) {
                                word.push(*next);
                            }
                            i += 2;
                        }
                        Some(q) if *q == quote => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            word.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Word(word));
            }
            _ => {
                let mut word = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c.is_whitespace() || matches!(c, ';' | '{' | '}') {
                        break;
                    }
                    if c == '$' && chars.get(i + 1) == Some(&'{') {
                        // ${var}: the braces belong to the variable, not to a block.
                        while i < chars.len() && chars[i] != '}' {
                            word.push(chars[i]);
                            i += 1;
                        }
                    }
                    if i < chars.len() {
                        word.push(chars[i]);
                        i += 1;
                    }
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

/// Skips a Lua block starting at its `{`: balanced braces outside Lua strings and comments.
fn skip_lua_block(chars: &[char], open: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            q @ ('"' | '\'') => {
                i += 1;
                while i < chars.len() && chars[i] != q {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err("a Lua block is not closed".to_owned())
}

fn parse(text: &str) -> Result<Vec<Directive>, String> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let directives = parse_block(&tokens, &mut pos, 0)?;
    if pos < tokens.len() {
        return Err("a '}' has no matching '{'".to_owned());
    }
    Ok(directives)
}

/// Deep nesting is not something header snippets have; the bound keeps recursion small.
const MAX_DEPTH: usize = 16;

fn parse_block(tokens: &[Token], pos: &mut usize, depth: usize) -> Result<Vec<Directive>, String> {
    if depth > MAX_DEPTH {
        return Err("blocks are nested too deeply".to_owned());
    }
    let mut directives = Vec::new();
    let mut words: Vec<String> = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        match token {
            Token::Word(w) => words.push(w.clone()),
            Token::Semicolon => {
                if words.is_empty() {
                    // A stray ';' is an empty statement, as in nginx.
                    continue;
                }
                directives.push(directive(std::mem::take(&mut words), None));
            }
            Token::Open | Token::Raw => {
                if words.is_empty() {
                    return Err("a block has no directive name".to_owned());
                }
                let block = if *token == Token::Open {
                    parse_block(tokens, pos, depth + 1)?
                } else {
                    Vec::new()
                };
                directives.push(directive(std::mem::take(&mut words), Some(block)));
            }
            Token::Close => {
                if depth == 0 {
                    // Let the caller report the stray '}'.
                    *pos -= 1;
                    break;
                }
                if !words.is_empty() {
                    return Err(format!("`{}` does not end with ';'", words.join(" ")));
                }
                return Ok(directives);
            }
        }
    }
    if depth > 0 {
        return Err("a '{' is not closed".to_owned());
    }
    if !words.is_empty() {
        return Err(format!(
            "`{}` does not end with ';'",
            shorten(&words.join(" "), 40)
        ));
    }
    Ok(directives)
}

fn directive(mut words: Vec<String>, block: Option<Vec<Directive>>) -> Directive {
    let name = words.remove(0);
    Directive {
        name,
        args: words,
        block,
    }
}

/// What one directive is.
enum Class {
    Native(String),
    Header(Header),
    Unsafe(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Sent to the client.
    Response,
    /// Sent to the backend (or the auth service).
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Set,
    Clear,
}

struct Header {
    direction: Direction,
    action: Action,
    names: Vec<String>,
    /// The upstream TLS server name (`proxy_ssl_name`), not a header but in the same
    /// translatable subset.
    tls_name: bool,
}

#[derive(Default)]
struct Headers {
    response_set: Vec<String>,
    response_clear: Vec<String>,
    request_set: Vec<String>,
    request_clear: Vec<String>,
    tls_name: bool,
}

impl Headers {
    fn add(&mut self, header: Header) {
        if header.tls_name {
            self.tls_name = true;
            return;
        }
        let list = match (header.direction, header.action) {
            (Direction::Response, Action::Set) => &mut self.response_set,
            (Direction::Response, Action::Clear) => &mut self.response_clear,
            (Direction::Request, Action::Set) => &mut self.request_set,
            (Direction::Request, Action::Clear) => &mut self.request_clear,
        };
        for name in header.names {
            if !list.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                list.push(name);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.response_set.is_empty()
            && self.response_clear.is_empty()
            && self.request_set.is_empty()
            && self.request_clear.is_empty()
            && !self.tls_name
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut part = |verb: &str, names: &[String]| {
            if !names.is_empty() {
                parts.push(format!("{verb} {}", names.join(", ")));
            }
        };
        part("sets response headers", &self.response_set);
        part("removes response headers", &self.response_clear);
        part("sets request headers", &self.request_set);
        part("removes request headers", &self.request_clear);
        if self.tls_name {
            parts.push("sets the upstream TLS server name".to_owned());
        }
        parts.join("; ")
    }

    fn security(&self) -> Vec<String> {
        self.response_set
            .iter()
            .filter(|name| SECURITY_RESPONSE_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
            .cloned()
            .collect()
    }
}

/// Response headers browsers enforce security with: their absence weakens a page even though
/// nobody gets in who did not before.
const SECURITY_RESPONSE_HEADERS: &[&str] = &[
    "content-security-policy",
    "content-security-policy-report-only",
    "strict-transport-security",
    "x-frame-options",
    "x-content-type-options",
    "x-xss-protection",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "cross-origin-resource-policy",
];

/// Parts of request header names backends commonly trust for identity. Setting or clearing
/// such a header in a snippet is usually what stops a client from claiming to be someone:
/// without the snippet, a client could send the header itself.
const IDENTITY_HINTS: &[&str] = &[
    "auth",
    "user",
    "email",
    "group",
    "token",
    "identity",
    "principal",
    "role",
    "jwt",
    "cookie",
    "session",
    "remote",
    "secret",
    "passw",
    "api-key",
    "apikey",
    "tenant",
    "impersonat",
    "client-cert",
    "ssl-client",
];

fn identity_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    IDENTITY_HINTS.iter().any(|hint| lower.contains(hint))
}

/// Directives that decide who is answered, with what the message should call them.
fn access_rule(name: &str) -> Option<&'static str> {
    Some(match name {
        "deny" | "allow" => "restricts which client addresses are served",
        "return" => "answers requests itself",
        "auth_basic" | "auth_basic_user_file" | "auth_request" | "auth_jwt" | "auth_digest" => {
            "requires authentication"
        }
        "satisfy" => "combines access rules",
        "auth_request_set" => "takes values from the external-auth answer",
        "rewrite" => "rewrites or refuses requests",
        "limit_except" => "restricts methods",
        "limit_req" | "limit_conn" => "limits clients",
        "ssl_verify_client" | "ssl_client_certificate" | "ssl_trusted_certificate" => {
            "checks client certificates"
        }
        "valid_referers" => "checks the Referer",
        "internal" => "hides the location from clients",
        "error_page" => "changes error answers",
        "proxy_pass" | "grpc_pass" | "fastcgi_pass" | "uwsgi_pass" => "sends requests elsewhere",
        "include" => "includes other configuration",
        "set" => "sets variables other rules may test",
        _ if name.contains("_by_lua") => "runs Lua code",
        _ => return None,
    })
}

fn classify(d: &Directive, context: Context) -> Class {
    if let Some(block) = &d.block {
        return classify_block(d, block, context);
    }
    let name = d.name.as_str();
    let args = &d.args;
    match name {
        "more_set_headers" => header(
            Direction::Response,
            Action::Set,
            header_names(skip_options(args, &["-s", "-t"]), true),
        ),
        "more_clear_headers" => header(
            Direction::Response,
            Action::Clear,
            header_names(skip_options(args, &["-s", "-t"]), false),
        ),
        "add_header" | "add_trailer" if args.len() >= 2 => header(
            Direction::Response,
            Action::Set,
            Some(vec![args[0].clone()]),
        ),
        "proxy_hide_header" if args.len() == 1 => header(
            Direction::Response,
            Action::Clear,
            Some(vec![args[0].clone()]),
        ),
        "proxy_set_header" | "grpc_set_header" if args.len() == 2 => {
            let (header_name, value) = (&args[0], &args[1]);
            if websocket_pair(header_name, value) {
                return Class::Native(
                    "the WebSocket upgrade pair, which Sluice handles itself".to_owned(),
                );
            }
            let action = if value.is_empty() {
                Action::Clear
            } else {
                Action::Set
            };
            request_header(d, action, vec![header_name.clone()])
        }
        "more_set_input_headers" => match header_names(skip_options(args, &["-t"]), true) {
            Some(names) => request_header(d, Action::Set, names),
            None => unreadable(d),
        },
        "more_clear_input_headers" => match header_names(skip_options(args, &["-t"]), false) {
            Some(names) => request_header(d, Action::Clear, names),
            None => unreadable(d),
        },
        "proxy_http_version" if args.len() == 1 && args[0] == "1.1" => {
            Class::Native("HTTP/1.1 to the backend, which Sluice uses itself".to_owned())
        }
        "proxy_ssl_name" if args.len() == 1 => Class::Header(Header {
            direction: Direction::Request,
            action: Action::Set,
            names: Vec::new(),
            tls_name: true,
        }),
        "proxy_ssl_server_name" if args.len() == 1 && args[0] == "on" => Class::Header(Header {
            direction: Direction::Request,
            action: Action::Set,
            names: Vec::new(),
            tls_name: true,
        }),
        "log_format" if context == Context::Http => {
            Class::Native("a log format, which nothing here uses".to_owned())
        }
        _ => match access_rule(name) {
            Some(what) => Class::Unsafe(format!("`{}` {what}", d.shown())),
            None => Class::Unsafe(format!(
                "`{}` is not a header directive, so what the snippet does cannot be vouched for",
                d.shown()
            )),
        },
    }
}

fn classify_block(d: &Directive, block: &[Directive], context: Context) -> Class {
    // A map or geo at http level only defines a variable; something else must use it, and
    // every other snippet is assessed on its own.
    if context == Context::Http && matches!(d.name.as_str(), "map" | "geo") {
        return Class::Native(format!(
            "a `{}` definition, which does nothing by itself",
            d.name
        ));
    }
    let inner = first_access_rule(block)
        .map(|inner| format!(" with `{inner}`"))
        .unwrap_or_default();
    let what = match d.name.as_str() {
        "location" => "guards a path: it changes how that path is answered",
        "if" => "decides per request",
        "limit_except" => "restricts methods",
        name if name.contains("_by_lua") => "runs Lua code",
        _ => "is a block, so what it does cannot be vouched for",
    };
    Class::Unsafe(format!("`{}` block{inner} {what}", d.shown()))
}

/// The first access rule inside a block, shown, for a message that says what the block does.
fn first_access_rule(block: &[Directive]) -> Option<String> {
    block.iter().find_map(|d| {
        if access_rule(&d.name).is_some() {
            Some(d.shown())
        } else {
            d.block.as_deref().and_then(first_access_rule)
        }
    })
}

fn header(direction: Direction, action: Action, names: Option<Vec<String>>) -> Class {
    match names {
        Some(names) => Class::Header(Header {
            direction,
            action,
            names,
            tls_name: false,
        }),
        None => Class::Unsafe("a header directive could not be read".to_owned()),
    }
}

fn unreadable(d: &Directive) -> Class {
    Class::Unsafe(format!("`{}` could not be read", d.shown()))
}

fn request_header(d: &Directive, action: Action, names: Vec<String>) -> Class {
    if let Some(name) = names.iter().find(|n| identity_like(n)) {
        let verb = match action {
            Action::Set => "sets",
            Action::Clear => "removes",
        };
        return Class::Unsafe(format!(
            "`{}` {verb} request header {name}, which a backend may trust for identity; without \
             the snippet a client could send it itself",
            d.shown()
        ));
    }
    Class::Header(Header {
        direction: Direction::Request,
        action,
        names,
        tls_name: false,
    })
}

/// `proxy_set_header Upgrade $http_upgrade` and `proxy_set_header Connection "upgrade"` (or
/// `$connection_upgrade`): what WebSocket guides add; Sluice forwards upgrades itself.
fn websocket_pair(name: &str, value: &str) -> bool {
    (name.eq_ignore_ascii_case("upgrade") && value == "$http_upgrade")
        || (name.eq_ignore_ascii_case("connection")
            && (value.eq_ignore_ascii_case("upgrade") || value == "$connection_upgrade"))
}

/// The arguments after the options that take a value (`-s 200`, `-t text/html`) and the flags
/// (`-r`).
fn skip_options<'a>(args: &'a [String], with_value: &[&str]) -> Vec<&'a String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if with_value.contains(&arg.as_str()) {
            iter.next();
        } else if arg.starts_with('-') && arg.len() == 2 {
            // A flag such as -r (replace only).
        } else {
            out.push(arg);
        }
    }
    out
}

/// Header names from `Name: value` (or bare `Name`) arguments; `None` if one is not a
/// plausible header name (the directive is then not vouched for).
fn header_names(args: Vec<&String>, with_values: bool) -> Option<Vec<String>> {
    if args.is_empty() {
        return None;
    }
    args.into_iter()
        .map(|arg| {
            let name = if with_values {
                arg.split(':').next().unwrap_or("")
            } else {
                arg.as_str()
            }
            .trim();
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.*".contains(&b));
            token.then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsafe_reason(text: &str, context: Context) -> String {
        match assess(text, context) {
            Assessment::Unsafe { reason } => reason,
            other => panic!("{text:?}: expected unsafe, got {other:?}"),
        }
    }

    #[test]
    fn header_only_snippets() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "more_set_headers \"X-Frame-Options: DENY\";\nmore_set_headers \"X-Content-Type-Options: nosniff\";",
                "sets response headers X-Frame-Options, X-Content-Type-Options",
                &["X-Frame-Options", "X-Content-Type-Options"],
            ),
            (
                "add_header X-Frame-Options SAMEORIGIN always;",
                "sets response headers X-Frame-Options",
                &["X-Frame-Options"],
            ),
            (
                "proxy_hide_header X-Powered-By;",
                "removes response headers X-Powered-By",
                &[],
            ),
            (
                "more_set_headers -s 404 -t 'text/html' 'Cache-Control: no-store';",
                "sets response headers Cache-Control",
                &[],
            ),
            (
                "proxy_set_header X-Forwarded-Proto https; # behind a TLS proxy",
                "sets request headers X-Forwarded-Proto",
                &[],
            ),
            (
                "proxy_set_header X-Script-Name /app;\nproxy_set_header Upgrade $http_upgrade;",
                "sets request headers X-Script-Name",
                &[],
            ),
            (
                "proxy_ssl_name \"svc.ns.cluster.local\";\nproxy_ssl_server_name on;",
                "sets the upstream TLS server name",
                &[],
            ),
            (
                "more_clear_headers Server X-Powered-By;",
                "removes response headers Server, X-Powered-By",
                &[],
            ),
        ];
        for (text, what, security) in cases {
            match assess(text, Context::Location) {
                Assessment::HeaderOnly {
                    what: got,
                    security_headers,
                } => {
                    assert_eq!(&got, what, "{text}");
                    assert_eq!(security_headers, *security, "{text}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn native_snippets() {
        for (text, what) in [
            (
                "proxy_set_header Upgrade $http_upgrade;\nproxy_set_header Connection \"upgrade\";\n",
                "the WebSocket upgrade pair, which Sluice handles itself",
            ),
            (
                "proxy_http_version 1.1;\nproxy_set_header Upgrade $http_upgrade;\nproxy_set_header Connection $connection_upgrade;",
                "HTTP/1.1 to the backend, which Sluice uses itself; the WebSocket upgrade pair, \
                 which Sluice handles itself",
            ),
            ("  # nothing here\n", "an empty snippet"),
        ] {
            assert_eq!(
                assess(text, Context::Location),
                Assessment::Native { what: what.into() },
                "{text}"
            );
        }
    }

    #[test]
    fn access_rules_are_unsafe_and_named() {
        let cases = [
            (
                "location ~* \"^/admin\" {\n  deny all;\n  return 403;\n}\n",
                Context::Server,
                "`location ~* ^/admin` block with `deny all` guards a path",
            ),
            (
                "if ($http_user_agent ~* (bot|crawler)) { return 403; }",
                Context::Location,
                "`if ($http_user_agent ~* (bot|crawler))` block with `return 403` decides per request",
            ),
            (
                "deny 10.0.0.0/8;",
                Context::Location,
                "`deny 10.0.0.0/8` restricts",
            ),
            (
                "allow 10.0.0.0/8;\ndeny all;",
                Context::Location,
                "`allow 10.0.0.0/8`",
            ),
            (
                "return 403;",
                Context::Location,
                "`return 403` answers requests itself",
            ),
            (
                "auth_basic \"closed\";\nauth_basic_user_file /etc/htpasswd;",
                Context::Location,
                "`auth_basic closed` requires authentication",
            ),
            (
                "more_set_headers \"X-Frame-Options: DENY\";\nrewrite ^/old /new permanent;",
                Context::Location,
                "`rewrite ^/old /new permanent`",
            ),
            (
                "access_by_lua_block {\n  if ngx.var.cookie_x == \"}\" then ngx.exit(403) end -- }\n}",
                Context::Location,
                "`access_by_lua_block` block runs Lua code",
            ),
            (
                "proxy_set_header X-Forwarded-User \"\";",
                Context::Location,
                "removes request header X-Forwarded-User",
            ),
            (
                "more_set_input_headers \"X-Remote-User: admin\";",
                Context::Location,
                "sets request header X-Remote-User",
            ),
            (
                "proxy_buffering off;",
                Context::Location,
                "`proxy_buffering off` is not a header directive",
            ),
            (
                "more_set_headers \"X: y\"",
                Context::Location,
                "does not end with ';'",
            ),
            (
                "add_header X \"y;",
                Context::Location,
                "a quote is not closed",
            ),
            (
                "location / { add_header X y;",
                Context::Server,
                "a '{' is not closed",
            ),
            ("}", Context::Server, "no matching '{'"),
            (
                "map $a $b { default 1; }",
                Context::Location,
                "`map $a $b` block",
            ),
        ];
        for (text, context, want) in cases {
            let reason = unsafe_reason(text, context);
            assert!(reason.contains(want), "{text:?}: {reason:?} lacks {want:?}");
        }
    }

    #[test]
    fn http_level_definitions_are_inert() {
        let text = "map $http_upgrade $connection_upgrade {\n  default upgrade;\n  '' close;\n}\nlog_format short '$remote_addr $status';";
        assert!(matches!(
            assess(text, Context::Http),
            Assessment::Native { .. }
        ));
    }

    #[test]
    fn variables_with_braces_are_not_blocks() {
        assert!(matches!(
            assess("add_header X-Host ${host}-x;", Context::Location),
            Assessment::HeaderOnly { .. }
        ));
    }
}
