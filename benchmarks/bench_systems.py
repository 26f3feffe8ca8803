"""Every built-in system on one workload: the README's table of tokens/s, tokens/s per chip, tokens/J and per-user speed.

Workload: Llama-3.3-70B, 2048 tokens in / 128 out, 512 requests at once (Etched's published setting), each system
in its serving dtype (fp8 where it has a datapath, else int8, else bf16; `asicsim.analysis.efficiency.
serving_dtype`), on 8 chips (tp 8) where 8 hold the model, else at the smallest count that does (`chips="auto"`:
Groq's hundreds of chips). Per user: one request at a time on the same chips, in the fastest tp x pp layout of that
count (tp a power of two), output tokens/s of that one stream. A system that cannot serve the model keeps a row
with the reason.

Usage: python benchmarks/bench_systems.py [--markdown] [--json] [--check] [--hw a,b,c]
`--check` exits 1 when a system fails for any reason other than a refusal that says what would fit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from asicsim.analysis.efficiency import serving_dtype
from asicsim.commands.efficiency import short_reason
from asicsim.core.registry import builtin_specs, make_device
from asicsim.core.runner import RunSpec, run_workload
from asicsim.workloads.errors import InputError

MODEL = "llama-3.3-70b"
WORKLOAD = dict(model=MODEL, isl=2048, osl=128, requests=512)


def system_row(name: str) -> dict:
    """One system's row; `error` holds why it could not serve the workload."""
    device = make_device(name, 1)
    dtype = serving_dtype(device)
    row = {"hardware": name, "kind": device.spec.kind, "dtype": dtype, "chips": None, "layout": "",
           "output_tokens_per_s": None, "tokens_per_s_per_chip": None, "output_tokens_per_j": None,
           "power_kw": None, "per_user_tokens_per_s": None, "per_user_layout": "", "error": ""}
    result = None
    for chips in (8, "auto"):
        try:
            result = run_workload(RunSpec(hardware=name, chips=chips, dtype=dtype, **WORKLOAD))
            break
        except InputError as exc:
            row["error"] = f"{exc.field}: {exc.problem}"
    if result is None:
        return row
    s, d = result.summary, result.description
    row.update(chips=d.chips, layout=f"tp {d.tp} x pp {d.pp} x {d.replicas}", error="",
               output_tokens_per_s=s["output_tokens_per_s"], tokens_per_s_per_chip=s["output_tokens_per_s"] / d.chips,
               output_tokens_per_j=1.0 / s["energy_j_per_output_token"],
               power_kw=s["avg_power_w_per_chip"] * d.chips / 1e3)
    group = d.tp * d.pp
    best = None
    for tp in (t for t in (1, 2, 4, 8, 16, 32, 64, 128) if group % t == 0):
        try:
            one = run_workload(RunSpec(hardware=name, chips=group, tp=tp, pp=group // tp, dtype=dtype, model=MODEL,
                                       isl=2048, osl=128, harness="per-user",
                                       max_tokens_per_step=d.max_tokens_per_step))
        except InputError as exc:
            last = exc.problem
            continue
        speed = one.summary["output_tokens_per_s"]
        if best is None or speed > best[0]:
            best = (speed, f"tp {tp} x pp {group // tp}")
    if best is None:
        row["error"] = f"per-user: {last}"
    else:
        row["per_user_tokens_per_s"], row["per_user_layout"] = best
    return row


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(rows: list[dict]) -> str:
    lines = ["| system | kind | dtype | chips (layout) | output tok/s | tok/s per chip | output tok/J | power kW | "
             "per-user tok/s (layout) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["chips"] is None:
            lines.append(f"| {r['hardware']} | {r['kind']} | {r['dtype']} | cannot run: {short_reason(r['error'])} | | | | | |")
            continue
        lines.append(f"| {r['hardware']} | {r['kind']} | {r['dtype']} | {r['chips']} ({r['layout']}) | "
                     f"{_fmt(r['output_tokens_per_s'], ',.0f')} | "
                     f"{_fmt(r['tokens_per_s_per_chip'], ',.0f' if r['tokens_per_s_per_chip'] >= 10 else '.2f')} | "
                     f"{_fmt(r['output_tokens_per_j'], ',.2f')} | {_fmt(r['power_kw'], ',.1f')} | "
                     f"{_fmt(r['per_user_tokens_per_s'], ',.0f')} ({r['per_user_layout']}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="", help="comma-separated specs (default: every built-in spec)")
    ap.add_argument("--markdown", action="store_true", help="print the README's markdown table")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    names = [h.strip() for h in args.hw.split(",") if h.strip()] or builtin_specs()
    started = time.perf_counter()
    rows = []
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows.append(system_row(name))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(markdown(rows))
        print(f"\nLlama-3.3-70B, 2048 in / 128 out, 512 requests at once; per user: one stream on the same chips "
              f"({time.perf_counter() - started:.0f} s)")
    failed = [r for r in rows if r["chips"] is None and "fit" not in r["error"]]
    for r in failed:
        print(f"FAILED {r['hardware']}: {r['error']}", file=sys.stderr)
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
