//! The one boundary between the config generator and the proxy: what the generator publishes
//! and the proxy reads, lock-free. No Kubernetes type crosses it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use sluice_crds::dataplane_config::DataplaneConfig;
use sluice_crds::fleet::FleetSettings;

use crate::model::Snapshot;

/// Everything the proxy reads per request or per connection. Each part is swapped whole by
/// the config generator; readers `load()` it without locks, and a request keeps the `Arc` it
/// started with, so a swap never changes a request in flight.
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub config: ArcSwap<DataplaneConfig>,
    pub fleet: ArcSwap<FleetSettings>,
    /// True once the first full sync was published (for /readyz).
    synced: AtomicBool,
    /// False once SIGTERM arrived: /readyz fails so the load balancer stops sending.
    accepting: AtomicBool,
}

impl Shared {
    pub fn new(fleet: FleetSettings) -> Arc<Self> {
        Arc::new(Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            config: ArcSwap::from_pointee(DataplaneConfig::default()),
            fleet: ArcSwap::from_pointee(fleet),
            synced: AtomicBool::new(false),
            accepting: AtomicBool::new(true),
        })
    }

    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    pub fn start_draining(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    /// Ready: synced once and not draining.
    pub fn ready(&self) -> bool {
        self.synced.load(Ordering::Acquire) && self.accepting.load(Ordering::Acquire)
    }

    pub fn draining(&self) -> bool {
        !self.accepting.load(Ordering::Acquire)
    }
}
