"""Time to move bytes through a memory or link: a fixed latency plus bytes over a bandwidth."""

from asicsim.kernels.jit import jit

__all__ = ["transfer_time_s", "copy_time_s"]


@jit
def transfer_time_s(nbytes, bytes_per_s, latency_s):
    """Seconds to move `nbytes` at `bytes_per_s` after `latency_s`; nothing to move costs nothing."""
    if nbytes <= 0.0:
        return 0.0
    return latency_s + nbytes / bytes_per_s


@jit
def copy_time_s(array_bytes, bytes_per_s, latency_s):
    """Seconds for a device-to-device copy of `array_bytes` (it reads and writes them: 2x the traffic).

    The STREAM-copy convention: reported bandwidth = 2 x array_bytes / time.
    """
    return transfer_time_s(2.0 * array_bytes, bytes_per_s, latency_s)
