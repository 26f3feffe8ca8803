"""Output formats every command shares (`--format table|csv|md|json`): light, so a command that prints rows
imports nothing of the run machinery."""

from __future__ import annotations

import argparse
import json
import math

__all__ = ["FORMATS", "add_output_flags", "output_format", "print_rows", "print_json", "report_targets"]

FORMATS = ("table", "csv", "md", "json")


def add_output_flags(p: argparse.ArgumentParser, json_help: str = "print JSON") -> None:
    """`--format table|csv|md|json` and `--json` (the same as --format json)."""
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format: table (default), csv, md (a markdown table) or json")
    p.add_argument("--json", action="store_true", help=json_help + "; same as --format json")


def output_format(args: argparse.Namespace) -> str:
    """The format asked for: json when --json, else --format (default table)."""
    return "json" if getattr(args, "json", False) else (getattr(args, "format", None) or "table")


def _flat(value) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=float)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return "" if value is None else str(value)


def print_rows(rows: list[dict], fmt: str, columns: list[str] | None = None) -> None:
    """Rows of flat records as CSV (every key, nested values as JSON) or a markdown table (`columns`, default every
    key); for json, the rows as they are."""
    if fmt == "json":
        print_json(rows)
        return
    keys = columns or list(dict.fromkeys(k for r in rows for k in r))
    if fmt == "csv":
        import csv
        import sys

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows([[_flat(r.get(k)) for k in keys] for r in rows])
        return
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(_flat(r.get(k)).replace("|", "\\|") for k in keys) + " |")


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=float))


def report_targets(missed: list[str], check: bool) -> int:
    """Print each missed target (or that all are met); the benchmark scripts' exit code: 1 when `check` and any
    target is missed, else 0."""
    for line in missed:
        print(f"  MISSED {line}")
    if not missed:
        print("targets: all met")
    return 1 if (check and missed) else 0
