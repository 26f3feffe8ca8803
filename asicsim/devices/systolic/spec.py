"""`SystolicSpec`: one systolic-array accelerator chip (TPU, Trainium) and the slice of chips a run uses.

A processing element (PE) of a matrix unit does `macs_per_pe_per_cycle_<dtype>` multiply-accumulates a cycle;
0 means the chip has no datapath for that dtype (refused unless the run asks to widen it). Peak FLOP/s per
dtype = 2 x PEs x that rate x clock, so the clock of a chip whose clock is undisclosed is derived from its
published peak and array count (marked assumed in its TOML).

The slice: `slice_x` x `slice_y` x `slice_z` chips joined by the scale-up links (an ICI torus or mesh, or
Trainium2's NeuronLink). `chips_per_domain` is the slice's chip count and all-reduces run as rings along each
dimension of the part of the slice a group occupies (`asicsim.devices.systolic.torus`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from asicsim.core.device import WIDER_DATAPATHS
from asicsim.workloads.errors import InputError

__all__ = ["SystolicSpec"]



def _f(doc: str, default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc, **meta})


@dataclass(frozen=True, kw_only=True)
class SystolicSpec:
    """A systolic-array accelerator chip (matrix units, vector unit, on-chip memory, HBM, links, power) and its slice."""

    kind: str = _f("device kind; always 'systolic' for this spec", choices=("systolic",))
    name: str = _f("short display name")
    description: str = _f("one-line description", default="")
    # --- matrix units -------------------------------------------------------------------------------
    clock_hz: float = _f("clock of the matrix and vector units")
    array_count: int = _f("systolic matrix units per chip (MXUs / tensor engines, all cores together)")
    array_rows: int = _f("PE rows per matrix unit")
    array_cols: int = _f("PE columns per matrix unit")
    dataflow: str = _f("systolic dataflow: os, ws or is (SCALE-Sim naming)", choices=("os", "ws", "is"))
    macs_per_pe_per_cycle_bf16: int = _f("BF16 MACs per PE per cycle")
    macs_per_pe_per_cycle_fp16: int = _f("FP16 MACs per PE per cycle; 0 = no FP16 datapath", default=0,
                                         allow_zero=True)
    macs_per_pe_per_cycle_fp8: int = _f("FP8 MACs per PE per cycle; 0 = no FP8 datapath", default=0, allow_zero=True)
    macs_per_pe_per_cycle_int8: int = _f("INT8 MACs per PE per cycle; 0 = no INT8 datapath", default=0,
                                         allow_zero=True)
    macs_per_pe_per_cycle_fp4: int = _f("FP4 MACs per PE per cycle; 0 = none", default=0, allow_zero=True)
    macs_per_pe_per_cycle_int4: int = _f("INT4 MACs per PE per cycle; 0 = none", default=0, allow_zero=True)
    # --- vector unit and on-chip memory -------------------------------------------------------------
    vector_lanes: int = _f("vector-unit elementwise operations per cycle (softmax, norms, activations)")
    onchip_bytes: int = _f("software-managed on-chip memory (TPU VMEM / CMEM, Trainium SBUF), all cores")
    # --- HBM ----------------------------------------------------------------------------------------
    hbm_capacity_bytes: int = _f("HBM capacity per chip")
    hbm_bandwidth_bytes_per_s: float = _f("peak HBM bandwidth per chip")
    hbm_efficiency: float = _f("achievable fraction of peak HBM bandwidth", max=1.0)
    # --- scale-up links -----------------------------------------------------------------------------
    link_bandwidth_bytes_per_s: float = _f("scale-up bandwidth per chip, per direction, all ports together "
                                           "(half the bidirectional datasheet figure)")
    link_ports: int = _f("scale-up ports per chip (2 per torus dimension on a 2D/3D torus)")
    link_latency_s: float = _f("latency of one hop (one ring step)", allow_zero=True)
    slice_x: int = _f("slice chips along the first torus dimension")
    slice_y: int = _f("slice chips along the second torus dimension", default=1)
    slice_z: int = _f("slice chips along the third torus dimension (3D torus)", default=1)
    wraparound: bool = _f("whether the slice's dimensions close into rings (a torus); false: open lines (a mesh)",
                          default=True)
    pod_chips: int = _f("chips of the largest pod / scale-up domain the product offers (informational)")
    overlap_collectives: bool = _f("collectives may overlap independent compute (asynchronous collectives scheduled "
                                   "by the compiler; the engine interleaves two micro-batches and keeps the faster)",
                                   default=False)
    # --- compiled execution -------------------------------------------------------------------------
    step_overhead_s: float = _f("host/dispatch time per engine step of the compiled program (serial)",
                                default=0.0, allow_zero=True)
    # --- power --------------------------------------------------------------------------------------
    tdp_w: float = _f("chip thermal design power (the power with every unit at full rate)")
    sources: tuple = ()
    assumed: frozenset = frozenset()

    @property
    def pe_count(self) -> int:
        return self.array_count * self.array_rows * self.array_cols

    @property
    def slice_dims(self) -> tuple[int, ...]:
        """The slice's torus dimensions, those longer than one chip."""
        return tuple(d for d in (self.slice_x, self.slice_y, self.slice_z) if d > 1) or (1,)

    @property
    def slice_chips(self) -> int:
        return self.slice_x * self.slice_y * self.slice_z

    def rate_dtype(self, dtype: str) -> str:
        """The datapath `dtype` runs on: itself where the chip has it, else the first of its wider datapaths
        (asicsim.core.device.WIDER_DATAPATHS) the chip has."""
        try:
            order = (dtype, *WIDER_DATAPATHS[dtype])  # its own field first (fp16 has one), then the shared chain
        except KeyError:
            raise InputError(self.name, "dtype", f"matrix units do not run {dtype!r}; known: "
                                                 f"{', '.join(WIDER_DATAPATHS)}") from None
        for candidate in order:
            if getattr(self, f"macs_per_pe_per_cycle_{candidate}") > 0:
                return candidate
        raise InputError(self.name, "dtype", f"no datapath for {dtype!r} or a wider format")

    def macs_per_pe(self, dtype: str) -> int:
        """MACs one PE does a cycle in `dtype` (widened where the chip lacks it)."""
        return getattr(self, f"macs_per_pe_per_cycle_{self.rate_dtype(dtype)}")

    def peak_flops_per_s(self, dtype: str) -> float:
        """Dense peak FLOP/s of the chip in `dtype` (2 FLOPs per MAC)."""
        return 2.0 * self.pe_count * self.macs_per_pe(dtype) * self.clock_hz
