"""The clock a power cap allows: one rule shared by the ASIC and GPU power models."""

from __future__ import annotations

import math

from asicsim.workloads.errors import Infeasible

__all__ = ["power_capped_clock_hz"]


def power_capped_clock_hz(name: str, tdp_w: float, fixed_w: float, joules_per_cycle: float, ceiling_hz: float,
                          fixed_what: str = "static + HBM + link power") -> float:
    """Highest clock (at most `ceiling_hz`) at which fixed power plus `joules_per_cycle` x clock fits `tdp_w`.

    InputError naming the spec's `tdp_w` when the clock-independent power alone already exceeds the cap.
    """
    if fixed_w >= tdp_w:
        raise Infeasible(name, "tdp_w", f"{fixed_what} {fixed_w:.1f} W alone exceeds the {tdp_w:g} W TDP by "
                                        f"{fixed_w - tdp_w:.1f} W")
    limit = (tdp_w - fixed_w) / joules_per_cycle if joules_per_cycle > 0 else math.inf
    return min(ceiling_hz, limit)
