"""Twins of kernels/decode_run.py: the fast-forward's steps timed one by one in plain Python from the other kernels'
twins (attention work, the step's sums, the schedule, the chord), and its interpolation as `serving._interpolate`
runs it."""

import math

import numpy as np

from .accounts_ref import op_step_fields
from .chord_ref import chord_fill
from .schedule_ref import schedule_step_s_ref
from .systolic_ref import attention_work_ref


class _FloorTest(Exception):
    """A timed step whose floor leaves the split a chance."""


def attention_row(seq_new, seq_past, terms, flops, weight_bytes, kv_read_bytes, kv_write_bytes, act_in_bytes,
                  act_out_bytes):
    q_heads, kv_heads, head_steps, arrays, rows, cols, df, mode, softmax_ops, lanes = terms[:10]
    per_cycle, resident = float(terms[10]), float(terms[11])
    cycles, ideal, _, softmax = attention_work_ref(seq_new, seq_past, int(q_heads), int(kv_heads), int(head_steps),
                                                   int(arrays), int(rows), int(cols), int(df), int(mode),
                                                   float(softmax_ops), int(lanes))
    act = act_in_bytes + act_out_bytes
    act_bytes = act if act > resident else 0.0
    kv_bytes = kv_read_bytes + kv_write_bytes
    return [float(max(cycles, softmax)), kv_bytes / per_cycle + act_bytes / per_cycle, 0.0, 0.0, 0.0, float(ideal),
            0.0, weight_bytes + kv_read_bytes + kv_write_bytes + act_bytes, 0.0, 0.0]


def decode_run_values(past0, n, horizon_s, seq_new, attention, op_bytes, steps, head, tail, ops, collective, bounds,
                      row_at, prefetch, state_rtol, rtol, seconds, step_col):
    (per_entry, kv_per_token, compute_s, memory_s, link_s, bucket, bits, count, layers, pp, host_s, floor_s,
     margin) = (float(x) for x in steps)
    evals = {}

    def timed(j):
        if j not in evals:
            past = past0 + j
            total = int(sum(int(x) for x in past))
            flops = per_entry * (total + len(past))
            kv_read_bytes = total * kv_per_token
            weight_bytes, kv_write_bytes, act_in_bytes, act_out_bytes = (float(x) for x in op_bytes)
            row = attention_row(seq_new, past, attention, flops, weight_bytes, kv_read_bytes, kv_write_bytes,
                                act_in_bytes, act_out_bytes)
            fields = op_step_fields(row, compute_s, memory_s, link_s, int(bucket), flops, head, count, tail, int(bits))
            table = np.array(ops, dtype=np.float64)
            table[row_at] = fields[16:21]
            time_s, wait_s = schedule_step_s_ref(table, collective, bounds, int(layers), prefetch, state_rtol)
            if floor_s >= 0.0 and not floor_s > time_s * margin:
                raise _FloorTest
            fields = [time_s, *fields[1:7], wait_s, *fields[8:16]]
            evals[j] = np.array([max(time_s * int(pp), host_s * len(past)), (int(pp) - 1) * time_s, *fields[1:]])
        return evals[j]

    try:
        if horizon_s < math.inf:
            n = min(n, int(horizon_s / timed(0)[step_col] * 1.25) + 2)
        values = np.empty((n, 17))
        stack = [(0, n - 1)]
        while stack:
            a, b = stack.pop()
            values[a], values[b] = timed(a), timed(b)
            if b - a <= 1:
                continue
            m = (a + b) // 2
            on_chord, rows = chord_fill(timed(a), timed(b), timed(m), a, b, m, rtol, seconds, step_col)
            if on_chord:
                values[a + 1:b] = rows
                continue
            stack += [(m, b), (a, m)]
    except _FloorTest:
        return False, np.empty((0, 17))
    return True, values
