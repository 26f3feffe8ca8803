"""`asicsim run`: one workload on one system."""

from __future__ import annotations

from asicsim.core.runner import run_workload

from ._common import add_workload_flags, format_table, json_summary, print_json, spec_from_args

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("run", help="simulate one workload on one system")
    p.add_argument("--hw", required=True, help="hardware spec name (see `asicsim specs`) or path to a TOML file")
    add_workload_flags(p, chips_default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    result = run_workload(spec_from_args(args, args.hw))
    if args.json:
        print_json(json_summary(result.summary))
    else:
        print(format_table([result.summary]))
    return 0
