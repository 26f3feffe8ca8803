"""The one place numba decoration is configured: nopython, nogil, and numba's on-disk cache, so only the first
process after an install compiles (numba compiles each kernel lazily, on its first call with new types).

Where no cache directory is writable (numba finds none beside the package nor in NUMBA_CACHE_DIR or the user's
cache), kernels compile in memory every process instead: slower start, same results.

After `interpret()` (called before the kernel modules are imported) kernels are the plain Python functions and
numba is never imported: importing it and loading its cached kernels costs a process ~0.5 s, more than a short
command's whole work interpreted (`asicsim.commands._coldstart`). numba's own NUMBA_DISABLE_JIT=1 gives the same
plain functions with numba imported. The results are the same either way (CI runs the test suite both ways)."""

__all__ = ["jit", "on_first_compile", "interpret", "interpreted", "compiled"]

_INTERPRET = False


def interpret() -> None:
    """Kernels decorated from now on stay plain Python (call before importing the kernel modules)."""
    global _INTERPRET
    _INTERPRET = True


def interpreted() -> bool:
    """Whether `interpret()` was called: kernels decorated now stay plain Python and numba is not imported."""
    return _INTERPRET


def compiled() -> bool:
    """Whether kernels run compiled: not `interpret()`ed and numba's DISABLE_JIT off. A caller takes a path made of a
    few large kernels only then (`StepRunner.mixed_step`, `StepRunner.decode_run`, `AsicDevice.cost_rows`): run as
    plain Python, such a kernel recomputes what the Python path around it memoises (schedules, GEMM splits), so a
    short interpreted command would be slower on it. Both paths give the same results."""
    if _INTERPRET:
        return False
    import numba

    return not numba.config.DISABLE_JIT


def jit(fn):
    """Compile `fn` in nopython mode, cached on disk where that is possible; `fn` itself when interpreted.

    A call from one kernel to another passes constant arguments as literal types (`Literal[int](0)`), and numba
    would compile the callee once more per such literal pattern (gemm_cycles had 6 specialisations, a helper
    17): calls between kernels are typed with plain types instead, so each kernel compiles once per plain
    signature (the values, and so the results, are the same)."""
    if interpreted():
        return fn
    import numba

    try:
        _compiled = numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        _compiled = numba.njit(nogil=True)(fn)
    _plain_calls(_compiled)
    return _compiled


def _plain_calls(dispatcher) -> None:
    """Type calls from other kernels with their arguments' plain (non-literal) types."""
    template = getattr(dispatcher, "get_call_template", None)
    if template is None:  # numba's own DISABLE_JIT: the Python function itself
        return
    from numba.core import types

    def get_call_template(args, kws):
        return template(tuple(types.unliteral(a) for a in args), {k: types.unliteral(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template


def on_first_compile(callback) -> None:
    """Call `callback()` when numba first compiles a function in this process (never when every kernel the
    process runs loads from the on-disk cache, nor when kernels are interpreted: numba is then not imported)."""
    if interpreted():
        return
    from numba.core import event

    class _FirstCompile(event.Listener):
        """Calls the callback once, at the start of the first real compilation (not a load from the cache)."""

        def __init__(self) -> None:
            self.pending = callback

        def on_start(self, ev) -> None:
            if self.pending is not None:
                pending, self.pending = self.pending, None
                pending()

        def on_end(self, ev) -> None:
            pass

    event.register("numba:compile", _FirstCompile())
