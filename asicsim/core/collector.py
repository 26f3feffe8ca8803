"""Python's cyclic garbage collector paused around work that builds many long-lived objects without reference
cycles (a run's loop and summary, a command's imports). Imports nothing heavy: the CLI uses it before numba loads."""

from __future__ import annotations

import contextlib
import gc

__all__ = ["collection_paused"]


@contextlib.contextmanager
def collection_paused():
    """Python's cyclic garbage collector paused for the block (restored after, nesting allowed): a run's loop and its
    summary build and read ~10^5 long-lived objects without reference cycles, which every collection walks again
    (so do a command's imports, ~0.03 s of its start). On the way out, what the block built joins the oldest
    generation unwalked (`gc.freeze` then `gc.unfreeze`: a move of lists, nothing stays frozen), or the first
    allocation after it would walk all of it as young objects (~0.1 s after an hour's replay); later full collections
    still see it. A collector paused before the block stays paused."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
