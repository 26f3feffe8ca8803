"""Plain-Python twins of the public systolic helpers that tests/reference/systolic_ref.py has no twin for.

fold_shape and fold_latency_cycles are read off the mapping table in kernels/systolic.py's docstring
(SCALE-Sim v3's GEMM mapping); gemm_cycles_batch is a loop of gemm_cycles_ref over the rows.
"""

from __future__ import annotations

try:  # repo root on sys.path
    from tests.reference.systolic_ref import gemm_cycles_ref
except ModuleNotFoundError:  # tests/ itself on sys.path
    from reference.systolic_ref import gemm_cycles_ref

__all__ = ["fold_shape_ref", "fold_latency_cycles_ref", "gemm_cycles_batch_ref"]

# dataflow -> the GEMM dims on the array rows (Sr), the array columns (Sc) and in time (T)
_MAPPING = {0: ("m", "n", "k"), 1: ("k", "n", "m"), 2: ("k", "m", "n")}


def fold_shape_ref(dataflow_code, m, n, k):
    """Twin of kernels.systolic.fold_shape: os (M, N, K), ws (K, N, M), is (K, M, N)."""
    dims = {"m": m, "n": n, "k": k}
    return tuple(dims[name] for name in _MAPPING[dataflow_code])


def fold_latency_cycles_ref(rows, cols, dataflow_code, t):
    """Twin of kernels.systolic.fold_latency_cycles: os T + R + C - 2; ws and is T + 2R + C - 2 (the
    stationary tile is shifted in through the R rows first)."""
    fill = rows if dataflow_code == 0 else 2 * rows
    return t + fill + cols - 2


def gemm_cycles_batch_ref(rows, cols, dataflow_code, m, n, k, mode_code, *per_row):
    """Twin of kernels.systolic.gemm_cycles_batch: gemm_cycles_ref row by row, utilisation = MACs over
    R C cycles. `per_row` are the per-row memory arguments after the mode (SRAM words, DRAM words/cycle)."""
    cycles, stalls, util = [], [], []
    for i in range(len(rows)):
        r, c, mm, nn, kk = int(rows[i]), int(cols[i]), int(m[i]), int(n[i]), int(k[i])
        res = gemm_cycles_ref(r, c, int(dataflow_code[i]), mm, nn, kk, mode_code, *(arg[i].item() for arg in per_row))
        cycles.append(res[0])
        stalls.append(res[1])
        util.append(mm * nn * kk / (r * c * max(res[0], 1)))
    return cycles, stalls, util
