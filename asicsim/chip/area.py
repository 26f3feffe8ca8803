"""Die-area model of the transformer ASIC: mm2 per block for an AsicSpec, node-aware, checked against the
reticle and the HBM beachfront.

Blocks (the same keys as every device's breakdown, so sweeps get uniform columns): matrix arrays, SRAM
scratchpad, vector units, programmable logic per core (instruction fetch/decode/schedule and load/store =
`prog_control`, register file, L1, general-purpose lanes), NoC, HBM PHY and controller per stack,
chip-to-chip links, other. Logic scales with logic density, SRAM with the bitcell, PHYs and I/O not at all.
The primitives shared with the GPU model (constants, node scaling, `AreaBreakdown`, the limit checks, I/O
blocks, SM parts) live in `asicsim.core.area` and are re-exported here; the GPU die is priced in
`asicsim.gpusim.area`. Any device's area: `Device.area()`. Constants and their sources:
`asicsim/data/area_model.toml`; the model: docs/area-model.md.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from asicsim.core.area import (BLOCKS, CONSTANTS_PATH, GROUP_OF, PROGRAMMABLE_BLOCKS, AreaBreakdown, NodeScale,
                               area_constants, check_limits, core_parts_mm2, hbm_edge_limit_stacks,
                               io_blocks_mm2, node_scale)
from asicsim.core.device import DieFloorplan
from asicsim.workloads.errors import InputError

__all__ = ["AreaBreakdown", "NodeScale", "BLOCKS", "PROGRAMMABLE_BLOCKS", "GROUP_OF", "CONSTANTS_PATH",
           "area_constants", "node_scale", "area_breakdown", "check_limits", "programmable_core_mm2",
           "programmable_cores", "hbm_edge_limit_stacks", "asic_fixed_blocks_mm2", "pe_area_um2", "array_area_mm2",
           "vector_lane_mm2", "sram_mm2_per_byte", "die_floorplan"]


def _link_count(link_bytes_per_s: float) -> int:
    """Chip-to-chip links needed for the per-direction bandwidth (one link = `[asic] link_bytes_per_s`)."""
    return max(int(math.ceil(link_bytes_per_s / area_constants()["asic"]["link_bytes_per_s"] - 1e-9)), 0)


def _programmable_core_parts(ns: NodeScale) -> dict[str, float]:
    c = area_constants()["programmable_core"]
    return core_parts_mm2(c["register_file_kb"], c["l1_kb"], c["lanes"], ns)


def programmable_core_mm2(node_nm: float) -> float:
    """Area of one programmable core (an H100-class SM without tensor cores) at a node."""
    return sum(_programmable_core_parts(node_scale(node_nm)).values())


# --- ASIC ------------------------------------------------------------------------------------------------------

def pe_area_um2(spec: Any, ns: NodeScale) -> float:
    """One PE: bf16 MAC(s) plus the split-mode overheads of the narrower datapaths it supports."""
    a = area_constants()["asic"]
    bf16 = max(1.0, spec.macs_per_pe_per_cycle_bf16)
    um2 = a["bf16_mac_um2_n5"] * bf16
    if spec.macs_per_pe_per_cycle_fp8 > spec.macs_per_pe_per_cycle_bf16:
        um2 *= 1.0 + a["fp8_split_area_overhead"]
    if spec.macs_per_pe_per_cycle_fp4 > spec.macs_per_pe_per_cycle_fp8:
        um2 *= 1.0 + a["fp4_native_area_overhead"]
    return um2 * ns.logic_area


def array_area_mm2(spec: Any, ns: NodeScale) -> float:
    """One systolic array (rows x cols PEs), without its share of vector lanes."""
    return spec.array_rows * spec.array_cols * pe_area_um2(spec, ns) * 1e-6


def vector_lane_mm2(ns: NodeScale) -> float:
    return area_constants()["asic"]["vector_lane_um2_n5"] * 1e-6 * ns.logic_area


def sram_mm2_per_byte(ns: NodeScale) -> float:
    return area_constants()["asic"]["sram_scratchpad_mm2_per_mb_n5"] * 1e-6 * ns.sram_area


def asic_fixed_blocks_mm2(spec: Any, ns: NodeScale) -> dict[str, float]:
    """Blocks that do not depend on arrays, SRAM or programmability: NoC, HBM, links, other."""
    a = area_constants()["asic"]
    return {"noc": a["noc_mm2_n7"] / node_scale(7).logic_area * ns.logic_area,
            **io_blocks_mm2(spec.hbm_stacks, _link_count(spec.link_bandwidth_bytes_per_s), ns)}


def die_floorplan(spec: Any) -> DieFloorplan:
    """The spec's blocks other than its arrays, for the reticle-die envelope; `fixed_mm2` (NoC, HBM, links,
    other) is None for a node the area model has no data for."""
    try:
        fixed_mm2 = sum(asic_fixed_blocks_mm2(spec, node_scale(spec.process_node_nm)).values())
    except InputError:
        fixed_mm2 = None
    return DieFloorplan(spec.hbm_stacks, spec.sram_bytes, spec.vector_lanes, spec.link_bandwidth_bytes_per_s,
                        spec.tdp_w, fixed_mm2)


@lru_cache(maxsize=4096)
def programmable_cores(spec: Any) -> int:
    """Programmable cores an ASIC spec's programmable area holds (0 for a fixed-function chip); memoised on the
    frozen spec, as every step's energy asks."""
    return area_breakdown(spec, check=False).programmable_cores


def _asic(spec: Any) -> AreaBreakdown:
    ns = node_scale(spec.process_node_nm, spec.name)
    blocks = dict.fromkeys(BLOCKS, 0.0)
    blocks["mac_arrays"] = spec.array_count * array_area_mm2(spec, ns)
    blocks["sram"] = spec.sram_bytes * sram_mm2_per_byte(ns)
    blocks["vector_units"] = spec.vector_lanes * vector_lane_mm2(ns)
    blocks.update(asic_fixed_blocks_mm2(spec, ns))
    share = float(getattr(spec, "programmable_area_fraction", 0.0))
    cores = 0
    if share > 0.0:
        prog_mm2 = share / (1.0 - share) * sum(blocks.values())
        parts = _programmable_core_parts(ns)
        core_mm2 = sum(parts.values())
        for name, mm2 in parts.items():
            blocks[name] = prog_mm2 * mm2 / core_mm2
        cores = max(int(prog_mm2 / core_mm2), 1)
    notes = {"mac_arrays": f"{spec.array_count} x {spec.array_rows}x{spec.array_cols} PEs x "
                           f"{pe_area_um2(spec, ns):.0f} um2",
             "sram": f"{spec.sram_bytes / 1e6:.2f} MB scratchpad",
             "vector_units": f"{spec.vector_lanes} lanes",
             "noc": "die-wide network (A100 interconnect, logic-scaled)",
             "hbm_phy": f"{spec.hbm_stacks} stacks", "hbm_controller": f"{spec.hbm_stacks} stacks",
             "links": f"{_link_count(spec.link_bandwidth_bytes_per_s)} links",
             "other": "control, PCIe, clocks, test, I/O"}
    if cores:
        notes["prog_control"] = f"{share:.0%} of the die: ~{cores} cores"
    return AreaBreakdown(spec.name, "asic", ns.node_nm, blocks, notes, float(spec.die_area_mm2),
                         area_constants()["die"]["reticle_mm2"], int(spec.hbm_stacks),
                         hbm_edge_limit_stacks(spec.die_area_mm2), cores)


# --- entry point -----------------------------------------------------------------------------------------------

def area_breakdown(spec: Any, *, check: bool = True) -> AreaBreakdown:
    """Area of an AsicSpec; with `check`, InputError when the blocks exceed the reticle (saying by how much) or
    the HBM stacks exceed the die's long edges. Other device kinds: `Device.area()`."""
    if getattr(spec, "kind", None) != "asic":
        raise InputError(getattr(spec, "name", "spec"), "kind",
                         f"asicsim.chip.area prices ASIC specs, not kind {getattr(spec, 'kind', None)!r}; "
                         "use the device's area()")
    result = _asic(spec)
    if check:
        check_limits(result)
    return result
