"""`asicsim validate`: every shipped measurement predicted versus published, MAPE per group, targets.

Microbenchmark rows (operator level) and end-to-end serving rows; see asicsim.analysis.validate for the
targets `--check` enforces (the MoE groups are reported with MAPE, bias and worst row but have no target),
the rows listed as skipped, and the request count end-to-end rows run with.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asicsim.analysis.validate import (E2E_REQUESTS, check_targets, format_table, group_summary, moe_summary,
                                       rows_as_dicts, skipped_rows, validation_rows)
from asicsim.workloads.errors import InputError, install_hint

from ._common import add_output_flags, output_format, print_rows

__all__ = ["register", "run", "plot_validation", "PLOT_SUFFIXES"]

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def register(sub) -> None:
    """Add the `validate` subcommand."""
    p = sub.add_parser("validate", help="GPU model versus published measurements (MAPE per group)",
                       description=__doc__.splitlines()[0])
    add_output_flags(p, "print JSON: rows, groups, MoE summary, skipped rows, missed targets")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--plot", metavar="FILE.png", help="draw each row's signed error with the target bands")
    p.add_argument("--explain", metavar="ROW",
                   help="one end-to-end row (its number or words of its label, e.g. 'tp8 128/2048 h100'): its "
                        "step-time breakdown and what each switchable effect of the model contributes")
    p.add_argument("--requests", type=int, default=0,
                   help="requests per end-to-end row (default 0: the published count; static rows %d)" % E2E_REQUESTS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.requests < 0:
        raise InputError("--requests", "requests", f"must be >= 0 (0 = published count), got {args.requests}")
    if args.plot and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise InputError("--plot", "plot", f"must end in {', '.join(PLOT_SUFFIXES)}, got {args.plot!r}")
    if getattr(args, "explain", None) is not None:
        return _explain(args)
    rows = validation_rows(args.requests)
    skipped = skipped_rows()
    missed = check_targets(rows)
    fmt = output_format(args)
    if fmt in ("csv", "md"):
        print_rows(rows_as_dicts(rows), fmt)
    elif fmt == "json":
        print(json.dumps({"rows": rows_as_dicts(rows), "groups": group_summary(rows), "moe": moe_summary(rows),
                          "skipped": [r.__dict__ for r in skipped], "missed": missed}, indent=2))
    else:
        print(format_table(rows, skipped))
        print("targets: " + ("all met" if not missed else f"{len(missed)} missed"))
        for line in missed:
            print(f"  MISSED {line}")
    if args.plot:
        plot_validation(rows, args.plot)
    return 1 if (args.check and missed) else 0


def _explain(args: argparse.Namespace) -> int:
    from asicsim.analysis.explain import explain_row, format_explanation
    x = explain_row(args.explain)
    if args.json:
        print(json.dumps({"row": x.label, "group": x.group, "metric": x.metric, "published": x.published,
                          "predicted": x.predicted, "error": x.error, "breakdown": x.breakdown,
                          "effects": [e.__dict__ for e in x.effects]}, indent=2))
    else:
        print(format_explanation(x))
    return 0


def plot_validation(rows, path: str) -> None:
    """Signed error of every row (predicted / published - 1) as a bar, grouped as `validate` prints them, with the
    end-to-end target band (+-10%, worst row +-25%) shaded; bars past +-150% are clipped and labelled."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot", "matplotlib", f"not installed; {install_hint('plot')}") from None
    from asicsim.analysis.validate import E2E_MAPE_TARGET, E2E_WORST_TARGET, is_e2e_group

    shown = [r for r in rows if not r.excluded]
    groups = list(dict.fromkeys(r.group for r in shown))
    order = [r for g in groups for r in shown if r.group == g]
    clip = 150.0
    fig, ax = plt.subplots(figsize=(12.0, 1.6 + 0.19 * len(order)))
    ax.axvspan(-100 * E2E_WORST_TARGET, 100 * E2E_WORST_TARGET, color="tab:green", alpha=0.08,
               label=f"worst-row target +-{100 * E2E_WORST_TARGET:.0f}%")
    ax.axvspan(-100 * E2E_MAPE_TARGET, 100 * E2E_MAPE_TARGET, color="tab:green", alpha=0.18,
               label=f"MAPE target {100 * E2E_MAPE_TARGET:.0f}%")
    colors = plt.get_cmap("tab20")
    y = list(range(len(order)))[::-1]
    for i, group in enumerate(groups):
        idx = [k for k, r in enumerate(order) if r.group == group]
        values = [100 * order[k].error for k in idx]
        ax.barh([y[k] for k in idx], [max(-clip, min(clip, v)) for v in values], color=colors(i % 20),
                hatch="///" if i >= 20 else None, edgecolor="white" if i >= 20 else None,
                label=group + ("" if is_e2e_group(group) or group == "microbenchmark" else " (no target)"), height=0.7)
        for k, v in zip(idx, values):
            if abs(v) > clip:
                ax.annotate(f"{v:+.0f}%", (clip if v > 0 else -clip, y[k]), fontsize=6, va="center",
                            ha="right" if v > 0 else "left", color="white")
    ax.set_yticks(y, [f"{r.label} ({r.hardware})" for r in order], fontsize=6)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(-clip, clip)
    ax.set_xlabel("predicted / published - 1 (%)")
    ax.set_title(f"asicsim validate: signed error of {len(order)} published measurements")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise InputError("--plot", "path", f"cannot write {path}: {exc}") from None
    finally:
        plt.close(fig)
