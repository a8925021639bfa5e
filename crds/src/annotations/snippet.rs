//! ingress-nginx snippets (raw nginx configuration): a strict translation of the header-only
//! ones, and a conservative assessment of the rest.
//!
//! Sluice never executes a snippet. Two readings share one small nginx tokenizer:
//!
//! - [`translate`] recognises the safe subset many real snippets stay within: setting, adding,
//!   hiding and clearing headers with literal values or the typed variables of [`Template`],
//!   the WebSocket pair and `proxy_http_version 1.1` (which Sluice does itself), and the
//!   upstream TLS server name. It turns them into [`HeaderPolicies`], all or nothing: one
//!   directive outside the subset and none of the snippet applies.
//! - [`assess`] tells whether dropping a snippet changes *who gets in*: a snippet that only sets
//!   headers or tunes buffering, timeouts, compression, caching or logging (the vetted
//!   [`TUNING`] list, plain directives with simple arguments) is a difference, one holding
//!   `deny`, `return 403`, `auth_basic`, an `if` or a `location` block is an access rule that
//!   would silently disappear. It does not try to understand nginx: when in doubt it says
//!   unsafe, so a wrong answer errs towards a person looking at the snippet, never towards
//!   exposing what it protects.
//!
//! [`parse_annotations`](super::parse_annotations) applies what translates and decides the
//! severity of the rest from the assessment; the operator's migration report uses both.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::grammar;
use super::policies::{HeaderPolicies, ResponseHeader};
use super::template::{Template, TemplateError, TemplateKind};
use super::{AnnotationProblem, NGINX_PREFIX, ProblemKind, SLUICE_PREFIX, Severity, effective};

/// Where a snippet is pasted in ingress-nginx's nginx.conf: it decides which definitions are
/// harmless on their own, and what can be translated.
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
    /// Only headers (and the upstream TLS server name) and [`Tuning`] directives: traffic is
    /// served, without them.
    Harmless {
        /// One line naming the headers and tuning directives, e.g. "sets response headers
        /// X-Frame-Options; tunes performance, caching or logging (proxy_buffering)".
        what: String,
        /// Security response headers (X-Frame-Options, Content-Security-Policy, ...) that
        /// responses will lack; worth saying even though no access rule is lost.
        security_headers: Vec<String>,
        /// The tuning directives dropped, in order.
        tuning: Vec<Tuning>,
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
    let mut tuning = Vec::new();
    for directive in &directives {
        match classify(directive, context) {
            Class::Native(what) => {
                if !native.contains(&what) {
                    native.push(what);
                }
            }
            Class::Header(header) => headers.add(header),
            Class::Tuning(t) => tuning.push(t),
            Class::Unsafe(reason) => return Assessment::Unsafe { reason },
        }
    }
    if headers.is_empty() && tuning.is_empty() {
        return Assessment::Native {
            what: native_what(&native),
        };
    }
    let mut what = Vec::new();
    if !headers.is_empty() {
        what.push(headers.describe());
    }
    if !tuning.is_empty() {
        let mut names: Vec<&str> = Vec::new();
        for t in &tuning {
            if !names.contains(&t.name) {
                names.push(t.name);
            }
        }
        what.push(format!(
            "tunes performance, caching or logging ({})",
            names.join(", ")
        ));
    }
    Assessment::Harmless {
        what: what.join("; "),
        security_headers: headers.security(),
        tuning,
    }
}

fn native_what(native: &[String]) -> String {
    if native.is_empty() {
        "an empty snippet".to_owned()
    } else {
        native.join("; ")
    }
}

/// A snippet translated whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// What it asks for, as typed policies (empty when it only asks for what Sluice does
    /// anyway, or is empty).
    pub headers: HeaderPolicies,
    /// One line for people, e.g. "sets response headers X-Frame-Options" or "the WebSocket
    /// upgrade pair, which Sluice handles itself".
    pub what: String,
}

/// Why a snippet is not translated: the first directive outside the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated {
    /// The directive as it reads (shortened, printable); `None` when the snippet as a whole
    /// could not be read.
    pub directive: Option<String>,
    /// Why, as the rest of a sentence starting with the directive.
    pub why: String,
}

impl fmt::Display for Untranslated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.directive {
            Some(directive) => write!(f, "`{directive}` {}", self.why),
            None => f.write_str(&self.why),
        }
    }
}

/// At most this many header directives per snippet: each is work on every request.
pub const MAX_HEADER_DIRECTIVES: usize = 64;

/// Longest header value translated, in bytes (a long Content-Security-Policy fits).
pub const MAX_HEADER_VALUE_BYTES: usize = 8192;

/// Translates a `configuration-snippet` ([`Context::Location`]) or `server-snippet`
/// ([`Context::Server`]) that stays within the header subset; anything else is
/// [`Untranslated`], naming the first directive outside it.
pub fn translate(text: &str, context: Context) -> Result<Translation, Untranslated> {
    if !matches!(context, Context::Location | Context::Server) {
        return Err(Untranslated {
            directive: None,
            why: "only server and configuration snippets are translated".to_owned(),
        });
    }
    let directives = parse(text).map_err(|why| Untranslated {
        directive: None,
        why: format!("it could not be read as nginx configuration ({why})"),
    })?;
    let mut translator = Translator::default();
    for (n, directive) in directives.iter().enumerate() {
        let result = if n >= MAX_HEADER_DIRECTIVES {
            Err(format!(
                "is directive {}: Sluice translates at most {MAX_HEADER_DIRECTIVES} per snippet",
                n + 1
            ))
        } else {
            translator.directive(directive)
        };
        result.map_err(|why| Untranslated {
            directive: Some(directive.shown()),
            why,
        })?;
    }
    let what = if translator.described.is_empty() {
        native_what(&translator.native)
    } else {
        let mut what = translator.described.describe();
        for native in &translator.native {
            let _ = write!(what, "; {native}");
        }
        what
    };
    Ok(Translation {
        headers: translator.headers,
        what,
    })
}

/// The snippet keys' part of [`parse_annotations`](super::parse_annotations): the merged header
/// policies of the server and configuration snippets, and a problem for each snippet that is
/// not applied. A snippet translated whole has no problem: Events are for problems, and the
/// migration report lists it as translated. One that is not is `RejectIngress` when it may hold
/// an access rule, else `Ignored`, naming the annotations to use instead of its tuning
/// directives.
pub(super) fn snippet_policies(
    annotations: &BTreeMap<String, String>,
) -> (HeaderPolicies, Vec<AnnotationProblem>) {
    let mut problems = Vec::new();
    let mut server = HeaderPolicies::default();
    let mut location = HeaderPolicies::default();
    for bare in super::table::SNIPPETS {
        let Some((key, value)) = effective(annotations, bare) else {
            continue;
        };
        let problem = |reason: String, severity: Severity| AnnotationProblem {
            key: key.clone(),
            value: value.to_owned(),
            expected: String::new(),
            // The directive named may come from anywhere: keep the message one printable line.
            reason: grammar::replace_control(&reason).into_owned(),
            severity,
            kind: ProblemKind::Other,
        };
        let context = match *bare {
            "configuration-snippet" => Context::Location,
            "server-snippet" => Context::Server,
            _ if is_blank(value) => continue,
            "auth-snippet" => {
                problems.push(problem(
                    "auth snippets are never executed, and Sluice cannot change the \
                     external-authentication request as it asks; the Ingress is not served \
                     rather than served with authentication that differs; delete the snippet if \
                     the auth service does not need it"
                        .to_owned(),
                    Severity::RejectIngress,
                ));
                continue;
            }
            "modsecurity-snippet" => {
                problems.push(problem(
                    "ModSecurity rules (a web application firewall) have no Sluice equivalent; \
                     the Ingress is not served rather than served without the requests they \
                     block being blocked; delete the snippet to serve it unprotected"
                        .to_owned(),
                    Severity::RejectIngress,
                ));
                continue;
            }
            _ => {
                problems.push(problem(
                    "stream snippets define TCP/UDP servers, which never applied to HTTP routes \
                     and which Sluice does not serve; ignored"
                        .to_owned(),
                    Severity::Ignored,
                ));
                continue;
            }
        };
        match translate(value, context) {
            Ok(translation) => match context {
                Context::Server => server = translation.headers,
                _ => location = translation.headers,
            },
            Err(untranslated) => problems.push(match assess(value, context) {
                Assessment::Unsafe { reason } => problem(
                    format!(
                        "security-relevant snippet not executed: {reason}; the Ingress is not \
                         served rather than served without the access rule it may hold; move \
                         the rule to annotations such as whitelist-source-range or auth-url, or \
                         delete the snippet"
                    ),
                    Severity::RejectIngress,
                ),
                assessment @ (Assessment::Native { .. } | Assessment::Harmless { .. }) => {
                    let instead = match &assessment {
                        Assessment::Harmless { tuning, .. } => {
                            instead_of(tuning, annotations, prefix_of(&key))
                        }
                        _ => String::new(),
                    };
                    problem(
                        format!(
                            "snippet not applied: {untranslated}; Sluice translates a snippet \
                             only when every directive sets, adds, hides or clears headers with \
                             literal values or supported variables, so none of it applies; \
                             ignored{instead}"
                        ),
                        Severity::Ignored,
                    )
                }
            }),
        }
    }
    (HeaderPolicies::merge(server, location), problems)
}

/// Nothing but whitespace and `#` comments (in nginx and in ModSecurity alike).
pub fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

/// One nginx directive: its name, arguments (quotes removed, escapes resolved) and block, if
/// it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Directive>>,
}

impl Directive {
    /// How the directive reads in a message: name and arguments, shortened, one printable
    /// line (an argument with a control character is shown escaped).
    fn shown(&self) -> String {
        let mut text = String::new();
        for (n, word) in std::iter::once(&self.name).chain(&self.args).enumerate() {
            if n > 0 {
                text.push(' ');
            }
            let quote = word.is_empty()
                || word.contains([' ', ';', '{', '}'])
                || grammar::has_control(word);
            if quote {
                let _ = write!(text, "{word:?}");
            } else {
                text.push_str(word);
            }
        }
        grammar::replace_control(&shorten(&text, 60)).into_owned()
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

/// What nginx makes of `\` followed by `next`, in quoted and unquoted words alike: `\t`,
/// `\r`, `\n` are the control characters (which no translated value may hold), `\"`, `\'`,
/// `\\` the character itself, anything else stays as written.
fn push_escaped(word: &mut String, next: char) {
    match next {
        't' => word.push('\t'),
        'r' => word.push('\r'),
        'n' => word.push('\n'),
        '"' | '\'' | '\\' => word.push(next),
        other => {
            word.push('\\');
            word.push(other);
        }
    }
}

/// nginx's tokenizer, simplified: words, quoted strings ("..." and '...'), backslash escapes,
/// `;`, `{`, `}`, `#` comments, and `${var}` inside words. Iterative, linear in the input.
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
                            match chars.get(i + 1) {
                                Some(next) => push_escaped(&mut word, *next),
                                None => return Err("a quote is not closed".to_owned()),
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
                // As nginx: a quoted string ends its word (`"a"b` is an error); `)` may follow
                // for `if (... "x")`.
                if let Some(next) = chars.get(i)
                    && !(next.is_whitespace() || matches!(next, ';' | '{' | ')'))
                {
                    return Err(format!("unexpected {next:?} after a quoted string"));
                }
                tokens.push(Token::Word(word));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.get(i) {
                    if c.is_whitespace() || matches!(c, ';' | '{' | '}') {
                        break;
                    }
                    if c == '\\' {
                        match chars.get(i + 1) {
                            Some(next) => push_escaped(&mut word, *next),
                            None => word.push('\\'),
                        }
                        i += 2;
                        continue;
                    }
                    if c == '$' && chars.get(i + 1) == Some(&'{') {
                        // ${var}: the braces belong to the variable, not to a block.
                        let close = chars[i..]
                            .iter()
                            .position(|c| *c == '}')
                            .filter(|end| {
                                !chars[i..i + end]
                                    .iter()
                                    .any(|c| c.is_whitespace() || *c == ';')
                            })
                            .ok_or_else(|| "a ${ is not closed".to_owned())?;
                        word.extend(&chars[i..=i + close]);
                        i += close + 1;
                        continue;
                    }
                    word.push(c);
                    i += 1;
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
                depth = depth.saturating_sub(1);
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

/// Deep nesting is not something header snippets have; the bound keeps recursion small
/// whatever the input.
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
                    return Err(format!(
                        "`{}` does not end with ';'",
                        shorten(&words.join(" "), 40)
                    ));
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

// ---------------------------------------------------------------------------------------------
// Translation.

#[derive(Default)]
struct Translator {
    headers: HeaderPolicies,
    /// What Sluice does itself, for the description.
    native: Vec<String>,
    /// The header names as written, for the description.
    described: Headers,
}

const WEBSOCKET: &str = "the WebSocket upgrade pair, which Sluice handles itself";
const HTTP11: &str = "HTTP/1.1 to the backend, which Sluice uses itself";

/// Where a header name stands; decides which names are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `proxy_set_header`: `Host` may be set.
    ProxySetHeader,
    /// `more_set_input_headers`.
    RequestSet,
    /// `more_clear_input_headers`, `proxy_set_header X ""`.
    RequestClear,
    /// `more_set_headers`, `add_header`.
    ResponseSet,
    /// `more_clear_headers`, `proxy_hide_header`.
    ResponseHide,
}

impl Translator {
    fn native(&mut self, what: &str) {
        if !self.native.iter().any(|n| n == what) {
            self.native.push(what.to_owned());
        }
    }

    fn describe(&mut self, direction: Direction, action: Action, name: &str) {
        self.described.add(Header {
            direction,
            action,
            names: vec![name.to_owned()],
            tls_name: false,
        });
    }

    /// One directive; the error is the rest of a sentence that starts with it.
    fn directive(&mut self, d: &Directive) -> Result<(), String> {
        if d.block.is_some() {
            return Err("is a block; only header directives are translated".to_owned());
        }
        let args: Vec<&str> = d.args.iter().map(String::as_str).collect();
        match (d.name.as_str(), args.as_slice()) {
            ("more_set_headers", specs) => {
                for spec in without_options(specs)? {
                    let (name, value) = name_and_value(spec)?;
                    let lower = header_name(name, Place::ResponseSet)?;
                    self.headers.set_response(ResponseHeader {
                        name: lower,
                        value: header_value(name, value)?,
                        append: false,
                        always: true,
                    });
                    self.describe(Direction::Response, Action::Set, name);
                }
                Ok(())
            }
            ("add_header", [name, value]) => self.add_header(name, value, false),
            ("add_header", [name, value, "always"]) => self.add_header(name, value, true),
            ("proxy_hide_header", [name]) => {
                self.hide_response(name, false)?;
                Ok(())
            }
            ("more_clear_headers", names) => {
                for name in without_options(names)? {
                    self.hide_response(name, true)?;
                }
                Ok(())
            }
            ("proxy_set_header", [name, value]) => {
                if websocket_pair(name, value) {
                    self.native(WEBSOCKET);
                    return Ok(());
                }
                if value.is_empty() {
                    // As nginx: an empty value means the header is not sent.
                    let lower = header_name(name, Place::RequestClear)?;
                    self.headers.clear_request(lower);
                    self.describe(Direction::Request, Action::Clear, name);
                    return Ok(());
                }
                let lower = header_name(name, Place::ProxySetHeader)?;
                let value = if lower == "host" {
                    host_value(value)?
                } else {
                    header_value(name, value)?
                };
                self.headers.set_request(lower, value);
                self.describe(Direction::Request, Action::Set, name);
                Ok(())
            }
            ("more_set_input_headers", specs) => {
                for spec in without_options(specs)? {
                    let (name, value) = name_and_value(spec)?;
                    let lower = header_name(name, Place::RequestSet)?;
                    let value = header_value(name, value)?;
                    self.headers.set_request(lower, value);
                    self.describe(Direction::Request, Action::Set, name);
                }
                Ok(())
            }
            ("more_clear_input_headers", names) => {
                for name in without_options(names)? {
                    let lower = header_name(name, Place::RequestClear)?;
                    self.headers.clear_request(lower);
                    self.describe(Direction::Request, Action::Clear, name);
                }
                Ok(())
            }
            ("proxy_ssl_name", [name]) => {
                self.headers.upstream_tls_name = Some(host_value(name)?);
                self.described.tls_name = true;
                Ok(())
            }
            // Without a name it sends the backend's host name, as Sluice does; with one, the
            // name is `upstream_tls_name`.
            ("proxy_ssl_server_name", ["on"]) => Ok(()),
            ("proxy_http_version", ["1.1"]) => {
                self.native(HTTP11);
                Ok(())
            }
            (
                "add_header"
                | "proxy_hide_header"
                | "proxy_set_header"
                | "proxy_ssl_name"
                | "proxy_ssl_server_name",
                _,
            ) => Err("has arguments Sluice does not translate".to_owned()),
            _ => match tuning(d) {
                Some(Ok((spec, _))) => Err(format!(
                    "only {}, which Sluice does not take from a snippet",
                    spec.what
                )),
                Some(Err(why)) => Err(why),
                None => Err("is not one of the header directives Sluice translates".to_owned()),
            },
        }
    }

    fn add_header(&mut self, name: &str, value: &str, always: bool) -> Result<(), String> {
        let lower = header_name(name, Place::ResponseSet)?;
        if value.is_empty() {
            // nginx adds nothing for an empty value.
            return Ok(());
        }
        self.headers.set_response(ResponseHeader {
            name: lower,
            value: header_value(name, value)?,
            append: true,
            always,
        });
        self.describe(Direction::Response, Action::Set, name);
        Ok(())
    }

    fn hide_response(&mut self, name: &str, wildcard: bool) -> Result<(), String> {
        if !wildcard && name.ends_with('*') {
            return Err(format!("names {name}, but a wildcard is not allowed here"));
        }
        let lower = header_name(name, Place::ResponseHide)?;
        self.headers.hide_response(lower);
        self.describe(Direction::Response, Action::Clear, name);
        Ok(())
    }
}

/// headers-more's options (`-s 404`, `-t text/html`, `-r`, `-a`) filter by status or type or
/// change the semantics: not translated. At least one header must remain.
fn without_options<'a>(args: &[&'a str]) -> Result<Vec<&'a str>, String> {
    if let Some(option) = args.iter().find(|a| a.starts_with('-')) {
        return Err(format!(
            "uses the option {option}, which Sluice does not translate"
        ));
    }
    if args.is_empty() {
        return Err("names no header".to_owned());
    }
    Ok(args.to_vec())
}

/// `Name: value` of headers-more. A bare name or an empty value clears the header there; the
/// translation asks for `more_clear_headers` instead, so each form has one meaning.
fn name_and_value(spec: &str) -> Result<(&str, &str), String> {
    match spec.split_once(':') {
        Some((name, value)) if !value.trim().is_empty() => Ok((name.trim(), value.trim())),
        _ => Err(format!(
            "has {:?} without a value, which clears the header; write more_clear_headers",
            shorten(spec, 40)
        )),
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Headers that frame the message or belong to one connection: Sluice manages them, and a
/// wrong one desynchronises the connection.
fn framing(lower: &str) -> bool {
    FRAMING.contains(&lower) || lower.starts_with(PROXY_FAMILY)
}

/// The framing and hop-by-hop header names, lowercase.
const FRAMING: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// `Proxy-Authorization`, `Proxy-Connection`, ...: hop-by-hop by name.
const PROXY_FAMILY: &str = "proxy-";

/// The lowercase name, or why it is refused. Wildcards (`X-Debug-*`) only where headers are
/// removed; `Host` only set by `proxy_set_header`.
fn header_name(name: &str, place: Place) -> Result<String, String> {
    let wildcard_allowed = matches!(place, Place::RequestClear | Place::ResponseHide);
    let (stem, wildcard) = match name.strip_suffix('*') {
        Some(stem) if wildcard_allowed => (stem, true),
        _ => (name, false),
    };
    if stem.is_empty() || !stem.bytes().all(|b| is_tchar(b) && b != b'*') {
        return Err(format!(
            "names {:?}, which is not a header name",
            shorten(name, 40)
        ));
    }
    let lower = stem.to_ascii_lowercase();
    let refused = if wildcard {
        // A prefix is refused when a refused name (or the Proxy- family) could match it.
        FRAMING
            .iter()
            .chain(&["host"])
            .find(|f| f.starts_with(&lower))
            .copied()
            .or_else(|| {
                (lower.starts_with(PROXY_FAMILY) || PROXY_FAMILY.starts_with(&lower))
                    .then_some("Proxy-*")
            })
    } else if framing(&lower) || (lower == "host" && place != Place::ProxySetHeader) {
        Some(lower.as_str())
    } else {
        None
    };
    if let Some(refused) = refused {
        return Err(format!(
            "names {name}, which would touch {refused}: Sluice manages the headers that frame \
             and route a message itself"
        ));
    }
    Ok(if wildcard { format!("{lower}*") } else { lower })
}

/// A header value: no control or invisible character, literal text and the typed variables.
fn header_value(name: &str, value: &str) -> Result<Template, String> {
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return Err(format!(
            "has a value for {name} longer than {MAX_HEADER_VALUE_BYTES} bytes"
        ));
    }
    if grammar::has_control(value) {
        return Err(format!(
            "has a value for {name} with control or invisible formatting characters"
        ));
    }
    Template::parse(TemplateKind::HeaderValue, value).map_err(|e| template_error(name, &e))
}

/// A host name with optional port, literal or from the typed variables.
fn host_value(value: &str) -> Result<Template, String> {
    if grammar::has_control(value) || value.len() > grammar::MAX_VALUE_BYTES {
        return Err("has a host name that is not a host name".to_owned());
    }
    Template::parse(TemplateKind::Host, value).map_err(|e| template_error("the host", &e))
}

fn template_error(what: &str, error: &TemplateError) -> String {
    match error {
        // The full list is in the reference; the message stays short.
        TemplateError::UnknownVariable(var) => {
            format!("uses ${var} for {what}, which is not one of the variables Sluice supports")
        }
        other => format!("has a value for {what} that Sluice cannot use: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Assessment.

/// What one directive is.
enum Class {
    Native(String),
    Header(Header),
    Tuning(Tuning),
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

/// Header names as written, for descriptions.
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
        grammar::replace_control(&parts.join("; ")).into_owned()
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
                return Class::Native(WEBSOCKET.to_owned());
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
            Class::Native(HTTP11.to_owned())
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
        _ => match tuning(d) {
            Some(Ok((_, t))) => Class::Tuning(t),
            Some(Err(why)) => Class::Unsafe(format!("`{}` {why}", d.shown())),
            None => unknown(d),
        },
    }
}

/// A directive neither in the header subset nor in [`TUNING`]: an access rule, or something
/// the scan cannot vouch for.
fn unknown(d: &Directive) -> Class {
    match access_rule(&d.name) {
        Some(what) => Class::Unsafe(format!("`{}` {what}", d.shown())),
        None => Class::Unsafe(format!(
            "`{}` is not a header directive, so what the snippet does cannot be vouched for",
            d.shown()
        )),
    }
}

fn classify_block(d: &Directive, block: &[Directive], context: Context) -> Class {
    // A map or geo at http level only defines a variable; something else must use it, and
    // every other snippet is assessed on its own.
    if context == Context::Http && matches!(d.name.as_str(), "map" | "geo") {
        return Class::Native(format!(
            "a `{}` definition, which does nothing by itself",
            grammar::replace_control(&shorten(&d.name, 40))
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
/// Recursion is bounded by the parser's [`MAX_DEPTH`].
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

// ---------------------------------------------------------------------------------------------
// Tuning: directives that are harmless to drop.

/// A directive that only tunes buffering, timeouts, compression, caching or logging: dropping
/// it changes how a request is answered, never who gets in. The snippet holding it is served
/// without it (and without the rest of the snippet: all or nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// The directive's name, e.g. `client_max_body_size`.
    pub name: &'static str,
    /// The directive as written (shortened, printable), e.g. `client_max_body_size 100m`.
    pub directive: String,
    /// The Sluice annotation that does the same, when there is one.
    pub instead: Option<Instead>,
}

/// The annotation to write instead of a tuning directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instead {
    /// The key without prefix, e.g. `proxy-body-size`.
    pub key: &'static str,
    /// The directive's argument when the annotation accepts it as written (`100m`); `None`
    /// when it must be rewritten (`1h30m` for a duration annotation).
    pub value: Option<String>,
}

/// How a tuning directive's arguments must read to be vouched for. None takes a `$` variable
/// except [`Args::Conditions`], none takes a block.
#[derive(Debug, Clone, Copy)]
pub enum Args {
    /// `on` or `off`.
    OnOff,
    /// An nginx size: `16k`, `100m`, `0`.
    Size,
    /// An nginx time: `60`, `10s`, `1h30m`.
    Time,
    /// A decimal number.
    Number,
    /// A number and a size: `proxy_buffers 4 32k`.
    NumberSize,
    /// One or two times: `keepalive_timeout 75s 60s`.
    Times,
    /// One of these words.
    Word(&'static [&'static str]),
    /// One or more of these words.
    Words(&'static [&'static str]),
    /// MIME types (`text/plain application/json`) or `*`.
    MimeTypes,
    /// `expires`: `[modified] [-|@]time`, `epoch`, `max` or `off`.
    Expires,
    /// A charset name or `off`.
    Charset,
    /// Literals and `$variables` (`$http_pragma $cookie_nocache`): only decide whether a cache,
    /// which Sluice does not have, is used.
    Conditions,
}

/// One vetted tuning directive.
pub struct TuningSpec {
    /// The nginx directive.
    pub name: &'static str,
    /// Its arguments.
    pub args: Args,
    /// What it does, after "only".
    pub what: &'static str,
    /// The Sluice annotation (without prefix) that does the same.
    pub annotation: Option<&'static str>,
}

const fn vetted(
    name: &'static str,
    args: Args,
    what: &'static str,
    annotation: Option<&'static str>,
) -> TuningSpec {
    TuningSpec {
        name,
        args,
        what,
        annotation,
    }
}

const BUFFERING: &str = "tunes buffering";
const TIMEOUT: &str = "sets a timeout";
const COMPRESSION: &str = "tunes compression";
const CONNECTION: &str = "tunes connections";
const LOGGING: &str = "tunes logging";
const CACHING: &str = "tunes caching";

/// The directives harmless to drop. Each was vetted for what *dropping* it does: performance,
/// body and header size limits, caching, compression or logging change, and no client is let in
/// that was not before. Anything that sends requests elsewhere, answers them, checks clients,
/// sets variables, includes files or runs code (`proxy_pass`, `return`, `allow`, `ssl_*`,
/// `include`, Lua, ...) is not here and stays unsafe.
pub const TUNING: &[TuningSpec] = &[
    vetted(
        "proxy_buffering",
        Args::OnOff,
        BUFFERING,
        Some("proxy-buffering"),
    ),
    vetted(
        "proxy_request_buffering",
        Args::OnOff,
        BUFFERING,
        Some("proxy-request-buffering"),
    ),
    vetted(
        "proxy_buffer_size",
        Args::Size,
        BUFFERING,
        Some("proxy-buffer-size"),
    ),
    vetted("proxy_buffers", Args::NumberSize, BUFFERING, None),
    vetted("proxy_busy_buffers_size", Args::Size, BUFFERING, None),
    vetted("proxy_max_temp_file_size", Args::Size, BUFFERING, None),
    vetted("proxy_temp_file_write_size", Args::Size, BUFFERING, None),
    vetted("client_body_buffer_size", Args::Size, BUFFERING, None),
    vetted("client_header_buffer_size", Args::Size, BUFFERING, None),
    vetted(
        "large_client_header_buffers",
        Args::NumberSize,
        BUFFERING,
        None,
    ),
    // A looser or stricter body limit changes which uploads fit, not who may upload.
    vetted(
        "client_max_body_size",
        Args::Size,
        "limits request bodies",
        Some("proxy-body-size"),
    ),
    vetted(
        "proxy_read_timeout",
        Args::Time,
        TIMEOUT,
        Some("proxy-read-timeout"),
    ),
    vetted(
        "proxy_send_timeout",
        Args::Time,
        TIMEOUT,
        Some("proxy-send-timeout"),
    ),
    vetted(
        "proxy_connect_timeout",
        Args::Time,
        TIMEOUT,
        Some("proxy-connect-timeout"),
    ),
    vetted("client_body_timeout", Args::Time, TIMEOUT, None),
    vetted("client_header_timeout", Args::Time, TIMEOUT, None),
    vetted("send_timeout", Args::Time, TIMEOUT, None),
    vetted("keepalive_timeout", Args::Times, TIMEOUT, None),
    // 1.1 is what Sluice does itself (see `HTTP11`); 1.0 has an annotation.
    vetted(
        "proxy_http_version",
        Args::Word(&["1.0", "1.1"]),
        CONNECTION,
        Some("proxy-http-version"),
    ),
    // Sluice frames messages itself.
    vetted("chunked_transfer_encoding", Args::OnOff, CONNECTION, None),
    vetted("tcp_nodelay", Args::OnOff, CONNECTION, None),
    vetted("tcp_nopush", Args::OnOff, CONNECTION, None),
    vetted("sendfile", Args::OnOff, CONNECTION, None),
    vetted("gzip", Args::OnOff, COMPRESSION, None),
    vetted("gzip_types", Args::MimeTypes, COMPRESSION, None),
    vetted("gzip_comp_level", Args::Number, COMPRESSION, None),
    vetted("gzip_min_length", Args::Size, COMPRESSION, None),
    vetted("gzip_vary", Args::OnOff, COMPRESSION, None),
    vetted(
        "gzip_proxied",
        Args::Words(&[
            "off",
            "expired",
            "no-cache",
            "no-store",
            "private",
            "no_last_modified",
            "no_etag",
            "auth",
            "any",
        ]),
        COMPRESSION,
        None,
    ),
    // Expires and Cache-Control: a header effect, as the header subset's are.
    vetted("expires", Args::Expires, "sets caching headers", None),
    vetted("etag", Args::OnOff, CACHING, None),
    // Without a cache (Sluice has none) they decide nothing; with variables, as written.
    vetted("proxy_cache_bypass", Args::Conditions, CACHING, None),
    vetted("proxy_no_cache", Args::Conditions, CACHING, None),
    vetted("charset", Args::Charset, "sets the response charset", None),
    // Only `off`: a path would write somewhere.
    vetted("access_log", Args::Word(&["off"]), LOGGING, None),
    vetted("log_not_found", Args::OnOff, LOGGING, None),
    vetted(
        "server_tokens",
        Args::OnOff,
        "tunes the Server header",
        None,
    ),
    // Without an error_page (which stays unsafe) nginx passes the backend's error through.
    vetted(
        "proxy_intercept_errors",
        Args::OnOff,
        "tunes error answers",
        None,
    ),
    // `off` and `default` only: a from/to pair rewrites Location headers.
    vetted(
        "proxy_redirect",
        Args::Word(&["off", "default"]),
        "tunes Location rewriting",
        None,
    ),
];

/// More arguments than any vetted directive needs in practice (gzip_types lists a dozen).
const MAX_TUNING_ARGS: usize = 32;

/// The tuning directive `d` is: `None` when its name is not in [`TUNING`] (or it is a block),
/// `Some(Err)` with the rest of a sentence when its arguments are not vouched for.
fn tuning(d: &Directive) -> Option<Result<(&'static TuningSpec, Tuning), String>> {
    if d.block.is_some() {
        return None;
    }
    let spec = TUNING.iter().find(|spec| spec.name == d.name)?;
    if d.args.len() > MAX_TUNING_ARGS || !args_ok(spec.args, &d.args) {
        return Some(Err(
            "has arguments other than the simple values Sluice vouches for".to_owned(),
        ));
    }
    let instead = spec.annotation.map(|key| Instead {
        key,
        // Suggested only as the annotation reads it: the grammar decides.
        value: match d.args.as_slice() {
            [value]
                if super::table::spec(key)
                    .is_some_and(|spec| spec.grammar.parse(value).is_ok()) =>
            {
                Some(value.clone())
            }
            _ => None,
        },
    });
    Some(Ok((
        spec,
        Tuning {
            name: spec.name,
            directive: d.shown(),
            instead,
        },
    )))
}

fn args_ok(kind: Args, args: &[String]) -> bool {
    let one = |ok: &dyn Fn(&str) -> bool| matches!(args, [a] if ok(a));
    let all = |ok: &dyn Fn(&str) -> bool| !args.is_empty() && args.iter().all(|a| ok(a));
    match kind {
        Args::OnOff => one(&|a| a == "on" || a == "off"),
        Args::Size => one(&is_size),
        Args::Time => one(&is_time),
        Args::Number => one(&is_number),
        Args::NumberSize => matches!(args, [n, s] if is_number(n) && is_size(s)),
        Args::Times => args.len() <= 2 && all(&is_time),
        Args::Word(words) => one(&|a| words.contains(&a)),
        Args::Words(words) => all(&|a| words.contains(&a)),
        Args::MimeTypes => all(&is_mime_type),
        Args::Expires => match args {
            [modified, time] => modified == "modified" && is_expires_time(time),
            [a] => matches!(a.as_str(), "epoch" | "max" | "off") || is_expires_time(a),
            _ => false,
        },
        Args::Charset => one(&|a| {
            (1..=40).contains(&a.len())
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }),
        Args::Conditions => all(&is_condition),
    }
}

fn is_number(a: &str) -> bool {
    (1..=9).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_digit())
}

/// nginx size: digits with an optional k or m (g too, as the annotations accept).
fn is_size(a: &str) -> bool {
    let digits = a.strip_suffix(['k', 'K', 'm', 'M', 'g', 'G']).unwrap_or(a);
    (1..=12).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// nginx time: one or more numbers, each with an optional unit (`90`, `10s`, `1h30m`).
fn is_time(a: &str) -> bool {
    if a.is_empty() || a.len() > 32 {
        return false;
    }
    let mut rest = a;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        // `ms` before `m`.
        match ["ms", "s", "m", "h", "d", "w", "M", "y"]
            .iter()
            .find(|unit| rest.starts_with(*unit))
        {
            Some(unit) => rest = &rest[unit.len()..],
            None => return rest.is_empty(),
        }
    }
    true
}

fn is_expires_time(a: &str) -> bool {
    is_time(a.strip_prefix(['-', '@']).unwrap_or(a))
}

fn is_mime_type(a: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 64
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    };
    a == "*"
        || a.split_once('/')
            .is_some_and(|(kind, sub)| part(kind) && (sub == "*" || part(sub)))
}

/// Literal words and `$name` variables, nothing else (no `${`, no quotes' spaces).
fn is_condition(a: &str) -> bool {
    let literal = |b: u8| b.is_ascii_alphanumeric() || b"_.-".contains(&b);
    (1..=64).contains(&a.len())
        && a.split('$').enumerate().all(|(n, part)| {
            if n == 0 {
                return part.bytes().all(literal);
            }
            let name = part
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            name > 0 && part[name..].bytes().all(literal)
        })
}

/// The prefix of a snippet key, for the annotations suggested beside it.
fn prefix_of(key: &str) -> &'static str {
    if key.starts_with(SLUICE_PREFIX) {
        SLUICE_PREFIX
    } else {
        NGINX_PREFIX
    }
}

/// `; use nginx.ingress.kubernetes.io/proxy-body-size: "100m" instead` for the tuning
/// directives with an annotation the Ingress does not set yet (quoted, as YAML needs for
/// `off`); empty when there is none.
fn instead_of(tuning: &[Tuning], annotations: &BTreeMap<String, String>, prefix: &str) -> String {
    let mut keys: Vec<&str> = Vec::new();
    let mut shown = Vec::new();
    for instead in tuning.iter().filter_map(|t| t.instead.as_ref()) {
        if keys.contains(&instead.key) || effective(annotations, instead.key).is_some() {
            continue;
        }
        keys.push(instead.key);
        shown.push(match &instead.value {
            Some(value) => format!("{prefix}{}: {value:?}", instead.key),
            None => format!("{prefix}{}", instead.key),
        });
    }
    if shown.is_empty() {
        String::new()
    } else {
        format!("; use {} instead", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::template::{StaticVars, Var};

    fn unsafe_reason(text: &str, context: Context) -> String {
        match assess(text, context) {
            Assessment::Unsafe { reason } => reason,
            other => panic!("{text:?}: expected unsafe, got {other:?}"),
        }
    }

    fn translated(text: &str) -> Translation {
        translate(text, Context::Location).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn untranslated(text: &str) -> Untranslated {
        match translate(text, Context::Location) {
            Ok(t) => panic!("{text:?}: expected untranslated, got {t:?}"),
            Err(e) => e,
        }
    }

    fn value(source: &str) -> Template {
        Template::parse(TemplateKind::HeaderValue, source).unwrap()
    }

    fn set(name: &str, source: &str, append: bool, always: bool) -> ResponseHeader {
        ResponseHeader {
            name: name.into(),
            value: value(source),
            append,
            always,
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
                Assessment::Harmless {
                    what: got,
                    security_headers,
                    tuning,
                } => {
                    assert_eq!(&got, what, "{text}");
                    assert_eq!(security_headers, *security, "{text}");
                    assert!(tuning.is_empty(), "{text}");
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
            // What is native translates to nothing to do.
            let t = translated(text);
            assert!(t.headers.is_empty(), "{text}");
            assert_eq!(t.what, what, "{text}");
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
                "proxy_buffering off;\ndeny all;",
                Context::Location,
                "`deny all` restricts",
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
            (
                "add_header X \"a\"b;",
                Context::Location,
                "unexpected 'b' after a quoted string",
            ),
            (
                "location / { add_header X \"y\"}",
                Context::Server,
                "unexpected '}' after a quoted string",
            ),
            (
                "add_header X-A ${host;",
                Context::Location,
                "a ${ is not closed",
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
        // ... and never translated: the http level is not per Ingress.
        assert!(translate(text, Context::Http).is_err());
        assert!(translate("add_header X y;", Context::Auth).is_err());
    }

    #[test]
    fn variables_with_braces_are_not_blocks() {
        assert!(matches!(
            assess("add_header X-Host ${host}-x;", Context::Location),
            Assessment::Harmless { .. }
        ));
        let t = translated("add_header X-Host ${host}-x;");
        assert_eq!(
            t.headers.response_set,
            [set("x-host", "${host}-x", true, false)]
        );
    }

    /// The real-world forms of the issue, each translated to the policies it means.
    #[test]
    fn real_world_snippets_translate() {
        let cases: Vec<(&str, HeaderPolicies, &str)> = vec![
            (
                "more_set_headers \"X-Frame-Options: DENY\";",
                HeaderPolicies {
                    response_set: vec![set("x-frame-options", "DENY", false, true)],
                    ..Default::default()
                },
                "sets response headers X-Frame-Options",
            ),
            (
                "more_set_headers 'X-Frame-Options: DENY';",
                HeaderPolicies {
                    response_set: vec![set("x-frame-options", "DENY", false, true)],
                    ..Default::default()
                },
                "sets response headers X-Frame-Options",
            ),
            (
                "add_header X-Frame-Options SAMEORIGIN always;",
                HeaderPolicies {
                    response_set: vec![set("x-frame-options", "SAMEORIGIN", true, true)],
                    ..Default::default()
                },
                "sets response headers X-Frame-Options",
            ),
            (
                "add_header Cache-Control \"no-store\";",
                HeaderPolicies {
                    response_set: vec![set("cache-control", "no-store", true, false)],
                    ..Default::default()
                },
                "sets response headers Cache-Control",
            ),
            (
                "proxy_set_header Upgrade $http_upgrade;\nproxy_set_header Connection \"upgrade\";",
                HeaderPolicies::default(),
                "the WebSocket upgrade pair, which Sluice handles itself",
            ),
            (
                "proxy_hide_header X-Powered-By;",
                HeaderPolicies {
                    response_hide: vec!["x-powered-by".into()],
                    ..Default::default()
                },
                "removes response headers X-Powered-By",
            ),
            (
                "proxy_ssl_name \"svc.ns.cluster.local\";\nproxy_ssl_server_name on;",
                HeaderPolicies {
                    upstream_tls_name: Some(
                        Template::parse(TemplateKind::Host, "svc.ns.cluster.local").unwrap(),
                    ),
                    ..Default::default()
                },
                "sets the upstream TLS server name",
            ),
            (
                // Multi-line, comments, several headers in one directive, `;` inside quotes.
                "# hardening\nmore_set_headers \"X-Content-Type-Options: nosniff\"\n    'Referrer-Policy: no-referrer';  # both\n\
                 add_header Content-Security-Policy \"default-src 'self'; img-src *\" always;\n\
                 more_clear_headers 'X-Debug-*' Server;\n",
                HeaderPolicies {
                    response_set: vec![
                        set("x-content-type-options", "nosniff", false, true),
                        set("referrer-policy", "no-referrer", false, true),
                        set(
                            "content-security-policy",
                            "default-src 'self'; img-src *",
                            true,
                            true,
                        ),
                    ],
                    response_hide: vec!["x-debug-*".into(), "server".into()],
                    ..Default::default()
                },
                "sets response headers X-Content-Type-Options, Referrer-Policy, \
                 Content-Security-Policy; removes response headers X-Debug-*, Server",
            ),
            (
                // The typed variables; Host takes a host template; an empty value removes.
                "proxy_set_header X-Real-IP $remote_addr;\nproxy_set_header X-Forwarded-Proto $scheme;\n\
                 proxy_set_header Host $host;\nproxy_set_header X-Forwarded-User \"\";\n\
                 more_set_input_headers 'X-Request-Start: t=${msec}x';",
                HeaderPolicies::default(),
                "",
            ),
            (
                "more_clear_input_headers X-Internal-* Authorization;\nproxy_http_version 1.1;",
                HeaderPolicies {
                    request_clear: vec!["x-internal-*".into(), "authorization".into()],
                    ..Default::default()
                },
                "removes request headers X-Internal-*, Authorization; HTTP/1.1 to the backend, \
                 which Sluice uses itself",
            ),
        ];
        for (text, headers, what) in cases {
            if what.is_empty() {
                // $msec is not a supported variable: the whole snippet is not translated.
                let e = untranslated(text);
                assert_eq!(
                    e.to_string(),
                    "`more_set_input_headers \"X-Request-Start: t=${msec}x\"` uses $msec for \
                     X-Request-Start, which is not one of the variables Sluice supports"
                );
                let without = text.rsplit_once("\nmore_set_input_headers").unwrap().0;
                let t = translated(without);
                assert_eq!(
                    t.headers.request_set,
                    [
                        ("x-real-ip".to_owned(), value("$remote_addr")),
                        ("x-forwarded-proto".to_owned(), value("$scheme")),
                        (
                            "host".to_owned(),
                            Template::parse(TemplateKind::Host, "$host").unwrap()
                        ),
                    ]
                );
                assert_eq!(t.headers.request_clear, ["x-forwarded-user"]);
                continue;
            }
            let t = translated(text);
            assert_eq!(t.headers, headers, "{text}");
            assert_eq!(t.what, what, "{text}");
        }
    }

    #[test]
    fn later_directives_win_within_a_snippet() {
        let t = translated(
            "more_set_headers \"X-A: 1\";\nmore_set_headers \"X-A: 2\";\n\
             add_header Set-Cookie a=1;\nadd_header Set-Cookie b=2;\n\
             more_set_headers \"X-B: 1\";\nmore_clear_headers X-B;\n\
             proxy_set_header X-C 1;\nproxy_set_header X-C 2;\n\
             proxy_set_header X-D 1;\nmore_clear_input_headers X-D*;",
        );
        assert_eq!(
            t.headers.response_set,
            [
                set("x-a", "2", false, true),
                set("set-cookie", "a=1", true, false),
                set("set-cookie", "b=2", true, false),
            ]
        );
        assert_eq!(t.headers.response_hide, ["x-b"]);
        assert_eq!(t.headers.request_set, [("x-c".to_owned(), value("2"))]);
        assert_eq!(t.headers.request_clear, ["x-d*"]);
    }

    #[test]
    fn outside_the_subset_names_the_first_directive() {
        let long = format!(
            "add_header X-Long \"{}\";",
            "a".repeat(MAX_HEADER_VALUE_BYTES + 1)
        );
        let many = "add_header X y;\n".repeat(MAX_HEADER_DIRECTIVES + 1);
        let cases: Vec<(&str, &str)> = vec![
            (
                "more_set_headers -s 404 \"X: y\";",
                "`more_set_headers -s 404 \"X: y\"` uses the option -s",
            ),
            (
                "more_set_headers -t text/html 'X: y';",
                "uses the option -t",
            ),
            (
                "more_set_headers \"X-Frame-Options\";",
                "without a value, which clears the header",
            ),
            ("more_set_headers \"X:  \";", "without a value"),
            ("more_set_headers;", "names no header"),
            ("add_header X $upstream_addr;", "uses $upstream_addr for X"),
            (
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "uses $proxy_add_x_forwarded_for",
            ),
            ("add_header X \"a $ b\";", "'$' must start a variable"),
            // nginx turns \r\n inside quotes into CR LF: refused, never a split header.
            (
                "add_header X \"a\\r\\nSet-Cookie: b\";",
                "with control or invisible formatting characters",
            ),
            (
                "add_header X \"a\r\nSet-Cookie: b\";",
                "with control or invisible formatting characters",
            ),
            ("add_header X \"a\0b\";", "control"),
            ("add_header X \"a\u{202e}b\";", "invisible"),
            ("add_header X\u{0} y;", "not a header name"),
            ("proxy_set_header Content-Length 0;", "touch content-length"),
            (
                "more_set_headers \"Transfer-Encoding: chunked\";",
                "touch transfer-encoding",
            ),
            ("proxy_set_header Connection close;", "touch connection"),
            ("proxy_set_header Upgrade websocket;", "touch upgrade"),
            ("proxy_set_header Keep-Alive 5;", "touch keep-alive"),
            ("add_header Trailer x;", "touch trailer"),
            ("proxy_set_header TE trailers;", "touch te"),
            (
                "more_set_headers \"Proxy-Authorization: x\";",
                "touch proxy-authorization",
            ),
            ("more_clear_input_headers Host;", "touch host"),
            ("more_set_input_headers 'Host: a';", "touch host"),
            ("proxy_set_header Host \"\";", "touch host"),
            ("add_header Host a;", "touch host"),
            ("more_clear_headers C*;", "touch content-length"),
            ("more_clear_input_headers T*;", "touch transfer-encoding"),
            ("more_clear_headers Pro*;", "touch Proxy-*"),
            ("more_clear_input_headers Proxy-Foo-*;", "touch Proxy-*"),
            ("more_clear_headers '*';", "not a header name"),
            ("more_clear_headers 'X-*-Y';", "not a header name"),
            ("more_set_headers 'X-*: y';", "not a header name"),
            ("proxy_hide_header X-*;", "a wildcard is not allowed here"),
            ("add_header \"X Y\" z;", "not a header name"),
            ("add_header X-A \"\" always;", ""),
            (
                "add_header X y sometimes;",
                "has arguments Sluice does not translate",
            ),
            ("add_header X;", "has arguments Sluice does not translate"),
            ("proxy_http_version 1.0;", "only tunes connections"),
            ("proxy_http_version 2.0;", "has arguments"),
            ("proxy_ssl_server_name off;", "has arguments"),
            ("proxy_set_header Host \"a b\";", "for the host"),
            ("proxy_ssl_name $http_x;", ""),
            (
                "grpc_set_header X y;",
                "is not one of the header directives",
            ),
            (
                "proxy_buffering off;",
                "`proxy_buffering off` only tunes buffering, which Sluice does not take from a \
                 snippet",
            ),
            (
                "client_max_body_size $x;",
                "`client_max_body_size $x` has arguments other than the simple values",
            ),
            ("location / { add_header X y; }", "is a block"),
            ("add_header X \"y;", "a quote is not closed"),
            ("}", "no matching '{'"),
            (&long, "longer than 8192 bytes"),
            (&many, "Sluice translates at most 64"),
        ];
        for (text, want) in cases {
            match translate(text, Context::Location) {
                // Forms that are in the subset after all: an empty add_header is nothing
                // (as nginx), $http_x is a typed variable a host template checks per request.
                Ok(t) if want.is_empty() => {
                    assert!(t.headers.response_set.is_empty(), "{text}");
                }
                Ok(t) => panic!("{text:?}: translated to {t:?}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        !want.is_empty() && message.contains(want),
                        "{text:?}: {message:?} lacks {want:?}"
                    );
                    // Every message is one printable line.
                    assert!(!grammar::has_control(&message), "{message:?}");
                    assert!(message.chars().count() < 300, "{message:?}");
                }
            }
        }
    }

    #[test]
    fn hostile_inputs_are_bounded() {
        // 100 KB of nesting, braces, quotes and directives: each read in linear time, without
        // deep recursion, and never translated into anything.
        let hostile = [
            "{".repeat(100_000),
            "}".repeat(100_000),
            "a {".repeat(50_000),
            format!("{}{}", "if ($a) { ".repeat(10_000), "}".repeat(10_000)),
            format!("access_by_lua_block {}", "{".repeat(100_000)),
            format!(
                "access_by_lua_block {} ngx.exit(403) {};",
                "{".repeat(50_000),
                "}".repeat(50_000)
            ),
            format!("add_header X \"{}", "a".repeat(100_000)),
            "more_set_headers \"X: y\";\n".repeat(4_000),
            format!("add_header X {};", "${".repeat(30_000)),
            "\\".repeat(100_000),
        ];
        for text in &hostile {
            assert!(
                translate(text, Context::Location).is_err(),
                "{}",
                &text[..20]
            );
            // Assessed without overflowing the stack, whatever the answer.
            let _ = assess(text, Context::Server);
        }
        // Deep nesting is refused by the bound, with a reason.
        assert!(unsafe_reason(&"a {".repeat(50_000), Context::Server).contains("too deeply"));
        // 100 KB of comment is an empty snippet.
        assert!(translated(&"#".repeat(100_000)).headers.is_empty());
    }

    #[test]
    fn translated_values_expand_without_control_characters() {
        let t = translated(
            "more_set_headers \"X-Client: $remote_addr $http_x_evil\";\n\
             proxy_set_header X-Cookie \"$cookie_c\";",
        );
        let vars = StaticVars(vec![
            (Var::RemoteAddr, "192.0.2.1".into()),
            (
                Var::Header("x-evil".into()),
                "a\r\nSet-Cookie: x=1\0".into(),
            ),
            (Var::Cookie("c".into()), "\n".into()),
        ]);
        assert_eq!(
            t.headers.response_set[0].value.expand(&vars).as_deref(),
            Ok("192.0.2.1 aSet-Cookie: x=1")
        );
        assert_eq!(t.headers.request_set[0].1.expand(&vars).as_deref(), Ok(""));
    }

    #[test]
    fn shown_directives_are_printable_and_short() {
        let d = Directive {
            name: "add\u{202e}header".into(),
            args: vec!["X\r\nY".into(), "z".repeat(200)],
            block: None,
        };
        let shown = d.shown();
        assert!(!grammar::has_control(&shown), "{shown:?}");
        assert!(shown.chars().count() <= 63, "{shown:?}");
        assert!(shown.contains("\"X\\r\\nY\""), "{shown:?}");
    }

    fn harmless(text: &str) -> (String, Vec<Tuning>) {
        match assess(text, Context::Location) {
            Assessment::Harmless { what, tuning, .. } => (what, tuning),
            other => panic!("{text:?}: expected harmless, got {other:?}"),
        }
    }

    /// Every vetted directive, as real snippets write it: harmless to drop, never translated,
    /// with the annotation to use instead where Sluice has one.
    #[test]
    fn every_tuning_directive_is_harmless() {
        // The directive, and the annotation to use instead with its value, if any.
        type Case = (&'static str, Option<(&'static str, Option<&'static str>)>);
        let cases: &[Case] = &[
            (
                "proxy_buffering off;",
                Some(("proxy-buffering", Some("off"))),
            ),
            (
                "proxy_request_buffering off;",
                Some(("proxy-request-buffering", Some("off"))),
            ),
            (
                "proxy_buffer_size 16k;",
                Some(("proxy-buffer-size", Some("16k"))),
            ),
            ("proxy_buffers 4 32k;", None),
            ("proxy_busy_buffers_size 64k;", None),
            ("proxy_max_temp_file_size 0;", None),
            ("proxy_temp_file_write_size 64k;", None),
            ("client_body_buffer_size 1m;", None),
            ("client_header_buffer_size 4k;", None),
            ("large_client_header_buffers 4 16k;", None),
            (
                "client_max_body_size 100m;",
                Some(("proxy-body-size", Some("100m"))),
            ),
            (
                "client_max_body_size 0;",
                Some(("proxy-body-size", Some("0"))),
            ),
            (
                "proxy_read_timeout 3600;",
                Some(("proxy-read-timeout", Some("3600"))),
            ),
            (
                "proxy_send_timeout 3600s;",
                Some(("proxy-send-timeout", Some("3600s"))),
            ),
            (
                "proxy_connect_timeout 10s;",
                Some(("proxy-connect-timeout", Some("10s"))),
            ),
            // A compound time is fine to drop; the annotation wants it rewritten.
            (
                "proxy_read_timeout 1h30m;",
                Some(("proxy-read-timeout", None)),
            ),
            ("client_body_timeout 60s;", None),
            ("client_header_timeout 60s;", None),
            ("send_timeout 300;", None),
            ("keepalive_timeout 75s 60s;", None),
            (
                "proxy_http_version 1.0;",
                Some(("proxy-http-version", Some("1.0"))),
            ),
            ("chunked_transfer_encoding off;", None),
            ("tcp_nodelay on;", None),
            ("tcp_nopush on;", None),
            ("sendfile on;", None),
            ("gzip on;", None),
            (
                "gzip_types text/plain application/json image/svg+xml text/*;",
                None,
            ),
            ("gzip_comp_level 5;", None),
            ("gzip_min_length 256;", None),
            ("gzip_vary on;", None),
            ("gzip_proxied expired no-cache no-store private auth;", None),
            ("expires 1h;", None),
            ("expires modified -1;", None),
            ("expires epoch;", None),
            ("etag off;", None),
            (
                "proxy_cache_bypass $http_pragma $cookie_nocache$arg_nocache;",
                None,
            ),
            ("proxy_no_cache 1;", None),
            ("charset utf-8;", None),
            ("access_log off;", None),
            ("log_not_found off;", None),
            ("server_tokens off;", None),
            ("proxy_intercept_errors on;", None),
            ("proxy_redirect off;", None),
        ];
        let mut covered = Vec::new();
        for (text, instead) in cases {
            let (what, tuning) = harmless(text);
            assert_eq!(tuning.len(), 1, "{text}");
            let shown = text.trim_end_matches(';');
            assert_eq!(tuning[0].directive, shown, "{text}");
            let name = shown.split(' ').next().unwrap();
            assert_eq!(
                what,
                format!("tunes performance, caching or logging ({name})"),
                "{text}"
            );
            let got = tuning[0]
                .instead
                .as_ref()
                .map(|i| (i.key, i.value.as_deref()));
            assert_eq!(got, *instead, "{text}");
            // Harmless, but outside the translated subset: the snippet is not translated.
            let e = untranslated(text);
            assert_eq!(e.directive.as_deref(), Some(shown), "{text}");
            assert!(e.why.starts_with("only "), "{text}: {e}");
            // In a server snippet and at http level too.
            assert!(
                matches!(assess(text, Context::Server), Assessment::Harmless { .. }),
                "{text}"
            );
            covered.push(name);
        }
        // The table and the list above stay in step.
        for spec in TUNING {
            assert!(covered.contains(&spec.name), "{} has no case", spec.name);
        }
    }

    /// The annotations suggested instead are ones Sluice applies, and the values suggested
    /// are accepted as written.
    #[test]
    fn suggested_annotations_apply() {
        for spec in TUNING {
            if let Some(key) = spec.annotation {
                assert!(super::super::table::spec(key).is_some(), "{key}");
            }
        }
        for (text, key, value) in [
            ("proxy_buffering off;", "proxy-buffering", "off"),
            ("client_max_body_size 100m;", "proxy-body-size", "100m"),
            ("proxy_read_timeout 3600;", "proxy-read-timeout", "3600"),
            ("proxy_connect_timeout 10s;", "proxy-connect-timeout", "10s"),
            ("proxy_buffer_size 16k;", "proxy-buffer-size", "16k"),
        ] {
            let (_, tuning) = harmless(text);
            let instead = tuning[0].instead.as_ref().unwrap();
            assert_eq!((instead.key, instead.value.as_deref()), (key, Some(value)));
            let annotations = BTreeMap::from([(format!("{NGINX_PREFIX}{key}"), value.to_owned())]);
            let parsed = super::super::parse_annotations(&annotations);
            assert!(parsed.problems.is_empty(), "{key}: {:?}", parsed.problems);
        }
        // Zero is no limit for the body, but no buffer: not suggested as written.
        let (_, tuning) = harmless("proxy_buffer_size 0;");
        assert_eq!(tuning[0].instead.as_ref().unwrap().value, None);
    }

    /// Tuning with headers and what Sluice does itself: still harmless, all listed.
    #[test]
    fn tuning_beside_headers() {
        let text = "proxy_http_version 1.1;\nproxy_set_header Upgrade $http_upgrade;\n\
                    proxy_set_header Connection \"upgrade\";\nproxy_read_timeout 3600;\n\
                    proxy_send_timeout 3600;\nadd_header X-Frame-Options DENY always;";
        match assess(text, Context::Location) {
            Assessment::Harmless {
                what,
                security_headers,
                tuning,
            } => {
                assert_eq!(
                    what,
                    "sets response headers X-Frame-Options; tunes performance, caching or \
                     logging (proxy_read_timeout, proxy_send_timeout)"
                );
                assert_eq!(security_headers, ["X-Frame-Options"]);
                let shown: Vec<&str> = tuning.iter().map(|t| t.directive.as_str()).collect();
                assert_eq!(
                    shown,
                    ["proxy_read_timeout 3600", "proxy_send_timeout 3600"]
                );
            }
            other => panic!("{other:?}"),
        }
        // All or nothing: the header is not translated either; the first tuning directive is
        // named.
        assert_eq!(
            untranslated(text).to_string(),
            "`proxy_read_timeout 3600` only sets a timeout, which Sluice does not take from a \
             snippet"
        );
    }

    /// Near misses: a tuning name is not a free pass. Blocks, variables, odd arguments and
    /// anything beside them that may be an access rule stay unsafe.
    #[test]
    fn tuning_near_misses_stay_unsafe() {
        let cases = [
            ("proxy_buffering off;\ndeny all;", "`deny all` restricts"),
            (
                "client_max_body_size $x;",
                "`client_max_body_size $x` has arguments",
            ),
            ("client_max_body_size ${x};", "has arguments"),
            ("gzip on;\nlocation / { }", "`location /` block"),
            ("expires 1h;\nif ($x) {}", "`if ($x)` block"),
            ("gzip on { }", "`gzip on` block"),
            ("proxy_buffering maybe;", "has arguments"),
            ("proxy_buffering on off;", "has arguments"),
            ("proxy_buffering;", "has arguments"),
            ("proxy_buffer_size 16q;", "has arguments"),
            ("proxy_buffer_size -1;", "has arguments"),
            ("proxy_buffers 4;", "has arguments"),
            ("proxy_read_timeout 1x;", "has arguments"),
            ("proxy_read_timeout s;", "has arguments"),
            ("proxy_read_timeout $t;", "has arguments"),
            ("keepalive_timeout 1 2 3;", "has arguments"),
            ("gzip_types text/$x;", "has arguments"),
            ("gzip_types 'text/plain; x';", "has arguments"),
            ("gzip_proxied everything;", "has arguments"),
            ("expires $expires;", "has arguments"),
            ("expires modified;", "has arguments"),
            ("charset \"utf 8\";", "has arguments"),
            ("charset $charset;", "has arguments"),
            ("access_log /var/log/nginx/app.log;", "has arguments"),
            ("access_log syslog:server=10.0.0.1;", "has arguments"),
            ("proxy_redirect http://a/ http://b/;", "has arguments"),
            ("proxy_cache_bypass $;", "has arguments"),
            ("proxy_cache_bypass \"$a $b\";", "has arguments"),
            ("proxy_no_cache;", "has arguments"),
            ("proxy_http_version 2;", "has arguments"),
            // Not on the list at all.
            ("proxy_pass http://evil;", "sends requests elsewhere"),
            ("satisfy any;", "combines access rules"),
            ("include /etc/nginx/x.conf;", "includes other configuration"),
            ("load_module /tmp/x.so;", "is not a header directive"),
            ("ssl_protocols TLSv1;", "is not a header directive"),
            ("ssl_verify_client off;", "checks client certificates"),
            ("proxy_ssl_verify off;", "is not a header directive"),
            ("js_content main.handler;", "is not a header directive"),
            ("perl_set $x 'sub { }';", "is not a header directive"),
            ("set $x 1;\nproxy_buffering off;", "sets variables"),
            ("error_page 502 = @fallback;", "changes error answers"),
            ("proxy_cache my_zone;", "is not a header directive"),
            (
                "proxy_buffering off;\nproxy_set_header X-Remote-User admin;",
                "which a backend may trust for identity",
            ),
            (
                "gzip on;\naccess_by_lua_block { ngx.exit(403) }",
                "runs Lua code",
            ),
        ];
        for (text, want) in cases {
            let reason = unsafe_reason(text, Context::Location);
            assert!(reason.contains(want), "{text:?}: {reason:?} lacks {want:?}");
            assert!(translate(text, Context::Location).is_err(), "{text:?}");
        }
    }

    #[test]
    fn tuning_argument_readers() {
        for ok in ["0", "60", "10s", "500ms", "1h30m", "2d", "1y", "1M"] {
            assert!(is_time(ok), "{ok}");
        }
        for bad in ["", "s", "1x", "1 s", "-1", "1.5s", "$t", &"1".repeat(33)] {
            assert!(!is_time(bad), "{bad}");
        }
        for ok in ["0", "16k", "100M", "1g", "4096"] {
            assert!(is_size(ok), "{ok}");
        }
        for bad in ["", "k", "16kb", "-1", "1.5m", "$s", "1234567890123"] {
            assert!(!is_size(bad), "{bad}");
        }
        for ok in [
            "*",
            "text/plain",
            "text/*",
            "image/svg+xml",
            "application/vnd.api+json",
        ] {
            assert!(is_mime_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text",
            "/plain",
            "text/",
            "*/*x",
            "text/$x",
            "text/plain;q=1",
        ] {
            assert!(!is_mime_type(bad), "{bad}");
        }
        for ok in [
            "1",
            "$http_pragma",
            "$cookie_nocache$arg_nocache",
            "x$a.b",
            "-",
        ] {
            assert!(is_condition(ok), "{ok}");
        }
        for bad in ["", "$", "${a}", "$a b", "a$", "$-", "\"x\""] {
            assert!(!is_condition(bad), "{bad}");
        }
    }

    #[test]
    fn blank_snippets() {
        assert!(is_blank(""));
        assert!(is_blank("  \n# SecRuleEngine On\n\t\n"));
        assert!(!is_blank("SecRuleEngine Off"));
        assert!(!is_blank("# a\nproxy_set_header X y;"));
    }
}
