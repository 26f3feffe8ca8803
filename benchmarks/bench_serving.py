"""Serving-simulation speed: wall time, peak memory and time per request of whole `asicsim run` processes.

Targets (issue 15; `--check` exits 1 on a miss):
- hour: `asicsim run --hw HW --chips 8 --model llama-3.1-70b --trace azure-conv` (19,366 requests over one
  hour) on 8 x H100 and 8 x Sohu: each under 3.6 s wall (>= 1000x real time) and 500 MB peak RSS, start-up
  included (the package's bytecode compiled first, as an install has it); the fastest of `--repeat` runs in a row
  (default 3: the 2-core machine's speed drifts by tens of percent over minutes), the slowest printed beside it.
  With `--baseline DIR` (summaries
  saved as DIR/HW.json by `asicsim run ... --json`) every summary value must equal the baseline's to a
  relative 1e-9 (sums over steps may be added in another order).
- scaling: the Azure code trace, and a synthetic trace (Poisson arrivals, lognormal prompt and output lengths,
  seed 0) replayed for the request counts of `--scaling-requests`: the script prints us per request for each
  and checks that the largest count's is within 1.5x of the smallest's (time linear in requests).

    python benchmarks/bench_serving.py [--hw h100-sxm,sohu] [--baseline DIR] [--repeat 3] [--scaling]
        [--scaling-requests 50000,500000] [--events] [--check]

`--events` replays the hour in-process with a timer around each kind of event (steps, fast-forward calls, the
decode evaluations and `decode_run` inside them): where the time goes, with no target.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

WALL_LIMIT_S = 3.6
MEMORY_LIMIT_BYTES = 500e6
LINEARITY_MAX = 1.5
SUMMARY_RTOL = 1e-9
LAST_CPU_S = 0.0
# A day of synthetic traffic: ~5.8 requests/s, conversation-like lengths (median 1,000 in, 200 out).
SYNTHETIC_RATE_PER_S = 5.8
SYNTHETIC_FLAGS = ("--isl-dist", "lognormal:1000:1.0", "--osl-dist", "lognormal:200:0.8", "--seed", "0")


def run_cli(args: list[str]) -> tuple[dict, float, float]:
    """(summary, wall s, peak RSS bytes) of one `asicsim run ... --json --quiet` process; its CPU seconds (user +
    system, what the process itself used: steadier than wall time on a shared machine) in LAST_CPU_S."""
    global LAST_CPU_S
    cmd = [sys.executable, "-m", "asicsim", "run", *args, "--json", "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (Linux: KiB)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    LAST_CPU_S = usage.ru_utime + usage.ru_stime
    return json.loads(out), wall, usage.ru_maxrss * 1024


def compile_bytecode() -> None:
    """The package's modules compiled to bytecode first, as an install compiles them (pip writes the .pyc files):
    timed processes then import what a user's do. A source tree run with PYTHONDONTWRITEBYTECODE=1 would otherwise
    compile every module edited since its last .pyc in every timed run (~0.05 s)."""
    import compileall
    import importlib

    for name in ("asicsim", "asicsim.kernels", "asicsim.workloads", "asicsim.gpusim"):
        for folder in importlib.import_module(name).__path__:
            compileall.compile_dir(folder, quiet=1)


def compare(summary: dict, baseline: dict) -> list[str]:
    """Keys whose values differ from the baseline's beyond SUMMARY_RTOL (wall_s aside)."""
    bad = []
    for key, want in baseline.items():
        got = summary.get(key)
        if key == "wall_s":
            continue
        if isinstance(want, dict):
            bad += [f"{key}.{k}" for k in want if not math.isclose(got[k], want[k], rel_tol=SUMMARY_RTOL)]
        elif isinstance(want, float):
            if not math.isclose(got, want, rel_tol=SUMMARY_RTOL, abs_tol=0.0):
                bad.append(f"{key}: {got!r} vs {want!r}")
        elif got != want:
            bad.append(f"{key}: {got!r} vs {want!r}")
    return bad


def hour(hardware: list[str], baseline: str | None, repeat: int) -> bool:
    """The hour on each hardware, `repeat` processes in a row: the fastest one's wall time is checked (the least a
    run takes; what a shared machine adds on top varies by tens of percent from minute to minute), with the slowest
    shown beside it; the peak memory is the largest, and every run's summary is compared."""
    ok = True
    print(f"{'hardware':10s} {'requests':>8s} {'steps':>9s} {'wall s':>7s} {'slowest':>7s} {'cpu s':>7s} {'x real':>7s} "
          f"{'RSS MB':>7s}  targets: < {WALL_LIMIT_S:g} s (fastest of {repeat}), < {MEMORY_LIMIT_BYTES / 1e6:.0f} MB")
    for hw in hardware:
        runs = []
        for _ in range(repeat):
            s, wall, peak = run_cli(["--hw", hw, "--chips", "8", "--model", "llama-3.1-70b", "--trace", "azure-conv"])
            runs.append((wall, LAST_CPU_S, peak, s))
        wall, cpu, _, s = min(runs, key=lambda r: r[0])
        peak = max(r[2] for r in runs)
        met = wall < WALL_LIMIT_S and peak < MEMORY_LIMIT_BYTES
        print(f"{hw:10s} {s['requests_completed']:8,d} {s['steps']:9,d} {wall:7.2f} {max(r[0] for r in runs):7.2f} "
              f"{cpu:7.2f} {s['makespan_s'] / wall:7.0f} {peak / 1e6:7.0f}  {'ok' if met else 'MISSED'}")
        if baseline:
            with open(os.path.join(baseline, f"{hw}.json")) as f:
                want = json.load(f)
            bad = [b for run in runs for b in compare(run[3], want)]
            print(f"{'':10s} summary vs {baseline}/{hw}.json: "
                  f"{'equal to ' + format(SUMMARY_RTOL, 'g') if not bad else 'DIFFERS: ' + '; '.join(bad[:5])}")
            met = met and not bad
        ok = ok and met
    return ok


def scaling(hardware: list[str], counts: list[int]) -> bool:
    ok = True
    print(f"\n{'hardware':10s} {'workload':34s} {'requests':>8s} {'steps':>10s} {'wall s':>8s} {'us/request':>10s} "
          f"{'RSS MB':>7s}")
    for hw in hardware:
        base = ["--hw", hw, "--chips", "8", "--model", "llama-3.1-70b"]
        s, wall, peak = run_cli([*base, "--trace", "azure-code"])
        print(f"{hw:10s} {'azure-code':34s} {s['requests_completed']:8,d} {s['steps']:10,d} {wall:8.2f} "
              f"{wall / s['requests_completed'] * 1e6:10.0f} {peak / 1e6:7.0f}")
        per_request = []
        for n in counts:
            s, wall, peak = run_cli([*base, "--rate", str(SYNTHETIC_RATE_PER_S), "--requests", str(n),
                                     *SYNTHETIC_FLAGS])
            per_request.append(wall / n * 1e6)
            label = f"poisson {SYNTHETIC_RATE_PER_S:g}/s, {s['makespan_s'] / 3600:.1f} h"
            print(f"{hw:10s} {label:34s} {n:8,d} {s['steps']:10,d} {wall:8.2f} {per_request[-1]:10.0f} "
                  f"{peak / 1e6:7.0f}")
        if len(per_request) > 1:
            # The slope: wall time added per request between the smallest and largest count.
            ratio = per_request[-1] / per_request[0]
            met = ratio <= LINEARITY_MAX
            print(f"{hw:10s} us/request at {counts[-1]:,} / at {counts[0]:,} = {ratio:.2f} "
                  f"(<= {LINEARITY_MAX:g}: {'ok' if met else 'MISSED'})")
            ok = ok and met
    return ok


# What `--events` times in the hour, by name: (module, class, method) of each kind of event the serving loop runs.
EVENT_KINDS = (
    ("step (one step, mixed or not)", "asicsim.core.serving", "_Replica", "step"),
    ("  mixed step in one call in it", "asicsim.core.serving", "StepRunner", "mixed_step"),
    ("fast-forward call", "asicsim.core.serving", "_Replica", "fast_forward"),
    ("  decode run in one call in it", "asicsim.core.serving", "StepRunner", "decode_run"),
    ("  decode-step evaluation in it", "asicsim.core.serving", "StepRunner", "decode_values"),
    ("  Scheduler.decode_run in it", "asicsim.core.schedulers", "Scheduler", "decode_run"),
    # Inside either kind of event (their time is part of the rows above):
    ("graphs built, in either", "asicsim.core.serving", "StepRunner", "graph"),
    ("ops priced afresh, in either", "asicsim.core.engine", "StepEngine", "price"),
    ("layer parts priced, in either", "asicsim.core.engine", "_LayerPart", "__init__"),
)


def events(hardware: list[str]) -> None:
    """The hour in this process with a timer around each kind of event (`EVENT_KINDS`): how many, their seconds
    and microseconds each (the timers add ~1 us a call). Where the hour's time goes, for the README's analysis."""
    import importlib

    from asicsim.cli import main as cli_main

    print(f"\n{'hardware':10s} {'event':32s} {'count':>9s} {'s':>7s} {'us each':>8s}   (--events: timers in process)")
    for hw in hardware:
        spent: dict[str, list] = {}
        saved = []
        for label, module, cls, method in EVENT_KINDS:
            owner = getattr(importlib.import_module(module), cls)
            real = getattr(owner, method, None)
            if real is None:  # an older checkout without this event (compared before and after a change)
                continue
            saved.append((owner, method, real))
            tally = spent.setdefault(label, [0, 0.0])

            def timed(*a, _real=real, _tally=tally, **k):
                t0 = time.perf_counter()
                try:
                    return _real(*a, **k)
                finally:
                    _tally[0] += 1
                    _tally[1] += time.perf_counter() - t0

            setattr(owner, method, timed)
        started = time.perf_counter()
        try:
            with open(os.devnull, "w") as null:
                stdout, sys.stdout = sys.stdout, null
                try:
                    cli_main(["run", "--hw", hw, "--chips", "8", "--model", "llama-3.1-70b", "--trace", "azure-conv",
                              "--json", "--quiet"])
                except SystemExit:
                    pass
                finally:
                    sys.stdout = stdout
        finally:
            for owner, method, real in saved:
                setattr(owner, method, real)
        wall = time.perf_counter() - started
        for label, (count, seconds) in spent.items():
            if not count:  # a path this device never takes (GPU decode runs are read off curves)
                continue
            print(f"{hw:10s} {label:32s} {count:9,d} {seconds:7.2f} {seconds / max(count, 1) * 1e6:8.1f}")
        print(f"{hw:10s} {'the whole run (in process)':32s} {'':9s} {wall:7.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hw", default="h100-sxm,sohu", help="comma-separated hardware (default: %(default)s)")
    p.add_argument("--baseline", help="folder of HW.json summaries the hour's summaries must equal")
    p.add_argument("--scaling", action="store_true", help="also time azure-code and the synthetic day")
    p.add_argument("--scaling-requests", default="50000,500000", help="synthetic trace request counts")
    p.add_argument("--no-hour", action="store_true", help="skip the Azure conversation hour")
    p.add_argument("--repeat", type=int, default=3, help="hour runs per hardware; the fastest is checked "
                                                          "(default: %(default)s)")
    p.add_argument("--events", action="store_true",
                   help="also replay the hour in this process, timing each kind of event (no target)")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args(argv)
    hardware = args.hw.split(",")
    compile_bytecode()
    ok = True
    if not args.no_hour:
        ok = hour(hardware, args.baseline, max(args.repeat, 1)) and ok
    if args.scaling:
        ok = scaling(hardware, [int(n) for n in args.scaling_requests.split(",")]) and ok
    if args.events:
        events(hardware)
    print(f"(cpus: {os.cpu_count()})")
    if args.check and not ok:
        print("MISS: a serving-speed target was not met", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
