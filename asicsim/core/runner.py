"""One call from names to a RunResult: load hardware and model, build requests, serve, summarise."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from asicsim.workloads.errors import InputError
from asicsim.workloads.models import load_model, read_model_config
from asicsim.workloads.requests import Request, fixed_requests, parse_length_dist, poisson_requests
from asicsim.workloads.traces import fit_lognormal, load_trace

from .registry import device_class, load_hardware
from .results import RunResult, percentile
from .serving import Progress, ReplicaRun, ServingConfig, simulate

__all__ = ["RunSpec", "run_workload", "make_device", "build_requests", "resolve_scheduler", "SUMMARY_KEYS",
           "DEFAULT_SLO_TTFT_S", "DEFAULT_SLO_TPOT_S"]

RUN_DTYPES = ("bf16", "fp8", "fp4")

# Default latency SLOs: the MLPerf Inference Llama-2-70B server-scenario limits, TTFT <= 2 s and TPOT <= 200 ms
# (MLCommons LoadGen loadgen/mlperf.conf: llama2-70b.Server.ttft_latency = 2000, tpot_latency = 200, in ms).
DEFAULT_SLO_TTFT_S = 2.0
DEFAULT_SLO_TPOT_S = 0.2

# Keys every run summary carries (SI units), in print order.
SUMMARY_KEYS = (
    "hardware", "chips", "model", "dtype", "kv_dtype", "tp", "pp", "isl", "osl", "requests_completed",
    "max_batch", "max_tokens_per_step", "input_tokens_total", "output_tokens_total", "output_tokens_per_s",
    "input_tokens_per_s", "total_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
    "e2e_p50_s", "e2e_p99_s", "makespan_s", "mfu", "mbu", "compute_utilization", "stall_share",
    "peak_memory_bytes_per_chip", "energy_j_per_output_token", "avg_power_w_per_chip", "seed", "wall_s",
    # serving (issue 5)
    "scheduler", "router", "replicas", "micro_batches", "workload", "request_rate_per_s", "steps",
    "slo_ttft_s", "slo_tpot_s", "slo_attainment", "goodput_requests_per_s", "goodput_output_tokens_per_s",
    "mean_batch_size", "preemptions", "kv_peak_bytes_per_chip", "kv_mean_bytes_per_chip",
    "kv_capacity_bytes_per_chip", "ttft_mean_s", "tpot_mean_s", "e2e_mean_s", "queueing_p50_s",
    "queueing_p99_s", "pipeline_bubble_share",
)


@dataclass(frozen=True)
class RunSpec:
    """A run as the CLI describes it. tp 0 means "all chips".

    Workload: a trace (`trace`: built-in name or CSV path; `requests` > 0 with `limit_trace` keeps the first
    ones), else Poisson arrivals when `rate` > 0 (`requests` of them, lengths from `isl_dist`/`osl_dist`),
    else a burst of `requests` at t=0. scheduler "auto": static for a burst, chunked-prefill otherwise.
    SLOs of 0 mean no limit. `exact`: every step through the simpy event model (`engine.StepEngine`).
    """

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
    scheduler: str = "auto"
    router: str = "round-robin"
    rate: float = 0.0
    trace: str = ""
    limit_trace: bool = False
    time_scale: float = 1.0
    isl_dist: str = "fixed"
    osl_dist: str = "fixed"
    slo_ttft_s: float = DEFAULT_SLO_TTFT_S
    slo_tpot_s: float = DEFAULT_SLO_TPOT_S
    kv_block_tokens: int = 16
    micro_batches: int = 0
    timeline_steps: int = 0
    exact: bool = False


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


def _length_dist(flag: str, text: str, default_mean: int, column: str):
    """A length distribution; `fit:TRACE` fits a lognormal to that trace's `column` lengths."""
    if text.startswith("fit:"):
        reqs = load_trace(text[len("fit:"):])
        return fit_lognormal(np.array([getattr(r, column) for r in reqs]))
    return parse_length_dist(flag, text, default_mean)


def build_requests(spec: RunSpec) -> tuple[Request, ...]:
    """The request stream `spec` describes (trace, Poisson or burst); deterministic in `spec.seed`."""
    if spec.trace:
        return load_trace(spec.trace, spec.time_scale, spec.requests if spec.limit_trace else 0)
    if spec.rate:
        isl = _length_dist("--isl-dist", spec.isl_dist, spec.isl, "input_tokens")
        osl = _length_dist("--osl-dist", spec.osl_dist, spec.osl, "output_tokens")
        reqs = poisson_requests(spec.requests, spec.rate, isl, osl, spec.seed)
        return tuple(Request(r.request_id, r.arrival_at * spec.time_scale, r.input_tokens, r.output_tokens)
                     for r in reqs) if spec.time_scale != 1.0 else reqs
    return fixed_requests(spec.requests, spec.isl, spec.osl)


def resolve_scheduler(spec: RunSpec) -> str:
    if spec.scheduler != "auto":
        return spec.scheduler
    return "chunked-prefill" if spec.trace or spec.rate else "static"


def run_workload(spec: RunSpec, progress: Progress | None = None) -> RunResult:
    """Simulate `spec` end to end. Deterministic: equal specs give equal results (but `wall_s`).

    `progress(simulated_s, finished, total)` is called now and then (the CLI draws a bar with it).
    """
    started = time.perf_counter()
    dtype = _check_dtype("--dtype", spec.dtype)
    kv_dtype = _check_dtype("--kv-dtype", spec.kv_dtype) if spec.kv_dtype else ("fp8" if dtype == "fp4" else dtype)
    for flag, value in (("--slo-ttft", spec.slo_ttft_s), ("--slo-tpot", spec.slo_tpot_s), ("--rate", spec.rate)):
        if not (value >= 0 and math.isfinite(value)):
            raise InputError(flag, flag.lstrip("-"), f"must be a non-negative number, got {value!r}")
    if not (spec.time_scale > 0 and math.isfinite(spec.time_scale)):
        raise InputError("--time-scale", "time-scale", f"must be a positive number, got {spec.time_scale!r}")
    device = make_device(spec.hardware, spec.chips)
    device.check_model(*read_model_config(spec.model))
    model = load_model(spec.model)
    requests = build_requests(spec)
    cfg = ServingConfig(model=model, dtype=dtype, kv_dtype=kv_dtype, tp=spec.tp or spec.chips, pp=spec.pp,
                        max_batch=spec.max_batch, max_tokens_per_step=spec.max_tokens_per_step,
                        scheduler=resolve_scheduler(spec), router=spec.router, kv_block_tokens=spec.kv_block_tokens,
                        micro_batches=spec.micro_batches, trace_steps=spec.timeline_steps, exact=spec.exact)
    runs = simulate(device, spec.chips, requests, cfg, progress=progress)
    summary = summarize(device, spec, cfg, runs, requests)
    timeline = None
    if spec.timeline_steps:
        from .timeline import chrome_trace

        timeline = chrome_trace(device, cfg, runs)
    summary["wall_s"] = time.perf_counter() - started
    return RunResult(summary=summary, requests=tuple(r for run in runs for r in run.requests),
                     steps=tuple(s for run in runs for s in run.steps), timeline=timeline)


def summarize(device, spec: RunSpec, cfg: ServingConfig, runs: list[ReplicaRun],
              requests: tuple[Request, ...] | None = None) -> dict:
    """The JSON summary: token accounting, latency percentiles, SLO goodput, utilisation, memory, KV cache."""
    reqs = [r for run in runs for r in run.requests]
    steps = [s for run in runs for s in run.steps]
    makespan = max(r.finish_at for r in reqs)
    ttft = np.array([r.ttft_s for r in reqs])
    tpot = np.array([r.tpot_s for r in reqs if r.output_tokens > 1])
    e2e = np.array([r.e2e_s for r in reqs])
    queue = np.array([r.queueing_delay_s for r in reqs])
    inputs = sum(r.input_tokens for r in reqs)
    outputs = sum(r.output_tokens for r in reqs)
    group = cfg.tp * cfg.pp
    flops = sum(s.flops_per_chip for s in steps) * group
    moved = sum(s.memory_bytes_per_chip for s in steps) * group
    chip_time = spec.chips * makespan
    busy = sum(s.end_at - s.start_at - s.bubble_s for s in steps)
    spans = sum(s.end_at - s.start_at for s in steps)
    met = [(not spec.slo_ttft_s or r.ttft_s <= spec.slo_ttft_s)
           and (not spec.slo_tpot_s or r.output_tokens <= 1 or r.tpot_s <= spec.slo_tpot_s) for r in reqs]
    good = [r for r, ok in zip(reqs, met) if ok]
    kv_token = runs[0].plan.kv_bytes_per_token
    burst = not (spec.trace or spec.rate)
    arrivals = [r.arrival_at for r in reqs]
    span = max(arrivals) - min(arrivals)
    return {
        "hardware": device.name,
        "chips": spec.chips,
        "model": cfg.model.name,
        "dtype": cfg.dtype,
        "kv_dtype": cfg.kv_dtype,
        "tp": cfg.tp,
        "pp": cfg.pp,
        "isl": spec.isl if burst else round(inputs / len(reqs)),
        "osl": spec.osl if burst else round(outputs / len(reqs)),
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
        **_energy(device, cfg, steps, outputs, spec.chips * makespan),
        "mfu": flops / (chip_time * device.peak_flops_per_s(cfg.dtype)),
        "mbu": moved / (chip_time * device.memory_bandwidth_bytes_per_s),
        "compute_utilization": sum(s.ideal_compute_s for s in steps) / busy if busy else 0.0,
        "stall_share": sum(s.stall_s + s.memory_wait_s for s in steps) / busy if busy else 0.0,
        "peak_memory_bytes_per_chip": max(run.plan.peak_bytes(run.peak_kv_tokens) for run in runs),
        "seed": spec.seed,
        "scheduler": cfg.scheduler,
        "router": cfg.router,
        "replicas": len(runs),
        "micro_batches": max((s.micro_batches for s in steps), default=1) if cfg.pp > 1 else 1,
        "workload": f"trace {spec.trace}" if spec.trace else (f"poisson {spec.rate:g}/s" if spec.rate else "burst"),
        "request_rate_per_s": (len(reqs) - 1) / span if span > 0 else 0.0,
        "steps": len(steps),
        "slo_ttft_s": spec.slo_ttft_s,
        "slo_tpot_s": spec.slo_tpot_s,
        "slo_attainment": len(good) / len(reqs),
        "goodput_requests_per_s": len(good) / makespan,
        "goodput_output_tokens_per_s": sum(r.output_tokens for r in good) / makespan,
        "mean_batch_size": float(np.mean([s.batch_size for s in steps])) if steps else 0.0,
        "preemptions": sum(run.preemptions for run in runs),
        "kv_peak_bytes_per_chip": max(run.kv_peak_blocks * run.kv_block_tokens for run in runs) * kv_token,
        "kv_mean_bytes_per_chip": max(run.kv_mean_blocks * run.kv_block_tokens for run in runs) * kv_token,
        "kv_capacity_bytes_per_chip": runs[0].kv_capacity_blocks * runs[0].kv_block_tokens * kv_token,
        "ttft_mean_s": float(ttft.mean()),
        "tpot_mean_s": float(tpot.mean()) if tpot.size else 0.0,
        "e2e_mean_s": float(e2e.mean()),
        "queueing_p50_s": percentile(queue, 50),
        "queueing_p99_s": percentile(queue, 99),
        "pipeline_bubble_share": sum(s.bubble_s for s in steps) / spans if spans else 0.0,
        "weight_bytes_per_chip": runs[0].plan.weight_bytes,
        "kv_bytes_per_token_per_chip": kv_token,
        "time_share": _time_share(steps),
    }


def _energy(device, cfg: ServingConfig, steps, output_tokens: int, chip_seconds: float) -> dict:
    """Energy from the device's per-step model: every chip of a replica spends a step's energy.

    Time a replica sits idle between steps (waiting for arrivals) is not charged.
    """
    joules = sum(device.step_energy_j(s, cfg.dtype) for s in steps) * cfg.tp * cfg.pp
    return {
        "energy_j_per_output_token": joules / output_tokens if output_tokens else 0.0,
        "avg_power_w_per_chip": joules / chip_seconds if chip_seconds else 0.0,
        "energy_j_total": joules,
    }


def _time_share(steps) -> dict:
    """Share of summed op time by coarse kind (op times as if run alone; overlap not subtracted)."""
    totals = {k: sum(getattr(s, f"{k}_s") for s in steps) for k in ("gemm", "attention", "collective", "other")}
    whole = sum(totals.values()) or 1.0
    return {k: v / whole for k, v in totals.items()}
