"""timeline.json is a valid Chrome/Perfetto trace: complete events nest on every track, unit slices lie in
their step, steps agree with steps.parquet, the drawn chip is named, GPU compute is labelled as SMs."""

from __future__ import annotations

import json
from collections import defaultdict

import pandas as pd
import pytest

from asicsim.cli import main

EPS_US = 1e-6


def _run(tmp_path, hw: str, *extra: str) -> tuple[dict, pd.DataFrame]:
    out = tmp_path / hw
    assert main(["run", "--hw", hw, "--chips", "8", "--requests", "64", "--isl", "512", "--osl", "8", "--quiet",
                 "--out", str(out), "--timeline-steps", "12", *extra]) == 0
    steps = pd.read_parquet(out / "steps.parquet")
    return json.loads((out / "timeline.json").read_text()), steps


def _check_nesting(events: list[dict]) -> None:
    """On every (pid, tid) track, complete events are disjoint or nested (Chrome's rule for "X" events)."""
    tracks = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            assert e["dur"] >= 0 and e["ts"] >= 0
            tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for key, spans in tracks.items():
        spans.sort()
        stack: list[float] = []
        for start, end in spans:
            while stack and stack[-1] <= start + EPS_US:
                stack.pop()
            assert not stack or end <= stack[-1] + EPS_US, f"partial overlap on track {key} at {start} us"
            stack.append(end)


@pytest.mark.parametrize("hw", ["sohu", "h100-sxm"])
def test_timeline_nests_and_agrees_with_the_steps(tmp_path, hw):
    trace, steps = _run(tmp_path, hw)
    events = trace["traceEvents"]
    _check_nesting(events)
    step_events = {(e["pid"], int(e["name"].split()[1])): e for e in events if e["ph"] == "X" and e["tid"] == 0}
    assert step_events and trace["otherData"]["traced_steps"] == len(step_events)
    by_step = steps.set_index(["replica", "step"])
    for (rep, idx), e in step_events.items():
        row = by_step.loc[(rep, idx)]
        assert e["ts"] == pytest.approx(row.start_at * 1e6) and e["dur"] == pytest.approx((row.end_at - row.start_at) * 1e6)
    slices = [e for e in events if e["ph"] == "X" and e["tid"] != 0]
    assert slices
    spans = sorted((e["pid"], e["ts"], e["ts"] + e["dur"]) for e in step_events.values())
    for e in slices:  # every unit slice inside the step it belongs to
        assert any(p == e["pid"] and a - EPS_US <= e["ts"] and e["ts"] + e["dur"] <= b + EPS_US for p, a, b in spans)
    names = [e["args"]["name"] for e in events if e["ph"] == "M"]
    assert any("chip 0 of 8" in n for n in names)
    assert any(("SMs" if hw == "h100-sxm" else "systolic arrays") in n for n in names)
    assert not any("arrays" in n for n in names) or hw == "sohu"


def test_timeline_stays_small_by_default_and_can_draw_the_whole_run(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--hw", "sohu", "--chips", "8", "--requests", "16", "--isl", "256", "--osl", "4",
                 "--quiet", "--out", str(out)]) == 0
    assert (out / "timeline.json").stat().st_size < 20e6
    full = tmp_path / "all"
    assert main(["run", "--hw", "sohu", "--chips", "8", "--requests", "16", "--isl", "256", "--osl", "4",
                 "--quiet", "--out", str(full), "--timeline-steps", "all"]) == 0
    trace = json.loads((full / "timeline.json").read_text())
    assert trace["otherData"]["traced_steps"] == trace["otherData"]["steps"]
    _check_nesting(trace["traceEvents"])
