"""Die-area primitives every device's area model shares: the constants, node scaling, the breakdown record,
the reticle and HBM-beachfront checks, I/O blocks and the parts of a programmable core (an SM).

Each device package prices its own die from these (`asicsim.chip.area` for the ASIC, `asicsim.gpusim.area`
for GPUs) and answers `Device.area()`; this module sits below both so that neither imports the other.
Constants and their sources: `asicsim/data/area_model.toml`; the model: docs/area-model.md.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from asicsim.workloads.errors import Infeasible, InputError

__all__ = ["AreaBreakdown", "NodeScale", "BLOCKS", "PROGRAMMABLE_BLOCKS", "GROUP_OF", "CONSTANTS_PATH",
           "area_constants", "node_scale", "hbm_edge_limit_stacks", "check_limits", "io_blocks_mm2",
           "sm_parts_n5_mm2", "sm_control_mm2_n7", "core_parts_mm2"]

CONSTANTS_PATH = Path(__file__).resolve().parent.parent / "data" / "area_model.toml"

# Every breakdown has exactly these blocks, in this order (zero where a chip has none).
BLOCKS = ("mac_arrays", "sram", "vector_units", "prog_control", "prog_register_file", "prog_l1", "prog_lanes",
          "noc", "hbm_phy", "hbm_controller", "links", "other")
PROGRAMMABLE_BLOCKS = ("prog_control", "prog_register_file", "prog_l1", "prog_lanes")
# Block -> group of the A100 die-shot table (area_energy.csv a100_die_breakdown).
GROUP_OF = {"mac_arrays": "cores", "vector_units": "cores", "prog_control": "cores", "prog_register_file": "cores",
            "prog_l1": "cores", "prog_lanes": "cores", "sram": "l2_or_sram", "noc": "interconnect",
            "hbm_phy": "hbm_phy", "hbm_controller": "mem_ctrl", "links": "link_phy", "other": "other"}


@lru_cache(maxsize=1)
def area_constants() -> dict[str, Any]:
    """The parsed `area_model.toml` (read once; packaged data, not user input)."""
    return tomllib.loads(CONSTANTS_PATH.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class NodeScale:
    """Multipliers relative to N5: logic area, SRAM area, logic energy."""

    node_nm: int
    logic_area: float
    sram_area: float
    logic_energy: float


def node_scale(node_nm: float, source: str = "spec") -> NodeScale:
    """Scale factors of a process node against N5; InputError for a node the model has no data for."""
    nodes = area_constants()["node"]
    key = str(int(node_nm)) if float(node_nm).is_integer() else str(node_nm)
    if key not in nodes:
        raise InputError(source, "process_node_nm",
                         f"the area model knows nodes {', '.join(sorted(nodes, key=int))} nm, got {node_nm:g}")
    ref = nodes[str(area_constants()["reference_node_nm"])]
    n = nodes[key]
    return NodeScale(int(key), ref["logic_density_mtr_per_mm2"] / n["logic_density_mtr_per_mm2"],
                     n["sram_bitcell_um2"] / ref["sram_bitcell_um2"], n["logic_energy_factor"])


@dataclass(frozen=True)
class AreaBreakdown:
    """mm2 per block of one chip, with the die limits it was checked against."""

    name: str
    kind: str
    node_nm: int
    blocks: dict[str, float]
    notes: dict[str, str]
    die_area_mm2: float
    reticle_mm2: float
    hbm_stacks: int
    hbm_edge_limit_stacks: int
    programmable_cores: int
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def total_mm2(self) -> float:
        return float(sum(self.blocks.values()))

    @property
    def programmable_share(self) -> float:
        """Share of the modelled area spent on programmable logic (0 = fixed function; GPUs ~0.5)."""
        return sum(self.blocks[b] for b in PROGRAMMABLE_BLOCKS) / self.total_mm2

    @property
    def whitespace_mm2(self) -> float:
        """Declared die area minus the modelled blocks (negative: the model needs more than the die)."""
        return self.die_area_mm2 - self.total_mm2

    def groups(self) -> dict[str, float]:
        """Blocks summed into the groups of the A100 die-shot table."""
        out: dict[str, float] = {}
        for block, mm2 in self.blocks.items():
            out[GROUP_OF[block]] = out.get(GROUP_OF[block], 0.0) + mm2
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "node_nm": self.node_nm, "total_mm2": self.total_mm2,
                "blocks": dict(self.blocks), "groups": self.groups(), "die_area_mm2": self.die_area_mm2,
                "whitespace_mm2": self.whitespace_mm2, "reticle_mm2": self.reticle_mm2,
                "programmable_share": self.programmable_share, "programmable_cores": self.programmable_cores,
                "hbm_stacks": self.hbm_stacks, "hbm_edge_limit_stacks": self.hbm_edge_limit_stacks,
                "notes": dict(self.notes)}


# --- die limits --------------------------------------------------------------------------------------------

def hbm_edge_limit_stacks(die_area_mm2: float) -> int:
    """HBM stacks that fit along the long edges of a die of this area (reticle aspect ratio, 6.5 mm each)."""
    d = area_constants()["die"]
    long_edge_mm = math.sqrt(die_area_mm2 * d["reticle_long_edge_mm"] / d["reticle_short_edge_mm"])
    return int(math.floor(d["hbm_edges"] * long_edge_mm / d["hbm_beachfront_mm_per_stack"] + 1e-9))


def check_limits(area: AreaBreakdown) -> None:
    """InputError naming the limit and the excess: reticle, or HBM beachfront."""
    total, reticle = area.total_mm2, area.reticle_mm2
    if total > reticle * (1.0 + 1e-12):
        raise Infeasible(area.name, "die_area_mm2",
                         f"blocks need {total:.1f} mm2, over the {reticle:g} mm2 reticle by {total - reticle:.1f} mm2 "
                         f"({(total / reticle - 1.0) * 100:.1f}%)")
    if area.hbm_stacks > area.hbm_edge_limit_stacks:
        d = area_constants()["die"]
        need = area.hbm_stacks * d["hbm_beachfront_mm_per_stack"]
        have = area.hbm_edge_limit_stacks * d["hbm_beachfront_mm_per_stack"]
        raise Infeasible(area.name, "hbm_stacks",
                         f"{area.hbm_stacks} stacks need {need:.1f} mm of die edge; a {area.die_area_mm2:g} mm2 die "
                         f"fits {area.hbm_edge_limit_stacks} ({have:.1f} mm) on its two long edges, "
                         f"{area.hbm_stacks - area.hbm_edge_limit_stacks} too many")


# --- blocks every die has -----------------------------------------------------------------------------------

def io_blocks_mm2(stacks: int, links: int, ns: NodeScale) -> dict[str, float]:
    """HBM PHYs (no shrink) and controllers per stack, chip-to-chip links (PHY + controller), other I/O."""
    a = area_constants()["asic"]
    return {"hbm_phy": stacks * a["hbm_phy_mm2_per_stack"],
            "hbm_controller": stacks * a["hbm_controller_mm2_per_stack_n5"] * ns.logic_area,
            "links": links * (a["link_phy_mm2"] + a["link_controller_mm2_n5"] * ns.logic_area),
            "other": a["other_mm2"]}


# --- a programmable core (an SM without or with its tensor cores) -----------------------------------------------

def _mb(nbytes: float) -> float:
    return nbytes / 1e6


def sm_parts_n5_mm2(rf_kb: float, l1_kb: float, lanes: float) -> dict[str, float]:
    """Register file, L1 and lanes of one core at N5 (mm2)."""
    g = area_constants()["gpu_sm"]
    cache = g["cache_mm2_per_mb_n5"]
    return {"prog_register_file": _mb(rf_kb * 1024) * cache * g["register_file_density_factor"],
            "prog_l1": _mb(l1_kb * 1024) * cache,
            "prog_lanes": lanes * g["lane_um2_n5"] * 1e-6}


@lru_cache(maxsize=None)
def sm_control_mm2_n7() -> float:
    """Instruction fetch/decode/schedule, load/store, SFUs of an SM: the A100 SM minus its measured parts."""
    g = area_constants()["gpu_sm"]
    n7 = node_scale(7)
    parts = sm_parts_n5_mm2(g["register_file_kb_ref"], g["l1_kb_ref"], g["lanes_ref"])
    at_n7 = (parts["prog_register_file"] + parts["prog_l1"]) * n7.sram_area + parts["prog_lanes"] * n7.logic_area
    return g["sm_area_mm2_n7"] - g["tensor_area_mm2_n7"] - at_n7


def core_parts_mm2(rf_kb: float, l1_kb: float, lanes: float, ns: NodeScale) -> dict[str, float]:
    """Programmable blocks of one core at node `ns`: control, register file, L1, lanes."""
    parts = sm_parts_n5_mm2(rf_kb, l1_kb, lanes)
    n7 = node_scale(7)
    return {"prog_control": sm_control_mm2_n7() / n7.logic_area * ns.logic_area,
            "prog_register_file": parts["prog_register_file"] * ns.sram_area,
            "prog_l1": parts["prog_l1"] * ns.sram_area,
            "prog_lanes": parts["prog_lanes"] * ns.logic_area}
