"""EdgeNpuDevice: a phone SoC's NPU and LPDDR as a Device (docs/accelerators/edge-cim.md).

Pricing rules (each a stated modelling choice):
- Matmuls run on the NPU's matrix engine at the spec's dense rate for the executed dtype times
  `matmul_efficiency`; their weights stream from LPDDR at `lpddr_efficiency` of the peak bandwidth. The op
  ends when the slower of the two is done (the engine overlaps an op's compute and memory).
- Attention, softmax, norms, activations and sampling run on the NPU's vector units (`vector_flops_per_s`);
  the KV cache lives in LPDDR. Activations stay on chip when an op's fit `onchip_buffer_bytes`, else they
  cross LPDDR too.
- One device, no scale-up links: a run on more than one chip is refused (multi-device is a later issue); a
  collective inside one chip costs nothing.
- Energy of a step: static power for its duration, plus every FLOP at the NPU's joules per op in the run's
  dtype (vector work included, at the same rate: the step record does not split it out), plus every LPDDR
  byte. Power never exceeds the phone's sustained budget (`tdp_w`): a step is charged at most tdp_w x time.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from asicsim.core.device import AreaBreakdown, OpCost, PowerLimits
from asicsim.core.power_cap import power_capped_clock_hz
from asicsim.core.specfile import build_spec
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind, grouped_as_dense

from ..one_device import OneDevice, check_static_below_tdp
from .spec import EdgeNpuSpec

__all__ = ["EdgeNpuDevice", "DEVICE"]

_MATMULS = (OpKind.MATMUL, OpKind.MOE_MATMUL)
_COLLECTIVES = (OpKind.ALLREDUCE, OpKind.P2P, OpKind.ALL_TO_ALL)


class EdgeNpuDevice(OneDevice):
    """Prices ops on one phone NPU; `chips` must be 1 (no scale-up links)."""

    what = "an edge NPU"

    def __init__(self, spec: EdgeNpuSpec, chips: int = 1) -> None:
        super().__init__(spec, chips)
        self._lpddr_bytes_per_s = spec.lpddr_bandwidth_bytes_per_s * spec.lpddr_efficiency

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> EdgeNpuSpec:
        spec = build_spec(EdgeNpuSpec, dict(table), source)
        if spec.model_memory_bytes > spec.lpddr_capacity_bytes:
            raise InputError(source, "model_memory_bytes", f"{spec.model_memory_bytes:.3g} B exceeds the phone's "
                                                           f"{spec.lpddr_capacity_bytes:.3g} B of LPDDR")
        check_static_below_tdp(spec, source)
        return spec

    @property
    def compute_unit_name(self) -> str:
        return "NPU matrix engine + vector units"

    @property
    def memory_bytes_per_chip(self) -> float:
        """What a model may occupy on the phone (weights, KV cache, activations), not all of its DRAM."""
        return self.spec.model_memory_bytes

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.spec.lpddr_bandwidth_bytes_per_s

    def _rate(self, dtype: str) -> float:
        return self.spec.rate(dtype)

    # --- pricing -------------------------------------------------------------------------------------------
    def cost(self, op: Op) -> OpCost:
        s, clock = self.spec, self.spec.clock_hz
        kind = op.kind
        if kind in _COLLECTIVES:
            return OpCost(hbm_bytes=0.0)  # one device: nothing to exchange
        act = op.act_in_bytes + op.act_out_bytes
        act_dram = 0.0 if act <= s.onchip_buffer_bytes else act
        kv = op.kv_read_bytes + op.kv_write_bytes
        if kind in _MATMULS:
            dense = grouped_as_dense(op) if kind == OpKind.MOE_MATMUL else op
            rate = s.rate(self.executed_dtype(dense.dtype)) * s.matmul_efficiency
            compute_s, ideal_s = dense.flops / rate, dense.flops / (rate / s.matmul_efficiency)
        else:
            compute_s = ideal_s = op.flops / s.vector_flops_per_s
        bw = self._lpddr_bytes_per_s
        return OpCost(compute_cycles=compute_s * clock, ideal_compute_cycles=ideal_s * clock,
                      memory_cycles=(act_dram + kv) / bw * clock, weight_cycles=op.weight_bytes / bw * clock,
                      hbm_bytes=op.weight_bytes + act_dram + kv)

    # --- power and energy ----------------------------------------------------------------------------------
    def joules_per_op(self, dtype: str) -> float:
        """NPU joules per matmul op in `dtype` as executed (int4: its own figure or int8's; float formats: the
        16-bit float datapath's)."""
        s, executed = self.spec, self.executed_dtype(dtype)
        if executed == "int8":
            return s.int8_j_per_op
        if executed == "int4":
            return s.int4_j_per_op or s.int8_j_per_op
        return s.fp16_j_per_flop or s.int8_j_per_op

    def step_energy_j(self, step: Any, dtype: str) -> Any:
        """Static power over the step + FLOPs x J/op + LPDDR bytes x J/byte, at most tdp_w x the step's time; an
        array for a StepTable's columns."""
        s = self.spec
        seconds = np.maximum(step.end_at - step.start_at, 0.0)
        joules = (s.static_power_w * seconds + step.flops_per_chip * self.joules_per_op(dtype)
                  + step.memory_bytes_per_chip * s.lpddr_j_per_byte)
        joules = np.minimum(joules, s.tdp_w * seconds)
        return float(joules) if np.ndim(joules) == 0 else joules

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        """Full load = static + the matrix engine at its peak in `dtype` (None: int8) + LPDDR at peak bandwidth."""
        s, d = self.spec, dtype or "int8"
        dram_w = s.lpddr_bandwidth_bytes_per_s * s.lpddr_j_per_byte
        npu_j_per_cycle = self.peak_flops_per_s(d) * self.joules_per_op(d) / s.clock_hz
        capped = power_capped_clock_hz(s.name, s.tdp_w, s.static_power_w + dram_w, npu_j_per_cycle, s.clock_hz,
                                       fixed_what="static + LPDDR power")
        return PowerLimits(tdp_w=s.tdp_w, static_power_w=s.static_power_w, clock_hz=s.clock_hz,
                           full_load_power_w=s.static_power_w + dram_w + npu_j_per_cycle * s.clock_hz,
                           capped_clock_hz=capped)

    # --- area ---------------------------------------------------------------------------------------------
    def area(self, *, check: bool = True) -> AreaBreakdown:
        raise InputError(self.spec.name, "area", "no area model: the SoC's die breakdown is not published")


DEVICE = EdgeNpuDevice  # the registry's name for this package's device class (asicsim.core.registry)
