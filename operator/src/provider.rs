//! Which cloud's Service annotations express `spec.loadBalancer.scheme`, and how `auto` picks
//! the cloud from the Nodes' `spec.providerID`.
//!
//! The table is fixed by design.md ("Load balancer scheme → Service annotations"); every key
//! the operator may write is listed by [`all_scheme_annotation_keys`]. When the provider or the
//! scheme changes, keys the operator stops applying are removed by server-side apply itself
//! (a field the manager owned and no longer sends is deleted), so no explicit clean-up is
//! needed; the list exists so the reconciler and tests can reason about ownership.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sluice_crds::{LoadBalancerScheme, Provider};

/// A provider after `auto` has been resolved: the one whose annotations are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConcreteProvider {
    /// AWS Load Balancer Controller (NLB in IP mode).
    Aws,
    /// The in-tree AWS cloud provider (NLB).
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
    /// No provider annotations.
    None,
}

impl ConcreteProvider {
    /// Every provider, in the order of the design.md table.
    pub const ALL: [ConcreteProvider; 9] = [
        ConcreteProvider::Aws,
        ConcreteProvider::AwsLegacy,
        ConcreteProvider::Gcp,
        ConcreteProvider::Azure,
        ConcreteProvider::Oci,
        ConcreteProvider::Ibm,
        ConcreteProvider::Openstack,
        ConcreteProvider::Alibaba,
        ConcreteProvider::None,
    ];

    /// The spelling of `spec.loadBalancer.provider` (and of `status.provider`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConcreteProvider::Aws => "aws",
            ConcreteProvider::AwsLegacy => "aws-legacy",
            ConcreteProvider::Gcp => "gcp",
            ConcreteProvider::Azure => "azure",
            ConcreteProvider::Oci => "oci",
            ConcreteProvider::Ibm => "ibm",
            ConcreteProvider::Openstack => "openstack",
            ConcreteProvider::Alibaba => "alibaba",
            ConcreteProvider::None => "none",
        }
    }
}

impl fmt::Display for ConcreteProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// For `status.provider`, which holds the resolved provider (never `auto`).
impl From<ConcreteProvider> for Provider {
    fn from(p: ConcreteProvider) -> Self {
        match p {
            ConcreteProvider::Aws => Provider::Aws,
            ConcreteProvider::AwsLegacy => Provider::AwsLegacy,
            ConcreteProvider::Gcp => Provider::Gcp,
            ConcreteProvider::Azure => Provider::Azure,
            ConcreteProvider::Oci => Provider::Oci,
            ConcreteProvider::Ibm => Provider::Ibm,
            ConcreteProvider::Openstack => Provider::Openstack,
            ConcreteProvider::Alibaba => Provider::Alibaba,
            ConcreteProvider::None => Provider::None,
        }
    }
}

const AWS_TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
const AWS_NLB_TARGET_TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";
const AWS_SCHEME: &str = "service.beta.kubernetes.io/aws-load-balancer-scheme";
const AWS_INTERNAL: &str = "service.beta.kubernetes.io/aws-load-balancer-internal";
const GCP_TYPE: &str = "networking.gke.io/load-balancer-type";
const AZURE_INTERNAL: &str = "service.beta.kubernetes.io/azure-load-balancer-internal";
const OCI_INTERNAL: &str = "service.beta.kubernetes.io/oci-load-balancer-internal";
const IBM_IP_TYPE: &str = "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type";
const OPENSTACK_INTERNAL: &str = "service.beta.kubernetes.io/openstack-internal-load-balancer";
const ALIBABA_ADDRESS_TYPE: &str =
    "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type";

/// The Service annotations that make a load balancer of `scheme` on provider `p`, exactly as in
/// design.md. Where the table says "(none)" for internet-facing, the cloud's default is
/// internet-facing and nothing is written.
pub fn scheme_annotations(
    p: ConcreteProvider,
    scheme: LoadBalancerScheme,
) -> BTreeMap<String, String> {
    let internal = scheme == LoadBalancerScheme::Internal;
    let pairs: Vec<(&str, &str)> = match p {
        ConcreteProvider::Aws => vec![
            (AWS_TYPE, "external"),
            (AWS_NLB_TARGET_TYPE, "ip"),
            (
                AWS_SCHEME,
                if internal {
                    "internal"
                } else {
                    "internet-facing"
                },
            ),
        ],
        ConcreteProvider::AwsLegacy if internal => {
            vec![(AWS_TYPE, "nlb"), (AWS_INTERNAL, "true")]
        }
        ConcreteProvider::AwsLegacy => vec![(AWS_TYPE, "nlb")],
        ConcreteProvider::Gcp if internal => vec![(GCP_TYPE, "Internal")],
        ConcreteProvider::Azure if internal => vec![(AZURE_INTERNAL, "true")],
        ConcreteProvider::Oci if internal => vec![(OCI_INTERNAL, "true")],
        ConcreteProvider::Ibm => vec![(IBM_IP_TYPE, if internal { "private" } else { "public" })],
        ConcreteProvider::Openstack if internal => vec![(OPENSTACK_INTERNAL, "true")],
        ConcreteProvider::Alibaba => vec![(
            ALIBABA_ADDRESS_TYPE,
            if internal { "intranet" } else { "internet" },
        )],
        ConcreteProvider::Gcp
        | ConcreteProvider::Azure
        | ConcreteProvider::Oci
        | ConcreteProvider::Openstack
        | ConcreteProvider::None => vec![],
    };
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Every annotation key [`scheme_annotations`] can produce, for any provider and scheme: the
/// keys the operator may own on the Service. A user annotation with one of these keys is
/// overridden whenever the operator sets that key (see `desired_service`).
pub fn all_scheme_annotation_keys() -> BTreeSet<&'static str> {
    BTreeSet::from([
        AWS_TYPE,
        AWS_NLB_TARGET_TYPE,
        AWS_SCHEME,
        AWS_INTERNAL,
        GCP_TYPE,
        AZURE_INTERNAL,
        OCI_INTERNAL,
        IBM_IP_TYPE,
        OPENSTACK_INTERNAL,
        ALIBABA_ADDRESS_TYPE,
    ])
}

/// The provider one Node's `spec.providerID` names, if it is one we know.
fn from_provider_id(id: &str) -> Option<ConcreteProvider> {
    let id = id.trim().to_ascii_lowercase();
    let provider = if id.starts_with("aws://") {
        // Both AWS integrations set aws://; the AWS Load Balancer Controller is what EKS and
        // current AWS clusters run (the in-tree NLB path is legacy), so auto picks it.
        ConcreteProvider::Aws
    } else if id.starts_with("gce://") {
        ConcreteProvider::Gcp
    } else if id.starts_with("azure://") {
        ConcreteProvider::Azure
    } else if id.starts_with("oci://") || id.starts_with("ocid1.") {
        // OKE nodes carry either the oci:// form or a bare instance OCID.
        ConcreteProvider::Oci
    } else if id.starts_with("ibm://") {
        ConcreteProvider::Ibm
    } else if id.starts_with("openstack://") {
        ConcreteProvider::Openstack
    } else if id.starts_with("alibaba") || id.starts_with("alicloud") {
        // Alibaba's CCM has used both names. (Its bare `<region>.<instance>` form is not
        // recognisable as Alibaba; such clusters set provider: alibaba explicitly.)
        ConcreteProvider::Alibaba
    } else {
        return None;
    };
    Some(provider)
}

/// The provider named by the first recognised `spec.providerID` (kind://, kwok, empty and other
/// unknown forms are skipped), or [`ConcreteProvider::None`] when no Node names a known cloud.
/// Deterministic for a given order of ids; callers pass Nodes in the API server's list order
/// (by name). Mixed clouds in one cluster are not a case worth more than "the first wins".
pub fn detect_from_provider_ids<'a>(ids: impl Iterator<Item = &'a str>) -> ConcreteProvider {
    ids.filter_map(from_provider_id)
        .next()
        .unwrap_or(ConcreteProvider::None)
}

/// `spec.loadBalancer.provider` made concrete: `auto` is detected from the Nodes'
/// `spec.providerID`s (which are only read in that case), every other value is taken as is.
pub fn resolve<'a>(
    spec_provider: Provider,
    node_provider_ids: impl Iterator<Item = &'a str>,
) -> ConcreteProvider {
    match spec_provider {
        Provider::Auto => detect_from_provider_ids(node_provider_ids),
        Provider::Aws => ConcreteProvider::Aws,
        Provider::AwsLegacy => ConcreteProvider::AwsLegacy,
        Provider::Gcp => ConcreteProvider::Gcp,
        Provider::Azure => ConcreteProvider::Azure,
        Provider::Oci => ConcreteProvider::Oci,
        Provider::Ibm => ConcreteProvider::Ibm,
        Provider::Openstack => ConcreteProvider::Openstack,
        Provider::Alibaba => ConcreteProvider::Alibaba,
        Provider::None => ConcreteProvider::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConcreteProvider as P;
    use LoadBalancerScheme::{Internal, InternetFacing};

    const AWS_LBC_INTERNAL: &[(&str, &str)] = &[
        (
            "service.beta.kubernetes.io/aws-load-balancer-type",
            "external",
        ),
        (
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type",
            "ip",
        ),
        (
            "service.beta.kubernetes.io/aws-load-balancer-scheme",
            "internal",
        ),
    ];
    const AWS_LBC_PUBLIC: &[(&str, &str)] = &[
        (
            "service.beta.kubernetes.io/aws-load-balancer-type",
            "external",
        ),
        (
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type",
            "ip",
        ),
        (
            "service.beta.kubernetes.io/aws-load-balancer-scheme",
            "internet-facing",
        ),
    ];

    /// One row of design.md's table: provider, scheme, the annotations it must produce.
    type Row = (
        P,
        LoadBalancerScheme,
        &'static [(&'static str, &'static str)],
    );

    /// design.md's table, row by row.
    fn table() -> Vec<Row> {
        vec![
            (P::Aws, Internal, AWS_LBC_INTERNAL),
            (P::Aws, InternetFacing, AWS_LBC_PUBLIC),
            (
                P::AwsLegacy,
                Internal,
                &[
                    ("service.beta.kubernetes.io/aws-load-balancer-type", "nlb"),
                    (
                        "service.beta.kubernetes.io/aws-load-balancer-internal",
                        "true",
                    ),
                ],
            ),
            (
                P::AwsLegacy,
                InternetFacing,
                &[("service.beta.kubernetes.io/aws-load-balancer-type", "nlb")],
            ),
            (
                P::Gcp,
                Internal,
                &[("networking.gke.io/load-balancer-type", "Internal")],
            ),
            (P::Gcp, InternetFacing, &[]),
            (
                P::Azure,
                Internal,
                &[(
                    "service.beta.kubernetes.io/azure-load-balancer-internal",
                    "true",
                )],
            ),
            (P::Azure, InternetFacing, &[]),
            (
                P::Oci,
                Internal,
                &[(
                    "service.beta.kubernetes.io/oci-load-balancer-internal",
                    "true",
                )],
            ),
            (P::Oci, InternetFacing, &[]),
            (
                P::Ibm,
                Internal,
                &[(
                    "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type",
                    "private",
                )],
            ),
            (
                P::Ibm,
                InternetFacing,
                &[(
                    "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type",
                    "public",
                )],
            ),
            (
                P::Openstack,
                Internal,
                &[(
                    "service.beta.kubernetes.io/openstack-internal-load-balancer",
                    "true",
                )],
            ),
            (P::Openstack, InternetFacing, &[]),
            (
                P::Alibaba,
                Internal,
                &[(
                    "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type",
                    "intranet",
                )],
            ),
            (
                P::Alibaba,
                InternetFacing,
                &[(
                    "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type",
                    "internet",
                )],
            ),
            (P::None, Internal, &[]),
            (P::None, InternetFacing, &[]),
        ]
    }

    #[test]
    fn scheme_table_matches_design() {
        let rows = table();
        // Every provider × scheme is in the table exactly once.
        assert_eq!(rows.len(), P::ALL.len() * 2);
        for p in P::ALL {
            for scheme in [Internal, InternetFacing] {
                let matching = rows.iter().filter(|(rp, rs, _)| *rp == p && *rs == scheme);
                assert_eq!(matching.count(), 1, "{p} {scheme:?}");
            }
        }
        for (p, scheme, want) in rows {
            let want: BTreeMap<String, String> = want
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(scheme_annotations(p, scheme), want, "{p} {scheme:?}");
        }
    }

    #[test]
    fn every_written_key_is_listed_and_every_listed_key_is_written() {
        let all = all_scheme_annotation_keys();
        let mut written = BTreeSet::new();
        for p in P::ALL {
            for scheme in [Internal, InternetFacing] {
                for key in scheme_annotations(p, scheme).into_keys() {
                    assert!(all.contains(key.as_str()), "{key} not listed");
                    written.insert(key);
                }
            }
        }
        let all: BTreeSet<String> = all.into_iter().map(str::to_owned).collect();
        assert_eq!(written, all);
    }

    #[test]
    fn internal_and_internet_facing_differ_where_the_cloud_distinguishes_them() {
        for p in P::ALL {
            let same = scheme_annotations(p, Internal) == scheme_annotations(p, InternetFacing);
            assert_eq!(same, p == P::None, "{p}");
        }
    }

    #[test]
    fn display_is_the_spec_spelling() {
        for p in P::ALL {
            let spec: Provider = p.into();
            let spelled = serde_json::to_value(spec).expect("provider serialises");
            assert_eq!(spelled, p.to_string(), "{p:?}");
            // And resolving the spec value gives the provider back.
            assert_eq!(resolve(spec, std::iter::empty()), p);
        }
        assert_eq!(P::AwsLegacy.to_string(), "aws-legacy");
    }

    #[test]
    fn detection_from_provider_ids() {
        let cases: &[(&[&str], P)] = &[
            (&[], P::None),
            (&[""], P::None),
            (&["kind://docker/kind/kind-control-plane"], P::None),
            (&["kwok://node-0"], P::None),
            (&["aws:///eu-west-1a/i-0123456789abcdef0"], P::Aws),
            (&["gce://my-project/europe-west1-b/gke-node-1"], P::Gcp),
            (
                &[
                    "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss/virtualMachines/0",
                ],
                P::Azure,
            ),
            (&["oci://ocid1.instance.oc1.phx.abc"], P::Oci),
            (&["ocid1.instance.oc1.phx.abc"], P::Oci),
            (&["ibm://account///cluster/kube-worker-1"], P::Ibm),
            (
                &["openstack:///8f4bc3b6-0a9e-4b8e-9c61-6e1c2f7d0a11"],
                P::Openstack,
            ),
            (&["alicloud://cn-hangzhou.i-bp1abc"], P::Alibaba),
            (&["alibaba://cn-hangzhou.i-bp1abc"], P::Alibaba),
            // Unknown ids are skipped; the first recognised one wins.
            (&["kind://x", "", "gce://p/z/n"], P::Gcp),
            (&["azure:///a", "aws:///b"], P::Azure),
            (&["aws:///b", "azure:///a"], P::Aws),
            // Case and surrounding whitespace do not matter.
            (&[" AWS:///eu-west-1a/i-1"], P::Aws),
            // A scheme must be a prefix, not anywhere in the id.
            (&["kwok://aws://x"], P::None),
        ];
        for (ids, want) in cases {
            assert_eq!(
                detect_from_provider_ids(ids.iter().copied()),
                *want,
                "{ids:?}"
            );
            assert_eq!(
                resolve(Provider::Auto, ids.iter().copied()),
                *want,
                "{ids:?}"
            );
        }
    }

    #[test]
    fn explicit_provider_ignores_nodes() {
        let nodes = ["gce://p/z/n"];
        let cases = [
            (Provider::Aws, P::Aws),
            (Provider::AwsLegacy, P::AwsLegacy),
            (Provider::Azure, P::Azure),
            (Provider::None, P::None),
            (Provider::Auto, P::Gcp),
        ];
        for (spec, want) in cases {
            assert_eq!(resolve(spec, nodes.iter().copied()), want, "{spec:?}");
        }
    }
}
