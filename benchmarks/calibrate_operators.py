"""Fit the GPU models' serving-stack operator terms on the calibration split of the aiconfigurator tables.

Each fit varies a few spec fields, prices the table's calibration rows through `GpuDevice.explain` (the same
code the engine runs; asicsim.analysis.operator_tables), and minimises the mean |log(predicted / measured)|
with a Nelder-Mead search. Holdout rows are never read here; `benchmarks/bench_operators.py` reports them.

    python benchmarks/calibrate_operators.py                 # every GPU with tables, every fit
    python benchmarks/calibrate_operators.py --hw b200 --fit gemm

It prints the fitted values as spec-file lines with their source; copying them into the spec is a reviewed
step, not automatic. Fits (spec fields):
- decode:    decode_attention_fixed_s, decode_attention_stream_fraction, decode_attention_head_s
- prefill:   prefill_attention_fixed_s, prefill_attention_efficiency_bf16, prefill_attention_efficiency_fp8
- quantize:  quantize_kernel_fixed_s (TensorRT-LLM PyTorch `Linear`'s input quantize, fp8 rows)
- allreduce: custom_allreduce_latency_s (TensorRT-LLM custom all-reduce rows)
- nccl:      the nccl_busbw_* curve from the 8-GPU NCCL all-reduce rows (for a GPU whose curve is assumed)
- moe:       grouped_gemm_efficiency (_fp8, _fp4), grouped_gemm_fixed_s, grouped_gemm_expert_s (balanced
             routing; bf16, per-tensor fp8 and NVFP4 rows: the formats an op's dtype names exactly)
- mla_decode: mla_decode_fixed_s, mla_decode_head_s, mla_decode_efficiency_bf16/_fp8 (mla_generation)
- mla_prefill: mla_prefill_efficiency_bf16/_fp8, mla_prefill_head_s (mla_context)
- a2a:       all_to_all_latency_s, all_to_all_bytes_per_s (DeepEP dispatch and combine, moe_a2a)
- gemm:      gemm_efficiency_bf16, gemm_efficiency_fp8, gemm_efficiency_fp4, gemm_latency_s (only for a GPU
             with no GEMM microbenchmarks of its own, i.e. whose GEMM constants are marked assumed)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Callable

import numpy as np
import pandas as pd

from asicsim.analysis import operator_tables as ot
from asicsim.core.registry import load_hardware
from asicsim.gpusim.device import GpuDevice
from asicsim.gpusim.options import GpuOptions, kernel_timing
from asicsim.workloads.graph_types import OpKind

SAMPLE_ROWS = 1500  # calibration rows priced per objective evaluation (a fixed-seed sample)
SEED = 0
SAMPLE_ROWS_OPS = 600  # for the issue-16 tables (several ops per row)


def nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, step: float = 0.3, iters: int = 120) -> np.ndarray:
    """Minimise f from x0 (a plain Nelder-Mead simplex; enough for 1-4 well-scaled parameters)."""
    n = x0.size
    simplex = [x0] + [x0 + step * np.eye(n)[i] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iters):
        order = np.argsort(values)
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        centroid = np.mean(simplex[:-1], axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex = [simplex[0] + 0.5 * (x - simplex[0]) for x in simplex]
                values = [f(x) for x in simplex]
    return simplex[int(np.argmin(values))]


def _rows(hardware: str, table: str, query: str | None = None, sample: int = SAMPLE_ROWS) -> pd.DataFrame:
    frame = ot.load_table(hardware, table)
    frame = frame[frame["split"] == "calibration"]
    if query:
        frame = frame.query(query)
    return frame.sample(min(sample, len(frame)), random_state=SEED) if len(frame) > sample else frame


def _objective(hardware: str, table: str, rows: pd.DataFrame, fields: list[str], scale: list[float],
               stack: str = ot.STACK) -> Callable[[np.ndarray], float]:
    base = load_hardware(hardware)
    measured = rows["latency_us"].to_numpy() * 1e-6

    def price(x: np.ndarray) -> float:
        values = {name: float(np.exp(v)) * s for name, v, s in zip(fields, x, scale)}
        if any(name.endswith(("fraction", "efficiency", "_bf16", "_fp8", "_fp4")) and v > 1.0
               for name, v in values.items()):
            return 1e9
        spec = dataclasses.replace(base, **values)
        times = np.array([_price(spec, table, r, stack) for r in rows.itertuples()])
        return float(np.mean(np.abs(np.log(times / measured))))
    return price


_OPS: dict = {}  # (hardware, table, row index) -> the row's ops (they do not depend on the spec being fitted)


def _price(spec, table: str, row, stack: str) -> float:
    if table in ot.OP_TABLES:
        key = (spec.name, table, row.Index)
        if key not in _OPS:
            _OPS[key] = ot.row_ops(table, row)
        group = max((op.group for op in _OPS[key]), default=1)
        return ot.price_ops(GpuDevice(spec, group, kernel_timing(GpuOptions.for_stack(stack))), _OPS[key])
    if table == "gemm":
        device = GpuDevice(spec, 1, kernel_timing(GpuOptions.for_stack(stack)))
        return device.explain(ot._gemm_op(row.dtype, int(row.m), int(row.n), int(row.k)))["time_s"]
    if table == "allreduce":
        device = GpuDevice(spec, int(row.gpus), kernel_timing(GpuOptions.for_stack(stack)))
        return device.explain(ot._allreduce_op(row))["time_s"]
    kind = OpKind.ATTENTION_DECODE if table == "generation_attention" else OpKind.ATTENTION_PREFILL
    return GpuDevice(spec, 1, kernel_timing(GpuOptions.for_stack(stack))).explain(ot._attention_op(kind, row))["time_s"]


FITS = {
    # name: (table, row filter, fields, scales, starting values in units of the scale)
    "decode": ("generation_attention", None,
               ["decode_attention_fixed_s", "decode_attention_stream_fraction", "decode_attention_head_s"],
               [1e-6, 1.0, 1e-9], [7.0, 0.85, 1.7]),
    "prefill": ("context_attention", None, ["prefill_attention_fixed_s", "prefill_attention_efficiency_bf16",
                                             "prefill_attention_efficiency_fp8"], [1e-6, 1.0, 1.0], [8.0, 0.55, 0.35]),
    "quantize": ("gemm", "dtype == 'fp8'", ["quantize_kernel_fixed_s"], [1e-6], [8.0]),
    "allreduce": ("allreduce", "implementation == 'trtllm-custom' and message_bytes < 500000",
                  ["custom_allreduce_latency_s"], [1e-6], [3.0]),
    # issue 16: grouped expert GEMMs (balanced routing, the formats an op's dtype names exactly), MLA, DeepEP
    "moe": ("moe", ot.MOE_FIT_QUERY, ["grouped_gemm_efficiency", "grouped_gemm_efficiency_fp8",
                                       "grouped_gemm_efficiency_fp4", "grouped_gemm_fixed_s", "grouped_gemm_expert_s"],
            [1.0, 1.0, 1.0, 1e-6, 1e-6], [0.8, 0.8, 0.6, 5.0, 0.3]),
    "mla_decode": ("mla_generation", None, ["mla_decode_fixed_s", "mla_decode_head_s", "mla_decode_efficiency_bf16",
                                            "mla_decode_efficiency_fp8"], [1e-6, 1e-9, 1.0, 1.0], [12.0, 0.2, 0.5, 0.3]),
    "mla_prefill": ("mla_context", None, ["mla_prefill_efficiency_bf16", "mla_prefill_efficiency_fp8",
                                          "mla_prefill_head_s"], [1.0, 1.0, 1e-9], [0.4, 0.25, 20.0]),
    "a2a": ("moe_a2a", None, ["all_to_all_latency_s", "all_to_all_bytes_per_s"], [1e-6, 1e11], [30.0, 4.0]),
    "gemm": ("gemm", None, ["gemm_efficiency_bf16", "gemm_efficiency_fp8", "gemm_efficiency_fp4", "gemm_latency_s",
                            "quantize_kernel_fixed_s"], [1.0, 1.0, 1.0, 1e-6, 1e-6], [0.7, 0.6, 0.5, 4.0, 8.0]),
}


def nccl_curve(hardware: str) -> dict[str, float]:
    """The spec's NCCL busbw curve at its sizes, read off the calibration rows of the NCCL all-reduce table over the
    most GPUs it has (8, or 4 where the collector measured no more: GB200), log-log interpolated; sizes past the
    largest measured keep its busbw. `_gpus` is the group (the spec's nccl_group)."""
    from asicsim.gpusim.spec import NCCL_CURVE_FIELDS
    rows = ot.load_table(hardware, "allreduce")
    rows = rows[(rows["split"] == "calibration") & (rows["implementation"] == "nccl")]
    gpus = int(rows["gpus"].max())
    rows = rows[rows["gpus"] == gpus].sort_values("message_bytes")
    sizes = rows["message_bytes"].to_numpy(dtype=float)
    busbw = 2.0 * (gpus - 1) / gpus * sizes / (rows["latency_us"].to_numpy() * 1e-6)
    out = {name: float(np.exp(np.interp(np.log(size), np.log(sizes), np.log(busbw))))
           for name, size in NCCL_CURVE_FIELDS}
    out["_rows"], out["_gpus"] = len(rows), gpus
    return out


def fit(hardware: str, name: str) -> dict[str, float]:
    table, query, fields, scale, start = FITS[name]
    if load_hardware(hardware).dense_fp4_flops_per_s <= 0.0:  # no fp4 rate: the fp4 term cannot be seen
        keep = [i for i, f in enumerate(fields) if not f.endswith("_fp4")]
        fields, scale, start = [fields[i] for i in keep], [scale[i] for i in keep], [start[i] for i in keep]
    rows = _rows(hardware, table, query, SAMPLE_ROWS_OPS if table in ot.OP_TABLES else SAMPLE_ROWS)
    objective = _objective(hardware, table, rows, fields, scale)
    x0 = np.log(np.asarray(start, dtype=float))
    best = nelder_mead(objective, x0, iters=40 * len(fields) + 40)
    values = {f: float(np.exp(v)) * s for f, v, s in zip(fields, best, scale)}
    values["_calibration_mean_abs_log_error"] = objective(best)
    values["_rows"] = len(rows)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hw", action="append", help="spec name (default: every GPU with tables)")
    parser.add_argument("--fit", action="append", choices=sorted(FITS) + ["nccl"],
                        help="which fit (default: all but gemm and nccl)")
    args = parser.parse_args(argv)
    version = ot.provenance()["package_version"]
    for hardware in args.hw or ot.available_hardware():
        for name in args.fit or [f for f in FITS if f != "gemm"]:
            if name == "nccl":
                curve = nccl_curve(hardware)
                rows, gpus = curve.pop("_rows"), curve.pop("_gpus")
                print(f"# {hardware} nccl: busbw curve from {rows} calibration rows ({gpus} GPUs)")
                print(f'nccl_group = {{ value = {gpus}, source = "the {gpus}-GPU rows of the aiconfigurator-core '
                      f'{hardware} NCCL all-reduce table" }}')
                for field, value in curve.items():
                    print(f'{field} = {{ value = {value:.4g}, source = "aiconfigurator-core {version} NCCL '
                          f'{ot.provenance()["framework"].split("NCCL ")[-1]} all-reduce, {gpus} GPUs, calibration split, '
                          f'log-log interpolated (benchmarks/calibrate_operators.py --fit nccl)" }}')
                continue
            values = fit(hardware, name)
            err, rows = values.pop("_calibration_mean_abs_log_error"), values.pop("_rows")
            print(f"# {hardware} {name}: mean |log error| {err:.3f} over {rows} calibration rows")
            for field, value in values.items():
                print(f'{field} = {{ value = {value:.4g}, source = "fit on the calibration split of aiconfigurator-core '
                      f'{version} {FITS[name][0]} ({rows} rows; benchmarks/calibrate_operators.py --fit {name})" }}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
