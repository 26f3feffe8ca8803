"""`asicsim scale`: tokens/s and tokens/s per watt of one model as deployments grow (analysis/scale.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asicsim.core.description import DEFAULT_SLO_TPOT_S, DEFAULT_SLO_TTFT_S, RUN_DTYPES
from asicsim.workloads.errors import InputError, install_hint

from ._common import _non_negative_float, _positive, add_output_flags, output_format, print_rows, whole_at_least

__all__ = ["register", "run", "format_scale", "plot_scale", "parse_sizes"]


def parse_sizes(text: str) -> list[int]:
    """'8,72,576' -> [8, 72, 576] (argparse type: a bad entry is one line naming --chips)."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(f"expected chip counts >= 1 separated by commas, got {part!r}")
        sizes.append(int(part))
    return sizes


def register(sub) -> None:
    p = sub.add_parser("scale", help="tokens/s and tokens/s per watt as a deployment grows, per system",
                       description="For one model and workload, size every system over a list of chip counts: at "
                                   "each size the best tp x pp (or, for MoE, DEP) group under the SLOs, "
                                   "replicated; power includes hosts, the scale-out network and the facility (PUE).")
    p.add_argument("--model", default="llama-3.3-70b", help="model name or config path (default: %(default)s)")
    p.add_argument("--hw", default="h100-sxm,gb200-nvl72,sohu", help="comma-separated specs (default: %(default)s)")
    p.add_argument("--chips", type=parse_sizes, default=[8, 72, 576, 4608],
                   help="deployment sizes, comma-separated (default: 8,72,576,4608)")
    p.add_argument("--isl", type=whole_at_least(1), default=1024, help="input tokens per request (default: %(default)s)")
    p.add_argument("--osl", type=whole_at_least(1), default=1024, help="output tokens per request (default: %(default)s)")
    p.add_argument("--dtype", choices=RUN_DTYPES, default=None,
                   help="weight dtype for every system (default: each system's fp8, else int8, else bf16)")
    p.add_argument("--slo-ttft", type=_non_negative_float, default=DEFAULT_SLO_TTFT_S,
                   help="median time-to-first-token target, s (default: %(default)s)")
    p.add_argument("--slo-tpot", type=_non_negative_float, default=DEFAULT_SLO_TPOT_S,
                   help="median time-per-output-token target, s (default: %(default)s)")
    p.add_argument("--network", default=None, help="scale-out network for every system (asicsim/data/clusters.toml; "
                                                    "default: each system's own)")
    p.add_argument("--out", help="write the rows to a .parquet (needs pyarrow) or .csv file")
    p.add_argument("--plot", help="write tokens/s against tokens/s per watt, one curve per system, to this PNG")
    p.add_argument("--executor", default="local", help="where the group searches run: local or dask")
    p.add_argument("--workers", type=_positive, default=1, help="processes for the group searches (default: 1)")
    add_output_flags(p, "print one JSON object per (system, size)")
    p.set_defaults(func=run)


def format_scale(rows: list[dict], work) -> str:
    lines = [f"model {work.model}, {work.isl} in / {work.osl} out per request; SLOs: median TTFT <= {work.slo_ttft_s:g} s,"
             f" median TPOT <= {work.slo_tpot_s:g} s",
             f"{'hardware':13} {'chips':>6} {'layout':>18} {'batch':>5} {'out tok/s':>12} {'tok/s/chip':>10} "
             f"{'power MW':>9} {'tok/s/W':>8} {'TTFT ms':>8} {'TPOT ms':>8} {'SLO':>4} {'net':>4}"]
    for r in rows:
        if r["error"]:
            lines.append(f"{r['hardware']:13} {r['chips']:6d}  cannot run: {r['error']}")
            continue
        lines.append(f"{r['hardware']:13} {r['chips']:6d} {r['layout']:>18} {r['max_batch']:5d} "
                     f"{r['output_tokens_per_s']:12,.0f} {r['tokens_per_s_per_chip']:10,.0f} {r['power_w'] / 1e6:9.3f} "
                     f"{r['tokens_per_s_per_w']:8.3f} {1e3 * r['ttft_p50_s']:8.0f} {1e3 * r['tpot_p50_s']:8.1f} "
                     f"{'yes' if r['slo_met'] else 'no':>4} {r['network_tiers']:4d}")
    lines.append("\nlayout: tp x pp x replicas; batch: requests per replica's wave; power: chips + hosts + scale-out "
                 "network, times the facility PUE;\nnet: switch tiers of the scale-out fat tree (0: one scale-up "
                 "domain, no network).")
    return "\n".join(lines)


def plot_scale(rows: list[dict], out: Path) -> Path:
    """Tokens/s (x, log) against tokens/s per watt (y), one curve per system, points labelled with chip counts."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("scale", "--plot", f"plots need matplotlib ({install_hint('plot')})") from None
    fig, ax = plt.subplots(figsize=(8, 5))
    markers = "osD^vP*X"
    for i, name in enumerate(dict.fromkeys(r["hardware"] for r in rows)):
        pts = [r for r in rows if r["hardware"] == name and not r["error"]]
        if not pts:
            continue
        ax.plot([r["output_tokens_per_s"] for r in pts], [r["tokens_per_s_per_w"] for r in pts],
                marker=markers[i % len(markers)], label=name)
        for r in pts:
            ax.annotate(f"{r['chips']:,}", (r["output_tokens_per_s"], r["tokens_per_s_per_w"]), fontsize=8,
                        textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_xlabel("output tokens/s (deployment)")
    ax.set_ylabel("output tokens/s per watt (facility)")
    model = rows[0].get("model", "") if rows else ""
    ax.set_title(f"Scale-up and scale-out{': ' + model if model else ''} (labels: chips)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _eval_chunk(chunk: list, fn) -> list:
    return [(task, fn(task)) for task in chunk]


def _mapper(executor: str, workers: int):
    if executor == "local" and workers == 1:
        return None

    def run_all(fn, tasks: list) -> list:
        from asicsim.analysis.executors import bind, chunked, run_chunks

        done = {}
        for results in run_chunks(bind(_eval_chunk, fn=fn), chunked(tasks, 1), executor=executor, workers=workers):
            done.update(results)
        return [done[t] for t in tasks]

    return run_all


def run(args) -> int:
    from asicsim.analysis.scale import ScaleWorkload, scale_rows

    names = [h.strip() for h in args.hw.split(",") if h.strip()]
    if not names:
        raise InputError("scale", "--hw", "name at least one spec")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix not in (".parquet", ".csv"):
        raise InputError(args.out, "--out", "must end in .parquet or .csv")
    if args.plot and not args.plot.endswith(".png"):
        raise InputError(args.plot, "--plot", "must end in .png")
    work = ScaleWorkload(model=args.model, isl=args.isl, osl=args.osl, dtype=args.dtype, slo_ttft_s=args.slo_ttft,
                         slo_tpot_s=args.slo_tpot, network=args.network)
    fmt = output_format(args)
    show = sys.stderr.isatty() and fmt == "table"

    def progress(what: str) -> None:
        if show:
            print(f"\r\033[Kasicsim scale: {what} ...", end="", file=sys.stderr, flush=True)

    rows = scale_rows(names, args.chips, work, progress=progress, map_groups=_mapper(args.executor, args.workers))
    if show:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    for r in rows:
        r["model"] = args.model
    if out is not None:
        import pandas as pd

        frame = pd.DataFrame(rows)
        if out.suffix == ".parquet":
            try:
                frame.to_parquet(out, index=False)
            except ImportError:
                raise InputError(args.out, "--out", f"Parquet needs pyarrow ({install_hint('parquet')})") from None
        else:
            frame.to_csv(out, index=False)
    if args.plot:
        plot_scale(rows, Path(args.plot))
    if fmt == "table":
        print(format_scale(rows, work))
    else:
        print_rows(rows, fmt)
    return 0
