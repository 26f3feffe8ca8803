"""The range of chips a reticle-limited die on an N5/N4-class node could hold (two corners).

Constants come from `asicsim/data/claims.toml` [envelope], itself citing area_energy.csv rows. The die is
laid out as docs/sohu-assumptions.md lays out Sohu: HBM PHY and controllers, chip-to-chip links, a
scratchpad SRAM, a vector unit, a NoC and other blocks first, matrix arrays in the rest; the clock is the
lower of the power limit and the node's timing ceiling. When the area model (`asicsim.chip.area`) is
present, the node-aware sizes of the fixed blocks (NoC, HBM PHY and controllers, links, other) come from it
(`Floorplan.fixed_mm2`); the ranged blocks (arrays, SRAM, vector lanes) always use the ends of the ranges. The `low` corner takes the pessimistic end of
every range at the chip's own TDP; the `high` corner the optimistic end of every range at the power-
density cap (1.1 W/mm2 x reticle). The high corner is an upper bound on any single die, not a buildable
design: every constant at its best at once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EnvelopeCorner", "Floorplan", "reticle_envelope"]


@dataclass(frozen=True)
class Floorplan:
    """Blocks of the die that are not matrix arrays, as counts (from an ASIC spec, or the Sohu defaults)."""

    hbm_stacks: int
    sram_bytes: float
    vector_lanes: int
    link_bandwidth_bytes_per_s: float
    tdp_w: float
    fixed_mm2: float | None = None  # NoC + HBM PHY/controllers + links + other, from the area model if given
    hbm_edge_limit_stacks: int | None = None


@dataclass(frozen=True)
class EnvelopeCorner:
    """One corner of the envelope: the peaks a die built at that end of every range reaches."""

    corner: str
    pe_count: float
    clock_hz: float
    peak_fp8_flops_per_s: float
    peak_bf16_flops_per_s: float
    memory_bandwidth_bytes_per_s: float
    memory_bytes_per_chip: float
    array_mm2: float
    power_w: float
    max_hbm_stacks_by_edge: int

    def peak_flops_per_s(self, dtype: str) -> float:
        return self.peak_bf16_flops_per_s if dtype in ("bf16", "fp16") else self.peak_fp8_flops_per_s


def _num(table: dict, key: str, end: str | None = None) -> float:
    item = table[key]
    if end is None:
        return float(item["value"])
    return float(item[end])


def _corner(env: dict, plan: Floorplan, corner: str) -> EnvelopeCorner:
    lo = corner == "low"
    pick = "high" if lo else "low"  # pessimistic = large areas and energies
    best = "low" if lo else "high"  # for bandwidths and capacities
    reticle = _num(env, "reticle_mm2")
    mac_um2 = _num(env, "mac_area_um2", pick) * _num(env, "fp8_split_area_factor", pick)
    links = plan.link_bandwidth_bytes_per_s / _num(env, "link_bandwidth_bytes_per_s_per_link")
    hbm_mm2 = plan.hbm_stacks * (_num(env, "hbm_phy_mm2_per_stack") + _num(env, "hbm_controller_mm2_per_stack"))
    sram_mm2 = plan.sram_bytes / 1e6 * _num(env, "sram_density_mm2_per_mb", pick)
    vector_mm2 = plan.vector_lanes * _num(env, "vector_lane_mac_areas") * mac_um2 * 1e-6
    io = hbm_mm2 + links * _num(env, "link_mm2") + _num(env, "noc_mm2") + _num(env, "other_mm2")
    fixed = (plan.fixed_mm2 if plan.fixed_mm2 is not None else io) + sram_mm2 + vector_mm2
    array_mm2 = max(reticle - fixed, 0.0)
    pes = array_mm2 / (mac_um2 * 1e-6)
    bandwidth = plan.hbm_stacks * _num(env, "hbm_stack_bandwidth_bytes_per_s", best)
    capacity = plan.hbm_stacks * _num(env, "hbm_stack_capacity_bytes", best)
    power = plan.tdp_w if lo else _num(env, "power_density_w_per_mm2") * reticle
    hbm_w = bandwidth * 8 * _num(env, "hbm_energy_pj_per_bit", pick) * 1e-12
    link_w = plan.link_bandwidth_bytes_per_s * 2 * 8 * _num(env, "link_energy_pj_per_bit") * 1e-12
    dynamic = power * (1 - _num(env, "static_power_share")) - hbm_w - link_w
    macs_per_pe = _num(env, "fp8_macs_per_pe")
    pe_cycle_j = macs_per_pe * _num(env, "fp8_energy_ratio", pick) * _num(env, "mac_energy_pj", pick) * 1e-12
    clock = min(dynamic / (pes * pe_cycle_j), _num(env, "clock_ceiling_hz")) if pes and dynamic > 0 else 0.0
    edge = plan.hbm_edge_limit_stacks or int(2 * _num(env, "reticle_long_edge_mm") // _num(env, "hbm_beachfront_mm_per_stack"))
    return EnvelopeCorner(corner=corner, pe_count=pes, clock_hz=clock,
                          peak_fp8_flops_per_s=2 * macs_per_pe * pes * clock, peak_bf16_flops_per_s=2 * pes * clock,
                          memory_bandwidth_bytes_per_s=bandwidth, memory_bytes_per_chip=capacity,
                          array_mm2=array_mm2, power_w=power, max_hbm_stacks_by_edge=edge)


def reticle_envelope(env: dict, plan: Floorplan) -> tuple[EnvelopeCorner, EnvelopeCorner]:
    """(low, high) corners for a die with this floorplan."""
    return _corner(env, plan, "low"), _corner(env, plan, "high")
