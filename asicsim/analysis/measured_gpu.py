"""The GPU model against operator measurements this project took on a real GPU (benchmarks/measure_gpu.py; data
under asicsim/data/calibration/measured/<hardware>/ with its environment: GPU, driver, CUDA, PyTorch, date).

Each comparison prices the measured case through the same `GpuDevice` the engine runs, with the switches of the
code that was measured: PyTorch's cuBLAS GEMMs and SDPA attention replayed from a CUDA Graph, so the `generic`
stack (no separate input quantize, bare attention kernels). Power comes from the GPU energy model
(`gpusim.power`) at the activity the measurement ran. A row is `fit` when a model constant was derived from it
(docs/gpu-calibration.md, "Measured on an H200"), `holdout` otherwise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from types import SimpleNamespace

import numpy as np
import pandas as pd

from asicsim.analysis import operator_tables as ot
from asicsim.core.area import area_constants
from asicsim.core.registry import load_hardware
from asicsim.gpusim.device import GpuDevice
from asicsim.gpusim.options import GpuOptions, kernel_timing
from asicsim.gpusim.power import GpuActivity, power_w, static_power_w, step_energy_j
from asicsim.workloads.graph_types import OpKind

__all__ = ["MEASURED_TARGETS", "MeasuredComparison", "available_hardware", "environment", "load_measurements",
           "compare", "summarize", "format_comparisons", "check_targets", "onchip_memory_path_pj_per_bit_fit",
           "sustained_compute_fraction_fit", "ramp_rates", "decode_attention_pj_per_bit_fit"]

_ROOT = ("data", "calibration", "measured")
# Llama-3-70B geometry of measure_gpu's decode step (HF config.json): 64 query heads, 8 KV heads, FFN 28672
Q_HEADS_70B, KV_HEADS_70B, FFN_70B = 64, 8, 28672
STACK = "generic"  # PyTorch's kernels one by one, replayed from a CUDA Graph: no separate fp8 input quantize
# Holdout MAPE targets per group (benchmarks/bench_measured.py --check); groups without one are reported only,
# each for a reason docs/gpu-calibration.md gives.
MEASURED_TARGETS = {"gemm bf16": 0.20, "gemm fp8": 0.20, "decode attention": 0.20, "hbm bandwidth": 0.10,
                    "launch": 0.10, "power": 0.10, "power-limit throttle": 0.05, "decode step": 0.20}
BURST_S, SUSTAINED_FROM_S = 0.05, 1.2  # ramp windows ending by 50 ms: the boost clock; from 1.2 s: at the limit


@dataclass(frozen=True)
class MeasuredComparison:
    """One measured case next to the model's prediction, in the measurement's own unit (seconds, TB/s, W)."""

    hardware: str
    group: str
    case: str
    measured: float
    predicted: float
    unit: str
    role: str  # "fit": a model constant was derived from this row; "holdout": it was not

    @property
    def error(self) -> float:
        """Signed relative error of the prediction."""
        return self.predicted / self.measured - 1.0


def _folder():
    path = resources.files("asicsim")
    for part in _ROOT:
        path = path / part
    return path


def available_hardware() -> tuple[str, ...]:
    """Spec names with measurements."""
    return tuple(sorted(p.name for p in _folder().iterdir() if (p / "gpu_measurements.csv").is_file()))


def environment(hardware: str, folder: str = "") -> dict:
    """What the measurements ran on: GPU, driver, CUDA, PyTorch, date, method (`folder`: the repeat's, REPEAT)."""
    path = _folder() / hardware
    return json.loads(((path / folder) if folder else path).joinpath("environment.json").read_text())


@lru_cache(maxsize=None)
def load_measurements(hardware: str) -> pd.DataFrame:
    """The stored rows (benchmark, size, value, unit, median_s, min_s, run)."""
    with (_folder() / hardware / "gpu_measurements.csv").open("r") as handle:
        return pd.read_csv(handle)


REPEAT = "repeat"  # a hardware folder's sub-folder holding the same cases measured again on another lease
# Benchmarks -> the groups of the repeat table (the names `compare` reports them under).
_REPEAT_GROUPS = {"gemm_bf16_torch": "gemm bf16", "gemm_fp8_scaled_mm": "gemm fp8",
                  "attention_decode_sdpa_bf16": "decode attention", "attention_prefill_sdpa_bf16": "prefill attention",
                  "hbm_copy_torch": "hbm bandwidth", "hbm_read_torch_sum": "hbm bandwidth",
                  "kernel_launch_eager": "launch", "kernel_launch_cuda_graph": "launch"}


def load_repeat(hardware: str) -> pd.DataFrame | None:
    """The cases measured again on another lease (`REPEAT` folder), or None."""
    path = _folder() / hardware / REPEAT / "gpu_measurements.csv"
    if not path.is_file():
        return None
    with path.open("r") as handle:
        return pd.read_csv(handle)


def repeatability(hardware: str) -> pd.DataFrame:
    """Per group, how far the repeat's per-call medians sit from the stored ones, case by case (repeat / stored
    - 1): cases, the median ratio, and the mean, 90th percentile and largest |deviation|. Empty without a
    repeat. The spread a model cannot be asked to beat: the measurement's own between leases."""
    columns = ["hardware", "group", "cases", "median_ratio", "mean_dev", "p90_dev", "max_dev"]
    repeat = load_repeat(hardware) if hardware else None
    if repeat is None:
        return pd.DataFrame(columns=columns)
    both = load_measurements(hardware).merge(repeat, on=["benchmark", "size"], suffixes=("", "_repeat"))
    both = both[both["benchmark"].isin(_REPEAT_GROUPS)]
    ratio = both["median_s_repeat"] / both["median_s"]
    frame = pd.DataFrame({"group": both["benchmark"].map(_REPEAT_GROUPS), "ratio": ratio, "dev": (ratio - 1.0).abs()})
    out = frame.groupby("group", sort=False).agg(cases=("ratio", "size"), median_ratio=("ratio", "median"),
                                                 mean_dev=("dev", "mean"), p90_dev=("dev", lambda d: d.quantile(0.9)),
                                                 max_dev=("dev", "max")).reset_index()
    out.insert(0, "hardware", hardware)
    return out[columns]


def repeatability_table(hardware: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """`repeatability` of every hardware in `hardware` with a repeat, one after another."""
    tables = [t for t in (repeatability(hw) for hw in hardware) if len(t)]
    return pd.concat(tables, ignore_index=True) if tables else repeatability("")


def format_repeatability(table: pd.DataFrame) -> str:
    """The repeat table: one line per group."""
    lines = [f"{'hardware':8} {'group':21} {'cases':>5} {'ratio':>7} {'mean|d|':>8} {'p90|d|':>8} {'max|d|':>8}"]
    for r in table.itertuples():
        lines.append(f"{r.hardware:8} {r.group:21} {r.cases:5d} {r.median_ratio:7.3f} {r.mean_dev:8.1%} "
                     f"{r.p90_dev:8.1%} {r.max_dev:8.1%}")
    return "\n".join(lines)


def _device(hardware: str, sustained: bool = True) -> GpuDevice:
    """The GPU model with the measured code's switches: bare attention kernels, and the power-limit throttle on
    (`sustained`: the case ran with the board at its limit) or off (timed within milliseconds of idle)."""
    options = replace(GpuOptions.for_stack(STACK), stack_attention=False)
    return GpuDevice(load_hardware(hardware), 1, options if sustained else kernel_timing(options))


def _fields(size: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\w+)", size))


THROTTLE_AFTER_S = 0.1  # the ramps: a compute-bound GEMM leaves its boost clock within 50-100 ms of load
_REPLAYS, _CALLS, _ROTATE = 23, 8, 3  # measure_gpu: 3 warm-up + 20 timed replays of >= 8 calls over >= 3x L2


def _gemm_case_s(env: dict, dtype: str, n: int, k: int, per_call_s: float) -> float:
    """How long measure_gpu kept one GEMM case running (its graph replays back to back)."""
    weight_bytes = n * k * (1 if dtype == "fp8" else 2)
    copies = max(1, -(-_ROTATE * int(env.get("l2_bytes", 50 * 2**20)) // weight_bytes))
    return _REPLAYS * max(_CALLS, copies) * per_call_s


def _gemm(hardware: str, rows: pd.DataFrame) -> list[MeasuredComparison]:
    """Each GEMM case against the model with the power-limit throttle on when the case ran long enough to reach
    the limit (THROTTLE_AFTER_S), off when it finished at the boost clock."""
    devices = {True: _device(hardware, sustained=True), False: _device(hardware, sustained=False)}
    env = environment(hardware)
    out = []
    for row in rows[rows["benchmark"].str.startswith("gemm_") & rows["unit"].eq("TFLOP/s")].itertuples():
        if row.benchmark not in ("gemm_bf16_torch", "gemm_fp8_scaled_mm") or "eager" in row.size:
            continue
        f = _fields(row.size)
        dtype = "fp8" if "fp8" in row.benchmark else "bf16"
        long_case = _gemm_case_s(env, dtype, int(f["N"]), int(f["K"]), float(row.median_s)) >= THROTTLE_AFTER_S
        predicted = devices[long_case].explain(ot._gemm_op(dtype, int(f["M"]), int(f["N"]), int(f["K"])))["time_s"]
        out.append(MeasuredComparison(hardware, f"gemm {dtype}", row.size, float(row.median_s), predicted, "s",
                                      "holdout"))
    return out


def _attention(hardware: str, rows: pd.DataFrame) -> list[MeasuredComparison]:
    """Decode and prefill attention against the fastest SDPA backend measured for each case (the kernel a
    server would pick), priced as the bare kernel (KV stream, FlashAttention FLOPs)."""
    device = _device(hardware)
    out = []
    for bench, group, kind in (("attention_decode_sdpa_bf16", "decode attention", OpKind.ATTENTION_DECODE),
                               ("attention_prefill_sdpa_bf16", "prefill attention", OpKind.ATTENTION_PREFILL)):
        cases = rows[rows["benchmark"] == bench].copy()
        if cases.empty:
            continue
        cases["case"] = cases["size"].str.replace(r" backend=\w+", "", regex=True)
        for case, best in cases.loc[cases.groupby("case")["median_s"].idxmin()].set_index("case").iterrows():
            f = _fields(case)
            if kind == OpKind.ATTENTION_DECODE:
                heads = int(f["kv_heads"])
                shape = dict(batch=int(f["batch"]), q_heads=heads * 8, kv_heads=heads, past_tokens=int(f["ctx"]), isl=1)
            else:
                shape = dict(batch=1, q_heads=8, kv_heads=1, past_tokens=0, isl=int(f["seq"]))
            op = ot._attention_op(kind, SimpleNamespace(head_dim=128, kv_dtype="bf16", dtype="bf16", **shape))
            backend = re.search(r"backend=(\w+)", best["size"]).group(1)
            out.append(MeasuredComparison(hardware, group, f"{case} ({backend})", float(best["median_s"]),
                                          device.explain(op)["time_s"], "s", "holdout"))
    return out


def _value(rows: pd.DataFrame, benchmark: str, size: str | None = None) -> pd.Series | None:
    hit = rows[(rows["benchmark"] == benchmark) & ((rows["size"] == size) if size else True)]
    return None if hit.empty else hit.iloc[0]


def _memory_and_launch(hardware: str, rows: pd.DataFrame) -> list[MeasuredComparison]:
    spec = load_hardware(hardware)
    out = []
    copy, read = _value(rows, "hbm_copy_torch"), _value(rows, "hbm_read_torch_sum")
    if copy is not None:
        out.append(MeasuredComparison(hardware, "hbm bandwidth", "device copy 1 GiB (read + write), one timed call", float(copy["value"]),
                                      spec.hbm_bandwidth_bytes_per_s * spec.hbm_achievable_fraction / 1e12, "TB/s",
                                      "holdout"))
    sustained = _value(rows, "sustained_rate", "hbm_copy 1GiB")
    if sustained is not None:
        out.append(MeasuredComparison(hardware, "hbm bandwidth", "device copy 1 GiB, back to back for 3 s",
                                      float(sustained["value"]),
                                      spec.hbm_bandwidth_bytes_per_s * spec.hbm_achievable_fraction / 1e12, "TB/s",
                                      "holdout"))
    if read is not None:
        out.append(MeasuredComparison(hardware, "hbm bandwidth", "read-only reduction 1 GiB", float(read["value"]),
                                      spec.hbm_bandwidth_bytes_per_s * spec.hbm_read_fraction / 1e12, "TB/s",
                                      "holdout"))
    graph = _value(rows, "kernel_launch_cuda_graph")
    if graph is not None:
        out.append(MeasuredComparison(hardware, "launch", "CUDA Graph replay, per kernel", float(graph["value"]) * 1e-6,
                                      spec.graph_launch_overhead_s, "s", "fit"))
    return out


def _ops_power_w(device: GpuDevice, ops: list, dtype: str) -> float:
    """Board power the energy model gives for `ops` run back to back: their step energy over their time."""
    ex = [device.explain(op) for op in ops]
    time_s = sum(e["time_s"] for e in ex)
    step = SimpleNamespace(flops_per_chip=sum(op.flops for op in ops), compute_busy_s=sum(e["compute_s"] for e in ex),
                           memory_bytes_per_chip=sum(op.memory_bytes for op in ops),
                           memory_busy_s=sum(e["memory_s"] for e in ex), link_busy_s=0.0, start_at=0.0, end_at=time_s,
                           op_energy_j=sum(device.cost(op).energy_j for op in ops))
    return step_energy_j(device, step, dtype) / time_s


def _copy_power(rows: pd.DataFrame) -> tuple[float, float] | None:
    """(board W, bytes moved per s) of the sustained device copy, or None."""
    watts, rate = _value(rows, "board_power_nvml", "hbm_copy 1GiB"), _value(rows, "sustained_rate", "hbm_copy 1GiB")
    return None if watts is None or rate is None else (float(watts["value"]), float(rate["value"]) * 1e12)


def onchip_memory_path_pj_per_bit_fit(hardware: str) -> float:
    """Energy per bit of HBM traffic on the GPU's on-chip path (memory controller, L2, on-chip network, SM load
    and store path, the clocks that stay up while a kernel runs), from the sustained device copy's board power:
    (W - static) / (bytes per s x 8) less the DRAM access energy (`energy.hbm_pj_per_bit`)."""
    watts, rate = _copy_power(load_measurements(hardware))
    dram = area_constants()["energy"]["hbm_pj_per_bit"]
    return (watts - static_power_w(load_hardware(hardware))) / (rate * 8.0) * 1e12 - dram


def decode_attention_pj_per_bit_fit(hardware: str) -> float:
    """Energy per streamed bit of decode attention beyond a copy's (DRAM plus on-chip path), from the sustained
    power of attention alone at the ramps' largest batch: (W - static) / (bytes per s x 8) - DRAM - path."""
    rates = ramp_rates(hardware)
    attention = rates[rates["benchmark"] == "decode_attention_ramp"].copy()
    attention["batch"] = attention["case"].str.extract(r"batch=(\d+)", expand=False).astype(int)
    row = attention.loc[attention["batch"].idxmax()]
    context = int(re.search(r"ctx=(\d+)", row["case"]).group(1))
    op = _decode_step_ops(int(row["batch"]), context)[-1]
    bits_per_s = op.memory_bytes * row["sustained"] * 8.0
    c = area_constants()
    return ((row["power_w"] - static_power_w(load_hardware(hardware))) / bits_per_s * 1e12
            - c["energy"]["hbm_pj_per_bit"] - c["gpu_energy"]["onchip_memory_path_pj_per_bit"])


def _power(hardware: str, rows: pd.DataFrame) -> list[MeasuredComparison]:
    spec = load_hardware(hardware)
    device = _device(hardware)
    out = []
    copy = _copy_power(rows)
    if copy is not None:
        watts, rate = copy
        predicted = power_w(spec, GpuActivity(tensor=0.0, hbm=rate / spec.hbm_bandwidth_bytes_per_s, link=0.0))
        out.append(MeasuredComparison(hardware, "power", "sustained device copy 1 GiB", watts, predicted, "W", "fit"))
    for label, dtype in (("gemm_bf16 M=N=K=8192", "bf16"), ("gemm_fp8 M=N=K=8192", "fp8")):
        watts = _value(rows, "board_power_nvml", label)
        if watts is not None:
            op = ot._gemm_op(dtype, 8192, 8192, 8192)
            out.append(MeasuredComparison(hardware, "power", f"sustained {label} (random data)", float(watts["value"]),
                                          _ops_power_w(device, [op], dtype), "W", "holdout"))
    decode = rows[(rows["benchmark"] == "board_power_nvml") & rows["size"].str.startswith("gemm_bf16 decode")]
    for row in decode.itertuples():
        f = _fields(row.size)
        op = ot._gemm_op("bf16", int(f["M"]), int(f["N"]), int(f["K"]))
        out.append(MeasuredComparison(hardware, "power", f"sustained {row.size}", float(row.value),
                                      _ops_power_w(device, [op], "bf16"), "W", "holdout"))
    return out


def _sustained_gemm(hardware: str, rows: pd.DataFrame) -> list[MeasuredComparison]:
    """Compute-bound GEMM throughput held for seconds at the power limit (reported without a target: the model's
    GEMM efficiencies describe the kernels' short-run rate; docs/gpu-calibration.md)."""
    device = _device(hardware)
    out = []
    for label, dtype in (("gemm_bf16 M=N=K=8192", "bf16"), ("gemm_fp8 M=N=K=8192", "fp8")):
        rate = _value(rows, "sustained_rate", label)
        if rate is not None:
            predicted = 2.0 * 8192**3 / device.explain(ot._gemm_op(dtype, 8192, 8192, 8192))["time_s"] / 1e12
            out.append(MeasuredComparison(hardware, "sustained gemm", f"{label} for 3 s (random data)",
                                          float(rate["value"]), predicted, "TFLOP/s", "holdout"))
    return out


def ramp_rates(hardware: str) -> pd.DataFrame:
    """Per ramp case (benchmark, case): the burst rate (windows ending by 50 ms after 2 s idle), the sustained
    rate (windows from 1.2 s on), their unit, and the board power NVML reported over the sustained windows."""
    rows = load_measurements(hardware)
    ramp = rows[rows["benchmark"].str.endswith("_ramp")].copy()
    ramp["t"] = ramp["size"].str.extract(r"t=([\d.]+)s", expand=False).astype(float)
    ramp["case"] = ramp["size"].str.replace(r" t=.*", "", regex=True)
    ramp["power_w"] = ramp["size"].str.extract(r"power_w=([\d.]+)", expand=False).astype(float)
    out = []
    for (bench, case), g in ramp.groupby(["benchmark", "case"], sort=False):
        out.append({"benchmark": bench, "case": case, "unit": g["unit"].iloc[0],
                    "burst": float(g.loc[g["t"] <= BURST_S, "value"].mean()),
                    "sustained": float(g.loc[g["t"] >= SUSTAINED_FROM_S, "value"].mean()),
                    "power_w": float(g.loc[g["t"] >= SUSTAINED_FROM_S, "power_w"].mean())})
    return pd.DataFrame(out)


def sustained_compute_fraction_fit(hardware: str) -> float:
    """Sustained over burst rate of the compute-bound GEMM ramps (bf16 and fp8 8192^3), averaged: the share of its
    short-run rate compute-bound tensor work keeps at the power limit."""
    rates = ramp_rates(hardware)
    gemm = rates[rates["benchmark"].str.startswith("gemm_")]
    return float((gemm["sustained"] / gemm["burst"]).mean())


def _decode_step_ops(batch: int, context: int) -> list:
    """One layer of measure_gpu's decode step in the model: four FP8 projections at TP8 and bf16 GQA decode
    attention (8 query heads, 1 KV head of 128) over `context` cached tokens per sequence."""
    shapes = (((Q_HEADS_70B + 2 * KV_HEADS_70B) * 128 // 8, 8192), (8192, Q_HEADS_70B * 128 // 8),
              (2 * FFN_70B // 8, 8192), (8192, FFN_70B // 8))
    ops = [ot._gemm_op("fp8", batch, n, k) for n, k in shapes]
    ops.append(ot._attention_op(OpKind.ATTENTION_DECODE, SimpleNamespace(
        batch=batch, q_heads=Q_HEADS_70B // 8, kv_heads=KV_HEADS_70B // 8, head_dim=128, kv_dtype="bf16", dtype="bf16",
        past_tokens=context, isl=1)))
    return ops


def _prefill_step_ops(tokens: int) -> list:
    """One layer of measure_gpu's prefill step in the model: four FP8 projections at TP8 over `tokens` tokens and
    causal bf16 GQA attention (8 query heads, 1 KV head of 128) over one prompt of that length."""
    ops = [ot._gemm_op("fp8", tokens, op.n, op.k) for op in _decode_step_ops(1, 1)[:4]]
    ops.append(ot._attention_op(OpKind.ATTENTION_PREFILL, SimpleNamespace(
        batch=1, q_heads=Q_HEADS_70B // 8, kv_heads=KV_HEADS_70B // 8, head_dim=128, kv_dtype="bf16", dtype="bf16",
        past_tokens=0, isl=tokens)))
    return ops


def _step_s(device: GpuDevice, ops: list) -> float:
    return sum(device.explain(op)["time_s"] for op in ops)


_PARTS = {"decode_step_fp8_ramp": ("decode step", slice(None)), "decode_attention_ramp": ("attention part", slice(4, None)),
          "decode_projections_fp8_ramp": ("projection part", slice(0, 4)),
          "prefill_step_fp8_ramp": ("prefill step", slice(None))}


def _ramps(hardware: str) -> list[MeasuredComparison]:
    """The power-limit throttle: sustained over burst rate, measured and modelled, for the compute-bound GEMMs (the
    fit) and the decode steps, whole and in parts (holdout); the decode steps' rates, burst and sustained, and their
    board power (attention alone at the largest batch is the fit of `decode_attention_pj_per_bit`)."""
    rates = ramp_rates(hardware)
    if rates.empty:
        return []
    burst, sustained = _device(hardware, sustained=False), _device(hardware, sustained=True)
    biggest = {}
    for r in rates.itertuples():
        if r.benchmark in _PARTS and "batch" in _fields(r.case):
            batch = int(_fields(r.case)["batch"])
            biggest[r.benchmark] = max(biggest.get(r.benchmark, 0), batch)
    out = []
    for r in rates.itertuples():
        if r.benchmark.startswith("gemm_"):
            dtype = "fp8" if "fp8" in r.benchmark else "bf16"
            op = ot._gemm_op(dtype, 8192, 8192, 8192)
            model = burst.explain(op)["time_s"] / sustained.explain(op)["time_s"]
            out.append(MeasuredComparison(hardware, "power-limit throttle", f"{r.case}: sustained / burst",
                                          r.sustained / r.burst, model, "ratio", "fit"))
            continue
        if r.benchmark not in _PARTS:
            continue
        group, part = _PARTS[r.benchmark]
        f = _fields(r.case)
        layers = int(re.search(r"(\d+) layers", r.case).group(1))
        if r.benchmark == "prefill_step_fp8_ramp":
            batch, ops = 0, _prefill_step_ops(int(f["tokens"]))
        else:
            batch = int(f["batch"])
            ops = _decode_step_ops(batch, int(f["ctx"]))[part]
        t_burst, t_sustained = (layers * _step_s(d, ops) for d in (burst, sustained))
        out.append(MeasuredComparison(hardware, "power-limit throttle", f"{r.case}: sustained / burst",
                                      r.sustained / r.burst, t_burst / t_sustained, "ratio", "holdout"))
        out.append(MeasuredComparison(hardware, group, f"{r.case}, burst", r.burst, layers / t_burst,
                                      "layers/s", "holdout"))
        out.append(MeasuredComparison(hardware, group, f"{r.case}, sustained", r.sustained, layers / t_sustained,
                                      "layers/s", "holdout"))
        fitted = r.benchmark == "decode_attention_ramp" and batch == biggest.get(r.benchmark)
        out.append(MeasuredComparison(hardware, f"{group} power", f"{r.case}, sustained", r.power_w,
                                      _ops_power_w(sustained, ops, "fp8"), "W", "fit" if fitted else "holdout"))
    return out


def compare(hardware: str) -> list[MeasuredComparison]:
    """Every measured case of `hardware` next to the model's prediction."""
    rows = load_measurements(hardware)
    return (_gemm(hardware, rows) + _attention(hardware, rows) + _memory_and_launch(hardware, rows)
            + _power(hardware, rows) + _sustained_gemm(hardware, rows) + _ramps(hardware))


def summarize(comparisons: list[MeasuredComparison]) -> pd.DataFrame:
    """Per (hardware, group): cases, MAPE, mean signed error, worst case, target (NaN: reported only)."""
    records = [{"hardware": c.hardware, "group": c.group, "error": c.error, "role": c.role} for c in comparisons]
    frame = pd.DataFrame(records)
    out = frame.groupby(["hardware", "group"], sort=False).agg(
        cases=("error", "size"), mape=("error", lambda e: float(np.mean(np.abs(e)))),
        bias=("error", "mean"), worst=("error", lambda e: float(e.iloc[int(np.argmax(np.abs(e.to_numpy())))])),
        fitted=("role", lambda r: int((r == "fit").sum()))).reset_index()
    out["target"] = out["group"].map(MEASURED_TARGETS)
    return out


def check_targets(summary: pd.DataFrame) -> list[str]:
    """One line per group whose MAPE exceeds its target."""
    missed = summary[summary["target"].notna() & (summary["mape"] > summary["target"])]
    return [f"{r.hardware} {r.group}: MAPE {r.mape:.1%} > {r.target:.0%}" for r in missed.itertuples()]


def format_comparisons(comparisons: list[MeasuredComparison], detail: bool = False) -> str:
    """The summary table, and with `detail` every case."""
    lines = []
    if detail:
        lines.append(f"{'hardware':8} {'group':21} {'case':58} {'measured':>11} {'model':>11} {'unit':7} {'error':>7}  role")
        for c in comparisons:
            lines.append(f"{c.hardware:8} {c.group:21} {c.case[:58]:58} {c.measured:11.4g} {c.predicted:11.4g} "
                         f"{c.unit:7} {c.error:+7.1%}  {c.role}")
        lines.append("")
    summary = summarize(comparisons)
    lines.append(f"{'hardware':8} {'group':21} {'cases':>5} {'fit':>4} {'MAPE':>7} {'bias':>7} {'worst':>7} {'target':>7}")
    for r in summary.itertuples():
        target = "-" if pd.isna(r.target) else f"{r.target:.0%}"
        lines.append(f"{r.hardware:8} {r.group:21} {r.cases:5d} {r.fitted:4d} {r.mape:7.1%} {r.bias:+7.1%} "
                     f"{r.worst:+7.1%} {target:>7}")
    return "\n".join(lines)
