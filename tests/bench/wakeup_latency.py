#!/usr/bin/env python3
"""How late a latency-sensitive task runs after waking, on a core it shares with a lower-priority
CPU hog (a translation pass), under each scheduling setup the data plane could use.

    python3 tests/bench/wakeup_latency.py [MODE ...]     (Linux, x86_64; no privilege needed)

A nice-0 "proxy" process sleeps 0.7 ms at a time and records how late each wake-up runs; a
"translation" process runs 5 ms bursts with 15 ms pauses; both are pinned to CPU 1 (CPU 0 if
there is one CPU). Modes (default: all):

  default     proxy: default slice        translation: nice +10, default slice
  hog-short   proxy: default slice        translation: nice +10, 0.1 ms slice
  proxy-short proxy: 0.1 ms slice         translation: nice +10, default slice  (what sluice does)
  both-short  proxy: 0.1 ms slice         translation: nice +10, 0.1 ms slice
  hog-idle    proxy: default slice        translation: SCHED_IDLE
  no-nice     proxy: default slice        translation: nice 0, default slice

Custom slices (sched_setattr's sched_runtime for SCHED_OTHER) need Linux 6.12; older kernels
ignore them. See dataplane/src/sched.rs for what the numbers decided.
"""
import ctypes
import os
import struct
import sys
import time

LIBC = ctypes.CDLL(None, use_errno=True)
SYS_SCHED_SETATTR = 314  # x86_64
SCHED_OTHER, SCHED_IDLE = 0, 5
SHORT = 100_000  # ns
MODES = {  # mode: (proxy slice, translation (policy, nice, slice))
    "default": (0, (SCHED_OTHER, 10, 0)),
    "hog-short": (0, (SCHED_OTHER, 10, SHORT)),
    "proxy-short": (SHORT, (SCHED_OTHER, 10, 0)),
    "both-short": (SHORT, (SCHED_OTHER, 10, SHORT)),
    "hog-idle": (0, (SCHED_IDLE, 0, 0)),
    "no-nice": (0, (SCHED_OTHER, 0, 0)),
}


def set_attr(policy, nice, slice_ns, tid=0):
    """sched_setattr on thread `tid` (0: the caller); slice_ns 0 is the kernel's default."""
    attr = ctypes.create_string_buffer(struct.pack("IIQiIQQQ", 48, policy, 0, nice, 0, slice_ns, 0, 0))
    if LIBC.syscall(SYS_SCHED_SETATTR, tid, attr, 0) != 0:
        raise OSError(ctypes.get_errno(), f"sched_setattr on thread {tid}")


def run(mode, seconds=10.0):
    proxy_slice, hog = MODES[mode]
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    pid = os.fork()
    if pid == 0:
        set_attr(*hog)
        end = time.monotonic() + seconds + 1.5
        while time.monotonic() < end:
            burst = time.monotonic() + 0.005
            while time.monotonic() < burst:
                pass
            time.sleep(0.015)
        os._exit(0)
    time.sleep(0.5)
    set_attr(SCHED_OTHER, 0, proxy_slice)
    late = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter_ns()
        time.sleep(0.0007)
        late.append((time.perf_counter_ns() - t0) / 1000 - 700)
    os.waitpid(pid, 0)
    set_attr(SCHED_OTHER, 0, 0)
    late.sort()
    q = lambda p: late[min(len(late) - 1, int(len(late) * p))]
    print(f"{mode:12} wake-ups {len(late):6}  late by, µs: p50 {q(0.5):6.0f}  p90 {q(0.9):6.0f}  "
          f"p99 {q(0.99):6.0f}  p99.9 {q(0.999):6.0f}  max {late[-1]:6.0f}", flush=True)


if __name__ == "__main__":
    for mode in sys.argv[1:] or list(MODES):
        run(mode)
