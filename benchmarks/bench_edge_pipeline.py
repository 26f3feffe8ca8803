"""A model split over 1-8 phone-class NPUs joined by a slow link: batch-1 per-token latency (p50, p99) and memory per
device, for a model that fits one phone (Llama-3.1-8B int4) and one that does not (Qwen3-32B int4), over USB4
(TCP over Thunderbolt), Thunderbolt 5 RDMA and Wi-Fi 6 (heavy-tailed latency; links in asicsim/data/links.toml).

Usage: python benchmarks/bench_edge_pipeline.py [--plot docs/edge-pipeline.png] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from asicsim.analysis.edge_pipeline import EdgePipelineWorkload, edge_pipeline_rows, split_verdicts

HARDWARE = "edge-npu"
LINKS = ("usb4", "tb5-rdma", "wifi6")
DEVICES = (1, 2, 4, 8)
MODELS = ("llama-3.1-8b", "qwen3-32b")


def rows() -> list[dict]:
    out = []
    for model in MODELS:
        out += edge_pipeline_rows(HARDWARE, LINKS, DEVICES, EdgePipelineWorkload(model=model))
    return out


def table(result: list[dict]) -> str:
    lines = [f"{'model':13} {'link':9} {'devices':>7} {'weights/dev GB':>14} {'ITL p50 ms':>10} {'ITL p99 ms':>10} "
             f"{'tok/s':>6} {'on link':>7}"]
    for r in result:
        if r["devices"] == 1 and r["link"] == "" and r is not next(x for x in result if x["model"] == r["model"]):
            continue  # one device uses no link: print it once per model
        link = r["link"] or "(none)"
        if not r["fits"]:
            lines.append(f"{r['model']:13} {link:9} {r['devices']:7d}  does not fit: "
                         f"{r['error'].split(';')[0].split(': ', 1)[-1]}")
            continue
        lines.append(f"{r['model']:13} {link:9} {r['devices']:7d} {r['weight_bytes_per_device'] / 1e9:14.2f} "
                     f"{r['itl_p50_ms']:10.1f} {r['itl_p99_ms']:10.1f} {r['tokens_per_s']:6.1f} "
                     f"{100 * r['link_time_share']:6.1f}%")
    lines += ["", "where splitting stops paying (batch 1: it pays only until the model fits):"]
    for v in split_verdicts(result):
        if v["fewest_devices"] is None:
            lines.append(f"  {v['model']:13} {v['link']:9} fits on none of the device counts tried")
            continue
        line = f"  {v['model']:13} {v['link']:9} fits from {v['fewest_devices']} device(s)"
        if "p50_ms_per_extra_device" in v:
            line += (f"; each device past that: +{v['p50_ms_per_extra_device']:.2f} ms p50, "
                     f"+{v['p99_ms_per_extra_device']:.2f} ms p99 per token for "
                     f"{v['weight_bytes_freed_per_extra_device'] / 1e9:.2f} GB less weights per device")
        lines.append(line)
    return "\n".join(lines)


def plot(result: list[dict], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(MODELS), figsize=(11, 4.2))
    colours = dict(zip(LINKS, ("tab:blue", "tab:green", "tab:red")))
    for ax, model in zip(axes, MODELS):
        for link in LINKS:
            pts = [r for r in result if r["model"] == model and r["fits"] and (r["link"] == link or r["devices"] == 1)]
            pts = list({r["devices"]: r for r in pts}.values())  # one device (no link) once per curve
            if not pts:
                continue
            n = [r["devices"] for r in pts]
            ax.plot(n, [r["itl_p50_ms"] for r in pts], marker="o", color=colours[link], label=f"{link} p50")
            ax.plot(n, [r["itl_p99_ms"] for r in pts], marker="^", linestyle="--", color=colours[link],
                    label=f"{link} p99")
        misses = [r["devices"] for r in result if r["model"] == model and not r["fits"] and r["link"] == LINKS[0]]
        if misses:
            ax.axvspan(0.8, max(misses) * 1.2, color="grey", alpha=0.15, label="does not fit")
        ax.set_xscale("log", base=2)
        ax.set_xticks(DEVICES, [str(d) for d in DEVICES])
        ax.set_xlabel("devices (pipeline stages)")
        ax.set_ylabel("time between output tokens (ms, batch 1)")
        ax.set_title(f"{model} int4 on {HARDWARE}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="write the latency curves to this PNG")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = rows()
    print(json.dumps(result, indent=2) if args.json else table(result))
    print(f"\n{len(result)} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
