"""`asicsim validate --explain ROW`: what moved one end-to-end row's prediction.

The row runs as `asicsim validate` runs it (`validate.row_run_spec`, the harness presets); its step-time
breakdown is printed next to each switchable effect of the device (`Device.effects`, e.g. the GPU model's
GpuOptions): the row is run again with that one effect flipped, and the change in the predicted figure is
what the effect contributes. Effects interact, so the contributions need not add up to the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.analysis.breakdown import format_breakdown, step_breakdown
from asicsim.analysis.validate import _e2e_table, _table_spec, predicted_metric, row_label, skipped_rows
from asicsim.core.runner import RunSpec, run_workload
from asicsim.workloads.errors import InputError

__all__ = ["EffectContribution", "RowExplanation", "e2e_labels", "find_row", "explain_row", "format_explanation"]


@dataclass(frozen=True)
class EffectContribution:
    """One effect flipped: its state in the row's run and the prediction without (or with) it."""

    name: str
    on: bool
    flipped_predicted: float
    change: float  # (row's prediction - flipped prediction) / published: the error this effect accounts for


@dataclass(frozen=True)
class RowExplanation:
    label: str
    group: str
    hardware: str
    metric: str
    published: float
    predicted: float
    breakdown: dict
    breakdown_text: str
    effects: tuple[EffectContribution, ...]

    @property
    def error(self) -> float:
        return self.predicted / self.published - 1.0


def _label(row) -> str:
    return f"{row_label(row)} {row.hardware}"


def e2e_labels() -> list[str]:
    """Every end-to-end row's label, numbered from 1 in `asicsim validate` order."""
    return [_label(r) for r in _e2e_table().itertuples(index=False)]


def _names(words: list[str], text: str) -> bool:
    """Whether every word begins some word of `text` (punctuation around words ignored)."""
    tokens = [t.strip("()[],;:'\"") for t in text.lower().split()]
    return all(any(t.startswith(w) for t in tokens) for w in words)


def find_row(query: str):
    """The end-to-end row `query` names: its number (1-based) or words each of which begins a word of one row's
    label and group (case-insensitive: 'h100' names h100-sxm, 'b200' never gb200). InputError (flag --explain)
    when none or several match."""
    table = list(_e2e_table().itertuples(index=False))
    text = str(query).strip()
    if text.isdigit():
        index = int(text)
        if not 1 <= index <= len(table):
            raise InputError("--explain", "row", f"row number {index} is out of range 1-{len(table)}")
        return table[index - 1]
    words = text.lower().split()
    matches = [r for r in table if _names(words, f"{_label(r)} {r.group}")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        skipped = [r for r in skipped_rows() if _names(words, f"{r.label} {r.hardware} {r.group}")]
        if skipped:
            raise InputError("--explain", "row", "; ".join(f"{r.label} {r.hardware} [{r.group}] is skipped, never run: "
                                                           f"{r.reason}" for r in skipped))
    listing = "; ".join(f"{i + 1}: {_label(r)} [{r.group}]" for i, r in enumerate(table)
                        if not matches or r in matches)
    problem = "matches no end-to-end row" if not matches else f"matches {len(matches)} rows"
    raise InputError("--explain", "row", f"{text!r} {problem}; give a number or more words: {listing}")


def _spec(row, effects=()) -> RunSpec:
    return _table_spec(row, 0, effects)


def explain_row(query: str, progress=None) -> RowExplanation:
    """Run the row, then once per switchable effect with that effect flipped."""
    row = find_row(query)
    base = run_workload(_spec(row))
    metric = str(row.metric)
    predicted = predicted_metric(base, metric)
    device = base.description.make_device()
    contributions = []
    for name, on in sorted(device.effects.items()):
        if progress is not None:
            progress(name)
        flipped = predicted_metric(run_workload(_spec(row, ((name, not on),))), metric)
        contributions.append(EffectContribution(name, bool(on), flipped, (predicted - flipped) / float(row.value)))
    return RowExplanation(_label(row), str(row.group), str(row.hardware), metric, float(row.value), predicted,
                          step_breakdown(base), format_breakdown(base), tuple(contributions))


def format_explanation(x: RowExplanation) -> str:
    lines = [f"{x.label}  [{x.group}]",
             f"  {x.metric}: published {x.published:,.1f}, predicted {x.predicted:,.1f} ({x.error:+.1%})", "",
             x.breakdown_text, "",
             "effects (each flipped alone; change = share of the published figure the effect moves the prediction by)",
             f"  {'effect':26} {'state':5} {'flipped':>12} {'change':>8}"]
    for e in x.effects:
        lines.append(f"  {e.name:26} {'on' if e.on else 'off':5} {e.flipped_predicted:>12,.1f} {e.change:>+8.1%}")
    return "\n".join(lines)
