"""Energy and power of an ASIC spec: energy per MAC by dtype, per SRAM / HBM byte, per link bit, instruction
overhead, static power; full-load power and the clock a TDP cap allows; energy of one engine step.

Power = (energy per clock cycle x clock) + clock-independent HBM and link power + static power (a share of
TDP). Per cycle: every busy PE does its MACs; each array moves (rows + 2 cols) operand words through SRAM
(inputs in, outputs out, next weights in: docs/sohu-assumptions.md section 2); vector lanes do one op; and
instructions issue: a fixed-function array takes one command per weight tile (1 / rows per cycle), a
programmable chip's cores issue one instruction per sub-core per cycle (GPU-like). Constants:
`asicsim/data/area_model.toml` [energy]; the model: docs/area-model.md.

Boost clock (power-managed, as GPUs do): `clock_hz` is the base clock, at which every unit at full rate fits
the TDP; an op that keeps fewer PEs or lanes busy may run faster, up to `max_clock_hz`. An op's dynamic
energy E (its MACs, their SRAM traffic and instruction issue, and its vector-lane operations, charged as
`step_energy_breakdown_j` charges them) does not depend on the clock, so over its `cycles` it draws E x f /
cycles; with HBM and links at full rate (`clock_independent_power_w`) the TDP allows
f = (TDP - static - HBM - links) x cycles / E, clamped to [clock_hz, max_clock_hz] (`op_clock_hz`). The
average power of any sequence of such ops therefore stays within TDP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from asicsim.core.area import area_constants, node_scale
from asicsim.core.device import MATMUL_DTYPES
from asicsim.core.power_cap import power_capped_clock_hz
from asicsim.workloads.errors import InputError

from .area import programmable_cores
from .spec import AsicSpec

__all__ = ["Activity", "FULL_LOAD", "mac_energy_j", "instructions_per_cycle", "energy_per_cycle_j",
           "clock_independent_power_w", "static_power_w", "power_w", "capped_clock_hz", "step_energy_j",
           "step_energy_breakdown_j", "mac_charge_j", "lane_op_j", "elementwise_flop_j", "boost_budget_w",
           "op_clock_hz", "vector_clock_hz"]


@dataclass(frozen=True)
class Activity:
    """Share of each unit's peak in use: arrays (share of cycles busy), HBM and links (share of peak
    bandwidth, links both directions), vector unit (share of cycles busy)."""

    array: float = 1.0
    hbm: float = 1.0
    link: float = 1.0
    vector: float = 1.0


FULL_LOAD = Activity()


def _energy() -> dict[str, float]:
    return area_constants()["energy"]


def _spec(spec_or_device: Any) -> AsicSpec:
    return getattr(spec_or_device, "spec", spec_or_device)


def mac_energy_j(dtype: str, node_nm: float) -> float:
    """Energy of one MAC in `dtype` at a node (fp16 = bf16; fp8 = 0.5 x bf16; fp4 = 0.25 x bf16)."""
    e = _energy()
    # integer MACs: the float format of their width's ratio (assumed; docs/accelerators.md)
    ratio = {"bf16": 1.0, "fp16": 1.0, "fp8": e["fp8_mac_ratio"], "fp4": e["fp4_mac_ratio"],
             "int8": e["fp8_mac_ratio"], "int4": e["fp4_mac_ratio"]}
    if dtype not in ratio:
        raise InputError("energy", "dtype", f"no MAC energy for {dtype!r}; known: {sorted(ratio)}")
    return e["bf16_mac_pj_n5"] * 1e-12 * ratio[dtype] * node_scale(node_nm).logic_energy


def _array_dtype(spec: AsicSpec, dtype: str) -> str:
    """The datapath `dtype` actually runs on (one the PEs lack is widened: fp4 -> fp8, int4 -> int8 -> bf16)."""
    return spec.array_dtype(dtype)


def _native_dtypes(spec: AsicSpec) -> list[str]:
    """The datapaths the PEs have (fp16 is bf16's)."""
    return [d for d in MATMUL_DTYPES if d != "fp16" and spec.array_dtype(d) == d]


def _pe_cycle_j(spec: AsicSpec, dtype: str | None) -> float:
    """Energy of one busy PE cycle; dtype None = the most power-hungry dtype the PE supports."""
    if dtype is None:
        dtypes = _native_dtypes(spec)
        return max(_pe_cycle_j(spec, d) for d in dtypes)
    d = _array_dtype(spec, dtype)
    return spec.macs_per_cycle(d) / spec.pe_count * mac_energy_j(d, spec.process_node_nm)


def _sram_bytes_per_array_cycle(spec: AsicSpec) -> float:
    return (spec.array_rows + 2 * spec.array_cols) * _energy()["array_operand_bytes"]


def instructions_per_cycle(spec: AsicSpec) -> float:
    """Instructions (or array commands) issued per clock cycle when the arrays are busy."""
    cores = programmable_cores(spec)
    if cores:
        return cores * area_constants()["programmable_core"]["issue_slots"]
    return spec.array_count * _energy()["fixed_function_commands_per_tile"] / spec.array_rows


def energy_per_cycle_j(spec_or_device: Any, activity: Activity = FULL_LOAD, dtype: str | None = None) -> float:
    """Clock-proportional energy per cycle: PEs, SRAM operand traffic, vector lanes, instruction issue."""
    s = _spec(spec_or_device)
    e = _energy()
    ns = node_scale(s.process_node_nm, s.name)
    arrays = s.pe_count * _pe_cycle_j(s, dtype)
    sram = s.array_count * _sram_bytes_per_array_cycle(s) * 8 * e["sram_pj_per_bit"] * 1e-12
    instr = instructions_per_cycle(s) * e["instruction_pj"] * 1e-12
    vector = s.vector_lanes * e["vector_lane_op_pj_n5"] * 1e-12 * ns.logic_energy
    return activity.array * (arrays + sram + instr) + activity.vector * vector


def static_power_w(spec_or_device: Any) -> float:
    """Leakage, clock tree and control: a fixed share of TDP (assumed 10%, docs/sohu-assumptions.md)."""
    return _energy()["static_fraction_of_tdp"] * _spec(spec_or_device).tdp_w


def clock_independent_power_w(spec_or_device: Any, activity: Activity = FULL_LOAD) -> float:
    """Static power plus HBM and link traffic power (their clocks are their own)."""
    s = _spec(spec_or_device)
    e = _energy()
    hbm = activity.hbm * s.hbm_bandwidth_bytes_per_s * 8 * e["hbm_pj_per_bit"] * 1e-12
    link = activity.link * 2 * s.link_bandwidth_bytes_per_s * 8 * e["link_pj_per_bit"] * 1e-12
    return static_power_w(s) + hbm + link


def power_w(spec_or_device: Any, activity: Activity = FULL_LOAD, dtype: str | None = None,
            clock_hz: float | None = None) -> float:
    """Chip power at `activity` (default: every unit at full rate) and clock (default: the spec's)."""
    s = _spec(spec_or_device)
    clock = s.clock_hz if clock_hz is None else clock_hz
    return clock_independent_power_w(s, activity) + energy_per_cycle_j(s, activity, dtype) * clock


def capped_clock_hz(spec_or_device: Any, activity: Activity = FULL_LOAD, dtype: str | None = None,
                    grid: bool = False) -> float:
    """The spec's clock, lowered until power at `activity` is within TDP (`grid`: floored to 50 MHz).

    InputError when even a stopped clock exceeds TDP (static + HBM + links alone).
    """
    s = _spec(spec_or_device)
    limit = power_capped_clock_hz(s.name, s.tdp_w, clock_independent_power_w(s, activity),
                                  energy_per_cycle_j(s, activity, dtype), math.inf)
    if grid:
        step = area_constants()["die"]["clock_grid_hz"]
        limit = math.floor(limit / step) * step
    return min(s.clock_hz, limit)


def mac_charge_j(spec_or_device: Any, dtype: str | None = None) -> float:
    """Joules `step_energy_breakdown_j` charges per MAC in `dtype` (the MAC, its SRAM operand traffic and its
    share of instruction issue); dtype None = the most expensive dtype the PE supports."""
    s = _spec(spec_or_device)
    if dtype is None:
        dtypes = _native_dtypes(s)
        return max(mac_charge_j(s, d) for d in dtypes)
    d = _array_dtype(s, dtype)
    return energy_per_cycle_j(s, Activity(array=1.0, vector=0.0), d) / s.macs_per_cycle(d)


def lane_op_j(spec_or_device: Any) -> float:
    """Joules of one vector-lane operation."""
    s = _spec(spec_or_device)
    return _energy()["vector_lane_op_pj_n5"] * 1e-12 * node_scale(s.process_node_nm, s.name).logic_energy


def elementwise_flop_j(spec_or_device: Any) -> float:
    """Joules `step_energy_breakdown_j` charges per elementwise FLOP: one lane operation plus, as it counts the
    graph's elementwise FLOPs as MACs too, half a MAC at the most expensive dtype."""
    return lane_op_j(spec_or_device) + 0.5 * mac_charge_j(spec_or_device, None)


def boost_budget_w(spec_or_device: Any) -> float:
    """Watts left for clocked units with HBM and links at full rate: TDP - static - HBM - links."""
    s = _spec(spec_or_device)
    return s.tdp_w - clock_independent_power_w(s, FULL_LOAD)


def op_clock_hz(spec_or_device: Any, cycles: float, dynamic_j: float, budget_w: float | None = None) -> float:
    """The clock an op of `cycles` cycles and `dynamic_j` joules of clocked energy may run at: the one that
    fits its dynamic power in `boost_budget_w`, clamped to [clock_hz, max_clock_hz] (module docstring)."""
    s = _spec(spec_or_device)
    top = s.max_clock_hz
    if top <= s.clock_hz:
        return s.clock_hz
    if dynamic_j <= 0.0:
        return top
    budget = boost_budget_w(s) if budget_w is None else budget_w
    return min(top, max(s.clock_hz, budget * cycles / dynamic_j))


def vector_clock_hz(spec_or_device: Any) -> float:
    """Clock of a vector op with every lane busy (the clock `step_energy_breakdown_j` charges `other_s` at)."""
    s = _spec(spec_or_device)
    if s.max_clock_hz <= s.clock_hz:
        return s.clock_hz
    return _boosted_vector_clock_hz(s)


@lru_cache(maxsize=256)
def _boosted_vector_clock_hz(s: AsicSpec) -> float:
    return op_clock_hz(s, 1.0, s.vector_lanes * elementwise_flop_j(s))


def step_energy_breakdown_j(spec_or_device: Any, step: Any, dtype: str) -> dict[str, float]:
    """Joules one chip spends in one engine step (a `StepRecord`; or arrays, every step's), by consumer.

    MACs = flops / 2 (the graph's elementwise FLOPs are charged as MACs too: a small overcount); SRAM operand
    traffic per busy PE cycle; HBM bytes = the op bytes that actually went to HBM (at most the memory unit's
    busy time x achievable bandwidth); link bits = link busy time x bandwidth, both directions; vector ops =
    `other_s` x lanes x `vector_clock_hz` (the base clock without boost); static power over the step's duration.
    """
    s = _spec(spec_or_device)
    e = _energy()
    d = _array_dtype(s, dtype)
    macs = step.flops_per_chip / 2.0
    pe_cycles = macs / (s.macs_per_cycle(d) / s.pe_count)
    sram_bytes = pe_cycles * _sram_bytes_per_array_cycle(s) / (s.array_rows * s.array_cols)
    hbm_bytes = np.minimum(step.memory_bytes_per_chip, step.memory_busy_s * s.effective_hbm_bandwidth_bytes_per_s)
    link_bytes = step.link_busy_s * 2 * s.link_bandwidth_bytes_per_s
    parts = {
        "mac_j": macs * mac_energy_j(d, s.process_node_nm),
        "sram_j": sram_bytes * 8 * e["sram_pj_per_bit"] * 1e-12,
        "instruction_j": pe_cycles / s.pe_count * instructions_per_cycle(s) * e["instruction_pj"] * 1e-12,
        "vector_j": step.other_s * vector_clock_hz(s) * s.vector_lanes * lane_op_j(s),
        "hbm_j": hbm_bytes * 8 * e["hbm_pj_per_bit"] * 1e-12,
        "link_j": link_bytes * 8 * e["link_pj_per_bit"] * 1e-12,
        "static_j": static_power_w(s) * np.maximum(step.end_at - step.start_at, 0.0),
    }
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in parts.items()}


def step_energy_j(spec_or_device: Any, step: Any, dtype: str) -> Any:
    """Joules one chip spends in one engine step (see `step_energy_breakdown_j`); given a StepTable's columns
    (`StepTable.columns()`), an array with every step's."""
    joules = sum(step_energy_breakdown_j(spec_or_device, step, dtype).values())
    return float(joules) if np.ndim(joules) == 0 else joules
