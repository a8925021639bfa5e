//! The Sluice data plane's routing core: the immutable [`model::Snapshot`] the proxy reads,
//! host and path matching over it ([`router`]), and the pure translation of Kubernetes objects
//! into it ([`translate`]).

pub mod model;
pub mod router;
pub mod translate;
