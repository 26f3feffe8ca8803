"""The C allocator's settings for a long simulation process (Linux with glibc only; elsewhere nothing).

glibc serves a block above its mmap threshold (128 KiB at start) with its own mapping, returned to the system when
freed, and raises the threshold to the size of each such block freed. A serving run frees numpy temporaries of
several MB all the time, so the threshold climbs and the step log's growing field arrays and the engine's
memos end up interleaved in the heap, whose holes are never returned: about 35 MB of an hour's peak on 8 x Sohu.
Fixing the threshold at its start value keeps large arrays in their own mappings (M_MMAP_THRESHOLD; setting it
also turns off the dynamic raise).

The heap below the threshold grows by 128 KiB at a time and gives its free top back to the system beyond that: a
replay's objects and mid-sized arrays come and go, and each page given back is faulted in again when used anew.
Padding the heap's top (M_TOP_PAD, HEAP_TOP_PAD_BYTES) keeps it: the Azure hour on 8 x Sohu took ~129,000 page faults
and ~0.35 s of system time, ~91,000 and ~0.25 s padded, for ~9 MB more peak memory."""

from __future__ import annotations

import sys

M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # glibc malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default start value
HEAP_TOP_PAD_BYTES = 64 << 20


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD_BYTES; True if set (False off glibc, or if it refused)."""
    return _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def pad_heap() -> bool:
    """Pad glibc's heap top by HEAP_TOP_PAD_BYTES; True if set (False off glibc, if it refused, or where the user set
    MALLOC_TOP_PAD_, which glibc read at start)."""
    import os

    return "MALLOC_TOP_PAD_" not in os.environ and _mallopt(M_TOP_PAD, HEAP_TOP_PAD_BYTES)


def _mallopt(param: int, value: int) -> bool:
    """glibc's `mallopt(param, value)`; True if it took it, False off Linux or another C library."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(param, value))
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return False
