//! Typed nginx-variable templates: `https://auth.example.com/start?rd=$escaped_request_uri`.
//!
//! ingress-nginx pasted such values into nginx.conf and let nginx interpolate them, which is how
//! user text became configuration. Sluice parses a template once, when the Ingress is read, into
//! literal parts and typed [`Var`]s, each tagged with the place it stands in (the URL's
//! authority, path, query or fragment; a Host name; a header value). Per request,
//! [`Template::expand`] asks a [`RequestVars`] for each variable's value and escapes it for
//! that place. There is no string templating anywhere: a value can never become syntax.
//!
//! What each kind of template guarantees about its expansion:
//!
//! - [`TemplateKind::Url`] and [`TemplateKind::Rewrite`]: only printable ASCII without space
//!   (`0x21..=0x7E`), no `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`; variable values are
//!   percent-encoded for their place, so a value cannot add a path segment `..`, end the path
//!   early, or add query parameters (except `$args`, which is the request's own query string,
//!   and `$request_uri` in the path, which is the request's own path and query).
//! - [`TemplateKind::Host`]: only letters, digits, `.`, `-`, `_`, `:`, `[`, `]`; a variable
//!   whose value has anything else fails the expansion ([`ExpandError`]).
//! - [`TemplateKind::HeaderValue`]: no control character at all (CR, LF, NUL, ... are
//!   removed), so a value can never split a header.

use std::borrow::Cow;
use std::fmt;

/// A variable of the fixed set Sluice supports, named as in nginx.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Var {
    /// `$scheme`: `http` or `https`, as the client connected.
    Scheme,
    /// `$host`: the request's host name, lowercase, without port.
    Host,
    /// `$http_host`: the `Host` header (or HTTP/2 `:authority`) as sent, with port.
    HttpHost,
    /// `$request_uri`: the original request target, path and query, as sent (still
    /// percent-encoded).
    RequestUri,
    /// `$escaped_request_uri`: `$request_uri` percent-encoded as one URL component (the value
    /// ingress-nginx computes with `ngx.escape_uri`), for use as a query parameter value.
    /// Derived from [`Var::RequestUri`] by the expansion: [`RequestVars`] is never asked for it.
    EscapedRequestUri,
    /// `$uri`: the request path, percent-decoded and normalised, without query.
    Uri,
    /// `$args`: the request's query string without `?` (still percent-encoded).
    Args,
    /// `$remote_addr`: the client address (after real-IP processing).
    RemoteAddr,
    /// `$http_<name>`: a request header; the name is stored lowercase with `_` turned into
    /// `-`, as nginx matches it (`$http_x_user` reads `X-User`).
    Header(String),
    /// `$cookie_<name>`: a request cookie, name as written.
    Cookie(String),
    /// `$service_name`: the name of the Service the matched path routes to.
    ServiceName,
    /// `$namespace`: the namespace of the Ingress.
    Namespace,
    /// `$1` to `$9`: a capture group of the matched path regex (`rewrite-target` only).
    Capture(u8),
}

impl Var {
    /// The nginx spelling, with `$`.
    pub fn nginx_name(&self) -> String {
        match self {
            Var::Scheme => "$scheme".into(),
            Var::Host => "$host".into(),
            Var::HttpHost => "$http_host".into(),
            Var::RequestUri => "$request_uri".into(),
            Var::EscapedRequestUri => "$escaped_request_uri".into(),
            Var::Uri => "$uri".into(),
            Var::Args => "$args".into(),
            Var::RemoteAddr => "$remote_addr".into(),
            Var::Header(name) => format!("$http_{}", name.replace('-', "_")),
            Var::Cookie(name) => format!("$cookie_{name}"),
            Var::ServiceName => "$service_name".into(),
            Var::Namespace => "$namespace".into(),
            Var::Capture(n) => format!("${n}"),
        }
    }

    /// How the value arrives from [`RequestVars`]: already URL-encoded text taken from the
    /// request line, or plain text. This decides how it is escaped.
    fn encoding(&self) -> ValueEncoding {
        match self {
            Var::RequestUri | Var::Args | Var::Capture(_) => ValueEncoding::UriText,
            Var::EscapedRequestUri => ValueEncoding::Escaped,
            _ => ValueEncoding::Plain,
        }
    }

    /// Parses the name after `$` (without braces). `captures` allows `1`..`9`.
    fn from_name(name: &str, captures: bool) -> Option<Var> {
        let var = match name {
            "scheme" => Var::Scheme,
            "host" => Var::Host,
            "http_host" => Var::HttpHost,
            "request_uri" => Var::RequestUri,
            "escaped_request_uri" => Var::EscapedRequestUri,
            "uri" => Var::Uri,
            "args" => Var::Args,
            "remote_addr" => Var::RemoteAddr,
            "service_name" => Var::ServiceName,
            "namespace" => Var::Namespace,
            _ => {
                if let Some(header) = name.strip_prefix("http_").filter(|h| !h.is_empty()) {
                    Var::Header(header.to_ascii_lowercase().replace('_', "-"))
                } else if let Some(cookie) = name.strip_prefix("cookie_").filter(|c| !c.is_empty())
                {
                    Var::Cookie(cookie.to_owned())
                } else if captures && name.len() == 1 && matches!(name.as_bytes()[0], b'1'..=b'9') {
                    Var::Capture(name.as_bytes()[0] - b'0')
                } else {
                    return None;
                }
            }
        };
        Some(var)
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.nginx_name())
    }
}

/// The variables of the templates Sluice supports, for messages and the reference.
pub const SUPPORTED_VARIABLES: &str = "$scheme, $host, $http_host, $request_uri, \
$escaped_request_uri, $uri, $args, $remote_addr, $http_<name>, $cookie_<name>, $service_name, \
$namespace";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueEncoding {
    /// Text from the request line, already percent-encoded where the client encoded it.
    UriText,
    /// Already a percent-encoded component.
    Escaped,
    /// Plain text that must be encoded before it goes into a URL.
    Plain,
}

/// Where in its template a part stands; decides how a variable's value is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The URL's host and port (after `scheme://`), or a Host template.
    Authority,
    /// The URL's path.
    Path,
    /// The URL's query (after `?`).
    Query,
    /// The URL's fragment (after `#`).
    Fragment,
    /// A header value.
    HeaderValue,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Piece {
    /// Text copied as written (validated when the template was parsed).
    Literal(String),
    /// A variable expanded per request.
    Var(Var),
}

/// One piece and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Part {
    /// What to insert.
    pub piece: Piece,
    /// Where it goes, which decides the escaping.
    pub context: Context,
}

/// What a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// An absolute `http://` or `https://` URL (redirects, external auth).
    Url,
    /// A path starting with `/`, with `$1`..`$9` (rewrite-target).
    Rewrite,
    /// A host name with optional port (upstream-vhost).
    Host,
    /// A header value.
    HeaderValue,
}

/// Why a template could not be parsed. The messages say what is wrong; the annotation's expected
/// form is added by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `$name` that is not one of the supported variables.
    #[error("unknown variable ${0} (supported: {SUPPORTED_VARIABLES})")]
    UnknownVariable(String),
    /// `$1` outside rewrite-target.
    #[error("capture group ${0} is only meaningful in rewrite-target")]
    CaptureOutsideRewrite(String),
    /// `$` not followed by a name, or `${` without `}`.
    #[error("'$' must start a variable such as $host or ${{host}}")]
    BareDollar,
    /// A character that is not allowed where it stands.
    #[error("{0:?} is not allowed in the {1}; percent-encode it")]
    Character(char, &'static str),
    /// `%` not followed by two hex digits.
    #[error("'%' must be followed by two hex digits")]
    PercentEncoding,
    /// Not `http://` or `https://`.
    #[error("must start with http:// or https://")]
    Scheme,
    /// Nothing between `://` and the path.
    #[error("has no host")]
    EmptyHost,
    /// `user@host`: credentials in a URL are refused (they also hide the real host).
    #[error("user information (user@host) is not allowed")]
    UserInfo,
    /// Not starting with `/`.
    #[error("must start with '/'")]
    Relative,
    /// The template is empty.
    #[error("must not be empty")]
    Empty,
}

/// Why a template could not be expanded for one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A variable in a host position has characters a host cannot have.
    #[error("{var} has a value that is not a valid host")]
    InvalidHost {
        /// The variable, nginx spelling.
        var: String,
    },
    /// The host expanded to nothing.
    #[error("the host is empty")]
    EmptyHost,
}

/// The values of the variables for one request. The data plane implements it on its request
/// context; values are returned raw (see each [`Var`] for what "raw" is) and escaped by the
/// template, never by the implementor.
pub trait RequestVars {
    /// The value of `var` for this request; `None` expands to nothing, as in nginx.
    fn var(&self, var: &Var) -> Option<Cow<'_, str>>;
}

/// A parsed template. Build it with [`Template::parse`]; expand it per request with
/// [`Template::expand`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    kind: TemplateKind,
    source: String,
    /// `http://` or `https://` for URLs, else empty.
    scheme: &'static str,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source` as a template of `kind`.
    pub fn parse(kind: TemplateKind, source: &str) -> Result<Template, TemplateError> {
        if source.is_empty() {
            return Err(TemplateError::Empty);
        }
        let pieces = split_pieces(source, kind == TemplateKind::Rewrite)?;
        let mut scheme = "";
        let parts = match kind {
            TemplateKind::Url => {
                let (s, parts) = url_parts(pieces)?;
                scheme = s;
                parts
            }
            TemplateKind::Rewrite => {
                if !source.starts_with('/') {
                    return Err(TemplateError::Relative);
                }
                uri_parts(pieces, Context::Path)?
            }
            TemplateKind::Host => host_parts(pieces)?,
            TemplateKind::HeaderValue => pieces
                .into_iter()
                .map(|piece| {
                    if let Piece::Literal(text) = &piece
                        && let Some(c) = text.chars().find(|c| c.is_control())
                    {
                        return Err(TemplateError::Character(c, "header value"));
                    }
                    Ok(Part {
                        piece,
                        context: Context::HeaderValue,
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Template {
            kind,
            source: source.to_owned(),
            scheme,
            parts,
        })
    }

    /// What the template is for.
    pub fn kind(&self) -> TemplateKind {
        self.kind
    }

    /// The annotation value it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// `http://` or `https://` for a URL template, else empty.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The parsed parts after the scheme, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// True when the template has no variables: [`Template::expand`] always returns the same.
    pub fn is_static(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p.piece, Piece::Literal(_)))
    }

    /// The variables the template uses, in order of appearance.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match &p.piece {
            Piece::Var(v) => Some(v),
            Piece::Literal(_) => None,
        })
    }

    /// Expands the template for one request, escaping every variable's value for its place.
    pub fn expand(&self, vars: &dyn RequestVars) -> Result<String, ExpandError> {
        let mut out = String::with_capacity(self.source.len() + 32);
        out.push_str(self.scheme);
        let mut authority_len = 0;
        let mut path_started = self.kind != TemplateKind::Url;
        for part in &self.parts {
            let before = out.len();
            match &part.piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Var(var) => {
                    // $escaped_request_uri is derived here, so every implementor agrees on it.
                    let source = match var {
                        Var::EscapedRequestUri => &Var::RequestUri,
                        other => other,
                    };
                    let value = vars.var(source).unwrap_or_default();
                    escape_into(&mut out, var, &value, part.context)?;
                }
            }
            match part.context {
                Context::Authority => authority_len += out.len() - before,
                // A variable that starts a URL's path ($request_uri, $uri) must start with '/',
                // or its value would run into the host.
                Context::Path if !path_started => {
                    path_started = true;
                    if !out[before..].starts_with('/') {
                        out.insert(before, '/');
                    }
                }
                _ => path_started = true,
            }
        }
        let has_authority = matches!(self.kind, TemplateKind::Url | TemplateKind::Host);
        if has_authority && authority_len == 0 {
            return Err(ExpandError::EmptyHost);
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Splits `source` into literal text and variables (`$name`, `${name}`).
fn split_pieces(source: &str, captures: bool) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = source;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').ok_or(TemplateError::BareDollar)?;
            (&braced[..end], end + 2)
        } else {
            // nginx reads the longest run of name characters; a capture is a single digit.
            let len = if after.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                1
            } else {
                after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len())
            };
            (&after[..len], len)
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(TemplateError::BareDollar);
        }
        let var = Var::from_name(name, captures).ok_or_else(|| {
            if name.bytes().all(|b| b.is_ascii_digit()) {
                if captures {
                    TemplateError::UnknownVariable(name.to_owned())
                } else {
                    TemplateError::CaptureOutsideRewrite(name.to_owned())
                }
            } else {
                TemplateError::UnknownVariable(name.to_owned())
            }
        })?;
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Var(var));
        rest = &after[consumed..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// An absolute URL: `http(s)://` then authority, path, query, fragment. Returns the scheme
/// and the parts after it.
fn url_parts(pieces: Vec<Piece>) -> Result<(&'static str, Vec<Part>), TemplateError> {
    let mut pieces = pieces.into_iter();
    let first = match pieces.next() {
        Some(Piece::Literal(text)) => text,
        _ => return Err(TemplateError::Scheme),
    };
    let (scheme, rest) = if let Some(rest) = first.strip_prefix("https://") {
        ("https://", rest)
    } else if let Some(rest) = first.strip_prefix("http://") {
        ("http://", rest)
    } else {
        return Err(TemplateError::Scheme);
    };
    let mut parts = Vec::new();
    let mut remaining = Vec::new();
    if !rest.is_empty() {
        remaining.push(Piece::Literal(rest.to_owned()));
    }
    remaining.extend(pieces);

    // Authority: literal host characters and variables until '/', '?' or '#' (or a variable
    // that starts the path, such as $request_uri).
    let mut authority_empty = true;
    let mut iter = remaining.into_iter().peekable();
    let mut tail: Vec<Piece> = Vec::new();
    while let Some(piece) = iter.next() {
        match piece {
            Piece::Literal(text) => {
                let end = text.find(['/', '?', '#']).unwrap_or(text.len());
                let host = &text[..end];
                check_host_literal(host, true)?;
                if !host.is_empty() {
                    authority_empty = false;
                    parts.push(Part {
                        piece: Piece::Literal(host.to_owned()),
                        context: Context::Authority,
                    });
                }
                if end < text.len() {
                    tail.push(Piece::Literal(text[end..].to_owned()));
                    tail.extend(iter.by_ref());
                    break;
                }
            }
            Piece::Var(var @ (Var::RequestUri | Var::Uri | Var::EscapedRequestUri)) => {
                // These start with '/': the path begins here.
                tail.push(Piece::Var(var));
                tail.extend(iter.by_ref());
                break;
            }
            Piece::Var(var) => {
                authority_empty = false;
                parts.push(Part {
                    piece: Piece::Var(var),
                    context: Context::Authority,
                });
            }
        }
    }
    if authority_empty {
        return Err(TemplateError::EmptyHost);
    }
    parts.extend(uri_parts(tail, Context::Path)?);
    Ok((scheme, parts))
}

/// Path, query and fragment, starting in `context`.
fn uri_parts(pieces: Vec<Piece>, mut context: Context) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => {
                check_percent(&text)?;
                // Split the literal where it moves from path to query to fragment.
                let mut start = 0;
                for (i, c) in text.char_indices() {
                    let next = match (c, context) {
                        ('?', Context::Path) => Context::Query,
                        ('#', Context::Path | Context::Query) => Context::Fragment,
                        _ => {
                            check_uri_char(c, context)?;
                            continue;
                        }
                    };
                    if i > start {
                        parts.push(Part {
                            piece: Piece::Literal(text[start..i].to_owned()),
                            context,
                        });
                    }
                    start = i;
                    context = next;
                }
                if start < text.len() {
                    parts.push(Part {
                        piece: Piece::Literal(text[start..].to_owned()),
                        context,
                    });
                }
            }
            Piece::Var(var) => {
                let after = match (&var, context) {
                    // $request_uri carries the request's own query: what follows is query.
                    (Var::RequestUri, Context::Path) => Context::Query,
                    _ => context,
                };
                parts.push(Part {
                    piece: Piece::Var(var),
                    context,
                });
                context = after;
            }
        }
    }
    Ok(parts)
}

/// A Host template: host characters and variables.
fn host_parts(pieces: Vec<Piece>) -> Result<Vec<Part>, TemplateError> {
    pieces
        .into_iter()
        .map(|piece| {
            if let Piece::Literal(text) = &piece {
                check_host_literal(text, false)?;
            }
            Ok(Part {
                piece,
                context: Context::Authority,
            })
        })
        .collect()
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
}

fn check_host_literal(text: &str, in_url: bool) -> Result<(), TemplateError> {
    if in_url && text.contains('@') {
        return Err(TemplateError::UserInfo);
    }
    match text.chars().find(|c| !is_host_char(*c)) {
        Some(c) => Err(TemplateError::Character(c, "host")),
        None => Ok(()),
    }
}

/// RFC 3986 characters allowed as written in a path, query or fragment (besides `%XX`).
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | ':'
                | '@'
                | '/'
                | '?'
                | '%'
        )
}

fn check_uri_char(c: char, context: Context) -> Result<(), TemplateError> {
    if is_uri_char(c) {
        return Ok(());
    }
    let place = match context {
        Context::Path => "path",
        Context::Query => "query",
        _ => "fragment",
    };
    Err(TemplateError::Character(c, place))
}

fn check_percent(text: &str) -> Result<(), TemplateError> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' && !is_pct_triplet(bytes, i) {
            return Err(TemplateError::PercentEncoding);
        }
    }
    Ok(())
}

fn is_pct_triplet(bytes: &[u8], i: usize) -> bool {
    bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit()
}

/// Bytes kept as they are when a value is encoded as one URL component (RFC 3986 unreserved).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` minus `%`: unreserved, sub-delims, `:` and `@`.
fn is_pchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_pct(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Percent-encodes `value` keeping the bytes `keep` accepts; an existing `%XX` is kept when
/// `keep_escapes` (text that is already encoded), otherwise `%` itself is encoded.
fn encode_into(out: &mut String, value: &str, keep: impl Fn(u8) -> bool, keep_escapes: bool) {
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if keep(b) || (keep_escapes && b == b'%' && is_pct_triplet(bytes, i)) {
            out.push(char::from(b));
        } else {
            push_pct(out, b);
        }
    }
}

/// Escapes one variable's value for its place.
fn escape_into(
    out: &mut String,
    var: &Var,
    value: &str,
    context: Context,
) -> Result<(), ExpandError> {
    let component = |out: &mut String, v: &str| encode_into(out, v, is_unreserved, false);
    match context {
        Context::Authority => {
            if value.chars().all(is_host_char) {
                out.push_str(value);
                Ok(())
            } else {
                Err(ExpandError::InvalidHost {
                    var: var.nginx_name(),
                })
            }
        }
        Context::HeaderValue => {
            // Control characters (CR, LF, NUL, DEL, ...) could end or split the header.
            out.extend(value.chars().filter(|c| !c.is_control()));
            Ok(())
        }
        Context::Path => {
            match (var, var.encoding()) {
                // The request's own target: its '?' starts the query, as in the original.
                (Var::RequestUri, _) => {
                    encode_into(out, value, |b| is_pchar(b) || b == b'/' || b == b'?', true)
                }
                (_, ValueEncoding::UriText) => {
                    encode_into(out, value, |b| is_pchar(b) || b == b'/', true)
                }
                (Var::Uri, _) => encode_into(out, value, |b| is_pchar(b) || b == b'/', false),
                (_, ValueEncoding::Escaped) => component(out, value),
                (_, ValueEncoding::Plain) => {
                    // A plain value is one path segment: '/' is encoded, and a value of only
                    // dots is encoded so it cannot become a `.`/`..` segment.
                    if !value.is_empty() && value.bytes().all(|b| b == b'.') {
                        value.bytes().for_each(|b| push_pct(out, b));
                    } else {
                        component(out, value);
                    }
                }
            }
            Ok(())
        }
        Context::Query | Context::Fragment => {
            match var {
                // The request's own query string stays a query string; only what cannot
                // stand in a query ('#', spaces, quotes, ...) is encoded.
                Var::Args => {
                    encode_into(out, value, |b| is_pchar(b) || b == b'/' || b == b'?', true)
                }
                // Everything else is one query value: '&', '=', '#' and '%' are encoded too.
                _ => component(out, value),
            }
            Ok(())
        }
    }
}

/// Encodes `value` as one URL component (everything but `A-Za-z0-9-._~`), the way
/// [`Var::EscapedRequestUri`] is derived from [`Var::RequestUri`].
pub fn escape_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    encode_into(&mut out, value, is_unreserved, false);
    out
}

/// A [`RequestVars`] backed by fixed values, for tests and examples.
#[derive(Debug, Clone, Default)]
pub struct StaticVars(pub Vec<(Var, String)>);

impl RequestVars for StaticVars {
    fn var(&self, var: &Var) -> Option<Cow<'_, str>> {
        self.0
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, value)| Cow::Borrowed(value.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> StaticVars {
        StaticVars(vec![
            (Var::Scheme, "https".into()),
            (Var::Host, "app.example.com".into()),
            (Var::HttpHost, "app.example.com:8443".into()),
            (Var::RequestUri, "/a%20b/c?x=1&y=2".into()),
            (Var::Uri, "/a b/c".into()),
            (Var::Args, "x=1&y=2".into()),
            (Var::RemoteAddr, "192.0.2.7".into()),
            (Var::Header("x-user".into()), "alice & bob".into()),
            (Var::Cookie("session".into()), "s\"1;2".into()),
            (Var::ServiceName, "web".into()),
            (Var::Namespace, "shop".into()),
            (Var::Capture(1), "/".into()),
            (Var::Capture(2), "v1/items%2F3".into()),
        ])
    }

    #[test]
    fn url_expansion_table() {
        let cases = [
            (
                "https://auth.example.com/oauth2/start?rd=$scheme://$http_host$request_uri",
                "https://auth.example.com/oauth2/start?rd=https://app.example.com%3A8443%2Fa%2520b%2Fc%3Fx%3D1%26y%3D2",
            ),
            (
                "https://auth.example.com/oauth2/start?rd=$escaped_request_uri",
                "https://auth.example.com/oauth2/start?rd=%2Fa%2520b%2Fc%3Fx%3D1%26y%3D2",
            ),
            // The canonical redirect keeps the request's path and query as sent.
            (
                "https://new.example.com$request_uri",
                "https://new.example.com/a%20b/c?x=1&y=2",
            ),
            (
                "https://new.example.com$uri?$args",
                "https://new.example.com/a%20b/c?x=1&y=2",
            ),
            (
                "https://$host/oauth2/auth",
                "https://app.example.com/oauth2/auth",
            ),
            (
                "http://${service_name}.${namespace}.svc:8080/check",
                "http://web.shop.svc:8080/check",
            ),
            (
                "https://x.example/u/$http_x_user?c=$cookie_session&ip=$remote_addr",
                "https://x.example/u/alice%20%26%20bob?c=s%221%3B2&ip=192.0.2.7",
            ),
            (
                "https://x.example/#$host",
                "https://x.example/#app.example.com",
            ),
            ("https://x.example", "https://x.example"),
        ];
        for (template, want) in cases {
            let t = Template::parse(TemplateKind::Url, template)
                .unwrap_or_else(|e| panic!("{template}: {e}"));
            assert_eq!(t.expand(&vars()).as_deref(), Ok(want), "{template}");
        }
    }

    #[test]
    fn rewrite_expansion_table() {
        let cases = [
            ("/$2", "/v1/items%2F3"),
            ("/", "/"),
            ("/api$1$2", "/api/v1/items%2F3"),
            ("/new/$2?from=$1", "/new/v1/items%2F3?from=%2F"),
            ("/x/$3", "/x/"),
        ];
        for (template, want) in cases {
            let t = Template::parse(TemplateKind::Rewrite, template)
                .unwrap_or_else(|e| panic!("{template}: {e}"));
            assert_eq!(t.expand(&vars()).as_deref(), Ok(want), "{template}");
        }
    }

    #[test]
    fn host_and_header_expansion() {
        let host = Template::parse(TemplateKind::Host, "$service_name.$namespace.svc").unwrap();
        assert_eq!(host.expand(&vars()).as_deref(), Ok("web.shop.svc"));
        let evil = Template::parse(TemplateKind::Host, "$http_x_user").unwrap();
        assert_eq!(
            evil.expand(&vars()),
            Err(ExpandError::InvalidHost {
                var: "$http_x_user".into()
            })
        );
        let empty = Template::parse(TemplateKind::Host, "$http_missing").unwrap();
        assert_eq!(empty.expand(&vars()), Err(ExpandError::EmptyHost));

        let header = Template::parse(TemplateKind::HeaderValue, "user=$http_x_user").unwrap();
        let hostile = StaticVars(vec![(
            Var::Header("x-user".into()),
            "a\r\nSet-Cookie: x=1\0\u{7f}".into(),
        )]);
        assert_eq!(
            header.expand(&hostile).as_deref(),
            Ok("user=aSet-Cookie: x=1")
        );
    }

    #[test]
    fn parse_errors_table() {
        use TemplateError as E;
        let cases: &[(TemplateKind, &str, TemplateError)] = &[
            (
                TemplateKind::Url,
                "https://x/$foo",
                E::UnknownVariable("foo".into()),
            ),
            (
                TemplateKind::Url,
                "https://x/$hostname",
                E::UnknownVariable("hostname".into()),
            ),
            (
                TemplateKind::Url,
                "https://x/$1",
                E::CaptureOutsideRewrite("1".into()),
            ),
            (TemplateKind::Url, "https://x/$", E::BareDollar),
            (TemplateKind::Url, "https://x/${host", E::BareDollar),
            (TemplateKind::Url, "https://x/$-", E::BareDollar),
            (TemplateKind::Url, "ftp://x/", E::Scheme),
            (TemplateKind::Url, "//x/", E::Scheme),
            (TemplateKind::Url, "$scheme://x/", E::Scheme),
            (TemplateKind::Url, "https:///path", E::EmptyHost),
            (TemplateKind::Url, "https://user@evil.example/", E::UserInfo),
            (
                TemplateKind::Url,
                "https://x/a b",
                E::Character(' ', "path"),
            ),
            (
                TemplateKind::Url,
                "https://x/a\"b",
                E::Character('"', "path"),
            ),
            (
                TemplateKind::Url,
                "https://x/?a={b}",
                E::Character('{', "query"),
            ),
            (
                TemplateKind::Url,
                "https://x/a\r\nb",
                E::Character('\r', "path"),
            ),
            (TemplateKind::Url, "https://x/%zz", E::PercentEncoding),
            (TemplateKind::Url, "https://x;y/", E::Character(';', "host")),
            (TemplateKind::Url, "", E::Empty),
            (TemplateKind::Rewrite, "api/$1", E::Relative),
            (TemplateKind::Rewrite, "/$0", E::UnknownVariable("0".into())),
            (TemplateKind::Host, "a b", E::Character(' ', "host")),
            (TemplateKind::Host, "x/y", E::Character('/', "host")),
            (
                TemplateKind::HeaderValue,
                "a\nb",
                E::Character('\n', "header value"),
            ),
        ];
        for (kind, source, want) in cases {
            assert_eq!(
                Template::parse(*kind, source).as_ref().err(),
                Some(want),
                "{kind:?} {source:?}"
            );
        }
    }

    #[test]
    fn variables_are_typed() {
        let t = Template::parse(
            TemplateKind::Url,
            "https://a.example/${uri}x?h=$http_X_Forwarded_For&c=$cookie_Session_ID",
        )
        .unwrap();
        let vars: Vec<_> = t.vars().cloned().collect();
        assert_eq!(
            vars,
            [
                Var::Uri,
                Var::Header("x-forwarded-for".into()),
                Var::Cookie("Session_ID".into())
            ]
        );
        assert!(!t.is_static());
        assert!(
            Template::parse(TemplateKind::Url, "https://a.example/")
                .unwrap()
                .is_static()
        );
        assert_eq!(Var::Header("x-user".into()).to_string(), "$http_x_user");
    }

    #[test]
    fn hostile_values_cannot_break_out_of_their_place() {
        let hostile = [
            "\r\nSet-Cookie: a=b",
            "../../admin",
            "..",
            "x#frag",
            "a?b=c&d=e",
            "\"'<>{}|\\^`",
            "\0",
            " ",
            "%",
            "%0d%0a",
            "\u{202e}\u{200b}é",
        ];
        // (kind, template, whether every variable in it is a plain value)
        let templates = [
            (
                TemplateKind::Url,
                "https://x.example/p/$http_x?q=$http_x#$http_x",
                true,
            ),
            (TemplateKind::Url, "https://x.example$uri?$args", false),
            (TemplateKind::Url, "https://x.example$request_uri", false),
            (TemplateKind::Rewrite, "/r/$1?v=$1", false),
        ];
        for value in hostile {
            let vars = StaticVars(vec![
                (Var::Header("x".into()), value.into()),
                (Var::Uri, value.into()),
                (Var::Args, value.into()),
                (Var::RequestUri, value.into()),
                (Var::Capture(1), value.into()),
            ]);
            for (kind, source, plain) in templates {
                let t = Template::parse(kind, source).unwrap();
                let out = t.expand(&vars).unwrap();
                assert!(
                    out.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)),
                    "{source} with {value:?} gave {out:?}"
                );
                // A value never adds a fragment.
                assert!(
                    out.matches('#').count() <= source.matches('#').count(),
                    "{out}"
                );
                // The host stays the template's host.
                if kind == TemplateKind::Url {
                    assert!(out.starts_with("https://x.example/"), "{out}");
                }
                if plain {
                    // A plain value is one segment or one query value: no new segment, no
                    // dot segment, no extra parameter.
                    assert_eq!(out.matches('/').count(), 4, "{out}");
                    assert!(!out.contains("/../") && !out.contains("/./"), "{out}");
                    assert_eq!(out.matches('&').count(), 0, "{out}");
                }
            }
        }
    }
}
