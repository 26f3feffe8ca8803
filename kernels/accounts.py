"""A serial step's ops summed in one pass: each op's StepTiming fields as if it ran alone (the engine's per-op
account, `asicsim.core.engine._op_account`), added in op order from zero, from rows of its cost in cycles (what a
device's `cost_rows` gives, `COST_COLUMNS`). The same floats in the same order as the engine's own sums."""

import numpy as np

from asicsim.kernels.jit import jit

__all__ = ["COST_COLUMNS", "ACCOUNT_WIDTH", "summed_accounts"]

# A cost row: OpCost's fields in its order, hbm_bytes always a number (a device resolves None to Op.memory_bytes).
COST_COLUMNS = ("compute_cycles", "memory_cycles", "weight_cycles", "link_cycles", "fixed_s", "ideal_compute_cycles",
                "stall_cycles", "hbm_bytes", "fallback_s", "energy_j")
ACCOUNT_WIDTH = 16  # StepTiming's fields: time, four busy/fixed, ideal, stall, wait, FLOPs, bytes, five kinds, joules


@jit
def summed_accounts(rows, compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, buckets, flops):
    """StepTiming's fields summed over ops (rows of `COST_COLUMNS`, a bucket and FLOPs each): per op, its cycles in
    seconds (weights at the memory clock), its time alone (fixed overhead, then the slowest unit), each unit's busy
    seconds, its compute's wait on memory, its FLOPs and HBM bytes, and its time alone in its kind's field (bucket
    0 GEMM, 1 attention, 2 collective, 3 other, 4 fallback; 4 whenever it spent time on the fallback unit)."""
    out = np.zeros(16)
    for i in range(rows.shape[0]):
        compute_s = rows[i, 0] * compute_s_per_cycle
        memory_s = rows[i, 1] * memory_s_per_cycle + rows[i, 2] * memory_s_per_cycle
        link_s = rows[i, 3] * link_s_per_cycle
        fixed_s = rows[i, 4]
        alone_s = fixed_s + max(compute_s, memory_s, link_s)
        bucket = 4 if rows[i, 8] > 0.0 else buckets[i]
        out[0] += alone_s
        out[1] += compute_s
        out[2] += memory_s
        out[3] += link_s
        out[4] += fixed_s
        out[5] += rows[i, 5] * compute_s_per_cycle
        out[6] += rows[i, 6] * compute_s_per_cycle
        out[7] += max(alone_s - fixed_s - compute_s, 0.0) if compute_s > 0.0 else 0.0
        out[8] += flops[i]
        out[9] += rows[i, 7]
        for b in range(5):
            out[10 + b] += alone_s if bucket == b else 0.0
        out[15] += rows[i, 9]
    return out
