"""Twin of kernels/accounts.py: each op's account built as a list of its fields, then the lists summed."""

import math

import numpy as np


def summed_accounts(rows, compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, buckets, flops):
    total = [0.0] * 16
    for row, bucket, op_flops in zip(rows.tolist(), buckets.tolist(), flops.tolist()):
        compute, memory, weight, link, fixed, ideal, stall, hbm, fallback, energy = row
        compute_s = compute * compute_s_per_cycle
        memory_s = memory * memory_s_per_cycle + weight * memory_s_per_cycle
        link_s = link * link_s_per_cycle
        alone = fixed + max(compute_s, memory_s, link_s)
        kinds = [0.0] * 5
        kinds[4 if fallback > 0.0 else bucket] = alone
        wait = max(alone - fixed - compute_s, 0.0) if compute_s > 0.0 else 0.0
        account = [alone, compute_s, memory_s, link_s, fixed, ideal * compute_s_per_cycle, stall * compute_s_per_cycle,
                   wait, op_flops, hbm, *kinds, energy]
        total = [t + a for t, a in zip(total, account)]
    return total


def part_sums(rows, compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, buckets, flops, pre_count, layers,
              prefetch):
    """The engine's earlier Python: the two groups' sums added to a zero account, numpy keys, their serial seconds
    elementwise and Python's sums over lists."""
    head = [0.0] * 16
    for lo, hi, count in ((0, pre_count, 1.0), (pre_count, len(rows), layers)):
        sums = summed_accounts(rows[lo:hi], compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, buckets[lo:hi],
                               flops[lo:hi])
        head = [t + count * v for t, v in zip(head, sums)]
    keys = np.empty((len(rows), 5))
    keys[:, 0] = rows[:, 0] * compute_s_per_cycle
    keys[:, 1] = rows[:, 1] * memory_s_per_cycle
    keys[:, 2] = rows[:, 2] * memory_s_per_cycle
    keys[:, 3] = rows[:, 3] * link_s_per_cycle
    keys[:, 4] = rows[:, 4]
    memory_s = keys[:, 1] if prefetch else keys[:, 1] + keys[:, 2]
    serial = (keys[:, 4] + np.maximum(np.maximum(keys[:, 0], keys[:, 3]), memory_s)).tolist()
    return (head, keys, layers * sum(keys[pre_count:, 2].tolist()),
            sum(serial[:pre_count]) + layers * sum(serial[pre_count:]))


def op_step_fields(row, compute_s_per_cycle, memory_s_per_cycle, link_s_per_cycle, bucket, flops, head, count, tail,
                   key_bits):
    """The engine's own arithmetic: the op's account (`summed_accounts` of its one row), head + count x it + tail per
    field, then its seconds rounded as `engine._round` rounds them."""
    account = summed_accounts(np.asarray(row, dtype=np.float64).reshape(1, -1), compute_s_per_cycle,
                              memory_s_per_cycle, link_s_per_cycle, np.array([bucket]), np.array([flops]))
    total = [h + count * v + t for h, v, t in zip(head, account, tail)]
    compute, memory, weight, link, fixed = (float(x) for x in row[:5])

    def rounded(x):
        if x == 0.0:
            return 0.0
        mant, exp = math.frexp(x)
        return math.ldexp(round(mant * (1 << key_bits)) / (1 << key_bits), exp)

    return total + [rounded(compute * compute_s_per_cycle), rounded(memory * memory_s_per_cycle),
                    rounded(weight * memory_s_per_cycle), rounded(link * link_s_per_cycle), rounded(fixed)]
