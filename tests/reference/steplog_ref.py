"""Twins of kernels/steplog.py: the fast-forward's earlier numpy code (a running sum, searchsorted, column copies)."""

import numpy as np


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
