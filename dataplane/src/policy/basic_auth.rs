//! HTTP Basic (RFC 7617) and Digest (RFC 7616, MD5 with `qop=auth`) authentication for the
//! ingress-nginx annotations `auth-type`, `auth-secret`, `auth-secret-type` and `auth-realm`.
//!
//! Two steps, both pure (no I/O besides the clock and the process's random key):
//!
//! 1. [`Credentials::from_secret`] parses the mirrored Secret's data (an htpasswd/htdigest file
//!    under the key `auth`, or one key per user) into verified-shape credentials. Any invalid
//!    line makes the whole Secret invalid: the caller fails closed rather than serving the
//!    Ingress without authentication.
//! 2. [`Authenticator::check`] decides one request from its `Authorization` header: allowed as
//!    a user, or a `WWW-Authenticate` challenge to send with a 401.
//!
//! Accepted password hashes (Basic): bcrypt (`$2y$`, `$2a$`, `$2b$`), `{SHA}`, Apache MD5
//! crypt (`$apr1$`) and its glibc twin (`$1$`). Plain text and DES crypt(3) are rejected: they
//! are either not hashed at all or trivially brute-forced.
//!
//! Digest nonces are stateless (a timestamp authenticated with a per-process HMAC key) and
//! valid for [`NONCE_LIFETIME_SECS`]; there is no nonce-count tracking, so a captured request
//! can be replayed for the same method and URI until its nonce expires. That is the price of
//! not sharing state between proxy replicas; Basic over TLS is the stronger choice.
//!
//! Errors and `Debug` output never contain password hashes or passwords.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{constant_time, digest, hmac, rand};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use http::{HeaderValue, Method};
use md5::{Digest as _, Md5};
use sluice_crds::annotations::{AuthScheme, AuthSecretType};

/// The Secret key under which an `auth-file` Secret holds its htpasswd or htdigest file.
pub const AUTH_FILE_KEY: &str = "auth";

/// How long a Digest nonce is accepted after it was issued.
pub const NONCE_LIFETIME_SECS: u64 = 300;

/// How many verified slow-hash (bcrypt, MD5 crypt) successes one [`Credentials`] remembers.
pub const CACHE_CAPACITY: usize = 1024;

/// Longer `Authorization` headers are not even decoded: no legitimate credential needs it.
const MAX_AUTHORIZATION_LEN: usize = 4096;

/// Nonces from a clock this far ahead are tolerated (the clock may step back a little).
const NONCE_FUTURE_SKEW_SECS: u64 = 60;

/// Realm used if the configured one cannot go into a header (it is validated upstream).
const FALLBACK_REALM: &str = "Authentication Required";

/// The crypt(3) base-64 alphabet (MD5 crypt output, salts, DES crypt).
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Basic credentials in standard base64; padding is optional because some clients drop it.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a Secret cannot be used as credentials. Messages name the Secret key and, for files,
/// the 1-based line; they never carry password hashes or passwords.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// `auth-secret-type: auth-file` but the Secret has no `auth` key.
    #[error(
        "the Secret has no key \"auth\" (auth-secret-type auth-file expects an {0} file there)"
    )]
    MissingAuthKey(&'static str),
    /// One line of the `auth` file is invalid.
    #[error("Secret key \"{key}\", line {line}: {problem}")]
    InvalidLine {
        /// The Secret key holding the file.
        key: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// One `auth-map` entry is invalid.
    #[error("Secret key \"{key}\": {problem}")]
    InvalidEntry {
        /// The Secret key (the user name).
        key: String,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// Only blank lines and comments, or an empty Secret.
    #[error("the Secret holds no credentials")]
    NoCredentials,
    /// Digest: no htdigest entry can be used with the `auth-realm` of the Ingress.
    #[error("no htdigest entry has the realm \"{realm}\" set by auth-realm")]
    RealmMismatch {
        /// The configured realm.
        realm: String,
    },
    /// The process could not get its random key.
    #[error("the system random number generator failed")]
    Random,
}

/// What is wrong with one credential line or entry. Carries only static text and numbers, so
/// it cannot leak secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// The bytes are not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The `:`-separated fields are missing.
    #[error("expected `{0}`")]
    MissingSeparator(&'static str),
    /// Nothing before the first `:`.
    #[error("empty user name")]
    EmptyUser,
    /// Nothing after the user name.
    #[error("empty password hash")]
    EmptyHash,
    /// htdigest: nothing between user and HA1.
    #[error("empty realm")]
    EmptyRealm,
    /// A hash form that is deliberately not accepted.
    #[error("unsupported password hash ({0}); use htpasswd -B (bcrypt) or -m (apr1)")]
    Unsupported(&'static str),
    /// A supported hash form, but malformed.
    #[error("malformed password hash: {0}")]
    Malformed(&'static str),
    /// bcrypt outside the cost range the algorithm defines.
    #[error("bcrypt cost {0} is outside 4..=31")]
    BcryptCost(u32),
    /// htdigest: the last field is not an MD5 digest.
    #[error("HA1 must be 32 hexadecimal digits (MD5 of user:realm:password)")]
    InvalidHa1,
    /// The same user (and, for Digest, realm) appears twice.
    #[error("duplicate user (first defined on line {0})")]
    Duplicate(usize),
}

/// A stored Basic password hash.
#[derive(Clone, PartialEq, Eq)]
enum PasswordHash {
    /// The full `$2y$…` string, validated at parse time.
    Bcrypt(String),
    /// `{SHA}`: the raw SHA-1 digest.
    Sha1([u8; 20]),
    /// `$apr1$` or `$1$`: salt and the 22-character encoded digest.
    Md5Crypt {
        magic: Md5CryptMagic,
        salt: String,
        hash: [u8; 22],
    },
}

/// The two spellings of MD5 crypt: the algorithm is the same, the magic is hashed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Md5CryptMagic {
    Apr1,
    Glibc,
}

impl Md5CryptMagic {
    fn prefix(self) -> &'static str {
        match self {
            Md5CryptMagic::Apr1 => "$apr1$",
            Md5CryptMagic::Glibc => "$1$",
        }
    }
}

impl PasswordHash {
    fn kind(&self) -> &'static str {
        match self {
            PasswordHash::Bcrypt(_) => "bcrypt",
            PasswordHash::Sha1(_) => "{SHA}",
            PasswordHash::Md5Crypt {
                magic: Md5CryptMagic::Apr1,
                ..
            } => "apr1",
            PasswordHash::Md5Crypt {
                magic: Md5CryptMagic::Glibc,
                ..
            } => "md5-crypt",
        }
    }
}

/// One htdigest entry for a user.
#[derive(Clone, PartialEq, Eq)]
struct DigestEntry {
    /// `None` for an `auth-map` value without a realm: it matches whichever realm is set.
    realm: Option<String>,
    /// MD5(user:realm:password).
    ha1: [u8; 16],
}

#[derive(Clone, PartialEq, Eq)]
enum Users {
    Basic(BTreeMap<String, PasswordHash>),
    Digest(BTreeMap<String, Vec<DigestEntry>>),
}

/// The users of one auth Secret, ready to verify requests against.
///
/// Equality compares the scheme and the users with their hashes, not the verification cache,
/// so the proxy can tell whether a reloaded Secret actually changed.
pub struct Credentials {
    users: Users,
    /// Verified slow-hash successes, keyed by an HMAC of (user, password, stored hash).
    cache: Mutex<SuccessCache>,
    /// Slow verifications performed (cache misses), so tests can see the cache work.
    #[cfg(test)]
    slow_verifications: std::sync::atomic::AtomicUsize,
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        self.users == other.users
    }
}

impl Eq for Credentials {}

impl fmt::Debug for Credentials {
    // Hand-written so hashes never reach logs: user names and hash kinds only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Credentials");
        out.field("scheme", &self.scheme());
        match &self.users {
            Users::Basic(users) => {
                let kinds: BTreeMap<&str, &str> = users
                    .iter()
                    .map(|(user, hash)| (user.as_str(), hash.kind()))
                    .collect();
                out.field("users", &kinds);
            }
            Users::Digest(users) => {
                let realms: BTreeMap<&str, Vec<Option<&str>>> = users
                    .iter()
                    .map(|(user, entries)| {
                        let realms = entries.iter().map(|e| e.realm.as_deref()).collect();
                        (user.as_str(), realms)
                    })
                    .collect();
                out.field("users", &realms);
            }
        }
        out.finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses the data of the `auth-secret` Secret.
    ///
    /// `auth-file`: the key `auth` holds an htpasswd file (Basic) or an htdigest file
    /// (`user:realm:HA1`, Digest). `auth-map`: every key is a user name and its value the
    /// password hash (Basic) or `HA1` / `realm:HA1` (Digest). Blank lines and `#` comments are
    /// skipped; any other invalid line fails the whole Secret, as does an empty one.
    pub fn from_secret(
        scheme: AuthScheme,
        secret_type: AuthSecretType,
        data: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Credentials, CredentialsError> {
        // Needed for the cache and the nonces; failing here fails the Ingress closed at load
        // time instead of on every request.
        process_key().ok_or(CredentialsError::Random)?;
        let users = match (scheme, secret_type) {
            (AuthScheme::Basic, AuthSecretType::AuthFile) => {
                Users::Basic(parse_htpasswd(auth_file(data, "htpasswd")?)?)
            }
            (AuthScheme::Basic, AuthSecretType::AuthMap) => Users::Basic(parse_basic_map(data)?),
            (AuthScheme::Digest, AuthSecretType::AuthFile) => {
                Users::Digest(parse_htdigest(auth_file(data, "htdigest")?)?)
            }
            (AuthScheme::Digest, AuthSecretType::AuthMap) => Users::Digest(parse_digest_map(data)?),
        };
        let credentials = Credentials {
            users,
            cache: Mutex::new(SuccessCache::default()),
            #[cfg(test)]
            slow_verifications: std::sync::atomic::AtomicUsize::new(0),
        };
        if credentials.is_empty() {
            return Err(CredentialsError::NoCredentials);
        }
        Ok(credentials)
    }

    /// Basic or Digest.
    pub fn scheme(&self) -> AuthScheme {
        match self.users {
            Users::Basic(_) => AuthScheme::Basic,
            Users::Digest(_) => AuthScheme::Digest,
        }
    }

    /// The number of entries (users for Basic; user and realm pairs for Digest).
    pub fn len(&self) -> usize {
        match &self.users {
            Users::Basic(users) => users.len(),
            Users::Digest(users) => users.values().map(Vec::len).sum(),
        }
    }

    /// Whether there are no entries (never true for parsed credentials).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The user names, sorted.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        let names: Vec<&str> = match &self.users {
            Users::Basic(users) => users.keys().map(String::as_str).collect(),
            Users::Digest(users) => users.keys().map(String::as_str).collect(),
        };
        names.into_iter()
    }

    /// How many entries can authenticate in `realm` (all of them for Basic).
    pub fn usable_in_realm(&self, realm: &str) -> usize {
        match &self.users {
            Users::Basic(users) => users.len(),
            Users::Digest(users) => users
                .values()
                .flatten()
                .filter(|entry| entry.realm.as_deref().is_none_or(|r| r == realm))
                .count(),
        }
    }

    /// Basic: whether `password` is the password of `user`.
    fn verify_basic(&self, user: &str, password: &[u8]) -> bool {
        let Users::Basic(users) = &self.users else {
            return false;
        };
        let Some(stored) = users.get(user) else {
            return false;
        };
        match stored {
            PasswordHash::Sha1(expected) => {
                let actual = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password);
                ct_eq(actual.as_ref(), expected)
            }
            PasswordHash::Bcrypt(hash) => self.cached(user, password, hash.as_bytes(), || {
                // verify only fails on a malformed hash, which parsing already excluded.
                bcrypt::verify(password, hash).unwrap_or(false)
            }),
            PasswordHash::Md5Crypt { magic, salt, hash } => {
                self.cached(user, password, hash, || {
                    ct_eq(&md5_crypt(*magic, salt.as_bytes(), password), hash)
                })
            }
        }
    }

    /// Runs a slow `verify` unless this exact (user, password, stored hash) succeeded before.
    /// Only successes are remembered, keyed by the password itself, so a wrong password can
    /// never hit the cache.
    fn cached(
        &self,
        user: &str,
        password: &[u8],
        stored: &[u8],
        verify: impl FnOnce() -> bool,
    ) -> bool {
        let key = cache_key(user, password, stored);
        if let Some(key) = &key
            && self.lock_cache().contains(key)
        {
            return true;
        }
        #[cfg(test)]
        self.slow_verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The lock is not held here: bcrypt takes tens of milliseconds.
        let ok = verify();
        if ok && let Some(key) = key {
            self.lock_cache().insert(key);
        }
        ok
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, SuccessCache> {
        // The set is consistent after any panic (single insert/remove calls), so a poisoned
        // lock is still usable.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Digest: the HA1s of `user` usable in `realm`.
    fn digest_entries<'a>(
        &'a self,
        user: &str,
        realm: &'a str,
    ) -> impl Iterator<Item = &'a [u8; 16]> + 'a {
        let entries = match &self.users {
            Users::Digest(users) => users.get(user).map(Vec::as_slice).unwrap_or_default(),
            Users::Basic(_) => &[],
        };
        entries
            .iter()
            .filter(move |entry| entry.realm.as_deref().is_none_or(|r| r == realm))
            .map(|entry| &entry.ha1)
    }
}

/// A bounded set of verified successes. Eviction is arbitrary (the hash set's iteration
/// order), which is enough to bound memory; a popular credential comes back on its next use.
#[derive(Default)]
struct SuccessCache {
    entries: HashSet<[u8; 32]>,
}

impl SuccessCache {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries.contains(key)
    }

    fn insert(&mut self, key: [u8; 32]) {
        if self.entries.len() >= CACHE_CAPACITY
            && !self.entries.contains(&key)
            && let Some(victim) = self.entries.iter().next().copied()
        {
            self.entries.remove(&victim);
        }
        self.entries.insert(key);
    }
}

/// Keyed with the process key rather than a plain SHA-256 so a memory dump does not give a
/// fast oracle for guessing the passwords behind slow hashes. Fields are length-prefixed so
/// different splits cannot collide.
fn cache_key(user: &str, password: &[u8], stored: &[u8]) -> Option<[u8; 32]> {
    let key = process_key()?;
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"sluice-basic-auth-cache\0");
    for field in [user.as_bytes(), password, stored] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field);
    }
    ctx.sign().as_ref().try_into().ok()
}

/// The per-process HMAC key for nonces and the cache; `None` only if the RNG failed.
fn process_key() -> Option<&'static hmac::Key> {
    static KEY: OnceLock<Option<hmac::Key>> = OnceLock::new();
    KEY.get_or_init(|| hmac::Key::generate(hmac::HMAC_SHA256, &rand::SystemRandom::new()).ok())
        .as_ref()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

fn auth_file<'a>(
    data: &'a BTreeMap<String, Vec<u8>>,
    format: &'static str,
) -> Result<&'a [u8], CredentialsError> {
    data.get(AUTH_FILE_KEY)
        .map(Vec::as_slice)
        .ok_or(CredentialsError::MissingAuthKey(format))
}

/// The lines that carry entries: (1-based number, text), skipping blank lines and comments.
fn entry_lines(file: &[u8]) -> impl Iterator<Item = (usize, Result<&str, EntryProblem>)> {
    file.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(index, raw)| {
            let raw = raw.trim_ascii();
            if raw.is_empty() || raw.starts_with(b"#") {
                return None;
            }
            let text = std::str::from_utf8(raw).map_err(|_| EntryProblem::NotUtf8);
            Some((index + 1, text))
        })
}

fn line_error(line: usize, problem: EntryProblem) -> CredentialsError {
    CredentialsError::InvalidLine {
        key: AUTH_FILE_KEY.to_owned(),
        line,
        problem,
    }
}

fn entry_error(key: &str, problem: EntryProblem) -> CredentialsError {
    CredentialsError::InvalidEntry {
        key: key.to_owned(),
        problem,
    }
}

fn parse_htpasswd(file: &[u8]) -> Result<BTreeMap<String, PasswordHash>, CredentialsError> {
    let mut users = BTreeMap::new();
    let mut first_lines = BTreeMap::new();
    for (line, text) in entry_lines(file) {
        let parsed = text.and_then(|text| {
            let (user, hash) = text
                .split_once(':')
                .ok_or(EntryProblem::MissingSeparator("user:hash"))?;
            let user = user.trim();
            if user.is_empty() {
                return Err(EntryProblem::EmptyUser);
            }
            if let Some(first) = first_lines.get(user) {
                return Err(EntryProblem::Duplicate(*first));
            }
            Ok((user, parse_password_hash(hash.trim())?))
        });
        let (user, hash) = parsed.map_err(|problem| line_error(line, problem))?;
        first_lines.insert(user.to_owned(), line);
        users.insert(user.to_owned(), hash);
    }
    Ok(users)
}

fn parse_basic_map(
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, PasswordHash>, CredentialsError> {
    let mut users = BTreeMap::new();
    for (user, value) in data {
        let parsed = map_value(user, value).and_then(parse_password_hash);
        users.insert(user.clone(), parsed.map_err(|p| entry_error(user, p))?);
    }
    Ok(users)
}

fn parse_htdigest(file: &[u8]) -> Result<BTreeMap<String, Vec<DigestEntry>>, CredentialsError> {
    let mut users: BTreeMap<String, Vec<DigestEntry>> = BTreeMap::new();
    let mut first_lines: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (line, text) in entry_lines(file) {
        let parsed = text.and_then(|text| {
            const SHAPE: EntryProblem = EntryProblem::MissingSeparator("user:realm:HA1");
            let (user, rest) = text.split_once(':').ok_or(SHAPE)?;
            // The realm may itself contain ':'; the HA1 is always the last field.
            let (realm, ha1) = rest.rsplit_once(':').ok_or(SHAPE)?;
            if user.is_empty() {
                return Err(EntryProblem::EmptyUser);
            }
            if realm.is_empty() {
                return Err(EntryProblem::EmptyRealm);
            }
            let key = (user.to_owned(), realm.to_owned());
            if let Some(first) = first_lines.get(&key) {
                return Err(EntryProblem::Duplicate(*first));
            }
            let ha1 = parse_hex16(ha1.trim()).ok_or(EntryProblem::InvalidHa1)?;
            Ok((key, ha1))
        });
        let ((user, realm), ha1) = parsed.map_err(|problem| line_error(line, problem))?;
        first_lines.insert((user.clone(), realm.clone()), line);
        users.entry(user).or_default().push(DigestEntry {
            realm: Some(realm),
            ha1,
        });
    }
    Ok(users)
}

fn parse_digest_map(
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Vec<DigestEntry>>, CredentialsError> {
    let mut users = BTreeMap::new();
    for (user, value) in data {
        let parsed = map_value(user, value).and_then(|value| {
            let (realm, ha1) = match value.rsplit_once(':') {
                Some(("", _)) => return Err(EntryProblem::EmptyRealm),
                Some((realm, ha1)) => (Some(realm.to_owned()), ha1),
                None => (None, value),
            };
            let ha1 = parse_hex16(ha1).ok_or(EntryProblem::InvalidHa1)?;
            Ok(vec![DigestEntry { realm, ha1 }])
        });
        users.insert(user.clone(), parsed.map_err(|p| entry_error(user, p))?);
    }
    Ok(users)
}

/// An `auth-map` value, trimmed (`kubectl create secret --from-file` keeps the newline).
fn map_value<'a>(user: &str, value: &'a [u8]) -> Result<&'a str, EntryProblem> {
    if user.is_empty() {
        return Err(EntryProblem::EmptyUser);
    }
    let value = std::str::from_utf8(value.trim_ascii()).map_err(|_| EntryProblem::NotUtf8)?;
    if value.is_empty() {
        return Err(EntryProblem::EmptyHash);
    }
    Ok(value)
}

fn parse_password_hash(hash: &str) -> Result<PasswordHash, EntryProblem> {
    if hash.is_empty() {
        return Err(EntryProblem::EmptyHash);
    }
    if ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
        let parts: bcrypt::HashParts = hash
            .parse()
            .map_err(|_| EntryProblem::Malformed("bcrypt (expected $2y$NN$ and 53 characters)"))?;
        let cost = parts.get_cost();
        if !(4..=31).contains(&cost) {
            return Err(EntryProblem::BcryptCost(cost));
        }
        return Ok(PasswordHash::Bcrypt(hash.to_owned()));
    }
    if let Some(encoded) = hash.strip_prefix("{SHA}") {
        const BAD: EntryProblem = EntryProblem::Malformed("{SHA} (expected base64 of 20 bytes)");
        let raw = STANDARD.decode(encoded).map_err(|_| BAD)?;
        return Ok(PasswordHash::Sha1(raw.try_into().map_err(|_| BAD)?));
    }
    for magic in [Md5CryptMagic::Apr1, Md5CryptMagic::Glibc] {
        if let Some(rest) = hash.strip_prefix(magic.prefix()) {
            return parse_md5_crypt(magic, rest);
        }
    }
    Err(EntryProblem::Unsupported(unsupported_kind(hash)))
}

fn parse_md5_crypt(magic: Md5CryptMagic, rest: &str) -> Result<PasswordHash, EntryProblem> {
    const BAD: EntryProblem =
        EntryProblem::Malformed("MD5 crypt (expected $apr1$salt$ and 22 characters)");
    let (salt, encoded) = rest.split_once('$').ok_or(BAD)?;
    // Generators truncate salts to 8 characters, so a longer one was not made by them.
    if salt.is_empty() || salt.len() > 8 {
        return Err(BAD);
    }
    let hash: [u8; 22] = encoded.as_bytes().try_into().map_err(|_| BAD)?;
    if !hash.iter().all(|b| CRYPT_ALPHABET.contains(b)) {
        return Err(BAD);
    }
    Ok(PasswordHash::Md5Crypt {
        magic,
        salt: salt.to_owned(),
        hash,
    })
}

/// A name for a rejected hash form, for the error message (the hash itself is never shown).
fn unsupported_kind(hash: &str) -> &'static str {
    let prefixes = [
        ("$2x$", "bcrypt $2x$, the pre-2011 buggy variant"),
        ("$5$", "SHA-256 crypt"),
        ("$6$", "SHA-512 crypt"),
        ("$", "an unknown crypt scheme"),
        ("{SSHA}", "salted SHA-1"),
        ("{PLAIN}", "plain text"),
        ("{", "an unknown {SCHEME}"),
    ];
    if let Some((_, kind)) = prefixes.iter().find(|(p, _)| hash.starts_with(p)) {
        return kind;
    }
    if hash.len() == 13 && hash.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
        return "crypt(3) DES";
    }
    "plain text"
}

/// Apache's MD5 crypt (`$apr1$`, and glibc's `$1$` with the other magic): 1000 rounds of MD5
/// over password and salt, encoded as 22 crypt base-64 characters. Follows
/// `apr_md5_encode` / FreeBSD's `crypt-md5.c` step by step.
fn md5_crypt(magic: Md5CryptMagic, salt: &[u8], password: &[u8]) -> [u8; 22] {
    let salt = &salt[..salt.len().min(8)];
    let alternate: [u8; 16] = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize()
        .into();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(magic.prefix().as_bytes());
    ctx.update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    // The historical quirk: a zero byte for set bits, the first password byte otherwise.
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut last: [u8; 16] = ctx.finalize().into();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round % 2 == 1 {
            ctx.update(password);
        } else {
            ctx.update(last);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round % 2 == 1 {
            ctx.update(last);
        } else {
            ctx.update(password);
        }
        last = ctx.finalize().into();
    }

    let mut out = [0u8; 22];
    let mut at = 0;
    let mut put = |value: u32, chars: usize| {
        let mut value = value;
        for _ in 0..chars {
            out[at] = CRYPT_ALPHABET[(value & 0x3f) as usize];
            value >>= 6;
            at += 1;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let value = (u32::from(last[a]) << 16) | (u32::from(last[b]) << 8) | u32::from(last[c]);
        put(value, 4);
    }
    put(u32::from(last[11]), 2);
    out
}

fn parse_hex16(text: &str) -> Option<[u8; 16]> {
    let digits = text.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The credentials are right; `user` is the authenticated user name.
    Allowed {
        /// The user name from the Secret.
        user: String,
    },
    /// Answer 401 with this `WWW-Authenticate` value.
    Challenge(HeaderValue),
}

/// Authentication of one Ingress: its realm and its Secret's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticator {
    /// `auth-realm`: printable ASCII without `"` or `\` (validated by the annotation parser).
    pub realm: String,
    /// The parsed `auth-secret`, shared by every route using it.
    pub credentials: Arc<Credentials>,
}

impl Authenticator {
    /// An authenticator, refusing Digest credentials of which no entry has `realm`: every
    /// request would be denied, which is a configuration error better reported at load time.
    pub fn new(
        realm: impl Into<String>,
        credentials: Arc<Credentials>,
    ) -> Result<Authenticator, CredentialsError> {
        let realm = realm.into();
        if credentials.usable_in_realm(&realm) == 0 {
            return Err(CredentialsError::RealmMismatch { realm });
        }
        Ok(Authenticator { realm, credentials })
    }

    /// Decides a request from its `Authorization` header, method and request URI (path and
    /// query, as in the request line; Digest requires the header's `uri` to equal it).
    ///
    /// A bcrypt credential not seen before costs one bcrypt verification (tens of
    /// milliseconds at cost 10) on the calling thread; repeated ones cost one HMAC. An
    /// unknown user is rejected without hashing, so response times reveal which users exist;
    /// user names are not treated as secret (as with nginx's auth_basic).
    pub fn check(
        &self,
        authorization: Option<&HeaderValue>,
        method: &Method,
        uri: &str,
    ) -> Outcome {
        self.check_at(authorization, method, uri, now_secs())
    }

    fn check_at(
        &self,
        authorization: Option<&HeaderValue>,
        method: &Method,
        uri: &str,
        now: u64,
    ) -> Outcome {
        match self.credentials.scheme() {
            AuthScheme::Basic => {
                if let Some((user, password)) = authorization.and_then(basic_credentials)
                    && self.credentials.verify_basic(&user, &password)
                {
                    return Outcome::Allowed { user };
                }
                Outcome::Challenge(self.basic_challenge())
            }
            AuthScheme::Digest => {
                let verdict = authorization
                    .and_then(DigestResponse::parse)
                    .map_or(DigestVerdict::Denied, |response| {
                        self.verify_digest(&response, method, uri, now)
                    });
                match verdict {
                    DigestVerdict::Allowed(user) => Outcome::Allowed { user },
                    DigestVerdict::Stale => Outcome::Challenge(self.digest_challenge(now, true)),
                    DigestVerdict::Denied => Outcome::Challenge(self.digest_challenge(now, false)),
                }
            }
        }
    }

    /// The realm as it can go into a quoted string.
    fn header_realm(&self) -> &str {
        let ok = self
            .realm
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        if ok { &self.realm } else { FALLBACK_REALM }
    }

    fn basic_challenge(&self) -> HeaderValue {
        let value = format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.header_realm());
        HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("Basic"))
    }

    fn digest_challenge(&self, now: u64, stale: bool) -> HeaderValue {
        let realm = self.header_realm();
        let nonce = make_nonce(realm, now);
        let mut value = format!(
            "Digest realm=\"{realm}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\", opaque=\"{}\"",
            opaque()
        );
        if stale {
            value.push_str(", stale=true");
        }
        HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("Digest"))
    }

    fn verify_digest(
        &self,
        response: &DigestResponse,
        method: &Method,
        uri: &str,
        now: u64,
    ) -> DigestVerdict {
        let realm = self.header_realm();
        let shape_ok = response.realm == realm
            && response.uri == uri
            && response.qop.eq_ignore_ascii_case("auth")
            && response
                .algorithm
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
            && response.opaque.as_deref().is_none_or(|o| o == opaque())
            && response.nc.len() == 8
            && response.nc.bytes().all(|b| b.is_ascii_hexdigit())
            && !response.cnonce.is_empty();
        if !shape_ok {
            return DigestVerdict::Denied;
        }
        // A nonce we did not issue (or one for another realm) is simply denied.
        let Some(issued) = nonce_timestamp(realm, &response.nonce) else {
            return DigestVerdict::Denied;
        };
        let matches = self
            .credentials
            .digest_entries(&response.username, realm)
            .any(|ha1| {
                let expected = digest_response(
                    ha1,
                    &response.nonce,
                    &response.nc,
                    &response.cnonce,
                    &response.qop,
                    method.as_str(),
                    &response.uri,
                );
                ct_eq(&expected, &response.response)
            });
        if !matches {
            return DigestVerdict::Denied;
        }
        let fresh = issued <= now.saturating_add(NONCE_FUTURE_SKEW_SECS)
            && now.saturating_sub(issued) <= NONCE_LIFETIME_SECS;
        if fresh {
            DigestVerdict::Allowed(response.username.clone())
        } else {
            // The password was right: RFC 7616 `stale=true` lets the client retry silently.
            DigestVerdict::Stale
        }
    }
}

enum DigestVerdict {
    Allowed(String),
    Stale,
    Denied,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Basic: (user, password) from `Basic base64(user:password)`; `None` if malformed.
fn basic_credentials(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASIC_BASE64.decode(token.trim()).ok()?;
    // The user id cannot contain ':'; the password can.
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?;
    Some((user.to_owned(), decoded[colon + 1..].to_vec()))
}

/// MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri)), RFC 7616 section 3.4.1 with qop=auth.
fn digest_response(
    ha1: &[u8; 16],
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    method: &str,
    uri: &str,
) -> [u8; 16] {
    let ha2: [u8; 16] = Md5::new()
        .chain_update(method)
        .chain_update(":")
        .chain_update(uri)
        .finalize()
        .into();
    let mut ctx = Md5::new();
    for (index, part) in [hex(ha1).as_str(), nonce, nc, cnonce, qop, &hex(&ha2)]
        .iter()
        .enumerate()
    {
        if index > 0 {
            ctx.update(":");
        }
        ctx.update(part);
    }
    ctx.finalize().into()
}

const NONCE_LABEL: &[u8] = b"sluice-digest-nonce\0";
const NONCE_TAG_LEN: usize = 32;

fn nonce_tag(key: &hmac::Key, realm: &str, issued: u64) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(NONCE_LABEL);
    ctx.update(&issued.to_be_bytes());
    ctx.update(realm.as_bytes());
    ctx.sign()
}

/// base64url(issued seconds, big-endian || HMAC-SHA256(key, label || issued || realm)).
fn make_nonce(realm: &str, issued: u64) -> String {
    let mut raw = Vec::with_capacity(8 + NONCE_TAG_LEN);
    raw.extend_from_slice(&issued.to_be_bytes());
    if let Some(key) = process_key() {
        raw.extend_from_slice(nonce_tag(key, realm, issued).as_ref());
    }
    URL_SAFE_NO_PAD.encode(raw)
}

/// When `nonce` was issued, if it is one of ours for `realm`.
fn nonce_timestamp(realm: &str, nonce: &str) -> Option<u64> {
    if nonce.len() > 64 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
    let (issued, tag) = raw.split_first_chunk::<8>()?;
    if tag.len() != NONCE_TAG_LEN {
        return None;
    }
    let issued = u64::from_be_bytes(*issued);
    let key = process_key()?;
    let mut msg = Vec::with_capacity(NONCE_LABEL.len() + 8 + realm.len());
    msg.extend_from_slice(NONCE_LABEL);
    msg.extend_from_slice(&issued.to_be_bytes());
    msg.extend_from_slice(realm.as_bytes());
    hmac::verify(key, &msg, tag).ok()?;
    Some(issued)
}

/// A per-process constant the client must echo back unchanged (RFC 7616 `opaque`).
fn opaque() -> String {
    process_key().map_or_else(String::new, |key| {
        let tag = hmac::sign(key, b"sluice-digest-opaque");
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..12])
    })
}

/// The fields of a Digest `Authorization` header this module uses.
struct DigestResponse {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: [u8; 16],
    qop: String,
    nc: String,
    cnonce: String,
    opaque: Option<String>,
    algorithm: Option<String>,
}

impl DigestResponse {
    /// `None` unless the header is `Digest` with every required field, well-formed.
    fn parse(value: &HeaderValue) -> Option<DigestResponse> {
        let bytes = value.as_bytes();
        if bytes.len() > MAX_AUTHORIZATION_LEN {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?.trim();
        let (scheme, rest) = text.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut params = parse_auth_params(rest)?;
        // userhash=true (RFC 7616) and username* would need a different lookup; unsupported.
        if params.contains_key("username*")
            || params
                .get("userhash")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return None;
        }
        let mut take = |name: &str| params.remove(name);
        Some(DigestResponse {
            username: take("username")?,
            realm: take("realm")?,
            nonce: take("nonce")?,
            uri: take("uri")?,
            response: parse_hex16(&take("response")?)?,
            qop: take("qop")?,
            nc: take("nc")?,
            cnonce: take("cnonce")?,
            opaque: take("opaque"),
            algorithm: take("algorithm"),
        })
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// RFC 9110 auth-params: `name = token | quoted-string`, comma-separated, empty list
/// elements allowed. Names are lowercased; a repeated name makes the header invalid.
fn parse_auth_params(input: &str) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let mut rest = input;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(params);
        }
        let name_len = rest.find(|c: char| !is_tchar(c)).unwrap_or(rest.len());
        if name_len == 0 {
            return None;
        }
        let (name, after) = rest.split_at(name_len);
        let after = after.trim_start_matches([' ', '\t']).strip_prefix('=')?;
        let after = after.trim_start_matches([' ', '\t']);
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            parse_quoted(quoted)?
        } else {
            let len = after.find(|c: char| !is_tchar(c)).unwrap_or(after.len());
            if len == 0 {
                return None;
            }
            let (token, after) = after.split_at(len);
            (token.to_owned(), after)
        };
        if params.insert(name.to_ascii_lowercase(), value).is_some() {
            return None;
        }
        rest = after.trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with(',') {
            return None;
        }
    }
}

/// The content of a quoted-string (after its opening quote) and what follows its closing one.
fn parse_quoted(input: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = input.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &input[at + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    const SHA_SECRET: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";
    const APR1_SECRET: &str = "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0";
    /// The OpenBSD / John the Ripper vector for the password `U*U`.
    const BCRYPT_UU: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    /// MD5("carol:Sluice:letmein").
    const HA1_CAROL: &str = "1965c8eb13453f9c73c61f7ea6e65eea";
    /// MD5("carol:Other:letmein").
    const HA1_CAROL_OTHER: &str = "81866a89e1155dc2528031dd11939e50";

    fn auth_file(text: &[u8]) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(AUTH_FILE_KEY.to_owned(), text.to_vec())])
    }

    fn basic(file: &str) -> Authenticator {
        let credentials = Credentials::from_secret(
            AuthScheme::Basic,
            AuthSecretType::AuthFile,
            &auth_file(file.as_bytes()),
        )
        .unwrap();
        Authenticator::new("Sluice", Arc::new(credentials)).unwrap()
    }

    fn digest(file: &str) -> Authenticator {
        let credentials = Credentials::from_secret(
            AuthScheme::Digest,
            AuthSecretType::AuthFile,
            &auth_file(file.as_bytes()),
        )
        .unwrap();
        Authenticator::new("Sluice", Arc::new(credentials)).unwrap()
    }

    fn basic_header(user_password: &[u8]) -> HeaderValue {
        HeaderValue::try_from(format!("Basic {}", STANDARD.encode(user_password))).unwrap()
    }

    fn check(auth: &Authenticator, header: &HeaderValue) -> Outcome {
        auth.check(Some(header), &Method::GET, "/")
    }

    fn allowed(user: &str) -> Outcome {
        Outcome::Allowed {
            user: user.to_owned(),
        }
    }

    const BASIC_CHALLENGE: &str = "Basic realm=\"Sluice\", charset=\"UTF-8\"";

    fn basic_error(file: &[u8]) -> CredentialsError {
        Credentials::from_secret(
            AuthScheme::Basic,
            AuthSecretType::AuthFile,
            &auth_file(file),
        )
        .unwrap_err()
    }

    fn digest_error(file: &[u8]) -> CredentialsError {
        Credentials::from_secret(
            AuthScheme::Digest,
            AuthSecretType::AuthFile,
            &auth_file(file),
        )
        .unwrap_err()
    }

    #[test]
    fn md5_crypt_matches_openssl() {
        // Generated with `openssl passwd -apr1 -salt SALT PASSWORD` (and -1 for `$1$`).
        let cases: &[(Md5CryptMagic, &str, &str, &str)] = &[
            (
                Md5CryptMagic::Apr1,
                "saltsalt",
                "secret",
                "LrttParrLPdxvgutaSXWJ0",
            ),
            (
                Md5CryptMagic::Apr1,
                "Ab3",
                "p:ss wörd",
                "x5bZ8MCYVFBu8cD9/jJZr.",
            ),
            (
                Md5CryptMagic::Apr1,
                "abcdefgh",
                "",
                "L.PT565ESX4Tp2bqNs7Ie.",
            ),
            (
                Md5CryptMagic::Apr1,
                "12345678",
                "a rather long password, over sixteen bytes",
                "zX8Wrg74x6F6LsApgAqI2.",
            ),
            (
                Md5CryptMagic::Glibc,
                "xyz",
                "secret",
                "Qia9Wq6FxQkYcwNWMk/RM0",
            ),
            (Md5CryptMagic::Glibc, "a", "x", "TYcRT0JumNkKBBlirG1X4/"),
        ];
        for (magic, salt, password, expected) in cases {
            let hash = md5_crypt(*magic, salt.as_bytes(), password.as_bytes());
            assert_eq!(
                std::str::from_utf8(&hash).unwrap(),
                *expected,
                "{salt} {password:?}"
            );
        }
    }

    #[test]
    fn every_hash_form_accepts_the_right_password_only() {
        let generated = bcrypt::hash("secret", 4).unwrap();
        let cases: Vec<(String, &str, &str)> = vec![
            (BCRYPT_UU.to_owned(), "U*U", "U*V"),
            (BCRYPT_UU.replace("$2a$", "$2b$"), "U*U", "u*u"),
            (BCRYPT_UU.replace("$2a$", "$2y$"), "U*U", ""),
            (generated, "secret", "secret "),
            (SHA_SECRET.to_owned(), "secret", "Secret"),
            (APR1_SECRET.to_owned(), "secret", "secre"),
            (
                "$apr1$Ab3$x5bZ8MCYVFBu8cD9/jJZr.".to_owned(),
                "p:ss wörd",
                "p:ss word",
            ),
            ("$apr1$abcdefgh$L.PT565ESX4Tp2bqNs7Ie.".to_owned(), "", "x"),
            (
                "$1$xyz$Qia9Wq6FxQkYcwNWMk/RM0".to_owned(),
                "secret",
                "secret\0",
            ),
        ];
        for (hash, right, wrong) in cases {
            let auth = basic(&format!("alice:{hash}\n"));
            assert_eq!(
                check(&auth, &basic_header(format!("alice:{right}").as_bytes())),
                allowed("alice"),
                "{hash} with the right password"
            );
            for attempt in [format!("alice:{wrong}"), format!("bob:{right}")] {
                assert_eq!(
                    check(&auth, &basic_header(attempt.as_bytes())),
                    Outcome::Challenge(HeaderValue::from_static(BASIC_CHALLENGE)),
                    "{hash} with {attempt:?}"
                );
            }
        }
    }

    #[test]
    fn rejected_hash_forms_name_the_line_and_never_the_hash() {
        let cost3 = BCRYPT_UU.replace("$05$", "$03$");
        let cost32 = BCRYPT_UU.replace("$05$", "$32$");
        let cases: &[(&str, &str)] = &[
            (
                "hunter2",
                "unsupported password hash (plain text); use htpasswd -B (bcrypt) or -m (apr1)",
            ),
            ("{PLAIN}hunter2", "unsupported password hash (plain text)"),
            ("rl0uTObhYbb3I", "unsupported password hash (crypt(3) DES)"),
            (
                "$5$rounds=5000$abc$def",
                "unsupported password hash (SHA-256 crypt)",
            ),
            ("$6$abc$def", "unsupported password hash (SHA-512 crypt)"),
            (
                "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                "$2x$",
            ),
            ("$argon2id$v=19$m=65536", "unknown crypt scheme"),
            ("{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "salted SHA-1"),
            ("{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", "unknown {SCHEME}"),
            ("$2y$10$tooshort", "malformed password hash: bcrypt"),
            (&cost3, "bcrypt cost 3 is outside 4..=31"),
            (&cost32, "bcrypt cost 32 is outside 4..=31"),
            ("{SHA}notbase64!!", "malformed password hash: {SHA}"),
            ("{SHA}c2VjcmV0", "malformed password hash: {SHA}"),
            ("$apr1$saltsalt", "malformed password hash: MD5 crypt"),
            (
                "$apr1$$LrttParrLPdxvgutaSXWJ0",
                "malformed password hash: MD5 crypt",
            ),
            (
                "$apr1$saltsalt9$LrttParrLPdxvgutaSXWJ0",
                "malformed password hash: MD5 crypt",
            ),
            (
                "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ",
                "malformed password hash: MD5 crypt",
            ),
            (
                "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ!",
                "malformed password hash: MD5 crypt",
            ),
            ("", "empty password hash"),
        ];
        for (hash, expected) in cases {
            let file = format!("# users\n\nalice:{APR1_SECRET}\nbob:{hash}\ncarol:{SHA_SECRET}\n");
            let error = basic_error(file.as_bytes());
            let message = error.to_string();
            assert!(
                message.starts_with("Secret key \"auth\", line 4: "),
                "{hash}: {message}"
            );
            assert!(message.contains(expected), "{hash}: {message}");
            if hash.len() > 5 {
                assert!(!message.contains(hash), "leaks the hash: {message}");
            }
            assert!(!message.contains(APR1_SECRET) && !message.contains(SHA_SECRET));
        }
    }

    #[test]
    fn a_plain_text_line_is_reported_exactly() {
        let file = format!("alice:{APR1_SECRET}\n\n# bob below\nbob:hunter2\n");
        assert_eq!(
            basic_error(file.as_bytes()).to_string(),
            "Secret key \"auth\", line 4: unsupported password hash (plain text); \
             use htpasswd -B (bcrypt) or -m (apr1)"
        );
    }

    #[test]
    fn structural_file_errors() {
        let duplicate = format!("alice:{SHA_SECRET}\nbob:{SHA_SECRET}\nalice:{APR1_SECRET}\n");
        let cases: Vec<(Vec<u8>, CredentialsError)> = vec![
            (
                b"alice\n".to_vec(),
                line_error(1, EntryProblem::MissingSeparator("user:hash")),
            ),
            (
                format!(":{SHA_SECRET}").into_bytes(),
                line_error(1, EntryProblem::EmptyUser),
            ),
            (
                duplicate.into_bytes(),
                line_error(3, EntryProblem::Duplicate(1)),
            ),
            (
                [b"# ok\n".as_slice(), b"al\xffice:", SHA_SECRET.as_bytes()].concat(),
                line_error(2, EntryProblem::NotUtf8),
            ),
            (b"".to_vec(), CredentialsError::NoCredentials),
            (
                b"# only a comment\n\n   \n".to_vec(),
                CredentialsError::NoCredentials,
            ),
        ];
        for (file, expected) in cases {
            assert_eq!(
                basic_error(&file),
                expected,
                "{}",
                String::from_utf8_lossy(&file)
            );
        }
        let missing = Credentials::from_secret(
            AuthScheme::Basic,
            AuthSecretType::AuthFile,
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(missing, CredentialsError::MissingAuthKey("htpasswd"));
        assert!(missing.to_string().contains("no key \"auth\""));
        let empty_map =
            Credentials::from_secret(AuthScheme::Basic, AuthSecretType::AuthMap, &BTreeMap::new())
                .unwrap_err();
        assert_eq!(empty_map, CredentialsError::NoCredentials);
    }

    #[test]
    fn comments_blank_lines_and_crlf_are_tolerated() {
        let file = [
            format!("# htpasswd\r\n\r\n  alice:{SHA_SECRET}  \r\n    # comment ").as_bytes(),
            b"\xff\n\t\n",
            format!("bob:{APR1_SECRET}").as_bytes(),
        ]
        .concat();
        let credentials = Credentials::from_secret(
            AuthScheme::Basic,
            AuthSecretType::AuthFile,
            &auth_file(&file),
        )
        .unwrap();
        assert_eq!(credentials.len(), 2);
        assert!(!credentials.is_empty());
        assert_eq!(credentials.users().collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(credentials.scheme(), AuthScheme::Basic);
    }

    #[test]
    fn auth_map_holds_one_user_per_key() {
        let data = BTreeMap::from([
            ("alice".to_owned(), APR1_SECRET.as_bytes().to_vec()),
            ("bob".to_owned(), format!("{SHA_SECRET}\n").into_bytes()),
        ]);
        let credentials =
            Credentials::from_secret(AuthScheme::Basic, AuthSecretType::AuthMap, &data).unwrap();
        let auth = Authenticator::new("Sluice", Arc::new(credentials)).unwrap();
        assert_eq!(
            check(&auth, &basic_header(b"alice:secret")),
            allowed("alice")
        );
        assert_eq!(check(&auth, &basic_header(b"bob:secret")), allowed("bob"));
        assert!(matches!(
            check(&auth, &basic_header(b"auth:secret")),
            Outcome::Challenge(_)
        ));

        let bad = BTreeMap::from([
            ("alice".to_owned(), APR1_SECRET.as_bytes().to_vec()),
            ("bob".to_owned(), b"hunter2".to_vec()),
        ]);
        let error =
            Credentials::from_secret(AuthScheme::Basic, AuthSecretType::AuthMap, &bad).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Secret key \"bob\": unsupported password hash (plain text); \
             use htpasswd -B (bcrypt) or -m (apr1)"
        );
        let empty = BTreeMap::from([("bob".to_owned(), b" \n".to_vec())]);
        assert_eq!(
            Credentials::from_secret(AuthScheme::Basic, AuthSecretType::AuthMap, &empty)
                .unwrap_err(),
            entry_error("bob", EntryProblem::EmptyHash)
        );
    }

    #[test]
    fn malformed_basic_headers_are_challenged() {
        let auth = basic(&format!("alice:{SHA_SECRET}\n"));
        let huge = format!("Basic {}", "QUFB".repeat(5000));
        let cases: Vec<(&str, Option<HeaderValue>)> = vec![
            ("absent", None),
            ("empty", Some(HeaderValue::from_static(""))),
            ("scheme only", Some(HeaderValue::from_static("Basic"))),
            ("scheme and space", Some(HeaderValue::from_static("Basic "))),
            (
                "no space",
                Some(HeaderValue::from_static("BasicYWxpY2U6c2VjcmV0")),
            ),
            (
                "no scheme",
                Some(HeaderValue::from_static("YWxpY2U6c2VjcmV0")),
            ),
            (
                "other scheme",
                Some(HeaderValue::from_static("Bearer YWxpY2U6c2VjcmV0")),
            ),
            (
                "digest",
                Some(HeaderValue::from_static("Digest username=\"alice\"")),
            ),
            (
                "bad base64",
                Some(HeaderValue::from_static("Basic !!!notbase64")),
            ),
            (
                "two tokens",
                Some(HeaderValue::from_static("Basic YWxp Y2U6c2VjcmV0")),
            ),
            ("no colon", Some(basic_header(b"alicesecret"))),
            ("empty pair", Some(basic_header(b""))),
            ("only colon", Some(basic_header(b":"))),
            ("non-UTF-8 user", Some(basic_header(b"\xffalice:secret"))),
            ("non-UTF-8 password", Some(basic_header(b"alice:secr\xfft"))),
            (
                "non-UTF-8 header",
                Some(HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap()),
            ),
            ("huge", Some(HeaderValue::try_from(huge).unwrap())),
            ("user case", Some(basic_header(b"Alice:secret"))),
            ("trailing colon", Some(basic_header(b"alice:secret:"))),
        ];
        for (name, header) in cases {
            assert_eq!(
                auth.check(header.as_ref(), &Method::GET, "/"),
                Outcome::Challenge(HeaderValue::from_static(BASIC_CHALLENGE)),
                "{name}"
            );
        }
    }

    #[test]
    fn basic_scheme_is_case_insensitive_and_padding_optional() {
        let auth = basic("alice:$apr1$Ab3$x5bZ8MCYVFBu8cD9/jJZr.\n");
        let token = STANDARD.encode("alice:p:ss wörd");
        let unpadded = token.trim_end_matches('=').to_owned();
        assert_ne!(token, unpadded, "the vector should need padding");
        for value in [
            format!("Basic {token}"),
            format!("basic {token}"),
            format!("BASIC   {token}  "),
            format!("bAsIc {unpadded}"),
        ] {
            let header = HeaderValue::try_from(value.as_str()).unwrap();
            assert_eq!(check(&auth, &header), allowed("alice"), "{value}");
        }
    }

    #[test]
    fn bcrypt_successes_are_cached_and_failures_are_not() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let auth = basic(&format!("alice:{hash}\nbob:{SHA_SECRET}\n"));
        let slow = || auth.credentials.slow_verifications.load(Ordering::Relaxed);
        let right = basic_header(b"alice:secret");
        let wrong = basic_header(b"alice:secreT");

        assert_eq!(
            check(&auth, &wrong),
            Outcome::Challenge(HeaderValue::from_static(BASIC_CHALLENGE))
        );
        assert_eq!(slow(), 1);
        assert_eq!(check(&auth, &right), allowed("alice"));
        assert_eq!(slow(), 2);
        for _ in 0..5 {
            assert_eq!(check(&auth, &right), allowed("alice"));
        }
        assert_eq!(slow(), 2, "repeated right credentials skip bcrypt");
        for round in 0..3 {
            assert!(
                matches!(check(&auth, &wrong), Outcome::Challenge(_)),
                "a wrong password must not pass after a right one was cached"
            );
            assert_eq!(slow(), 3 + round, "failures are verified every time");
        }
        // The cache is per user: bob's right password is not alice's.
        assert!(matches!(
            check(&auth, &basic_header(b"alice:secret ")),
            Outcome::Challenge(_)
        ));
        // {SHA} is fast and bypasses the cache.
        let before = slow();
        assert_eq!(check(&auth, &basic_header(b"bob:secret")), allowed("bob"));
        assert_eq!(slow(), before);
    }

    #[test]
    fn the_cache_is_bounded_and_keyed_by_every_field() {
        let mut cache = SuccessCache::default();
        for n in 0..(CACHE_CAPACITY as u32 + 100) {
            cache.insert(cache_key("alice", &n.to_be_bytes(), b"hash").unwrap());
        }
        assert_eq!(cache.entries.len(), CACHE_CAPACITY);
        let key = cache_key("alice", b"pw", b"hash").unwrap();
        assert_eq!(Some(key), cache_key("alice", b"pw", b"hash"));
        for other in [
            cache_key("alic", b"epw", b"hash"),
            cache_key("alice", b"pwh", b"ash"),
            cache_key("alice", b"pw", b"hash2"),
            cache_key("bob", b"pw", b"hash"),
        ] {
            assert_ne!(Some(key), other);
        }
    }

    #[test]
    fn debug_and_equality_ignore_secrets_and_cache() {
        let file = format!("alice:{APR1_SECRET}\nbob:{SHA_SECRET}\n");
        let a = basic(&file);
        let b = basic(&file);
        assert_eq!(check(&a, &basic_header(b"alice:secret")), allowed("alice"));
        assert_eq!(a, b, "equality ignores the cache");
        assert_ne!(a, basic(&format!("alice:{SHA_SECRET}\n")));
        let debug = format!("{a:?}");
        assert!(debug.contains("alice") && debug.contains("apr1"), "{debug}");
        assert!(
            !debug.contains("LrttParr") && !debug.contains("5en6G6"),
            "{debug}"
        );
    }

    fn digest_authorization(
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        nonce: &str,
    ) -> String {
        let ha1 = hex(&Md5::digest(format!("{user}:Sluice:{password}")));
        let ha2 = hex(&Md5::digest(format!("{method}:{uri}")));
        let response = hex(&Md5::digest(format!(
            "{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"
        )));
        format!(
            "Digest username=\"{user}\", realm=\"Sluice\", nonce=\"{nonce}\", uri=\"{uri}\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{response}\", \
             opaque=\"{}\", algorithm=MD5",
            opaque()
        )
    }

    fn header(value: &str) -> HeaderValue {
        HeaderValue::try_from(value).unwrap()
    }

    fn challenge_params(outcome: &Outcome) -> BTreeMap<String, String> {
        let Outcome::Challenge(value) = outcome else {
            panic!("expected a challenge, got {outcome:?}");
        };
        let text = value.to_str().unwrap();
        parse_auth_params(text.strip_prefix("Digest ").unwrap()).unwrap()
    }

    #[test]
    fn rfc_2617_digest_vector() {
        let ha1 = parse_hex16("939e7578ed9e3c518a452acee763bce9").unwrap();
        let response = digest_response(
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "auth",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(hex(&response), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn digest_challenge_then_success() {
        let auth = digest(&format!("carol:Sluice:{HA1_CAROL}\n"));
        let challenge = auth.check(None, &Method::GET, "/a?b=c");
        let Outcome::Challenge(value) = &challenge else {
            panic!("{challenge:?}");
        };
        let text = value.to_str().unwrap();
        assert!(
            text.starts_with("Digest realm=\"Sluice\", qop=\"auth\", algorithm=MD5, nonce=\""),
            "{text}"
        );
        assert!(!text.contains("stale"), "{text}");
        let params = challenge_params(&challenge);
        assert_eq!(params["opaque"], opaque());
        let nonce = &params["nonce"];
        let authorization = digest_authorization("carol", "letmein", "GET", "/a?b=c", nonce);
        assert_eq!(
            auth.check(Some(&header(&authorization)), &Method::GET, "/a?b=c"),
            allowed("carol")
        );
        // Without the optional opaque and algorithm, and with unknown extra params.
        let minimal = authorization
            .replace(&format!(", opaque=\"{}\"", opaque()), ", foo=bar")
            .replace(", algorithm=MD5", "");
        assert_eq!(
            auth.check(Some(&header(&minimal)), &Method::GET, "/a?b=c"),
            allowed("carol")
        );
    }

    #[test]
    fn digest_denials() {
        let auth = digest(&format!(
            "carol:Sluice:{HA1_CAROL}\ncarol:Other:{HA1_CAROL_OTHER}\n"
        ));
        let now = now_secs();
        let nonce = make_nonce("Sluice", now);
        let good = digest_authorization("carol", "letmein", "GET", "/a", &nonce);
        let mut tampered = nonce.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "wrong password",
                digest_authorization("carol", "letmeout", "GET", "/a", &nonce),
                "/a",
            ),
            (
                "unknown user",
                digest_authorization("dave", "letmein", "GET", "/a", &nonce),
                "/a",
            ),
            ("wrong uri", good.clone(), "/b"),
            ("uri with query", good.clone(), "/a?x=1"),
            (
                "header uri differs",
                digest_authorization("carol", "letmein", "GET", "/b", &nonce),
                "/a",
            ),
            (
                "wrong method",
                digest_authorization("carol", "letmein", "POST", "/a", &nonce),
                "/a",
            ),
            (
                "tampered nonce",
                digest_authorization("carol", "letmein", "GET", "/a", &tampered),
                "/a",
            ),
            (
                "nonce of another realm",
                digest_authorization("carol", "letmein", "GET", "/a", &make_nonce("Other", now)),
                "/a",
            ),
            (
                "foreign nonce",
                digest_authorization(
                    "carol",
                    "letmein",
                    "GET",
                    "/a",
                    "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                ),
                "/a",
            ),
            (
                "other realm param",
                good.replace("realm=\"Sluice\"", "realm=\"Other\""),
                "/a",
            ),
            ("qop missing", good.replace("qop=auth, ", ""), "/a"),
            (
                "qop auth-int",
                good.replace("qop=auth", "qop=auth-int"),
                "/a",
            ),
            ("nc missing", good.replace("nc=00000001, ", ""), "/a"),
            (
                "nc not hex",
                good.replace("nc=00000001", "nc=0000000g"),
                "/a",
            ),
            (
                "cnonce empty",
                good.replace("cnonce=\"0a4f113b\"", "cnonce=\"\""),
                "/a",
            ),
            (
                "algorithm SHA-256",
                good.replace("algorithm=MD5", "algorithm=SHA-256"),
                "/a",
            ),
            ("opaque changed", good.replace(&opaque(), "x"), "/a"),
            ("userhash", format!("{good}, userhash=true"), "/a"),
            ("duplicate param", format!("{good}, uri=\"/a\""), "/a"),
            (
                "response not hex",
                good.replace("response=\"", "response=\"zz"),
                "/a",
            ),
            ("basic", "Basic Y2Fyb2w6bGV0bWVpbg==".to_owned(), "/a"),
            ("scheme only", "Digest".to_owned(), "/a"),
            ("no params", "Digest ".to_owned(), "/a"),
        ];
        for (name, authorization, uri) in cases {
            let outcome = auth.check_at(Some(&header(&authorization)), &Method::GET, uri, now);
            let params = challenge_params(&outcome);
            assert!(!params.contains_key("stale"), "{name}: {outcome:?}");
        }
        assert_eq!(
            auth.check_at(Some(&header(&good)), &Method::GET, "/a", now),
            allowed("carol")
        );
    }

    #[test]
    fn digest_stale_nonces() {
        let auth = digest(&format!("carol:Sluice:{HA1_CAROL}\n"));
        let now = now_secs();
        let at = |issued: u64, password: &str| {
            let nonce = make_nonce("Sluice", issued);
            let value = digest_authorization("carol", password, "GET", "/", &nonce);
            auth.check_at(Some(&header(&value)), &Method::GET, "/", now)
        };
        assert_eq!(at(now - NONCE_LIFETIME_SECS, "letmein"), allowed("carol"));
        assert_eq!(at(now + 30, "letmein"), allowed("carol"));
        for issued in [now - NONCE_LIFETIME_SECS - 1, now - 86_400, now + 3_600, 0] {
            let outcome = at(issued, "letmein");
            let params = challenge_params(&outcome);
            assert_eq!(
                params.get("stale").map(String::as_str),
                Some("true"),
                "{issued}"
            );
            let fresh = nonce_timestamp("Sluice", &params["nonce"]).unwrap();
            assert_eq!(fresh, now);
        }
        // A stale nonce with a wrong password is not "stale": the client should not retry.
        let params = challenge_params(&at(now - NONCE_LIFETIME_SECS - 1, "nope"));
        assert!(!params.contains_key("stale"));
    }

    #[test]
    fn digest_headers_never_panic() {
        let auth = digest(&format!("carol:Sluice:{HA1_CAROL}\n"));
        let long = format!("Digest username=\"{}\"", "a".repeat(10_000));
        let weird = [
            "Digest ,,,",
            "Digest =",
            "Digest username",
            "Digest username=",
            "Digest username=\"unterminated",
            "Digest username=\"a\\",
            "Digest username=\"a\"\"b\"",
            "Digest username=\"a\" realm=\"b\"",
            "Digest username==a",
            "Digest ü=ä",
            "Digest username=\"ü\", realm=\"Sluice\"",
            "Digest response=\"\"",
            "Digest nonce=\"!!!\"",
            long.as_str(),
        ];
        for value in weird {
            let outcome = auth.check(Some(&header(value)), &Method::GET, "/");
            assert!(matches!(outcome, Outcome::Challenge(_)), "{value}");
        }
        let bytes = HeaderValue::from_bytes(b"Digest username=\"\xff\"").unwrap();
        assert!(matches!(
            auth.check(Some(&bytes), &Method::GET, "/"),
            Outcome::Challenge(_)
        ));
        for nonce in ["", "AAAA", "!!!", &"A".repeat(100), &"A".repeat(54)] {
            assert_eq!(nonce_timestamp("Sluice", nonce), None, "{nonce}");
        }
    }

    #[test]
    fn auth_params_grammar() {
        let parsed = parse_auth_params(
            " , username=\"Mu\\\"fa\\\\sa\" ,realm = \"a, b=c\",, nc=00000001 ,QOP=auth,",
        )
        .unwrap();
        assert_eq!(parsed["username"], "Mu\"fa\\sa");
        assert_eq!(parsed["realm"], "a, b=c");
        assert_eq!(parsed["nc"], "00000001");
        assert_eq!(parsed["qop"], "auth");
        assert_eq!(parse_auth_params("").unwrap().len(), 0);
        for bad in ["a", "a=", "a=\"x\" b=c", "a=b c", "a=b, a=c", "=b", "a=\"x"] {
            assert_eq!(parse_auth_params(bad), None, "{bad}");
        }
    }

    #[test]
    fn htdigest_files() {
        let file = format!(
            "# htdigest\ncarol:Sluice:{HA1_CAROL}\ncarol:Other:{}\ndave:a:b:{HA1_CAROL}\n",
            HA1_CAROL_OTHER.to_uppercase()
        );
        let credentials = Credentials::from_secret(
            AuthScheme::Digest,
            AuthSecretType::AuthFile,
            &auth_file(file.as_bytes()),
        )
        .unwrap();
        assert_eq!(credentials.len(), 3);
        assert_eq!(credentials.scheme(), AuthScheme::Digest);
        assert_eq!(credentials.usable_in_realm("Sluice"), 1);
        assert_eq!(credentials.usable_in_realm("a:b"), 1);
        let debug = format!("{credentials:?}");
        assert!(!debug.contains(HA1_CAROL), "{debug}");

        let cases: Vec<(String, CredentialsError)> = vec![
            (
                "carol:Sluice\n".to_owned(),
                line_error(1, EntryProblem::MissingSeparator("user:realm:HA1")),
            ),
            (
                format!(":Sluice:{HA1_CAROL}"),
                line_error(1, EntryProblem::EmptyUser),
            ),
            (
                format!("carol::{HA1_CAROL}"),
                line_error(1, EntryProblem::EmptyRealm),
            ),
            (
                "carol:Sluice:letmein".to_owned(),
                line_error(1, EntryProblem::InvalidHa1),
            ),
            (
                format!("carol:Sluice:{}", &HA1_CAROL[1..]),
                line_error(1, EntryProblem::InvalidHa1),
            ),
            (
                format!("carol:Sluice:{}x", &HA1_CAROL[1..]),
                line_error(1, EntryProblem::InvalidHa1),
            ),
            (
                format!("carol:Sluice:{HA1_CAROL}\n\ncarol:Sluice:{HA1_CAROL_OTHER}"),
                line_error(3, EntryProblem::Duplicate(1)),
            ),
            ("\n# nothing\n".to_owned(), CredentialsError::NoCredentials),
        ];
        for (file, expected) in cases {
            let error = digest_error(file.as_bytes());
            assert_eq!(error, expected, "{file}");
            assert!(!error.to_string().contains("letmein"));
        }
        let missing = Credentials::from_secret(
            AuthScheme::Digest,
            AuthSecretType::AuthFile,
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(missing, CredentialsError::MissingAuthKey("htdigest"));
    }

    #[test]
    fn digest_auth_map_and_realm_mismatch() {
        let data = BTreeMap::from([
            ("carol".to_owned(), format!("{HA1_CAROL}\n").into_bytes()),
            ("dave".to_owned(), format!("Other:{HA1_CAROL}").into_bytes()),
        ]);
        let credentials = Arc::new(
            Credentials::from_secret(AuthScheme::Digest, AuthSecretType::AuthMap, &data).unwrap(),
        );
        assert_eq!(credentials.usable_in_realm("Sluice"), 1);
        let auth = Authenticator::new("Sluice", credentials.clone()).unwrap();
        let nonce = make_nonce("Sluice", now_secs());
        let value = digest_authorization("carol", "letmein", "GET", "/", &nonce);
        assert_eq!(
            auth.check(Some(&header(&value)), &Method::GET, "/"),
            allowed("carol")
        );

        let bad = BTreeMap::from([("carol".to_owned(), b"letmein".to_vec())]);
        assert_eq!(
            Credentials::from_secret(AuthScheme::Digest, AuthSecretType::AuthMap, &bad)
                .unwrap_err(),
            entry_error("carol", EntryProblem::InvalidHa1)
        );
        let bad = BTreeMap::from([("carol".to_owned(), format!(":{HA1_CAROL}").into_bytes())]);
        assert_eq!(
            Credentials::from_secret(AuthScheme::Digest, AuthSecretType::AuthMap, &bad)
                .unwrap_err(),
            entry_error("carol", EntryProblem::EmptyRealm)
        );

        let file = format!("carol:Other:{HA1_CAROL_OTHER}\n");
        let other = Credentials::from_secret(
            AuthScheme::Digest,
            AuthSecretType::AuthFile,
            &auth_file(file.as_bytes()),
        )
        .unwrap();
        let error = Authenticator::new("Sluice", Arc::new(other)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no htdigest entry has the realm \"Sluice\" set by auth-realm"
        );
    }

    #[test]
    fn scheme_mismatch_is_challenged_in_the_configured_scheme() {
        let auth = basic(&format!("alice:{SHA_SECRET}\n"));
        let nonce = make_nonce("Sluice", now_secs());
        let value = digest_authorization("alice", "secret", "GET", "/", &nonce);
        assert_eq!(
            auth.check(Some(&header(&value)), &Method::GET, "/"),
            Outcome::Challenge(HeaderValue::from_static(BASIC_CHALLENGE))
        );
    }

    #[test]
    fn an_unquotable_realm_falls_back() {
        let mut auth = basic(&format!("alice:{SHA_SECRET}\n"));
        auth.realm = "bad \"realm\"".to_owned();
        assert_eq!(
            auth.check(None, &Method::GET, "/"),
            Outcome::Challenge(HeaderValue::from_static(
                "Basic realm=\"Authentication Required\", charset=\"UTF-8\""
            ))
        );
    }
}
