"""A run of decode steps booked at once (the serving fast-forward): the run's clock, and its rows of the step log.
A row is one step's fields; the fast-forward's values hold some of them, column by column."""

import numpy as np

from asicsim.kernels.jit import jit
from asicsim.kernels.paging import blocks_taken

__all__ = ["run_clock", "run_rows", "book_run"]


@jit
def run_clock(step_s, now, until_at):
    """(clock, k): clock[0] = now and clock[j + 1] = clock[j] + step_s[j], summed one step after another (the sums
    of stepping one at a time); k the steps that start before `until_at`: the first j < n with clock[j] >= until_at
    (n if none), as `np.searchsorted(clock[:n], until_at)` gives on a clock that never falls."""
    n = step_s.shape[0]
    clock = np.empty(n + 1)
    clock[0] = now
    for j in range(n):
        clock[j + 1] = clock[j] + step_s[j]
    k = n
    for j in range(n):
        if clock[j] >= until_at:
            k = j
            break
    return clock, k


@jit
def run_rows(values, k, copied, constant_columns, constants, first, clock, micro, used, varying_columns, width):
    """The step log's rows of steps 0..k-1 of a run (`width` fields each): columns copied from `values` (pairs
    (row column, values column) in `copied`), `constants` at `constant_columns`, and in `varying_columns`, in this
    order, the step index (from `first`), start and end times (`clock`), micro-batches and KV blocks (`used`).
    Other columns are 0."""
    rows = np.zeros((k, width))
    for j in range(k):
        for c in range(copied.shape[0]):
            rows[j, copied[c, 0]] = values[j, copied[c, 1]]
        for c in range(constant_columns.shape[0]):
            rows[j, constant_columns[c]] = constants[c]
        rows[j, varying_columns[0]] = first + j
        rows[j, varying_columns[1]] = clock[j]
        rows[j, varying_columns[2]] = clock[j + 1]
        rows[j, varying_columns[3]] = micro[j]
        rows[j, varying_columns[4]] = used[j]
    return rows


@jit
def book_run(values, step_column, micro, now, until_at, cached_tokens, cap_tokens, block_tokens, used_blocks, copied,
             constant_columns, constants, first, varying_columns, width):
    """A decode run booked in one call (the serving fast-forward books ~3 x 10^4 runs an hour): (clock, k, used,
    rows), where (clock, k) is `run_clock` of the values' step seconds (column `step_column`), `used` the KV blocks
    in use by the end of each of the k steps (`used_blocks` before the run plus `paging.blocks_taken` of the
    sequences' cached tokens and caps) and `rows` the k steps' rows of the step log (`run_rows`, those blocks in
    its KV column)."""
    clock, k = run_clock(values[:, step_column], now, until_at)
    used = used_blocks + blocks_taken(cached_tokens, cap_tokens, block_tokens, k)
    rows = run_rows(values, k, copied, constant_columns, constants, first, clock, micro, used, varying_columns, width)
    return clock, k, used, rows
