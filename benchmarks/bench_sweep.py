"""Points per second of `asicsim sweep`: a 10,000-point study on the local process pool, and Dask's scaling.

Targets (issue 15; `--check` exits 1 on a miss), on the 2-core machine:
- the 10,000-point die-area/programmability study (`benchmarks/studies/sweep_10k.toml`, the default study's axes
  on a finer grid) finishes in < 60 s with the local executor, start-up and file writing included;
- with `--scaling 1,2[,4]`: a local Dask cluster (`distributed.LocalCluster`, skipped without the optional
  `[distributed]` extra) runs the study with 1, 2 and 4 worker processes, each cluster up and its workers warm
  before the clock starts (the throughput of a long-lived cluster; its start-up is printed apart); points/s with
  2 workers is at least 1.6x that with 1 (near-linear; on 2 cores, 4 workers share them).
Every point runs the full serving path of `asicsim run` (runner.run_workload): there is no reduced model.

    python benchmarks/bench_sweep.py [--config STUDY.toml] [--executors local,dask] [--scaling 1,2,4] [--check]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from asicsim.analysis.sweep import evaluate_chunk, expand_points, load_sweep_config
from asicsim.commands.sweep import run_sweep

__all__ = ["main"]

TARGET_S = 60.0
STUDY_10K = Path(__file__).resolve().parent / "studies" / "sweep_10k.toml"
SCALING_MIN = 1.6  # points/s with 2 Dask workers over 1, on >= 2 cores: near-linear


def _time_sweep(config: Path, executor: str, workers: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        written, total, _ = run_sweep(str(config), str(Path(tmp) / "r.csv"), executor=executor, workers=workers)
        return written, time.perf_counter() - started


def _time_dask_warm(config: Path, workers: int) -> tuple[float, int, float]:
    """(cluster start and warm-up s, points, wall s) of the study on a local Dask cluster of `workers` processes
    that is already up with every worker warm (asicsim imported and its kernels loaded by one point each): the
    throughput a long-lived cluster gives, which the speed-up compares. The start is reported apart."""
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    first_point = expand_points(load_sweep_config(config))[:1]
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(evaluate_chunk, first_point)
        start_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            begun = time.perf_counter()
            written, _, _ = run_sweep(str(config), str(Path(tmp) / "r.csv"), executor="dask",
                                      address=cluster.scheduler_address, workers=workers)
            return start_s, written, time.perf_counter() - begun


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=STUDY_10K, help="sweep TOML (default: the 10,000-point study)")
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per CPU)")
    p.add_argument("--executors", default="local,dask", help="comma-separated: local, dask")
    p.add_argument("--scaling", default="", help="comma-separated Dask worker counts to time, e.g. 1,2,4")
    p.add_argument("--check", action="store_true", help=f"exit 1 unless the local sweep takes < {TARGET_S:g} s")
    args = p.parse_args(argv)
    workers = args.workers or os.cpu_count() or 1
    points = len(expand_points(load_sweep_config(args.config)))
    print(f"study: {args.config.name}, {points} points, {workers} workers, {os.cpu_count()} CPUs")
    print(f"{'executor':10s} {'points':>7s} {'wall s':>8s} {'points/s':>9s}")
    local_s = None
    for executor in args.executors.split(","):
        if executor == "dask":
            try:
                import distributed  # noqa: F401
            except ImportError:
                print(f"{'dask':10s} skipped: pip install 'asicsim[distributed]'")
                continue
        written, wall = _time_sweep(args.config, executor, workers)
        print(f"{executor:10s} {written:7d} {wall:8.1f} {written / wall:9.1f}")
        if executor == "local":
            local_s = wall
    scaling_ok = True
    if args.scaling and importlib.util.find_spec("distributed") is None:
        print("\ndask scaling skipped: pip install 'asicsim[distributed]'")
    elif args.scaling:
        counts = [int(n) for n in args.scaling.split(",")]
        print(f"\n{'dask workers':12s} {'start s':>8s} {'points':>7s} {'wall s':>8s} {'points/s':>9s} {'speed-up':>8s}")
        rates = {}
        for n in counts:
            start_s, written, wall = _time_dask_warm(args.config, n)
            rates[n] = written / wall
            first = rates[counts[0]]
            print(f"{n:12d} {start_s:8.1f} {written:7d} {wall:8.1f} {rates[n]:9.1f} {rates[n] / first:8.2f}")
        if 1 in rates and 2 in rates and (os.cpu_count() or 1) >= 2:
            scaling_ok = rates[2] / rates[1] >= SCALING_MIN
            print(f"speed-up 1 -> 2 workers: {rates[2] / rates[1]:.2f} (near-linear: >= {SCALING_MIN:g})")
    if args.check:
        if local_s is None:
            print("check: the local executor did not run", file=sys.stderr)
            return 1
        if local_s >= TARGET_S:
            print(f"check FAILED: local sweep {local_s:.1f} s >= {TARGET_S:g} s", file=sys.stderr)
            return 1
        print(f"check ok: local sweep {local_s:.1f} s < {TARGET_S:g} s")
        if not scaling_ok:
            print(f"check FAILED: Dask speed-up from 1 to 2 workers < {SCALING_MIN:g}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
