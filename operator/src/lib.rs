//! The Sluice operator: reconciles `IngressControllerSet`s into data-plane fleets.
//!
//! Reconcile is a short pipeline: fetch ([`reconcile`]) -> validate ([`claims`]) -> build every
//! child with a pure `desired_*` function ([`children`], one file each) -> apply with
//! server-side apply ([`apply`]) -> compute status with a pure function ([`status`]).
//!
//! Beside it, [`mirror`] copies the Secrets each fleet's Ingresses reference into the set's
//! namespace, so the data plane needs no cluster-wide Secret access.
//!
//! [`migrate`] is a one-shot tool, not part of reconciling: the `migrate-report` subcommand
//! that tells an ingress-nginx user what Sluice will make of their Ingresses.

pub mod admin;
pub mod apply;
pub mod children;
pub mod claims;
pub mod context;
pub mod controller;
pub mod error;
pub mod migrate;
pub mod mirror;
pub mod patches;
pub mod provider;
pub mod reconcile;
pub mod status;
