//! OpenSSL cipher-list syntax (`ssl-ciphers`), evaluated against the TLS 1.2 suites rustls
//! implements.
//!
//! nginx hands `ssl_ciphers` to OpenSSL, whose list governs TLS 1.2 and below; TLS 1.3 suites
//! are configured apart (here: the set-wide `sslCiphers`). Sluice evaluates the same syntax
//! with OpenSSL's rules over the six ECDHE AEAD suites of [`CipherSuite`]:
//!
//! - elements are separated by `:`, `,` or spaces; `A+B` selects the suites matching both;
//! - no prefix adds the selected suites at the end (those not already in the list and not
//!   killed); `-x` removes them (a later element may add them again); `!x` removes them for
//!   good; `+x` moves the selected suites already in the list to its end; `@STRENGTH` sorts by
//!   key length, strongest first;
//! - names are OpenSSL's aliases (`ALL`, `HIGH`, `aRSA`, `ECDHE`, `AESGCM`, ...), OpenSSL
//!   suite names and IANA suite names.
//!
//! The starting order is OpenSSL's own (256-bit AES first, then ChaCha20, then 128-bit AES),
//! so a list gives the same result as `openssl ciphers -s -tls1_2 '<list>'` restricted to
//! these suites; the unit tests were derived from OpenSSL 3.0.
//!
//! Elements that would add or move suites rustls does not implement (RC4, export, SSLv2, CBC,
//! DHE, ...) and names neither OpenSSL nor Sluice knows are listed in
//! [`CipherSelection::not_honoured`]: the list is still applied, as nginx would (OpenSSL
//! ignores such elements too). A list that leaves no suite turns TLS 1.2 off for the host.

use crate::CipherSuite;

/// The result of evaluating a cipher list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CipherSelection {
    /// The TLS 1.2 suites to offer, in preference order. Empty: TLS 1.2 is off for the host.
    pub tls12: Vec<CipherSuite>,
    /// Elements of the list that could not be honoured, as written.
    pub not_honoured: Vec<String>,
}

impl CipherSelection {
    /// False when the list leaves no TLS 1.2 suite: the host then accepts only TLS 1.3.
    pub fn tls12_enabled(&self) -> bool {
        !self.tls12.is_empty()
    }
}

/// Key exchange, authentication, cipher and key length of one suite: what aliases select on.
struct Suite {
    suite: CipherSuite,
    openssl: &'static str,
    iana: &'static str,
    ecdsa: bool,
    cipher: Cipher,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
}

impl Cipher {
    fn bits(self) -> u32 {
        match self {
            Cipher::Aes128Gcm => 128,
            Cipher::Aes256Gcm | Cipher::Chacha20 => 256,
        }
    }
}

/// The TLS 1.2 suites rustls implements, in OpenSSL's default order.
const SUITES: [Suite; 6] = [
    Suite {
        suite: CipherSuite::EcdheEcdsaAes256GcmSha384,
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
        iana: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ecdsa: true,
        cipher: Cipher::Aes256Gcm,
    },
    Suite {
        suite: CipherSuite::EcdheRsaAes256GcmSha384,
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
        iana: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ecdsa: false,
        cipher: Cipher::Aes256Gcm,
    },
    Suite {
        suite: CipherSuite::EcdheEcdsaChacha20Poly1305,
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
        iana: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ecdsa: true,
        cipher: Cipher::Chacha20,
    },
    Suite {
        suite: CipherSuite::EcdheRsaChacha20Poly1305,
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
        iana: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ecdsa: false,
        cipher: Cipher::Chacha20,
    },
    Suite {
        suite: CipherSuite::EcdheEcdsaAes128GcmSha256,
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
        iana: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ecdsa: true,
        cipher: Cipher::Aes128Gcm,
    },
    Suite {
        suite: CipherSuite::EcdheRsaAes128GcmSha256,
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
        iana: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ecdsa: false,
        cipher: Cipher::Aes128Gcm,
    },
];

/// What one name selects among [`SUITES`].
enum Selector {
    /// A bit set over [`SUITES`] indices (possibly empty: an OpenSSL name for suites rustls
    /// does not implement).
    Set(u8),
    /// A name Sluice does not know.
    Unknown,
}

const ALL: u8 = 0b11_1111;

/// OpenSSL aliases and names that select nothing rustls implements (they are known, so an
/// element using them is "not honoured", not "unknown").
const KNOWN_EMPTY: &[&str] = &[
    "COMPLEMENTOFALL",
    "COMPLEMENTOFDEFAULT",
    "MEDIUM",
    "LOW",
    "EXP",
    "EXPORT",
    "EXPORT40",
    "EXPORT56",
    "eNULL",
    "NULL",
    "aNULL",
    "kRSA",
    "RSA",
    "kDHE",
    "kEDH",
    "DH",
    "DHE",
    "EDH",
    "ADH",
    "AECDH",
    "aDSS",
    "DSS",
    "kPSK",
    "kECDHEPSK",
    "kDHEPSK",
    "kRSAPSK",
    "PSK",
    "aPSK",
    "SRP",
    "kSRP",
    "aSRP",
    "RC4",
    "RC2",
    "DES",
    "3DES",
    "IDEA",
    "SEED",
    "CAMELLIA",
    "CAMELLIA128",
    "CAMELLIA256",
    "ARIA",
    "ARIA128",
    "ARIA256",
    "ARIAGCM",
    "AESCCM",
    "AESCCM8",
    "CBC",
    "MD5",
    "SHA1",
    "SHA",
    "SHA256",
    "SHA384",
    "SSLv2",
    "SSLv3",
    "TLSv1",
    "TLSv1.0",
    "GOST94",
    "GOST89MAC",
    "kGOST",
    "aGOST",
    "aGOST01",
    "SUITEB128",
    "SUITEB128ONLY",
    "SUITEB192",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

fn select(name: &str) -> Selector {
    let by = |f: fn(&Suite) -> bool| {
        let mut set = 0u8;
        for (i, s) in SUITES.iter().enumerate() {
            if f(s) {
                set |= 1 << i;
            }
        }
        Selector::Set(set)
    };
    match name {
        "ALL" | "DEFAULT" | "HIGH" | "TLSv1.2" | "kECDHE" | "kEECDH" | "ECDHE" | "EECDH"
        | "ECDH" => Selector::Set(ALL),
        "aRSA" => by(|s| !s.ecdsa),
        "aECDSA" | "ECDSA" => by(|s| s.ecdsa),
        "AES" | "AESGCM" | "FIPS" => by(|s| s.cipher != Cipher::Chacha20),
        "AES128" => by(|s| s.cipher == Cipher::Aes128Gcm),
        "AES256" => by(|s| s.cipher == Cipher::Aes256Gcm),
        "CHACHA20" => by(|s| s.cipher == Cipher::Chacha20),
        _ => {
            if let Some(i) = SUITES
                .iter()
                .position(|s| s.openssl == name || s.iana == name)
            {
                Selector::Set(1 << i)
            } else if KNOWN_EMPTY.contains(&name) || is_other_suite_name(name) {
                Selector::Set(0)
            } else {
                Selector::Unknown
            }
        }
    }
}

/// OpenSSL or IANA names of suites rustls does not implement (`AES128-SHA`,
/// `DHE-RSA-AES128-GCM-SHA256`, `TLS_RSA_WITH_AES_128_CBC_SHA`, ...): recognisable by shape.
fn is_other_suite_name(name: &str) -> bool {
    name.starts_with("TLS_") && name.contains("_WITH_")
        || name.contains('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Kill,
    Move,
}

/// Evaluates `list` (which passed the grammar's character check).
pub fn evaluate(list: &str) -> CipherSelection {
    // OpenSSL's linked list: every suite in order, with active and killed flags.
    let mut order: Vec<usize> = (0..SUITES.len()).collect();
    let mut active = [false; SUITES.len()];
    let mut killed = [false; SUITES.len()];
    let mut not_honoured = Vec::new();

    for element in list
        .split([':', ',', ' '])
        .filter(|element| !element.is_empty())
    {
        if element == "@STRENGTH" {
            // Stable: equal strengths keep their order.
            order.sort_by_key(|i| std::cmp::Reverse(SUITES[*i].cipher.bits()));
            continue;
        }
        if element.starts_with('@') {
            // @SECLEVEL=n and friends: OpenSSL security levels do not apply to rustls.
            not_honoured.push(element.to_owned());
            continue;
        }
        let (op, body) = match element.as_bytes()[0] {
            b'!' => (Op::Kill, &element[1..]),
            b'-' => (Op::Remove, &element[1..]),
            b'+' => (Op::Move, &element[1..]),
            _ => (Op::Add, element),
        };
        let mut set = ALL;
        let mut unknown = body.is_empty();
        for name in body.split('+') {
            match select(name) {
                Selector::Set(s) => set &= s,
                Selector::Unknown => unknown = true,
            }
        }
        if unknown {
            not_honoured.push(element.to_owned());
            continue;
        }
        let selected = |i: usize| set & (1 << i) != 0;
        if set == 0 && matches!(op, Op::Add | Op::Move) {
            not_honoured.push(element.to_owned());
        }
        match op {
            Op::Add => {
                // Newly activated suites go to the end, in their current relative order.
                let (added, rest): (Vec<usize>, Vec<usize>) = order
                    .iter()
                    .partition(|&&i| selected(i) && !active[i] && !killed[i]);
                for &i in &added {
                    active[i] = true;
                }
                order = rest.into_iter().chain(added).collect();
            }
            Op::Move => {
                let (moved, rest): (Vec<usize>, Vec<usize>) =
                    order.iter().partition(|&&i| selected(i) && active[i]);
                order = rest.into_iter().chain(moved).collect();
            }
            Op::Remove => {
                // OpenSSL moves deleted suites to the head, keeping their relative order.
                let (removed, rest): (Vec<usize>, Vec<usize>) =
                    order.iter().partition(|&&i| selected(i) && active[i]);
                for &i in &removed {
                    active[i] = false;
                }
                order = removed.into_iter().chain(rest).collect();
            }
            Op::Kill => {
                for i in 0..SUITES.len() {
                    if selected(i) {
                        active[i] = false;
                        killed[i] = true;
                    }
                }
            }
        }
    }
    CipherSelection {
        tls12: order
            .into_iter()
            .filter(|&i| active[i])
            .map(|i| SUITES[i].suite)
            .collect(),
        not_honoured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CipherSuite as C;

    const E256: C = C::EcdheEcdsaAes256GcmSha384;
    const R256: C = C::EcdheRsaAes256GcmSha384;
    const ECHA: C = C::EcdheEcdsaChacha20Poly1305;
    const RCHA: C = C::EcdheRsaChacha20Poly1305;
    const E128: C = C::EcdheEcdsaAes128GcmSha256;
    const R128: C = C::EcdheRsaAes128GcmSha256;
    const OPENSSL_ALL: [C; 6] = [E256, R256, ECHA, RCHA, E128, R128];

    #[test]
    fn suites_cover_every_tls12_cipher_suite() {
        let tls12: Vec<C> = C::ALL.into_iter().filter(|c| !c.is_tls13()).collect();
        assert_eq!(tls12.len(), SUITES.len());
        for suite in tls12 {
            assert!(SUITES.iter().any(|s| s.suite == suite), "{suite:?}");
        }
    }

    /// Expected results from `openssl ciphers -s -tls1_2 '<list>'` (OpenSSL 3.0), restricted to
    /// the suites rustls implements.
    #[test]
    fn openssl_semantics_table() {
        let cases: &[(&str, &[C])] = &[
            ("ALL", &OPENSSL_ALL),
            ("DEFAULT", &OPENSSL_ALL),
            ("HIGH", &OPENSSL_ALL),
            ("HIGH:!aNULL:!MD5", &OPENSSL_ALL),
            ("aRSA", &[R256, RCHA, R128]),
            ("ECDSA", &[E256, ECHA, E128]),
            ("AES", &[E256, R256, E128, R128]),
            ("AES128", &[E128, R128]),
            ("AES256", &[E256, R256]),
            ("CHACHA20", &[ECHA, RCHA]),
            ("FIPS", &[E256, R256, E128, R128]),
            ("EECDH+AESGCM:EDH+AESGCM", &[E256, R256, E128, R128]),
            ("ALL:@STRENGTH", &OPENSSL_ALL),
            ("AES128:+ECDSA", &[R128, E128]),
            ("ECDHE+AES128:ECDHE", &[E128, R128, E256, R256, ECHA, RCHA]),
            (
                "ECDHE-RSA-AES128-GCM-SHA256:-ALL:ECDHE-ECDSA-AES128-GCM-SHA256",
                &[E128],
            ),
            ("ALL:-AES128:AES128", &OPENSSL_ALL),
            (
                "CHACHA20:AES128:-ECDSA:ALL",
                &[RCHA, R128, ECHA, E128, E256, R256],
            ),
            ("ALL:+AES128:+aRSA", &[E256, ECHA, E128, R256, RCHA, R128]),
            ("ALL:!AES128:AES128", &[E256, R256, ECHA, RCHA]),
            ("AES128:@STRENGTH:AES256", &[E128, R128, E256, R256]),
            ("AES128:AES256:@STRENGTH", &[E256, R256, E128, R128]),
            ("RSA", &[]),
            ("kRSA", &[]),
            ("MEDIUM", &[]),
            ("aNULL", &[]),
            (
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 ECDHE-ECDSA-CHACHA20-POLY1305",
                &[R128, ECHA],
            ),
            (
                "ECDHE-ECDSA-AES128-GCM-SHA256,ECDHE-RSA-AES128-GCM-SHA256",
                &[E128, R128],
            ),
        ];
        for (list, want) in cases {
            assert_eq!(evaluate(list).tls12, *want, "{list}");
        }
    }

    #[test]
    fn field_example_reports_what_rustls_cannot_do() {
        let result = evaluate("ALL:!aNULL:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP");
        assert_eq!(result.tls12, OPENSSL_ALL);
        assert!(result.tls12_enabled());
        assert_eq!(
            result.not_honoured,
            ["RC4+RSA", "+MEDIUM", "+LOW", "+SSLv2", "+EXP"]
        );
    }

    #[test]
    fn unknown_names_and_levels_are_not_honoured() {
        let result = evaluate("ECDHE-RSA-AES128-GCM-SHA256:FROBNICATE:@SECLEVEL=2:!WHATEVER");
        assert_eq!(result.tls12, [R128]);
        assert_eq!(
            result.not_honoured,
            ["FROBNICATE", "@SECLEVEL=2", "!WHATEVER"]
        );
    }

    #[test]
    fn a_list_without_tls12_suites_turns_tls12_off() {
        for list in [
            "RC4-SHA:DES-CBC3-SHA",
            "AES128-SHA",
            "TLS_AES_128_GCM_SHA256",
            "ALL:!ALL",
            "!ALL:ALL",
            "DHE-RSA-AES128-GCM-SHA256",
        ] {
            let result = evaluate(list);
            assert!(!result.tls12_enabled(), "{list}: {:?}", result.tls12);
            assert!(
                !result.not_honoured.is_empty() || list.contains("!ALL"),
                "{list}"
            );
        }
        // Known names of other suites are "not honoured", never silently dropped.
        assert_eq!(evaluate("AES128-SHA").not_honoured, ["AES128-SHA"]);
    }
}
