"""Thousands of generated bad and odd CLI inputs (tests/fuzz_cases.py): flags, spec TOMLs, model configs, trace
CSVs and sweep studies. Prints how each kind ended; `--check` exits 1 if any case broke the contract (exit 0, or
exit 2 with one line naming the file or flag and field; never a traceback, never a hang).

Usage: python benchmarks/fuzz_cli.py [--cases 3000] [--seed 0] [--check]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fuzz_cases import assert_contract, check, model_files, run_flags, spec_files, sweep_files, trace_files  # noqa: E402

KINDS = {"flags": run_flags(), "spec TOML": spec_files(), "model config": model_files(), "trace CSV": trace_files(),
         "sweep study": sweep_files()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=3000, help="cases in all, split evenly over the kinds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="exit 1 if any case broke the contract")
    args = p.parse_args(argv)
    counts: dict[str, collections.Counter] = {k: collections.Counter() for k in KINDS}
    broken: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, strategy in KINDS.items():
            n = [0]

            @settings(max_examples=max(args.cases // len(KINDS), 1), deadline=None, database=None, derandomize=False,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy, salt=st.just(args.seed))
            def run(case, salt):
                n[0] += 1
                code, err = check(case, Path(tmp) / f"{kind.replace(' ', '_')}{n[0]}")
                try:
                    assert_contract(case, code, err)
                except AssertionError as exc:
                    broken.append(f"{kind}: {exc}")
                counts[kind][f"exit {code}"] += 1

            run()
    wall = time.perf_counter() - started
    print(f"{'kind':14} {'cases':>6} {'exit 0':>7} {'exit 2':>7} {'other':>6}")
    for kind, c in counts.items():
        total = sum(c.values())
        print(f"{kind:14} {total:6d} {c['exit 0']:7d} {c['exit 2']:7d} {total - c['exit 0'] - c['exit 2']:6d}")
    print(f"contract broken: {len(broken)}; wall {wall:.1f} s")
    for line in broken[:20]:
        print("  " + line[:300])
    return 1 if args.check and broken else 0


if __name__ == "__main__":
    sys.exit(main())
