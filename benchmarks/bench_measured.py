"""The GPU model against operator measurements this project took on a real GPU; `--check` exits 1 when a group
misses its target.

The rows are benchmarks/measure_gpu.py's output stored under asicsim/data/calibration/measured/<hardware>/ with
the GPU, driver, CUDA and PyTorch versions and the date (asicsim.analysis.measured_gpu). Two model constants were
derived from them (the `fit` column): the H200's CUDA Graph launch cost and the GPUs' on-chip memory-path energy;
every other row is a holdout. Targets: `MEASURED_TARGETS` (holdout MAPE per group). Where the same cases were
measured again on another lease (`<hardware>/repeat/`), a second table shows how far they moved (no target).

    python benchmarks/bench_measured.py [--check] [--detail] [--hw h200]
"""

from __future__ import annotations

import argparse
import sys
import time

from asicsim.analysis import measured_gpu as mg
from asicsim.commands._output import report_targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a group misses its target")
    parser.add_argument("--detail", action="store_true", help="print every case, not only the groups")
    parser.add_argument("--hw", action="append", help="spec name (default: every GPU with measurements)")
    args = parser.parse_args(argv)
    known = mg.available_hardware()
    for name in args.hw or ():
        if name not in known:
            print(f"bench_measured: --hw: no measurements for {name!r}; measured: {', '.join(known)}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    comparisons = [c for hw in (args.hw or known) for c in mg.compare(hw)]
    print(mg.format_comparisons(comparisons, detail=args.detail))
    for hw in args.hw or known:
        env = mg.environment(hw)
        print(f"\n{hw}: {env['gpu']}, driver {env['driver']}, CUDA {env['cuda']}, PyTorch {env['torch']}, "
              f"measured {env['date']}")
    repeats = mg.repeatability_table(args.hw or known)
    if len(repeats):
        print("\nthe same cases measured again on another lease (repeat / stored per-call median; no target):")
        print(mg.format_repeatability(repeats))
        for hw in repeats["hardware"].unique():
            env = mg.environment(hw, mg.REPEAT)
            print(f"{hw} repeat: driver {env['driver']}, CUDA {env['cuda']}, PyTorch {env['torch']}, measured {env['date']}")
    print(f"on-chip memory path fitted from the sustained copy: "
          f"{', '.join(f'{hw} {mg.onchip_memory_path_pj_per_bit_fit(hw):.2f} pJ/bit' for hw in args.hw or known)}; "
          f"{time.perf_counter() - start:.1f} s")
    return report_targets(mg.check_targets(mg.summarize(comparisons)), args.check)


if __name__ == "__main__":
    sys.exit(main())
