"""A step that prefills (a mixed step) timed in one call on a scheduled engine that may split it into two interleaved
halves, where the device prices attention on systolic arrays (the ASIC): the same floats as the Python path.

The Python path (`asicsim.core.serving.StepRunner.run`) builds the step's graph and its halves' graphs, prices their
attention ops (`AsicDevice._attention`), bounds the whole step from below (`StepEngine.serial_floor_s`) and the halves
(`StepEngine.halves_weights_floor_s`, `StepEngine.floor_s`), and schedules the whole step, the halves or both
(`StepEngine.run_step`: each graph's template sums plus its attention ops' accounts, the schedule of the joined op
table with the ops' rounded keys in their rows), keeping the faster. `mixed_step_fields` does the same arithmetic from
each graph's layer part (priced once per token count) and post ops (priced once per value), assembling the templates'
sums and joined op tables itself: no graph, op, template or table is built in Python (an hour of Sohu traffic times
~19,000 such steps).
"""

import numpy as np

from asicsim.kernels.accounts import _add_account, _rounded
from asicsim.kernels.decode_run import attention_row
from asicsim.kernels.jit import jit
from asicsim.kernels.schedule import schedule_step_s

__all__ = ["PART_TERMS", "POST_COLUMNS", "GRAPH_TERMS", "ENGINE_TERMS", "mixed_step_fields"]

# A graph's layer part's terms (one float64 array, `StepEngine` `_LayerPart.kernel_terms`): its head sums (StepTiming's
# 16 fields: pre ops + layers x the layer's array-free ops), layers counted, its serial and weights' seconds, its pre
# and layer op counts (per-sequence ops included), and how many per-sequence ops there are and where in the layer
# (two places, unused ones 0). Its op rows come with it: pre then layer ops, the per-sequence ops' rows zero.
PART_TERMS = (*(f"head_{i}" for i in range(16)), "count", "serial_s", "weights_s", "pre_ops", "layer_ops",
              "varying_ops", "varying_0", "varying_1")
# A post op's row (`StepEngine.post_table`): its compute, memory, weight, link and fixed seconds, then its account
# (StepTiming's 16 fields as if it ran alone).
POST_COLUMNS = ("compute_s", "memory_s", "weight_s", "link_s", "fixed_s", *(f"account_{i}" for i in range(16)))
# The graph's attention fields per batch (`workloads.graph.DenseAttention`): FLOPs per score entry, KV bytes per cached
# token, QKV and query widths (elements per token), activation bytes per element.
GRAPH_TERMS = ("flops_per_entry", "kv_bytes_per_token", "qkv_width", "q_width", "act_bytes")
# The engine's: seconds per cycle of each unit, the schedule key's bits, layers scheduled, the split's floor margin,
# whether a split half streams every layer's weights (1.0) or not (0.0).
ENGINE_TERMS = ("compute_s_per_cycle", "memory_s_per_cycle", "link_s_per_cycle", "key_bits", "layers", "margin",
                "fixed_weights")
_TIME, _MEMORY_WAIT = 0, 7  # StepTiming's time_s and memory_wait_s
_BUSY = (1, 2, 3)  # StepTiming's compute, memory and link busy seconds: `StepEngine.floor_s`


@jit
def _op(out, keys, at, seq_new, seq_past, new_tokens, past_tokens, entries, attention, graph, engine, count):
    """One attention op of `new_tokens` new and `past_tokens` cached tokens with `entries` score entries per head
    (`workloads.graph._attention`'s fields): priced (`attention_row`), its account added `count` times to `out`, its
    rounded key into keys[at]; returns its serial seconds at that key (`_serial_s`)."""
    flops = graph[0] * entries
    row = attention_row(seq_new, seq_past, attention, flops, 0.0, past_tokens * graph[1], new_tokens * graph[1],
                        (new_tokens * np.int64(graph[2])) * graph[4], (new_tokens * np.int64(graph[3])) * graph[4])
    c, m, lk, bits = engine[0], engine[1], engine[2], np.int64(engine[3])
    _add_account(out, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], c, m, lk,
                 np.int64(1), flops, count)
    keys[at, 0] = _rounded(row[0] * c, bits)
    keys[at, 1] = _rounded(row[1] * m, bits)
    keys[at, 2] = _rounded(row[2] * m, bits)
    keys[at, 3] = _rounded(row[3] * lk, bits)
    keys[at, 4] = _rounded(row[4], bits)
    return _serial_s(keys[at])


@jit
def _serial_s(key):
    """`engine._serial_s` of an op's key (compute, memory, weight, link and fixed seconds) with its weights prefetched,
    as on every engine this kernel serves: its fixed overhead, then the longest of its compute, link and memory."""
    return key[4] + max(key[0], key[3], key[1])


@jit
def _tail(post):
    """(post ops' accounts summed in order from zero, their serial seconds summed): a `_PostPart`'s tail and serial
    seconds (weights prefetched)."""
    tail = np.zeros(16)
    serial = 0.0
    for i in range(post.shape[0]):
        for f in range(16):
            tail[f] += post[i, 5 + f]
        serial += _serial_s(post[i])
    return tail, serial


@jit
def _graph(new, past, dec, part, tail, start, first, p_terms, d_terms, graph, engine, keys, at):
    """One graph's share of a step's sums (`StepEngine._scheduled_fields`): `start` + its head (its head alone where
    `first`), each attention op's account (the prefill op, then the decode op), its tail; their keys from keys[at].
    Returns (sums, serial seconds of its attention ops, keys written)."""
    out = np.empty(16)
    for f in range(16):
        out[f] = part[f] if first else start[f] + part[f]
    count = part[16]
    serial = 0.0
    k = at
    if new.shape[0] > 0:
        new_tokens = np.int64(0)
        past_tokens = np.int64(0)
        cross = np.int64(0)
        square = np.int64(0)
        for i in range(new.shape[0]):
            new_tokens += new[i]
            past_tokens += past[i]
            cross += new[i] * past[i]
            square += new[i] * new[i]
        entries = cross + (square + new_tokens) // 2
        serial += _op(out, keys, k, new, past, new_tokens, past_tokens, entries, p_terms, graph, engine, count)
        k += 1
    if dec.shape[0] > 0:
        cached = np.int64(0)
        for i in range(dec.shape[0]):
            cached += dec[i]
        sequences = np.int64(dec.shape[0])
        serial += _op(out, keys, k, np.ones(dec.shape[0], dtype=np.int64), dec, sequences, cached, cached + sequences,
                      d_terms, graph, engine, count)
        k += 1
    for f in range(16):
        out[f] += tail[f]
    return out, serial, k - at


@jit
def _place(ops, collective, bounds, rows, g, at, n_rows, part_rows, part_flags, part, post, post_flags):
    """Graph g's stream into the joined op table from row `at` (`engine._join`): its layer part's rows, then its post
    ops' keys; its bounds (pre, layer, post) and per-sequence rows from rows[n_rows]. Returns (next row, rows set)."""
    for i in range(part_rows.shape[0]):
        for c in range(5):
            ops[at + i, c] = part_rows[i, c]
        collective[at + i] = part_flags[i]
    end = at + part_rows.shape[0]
    for i in range(post.shape[0]):
        for c in range(5):
            ops[end + i, c] = post[i, c]
        collective[end + i] = post_flags[i]
    pre, layer = at + np.int64(part[19]), at + np.int64(part[19]) + np.int64(part[20])
    bounds[g, 0], bounds[g, 1], bounds[g, 2], bounds[g, 3] = at, pre, pre, layer
    bounds[g, 4], bounds[g, 5] = layer, end + post.shape[0]
    for i in range(np.int64(part[21])):
        rows[n_rows + i] = pre + np.int64(part[22 + i])
    return end + post.shape[0], n_rows + np.int64(part[21])


@jit
def _scheduled(fields, keys, streams, rows_a, flags_a, part_a, post_a, post_flags_a, rows_b, flags_b, part_b, post_b,
               post_flags_b, engine, prefetch, state_rtol):
    """`fields` with the schedule's time and memory wait: the joined op table of one or two streams (graph a, then
    b) assembled, its per-sequence rows set to the keys in order."""
    n = rows_a.shape[0] + post_a.shape[0] + (rows_b.shape[0] + post_b.shape[0] if streams == 2 else 0)
    ops = np.empty((n, 5))
    collective = np.empty(n, dtype=np.bool_)
    bounds = np.empty((streams, 6), dtype=np.int64)
    rows = np.empty(4, dtype=np.int64)
    at, k = _place(ops, collective, bounds, rows, 0, 0, 0, rows_a, flags_a, part_a, post_a, post_flags_a)
    if streams == 2:
        at, k = _place(ops, collective, bounds, rows, 1, at, k, rows_b, flags_b, part_b, post_b, post_flags_b)
    for i in range(k):
        for c in range(5):
            ops[rows[i], c] = keys[i, c]
    time_s, wait_s = schedule_step_s(ops, collective, bounds, np.int64(engine[4]), prefetch, state_rtol)
    fields[_TIME] = time_s
    fields[_MEMORY_WAIT] = wait_s
    return time_s


@jit
def _whole_s(whole_s, fields, keys, rows, flags, part, post, post_flags, engine, prefetch, state_rtol):
    """The whole step's seconds, scheduled now unless they already are (`whole_s` >= 0)."""
    if whole_s >= 0.0:
        return whole_s
    return _scheduled(fields, keys, 1, rows, flags, part, post, post_flags, rows, flags, part, post, post_flags,
                      engine, prefetch, state_rtol)


@jit
def mixed_step_fields(new, past, dec, halves, new1, past1, dec1, new2, past2, dec2, rows, flags, part, post,
                      post_flags, rows1, flags1, part1, post1, post_flags1, rows2, flags2, part2, post2, post_flags2,
                      p_terms, d_terms, graph, engine, prefetch, state_rtol):
    """(StepTiming's fields, interleaved halves used: 1 or 2) of a step of prefill chunks `new` after `past` cached
    tokens and decodes caching `dec` (int64 arrays), as `StepRunner.run` times it: with `halves` 0 the whole step
    alone; else its split (`halves` parts: new1/past1/dec1, new2/past2/dec2) where the floors leave it a chance and it
    is faster. Per graph (the whole step, then each half): its layer part's op rows, collective flags and terms
    (`PART_TERMS`) and its post ops' rows (`POST_COLUMNS`) and flags, from which the joined op tables are assembled
    (`engine._join`); `p_terms`, `d_terms`: the device's terms of the prefill and decode attention ops (`decode_run.
    ATTENTION_TERMS`); `graph`: `GRAPH_TERMS`; `engine`: `ENGINE_TERMS`."""
    margin = engine[5]
    keys = np.empty((4, 5))
    tail, post_serial = _tail(post)
    whole, serial, n = _graph(new, past, dec, part, tail, tail, True, p_terms, d_terms, graph, engine, keys, 0)
    whole_s = -1.0  # not scheduled yet
    if halves == 0:
        _whole_s(whole_s, whole, keys, rows, flags, part, post, post_flags, engine, prefetch, state_rtol)
        return whole, 1
    lower_s = part[17] + part[16] * serial + post_serial  # `serial_floor_s`
    if not lower_s > 0.0:
        whole_s = _whole_s(whole_s, whole, keys, rows, flags, part, post, post_flags, engine, prefetch, state_rtol)
    if engine[6] > 0.0:  # each half streams every layer's weights: `halves_weights_floor_s`
        halves_floor_s = 2.0 * part[18]
        if halves_floor_s > lower_s * margin:
            whole_s = _whole_s(whole_s, whole, keys, rows, flags, part, post, post_flags, engine, prefetch, state_rtol)
            if halves_floor_s > whole_s * margin:
                return whole, 1
    tail1, _ = _tail(post1)
    tail2, _ = _tail(post2)
    busy = np.zeros(3)  # `floor_s` of the halves: each one's head, then its tail
    for t in range(halves):
        for u in range(3):
            busy[u] += part1[_BUSY[u]] if t == 0 else part2[_BUSY[u]]
        for u in range(3):
            busy[u] += tail1[_BUSY[u]] if t == 0 else tail2[_BUSY[u]]
    floor_s = max(busy[0], busy[1], busy[2])
    if floor_s > lower_s * margin:
        whole_s = _whole_s(whole_s, whole, keys, rows, flags, part, post, post_flags, engine, prefetch, state_rtol)
        if floor_s > whole_s * margin:
            return whole, 1
    split_keys = np.empty((4, 5))
    split, _, k = _graph(new1, past1, dec1, part1, tail1, tail1, True, p_terms, d_terms, graph, engine, split_keys, 0)
    if halves == 2:
        split, _, _ = _graph(new2, past2, dec2, part2, tail2, split, False, p_terms, d_terms, graph, engine,
                             split_keys, k)
    split_s = _scheduled(split, split_keys, halves, rows1, flags1, part1, post1, post_flags1, rows2, flags2, part2,
                         post2, post_flags2, engine, prefetch, state_rtol)
    if whole_s < 0.0 and split_s * margin < lower_s:
        return split, 2  # faster than any schedule of the whole step
    if split_s < _whole_s(whole_s, whole, keys, rows, flags, part, post, post_flags, engine, prefetch, state_rtol):
        return split, 2
    return whole, 1
