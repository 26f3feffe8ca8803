"""A serial step's ops summed in one pass: each op's StepTiming fields as if it ran alone (the engine's per-op
account, `asicsim.core.engine._op_account`), added in op order from zero, from rows of its cost in cycles (what a
device's `cost_rows` gives, `COST_COLUMNS`). The same floats in the same order as the engine's own sums. And one op's
account added to a step's other sums (`op_step_fields`: a decode step whose one per-sequence op is priced anew)."""

import math

import numpy as np

from asicsim.kernels.jit import jit

__all__ = ["COST_COLUMNS", "ACCOUNT_WIDTH", "summed_accounts", "part_sums", "op_step_fields"]

# A cost row: OpCost's fields in its order, hbm_bytes always a number (a device resolves None to Op.memory_bytes).
COST_COLUMNS = ("compute_cycles", "memory_cycles", "weight_cycles", "link_cycles", "fixed_s", "ideal_compute_cycles",
                "stall_cycles", "hbm_bytes", "fallback_s", "energy_j")
ACCOUNT_WIDTH = 16  # StepTiming's fields: time, four busy/fixed, ideal, stall, wait, FLOPs, bytes, five kinds, joules


@jit
def _add_account(out, compute_cycles, memory_cycles, weight_cycles, link_cycles, fixed_s, ideal_compute_cycles,
                 stall_cycles, hbm_bytes, fallback_s, energy_j, compute_s_per_cycle, memory_s_per_cycle,
                 link_s_per_cycle, bucket, flops, count):
    """out += count x one op's StepTiming fields as if it ran alone (`summed_accounts`), field by field, from its cost
    row's values (`COST_COLUMNS`)."""
    compute_s = compute_cycles * compute_s_per_cycle
    memory_s = memory_cycles * memory_s_per_cycle + weight_cycles * memory_s_per_cycle
    link_s = link_cycles * link_s_per_cycle
    alone_s = fixed_s + max(compute_s, memory_s, link_s)
    if fallback_s > 0.0:
        bucket = 4
    out[0] += count * alone_s
    out[1] += count * compute_s
    out[2] += count * memory_s
    out[3] += count * link_s
    out[4] += count * fixed_s
    out[5] += count * (ideal_compute_cycles * compute_s_per_cycle)
    out[6] += count * (stall_cycles * compute_s_per_cycle)
    out[7] += count * (max(alone_s - fixed_s - compute_s, 0.0) if compute_s > 0.0 else 0.0)
    out[8] += count * flops
    out[9] += count * hbm_bytes
    for b in range(5):
        out[10 + b] += count * (alone_s if bucket == b else 0.0)
    out[15] += count * energy_j


@jit
def summed_accounts(rows, compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, buckets, flops):
    """StepTiming's fields summed over ops (rows of `COST_COLUMNS`, a bucket and FLOPs each): per op, its cycles in
    seconds (weights at the memory clock), its time alone (fixed overhead, then the slowest unit), each unit's busy
    seconds, its compute's wait on memory, its FLOPs and HBM bytes, and its time alone in its kind's field (bucket
    0 GEMM, 1 attention, 2 collective, 3 other, 4 fallback; 4 whenever it spent time on the fallback unit)."""
    out = np.zeros(16)
    for i in range(rows.shape[0]):
        _add_account(out, rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3], rows[i, 4], rows[i, 5], rows[i, 6],
                     rows[i, 7], rows[i, 8], rows[i, 9], compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle,
                     buckets[i], flops[i], 1.0)
    return out


@jit
def part_sums(rows, compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, buckets, flops, pre_count, layers,
              prefetch):
    """A step engine's layer part from its ops' cost rows (its pre ops, then one layer's ops without per-sequence
    arrays): (head, keys, weights_s, serial_s). head: the pre ops' `summed_accounts` plus `layers` x the layer's;
    keys (n, 5): each op's compute, memory, weight, link and fixed seconds; weights_s: the layer's weight seconds x
    `layers`; serial_s: each op's least time in one op stream (fixed, then the longest of compute, link and memory,
    weights included unless `prefetch`ed) summed, the layer's x `layers`. The engine's floats, in its order."""
    pre = summed_accounts(rows[:pre_count], compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle,
                          buckets[:pre_count], flops[:pre_count])
    layer = summed_accounts(rows[pre_count:], compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle,
                            buckets[pre_count:], flops[pre_count:])
    head = np.empty(ACCOUNT_WIDTH)
    for i in range(ACCOUNT_WIDTH):
        head[i] = (0.0 + 1.0 * pre[i]) + layers * layer[i]
    n = rows.shape[0]
    keys = np.empty((n, 5))
    weights_s = 0.0
    serial_pre_s = 0.0
    serial_layer_s = 0.0
    for i in range(n):
        keys[i, 0] = rows[i, 0] * compute_s_per_cycle
        keys[i, 1] = rows[i, 1] * memory_s_per_cycle
        keys[i, 2] = rows[i, 2] * memory_s_per_cycle
        keys[i, 3] = rows[i, 3] * link_s_per_cycle
        keys[i, 4] = rows[i, 4]
        memory_s = keys[i, 1] if prefetch else keys[i, 1] + keys[i, 2]
        busy_s = keys[i, 0] if keys[i, 0] >= keys[i, 3] else keys[i, 3]
        serial_s = keys[i, 4] + (busy_s if busy_s >= memory_s else memory_s)
        if i < pre_count:
            serial_pre_s += serial_s
        else:
            serial_layer_s += serial_s
            weights_s += keys[i, 2]
    return head, keys, layers * weights_s, serial_pre_s + layers * serial_layer_s


@jit
def _rounded(x, bits):
    """x to `bits` significant bits, half to even (the engine's `_round`)."""
    if x == 0.0:
        return 0.0
    mant, exp = math.frexp(x)
    scale = float(1 << bits)
    return math.ldexp(np.rint(mant * scale) / scale, exp)


@jit
def op_step_fields(row, compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, bucket, flops, head, count, tail,
                   key_bits):
    """A step's StepTiming fields with one op priced anew, and that op's key: (21,) floats, the first 16 head + count
    x the op's account (`summed_accounts` of its one cost row `row`, an array or a tuple of its 10 values, with a bucket
    and FLOPs) + tail, added in that order
    (time and memory wait as summed: the caller puts the schedule's in), the last 5 the op's compute, memory, weight,
    link and fixed seconds rounded to `key_bits` significant bits (the engine's schedule key for it)."""
    out = np.empty(21)
    for f in range(16):
        out[f] = head[f]
    _add_account(out, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                 compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, bucket, flops, count)
    for f in range(16):
        out[f] += tail[f]
    out[16] = _rounded(row[0] * compute_s_per_cycle, key_bits)
    out[17] = _rounded(row[1] * memory_s_per_cycle, key_bits)
    out[18] = _rounded(row[2] * memory_s_per_cycle, key_bits)
    out[19] = _rounded(row[3] * link_s_per_cycle, key_bits)
    out[20] = _rounded(row[4], key_bits)
    return out
