//! Shared state of the controller: one `Context` in an `Arc`, handed to every reconcile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::Node;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice_crds::IngressControllerSet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SetLabels {
    pub namespace: String,
    pub set: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub namespace: String,
    pub set: String,
    pub reason: String,
}

/// The operator's Prometheus metrics.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<SetLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Family<SetLabels, Histogram>,
    pub writes: Family<SetLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sluice_operator");
        let reconciles = Family::<SetLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let writes = Family::<SetLabels, Counter>::default();
        let duration = Family::<SetLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register("reconciles", "Reconciles by set", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by set and reason",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by set",
            duration.clone(),
        );
        registry.register(
            "api_writes",
            "Objects created, updated or deleted by the operator, by set",
            writes.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            writes,
        }
    }
}

/// Everything a reconcile needs besides the set itself.
pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub image: String,
    /// imagePullPolicy of the fleet's pods; `None` leaves the Kubernetes default.
    pub image_pull_policy: Option<String>,
    /// Every set the controller knows, for claims between sets.
    pub sets: Store<IngressControllerSet>,
    /// Nodes, for `provider: auto` (their spec.providerID).
    pub nodes: Store<Node>,
    pub metrics: Arc<Metrics>,
    /// True once the first reconcile pass ran (for /readyz).
    pub ready: Arc<AtomicBool>,
}

impl Context {
    pub fn reporter() -> Reporter {
        Reporter {
            controller: "sluice-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        }
    }

    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }
}
