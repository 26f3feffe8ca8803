"""The lines and points of a claim's roofline chart, from a `check_claim` result (no plotting here)."""

from __future__ import annotations

import numpy as np

__all__ = ["roofline_curves"]


def _throughput(r: dict) -> dict:
    i = next(x for x in r["interpretations"] if x["accounting"] == r["accounting"])
    c = r["claim"]
    rate = c["tokens_per_s"]
    per_req = c["osl"] if i["accounting"] == "output" else c["isl"] + c["osl"]
    lam_rep = i["requests_per_s"] / i["replicas"]
    kv_per_req = i["implied_kv_bytes_per_s_per_chip"] / lam_rep
    fit = max(i["max_batch_fit"], 1)
    batch = np.unique(np.geomspace(1, max(4 * fit, 8), 200).astype(int)).astype(float)
    hw = r["hardware"]

    def hbm(bw: float) -> np.ndarray:
        per_request = i["weight_bytes_per_chip"] * (c["osl"] - 1) / batch + kv_per_req
        return bw / per_request * i["replicas"] * per_req

    need = i["utilization_needed"]
    flat = lambda v: np.full_like(batch, v)  # noqa: E731 - tiny local helper
    lines = [(f"HBM {hw['memory_bandwidth_bytes_per_s'] / 1e12:.2f} TB/s (weights per step + KV)", batch,
              hbm(hw["memory_bandwidth_bytes_per_s"]), "b-")]
    if need["compute"]:
        lines.append((f"compute {hw['peak_flops_per_s'] / 1e15:.2f} PFLOP/s", batch, flat(rate / need["compute"]), "r-"))
    if need["link_bandwidth"]:
        lines.append((f"links at tp={i['tp']}", batch, flat(rate / need["link_bandwidth"]), "g-"))
    env = r.get("envelope")
    if env and need["compute"]:
        key = "peak_bf16_flops_per_s" if c["compute_dtype"] in ("bf16", "fp16") else "peak_fp8_flops_per_s"
        for corner, style in (("low", "r:"), ("high", "r--")):
            peak = env[corner][key]
            lines.append((f"reticle die {corner}: {peak / 1e15:.1f} PFLOP/s", batch,
                          flat(rate / need["compute"] * peak / hw["peak_flops_per_s"]), style))
        lines.append((f"reticle die high: HBM {env['high']['memory_bandwidth_bytes_per_s'] / 1e12:.1f} TB/s", batch,
                      hbm(env["high"]["memory_bandwidth_bytes_per_s"]), "b--"))
    lines.append((f"memory holds batch {i['max_batch_fit']:,}", np.array([fit, fit]),
                  np.array([rate / 100, rate * 10]), "k:"))
    points = [(f"claim {rate:,.0f} {i['accounting']} tok/s", float(i["required_batch"] or fit), rate, "k*")]
    best = r["simulated"]["best"]
    if best:
        points.append((f"simulated best {i['simulated_tokens_per_s']:,.0f}", float(best["max_batch"]),
                       i["simulated_tokens_per_s"], "mo"))
    return {"lines": lines, "points": points, "xlabel": f"decode batch per replica (tp={i['tp']})",
            "ylabel": f"{i['accounting']} tokens/s (server)",
            "title": f"{c['name']}: {r['verdict']} (binding: {r['binding_constraint']})"}


def _per_user(r: dict) -> dict:
    i = r["interpretations"][0]
    c = r["claim"]
    hw = r["hardware"]
    chips = np.unique(np.geomspace(1, max(4 * i["chips"], 8), 100).astype(int)).astype(float)
    bytes_per_token = i["implied_hbm_bytes_per_s_per_chip"] * i["chips"] / i["tokens_per_s"]
    lines = []
    if hw["memory_bandwidth_bytes_per_s"]:
        lines.append(("memory bandwidth floor", chips, chips * hw["memory_bandwidth_bytes_per_s"] / bytes_per_token, "b-"))
    if hw["peak_flops_per_s"]:
        flops = i["implied_dense_flops_per_s_per_chip"] * i["chips"] / i["tokens_per_s"]
        lines.append(("compute floor", chips, chips * hw["peak_flops_per_s"] / flops, "r-"))
    if i.get("link_time_s"):  # serial chip-to-chip steps bound a stream whatever the chips' bandwidth
        steps = i.get("serial_link_steps", 0)
        lines.append((f"link latency: {steps} serial hops per token", chips,
                      np.full_like(chips, i["roofline_tokens_per_s"]), "g-"))
    points = [(f"claim {c['tokens_per_s']:,.0f} tok/s/user", float(i["chips"]), c["tokens_per_s"], "k*")]
    if i.get("simulated_tokens_per_s"):
        points.append((f"simulated {i['simulated_tokens_per_s']:,.0f} tok/s/user ({i.get('simulated_layout', '')})",
                       float(i.get("simulated_chips") or i["chips"]), i["simulated_tokens_per_s"], "mo"))
    return {"lines": lines, "points": points, "xlabel": "chips", "ylabel": "tokens/s per user (batch 1)",
            "title": f"{c['name']}: {r['verdict']} (binding: {r['binding_constraint']})"}


def roofline_curves(r: dict) -> dict:
    """{'lines': [(label, xs, ys, style)], 'points': [(label, x, y, marker)], 'xlabel', 'ylabel', 'title'}."""
    return _per_user(r) if r["claim"]["per_user"] else _throughput(r)
