"""One call from names to a RunResult: load hardware and model, build requests, serve, summarise."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from workloads.errors import InputError
from workloads.models import load_model
from workloads.requests import fixed_requests

from .registry import device_class, load_hardware
from .results import RunResult, percentile
from .serving import ReplicaRun, ServingConfig, simulate_static

__all__ = ["RunSpec", "run_workload", "make_device", "SUMMARY_KEYS"]

RUN_DTYPES = ("bf16", "fp8", "fp4")

# Keys every run summary carries (SI units), in print order.
SUMMARY_KEYS = (
    "hardware", "chips", "model", "dtype", "kv_dtype", "tp", "pp", "isl", "osl", "requests_completed",
    "max_batch", "max_tokens_per_step", "input_tokens_total", "output_tokens_total", "output_tokens_per_s",
    "input_tokens_per_s", "total_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
    "e2e_p50_s", "e2e_p99_s", "makespan_s", "mfu", "mbu", "compute_utilization", "stall_share",
    "peak_memory_bytes_per_chip", "seed", "wall_s",
)


@dataclass(frozen=True)
class RunSpec:
    """A run as the CLI describes it. tp 0 means "all chips"."""

    hardware: str
    chips: int
    model: str
    dtype: str = "fp8"
    kv_dtype: str = ""
    tp: int = 0
    pp: int = 1
    isl: int = 2048
    osl: int = 128
    requests: int = 512
    max_batch: int = 0
    max_tokens_per_step: int = 8192
    seed: int = 0


def make_device(hardware: str, chips: int):
    """Load a spec by name or path and instantiate the device registered for its kind."""
    if chips < 1:
        raise InputError("--chips", "chips", f"must be >= 1, got {chips}")
    spec = load_hardware(hardware)
    return device_class(spec.kind)(spec, chips)


def _check_dtype(flag: str, value: str) -> str:
    if value not in RUN_DTYPES:
        raise InputError(flag, flag.lstrip("-"), f"must be one of {', '.join(RUN_DTYPES)}, got {value!r}")
    return value


def run_workload(spec: RunSpec) -> RunResult:
    """Simulate `spec` end to end. Deterministic: equal specs give equal results (but `wall_s`)."""
    started = time.perf_counter()
    dtype = _check_dtype("--dtype", spec.dtype)
    kv_dtype = _check_dtype("--kv-dtype", spec.kv_dtype) if spec.kv_dtype else ("fp8" if dtype == "fp4" else dtype)
    device = make_device(spec.hardware, spec.chips)
    model = load_model(spec.model)
    requests = fixed_requests(spec.requests, spec.isl, spec.osl)
    cfg = ServingConfig(model=model, dtype=dtype, kv_dtype=kv_dtype, tp=spec.tp or spec.chips, pp=spec.pp,
                        max_batch=spec.max_batch, max_tokens_per_step=spec.max_tokens_per_step)
    runs = simulate_static(device, spec.chips, requests, cfg)
    summary = summarize(device, spec, cfg, runs)
    summary["wall_s"] = time.perf_counter() - started
    return RunResult(summary=summary, requests=tuple(r for run in runs for r in run.requests),
                     steps=tuple(s for run in runs for s in run.steps))


def summarize(device, spec: RunSpec, cfg: ServingConfig, runs: list[ReplicaRun]) -> dict:
    """The JSON summary: token accounting, latency percentiles, utilisation, memory."""
    reqs = [r for run in runs for r in run.requests]
    steps = [s for run in runs for s in run.steps]
    makespan = max(r.finish_at for r in reqs)
    ttft = np.array([r.ttft_s for r in reqs])
    tpot = np.array([r.tpot_s for r in reqs if r.output_tokens > 1])
    e2e = np.array([r.e2e_s for r in reqs])
    inputs = sum(r.input_tokens for r in reqs)
    outputs = sum(r.output_tokens for r in reqs)
    group = cfg.tp * cfg.pp
    flops = sum(s.flops_per_chip for s in steps) * group
    moved = sum(s.memory_bytes_per_chip for s in steps) * group
    chip_time = spec.chips * makespan
    busy = sum(s.end_at - s.start_at for s in steps) / cfg.pp
    return {
        "hardware": device.name,
        "chips": spec.chips,
        "model": cfg.model.name,
        "dtype": cfg.dtype,
        "kv_dtype": cfg.kv_dtype,
        "tp": cfg.tp,
        "pp": cfg.pp,
        "isl": spec.isl,
        "osl": spec.osl,
        "requests_completed": len(reqs),
        "max_batch": runs[0].max_batch,
        "max_tokens_per_step": cfg.max_tokens_per_step,
        "input_tokens_total": inputs,
        "output_tokens_total": outputs,
        "output_tokens_per_s": outputs / makespan,
        "input_tokens_per_s": inputs / makespan,
        "total_tokens_per_s": (inputs + outputs) / makespan,
        "ttft_p50_s": percentile(ttft, 50),
        "ttft_p99_s": percentile(ttft, 99),
        "tpot_p50_s": percentile(tpot, 50),
        "tpot_p99_s": percentile(tpot, 99),
        "e2e_p50_s": percentile(e2e, 50),
        "e2e_p99_s": percentile(e2e, 99),
        "makespan_s": makespan,
        "mfu": flops / (chip_time * device.peak_flops_per_s(cfg.dtype)),
        "mbu": moved / (chip_time * device.memory_bandwidth_bytes_per_s),
        "compute_utilization": sum(s.ideal_compute_s for s in steps) / busy if busy else 0.0,
        "stall_share": sum(s.stall_s + s.memory_wait_s for s in steps) / busy if busy else 0.0,
        "peak_memory_bytes_per_chip": max(run.plan.peak_bytes(run.peak_kv_tokens) for run in runs),
        "seed": spec.seed,
        "weight_bytes_per_chip": runs[0].plan.weight_bytes,
        "kv_bytes_per_token_per_chip": runs[0].plan.kv_bytes_per_token,
        "time_share": _time_share(steps),
    }


def _time_share(steps) -> dict:
    """Share of summed op time by coarse kind (op times as if run alone; overlap not subtracted)."""
    totals = {k: sum(getattr(s, f"{k}_s") for s in steps) for k in ("gemm", "attention", "collective", "other")}
    whole = sum(totals.values()) or 1.0
    return {k: v / whole for k, v in totals.items()}
