"""Vendor tokens/s claims: load them (built in or the user's), and check one against physics and simulation.

`check_claim(claim)` returns one JSON-able dict: the token accounting, what each reading implies per chip,
the roofline bound of the spec and of the reticle-die envelope, the simulated best case (a bounded search
over tensor parallelism, batch size and scheduler) and a verdict naming the limit that decides. Counting
rules and the definition of "required batch" are in `asicsim.analysis.roofline` and docs/claims.md.
"""

from __future__ import annotations

import math
from typing import Any

from asicsim.core.runner import RunSpec, make_device, run_workload
from asicsim.core.schedulers import SCHEDULERS
from asicsim.workloads.errors import InputError
from asicsim.workloads.models import load_model

from .claim_data import (CLAIMS_PATH, DTYPE_ALIASES, Claim, builtin_claims, chip_limits, claim_dict, claim_from_table,
                         claims_config, limits_dict, load_claim)
from .envelope import Floorplan, reticle_envelope
from .per_user import check_per_user, simulate_best_latency
from .roofline import ACCOUNTINGS, ChipLimits, Workload, layout_bound, request_flops, tokens_per_request, valid_tps

__all__ = ["Claim", "builtin_claims", "load_claim", "claim_from_table", "check_claim", "claims_config",
           "CLAIMS_PATH", "chip_limits", "simulate_best", "simulate_best_latency", "claim_run_spec"]

def _envelope(device: Any) -> tuple[Any, Any] | None:
    """Envelope corners when the chip's peaks are undisclosed: a device whose die the reticle envelope describes
    (`die_floorplan`, an array chip) and whose spec has assumed fields."""
    plan = device.die_floorplan()
    if plan is None or not device.spec.assumed:
        return None
    edge = None
    if plan.fixed_mm2 is not None:  # the area model knew the node: its HBM-edge rule applies too
        from asicsim.core.area import hbm_edge_limit_stacks
        edge = hbm_edge_limit_stacks(claims_config()["envelope"]["reticle_mm2"]["value"])
    floorplan = Floorplan(plan.hbm_stacks, plan.sram_bytes, plan.vector_lanes, plan.link_bandwidth_bytes_per_s,
                          plan.tdp_w, plan.fixed_mm2, edge)
    return reticle_envelope(claims_config()["envelope"], floorplan)


def _corner_dict(c) -> dict[str, float]:
    return {"peak_fp8_flops_per_s": c.peak_fp8_flops_per_s, "peak_bf16_flops_per_s": c.peak_bf16_flops_per_s,
            "memory_bandwidth_bytes_per_s": c.memory_bandwidth_bytes_per_s,
            "memory_bytes_per_chip": c.memory_bytes_per_chip, "pe_count": c.pe_count, "clock_hz": c.clock_hz,
            "array_mm2": c.array_mm2, "power_w": c.power_w, "max_hbm_stacks_by_edge": c.max_hbm_stacks_by_edge}


def _best_layout(w: Workload, chip: ChipLimits, lam: float, tps: list[int]):
    bounds = [layout_bound(w, chip, lam, tp) for tp in tps]
    return min(bounds, key=lambda b: (_linear_need(b), b.need, -b.tp))


def _linear_need(bound) -> float:
    """Largest ratio among the limits that scale with the rate (compute, HBM at the fitting batch, links)."""
    return max(bound.ratios[k] for k in ("compute", "hbm_bandwidth", "link_bandwidth"))


def _roofline_rate(bound, rate: float) -> float:
    linear = _linear_need(bound)
    return rate / linear if linear > 0 else math.inf


def _resolve_accounting(claim: Claim, w: Workload) -> tuple[str, str]:
    """(reading used for the verdict, why)."""
    if claim.accounting in ACCOUNTINGS:
        return claim.accounting, f"stated: {claim.accounting_note or claim.accounting}"
    if claim.measured_output_tokens_per_s:
        implied = {a: claim.tokens_per_s * w.osl / tokens_per_request(w, a) for a in ACCOUNTINGS}
        pick = min(implied, key=lambda a: abs(math.log(implied[a] / claim.measured_output_tokens_per_s)))
        return pick, (f"the measured baseline {claim.measured_output_tokens_per_s:,.1f} output tok/s x "
                      f"{w.isl + w.osl}/{w.osl} = {claim.measured_output_tokens_per_s * (w.isl + w.osl) / w.osl:,.0f} "
                      f"matches the {pick} reading")
    if claim.baseline:
        base = builtin_claims().get(claim.baseline)
        if base is not None:
            bw = Workload(w.model, w.dtype, w.kv_dtype, base.isl, base.osl, base.chips)
            pick, _ = _resolve_accounting(base, bw)
            return pick, f"compared with {claim.baseline}, which counts {pick} tokens"
    return "total", "not stated and no baseline: the charitable input + output reading"


def claim_run_spec(claim: Claim, w: Workload, tp: int, batch: int, replicas: int, scheduler: str) -> RunSpec:
    """One run of the best-case search: `replicas` batches of `batch` requests at t=0 on the claim's chips."""
    return RunSpec(hardware=claim.hardware, chips=w.chips, model=claim.model, dtype=w.dtype, kv_dtype=w.kv_dtype,
                   tp=tp, pp=1, isl=w.isl, osl=w.osl, requests=batch * replicas, max_batch=batch,
                   max_tokens_per_step=w.max_tokens_per_step, scheduler=scheduler)


def simulate_best(claim: Claim, w: Workload, chip: ChipLimits, tps: list[int], cap: int) -> dict[str, Any]:
    """Bounded search on the spec, all requests at t=0: static batching at the largest batch that fits
    (capped at `cap` requests per run) for every valid tp; then, on the best tp, every other scheduler and a
    quarter of that batch. Returns the runs and the best by output tokens/s."""
    runs: list[dict[str, Any]] = []

    def one(tp: int, replicas: int, batch: int, scheduler: str) -> None:
        spec = claim_run_spec(claim, w, tp, batch, replicas, scheduler)
        try:
            s = run_workload(spec).summary
        except InputError:
            return
        runs.append({"tp": tp, "max_batch": batch, "scheduler": scheduler, "requests": spec.requests,
                     "output_tokens_per_s": s["output_tokens_per_s"], "total_tokens_per_s": s["total_tokens_per_s"],
                     "tpot_p50_s": s["tpot_p50_s"], "mfu": s["mfu"], "mbu": s["mbu"]})

    tops = {}
    for tp in tps:
        bound = layout_bound(w, chip, 1.0, tp)
        if bound.max_batch_fit >= 1:
            tops[tp] = (bound.replicas, max(1, min(bound.max_batch_fit, cap // bound.replicas)))
            one(tp, *tops[tp], "static")
    if runs:
        tp = max(runs, key=lambda r: r["output_tokens_per_s"])["tp"]
        replicas, top = tops[tp]
        for scheduler in SCHEDULERS:
            if scheduler != "static":
                one(tp, replicas, top, scheduler)
        if top >= 4:
            one(tp, replicas, top // 4, "static")
    best = max(runs, key=lambda r: r["output_tokens_per_s"]) if runs else None
    return {"runs": runs, "best": best}


def _fmt_flops(x: float) -> str:
    return f"{x / 1e15:.2f} PFLOP/s"


def _verdict(claim: Claim, w: Workload, acc: str, bound, chip: ChipLimits, roofline: float, sim: float | None,
             env_bound, ref: ChipLimits) -> tuple[str, str]:
    """(verdict, reason) for one reading."""
    rate = claim.tokens_per_s
    binding = bound.binding
    if bound.max_batch_fit < 1:
        return "implausible", (f"memory capacity: the weights ({bound.weight_bytes / 1e9:.1f} GB per chip at best "
                               f"tp={bound.tp}) plus one request's KV cache do not fit {chip.memory_bytes_per_chip / 1e9:.0f} GB")
    if sim is not None and sim >= rate:
        return "consistent", f"the simulated best case reaches {sim:,.0f} {acc} tok/s >= the claimed {rate:,.0f}"
    if bound.need <= 1:
        gap = f"{rate / sim:.2f}x the simulated best case ({sim:,.0f} tok/s)" if sim else "the roofline"
        return "consistent only if", (f"the serving stack reaches {gap}: {100 * bound.need:.0f}% of the "
                                      f"{binding.replace('_', ' ')} roofline ({roofline:,.0f} tok/s)")
    broken = sorted((k for k, v in bound.ratios.items() if v > 1 and k != "memory_capacity"),
                    key=bound.ratios.get, reverse=True) or [binding]
    need = "; ".join(_requirement(w, k, bound, chip, ref) for k in broken)
    if env_bound is not None and env_bound.need <= 1:
        return "consistent only if", (f"{need}; a reticle-limited N5/N4 die holds that only near the optimistic "
                                      f"corner of area_energy.csv's ranges")
    tail = ", beyond even the optimistic reticle-die corner" if env_bound is not None else ""
    base = ""
    if claim.measured_output_tokens_per_s and acc == "output":
        base = (f"; {rate:,.0f} output tok/s would be {rate / claim.measured_output_tokens_per_s:.1f}x the "
                f"measured {claim.measured_output_tokens_per_s:,.1f}")
    return "implausible", f"{need}{tail}{base}"


def _requirement(w: Workload, binding: str, b, chip: ChipLimits, ref: ChipLimits) -> str:
    """The number a reading needs from its binding resource, against the spec and an H100."""
    if binding == "compute":
        text = (f"needs {_fmt_flops(b.flops_per_s)} of dense {w.dtype.upper()} per chip, "
                f"{b.flops_per_s / chip.peak_flops_per_s:.2f}x {chip.name}'s {_fmt_flops(chip.peak_flops_per_s)}")
        if ref.peak_flops_per_s and ref.name != chip.name:
            text += f" and {b.flops_per_s / ref.peak_flops_per_s:.1f}x an H100's {_fmt_flops(ref.peak_flops_per_s)}"
        return text
    if binding == "link_bandwidth":
        return (f"needs {b.link_bytes_per_s / 1e9:,.0f} GB/s of chip-to-chip bandwidth per chip at tp={b.tp}, "
                f"{b.ratios['link_bandwidth']:.2f}x the {chip.link_bandwidth_bytes_per_s / 1e9:,.0f} GB/s links")
    if b.required_batch is None:
        return (f"needs {b.kv_bytes_per_s / 1e12:.2f} TB/s per chip for KV-cache traffic alone, over the "
                f"{chip.memory_bandwidth_bytes_per_s / 1e12:.2f} TB/s HBM at any batch")
    return (f"needs {b.hbm_bytes_per_s_at_fit / 1e12:.2f} TB/s of HBM per chip at the largest batch memory holds "
            f"({b.max_batch_fit}), {b.ratios['hbm_bandwidth']:.2f}x the {chip.memory_bandwidth_bytes_per_s / 1e12:.2f} "
            f"TB/s; a batch of {b.required_batch} would need {b.required_batch / max(b.max_batch_fit, 1):.1f}x the memory")


def _reading(claim: Claim, w: Workload, acc: str, chip: ChipLimits, tps: list[int], sim: dict, env, ref) -> dict:
    rate = claim.tokens_per_s
    per_req = tokens_per_request(w, acc)
    lam = rate / per_req
    bound = _best_layout(w, chip, lam, tps)
    roofline = _roofline_rate(bound, rate)
    env_rates, env_bound = None, None
    if env is not None:
        env_rates = {}
        for corner in env:
            limits = ChipLimits(f"reticle die ({corner.corner})", corner.peak_flops_per_s(w.dtype),
                                corner.memory_bandwidth_bytes_per_s, corner.memory_bytes_per_chip,
                                chip.link_bandwidth_bytes_per_s, chip.link_latency_s)
            b = _best_layout(w, limits, lam, tps)
            env_rates[corner.corner] = _roofline_rate(b, rate)
            env_bound = b
    best = sim.get("best")
    sim_rate = None if best is None else best["output_tokens_per_s"] * per_req / w.osl
    verdict, reason = _verdict(claim, w, acc, bound, chip, roofline, sim_rate, env_bound, ref)
    seq = w.isl + w.osl
    out = {
        "accounting": acc,
        "tokens_per_s": rate,
        "output_tokens_per_s": lam * w.osl,
        "input_tokens_per_s": lam * w.isl,
        "requests_per_s": lam,
        "implied_dense_flops_per_s_per_chip": bound.flops_per_s,
        "implied_hbm_bytes_per_s_per_chip": bound.hbm_bytes_per_s_at_fit,
        "implied_weight_bytes_per_s_per_chip": bound.weight_bytes_per_s_at_fit,
        "implied_kv_bytes_per_s_per_chip": bound.kv_bytes_per_s,
        "implied_link_bytes_per_s_per_chip": bound.link_bytes_per_s,
        "required_batch": bound.required_batch,
        "max_batch_fit": bound.max_batch_fit,
        "required_kv_bytes_per_chip": bound.required_kv_bytes(seq),
        "weight_bytes_per_chip": bound.weight_bytes,
        "fits_memory": bool(bound.required_batch is not None and 1 <= bound.required_batch <= bound.max_batch_fit),
        "tp": bound.tp,
        "replicas": bound.replicas,
        "utilization_needed": {k: (None if math.isinf(v) else v) for k, v in bound.ratios.items()},
        "roofline_tokens_per_s": roofline,
        "roofline_binding": max(("compute", "hbm_bandwidth", "link_bandwidth"), key=bound.ratios.get),
        "envelope_roofline_tokens_per_s": env_rates,
        "simulated_tokens_per_s": sim_rate,
        "binding_constraint": bound.binding if bound.need > 1 or bound.max_batch_fit < 1 else
        max(("compute", "hbm_bandwidth", "link_bandwidth"), key=bound.ratios.get),
        "verdict": verdict,
        "reason": reason,
    }
    if claim.measured_output_tokens_per_s:
        out["vs_measured_output"] = lam * w.osl / claim.measured_output_tokens_per_s
    if claim.claimed_flops_utilization:
        out["peak_needed_at_claimed_utilization"] = bound.flops_per_s / claim.claimed_flops_utilization
    return out


def check_claim(claim: Claim, accounting: str | None = None) -> dict[str, Any]:
    """The full check of one claim as a JSON-able dict (keys documented in docs/claims.md)."""
    if claim.per_user:
        return check_per_user(claim, claims_config()["defaults"], accounting)
    dtype = DTYPE_ALIASES.get(claim.dtype, claim.dtype)
    kv_dtype = claim.kv_dtype or ("fp8" if dtype == "fp4" else dtype)
    model = load_model(claim.model)
    w = Workload(model, dtype, kv_dtype, claim.isl, claim.osl, claim.chips)
    device = make_device(claim.hardware, claim.chips) if claim.hardware else None
    chip = chip_limits(claim, device, dtype)
    defaults = claims_config()["defaults"]
    ref_device = make_device(defaults["reference_hw"], 1)
    ref = chip_limits(claim, ref_device, dtype)
    tps = [claim.tp] if claim.tp else valid_tps(model, claim.chips)
    if not tps:
        raise InputError("--tp", "tp", f"no tensor-parallel degree divides both {claim.chips} chips and "
                                       f"{model.num_key_value_heads} KV heads")
    env = _envelope(device) if device is not None else None
    env_source = "area model (asicsim.chip.area) fixed blocks + area_energy.csv ranges"
    sim = simulate_best(claim, w, chip, tps, int(defaults["search_requests_cap"])) if device else {"runs": [], "best": None}
    readings = [_reading(claim, w, acc, chip, tps, sim, env, ref) for acc in ACCOUNTINGS]
    used, why = (accounting, "chosen with --accounting") if accounting in ACCOUNTINGS else _resolve_accounting(claim, w)
    chosen = next(r for r in readings if r["accounting"] == used)
    flops = request_flops(model, claim.isl, claim.osl)
    return {
        "claim": claim_dict(claim, dtype, kv_dtype),
        "verdict": chosen["verdict"],
        "binding_constraint": chosen["binding_constraint"],
        "reason": chosen["reason"],
        "accounting": used,
        "accounting_reason": why,
        "interpretations": readings,
        "hardware": limits_dict(chip, device),
        "reference": limits_dict(ref, ref_device),
        "envelope": None if env is None else {c.corner: _corner_dict(c) for c in env} | {"source": env_source},
        "request_flops": flops,
        "simulated": sim,
    }
