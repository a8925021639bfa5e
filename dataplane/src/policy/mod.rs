//! Per-Ingress policies at request time: the pure decisions the proxy makes with the typed
//! policies of `sluice_crds::annotations` (access lists, rate limits, auth, CORS, session
//! affinity, hashing). No I/O here; the proxy handler calls these in order.

pub mod access;
pub mod affinity;
pub mod basic_auth;
pub mod cors;
pub mod hash;
pub mod ratelimit;
