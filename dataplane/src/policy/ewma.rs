//! ingress-nginx's `load-balance: ewma`: each endpoint's response time as a peak-sensitive
//! exponentially weighted moving average, weighted by its requests in flight; a request picks
//! the better of two endpoints chosen at random ("power of two choices"), so a slow or busy
//! endpoint gets fewer requests without every replica herding onto the fastest one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How fast old observations fade (ingress-nginx's `DECAY_TIME`).
const DECAY: Duration = Duration::from_secs(10);
/// Endpoints not seen for this long are forgotten, bounding the map.
const FORGET_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Stat {
    /// Seconds.
    ewma: f64,
    last: Instant,
    in_flight: u32,
}

/// Shared by every request of a proxy.
#[derive(Debug, Clone, Default)]
pub struct EwmaTable {
    stats: Arc<Mutex<HashMap<SocketAddr, Stat>>>,
}

/// Counts a request in flight until [`EwmaTable::observe`] or drop.
pub struct InFlight {
    table: EwmaTable,
    addr: SocketAddr,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.table.finish(self.addr, None);
        }
    }
}

impl InFlight {
    /// Records the response time (to the response headers) and ends the request.
    pub fn observe(mut self, latency: Duration) {
        self.done = true;
        self.table.finish(self.addr, Some(latency));
    }
}

impl EwmaTable {
    fn score(stat: Option<&Stat>, now: Instant) -> f64 {
        match stat {
            // Unknown endpoints score best, so new ones are tried.
            None => 0.0,
            Some(s) => {
                let ewma = decayed(s.ewma, now.saturating_duration_since(s.last));
                ewma * f64::from(s.in_flight + 1)
            }
        }
    }

    /// The index (into `0..len`) of the better of two candidates picked with `random`
    /// (`random(n)` in `0..n`); `addr(i)` names candidate `i`.
    pub fn pick(
        &self,
        len: usize,
        addr: impl Fn(usize) -> Option<SocketAddr>,
        mut random: impl FnMut(usize) -> usize,
    ) -> usize {
        if len < 2 {
            return 0;
        }
        let a = random(len) % len;
        let mut b = random(len - 1) % (len - 1);
        if b >= a {
            b += 1;
        }
        let Ok(stats) = self.stats.lock() else {
            return a;
        };
        let now = Instant::now();
        let score = |i: usize| Self::score(addr(i).and_then(|x| stats.get(&x)), now);
        if score(b) < score(a) { b } else { a }
    }

    /// Starts a request to `addr`.
    pub fn start(&self, addr: SocketAddr) -> InFlight {
        if let Ok(mut stats) = self.stats.lock() {
            let now = Instant::now();
            let stat = stats.entry(addr).or_insert(Stat {
                ewma: 0.0,
                last: now,
                in_flight: 0,
            });
            stat.in_flight += 1;
            if stats.len() > 4096 {
                stats.retain(|_, s| s.in_flight > 0 || now - s.last < FORGET_AFTER);
            }
        }
        InFlight {
            table: self.clone(),
            addr,
            done: false,
        }
    }

    fn finish(&self, addr: SocketAddr, latency: Option<Duration>) {
        let Ok(mut stats) = self.stats.lock() else {
            return;
        };
        if let Some(stat) = stats.get_mut(&addr) {
            stat.in_flight = stat.in_flight.saturating_sub(1);
            if let Some(latency) = latency {
                let now = Instant::now();
                let rtt = latency.as_secs_f64();
                let old = decayed(stat.ewma, now.saturating_duration_since(stat.last));
                // Peak-sensitive: a slower response is taken at once, a faster one blended in.
                stat.ewma = if rtt > old {
                    rtt
                } else {
                    let w = (-now.saturating_duration_since(stat.last).as_secs_f64()
                        / DECAY.as_secs_f64())
                    .exp();
                    old * w + rtt * (1.0 - w)
                };
                stat.last = now;
            }
        }
    }
}

fn decayed(ewma: f64, elapsed: Duration) -> f64 {
    ewma * (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: usize) -> Option<SocketAddr> {
        format!("10.0.0.{}:80", i + 1).parse().ok()
    }

    #[test]
    fn the_slow_endpoint_loses_the_comparison() {
        let table = EwmaTable::default();
        let (fast, slow) = (addr(0).expect("a"), addr(1).expect("b"));
        table.start(fast).observe(Duration::from_millis(2));
        table.start(slow).observe(Duration::from_millis(200));
        // Whichever order the two are drawn in, the fast one wins.
        for first in 0..2 {
            let mut draws = [first, 0].into_iter();
            let picked = table.pick(2, addr, |_| draws.next().unwrap_or(0));
            assert_eq!(picked, 0, "draw {first}");
        }
    }

    #[test]
    fn requests_in_flight_count_against_an_endpoint() {
        let table = EwmaTable::default();
        let (a, b) = (addr(0).expect("a"), addr(1).expect("b"));
        table.start(a).observe(Duration::from_millis(10));
        table.start(b).observe(Duration::from_millis(12));
        let busy: Vec<InFlight> = (0..5).map(|_| table.start(a)).collect();
        assert_eq!(table.pick(2, addr, |_| 0), 1, "a is busy");
        drop(busy);
        let mut draws = [1, 0].into_iter();
        assert_eq!(
            table.pick(2, addr, |_| draws.next().unwrap_or(0)),
            0,
            "a is free again"
        );
    }

    #[test]
    fn unknown_endpoints_are_tried_and_one_candidate_is_trivial() {
        let table = EwmaTable::default();
        table
            .start(addr(0).expect("a"))
            .observe(Duration::from_millis(5));
        let mut draws = [0, 0].into_iter();
        assert_eq!(table.pick(2, addr, |_| draws.next().unwrap_or(0)), 1);
        assert_eq!(table.pick(1, addr, |_| 0), 0);
    }

    #[test]
    fn old_observations_decay() {
        assert!(decayed(1.0, Duration::from_secs(10)) < 0.4);
        assert!((decayed(1.0, Duration::ZERO) - 1.0).abs() < f64::EPSILON);
    }
}
