"""The edge-NPU spec: NPU matmul rates per dtype, vector rate, LPDDR bandwidth and the memory a model may use,
and the power figures of the phone at load. Every field carries a source or an assumption note (the TOML)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EdgeNpuSpec", "RATE_FIELDS"]

_ZERO_OK = {"allow_zero": True}
_FRACTION = {"max": 1.0}
# Matmul dtype -> the spec field with its dense rate (ops per second; 0 = no datapath for it). The 16-bit float
# datapath runs bf16 and fp16 alike (asicsim.core.device.WIDER_DATAPATHS: fp16 shares the bf16 datapath).
RATE_FIELDS = {"bf16": "fp16_flops_per_s", "fp16": "fp16_flops_per_s", "fp8": "fp8_flops_per_s",
               "int8": "int8_ops_per_s", "fp4": "fp4_flops_per_s", "int4": "int4_ops_per_s"}


@dataclass(frozen=True)
class EdgeNpuSpec:
    """One phone SoC's NPU and memory, the unit `asicsim.devices.edge_npu.device` prices."""

    kind: str
    name: str
    description: str
    clock_hz: float  # the clock the engine counts cycles in (every unit)
    int8_ops_per_s: float  # dense matmul rate of the NPU's matrix engine (ops = 2 x MACs)
    matmul_efficiency: float = field(metadata=_FRACTION)  # share of the peak a matmul reaches
    vector_flops_per_s: float  # softmax, norms, activations, attention
    lpddr_bandwidth_bytes_per_s: float
    lpddr_efficiency: float = field(metadata=_FRACTION)  # share of the peak a weight stream reaches
    lpddr_capacity_bytes: float
    model_memory_bytes: float  # what an app's model may occupy (not all of the phone's DRAM)
    tdp_w: float  # sustained power the phone allows at load
    static_power_w: float  # SoC and DRAM power that runs whether the NPU computes or waits
    int8_j_per_op: float
    lpddr_j_per_byte: float
    # other matmul dtypes (0 = no datapath; a run in it is refused unless widened)
    int4_ops_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    fp16_flops_per_s: float = field(default=0.0, metadata=_ZERO_OK)  # the 16-bit float datapath (bf16 too)
    fp8_flops_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    fp4_flops_per_s: float = field(default=0.0, metadata=_ZERO_OK)
    int4_j_per_op: float = field(default=0.0, metadata=_ZERO_OK)  # 0 = int8's
    fp16_j_per_flop: float = field(default=0.0, metadata=_ZERO_OK)  # 0 = int8's; every float format
    onchip_buffer_bytes: float = field(default=0.0, metadata=_ZERO_OK)  # activations that fit stay on chip
    sources: tuple = ()
    assumed: frozenset = frozenset()

    def rate(self, dtype: str) -> float:
        """Dense matmul ops/s in `dtype` (0: no datapath)."""
        return getattr(self, RATE_FIELDS[dtype]) if dtype in RATE_FIELDS else 0.0
