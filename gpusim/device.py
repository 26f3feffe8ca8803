"""GpuDevice: prices transformer ops on one GPU of an NVLink server (the Device protocol).

Every unit is counted in cycles of the tensor clock (HBM and NVLink are modelled as bandwidths, so their
cycles are seconds x that clock). Per op: tensor work (GEMM waves, FlashAttention blocks) plus its kernel
latency goes to compute cycles; HBM traffic at the achievable bandwidth (weights separately) plus a
memory-kernel latency to memory/weight cycles; collectives to link cycles. The engine takes the slowest,
so nothing is counted twice. CPU launch cost is asynchronous: only the part longer than the kernel itself
is serial (`fixed_s`), and CUDA Graph replay shrinks it. Without `options`, the device models the stack the
published GPU numbers were measured on (the spec's `serving_stack`: `DEFAULT_STACK`, TensorRT-LLM, for the
NVIDIA specs; vLLM for the AMD and Intel ones).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, Mapping, Sequence

import numpy as np

from asicsim.kernels.attention import attention_flops, kv_cache_bytes, prefill_attention_compute_s
from asicsim.kernels.collectives import curve_allreduce_time_s
from asicsim.kernels import gpu_price
from asicsim.kernels.gpu_gemm import gemm_compute
from asicsim.kernels.memory import transfer_time_s
from asicsim.core.device import (MATMUL_DTYPES, WIDER_DATAPATHS, WIDTH_CLASS, AreaBreakdown, LinkLimits, OpCost,
                                 PowerLimits, SpecDevice)
from asicsim.workloads.dtypes import dtype_bytes
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import (Feature, Op, OpKind, attention_flops_scale, grouped_as_dense,
                                           plain_attention)

from .area import area_breakdown
from .options import ONESHOT_ALLREDUCE_MAX_BYTES, GpuOptions
from .power import capped_clock_hz, onchip_memory_j, onchip_path_pj_per_bit, power_w, static_power_w
from .power import step_energy_j as _step_energy_j
from .spec import DEFAULT_STACK, GpuSpec, load_gpu_spec

__all__ = ["GpuDevice", "DEVICE", "DEFAULT_STACK", "FULL_LOAD_DTYPE"]

# Matmul dtype of the full load `power_limits` quotes by default: the datasheet's headline dense rate (a GPU
# without fp8 runs it as bf16).
FULL_LOAD_DTYPE = "fp8"
# Op names (workloads.graph) the fusion switches act on.
_RESIDUAL_OPS = frozenset({"attn_residual", "mlp_residual"})
_RESIDUAL_NORMS = frozenset({"input_norm", "post_attention_norm", "final_norm"})
_EMBEDDING_ALLREDUCE = "embedding_allreduce"
_SAMPLE, _SAMPLE_ALLREDUCE = "sample", "sample_allreduce"
# HBM bytes per full-vocabulary logit when logits are gathered: bf16 read and fp32 written by the cast, fp32
# read by the sampler.
_GATHERED_LOGIT_READ_BYTES = 2.0 + 4.0
_GATHERED_LOGIT_WRITE_BYTES = 4.0
_GATHERED_LOGIT_WIRE_BYTES = 2.0  # the all-gather moves bf16 logits
_ACT_BYTES = 2.0  # bf16 activations: what a separate quantize kernel reads per element
# Grouped expert GEMMs (workloads/layers.py names) whose hidden-width token rows a permute kernel moves: the
# gate/up GEMM's input rows (gathered into expert order), the down GEMM's output rows (un-permuted and summed).
_MOE_PERMUTED_ROWS = {"experts_gate_up": "act_in_bytes", "experts_down": "act_out_bytes"}

# Tensor-core formats from narrowest to widest; a format the chip lacks runs at the next wider one's rate.
_WIDER = WIDER_DATAPATHS


# An op's fields `cost_rows` reads (from its __dict__): what fixes its static values, and its VALUE_COLUMNS.
_STATIC_KEY = operator.itemgetter("name", "kind", "dtype", "group")
_VALUES = operator.itemgetter(*gpu_price.VALUE_COLUMNS)
# Memory-bound kinds priced as one streaming kernel each (GpuDevice._streamed_bytes).
_STREAMED = frozenset((OpKind.NORM, OpKind.ELEMENTWISE, OpKind.EMBEDDING))
# Kernels the power-limit throttle slows (GpuOptions.sustained_power_cap): GEMMs and prefill attention.
_THROTTLED = frozenset((OpKind.MATMUL, OpKind.MOE_MATMUL, OpKind.ATTENTION_PREFILL))


class GpuDevice(SpecDevice):
    """One GPU model in a server of `chips` GPUs; `options` switches modelled effects on and off."""

    # A decode-attention op is priced from its totals (FLOPs, bytes, sequences), never from how the cached tokens
    # spread over sequences: the serving fast-forward reuses decode step times on it (serving._DecodeCurves).
    decode_cost_by_totals = True

    def __init__(self, spec: GpuSpec, chips: int = 1, options: GpuOptions | None = None) -> None:
        if int(chips) < 1:
            raise InputError(spec.name, "chips", f"must be >= 1, got {chips!r}")
        self.spec = spec
        self.chips = int(chips)
        self.options = options or GpuOptions.for_stack(spec.serving_stack)
        self._nccl_sizes, self._nccl_busbw = spec.nccl_curve()
        # What the spec and options fix, read by every priced op (neither changes on a device).
        self._clock_hz = spec.tensor_clock_hz
        self._launch_overhead_s = self._launch_s()
        self._gemm_latency_s = self._latency(spec.gemm_latency_s)
        self._memory_latency_s = self._latency(spec.memory_kernel_latency_s)
        self._throttled = self.options.sustained_power_cap and spec.sustained_compute_fraction < 1.0
        self._hbm_read_bytes_per_s, self._hbm_write_bytes_per_s = spec.hbm_read_bytes_per_s, spec.hbm_write_bytes_per_s
        self._dtype_memo: dict[str, tuple[str, float, float, float]] = {}  # `_per_dtype`
        self._attention_memo: dict[tuple, tuple] = {}  # `_attention_statics`

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> GpuSpec:
        """Validate a parsed TOML table into a GpuSpec."""
        return load_gpu_spec(table, source)

    # ---- limits -------------------------------------------------------------------------------------
    @property
    def compute_unit_name(self) -> str:
        return self.spec.compute_unit_name

    @property
    def effects(self) -> Mapping[str, bool]:
        """The GpuOptions switches (gpusim.options) and their state."""
        return dataclasses.asdict(self.options)

    def with_effects(self, changes: Mapping[str, bool]) -> "GpuDevice":
        unknown = sorted(set(changes) - set(self.effects))
        if unknown:
            raise InputError(self.spec.name, "effects", f"unknown effect {unknown[0]!r}; known: {sorted(self.effects)}")
        return GpuDevice(self.spec, self.chips, dataclasses.replace(self.options, **changes))

    @property
    def unit_clock_hz(self) -> float:
        """All units counted in tensor-clock cycles."""
        return self.spec.tensor_clock_hz

    @property
    def memory_bytes_per_chip(self) -> float:
        """What a program can allocate: the runtime-reported total where measured, else the datasheet figure."""
        return self.spec.hbm_usable_bytes or self.spec.hbm_capacity_bytes

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.spec.hbm_bandwidth_bytes_per_s

    @property
    def achievable_bandwidth_bytes_per_s(self) -> float:
        """HBM bandwidth a copy kernel reaches (half read, half written; STREAM copy)."""
        return self.spec.hbm_bandwidth_bytes_per_s * self.spec.hbm_achievable_fraction

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        """Matmul dtypes with a non-zero datasheet tensor rate (fp16 runs on the bf16 tensor cores)."""
        return tuple(d for d in MATMUL_DTYPES if getattr(self.spec, f"dense_{_WIDER[d][0]}_flops_per_s") > 0.0)

    @property
    def link_limits(self) -> LinkLimits:
        """NVLink per direction (half the bidirectional datasheet figure), peer-to-peer latency, GPUs per server."""
        s = self.spec
        return LinkLimits(s.nvlink_bandwidth_bytes_per_s / 2, s.p2p_latency_s, s.gpus_per_server)

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        """Full-load power at the tensor clock (gpusim.power); dtype None: FULL_LOAD_DTYPE."""
        s, d = self.spec, dtype or FULL_LOAD_DTYPE
        return PowerLimits(tdp_w=s.tdp_w, static_power_w=static_power_w(s), clock_hz=s.tensor_clock_hz,
                           full_load_power_w=power_w(s, dtype=d), capped_clock_hz=capped_clock_hz(s, dtype=d))

    def area(self, *, check: bool = True) -> AreaBreakdown:
        """The physical die by block (gpusim.area); InputError for a GPU without a die description."""
        return area_breakdown(self.spec, check=check)

    def die_floorplan(self) -> None:
        """None: a GPU's peaks are published, and the reticle envelope models an array die, not SMs."""
        return None

    def executed_dtype(self, dtype: str) -> str:
        """The tensor-core format `dtype` runs in: itself, or the next wider one the chip has."""
        return self._per_dtype(dtype)[0]

    def peak_flops_per_s(self, dtype: str) -> float:
        """Datasheet dense peak for `dtype`, or the next wider format's when the chip lacks it."""
        return self._per_dtype(dtype)[1]

    def _gemm_efficiency(self, dtype: str) -> float:
        """Calibrated GEMM efficiency of the executed format (fp4 shares fp8's unless the spec has its own)."""
        return self._per_dtype(dtype)[2]

    def _per_dtype(self, dtype: str) -> tuple[str, float, float, float]:
        """(executed format, its peak FLOP/s, its GEMM efficiency, its attention efficiency) of `dtype`, found once
        per device and dtype: every priced op asks several times, and the spec and options never change on a
        device."""
        hit = self._dtype_memo.get(dtype)
        if hit is None:
            executed = self._executed_dtype(dtype)
            s = self.spec
            hit = self._dtype_memo[dtype] = (
                executed, getattr(s, f"dense_{executed}_flops_per_s"), self._executed_gemm_efficiency(executed),
                s.attention_efficiency_bf16 if executed == "bf16" else s.attention_efficiency_fp8)
        return hit

    def _executed_dtype(self, dtype: str) -> str:
        try:
            chain = _WIDER[dtype]
        except KeyError:
            expected = sorted(_WIDER)
            raise InputError(self.spec.name, "dtype", f"no tensor-core rate for {dtype!r}; expected {expected}") from None
        for candidate in chain:
            if getattr(self.spec, f"dense_{candidate}_flops_per_s") > 0.0:
                return candidate
        return "bf16"

    def _executed_gemm_efficiency(self, executed: str) -> float:
        s = self.spec
        executed = WIDTH_CLASS.get(executed, executed)  # integer tensor cores: the float format of their width's
        if executed == "fp4" and s.gemm_efficiency_fp4 > 0.0:
            return s.gemm_efficiency_fp4
        return s.gemm_efficiency_bf16 if executed == "bf16" else s.gemm_efficiency_fp8

    def _attention_efficiency(self, dtype: str) -> float:
        """Calibrated FlashAttention efficiency of the executed format (fp4 shares fp8's)."""
        return self._per_dtype(dtype)[3]

    # ---- pricing ------------------------------------------------------------------------------------
    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        """A GPU is programmable: any model the workload layer can build runs."""

    def step_energy_j(self, step: Any, dtype: str) -> float:
        """Joules one GPU spends in one engine step (gpusim.power)."""
        return _step_energy_j(self.spec, step, dtype)

    def cost(self, op: Op) -> OpCost:
        """Cycles one op costs on one GPU."""
        return self._price(op, False)[0]

    def explain(self, op: Op) -> dict[str, Any]:
        """The cost of `op` in seconds with the effects behind it (bound, waves, tile, launch)."""
        cost, detail = self._price(op, True)
        clock = self.spec.tensor_clock_hz
        parts = {
            "compute_s": cost.compute_cycles / clock,
            "memory_s": (cost.memory_cycles + cost.weight_cycles) / clock,
            "link_s": cost.link_cycles / clock,
        }
        kernel_s = max(parts.values())
        bound = max(parts, key=parts.get)[: -len("_s")] if kernel_s > 0.0 else "none"
        if cost.fixed_s > kernel_s:
            bound = "launch"
        total_s = cost.fixed_s + kernel_s
        ideal_s = cost.ideal_compute_cycles / clock
        return {
            "op": op.name,
            "kind": op.kind,
            **parts,
            "fixed_s": cost.fixed_s,
            "time_s": total_s,
            "bound": bound,
            "ideal_compute_s": ideal_s,
            "flops_utilization": ideal_s / total_s if total_s > 0.0 else 0.0,
            **(detail or {}),
        }

    def cost_rows(self, ops: Sequence[Op]) -> np.ndarray | None:
        """`cost` of ops without per-sequence arrays as rows (`kernels.accounts.COST_COLUMNS`, hbm_bytes the op's
        bytes) in one jitted call (`kernels.gpu_price.dense_costs`), the same floats; None where an op is of another
        kind or would be refused (the caller then prices them one by one, as `cost` does)."""
        statics = self.__dict__.setdefault("_statics_memo", {})
        table: list[float] = []
        for op in ops:
            d = op.__dict__
            if d["seq_new"] is not None or d["seq_past"] is not None:
                return None
            key = _STATIC_KEY(d)
            static = statics.get(key, False)
            if static is False:
                static = statics[key] = self._static(op)
            if static is None:
                return None
            table += static
            table += _VALUES(d)
        consts = self.__dict__.get("_constants_memo")
        if consts is None:
            consts = self.__dict__["_constants_memo"] = self._constants()
        return gpu_price.dense_costs(np.array(table, dtype=np.float64).reshape(len(ops), len(gpu_price.OP_COLUMNS)),
                                     consts, self._nccl_sizes, self._nccl_busbw)

    def _static(self, op: Op) -> tuple[float, ...] | None:
        """(kind code, flags, STATIC_COLUMNS values) of ops of this name, kind, dtype and group for `cost_rows`:
        the choices `_price` makes from those alone; None for a kind it does not take or an op `cost` refuses."""
        g, kind, name = gpu_price, op.kind, op.name
        if op.dtype not in _WIDER:
            return None
        _, peak, efficiency, _ = self._per_dtype(op.dtype)
        flags, cap, limit = 0, 0.0, 0.0
        if kind == OpKind.MATMUL:
            code = g.KIND_MATMUL
            flags |= g.QUANTIZE if self._quantized_input(op.dtype) else 0
            flags |= g.THROTTLED if self._throttled else 0
        elif kind in _STREAMED:
            code = g.KIND_STREAMED
            flags |= g.FUSED if kind == OpKind.ELEMENTWISE and self._fused_away(op) else 0
            flags |= g.EMBEDDING if kind == OpKind.EMBEDDING else 0
            flags |= g.RESIDUAL_NORM if self._residual_in_norm(op) else 0
            flags |= g.GATHERED_SAMPLE if self._gathered(op, _SAMPLE) else 0
        elif kind == OpKind.ALLREDUCE:
            code = g.KIND_ALLREDUCE
            group = int(op.group)
            if group > self.spec.gpus_per_server:
                return None  # refused by `_allreduce_s`
            flags |= g.REPLICATED if self._replicated(op) else 0
            flags |= g.GATHERED_ALLREDUCE if self._gathered(op, _SAMPLE_ALLREDUCE) else 0
            cap, limit = self.spec.busbw_cap_bytes_per_s(group), _oneshot_limit_bytes(group)
        elif kind == OpKind.P2P:
            code = g.KIND_P2P
        else:
            return None
        try:
            elem = dtype_bytes(op.dtype, name)
        except InputError:
            return None
        return (code, flags, peak, efficiency, elem, cap, limit)

    def _constants(self) -> np.ndarray:
        """The device's CONSTANTS (`kernels.gpu_price`) for `cost_rows`."""
        s, o = self.spec, self.options
        named = {
            "clock_hz": self._clock_hz, "launch_overhead_s": self._launch_overhead_s,
            "gemm_latency_s": self._gemm_latency_s, "memory_latency_s": self._memory_latency_s,
            "hbm_read_bytes_per_s": s.hbm_read_bytes_per_s, "hbm_write_bytes_per_s": s.hbm_write_bytes_per_s,
            "gemm_weight_bytes_per_s": s.gemm_weight_bytes_per_s, "sm_count": s.sm_count, "gemm_tile_m": s.gemm_tile_m,
            "gemm_tile_n_wide": s.gemm_tile_n_wide, "gemm_tile_n_narrow": s.gemm_tile_n_narrow,
            "gemm_narrow_tile_efficiency": s.gemm_narrow_tile_efficiency,
            "gemm_split_k_min_depth": s.gemm_split_k_min_depth, "wave_quantization": float(o.wave_quantization),
            "quantize_latency_s": self._latency(s.quantize_kernel_fixed_s),
            "sustained_compute_fraction": s.sustained_compute_fraction,
            "p2p_bytes_per_s": s.nvlink_bandwidth_bytes_per_s / 2.0 * s.p2p_efficiency,
            "p2p_latency_s": s.p2p_latency_s, "oneshot_latency_s": s.custom_allreduce_latency_s or s.p2p_latency_s,
            "ring_busbw_bytes_per_s": s.nccl_ring_busbw_bytes_per_s or float("inf"),
            "custom_allreduce": float(o.custom_allreduce), "onchip_path_pj_per_bit": onchip_path_pj_per_bit(),
        }
        return np.array([float(named[c]) for c in gpu_price.CONSTANTS])

    def _price(self, op: Op, explain: bool) -> tuple[OpCost, dict[str, Any] | None]:
        """(cost, the effects behind it where `explain`, else None). A serving hour prices ~10^5 ops, so the kinds
        it meets most are tested first and the detail is built only when explained."""
        kind = op.kind
        link_s = serial_s = 0.0  # serial_s: kernels of their own ahead of or after this one (input quantize, MoE
        detail = None  # permute, grouped-GEMM overhead)
        if kind == OpKind.MATMUL:
            compute_s, memory_s, weight_s, serial_s, detail = self._matmul(op, explain)
        elif kind in _STREAMED:
            if kind == OpKind.ELEMENTWISE and self._fused_away(op):
                return OpCost(ideal_compute_cycles=self._ideal_cycles(op)), {"fused": True}
            compute_s = weight_s = 0.0
            memory_s = self._stream_s(*self._streamed_bytes(op))
        elif kind == OpKind.ALLREDUCE:
            if self._replicated(op):
                return OpCost(), {"replicated": True}
            compute_s = memory_s = weight_s = 0.0
            if self._gathered(op, _SAMPLE_ALLREDUCE):
                link_s, algorithm = self._allgather_s(_full_logits(op) * _GATHERED_LOGIT_WIRE_BYTES, int(op.group))
            else:
                link_s, algorithm = self._allreduce_s(op)
            if explain:
                detail = {"algorithm": algorithm}
        elif kind == OpKind.ATTENTION_DECODE:
            compute_s, memory_s, weight_s, detail = self._attention_decode(op, explain)
        elif kind == OpKind.ATTENTION_PREFILL:
            compute_s, memory_s, weight_s, detail = self._attention_prefill(op, explain)
        elif kind == OpKind.MOE_MATMUL:  # the active experts' GEMMs as one grouped kernel
            compute_s, memory_s, weight_s, serial_s, detail = self._grouped_matmul(op, explain)
        elif kind == OpKind.SSM_SCAN:  # chunked scan on tensor cores; state and activations streamed
            compute_s = op.flops / (self.peak_flops_per_s("bf16") * self._attention_efficiency("bf16"))
            memory_s = self._stream_s(op.act_in_bytes + op.kv_read_bytes, op.act_out_bytes + op.kv_write_bytes)
            weight_s = 0.0
        elif kind == OpKind.ALL_TO_ALL:  # every GPU sends its share to the others at once over NVLink
            compute_s = memory_s = weight_s = 0.0
            s = self.spec
            bytes_per_s = s.all_to_all_bytes_per_s or s.nvlink_bandwidth_bytes_per_s / 2.0 * s.p2p_efficiency
            link_s = transfer_time_s(float(op.comm_bytes), bytes_per_s, s.all_to_all_latency_s or s.p2p_latency_s)
        elif kind == OpKind.P2P:
            compute_s = memory_s = weight_s = 0.0
            bytes_per_s = self.spec.nvlink_bandwidth_bytes_per_s / 2.0 * self.spec.p2p_efficiency
            link_s = transfer_time_s(float(op.comm_bytes), bytes_per_s, self.spec.p2p_latency_s)
        else:
            raise InputError(op.name, "kind", f"unknown op kind {kind!r}; expected one of {list(OpKind.ALL)}")
        clock = self._clock_hz
        if self._throttled and kind in _THROTTLED and compute_s > 0.0:
            compute_s *= self._throttle(op, compute_s, max(memory_s + weight_s, link_s))
        kernel_s = max(compute_s, memory_s + weight_s, link_s)
        cost = OpCost(
            compute_cycles=compute_s * clock,
            memory_cycles=memory_s * clock,
            weight_cycles=weight_s * clock,
            link_cycles=link_s * clock,
            # launches are queued ahead asynchronously: only launch time beyond the kernel's own is serial
            fixed_s=max(0.0, self._launch_overhead_s - kernel_s) + serial_s,
            ideal_compute_cycles=self._ideal_cycles(op),
            energy_j=onchip_memory_j(op, compute_s, kernel_s),
        )
        return cost, (detail if explain else None)

    def _throttle(self, op: Op, compute_s: float, other_s: float) -> float:
        """How much longer an op's compute takes with the board at its power limit: the tensor cores' share of
        their calibrated rate the op keeps busy (1 for a large GEMM), times the measured slowdown of such a GEMM
        (1 / sustained_compute_fraction - 1). Latency-bound and memory-bound ops draw too little to be slowed:
        an 8-layer decode step at batch 64 held its boost clock below the limit (docs/gpu-calibration.md). Only
        tensor-core kernels that can be compute-bound are throttled (`_THROTTLED`); decode attention and scans
        stream memory.

        The share is of the time the op lasts once throttled. Where the throttled compute still outlasts the op's
        memory and link time (`other_s`), the tensor cores set the pace and the share is of the compute time; only
        where memory or links outlast it is the share of their time. So a faster memory or link never makes an op
        slower: its time is max(throttled compute, other_s), each non-decreasing in every unthrottled time."""
        if op.flops <= 0.0 or compute_s <= 0.0:
            return 1.0
        efficiency = (self._attention_efficiency(op.dtype) if op.kind == OpKind.ATTENTION_PREFILL
                      else self._gemm_efficiency(op.dtype))
        work_s = op.flops / self.peak_flops_per_s(op.dtype) / efficiency
        extra = 1.0 / self.spec.sustained_compute_fraction - 1.0
        paced = 1.0 + extra * min(1.0, work_s / compute_s)  # the tensor cores busy for the whole op
        if compute_s * paced >= other_s:
            return paced
        return 1.0 + extra * min(1.0, work_s / other_s)

    def _ideal_cycles(self, op: Op) -> float:
        if op.flops <= 0.0:
            return 0.0
        return op.flops / self.peak_flops_per_s(op.dtype) * self._clock_hz

    def _launch_s(self) -> float:
        if not self.options.launch_overhead:
            return 0.0
        if self.options.cuda_graphs and self.spec.cuda_graphs:
            return self.spec.graph_launch_overhead_s
        return self.spec.launch_overhead_s

    def _latency(self, latency_s: float) -> float:
        return latency_s if self.options.kernel_latency else 0.0

    def _stream_s(self, read_bytes: float, write_bytes: float = 0.0) -> float:
        """A memory-bound kernel: its latency plus reads and writes at their achievable HBM bandwidths
        (writes cost more bus time than reads: STREAM dot runs faster than copy)."""
        if read_bytes + write_bytes <= 0.0:
            return 0.0
        return (self._memory_latency_s + float(read_bytes) / self._hbm_read_bytes_per_s
                + float(write_bytes) / self._hbm_write_bytes_per_s)

    def _fused_away(self, op: Op) -> bool:
        """Whether an elementwise op runs inside a neighbouring kernel (GEMM epilogue or RMSNorm)."""
        return self.options.fused_elementwise or (self.options.fused_residual_norm and op.name in _RESIDUAL_OPS)

    # What the options make of an op, from its name, kind and dtype (`_price` and `cost_rows` both ask these).
    def _residual_in_norm(self, op: Op) -> bool:
        """Whether a norm also adds the residual (it reads the residual and writes the new stream)."""
        return op.kind == OpKind.NORM and self.options.fused_residual_norm and op.name in _RESIDUAL_NORMS

    def _gathered(self, op: Op, name: str) -> bool:
        """Whether the op is the sampling op `name` over full-vocabulary logits gathered to every GPU."""
        return self.options.gathered_logits and op.name == name

    def _replicated(self, op: Op) -> bool:
        """Whether the op is the embedding all-reduce a replicated embedding table makes unnecessary."""
        return self.options.replicated_embedding and op.name == _EMBEDDING_ALLREDUCE

    def _quantized_input(self, dtype: str) -> bool:
        """Whether a GEMM in `dtype` quantizes its bf16 input in a kernel of its own."""
        return self.options.separate_input_quantize and self.executed_dtype(dtype) != "bf16"

    def _streamed_bytes(self, op: Op) -> tuple[float, float]:
        """(read, written) bytes of a norm/elementwise/embedding kernel; an embedding gathers only the rows
        it writes.

        A norm with the residual add fused in also reads the residual and writes the new residual stream.
        """
        if op.kind == OpKind.EMBEDDING:
            return op.act_in_bytes + min(op.weight_bytes, op.act_out_bytes), op.act_out_bytes
        read, written = _read_bytes(op), _written_bytes(op)
        if self._residual_in_norm(op):
            return read + op.act_in_bytes, written + op.act_out_bytes
        if self._gathered(op, _SAMPLE) and op.m > 0:
            logits = _full_logits(op)
            return logits * _GATHERED_LOGIT_READ_BYTES, logits * _GATHERED_LOGIT_WRITE_BYTES + op.act_out_bytes
        return read, written

    def _matmul(self, op: Op, explain: bool) -> tuple[float, float, float, float, dict[str, Any] | None]:
        """(compute, memory, weight, separate input-quantize kernel seconds, detail where `explain`)."""
        s = self.spec
        m, n, k = int(op.m), int(op.n), int(op.k)
        executed, peak, efficiency, _ = self._per_dtype(op.dtype)
        tensor_s, tile_n, split_k, waves = gemm_compute(
            m, n, k, s.sm_count, peak, efficiency, s.gemm_tile_m, s.gemm_tile_n_wide, s.gemm_tile_n_narrow,
            s.gemm_narrow_tile_efficiency, s.gemm_split_k_min_depth, self.options.wave_quantization,
        )
        if tensor_s == 0.0 and op.flops > 0.0:  # shape not given: FLOPs at the asymptotic rate
            tensor_s = op.flops / (peak * efficiency)
        compute_s = tensor_s + self._gemm_latency_s if tensor_s > 0.0 else 0.0
        act_in, act_out = op.act_in_bytes, op.act_out_bytes
        weight_bytes = op.weight_bytes
        if act_in + act_out + weight_bytes <= 0.0 and m > 0:
            elem = dtype_bytes(op.dtype, op.name)
            act_in, act_out = float(m) * k * elem, float(m) * n * elem
            weight_bytes = float(k) * n * elem
        weight_s = weight_bytes / s.gemm_weight_bytes_per_s
        memory_s = self._stream_s(act_in, act_out) if act_in + act_out > 0.0 else self._memory_latency_s
        quantize = self._quantized_input(op.dtype) and m > 0
        quantize_s = 0.0
        if quantize:
            elem = dtype_bytes(op.dtype, op.name)
            quantize_s = (self._latency(s.quantize_kernel_fixed_s)
                          + float(m) * k * (_ACT_BYTES + elem) / s.hbm_read_bytes_per_s)
        if not explain:
            return compute_s, memory_s, weight_s, quantize_s, None
        tiles = -(-m // s.gemm_tile_m) * -(-n // max(tile_n, 1)) * split_k if m > 0 else 0
        slots = waves * s.sm_count
        detail = {
            "tile": (s.gemm_tile_m, int(tile_n)),
            "split_k": int(split_k),
            "waves": float(waves),
            "wave_efficiency": tiles / slots if slots > 0 else 0.0,
        }
        if quantize:
            detail["quantize_s"] = quantize_s
        return compute_s, memory_s, weight_s, quantize_s, detail

    def _grouped_efficiency(self, dtype: str) -> float:
        """A grouped expert GEMM's efficiency relative to the dense GEMM of its total shape, per executed format."""
        s, executed = self.spec, self.executed_dtype(dtype)
        executed = WIDTH_CLASS.get(executed, executed)
        own = {"fp8": s.grouped_gemm_efficiency_fp8, "fp4": s.grouped_gemm_efficiency_fp4}.get(executed, 0.0)
        return own or s.grouped_gemm_efficiency

    def _grouped_matmul(self, op: Op, explain: bool) -> tuple[float, float, float, float, dict[str, Any] | None]:
        """A grouped expert GEMM (moe_matmul): its active experts' GEMMs side by side as one dense GEMM, at the
        grouped kernel's efficiency, plus its serial overheads (fixed, per expert) and the row permutation:
        (compute, memory, weight, serial seconds, detail where `explain`)."""
        s = self.spec
        # No input-quantize kernel of its own: a fused MoE quantizes its rows inside the permute (gate/up) and
        # the activation (down) kernels (TensorRT-LLM's expandInputRows / doActivation).
        compute_s, memory_s, weight_s, _, detail = self._matmul(grouped_as_dense(op), explain)
        if detail is not None:
            detail.pop("quantize_s", None)
        efficiency = self._grouped_efficiency(op.dtype)
        if efficiency < 1.0:
            compute_s /= efficiency
        grouped_s = permute_s = 0.0
        if s.grouped_gemm_fixed_s > 0.0 or s.grouped_gemm_expert_s > 0.0:
            grouped_s = self._latency(s.grouped_gemm_fixed_s) + float(op.experts) * s.grouped_gemm_expert_s
            if detail is not None:
                detail["grouped_s"] = grouped_s
        rows = _MOE_PERMUTED_ROWS.get(op.name)
        if self.options.separate_moe_permute and rows is not None:
            permuted = float(getattr(op, rows))
            permute_s = self._stream_s(permuted, permuted)
            if detail is not None:
                detail["permute_s"] = permute_s
        return compute_s, memory_s, weight_s, permute_s + grouped_s, detail

    def _prefill_efficiency(self, dtype: str) -> float:
        """The serving stack's context-attention efficiency where measured, else FlashAttention-3's."""
        s = self.spec
        stack = s.prefill_attention_efficiency_bf16 if self.executed_dtype(dtype) == "bf16" \
            else s.prefill_attention_efficiency_fp8
        return stack if self.options.stack_attention and stack > 0.0 else self._attention_efficiency(dtype)

    def _attention_statics(self, op: Op) -> tuple:
        """What the spec and options fix for attention ops of one kind, dtype, feature set and window, found once per
        device (every step prices its attention ops afresh). Prefill: (efficiency, peak FLOP/s, plain attention
        (`plain_attention`), the stack's fixed seconds beyond a GEMM's latency or None, MLA's seconds per sequence and
        head or None); decode: (efficiency, peak FLOP/s, the MLA stack path on, the stack's streamed path on, its
        fixed seconds, its seconds per sequence and head)."""
        memo = self._attention_memo
        kind, dtype, features = op.kind, op.dtype, op.features
        key = (kind, dtype, features, op.window)
        hit = memo.get(key)
        if hit is not None:
            return hit
        s, stack = self.spec, self.options.stack_attention
        mla = Feature.MLA in features
        plain = plain_attention(op)
        bf16 = self.executed_dtype(dtype) == "bf16"
        if kind == OpKind.ATTENTION_PREFILL:
            efficiency = self._prefill_efficiency(dtype)
            if stack and mla:
                efficiency = (s.mla_prefill_efficiency_bf16 if bf16 else s.mla_prefill_efficiency_fp8) or efficiency
            fixed_s = self._latency(s.prefill_attention_fixed_s - s.gemm_latency_s) \
                if stack and s.prefill_attention_fixed_s > 0.0 else None
            head_s = s.mla_prefill_head_s if stack and mla and s.mla_prefill_head_s > 0.0 else None
            hit = (efficiency, self.peak_flops_per_s(dtype), plain, fixed_s, head_s)
        else:
            on = stack and mla and s.mla_decode_fixed_s > 0.0
            efficiency = self._attention_efficiency(dtype)
            if on:
                efficiency = (s.mla_decode_efficiency_bf16 if bf16 else s.mla_decode_efficiency_fp8) or efficiency
            streamed = stack and s.decode_attention_stream_fraction > 0.0
            fixed_s, per_head_s = ((s.mla_decode_fixed_s, s.mla_decode_head_s) if on
                                   else (s.decode_attention_fixed_s, s.decode_attention_head_s))
            hit = (efficiency, self.peak_flops_per_s(dtype), on, streamed, self._latency(fixed_s), per_head_s)
        memo[key] = hit
        return hit

    def _attention_prefill(self, op: Op, explain: bool) -> tuple[float, float, float, dict[str, Any] | None]:
        s = self.spec
        new, past = _seq_arrays(op)
        efficiency, peak, plain, fixed_s, head_s = self._attention_statics(op)
        tensor_s = prefill_attention_compute_s(
            new, past, op.q_heads, op.head_dim, s.attention_block_q, s.attention_block_kv, True,
            s.sm_count, peak, efficiency,
        )
        if tensor_s == 0.0 and op.flops > 0.0:
            tensor_s = op.flops / (peak * efficiency)
        if not plain:
            tensor_s *= attention_flops_scale(op)  # windows, MLA, sinks (1.0 for plain attention)
        compute_s = tensor_s + self._gemm_latency_s if tensor_s > 0.0 else 0.0
        read, written = _read_bytes(op), _written_bytes(op)
        if read + written <= 0.0:
            elem = dtype_bytes(op.dtype, op.name)
            q_or_o = float(new.sum()) * op.q_heads * op.head_dim * elem
            read, written = q_or_o + kv_cache_bytes(new, past, op.kv_heads, op.head_dim, elem), q_or_o
        if fixed_s is not None and compute_s > 0.0:  # the stack's own fixed cost beyond a GEMM's latency
            compute_s += fixed_s
        memory_s = self._stream_s(read, written)
        if head_s is not None:  # MLA's per (sequence x head) work
            memory_s += float(new.size) * op.q_heads * head_s
        detail = {"useful_flops": attention_flops(new, past, op.q_heads, op.head_dim, True)} if explain else None
        return compute_s, memory_s, 0.0, detail

    def _attention_decode(self, op: Op, explain: bool) -> tuple[float, float, float, dict[str, Any] | None]:
        """Priced from its totals (`decode_cost_by_totals`): the sequences' arrays are read only for an op without
        FLOPs or bytes."""
        read, written = _read_bytes(op), _written_bytes(op)
        if op.flops > 0.0 and read + written > 0.0:
            sequences = _sequence_count(op)
        else:
            new, past = _seq_arrays(op)
            sequences = new.size
        flops = op.flops if op.flops > 0.0 else attention_flops(new, past, op.q_heads, op.head_dim, True)
        efficiency, peak, mla, streamed, fixed_s, per_head_s = self._attention_statics(op)
        compute_s = flops / (peak * efficiency)
        if read + written <= 0.0:
            elem = dtype_bytes(op.dtype, op.name)
            q_or_o = float(sequences) * op.q_heads * op.head_dim * elem
            read, written = kv_cache_bytes(new, past, op.kv_heads, op.head_dim, elem) + q_or_o, q_or_o
        detail = {"kv_bytes": read + written} if explain else None
        if streamed:
            # The stack's measured decode attention: fixed cost + KV stream + per (sequence x head) work (its
            # RoPE / KV-append kernel and the attention kernel's per-head setup run apart from the stream).
            s = self.spec
            stream_s = (read + written) / (s.hbm_bandwidth_bytes_per_s * s.decode_attention_stream_fraction)
            head_s = float(sequences) * op.q_heads * per_head_s
            memory_s = fixed_s + stream_s + head_s
            return compute_s, memory_s, 0.0, detail and detail | {"stack_attention": True, "mla": mla}
        return compute_s, self._stream_s(read, written), 0.0, detail

    def _allreduce_s(self, op: Op) -> tuple[float, str]:
        """(seconds, algorithm) of a TP all-reduce: the one-shot kernel where the stack uses it, else NCCL."""
        group = int(op.group)
        if group > self.spec.gpus_per_server:
            server = self.spec.gpus_per_server
            raise InputError(self.spec.name, "tp", f"all-reduce over {group} GPUs leaves the {server}-GPU NVLink "
                             "server; only in-server collectives are modelled")
        size = float(op.comm_bytes)
        if self.options.custom_allreduce and group > 1 and size < _oneshot_limit_bytes(group):
            return self._oneshot_allreduce_s(size, group), "oneshot"
        cap = self.spec.busbw_cap_bytes_per_s(group)
        return curve_allreduce_time_s(size, group, self._nccl_sizes, self._nccl_busbw, cap), "nccl"

    def _allgather_s(self, total_bytes: float, group: int) -> tuple[float, str]:
        """(seconds, algorithm) of an NCCL ring all-gather leaving `total_bytes` on every GPU: each GPU
        receives (group - 1) / group of it, half an all-reduce's 2(group - 1) / group, at the curve's busbw
        capped at the ring's (NVLink SHARP speeds up reductions, not gathers)."""
        ring = self.spec.nccl_ring_busbw_bytes_per_s or float("inf")
        return curve_allreduce_time_s(total_bytes, group, self._nccl_sizes, self._nccl_busbw, ring) / 2.0, \
            "nccl-allgather"

    def _oneshot_allreduce_s(self, size_bytes: float, group: int) -> float:
        """One-shot all-reduce: every GPU pulls its peers' buffers over NVLink and sums all of them locally.

        One NVLink step of latency, (group - 1) x size in over one direction of the GPU's NVLink at the p2p
        efficiency, and the local reduction reading group x size from HBM.
        """
        s = self.spec
        if size_bytes <= 0.0:
            return 0.0
        link_bytes_per_s = s.nvlink_bandwidth_bytes_per_s / 2.0 * s.p2p_efficiency
        return ((s.custom_allreduce_latency_s or s.p2p_latency_s) + (group - 1) * size_bytes / link_bytes_per_s
                + group * size_bytes / s.hbm_read_bytes_per_s)


DEVICE = GpuDevice  # the registry's name for this package's device class (asicsim.core.registry)


def _oneshot_limit_bytes(group: int) -> float:
    """Largest message the one-shot kernel takes for this group size (stack thresholds, ascending)."""
    for max_group, limit in ONESHOT_ALLREDUCE_MAX_BYTES:
        if group <= max_group:
            return limit
    return ONESHOT_ALLREDUCE_MAX_BYTES[-1][1]


def _read_bytes(op: Op) -> float:
    """Bytes an op reads from device memory (weights, inputs, cached keys and values)."""
    return op.weight_bytes + op.act_in_bytes + op.kv_read_bytes


def _written_bytes(op: Op) -> float:
    """Bytes an op writes to device memory (outputs, new keys and values)."""
    return op.act_out_bytes + op.kv_write_bytes


def _full_logits(op: Op) -> float:
    """Full-vocabulary logits of a sampling op: its shard (m tokens x n vocab) times the TP group."""
    return float(op.m) * float(op.n) * max(int(op.group), 1)


def _sequence_count(op: Op) -> int:
    """Sequences of an attention op: `_seq_arrays(op)[0].size` without making the arrays."""
    given = op.seq_past if op.seq_new is None else op.seq_new
    if given is None:
        return 0
    return given.size if isinstance(given, np.ndarray) else int(np.size(given))


def _seq_arrays(op: Op) -> tuple[np.ndarray, np.ndarray]:
    """(new tokens, cached tokens) per sequence as int64 arrays; decode ops default to one new token each."""
    past = np.zeros(0, dtype=np.int64) if op.seq_past is None else np.asarray(op.seq_past, dtype=np.int64).reshape(-1)
    if op.seq_new is None:
        new = np.ones_like(past)
    else:
        new = np.asarray(op.seq_new, dtype=np.int64).reshape(-1)
    return new, past
