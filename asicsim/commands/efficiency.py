"""`asicsim efficiency`: datasheet peak TOPS/W next to delivered tokens/J and effective TOPS/W, every spec."""

from __future__ import annotations

import re
import sys

from asicsim.core.description import RUN_DTYPES

from ._common import add_output_flags, output_format, print_rows, whole_at_least

__all__ = ["register", "run", "format_efficiency"]


def register(sub) -> None:
    p = sub.add_parser("efficiency", help="peak TOPS/W (datasheet) vs delivered tokens/J on one stated workload",
                       description="Every built-in spec (or --hw) serves the same workload at the smallest chip count "
                                   "that holds the model; the table puts the datasheet's peak TOPS/W next to the "
                                   "tokens per joule and effective TOPS/W the run delivered.")
    p.add_argument("--hw", default="", help="comma-separated spec names or paths (default: every built-in spec)")
    p.add_argument("--model", default="llama-3.1-8b", help="model name or config path (default: %(default)s)")
    p.add_argument("--isl", type=whole_at_least(1), default=1024, help="input tokens per request (default: %(default)s)")
    p.add_argument("--osl", type=whole_at_least(1), default=256, help="output tokens per request (default: %(default)s)")
    p.add_argument("--requests", type=whole_at_least(1), default=64,
                   help="requests, all arriving at t = 0 (default: %(default)s)")
    p.add_argument("--dtype", choices=RUN_DTYPES, default=None,
                   help="weight dtype for every spec (default: each spec's fp8, else int8, else bf16)")
    add_output_flags(p, "print one JSON object per spec")
    p.set_defaults(func=run)


def short_reason(error: str) -> str:
    """A does-not-fit refusal in a few words (what the model needs against what the chip has, what fits)."""
    need = re.search(r"need ([\d.]+) GB per chip, the device has ([\d.]+) GB", error)
    if not need:
        return error
    fits = re.search(r"these fit: ([^;]+)$", error)
    return f"needs {need[1]} GB per chip, has {need[2]} GB" + (f"; fits: {fits[1]}" if fits else "")


def _num(value, fmt: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}{fmt}}"


def format_efficiency(rows: list[dict], workload_text: str) -> str:
    """The table: one line per spec, then what the columns mean."""
    head = (f"{'name':15} {'kind':13} {'dtype':5} {'chips':>5} {'peak TOPS/W':>11} {'best (dtype)':>14} "
            f"{'out tok/s':>10} {'tok/J':>8} {'eff. TOPS/W':>11} {'delivered':>9}")
    lines = [f"workload: {workload_text}", head]
    for r in rows:
        best = f"{r['peak_tops_per_w_best']:.2f} ({r['peak_dtype_best']})"
        line = (f"{r['name']:15} {r['kind']:13} {r['dtype']:5} {_num(r['chips'], 'd', 5)} "
                f"{r['peak_tops_per_w']:11.2f} {best:>14} {_num(r['output_tokens_per_s'], ',.0f', 10)} "
                f"{_num(r['output_tokens_per_j'], ',.2f', 8)} {_num(r['effective_tops_per_w'], '.3f', 11)} "
                f"{_num(None if r['delivered_share'] is None else 100 * r['delivered_share'], '.1f', 8)}"
                f"{'%' if r['delivered_share'] is not None else ' '}")
        lines.append(line + (f"  cannot run: {short_reason(r['error'])}" if r["error"] else ""))
    lines.append("\npeak TOPS/W: dense peak of the run's dtype / TDP (the datasheet view); best: the same at the "
                 "chip's narrowest native datapath.\neff. TOPS/W: operations the run did per second / the average "
                 "power it drew (static power for the whole run included); delivered = eff. / peak.")
    return "\n".join(lines)


def run(args) -> int:
    from asicsim.analysis.efficiency import EfficiencyWorkload, efficiency_rows

    workload = EfficiencyWorkload(model=args.model, isl=args.isl, osl=args.osl, requests=args.requests,
                                  dtype=args.dtype)
    names = [h.strip() for h in args.hw.split(",") if h.strip()] or None
    fmt = output_format(args)
    show = sys.stderr.isatty() and fmt == "table"

    def progress(name: str) -> None:
        if show:
            print(f"\r\033[Kasicsim efficiency: {name} ...", end="", file=sys.stderr, flush=True)

    rows = efficiency_rows(names, workload, progress)
    if show:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    if fmt != "table":
        print_rows([{**r, "workload": workload.describe()} for r in rows], fmt)
    else:
        print(format_efficiency(rows, workload.describe()))
    return 0
