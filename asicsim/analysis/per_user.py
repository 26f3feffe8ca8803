"""Per-user (single-stream) decode claims: the per-token latency they imply against memory bandwidth,
compute, chip count and link latency.

At batch 1 without speculative decoding every output token reads all weights once, so
per-token time >= max(weight + KV bytes / (chips x bandwidth), FLOPs / (chips x peak)) + serial link time.
A model spread over N > 1 chips crosses at least min(N - 1, 2 x layers + 1) chip-to-chip steps per token
(a pipeline over every chip, or a tensor-parallel all-reduce after each attention and MLP block and the
embedding), each costing at least one link latency.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from asicsim.core.runner import RunSpec, make_device, run_workload
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph import attention_flops
from asicsim.workloads.memory import kv_bytes_per_token_per_chip, weight_bytes_per_chip
from asicsim.workloads.models import load_model

from .claim_data import DTYPE_ALIASES, Claim, chip_limits, claim_dict, limits_dict
from .roofline import valid_tps

__all__ = ["check_per_user", "decode_token_cost", "simulate_best_latency"]


def decode_token_cost(model, dtype: str, kv_dtype: str, context: int) -> dict[str, float]:
    """Whole-model FLOPs and bytes to decode one token at `context` cached tokens (batch 1)."""
    flops = 2.0 * (model.num_hidden_layers * model.layer_matmul_param_count() + model.vocab_size * model.hidden_size)
    flops += attention_flops(model, np.array([1]), np.array([context]))
    weights = weight_bytes_per_chip(model, dtype, 1, 1)
    kv = kv_bytes_per_token_per_chip(model, kv_dtype, 1, 1)
    return {"flops": flops, "weight_bytes": weights, "kv_bytes_per_token": kv, "kv_read_bytes": kv * context}


def check_per_user(claim, defaults: dict[str, Any], accounting: str | None = None) -> dict[str, Any]:
    """Check a tokens/s-per-user claim; same top-level keys as a throughput check."""
    if accounting == "total":
        raise InputError("--accounting", "accounting", "a per-user decode rate counts output tokens only")
    dtype = DTYPE_ALIASES.get(claim.dtype, claim.dtype)
    kv_dtype = claim.kv_dtype or ("fp8" if dtype == "fp4" else dtype)
    model = load_model(claim.model)
    device = make_device(claim.hardware, max(claim.chips, 1)) if claim.hardware else None
    chip = chip_limits(claim, device, dtype)
    context = claim.isl + claim.osl // 2
    cost = decode_token_cost(model, dtype, kv_dtype, context)
    seq_kv = cost["kv_bytes_per_token"] * (claim.isl + claim.osl)
    chips, chips_note = claim.chips, "stated"
    if chips < 1:
        if not chip.memory_bytes_per_chip:
            raise InputError("claim", "chips", "not stated and no memory_bytes_per_chip to derive it from")
        chips = math.ceil((cost["weight_bytes"] + seq_kv) / chip.memory_bytes_per_chip)
        chips_note = "not stated: the fewest chips whose memory holds the weights and one sequence's KV"
    place = getattr(device, "with_resident_weights", None)  # optional Device member: tiers decide the bandwidth
    if place is not None:
        device = place(cost["weight_bytes"] / chips)
        chip = chip_limits(claim, device, dtype)
    rate = claim.tokens_per_s
    budget_s = 1.0 / rate
    bytes_per_token = cost["weight_bytes"] + cost["kv_read_bytes"]
    t_mem = bytes_per_token / (chips * chip.memory_bandwidth_bytes_per_s) if chip.memory_bandwidth_bytes_per_s else None
    t_cmp = cost["flops"] / (chips * chip.peak_flops_per_s) if chip.peak_flops_per_s else None
    hops = 0 if chips == 1 else min(chips - 1, 2 * model.num_hidden_layers + 1)
    t_link = hops * chip.link_latency_s if chip.link_latency_s is not None else None
    floor = max(t for t in (t_mem, t_cmp, 0.0) if t is not None)
    roofline = 1.0 / (floor + (t_link or 0.0)) if floor + (t_link or 0.0) > 0 else None
    fits = (cost["weight_bytes"] + seq_kv) / chips <= chip.memory_bytes_per_chip if chip.memory_bytes_per_chip else None
    link_budget = (budget_s - floor) / hops if hops else None
    verdict, binding, reason = _verdict(rate, chips, budget_s, t_mem, t_cmp, t_link, hops, link_budget, fits,
                                        bytes_per_token, cost, chip, defaults)
    sim = simulate_best_latency(claim, dtype, kv_dtype, chips) if device is not None else {"runs": [], "best": None}
    best = sim.get("best")
    simulated = {} if best is None else {
        "simulated_chips": best["chips"], "simulated_layout": f"tp {best['tp']} x pp {best['pp']}",
        "simulated_power_w": best["power_w"], "simulated_energy_j_per_token": best["energy_j_per_output_token"],
        "simulated_note": sim.get("note", "")}
    reading = {
        "accounting": "output",
        "tokens_per_s": rate,
        "per_token_latency_s": budget_s,
        "context_tokens": context,
        "chips": chips,
        "chips_note": chips_note,
        "implied_dense_flops_per_s_per_chip": cost["flops"] * rate / chips,
        "implied_hbm_bytes_per_s_per_chip": bytes_per_token * rate / chips,
        "implied_weight_bytes_per_s_per_chip": cost["weight_bytes"] * rate / chips,
        "implied_kv_bytes_per_s_per_chip": cost["kv_read_bytes"] * rate / chips,
        "required_batch": 1,
        "required_kv_bytes_per_chip": seq_kv / chips,
        "weight_bytes_per_chip": cost["weight_bytes"] / chips,
        "fits_memory": fits,
        "memory_time_s": t_mem,
        "compute_time_s": t_cmp,
        "serial_link_steps": hops,
        "link_time_s": t_link,
        "link_latency_budget_s": link_budget,
        "roofline_tokens_per_s": roofline,
        "roofline_binding": binding,
        "simulated_tokens_per_s": None if best is None else 1.0 / best["tpot_p50_s"],
        **simulated,
        "verdict": verdict,
        "reason": reason,
    }
    return {
        "claim": claim_dict(claim, dtype, kv_dtype),
        "verdict": verdict,
        "binding_constraint": binding,
        "reason": reason,
        "accounting": "output",
        "accounting_reason": claim.accounting_note or "a per-user rate counts the output tokens of one stream",
        "interpretations": [reading],
        "hardware": limits_dict(chip, device),
        "reference": None,
        "envelope": None,
        "request_flops": None,
        "simulated": sim,
    }


def _verdict(rate, chips, budget_s, t_mem, t_cmp, t_link, hops, link_budget, fits, bytes_per_token, cost, chip,
             defaults) -> tuple[str, str, str]:
    """(verdict, binding constraint, reason) of a per-user claim."""
    per_chip_bw = bytes_per_token * rate / chips
    if fits is False:
        return "implausible", "memory_capacity", (
            f"weights + one sequence's KV need {(cost['weight_bytes']) / chips / 1e9:.2f} GB per chip over {chips} "
            f"chips; each holds {chip.memory_bytes_per_chip / 1e9:.2f} GB")
    if t_mem is not None and t_mem > budget_s:
        return "implausible", "hbm_bandwidth", (
            f"reading the weights once per token needs {per_chip_bw / 1e12:.2f} TB/s per chip, "
            f"{t_mem / budget_s:.2f}x the {chip.memory_bandwidth_bytes_per_s / 1e12:.2f} TB/s available "
            f"(possible only with speculative decoding accepting >= {t_mem / budget_s:.1f} tokens per pass)")
    if t_cmp is not None and t_cmp > budget_s:
        return "implausible", "compute", f"needs {t_cmp / budget_s:.2f}x the chips' peak FLOP/s at batch 1"
    if t_mem is None:
        return "consistent only if", "hbm_bandwidth", (
            f"each chip reads >= {per_chip_bw / 1e12:.2f} TB/s from memory (bandwidth not published): the "
            f"{(cost['weight_bytes']) / 1e9:.0f} GB of weights once every {budget_s * 1e3:.2f} ms over {chips} chips")
    floor = max(t_mem, t_cmp or 0.0)
    if hops:
        ref = float(defaults["reference_link_latency_s"])
        latency = t_link / hops if t_link is not None else None
        if latency is not None and t_link + floor > budget_s:
            return "consistent only if", "link_latency", (
                f"each of the >= {hops} serial chip-to-chip steps per token takes <= {link_budget * 1e6:.2f} us, "
                f"not the spec's {latency * 1e6:.2f} us")
        if latency is None and link_budget < ref:
            return "consistent only if", "link_latency", (
                f"each of the >= {hops} serial chip-to-chip steps per token takes <= {link_budget * 1e6:.2f} us "
                f"(NVLink-class hops take ~{ref * 1e6:.1f} us)")
        return "consistent", "link_latency" if (t_link or hops * ref) > floor else "hbm_bandwidth", (
            f"{budget_s * 1e3:.2f} ms per token leaves {link_budget * 1e6:.1f} us for each of >= {hops} serial "
            f"chip-to-chip steps after the {floor * 1e6:.0f} us memory floor ({per_chip_bw / 1e12:.3f} TB/s per chip)")
    return "consistent", "hbm_bandwidth", (
        f"the memory floor is {floor * 1e3:.3f} ms per token of a {budget_s * 1e3:.3f} ms budget")


PREFILL_CHUNKS = (None, 1024, 256)  # prefill tokens per step tried in turn (None: the run's default)


def _latency_run(claim: Claim, dtype: str, kv_dtype: str, chips: Any, tp: int | None, pp: int) -> dict[str, Any]:
    """One request alone (harness per-user) on `chips` chips as tp x pp, with the largest prefill chunk whose
    workspace fits (the chunk changes the first token's time, not the time per output token)."""
    last: InputError | None = None
    for chunk in PREFILL_CHUNKS:
        spec = RunSpec(hardware=claim.hardware, chips=chips, model=claim.model, dtype=dtype, kv_dtype=kv_dtype, tp=tp,
                       pp=pp, isl=claim.isl, osl=claim.osl, harness="per-user", max_tokens_per_step=chunk)
        try:
            result = run_workload(spec)
        except InputError as exc:
            last = exc
            continue
        s, d = result.summary, result.description
        return {"tp": d.tp, "pp": d.pp, "chips": d.chips, "max_batch": 1, "scheduler": "static", "requests": 1,
                "max_tokens_per_step": d.max_tokens_per_step, "tpot_p50_s": s["tpot_p50_s"],
                "output_tokens_per_s": 1.0 / s["tpot_p50_s"], "power_w": s["avg_power_w_per_chip"] * d.chips,
                "energy_j_per_output_token": s["energy_j_per_output_token"]}
    raise last if last is not None else InputError("claim", "chips", "no run")


def simulate_best_latency(claim: Claim, dtype: str, kv_dtype: str, chips: int) -> dict[str, Any]:
    """One request alone on the spec for every layout of the claim's chips (tp chips of a tensor-parallel group,
    or all of them as tp x pp with pp up to the layers); the best is the shortest time per output token. Where no
    layout of that many chips holds the model, the capacity rule's count (`--chips auto`) is simulated instead."""
    model = load_model(claim.model)
    layouts = [(tp, tp, 1) for tp in valid_tps(model, chips)]
    layouts += [(chips, tp, chips // tp) for tp in valid_tps(model, chips)
                if 1 < chips // tp <= model.num_hidden_layers]
    runs = []
    for n, tp, pp in layouts:
        try:
            runs.append(_latency_run(claim, dtype, kv_dtype, n, tp, pp))
        except InputError:
            continue
    note = f"the claim's {chips} chips"
    if not runs:
        try:
            runs.append(_latency_run(claim, dtype, kv_dtype, "auto", None, 1))
        except InputError as exc:
            return {"runs": [], "best": None, "note": f"no layout holds the model: {exc.problem}"}
        note = (f"no tp x pp layout of the claim's {chips} chips holds the model in this model's memory plan; "
                f"the capacity rule's count (--chips auto) instead")
    best = min(runs, key=lambda r: r["tpot_p50_s"])
    return {"runs": runs, "best": best, "note": note}
