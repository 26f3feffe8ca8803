"""A decode run's step values in one call: the serving fast-forward's evaluations and interpolation on a scheduled
engine whose device prices decode attention on systolic arrays (the ASIC), the same floats as its Python path.

The Python path (`asicsim.core.serving._Replica.fast_forward`) times the run's first step, caps the run at the next
arrival, and interpolates linearly between timed steps (`serving._interpolate`), each step timed by
`StepRunner.decode_values` -> `StepEngine.decode_fields`: the attention op's FLOPs and KV bytes from the cached tokens
(`workloads.graph.DecodeAttention.fields`), its cost row (`AsicDevice.decode_attention_pricer`: `systolic.
attention_work`, then the row of `AsicDevice._attention_row` at the base clock: `attention_row` here, with the
device's `systolic_attention_terms`), the step's sums and the op's schedule
key (`accounts.op_step_fields`), the schedule (`schedule.schedule_step_s`, memoised there on the key: a pure function
of it, so computed here afresh), the split's floor test, and the values of `_FF_FIELDS`. `decode_run_values` does all
of that in one call (a decode run took ~40 us of Python per timed step: ~1.2 s of an hour of Sohu traffic).
"""

import numpy as np

from asicsim.kernels.accounts import op_step_fields
from asicsim.kernels.chord import chord_fill
from asicsim.kernels.jit import jit
from asicsim.kernels.schedule import schedule_step_s
from asicsim.kernels.systolic import attention_work

__all__ = ["ATTENTION_TERMS", "STEP_TERMS", "attention_row", "decode_run_values"]

# A device's terms for an attention op it prices as `attention_row` does (`Device.systolic_attention_terms`, one
# float64 array): the op's heads and PE steps per head, the arrays' count, shape, dataflow and mode, softmax
# operations per score, vector lanes, HBM bytes per cycle and the SRAM bytes that hold an op's activations.
ATTENTION_TERMS = ("q_heads", "kv_heads", "head_steps", "arrays", "rows", "cols", "dataflow", "mode", "softmax_ops",
                   "lanes", "hbm_bytes_per_cycle", "act_resident_bytes")
# `decode_run_values`' step terms (one float64 array): the op's FLOPs per score entry and KV bytes per cached token,
# the unit clocks' seconds per cycle, the op's time bucket, the schedule key's bits, layers counted in the sums
# (float) and scheduled (int), the pipeline stages, host seconds per sequence, the split's floor (< 0: no floor test)
# and its margin.
STEP_TERMS = ("flops_per_entry", "kv_bytes_per_token", "compute_s_per_cycle", "memory_s_per_cycle",
              "link_s_per_cycle", "bucket", "key_bits", "count", "layers", "pp", "host_s_per_sequence", "floor_s",
              "floor_margin")
_TIME, _MEMORY_WAIT = 0, 7  # StepTiming's time_s and memory_wait_s


@jit
def attention_row(seq_new, seq_past, terms, flops, weight_bytes, kv_read_bytes, kv_write_bytes, act_in_bytes,
                  act_out_bytes):
    """The cost row (`accounts.COST_COLUMNS`) of a plain causal attention op on systolic arrays at the base clock
    (`AsicDevice._attention`): its array and softmax work (`systolic.attention_work`), the slower of the two in
    compute cycles, its KV bytes and its activations over HBM, these only where they do not fit the SRAM kept for
    them (`terms`: `ATTENTION_TERMS`)."""
    array_cycles, ideal, scores, softmax = attention_work(
        seq_new, seq_past, np.int64(terms[0]), np.int64(terms[1]), np.int64(terms[2]), np.int64(terms[3]),
        np.int64(terms[4]), np.int64(terms[5]), np.int64(terms[6]), np.int64(terms[7]), terms[8], np.int64(terms[9]))
    per_cycle = terms[10]
    act = act_in_bytes + act_out_bytes
    act_bytes = 0.0 if act <= terms[11] else act
    cycles = float(max(array_cycles, softmax))
    kv_bytes = kv_read_bytes + kv_write_bytes
    row = np.zeros(10)
    row[0] = cycles * 1.0
    row[1] = kv_bytes / per_cycle + act_bytes / per_cycle
    row[5] = float(ideal) * 1.0
    row[7] = weight_bytes + kv_read_bytes + kv_write_bytes + act_bytes
    return row


@jit
def _timed(j, past0, seq_new, attention, op_bytes, steps, head, tail, ops, collective, bounds, row_at, prefetch,
           state_rtol, out):
    """Step j of the run (every sequence j tokens further) into `out` (`_FF_FIELDS`); False where the split's floor
    does not rule the split out (the Python path then times the step another way)."""
    past = past0 + j
    total = past.sum()
    flops = steps[0] * (total + past.shape[0])
    kv_read_bytes = total * steps[1]
    row = attention_row(seq_new, past, attention, flops, op_bytes[0], kv_read_bytes, op_bytes[1], op_bytes[2],
                        op_bytes[3])
    fields = op_step_fields(row, steps[2], steps[3], steps[4], np.int64(steps[5]), flops, head, steps[7], tail,
                            np.int64(steps[6]))
    for c in range(5):
        ops[row_at, c] = fields[16 + c]
    time_s, wait_s = schedule_step_s(ops, collective, bounds, np.int64(steps[8]), prefetch, state_rtol)
    fields[_TIME] = time_s
    fields[_MEMORY_WAIT] = wait_s
    floor_s = steps[11]
    if floor_s >= 0.0 and not floor_s > time_s * steps[12]:
        return False
    pp = np.int64(steps[9])
    host_s = steps[10] * past.shape[0]
    step_s = time_s * pp
    out[0] = step_s if step_s >= host_s else host_s
    out[1] = (pp - 1) * time_s
    for c in range(1, 16):
        out[1 + c] = fields[c]
    return True


@jit
def decode_run_values(past0, n, horizon_s, seq_new, attention, op_bytes, steps, head, tail, ops, collective, bounds,
                      row_at, prefetch, state_rtol, rtol, seconds, step_col):
    """(ok, values) of a decode run's first n' <= n steps from cached tokens `past0` (int64): n' = n capped to the steps
    that can start within `horizon_s` (inf: no cap) as the fast-forward caps it from its first step, and rows of
    `_FF_FIELDS` timed at the run's ends and midpoints and interpolated along chords within `rtol` (`chord.
    chord_fill`; `seconds`, `step_col`: its seconds columns and the step's). `attention`: `ATTENTION_TERMS`; `op_bytes`:
    the op's weight, KV-write, activation-in and -out bytes (fixed by the batch size); `steps`:
    `STEP_TERMS`; head, tail: the step's sums before and after the attention op's (`accounts.op_step_fields`); ops,
    collective, bounds: the step's schedule table (`schedule.schedule_step_s`), row `row_at` the attention op's, its
    scratch. Not ok (no values) where a timed step's floor leaves the split a chance: the caller's path decides."""
    cols = 17
    timed = np.empty((n, cols))
    known = np.zeros(n, dtype=np.bool_)
    if horizon_s < np.inf:
        if not _timed(0, past0, seq_new, attention, op_bytes, steps, head, tail, ops, collective, bounds, row_at,
                      prefetch, state_rtol, timed[0]):
            return False, np.empty((0, cols))
        known[0] = True
        cap = np.int64(horizon_s / timed[0, step_col] * 1.25) + 2
        if cap < n:
            n = cap
    values = np.empty((n, cols))
    stack = np.empty((n + 2, 2), dtype=np.int64)
    stack[0, 0], stack[0, 1] = 0, n - 1
    depth = 1
    while depth > 0:
        depth -= 1
        a, b = stack[depth, 0], stack[depth, 1]
        for j in (a, b):
            if not known[j]:
                if not _timed(j, past0, seq_new, attention, op_bytes, steps, head, tail, ops, collective, bounds,
                              row_at, prefetch, state_rtol, timed[j]):
                    return False, np.empty((0, cols))
                known[j] = True
        values[a] = timed[a]
        values[b] = timed[b]
        if b - a <= 1:
            continue
        m = (a + b) // 2
        if not known[m]:
            if not _timed(m, past0, seq_new, attention, op_bytes, steps, head, tail, ops, collective, bounds, row_at,
                          prefetch, state_rtol, timed[m]):
                return False, np.empty((0, cols))
            known[m] = True
        on_chord, rows = chord_fill(timed[a], timed[b], timed[m], a, b, m, rtol, seconds, step_col)
        if on_chord:
            values[a + 1:b] = rows
            continue
        stack[depth, 0], stack[depth, 1] = m, b
        stack[depth + 1, 0], stack[depth + 1, 1] = a, m
        depth += 2
    return True, values
