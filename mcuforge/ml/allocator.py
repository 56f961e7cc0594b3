"""Keep freed memory in the process while PyTorch trains on the CPU (glibc's allocator; elsewhere nothing happens).

Every training step allocates and frees the same tens of megabytes of activations. By default glibc serves blocks
above its mmap threshold with fresh mappings, gives the freed top of the heap back to the kernel, and lets the second
torch thread grow an arena of its own that it trims too, so each step page-faults its memory in again: one epoch of
the default pipeline's model took ~10 million minor faults and ~22 s of system time (57-63 s wall on 2 cores). With
one arena, a 32 MB mmap threshold, a 1 GB trim threshold and a 256 MB top pad the same epoch takes ~1.3 million
faults, ~3.5 s of system time and 47-49 s, with the same weights (the allocator does not touch the arithmetic).
The cost: the process keeps up to ~1 GB of freed memory instead of returning it.
"""
from __future__ import annotations

import ctypes
import sys

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20))
_applied = False


def keep_freed_memory() -> None:
    """Apply the settings above once per process; call it before torch starts its threads (the arena limit only
    applies to threads that have not allocated yet)."""
    global _applied
    if _applied or not sys.platform.startswith("linux"):
        return
    _applied = True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    for parameter, value in _SETTINGS:
        mallopt(parameter, value)
