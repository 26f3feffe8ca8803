"""The Device protocol every hardware model implements, and the records it returns.

A device prices one op on one chip in the cycles of its own units ("compute", "memory", "link"); the
engine turns cycles into seconds (in one place) and decides what overlaps with what. Beyond step cost a
device states its limits as named records (`LinkLimits`, `PowerLimits`, `AreaBreakdown`, `DieFloorplan`),
so that the CLI and the analyses read any device kind the same way and never branch on `spec.kind`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind

from .area import AreaBreakdown

__all__ = ["OpCost", "LinkLimits", "PowerLimits", "DieFloorplan", "AreaBreakdown", "Device", "SpecDevice",
           "DelegatingDevice", "UNITS",
           "MATMUL_DTYPES", "WIDER_DATAPATHS", "WIDTH_CLASS"]

UNITS = ("compute", "memory", "link")
# Matmul number formats a device may run natively, widest first (`Device.supported_dtypes` keeps this order).
MATMUL_DTYPES = ("bf16", "fp16", "fp8", "int8", "fp4", "int4")
# dtype -> the datapaths that can run it, its own first, then wider ones that represent it exactly (int8 values are
# not all fp8 values, so int8 widens to bf16); a chip without its own datapath runs the first it has, when widening
# is asked for. fp16 shares the bf16 datapath.
WIDER_DATAPATHS: dict[str, tuple[str, ...]] = {
    "bf16": ("bf16",), "fp16": ("bf16",), "fp8": ("fp8", "bf16"), "int8": ("int8", "bf16"),
    "fp4": ("fp4", "fp8", "bf16"), "int4": ("int4", "int8", "bf16")}
# Integer formats borrow the float format of their width's calibration and energy constants where a device has none
# of their own (an int8 MAC is no costlier than an fp8 one: assumed, stated in docs/accelerators.md).
WIDTH_CLASS: dict[str, str] = {"int8": "fp8", "int4": "fp4"}


@dataclass(frozen=True, init=False)
class OpCost:
    """Cycles one op keeps each unit busy on one chip, with the clock of each unit on the Device.

    compute_cycles: busy cycles of the compute unit (matrix arrays / SMs / vector units), stalls excluded.
    memory_cycles: HBM cycles for traffic that cannot start before the op (activations, KV cache).
    weight_cycles: HBM cycles to bring in the op's weights; a device that prefetches may start them early.
    link_cycles: interconnect cycles (collectives, pipeline transfers), latency included.
    fixed_s: serial overhead in seconds (kernel launch, synchronisation) that nothing overlaps.
    ideal_compute_cycles: cycles at 100% utilisation of the compute unit (for utilisation reports).
    stall_cycles: compute cycles lost to operands that did not arrive in time, already in compute_cycles.
    fallback_s: seconds the op spends on the chip's fallback unit (a host CPU or small core) because the
        fixed-function datapath lacks one of its features; included in fixed_s (nothing else overlaps it).
    hbm_bytes: bytes that really cross device memory (None: all of the op's bytes, `Op.memory_bytes`); a
        device that keeps activations on chip reports less. Memory-bandwidth utilisation (MBU) counts these.
    energy_j: dynamic joules of the op where the device prices energy per op (a compute-in-memory macro's
        conversions depend on the op's shape, not only on step totals); 0 for devices that price a step's
        energy from its totals. Summed into `StepTiming.op_energy_j`.
    """

    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    weight_cycles: float = 0.0
    link_cycles: float = 0.0
    fixed_s: float = 0.0
    ideal_compute_cycles: float = 0.0
    stall_cycles: float = 0.0
    hbm_bytes: float | None = None
    fallback_s: float = 0.0  # seconds on a fallback unit (part of fixed_s): an op the datapath lacks
    energy_j: float = 0.0  # dynamic joules priced per op (0: the device prices energy from step totals)

    def __init__(self, compute_cycles: float = 0.0, memory_cycles: float = 0.0, weight_cycles: float = 0.0,
                 link_cycles: float = 0.0, fixed_s: float = 0.0, ideal_compute_cycles: float = 0.0,
                 stall_cycles: float = 0.0, hbm_bytes: float | None = None, fallback_s: float = 0.0,
                 energy_j: float = 0.0) -> None:
        """The fields in one dict update instead of a frozen `object.__setattr__` each: every priced op makes one
        (tests/test_engine.py checks the signature against the field list)."""
        self.__dict__.update(compute_cycles=compute_cycles, memory_cycles=memory_cycles, weight_cycles=weight_cycles,
                             link_cycles=link_cycles, fixed_s=fixed_s, ideal_compute_cycles=ideal_compute_cycles,
                             stall_cycles=stall_cycles, hbm_bytes=hbm_bytes, fallback_s=fallback_s,
                             energy_j=energy_j)


@dataclass(frozen=True)
class LinkLimits:
    """The chip-to-chip (scale-up) interconnect of one chip.

    bandwidth_bytes_per_s: what one chip sends per direction (a bidirectional datasheet figure halved).
    latency_s: latency of one transfer (one ring hop / one peer-to-peer copy).
    chips_per_domain: chips in one scale-up domain (a server / NVLink domain) that these links join.
    """

    bandwidth_bytes_per_s: float
    latency_s: float
    chips_per_domain: int


@dataclass(frozen=True)
class PowerLimits:
    """Power of one chip with every unit at full rate (matrix units in the dtype `power_limits` was asked for).

    tdp_w: thermal design power. static_power_w: leakage and always-on power (part of every step).
    clock_hz: the clock the datasheet peaks assume (the ASIC's base clock, the GPU's tensor clock).
    full_load_power_w: power at full load at clock_hz (may exceed tdp_w; the cap then lowers the clock).
    capped_clock_hz: the highest clock, at most clock_hz, at which full load fits tdp_w.
    """

    tdp_w: float
    static_power_w: float
    clock_hz: float
    full_load_power_w: float
    capped_clock_hz: float


@dataclass(frozen=True)
class DieFloorplan:
    """The blocks of a die other than its matrix arrays, as counts: what the reticle-die envelope
    (`asicsim.analysis.envelope`) keeps while it fills the rest of a reticle with arrays.

    fixed_mm2: NoC, HBM PHYs and controllers, links and other at the die's node, from the device's area model
    (None where the model has no data for the node: the envelope then uses its own ranges).
    """

    hbm_stacks: int
    sram_bytes: float
    vector_lanes: int
    link_bandwidth_bytes_per_s: float
    tdp_w: float
    fixed_mm2: float | None


@runtime_checkable
class Device(Protocol):
    """A hardware model: prices ops and states its limits. Implementations: AsicDevice, GpuDevice.

    Optional: a class attribute `decode_cost_by_totals = True` promises that a decode-attention op's cost depends
    only on its scalar fields (FLOPs, bytes, heads) and its sequence count, not on how cached tokens spread over
    sequences; the serving fast-forward then reuses decode step times across runs (`serving._DecodeCurves`). Absent
    means False. Two more optional members: `times_each_stage = True` makes the serving loop time a single batch
    as the sum of its pipeline stages' times (each stage but the last paying its transfer to the next) instead of
    pp x the last stage's; `with_resident_weights(weight_bytes_per_chip, kv_bytes_per_chip)` returns the device
    with a run's weights and peak KV cache placed in its memory tiers (`RunDescription.make_device` calls it; an
    SRAM pipeline reads each op's bytes from the tiers they landed in). `prices_own_scale_out = True` says the
    device already prices collectives over more chips than one scale-up domain on its own fabric (an SRAM pipeline's
    chip-to-chip routes), so `core.scale_out` leaves them to it. `cost_rows(ops)` returns the costs of ops without
    per-sequence arrays as one float array, a row per op in `kernels.accounts.COST_COLUMNS` order (OpCost's fields,
    hbm_bytes resolved to `Op.memory_bytes` where `cost` leaves it None), equal to `cost` bit for bit, or None where
    the device prices such ops one by one; a serial step engine then sums a new group of them in one pass.
    `decode_attention_pricer(op)` returns, for decode attention ops equal to `op` but in their cached tokens, a function
    of (seq_past, flops, kv_read_bytes) giving such an op's cost as a row of `COST_COLUMNS`, equal to `cost` bit for
    bit, or None where the device prices such an op another way; a scheduled step engine then times a decode run's
    steps without building their ops (`StepEngine.decode_fields`). `systolic_attention_terms(op)` returns, for an
    attention op that `cost` prices as `kernels.decode_run.attention_row` does (plain causal attention on systolic
    arrays at one clock), that kernel's terms (`ATTENTION_TERMS`), else None; the serving loop then times a decode
    run, or a mixed step, in one jitted call (`StepRunner.decode_run`, `StepRunner.mixed_step`).

    Device packages are found through `asicsim.core.registry` by the spec's `kind`. Every spec carries
    `kind`, `name`, `description`, `sources` and `assumed` (`asicsim.core.specfile.build_spec`); anything
    else a caller needs from a device is a member here, so callers never read kind-specific spec fields.
    """

    spec: Any
    chips: int

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> Any:
        """Validate a parsed TOML table into this device's frozen spec dataclass."""

    @property
    def name(self) -> str: ...

    @property
    def compute_unit_name(self) -> str:
        """What the compute unit is, for timelines and reports (e.g. "systolic arrays", "SMs")."""

    @property
    def effects(self) -> Mapping[str, bool]:
        """The modelled effects that can be switched on or off, with their current state (may be empty)."""

    def with_effects(self, changes: Mapping[str, bool]) -> Any:
        """The same device with the named effects switched (InputError for a name not in `effects`)."""

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
        """Joules one chip spends in one engine step (a StepRecord), weights in `dtype`; given a StepTable's
        columns (`StepTable.columns()`: every field an array), an array of every step's joules."""

    # --- what it runs ---------------------------------------------------------------------------------
    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        """Matmul dtypes with a native rate (in MATMUL_DTYPES order); others run widened to one of these."""

    @property
    def op_kinds(self) -> frozenset[str]:
        """The `OpKind` values this device prices."""

    def missing_features(self, model: Any) -> tuple[str, ...]:
        """Op features of `model` (workloads.graph.model_features) this device lacks a datapath for and runs on
        its fallback unit; empty for a programmable device."""

    # --- limits -------------------------------------------------------------------------------------------
    @property
    def link_limits(self) -> LinkLimits:
        """Chip-to-chip bandwidth per direction, latency, and chips per scale-up domain."""

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        """TDP, static power, full-load power and the clock the TDP allows at full load in `dtype`
        (None: the device's own full-load reference dtype)."""

    def area(self, *, check: bool = True) -> AreaBreakdown:
        """Die area by block; with `check`, InputError over the reticle or the HBM beachfront (and where the
        device has no area model for this chip)."""

    def die_floorplan(self) -> DieFloorplan | None:
        """The non-array blocks for the reticle-die envelope that bounds a chip of undisclosed peaks; None
        where that envelope does not describe the die (a GPU)."""

    @property
    def cluster(self) -> Any:
        """How chips of this spec make a deployment (`asicsim.core.cluster.Cluster`): scale-up domain, scale-out
        network, host power per chip, facility PUE."""


class SpecDevice:
    """Members most device classes share, so each package writes only what differs: the spec's name, no switchable
    effects (`what` names the model in the refusal), one clock for every unit (`unit_clock_hz`), no weight prefetch,
    no collective overlap, every op kind priced and no op on a fallback unit. A device overrides what it does
    differently (the ASIC prefetches weights, a fixed-function chip lacks features)."""

    what = "this device model"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def effects(self) -> Mapping[str, bool]:
        """None switchable: every term follows from the spec."""
        return {}

    def with_effects(self, changes: Mapping[str, bool]) -> Any:
        if changes:
            raise InputError(self.spec.name, "effects", f"{self.what} has no switchable effects, got {sorted(changes)}")
        return self

    @property
    def unit_clock_hz(self) -> float:
        """The clock of every unit (compute, memory, link)."""
        return self.spec.clock_hz

    @property
    def clocks_hz(self) -> Mapping[str, float]:
        c = self.unit_clock_hz
        return {"compute": c, "memory": c, "link": c}

    @property
    def prefetch_weights(self) -> bool:
        return False

    @property
    def overlap_collectives(self) -> bool:
        return False

    @property
    def op_kinds(self) -> frozenset[str]:
        """Every op kind of the graph (a programmable device)."""
        return frozenset(OpKind.ALL)

    def missing_features(self, model: Any) -> tuple[str, ...]:
        return ()

    @property
    def cluster(self) -> Any:
        """The deployment this chip is built into (`asicsim.core.cluster`): its spec's entry in clusters.toml, else
        the defaults, with this device's scale-up domain."""
        from .cluster import cluster_for

        return cluster_for(self.spec.name, self.link_limits.chips_per_domain, self.power_limits().tdp_w)


class DelegatingDevice:
    """A device that is another device (`inner`) seen differently: every protocol member is the inner device's unless
    a subclass overrides it (a rack renames it and gives its domain and cluster; `core.scale_out` re-prices collectives
    across domains). `_wrap(inner)` builds the same view of another inner device (what `with_effects` and the optional
    `with_resident_weights` return); optional members the inner device has are found through `__getattr__`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def _wrap(self, inner: Any) -> "DelegatingDevice":  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        value = getattr(self.inner, name)
        if name == "with_resident_weights":
            return lambda *args, **kw: self._wrap(value(*args, **kw))
        return value

    def with_effects(self, changes: Mapping[str, bool]) -> "DelegatingDevice":
        return self._wrap(self.inner.with_effects(changes))

    spec = property(lambda self: self.inner.spec)
    chips = property(lambda self: self.inner.chips)
    name = property(lambda self: self.inner.name)
    compute_unit_name = property(lambda self: self.inner.compute_unit_name)
    effects = property(lambda self: self.inner.effects)
    clocks_hz = property(lambda self: self.inner.clocks_hz)
    memory_bytes_per_chip = property(lambda self: self.inner.memory_bytes_per_chip)
    memory_bandwidth_bytes_per_s = property(lambda self: self.inner.memory_bandwidth_bytes_per_s)
    prefetch_weights = property(lambda self: self.inner.prefetch_weights)
    overlap_collectives = property(lambda self: self.inner.overlap_collectives)
    supported_dtypes = property(lambda self: self.inner.supported_dtypes)
    op_kinds = property(lambda self: self.inner.op_kinds)
    link_limits = property(lambda self: self.inner.link_limits)
    cluster = property(lambda self: self.inner.cluster)

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> Any:  # pragma: no cover - subclasses that load
        raise NotImplementedError

    def cost(self, op: Op) -> OpCost:
        return self.inner.cost(op)

    def cost_rows(self, ops: Any) -> Any:
        """The inner device's cost rows (optional, `Device`) where this view prices ops as the inner device does;
        None where a subclass re-prices some (its own `cost`): the engine then asks that `cost` op by op."""
        rows = getattr(self.inner, "cost_rows", None)
        if rows is None or type(self).cost is not DelegatingDevice.cost:
            return None
        return rows(ops)

    def decode_attention_pricer(self, op: Op) -> Any:
        """The inner device's decode attention pricer (optional, `Device`) where this view prices ops as the inner
        device does; None where a subclass re-prices some (its own `cost`), as for `cost_rows`."""
        pricer = getattr(self.inner, "decode_attention_pricer", None)
        if pricer is None or type(self).cost is not DelegatingDevice.cost:
            return None
        return pricer(op)

    def systolic_attention_terms(self, op: Op) -> Any:
        """The inner device's terms (optional, `Device`) where this view prices ops as the inner device does."""
        terms = getattr(self.inner, "systolic_attention_terms", None)
        if terms is None or type(self).cost is not DelegatingDevice.cost:
            return None
        return terms(op)

    def peak_flops_per_s(self, dtype: str) -> float:
        return self.inner.peak_flops_per_s(dtype)

    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        self.inner.check_model(config, source)

    def step_energy_j(self, step: Any, dtype: str) -> Any:
        return self.inner.step_energy_j(step, dtype)

    def missing_features(self, model: Any) -> tuple[str, ...]:
        return self.inner.missing_features(model)

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        return self.inner.power_limits(dtype)

    def area(self, *, check: bool = True) -> AreaBreakdown:
        return self.inner.area(check=check)

    def die_floorplan(self) -> DieFloorplan | None:
        return self.inner.die_floorplan()
