"""Operator-level accuracy of the GPU models on measured tables they were not fitted to; `--check` exits 1
when a target is missed.

The tables are aiconfigurator-core's TensorRT-LLM operator measurements (asicsim/data/calibration/
aiconfigurator/, extracted by benchmarks/extract_aiconfigurator.py). Constants fitted by
benchmarks/calibrate_operators.py saw only the `calibration` rows; the `holdout` rows are the test.
Target: holdout MAPE of every table at most `OPERATOR_TABLE_TARGETS` (asicsim.analysis.operator_tables).
"""

from __future__ import annotations

import argparse
import sys
import time

from asicsim.analysis import operator_tables as ot
from asicsim.commands._output import report_targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a holdout target is missed")
    parser.add_argument("--hw", action="append", help="spec name (default: every GPU with tables)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    errors = [e for hw in (args.hw or ot.available_hardware()) for e in ot.table_errors(hw)]
    print(ot.format_operator_errors(errors))
    prov = ot.provenance()
    print(f"\ntables: {prov['package']} {prov['package_version']} ({prov['framework']}); "
          f"{time.perf_counter() - start:.1f} s")
    return report_targets(ot.check_operator_targets(errors), args.check)


if __name__ == "__main__":
    sys.exit(main())
