"""Linear interpolation of a decode run's step values (the serving fast-forward): a midpoint checked against the
chord of its interval's ends, and rows along a chord. A row is a step's values, a column one of its fields."""

import numpy as np

from asicsim.kernels.jit import jit

__all__ = ["on_chord", "chord_fill", "chord_rows"]


@jit
def on_chord(va, vb, vm, a, b, m, rtol, seconds, step_col):
    """Whether row `vm` (the values at m) lies within `rtol` of the chord from `va` at a to `vb` at b in every
    column: seconds columns (`seconds`) relative to vm's `step_col` value (at least 1e-300), the others to
    themselves."""
    frac = (m - a) / (b - a)
    step_scale = abs(vm[step_col])
    if step_scale < 1e-300:
        step_scale = 1e-300
    for c in range(va.shape[0]):
        chord = va[c] + (vb[c] - va[c]) * frac
        scale = step_scale if seconds[c] else abs(vm[c])
        if not abs(vm[c] - chord) <= rtol * scale:
            return False
    return True


@jit
def chord_fill(va, vb, vm, a, b, m, rtol, seconds, step_col):
    """(whether row `vm`, step m's values with a < m < b, lies on the chord from `va` at a to `vb` at b
    (`on_chord`), rows a+1..b-1 along that chord with row m set to `vm`); on a miss no rows."""
    cols = va.shape[0]
    if not on_chord(va, vb, vm, a, b, m, rtol, seconds, step_col):
        return False, np.empty((0, cols))
    rows = np.empty((b - a - 1, cols))
    for j in range(a + 1, b):
        w = (j - a) / (b - a)
        for c in range(cols):
            rows[j - a - 1, c] = va[c] + w * (vb[c] - va[c])
    for c in range(cols):
        rows[m - a - 1, c] = vm[c]
    return True, rows


@jit
def chord_rows(va, vb, a, b, start, step, n):
    """n rows along the chord from `va` at a to `vb` at b, at start, start + step, ...: va + w (vb - va) with
    w = (x - a) / (b - a) (0 where b == a)."""
    cols = va.shape[0]
    out = np.empty((n, cols))
    for j in range(n):
        w = (start + j * step - a) / (b - a) if b > a else 0.0
        for c in range(cols):
            out[j, c] = va[c] + w * (vb[c] - va[c])
    return out
