"""Cycle-exact systolic-array GEMM timing (the ASIC's matrix engine), with an SRAM/DRAM stall model.

An R x C array computes (M x K) @ (K x N). Each dataflow pins one operand's dimension to the array rows
(Sr), one to the columns (Sc) and streams the third (T) in time, exactly as SCALE-Sim v3 maps a GEMM:

    dataflow  Sr  Sc  T   stationary in the PEs     per-fold latency L (cycles)
    os        M   N   K   outputs                   T + R + C - 2
    ws        K   N   M   weights (filter)          T + 2R + C - 2
    is        K   M   N   inputs (ifmap)            T + 2R + C - 2

with ceil(Sr/R) * ceil(Sc/C) folds, the Sc-fold loop outside the Sr-fold loop.

`scalesim` mode (mode_code 0) lets every fold fill and drain before the next starts, so with memory never
stalling  cycles = folds * L - 1  (SCALE-Sim's "Total Cycles" is the index of the last busy cycle; the
report fields and formulas were read from scalesim 3.0.0's compute/systolic_compute_*.py and
memory/double_buffered_scratchpad_mem.py, and are checked row by row in tests/test_systolic.py).

`pipelined` mode (mode_code 1) overlaps consecutive folds: the next fold's operands enter right behind the
previous fold's, limited only by the R cycles it takes to shift the stationary tile in (ws, is) or the
finished outputs out (os). Folds then issue every max(T, R) cycles and only the last one pays the full
latency:  cycles = (folds - 1) * max(T, R) + L - 1.
Worked example, os on 8 x 8, M = N = K = 16: folds = 2 * 2 = 4, L = 16 + 8 + 8 - 2 = 30.
scalesim: 4 * 30 - 1 = 119 cycles (SCALE-Sim 3.0.0 reports 119). pipelined: 3 * max(16, 8) + 30 - 1 = 77.

Memory. Each operand has its own SRAM of `sram_words_each` words and its own DRAM port, with SCALE-Sim's
port names whatever the dataflow: ifmap (the input activations, M x K), filter (the weights, K x N), ofmap
(the outputs, M x N). `ifmap_words_per_cycle`, `filter_words_per_cycle` and `ofmap_words_per_cycle` give
each port's bandwidth (<= 0 means unlimited), and the kernels report the DRAM words each port moves
(ifmap and filter reads, ofmap writes, re-fetches included). The two modes model memory differently
(docs/systolic.md has both in full):

scalesim mode follows SCALE-Sim 3.0.0's own buffers, quirks included, with each port's bandwidth where
SCALE-Sim takes it (the ifmap and filter read buffers, the ofmap write buffer); all three ports limited
or all three unlimited (a mix raises ValueError: SCALE-Sim has no such configuration). SCALE-Sim runs one
demand line a cycle, and a line stalls by the largest of its ports' stalls. Each read buffer is a ring of
sets (1% of the SRAM each) laid over the operand in SCALE-Sim's fetch order (anti-diagonals of the
stacked fold tiles for streamed operands, row-major tiles for stationary ones); an active window of half
the SRAM moves forward by half the SRAM per prefetch, and a demand behind the window goes all the way
round the ring. Prefetches are chained ceil(H / bw) + 1 cycles apart whatever the array does, and a late
one stalls the array twice its shortfall; the ofmap buffer drains ceil(H / bw) lines at a time and the
array waits when a word fills it during a drain. Fold by fold, with events found in closed form and taken
in line order (O(prefetches + drains + folds)); the first fill is not counted, as in SCALE-Sim's "Total
Cycles". Its cycles, stalls and DRAM reads equal SCALE-Sim's on every limited-bandwidth fixture row.

pipelined mode is the ASIC's own, smarter double buffer: an operand slice is fetched once and reused
from SRAM while the words touched since its last use fit in H = words // 2 (os ifmap / ws ifmap / is
filter reuse across column folds when the whole operand fits; the os filter reuses its column slice
across row folds when the slice fits); stationary tiles are fetched once. A fold may start only when
its operands can arrive in time (first and last word of each port, read uniformly over the fold's read
window), its loads start no earlier than the previous fold's start, the ofmap SRAM must have room for
its outputs (drained at the port rate), ws/is partial sums stay in the ofmap SRAM when a column slice
fits, and the final output drain is counted. Each port's arrivals and drains run at its own bandwidth; an
unlimited port never holds a fold back.
"""

import math

import numpy as np

from asicsim.kernels.attention import causal_entries
from asicsim.kernels.jit import jit
from asicsim.kernels.vector import vector_cycles

__all__ = [
    "DATAFLOW_OS", "DATAFLOW_WS", "DATAFLOW_IS", "MODE_SCALESIM", "MODE_PIPELINED",
    "fold_shape", "fold_latency_cycles", "compute_cycles", "gemm_cycles", "tiled_gemm_cycles",
    "multi_array_gemm_cycles", "shared_gemm_cycles", "attention_cycles", "attention_work", "gemm_cycles_batch",
]

DATAFLOW_OS = 0
DATAFLOW_WS = 1
DATAFLOW_IS = 2
MODE_SCALESIM = 0
MODE_PIPELINED = 1
_UNLIMITED_WORDS = 1 << 62


@jit
def _ceil_div(a, b):
    return (a + b - 1) // b


@jit
def fold_shape(dataflow_code, m, n, k):
    """(Sr, Sc, T): GEMM dims on the array rows, array columns and in time for a dataflow."""
    if dataflow_code == 0:
        return m, n, k
    if dataflow_code == 1:
        return k, n, m
    return k, m, n


@jit
def fold_latency_cycles(rows, cols, dataflow_code, t):
    """Cycles one fold takes alone: operand skew fill, T streaming steps and drain."""
    if dataflow_code == 0:
        return t + rows + cols - 2
    return t + 2 * rows + cols - 2


@jit
def compute_cycles(rows, cols, dataflow_code, m, n, k, mode_code):
    """Cycles with memory never stalling (scalesim: folds * L - 1; pipelined: overlapped folds)."""
    sr, sc, t = fold_shape(dataflow_code, m, n, k)
    folds = _ceil_div(sr, rows) * _ceil_div(sc, cols)
    lat = fold_latency_cycles(rows, cols, dataflow_code, t)
    if mode_code == 0:
        return folds * lat - 1
    return (folds - 1) * max(t, rows) + lat - 1


@jit
def _ports(dataflow_code, a_words, b_words):
    """(ifmap, filter) from the streamed operand A and operand B: A is the ifmap for os/ws, the filter for is."""
    if dataflow_code == 2:
        return b_words, a_words
    return a_words, b_words


@jit
def _traffic_words(rows, cols, dataflow_code, m, n, k, mode_code, sram_words_each):
    """(sram_reads, sram_writes, ifmap_dram_reads, filter_dram_reads, ofmap_dram_writes) in closed form
    (same rules as the fold loop)."""
    sr, sc, t = fold_shape(dataflow_code, m, n, k)
    sr_folds = _ceil_div(sr, rows)
    sc_folds = _ceil_div(sc, cols)
    sram = sram_words_each if sram_words_each > 0 else _UNLIMITED_WORDS
    half = sram // 2
    dram_a = sr * t if sr * t <= half else sc_folds * sr * t
    c_last = sc - (sc_folds - 1) * cols
    if dataflow_code == 0:
        sram_reads = sc_folds * sr * t + sr_folds * sc * t
        sram_writes = sr * sc
        dram_b = 0
        for c_used, count in ((cols, sc_folds - 1), (c_last, 1)):
            dram_b += count * c_used * t * (1 if c_used * t <= half else sr_folds)
        return sram_reads, sram_writes, dram_a, dram_b, sram_writes
    sram_reads = sc_folds * sr * t + sr * sc
    sram_writes = sr_folds * t * sc
    dram_writes = sram_writes
    if mode_code == 1:
        dram_writes = 0
        for c_used, count in ((cols, sc_folds - 1), (c_last, 1)):
            dram_writes += count * t * c_used * (1 if t * c_used <= sram else sr_folds)
    dram_i, dram_f = _ports(dataflow_code, dram_a, sr * sc)
    return sram_reads, sram_writes, dram_i, dram_f, dram_writes


# ---- scalesim mode with limited bandwidth: SCALE-Sim 3.0.0's read-buffer ring and write-buffer drains ----


@jit
def _ramp_sum(y, n):
    """sum over c in [0, n) of max(y - c, 0)."""
    used = min(n, max(y, 0))
    return used * y - used * (used - 1) // 2


@jit
def _clamp_sum(y, n, cap):
    """sum over c in [0, n) of min(max(y - c, 0), cap)."""
    return _ramp_sum(y, n) - _ramp_sum(y - cap, n)


@jit
def _diag_pos(diag, blocks, t, width, width_last):
    """Words before anti-diagonal `diag` in SCALE-Sim's diagonal fetch order of a streamed operand.

    The operand is stacked as `blocks` blocks of t rows x `width` columns (the last block only
    `width_last` columns wide; its padding is skipped) and fetched one anti-diagonal after another.
    """
    full = _clamp_sum(diag, width, blocks * t)
    pad = _clamp_sum(diag - width_last - (blocks - 1) * t, width - width_last, t)
    return full - pad


@jit
def _ring_need(q, start, sets, active, step):
    """Read-buffer ring: advances (prefetches) that bring set q into the active window -> (k, start)."""
    u = (q - start) % sets
    if u < active:
        return 0, start
    k = (u - active) // step + 1
    return k, (start + k * step) % sets


@jit
def _ring_forward(q0, q1, start, sets, active, step):
    """Demand moving up from set q0 (in the window) to q1 -> (crossings, first crossing set, start)."""
    first = q0 + active - (q0 - start) % sets
    if q1 < first:
        return 0, first, start
    count = 1 + (q1 - first) // step
    return count, first, (start + count * step) % sets


@jit
def _chain(x, last, period, k):
    """k back-to-back prefetches demanded at clock x -> (clock after, completion of the last one).

    SCALE-Sim chains each prefetch `period` cycles after the previous one finished, whatever the
    array is doing, and on a late one adds the shortfall twice (p = L - x; x += p; if p > 0: x += p).
    """
    ek = max(period - (x - last), 0)
    if k > 1:
        e1 = min(ek, period)
        ek = e1 if (k - 1) % 2 == 0 else period - e1
    done = last + k * period
    return done + ek, done


@jit
def _ring_sets(words, sram):
    """(sets, active, step, set_words, fits) of one read buffer holding `words` words.

    SCALE-Sim closes a set after every `set_words` words and then opens one more, so the ring has
    words // set_words + 1 sets (an empty last one when set_words divides words)."""
    set_words = (sram + 99) // 100
    active_words = (sram + 1) // 2
    sets = words // set_words + 1
    active = _ceil_div(active_words, set_words)
    step = max(_ceil_div(sram - active_words, set_words), 1)
    fits = sets <= active
    active = min(active, sets)
    step = min(step, max(sets - active, 1))
    return sets, active, step, set_words, fits


@jit
def _block_diag_end(diag, block, blocks, t, width, width_last):
    """Fetch position of the last word of `block` on anti-diagonal `diag` (see _diag_pos).

    Along an anti-diagonal the fetch goes from the highest row down, so the block's words end where
    the words of the rows above it (rows < block * t, all in full-width blocks) begin.
    """
    above = max(min(diag, block * t - 1) - max(diag - width + 1, 0) + 1, 0)
    return _diag_pos(diag + 1, blocks, t, width, width_last) - 1 - above


@jit
def _stream_line(pos, lo, block, blocks, t, width, width_last, used):
    """First line (tile anti-diagonal, 0-based, >= lo) of a streamed fold whose demand reaches fetch position
    `pos`.

    Line l asks for the block's words on anti-diagonal block * t + l, in fetch order; the last line is
    t + used - 2. Mid-fold a line asks for `used` words, so the search starts from that estimate.
    """
    hi = t + used - 2
    guess = lo + max(pos - _block_diag_end(block * t + lo, block, blocks, t, width, width_last), 0) // max(used, 1)
    if guess < hi:
        if _block_diag_end(block * t + guess, block, blocks, t, width, width_last) >= pos:
            if guess == lo or _block_diag_end(block * t + guess - 1, block, blocks, t, width, width_last) < pos:
                return guess
            hi = guess - 1
        else:
            lo = guess + 1
            if lo < hi and _block_diag_end(block * t + lo, block, blocks, t, width, width_last) >= pos:
                return lo
    while lo < hi:
        mid = (lo + hi) // 2
        if _block_diag_end(block * t + mid, block, blocks, t, width, width_last) >= pos:
            hi = mid
        else:
            lo = mid + 1
    return lo


@jit
def _stream_next(gap, gap_sets, step, set_words, lo, block, blocks, t, width, width_last, used):
    """Next window moves of a streamed operand in one fold, from line lo on -> (line, moves), line -1 if none.

    The window misses the sets gap .. gap + gap_sets - 1 (in the demand's frame; each move shifts them by
    `step`). Line l asks for the block's words on anti-diagonal block * t + l, a run of consecutive fetch
    positions, and lines skip the other blocks' words in between: the first line reaching the gap either
    lands in it (moves until the gap is past the line's last set) or jumps over it, and then the window
    covers the rest of the fold.
    """
    last = t + used - 2
    rel = _stream_line(gap * set_words, lo, block, blocks, t, width, width_last, used)
    end = _block_diag_end(block * t + rel, block, blocks, t, width, width_last)
    if rel > last or end < gap * set_words:
        return np.int64(-1), 0
    words = min(rel + 1, used, t, last + 1 - rel)  # the block's words on this anti-diagonal
    if (end - words + 1) // set_words >= gap + gap_sets:
        return np.int64(-1), 0
    return rel, (end // set_words - gap) // step + 1


@jit
def _line_words(words, bw):
    """Words SCALE-Sim moves for `words` words on a port of bw words/cycle: whole lines of bw words."""
    return np.int64(math.floor(math.ceil(words / bw) * bw + 1e-9))


@jit
def _trap_words(u, a, b):
    """Outputs of an a x b tile written by the end of line u of its skewed write-out (word (i, j) on line i + j)."""
    if u < 0:
        return np.int64(0)
    return _clamp_sum(u + 1, b, a)


@jit
def _trap_line(e, a, b):
    """Line of the e-th output (1-based) of an a x b tile's skewed write-out."""
    lo = 0
    hi = a + b - 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _trap_words(mid, a, b) >= e:
            hi = mid
        else:
            lo = mid + 1
    return lo


@jit
def _ofmap_advance(limit, stored, stall, clock, out_first, a, b, sram, half, held, drain_end, open_words, tail_lines,
                   cap):
    """Write a fold's outputs on its lines before `limit`, up to the next drain -> (outputs stored, fold stall,
    held words, open line's words, full lines since the last early-closed line, cycle a drain starts or -1).

    Line u of the fold runs at cycle clock + u + stall. While a drain runs, the word that fills the SRAM
    makes the array wait until the drain ends; otherwise a drain starts with the word that leaves more
    than `half` words held. Outputs fill lines of `cap` words (cap = 0: no lines kept).
    """
    total = a * b
    if limit <= out_first:
        return stored, stall, held, open_words, tail_lines, np.int64(-1)
    while stored < total:
        reach = _trap_words(limit - 1 - out_first, a, b)  # outputs on lines before `limit`
        if reach <= stored:
            break
        # outputs on lines that run before the drain in progress ends
        early = _trap_words(min(drain_end - clock - stall, limit) - 1 - out_first, a, b) - stored
        if early > 0:
            count = min(max(np.int64(math.ceil(sram - held - 1e-9)), 1), early)
        else:
            count = min(max(np.int64(math.floor(half - held + 1e-9)) + 1, 1), reach - stored)
        stored += count
        held += count
        if cap > 0:
            tail_lines += (open_words + count) // cap
            open_words = (open_words + count) % cap
        if early > 0:
            if held >= sram:  # this word filled the SRAM: wait for the drain
                stall = drain_end - clock - (out_first + _trap_line(stored, a, b))
        elif held > half:
            return stored, stall, held, open_words, tail_lines, clock + out_first + _trap_line(stored, a, b) + stall
    return stored, stall, held, open_words, tail_lines, np.int64(-1)


@jit
def _ofmap_drain(seg_full, seg_part, first, last, held, open_words, tail_lines, drain_lines, cap, bw):
    """A drain: close the open line early and send up to drain_lines lines -> (first, last, held words, lines sent,
    tail_lines).

    Closed lines wait in order: segments first..last - 1 of the ring (seg_full full lines, then one line of
    seg_part words closed early), then tail_lines full lines (the ring needs a free slot when the open line
    is not empty). SCALE-Sim frees bw words per line sent less the last line's empty slots, so a line closed
    early in the middle of a batch frees a full line's worth and the held count drifts below the words held.
    With cap = 0 no lines are kept and a drain frees min(drain_lines x bw, held words).
    """
    if cap == 0:
        drained = min(drain_lines * bw, held)
        return first, last, held - drained, max(np.int64(math.ceil(drained / bw - 1e-9)), 1), tail_lines
    size = seg_full.shape[0]
    if open_words > 0:
        seg_full[last % size] = tail_lines
        seg_part[last % size] = open_words
        last += 1
        tail_lines = 0
    left = drain_lines
    sent = 0
    last_words = cap
    while left > 0 and first < last:
        s = first % size
        take = min(left, seg_full[s])
        seg_full[s] -= take
        left -= take
        sent += take
        if take > 0:
            last_words = cap
        if left > 0:
            left -= 1
            sent += 1
            last_words = seg_part[s]
            first += 1
    take = min(left, tail_lines)
    tail_lines -= take
    sent += take
    if take > 0:
        last_words = cap
    if sent > 0:
        held -= (sent - 1) * bw + min(last_words, bw)
    return first, last, held, sent, tail_lines


@jit
def _ofmap_grow(first, last, seg_full, seg_part):
    """The segment ring at twice its size, segment `first` moved to slot 0."""
    size = seg_full.shape[0]
    grown_full = np.zeros(2 * size, dtype=np.int64)
    grown_part = np.zeros(2 * size, dtype=np.int64)
    for j in range(last - first):
        grown_full[j] = seg_full[(first + j) % size]
        grown_part[j] = seg_part[(first + j) % size]
    return grown_full, grown_part


@jit
def _scalesim_memory(rows, cols, dataflow_code, m, n, k, sram, bw_a, bw_b, bw_o):
    """SCALE-Sim 3.0.0's limited-bandwidth timing, fold by fold -> (cycles, a_dram_reads, b_dram_reads,
    dram_writes), A the streamed operand and B the other read operand (`_ports` names them), each read
    port at its own words/cycle (bw_a, bw_b) and the ofmap port at bw_o.

    SCALE-Sim runs one demand line a cycle, shifted by the stalls so far; a line's stall is the largest of
    its ifmap, filter and ofmap stalls. Each read buffer is a ring of 1%-of-SRAM sets over the operand in
    SCALE-Sim's fetch order, with an active window of half the SRAM that moves forward by half the SRAM
    per prefetch; a demand behind the window goes all the way round the ring (docs/systolic.md).
    Prefetches are chained, each ceil(H / bw) + 1 cycles at its port's bw. The ofmap buffer drains
    ceil(H / bw_o) lines when it holds more than half, and stalls the array when a word fills it during
    a drain. Each fold's events (window moves, drains, full-buffer waits) are found in closed form and
    taken in line order.
    """
    sr, sc, t = fold_shape(dataflow_code, m, n, k)
    sr_folds = _ceil_div(sr, rows)
    sc_folds = _ceil_div(sc, cols)
    lat = fold_latency_cycles(rows, cols, dataflow_code, t)
    half_words = sram - (sram + 1) // 2
    a_period = np.int64(math.ceil(max(half_words, 1) / bw_a)) + 1
    b_period = np.int64(math.ceil(max(half_words, 1) / bw_b)) + 1
    r_last = sr - (sr_folds - 1) * rows
    c_last = sc - (sc_folds - 1) * cols
    a_sets, a_active, a_step, a_set_words, a_fits = _ring_sets(sr * t, sram)
    b_words = sc * t if dataflow_code == 0 else sr * sc
    b_sets, b_active, b_step, b_set_words, b_fits = _ring_sets(b_words, sram)
    a_start = 0
    b_start = 0
    a_last = np.int64(-1)
    b_last = np.int64(-1)
    a_fetches = 0
    b_fetches = 0
    a_line0 = 0 if dataflow_code == 0 else rows
    drain_lines = np.int64(math.ceil(max(half_words, 1) / bw_o))
    # ofmap buffer: lines of cap words (SCALE-Sim takes whole words/cycle; a fractional bw keeps no lines),
    # the held-word count SCALE-Sim keeps, the drain in progress, the closed lines waiting (_ofmap_drain)
    cap = np.int64(bw_o) if bw_o == math.floor(bw_o) else np.int64(0)
    held = 0.0
    drain_end = np.int64(-1)
    open_words = np.int64(0)
    tail_lines = np.int64(0)
    seg_first = np.int64(0)
    seg_last = np.int64(0)
    seg_full = np.zeros(8, dtype=np.int64)
    seg_part = np.zeros(8, dtype=np.int64)
    clock = np.int64(0)
    dram_writes = 0
    for fc in range(sc_folds):
        c_used = min(cols, sc - fc * cols)
        for fr in range(sr_folds):
            r_used = min(rows, sr - fr * rows)
            stall = np.int64(0)
            # streamed operand A (os/ws ifmap, is filter): block fr in diagonal fetch order
            # after the jump to its first word (a_k moves), the window misses the a_sets - a_active sets from
            # a_gap on (in the demand's frame)
            a_k = 0
            a_gap = np.int64(0)
            if not a_fits:
                q = _diag_pos(fr * t, sr_folds, t, rows, r_last) // a_set_words
                a_k, a_start = _ring_need(q, a_start, a_sets, a_active, a_step)
                a_gap = q + a_active - (q - a_start) % a_sets
            # operand B: os filter streamed like A; ws filter / is ifmap stationary, rows read bottom row first
            b_k = 0
            b_gap = np.int64(0)
            if dataflow_code == 0:
                if not b_fits:
                    q = _diag_pos(fc * t, sc_folds, t, cols, c_last) // b_set_words
                    b_k, b_start = _ring_need(q, b_start, b_sets, b_active, b_step)
                    b_gap = q + b_active - (q - b_start) % b_sets
            elif not b_fits:
                # the tile's R lines come before any output line (2R - 1) or streamed line (R)
                base = sr * fc * cols
                lo = (base + fr * rows * c_used) // b_set_words
                hi = (base + (fr * rows + r_used) * c_used - 1) // b_set_words
                top = base + (fr * rows + r_used - 1) * c_used
                row_i = 0 if (lo - b_start) % b_sets + hi - lo >= b_active else r_used
                while row_i < r_used:
                    p0 = top - row_i * c_used
                    q = p0 // b_set_words
                    kk, b_start = _ring_need(q, b_start, b_sets, b_active, b_step)
                    nn, _, b_start = _ring_forward(q, (p0 + c_used - 1) // b_set_words, b_start, b_sets,
                                                   b_active, b_step)
                    if kk + nn > 0:
                        x = clock + rows - r_used + row_i + stall + 1
                        after, b_last = _chain(x, b_last, b_period, kk + nn)
                        b_fetches += kk + nn
                        stall += max(after - x, 0)
                    # rows below stay hits while they start at or above the window's first set
                    u = (q - b_start) % b_sets
                    nxt = row_i + 1
                    if u < b_active:
                        nxt = max(nxt, (top - (q - u) * b_set_words) // c_used + 1)
                    row_i = nxt
            # outputs: an a x b tile written skewed from line out_first (os: the flipped tile's padding first)
            if dataflow_code == 0:
                out_first, out_a, out_b = t - 1 + rows - r_used, r_used, c_used
            else:
                out_first, out_a, out_b = 2 * rows - 1, t, c_used
            dram_writes += out_a * out_b
            stored = np.int64(0)
            # streamed prefetches of A and (os) B and the outputs, line by line: a read line's outputs are
            # written at the line's cycle, and the line stalls by the largest of its ports' stalls
            never = np.int64(1) << 62
            la, ka = (np.int64(a_line0), a_k) if a_k > 0 else (never, 0)
            if ka == 0 and not a_fits:
                rel, ka = _stream_next(a_gap, a_sets - a_active, a_step, a_set_words, 0, fr, sr_folds, t, rows,
                                       r_last, r_used)
                la = a_line0 + rel if rel >= 0 else never
            lb, kb = (np.int64(0), b_k) if b_k > 0 else (never, 0)
            if kb == 0 and dataflow_code == 0 and not b_fits:
                rel, kb = _stream_next(b_gap, b_sets - b_active, b_step, b_set_words, 0, fc, sc_folds, t, cols,
                                       c_last, c_used)
                lb = rel if rel >= 0 else never
            line = min(la, lb, lat)
            at_read = False  # the reads of `line` are done, its outputs not yet
            before = np.int64(0)
            worst = np.int64(0)
            while True:
                limit = line + 1 if at_read else line
                stored, stall, held, open_words, tail_lines, drain_at = _ofmap_advance(
                    limit, stored, stall, clock, out_first, out_a, out_b, sram, half_words, held, drain_end,
                    open_words, tail_lines, cap)
                if drain_at >= 0:
                    if seg_last - seg_first == seg_full.shape[0]:
                        seg_full, seg_part = _ofmap_grow(seg_first, seg_last, seg_full, seg_part)
                        seg_last -= seg_first
                        seg_first = 0
                    seg_first, seg_last, held, sent, tail_lines = _ofmap_drain(
                        seg_full, seg_part, seg_first, seg_last, held, open_words, tail_lines, drain_lines, cap, bw_o)
                    open_words = 0
                    drain_end = drain_at + sent - 1
                    continue
                if at_read:
                    stall = before + max(worst, stall - before)
                    at_read = False
                    line = min(la, lb, lat)
                    continue
                if line >= lat:
                    break
                before = stall
                x = clock + line + stall + 1
                worst = np.int64(0)
                if ka > 0 and la == line:
                    after, a_last = _chain(x, a_last, a_period, ka)
                    a_fetches += ka
                    worst = max(worst, after - x)
                    if la > a_line0:  # forward moves (the jump to the first word is on line a_line0)
                        a_gap += ka * a_step
                        a_start = (a_start + ka * a_step) % a_sets
                    rel, ka = _stream_next(a_gap, a_sets - a_active, a_step, a_set_words, la - a_line0 + 1, fr,
                                           sr_folds, t, rows, r_last, r_used)
                    la = a_line0 + rel if rel >= 0 else never
                if kb > 0 and lb == line:
                    after, b_last = _chain(x, b_last, b_period, kb)
                    b_fetches += kb
                    worst = max(worst, after - x)
                    if lb > 0:
                        b_gap += kb * b_step
                        b_start = (b_start + kb * b_step) % b_sets
                    rel, kb = _stream_next(b_gap, b_sets - b_active, b_step, b_set_words, lb + 1, fc, sc_folds, t,
                                           cols, c_last, c_used)
                    lb = rel if rel >= 0 else never
                at_read = True
            clock += lat + stall
    # SCALE-Sim's first fill reads half the SRAM, or the operand with its fold padding if smaller; every
    # transfer is whole lines of the port's words/cycle
    a_padded = sr_folds * rows * t
    b_padded = sc_folds * cols * t if dataflow_code == 0 else sr * sc_folds * cols
    a_reads = _line_words(min((sram + 1) // 2, a_padded), bw_a) + a_fetches * _line_words(half_words, bw_a)
    b_reads = _line_words(min((sram + 1) // 2, b_padded), bw_b) + b_fetches * _line_words(half_words, bw_b)
    return clock - 1, a_reads, b_reads, dram_writes


@jit
def gemm_cycles(rows, cols, dataflow_code, m, n, k, mode_code, sram_words_each, ifmap_words_per_cycle,
                filter_words_per_cycle, ofmap_words_per_cycle):
    """One array, one GEMM -> (cycles, stall_cycles, sram_reads, sram_writes, ifmap_dram_reads,
    filter_dram_reads, ofmap_dram_writes).

    Each operand port (ifmap = input activations, filter = weights, ofmap = outputs, whatever the dataflow)
    has its own DRAM bandwidth in words/cycle, <= 0 meaning unlimited. The DRAM counts are the words each
    port moves, re-fetches included. scalesim mode takes each port's bandwidth as SCALE-Sim 3.0.0 does
    (ifmap and filter read buffers, ofmap write buffer), all three limited or all three unlimited:
    SCALE-Sim has no unlimited port beside limited ones, so a mix raises ValueError. Unlimited bandwidth is
    O(1); limited bandwidth walks the folds with closed-form steps (pipelined: O(folds); scalesim:
    O(folds + prefetches + drains)), never cycle by cycle. See the module docstring.
    """
    ideal = compute_cycles(rows, cols, dataflow_code, m, n, k, mode_code)
    bw_i = ifmap_words_per_cycle
    bw_f = filter_words_per_cycle
    bw_o = ofmap_words_per_cycle
    limited = bw_i > 0.0 or bw_f > 0.0 or bw_o > 0.0
    if mode_code == 0 and limited and not (bw_i > 0.0 and bw_f > 0.0 and bw_o > 0.0):
        raise ValueError("scalesim mode takes all three port bandwidths limited (> 0) or all unlimited (0)")
    if not limited or (mode_code == 0 and sram_words_each <= 0):
        sram_r, sram_w, dram_i, dram_f, dram_o = _traffic_words(rows, cols, dataflow_code, m, n, k, mode_code,
                                                                sram_words_each)
        return ideal, ideal - ideal, sram_r, sram_w, dram_i, dram_f, dram_o
    if mode_code == 0:
        sram_r, sram_w, _, _, _ = _traffic_words(rows, cols, dataflow_code, m, n, k, 0, sram_words_each)
        bw_a, bw_b = _ports(dataflow_code, bw_i, bw_f)
        cycles, a_reads, b_reads, dram_o = _scalesim_memory(rows, cols, dataflow_code, m, n, k, sram_words_each,
                                                            bw_a, bw_b, bw_o)
        dram_i, dram_f = _ports(dataflow_code, a_reads, b_reads)
        return cycles, cycles - ideal, sram_r, sram_w, dram_i, dram_f, dram_o
    sr, sc, t = fold_shape(dataflow_code, m, n, k)
    sr_folds = _ceil_div(sr, rows)
    sc_folds = _ceil_div(sc, cols)
    lat = fold_latency_cycles(rows, cols, dataflow_code, t)
    interval = max(t, rows)
    sram = sram_words_each if sram_words_each > 0 else _UNLIMITED_WORDS
    half = sram // 2
    bw_a, bw_b = _ports(dataflow_code, bw_i, bw_f)  # the swap is its own inverse: (A, B) from (ifmap, filter)
    # Read windows (first, last cycle offset in a fold) of the streamed operand A (tile r x T) and of
    # operand B (os: filter c x T streamed; ws/is: stationary r x c tile), and the ofmap write window.
    if dataflow_code == 0:
        a_first, a_last = 0, t + rows - 2
        b_first, b_last = 0, t + cols - 2
        w_first = t - 1
    else:
        a_first, a_last = rows, 2 * rows + t - 2
        b_first, b_last = 0, rows + cols - 2
        w_first = 2 * rows - 1
    a_fits = sr * t <= half
    sram_reads = 0
    sram_writes = 0
    a_reads = 0
    b_reads = 0
    dram_writes = 0
    cum_w = 0.0
    arrive_a = 0.0
    arrive_b = 0.0
    drain = 0.0
    start = 0.0
    prev_start = 0.0
    fold = 0
    for fc in range(sc_folds):
        c_used = min(cols, sc - fc * cols)
        for fr in range(sr_folds):
            r_used = min(rows, sr - fr * rows)
            a_words = r_used * t
            if dataflow_code == 0:
                b_words = c_used * t
                b_new = b_words if (fr == 0 or b_words > half) else 0
                out_words = r_used * c_used
                out_dram = out_words
            else:
                b_words = r_used * c_used
                b_new = b_words
                out_words = t * c_used
                out_dram = out_words
                if t * c_used <= sram and fr < sr_folds - 1:
                    out_dram = 0
            a_new = a_words if (fc == 0 or not a_fits) else 0
            sram_reads += a_words + b_words
            sram_writes += out_words
            a_reads += a_new
            b_reads += b_new
            dram_writes += out_dram
            earliest = 0.0 if fold == 0 else prev_start + interval
            cum_w += out_dram
            if bw_a > 0.0:
                arrive_a = max(arrive_a, prev_start) + a_new / bw_a
                if a_new > 0:
                    earliest = max(earliest, arrive_a - min(a_last, a_first + a_new / bw_a))
            if bw_b > 0.0:
                arrive_b = max(arrive_b, prev_start) + b_new / bw_b
                if b_new > 0:
                    earliest = max(earliest, arrive_b - min(b_last, b_first + b_new / bw_b))
            if bw_o > 0.0:
                earliest = max(earliest, (cum_w - sram) / bw_o - (lat - 1))
            start = earliest
            if out_dram > 0 and bw_o > 0.0:
                drain = max(drain, start + w_first) + out_dram / bw_o
            prev_start = start
            fold += 1
    end = max(start + lat - 1, drain)
    cycles = np.int64(math.ceil(end - 1e-9))
    dram_i, dram_f = _ports(dataflow_code, a_reads, b_reads)
    return cycles, cycles - ideal, sram_reads, sram_writes, dram_i, dram_f, dram_writes


@jit
def _chunk_dims(dataflow_code, m, n, k, size):
    """(m, n, k) of a tile-search chunk: `size` of the dimension on the array rows (M for os, K for ws and is)."""
    if dataflow_code == 0:
        return size, n, k
    return m, n, size


@jit
def tiled_gemm_cycles(rows, cols, dataflow_code, m, n, k, mode_code, sram_words_each, ifmap_words_per_cycle,
                      filter_words_per_cycle, ofmap_words_per_cycle):
    """Best of a small tile search -> (cycles, stall_cycles, tile_sr, ifmap_dram_reads, filter_dram_reads,
    ofmap_dram_writes), the DRAM words those of the chosen tiling.

    Pipelined mode may cut the row-mapped dimension Sr into chunks (multiples of R) run one after the
    other, so the streamed operand's chunk fits half the SRAM and is reused across column folds. The chunk
    sizes tried are every R * 2^j below Sr and, when R <= fit < Sr, fit = the largest multiple of R whose
    streamed chunk (fit x T words) fits H; ascending, the first of equally fast tilings kept.
    Scalesim mode runs the GEMM untiled, as SCALE-Sim does. Port bandwidths as in gemm_cycles.
    """
    bw_i = ifmap_words_per_cycle
    bw_f = filter_words_per_cycle
    bw_o = ofmap_words_per_cycle
    sr, sc, t = fold_shape(dataflow_code, m, n, k)
    res = gemm_cycles(rows, cols, dataflow_code, m, n, k, mode_code, sram_words_each, bw_i, bw_f, bw_o)
    best_cycles, best_stall, best_tile = res[0], res[1], sr
    best_i, best_f, best_o = res[4], res[5], res[6]
    limited = bw_i > 0.0 or bw_f > 0.0 or bw_o > 0.0
    if mode_code == 0 or sram_words_each <= 0 or not limited or sr <= rows:
        return best_cycles, best_stall, best_tile, best_i, best_f, best_o
    # Candidate chunk sizes, in ascending order: every R * 2^j below Sr, and `fit` (the largest multiple of
    # R whose streamed chunk fits H) when R <= fit < Sr. `extra` holds fit until it is its turn, unless it is
    # already one of the powers.
    fit = (sram_words_each // 2) // max(t, 1) // rows * rows
    extra = fit if rows < fit < sr and (fit // rows) & (fit // rows - 1) != 0 else 0
    power = rows
    while power < sr or extra > 0:
        if extra > 0 and (extra < power or power >= sr):
            cand = extra
            extra = 0
        else:
            cand = power
            power *= 2
        full = sr // cand
        rest = sr - full * cand
        # Pruning, exact: each chunk takes at least its compute cycles (`compute_cycles`, memory never stalling), so
        # a tiling whose chunks' bound already reaches the best cycles cannot replace it (most often the untiled
        # GEMM without stalls, which chunking only adds fills and drains to): its chunks are not walked.
        bound = np.int64(0)
        for part in range(2):
            size = cand if part == 0 else rest
            if size > 0:
                cm, cn, ck = _chunk_dims(dataflow_code, m, n, k, size)
                bound += (full if part == 0 else 1) * (compute_cycles(rows, cols, dataflow_code, cm, cn, ck, 1) + 1)
        if bound - 1 >= best_cycles:
            continue
        total = np.int64(0)
        stall = np.int64(0)
        dram_i = np.int64(0)
        dram_f = np.int64(0)
        dram_o = np.int64(0)
        for part in range(2):
            size = cand if part == 0 else rest
            times = full if part == 0 else 1
            if size == 0:
                continue
            cm, cn, ck = _chunk_dims(dataflow_code, m, n, k, size)
            r = gemm_cycles(rows, cols, dataflow_code, cm, cn, ck, 1, sram_words_each, bw_i, bw_f, bw_o)
            total += times * (r[0] + 1)
            stall += times * r[1]
            dram_i += times * r[4]
            dram_f += times * r[5]
            dram_o += times * r[6]
        if total - 1 < best_cycles:
            best_cycles, best_stall, best_tile = total - 1, stall, cand
            best_i, best_f, best_o = dram_i, dram_f, dram_o
    return best_cycles, best_stall, best_tile, best_i, best_f, best_o


@jit
def multi_array_gemm_cycles(arrays, rows, cols, dataflow_code, m, n, k, mode_code, sram_words_each,
                            ifmap_words_per_cycle, filter_words_per_cycle, ofmap_words_per_cycle):
    """Split one GEMM over `arrays` identical arrays -> (cycles, stall_cycles, ideal_cycles, ifmap_dram_reads,
    filter_dram_reads, ofmap_dram_writes).

    Searches every split of M into a_m parts and N into a_n parts with a_m * a_n <= arrays (each array
    its own SRAM; each port's DRAM words/cycle shared evenly by the arrays in use) and the tile search per
    array. ideal_cycles = ceil(m n k / (arrays R C)), the MAC bound. The DRAM words are all arrays' of the
    fastest split: the simulated array's (each part rounded up) times the arrays in use.
    """
    ideal = _ceil_div(m * n * k, max(arrays, 1) * rows * cols)
    best = (np.int64(-1), np.int64(0), np.int64(0), np.int64(0), np.int64(0))
    for a_m in range(1, max(arrays, 1) + 1):
        if a_m > m:
            break
        r = _split_cycles(rows, cols, dataflow_code, m, n, k, mode_code, a_m, min(max(arrays, 1) // a_m, n),
                          sram_words_each, ifmap_words_per_cycle, filter_words_per_cycle, ofmap_words_per_cycle)
        if best[0] < 0 or r[0] < best[0]:
            best = r
    return best[0], best[1], ideal, best[2], best[3], best[4]


@jit
def _split_cycles(rows, cols, dataflow_code, m, n, k, mode_code, a_m, a_n, sram_words_each, ifmap_words_per_cycle,
                  filter_words_per_cycle, ofmap_words_per_cycle):
    """One array's part of an a_m x a_n split, each port's words/cycle shared by the arrays in use -> (cycles,
    stall cycles, and all arrays' ifmap, filter and ofmap DRAM words)."""
    used = a_m * a_n
    bw_i = ifmap_words_per_cycle / used if ifmap_words_per_cycle > 0.0 else 0.0
    bw_f = filter_words_per_cycle / used if filter_words_per_cycle > 0.0 else 0.0
    bw_o = ofmap_words_per_cycle / used if ofmap_words_per_cycle > 0.0 else 0.0
    r = tiled_gemm_cycles(rows, cols, dataflow_code, _ceil_div(m, a_m), _ceil_div(n, a_n), k, mode_code,
                          sram_words_each, bw_i, bw_f, bw_o)
    return r[0], r[1], used * r[3], used * r[4], used * r[5]


@jit
def shared_gemm_cycles(arrays, rows, cols, dataflow_code, m, n, k, mode_code, sram_words_total,
                       ifmap_words_per_cycle, filter_words_per_cycle, ofmap_words_per_cycle):
    """One GEMM on up to `arrays` arrays that share one SRAM pool and one DRAM port per operand -> (cycles,
    stall_cycles, ideal_cycles, ifmap_dram_reads, filter_dram_reads, ofmap_dram_writes).

    Tries every split a_m x a_n <= arrays (multi_array_gemm_cycles tries only the widest a_n for each a_m);
    the arrays in use share each operand's pool (`sram_words_total` words, <= 0 unlimited) and each port's
    words/cycle evenly, and each runs the tile search. A chip with more arrays can run every split a smaller
    one can, with the same shares, so cycles never rise with `arrays`. DRAM words as multi_array_gemm_cycles.
    """
    ideal = _ceil_div(m * n * k, max(arrays, 1) * rows * cols)
    most = max(arrays, 1)
    # Pruning, exact: a split's cycles are at least the compute cycles of one array's part (`compute_cycles`: its
    # folds issued max(T, R) cycles apart, the last one's latency after; a memory stall only delays, and the tile
    # search's chunks, multiples of R on the rows, add up to the same folds each with its own latency). The splits
    # are tried in order of that bound, and one whose bound exceeds the best cycles so far (or equals them, coming
    # after the best in the full search's order) cannot be the full search's first fastest: the result is the full
    # search's, ties included, from a few of its splits.
    count = 0
    for a_m in range(1, min(most, m) + 1):
        count += min(most // a_m, n)
    bounds = np.empty(count, dtype=np.int64)
    splits = np.empty((count, 2), dtype=np.int64)
    i = 0
    for a_m in range(1, min(most, m) + 1):
        for a_n in range(1, min(most // a_m, n) + 1):
            bounds[i] = compute_cycles(rows, cols, dataflow_code, _ceil_div(m, a_m), _ceil_div(n, a_n), k, mode_code)
            splits[i, 0] = a_m
            splits[i, 1] = a_n
            i += 1
    best = (np.int64(-1), np.int64(0), np.int64(0), np.int64(0), np.int64(0))
    best_at = -1
    for i in np.argsort(bounds):
        if best_at >= 0 and (bounds[i] > best[0] or (bounds[i] == best[0] and i > best_at)):
            if bounds[i] > best[0]:
                break  # every split after it in bound order is bounded as high
            continue
        a_m, a_n = splits[i, 0], splits[i, 1]
        words = max(sram_words_total // (a_m * a_n), 1) if sram_words_total > 0 else 0
        r = _split_cycles(rows, cols, dataflow_code, m, n, k, mode_code, a_m, a_n, words, ifmap_words_per_cycle,
                          filter_words_per_cycle, ofmap_words_per_cycle)
        if best_at < 0 or r[0] < best[0] or (r[0] == best[0] and i < best_at):
            best = r
            best_at = i
    return best[0], best[1], ideal, best[2], best[3], best[4]


@jit
def attention_cycles(seq_new, seq_past, q_heads, kv_heads, head_dim, arrays, rows, cols, dataflow_code,
                     mode_code):
    """QK^T and PV GEMMs of every sequence and KV head -> (cycles, ideal_cycles); memory unlimited.

    Grouped-query attention: the g = q_heads / kv_heads query heads that share a KV head are stacked, so a
    chunk of c new tokens after p cached ones gives a (c g) x (p + c) score GEMM and a (c g) x head_dim
    output GEMM per KV head. The causal upper triangle is computed and masked, as a dense array does;
    ideal_cycles counts only the unmasked MACs (c p + c (c + 1) / 2 scores per head).
    scalesim mode: every GEMM runs alone with its own fill and drain, spread over the arrays in rounds.
    pipelined mode: the GEMMs' folds form one stream shared evenly by the arrays, each fold issuing
    max(T, R) cycles after the previous one (as within one GEMM), plus one final fill/drain tail.
    """
    group = max(q_heads // max(kv_heads, 1), 1)
    total = np.int64(0)
    stream = np.int64(0)
    tail = np.int64(0)
    macs = np.int64(0)
    for i in range(seq_new.shape[0]):
        c = seq_new[i]
        if c <= 0:
            continue
        ctx = seq_past[i] + c
        m = c * group
        macs += 2 * q_heads * head_dim * (c * seq_past[i] + c * (c + 1) // 2)
        for g in range(2):
            n = ctx if g == 0 else head_dim
            k = head_dim if g == 0 else ctx
            if mode_code == 0:
                one = gemm_cycles(rows, cols, dataflow_code, m, n, k, mode_code, 0, 0.0, 0.0, 0.0)[0] + 1
                rounds = kv_heads // arrays
                left = kv_heads - rounds * arrays
                total += rounds * one
                if left > 0:
                    total += multi_array_gemm_cycles(arrays // left, rows, cols, dataflow_code, m, n, k,
                                                     mode_code, 0, 0.0, 0.0, 0.0)[0] + 1
            else:
                sr, sc, t = fold_shape(dataflow_code, m, n, k)
                issue = max(t, rows)
                stream += kv_heads * _ceil_div(sr, rows) * _ceil_div(sc, cols) * issue
                tail = max(tail, fold_latency_cycles(rows, cols, dataflow_code, t) - 1 - issue)
    if mode_code != 0 and stream > 0:
        total = _ceil_div(stream, max(arrays, 1)) + tail
    return total, _ceil_div(macs, arrays * rows * cols)


@jit
def attention_work(seq_new, seq_past, q_heads, kv_heads, head_dim, arrays, rows, cols, dataflow_code, mode_code,
                   softmax_ops, lanes):
    """An attention op's work on the arrays and vector lanes in one call: (array cycles, ideal cycles, score entries
    over the query heads, softmax cycles): `attention_cycles`, the causal entries (`attention.causal_entries`,
    int64 arrays) times q_heads as a float, and `vector.vector_cycles` of those scores at `softmax_ops` each."""
    cycles, ideal = attention_cycles(seq_new, seq_past, q_heads, kv_heads, head_dim, arrays, rows, cols,
                                     dataflow_code, mode_code)
    scores = float(causal_entries(seq_new, seq_past)) * q_heads
    return cycles, ideal, scores, vector_cycles(scores, softmax_ops, lanes)


@jit
def gemm_cycles_batch(rows, cols, dataflow_code, m, n, k, mode_code, sram_words_each, ifmap_words_per_cycle,
                      filter_words_per_cycle, ofmap_words_per_cycle):
    """Vectorised gemm_cycles over equal-length int64/float64 arrays -> (cycles, stall_cycles, util)."""
    count = rows.shape[0]
    cycles = np.empty(count, dtype=np.int64)
    stalls = np.empty(count, dtype=np.int64)
    util = np.empty(count, dtype=np.float64)
    for i in range(count):
        r = gemm_cycles(rows[i], cols[i], dataflow_code[i], m[i], n[i], k[i], mode_code, sram_words_each[i],
                        ifmap_words_per_cycle[i], filter_words_per_cycle[i], ofmap_words_per_cycle[i])
        cycles[i] = r[0]
        stalls[i] = r[1]
        util[i] = m[i] * n[i] * k[i] / (rows[i] * cols[i] * max(r[0], 1))
    return cycles, stalls, util
