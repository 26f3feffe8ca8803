"""Twins of kernels/chord.py: the same arithmetic as numpy array expressions (the fast-forward's earlier code)."""

import numpy as np


def on_chord(va, vb, vm, a, b, m, rtol, seconds, step_col):
    chord = va + (vb - va) * ((m - a) / (b - a))
    scale = np.abs(vm)
    scale[np.asarray(seconds, dtype=bool)] = max(scale[step_col], 1e-300)
    return bool((np.abs(vm - chord) <= rtol * scale).all())


def chord_fill(va, vb, vm, a, b, m, rtol, seconds, step_col):
    if not on_chord(va, vb, vm, a, b, m, rtol, seconds, step_col):
        return False, np.empty((0, len(va)))
    rise = vb - va
    w = (np.arange(a + 1, b) - a) / (b - a)
    rows = va + np.outer(w, rise)
    rows[m - a - 1] = vm
    return True, rows


def chord_rows(va, vb, a, b, start, step, n):
    w = (np.arange(start, start + n * step, step)[:n] - a) / (b - a) if b > a else np.zeros(n)
    return va + np.outer(w, vb - va)
