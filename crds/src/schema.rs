//! Schema building blocks the derive attributes cannot express on their own: CEL rules shared by
//! several fields, and item-level rules on lists of strings (schemars' `inner(...)` takes
//! validation keywords only, not `x-kubernetes-validations`).
//!
//! Every string a CEL rule reads has a `maxLength` and every list a `maxItems`: the API server
//! estimates the worst-case cost of each rule from those bounds and refuses a CRD whose rules
//! could exceed its budget.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A lowercase RFC 1123 subdomain, the rule for IngressClass and Secret names (at most 253
/// characters, enforced by `maxLength` next to each use). `[.]` instead of `\.` keeps the rule
/// free of escapes in both Rust and YAML.
pub(crate) const DNS1123_SUBDOMAIN: &str =
    "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
pub(crate) const DNS1123_SUBDOMAIN_MESSAGE: &str = "must be a lowercase RFC 1123 subdomain: \
     lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

/// A DNS-1035 label, the rule for Service names (at most 63 characters).
pub(crate) const DNS1035_LABEL: &str = "self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')";
pub(crate) const DNS1035_LABEL_MESSAGE: &str = "must be a DNS-1035 label: lowercase letters, \
     digits and '-', starting with a letter and ending with a letter or digit";

/// The set's own name becomes the name of its Service (a DNS-1035 label) and the value of the
/// `sluice.dev/set` label (at most 63 characters), so both limits apply to it. The rule sits on
/// the root and cannot carry `fieldPath: .metadata.name` (the API server refuses a path outside
/// the schema, and `metadata` is not in it), so its message names the field itself.
pub(crate) const SET_NAME: &str = "size(self.metadata.name) <= 63 && \
     self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')";
pub(crate) const SET_NAME_MESSAGE: &str = "metadata.name must be a DNS-1035 label of at most 63 \
     characters (lowercase letters, digits and '-', starting with a letter), because the \
     set's Service and the sluice.dev/set label carry it";

/// An IANA service name, the rule for named Service ports (at most 15 characters).
pub(crate) const IANA_SVC_NAME: &str = "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && \
     self.matches('[a-z]') && !self.contains('--')";
pub(crate) const IANA_SVC_NAME_MESSAGE: &str = "must be an IANA service name: lowercase \
     letters, digits and single '-', with at least one letter, starting and ending with a \
     letter or digit";

/// A Service `spec.loadBalancerClass`: a label-style qualified name, optionally prefixed with a
/// DNS subdomain and '/'.
pub(crate) const QUALIFIED_NAME: &str = "self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')";
pub(crate) const QUALIFIED_NAME_MESSAGE: &str = "must be a qualified name such as \
     'example.com/internal-vip': an optional DNS subdomain prefix and '/', then letters, digits, \
     '-', '_' and '.', starting and ending with a letter or digit";

/// An nginx size, the syntax `dataplane_config::parse_size` reads. A CEL rule rather than a
/// `pattern`, so a rejection explains the syntax instead of printing the regex.
pub(crate) const NGINX_SIZE: &str = "self.matches('^[0-9]+[kKmMgG]?$')";
pub(crate) const NGINX_SIZE_MESSAGE: &str = "must be a size: digits with an optional k, m or g \
     suffix, such as \"8k\", \"1m\" or \"0\" (unlimited)";

/// An nginx-style duration, the syntax `dataplane_config::parse_duration` reads.
pub(crate) const NGINX_DURATION: &str = "self.matches('^[0-9]+(ms|s|m|h|d)?$')";
pub(crate) const NGINX_DURATION_MESSAGE: &str = "must be a duration: seconds, or digits with \
     one unit of ms, s, m, h or d, such as \"60\", \"60s\" or \"5m\"";

/// Longest textual CIDR: a full IPv6 address with an embedded IPv4 tail plus `/128`.
const CIDR_MAX_LENGTH: u32 = 49;

/// `spec.loadBalancer.sourceRanges`: each entry a CIDR, as `spec.loadBalancerSourceRanges` of
/// the Service requires.
pub(crate) fn source_ranges(_: &mut SchemaGenerator) -> Schema {
    cidr_list(64)
}

/// `spec.proxy.proxyRealIpCidr`: the trusted proxies whose forwarded headers are believed.
pub(crate) fn real_ip_cidrs(_: &mut SchemaGenerator) -> Schema {
    cidr_list(64)
}

fn cidr_list(max_items: u32) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": max_items,
        "x-kubernetes-list-type": "atomic",
        "items": {
            "type": "string",
            "maxLength": CIDR_MAX_LENGTH,
            "x-kubernetes-validations": [{
                "rule": "isCIDR(self)",
                "message": "must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32",
            }],
        },
    })
}

/// `spec.publishStatusAddress`: IP addresses or DNS names written into Ingress status.
pub(crate) fn published_addresses(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 16,
        "x-kubernetes-list-type": "atomic",
        "items": {
            "type": "string",
            "maxLength": 253,
            "x-kubernetes-validations": [{
                "rule": format!("isIP(self) || {DNS1123_SUBDOMAIN}"),
                "message": "must be an IP address or a lowercase DNS name",
            }],
        },
    })
}

/// A patch body: a JSON Patch operation list or a JSON Merge Patch object, kept verbatim.
/// It has no `type` (it is either), which the API server allows only with
/// `x-kubernetes-preserve-unknown-fields`; server-side apply treats such an untyped value's
/// lists as atomic.
pub(crate) fn patch_body(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// For an `Option<Enum>` field: drops the enum type's own description from the `anyOf` that
/// schemars builds, because kube's `OptionalEnum` transform later hoists that branch over the
/// field and its description would replace the field's doc comment.
pub(crate) fn keep_field_description(schema: &mut Schema) {
    if let Some(branches) = schema.get_mut("anyOf").and_then(|v| v.as_array_mut()) {
        for branch in branches.iter_mut().filter_map(|b| b.as_object_mut()) {
            branch.remove("description");
        }
    }
}
