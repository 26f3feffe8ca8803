"""GpuSpec: one GPU (and its NVLink server) as a frozen, validated record loaded from a TOML spec file.

Datasheet figures (SMs, clock, dense peaks, HBM, L2, NVLink, TDP, die area) sit next to calibration
constants fitted on operator-level microbenchmarks (achievable HBM fraction, GEMM and attention
efficiencies, fixed kernel latencies, an NCCL all-reduce bus-bandwidth curve, launch overhead). A dtype the
chip lacks has peak 0 and runs at the next wider dtype's rate (see `GpuDevice.peak_flops_per_s`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from asicsim.core.specfile import build_spec
from asicsim.workloads.errors import InputError

from .options import STACKS

__all__ = ["GpuSpec", "NCCL_CURVE_FIELDS", "DEFAULT_STACK", "load_gpu_spec"]

DEFAULT_STACK = "trtllm-0.14"  # the stack the NVIDIA specs' published numbers were measured on

# nccl-tests message sizes (bytes, powers of two as nccl-tests prints them) of the busbw curve fields.
NCCL_CURVE_FIELDS: tuple[tuple[str, float], ...] = (
    ("nccl_busbw_1k_bytes_per_s", 2.0**10),
    ("nccl_busbw_16k_bytes_per_s", 2.0**14),
    ("nccl_busbw_256k_bytes_per_s", 2.0**18),
    ("nccl_busbw_1m_bytes_per_s", 2.0**20),
    ("nccl_busbw_8m_bytes_per_s", 2.0**23),
    ("nccl_busbw_32m_bytes_per_s", 2.0**25),
    ("nccl_busbw_128m_bytes_per_s", 2.0**27),
    ("nccl_busbw_1g_bytes_per_s", 2.0**30),
    ("nccl_busbw_8g_bytes_per_s", 2.0**33),
)

_FRACTION = {"max": 1.0}
_MAY_BE_ZERO = {"allow_zero": True}


@dataclass(frozen=True)
class GpuSpec:
    """A GPU model's numbers. Every numeric field names its unit; `sources` holds each field's note."""

    name: str
    kind: str = field(metadata={"choices": ("gpu",)})
    description: str
    # --- datasheet ---
    sm_count: int
    tensor_clock_hz: float
    dense_bf16_flops_per_s: float
    dense_fp8_flops_per_s: float = field(metadata=_MAY_BE_ZERO)
    dense_fp4_flops_per_s: float = field(metadata=_MAY_BE_ZERO)
    hbm_capacity_bytes: float
    hbm_bandwidth_bytes_per_s: float
    l2_bytes: float
    nvlink_bandwidth_bytes_per_s: float
    gpus_per_server: int
    tdp_w: float
    die_area_mm2: float = field(metadata=_MAY_BE_ZERO)  # 0: not published (a chiplet package, say)
    # --- calibration: memory ---
    hbm_achievable_fraction: float = field(metadata=_FRACTION)
    memory_kernel_latency_s: float = field(metadata=_MAY_BE_ZERO)
    # --- calibration: GEMM ---
    gemm_efficiency_bf16: float = field(metadata=_FRACTION)
    gemm_efficiency_fp8: float = field(metadata=_FRACTION)
    gemm_latency_s: float = field(metadata=_MAY_BE_ZERO)
    gemm_tile_m: int
    gemm_tile_n_wide: int
    gemm_tile_n_narrow: int
    gemm_narrow_tile_efficiency: float = field(metadata=_FRACTION)
    gemm_split_k_min_depth: int
    # --- calibration: attention ---
    attention_efficiency_bf16: float = field(metadata=_FRACTION)
    attention_efficiency_fp8: float = field(metadata=_FRACTION)
    attention_block_q: int
    attention_block_kv: int
    # --- calibration: collectives (nccl-tests all-reduce busbw, measured over nccl_group GPUs) ---
    nccl_group: int
    nccl_busbw_1k_bytes_per_s: float
    nccl_busbw_16k_bytes_per_s: float
    nccl_busbw_256k_bytes_per_s: float
    nccl_busbw_1m_bytes_per_s: float
    nccl_busbw_8m_bytes_per_s: float
    nccl_busbw_32m_bytes_per_s: float
    nccl_busbw_128m_bytes_per_s: float
    nccl_busbw_1g_bytes_per_s: float
    nccl_busbw_8g_bytes_per_s: float
    p2p_efficiency: float = field(metadata=_FRACTION)
    p2p_latency_s: float = field(metadata=_MAY_BE_ZERO)
    # --- software stack ---
    launch_overhead_s: float = field(metadata=_MAY_BE_ZERO)
    graph_launch_overhead_s: float = field(metadata=_MAY_BE_ZERO)
    cuda_graphs: bool = True
    # --- collectives in groups smaller than the curve's (optional; 0 = the curve applies to every group) ---
    # Groups below `nvls_min_group` GPUs get no NVLink SHARP gain: their busbw is capped at the ring's.
    nvls_min_group: int = field(default=0, metadata=_MAY_BE_ZERO)
    nccl_ring_busbw_bytes_per_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # --- datasheet, optional: integer tensor-core peaks (dense ops/s); 0 = no integer datapath (int weights then run widened, when asked)
    dense_int8_flops_per_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    dense_int4_flops_per_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # --- memory, optional: bytes the CUDA runtime reports as total (cudaMemGetInfo) when measured; the memory
    # plans use it instead of the datasheet capacity (0 = the datasheet capacity) ---
    hbm_usable_bytes: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # --- memory, optional: share of peak a read-only stream reaches (0 = reads as fast as a copy) ---
    hbm_read_fraction: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    # --- GEMM, optional: share of peak at which a GEMM streams its weights (0 = a read-only stream's) ---
    gemm_weight_stream_fraction: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    # --- GEMM, optional: efficiency of the fp4 tensor-core path (0 = fp8's) ---
    gemm_efficiency_fp4: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    # --- power limit, optional: the rate compute-bound tensor work holds once the board sits at its power limit,
    # as a share of the rate a kernel timed alone for milliseconds reaches (the rate the GEMM and attention
    # efficiencies were calibrated on); 1 = no sustained-load measurement, no throttle (GpuOptions.sustained_power_cap) ---
    sustained_compute_fraction: float = field(default=1.0, metadata={"max": 1.0})
    # --- measured serving-stack operators, optional (0 = the term is off; docs/gpu-calibration.md) ---
    # Decode attention as the serving stack runs it (RoPE + KV append + the paged attention kernel): a fixed
    # cost, the KV cache streamed at this share of HBM peak, and per (sequence x query head) work.
    decode_attention_fixed_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    decode_attention_stream_fraction: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    decode_attention_head_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # Prefill attention in the serving stack: its kernels' fixed cost and the efficiency its context-attention
    # kernel reaches on bf16 / fp8 inputs (0 = the FlashAttention-3 efficiencies above).
    prefill_attention_fixed_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    prefill_attention_efficiency_bf16: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    prefill_attention_efficiency_fp8: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    # Fixed cost of a stack's separate activation-quantize kernel before an fp8/fp4 GEMM (GpuOptions).
    quantize_kernel_fixed_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # Latency of the serving stack's custom (one-shot) all-reduce kernel (0 = p2p_latency_s).
    custom_allreduce_latency_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # --- mixture of experts, optional: a grouped expert GEMM's efficiency relative to one dense GEMM of the same
    # total shape (1 = equal; calibrated on the MoE operator tables where measured) ---
    grouped_gemm_efficiency: float = field(default=1.0, metadata={"max": 1.0})
    # Per executed format where it differs (0 = grouped_gemm_efficiency).
    grouped_gemm_efficiency_fp8: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    grouped_gemm_efficiency_fp4: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    # A grouped GEMM's serial overhead: a fixed cost per kernel and a cost per active expert (each expert's
    # problem set-up, weight-tile prologue and tail), both 0 = off.
    grouped_gemm_fixed_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    grouped_gemm_expert_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # --- multi-head latent attention, optional (0 = priced as GQA attention with the terms above) ---
    # Decode (absorbed; every head reads the one shared latent): fixed cost, per (sequence x query head) work
    # and the share of the executed format's peak its FLOPs reach (the latent streams at
    # decode_attention_stream_fraction). Prefill: the context kernel's efficiency (bf16 / fp8 inputs).
    mla_decode_fixed_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    mla_decode_head_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    mla_decode_efficiency_bf16: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    mla_decode_efficiency_fp8: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    mla_prefill_efficiency_bf16: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    mla_prefill_efficiency_fp8: float = field(default=0.0, metadata={"allow_zero": True, "max": 1.0})
    # MLA prefill's work per (sequence x query head) beside its FLOPs and bytes (0 = none).
    mla_prefill_head_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # --- expert-parallel all-to-all, optional (0 = NVLink one way x p2p_efficiency after p2p_latency_s) ---
    # The serving stack's dispatch/combine kernels: latency and the rate at which the op's message (each token's
    # top-k hidden vectors bound for other GPUs, as workloads/layers.py counts it) leaves a GPU.
    all_to_all_latency_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    all_to_all_bytes_per_s: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    # --- descriptive names (optional): the generic field names above (`sm_count`, `nvlink_*`, `nccl_*`,
    # `cuda_graphs`) keep their meaning on any GPU-like chip; these say what they stand for on this one ---
    compute_unit_name: str = "SMs (tensor cores + CUDA cores)"
    link_name: str = "NVLink"
    collective_library: str = "NCCL"
    # The serving stack (gpusim.options STACKS) whose switches the device models unless given others.
    serving_stack: str = field(default=DEFAULT_STACK, metadata={"choices": tuple(STACKS)})
    # Memory-side last-level cache beside L2 (AMD Infinity Cache), bytes; descriptive, not priced (0 = none).
    llc_bytes: float = field(default=0.0, metadata=_MAY_BE_ZERO)
    sources: tuple = ()
    assumed: frozenset = frozenset()

    def nccl_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(message sizes in bytes, busbw in bytes/s), ascending by size, for the collectives kernel."""
        sizes = np.array([size for _, size in NCCL_CURVE_FIELDS], dtype=np.float64)
        busbw = np.array([getattr(self, name) for name, _ in NCCL_CURVE_FIELDS], dtype=np.float64)
        return sizes, busbw

    def busbw_cap_bytes_per_s(self, group: int) -> float:
        """Most busbw an all-reduce over `group` GPUs reaches (inf where the measured curve applies as is)."""
        if 1 < group < self.nvls_min_group and self.nccl_ring_busbw_bytes_per_s > 0.0:
            return self.nccl_ring_busbw_bytes_per_s
        return float("inf")

    @property
    def hbm_read_bytes_per_s(self) -> float:
        """Achievable bandwidth of a read-only stream (STREAM dot); a copy's where none was measured."""
        fraction = self.hbm_read_fraction or self.hbm_achievable_fraction
        return self.hbm_bandwidth_bytes_per_s * fraction

    @property
    def gemm_weight_bytes_per_s(self) -> float:
        """Rate at which a GEMM kernel streams its weight operand (skinny GEMMs are bound by it)."""
        return self.hbm_bandwidth_bytes_per_s * self.gemm_weight_stream_fraction if self.gemm_weight_stream_fraction \
            else self.hbm_read_bytes_per_s

    @property
    def hbm_write_bytes_per_s(self) -> float:
        """Write bandwidth that, with the read bandwidth, reproduces the copy: a copy reads and writes each
        byte, so its seconds per byte copied = 1 / read + 1 / write."""
        copy_s_per_byte = 2.0 / (self.hbm_bandwidth_bytes_per_s * self.hbm_achievable_fraction)
        return 1.0 / (copy_s_per_byte - 1.0 / self.hbm_read_bytes_per_s)

    def source_of(self, field_name: str) -> str:
        """The source note of a field ('' when none)."""
        return dict(self.sources).get(field_name, "")


def load_gpu_spec(table: Mapping[str, Any], source: str) -> GpuSpec:
    """Validate a parsed TOML table into a GpuSpec (InputError naming `source` and the field)."""
    spec = build_spec(GpuSpec, dict(table), source)
    if 0.0 < spec.hbm_read_fraction < spec.hbm_achievable_fraction:
        raise InputError(source, "hbm_read_fraction",
                         f"{spec.hbm_read_fraction:g} is below hbm_achievable_fraction {spec.hbm_achievable_fraction:g}: "
                         "a read-only stream is never slower than a copy")
    return spec
