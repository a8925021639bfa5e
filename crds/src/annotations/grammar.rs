//! The value grammars of the supported annotations.
//!
//! Every value is checked in three steps, in this order:
//!
//! 1. at most [`MAX_VALUE_BYTES`] bytes;
//! 2. no control, invisible formatting or line-separator character ([`CONTROL_PATTERN`]);
//! 3. the grammar's *syntax*: one regular expression (plus, for a few grammars, a bound or a
//!    membership test).
//!
//! These three are exactly what the ValidatingAdmissionPolicy checks, with the same patterns
//! (RE2 and the regex crate agree on them) and the same messages: [`Grammar::cel_check`] is
//! the CEL twin of [`Grammar::syntax_ok`]. Only values that pass them reach step 4, the typed
//! parse, whose failures (an unknown `$variable`, a bad Secret name) have their own messages
//! and are reported by the data plane alone.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::ciphers::{self, CipherSelection};
use super::template::{Template, TemplateKind};
use crate::dataplane_config::{IpCidr, parse_duration, parse_size};

/// Longest accepted value, in bytes. Real values are far shorter; the bound keeps Events,
/// admission checks and parsing cheap whatever is written.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Characters no supported value may contain: C0 and C1 controls (CR, LF, NUL, TAB, DEL, ...),
/// invisible formatting characters (zero-width spaces, bidirectional overrides) and the
/// Unicode line and paragraph separators. Shared verbatim with the admission policy.
pub const CONTROL_PATTERN: &str = r"[\x{0}-\x{1f}\x{7f}-\x{9f}\p{Cf}\x{2028}\x{2029}]";

/// An RFC 7230 token, as a regex fragment.
macro_rules! token {
    () => {
        r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    };
}
/// A CORS origin `scheme://host[:port]`, host optionally `*.`-prefixed.
macro_rules! origin {
    () => {
        r"[A-Za-z][A-Za-z0-9+.-]*://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?"
    };
}
/// A DNS label, as a regex fragment.
macro_rules! label {
    () => {
        r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    };
}

const DURATION: &str = r"^[0-9]{1,9}(ms|s|m|h|d)?$";
const ZERO_DURATION: &str = r"^0+(ms|s|m|h|d)?$";
const SIZE: &str = r"^[0-9]{1,9}[kKmMgG]?$";
const ZERO_SIZE: &str = r"^0+[kKmMgG]?$";
const INT: &str = r"^[0-9]{1,9}$";
const URL: &str = r"^https?://[^/?# ]+([/?#][^ ]*)?$";
const REWRITE: &str = r"^/[^ ]*$";
const HOST: &str = r"^[A-Za-z0-9._:\[\]${}-]+$";
const PATH: &str = r"^/[A-Za-z0-9._~!$&'()*+=:@%/-]*$";
const TOKEN_LIST: &str = concat!("^", token!(), "( *, *", token!(), ")*$");
const METHOD_LIST: &str = r"^[A-Za-z]+( *, *[A-Za-z]+)*$";
const COOKIE_NAME: &str = concat!("^", token!(), "$");
const DOMAIN: &str = concat!(r"^\.?", label!(), r"(\.", label!(), ")*$");
const ORIGINS: &str = concat!(r"^(\*|", origin!(), "( *, *", origin!(), ")*)$");
const SECRET: &str =
    r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$";
const REALM: &str = r"^[ !#-\[\]-~]{1,256}$";
const CIPHERS: &str = r"^[A-Za-z0-9_.=@!+:, -]+$";
const HEADER_NAME: &str = COOKIE_NAME;
/// Printable ASCII and space: text compared literally, regexes (compiled by the typed parse)
/// and hash keys (parsed as templates).
/// (CEL's RE2 caps repetition counts at 1000, so the length is checked by the typed parse.)
const PRINTABLE: &str = r"^[ -~]+$";
/// Longest text, regex or hash key.
const MAX_TEXT_CHARS: usize = 1024;
const TEXT: &str = PRINTABLE;
const REGEX_TEXT: &str = PRINTABLE;
const KEY_TEMPLATE: &str = PRINTABLE;
const STATUS_LIST: &str = r"^[1-5][0-9][0-9]( *, *[1-5][0-9][0-9])*$";
const SERVICE_NAME: &str = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Compiled patterns, by pattern text.
static REGEXES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        CONTROL_PATTERN,
        DURATION,
        ZERO_DURATION,
        SIZE,
        ZERO_SIZE,
        INT,
        URL,
        REWRITE,
        HOST,
        PATH,
        TOKEN_LIST,
        METHOD_LIST,
        COOKIE_NAME,
        DOMAIN,
        ORIGINS,
        SECRET,
        REALM,
        CIPHERS,
        PRINTABLE,
        STATUS_LIST,
        SERVICE_NAME,
    ]
    .into_iter()
    .map(|p| (p, Regex::new(p).expect("the grammar patterns are valid")))
    .collect()
});

fn matches(pattern: &'static str, value: &str) -> bool {
    REGEXES
        .iter()
        .find(|(p, _)| *p == pattern)
        .is_some_and(|(_, re)| re.is_match(value))
}

/// True when `value` has a character of [`CONTROL_PATTERN`].
pub(crate) fn has_control(value: &str) -> bool {
    matches(CONTROL_PATTERN, value)
}

/// `text` with every character of [`CONTROL_PATTERN`] replaced by `?`.
pub(crate) fn replace_control(text: &str) -> std::borrow::Cow<'_, str> {
    REGEXES
        .iter()
        .find(|(p, _)| *p == CONTROL_PATTERN)
        .map_or(std::borrow::Cow::Borrowed(text), |(_, re)| {
            re.replace_all(text, "?")
        })
}

/// The boolean spellings Go's `strconv.ParseBool` accepts, which ingress-nginx uses.
pub const BOOL_TRUE: [&str; 6] = ["1", "t", "T", "true", "TRUE", "True"];
/// See [`BOOL_TRUE`].
pub const BOOL_FALSE: [&str; 6] = ["0", "f", "F", "false", "FALSE", "False"];

/// A closed set of words.
#[derive(Debug)]
pub struct EnumGrammar {
    /// The accepted values, canonical spelling.
    pub values: &'static [&'static str],
    /// Accept any ASCII case (and return the canonical spelling).
    pub case_insensitive: bool,
    /// Values people write that are not accepted, with the value to suggest instead.
    pub hints: &'static [(&'static str, &'static str)],
}

/// What a zero size means for a size-valued key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroSize {
    /// `0` is accepted and means "no limit" (proxy-body-size).
    Unlimited,
    /// `0` is refused.
    Refused,
}

/// The grammar of one annotation's value.
#[derive(Debug, Clone, Copy)]
pub enum Grammar {
    /// `true`/`false` (and the other spellings of Go's `strconv.ParseBool`).
    Bool,
    /// nginx duration greater than zero: `60`, `60s`, `5m`, `500ms`.
    Duration,
    /// nginx size: `8k`, `1m`.
    Size(ZeroSize),
    /// Decimal integer within bounds.
    Int {
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// One of a closed set of words.
    Enum(&'static EnumGrammar),
    /// Comma-separated IP addresses and CIDRs.
    CidrList,
    /// Absolute http(s) URL with nginx variables.
    Url,
    /// Path with capture groups and nginx variables (rewrite-target).
    Rewrite,
    /// Host name with optional port and nginx variables (upstream-vhost).
    Host,
    /// A literal absolute path without `;` or `,` (safe in a cookie attribute and a header).
    Path,
    /// Comma-separated RFC 7230 tokens (header names, Connection values).
    TokenList,
    /// Comma-separated HTTP method names.
    MethodList,
    /// A cookie name (RFC 6265 token).
    CookieName,
    /// A cookie domain.
    Domain,
    /// `*` or comma-separated CORS origins.
    Origins,
    /// A Secret name, or `namespace/name`.
    SecretRef,
    /// A ConfigMap name, or `namespace/name` (the same rules as [`Grammar::SecretRef`]).
    ConfigMapRef,
    /// Printable ASCII text without `"` or `\` (the realm of `WWW-Authenticate`).
    Realm,
    /// OpenSSL cipher-list syntax.
    Ciphers,
    /// One RFC 7230 token (a header name).
    HeaderName,
    /// Printable ASCII text, spaces allowed (a header value compared literally).
    Text,
    /// A regular expression (RE2 syntax as Rust's `regex` crate reads it), size-limited.
    Regex,
    /// Comma-separated HTTP status codes (100 to 599).
    StatusList,
    /// A Service name in the Ingress's namespace (RFC 1035 label).
    ServiceName,
    /// A hash key of literal text and nginx variables (`$remote_addr`, `$http_x_user`).
    KeyTemplate,
}

/// A value that passed its grammar, in typed form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// [`Grammar::Bool`].
    Bool(bool),
    /// [`Grammar::Duration`].
    Duration(Duration),
    /// [`Grammar::Size`], bytes.
    Size(u64),
    /// [`Grammar::Int`].
    Int(u32),
    /// [`Grammar::Enum`]: the canonical spelling.
    Enum(&'static str),
    /// [`Grammar::CidrList`]; plain addresses become /32 or /128.
    Cidrs(Vec<IpCidr>),
    /// [`Grammar::Url`], [`Grammar::Rewrite`], [`Grammar::Host`].
    Template(Template),
    /// [`Grammar::Path`], [`Grammar::CookieName`], [`Grammar::Domain`], [`Grammar::Realm`],
    /// [`Grammar::HeaderName`] (lowercase), [`Grammar::Text`], [`Grammar::Regex`] (it
    /// compiled), [`Grammar::ServiceName`].
    Text(String),
    /// [`Grammar::TokenList`] (lowercase) and [`Grammar::MethodList`] (uppercase).
    List(Vec<String>),
    /// [`Grammar::Origins`]; empty means `*`.
    Origins(Vec<String>),
    /// [`Grammar::SecretRef`] and [`Grammar::ConfigMapRef`]: (namespace, name).
    Secret(Option<String>, String),
    /// [`Grammar::Ciphers`].
    Ciphers(CipherSelection),
    /// [`Grammar::StatusList`].
    Statuses(Vec<u16>),
}

/// Why a value was refused; [`super::AnnotationProblem`] turns it into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Over [`MAX_VALUE_BYTES`].
    TooLong,
    /// Has a character matching [`CONTROL_PATTERN`].
    Control,
    /// Fails the grammar's syntax (what admission checks too).
    Syntax,
    /// Passes the syntax but not the typed parse; the text says why.
    Specific(String),
}

impl Grammar {
    /// The form a value must have, for messages and the reference. Plain ASCII, one line.
    pub fn expected(&self) -> String {
        match self {
            Grammar::Bool => "true or false".into(),
            Grammar::Duration => "a duration greater than zero: seconds, or digits with one unit of ms, s, m, h or d (60, 60s, 5m)".into(),
            Grammar::Size(ZeroSize::Unlimited) => "a size: digits with an optional k, m or g suffix (8k, 1m; 0 means unlimited)".into(),
            Grammar::Size(ZeroSize::Refused) => "a size greater than zero: digits with an optional k, m or g suffix (4k, 16k)".into(),
            Grammar::Int { min, max } => format!("an integer from {min} to {max}"),
            Grammar::Enum(e) => {
                let values = e.values.join(", ");
                if e.values.len() == 1 {
                    values
                } else if e.case_insensitive {
                    format!("one of {values} (any case)")
                } else {
                    format!("one of {values}")
                }
            }
            Grammar::CidrList => "a comma-separated list of IP addresses or CIDRs (10.0.0.0/8, 2001:db8::/32, 192.0.2.1)".into(),
            Grammar::Url => "an absolute http:// or https:// URL, optionally with nginx variables ($scheme, $host, $escaped_request_uri, ...)".into(),
            Grammar::Rewrite => "a path starting with /, optionally with capture groups $1 to $9 and nginx variables".into(),
            Grammar::Host => "a host name with an optional port, optionally with nginx variables ($service_name.$namespace.svc)".into(),
            Grammar::Path => "a path starting with / (letters, digits and -._~!$&'()*+=:@%/)".into(),
            Grammar::TokenList => "a comma-separated list of RFC 7230 tokens (header names such as X-Request-ID)".into(),
            Grammar::MethodList => "a comma-separated list of HTTP methods (GET, POST, OPTIONS)".into(),
            Grammar::CookieName => "a cookie name (letters, digits and !#$%&'*+-.^_`|~)".into(),
            Grammar::Domain => "a domain name, optionally with a leading dot".into(),
            Grammar::Origins => "* or a comma-separated list of origins scheme://host[:port], the host optionally starting with *.".into(),
            Grammar::SecretRef => "a Secret name, or namespace/name".into(),
            Grammar::ConfigMapRef => "a ConfigMap name, or namespace/name".into(),
            Grammar::Realm => "printable ASCII text without \" or \\, at most 256 characters".into(),
            Grammar::Ciphers => "an OpenSSL cipher list (ECDHE-RSA-AES128-GCM-SHA256:HIGH:!aNULL)".into(),
            Grammar::HeaderName => "a header name (an RFC 7230 token such as X-Canary)".into(),
            Grammar::Text => "printable ASCII text, at most 1024 characters".into(),
            Grammar::Regex => "a regular expression (RE2 syntax), at most 1024 characters".into(),
            Grammar::StatusList => "a comma-separated list of HTTP status codes (404,500,503)".into(),
            Grammar::ServiceName => "the name of a Service in the Ingress's namespace".into(),
            Grammar::KeyTemplate => "text with nginx variables ($remote_addr, $request_uri, $http_x_user, $cookie_session)".into(),
        }
    }

    /// A short name of the type, for the reference's "type" column.
    pub fn type_name(&self) -> &'static str {
        match self {
            Grammar::Bool => "boolean",
            Grammar::Duration => "duration",
            Grammar::Size(_) => "size",
            Grammar::Int { .. } => "integer",
            Grammar::Enum(_) => "enum",
            Grammar::CidrList => "CIDR list",
            Grammar::Url => "URL template",
            Grammar::Rewrite => "path template",
            Grammar::Host => "host template",
            Grammar::Path => "path",
            Grammar::TokenList => "token list",
            Grammar::MethodList => "method list",
            Grammar::CookieName => "cookie name",
            Grammar::Domain => "domain",
            Grammar::Origins => "origin list",
            Grammar::SecretRef => "Secret reference",
            Grammar::ConfigMapRef => "ConfigMap reference",
            Grammar::Realm => "text",
            Grammar::Ciphers => "cipher list",
            Grammar::HeaderName => "header name",
            Grammar::Text => "text",
            Grammar::Regex => "regex",
            Grammar::StatusList => "status list",
            Grammar::ServiceName => "Service name",
            Grammar::KeyTemplate => "key template",
        }
    }

    /// The hint for a refused value people commonly write, e.g. `sticky` → `cookie`.
    pub fn hint(&self, value: &str) -> Option<&'static str> {
        match self {
            Grammar::Enum(e) => e
                .hints
                .iter()
                .find(|(bad, _)| *bad == value)
                .map(|(_, good)| *good),
            _ => None,
        }
    }

    /// Steps 1 to 3 of the module docs: what admission checks. `Ok` means the value may still
    /// fail the typed parse.
    pub fn precheck(&self, value: &str) -> Result<(), Invalid> {
        if value.len() > MAX_VALUE_BYTES {
            Err(Invalid::TooLong)
        } else if has_control(value) {
            Err(Invalid::Control)
        } else if !self.syntax_ok(value) {
            Err(Invalid::Syntax)
        } else {
            Ok(())
        }
    }

    /// Step 3: the syntax. [`Grammar::cel_check`] must agree with this on every value that
    /// passes steps 1 and 2.
    pub fn syntax_ok(&self, v: &str) -> bool {
        match self {
            Grammar::Bool => BOOL_TRUE.contains(&v) || BOOL_FALSE.contains(&v),
            Grammar::Duration => matches(DURATION, v) && !matches(ZERO_DURATION, v),
            Grammar::Size(ZeroSize::Unlimited) => matches(SIZE, v),
            Grammar::Size(ZeroSize::Refused) => matches(SIZE, v) && !matches(ZERO_SIZE, v),
            Grammar::Int { min, max } => {
                matches(INT, v) && v.parse::<u32>().is_ok_and(|n| (*min..=*max).contains(&n))
            }
            Grammar::Enum(e) => enum_value(e, v).is_some(),
            Grammar::CidrList => v.split(',').all(|entry| cidr_or_ip(entry.trim()).is_some()),
            Grammar::Url => matches(URL, v),
            Grammar::Rewrite => matches(REWRITE, v),
            Grammar::Host => matches(HOST, v),
            Grammar::Path => matches(PATH, v),
            Grammar::TokenList => matches(TOKEN_LIST, v),
            Grammar::MethodList => matches(METHOD_LIST, v),
            Grammar::CookieName => matches(COOKIE_NAME, v),
            Grammar::Domain => matches(DOMAIN, v),
            Grammar::Origins => matches(ORIGINS, v),
            Grammar::SecretRef | Grammar::ConfigMapRef => matches(SECRET, v),
            Grammar::Realm => matches(REALM, v),
            Grammar::Ciphers => matches(CIPHERS, v),
            Grammar::HeaderName => matches(HEADER_NAME, v),
            Grammar::Text => matches(TEXT, v),
            Grammar::Regex => matches(REGEX_TEXT, v),
            Grammar::StatusList => matches(STATUS_LIST, v),
            Grammar::ServiceName => matches(SERVICE_NAME, v),
            Grammar::KeyTemplate => matches(KEY_TEMPLATE, v),
        }
    }

    /// The CEL twin of [`Grammar::syntax_ok`]: a boolean expression over the string
    /// expression `v`.
    pub fn cel_check(&self, v: &str) -> String {
        let re = |pattern: &str| format!("{v}.matches({})", cel_raw(pattern));
        let list = |values: &[&str]| {
            let items: Vec<String> = values.iter().map(|s| cel_string(s)).collect();
            format!("[{}]", items.join(", "))
        };
        match self {
            Grammar::Bool => {
                let all: Vec<&str> = BOOL_TRUE.iter().chain(&BOOL_FALSE).copied().collect();
                format!("{v} in {}", list(&all))
            }
            Grammar::Duration => format!("{} && !{}", re(DURATION), re(ZERO_DURATION)),
            Grammar::Size(ZeroSize::Unlimited) => re(SIZE),
            Grammar::Size(ZeroSize::Refused) => format!("{} && !{}", re(SIZE), re(ZERO_SIZE)),
            Grammar::Int { min, max } => {
                format!("{} && int({v}) >= {min} && int({v}) <= {max}", re(INT))
            }
            Grammar::Enum(e) if e.case_insensitive => {
                let lower: Vec<String> = e.values.iter().map(|s| s.to_ascii_lowercase()).collect();
                let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
                format!("{v}.lowerAscii() in {}", list(&lower))
            }
            Grammar::Enum(e) => format!("{v} in {}", list(e.values)),
            // Kubernetes' isIP and isCIDR refuse IPv4-mapped IPv6 and zones, as cidr_or_ip does.
            Grammar::CidrList => {
                format!("{v}.split(',').all(c, isCIDR(c.trim()) || isIP(c.trim()))")
            }
            Grammar::Url => re(URL),
            Grammar::Rewrite => re(REWRITE),
            Grammar::Host => re(HOST),
            Grammar::Path => re(PATH),
            Grammar::TokenList => re(TOKEN_LIST),
            Grammar::MethodList => re(METHOD_LIST),
            Grammar::CookieName => re(COOKIE_NAME),
            Grammar::Domain => re(DOMAIN),
            Grammar::Origins => re(ORIGINS),
            Grammar::SecretRef | Grammar::ConfigMapRef => re(SECRET),
            Grammar::Realm => re(REALM),
            Grammar::Ciphers => re(CIPHERS),
            Grammar::HeaderName => re(HEADER_NAME),
            Grammar::Text => re(TEXT),
            Grammar::Regex => re(REGEX_TEXT),
            Grammar::StatusList => re(STATUS_LIST),
            Grammar::ServiceName => re(SERVICE_NAME),
            Grammar::KeyTemplate => re(KEY_TEMPLATE),
        }
    }

    /// All four steps: the typed value, or why not.
    pub fn parse(&self, value: &str) -> Result<Value, Invalid> {
        self.precheck(value)?;
        let specific = |reason: String| Invalid::Specific(reason);
        let template = |kind| {
            Template::parse(kind, value)
                .map(Value::Template)
                .map_err(|e| specific(e.to_string()))
        };
        match self {
            Grammar::Bool => Ok(Value::Bool(BOOL_TRUE.contains(&value))),
            Grammar::Duration => parse_duration(value)
                .map(Value::Duration)
                .map_err(|e| specific(e.to_string())),
            Grammar::Size(_) => parse_size(value)
                .map(Value::Size)
                .map_err(|e| specific(e.to_string())),
            Grammar::Int { .. } => value
                .parse()
                .map(Value::Int)
                .map_err(|e| specific(e.to_string())),
            Grammar::Enum(e) => enum_value(e, value).map(Value::Enum).ok_or(Invalid::Syntax),
            Grammar::CidrList => Ok(Value::Cidrs(
                value
                    .split(',')
                    .filter_map(|entry| cidr_or_ip(entry.trim()))
                    .collect(),
            )),
            Grammar::Url => template(TemplateKind::Url),
            Grammar::Rewrite => template(TemplateKind::Rewrite),
            Grammar::Host => template(TemplateKind::Host),
            Grammar::Path => {
                if has_bad_percent(value) {
                    Err(specific("'%' must be followed by two hex digits".into()))
                } else {
                    Ok(Value::Text(value.to_owned()))
                }
            }
            Grammar::CookieName | Grammar::Realm => Ok(Value::Text(value.to_owned())),
            Grammar::Domain => {
                if value.trim_start_matches('.').len() > 253 {
                    Err(specific("a domain name has at most 253 characters".into()))
                } else {
                    Ok(Value::Text(value.to_ascii_lowercase()))
                }
            }
            Grammar::TokenList => Ok(Value::List(split_list(value, |s| s.to_ascii_lowercase()))),
            Grammar::MethodList => Ok(Value::List(split_list(value, |s| s.to_ascii_uppercase()))),
            Grammar::Origins => parse_origins(value).map(Value::Origins).map_err(specific),
            Grammar::SecretRef => parse_secret_ref(value, "Secret")
                .map(|(ns, name)| Value::Secret(ns, name))
                .map_err(specific),
            Grammar::ConfigMapRef => parse_secret_ref(value, "ConfigMap")
                .map(|(ns, name)| Value::Secret(ns, name))
                .map_err(specific),
            Grammar::Ciphers => Ok(Value::Ciphers(ciphers::evaluate(value))),
            Grammar::Text | Grammar::Regex | Grammar::KeyTemplate
                if value.len() > MAX_TEXT_CHARS =>
            {
                Err(specific(format!("longer than {MAX_TEXT_CHARS} characters")))
            }
            Grammar::HeaderName => Ok(Value::Text(value.to_ascii_lowercase())),
            Grammar::Text | Grammar::ServiceName => Ok(Value::Text(value.to_owned())),
            Grammar::Regex => regex::RegexBuilder::new(value)
                .size_limit(super::path_regex::REGEX_SIZE_LIMIT)
                .dfa_size_limit(super::path_regex::REGEX_SIZE_LIMIT)
                .nest_limit(super::path_regex::REGEX_NEST_LIMIT)
                .build()
                .map(|_| Value::Text(value.to_owned()))
                .map_err(|e| specific(concise(&e.to_string()))),
            Grammar::StatusList => Ok(Value::Statuses(
                value
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect(),
            )),
            Grammar::KeyTemplate => template(TemplateKind::HeaderValue),
        }
    }
}

/// The last line of a regex error (the crate's messages draw the pattern with a caret first).
fn concise(message: &str) -> String {
    let line = message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("not a valid regex");
    format!(
        "not a valid regex: {}",
        line.trim().trim_start_matches("error: ")
    )
}

/// A CEL raw string literal holding `pattern` (RE2 syntax, no escaping needed).
pub(crate) fn cel_raw(pattern: &str) -> String {
    assert!(
        !pattern.contains('"'),
        "CEL raw strings are delimited by double quotes"
    );
    format!("r\"{pattern}\"")
}

/// A CEL string literal holding `text`.
pub(crate) fn cel_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn enum_value(e: &EnumGrammar, value: &str) -> Option<&'static str> {
    e.values.iter().copied().find(|candidate| {
        if e.case_insensitive {
            candidate.eq_ignore_ascii_case(value)
        } else {
            *candidate == value
        }
    })
}

/// An address or CIDR the way Kubernetes' CEL `isIP`/`isCIDR` accept them: no zone, no
/// IPv4-mapped IPv6, no leading zeros. A plain address becomes a /32 or /128.
fn cidr_or_ip(entry: &str) -> Option<IpCidr> {
    let cidr: IpCidr = if entry.contains('/') {
        entry.parse().ok()?
    } else {
        let ip: IpAddr = entry.parse().ok()?;
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        format!("{ip}/{bits}").parse().ok()?
    };
    match cidr.address() {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => None,
        _ => Some(cidr),
    }
}

fn has_bad_percent(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !(bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit())
    })
}

fn split_list(value: &str, normalise: impl Fn(&str) -> String) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim).map(normalise) {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn parse_origins(value: &str) -> Result<Vec<String>, String> {
    if value == "*" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for origin in value.split(',').map(str::trim) {
        let port = origin
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u32>().ok());
        if port.is_some_and(|p| p == 0 || p > 65535) {
            return Err(format!("{origin:?} has a port outside 1 to 65535"));
        }
        let lower = origin.to_ascii_lowercase();
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    Ok(out)
}

/// A `name` or `namespace/name` reference to an object of `kind` (Secret, ConfigMap: both
/// are named by RFC 1123 subdomains).
fn parse_secret_ref(value: &str, kind: &str) -> Result<(Option<String>, String), String> {
    let (namespace, name) = match value.split_once('/') {
        Some((ns, name)) => (Some(ns.to_owned()), name),
        None => (None, value),
    };
    let valid = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.len() <= 63
        });
    if valid {
        Ok((namespace, name.to_owned()))
    } else {
        Err(format!(
            "{name:?} is not a {kind} name (a lowercase RFC 1123 subdomain)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFFINITY: EnumGrammar = EnumGrammar {
        values: &["cookie"],
        case_insensitive: false,
        hints: &[("sticky", "cookie")],
    };
    const PROTOCOL: EnumGrammar = EnumGrammar {
        values: &["HTTP", "HTTPS", "GRPC", "GRPCS"],
        case_insensitive: true,
        hints: &[],
    };

    /// (grammar, accepted values, refused values) for every grammar.
    fn table() -> Vec<(Grammar, Vec<&'static str>, Vec<&'static str>)> {
        vec![
            (
                Grammar::Bool,
                vec!["true", "false", "True", "FALSE", "1", "0", "t", "F"],
                vec!["", "yes", "on", "tRue", " true", "true "],
            ),
            (
                Grammar::Duration,
                vec!["60", "60s", "5m", "500ms", "1h", "2d", "007s", "999999999d"],
                vec![
                    "",
                    "0",
                    "0s",
                    "00ms",
                    "1.5s",
                    "-1",
                    "1m30s",
                    "5 s",
                    "5S",
                    "1w",
                    "s",
                    "1000000000",
                ],
            ),
            (
                Grammar::Size(ZeroSize::Unlimited),
                vec!["0", "8k", "1m", "1M", "2g", "1024", "999999999g"],
                vec!["", "10xb", "1mb", "1.5m", "-1", "k", "1 m", "1000000000"],
            ),
            (
                Grammar::Size(ZeroSize::Refused),
                vec!["4k", "1"],
                vec!["0", "0k", "00m"],
            ),
            (
                Grammar::Int { min: 1, max: 20 },
                vec!["1", "20", "05"],
                vec!["0", "21", "", "-1", "+1", "1.0", "lots", "99999999999"],
            ),
            (
                Grammar::Enum(&AFFINITY),
                vec!["cookie"],
                vec!["sticky", "Cookie", "", "cookie "],
            ),
            (
                Grammar::Enum(&PROTOCOL),
                vec!["HTTP", "https", "GrPc", "GRPCS"],
                vec!["AJP", "FCGI", "HTTP2", ""],
            ),
            (
                Grammar::CidrList,
                vec![
                    "10.0.0.0/8",
                    "10.0.0.0/8, 192.168.0.0/16",
                    "192.0.2.1",
                    "2001:db8::/32,::1",
                    "10.1.2.3/8",
                ],
                vec![
                    "",
                    "10.0.0.0/8,",
                    "10.0.0.0/33",
                    "010.0.0.0/8",
                    "::ffff:1.2.3.4",
                    "::ffff:1.2.3.4/128",
                    "fe80::1%eth0",
                    "example.com",
                    "10.0.0.0/8;10.1.0.0/16",
                ],
            ),
            (
                Grammar::Url,
                vec![
                    "https://auth.example.com/oauth2/start?rd=$escaped_request_uri",
                    "http://a",
                    "https://a.example:8443",
                    "https://a/#x",
                ],
                vec![
                    "",
                    "ftp://a/",
                    "https://",
                    "https:///x",
                    "https://a b/",
                    "https://a/b c",
                    "/relative",
                ],
            ),
            (
                Grammar::Rewrite,
                vec!["/", "/$2", "/api/$1?x=$2"],
                vec!["", "$1", "/a b", "api"],
            ),
            (
                Grammar::Host,
                vec![
                    "internal.example",
                    "$service_name.$namespace.svc",
                    "[::1]:8080",
                ],
                vec!["", "a b", "a/b", "a;b"],
            ),
            (
                Grammar::Path,
                vec!["/", "/app", "/a%20b", "/a:b@c"],
                vec!["", "app", "/a;b", "/a,b", "/a b", "/a\"b", "/a?b"],
            ),
            (
                Grammar::TokenList,
                vec!["X-Auth", "X-A,X-B", "X-A , X-B", "*"],
                vec!["", "X A", "X-A,", "X:A", "a,,b"],
            ),
            (
                Grammar::MethodList,
                vec!["GET", "GET, PUT,post"],
                vec!["", "GET;PUT", "G3T", "GET,"],
            ),
            (
                Grammar::CookieName,
                vec!["INGRESSCOOKIE", "route_id", "a.b-c"],
                vec!["", "a b", "a;b", "a=b", "a,b"],
            ),
            (
                Grammar::Domain,
                vec!["example.com", ".example.com", "a-b.example"],
                vec!["", "-a.com", "a..b", "a_b.com", "example.com."],
            ),
            (
                Grammar::Origins,
                vec![
                    "*",
                    "https://a.example",
                    "https://a.example:4443, http://b.example",
                    "https://*.example.com",
                    "myapp://a.example",
                ],
                vec![
                    "",
                    "a.example",
                    "https://a.example/",
                    "https://*",
                    "*, https://a",
                ],
            ),
            (
                Grammar::SecretRef,
                vec!["basic-auth", "ns/basic-auth", "a.b"],
                vec!["", "Basic", "ns/", "/name", "a/b/c", "a_b"],
            ),
            (
                Grammar::ConfigMapRef,
                vec!["headers", "ns/custom-headers", "a.b"],
                vec!["", "Headers", "ns/", "/name", "a/b/c", "a_b"],
            ),
            (
                Grammar::Realm,
                vec!["Authentication Required", "x"],
                vec!["", "a\"b", "a\\b", "é"],
            ),
            (
                Grammar::Ciphers,
                vec![
                    "ALL:!aNULL",
                    "ECDHE-RSA-AES128-GCM-SHA256",
                    "HIGH:@STRENGTH",
                ],
                vec!["", "ALL;ssl_engine", "ALL:{x}"],
            ),
        ]
    }

    #[test]
    fn grammar_table() {
        for (grammar, good, bad) in table() {
            for value in good {
                assert!(
                    grammar.parse(value).is_ok(),
                    "{grammar:?} should accept {value:?}: {:?}",
                    grammar.parse(value)
                );
            }
            for value in bad {
                assert!(
                    grammar.parse(value).is_err(),
                    "{grammar:?} should refuse {value:?}"
                );
            }
        }
    }

    #[test]
    fn typed_values() {
        let cases: Vec<(Grammar, &str, Value)> = vec![
            (Grammar::Bool, "True", Value::Bool(true)),
            (Grammar::Bool, "0", Value::Bool(false)),
            (
                Grammar::Duration,
                "5m",
                Value::Duration(Duration::from_secs(300)),
            ),
            (
                Grammar::Duration,
                "60",
                Value::Duration(Duration::from_secs(60)),
            ),
            (Grammar::Size(ZeroSize::Unlimited), "8k", Value::Size(8192)),
            (Grammar::Size(ZeroSize::Unlimited), "0", Value::Size(0)),
            (Grammar::Int { min: 0, max: 9 }, "07", Value::Int(7)),
            (Grammar::Enum(&PROTOCOL), "grpcs", Value::Enum("GRPCS")),
            (
                Grammar::CidrList,
                "10.0.0.0/8, 192.0.2.1,::1",
                Value::Cidrs(vec![
                    "10.0.0.0/8".parse().unwrap(),
                    "192.0.2.1/32".parse().unwrap(),
                    "::1/128".parse().unwrap(),
                ]),
            ),
            (
                Grammar::TokenList,
                "X-Auth , x-auth,Set-Cookie",
                Value::List(vec!["x-auth".into(), "set-cookie".into()]),
            ),
            (
                Grammar::MethodList,
                "get, Post",
                Value::List(vec!["GET".into(), "POST".into()]),
            ),
            (Grammar::Origins, "*", Value::Origins(vec![])),
            (
                Grammar::Origins,
                "https://A.example:443, https://*.b.example",
                Value::Origins(vec![
                    "https://a.example:443".into(),
                    "https://*.b.example".into(),
                ]),
            ),
            (
                Grammar::SecretRef,
                "ns/basic",
                Value::Secret(Some("ns".into()), "basic".into()),
            ),
            (
                Grammar::ConfigMapRef,
                "headers",
                Value::Secret(None, "headers".into()),
            ),
            (
                Grammar::Domain,
                ".Example.COM",
                Value::Text(".example.com".into()),
            ),
        ];
        for (grammar, input, want) in cases {
            assert_eq!(grammar.parse(input), Ok(want), "{grammar:?} {input:?}");
        }
    }

    #[test]
    fn checks_run_in_order() {
        let long = "1".repeat(MAX_VALUE_BYTES + 1);
        assert_eq!(Grammar::Url.parse(&long), Err(Invalid::TooLong));
        assert_eq!(Grammar::Bool.parse("tr\nue"), Err(Invalid::Control));
        assert_eq!(Grammar::Bool.parse("true\u{200b}"), Err(Invalid::Control));
        assert_eq!(Grammar::Bool.parse("\u{202e}true"), Err(Invalid::Control));
        assert_eq!(Grammar::Bool.parse("tru"), Err(Invalid::Syntax));
        assert!(matches!(
            Grammar::Url.parse("https://a/$nope"),
            Err(Invalid::Specific(reason)) if reason.contains("unknown variable $nope")
        ));
        assert!(matches!(
            Grammar::SecretRef.parse("a..b"),
            Err(Invalid::Specific(reason)) if reason.contains("not a Secret name")
        ));
        assert!(matches!(
            Grammar::ConfigMapRef.parse("a..b"),
            Err(Invalid::Specific(reason)) if reason.contains("not a ConfigMap name")
        ));
        assert!(matches!(
            Grammar::Path.parse("/a%zz"),
            Err(Invalid::Specific(_))
        ));
        assert!(matches!(
            Grammar::Origins.parse("https://a:70000"),
            Err(Invalid::Specific(_))
        ));
    }

    #[test]
    fn hints_and_expected_forms() {
        assert_eq!(Grammar::Enum(&AFFINITY).hint("sticky"), Some("cookie"));
        assert_eq!(Grammar::Enum(&AFFINITY).expected(), "cookie");
        assert_eq!(
            Grammar::Enum(&PROTOCOL).expected(),
            "one of HTTP, HTTPS, GRPC, GRPCS (any case)"
        );
        assert_eq!(
            Grammar::Int { min: 0, max: 20 }.expected(),
            "an integer from 0 to 20"
        );
        // Expected forms go into one-line Events and CEL string literals.
        for (grammar, _, _) in table() {
            let text = grammar.expected();
            assert!(text.is_ascii() && !text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn cel_checks_use_the_same_patterns() {
        assert_eq!(
            Grammar::Duration.cel_check("v"),
            r#"v.matches(r"^[0-9]{1,9}(ms|s|m|h|d)?$") && !v.matches(r"^0+(ms|s|m|h|d)?$")"#
        );
        assert_eq!(
            Grammar::Int { min: 0, max: 20 }.cel_check("v"),
            r#"v.matches(r"^[0-9]{1,9}$") && int(v) >= 0 && int(v) <= 20"#
        );
        assert_eq!(
            Grammar::Enum(&PROTOCOL).cel_check("v"),
            "v.lowerAscii() in ['http', 'https', 'grpc', 'grpcs']"
        );
        assert_eq!(cel_string("it's \\"), r"'it\'s \\'");
    }
}
