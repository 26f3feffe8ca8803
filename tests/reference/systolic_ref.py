"""Slow, obviously-correct pure-Python twins of kernels/systolic.py and kernels/vector.py.

The twin builds the explicit list of folds with the operand tiles each one touches, decides SRAM reuse
by LRU stack distance (a tile is still resident if the distinct words touched since its last use fit in
half the SRAM), and runs the timing recursion in exact rational arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = [
    "fold_list_ref", "compute_cycles_ref", "gemm_cycles_ref", "tiled_gemm_cycles_ref",
    "multi_array_gemm_cycles_ref", "attention_cycles_ref", "vector_cycles_ref",
]

_LATENCY_EXTRA = {0: lambda r, c: r + c - 2, 1: lambda r, c: 2 * r + c - 2, 2: lambda r, c: 2 * r + c - 2}


def _dims(df, m, n, k):
    """(Sr, Sc, T) per SCALE-Sim's GEMM mapping."""
    return {0: (m, n, k), 1: (k, n, m), 2: (k, m, n)}[df]


def fold_list_ref(rows, cols, df, m, n, k):
    """Folds in execution order as dicts: ids and word counts of the A and B tiles and the outputs."""
    sr, sc, t = _dims(df, m, n, k)
    folds = []
    for fc in range(math.ceil(sc / cols)):
        c_used = min(cols, sc - fc * cols)
        for fr in range(math.ceil(sr / rows)):
            r_used = min(rows, sr - fr * rows)
            a_tile = ("A", fr)                       # streamed r x T slice, same for every fc
            b_tile = ("B", fc) if df == 0 else ("B", fr, fc)   # os: c x T slice; ws/is: stationary block
            b_words = c_used * t if df == 0 else r_used * c_used
            out = r_used * c_used if df == 0 else t * c_used
            folds.append({"fr": fr, "fc": fc, "a": a_tile, "a_words": r_used * t, "b": b_tile,
                          "b_words": b_words, "out": out, "last_fr": fr == math.ceil(sr / rows) - 1})
    return folds


def compute_cycles_ref(rows, cols, df, m, n, k, mode):
    """Memory-ideal cycles: fold after fold (scalesim) or one fold issued every max(T, R) (pipelined)."""
    _, _, t = _dims(df, m, n, k)
    latency = t + _LATENCY_EXTRA[df](rows, cols)
    starts = []
    for i, _ in enumerate(fold_list_ref(rows, cols, df, m, n, k)):
        starts.append(0 if i == 0 else starts[-1] + (latency if mode == 0 else max(t, rows)))
    return starts[-1] + latency - 1


def _resident(history, tile, words_of, half):
    """LRU: was `tile` used before, with the distinct words touched since then fitting in `half`?"""
    if tile not in history:
        return False
    last = len(history) - 1 - history[::-1].index(tile)
    between = set(history[last + 1:])
    return sum(words_of[x] for x in between) + words_of[tile] <= half


def gemm_cycles_ref(rows, cols, df, m, n, k, mode, sram_words_each, bw_words_per_cycle):
    """Twin of kernels.systolic.gemm_cycles."""
    _, _, t = _dims(df, m, n, k)
    latency = t + _LATENCY_EXTRA[df](rows, cols)
    interval = latency if mode == 0 else max(t, rows)
    sram = sram_words_each if sram_words_each > 0 else 1 << 62
    half = sram // 2
    limited = bw_words_per_cycle > 0
    bw = Fraction(bw_words_per_cycle) if limited else Fraction(1)
    if df == 0:
        a_win, b_win, w_first = (0, t + rows - 2), (0, t + cols - 2), t - 1
    else:
        a_win, b_win, w_first = (rows, 2 * rows + t - 2), (0, rows + cols - 2), 2 * rows - 1
    hist = {"A": [], "B": []}
    words = {"A": {}, "B": {}}
    arrive = {"A": Fraction(0), "B": Fraction(0)}
    fetched = {"A": 0, "B": 0}
    counts = [0, 0, 0, 0]
    written = 0
    drain = Fraction(0)
    starts = []
    for fold in fold_list_ref(rows, cols, df, m, n, k):
        earliest = Fraction(0) if not starts else starts[-1] + interval
        for port, win in (("A", a_win), ("B", b_win)):
            tile, size = fold[port.lower()], fold[port.lower() + "_words"]
            words[port][tile] = size
            new = 0 if _resident(hist[port], tile, words[port], half) else size
            hist[port].append(tile)
            counts[0] += size
            counts[2] += new
            if not limited or new == 0:
                continue
            fetched[port] += new
            if mode == 0:
                arrive[port] = max(Fraction(0), (fetched[port] - half) / bw)
            else:
                arrive[port] = max(arrive[port], starts[-1] if starts else 0) + new / bw
            earliest = max(earliest, arrive[port] - min(win[1], win[0] + new / bw))
        out_dram = fold["out"]
        if mode == 1 and df != 0 and fold["out"] <= sram and not fold["last_fr"]:
            out_dram = 0
        counts[1] += fold["out"]
        counts[3] += out_dram
        if limited:
            written += out_dram
            earliest = max(earliest, (written - sram) / bw - (latency - 1))
            if out_dram:
                drain = max(drain, earliest + w_first) + out_dram / bw
        starts.append(earliest)
    end = starts[-1] + latency - 1
    if limited and mode == 1:
        end = max(end, drain)
    cycles = math.ceil(end)
    return (cycles, cycles - compute_cycles_ref(rows, cols, df, m, n, k, mode), *counts)


def tiled_gemm_cycles_ref(rows, cols, df, m, n, k, mode, sram_words_each, bw):
    """Twin of tiled_gemm_cycles: try every chunk size the kernel tries, run chunks back to back."""
    sr, _, t = _dims(df, m, n, k)
    base = gemm_cycles_ref(rows, cols, df, m, n, k, mode, sram_words_each, bw)
    best = (base[0], base[1], sr)
    if mode == 0 or sram_words_each <= 0 or bw <= 0 or sr <= rows:
        return best
    fit = (sram_words_each // 2) // max(t, 1) // rows * rows
    sizes = {rows * 2 ** j for j in range(64) if rows * 2 ** j < sr}
    if rows <= fit < sr:
        sizes.add(fit)
    for cand in sorted(sizes):
        chunks = [cand] * (sr // cand) + ([sr % cand] if sr % cand else [])
        total, stall = 0, 0
        for size in chunks:
            sub = (size, n, k) if df == 0 else (m, n, size)
            r = gemm_cycles_ref(rows, cols, df, *sub, 1, sram_words_each, bw)
            total += r[0] + 1
            stall += r[1]
        if total - 1 < best[0]:
            best = (total - 1, stall, cand)
    return best


def multi_array_gemm_cycles_ref(arrays, rows, cols, df, m, n, k, mode, sram_words_each, bw):
    """Twin of multi_array_gemm_cycles: brute force over (a_m, a_n) splits."""
    best = None
    for a_m in range(1, min(arrays, m) + 1):
        a_n = min(arrays // a_m, n)
        share = Fraction(bw) / (a_m * a_n) if bw > 0 else 0.0
        r = tiled_gemm_cycles_ref(rows, cols, df, math.ceil(m / a_m), math.ceil(n / a_n), k, mode,
                                  sram_words_each, share)
        if best is None or r[0] < best[0]:
            best = r
    return best[0], best[1], math.ceil(m * n * k / (arrays * rows * cols))


def attention_cycles_ref(seq_new, seq_past, q_heads, kv_heads, head_dim, arrays, rows, cols, df, mode):
    """Twin of attention_cycles: list every GEMM, then price them alone (scalesim) or as one fold stream."""
    group = max(q_heads // max(kv_heads, 1), 1)
    gemms, macs = [], 0
    for c, p in zip(seq_new, seq_past):
        if c <= 0:
            continue
        ctx = p + c
        gemms += [(c * group, ctx, head_dim), (c * group, head_dim, ctx)]
        macs += 2 * q_heads * head_dim * (c * p + c * (c + 1) // 2)
    ideal = math.ceil(macs / (arrays * rows * cols))
    if mode == 0:
        total = 0
        for shape in gemms:
            total += (kv_heads // arrays) * (gemm_cycles_ref(rows, cols, df, *shape, mode, 0, 0)[0] + 1)
            left = kv_heads % arrays
            if left:
                total += multi_array_gemm_cycles_ref(arrays // left, rows, cols, df, *shape, mode, 0, 0)[0] + 1
        return total, ideal
    if not gemms:
        return 0, ideal
    stream, tail = 0, 0
    for m, n, k in gemms:
        sr, sc, t = {0: (m, n, k), 1: (k, n, m), 2: (k, m, n)}[df]
        issue = max(t, rows)
        stream += kv_heads * math.ceil(sr / rows) * math.ceil(sc / cols) * issue
        latency = t + rows + cols - 2 if df == 0 else t + 2 * rows + cols - 2
        tail = max(tail, latency - 1 - issue)
    return math.ceil(stream / arrays) + tail, ideal


def vector_cycles_ref(elements, ops_per_element, lanes):
    """Twin of kernels.vector.vector_cycles: count lane-cycles one at a time in chunks of lanes."""
    work = max(elements, 0) * max(ops_per_element, 0)
    cycles = 0
    while work > 0:
        work -= max(lanes, 1)
        cycles += 1
    return cycles
