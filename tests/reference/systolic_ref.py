"""Slow, obviously-correct pure-Python twins of kernels/systolic.py and kernels/vector.py.

The pipelined twin builds the explicit list of folds with the operand tiles each one touches, decides
SRAM reuse by LRU stack distance (a tile is still resident if the distinct words touched since its last
use fit in half the SRAM), and runs the timing recursion in exact rational arithmetic. The scalesim
limited-bandwidth twin enumerates SCALE-Sim's fetch order element by element, moves the read-buffer
window one prefetch at a time and applies SCALE-Sim's stall update literally, one prefetch at a time.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = [
    "fold_list_ref", "compute_cycles_ref", "gemm_cycles_ref", "scalesim_memory_ref",
    "diagonal_order_ref", "tiled_gemm_cycles_ref",
    "multi_array_gemm_cycles_ref", "shared_gemm_cycles_ref", "attention_cycles_ref", "vector_cycles_ref",
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
        self.sets = max(-(-words // self.set_words), 1)
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


def _walk(ring, q0, q1):
    """Demand sets q0..q1 in order -> (prefetches before q0 is a hit, sets where later ones happen)."""
    first = 0
    while not ring.hit(q0):
        ring.advance()
        first += 1
    crossings = []
    for q in range(q0 + 1, q1 + 1):
        while not ring.hit(q):
            ring.advance()
            crossings.append(q)
    return first, crossings


def scalesim_memory_ref(rows, cols, df, m, n, k, sram, bw):
    """Twin of kernels.systolic._scalesim_memory -> (cycles, a_dram_reads, b_dram_reads, dram_writes)."""
    sr, sc, t = _dims(df, m, n, k)
    srf, scf = math.ceil(sr / rows), math.ceil(sc / cols)
    latency = t + _LATENCY_EXTRA[df](rows, cols)
    half = sram - -(-sram // 2)
    period = math.ceil(max(half, 1) / bw) + 1
    r_last, c_last = sr - (srf - 1) * rows, sc - (scf - 1) * cols
    order_a = diagonal_order_ref(srf, t, rows, r_last)
    ring_a = _RingRef(sr * t, sram)
    if df == 0:
        order_b = diagonal_order_ref(scf, t, cols, c_last)
        ring_b = _RingRef(sc * t, sram)
    else:
        ring_b = _RingRef(sr * sc, sram)
    last = {"A": -1, "B": -1}
    fetches = {"A": 0, "B": 0}
    drain_lines = math.ceil(max(half, 1) / bw)
    quantum, occupied, drain_end = drain_lines * bw, 0.0, -1.0
    clock, writes = 0, 0

    def diag_end(order, block, width_used):
        last_diag = block * t + t + width_used - 2
        return max(p for (b, r, c), p in order.items() if b * t + r + c <= last_diag)

    def stream(order, ring, block, width_used, line0, op, events):
        if ring.fits:
            return
        head = order[(block, 0, 0)]
        tail = diag_end(order, block, width_used)
        first, crossings = _walk(ring, head // ring.set_words, tail // ring.set_words)
        if first:
            events.append((line0, op, first))
        for q in crossings:
            events.append((line0 + (q * ring.set_words - head) * (t + width_used - 2) // max(tail - head, 1),
                           op, 1))

    for fc in range(scf):
        c_used = min(cols, sc - fc * cols)
        for fr in range(srf):
            r_used = min(rows, sr - fr * rows)
            events = []
            if df != 0 and not ring_b.fits:
                for row_i in range(r_used):  # stationary tile, rows read from the last one up
                    p0 = sr * fc * cols + (fr * rows + r_used - 1 - row_i) * c_used
                    first, crossings = _walk(ring_b, p0 // ring_b.set_words, (p0 + c_used - 1) // ring_b.set_words)
                    if first + len(crossings):
                        events.append((rows - r_used + row_i, "B", first + len(crossings)))
            stream(order_a, ring_a, fr, r_used, 0 if df == 0 else rows, "A", events)
            if df == 0:
                stream(order_b, ring_b, fc, c_used, 0, "B", events)
            stall = 0
            for line in sorted({e[0] for e in events}):
                x0 = clock + line + stall + 1
                worst = 0
                for op in ("A", "B"):
                    count = sum(e[2] for e in events if e[0] == line and e[1] == op)
                    x = x0
                    for _ in range(count):
                        last[op] += period
                        p = last[op] - x
                        x += p
                        if p > 0:
                            x += p
                    fetches[op] += count
                    if count:
                        worst = max(worst, x - x0)
                stall += worst
            if df == 0:
                out_first, out_span, out_words = t - 1, r_used + c_used - 1, r_used * c_used
            else:
                out_first, out_span, out_words = 2 * rows - 1, t + c_used - 1, t * c_used
            writes += out_words
            rate = out_words / out_span
            now, left, waited = float(clock + out_first + stall), float(out_words), 0.0
            while left > 0.0:
                if now >= drain_end and occupied > half:
                    occupied -= min(quantum, occupied)
                    drain_end = now + drain_lines - 1
                elif now < drain_end and sram - occupied <= 0.0:
                    waited += drain_end - now
                    now = drain_end
                else:
                    cap = min(sram - occupied, max((drain_end - now) * rate, 1.0)) if now < drain_end \
                        else max(half + 1.0 - occupied, 1.0)
                    amount = min(left, cap)
                    occupied += amount
                    left -= amount
                    now += amount / rate
            stall += math.ceil(waited - 1e-9)
            clock += latency + stall
    fill = -(-sram // 2)
    padded_b = scf * cols * t if df == 0 else sr * scf * cols
    a_reads = min(fill, srf * rows * t) + fetches["A"] * half
    b_reads = min(fill, padded_b) + fetches["B"] * half
    return clock - 1, a_reads, b_reads, writes


def _port_names(df):
    """Which operand port the streamed operand A and operand B are: A is the filter under is, else the ifmap."""
    return ("filter", "ifmap") if df == 2 else ("ifmap", "filter")


def gemm_cycles_ref(rows, cols, df, m, n, k, mode, sram_words_each, ifmap_bw, filter_bw, ofmap_bw):
    """Twin of kernels.systolic.gemm_cycles: (cycles, stall, sram reads, sram writes, ifmap, filter and
    ofmap DRAM words); bandwidths in words/cycle per port, <= 0 unlimited."""
    bws = {"ifmap": ifmap_bw, "filter": filter_bw, "ofmap": ofmap_bw}
    limited_any = any(b > 0 for b in bws.values())
    if mode == 0 and limited_any and len(set(bws.values())) > 1:
        raise ValueError("scalesim mode takes one DRAM bandwidth for all three ports")
    names = dict(zip(("A", "B"), _port_names(df)))
    if mode == 0 and limited_any and sram_words_each > 0:
        ideal = compute_cycles_ref(rows, cols, df, m, n, k, 0)
        cycles, a_reads, b_reads, writes = scalesim_memory_ref(rows, cols, df, m, n, k, sram_words_each, ifmap_bw)
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


def vector_cycles_ref(elements, ops_per_element, lanes):
    """Twin of kernels.vector.vector_cycles: count lane-cycles one at a time in chunks of lanes."""
    work = max(elements, 0) * max(ops_per_element, 0)
    cycles = 0
    while work > 0:
        work -= max(lanes, 1)
        cycles += 1
    return cycles
