"""All-reduce on a torus (or mesh) slice: a ring along each dimension of the part of the slice a group occupies.

A group of n chips occupies a sub-slice of the spec's slice (`group_rings`). The all-reduce reduce-scatters along
the first ring (the whole message), then along the next on the 1/d1 share each chip now holds, and so on, then
all-gathers back in reverse: ring i moves S / (d1 ... d(i-1)) bytes among d_i chips, costing 2 (d_i - 1) hop
latencies plus S_i x 2 (d_i - 1) / d_i over the bandwidth a chip sends along that ring.

Bandwidth per ring: a torus chip has 2 ports per dimension (+ and -). A ring that spans a whole dimension of a
slice with wraparound is closed, and its all-reduce runs as two rings in opposite directions, one per port: a chip
sends at 2 ports' worth. A ring over part of a dimension (or a mesh dimension, or a dimension of two chips) is an
open line; the ring embedded in it uses each link once in each direction, so a chip sends at one port's worth.
A group in one dimension is therefore exactly `kernels.collectives.ring_allreduce_time_s` at that bandwidth.
"""

from __future__ import annotations

import math

from asicsim.kernels.collectives import ring_allreduce_time_s

__all__ = ["group_rings", "ring_bandwidth_bytes_per_s", "torus_allreduce_time_s"]


def group_rings(group: int, slice_dims: tuple[int, ...], wraparound: bool) -> tuple[tuple[int, bool], ...]:
    """(ring length, closed?) of each dimension a group of `group` chips spans: each slice dimension, largest
    first, contributes its largest factor that divides what is left, closed when it spans the whole dimension of a
    slice with wraparound. A group the slice cannot tile that way runs as one open ring of all its chips."""
    left, rings = group, []
    for size in sorted(slice_dims, reverse=True):
        take = math.gcd(size, left)
        if take > 1:
            rings.append((take, wraparound and take == size))
            left //= take
    return tuple(rings) if left == 1 else ((group, False),)


def ring_bandwidth_bytes_per_s(ring: int, closed: bool, port_bytes_per_s: float) -> float:
    """What one chip sends per second in a ring of `ring` chips: two ports when the ring is closed (both
    directions), one on an open line or between two chips."""
    return port_bytes_per_s * (2.0 if closed and ring > 2 else 1.0)


def torus_allreduce_time_s(size_bytes: float, group: int, slice_dims: tuple[int, ...], port_bytes_per_s: float,
                           latency_s: float, wraparound: bool) -> float:
    """Seconds for an all-reduce of `size_bytes` per chip over `group` chips of the slice (module docstring)."""
    if group <= 1 or size_bytes <= 0.0:
        return 0.0
    seconds, share = 0.0, float(size_bytes)
    for ring, closed in group_rings(group, slice_dims, wraparound):
        seconds += ring_allreduce_time_s(share, ring, latency_s, ring_bandwidth_bytes_per_s(ring, closed, port_bytes_per_s))
        share /= ring
    return seconds
