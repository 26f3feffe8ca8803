"""Slow, plain-Python twins of the GPU-side kernels (kernels/gpu_gemm, attention, memory, collectives).

Written to be obviously correct rather than fast: explicit enumeration of tiles, query positions and
candidate configurations, and numpy.interp on log axes for the bus-bandwidth curve.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "transfer_time_s",
    "ring_allreduce_time_s", "interp_busbw_bytes_per_s", "curve_allreduce_time_s",
    "gemm_config_time_s", "gemm_compute",
    "attention_flops", "kv_cache_bytes", "prefill_attention_compute_s",
]


# --- memory ---
def transfer_time_s(nbytes, bytes_per_s, latency_s):
    return 0.0 if nbytes <= 0 else latency_s + nbytes / bytes_per_s


# --- collectives ---
def ring_allreduce_time_s(size_bytes, n, alpha_s, busbw):
    if n <= 1 or size_bytes <= 0:
        return 0.0
    # reduce-scatter then all-gather: n-1 steps each, each step sends size/n bytes at algbw
    steps = 2 * (n - 1)
    return steps * alpha_s + steps * (size_bytes / n) / busbw


def interp_busbw_bytes_per_s(size_bytes, sizes, busbw):
    sizes = np.asarray(sizes, dtype=float)
    busbw = np.asarray(busbw, dtype=float)
    if size_bytes <= sizes[0]:
        first_time = sizes[0] / busbw[0]  # time per byte-factor at the smallest point stays constant
        return size_bytes / first_time
    if size_bytes >= sizes[-1]:
        return float(busbw[-1])
    return float(np.exp(np.interp(np.log(size_bytes), np.log(sizes), np.log(busbw))))


def curve_allreduce_time_s(size_bytes, n, sizes, busbw, max_busbw=float("inf")):
    if n <= 1 or size_bytes <= 0:
        return 0.0
    return size_bytes * 2 * (n - 1) / n / min(interp_busbw_bytes_per_s(size_bytes, sizes, busbw), max_busbw)


# --- GEMM ---
def gemm_config_time_s(m, n, k, tile_m, tile_n, split_k, sm_count, sm_flops_per_s, wave_quantization):
    tiles = -(-m // tile_m) * -(-n // tile_n) * split_k
    depth = -(-k // split_k)
    one_tile_s = 2.0 * tile_m * tile_n * depth / sm_flops_per_s  # two FLOPs per multiply-accumulate
    waves = -(-tiles // sm_count) if wave_quantization else tiles / sm_count
    return waves * one_tile_s


def gemm_compute(m, n, k, sm_count, peak, efficiency, tile_m, tile_n_wide, tile_n_narrow, narrow_efficiency,
                 split_k_min_depth, wave_quantization):
    if m <= 0 or n <= 0 or k <= 0:
        return 0.0, tile_n_wide, 1, 0.0
    candidates = []  # (time, tile_n, split, waves) in the order the kernel tries them
    for tile_n, rate in ((tile_n_wide, efficiency), (tile_n_narrow, efficiency * narrow_efficiency)):
        tiles = math.ceil(m / tile_m) * math.ceil(n / tile_n)
        max_split = max(1, min(sm_count // tiles, k // split_k_min_depth))
        for split in range(1, max_split + 1):
            t = gemm_config_time_s(m, n, k, tile_m, tile_n, split, sm_count, peak * rate / sm_count, wave_quantization)
            waves = tiles * split / sm_count
            candidates.append((t, tile_n, split, float(math.ceil(waves)) if wave_quantization else waves))
    return min(candidates, key=lambda c: c[0])


# --- attention ---
def attention_flops(seq_new, seq_past, q_heads, head_dim, causal):
    pairs = 0
    for new, past in zip(seq_new, seq_past):
        for t in range(int(new)):
            pairs += int(past) + (t + 1 if causal else int(new))
    return 4.0 * q_heads * head_dim * pairs


def causal_entries(seq_new, seq_past):
    entries = 0
    for new, past in zip(seq_new, seq_past):
        entries += sum(int(past) + t + 1 for t in range(int(new)))
    return entries


def kv_cache_bytes(seq_new, seq_past, kv_heads, head_dim, bytes_per_elem):
    return sum((2.0 * kv_heads * head_dim * bytes_per_elem * (int(p) + int(n)) for n, p in zip(seq_new, seq_past)), 0.0)


def prefill_attention_compute_s(seq_new, seq_past, q_heads, head_dim, block_q, block_kv, causal,
                                sm_count, peak, efficiency):
    units = []  # tiles of each (sequence, head, query block) work unit
    for new, past in zip(seq_new, seq_past):
        new, past = int(new), int(past)
        for _head in range(q_heads):
            for start in range(0, new, block_q):
                last_query = min(new, start + block_q) - 1  # 0-based index of the block's last query
                visible = past + (last_query + 1 if causal else new)
                units.append(sum(1 for b in range(0, past + new, block_kv) if b < visible))
    if not units or sum(units) == 0:
        return 0.0
    tile_flops = 4.0 * block_q * block_kv * head_dim
    chip_rate = peak * efficiency
    return max(sum(units) * tile_flops / chip_rate, max(units) * tile_flops / (chip_rate / sm_count))
