"""Energy and power of a GPU spec: the all-in H100 figure decomposed into static, MAC, instruction and
on-chip datapath energy, plus HBM and NVLink traffic; the clock a TDP cap allows; energy of one engine step.

`area_energy.csv` h100_energy_per_flop_all_in: 0.71 pJ/FLOP = 700 W / 989 TFLOP/s at full dense bf16 rate,
i.e. 1.42 pJ per bf16 MAC on 4N, HBM and I/O included. Every GPU gets the same definition from its own
datasheet (TDP / dense bf16 peak), decomposed per bf16 MAC; for H100:
  static (10% of TDP, as the ASIC model) 0.142 + MAC (bf16_mac_energy) 0.24 + instruction (30 pJ / 512 MACs,
  one tensor instruction per sub-core per cycle) 0.059 + datapath 0.975 pJ (the remainder: register files,
  shared memory, L2, operand networks, clocking).
Scaling rules: MAC energy by dtype (fp8 = 0.5 x bf16); the datapath term per MAC shrinks with operand width
(fp8 moves half the bits per MAC); a tensor instruction covers 2x the MACs in fp8 (k doubles, as Hopper's
fp8 MMA shapes); logic energy by process node. HBM 3.0 pJ/bit at the DRAM plus 8.51 pJ/bit on the on-chip path
while the tensor cores are idle and 5.28 pJ/bit more for decode attention's streamed KV (both measured on an
H200, docs/gpu-calibration.md), NVLink 1.3 pJ/bit. Constants:
`asicsim/data/area_model.toml` (loaded by `asicsim.core.area`, shared with the ASIC model).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from asicsim.core.area import area_constants
from asicsim.core.power_cap import power_capped_clock_hz
from asicsim.core.device import WIDER_DATAPATHS, WIDTH_CLASS
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import OpKind

from .spec import GpuSpec

__all__ = ["GpuActivity", "FULL_LOAD", "energy_per_mac_j", "all_in_pj_per_flop", "datapath_pj_per_mac_bf16", "static_power_w",
           "onchip_memory_j",
           "power_w", "capped_clock_hz", "step_energy_j", "step_energy_breakdown_j"]


@dataclass(frozen=True)
class GpuActivity:
    """Share of each unit's peak in use: tensor cores (share of cycles at the dense rate), HBM and NVLink
    (share of peak bandwidth)."""

    tensor: float = 1.0
    hbm: float = 1.0
    link: float = 1.0


FULL_LOAD = GpuActivity()


def _spec(spec_or_device: Any) -> GpuSpec:
    return getattr(spec_or_device, "spec", spec_or_device)


def _node_nm(spec: GpuSpec) -> int:
    """The die's node from `[gpu_die.NAME]`; a GPU without an entry is taken as N4-family (H100's, B200's)."""
    c = area_constants()
    return int(c["gpu_die"].get(spec.name, {}).get("node_nm", c["gpu_energy"]["reference_node_nm"]))


def _logic_energy(node_nm: int) -> float:
    nodes = area_constants()["node"]
    if str(node_nm) not in nodes:
        raise InputError("gpu energy", "node_nm", f"no energy data for {node_nm} nm (known: {sorted(nodes)})")
    return nodes[str(node_nm)]["logic_energy_factor"]


def _native(spec: GpuSpec, dtype: str) -> tuple[str, float]:
    """(datapath dtype, its dense FLOP/s): a dtype the GPU lacks runs on the next wider one."""
    order = WIDER_DATAPATHS
    if dtype not in order:
        raise InputError(spec.name, "dtype", f"no energy model for {dtype!r}; known: {sorted(order)}")
    for d in order[dtype]:
        rate = getattr(spec, f"dense_{d}_flops_per_s")
        if rate > 0:
            return d, rate
    raise InputError(spec.name, "dtype", f"no tensor rate for {dtype!r}")


def _mac_ratio(dtype: str) -> float:
    e = area_constants()["energy"]
    return {"bf16": 1.0, "fp8": e["fp8_mac_ratio"], "fp4": e["fp4_mac_ratio"]}[WIDTH_CLASS.get(dtype, dtype)]


def all_in_pj_per_flop(spec_or_device: Any) -> float:
    """TDP over the dense bf16 peak: area_energy.csv's H100 definition (700 W / 989 TFLOP/s), per GPU."""
    s = _spec(spec_or_device)
    return s.tdp_w / s.dense_bf16_flops_per_s * 1e12


def datapath_pj_per_mac_bf16(spec_or_device: Any) -> float:
    """The on-chip datapath energy per bf16 MAC: the all-in figure less static, MAC and instruction energy."""
    s = _spec(spec_or_device)
    e = area_constants()["energy"]
    all_in_pj_per_mac = 2.0 * all_in_pj_per_flop(s)
    mac_pj = e["bf16_mac_pj_n5"] * _logic_energy(_node_nm(s))
    instr_pj = e["instruction_pj"] / _macs_per_instruction_bf16(s)
    return all_in_pj_per_mac * (1.0 - e["static_fraction_of_tdp"]) - mac_pj - instr_pj


def _macs_per_instruction_bf16(s: GpuSpec) -> float:
    """One tensor instruction per sub-core per cycle: bf16 MACs per SM per cycle / issue slots per SM."""
    per_sm = s.dense_bf16_flops_per_s / 2.0 / s.tensor_clock_hz / s.sm_count
    return per_sm / area_constants()["gpu_sm"]["issue_slots_per_sm"]


def energy_per_mac_j(spec_or_device: Any, dtype: str) -> dict[str, float]:
    """Joules per MAC in `dtype` by part: mac, instruction, datapath."""
    s = _spec(spec_or_device)
    e = area_constants()["energy"]
    d, rate = _native(s, dtype)
    width = rate / s.dense_bf16_flops_per_s  # MACs per cycle relative to bf16 (1, 2, 4)
    node = _logic_energy(_node_nm(s))
    return {"mac": e["bf16_mac_pj_n5"] * _mac_ratio(d) * node * 1e-12,
            "instruction": e["instruction_pj"] / (_macs_per_instruction_bf16(s) * width) * 1e-12,
            "datapath": datapath_pj_per_mac_bf16(s) / width * 1e-12}


def static_power_w(spec_or_device: Any) -> float:
    """Leakage and always-on power: the same 10% of TDP as the ASIC model."""
    return area_constants()["energy"]["static_fraction_of_tdp"] * _spec(spec_or_device).tdp_w


def _fixed_w(s: GpuSpec, activity: GpuActivity) -> float:
    e = area_constants()["energy"]
    idle_share = 1.0 - min(max(activity.tensor, 0.0), 1.0)
    hbm = activity.hbm * s.hbm_bandwidth_bytes_per_s * 8 * _hbm_pj_per_bit(idle_share) * 1e-12
    link = activity.link * s.nvlink_bandwidth_bytes_per_s * 8 * e["link_pj_per_bit"] * 1e-12  # bidirectional
    return static_power_w(s) + hbm + link


def _hbm_pj_per_bit(tensor_idle_share: Any) -> Any:
    """Energy per bit of a GPU's HBM traffic: the DRAM access, plus the on-chip path (controller, L2, network,
    load/store) for the share of time the tensor cores, whose datapath term already carries it, are idle."""
    c = area_constants()
    return c["energy"]["hbm_pj_per_bit"] + c["gpu_energy"]["onchip_memory_path_pj_per_bit"] * tensor_idle_share


def onchip_memory_j(op: Any, compute_s: float, kernel_s: float) -> float:
    """Joules an op's HBM bytes spend on the GPU's on-chip path (controller, L2, network, load/store) beyond the
    DRAM access: `onchip_memory_path_pj_per_bit` for the share of the op's kernel time its tensor cores are idle;
    decode attention, a KV stream, pays the whole path plus `decode_attention_pj_per_bit` on every byte (its work
    per streamed byte beyond a copy's; linear in the cached tokens, as the decode fast-forward needs). Priced per
    op (`OpCost.energy_j`), summed into the step's `op_energy_j`."""
    nbytes = op.memory_bytes
    if nbytes <= 0.0:
        return 0.0
    path_pj, decode_pj = _onchip_pj_per_bit()
    if op.kind == OpKind.ATTENTION_DECODE:  # a KV stream: the whole path, and the scoring on top (as fitted)
        return nbytes * 8.0 * (path_pj + decode_pj) * 1e-12
    idle = 1.0 - min(compute_s / kernel_s, 1.0) if kernel_s > 0.0 else 1.0
    return nbytes * 8.0 * path_pj * idle * 1e-12


def onchip_path_pj_per_bit() -> float:
    """`onchip_memory_j`'s picojoules per bit of an op's bytes on the on-chip path (area model constant)."""
    return _onchip_pj_per_bit()[0]


@lru_cache(maxsize=1)
def _onchip_pj_per_bit() -> tuple[float, float]:
    """(onchip_memory_path_pj_per_bit, decode_attention_pj_per_bit) of the area model's GPU energy constants."""
    c = area_constants()["gpu_energy"]
    return c["onchip_memory_path_pj_per_bit"], c["decode_attention_pj_per_bit"]


def _per_cycle_j(s: GpuSpec, activity: GpuActivity, dtype: str) -> float:
    _, rate = _native(s, dtype)
    macs_per_cycle = rate / 2.0 / s.tensor_clock_hz
    return activity.tensor * macs_per_cycle * sum(energy_per_mac_j(s, dtype).values())


def power_w(spec_or_device: Any, activity: GpuActivity = FULL_LOAD, dtype: str = "fp8",
            clock_hz: float | None = None) -> float:
    """GPU power at `activity` and clock (default: the tensor clock of the datasheet peaks)."""
    s = _spec(spec_or_device)
    clock = s.tensor_clock_hz if clock_hz is None else clock_hz
    return _fixed_w(s, activity) + _per_cycle_j(s, activity, dtype) * clock


def capped_clock_hz(spec_or_device: Any, activity: GpuActivity = FULL_LOAD, dtype: str = "fp8") -> float:
    """The tensor clock, lowered until power at `activity` is within TDP (as the GPU's power manager does)."""
    s = _spec(spec_or_device)
    return power_capped_clock_hz(s.name, s.tdp_w, _fixed_w(s, activity), _per_cycle_j(s, activity, dtype),
                                 s.tensor_clock_hz, fixed_what="static + HBM + NVLink power")


@lru_cache(maxsize=64)
def _step_coefficients(s: GpuSpec, dtype: str) -> tuple[float, float, float, float, float, float, float]:
    """Per-(spec, dtype) constants of the step energy: native rate, J per MAC (mac, instruction,
    datapath), J per HBM byte at the DRAM, J per link-busy second, static W. Cached: called once per step."""
    e = area_constants()["energy"]
    _, rate = _native(s, dtype)
    per_mac = energy_per_mac_j(s, dtype)
    return (rate, per_mac["mac"], per_mac["instruction"], per_mac["datapath"], 8 * e["hbm_pj_per_bit"] * 1e-12,
            s.nvlink_bandwidth_bytes_per_s * 8 * e["link_pj_per_bit"] * 1e-12, static_power_w(s))


_PARTS = ("mac_j", "instruction_j", "datapath_j", "hbm_j", "onchip_memory_j", "link_j", "static_j")


def _step_parts_j(s: GpuSpec, step: Any, dtype: str) -> tuple[float, ...]:
    """The seven parts of a step's energy, in `_PARTS` order (see `step_energy_breakdown_j`)."""
    rate, mac_j, instruction_j, datapath_j, hbm_j_per_byte, link_w, static_w = _step_coefficients(s, dtype)
    macs = np.maximum(step.flops_per_chip, step.compute_busy_s * rate) / 2.0
    hbm_bytes = np.minimum(step.memory_bytes_per_chip,
                           step.memory_busy_s * s.hbm_bandwidth_bytes_per_s * s.hbm_achievable_fraction)
    return (macs * mac_j, macs * instruction_j, macs * datapath_j, hbm_bytes * hbm_j_per_byte, step.op_energy_j,
            step.link_busy_s * link_w, static_w * np.maximum(step.end_at - step.start_at, 0.0))


def step_energy_breakdown_j(spec_or_device: Any, step: Any, dtype: str) -> dict[str, float]:
    """Joules one GPU spends in one engine step (a `StepRecord`), by part.

    Tensor-core parts are charged per second the SMs are busy at the full-rate MAC count, not per useful MAC:
    a GEMM at the calibrated ~70% of peak already runs the part at its TDP (the cuBLASLt rows in
    microbenchmarks.csv were measured on 700 W parts), so lost efficiency costs energy, not savings.
    HBM bytes = op bytes (at most the memory unit's busy time x achievable bandwidth) at the DRAM access energy;
    their on-chip path, priced per op (`onchip_memory_j`), comes in as the step's `op_energy_j`; NVLink bits = link busy
    time x bidirectional bandwidth; static over the step.
    """
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in zip(_PARTS, _step_parts_j(_spec(spec_or_device), step, dtype))}


def step_energy_j(spec_or_device: Any, step: Any, dtype: str) -> Any:
    """Joules one GPU spends in one engine step (see `step_energy_breakdown_j`), at most TDP x step time; given
    a StepTable's columns (`StepTable.columns()`), an array with every step's.

    The GPU's power manager holds it at its TDP by lowering clocks; the timing side carries that throttle
    (`GpuOptions.sustained_power_cap`, measured on an H200).
    """
    s = _spec(spec_or_device)
    joules = np.minimum(sum(_step_parts_j(s, step, dtype)), s.tdp_w * np.maximum(step.end_at - step.start_at, 0.0))
    return float(joules) if np.ndim(joules) == 0 else joules
