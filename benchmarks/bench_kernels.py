"""Speed of every registered kernel on its representative call; `--check` exits 1 when a target is missed.

Kernels and calls come from `asicsim.kernels.registry` (`entry.example()`), so a newly registered kernel
shows up here without editing this file. Per kernel: calls/s over at least MIN_SECONDS of repeated calls
(first call excluded) and the first call's seconds: numba's compile, or its load from the on-disk cache
when one exists; `--cold` points numba at an empty cache directory so first calls really compile. Kernels
run in registry order, and a first call also compiles callees not compiled yet.

Targets (calls/s, generous: 10x or more below what the 2-core CI machine reaches while shared, so a miss
means a real slowdown, not noise). A scalar or small-array kernel costs a few microseconds, mostly numba's
dispatch: DEFAULT_TARGET_CALLS_PER_S = 50,000 (under 20 us a call). Kernels that walk folds or search
tilings have their own targets in TARGET_CALLS_PER_S: multi_array_gemm_cycles's 1,000 is
bench_gemm.py's "one 64 x 8192 x 3584 evaluation under 1 ms"; shared_gemm_cycles searches every split of its
GEMM over 16 arrays with a tile search each (~20,000 calls/s here), so 2,000; gemm_cycles_batch's call is 1,000
GEMMs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

__all__ = ["main", "DEFAULT_TARGET_CALLS_PER_S", "TARGET_CALLS_PER_S"]

MIN_SECONDS = 0.2
DEFAULT_TARGET_CALLS_PER_S = 50_000.0
TARGET_CALLS_PER_S = {
    "asicsim.kernels.systolic:gemm_cycles": 10_000.0,
    "asicsim.kernels.systolic:tiled_gemm_cycles": 5_000.0,
    "asicsim.kernels.systolic:multi_array_gemm_cycles": 1_000.0,
    "asicsim.kernels.systolic:shared_gemm_cycles": 2_000.0,
    "asicsim.kernels.systolic:gemm_cycles_batch": 20.0,
}


def time_entry(kernel, args) -> tuple[float, float]:
    """(first call seconds, calls/s of the calls after it, over at least MIN_SECONDS and 3 calls)."""
    t0 = time.perf_counter()
    kernel(*args)
    first_s = time.perf_counter() - t0
    calls = 0
    t0 = time.perf_counter()
    while True:
        kernel(*args)
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= MIN_SECONDS and calls >= 3:
            return first_s, calls / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a kernel is slower than its target")
    p.add_argument("--cold", action="store_true", help="compile from scratch (empty numba cache directory)")
    p.add_argument("--match", default="", help="only kernels whose 'module:function' contains this text")
    args = p.parse_args(argv)
    cold_dir = tempfile.TemporaryDirectory(prefix="numba-cold-") if args.cold else None
    if cold_dir is not None:
        os.environ["NUMBA_CACHE_DIR"] = cold_dir.name  # read by numba when it is first imported, just below
    import numba

    from asicsim.kernels import registry

    if numba.config.DISABLE_JIT:
        print("NUMBA_DISABLE_JIT is set: these are plain-Python timings and the targets do not apply")
    entries = [e for e in registry.entries() if args.match in e.kernel]
    unknown = sorted(set(TARGET_CALLS_PER_S) - {e.kernel for e in registry.entries()})
    if unknown:
        print(f"targets for kernels that are not registered: {', '.join(unknown)}")
        return 2
    print(f"numba {numba.__version__}, {'cold: empty cache' if args.cold else 'on-disk cache as found'}")
    header = f"{'kernel':38} {'calls/s':>11} {'first call':>11} {'target':>8}   unit"
    print(header)
    print("-" * 100)
    missed = []
    for entry in entries:
        first_s, rate = time_entry(registry.load_kernel(entry), entry.example())
        target = TARGET_CALLS_PER_S.get(entry.kernel, DEFAULT_TARGET_CALLS_PER_S)
        flag = "" if rate >= target else "  MISSED"
        if flag:
            missed.append(entry.name)
        name = entry.kernel.removeprefix("asicsim.kernels.")
        print(f"{name:38} {rate:11,.0f} {first_s:9.3f} s {target:8,.0f}   {entry.unit}{flag}")
    if cold_dir is not None:
        cold_dir.cleanup()
    if missed:
        print("slower than target: " + ", ".join(missed))
    if args.check and numba.config.DISABLE_JIT:
        print("--check needs the JIT (unset NUMBA_DISABLE_JIT)")
        return 2
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
