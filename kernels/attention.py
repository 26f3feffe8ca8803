"""Attention cost on a GPU: FLOP and KV-byte counting, and FlashAttention-style prefill compute time.

Per sequence i, `seq_new[i]` query tokens attend to `seq_past[i]` cached tokens plus (causally) the new
ones. Counting helpers are exact and device-independent (two FLOPs per multiply-accumulate; QK^T and PV
are two matmuls; grouped-query attention reads each KV head once for all its query heads). Prefill
timing: work is cut into (sequence, head, query block) units; each computes whole block_q x block_kv
tiles, skipping key blocks wholly above the causal diagonal. Units share the SMs (persistent scheduling),
so time = max(total work / chip rate, largest unit / one SM's rate). Decode attention is memory-bound and
is priced by gpusim from these byte and FLOP counts (gpusim.device.GpuDevice._attention_decode).
"""

import math

from asicsim.kernels.jit import jit

__all__ = [
    "attention_flops",
    "causal_entries",
    "kv_cache_bytes",
    "prefill_attention_compute_s",
]


@jit
def attention_flops(seq_new, seq_past, q_heads, head_dim, causal):
    """Useful FLOPs of QK^T and PV for all sequences (causal: query t sees past + t + 1 keys)."""
    total_pairs = 0.0
    for i in range(seq_new.shape[0]):
        new = float(seq_new[i])
        past = float(seq_past[i])
        if causal:
            total_pairs += new * past + new * (new + 1.0) / 2.0
        else:
            total_pairs += new * (past + new)
    return 4.0 * q_heads * head_dim * total_pairs


@jit
def causal_entries(seq_new, seq_past):
    """Unmasked causal score entries per head, sum of c p + c (c + 1) / 2 over sequences (c new tokens after p
    cached), as an integer: exact where the terms and sums stay below 2^63."""
    total = 0
    for i in range(seq_new.shape[0]):
        c = seq_new[i]
        total += c * seq_past[i] + c * (c + 1) // 2
    return total


@jit
def kv_cache_bytes(seq_new, seq_past, kv_heads, head_dim, bytes_per_elem):
    """Bytes of K and V for every sequence's past + new tokens (each KV head read once, GQA)."""
    tokens = 0.0
    for i in range(seq_new.shape[0]):
        tokens += float(seq_past[i]) + float(seq_new[i])
    return 2.0 * kv_heads * head_dim * bytes_per_elem * tokens


@jit
def prefill_attention_compute_s(seq_new, seq_past, q_heads, head_dim, block_q, block_kv, causal,
                                sm_count, peak_flops_per_s, efficiency):
    """Seconds of tensor work of a FlashAttention-style forward pass over the given chunks.

    Tiles are whole block_q x block_kv blocks (ragged edges padded); with `causal`, a query block skips
    key blocks that lie entirely after its last query.
    """
    chip_rate = peak_flops_per_s * efficiency
    sm_rate = chip_rate / sm_count
    tile_flops = 4.0 * block_q * block_kv * head_dim
    total_tiles = 0.0
    largest_unit_tiles = 0.0
    for i in range(seq_new.shape[0]):
        new = seq_new[i]
        past = seq_past[i]
        q_blocks = math.ceil(new / block_q)
        for j in range(q_blocks):
            last_row = min(new, (j + 1) * block_q)
            keys = past + last_row if causal else past + new
            kv_blocks = float(math.ceil(keys / block_kv))
            total_tiles += kv_blocks
            largest_unit_tiles = max(largest_unit_tiles, kv_blocks)
    if total_tiles == 0.0:
        return 0.0
    total_s = q_heads * total_tiles * tile_flops / chip_rate
    longest_s = largest_unit_tiles * tile_flops / sm_rate
    return max(total_s, longest_s)
