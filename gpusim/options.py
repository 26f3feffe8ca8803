"""GpuOptions: switches for each modelled GPU effect, so a study can turn one off and see what it costs.

Named software stacks (`GpuOptions.for_stack`) set the switches a serving stack is documented to use;
`docs/gpu-calibration.md` cites each feature.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from workloads.errors import InputError

__all__ = ["GpuOptions", "STACKS", "ONESHOT_ALLREDUCE_MAX_BYTES"]

# TensorRT-LLM AllReduceStrategy AUTO: the one-shot custom kernel below these message sizes, NCCL above
# (tp 2: the whole 64 MiB workspace; tp <= 4: under 1 MB; larger groups: under 500 kB). Source:
# NVIDIA/TensorRT-LLM cpp/tensorrt_llm/plugins/ncclPlugin/allreducePlugin.cpp, selectImplementation.
ONESHOT_ALLREDUCE_MAX_BYTES: tuple[tuple[int, float], ...] = ((2, 64.0 * 2**20), (4, 1.0e6), (8, 0.5e6))


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
    """

    wave_quantization: bool = True
    kernel_latency: bool = True
    launch_overhead: bool = True
    cuda_graphs: bool = True
    fused_elementwise: bool = False
    custom_allreduce: bool = False
    fused_residual_norm: bool = False
    replicated_embedding: bool = False

    @staticmethod
    def for_stack(name: str) -> "GpuOptions":
        """The switches of a named serving stack (see STACKS); InputError for an unknown name."""
        try:
            return STACKS[name]
        except KeyError:
            raise InputError("software", "stack", f"unknown stack {name!r}; expected one of {sorted(STACKS)}") from None


_TRTLLM = replace(GpuOptions(), custom_allreduce=True, replicated_embedding=True)

# Stack name -> switches. "generic": NCCL for every collective, one kernel per op (the model's baseline).
# TensorRT-LLM (0.10 and 0.14 alike, as trtllm-bench builds it): custom all-reduce (AUTO strategy); the
# embedding table is replicated (`use_parallel_embedding` defaults to False); all-reduce + residual +
# RMSNorm fusion (`reduce_fusion`) is left off by trtllm-bench, so `fused_residual_norm` stays off.
STACKS: dict[str, GpuOptions] = {
    "generic": GpuOptions(),
    "trtllm-0.14": _TRTLLM,
    "trtllm-0.10": _TRTLLM,
}
