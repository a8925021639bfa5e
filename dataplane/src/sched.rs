//! Scheduling hints for the data plane's threads: the proxy's threads ask the kernel for its
//! shortest time slice, translation threads run 10 nice levels below them.
//!
//! Both are needed on an EEVDF kernel (Linux 6.6 and later). There, niceness sets a task's
//! share of the CPU but not who runs first: a task waking on a core where another runs waits
//! for that one's slice (0.7 ms times 1 + log2 of the CPUs) or the next tick (4 ms at
//! HZ=250), whatever their nice values, unless the waking task has a shorter slice than the
//! running one. Measured on the bench machine (Linux 6.18, HZ=250, no kernel preemption) with
//! a task waking every 0.7 ms on a core where a nice +10 task ran 5 ms bursts, as a
//! translation pass does: the wake-up was late by p99 4.0 ms, p99.9 5.0 ms with default
//! slices; 3.3 / 4.1 ms with a 0.1 ms slice on the busy task only; 0.16-0.21 / 0.37-0.91 ms
//! with a 0.1 ms slice on the waking task only; 0.16 / 2.2-3.2 ms with both (equal slices let
//! neither preempt the other). `SCHED_IDLE` for translation also gave 0.16 ms, but would
//! starve it on a saturated proxy, where niceness leaves it a tenth of the core. Rerun:
//! `python3 tests/bench/wakeup_latency.py`.
//!
//! Custom slices came with Linux 6.12; older kernels ignore the field. Neither hint needs
//! privilege. A refusal (a seccomp profile without `sched_setattr`) only costs latency, and
//! translation then falls back to `setpriority`.

use std::time::Duration;

/// The slice the proxy's threads ask for: the kernel's smallest custom slice.
pub const LATENCY_SLICE: Duration = Duration::from_micros(100);

/// Gives the calling thread the shortest time slice, keeping its nice value, so it preempts
/// busier threads of longer slices (translation) as soon as it wakes. For every thread of the
/// proxy's runtime (`on_thread_start`) and the thread that drives it.
pub fn prefer_latency() {
    #[cfg(target_os = "linux")]
    if let Err(error) = set_fair(nice(), LATENCY_SLICE) {
        tracing::debug!(%error, "could not shorten the thread's time slice");
    }
}

/// Lowers the calling thread by 10 nice levels, with the default slice (it may have come from
/// a runtime thread that asked for a short one), once per thread. For the blocking-pool
/// threads translation runs on: the proxy's threads preempt them when they wake, and a config
/// change costs request latency only what translation leaves idle.
pub fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        thread_local! {
            static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if !LOWERED.replace(true) {
            let lowered = (nice() + 10).min(19);
            let result = set_fair(lowered, Duration::ZERO).or_else(|_| {
                // SAFETY: setpriority on this thread's own id writes no memory of ours.
                let tid = unsafe { libc::gettid() } as libc::id_t;
                match unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, lowered) } {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
            if let Err(error) = result {
                tracing::debug!(%error, "could not lower the translation thread's priority");
            }
        }
    }
}

/// The calling thread's nice value.
#[cfg(target_os = "linux")]
fn nice() -> i32 {
    // SAFETY: getpriority reads this thread's scheduling priority only.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

/// Sets the calling thread to `SCHED_OTHER` with `nice` and a custom `slice` (zero: the
/// kernel's default).
#[cfg(target_os = "linux")]
fn set_fair(nice: i32, slice: Duration) -> std::io::Result<()> {
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: slice.as_nanos() as u64,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: sched_setattr on this thread only reads `attr`, which outlives the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            libc::gettid(),
            &attr as *const libc::sched_attr,
            0u32,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's (nice, slice in ns) as the kernel reports them.
    fn current() -> (i32, u64) {
        // SAFETY: sched_getattr writes at most `size` bytes into `attr`, which is that big.
        let slice = unsafe {
            let mut attr: libc::sched_attr = std::mem::zeroed();
            let size = std::mem::size_of::<libc::sched_attr>() as u32;
            let got = libc::syscall(
                libc::SYS_sched_getattr,
                libc::gettid(),
                &mut attr as *mut libc::sched_attr,
                size,
                0u32,
            );
            assert_eq!(got, 0, "sched_getattr: {}", std::io::Error::last_os_error());
            attr.sched_runtime
        };
        (nice(), slice)
    }

    /// Whether the running kernel's release is at least `major.minor`.
    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
    }

    #[test]
    fn proxy_threads_get_short_slices_and_translation_threads_lower_priority() {
        // Fresh threads: the test harness's may have been changed by another test.
        let (before, proxy, translation) = std::thread::spawn(|| {
            let before = current();
            prefer_latency();
            let proxy = current();
            // A blocking-pool thread: started by the runtime (short slice), then translating.
            yield_to_requests();
            (before, proxy, current())
        })
        .join()
        .expect("thread");
        let short = LATENCY_SLICE.as_nanos() as u64;
        assert_eq!(proxy.0, before.0, "the proxy's thread keeps its nice value");
        assert_eq!(
            translation.0,
            (before.0 + 10).min(19),
            "translation: niced by 10"
        );
        // Custom slices for fair tasks came with Linux 6.12; older kernels report none.
        if kernel_at_least(6, 12) {
            assert_ne!(before.1, short, "a thread starts with the default slice");
            assert_eq!(proxy.1, short, "the proxy's thread: the shortest slice");
            assert_eq!(
                translation.1, before.1,
                "translation: the default slice again"
            );
        }
    }
}
