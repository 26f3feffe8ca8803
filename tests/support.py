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
