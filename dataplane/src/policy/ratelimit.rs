//! Per-client rate and concurrency limits (`limit-rps`, `limit-rpm`, `limit-connections`,
//! `limit-burst-multiplier`, `limit-whitelist`), per Ingress and per replica, as ingress-nginx
//! configures nginx:
//!
//! - `limit_req zone=<ingress>_rps burst=rps*multiplier nodelay` (and the same per minute):
//!   a client may send `burst + 1` requests at once, then one per `1/rate`; a request beyond
//!   that is refused at once, never delayed. With both `limit-rps` and `limit-rpm` both apply,
//!   and a refused request counts against neither (nginx accounts only when all pass).
//! - `limit_conn zone=<ingress>_conn N`: at most N requests of a client in progress; the slot
//!   is the [`ConnectionGuard`] [`RateLimiters::check`] returns, freed when it is dropped.
//! - `limit-whitelist`: those clients skip all of it.
//!
//! The rate part is GCRA (the generic cell rate algorithm, the leaky bucket nginx's
//! `limit_req` implements in other words) written out here rather than with the `governor`
//! crate: it is a few lines of `Instant` arithmetic, takes the clock as a parameter so the
//! tests need no sleeping, and keeps the state in plain maps this module bounds itself, with
//! no `dashmap`/`quanta` added to the proxy.
//!
//! Memory is bounded: a client whose buckets are full again and with nothing in flight is
//! indistinguishable from one never seen, so it is dropped (every [`SWEEP_INTERVAL`], on the
//! next check of its shard); and each shard holds at most `capacity / SHARDS` clients. When a
//! shard is full of recently active clients, the one closest to a full bucket is forgotten to
//! make room (nginx's zones evict their least recently used state the same way when full).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sluice_crds::annotations::RateLimit;

/// Lock shards; clients are spread over them by a per-process random hash of their address.
const SHARDS: usize = 16;

/// Clients tracked at most, across all zones, by [`RateLimiters::default`].
pub const DEFAULT_CAPACITY: usize = 64 * 1024;

/// How often a shard drops its idle clients, on its next check.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How often a full shard may drop its idle clients to make room.
const FULL_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// How many idle clients a full shard looks at to pick one to forget, so that making room stays
/// O(1) under a flood of new addresses.
const EVICTION_SAMPLE: usize = 64;

/// The limits' zone: the Ingress the counters belong to, written `namespace/name`. Clients of
/// different zones are counted separately, as each ingress-nginx Ingress gets its own
/// `limit_req_zone`.
///
/// The rate parameters are not part of it: the state stores them and starts afresh when an
/// edited Ingress changes them. Zones are stored as a 64-bit hash of the name, so no name is
/// copied per request.
pub type ZoneKey = str;

/// A zone's key in the maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ZoneId(u64);

impl ZoneId {
    fn of(zone: &ZoneKey) -> Self {
        ZoneId(super::hash::stable_hash(zone.as_bytes()))
    }
}

/// Why a request was refused (ingress-nginx answers both with `limit-req-status-code` /
/// `limit-conn-status-code`, 503 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limited {
    /// Over `limit-rps` or `limit-rpm` (with the burst).
    Rate,
    /// `limit-connections` requests of this client already in progress.
    Connections,
}

/// The shared limiter state of one replica: cheap to clone (an `Arc`), `Send + Sync`.
#[derive(Debug, Clone)]
pub struct RateLimiters {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: [Mutex<Shard>; SHARDS],
    /// Random per process, so no one can aim many addresses at one shard.
    shard_hasher: RandomState,
    per_shard: usize,
}

#[derive(Debug, Default)]
struct Shard {
    clients: HashMap<(ZoneId, IpAddr), Client>,
    last_sweep: Option<Instant>,
}

/// One client of one zone.
#[derive(Debug, Default)]
struct Client {
    per_second: Option<Bucket>,
    per_minute: Option<Bucket>,
    in_flight: u32,
}

/// GCRA state: the theoretical arrival time of the next request, and the parameters it was
/// computed with (a change starts a fresh bucket).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    params: Params,
    tat: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Params {
    /// Time between two requests at the steady rate.
    interval: Duration,
    /// How far ahead of `now` the TAT may be: `burst * interval`.
    tolerance: Duration,
}

impl Params {
    /// `rate` requests per `period`, with a burst of `rate * multiplier` (ingress-nginx's).
    fn new(rate: u32, period: Duration, multiplier: u32) -> Option<Params> {
        if rate == 0 {
            return None;
        }
        let interval = period / rate;
        let burst = rate.saturating_mul(multiplier);
        Some(Params {
            interval,
            tolerance: interval.checked_mul(burst).unwrap_or(Duration::MAX),
        })
    }
}

/// The new TAT if a request at `now` conforms, `None` if it must be refused.
fn admit(bucket: Option<Bucket>, params: Params, now: Instant) -> Option<Bucket> {
    let tat = match bucket {
        Some(b) if b.params == params => b.tat.max(now),
        _ => now,
    };
    if tat.saturating_duration_since(now) > params.tolerance {
        return None;
    }
    Some(Bucket {
        params,
        tat: tat.checked_add(params.interval).unwrap_or(tat),
    })
}

impl Client {
    /// Whether forgetting this client changes nothing: full buckets, nothing in flight.
    fn idle(&self, now: Instant) -> bool {
        self.in_flight == 0 && self.recovered_at().is_none_or(|at| at <= now)
    }

    /// When both buckets are full again (`None`: no bucket).
    fn recovered_at(&self) -> Option<Instant> {
        let tat = |b: &Option<Bucket>| b.map(|b| b.tat);
        tat(&self.per_second).max(tat(&self.per_minute))
    }
}

impl Shard {
    fn sweep(&mut self, now: Instant) {
        self.clients.retain(|_, c| !c.idle(now));
        self.last_sweep = Some(now);
    }

    /// Whether the last sweep is at least `every` old.
    fn swept_before(&self, now: Instant, every: Duration) -> bool {
        self.last_sweep
            .is_none_or(|at| now.saturating_duration_since(at) >= every)
    }

    /// Frees one slot in a full shard: drops the idle clients (at most every
    /// [`FULL_SWEEP_INTERVAL`], so a flood of new addresses does not scan the shard on every
    /// request), else forgets the sampled client with nothing in flight whose buckets recover
    /// first. False if every sampled client has requests in flight (their guards need the entry).
    fn make_room(&mut self, now: Instant, capacity: usize) -> bool {
        if self.swept_before(now, FULL_SWEEP_INTERVAL) {
            self.sweep(now);
        }
        if self.clients.len() < capacity {
            return true;
        }
        let victim = self
            .clients
            .iter()
            .filter(|(_, c)| c.in_flight == 0)
            .take(EVICTION_SAMPLE)
            .min_by_key(|(_, c)| c.recovered_at())
            .map(|(k, _)| *k);
        match victim {
            Some(key) => {
                self.clients.remove(&key);
                true
            }
            None => false,
        }
    }
}

impl Default for RateLimiters {
    fn default() -> Self {
        RateLimiters::with_capacity(DEFAULT_CAPACITY)
    }
}

impl RateLimiters {
    /// Limiters tracking at most about `capacity` clients (rounded up to a multiple of the
    /// shard count).
    pub fn with_capacity(capacity: usize) -> Self {
        RateLimiters {
            inner: Arc::new(Inner {
                shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
                shard_hasher: RandomState::new(),
                per_shard: capacity.div_ceil(SHARDS).max(1),
            }),
        }
    }

    /// Counts a request of `client` against `limit` in `zone`, at `now`.
    ///
    /// `Ok(Some(guard))`: allowed, and `limit-connections` is set: keep the guard until the
    /// request is done (response body sent or the connection gone). `Ok(None)`: allowed with
    /// nothing to release (no connection limit, or a whitelisted client). `Err`: refuse it.
    ///
    /// IPv4-mapped IPv6 clients count as their IPv4 address. `now` must not go backwards by
    /// much between calls (a monotonic clock); the tests pass their own.
    pub fn check(
        &self,
        zone: &ZoneKey,
        limit: &RateLimit,
        client: IpAddr,
        now: Instant,
    ) -> Result<Option<ConnectionGuard>, Limited> {
        let client = client.to_canonical();
        if limit.whitelist.iter().any(|net| net.contains(client)) {
            return Ok(None);
        }
        let second = limit
            .rps
            .and_then(|r| Params::new(r, Duration::from_secs(1), limit.burst_multiplier));
        let minute = limit
            .rpm
            .and_then(|r| Params::new(r, Duration::from_secs(60), limit.burst_multiplier));
        let connections = limit.connections.filter(|n| *n > 0);
        if second.is_none() && minute.is_none() && connections.is_none() {
            return Ok(None);
        }

        let key = (ZoneId::of(zone), client);
        let shard_index = self.shard_of(client);
        let mut shard = self.lock(shard_index);
        if shard.swept_before(now, SWEEP_INTERVAL) {
            shard.sweep(now);
        }
        if !shard.clients.contains_key(&key)
            && shard.clients.len() >= self.inner.per_shard
            && !shard.make_room(now, self.inner.per_shard)
        {
            // Every tracked client has requests in flight: fail open for this one rather than
            // refuse a client only because of others (the shard cannot grow).
            return Ok(None);
        }
        let entry = shard.clients.entry(key).or_default();

        // Decide on everything first, then account: a refused request costs nothing.
        let per_second = match second {
            Some(p) => Some(admit(entry.per_second, p, now).ok_or(Limited::Rate)?),
            None => None,
        };
        let per_minute = match minute {
            Some(p) => Some(admit(entry.per_minute, p, now).ok_or(Limited::Rate)?),
            None => None,
        };
        if let Some(max) = connections
            && entry.in_flight >= max
        {
            return Err(Limited::Connections);
        }
        entry.per_second = per_second;
        entry.per_minute = per_minute;
        if connections.is_none() {
            return Ok(None);
        }
        entry.in_flight += 1;
        Ok(Some(ConnectionGuard {
            inner: Arc::clone(&self.inner),
            shard: shard_index,
            key,
        }))
    }

    /// Drops every client that is idle at `now` (also done on its own as requests arrive); for
    /// a periodic task, if one wants memory back while no request comes.
    pub fn sweep(&self, now: Instant) {
        for i in 0..SHARDS {
            self.lock(i).sweep(now);
        }
    }

    /// How many clients are tracked (for metrics and tests).
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).clients.len()).sum()
    }

    /// True when no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard_of(&self, client: IpAddr) -> usize {
        // The modulo keeps the value below SHARDS, so the cast cannot truncate anything used.
        (self.inner.shard_hasher.hash_one(client) % SHARDS as u64) as usize
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.inner.lock(shard)
    }
}

impl Inner {
    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // No code path panics while holding a shard, and the state is valid after every
        // statement anyway: a poisoned lock is still usable.
        self.shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One `limit-connections` slot of a client, held while its request is in progress; dropping it
/// frees the slot.
#[derive(Debug)]
#[must_use = "the connection slot is freed as soon as the guard is dropped"]
pub struct ConnectionGuard {
    inner: Arc<Inner>,
    shard: usize,
    key: (ZoneId, IpAddr),
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut shard = self.inner.lock(self.shard);
        // The entry exists: clients with requests in flight are never dropped.
        if let Some(client) = shard.clients.get_mut(&self.key) {
            client.in_flight = client.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_crds::dataplane_config::IpCidr;

    fn limit(rps: Option<u32>, rpm: Option<u32>, conns: Option<u32>, mult: u32) -> RateLimit {
        RateLimit {
            rps,
            rpm,
            connections: conns,
            burst_multiplier: mult,
            whitelist: Vec::new(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// How many of `n` requests at `at` pass.
    fn passes(
        l: &RateLimiters,
        zone: &ZoneKey,
        lim: &RateLimit,
        client: IpAddr,
        at: Instant,
        n: usize,
    ) -> usize {
        (0..n)
            .filter(|_| l.check(zone, lim, client, at).is_ok())
            .count()
    }

    #[test]
    fn burst_then_refused_then_refill() {
        // (rps, multiplier): nginx lets burst + 1 = rps * multiplier + 1 through at once.
        for (rps, mult) in [(1, 1), (2, 5), (10, 1), (5, 5), (100, 3)] {
            let l = RateLimiters::default();
            let z = "ns/ing";
            let lim = limit(Some(rps), None, None, mult);
            let c = ip("192.0.2.1");
            let t0 = Instant::now();
            let burst = (rps * mult) as usize;
            assert_eq!(
                passes(&l, z, &lim, c, t0, burst + 10),
                burst + 1,
                "{rps}/{mult}"
            );
            assert_eq!(
                l.check(z, &lim, c, t0).unwrap_err(),
                Limited::Rate,
                "{rps}/{mult}"
            );
            // One interval later exactly one more passes.
            let interval = Duration::from_secs(1) / rps;
            let t1 = t0 + interval;
            assert_eq!(passes(&l, z, &lim, c, t1, 5), 1, "{rps}/{mult}");
            // Half an interval later, none.
            assert_eq!(passes(&l, z, &lim, c, t1 + interval / 2, 5), 0);
            // Long idle: the whole burst again.
            let t2 = t1 + Duration::from_secs(3600);
            assert_eq!(passes(&l, z, &lim, c, t2, burst + 10), burst + 1);
        }
    }

    #[test]
    fn steady_rate_passes() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(Some(10), None, None, 1);
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        // 10 rps exactly, for 10 seconds: all pass.
        for i in 0..100 {
            assert!(l.check(z, &lim, c, t0 + ms(100 * i)).is_ok(), "{i}");
        }
    }

    #[test]
    fn per_minute() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(None, Some(6), None, 1);
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        assert_eq!(passes(&l, z, &lim, c, t0, 20), 7);
        // One per 10 s.
        assert_eq!(passes(&l, z, &lim, c, t0 + Duration::from_secs(9), 5), 0);
        assert_eq!(passes(&l, z, &lim, c, t0 + Duration::from_secs(10), 5), 1);
    }

    #[test]
    fn both_rates_apply() {
        let l = RateLimiters::default();
        let z = "z";
        // 10 rps (burst 10) and 12 per minute (burst 12).
        let lim = limit(Some(10), Some(12), None, 1);
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        // The per-second bucket stops the first burst.
        assert_eq!(passes(&l, z, &lim, c, t0, 50), 11);
        // A second later it has room for 10, the per-minute one for 2 (13 in all at most).
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(passes(&l, z, &lim, c, t1, 50), 2);
        assert_eq!(passes(&l, z, &lim, c, t1 + ms(10), 50), 0);
        // Per minute: 5 s per request; its TAT is t0 + 65 s, so at t0 + 20 s four fit.
        let t2 = t0 + Duration::from_secs(20);
        assert_eq!(passes(&l, z, &lim, c, t2, 50), 4);
    }

    #[test]
    fn a_refusal_costs_nothing() {
        let l = RateLimiters::default();
        let z = "z";
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        // The per-minute limit refuses 48 requests the per-second one would have taken.
        let both = limit(Some(10), Some(1), None, 1);
        assert_eq!(passes(&l, z, &both, c, t0, 50), 2);
        // Same per-second parameters, so its bucket carries over: only the 2 accepted counted.
        let per_second = limit(Some(10), None, None, 1);
        assert_eq!(passes(&l, z, &per_second, c, t0, 50), 9);
    }

    #[test]
    fn multiplier_scales_the_burst() {
        for mult in [1u32, 2, 5, 10] {
            let l = RateLimiters::default();
            let z = "z";
            let lim = limit(Some(3), None, None, mult);
            let t0 = Instant::now();
            let got = passes(&l, z, &lim, ip("192.0.2.1"), t0, 100);
            assert_eq!(got, (3 * mult + 1) as usize, "{mult}");
        }
    }

    #[test]
    fn whitelist_skips_everything() {
        let l = RateLimiters::default();
        let z = "z";
        let mut lim = limit(Some(1), Some(1), Some(1), 1);
        lim.whitelist = vec![
            "10.0.0.0/8".parse::<IpCidr>().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        let t0 = Instant::now();
        for client in ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8::7"] {
            for _ in 0..100 {
                assert!(
                    matches!(l.check(z, &lim, ip(client), t0), Ok(None)),
                    "{client}"
                );
            }
        }
        assert!(l.is_empty());
        // Others are limited (burst 1 + 1; each guard is dropped at once).
        assert_eq!(passes(&l, z, &lim, ip("192.0.2.1"), t0, 10), 2);
    }

    #[test]
    fn mapped_ipv4_is_the_same_client() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(Some(1), None, None, 1);
        let t0 = Instant::now();
        assert_eq!(passes(&l, z, &lim, ip("192.0.2.1"), t0, 1), 1);
        assert_eq!(passes(&l, z, &lim, ip("::ffff:192.0.2.1"), t0, 5), 1);
        assert_eq!(passes(&l, z, &lim, ip("192.0.2.1"), t0, 5), 0);
    }

    #[test]
    fn connection_guard_releases_on_drop() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(None, None, Some(2), 5);
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        let g1 = l.check(z, &lim, c, t0).unwrap().expect("a guard");
        let g2 = l.check(z, &lim, c, t0).unwrap().expect("a guard");
        assert_eq!(l.check(z, &lim, c, t0).unwrap_err(), Limited::Connections);
        // Another client is not affected.
        let other = l.check(z, &lim, ip("192.0.2.2"), t0).unwrap();
        assert!(other.is_some());
        drop(g1);
        let g3 = l.check(z, &lim, c, t0).unwrap();
        assert!(g3.is_some());
        assert!(l.check(z, &lim, c, t0).is_err());
        drop((g2, g3, other));
        // Guards outlive nothing: all slots free, and the idle clients can be swept.
        l.sweep(t0);
        assert!(l.is_empty());
    }

    #[test]
    fn connection_refusal_does_not_consume_rate() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(Some(1), None, Some(1), 2);
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        let g = l.check(z, &lim, c, t0).unwrap();
        for _ in 0..10 {
            assert_eq!(l.check(z, &lim, c, t0).unwrap_err(), Limited::Connections);
        }
        drop(g);
        // Burst of 2 + 1, one used: two left.
        assert_eq!(passes(&l, z, &lim, c, t0, 10), 2);
    }

    #[test]
    fn rate_is_checked_before_connections() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(Some(1), None, Some(10), 1);
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        let _g1 = l.check(z, &lim, c, t0).unwrap();
        let _g2 = l.check(z, &lim, c, t0).unwrap();
        assert_eq!(l.check(z, &lim, c, t0).unwrap_err(), Limited::Rate);
    }

    #[test]
    fn zones_and_clients_are_independent() {
        let l = RateLimiters::default();
        let (a, b) = ("ns/a", "ns/b");
        let lim = limit(Some(1), None, None, 1);
        let t0 = Instant::now();
        let (c1, c2) = (ip("192.0.2.1"), ip("2001:db8::1"));
        assert_eq!(passes(&l, a, &lim, c1, t0, 10), 2);
        assert_eq!(passes(&l, b, &lim, c1, t0, 10), 2);
        assert_eq!(passes(&l, a, &lim, c2, t0, 10), 2);
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn an_edited_limit_starts_afresh() {
        let l = RateLimiters::default();
        let z = "z";
        let c = ip("192.0.2.1");
        let t0 = Instant::now();
        assert_eq!(passes(&l, z, &limit(Some(1), None, None, 1), c, t0, 10), 2);
        assert_eq!(passes(&l, z, &limit(Some(5), None, None, 1), c, t0, 10), 6);
        assert_eq!(passes(&l, z, &limit(Some(5), None, None, 2), c, t0, 20), 11);
    }

    #[test]
    fn no_limits_tracks_nothing() {
        let l = RateLimiters::default();
        let lim = limit(None, None, None, 5);
        assert!(matches!(
            l.check("z", &lim, ip("192.0.2.1"), Instant::now()),
            Ok(None)
        ));
        assert!(l.is_empty());
    }

    #[test]
    fn sweep_drops_recovered_clients_only() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(Some(1), None, None, 5);
        let t0 = Instant::now();
        for i in 0..100u8 {
            let _ = l.check(z, &lim, IpAddr::from([192, 0, 2, i]), t0);
        }
        assert_eq!(l.len(), 100);
        // One request each: their buckets are full again after one interval.
        l.sweep(t0 + ms(999));
        assert_eq!(l.len(), 100);
        l.sweep(t0 + Duration::from_secs(1));
        assert!(l.is_empty());
    }

    #[test]
    fn automatic_sweep_bounds_memory_over_time() {
        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(Some(10), None, None, 1);
        let t0 = Instant::now();
        // A scan: 20 000 addresses, one request each, 2 000 per second for 10 s.
        let mut peak = 0;
        for i in 0..20_000u32 {
            let at = t0 + ms(u64::from(i / 2));
            let client = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            assert!(l.check(z, &lim, client, at).is_ok());
            if i % 1000 == 0 {
                peak = peak.max(l.len());
            }
        }
        // Each entry lives 100 ms, sweeps run every SWEEP_INTERVAL per shard: at most about
        // (SWEEP_INTERVAL + 100 ms) * 2000/s entries, not all 20 000.
        assert!(peak <= 12_000, "{peak}");
        l.sweep(t0 + Duration::from_secs(60));
        assert!(l.is_empty());
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let capacity = 16 * 8;
        let l = RateLimiters::with_capacity(capacity);
        let z = "z";
        // One per hour: nobody recovers during the test.
        let lim = limit(None, Some(1), None, 1);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let client = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            assert!(l.check(z, &lim, client, t0).is_ok(), "{i}");
            assert!(l.len() <= capacity);
        }
    }

    #[test]
    fn full_of_in_flight_clients_fails_open() {
        let l = RateLimiters::with_capacity(16);
        let z = "z";
        let lim = limit(None, None, Some(1), 1);
        let t0 = Instant::now();
        let mut guards = Vec::new();
        for i in 0..200u32 {
            let client = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            if let Ok(Some(g)) = l.check(z, &lim, client, t0) {
                guards.push(g);
            }
        }
        assert!(l.len() <= 16);
        assert!(guards.len() <= 16);
        drop(guards);
        l.sweep(t0);
        assert!(l.is_empty());
    }

    #[test]
    fn shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateLimiters>();
        assert_send_sync::<ConnectionGuard>();

        let l = RateLimiters::default();
        let z = "z";
        let lim = limit(Some(1), None, None, 99);
        let t0 = Instant::now();
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| passes(&l, z, &lim, ip("192.0.2.1"), t0, 50)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(passed, 100);
    }
}
