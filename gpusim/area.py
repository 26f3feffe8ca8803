"""Die-area model of a GPU: mm2 per block of its physical die, node-aware, checked against the reticle and the
HBM beachfront (`GpuDevice.area()`).

A GPU is described by its physical die (all SMs, all L2, all HBM sites; `[gpu_die.NAME]` in
`asicsim/data/area_model.toml`) and an SM built from the A100 die-shot SM: tensor array, register file, L1,
lanes, and the remainder as control. The total is never fitted: A100 826 mm2 and H100 814 mm2 are checks
(tests/test_area.py). The primitives (constants, node scaling, `AreaBreakdown`, I/O blocks, SM parts) are
shared with the ASIC model through `asicsim.core.area`; docs/area-model.md describes the model.
"""

from __future__ import annotations

from asicsim.core.area import (BLOCKS, CONSTANTS_PATH, AreaBreakdown, area_constants, check_limits, core_parts_mm2,
                               hbm_edge_limit_stacks, io_blocks_mm2, node_scale)
from asicsim.workloads.errors import InputError

from .spec import GpuSpec

__all__ = ["area_breakdown"]


def _gpu(spec: GpuSpec) -> AreaBreakdown:
    dies = area_constants()["gpu_die"]
    if spec.name not in dies:
        raise InputError(spec.name, "gpu_die", f"no physical die description in {CONSTANTS_PATH.name} "
                                               f"(known: {', '.join(sorted(dies))})")
    die = dies[spec.name]
    g = area_constants()["gpu_sm"]
    ns = node_scale(die["node_nm"], spec.name)
    n7 = node_scale(7)
    sms = die["physical_sm_count"]
    macs_per_sm = spec.dense_bf16_flops_per_s / 2.0 / spec.sm_count / spec.tensor_clock_hz
    tensor_mm2 = g["tensor_area_mm2_n7"] / g["tensor_bf16_macs_per_cycle_ref"] * macs_per_sm / n7.logic_area
    blocks = dict.fromkeys(BLOCKS, 0.0)
    blocks["mac_arrays"] = sms * tensor_mm2 * ns.logic_area
    for name, mm2 in core_parts_mm2(die["register_file_kb_per_sm"], die["l1_kb_per_sm"], die["lanes_per_sm"],
                                    ns).items():
        blocks[name] = sms * mm2
    blocks["sram"] = die["l2_physical_bytes"] / 1e6 * g["cache_mm2_per_mb_n5"] * ns.sram_area
    blocks["noc"] = sms * g["noc_mm2_per_sm_n7"] / n7.logic_area * ns.logic_area
    blocks.update(io_blocks_mm2(die["hbm_sites"], die["links"], ns))
    notes = {"mac_arrays": f"{sms} SMs x {macs_per_sm:.0f} bf16 MAC/cycle tensor cores",
             "prog_control": f"{sms} SMs: fetch/decode/schedule, LD/ST, SFU",
             "prog_register_file": f"{sms} x {die['register_file_kb_per_sm']} KB",
             "prog_l1": f"{sms} x {die['l1_kb_per_sm']} KB", "prog_lanes": f"{sms} x {die['lanes_per_sm']} lanes",
             "sram": f"L2 {die['l2_physical_bytes'] / 2**20:.0f} MiB (physical)",
             "noc": f"{sms} SM crossbar ports", "hbm_phy": f"{die['hbm_sites']} sites",
             "hbm_controller": f"{die['hbm_sites']} sites", "links": f"{die['links']} links",
             "other": "control, PCIe, clocks, test, I/O"}
    return AreaBreakdown(spec.name, "gpu", ns.node_nm, blocks, notes, float(spec.die_area_mm2),
                         area_constants()["die"]["reticle_mm2"], int(die["hbm_sites"]),
                         hbm_edge_limit_stacks(spec.die_area_mm2), int(sms))


def area_breakdown(spec: GpuSpec, *, check: bool = True) -> AreaBreakdown:
    """Area of a GpuSpec's physical die; InputError when `[gpu_die.NAME]` has no entry for it, and with
    `check` when the blocks exceed the reticle or the HBM sites exceed the die's long edges."""
    result = _gpu(spec)
    if check:
        check_limits(result)
    return result
