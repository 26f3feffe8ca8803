"""Serving-simulation speed: simulated seconds per wall second and peak memory on a trace replay.

Target (issue 5): `asicsim run --hw h100-sxm --chips 8 --model llama-3.1-70b --dtype fp8 --trace azure-conv`
(19,366 requests over one hour) in under 20 s wall on the 2-core CI machine (>= 180x real time) and under
2 GB of memory. `--requests N` replays only the first N requests (quick look); `--check` exits 1 on a miss
(only meaningful for the full trace).

    python benchmarks/bench_serving.py [--trace azure-conv] [--hw h100-sxm] [--requests N] [--check]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from asicsim.core.runner import RunSpec, run_workload

WALL_LIMIT_S = 20.0
SPEEDUP_MIN = 180.0
MEMORY_LIMIT_BYTES = 2e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hw", default="h100-sxm")
    p.add_argument("--chips", type=int, default=8)
    p.add_argument("--model", default="llama-3.1-70b")  # 128k context: the trace has prompts over Llama-3's 8k
    p.add_argument("--trace", default="azure-conv")
    p.add_argument("--scheduler", default="auto")
    p.add_argument("--requests", type=int, default=0, help="first N requests only (0: all)")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args(argv)
    spec = RunSpec(hardware=args.hw, chips=args.chips, model=args.model, dtype="fp8", trace=args.trace,
                   requests=args.requests or None, scheduler=args.scheduler)
    started = time.perf_counter()
    s = run_workload(spec).summary
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    speed = s["makespan_s"] / wall
    rows = [
        ("workload", f"{s['workload']} on {s['hardware']} x{s['chips']}, {s['model']}, {s['scheduler']}", ""),
        ("requests completed", f"{s['requests_completed']:,}", ""),
        ("engine steps", f"{s['steps']:,}", ""),
        ("simulated time (s)", f"{s['makespan_s']:,.1f}", ""),
        ("wall time (s)", f"{wall:,.2f}", f"< {WALL_LIMIT_S:g}"),
        ("simulated s per wall s", f"{speed:,.0f}", f">= {SPEEDUP_MIN:g}"),
        ("wall us per step", f"{wall / max(s['steps'], 1) * 1e6:,.1f}", ""),
        ("peak memory (GB)", f"{peak / 1e9:.2f}", f"< {MEMORY_LIMIT_BYTES / 1e9:g}"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:>24}  {target}")
    ok = wall < WALL_LIMIT_S and speed >= SPEEDUP_MIN and peak < MEMORY_LIMIT_BYTES
    if args.check and not ok:
        print("MISS: a serving-speed target was not met", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
