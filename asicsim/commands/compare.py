"""`asicsim compare`: the same workload on several systems, side by side."""

from __future__ import annotations

from asicsim.core.runner import run_workload

from ._common import (add_workload_flags, emit_summaries, format_table, output_format, print_fallback_notes,
                      spec_from_args)

__all__ = ["register", "run", "DEFAULT_SYSTEMS"]

DEFAULT_SYSTEMS = "sohu,h100-sxm,b200"


def register(sub) -> None:
    p = sub.add_parser("compare", help="the same workload on several systems (default: Etched's published setting)")
    p.add_argument("--hw", default=DEFAULT_SYSTEMS, help="comma-separated spec names or paths (default: %(default)s)")
    add_workload_flags(p, chips_default=8)
    p.set_defaults(func=run)


def run(args) -> int:
    names = [h.strip() for h in args.hw.split(",") if h.strip()]
    summaries = [run_workload(spec_from_args(args, hw)).summary for hw in names]
    if not emit_summaries(summaries, output_format(args)):
        print(format_table(summaries))
        base = summaries[0]["total_tokens_per_s"]
        ratios = ", ".join(f"{s['hardware']} {base / s['total_tokens_per_s']:.1f}x" for s in summaries[1:])
        if ratios:
            print(f"\n{summaries[0]['hardware']} total tokens/s relative to: {ratios}")
        print_fallback_notes(summaries)
    return 0
