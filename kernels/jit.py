"""The one place numba decoration is configured: nopython, nogil, and numba's on-disk cache, so only the first
process after an install compiles (numba compiles each kernel lazily, on its first call with new types).

Where no cache directory is writable (numba finds none beside the package nor in NUMBA_CACHE_DIR or the user's
cache), kernels compile in memory every process instead: slower start, same results."""

import numba
from numba.core import event

__all__ = ["jit", "on_first_compile"]


def jit(fn):
    """Compile `fn` in nopython mode, cached on disk where that is possible."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(fn)


class _FirstCompile(event.Listener):
    """Calls its callback once, at the start of the first real compilation (not a load from the disk cache)."""

    def __init__(self, callback) -> None:
        self.callback = callback

    def on_start(self, ev) -> None:
        if self.callback is not None:
            callback, self.callback = self.callback, None
            callback()

    def on_end(self, ev) -> None:
        pass


def on_first_compile(callback) -> None:
    """Call `callback()` when numba first compiles a function in this process (never when every kernel the
    process runs loads from the on-disk cache, nor with NUMBA_DISABLE_JIT=1)."""
    event.register("numba:compile", _FirstCompile(callback))
