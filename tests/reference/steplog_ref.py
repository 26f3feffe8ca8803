"""Twins of kernels/steplog.py: the fast-forward's earlier numpy code (a running sum, searchsorted, column copies)."""

import numpy as np

from .paging_ref import blocks_taken


def run_clock(step_s, now, until_at):
    n = len(step_s)
    clock = np.empty(n + 1)
    clock[0] = now
    clock[1:] = step_s
    clock = np.add.accumulate(clock)
    return clock, int(np.searchsorted(clock[:n], until_at, "left"))


def run_rows(values, k, copied, constant_columns, constants, first, clock, micro, used, varying_columns, width):
    rows = np.zeros((k, width))
    for to, of in copied:
        rows[:, to] = values[:k, of]
    rows[:, constant_columns] = constants
    for column, value in zip(varying_columns, (np.arange(first, first + k), clock[:k], clock[1:k + 1], micro[:k],
                                               used[:k])):
        rows[:, column] = value
    return rows


def book_run(values, step_column, micro, now, until_at, cached_tokens, cap_tokens, block_tokens, used_blocks, copied,
             constant_columns, constants, first, varying_columns, width):
    clock, k = run_clock(values[:, step_column], now, until_at)
    used = used_blocks + np.asarray(blocks_taken(cached_tokens, cap_tokens, block_tokens, k), dtype=np.int64)
    return clock, k, used, run_rows(values, k, copied, constant_columns, constants, first, clock, micro, used,
                                    varying_columns, width)
