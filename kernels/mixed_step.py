"""A step that prefills (a mixed step) timed in one call on a scheduled engine that may split it into two interleaved
halves, where the device prices attention on systolic arrays (the ASIC): the same floats as the Python path.

The Python path (`asicsim.core.serving.StepRunner.run`) builds the step's graph and its halves' graphs, prices their
attention ops (`AsicDevice._attention`), bounds the whole step from below (`StepEngine.serial_floor_s`) and the halves
(`StepEngine.halves_weights_floor_s`, `StepEngine.floor_s`), and schedules the whole step, the halves or both
(`StepEngine.run_step`: the template's sums plus each attention op's account, the schedule of the joined op table with
the ops' rounded keys in their rows), keeping the faster. `mixed_step_fields` does the same arithmetic on the
templates' terms and joined tables the engine already keeps, with no graph or op built (an hour of Sohu traffic times
~16,000 such steps at ~130 us of Python each).
"""

import numpy as np

from asicsim.kernels.accounts import _add_account, _rounded
from asicsim.kernels.decode_run import attention_row
from asicsim.kernels.jit import jit
from asicsim.kernels.schedule import schedule_step_s

__all__ = ["TEMPLATE_TERMS", "GRAPH_TERMS", "ENGINE_TERMS", "mixed_step_fields"]

# A template's terms (one float64 array, `StepEngine.kept_template(...).kernel_terms()`): its head and tail sums
# (StepTiming's 16 fields each), layers counted, its layer part's and post part's serial seconds, and its layer ops'
# weight seconds (layers counted).
TEMPLATE_TERMS = (*(f"head_{i}" for i in range(16)), *(f"tail_{i}" for i in range(16)), "count", "part_serial_s",
                  "post_serial_s", "weights_s")
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
    rounded key into keys[at]; returns its serial seconds at that key (`engine._serial_s`, prefetched weights)."""
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
    return keys[at, 4] + max(keys[at, 0], keys[at, 3], keys[at, 1])


@jit
def _graph(new, past, dec, template, start, first, p_terms, d_terms, graph, engine, keys, at):
    """One graph's share of a step's sums (`StepEngine._scheduled_fields`): `start` + its head (its head alone where
    `first`), each attention op's account (the prefill op, then the decode op), its tail; their keys from keys[at].
    Returns (sums, serial seconds of its attention ops, keys written)."""
    out = np.empty(16)
    for f in range(16):
        out[f] = template[f] if first else start[f] + template[f]
    count = template[32]
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
        out[f] += template[16 + f]
    return out, serial, k - at


@jit
def _scheduled(fields, keys, n, ops, collective, bounds, rows, engine, prefetch, state_rtol):
    """`fields` with the schedule's time and memory wait, the table's per-sequence rows set to the first n keys."""
    for i in range(n):
        for c in range(5):
            ops[rows[i], c] = keys[i, c]
    time_s, wait_s = schedule_step_s(ops, collective, bounds, np.int64(engine[4]), prefetch, state_rtol)
    fields[_TIME] = time_s
    fields[_MEMORY_WAIT] = wait_s
    return time_s


@jit
def _whole_s(whole_s, fields, keys, n, ops, collective, bounds, rows, engine, prefetch, state_rtol):
    """The whole step's seconds, scheduled now unless they already are (`whole_s` >= 0)."""
    if whole_s >= 0.0:
        return whole_s
    return _scheduled(fields, keys, n, ops, collective, bounds, rows, engine, prefetch, state_rtol)


@jit
def mixed_step_fields(new, past, dec, halves, new1, past1, dec1, new2, past2, dec2, whole_t, half1_t, half2_t, p_terms,
                      d_terms, graph, engine, whole_ops, whole_collective, whole_bounds, whole_rows, split_ops,
                      split_collective, split_bounds, split_rows, prefetch, state_rtol):
    """(StepTiming's fields, interleaved halves used: 1 or 2) of a step of prefill chunks `new` after `past` cached
    tokens and decodes caching `dec` (int64 arrays), as `StepRunner.run` times it: with `halves` 0 the whole step
    alone; else its split (`halves` parts: new1/past1/dec1, new2/past2/dec2) where the floors leave it a chance and it
    is faster. `*_t`: the graphs' templates (`TEMPLATE_TERMS`); `p_terms`, `d_terms`: the device's attention terms of
    the prefill and decode ops (`decode_run.ATTENTION_TERMS`); `graph`: `GRAPH_TERMS`; `engine`: `ENGINE_TERMS`; the
    whole step's joined op table and its halves' (`schedule.schedule_step_s`'s, the attention ops' rows `*_rows`:
    scratch)."""
    margin = engine[5]
    keys = np.empty((4, 5))
    whole, serial, n = _graph(new, past, dec, whole_t, whole_t, True, p_terms, d_terms, graph, engine, keys, 0)
    table = (whole_ops, whole_collective, whole_bounds, whole_rows)
    whole_s = -1.0  # not scheduled yet
    if halves == 0:
        _whole_s(whole_s, whole, keys, n, *table, engine, prefetch, state_rtol)
        return whole, 1
    lower_s = whole_t[33] + whole_t[32] * serial + whole_t[34]  # `serial_floor_s`
    if not lower_s > 0.0:
        whole_s = _whole_s(whole_s, whole, keys, n, *table, engine, prefetch, state_rtol)
    if engine[6] > 0.0:  # each half streams every layer's weights: `halves_weights_floor_s`
        halves_floor_s = 2.0 * whole_t[35]
        if halves_floor_s > lower_s * margin:
            whole_s = _whole_s(whole_s, whole, keys, n, *table, engine, prefetch, state_rtol)
            if halves_floor_s > whole_s * margin:
                return whole, 1
    busy = np.zeros(3)  # `floor_s` of the halves
    for t in range(halves):
        template = half1_t if t == 0 else half2_t
        for part in range(2):
            for u in range(3):
                busy[u] += template[16 * part + _BUSY[u]]
    floor_s = max(busy[0], busy[1], busy[2])
    if floor_s > lower_s * margin:
        whole_s = _whole_s(whole_s, whole, keys, n, *table, engine, prefetch, state_rtol)
        if floor_s > whole_s * margin:
            return whole, 1
    split_keys = np.empty((4, 5))
    split, _, k = _graph(new1, past1, dec1, half1_t, half1_t, True, p_terms, d_terms, graph, engine, split_keys, 0)
    if halves == 2:
        split, _, k2 = _graph(new2, past2, dec2, half2_t, split, False, p_terms, d_terms, graph, engine, split_keys, k)
        k += k2
    split_s = _scheduled(split, split_keys, k, split_ops, split_collective, split_bounds, split_rows, engine, prefetch,
                         state_rtol)
    if whole_s < 0.0 and split_s * margin < lower_s:
        return split, 2  # faster than any schedule of the whole step
    if split_s < _whole_s(whole_s, whole, keys, n, *table, engine, prefetch, state_rtol):
        return split, 2
    return whole, 1
