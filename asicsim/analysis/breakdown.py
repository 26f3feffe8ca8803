"""Where a run's time goes: step time split into GEMM, attention, collectives, launch/overhead and idle.

Built from the per-step records (`asicsim.core.results.StepRecord`). Per step, the engine reports each op
kind's time as if it ran alone (`gemm_s`, `attention_s`, `collective_s`, `other_s`, launch included) and
the serial launch overhead (`fixed_s`). GPU kernels run one after another, so these add up to the step
time; where units overlap (the ASIC) they add up to more, and the kinds are scaled down to the time left
after launch overhead. Whatever a step does not account for is idle (units waiting on each other or, over
the run, replicas waiting for work). Compute- versus memory-bound share: busy time of the compute unit
versus the memory unit, per step, whichever is larger gets the step's time. Array stall: compute-unit seconds
the arrays spent waiting for operands from SRAM or HBM (the systolic kernel's stall cycles, `StepRecord.stall_s`);
they are part of the GEMM and attention time above, not a category of their own.
"""

from __future__ import annotations

from asicsim.core.results import RunResult
from asicsim.core.runner import serving_config
from asicsim.workloads.graph_types import StepBatch

__all__ = ["CATEGORIES", "step_breakdown", "format_breakdown", "energy_breakdown", "format_energy_breakdown"]

CATEGORIES = ("gemm", "attention", "collectives", "launch_overhead", "fallback", "other", "idle")


def step_breakdown(result: RunResult) -> dict:
    """Seconds and shares of the run's replica time by category, and the compute/memory-bound split.

    Returns {"total_s", "steps", "seconds": {category: s}, "share": {category: fraction},
    "compute_bound_share", "memory_bound_share", "prefill_s", "decode_s", "stall_s", "stall_share"}; stall_s is
    the arrays' stall (waiting on SRAM/HBM) summed over steps, stall_share its fraction of total_s.
    """
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    compute_bound = memory_bound = prefill = decode = stall = 0.0
    replicas: dict[int, float] = {}
    for s in result.steps:
        step_s = s.end_at - s.start_at
        replicas[s.replica] = max(replicas.get(s.replica, 0.0), s.end_at)
        parts = {"gemm": s.gemm_s, "attention": s.attention_s, "collectives": s.collective_s, "other": s.other_s}
        # Ops on the fallback unit are serial (their time is part of fixed_s and of nothing else).
        fallback = min(s.fallback_s, step_s)
        seconds["fallback"] += fallback
        launch = min(max(s.fixed_s - s.fallback_s, 0.0), step_s - fallback)
        # fixed_s is included in the per-kind alone times; take it out so launch is counted once.
        kinds_s = sum(parts.values())
        work_s = max(kinds_s - (s.fixed_s - s.fallback_s), 0.0)
        room = max(step_s - launch - fallback, 0.0)
        scale = min(1.0, room / work_s) if work_s > 0.0 else 0.0
        factor = scale * (work_s / kinds_s) if kinds_s > 0.0 else 0.0
        for key, value in parts.items():
            seconds[key] += value * factor
        seconds["launch_overhead"] += launch
        stall += s.stall_s
        seconds["idle"] += max(step_s - fallback - launch - work_s * scale, 0.0)
        if s.compute_busy_s >= s.memory_busy_s:
            compute_bound += step_s
        else:
            memory_bound += step_s
        if s.prefill_tokens:
            prefill += step_s
        else:
            decode += step_s
    span_s = sum(replicas.values())
    busy_s = sum(seconds.values())
    seconds["idle"] += max(span_s - busy_s, 0.0)  # replicas that finish early wait for the last one
    total = sum(seconds.values())
    bound = compute_bound + memory_bound
    return {
        "total_s": total,
        "steps": len(result.steps),
        "seconds": seconds,
        "share": {k: (v / total if total else 0.0) for k, v in seconds.items()},
        "compute_bound_share": compute_bound / bound if bound else 0.0,
        "memory_bound_share": memory_bound / bound if bound else 0.0,
        "prefill_s": prefill,
        "decode_s": decode,
        "stall_s": stall,
        "stall_share": stall / total if total else 0.0,
    }


def format_breakdown(result: RunResult) -> str:
    """A short table of `step_breakdown` for the CLI."""
    b = step_breakdown(result)
    lines = [f"time breakdown over {b['steps']} steps ({b['total_s']:.3f} replica-seconds; "
             f"prefill steps {b['prefill_s']:.3f} s, decode steps {b['decode_s']:.3f} s)"]
    for key in CATEGORIES:
        lines.append(f"  {key:16} {b['seconds'][key]:10.4f} s  {b['share'][key]:6.1%}")
    lines.append(f"  {'array stall':16} {b['stall_s']:10.4f} s  {b['stall_share']:6.1%}  "
                 "(arrays waiting on SRAM/HBM; part of gemm and attention)")
    lines.append(f"  compute-bound steps {b['compute_bound_share']:.1%}, memory-bound steps {b['memory_bound_share']:.1%}")
    return "\n".join(lines)


def energy_breakdown(result: RunResult) -> dict | None:
    """Joules per output token by part, for a device that prices energy per op by part (an optional member
    `energy_parts_j(op) -> {part: joules}`, e.g. the CIM chip); None for other devices.

    The run's static joules are its own; its dynamic joules are split in the shares of one decode step at the
    run's mean batch and mean context (isl + osl / 2), priced op by op (exact for a per-user decode run, an
    approximation where prefill steps weigh in). Also the delivered ops per joule (every FLOP of the run over
    every joule) beside the device's published reference efficiencies (`reference_ops_per_j`, where it has them).
    """
    d = result.description
    if d is None:
        return None
    device = d.make_device()
    parts_of = getattr(device, "energy_parts_j", None)
    if parts_of is None:
        return None
    s = result.summary
    batch = max(int(round(s.get("mean_batch_size", 1.0))), 1)
    graph = serving_config(d).step_graph(StepBatch.make(decode_past=[d.isl + d.osl // 2] * batch))
    joules: dict[str, float] = {}
    for op, count in graph.all_ops():
        for part, j in parts_of(op).items():
            joules[part] = joules.get(part, 0.0) + j * count
    whole = sum(joules.values())
    tokens = max(int(s["output_tokens_total"]), 1)
    per_token = {part: s["energy_dynamic_j"] * (j / whole if whole else 0.0) / tokens for part, j in joules.items()}
    per_token["static"] = s["energy_static_j"] / tokens
    total_j = sum(per_token.values())
    return {"j_per_output_token": per_token,
            "share": {k: (v / total_j if total_j else 0.0) for k, v in per_token.items()},
            "delivered_ops_per_j": s.get("delivered_ops_per_j", 0.0),
            "reference_ops_per_j": dict(getattr(device, "reference_ops_per_j", {}))}


def format_energy_breakdown(result: RunResult) -> str:
    """A short table of `energy_breakdown` for the CLI ('' for a device without one)."""
    b = energy_breakdown(result)
    if b is None:
        return ""
    lines = ["energy per output token by part (mJ)"]
    for part, j in b["j_per_output_token"].items():
        lines.append(f"  {part:16} {j * 1e3:10.4f} mJ  {b['share'][part]:6.1%}")
    lines.append(f"  delivered: {b['delivered_ops_per_j'] / 1e12:.4g} TOPS/W (every op of the run / every joule)")
    for name, ops_per_j in b["reference_ops_per_j"].items():
        lines.append(f"  {name}: {ops_per_j / 1e12:.4g} TOPS/W")
    return "\n".join(lines)
