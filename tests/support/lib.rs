//! Shared support for Sluice's integration tests: a client for the local control plane
//! started by `tests/cluster/up.sh`, throwaway namespaces, waiting with timeouts, and real
//! HTTP/TLS backends on the test network's private range published through EndpointSlices.
//!
//! Everything here expects to run inside the test network namespace (`tests/cluster/netns.sh`),
//! where 10.244.0.0/16 is local. Test backends live in 10.244.128.0/17; kwok gives pods
//! addresses in 10.244.0.0/17.

pub mod backend;
pub mod config_map;
pub mod env;
pub mod fleet;
pub mod process;
pub mod publish;
pub mod tls;
pub mod token;
pub mod wait;

pub use backend::{Backend, BackendTls};
pub use env::{TestEnv, TestNamespace};
pub use publish::{ServicePortSpec, publish_service};
pub use wait::wait_until;

/// Installs the aws-lc-rs rustls provider once per test process (every Sluice binary does
/// the same first thing in `main`).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
