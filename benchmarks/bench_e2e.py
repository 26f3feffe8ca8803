"""End-to-end validation: every row of asicsim/data/e2e_calibration.csv, predicted versus published.

No constant in the model is fitted to these rows; they are a check. Usage: python benchmarks/bench_e2e.py
[--check] [--requests N]. Target (issue 2): the TP8 ISL 2048 / OSL 128 TensorRT-LLM v0.14 row within 25%.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources

import pandas as pd

from asicsim.core.runner import RunSpec, run_workload

TARGET = {("TensorRT-LLM v0.14 perf overview", 8, 2048, 128): 0.25}
HW = {"h100-sxm": "h100-sxm"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--requests", type=int, default=512)
    args = ap.parse_args()
    table = pd.read_csv(resources.files("asicsim") / "data" / "e2e_calibration.csv")
    missed = []
    print(f"{'source':34} {'tp':>2} {'isl':>5} {'osl':>5} {'published':>10} {'predicted':>10} {'error':>7}")
    errors = []
    for row in table.itertuples():
        spec = RunSpec(hardware=HW[row.hardware], chips=int(row.tp), model=row.model, dtype=row.dtype,
                       tp=int(row.tp), isl=int(row.isl), osl=int(row.osl), requests=args.requests)
        predicted = run_workload(spec).summary[row.metric]
        err = predicted / row.value - 1.0
        errors.append(abs(err))
        key = (row.source, int(row.tp), int(row.isl), int(row.osl))
        flag = ""
        if key in TARGET:
            ok = abs(err) <= TARGET[key]
            flag = f"  target +-{TARGET[key]:.0%} {'ok' if ok else 'MISSED'}"
            if not ok:
                missed.append(key)
        print(f"{row.source:34} {row.tp:>2} {row.isl:>5} {row.osl:>5} {row.value:>10,.0f} {predicted:>10,.0f} "
              f"{err:>+7.1%}{flag}")
    print(f"MAPE over {len(errors)} rows: {sum(errors) / len(errors):.1%}; worst {max(errors):.1%}")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
