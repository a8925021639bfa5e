//! The Sluice data plane's routing core: the immutable [`model::Snapshot`] the proxy reads,
//! host and path matching over it ([`router`]), and the pure translation of Kubernetes objects
//! into it ([`translate`]).

pub mod admin;
pub mod debug;
pub mod events;
pub mod generator;
pub mod model;
pub mod policy;
pub mod proxy;
pub mod router;
pub mod sched;
pub mod shared;
pub mod snapshot_text;
pub mod status;
pub mod tls;
pub mod translate;
pub mod upstream_tls;
