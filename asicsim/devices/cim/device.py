"""CimDevice: an SRAM compute-in-memory chip as a Device (docs/accelerators/edge-cim.md).

Pricing rules (each a stated modelling choice):
- An int8 matmul is tiled onto macros: row tiles of `macro_rows` (the reduction), column tiles of
  `macro_cols / weight_bits` outputs. Each token's pass over a tile is one full-array dot product taking
  `dot_product_s` (the published TOPS/mm2 over the macro's area; ADC time included) and costing
  `dot_product_j` (the published TOPS/W); tiles beyond `macro_count` run in waves.
- Weight reload: no language model fits the macros (the chip holds `weight_capacity_bytes`; the smallest
  shipped model, qwen3-0.6b, needs 0.6 GB at int8), so every matmul's weights are read from DRAM and written
  into the macros at every step, before its dot products (no ping-pong: a macro being written does not
  compute). A batch of tokens shares one reload. DRAM time overlaps the macros' write + compute time.
- Energy per op, by part: `mac` (the array's share of the macro energy, per useful MAC), `adc_dac` (the
  converters' share, per dot product: a tile whose rows or columns are partly used pays the full conversion),
  `reload` (weights read from DRAM and written into bit cells), `movement` (inputs to every column tile,
  partial sums of every row tile and the reloaded weights through the buffer), `digital` (accumulating row
  tiles, softmax, norms, activations and attention, whose operands change every token and so never sit in
  the macros), `dram` (KV cache and activations that overflow the buffer). Static power is charged per second
  by the run (`step_energy_j`).
- Matmuls in a format the macros do not hold run on the digital unit (its 16-bit float datapath, which also
  runs attention on the KV cache); int4 weights are widened to the macros' 8 bits (0.5 B each in DRAM, 1 B in
  the bit cells); fp8/fp4 widen to the 16-bit float datapath.
- One device, no scale-up links: more than one chip is refused.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from asicsim.core.area import BLOCKS, AreaBreakdown, area_constants, check_limits
from asicsim.core.device import OpCost, PowerLimits
from asicsim.core.power_cap import power_capped_clock_hz
from asicsim.core.specfile import build_spec
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind, grouped_as_dense

from ..one_device import OneDevice, check_static_below_tdp
from .spec import CimSpec

__all__ = ["CimDevice", "DEVICE", "ENERGY_PARTS", "MACRO_DTYPE", "DIGITAL_DTYPES"]

MACRO_DTYPE = "int8"  # what the macros hold at the published 8-bit operating point
DIGITAL_DTYPES = ("bf16", "fp16")  # the digital unit's 16-bit float datapath (fp16 shares bf16's, WIDER_DATAPATHS)
# Parts of the dynamic energy (`energy_parts_j`); static power is the run's.
ENERGY_PARTS = ("mac", "adc_dac", "reload", "movement", "digital", "dram")
_MATMULS = (OpKind.MATMUL, OpKind.MOE_MATMUL)
_COLLECTIVES = (OpKind.ALLREDUCE, OpKind.P2P, OpKind.ALL_TO_ALL)


class CimDevice(OneDevice):
    """Prices ops on one compute-in-memory chip; `chips` must be 1 (no scale-up links)."""

    what = "the CIM chip"

    def __init__(self, spec: CimSpec, chips: int = 1) -> None:
        super().__init__(spec, chips)
        self._dram_bytes_per_s = spec.dram_bandwidth_bytes_per_s * spec.dram_efficiency
        self._parts: dict[bytes, tuple[OpCost, dict[str, float]]] = {}

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> CimSpec:
        spec = build_spec(CimSpec, dict(table), source)
        if spec.macro_cols % spec.weight_bits:
            raise InputError(source, "macro_cols", f"{spec.macro_cols} columns do not hold whole "
                                                   f"{spec.weight_bits}-bit weights")
        check_static_below_tdp(spec, source)
        return spec

    @property
    def compute_unit_name(self) -> str:
        return "CIM macros + digital unit"

    @property
    def memory_bytes_per_chip(self) -> float:
        """DRAM: where the weights live between reloads, and the KV cache."""
        return self.spec.dram_capacity_bytes

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.spec.dram_bandwidth_bytes_per_s

    def _rate(self, dtype: str) -> float:
        s = self.spec
        if dtype == MACRO_DTYPE:
            return 2.0 * s.macro_count * s.macro_macs_per_s
        return s.digital_ops_per_s if dtype in DIGITAL_DTYPES else 0.0

    # --- pricing -------------------------------------------------------------------------------------------
    def cost(self, op: Op) -> OpCost:
        return self._priced(op)[0]

    def energy_parts_j(self, op: Op) -> dict[str, float]:
        """Dynamic joules of one op by part (ENERGY_PARTS); their sum is `cost(op).energy_j`."""
        return dict(self._priced(op)[1])

    def _priced(self, op: Op) -> tuple[OpCost, dict[str, float]]:
        key = op.value_key
        hit = self._parts.get(key) if key is not None else None
        if hit is None:
            hit = self._price(op)
            if key is not None:
                self._parts[key] = hit
        return hit

    def _price(self, op: Op) -> tuple[OpCost, dict[str, float]]:
        s, clock = self.spec, self.spec.clock_hz
        parts = dict.fromkeys(ENERGY_PARTS, 0.0)
        if op.kind in _COLLECTIVES:
            return OpCost(hbm_bytes=0.0), parts
        act = op.act_in_bytes + op.act_out_bytes
        spilled = 0.0 if act <= s.buffer_bytes else act
        dram_other = spilled + op.kv_read_bytes + op.kv_write_bytes
        parts["dram"] = dram_other * s.dram_j_per_byte
        weight_s = 0.0
        if op.kind in _MATMULS and self.executed_dtype(op.dtype) == MACRO_DTYPE:
            dense = grouped_as_dense(op) if op.kind == OpKind.MOE_MATMUL else op
            compute_s, ideal_s = self._macro_matmul(dense, parts)
            weight_s = op.weight_bytes / self._dram_bytes_per_s
        else:  # the digital unit: attention, norms, activations, sampling, matmuls the macros cannot hold
            compute_s = ideal_s = op.flops / s.digital_ops_per_s
            parts["digital"] = op.flops * s.digital_j_per_op
            parts["movement"] = act * s.move_j_per_byte
            dram_other += op.weight_bytes
            parts["dram"] = dram_other * s.dram_j_per_byte
        memory_s = dram_other / self._dram_bytes_per_s
        cost = OpCost(compute_cycles=compute_s * clock, ideal_compute_cycles=ideal_s * clock,
                      memory_cycles=memory_s * clock, weight_cycles=weight_s * clock,
                      hbm_bytes=dram_other + (op.weight_bytes if weight_s else 0.0), energy_j=sum(parts.values()))
        return cost, parts

    def _macro_matmul(self, op: Op, parts: dict[str, float]) -> tuple[float, float]:
        """(macro seconds: reload writes then dot products, ideal seconds) of an int8 matmul; fills its energy."""
        s = self.spec
        per_col = s.macro_cols // s.weight_bits
        row_tiles, col_tiles = math.ceil(op.k / s.macro_rows), math.ceil(op.n / per_col)
        tiles = row_tiles * col_tiles
        m = max(op.m, 1)
        dot_products = m * tiles
        waves = math.ceil(tiles / s.macro_count)
        dot_s = m * waves * s.dot_product_s
        cell_bytes = op.k * op.n * s.weight_bits / 8  # what the macros hold (int4 widened to the macro's bits)
        write_s = cell_bytes / (s.macro_write_bytes_per_s * min(tiles, s.macro_count))
        macs = op.flops / 2.0
        parts["mac"] = (1.0 - s.adc_energy_share) * s.dot_product_j * macs / s.weights_per_macro
        parts["adc_dac"] = s.adc_energy_share * s.dot_product_j * dot_products
        parts["reload"] = op.weight_bytes * s.dram_j_per_byte + cell_bytes * s.macro_write_j_per_byte
        moved = (m * op.k * s.weight_bits / 8 * col_tiles + m * op.n * row_tiles * s.partial_sum_bytes
                 + op.weight_bytes)
        parts["movement"] = moved * s.move_j_per_byte
        parts["digital"] = m * op.n * max(row_tiles - 1, 0) * s.digital_j_per_op  # summing row tiles' partials
        ideal_s = macs / (s.macro_count * s.macro_macs_per_s)
        return write_s + dot_s, ideal_s

    # --- power and energy ----------------------------------------------------------------------------------
    def step_energy_j(self, step: Any, dtype: str) -> Any:
        """Static power over the step plus the joules its ops were priced at (`op_energy_j`); an array for a
        StepTable's columns."""
        seconds = np.maximum(step.end_at - step.start_at, 0.0)
        joules = self.spec.static_power_w * seconds + step.op_energy_j
        return float(joules) if np.ndim(joules) == 0 else joules

    @property
    def reference_ops_per_j(self) -> Mapping[str, float]:
        """Published efficiencies to quote beside a run's delivered ops per joule: the macro's peak."""
        return {"macro peak (published)": self.spec.macro_ops_per_j}

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        """Full load: static + every macro at its peak rate and TOPS/W (dtype None or int8) or the digital unit at
        its peak (fp16) + DRAM at peak bandwidth."""
        s = self.spec
        d = self.executed_dtype(dtype or MACRO_DTYPE)
        compute_w = (self._rate(d) / s.macro_ops_per_j if d == MACRO_DTYPE
                     else s.digital_ops_per_s * s.digital_j_per_op)
        dram_w = s.dram_bandwidth_bytes_per_s * s.dram_j_per_byte
        capped = power_capped_clock_hz(s.name, s.tdp_w, s.static_power_w + dram_w, compute_w / s.clock_hz,
                                       s.clock_hz, fixed_what="static + DRAM power")
        return PowerLimits(tdp_w=s.tdp_w, static_power_w=s.static_power_w, clock_hz=s.clock_hz,
                           full_load_power_w=s.static_power_w + dram_w + compute_w, capped_clock_hz=capped)

    # --- area ---------------------------------------------------------------------------------------------
    def area(self, *, check: bool = True) -> AreaBreakdown:
        """Macros from the published bit density, the buffer, the digital unit and I/O; checked against the
        reticle."""
        s = self.spec
        blocks = dict.fromkeys(BLOCKS, 0.0)
        blocks.update(mac_arrays=s.macro_count * s.macro_mm2, sram=s.buffer_bytes * s.sram_mm2_per_byte,
                      vector_units=s.digital_mm2, other=s.other_mm2)
        total = sum(blocks.values())
        notes = {"mac_arrays": f"{s.macro_count} macros x {s.macro_mm2:.4f} mm2 "
                               f"({s.weights_per_macro} {s.weight_bits}-bit weights at {s.macro_bytes_per_mm2 / 1e3:g} kB/mm2)"}
        area = AreaBreakdown(name=s.name, kind=s.kind, node_nm=s.process_node_nm, blocks=blocks, notes=notes,
                             die_area_mm2=total, reticle_mm2=area_constants()["die"]["reticle_mm2"], hbm_stacks=0,
                             hbm_edge_limit_stacks=0, programmable_cores=0)
        if check:
            check_limits(area)
        return area


DEVICE = CimDevice  # the registry's name for this package's device class (asicsim.core.registry)
