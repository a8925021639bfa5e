//! A fast per-thread random number for load-balancing decisions (canary weights, two random
//! choices): not cryptographic, seeded per thread from the OS-keyed `RandomState`.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

thread_local! {
    static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
}

/// A number in `0..n` (0 when `n` is 0).
pub fn below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    STATE.with(|state| {
        // xorshift64*
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    })
}

#[cfg(test)]
mod tests {
    use super::below;

    #[test]
    fn stays_in_range_and_spreads() {
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let n = below(10);
            assert!(n < 10);
            seen[n as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        assert_eq!(below(0), 0);
    }
}
