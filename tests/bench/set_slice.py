#!/usr/bin/env python3
"""Sets the fair-scheduling time slice of every thread of a process from outside, keeping each
thread's nice value: `set_slice.py PID NANOSECONDS` (0: the kernel's default). jemalloc's
background thread is left alone. For protocols.sh's BENCH_SLICE_AB, which compares Sluice with
the 0.1 ms slice its threads ask for (dataplane/src/sched.rs) against the default, same binary.
Needs root (or CAP_SYS_NICE) for another process's threads; Linux 6.12+, x86_64."""
import os
import sys

from wakeup_latency import SCHED_OTHER, set_attr

pid, slice_ns = int(sys.argv[1]), int(sys.argv[2])
for tid in os.listdir(f"/proc/{pid}/task"):
    if open(f"/proc/{pid}/task/{tid}/comm").read().startswith("jemalloc"):
        continue
    # Field 19 of stat is the nice value; the command name before it may hold spaces.
    nice = int(open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[16])
    set_attr(SCHED_OTHER, nice, slice_ns, int(tid))
