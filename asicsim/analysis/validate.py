"""The validation table: every published measurement the package ships, predicted versus published.

Groups: `microbenchmark` (asicsim/data/microbenchmarks.csv, operator level; the GPU model is calibrated on
these), `end-to-end` (asicsim/data/e2e_calibration.csv; never fitted) and the further public end-to-end
rows of asicsim/data/validation.csv (each with source, version, date), grouped by how they were served.

In-flight rows reproduce how trtllm-bench measured them (`trtllm_bench_settings`, `published_requests`):
the engine's max batch and max_num_tokens from trtllm-bench's dataset-based sizing, the perf overview's
request count for the ISL/OSL pair (all arriving at t = 0), and the `inflight` scheduler (TensorRT-LLM's
GUARANTEED_NO_EVICT admission without context chunking). Static rows (TensorRT-LLM 0.5) keep their
published batch and run `E2E_REQUESTS` requests with the `static` scheduler.

Targets (`check`): each microbenchmark row within 10%; over every end-to-end row of every dense end-to-end
group (the e2e_calibration.csv rows and each served-as group of validation.csv, B200 included): MAPE at most
10%, no row worse than 25%, and no sign bias (mean signed error within +-5%). Rows that measure something the
model deliberately does not model carry an `excluded` reason and count toward no target.

Rows of non-NVIDIA accelerators on the GPU model (groups starting "end-to-end (accelerator"; AMD Instinct and Intel
Gaudi, issue 17) are reported with their group's MAPE and count toward no target; a group naming "vLLM" runs the
`vllm-throughput` harness (its chunked-prefill scheduler), one naming "SGLang" the same harness (SGLang's server is
also continuous batching with chunked prefill; no SGLang-specific preset exists), one naming "static" the static
harness.

Mixture-of-experts rows (groups starting "end-to-end (MoE"; issue 16) are run the same way, with the row's
expert parallelism (`ep`) and attention data parallelism (`attention_dp`), and reported on their own
(`moe_summary`: MAPE, mean signed error and worst row per group and over all of them) with no target: the
grouped-GEMM, MLA and all-to-all terms they depend on are not yet calibrated on operator data, and the
published configurations leave engine sizing under attention DP open (docs/gpu-calibration.md). Rows the
model cannot represent (e.g. multi-token prediction) carry a `skip` reason in validation.csv and are listed
by `skipped_rows`, never run and never dropped silently.

Per-user rows (groups starting "per-user"; issue 17): one stream alone at batch 1 (harness "per-user") on the row's
tp x pp chips (`pp` column, default 1), metric `per_user_output_tokens_per_s` = 1 / the run's median time per output
token (vendors' and Artificial Analysis' per-user speed counts output tokens after the first). They are reported with
their errors and count toward no target: the systems they describe (Groq, Cerebras, SambaNova) publish no
operator-level measurement the model could be calibrated on.

Per-GPU figures (metric `output_tokens_per_s_per_gpu`, as the TensorRT-LLM perf overview prints them since
late 2025; `input_tokens_per_s_per_gpu` for a prefill pool measured alone) are predicted as the run's tokens/s
divided by its chips (`PER_CHIP_METRICS`).

Per-user rows (a group naming "per-user": e.g. phone decode figures such as Qualcomm AI Hub's response rate) run
one request alone through the `per-user` harness (`row_harness`); their metric `decode_tokens_per_s` is one over the
run's median time per output token (the rate after the first token, as those tables define it), or
`ttft_p50_s`, the time to the first token. Such groups are reported with no target.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from importlib import resources
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from asicsim.core import harness as _harness
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.runner import RunSpec, run_workload
from asicsim.gpusim.device import GpuDevice
from asicsim.gpusim.options import GpuOptions, kernel_timing
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind

__all__ = [
    "ValidationRow", "E2E_REQUESTS", "MICRO_TOLERANCE", "E2E_MAPE_TARGET", "E2E_WORST_TARGET", "E2E_BIAS_TARGET",
    "TARGET_GROUPS", "is_e2e_group", "e2e_summary",
    "validation_rows", "microbenchmark_rows", "operator_rows", "OPERATOR_METRIC", "NCCL_METRIC", "OPERATOR_METRICS",
    "e2e_rows", "group_summary", "check_targets", "format_table",
    "rows_as_dicts", "EngineSettings", "trtllm_scheduler", "trtllm_bench_settings", "published_requests",
    "row_run_spec", "trtllm_harness", "row_harness", "SkippedRow", "skipped_rows", "is_moe_group", "moe_summary",
    "MOE_GROUP_PREFIX", "ACCELERATOR_GROUP_PREFIX", "is_accelerator_group", "PER_USER_PREFIX", "PER_USER_METRIC",
    "DECODE_RATE_METRIC", "PER_CHIP_METRICS", "E2E_METRICS", "predicted_metric",
    "TRTLLM_BENCH_KV_FRACTION", "TRTLLM_RUNTIME_KV_FRACTION", "TRTLLM_TOKENS_PER_BLOCK", "PUBLISHED_REQUESTS",
]

E2E_REQUESTS = 512
MICRO_TOLERANCE = 0.10
E2E_MAPE_TARGET = 0.10
E2E_WORST_TARGET = 0.25
E2E_BIAS_TARGET = 0.05
MICRO_GROUP = "microbenchmark"
E2E_GROUP = "end-to-end"
OPERATOR_METRIC = "gemm_tflops"  # validation.csv rows measured at operator level (not end-to-end)
NCCL_METRIC = "nccl_busbw"  # operator-level all-reduce rows: `tp` is the group size, `model` the message size
OPERATOR_METRICS = (OPERATOR_METRIC, NCCL_METRIC)
TARGET_GROUPS = (MICRO_GROUP, E2E_GROUP)
MOE_GROUP_PREFIX = "end-to-end (MoE"  # mixture-of-experts groups: reported, not part of the targets
# Non-NVIDIA accelerators on the GPU model (AMD Instinct, Intel Gaudi; docs/accelerators/gpulike.md): reported per
# group, not part of the targets, which were set for the NVIDIA specs calibrated on operator tables; these chips'
# calibration terms are partly assumed where no operator measurement is public.
ACCELERATOR_GROUP_PREFIX = "end-to-end (accelerator"
# Per-chip figures: the run's summary metric divided by the run's chips (the TensorRT-LLM perf overview prints
# tokens/s per GPU for its MoE tables).
PER_CHIP_METRICS = {"output_tokens_per_s_per_gpu": "output_tokens_per_s",
                    "input_tokens_per_s_per_gpu": "input_tokens_per_s"}
PER_USER_PREFIX = "per-user"  # groups of single-stream rows (harness per-user), reported with no target
PER_USER_METRIC = "per_user_output_tokens_per_s"  # 1 / median time per output token of the one stream
# A phone runtime's decode rate after the first token (Qualcomm AI Hub's response rate): the same 1 / median TPOT.
DECODE_RATE_METRIC = "decode_tokens_per_s"
# vLLM-served rows may publish total (input + output) tokens/s, as `vllm bench throughput` prints it; per-user rows
# their per-user speed, decode rate or the time to the first token of a short prompt (the summary's median TTFT).
PER_USER_METRICS = (PER_USER_METRIC, DECODE_RATE_METRIC, "ttft_p50_s")
E2E_METRICS = ("output_tokens_per_s", "total_tokens_per_s", *PER_CHIP_METRICS, *PER_USER_METRICS)
# Microbenchmark device names -> spec names (the GB200 HBM row stands for the B200's HBM3e stacks).
_DEVICE = {"gb200": "b200"}
# Arrays read and written per element by each bandwidth benchmark (STREAM counts the bytes of both); a row
# that does not name its kernel (gb200 `hbm_stream`) is taken as a copy.
_STREAM_ARRAYS = {"hbm_stream_copy": (1, 1), "hbm_stream_triad": (2, 1), "hbm_stream_dot": (2, 0),
                  "hbm_device_to_device": (1, 1)}
_EXCLUDED = {
    "flash_attention_2_fwd_fp16": "FlashAttention-2 lacks Hopper wgmma; serving stacks on H100 run FA3-class "
                                  "kernels, which the model prices (docs/gpu-calibration.md)",
}


@dataclass(frozen=True)
class SkippedRow:
    """A published row the model cannot represent: kept in the data, listed with the reason, never run."""

    group: str
    label: str
    hardware: str
    published: float
    unit: str
    source: str
    reason: str


@dataclass(frozen=True)
class ValidationRow:
    """One published measurement and the model's prediction of it (same unit)."""

    group: str
    label: str
    hardware: str
    unit: str
    published: float
    predicted: float
    source: str
    excluded: str = ""

    @property
    def error(self) -> float:
        """Signed relative error: predicted / published - 1."""
        return self.predicted / self.published - 1.0


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(resources.files("asicsim") / "data" / name)


# ---- microbenchmarks ------------------------------------------------------------------------------------
_SIZE_UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9}


def _nccl_bytes(size: str) -> float:
    """nccl-tests sizes are powers of two printed in decimal units (33MB = 2^25 B): the nearest power."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]B)\s*", size)
    if not match:
        raise InputError("microbenchmarks.csv", "size", f"cannot read message size {size!r}")
    return 2.0 ** round(math.log2(float(match.group(1)) * _SIZE_UNITS[match.group(2)]))


def _gemm_shape(size: str) -> tuple[int, int, int]:
    """(m, n, k) from 'M=N=K=1024' or 'M=6144 N=12288 K=12288'."""
    if size.startswith("M=N=K="):
        m = int(size.split("=")[-1])
        return m, m, m
    parts = dict(part.split("=") for part in size.split())
    return int(parts["M"]), int(parts["N"]), int(parts["K"])


def _predict_micro(device: GpuDevice, benchmark: str, size: str) -> float:
    """The model's value of one microbenchmark, in the row's unit."""
    if benchmark.startswith("hbm_"):
        arrays_read, arrays_written = _STREAM_ARRAYS.get(benchmark, (1, 1))
        array_bytes = 2.0**31  # 2 GiB STREAM arrays: latency negligible
        moved = (arrays_read + arrays_written) * array_bytes
        return moved / device._stream_s(arrays_read * array_bytes, arrays_written * array_bytes) / 1e12
    if benchmark.startswith("gemm_"):
        dtype = "fp8" if "fp8" in benchmark else "bf16"
        m, n, k = _gemm_shape(size)
        elem = 1.0 if dtype == "fp8" else 2.0
        op = Op("gemm", OpKind.MATMUL, dtype, flops=2.0 * m * n * k, weight_bytes=k * n * elem,
                act_in_bytes=m * k * elem, act_out_bytes=m * n * 2.0, m=m, n=n, k=k)
        return op.flops / device.explain(op)["time_s"] / 1e12
    if benchmark.startswith("flash_attention"):
        dtype = "fp8" if benchmark.endswith("fp8") else "bf16"
        seq = int(re.search(r"seq(\d+)", size).group(1)) if "seq" in size and re.search(r"seq(\d+)", size) else 16384
        op = Op("fa", OpKind.ATTENTION_PREFILL, dtype, q_heads=16, kv_heads=16, head_dim=128,
                seq_new=np.array([seq]), seq_past=np.array([0]))
        detail = device.explain(op)
        return detail["useful_flops"] / detail["time_s"] / 1e12
    if benchmark == "nccl_allreduce_busbw":
        nbytes = _nccl_bytes(size)
        group = device.chips
        op = Op("ar", OpKind.ALLREDUCE, "bf16", comm_bytes=nbytes, group=group)
        return nbytes * 2.0 * (group - 1) / group / device.explain(op)["time_s"] / 1e9
    if benchmark == "cuda_kernel_launch_overhead":
        return device.spec.launch_overhead_s * 1e6
    raise InputError("microbenchmarks.csv", "benchmark", f"no model for {benchmark!r}")


def microbenchmark_rows() -> list[ValidationRow]:
    """Every row of microbenchmarks.csv against the GPU model (NCCL rows: the plain-NCCL stack)."""
    out = []
    # Kernel benchmarks: plain NCCL, and the bare attention kernel rather than a serving stack's attention op.
    nccl = kernel_timing(replace(GpuOptions.for_stack("generic"), stack_attention=False))
    for row in _data("microbenchmarks.csv").itertuples(index=False):
        name, _, chips = str(row.device).partition(" x")
        name = _DEVICE.get(name, name)
        if name == "any":
            name = "h100-sxm"
        device = GpuDevice(load_hardware(name), int(chips or 1), nccl)
        predicted = _predict_micro(device, row.benchmark, str(row.size))
        out.append(ValidationRow(MICRO_GROUP, f"{row.benchmark} {row.size}", str(row.device), str(row.unit),
                                 float(row.value), predicted, str(row.source), _EXCLUDED.get(row.benchmark, "")))
    return out


# ---- trtllm-bench methodology: the harness preset of asicsim.core.harness ------------------------------------
TRTLLM_BENCH_KV_FRACTION = _harness.TRTLLM_BENCH_KV_FRACTION
TRTLLM_RUNTIME_KV_FRACTION = _harness.TRTLLM_RUNTIME_KV_FRACTION
TRTLLM_TOKENS_PER_BLOCK = _harness.TRTLLM_TOKENS_PER_BLOCK
PUBLISHED_REQUESTS = _harness.TRTLLM_PUBLISHED_REQUESTS
EngineSettings = _harness.EngineSettings
trtllm_bench_settings = _harness.trtllm_engine_settings


def published_requests(isl: int, osl: int) -> int:
    """The perf overview's request count for an ISL/OSL pair; InputError for a pair it does not list."""
    try:
        return PUBLISHED_REQUESTS[(isl, osl)]
    except KeyError:
        raise InputError("e2e_calibration.csv", "isl/osl", f"no published request count for {isl}/{osl}") from None


# ---- end to end -----------------------------------------------------------------------------------------
def _trtllm_version(version: str) -> tuple[int, int]:
    match = re.search(r"(\d+)\.(\d+)", version)
    if not match:
        raise InputError("validation.csv", "version", f"cannot read a TensorRT-LLM version from {version!r}")
    return int(match.group(1)), int(match.group(2))


def trtllm_scheduler(version: str) -> str:
    """The scheduler matching a TensorRT-LLM release's trtllm-bench runs: context chunking on in the
    TensorRT-engine flow (`ExecutorSettingsConfig.chunking` defaults to True, tensorrt_llm/bench/run/
    dataclasses.py), off in the PyTorch-backend flow the perf overview uses from v0.19 (`trtllm-bench
    throughput --enable_chunked_context` is an opt-in flag, tensorrt_llm/bench/benchmark/throughput.py)."""
    return "inflight" if _trtllm_version(version) >= (0, 19) else "inflight-chunked"


def trtllm_harness(version: str) -> str:
    """The harness preset of a release's perf-overview runs: the PyTorch backend from v0.19 (its perf overview
    runs `trtllm-bench throughput --backend pytorch`), the TensorRT engine flow before."""
    return "trtllm-bench-pytorch" if _trtllm_version(version) >= (0, 19) else "trtllm-bench"


def row_harness(group: str, version: str) -> str:
    """The harness of a row: a group that names its flow ("vLLM", "SGLang", "per-user", "PyTorch", "engine flow")
    says which; otherwise the TensorRT-LLM release decides (`trtllm_harness`). SGLang-served rows run the
    `vllm-throughput` preset: both servers batch continuously with chunked prefill, and no SGLang preset exists."""
    if "per-user" in group:  # one stream at batch 1 (vendors' single-user latency runs)
        return "per-user"
    if "vLLM" in group or "SGLang" in group:
        return "vllm-throughput"
    if "PyTorch" in group:
        return "trtllm-bench-pytorch"
    if "engine flow" in group:
        return "trtllm-bench"
    return trtllm_harness(version)


def row_run_spec(hardware: str, model: str, dtype: str, kv_dtype: str, tp: int, isl: int, osl: int, served: str,
                 requests: int = 0, max_batch: int = 0, version: str = "", *, ep: int = 0,
                 attention_dp: bool = False, max_num_tokens: int = 0, harness: str = "", pp: int = 1) -> RunSpec:
    """The run a published end-to-end row measured, through the same harness presets as `asicsim run --harness`:
    in-flight rows are trtllm-bench runs (`harness`, default by the row's TensorRT-LLM `version`; the scheduler
    by version, the PyTorch flow without context chunking), static rows static batching at the published batch.
    `requests` 0: the harness's count (static: `E2E_REQUESTS`). `ep` 0: the run's default (tp with attention
    DP, else 1). `max_batch` / `max_num_tokens` 0: the harness's sizing; with attention DP they are the published
    per-rank values (TensorRT-LLM applies both per attention-DP rank), so the tp-chip group gets tp times them.
    A dtype the GPU has no datapath for is what the published stack ran wider (MXFP4 experts as W4A16 on
    Hopper), so such a row runs widened (fp4 weight bytes on the next wider datapath). Per-user rows (`served`
    "per-user") run one request alone on tp x `pp` chips (`max_num_tokens` 0: the harness's prefill chunk)."""
    widen = dtype not in make_device(load_hardware(hardware), tp).supported_dtypes
    if served == "per-user":
        return RunSpec(hardware=hardware, chips=tp * pp, model=model, dtype=dtype, kv_dtype=kv_dtype or None, tp=tp,
                       pp=pp, isl=isl, osl=osl, harness="per-user", max_tokens_per_step=max_num_tokens or None,
                       widen=widen)
    ranks = tp if attention_dp else 1
    moe = {"ep": ep or None, "attention_dp": attention_dp, "widen": widen}
    if harness == "per-user":  # the preset's own request count, batch 1 and static scheduler; max_num_tokens: the
        # runtime's prompt chunk where published (a phone runtime's 128-token prompt processor)
        return RunSpec(hardware=hardware, chips=tp, model=model, dtype=dtype, kv_dtype=kv_dtype or None, tp=tp,
                       isl=isl, osl=osl, requests=requests or None, max_batch=max_batch or None, harness=harness,
                       max_tokens_per_step=max_num_tokens or None, **moe)
    if served == "in-flight":
        harness = harness or trtllm_harness(version)
        scheduler = ("chunked-prefill" if harness == "vllm-throughput" else
                     "inflight" if harness == "trtllm-bench-pytorch" else trtllm_scheduler(version))
        return RunSpec(hardware=hardware, chips=tp, model=model, dtype=dtype, kv_dtype=kv_dtype or None, tp=tp,
                       isl=isl, osl=osl, requests=requests or None, max_batch=max_batch * ranks or None,
                       max_tokens_per_step=max_num_tokens * ranks or None, harness=harness, scheduler=scheduler,
                       **moe)
    return RunSpec(hardware=hardware, chips=tp, model=model, dtype=dtype, kv_dtype=kv_dtype or None, tp=tp, isl=isl,
                   osl=osl, requests=requests or E2E_REQUESTS, max_batch=max_batch or None, harness="static", **moe)


def _table_spec(row, requests: int = 0, effects=()) -> RunSpec:
    """`row_run_spec` for one row of `_e2e_table` (`requests` 0: the row's own count)."""
    spec = row_run_spec(str(row.hardware), str(row.model), str(row.dtype), str(row.kv_dtype), int(row.tp),
                        int(row.isl), int(row.osl), str(row.served), requests or int(row.requests),
                        int(row.max_batch), f"{row.version} {row.source}", ep=int(row.ep),
                        attention_dp=bool(row.attention_dp), max_num_tokens=int(row.max_num_tokens),
                        harness=row_harness(str(row.group), f"{row.version} {row.source}")
                        if row.served == "in-flight" else "", pp=int(row.pp))
    return replace(spec, effects=tuple(effects)) if effects else spec


def predicted_metric(result, metric: str) -> float:
    """A row's metric from a run: a summary key, or a per-chip figure (`PER_CHIP_METRICS`)."""
    if metric in PER_CHIP_METRICS:
        return float(result.summary[PER_CHIP_METRICS[metric]]) / result.description.chips
    if metric in (PER_USER_METRIC, DECODE_RATE_METRIC):
        return 1.0 / float(result.summary["tpot_p50_s"])
    return float(result.summary[metric])


def row_label(row) -> str:
    """'model dtype tpN isl/osl', with the MoE layout (epN, dep = attention DP) when the row has one."""
    layout = f" pp{int(row.pp)}" if int(getattr(row, "pp", 1)) > 1 else ""
    if int(row.ep) > 1 or bool(row.attention_dp):
        layout += f" ep{int(row.ep) or row.tp}{' dep' if row.attention_dp else ''}"
    return f"{row.model} {row.dtype} tp{row.tp}{layout} {row.isl}/{row.osl}"


_E2E_DEFAULTS = {"kv_dtype": "", "notes": "", "ep": 0, "attention_dp": 0, "requests": 0, "max_num_tokens": 0,
                 "skip": "", "max_batch": 0, "pp": 1}


def _validation_e2e() -> pd.DataFrame:
    """validation.csv's end-to-end rows (skipped ones included), source with version and date."""
    more = _data("validation.csv")
    more = more[~more["metric"].isin(OPERATOR_METRICS)].copy()
    more = more.fillna({k: v for k, v in _E2E_DEFAULTS.items() if k in more.columns})
    more["served"] = np.where(more["group"].str.startswith(PER_USER_PREFIX), "per-user",
                              np.where(more["group"].str.contains("static"), "static", "in-flight"))
    more["source"] = more["source"] + " (" + more["version"] + ", " + more["date"] + ")"
    return more


def _e2e_table() -> pd.DataFrame:
    """e2e_calibration.csv and validation.csv's runnable rows as one table (group, served, kv_dtype, max_batch,
    ep, attention_dp, requests, max_num_tokens; 0 = the harness's)."""
    base = _data("e2e_calibration.csv").assign(group=E2E_GROUP, served="in-flight", version="", date="")
    base = base.assign(**{k: v for k, v in _E2E_DEFAULTS.items() if k not in base.columns})
    more = _validation_e2e()
    more = more[more["skip"].astype(str).str.len() == 0]
    table = pd.concat([base, more], ignore_index=True)
    for column in ("ep", "attention_dp", "requests", "max_num_tokens", "max_batch", "pp"):
        table[column] = table[column].fillna(0).astype(int)
    return table


def skipped_rows() -> list[SkippedRow]:
    """validation.csv's end-to-end rows with a `skip` reason: configurations the model cannot represent."""
    more = _validation_e2e()
    more = more[more["skip"].astype(str).str.len() > 0]
    return [SkippedRow(str(r.group), row_label(r), str(r.hardware), float(r.value), str(r.unit), str(r.source),
                       str(r.skip)) for r in more.itertuples(index=False)]


def e2e_rows(requests: int = 0, progress: Callable[[str], None] | None = None) -> list[ValidationRow]:
    """Every runnable end-to-end row (e2e_calibration.csv, then validation.csv). `requests` 0: each row's count
    (validation.csv's `requests`, else the harness's: published count for in-flight rows, `E2E_REQUESTS` for
    static ones); otherwise that many for every row."""
    out = []
    for row in _e2e_table().itertuples(index=False):
        label = row_label(row)
        if progress is not None:
            progress(label)
        if row.served == "per-user" and row.metric not in PER_USER_METRICS:
            raise InputError("validation.csv", "metric", f"per-user rows report {' or '.join(PER_USER_METRICS)}, got "
                                                         f"{row.metric!r}")
        if row.served == "in-flight" and row.metric not in E2E_METRICS:
            raise InputError("validation.csv", "metric",
                             f"in-flight rows report {' or '.join(E2E_METRICS)}, got {row.metric!r}")
        predicted = predicted_metric(run_workload(_table_spec(row, requests)), str(row.metric))
        out.append(ValidationRow(str(row.group), label, str(row.hardware), str(row.unit), float(row.value),
                                 predicted, str(row.source)))
    return out


def operator_rows() -> list[ValidationRow]:
    """The operator-level rows of validation.csv, predicted like the microbenchmarks: GEMMs (metric
    `gemm_tflops`, `model` 'M=.. N=.. K=..'; never fitted) and NCCL all-reduce bus bandwidth by group size
    (metric `nccl_busbw`; the 2-4 GPU rows are where `nccl_ring_busbw_bytes_per_s` comes from)."""
    table = _data("validation.csv")
    out = []
    for row in table[table["metric"].isin(OPERATOR_METRICS)].itertuples(index=False):
        if row.metric == NCCL_METRIC:  # `model` holds the message size, `tp` the group size
            device = GpuDevice(load_hardware(str(row.hardware)), int(row.tp), kernel_timing(GpuOptions.for_stack("generic")))
            label, predicted = f"nccl_allreduce_busbw {row.model} x{row.tp}", _predict_micro(
                device, "nccl_allreduce_busbw", str(row.model))
        else:
            device = GpuDevice(load_hardware(str(row.hardware)), 1, kernel_timing(GpuOptions()))
            label = f"gemm_{row.dtype} {row.model}"
            predicted = _predict_micro(device, f"gemm_{row.dtype}", str(row.model))
        out.append(ValidationRow(str(row.group), label, str(row.hardware), str(row.unit), float(row.value), predicted,
                                 f"{row.source} ({row.version}, {row.date})"))
    return out


def validation_rows(requests: int = 0, progress=None) -> list[ValidationRow]:
    """The whole table: microbenchmarks, further operator-level rows, then end-to-end rows."""
    return microbenchmark_rows() + operator_rows() + e2e_rows(requests, progress)


# ---- summaries and targets ------------------------------------------------------------------------------
def group_summary(rows: Iterable[ValidationRow]) -> dict[str, dict[str, float]]:
    """Per group: row count, MAPE and worst absolute error over the rows not excluded."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.excluded:
            continue
        entry = out.setdefault(row.group, {"rows": 0, "mape": 0.0, "worst": 0.0})
        entry["rows"] += 1
        entry["mape"] += abs(row.error)
        entry["worst"] = max(entry["worst"], abs(row.error))
    for entry in out.values():
        entry["mape"] /= entry["rows"]
    return out


def is_moe_group(group: str) -> bool:
    """Whether a group holds mixture-of-experts end-to-end rows (reported by `moe_summary`, no target)."""
    return group.startswith(MOE_GROUP_PREFIX)


def is_accelerator_group(group: str) -> bool:
    """Whether a group holds end-to-end rows of a non-NVIDIA accelerator (reported, no target)."""
    return group.startswith(ACCELERATOR_GROUP_PREFIX)


def is_e2e_group(group: str) -> bool:
    """Whether a group holds dense end-to-end serving rows (every such group counts toward the end-to-end
    targets; the MoE and accelerator groups do not)."""
    return group.startswith(E2E_GROUP) and not is_moe_group(group) and not is_accelerator_group(group)


def moe_summary(rows: Iterable[ValidationRow]) -> dict[str, dict]:
    """Per MoE group and over all of them ("all MoE"): rows, MAPE, mean signed error (bias), the worst row
    (label, hardware, signed error). No target: see the module docstring."""
    rows = [r for r in rows if is_moe_group(r.group) and not r.excluded]
    out: dict[str, dict] = {}
    for name in [*dict.fromkeys(r.group for r in rows), "all MoE"]:
        members = rows if name == "all MoE" else [r for r in rows if r.group == name]
        if not members:
            continue
        worst = max(members, key=lambda r: abs(r.error))
        out[name] = {"rows": len(members), "mape": sum(abs(r.error) for r in members) / len(members),
                     "bias": sum(r.error for r in members) / len(members),
                     "worst": {"label": worst.label, "hardware": worst.hardware, "error": worst.error}}
    return out


def e2e_summary(rows: Iterable[ValidationRow]) -> dict[str, float]:
    """Rows, MAPE, mean signed error and worst absolute error over every end-to-end row not excluded."""
    errors = [r.error for r in rows if is_e2e_group(r.group) and not r.excluded]
    if not errors:
        return {"rows": 0, "mape": 0.0, "bias": 0.0, "worst": 0.0}
    return {"rows": len(errors), "mape": sum(map(abs, errors)) / len(errors), "bias": sum(errors) / len(errors),
            "worst": max(map(abs, errors))}


def check_targets(rows: Iterable[ValidationRow]) -> list[str]:
    """The missed targets, one line each (empty when all are met)."""
    rows = [r for r in rows if not r.excluded]
    missed = [f"{r.label} ({r.hardware}): {r.error:+.1%} is outside +-{MICRO_TOLERANCE:.0%}"
              for r in rows if r.group == MICRO_GROUP and abs(r.error) > MICRO_TOLERANCE]
    summary = e2e_summary(rows)
    if summary["rows"]:
        if summary["mape"] > E2E_MAPE_TARGET:
            missed.append(f"end-to-end MAPE {summary['mape']:.1%} over {summary['rows']} rows is over "
                          f"{E2E_MAPE_TARGET:.0%}")
        if abs(summary["bias"]) > E2E_BIAS_TARGET:
            missed.append(f"end-to-end mean signed error {summary['bias']:+.1%} is outside +-{E2E_BIAS_TARGET:.0%}")
        missed += [f"{r.label} ({r.hardware}): {r.error:+.1%} is worse than +-{E2E_WORST_TARGET:.0%}"
                   for r in rows if is_e2e_group(r.group) and abs(r.error) > E2E_WORST_TARGET]
    return missed


def format_table(rows: list[ValidationRow], skipped: Iterable[SkippedRow] = ()) -> str:
    """Rows grouped, with signed errors and each group's MAPE (MoE groups: also bias and worst row; no target),
    then the skipped rows with their reasons."""
    lines = []
    summary = group_summary(rows)
    moe = moe_summary(rows)
    skipped = list(skipped)
    for group in dict.fromkeys(r.group for r in rows):
        lines.append(f"== {group}")
        lines.append(f"{'row':44} {'hardware':12} {'published':>11} {'predicted':>11} {'unit':7} {'error':>7}")
        for r in (r for r in rows if r.group == group):
            note = f"  excluded: {r.excluded}" if r.excluded else ""
            lines.append(f"{r.label[:44]:44} {r.hardware[:12]:12} {r.published:>11,.2f} {r.predicted:>11,.2f} "
                         f"{r.unit[:7]:7} {r.error:>+7.1%}{note}")
        if group in moe:
            m = moe[group]
            lines.append(f"   MAPE {m['mape']:.1%} over {m['rows']} rows; bias {m['bias']:+.1%}; worst "
                         f"{m['worst']['error']:+.1%} ({m['worst']['label']}, {m['worst']['hardware']}); no target")
        elif group in summary:
            s = summary[group]
            lines.append(f"   MAPE {s['mape']:.1%} over {s['rows']} rows; worst {s['worst']:.1%}")
        lines.append("")
    if "all MoE" in moe:
        m = moe["all MoE"]
        lines.append(f"MoE end-to-end (all groups; no target): MAPE {m['mape']:.1%} over {m['rows']} rows; bias "
                     f"{m['bias']:+.1%}; worst {m['worst']['error']:+.1%} ({m['worst']['label']}, "
                     f"{m['worst']['hardware']})")
        lines.append("")
    if skipped:
        lines.append("== skipped (published, not representable by the model; never run)")
        for r in skipped:
            lines.append(f"{r.label[:44]:44} {r.hardware[:12]:12} {r.published:>11,.2f} {r.unit[:7]:7}  [{r.group}] "
                         f"{r.reason}")
    return "\n".join(lines).rstrip()


def rows_as_dicts(rows: Iterable[ValidationRow]) -> list[dict]:
    """JSON-ready rows with their signed error."""
    return [asdict(r) | {"error": r.error} for r in rows]
