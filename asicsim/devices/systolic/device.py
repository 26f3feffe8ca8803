"""A systolic-array accelerator run by a compiler (TPU under XLA, Trainium under the Neuron compiler) as a Device.

Pricing rules (docs/accelerators/systolic.md):
- Matmuls and attention GEMMs run on the matrix units through `asicsim.kernels.systolic` (pipelined folds,
  split over every matrix unit of the chip): a matmul's compute cycles are exactly `shared_gemm_cycles` with
  unlimited on-chip feeds. A PE takes `macs_per_pe_per_cycle_<dtype>` K-elements a cycle.
- Softmax, norms, activations and residual adds run on the vector unit (`kernels.vector.vector_cycles`),
  pipelined with the arrays inside an attention op.
- HBM: weights, KV cache, and activations that do not fit half the on-chip memory stream at the achievable
  bandwidth (peak x `hbm_efficiency`). Within an op compute and its traffic overlap (the compiler pipelines a
  fused op's DMA with its compute); ops run one after another (no cross-op weight prefetch is claimed).
- Compiled execution: no per-kernel launch overhead; `step_overhead_s` (host/dispatch per step) is charged once
  per step, on the sampling op, serially.
- Collectives (overlapping independent compute where the spec says the compiler schedules them asynchronously):
  all-reduce as rings along each dimension of the slice (`torus.torus_allreduce_time_s`); a
  pipeline transfer as one hop at one port's bandwidth; an all-to-all at the chip's whole link bandwidth.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any, Mapping

from asicsim.core.device import MATMUL_DTYPES, AreaBreakdown, SpecDevice, DieFloorplan, LinkLimits, OpCost, PowerLimits
from asicsim.core.specfile import build_spec
from asicsim.kernels import systolic
from asicsim.kernels.vector import vector_cycles
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind, attention_flops_scale, grouped_as_dense

from .power import compute_power_w, static_power_w
from .power import step_energy_j as _step_energy_j
from .spec import SystolicSpec
from .torus import torus_allreduce_time_s

__all__ = ["SystolicDevice", "DEVICE", "matmul_cycles"]

_DATAFLOW_CODE = {"os": 0, "ws": 1, "is": 2}
_PIPELINED = 1
_SOFTMAX_OPS = 5.0  # vector operations per attention score: max, subtract, exp, sum, scale (counted, as the ASIC)
_ACT_ONCHIP_SHARE = 0.5  # assumed: activations stay on chip when an op's fit half the VMEM/SBUF
_SAMPLE_OP = "sample"  # workloads.graph: the one sampling op of every step (carries the per-step overhead)


@lru_cache(maxsize=65536)
def matmul_cycles(arrays: int, rows: int, cols: int, dataflow: int, m: int, n: int, k_steps: int) -> tuple[int, int]:
    """(cycles, ideal cycles) of an m x n x k_steps GEMM over `arrays` arrays: `systolic.shared_gemm_cycles`,
    pipelined, on-chip feeds unlimited (HBM is the engine's memory unit)."""
    result = systolic.shared_gemm_cycles(arrays, rows, cols, dataflow, m, n, k_steps, _PIPELINED, 0, 0.0, 0.0, 0.0)
    return int(result[0]), int(result[2])


class SystolicDevice(SpecDevice):
    """Prices ops for one chip of a TPU / Trainium slice; `chips` is the number of chips the run uses."""

    what = "the systolic model"

    def __init__(self, spec: SystolicSpec, chips: int) -> None:
        if int(chips) < 1:
            raise InputError(spec.name, "chips", f"must be >= 1, got {chips!r}")
        compute_power_w(spec)  # a TDP that leaves the compute units no power is an input error, said up front
        self.spec = spec
        self.chips = int(chips)
        self._dataflow = _DATAFLOW_CODE[spec.dataflow]
        self._hbm_bytes_per_cycle = spec.hbm_bandwidth_bytes_per_s * spec.hbm_efficiency / spec.clock_hz
        self._act_onchip_bytes = spec.onchip_bytes * _ACT_ONCHIP_SHARE
        self._port_bytes_per_s = spec.link_bandwidth_bytes_per_s / spec.link_ports

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> SystolicSpec:
        return build_spec(SystolicSpec, dict(table), source)

    @property
    def compute_unit_name(self) -> str:
        return "systolic matrix units + vector unit"

    @property
    def memory_bytes_per_chip(self) -> float:
        return self.spec.hbm_capacity_bytes

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.spec.hbm_bandwidth_bytes_per_s

    def peak_flops_per_s(self, dtype: str) -> float:
        return self.spec.peak_flops_per_s(dtype)

    @property
    def overlap_collectives(self) -> bool:
        return self.spec.overlap_collectives

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        """Matmul dtypes with a non-zero PE rate, in MATMUL_DTYPES order."""
        return tuple(d for d in MATMUL_DTYPES if getattr(self.spec, f"macs_per_pe_per_cycle_{d}", 0) > 0)

    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        """A compiled programmable chip runs any model the graph builds."""

    # --- pricing -------------------------------------------------------------------------------------
    def cost(self, op: Op) -> OpCost:
        kind = op.kind
        if kind == OpKind.MATMUL:
            cost = self._matmul(op)
        elif kind == OpKind.MOE_MATMUL:
            cost = self._matmul(grouped_as_dense(op))
        elif kind in (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE):
            cost = self._attention(op)
        elif kind in (OpKind.ALLREDUCE, OpKind.P2P, OpKind.ALL_TO_ALL):
            cost = self._collective(op)
        elif kind == OpKind.SSM_SCAN:
            cost = self._vector(op)
            state = op.kv_read_bytes + op.kv_write_bytes
            cost = dataclasses.replace(cost, memory_cycles=cost.memory_cycles + state / self._hbm_bytes_per_cycle,
                                       hbm_bytes=(cost.hbm_bytes or 0.0) + state)
        else:
            cost = self._vector(op)
        if op.name == _SAMPLE_OP and self.spec.step_overhead_s > 0.0:
            cost = dataclasses.replace(cost, fixed_s=cost.fixed_s + self.spec.step_overhead_s)
        return cost

    def _activation_hbm_bytes(self, op: Op) -> float:
        """Activation bytes that cross HBM: none when the op's fit the on-chip share."""
        act = op.act_in_bytes + op.act_out_bytes
        return 0.0 if act <= self._act_onchip_bytes else act

    def _matmul(self, op: Op) -> OpCost:
        s = self.spec
        k_steps = -(-op.k // s.macs_per_pe(op.dtype))
        cycles, ideal = matmul_cycles(s.array_count, s.array_rows, s.array_cols, self._dataflow, op.m, op.n, k_steps)
        act = self._activation_hbm_bytes(op)
        return OpCost(compute_cycles=float(cycles), ideal_compute_cycles=float(ideal),
                      memory_cycles=act / self._hbm_bytes_per_cycle,
                      weight_cycles=op.weight_bytes / self._hbm_bytes_per_cycle, hbm_bytes=act + op.weight_bytes)

    def _attention(self, op: Op) -> OpCost:
        s = self.spec
        head_steps = -(-op.head_dim // s.macs_per_pe(op.dtype))
        array_cycles, ideal = systolic.attention_cycles(
            op.seq_new, op.seq_past, op.q_heads, op.kv_heads, head_steps, s.array_count, s.array_rows, s.array_cols,
            self._dataflow, _PIPELINED)
        new = op.seq_new.astype(float)
        scores = float((new * op.seq_past + new * (new + 1) / 2).sum()) * op.q_heads
        scale = attention_flops_scale(op)  # windows, MLA, sinks: the op's own FLOPs over what the arrays imply
        array_cycles, ideal, scores = float(array_cycles) * scale, float(ideal) * scale, scores * scale
        softmax = float(vector_cycles(scores, _SOFTMAX_OPS, s.vector_lanes))
        act = self._activation_hbm_bytes(op)
        hbm = op.kv_read_bytes + op.kv_write_bytes + act
        return OpCost(compute_cycles=max(array_cycles, softmax), ideal_compute_cycles=ideal,
                      memory_cycles=hbm / self._hbm_bytes_per_cycle, hbm_bytes=hbm)

    def _vector(self, op: Op) -> OpCost:
        # The graph counts elementwise work as FLOPs (one per vector-lane operation).
        cycles = float(vector_cycles(op.flops, 1.0, self.spec.vector_lanes))
        hbm = self._activation_hbm_bytes(op) + op.weight_bytes
        return OpCost(compute_cycles=cycles, memory_cycles=hbm / self._hbm_bytes_per_cycle, hbm_bytes=hbm)

    def _collective(self, op: Op) -> OpCost:
        s = self.spec
        if op.kind == OpKind.ALLREDUCE:
            seconds = torus_allreduce_time_s(op.comm_bytes, op.group, s.slice_dims, self._port_bytes_per_s,
                                             s.link_latency_s, s.wraparound)
        elif op.kind == OpKind.P2P:
            seconds = s.link_latency_s + op.comm_bytes / self._port_bytes_per_s
        else:
            seconds = s.link_latency_s + op.comm_bytes / s.link_bandwidth_bytes_per_s
        return OpCost(link_cycles=seconds * s.clock_hz, hbm_bytes=0.0)

    # --- limits, power, area ---------------------------------------------------------------------------
    @property
    def link_limits(self) -> LinkLimits:
        """All ports' bandwidth per direction, one hop's latency, and the slice as the scale-up domain."""
        s = self.spec
        return LinkLimits(s.link_bandwidth_bytes_per_s, s.link_latency_s, s.slice_chips)

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        """The TDP is the full-load power by definition (asicsim.devices.systolic.power); the clock is never capped."""
        s = self.spec
        return PowerLimits(tdp_w=s.tdp_w, static_power_w=static_power_w(s), clock_hz=s.clock_hz,
                           full_load_power_w=s.tdp_w, capped_clock_hz=s.clock_hz)

    def step_energy_j(self, step: Any, dtype: str) -> Any:
        """Joules one chip spends in one engine step (asicsim.devices.systolic.power)."""
        return _step_energy_j(self.spec, step)

    def area(self, *, check: bool = True) -> AreaBreakdown:
        raise InputError(self.spec.name, "area", "no area model for systolic accelerators (die areas and block "
                                                 "shares are not public)")

    def die_floorplan(self) -> DieFloorplan | None:
        return None


DEVICE = SystolicDevice  # the registry's name for this package's device class (asicsim.core.registry)
