"""GpuOptions: switches for each modelled GPU effect, so a study can turn one off and see what it costs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GpuOptions"]


@dataclass(frozen=True)
class GpuOptions:
    """Which effects the GPU model applies. Effects default on; optimisations the stack may lack default off.

    wave_quantization: GEMM tiles run in whole waves over the SMs (off: perfectly balanced, e.g. stream-K).
    kernel_latency: every kernel pays its fixed latency (GEMM/attention fill and tail; memory-kernel ramp).
    launch_overhead: the CPU launch cost not hidden behind the previous kernel is exposed.
    cuda_graphs: if the spec's stack uses CUDA Graphs, launches cost the graph-replay overhead instead.
    fused_elementwise: elementwise ops fold into the neighbouring GEMM epilogue and cost nothing.
    """

    wave_quantization: bool = True
    kernel_latency: bool = True
    launch_overhead: bool = True
    cuda_graphs: bool = True
    fused_elementwise: bool = False
