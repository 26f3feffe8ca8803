"""Helpers shared by test modules (not a test module itself)."""

from __future__ import annotations

import pytest


def close_json(a, b, rel: float) -> bool:
    """JSON values equal, numbers to `rel` (relative)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close_json(a[k], b[k], rel) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=rel, abs=1e-300)
    return a == b


def close_summary(a: dict, b: dict, rel: float) -> bool:
    """Run summaries equal to `rel` (`close_json`), except the vLLM-named latencies (keys ending `_ms`): inter-token
    gaps and standard deviations are differences of step times, so they are held to `rel` of the run's duration."""
    a, b = dict(a), dict(b)
    slack_ms = 4 * rel * max(a.get("duration", 0.0), b.get("duration", 0.0)) * 1e3
    for key in [k for k in a if k.endswith("_ms")]:
        if key not in b or abs(a.pop(key) - b.pop(key)) > slack_ms:
            return False
    return close_json(a, b, rel)
