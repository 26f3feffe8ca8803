"""All-reduce time on a chip group: an alpha-beta ring model and a measured bus-bandwidth curve.

Sizes follow the nccl-tests convention: for an all-reduce of `size_bytes` per rank over n ranks,
bus bandwidth busbw = algbw x 2(n-1)/n, so time = size x 2(n-1)/n / busbw. A measured busbw curve
already contains the latency, so `curve_allreduce_time_s` adds none.
"""

import math

import numpy as np

from asicsim.kernels.jit import jit

__all__ = [
    "ring_allreduce_time_s",
    "interp_busbw_bytes_per_s",
    "curve_allreduce_time_s",
]


@jit
def _bus_factor(n):
    """2(n-1)/n: bytes a rank sends per byte of message in a ring all-reduce (nccl-tests busbw)."""
    return 2.0 * (n - 1) / n


@jit
def ring_allreduce_time_s(size_bytes, n, alpha_s, busbw_bytes_per_s):
    """Ring all-reduce: 2(n-1) steps of latency `alpha_s`, and size x 2(n-1)/n at the bus bandwidth."""
    if n <= 1 or size_bytes <= 0.0:
        return 0.0
    return 2.0 * (n - 1) * alpha_s + size_bytes * _bus_factor(n) / busbw_bytes_per_s


@jit
def interp_busbw_bytes_per_s(size_bytes, sizes_bytes, busbw_bytes_per_s):
    """Bus bandwidth at `size_bytes`, interpolated log-log between measured points (sizes ascending).

    Below the smallest point the time stays at that point's time (latency bound: busbw grows with
    size); above the largest the busbw stays flat (bandwidth bound).
    """
    count = sizes_bytes.shape[0]
    if size_bytes <= sizes_bytes[0]:
        return busbw_bytes_per_s[0] * size_bytes / sizes_bytes[0]
    if size_bytes >= sizes_bytes[count - 1]:
        return busbw_bytes_per_s[count - 1]
    i = np.searchsorted(sizes_bytes, size_bytes) - 1
    x0 = math.log(sizes_bytes[i])
    x1 = math.log(sizes_bytes[i + 1])
    y0 = math.log(busbw_bytes_per_s[i])
    y1 = math.log(busbw_bytes_per_s[i + 1])
    t = (math.log(size_bytes) - x0) / (x1 - x0)
    return math.exp(y0 + t * (y1 - y0))


@jit
def curve_allreduce_time_s(size_bytes, n, sizes_bytes, busbw_bytes_per_s, max_busbw_bytes_per_s=math.inf):
    """All-reduce time from a measured busbw curve (latency included in the measurement).

    `max_busbw_bytes_per_s` caps the curve: a group whose algorithm tops out lower than the measured
    group's (a ring where the curve was measured with NVLink SHARP) is never faster than its own peak.
    """
    if n <= 1 or size_bytes <= 0.0:
        return 0.0
    busbw = min(interp_busbw_bytes_per_s(size_bytes, sizes_bytes, busbw_bytes_per_s), max_busbw_bytes_per_s)
    return size_bytes * _bus_factor(n) / busbw
