//! `IngressControllerSet` (`sluice.dev/v1alpha1`): one fleet of Sluice data-plane proxies that
//! serves exactly one IngressClass.
//!
//! Every doc comment on a field below becomes the `description` that `kubectl explain` shows,
//! so they are written for the person applying the object. Validation the schema keywords
//! cannot say is written as CEL (`x-kubernetes-validations`) with a message that reads well in
//! `kubectl apply` output; see `schema.rs` for the shared rules and why every string and list
//! is bounded.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{
    DNS1035_LABEL, DNS1035_LABEL_MESSAGE, DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MESSAGE,
    IANA_SVC_NAME, IANA_SVC_NAME_MESSAGE, NGINX_DURATION, NGINX_DURATION_MESSAGE, NGINX_SIZE,
    NGINX_SIZE_MESSAGE, QUALIFIED_NAME, QUALIFIED_NAME_MESSAGE, SET_NAME, SET_NAME_MESSAGE,
};

/// Replicas a set gets when `spec.replicas` is left out: two, so one pod can be disrupted
/// (the PodDisruptionBudget allows one) while the other keeps serving.
pub const DEFAULT_REPLICAS: i32 = 2;

fn default_replicas() -> i32 {
    DEFAULT_REPLICAS
}

/// `skip_serializing_if` for booleans that default to `false`: an unset flag is left out of
/// the object instead of written as `false`, and schemars then emits no schema `default`.
fn is_false(value: &bool) -> bool {
    !*value
}

/// Desired state of a fleet of Sluice data-plane proxies serving one IngressClass.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "IngressControllerSet",
    plural = "ingresscontrollersets",
    namespaced,
    shortname = "ics",
    category = "sluice",
    status = "IngressControllerSetStatus",
    derive = "PartialEq",
    doc = "IngressControllerSet runs a fleet of Sluice data-plane proxies, in the set's namespace, that serves the Ingresses of exactly one IngressClass behind one load balancer Service.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    selectable = ".spec.ingressClassName",
    validation = Rule::new(SET_NAME).message(SET_NAME_MESSAGE),
    printcolumn(
        name = "Class",
        type_ = "string",
        json_path = ".spec.ingressClassName",
        description = "IngressClass the fleet serves"
    ),
    printcolumn(
        name = "Scheme",
        type_ = "string",
        json_path = ".spec.loadBalancer.scheme",
        description = "internet-facing or internal load balancer"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired data-plane replicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Ready data-plane replicas"
    ),
    printcolumn(
        name = "Address",
        type_ = "string",
        json_path = ".status.address",
        description = "Load balancer hostname or IP"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct IngressControllerSetSpec {
    /// Name of the IngressClass this fleet serves. When no IngressClass of that name exists the
    /// operator creates one (controller sluice.dev/ingress-controller, parameters pointing at
    /// this set); an existing one is bound only if its controller and parameters point at this
    /// set. Immutable: create a new set to serve another class.
    #[schemars(
        length(min = 1, max = 253),
        extend("x-kubernetes-validations" = [
            {"rule": DNS1123_SUBDOMAIN, "message": DNS1123_SUBDOMAIN_MESSAGE},
            {"rule": "self == oldSelf", "message": "ingressClassName is immutable; create a new IngressControllerSet to serve another class"},
        ])
    )]
    pub ingress_class_name: String,

    /// Mark the IngressClass the operator creates as the cluster default
    /// (ingressclass.kubernetes.io/is-default-class), so new Ingresses without a class get this
    /// one. Has no effect on an IngressClass you applied yourself: set the annotation there.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default_class: bool,

    /// Also serve Ingresses that name no class at all (neither spec.ingressClassName nor the
    /// legacy annotation). At most one set in the cluster may do this; a second one is Stalled.
    #[serde(default, skip_serializing_if = "is_false")]
    pub watch_ingress_without_class: bool,

    /// Number of data-plane pods. Also reachable through the scale subresource, so
    /// `kubectl scale ics` and a HorizontalPodAutoscaler can drive it.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,

    /// The Service of type LoadBalancer in front of the fleet.
    pub load_balancer: LoadBalancerSpec,

    /// Addresses (IPs or DNS names) to write into the status of served Ingresses instead of the
    /// load balancer's own, for example when an outer proxy or CDN fronts the fleet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::published_addresses")]
    pub publish_status_address: Vec<String>,

    /// Where requests that match no Ingress rule go. Without it the data plane answers them
    /// with a built-in 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<DefaultBackend>,

    /// Data-plane settings for every Ingress of the class, named after the ingress-nginx
    /// ConfigMap keys. The operator renders them, with defaults filled in, into the ConfigMap
    /// named after the set, and the data plane applies changes without a restart.
    #[serde(default, skip_serializing_if = "ProxySettings::is_empty")]
    pub proxy: ProxySettings,

    /// Placement and resources of the data-plane pods.
    #[serde(default, skip_serializing_if = "PodSettings::is_empty")]
    pub pod: PodSettings,

    /// Escape hatch for fields of the generated Deployment and Service that this API does not
    /// expose. A patch that fails to apply, or that changes the labels and selector the
    /// operator depends on, makes the set Stalled and leaves the child as it was.
    #[serde(default, skip_serializing_if = "Patches::is_empty")]
    pub patches: Patches,
}

/// The load balancer Service in front of the fleet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.loadBalancerClass) == has(oldSelf.loadBalancerClass)",
    "message": "loadBalancerClass cannot be added or removed after creation; create a new IngressControllerSet instead",
}]))]
pub struct LoadBalancerSpec {
    /// Whether the load balancer is reachable from the internet (internet-facing) or only from
    /// the private network (internal). Changing it on a live set gives the load balancer a new
    /// address on every cloud; the operator waits for your opt-in before doing so.
    pub scheme: LoadBalancerScheme,

    /// Which cloud's Service annotations express the scheme: auto (detected from the Nodes'
    /// spec.providerID and reported in status.provider), aws (AWS Load Balancer Controller),
    /// aws-legacy (in-tree), gcp, azure, oci, ibm, openstack, alibaba, or none (no annotations).
    #[serde(default)]
    pub provider: Provider,

    /// Extra annotations for the Service, merged with the ones the operator sets for the
    /// scheme. The operator owns only the keys it sets itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: BTreeMap<String, String>,

    /// spec.loadBalancerClass of the Service, selecting a non-default load balancer
    /// implementation. Immutable, like the Service field it sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 317),
        extend("x-kubernetes-validations" = [
            {"rule": QUALIFIED_NAME, "message": QUALIFIED_NAME_MESSAGE},
            {"rule": "self == oldSelf", "message": "loadBalancerClass is immutable"},
        ])
    )]
    pub load_balancer_class: Option<String>,

    /// Client CIDRs allowed to reach the load balancer (spec.loadBalancerSourceRanges of the
    /// Service). Empty allows every client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::source_ranges")]
    pub source_ranges: Vec<String>,

    /// Local keeps the client source address and sends traffic only to nodes running a
    /// data-plane pod; Cluster spreads over every node but hides the client address.
    #[serde(default)]
    pub external_traffic_policy: ExternalTrafficPolicy,

    /// Expect the PROXY protocol (v1 or v2) from the load balancer on every connection, to learn
    /// the client address. Enable it only when the load balancer sends it: connections without
    /// the header are refused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_protocol: bool,
}

/// Reachability of the load balancer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancerScheme {
    /// Reachable from the internet.
    InternetFacing,
    /// Reachable only from the private network.
    Internal,
}

/// Cloud provider whose Service annotations the operator writes for the scheme.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Detect from the Nodes' spec.providerID.
    #[default]
    Auto,
    /// AWS Load Balancer Controller.
    Aws,
    /// The in-tree AWS cloud provider.
    AwsLegacy,
    /// Google Cloud.
    Gcp,
    /// Microsoft Azure.
    Azure,
    /// Oracle Cloud Infrastructure.
    Oci,
    /// IBM Cloud.
    Ibm,
    /// OpenStack.
    Openstack,
    /// Alibaba Cloud.
    Alibaba,
    /// Write no provider annotations.
    None,
}

/// spec.externalTrafficPolicy of the load balancer Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExternalTrafficPolicy {
    /// Keep the client address; only nodes with a data-plane pod receive traffic.
    #[default]
    Local,
    /// Any node forwards; the client address is lost.
    Cluster,
}

/// Where unmatched requests go.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultBackend {
    /// A Service in the set's namespace.
    pub service: BackendService,
}

/// A Service port in the set's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendService {
    /// Name of the Service, in the set's namespace.
    #[schemars(
        length(min = 1, max = 63),
        extend("x-kubernetes-validations" = [{"rule": DNS1035_LABEL, "message": DNS1035_LABEL_MESSAGE}])
    )]
    pub name: String,

    /// Port of the Service, by number or by name.
    pub port: BackendPort,
}

/// A Service port, by number or by name: exactly one of the two.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.number) != has(self.name)",
    "message": "set exactly one of number or name",
}]))]
pub struct BackendPort {
    /// Port number of the Service (its spec.ports[].port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub number: Option<i32>,

    /// Port name of the Service (its spec.ports[].name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 15),
        extend("x-kubernetes-validations" = [{"rule": IANA_SVC_NAME, "message": IANA_SVC_NAME_MESSAGE}])
    )]
    pub name: Option<String>,
}

/// Data-plane settings, named after the ingress-nginx ConfigMap keys (in camelCase). Every field
/// is optional; an unset field takes the ingress-nginx default, so migrated Ingresses behave
/// the same. Sizes use nginx syntax ("8k", "1m", "1g", "0" for unlimited); durations are
/// seconds ("60") or a number with one unit ("500ms", "60s", "5m", "1h", "1d").
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxySettings {
    /// TLS versions to accept (ssl-protocols). Default TLSv1.2 and TLSv1.3; older versions are
    /// not supported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 2), extend("x-kubernetes-list-type" = "set"))]
    pub ssl_protocols: Vec<TlsProtocol>,

    /// Cipher suites to offer, in OpenSSL names (ssl-ciphers, as a list). Default: the six
    /// ECDHE AES-GCM and ChaCha20-Poly1305 suites of ingress-nginx (its DHE suites are not
    /// supported). As in nginx, the list restricts TLS 1.3 only if it names a TLS 1.3 suite
    /// (TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 9), extend("x-kubernetes-list-type" = "set"))]
    pub ssl_ciphers: Vec<CipherSuite>,

    /// Send Strict-Transport-Security on responses of TLS hosts (hsts). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<bool>,

    /// max-age of the Strict-Transport-Security header in seconds (hsts-max-age). Default
    /// 31536000 (one year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = crate::dataplane_config::MAX_HSTS_MAX_AGE))]
    pub hsts_max_age: Option<i64>,

    /// Add includeSubDomains to the Strict-Transport-Security header
    /// (hsts-include-subdomains). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts_include_subdomains: Option<bool>,

    /// Add preload to the Strict-Transport-Security header (hsts-preload). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts_preload: Option<bool>,

    /// Largest request body accepted, larger ones get 413 (proxy-body-size). nginx size syntax:
    /// "8k", "1m", "1g", or "0" for unlimited. Default "1m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 20),
        extend("x-kubernetes-validations" = [{"rule": NGINX_SIZE, "message": NGINX_SIZE_MESSAGE}])
    )]
    pub proxy_body_size: Option<String>,

    /// Timeout for connecting to a backend pod (proxy-connect-timeout), e.g. "5" or "5s".
    /// Default "5s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 20),
        extend("x-kubernetes-validations" = [{"rule": NGINX_DURATION, "message": NGINX_DURATION_MESSAGE}])
    )]
    pub proxy_connect_timeout: Option<String>,

    /// Timeout between two reads of a backend's response (proxy-read-timeout), e.g. "60" or
    /// "2m". Default "60s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 20),
        extend("x-kubernetes-validations" = [{"rule": NGINX_DURATION, "message": NGINX_DURATION_MESSAGE}])
    )]
    pub proxy_read_timeout: Option<String>,

    /// Timeout between two writes of the request to a backend (proxy-send-timeout), e.g. "60"
    /// or "2m". Default "60s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 20),
        extend("x-kubernetes-validations" = [{"rule": NGINX_DURATION, "message": NGINX_DURATION_MESSAGE}])
    )]
    pub proxy_send_timeout: Option<String>,

    /// Trust incoming X-Forwarded-* headers from clients in proxyRealIpCidr and pass them on
    /// (use-forwarded-headers). Default false: they are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_forwarded_headers: Option<bool>,

    /// Take the client address from X-Forwarded-For when the connection comes from
    /// proxyRealIpCidr (enable-real-ip). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_real_ip: Option<bool>,

    /// Proxies whose forwarded headers are trusted (proxy-real-ip-cidr). Default 0.0.0.0/0,
    /// as in ingress-nginx; narrow it whenever useForwardedHeaders or enableRealIp is on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::real_ip_cidrs")]
    pub proxy_real_ip_cidr: Vec<String>,

    /// Status code for requests refused by a rate limit (limit-req-status-code). Default 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 400, max = 599))]
    pub limit_req_status_code: Option<i32>,

    /// Allow Ingresses to request TLS passthrough by SNI (ssl-passthrough annotation; the
    /// --enable-ssl-passthrough flag of ingress-nginx). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ssl_passthrough: Option<bool>,

    /// Ignore the defaultBackend of Ingresses that have no rules, instead of using it as the
    /// catch-all for unmatched requests (disable-catch-all). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_catch_all: Option<bool>,

    /// Name of a kubernetes.io/tls Secret in the set's namespace, served for TLS hosts that have
    /// no certificate of their own and for unknown SNI names (default-ssl-certificate). Default:
    /// a self-signed certificate generated at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        extend("x-kubernetes-validations" = [{"rule": DNS1123_SUBDOMAIN, "message": DNS1123_SUBDOMAIN_MESSAGE}])
    )]
    pub default_ssl_certificate: Option<String>,

    /// How many backend pods to try for one request when connecting fails
    /// (proxy-next-upstream-tries), the first try included; 0 means every pod once. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = crate::dataplane_config::MAX_PROXY_NEXT_UPSTREAM_TRIES))]
    pub proxy_next_upstream_tries: Option<i32>,
}

impl ProxySettings {
    /// True when nothing is set, so the spec leaves `proxy` out instead of writing `{}`.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A TLS protocol version.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TlsProtocol {
    /// TLS 1.2.
    #[serde(rename = "TLSv1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

/// A cipher suite the data plane supports, in its OpenSSL name.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum CipherSuite {
    /// TLS 1.2 ECDHE-ECDSA with AES-128-GCM.
    #[serde(rename = "ECDHE-ECDSA-AES128-GCM-SHA256")]
    EcdheEcdsaAes128GcmSha256,
    /// TLS 1.2 ECDHE-RSA with AES-128-GCM.
    #[serde(rename = "ECDHE-RSA-AES128-GCM-SHA256")]
    EcdheRsaAes128GcmSha256,
    /// TLS 1.2 ECDHE-ECDSA with AES-256-GCM.
    #[serde(rename = "ECDHE-ECDSA-AES256-GCM-SHA384")]
    EcdheEcdsaAes256GcmSha384,
    /// TLS 1.2 ECDHE-RSA with AES-256-GCM.
    #[serde(rename = "ECDHE-RSA-AES256-GCM-SHA384")]
    EcdheRsaAes256GcmSha384,
    /// TLS 1.2 ECDHE-ECDSA with ChaCha20-Poly1305.
    #[serde(rename = "ECDHE-ECDSA-CHACHA20-POLY1305")]
    EcdheEcdsaChacha20Poly1305,
    /// TLS 1.2 ECDHE-RSA with ChaCha20-Poly1305.
    #[serde(rename = "ECDHE-RSA-CHACHA20-POLY1305")]
    EcdheRsaChacha20Poly1305,
    /// TLS 1.3 AES-128-GCM.
    #[serde(rename = "TLS_AES_128_GCM_SHA256")]
    Tls13Aes128GcmSha256,
    /// TLS 1.3 AES-256-GCM.
    #[serde(rename = "TLS_AES_256_GCM_SHA384")]
    Tls13Aes256GcmSha384,
    /// TLS 1.3 ChaCha20-Poly1305.
    #[serde(rename = "TLS_CHACHA20_POLY1305_SHA256")]
    Tls13Chacha20Poly1305Sha256,
}

impl CipherSuite {
    /// Every supported suite, TLS 1.2 first, in ingress-nginx's preference order.
    pub const ALL: [CipherSuite; 9] = [
        CipherSuite::EcdheEcdsaAes128GcmSha256,
        CipherSuite::EcdheRsaAes128GcmSha256,
        CipherSuite::EcdheEcdsaAes256GcmSha384,
        CipherSuite::EcdheRsaAes256GcmSha384,
        CipherSuite::EcdheEcdsaChacha20Poly1305,
        CipherSuite::EcdheRsaChacha20Poly1305,
        CipherSuite::Tls13Aes128GcmSha256,
        CipherSuite::Tls13Aes256GcmSha384,
        CipherSuite::Tls13Chacha20Poly1305Sha256,
    ];

    /// True for TLS 1.3 suites, which (as in nginx) are restricted only when the list names
    /// at least one of them.
    pub fn is_tls13(self) -> bool {
        matches!(
            self,
            CipherSuite::Tls13Aes128GcmSha256
                | CipherSuite::Tls13Aes256GcmSha384
                | CipherSuite::Tls13Chacha20Poly1305Sha256
        )
    }
}

/// Placement and resources of the data-plane pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSettings {
    /// CPU and memory requests and limits of the data-plane container.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels a node must carry to run a data-plane pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub node_selector: BTreeMap<String, String>,

    /// Taints the data-plane pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "atomic"))]
    pub tolerations: Vec<Toleration>,

    /// Node and pod affinity of the data-plane pods. Without it the operator only spreads the
    /// pods across nodes.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub affinity: Option<Affinity>,
}

impl PodSettings {
    /// True when nothing is set (an empty `resources: {}` or `affinity: {}` counts as unset), so
    /// the spec leaves `pod` out instead of writing `{}`.
    pub fn is_empty(&self) -> bool {
        is_unset(&self.resources)
            && self.node_selector.is_empty()
            && self.tolerations.is_empty()
            && is_unset(&self.affinity)
    }
}

/// `skip_serializing_if` for optional Kubernetes structs: `Some({})` says nothing more than
/// `None`, so neither is written.
fn is_unset<T: Default + PartialEq>(value: &Option<T>) -> bool {
    value.as_ref().is_none_or(|v| *v == T::default())
}

/// Patches applied to the generated children before they are applied to the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Patches {
    /// Patch for the Deployment of the data-plane pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<ChildPatch>,

    /// Patch for the load balancer Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ChildPatch>,
}

impl Patches {
    /// True when no patch is set, so the spec leaves `patches` out instead of writing `{}`.
    pub fn is_empty(&self) -> bool {
        self.deployment.is_none() && self.service.is_none()
    }
}

/// One patch for one child object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// A patch is one unit: server-side apply gives it a single owner instead of merging two
// managers' halves into something neither wrote. Whether `patch` has the shape its `type` needs
// cannot be a CEL rule: the API server declares no CEL type for an untyped
// (`x-kubernetes-preserve-unknown-fields`) field, so a rule reading `self.patch` would not
// compile. The operator checks it and reports a Stalled condition instead.
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct ChildPatch {
    /// JSONPatch (RFC 6902: a list of operations such as
    /// {op: add, path: /spec/template/metadata/annotations/x, value: y}) or MergePatch
    /// (RFC 7386: an object merged into the child, null deletes a field).
    #[serde(rename = "type")]
    pub type_: PatchType,

    /// The patch: a list of operations for JSONPatch, an object for MergePatch.
    #[schemars(schema_with = "crate::schema::patch_body")]
    pub patch: serde_json::Value,
}

/// Format of a patch.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PatchType {
    /// JSON Patch, RFC 6902.
    #[serde(rename = "JSONPatch")]
    JsonPatch,
    /// JSON Merge Patch, RFC 7386.
    #[serde(rename = "MergePatch")]
    MergePatch,
}

/// Observed state of the fleet, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressControllerSetStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Data-plane pods that exist (status.replicas of the Deployment); the scale subresource
    /// reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Data-plane pods that are ready to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,

    /// Label selector of the data-plane pods in string form (equal to the Deployment's pod
    /// selector), read by the scale subresource and so by HorizontalPodAutoscalers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// The IngressClass this set is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,

    /// First hostname or IP of the load balancer, for the Address column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,

    /// Addresses of the load balancer Service, as its status reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerStatus>,

    /// The provider whose annotations are in use: spec.loadBalancer.provider, or the one
    /// detected from the Nodes when that is auto. Never auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::schema::keep_field_description)]
    pub provider: Option<Provider>,

    /// Ready (the summary), Available, LoadBalancerReady, IngressClassBound, and the kstatus
    /// conditions Reconciling and Stalled (Stalled means a person has to act).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        extend(
            "x-kubernetes-list-type" = "map",
            "x-kubernetes-list-map-keys" = ["type"],
        )
    )]
    pub conditions: Vec<Condition>,
}

/// Addresses of the load balancer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerStatus {
    /// One entry per load balancer address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "atomic"))]
    pub ingress: Vec<LoadBalancerIngress>,
}

/// One load balancer address: an IP, a hostname, or both.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIngress {
    /// IP address of the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,

    /// DNS name of the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The committed form of the CRD as JSON, for inspection.
    fn crd_json() -> Value {
        serde_json::to_value(crate::crd::crd().expect("CRD generates")).expect("CRD is JSON")
    }

    fn root_schema() -> Value {
        crd_json()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    /// The schema at a dotted path of property names; `[]` steps into list items.
    fn schema_at(path: &str) -> Value {
        let mut node = root_schema();
        for step in path.split('.') {
            node = if step == "[]" {
                node["items"].clone()
            } else {
                node["properties"][step].clone()
            };
            assert!(!node.is_null(), "no schema at {path} (failed at {step})");
        }
        node
    }

    fn rules(node: &Value) -> Vec<String> {
        node["x-kubernetes-validations"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| r["rule"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn names_scope_and_subresources() {
        let crd = crd_json();
        let spec = &crd["spec"];
        assert_eq!(crd["metadata"]["name"], "ingresscontrollersets.sluice.dev");
        assert_eq!(spec["group"], crate::GROUP);
        assert_eq!(spec["scope"], "Namespaced");
        assert_eq!(spec["names"]["kind"], "IngressControllerSet");
        assert_eq!(spec["names"]["plural"], "ingresscontrollersets");
        assert_eq!(spec["names"]["shortNames"], json!(["ics"]));
        assert_eq!(spec["names"]["categories"], json!(["sluice"]));
        let version = &spec["versions"][0];
        assert_eq!(version["name"], crate::VERSION);
        assert_eq!(version["served"], true);
        assert_eq!(version["storage"], true);
        assert_eq!(version["subresources"]["status"], json!({}));
        assert_eq!(
            version["subresources"]["scale"],
            json!({
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            })
        );
        assert_eq!(
            version["selectableFields"],
            json!([{"jsonPath": ".spec.ingressClassName"}])
        );
    }

    #[test]
    fn printer_columns() {
        let columns = crd_json()["spec"]["versions"][0]["additionalPrinterColumns"].clone();
        let got: Vec<(String, String, String)> = columns
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                (s("name"), s("type"), s("jsonPath"))
            })
            .collect();
        let want = [
            ("Class", "string", ".spec.ingressClassName"),
            ("Scheme", "string", ".spec.loadBalancer.scheme"),
            ("Desired", "integer", ".spec.replicas"),
            ("Ready", "integer", ".status.readyReplicas"),
            ("Address", "string", ".status.address"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn required_fields() {
        let cases: &[(&str, &[&str])] = &[
            ("", &["spec"]),
            ("spec", &["ingressClassName", "loadBalancer"]),
            ("spec.loadBalancer", &["scheme"]),
            ("spec.defaultBackend", &["service"]),
            ("spec.defaultBackend.service", &["name", "port"]),
            ("spec.patches.deployment", &["patch", "type"]),
            ("spec.patches.service", &["patch", "type"]),
            (
                "status.conditions.[]",
                &["lastTransitionTime", "message", "reason", "status", "type"],
            ),
        ];
        for (path, want) in cases {
            let node = if path.is_empty() {
                root_schema()
            } else {
                schema_at(path)
            };
            assert_eq!(node["required"], json!(want), "required at {path:?}");
        }
        for path in [
            "status",
            "spec.proxy",
            "spec.pod",
            "spec.patches",
            "spec.defaultBackend.service.port",
        ] {
            assert!(
                schema_at(path).get("required").is_none(),
                "nothing required at {path}"
            );
        }
    }

    #[test]
    fn defaults_and_enums() {
        let cases: &[(&str, Option<Value>, Option<Value>)] = &[
            ("spec.replicas", Some(json!(2)), None),
            (
                "spec.loadBalancer.scheme",
                None,
                Some(json!(["internet-facing", "internal"])),
            ),
            (
                "spec.loadBalancer.provider",
                Some(json!("auto")),
                Some(json!([
                    "auto",
                    "aws",
                    "aws-legacy",
                    "gcp",
                    "azure",
                    "oci",
                    "ibm",
                    "openstack",
                    "alibaba",
                    "none"
                ])),
            ),
            (
                "spec.loadBalancer.externalTrafficPolicy",
                Some(json!("Local")),
                Some(json!(["Local", "Cluster"])),
            ),
            (
                "spec.patches.deployment.type",
                None,
                Some(json!(["JSONPatch", "MergePatch"])),
            ),
            (
                "spec.proxy.sslProtocols.[]",
                None,
                Some(json!(["TLSv1.2", "TLSv1.3"])),
            ),
            // Flags that default to false get no schema default, so objects stay minimal.
            ("spec.defaultClass", None, None),
            ("spec.watchIngressWithoutClass", None, None),
            ("spec.loadBalancer.proxyProtocol", None, None),
            ("spec.proxy.hsts", None, None),
        ];
        for (path, default, values) in cases {
            let node = schema_at(path);
            assert_eq!(node.get("default"), default.as_ref(), "default of {path}");
            assert_eq!(node.get("enum"), values.as_ref(), "enum of {path}");
        }
        assert_eq!(schema_at("spec.replicas")["minimum"], json!(0.0));
        assert_eq!(DEFAULT_REPLICAS, 2);
        let ciphers = schema_at("spec.proxy.sslCiphers.[]")["enum"].clone();
        assert_eq!(
            ciphers,
            serde_json::to_value(CipherSuite::ALL).expect("json")
        );
    }

    #[test]
    fn cel_rules_sit_on_the_right_fields() {
        let cases: &[(&str, &[&str])] = &[
            (
                "",
                &["size(self.metadata.name) <= 63 && self.metadata.name.matches("],
            ),
            (
                "spec.ingressClassName",
                &["self.matches(", "self == oldSelf"],
            ),
            (
                "spec.loadBalancer",
                &["has(self.loadBalancerClass) == has(oldSelf.loadBalancerClass)"],
            ),
            (
                "spec.loadBalancer.loadBalancerClass",
                &["self.matches(", "self == oldSelf"],
            ),
            ("spec.loadBalancer.sourceRanges.[]", &["isCIDR(self)"]),
            ("spec.proxy.proxyRealIpCidr.[]", &["isCIDR(self)"]),
            (
                "spec.publishStatusAddress.[]",
                &["isIP(self) || self.matches("],
            ),
            (
                "spec.defaultBackend.service.name",
                &["self.matches('^[a-z]"],
            ),
            (
                "spec.defaultBackend.service.port",
                &["has(self.number) != has(self.name)"],
            ),
            ("spec.defaultBackend.service.port.name", &["self.matches("]),
            ("spec.proxy.defaultSslCertificate", &["self.matches("]),
            (
                "spec.proxy.proxyBodySize",
                &["self.matches('^[0-9]+[kKmMgG]?$')"],
            ),
            (
                "spec.proxy.proxyConnectTimeout",
                &["self.matches('^[0-9]+(ms|s|m|h|d)?$')"],
            ),
            (
                "spec.proxy.proxyReadTimeout",
                &["self.matches('^[0-9]+(ms|s|m|h|d)?$')"],
            ),
            (
                "spec.proxy.proxySendTimeout",
                &["self.matches('^[0-9]+(ms|s|m|h|d)?$')"],
            ),
        ];
        for (path, want) in cases {
            let node = if path.is_empty() {
                root_schema()
            } else {
                schema_at(path)
            };
            let got = rules(&node);
            assert_eq!(got.len(), want.len(), "rules at {path:?}: {got:?}");
            for (rule, prefix) in got.iter().zip(want.iter()) {
                assert!(
                    rule.starts_with(prefix),
                    "rule at {path:?}: {rule:?} !~ {prefix:?}"
                );
            }
            let messages = node["x-kubernetes-validations"].as_array().expect("rules");
            assert!(
                messages.iter().all(|r| r["message"].is_string()),
                "every rule at {path:?} has a message"
            );
        }
        // Transition rules only where immutability is meant.
        let text = serde_json::to_string(&root_schema()).expect("json");
        assert_eq!(
            text.matches("oldSelf").count(),
            3,
            "only ingressClassName, loadBalancer (has rule) and loadBalancerClass are immutable"
        );
    }

    #[test]
    fn list_and_map_types() {
        let cases: &[(&str, &str, &str, Option<Value>)] = &[
            (
                "status.conditions",
                "x-kubernetes-list-type",
                "map",
                Some(json!(["type"])),
            ),
            (
                "status.loadBalancer.ingress",
                "x-kubernetes-list-type",
                "atomic",
                None,
            ),
            (
                "spec.pod.tolerations",
                "x-kubernetes-list-type",
                "atomic",
                None,
            ),
            (
                "spec.loadBalancer.sourceRanges",
                "x-kubernetes-list-type",
                "atomic",
                None,
            ),
            (
                "spec.publishStatusAddress",
                "x-kubernetes-list-type",
                "atomic",
                None,
            ),
            (
                "spec.proxy.sslProtocols",
                "x-kubernetes-list-type",
                "set",
                None,
            ),
            (
                "spec.proxy.sslCiphers",
                "x-kubernetes-list-type",
                "set",
                None,
            ),
            (
                "spec.patches.deployment",
                "x-kubernetes-map-type",
                "atomic",
                None,
            ),
            (
                "spec.patches.service",
                "x-kubernetes-map-type",
                "atomic",
                None,
            ),
        ];
        for (path, key, value, map_keys) in cases {
            let node = schema_at(path);
            assert_eq!(node[*key], json!(value), "{key} of {path}");
            assert_eq!(
                node.get("x-kubernetes-list-map-keys"),
                map_keys.as_ref(),
                "map keys of {path}"
            );
        }
        let patch = schema_at("spec.patches.deployment.patch");
        assert_eq!(patch["x-kubernetes-preserve-unknown-fields"], true);
        assert!(
            patch.get("type").is_none(),
            "a patch body is a list or an object"
        );
    }

    /// Walks the generated schema; `visit(path, node)` for every schema node.
    fn walk(path: &str, node: &Value, visit: &mut dyn FnMut(&str, &Value)) {
        visit(path, node);
        if let Some(props) = node["properties"].as_object() {
            for (name, child) in props {
                walk(&format!("{path}.{name}"), child, visit);
            }
        }
        if node["items"].is_object() {
            walk(&format!("{path}[]"), &node["items"], visit);
        }
        if node["additionalProperties"].is_object() {
            walk(&format!("{path}{{}}"), &node["additionalProperties"], visit);
        }
    }

    /// Subtrees whose schema comes from k8s-openapi rather than from this crate.
    fn is_upstream(path: &str) -> bool {
        [
            "spec.pod.resources.",
            "spec.pod.tolerations[].",
            "spec.pod.affinity.",
            "status.conditions[].",
        ]
        .iter()
        .any(|p| path.starts_with(p))
    }

    #[test]
    fn every_field_is_described_and_bounded() {
        let mut problems = Vec::new();
        walk("", &root_schema(), &mut |path, node| {
            let path = path.trim_start_matches('.');
            if path.is_empty() || is_upstream(path) || path.ends_with("[]") || path.ends_with("{}")
            {
                return;
            }
            if node["description"].as_str().is_none_or(|d| d.len() <= 10) {
                problems.push(format!("{path}: no description"));
            }
            if node["type"] == "array" && node.get("maxItems").is_none() {
                problems.push(format!("{path}: list without maxItems"));
            }
            if node["type"] == "object"
                && node["additionalProperties"].is_object()
                && node.get("maxProperties").is_none()
            {
                problems.push(format!("{path}: map without maxProperties"));
            }
        });
        // Every string a CEL rule reads is bounded, so the API server can estimate the cost.
        walk("", &root_schema(), &mut |path, node| {
            if node["type"] == "string"
                && !rules(node).is_empty()
                && node.get("maxLength").is_none()
            {
                problems.push(format!("{path}: CEL on a string without maxLength"));
            }
        });
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn no_nulls_nullables_or_empty_collections() {
        fn check(path: &str, value: &Value, problems: &mut Vec<String>) {
            match value {
                Value::Null => problems.push(format!("{path}: null")),
                Value::Object(map) => {
                    // The one empty object Kubernetes requires: it switches the status subresource on.
                    if map.is_empty() && path != ".spec.versions[0].subresources.status" {
                        problems.push(format!("{path}: empty object"));
                    }
                    if map.contains_key("nullable") {
                        problems.push(format!("{path}: nullable"));
                    }
                    for (k, v) in map {
                        check(&format!("{path}.{k}"), v, problems);
                    }
                }
                Value::Array(items) => {
                    if items.is_empty() {
                        problems.push(format!("{path}: empty list"));
                    }
                    for (i, v) in items.iter().enumerate() {
                        check(&format!("{path}[{i}]"), v, problems);
                    }
                }
                _ => {}
            }
        }
        let mut problems = Vec::new();
        check("", &crd_json(), &mut problems);
        // And the YAML that is committed, parsed back.
        let yaml: Value =
            serde_yaml::from_str(&crate::crd::crd_yaml().expect("yaml")).expect("parse");
        check("", &yaml, &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// The example object of design.md, in full.
    const DESIGN_EXAMPLE: &str = r#"
apiVersion: sluice.dev/v1alpha1
kind: IngressControllerSet
metadata: {name: ingress-public, namespace: sluice-system}
spec:
  ingressClassName: public
  defaultClass: false
  watchIngressWithoutClass: false
  replicas: 2
  loadBalancer:
    scheme: internet-facing
    provider: auto
    annotations: {}
    sourceRanges: []
    externalTrafficPolicy: Local
    proxyProtocol: false
  publishStatusAddress: []
  defaultBackend:
    service: {name: fallback, port: {number: 8080}}
  proxy: {}
  pod:
    resources: {}
    nodeSelector: {}
    tolerations: []
  patches:
    deployment: {type: JSONPatch, patch: []}
    service: {type: MergePatch, patch: {}}
status:
  observedGeneration: 3
  replicas: 2
  readyReplicas: 2
  selector: "sluice.dev/set=ingress-public,sluice.dev/set-namespace=sluice-system"
  ingressClassName: public
  address: abc.elb.amazonaws.com
  loadBalancer: {ingress: [{hostname: abc.elb.amazonaws.com}]}
"#;

    #[test]
    fn design_example_parses_and_serialises_minimally() {
        let set: IngressControllerSet =
            serde_yaml::from_str(DESIGN_EXAMPLE).expect("design.md example parses");
        assert_eq!(set.spec.ingress_class_name, "public");
        assert_eq!(set.spec.replicas, 2);
        assert_eq!(
            set.spec.load_balancer.scheme,
            LoadBalancerScheme::InternetFacing
        );
        assert_eq!(set.spec.load_balancer.provider, Provider::Auto);
        assert_eq!(
            set.spec.load_balancer.external_traffic_policy,
            ExternalTrafficPolicy::Local
        );
        let patch = set
            .spec
            .patches
            .deployment
            .as_ref()
            .expect("deployment patch");
        assert_eq!(patch.type_, PatchType::JsonPatch);
        assert_eq!(patch.patch, json!([]));
        let status = set.status.as_ref().expect("status");
        assert_eq!(
            status.selector.as_deref(),
            Some("sluice.dev/set=ingress-public,sluice.dev/set-namespace=sluice-system")
        );

        let written = serde_json::to_value(&set).expect("serialises");
        assert!(!written.to_string().contains("null"), "{written}");
        // Empty and false values from the example are not written back.
        let spec = &written["spec"];
        for absent in [
            "defaultClass",
            "watchIngressWithoutClass",
            "publishStatusAddress",
            "proxy",
            "pod",
        ] {
            assert!(spec.get(absent).is_none(), "{absent} written: {spec}");
        }
        for absent in [
            "annotations",
            "sourceRanges",
            "proxyProtocol",
            "loadBalancerClass",
        ] {
            assert!(
                spec["loadBalancer"].get(absent).is_none(),
                "loadBalancer.{absent} written"
            );
        }
        // Values with a schema default are written, so the object reads the same everywhere.
        assert_eq!(spec["replicas"], 2);
        assert_eq!(spec["loadBalancer"]["provider"], "auto");
        // Writing is a fixed point: what was written reads and writes back the same.
        let back: IngressControllerSet =
            serde_json::from_value(written.clone()).expect("round trip");
        assert_eq!(serde_json::to_value(&back).expect("serialises"), written);
        assert!(
            back.spec.pod.is_empty(),
            "resources: {{}} means no resources"
        );
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let set: IngressControllerSet = serde_yaml::from_str(
            "apiVersion: sluice.dev/v1alpha1\nkind: IngressControllerSet\nmetadata: {name: x}\nspec: {ingressClassName: private, loadBalancer: {scheme: internal}}\n",
        )
        .expect("minimal set parses");
        assert_eq!(set.spec.replicas, DEFAULT_REPLICAS);
        assert_eq!(set.spec.load_balancer.provider, Provider::Auto);
        assert_eq!(
            set.spec.load_balancer.external_traffic_policy,
            ExternalTrafficPolicy::Local
        );
        assert!(
            set.spec.proxy.is_empty() && set.spec.pod.is_empty() && set.spec.patches.is_empty()
        );
        assert!(set.spec.default_backend.is_none() && set.status.is_none());
    }

    #[test]
    fn invalid_enum_values_are_refused() {
        let cases = [
            ("scheme: public", "unknown variant"),
            ("scheme: internal\n    provider: aws-new", "unknown variant"),
            (
                "scheme: internal\n    externalTrafficPolicy: local",
                "unknown variant",
            ),
        ];
        for (load_balancer, message) in cases {
            let yaml = format!("ingressClassName: a\nloadBalancer:\n    {load_balancer}\n");
            let err =
                serde_yaml::from_str::<IngressControllerSetSpec>(&yaml).expect_err(load_balancer);
            assert!(err.to_string().contains(message), "{err}");
        }
    }
}
