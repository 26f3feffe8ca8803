"""A claim check as a Markdown report (the order of the issue) and as a roofline plot."""

from __future__ import annotations

from typing import Any

from asicsim.workloads.errors import InputError, install_hint

from .plotdata import roofline_curves

__all__ = ["render_markdown", "plot_claim"]


def _num(x: Any, scale: float = 1.0, fmt: str = "{:,.0f}", unit: str = "") -> str:
    if x is None:
        return "n/a"
    return fmt.format(x if scale == 1 else x / scale) + unit


def _throughput_sections(r: dict) -> list[str]:
    c = r["claim"]
    lines = ["## 1. Token accounting", ""]
    for i in r["interpretations"]:
        lines.append(f"- **{i['accounting']}** reading: {_num(i['output_tokens_per_s'])} output + "
                     f"{_num(i['input_tokens_per_s'])} input tok/s = {_num(i['requests_per_s'], fmt='{:,.1f}')} "
                     f"requests/s of {c['isl']} in / {c['osl']} out"
                     + (f"; {i['vs_measured_output']:.2f}x the measured {c['measured_output_tokens_per_s']:,.1f} "
                        f"output tok/s" if "vs_measured_output" in i else ""))
    lines += [f"- reading used for the verdict: **{r['accounting']}** ({r['accounting_reason']})", "",
              "## 2. Implied per chip", "",
              "| | " + " | ".join(i["accounting"] for i in r["interpretations"]) + " |",
              "|---|" + "---|" * len(r["interpretations"])]
    rows = [
        ("dense FLOP/s (2/param/token + attention)", "implied_dense_flops_per_s_per_chip", 1e15, "{:.2f}", " PFLOP/s"),
        ("HBM bytes/s at the largest batch that fits", "implied_hbm_bytes_per_s_per_chip", 1e12, "{:.2f}", " TB/s"),
        ("  of which weights", "implied_weight_bytes_per_s_per_chip", 1e12, "{:.2f}", " TB/s"),
        ("  of which KV cache", "implied_kv_bytes_per_s_per_chip", 1e12, "{:.2f}", " TB/s"),
        ("link bytes/s (TP all-reduce)", "implied_link_bytes_per_s_per_chip", 1e9, "{:,.0f}", " GB/s"),
        ("requests/s (server)", "requests_per_s", 1, "{:,.1f}", ""),
        ("layout (tp x replicas)", None, 1, "", ""),
        ("required batch (per replica)", "required_batch", 1, "{:,}", ""),
        ("largest batch that fits", "max_batch_fit", 1, "{:,}", ""),
        ("KV bytes at the required batch", "required_kv_bytes_per_chip", 1e9, "{:.2f}", " GB"),
        ("fits memory", "fits_memory", 1, "{}", ""),
    ]
    for label, key, scale, fmt, unit in rows:
        cells = []
        for i in r["interpretations"]:
            if key is None:
                cells.append(f"{i['tp']} x {i['replicas']}")
            elif isinstance(i[key], bool):
                cells.append("yes" if i[key] else "no")
            else:
                cells.append(_num(i[key], scale, fmt, unit))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    hw = r["hardware"]
    lines += ["", "## 3. Roofline bound", "",
              f"{hw['name']}: {_num(hw['peak_flops_per_s'], 1e15, '{:.2f}', ' PFLOP/s')} dense "
              f"{c['compute_dtype']}, {_num(hw['memory_bandwidth_bytes_per_s'], 1e12, '{:.2f}', ' TB/s')} HBM, "
              f"{_num(hw['memory_bytes_per_chip'], 1e9, '{:.0f}', ' GB')} per chip.", ""]
    for i in r["interpretations"]:
        env = i.get("envelope_roofline_tokens_per_s")
        extra = (f"; reticle-die envelope {_num(env['low'])} to {_num(env['high'])} tok/s" if env else "")
        lines.append(f"- {i['accounting']}: roofline {_num(i['roofline_tokens_per_s'])} tok/s "
                     f"(binding: {i['roofline_binding']}){extra}")
    if r["envelope"]:
        lo, hi = r["envelope"]["low"], r["envelope"]["high"]
        lines.append(f"- a reticle-limited N5/N4 die with this floorplan holds "
                     f"{lo['peak_fp8_flops_per_s'] / 1e15:.2f} to {hi['peak_fp8_flops_per_s'] / 1e15:.2f} PFLOP/s "
                     f"dense FP8 and {lo['memory_bandwidth_bytes_per_s'] / 1e12:.1f} to "
                     f"{hi['memory_bandwidth_bytes_per_s'] / 1e12:.1f} TB/s ({r['envelope'].get('source', 'area_energy.csv')})")
    for i in r["interpretations"]:
        if "peak_needed_at_claimed_utilization" in i:
            lines.append(f"- {i['accounting']}: at the vendor's claimed {c['claimed_flops_utilization']:.0%} FLOPS "
                         f"utilization the peak would be {i['peak_needed_at_claimed_utilization'] / 1e15:.2f} PFLOP/s")
    lines += ["", "## 4. Simulated best case", ""]
    best = r["simulated"]["best"]
    if best is None:
        lines.append("no spec to simulate")
    else:
        lines.append(f"search: {len(r['simulated']['runs'])} runs over tp, batch and scheduler; best: tp={best['tp']}, "
                     f"batch {best['max_batch']}, {best['scheduler']}: {_num(best['output_tokens_per_s'])} output / "
                     f"{_num(best['total_tokens_per_s'])} total tok/s")
    return lines


def _per_user_sections(r: dict) -> list[str]:
    i = r["interpretations"][0]
    hw = r["hardware"]
    link = i["link_latency_budget_s"]
    return [
        "## 1. Token accounting", "", f"- {r['accounting_reason']}", "",
        "## 2. Per-token latency", "",
        f"- {i['tokens_per_s']:,.0f} tok/s per user = {i['per_token_latency_s'] * 1e3:.2f} ms per token at "
        f"{i['context_tokens']:,} tokens of context, over {i['chips']} chips ({i['chips_note']})",
        f"- weights read once per token: {i['implied_weight_bytes_per_s_per_chip'] / 1e12:.3f} TB/s per chip "
        f"(chip: {_num(hw['memory_bandwidth_bytes_per_s'], 1e12, '{:.2f}', ' TB/s')}); KV "
        f"{i['implied_kv_bytes_per_s_per_chip'] / 1e12:.4f} TB/s",
        f"- weights per chip {i['weight_bytes_per_chip'] / 1e9:.3f} GB of "
        f"{_num(hw['memory_bytes_per_chip'], 1e9, '{:.3f}', ' GB')}; fits: {i['fits_memory']}",
        f"- memory floor {_num(i['memory_time_s'], 1e-6, '{:.1f}', ' us')}, compute floor "
        f"{_num(i['compute_time_s'], 1e-6, '{:.1f}', ' us')}; >= {i['serial_link_steps']} serial chip-to-chip "
        f"steps per token" + (f", each allowed {link * 1e6:.1f} us" if link else ""),
        "", "## 3. Roofline bound", "", f"- {_num(i['roofline_tokens_per_s'])} tok/s per user "
        f"(binding: {i['roofline_binding']})", "", "## 4. Simulated best case", "",
        _simulated_per_user(r, i),
    ]


def _simulated_per_user(r: dict, i: dict) -> str:
    """The best simulated single stream: speed against the claim, chips, layout, power and energy."""
    if i["simulated_tokens_per_s"] is None:
        note = r["simulated"].get("note")
        return f"no simulated run: {note}" if note else "no spec to simulate"
    claimed = r["claim"]["tokens_per_s"]
    return (f"{i['simulated_tokens_per_s']:,.0f} tok/s per user (batch 1; {i['simulated_tokens_per_s'] / claimed:.2f}x "
            f"the claimed {claimed:,.0f}) on {i['simulated_chips']} chips ({i['simulated_layout']}; "
            f"{i['simulated_note']}), {i['simulated_power_w'] / 1e3:,.1f} kW, "
            f"{i['simulated_energy_j_per_token']:,.1f} J per output token")


def render_markdown(r: dict) -> str:
    """The report: accounting, per-chip implications, rooflines, simulation, verdict."""
    c = r["claim"]
    head = [f"# Claim `{c['name']}`: {c['tokens_per_s']:,.0f} tok/s{' per user' if c['per_user'] else ''}", "",
            f"{c['vendor']} {c['system']}, {c['model']} {c['dtype']}, {c['chips']} chips, isl {c['isl']} / "
            f"osl {c['osl']} on `{c['hardware'] or 'published figures'}`.", f"Source: {c['source']}", ""]
    if c.get("conditions_note"):
        head += [f"Conditions: {c['conditions_note']}", ""]
    body = _per_user_sections(r) if c["per_user"] else _throughput_sections(r)
    tail = ["", "## 5. Verdict", "", f"**{r['verdict']}** (binding: {r['binding_constraint']}): {r['reason']}", ""]
    for i in r["interpretations"]:
        tail.append(f"- {i['accounting']} reading: {i['verdict']}: {i['reason']}")
    return "\n".join(head + body + tail) + "\n"


def plot_claim(r: dict, path: str) -> None:
    """Roofline chart: tokens/s bound against decode batch, the hardware's ceilings and the claim marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot", "matplotlib", f"not installed; {install_hint('plot')}") from None
    curves = roofline_curves(r)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, xs, ys, style in curves["lines"]:
        ax.plot(xs, ys, style, label=label)
    for label, x, y, marker in curves["points"]:
        ax.plot([x], [y], marker, markersize=10, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(curves["xlabel"])
    ax.set_ylabel(curves["ylabel"])
    ax.set_title(curves["title"], fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left" if r["claim"]["per_user"] else "lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
