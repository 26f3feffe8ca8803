"""The Device protocol every hardware model implements, and the per-op cost record it returns.

A device prices one op on one chip in the cycles of its own units ("compute", "memory", "link"); the
engine turns cycles into seconds (in one place) and decides what overlaps with what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

from asicsim.workloads.graph_types import Op

__all__ = ["OpCost", "Device", "UNITS"]

UNITS = ("compute", "memory", "link")


@dataclass(frozen=True)
class OpCost:
    """Cycles one op keeps each unit busy on one chip, with the clock of each unit on the Device.

    compute_cycles: busy cycles of the compute unit (matrix arrays / SMs / vector units), stalls excluded.
    memory_cycles: HBM cycles for traffic that cannot start before the op (activations, KV cache).
    weight_cycles: HBM cycles to bring in the op's weights; a device that prefetches may start them early.
    link_cycles: interconnect cycles (collectives, pipeline transfers), latency included.
    fixed_s: serial overhead in seconds (kernel launch, synchronisation) that nothing overlaps.
    ideal_compute_cycles: cycles at 100% utilisation of the compute unit (for utilisation reports).
    stall_cycles: compute cycles lost to operands that did not arrive in time, already in compute_cycles.
    hbm_bytes: bytes that really cross device memory (None: all of the op's bytes, `Op.memory_bytes`); a
        device that keeps activations on chip reports less. Memory-bandwidth utilisation (MBU) counts these.
    """

    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    weight_cycles: float = 0.0
    link_cycles: float = 0.0
    fixed_s: float = 0.0
    ideal_compute_cycles: float = 0.0
    stall_cycles: float = 0.0
    hbm_bytes: float | None = None


@runtime_checkable
class Device(Protocol):
    """A hardware model: prices ops and states its limits. Implementations: AsicDevice, GpuDevice."""

    spec: Any
    chips: int

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> Any:
        """Validate a parsed TOML table into this device's frozen spec dataclass."""

    @property
    def name(self) -> str: ...

    @property
    def clocks_hz(self) -> Mapping[str, float]:
        """Clock of each unit in UNITS."""

    @property
    def memory_bytes_per_chip(self) -> float:
        """Device memory (HBM) capacity usable for weights, KV cache and activations."""

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        """Peak (datasheet) memory bandwidth per chip."""

    def peak_flops_per_s(self, dtype: str) -> float:
        """Dense matrix peak FLOP/s per chip for `dtype`."""

    @property
    def prefetch_weights(self) -> bool:
        """Whether weight streaming for op i+1 may overlap op i (double-buffered on-chip SRAM)."""

    @property
    def overlap_collectives(self) -> bool:
        """Whether collectives may overlap independent compute (split-batch interleaving)."""

    def cost(self, op: Op) -> OpCost:
        """Cycles one op costs on one chip."""

    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        """InputError if this hardware cannot run the model described by a raw HF config dict."""

    def step_energy_j(self, step: Any, dtype: str) -> float:
        """Joules one chip spends in one engine step (a StepRecord), weights in `dtype`."""
