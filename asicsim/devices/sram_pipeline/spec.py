"""SramPipelineSpec: a chip whose weights live in on-chip SRAM, with up to two slower memory tiers behind it.

Tiers, fastest first: on-chip SRAM (`sram_*`), an external tier (`external_*`: HBM, or a weight store such as
Cerebras MemoryX reached over the network) and a capacity tier (`capacity_*`: SN40L's DDR). A tier of 0 bytes is
absent. Peaks per matmul dtype are dense; a dtype at 0 has no datapath (it runs widened, when asked, on the first
wider one the chip has: `asicsim.core.device.WIDER_DATAPATHS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from asicsim.core.device import MATMUL_DTYPES, WIDER_DATAPATHS
from asicsim.core.specfile import build_spec
from asicsim.workloads.errors import InputError

__all__ = ["SramPipelineSpec", "load_sram_spec", "PEAK_FIELDS"]

_ZERO_OK = {"allow_zero": True}
_FRACTION = {"max": 1.0}
# matmul dtype -> the spec field of its dense peak (fp16 shares the bf16 datapath)
PEAK_FIELDS = {"bf16": "peak_bf16_flops_per_s", "fp16": "peak_bf16_flops_per_s", "fp8": "peak_fp8_flops_per_s",
               "int8": "peak_int8_ops_per_s", "fp4": "peak_fp4_flops_per_s", "int4": "peak_int4_ops_per_s"}


@dataclass(frozen=True)
class SramPipelineSpec:
    """One chip (a Groq LPU, an SN40L socket) or one wafer (a Cerebras WSE-3 in its CS-3) of an SRAM pipeline."""

    name: str
    kind: str = field(metadata={"choices": ("sram-pipeline",)})
    description: str
    # --- memory tiers (per chip) ---
    sram_bytes: float
    sram_bandwidth_bytes_per_s: float
    external_name: str = ""
    external_bytes: float = field(default=0.0, metadata=_ZERO_OK)
    external_bandwidth_bytes_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    capacity_name: str = ""
    capacity_bytes: float = field(default=0.0, metadata=_ZERO_OK)
    capacity_bandwidth_bytes_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    # --- compute (dense peaks; 0 = no datapath) ---
    peak_bf16_flops_per_s: float = 0.0
    peak_fp8_flops_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    peak_int8_ops_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    peak_fp4_flops_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    peak_int4_ops_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    vector_flops_per_s: float = 0.0
    compute_efficiency: float = field(default=1.0, metadata=_FRACTION)
    memory_efficiency: float = field(default=1.0, metadata=_FRACTION)
    # fill and drain of the datapath per matmul or attention op: the first result leaves once the operands crossed
    # the array (Groq, SN40L) or the wafer's mesh (Cerebras); paid serially, op after op
    op_latency_s: float = field(default=0.0, metadata=_ZERO_OK)
    # --- chip-to-chip ---
    link_bandwidth_bytes_per_s: float = 0.0
    link_latency_s: float = 0.0
    chips_per_domain: int = 1
    allreduce: str = field(default="ring", metadata={"choices": ("ring", "direct")})
    # links a transfer crosses to reach a chip outside its domain (a Dragonfly's local-global-local route); the
    # direct all-reduce pays it per phase beyond the domain
    route_hops: int = 1
    # --- power (per chip, its share of the system included where the vendor states only a system figure) ---
    power_w: float = 0.0
    static_power_w: float = 0.0
    sources: tuple[tuple[str, str], ...] = ()
    assumed: frozenset[str] = frozenset()

    def peak(self, dtype: str) -> float:
        """Dense peak of `dtype`'s own datapath (0 where the chip has none)."""
        return float(getattr(self, PEAK_FIELDS[dtype]))

    def rate(self, dtype: str) -> float:
        """The peak `dtype` runs at: its own datapath's, else the first wider one the chip has (widening)."""
        for candidate in WIDER_DATAPATHS.get(dtype, (dtype,)):
            if self.peak(candidate) > 0.0:
                return self.peak(candidate)
        return self.peak_bf16_flops_per_s

    @property
    def native_dtypes(self) -> tuple[str, ...]:
        """Matmul dtypes with a datapath of their own, in MATMUL_DTYPES order."""
        return tuple(d for d in MATMUL_DTYPES if self.peak(d) > 0.0)

    @property
    def tiers(self) -> tuple[tuple[str, float, float], ...]:
        """(name, bytes, bytes/s) of each memory tier present, fastest first."""
        rows = (("SRAM", self.sram_bytes, self.sram_bandwidth_bytes_per_s),
                (self.external_name or "external", self.external_bytes, self.external_bandwidth_bytes_per_s),
                (self.capacity_name or "capacity", self.capacity_bytes, self.capacity_bandwidth_bytes_per_s))
        return tuple(r for r in rows if r[1] > 0.0)


def load_sram_spec(table: Mapping[str, Any], source: str) -> SramPipelineSpec:
    """Validate a TOML table into a SramPipelineSpec; every tier with bytes needs a bandwidth (InputError)."""
    spec = build_spec(SramPipelineSpec, dict(table), source)
    for tier in ("external", "capacity"):
        if getattr(spec, f"{tier}_bytes") > 0.0 and getattr(spec, f"{tier}_bandwidth_bytes_per_s") <= 0.0:
            raise InputError(source, f"{tier}_bandwidth_bytes_per_s", f"must be > 0 when {tier}_bytes is given")
    for name in ("peak_bf16_flops_per_s", "vector_flops_per_s", "link_bandwidth_bytes_per_s", "link_latency_s",
                 "power_w"):
        if getattr(spec, name) <= 0.0:
            raise InputError(source, name, "missing or not > 0")
    if spec.static_power_w > spec.power_w:
        raise InputError(source, "static_power_w", f"{spec.static_power_w:g} W exceeds power_w {spec.power_w:g} W")
    return spec
