"""Aggregated against disaggregated serving at the same chip count: goodput under TTFT/TPOT targets as load grows.

Workload: Llama-3.3-70B in fp8 on 16 H100s, 2048 tokens in / 256 out, Poisson arrivals at each rate (600 requests,
seed 0). SLOs: MLPerf Inference's Llama-2-70B Interactive targets, TTFT <= 450 ms and TPOT <= 40 ms (mlcommons/
inference language/llama2-70b/README.md, "Run llama2-70b-interactive benchmark"). Configurations: aggregated (two tp 8 replicas, chunked prefill), and 8:8, 4:12 and 12:4
prefill:decode pools (tp 4 or 8 per pool as resolve picks: the pool's chips up to 8 per replica).
Goodput: requests per second that met both SLOs (vLLM's `request_goodput`).

Usage: python benchmarks/bench_disaggregation.py [--plot docs/disaggregation.png] [--rates 2,4,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from asicsim.core.runner import RunSpec, run_workload

BASE = dict(hardware="h100-sxm", chips=16, model="llama-3.3-70b", dtype="fp8", isl=2048, osl=256, requests=600,
            seed=0, slo_ttft_s=0.450, slo_tpot_s=0.040)
CONFIGS = {"aggregated 2 x tp8": dict(tp=8, scheduler="chunked-prefill"),
           "8:8": dict(disaggregate="8:8", tp=8), "4:12": dict(disaggregate="4:12", tp=4),
           "12:4": dict(disaggregate="12:4", tp=4)}
RATES = (4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 28.0)


def rows(rates=RATES) -> list[dict]:
    out = []
    for name, extra in CONFIGS.items():
        for rate in rates:
            s = run_workload(RunSpec(rate=rate, **BASE, **extra)).summary
            out.append({"config": name, "rate_per_s": rate, "goodput_requests_per_s": s["request_goodput"],
                        "slo_attainment": s["slo_attainment"], "output_tokens_per_s": s["output_tokens_per_s"],
                        "ttft_p50_ms": 1e3 * s["ttft_p50_s"], "tpot_p50_ms": 1e3 * s["tpot_p50_s"],
                        "tpot_p99_ms": 1e3 * s["tpot_p99_s"], "kv_transfer_p50_ms": 1e3 * s.get("kv_transfer_p50_s", 0.0),
                        "tokens_per_s_per_w": s["tokens_per_s_per_w"]})
    return out


def table(result: list[dict]) -> str:
    lines = [f"{'config':20} {'rate/s':>6} {'goodput/s':>9} {'SLO met':>7} {'out tok/s':>9} {'TTFT p50':>8} "
             f"{'TPOT p50':>8} {'TPOT p99':>8} {'KV xfer':>7}"]
    for r in result:
        lines.append(f"{r['config']:20} {r['rate_per_s']:6.1f} {r['goodput_requests_per_s']:9.2f} "
                     f"{100 * r['slo_attainment']:6.1f}% {r['output_tokens_per_s']:9,.0f} {r['ttft_p50_ms']:8.0f} "
                     f"{r['tpot_p50_ms']:8.1f} {r['tpot_p99_ms']:8.1f} {r['kv_transfer_p50_ms']:7.2f}")
    return "\n".join(lines)


def plot(result: list[dict], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, name in enumerate(CONFIGS):
        pts = [r for r in result if r["config"] == name]
        style = dict(marker="osD^"[i % 4], linestyle=("-", "--", "-.", ":")[i % 4], label=name)
        left.plot([r["rate_per_s"] for r in pts], [r["goodput_requests_per_s"] for r in pts], **style)
        right.plot([r["rate_per_s"] for r in pts], [r["tpot_p50_ms"] for r in pts], **style)
    left.set_xlabel("offered load (requests/s, Poisson)")
    left.set_ylabel("goodput (requests/s within SLOs)")
    right.set_xlabel("offered load (requests/s, Poisson)")
    right.set_ylabel("median TPOT (ms)")
    right.axhline(40, color="grey", linewidth=0.8, linestyle=":")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Llama-3.3-70B fp8 on 16 x H100, 2048 in / 256 out; SLOs TTFT 450 ms, TPOT 40 ms: aggregated vs "
                 "prefill:decode pools", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="write the goodput and TPOT curves to this PNG")
    parser.add_argument("--rates", help="comma-separated Poisson rates (default: 4,8,...,28)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rates = tuple(float(x) for x in args.rates.split(",")) if args.rates else RATES
    started = time.perf_counter()
    result = rows(rates)
    print(json.dumps(result, indent=2) if args.json else table(result))
    print(f"\n{len(result)} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
