//! Sluice API types shared by the operator and the data plane.
//!
//! - [`IngressControllerSet`] (`sluice.dev/v1alpha1`): one fleet of data-plane proxies serving
//!   one IngressClass. Its spec and status types live in [`ingress_controller_set`] and are
//!   re-exported here.
//! - [`dataplane_config::DataplaneConfig`]: the typed content of the ConfigMap the operator
//!   renders from `spec.proxy` and the data plane reads.
//! - [`annotations::parse_annotations`]: the Ingress annotations Sluice supports, parsed into
//!   typed policies; the one table of keys, the generated reference and admission policy.
//! - [`crd::crd`] / [`crd::crd_yaml`]: the CustomResourceDefinition exactly as committed under
//!   `config/crd/` (use these rather than `IngressControllerSet::crd()`, see [`crd`]).

pub mod annotations;
pub mod crd;
pub mod dataplane_config;
pub mod fleet;
pub mod ingress_controller_set;
pub mod mirror;
mod schema;

pub use ingress_controller_set::*;

/// API group of every Sluice custom resource.
pub const GROUP: &str = "sluice.dev";
/// The served and stored API version.
pub const VERSION: &str = "v1alpha1";
/// `spec.controller` of every IngressClass a Sluice fleet serves.
pub const CONTROLLER_NAME: &str = "sluice.dev/ingress-controller";
