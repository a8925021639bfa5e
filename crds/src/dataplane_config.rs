//! The data-plane ConfigMap: what the operator renders from `spec.proxy` and the data plane
//! reads.
//!
//! The ConfigMap named after the set holds one key, [`CONFIG_MAP_KEY`], whose value is JSON with
//! the field names of `spec.proxy` ([`ProxySettings`]), every field filled in: what a user wrote
//! in the set is what they find in the ConfigMap, next to the defaults that applied.
//! [`DataplaneConfig`] is the typed, validated form both binaries work with: sizes and durations
//! parsed from nginx syntax, CIDRs parsed, numbers range-checked, ingress-nginx defaults applied.
//!
//! Values are parsed strictly (no trimming, no guessing) and every error names the field it came
//! from. Unknown JSON keys are ignored so that a data plane one release behind the operator keeps
//! working during an upgrade.
//!
//! The parsers [`parse_size`] and [`parse_duration`] are public so that the data plane can read
//! the same syntax in Ingress annotations (`proxy-body-size`, `proxy-read-timeout`, ...).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CipherSuite, ProxySettings, TlsProtocol};

/// The ConfigMap key holding the JSON document.
pub const CONFIG_MAP_KEY: &str = "config.json";

/// ingress-nginx `proxy-body-size` default: 1m.
pub const DEFAULT_PROXY_BODY_SIZE: BodySizeLimit =
    BodySizeLimit::Bytes(NonZeroU64::new(MIB).unwrap());
/// ingress-nginx `proxy-connect-timeout` default.
pub const DEFAULT_PROXY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ingress-nginx `proxy-read-timeout` default.
pub const DEFAULT_PROXY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// ingress-nginx `proxy-send-timeout` default.
pub const DEFAULT_PROXY_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// ingress-nginx `hsts-max-age` default: one year.
pub const DEFAULT_HSTS_MAX_AGE: u64 = 31_536_000;
/// Largest accepted `hsts-max-age`: ten years, the bound the CRD schema enforces too.
pub const MAX_HSTS_MAX_AGE: u64 = 315_360_000;
/// ingress-nginx `limit-req-status-code` default.
pub const DEFAULT_LIMIT_REQ_STATUS_CODE: u16 = 503;
/// ingress-nginx `proxy-next-upstream-tries` default.
pub const DEFAULT_PROXY_NEXT_UPSTREAM_TRIES: u32 = 3;
/// Largest accepted `proxy-next-upstream-tries`, as in the CRD schema.
pub const MAX_PROXY_NEXT_UPSTREAM_TRIES: u32 = 20;
/// ingress-nginx `proxy-real-ip-cidr` default: every source is trusted once forwarded headers or
/// real-ip are switched on.
pub const DEFAULT_PROXY_REAL_IP_CIDR: &str = "0.0.0.0/0";
/// ingress-nginx `ssl-protocols` default.
pub const DEFAULT_SSL_PROTOCOLS: [TlsProtocol; 2] = [TlsProtocol::Tls12, TlsProtocol::Tls13];
/// ingress-nginx `ssl-ciphers` default, without its two DHE suites (not supported).
pub const DEFAULT_SSL_CIPHERS: [CipherSuite; 6] = [
    CipherSuite::EcdheEcdsaAes128GcmSha256,
    CipherSuite::EcdheRsaAes128GcmSha256,
    CipherSuite::EcdheEcdsaAes256GcmSha384,
    CipherSuite::EcdheRsaAes256GcmSha384,
    CipherSuite::EcdheEcdsaChacha20Poly1305,
    CipherSuite::EcdheRsaChacha20Poly1305,
];

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Why one value could not be parsed. The field it belongs to is added by [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The value is the empty string.
    #[error("must not be empty")]
    Empty,
    /// Not digits with an optional `k`, `m` or `g` suffix.
    #[error(
        "{value:?} is not a size: expected digits with an optional k, m or g suffix, such as \"8k\", \"1m\" or \"0\""
    )]
    InvalidSize {
        /// The rejected text.
        value: String,
    },
    /// Not digits with an optional `ms`, `s`, `m`, `h` or `d` unit.
    #[error(
        "{value:?} is not a duration: expected seconds or digits with one unit of ms, s, m, h or d, such as \"60\", \"60s\" or \"5m\""
    )]
    InvalidDuration {
        /// The rejected text.
        value: String,
    },
    /// Well-formed, but too large to represent.
    #[error("{value:?} is too large")]
    Overflow {
        /// The rejected text.
        value: String,
    },
    /// Not an IP address, '/', and a prefix length valid for that address family.
    #[error("{value:?} is not a CIDR such as 10.0.0.0/8 or 2001:db8::/32")]
    InvalidCidr {
        /// The rejected text.
        value: String,
    },
    /// Not a lowercase RFC 1123 subdomain (the rule for Secret names).
    #[error("{value:?} is not a lowercase RFC 1123 subdomain")]
    InvalidName {
        /// The rejected text.
        value: String,
    },
}

/// Why a data-plane configuration is invalid. Every variant that concerns one setting names it
/// with its `spec.proxy` / ConfigMap JSON key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be parsed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The JSON key, e.g. `proxyBodySize`.
        field: &'static str,
        /// What is wrong with the value.
        reason: ParseError,
    },
    /// A number outside its allowed range.
    #[error("{field}: {value} is out of range, must be between {min} and {max}")]
    OutOfRange {
        /// The JSON key.
        field: &'static str,
        /// The rejected number.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A timeout of zero, which would fail every request.
    #[error("{field}: must be greater than zero")]
    Zero {
        /// The JSON key.
        field: &'static str,
    },
    /// The ConfigMap has no [`CONFIG_MAP_KEY`].
    #[error("the ConfigMap has no {CONFIG_MAP_KEY:?} key")]
    MissingKey,
    /// [`CONFIG_MAP_KEY`] is not JSON of the expected shape.
    #[error("{CONFIG_MAP_KEY} is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

impl ConfigError {
    /// The JSON key the error is about, if it concerns one setting.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { field, .. }
            | ConfigError::OutOfRange { field, .. }
            | ConfigError::Zero { field } => Some(field),
            ConfigError::MissingKey | ConfigError::Json(_) => None,
        }
    }
}

/// Parses an nginx size: digits with an optional `k`/`K` (KiB), `m`/`M` (MiB) or `g`/`G` (GiB)
/// suffix, into bytes. `"0"` parses to 0; what 0 means is up to the setting (for the request
/// body limit: unlimited).
pub fn parse_size(value: &str) -> Result<u64, ParseError> {
    if value.is_empty() {
        return Err(ParseError::Empty);
    }
    let invalid = || ParseError::InvalidSize {
        value: value.to_owned(),
    };
    let (digits, multiplier) = match value.as_bytes()[value.len() - 1] {
        b'k' | b'K' => (&value[..value.len() - 1], KIB),
        b'm' | b'M' => (&value[..value.len() - 1], MIB),
        b'g' | b'G' => (&value[..value.len() - 1], GIB),
        _ => (value, 1),
    };
    let number = parse_digits(digits).ok_or_else(invalid)?;
    let number = number.ok_or_else(|| ParseError::Overflow {
        value: value.to_owned(),
    })?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| ParseError::Overflow {
            value: value.to_owned(),
        })
}

/// Writes a byte count in the shortest exact nginx size syntax (`1048576` → `"1m"`), so that
/// [`parse_size`] reads back the same number.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        0 => "0".to_owned(),
        b if b % GIB == 0 => format!("{}g", b / GIB),
        b if b % MIB == 0 => format!("{}m", b / MIB),
        b if b % KIB == 0 => format!("{}k", b / KIB),
        b => b.to_string(),
    }
}

/// Parses an nginx-style duration: bare digits are seconds (as in ingress-nginx's timeout keys
/// and annotations), or digits with one unit of `ms`, `s`, `m`, `h` or `d`. Combined units
/// (`"1m30s"`), fractions and whitespace are refused.
pub fn parse_duration(value: &str) -> Result<Duration, ParseError> {
    if value.is_empty() {
        return Err(ParseError::Empty);
    }
    let invalid = || ParseError::InvalidDuration {
        value: value.to_owned(),
    };
    let overflow = || ParseError::Overflow {
        value: value.to_owned(),
    };
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let number = parse_digits(digits)
        .ok_or_else(invalid)?
        .ok_or_else(overflow)?;
    let seconds_per_unit = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(overflow)
}

/// Writes a duration in the shortest exact syntax [`parse_duration`] reads back (`"5s"`,
/// `"2m"`, `"1500ms"`). Sub-millisecond parts cannot be written and are dropped.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() != 0 {
        return format!("{}ms", duration.as_millis());
    }
    match duration.as_secs() {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `None` unless `digits` is one or more ASCII digits; `Some(None)` when they overflow `u64`.
fn parse_digits(digits: &str) -> Option<Option<u64>> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<u64>().ok())
}

/// The request body limit (`proxy-body-size`): `"0"` means no limit, as in nginx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodySizeLimit {
    /// No limit.
    Unlimited,
    /// At most this many bytes; larger bodies get 413.
    Bytes(NonZeroU64),
}

impl BodySizeLimit {
    /// The limit in bytes, `None` when unlimited.
    pub fn max_bytes(self) -> Option<u64> {
        match self {
            BodySizeLimit::Unlimited => None,
            BodySizeLimit::Bytes(n) => Some(n.get()),
        }
    }
}

impl FromStr for BodySizeLimit {
    type Err = ParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(NonZeroU64::new(parse_size(value)?)
            .map_or(BodySizeLimit::Unlimited, BodySizeLimit::Bytes))
    }
}

impl fmt::Display for BodySizeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_size(self.max_bytes().unwrap_or(0)))
    }
}

/// An IP network in CIDR notation. The address is kept as written (host bits may be set, as the
/// API server's `isCIDR` allows); [`IpCidr::contains`] compares only the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    address: IpAddr,
    prefix_len: u8,
}

impl IpCidr {
    /// The address part as written.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// True when `ip` is in this network. Addresses of the other family are never contained.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpCidr {
    type Err = ParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.is_empty() {
            return Err(ParseError::Empty);
        }
        let invalid = || ParseError::InvalidCidr {
            value: value.to_owned(),
        };
        let (address, prefix) = value.split_once('/').ok_or_else(invalid)?;
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        // Digits only, no sign and no leading zero, like Go's netip.ParsePrefix.
        let well_formed = !prefix.is_empty()
            && prefix.len() <= 3
            && prefix.bytes().all(|b| b.is_ascii_digit())
            && (prefix == "0" || !prefix.starts_with('0'));
        let prefix_len: u8 = if well_formed {
            prefix.parse().map_err(|_| invalid())?
        } else {
            return Err(invalid());
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(invalid());
        }
        Ok(IpCidr {
            address,
            prefix_len,
        })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// The typed, validated data-plane settings, with ingress-nginx defaults filled in. Field
/// meanings are documented on [`ProxySettings`], whose names (in camelCase) they share.
///
/// Serialises as the ConfigMap JSON (a fully filled-in [`ProxySettings`]) and deserialises from
/// it with the same validation as [`DataplaneConfig::from_proxy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ProxySettings", into = "ProxySettings")]
pub struct DataplaneConfig {
    /// Accepted TLS versions, sorted, never empty.
    pub ssl_protocols: Vec<TlsProtocol>,
    /// Offered cipher suites in preference order, without duplicates, never empty.
    pub ssl_ciphers: Vec<CipherSuite>,
    /// Send Strict-Transport-Security on TLS hosts.
    pub hsts: bool,
    /// HSTS max-age in seconds.
    pub hsts_max_age: u64,
    /// HSTS includeSubDomains.
    pub hsts_include_subdomains: bool,
    /// HSTS preload.
    pub hsts_preload: bool,
    /// Request body limit.
    pub proxy_body_size: BodySizeLimit,
    /// Backend connect timeout, never zero.
    pub proxy_connect_timeout: Duration,
    /// Backend read timeout, never zero.
    pub proxy_read_timeout: Duration,
    /// Backend send timeout, never zero.
    pub proxy_send_timeout: Duration,
    /// Trust and pass on X-Forwarded-* from `proxy_real_ip_cidr`.
    pub use_forwarded_headers: bool,
    /// Take the client address from X-Forwarded-For when from `proxy_real_ip_cidr`.
    pub enable_real_ip: bool,
    /// Trusted proxies, never empty.
    pub proxy_real_ip_cidr: Vec<IpCidr>,
    /// Status code for rate-limited requests, 400..=599.
    pub limit_req_status_code: u16,
    /// Ingresses may request TLS passthrough.
    pub enable_ssl_passthrough: bool,
    /// Ignore rule-less Ingresses' defaultBackend as catch-all.
    pub disable_catch_all: bool,
    /// Secret (in the set's namespace) with the fallback certificate.
    pub default_ssl_certificate: Option<String>,
    /// Backend pods to try per request on connect failure, the first included; 0 = each once.
    pub proxy_next_upstream_tries: u32,
}

impl Default for DataplaneConfig {
    /// ingress-nginx's defaults, which is what an empty `spec.proxy` means.
    fn default() -> Self {
        DataplaneConfig {
            ssl_protocols: DEFAULT_SSL_PROTOCOLS.to_vec(),
            ssl_ciphers: DEFAULT_SSL_CIPHERS.to_vec(),
            hsts: true,
            hsts_max_age: DEFAULT_HSTS_MAX_AGE,
            hsts_include_subdomains: true,
            hsts_preload: false,
            proxy_body_size: DEFAULT_PROXY_BODY_SIZE,
            proxy_connect_timeout: DEFAULT_PROXY_CONNECT_TIMEOUT,
            proxy_read_timeout: DEFAULT_PROXY_READ_TIMEOUT,
            proxy_send_timeout: DEFAULT_PROXY_SEND_TIMEOUT,
            use_forwarded_headers: false,
            enable_real_ip: false,
            proxy_real_ip_cidr: vec![IpCidr {
                address: IpAddr::from([0, 0, 0, 0]),
                prefix_len: 0,
            }],
            limit_req_status_code: DEFAULT_LIMIT_REQ_STATUS_CODE,
            enable_ssl_passthrough: false,
            disable_catch_all: false,
            default_ssl_certificate: None,
            proxy_next_upstream_tries: DEFAULT_PROXY_NEXT_UPSTREAM_TRIES,
        }
    }
}

impl DataplaneConfig {
    /// Validates `spec.proxy` and fills in the defaults. This is what the operator renders and
    /// what the data plane gets back when it parses the ConfigMap.
    pub fn from_proxy(proxy: &ProxySettings) -> Result<Self, ConfigError> {
        let defaults = DataplaneConfig::default();

        let mut ssl_protocols = if proxy.ssl_protocols.is_empty() {
            defaults.ssl_protocols
        } else {
            proxy.ssl_protocols.clone()
        };
        ssl_protocols.sort_unstable();
        ssl_protocols.dedup();

        // Order is the server's preference, so duplicates are dropped without sorting.
        let mut ssl_ciphers: Vec<CipherSuite> = Vec::new();
        for suite in &proxy.ssl_ciphers {
            if !ssl_ciphers.contains(suite) {
                ssl_ciphers.push(*suite);
            }
        }
        if ssl_ciphers.is_empty() {
            ssl_ciphers = defaults.ssl_ciphers;
        }

        let hsts_max_age = match proxy.hsts_max_age {
            None => defaults.hsts_max_age,
            Some(v) => in_range("hstsMaxAge", v, 0, MAX_HSTS_MAX_AGE as i64)?,
        };

        let proxy_body_size = match &proxy.proxy_body_size {
            None => defaults.proxy_body_size,
            Some(v) => v.parse().map_err(|reason| ConfigError::Invalid {
                field: "proxyBodySize",
                reason,
            })?,
        };

        let timeout = |field: &'static str, value: &Option<String>, default: Duration| {
            let Some(value) = value else {
                return Ok(default);
            };
            match parse_duration(value) {
                Err(reason) => Err(ConfigError::Invalid { field, reason }),
                Ok(d) if d.is_zero() => Err(ConfigError::Zero { field }),
                Ok(d) => Ok(d),
            }
        };

        let proxy_real_ip_cidr = if proxy.proxy_real_ip_cidr.is_empty() {
            defaults.proxy_real_ip_cidr
        } else {
            proxy
                .proxy_real_ip_cidr
                .iter()
                .map(|c| {
                    c.parse().map_err(|reason| ConfigError::Invalid {
                        field: "proxyRealIpCidr",
                        reason,
                    })
                })
                .collect::<Result<_, _>>()?
        };

        let limit_req_status_code = match proxy.limit_req_status_code {
            None => defaults.limit_req_status_code,
            Some(v) => in_range("limitReqStatusCode", v.into(), 400, 599)?,
        };

        let proxy_next_upstream_tries = match proxy.proxy_next_upstream_tries {
            None => defaults.proxy_next_upstream_tries,
            Some(v) => in_range(
                "proxyNextUpstreamTries",
                v.into(),
                0,
                MAX_PROXY_NEXT_UPSTREAM_TRIES.into(),
            )?,
        };

        let default_ssl_certificate = match &proxy.default_ssl_certificate {
            None => None,
            Some(name) if is_dns1123_subdomain(name) => Some(name.clone()),
            Some(name) => {
                return Err(ConfigError::Invalid {
                    field: "defaultSslCertificate",
                    reason: if name.is_empty() {
                        ParseError::Empty
                    } else {
                        ParseError::InvalidName {
                            value: name.clone(),
                        }
                    },
                });
            }
        };

        Ok(DataplaneConfig {
            ssl_protocols,
            ssl_ciphers,
            hsts: proxy.hsts.unwrap_or(defaults.hsts),
            hsts_max_age,
            hsts_include_subdomains: proxy
                .hsts_include_subdomains
                .unwrap_or(defaults.hsts_include_subdomains),
            hsts_preload: proxy.hsts_preload.unwrap_or(defaults.hsts_preload),
            proxy_body_size,
            proxy_connect_timeout: timeout(
                "proxyConnectTimeout",
                &proxy.proxy_connect_timeout,
                defaults.proxy_connect_timeout,
            )?,
            proxy_read_timeout: timeout(
                "proxyReadTimeout",
                &proxy.proxy_read_timeout,
                defaults.proxy_read_timeout,
            )?,
            proxy_send_timeout: timeout(
                "proxySendTimeout",
                &proxy.proxy_send_timeout,
                defaults.proxy_send_timeout,
            )?,
            use_forwarded_headers: proxy
                .use_forwarded_headers
                .unwrap_or(defaults.use_forwarded_headers),
            enable_real_ip: proxy.enable_real_ip.unwrap_or(defaults.enable_real_ip),
            proxy_real_ip_cidr,
            limit_req_status_code,
            enable_ssl_passthrough: proxy
                .enable_ssl_passthrough
                .unwrap_or(defaults.enable_ssl_passthrough),
            disable_catch_all: proxy
                .disable_catch_all
                .unwrap_or(defaults.disable_catch_all),
            default_ssl_certificate,
            proxy_next_upstream_tries,
        })
    }

    /// The fully filled-in settings in `spec.proxy` form, with sizes and durations in their
    /// shortest exact syntax. [`DataplaneConfig::from_proxy`] of the result is `self` again.
    pub fn to_proxy(&self) -> ProxySettings {
        ProxySettings {
            ssl_protocols: self.ssl_protocols.clone(),
            ssl_ciphers: self.ssl_ciphers.clone(),
            hsts: Some(self.hsts),
            hsts_max_age: Some(saturating_i64(self.hsts_max_age)),
            hsts_include_subdomains: Some(self.hsts_include_subdomains),
            hsts_preload: Some(self.hsts_preload),
            proxy_body_size: Some(self.proxy_body_size.to_string()),
            proxy_connect_timeout: Some(format_duration(self.proxy_connect_timeout)),
            proxy_read_timeout: Some(format_duration(self.proxy_read_timeout)),
            proxy_send_timeout: Some(format_duration(self.proxy_send_timeout)),
            use_forwarded_headers: Some(self.use_forwarded_headers),
            enable_real_ip: Some(self.enable_real_ip),
            proxy_real_ip_cidr: self
                .proxy_real_ip_cidr
                .iter()
                .map(|c| c.to_string())
                .collect(),
            limit_req_status_code: Some(i32::from(self.limit_req_status_code)),
            enable_ssl_passthrough: Some(self.enable_ssl_passthrough),
            disable_catch_all: Some(self.disable_catch_all),
            default_ssl_certificate: self.default_ssl_certificate.clone(),
            proxy_next_upstream_tries: Some(
                i32::try_from(self.proxy_next_upstream_tries).unwrap_or(i32::MAX),
            ),
        }
    }

    /// The ConfigMap document: pretty JSON (people read it with `kubectl get -o yaml`), keys in
    /// a fixed order so an unchanged config renders byte-for-byte the same.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_proxy())
            .expect("ProxySettings holds only strings, numbers, booleans and lists of them")
    }

    /// Parses the ConfigMap document. Missing keys take their defaults; unknown keys are
    /// ignored (a newer operator may write settings an older data plane does not know yet).
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let proxy: ProxySettings = serde_json::from_str(json)?;
        DataplaneConfig::from_proxy(&proxy)
    }

    /// The ConfigMap `data`: one key, [`CONFIG_MAP_KEY`].
    pub fn to_config_map_data(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(CONFIG_MAP_KEY.to_owned(), self.to_json())])
    }

    /// Reads the ConfigMap `data` written by [`DataplaneConfig::to_config_map_data`].
    pub fn from_config_map_data(data: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let json = data.get(CONFIG_MAP_KEY).ok_or(ConfigError::MissingKey)?;
        DataplaneConfig::from_json(json)
    }

    /// The Strict-Transport-Security header value for TLS hosts, `None` when HSTS is off.
    pub fn hsts_header(&self) -> Option<String> {
        if !self.hsts {
            return None;
        }
        let mut value = format!("max-age={}", self.hsts_max_age);
        if self.hsts_include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.hsts_preload {
            value.push_str("; preload");
        }
        Some(value)
    }
}

impl TryFrom<ProxySettings> for DataplaneConfig {
    type Error = ConfigError;

    fn try_from(proxy: ProxySettings) -> Result<Self, Self::Error> {
        DataplaneConfig::from_proxy(&proxy)
    }
}

impl From<DataplaneConfig> for ProxySettings {
    fn from(config: DataplaneConfig) -> Self {
        config.to_proxy()
    }
}

/// Checks `min <= value <= max` and converts to the type the setting is stored in.
fn in_range<T: TryFrom<i64>>(
    field: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<T, ConfigError> {
    let out_of_range = || ConfigError::OutOfRange {
        field,
        value,
        min,
        max,
    };
    if value < min || value > max {
        return Err(out_of_range());
    }
    T::try_from(value).map_err(|_| out_of_range())
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A lowercase RFC 1123 subdomain of at most 253 characters: dot-separated labels of lowercase
/// letters, digits and '-', each starting and ending with a letter or digit.
fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_size(v: &str) -> ParseError {
        ParseError::InvalidSize { value: v.into() }
    }
    fn invalid_duration(v: &str) -> ParseError {
        ParseError::InvalidDuration { value: v.into() }
    }
    fn overflow(v: &str) -> ParseError {
        ParseError::Overflow { value: v.into() }
    }

    #[test]
    fn parse_size_table() {
        let cases: &[(&str, Result<u64, ParseError>)] = &[
            ("0", Ok(0)),
            ("1", Ok(1)),
            ("1024", Ok(1024)),
            ("8k", Ok(8 * 1024)),
            ("8K", Ok(8 * 1024)),
            ("1m", Ok(1024 * 1024)),
            ("1M", Ok(1024 * 1024)),
            ("2g", Ok(2 * 1024 * 1024 * 1024)),
            ("2G", Ok(2 * 1024 * 1024 * 1024)),
            ("08k", Ok(8 * 1024)),
            ("0m", Ok(0)),
            ("", Err(ParseError::Empty)),
            ("m", Err(invalid_size("m"))),
            ("1mb", Err(invalid_size("1mb"))),
            ("1.5m", Err(invalid_size("1.5m"))),
            ("-1", Err(invalid_size("-1"))),
            ("+1", Err(invalid_size("+1"))),
            (" 1m", Err(invalid_size(" 1m"))),
            ("1m ", Err(invalid_size("1m "))),
            ("1 m", Err(invalid_size("1 m"))),
            ("1t", Err(invalid_size("1t"))),
            ("1kk", Err(invalid_size("1kk"))),
            ("１", Err(invalid_size("１"))),
            ("18446744073709551615", Ok(u64::MAX)),
            (
                "18446744073709551616",
                Err(overflow("18446744073709551616")),
            ),
            ("17179869184g", Err(overflow("17179869184g"))),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_size(input), want, "parse_size({input:?})");
        }
    }

    #[test]
    fn format_size_round_trips() {
        let cases = [
            (0, "0"),
            (1, "1"),
            (1000, "1000"),
            (1024, "1k"),
            (1536, "1536"),
            (3 * 1024, "3k"),
            (1024 * 1024, "1m"),
            (1024 * 1024 * 1024, "1g"),
            (1025 * 1024, "1025k"),
        ];
        for (bytes, want) in cases {
            assert_eq!(format_size(bytes), want);
            assert_eq!(parse_size(want), Ok(bytes), "round trip of {want}");
        }
    }

    #[test]
    fn parse_duration_table() {
        let secs = Duration::from_secs;
        let cases: &[(&str, Result<Duration, ParseError>)] = &[
            ("60", Ok(secs(60))),
            ("0", Ok(secs(0))),
            ("60s", Ok(secs(60))),
            ("5m", Ok(secs(300))),
            ("1h", Ok(secs(3600))),
            ("1d", Ok(secs(86400))),
            ("500ms", Ok(Duration::from_millis(500))),
            ("007s", Ok(secs(7))),
            ("", Err(ParseError::Empty)),
            ("s", Err(invalid_duration("s"))),
            ("ms", Err(invalid_duration("ms"))),
            ("1.5s", Err(invalid_duration("1.5s"))),
            ("-1s", Err(invalid_duration("-1s"))),
            ("1m30s", Err(invalid_duration("1m30s"))),
            ("5 s", Err(invalid_duration("5 s"))),
            (" 5s", Err(invalid_duration(" 5s"))),
            ("5S", Err(invalid_duration("5S"))),
            ("5sec", Err(invalid_duration("5sec"))),
            ("1w", Err(invalid_duration("1w"))),
            ("1us", Err(invalid_duration("1us"))),
            (
                "99999999999999999999",
                Err(overflow("99999999999999999999")),
            ),
            (
                "18446744073709551615d",
                Err(overflow("18446744073709551615d")),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_duration(input), want, "parse_duration({input:?})");
        }
    }

    #[test]
    fn format_duration_round_trips() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(86400), "1d"),
            (Duration::from_millis(1500), "1500ms"),
        ];
        for (duration, want) in cases {
            assert_eq!(format_duration(duration), want);
            assert_eq!(parse_duration(want), Ok(duration), "round trip of {want}");
        }
    }

    #[test]
    fn body_size_limit_zero_is_unlimited() {
        let cases = [
            ("0", None, "0"),
            ("1m", Some(1024 * 1024), "1m"),
            ("8192", Some(8192), "8k"),
        ];
        for (input, bytes, canonical) in cases {
            let limit: BodySizeLimit = input.parse().expect(input);
            assert_eq!(limit.max_bytes(), bytes, "{input}");
            assert_eq!(limit.to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn ip_cidr_table() {
        let ok = [
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.1.2.3/8"),
            ("192.168.1.1/32", "192.168.1.1/32"),
            ("::/0", "::/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:DB8::/128", "2001:db8::/128"),
        ];
        for (input, display) in ok {
            let cidr: IpCidr = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(cidr.to_string(), display);
        }
        let bad = [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/08",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0/8",
            "010.0.0.0/8",
            "10.0.0.0/8 ",
            "2001:db8::/129",
            "example.com/8",
            "10.0.0.0/8/8",
        ];
        for input in bad {
            assert!(input.parse::<IpCidr>().is_err(), "{input:?} parsed");
        }
    }

    #[test]
    fn ip_cidr_contains() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.1.2.3/8", "10.9.9.9", true),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::1", false),
            ("192.168.1.1/32", "192.168.1.1", true),
            ("192.168.1.1/32", "192.168.1.2", false),
            ("2001:db8::/32", "2001:db8:1::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "::1", true),
        ];
        for (cidr, ip, want) in cases {
            let cidr: IpCidr = cidr.parse().expect(cidr);
            let ip: IpAddr = ip.parse().expect(ip);
            assert_eq!(cidr.contains(ip), want, "{cidr} contains {ip}");
        }
    }

    #[test]
    fn empty_proxy_gives_ingress_nginx_defaults() {
        let config = DataplaneConfig::from_proxy(&ProxySettings::default()).expect("defaults");
        assert_eq!(config, DataplaneConfig::default());
        assert_eq!(config.proxy_body_size.max_bytes(), Some(1024 * 1024));
        assert_eq!(config.proxy_connect_timeout, Duration::from_secs(5));
        assert_eq!(config.proxy_read_timeout, Duration::from_secs(60));
        assert_eq!(config.proxy_send_timeout, Duration::from_secs(60));
        assert_eq!(config.proxy_next_upstream_tries, 3);
        assert_eq!(
            config.ssl_protocols,
            [TlsProtocol::Tls12, TlsProtocol::Tls13]
        );
        assert_eq!(config.limit_req_status_code, 503);
        assert!(!config.use_forwarded_headers);
        assert_eq!(
            config.hsts_header().as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
    }

    #[test]
    fn settings_override_defaults() {
        let proxy = ProxySettings {
            ssl_protocols: vec![TlsProtocol::Tls13, TlsProtocol::Tls13],
            ssl_ciphers: vec![
                CipherSuite::Tls13Aes256GcmSha384,
                CipherSuite::EcdheRsaAes128GcmSha256,
                CipherSuite::Tls13Aes256GcmSha384,
            ],
            hsts: Some(true),
            hsts_max_age: Some(600),
            hsts_include_subdomains: Some(false),
            hsts_preload: Some(true),
            proxy_body_size: Some("8m".into()),
            proxy_connect_timeout: Some("2".into()),
            proxy_read_timeout: Some("2m".into()),
            proxy_send_timeout: Some("1500ms".into()),
            use_forwarded_headers: Some(true),
            enable_real_ip: Some(true),
            proxy_real_ip_cidr: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            limit_req_status_code: Some(429),
            enable_ssl_passthrough: Some(true),
            disable_catch_all: Some(true),
            default_ssl_certificate: Some("wildcard-tls".into()),
            proxy_next_upstream_tries: Some(0),
        };
        let config = DataplaneConfig::from_proxy(&proxy).expect("valid");
        assert_eq!(config.ssl_protocols, [TlsProtocol::Tls13]);
        assert_eq!(
            config.ssl_ciphers,
            [
                CipherSuite::Tls13Aes256GcmSha384,
                CipherSuite::EcdheRsaAes128GcmSha256
            ]
        );
        assert_eq!(
            config.hsts_header().as_deref(),
            Some("max-age=600; preload")
        );
        assert_eq!(config.proxy_body_size.max_bytes(), Some(8 * 1024 * 1024));
        assert_eq!(config.proxy_connect_timeout, Duration::from_secs(2));
        assert_eq!(config.proxy_read_timeout, Duration::from_secs(120));
        assert_eq!(config.proxy_send_timeout, Duration::from_millis(1500));
        assert_eq!(config.proxy_real_ip_cidr.len(), 2);
        assert_eq!(config.limit_req_status_code, 429);
        assert_eq!(
            config.default_ssl_certificate.as_deref(),
            Some("wildcard-tls")
        );
        assert_eq!(config.proxy_next_upstream_tries, 0);
        assert!(config.use_forwarded_headers && config.enable_real_ip);
        assert!(config.enable_ssl_passthrough && config.disable_catch_all);

        // Rendering and parsing back is lossless.
        assert_eq!(
            DataplaneConfig::from_proxy(&config.to_proxy()).expect("re-parse"),
            config
        );
        assert_eq!(
            DataplaneConfig::from_json(&config.to_json()).expect("json"),
            config
        );
    }

    #[test]
    fn invalid_settings_name_their_field() {
        type Edit = fn(&mut ProxySettings);
        let cases: &[(Edit, &str, &str)] = &[
            (
                |p| p.proxy_body_size = Some("1mb".into()),
                "proxyBodySize",
                "is not a size",
            ),
            (
                |p| p.proxy_body_size = Some(String::new()),
                "proxyBodySize",
                "must not be empty",
            ),
            (
                |p| p.proxy_connect_timeout = Some("5 s".into()),
                "proxyConnectTimeout",
                "is not a duration",
            ),
            (
                |p| p.proxy_connect_timeout = Some("0".into()),
                "proxyConnectTimeout",
                "greater than zero",
            ),
            (
                |p| p.proxy_read_timeout = Some("1m30s".into()),
                "proxyReadTimeout",
                "is not a duration",
            ),
            (
                |p| p.proxy_send_timeout = Some("0ms".into()),
                "proxySendTimeout",
                "greater than zero",
            ),
            (
                |p| p.proxy_real_ip_cidr = vec!["10.0.0.0/8".into(), "10.0.0.1".into()],
                "proxyRealIpCidr",
                "is not a CIDR",
            ),
            (
                |p| p.limit_req_status_code = Some(200),
                "limitReqStatusCode",
                "between 400 and 599",
            ),
            (|p| p.hsts_max_age = Some(-1), "hstsMaxAge", "out of range"),
            (
                |p| p.hsts_max_age = Some(315_360_001),
                "hstsMaxAge",
                "out of range",
            ),
            (
                |p| p.proxy_next_upstream_tries = Some(21),
                "proxyNextUpstreamTries",
                "between 0 and 20",
            ),
            (
                |p| p.proxy_next_upstream_tries = Some(-1),
                "proxyNextUpstreamTries",
                "out of range",
            ),
            (
                |p| p.default_ssl_certificate = Some("Bad_Name".into()),
                "defaultSslCertificate",
                "RFC 1123",
            ),
            (
                |p| p.default_ssl_certificate = Some("ns/name".into()),
                "defaultSslCertificate",
                "RFC 1123",
            ),
            (
                |p| p.default_ssl_certificate = Some(String::new()),
                "defaultSslCertificate",
                "must not be empty",
            ),
        ];
        for (edit, field, message) in cases {
            let mut proxy = ProxySettings::default();
            edit(&mut proxy);
            let err = DataplaneConfig::from_proxy(&proxy).expect_err(field);
            assert_eq!(err.field(), Some(*field), "{err}");
            let text = err.to_string();
            assert!(text.starts_with(&format!("{field}: ")), "{text}");
            assert!(
                text.contains(message),
                "{text:?} should contain {message:?}"
            );
        }
    }

    #[test]
    fn config_map_json() {
        let data = DataplaneConfig::default().to_config_map_data();
        assert_eq!(data.keys().collect::<Vec<_>>(), [CONFIG_MAP_KEY]);
        let json: serde_json::Value = serde_json::from_str(&data[CONFIG_MAP_KEY]).expect("json");
        // Every setting is spelled out, with the spec.proxy names and nginx syntax.
        assert_eq!(json["proxyBodySize"], "1m");
        assert_eq!(json["proxyConnectTimeout"], "5s");
        assert_eq!(json["proxyReadTimeout"], "1m");
        assert_eq!(
            json["sslProtocols"],
            serde_json::json!(["TLSv1.2", "TLSv1.3"])
        );
        assert_eq!(json["proxyRealIpCidr"], serde_json::json!(["0.0.0.0/0"]));
        assert_eq!(json["hstsMaxAge"], 31_536_000);
        assert!(
            json.get("defaultSslCertificate").is_none(),
            "unset stays unset, never null"
        );
        assert!(!data[CONFIG_MAP_KEY].contains("null"));
        assert_eq!(
            DataplaneConfig::from_config_map_data(&data).expect("parse"),
            DataplaneConfig::default()
        );
        // Serde goes through the same validation.
        let via_serde: DataplaneConfig =
            serde_json::from_str(&data[CONFIG_MAP_KEY]).expect("serde");
        assert_eq!(via_serde, DataplaneConfig::default());
    }

    #[test]
    fn config_map_parse_table() {
        type Check = fn(Result<DataplaneConfig, ConfigError>);
        let cases: &[(&str, Check)] = &[
            ("{}", |r| {
                assert_eq!(r.expect("defaults"), DataplaneConfig::default())
            }),
            (r#"{"futureSetting": 1, "proxyBodySize": "0"}"#, |r| {
                assert_eq!(
                    r.expect("unknown keys ignored").proxy_body_size,
                    BodySizeLimit::Unlimited
                )
            }),
            (r#"{"proxyBodySize": "1x"}"#, |r| {
                assert_eq!(r.expect_err("bad size").field(), Some("proxyBodySize"))
            }),
            (r#"{"sslProtocols": ["TLSv1.1"]}"#, |r| {
                assert!(matches!(r, Err(ConfigError::Json(_))))
            }),
            (r#"{"hsts": "yes"}"#, |r| {
                assert!(matches!(r, Err(ConfigError::Json(_))))
            }),
            ("not json", |r| {
                assert!(matches!(r, Err(ConfigError::Json(_))))
            }),
        ];
        for (json, check) in cases {
            check(DataplaneConfig::from_json(json));
        }
        assert!(matches!(
            DataplaneConfig::from_config_map_data(&BTreeMap::new()),
            Err(ConfigError::MissingKey)
        ));
        // serde's path reports the field too, through the error's message.
        let err = serde_json::from_str::<DataplaneConfig>(r#"{"proxyReadTimeout": "soon"}"#)
            .expect_err("bad duration");
        assert!(err.to_string().contains("proxyReadTimeout"), "{err}");
    }

    #[test]
    fn hsts_header_table() {
        let cases = [
            (false, true, false, None),
            (
                true,
                true,
                false,
                Some("max-age=31536000; includeSubDomains"),
            ),
            (true, false, false, Some("max-age=31536000")),
            (
                true,
                true,
                true,
                Some("max-age=31536000; includeSubDomains; preload"),
            ),
        ];
        for (hsts, subdomains, preload, want) in cases {
            let config = DataplaneConfig {
                hsts,
                hsts_include_subdomains: subdomains,
                hsts_preload: preload,
                ..DataplaneConfig::default()
            };
            assert_eq!(config.hsts_header().as_deref(), want);
        }
    }

    #[test]
    fn dns1123_subdomain_table() {
        let cases = [
            ("a", true),
            ("tls-cert", true),
            ("a.b.c", true),
            ("0abc", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("A", false),
            ("a..b", false),
            ("a_b", false),
            (".a", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_dns1123_subdomain(name), want, "{name:?}");
        }
        assert!(is_dns1123_subdomain(&"a".repeat(253)));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    }
}
