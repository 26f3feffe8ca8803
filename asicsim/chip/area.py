"""Die-area model: mm2 per block for an ASIC spec or a GPU spec, node-aware, checked against the reticle and
the HBM beachfront.

Blocks (the same keys for every chip, so sweeps get uniform columns): matrix arrays, SRAM (scratchpad on an
ASIC, L2 cache on a GPU), vector units, programmable logic per core (instruction fetch/decode/schedule and
load/store = `prog_control`, register file, L1, general-purpose lanes), NoC, HBM PHY and controller per
stack, chip-to-chip links, other. Logic scales with logic density, SRAM with the bitcell, PHYs and I/O not
at all. Constants and their sources: `asicsim/data/area_model.toml`; the model: docs/area-model.md.

A GPU is described by its physical die (all SMs, all L2, all HBM sites; `[gpu_die.NAME]` in the constants)
and an SM built from the A100 die-shot SM: tensor array, register file, L1, lanes, and the remainder as
control. The total is never fitted: A100 826 mm2 and H100 814 mm2 are checks (tests/test_area.py).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from asicsim.workloads.errors import InputError

__all__ = ["AreaBreakdown", "NodeScale", "BLOCKS", "GROUP_OF", "CONSTANTS_PATH", "area_constants", "node_scale",
           "area_breakdown", "programmable_core_mm2", "programmable_cores", "hbm_edge_limit_stacks",
           "asic_fixed_blocks_mm2", "pe_area_um2", "array_area_mm2"]

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


# --- shared pieces ---------------------------------------------------------------------------------------------

def hbm_edge_limit_stacks(die_area_mm2: float) -> int:
    """HBM stacks that fit along the long edges of a die of this area (reticle aspect ratio, 6.5 mm each)."""
    d = area_constants()["die"]
    long_edge_mm = math.sqrt(die_area_mm2 * d["reticle_long_edge_mm"] / d["reticle_short_edge_mm"])
    return int(math.floor(d["hbm_edges"] * long_edge_mm / d["hbm_beachfront_mm_per_stack"] + 1e-9))


def _link_count(link_bytes_per_s: float) -> int:
    return max(int(math.ceil(link_bytes_per_s / area_constants()["asic"]["link_bytes_per_s"] - 1e-9)), 0)


def _io_blocks(stacks: int, links: int, ns: NodeScale) -> dict[str, float]:
    a = area_constants()["asic"]
    return {"hbm_phy": stacks * a["hbm_phy_mm2_per_stack"],
            "hbm_controller": stacks * a["hbm_controller_mm2_per_stack_n5"] * ns.logic_area,
            "links": links * (a["link_phy_mm2"] + a["link_controller_mm2_n5"] * ns.logic_area),
            "other": a["other_mm2"]}


def _mb(nbytes: float) -> float:
    return nbytes / 1e6


def _sm_parts_n5(rf_kb: float, l1_kb: float, lanes: float) -> dict[str, float]:
    """Register file, L1 and lanes of one core at N5 (mm2)."""
    g = area_constants()["gpu_sm"]
    cache = g["cache_mm2_per_mb_n5"]
    return {"prog_register_file": _mb(rf_kb * 1024) * cache * g["register_file_density_factor"],
            "prog_l1": _mb(l1_kb * 1024) * cache,
            "prog_lanes": lanes * g["lane_um2_n5"] * 1e-6}


@lru_cache(maxsize=None)
def _control_mm2_n7() -> float:
    """Instruction fetch/decode/schedule, load/store, SFUs of an SM: the A100 SM minus its measured parts."""
    g = area_constants()["gpu_sm"]
    n7 = node_scale(7)
    parts = _sm_parts_n5(g["register_file_kb_ref"], g["l1_kb_ref"], g["lanes_ref"])
    at_n7 = (parts["prog_register_file"] + parts["prog_l1"]) * n7.sram_area + parts["prog_lanes"] * n7.logic_area
    return g["sm_area_mm2_n7"] - g["tensor_area_mm2_n7"] - at_n7


def _core_parts(rf_kb: float, l1_kb: float, lanes: float, ns: NodeScale) -> dict[str, float]:
    """Programmable blocks of one core at node `ns`."""
    parts = _sm_parts_n5(rf_kb, l1_kb, lanes)
    n7 = node_scale(7)
    return {"prog_control": _control_mm2_n7() / n7.logic_area * ns.logic_area,
            "prog_register_file": parts["prog_register_file"] * ns.sram_area,
            "prog_l1": parts["prog_l1"] * ns.sram_area,
            "prog_lanes": parts["prog_lanes"] * ns.logic_area}


def _programmable_core_parts(ns: NodeScale) -> dict[str, float]:
    c = area_constants()["programmable_core"]
    return _core_parts(c["register_file_kb"], c["l1_kb"], c["lanes"], ns)


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
            **_io_blocks(spec.hbm_stacks, _link_count(spec.link_bandwidth_bytes_per_s), ns)}


def programmable_cores(spec: Any) -> int:
    """Programmable cores a spec's programmable area holds (0 for a fixed-function chip; SMs for a GPU)."""
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


# --- GPU -------------------------------------------------------------------------------------------------------

def _gpu(spec: Any) -> AreaBreakdown:
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
    for name, mm2 in _core_parts(die["register_file_kb_per_sm"], die["l1_kb_per_sm"], die["lanes_per_sm"],
                                 ns).items():
        blocks[name] = sms * mm2
    blocks["sram"] = _mb(die["l2_physical_bytes"]) * g["cache_mm2_per_mb_n5"] * ns.sram_area
    blocks["noc"] = sms * g["noc_mm2_per_sm_n7"] / n7.logic_area * ns.logic_area
    blocks.update(_io_blocks(die["hbm_sites"], die["links"], ns))
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


# --- entry point -----------------------------------------------------------------------------------------------

def area_breakdown(spec: Any, *, check: bool = True) -> AreaBreakdown:
    """Area of an AsicSpec or GpuSpec (chosen by `spec.kind`); with `check`, InputError when the blocks
    exceed the reticle (saying by how much) or the HBM stacks exceed the die's long edges."""
    kind = getattr(spec, "kind", None)
    if kind == "asic":
        result = _asic(spec)
    elif kind == "gpu":
        result = _gpu(spec)
    else:
        raise InputError(getattr(spec, "name", "spec"), "kind", f"no area model for kind {kind!r}")
    if check:
        check_limits(result)
    return result


def check_limits(area: AreaBreakdown) -> None:
    """InputError naming the limit and the excess: reticle, or HBM beachfront."""
    total, reticle = area.total_mm2, area.reticle_mm2
    if total > reticle * (1.0 + 1e-12):
        raise InputError(area.name, "die_area_mm2",
                         f"blocks need {total:.1f} mm2, over the {reticle:g} mm2 reticle by {total - reticle:.1f} mm2 "
                         f"({(total / reticle - 1.0) * 100:.1f}%)")
    if area.hbm_stacks > area.hbm_edge_limit_stacks:
        d = area_constants()["die"]
        need = area.hbm_stacks * d["hbm_beachfront_mm_per_stack"]
        have = area.hbm_edge_limit_stacks * d["hbm_beachfront_mm_per_stack"]
        raise InputError(area.name, "hbm_stacks",
                         f"{area.hbm_stacks} stacks need {need:.1f} mm of die edge; a {area.die_area_mm2:g} mm2 die "
                         f"fits {area.hbm_edge_limit_stacks} ({have:.1f} mm) on its two long edges, "
                         f"{area.hbm_stacks - area.hbm_edge_limit_stacks} too many")
