"""The C allocator's settings for a long simulation process (Linux with glibc only; elsewhere nothing).

glibc serves a block above its mmap threshold (128 KiB at start) with its own mapping, returned to the system when
freed, and raises the threshold to the size of each such block freed. A serving run frees numpy temporaries of
several MB all the time, so the threshold climbs and the step log's growing field arrays and the engine's
memos end up interleaved in the heap, whose holes are never returned: about 35 MB of an hour's peak on 8 x Sohu.
Fixing the threshold at its start value keeps large arrays in their own mappings (M_MMAP_THRESHOLD; setting it
also turns off the dynamic raise)."""

from __future__ import annotations

import sys

M_MMAP_THRESHOLD = -3  # glibc malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default start value


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD_BYTES; True if set (False off glibc, or if it refused)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return False
