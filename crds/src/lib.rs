//! Sluice API types shared by the operator and the data plane.

/// API group of every Sluice custom resource.
pub const GROUP: &str = "sluice.dev";
/// The served and stored API version.
pub const VERSION: &str = "v1alpha1";
/// `spec.controller` of every IngressClass a Sluice fleet serves.
pub const CONTROLLER_NAME: &str = "sluice.dev/ingress-controller";
