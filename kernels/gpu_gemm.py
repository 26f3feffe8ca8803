"""GEMM tensor time on a GPU: output tiles spread over the SMs in waves.

A (m x k) @ (k x n) GEMM is cut into tile_m x tile_n output tiles (optionally split along k when there
are too few tiles to fill the SMs). Tiles run in waves of `sm_count`; a wave takes one tile's FLOPs at
one SM's share of the tensor peak times an asymptotic efficiency. Like a cuBLAS heuristic, the faster of
a wide and a narrow tile (and of the allowed split-k factors) is chosen. The kernel's fixed latency and
its HBM traffic are priced by gpusim (gpusim.device.GpuDevice._matmul), not here.
"""

import math

from asicsim.kernels.jit import jit

__all__ = ["gemm_config_time_s", "gemm_compute"]


@jit
def gemm_config_time_s(m, n, k, tile_m, tile_n, split_k, sm_count, sm_flops_per_s, wave_quantization):
    """Seconds of tensor work for one tile shape and split-k factor: waves x one tile's time.

    `sm_flops_per_s` is one SM's achievable rate. Without wave quantization the waves are fractional
    (perfect load balance, e.g. stream-K).
    """
    tiles = math.ceil(m / tile_m) * math.ceil(n / tile_n) * split_k
    tile_s = 2.0 * tile_m * tile_n * math.ceil(k / split_k) / sm_flops_per_s
    if wave_quantization:
        waves = float(math.ceil(tiles / sm_count))
    else:
        waves = tiles / sm_count
    return waves * tile_s


@jit
def gemm_compute(m, n, k, sm_count, peak_flops_per_s, efficiency, tile_m, tile_n_wide, tile_n_narrow,
                 narrow_efficiency, split_k_min_depth, wave_quantization):
    """Fastest (seconds, tile_n, split_k, waves) over the wide/narrow tile and the allowed split-k factors.

    The narrow tile runs at `narrow_efficiency` of the wide tile's rate (less operand reuse). Split-k is
    tried only while the tiles do not fill the SMs, each k slice at least `split_k_min_depth` deep.
    """
    best_s = math.inf
    best_tile_n = tile_n_wide
    best_split = 1
    best_waves = 0.0
    if m <= 0 or n <= 0 or k <= 0:
        return 0.0, best_tile_n, best_split, best_waves
    for choice in range(2):
        tile_n = tile_n_wide if choice == 0 else tile_n_narrow
        rate = efficiency if choice == 0 else efficiency * narrow_efficiency
        sm_flops_per_s = peak_flops_per_s * rate / sm_count
        tiles = math.ceil(m / tile_m) * math.ceil(n / tile_n)
        max_split = max(1, min(sm_count // tiles, k // split_k_min_depth))
        for split_k in range(1, max_split + 1):
            t = gemm_config_time_s(m, n, k, tile_m, tile_n, split_k, sm_count, sm_flops_per_s, wave_quantization)
            if t < best_s:
                best_s = t
                best_tile_n = tile_n
                best_split = split_k
                best_waves = tiles * split_k / sm_count
                if wave_quantization:
                    best_waves = float(math.ceil(best_waves))
    return best_s, best_tile_n, best_split, best_waves
