"""Wall time of `asicsim compare` with its defaults: a cold process (numba compiling) and warm ones (cache).

Usage: python benchmarks/bench_compare.py [--check] [--repeat N]
Target: warm wall time under 2 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_WARM_S = 2.0


def timed_compare(env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "asicsim", "compare", "--json"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)  # a fresh numba cache: the first run compiles
        cold = timed_compare(env)
        warm = [timed_compare(env) for _ in range(args.repeat)]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import asicsim.cli"], check=True)
    startup = time.perf_counter() - start
    med = statistics.median(warm)
    ok = med < TARGET_WARM_S
    print(f"{'measure':40} {'seconds':>8}")
    print(f"{'cold (fresh numba cache, compiles)':40} {cold:8.2f}")
    print(f"{'compile share (cold - warm median)':40} {cold - med:8.2f}")
    print(f"{'warm median of ' + str(args.repeat):40} {med:8.2f}   target < {TARGET_WARM_S:.1f}  {'ok' if ok else 'MISSED'}")
    print(f"{'python start-up + import asicsim.cli':40} {startup:8.2f}")
    print(f"(cpus: {os.cpu_count()})")
    return 1 if (args.check and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
