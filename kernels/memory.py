"""Time to move bytes through a memory or link: a fixed latency plus bytes over a bandwidth."""

from asicsim.kernels.jit import jit

__all__ = ["transfer_time_s"]


@jit
def transfer_time_s(nbytes, bytes_per_s, latency_s):
    """Seconds to move `nbytes` at `bytes_per_s` after `latency_s`; nothing to move costs nothing."""
    if nbytes <= 0.0:
        return 0.0
    return latency_s + nbytes / bytes_per_s
