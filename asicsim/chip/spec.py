"""`AsicSpec`: the frozen, validated description of a transformer ASIC chip and the server it sits in.

One TOML file per chip (see `asicsim/specs/sohu.toml`) loads into this dataclass through
`asicsim.core.specfile.build_spec`; field metadata carries the validation rules (`min` exclusive lower
bound, `allow_zero`, `max`, `choices`). This class is the single source of truth for ASIC field names.

Precision support: a processing element (PE) does `macs_per_pe_per_cycle_<dtype>` multiply-accumulates a
cycle. `macs_per_pe_per_cycle_fp4 = 0` means no native FP4 datapath: FP4 work then runs at the FP8 rate
(4-bit weights are widened to FP8 as they enter the array), so FP4 only halves the weight bytes.

`programmable_area_fraction` (optional, default 0) is the programmability knob: 0 is a fixed-function chip
that runs only the dense transformer graph; above 0 the die also holds programmable cores that run any
operator, at the area and instruction energy priced by `asicsim.chip.area` and `asicsim.chip.power`.

`max_clock_hz` (optional, default 0 = `clock_hz`) is the boost ceiling of a power-managed clock: `clock_hz` is
the base clock at which every unit at full rate fits the TDP, and an op that keeps fewer units busy may run
faster, up to this (`asicsim.chip.power.op_clock_hz`). Specs derived under a binding TDP set it
(`asicsim.chip.programmability.derive_asic_spec`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from asicsim.core.device import WIDER_DATAPATHS
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Feature

__all__ = ["AsicSpec", "ARRAY_DTYPES", "DATAFLOWS", "DENSE_TRANSFORMER_FEATURES"]

DATAFLOWS = ("os", "ws", "is")  # output-, weight-, input-stationary (SCALE-Sim naming)

# dtype -> the macs_per_pe_per_cycle_* field that sets its rate (fp16 runs on the bf16 datapath).
ARRAY_DTYPES: dict[str, str] = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp4": "fp4", "int8": "int8",
                                 "int4": "int4"}


# What a fixed-function transformer chip runs when its spec does not list native_ops: the dense Llama graph.
DENSE_TRANSFORMER_FEATURES = (Feature.GEMM, Feature.GQA_ATTENTION, Feature.ROPE, Feature.RMSNORM, Feature.SWIGLU)


def _f(doc: str, default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field carrying its one-line doc and validation metadata."""
    return dataclasses.field(default=default, metadata={"doc": doc, **meta})


@dataclass(frozen=True, kw_only=True)
class AsicSpec:
    """A transformer ASIC chip (die, matrix arrays, SRAM, vector unit, HBM, links, power) and its server."""

    # --- identity ---------------------------------------------------------------------------------
    kind: str = _f("device kind; always 'asic' for this spec", choices=("asic",))
    name: str = _f("short display name")
    description: str = _f("one-line description", default="")
    # --- die ----------------------------------------------------------------------------------------
    process_node_nm: float = _f("foundry process node (marketing nm)")
    die_area_mm2: float = _f("die area")
    clock_hz: float = _f("base clock of arrays, vector unit, SRAM and the on-chip side of HBM/links: every unit "
                         "at full rate fits the TDP")
    max_clock_hz: float = _f("boost ceiling: an op that keeps fewer PEs or lanes busy runs at the clock the TDP "
                             "allows for it, up to this (asicsim.chip.power.op_clock_hz); 0 or <= clock_hz: no "
                             "boost",
                             default=0.0, allow_zero=True)
    # --- matrix engine ------------------------------------------------------------------------------
    array_count: int = _f("number of systolic matrix arrays")
    array_rows: int = _f("PE rows per array")
    array_cols: int = _f("PE columns per array")
    dataflow: str = _f("systolic dataflow: os, ws or is", choices=DATAFLOWS)
    macs_per_pe_per_cycle_bf16: int = _f("BF16 MACs per PE per cycle (fp16 runs at this rate)")
    macs_per_pe_per_cycle_fp8: int = _f("FP8 MACs per PE per cycle")
    macs_per_pe_per_cycle_fp4: int = _f("FP4 MACs per PE per cycle; 0 = none, FP4 runs at the FP8 rate",
                                          allow_zero=True)
    macs_per_pe_per_cycle_int8: int = _f("INT8 MACs per PE per cycle; 0 = no integer datapath (INT8 weights run "
                                         "widened to BF16, when asked)", default=0, allow_zero=True)
    macs_per_pe_per_cycle_int4: int = _f("INT4 MACs per PE per cycle; 0 = none (INT4 runs on the INT8 datapath, "
                                         "else BF16, when asked)", default=0, allow_zero=True)
    # --- on-chip memory and vector unit -------------------------------------------------------------
    sram_bytes: int = _f("on-chip SRAM, all banks together")
    sram_bandwidth_bytes_per_cycle: float = _f("aggregate SRAM port bandwidth")
    vector_lanes: int = _f("vector-unit elementwise operations per cycle")
    # --- HBM ----------------------------------------------------------------------------------------
    hbm_stacks: int = _f("HBM stacks on the package")
    hbm_capacity_bytes: int = _f("HBM capacity per chip")
    hbm_bandwidth_bytes_per_s: float = _f("peak HBM bandwidth per chip")
    hbm_efficiency: float = _f("achievable fraction of peak HBM bandwidth", max=1.0)
    # --- chip-to-chip -------------------------------------------------------------------------------
    link_bandwidth_bytes_per_s: float = _f("chip-to-chip bandwidth per chip, per direction")
    link_latency_s: float = _f("latency of one chip-to-chip transfer (one ring hop)", allow_zero=True)
    # --- power and server ---------------------------------------------------------------------------
    tdp_w: float = _f("chip (module) thermal design power")
    chips_per_server: int = _f("chips in one server")
    prefetch_weights: bool = _f("stream op i+1's weights during op i (double-buffered SRAM)")
    overlap_collectives: bool = _f("collectives may overlap independent compute")
    # --- programmability (asicsim/chip/area.py, programmability.py) ----------------------------------
    programmable_area_fraction: float = _f(
        "share of die area spent on programmable cores (instruction issue, register files, L1, general "
        "lanes): 0 = fixed-function transformer graph only; GPUs are ~0.5", default=0.0, allow_zero=True, max=0.95)
    # --- provenance (filled by build_spec) -----------------------------------------------------------
    native_ops: tuple[str, ...] = _f(
        "op features the fixed-function datapath runs (asicsim.workloads.graph_types.Feature); others run on the "
        "fallback, or are refused without one; empty: the dense transformer set (DENSE_TRANSFORMER_FEATURES). "
        "Ignored above programmable_area_fraction 0 (programmable cores run every op)",
        default=(), choices=Feature.ALL)
    fallback_flops_per_s: float = _f("FLOP/s of the unit that runs ops outside native_ops (a host CPU or a small "
                                     "programmable core); 0: no fallback, such models are refused",
                                     default=0.0, allow_zero=True)
    fallback_bandwidth_bytes_per_s: float = _f("bytes/s the fallback unit moves (its memory or the link to it)",
                                               default=0.0, allow_zero=True)
    fallback_latency_s: float = _f("fixed time per op sent to the fallback (hand-off and synchronisation)",
                                   default=0.0, allow_zero=True)
    fallback_description: str = _f("what the fallback unit is", default="")
    sources: tuple = ()
    assumed: frozenset = frozenset()

    @property
    def boost_clock_hz(self) -> float:
        """Highest clock an op may run at: max_clock_hz, or clock_hz when there is no boost."""
        return max(self.clock_hz, self.max_clock_hz)

    @property
    def pe_count(self) -> int:
        """Processing elements over all arrays."""
        return self.array_count * self.array_rows * self.array_cols

    def macs_per_cycle(self, dtype: str) -> float:
        """Dense MACs per cycle of the whole chip for `dtype` on the datapath that runs it (`array_dtype`)."""
        try:
            rate_field = ARRAY_DTYPES[dtype]
        except KeyError:
            raise InputError(self.name, "dtype",
                             f"matrix arrays do not run {dtype!r}; supported: {sorted(ARRAY_DTYPES)}") from None
        del rate_field
        return self.pe_count * getattr(self, f"macs_per_pe_per_cycle_{ARRAY_DTYPES[self.array_dtype(dtype)]}")

    def array_dtype(self, dtype: str) -> str:
        """The datapath `dtype` runs on: its own, else the first wider one the PEs have (fp4 -> fp8, int4 -> int8
        -> bf16); bf16 and fp8 are always present."""
        for candidate in WIDER_DATAPATHS[dtype]:
            if getattr(self, f"macs_per_pe_per_cycle_{ARRAY_DTYPES[candidate]}") > 0:
                return candidate
        return "bf16"

    def peak_flops_per_s(self, dtype: str) -> float:
        """Dense peak FLOP/s of the chip for `dtype` (2 FLOPs per MAC)."""
        return 2.0 * self.macs_per_cycle(dtype) * self.clock_hz

    @property
    def effective_hbm_bandwidth_bytes_per_s(self) -> float:
        """Achievable HBM bandwidth: peak times `hbm_efficiency`."""
        return self.hbm_bandwidth_bytes_per_s * self.hbm_efficiency

    @property
    def assumption_fields(self) -> tuple[str, ...]:
        """Names of the fields whose values are assumptions (not published), sorted."""
        return tuple(sorted(self.assumed))

    @property
    def native_features(self) -> frozenset[str] | None:
        """Op features the chip runs natively; None: every op (programmable cores)."""
        if self.programmable_area_fraction > 0.0:
            return None
        return frozenset(self.native_ops or DENSE_TRANSFORMER_FEATURES)

    @property
    def has_fallback(self) -> bool:
        return self.fallback_flops_per_s > 0.0 and self.fallback_bandwidth_bytes_per_s > 0.0

    def source_of(self, field: str) -> str:
        """The source note of `field` ('' when the spec gave none)."""
        return dict(self.sources).get(field, "")
