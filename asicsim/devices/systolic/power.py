"""Power and energy of a systolic accelerator: static power, HBM and link traffic at the project's per-bit
energies, and the matrix/vector units charged per busy second at the power the TDP leaves them.

TDP is taken as the chip's power with every unit at full rate (matrix units busy, HBM and links streaming).
Static power is `static_fraction_of_tdp` of it and HBM / link energy per bit come from `asicsim/data/
area_model.toml` ([energy], shared with the ASIC and GPU models); what is left of the TDP is the compute
units' power when busy, dtype-independent (an fp8 op at twice the bf16 rate is busy half as long, so it
costs half the joules). A step never costs more than TDP x its duration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asicsim.core.area import area_constants
from asicsim.workloads.errors import InputError

from .spec import SystolicSpec

__all__ = ["static_power_w", "hbm_full_power_w", "link_full_power_w", "compute_power_w", "step_energy_j"]

_BITS = 8.0


def _energy() -> dict:
    return area_constants()["energy"]


def static_power_w(s: SystolicSpec) -> float:
    return s.tdp_w * _energy()["static_fraction_of_tdp"]


def hbm_full_power_w(s: SystolicSpec) -> float:
    """HBM power streaming at the achievable bandwidth."""
    return s.hbm_bandwidth_bytes_per_s * s.hbm_efficiency * _BITS * _energy()["hbm_pj_per_bit"] * 1e-12


def link_full_power_w(s: SystolicSpec) -> float:
    """Scale-up link power with every port sending and receiving."""
    return 2.0 * s.link_bandwidth_bytes_per_s * _BITS * _energy()["link_pj_per_bit"] * 1e-12


def compute_power_w(s: SystolicSpec) -> float:
    """Matrix + vector units' power when busy: the TDP less static, HBM and link power at full rate."""
    watts = s.tdp_w - static_power_w(s) - hbm_full_power_w(s) - link_full_power_w(s)
    if watts <= 0.0:
        raise InputError(s.name, "tdp_w", f"{s.tdp_w:g} W leaves no power for the compute units after static, "
                                          "HBM and link power at full rate")
    return watts


def step_energy_j(s: SystolicSpec, step: Any) -> Any:
    """Joules one chip spends in one engine step (a StepRecord, or a StepTable's columns: then an array)."""
    duration_s = np.maximum(step.end_at - step.start_at, 0.0)
    joules = (static_power_w(s) * duration_s + compute_power_w(s) * step.compute_busy_s
              + step.memory_bytes_per_chip * _BITS * _energy()["hbm_pj_per_bit"] * 1e-12
              + link_full_power_w(s) * step.link_busy_s)
    joules = np.minimum(joules, s.tdp_w * duration_s)
    return float(joules) if np.ndim(joules) == 0 else joules
