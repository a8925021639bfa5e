#!/usr/bin/env python3
"""Sets the fair-scheduling time slice of every thread of a process from outside, keeping each
thread's nice value: `set_slice.py PID NANOSECONDS` (0: the kernel's default). jemalloc's
background thread is left alone. For protocols.sh's BENCH_SLICE_AB, which compares Sluice with
the 0.1 ms slice its threads ask for (dataplane/src/sched.rs) against the default, same binary.
Needs root (or CAP_SYS_NICE) for another process's threads; Linux 6.12+, x86_64."""
import ctypes
import os
import struct
import sys

SYS_SCHED_SETATTR = 314  # x86_64
LIBC = ctypes.CDLL(None, use_errno=True)
pid, slice_ns = int(sys.argv[1]), int(sys.argv[2])
for tid in os.listdir(f"/proc/{pid}/task"):
    if open(f"/proc/{pid}/task/{tid}/comm").read().startswith("jemalloc"):
        continue
    # Field 19 of stat is the nice value; the command name before it may hold spaces.
    nice = int(open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[16])
    attr = ctypes.create_string_buffer(struct.pack("IIQiIQQQ", 48, 0, 0, nice, 0, slice_ns, 0, 0))
    if LIBC.syscall(SYS_SCHED_SETATTR, int(tid), attr, 0) != 0:
        sys.exit(f"sched_setattr on thread {tid}: errno {ctypes.get_errno()}")
