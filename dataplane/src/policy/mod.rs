//! Per-Ingress policies at request time: the pure decisions the proxy makes with the typed
//! policies of `sluice_crds::annotations` (access lists, rate limits, auth, CORS, session
//! affinity, hashing). No I/O here; the proxy handler calls these in order.

pub mod access;
pub mod affinity;
pub mod basic_auth;
pub mod canary;
pub mod cors;
pub mod ewma;
pub mod hash;
pub mod random;
pub mod ratelimit;
