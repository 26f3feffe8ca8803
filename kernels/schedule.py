"""The step engine's static schedule as one jitted pass over an op table (`asicsim.core.engine._Schedule`).

`schedule_step_s` computes what `engine._Schedule` and `engine.schedule_step` compute in Python (its twin,
tests/reference/schedule_ref.py, calls exactly that), with the same float operations in the same order, so
the two agree to the bit. Inputs are plain arrays:

- `ops` (n, 5) float64: each op's compute, memory, weight, link and fixed seconds;
- `collective` (n,) bool: the op ends a segment of the service order;
- `bounds` (streams, 6) int64: rows of `ops` holding each stream's pre ops [b0, b1), one layer's ops [b2, b3)
  and post ops [b4, b5);
- `layers`: layer copies; `prefetch`: weights load into a double buffer; `state_rtol`: when two schedule
  states count as equal (the layer extrapolation, see engine._step_time).

Returns (step seconds, seconds compute ops waited on memory).
"""

import numpy as np

from .jit import jit

__all__ = ["schedule_step_s"]


@jit
def _hbm_place(starts, ends, count, at, seconds):
    """HBM as a preemptive priority server (engine._Hbm.place): place `seconds` released at `at` into the idle
    time between busy intervals [starts[i], ends[i]), i < count[0]; returns (done at, intervals, arrays)."""
    if seconds <= 0.0:
        return at, starts, ends
    n = count[0]
    j = np.searchsorted(ends[:n], at, side="right")
    if j > 0 and ends[j - 1] == at:
        j -= 1
    lo = starts[j] if j < n and starts[j] < at else at
    t = at
    left = seconds
    k = j
    while True:
        if k < n and starts[k] <= t:
            if ends[k] > t:
                t = ends[k]
            k += 1
            continue
        gap = (starts[k] if k < n else np.inf) - t
        if gap >= left:
            t += left
            break
        left -= gap
        t = starts[k]
    hi = t
    if k < n and starts[k] <= t:
        hi = ends[k]
        k += 1
    # starts[j:k] = [lo]; ends[j:k] = [hi]
    removed = k - j
    if removed == 0:
        if n + 1 > starts.shape[0]:
            grown_s = np.empty(2 * starts.shape[0] + 8)
            grown_e = np.empty(2 * starts.shape[0] + 8)
            grown_s[:n] = starts[:n]
            grown_e[:n] = ends[:n]
            starts, ends = grown_s, grown_e
        for i in range(n, j, -1):
            starts[i] = starts[i - 1]
            ends[i] = ends[i - 1]
        count[0] = n + 1
    elif removed > 1:
        shift = removed - 1
        for i in range(j + 1, n - shift):
            starts[i] = starts[i + shift]
            ends[i] = ends[i + shift]
        count[0] = n - shift
    starts[j] = lo
    ends[j] = hi
    return t, starts, ends


@jit
def _run_block(ops, collective, lo, hi, final, pend, npend, order, last, units, hbm_s, hbm_e, hbm_n, prefetch):
    """Schedule one block (engine._Schedule.run): per stream k the ops pend[k, :npend[k]] then rows lo[k]..hi[k];
    units = [compute free, link free, hbm done, wait s, end s]. Returns the HBM interval arrays."""
    streams = lo.shape[0]
    nseg = np.zeros(streams, dtype=np.int64)
    seg_start = np.zeros((streams, order.shape[1] + 1), dtype=np.int64)
    for k in range(streams):
        m = 0
        for i in range(npend[k]):
            order[k, m] = pend[k, i]
            m += 1
        for i in range(lo[k], hi[k]):
            order[k, m] = i
            m += 1
        # segments: cut after every collective; the last (possibly empty) holds the ops after the last one
        segs = 0
        seg_start[k, 0] = 0
        for i in range(m):
            if collective[order[k, i]]:
                segs += 1
                seg_start[k, segs] = i + 1
        segs += 1
        seg_start[k, segs] = m
        if final or segs == 1:
            npend[k] = 0
            nseg[k] = segs
        else:
            tail_from = seg_start[k, segs - 1]
            npend[k] = m - tail_from
            for i in range(tail_from, m):
                pend[k, i - tail_from] = order[k, i]
            nseg[k] = segs - 1
    compute_free_at, link_free_at, hbm_done_at, wait_s, end = units[0], units[1], units[2], units[3], units[4]
    for j in range(nseg.max() if streams > 0 else 0):
        for k in range(streams):
            if j >= nseg[k]:
                continue
            for idx in range(seg_start[k, j], seg_start[k, j + 1]):
                g = order[k, idx]
                compute_s, memory_s, weight_s, link_s, fixed_s = ops[g, 0], ops[g, 1], ops[g, 2], ops[g, 3], ops[g, 4]
                ready_at = last[k, 1] + fixed_s
                end_at = ready_at
                if compute_s > 0.0:
                    start_at = compute_free_at if compute_free_at > ready_at else ready_at
                    compute_free_at = start_at + compute_s
                    end_at = compute_free_at
                if link_s > 0.0:
                    start_at = link_free_at if link_free_at > ready_at else ready_at
                    link_free_at = start_at + link_s
                    if link_free_at > end_at:
                        end_at = link_free_at
                if memory_s + weight_s > 0.0:
                    if prefetch:
                        a, hbm_s, hbm_e = _hbm_place(hbm_s, hbm_e, hbm_n, last[k, 0], weight_s)
                        b, hbm_s, hbm_e = _hbm_place(hbm_s, hbm_e, hbm_n, ready_at, memory_s)
                        done_at = a if a >= b else b
                    else:
                        done_at, hbm_s, hbm_e = _hbm_place(hbm_s, hbm_e, hbm_n, ready_at, memory_s + weight_s)
                    if done_at > hbm_done_at:
                        hbm_done_at = done_at
                    if hbm_done_at > end_at:
                        end_at = hbm_done_at
                if compute_s > 0.0 and end_at - ready_at > compute_s:
                    wait_s += end_at - ready_at - compute_s
                last[k, 0] = last[k, 1]
                last[k, 1] = end_at
                if end_at > end:
                    end = end_at
    units[0] = compute_free_at
    units[1] = link_free_at
    units[2] = hbm_done_at
    units[3] = wait_s
    units[4] = end
    # forget busy intervals ending by the earliest second-to-last end: no later traffic is released before it
    forget_at = last[0, 0]
    for k in range(1, streams):
        if last[k, 0] < forget_at:
            forget_at = last[k, 0]
    n = hbm_n[0]
    drop = np.searchsorted(hbm_e[:n], forget_at, side="right")
    if drop > 0:
        for i in range(drop, n):
            hbm_s[i - drop] = hbm_s[i]
            hbm_e[i - drop] = hbm_e[i]
        hbm_n[0] = n - drop
    return hbm_s, hbm_e


@jit
def _state(last, units, hbm_s, hbm_e, hbm_n):
    """engine._Schedule.state: what the rest of the schedule depends on, relative to the earliest stream end."""
    streams = last.shape[0]
    f1 = last[0, 1]
    f2 = last[0, 0]
    for k in range(1, streams):
        if last[k, 1] < f1:
            f1 = last[k, 1]
        if last[k, 0] < f2:
            f2 = last[k, 0]
    n = hbm_n[0]
    values = np.empty(2 * streams + 3 + 2 * n + 1)
    m = 0
    for k in range(streams):
        values[m] = last[k, 0] - f1
        values[m + 1] = last[k, 1] - f1
        m += 2
    for u in range(3):
        values[m] = (units[u] if units[u] > f1 else f1) - f1
        m += 1
    for i in range(n):
        values[m] = (hbm_s[i] if hbm_s[i] > f2 else f2) - f1
        values[m + 1] = (hbm_e[i] if hbm_e[i] > f2 else f2) - f1
        m += 2
    values[m] = f1
    return values


@jit
def _same_state(a, b, state_rtol):
    if a.shape[0] != b.shape[0]:
        return False
    tol_s = state_rtol * (a[-1] if a[-1] > b[-1] else b[-1])
    for i in range(a.shape[0] - 1):
        if abs(a[i] - b[i]) > tol_s:
            return False
    return True


@jit
def schedule_step_s(ops, collective, bounds, layers, prefetch, state_rtol):
    """(step seconds, memory wait seconds) of the static schedule, layers extrapolated once the schedule
    repeats (engine.schedule_step: pre, layer copies until a copy's state equals the one before, post)."""
    streams = bounds.shape[0]
    widest = 1
    for k in range(streams):
        for b in range(3):
            width = bounds[k, 2 * b + 1] - bounds[k, 2 * b]
            if width > widest:
                widest = width
    pend = np.zeros((streams, 2 * widest + 1), dtype=np.int64)
    order = np.zeros((streams, 2 * widest + 1), dtype=np.int64)
    npend = np.zeros(streams, dtype=np.int64)
    last = np.zeros((streams, 2))
    units = np.zeros(5)
    hbm_s = np.empty(8 * widest * streams + 8)
    hbm_e = np.empty(8 * widest * streams + 8)
    hbm_n = np.zeros(1, dtype=np.int64)
    hbm_s, hbm_e = _run_block(ops, collective, bounds[:, 0], bounds[:, 1], False, pend, npend, order, last, units,
                              hbm_s, hbm_e, hbm_n, prefetch)
    skipped = 0
    span_s = 0.0
    copy_wait_s = 0.0
    seen = np.zeros(0)
    have_seen = False
    before = np.zeros(streams)
    for copy in range(1, layers + 1):
        wait_before_s = units[3]
        for k in range(streams):
            before[k] = last[k, 1]
        hbm_s, hbm_e = _run_block(ops, collective, bounds[:, 2], bounds[:, 3], False, pend, npend, order, last,
                                  units, hbm_s, hbm_e, hbm_n, prefetch)
        if copy == layers:
            continue
        state = _state(last, units, hbm_s, hbm_e, hbm_n)
        if have_seen and _same_state(state, seen, state_rtol):
            skipped = layers - copy
            span_s = last[0, 1] - before[0]
            for k in range(1, streams):
                if last[k, 1] - before[k] > span_s:
                    span_s = last[k, 1] - before[k]
            copy_wait_s = units[3] - wait_before_s
            break
        seen = state
        have_seen = True
    hbm_s, hbm_e = _run_block(ops, collective, bounds[:, 4], bounds[:, 5], True, pend, npend, order, last, units,
                              hbm_s, hbm_e, hbm_n, prefetch)
    return units[4] + skipped * span_s, units[3] + skipped * copy_wait_s
