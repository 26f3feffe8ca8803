"""End-to-end validation: every end-to-end row (e2e_calibration.csv, validation.csv), predicted vs published.

No constant in the model is fitted to these rows; they are a check. Usage: python benchmarks/bench_e2e.py
[--check] [--requests N] (default 0: the published request count of each in-flight row).
Targets (issue 4, e2e_calibration.csv rows): MAPE <= 15%, no row worse than 30%.
The same rows, with the microbenchmarks, are `asicsim validate`.
"""

from __future__ import annotations

import argparse
import sys

from asicsim.analysis.validate import E2E_GROUP, E2E_REQUESTS, check_targets, e2e_rows, format_table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--requests", type=int, default=0, help=f"0: published counts (static rows {E2E_REQUESTS})")
    args = ap.parse_args()
    rows = e2e_rows(args.requests)
    print(format_table(rows))
    missed = [line for line in check_targets(r for r in rows if r.group == E2E_GROUP)]
    for line in missed:
        print(f"MISSED {line}")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
