"""Keep freed activation memory in the process instead of handing it back to the kernel.

With its defaults glibc hands freed memory back to the kernel (munmap of blocks above its dynamic mmap threshold,
trimming of the heap top above its trim threshold), so a training step's 8-16 MiB activations are zero-filled afresh,
page by page: 30k-130k page faults a step on this project's CPU, none once tuned (benchmarks/results/README.md).
Setting the thresholds by hand (what MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ do at start-up) keeps those
blocks on the heap for reuse. It changes no numbers, only where memory comes from; the process keeps its peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit on 64-bit: blocks below it come from the heap
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: trim the heap top only above 2 GiB of free memory
TOP_PAD = 256 * 1024 * 1024  # grow the heap in large steps
OPT_OUT = "EDGESSL_DEFAULT_MALLOC"  # set to 1 to keep glibc's defaults


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for training; returns whether it was applied (False off glibc or when opted out)."""
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT) == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(ctypes.c_int(key), ctypes.c_int(value)) == 1 for key, value in settings)
