"""The SRAM-resident pipeline as a Device: weights read from the memory tier they were placed in, ops timed at the
chip's dense peaks and tier bandwidths, every chip-to-chip transfer paying the link latency.

Pricing rules (each a modelling choice, docs/accelerators/sram-pipeline.md):
- Placement: a run tells the device its weight bytes per chip (`with_resident_weights`, called by
  `RunDescription.make_device`); they fill the tiers fastest first (SRAM, then the external tier, then the
  capacity tier). Every op reads that share of its weights from each tier, one tier after the other (they feed one
  datapath): its weight time is the sum of the shares' times, so a spilled byte never reads faster than an SRAM one.
  Without a placement (a bare device) all weights are in SRAM.
- KV cache: the run's peak KV bytes per chip fill what the weights leave, fastest tier first; an op reads each
  tier's share in turn (KV of a batch that spills past the SRAM comes partly from the slower tier).
- Activations stay on chip (SRAM bandwidth). Matmuls and attention at the dtype's dense peak (widened: the next
  wider datapath's) x compute_efficiency; norms and elementwise ops on the vector rate. An op takes the longer of
  its compute and its memory time (a statically scheduled dataflow overlaps the two within an op), after the
  datapath's fill latency (`op_latency_s`, matmuls and attention); ops run one after another (no prefetch across ops, no overlap of collectives: the compiler's own overlap is not modelled).
- Links: a pipeline transfer is one hop (latency + bytes / per-direction bandwidth); an all-reduce is a ring
  (2(n-1) hops) or direct (`allreduce = "direct"`): a reduce-scatter and an all-gather, each one transfer to every
  peer at once, of one hop inside a fully connected domain and `route_hops` beyond it; both move 2(n-1)/n of the
  message per chip.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from asicsim.core.device import AreaBreakdown, DieFloorplan, SpecDevice, LinkLimits, OpCost, PowerLimits
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind

from .spec import SramPipelineSpec, load_sram_spec

__all__ = ["SramPipelineDevice", "DEVICE", "CLOCK_HZ"]

# Cycles are nanoseconds: the chips' clocks are not what this model prices (it uses dense peaks and bandwidths),
# and the engine only needs one clock per unit to turn cycles back into seconds.
CLOCK_HZ = 1e9
_MATMULS = (OpKind.MATMUL, OpKind.MOE_MATMUL)
_ATTENTION = (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE)
_TRANSFERS = (OpKind.P2P, OpKind.ALL_TO_ALL)


class SramPipelineDevice(SpecDevice):
    """Prices ops for one chip of an SRAM pipeline; `chips` is the run's chip count."""

    what = "the SRAM-pipeline model"
    # Collectives beyond one domain run over the chips' own links, `route_hops` each way (`cost`): not on a NIC.
    prices_own_scale_out = True

    def __init__(self, spec: SramPipelineSpec, chips: int, weight_bytes_per_chip: float | None = None,
                 kv_bytes_per_chip: float = 0.0) -> None:
        self.spec = spec
        self.chips = chips
        self.weight_bytes_per_chip = weight_bytes_per_chip
        self.kv_bytes_per_chip = kv_bytes_per_chip
        tiers = spec.tiers
        weights = _fill(tiers, 0.0 if weight_bytes_per_chip is None else float(weight_bytes_per_chip), ())
        kv = _fill(tiers, float(kv_bytes_per_chip), weights)
        eff = spec.memory_efficiency
        # (tier index, share of every op's bytes, bytes/s) per tier used; a bare device keeps everything in SRAM
        self._weight_tiers = _shares(tiers, weights, eff)
        self._kv_tiers = _shares(tiers, kv, eff)
        self._sram_bw = tiers[0][2] * eff

    # --- placement ----------------------------------------------------------------------------------------
    def with_resident_weights(self, weight_bytes_per_chip: float, kv_bytes_per_chip: float = 0.0) -> "SramPipelineDevice":
        """The same device with the run's weights per chip, then its peak KV cache, placed in its tiers (module
        docstring)."""
        return SramPipelineDevice(self.spec, self.chips, weight_bytes_per_chip, kv_bytes_per_chip)

    @property
    def weight_tiers(self) -> tuple[tuple[str, float], ...]:
        """(tier name, share of the weights) where this run's weights live, fastest first."""
        return tuple((self.spec.tiers[i][0], share) for i, share, _ in self._weight_tiers)

    @property
    def kv_tiers(self) -> tuple[tuple[str, float], ...]:
        """(tier name, share of the KV cache) where this run's KV cache lives, fastest first."""
        return tuple((self.spec.tiers[i][0], share) for i, share, _ in self._kv_tiers)

    # --- protocol: spec ----------------------------------------------------------------------------------
    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> SramPipelineSpec:
        return load_sram_spec(table, source)

    @property
    def compute_unit_name(self) -> str:
        return "matrix and vector units (statically scheduled)"

    @property
    def unit_clock_hz(self) -> float:
        return CLOCK_HZ

    @property
    def memory_bytes_per_chip(self) -> float:
        """Every tier's capacity: what decides whether weights + KV + workspace fit (the memory plan's rule)."""
        return float(sum(capacity for _, capacity, _ in self.spec.tiers))

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        """The peak rate weights are read at: the SRAM's for a bare device (or weights that fit it); with weights
        placed over several tiers, read one after the other, 1 / sum(share / bw) (so a roofline over it is a bound
        that holds: SN40L's 70B weights come from HBM, not SRAM)."""
        if self.weight_bytes_per_chip is None:
            return self.spec.sram_bandwidth_bytes_per_s
        return 1.0 / sum(share * self.spec.memory_efficiency / bw for _, share, bw in self._weight_tiers)

    def peak_flops_per_s(self, dtype: str) -> float:
        return self.spec.rate(dtype)

    @property
    def times_each_stage(self) -> bool:
        """A single batch walks every pipeline stage: the step is the sum of the stages' times, each stage but the
        last paying its transfer to the next (serving.StepRunner), not pp x the last stage."""
        return True

    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        """Programmable dataflow chips: every model the graph builder reads runs."""

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        return self.spec.native_dtypes

    # --- pricing -----------------------------------------------------------------------------------------------
    def _weights_s(self, nbytes: float, activations: float) -> float:
        """Seconds to read `nbytes` of weights from their tiers, one after the other, and `activations` from SRAM."""
        return activations / self._sram_bw + sum(share * nbytes / bw for _, share, bw in self._weight_tiers)

    def cost(self, op: Op) -> OpCost:
        s = self.spec
        kind = op.kind
        if kind == OpKind.ALLREDUCE:
            return self._link(self._allreduce_s(op.comm_bytes, op.group))
        if kind in _TRANSFERS:
            return self._link(s.link_latency_s + op.comm_bytes / s.link_bandwidth_bytes_per_s)
        act = op.act_in_bytes + op.act_out_bytes
        kv = op.kv_read_bytes + op.kv_write_bytes
        fixed = 0.0
        if kind in _MATMULS or kind in _ATTENTION:
            ideal = op.flops / self.spec.rate(op.dtype)
            compute = ideal / s.compute_efficiency
            fixed = s.op_latency_s
        else:
            ideal = compute = op.flops / s.vector_flops_per_s
        memory = self._weights_s(op.weight_bytes, act) + sum(share * kv / bw for _, share, bw in self._kv_tiers)
        return OpCost(compute_cycles=compute * CLOCK_HZ, memory_cycles=memory * CLOCK_HZ, fixed_s=fixed,
                      ideal_compute_cycles=ideal * CLOCK_HZ, hbm_bytes=op.weight_bytes + kv)

    def _allreduce_s(self, nbytes: float, group: int) -> float:
        s = self.spec
        if group <= 1 or nbytes <= 0.0:
            return 0.0
        if s.allreduce == "direct":  # a reduce-scatter and an all-gather, each one transfer to every peer
            hops = 2 if group <= s.chips_per_domain else 2 * s.route_hops
        else:
            hops = 2 * (group - 1)
        return hops * s.link_latency_s + nbytes * 2.0 * (group - 1) / group / s.link_bandwidth_bytes_per_s

    @staticmethod
    def _link(seconds: float) -> OpCost:
        return OpCost(link_cycles=seconds * CLOCK_HZ, hbm_bytes=0.0)

    # --- energy, limits, area -------------------------------------------------------------------------------
    def step_energy_j(self, step: Any, dtype: str) -> Any:
        """Static power for the step, plus (power_w - static) while the chip computes or reads memory (at most the
        step): a per-chip figure; arrays in, arrays out (a StepTable's columns)."""
        s = self.spec
        span = np.maximum(step.end_at - step.start_at, 0.0)
        busy = np.minimum(np.maximum(step.compute_busy_s, step.memory_busy_s), span)
        joules = s.static_power_w * span + (s.power_w - s.static_power_w) * busy
        return float(joules) if np.ndim(joules) == 0 else joules

    @property
    def link_limits(self) -> LinkLimits:
        s = self.spec
        return LinkLimits(s.link_bandwidth_bytes_per_s, s.link_latency_s, s.chips_per_domain)

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        """Published (or assumed) power per chip; no power model below it, so full load = power_w at one clock."""
        s = self.spec
        return PowerLimits(tdp_w=s.power_w, static_power_w=s.static_power_w, clock_hz=CLOCK_HZ,
                           full_load_power_w=s.power_w, capped_clock_hz=CLOCK_HZ)

    def area(self, *, check: bool = True) -> AreaBreakdown:
        raise InputError(self.spec.name, "area", "no area model for an SRAM-pipeline chip (die blocks not published)")

    def die_floorplan(self) -> DieFloorplan | None:
        return None


def _fill(tiers, nbytes: float, taken) -> tuple[float, ...]:
    """Bytes of `nbytes` in each tier, fastest first, in the room `taken` (bytes per tier) leaves; what no tier
    has room for goes to the last."""
    placed, left = [], nbytes
    for i, (_, capacity, _) in enumerate(tiers):
        room = max(capacity - (taken[i] if taken else 0.0), 0.0)
        here = left if i == len(tiers) - 1 else min(left, room)
        placed.append(here)
        left -= here
    return tuple(placed)


def _shares(tiers, placed, efficiency: float) -> tuple[tuple[int, float, float], ...]:
    """(tier index, share, achievable bytes/s) of each tier holding part of `placed`; all in SRAM when empty."""
    total = sum(placed)
    if total <= 0.0:
        return ((0, 1.0, tiers[0][2] * efficiency),)
    return tuple((i, b / total, tiers[i][2] * efficiency) for i, b in enumerate(placed) if b > 0.0)


DEVICE = SramPipelineDevice  # the registry's name for this package's device class (asicsim.core.registry)
