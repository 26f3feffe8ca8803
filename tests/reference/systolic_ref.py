"""Slow, obviously-correct pure-Python twins of kernels/systolic.py and kernels/vector.py.

The pipelined twin builds the explicit list of folds with the operand tiles each one touches, decides
SRAM reuse by LRU stack distance (a tile is still resident if the distinct words touched since its last
use fit in half the SRAM), and runs the timing recursion in exact rational arithmetic. The scalesim
limited-bandwidth twin walks every demand line of every fold as SCALE-Sim 3.0.0 does: it enumerates the
fetch order element by element, checks each demanded word against the read-buffer window, moves the window
one prefetch at a time with SCALE-Sim's stall update, and puts the outputs into the ofmap buffer one word
at a time.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = [
    "fold_list_ref", "compute_cycles_ref", "gemm_cycles_ref", "scalesim_memory_ref",
    "diagonal_order_ref", "tiled_gemm_cycles_ref",
    "multi_array_gemm_cycles_ref", "shared_gemm_cycles_ref", "attention_cycles_ref", "attention_work_ref", "vector_cycles_ref",
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


def diagonal_order_ref(blocks, t, width, width_last):
    """Fetch position of every valid element (block, row, col) of a diagonally fetched streamed operand.

    Blocks of t rows x width columns are stacked (the last block only width_last columns valid) and
    read one anti-diagonal after another, from the highest row down, skipping the padding.
    """
    rows_total = blocks * t
    order = {}
    for diag in range(rows_total + width):
        for row in range(min(diag, rows_total - 1), max(0, diag - width + 1) - 1, -1):
            col = diag - row
            block = row // t
            if block == blocks - 1 and col >= width_last:
                continue
            order[(block, row - block * t, col)] = len(order)
    return order


class _RingRef:
    """SCALE-Sim's read buffer as a ring of sets with an active window, moved one prefetch at a time."""

    def __init__(self, words, sram):
        self.set_words = -(-sram // 100)
        active_words = -(-sram // 2)
        self.sets = words // self.set_words + 1  # a set is opened after every full one, even the last
        active = -(-active_words // self.set_words)
        step = max(-(-(sram - active_words) // self.set_words), 1)
        self.fits = self.sets <= active
        self.active = min(active, self.sets)
        self.step = min(step, max(self.sets - self.active, 1))
        self.start = 0

    def hit(self, q):
        return self.fits or (q - self.start) % self.sets < self.active

    def advance(self):
        self.start = (self.start + self.step) % self.sets


def _lines_words_ref(words, bw):
    """Words moved as whole lines of bw words (bw words/cycle, one line a cycle)."""
    return math.floor(math.ceil(words / bw) * bw + 1e-9)


def _fold_demands(rows, cols, df, t, fr, fc, r_used, c_used, sr, order_a, order_b):
    """{fold line: [fetch positions in demand order]} of A and of B for one fold.

    A (and the os filter) is streamed: fold line l asks for the tile's anti-diagonal l - line0, which is
    the fold's block of one anti-diagonal of the stacked operand, in fetch order. The ws/is stationary tile
    is asked for in R lines, bottom row first (flipped, padding rows first), each row in fetch order.
    """
    line0 = 0 if df == 0 else rows
    a, b = {}, {}
    for (block, i, j), pos in order_a.items():
        if block == fr:
            a.setdefault(line0 + i + j, []).append(pos)
    if df == 0:
        for (block, i, j), pos in order_b.items():
            if block == fc:
                b.setdefault(i + j, []).append(pos)
    else:
        for row_i in range(r_used):
            p0 = sr * fc * cols + (fr * rows + r_used - 1 - row_i) * c_used
            b[rows - r_used + row_i] = list(range(p0, p0 + c_used))
    return {line: sorted(v) for line, v in a.items()}, {line: sorted(v) for line, v in b.items()}


def scalesim_memory_ref(rows, cols, df, m, n, k, sram, bw_a, bw_b, bw_o):
    """Twin of kernels.systolic._scalesim_memory -> (cycles, a_dram_reads, b_dram_reads, dram_writes); bw_a and
    bw_b the read ports of the streamed operand A and of B, bw_o the ofmap port (words/cycle).

    Walks every line of every fold, as SCALE-Sim 3.0.0 does: line l runs at cycle l + (stalls so far); each
    read port checks its demanded words in order and moves its window one prefetch at a time, applying the
    stall rule per prefetch; the ofmap buffer takes the line's outputs one word at a time (a drain starts
    when it holds more than half, the array waits for the drain when the word fills it); the line's stall is
    the largest of the three ports'. Outputs fill lines of bw words; a drain closes the open line and sends
    up to ceil(H / bw) lines, freeing bw words a line less the last line's empty slots (a line closed early
    inside the batch frees a full line, as in SCALE-Sim). With a fractional bw no lines are kept and a
    drain frees min(ceil(H / bw) x bw, held words).
    """
    sr, sc, t = _dims(df, m, n, k)
    srf, scf = math.ceil(sr / rows), math.ceil(sc / cols)
    latency = t + _LATENCY_EXTRA[df](rows, cols)
    half = sram - -(-sram // 2)
    period = {"A": math.ceil(max(half, 1) / bw_a) + 1, "B": math.ceil(max(half, 1) / bw_b) + 1}
    r_last, c_last = sr - (srf - 1) * rows, sc - (scf - 1) * cols
    order_a = diagonal_order_ref(srf, t, rows, r_last)
    order_b = diagonal_order_ref(scf, t, cols, c_last) if df == 0 else None
    ring = {"A": _RingRef(sr * t, sram), "B": _RingRef(sc * t if df == 0 else sr * sc, sram)}
    last = {"A": -1, "B": -1}
    fetches = {"A": 0, "B": 0}
    drain_lines = math.ceil(max(half, 1) / bw_o)
    # ofmap buffer: held words (SCALE-Sim's count), closed lines waiting (words in each), the open line
    cap = int(bw_o) if bw_o == int(bw_o) else 0  # whole lines of bw words; fractional bw keeps no lines
    held, lines, open_words, drain_end = 0.0, [], 0, -1
    clock, writes = 0, 0
    for fc in range(scf):
        c_used = min(cols, sc - fc * cols)
        for fr in range(srf):
            r_used = min(rows, sr - fr * rows)
            demand = dict(zip("AB", _fold_demands(rows, cols, df, t, fr, fc, r_used, c_used, sr, order_a, order_b)))
            if df == 0:
                out_first, out_a, out_b = t - 1 + rows - r_used, r_used, c_used
            else:
                out_first, out_a, out_b = 2 * rows - 1, t, c_used
            writes += out_a * out_b
            stall = 0
            for line in range(latency):
                cycle = clock + line + stall
                worst = 0
                for op in "AB":
                    x = cycle + 1
                    for pos in demand[op].get(line, ()):
                        while not ring[op].hit(pos // ring[op].set_words):
                            ring[op].advance()
                            fetches[op] += 1
                            last[op] += period[op]
                            p = last[op] - x
                            x += p
                            if p > 0:
                                x += p
                    worst = max(worst, x - (cycle + 1))
                u = line - out_first
                words = sum(1 for i in range(out_a) if 0 <= u - i < out_b)
                now = cycle
                for _ in range(words):
                    held += 1
                    if cap:
                        open_words += 1
                        if open_words == cap:
                            lines.append(cap)
                            open_words = 0
                    if now < drain_end:
                        if held >= sram:
                            now = drain_end
                    elif held > half:
                        if not cap:
                            drained = min(drain_lines * bw_o, held)
                            held -= drained
                            drain_end = now + max(math.ceil(drained / bw_o - 1e-9), 1) - 1
                            continue
                        if open_words:
                            lines.append(open_words)
                            open_words = 0
                        sent, lines = lines[:drain_lines], lines[drain_lines:]
                        if sent:
                            held -= (len(sent) - 1) * bw_o + min(sent[-1], bw_o)
                            drain_end = now + len(sent) - 1
                stall += max(worst, now - cycle)
            clock += latency + stall
    fill = -(-sram // 2)
    padded_b = scf * cols * t if df == 0 else sr * scf * cols
    a_reads = _lines_words_ref(min(fill, srf * rows * t), bw_a) + fetches["A"] * _lines_words_ref(half, bw_a)
    b_reads = _lines_words_ref(min(fill, padded_b), bw_b) + fetches["B"] * _lines_words_ref(half, bw_b)
    return clock - 1, a_reads, b_reads, writes


def _port_names(df):
    """Which operand port the streamed operand A and operand B are: A is the filter under is, else the ifmap."""
    return ("filter", "ifmap") if df == 2 else ("ifmap", "filter")


def gemm_cycles_ref(rows, cols, df, m, n, k, mode, sram_words_each, ifmap_bw, filter_bw, ofmap_bw):
    """Twin of kernels.systolic.gemm_cycles: (cycles, stall, sram reads, sram writes, ifmap, filter and
    ofmap DRAM words); bandwidths in words/cycle per port, <= 0 unlimited."""
    bws = {"ifmap": ifmap_bw, "filter": filter_bw, "ofmap": ofmap_bw}
    limited_any = any(b > 0 for b in bws.values())
    if mode == 0 and limited_any and not all(b > 0 for b in bws.values()):
        raise ValueError("scalesim mode takes all three port bandwidths limited (> 0) or all unlimited (0)")
    names = dict(zip(("A", "B"), _port_names(df)))
    if mode == 0 and limited_any and sram_words_each > 0:
        ideal = compute_cycles_ref(rows, cols, df, m, n, k, 0)
        cycles, a_reads, b_reads, writes = scalesim_memory_ref(rows, cols, df, m, n, k, sram_words_each,
                                                               bws[names["A"]], bws[names["B"]], ofmap_bw)
        folds = fold_list_ref(rows, cols, df, m, n, k)
        sram_reads = sum(f["a_words"] + f["b_words"] for f in folds)
        dram = {names["A"]: a_reads, names["B"]: b_reads}
        return (cycles, cycles - ideal, sram_reads, sum(f["out"] for f in folds), dram["ifmap"], dram["filter"],
                writes)
    _, _, t = _dims(df, m, n, k)
    latency = t + _LATENCY_EXTRA[df](rows, cols)
    interval = latency if mode == 0 else max(t, rows)
    sram = sram_words_each if sram_words_each > 0 else 1 << 62
    half = sram // 2
    bw = {port: Fraction(bws[names[port]]) for port in ("A", "B")}
    bw["O"] = Fraction(ofmap_bw)
    if df == 0:
        a_win, b_win, w_first = (0, t + rows - 2), (0, t + cols - 2), t - 1
    else:
        a_win, b_win, w_first = (rows, 2 * rows + t - 2), (0, rows + cols - 2), 2 * rows - 1
    hist = {"A": [], "B": []}
    words = {"A": {}, "B": {}}
    arrive = {"A": Fraction(0), "B": Fraction(0)}
    fetched = {"A": 0, "B": 0}
    sram_reads, sram_writes, dram, dram_writes = 0, 0, {"A": 0, "B": 0}, 0
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
            sram_reads += size
            dram[port] += new
            if bw[port] <= 0 or new == 0:
                continue
            fetched[port] += new
            if mode == 0:
                arrive[port] = max(Fraction(0), (fetched[port] - half) / bw[port])
            else:
                arrive[port] = max(arrive[port], starts[-1] if starts else 0) + new / bw[port]
            earliest = max(earliest, arrive[port] - min(win[1], win[0] + new / bw[port]))
        out_dram = fold["out"]
        if mode == 1 and df != 0 and fold["out"] <= sram and not fold["last_fr"]:
            out_dram = 0
        sram_writes += fold["out"]
        dram_writes += out_dram
        if bw["O"] > 0:
            written += out_dram
            earliest = max(earliest, (written - sram) / bw["O"] - (latency - 1))
            if out_dram:
                drain = max(drain, earliest + w_first) + out_dram / bw["O"]
        starts.append(earliest)
    end = starts[-1] + latency - 1
    if bw["O"] > 0 and mode == 1:
        end = max(end, drain)
    cycles = math.ceil(end)
    by_name = {names["A"]: dram["A"], names["B"]: dram["B"]}
    return (cycles, cycles - compute_cycles_ref(rows, cols, df, m, n, k, mode), sram_reads, sram_writes,
            by_name["ifmap"], by_name["filter"], dram_writes)


def tiled_gemm_cycles_ref(rows, cols, df, m, n, k, mode, sram_words_each, ifmap_bw, filter_bw, ofmap_bw):
    """Twin of tiled_gemm_cycles: try every chunk size the kernel tries, run chunks back to back."""
    bws = (ifmap_bw, filter_bw, ofmap_bw)
    sr, _, t = _dims(df, m, n, k)
    base = gemm_cycles_ref(rows, cols, df, m, n, k, mode, sram_words_each, *bws)
    best = (base[0], base[1], sr, *base[4:])
    if mode == 0 or sram_words_each <= 0 or not any(b > 0 for b in bws) or sr <= rows:
        return best
    fit = (sram_words_each // 2) // max(t, 1) // rows * rows
    sizes = {rows * 2 ** j for j in range(64) if rows * 2 ** j < sr}
    if rows <= fit < sr:
        sizes.add(fit)
    for cand in sorted(sizes):
        chunks = [cand] * (sr // cand) + ([sr % cand] if sr % cand else [])
        total, stall, traffic = 0, 0, [0, 0, 0]
        for size in chunks:
            sub = (size, n, k) if df == 0 else (m, n, size)
            r = gemm_cycles_ref(rows, cols, df, *sub, 1, sram_words_each, *bws)
            total += r[0] + 1
            stall += r[1]
            traffic = [a + b for a, b in zip(traffic, r[4:])]
        if total - 1 < best[0]:
            best = (total - 1, stall, cand, *traffic)
    return best


def multi_array_gemm_cycles_ref(arrays, rows, cols, df, m, n, k, mode, sram_words_each, ifmap_bw, filter_bw,
                                ofmap_bw):
    """Twin of multi_array_gemm_cycles: brute force over (a_m, a_n) splits, DRAM words times arrays used."""
    best = None
    for a_m in range(1, min(arrays, m) + 1):
        a_n = min(arrays // a_m, n)
        used = a_m * a_n
        shares = [Fraction(bw) / used if bw > 0 else 0.0 for bw in (ifmap_bw, filter_bw, ofmap_bw)]
        r = tiled_gemm_cycles_ref(rows, cols, df, math.ceil(m / a_m), math.ceil(n / a_n), k, mode,
                                  sram_words_each, *shares)
        if best is None or r[0] < best[0]:
            best = (r[0], r[1], *(used * w for w in r[3:]))
    return (best[0], best[1], math.ceil(m * n * k / (arrays * rows * cols)), *best[2:])


def shared_gemm_cycles_ref(arrays, rows, cols, df, m, n, k, mode, sram_words_total, ifmap_bw, filter_bw,
                           ofmap_bw):
    """Twin of shared_gemm_cycles: every (a_m, a_n) with a_m a_n <= arrays, pool and bandwidths shared by used."""
    best = None
    for a_m in range(1, min(arrays, m) + 1):
        for a_n in range(1, min(arrays // a_m, n) + 1):
            used = a_m * a_n
            words = max(sram_words_total // used, 1) if sram_words_total > 0 else 0
            shares = [Fraction(bw) / used if bw > 0 else 0.0 for bw in (ifmap_bw, filter_bw, ofmap_bw)]
            r = tiled_gemm_cycles_ref(rows, cols, df, math.ceil(m / a_m), math.ceil(n / a_n), k, mode, words, *shares)
            if best is None or r[0] < best[0]:
                best = (r[0], r[1], *(used * w for w in r[3:]))
    return (best[0], best[1], math.ceil(m * n * k / (arrays * rows * cols)), *best[2:])


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
            total += (kv_heads // arrays) * (gemm_cycles_ref(rows, cols, df, *shape, mode, 0, 0, 0, 0)[0] + 1)
            left = kv_heads % arrays
            if left:
                total += multi_array_gemm_cycles_ref(arrays // left, rows, cols, df, *shape, mode, 0, 0, 0, 0)[0] + 1
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


def attention_work_ref(seq_new, seq_past, q_heads, kv_heads, head_dim, arrays, rows, cols, df, mode, softmax_ops,
                       lanes):
    """Twin of attention_work: the three parts priced one by one."""
    cycles, ideal = attention_cycles_ref(seq_new, seq_past, q_heads, kv_heads, head_dim, arrays, rows, cols, df, mode)
    entries = sum(int(c) * int(p) + int(c) * (int(c) + 1) // 2 for c, p in zip(seq_new, seq_past))
    scores = float(entries) * q_heads
    return cycles, ideal, scores, float(vector_cycles_ref(scores, softmax_ops, lanes))  # float scores: float cycles


def vector_cycles_ref(elements, ops_per_element, lanes):
    """Twin of kernels.vector.vector_cycles: count lane-cycles one at a time in chunks of lanes."""
    work = max(elements, 0) * max(ops_per_element, 0)
    cycles = 0
    while work > 0:
        work -= max(lanes, 1)
        cycles += 1
    return cycles
