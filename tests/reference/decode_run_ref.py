"""Twins of kernels/decode_run.py and kernels/mixed_step.py: the fast-forward's steps timed one by one in plain Python
from the other kernels' twins (attention work, the step's sums, the schedule, the chord), its interpolation as
`serving._interpolate` runs it, and a prefilling step's whole-or-split decision as `StepRunner.run` makes it."""

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


def mixed_step_fields(new, past, dec, halves, new1, past1, dec1, new2, past2, dec2, whole_t, half1_t, half2_t, p_terms,
                      d_terms, graph, engine, whole_ops, whole_collective, whole_bounds, whole_rows, split_ops,
                      split_collective, split_bounds, split_rows, prefetch, state_rtol):
    """Twin of kernels/mixed_step.py: `StepRunner.run`'s decisions in plain Python over the twins above."""
    flops_per_entry, kv_per_token, qkv_width, q_width, act_bytes = (float(x) for x in graph)
    c, m, lk, bits, layers, margin, fixed_weights = (float(x) for x in engine)

    def op_of(seq_new, seq_past, new_tokens, past_tokens, entries, terms):
        flops = flops_per_entry * entries
        row = attention_row(seq_new, seq_past, terms, flops, 0.0, past_tokens * kv_per_token, new_tokens * kv_per_token,
                            new_tokens * int(qkv_width) * act_bytes, new_tokens * int(q_width) * act_bytes)
        return row, flops

    def sums(n, p, d, template, start):
        ops = []
        if len(n):
            ints = [int(x) for x in n], [int(x) for x in p]
            total = sum(ints[0])
            entries = sum(a * b for a, b in zip(*ints)) + (sum(a * a for a in ints[0]) + total) // 2
            ops.append(op_of(n, p, total, sum(ints[1]), entries, p_terms))
        if len(d):
            cached = sum(int(x) for x in d)
            ops.append(op_of(np.ones(len(d), dtype=np.int64), d, len(d), cached, cached + len(d), d_terms))
        total = [float(x) for x in template[:16]] if start is None else [a + float(b) for a, b in zip(start, template)]
        keys, serial = [], 0.0
        for row, flops in ops:
            fields = op_step_fields(row, c, m, lk, 1, flops, [0.0] * 16, float(template[32]), [0.0] * 16, int(bits))
            total = [a + v for a, v in zip(total, fields[:16])]
            key = fields[16:21]
            keys.append(key)
            serial += key[4] + max(key[0], key[3], key[1])
        return [a + float(v) for a, v in zip(total, template[16:32])], keys, serial

    def scheduled(fields, keys, ops, collective, bounds, rows):
        table = np.array(ops, dtype=np.float64)
        for r, key in zip(rows, keys):
            table[r] = key
        time_s, wait_s = schedule_step_s_ref(table, collective, bounds, int(layers), prefetch, state_rtol)
        return [time_s, *fields[1:7], wait_s, *fields[8:]]

    fields, whole_keys, serial = sums(new, past, dec, whole_t, None)
    whole = None

    def whole_step():  # scheduled where a comparison needs it, as `StepRunner.run` does
        nonlocal whole
        if whole is None:
            whole = scheduled(fields, whole_keys, whole_ops, whole_collective, whole_bounds, whole_rows)
        return whole

    if halves == 0:
        return whole_step(), 1
    lower_s = float(whole_t[33]) + float(whole_t[32]) * serial + float(whole_t[34])
    if not lower_s > 0.0:
        whole_step()
    if fixed_weights > 0.0 and 2.0 * float(whole_t[35]) > lower_s * margin \
            and 2.0 * float(whole_t[35]) > whole_step()[0] * margin:
        return whole_step(), 1
    busy = [0.0, 0.0, 0.0]
    for template in (half1_t, half2_t)[:halves]:
        for part in (template[:16], template[16:32]):
            busy = [b + float(part[i]) for b, i in zip(busy, (1, 2, 3))]
    if max(busy) > lower_s * margin and max(busy) > whole_step()[0] * margin:
        return whole_step(), 1
    split, keys, _ = sums(new1, past1, dec1, half1_t, None)
    if halves == 2:
        split, more, _ = sums(new2, past2, dec2, half2_t, split)
        keys += more
    split = scheduled(split, keys, split_ops, split_collective, split_bounds, split_rows)
    if whole is None and split[0] * margin < lower_s:
        return split, 2
    return (split, 2) if split[0] < whole_step()[0] else (whole_step(), 1)
