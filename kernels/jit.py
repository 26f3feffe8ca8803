"""The one place numba decoration is configured (cache on so a second process starts fast)."""

import numba

__all__ = ["jit"]


def jit(fn):
    """Compile `fn` in nopython mode with on-disk caching."""
    return numba.njit(cache=True, nogil=True)(fn)
