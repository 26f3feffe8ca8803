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


def mixed_step_fields(new, past, dec, halves, new1, past1, dec1, new2, past2, dec2, rows, flags, part, post,
                      post_flags, rows1, flags1, part1, post1, post_flags1, rows2, flags2, part2, post2, post_flags2,
                      p_terms, d_terms, graph, engine, prefetch, state_rtol):
    """Twin of kernels/mixed_step.py: `StepRunner.run`'s decisions in plain Python over the twins above, each graph's
    template (head, tail, joined table) put together as `engine._Template` and `engine._join` do."""
    flops_per_entry, kv_per_token, qkv_width, q_width, act_bytes = (float(x) for x in graph)
    c, m, lk, bits, layers, margin, fixed_weights = (float(x) for x in engine)

    def op_of(seq_new, seq_past, new_tokens, past_tokens, entries, terms):
        flops = flops_per_entry * entries
        row = attention_row(seq_new, seq_past, terms, flops, 0.0, past_tokens * kv_per_token, new_tokens * kv_per_token,
                            new_tokens * int(qkv_width) * act_bytes, new_tokens * int(q_width) * act_bytes)
        return row, flops

    def tail_of(post_rows):
        tail, serial = [0.0] * 16, 0.0
        for r in post_rows.tolist():
            tail = [a + v for a, v in zip(tail, r[5:21])]
            serial += r[4] + max(r[0], r[3], r[1])
        return tail, serial

    def sums(n, p, d, terms, tail, start):
        ops = []
        if len(n):
            ints = [int(x) for x in n], [int(x) for x in p]
            total = sum(ints[0])
            entries = sum(a * b for a, b in zip(*ints)) + (sum(a * a for a in ints[0]) + total) // 2
            ops.append(op_of(n, p, total, sum(ints[1]), entries, p_terms))
        if len(d):
            cached = sum(int(x) for x in d)
            ops.append(op_of(np.ones(len(d), dtype=np.int64), d, len(d), cached, cached + len(d), d_terms))
        head = [float(x) for x in terms[:16]]
        total = head if start is None else [a + b for a, b in zip(start, head)]
        keys, serial = [], 0.0
        for row, flops in ops:
            fields = op_step_fields(row, c, m, lk, 1, flops, [0.0] * 16, float(terms[16]), [0.0] * 16, int(bits))
            total = [a + v for a, v in zip(total, fields[:16])]
            key = fields[16:21]
            keys.append(key)
            serial += key[4] + max(key[0], key[3], key[1])
        return [a + v for a, v in zip(total, tail)], keys, serial

    def scheduled(fields, keys, graphs):
        ops, collective, bounds, varying = [], [], [], []
        for part_rows, part_flags, terms, post_rows, flags_of_post in graphs:
            at = len(ops)
            pre, layer = at + int(terms[19]), at + int(terms[19]) + int(terms[20])
            ops += part_rows.tolist() + post_rows[:, :5].tolist()
            collective += part_flags.tolist() + flags_of_post.tolist()
            bounds.append([at, pre, pre, layer, layer, len(ops)])
            varying += [pre + int(terms[22 + i]) for i in range(int(terms[21]))]
        table = np.array(ops, dtype=np.float64).reshape(-1, 5)
        for r, key in zip(varying, keys):
            table[r] = key
        time_s, wait_s = schedule_step_s_ref(table, np.array(collective, dtype=np.bool_),
                                             np.array(bounds, dtype=np.int64), int(layers), prefetch, state_rtol)
        return [time_s, *fields[1:7], wait_s, *fields[8:]]

    whole_graph = (rows, flags, part, post, post_flags)
    tail, post_serial = tail_of(post)
    fields, whole_keys, serial = sums(new, past, dec, part, tail, None)
    whole = None

    def whole_step():  # scheduled where a comparison needs it, as `StepRunner.run` does
        nonlocal whole
        if whole is None:
            whole = scheduled(fields, whole_keys, [whole_graph])
        return whole

    if halves == 0:
        return whole_step(), 1
    lower_s = float(part[17]) + float(part[16]) * serial + post_serial
    if not lower_s > 0.0:
        whole_step()
    if fixed_weights > 0.0 and 2.0 * float(part[18]) > lower_s * margin \
            and 2.0 * float(part[18]) > whole_step()[0] * margin:
        return whole_step(), 1
    halves_of = [(new1, past1, dec1, (rows1, flags1, part1, post1, post_flags1)),
                 (new2, past2, dec2, (rows2, flags2, part2, post2, post_flags2))][:halves]
    tails = [tail_of(g[3])[0] for *_, g in halves_of]
    busy = [0.0, 0.0, 0.0]
    for (*_, g), half_tail in zip(halves_of, tails):
        for values in (g[2][:16], half_tail):
            busy = [b + float(values[i]) for b, i in zip(busy, (1, 2, 3))]
    if max(busy) > lower_s * margin and max(busy) > whole_step()[0] * margin:
        return whole_step(), 1
    split, keys = None, []
    for (n, p, d, g), half_tail in zip(halves_of, tails):
        split, more, _ = sums(n, p, d, g[2], half_tail, split)
        keys += more
    split = scheduled(split, keys, [g for *_, g in halves_of])
    if whole is None and split[0] * margin < lower_s:
        return split, 2
    return (split, 2) if split[0] < whole_step()[0] else (whole_step(), 1)
