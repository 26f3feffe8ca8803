"""GpuOptions: switches for each modelled GPU effect, so a study can turn one off and see what it costs.

Named software stacks (`GpuOptions.for_stack`) set the switches a serving stack is documented to use;
`docs/gpu-calibration.md` cites each feature.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from asicsim.workloads.errors import InputError

__all__ = ["GpuOptions", "STACKS", "ONESHOT_ALLREDUCE_MAX_BYTES", "kernel_timing"]

# TensorRT-LLM AllReduceStrategy AUTO: the one-shot custom kernel below these message sizes, NCCL above
# (tp 2: up to the whole 16 MB workspace; tp <= 4: under 1 MB; larger groups: under 500 kB; two-shot
# disabled in AUTO). Sources: NVIDIA/TensorRT-LLM cpp/tensorrt_llm/plugins/ncclPlugin/allreducePlugin.cpp
# (`selectImplementation`) and cpp/tensorrt_llm/common/customAllReduceUtils.h (`getMaxRequiredWorkspaceSize`:
# 16e6 bytes for two GPUs, 8e6 otherwise).
ONESHOT_ALLREDUCE_MAX_BYTES: tuple[tuple[int, float], ...] = ((2, 16.0e6), (4, 1.0e6), (8, 0.5e6))


@dataclass(frozen=True)
class GpuOptions:
    """Which effects the GPU model applies. Effects default on; optimisations the stack may lack default off.

    wave_quantization: GEMM tiles run in whole waves over the SMs (off: perfectly balanced, e.g. stream-K).
    kernel_latency: every kernel pays its fixed latency (GEMM/attention fill and tail; memory-kernel ramp).
    launch_overhead: the CPU launch cost not hidden behind the previous kernel is exposed.
    cuda_graphs: if the spec's stack uses CUDA Graphs, launches cost the graph-replay overhead instead.
    fused_elementwise: every elementwise op folds into the neighbouring GEMM epilogue and costs nothing.
    custom_allreduce: small all-reduces use a one-shot NVLink kernel (each GPU reads its peers' buffers)
        instead of NCCL, below the stack's size thresholds (`ONESHOT_ALLREDUCE_MAX_BYTES`).
    fused_residual_norm: the residual add runs inside the following RMSNorm kernel (one pass reading the
        sum's two inputs and writing the new residual and the normed output) instead of its own kernel.
    replicated_embedding: the embedding table is replicated on every GPU, so its lookup needs no all-reduce.
    gathered_logits: the LM head's vocab-sharded logits are all-gathered to every GPU in bf16, cast to fp32 and
        sampled from the full vocabulary there (instead of each GPU sampling its shard and all-reducing the
        winners): an all-gather of tokens x vocab x 2 bytes and 10 bytes of HBM traffic per full-vocab logit.
    stack_attention: attention is priced as the serving stack runs it, with the spec's measured
        `decode_attention_*` / `prefill_attention_fixed_s` terms (where the spec has them), instead of the
        bare kernel (KV stream at the copy bandwidth, FlashAttention FLOPs).
    separate_input_quantize: an fp8/fp4 GEMM first quantizes its bf16 input in a kernel of its own
        (TensorRT-LLM's PyTorch `Linear`; the engine flow fuses it into the preceding norm).
    separate_moe_permute: a grouped expert GEMM's token rows are permuted in a kernel of its own: before the
        first (gate/up) GEMM its (token x expert) input rows are gathered into expert order, after the last
        (down) GEMM its per-token output rows are written back in token order (TensorRT-LLM's expandInputRows /
        finalizeMoeRouting kernels); each reads and writes those hidden-width rows once through HBM.
    sustained_power_cap: GEMMs and prefill attention run slower by up to the spec's measured
        `sustained_compute_fraction`, in proportion to how busy they keep the tensor cores: serving holds the
        board at its power limit, where the clocks sit below the boost clock a kernel timed alone for milliseconds
        sees. Off for comparisons with such kernel timings (`kernel_timing`).
    """

    wave_quantization: bool = True
    kernel_latency: bool = True
    launch_overhead: bool = True
    cuda_graphs: bool = True
    fused_elementwise: bool = False
    custom_allreduce: bool = False
    fused_residual_norm: bool = False
    replicated_embedding: bool = False
    gathered_logits: bool = False
    stack_attention: bool = True
    separate_input_quantize: bool = False
    separate_moe_permute: bool = True
    sustained_power_cap: bool = True

    @staticmethod
    def for_stack(name: str) -> "GpuOptions":
        """The switches of a named serving stack (see STACKS); InputError for an unknown name."""
        try:
            return STACKS[name]
        except KeyError:
            raise InputError("software", "stack", f"unknown stack {name!r}; expected one of {sorted(STACKS)}") from None


def kernel_timing(options: GpuOptions) -> GpuOptions:
    """`options` for pricing a kernel benchmark: each kernel timed alone for milliseconds at its boost clock, so
    no sustained power-limit throttle (operator tables, microbenchmarks, published kernel rows)."""
    return replace(options, sustained_power_cap=False)


_TRTLLM = replace(GpuOptions(), custom_allreduce=True, replicated_embedding=True, gathered_logits=True)

# Stack name -> switches. "generic": NCCL for every collective, one kernel per op (the model's baseline).
# TensorRT-LLM (0.10 and 0.14 alike, as trtllm-bench builds it): custom all-reduce (AUTO strategy); the
# embedding table is replicated (`use_parallel_embedding` defaults to False); the LM head is a ColumnLinear
# with gather_output=True whose logits are marked fp32 outputs (tensorrt_llm/models/llama/model.py), so every
# GPU samples from gathered full-vocabulary fp32 logits (`gathered_logits`); all-reduce + residual +
# RMSNorm fusion (`reduce_fusion`) is left off by trtllm-bench, so `fused_residual_norm` stays off.
# "trtllm-pytorch": TensorRT-LLM 1.x's PyTorch flow as aiconfigurator-core's collector times it (a `Linear`
# module quantizes its bf16 input before an fp8/fp4 GEMM: the collector's collect_gemm.py feeds bf16 `x`).
# trtllm-bench's TensorRT-engine flow leaves CUDA Graphs off (`PerformanceOptions.cuda_graphs = False` in
# tensorrt_llm/bench/run/dataclasses.py of the v0.12-v0.15 era), so every kernel launch is a CPU launch there.
_TRTLLM_ENGINE = replace(_TRTLLM, cuda_graphs=False)
# "vllm": vLLM as AMD (ROCm) and Intel (Gaudi fork) ship it: graph replay for decode (HIP graphs / HPU graphs),
# its custom all-reduce for small messages (vllm/distributed/device_communicators/custom_all_reduce.py; on ROCm
# too), the residual add fused into RMSNorm (`fused_add_rms_norm`, vllm/model_executor/layers/layernorm.py), a
# vocab-parallel embedding whose lookup is all-reduced, and sampling on vocab shards (the stack gathers logits to
# one rank; the model's closest switch is off). The one-shot size thresholds are TensorRT-LLM's (vLLM's custom
# all-reduce also serves messages up to a few MB).
STACKS: dict[str, GpuOptions] = {
    "generic": GpuOptions(),
    "vllm": replace(GpuOptions(), custom_allreduce=True, fused_residual_norm=True),
    "trtllm-0.14": _TRTLLM_ENGINE,
    "trtllm-0.10": _TRTLLM_ENGINE,
    "trtllm-pytorch": replace(_TRTLLM, separate_input_quantize=True),
}
