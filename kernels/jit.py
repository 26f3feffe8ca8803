"""The one place numba decoration is configured: nopython, nogil, and numba's on-disk cache, so only the first
process after an install compiles (numba compiles each kernel lazily, on its first call with new types).

Where no cache directory is writable (numba finds none beside the package nor in NUMBA_CACHE_DIR or the user's
cache), kernels compile in memory every process instead: slower start, same results."""

import numba
from numba.core import event, types

__all__ = ["jit", "on_first_compile"]


def jit(fn):
    """Compile `fn` in nopython mode, cached on disk where that is possible.

    A call from one kernel to another passes constant arguments as literal types (`Literal[int](0)`), and numba
    would compile the callee once more per such literal pattern (gemm_cycles had 6 specialisations, a helper
    17): calls between kernels are typed with plain types instead, so each kernel compiles once per plain
    signature (the values, and so the results, are the same)."""
    try:
        _compiled = numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        _compiled = numba.njit(nogil=True)(fn)
    _plain_calls(_compiled)
    return _compiled


def _plain_calls(dispatcher) -> None:
    """Type calls from other kernels with their arguments' plain (non-literal) types."""
    template = getattr(dispatcher, "get_call_template", None)
    if template is None:  # NUMBA_DISABLE_JIT=1: the Python function itself
        return

    def get_call_template(args, kws):
        return template(tuple(types.unliteral(a) for a in args), {k: types.unliteral(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template


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
