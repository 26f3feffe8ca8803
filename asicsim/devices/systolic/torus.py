"""All-reduce on a torus (or mesh) slice: a ring along each dimension of the part of the slice a group occupies.

A group of n chips occupies a sub-slice of the spec's slice (`group_dims`). The all-reduce reduce-scatters along
the first dimension (the whole message), then along the next on the 1/d1 share each chip now holds, and so on,
then all-gathers back in reverse: dimension i moves S / (d1 ... d(i-1)) bytes in a ring of d_i chips, costing
2 (d_i - 1) hop latencies plus S_i x 2 (d_i - 1) / d_i over the bandwidth a chip sends along that dimension.

Bandwidth per dimension: a torus chip has 2 ports per dimension (+ and -); with wraparound a dimension is a
closed ring and its all-reduce runs as two rings in opposite directions, one per port, so a chip sends at
2 ports' worth; an open line (a mesh slice without wraparound, or a dimension of two chips) embeds a ring that
uses each link once in each direction, so a chip sends at one port's worth.
A 1-D group is therefore exactly `kernels.collectives.ring_allreduce_time_s` at its dimension's bandwidth.
"""

from __future__ import annotations

import math

from asicsim.kernels.collectives import ring_allreduce_time_s

__all__ = ["group_dims", "dimension_bandwidth_bytes_per_s", "torus_allreduce_time_s"]


def group_dims(group: int, slice_dims: tuple[int, ...]) -> tuple[int, ...]:
    """Ring lengths of a group of `group` chips placed in the slice: each slice dimension, largest first,
    contributes its largest factor that divides what is left. A group the slice cannot tile this way (not a
    product of such factors) runs as one ring of all its chips."""
    left, dims = group, []
    for size in sorted(slice_dims, reverse=True):
        take = math.gcd(size, left)
        if take > 1:
            dims.append(take)
            left //= take
    return tuple(dims) if left == 1 else (group,)


def dimension_bandwidth_bytes_per_s(ring: int, port_bytes_per_s: float, wraparound: bool) -> float:
    """What one chip sends per second along a dimension of `ring` chips: two ports with wraparound (rings
    both ways), one port on an open line or a two-chip dimension."""
    return port_bytes_per_s * (2.0 if wraparound and ring > 2 else 1.0)


def torus_allreduce_time_s(size_bytes: float, group: int, slice_dims: tuple[int, ...], port_bytes_per_s: float,
                           latency_s: float, wraparound: bool) -> float:
    """Seconds for an all-reduce of `size_bytes` per chip over `group` chips of the slice (module docstring)."""
    if group <= 1 or size_bytes <= 0.0:
        return 0.0
    seconds, share = 0.0, float(size_bytes)
    for ring in group_dims(group, slice_dims):
        bandwidth = dimension_bandwidth_bytes_per_s(ring, port_bytes_per_s, wraparound)
        seconds += ring_allreduce_time_s(share, ring, latency_s, bandwidth)
        share /= ring
    return seconds
