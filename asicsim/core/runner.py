"""One call from a run to a RunResult: resolve the description, load hardware and model, build requests,
serve, summarise. Every default and check lives in `description.resolve`; this module only runs it."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .description import (DEFAULT_SLO_TPOT_S, DEFAULT_SLO_TTFT_S, RUN_DTYPES, RunDescription, RunSpec,
                          build_requests, resolve)
from .links import load_link
from .registry import make_device
from .results import RunResult, StepTable, percentile, percentiles
from .serving import Progress, ReplicaRun, ServingConfig, collection_paused, simulate
from .serving_metrics import LATENCIES, PERCENTILES, itl_gaps, vllm_metrics

__all__ = ["RunSpec", "RunDescription", "run_workload", "make_device", "build_requests", "serving_config",
           "summarize", "SUMMARY_KEYS", "DEFAULT_SLO_TTFT_S", "DEFAULT_SLO_TPOT_S", "RUN_DTYPES"]

# Keys every run summary carries (SI units), in print order.
SUMMARY_KEYS = (
    "hardware", "chips", "model", "dtype", "kv_dtype", "tp", "pp", "isl", "osl", "requests_completed",
    "max_batch", "max_tokens_per_step", "input_tokens_total", "output_tokens_total", "output_tokens_per_s",
    "input_tokens_per_s", "total_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
    "e2e_p50_s", "e2e_p99_s", "makespan_s", "mfu", "mbu", "compute_utilization", "stall_share",
    "peak_memory_bytes_per_chip", "energy_j_per_output_token", "avg_power_w_per_chip", "power_w",
    "tokens_per_s_per_w", "seed", "wall_s",
    # serving
    "scheduler", "router", "replicas", "micro_batches", "workload", "request_rate_per_s", "steps",
    "slo_ttft_s", "slo_tpot_s", "slo_attainment", "goodput_requests_per_s", "goodput_output_tokens_per_s",
    "mean_batch_size", "peak_batch_size", "preemptions", "kv_peak_bytes_per_chip", "kv_mean_bytes_per_chip",
    "kv_capacity_bytes_per_chip", "ttft_mean_s", "tpot_mean_s", "e2e_mean_s", "queueing_p50_s",
    "queueing_p99_s", "pipeline_bubble_share", "harness",
    # as vLLM's benchmark names them (asicsim.core.serving_metrics): latencies in ms
    "max_batch_capacity", "completed", "duration", "total_input_tokens", "total_output_tokens",
    "request_throughput", "request_goodput", "output_throughput", "total_token_throughput",
    *(f"{stat}_{name}_ms" for name in LATENCIES for stat in ("mean", "median", "std", *(f"p{q}" for q in PERCENTILES))),
)


def serving_config(d: RunDescription) -> ServingConfig:
    """The serving loop's view of a resolved run (every value already decided by `resolve`)."""
    return ServingConfig(model=d.model_config, dtype=d.dtype, kv_dtype=d.kv_dtype, tp=d.tp, pp=d.pp,
                         max_batch=d.max_batch, max_tokens_per_step=d.max_tokens_per_step, scheduler=d.scheduler,
                         router=d.router, kv_block_tokens=d.kv_block_tokens, micro_batches=d.micro_batches,
                         kv_capacity_blocks=d.kv_capacity_blocks, trace_steps=d.timeline_steps, exact=d.exact,
                         host_s_per_sequence=d.host_s_per_sequence, ep=d.ep, attention_dp=d.attention_dp,
                         moe_imbalance=d.moe_imbalance, weight_format=d.weight_format, expert_dtype=d.expert_dtype,
                         mtp_draft_tokens=d.mtp, mtp_acceptance=d.mtp_acceptance,
                         link=load_link(d.link) if d.link else None, seed=d.seed)


def run_workload(run: RunSpec | RunDescription, progress: Progress | None = None) -> RunResult:
    """Simulate a run end to end. Deterministic: equal runs give equal results (but `wall_s`).

    `progress(simulated_s, finished, total)` is called now and then (the CLI draws a bar with it).
    """
    started = time.perf_counter()
    d = resolve(run)
    if d.pools:
        return _run_disaggregated(d, progress, started)
    device = d.make_device()
    requests = build_requests(d)
    cfg = serving_config(d)
    with collection_paused():  # the summary reads every record and step the loop built
        runs = simulate(device, d.chips, requests, cfg, progress=progress)
        summary = summarize(device, d, cfg, runs, requests)
    timeline = None
    if d.timeline_steps:
        from .timeline import chrome_trace

        timeline = chrome_trace(device, cfg, runs)
    summary["wall_s"] = time.perf_counter() - started
    return RunResult(summary=summary, requests=tuple(r for run in runs for r in run.requests),
                     steps=StepTable.concat([run.steps for run in runs]), timeline=timeline, description=d)


def _run_disaggregated(d: RunDescription, progress: Progress | None, started: float) -> RunResult:
    """A disaggregated run (`asicsim.core.disaggregation`): both pools through the serving loop, one summary."""
    from .disaggregation import serve_disaggregated

    prefill_d, decode_d = d.pools
    requests = build_requests(d)
    pre_cfg, dec_cfg = serving_config(prefill_d), serving_config(decode_d)
    out = serve_disaggregated(prefill_d, decode_d, requests, pre_cfg, dec_cfg, progress)
    device = decode_d.make_device()
    runs = [dataclasses.replace(run, requests=()) for run in out.prefill + out.decode]
    runs[0] = dataclasses.replace(runs[0], requests=out.records)
    pools = [(prefill_d.make_device(), pre_cfg, out.prefill, prefill_d.chips)]
    if out.decode:
        pools.append((device, dec_cfg, out.decode, decode_d.chips))
    with collection_paused():
        summary = summarize(device, d, dec_cfg, runs, requests, pools=pools)
    summary.update(disaggregate=d.disaggregate, prefill_tp=prefill_d.tp, decode_tp=decode_d.tp,
                   prefill_replicas=prefill_d.replicas, decode_replicas=decode_d.replicas,
                   kv_transfer_p50_s=percentile(out.transfer_s, 50), kv_transfer_p99_s=percentile(out.transfer_s, 99))
    summary["wall_s"] = time.perf_counter() - started
    table = StepTable.concat([run.steps for run in out.prefill + out.decode])
    return RunResult(summary=summary, requests=out.records, steps=table, timeline=None, description=d)


def summarize(device, spec: RunDescription, cfg: ServingConfig, runs: list[ReplicaRun], requests=None,
              pools: list | None = None) -> dict:
    """The JSON summary: token accounting, latency percentiles, SLO goodput, utilisation, memory, KV cache.

    `pools`: (device, config, replica runs, chips) of each pool of a run whose chips ran different layouts (the
    prefill and decode pools of a disaggregated run); default: `runs` on `device` with `cfg`, all the chips."""
    reqs = [r for run in runs for r in run.requests]
    table = StepTable.concat([run.steps for run in runs])
    steps = table.columns()
    # The records' fields as arrays in one pass (a property per record per metric cost a 512-request sweep point
    # ~0.5 ms); the same float operations as RequestRecord's properties, element by element.
    arrival, first, finish, scheduled = np.array(
        [(r.arrival_at, r.first_token_at, r.finish_at, r.scheduled_at) for r in reqs], dtype=np.float64).T
    outs = np.fromiter((r.output_tokens for r in reqs), dtype=np.int64, count=len(reqs))
    makespan = float(finish.max())
    ttft = first - arrival
    several = outs > 1
    tpot = (finish[several] - first[several]) / (outs[several] - 1)
    e2e = finish - arrival
    queue = np.where(scheduled >= 0.0, scheduled, first) - arrival
    inputs = sum(r.input_tokens for r in reqs)
    outputs = int(outs.sum())
    chip_time = spec.chips * makespan
    # Pools of chips that ran their own layout (a disaggregated run's prefill and decode pools; else the one pool):
    # FLOPs, bytes, peaks and energy are summed over them.
    flops = moved = peak_flop = peak_bytes = 0.0
    parts = []
    for pool_device, pool_cfg, pool_runs, pool_chips in pools or [(device, cfg, runs, spec.chips)]:
        pool_table = table if pools is None else StepTable.concat([run.steps for run in pool_runs])
        pool_steps = pool_table.columns()
        group = pool_cfg.tp * pool_cfg.pp
        flops += float(pool_steps.flops_per_chip.sum()) * group
        moved += float(pool_steps.memory_bytes_per_chip.sum()) * group
        peak_flop += pool_chips * makespan * pool_device.peak_flops_per_s(pool_cfg.dtype)
        peak_bytes += pool_chips * makespan * pool_device.memory_bandwidth_bytes_per_s
        parts.append(_energy_parts(pool_device, pool_cfg, pool_table, pool_chips * makespan))
    energy = _energy(parts, outputs, chip_time)
    power = device.cluster.power(spec.chips, energy["avg_power_w_per_chip"])
    span_s = steps.end_at - steps.start_at
    busy = float((span_s - steps.bubble_s).sum())
    spans = float(span_s.sum())
    met = np.ones(len(reqs), dtype=bool)  # within both SLOs (a one-token output has no TPOT to miss)
    if spec.slo_ttft_s:
        met &= ttft <= spec.slo_ttft_s
    if spec.slo_tpot_s:
        met[several] &= tpot <= spec.slo_tpot_s
    good, good_outputs = int(met.sum()), int(outs[met].sum())
    kv_token = runs[0].plan.kv_bytes_per_token
    burst = spec.workload == "burst"
    span = float(arrival.max() - arrival.min())
    n_steps = len(table)
    return {
        "hardware": device.name,
        "chips": spec.chips,
        "model": cfg.model.name,
        "dtype": cfg.dtype,
        "kv_dtype": cfg.kv_dtype,
        "weight_format": cfg.weight_format,
        "expert_dtype": cfg.expert_dtype,
        "ep": cfg.ep,
        "attention_dp": cfg.attention_dp,
        "mtp": cfg.mtp_draft_tokens,
        "mtp_acceptance": cfg.mtp_acceptance,
        "tp": cfg.tp,
        "pp": cfg.pp,
        "isl": spec.isl if burst else round(inputs / len(reqs)),
        "osl": spec.osl if burst else round(outputs / len(reqs)),
        "requests_completed": len(reqs),
        "max_batch": spec.max_batch,
        "max_tokens_per_step": cfg.max_tokens_per_step,
        "input_tokens_total": inputs,
        "output_tokens_total": outputs,
        "output_tokens_per_s": outputs / makespan,
        "input_tokens_per_s": inputs / makespan,
        "total_tokens_per_s": (inputs + outputs) / makespan,
        **dict(zip(("ttft_p50_s", "ttft_p99_s"), percentiles(ttft, (50, 99)))),
        **dict(zip(("tpot_p50_s", "tpot_p99_s"), percentiles(tpot, (50, 99)))),
        **dict(zip(("e2e_p50_s", "e2e_p99_s"), percentiles(e2e, (50, 99)))),
        "makespan_s": makespan,
        **energy,
        **power.summary(),
        "tokens_per_s_per_w": outputs / makespan / power.total_w if power.total_w else 0.0,
        "mfu": flops / peak_flop,
        "delivered_ops_per_j": flops / energy["energy_j_total"] if energy["energy_j_total"] else 0.0,
        "mbu": moved / peak_bytes,
        "compute_utilization": float(steps.ideal_compute_s.sum()) / busy if busy else 0.0,
        "stall_share": float((steps.stall_s + steps.memory_wait_s).sum()) / busy if busy else 0.0,
        "peak_memory_bytes_per_chip": max(run.plan.peak_bytes(run.peak_kv_tokens) for run in runs),
        "seed": spec.seed,
        "scheduler": cfg.scheduler,
        "router": cfg.router,
        "replicas": len(runs),
        "micro_batches": int(steps.micro_batches.max()) if cfg.pp > 1 and n_steps else 1,
        "workload": {"trace": f"trace {spec.trace}", "poisson": f"poisson {spec.rate:g}/s"}.get(spec.workload, "burst"),
        "request_rate_per_s": (len(reqs) - 1) / span if span > 0 else 0.0,
        "steps": n_steps,
        "slo_ttft_s": spec.slo_ttft_s,
        "slo_tpot_s": spec.slo_tpot_s,
        "slo_attainment": good / len(reqs),
        "goodput_requests_per_s": good / makespan,
        "goodput_output_tokens_per_s": good_outputs / makespan,
        "mean_batch_size": float(np.mean(steps.batch_size)) if n_steps else 0.0,
        "peak_batch_size": int(steps.batch_size.max()) if n_steps else 0,
        "preemptions": sum(run.preemptions for run in runs),
        "kv_peak_bytes_per_chip": max(run.kv_peak_blocks * run.kv_block_tokens for run in runs) * kv_token,
        "kv_mean_bytes_per_chip": max(run.kv_mean_blocks * run.kv_block_tokens for run in runs) * kv_token,
        "kv_capacity_bytes_per_chip": runs[0].kv_capacity_blocks * runs[0].kv_block_tokens * kv_token,
        "ttft_mean_s": float(ttft.mean()),
        "tpot_mean_s": float(tpot.mean()) if tpot.size else 0.0,
        "e2e_mean_s": float(e2e.mean()),
        **dict(zip(("queueing_p50_s", "queueing_p99_s"), percentiles(queue, (50, 99)))),
        "pipeline_bubble_share": float(steps.bubble_s.sum()) / spans if spans else 0.0,
        "link": cfg.link.name if cfg.link is not None else "",
        "link_time_share": float(steps.link_s.sum()) / spans if spans else 0.0,
        "weight_bytes_per_chip": runs[0].plan.weight_bytes,
        "kv_bytes_per_token_per_chip": kv_token,
        "time_share": _time_share(steps),
        "fallback_features": list(device.missing_features(cfg.model)),
        "fallback_time_share": float(np.minimum(steps.fallback_s, span_s).sum()) / spans if spans else 0.0,
        "harness": spec.harness,
        "max_batch_capacity": spec.max_batch,
        **vllm_metrics(ttft, tpot, e2e, *itl_gaps(table.raw_column("replica"), steps.end_at,
                                                  table.raw_column("decode_tokens"),
                                                  np.array([r.replica for r in reqs]), first, finish),
                       completed=len(reqs), good=good, duration_s=makespan, input_tokens=inputs,
                       output_tokens=outputs),
    }


def _energy_parts(device, cfg: ServingConfig, table: StepTable, chip_seconds: float) -> tuple[float, float, float, float]:
    """(static J, dynamic J, idle J, chip seconds) of one pool of chips: static power every second (busy or idle),
    plus each step's dynamic energy on every chip of its replica (the device's step energy less its static part).
    Idle energy is the static energy of chips with no step running (waiting for arrivals, or replicas that
    finished early); it is part of the static energy."""
    static_w = device.power_limits(cfg.dtype).static_power_w
    group = cfg.tp * cfg.pp
    busy_s = dynamic = 0.0
    for block in table.blocks(_ENERGY_BLOCK_ROWS):  # the energy model's arrays a block at a time, not an hour's
        steps = block.columns()
        step_s = steps.end_at - steps.start_at
        busy_s += float(step_s.sum())
        dynamic += float((device.step_energy_j(steps, cfg.dtype) - static_w * step_s).sum())
    static = static_w * chip_seconds
    return static, max(dynamic * group, 0.0), static_w * max(chip_seconds - busy_s * group, 0.0), chip_seconds


def _energy(parts: list[tuple[float, float, float, float]], output_tokens: int, chip_seconds: float) -> dict:
    """Energy of every chip over the whole makespan, summed over the pools' `_energy_parts`."""
    static = sum(p[0] for p in parts)
    dynamic = sum(p[1] for p in parts)
    joules = static + dynamic
    return {
        "energy_j_per_output_token": joules / output_tokens if output_tokens else 0.0,
        "avg_power_w_per_chip": joules / chip_seconds if chip_seconds else 0.0,
        "energy_j_total": joules,
        "energy_static_j": static,
        "energy_dynamic_j": dynamic,
        "energy_idle_j": sum(p[2] for p in parts),
        "static_power_w_per_chip": static / chip_seconds if chip_seconds else 0.0,
    }


_ENERGY_BLOCK_ROWS = 1 << 16


def _time_share(steps) -> dict:
    """Share of summed op time by coarse kind (op times as if run alone; overlap not subtracted)."""
    totals = {k: float(getattr(steps, f"{k}_s").sum()) for k in ("gemm", "attention", "collective", "other",
                                                                  "fallback")}
    whole = sum(totals.values()) or 1.0
    return {k: v / whole for k, v in totals.items()}
