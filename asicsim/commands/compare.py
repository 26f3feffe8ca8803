"""`asicsim compare`: the same workload on several systems, side by side.

Any mix of systems: without --dtype each runs fp8, or, lacking an fp8 datapath, its own serving dtype (int8, else
bf16; said in a note); a system that cannot serve the workload (the model does not fit, a layout it refuses) is
listed with the reason while the others run. A misspelt system name stops the command."""

from __future__ import annotations

import dataclasses

from asicsim.core.registry import make_device
from asicsim.core.runner import run_workload
from asicsim.workloads.errors import InputError

from ._common import (add_workload_flags, emit_summaries, format_table, output_format, print_fallback_notes,
                      spec_from_args)

__all__ = ["register", "run", "DEFAULT_SYSTEMS"]

DEFAULT_SYSTEMS = "sohu,h100-sxm,b200"


def register(sub) -> None:
    p = sub.add_parser("compare", help="the same workload on several systems (default: Etched's published setting)",
                       description="Run the same workload on several systems and print them side by side (default: Etched's published setting, Llama-3-70B fp8, 8 chips, 2048 in / 128 out, 512 requests at once). Any mix of built-in specs and spec TOMLs.")
    p.add_argument("--hw", default=DEFAULT_SYSTEMS, help="comma-separated spec names or paths (default: %(default)s)")
    add_workload_flags(p, chips_default=8, dtype_default=None,
                       dtype_help="weight and matmul dtype for every system (default: fp8, or a system's own int8 / "
                                  "bf16 datapath where it has no fp8); mxfp4 / nvfp4: fp4 with their block scales")
    p.set_defaults(func=run)


def _dtype(hardware: str) -> str:
    """The system's serving dtype: fp8 where it has the datapath, else int8, else bf16."""
    from asicsim.analysis.efficiency import serving_dtype

    return serving_dtype(make_device(hardware, 1))


def run(args) -> int:
    names = [h.strip() for h in args.hw.split(",") if h.strip()]
    summaries, notes, failed = [], [], []
    for hw in names:
        spec = spec_from_args(args, hw)
        if args.dtype is None:
            spec = dataclasses.replace(spec, dtype=_dtype(hw))
            if spec.dtype != "fp8":
                notes.append(f"{hw}: no fp8 datapath; ran {spec.dtype}, its own")
        try:
            summaries.append(run_workload(spec).summary)
        except InputError as exc:
            if exc.field == "hardware" or exc.source not in ("run",):
                raise  # a misspelt name or a bad spec file: nothing to compare
            failed.append((hw, exc))
    if not summaries:
        raise failed[0][1]
    fmt = output_format(args)
    if fmt == "json":
        from ._common import json_summary, print_json

        print_json([json_summary(s) for s in summaries]
                   + [{"hardware": hw, "error": f"{exc.field}: {exc.problem}"} for hw, exc in failed])
        return 0
    if not emit_summaries(summaries, fmt):
        print(format_table(summaries))
        base = summaries[0]["total_tokens_per_s"]
        ratios = ", ".join(f"{s['hardware']} {base / s['total_tokens_per_s']:.1f}x" for s in summaries[1:])
        if ratios:
            print(f"\n{summaries[0]['hardware']} total tokens/s relative to: {ratios}")
        print_fallback_notes(summaries)
    for note in notes:
        print(note)
    for hw, exc in failed:
        print(f"{hw}: cannot run: {exc.field}: {exc.problem}")
    return 0
