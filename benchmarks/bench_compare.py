"""Wall time of `asicsim compare` with its defaults: a cold process (numba compiling) and warm ones (cache).

Usage: python benchmarks/bench_compare.py [--check] [--repeat N]
Targets (issue 15): cold (a fresh NUMBA_CACHE_DIR) under 5 s with the one-line compile notice on stderr (at a
terminal: the cold run's stderr is a pseudo-terminal here), warm under 0.5 s with no notice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_WARM_S = 0.5
TARGET_COLD_S = 5.0


def timed_compare(env: dict) -> tuple[float, str]:
    """(wall s, stderr) of one `asicsim compare --json`, stderr on a pseudo-terminal (where the notice shows)."""
    import pty

    main_fd, child_fd = pty.openpty()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "asicsim", "compare", "--json"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=child_fd)
    wall = time.perf_counter() - start
    os.close(child_fd)
    err = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(main_fd)
    return wall, err.decode(errors="replace")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)  # a fresh numba cache: the first run compiles
        cold, cold_err = timed_compare(env)
        warm_runs = [timed_compare(env) for _ in range(args.repeat)]
        warm = [w for w, _ in warm_runs]
        notice_cold = "compiling numba kernels" in cold_err
        notice_warm = any("compiling numba kernels" in e for _, e in warm_runs)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import asicsim.cli"], check=True)
    startup = time.perf_counter() - start
    med = statistics.median(warm)
    ok = med < TARGET_WARM_S and cold < TARGET_COLD_S and notice_cold and not notice_warm
    print(f"{'measure':40} {'seconds':>8}")
    print(f"{'cold (fresh numba cache, compiles)':40} {cold:8.2f}   target < {TARGET_COLD_S:.1f}  "
          f"{'ok' if cold < TARGET_COLD_S else 'MISSED'}")
    print(f"{'compile notice: cold / warm':40} {'yes' if notice_cold else 'NO':>8} / {'YES' if notice_warm else 'no'}")
    print(f"{'compile share (cold - warm median)':40} {cold - med:8.2f}")
    print(f"{'warm median of ' + str(args.repeat):40} {med:8.2f}   target < {TARGET_WARM_S:.1f}  {'ok' if ok else 'MISSED'}")
    print(f"{'python start-up + import asicsim.cli':40} {startup:8.2f}")
    print(f"(cpus: {os.cpu_count()})")
    return 1 if (args.check and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
